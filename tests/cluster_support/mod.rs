//! Cluster test support: a throwaway `redis-server` on a free loopback port, and ringcast nodes
//! as real processes pointed at it.
//!
//! Never uses a Redis the machine happens to run (the port is picked free, never 6379); every
//! process started here is killed when its handle drops. Waits are for the event itself (a
//! `PONG`, a log line, a `/healthz` line) with a bounded deadline, never a sleep to a state.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Guards against a broken setup hanging the run; never part of an assertion.
const DEADLINE: Duration = Duration::from_secs(15);

/// The redis-server binary (Debian package `redis-server`; the CI script must install it).
fn redis_server() -> &'static str {
    if std::path::Path::new("/usr/bin/redis-server").exists() {
        "/usr/bin/redis-server"
    } else {
        "redis-server"
    }
}

/// One redis-server process on `127.0.0.1:port`, without persistence.
pub struct Redis {
    pub port: u16,
    child: Option<Child>,
}

impl Redis {
    /// Starts one on a free loopback port and returns once it answers `PING`.
    pub fn start() -> Redis {
        let port = free_port();
        assert_ne!(port, 6379, "tests never use the machine's Redis port");
        let mut redis = Redis { port, child: None };
        redis.restart();
        redis
    }

    /// `redis://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// SIGKILL: the process dies at once, every connection to it is cut, its data is gone.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it (again) on the same port, empty, and waits for `PING`.
    pub fn restart(&mut self) {
        self.kill9();
        let child = Command::new(redis_server())
            .args([
                "--port",
                &self.port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect(
                "redis-server runs (Debian package redis-server; the CI script must install it)",
            );
        self.child = Some(child);
        let until = Instant::now() + DEADLINE;
        loop {
            if self.ping() {
                return;
            }
            assert!(Instant::now() < until, "redis-server did not answer PING");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Whether it answers `PING` with `+PONG`.
    pub fn ping(&self) -> bool {
        self.command("PING\r\n").starts_with("+PONG")
    }

    /// Sends one inline command and returns the first reply line (empty when unreachable).
    pub fn command(&self, line: &str) -> String {
        let Ok(mut s) = TcpStream::connect(("127.0.0.1", self.port)) else {
            return String::new();
        };
        let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
        if s.write_all(line.as_bytes()).is_err() {
            return String::new();
        }
        let mut buf = [0u8; 256];
        let n = s.read(&mut buf).unwrap_or(0);
        String::from_utf8_lossy(&buf[..n]).into_owned()
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// A port nothing listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// One ringcast node process (`ringcast serve --listen 127.0.0.1:0 --cluster URL …`).
pub struct Node {
    pub addr: SocketAddr,
    child: Option<Child>,
    pub log: Arc<Mutex<String>>,
}

impl Node {
    /// Starts a node on `redis` with extra `args`; returns once it listens and its bridge is
    /// connected (its `/healthz` says so).
    pub fn start(redis: &Redis, args: &[&str]) -> Node {
        let url = redis.url();
        let mut all = vec!["--cluster", url.as_str()];
        all.extend_from_slice(args);
        let (child, addr, log) = spawn_binary(&all);
        let node = Node {
            addr,
            child: Some(child),
            log,
        };
        node.wait_health("cluster: connected");
        node
    }

    /// The server API's address of a node started with `--api-listen 127.0.0.1:0`, from the
    /// line it logs when the API listens (logged right after the main listening line; waited
    /// for, bounded).
    pub fn api_addr(&self) -> SocketAddr {
        let until = Instant::now() + DEADLINE;
        loop {
            let found = self.log.lock().unwrap().lines().find_map(|line| {
                line.contains("ringcast API listening")
                    .then(|| {
                        line.split_whitespace()
                            .find_map(|field| field.strip_prefix("api="))
                    })
                    .flatten()
                    .map(|a| a.parse().expect("a socket address"))
            });
            if let Some(addr) = found {
                return addr;
            }
            assert!(
                Instant::now() < until,
                "the node never logged its API address; log:\n{}",
                self.log.lock().unwrap()
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// `ws://ADDR/path`.
    pub fn url(&self, path: &str) -> String {
        format!("ws://{}{}", self.addr, path)
    }

    /// The body of `GET path`.
    pub fn get(&self, path: &str) -> String {
        let Ok(mut s) = TcpStream::connect(self.addr) else {
            return String::new();
        };
        let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
        let req = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        if s.write_all(req.as_bytes()).is_err() {
            return String::new();
        }
        let mut out = String::new();
        let _ = s.read_to_string(&mut out);
        out
    }

    /// Waits (bounded) until `/healthz` contains `line`.
    pub fn wait_health(&self, line: &str) {
        let until = Instant::now() + DEADLINE;
        loop {
            let body = self.get("/healthz");
            if body.contains(line) {
                return;
            }
            assert!(
                Instant::now() < until,
                "/healthz never said {line:?}; last:\n{body}\nlog:\n{}",
                self.log.lock().unwrap()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILL: no drain, no goodbye.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Whether the process is still running.
    pub fn alive(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// Starts the `ringcast` binary with `args` (plus `--listen 127.0.0.1:0`) and returns once it
/// logs that it is listening ([`crate::common::spawn_binary`]).
pub fn spawn_binary(args: &[&str]) -> (Child, SocketAddr, Arc<Mutex<String>>) {
    crate::common::spawn_binary(env!("CARGO_BIN_EXE_ringcast"), args)
}
