//! A server-API client for tests: a keep-alive HTTP/1.1 connection written independently of the
//! server's code (its own framing of answers by `Content-Length`), and the test key.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::Duration;

use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The API key every test server accepts.
pub const KEY: &str = "api-test-key-0123456789";

/// Guards against a broken server hanging the test; never part of an assertion.
pub const HANG_GUARD: Duration = Duration::from_secs(10);

/// One answer: status, head (lower-cased), body.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub head: String,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("the API answers JSON")
    }

    /// Asserts an error answer with `status` and stable `code`.
    pub fn is_error(&self, status: u16, code: &str) {
        assert_eq!(self.status, status, "{self:?}");
        let v = self.json();
        assert_eq!(v["error"]["code"], code, "{v}");
        assert!(v["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()));
    }
}

/// A keep-alive HTTP/1.1 connection to the API, written independently of the server's code.
pub struct Http {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Http {
    pub async fn connect(addr: SocketAddr) -> Http {
        Http {
            stream: TcpStream::connect(addr).await.expect("connect"),
            buf: Vec::new(),
        }
    }

    pub async fn send_raw(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.expect("write");
    }

    pub async fn send(&mut self, method: &str, path: &str, key: Option<&str>, body: &str) {
        let auth = key.map_or(String::new(), |k| format!("Authorization: apikey {k}\r\n"));
        let request = format!(
            "{method} {path} HTTP/1.1\r\nHost: api\r\n{auth}Content-Length: {}\r\n\r\n{body}",
            body.len()
        );
        self.send_raw(request.as_bytes()).await;
    }

    pub async fn fill(&mut self) -> bool {
        let mut chunk = [0u8; 4096];
        let n = tokio::time::timeout(HANG_GUARD, self.stream.read(&mut chunk))
            .await
            .expect("an answer before the hang guard")
            .expect("read");
        self.buf.extend_from_slice(&chunk[..n]);
        n > 0
    }

    /// The next answer on the connection.
    pub async fn answer(&mut self) -> Answer {
        let end = loop {
            if let Some(i) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            assert!(self.fill().await, "connection closed before an answer");
        };
        let head = String::from_utf8(self.buf[..end].to_vec())
            .unwrap()
            .to_ascii_lowercase();
        let status = head[9..12].parse().unwrap();
        let len: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length: "))
            .expect("content-length")
            .trim()
            .parse()
            .unwrap();
        while self.buf.len() < end + len {
            assert!(self.fill().await, "connection closed inside a body");
        }
        let body = self.buf[end..end + len].to_vec();
        self.buf.drain(..end + len);
        Answer { status, head, body }
    }

    pub async fn call(&mut self, method: &str, path: &str, body: &str) -> Answer {
        self.send(method, path, Some(KEY), body).await;
        self.answer().await
    }

    /// Asserts the server closes the connection (after any answer already read).
    pub async fn assert_closed(&mut self) {
        assert!(self.buf.is_empty());
        assert!(!self.fill().await, "expected the server to close");
    }
}

/// The body of a `POST /api/publish`.
pub fn publish_body(room: &str, payload: Value, msg_id: Option<&str>) -> String {
    let mut body = json!({"room": room, "payload": payload});
    if let Some(m) = msg_id {
        body["msg_id"] = json!(m);
    }
    body.to_string()
}
