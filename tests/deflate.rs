//! permessage-deflate (RFC 7692) end to end over real sockets: the negotiation answer, compressed
//! echo in each mode, the RSV1 rules, the inflate bound, and room fan-out in two encodings.
//!
//! The client side compresses and inflates with `flate2` directly, not with the crate's codec.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};

use common::*;
use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress};
use ringcast::config::CompressionMode;

/// RFC 7692 §7.2.3.1: "Hello" compressed.
const HELLO_Z: [u8; 7] = [0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00];

const RSV1: u8 = 0b100;

/// Upgrades with `extensions` offered; returns the stream and the response head.
fn ws_connect_offering(addr: SocketAddr, path: &str, extensions: &str) -> (TcpStream, String) {
    let mut s = connect(addr);
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 13\r\n\
         Sec-WebSocket-Extensions: {extensions}\r\n\r\n"
    );
    let head = send_request(&mut s, request.as_bytes());
    assert!(head.starts_with("HTTP/1.1 101 "), "{head}");
    (s, head)
}

fn extensions_header(head: &str) -> Option<&str> {
    head.lines()
        .find_map(|l| l.strip_prefix("Sec-WebSocket-Extensions: "))
}

/// One server frame with its RSV bits and the exact bytes it occupied on the wire.
struct RawFrame {
    rsv: u8,
    opcode: u8,
    payload: Vec<u8>,
    wire: Vec<u8>,
}

fn read_raw(s: &mut TcpStream) -> RawFrame {
    let mut head = [0u8; 2];
    s.read_exact(&mut head).unwrap();
    let mut wire = head.to_vec();
    let len = match head[1] & 0x7f {
        126 => {
            let mut b = [0u8; 2];
            s.read_exact(&mut b).unwrap();
            wire.extend_from_slice(&b);
            u16::from_be_bytes(b) as usize
        }
        127 => {
            let mut b = [0u8; 8];
            s.read_exact(&mut b).unwrap();
            wire.extend_from_slice(&b);
            u64::from_be_bytes(b) as usize
        }
        n => n as usize,
    };
    let mut payload = vec![0u8; len];
    s.read_exact(&mut payload).unwrap();
    wire.extend_from_slice(&payload);
    RawFrame {
        rsv: (head[0] >> 4) & 7,
        opcode: head[0] & 0x0f,
        payload,
        wire,
    }
}

/// §7.2.2 done by hand with flate2: append `00 00 ff ff`, inflate.
fn inflate(d: &mut Decompress, payload: &[u8]) -> Vec<u8> {
    let mut input = payload.to_vec();
    input.extend_from_slice(&[0, 0, 0xff, 0xff]);
    let mut out = Vec::with_capacity(1 << 20);
    d.decompress_vec(&input, &mut out, FlushDecompress::Sync)
        .unwrap();
    out
}

/// §7.2.1 done by hand with flate2: compress, sync flush, drop `00 00 ff ff`.
fn deflate(c: &mut Compress, message: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(message.len() + 64);
    c.compress_vec(message, &mut out, FlushCompress::Sync)
        .unwrap();
    assert!(out.ends_with(&[0, 0, 0xff, 0xff]));
    out.truncate(out.len() - 4);
    out
}

fn json_message(n: usize) -> Vec<u8> {
    let mut s = String::from("[");
    for i in 0..n {
        s.push_str(&format!(
            "{{\"id\":{i},\"user\":\"user-{}\",\"text\":\"the quick brown fox\"}},",
            i % 7
        ));
    }
    s.push_str("{}]");
    s.into_bytes()
}

#[test]
fn shared_mode_answers_no_context_takeover_and_echoes_compressed() {
    let server = TestServer::start();
    let (mut s, head) = ws_connect_offering(
        server.addr,
        "/echo",
        "permessage-deflate; client_max_window_bits",
    );
    assert_eq!(
        extensions_header(&head),
        Some("permessage-deflate; server_no_context_takeover; client_no_context_takeover")
    );
    // Below the 256-byte threshold (`compression_min_size`) the echo goes plain, RSV1 clear.
    s.write_all(&client_frame_rsv(true, RSV1, 1, &HELLO_Z))
        .unwrap();
    let f = read_raw(&mut s);
    assert_eq!((f.rsv, f.opcode, &f.payload[..]), (0, 1, &b"Hello"[..]));
    // A larger message comes back compressed; each one inflates on its own. The client was told
    // `client_no_context_takeover`, so it starts each message from an empty window too.
    let message = json_message(40);
    for _ in 0..2 {
        let mut c = Compress::new(Compression::default(), false);
        s.write_all(&client_frame_rsv(true, RSV1, 1, &deflate(&mut c, &message)))
            .unwrap();
        let f = read_raw(&mut s);
        assert_eq!((f.rsv, f.opcode), (RSV1, 1));
        assert!(f.payload.len() < message.len() / 3, "{}", f.payload.len());
        assert_eq!(inflate(&mut Decompress::new(false), &f.payload), message);
    }
    // Plain messages still pass on a connection that negotiated the extension.
    s.write_all(&client_frame(true, 2, &message)).unwrap();
    let f = read_raw(&mut s);
    assert_eq!(f.rsv, RSV1);
    assert_eq!(inflate(&mut Decompress::new(false), &f.payload), message);
}

