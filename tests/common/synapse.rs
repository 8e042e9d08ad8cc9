//! One real Synapse per test process (SQLite), started on first use and stopped when the
//! process exits (a watchdog shell kills it, so even a panicking run leaves none behind);
//! and, for `make bench`, a second one on PostgreSQL, started the same way when first asked for.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use mxgate::secret::random_string;
use mxgate::setup::{AppservicePair, Registration, SynapseDatabase, SynapseParams, render_synapse};
use url::Url;

pub struct Synapse {
    pub url: Url,
    pub server_name: String,
    pub registration_shared_secret: String,
    /// One pair of registrations per concurrent mxgate; a test holds one at a time.
    pub slots: Vec<AppservicePair>,
    pub log: PathBuf,
    pub config: PathBuf,
}

impl Synapse {
    /// The Synapse process of this run, found by its config path.
    pub fn pid(&self) -> Option<u32> {
        let config = self.config.to_string_lossy().into_owned();
        std::fs::read_dir("/proc").ok()?.flatten().find_map(|entry| {
            let pid: u32 = entry.file_name().to_str()?.parse().ok()?;
            let cmdline = std::fs::read(entry.path().join("cmdline")).ok()?;
            let cmdline = String::from_utf8_lossy(&cmdline);
            (cmdline.contains("synapse.app.homeserver") && cmdline.contains(&config) && !cmdline.starts_with("sh"))
                .then_some(pid)
        })
    }

    /// What Synapse still holds for an appservice: its state and the transactions it has
    /// not delivered, with their events. A story that finds a message missing says it.
    #[allow(dead_code)]
    pub async fn appservice_backlog(&self, appservice_id: &str) -> String {
        use sqlx::sqlite::SqliteConnectOptions;
        let path = self.config.parent().unwrap().join("homeserver.db");
        let options = SqliteConnectOptions::new().filename(&path).read_only(true);
        let pool = match sqlx::SqlitePool::connect_with(options).await {
            Ok(pool) => pool,
            Err(error) => return format!("Synapse's database not readable: {error}"),
        };
        let state: Option<String> = sqlx::query_scalar("SELECT state FROM application_services_state WHERE as_id = ?")
            .bind(appservice_id)
            .fetch_optional(&pool)
            .await
            .unwrap_or_default();
        let txns: Vec<(i64, String)> =
            sqlx::query_as("SELECT txn_id, event_ids FROM application_services_txns WHERE as_id = ? ORDER BY txn_id")
                .bind(appservice_id)
                .fetch_all(&pool)
                .await
                .unwrap_or_default();
        pool.close().await;
        format!("{appservice_id}: state {state:?}, undelivered transactions {txns:?}")
    }
}

/// How many mxgates may share the Synapse at once.
pub const SLOTS: usize = 6;

pub fn synapse() -> &'static Synapse {
    static SYNAPSE: OnceLock<Synapse> = OnceLock::new();
    SYNAPSE.get_or_init(|| start(SynapseDatabase::Sqlite))
}

/// A Synapse of its own whose database is PostgreSQL: a new database on the server at
/// `MXGATE_TEST_POSTGRES`, created as `mxgate setup` creates Synapse's (C collation), so
/// Synapse needs psycopg2 in `.venv` (`make bench` installs it). `None` without that
/// server. A test chooses it with `Options::synapse`.
#[allow(dead_code)]
pub fn synapse_on_postgres() -> Option<&'static Synapse> {
    static SYNAPSE: OnceLock<Synapse> = OnceLock::new();
    let server = std::env::var("MXGATE_TEST_POSTGRES").ok()?;
    Some(SYNAPSE.get_or_init(|| {
        let mut database: Url = server.parse().expect("MXGATE_TEST_POSTGRES is a URL");
        database.set_path(&format!("/synapse_test_{}", mxgate::secret::random_hex(6)));
        database.set_query(None);
        let synapse_url = database.to_string();
        // The caller is inside a runtime that must not block on a future: a thread of its own.
        let created = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            runtime.block_on(mxgate::setup::create_synapse_database(&server, &synapse_url))
        });
        created.join().unwrap().expect("Synapse's database created on MXGATE_TEST_POSTGRES");
        start(SynapseDatabase::Postgres(database))
    }))
}

