//! `make bench`: mxgate's figures, each measured next to its baseline in the same run,
//! on a release build, a real Synapse (SQLite) and the `sim` network, then the `whatsapp`
//! connector against `wa-sim`. Prints a table and writes `bench/results.json`. Never part
//! of `make test`.

#[path = "../tests/common/mod.rs"]
#[allow(unused_imports)]
mod common;

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::State;
use axum::routing::put;
use common::{
    Cluster, Layout, Options, Phone, TestApp, WebhookReceiver, WhatsAppServer, eventually, expect, link_device,
    link_device_with, patiently, take_slot,
};
use futures::StreamExt;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// Workers of the request-rate figures.
const CONCURRENCY: usize = 16;
/// How long each rate figure runs.
const WINDOW: Duration = Duration::from_secs(5);
/// Messages of the receive figure.
const INCOMING: usize = 1000;
/// Linked devices of the scale figure.
const DEVICES: usize = 1000;
/// Tokens (one webhook each) of the fan-out figure.
const FAN_OUT: usize = 100;
const CONTACT: &str = "237698765432";
/// Devices of the whatsapp-connector figure, each a whatsapp-rust client in mxgate.
const WA_DEVICES: usize = 10;
/// Devices of the failover figure, on two processes.
const FAILOVER_DEVICES: usize = 100;

#[derive(Clone)]
struct Figure {
    name: String,
    count: usize,
    seconds: f64,
    p50_ms: f64,
    p99_ms: f64,
    /// CPU ms per operation of mxgate and of Synapse: where the time goes.
    cpu_ms: [f64; 2],
}

impl Figure {
    fn new(name: &str, mut latencies: Vec<Duration>, seconds: f64) -> Self {
        latencies.sort();
        let percentile = |p: f64| {
            let index = ((latencies.len().max(1) - 1) as f64 * p).round() as usize;
            latencies.get(index).map_or(0.0, |d| d.as_secs_f64() * 1000.0)
        };
        Self {
            name: name.into(),
            count: latencies.len(),
            seconds,
            p50_ms: percentile(0.5),
            p99_ms: percentile(0.99),
            cpu_ms: [0.0; 2],
        }
    }

    fn rate(&self) -> f64 {
        self.count as f64 / self.seconds
    }

    fn json(&self) -> Value {
        json!({
            "name": self.name, "count": self.count, "seconds": self.seconds,
            "per_second": self.rate(), "p50_ms": self.p50_ms, "p99_ms": self.p99_ms,
            "cpu_ms_per_op": { "mxgate": self.cpu_ms[0], "synapse": self.cpu_ms[1] },
        })
    }
}

/// A figure and, where it has one, its baseline from the same run.
struct Row {
    figure: Figure,
    baseline: Option<Figure>,
}

impl Row {
    fn ratio(&self) -> Option<f64> {
        self.baseline.as_ref().map(|b| self.figure.rate() / b.rate())
    }

    fn json(&self) -> Value {
        json!({ "figure": self.figure.json(), "baseline": self.baseline.as_ref().map(Figure::json), "ratio": self.ratio() })
    }
}

/// Runs `request` from `CONCURRENCY` workers for `WINDOW`; every call must succeed.
async fn sustained<F, Fut>(name: &str, request: F) -> Figure
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = bool> + Send,
{
    let request = Arc::new(request);
    let started = Instant::now();
    let workers: Vec<_> = (0..CONCURRENCY)
        .map(|worker| {
            let request = request.clone();
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                while started.elapsed() < WINDOW {
                    let at = Instant::now();
                    assert!(request(worker * 1_000_000 + latencies.len()).await, "a request failed");
                    latencies.push(at.elapsed());
                }
                latencies
            })
        })
        .collect();
    let mut latencies = Vec::new();
    for worker in workers {
        latencies.extend(worker.await.unwrap());
    }
    Figure::new(name, latencies, started.elapsed().as_secs_f64())
}

/// One message to `CONTACT` through the API; whether WhatsApp (or the simulator) took it.
async fn send_once(http: reqwest::Client, base: String, token: String, device: String, n: usize) -> bool {
    let body = json!({ "contact": CONTACT, "text": format!("bench {n}") });
    let url = format!("{base}/api/v1/devices/{device}/message");
    match http.post(url).bearer_auth(token).json(&body).send().await {
        Ok(r) => r.json::<Value>().await.is_ok_and(|v| v["results"][0]["status"] == "sent"),
        Err(_) => false,
    }
}

