//! Which network addresses deliveries may reach (`--targets public|private|any`), decided on the
//! address actually dialled.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The outbound address policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetPolicy {
    /// Only globally routable addresses.
    Public,
    /// Also private and loopback addresses; never link-local (cloud metadata).
    Private,
    /// Everything.
    Any,
}

impl TargetPolicy {
    pub fn parse(s: &str) -> Option<TargetPolicy> {
        match s {
            "public" => Some(TargetPolicy::Public),
            "private" => Some(TargetPolicy::Private),
            "any" => Some(TargetPolicy::Any),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            TargetPolicy::Public => "public",
            TargetPolicy::Private => "private",
            TargetPolicy::Any => "any",
        }
    }

    /// The default for a server listening on `listen`: `private` on loopback, else `public`.
    pub fn default_for(listen: IpAddr) -> TargetPolicy {
        if listen.is_loopback() {
            TargetPolicy::Private
        } else {
            TargetPolicy::Public
        }
    }

    /// May a delivery connect to `ip`?
    pub fn allows(self, ip: IpAddr) -> bool {
        match self {
            TargetPolicy::Any => true,
            TargetPolicy::Private => match classify(ip) {
                Class::Global | Class::Private | Class::Loopback => true,
                Class::LinkLocal | Class::Other => false,
            },
            TargetPolicy::Public => classify(ip) == Class::Global,
        }
    }
}

impl TargetPolicy {
    /// For a URL whose host is an IP literal: why the policy refuses it, if it does. Hostnames are
    /// checked later, on the addresses they resolve to.
    pub fn refuse_literal(self, url: &str) -> Option<String> {
        let host = url::Url::parse(url).ok()?.host()?.to_owned();
        let ip = match host {
            url::Host::Ipv4(ip) => IpAddr::V4(ip),
            url::Host::Ipv6(ip) => IpAddr::V6(ip),
            url::Host::Domain(_) => return None,
        };
        (!self.allows(ip)).then(|| {
            format!(
                "{ip} is not an allowed delivery target under the server's target policy ({})",
                self.as_str()
            )
        })
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Class {
    Global,
    Private,
    Loopback,
    LinkLocal,
    /// Unspecified, multicast, broadcast, documentation, benchmarking, reserved, CGNAT.
    Other,
}

fn classify(ip: IpAddr) -> Class {
    match ip {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => classify_v4(v4),
            None => classify_v6(v6),
        },
    }
}

fn classify_v4(ip: Ipv4Addr) -> Class {
    let [a, b, c, _] = ip.octets();
    if ip.is_loopback() {
        Class::Loopback
    } else if ip.is_private() {
        Class::Private
    } else if ip.is_link_local() {
        Class::LinkLocal
    } else if ip.is_unspecified()
        || ip.is_multicast()
        || ip.is_broadcast()
        || ip.is_documentation()
        || a == 0
        || a >= 240
        || (a == 100 && (64..128).contains(&b)) // CGNAT 100.64/10
        || (a == 198 && (b == 18 || b == 19)) // benchmarking 198.18/15
        || (a == 192 && b == 0 && c == 0)
    // IETF protocol assignments 192.0.0/24
    {
        Class::Other
    } else {
        Class::Global
    }
}

fn classify_v6(ip: Ipv6Addr) -> Class {
    let first = ip.segments()[0];
    if ip.is_loopback() {
        Class::Loopback
    } else if first & 0xfe00 == 0xfc00 {
        Class::Private // unique local fc00::/7
    } else if first & 0xffc0 == 0xfe80 {
        Class::LinkLocal // fe80::/10
    } else if ip.is_unspecified()
        || ip.is_multicast()
        || first == 0x2001 && ip.segments()[1] == 0x0db8 // documentation 2001:db8::/32
        || first & 0xffc0 == 0xfec0 // deprecated site-local
        || ip.to_ipv4().is_some() // IPv4-compatible and other embedded forms
        || first == 0x0064 && ip.segments()[1] == 0xff9b // NAT64 64:ff9b::/96
        || first == 0x2002
    // 6to4 embeds IPv4
    {
        Class::Other
    } else {
        Class::Global
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn public_refuses_every_non_global_address() {
        for addr in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "224.0.0.1",
            "255.255.255.255",
            "192.0.2.1",
            "::1",
            "::",
            "fe80::1",
            "fc00::1",
            "fd12::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "2001:db8::1",
            "64:ff9b::a9fe:a9fe",
            "2002:a9fe:a9fe::1",
        ] {
            assert!(!TargetPolicy::Public.allows(ip(addr)), "{addr}");
        }
        for addr in ["8.8.8.8", "1.1.1.1", "2606:4700:4700::1111"] {
            assert!(TargetPolicy::Public.allows(ip(addr)), "{addr}");
        }
    }

    #[test]
    fn private_allows_private_and_loopback_but_never_link_local() {
        for addr in [
            "127.0.0.1",
            "10.1.2.3",
            "192.168.1.1",
            "::1",
            "fd12::1",
            "8.8.8.8",
        ] {
            assert!(TargetPolicy::Private.allows(ip(addr)), "{addr}");
        }
        for addr in [
            "169.254.169.254",
            "fe80::1",
            "::ffff:169.254.169.254",
            "0.0.0.0",
        ] {
            assert!(!TargetPolicy::Private.allows(ip(addr)), "{addr}");
        }
        assert!(TargetPolicy::Any.allows(ip("169.254.169.254")));
    }

    #[test]
    fn ip_literal_urls_are_judged_at_once_and_hostnames_later() {
        let public = TargetPolicy::Public;
        assert!(
            public
                .refuse_literal("http://127.0.0.1:3000/webhook")
                .is_some()
        );
        assert!(public.refuse_literal("http://[::1]/webhook").is_some());
        assert!(
            public
                .refuse_literal("http://169.254.169.254/latest")
                .is_some()
        );
        assert!(
            public
                .refuse_literal("http://localhost:3000/webhook")
                .is_none()
        );
        assert!(public.refuse_literal("https://8.8.8.8/").is_none());
        assert!(
            TargetPolicy::Private
                .refuse_literal("http://10.0.0.1/")
                .is_none()
        );
    }

    #[test]
    fn the_default_follows_the_listen_address() {
        assert_eq!(
            TargetPolicy::default_for(ip("127.0.0.1")),
            TargetPolicy::Private
        );
        assert_eq!(
            TargetPolicy::default_for(ip("0.0.0.0")),
            TargetPolicy::Public
        );
    }
}
