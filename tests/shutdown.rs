//! Graceful shutdown: every connection gets Close 1001 "going away", /healthz turns 503 while
//! draining, and the process exits 0 once the drain completes. A second signal exits at once.

mod common;

use std::io::Write;
use std::process::Command;
use std::time::Duration;

use common::*;

#[test]
fn shutdown_sends_1001_to_every_connection_and_the_workers_exit() {
    let server = TestServer::start();
    let mut clients: Vec<_> = (0..50).map(|_| ws_connect(server.addr, "/echo")).collect();
    server.begin_shutdown();
    for s in &mut clients {
        let close = read_close(s);
        assert_eq!(close.close_code(), Some(1001));
        assert_eq!(close.close_reason(), "going away");
        s.write_all(&client_frame(true, 8, &close_payload(1001, "")))
            .unwrap();
        assert_tcp_closed(s);
    }
    server.shutdown();
}

#[test]
fn while_draining_healthz_is_503_and_new_upgrades_are_refused() {
    let server = TestServer::with(|c| c.drain_timeout = Duration::from_secs(3));
    // One client that never answers keeps the drain going.
    let mut lingering = ws_connect(server.addr, "/echo");
    server.begin_shutdown();
    assert_eq!(read_close(&mut lingering).close_code(), Some(1001));
    let (head, body) = http_request(server.addr, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(head.starts_with("HTTP/1.1 503 "), "{head}");
    assert_eq!(body.trim(), "draining");
    let (head, _) = http_request(server.addr, &upgrade_request("/echo", server.addr));
    assert!(head.starts_with("HTTP/1.1 503 "), "{head}");
    assert!(head.contains("Retry-After: "), "{head}");
}

fn spawn_server() -> (std::process::Child, std::net::SocketAddr) {
    let (child, addr, _log) = spawn_binary(
        env!("CARGO_BIN_EXE_ringcast"),
        &["--workers", "2", "--drain-timeout", "3s"],
    );
    (child, addr)
}

fn signal(child: &std::process::Child, sig: &str) {
    let ok = Command::new("kill")
        .args([&format!("-{sig}"), &child.id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok);
}

#[test]
fn sigterm_drains_and_the_process_exits_0() {
    let (mut child, addr) = spawn_server();
    let mut clients: Vec<_> = (0..10).map(|_| ws_connect(addr, "/echo")).collect();
    signal(&child, "TERM");
    for s in &mut clients {
        assert_eq!(read_close(s).close_code(), Some(1001));
        s.write_all(&client_frame(true, 8, &close_payload(1001, "")))
            .unwrap();
    }
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0));
}

#[test]
fn a_second_signal_exits_at_once() {
    let (mut child, addr) = spawn_server();
    // A client that never answers keeps the drain waiting for its full timeout.
    let mut s = ws_connect(addr, "/echo");
    signal(&child, "INT");
    assert_eq!(read_close(&mut s).close_code(), Some(1001));
    signal(&child, "INT");
    let status = child.wait().unwrap();
    assert_ne!(
        status.code(),
        Some(0),
        "the second signal cuts the drain short"
    );
}
