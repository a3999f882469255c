//! A minimal client-side opening handshake (RFC 6455 §4.1), sans-IO.
//!
//! Owns: writing the upgrade request and checking the server's response (status 101, `Upgrade`,
//! `Connection`, `Sec-WebSocket-Accept`). Never does I/O and never negotiates extensions or
//! subprotocols. Kept apart from the rest of the load tool on purpose: when `proto::handshake`
//! grows a client side, this file is the only one to replace.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use sha1::{Digest, Sha1};

/// §1.3: the GUID concatenated with the key before hashing.
pub const WEBSOCKET_GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// The longest response head we accept; a server sending more before `\r\n\r\n` is refused.
pub const MAX_RESPONSE_HEAD: usize = 8 * 1024;

/// Headers the response may carry at most.
const MAX_RESPONSE_HEADERS: usize = 32;

/// Every way the server's answer to the upgrade request can be wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UpgradeError {
    /// The response head is not valid HTTP/1.1.
    #[error("malformed HTTP response: {0}")]
    Malformed(httparse::Error),
    /// The response head exceeds [`MAX_RESPONSE_HEAD`] bytes.
    #[error("response head longer than {MAX_RESPONSE_HEAD} bytes")]
    HeadTooLong,
    /// §4.1: "If the status code received from the server is not 101, the client handles the
    /// response per HTTP procedures."
    #[error("status {0} instead of 101")]
    Status(u16),
    /// §4.1: "If the response lacks an |Upgrade| header field or the |Upgrade| header field
    /// contains a value that is not an ASCII case-insensitive match for the value "websocket",
    /// the client MUST _Fail the WebSocket Connection_."
    #[error("missing or wrong Upgrade header")]
    Upgrade,
    /// §4.1: the same for a `Connection` header that is not "Upgrade".
    #[error("missing or wrong Connection header")]
    Connection,
    /// §4.1: "If the response lacks a |Sec-WebSocket-Accept| header field or the
    /// |Sec-WebSocket-Accept| contains a value other than the base64-encoded SHA-1 of the
    /// concatenation of the |Sec-WebSocket-Key| ... the client MUST _Fail the WebSocket
    /// Connection_."
    #[error("missing or wrong Sec-WebSocket-Accept")]
    Accept,
    /// §4.1: an extension or subprotocol the client did not ask for.
    #[error("server selected an extension or subprotocol the client did not request")]
    Unrequested,
    /// The server closed the connection before the response head was complete.
    #[error("connection closed during the handshake")]
    Eof,
}

/// `base64(SHA-1(key ++ GUID))`, the value of `Sec-WebSocket-Accept` (§4.2.2).
pub fn accept_key(key: &str) -> String {
    let mut sha = Sha1::new();
    sha.update(key.as_bytes());
    sha.update(WEBSOCKET_GUID.as_bytes());
    BASE64.encode(sha.finalize())
}

/// A `Sec-WebSocket-Key` from 16 bytes (§4.1: "a randomly selected 16-byte value that has been
/// base64-encoded"); the caller supplies the bytes so this stays deterministic and testable.
pub fn client_key(nonce: [u8; 16]) -> String {
    BASE64.encode(nonce)
}