#[test]
fn dedicated_mode_keeps_the_context_across_messages() {
    let server = TestServer::with(|c| c.compression = CompressionMode::Dedicated);
    let (mut s, head) = ws_connect_offering(server.addr, "/echo", "permessage-deflate");
    assert_eq!(extensions_header(&head), Some("permessage-deflate"));
    let message = json_message(40);
    let mut c = Compress::new(Compression::default(), false);
    let mut d = Decompress::new(false);
    let mut sizes = Vec::new();
    for _ in 0..3 {
        // The client keeps its context too: the server's inflater must have kept its window.
        s.write_all(&client_frame_rsv(true, RSV1, 1, &deflate(&mut c, &message)))
            .unwrap();
        let f = read_raw(&mut s);
        assert_eq!(f.rsv, RSV1);
        assert_eq!(inflate(&mut d, &f.payload), message);
        sizes.push(f.payload.len());
    }
    assert!(
        sizes[1] < sizes[0] / 2,
        "the repeat refers back to the first: {sizes:?}"
    );
}

/// How long an echo connection waits here for the server to park it: the driver parks a
/// connection after 1 s without traffic (`PARK_AFTER`, src/driver/connection.rs), checked on its
/// timer; twice that leaves room for a busy machine. Time itself is the input here (there is no
/// event to wait for: parking is invisible on the wire, which is what this test checks).
const PARKED: std::time::Duration = std::time::Duration::from_millis(2500);

#[test]
fn a_dedicated_connection_parks_without_losing_the_contexts_it_must_keep() {
    let server = TestServer::with(|c| c.compression = CompressionMode::Dedicated);
    let message = json_message(40);
    // (offer, answer, whether the server keeps its context between messages)
    let cases = [
        // The server's context holds nothing between messages: parking releases it. The
        // client's window must stay: its next message refers back across the park.
        (
            "permessage-deflate; server_no_context_takeover",
            "permessage-deflate; server_no_context_takeover",
            false,
        ),
        // Context takeover both ways (what a browser gets in this mode): both stay.
        ("permessage-deflate", "permessage-deflate", true),
    ];
    let mut conns = Vec::new();
    for (offer, answer, server_takeover) in cases {
        let (mut s, head) = ws_connect_offering(server.addr, "/echo", offer);
        assert_eq!(extensions_header(&head), Some(answer));
        let mut c = Compress::new(Compression::default(), false);
        let mut d = Decompress::new(false);
        s.write_all(&client_frame_rsv(true, RSV1, 1, &deflate(&mut c, &message)))
            .unwrap();
        let f = read_raw(&mut s);
        assert_eq!(f.rsv, RSV1);
        assert_eq!(inflate(&mut d, &f.payload), message);
        conns.push((s, c, d, server_takeover, f.payload.len()));
    }
    std::thread::sleep(PARKED);
    for (mut s, mut c, mut d, server_takeover, first) in conns {
        // Compressed against the client's window: it inflates only if the server kept it.
        let z = deflate(&mut c, &message);
        assert!(z.len() < first / 2, "the repeat refers back: {} B", z.len());
        s.write_all(&client_frame_rsv(true, RSV1, 1, &z)).unwrap();
        let f = read_raw(&mut s);
        assert_eq!(
            f.rsv, RSV1,
            "no close: the inflate window survived the park"
        );
        if server_takeover {
            assert_eq!(inflate(&mut d, &f.payload), message);
            assert!(
                f.payload.len() < first / 2,
                "the server's context survived the park: {} B after {first} B",
                f.payload.len()
            );
        } else {
            // A fresh context: a stream that stands alone, as long as the first.
            assert_eq!(inflate(&mut Decompress::new(false), &f.payload), message);
            assert_eq!(f.payload.len(), first);
        }
    }
}

#[test]
fn a_client_window_of_8_bits_gets_plain_frames_but_may_still_compress() {
    let server = TestServer::with(|c| c.compression = CompressionMode::Dedicated);
    let (mut s, head) = ws_connect_offering(
        server.addr,
        "/echo",
        "permessage-deflate; server_max_window_bits=8",
    );
    assert_eq!(
        extensions_header(&head),
        Some("permessage-deflate; server_max_window_bits=8")
    );
    let message = json_message(20);
    let mut c = Compress::new(Compression::default(), false);
    s.write_all(&client_frame_rsv(true, RSV1, 1, &deflate(&mut c, &message)))
        .unwrap();
    let f = read_raw(&mut s);
    assert_eq!((f.rsv, &f.payload[..]), (0, &message[..]));
}

