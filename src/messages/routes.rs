use axum::extract::multipart::{Field, MultipartError};
use axum::extract::{FromRequest, Multipart, Request, State};
use axum::http::header::CONTENT_TYPE;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::attachment::Attachment;
use super::idempotency::{self, IdempotencyKey};
use super::service::{self, RecipientResult, SendRequest};
use crate::auth::TokenAuth;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{Json, Path};
use crate::state::AppState;
use axum::response::{IntoResponse, Response};
use mxgate_bridge::network::{ContactCard, Location, MediaKind, Poll, Structured};
use serde_json::Value;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(send_message))
}

/// The JSON form of a message.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MessageJson {
    /// Comma-separated phone numbers.
    #[schema(example = "237698765432,237677777777")]
    pub contact: Option<String>,
    /// Comma-separated `https://chat.whatsapp.com/<code>` invite URLs; wins over `contact`.
    pub group_url: Option<String>,
    #[schema(example = "Good morning")]
    pub text: Option<String>,
    /// `wa`, when given.
    #[schema(pattern = "^wa$")]
    pub platform: Option<String>,
    /// A Matrix event id (from a webhook payload or an earlier send) to reply to; empty
    /// means none.
    #[schema(pattern = r"^(\s*|\$[A-Za-z0-9+/_=-]{1,254})$")]
    pub reply_id: Option<String>,
    /// A file to fetch and send (http or https; no private address; no redirect; at most
    /// the server's file size limit, within 10 s).
    #[schema(example = "https://example.com/menu.pdf")]
    pub media_url: Option<String>,
    /// A file given inline, with `mime_type`, `file_name` or both.
    pub media_base64: Option<String>,
    #[schema(example = "image/jpeg")]
    pub mime_type: Option<String>,
    #[schema(example = "photo.jpg")]
    pub file_name: Option<String>,
    /// How the file is shown when its type alone does not say: `voice` (a push-to-talk
    /// note, OGG/Opus), `sticker` (WebP), `document` (any file as a document)…
    pub kind: Option<MediaKind>,
    /// An image or video the recipient may open once.
    #[serde(default)]
    pub view_once: bool,
    /// A place on the map; a message of its own.
    pub location: Option<Location>,
    /// One or several contact cards (vCard 3.0); a message of its own.
    pub contact_cards: Option<Vec<ContactCardJson>>,
    /// A poll; a message of its own.
    pub poll: Option<Poll>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ContactCardJson {
    /// One vCard; its `FN` is the name WhatsApp shows.
    #[schema(
        example = "BEGIN:VCARD\nVERSION:3.0\nFN:Ada Lovelace\nTEL;type=CELL;waid=237677777777:+237 677 77 77 77\nEND:VCARD"
    )]
    pub vcard: String,
}

impl MessageJson {
    /// The location, contact cards or poll the message is, when it is one.
    fn structured(&mut self) -> ApiResult<Option<Structured>> {
        let given = (self.location.take(), self.contact_cards.take(), self.poll.take());
        Ok(Some(match given {
            (None, None, None) => return Ok(None),
            (Some(location), None, None) => Structured::Location(location),
            (None, Some(cards), None) => Structured::ContactCards { cards: contact_cards(&cards)? },
            (None, None, Some(poll)) => Structured::Poll(poll),
            _ => return Err(ApiError::unprocessable("give one of location, contact_cards, poll")),
        }))
    }
}

fn contact_cards(cards: &[ContactCardJson]) -> ApiResult<Vec<ContactCard>> {
    cards
        .iter()
        .enumerate()
        .map(|(n, card)| match mxgate_bridge::content::contact_cards(card.vcard.as_bytes()) {
            Some(mut one) if one.len() == 1 => Ok(one.remove(0)),
            _ => Err(ApiError::unprocessable(format!(
                "contact_cards[{n}].vcard must be one vCard, BEGIN:VCARD … END:VCARD"
            ))),
        })
        .collect()
}

