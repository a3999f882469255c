//! Every way a client's opening handshake can fail, one variant each, with the HTTP status and
//! the one-line reason the server answers with.
//!
//! Owns the mapping violation → (status, reason, extra headers). Never formats: reasons are
//! `&'static str`, so rendering an error response allocates nothing beyond the output buffer.

use thiserror::Error;

/// Which part of a request `httparse` (or our CRLF rule) refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MalformedKind {
    /// The method or request target is not a valid token / URI.
    RequestLine,
    /// The version is not `HTTP/<digit>.<digit>`.
    Version,
    /// A header name has a byte outside `tchar`.
    HeaderName,
    /// A header value has a control byte.
    HeaderValue,
    /// A line ends in a bare `\n` (we require CRLF) or with a stray byte.
    LineEnding,
    /// A response's status line is not `HTTP/1.1 <3 digits> <reason>` (client side only).
    StatusLine,
}

/// A failed opening handshake (server side), and the response it earns.
///
/// The driver renders it with [`HandshakeError::render_response`] and closes the connection.
/// `NotFound` is never produced here: routing belongs to the driver, which uses the variant to
/// render its own 404.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
pub enum HandshakeError {
    /// The head is not valid HTTP/1.1 syntax.
    #[error("{}", self.reason())]
    Malformed(MalformedKind),
    /// The head did not end within the byte limit.
    #[error("request headers over {limit} bytes")]
    HeadTooLarge {
        /// The configured limit, in bytes.
        limit: usize,
    },
    /// More header fields than the count limit.
    #[error("more than {limit} request headers")]
    TooManyHeaders {
        /// The configured limit, in header fields.
        limit: usize,
    },
    /// `HTTP/x.y` other than 1.1 (§4.2.1: "An HTTP/1.1 or higher GET request").
    #[error("{}", self.reason())]
    UnsupportedHttpVersion,
    /// A method other than GET or HEAD. §4.2.1: "The method of the request MUST be GET"; every
    /// path also answers HEAD as it answers GET, without the body (RFC 9110 §9.3.2).
    #[error("{}", self.reason())]
    MethodNotAllowed,
    /// No endpoint at this path; produced by the driver's router.
    #[error("{}", self.reason())]
    NotFound,
    /// §4.2.1: "A |Host| header field containing the server's authority."
    #[error("{}", self.reason())]
    MissingHost,
    /// RFC 7230 §5.4: "A server MUST respond with a 400 (Bad Request) status code to any
    /// HTTP/1.1 request message that ... contains more than one Host header field".
    #[error("{}", self.reason())]
    DuplicateHost,
    /// No `Upgrade` header listing `websocket` (§4.2.1: "An |Upgrade| header field containing
    /// the value "websocket", treated as an ASCII case-insensitive value"): a plain HTTP request
    /// on a WebSocket path.
    #[error("{}", self.reason())]
    NotWebSocketUpgrade,
    /// §4.2.1: "A |Connection| header field that includes the token "Upgrade", treated as an
    /// ASCII case-insensitive value."
    #[error("{}", self.reason())]
    ConnectionNotUpgrade,
    /// No `Sec-WebSocket-Version` header.
    #[error("{}", self.reason())]
    MissingVersion,
    /// §4.2.1: "A |Sec-WebSocket-Version| header field, with a value of 13."
    #[error("{}", self.reason())]
    UnsupportedVersion,
    /// No `Sec-WebSocket-Key` header.
    #[error("{}", self.reason())]
    MissingKey,
    /// More than one `Sec-WebSocket-Key` header.
    #[error("{}", self.reason())]
    DuplicateKey,
    /// §4.2.1: "A |Sec-WebSocket-Key| header field with a base64-encoded value that, when
    /// decoded, is 16 bytes in length."
    #[error("{}", self.reason())]
    BadKey,
    /// A `Sec-WebSocket-Protocol` element that is not a token (§4.1: "elements that comprise
    /// this value MUST be non-empty strings with characters in the range U+0021 to U+007E not
    /// including separator characters").
    #[error("{}", self.reason())]
    BadProtocolHeader,
    /// A `Sec-WebSocket-Extensions` value outside the §9.1 grammar.
    #[error("{}", self.reason())]
    BadExtensionHeader,
    /// A `HEAD` carrying a valid upgrade: answered as a GET would be everywhere else, but a HEAD
    /// cannot switch protocols (§4.2.1 point 1: the handshake is a GET).
    #[error("{}", self.reason())]
    HeadUpgrade,
    /// A `Sec-WebSocket-Protocol` offer carrying a token (`bearer.<jwt>`) but no subprotocol the
    /// server speaks: the token entry is never selected, and a 101 selecting nothing is failed
    /// by browsers. Produced by the driver, which owns the token convention.
    #[error("{}", self.reason())]
    TokenProtocolAlone,
}

