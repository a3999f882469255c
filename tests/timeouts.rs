//! Heartbeats and timeouts, with short values: a silent client is pinged, a client that stays
//! silent is closed and its slot freed, a client that answers stays, and a handshake that never
//! completes (slowloris) is dropped.

mod common;

use std::io::Write;
use std::time::Duration;

use common::*;

fn short_timeouts() -> TestServer {
    TestServer::with(|c| {
        c.ping_interval = Duration::from_millis(200);
        c.idle_timeout = Duration::from_millis(600);
        c.handshake_timeout = Duration::from_millis(300);
        c.close_timeout = Duration::from_millis(300);
    })
}

#[test]
fn a_silent_client_is_pinged_then_closed_with_1001_and_its_slot_freed() {
    let server = short_timeouts();
    let mut s = ws_connect(server.addr, "/echo");
    let ping = read_frame(&mut s).unwrap();
    assert_eq!(ping.opcode, 9, "the heartbeat pings first: {ping:?}");
    let close = read_frame(&mut s).unwrap();
    assert_eq!(close.close_code(), Some(1001), "then closes: {close:?}");
    assert_eq!(close.close_reason(), "idle timeout");
    assert_tcp_closed(&mut s);
    assert_echo_works(server.addr);
}

#[test]
fn a_client_that_answers_pings_stays_connected_past_the_idle_timeout() {
    let server = short_timeouts();
    let mut s = ws_connect(server.addr, "/echo");
    for _ in 0..4 {
        let ping = read_frame(&mut s).unwrap();
        assert_eq!(ping.opcode, 9);
        s.write_all(&client_frame(true, 0xA, &ping.payload))
            .unwrap();
    }
    // Four ping rounds took longer than the idle timeout; the connection still echoes.
    s.write_all(&client_frame(true, 1, b"still here")).unwrap();
    loop {
        let f = read_frame(&mut s).unwrap();
        if f.opcode == 9 {
            s.write_all(&client_frame(true, 0xA, &f.payload)).unwrap();
            continue;
        }
        assert_eq!((f.opcode, f.payload.as_slice()), (1, &b"still here"[..]));
        break;
    }
}

#[test]
fn a_half_open_client_is_dropped_even_though_it_never_answers_the_close() {
    let server = short_timeouts();
    let mut s = ws_connect(server.addr, "/echo");
    // Never answer anything: ping, close, then the server must drop TCP on its own.
    assert_eq!(read_frame(&mut s).unwrap().opcode, 9);
    assert_eq!(read_frame(&mut s).unwrap().close_code(), Some(1001));
    assert_tcp_closed(&mut s);
}

#[test]
fn a_handshake_that_never_completes_is_dropped() {
    let server = short_timeouts();
    let mut s = connect(server.addr);
    s.write_all(b"GET /echo HTTP/1.1\r\nHost: x\r\n").unwrap();
    // The slowloris keeps the request open; the server drops it when the handshake timeout passes.
    let rest = read_to_end(&mut s);
    assert!(
        rest.is_empty() || String::from_utf8_lossy(&rest).starts_with("HTTP/1.1 408"),
        "{rest:?}"
    );
    assert_echo_works(server.addr);
    let metrics = http_get(server.addr, "/metrics");
    assert!(
        metrics.contains("ringcast_handshakes_rejected_total{reason=\"timeout\"} 1\n"),
        "{metrics}"
    );
}

#[test]
fn a_peer_that_never_answers_our_close_is_dropped_after_the_close_timeout() {
    let server = TestServer::with(|c| {
        c.close_timeout = Duration::from_millis(200);
        c.drain_timeout = Duration::from_secs(5);
    });
    let mut s = ws_connect(server.addr, "/echo");
    server.begin_shutdown();
    assert_eq!(read_close(&mut s).close_code(), Some(1001));
    // No reply: the server drops TCP by itself, long before the drain timeout.
    assert_tcp_closed(&mut s);
}