/// The multipart form: the same fields, plus `file` (its name must have an extension).
/// It exists for the OpenAPI document; the handler reads the form field by field.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct MessageForm {
    contact: Option<String>,
    group_url: Option<String>,
    text: Option<String>,
    #[schema(pattern = "^wa$", nullable = false)]
    platform: Option<String>,
    #[schema(pattern = r"^(\s*|\$[A-Za-z0-9+/_=-]{1,254})$", nullable = false)]
    reply_id: Option<String>,
    #[schema(value_type = Option<String>, format = Binary)]
    file: Option<Vec<u8>>,
    /// As in JSON; `location`, `contact_cards` and `poll` as JSON text.
    kind: Option<MediaKind>,
    view_once: Option<bool>,
    media_url: Option<String>,
    location: Option<String>,
    contact_cards: Option<String>,
    poll: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MessageSent {
    #[schema(example = "Message processed")]
    pub message: String,
    /// One entry per recipient, in the order given.
    pub results: Vec<RecipientResult>,
}

/// Send a message from a linked device to contacts or groups. Each recipient gets its own
/// result: `sent` once WhatsApp accepted it, or why not. With an `Idempotency-Key`, the same
/// key and body within 24 hours answers the first answer again and sends nothing.
#[utoipa::path(post, path = "/devices/{device_id}/message", tag = "messages", security(("bearer" = [])),
    params(
        ("device_id" = String, Path, description = "The device's phone number"),
        ("Idempotency-Key" = Option<String>, Header, pattern = r"^[!-~]{1,255}$",
            description = "1 to 255 visible ASCII characters naming this send; a retry with the same key and body sends nothing again (kept 24 h), with another body answers 422, while the first is still running 409"),
    ),
    request_body(content(
        (MessageJson = "application/json"),
        (MessageForm = "multipart/form-data"),
    )),
    responses(
        (status = 200, body = MessageSent),
        (status = 401, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 413, body = ErrorBody),
        (status = 415, body = ErrorBody), (status = 422, body = ErrorBody), (status = 503, body = ErrorBody),
    ))]
async fn send_message(
    State(state): State<AppState>,
    TokenAuth(token): TokenAuth,
    Path(device_id): Path<String>,
    request: Request,
) -> ApiResult<Response> {
    let key = IdempotencyKey::from_headers(request.headers())?;
    let content_type = request.headers().get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default();
    let send = if content_type.starts_with("multipart/form-data") {
        let multipart =
            Multipart::from_request(request, &state).await.map_err(|e| ApiError::BadRequest(e.body_text()))?;
        read_form(multipart, state.config.max_file_size).await?
    } else {
        let Json(body) = Json::<MessageJson>::from_request(request, &state).await?;
        from_json(body)?
    };
    let Some(key) = key else {
        let results = service::send(&state, &token, &device_id, send, None).await?;
        return Ok(Json(MessageSent { message: "Message processed".into(), results }).into_response());
    };
    let fingerprint = send.fingerprint(&device_id);
    // A request that died holding its key is taken over once it cannot be answering any more.
    let stale_after = state.config.send_timeout_secs as i64 + 60;
    match idempotency::claim(&state.db, &token.id, &key, &fingerprint, stale_after).await? {
        idempotency::Claim::Answered(first) => {
            let first: Value = serde_json::from_str(&first).map_err(|e| ApiError::Internal(e.into()))?;
            Ok(Json(first).into_response())
        }
        idempotency::Claim::Taken => match service::send(&state, &token, &device_id, send, Some(&key)).await {
            Ok(results) => {
                let answer = MessageSent { message: "Message processed".into(), results };
                let stored = serde_json::to_string(&answer).map_err(|e| ApiError::Internal(e.into()))?;
                idempotency::finish(&state.db, &token.id, &key, &stored).await?;
                Ok(Json(answer).into_response())
            }
            Err(error) => {
                idempotency::release(&state.db, &token.id, &key).await?;
                Err(error)
            }
        },
    }
}

