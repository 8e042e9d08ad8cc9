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
    render_synapse(&setup.config_dir, &params)?;
    tracing::info!(dir = %params.synapse_dir.display(), "rendered the homeserver configuration");
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

/// Writes `homeserver.yaml` and the two registrations into `params.synapse_dir`.
pub fn render_synapse(config_dir: &Path, params: &SynapseParams) -> anyhow::Result<()> {
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
    render_file(config_dir, "homeserver.yaml", &params.config_path(), &vars)
}

fn render_file(config_dir: &Path, template: &str, target: &Path, vars: &[(&str, String)]) -> anyhow::Result<()> {
    let source = config_dir.join(template);
    let text = fs::read_to_string(&source).with_context(|| format!("reading {}", source.display()))?;
    write_private(target, &render(&text, vars).with_context(|| format!("rendering {template}"))?)
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
}
