//! The handshake's specification, as tests: RFC 6455 §4 rule by rule, real browser requests,
//! incremental feeding, limits, byte-exact responses, and the client half against the server.

use super::*;

/// Chrome 131 on Linux opening `new WebSocket("ws://localhost:8080/chat?room=lobby")`, header
/// order and values as Chrome sends them.
const CHROME: &str = include_str!("fixtures/chrome131.http");

/// Firefox 133 on Linux opening `new WebSocket("ws://localhost:8080/chat", ["chat", "json"])`:
/// note `Connection: keep-alive, Upgrade` and the Sec-Fetch headers.
const FIREFOX: &str = "GET /chat HTTP/1.1\r\n\
Host: localhost:8080\r\n\
User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0\r\n\
Accept: */*\r\n\
Accept-Language: en-US,en;q=0.5\r\n\
Accept-Encoding: gzip, deflate, br, zstd\r\n\
Sec-WebSocket-Version: 13\r\n\
Origin: http://localhost:8080\r\n\
Sec-WebSocket-Protocol: chat, json\r\n\
Sec-WebSocket-Extensions: permessage-deflate\r\n\
Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
Connection: keep-alive, Upgrade\r\n\
Sec-Fetch-Dest: empty\r\n\
Sec-Fetch-Mode: websocket\r\n\
Sec-Fetch-Site: same-origin\r\n\
Pragma: no-cache\r\n\
Cache-Control: no-cache\r\n\
Upgrade: websocket\r\n\
\r\n";

/// The client handshake of RFC 6455 §1.2.
const RFC_EXAMPLE: &str = "GET /chat HTTP/1.1\r\n\
Host: server.example.com\r\n\
Upgrade: websocket\r\n\
Connection: Upgrade\r\n\
Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
Origin: http://example.com\r\n\
Sec-WebSocket-Protocol: chat, superchat\r\n\
Sec-WebSocket-Version: 13\r\n\
\r\n";

/// A minimal valid upgrade, one header per line in `extra` appended.
fn upgrade_with(lines: &[&str]) -> String {
    let mut s = String::from("GET /ws HTTP/1.1\r\n");
    for l in lines {
        s.push_str(l);
        s.push_str("\r\n");
    }
    s.push_str("\r\n");
    s
}

const HOST: &str = "Host: example.com";
const UPGRADE: &str = "Upgrade: websocket";
const CONNECTION: &str = "Connection: Upgrade";
const VERSION: &str = "Sec-WebSocket-Version: 13";
const KEY: &str = "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==";

fn valid_lines() -> Vec<&'static str> {
    vec![HOST, UPGRADE, CONNECTION, VERSION, KEY]
}

/// The valid minimal upgrade with the line starting like `prefix` replaced by `with` (or
/// removed when `with` is `None`).
fn valid_but(prefix: &str, with: Option<&'static str>) -> String {
    let lines: Vec<&str> = valid_lines()
        .into_iter()
        .filter_map(|l| if l.starts_with(prefix) { with } else { Some(l) })
        .collect();
    upgrade_with(&lines)
}

fn parse_whole(req: &[u8]) -> Result<Parse<Request>, HandshakeError> {
    RequestParser::new(HandshakeLimits::default()).parse(req)
}

fn handshake(req: &str, config: &UpgradeConfig) -> Result<Upgrade, HandshakeError> {
    match parse_whole(req.as_bytes())? {
        Parse::Complete(r, n) => {
            assert_eq!(n, req.len());
            validate_upgrade(&r, config)
        }
        Parse::Partial => panic!("complete request reported partial"),
    }
}

fn rendered<F: FnOnce(&mut Vec<u8>)>(f: F) -> String {
    let mut out = Vec::new();
    f(&mut out);
    String::from_utf8(out).unwrap()
}

// --- the accept key -----------------------------------------------------------------------

#[test]
fn the_rfc_example_key_yields_the_rfc_accept_value() {
    // §1.3: "the server would ... return ... s3pPLMBiTxaQ9kYGzzhZRbK+xOo=".
    assert_eq!(
        AcceptKey::from_key(b"dGhlIHNhbXBsZSBub25jZQ==").as_str(),
        "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
    );
}

#[test]
fn a_second_known_key_yields_its_known_accept_value() {
    assert_eq!(
        AcceptKey::from_key(b"x3JJHMbDL1EzLkh9GBhXDw==").as_str(),
        "HSmrc0sMlYUkAGmm5OPpG2HaGWk="
    );
}

#[test]
fn a_client_key_from_a_nonce_is_24_chars_that_decode_back_to_the_nonce() {
    let nonce = *b"the sample nonce";
    let key = ClientKey::from_nonce(nonce);
    assert_eq!(key.as_str(), "dGhlIHNhbXBsZSBub25jZQ==");
    assert!(is_valid_key(key.as_str().as_bytes()));
    assert_eq!(
        key.expected_accept().as_str(),
        "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
    );
}

