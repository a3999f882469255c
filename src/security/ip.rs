//! Address rules: CIDR blocks, the allow/deny decision taken at accept, and the client address
//! behind trusted proxies (`X-Forwarded-For`).
//!
//! Owns [`Cidr`] (parse, display, match), [`IpRules`] and [`client_ip`]. Every address is compared
//! in one space: IPv6, with IPv4 addresses as IPv4-mapped IPv6 (`::ffff:a.b.c.d`, RFC 4291
//! §2.5.5.2). So `10.0.0.0/8` matches both a plain IPv4 peer and `::ffff:10.1.2.3` from a
//! dual-stack socket, with no second code path to forget.
//!
//! Never does I/O, never resolves names, never allocates when matching.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use thiserror::Error;

/// The IPv4-mapped prefix `::ffff:0:0/96`: IPv4 address `a.b.c.d` is `::ffff:a.b.c.d`.
const V4_MAPPED: u128 = 0xffff_u128 << 32;

/// An address as a 128-bit number in the shared IPv6 space (see the module doc).
pub fn canonical(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(v4) => V4_MAPPED | u128::from(u32::from(v4)),
        IpAddr::V6(v6) => u128::from(v6),
    }
}

/// An address back from [`canonical`]: IPv4-mapped addresses become IPv4 again.
pub fn from_canonical(bits: u128) -> IpAddr {
    let v6 = Ipv6Addr::from(bits);
    match v6.to_ipv4_mapped() {
        Some(v4) => IpAddr::V4(v4),
        None => IpAddr::V6(v6),
    }
}

/// Why a CIDR block does not parse.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum CidrError {
    /// The part before `/` is not an IPv4 or IPv6 address.
    #[error("not an IP address or CIDR block such as 10.0.0.0/8 or 2001:db8::/32")]
    Address,
    /// The part after `/` is not a whole number within the family's width.
    #[error("prefix length must be 0-{max}")]
    Prefix {
        /// 32 for IPv4, 128 for IPv6.
        max: u8,
    },
    /// Bits set below the prefix (`10.0.0.1/8`): almost always a typo, so it is refused rather
    /// than silently truncated.
    #[error("host bits are set (did you mean {0}?)")]
    HostBits(Cidr),
}

/// A block of addresses: `10.0.0.0/8`, `2001:db8::/32`, or one address (`/32`, `/128` implied).
///
/// Invariant: `bits` has no bit set below the prefix, and `prefix` ≤ 128 in the shared space
/// (an IPv4 `/n` is stored as `/96+n` under `::ffff:0:0/96`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Cidr {
    bits: u128,
    prefix: u8,
}

impl Cidr {
    /// The mask of the top `prefix` bits.
    fn mask(prefix: u8) -> u128 {
        match prefix {
            0 => 0,
            p => u128::MAX << (128 - u32::from(p)),
        }
    }

    /// `true` when `ip` lies in this block. O(1), no allocation.
    pub fn contains(&self, ip: IpAddr) -> bool {
        canonical(ip) & Cidr::mask(self.prefix) == self.bits
    }

    /// `true` for a block written in IPv4 notation.
    fn is_v4(&self) -> bool {
        self.prefix >= 96 && self.bits & Cidr::mask(96) == V4_MAPPED
    }
}

impl FromStr for Cidr {
    type Err = CidrError;

    fn from_str(text: &str) -> Result<Cidr, CidrError> {
        let text = text.trim();
        let (addr, prefix) = match text.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (text, None),
        };
        let addr: IpAddr = addr.parse().map_err(|_| CidrError::Address)?;
        let (base, width) = match addr {
            IpAddr::V4(_) => (96u8, 32u8),
            IpAddr::V6(_) => (0u8, 128u8),
        };
        let len = match prefix {
            None => width,
            Some(p) => match p.parse::<u8>() {
                // `u8::from_str` accepts a leading `+`; a prefix is digits only.
                Ok(n) if n <= width && p.bytes().all(|b| b.is_ascii_digit()) => n,
                _ => return Err(CidrError::Prefix { max: width }),
            },
        };
        let prefix = base + len;
        let bits = canonical(addr);
        let masked = bits & Cidr::mask(prefix);
        let cidr = Cidr {
            bits: masked,
            prefix,
        };
        if masked != bits {
            return Err(CidrError::HostBits(cidr));
        }
        Ok(cidr)
    }
}

