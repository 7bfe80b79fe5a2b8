//! Listen addresses in ECAD Signatory's `host:port` form, where `:6732` means every interface.

use std::fmt;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};

/// Where a listener binds.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ListenAddress {
    pub host: ListenHost,
    /// 0 asks the system for any free port (useful in tests).
    pub port: u16,
}

/// The host part of a listen address.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ListenHost {
    /// No host given (`:6732`): every interface.
    All,
    Ip(IpAddr),
    /// A host name, resolved when the listener starts.
    Name(String),
}

impl ListenAddress {
    /// Parse `:port`, `ipv4:port`, `[ipv6]:port` or `hostname:port`.
    pub fn parse(s: &str) -> Result<Self, String> {
        let expected = "expected `host:port` such as `:6732`, `127.0.0.1:6732` or `[::1]:6732`";
        let Some((host, port)) = s.rsplit_once(':') else {
            return Err(format!("`{s}` has no port; {expected}"));
        };
        let port: u16 = port
            .parse()
            .map_err(|_| format!("`{port}` in `{s}` is not a port number (0 to 65535)"))?;
        let host = if host.is_empty() {
            ListenHost::All
        } else if let Some(v6) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
            ListenHost::Ip(IpAddr::V6(
                v6.parse()
                    .map_err(|_| format!("`{v6}` in `{s}` is not an IPv6 address"))?,
            ))
        } else if let Ok(ip) = host.parse::<std::net::Ipv4Addr>() {
            ListenHost::Ip(IpAddr::V4(ip))
        } else if is_hostname(host) {
            ListenHost::Name(host.to_owned())
        } else {
            return Err(format!(
                "`{host}` in `{s}` is not an IP address or host name (IPv6 addresses go in \
                 brackets); {expected}"
            ));
        };
        Ok(ListenAddress { host, port })
    }

    /// The socket address to bind, when no name resolution is needed. Every interface
    /// (`:port`) is `[::]:port`, which the server binds for IPv4 and IPv6 at once (and as
    /// `0.0.0.0` on a host without IPv6), as ECAD Signatory listens.
    pub fn socket_addr(&self) -> Option<SocketAddr> {
        match &self.host {
            ListenHost::All => Some(SocketAddr::new(
                IpAddr::V6(Ipv6Addr::UNSPECIFIED),
                self.port,
            )),
            ListenHost::Ip(ip) => Some(SocketAddr::new(*ip, self.port)),
            ListenHost::Name(_) => None,
        }
    }
}

/// RFC 1123 host name: dot-separated labels of letters, digits and inner hyphens.
fn is_hostname(s: &str) -> bool {
    s.len() <= 253
        && s.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
}

impl fmt::Display for ListenAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.host {
            ListenHost::All => write!(f, ":{}", self.port),
            ListenHost::Ip(IpAddr::V6(ip)) => write!(f, "[{ip}]:{}", self.port),
            ListenHost::Ip(ip) => write!(f, "{ip}:{}", self.port),
            ListenHost::Name(name) => write!(f, "{name}:{}", self.port),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn ecad_forms_parse_and_print_back() {
        for s in [
            ":6732",
            "127.0.0.1:6732",
            "0.0.0.0:9583",
            "[::1]:6732",
            "localhost:6732",
            "signer-1.example.org:443",
            ":0",
        ] {
            let parsed = ListenAddress::parse(s).unwrap();
            assert_eq!(parsed.to_string(), s);
        }
        let all = ListenAddress::parse(":6732").unwrap();
        assert_eq!(all.host, ListenHost::All);
        assert_eq!(all.socket_addr(), Some("[::]:6732".parse().unwrap()));
        let v6 = ListenAddress::parse("[::1]:1").unwrap();
        assert_eq!(v6.socket_addr(), Some("[::1]:1".parse().unwrap()));
        assert_eq!(
            ListenAddress::parse("localhost:1").unwrap().socket_addr(),
            None
        );
    }

    #[test]
    fn bad_addresses_are_refused() {
        for s in [
            "6732",
            "localhost",
            ":",
            ":65536",
            ":-1",
            "::1:6732",
            "[::1:6732",
            "bad_host:1",
            "-a:1",
            "a..b:1",
        ] {
            assert!(ListenAddress::parse(s).is_err(), "{s}");
        }
    }
}
