//! `mxgate send`: a message from a linked device, one result line per recipient.

use std::path::Path;
use std::process::ExitCode;

use serde::Deserialize;
use serde_json::{Map, Value};

use super::api::Api;
use super::multipart::Form;
use super::{CliError, SendArgs};

#[derive(Deserialize)]
struct MessageSent {
    results: Vec<RecipientResult>,
}

#[derive(Deserialize)]
struct RecipientResult {
    recipient: String,
    status: String,
    message_id: Option<String>,
    error: Option<String>,
}

struct File {
    name: String,
    mime_type: String,
    data: Vec<u8>,
}

pub async fn run(args: SendArgs) -> Result<ExitCode, CliError> {
    // A wrong path is told before the token is asked for.
    let file = args.file.as_deref().map(read).transpose()?;
    let api = Api::new(&args.connection)?;
    let mut fields = Vec::new();
    if !args.to.is_empty() {
        fields.push(("contact", args.to.join(",")));
    }
    if !args.group_url.is_empty() {
        fields.push(("group_url", args.group_url.join(",")));
    }
    if let Some(text) = args.text {
        fields.push(("text", text));
    }
    let path = ["devices", args.device.as_str(), "message"];
    let sent: MessageSent = match file {
        // A file goes as multipart, which the API takes up to its whole file size limit.
        Some(file) => {
            let mut form = Form::new();
            for (name, value) in &fields {
                form.text(name, value);
            }
            form.file("file", &file.name, &file.mime_type, &file.data);
            let (content_type, body) = form.finish();
            api.post_body(&path, &content_type, body).await?
        }
        None => {
            let body: Map<String, Value> = fields.into_iter().map(|(k, v)| (k.to_owned(), Value::String(v))).collect();
            api.post_json(&path, &Value::Object(body)).await?
        }
    };
    for result in &sent.results {
        println!("{}", line(result));
    }
    if sent.results.iter().any(|r| r.status == "sent") {
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!("mxgate: no recipient was sent the message");
        Ok(ExitCode::FAILURE)
    }
}

fn read(path: &Path) -> Result<File, CliError> {
    let data = std::fs::read(path).map_err(|source| CliError::File { path: path.to_owned(), source })?;
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let mime_type = mime_guess::from_path(path).first_or_octet_stream().to_string();
    Ok(File { name, mime_type, data })
}

/// `recipient  status  message id or error`.
fn line(result: &RecipientResult) -> String {
    let detail = result.error.as_deref().or(result.message_id.as_deref()).unwrap_or_default();
    format!("{}  {:<7}  {detail}", result.recipient, result.status).trim_end().to_owned()
}
