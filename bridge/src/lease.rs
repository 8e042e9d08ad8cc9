//! Device ownership when several mxgate processes share one database. Each process keeps
//! a row in `bridge_processes` alive, and runs a device's client only while it holds that
//! device's row in `bridge_leases`. A lease is taken with one conditional upsert (a row
//! that is missing, expired or already ours), so two processes racing for a device on
//! PostgreSQL both run the statement and one of them gets the row back; on SQLite there
//! is one process and every claim succeeds.
//!
//! The keeper runs every third of the lease time, and a renewal holds for two thirds, so a
//! dead process's devices are taken over within the lease time. A process that finds a lease gone
//! (taken over while it stalled) stops that client before anything else; one that holds
//! more than its share (devices ÷ live processes, rounded up) hands the surplus back, and
//! one below its share takes devices whose lease has run out. So a killed process's
//! devices move within the lease time, a new process gets its share, and a graceful stop
//! hands everything back at once.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use url::Url;

use crate::core::Core;
use crate::db::{Db, now_ms};
use crate::network::{AccountId, ConnectionState};
use crate::store;

/// The devices a process holds, as a subquery for `… AND account_id IN (…)`: the process
/// is parameter `$first`, the time in milliseconds the one after it.
pub fn held_by(first: u8) -> String {
    format!("SELECT account_id FROM bridge_leases WHERE process_id = ${first} AND expires_at > ${}", first + 1)
}

/// How long after another process's lease runs out the keeper looks: that process's own
/// row, written just before its leases, has run out by then too.
const EXPIRY_MARGIN: Duration = Duration::from_millis(100);

pub struct Leases {
    db: Db,
    /// This process, as the others see it in `bridge_processes`: its bridge's URL, so a
    /// process restarted in place (after `kill -9`, say) holds its devices again at once.
    process: String,
    lease_ms: i64,
    /// Devices whose client runs here, with the state last written for the others.
    running: Mutex<HashMap<AccountId, Option<ConnectionState>>>,
}

impl Leases {
    pub fn new(db: Db, bridge_url: Url, lease: Duration) -> Self {
        let lease_ms = i64::try_from(lease.as_millis()).unwrap_or(i64::MAX).max(1_000);
        Self { db, process: bridge_url.to_string(), lease_ms, running: Mutex::default() }
    }

    /// This process's id in `bridge_processes`, for the log.
    pub fn process(&self) -> &str {
        &self.process
    }

    fn running(&self) -> std::sync::MutexGuard<'_, HashMap<AccountId, Option<ConnectionState>>> {
        self.running.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether this process runs `account`'s client.
    pub fn runs(&self, account: &AccountId) -> bool {
        self.running().contains_key(account)
    }

    /// How often the keeper runs.
    fn period_ms(&self) -> i64 {
        self.lease_ms / 3
    }

    /// A renewal holds for two periods: one renewal may be late, and a dead process's
    /// devices are taken (by a keeper at most one period later) within the lease time.
    fn expiry(&self) -> i64 {
        now_ms() + 2 * self.period_ms()
    }

    async fn register(&self) -> Result<(), sqlx::Error> {
        sqlx::query(
            "INSERT INTO bridge_processes (id, expires_at) VALUES ($1, $2) ON CONFLICT (id) DO UPDATE SET expires_at = $2",
        )
        .bind(&self.process)
        .bind(self.expiry())
        .execute(&self.db.pool)
        .await?;
        // A process gone for a lease time has no lease left to defend.
        sqlx::query("DELETE FROM bridge_processes WHERE expires_at < $1")
            .bind(now_ms() - self.lease_ms)
            .execute(&self.db.pool)
            .await
            .map(drop)
    }

    /// Extends every lease of this process; returns the devices it still holds.
    async fn renew(&self) -> Result<HashSet<String>, sqlx::Error> {
        let held: Vec<String> =
            sqlx::query_scalar("UPDATE bridge_leases SET expires_at = $2 WHERE process_id = $1 RETURNING account_id")
                .bind(&self.process)
                .bind(self.expiry())
                .fetch_all(&self.db.pool)
                .await?;
        Ok(held.into_iter().collect())
    }

    /// Takes `account`'s lease if nobody holds it (or this process does); `take_over` takes
    /// it from a live holder too, for a device just linked here.
    async fn claim(&self, account: &str, take_over: bool) -> Result<bool, sqlx::Error> {
        let claimed: Option<String> = sqlx::query_scalar(
            "INSERT INTO bridge_leases (account_id, process_id, expires_at, state) VALUES ($1, $2, $3, $5)
             ON CONFLICT (account_id) DO UPDATE SET process_id = $2, expires_at = $3, state = $5, error = NULL
             WHERE bridge_leases.expires_at < $4 OR bridge_leases.process_id = $2 OR $6
             RETURNING account_id",
        )
        .bind(account)
        .bind(&self.process)
        .bind(self.expiry())
        .bind(now_ms())
        .bind(ConnectionState::Connecting.as_str())
        .bind(take_over)
        .fetch_optional(&self.db.pool)
        .await?;
        Ok(claimed.is_some())
    }

