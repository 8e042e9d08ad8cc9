use std::ops::Deref;
use std::sync::Arc;

use crate::auth::AuthThrottle;
use crate::config::ApiConfig;
use crate::db::Db;
use crate::matrix::Homeserver;

/// Everything a handler can reach; cheap to clone.
#[derive(Clone)]
pub struct AppState(Arc<Inner>);

pub struct Inner {
    pub config: ApiConfig,
    pub db: Db,
    pub homeserver: Homeserver,
    pub throttle: AuthThrottle,
}

impl AppState {
    pub fn new(config: ApiConfig, db: Db) -> Self {
        let homeserver = Homeserver::new(config.homeserver.clone());
        let throttle = AuthThrottle::per_minute(config.auth_failures_per_minute);
        Self(Arc::new(Inner {
            config,
            db,
            homeserver,
            throttle,
        }))
    }
}

impl Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}
