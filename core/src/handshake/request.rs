//! Parsing an HTTP/1.1 request head, incrementally, into an owned [`Request`].
//!
//! Owns: the [`RequestParser`] state between reads, the mapping of `httparse` failures to
//! [`HandshakeError`], and everything later features read from a request (path, query
//! parameters, Host, Origin, Authorization, X-Forwarded-For, offered subprotocols and
//! extensions, any header by name), parsed once.
//!
//! Never re-parses: each read only extends the [`HeadScanner`]'s search; `httparse` runs once,
//! on the complete head. Never looks past the byte limit. Allocates only when a head is complete
//! (one copy of the header bytes, the header index, the offers), never per read.

use std::borrow::Cow;

use super::error::{HandshakeError, MalformedKind};
use super::scan::{HeadScanner, ScanStatus};
use super::upgrade::{parse_extensions, ExtensionOffer};
use super::{is_token, list_elements, HandshakeLimits, Parse};

/// A byte range in [`Request::fields`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Span {
    start: usize,
    end: usize,
}

/// One header field: where its name and value sit in [`Request::fields`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Field {
    name: Span,
    value: Span,
}

/// A parsed request head. Owns its bytes, so the read buffer can be reused at once.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    /// The method as sent (a token; case-sensitive, RFC 7231 §4.1).
    method: String,
    /// The request target as sent (origin-form `/path?query` from browsers).
    target: String,
    /// Where the path ends in `target`: the first `?`, or `target.len()`.
    path_end: usize,
    /// `y` of `HTTP/1.y`: `httparse` accepts only 1.0 and 1.1.
    minor_version: u8,
    /// Header names and values, concatenated: one allocation for all of them.
    fields: Vec<u8>,
    /// Every header in arrival order; duplicates kept (the handshake refuses some of them).
    index: Vec<Field>,
    /// `Sec-WebSocket-Protocol` elements from every such header, in the client's order.
    protocols: Vec<String>,
    /// `Sec-WebSocket-Extensions` offers from every such header, in the client's order.
    extensions: Vec<ExtensionOffer>,
}

impl Request {
    /// Parses a complete head (`head` ends with its `\r\n\r\n`). [`RequestParser`] calls this
    /// once the terminator has been found; tests and fuzzers may call it directly.
    pub fn parse_head(head: &[u8], limits: &HandshakeLimits) -> Result<Request, HandshakeError> {
        // RFC 7230 §3.5 lets a recipient accept a bare LF as a line terminator; we do not, so
        // the scanner's `\r\n\r\n` and `httparse`'s idea of the end of the head always agree.
        if head
            .iter()
            .enumerate()
            .any(|(i, &b)| b == b'\n' && (i == 0 || head[i - 1] != b'\r'))
        {
            return Err(HandshakeError::Malformed(MalformedKind::LineEnding));
        }
        // One allocation per handshake, left uninitialised: httparse writes only the slots it
        // fills, so a 64-slot limit costs nothing for a 13-header request.
        let mut slots = Vec::with_capacity(limits.max_headers);
        let mut req = httparse::Request::new(&mut []);
        match req
            .parse_with_uninit_headers(head, &mut slots.spare_capacity_mut()[..limits.max_headers])
        {
            Ok(httparse::Status::Complete(len)) if len == head.len() => {}
            // A complete parse that stops elsewhere, or a head `httparse` still finds partial
            // (empty lines before the request line), is not a single well-formed head.
            Ok(_) => return Err(HandshakeError::Malformed(MalformedKind::RequestLine)),
            Err(e) => return Err(map_httparse_error(e, head, limits)),
        }
        let (Some(method), Some(target), Some(minor_version)) = (req.method, req.path, req.version)
        else {
            return Err(HandshakeError::Malformed(MalformedKind::RequestLine));
        };

        let field_bytes: usize = req
            .headers
            .iter()
            .map(|h| h.name.len() + h.value.len())
            .sum();
        let mut fields = Vec::with_capacity(field_bytes);
        let mut index = Vec::with_capacity(req.headers.len());
        let mut protocols = Vec::new();
        let mut extensions = Vec::new();
        for h in req.headers.iter() {
            let name = push_span(&mut fields, h.name.as_bytes());
            let value = push_span(&mut fields, super::trim_ows(h.value));
            index.push(Field { name, value });
            if h.name.eq_ignore_ascii_case("sec-websocket-protocol") {
                for element in list_elements(h.value) {
                    // §4.1: "elements that comprise this value MUST be non-empty strings with
                    // characters in the range U+0021 to U+007E not including separator
                    // characters as defined in [RFC2616]" — that is, tokens.
                    if !is_token(element) {
                        return Err(HandshakeError::BadProtocolHeader);
                    }
                    protocols.push(String::from_utf8_lossy(element).into_owned());
                }
            } else if h.name.eq_ignore_ascii_case("sec-websocket-extensions") {
                parse_extensions(h.value, &mut extensions)
                    .map_err(|_| HandshakeError::BadExtensionHeader)?;
            }
        }
        let path_end = target.find('?').unwrap_or(target.len());
        Ok(Request {
            method: method.to_owned(),
            target: target.to_owned(),
            path_end,
            minor_version,
            fields,
            index,
            protocols,
            extensions,
        })
    }