/// CPU seconds (user + system) a process has used so far.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat.rsplit_once(") ").map(|(_, rest)| rest.split(' ').collect()).unwrap_or_default();
    // utime and stime are fields 14 and 15 of stat(5), counted in clock ticks (100 per second).
    let ticks: f64 = fields.iter().skip(11).take(2).filter_map(|f| f.parse::<f64>().ok()).sum();
    ticks / 100.0
}

/// CPU milliseconds mxgate and Synapse spend per operation while `run` runs.
struct CpuMeter {
    pids: [u32; 2],
    start: [f64; 2],
}

impl CpuMeter {
    fn start(mxgate: u32, synapse: u32) -> Self {
        Self { pids: [mxgate, synapse], start: [cpu_seconds(mxgate), cpu_seconds(synapse)] }
    }

    fn per_op(&self, ops: usize) -> [f64; 2] {
        let per = |i: usize| (cpu_seconds(self.pids[i]) - self.start[i]) * 1000.0 / ops.max(1) as f64;
        [per(0), per(1)]
    }
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn encode(id: &str) -> String {
    url::form_urlencoded::byte_serialize(id.as_bytes()).collect()
}

struct Bench {
    synapse_pid: u32,
    app: TestApp,
    token: String,
    identity: String,
    device: String,
    receiver: WebhookReceiver,
    http: reqwest::Client,
}

impl Bench {
    /// Runs `measure` with the two processes' CPU metered.
    async fn metered(&self, measure: impl Future<Output = Figure>) -> Figure {
        let meter = CpuMeter::start(self.app.pid().unwrap(), self.synapse_pid);
        let mut figure = measure.await;
        figure.cpu_ms = meter.per_op(figure.count);
        figure
    }

    async fn auth_overhead(&self) -> Row {
        let (http, base) = (self.http.clone(), self.app.base.clone());
        let baseline = self
            .metered(sustained("GET /health (no auth)", move |_| {
                let (http, base) = (http.clone(), base.clone());
                async move { http.get(format!("{base}/health")).send().await.is_ok_and(|r| r.status().is_success()) }
            }))
            .await;
        let (http, base, token) = (self.http.clone(), self.app.base.clone(), self.token.clone());
        let figure = self
            .metered(sustained("GET /api/v1/devices (mt_ token)", move |_| {
                let (http, base, token) = (http.clone(), base.clone(), token.clone());
                async move {
                    let response = http.get(format!("{base}/api/v1/devices")).bearer_auth(token).send().await;
                    response.is_ok_and(|r| r.status().is_success())
                }
            }))
            .await;
        Row { figure, baseline: Some(baseline) }
    }

    async fn send_path(&self, label: &str) -> Row {
        let (http, base, token, device) =
            (self.http.clone(), self.app.base.clone(), self.token.clone(), self.device.clone());
        let name = format!("send via API until the network has it{label}");
        let figure = self
            .metered(sustained(&name, move |n| {
                let (http, base, token, device) = (http.clone(), base.clone(), token.clone(), device.clone());
                send_once(http, base, token, device, n)
            }))
            .await;
        // The same m.room.message straight to Synapse's client-server API, as the same user.
        let room = encode(&self.portal_room().await);
        let (http, synapse, as_token, identity) = (
            self.http.clone(),
            self.app.synapse.url.clone(),
            self.app.slot.pair.api.as_token.clone(),
            encode(&self.identity),
        );
        let baseline = self
            .metered(sustained("PUT m.room.message to Synapse", move |n| {
                let (http, synapse, as_token, identity, room) =
                    (http.clone(), synapse.clone(), as_token.clone(), identity.clone(), room.clone());
                async move {
                    let txn = uuid::Uuid::new_v4();
                    let url =
                        format!("{synapse}_matrix/client/v3/rooms/{room}/send/m.room.message/{txn}?user_id={identity}");
                    let body = json!({ "msgtype": "m.text", "body": format!("baseline {n}") });
                    http.put(url).bearer_auth(as_token).json(&body).send().await.is_ok_and(|r| r.status().is_success())
                }
            }))
            .await;
        Row { figure, baseline: Some(baseline) }
    }