    async fn release(&self, account: &str) -> Result<(), sqlx::Error> {
        sqlx::query("DELETE FROM bridge_leases WHERE account_id = $1 AND process_id = $2")
            .bind(account)
            .bind(&self.process)
            .execute(&self.db.pool)
            .await
            .map(drop)
    }

    /// Whether this process holds `account`'s lease now: checked before every send, so a
    /// process that stalled past its lease cannot send beside the device's new owner.
    pub async fn holds(&self, account: &str) -> Result<bool, sqlx::Error> {
        let held: Option<i64> = sqlx::query_scalar(
            "SELECT 1 FROM bridge_leases WHERE account_id = $1 AND process_id = $2 AND expires_at > $3",
        )
        .bind(account)
        .bind(&self.process)
        .bind(now_ms())
        .fetch_optional(&self.db.pool)
        .await?;
        Ok(held.is_some())
    }

    /// Linked devices no live process holds, oldest first.
    async fn unowned(&self, limit: usize) -> Result<Vec<String>, sqlx::Error> {
        sqlx::query_scalar(
            "SELECT l.account_id FROM bridge_logins l LEFT JOIN bridge_leases x ON x.account_id = l.account_id
             WHERE l.state = $1 AND (x.account_id IS NULL OR x.expires_at < $2) ORDER BY l.created_at LIMIT $3",
        )
        .bind(store::CONNECTED)
        .bind(now_ms())
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(&self.db.pool)
        .await
    }

    /// When the first lease another process holds runs out, if any is held.
    async fn next_expiry_elsewhere(&self) -> Result<Option<i64>, sqlx::Error> {
        sqlx::query_scalar("SELECT MIN(expires_at) FROM bridge_leases WHERE process_id <> $1 AND expires_at > $2")
            .bind(&self.process)
            .bind(now_ms())
            .fetch_one(&self.db.pool)
            .await
    }

    /// How many devices each live process should run: all of them, shared evenly.
    async fn share(&self) -> Result<usize, sqlx::Error> {
        let (devices, processes): (i64, i64) = sqlx::query_as(
            "SELECT (SELECT COUNT(*) FROM bridge_logins WHERE state = $1),
                    (SELECT COUNT(*) FROM bridge_processes WHERE expires_at > $2)",
        )
        .bind(store::CONNECTED)
        .bind(now_ms())
        .fetch_one(&self.db.pool)
        .await?;
        let (devices, processes) = (devices.max(0) as usize, processes.max(1) as usize);
        Ok(devices.div_ceil(processes))
    }

    async fn write_state(&self, account: &str, state: &ConnectionState) -> Result<(), sqlx::Error> {
        let error = match state {
            ConnectionState::Error(error) => Some(error.as_str()),
            _ => None,
        };
        sqlx::query("UPDATE bridge_leases SET state = $3, error = $4 WHERE account_id = $1 AND process_id = $2")
            .bind(account)
            .bind(&self.process)
            .bind(state.as_str())
            .bind(error)
            .execute(&self.db.pool)
            .await
            .map(drop)
    }
}

/// A device linked here runs here: its lease is taken from whoever held the phone's
/// earlier link (their keeper then stops that client).
pub async fn adopt(core: &Core, account: &AccountId) -> Result<(), sqlx::Error> {
    core.leases.claim(account.as_str(), true).await?;
    let state = core.network.state(account);
    core.leases.running().insert(account.clone(), Some(state.clone()));
    core.leases.write_state(account.as_str(), &state).await?;
    tell(core, account.clone(), state).await
}

/// Reports a state the device is now in here (a log-out is told once, by whoever records
/// it: `incoming::record_logged_out`).
async fn tell(core: &Core, account: AccountId, state: ConnectionState) -> Result<(), sqlx::Error> {
    if state == ConnectionState::LoggedOut {
        return Ok(());
    }
    if let Some(login) = store::login(&core.db, account.as_str()).await? {
        let change = crate::core::DeviceChange { account, owner: login.owner, state, at_ms: now_ms() };
        let _ = core.device_changes.send(change);
    }
    Ok(())
}

/// A device logged out, here or by the network: it runs nowhere.
pub async fn drop_device(core: &Core, account: &AccountId) -> Result<(), sqlx::Error> {
    core.leases.running().remove(account);
    core.leases.release(account.as_str()).await
}

