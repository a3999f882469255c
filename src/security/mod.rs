//! Security and abuse limits, sans-IO: who may connect, from where, how fast, and as whom.
//!
//! The driver enforces it (`src/driver/admission.rs` is where it asks), and every field of
//! [`SecurityConfig`] is an option of `ringcast serve` (flag, `RINGCAST_*` variable, TOML key of
//! the same name; see `docs/security.md` and `tuning.md`).
//!
//! Owns the [`Policy`] built once from a [`SecurityConfig`] and meant to be shared by every
//! worker, and the decisions the driver asks of it at four points:
//!
//! ```text
//! accept ──► Policy::admit_peer(ip, tick_ms) ──► Err(Refusal) ──► write refusal.render(), close
//!                 │ Ok(PeerPermit)                                 (nothing of the peer's is read)
//!                 ▼
//! request ─► Policy::admit_request(&request, peer_ip, now) ──► Err(Refusal) ──► render, close
//!                 │ Ok(Admitted { identity, client_ip, permit })
//!                 ▼
//! message ─► MessageGuard::check(tick_ms, bytes) ──► Ok | RateLimited (error reply) | Close (1008)
//! token expiry ──► Policy::ms_until_expiry(..) ──► close 4001 "token expired"
//!                 (unless a `refresh` envelope passed Policy::refresh first)
//! ```
//!
//! Pieces: [`config`] (the settings and their rules), [`ip`] (CIDR rules, `X-Forwarded-For`),
//! [`origin`] (the `Origin` policy), [`auth`] (JWT), [`rate`] (token buckets, the per-IP table,
//! the message guard).
//!
//! Never does I/O, never reads a clock (time comes in as [`Now`] or a tick in ms), never logs:
//! the driver counts and logs each [`Refusal`] once, by its [`Refusal::label`]. The one exception
//! is [`Policy::from_config`] / [`read_public_key`], which read the PEM file at start-up. The
//! per-IP table is shared by all workers, a lock taken once per accept and once per
//! close, never per message, split into shards ([`peers`]) so workers admitting different
//! addresses do not wait on one lock.

pub mod auth;
pub mod config;
pub mod ip;
pub mod origin;
pub mod peers;
pub mod rate;

use std::net::IpAddr;
use std::sync::Arc;

use bytes::BufMut;
use thiserror::Error;

use crate::proto::handshake::{render_response, Request};

pub use auth::{AuthError, AuthMode, Identity, Rooms, Verifier};
pub use config::{
    read_public_key, Secret, SecurityConfig, SecurityConfigError, MAX_AUTH_LEEWAY,
    MIN_JWT_SECRET_BYTES,
};
pub use ip::{Cidr, IpError, IpRules};
pub use origin::{OriginError, OriginPolicy};
pub use peers::{ShardedPeers, PEER_SHARDS};
pub use rate::{MessageGuard, MessageLimits, PeerLimit, PeerTable, Rate, TokenBucket, Verdict};

/// Addresses the per-IP table remembers while idle (see [`PeerTable`]); about 48 bytes each,
/// so 3 MiB at most, plus one entry per address with an open connection.
pub const TRACKED_IPS: usize = 65_536;

/// The two clocks a request is judged by, read by the driver.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Now {
    /// The driver's monotonic tick in milliseconds (rate limits).
    pub tick_ms: u64,
    /// Wall-clock Unix time in milliseconds (token `exp`/`nbf`).
    pub unix_ms: u64,
}

/// Why a connection or request is refused; each maps to a status, a reason and a metrics label.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum Refusal {
    /// The socket peer is in `deny_cidr` or outside `allow_cidr` (403; at accept the driver may
    /// simply close).
    #[error("{0}")]
    Address(IpError),
    /// The client named by a trusted proxy's `X-Forwarded-For` is denied or not allowed (403).
    #[error("forwarded client {0}")]
    ForwardedAddress(IpError),
    /// The client address has `limit` open connections already (503).
    #[error("too many connections from this address")]
    TooManyConnections {
        /// `max_connections_per_ip`.
        limit: u32,
    },
    /// The client address is over its handshake rate (503 with Retry-After).
    #[error("too many handshakes from this address")]
    HandshakeRate {
        /// Whole seconds until a handshake would be admitted (at least 1).
        retry_after_secs: u64,
    },
    /// The `Origin` is refused (403).
    #[error("{0}")]
    Origin(OriginError),
    /// The token is missing or invalid (401).
    #[error("{0}")]
    Auth(AuthError),
}

