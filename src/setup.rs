//! `mxgate setup`: secrets into `.env`, and the homeserver's configuration rendered
//! from the templates in `config/`. Re-running keeps every existing value.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use url::Url;

use crate::config::SetupConfig;
use crate::secret::{random_hex, random_string};

/// Secrets `setup` generates when `.env` lacks them.
const SECRETS: [&str; 10] = [
    "CLIENT_SECRET",
    "MXGATE_API_AS_TOKEN",
    "MXGATE_API_HS_TOKEN",
    "MXGATE_BRIDGE_AS_TOKEN",
    "MXGATE_BRIDGE_HS_TOKEN",
    "MXGATE_TICKET_KEY",
    "MXGATE_PROVISIONING_SECRET",
    "MXGATE_REGISTRATION_SHARED_SECRET",
    "SYNAPSE_MACAROON_SECRET_KEY",
    "SYNAPSE_FORM_SECRET",
];

/// Plain settings `setup` writes with their defaults, so `.env` shows what can be changed.
const DEFAULTS: [(&str, &str); 8] = [
    ("LISTEN_ADDR", "127.0.0.1:8080"),
    ("DATABASE_URL", "sqlite://data/mxgate.db"),
    ("MXGATE_SERVER_NAME", "localhost"),
    ("MXGATE_HOMESERVER_URL", "http://127.0.0.1:8008"),
    ("MXGATE_BRIDGE_LISTEN_ADDR", "127.0.0.1:29318"),
    ("MXGATE_IDENTITY_PREFIX", "mt_"),
    ("MXGATE_BRIDGE_BOT", "whatsappbot"),
    ("MXGATE_PUPPET_PREFIX", "whatsapp_"),
];

pub fn run(setup: &SetupConfig) -> anyhow::Result<()> {
    let mut env = read_env(&setup.env_file)?;
    let before = env.len();
    env.entry("CLIENT_ID".into()).or_insert_with(|| format!("mxg_{}", random_hex(8)));
    for key in SECRETS {
        env.entry(key.into()).or_insert_with(|| random_string(32));
    }
    for (key, default) in DEFAULTS {
        // A value already in the environment (e.g. DATABASE_URL=postgres://…) is the user's choice.
        let value = std::env::var(key).unwrap_or_else(|_| default.to_owned());
        env.entry(key.into()).or_insert(value);
    }
    let database = SynapseDatabase::for_env(&mut env)?;
    let workers = SynapseWorkers::for_env(&mut env, &database)?;
    write_env(&setup.env_file, &env)?;
    if env.len() > before {
        tracing::info!(added = env.len() - before, file = %setup.env_file.display(), "wrote new settings");
    }

    let homeserver_url: Url = env["MXGATE_HOMESERVER_URL"].parse().context("MXGATE_HOMESERVER_URL")?;
    let api_url = format!("http://{}", env["LISTEN_ADDR"]);
    let bridge_url = format!("http://{}", env["MXGATE_BRIDGE_LISTEN_ADDR"]);
    let synapse_dir = absolute(&setup.data_dir.join("synapse"))?;
    let params = SynapseParams {
        server_name: env["MXGATE_SERVER_NAME"].clone(),
        homeserver_url,
        synapse_dir,
        database,
        registration_shared_secret: env["MXGATE_REGISTRATION_SHARED_SECRET"].clone(),
        macaroon_secret_key: env["SYNAPSE_MACAROON_SECRET_KEY"].clone(),
        form_secret: env["SYNAPSE_FORM_SECRET"].clone(),
        appservices: vec![AppservicePair {
            suffix: String::new(),
            api: Registration {
                url: api_url,
                as_token: env["MXGATE_API_AS_TOKEN"].clone(),
                hs_token: env["MXGATE_API_HS_TOKEN"].clone(),
                sender_localpart: "mxgate".into(),
                prefix: env["MXGATE_IDENTITY_PREFIX"].clone(),
            },
            bridge: Registration {
                url: bridge_url,
                as_token: env["MXGATE_BRIDGE_AS_TOKEN"].clone(),
                hs_token: env["MXGATE_BRIDGE_HS_TOKEN"].clone(),
                sender_localpart: env["MXGATE_BRIDGE_BOT"].clone(),
                prefix: env["MXGATE_PUPPET_PREFIX"].clone(),
            },
        }],
    };
    render_synapse_with(&setup.config_dir, &params, workers.as_ref())?;
    tracing::info!(
        dir = %params.synapse_dir.display(),
        workers = workers.is_some(),
        "rendered the homeserver configuration"
    );
    Ok(())
}

