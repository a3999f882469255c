//! The `Origin` policy: which web pages may open a WebSocket to this server.
//!
//! RFC 6455 §10.2: "Servers that are not intended to process input from any web page but only
//! for certain sites SHOULD verify the |Origin| field is an origin they expect. If the origin
//! indicated is unacceptable to the server, then it SHOULD respond to the WebSocket handshake
//! with a reply containing HTTP 403 Forbidden status code." Browsers always send `Origin`
//! (§4.1: "The request MUST include a header field with the name |Origin| if the request is
//! coming from a browser client"), so it is the defence against cross-site WebSocket hijacking.
//!
//! Owns [`OriginPattern`] (exact origins, `*.example.com` wildcards, `*`), [`OriginPolicy`] and
//! [`OriginError`]. Never does I/O, never allocates when checking.

use std::fmt;
use std::str::FromStr;

use thiserror::Error;

/// Why an `allowed_origins` entry does not parse.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum OriginPatternError {
    /// Empty, or containing whitespace, a path, a query or userinfo.
    #[error(
        "not an origin such as https://app.example.com, https://*.example.com, *.example.com or *"
    )]
    Syntax,
    /// A scheme other than http, https (WebSocket pages are served over HTTP).
    #[error("scheme must be http or https")]
    Scheme,
    /// A `*` anywhere but as the whole first label (`*.example.com`).
    #[error("a wildcard may only be the first label, as in *.example.com")]
    Wildcard,
    /// A port that is not 1-65535.
    #[error("port must be 1-65535")]
    Port,
}

/// An origin taken apart: scheme, lower-cased host, and port (`None` when absent or the scheme's
/// default, so `https://a.com:443` equals `https://a.com`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Parts<'a> {
    scheme: &'a str,
    host: &'a str,
    port: Option<u16>,
}

fn default_port(scheme: &str) -> Option<u16> {
    if scheme.eq_ignore_ascii_case("https") {
        Some(443)
    } else if scheme.eq_ignore_ascii_case("http") {
        Some(80)
    } else {
        None
    }
}

/// Splits `host[:port]` (IPv6 literals bracketed). `None` on an empty host or a bad port.
fn split_authority(authority: &str) -> Option<(&str, Option<u16>)> {
    let (host, port) = if authority.starts_with('[') {
        let end = authority.find(']')?;
        let (host, rest) = authority.split_at(end + 1);
        match rest.strip_prefix(':') {
            Some(p) => (host, Some(p)),
            None if rest.is_empty() => (host, None),
            None => return None,
        }
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    if host.is_empty() {
        return None;
    }
    let port = match port {
        None => None,
        Some(p) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => {
            Some(p.parse::<u16>().ok().filter(|&n| n != 0)?)
        }
        Some(_) => return None,
    };
    Some((host, port))
}

/// RFC 6454 §7.1 serialises an origin as `scheme "://" host [ ":" port ]`, nothing more.
fn parse_origin(origin: &str) -> Option<Parts<'_>> {
    let (scheme, authority) = origin.split_once("://")?;
    if scheme.is_empty()
        || !scheme
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b))
        || authority.is_empty()
        || authority
            .bytes()
            .any(|b| b"/?#@ \t".contains(&b) || b.is_ascii_control())
    {
        return None;
    }
    let (host, port) = split_authority(authority)?;
    let port = port.filter(|&p| Some(p) != default_port(scheme));
    Some(Parts { scheme, host, port })
}

/// What the host part of a pattern matches.
#[derive(Clone, Debug, PartialEq, Eq)]
enum HostPattern {
    /// This host exactly (lower-case).
    Exact(String),
    /// Any host ending in `.suffix` with at least one label before it (`*.example.com` matches
    /// `a.example.com` and `a.b.example.com`, not `example.com` nor `badexample.com`).
    Subdomains(String),
}

/// One `allowed_origins` entry.
///
/// - `https://app.example.com` (optionally with a port): that origin exactly.
/// - `https://*.example.com`: any subdomain, over that scheme (and port, if given).
/// - `*.example.com` or `app.example.com` without a scheme: over http or https, default port.
/// - `*`: any origin, including `null`.
///
/// Schemes and hosts compare ASCII case-insensitively; a default port equals no port.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OriginPattern {
    /// `None`: any origin (`*`).
    inner: Option<PatternParts>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct PatternParts {
    /// `None`: http or https.
    scheme: Option<String>,
    host: HostPattern,
    port: Option<u16>,
}

impl OriginPattern {
    /// `true` when the pattern admits every origin.
    pub fn is_any(&self) -> bool {
        self.inner.is_none()
    }

