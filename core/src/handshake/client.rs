//! The client half of the opening handshake (RFC 6455 §4.1), for the load tool and tests.
//!
//! Owns: building an upgrade request from a host, path, key and offered subprotocols, and
//! checking the server's `101` incrementally from bytes. Never generates randomness (the caller
//! passes the 16-byte nonce, §4.1: "randomly selected") and never does I/O.

use bytes::BufMut;
use thiserror::Error;

use super::error::MalformedKind;
use super::response::put_header;
use super::scan::{HeadScanner, ScanStatus};
use super::{is_token, list_contains, trim_ows, AcceptKey, HandshakeLimits, Parse, KEY_LEN};

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;

/// A client's `Sec-WebSocket-Key`: base64 of a 16-byte nonce, kept on the stack.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct ClientKey([u8; KEY_LEN]);

impl ClientKey {
    /// Encodes `nonce` (§4.1: "a randomly selected 16-byte value that has been base64-encoded").
    /// The caller supplies the randomness; a fresh nonce per connection.
    pub fn from_nonce(nonce: [u8; 16]) -> ClientKey {
        let mut out = [0u8; KEY_LEN];
        let written = STANDARD
            .encode_slice(nonce, &mut out)
            .expect("base64 of 16 bytes is exactly 24 bytes");
        debug_assert_eq!(written, KEY_LEN);
        ClientKey(out)
    }

    /// The key as sent in the header.
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).expect("base64 output is ASCII")
    }

    /// The `Sec-WebSocket-Accept` a correct server answers with.
    pub fn expected_accept(&self) -> AcceptKey {
        AcceptKey::from_key(&self.0)
    }
}

impl std::fmt::Debug for ClientKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("ClientKey").field(&self.as_str()).finish()
    }
}

/// Every way the client half can fail: refusing to build a request, or failing the connection
/// on the server's response (§4.1: "the client MUST _Fail the WebSocket Connection_").
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
pub enum ClientHandshakeError {
    /// A host that is empty or holds a space or control byte.
    #[error("host must be non-empty visible ASCII")]
    InvalidHost,
    /// A path that does not start with `/` or holds a space or control byte.
    #[error("path must start with '/' and be visible ASCII")]
    InvalidPath,
    /// A subprotocol that is not a token.
    #[error("subprotocol must be a token")]
    InvalidProtocol,
    /// The response head is not valid HTTP/1.1 syntax.
    #[error("malformed response: {0:?}")]
    Malformed(MalformedKind),
    /// The response head did not end within the byte limit.
    #[error("response headers over {limit} bytes")]
    HeadTooLarge {
        /// The configured limit, in bytes.
        limit: usize,
    },
    /// More response header fields than the count limit.
    #[error("more than {limit} response headers")]
    TooManyHeaders {
        /// The configured limit, in header fields.
        limit: usize,
    },
    /// A status other than 101 (§4.1: "If the status code received from the server is not
    /// 101, the client handles the response per HTTP \[RFC2616\] procedures").
    #[error("server answered {0}, not 101")]
    UnexpectedStatus(u16),
    /// §4.1: "If the response lacks an |Upgrade| header field or the |Upgrade| header field
    /// contains a value that is not an ASCII case-insensitive match for the value "websocket",
    /// the client MUST _Fail the WebSocket Connection_."
    #[error("response lacks Upgrade: websocket")]
    NotWebSocketUpgrade,
    /// §4.1: "If the response lacks a |Connection| header field or the |Connection| header
    /// field doesn't contain a token that is an ASCII case-insensitive match for the value
    /// "Upgrade", the client MUST _Fail the WebSocket Connection_."
    #[error("response Connection header lacks upgrade")]
    ConnectionNotUpgrade,
    /// No `Sec-WebSocket-Accept` header.
    #[error("response lacks Sec-WebSocket-Accept")]
    MissingAccept,
    /// §4.1: "... or the |Sec-WebSocket-Accept| contains a value other than the base64-encoded
    /// SHA-1 of the concatenation of the |Sec-WebSocket-Key| ... with the string
    /// "258EAFA5-E914-47DA-95CA-C5AB0DC85B11" but ignoring any leading and trailing whitespace,
    /// the client MUST _Fail the WebSocket Connection_." (Also: more than one such header.)
    #[error("Sec-WebSocket-Accept does not match the key")]
    AcceptMismatch,
    /// §4.1: "If the response includes a |Sec-WebSocket-Extensions| header field and this header
    /// field indicates the use of an extension that was not present in the client's handshake
    /// ..., the client MUST _Fail the WebSocket Connection_." We offer none.
    #[error("server selected an extension that was not offered")]
    UnexpectedExtension,
    /// §4.1: "If the response includes a |Sec-WebSocket-Protocol| header field and this header
    /// field indicates the use of a subprotocol that was not present in the client's handshake
    /// ..., the client MUST _Fail the WebSocket Connection_." (Also: a list, or two headers.)
    #[error("server selected a subprotocol that was not offered")]
    UnexpectedProtocol,
}

