//! Requests mxgate makes to URLs someone else gave it (webhook receivers, media URLs):
//! one guard for all of them. A host name is resolved once, by the HTTP client's own
//! resolver, which refuses it when any of its addresses is forbidden; so the addresses
//! checked are the addresses connected to, with no second lookup for DNS rebinding to slip
//! into. Proxy settings in the environment are ignored: a proxy would connect where the
//! guard cannot see.

mod address;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use url::{Host, Url};

pub use address::{Range, classify};

/// Which address ranges outbound URLs may point at. Loopback, private and link-local
/// targets are refused by default so a token cannot make mxgate probe its own network;
/// every other special-purpose range is always refused.
#[derive(Debug, Clone, Copy, Default)]
pub struct AddressPolicy {
    pub allow_loopback: bool,
    pub allow_private: bool,
}

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum ForbiddenAddress {
    #[error("url is not a valid absolute URL")]
    Invalid,
    #[error("url must use http or https")]
    Scheme,
    #[error("url must not carry credentials")]
    Credentials,
    #[error("url host `{0}` does not resolve")]
    Unresolvable(String),
    #[error("url resolves to {0}, a {1} address, which this server does not allow")]
    Range(IpAddr, &'static str),
}

impl AddressPolicy {
    pub fn allows(&self, ip: IpAddr) -> Result<(), ForbiddenAddress> {
        match classify(ip) {
            None => Ok(()),
            Some(Range::Loopback) if self.allow_loopback => Ok(()),
            Some(Range::Private | Range::LinkLocal) if self.allow_private => Ok(()),
            Some(range) => Err(ForbiddenAddress::Range(ip, range.name())),
        }
    }

    /// What can be checked without a lookup: the scheme, credentials, a literal address.
    pub fn check_url(&self, url: &str) -> Result<Url, ForbiddenAddress> {
        let parsed = Url::parse(url).map_err(|_| ForbiddenAddress::Invalid)?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(ForbiddenAddress::Scheme);
        }
        if !parsed.username().is_empty() || parsed.password().is_some() {
            return Err(ForbiddenAddress::Credentials);
        }
        match parsed.host().ok_or(ForbiddenAddress::Invalid)? {
            Host::Ipv4(ip) => self.allows(IpAddr::V4(ip))?,
            Host::Ipv6(ip) => self.allows(IpAddr::V6(ip))?,
            Host::Domain(_) => {}
        }
        Ok(parsed)
    }

    /// Every address of `host`, when all of them are allowed.
    async fn resolve(&self, lookup: &dyn Lookup, host: &str) -> Result<Vec<IpAddr>, ForbiddenAddress> {
        let unresolvable = || ForbiddenAddress::Unresolvable(host.to_owned());
        let addresses = lookup.lookup(host.to_owned()).await.map_err(|_| unresolvable())?;
        if addresses.is_empty() {
            return Err(unresolvable());
        }
        for ip in &addresses {
            self.allows(*ip)?;
        }
        Ok(addresses)
    }
}

/// Resolves host names; the system's resolver outside tests.
pub trait Lookup: Send + Sync + 'static {
    fn lookup(&self, host: String) -> BoxFuture<'static, std::io::Result<Vec<IpAddr>>>;
}

struct SystemLookup;

impl Lookup for SystemLookup {
    fn lookup(&self, host: String) -> BoxFuture<'static, std::io::Result<Vec<IpAddr>>> {
        Box::pin(async move { Ok(tokio::net::lookup_host((host.as_str(), 0)).await?.map(|a| a.ip()).collect()) })
    }
}

/// The HTTP client's resolver: the one lookup of a request, checked.
struct GuardedResolver {
    policy: AddressPolicy,
    lookup: Arc<dyn Lookup>,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let (policy, lookup, host) = (self.policy, self.lookup.clone(), name.as_str().to_owned());
        Box::pin(async move {
            let addresses = policy.resolve(lookup.as_ref(), &host).await?;
            // reqwest puts the URL's port on the addresses it is given.
            Ok(Box::new(addresses.into_iter().map(|ip| SocketAddr::new(ip, 0))) as Addrs)
        })
    }
}