// --- whole requests -----------------------------------------------------------------------

#[test]
fn the_rfc_example_gets_a_byte_exact_101_choosing_chat() {
    let up = handshake(RFC_EXAMPLE, &UpgradeConfig::with_protocols(["chat"])).unwrap();
    assert_eq!(up.protocol(), Some("chat"));
    assert_eq!(
        rendered(|o| up.render_response(o)),
        "HTTP/1.1 101 Switching Protocols\r\n\
         Upgrade: websocket\r\n\
         Connection: Upgrade\r\n\
         Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\
         Sec-WebSocket-Protocol: chat\r\n\
         \r\n"
    );
}

#[test]
fn a_chrome_request_is_accepted_and_keeps_what_later_features_need() {
    let Ok(Parse::Complete(req, consumed)) = parse_whole(CHROME.as_bytes()) else {
        panic!("chrome request not parsed")
    };
    assert_eq!(consumed, CHROME.len());
    assert_eq!(req.method(), "GET");
    assert_eq!(req.path(), "/chat");
    assert_eq!(req.query_param("room").as_deref(), Some("lobby"));
    assert_eq!(req.host(), Some("localhost:8080"));
    assert_eq!(req.origin(), Some("http://localhost:8080"));
    assert_eq!(req.authorization(), None);
    assert_eq!(req.header_str("pragma"), Some("no-cache"));
    assert!(req.protocols().is_empty());
    assert_eq!(
        req.extensions(),
        [ExtensionOffer {
            name: "permessage-deflate".into(),
            params: vec![("client_max_window_bits".into(), None)],
        }]
    );

    let up = validate_upgrade(&req, &UpgradeConfig::with_protocols(["chat"])).unwrap();
    assert_eq!(up.protocol(), None);
    assert_eq!(up.offered_extensions(), req.extensions());
    assert_eq!(
        rendered(|o| up.render_response(o)),
        "HTTP/1.1 101 Switching Protocols\r\n\
         Upgrade: websocket\r\n\
         Connection: Upgrade\r\n\
         Sec-WebSocket-Accept: HSmrc0sMlYUkAGmm5OPpG2HaGWk=\r\n\
         \r\n"
    );
}