    async fn portal_room(&self) -> String {
        let url = format!(
            "{}/_matrix/provision/v3/create_dm/{CONTACT}?user_id={}&login_id={}",
            self.app.bridge_url,
            encode(&self.identity),
            self.device
        );
        let answer = self.http.post(url).bearer_auth(&self.app.provisioning_secret).send().await.unwrap();
        answer.json::<Value>().await.unwrap()["dm_room_mxid"].as_str().unwrap().to_owned()
    }

    /// `INCOMING` messages injected 32 at a time; latency from injection to the receiver.
    async fn receive_path(&self, label: &str) -> Figure {
        let already = self.receiver.received().len();
        let injected_at = Arc::new(Mutex::new(HashMap::new()));
        let started = Instant::now();
        let injections = (0..INCOMING).map(|n| {
            let (http, base, device, injected_at) =
                (self.http.clone(), self.app.base.clone(), self.device.clone(), injected_at.clone());
            async move {
                let at = Instant::now();
                let body = json!({ "device_id": device, "from": CONTACT, "text": format!("incoming {n}") });
                let answer: Value =
                    http.post(format!("{base}/sim/incoming")).json(&body).send().await.unwrap().json().await.unwrap();
                injected_at.lock().unwrap().insert(answer["message_id"].as_str().unwrap().to_owned(), at);
            }
        });
        futures::stream::iter(injections).buffer_unordered(32).collect::<Vec<()>>().await;
        let received = self.receiver.wait_for(already + INCOMING).await;
        let seconds = started.elapsed().as_secs_f64();
        let injected_at = injected_at.lock().unwrap();
        let latencies: Vec<Duration> = received[already..]
            .iter()
            .filter_map(|r| Some(r.at.duration_since(*injected_at.get(r.json()["message_id"].as_str()?)?)))
            .collect();
        assert_eq!(latencies.len(), INCOMING, "every message reached the webhook, none twice");
        Figure::new(&format!("1,000 incoming until the webhook has them{label}"), latencies, seconds)
    }

    /// Baseline of the receive path: Synapse pushing the same puppet events to a bare
    /// appservice (a free registration of the test Synapse) that only notes arrival.
    async fn synapse_to_appservice(&self) -> Figure {
        let slot = take_slot(self.app.synapse).await;
        let arrived: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        common::relay::point(&slot.pair.api.url, listener.local_addr().unwrap());
        let app = axum::Router::new()
            .route(
                "/_matrix/app/v1/transactions/{txn}",
                put(
                    |State(arrived): State<Arc<Mutex<HashMap<String, Instant>>>>, Json(body): Json<Value>| async move {
                        let now = Instant::now();
                        let mut arrived = arrived.lock().unwrap();
                        for event in body["events"].as_array().into_iter().flatten() {
                            if let Some(text) = event["content"]["body"].as_str() {
                                arrived.entry(text.to_owned()).or_insert(now);
                            }
                        }
                        Json(json!({}))
                    },
                ),
            )
            .with_state(arrived.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });

        let synapse = self.app.synapse.url.clone();
        let (member_token, puppet_token) = (&slot.pair.api.as_token, &self.app.slot.pair.bridge.as_token);
        let member = format!("@{}bench:mxgate.test", slot.pair.api.prefix);
        let puppet = format!("@{}{CONTACT}:mxgate.test", self.app.slot.pair.bridge.prefix);
        let register =
            json!({ "type": "m.login.application_service", "username": format!("{}bench", slot.pair.api.prefix) });
        let _ = self
            .http
            .post(format!("{synapse}_matrix/client/v3/register"))
            .bearer_auth(member_token)
            .json(&register)
            .send()
            .await;
        let create = json!({ "preset": "private_chat", "invite": [puppet] });
        let created: Value = self
            .http
            .post(format!("{synapse}_matrix/client/v3/createRoom?user_id={}", encode(&member)))
            .bearer_auth(member_token)
            .json(&create)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let room = encode(created["room_id"].as_str().unwrap());
        let join = format!("{synapse}_matrix/client/v3/rooms/{room}/join?user_id={}", encode(&puppet));
        self.http.post(join).bearer_auth(puppet_token).json(&json!({})).send().await.unwrap();