#[test]
fn off_mode_declines_and_rsv1_is_then_a_protocol_error() {
    let server = TestServer::with(|c| c.compression = CompressionMode::Off);
    let (mut s, head) = ws_connect_offering(server.addr, "/echo", "permessage-deflate");
    assert_eq!(extensions_header(&head), None);
    s.write_all(&client_frame_rsv(true, RSV1, 1, &HELLO_Z))
        .unwrap();
    let close = read_close(&mut s);
    assert_eq!(close.close_code(), Some(1002));
    assert_tcp_closed(&mut s);
}

#[test]
fn a_declined_offer_leaves_the_connection_uncompressed() {
    let server = TestServer::start();
    let (mut s, head) = ws_connect_offering(
        server.addr,
        "/echo",
        "permessage-deflate; server_max_window_bits=20",
    );
    assert_eq!(extensions_header(&head), None);
    let message = json_message(20);
    s.write_all(&client_frame(true, 1, &message)).unwrap();
    let f = read_raw(&mut s);
    assert_eq!((f.rsv, &f.payload[..]), (0, &message[..]));
}

#[test]
fn rsv1_on_a_continuation_frame_closes_with_1002() {
    let server = TestServer::start();
    let (mut s, _) = ws_connect_offering(server.addr, "/echo", "permessage-deflate");
    s.write_all(&client_frame_rsv(false, RSV1, 1, &HELLO_Z[..3]))
        .unwrap();
    s.write_all(&client_frame_rsv(true, RSV1, 0, &HELLO_Z[3..]))
        .unwrap();
    assert_eq!(read_close(&mut s).close_code(), Some(1002));
}

#[test]
fn a_decompression_bomb_closes_with_1009() {
    let server = TestServer::with(|c| {
        c.max_message_size = 64 * 1024;
        c.max_frame_size = 64 * 1024;
    });
    let (mut s, _) = ws_connect_offering(server.addr, "/echo", "permessage-deflate");
    let mut c = Compress::new(Compression::best(), false);
    let bomb = deflate(&mut c, &vec![0u8; 8 << 20]);
    assert!(bomb.len() < 64 * 1024);
    s.write_all(&client_frame_rsv(true, RSV1, 2, &bomb))
        .unwrap();
    let close = read_close(&mut s);
    assert_eq!(close.close_code(), Some(1009));
    assert_tcp_closed(&mut s);
}

/// Sends a text envelope and returns nothing: replies are read by `next_text`.
fn send_json(s: &mut TcpStream, json: &str) {
    s.write_all(&client_frame(true, 1, json.as_bytes()))
        .unwrap();
}

/// Reads frames until a text frame whose (inflated) text contains `needle`.
fn next_containing(s: &mut TcpStream, needle: &str) -> RawFrame {
    loop {
        let f = read_raw(s);
        let text = if f.rsv & RSV1 != 0 {
            inflate(&mut Decompress::new(false), &f.payload)
        } else {
            f.payload.clone()
        };
        if String::from_utf8_lossy(&text).contains(needle) {
            return f;
        }
    }
}

#[test]
fn a_room_message_reaches_deflate_members_as_one_compressed_frame_and_others_plain() {
    let server = TestServer::with(|c| c.workers = 2);
    let mut members: Vec<(TcpStream, bool)> = Vec::new();
    // Enough connections that both workers hold deflate and plain members.
    for i in 0..6 {
        let deflate = i % 2 == 0;
        let s = if deflate {
            ws_connect_offering(server.addr, "/ws", "permessage-deflate").0
        } else {
            ws_connect(server.addr, "/ws")
        };
        members.push((s, deflate));
    }
    for (i, (s, _)) in members.iter_mut().enumerate() {
        send_json(
            s,
            &format!(r#"{{"type":"join","room":"z","id":"j{i}","presence":false}}"#),
        );
        next_containing(s, &format!(r#""id":"j{i}""#));
    }
    let text = String::from_utf8(json_message(30)).unwrap();
    let mut publisher = ws_connect(server.addr, "/ws");
    send_json(
        &mut publisher,
        &format!(r#"{{"type":"publish","room":"z","payload":{text}}}"#),
    );
    let mut compressed = Vec::new();
    let mut plain = Vec::new();
    for (s, deflate) in &mut members {
        let f = next_containing(s, r#""type":"message""#);
        if *deflate {
            assert_eq!(f.rsv, RSV1, "a deflate member gets the compressed frame");
            compressed.push(f.wire);
        } else {
            assert_eq!(f.rsv, 0, "a plain member gets the plain frame");
            plain.push(f.wire);
        }
    }
    assert!(compressed.windows(2).all(|w| w[0] == w[1]), "one encoding");
    assert!(plain.windows(2).all(|w| w[0] == w[1]), "one encoding");
    assert!(compressed[0].len() < plain[0].len() / 2);
}
