use std::collections::HashSet;
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::{Options, TestApp, WebhookReceiver, eventually, expect, expect_error};

const DEVICE: &str = "237600000020";
const CONTACT: &str = "237698000020";

/// A token with a linked device and a webhook to a receiver of its own.
struct Hooked {
    app: TestApp,
    token: String,
    receiver: WebhookReceiver,
    webhook_id: String,
}

impl Hooked {
    async fn start(options: Options) -> Self {
        let app = TestApp::with(options).await;
        let token = app.token_with_device(DEVICE).await;
        let receiver = WebhookReceiver::start().await;
        let webhook_id = app.add_webhook(&token, &receiver.url).await["id"].as_str().unwrap().to_owned();
        Self { app, token, receiver, webhook_id }
    }

    /// A contact writes `text` to the device.
    async fn incoming(&self, text: &str) {
        let body = json!({ "device_id": DEVICE, "from": CONTACT, "text": text });
        expect(self.app.request(Method::POST, "/sim/incoming").json(&body), StatusCode::OK).await;
    }

    fn path(&self, tail: &str) -> String {
        format!("/api/v1/webhooks/{}{tail}", self.webhook_id)
    }

    /// The whole delivery log, one page of 500.
    async fn log(&self) -> Vec<Value> {
        let log =
            expect(self.app.bearer(Method::GET, &self.path("/deliveries?limit=500"), &self.token), StatusCode::OK)
                .await;
        log.as_array().unwrap().clone()
    }