/// A URL accepted for later requests, and why its requests may fail yet when they may.
#[derive(Debug)]
pub struct Checked {
    pub url: Url,
    /// Set when the host does not resolve (yet): the URL is kept, each request checks again.
    pub warning: Option<ForbiddenAddress>,
}

/// The client for requests to URLs given by API users.
#[derive(Clone)]
pub struct Outbound {
    http: reqwest::Client,
    policy: AddressPolicy,
    lookup: Arc<dyn Lookup>,
}

impl Outbound {
    /// `timeout` bounds each request as a whole, name lookup included.
    pub fn new(policy: AddressPolicy, timeout: Duration) -> Self {
        Self::with_lookup(policy, timeout, Arc::new(SystemLookup))
    }

    fn with_lookup(policy: AddressPolicy, timeout: Duration, lookup: Arc<dyn Lookup>) -> Self {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .dns_resolver(Arc::new(GuardedResolver { policy, lookup: lookup.clone() }))
            .build()
            .expect("reqwest builds");
        Self { http, policy, lookup }
    }

    /// A URL as a user gives it (a webhook's): refused when it is malformed or any
    /// address it resolves to is forbidden; kept with a warning when it does not resolve.
    pub async fn check(&self, url: &str) -> Result<Checked, ForbiddenAddress> {
        let url = self.policy.check_url(url)?;
        let warning = match url.host() {
            Some(Host::Domain(host)) => match self.policy.resolve(self.lookup.as_ref(), host).await {
                Ok(_) => None,
                Err(unresolvable @ ForbiddenAddress::Unresolvable(_)) => Some(unresolvable),
                Err(forbidden) => return Err(forbidden),
            },
            _ => None,
        };
        Ok(Checked { url, warning })
    }

    /// A POST to `url`; its host's addresses are checked as the request connects.
    pub fn post(&self, url: &str) -> Result<reqwest::RequestBuilder, ForbiddenAddress> {
        Ok(self.http.post(self.policy.check_url(url)?))
    }

    /// A GET of `url` (a media URL), checked the same way.
    pub fn get(&self, url: &str) -> Result<reqwest::RequestBuilder, ForbiddenAddress> {
        Ok(self.http.get(self.policy.check_url(url)?))
    }
}