/// Appends a client opening handshake (§4.1) for `ws://host/path` to `out`. Offers
/// `protocols` in the given order when non-empty; offers no extension. Checks every input
/// before writing, so on `Err` nothing was appended.
pub fn write_client_request<B: BufMut>(
    host: &str,
    path: &str,
    key: &ClientKey,
    protocols: &[&str],
    out: &mut B,
) -> Result<(), ClientHandshakeError> {
    let visible = |s: &str| s.bytes().all(|b| b.is_ascii_graphic());
    if host.is_empty() || !visible(host) {
        return Err(ClientHandshakeError::InvalidHost);
    }
    if !path.starts_with('/') || !visible(path) {
        return Err(ClientHandshakeError::InvalidPath);
    }
    if !protocols.iter().all(|p| is_token(p.as_bytes())) {
        return Err(ClientHandshakeError::InvalidProtocol);
    }
    // §4.1 point 2: "The method of the request MUST be GET, and the HTTP version MUST be at
    // least 1.1."
    out.put_slice(b"GET ");
    out.put_slice(path.as_bytes());
    out.put_slice(b" HTTP/1.1\r\n");
    put_header(out, "Host", host.as_bytes());
    out.put_slice(b"Upgrade: websocket\r\nConnection: Upgrade\r\n");
    put_header(out, "Sec-WebSocket-Key", &key.0);
    out.put_slice(b"Sec-WebSocket-Version: 13\r\n");
    if let Some((first, rest)) = protocols.split_first() {
        out.put_slice(b"Sec-WebSocket-Protocol: ");
        out.put_slice(first.as_bytes());
        for p in rest {
            out.put_slice(b", ");
            out.put_slice(p.as_bytes());
        }
        out.put_slice(b"\r\n");
    }
    out.put_slice(b"\r\n");
    Ok(())
}

/// What a valid `101` told the client.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerAccepted {
    /// The subprotocol the server selected from the client's offers, if any.
    pub protocol: Option<String>,
}

/// Checks a server's response to one client handshake, fed from a growing buffer.
///
/// Contract: pass the whole buffer received so far on every call, grown at the end, until it
/// returns `Complete` or an error. After `Complete(_, consumed)`, `buf[consumed..]` is already
/// WebSocket frames.
#[derive(Clone, Debug)]
pub struct ResponseValidator {
    /// How far the buffer has been searched for `\r\n\r\n`.
    scanner: HeadScanner,
    /// Byte and header-count limits.
    limits: HandshakeLimits,
    /// The accept value a correct server sends for our key.
    expected_accept: AcceptKey,
    /// Subprotocols we offered: the server may select one of these, or none.
    offered_protocols: Vec<String>,
}

impl ResponseValidator {
    /// A validator for the request sent with `key` and `offered_protocols`.
    pub fn new(
        key: &ClientKey,
        offered_protocols: &[&str],
        limits: HandshakeLimits,
    ) -> ResponseValidator {
        ResponseValidator {
            scanner: HeadScanner::new(),
            limits,
            expected_accept: key.expected_accept(),
            offered_protocols: offered_protocols.iter().map(|p| p.to_string()).collect(),
        }
    }