    /// The method, e.g. `GET`.
    pub fn method(&self) -> &str {
        &self.method
    }

    /// `y` of `HTTP/1.y` (0 or 1).
    pub fn minor_version(&self) -> u8 {
        self.minor_version
    }

    /// The request target as sent, e.g. `/chat?room=1`.
    pub fn target(&self) -> &str {
        &self.target
    }

    /// The target up to the first `?`, not percent-decoded (routing compares it as sent).
    pub fn path(&self) -> &str {
        &self.target[..self.path_end]
    }

    /// The target after the first `?`, if there is one.
    pub fn query(&self) -> Option<&str> {
        self.target.get(self.path_end + 1..)
    }

    /// The value of the first query parameter named `name`, decoded as
    /// `application/x-www-form-urlencoded` (`+` is a space, `%XX` a byte, a `%` not followed
    /// by two hex digits kept as is, invalid UTF-8 replaced by U+FFFD). Names are decoded
    /// before comparison; `?flag` yields `Some("")`. Borrows when nothing needed decoding.
    pub fn query_param(&self, name: &str) -> Option<Cow<'_, str>> {
        self.query()?
            .split('&')
            .map(|pair| pair.split_once('=').unwrap_or((pair, "")))
            .find(|(key, _)| percent_decode(key) == name)
            .map(|(_, value)| percent_decode(value))
    }

    /// The first header named `name` (ASCII case-insensitive), value trimmed of whitespace.
    /// Cost: O(headers).
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.header_all(name).next()
    }

    /// The first header named `name` as text; `None` when absent or not UTF-8.
    pub fn header_str(&self, name: &str) -> Option<&str> {
        self.header(name).and_then(|v| std::str::from_utf8(v).ok())
    }

    /// Every header named `name`, in arrival order.
    pub fn header_all<'a, 'n>(
        &'a self,
        name: &'n str,
    ) -> impl Iterator<Item = &'a [u8]> + use<'a, 'n> {
        self.index
            .iter()
            .filter(move |f| self.bytes(f.name).eq_ignore_ascii_case(name.as_bytes()))
            .map(|f| self.bytes(f.value))
    }

    /// Every header as `(name, value)`, in arrival order.
    pub fn headers(&self) -> impl Iterator<Item = (&[u8], &[u8])> + '_ {
        self.index
            .iter()
            .map(|f| (self.bytes(f.name), self.bytes(f.value)))
    }

    /// How many header fields the request carried.
    pub fn header_count(&self) -> usize {
        self.index.len()
    }

    /// `Host`, the server's authority (first one; the handshake refuses duplicates).
    pub fn host(&self) -> Option<&str> {
        self.header_str("host")
    }

    /// `Origin`, sent by browsers (§4.2.1 point 7; §10.2: servers may refuse unwanted origins).
    pub fn origin(&self) -> Option<&str> {
        self.header_str("origin")
    }

    /// `Authorization`, e.g. `Bearer <token>`.
    pub fn authorization(&self) -> Option<&str> {
        self.header_str("authorization")
    }

    /// The first `X-Forwarded-For` header as sent by a proxy (`client, proxy1, ...`).
    pub fn forwarded_for(&self) -> Option<&str> {
        self.header_str("x-forwarded-for")
    }

    /// Subprotocols offered in `Sec-WebSocket-Protocol` (all such headers, client order).
    pub fn protocols(&self) -> &[String] {
        &self.protocols
    }

    /// Extensions offered in `Sec-WebSocket-Extensions` (all such headers, client order).
    pub fn extensions(&self) -> &[ExtensionOffer] {
        &self.extensions
    }

    fn bytes(&self, span: Span) -> &[u8] {
        &self.fields[span.start..span.end]
    }
}

