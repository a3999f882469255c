//! Authentication on the upgrade: finding the JWT in a request, verifying it, and what it grants.
//!
//! Owns: where a token may come from ([`extract_token`]: `Authorization: Bearer`, the `token`
//! query parameter, or a `Sec-WebSocket-Protocol` entry `bearer.<token>`), the [`Verifier`]
//! (HS256/384/512 with a secret, RS256 or ES256 with a PEM public key, through `jsonwebtoken`:
//! no hand-rolled cryptography), the claim rules (`exp` and `sub` required, `exp`/`nbf` with a
//! leeway, the optional `rooms` list), the resulting [`Identity`] and its [`Rooms`] matcher, the
//! typed [`AuthError`] and what the driver needs when a token expires mid-connection
//! ([`TOKEN_EXPIRED_CLOSE_CODE`], [`Verifier::refresh`]).
//!
//! Never reads a clock (`unix_ms`, wall-clock milliseconds, is passed in), never does I/O (the
//! PEM file is read by [`super::Policy::from_config`]), never logs a token.
//!
//! ## The subprotocol convention
//!
//! Browsers cannot set headers on a WebSocket, but they can offer subprotocols:
//! `new WebSocket(url, ["ringcast.v1", "bearer." + jwt])`. A JWT is three base64url segments
//! joined by dots, so `bearer.<jwt>` is an HTTP token, as RFC 6455 §4.1 requires of protocol
//! entries. The server never selects such an entry, so the token is never echoed back (the
//! `subprotocols` option refuses entries for which [`is_token_protocol`] holds). A browser fails
//! a 101 that selects none of the protocols it offered, so the token needs a real protocol beside
//! it: `/ws` always speaks `ringcast.v1` (`crate::envelope::SUBPROTOCOL`) and selects it, and
//! the driver refuses an offer whose only protocol is the token with 400
//! (`HandshakeError::TokenProtocolAlone`) instead of a 101 the browser would fail.

use std::borrow::Cow;
use std::sync::Arc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use thiserror::Error;

use crate::proto::handshake::Request;

/// The prefix marking a `Sec-WebSocket-Protocol` entry that carries a token.
pub const TOKEN_PROTOCOL_PREFIX: &str = "bearer.";

/// The query parameter that may carry a token (`/ws?token=<jwt>`).
pub const TOKEN_QUERY_PARAM: &str = "token";

/// Close code sent when a connection's token expires without a refresh (4001, defined with the
/// server's other close codes in [`crate::proto::error`]).
pub const TOKEN_EXPIRED_CLOSE_CODE: u16 = crate::proto::error::CLOSE_TOKEN_EXPIRED;

/// Close reason sent with [`TOKEN_EXPIRED_CLOSE_CODE`].
pub const TOKEN_EXPIRED_REASON: &str = crate::proto::error::REASON_TOKEN_EXPIRED;

/// Longest `sub` accepted: it is shown to other users (`from`), so it stays small.
pub const MAX_SUBJECT_LEN: usize = 256;

/// Most entries in a `rooms` claim, and the longest entry: they bound what
/// [`Rooms::can_join`] costs per call.
pub const MAX_ROOM_PATTERNS: usize = 256;
/// See [`MAX_ROOM_PATTERNS`].
pub const MAX_ROOM_PATTERN_LEN: usize = 256;

/// Whether tokens are looked at.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum AuthMode {
    /// Tokens are ignored; every connection is anonymous.
    #[default]
    Off,
    /// A request without a token is anonymous; a request with one must carry a valid one.
    Optional,
    /// Every request must carry a valid token.
    Required,
}

impl AuthMode {
    /// The spelling used in flags, environment and file.
    pub fn as_str(self) -> &'static str {
        match self {
            AuthMode::Off => "off",
            AuthMode::Optional => "optional",
            AuthMode::Required => "required",
        }
    }
}