    /// Searches the new bytes for the end of the response head; once found, checks it once.
    /// Consumes nothing when it returns `Partial`; never looks past `limits.max_head_bytes`.
    pub fn feed(&mut self, buf: &[u8]) -> Result<Parse<ServerAccepted>, ClientHandshakeError> {
        let len = match self.scanner.scan(buf, self.limits.max_head_bytes) {
            ScanStatus::Partial => return Ok(Parse::Partial),
            ScanStatus::TooLarge => {
                return Err(ClientHandshakeError::HeadTooLarge {
                    limit: self.limits.max_head_bytes,
                })
            }
            ScanStatus::Complete(len) => len,
        };
        self.check(&buf[..len]).map(|a| Parse::Complete(a, len))
    }

    fn check(&self, head: &[u8]) -> Result<ServerAccepted, ClientHandshakeError> {
        use ClientHandshakeError as E;
        let mut slots = Vec::with_capacity(self.limits.max_headers);
        let mut resp = httparse::Response::new(&mut []);
        let slots = &mut slots.spare_capacity_mut()[..self.limits.max_headers];
        match httparse::ParserConfig::default()
            .parse_response_with_uninit_headers(&mut resp, head, slots)
        {
            Ok(httparse::Status::Complete(n)) if n == head.len() => {}
            Ok(_) => return Err(E::Malformed(MalformedKind::LineEnding)),
            Err(httparse::Error::TooManyHeaders) => {
                return Err(E::TooManyHeaders {
                    limit: self.limits.max_headers,
                })
            }
            Err(httparse::Error::HeaderName) => {
                return Err(E::Malformed(MalformedKind::HeaderName))
            }
            Err(httparse::Error::HeaderValue) => {
                return Err(E::Malformed(MalformedKind::HeaderValue))
            }
            Err(httparse::Error::NewLine) => return Err(E::Malformed(MalformedKind::LineEnding)),
            Err(httparse::Error::Version) => return Err(E::Malformed(MalformedKind::Version)),
            Err(httparse::Error::Status | httparse::Error::Token) => {
                return Err(E::Malformed(MalformedKind::StatusLine))
            }
        }
        // §4.2.2 step 5: "A Status-Line with a 101 response code as per RFC 2616".
        match (resp.version, resp.code) {
            (Some(1), Some(101)) => {}
            (Some(1), Some(code)) => return Err(E::UnexpectedStatus(code)),
            _ => return Err(E::Malformed(MalformedKind::StatusLine)),
        }
        let all = |name: &'static str| {
            resp.headers
                .iter()
                .filter(move |h| h.name.eq_ignore_ascii_case(name))
                .map(|h| trim_ows(h.value))
        };
        if !all("upgrade").any(|v| v.eq_ignore_ascii_case(b"websocket")) {
            return Err(E::NotWebSocketUpgrade);
        }
        if !all("connection").any(|v| list_contains(v, "upgrade")) {
            return Err(E::ConnectionNotUpgrade);
        }
        let mut accepts = all("sec-websocket-accept");
        match (accepts.next(), accepts.next()) {
            (None, _) => return Err(E::MissingAccept),
            (Some(v), None) if v == self.expected_accept.as_bytes() => {}
            _ => return Err(E::AcceptMismatch),
        }
        if all("sec-websocket-extensions").any(|v| !v.is_empty()) {
            return Err(E::UnexpectedExtension);
        }
        let mut protocols = all("sec-websocket-protocol");
        let protocol = match (protocols.next(), protocols.next()) {
            (None, _) => None,
            (Some(p), None) => {
                let chosen = self
                    .offered_protocols
                    .iter()
                    .find(|offered| offered.as_bytes() == p)
                    .ok_or(E::UnexpectedProtocol)?;
                Some(chosen.clone())
            }
            (Some(_), Some(_)) => return Err(E::UnexpectedProtocol),
        };
        Ok(ServerAccepted { protocol })
    }
}