/// One appservice registration's values.
#[derive(Debug, Clone)]
pub struct Registration {
    pub url: String,
    pub as_token: String,
    pub hs_token: String,
    pub sender_localpart: String,
    /// Localpart prefix of the users (and, for the bridge, aliases) it owns exclusively.
    pub prefix: String,
}

#[derive(Debug, Clone)]
pub enum SynapseDatabase {
    Sqlite,
    /// Synapse's own database on a PostgreSQL server (`SYNAPSE_DATABASE_URL`), created by
    /// [`create_synapse_database`] with the C collation Synapse requires.
    Postgres(Url),
}

impl SynapseDatabase {
    /// Synapse beside mxgate's store: on PostgreSQL when mxgate is, in a database of its own.
    fn for_env(env: &mut BTreeMap<String, String>) -> anyhow::Result<Self> {
        let mxgate = &env["DATABASE_URL"];
        if !(mxgate.starts_with("postgres:") || mxgate.starts_with("postgresql:")) {
            return Ok(Self::Sqlite);
        }
        let mut default: Url = mxgate.parse().context("DATABASE_URL")?;
        default.set_path("/synapse");
        default.set_query(None);
        let chosen = std::env::var("SYNAPSE_DATABASE_URL").unwrap_or_else(|_| default.to_string());
        let url = env.entry("SYNAPSE_DATABASE_URL".into()).or_insert(chosen);
        Ok(Self::Postgres(url.parse().context("SYNAPSE_DATABASE_URL")?))
    }

    /// The `database:` section of `homeserver.yaml`.
    fn yaml(&self, dir: &Path) -> anyhow::Result<String> {
        Ok(match self {
            Self::Sqlite => {
                format!("  name: sqlite3\n  args:\n    database: \"{}\"", dir.join("homeserver.db").display())
            }
            Self::Postgres(url) => {
                let decoded = |s: &str| percent_encoding::percent_decode_str(s).decode_utf8_lossy().into_owned();
                let mut args = vec![
                    format!("user: \"{}\"", decoded(url.username())),
                    format!("dbname: \"{}\"", synapse_database_name(url)?),
                    format!("host: \"{}\"", url.host_str().unwrap_or("127.0.0.1")),
                    format!("port: {}", url.port().unwrap_or(5432)),
                    "cp_min: 5".into(),
                    "cp_max: 10".into(),
                ];
                if let Some(password) = url.password() {
                    args.push(format!("password: \"{}\"", decoded(password)));
                }
                format!("  name: psycopg2\n  args:\n    {}", args.join("\n    "))
            }
        })
    }
}

/// The database name of `url`, which is written into SQL and YAML: letters, digits, `_`.
fn synapse_database_name(url: &Url) -> anyhow::Result<String> {
    let name = url.path().trim_start_matches('/');
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        bail!("SYNAPSE_DATABASE_URL must name a database of letters, digits and underscores, not {name:?}");
    }
    Ok(name.to_owned())
}