/// Why a request failed, for a delivery log: a refused address in its own words,
/// otherwise reqwest's error without the URL (which may carry a secret path).
pub fn describe(error: reqwest::Error) -> String {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(&error);
    while let Some(current) = cause {
        if let Some(forbidden) = current.downcast_ref::<ForbiddenAddress>() {
            return forbidden.to_string();
        }
        // An io::Error hides the error it wraps from `source()`.
        let wrapped = current.downcast_ref::<std::io::Error>().and_then(|io| io.get_ref());
        if let Some(forbidden) = wrapped.and_then(|inner| inner.downcast_ref::<ForbiddenAddress>()) {
            return forbidden.to_string();
        }
        cause = current.source();
    }
    error.without_url().to_string()
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    use super::*;

    /// Answers each lookup with the next of `answers` (the last one repeating), as a
    /// rebinding DNS server does, and counts the lookups.
    struct Rebinding {
        answers: Vec<IpAddr>,
        lookups: AtomicUsize,
    }

    impl Lookup for Rebinding {
        fn lookup(&self, _: String) -> BoxFuture<'static, std::io::Result<Vec<IpAddr>>> {
            let n = self.lookups.fetch_add(1, Ordering::SeqCst);
            let answer = self.answers[n.min(self.answers.len() - 1)];
            Box::pin(async move { Ok(vec![answer]) })
        }
    }

    /// A local server that answers 200 to anything and counts the connections it accepted.
    async fn local_server() -> (u16, Arc<AtomicUsize>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let accepted = Arc::new(AtomicUsize::new(0));
        let counter = accepted.clone();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                counter.fetch_add(1, Ordering::SeqCst);
                // The request head (these requests have no body), then the answer.
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match socket.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let _ = socket.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n").await;
            }
        });
        (port, accepted)
    }

    #[tokio::test]
    async fn a_name_that_rebinds_to_loopback_is_never_connected_to() {
        let (port, accepted) = local_server().await;
        // First answer public (what a check before connecting would see), then loopback.
        let public: IpAddr = "93.184.216.34".parse().unwrap();
        let lookup = Arc::new(Rebinding { answers: vec![public, "127.0.0.1".parse().unwrap()], lookups: 0.into() });
        let outbound = Outbound::with_lookup(AddressPolicy::default(), Duration::from_millis(500), lookup.clone());
        let url = format!("http://rebind.example:{port}/hook");
        assert!(outbound.check(&url).await.unwrap().warning.is_none());
        for _ in 0..2 {
            let _ = outbound.post(&url).unwrap().send().await;
        }
        assert_eq!(accepted.load(Ordering::SeqCst), 0, "nothing reached the loopback server");
        assert_eq!(lookup.lookups.load(Ordering::SeqCst), 3, "one lookup per check and per request");
        let error = outbound.post(&url).unwrap().send().await.unwrap_err();
        assert_eq!(
            describe(error),
            format!("url resolves to 127.0.0.1, a loopback address, which this server does not allow")
        );
    }

    #[tokio::test]
    async fn an_allowed_name_connects_to_the_address_it_was_checked_at() {
        let (port, accepted) = local_server().await;
        let lookup = Arc::new(Rebinding { answers: vec!["127.0.0.1".parse().unwrap()], lookups: 0.into() });
        let policy = AddressPolicy { allow_loopback: true, allow_private: false };
        let outbound = Outbound::with_lookup(policy, Duration::from_secs(5), lookup);
        let response = outbound.post(&format!("http://receiver.example:{port}/")).unwrap().send().await.unwrap();
        assert!(response.status().is_success());
        assert_eq!(accepted.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn literal_addresses_and_malformed_urls_are_refused_before_any_connection() {
        let outbound = Outbound::new(AddressPolicy::default(), Duration::from_secs(1));
        for url in [
            "http://127.0.0.1/hook",
            "http://[::1]:9000/",
            "http://10.1.2.3/",
            "http://169.254.169.254/latest/meta-data",
            "http://[::ffff:127.0.0.1]/",
            "http://[64:ff9b::a9fe:a9fe]/",
            "http://[2002:7f00:1::]/",
            "http://198.18.0.1/",
        ] {
            assert!(matches!(outbound.post(url), Err(ForbiddenAddress::Range(..))), "{url}");
        }
        assert_eq!(outbound.post("ftp://93.184.216.34/").err(), Some(ForbiddenAddress::Scheme));
        assert_eq!(outbound.post("not a url").err(), Some(ForbiddenAddress::Invalid));
        assert_eq!(outbound.post("http://u:p@93.184.216.34/").err(), Some(ForbiddenAddress::Credentials));
        assert!(outbound.post("https://93.184.216.34/hook").is_ok());
    }

    #[tokio::test]
    async fn a_name_that_does_not_resolve_is_kept_with_a_warning_and_localhost_is_refused() {
        let outbound = Outbound::new(AddressPolicy::default(), Duration::from_secs(1));
        let checked = outbound.check("https://not-live-yet.invalid/hook").await.unwrap();
        assert_eq!(checked.warning, Some(ForbiddenAddress::Unresolvable("not-live-yet.invalid".into())));
        assert!(matches!(outbound.check("http://localhost:8080/").await, Err(ForbiddenAddress::Range(..))));
    }
}
