//! Rendering HTTP/1.1 responses into a caller's buffer: the handshake's error responses and the
//! server's plain endpoints (`/healthz`, `/metrics`, a demo page, 401/403/503).
//!
//! Owns the byte layout of every response the server writes before (or instead of) a WebSocket.
//! Never allocates: it appends to the caller's [`BufMut`] (`Vec<u8>` or `BytesMut`), which may
//! grow. Never writes a header that could split a response: names must be tokens and values
//! free of control bytes, checked before the first byte is written.

use bytes::BufMut;
use thiserror::Error;

/// The standard reason phrase for the statuses this server sends (RFC 7231 §6, RFC 6585 §5),
/// `""` for others (RFC 7230 §3.1.2: "A client SHOULD ignore the reason-phrase content").
pub fn reason_phrase(status: u16) -> &'static str {
    match status {
        101 => "Switching Protocols",
        200 => "OK",
        204 => "No Content",
        301 => "Moved Permanently",
        302 => "Found",
        304 => "Not Modified",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        413 => "Payload Too Large",
        426 => "Upgrade Required",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        505 => "HTTP Version Not Supported",
        _ => "",
    }
}

/// Why [`render_response`] refused to write anything.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
pub enum InvalidResponseHeader {
    /// The status is not a three-digit code (RFC 7230 §3.1.2: `status-code = 3DIGIT`).
    #[error("status {0} is not a three-digit code")]
    Status(u16),
    /// A header name that is not a token (RFC 7230 §3.2: `field-name = token`).
    #[error("header name is not a token")]
    Name,
    /// A header value or content type holding CR, LF or another control byte, which would let
    /// it end the header line early (response splitting).
    #[error("header value contains a control byte")]
    Value,
    /// `Content-Length` or `Content-Type` passed as an extra header: the renderer writes them.
    #[error("Content-Length and Content-Type are written by the renderer")]
    Managed,
}

/// Appends a complete response: status line, `Content-Type`, `Content-Length: body.len()`, the
/// `headers` in order, an empty line, then `body`. Adds no `Connection` header: pass
/// `("Connection", "close")` when the connection closes afterwards.
///
/// Checks every input before writing, so on `Err` nothing was appended.
pub fn render_response<B: BufMut>(
    status: u16,
    content_type: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    out: &mut B,
) -> Result<(), InvalidResponseHeader> {
    if !(100..=999).contains(&status) {
        return Err(InvalidResponseHeader::Status(status));
    }
    if !is_field_value(content_type) {
        return Err(InvalidResponseHeader::Value);
    }
    for (name, value) in headers {
        if !super::is_token(name.as_bytes()) {
            return Err(InvalidResponseHeader::Name);
        }
        if name.eq_ignore_ascii_case("content-length") || name.eq_ignore_ascii_case("content-type")
        {
            return Err(InvalidResponseHeader::Managed);
        }
        if !is_field_value(value) {
            return Err(InvalidResponseHeader::Value);
        }
    }
    put_status_line(status, out);
    put_header(out, "Content-Type", content_type.as_bytes());
    put_content_length(out, body.len());
    for (name, value) in headers {
        put_header(out, name, value.as_bytes());
    }
    out.put_slice(b"\r\n");
    out.put_slice(body);
    Ok(())
}