/// Creates Synapse's PostgreSQL database unless it exists: UTF-8 with the C collation and
/// character type, which Synapse refuses to start without. Connects as `DATABASE_URL`'s user.
pub async fn create_synapse_database(mxgate_url: &str, synapse_url: &str) -> anyhow::Result<()> {
    let name = synapse_database_name(&synapse_url.parse().context("SYNAPSE_DATABASE_URL")?)?;
    let db = crate::db::Db::connect(mxgate_url).await.context("connecting to DATABASE_URL")?;
    let exists: Option<i32> =
        sqlx::query_scalar("SELECT 1 FROM pg_database WHERE datname = $1").bind(&name).fetch_optional(&db.pool).await?;
    if exists.is_none() {
        let create = format!("CREATE DATABASE {name} ENCODING 'UTF8' LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0");
        sqlx::query(sqlx::AssertSqlSafe(create)).execute(&db.pool).await.context("creating Synapse's database")?;
        tracing::info!(database = %name, "created Synapse's database");
    }
    db.pool.close().await;
    Ok(())
}

/// The worker that persists every event (`stream_writers: events`).
pub const EVENT_PERSISTER: &str = "event_persister1";
/// The worker that sends the appservice transactions (`notify_appservices_from_worker`).
pub const APPSERVICE_PUSHER: &str = "appservice_pusher1";

/// Synapse in several processes (`MXGATE_SYNAPSE_WORKERS=true`): the main process, an event
/// persister and an appservice pusher, replicating through Redis. Needs PostgreSQL.
#[derive(Debug, Clone)]
pub struct SynapseWorkers {
    /// `SYNAPSE_REDIS_URL`: `redis://[[user]:password@]host[:port][/db]`, `rediss://` for TLS.
    pub redis: Url,
    /// `SYNAPSE_REPLICATION_PORT`: the main process's HTTP replication listener.
    pub replication_port: u16,
    /// `SYNAPSE_EVENT_PERSISTER_PORT`: the event persister's HTTP replication listener.
    pub event_persister_port: u16,
    /// `SYNAPSE_APPSERVICE_PUSHER_PORT`: the appservice pusher's listener (health, ping).
    pub appservice_pusher_port: u16,
    /// `SYNAPSE_WORKER_REPLICATION_SECRET`: authenticates replication requests.
    pub replication_secret: String,
}

impl SynapseWorkers {
    /// Workers when `MXGATE_SYNAPSE_WORKERS` (`.env` first, then the environment) says so;
    /// their settings get defaults in `env`, so `.env` shows what can be changed.
    fn for_env(env: &mut BTreeMap<String, String>, database: &SynapseDatabase) -> anyhow::Result<Option<Self>> {
        let key = "MXGATE_SYNAPSE_WORKERS";
        let chosen = env.get(key).cloned().or_else(|| std::env::var(key).ok()).unwrap_or_default();
        let on = match chosen.trim().to_ascii_lowercase().as_str() {
            "" | "false" | "0" | "no" | "off" => false,
            "true" | "1" | "yes" | "on" => true,
            other => bail!("{key} must be true or false, not {other:?}"),
        };
        if !on {
            return Ok(None);
        }
        if matches!(database, SynapseDatabase::Sqlite) {
            bail!(
                "{key}=true needs PostgreSQL: Synapse's processes share one database (set DATABASE_URL=postgres://…)"
            );
        }
        env.insert(key.into(), "true".into());
        let mut setting = |key: &str, default: String| -> String {
            let value = std::env::var(key).unwrap_or(default);
            env.entry(key.into()).or_insert(value).clone()
        };
        let redis = setting("SYNAPSE_REDIS_URL", "redis://127.0.0.1:6379".into());
        let replication_port = setting("SYNAPSE_REPLICATION_PORT", "9093".into());
        let event_persister_port = setting("SYNAPSE_EVENT_PERSISTER_PORT", "9094".into());
        let appservice_pusher_port = setting("SYNAPSE_APPSERVICE_PUSHER_PORT", "9095".into());
        let replication_secret = setting("SYNAPSE_WORKER_REPLICATION_SECRET", random_string(32));
        let port = |name: &str, value: String| value.trim().parse::<u16>().with_context(|| format!("{name}={value}"));
        Ok(Some(Self {
            redis: redis.parse().context("SYNAPSE_REDIS_URL")?,
            replication_port: port("SYNAPSE_REPLICATION_PORT", replication_port)?,
            event_persister_port: port("SYNAPSE_EVENT_PERSISTER_PORT", event_persister_port)?,
            appservice_pusher_port: port("SYNAPSE_APPSERVICE_PUSHER_PORT", appservice_pusher_port)?,
            replication_secret,
        }))
    }