fn push_span(fields: &mut Vec<u8>, bytes: &[u8]) -> Span {
    let start = fields.len();
    fields.extend_from_slice(bytes);
    Span {
        start,
        end: fields.len(),
    }
}

fn map_httparse_error(e: httparse::Error, head: &[u8], limits: &HandshakeLimits) -> HandshakeError {
    match e {
        httparse::Error::TooManyHeaders => HandshakeError::TooManyHeaders {
            limit: limits.max_headers,
        },
        httparse::Error::Version => classify_version_error(head),
        httparse::Error::HeaderName => HandshakeError::Malformed(MalformedKind::HeaderName),
        httparse::Error::HeaderValue => HandshakeError::Malformed(MalformedKind::HeaderValue),
        httparse::Error::NewLine => HandshakeError::Malformed(MalformedKind::LineEnding),
        httparse::Error::Token | httparse::Error::Status => {
            HandshakeError::Malformed(MalformedKind::RequestLine)
        }
    }
}

/// `httparse` refuses every version but 1.0 and 1.1 with the same error. A request line of
/// three parts ending in a well-formed `HTTP/<digit>.<digit>` names a version we do not speak
/// (505); more parts mean a space inside the target (400); anything else is a malformed version
/// (400).
fn classify_version_error(head: &[u8]) -> HandshakeError {
    let line_end = head
        .windows(2)
        .position(|w| w == b"\r\n")
        .unwrap_or(head.len());
    let line = &head[..line_end];
    if line.split(|&b| b == b' ').count() != 3 {
        return HandshakeError::Malformed(MalformedKind::RequestLine);
    }
    match line.rsplit(|&b| b == b' ').next() {
        Some([b'H', b'T', b'T', b'P', b'/', major, b'.', minor])
            if major.is_ascii_digit() && minor.is_ascii_digit() =>
        {
            HandshakeError::UnsupportedHttpVersion
        }
        _ => HandshakeError::Malformed(MalformedKind::Version),
    }
}

