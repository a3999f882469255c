//! The handshake over a real socket: every refusal gets its status, a reason, `Connection: close`,
//! and the server carries on; the plain endpoints answer.

mod common;

use std::io::Write;

use common::*;

fn refused(server: &TestServer, request: &str, status: &str) -> (String, String) {
    let (head, body) = http_request(server.addr, request);
    assert!(
        head.starts_with(&format!("HTTP/1.1 {status} ")),
        "expected {status}, got {head:?}"
    );
    assert!(
        head.to_ascii_lowercase().contains("connection: close\r\n"),
        "{head}"
    );
    assert!(
        !body.trim().is_empty(),
        "a refusal carries a one-line reason"
    );
    assert_echo_works(server.addr);
    (head, body)
}

fn upgrade_with(path: &str, host: &str, extra: &str, key: &str, version: &str) -> String {
    format!(
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: {version}\r\n{extra}\r\n"
    )
}

#[test]
fn a_missing_or_malformed_key_is_400() {
    let server = TestServer::start();
    refused(&server, "GET /echo HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\r\n", "400");
    refused(
        &server,
        &upgrade_with("/echo", "x", "", "dG9vIHNob3J0", "13"),
        "400",
    );
    refused(
        &server,
        &upgrade_with("/echo", "x", "", "not base64 at all!!!!!==", "13"),
        "400",
    );
}

#[test]
fn a_missing_host_is_400() {
    let server = TestServer::start();
    refused(
        &server,
        &format!("GET /echo HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 13\r\n\r\n"),
        "400",
    );
}

#[test]
fn garbage_instead_of_http_is_400() {
    let server = TestServer::start();
    refused(
        &server,
        "\x16\x03\x01\x02\x00\x01\x00\x01\x7f\x03\x03\r\n\r\n",
        "400",
    );
}