    /// The `redis:` section of `homeserver.yaml`.
    fn redis_yaml(&self) -> anyhow::Result<String> {
        let url = &self.redis;
        let tls = match url.scheme() {
            "redis" => false,
            "rediss" => true,
            other => bail!("SYNAPSE_REDIS_URL must be redis:// or rediss://, not {other}://"),
        };
        let decoded = |s: &str| percent_encoding::percent_decode_str(s).decode_utf8_lossy().into_owned();
        let mut lines = vec![
            "enabled: true".to_owned(),
            format!(
                "host: \"{}\"",
                url.host_str().filter(|h| !h.is_empty()).context("SYNAPSE_REDIS_URL without a host")?
            ),
            format!("port: {}", url.port().unwrap_or(6379)),
        ];
        let db = url.path().trim_matches('/');
        if !db.is_empty() {
            let db: u32 = db.parse().with_context(|| format!("SYNAPSE_REDIS_URL: database {db:?} is not a number"))?;
            lines.push(format!("dbid: {db}"));
        }
        if !url.username().is_empty() {
            lines.push(format!("username: \"{}\"", decoded(url.username())));
        }
        if let Some(password) = url.password() {
            lines.push(format!("password: \"{}\"", decoded(password)));
        }
        if tls {
            lines.push("use_tls: true".into());
        }
        Ok(format!("  {}", lines.join("\n  ")))
    }
}

/// Everything the Synapse templates need.
#[derive(Debug, Clone)]
pub struct SynapseParams {
    pub server_name: String,
    pub homeserver_url: Url,
    pub synapse_dir: PathBuf,
    pub database: SynapseDatabase,
    pub registration_shared_secret: String,
    pub macaroon_secret_key: String,
    pub form_secret: String,
    /// One API and one bridge registration per mxgate that uses this homeserver.
    pub appservices: Vec<AppservicePair>,
}

/// The two registrations of one mxgate deployment; `suffix` keeps their files and ids apart.
#[derive(Debug, Clone)]
pub struct AppservicePair {
    pub suffix: String,
    pub api: Registration,
    pub bridge: Registration,
}

impl AppservicePair {
    /// The API registration's `id` (`MXGATE_API_APPSERVICE_ID` defaults to the unsuffixed one).
    pub fn api_id(&self) -> String {
        format!("mxgate-api{}", self.suffix)
    }

    /// The bridge registration's `id` (`MXGATE_BRIDGE_APPSERVICE_ID` defaults to the unsuffixed one).
    pub fn bridge_id(&self) -> String {
        format!("mxgate-whatsapp{}", self.suffix)
    }
}

impl SynapseParams {
    pub fn config_path(&self) -> PathBuf {
        self.synapse_dir.join("homeserver.yaml")
    }
}

/// Writes `homeserver.yaml` and the two registrations into `params.synapse_dir`: Synapse in
/// one process.
pub fn render_synapse(config_dir: &Path, params: &SynapseParams) -> anyhow::Result<()> {
    render_synapse_with(config_dir, params, None)
}