    fn matches(&self, origin: &Parts<'_>) -> bool {
        let Some(p) = &self.inner else {
            return true;
        };
        let scheme_ok = match &p.scheme {
            Some(s) => s.eq_ignore_ascii_case(origin.scheme),
            None => default_port(origin.scheme).is_some(),
        };
        let host_ok = match &p.host {
            HostPattern::Exact(h) => h.eq_ignore_ascii_case(origin.host),
            HostPattern::Subdomains(suffix) => {
                let host = origin.host.as_bytes();
                host.len() > suffix.len() + 1
                    && host[host.len() - suffix.len()..].eq_ignore_ascii_case(suffix.as_bytes())
                    && host[host.len() - suffix.len() - 1] == b'.'
            }
        };
        scheme_ok && host_ok && p.port == origin.port
    }
}

impl FromStr for OriginPattern {
    type Err = OriginPatternError;

    fn from_str(text: &str) -> Result<OriginPattern, OriginPatternError> {
        let text = text.trim();
        if text == "*" {
            return Ok(OriginPattern { inner: None });
        }
        let (scheme, authority) = match text.split_once("://") {
            Some((s, a)) => {
                if !s.eq_ignore_ascii_case("http") && !s.eq_ignore_ascii_case("https") {
                    return Err(OriginPatternError::Scheme);
                }
                (Some(s.to_ascii_lowercase()), a)
            }
            None => (None, text),
        };
        if authority.is_empty()
            || authority
                .bytes()
                .any(|b| b"/?#@ \t".contains(&b) || b.is_ascii_control())
        {
            return Err(OriginPatternError::Syntax);
        }
        let (host, port) = if authority.starts_with('[') || !authority.contains(':') {
            split_authority(authority).ok_or(OriginPatternError::Syntax)?
        } else {
            split_authority(authority).ok_or(OriginPatternError::Port)?
        };
        let port = port.filter(|&p| scheme.as_deref().and_then(default_port) != Some(p));
        if port.is_some() && scheme.is_none() {
            // A port without a scheme is ambiguous about which default it departs from.
            return Err(OriginPatternError::Syntax);
        }
        let host = host.to_ascii_lowercase();
        let host = match host.strip_prefix("*.") {
            Some(suffix) if !suffix.is_empty() && !suffix.contains('*') => {
                HostPattern::Subdomains(suffix.to_owned())
            }
            Some(_) => return Err(OriginPatternError::Wildcard),
            None if host.contains('*') => return Err(OriginPatternError::Wildcard),
            None => HostPattern::Exact(host),
        };
        Ok(OriginPattern {
            inner: Some(PatternParts { scheme, host, port }),
        })
    }
}

impl fmt::Display for OriginPattern {
    /// The canonical text, which parses back to the same pattern.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Some(p) = &self.inner else {
            return f.write_str("*");
        };
        if let Some(s) = &p.scheme {
            write!(f, "{s}://")?;
        }
        match &p.host {
            HostPattern::Exact(h) => f.write_str(h)?,
            HostPattern::Subdomains(s) => write!(f, "*.{s}")?,
        }
        if let Some(port) = p.port {
            write!(f, ":{port}")?;
        }
        Ok(())
    }
}

/// Why a request's origin is refused (403).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
pub enum OriginError {
    /// No `Origin` header, and the server requires one (`require_origin`).
    #[error("an Origin header is required")]
    Missing,
    /// `Origin` is not `scheme://host[:port]` (or is `null`, sent by sandboxed and file pages).
    #[error("the Origin header is not a valid origin")]
    Malformed,
    /// A valid origin not on `allowed_origins`.
    #[error("origin not allowed")]
    NotAllowed,
    /// No `allowed_origins`, and the origin's host differs from the request's `Host`.
    #[error("cross-origin request refused: Origin does not match Host")]
    CrossOrigin,
}

/// The origin rules of a server.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OriginPolicy {
    /// When empty, a browser origin must match the request's `Host` (same-origin only).
    pub allowed: Vec<OriginPattern>,
    /// Refuse requests without `Origin` (non-browser clients). Default `false`.
    pub require_origin: bool,
}

impl OriginPolicy {
    /// Checks a request's `Origin` (and `Host`, for the same-origin default).
    pub fn check(&self, origin: Option<&str>, host: Option<&str>) -> Result<(), OriginError> {
        let Some(origin) = origin else {
            return if self.require_origin {
                Err(OriginError::Missing)
            } else {
                Ok(())
            };
        };
        if self.allowed.iter().any(OriginPattern::is_any) {
            return Ok(());
        }
        let parts = parse_origin(origin.trim()).ok_or(OriginError::Malformed)?;
        if !self.allowed.is_empty() {
            return if self.allowed.iter().any(|p| p.matches(&parts)) {
                Ok(())
            } else {
                Err(OriginError::NotAllowed)
            };
        }
        // Same-origin default: Host carries no scheme, so its port is compared after dropping
        // the origin scheme's default port from both sides.
        let same = host.and_then(split_authority).is_some_and(|(host, port)| {
            let port = port.filter(|&p| Some(p) != default_port(parts.scheme));
            host.eq_ignore_ascii_case(parts.host) && port == parts.port
        });
        if same {
            Ok(())
        } else {
            Err(OriginError::CrossOrigin)
        }
    }
}
