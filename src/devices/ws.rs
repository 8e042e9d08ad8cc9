//! The QR WebSocket: relays a login's steps from the bridge as JSON frames
//! (`qr` as codes rotate, then `success`, `timeout` or `error`) and closes.

use axum::extract::ws::{CloseFrame, Message, WebSocket};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use reqwest::Method;
use ruma::OwnedUserId;
use serde_json::{Value, json};

use crate::bridge_client::{BridgeCallError, segment};
use crate::state::AppState;

pub async fn relay(state: AppState, user: OwnedUserId, mut socket: WebSocket) {
    let last = match stream_login(&state, &user, &mut socket).await {
        Ok(last) => last,
        Err(frame) => frame,
    };
    let _ = socket.send(Message::text(last.to_string())).await;
    let close = CloseFrame { code: axum::extract::ws::close_code::NORMAL, reason: "login finished".into() };
    let _ = socket.send(Message::Close(Some(close))).await;
}

/// Sends every QR frame; returns the final frame (success, timeout or error).
async fn stream_login(state: &AppState, user: &OwnedUserId, socket: &mut WebSocket) -> Result<Value, Value> {
    let error = |message: String| json!({ "type": "error", "message": message });
    let failed = |e: BridgeCallError| {
        tracing::warn!(error = %e, "a QR login failed in the bridge");
        error(e.client_message())
    };
    let mut step = state.bridge.call(Method::POST, "login/start/qr", user, &[], None).await.map_err(failed)?;
    let process = step["login_id"].as_str().unwrap_or_default().to_owned();
    loop {
        match step["type"].as_str() {
            Some("display_and_wait") => {
                let code = step["display_and_wait"]["data"].as_str().unwrap_or_default();
                let png = mxgate_bridge::qr::png(code).map_err(error)?;
                let frame = json!({ "type": "qr", "code": code, "png_base64": STANDARD.encode(png) });
                if socket.send(Message::text(frame.to_string())).await.is_err() {
                    // The client went away: stop the login rather than leave it waiting.
                    let path = format!("login/cancel/{}", segment(&process));
                    let _ = state.bridge.call(Method::POST, &path, user, &[], None).await;
                    return Err(error("client disconnected".into()));
                }
            }
            Some("complete") => {
                let device_id = step["complete"]["user_login_id"].clone();
                return Ok(json!({ "type": "success", "device_id": device_id }));
            }
            _ => return Err(error("the bridge answered with an unknown login step".into())),
        }
        let path =
            format!("login/step/{}/{}/display_and_wait", segment(&process), mxgate_bridge::provisioning::QR_STEP);
        step = match state.bridge.call(Method::POST, &path, user, &[], None).await {
            Ok(next) => next,
            Err(BridgeCallError::Refused { status: 410, message, .. }) => {
                return Err(json!({ "type": "timeout", "message": message }));
            }
            Err(e) => return Err(failed(e)),
        };
    }
}
