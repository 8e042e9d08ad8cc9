//! `make bench`: mxgate's figures, each measured next to its baseline in the same run,
//! on a release build, a real Synapse (SQLite) and the `sim` network; then several
//! processes behind nginx on PostgreSQL with a second Synapse on PostgreSQL, and the
//! `whatsapp` connector against `wa-sim`. Prints a table and whether each of issue #12's
//! targets is met, and writes `bench/results.json`. Never part of `make test`.

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
    Cluster, Layout, Options, Phone, Synapse, TestApp, WebhookReceiver, WhatsAppServer, eventually, expect,
    link_device, link_device_with, patiently, synapse_on_postgres, take_slot,
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
/// The steady incoming figure: this many messages a second, round robin over this many
/// chats (one contact each), for this long.
const STEADY_RATE: u32 = 20;
const STEADY_CHATS: usize = 50;
const STEADY_WINDOW: Duration = Duration::from_secs(30);
/// Devices of the cluster figures, spread over the processes, and contacts writing to each.
const CLUSTER_DEVICES: usize = 4;
const CLUSTER_CONTACTS: usize = 25;

#[derive(Clone)]
struct Figure {
    name: String,
    count: usize,
    seconds: f64,
    p50_ms: f64,
    p99_ms: f64,
    /// CPU ms per operation of mxgate, of Synapse, and of the rest of the machine
    /// (PostgreSQL, nginx, the test harness's relays, the bench's own client): where the
    /// time goes.
    cpu_ms: [f64; 3],
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
            cpu_ms: [0.0; 3],
        }
    }

    fn rate(&self) -> f64 {
        self.count as f64 / self.seconds
    }

    fn json(&self) -> Value {
        json!({
            "name": self.name, "count": self.count, "seconds": self.seconds,
            "per_second": self.rate(), "p50_ms": self.p50_ms, "p99_ms": self.p99_ms,
            "cpu_ms_per_op": { "mxgate": self.cpu_ms[0], "synapse": self.cpu_ms[1], "rest": self.cpu_ms[2] },
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

/// A request loop of a rate figure: called with a number unique in the run.
type Request = Arc<dyn Fn(usize) -> futures::future::BoxFuture<'static, bool> + Send + Sync>;

fn request<F, Fut>(request: F) -> Request
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = bool> + Send + 'static,
{
    Arc::new(move |n| Box::pin(request(n)))
}

/// Runs `request` from `CONCURRENCY` workers for `window` (numbers from `first` on);
/// every call must succeed. The latencies, and the seconds it took.
async fn run_for(request: &Request, window: Duration, first: usize) -> (Vec<Duration>, f64) {
    let started = Instant::now();
    let workers: Vec<_> = (0..CONCURRENCY)
        .map(|worker| {
            let request = request.clone();
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                while started.elapsed() < window {
                    let at = Instant::now();
                    assert!(request(first + worker * 1_000_000 + latencies.len()).await, "a request failed");
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
    (latencies, started.elapsed().as_secs_f64())
}

/// Runs `request` from `CONCURRENCY` workers for `WINDOW`; every call must succeed.
async fn sustained<F, Fut>(name: &str, request: F) -> Figure
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = bool> + Send + 'static,
{
    let (latencies, seconds) = run_for(&self::request(request), WINDOW, 0).await;
    Figure::new(name, latencies, seconds)
}

/// How many turns each side of [`in_turns`] gets, and how long each runs: Synapse answers
/// a room's sends in batches (16 every 250–300 ms here), so a turn of 1 s held three or
/// four batches, and where a turn cut one moved a ratio by several percent. Synapse's CPU
/// per event still moves by 3–6 % from one turn to the next, so the ratios that sit near
/// their targets moved by as much from run to run with five turns a side; ten narrow that
/// spread by about 30 % (1/√2).
const TURNS: usize = 10;
const TURN: Duration = Duration::from_secs(4);

/// A figure and its baseline measured in turns (`TURNS` of `TURN` each per side),
/// CPU metered per side: whatever Synapse and the machine do in the background (Synapse
/// slows as the room fills, catches up on appservice transactions, rotates its
/// notification counts) falls on both alike, where one after the other it fell on the
/// second.
async fn in_turns(mxgate: &[u32], synapse: u32, figure: (&str, Request), baseline: (&str, Request)) -> [Figure; 2] {
    let sides = [figure, baseline];
    let mut latencies = [Vec::new(), Vec::new()];
    let (mut seconds, mut cpu) = ([0.0; 2], [[0.0; 3]; 2]);
    for turn in 0..TURNS {
        // The baseline goes first in every other turn, so neither is always second.
        let order = if turn % 2 == 0 { [1, 0] } else { [0, 1] };
        for side in order {
            let meter = CpuMeter::start(mxgate, synapse);
            let (taken, took) = run_for(&sides[side].1, TURN, turn * 100_000).await;
            let spent = meter.per_op(1);
            for (total, part) in cpu[side].iter_mut().zip(spent) {
                *total += part;
            }
            latencies[side].extend(taken);
            seconds[side] += took;
        }
    }
    [0, 1].map(|side| {
        let count = latencies[side].len().max(1) as f64;
        let mut figure = Figure::new(sides[side].0, std::mem::take(&mut latencies[side]), seconds[side]);
        figure.cpu_ms = cpu[side].map(|ms| ms / count);
        figure
    })
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

/// CPU seconds the whole machine has been busy (all cores), from `/proc/stat`.
fn machine_busy_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let cpu = stat.lines().next().unwrap_or_default();
    // user nice system idle iowait irq softirq steal: all but idle and iowait are busy.
    let ticks: Vec<f64> = cpu.split_whitespace().skip(1).filter_map(|f| f.parse().ok()).collect();
    [0, 1, 2, 5, 6, 7].iter().filter_map(|i| ticks.get(*i)).sum::<f64>() / 100.0
}

/// CPU milliseconds mxgate (all its processes), Synapse and the rest of the machine spend
/// per operation.
struct CpuMeter {
    mxgate: Vec<u32>,
    synapse: u32,
    start: [f64; 3],
}

impl CpuMeter {
    fn start(mxgate: &[u32], synapse: u32) -> Self {
        let mut meter = Self { mxgate: mxgate.to_vec(), synapse, start: [0.0; 3] };
        meter.start = meter.now();
        meter
    }

    fn now(&self) -> [f64; 3] {
        let (mxgate, synapse) = (self.mxgate.iter().map(|pid| cpu_seconds(*pid)).sum(), cpu_seconds(self.synapse));
        [mxgate, synapse, machine_busy_seconds() - mxgate - synapse]
    }

    fn per_op(&self, ops: usize) -> [f64; 3] {
        let now = self.now();
        let per = |i: usize| (now[i] - self.start[i]) * 1000.0 / ops.max(1) as f64;
        [per(0), per(1), per(2)]
    }
}

/// Runs `measure` with the CPU of the `mxgate` processes and of Synapse metered.
async fn metered(mxgate: &[u32], synapse: u32, measure: impl Future<Output = Figure>) -> Figure {
    let meter = CpuMeter::start(mxgate, synapse);
    let mut figure = measure.await;
    figure.cpu_ms = meter.per_op(figure.count);
    figure
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

/// One message from `from` to linked `device`, injected at the simulator of the mxgate
/// at `base` (the process holding the device); its network message id.
async fn inject(http: &reqwest::Client, base: &str, device: &str, from: &str, text: String) -> String {
    let body = json!({ "device_id": device, "from": from, "text": text });
    let response = http.post(format!("{base}/sim/incoming")).json(&body).send().await.expect("the simulator answers");
    let status = response.status();
    let answer: Value = response.json().await.unwrap_or(Value::Null);
    assert!(status.is_success(), "injecting a message: {status} {answer}");
    answer["message_id"].as_str().expect("a message id").to_owned()
}

/// A message to inject: the process holding the device (its API's base URL), the device
/// and the contact writing to it.
#[derive(Clone)]
struct Chat {
    base: String,
    device: String,
    contact: String,
}

/// When each injected message (by network message id) left, for its webhook latency.
type Injected = Arc<Mutex<HashMap<String, Instant>>>;

fn inject_noted(
    http: &reqwest::Client,
    chat: &Chat,
    text: String,
    injected: &Injected,
) -> impl Future<Output = ()> + use<> {
    let (http, chat, injected) = (http.clone(), chat.clone(), injected.clone());
    async move {
        let at = Instant::now();
        let id = inject(&http, &chat.base, &chat.device, &chat.contact, text).await;
        injected.lock().unwrap().insert(id, at);
    }
}

/// Waits until `receiver` has had every message of `injected` since its `already`th
/// delivery (other deliveries are no concern of the figure); each one's latency from its
/// injection, asserting none arrived twice.
async fn webhook_latencies(receiver: &WebhookReceiver, already: usize, injected: &Injected) -> Vec<Duration> {
    let injected = injected.lock().unwrap().clone();
    for _ in 0..1200 {
        let received = receiver.received();
        let mut arrived: HashMap<String, Instant> = HashMap::new();
        let mut deliveries = 0;
        for delivery in &received[already..] {
            let Some(id) = delivery.json()["message_id"].as_str().map(str::to_owned) else { continue };
            if injected.contains_key(&id) {
                deliveries += 1;
                arrived.entry(id).or_insert(delivery.at);
            }
        }
        if arrived.len() == injected.len() {
            assert_eq!(deliveries, arrived.len(), "every message reached the webhook once");
            return arrived.iter().map(|(id, at)| at.duration_since(injected[id])).collect();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the webhook did not get all {} messages in 2 minutes", injected.len());
}

/// `messages` (cycling through `chats`) injected 32 at once; latency from injection until
/// `receiver` has each.
async fn incoming_burst(
    name: &str,
    http: &reqwest::Client,
    receiver: &WebhookReceiver,
    chats: &[Chat],
    messages: usize,
) -> Figure {
    let already = receiver.received().len();
    let injected: Injected = Arc::default();
    let started = Instant::now();
    let run = random_tag();
    let injections =
        (0..messages).map(|n| inject_noted(http, &chats[n % chats.len()], format!("incoming {run} {n}"), &injected));
    futures::stream::iter(injections).buffer_unordered(32).collect::<Vec<()>>().await;
    let latencies = webhook_latencies(receiver, already, &injected).await;
    Figure::new(name, latencies, started.elapsed().as_secs_f64())
}

fn random_tag() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..8].to_owned()
}

/// The portal of `device`'s chat with `CONTACT`, as `identity` sees it, from the bridge at
/// `bridge_url` (the one holding the device).
async fn portal_room(http: &reqwest::Client, bridge_url: &str, secret: &str, identity: &str, device: &str) -> String {
    let url = format!(
        "{}/_matrix/provision/v3/create_dm/{CONTACT}?user_id={}&login_id={device}",
        bridge_url.trim_end_matches('/'),
        encode(identity),
    );
    let answer = http.post(url).bearer_auth(secret).send().await.unwrap();
    answer.json::<Value>().await.unwrap()["dm_room_mxid"].as_str().unwrap().to_owned()
}

/// The baseline of a send: the same `m.room.message` straight to Synapse's client-server
/// API as the same user, into the same portals (`rooms`, a worker each in turn), with the
/// API appservice's token. The bridge relays these too, as it would a Matrix client's.
fn direct_send(http: &reqwest::Client, synapse: &Synapse, as_token: &str, identity: &str, rooms: &[String]) -> Request {
    let rooms: Vec<String> = rooms.iter().map(|r| encode(r)).collect();
    let (http, synapse, as_token, identity) =
        (http.clone(), synapse.url.clone(), as_token.to_owned(), encode(identity));
    request(move |n| {
        let room = rooms[n / 1_000_000 % rooms.len()].clone();
        let (http, synapse, as_token, identity) = (http.clone(), synapse.clone(), as_token.clone(), identity.clone());
        async move {
            let txn = uuid::Uuid::new_v4();
            let url = format!("{synapse}_matrix/client/v3/rooms/{room}/send/m.room.message/{txn}?user_id={identity}");
            let body = json!({ "msgtype": "m.text", "body": format!("baseline {n}") });
            http.put(url).bearer_auth(as_token).json(&body).send().await.is_ok_and(|r| r.status().is_success())
        }
    })
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
    /// mxgate as its own process on the `sim` network with `options`, `device` linked
    /// through the API's QR socket, and a webhook receiver on the admin token.
    async fn start(options: Options, device: &str) -> Self {
        let app = TestApp::start_process_with(options).await;
        let issued = app.admin_token(false).await;
        let token = issued["token"].as_str().unwrap().to_owned();
        let identity = issued["matrix_user_id"].as_str().unwrap().to_owned();
        link_device(&app, &token, device).await;
        let receiver = WebhookReceiver::start().await;
        app.add_webhook(&token, &receiver.url).await;
        let http = reqwest::Client::builder().pool_max_idle_per_host(64).build().unwrap();
        let synapse_pid = app.synapse.pid().expect("the test Synapse is running");
        Self { synapse_pid, app, token, identity, device: device.to_owned(), receiver, http }
    }

    /// Runs `measure` with mxgate's and Synapse's CPU metered.
    async fn metered(&self, measure: impl Future<Output = Figure>) -> Figure {
        metered(&[self.app.pid().unwrap()], self.synapse_pid, measure).await
    }

    /// What a token check costs: against `GET /livez`, which does no I/O at all, both
    /// `GET /api/v1/devices` (the token's read, then a call to the bridge, which reads its
    /// logins) and a request refused right after the token check (no authenticated route
    /// does no I/O beyond it, so `DELETE /api/v1/devices` with an unknown platform: 422).
    async fn auth_overhead(&self) -> [Row; 2] {
        let (http, base) = (self.http.clone(), self.app.base.clone());
        let baseline = self
            .metered(sustained("GET /livez (no auth, no I/O)", move |_| {
                let (http, base) = (http.clone(), base.clone());
                async move { http.get(format!("{base}/livez")).send().await.is_ok_and(|r| r.status().is_success()) }
            }))
            .await;
        let (http, base, token) = (self.http.clone(), self.app.base.clone(), self.token.clone());
        let devices = self
            .metered(sustained("GET /api/v1/devices (mt_ token, asks the bridge)", move |_| {
                let (http, base, token) = (http.clone(), base.clone(), token.clone());
                async move {
                    let response = http.get(format!("{base}/api/v1/devices")).bearer_auth(token).send().await;
                    response.is_ok_and(|r| r.status().is_success())
                }
            }))
            .await;
        let (http, base, token, device) =
            (self.http.clone(), self.app.base.clone(), self.token.clone(), self.device.clone());
        let check = self
            .metered(sustained("mt_ token check only (DELETE /api/v1/devices, bad platform: 422)", move |_| {
                let (http, base, token) = (http.clone(), base.clone(), token.clone());
                let body = json!({ "device_id": device, "platform": "bench" });
                async move {
                    let response =
                        http.delete(format!("{base}/api/v1/devices")).bearer_auth(token).json(&body).send().await;
                    response.is_ok_and(|r| r.status() == StatusCode::UNPROCESSABLE_ENTITY)
                }
            }))
            .await;
        [Row { figure: devices, baseline: Some(baseline.clone()) }, Row { figure: check, baseline: Some(baseline) }]
    }

    /// Sends through the API against the same events put straight into the same room, in
    /// turns. The contact's portal is made by a first send, not measured.
    async fn send_path(&self, label: &str) -> Row {
        let (http, base, token, device) =
            (self.http.clone(), self.app.base.clone(), self.token.clone(), self.device.clone());
        assert!(send_once(http.clone(), base.clone(), token.clone(), device.clone(), 0).await, "a first send");
        let room = self.portal_room().await;
        let as_token = &self.app.slot.pair.api.as_token;
        let baseline = direct_send(&self.http, self.app.synapse, as_token, &self.identity, &[room]);
        let name = format!("send via API until the network has it{label}");
        let sends = request(move |n| send_once(http.clone(), base.clone(), token.clone(), device.clone(), n));
        let pids = [self.app.pid().unwrap()];
        let [figure, baseline] =
            in_turns(&pids, self.synapse_pid, (&name, sends), ("PUT m.room.message to Synapse", baseline)).await;
        Row { figure, baseline: Some(baseline) }
    }

    async fn portal_room(&self) -> String {
        portal_room(&self.http, &self.app.bridge_url, &self.app.provisioning_secret, &self.identity, &self.device).await
    }

    fn chat(&self, contact: &str) -> Chat {
        Chat { base: self.app.base.clone(), device: self.device.clone(), contact: contact.to_owned() }
    }

    /// `INCOMING` messages in one chat, injected 32 at once; latency from injection to the receiver.
    async fn receive_path(&self, label: &str) -> Figure {
        let name = format!("1,000 incoming in one chat until the webhook has them{label}");
        incoming_burst(&name, &self.http, &self.receiver, &[self.chat(CONTACT)], INCOMING).await
    }

    /// `STEADY_RATE` incoming messages a second for `STEADY_WINDOW`, round robin over
    /// `STEADY_CHATS` chats, each injected on schedule whatever the ones before it are
    /// doing; latency from injection to the webhook. The chats' portals are made first, by
    /// one message each that is not measured (nor metered).
    async fn steady(&self) -> Figure {
        let chats: Vec<Chat> = (0..STEADY_CHATS).map(|n| self.chat(&format!("2376990{n:05}"))).collect();
        incoming_burst("warm-up", &self.http, &self.receiver, &chats, STEADY_CHATS).await;
        self.metered(async {
            let already = self.receiver.received().len();
            let injected: Injected = Arc::default();
            let mut ticker = tokio::time::interval(Duration::from_secs(1) / STEADY_RATE);
            let total = STEADY_RATE as usize * STEADY_WINDOW.as_secs() as usize;
            let started = Instant::now();
            let mut injections = Vec::with_capacity(total);
            for n in 0..total {
                ticker.tick().await;
                let chat = &chats[n % STEADY_CHATS];
                injections.push(tokio::spawn(inject_noted(&self.http, chat, format!("steady {n}"), &injected)));
            }
            for injection in injections {
                injection.await.unwrap();
            }
            let latencies = webhook_latencies(&self.receiver, already, &injected).await;
            let name = format!(
                "{STEADY_RATE} incoming/s over {STEADY_CHATS} chats for {} s, until the webhook",
                STEADY_WINDOW.as_secs()
            );
            Figure::new(&name, latencies, started.elapsed().as_secs_f64())
        })
        .await
    }

    /// Baseline of the receive path: Synapse pushing the same puppet events, in one room,
    /// to a bare appservice (a free registration of the test Synapse) that only notes
    /// arrival, sent `concurrency` at once: 1 as the bridge relays one chat (in order, each
    /// send awaited), 32 as the injections of the receive figure (no order kept).
    async fn synapse_to_appservice(&self, concurrency: usize) -> Figure {
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
                let txn = uuid::Uuid::new_v4();
                let url = format!("{synapse}_matrix/client/v3/rooms/{room}/send/m.room.message/{txn}?user_id={puppet}");
                sent_at.lock().unwrap().insert(text.clone(), Instant::now());
                let body = json!({ "msgtype": "m.text", "body": text });
                assert!(http.put(url).bearer_auth(token).json(&body).send().await.unwrap().status().is_success());
            }
        });
        futures::stream::iter(sends).buffer_unordered(concurrency).collect::<Vec<()>>().await;
        while arrived.lock().unwrap().len() < INCOMING {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let seconds = started.elapsed().as_secs_f64();
        let (arrived, sent_at) = (arrived.lock().unwrap(), sent_at.lock().unwrap());
        let latencies = arrived.iter().filter_map(|(text, at)| Some(at.duration_since(*sent_at.get(text)?))).collect();
        let name = match concurrency {
            1 => "Synapse → appservice, same puppet events, one at a time".to_owned(),
            n => format!("Synapse → appservice, same puppet events, {n} PUTs at once (no order kept)"),
        };
        Figure::new(&name, latencies, seconds)
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
    // One figure and its baseline alone, printed and not written, for trying a change.
    match std::env::var("MXGATE_BENCH_ONLY").as_deref() {
        Ok("send") => {
            let bench = Bench::start(Options::default(), "237600000100").await;
            return print_rows(&[&bench.send_path(" (status events off)").await]);
        }
        Ok("steady") => {
            let bench = Bench::start(Options::default(), "237600000100").await;
            return print_rows(&[&Row { figure: bench.steady().await, baseline: None }]);
        }
        Ok("cluster") => {
            let synapse = synapse_on_postgres().expect("the cluster figures need MXGATE_TEST_POSTGRES");
            return print_rows(&cluster_rows(synapse).await.iter().collect::<Vec<_>>());
        }
        Ok(other) => panic!("MXGATE_BENCH_ONLY is send, steady or cluster, not {other}"),
        Err(_) => {}
    }
    let total = Instant::now();
    let stage = |title: &str| eprintln!("==> {title} ({:.0} s in)", total.elapsed().as_secs_f64());
    let mut bench = Bench::start(Options::default(), "237600000100").await;
    let pid = bench.app.pid().expect("mxgate runs as a process");

    stage("1. auth overhead");
    let [auth, auth_check] = bench.auth_overhead().await;
    stage("2. send path, status events off, then on (a second mxgate)");
    let send = bench.send_path(" (status events off)").await;
    let send_status = {
        let options = Options { message_status_events: true, ..Options::default() };
        let with_status = Bench::start(options, "237600000200").await;
        with_status.send_path(" (status events on)").await
    };
    stage("3. receive path");
    let receive = Row {
        figure: bench.metered(bench.receive_path("")).await,
        baseline: Some(bench.metered(bench.synapse_to_appservice(1)).await),
    };
    let receive_unordered = Row { figure: bench.metered(bench.synapse_to_appservice(32)).await, baseline: None };
    stage(&format!("4. steady incoming: {STEADY_RATE}/s over {STEADY_CHATS} chats"));
    let steady = Row { figure: bench.steady().await, baseline: None };
    let rss_one = rss_kib(pid);
    stage(&format!("5. {DEVICES} devices"));
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
    stage("6. webhook fan-out");
    let fan_out = Row { figure: bench.metered(bench.fan_out()).await, baseline: None };
    drop(bench);

    stage("7. 1 and 2 processes behind nginx, mxgate and Synapse on PostgreSQL");
    let cluster_rows = match synapse_on_postgres() {
        Some(synapse) => Some(cluster_rows(synapse).await),
        None => {
            eprintln!("cluster figures skipped: they need MXGATE_TEST_POSTGRES");
            None
        }
    };

    stage("8. the whatsapp connector against wa-sim");
    let (whatsapp, whatsapp_send) = whatsapp_connector().await;

    stage(&format!("9. failover of {FAILOVER_DEVICES} whatsapp-connector devices between two processes"));
    let failover = failover().await;

    let mut rows = vec![&auth, &auth_check, &send, &send_status, &receive, &receive_unordered, &steady];
    rows.extend([&send_many, &receive_many, &fan_out]);
    rows.extend(cluster_rows.iter().flatten());
    rows.push(&whatsapp_send);

    let failover_seconds = failover["kill_9_until_all_online_seconds"].as_f64();
    let targets = [
        target("send via API ≥ 0.9 × direct Synapse, status events off", send.ratio(), |r| r >= 0.9),
        target(
            "send via API ≥ 0.9 × direct Synapse, status events off, Synapse on PostgreSQL",
            cluster_rows.as_ref().and_then(|r| r[0].ratio()),
            |r| r >= 0.9,
        ),
        target("2 processes ≥ 1.0 × the send rate of 1", cluster_rows.as_ref().and_then(|r| r[1].ratio()), |r| {
            r >= 1.0
        }),
        target(
            "2 processes ≥ 1.0 × the incoming rate of 1",
            cluster_rows.as_ref().and_then(|r| r[2].ratio()),
            |r| r >= 1.0,
        ),
        target(&format!("failover of {FAILOVER_DEVICES} devices < 15 s"), failover_seconds, |s| s < 15.0),
        target("steady incoming: webhook p99 < 1 s", Some(steady.figure.p99_ms / 1000.0), |s| s < 1.0),
    ];
    let results = json!({
        "machine": machine(),
        "auth_overhead": auth.json(),
        "auth_token_check": auth_check.json(),
        "send_path": send.json(),
        "send_path_status_events": send_status.json(),
        "receive_path": receive.json(),
        "receive_baseline_unordered": receive_unordered.figure.json(),
        "steady_incoming": steady.figure.json(),
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
        "cluster": cluster_rows.as_ref().map(|[synapse, send, receive]| json!({
            "synapse_database": "postgresql",
            "devices": CLUSTER_DEVICES,
            "chats": CLUSTER_DEVICES * CLUSTER_CONTACTS,
            "send_one_process_vs_synapse": synapse.json(),
            "send_two_vs_one": send.json(),
            "receive_two_vs_one": receive.json(),
        })),
        "whatsapp": whatsapp,
        "failover": failover,
        "targets": targets.iter().map(|t| t.0.clone()).collect::<Vec<_>>(),
        "total_seconds": total.elapsed().as_secs_f64(),
    });
    print_table(&rows, &results);
    for (_, line) in &targets {
        println!("{line}");
    }
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/bench/results.json");
    std::fs::write(path, serde_json::to_string_pretty(&results).unwrap() + "\n").unwrap();
    eprintln!("wrote {path} in {:.0} s", total.elapsed().as_secs_f64());
}

/// One of issue #12's targets: its JSON and the line printed for it.
fn target(name: &str, value: Option<f64>, met: impl Fn(f64) -> bool) -> (Value, String) {
    let met = value.map(met);
    let verdict = match met {
        Some(true) => "met",
        Some(false) => "NOT met",
        None => "not measured",
    };
    let line = format!("target: {name}: {verdict}{}", value.map_or(String::new(), |v| format!(" ({v:.2})")));
    (json!({ "target": name, "value": value, "met": met }), line)
}

/// One cluster of the cluster figures, linked and warm.
struct ClusterRun {
    cluster: Cluster,
    label: String,
    pids: Vec<u32>,
    /// Sends through the balancer to the devices in turn.
    sends: Request,
    /// The sends' direct-Synapse baseline: the same events straight into the portals.
    direct: Request,
    /// Each device's contacts' chats, at the process that holds the device.
    chats: Vec<Chat>,
    receiver: WebhookReceiver,
    http: reqwest::Client,
}

/// `processes` × `mxgate serve` behind nginx on one PostgreSQL database, with `synapse` on
/// PostgreSQL too, on the `sim` network: `CLUSTER_DEVICES` devices spread over the
/// processes. Each process has a simulator of its own, so a device is "scanned" at the
/// process its QR socket reached, and its messages are injected at the process holding
/// it, as WhatsApp delivers to the connected client. Sends and the homeserver's pushes go
/// through the balancer.
async fn cluster_run(synapse: &'static Synapse, processes: usize) -> ClusterRun {
    let options = Options { synapse: Some(synapse), ..Options::default() };
    let cluster = Cluster::start(&vec![Layout::Serve; processes], options).await.expect("MXGATE_TEST_POSTGRES is set");
    let app = &cluster.app;
    let http = reqwest::Client::builder().pool_max_idle_per_host(64).build().unwrap();
    let issued = app.admin_token(false).await;
    let token = issued["token"].as_str().unwrap().to_owned();
    let identity = issued["matrix_user_id"].as_str().unwrap().to_owned();
    let devices: Vec<String> = (0..CLUSTER_DEVICES).map(|n| format!("2376400{n:05}")).collect();
    let bases: Vec<String> = cluster.members.iter().map(|m| m.base.clone()).collect();
    for device in &devices {
        link_device_with(app, &token, 1, |_| {
            let (http, bases, phone) = (http.clone(), bases.clone(), device.clone());
            async move {
                for base in &bases {
                    let scan = http.post(format!("{base}/sim/qr/scan")).json(&json!({ "phone": phone }));
                    if scan.send().await.is_ok_and(|r| r.status().is_success()) {
                        return;
                    }
                }
                panic!("no process has a pending login for {phone}");
            }
        })
        .await;
    }
    let receiver = WebhookReceiver::start().await;
    app.add_webhook(&token, &receiver.url).await;
    let owners = patiently("the devices to spread over the processes", Duration::from_secs(120), || async {
        let owners = cluster.owners().await;
        let spread = cluster.members.iter().all(|m| {
            owners.values().filter(|o| o.process == m.bridge_url && o.state == "connected").count()
                == CLUSTER_DEVICES / processes
        });
        (owners.len() == CLUSTER_DEVICES && spread).then_some(owners)
    })
    .await;
    let holder = |device: &str| {
        let process = &owners[device].process;
        cluster.members.iter().find(|m| m.bridge_url == *process).expect("a member holds each device")
    };
    let label = match processes {
        1 => "1 process".to_owned(),
        n => format!("{n} processes"),
    };
    // Each device's portal with CONTACT made by one send first, not measured.
    for device in &devices {
        assert!(send_once(http.clone(), app.base.clone(), token.clone(), device.clone(), 0).await, "a first send");
    }
    let (send_http, base, send_token, send_devices) = (http.clone(), app.base.clone(), token.clone(), devices.clone());
    let sends = request(move |n| {
        let device = send_devices[n / 1_000_000 % send_devices.len()].clone();
        send_once(send_http.clone(), base.clone(), send_token.clone(), device, n)
    });
    let mut rooms = Vec::new();
    for device in &devices {
        let bridge = &holder(device).bridge_url;
        rooms.push(portal_room(&http, bridge, &app.provisioning_secret, &identity, device).await);
    }
    let direct = direct_send(&http, synapse, &app.slot.pair.api.as_token, &identity, &rooms);
    let chats: Vec<Chat> = devices
        .iter()
        .flat_map(|device| {
            let base = holder(device).base.clone();
            (0..CLUSTER_CONTACTS).map(move |n| Chat {
                base: base.clone(),
                device: device.clone(),
                contact: format!("2376500{n:05}"),
            })
        })
        .collect();
    incoming_burst("warm-up", &http, &receiver, &chats, chats.len()).await;
    let pids = cluster.pids();
    ClusterRun { cluster, label, pids, sends, direct, chats, receiver, http }
}

impl ClusterRun {
    fn send_name(&self) -> String {
        format!("send via API, {}, Synapse on PostgreSQL ({CLUSTER_DEVICES} devices)", self.label)
    }

    async fn receive(&self, synapse: &Synapse) -> Figure {
        let name = format!("1,000 incoming over {} chats, {}, Synapse on PostgreSQL", self.chats.len(), self.label);
        let burst = incoming_burst(&name, &self.http, &self.receiver, &self.chats, INCOMING);
        metered(&self.pids, synapse.pid().expect("the PostgreSQL Synapse runs"), burst).await
    }
}

/// The cluster rows: one process against direct Synapse, two against one for sends (in
/// turns, both clusters up at once on the same Synapse), two against one for incoming.
async fn cluster_rows(synapse: &'static Synapse) -> [Row; 3] {
    let (one, two) = (cluster_run(synapse, 1).await, cluster_run(synapse, 2).await);
    let synapse_pid = synapse.pid().expect("the PostgreSQL Synapse runs");
    let (one_name, two_name) = (one.send_name(), two.send_name());
    let [one_send, direct] = in_turns(
        &one.pids,
        synapse_pid,
        (&one_name, one.sends.clone()),
        ("PUT m.room.message to Synapse on PostgreSQL", one.direct.clone()),
    )
    .await;
    let all: Vec<u32> = one.pids.iter().chain(&two.pids).copied().collect();
    let [two_send, one_again] =
        in_turns(&all, synapse_pid, (&two_name, two.sends.clone()), (&one_name, one.sends.clone())).await;
    let (one_receive, two_receive) = (one.receive(synapse).await, two.receive(synapse).await);
    drop((one.cluster, two.cluster));
    [
        Row { figure: one_send, baseline: Some(direct) },
        Row { figure: two_send, baseline: Some(one_again) },
        Row { figure: two_receive, baseline: Some(one_receive) },
    ]
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
    // The portal and the Signal session with the contact are made by a first send, not measured.
    assert!(send_once(http.clone(), base.clone(), token.clone(), device.clone(), 0).await, "a first send");
    let token_for_send = token.clone();
    let meter = CpuMeter::start(&[app.pid().unwrap()], app.synapse.pid().expect("the test Synapse is running"));
    let mut figure = sustained("send via API on whatsapp (wa-sim), until WhatsApp accepted it", move |n| {
        let (http, base, token, device) = (http.clone(), base.clone(), token_for_send.clone(), device.clone());
        send_once(http, base, token, device, n)
    })
    .await;
    figure.cpu_ms = meter.per_op(figure.count);
    let sent = figure.count + 1;
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
    print_rows(rows);
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

fn print_rows(rows: &[&Row]) {
    println!(
        "| figure | per s | p50 ms | p99 ms | CPU ms/op mxgate + Synapse + rest | baseline | per s | p50 ms | p99 ms | CPU ms/op Synapse + rest | ratio |"
    );
    println!("| --- | ---: | ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: |");
    for row in rows {
        let f = &row.figure;
        let baseline = row.baseline.as_ref().map_or("| | | | | |".to_owned(), |b| {
            let (name, rate, cpu) = (&b.name, b.rate(), b.cpu_ms);
            format!("| {name} | {rate:.0} | {:.1} | {:.1} | {:.1} + {:.1} |", b.p50_ms, b.p99_ms, cpu[1], cpu[2])
        });
        let ratio = row.ratio().map_or(String::new(), |r| format!("{r:.2}"));
        println!(
            "| {} | {:.0} | {:.1} | {:.1} | {:.1} + {:.1} + {:.1} {baseline} {ratio} |",
            f.name,
            f.rate(),
            f.p50_ms,
            f.p99_ms,
            f.cpu_ms[0],
            f.cpu_ms[1],
            f.cpu_ms[2]
        );
    }
}
