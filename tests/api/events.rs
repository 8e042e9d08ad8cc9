//! The event feed: a receiver that was away pages through everything it missed.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use futures::StreamExt;
use mxgate::db::Db;
use mxgate::events::{Cursor, store};
use mxgate::webhooks::catalogue::EventType;
use mxgate::webhooks::delivery::{self, Event};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::{TestApp, WebhookReceiver, expect, expect_error, link_device};

const DEVICE: &str = "237600000021";
const CONTACT: &str = "237698000021";
const MESSAGES: usize = 1000;

/// The messages among feed events (the feed also holds the link's `device.state`).
fn messages(events: &Value) -> Vec<Value> {
    events.as_array().unwrap().iter().filter(|e| e["payload"]["event"] == "message").cloned().collect()
}

/// Reads the feed from `after` until it has nothing more; returns the messages and the last cursor.
async fn read_feed(app: &TestApp, token: &str, mut after: String, limit: usize) -> (Vec<Value>, String) {
    let mut events = Vec::new();
    loop {
        let path = format!("/api/v1/events?after={after}&limit={limit}");
        let page = expect(app.bearer(Method::GET, &path, token), StatusCode::OK).await;
        let batch = page["events"].as_array().unwrap();
        assert!(batch.len() <= limit);
        if let Some(last) = batch.last() {
            assert_eq!(page["next_cursor"], last["cursor"]);
        } else {
            assert_eq!(page["next_cursor"], json!(after), "an empty page hands the cursor back");
        }
        events.extend(messages(&page["events"]));
        after = page["next_cursor"].as_str().unwrap().to_owned();
        if page["has_more"] == false {
            return (events, after);
        }
    }
}