    /// Waits until the log holds `count` deliveries that all satisfy `settled`. Patient:
    /// events cross the bridge and Synapse first, which a busy machine slows down.
    async fn log_settles(&self, what: &str, count: usize, settled: impl Fn(&Value) -> bool) -> Vec<Value> {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let log = self.log().await;
            if log.len() == count && log.iter().all(&settled) {
                return log;
            }
            assert!(Instant::now() < deadline, "gave up waiting for {what}; the log: {log:#?}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

fn texts(received: &[crate::common::Received]) -> Vec<String> {
    received.iter().map(|r| r.json()["message"].as_str().unwrap().to_owned()).collect()
}

fn status_is(status: &'static str) -> impl Fn(&Value) -> bool {
    move |delivery| delivery["status"] == status
}

#[tokio::test]
async fn a_token_manages_its_webhooks_and_sees_the_secret_once() {
    let app = TestApp::start().await;
    let token = app.admin_token(false).await["token"].as_str().unwrap().to_owned();
    let created = expect(
        app.bearer(Method::POST, "/api/v1/webhooks", &token).json(&json!({ "url": "http://127.0.0.1:9/hook" })),
        StatusCode::CREATED,
    )
    .await;
    assert_eq!(created["message"], "Webhook created");
    assert_eq!(created["active"], true);
    assert!(created["secret"].as_str().unwrap().len() >= 43);
    let id = created["id"].as_str().unwrap();

    let listed = expect(app.bearer(Method::GET, "/api/v1/webhooks", &token), StatusCode::OK).await;
    assert_eq!(listed.as_array().unwrap().len(), 1);
    assert!(listed[0].get("secret").is_none());

    let path = format!("/api/v1/webhooks/{id}");
    let paused = expect(app.bearer(Method::PUT, &path, &token).json(&json!({ "active": false })), StatusCode::OK).await;
    assert_eq!((paused["active"].clone(), paused["url"].clone()), (json!(false), json!("http://127.0.0.1:9/hook")));
    let moved = expect(
        app.bearer(Method::PUT, &path, &token).json(&json!({ "url": "http://localhost:10/new" })),
        StatusCode::OK,
    )
    .await;
    assert_eq!((moved["active"].clone(), moved["url"].clone()), (json!(false), json!("http://localhost:10/new")));

    expect(app.bearer(Method::DELETE, &path, &token), StatusCode::OK).await;
    expect_error(app.bearer(Method::DELETE, &path, &token), StatusCode::NOT_FOUND, "not_found").await;
    assert_eq!(expect(app.bearer(Method::GET, "/api/v1/webhooks", &token), StatusCode::OK).await, json!([]));
}

/// The delivery `n` of the receiver, once it came.
async fn nth(receiver: &WebhookReceiver, n: usize) -> crate::common::Received {
    receiver.wait_for(n + 1).await[n].clone()
}

#[tokio::test]
async fn deliveries_are_signed_per_standard_webhooks_over_the_timestamp_and_a_rotated_secret_signs_through_its_grace() {
    let app = TestApp::start().await;
    let token = app.token_with_device(DEVICE).await;
    let receiver = WebhookReceiver::start().await;
    let created = app.add_webhook(&token, &receiver.url).await;
    let first = created["secret"].as_str().unwrap().to_owned();
    assert!(first.starts_with("whsec_"), "{first}");
    let hooked = Hooked { app, token, receiver, webhook_id: created["id"].as_str().unwrap().to_owned() };

    hooked.incoming("before the rotation").await;
    let delivery = nth(&hooked.receiver, 0).await;
    assert!(delivery.signed_with(&first));
    // A captured delivery replayed later under a fresh timestamp no longer verifies.
    let mut replayed = delivery.clone();
    let later = (delivery.header("webhook-timestamp").parse::<i64>().unwrap() + 600).to_string();
    for name in ["webhook-timestamp", "x-mxgate-timestamp"] {
        replayed.headers.insert(name, later.parse().unwrap());
    }
    assert!(!replayed.signed_with(&first), "the timestamp is signed");

    let rotate = hooked.path("/rotate-secret");
    let rotated = expect(hooked.app.bearer(Method::POST, &rotate, &hooked.token), StatusCode::OK).await;
    let second = rotated["secret"].as_str().unwrap().to_owned();
    assert!(second.starts_with("whsec_") && second != first, "{rotated}");
    let at = |field: &str| chrono::DateTime::parse_from_rfc3339(rotated[field].as_str().unwrap()).unwrap();
    let grace = at("previous_secret_expires_at") - at("updated_at");
    assert_eq!(grace.num_seconds(), 86_400, "a day's grace by default: {rotated}");
    hooked.incoming("within the grace period").await;
    let delivery = nth(&hooked.receiver, 1).await;
    assert!(delivery.signed_with(&second) && delivery.signed_with(&first), "both secrets sign");

    let body = json!({ "grace_seconds": 0 });
    let rotated = expect(hooked.app.bearer(Method::POST, &rotate, &hooked.token).json(&body), StatusCode::OK).await;
    let third = rotated["secret"].as_str().unwrap().to_owned();
    // Bad input changes nothing: the third secret stays the only one.
    for (body, status) in [
        (json!({ "grace_seconds": 604_801 }), StatusCode::UNPROCESSABLE_ENTITY),
        (json!({ "grace": 1 }), StatusCode::UNPROCESSABLE_ENTITY),
        (json!({ "grace_seconds": -1 }), StatusCode::UNPROCESSABLE_ENTITY),
    ] {
        let error = expect(hooked.app.bearer(Method::POST, &rotate, &hooked.token).json(&body), status).await;
        assert!(error["message"].as_str().is_some_and(|m| !m.is_empty()), "{error}");
    }
    let unknown = "/api/v1/webhooks/00000000-0000-0000-0000-000000000000/rotate-secret";
    expect_error(hooked.app.bearer(Method::POST, unknown, &hooked.token), StatusCode::NOT_FOUND, "not_found").await;
    hooked.incoming("after the grace period").await;
    let delivery = nth(&hooked.receiver, 2).await;
    assert!(delivery.signed_with(&third));
    assert!(!delivery.signed_with(&second) && !delivery.signed_with(&first), "no grace, no older signature");
}

#[tokio::test]
async fn another_tokens_webhook_is_not_found() {
    let app = TestApp::start().await;
    let owner = app.admin_token(false).await["token"].as_str().unwrap().to_owned();
    let other = app.admin_token(true).await["token"].as_str().unwrap().to_owned();
    let created = expect(
        app.bearer(Method::POST, "/api/v1/webhooks", &owner).json(&json!({ "url": "http://127.0.0.1:9/a" })),
        StatusCode::CREATED,
    )
    .await;
    let path = format!("/api/v1/webhooks/{}", created["id"].as_str().unwrap());
    expect_error(
        app.bearer(Method::PUT, &path, &other).json(&json!({ "active": false })),
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    expect_error(app.bearer(Method::DELETE, &path, &other), StatusCode::NOT_FOUND, "not_found").await;
    assert_eq!(expect(app.bearer(Method::GET, "/api/v1/webhooks", &other), StatusCode::OK).await, json!([]));
    let still = expect(app.bearer(Method::GET, "/api/v1/webhooks", &owner), StatusCode::OK).await;
    assert_eq!(still[0]["active"], true);
}

#[tokio::test]
async fn forbidden_and_malformed_webhook_urls_are_refused_and_a_name_not_live_yet_is_kept_with_a_warning() {
    let app = TestApp::start().await;
    let token = app.admin_token(false).await["token"].as_str().unwrap().to_owned();
    let post = |url: &str| app.bearer(Method::POST, "/api/v1/webhooks", &token).json(&json!({ "url": url }));
    for url in [
        "http://10.0.0.7/hook",
        "http://169.254.169.254/",
        "http://[fd00::1]/",
        "http://192.168.1.1/",
        // Special-purpose ranges beyond the private ones, and IPv4 embedded in IPv6.
        "http://[64:ff9b::a9fe:a9fe]/latest/meta-data",
        "http://[2002:a00:1::]/",
        "http://[::a00:1]/",
        "http://[fec0::1]/",
        "http://198.18.0.1/",
        "http://240.0.0.1/",
        "http://192.0.0.1/",
        "http://[2001:db8::1]/",
    ] {
        let refused = expect_error(post(url), StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
        assert!(refused["message"].as_str().unwrap().contains("does not allow"), "{url}: {refused}");
    }
    for url in ["ftp://127.0.0.1/", "not a url", "http://user:pw@127.0.0.1/"] {
        expect_error(post(url), StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    }
    expect_error(
        app.bearer(Method::POST, "/api/v1/webhooks", &token).json(&json!({})),
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    let created = expect(post("http://127.0.0.1:9/ok"), StatusCode::CREATED).await;
    assert!(created.get("warning").is_none(), "{created}");
    expect_error(post("http://127.0.0.1:9/ok"), StatusCode::CONFLICT, "conflict").await;
    // DNS that is not live yet: kept, with a warning; each delivery checks the name again.
    let pending = expect(post("https://not-live-yet.invalid/hook"), StatusCode::CREATED).await;
    assert!(pending["warning"].as_str().unwrap().contains("does not resolve"), "{pending}");
    let listed = expect(app.bearer(Method::GET, "/api/v1/webhooks", &token), StatusCode::OK).await;
    let urls: HashSet<_> = listed.as_array().unwrap().iter().map(|w| w["url"].as_str().unwrap()).collect();
    assert_eq!(urls, HashSet::from(["http://127.0.0.1:9/ok", "https://not-live-yet.invalid/hook"]), "only those");
    assert!(listed.as_array().unwrap().iter().all(|w| w.get("warning").is_none()));
}

#[tokio::test]
async fn a_proxy_in_the_environment_is_not_used_for_deliveries() {
    // A proxy would connect where the address guard cannot see; this one counts who came.
    let proxy = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let proxy_url = format!("http://{}", proxy.local_addr().unwrap());
    let came = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = came.clone();
    tokio::spawn(async move {
        while let Ok((socket, _)) = proxy.accept().await {
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            drop(socket);
        }
    });
    let mut environment = ["HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"]
        .map(|name| (name, proxy_url.clone()))
        .to_vec();
    // The homeserver and the bridge are at 127.0.0.1 and may be reached through a proxy of
    // the operator's; the receiver is named `localhost`, which NO_PROXY does not cover.
    environment.extend(["NO_PROXY", "no_proxy"].map(|name| (name, "127.0.0.1".to_owned())));
    let app = TestApp::start_process_with(Options { environment, ..Options::default() }).await;
    let token = app.token_with_device(DEVICE).await;
    let receiver = WebhookReceiver::start().await;
    app.add_webhook(&token, &receiver.url.replace("127.0.0.1", "localhost")).await;
    let body = json!({ "device_id": DEVICE, "from": CONTACT, "text": "straight to the receiver" });
    expect(app.request(Method::POST, "/sim/incoming").json(&body), StatusCode::OK).await;
    receiver.wait_for(1).await;
    app.quiet().await;
    assert_eq!(came.load(std::sync::atomic::Ordering::SeqCst), 0, "nothing went through the proxy");
}

#[tokio::test]
async fn loopback_webhooks_need_the_configuration_to_allow_them() {
    let app = TestApp::with(Options { allow_loopback_webhooks: false, ..Options::default() }).await;
    let token = app.admin_token(false).await["token"].as_str().unwrap().to_owned();
    for url in ["http://127.0.0.1:9/hook", "http://localhost:9/hook", "http://[::1]:9/"] {
        let request = app.bearer(Method::POST, "/api/v1/webhooks", &token).json(&json!({ "url": url }));
        expect_error(request, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    }
}

/// Under the old policy (8 attempts from the base delay) these deliveries would have been
/// given up long before the receiver came back; a retry horizon keeps them.
#[tokio::test]
async fn a_receiver_down_longer_than_the_old_retry_window_gets_every_delivery_once_back() {
    let hooked = Hooked::start(Options {
        webhook_retry_base_ms: 20,
        webhook_retry_max_delay: Duration::from_millis(100),
        ..Options::default()
    })
    .await;
    hooked.receiver.set_down(true);
    for n in 0..3 {
        hooked.incoming(&format!("during the outage {n}")).await;
    }
    hooked
        .log_settles("every delivery to be tried more than 8 times", 3, |d| {
            d["status"] == "pending" && d["attempts"].as_i64() > Some(8)
        })
        .await;
    assert!(hooked.receiver.received().is_empty());

    hooked.receiver.set_down(false);
    let log = hooked.log_settles("every delivery to be delivered", 3, status_is("delivered")).await;
    let received = hooked.receiver.received();
    assert_eq!(received.len(), 3, "each delivery arrives once");
    let mut got = texts(&received);
    got.sort();
    assert_eq!(got, ["during the outage 0", "during the outage 1", "during the outage 2"]);
    for delivery in &log {
        let arrival = received.iter().find(|r| r.header("x-mxgate-delivery") == delivery["id"]).expect("received");
        assert_eq!(arrival.header("x-mxgate-event-cursor"), delivery["cursor"].as_str().unwrap());
        assert_eq!(arrival.json()["id"], delivery["event_id"]);
        assert_eq!(delivery["response_status"], 200);
        assert!(delivery["last_error"].is_null());
    }
}

#[tokio::test]
async fn a_paused_webhook_keeps_its_queue_and_gets_everything_in_order_once_resumed() {
    let hooked = Hooked::start(Options::default()).await;
    expect(
        hooked.app.bearer(Method::PUT, &hooked.path(""), &hooked.token).json(&json!({ "active": false })),
        StatusCode::OK,
    )
    .await;
    // A second token of the same identity, whose active webhook shows when the worker is done.
    let other = hooked.app.admin_token(true).await["token"].as_str().unwrap().to_owned();
    let witness = WebhookReceiver::start().await;
    hooked.app.add_webhook(&other, &witness.url).await;
    for n in 0..4 {
        hooked.incoming(&format!("while paused {n}")).await;
    }
    witness.wait_for(4).await;
    let queued = hooked.log_settles("four queued deliveries", 4, |d| d["status"] == "pending").await;
    assert!(hooked.receiver.received().is_empty(), "a paused webhook gets nothing");
    assert!(queued.iter().all(|d| d["attempts"] == 0), "nor is anything tried: {queued:?}");

    expect(
        hooked.app.bearer(Method::PUT, &hooked.path(""), &hooked.token).json(&json!({ "active": true })),
        StatusCode::OK,
    )
    .await;
    let log = hooked.log_settles("the queue to be delivered", 4, status_is("delivered")).await;
    let received = hooked.receiver.received();
    assert_eq!(received.len(), 4);
    let cursors: Vec<i64> = received.iter().map(|r| r.header("x-mxgate-event-cursor").parse().unwrap()).collect();
    assert!(cursors.windows(2).all(|w| w[0] < w[1]), "delivered in event order: {cursors:?}");
    let logged: Vec<&str> = log.iter().map(|d| d["id"].as_str().unwrap()).collect();
    let arrived: Vec<&str> = received.iter().map(|r| r.header("x-mxgate-delivery")).collect();
    assert_eq!(arrived, logged, "the log is in event order too");
    assert_eq!(texts(&received), texts(&witness.received()), "both webhooks saw the same events in the same order");
}

/// Deliveries given up after the horizon come back one at a time or all since a moment.
#[tokio::test]
async fn failed_deliveries_are_retried_one_by_one_or_redelivered_since_a_time() {
    let hooked = Hooked::start(Options {
        webhook_retry_base_ms: 20,
        webhook_retry_max_delay: Duration::from_millis(100),
        webhook_retry_horizon: Duration::from_millis(500),
        ..Options::default()
    })
    .await;
    let before = chrono::Utc::now() - chrono::Duration::seconds(5);
    hooked.receiver.set_down(true);
    for n in 0..3 {
        hooked.incoming(&format!("lost {n}")).await;
    }
    let failed = hooked.log_settles("the deliveries to be given up", 3, status_is("failed")).await;
    assert!(failed.iter().all(|d| d["last_error"].as_str().is_some_and(|e| e.contains("503"))), "{failed:?}");
    hooked.receiver.set_down(false);

    let one = failed[1]["id"].as_str().unwrap();
    let retried = expect(
        hooked.app.bearer(Method::POST, &hooked.path(&format!("/deliveries/{one}/retry")), &hooked.token),
        StatusCode::ACCEPTED,
    )
    .await;
    assert_eq!(retried["id"], failed[1]["id"]);
    assert_ne!(retried["status"], "failed", "queued again (or already delivered)");
    let received = hooked.receiver.wait_for(1).await;
    eventually("the retried delivery to be logged", || async {
        let log = hooked.log().await;
        (log[1]["status"] == "delivered").then_some(())
    })
    .await;
    assert_eq!(received[0].header("x-mxgate-delivery"), one);
    assert_eq!(texts(&received), ["lost 1"]);

    let redeliver = |since: String| {
        hooked.app.bearer(Method::POST, &hooked.path("/redeliver"), &hooked.token).json(&json!({ "since": since }))
    };
    let future = (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339();
    let none = expect(redeliver(future), StatusCode::ACCEPTED).await;
    assert_eq!(none["redelivered"], 0, "nothing failed after a moment still to come");
    let again = expect(redeliver(before.to_rfc3339()), StatusCode::ACCEPTED).await;
    assert_eq!(again["redelivered"], 2, "the two still failed");
    hooked.log_settles("everything to be delivered", 3, status_is("delivered")).await;
    let mut got = texts(&hooked.receiver.received());
    got.sort();
    assert_eq!(got, ["lost 0", "lost 1", "lost 2"], "each arrives once");
}

#[tokio::test]
async fn the_delivery_log_pages_by_cursor_and_filters_by_status() {
    let hooked = Hooked::start(Options {
        webhook_retry_base_ms: 20,
        webhook_retry_max_delay: Duration::from_millis(100),
        webhook_retry_horizon: Duration::from_secs(1),
        ..Options::default()
    })
    .await;
    for n in 0..4 {
        hooked.incoming(&format!("arrives {n}")).await;
    }
    hooked.log_settles("four delivered", 4, status_is("delivered")).await;
    hooked.receiver.set_down(true);
    for n in 0..3 {
        hooked.incoming(&format!("is lost {n}")).await;
    }
    let all =
        hooked.log_settles("three more, given up", 7, |d| d["status"] == "delivered" || d["status"] == "failed").await;

    let hooked = &hooked;
    let pages = |query: &'static str| async move {
        let mut seen = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let path = match &after {
                Some(cursor) => hooked.path(&format!("/deliveries?{query}&after={cursor}")),
                None => hooked.path(&format!("/deliveries?{query}")),
            };
            let response = hooked.app.bearer(Method::GET, &path, &hooked.token).send().await.unwrap();
            assert_eq!(response.status(), StatusCode::OK);
            let next = response.headers().get("x-next-cursor").map(|v| v.to_str().unwrap().to_owned());
            let link = response.headers().get("link").map(|v| v.to_str().unwrap().to_owned());
            let page: Vec<Value> = response.json().await.unwrap();
            assert!(page.len() <= 2);
            assert_eq!(next.is_some(), link.is_some());
            if let (Some(next), Some(link)) = (&next, &link) {
                assert_eq!(page.last().unwrap()["cursor"], json!(next));
                assert!(link.contains(&format!("after={next}")) && link.ends_with("rel=\"next\""), "{link}");
            }
            seen.extend(page);
            match next {
                Some(next) => after = Some(next),
                None => return seen,
            }
        }
    };
    let everything = pages("limit=2").await;
    assert_eq!(everything, all, "page by page, the same log: no gap, no repeat");
    let ids: HashSet<&str> = everything.iter().map(|d| d["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), 7);
    let cursors: Vec<i64> = everything.iter().map(|d| d["cursor"].as_str().unwrap().parse().unwrap()).collect();
    assert!(cursors.windows(2).all(|w| w[0] < w[1]), "oldest first: {cursors:?}");

    let failed = pages("limit=2&status=failed").await;
    assert_eq!(failed, all[4..].to_vec());
    let delivered = pages("status=delivered&limit=2").await;
    assert_eq!(delivered, all[..4].to_vec());
    assert!(pages("status=pending").await.is_empty());
}

#[tokio::test]
async fn bad_delivery_queries_get_clear_errors_and_change_nothing() {
    let hooked = Hooked::start(Options::default()).await;
    hooked.incoming("one message").await;
    let before = hooked.log_settles("the delivery", 1, status_is("delivered")).await;
    let get =
        |query: &str| hooked.app.bearer(Method::GET, &hooked.path(&format!("/deliveries?{query}")), &hooked.token);
    for query in ["after=abc", "after=-1", "limit=0", "limit=10000", "limit=ten", "status=lost", "order=up"] {
        expect_error(get(query), StatusCode::BAD_REQUEST, "bad_request").await;
    }
    let refused = expect_error(get("limit=501"), StatusCode::BAD_REQUEST, "bad_request").await;
    assert!(refused["message"].as_str().unwrap().contains("1 to 500"), "{refused}");
    let refused = expect_error(get("after=x1"), StatusCode::BAD_REQUEST, "bad_request").await;
    assert!(refused["message"].as_str().unwrap().contains("not a cursor"), "{refused}");

    let post = |tail: &str| hooked.app.bearer(Method::POST, &hooked.path(tail), &hooked.token);
    expect_error(post("/deliveries/no-such-delivery/retry"), StatusCode::NOT_FOUND, "not_found").await;
    for since in [json!("yesterday"), json!("2026-11-21"), json!(17), Value::Null] {
        let body = json!({ "since": since });
        expect_error(post("/redeliver").json(&body), StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    }
    expect_error(post("/redeliver").json(&json!({})), StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    let elsewhere = format!("/api/v1/webhooks/no-such-webhook/deliveries/{}/retry", before[0]["id"].as_str().unwrap());
    expect_error(hooked.app.bearer(Method::POST, &elsewhere, &hooked.token), StatusCode::NOT_FOUND, "not_found").await;
    let stranger = hooked.app.admin_token(false).await["token"].as_str().unwrap().to_owned();
    let theirs = hooked.path(&format!("/deliveries/{}/retry", before[0]["id"].as_str().unwrap()));
    expect_error(hooked.app.bearer(Method::POST, &theirs, &stranger), StatusCode::NOT_FOUND, "not_found").await;
    expect_error(
        hooked.app.bearer(Method::GET, &hooked.path("/deliveries"), &stranger),
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;

    assert_eq!(hooked.log().await, before, "the log is as it was");
    assert_eq!(hooked.receiver.received().len(), 1, "nothing was sent again");
}

#[tokio::test]
async fn delivered_rows_and_their_events_are_pruned_after_the_retention_period() {
    let hooked = Hooked::start(Options { webhook_retention: Duration::from_secs(1), ..Options::default() }).await;
    hooked.incoming("soon forgotten").await;
    let first = hooked.receiver.wait_for(1).await[0].header("x-mxgate-event-cursor").to_owned();
    eventually("the delivery and its event to be pruned", || async {
        let log = hooked.log().await;
        let feed = expect(hooked.app.bearer(Method::GET, "/api/v1/events", &hooked.token), StatusCode::OK).await;
        (log.is_empty() && feed["events"] == json!([])).then_some(())
    })
    .await;

    // The cursor goes on from where it was: a reader holding the old one misses nothing new.
    hooked.incoming("after the pruning").await;
    let second = hooked.receiver.wait_for(2).await[1].clone();
    let path = format!("/api/v1/events?after={first}");
    let feed = expect(hooked.app.bearer(Method::GET, &path, &hooked.token), StatusCode::OK).await;
    assert_eq!(feed["events"][0]["cursor"], second.header("x-mxgate-event-cursor"));
    assert_eq!(feed["events"][0]["payload"]["message"], "after the pruning");
    let (first, second): (i64, i64) = (first.parse().unwrap(), second.header("x-mxgate-event-cursor").parse().unwrap());
    assert!(second > first, "{second} follows {first}");
}
