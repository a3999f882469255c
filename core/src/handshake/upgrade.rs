//! Checking a parsed request against RFC 6455 §4.2.1, choosing a subprotocol, and the `101`.
//!
//! Owns: the order of the checks (which decides the status a broken request earns), subprotocol
//! selection, the `Sec-WebSocket-Extensions` grammar, and the bytes of the `101` response.
//! Never routes (the driver only calls [`validate_upgrade`] on its WebSocket paths) and never
//! decides on an extension: offers are parsed and kept on the [`Upgrade`]; the caller negotiates
//! (permessage-deflate: [`crate::deflate::negotiate`]) and passes the answer to
//! [`Upgrade::render_response_with_extensions`].

use bytes::BufMut;

use super::error::HandshakeError;
use super::request::Request;
use super::response::{put_header, put_status_line};
use super::{is_tchar, is_token, is_valid_key, list_contains, AcceptKey, WEBSOCKET_VERSION};

/// What the server offers during the handshake.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UpgradeConfig {
    /// Subprotocols the server speaks, compared exactly (case-sensitive) with the client's
    /// offers. Default: none, so no `Sec-WebSocket-Protocol` is ever sent back. Selection follows
    /// the **client's** order: the first protocol in the client's list that appears here wins
    /// (the client lists its preference first; §4.1: "The |Sec-WebSocket-Protocol| request-header
    /// field can be used to indicate what subprotocols ... the client wishes to speak, ordered by
    /// preference").
    pub protocols: Vec<String>,
}

impl UpgradeConfig {
    /// A config supporting `protocols`.
    pub fn with_protocols<I, S>(protocols: I) -> UpgradeConfig
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        UpgradeConfig {
            protocols: protocols.into_iter().map(Into::into).collect(),
        }
    }
}

/// One offer from `Sec-WebSocket-Extensions`, e.g. `permessage-deflate; client_max_window_bits`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExtensionOffer {
    /// The extension token, as sent.
    pub name: String,
    /// Parameters in order: name, and value when given (quoted values unescaped).
    pub params: Vec<(String, Option<String>)>,
}

impl ExtensionOffer {
    /// The parameter named `name`: `None` when absent, `Some(None)` when given without a value.
    pub fn param(&self, name: &str) -> Option<Option<&str>> {
        self.params
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_deref())
    }
}

/// A `Sec-WebSocket-Extensions` value outside the §9.1 grammar.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BadExtensions;

/// Parses one `Sec-WebSocket-Extensions` value (§9.1) and appends its offers to `out`:
///
/// ```text
/// extension-list = 1#extension
/// extension = extension-token *( ";" extension-param )
/// extension-param = token [ "=" (token | quoted-string) ]
///     ;When using the quoted-string syntax variant, the value
///     ;after quoted-string unescaping MUST conform to the
///     ;'token' ABNF.
/// ```
///
/// Empty list elements are skipped (RFC 7230 §7), so an empty value adds no offer.
pub fn parse_extensions(value: &[u8], out: &mut Vec<ExtensionOffer>) -> Result<(), BadExtensions> {
    let mut c = Cursor { s: value, at: 0 };
    loop {
        c.skip_ows();
        match c.peek() {
            None => return Ok(()),
            Some(b',') => {
                c.at += 1;
                continue;
            }
            Some(_) => {}
        }
        let name = c.token()?;
        let mut params = Vec::new();
        loop {
            c.skip_ows();
            match c.peek() {
                None | Some(b',') => break,
                Some(b';') => c.at += 1,
                Some(_) => return Err(BadExtensions),
            }
            c.skip_ows();
            let param = c.token()?;
            c.skip_ows();
            let value = if c.peek() == Some(b'=') {
                c.at += 1;
                c.skip_ows();
                Some(if c.peek() == Some(b'"') {
                    c.quoted_token()?
                } else {
                    c.token()?
                })
            } else {
                None
            };
            params.push((param, value));
        }
        out.push(ExtensionOffer { name, params });
    }
}

struct Cursor<'a> {
    s: &'a [u8],
    at: usize,
}

impl Cursor<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.at).copied()
    }

    fn skip_ows(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.at += 1;
        }
    }

    fn token(&mut self) -> Result<String, BadExtensions> {
        let start = self.at;
        while self.peek().is_some_and(is_tchar) {
            self.at += 1;
        }
        if start == self.at {
            return Err(BadExtensions);
        }
        Ok(String::from_utf8_lossy(&self.s[start..self.at]).into_owned())
    }

    /// RFC 7230 §3.2.6: `quoted-string = DQUOTE *( qdtext / quoted-pair ) DQUOTE`,
    /// `quoted-pair = "\" ( HTAB / SP / VCHAR / obs-text )`; §9.1 then requires a token.
    fn quoted_token(&mut self) -> Result<String, BadExtensions> {
        self.at += 1; // opening DQUOTE
        let mut value = Vec::new();
        loop {
            match self.peek() {
                None => return Err(BadExtensions),
                Some(b'"') => {
                    self.at += 1;
                    break;
                }
                Some(b'\\') => {
                    value.push(self.s.get(self.at + 1).copied().ok_or(BadExtensions)?);
                    self.at += 2;
                }
                Some(b) => {
                    value.push(b);
                    self.at += 1;
                }
            }
        }
        if !is_token(&value) {
            return Err(BadExtensions);
        }
        Ok(String::from_utf8_lossy(&value).into_owned())
    }
}

