//! One address, one server, unless both opt in: a second `ringcast serve` on an address another
//! one serves exits 1 with "address already in use" (the kernel would otherwise split new
//! connections, and rooms, between the two); with `--reuse-port` on both, both serve, which is
//! the hand-over restart: start the new one, SIGTERM the old one, the new one takes every new
//! connection.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

/// How long any one expected event may take.
const DEADLINE: Duration = Duration::from_secs(20);

/// A `ringcast serve` process whose JSON log lines arrive on `log` (closed when it exits).
struct Served {
    child: Child,
    log: Receiver<serde_json::Value>,
}

impl Served {
    fn start(listen: &str, extra: &[&str]) -> Served {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_ringcast"));
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("RINGCAST_") {
                cmd.env_remove(name);
            }
        }
        let mut child = cmd
            .env_remove("RUST_LOG")
            .args(["serve", "--listen", listen, "--workers", "2"])
            .args(["--log-format", "json", "--drain-timeout", "2s"])
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the ringcast binary runs");
        let stderr = child.stderr.take().unwrap();
        let (tx, log) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let value = serde_json::from_str(&line).unwrap_or(serde_json::Value::String(line));
                if tx.send(value).is_err() {
                    break;
                }
            }
        });
        Served { child, log }
    }

    /// Waits for the log line whose message is `message`; `None` if the process exited first.
    fn wait_for(&self, message: &str) -> Option<serde_json::Value> {
        let end = Instant::now() + DEADLINE;
        loop {
            let left = end.saturating_duration_since(Instant::now());
            match self.log.recv_timeout(left) {
                Ok(line) if line["fields"]["message"] == message => return Some(line),
                Ok(_) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => return None,
                Err(mpsc::RecvTimeoutError::Timeout) => panic!("no `{message}` log line in time"),
            }
        }
    }

    /// The address it listens on, once it says so.
    fn listening(&self) -> SocketAddr {
        let line = self
            .wait_for("ringcast listening")
            .expect("the server exited instead of listening");
        line["fields"]["listen"].as_str().unwrap().parse().unwrap()
    }

    /// Every remaining log line, once the process has exited (its stderr closes), and its status.
    fn exit(mut self) -> (Vec<serde_json::Value>, Option<i32>) {
        let mut lines = Vec::new();
        let end = Instant::now() + DEADLINE;
        loop {
            let left = end.saturating_duration_since(Instant::now());
            match self.log.recv_timeout(left) {
                Ok(line) => lines.push(line),
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    let _ = self.child.kill();
                    panic!("the process did not exit in time: {lines:?}");
                }
            }
        }
        (lines, self.child.wait().unwrap().code())
    }

    fn signal(&self, sig: &str) {
        let sent = Command::new("kill")
            .args([&format!("-{sig}"), &self.child.id().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(sent);
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `GET /healthz` answered with 200.
fn healthy(addr: SocketAddr) -> bool {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(DEADLINE)).unwrap();
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut response = String::new();
    let _ = s.read_to_string(&mut response);
    response.starts_with("HTTP/1.1 200 ")
}

fn error_of(lines: &[serde_json::Value]) -> String {
    lines
        .iter()
        .find(|l| l["level"] == "ERROR")
        .map(|l| l["fields"]["error"].as_str().unwrap_or_default().to_owned())
        .unwrap_or_else(|| panic!("no error logged: {lines:?}"))
}

#[test]
fn a_second_server_on_a_served_address_exits_1_saying_it_is_in_use() {
    let first = Served::start("127.0.0.1:0", &[]);
    let addr = first.listening();
    // With or without the option: the first did not opt in, so it keeps the address.
    for extra in [&[][..], &["--reuse-port"][..]] {
        let second = Served::start(&addr.to_string(), extra);
        let (lines, status) = second.exit();
        assert_eq!(status, Some(1), "{extra:?}: {lines:?}");
        let error = error_of(&lines);
        assert!(
            error.starts_with(&format!("cannot listen on {addr}: address already in use")),
            "{error}"
        );
    }
    assert!(healthy(addr), "the first server still serves");
}

#[test]
fn a_server_without_the_option_is_refused_an_address_shared_by_others() {
    let first = Served::start("127.0.0.1:0", &["--reuse-port"]);
    let addr = first.listening();
    let (lines, status) = Served::start(&addr.to_string(), &[]).exit();
    assert_eq!(status, Some(1), "{lines:?}");
    assert!(error_of(&lines).contains("address already in use"));
}

#[test]
fn with_reuse_port_on_both_the_new_server_takes_over_when_the_old_one_drains() {
    let old = Served::start("127.0.0.1:0", &["--reuse-port"]);
    let addr = old.listening();
    let new = Served::start(&addr.to_string(), &["--reuse-port=true"]);
    assert_eq!(new.listening(), addr, "both serve the address");
    old.signal("TERM");
    let (_, status) = old.exit();
    assert_eq!(status, Some(0), "the old server drains and exits 0");
    for _ in 0..20 {
        assert!(healthy(addr), "the new server answers every new connection");
    }
}
