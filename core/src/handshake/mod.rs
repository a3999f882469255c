//! The HTTP/1.1 opening handshake (RFC 6455 §4), sans-IO, for both ends.
//!
//! Owns: finding the end of a request head incrementally ([`scan`]), parsing it once into a
//! [`Request`] ([`request`]), checking it against RFC 6455 §4.2.1 and choosing a subprotocol
//! ([`upgrade`]), the `Sec-WebSocket-Accept` computation, rendering the `101`, every error
//! response and the server's plain HTTP responses into a caller's buffer ([`response`]), and the
//! client side: building an upgrade request and checking a server's `101` ([`client`]).
//!
//! Never does I/O, never reads a clock, never routes: the driver decides which paths are
//! WebSocket endpoints and calls [`validate_upgrade`] for those only. Never buffers more than the
//! configured header byte limit, and never re-parses a head on every read: the terminating
//! `\r\n\r\n` is searched incrementally first, `httparse` runs once on the complete head.
//!
//! The flow on a server connection:
//!
//! ```text
//! read bytes ──► RequestParser::parse(buf) ──► Partial ──► read more, call again with the grown buf
//!                      │                └────► Err(e) ──► e.render_response(out), close
//!                      ▼
//!               Complete(request, consumed)
//!                      │  driver routes on request.path()
//!                      ▼
//!        validate_upgrade(&request, &config) ──► Err(e) ──► e.render_response(out), close
//!                      ▼
//!        Ok(upgrade) ──► upgrade.render_response(out) ──► frames from buf[consumed..]
//! ```

pub mod client;
pub mod error;
pub mod request;
pub mod response;
pub mod scan;
pub mod upgrade;

#[cfg(test)]
mod tests;

pub use client::{
    write_client_request, ClientHandshakeError, ClientKey, ResponseValidator, ServerAccepted,
};
pub use error::{HandshakeError, MalformedKind};
pub use request::{Request, RequestParser};
pub use response::{reason_phrase, render_response, InvalidResponseHeader};
pub use scan::{HeadScanner, ScanStatus};
pub use upgrade::{refuse_head, validate_upgrade, ExtensionOffer, Upgrade, UpgradeConfig};

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use sha1::{Digest, Sha1};

/// The GUID appended to the client's key (§1.3: "concatenate this with the Globally Unique
/// Identifier (GUID, \[RFC4122\]) "258EAFA5-E914-47DA-95CA-C5AB0DC85B11" in string form").
pub const WEBSOCKET_GUID: &[u8; 36] = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// The only protocol version we speak (§4.1: "The value of this header field MUST be 13").
pub const WEBSOCKET_VERSION: &str = "13";

/// Length of a valid `Sec-WebSocket-Key`: base64 of 16 bytes, with its `==` padding.
pub const KEY_LEN: usize = 24;

/// Length of a `Sec-WebSocket-Accept` value: base64 of a 20-byte SHA-1 digest.
pub const ACCEPT_LEN: usize = 28;

/// What a parse step produced when it did not fail.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Parse<T> {
    /// A complete head was parsed into `T`; the head was the first `usize` bytes of the buffer.
    /// Bytes after it (for example the first frames) belong to the caller.
    Complete(T, usize),
    /// The head is not complete yet: read more, append, call again with the whole buffer.
    /// Nothing was consumed.
    Partial,
}

/// Anti-abuse limits on a request or response head.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HandshakeLimits {
    /// Largest head in bytes, request line (or status line) through the final `\r\n\r\n`
    /// included. Default 8 KiB: browsers send 400-1500 bytes; raise it if clients carry large
    /// cookies or tokens in headers. Enforced while scanning: the parser never looks further
    /// than this many bytes, so the caller never needs to buffer more.
    pub max_head_bytes: usize,
    /// Largest number of header fields. Default 64; browsers send 10-20. Each costs one slot in
    /// the array handed to `httparse`, allocated once per handshake.
    pub max_headers: usize,
}

impl Default for HandshakeLimits {
    fn default() -> Self {
        HandshakeLimits {
            max_head_bytes: 8 * 1024,
            max_headers: 64,
        }
    }
}

/// A `Sec-WebSocket-Accept` value, kept on the stack.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct AcceptKey([u8; ACCEPT_LEN]);

impl AcceptKey {
    /// Computes the accept value for a client's key exactly as sent (§4.2.2: "the server has to
    /// take the value (as present in the header field, e.g., the base64-encoded \[RFC4648\]
    /// version minus any leading and trailing whitespace) and concatenate this with the GUID
    /// ... A SHA-1 hash (160 bits) \[FIPS.180-3\], base64-encoded ..., of this concatenation is
    /// then returned"). Does not allocate.
    pub fn from_key(key: &[u8]) -> AcceptKey {
        let mut sha = Sha1::new();
        sha.update(key);
        sha.update(WEBSOCKET_GUID);
        let digest = sha.finalize();
        let mut out = [0u8; ACCEPT_LEN];
        let written = STANDARD
            .encode_slice(digest, &mut out)
            .expect("base64 of 20 bytes is exactly 28 bytes");
        debug_assert_eq!(written, ACCEPT_LEN);
        AcceptKey(out)
    }

    /// The value as bytes, ready to write into a header.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The value as text.
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).expect("base64 output is ASCII")
    }
}

impl std::fmt::Debug for AcceptKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("AcceptKey").field(&self.as_str()).finish()
    }
}

/// `true` when `key` is what §4.1 asks a client to send: "a randomly selected 16-byte value that
/// has been base64-encoded". Strict base64: canonical padding, no stray bits, no whitespace.
pub fn is_valid_key(key: &[u8]) -> bool {
    if key.len() != KEY_LEN {
        return false;
    }
    // 24 base64 characters decode to at most 18 bytes; `==` padding makes it 16.
    let mut decoded = [0u8; 18];
    matches!(STANDARD.decode_slice(key, &mut decoded), Ok(16))
}

/// Optional whitespace around list elements and header values (RFC 7230 §3.2.3: `OWS = *( SP /
/// HTAB )`).
pub(crate) fn trim_ows(s: &[u8]) -> &[u8] {
    let start = s
        .iter()
        .position(|&b| b != b' ' && b != b'\t')
        .unwrap_or(s.len());
    let end = s
        .iter()
        .rposition(|&b| b != b' ' && b != b'\t')
        .map_or(start, |i| i + 1);
    &s[start..end]
}

/// The non-empty elements of a `#rule` comma-separated list, trimmed (RFC 7230 §7: "a recipient
/// MUST accept empty list elements ... and ignore them").
pub(crate) fn list_elements(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    value
        .split(|&b| b == b',')
        .map(trim_ows)
        .filter(|e| !e.is_empty())
}

/// `true` when `value`, a comma-separated token list, contains `token` compared ASCII
/// case-insensitively (e.g. `Connection: keep-alive, Upgrade` contains `upgrade`).
pub(crate) fn list_contains(value: &[u8], token: &str) -> bool {
    list_elements(value).any(|e| e.eq_ignore_ascii_case(token.as_bytes()))
}

/// `tchar` of RFC 7230 §3.2.6: `"!" / "#" / "$" / "%" / "&" / "'" / "*" / "+" / "-" / "." /
/// "^" / "_" / "`" / "|" / "~" / DIGIT / ALPHA`.
pub(crate) fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// `token = 1*tchar`.
pub(crate) fn is_token(s: &[u8]) -> bool {
    !s.is_empty() && s.iter().all(|&b| is_tchar(b))
}