/// Where a token was found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenSource {
    /// `Authorization: Bearer <token>`.
    Header,
    /// `?token=<token>`.
    Query,
    /// `Sec-WebSocket-Protocol: bearer.<token>`.
    Protocol,
}

/// `true` for a `Sec-WebSocket-Protocol` entry that carries a token (and so must never be
/// selected).
pub fn is_token_protocol(entry: &str) -> bool {
    entry.len() >= TOKEN_PROTOCOL_PREFIX.len()
        && entry.as_bytes()[..TOKEN_PROTOCOL_PREFIX.len()]
            .eq_ignore_ascii_case(TOKEN_PROTOCOL_PREFIX.as_bytes())
}

/// The token a request carries, looked for in this order: `Authorization: Bearer`, the `token`
/// query parameter, the first `bearer.` protocol entry. An `Authorization` header with another
/// scheme (`Basic`, added by some proxies) is not a token and does not hide the others. An empty
/// token counts as present (and then fails verification): a client that tried to send one should
/// learn that it is wrong, not be treated as anonymous.
pub fn extract_token(request: &Request) -> Option<(Cow<'_, str>, TokenSource)> {
    if let Some(value) = request.authorization() {
        // RFC 6750 §2.1: `credentials = "Bearer" 1*SP b64token`; RFC 7235 §2.1: the scheme is
        // case-insensitive.
        if let Some((scheme, token)) = value.split_once(' ') {
            if scheme.eq_ignore_ascii_case("bearer") {
                return Some((
                    Cow::Borrowed(token.trim_start_matches(' ')),
                    TokenSource::Header,
                ));
            }
        }
    }
    if let Some(token) = request.query_param(TOKEN_QUERY_PARAM) {
        return Some((token, TokenSource::Query));
    }
    request
        .protocols()
        .iter()
        .find(|p| is_token_protocol(p))
        .map(|p| {
            (
                Cow::Borrowed(&p[TOKEN_PROTOCOL_PREFIX.len()..]),
                TokenSource::Protocol,
            )
        })
}

/// Why a token (or its absence) is refused. Every variant but the last two answers the upgrade
/// with 401; see [`AuthError::status`].
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum AuthError {
    /// No token, and the server requires one.
    #[error("authentication required")]
    Missing,
    /// Not three base64url segments, or a header or payload that is not JSON.
    #[error("malformed token")]
    Malformed,
    /// `alg: none`: an unsigned token (RFC 7519 §6), never accepted.
    #[error("unsigned tokens (alg none) are not accepted")]
    AlgorithmNone,
    /// An algorithm the server has no key for, or does not support: this is what an
    /// algorithm-confusion attempt (an RS256 public key used as an HS256 secret) meets.
    #[error("token algorithm not accepted")]
    AlgorithmNotAllowed,
    /// The signature does not verify.
    #[error("invalid token signature")]
    BadSignature,
    /// `exp` (plus the leeway) has passed.
    #[error("token expired")]
    Expired,
    /// `nbf` (minus the leeway) is still ahead.
    #[error("token not yet valid")]
    NotYetValid,
    /// No `exp`: a token that never expires is a credential that can never be revoked.
    #[error("token has no expiry (exp)")]
    MissingExpiry,
    /// No `sub`, or an empty or overlong one.
    #[error("token has no usable subject (sub)")]
    MissingSubject,
    /// A claim of the wrong type (`exp` not a whole number, `rooms` not a list of strings) or
    /// over its size limit.
    #[error("token claims are invalid")]
    InvalidClaims,
    /// A refresh token for another subject than the connection's (403).
    #[error("refresh token is for another subject")]
    SubjectChanged,
    /// A refresh while authentication is off (400).
    #[error("authentication is off")]
    Disabled,
}

impl AuthError {
    /// The HTTP status of the upgrade refusal: 401 for a missing or bad token (RFC 7235 §3.1),
    /// 403 for a subject change, 400 for a refresh with authentication off.
    pub fn status(&self) -> u16 {
        match self {
            AuthError::SubjectChanged => 403,
            AuthError::Disabled => 400,
            _ => 401,
        }
    }

