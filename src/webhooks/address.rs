use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use url::{Host, Url};

/// Which address ranges webhook URLs may point at. Loopback, private and link-local
/// targets are refused by default so a token cannot make mxgate probe its own network.
#[derive(Debug, Clone, Copy, Default)]
pub struct AddressPolicy {
    pub allow_loopback: bool,
    pub allow_private: bool,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ForbiddenAddress {
    #[error("webhook url is not a valid absolute URL")]
    Invalid,
    #[error("webhook url must use http or https")]
    Scheme,
    #[error("webhook url must not carry credentials")]
    Credentials,
    #[error("webhook url host `{0}` cannot be resolved")]
    Unresolvable(String),
    #[error("webhook url resolves to {0}, a {1} address, which this server does not allow")]
    Range(IpAddr, &'static str),
}

impl AddressPolicy {
    /// Parses `url` and checks every address its host resolves to.
    pub async fn check(&self, url: &str) -> Result<Url, ForbiddenAddress> {
        let parsed = Url::parse(url).map_err(|_| ForbiddenAddress::Invalid)?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(ForbiddenAddress::Scheme);
        }
        if !parsed.username().is_empty() || parsed.password().is_some() {
            return Err(ForbiddenAddress::Credentials);
        }
        let port = parsed.port_or_known_default().ok_or(ForbiddenAddress::Invalid)?;
        let addresses: Vec<IpAddr> = match parsed.host().ok_or(ForbiddenAddress::Invalid)? {
            Host::Ipv4(ip) => vec![IpAddr::V4(ip)],
            Host::Ipv6(ip) => vec![IpAddr::V6(ip)],
            Host::Domain(name) => tokio::net::lookup_host((name, port))
                .await
                .map_err(|_| ForbiddenAddress::Unresolvable(name.to_owned()))?
                .map(|addr| addr.ip())
                .collect(),
        };
        for ip in addresses {
            self.check_ip(ip)?;
        }
        Ok(parsed)
    }

    fn check_ip(&self, ip: IpAddr) -> Result<(), ForbiddenAddress> {
        match classify(ip) {
            Some("loopback") if self.allow_loopback => Ok(()),
            Some("private" | "link-local") if self.allow_private => Ok(()),
            Some(range) => Err(ForbiddenAddress::Range(ip, range)),
            None => Ok(()),
        }
    }
}

/// The special-purpose range `ip` falls in, if any.
fn classify(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => classify_v4(v4),
            None => classify_v6(v6),
        },
    }
}

fn classify_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, ..] = ip.octets();
    if ip.is_loopback() {
        Some("loopback")
    } else if ip.is_private() || (a == 100 && (64..128).contains(&b)) {
        Some("private")
    } else if ip.is_link_local() {
        Some("link-local")
    } else if ip.is_unspecified() || ip.is_broadcast() || ip.is_multicast() || a == 0 {
        Some("non-unicast")
    } else {
        None
    }
}

fn classify_v6(ip: Ipv6Addr) -> Option<&'static str> {
    if ip.is_loopback() {
        Some("loopback")
    } else if ip.is_unique_local() {
        Some("private")
    } else if ip.is_unicast_link_local() {
        Some("link-local")
    } else if ip.is_unspecified() || ip.is_multicast() {
        Some("non-unicast")
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn default_policy_refuses_internal_ranges() {
        let policy = AddressPolicy::default();
        for url in [
            "http://127.0.0.1/hook",
            "http://[::1]:9000/",
            "http://10.1.2.3/",
            "http://192.168.0.10/",
            "http://172.16.5.4/",
            "http://169.254.169.254/latest/meta-data",
            "http://[fe80::1]/",
            "http://[fd00::1]/",
            "http://[::ffff:127.0.0.1]/",
            "http://100.64.0.1/",
            "http://0.0.0.0/",
            "http://localhost:8080/",
        ] {
            assert!(matches!(policy.check(url).await, Err(ForbiddenAddress::Range(..))), "{url}");
        }
    }

    #[tokio::test]
    async fn public_addresses_and_allowed_ranges_pass() {
        assert!(AddressPolicy::default().check("https://93.184.216.34/hook").await.is_ok());
        let loopback = AddressPolicy { allow_loopback: true, allow_private: false };
        assert!(loopback.check("http://127.0.0.1:9/hook").await.is_ok());
        assert!(loopback.check("http://10.0.0.1/").await.is_err());
    }

    #[tokio::test]
    async fn malformed_urls_say_why() {
        let policy = AddressPolicy::default();
        assert_eq!(policy.check("ftp://93.184.216.34/").await, Err(ForbiddenAddress::Scheme));
        assert_eq!(policy.check("not a url").await, Err(ForbiddenAddress::Invalid));
        assert_eq!(policy.check("http://u:p@93.184.216.34/").await, Err(ForbiddenAddress::Credentials));
    }
}