        let sent_at = Arc::new(Mutex::new(HashMap::new()));
        let started = Instant::now();
        let sends = (0..INCOMING).map(|n| {
            let (http, synapse, room, puppet, token, sent_at) = (
                self.http.clone(),
                synapse.clone(),
                room.clone(),
                encode(&puppet),
                puppet_token.clone(),
                sent_at.clone(),
            );
            async move {
                let text = format!("baseline incoming {n}");
                let url = format!("{synapse}_matrix/client/v3/rooms/{room}/send/m.room.message/b{n}?user_id={puppet}");
                sent_at.lock().unwrap().insert(text.clone(), Instant::now());
                let body = json!({ "msgtype": "m.text", "body": text });
                assert!(http.put(url).bearer_auth(token).json(&body).send().await.unwrap().status().is_success());
            }
        });
        futures::stream::iter(sends).buffer_unordered(32).collect::<Vec<()>>().await;
        while arrived.lock().unwrap().len() < INCOMING {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let seconds = started.elapsed().as_secs_f64();
        let (arrived, sent_at) = (arrived.lock().unwrap(), sent_at.lock().unwrap());
        let latencies = arrived.iter().filter_map(|(text, at)| Some(at.duration_since(*sent_at.get(text)?))).collect();
        Figure::new("Synapse → appservice, same puppet events", latencies, seconds)
    }

    /// Links `DEVICES - 1` more simulated devices through the provisioning API and the sim.
    async fn link_many(&self) -> f64 {
        let started = Instant::now();
        let user = encode(&self.identity);
        let provision = |path: String| {
            self.http
                .post(format!("{}/_matrix/provision/v3/{path}?user_id={user}", self.app.bridge_url))
                .bearer_auth(&self.app.provisioning_secret)
        };
        for n in 1..DEVICES {
            let step: Value = provision("login/start/qr".into()).send().await.unwrap().json().await.unwrap();
            let process = step["login_id"].as_str().unwrap().to_owned();
            let phone = format!("2376100{n:05}");
            expect(self.app.request(Method::POST, "/sim/qr/scan").json(&json!({ "phone": phone })), StatusCode::OK)
                .await;
            let path = format!("login/step/{process}/{}/display_and_wait", mxgate_bridge::provisioning::QR_STEP);
            let done: Value = provision(path).send().await.unwrap().json().await.unwrap();
            assert_eq!(done["type"], "complete", "{done}");
        }
        started.elapsed().as_secs_f64()
    }