impl Refusal {
    /// The HTTP status.
    pub fn status(&self) -> u16 {
        match self {
            Refusal::Address(_) | Refusal::ForwardedAddress(_) | Refusal::Origin(_) => 403,
            Refusal::TooManyConnections { .. } | Refusal::HandshakeRate { .. } => 503,
            Refusal::Auth(e) => e.status(),
        }
    }

    /// A stable label for the rejection counter in /metrics (`reason="..."`).
    pub fn label(&self) -> &'static str {
        match self {
            Refusal::Address(IpError::Denied) => "ip_denied",
            Refusal::Address(IpError::NotAllowed) => "ip_not_allowed",
            Refusal::ForwardedAddress(_) => "forwarded_ip",
            Refusal::TooManyConnections { .. } => "per_ip_connections",
            Refusal::HandshakeRate { .. } => "handshake_rate",
            Refusal::Origin(_) => "origin",
            Refusal::Auth(AuthError::Missing) => "auth_missing",
            Refusal::Auth(AuthError::Expired) => "auth_expired",
            Refusal::Auth(_) => "auth_invalid",
        }
    }

    /// Seconds for `Retry-After`, for the 503s.
    pub fn retry_after_secs(&self) -> Option<u64> {
        match self {
            // A slot frees when one of the address's connections closes: unknowable, so the
            // shortest hint that still spaces out retries.
            Refusal::TooManyConnections { .. } => Some(1),
            Refusal::HandshakeRate { retry_after_secs } => Some(*retry_after_secs),
            _ => None,
        }
    }

    /// Appends the complete HTTP response: status, `Connection: close`, `Retry-After` or
    /// `WWW-Authenticate` where they apply, and the reason as a text body.
    pub fn render<B: BufMut>(&self, out: &mut B) {
        let retry = self.retry_after_secs().map(|s| s.to_string());
        let challenge = match self {
            Refusal::Auth(e) if e.status() == 401 => Some(e.www_authenticate()),
            _ => None,
        };
        let mut headers: Vec<(&str, &str)> = vec![("Connection", "close")];
        if let Some(r) = &retry {
            headers.push(("Retry-After", r));
        }
        if let Some(c) = &challenge {
            headers.push(("WWW-Authenticate", c));
        }
        let body = format!("{self}\n");
        render_response(
            self.status(),
            "text/plain; charset=utf-8",
            &headers,
            body.as_bytes(),
            out,
        )
        .expect("refusal headers are fixed tokens and control-free values");
    }
}

/// A connection's place in the per-IP count. Releases it when dropped (or by
/// [`PeerPermit::release`]), exactly once.
#[derive(Debug)]
pub struct PeerPermit {
    /// The table holding the count, or `None` when nothing was counted (limits off, or a
    /// trusted proxy whose clients are counted in [`Policy::admit_request`]).
    table: Option<Arc<ShardedPeers>>,
    ip: IpAddr,
}

impl PeerPermit {
    /// The address this permit counts (or would count).
    pub fn ip(&self) -> IpAddr {
        self.ip
    }

    /// `true` when this permit holds a per-IP slot.
    pub fn is_counted(&self) -> bool {
        self.table.is_some()
    }

    /// Gives the slot back now (the same as dropping the permit).
    pub fn release(self) {
        drop(self);
    }
}

impl Drop for PeerPermit {
    fn drop(&mut self) {
        if let Some(table) = self.table.take() {
            table.release(self.ip);
        }
    }
}

/// A request that passed [`Policy::admit_request`].
#[derive(Debug)]
pub struct Admitted {
    /// Who the connection is.
    pub identity: Identity,
    /// The client's address: the peer, or the one a trusted proxy forwarded.
    pub client_ip: IpAddr,
    /// The forwarded client's per-IP slot, when the peer is a trusted proxy (keep it for the
    /// connection's life, like the accept permit).
    pub forwarded_permit: Option<PeerPermit>,
}

/// Every security rule of a server, built once from a [`SecurityConfig`] and meant to be shared
/// by all workers (`Arc<Policy>`).
#[derive(Debug)]
pub struct Policy {
    /// `allow_cidr` / `deny_cidr`.
    ip: IpRules,
    /// `trusted_proxies`.
    trusted_proxies: Vec<Cidr>,
    /// `allowed_origins` / `require_origin`.
    origin: OriginPolicy,
    /// `auth`.
    auth: AuthMode,
    /// The keys; present whenever `auth` is not off (validation guarantees a key then).
    verifier: Option<Verifier>,
    /// Per-IP counts and handshake buckets, shared with every [`PeerPermit`].
    peers: Arc<ShardedPeers>,
    /// `true` when neither per-IP limit is on, so the table is never touched.
    peers_disabled: bool,
    /// `message_rate` / `message_burst` / `message_bytes_rate`.
    messages: MessageLimits,
}

