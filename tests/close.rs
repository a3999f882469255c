//! Every way a connection ends: the closing handshake in both directions, protocol errors with
//! their close codes, and a peer that just goes away.

mod common;

use std::io::Write;

use common::*;

#[test]
fn a_client_close_is_echoed_with_its_code_and_the_server_closes_tcp() {
    let server = TestServer::start();
    for code in [1000u16, 1001, 1003, 1011, 3000, 4999] {
        let mut s = ws_connect(server.addr, "/echo");
        s.write_all(&client_frame(true, 8, &close_payload(code, "bye")))
            .unwrap();
        let close = read_close(&mut s);
        assert_eq!(close.close_code(), Some(code));
        assert_tcp_closed(&mut s);
    }
}

#[test]
fn an_empty_close_is_answered_with_an_empty_close() {
    let server = TestServer::start();
    let mut s = ws_connect(server.addr, "/echo");
    s.write_all(&client_frame(true, 8, b"")).unwrap();
    let close = read_close(&mut s);
    assert!(close.payload.is_empty());
    assert_tcp_closed(&mut s);
}

#[test]
fn invalid_close_codes_fail_with_1002() {
    let server = TestServer::start();
    for code in [0u16, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000, 65535] {
        let mut s = ws_connect(server.addr, "/echo");
        s.write_all(&client_frame(true, 8, &close_payload(code, "")))
            .unwrap();
        assert_eq!(read_close(&mut s).close_code(), Some(1002), "code {code}");
        assert_tcp_closed(&mut s);
    }
}

#[test]
fn a_one_byte_close_payload_fails_with_1002() {
    let server = TestServer::start();
    let mut s = ws_connect(server.addr, "/echo");
    s.write_all(&client_frame(true, 8, &[0x03])).unwrap();
    assert_eq!(read_close(&mut s).close_code(), Some(1002));
}

#[test]
fn a_close_reason_that_is_not_utf8_fails_with_1007() {
    let server = TestServer::start();
    let mut s = ws_connect(server.addr, "/echo");
    let mut payload = close_payload(1000, "");
    payload.extend_from_slice(&[
        0xCE, 0xBA, 0xE1, 0xBD, 0xB9, 0xCF, 0x83, 0xCE, 0xBC, 0xCE, 0xB5, 0xED, 0xA0, 0x80,
    ]);
    s.write_all(&client_frame(true, 8, &payload)).unwrap();
    assert_eq!(read_close(&mut s).close_code(), Some(1007));
}

#[test]
fn protocol_violations_fail_with_their_close_code_and_the_server_keeps_serving() {
    let server = TestServer::start();
    let cases: Vec<(&str, Vec<u8>, u16)> = vec![
        ("unmasked frame", unmasked_frame(1, b"hi"), 1002),
        ("reserved opcode 3", client_frame(true, 3, b""), 1002),
        ("reserved opcode 0xB", client_frame(true, 0xB, b""), 1002),
        (
            "RSV1 without extension",
            client_frame_rsv(true, 4, 1, b"x"),
            1002,
        ),
        (
            "RSV3 without extension",
            client_frame_rsv(true, 1, 2, b"x"),
            1002,
        ),
        ("fragmented ping", client_frame(false, 9, b""), 1002),
        (
            "ping of 126 bytes",
            client_frame(true, 9, &[0u8; 126]),
            1002,
        ),
        (
            "continuation with nothing to continue",
            client_frame(true, 0, b"x"),
            1002,
        ),
        (
            "invalid UTF-8 text",
            client_frame(true, 1, &[0xC0, 0xAF]),
            1007,
        ),
        (
            "new data frame inside a fragmented message",
            [client_frame(false, 1, b"a"), client_frame(true, 1, b"b")].concat(),
            1002,
        ),
        (
            "invalid UTF-8 split across fragments",
            [
                client_frame(false, 1, &[0xF0, 0x90]),
                client_frame(true, 0, &[0x28, 0x8C]),
            ]
            .concat(),
            1007,
        ),
        (
            "declared length of 2^63 - 1",
            {
                let mut f = vec![0x82, 0xFF];
                f.extend_from_slice(&(u64::MAX >> 1).to_be_bytes());
                f.extend_from_slice(&[1, 2, 3, 4]);
                f
            },
            1009,
        ),
        (
            "64-bit length with the top bit set",
            {
                let mut f = vec![0x82, 0xFF];
                f.extend_from_slice(&u64::MAX.to_be_bytes());
                f
            },
            1002,
        ),
    ];
    for (name, wire, code) in cases {
        let mut s = ws_connect(server.addr, "/echo");
        s.write_all(&wire).unwrap();
        let close = read_close(&mut s);
        assert_eq!(
            close.close_code(),
            Some(code),
            "{name}: {:?}",
            close.close_reason()
        );
        assert!(
            !close.close_reason().is_empty(),
            "{name}: a close carries a reason"
        );
        assert_tcp_closed(&mut s);
        assert_echo_works(server.addr);
    }
}

