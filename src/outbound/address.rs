//! Which addresses an outbound request may reach: every special-purpose range of IANA's
//! IPv4 and IPv6 registries is classified, and IPv6 forms that embed an IPv4 address
//! (mapped, NAT64) are judged by the address they embed.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::{Ipv4Net, Ipv6Net};

/// What a special-purpose address is; only the first three can be allowed by
/// configuration, for deployments whose receivers live on their own network.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Range {
    Loopback,
    Private,
    LinkLocal,
    /// Unspecified, broadcast, multicast, "this network".
    NonUnicast,
    Documentation,
    Benchmarking,
    /// Reserved, protocol assignments, deprecated transition forms (6to4, IPv4-compatible,
    /// Teredo, site-local), discard-only and other ranges that are not globally reachable.
    Reserved,
}

impl Range {
    pub fn name(self) -> &'static str {
        match self {
            Self::Loopback => "loopback",
            Self::Private => "private",
            Self::LinkLocal => "link-local",
            Self::NonUnicast => "non-unicast",
            Self::Documentation => "documentation",
            Self::Benchmarking => "benchmarking",
            Self::Reserved => "reserved",
        }
    }
}

const fn v4(a: u8, b: u8, c: u8, d: u8, prefix: u8) -> Ipv4Net {
    Ipv4Net::new_assert(Ipv4Addr::new(a, b, c, d), prefix)
}

const fn v6(segments: [u16; 8], prefix: u8) -> Ipv6Net {
    let [a, b, c, d, e, f, g, h] = segments;
    Ipv6Net::new_assert(Ipv6Addr::new(a, b, c, d, e, f, g, h), prefix)
}

/// IANA IPv4 Special-Purpose Address Registry, plus multicast; the globally reachable
/// entries (AS112, AMT, 192.0.0.9 and .10) are absent on purpose.
const V4: &[(Ipv4Net, Range)] = &[
    (v4(0, 0, 0, 0, 8), Range::NonUnicast),
    (v4(10, 0, 0, 0, 8), Range::Private),
    (v4(100, 64, 0, 0, 10), Range::Private),
    (v4(127, 0, 0, 0, 8), Range::Loopback),
    (v4(169, 254, 0, 0, 16), Range::LinkLocal),
    (v4(172, 16, 0, 0, 12), Range::Private),
    (v4(192, 0, 0, 0, 29), Range::Reserved),
    (v4(192, 0, 0, 8, 32), Range::Reserved),
    (v4(192, 0, 0, 11, 32), Range::Reserved),
    (v4(192, 0, 0, 12, 30), Range::Reserved),
    (v4(192, 0, 0, 16, 28), Range::Reserved),
    (v4(192, 0, 0, 32, 27), Range::Reserved),
    (v4(192, 0, 0, 64, 26), Range::Reserved),
    (v4(192, 0, 0, 128, 25), Range::Reserved),
    (v4(192, 0, 2, 0, 24), Range::Documentation),
    (v4(192, 88, 99, 0, 24), Range::Reserved),
    (v4(192, 168, 0, 0, 16), Range::Private),
    (v4(198, 18, 0, 0, 15), Range::Benchmarking),
    (v4(198, 51, 100, 0, 24), Range::Documentation),
    (v4(203, 0, 113, 0, 24), Range::Documentation),
    (v4(224, 0, 0, 0, 4), Range::NonUnicast),
    (v4(255, 255, 255, 255, 32), Range::NonUnicast),
    (v4(240, 0, 0, 0, 4), Range::Reserved),
];

/// IANA IPv6 Special-Purpose Address Registry, plus multicast and the deprecated forms;
/// IPv4-mapped and NAT64 addresses are judged by their IPv4 address instead.
const V6: &[(Ipv6Net, Range)] = &[
    (v6([0, 0, 0, 0, 0, 0, 0, 1], 128), Range::Loopback),
    (v6([0, 0, 0, 0, 0, 0, 0, 0], 128), Range::NonUnicast),
    // IPv4-compatible (deprecated): `::a.b.c.d`, after the two above.
    (v6([0, 0, 0, 0, 0, 0, 0, 0], 96), Range::Reserved),
    (v6([0x64, 0xff9b, 1, 0, 0, 0, 0, 0], 48), Range::Private),
    (v6([0x100, 0, 0, 0, 0, 0, 0, 0], 64), Range::Reserved),
    (v6([0x100, 0, 0, 1, 0, 0, 0, 0], 64), Range::Reserved),
    // IETF protocol assignments (Teredo, benchmarking, ORCHID…); the globally reachable
    // ones inside (2001:1::1–3, 2001:3::/32, 2001:4:112::/48, 2001:20::/28, 2001:30::/28)
    // are let through before this entry is consulted.
    (v6([0x2001, 0x2, 0, 0, 0, 0, 0, 0], 48), Range::Benchmarking),
    (v6([0x2001, 0, 0, 0, 0, 0, 0, 0], 23), Range::Reserved),
    (v6([0x2001, 0xdb8, 0, 0, 0, 0, 0, 0], 32), Range::Documentation),
    (v6([0x2002, 0, 0, 0, 0, 0, 0, 0], 16), Range::Reserved),
    (v6([0x3fff, 0, 0, 0, 0, 0, 0, 0], 20), Range::Documentation),
    (v6([0x5f00, 0, 0, 0, 0, 0, 0, 0], 16), Range::Reserved),
    (v6([0xfc00, 0, 0, 0, 0, 0, 0, 0], 7), Range::Private),
    (v6([0xfe80, 0, 0, 0, 0, 0, 0, 0], 10), Range::LinkLocal),
    (v6([0xfec0, 0, 0, 0, 0, 0, 0, 0], 10), Range::Reserved),
    (v6([0xff00, 0, 0, 0, 0, 0, 0, 0], 8), Range::NonUnicast),
];

