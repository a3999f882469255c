//! A `/ws` client for the rooms tests: tokio-tungstenite and serde_json, independent of the
//! crate's own codec and envelope renderer.

#![allow(dead_code)]

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// Guards against a broken server hanging the test run; never part of an assertion.
const HANG_GUARD: Duration = Duration::from_secs(10);

/// One `/ws` client and the connection id its welcome announced.
pub struct Client {
    pub ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    pub conn: String,
    next_id: u64,
}

impl Client {
    /// Connects to `url` and reads the welcome (an anonymous one).
    pub async fn connect(url: &str) -> Client {
        Self::connect_as(url, None).await
    }

    /// Connects to `url` (with `?token=…` for a user) and reads the welcome, which must name
    /// `user`.
    pub async fn connect_as(url: &str, user: Option<&str>) -> Client {
        let (ws, _) = tokio_tungstenite::connect_async(url)
            .await
            .expect("connect");
        let mut client = Client {
            ws,
            conn: String::new(),
            next_id: 0,
        };
        let welcome = client.recv().await;
        assert_eq!(welcome["type"], "welcome", "{welcome}");
        assert_eq!(welcome["v"], 1);
        assert_eq!(welcome["user"].as_str(), user, "{welcome}");
        client.conn = welcome["conn"].as_str().expect("conn id").to_owned();
        client
    }

    /// Ends the TCP connection abruptly (a reset, no close frame): a network cut as the server
    /// sees it.
    pub fn cut(self) {
        if let MaybeTlsStream::Plain(tcp) = self.ws.get_ref() {
            socket2::SockRef::from(tcp)
                .set_linger(Some(Duration::ZERO))
                .expect("linger");
        }
        drop(self);
    }

    /// The worker this client landed on (from its connection id).
    pub fn worker(&self) -> u32 {
        self.conn.split(':').next().unwrap().parse().unwrap()
    }

    /// Sends raw text.
    pub async fn send_text(&mut self, text: &str) {
        self.ws.send(Message::text(text)).await.expect("send");
    }

    /// Sends `envelope` with a fresh id and returns the id.
    pub async fn send(&mut self, mut envelope: Value) -> String {
        self.next_id += 1;
        let id = format!("r{}", self.next_id);
        envelope["id"] = json!(id);
        self.send_text(&envelope.to_string()).await;
        id
    }

    /// The next text message as JSON (pings are answered by tungstenite and skipped).
    pub async fn recv(&mut self) -> Value {
        loop {
            let msg = tokio::time::timeout(HANG_GUARD, self.ws.next())
                .await
                .expect("a message before the hang guard")
                .expect("stream open")
                .expect("no error");
            match msg {
                Message::Text(t) => return serde_json::from_str(&t).expect("server sends JSON"),
                Message::Ping(_) | Message::Pong(_) => {}
                other => panic!("expected a text message, got {other:?}"),
            }
        }
    }

    /// Reads until the reply to `id`, returning it and everything that came before it.
    pub async fn reply(&mut self, id: &str) -> (Value, Vec<Value>) {
        let mut before = Vec::new();
        loop {
            let v = self.recv().await;
            if v["type"] == "reply" && v["id"] == id {
                return (v, before);
            }
            before.push(v);
        }
    }

    /// Sends `envelope` and returns its reply.
    pub async fn call(&mut self, envelope: Value) -> Value {
        let id = self.send(envelope).await;
        self.reply(&id).await.0
    }

    /// Sends `envelope`, asserts an ok reply.
    pub async fn ok(&mut self, envelope: Value) {
        let reply = self.call(envelope.clone()).await;
        assert_eq!(reply["ok"], true, "{envelope} → {reply}");
    }

    /// Sends `envelope`, asserts an error reply with `code`.
    pub async fn fails(&mut self, envelope: Value, code: &str) {
        let reply = self.call(envelope.clone()).await;
        assert_eq!(reply["ok"], false, "{envelope} → {reply}");
        assert_eq!(reply["error"]["code"], code, "{envelope} → {reply}");
        assert!(reply["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()));
    }

    /// Joins `room` (ok) and consumes its own `joined` event.
    pub async fn join(&mut self, room: &str, name: &str) {
        self.ok(json!({"type":"join","room":room,"name":name}))
            .await;
        let ev = self.next_of("joined").await;
        assert_eq!(ev["conn"], self.conn.as_str());
    }

    /// Reads until a message of `kind`, skipping others.
    pub async fn next_of(&mut self, kind: &str) -> Value {
        loop {
            let v = self.recv().await;
            if v["type"] == kind {
                return v;
            }
        }
    }

    /// Asks for presence of `room`; returns the member connection ids in order.
    pub async fn presence(&mut self, room: &str) -> Vec<(String, Value)> {
        let id = self.send(json!({"type":"presence","room":room})).await;
        loop {
            let v = self.recv().await;
            if v["type"] == "presence" && v["id"] == id.as_str() {
                assert_eq!(v["room"], room);
                return v["members"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|m| (m["conn"].as_str().unwrap().to_owned(), m["name"].clone()))
                    .collect();
            }
        }
    }
}

/// Connects clients until at least one sits on each of `workers` workers; returns one per worker
/// (the others are closed). The kernel spreads SO_REUSEPORT connections by a hash of the
/// addresses, so a few tries suffice.
pub async fn one_per_worker(url: &str, workers: u32) -> Vec<Client> {
    let mut picked: Vec<Option<Client>> = (0..workers).map(|_| None).collect();
    for _ in 0..200 {
        let c = Client::connect(url).await;
        let w = c.worker() as usize;
        if picked[w].is_none() {
            picked[w] = Some(c);
        }
        if picked.iter().all(Option::is_some) {
            return picked.into_iter().map(Option::unwrap).collect();
        }
    }
    panic!("200 connections never reached every worker");
}