/// Decodes `application/x-www-form-urlencoded` text; see [`Request::query_param`].
fn percent_decode(s: &str) -> Cow<'_, str> {
    if !s.bytes().any(|b| b == b'%' || b == b'+') {
        return Cow::Borrowed(s);
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => match (
                bytes.get(i + 1).and_then(|&b| hex_value(b)),
                bytes.get(i + 2).and_then(|&b| hex_value(b)),
            ) {
                (Some(hi), Some(lo)) => {
                    out.push(hi << 4 | lo);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    Cow::Owned(String::from_utf8_lossy(&out).into_owned())
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Parses a request head that may arrive over several reads.
///
/// Contract: pass the whole buffer received so far on every call, grown at the end, until the
/// parser returns `Complete` or an error; then drop it (or [`RequestParser::reset`] it for the
/// next request on a keep-alive connection).
#[derive(Clone, Debug)]
pub struct RequestParser {
    /// How far the buffer has been searched for `\r\n\r\n`.
    scanner: HeadScanner,
    /// Byte and header-count limits.
    limits: HandshakeLimits,
    /// The request line has been seen to start with a method token and a space. Until then
    /// every call looks at most [`MAX_METHOD_LEN`] + 1 leading bytes, so bytes that cannot be
    /// HTTP (a TLS ClientHello, a binary protocol) are refused at once instead of being buffered
    /// up to the head limit or the handshake timeout.
    method_seen: bool,
}

/// Longest method accepted before the first space (the longest registered HTTP method,
/// `UPDATEREDIRECTREF`, has 17 characters).
pub const MAX_METHOD_LEN: usize = 20;

/// Leading empty lines skipped before the request line. RFC 7230 §3.5: "a server that is
/// expecting to receive and parse a request-line SHOULD ignore at least one empty line (CRLF)
/// received prior to the request-line."
const MAX_LEADING_EMPTY_LINE_BYTES: usize = 4;

/// What the first bytes of a request say about its request line.
#[derive(Debug, PartialEq, Eq)]
enum MethodCheck {
    /// A method token followed by a space.
    Seen,
    /// Too few bytes to tell yet.
    Unknown,
    /// Not an HTTP request line.
    NotHttp,
}

/// Checks that `buf` starts (after at most [`MAX_LEADING_EMPTY_LINE_BYTES`] of CR/LF) with a
/// method token of at most [`MAX_METHOD_LEN`] bytes and a space.
fn check_method(buf: &[u8]) -> MethodCheck {
    let skip = buf
        .iter()
        .take(MAX_LEADING_EMPTY_LINE_BYTES)
        .take_while(|&&b| b == b'\r' || b == b'\n')
        .count();
    for (i, &b) in buf[skip..].iter().enumerate().take(MAX_METHOD_LEN + 1) {
        match b {
            b' ' if i > 0 => return MethodCheck::Seen,
            b if i < MAX_METHOD_LEN && super::is_tchar(b) => {}
            _ => return MethodCheck::NotHttp,
        }
    }
    MethodCheck::Unknown
}

impl RequestParser {
    /// A parser enforcing `limits`.
    pub fn new(limits: HandshakeLimits) -> RequestParser {
        RequestParser {
            scanner: HeadScanner::new(),
            limits,
            method_seen: false,
        }
    }

    /// Searches the new bytes for the end of the head; once found, parses the head once.
    /// Consumes nothing when it returns `Partial`. Never examines more than
    /// `limits.max_head_bytes` bytes: at that many bytes without a complete head it fails with
    /// [`HandshakeError::HeadTooLarge`] (431), so the caller never buffers more.
    pub fn parse(&mut self, buf: &[u8]) -> Result<Parse<Request>, HandshakeError> {
        if !self.method_seen {
            match check_method(buf) {
                MethodCheck::Seen => self.method_seen = true,
                MethodCheck::Unknown => {}
                MethodCheck::NotHttp => {
                    return Err(HandshakeError::Malformed(MalformedKind::RequestLine))
                }
            }
        }
        match self.scanner.scan(buf, self.limits.max_head_bytes) {
            ScanStatus::Partial => Ok(Parse::Partial),
            ScanStatus::TooLarge => Err(HandshakeError::HeadTooLarge {
                limit: self.limits.max_head_bytes,
            }),
            ScanStatus::Complete(len) => {
                Request::parse_head(&buf[..len], &self.limits).map(|r| Parse::Complete(r, len))
            }
        }
    }

    /// How many leading bytes have been searched for the end of the head so far.
    pub fn scanned(&self) -> usize {
        self.scanner.scanned()
    }

    /// Total bytes examined by the scanner over every call (at most `len + 3 × calls`).
    pub fn examined(&self) -> usize {
        self.scanner.examined()
    }

    /// Forgets the previous head, keeping the limits.
    pub fn reset(&mut self) {
        self.scanner = HeadScanner::new();
        self.method_seen = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(head: &str) -> Request {
        Request::parse_head(head.as_bytes(), &HandshakeLimits::default()).unwrap()
    }

    #[test]
    fn bytes_that_cannot_start_a_request_line_are_refused_before_the_head_ends() {
        let mut parser = RequestParser::new(HandshakeLimits::default());
        // A TLS ClientHello: refused on its first byte, with no line end in sight.
        assert_eq!(
            parser.parse(b"\x16\x03\x01\x02\x00"),
            Err(HandshakeError::Malformed(MalformedKind::RequestLine))
        );
        for not_http in [
            &b" GET / HTTP/1.1"[..],
            b"GE(T",
            b"\r\n\r\n\r\nGET",
            b"ABCDEFGHIJKLMNOPQRSTU",
        ] {
            let mut parser = RequestParser::new(HandshakeLimits::default());
            assert_eq!(
                parser.parse(not_http),
                Err(HandshakeError::Malformed(MalformedKind::RequestLine)),
                "{:?}",
                String::from_utf8_lossy(not_http)
            );
        }
        // A method still arriving, an empty line before it, a long registered method: fine.
        for partial in [&b"GE"[..], b"\r\nGET / HT", b"UPDATEREDIRECTREF /x"] {
            let mut parser = RequestParser::new(HandshakeLimits::default());
            assert_eq!(parser.parse(partial), Ok(Parse::Partial), "{partial:?}");
        }
        let mut parser = RequestParser::new(HandshakeLimits::default());
        let head = b"\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n";
        assert!(matches!(parser.parse(head), Ok(Parse::Complete(_, n)) if n == head.len()));
    }

    #[test]
    fn path_and_query_are_split_at_the_first_question_mark() {
        let r = parse("GET /chat/room?token=a?b&x=1 HTTP/1.1\r\nHost: h\r\n\r\n");
        assert_eq!(r.path(), "/chat/room");
        assert_eq!(r.query(), Some("token=a?b&x=1"));
        assert_eq!(r.query_param("token").as_deref(), Some("a?b"));
        assert_eq!(r.query_param("x").as_deref(), Some("1"));
        assert_eq!(r.query_param("missing"), None);
    }

    #[test]
    fn a_target_without_query_has_no_query_params() {
        let r = parse("GET /chat HTTP/1.1\r\n\r\n");
        assert_eq!(r.path(), "/chat");
        assert_eq!(r.query(), None);
        assert_eq!(r.query_param("token"), None);
    }

    #[test]
    fn query_params_are_percent_and_plus_decoded() {
        let r =
            parse("GET /?token=ab%2Bc%3D%3D&na%6De=J%C3%BCrgen+K&flag&bad=%zz%4 HTTP/1.1\r\n\r\n");
        assert_eq!(r.query_param("token").as_deref(), Some("ab+c=="));
        assert_eq!(r.query_param("name").as_deref(), Some("Jürgen K"));
        assert_eq!(r.query_param("flag").as_deref(), Some(""));
        assert_eq!(r.query_param("bad").as_deref(), Some("%zz%4"));
    }

    #[test]
    fn a_query_param_decoding_to_invalid_utf8_gets_replacement_characters() {
        let r = parse("GET /?t=%FF HTTP/1.1\r\n\r\n");
        assert_eq!(r.query_param("t").as_deref(), Some("\u{FFFD}"));
    }

    #[test]
    fn the_first_of_repeated_query_params_wins() {
        let r = parse("GET /?a=1&a=2 HTTP/1.1\r\n\r\n");
        assert_eq!(r.query_param("a").as_deref(), Some("1"));
    }

    #[test]
    fn headers_are_looked_up_case_insensitively_and_trimmed() {
        let r = parse(
            "GET / HTTP/1.1\r\nHOST: example.com\r\nx-forwarded-for:  10.0.0.1, 10.0.0.2 \r\n\
             Origin: https://a.example\r\nAuthorization: Bearer t0k\r\nX-Custom: 1\r\nx-custom: 2\r\n\r\n",
        );
        assert_eq!(r.host(), Some("example.com"));
        assert_eq!(r.forwarded_for(), Some("10.0.0.1, 10.0.0.2"));
        assert_eq!(r.origin(), Some("https://a.example"));
        assert_eq!(r.authorization(), Some("Bearer t0k"));
        assert_eq!(r.header("X-CUSTOM"), Some(&b"1"[..]));
        assert_eq!(
            r.header_all("x-custom").collect::<Vec<_>>(),
            [&b"1"[..], &b"2"[..]]
        );
        assert_eq!(r.header_count(), 6);
        assert_eq!(r.header("absent"), None);
    }

    #[test]
    fn a_header_value_that_is_not_utf8_is_bytes_only() {
        let r = Request::parse_head(
            b"GET / HTTP/1.1\r\nX-Bin: \xff\xfe\r\n\r\n",
            &HandshakeLimits::default(),
        )
        .unwrap();
        assert_eq!(r.header("x-bin"), Some(&b"\xff\xfe"[..]));
        assert_eq!(r.header_str("x-bin"), None);
    }

    #[test]
    fn protocols_from_repeated_headers_and_lists_keep_client_order() {
        let r = parse(
            "GET / HTTP/1.1\r\nSec-WebSocket-Protocol: chat, , superchat\r\n\
             Sec-WebSocket-Protocol: v2.json\r\n\r\n",
        );
        assert_eq!(r.protocols(), ["chat", "superchat", "v2.json"]);
    }

    #[test]
    fn a_protocol_that_is_not_a_token_is_refused() {
        let e = Request::parse_head(
            b"GET / HTTP/1.1\r\nSec-WebSocket-Protocol: chat, a/b\r\n\r\n",
            &HandshakeLimits::default(),
        );
        assert_eq!(e, Err(HandshakeError::BadProtocolHeader));
    }

    #[test]
    fn an_http_2_request_line_is_505_and_garbage_version_is_400() {
        let l = HandshakeLimits::default();
        assert_eq!(
            Request::parse_head(b"GET / HTTP/2.0\r\n\r\n", &l),
            Err(HandshakeError::UnsupportedHttpVersion)
        );
        assert_eq!(
            Request::parse_head(b"GET / HTTP/1.2\r\n\r\n", &l),
            Err(HandshakeError::UnsupportedHttpVersion)
        );
        assert_eq!(
            Request::parse_head(b"GET / HTXP/1.1\r\n\r\n", &l),
            Err(HandshakeError::Malformed(MalformedKind::Version))
        );
    }

    #[test]
    fn a_bare_line_feed_anywhere_in_the_head_is_refused() {
        let l = HandshakeLimits::default();
        assert_eq!(
            Request::parse_head(b"GET / HTTP/1.1\nHost: a\r\n\r\n", &l),
            Err(HandshakeError::Malformed(MalformedKind::LineEnding))
        );
        assert_eq!(
            Request::parse_head(b"GET / HTTP/1.1\r\nHost: a\n\r\n\r\n", &l),
            Err(HandshakeError::Malformed(MalformedKind::LineEnding))
        );
    }

    #[test]
    fn an_empty_line_before_the_request_line_is_refused() {
        assert_eq!(
            Request::parse_head(b"\r\n\r\n", &HandshakeLimits::default()),
            Err(HandshakeError::Malformed(MalformedKind::RequestLine))
        );
    }

    #[test]
    fn a_header_name_with_a_space_is_refused() {
        assert_eq!(
            Request::parse_head(
                b"GET / HTTP/1.1\r\nBad Name: 1\r\n\r\n",
                &HandshakeLimits::default()
            ),
            Err(HandshakeError::Malformed(MalformedKind::HeaderName))
        );
    }

    #[test]
    fn a_header_value_with_a_control_byte_is_refused() {
        assert_eq!(
            Request::parse_head(
                b"GET / HTTP/1.1\r\nX: a\x01b\r\n\r\n",
                &HandshakeLimits::default()
            ),
            Err(HandshakeError::Malformed(MalformedKind::HeaderValue))
        );
    }

    #[test]
    fn a_space_in_the_target_is_refused() {
        assert_eq!(
            Request::parse_head(b"GET /a b HTTP/1.1\r\n\r\n", &HandshakeLimits::default()),
            Err(HandshakeError::Malformed(MalformedKind::RequestLine))
        );
    }

    #[test]
    fn a_reset_parser_parses_the_next_head() {
        let mut p = RequestParser::new(HandshakeLimits::default());
        let a = b"GET /a HTTP/1.1\r\n\r\n";
        assert!(matches!(p.parse(a), Ok(Parse::Complete(_, 19))));
        p.reset();
        assert_eq!(p.scanned(), 0);
        let b = b"GET /bb HTTP/1.1\r\n\r\n";
        let Ok(Parse::Complete(r, 20)) = p.parse(b) else {
            panic!("second head not parsed")
        };
        assert_eq!(r.path(), "/bb");
    }
}
