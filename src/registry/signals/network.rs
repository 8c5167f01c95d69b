//! Where the transmitter may push: https only (plain http only to a loopback address), never to
//! a private, link-local or otherwise internal address unless an admin allowed that network
//! (`--allow-receiver-network CIDR`). Checked when a stream is configured and again on every
//! connection (a resolver that refuses such addresses, so that DNS cannot be rebound later).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

/// A network in CIDR notation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    pub addr: IpAddr,
    pub prefix: u8,
}

impl std::str::FromStr for Cidr {
    type Err = String;

    fn from_str(text: &str) -> Result<Cidr, String> {
        let (addr, prefix) = match text.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (text, None),
        };
        let addr: IpAddr = addr
            .trim()
            .parse()
            .map_err(|_| format!("{text:?} is not a network (e.g. 10.1.0.0/16 or fd00::/8)"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) => p
                .trim()
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("{text:?}: the prefix length must be 0..={max}"))?,
            None => max,
        };
        Ok(Cidr { addr, prefix })
    }
}

impl Cidr {
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                let mask = u32::MAX.checked_shl(32 - self.prefix as u32).unwrap_or(0);
                u32::from(n) & mask == u32::from(a) & mask
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                let mask = u128::MAX.checked_shl(128 - self.prefix as u32).unwrap_or(0);
                u128::from(n) & mask == u128::from(a) & mask
            }
            _ => false,
        }
    }
}

/// The push-address policy.
#[derive(Debug, Clone, Default)]
pub struct ReceiverNetworks {
    pub allowed: Vec<Cidr>,
}

fn v4_internal(ip: Ipv4Addr) -> bool {
    let o = ip.octets();
    ip.is_private()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || o[0] == 0
        || (o[0] == 100 && (o[1] & 0xc0) == 64) // 100.64.0.0/10, shared address space
        || o[0] >= 240
}

fn v6_internal(ip: Ipv6Addr) -> bool {
    let s = ip.segments();
    ip.is_unspecified()
        || ip.is_multicast()
        || (s[0] & 0xfe00) == 0xfc00 // unique local
        || (s[0] & 0xffc0) == 0xfe80 // link-local
}

/// Loopback, including IPv4-mapped loopback.
pub fn is_loopback(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_loopback(),
        IpAddr::V6(v6) => {
            v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
    }
}

impl ReceiverNetworks {
    /// Why the transmitter may not connect to `ip`, or None when it may.
    pub fn refusal(&self, ip: IpAddr) -> Option<String> {
        if is_loopback(ip) || self.allowed.iter().any(|c| c.contains(ip)) {
            return None;
        }
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
            v4 => v4,
        };
        let internal = match ip {
            IpAddr::V4(v4) => v4_internal(v4),
            IpAddr::V6(v6) => v6_internal(v6),
        };
        internal.then(|| {
            format!(
                "{ip} is a private, link-local or reserved address; an admin must allow its \
                 network (steward server --allow-receiver-network CIDR)"
            )
        })
    }

    /// Checks a push endpoint: an absolute https URL (http only to a loopback host), with no
    /// credentials or fragment, whose host is not refused. Hostnames are resolved here and
    /// again at every connection.
    pub async fn check_url(&self, text: &str) -> Result<reqwest::Url, String> {
        if text.len() > 2048 {
            return Err("the endpoint_url is longer than 2048 bytes".into());
        }
        let url = reqwest::Url::parse(text)
            .map_err(|e| format!("the endpoint_url {text:?} is not a URL: {e}"))?;
        if !url.username().is_empty() || url.password().is_some() {
            return Err(
                "the endpoint_url must not carry credentials; use authorization_header".into(),
            );
        }
        if url.fragment().is_some() {
            return Err("the endpoint_url must not have a fragment".into());
        }
        let host = url
            .host_str()
            .ok_or_else(|| format!("the endpoint_url {text:?} has no host"))?;
        let literal: Option<IpAddr> = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse()
            .ok();
        let port = url.port_or_known_default().unwrap_or(443);
        let addrs: Vec<IpAddr> = match literal {
            Some(ip) => vec![ip],
            None => {
                let name = url.host_str().unwrap_or_default().to_string();
                tokio::net::lookup_host((name.as_str(), port))
                    .await
                    .map_err(|e| format!("cannot resolve {name}: {e}"))?
                    .map(|a| a.ip())
                    .collect()
            }
        };
        if addrs.is_empty() {
            return Err(format!(
                "{} resolves to no address",
                url.host_str().unwrap_or("")
            ));
        }
        match url.scheme() {
            "https" => {}
            "http" if addrs.iter().all(|a| is_loopback(*a)) => {}
            "http" => {
                return Err(
                    "the endpoint_url must use https (plain http is allowed only to a loopback address)"
                        .into(),
                );
            }
            other => return Err(format!("the endpoint_url scheme {other} is not http(s)")),
        }
        for a in addrs {
            if let Some(why) = self.refusal(a) {
                return Err(why);
            }
        }
        Ok(url)
    }
}

/// A DNS resolver for the push client that drops refused addresses (so a name that resolves to
/// an internal address later is refused at connection time too).
pub struct GuardedResolver(pub Arc<ReceiverNetworks>);

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let policy = self.0.clone();
        Box::pin(async move {
            let host = name.as_str().to_string();
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await?
                .filter(|a| policy.refusal(a.ip()).is_none())
                .collect();
            if addrs.is_empty() {
                return Err(format!("{host} resolves to no address a receiver may use").into());
            }
            let iter: reqwest::dns::Addrs = Box::new(addrs.into_iter());
            Ok(iter)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_addresses_are_refused_unless_allowed() {
        let none = ReceiverNetworks::default();
        for ip in [
            "10.0.0.1",
            "192.168.1.1",
            "172.16.0.1",
            "169.254.169.254",
            "fe80::1",
            "fd00::1",
            "0.0.0.0",
            "100.64.0.1",
        ] {
            assert!(none.refusal(ip.parse().unwrap()).is_some(), "{ip}");
        }
        for ip in ["127.0.0.1", "::1", "93.184.216.34", "2606:4700::1111"] {
            assert!(none.refusal(ip.parse().unwrap()).is_none(), "{ip}");
        }
        let allowed = ReceiverNetworks {
            allowed: vec!["10.1.0.0/16".parse().unwrap()],
        };
        assert!(allowed.refusal("10.1.2.3".parse().unwrap()).is_none());
        assert!(allowed.refusal("10.2.0.1".parse().unwrap()).is_some());
        assert!("10.0.0.0/33".parse::<Cidr>().is_err());
        assert!("nonsense".parse::<Cidr>().is_err());
    }

    #[tokio::test]
    async fn push_urls_follow_the_rules() {
        let p = ReceiverNetworks::default();
        assert!(p.check_url("http://127.0.0.1:9/x").await.is_ok());
        assert!(p.check_url("https://127.0.0.1:9/x").await.is_ok());
        let e = p.check_url("http://93.184.216.34/x").await.unwrap_err();
        assert!(e.contains("https"), "{e}");
        let e = p
            .check_url("https://169.254.169.254/latest")
            .await
            .unwrap_err();
        assert!(e.contains("link-local"), "{e}");
        assert!(p.check_url("https://u:p@127.0.0.1/").await.is_err());
        assert!(p.check_url("ftp://127.0.0.1/").await.is_err());
        assert!(p.check_url("not a url").await.is_err());
    }
}