#[test]
fn a_message_over_the_size_limit_fails_with_1009_without_buffering_it() {
    let server = TestServer::with(|c| {
        c.max_message_size = 1000;
        c.max_frame_size = 1000;
    });
    let mut s = ws_connect(server.addr, "/echo");
    // Only the header of a 1001-byte frame: the limit is enforced before the payload arrives.
    let frame = client_frame(true, 2, &[0u8; 1001]);
    s.write_all(&frame[..8]).unwrap();
    assert_eq!(read_close(&mut s).close_code(), Some(1009));
    // Fragments that together exceed the message limit.
    let mut s = ws_connect(server.addr, "/echo");
    s.write_all(&client_frame(false, 2, &[0u8; 600])).unwrap();
    s.write_all(&client_frame(true, 0, &[0u8; 600])).unwrap();
    assert_eq!(read_close(&mut s).close_code(), Some(1009));
}

/// Reads frames until the one carrying `needle` (a `/ws` reply), skipping the welcome.
fn read_text_with(s: &mut std::net::TcpStream, needle: &str) -> String {
    loop {
        let f = read_frame(s).unwrap();
        assert_eq!(f.opcode, 1, "{f:?}");
        let text = String::from_utf8(f.payload).unwrap();
        if text.contains(needle) {
            return text;
        }
    }
}

#[test]
fn a_ws_message_is_limited_to_an_envelope_not_to_max_message_size() {
    // Defaults: max_payload_size 64 KiB, so `/ws` takes 64 KiB + 16 KiB of envelope room;
    // `/echo` keeps max_message_size (16 MiB).
    let limit = 64 * 1024 + ringcast::envelope::ENVELOPE_ROOM;
    let server = TestServer::start();
    // A message of exactly the limit is parsed (a 64 KiB payload and a client field of padding).
    let mut s = ws_connect(server.addr, "/ws");
    let head = r#"{"type":"publish","room":"r","id":"big","payload":""#;
    let payload = "x".repeat(64 * 1024 - 2);
    let mut msg = format!(r#"{head}{payload}","pad":""#);
    msg.push_str(&"p".repeat(limit - msg.len() - 2));
    msg.push_str(r#""}"#);
    assert_eq!(msg.len(), limit);
    s.write_all(&client_frame(true, 1, msg.as_bytes())).unwrap();
    assert!(read_text_with(&mut s, r#""id":"big""#).contains(r#""ok":true"#));
    // One byte more: 1009 naming the limit, on the header alone (nothing else is sent).
    let frame = client_frame(true, 1, &vec![b' '; limit + 1]);
    s.write_all(&frame[..14]).unwrap();
    let close = read_close(&mut s);
    assert_eq!(close.close_code(), Some(1009));
    assert_eq!(
        close.close_reason(),
        format!("message too big (limit {limit} bytes)")
    );
    // Fragments crossing the limit: refused on the fragment that crosses it.
    let mut s = ws_connect(server.addr, "/ws");
    s.write_all(&client_frame(false, 1, &vec![b' '; limit - 10]))
        .unwrap();
    let frame = client_frame(true, 0, &[b' '; 11]);
    s.write_all(&frame[..6]).unwrap();
    let close = loop {
        let f = read_frame(&mut s).unwrap();
        if f.opcode == 8 {
            break f;
        }
        assert_eq!(f.opcode, 1, "only the welcome comes first: {f:?}");
    };
    assert_eq!(close.close_code(), Some(1009));
    // `/echo` still takes a message far larger.
    let mut s = ws_connect(server.addr, "/echo");
    let big = vec![7u8; 1 << 20];
    s.write_all(&client_frame(true, 2, &big)).unwrap();
    assert_eq!(read_frame(&mut s).unwrap().payload, big);
}

#[test]
fn a_peer_that_drops_tcp_without_a_close_frees_its_slot() {
    let server = TestServer::start();
    let peers: Vec<_> = (0..20).map(|_| ws_connect(server.addr, "/echo")).collect();
    for s in peers {
        hang_up_and_wait(s);
    }
    // Every peer is torn down (the server answered each FIN with its own): the gauge is back to 0.
    // Read before the echo check below, whose own connection is still open a moment after it.
    let metrics = http_get(server.addr, "/metrics");
    assert!(
        metrics.contains("\nringcast_connections_open 0\n"),
        "connections never closed:\n{metrics}"
    );
    assert_echo_works(server.addr);
}

/// Autobahn 3.2, 4.1.3, 5.15: a valid message arriving in the same read as a violation is echoed
/// before the connection is failed.
#[test]
fn a_valid_message_in_front_of_a_violation_is_echoed_before_the_close() {
    let server = TestServer::start();
    let violations: Vec<(&str, Vec<u8>, u16)> = vec![
        ("RSV bits", client_frame_rsv(true, 2, 1, b""), 1002),
        ("reserved opcode", client_frame(true, 3, b""), 1002),
        (
            "continuation with nothing to continue",
            client_frame(false, 0, b"x"),
            1002,
        ),
    ];
    for (name, violation, code) in violations {
        let mut s = ws_connect(server.addr, "/echo");
        let wire = [
            client_frame(true, 1, b"Hello, world!"),
            violation,
            client_frame(true, 9, b""),
        ]
        .concat();
        s.write_all(&wire).unwrap();
        let echo = read_frame(&mut s).unwrap();
        assert_eq!(
            (echo.opcode, echo.payload.as_slice()),
            (1, &b"Hello, world!"[..]),
            "{name}"
        );
        assert_eq!(read_close(&mut s).close_code(), Some(code), "{name}");
    }
}
