//! A backend for the webhook and join-authorization tests: a small HTTP/1.1 server on 127.0.0.1,
//! written here independently of the crate's client, that records every request and answers as
//! the test's handler says (a status and body, after an optional hold), with keep-alive.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// Guards against a broken server hanging the test; never part of an assertion.
pub const HANG_GUARD: Duration = Duration::from_secs(15);

/// One request as received.
#[derive(Clone, Debug)]
pub struct Request {
    /// `POST /path`.
    pub line: String,
    /// Header names lower-cased.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// The status it was answered with.
    pub status: u16,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("a JSON body")
    }
}

/// What the handler answers.
pub struct Answer {
    pub status: u16,
    pub body: String,
    /// Wait this long before answering.
    pub hold: Duration,
}

impl Answer {
    pub fn ok(body: &str) -> Answer {
        Answer {
            status: 200,
            body: body.to_owned(),
            hold: Duration::ZERO,
        }
    }

    pub fn status(status: u16) -> Answer {
        Answer {
            status,
            body: String::new(),
            hold: Duration::ZERO,
        }
    }
}

type Handler = dyn Fn(&Request) -> Answer + Send + Sync;

/// A running backend; stops accepting when dropped.
pub struct Receiver {
    pub addr: SocketAddr,
    log: Arc<(Mutex<Vec<Request>>, Condvar)>,
    /// Requests received so far, answered or not.
    arrivals: Arc<(Mutex<usize>, Condvar)>,
    stop: Arc<AtomicBool>,
}

impl Receiver {
    /// On a fresh port.
    pub fn start(handler: impl Fn(&Request) -> Answer + Send + Sync + 'static) -> Receiver {
        Self::start_at("127.0.0.1:0".parse().unwrap(), handler)
    }

    /// On `addr` (a port a test reserved and released: "the backend comes back").
    pub fn start_at(
        addr: SocketAddr,
        handler: impl Fn(&Request) -> Answer + Send + Sync + 'static,
    ) -> Receiver {
        let listener = TcpListener::bind(addr).expect("bind the receiver");
        let addr = listener.local_addr().unwrap();
        let log = Arc::new((Mutex::new(Vec::new()), Condvar::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let arrivals = Arc::new((Mutex::new(0), Condvar::new()));
        let handler: Arc<Handler> = Arc::new(move |r: &Request| handler(r));
        {
            let (log, stop) = (log.clone(), stop.clone());
            let arrived = arrivals.clone();
            let handler: Arc<Handler> = Arc::new(move |r: &Request| {
                *arrived.0.lock().unwrap() += 1;
                arrived.1.notify_all();
                handler(r)
            });
            std::thread::spawn(move || {
                for stream in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        return;
                    }
                    let Ok(stream) = stream else { continue };
                    let (log, stop, handler) = (log.clone(), stop.clone(), handler.clone());
                    std::thread::spawn(move || serve(stream, &*handler, &log, &stop));
                }
            });
        }
        Receiver {
            addr,
            log,
            arrivals,
            stop,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Waits until `n` requests have arrived (answered or not).
    pub fn wait_arrivals(&self, n: usize) {
        let deadline = Instant::now() + HANG_GUARD;
        let (lock, cond) = &*self.arrivals;
        let mut arrived = lock.lock().unwrap();
        while *arrived < n {
            let left = deadline
                .checked_duration_since(Instant::now())
                .unwrap_or_else(|| panic!("{} of {n} requests arrived", *arrived));
            arrived = cond.wait_timeout(arrived, left).unwrap().0;
        }
    }

    /// Every request so far (those answered).
    pub fn requests(&self) -> Vec<Request> {
        self.log.0.lock().unwrap().clone()
    }

    /// Waits until `done` holds for the requests so far; returns them.
    pub fn wait_until(&self, what: &str, done: impl Fn(&[Request]) -> bool) -> Vec<Request> {
        let deadline = Instant::now() + HANG_GUARD;
        let (lock, cond) = &*self.log;
        let mut log = lock.lock().unwrap();
        while !done(&log) {
            let left = deadline
                .checked_duration_since(Instant::now())
                .unwrap_or_else(|| panic!("{what}: got {} requests: {:#?}", log.len(), *log));
            log = cond.wait_timeout(log, left).unwrap().0;
        }
        log.clone()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop.
        let _ = TcpStream::connect(self.addr);
    }
}

/// A port held by a socket that is bound but not listening: connections to it are refused, and
/// no other test can take it meanwhile (the socket is bound without `SO_REUSEADDR`, so a later
/// bind to the port fails and port 0 never picks it) until [`RefusedPort::release`].
pub struct RefusedPort {
    socket: socket2::Socket,
    pub addr: SocketAddr,
}

impl RefusedPort {
    /// Frees the port for a [`Receiver`]: "the backend comes back".
    pub fn release(self) -> SocketAddr {
        drop(self.socket);
        self.addr
    }
}

pub fn refused_port() -> RefusedPort {
    use socket2::{Domain, Socket, Type};
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    socket
        .bind(&"127.0.0.1:0".parse::<SocketAddr>().unwrap().into())
        .unwrap();
    let addr = socket.local_addr().unwrap().as_socket().unwrap();
    RefusedPort { socket, addr }
}

fn serve(
    stream: TcpStream,
    handler: &Handler,
    log: &(Mutex<Vec<Request>>, Condvar),
    stop: &AtomicBool,
) {
    let mut writer = stream.try_clone().unwrap();
    let mut reader = BufReader::new(stream);
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 || stop.load(Ordering::SeqCst) {
            return;
        }
        let mut headers = Vec::new();
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h).unwrap_or(0) == 0 {
                return;
            }
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            let (name, value) = h.split_once(':').expect("a header line");
            headers.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
        }
        let len: usize = headers
            .iter()
            .find(|(n, _)| n == "content-length")
            .map(|(_, v)| v.parse().unwrap())
            .unwrap_or(0);
        let mut body = vec![0; len];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let mut request = Request {
            line: line.trim_end().to_owned(),
            headers,
            body,
            status: 0,
        };
        let answer = handler(&request);
        std::thread::sleep(answer.hold);
        request.status = answer.status;
        let reply = format!(
            "HTTP/1.1 {} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{}",
            answer.status,
            answer.body.len(),
            answer.body
        );
        // Logged before the answer is written: once the server has seen the answer, the test
        // sees the request.
        {
            let (lock, cond) = log;
            lock.lock().unwrap().push(request);
            cond.notify_all();
        }
        if writer.write_all(reply.as_bytes()).is_err() {
            return;
        }
    }
}

/// HMAC-SHA256 of `ts.body` with `secret`, as `sha256=<hex>`: computed here with the `hmac`
/// crate directly, independently of the server's signer.
pub fn expected_signature(secret: &str, ts: &str, body: &[u8]) -> String {
    use hmac::{Hmac, Mac};
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(ts.as_bytes());
    mac.update(b".");
    mac.update(body);
    let hex: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("sha256={hex}")
}