    async fn fan_out(&self) -> Figure {
        let fan = WebhookReceiver::start().await;
        for n in 0..FAN_OUT {
            let token = self.app.admin_token(true).await["token"].as_str().unwrap().to_owned();
            let url = format!("{}?token={n}", fan.url);
            let request = self.app.bearer(Method::POST, "/api/v1/webhooks", &token).json(&json!({ "url": url }));
            expect(request, StatusCode::CREATED).await;
        }
        let started = Instant::now();
        let body = json!({ "device_id": self.device, "from": CONTACT, "text": "to everyone" });
        expect(self.app.request(Method::POST, "/sim/incoming").json(&body), StatusCode::OK).await;
        let received = fan.wait_for(FAN_OUT).await;
        let latencies = received.iter().map(|r| r.at.duration_since(started)).collect();
        Figure::new("1 incoming → 100 tokens' webhooks", latencies, started.elapsed().as_secs_f64())
    }
}

async fn wait_healthy(http: &reqwest::Client, base: &str) {
    while !http.get(format!("{base}/health")).send().await.is_ok_and(|r| r.status().is_success()) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::main]
async fn main() {
    let total = Instant::now();
    let app = TestApp::start_process().await;
    let issued = app.admin_token(false).await;
    let token = issued["token"].as_str().unwrap().to_owned();
    let identity = issued["matrix_user_id"].as_str().unwrap().to_owned();
    let device = "237600000100".to_owned();
    link_device(&app, &token, &device).await;
    let receiver = WebhookReceiver::start().await;
    app.add_webhook(&token, &receiver.url).await;
    let http = reqwest::Client::builder().pool_max_idle_per_host(64).build().unwrap();
    let synapse_pid = app.synapse.pid().expect("the test Synapse is running");
    let mut bench = Bench { synapse_pid, app, token, identity, device, receiver, http };
    let pid = bench.app.pid().expect("mxgate runs as a process");

    eprintln!("==> 1. auth overhead");
    let auth = bench.auth_overhead().await;
    eprintln!("==> 2. send path");
    let send = bench.send_path("").await;
    eprintln!("==> 3. receive path");
    let receive = Row {
        figure: bench.metered(bench.receive_path("")).await,
        baseline: Some(bench.metered(bench.synapse_to_appservice()).await),
    };
    let rss_one = rss_kib(pid);
    eprintln!("==> 4. {DEVICES} devices");
    let link_seconds = bench.link_many().await;
    let rss_many = rss_kib(pid);
    let restart = Instant::now();
    bench.app.kill_and_restart().await;
    wait_healthy(&bench.http, &bench.app.base).await;
    let restore_seconds = restart.elapsed().as_secs_f64();
    let pid = bench.app.pid().unwrap();
    let devices = expect(bench.app.bearer(Method::GET, "/api/v1/devices", &bench.token), StatusCode::OK).await;
    assert_eq!(devices.as_array().unwrap().len(), DEVICES, "every device is restored");
    let rss_restored = rss_kib(pid);
    let send_many = bench.send_path(&format!(", {DEVICES} devices")).await;
    let receive_many =
        Row { figure: bench.metered(bench.receive_path(&format!(", {DEVICES} devices"))).await, baseline: None };
    eprintln!("==> 5. webhook fan-out");
    let fan_out = Row { figure: bench.metered(bench.fan_out()).await, baseline: None };

    eprintln!("==> 6. the whatsapp connector against wa-sim");
    let (whatsapp, whatsapp_send) = whatsapp_connector().await;

    eprintln!("==> 7. failover of {FAILOVER_DEVICES} whatsapp-connector devices between two processes");
    let failover = failover().await;

    let rows = [&auth, &send, &receive, &send_many, &receive_many, &fan_out, &whatsapp_send];
    let results = json!({
        "machine": machine(),
        "auth_overhead": auth.json(),
        "send_path": send.json(),
        "receive_path": receive.json(),
        "scale": {
            "devices": DEVICES,
            "link_seconds": link_seconds,
            "rss_kib_one_device": rss_one,
            "rss_kib_all_devices": rss_many,
            "rss_kib_per_device": (rss_many.saturating_sub(rss_one)) as f64 / (DEVICES - 1) as f64,
            "rss_kib_after_restore": rss_restored,
            "restart_until_healthy_seconds": restore_seconds,
            "send_path": send_many.json(),
            "receive_path": receive_many.json(),
        },
        "fan_out": fan_out.json(),
        "whatsapp": whatsapp,
        "failover": failover,
        "total_seconds": total.elapsed().as_secs_f64(),
    });
    print_table(&rows, &results);
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/bench/results.json");
    std::fs::write(path, serde_json::to_string_pretty(&results).unwrap() + "\n").unwrap();
    eprintln!("wrote {path} in {:.0} s", total.elapsed().as_secs_f64());
}

/// `WA_DEVICES` devices linked by QR through the API at once, memory per whatsapp-rust
/// client, sends from one of them (compare the `sim` network's send figure: same API,
/// same Synapse) with the contact's own client decrypting every one, and a kill -9 until
/// every device is connected again from its stored session.
async fn whatsapp_connector() -> (Value, Row) {
    let sim = wa_sim::WaSim::start().await.expect("the simulator starts");
    let server = WhatsAppServer {
        ws_url: sim.ws_url(),
        http_url: format!("http://{}", sim.media_host()),
        connect_timeout_ms: 30_000,
    };
    let mut app = TestApp::start_process_with(Options { whatsapp: Some(server), ..Options::default() }).await;
    let token = app.admin_token(false).await["token"].as_str().unwrap().to_owned();
    let rss_none = rss_kib(app.pid().unwrap());
    let numbers: Vec<String> = (0..WA_DEVICES).map(|n| format!("2376200{n:05}")).collect();
    let started = Instant::now();
    let sim_ref = &sim;
    futures::future::join_all(numbers.iter().map(|number| {
        let sim = sim_ref;
        sim.create_account(number, "Bench Device").unwrap();
        link_device_with(&app, &token, 1, move |code| {
            let scanned = sim.scan_qr(number, &code);
            async move {
                scanned.expect("the phone scans");
            }
        })
    }))
    .await;
    let link_seconds = started.elapsed().as_secs_f64();
    let rss_linked = rss_kib(app.pid().unwrap());

    let contact = Arc::new(Phone::new(&sim, CONTACT, "Bench Contact").await);
    let received = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = (contact.clone(), received.clone());
    tokio::spawn(async move {
        loop {
            counter.0.next_message().await;
            counter.1.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
    });
    let (http, base, device) = (reqwest::Client::new(), app.base.clone(), numbers[0].clone());
    let token_for_send = token.clone();
    let meter = CpuMeter::start(app.pid().unwrap(), app.synapse.pid().expect("the test Synapse is running"));
    let mut figure = sustained("send via API on whatsapp (wa-sim), until WhatsApp accepted it", move |n| {
        let (http, base, token, device) = (http.clone(), base.clone(), token_for_send.clone(), device.clone());
        send_once(http, base, token, device, n)
    })
    .await;
    figure.cpu_ms = meter.per_op(figure.count);
    let sent = figure.count;
    eventually("the contact to decrypt every send", || {
        let received = received.load(std::sync::atomic::Ordering::SeqCst);
        async move { (received >= sent).then_some(()) }
    })
    .await;

    let restart = Instant::now();
    app.kill_and_restart().await;
    let all_connected = eventually("every device to reconnect from its stored session", || async {
        let devices = expect(app.bearer(Method::GET, "/api/v1/devices", &token), StatusCode::OK).await;
        let devices = devices.as_array().cloned().unwrap_or_default();
        (devices.len() == WA_DEVICES && devices.iter().all(|d| d["status"] == "connected")).then_some(())
    });
    all_connected.await;
    let restore_seconds = restart.elapsed().as_secs_f64();
    let results = json!({
        "devices": WA_DEVICES,
        "link_seconds": link_seconds,
        "rss_kib_no_device": rss_none,
        "rss_kib_all_devices": rss_linked,
        "rss_kib_per_device": rss_linked.saturating_sub(rss_none) as f64 / WA_DEVICES as f64,
        "kill_9_until_all_connected_seconds": restore_seconds,
        "decrypted_by_contact": received.load(std::sync::atomic::Ordering::SeqCst),
        "send_path": figure.json(),
    });
    println!(
        "whatsapp: {WA_DEVICES} devices linked by QR at once in {link_seconds:.1} s; RSS {rss_none} KiB with none, \
         {rss_linked} KiB with all ({:.0} KiB per device); kill -9 until all connected {restore_seconds:.1} s",
        results["rss_kib_per_device"].as_f64().unwrap_or(0.0)
    );
    (results, Row { figure, baseline: None })
}

/// `FAILOVER_DEVICES` devices on the `whatsapp` connector, linked through nginx in front of
/// two `mxgate serve` on PostgreSQL with the default lease; once they are spread, `kill -9`
/// of one process and the time until wa-sim sees every device logged in again, the other
/// process having taken over the dead one's half from their stored sessions. Skipped
/// (null) without `MXGATE_TEST_POSTGRES`, which `make bench` sets.
async fn failover() -> Value {
    let sim = wa_sim::WaSim::start().await.expect("the simulator starts");
    let server = WhatsAppServer {
        ws_url: sim.ws_url(),
        http_url: format!("http://{}", sim.media_host()),
        connect_timeout_ms: 30_000,
    };
    let options = Options { whatsapp: Some(server), ..Options::default() };
    let Some(mut cluster) = Cluster::start(&[Layout::Serve, Layout::Serve], options).await else {
        eprintln!("failover skipped: it needs MXGATE_TEST_POSTGRES");
        return Value::Null;
    };
    let token = cluster.app.admin_token(false).await["token"].as_str().unwrap().to_owned();
    let numbers: Vec<String> = (0..FAILOVER_DEVICES).map(|n| format!("2376300{n:05}")).collect();
    let (sim_ref, app) = (&sim, &cluster.app);
    futures::future::join_all(numbers.iter().map(|number| {
        let sim = sim_ref;
        sim.create_account(number, "Bench Device").unwrap();
        link_device_with(app, &token, 1, move |code| {
            let scanned = sim.scan_qr(number, &code);
            async move {
                scanned.expect("the phone scans");
            }
        })
    }))
    .await;
    let online = |sim: &wa_sim::WaSim| {
        numbers.iter().all(|n| sim.account(n).is_ok_and(|a| a.devices.iter().any(|d| *d > 0 && sim.is_online(n, *d))))
    };
    let half = FAILOVER_DEVICES / 2;
    patiently("the devices spread over both processes", Duration::from_secs(180), || async {
        let owners = cluster.owners().await;
        let first = owners.values().filter(|o| o.process == cluster.members[0].bridge_url).count();
        (owners.len() == FAILOVER_DEVICES && first == half).then_some(())
    })
    .await;
    sim.wait_until(Duration::from_secs(120), |sim| online(sim)).await.expect("every device online");
    let started = Instant::now();
    cluster.kill(0);
    sim.wait_until(Duration::from_secs(10), |sim| !online(sim)).await.expect("the killed process's devices drop");
    sim.wait_until(Duration::from_secs(120), |sim| online(sim)).await.expect("every device online again");
    let seconds = started.elapsed().as_secs_f64();
    let takeovers: usize = numbers
        .iter()
        .map(|n| sim.account(n).unwrap().devices.iter().map(|d| sim.takeovers(n, *d)).sum::<usize>())
        .sum();
    println!(
        "failover: kill -9 of one of two processes until all {FAILOVER_DEVICES} devices are online again \
         ({half} moved, lease 15 s): {seconds:.1} s; connections replaced by a second client: {takeovers}"
    );
    json!({ "devices": FAILOVER_DEVICES, "moved": half, "lease_seconds": 15, "kill_9_until_all_online_seconds": seconds,
            "connections_replaced": takeovers })
}

fn machine() -> Value {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.split_once(':').filter(|(k, _)| k.trim() == "model name"))
        .map(|(_, v)| v.trim());
    let memory = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let total = memory.lines().next().unwrap_or_default().trim_start_matches("MemTotal:").trim().to_owned();
    json!({ "cores": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0), "cpu": model, "memory": total })
}

