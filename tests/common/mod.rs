//! Shared test support: an in-process server on 127.0.0.1:0 and a raw, blocking WebSocket client
//! written independently of the crate's own codec (frames are built and parsed by hand here, so a
//! bug in `proto` cannot hide itself).

#![allow(dead_code)]

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use ringcast::config::Config;
use ringcast::driver::Server;

/// A server that shuts down (drain) when dropped.
pub struct TestServer {
    server: Option<Server>,
    pub addr: SocketAddr,
}

impl TestServer {
    /// Two workers, default limits, short timeouts unless the test changes them.
    pub fn start() -> TestServer {
        Self::with(|_| {})
    }

    pub fn with(tweak: impl FnOnce(&mut Config)) -> TestServer {
        let mut config = Config {
            listen: "127.0.0.1:0".parse().unwrap(),
            workers: 2,
            drain_timeout: Duration::from_secs(2),
            ..Config::default()
        };
        tweak(&mut config);
        let server = Server::start(config).expect("server starts");
        let addr = server.local_addr();
        TestServer {
            server: Some(server),
            addr,
        }
    }

    /// The server API's address, when `api_listen` is set.
    pub fn api_addr(&self) -> Option<SocketAddr> {
        self.server.as_ref().unwrap().api_addr()
    }

    pub fn url(&self, path: &str) -> String {
        format!("ws://{}{}", self.addr, path)
    }

    /// Begins the drain and waits for every worker to exit.
    pub fn shutdown(mut self) {
        let server = self.server.take().unwrap();
        server.shutdown();
        server.wait().expect("workers exit cleanly");
    }

    pub fn begin_shutdown(&self) {
        self.server.as_ref().unwrap().shutdown();
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(server) = self.server.take() {
            server.shutdown();
            let _ = server.wait();
        }
    }
}

/// The example key of RFC 6455 §1.3 and its accept value.
pub const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";
pub const ACCEPT: &str = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

pub fn upgrade_request(path: &str, addr: SocketAddr) -> String {
    format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
}

/// A raw TCP connection with a read timeout so a broken server fails the test instead of hanging it.
pub fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.set_nodelay(true).unwrap();
    s
}

/// Sends `request` and reads the response head (through the blank line), returning it as text.
pub fn send_request(stream: &mut TcpStream, request: &[u8]) -> String {
    stream.write_all(request).unwrap();
    read_head(stream)
}

pub fn read_head(stream: &mut TcpStream) -> String {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match stream.read(&mut byte) {
            Ok(0) => break,
            Ok(_) => head.push(byte[0]),
            Err(e) => panic!(
                "reading the response head: {e} (got {:?})",
                String::from_utf8_lossy(&head)
            ),
        }
    }
    String::from_utf8(head).unwrap()
}

/// Reads until EOF (the server closes after an error response).
pub fn read_to_end(stream: &mut TcpStream) -> Vec<u8> {
    let mut rest = Vec::new();
    let _ = stream.read_to_end(&mut rest);
    rest
}

/// An open raw WebSocket client connection to `path`.
pub fn ws_connect(addr: SocketAddr, path: &str) -> TcpStream {
    let mut s = connect(addr);
    let head = send_request(&mut s, upgrade_request(path, addr).as_bytes());
    assert!(
        head.starts_with("HTTP/1.1 101 "),
        "expected 101, got {head:?}"
    );
    assert!(
        head.contains(&format!("Sec-WebSocket-Accept: {ACCEPT}\r\n")),
        "{head}"
    );
    s
}

/// A client frame, masked with a fixed key, built by hand.
pub fn client_frame(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
    client_frame_rsv(fin, 0, opcode, payload)
}

pub fn client_frame_rsv(fin: bool, rsv: u8, opcode: u8, payload: &[u8]) -> Vec<u8> {
    let key = [0x12, 0x34, 0x56, 0x78];
    let mut f = vec![(u8::from(fin) << 7) | (rsv << 4) | opcode];
    let len = payload.len();
    if len < 126 {
        f.push(0x80 | len as u8);
    } else if len <= 0xFFFF {
        f.push(0x80 | 126);
        f.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        f.push(0x80 | 127);
        f.extend_from_slice(&(len as u64).to_be_bytes());
    }
    f.extend_from_slice(&key);
    f.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
    f
}

/// An unmasked frame (what a broken client might send).
pub fn unmasked_frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    assert!(payload.len() < 126);
    let mut f = vec![0x80 | opcode, payload.len() as u8];
    f.extend_from_slice(payload);
    f
}

pub fn close_payload(code: u16, reason: &str) -> Vec<u8> {
    let mut p = code.to_be_bytes().to_vec();
    p.extend_from_slice(reason.as_bytes());
    p
}

/// A server frame as read off the wire.
#[derive(Debug, PartialEq, Eq)]
pub struct Frame {
    pub fin: bool,
    pub opcode: u8,
    pub payload: Vec<u8>,
}

impl Frame {
    pub fn close_code(&self) -> Option<u16> {
        assert_eq!(self.opcode, 8, "not a close frame: {self:?}");
        (self.payload.len() >= 2).then(|| u16::from_be_bytes([self.payload[0], self.payload[1]]))
    }

    pub fn close_reason(&self) -> String {
        String::from_utf8(self.payload[2..].to_vec()).unwrap()
    }
}