/// An accepted opening handshake: what the `101` says and what the connection needs after it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Upgrade {
    /// `Sec-WebSocket-Accept`, computed from the client's key.
    accept: AcceptKey,
    /// The subprotocol chosen from the client's offers, echoed in the `101`.
    protocol: Option<String>,
    /// Extensions the client offered, for the caller to negotiate.
    offered_extensions: Vec<ExtensionOffer>,
}

impl Upgrade {
    /// The `Sec-WebSocket-Accept` value.
    pub fn accept_key(&self) -> &AcceptKey {
        &self.accept
    }

    /// The selected subprotocol, if any.
    pub fn protocol(&self) -> Option<&str> {
        self.protocol.as_deref()
    }

    /// Extensions the client offered.
    pub fn offered_extensions(&self) -> &[ExtensionOffer] {
        &self.offered_extensions
    }

    /// Appends the `101 Switching Protocols` response to `out` (§4.2.2 step 5): `Upgrade:
    /// websocket`, `Connection: Upgrade`, `Sec-WebSocket-Accept`, and `Sec-WebSocket-Protocol`
    /// when one was selected. No `Sec-WebSocket-Extensions`: no extension is accepted.
    pub fn render_response<B: BufMut>(&self, out: &mut B) {
        self.render_response_with_extensions(None, out)
    }

    /// [`Upgrade::render_response`] with the accepted extensions, when there are any, in
    /// `Sec-WebSocket-Extensions` (§9.1; the value comes from the extension's own negotiation,
    /// e.g. `permessage-deflate; server_no_context_takeover`).
    pub fn render_response_with_extensions<B: BufMut>(
        &self,
        extensions: Option<&str>,
        out: &mut B,
    ) {
        put_status_line(101, out);
        // §4.2.2: "An |Upgrade| header field with value "websocket" as per RFC 2616".
        out.put_slice(b"Upgrade: websocket\r\n");
        // §4.2.2: "A |Connection| header field with value "Upgrade"."
        out.put_slice(b"Connection: Upgrade\r\n");
        put_header(out, "Sec-WebSocket-Accept", self.accept.as_bytes());
        if let Some(p) = &self.protocol {
            put_header(out, "Sec-WebSocket-Protocol", p.as_bytes());
        }
        if let Some(e) = extensions {
            put_header(out, "Sec-WebSocket-Extensions", e.as_bytes());
        }
        out.put_slice(b"\r\n");
    }
}

/// Checks `req` against RFC 6455 §4.2.1 and, if it is a valid opening handshake, returns the
/// [`Upgrade`] to answer with. Call it only for paths the driver serves as WebSocket endpoints.
///
/// Checks run in this order, so a request breaking several rules earns the first status:
/// method (405), HTTP version (505), Host (400), `Upgrade: websocket` (426), `Connection:
/// upgrade` (400), `Sec-WebSocket-Version: 13` (426, so clients can retry with 13), then
/// `Sec-WebSocket-Key` (400).
pub fn validate_upgrade(req: &Request, config: &UpgradeConfig) -> Result<Upgrade, HandshakeError> {
    // §4.2.1 point 1: "An HTTP/1.1 or higher GET request".
    if req.method() != "GET" {
        return Err(HandshakeError::MethodNotAllowed);
    }
    validate_upgrade_headers(req, config)
}

/// What a `HEAD` on a WebSocket path earns (RFC 9110 §9.3.2: a server "SHOULD send the same
/// header fields in response to a HEAD request as it would have sent if the request method had
/// been GET"): the refusal a `GET` with the same head would get, or
/// [`HandshakeError::HeadUpgrade`] when that `GET` would have been upgraded, since only a GET
/// opens a WebSocket (§4.2.1 point 1). The caller sends the response without its body.
pub fn refuse_head(req: &Request, config: &UpgradeConfig) -> HandshakeError {
    validate_upgrade_headers(req, config).map_or_else(|e| e, |_| HandshakeError::HeadUpgrade)
}