fn print_table(rows: &[&Row], results: &Value) {
    println!("machine: {}", results["machine"]);
    println!(
        "| figure | per s | p50 ms | p99 ms | CPU ms/op mxgate + Synapse | baseline | per s | p50 ms | p99 ms | CPU ms/op Synapse | ratio |"
    );
    println!("| --- | ---: | ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: |");
    for row in rows {
        let f = &row.figure;
        let baseline = row.baseline.as_ref().map_or("| | | | | |".to_owned(), |b| {
            format!("| {} | {:.0} | {:.1} | {:.1} | {:.1} |", b.name, b.rate(), b.p50_ms, b.p99_ms, b.cpu_ms[1])
        });
        let ratio = row.ratio().map_or(String::new(), |r| format!("{r:.2}"));
        println!(
            "| {} | {:.0} | {:.1} | {:.1} | {:.1} + {:.1} {baseline} {ratio} |",
            f.name,
            f.rate(),
            f.p50_ms,
            f.p99_ms,
            f.cpu_ms[0],
            f.cpu_ms[1]
        );
    }
    let scale = &results["scale"];
    println!(
        "scale: {} devices linked in {:.1} s; RSS {} KiB with 1 device, {} KiB with all ({:.1} KiB per device), \
         {} KiB after restart; kill -9 to healthy with all restored in {:.2} s",
        scale["devices"],
        scale["link_seconds"].as_f64().unwrap_or(0.0),
        scale["rss_kib_one_device"],
        scale["rss_kib_all_devices"],
        scale["rss_kib_per_device"].as_f64().unwrap_or(0.0),
        scale["rss_kib_after_restore"],
        scale["restart_until_healthy_seconds"].as_f64().unwrap_or(0.0),
    );
}