/// A port nothing listens on, for a server a test starts later (a child process binds it
/// itself). Taken below the kernel's ephemeral range (32768 and up), where the test's own
/// outgoing connections get their ports, so none of those takes it before the server
/// binds; never the same one twice in a run.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU16, Ordering};
    const FIRST: u16 = 20_000;
    const LAST: u16 = 32_000;
    static NEXT: AtomicU16 = AtomicU16::new(0);
    let _ = NEXT.compare_exchange(0, rand::random_range(FIRST..LAST), Ordering::SeqCst, Ordering::SeqCst);
    loop {
        let port = NEXT.fetch_add(1, Ordering::SeqCst);
        if port >= LAST {
            NEXT.store(FIRST, Ordering::SeqCst);
            continue;
        }
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn start(database: SynapseDatabase) -> Synapse {
    let python =
        std::env::var("MXGATE_SYNAPSE_PYTHON").map(PathBuf::from).unwrap_or_else(|_| repo().join(".venv/bin/python"));
    assert!(python.exists(), "{} is missing: run `make synapse` (make test does)", python.display());
    let dir = tempfile::Builder::new().prefix("mxgate-synapse-").tempdir().unwrap().keep();
    let url: Url = format!("http://127.0.0.1:{}", free_port()).parse().unwrap();
    // Each registration URL is bound here and served by a relay for the whole run; holding
    // the socket from the start keeps another test from taking the port in between.
    let mut relays = Vec::new();
    let mut registration = |prefix: String, localpart: String| {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
        relays.push((url.clone(), listener));
        Registration {
            url,
            as_token: random_string(32),
            hs_token: random_string(32),
            sender_localpart: localpart,
            prefix,
        }
    };
    let slots = (0..SLOTS)
        .map(|k| AppservicePair {
            suffix: format!("-{k}"),
            api: registration(format!("mt{k}_"), format!("mxgate{k}")),
            bridge: registration(format!("whatsapp{k}_"), format!("whatsappbot{k}")),
        })
        .collect();
    let params = SynapseParams {
        server_name: "mxgate.test".into(),
        homeserver_url: url.clone(),
        synapse_dir: dir.clone(),
        database,
        registration_shared_secret: random_string(32),
        macaroon_secret_key: random_string(32),
        form_secret: random_string(32),
        appservices: slots,
    };
    super::relay::start(relays);
    render_synapse(&repo().join("config"), &params).unwrap();
    let config = params.config_path();
    let status = Command::new(&python)
        .args(["-m", "synapse.app.homeserver", "-c"])
        .arg(&config)
        .arg("--generate-keys")
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "synapse --generate-keys failed");

    let log = dir.join("homeserver.log");
    let watchdog = format!(
        r#""$0" -m synapse.app.homeserver -c "$1" >"$2" 2>&1 & child=$!
        while kill -0 {parent} 2>/dev/null && kill -0 $child 2>/dev/null; do sleep 0.5; done
        kill $child 2>/dev/null; wait $child; rm -rf "$3""#,
        parent = std::process::id()
    );
    // The watchdog must outlive this process to clean up after it, so it is never waited on.
    #[allow(clippy::zombie_processes)]
    Command::new("sh")
        .args(["-c", &watchdog])
        .arg(&python)
        .arg(&config)
        .arg(&log)
        .arg(&dir)
        .stdin(Stdio::null())
        .spawn()
        .unwrap();

    let deadline = Instant::now() + Duration::from_secs(90);
    while !healthy(&url) {
        assert!(Instant::now() < deadline, "Synapse did not start; log:\n{}", tail(&log));
        std::thread::sleep(Duration::from_millis(200));
    }
    Synapse {
        url,
        server_name: params.server_name,
        registration_shared_secret: params.registration_shared_secret,
        slots: params.appservices,
        log,
        config,
    }
}

fn healthy(url: &Url) -> bool {
    let addr = format!("{}:{}", url.host_str().unwrap(), url.port().unwrap());
    let Ok(mut stream) = TcpStream::connect(addr) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    if stream.write_all(b"GET /health HTTP/1.0\r\n\r\n").is_err() {
        return false;
    }
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    answer.starts_with("HTTP/1.1 200") || answer.starts_with("HTTP/1.0 200")
}

fn tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines().rev().take(40).collect::<Vec<_>>().into_iter().rev().collect::<Vec<_>>().join("\n")
}