/// Every rule of [`validate_upgrade`] after the method's.
fn validate_upgrade_headers(
    req: &Request,
    config: &UpgradeConfig,
) -> Result<Upgrade, HandshakeError> {
    if req.minor_version() != 1 {
        return Err(HandshakeError::UnsupportedHttpVersion);
    }
    // §4.2.1 point 2: "A |Host| header field containing the server's authority."
    let mut hosts = req.header_all("host");
    match (hosts.next(), hosts.next()) {
        (None, _) => return Err(HandshakeError::MissingHost),
        (Some([]), None) => return Err(HandshakeError::MissingHost),
        (Some(_), None) => {}
        (Some(_), Some(_)) => return Err(HandshakeError::DuplicateHost),
    }
    // §4.2.1 point 3: "An |Upgrade| header field containing the value "websocket", treated as
    // an ASCII case-insensitive value."
    if !req
        .header_all("upgrade")
        .any(|v| list_contains(v, "websocket"))
    {
        return Err(HandshakeError::NotWebSocketUpgrade);
    }
    // §4.2.1 point 4: "A |Connection| header field that includes the token "Upgrade", treated
    // as an ASCII case-insensitive value."
    if !req
        .header_all("connection")
        .any(|v| list_contains(v, "upgrade"))
    {
        return Err(HandshakeError::ConnectionNotUpgrade);
    }
    // §4.2.1 point 6: "A |Sec-WebSocket-Version| header field, with a value of 13."
    let mut versions = req.header_all("sec-websocket-version");
    match (versions.next(), versions.next()) {
        (None, _) => return Err(HandshakeError::MissingVersion),
        (Some(v), None) if v == WEBSOCKET_VERSION.as_bytes() => {}
        _ => return Err(HandshakeError::UnsupportedVersion),
    }
    // §4.2.1 point 5: "A |Sec-WebSocket-Key| header field with a base64-encoded value that,
    // when decoded, is 16 bytes in length."
    let mut keys = req.header_all("sec-websocket-key");
    let key = match (keys.next(), keys.next()) {
        (None, _) => return Err(HandshakeError::MissingKey),
        (Some(_), Some(_)) => return Err(HandshakeError::DuplicateKey),
        (Some(k), None) => k,
    };
    if !is_valid_key(key) {
        return Err(HandshakeError::BadKey);
    }
    // §4.2.2 step 5, `subprotocol`: "Either a single value representing the subprotocol the
    // server is ready to use or null." Client order; see `UpgradeConfig::protocols`.
    let protocol = req
        .protocols()
        .iter()
        .find(|offered| config.protocols.iter().any(|ours| ours == *offered))
        .cloned();
    Ok(Upgrade {
        accept: AcceptKey::from_key(key),
        protocol,
        offered_extensions: req.extensions().to_vec(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn offers(value: &str) -> Result<Vec<ExtensionOffer>, BadExtensions> {
        let mut out = Vec::new();
        parse_extensions(value.as_bytes(), &mut out).map(|()| out)
    }

    fn offer(name: &str, params: &[(&str, Option<&str>)]) -> ExtensionOffer {
        ExtensionOffer {
            name: name.into(),
            params: params
                .iter()
                .map(|(n, v)| (n.to_string(), v.map(str::to_string)))
                .collect(),
        }
    }

    #[test]
    fn chrome_permessage_deflate_offer_is_a_name_and_a_valueless_param() {
        assert_eq!(
            offers("permessage-deflate; client_max_window_bits"),
            Ok(vec![offer(
                "permessage-deflate",
                &[("client_max_window_bits", None)]
            )])
        );
    }

    #[test]
    fn several_offers_with_token_and_quoted_values_parse_in_order() {
        assert_eq!(
            offers(
                "permessage-deflate; server_max_window_bits=10;client_no_context_takeover, \
                 permessage-deflate ; client_max_window_bits=\"15\",x-custom"
            ),
            Ok(vec![
                offer(
                    "permessage-deflate",
                    &[
                        ("server_max_window_bits", Some("10")),
                        ("client_no_context_takeover", None)
                    ]
                ),
                offer(
                    "permessage-deflate",
                    &[("client_max_window_bits", Some("15"))]
                ),
                offer("x-custom", &[]),
            ])
        );
    }

    #[test]
    fn empty_list_elements_are_skipped() {
        assert_eq!(offers(" , a ,, "), Ok(vec![offer("a", &[])]));
        assert_eq!(offers(""), Ok(vec![]));
    }

    #[test]
    fn extension_values_outside_the_grammar_are_refused() {
        for bad in [
            "a;",
            "a; =1",
            "a; b=",
            "a; b=\"unterminated",
            "a; b=\"not a token\"",
            "a b",
            ";b",
            "a; b=1 2",
            "a; b=\"x\\",
        ] {
            assert_eq!(offers(bad), Err(BadExtensions), "{bad:?}");
        }
    }

    #[test]
    fn a_quoted_pair_is_unescaped() {
        assert_eq!(
            offers("a; b=\"1\\5\""),
            Ok(vec![offer("a", &[("b", Some("15"))])])
        );
    }

    #[test]
    fn extension_param_lookup_is_case_insensitive() {
        let o = offer(
            "permessage-deflate",
            &[("Client_Max_Window_Bits", Some("9"))],
        );
        assert_eq!(o.param("client_max_window_bits"), Some(Some("9")));
        assert_eq!(o.param("server_max_window_bits"), None);
    }
}