    /// The error reply code for a refused `refresh` envelope.
    pub fn reply_code(&self) -> &'static str {
        match self {
            AuthError::Expired => "token_expired",
            AuthError::SubjectChanged => "forbidden",
            AuthError::Disabled => "auth_disabled",
            _ => "unauthorized",
        }
    }

    /// The `WWW-Authenticate` value of a 401. RFC 6750 §3: "If the request lacks any
    /// authentication information ..., the resource server SHOULD NOT include an error code or
    /// other error information"; otherwise `error="invalid_token"` with a description.
    pub fn www_authenticate(&self) -> String {
        match self {
            AuthError::Missing => "Bearer realm=\"ringcast\"".to_owned(),
            other => format!(
                "Bearer realm=\"ringcast\", error=\"invalid_token\", error_description=\"{other}\""
            ),
        }
    }
}

/// The rooms a connection may join and publish to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Rooms {
    /// No `rooms` claim (or no token): every room.
    Any,
    /// Only rooms matching one of these patterns; `*` matches any run of characters (also
    /// none), every other character itself. An empty list allows no room.
    Only(Vec<String>),
}

impl Rooms {
    /// `true` when the connection may join (and publish to) `room`. Cost: O(patterns × pattern
    /// length × room length) in the worst case, bounded by [`MAX_ROOM_PATTERNS`] and
    /// [`MAX_ROOM_PATTERN_LEN`]; no allocation.
    pub fn can_join(&self, room: &str) -> bool {
        match self {
            Rooms::Any => true,
            Rooms::Only(patterns) => patterns
                .iter()
                .any(|p| glob_match(p.as_bytes(), room.as_bytes())),
        }
    }
}

/// `*`-only glob matching without backtracking blow-up: on a mismatch, retry from the last `*`
/// one character further (the classic two-pointer algorithm, O(p × t) worst case).
fn glob_match(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() && pattern[p] == b'*' {
            star = Some((p, t));
            p += 1;
        } else if p < pattern.len() && pattern[p] == text[t] {
            p += 1;
            t += 1;
        } else if let Some((sp, st)) = star {
            p = sp + 1;
            t = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|&b| b == b'*')
}

/// Who a connection is, as far as the server knows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    /// The token's `sub`; `None` for an anonymous connection. Shared: the driver stamps it on
    /// every message the connection publishes, and a reference count is all that costs.
    pub user: Option<Arc<str>>,
    /// What the `rooms` claim allows.
    pub rooms: Rooms,
    /// The token's `exp` in Unix seconds; `None` for an anonymous connection.
    pub expires_at: Option<u64>,
}

impl Identity {
    /// A connection without a token: no user, every room, no expiry.
    pub fn anonymous() -> Identity {
        Identity {
            user: None,
            rooms: Rooms::Any,
            expires_at: None,
        }
    }
}

/// The claims this server reads; others are ignored.
#[derive(Deserialize)]
struct Claims {
    sub: Option<String>,
    exp: Option<u64>,
    nbf: Option<u64>,
    rooms: Option<Vec<String>>,
}

/// Only the header field the algorithm choice needs.
#[derive(Deserialize)]
struct JoseHeader {
    alg: String,
}

/// Why a verification key cannot be used.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum KeyError {
    /// An empty HMAC secret would make every token forgeable.
    #[error("the secret is empty")]
    EmptySecret,
    /// Not a PEM RSA or EC (P-256) public key.
    #[error("not a PEM-encoded RSA or EC P-256 public key")]
    BadPem,
    /// A private key where the public key belongs: verifying needs only the public half, and a
    /// signing key has no business on the server.
    #[error("this is a private key; give the server the public key only (openssl pkey -pubout)")]
    PrivateKey,
}