/// Stops `account`'s client here without logging it out, so another process can run it.
async fn stop(core: &Core, account: &AccountId) {
    core.leases.running().remove(account);
    core.network.disconnect(account).await;
}

/// One round of the keeper; also the first thing a starting bridge does, so that its
/// share of the devices reconnects before it serves.
pub async fn keep(core: &Arc<Core>) -> Result<(), sqlx::Error> {
    let leases = &core.leases;
    leases.register().await?;
    let held = leases.renew().await?;
    let lost: Vec<AccountId> = leases.running().keys().filter(|a| !held.contains(a.as_str())).cloned().collect();
    for account in lost {
        tracing::warn!(device = %account, "the device's lease went to another process; its client stops here");
        stop(core, &account).await;
    }
    let share = leases.share().await?;
    if held.len() > share {
        // In a fixed order (by number), so that successive rounds hand back the same devices.
        let mut surplus: Vec<&String> = held.iter().collect();
        surplus.sort();
        for account in surplus.into_iter().take(held.len() - share) {
            let Ok(account) = account.parse::<AccountId>() else { continue };
            tracing::info!(device = %account, share, "handing a device to a less loaded process");
            stop(core, &account).await;
            leases.release(account.as_str()).await?;
        }
    } else if held.len() < share {
        for account in leases.unowned(share - held.len()).await? {
            if leases.claim(&account, false).await? {
                tracing::info!(device = %account, "took over a device no live process runs");
            }
        }
    }
    // Held here and not running (just claimed, or its last connect failed): connect it.
    for account in leases.renew().await? {
        let Ok(parsed) = account.parse::<AccountId>() else { continue };
        if leases.runs(&parsed) {
            continue;
        }
        match core.network.connect(&parsed).await {
            Ok(()) => {
                leases.running().insert(parsed, None);
            }
            Err(error) => tracing::warn!(device = %account, error = %error, "device could not be restored; will retry"),
        }
    }
    let changed: Vec<(AccountId, ConnectionState)> = leases
        .running()
        .iter_mut()
        .filter_map(|(account, written)| {
            let state = core.network.state(account);
            (written.as_ref() != Some(&state)).then(|| {
                *written = Some(state.clone());
                (account.clone(), state)
            })
        })
        .collect();
    for (account, state) in changed {
        leases.write_state(account.as_str(), &state).await?;
        tell(core, account, state).await?;
    }
    Ok(())
}

/// Runs [`keep`] every third of the lease time for as long as the process runs, and as
/// soon as another process's lease runs out when that comes sooner: a live process renews
/// a period or more ahead, so only a dead one's leases run out before the next round, and
/// its devices move at once instead of up to a period later.
pub fn spawn_keeper(core: Arc<Core>) {
    tokio::spawn(async move {
        let period = Duration::from_millis(core.leases.period_ms() as u64);
        loop {
            let next = match core.leases.next_expiry_elsewhere().await {
                Ok(Some(at)) => Duration::from_millis((at - now_ms()).max(0) as u64) + EXPIRY_MARGIN,
                Ok(None) => period,
                Err(error) => {
                    tracing::warn!(error = %error, "cannot read the other processes' leases");
                    period
                }
            };
            tokio::time::sleep(next.min(period)).await;
            if let Err(error) = keep(&core).await {
                tracing::warn!(error = %error, "cannot renew the device leases; retrying");
            }
        }
    });
}

/// At a graceful stop: every client here stops and its lease is free at once, so the
/// other processes take the devices on their next round instead of after the lease time.
pub async fn hand_back(core: &Core) {
    let running: Vec<AccountId> = core.leases.running().keys().cloned().collect();
    for account in &running {
        stop(core, account).await;
    }
    let released = sqlx::query("DELETE FROM bridge_leases WHERE process_id = $1")
        .bind(&core.leases.process)
        .execute(&core.db.pool)
        .await
        .and(
            sqlx::query("DELETE FROM bridge_processes WHERE id = $1")
                .bind(&core.leases.process)
                .execute(&core.db.pool)
                .await,
        );
    match released {
        Ok(_) => tracing::info!(devices = running.len(), "devices handed back"),
        Err(error) => tracing::warn!(error = %error, "leases not released; they expire on their own"),
    }
}

/// The bridge of the process that runs `account` now, if a live one does: the API sends
/// calls that need the device's client there.
pub async fn bridge_of(db: &Db, account: &str) -> Result<Option<Url>, sqlx::Error> {
    let url: Option<String> =
        sqlx::query_scalar("SELECT process_id FROM bridge_leases WHERE account_id = $1 AND expires_at > $2")
            .bind(account)
            .bind(now_ms())
            .fetch_optional(&db.pool)
            .await?;
    Ok(url.and_then(|u| u.parse().ok()))
}