/// Appends the upgrade request for `path` on `host` (the `host[:port]` of the URL) to `out`.
pub fn write_request(out: &mut Vec<u8>, host: &str, path: &str, key: &str) {
    // §4.1: "The method of the request MUST be GET, and the HTTP version MUST be at least 1.1."
    out.extend_from_slice(b"GET ");
    out.extend_from_slice(path.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\nHost: ");
    out.extend_from_slice(host.as_bytes());
    out.extend_from_slice(b"\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ");
    out.extend_from_slice(key.as_bytes());
    // §4.1: "The request MUST include a header field with the name |Sec-WebSocket-Version|. The
    // value of this header field MUST be 13."
    out.extend_from_slice(b"\r\nSec-WebSocket-Version: 13\r\n\r\n");
}

/// Checks the response at the front of `buf`.
///
/// Returns `Ok(None)` when the head is not complete yet (nothing consumed), and `Ok(Some(n))`
/// when the upgrade succeeded and the head took `n` bytes: anything after them is already
/// WebSocket frames.
pub fn check_response(buf: &[u8], key: &str) -> Result<Option<usize>, UpgradeError> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_RESPONSE_HEADERS];
    let mut response = httparse::Response::new(&mut headers);
    let head_len = match response.parse(buf).map_err(UpgradeError::Malformed)? {
        httparse::Status::Complete(n) => n,
        httparse::Status::Partial if buf.len() >= MAX_RESPONSE_HEAD => {
            return Err(UpgradeError::HeadTooLong)
        }
        httparse::Status::Partial => return Ok(None),
    };
    if head_len > MAX_RESPONSE_HEAD {
        return Err(UpgradeError::HeadTooLong);
    }
    let status = response.code.unwrap_or(0);
    if status != 101 {
        return Err(UpgradeError::Status(status));
    }
    let header = |name: &str| {
        response
            .headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| h.value)
    };
    let upgrade_ok = header("upgrade").is_some_and(|v| v.eq_ignore_ascii_case(b"websocket"));
    if !upgrade_ok {
        return Err(UpgradeError::Upgrade);
    }
    // The Connection header is a token list; "Upgrade" must be one of its tokens.
    let connection_ok = header("connection").is_some_and(|v| {
        v.split(|&b| b == b',')
            .any(|token| token.trim_ascii().eq_ignore_ascii_case(b"upgrade"))
    });
    if !connection_ok {
        return Err(UpgradeError::Connection);
    }
    let expected = accept_key(key);
    if header("sec-websocket-accept").map(<[u8]>::trim_ascii) != Some(expected.as_bytes()) {
        return Err(UpgradeError::Accept);
    }
    // §4.1: "If the response includes a |Sec-WebSocket-Extensions| header field and this header
    // field indicates the use of an extension that was not present in the client's handshake ...
    // the client MUST _Fail the WebSocket Connection_." (Likewise for a subprotocol.)
    if header("sec-websocket-extensions").is_some() || header("sec-websocket-protocol").is_some() {
        return Err(UpgradeError::Unrequested);
    }
    Ok(Some(head_len))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// §1.3's example: key "dGhlIHNhbXBsZSBub25jZQ==" gives "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=".
    const RFC_KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";
    const RFC_ACCEPT: &str = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

    fn response(extra: &str) -> Vec<u8> {
        format!("HTTP/1.1 101 Switching Protocols\r\n{extra}\r\n").into_bytes()
    }

    fn good_headers() -> String {
        format!(
            "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {RFC_ACCEPT}\r\n"
        )
    }

    #[test]
    fn the_accept_key_matches_the_rfc_example() {
        assert_eq!(accept_key(RFC_KEY), RFC_ACCEPT);
    }

    #[test]
    fn the_client_key_is_16_bytes_in_base64() {
        assert_eq!(client_key(*b"the sample nonce"), RFC_KEY);
    }

    #[test]
    fn the_request_is_a_get_with_version_13() {
        let mut out = Vec::new();
        write_request(&mut out, "127.0.0.1:9001", "/echo", RFC_KEY);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "GET /echo HTTP/1.1\r\nHost: 127.0.0.1:9001\r\nUpgrade: websocket\r\n\
             Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
             Sec-WebSocket-Version: 13\r\n\r\n"
        );
    }

    #[test]
    fn a_correct_101_is_accepted_and_trailing_frames_are_left_alone() {
        let mut wire = response(&good_headers());
        let head = wire.len();
        wire.extend_from_slice(&[0x81, 0x00]);
        assert_eq!(check_response(&wire, RFC_KEY), Ok(Some(head)));
    }

    #[test]
    fn header_names_and_tokens_are_case_insensitive() {
        let wire = response(&format!(
            "upgrade: WebSocket\r\nconnection: keep-alive, upgrade\r\nsec-websocket-accept: {RFC_ACCEPT}\r\n"
        ));
        assert_eq!(check_response(&wire, RFC_KEY), Ok(Some(wire.len())));
    }

    #[test]
    fn a_partial_head_consumes_nothing() {
        let wire = response(&good_headers());
        for cut in 0..wire.len() {
            assert_eq!(check_response(&wire[..cut], RFC_KEY), Ok(None), "cut {cut}");
        }
    }

    #[test]
    fn a_status_other_than_101_fails() {
        let wire = b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n";
        assert_eq!(
            check_response(wire, RFC_KEY),
            Err(UpgradeError::Status(404))
        );
    }

    #[test]
    fn a_wrong_accept_value_fails() {
        let wire =
            response("Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: AAAA\r\n");
        assert_eq!(check_response(&wire, RFC_KEY), Err(UpgradeError::Accept));
    }

    #[test]
    fn missing_upgrade_or_connection_headers_fail() {
        let wire = response(&format!(
            "Connection: Upgrade\r\nSec-WebSocket-Accept: {RFC_ACCEPT}\r\n"
        ));
        assert_eq!(check_response(&wire, RFC_KEY), Err(UpgradeError::Upgrade));
        let wire = response(&format!(
            "Upgrade: websocket\r\nSec-WebSocket-Accept: {RFC_ACCEPT}\r\n"
        ));
        assert_eq!(
            check_response(&wire, RFC_KEY),
            Err(UpgradeError::Connection)
        );
    }

    #[test]
    fn an_unrequested_extension_fails() {
        let wire = response(&format!(
            "{}Sec-WebSocket-Extensions: permessage-deflate\r\n",
            good_headers()
        ));
        assert_eq!(
            check_response(&wire, RFC_KEY),
            Err(UpgradeError::Unrequested)
        );
    }

    #[test]
    fn an_endless_head_is_refused_at_the_limit() {
        let mut wire = b"HTTP/1.1 101 Switching Protocols\r\nX-Filler: ".to_vec();
        wire.resize(MAX_RESPONSE_HEAD, b'a');
        assert_eq!(
            check_response(&wire, RFC_KEY),
            Err(UpgradeError::HeadTooLong)
        );
        assert_eq!(
            check_response(&wire[..MAX_RESPONSE_HEAD - 1], RFC_KEY),
            Ok(None)
        );
    }
}
