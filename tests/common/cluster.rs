//! Several `mxgate serve` processes on one PostgreSQL database behind a real load balancer
//! (nginx, from Debian's packages; `make test` installs it), as a scaled-out deployment
//! runs: round robin for the API and for both appservice URLs the homeserver pushes to.
//! Each process's API reaches its own bridge, so a login's steps stay where its socket is.

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};

use super::{Options, Runner, TestApp, free_port, process};

/// nginx in front of the members' APIs and bridges.
pub struct Balancer {
    child: Child,
    _dir: tempfile::TempDir,
}

impl Balancer {
    /// Listens on `api` and `bridge`, spreading each over its upstreams. A request whose
    /// upstream refuses the connection (a killed process) goes to the next, POSTs included:
    /// the connection never carried the request.
    pub fn start(api: SocketAddr, bridge: SocketAddr, apis: &[SocketAddr], bridges: &[SocketAddr]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().display();
        let servers = |addrs: &[SocketAddr]| {
            addrs.iter().map(|a| format!("server {a} max_fails=1 fail_timeout=5s;")).collect::<Vec<_>>().join(" ")
        };
        let site = |listen: SocketAddr, upstream: &str| {
            format!(
                "server {{ listen {listen}; location / {{ proxy_pass http://{upstream}; proxy_http_version 1.1; \
                 proxy_set_header Host $http_host; proxy_set_header Upgrade $http_upgrade; \
                 proxy_set_header Connection $connection_upgrade; proxy_buffering off; proxy_request_buffering off; \
                 proxy_read_timeout 300s; proxy_next_upstream error timeout non_idempotent; }} }}"
            )
        };
        let config = format!(
            "daemon off; master_process off; worker_processes 1; pid {path}/nginx.pid; error_log {path}/error.log warn;
             events {{ worker_connections 1024; }}
             http {{
               access_log off; client_max_body_size 0;
               client_body_temp_path {path}/body; proxy_temp_path {path}/proxy; fastcgi_temp_path {path}/fastcgi;
               uwsgi_temp_path {path}/uwsgi; scgi_temp_path {path}/scgi;
               map $http_upgrade $connection_upgrade {{ default upgrade; '' ''; }}
               upstream api {{ {} }}
               upstream bridge {{ {} }}
               {}
               {}
             }}",
            servers(apis),
            servers(bridges),
            site(api, "api"),
            site(bridge, "bridge"),
        );
        std::fs::write(dir.path().join("nginx.conf"), config).unwrap();
        let child = Command::new(nginx())
            .args(["-e", &format!("{path}/error.log"), "-p", &path.to_string(), "-c", &format!("{path}/nginx.conf")])
            .stdin(Stdio::null())
            .spawn()
            .expect("nginx starts (`make test` installs it from Debian's packages)");
        Self { child, _dir: dir }
    }
}

impl Drop for Balancer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn nginx() -> &'static str {
    ["/usr/sbin/nginx", "/usr/local/sbin/nginx"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
        .unwrap_or("nginx")
}

/// How one member of a cluster runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// `mxgate serve`: the API and the bridge in one process.
    Serve,
    /// `mxgate api` beside its own `mxgate bridge`: two processes.
    Split,
}