/// [`render_synapse`], and with `workers` also their section of `homeserver.yaml` and
/// `workers/<worker_name>.yaml` for each worker. Without, it removes those worker files, so
/// no worker starts against a homeserver that expects none.
pub fn render_synapse_with(
    config_dir: &Path,
    params: &SynapseParams,
    workers: Option<&SynapseWorkers>,
) -> anyhow::Result<()> {
    let dir = &params.synapse_dir;
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let port = params.homeserver_url.port_or_known_default().context("homeserver URL without a port")?;
    let database = params.database.yaml(dir)?;
    let server_name_regex = params.server_name.replace('.', "\\\\.");
    let mut files = Vec::new();
    let common: Vec<(&str, String)> = vec![
        ("server_name", params.server_name.clone()),
        ("server_name_regex", server_name_regex),
        ("homeserver_url", params.homeserver_url.as_str().trim_end_matches('/').to_owned()),
        ("synapse_dir", dir.display().to_string()),
        ("synapse_port", port.to_string()),
        ("synapse_database", database),
        ("registration_shared_secret", params.registration_shared_secret.clone()),
        ("macaroon_secret_key", params.macaroon_secret_key.clone()),
        ("form_secret", params.form_secret.clone()),
        ("max_upload_size", "100M".into()),
    ];
    for pair in &params.appservices {
        let api_path = dir.join(format!("api-registration{}.yaml", pair.suffix));
        let bridge_path = dir.join(format!("bridge-registration{}.yaml", pair.suffix));
        let mut vars = common.clone();
        vars.extend([
            ("api_id", pair.api_id()),
            ("bridge_id", pair.bridge_id()),
            ("api_appservice_url", pair.api.url.clone()),
            ("api_as_token", pair.api.as_token.clone()),
            ("api_hs_token", pair.api.hs_token.clone()),
            ("api_sender_localpart", pair.api.sender_localpart.clone()),
            ("identity_prefix", pair.api.prefix.clone()),
            ("bridge_appservice_url", pair.bridge.url.clone()),
            ("bridge_as_token", pair.bridge.as_token.clone()),
            ("bridge_hs_token", pair.bridge.hs_token.clone()),
            ("bridge_bot_localpart", pair.bridge.sender_localpart.clone()),
            ("puppet_prefix", pair.bridge.prefix.clone()),
        ]);
        for (template, target) in [("api-registration.yaml", &api_path), ("bridge-registration.yaml", &bridge_path)] {
            render_file(config_dir, template, target, &vars)?;
        }
        files.push(format!("  - \"{}\"", api_path.display()));
        files.push(format!("  - \"{}\"", bridge_path.display()));
    }
    let mut vars = common;
    vars.push(("app_service_config_files", files.join("\n")));
    let (listener, section) = match workers {
        Some(workers) => render_workers(config_dir, dir, port, workers)?,
        None => {
            for name in [EVENT_PERSISTER, APPSERVICE_PUSHER] {
                let stale = dir.join("workers").join(format!("{name}.yaml"));
                if stale.exists() {
                    fs::remove_file(&stale).with_context(|| format!("removing {}", stale.display()))?;
                }
            }
            (String::new(), String::new())
        }
    };
    vars.push(("synapse_replication_listener", listener));
    vars.push(("synapse_workers", section));
    render_file(config_dir, "homeserver.yaml", &params.config_path(), &vars)
}

/// Writes each worker's file into `dir/workers/` and returns the main process's replication
/// listener and the shared section, both for `homeserver.yaml`.
fn render_workers(
    config_dir: &Path,
    dir: &Path,
    client_port: u16,
    workers: &SynapseWorkers,
) -> anyhow::Result<(String, String)> {
    let ports = [
        ("MXGATE_HOMESERVER_URL", client_port),
        ("SYNAPSE_REPLICATION_PORT", workers.replication_port),
        ("SYNAPSE_EVENT_PERSISTER_PORT", workers.event_persister_port),
        ("SYNAPSE_APPSERVICE_PUSHER_PORT", workers.appservice_pusher_port),
    ];
    for (i, (a, port)) in ports.iter().enumerate() {
        if let Some((b, _)) = ports[i + 1..].iter().find(|(_, other)| other == port) {
            bail!("{a} and {b} both use port {port}: each Synapse listener needs its own");
        }
    }
    let vars: Vec<(&str, String)> = vec![
        ("synapse_dir", dir.display().to_string()),
        ("event_persister", EVENT_PERSISTER.into()),
        ("appservice_pusher", APPSERVICE_PUSHER.into()),
        ("synapse_replication_port", workers.replication_port.to_string()),
        ("event_persister_port", workers.event_persister_port.to_string()),
        ("appservice_pusher_port", workers.appservice_pusher_port.to_string()),
        ("worker_replication_secret", workers.replication_secret.clone()),
        ("synapse_redis", workers.redis_yaml()?),
    ];
    let workers_dir = dir.join("workers");
    fs::create_dir_all(&workers_dir).with_context(|| format!("creating {}", workers_dir.display()))?;
    for (template, name) in [("event-persister.yaml", EVENT_PERSISTER), ("appservice-pusher.yaml", APPSERVICE_PUSHER)] {
        let target = workers_dir.join(format!("{name}.yaml"));
        render_file(config_dir, &format!("workers/{template}"), &target, &vars)?;
    }
    let listener = render_template(config_dir, "workers/main-listener.yaml", &vars)?;
    let section = render_template(config_dir, "workers/homeserver.yaml", &vars)?;
    Ok((listener.trim_end().to_owned(), format!("\n{}", section.trim_end())))
}