fn from_json(mut body: MessageJson) -> ApiResult<SendRequest> {
    let structured = body.structured()?;
    let file = match body.media_base64 {
        Some(base64) => Some(Attachment::from_base64(&base64, body.mime_type, body.file_name)?),
        None if body.mime_type.is_some() || body.file_name.is_some() => {
            return Err(ApiError::unprocessable("mime_type and file_name describe media_base64; give it"));
        }
        None => None,
    };
    Ok(SendRequest {
        contact: body.contact,
        group_url: body.group_url,
        text: body.text,
        platform: body.platform,
        reply_id: body.reply_id,
        file,
        media_url: body.media_url,
        kind: body.kind,
        view_once: body.view_once,
        structured,
    })
}

fn multipart_error(error: MultipartError) -> ApiError {
    match error.status() {
        axum::http::StatusCode::PAYLOAD_TOO_LARGE => ApiError::PayloadTooLarge,
        _ => ApiError::BadRequest(error.body_text()),
    }
}

/// Reads a field chunk by chunk and refuses it as soon as it passes `limit` bytes, so a
/// request never holds more than that of it in memory.
async fn read_field(mut field: Field<'_>, limit: usize) -> ApiResult<Vec<u8>> {
    let mut data = Vec::new();
    while let Some(chunk) = field.chunk().await.map_err(multipart_error)? {
        if data.len() + chunk.len() > limit {
            return Err(ApiError::PayloadTooLarge);
        }
        data.extend_from_slice(&chunk);
    }
    Ok(data)
}

/// The longest text field, in bytes: the longest text in the longest UTF-8.
const MAX_TEXT_FIELD: usize = 4 * service::MAX_TEXT;

async fn read_form(mut multipart: Multipart, max_file_size: usize) -> ApiResult<SendRequest> {
    let mut request = SendRequest::default();
    // The fields that are JSON text, read as the JSON form reads them.
    let mut json = serde_json::Map::new();
    while let Some(field) = multipart.next_field().await.map_err(multipart_error)? {
        let name = field.name().unwrap_or_default().to_owned();
        if name == "file" {
            let file_name = field.file_name().unwrap_or_default().to_owned();
            let extension = std::path::Path::new(&file_name).extension().and_then(|e| e.to_str()).unwrap_or_default();
            if extension.is_empty() {
                return Err(ApiError::unprocessable("the file's name needs an extension, e.g. photo.jpg"));
            }
            let mime_type = mime_guess::from_ext(extension).first_or_octet_stream().to_string();
            let data = read_field(field, max_file_size).await?;
            if data.is_empty() {
                return Err(ApiError::unprocessable("the file is empty"));
            }
            request.file = Some(Attachment { data, file_name, mime_type });
            continue;
        }
        let value = read_field(field, MAX_TEXT_FIELD).await?;
        let value = String::from_utf8(value).map_err(|_| ApiError::unprocessable(format!("`{name}` is not UTF-8")))?;
        let slot = match name.as_str() {
            "contact" => &mut request.contact,
            "group_url" => &mut request.group_url,
            "text" => &mut request.text,
            "platform" => &mut request.platform,
            "reply_id" => &mut request.reply_id,
            "media_url" => &mut request.media_url,
            "kind" => {
                json.insert(name, Value::String(value));
                continue;
            }
            "view_once" | "location" | "contact_cards" | "poll" => {
                let parsed = serde_json::from_str(&value)
                    .map_err(|e| ApiError::unprocessable(format!("`{name}` is not JSON: {e}")))?;
                json.insert(name, parsed);
                continue;
            }
            other => return Err(ApiError::unprocessable(format!("unknown field `{other}`"))),
        };
        *slot = Some(value);
    }
    if !json.is_empty() {
        let mut described: MessageJson =
            serde_json::from_value(Value::Object(json)).map_err(|e| ApiError::unprocessable(e.to_string()))?;
        request.structured = described.structured()?;
        (request.kind, request.view_once) = (described.kind, described.view_once);
    }
    Ok(request)
}