/// One member of the cluster: a `serve`, or an `api` and its `bridge`.
pub struct Member {
    pub base: String,
    /// Its bridge's URL, which is also its process id in `bridge_processes`.
    pub bridge_url: String,
    layout: Layout,
    children: Vec<Child>,
    env: Vec<(&'static str, String)>,
}

impl Member {
    async fn start(&mut self) {
        assert!(self.children.is_empty(), "the member is down");
        self.children = match self.layout {
            Layout::Serve => vec![process::spawn(&self.env, &self.base).await],
            Layout::Split => vec![
                process::spawn_command("bridge", &self.env, &self.bridge_url).await,
                process::spawn_command("api", &self.env, &format!("{}/health", self.base)).await,
            ],
        };
    }
}

impl Drop for Member {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// N processes on one database, reached through the balancer at `app.base`.
pub struct Cluster {
    pub app: TestApp,
    pub members: Vec<Member>,
    _balancer: Balancer,
}

impl Cluster {
    /// Members laid out as `layouts` on a new PostgreSQL database (`MXGATE_TEST_POSTGRES`),
    /// or `None` when that is not set: processes sharing a store need a server database.
    pub async fn start(layouts: &[Layout], options: Options) -> Option<Self> {
        std::env::var("MXGATE_TEST_POSTGRES").ok()?;
        let front: (SocketAddr, SocketAddr) =
            (([127, 0, 0, 1], free_port()).into(), ([127, 0, 0, 1], free_port()).into());
        let extra = options.environment.clone();
        let (app, api, bridge) = TestApp::prepare(options, front).await;
        // Migrated once, before any member starts: no two processes race to migrate.
        let db = mxgate::db::Db::connect(&api.database.database_url).await.unwrap();
        db.migrate().await.unwrap();
        db.pool.close().await;
        let base_env = process::environment(&api, &bridge);
        let addrs: Vec<(SocketAddr, SocketAddr)> = layouts
            .iter()
            .map(|_| (([127, 0, 0, 1], free_port()).into(), ([127, 0, 0, 1], free_port()).into()))
            .collect();
        let balancer = Balancer::start(
            front.0,
            front.1,
            &addrs.iter().map(|a| a.0).collect::<Vec<_>>(),
            &addrs.iter().map(|a| a.1).collect::<Vec<_>>(),
        );
        let mut members = Vec::new();
        for (&layout, (listen, bridge_listen)) in layouts.iter().zip(addrs) {
            let mut env: Vec<_> = base_env
                .iter()
                .filter(|(k, _)| !matches!(*k, "LISTEN_ADDR" | "MXGATE_BRIDGE_LISTEN_ADDR" | "MXGATE_BRIDGE_URL"))
                .cloned()
                .collect();
            env.extend([
                ("LISTEN_ADDR", listen.to_string()),
                ("MXGATE_BRIDGE_LISTEN_ADDR", bridge_listen.to_string()),
                ("MXGATE_BRIDGE_URL", format!("http://{bridge_listen}")),
                ("MXGATE_PUBLIC_URL", format!("http://{}", front.0)),
            ]);
            env.extend(extra.iter().cloned());
            let (base, bridge_url) = (format!("http://{listen}"), format!("http://{bridge_listen}/"));
            let mut member = Member { base, bridge_url, layout, children: Vec::new(), env };
            member.start().await;
            members.push(member);
        }
        let app = TestApp { runner: Runner::Prepared, ..app };
        Some(Self { app, members, _balancer: balancer })
    }

    /// SIGKILL of member `n`'s processes, which stay down.
    pub fn kill(&mut self, n: usize) {
        for mut child in std::mem::take(&mut self.members[n].children) {
            child.kill().expect("SIGKILL");
            child.wait().unwrap();
        }
    }

    /// SIGTERM of member `n`'s processes, which must end cleanly on their own, and stay down.
    pub fn terminate(&mut self, n: usize) {
        for mut child in std::mem::take(&mut self.members[n].children) {
            let status = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
            assert!(status.success(), "kill -TERM");
            let exited = child.wait().unwrap();
            assert!(exited.success(), "mxgate ends cleanly on SIGTERM: {exited}");
        }
    }

    /// The operating-system ids of the members' running processes, for a figure that
    /// meters their CPU.
    #[allow(dead_code)]
    pub fn pids(&self) -> Vec<u32> {
        self.members.iter().flat_map(|m| m.children.iter().map(Child::id)).collect()
    }

    /// Member `n` started again with its own settings (the same process id).
    pub async fn restart(&mut self, n: usize) {
        self.members[n].start().await;
    }

    /// Which process holds each device's lease now, and the device's state as that process
    /// last wrote it, by device.
    pub async fn owners(&self) -> std::collections::BTreeMap<String, Owner> {
        let db = mxgate::db::Db::connect(&self.app.database_url).await.unwrap();
        let now = mxgate::db::now_ms();
        let rows: Vec<(String, String, String)> =
            sqlx::query_as("SELECT account_id, process_id, state FROM bridge_leases WHERE expires_at > $1")
                .bind(now)
                .fetch_all(&db.pool)
                .await
                .unwrap();
        db.pool.close().await;
        rows.into_iter().map(|(device, process, state)| (device, Owner { process, state })).collect()
    }
}

/// The process running a device, as its lease says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    /// Its bridge URL.
    pub process: String,
    /// `connected`, `connecting`, `error`.
    pub state: String,
}