fn render_file(config_dir: &Path, template: &str, target: &Path, vars: &[(&str, String)]) -> anyhow::Result<()> {
    write_private(target, &render_template(config_dir, template, vars)?)
}

fn render_template(config_dir: &Path, template: &str, vars: &[(&str, String)]) -> anyhow::Result<String> {
    let source = config_dir.join(template);
    let text = fs::read_to_string(&source).with_context(|| format!("reading {}", source.display()))?;
    render(&text, vars).with_context(|| format!("rendering {template}"))
}

/// Replaces `{{name}}` placeholders; a placeholder without a value is an error.
fn render(template: &str, vars: &[(&str, String)]) -> anyhow::Result<String> {
    let mut out = template.to_owned();
    for (name, value) in vars {
        out = out.replace(&format!("{{{{{name}}}}}"), value);
    }
    if let Some(start) = out.find("{{") {
        let name: String = out[start..].chars().take_while(|&c| c != '}').collect();
        bail!("no value for placeholder {name}}}}}");
    }
    Ok(out)
}

fn read_env(path: &Path) -> anyhow::Result<BTreeMap<String, String>> {
    if !path.exists() {
        return Ok(BTreeMap::new());
    }
    dotenvy::from_path_iter(path)
        .with_context(|| format!("reading {}", path.display()))?
        .map(|item| item.with_context(|| format!("parsing {}", path.display())))
        .collect()
}

fn write_env(path: &Path, env: &BTreeMap<String, String>) -> anyhow::Result<()> {
    let mut text =
        String::from("# Written by `mxgate setup`. Keep it private: it holds every secret of this deployment.\n");
    for (key, value) in env {
        text.push_str(&format!("{key}={value}\n"));
    }
    write_private(path, &text)
}

/// Writes a file readable by its owner only: these files hold secrets.
fn write_private(path: &Path, text: &str) -> anyhow::Result<()> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path).with_context(|| format!("writing {}", path.display()))?;
    file.write_all(text.as_bytes())?;
    Ok(())
}