#[test]
fn a_firefox_request_with_keep_alive_upgrade_is_accepted() {
    let up = handshake(FIREFOX, &UpgradeConfig::default()).unwrap();
    assert_eq!(up.accept_key().as_str(), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    assert_eq!(up.protocol(), None);
    assert_eq!(up.offered_extensions()[0].name, "permessage-deflate");
}

#[test]
fn the_subprotocol_is_the_first_of_the_clients_list_the_server_supports() {
    // Firefox offers "chat, json"; the server lists json first, yet the client's order wins.
    let up = handshake(FIREFOX, &UpgradeConfig::with_protocols(["json", "chat"])).unwrap();
    assert_eq!(up.protocol(), Some("chat"));
    let up = handshake(FIREFOX, &UpgradeConfig::with_protocols(["json"])).unwrap();
    assert_eq!(up.protocol(), Some("json"));
}

#[test]
fn protocols_across_repeated_headers_are_one_list_in_client_order() {
    let req = upgrade_with(&[
        HOST,
        UPGRADE,
        CONNECTION,
        VERSION,
        KEY,
        "Sec-WebSocket-Protocol: v1.a",
        "Sec-WebSocket-Protocol: v2.b, v3.c",
    ]);
    let up = handshake(&req, &UpgradeConfig::with_protocols(["v3.c", "v2.b"])).unwrap();
    assert_eq!(up.protocol(), Some("v2.b"));
}

#[test]
fn no_common_subprotocol_means_no_protocol_header_in_the_101() {
    // §4.2.2: "If the server does not wish to agree to one of the suggested subprotocols, it
    // MUST NOT send back a |Sec-WebSocket-Protocol| header field in its response."
    let up = handshake(RFC_EXAMPLE, &UpgradeConfig::with_protocols(["mqtt"])).unwrap();
    assert_eq!(up.protocol(), None);
    assert!(!rendered(|o| up.render_response(o)).contains("Sec-WebSocket-Protocol"));
}

#[test]
fn subprotocols_are_compared_case_sensitively() {
    let up = handshake(RFC_EXAMPLE, &UpgradeConfig::with_protocols(["Chat"])).unwrap();
    assert_eq!(up.protocol(), None);
}

#[test]
fn bytes_after_the_head_are_not_consumed() {
    let mut buf = CHROME.as_bytes().to_vec();
    buf.extend_from_slice(&[0x81, 0x85, 1, 2, 3, 4]);
    let Ok(Parse::Complete(_, consumed)) = parse_whole(&buf) else {
        panic!("not complete")
    };
    assert_eq!(consumed, CHROME.len());
}

// --- §4.2.1, rule by rule -----------------------------------------------------------------

#[test]
fn the_minimal_valid_upgrade_is_accepted() {
    assert!(handshake(&upgrade_with(&valid_lines()), &UpgradeConfig::default()).is_ok());
}

#[test]
fn a_post_upgrade_fails_with_405() {
    let req = upgrade_with(&valid_lines()).replacen("GET", "POST", 1);
    assert_eq!(
        handshake(&req, &UpgradeConfig::default()),
        Err(HandshakeError::MethodNotAllowed)
    );
}

#[test]
fn a_head_gets_the_refusal_a_get_would_get_and_never_an_upgrade() {
    let config = UpgradeConfig::default();
    let head = |req: &str| {
        let req = Request::parse_head(req.as_bytes(), &HandshakeLimits::default()).unwrap();
        refuse_head(&req, &config)
    };
    let valid = upgrade_with(&valid_lines());
    assert_eq!(
        head(&valid.replacen("GET", "HEAD", 1)),
        HandshakeError::HeadUpgrade
    );
    assert_eq!(
        head("HEAD /ws HTTP/1.1\r\nHost: x\r\n\r\n"),
        HandshakeError::NotWebSocketUpgrade
    );
    assert_eq!(
        head("HEAD /ws HTTP/1.0\r\nHost: x\r\n\r\n"),
        HandshakeError::UnsupportedHttpVersion
    );
}

#[test]
fn a_lowercase_get_is_a_different_method_and_fails_with_405() {
    let req = upgrade_with(&valid_lines()).replacen("GET", "get", 1);
    assert_eq!(
        handshake(&req, &UpgradeConfig::default()).map(|_| ()),
        Err(HandshakeError::MethodNotAllowed)
    );
}

#[test]
fn an_http_1_0_upgrade_fails_with_505() {
    let req = upgrade_with(&valid_lines()).replacen("HTTP/1.1", "HTTP/1.0", 1);
    assert_eq!(
        handshake(&req, &UpgradeConfig::default()),
        Err(HandshakeError::UnsupportedHttpVersion)
    );
}

#[test]
fn an_upgrade_without_host_fails_with_400() {
    assert_eq!(
        handshake(&valid_but("Host", None), &UpgradeConfig::default()),
        Err(HandshakeError::MissingHost)
    );
    assert_eq!(
        handshake(&valid_but("Host", Some("Host:")), &UpgradeConfig::default()),
        Err(HandshakeError::MissingHost)
    );
}

#[test]
fn an_upgrade_with_two_hosts_fails_with_400() {
    let mut lines = valid_lines();
    lines.push("host: other.example");
    assert_eq!(
        handshake(&upgrade_with(&lines), &UpgradeConfig::default()),
        Err(HandshakeError::DuplicateHost)
    );
}

#[test]
fn a_plain_get_on_a_websocket_path_fails_with_426() {
    let req = "GET /ws HTTP/1.1\r\nHost: example.com\r\nAccept: text/html\r\n\r\n";
    assert_eq!(
        handshake(req, &UpgradeConfig::default()),
        Err(HandshakeError::NotWebSocketUpgrade)
    );
}

#[test]
fn an_upgrade_to_another_protocol_fails_with_426() {
    assert_eq!(
        handshake(
            &valid_but("Upgrade", Some("Upgrade: h2c")),
            &UpgradeConfig::default()
        ),
        Err(HandshakeError::NotWebSocketUpgrade)
    );
}

#[test]
fn upgrade_and_connection_tokens_match_case_insensitively_within_lists() {
    for (upgrade, connection) in [
        ("Upgrade: WebSocket", "Connection: upgrade"),
        ("upgrade: WEBSOCKET", "connection: keep-alive, Upgrade"),
        (
            "Upgrade: foo/2, websocket",
            "Connection: Upgrade ,keep-alive",
        ),
    ] {
        let req = upgrade_with(&[HOST, upgrade, connection, VERSION, KEY]);
        assert!(
            handshake(&req, &UpgradeConfig::default()).is_ok(),
            "{upgrade} / {connection}"
        );
    }
}

#[test]
fn a_token_list_matches_whole_tokens_only() {
    let req = upgrade_with(&[HOST, "Upgrade: websockets", CONNECTION, VERSION, KEY]);
    assert_eq!(
        handshake(&req, &UpgradeConfig::default()),
        Err(HandshakeError::NotWebSocketUpgrade)
    );
    let req = upgrade_with(&[
        HOST,
        UPGRADE,
        "Connection: keep-alive-upgrade",
        VERSION,
        KEY,
    ]);
    assert_eq!(
        handshake(&req, &UpgradeConfig::default()),
        Err(HandshakeError::ConnectionNotUpgrade)
    );
}

#[test]
fn an_upgrade_without_connection_upgrade_fails_with_400() {
    assert_eq!(
        handshake(&valid_but("Connection", None), &UpgradeConfig::default()),
        Err(HandshakeError::ConnectionNotUpgrade)
    );
    assert_eq!(
        handshake(
            &valid_but("Connection", Some("Connection: keep-alive")),
            &UpgradeConfig::default()
        ),
        Err(HandshakeError::ConnectionNotUpgrade)
    );
}

#[test]
fn an_upgrade_without_version_fails_with_426() {
    assert_eq!(
        handshake(
            &valid_but("Sec-WebSocket-Version", None),
            &UpgradeConfig::default()
        ),
        Err(HandshakeError::MissingVersion)
    );
}

#[test]
fn an_upgrade_with_version_8_or_a_version_list_fails_with_426() {
    for v in [
        "Sec-WebSocket-Version: 8",
        "Sec-WebSocket-Version: 13, 8",
        "Sec-WebSocket-Version: 013",
    ] {
        assert_eq!(
            handshake(
                &valid_but("Sec-WebSocket-Version", Some(v)),
                &UpgradeConfig::default()
            ),
            Err(HandshakeError::UnsupportedVersion),
            "{v}"
        );
    }
    let mut lines = valid_lines();
    lines.push(VERSION);
    assert_eq!(
        handshake(&upgrade_with(&lines), &UpgradeConfig::default()),
        Err(HandshakeError::UnsupportedVersion)
    );
}

#[test]
fn an_upgrade_without_key_fails_with_400() {
    assert_eq!(
        handshake(
            &valid_but("Sec-WebSocket-Key", None),
            &UpgradeConfig::default()
        ),
        Err(HandshakeError::MissingKey)
    );
}

#[test]
fn a_key_that_is_not_base64_of_16_bytes_fails_with_400() {
    for key in [
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25j",     // 15 bytes
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ",   // 16 bytes, padding missing
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZXM=", // 17 bytes
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZR==", // non-zero trailing bits
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZ!==", // not the alphabet
        "Sec-WebSocket-Key: dGhlIHNhbXBs ZSBub25jZQ==",
        "Sec-WebSocket-Key:",
    ] {
        assert_eq!(
            handshake(
                &valid_but("Sec-WebSocket-Key", Some(key)),
                &UpgradeConfig::default()
            ),
            Err(HandshakeError::BadKey),
            "{key}"
        );
    }
}

#[test]
fn two_keys_fail_with_400() {
    let mut lines = valid_lines();
    lines.push("Sec-WebSocket-Key: x3JJHMbDL1EzLkh9GBhXDw==");
    assert_eq!(
        handshake(&upgrade_with(&lines), &UpgradeConfig::default()),
        Err(HandshakeError::DuplicateKey)
    );
}

#[test]
fn whitespace_around_the_key_is_ignored_for_the_accept_value() {
    let req = valid_but(
        "Sec-WebSocket-Key",
        Some("Sec-WebSocket-Key: \t dGhlIHNhbXBsZSBub25jZQ== \t"),
    );
    let up = handshake(&req, &UpgradeConfig::default()).unwrap();
    assert_eq!(up.accept_key().as_str(), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
}

#[test]
fn a_malformed_extension_offer_fails_with_400() {
    let mut lines = valid_lines();
    lines.push("Sec-WebSocket-Extensions: permessage-deflate; =15");
    assert_eq!(
        handshake(&upgrade_with(&lines), &UpgradeConfig::default()),
        Err(HandshakeError::BadExtensionHeader)
    );
}

#[test]
fn a_broken_request_earns_the_status_of_its_first_broken_rule() {
    // POST over HTTP/1.0 without anything else: the method is checked first.
    assert_eq!(
        handshake("POST / HTTP/1.0\r\n\r\n", &UpgradeConfig::default()),
        Err(HandshakeError::MethodNotAllowed)
    );
    // Wrong version and no key: the version is checked first so the client can retry.
    let req = upgrade_with(&[HOST, UPGRADE, CONNECTION, "Sec-WebSocket-Version: 8"]);
    assert_eq!(
        handshake(&req, &UpgradeConfig::default()),
        Err(HandshakeError::UnsupportedVersion)
    );
}

// --- incremental parsing ------------------------------------------------------------------

fn same_split_and_whole(req: &[u8]) {
    let whole = parse_whole(req);
    for cut in 0..=req.len() {
        let mut p = RequestParser::new(HandshakeLimits::default());
        let first = p.parse(&req[..cut]);
        let result = match first {
            Ok(Parse::Partial) => p.parse(req),
            done => done,
        };
        assert_eq!(result, whole, "split at {cut}");
    }
    let mut p = RequestParser::new(HandshakeLimits::default());
    let mut last = Ok(Parse::Partial);
    for end in 1..=req.len() {
        last = p.parse(&req[..end]);
        if last != Ok(Parse::Partial) {
            break;
        }
    }
    assert_eq!(last, whole, "fed one byte at a time");
}

#[test]
fn requests_split_at_every_byte_parse_the_same_as_whole() {
    same_split_and_whole(CHROME.as_bytes());
    same_split_and_whole(FIREFOX.as_bytes());
    same_split_and_whole(RFC_EXAMPLE.as_bytes());
    same_split_and_whole(b"GET / HTTP/2.0\r\n\r\n");
    same_split_and_whole(b"GET / HTTP/1.1\r\nBad Header: x\r\n\r\n");
    same_split_and_whole(b"GET / HTTP/1.1\nHost: x\r\n\r\n");
}

#[test]
fn a_request_fed_a_byte_at_a_time_is_not_rescanned() {
    let req = CHROME.as_bytes();
    let mut p = RequestParser::new(HandshakeLimits::default());
    let mut calls = 0;
    for end in 1..=req.len() {
        calls += 1;
        match p.parse(&req[..end]) {
            Ok(Parse::Partial) => assert_eq!(p.scanned(), end),
            Ok(Parse::Complete(_, n)) => assert_eq!((n, end), (req.len(), req.len())),
            Err(e) => panic!("{e}"),
        }
    }
    assert!(p.examined() <= req.len() + 3 * calls, "{}", p.examined());
}

#[test]
fn a_partial_request_consumes_nothing_and_reports_partial() {
    assert_eq!(
        parse_whole(&CHROME.as_bytes()[..CHROME.len() - 1]),
        Ok(Parse::Partial)
    );
    assert_eq!(parse_whole(b""), Ok(Parse::Partial));
}

// --- limits -------------------------------------------------------------------------------

/// A valid upgrade of exactly `len` bytes, padded with an `X-Pad` header.
fn upgrade_of_len(len: usize) -> String {
    let base = upgrade_with(&valid_lines());
    let overhead = base.len() + "X-Pad: \r\n".len();
    assert!(len >= overhead);
    let pad = "a".repeat(len - overhead);
    let pad_line = format!("X-Pad: {pad}");
    let mut lines = valid_lines();
    lines.push(&pad_line);
    let req = upgrade_with(&lines);
    assert_eq!(req.len(), len);
    req
}

#[test]
fn a_head_of_exactly_the_byte_limit_is_accepted() {
    let limits = HandshakeLimits::default();
    let req = upgrade_of_len(limits.max_head_bytes);
    let Ok(Parse::Complete(r, n)) = RequestParser::new(limits).parse(req.as_bytes()) else {
        panic!("limit-sized head refused")
    };
    assert_eq!(n, limits.max_head_bytes);
    assert!(validate_upgrade(&r, &UpgradeConfig::default()).is_ok());
}

#[test]
fn a_head_one_byte_over_the_byte_limit_fails_with_431() {
    let limits = HandshakeLimits::default();
    let req = upgrade_of_len(limits.max_head_bytes + 1);
    let err = RequestParser::new(limits)
        .parse(req.as_bytes())
        .unwrap_err();
    assert_eq!(err, HandshakeError::HeadTooLarge { limit: 8192 });
    assert_eq!(err.status(), 431);
}

#[test]
fn an_oversized_head_is_refused_as_soon_as_the_limit_is_reached_without_more_bytes() {
    let limits = HandshakeLimits {
        max_head_bytes: 100,
        max_headers: 64,
    };
    let endless = format!("GET / HTTP/1.1\r\nX: {}", "a".repeat(200));
    let mut p = RequestParser::new(limits);
    assert_eq!(p.parse(&endless.as_bytes()[..99]), Ok(Parse::Partial));
    assert_eq!(
        p.parse(&endless.as_bytes()[..100]),
        Err(HandshakeError::HeadTooLarge { limit: 100 })
    );
    assert_eq!(p.scanned(), 100);
}

fn upgrade_with_header_count(count: usize) -> String {
    let pads: Vec<String> = (valid_lines().len()..count)
        .map(|i| format!("X-{i}: v"))
        .collect();
    let mut lines = valid_lines();
    lines.extend(pads.iter().map(String::as_str));
    upgrade_with(&lines)
}

#[test]
fn exactly_the_header_count_limit_is_accepted() {
    let req = upgrade_with_header_count(64);
    let Ok(Parse::Complete(r, _)) = parse_whole(req.as_bytes()) else {
        panic!("64 headers refused")
    };
    assert_eq!(r.header_count(), 64);
    assert!(validate_upgrade(&r, &UpgradeConfig::default()).is_ok());
}

#[test]
fn one_header_over_the_count_limit_fails_with_431() {
    let req = upgrade_with_header_count(65);
    let err = parse_whole(req.as_bytes()).unwrap_err();
    assert_eq!(err, HandshakeError::TooManyHeaders { limit: 64 });
    assert_eq!(err.status(), 431);
}

#[test]
fn limits_are_configurable() {
    let limits = HandshakeLimits {
        max_head_bytes: 200,
        max_headers: 5,
    };
    let req = upgrade_with(&valid_lines());
    assert!(matches!(
        RequestParser::new(limits).parse(req.as_bytes()),
        Ok(Parse::Complete(..))
    ));
    let mut lines = valid_lines();
    lines.push("X: 1");
    assert_eq!(
        RequestParser::new(limits).parse(upgrade_with(&lines).as_bytes()),
        Err(HandshakeError::TooManyHeaders { limit: 5 })
    );
}

// --- error responses, byte-exact ----------------------------------------------------------

#[test]
fn a_400_for_a_missing_key_is_rendered_byte_exact() {
    assert_eq!(
        rendered(|o| HandshakeError::MissingKey.render_response(o)),
        "HTTP/1.1 400 Bad Request\r\n\
         Connection: close\r\n\
         Content-Type: text/plain\r\n\
         Content-Length: 26\r\n\
         \r\n\
         missing Sec-WebSocket-Key\n"
    );
}

#[test]
fn a_400_for_a_bad_key_is_rendered_byte_exact() {
    assert_eq!(
        rendered(|o| HandshakeError::BadKey.render_response(o)),
        "HTTP/1.1 400 Bad Request\r\n\
         Connection: close\r\n\
         Content-Type: text/plain\r\n\
         Content-Length: 45\r\n\
         \r\n\
         Sec-WebSocket-Key must be base64 of 16 bytes\n"
    );
}

#[test]
fn a_400_for_a_missing_host_is_rendered_byte_exact() {
    assert_eq!(
        rendered(|o| HandshakeError::MissingHost.render_response(o)),
        "HTTP/1.1 400 Bad Request\r\n\
         Connection: close\r\n\
         Content-Type: text/plain\r\n\
         Content-Length: 13\r\n\
         \r\n\
         missing Host\n"
    );
}

#[test]
fn a_400_for_a_malformed_request_is_rendered_byte_exact() {
    assert_eq!(
        rendered(|o| HandshakeError::Malformed(MalformedKind::HeaderName).render_response(o)),
        "HTTP/1.1 400 Bad Request\r\n\
         Connection: close\r\n\
         Content-Type: text/plain\r\n\
         Content-Length: 22\r\n\
         \r\n\
         malformed header name\n"
    );
}

#[test]
fn a_404_is_rendered_byte_exact() {
    assert_eq!(
        rendered(|o| HandshakeError::NotFound.render_response(o)),
        "HTTP/1.1 404 Not Found\r\n\
         Connection: close\r\n\
         Content-Type: text/plain\r\n\
         Content-Length: 10\r\n\
         \r\n\
         not found\n"
    );
}

#[test]
fn a_405_carries_allow_get_byte_exact() {
    assert_eq!(
        rendered(|o| HandshakeError::MethodNotAllowed.render_response(o)),
        "HTTP/1.1 405 Method Not Allowed\r\n\
         Connection: close\r\n\
         Content-Type: text/plain\r\n\
         Content-Length: 42\r\n\
         Allow: GET, HEAD\r\n\
         \r\n\
         method not allowed (expected GET or HEAD)\n"
    );
}

#[test]
fn a_426_for_a_wrong_version_carries_sec_websocket_version_13_byte_exact() {
    assert_eq!(
        rendered(|o| HandshakeError::UnsupportedVersion.render_response(o)),
        "HTTP/1.1 426 Upgrade Required\r\n\
         Connection: close\r\n\
         Content-Type: text/plain\r\n\
         Content-Length: 48\r\n\
         Sec-WebSocket-Version: 13\r\n\
         \r\n\
         unsupported Sec-WebSocket-Version (expected 13)\n"
    );
}

#[test]
fn a_426_for_a_plain_request_is_rendered_byte_exact() {
    assert_eq!(
        rendered(|o| HandshakeError::NotWebSocketUpgrade.render_response(o)),
        "HTTP/1.1 426 Upgrade Required\r\n\
         Connection: close\r\n\
         Content-Type: text/plain\r\n\
         Content-Length: 54\r\n\
         Sec-WebSocket-Version: 13\r\n\
         \r\n\
         not a WebSocket upgrade (expected Upgrade: websocket)\n"
    );
}

#[test]
fn a_431_is_rendered_byte_exact() {
    assert_eq!(
        rendered(|o| HandshakeError::HeadTooLarge { limit: 8192 }.render_response(o)),
        "HTTP/1.1 431 Request Header Fields Too Large\r\n\
         Connection: close\r\n\
         Content-Type: text/plain\r\n\
         Content-Length: 26\r\n\
         \r\n\
         request headers too large\n"
    );
    assert_eq!(
        rendered(|o| HandshakeError::TooManyHeaders { limit: 64 }.render_response(o)),
        "HTTP/1.1 431 Request Header Fields Too Large\r\n\
         Connection: close\r\n\
         Content-Type: text/plain\r\n\
         Content-Length: 25\r\n\
         \r\n\
         too many request headers\n"
    );
}

#[test]
fn a_505_is_rendered_byte_exact() {
    assert_eq!(
        rendered(|o| HandshakeError::UnsupportedHttpVersion.render_response(o)),
        "HTTP/1.1 505 HTTP Version Not Supported\r\n\
         Connection: close\r\n\
         Content-Type: text/plain\r\n\
         Content-Length: 45\r\n\
         \r\n\
         unsupported HTTP version (expected HTTP/1.1)\n"
    );
}

#[test]
fn every_error_has_a_status_a_one_line_reason_and_a_matching_content_length() {
    use HandshakeError::*;
    let all = [
        Malformed(MalformedKind::RequestLine),
        Malformed(MalformedKind::Version),
        Malformed(MalformedKind::HeaderName),
        Malformed(MalformedKind::HeaderValue),
        Malformed(MalformedKind::LineEnding),
        Malformed(MalformedKind::StatusLine),
        HeadTooLarge { limit: 1 },
        TooManyHeaders { limit: 1 },
        UnsupportedHttpVersion,
        MethodNotAllowed,
        NotFound,
        MissingHost,
        DuplicateHost,
        NotWebSocketUpgrade,
        ConnectionNotUpgrade,
        MissingVersion,
        UnsupportedVersion,
        MissingKey,
        DuplicateKey,
        BadKey,
        BadProtocolHeader,
        BadExtensionHeader,
        HeadUpgrade,
        TokenProtocolAlone,
    ];
    for e in all {
        assert!(
            [400, 404, 405, 426, 431, 505].contains(&e.status()),
            "{e:?}"
        );
        assert!(
            !e.reason().is_empty() && !e.reason().contains('\n'),
            "{e:?}"
        );
        let mut out = Vec::new();
        e.render_response(&mut out);
        let text = String::from_utf8(out).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with(&format!("HTTP/1.1 {} ", e.status())));
        assert!(head.contains(&format!("\r\nContent-Length: {}", body.len())));
        assert_eq!(body, format!("{}\n", e.reason()));
    }
}

#[test]
fn display_is_the_reason_or_names_the_limit() {
    assert_eq!(
        HandshakeError::BadKey.to_string(),
        HandshakeError::BadKey.reason()
    );
    assert_eq!(
        HandshakeError::HeadTooLarge { limit: 8192 }.to_string(),
        "request headers over 8192 bytes"
    );
}

// --- the client half ----------------------------------------------------------------------

fn server_101_for(request: &[u8], config: &UpgradeConfig) -> Vec<u8> {
    let Ok(Parse::Complete(req, _)) = parse_whole(request) else {
        panic!("client request not parsed")
    };
    let up = validate_upgrade(&req, config).unwrap();
    let mut out = Vec::new();
    up.render_response(&mut out);
    out
}

#[test]
fn a_client_request_is_rendered_byte_exact() {
    let key = ClientKey::from_nonce(*b"the sample nonce");
    let mut out = Vec::new();
    write_client_request(
        "server.example.com",
        "/chat",
        &key,
        &["chat", "superchat"],
        &mut out,
    )
    .unwrap();
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "GET /chat HTTP/1.1\r\n\
         Host: server.example.com\r\n\
         Upgrade: websocket\r\n\
         Connection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
         Sec-WebSocket-Version: 13\r\n\
         Sec-WebSocket-Protocol: chat, superchat\r\n\
         \r\n"
    );
}

