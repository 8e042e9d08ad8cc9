//! What a conversation reads back as, from Matrix, through the chats API: shared by the
//! `sim` and the whatsapp-connector stories, which hold the same conversation each their
//! own way.

use std::collections::BTreeSet;

use reqwest::{Method, StatusCode};
use serde_json::Value;

use super::{TestApp, expect, expect_error};

/// A conversation as its test made it: every Matrix event id, by who wrote it, in the
/// order each side wrote.
pub struct Conversation {
    pub device: String,
    /// The conversation's chat, and a chat whose last message is older.
    pub chat: String,
    pub older_chat: String,
    /// The contact's messages, reactions and edit, as the webhook delivered them.
    pub contact: Vec<Value>,
    /// The device's sends (their `event_id`s).
    pub device_events: Vec<String>,
    /// A word only one message of the contact's has, and that message's event id.
    pub word: (String, String),
    /// The contact's picture: its event id and bytes.
    pub image: (String, Vec<u8>),
    /// The text of the conversation's last message, the contact's.
    pub last_text: String,
}

/// A payload as history gives it: webhooks carry the file inline, history by `media.url`.
fn without_file(payload: &Value) -> Value {
    let mut payload = payload.clone();
    if let Some(media) = payload.get_mut("media") {
        media["content"] = Value::Null;
    }
    payload
}

/// The chat list, history (paged back to the start), search and the picture's download
/// all tell `conversation` as it happened.
pub async fn reads_back(app: &TestApp, token: &str, conversation: &Conversation) {
    let device = &conversation.device;
    let get = |path: String| app.bearer(Method::GET, &format!("/api/v1/devices/{device}/{path}"), token);

    let list = expect(get("chats?limit=1".into()), StatusCode::OK).await;
    let first = &list["chats"][0];
    assert_eq!((&first["chat_id"], &first["type"]), (&conversation.chat.as_str().into(), &"direct".into()), "{list}");
    assert_eq!(first["last_message"]["message"], conversation.last_text.as_str(), "{first}");
    let unread = conversation.contact.iter().filter(|p| p["event"] == "message").count();
    assert_eq!(first["unread"], unread, "every message of the contact is unread");
    let cursor = list["next_cursor"].as_str().expect("a second page").to_owned();
    let rest = expect(get(format!("chats?cursor={}", urlencoding(&cursor))), StatusCode::OK).await;
    let older: Vec<&Value> = rest["chats"].as_array().unwrap().iter().map(|c| &c["chat_id"]).collect();
    assert_eq!(older, [conversation.older_chat.as_str()], "{rest}");
    assert!(rest["next_cursor"].is_null());

    // Back through the whole chat, 50 at a time.
    let chat = &conversation.chat;
    let mut history: Vec<Value> = Vec::new();
    let mut page = expect(get(format!("chats/{chat}/messages")), StatusCode::OK).await;
    loop {
        let messages = page["messages"].as_array().unwrap();
        assert!(messages.len() <= 50);
        history.splice(0..0, messages.iter().cloned());
        let Some(before) = page["before"].as_str().filter(|_| !messages.is_empty()) else { break };
        page = expect(get(format!("chats/{chat}/messages?before={}", urlencoding(before))), StatusCode::OK).await;
    }
    let ids: Vec<&str> = history.iter().map(|m| m["id"].as_str().unwrap()).collect();
    let unique: BTreeSet<&str> = ids.iter().copied().collect();
    assert_eq!((ids.len(), unique.len()), (120, 120), "no gap, no repeat");
    let theirs: Vec<&Value> = history.iter().filter(|m| m["from_me"] != true).collect();
    let expected: Vec<Value> = conversation.contact.iter().map(without_file).collect();
    assert_eq!(theirs.len(), expected.len());
    for (read, delivered) in theirs.iter().zip(&expected) {
        assert_eq!(*read, delivered, "the webhook's shape, in the contact's order");
    }
    let mine: Vec<&str> = history.iter().filter(|m| m["from_me"] == true).map(|m| m["id"].as_str().unwrap()).collect();
    assert_eq!(mine, conversation.device_events, "the device's sends, in order");
    assert!(history.iter().filter(|m| m["from_me"] == true).all(|m| m["event"] == "message.sent"));
    // Paging forward from the first page's start reaches nothing newer.
    let after = page["after"].as_str().unwrap().to_owned();
    let forward =
        expect(get(format!("chats/{chat}/messages?after={}&limit=100", urlencoding(&after))), StatusCode::OK).await;
    let forward_ids: Vec<&str> =
        forward["messages"].as_array().unwrap().iter().map(|m| m["id"].as_str().unwrap()).collect();
    assert_eq!(forward_ids, ids[..forward_ids.len()], "forward from the oldest page goes on in order");

    let (word, holder) = &conversation.word;
    let found = expect(get(format!("search?q={word}")), StatusCode::OK).await;
    let hits: Vec<&Value> = found["results"].as_array().unwrap().iter().map(|r| &r["id"]).collect();
    assert_eq!(hits, [holder.as_str()], "{found}");
    let in_chat = expect(get(format!("search?q={word}&chat_id={}", conversation.older_chat)), StatusCode::OK).await;
    assert_eq!(in_chat["results"], serde_json::json!([]));

    let (image, bytes) = &conversation.image;
    let file = get(format!("media/{image}")).send().await.unwrap();
    assert_eq!(file.status(), StatusCode::OK);
    assert_eq!(file.headers()["content-type"], "image/png");
    assert_eq!(file.headers()["content-length"], bytes.len().to_string().as_str());
    assert!(file.headers()["content-disposition"].to_str().unwrap().starts_with("attachment; filename="));
    assert_eq!(file.bytes().await.unwrap().as_ref(), bytes.as_slice(), "byte-identical");
    let thumbnail = get(format!("media/{image}?thumbnail=16x16")).send().await.unwrap();
    assert_eq!(thumbnail.status(), StatusCode::OK);
    assert!(thumbnail.headers()["content-type"].to_str().unwrap().starts_with("image/"));
    let text = &conversation.device_events[0];
    expect_error(get(format!("media/{text}")), StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;

    // Refusals.
    expect_error(get("chats?cursor=nonsense".into()), StatusCode::BAD_REQUEST, "bad_request").await;
    expect_error(get("chats?limit=0".into()), StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    expect_error(get(format!("chats/{chat}/messages?before=nonsense")), StatusCode::BAD_REQUEST, "bad_request").await;
    expect_error(get("chats/237699999999/messages".into()), StatusCode::NOT_FOUND, "not_found").await;
    expect_error(get("search?q=".into()), StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    expect_error(get("media/$unknown:mxgate.test".into()), StatusCode::NOT_FOUND, "not_found").await;
    let stranger = app.admin_token(false).await["token"].as_str().unwrap().to_owned();
    let theirs = app.bearer(Method::GET, &format!("/api/v1/devices/{device}/chats"), &stranger);
    expect_error(theirs, StatusCode::NOT_FOUND, "not_found").await;
}

fn urlencoding(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}
