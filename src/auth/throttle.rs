use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Counts failed Basic-auth attempts per client address in fixed windows.
///
/// Rate-limiter crates count every request; this must count failures only and be
/// consulted *before* the (deliberately slow) secret check, so it is kept here.
pub struct AuthThrottle {
    limit: u32,
    window: Duration,
    failures: Mutex<HashMap<IpAddr, Window>>,
}

struct Window {
    started: Instant,
    count: u32,
}

/// Addresses remembered at most; past this, expired windows are dropped.
const MAX_TRACKED: usize = 10_000;

impl AuthThrottle {
    pub fn per_minute(limit: u32) -> Self {
        Self { limit, window: Duration::from_secs(60), failures: Mutex::new(HashMap::new()) }
    }

    /// `Err(seconds)` when `ip` must wait before trying again.
    pub fn check(&self, ip: IpAddr) -> Result<(), u64> {
        let failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        match failures.get(&ip) {
            Some(w) if w.count >= self.limit && w.started.elapsed() < self.window => {
                Err((self.window - w.started.elapsed()).as_secs() + 1)
            }
            _ => Ok(()),
        }
    }

    pub fn record_failure(&self, ip: IpAddr) {
        let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        if failures.len() >= MAX_TRACKED {
            failures.retain(|_, w| w.started.elapsed() < self.window);
        }
        let window = failures.entry(ip).or_insert(Window { started: Instant::now(), count: 0 });
        if window.started.elapsed() >= self.window {
            *window = Window { started: Instant::now(), count: 0 };
        }
        window.count += 1;
    }
}
