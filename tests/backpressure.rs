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
    while let Ok(f) = read_frame(&mut slow) {
        if f.opcode == 8 {
            assert_eq!(f.close_code(), Some(1008));
            assert_eq!(f.close_reason(), "slow consumer");
            break;
        }
    }
    assert!(slow_consumers(server.addr) >= 1);
    assert_echo_works(server.addr);
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
