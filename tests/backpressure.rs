//! A client that stops reading never makes the server buffer without bound, and costs other
//! clients nothing.

mod common;

use std::io::Write;
use std::time::Duration;

use common::*;
use ringcast::config::BackpressurePolicy;

/// Writes echo requests without ever reading, until the server stops accepting input or ends the
/// connection. Returns how many bytes were written.
fn flood_without_reading(s: &mut std::net::TcpStream, budget: usize) -> usize {
    s.set_write_timeout(Some(Duration::from_secs(2))).unwrap();
    let frame = client_frame(true, 2, &vec![0x5A; 64 * 1024]);
    let mut written = 0;
    while written < budget {
        match s.write_all(&frame) {
            Ok(()) => written += frame.len(),
            Err(_) => break, // blocked (server stopped reading) or reset (server closed)
        }
    }
    written
}

fn slow_consumers(addr: std::net::SocketAddr) -> u64 {
    http_get(addr, "/metrics")
        .lines()
        .find_map(|l| l.strip_prefix("ringcast_slow_consumers_total "))
        .unwrap()
        .parse()
        .unwrap()
}

#[test]
fn a_client_that_never_reads_is_closed_as_a_slow_consumer_while_others_carry_on() {
    let server = TestServer::with(|c| {
        c.max_backpressure = 256 * 1024;
        c.close_timeout = Duration::from_millis(300);
    });
    let mut slow = ws_connect(server.addr, "/echo");
    let mut others: Vec<_> = (0..4).map(|_| ws_connect(server.addr, "/echo")).collect();
    flood_without_reading(&mut slow, 256 << 20);
    // The others are unaffected.
    for s in &mut others {
        s.write_all(&client_frame(true, 1, b"hello")).unwrap();
        assert_eq!(read_frame(s).unwrap().payload, b"hello");
    }
    // The slow one was closed: reading now drains echoes, then either our 1008 close or the end
    // of TCP (the close frame can be stuck behind a full socket buffer until the close timeout
    // drops the connection). Whatever arrives, a close frame says 1008 "slow consumer".
    slow.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    drain_until_closed(&mut slow);
    assert_eq!(
        slow_consumers(server.addr),
        1,
        "one slow consumer, counted once"
    );
    assert_echo_works(server.addr);
}

/// Reads what a closed slow consumer still gets: echoes or room messages, then either our 1008
/// close (answered, as a browser does, so the server reads again) or the end of TCP (the close
/// frame can be stuck behind a full socket buffer until the close timeout drops the connection).
/// Returns once the server has let go of the connection: `true` when the close frame arrived.
fn drain_until_closed(slow: &mut std::net::TcpStream) -> bool {
    slow.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    while let Ok(f) = read_frame(slow) {
        if f.opcode == 8 {
            assert_eq!(f.close_code(), Some(1008));
            assert_eq!(f.close_reason(), "slow consumer");
            let _ = slow.write_all(&client_frame(true, 8, &close_payload(1008, "")));
            let _ = read_to_end(slow);
            return true;
        }
    }
    false
}

/// Reads frames until the `/ws` reply carrying `id`.
fn ws_reply(s: &mut std::net::TcpStream, id: &str) -> String {
    let needle = format!("\"type\":\"reply\",\"id\":\"{id}\"");
    loop {
        let f = read_frame(s).unwrap();
        let text = String::from_utf8(f.payload).unwrap();
        if text.contains(&needle) {
            return text;
        }
    }
}

#[test]
fn a_ws_member_that_never_reads_is_counted_once_as_a_slow_consumer() {
    // A close timeout long enough for the drain below to reach the close frame and answer it.
    let server = TestServer::with(|c| {
        c.max_backpressure = 256 * 1024;
        c.close_timeout = Duration::from_secs(10);
    });
    let mut slow = ws_connect(server.addr, "/ws");
    let join = br#"{"type":"join","room":"flood","id":"j","presence":false}"#;
    slow.write_all(&client_frame(true, 1, join)).unwrap();
    assert!(ws_reply(&mut slow, "j").contains("\"ok\":true"));
    // From here on `slow` reads nothing; the publisher reads every reply.
    let mut publisher = ws_connect(server.addr, "/ws");
    let text = "x".repeat(60 * 1024);
    let mut n = 0;
    while slow_consumers(server.addr) == 0 {
        assert!(n < 4096, "no slow consumer after {n} publishes of 60 KiB");
        for _ in 0..16 {
            n += 1;
            let msg = format!(
                r#"{{"type":"publish","room":"flood","id":"p{n}","echo":false,"payload":"{text}"}}"#
            );
            publisher
                .write_all(&client_frame(true, 1, msg.as_bytes()))
                .unwrap();
            assert!(ws_reply(&mut publisher, &format!("p{n}")).contains("\"ok\":true"));
        }
    }
    assert!(
        drain_until_closed(&mut slow),
        "the close frame arrives and is answered"
    );
    assert_eq!(
        slow_consumers(server.addr),
        1,
        "one slow consumer, counted once"
    );
}

#[test]
fn under_the_drop_policy_a_slow_client_loses_data_but_keeps_its_connection() {
    let server = TestServer::with(|c| {
        c.max_backpressure = 256 * 1024;
        c.backpressure_policy = BackpressurePolicy::Drop;
    });
    let mut slow = ws_connect(server.addr, "/echo");
    flood_without_reading(&mut slow, 64 << 20);
    assert!(slow_consumers(server.addr) >= 1, "drops are counted");
    // The connection still works: the echo of a marker arrives behind whatever was kept.
    slow.write_all(&client_frame(true, 1, b"after")).unwrap();
    let mut kept = 0;
    loop {
        let f = read_frame(&mut slow).unwrap();
        if f.opcode == 1 {
            assert_eq!(f.payload, b"after");
            break;
        }
        assert_eq!(f.opcode, 2);
        kept += 1;
    }
    assert!(
        kept < 64 * 16,
        "some echoes were dropped, not all kept ({kept})"
    );
}