#[test]
fn a_client_request_with_a_bad_host_path_or_protocol_writes_nothing() {
    let key = ClientKey::from_nonce([7; 16]);
    let mut out = Vec::new();
    let cases = [
        ("", "/", &[][..], ClientHandshakeError::InvalidHost),
        ("a b", "/", &[], ClientHandshakeError::InvalidHost),
        ("a", "chat", &[], ClientHandshakeError::InvalidPath),
        ("a", "/x\r\nY: z", &[], ClientHandshakeError::InvalidPath),
        ("a", "/", &["a,b"], ClientHandshakeError::InvalidProtocol),
    ];
    for (host, path, protos, expected) in cases {
        assert_eq!(
            write_client_request(host, path, &key, protos, &mut out),
            Err(expected)
        );
    }
    assert!(out.is_empty());
}

#[test]
fn the_client_accepts_our_servers_101_split_at_every_byte() {
    let key = ClientKey::from_nonce([0x5a; 16]);
    let mut request = Vec::new();
    write_client_request(
        "localhost:9000",
        "/ws?token=x",
        &key,
        &["json", "chat"],
        &mut request,
    )
    .unwrap();
    let mut response = server_101_for(&request, &UpgradeConfig::with_protocols(["chat"]));
    response.extend_from_slice(b"\x81\x02hi");
    let head_len = response.len() - 4;
    for cut in 0..=response.len() {
        let mut v = ResponseValidator::new(&key, &["json", "chat"], HandshakeLimits::default());
        let result = match v.feed(&response[..cut]) {
            Ok(Parse::Partial) => v.feed(&response),
            done => done,
        };
        assert_eq!(
            result,
            Ok(Parse::Complete(
                ServerAccepted {
                    protocol: Some("chat".into())
                },
                head_len
            )),
            "split at {cut}"
        );
    }
}

