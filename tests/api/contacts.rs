//! Which numbers are on WhatsApp, asked of the simulated network: one query for a batch,
//! answers kept, the rate limit per token.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::{Options, TestApp, expect, expect_error, link_device};

const DEVICE: &str = "237600000481";

async fn checks(app: &TestApp) -> Vec<Value> {
    let shown = expect(app.request(Method::GET, &format!("/sim/signals?device_id={DEVICE}")), StatusCode::OK).await;
    shown.as_array().unwrap().iter().filter(|s| s["kind"] == "numbers_checked").cloned().collect()
}

#[tokio::test]
async fn fifty_numbers_are_checked_in_one_query_and_answered_again_from_what_was_kept() {
    let app = TestApp::with(Options { checks_per_minute: 110, ..Options::default() }).await;
    let token = app.token_with_device(DEVICE).await;
    for business in ["237698700810", "237698700811"] {
        expect(app.request(Method::POST, "/sim/business").json(&json!({ "phone": business })), StatusCode::OK).await;
    }
    // 40 on WhatsApp (2 of them businesses, some written with +), 10 not.
    let mut phones: Vec<String> = (0..40).map(|n| format!("2376987008{n:02}")).collect();
    for phone in phones.iter_mut().step_by(7) {
        phone.insert(0, '+');
    }
    phones.extend((0..10).map(|n| format!("0002376987009{n:02}")));
    let check = |phones: &[String]| {
        let path = format!("/api/v1/devices/{DEVICE}/contacts/check");
        app.bearer(Method::POST, &path, &token).json(&json!({ "phones": phones }))
    };

    let answer = expect(check(&phones), StatusCode::OK).await;
    let results = answer["results"].as_array().unwrap();
    assert_eq!(results.len(), 50);
    for (result, phone) in results.iter().zip(&phones) {
        let digits = phone.trim_start_matches('+');
        let on = !digits.starts_with("000");
        let business = matches!(digits, "237698700810" | "237698700811");
        let jid = on.then(|| format!("{digits}@s.whatsapp.net"));
        assert_eq!(result, &json!({ "phone": phone, "on_whatsapp": on, "jid": jid, "business": business }));
    }
    assert_eq!(checks(&app).await, [json!({ "kind": "numbers_checked", "count": 50 })], "one query for the batch");

    // The same list again costs the network nothing; one new number costs one query of one.
    assert_eq!(expect(check(&phones), StatusCode::OK).await, answer);
    let mut more = phones[..0].to_vec();
    more.push("237698700899".into());
    let one = expect(check(&more), StatusCode::OK).await;
    assert_eq!(one["results"][0]["on_whatsapp"], true);
    assert_eq!(checks(&app).await.iter().map(|c| c["count"].as_u64().unwrap()).collect::<Vec<_>>(), [50, 1]);

    // Refusals change nothing; the token's allowance (110 a minute, 101 used) runs out.
    let refused =
        [json!([]), json!(["not a number"]), json!((0..501).map(|n| format!("237698701{n:03}")).collect::<Vec<_>>())];
    for phones in refused {
        let path = format!("/api/v1/devices/{DEVICE}/contacts/check");
        let request = app.bearer(Method::POST, &path, &token).json(&json!({ "phones": phones }));
        expect_error(request, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    }
    expect_error(check(&phones[..10]), StatusCode::TOO_MANY_REQUESTS, "rate_limited").await;
    let stranger = app.admin_token(false).await["token"].as_str().unwrap().to_owned();
    let theirs = app
        .bearer(Method::POST, &format!("/api/v1/devices/{DEVICE}/contacts/check"), &stranger)
        .json(&json!({ "phones": ["237698700801"] }));
    expect_error(theirs, StatusCode::NOT_FOUND, "not_found").await;
    assert_eq!(checks(&app).await.len(), 2);
}

#[tokio::test]
async fn a_device_sets_its_profile_and_another_sees_it_and_the_contacts_its_chats_know() {
    use base64::Engine;
    use base64::engine::general_purpose::STANDARD;
    const SHOP: &str = "237600000482";
    const CONTACT: &str = "237698700482";
    let app = TestApp::start().await;
    let token = app.token_with_device(DEVICE).await;
    link_device(&app, &token, SHOP).await;
    let on = |device: &str, path: &str| format!("/api/v1/devices/{device}/{path}");

    let png = mxgate_bridge::qr::png("shop logo").unwrap();
    let change = json!({ "push_name": "Ada's Shop", "about": "Open 9 to 5", "picture_base64": STANDARD.encode(&png) });
    let profile = expect(app.bearer(Method::PUT, &on(SHOP, "profile"), &token).json(&change), StatusCode::OK).await;
    assert_eq!((&profile["push_name"], &profile["about"]), (&json!("Ada's Shop"), &json!("Open 9 to 5")));
    let url = profile["picture_url"].as_str().expect("a picture").to_owned();
    let jpeg = app.request(Method::GET, &url).send().await.unwrap().bytes().await.unwrap();
    let picture = image::load_from_memory_with_format(&jpeg, image::ImageFormat::Jpeg).expect("sent as a JPEG");
    assert!(picture.width() <= 640 && picture.height() <= 640);
    assert_eq!(expect(app.bearer(Method::GET, &on(SHOP, "profile"), &token), StatusCode::OK).await, profile);

    let seen = expect(app.bearer(Method::GET, &on(DEVICE, &format!("contacts/{SHOP}")), &token), StatusCode::OK).await;
    assert_eq!((&seen["about"], &seen["picture_url"]), (&profile["about"], &profile["picture_url"]));
    assert_eq!(seen["jid"], format!("{SHOP}@s.whatsapp.net"));

    // Only a change that is whole goes out.
    for bad in [
        json!({ "push_name": " " }),
        json!({ "about": "x".repeat(140) }),
        json!({ "picture_base64": "bm90IGEgcGljdHVyZQ==" }),
    ] {
        let request = app.bearer(Method::PUT, &on(SHOP, "profile"), &token).json(&bad);
        expect_error(request, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    }
    assert_eq!(expect(app.bearer(Method::GET, &on(SHOP, "profile"), &token), StatusCode::OK).await, profile);
    let not_a_number = app.bearer(Method::GET, &on(DEVICE, "contacts/someone"), &token);
    expect_error(not_a_number, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;

    app.inject(DEVICE, CONTACT, json!({ "text": "hello" })).await;
    let known = crate::common::eventually("the contact's chat", || async {
        let known = expect(app.bearer(Method::GET, &on(DEVICE, "contacts"), &token), StatusCode::OK).await;
        (known["contacts"].as_array()?.len() == 1).then_some(known)
    })
    .await;
    let chat = format!("{CONTACT}@s.whatsapp.net");
    assert_eq!(
        known["contacts"],
        json!([{ "phone": CONTACT, "jid": chat, "name": format!("Contact {CONTACT}"), "chat_id": chat }])
    );
}