/// Whether `pem` holds a private key block (`-----BEGIN ... PRIVATE KEY-----`, RFC 7468 labels
/// `PRIVATE KEY`, `RSA PRIVATE KEY`, `EC PRIVATE KEY`, `ENCRYPTED PRIVATE KEY`).
fn is_private_pem(pem: &[u8]) -> bool {
    pem.split(|&b| b == b'\n').any(|line| {
        let line = line.trim_ascii();
        line.starts_with(b"-----BEGIN ") && line.ends_with(b"PRIVATE KEY-----")
    })
}

/// Verifies tokens. Built once at start-up, shared by every worker.
///
/// Invariant: each algorithm is verified only with the key of its own family (HS* with the
/// secret, RS256 or ES256 with the public key), chosen from the token's `alg` before any
/// cryptography runs, and the `Validation` handed to `jsonwebtoken` lists that one algorithm.
/// So a token signed with HS256 using the public key's bytes as the secret meets either no HMAC
/// key ([`AuthError::AlgorithmNotAllowed`]) or the real secret ([`AuthError::BadSignature`]).
pub struct Verifier {
    /// The HMAC key, when a secret is configured.
    secret: Option<DecodingKey>,
    /// The public key and the one algorithm it verifies (RS256 for RSA, ES256 for EC P-256).
    public: Option<(DecodingKey, Algorithm)>,
    /// Seconds of clock skew tolerated on `exp` and `nbf`.
    leeway_secs: u64,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print key material.
        f.debug_struct("Verifier")
            .field("secret", &self.secret.is_some())
            .field("public", &self.public.as_ref().map(|(_, alg)| alg))
            .field("leeway_secs", &self.leeway_secs)
            .finish()
    }
}

impl Verifier {
    /// A verifier with an HMAC `secret`, a PEM public key, or both.
    pub fn new(
        secret: Option<&[u8]>,
        public_pem: Option<&[u8]>,
        leeway_secs: u64,
    ) -> Result<Verifier, KeyError> {
        let secret = match secret {
            Some([]) => return Err(KeyError::EmptySecret),
            Some(s) => Some(DecodingKey::from_secret(s)),
            None => None,
        };
        let public = match public_pem {
            None => None,
            Some(pem) if is_private_pem(pem) => return Err(KeyError::PrivateKey),
            Some(pem) => Some(
                DecodingKey::from_rsa_pem(pem)
                    .map(|k| (k, Algorithm::RS256))
                    .or_else(|_| DecodingKey::from_ec_pem(pem).map(|k| (k, Algorithm::ES256)))
                    .map_err(|_| KeyError::BadPem)?,
            ),
        };
        Ok(Verifier {
            secret,
            public,
            leeway_secs,
        })
    }

    /// `true` when at least one key is configured.
    pub fn has_key(&self) -> bool {
        self.secret.is_some() || self.public.is_some()
    }

    /// The tolerated clock skew in seconds.
    pub fn leeway_secs(&self) -> u64 {
        self.leeway_secs
    }

    /// Verifies `token` at wall-clock time `unix_ms` and returns who it names.
    pub fn verify(&self, token: &str, unix_ms: u64) -> Result<Identity, AuthError> {
        let alg = self.algorithm(token)?;
        let key = match alg {
            Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512 => self.secret.as_ref(),
            other => self
                .public
                .as_ref()
                .filter(|(_, a)| *a == other)
                .map(|(k, _)| k),
        }
        .ok_or(AuthError::AlgorithmNotAllowed)?;

        // Time claims are checked below against the caller's clock, not jsonwebtoken's.
        let mut validation = Validation::new(alg);
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.validate_aud = false;
        validation.required_spec_claims.clear();
        let claims = jsonwebtoken::decode::<Claims>(token, key, &validation)
            .map_err(|e| match e.kind() {
                ErrorKind::InvalidSignature => AuthError::BadSignature,
                ErrorKind::InvalidAlgorithm | ErrorKind::InvalidAlgorithmName => {
                    AuthError::AlgorithmNotAllowed
                }
                ErrorKind::Json(_) | ErrorKind::InvalidClaimFormat(_) => AuthError::InvalidClaims,
                _ => AuthError::Malformed,
            })?
            .claims;
        self.identity(claims, unix_ms / 1000)
    }