impl Policy {
    /// Builds the policy, reading `auth_jwt_public_key` from disk. Errors name the field.
    pub fn from_config(config: &SecurityConfig) -> Result<Policy, SecurityConfigError> {
        config.validate()?;
        let pem = match &config.auth_jwt_public_key {
            Some(path) => Some(read_public_key(path)?),
            None => None,
        };
        Policy::new(config, pem.as_deref())
    }

    /// Builds the policy with the public key's PEM text supplied by the caller (tests, fuzzing);
    /// `config.auth_jwt_public_key` is not read. `config` is validated first, counting
    /// `public_pem` as the public key.
    pub fn new(
        config: &SecurityConfig,
        public_pem: Option<&[u8]>,
    ) -> Result<Policy, SecurityConfigError> {
        config.check(public_pem.is_some())?;
        let verifier = if config.auth_jwt_secret.is_some() || public_pem.is_some() {
            Some(
                Verifier::new(
                    config.auth_jwt_secret.as_ref().map(|s| s.0.as_bytes()),
                    public_pem,
                    config.auth_leeway.as_secs(),
                )
                .map_err(|e| SecurityConfigError::PublicKey {
                    path: config.auth_jwt_public_key.clone(),
                    problem: e.to_string(),
                })?,
            )
        } else {
            None
        };
        let per_ip = (config.max_connections_per_ip > 0).then_some(config.max_connections_per_ip);
        let handshake = Rate::new(
            u64::from(config.handshake_rate),
            u64::from(config.handshake_burst),
        );
        let bytes = config.message_bytes_rate as u64;
        Ok(Policy {
            ip: IpRules {
                allow: config.allow_cidr.clone(),
                deny: config.deny_cidr.clone(),
            },
            trusted_proxies: config.trusted_proxies.clone(),
            origin: OriginPolicy {
                allowed: config.allowed_origins.clone(),
                require_origin: config.require_origin,
            },
            auth: config.auth,
            verifier,
            peers_disabled: per_ip.is_none() && handshake.is_none(),
            peers: Arc::new(ShardedPeers::new(TRACKED_IPS, per_ip, handshake)),
            messages: MessageLimits {
                messages: Rate::new(
                    u64::from(config.message_rate),
                    u64::from(config.message_burst),
                ),
                bytes: Rate::new(bytes, bytes),
                strikes: config.message_rate_strikes,
                grace_ms: u64::try_from(config.message_rate_grace.as_millis()).unwrap_or(u64::MAX),
            },
        })
    }

    /// At accept, before any byte is read: the CIDR lists, then the per-IP connection cap and
    /// handshake rate. A trusted proxy is checked against the lists but not counted: its clients
    /// are, in [`Policy::admit_request`].
    pub fn admit_peer(&self, ip: IpAddr, tick_ms: u64) -> Result<PeerPermit, Refusal> {
        self.ip.check(ip).map_err(Refusal::Address)?;
        if ip::any_contains(&self.trusted_proxies, ip) {
            return Ok(PeerPermit { table: None, ip });
        }
        self.count(ip, tick_ms)
    }

    /// Takes a per-IP slot for `ip`.
    fn count(&self, ip: IpAddr, tick_ms: u64) -> Result<PeerPermit, Refusal> {
        if self.peers_disabled {
            return Ok(PeerPermit { table: None, ip });
        }
        self.peers.admit(ip, tick_ms).map_err(|limit| match limit {
            PeerLimit::Connections { limit } => Refusal::TooManyConnections { limit },
            PeerLimit::HandshakeRate { retry_after_ms } => Refusal::HandshakeRate {
                retry_after_secs: retry_after_ms.div_ceil(1000).max(1),
            },
        })?;
        Ok(PeerPermit {
            table: Some(Arc::clone(&self.peers)),
            ip,
        })
    }

