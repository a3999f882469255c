//! The benchmark target: parsing `ws://host[:port][/path]`, resolving it, and refusing anything
//! that is not loopback unless the user said `--allow-remote`.
//!
//! Owns the safety rule "a load generator aimed by mistake at someone else's server does not
//! start". The check is made on every *resolved* address, not on the host name, so a name that
//! resolves to a public address is refused too. Never opens a socket.

use std::net::{SocketAddr, ToSocketAddrs};

/// Why a `--url` cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    /// Only `ws://` is supported; the tool does not speak TLS.
    #[error("unsupported URL scheme in {0:?}: only ws:// is supported")]
    Scheme(String),
    /// The URL has no host, a bad port or characters that cannot go into a request line.
    #[error("malformed URL {0:?}")]
    Malformed(String),
    /// Name resolution failed or returned no address.
    #[error("cannot resolve {host}: {reason}")]
    Resolve {
        /// The host part of the URL.
        host: String,
        /// What the resolver said.
        reason: String,
    },
    /// The target resolves to an address outside loopback and `--allow-remote` was not given.
    #[error("refusing non-loopback target {0} (pass --allow-remote to load a remote server)")]
    Remote(SocketAddr),
}

/// A parsed and resolved target.
#[derive(Debug, Clone)]
pub struct Target {
    /// The address connections go to (the first one the resolver returned).
    pub addr: SocketAddr,
    /// The `Host` header value: the URL's `host[:port]` as written.
    pub host_header: String,
    /// The request path: the URL's, or the scenario's default path when the URL has none.
    pub path: String,
}

impl Target {
    /// Parses and resolves `url`; refuses non-loopback addresses unless `allow_remote`. A URL
    /// without a path (`ws://127.0.0.1:8080`) gets `default_path`; one with a path, even just
    /// `/`, keeps it.
    pub fn resolve(
        url: &str,
        default_path: &str,
        allow_remote: bool,
    ) -> Result<Target, TargetError> {
        let rest = url
            .strip_prefix("ws://")
            .ok_or_else(|| TargetError::Scheme(url.to_owned()))?;
        let (authority, path) = match rest.find('/') {
            Some(at) => (&rest[..at], &rest[at..]),
            None => (rest, default_path),
        };
        let bad = |s: &str| s.is_empty() || s.bytes().any(|b| b <= b' ' || b == 0x7F);
        if bad(authority) || bad(path) || authority.contains('@') {
            return Err(TargetError::Malformed(url.to_owned()));
        }
        let (host, port) =
            split_host_port(authority).ok_or_else(|| TargetError::Malformed(url.to_owned()))?;
        let addrs: Vec<SocketAddr> = (host, port)
            .to_socket_addrs()
            .map_err(|e| TargetError::Resolve {
                host: host.to_owned(),
                reason: e.to_string(),
            })?
            .collect();
        let Some(&addr) = addrs.first() else {
            return Err(TargetError::Resolve {
                host: host.to_owned(),
                reason: "no address".to_owned(),
            });
        };
        if !allow_remote {
            if let Some(&remote) = addrs.iter().find(|a| !a.ip().is_loopback()) {
                return Err(TargetError::Remote(remote));
            }
        }
        Ok(Target {
            addr,
            host_header: authority.to_owned(),
            path: path.to_owned(),
        })
    }
}

impl Target {
    /// The URL actually loaded: `ws://` + the `Host` header + the path.
    pub fn url(&self) -> String {
        format!("ws://{}{}", self.host_header, self.path)
    }
}

/// Splits `host[:port]` (with `[v6]` brackets) into a host for the resolver and a port (80 when
/// absent, the `ws` default of §3).
fn split_host_port(authority: &str) -> Option<(&str, u16)> {
    if let Some(v6) = authority.strip_prefix('[') {
        let (host, after) = v6.split_once(']')?;
        let port = match after {
            "" => 80,
            p => p.strip_prefix(':')?.parse().ok()?,
        };
        return Some((host, port));
    }
    match authority.rsplit_once(':') {
        Some((host, port)) if !host.is_empty() => Some((host, port.parse().ok()?)),
        Some(_) => None,
        None => Some((authority, 80)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_loopback_url_resolves_with_its_path_and_host_header() {
        let t = Target::resolve("ws://127.0.0.1:9001/echo", "/", false).unwrap();
        assert_eq!(t.addr, "127.0.0.1:9001".parse().unwrap());
        assert_eq!(t.host_header, "127.0.0.1:9001");
        assert_eq!(t.path, "/echo");
    }

    #[test]
    fn a_url_without_path_or_port_uses_the_default_path_and_80() {
        let t = Target::resolve("ws://[::1]", "/ws", false).unwrap();
        assert_eq!(t.addr, "[::1]:80".parse().unwrap());
        assert_eq!(t.path, "/ws");
        assert_eq!(t.url(), "ws://[::1]/ws");
    }

    #[test]
    fn a_url_with_a_path_keeps_it_even_when_it_is_only_a_slash() {
        let t = Target::resolve("ws://127.0.0.1:9001/", "/echo", false).unwrap();
        assert_eq!(t.path, "/");
        let t = Target::resolve("ws://127.0.0.1:9001/rooms?x=1", "/echo", false).unwrap();
        assert_eq!(t.path, "/rooms?x=1");
    }

    #[test]
    fn a_remote_address_is_refused_without_allow_remote() {
        // 192.0.2.0/24 is TEST-NET-1 (RFC 5737): never routed, no DNS lookup needed.
        assert!(matches!(
            Target::resolve("ws://192.0.2.1:80/", "/", false),
            Err(TargetError::Remote(_))
        ));
        assert!(Target::resolve("ws://192.0.2.1:80/", "/", true).is_ok());
    }

    #[test]
    fn only_ws_urls_are_accepted() {
        assert!(matches!(
            Target::resolve("wss://127.0.0.1/", "/", false),
            Err(TargetError::Scheme(_))
        ));
        assert!(matches!(
            Target::resolve("http://127.0.0.1/", "/", false),
            Err(TargetError::Scheme(_))
        ));
    }

    #[test]
    fn malformed_authorities_are_refused() {
        for url in [
            "ws://",
            "ws://:80/",
            "ws://127.0.0.1:x/",
            "ws://a b/",
            "ws://u@127.0.0.1/",
        ] {
            assert!(
                matches!(
                    Target::resolve(url, "/", false),
                    Err(TargetError::Malformed(_))
                ),
                "{url}"
            );
        }
    }
}