/// The body and headers of every handshake error response; see
/// [`super::HandshakeError::render_response`].
pub(crate) fn render_error<B: BufMut>(
    status: u16,
    extra: &[&'static str],
    reason: &str,
    out: &mut B,
) {
    put_status_line(status, out);
    out.put_slice(b"Connection: close\r\nContent-Type: text/plain\r\n");
    // Body is the reason and a newline.
    put_content_length(out, reason.len() + 1);
    for line in extra {
        out.put_slice(line.as_bytes());
        out.put_slice(b"\r\n");
    }
    out.put_slice(b"\r\n");
    out.put_slice(reason.as_bytes());
    out.put_slice(b"\n");
}

/// `HTTP/1.1 <status> <reason-phrase>\r\n`.
pub(crate) fn put_status_line<B: BufMut>(status: u16, out: &mut B) {
    out.put_slice(b"HTTP/1.1 ");
    put_decimal(out, usize::from(status));
    out.put_u8(b' ');
    out.put_slice(reason_phrase(status).as_bytes());
    out.put_slice(b"\r\n");
}

/// `Name: value\r\n`.
pub(crate) fn put_header<B: BufMut>(out: &mut B, name: &str, value: &[u8]) {
    out.put_slice(name.as_bytes());
    out.put_slice(b": ");
    out.put_slice(value);
    out.put_slice(b"\r\n");
}

fn put_content_length<B: BufMut>(out: &mut B, len: usize) {
    out.put_slice(b"Content-Length: ");
    put_decimal(out, len);
    out.put_slice(b"\r\n");
}

/// Writes `n` in decimal without allocating.
fn put_decimal<B: BufMut>(out: &mut B, mut n: usize) {
    let mut digits = [0u8; 20]; // usize::MAX has 20 decimal digits
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.put_slice(&digits[at..]);
}

/// RFC 7230 §3.2: `field-value = *( field-content / obs-fold )`, visible characters, SP and
/// HTAB; we refuse every other control byte (and obs-fold).
fn is_field_value(v: &str) -> bool {
    v.bytes().all(|b| b == b'\t' || (b >= 0x20 && b != 0x7f))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plain_response_is_rendered_byte_exact() {
        let mut out = Vec::new();
        render_response(
            503,
            "text/plain",
            &[("Retry-After", "5"), ("Connection", "close")],
            b"overloaded\n",
            &mut out,
        )
        .unwrap();
        assert_eq!(
            out,
            b"HTTP/1.1 503 Service Unavailable\r\n\
              Content-Type: text/plain\r\n\
              Content-Length: 11\r\n\
              Retry-After: 5\r\n\
              Connection: close\r\n\
              \r\n\
              overloaded\n"
        );
    }

    #[test]
    fn a_401_carries_www_authenticate_and_an_empty_body_has_length_zero() {
        let mut out = bytes::BytesMut::new();
        render_response(
            401,
            "text/plain",
            &[("WWW-Authenticate", "Bearer realm=\"ringcast\"")],
            b"",
            &mut out,
        )
        .unwrap();
        assert_eq!(
            &out[..],
            b"HTTP/1.1 401 Unauthorized\r\n\
              Content-Type: text/plain\r\n\
              Content-Length: 0\r\n\
              WWW-Authenticate: Bearer realm=\"ringcast\"\r\n\
              \r\n"
        );
    }

    #[test]
    fn a_header_value_with_crlf_is_refused_and_nothing_is_written() {
        let mut out = Vec::new();
        let err = render_response(
            200,
            "text/plain",
            &[("X-A", "1\r\nSet-Cookie: x")],
            b"ok",
            &mut out,
        );
        assert_eq!(err, Err(InvalidResponseHeader::Value));
        assert!(out.is_empty());
    }

    #[test]
    fn a_header_name_with_a_space_or_colon_is_refused() {
        let mut out = Vec::new();
        for name in ["X A", "X:A", ""] {
            assert_eq!(
                render_response(200, "text/plain", &[(name, "1")], b"", &mut out),
                Err(InvalidResponseHeader::Name)
            );
        }
        assert!(out.is_empty());
    }

    #[test]
    fn content_length_and_content_type_cannot_be_passed_twice() {
        let mut out = Vec::new();
        assert_eq!(
            render_response(200, "text/plain", &[("content-length", "1")], b"", &mut out),
            Err(InvalidResponseHeader::Managed)
        );
        assert_eq!(
            render_response(200, "text/plain", &[("Content-Type", "x")], b"", &mut out),
            Err(InvalidResponseHeader::Managed)
        );
    }

    #[test]
    fn a_content_type_with_a_newline_is_refused() {
        let mut out = Vec::new();
        assert_eq!(
            render_response(200, "text/plain\n", &[], b"", &mut out),
            Err(InvalidResponseHeader::Value)
        );
    }

    #[test]
    fn a_status_outside_three_digits_is_refused() {
        let mut out = Vec::new();
        assert_eq!(
            render_response(99, "text/plain", &[], b"", &mut out),
            Err(InvalidResponseHeader::Status(99))
        );
        assert_eq!(
            render_response(1000, "text/plain", &[], b"", &mut out),
            Err(InvalidResponseHeader::Status(1000))
        );
    }

    #[test]
    fn an_unknown_status_gets_an_empty_reason_phrase() {
        let mut out = Vec::new();
        render_response(299, "text/plain", &[], b"", &mut out).unwrap();
        assert!(out.starts_with(b"HTTP/1.1 299 \r\n"));
    }

    #[test]
    fn decimals_are_written_for_every_magnitude() {
        for n in [0usize, 7, 10, 99, 100, 8192, usize::MAX] {
            let mut out = Vec::new();
            put_decimal(&mut out, n);
            assert_eq!(out, n.to_string().as_bytes());
        }
    }
}
