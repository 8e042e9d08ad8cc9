//! Every kind of message, both ways, on the simulated network: files by URL, inline and
//! by kind (voice note, sticker, document, view-once), locations, contact cards and polls.
//! The network records exactly what it was sent; the webhook gets what the contact sent.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::{TestApp, WebhookReceiver, expect, expect_error, link_device};

const DEVICE: &str = "237600000421";
const CONTACT: &str = "237698700421";

fn vcard(name: &str, phone: &str) -> String {
    format!("BEGIN:VCARD\nVERSION:3.0\nFN:{name}\nTEL;type=CELL;waid={phone}:+{phone}\nEND:VCARD")
}

/// Serves `body` as `mime_type` at `/<name>` on a free loopback port, for `media_url`.
async fn serve_file(name: &str, mime_type: &'static str, body: Vec<u8>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/{name}", listener.local_addr().unwrap());
    let app = axum::Router::new().route(
        &format!("/{name}"),
        axum::routing::get(move || async move { ([(axum::http::header::CONTENT_TYPE, mime_type)], body) }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

#[tokio::test]
async fn every_kind_goes_out_as_the_network_shows_it_and_bad_combinations_change_nothing() {
    let app = TestApp::start().await;
    let issued = app.admin_token(false).await;
    let (token, identity) = (issued["token"].as_str().unwrap().to_owned(), issued["matrix_user_id"].as_str().unwrap());
    link_device(&app, &token, DEVICE).await;
    let send = |body: Value| app.bearer(Method::POST, &format!("/api/v1/devices/{DEVICE}/message"), &token).json(&body);

    let refused = [
        json!({ "contact": CONTACT, "text": "here", "location": { "latitude": 4.05, "longitude": 9.76 } }),
        json!({ "contact": CONTACT, "location": { "latitude": 91, "longitude": 9.76 } }),
        json!({ "contact": CONTACT, "location": { "latitude": 4, "longitude": 9, "altitude": 3 } }),
        json!({ "contact": CONTACT, "poll": { "question": "Lunch?", "options": ["Eru"] } }),
        json!({ "contact": CONTACT, "poll": { "question": "Lunch?", "options": ["Eru", "Eru"] } }),
        json!({ "contact": CONTACT, "poll": { "question": " ", "options": ["a", "b"] } }),
        json!({ "contact": CONTACT, "contact_cards": [] }),
        json!({ "contact": CONTACT, "contact_cards": [{ "vcard": "FN:nobody" }] }),
        json!({ "contact": CONTACT, "contact_cards": [{ "vcard": vcard("A", "1") }], "poll": { "question": "q", "options": ["a", "b"] } }),
        json!({ "contact": CONTACT, "media_base64": "AAAA", "mime_type": "audio/mpeg", "kind": "voice" }),
        json!({ "contact": CONTACT, "media_base64": "AAAA", "mime_type": "image/png", "kind": "sticker" }),
        json!({ "contact": CONTACT, "media_base64": "AAAA", "mime_type": "application/pdf", "view_once": true }),
        json!({ "contact": CONTACT, "media_base64": "not base64!", "mime_type": "image/png" }),
        json!({ "contact": CONTACT, "media_base64": "AAAA" }),
        json!({ "contact": CONTACT, "text": "hi", "mime_type": "image/png" }),
        json!({ "contact": CONTACT, "text": "hi", "kind": "voice" }),
        json!({ "contact": CONTACT, "media_url": "http://10.1.2.3/photo.png" }),
        json!({ "contact": CONTACT, "media_url": "ftp://example.com/photo.png" }),
        json!({ "contact": CONTACT, "media_url": "https://x.test/a.png", "media_base64": "AAAA", "mime_type": "image/png" }),
        json!({ "contact": CONTACT, "kind": "hologram", "media_base64": "AAAA", "mime_type": "image/png" }),
    ];
    for body in refused {
        let error = expect_error(send(body.clone()), StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
        assert!(!error["message"].as_str().unwrap().is_empty(), "{body} → {error}");
    }
    assert_eq!(app.sim_outbox(DEVICE).await, Vec::<Value>::new(), "nothing refused was sent");

    let png = mxgate_bridge::qr::png("a view-once picture").unwrap();
    let pdf = b"%PDF-1.4 menu".to_vec();
    let menu_url = serve_file("menu.pdf", "application/pdf", pdf.clone()).await;
    let (ada, bob) = (vcard("Ada Lovelace", "237677700001"), vcard("Bob Ndi", "237677700002"));
    let sends = [
        json!({ "location": { "latitude": 4.0511, "longitude": 9.7679, "name": "Douala Grand Mall", "address": "Bd de la Liberté" } }),
        json!({ "contact_cards": [{ "vcard": ada }, { "vcard": bob }] }),
        json!({ "poll": { "question": "Lunch?", "options": ["Ndolé", "Eru", "Poulet DG"], "multiple": true } }),
        json!({ "media_base64": STANDARD.encode(&png), "file_name": "once.png", "view_once": true, "text": "just once" }),
        json!({ "media_base64": STANDARD.encode(b"OggS voice"), "mime_type": "audio/ogg; codecs=opus", "kind": "voice" }),
        json!({ "media_base64": STANDARD.encode(b"RIFF webp"), "mime_type": "image/webp", "kind": "sticker" }),
        json!({ "media_base64": STANDARD.encode(&png), "mime_type": "image/png", "file_name": "scan.png", "kind": "document" }),
        json!({ "media_url": menu_url, "text": "today's menu" }),
    ];
    for mut body in sends {
        body["contact"] = json!(CONTACT);
        let sent = expect(send(body.clone()), StatusCode::OK).await;
        assert_eq!(sent["results"][0]["status"], "sent", "{body} → {sent}");
    }
    app.quiet().await;

    let sent = app.sim_outbox(DEVICE).await;
    assert_eq!(sent.len(), 8, "{sent:?}");
    assert_eq!(
        sent[0]["location"],
        json!({ "latitude": 4.0511, "longitude": 9.7679, "name": "Douala Grand Mall", "address": "Bd de la Liberté" })
    );
    assert_eq!(
        sent[1]["contact_cards"],
        json!([{ "display_name": "Ada Lovelace", "vcard": ada }, { "display_name": "Bob Ndi", "vcard": bob }])
    );
    assert_eq!(
        sent[2]["poll"],
        json!({ "question": "Lunch?", "options": ["Ndolé", "Eru", "Poulet DG"], "multiple": true })
    );
    let media = |n: usize| sent[n]["media"].clone();
    assert_eq!((media(3)["kind"].clone(), media(3)["view_once"].clone()), (json!("image"), json!(true)));
    assert_eq!(sent[3]["text"], "just once");
    assert_eq!(STANDARD.decode(media(3)["base64"].as_str().unwrap()).unwrap(), png);
    assert_eq!(
        (media(4)["kind"].clone(), media(4)["mime_type"].clone()),
        (json!("voice"), json!("audio/ogg; codecs=opus"))
    );
    assert_eq!(media(5)["kind"], "sticker");
    assert_eq!((media(6)["kind"].clone(), media(6)["file_name"].clone()), (json!("document"), json!("scan.png")));
    assert_eq!((media(7)["kind"].clone(), media(7)["file_name"].clone()), (json!("document"), json!("menu.pdf")));
    assert_eq!(STANDARD.decode(media(7)["base64"].as_str().unwrap()).unwrap(), pdf);
    assert_eq!(sent[7]["text"], "today's menu");

    // A Matrix client sees each in its Matrix form.
    let mut types = Vec::new();
    for room in app.joined_rooms(identity).await {
        types.extend(app.room_event_types(identity, &room).await);
    }
    assert!(types.contains(&"org.matrix.msc3381.poll.start".to_owned()), "{types:?}");
    assert!(types.contains(&"m.sticker".to_owned()), "{types:?}");
}

#[tokio::test]
async fn a_multipart_send_takes_kind_and_json_fields_too() {
    let app = TestApp::start().await;
    let token = app.token_with_device(DEVICE).await;
    let url = format!("/api/v1/devices/{DEVICE}/message");
    let voice = reqwest::multipart::Form::new()
        .text("contact", CONTACT)
        .text("kind", "voice")
        .part("file", reqwest::multipart::Part::bytes(b"OggS".to_vec()).file_name("note.ogg"));
    let sent = expect(app.bearer(Method::POST, &url, &token).multipart(voice), StatusCode::OK).await;
    assert_eq!(sent["results"][0]["status"], "sent", "{sent}");
    let poll = reqwest::multipart::Form::new()
        .text("contact", CONTACT)
        .text("poll", json!({ "question": "Tea?", "options": ["yes", "no"] }).to_string());
    let sent = expect(app.bearer(Method::POST, &url, &token).multipart(poll), StatusCode::OK).await;
    assert_eq!(sent["results"][0]["status"], "sent", "{sent}");
    let broken = reqwest::multipart::Form::new().text("contact", CONTACT).text("location", "{not json");
    expect_error(
        app.bearer(Method::POST, &url, &token).multipart(broken),
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    app.quiet().await;

    let sent = app.sim_outbox(DEVICE).await;
    assert_eq!(sent.len(), 2, "{sent:?}");
    assert_eq!(sent[0]["media"]["kind"], "voice");
    assert_eq!(sent[1]["poll"], json!({ "question": "Tea?", "options": ["yes", "no"], "multiple": false }));
}

#[tokio::test]
async fn a_contacts_location_cards_poll_and_view_once_picture_reach_the_webhook_and_a_matrix_client_sends_them_back() {
    let app = TestApp::start().await;
    let issued = app.admin_token(false).await;
    let token = issued["token"].as_str().unwrap().to_owned();
    link_device(&app, &token, DEVICE).await;
    let receiver = WebhookReceiver::start().await;
    app.add_webhook(&token, &receiver.url).await;

    let location = json!({ "latitude": -33.8568, "longitude": 151.2153, "name": "Opera House", "address": null });
    let cards = json!([{ "display_name": "Ada", "vcard": vcard("Ada", "237677700001") }]);
    let poll = json!({ "question": "Which day?", "options": ["Mon", "Tue"], "multiple": false });
    let png = mxgate_bridge::qr::png("once").unwrap();
    let picture =
        json!({ "base64": STANDARD.encode(&png), "mime_type": "image/png", "file_name": "p.png", "view_once": true });
    for body in [
        json!({ "location": location }),
        json!({ "contact_cards": cards }),
        json!({ "poll": poll }),
        json!({ "media": picture }),
    ] {
        let mut body = body;
        body["device_id"] = json!(DEVICE);
        body["from"] = json!(CONTACT);
        expect(app.request(Method::POST, "/sim/incoming").json(&body), StatusCode::OK).await;
    }
    let got: Vec<Value> = receiver.wait_for(4).await.iter().map(|d| d.json()).collect();
    assert_eq!((got[0]["type"].clone(), got[0]["location"].clone()), (json!("m.location"), location.clone()));
    assert_eq!((got[1]["type"].clone(), got[1]["contact_cards"].clone()), (json!("m.file"), cards.clone()));
    assert_eq!(got[1]["media"]["info"]["mime_type"], "text/vcard");
    assert_eq!(
        (got[2]["type"].clone(), got[2]["poll"].clone()),
        (json!("org.matrix.msc3381.poll.start"), poll.clone())
    );
    assert_eq!((got[3]["type"].clone(), got[3]["view_once"].clone()), (json!("m.image"), json!(true)));
    for payload in &got {
        assert_eq!(payload["event"], "message", "{payload}");
    }

    // The identity answers from a Matrix client with its own poll and location.
    let client = app.matrix_client(&token).await;
    let room = client.joined_rooms().into_iter().next().expect("the contact's portal");
    let matrix_poll = json!({
        "org.matrix.msc3381.poll.start": {
            "question": { "org.matrix.msc1767.text": "Mon at 9?" },
            "kind": "org.matrix.msc3381.poll.disclosed",
            "max_selections": 1,
            "answers": [{ "id": "y", "org.matrix.msc1767.text": "yes" }, { "id": "n", "org.matrix.msc1767.text": "no" }],
        },
        "org.matrix.msc1767.text": "Mon at 9?\n1. yes\n2. no",
    });
    room.send_raw("org.matrix.msc3381.poll.start", matrix_poll).await.unwrap();
    let here = json!({ "msgtype": "m.location", "body": "Here", "geo_uri": "geo:4.05,9.76" });
    room.send_raw("m.room.message", here).await.unwrap();
    crate::common::eventually("both at the network", || async {
        (app.sim_outbox(DEVICE).await.len() == 2).then_some(())
    })
    .await;
    app.quiet().await;
    let sent = app.sim_outbox(DEVICE).await;
    assert_eq!(sent[0]["poll"], json!({ "question": "Mon at 9?", "options": ["yes", "no"], "multiple": false }));
    assert_eq!(sent[1]["location"], json!({ "latitude": 4.05, "longitude": 9.76, "name": null, "address": null }));

    // What the contact sent, forwarded to another contact and to a group.
    let group = expect(
        app.request(Method::POST, "/sim/groups").json(&json!({ "name": "Team", "members": [CONTACT] })),
        StatusCode::OK,
    )
    .await;
    let forward = |event: &Value, body: Value| {
        let path = format!("/api/v1/devices/{DEVICE}/messages/{}/forward", event.as_str().unwrap());
        app.bearer(Method::POST, &path, &token).json(&body)
    };
    let to_both = json!({ "group_url": group["invite_url"] });
    for payload in &got {
        let answer = expect(forward(&payload["id"], to_both.clone()), StatusCode::OK).await;
        assert_eq!(answer["results"][0]["status"], "sent", "{answer}");
    }
    let answer = expect(forward(&got[3]["id"], json!({ "contact": "237698700499" })), StatusCode::OK).await;
    assert_eq!(answer["results"][0]["status"], "sent", "{answer}");
    expect_error(forward(&got[0]["id"], json!({})), StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    expect_error(forward(&json!("$nothing:mxgate.test"), to_both.clone()), StatusCode::NOT_FOUND, "not_found").await;
    app.quiet().await;

    let sent = app.sim_outbox(DEVICE).await;
    let forwarded = &sent[2..];
    assert_eq!(forwarded.len(), 5, "{forwarded:?}");
    assert!(forwarded.iter().all(|m| m["forwarded"] == true), "{forwarded:?}");
    assert_eq!(forwarded[0]["location"], location);
    assert_eq!(forwarded[1]["contact_cards"], cards);
    assert_eq!(forwarded[2]["poll"], poll);
    assert_eq!(STANDARD.decode(forwarded[3]["media"]["base64"].as_str().unwrap()).unwrap(), png);
    assert_eq!(forwarded[3]["media"]["view_once"], true);
    assert_eq!(
        (forwarded[4]["to"].clone(), forwarded[4]["forwarded"].clone()),
        (json!("237698700499@s.whatsapp.net"), json!(true))
    );
}