fn client_check(response: &str) -> Result<Parse<ServerAccepted>, ClientHandshakeError> {
    let key = ClientKey::from_nonce(*b"the sample nonce");
    ResponseValidator::new(&key, &["chat"], HandshakeLimits::default()).feed(response.as_bytes())
}

const GOOD_101: &str = "HTTP/1.1 101 Switching Protocols\r\n\
Upgrade: websocket\r\n\
Connection: Upgrade\r\n\
Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n";

#[test]
fn the_client_accepts_a_101_without_subprotocol() {
    assert_eq!(
        client_check(GOOD_101),
        Ok(Parse::Complete(
            ServerAccepted { protocol: None },
            GOOD_101.len()
        ))
    );
}

#[test]
fn the_client_reports_partial_until_the_head_ends() {
    assert_eq!(
        client_check(&GOOD_101[..GOOD_101.len() - 2]),
        Ok(Parse::Partial)
    );
}

#[test]
fn the_client_fails_on_each_broken_101_rule() {
    use ClientHandshakeError as E;
    let swap = |from: &str, to: &str| GOOD_101.replacen(from, to, 1);
    let cases = [
        (
            swap("101 Switching Protocols", "200 OK"),
            E::UnexpectedStatus(200),
        ),
        (
            swap("HTTP/1.1", "HTTP/1.0"),
            E::Malformed(MalformedKind::StatusLine),
        ),
        (swap("Upgrade: websocket\r\n", ""), E::NotWebSocketUpgrade),
        (
            swap("Upgrade: websocket", "Upgrade: h2c"),
            E::NotWebSocketUpgrade,
        ),
        (swap("Connection: Upgrade\r\n", ""), E::ConnectionNotUpgrade),
        (
            swap("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n", ""),
            E::MissingAccept,
        ),
        (swap("+xOo=", "+xOo"), E::AcceptMismatch),
        (
            swap(
                "\r\n\r\n",
                "\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n",
            ),
            E::AcceptMismatch,
        ),
        (
            swap(
                "\r\n\r\n",
                "\r\nSec-WebSocket-Extensions: permessage-deflate\r\n\r\n",
            ),
            E::UnexpectedExtension,
        ),
        (
            swap("\r\n\r\n", "\r\nSec-WebSocket-Protocol: superchat\r\n\r\n"),
            E::UnexpectedProtocol,
        ),
        (
            swap("\r\n\r\n", "\r\nSec-WebSocket-Protocol: chat, chat\r\n\r\n"),
            E::UnexpectedProtocol,
        ),
    ];
    for (response, expected) in cases {
        assert_eq!(client_check(&response), Err(expected), "{response:?}");
    }
}

#[test]
fn the_client_accepts_case_variants_and_the_offered_protocol() {
    let response = "HTTP/1.1 101 Switching Protocols\r\n\
upgrade: WebSocket\r\n\
connection: keep-alive, upgrade\r\n\
sec-websocket-accept:  s3pPLMBiTxaQ9kYGzzhZRbK+xOo= \r\n\
Sec-WebSocket-Protocol: chat\r\n\r\n";
    assert_eq!(
        client_check(response),
        Ok(Parse::Complete(
            ServerAccepted {
                protocol: Some("chat".into())
            },
            response.len()
        ))
    );
}

#[test]
fn the_client_refuses_an_oversized_response_head() {
    let key = ClientKey::from_nonce([1; 16]);
    let limits = HandshakeLimits {
        max_head_bytes: 64,
        max_headers: 8,
    };
    let mut v = ResponseValidator::new(&key, &[], limits);
    let long = format!("HTTP/1.1 101 Switching Protocols\r\nX: {}", "a".repeat(64));
    assert_eq!(
        v.feed(long.as_bytes()),
        Err(ClientHandshakeError::HeadTooLarge { limit: 64 })
    );
}