/// A thousand messages arrive while one reader follows the feed as it grows and another
/// comes back only at the end; both see every event exactly once, in the same order,
/// and the webhook's deliveries carry the feed's cursors.
#[tokio::test]
async fn a_reader_away_pages_through_a_thousand_events_with_no_gap() {
    let app = TestApp::start().await;
    let issued = app.admin_token(false).await;
    let token = issued["token"].as_str().unwrap().to_owned();
    link_device(&app, &token, DEVICE).await;
    let receiver = WebhookReceiver::start().await;
    app.add_webhook(&token, &receiver.url).await;

    let injections = (0..MESSAGES).map(|n| {
        let (http, url) = (app.http.clone(), app.url("/sim/incoming"));
        async move {
            let body = json!({ "device_id": DEVICE, "from": CONTACT, "text": format!("message {n}") });
            let answer = http.post(url).json(&body).send().await.unwrap();
            assert_eq!(answer.status(), StatusCode::OK);
        }
    });
    let inject = futures::stream::iter(injections).buffer_unordered(16).collect::<Vec<()>>();
    // The follower pages while events are still being written, so a cursor that skipped
    // an event not yet visible would lose it for good.
    let follow = async {
        let mut seen = Vec::new();
        let mut after = "0".to_owned();
        let deadline = Instant::now() + Duration::from_secs(300);
        while seen.len() < MESSAGES {
            assert!(Instant::now() < deadline, "the follower saw {} of {MESSAGES}", seen.len());
            let (events, next) = read_feed(&app, &token, after, 37).await;
            seen.extend(events);
            after = next;
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        (seen, after)
    };
    let (_, (followed, last)) = tokio::join!(inject, follow);

    let (all, end) = read_feed(&app, &token, "0".into(), 100).await;
    assert_eq!(end, last, "once quiet, the follower's last cursor is the feed's end");
    assert_eq!(all.len(), MESSAGES);
    assert_eq!(followed, all, "following the feed and reading it afterwards give the same events");
    let texts: HashSet<&str> = all.iter().map(|e| e["payload"]["message"].as_str().unwrap()).collect();
    assert_eq!(texts.len(), MESSAGES, "every message once");
    let cursors: Vec<i64> = all.iter().map(|e| e["cursor"].as_str().unwrap().parse().unwrap()).collect();
    assert!(cursors.windows(2).all(|w| w[0] < w[1]), "one order");
    for event in &all {
        assert_eq!(event["event_id"], event["payload"]["id"]);
        assert_eq!(event["payload"]["to"], issued["matrix_user_id"]);
    }

    let received = receiver.wait_for(MESSAGES).await;
    let by_event: HashMap<&str, &str> =
        all.iter().map(|e| (e["event_id"].as_str().unwrap(), e["cursor"].as_str().unwrap())).collect();
    for delivery in &received {
        let payload = delivery.json();
        assert_eq!(delivery.header("x-mxgate-event-cursor"), by_event[payload["id"].as_str().unwrap()]);
    }
    let (nothing, same) = read_feed(&app, &token, end.clone(), 10).await;
    assert!(nothing.is_empty());
    assert_eq!(same, end);
}

#[tokio::test]
async fn the_feed_is_per_identity_and_refuses_bad_input() {
    let app = TestApp::start().await;
    let token = app.admin_token(false).await["token"].as_str().unwrap().to_owned();
    let sharing = app.admin_token(true).await["token"].as_str().unwrap().to_owned();
    let stranger = app.admin_token(false).await["token"].as_str().unwrap().to_owned();
    link_device(&app, &token, DEVICE).await;
    let body = json!({ "device_id": DEVICE, "from": CONTACT, "text": "hello" });
    expect(app.request(Method::POST, "/sim/incoming").json(&body), StatusCode::OK).await;
    let deadline = Instant::now() + Duration::from_secs(120);
    let feed = loop {
        let feed = expect(app.bearer(Method::GET, "/api/v1/events", &token), StatusCode::OK).await;
        if messages(&feed["events"]).len() == 1 {
            break feed;
        }
        assert!(Instant::now() < deadline, "the event never reached the feed");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(messages(&feed["events"])[0]["payload"]["message"], "hello");
    assert_eq!(feed["has_more"], false);
    let shared = expect(app.bearer(Method::GET, "/api/v1/events", &sharing), StatusCode::OK).await;
    assert_eq!(
        messages(&shared["events"]),
        messages(&feed["events"]),
        "a use_host token shares the identity, and so its feed"
    );
    let theirs = expect(app.bearer(Method::GET, "/api/v1/events", &stranger), StatusCode::OK).await;
    assert_eq!(theirs, json!({ "events": [], "next_cursor": "0", "has_more": false }));

    let past_the_end = format!("after={}", feed["next_cursor"].as_str().unwrap().parse::<i64>().unwrap() + 1);
    let queries = ["after=abc", "after=-4", "after=", "limit=0", "limit=10000", "limit=many", "since=1"];
    for query in queries {
        let path = format!("/api/v1/events?{query}");
        expect_error(app.bearer(Method::GET, &path, &token), StatusCode::BAD_REQUEST, "bad_request").await;
    }
    // Well-formed, but not a cursor this feed gave out.
    let path = format!("/api/v1/events?{past_the_end}");
    let refused = expect_error(app.bearer(Method::GET, &path, &token), StatusCode::NOT_FOUND, "not_found").await;
    assert!(refused["message"].as_str().unwrap().contains("past the end"), "{refused}");
    expect_error(app.request(Method::GET, "/api/v1/events"), StatusCode::UNAUTHORIZED, "unauthorized").await;
    assert_eq!(expect(app.bearer(Method::GET, "/api/v1/events", &token), StatusCode::OK).await, feed);
}

/// A fresh, migrated database of the kind the tests run on (SQLite or PostgreSQL).
async fn fresh_db() -> (Db, Option<tempfile::TempDir>) {
    let (url, dir) = match std::env::var("MXGATE_TEST_POSTGRES") {
        Ok(server) => {
            let name = format!("mxgate_test_{}", mxgate::secret::random_hex(6));
            let admin = Db::connect(&server).await.unwrap();
            sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}"))).execute(&admin.pool).await.unwrap();
            admin.pool.close().await;
            (format!("{}/{name}", server.rsplit_once('/').unwrap().0), None)
        }
        Err(_) => {
            let dir = tempfile::tempdir().unwrap();
            (format!("sqlite://{}", dir.path().join("events.db").display()), Some(dir))
        }
    };
    let db = Db::connect(&url).await.unwrap();
    db.migrate().await.unwrap();
    (db, dir)
}

/// Writers racing on one identity (as several API replicas would) against a reader that
/// tails the log: the reader never sees a later event before an earlier one is visible.
#[tokio::test]
async fn concurrent_writers_never_make_a_tailing_reader_skip_an_event() {
    const WRITERS: usize = 8;
    const EACH: usize = 60;
    let (db, _dir) = fresh_db().await;
    let identity = "@mt_race:mxgate.test";
    let writers = (0..WRITERS).map(|w| {
        let db = db.clone();
        tokio::spawn(async move {
            for n in 0..EACH {
                let event_id = format!("$w{w}n{n}");
                let event = |payload| Event { identity, event_id: &event_id, kind: EventType::Message, payload };
                delivery::enqueue(&db, event(json!({ "id": event_id }))).await.unwrap();
                // A replayed transaction adds nothing.
                assert_eq!(delivery::enqueue(&db, event(json!({}))).await.unwrap(), 0);
            }
        })
    });
    let writers: Vec<_> = writers.collect();
    let mut seen: Vec<(i64, String)> = Vec::new();
    let mut after = Cursor::START;
    while seen.len() < WRITERS * EACH {
        for row in store::page(&db, identity, after, 7).await.unwrap() {
            assert_eq!(row.seq, after.0 + 1, "the cursor moves one event at a time");
            after = Cursor(row.seq);
            seen.push((row.seq, row.event_id));
        }
        tokio::task::yield_now().await;
    }
    for writer in writers {
        writer.await.unwrap();
    }
    let ids: HashSet<&str> = seen.iter().map(|(_, id)| id.as_str()).collect();
    assert_eq!(ids.len(), WRITERS * EACH, "every event once");
    assert!(store::page(&db, identity, after, 10).await.unwrap().is_empty(), "and nothing after");
}