/// Globally reachable exceptions inside 2001::/23.
const V6_GLOBAL: &[Ipv6Net] = &[
    v6([0x2001, 1, 0, 0, 0, 0, 0, 1], 128),
    v6([0x2001, 1, 0, 0, 0, 0, 0, 2], 128),
    v6([0x2001, 1, 0, 0, 0, 0, 0, 3], 128),
    v6([0x2001, 3, 0, 0, 0, 0, 0, 0], 32),
    v6([0x2001, 4, 0x112, 0, 0, 0, 0, 0], 48),
    v6([0x2001, 0x20, 0, 0, 0, 0, 0, 0], 28),
    v6([0x2001, 0x30, 0, 0, 0, 0, 0, 0], 28),
];

const NAT64: Ipv6Net = v6([0x64, 0xff9b, 0, 0, 0, 0, 0, 0], 96);

/// The special-purpose range `ip` falls in; `None` for a globally reachable address.
pub fn classify(ip: IpAddr) -> Option<Range> {
    match ip {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => classify_v6(v6),
    }
}

fn classify_v4(ip: Ipv4Addr) -> Option<Range> {
    V4.iter().find(|(net, _)| net.contains(&ip)).map(|(_, range)| *range)
}

fn classify_v6(ip: Ipv6Addr) -> Option<Range> {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return classify_v4(v4);
    }
    if NAT64.contains(&ip) {
        let [.., a, b, c, d] = ip.octets();
        return classify_v4(Ipv4Addr::new(a, b, c, d));
    }
    if V6_GLOBAL.iter().any(|net| net.contains(&ip)) {
        return None;
    }
    V6.iter().find(|(net, _)| net.contains(&ip)).map(|(_, range)| *range)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(ip: &str) -> Option<Range> {
        classify(ip.parse().unwrap())
    }

    #[test]
    fn every_special_purpose_form_is_classified() {
        for (ip, expected) in [
            ("127.0.0.1", Range::Loopback),
            ("::1", Range::Loopback),
            ("::ffff:127.0.0.1", Range::Loopback),
            ("64:ff9b::7f00:1", Range::Loopback),
            ("10.1.2.3", Range::Private),
            ("172.16.5.4", Range::Private),
            ("192.168.0.10", Range::Private),
            ("100.64.0.1", Range::Private),
            ("fd00::1", Range::Private),
            ("64:ff9b:1::a00:1", Range::Private),
            ("64:ff9b::a00:1", Range::Private),
            ("169.254.169.254", Range::LinkLocal),
            ("fe80::1", Range::LinkLocal),
            ("0.0.0.0", Range::NonUnicast),
            ("0.1.2.3", Range::NonUnicast),
            ("::", Range::NonUnicast),
            ("255.255.255.255", Range::NonUnicast),
            ("224.0.0.1", Range::NonUnicast),
            ("ff02::1", Range::NonUnicast),
            ("192.0.2.1", Range::Documentation),
            ("198.51.100.7", Range::Documentation),
            ("203.0.113.9", Range::Documentation),
            ("2001:db8::1", Range::Documentation),
            ("3fff::1", Range::Documentation),
            ("198.18.0.1", Range::Benchmarking),
            ("198.19.255.255", Range::Benchmarking),
            ("2001:2::1", Range::Benchmarking),
            ("192.0.0.1", Range::Reserved),
            ("192.88.99.1", Range::Reserved),
            ("240.0.0.1", Range::Reserved),
            ("::7f00:1", Range::Reserved),
            ("::a00:1", Range::Reserved),
            ("2002:7f00:1::", Range::Reserved),
            ("2002:5db8:d822::1", Range::Reserved),
            ("2001::1", Range::Reserved),
            ("2001:10::1", Range::Reserved),
            ("100::1", Range::Reserved),
            ("5f00::1", Range::Reserved),
            ("fec0::1", Range::Reserved),
        ] {
            assert_eq!(range(ip), Some(expected), "{ip}");
        }
    }

    #[test]
    fn globally_reachable_addresses_are_not() {
        for ip in [
            "93.184.216.34",
            "8.8.8.8",
            "192.0.0.9",
            "192.0.0.10",
            "192.31.196.1",
            "192.52.193.1",
            "192.175.48.1",
            "2606:4700::1111",
            "2001:4860:4860::8888",
            "2001:1::1",
            "2001:3::1",
            "2001:20::1",
            "64:ff9b::5db8:d822",
            "::ffff:93.184.216.34",
        ] {
            assert_eq!(range(ip), None, "{ip}");
        }
    }
}