    /// With the complete upgrade request from `peer`: the forwarded client (behind a trusted
    /// proxy: its CIDR rules and per-IP slot), then the Origin, then the token.
    pub fn admit_request(
        &self,
        request: &Request,
        peer: IpAddr,
        now: Now,
    ) -> Result<Admitted, Refusal> {
        let client_ip = ip::client_ip(peer, request.forwarded_for(), &self.trusted_proxies);
        let forwarded_permit = if client_ip != peer {
            self.ip
                .check(client_ip)
                .map_err(Refusal::ForwardedAddress)?;
            Some(self.count(client_ip, now.tick_ms)?)
        } else {
            None
        };
        self.origin
            .check(request.origin(), request.host())
            .map_err(Refusal::Origin)?;
        let identity = self.authenticate(request, now.unix_ms)?;
        Ok(Admitted {
            identity,
            client_ip,
            forwarded_permit,
        })
    }

    /// The auth step of [`Policy::admit_request`] alone (the fuzz target drives it directly).
    pub fn authenticate(&self, request: &Request, unix_ms: u64) -> Result<Identity, Refusal> {
        let verifier = match (&self.auth, &self.verifier) {
            (AuthMode::Off, _) | (_, None) => return Ok(Identity::anonymous()),
            (_, Some(v)) => v,
        };
        match auth::extract_token(request) {
            Some((token, _)) => verifier.verify(&token, unix_ms).map_err(Refusal::Auth),
            None if self.auth == AuthMode::Optional => Ok(Identity::anonymous()),
            None => Err(Refusal::Auth(AuthError::Missing)),
        }
    }

    /// Checks a `refresh` envelope's token for a connection of `current`; see
    /// [`Verifier::refresh`].
    pub fn refresh(
        &self,
        current: &Identity,
        token: &str,
        unix_ms: u64,
    ) -> Result<Identity, AuthError> {
        match (&self.auth, &self.verifier) {
            (AuthMode::Off, _) | (_, None) => Err(AuthError::Disabled),
            (_, Some(v)) => v.refresh(current, token, unix_ms),
        }
    }

    /// Milliseconds until `identity`'s token expires (with the leeway), or `None`; see
    /// [`Verifier::ms_until_expiry`].
    pub fn ms_until_expiry(&self, identity: &Identity, unix_ms: u64) -> Option<u64> {
        self.verifier
            .as_ref()
            .and_then(|v| v.ms_until_expiry(identity, unix_ms))
    }

    /// A fresh message guard for a connection opened at `tick_ms`.
    pub fn message_guard(&self, tick_ms: u64) -> MessageGuard {
        MessageGuard::new(self.messages, tick_ms)
    }

    /// The per-connection message limits.
    pub fn message_limits(&self) -> MessageLimits {
        self.messages
    }

    /// Open connections counted for `ip` (for /metrics and tests).
    pub fn connections_from(&self, ip: IpAddr) -> u32 {
        self.peers.active(ip)
    }

    /// Addresses the per-IP table remembers (bounded; see [`PeerTable`]).
    pub fn tracked_addresses(&self) -> usize {
        self.peers.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_policy_can_be_shared_by_every_worker_thread() {
        fn shareable<T: Send + Sync>() {}
        shareable::<Policy>();
        shareable::<PeerPermit>();
    }

    #[test]
    fn every_refusal_has_a_status_a_label_and_a_rendered_reason() {
        let all = [
            Refusal::Address(IpError::Denied),
            Refusal::Address(IpError::NotAllowed),
            Refusal::ForwardedAddress(IpError::Denied),
            Refusal::TooManyConnections { limit: 3 },
            Refusal::HandshakeRate {
                retry_after_secs: 2,
            },
            Refusal::Origin(OriginError::NotAllowed),
            Refusal::Auth(AuthError::BadSignature),
        ];
        let statuses: Vec<u16> = all.iter().map(Refusal::status).collect();
        assert_eq!(statuses, [403, 403, 403, 503, 503, 403, 401]);
        for refusal in &all {
            let mut out = Vec::new();
            refusal.render(&mut out);
            let text = String::from_utf8(out).unwrap();
            let status_line = format!("HTTP/1.1 {} ", refusal.status());
            assert!(text.starts_with(&status_line), "{text}");
            assert!(text.contains("\r\nConnection: close\r\n"), "{text}");
            assert!(text.ends_with(&format!("\r\n\r\n{refusal}\n")), "{text}");
            assert!(!refusal.label().is_empty());
        }
        let mut out = Vec::new();
        all[4].render(&mut out);
        assert!(String::from_utf8(out)
            .unwrap()
            .contains("\r\nRetry-After: 2\r\n"));
    }
}