impl fmt::Display for Cidr {
    /// The canonical text, which parses back to the same block: `10.0.0.0/8`, `2001:db8::/32`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_v4() {
            let v4 = Ipv4Addr::from((self.bits & 0xffff_ffff) as u32);
            write!(f, "{v4}/{}", self.prefix - 96)
        } else {
            write!(f, "{}/{}", Ipv6Addr::from(self.bits), self.prefix)
        }
    }
}

/// `true` when any block of `list` contains `ip`. O(len), no allocation.
pub fn any_contains(list: &[Cidr], ip: IpAddr) -> bool {
    list.iter().any(|c| c.contains(ip))
}

/// Why an address is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
pub enum IpError {
    /// The address is in a `deny_cidr` block.
    #[error("address is denied")]
    Denied,
    /// `allow_cidr` is set and the address is in none of its blocks.
    #[error("address is not allowed")]
    NotAllowed,
}

/// The allow and deny lists.
///
/// Rule: deny wins; then, if the allow list is non-empty, the address must be in it. An empty
/// allow list allows everyone not denied.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IpRules {
    /// Blocks that may connect; empty means everyone.
    pub allow: Vec<Cidr>,
    /// Blocks that may never connect, even when also allowed.
    pub deny: Vec<Cidr>,
}

impl IpRules {
    /// Checks one address against the lists.
    pub fn check(&self, ip: IpAddr) -> Result<(), IpError> {
        if any_contains(&self.deny, ip) {
            return Err(IpError::Denied);
        }
        if !self.allow.is_empty() && !any_contains(&self.allow, ip) {
            return Err(IpError::NotAllowed);
        }
        Ok(())
    }
}

/// The client's address for a request received from `peer`.
///
/// When `peer` is not a trusted proxy, it is the client: `X-Forwarded-For` is ignored, since
/// anyone can send it. When it is, the header (`client, proxy1, proxy2`, each proxy appending the
/// address it received from) is read right to left, and the first address not in a trusted proxy
/// block is the client: everything left of it was written by the client itself and cannot be
/// trusted. If every listed address is a trusted proxy, the left-most one is the client. A
/// missing or unparsable header, or an unparsable element reached before any untrusted address,
/// leaves the last trusted hop as the client (never a value the client chose).
///
/// Elements may carry a port (`1.2.3.4:5678`, `[2001:db8::1]:443`), which is ignored.
pub fn client_ip(peer: IpAddr, forwarded_for: Option<&str>, trusted: &[Cidr]) -> IpAddr {
    if !any_contains(trusted, peer) {
        return peer;
    }
    let Some(header) = forwarded_for else {
        return peer;
    };
    let mut client = peer;
    for element in header.rsplit(',') {
        let Some(ip) = parse_forwarded_element(element) else {
            return client;
        };
        client = ip;
        if !any_contains(trusted, ip) {
            return ip;
        }
    }
    client
}

/// One `X-Forwarded-For` element: an address, optionally with a port.
fn parse_forwarded_element(element: &str) -> Option<IpAddr> {
    let e = element.trim();
    if let Ok(ip) = e.parse::<IpAddr>() {
        return Some(ip);
    }
    if let Some(rest) = e.strip_prefix('[') {
        let (v6, _port) = rest.split_once(']')?;
        return v6.parse::<Ipv6Addr>().ok().map(IpAddr::V6);
    }
    let (v4, port) = e.split_once(':')?;
    port.parse::<u16>().ok()?;
    v4.parse::<Ipv4Addr>().ok().map(IpAddr::V4)
}