fn absolute(path: &Path) -> anyhow::Result<PathBuf> {
    fs::create_dir_all(path)?;
    Ok(fs::canonicalize(path)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_fills_placeholders_and_reports_missing_ones() {
        let vars = [("a", "1".to_owned())];
        assert_eq!(render("x={{a}} y={{a}}", &vars).unwrap(), "x=1 y=1");
        let error = render("{{a}} {{b}}", &vars).unwrap_err().to_string();
        assert!(error.contains("{{b}}"), "{error}");
    }

    #[test]
    fn synapse_goes_on_postgresql_in_a_database_of_its_own_when_mxgate_does() {
        let mut env =
            BTreeMap::from([("DATABASE_URL".to_owned(), "postgres://mx:p%40ss@db.internal:6432/mxgate".to_owned())]);
        let database = SynapseDatabase::for_env(&mut env).unwrap();
        assert_eq!(env["SYNAPSE_DATABASE_URL"], "postgres://mx:p%40ss@db.internal:6432/synapse");
        let yaml = database.yaml(Path::new("/data")).unwrap();
        for line in [
            "name: psycopg2",
            "user: \"mx\"",
            "password: \"p@ss\"",
            "dbname: \"synapse\"",
            "host: \"db.internal\"",
            "port: 6432",
        ] {
            assert!(yaml.contains(line), "{line} in {yaml}");
        }
        let mut sqlite = BTreeMap::from([("DATABASE_URL".to_owned(), "sqlite://data/mxgate.db".to_owned())]);
        assert!(matches!(SynapseDatabase::for_env(&mut sqlite).unwrap(), SynapseDatabase::Sqlite));
        assert!(!sqlite.contains_key("SYNAPSE_DATABASE_URL"));
        let bad: Url = "postgres://mx@db/syn;apse".parse().unwrap();
        assert!(synapse_database_name(&bad).is_err());
    }

    #[test]
    fn rerunning_setup_keeps_existing_secrets() {
        let dir = tempfile::tempdir().unwrap();
        let setup = SetupConfig {
            env_file: dir.path().join(".env"),
            data_dir: dir.path().join("data"),
            config_dir: Path::new(env!("CARGO_MANIFEST_DIR")).join("config"),
        };
        run(&setup).unwrap();
        let first = read_env(&setup.env_file).unwrap();
        run(&setup).unwrap();
        assert_eq!(first, read_env(&setup.env_file).unwrap());
        assert!(SECRETS.iter().all(|key| first[*key].len() >= 43));
        let registration = fs::read_to_string(dir.path().join("data/synapse/api-registration.yaml")).unwrap();
        assert!(registration.contains(&first["MXGATE_API_AS_TOKEN"]));
    }

    /// The top-level keys of a YAML document, which must each appear once: a repeated one
    /// (a second `listeners:`) would silently replace the first when Synapse reads it.
    fn top_level_keys(yaml: &str) -> Vec<&str> {
        let keys: Vec<&str> = yaml
            .lines()
            .filter(|line| !line.is_empty() && !line.starts_with([' ', '#', '-']))
            .map(|line| line.split(':').next().unwrap())
            .collect();
        let mut unique = keys.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), keys.len(), "a top-level key repeats in {keys:?}");
        assert!(!yaml.contains("{{") && !yaml.contains('\t'), "{yaml}");
        keys
    }

    #[test]
    fn workers_render_an_event_persister_an_appservice_pusher_and_their_shared_section() {
        let dir = tempfile::tempdir().unwrap();
        let setup = SetupConfig {
            env_file: dir.path().join(".env"),
            data_dir: dir.path().join("data"),
            config_dir: Path::new(env!("CARGO_MANIFEST_DIR")).join("config"),
        };
        let settings = "DATABASE_URL=postgres://postgres@127.0.0.1:5432/mxgate\n\
                        MXGATE_HOMESERVER_URL=http://127.0.0.1:8008\n\
                        SYNAPSE_EVENT_PERSISTER_PORT=9194\n";
        fs::write(&setup.env_file, format!("{settings}MXGATE_SYNAPSE_WORKERS=true\n")).unwrap();
        run(&setup).unwrap();
        let env = read_env(&setup.env_file).unwrap();
        assert_eq!(env["SYNAPSE_REDIS_URL"], "redis://127.0.0.1:6379");
        assert_eq!(env["SYNAPSE_REPLICATION_PORT"], "9093");
        assert_eq!(env["SYNAPSE_APPSERVICE_PUSHER_PORT"], "9095");
        assert!(env["SYNAPSE_WORKER_REPLICATION_SECRET"].len() >= 43);

        let synapse = dir.path().join("data/synapse");
        let homeserver = fs::read_to_string(synapse.join("homeserver.yaml")).unwrap();
        let keys = top_level_keys(&homeserver);
        for key in
            ["listeners", "database", "instance_map", "stream_writers", "notify_appservices_from_worker", "redis"]
        {
            assert!(keys.contains(&key), "{key} in {keys:?}");
        }
        // The main process's replication listener is the second entry of `listeners`.
        let listeners = &homeserver[homeserver.find("\nlisteners:").unwrap()..homeserver.find("\ndatabase:").unwrap()];
        assert!(listeners.contains("  - port: 8008\n"), "{listeners}");
        assert!(listeners.contains("  - port: 9093\n"), "{listeners}");
        assert!(listeners.contains("      - names: [replication]\n"), "{listeners}");
        for section in [
            "instance_map:\n  main:\n    host: \"127.0.0.1\"\n    port: 9093\n  \
             event_persister1:\n    host: \"127.0.0.1\"\n    port: 9194\n",
            "stream_writers:\n  events: event_persister1\n",
            "notify_appservices_from_worker: appservice_pusher1\n",
            "redis:\n  enabled: true\n  host: \"127.0.0.1\"\n  port: 6379\n",
            "name: psycopg2\n",
        ] {
            assert!(homeserver.contains(section), "{section} in {homeserver}");
        }
        let secret = format!("worker_replication_secret: \"{}\"\n", env["SYNAPSE_WORKER_REPLICATION_SECRET"]);
        assert!(homeserver.contains(&secret));

        let persister = fs::read_to_string(synapse.join("workers/event_persister1.yaml")).unwrap();
        let pusher = fs::read_to_string(synapse.join("workers/appservice_pusher1.yaml")).unwrap();
        for (worker, name, port, resource) in
            [(&persister, "event_persister1", 9194, "replication"), (&pusher, "appservice_pusher1", 9095, "client")]
        {
            assert_eq!(top_level_keys(worker), ["worker_app", "worker_name", "worker_pid_file", "worker_listeners"]);
            for line in [
                "worker_app: synapse.app.generic_worker\n".to_owned(),
                format!("worker_name: {name}\n"),
                format!("    port: {port}\n"),
                format!("      - names: [{resource}]\n"),
            ] {
                assert!(worker.contains(&line), "{line} in {worker}");
            }
        }

        // Turned off again: one process, and no worker file left to start.
        fs::write(&setup.env_file, format!("{settings}MXGATE_SYNAPSE_WORKERS=false\n")).unwrap();
        run(&setup).unwrap();
        let homeserver = fs::read_to_string(synapse.join("homeserver.yaml")).unwrap();
        let keys = top_level_keys(&homeserver);
        assert!(!keys.contains(&"instance_map") && !keys.contains(&"redis"), "{keys:?}");
        assert!(!homeserver.contains("[replication]"));
        assert!(!synapse.join("workers/event_persister1.yaml").exists());
        assert!(!synapse.join("workers/appservice_pusher1.yaml").exists());

        // Synapse's workers share one PostgreSQL database: on SQLite they are refused.
        let mut sqlite = BTreeMap::from([("MXGATE_SYNAPSE_WORKERS".to_owned(), "true".to_owned())]);
        let error = SynapseWorkers::for_env(&mut sqlite, &SynapseDatabase::Sqlite).unwrap_err().to_string();
        assert!(error.contains("PostgreSQL"), "{error}");
    }

    #[test]
    fn the_redis_url_becomes_synapses_redis_section() {
        let workers = |url: &str| SynapseWorkers {
            redis: url.parse().unwrap(),
            replication_port: 9093,
            event_persister_port: 9094,
            appservice_pusher_port: 9095,
            replication_secret: "s".into(),
        };
        let yaml = workers("rediss://synapse:p%40ss@redis.internal:6380/2").redis_yaml().unwrap();
        assert_eq!(
            yaml,
            "  enabled: true\n  host: \"redis.internal\"\n  port: 6380\n  dbid: 2\n  \
             username: \"synapse\"\n  password: \"p@ss\"\n  use_tls: true"
        );
        let yaml = workers("redis://127.0.0.1").redis_yaml().unwrap();
        assert_eq!(yaml, "  enabled: true\n  host: \"127.0.0.1\"\n  port: 6379");
        assert!(workers("http://127.0.0.1:6379").redis_yaml().is_err());
        assert!(workers("redis://127.0.0.1/zero").redis_yaml().is_err());
    }
}