/// Where a device stands, as the process that runs it last wrote: a device no live
/// process holds is `connecting` until one takes it over.
pub async fn stored_state(db: &Db, account: &str) -> Result<ConnectionState, sqlx::Error> {
    let row: Option<(String, Option<String>)> =
        sqlx::query_as("SELECT state, error FROM bridge_leases WHERE account_id = $1 AND expires_at > $2")
            .bind(account)
            .bind(now_ms())
            .fetch_optional(&db.pool)
            .await?;
    Ok(match row {
        Some((state, error)) => match state.as_str() {
            "connected" => ConnectionState::Connected,
            "logged_out" => ConnectionState::LoggedOut,
            "error" => ConnectionState::Error(error.unwrap_or_default()),
            _ => ConnectionState::Connecting,
        },
        None => ConnectionState::Connecting,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A migrated store: a new database on `MXGATE_TEST_POSTGRES` when it names a server,
    /// where claims really race, else a SQLite file.
    async fn store() -> (Db, Option<tempfile::TempDir>) {
        if let Ok(server) = std::env::var("MXGATE_TEST_POSTGRES") {
            let admin = Db::connect(&server).await.unwrap();
            let name = format!("mxgate_test_{}", hex::encode(rand::random::<[u8; 6]>()));
            sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}"))).execute(&admin.pool).await.unwrap();
            let (base, _) = server.rsplit_once('/').unwrap();
            let db = Db::connect(&format!("{base}/{name}")).await.unwrap();
            db.migrate().await.unwrap();
            return (db, None);
        }
        let dir = tempfile::tempdir().unwrap();
        let db = Db::connect(&format!("sqlite://{}", dir.path().join("mxgate.db").display())).await.unwrap();
        db.migrate().await.unwrap();
        (db, Some(dir))
    }

    fn process(db: &Db, port: u16, lease: Duration) -> Arc<Leases> {
        Arc::new(Leases::new(db.clone(), format!("http://127.0.0.1:{port}").parse().unwrap(), lease))
    }

    #[tokio::test]
    async fn processes_racing_for_the_same_devices_get_each_device_once() {
        let (db, _dir) = store().await;
        let lease = Duration::from_secs(60);
        let processes: Vec<_> = (0..3).map(|n| process(&db, 1000 + n, lease)).collect();
        let devices: Vec<String> = (0..40).map(|n| format!("2376000000{n:02}")).collect();
        let claims = processes.iter().map(|p| {
            let (p, devices) = (p.clone(), devices.clone());
            tokio::spawn(async move {
                let mut won = Vec::new();
                for device in &devices {
                    if p.claim(device, false).await.unwrap() {
                        won.push(device.clone());
                    }
                }
                won
            })
        });
        let won: Vec<Vec<String>> = futures::future::try_join_all(claims).await.unwrap();
        let mut all: Vec<&String> = won.iter().flatten().collect();
        all.sort();
        assert_eq!(all, devices.iter().collect::<Vec<_>>(), "every device claimed by exactly one process");
        for (p, won) in processes.iter().zip(&won) {
            let held = p.renew().await.unwrap();
            assert_eq!(held, won.iter().cloned().collect::<HashSet<_>>(), "a process renews what it won");
            for device in won {
                assert!(p.holds(device).await.unwrap());
            }
        }
    }

    #[tokio::test]
    async fn a_lease_is_taken_over_only_once_it_expires_or_by_a_new_link() {
        let (db, _dir) = store().await;
        let short = process(&db, 2000, Duration::from_secs(1));
        let other = process(&db, 2001, Duration::from_secs(60));
        let device = "237600000100";
        assert!(short.claim(device, false).await.unwrap());
        assert!(!other.claim(device, false).await.unwrap(), "a live lease is not taken");
        assert!(short.claim(device, false).await.unwrap(), "the holder claims again");
        tokio::time::sleep(Duration::from_millis(1_100)).await;
        assert!(!short.holds(device).await.unwrap(), "an expired lease holds nothing");
        assert!(other.claim(device, false).await.unwrap(), "an expired lease is taken over");
        assert!(short.renew().await.unwrap().is_empty(), "the old holder no longer renews it");
        assert_eq!(bridge_of(&db, device).await.unwrap().unwrap().as_str(), "http://127.0.0.1:2001/");
        assert!(short.claim(device, true).await.unwrap(), "a device linked again moves to where it was linked");
        assert!(!other.holds(device).await.unwrap());
    }
}