impl HandshakeError {
    /// The HTTP status this violation earns.
    pub fn status(self) -> u16 {
        use HandshakeError::*;
        match self {
            Malformed(_) | MissingHost | DuplicateHost | ConnectionNotUpgrade | MissingKey
            | DuplicateKey | BadKey | BadProtocolHeader | BadExtensionHeader | HeadUpgrade
            | TokenProtocolAlone => 400,
            NotFound => 404,
            MethodNotAllowed => 405,
            // §4.4: "send an appropriate HTTP error code (such as 426 Upgrade Required) and a
            // |Sec-WebSocket-Version| header field indicating the version(s) the server is
            // capable of understanding."
            NotWebSocketUpgrade | MissingVersion | UnsupportedVersion => 426,
            HeadTooLarge { .. } | TooManyHeaders { .. } => 431,
            UnsupportedHttpVersion => 505,
        }
    }

    /// The one-line reason sent as the response body.
    pub fn reason(self) -> &'static str {
        use HandshakeError::*;
        match self {
            Malformed(MalformedKind::RequestLine) => "malformed request line",
            Malformed(MalformedKind::Version) => "malformed HTTP version",
            Malformed(MalformedKind::HeaderName) => "malformed header name",
            Malformed(MalformedKind::HeaderValue) => "malformed header value",
            Malformed(MalformedKind::LineEnding) => "malformed line ending (expected CRLF)",
            Malformed(MalformedKind::StatusLine) => "malformed status line",
            HeadTooLarge { .. } => "request headers too large",
            TooManyHeaders { .. } => "too many request headers",
            UnsupportedHttpVersion => "unsupported HTTP version (expected HTTP/1.1)",
            MethodNotAllowed => "method not allowed (expected GET or HEAD)",
            NotFound => "not found",
            MissingHost => "missing Host",
            DuplicateHost => "more than one Host header",
            NotWebSocketUpgrade => "not a WebSocket upgrade (expected Upgrade: websocket)",
            ConnectionNotUpgrade => "Connection header must include upgrade",
            MissingVersion => "missing Sec-WebSocket-Version",
            UnsupportedVersion => "unsupported Sec-WebSocket-Version (expected 13)",
            MissingKey => "missing Sec-WebSocket-Key",
            DuplicateKey => "more than one Sec-WebSocket-Key header",
            BadKey => "Sec-WebSocket-Key must be base64 of 16 bytes",
            BadProtocolHeader => "malformed Sec-WebSocket-Protocol",
            BadExtensionHeader => "malformed Sec-WebSocket-Extensions",
            HeadUpgrade => "a WebSocket upgrade must be a GET, not a HEAD",
            TokenProtocolAlone => {
                "a bearer. entry in Sec-WebSocket-Protocol needs a subprotocol this server speaks \
                 beside it (on /ws: ringcast.v1)"
            }
        }
    }

    /// Headers this status requires beyond the common ones, each a complete `Name: value` line
    /// without its CRLF.
    pub fn extra_headers(self) -> &'static [&'static str] {
        match self.status() {
            // RFC 7231 §6.5.5: "The origin server MUST generate an Allow header field in a 405
            // response containing a list of the target resource's currently supported methods."
            405 => &["Allow: GET, HEAD"],
            // §4.4, quoted on `status`.
            426 => &["Sec-WebSocket-Version: 13"],
            _ => &[],
        }
    }

    /// Renders the complete error response (status line, `Connection: close`, `Content-Type:
    /// text/plain`, `Content-Length`, [`Self::extra_headers`], and the reason plus `\n` as the
    /// body) at the end of `out`.
    pub fn render_response<B: bytes::BufMut>(self, out: &mut B) {
        super::response::render_error(self.status(), self.extra_headers(), self.reason(), out);
    }
}