    /// The token's `alg`, refusing `none` and anything unsupported before any key is touched.
    fn algorithm(&self, token: &str) -> Result<Algorithm, AuthError> {
        let mut parts = token.split('.');
        let (Some(header), Some(_), Some(_), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(AuthError::Malformed);
        };
        let header = URL_SAFE_NO_PAD
            .decode(header)
            .map_err(|_| AuthError::Malformed)?;
        let header: JoseHeader =
            serde_json::from_slice(&header).map_err(|_| AuthError::Malformed)?;
        // RFC 7518 §3.6: "none" is the value for an Unsecured JWS.
        match header.alg.as_str() {
            alg if alg.eq_ignore_ascii_case("none") => Err(AuthError::AlgorithmNone),
            "HS256" => Ok(Algorithm::HS256),
            "HS384" => Ok(Algorithm::HS384),
            "HS512" => Ok(Algorithm::HS512),
            "RS256" => Ok(Algorithm::RS256),
            "ES256" => Ok(Algorithm::ES256),
            _ => Err(AuthError::AlgorithmNotAllowed),
        }
    }

    /// Applies the claim rules to verified claims.
    fn identity(&self, claims: Claims, now_secs: u64) -> Result<Identity, AuthError> {
        // RFC 7519 §4.1.4: "The "exp" (expiration time) claim identifies the expiration time on
        // or after which the JWT MUST NOT be accepted for processing. ... Implementers MAY
        // provide for some small leeway, usually no more than a few minutes, to account for
        // clock skew."
        let exp = claims.exp.ok_or(AuthError::MissingExpiry)?;
        if now_secs >= exp.saturating_add(self.leeway_secs) {
            return Err(AuthError::Expired);
        }
        // §4.1.5: "The "nbf" (not before) claim identifies the time before which the JWT MUST
        // NOT be accepted for processing."
        if let Some(nbf) = claims.nbf {
            if now_secs.saturating_add(self.leeway_secs) < nbf {
                return Err(AuthError::NotYetValid);
            }
        }
        let user = claims
            .sub
            .filter(|s| !s.is_empty() && s.len() <= MAX_SUBJECT_LEN)
            .ok_or(AuthError::MissingSubject)?;
        let rooms = match claims.rooms {
            None => Rooms::Any,
            Some(list)
                if list.len() > MAX_ROOM_PATTERNS
                    || list.iter().any(|p| p.len() > MAX_ROOM_PATTERN_LEN) =>
            {
                return Err(AuthError::InvalidClaims)
            }
            Some(list) => Rooms::Only(list),
        };
        Ok(Identity {
            user: Some(Arc::from(user)),
            rooms,
            expires_at: Some(exp),
        })
    }

    /// Checks a `{"type":"refresh","token":"…"}` envelope's token for a connection of
    /// `current`: it must verify and name the same subject. The returned identity replaces the
    /// connection's (its `rooms` and `expires_at` may differ).
    pub fn refresh(
        &self,
        current: &Identity,
        token: &str,
        unix_ms: u64,
    ) -> Result<Identity, AuthError> {
        let next = self.verify(token, unix_ms)?;
        if next.user != current.user {
            return Err(AuthError::SubjectChanged);
        }
        Ok(next)
    }

    /// Milliseconds from `unix_ms` until a connection of `identity` must be closed with
    /// [`TOKEN_EXPIRED_CLOSE_CODE`] (its `exp` plus the leeway), or `None` when it never expires.
    /// 0 means now. The driver arms a timer for this and re-arms it after a refresh.
    pub fn ms_until_expiry(&self, identity: &Identity, unix_ms: u64) -> Option<u64> {
        let exp = identity.expires_at?;
        let deadline_ms = exp.saturating_add(self.leeway_secs).saturating_mul(1000);
        Some(deadline_ms.saturating_sub(unix_ms))
    }
}