#[test]
fn bytes_that_cannot_be_http_are_refused_at_once_not_at_the_handshake_timeout() {
    // A TLS ClientHello (a client speaking wss:// to a plain port) has no line end: the answer
    // must not wait for one, nor for the 60 s handshake timeout (the read below gives up at 5 s).
    let server = TestServer::with(|c| c.handshake_timeout = std::time::Duration::from_secs(60));
    let mut s = connect(server.addr);
    s.set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .unwrap();
    let head = send_request(&mut s, b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03");
    assert!(head.starts_with("HTTP/1.1 400 "), "{head:?}");
    assert!(String::from_utf8_lossy(&read_to_end(&mut s)).contains("malformed request line"));
    assert_echo_works(server.addr);
}

#[test]
fn an_unknown_path_is_404() {
    let server = TestServer::start();
    refused(&server, &upgrade_with("/nope", "x", "", KEY, "13"), "404");
    refused(&server, "GET /nope HTTP/1.1\r\nHost: x\r\n\r\n", "404");
}

#[test]
fn a_method_other_than_get_is_405_with_allow() {
    let server = TestServer::start();
    let (head, _) = refused(
        &server,
        "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n",
        "405",
    );
    assert!(head.contains("Allow: GET, HEAD\r\n"), "{head}");
}

/// The head and the bytes after it for `method path`, read to the end of the connection.
fn answer(server: &TestServer, method: &str, path: &str, extra: &str) -> (String, Vec<u8>) {
    let mut s = connect(server.addr);
    let head = send_request(
        &mut s,
        format!("{method} {path} HTTP/1.1\r\nHost: x\r\n{extra}\r\n").as_bytes(),
    );
    (head, read_to_end(&mut s))
}

fn content_length(head: &str) -> usize {
    head.lines()
        .find_map(|l| l.strip_prefix("Content-Length: "))
        .expect("a Content-Length")
        .parse()
        .unwrap()
}

#[test]
fn head_answers_like_get_with_the_same_head_and_no_body() {
    let server = TestServer::start();
    // Same status, same headers, Content-Length of the body GET sends; not one body byte.
    for path in ["/healthz", "/", "/nope", "/ws", "/echo"] {
        let (get_head, get_body) = answer(&server, "GET", path, "");
        let (head_head, head_body) = answer(&server, "HEAD", path, "");
        assert_eq!(head_head, get_head, "HEAD {path}");
        assert_eq!(content_length(&head_head), get_body.len(), "HEAD {path}");
        assert!(
            head_body.is_empty(),
            "HEAD {path} sent a body: {head_body:?}"
        );
    }
    let (head, body) = answer(&server, "HEAD", "/healthz", "");
    assert!(head.starts_with("HTTP/1.1 200 "), "{head}");
    assert!(body.is_empty());
    // The metrics text changes between two requests; its head still says what GET would send.
    let (head, body) = answer(&server, "HEAD", "/metrics", "");
    assert!(head.starts_with("HTTP/1.1 200 "), "{head}");
    assert!(
        head.contains("Content-Type: text/plain; version=0.0.4"),
        "{head}"
    );
    assert!(content_length(&head) > 100, "{head}");
    assert!(body.is_empty());
    assert_echo_works(server.addr);
}

#[test]
fn a_head_on_a_websocket_path_is_never_upgraded() {
    let server = TestServer::start();
    let (head, body) = answer(
        &server,
        "HEAD",
        "/ws",
        &format!(
            "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {KEY}\r\n\
             Sec-WebSocket-Version: 13\r\n"
        ),
    );
    assert!(head.starts_with("HTTP/1.1 400 "), "{head}");
    assert_eq!(
        content_length(&head),
        "a WebSocket upgrade must be a GET, not a HEAD\n".len()
    );
    assert!(body.is_empty(), "{body:?}");
    let (head, _) = answer(&server, "HEAD", "/ws", "");
    assert!(head.starts_with("HTTP/1.1 426 "), "{head}");
    assert!(head.contains("Sec-WebSocket-Version: 13\r\n"), "{head}");
}

#[test]
fn a_wrong_version_or_a_plain_get_on_a_websocket_path_is_426() {
    let server = TestServer::start();
    let (head, _) = refused(&server, &upgrade_with("/echo", "x", "", KEY, "8"), "426");
    assert!(head.contains("Sec-WebSocket-Version: 13\r\n"), "{head}");
    refused(&server, "GET /echo HTTP/1.1\r\nHost: x\r\n\r\n", "426");
}

#[test]
fn headers_over_the_limits_are_431() {
    let server = TestServer::with(|c| {
        c.max_header_bytes = 2048;
        c.max_headers = 8;
    });
    let big = format!("X-Big: {}\r\n", "a".repeat(4096));
    refused(&server, &upgrade_with("/echo", "x", &big, KEY, "13"), "431");
    let many: String = (0..10).map(|i| format!("X-H{i}: v\r\n")).collect();
    refused(
        &server,
        &upgrade_with("/echo", "x", &many, KEY, "13"),
        "431",
    );
}

#[test]
fn http_1_0_is_505() {
    let server = TestServer::start();
    refused(&server, "GET /echo HTTP/1.0\r\nHost: x\r\n\r\n", "505");
}

#[test]
fn a_request_trickling_in_a_byte_at_a_time_still_upgrades() {
    let server = TestServer::start();
    let mut s = connect(server.addr);
    for b in upgrade_request("/echo", server.addr).bytes() {
        s.write_all(&[b]).unwrap();
    }
    let head = read_head(&mut s);
    assert!(head.starts_with("HTTP/1.1 101 "), "{head}");
}

#[test]
fn healthz_says_ok() {
    let server = TestServer::start();
    assert_eq!(http_get(server.addr, "/healthz").trim(), "ok");
}

#[test]
fn metrics_count_handshakes_messages_and_refusals() {
    let server = TestServer::start();
    assert_echo_works(server.addr);
    refused(&server, &upgrade_with("/nope", "x", "", KEY, "13"), "404");
    let metrics = http_get(server.addr, "/metrics");
    for line in [
        "# TYPE ringcast_connections_open gauge",
        "# TYPE ringcast_messages_in_total counter",
        "ringcast_handshakes_rejected_total{reason=\"not_found\"} 1",
        "ringcast_closes_total{code=\"1000\"} ",
    ] {
        assert!(metrics.contains(line), "missing {line:?} in\n{metrics}");
    }
    let accepted: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("ringcast_handshakes_accepted_total "))
        .unwrap()
        .parse()
        .unwrap();
    assert!(accepted >= 2, "{metrics}");
}

#[test]
fn upgrades_past_the_connection_cap_get_503_with_retry_after_until_a_slot_frees() {
    let server = TestServer::with(|c| c.max_connections = 2);
    let first = ws_connect(server.addr, "/echo");
    let _second = ws_connect(server.addr, "/echo");
    let (head, body) = http_request(server.addr, &upgrade_request("/echo", server.addr));
    assert!(head.starts_with("HTTP/1.1 503 "), "{head}");
    assert!(head.contains("Retry-After: "), "{head}");
    assert_eq!(body.trim(), "connection limit reached");
    // Plain endpoints are not WebSocket sessions: still served at the cap.
    assert_eq!(http_get(server.addr, "/healthz").trim(), "ok");
    // The slot frees once the server has torn the first client down.
    hang_up_and_wait(first);
    let mut s = connect(server.addr);
    let head = send_request(&mut s, upgrade_request("/echo", server.addr).as_bytes());
    assert!(
        head.starts_with("HTTP/1.1 101 "),
        "the slot never freed: {head}"
    );
}