/// Reads one server frame; asserts it is unmasked and has no RSV bits.
pub fn read_frame(stream: &mut TcpStream) -> io::Result<Frame> {
    let mut head = [0u8; 2];
    stream.read_exact(&mut head)?;
    assert_eq!(head[0] & 0x70, 0, "server frames carry no RSV bits");
    assert_eq!(head[1] & 0x80, 0, "server frames are never masked");
    let len = match head[1] & 0x7F {
        126 => {
            let mut b = [0u8; 2];
            stream.read_exact(&mut b)?;
            u16::from_be_bytes(b) as usize
        }
        127 => {
            let mut b = [0u8; 8];
            stream.read_exact(&mut b)?;
            u64::from_be_bytes(b) as usize
        }
        n => n as usize,
    };
    let mut payload = vec![0u8; len];
    stream.read_exact(&mut payload)?;
    Ok(Frame {
        fin: head[0] & 0x80 != 0,
        opcode: head[0] & 0x0F,
        payload,
    })
}

/// Reads frames until a close frame, skipping pings; returns the close frame.
pub fn read_close(stream: &mut TcpStream) -> Frame {
    loop {
        let f = read_frame(stream).expect("a close frame");
        if f.opcode == 8 {
            return f;
        }
        assert_eq!(
            f.opcode, 9,
            "only pings may come before the close, got {f:?}"
        );
    }
}

/// After a close, the server closes TCP: the next read sees EOF (or a reset).
pub fn assert_tcp_closed(stream: &mut TcpStream) {
    let mut buf = [0u8; 64];
    match stream.read(&mut buf) {
        Ok(0) => {}
        Ok(n) => panic!("expected EOF, got {n} more bytes: {:?}", &buf[..n]),
        Err(e) if e.kind() == io::ErrorKind::ConnectionReset => {}
        Err(e) => panic!("expected EOF, got {e}"),
    }
}

/// Ends TCP without a close frame (FIN) and returns once the server has answered with its own FIN,
/// discarding anything it still sent. The server closes its socket only after tearing the
/// connection down (slot freed, gauges and counters updated), so when this returns that teardown is
/// visible in `/metrics`: the test waits for the event itself, not for a guessed delay.
pub fn hang_up_and_wait(mut stream: TcpStream) {
    stream.shutdown(std::net::Shutdown::Write).unwrap();
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return,
            Ok(_) => continue,
            Err(e) if e.kind() == io::ErrorKind::ConnectionReset => return,
            Err(e) => panic!("the server never closed its side after our FIN: {e}"),
        }
    }
}

/// Waits (at most 5 s) for `done`, an observable server state such as a `/metrics` counter: for
/// what the server records a moment after the client can see it (a close counted at teardown,
/// after the client's last byte). Polls every millisecond; never a guessed fixed delay.
pub fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while !done() {
        assert!(std::time::Instant::now() < deadline, "{what}");
        std::thread::yield_now();
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Echo one message over a fresh connection: the server is still serving others.
pub fn assert_echo_works(addr: SocketAddr) {
    let mut s = ws_connect(addr, "/echo");
    s.write_all(&client_frame(true, 1, b"still alive")).unwrap();
    let f = read_frame(&mut s).unwrap();
    assert_eq!((f.opcode, f.payload.as_slice()), (1, &b"still alive"[..]));
    s.write_all(&client_frame(true, 8, &close_payload(1000, "")))
        .unwrap();
    assert_eq!(read_close(&mut s).close_code(), Some(1000));
}

/// A plain `GET path`; asserts 200 and returns the body.
pub fn http_get(addr: SocketAddr, path: &str) -> String {
    let (head, body) = http_request(addr, &format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n"));
    assert!(head.starts_with("HTTP/1.1 200 "), "{head}");
    body
}

/// Sends a raw request; returns the response head and body.
pub fn http_request(addr: SocketAddr, request: &str) -> (String, String) {
    let mut s = connect(addr);
    let head = send_request(&mut s, request.as_bytes());
    (
        head,
        String::from_utf8_lossy(&read_to_end(&mut s)).into_owned(),
    )
}

/// Starts the `ringcast` binary `exe` (a test passes `env!("CARGO_BIN_EXE_ringcast")`) with `args` (plus `--listen 127.0.0.1:0` unless `args` has a
/// `--listen`) and returns once it logs that it is listening, with the address it logged: the
/// test waits for the server's own word, not for a port to start answering. Its stderr keeps being
/// drained (so logging never blocks it) into the returned buffer.
pub fn spawn_binary(
    exe: &str,
    args: &[&str],
) -> (
    std::process::Child,
    SocketAddr,
    std::sync::Arc<std::sync::Mutex<String>>,
) {
    use std::io::BufRead;
    use std::process::{Command, Stdio};
    let mut cmd = Command::new(exe);
    cmd.arg("serve");
    if !args.contains(&"--listen") {
        cmd.args(["--listen", "127.0.0.1:0"]);
    }
    let mut child = cmd
        .args(args)
        .env_remove("RUST_LOG")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn ringcast");
    let mut lines = std::io::BufReader::new(child.stderr.take().unwrap()).lines();
    let log = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let addr = loop {
        let Some(Ok(line)) = lines.next() else {
            let _ = child.kill();
            panic!(
                "ringcast exited before listening; it said:\n{}",
                log.lock().unwrap()
            );
        };
        log.lock().unwrap().push_str(&line);
        log.lock().unwrap().push('\n');
        if line.contains("ringcast listening") {
            let addr = line
                .split_whitespace()
                .find_map(|field| field.strip_prefix("listen="))
                .expect("the listening line names its address");
            break addr.parse().expect("a socket address");
        }
    };
    let sink = log.clone();
    std::thread::spawn(move || {
        for line in lines.map_while(Result::ok) {
            let mut log = sink.lock().unwrap();
            log.push_str(&line);
            log.push('\n');
        }
    });
    (child, addr, log)
}
