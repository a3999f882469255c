//! A fan-out measurement over real sockets (ignored by default; it measures, it asserts only
//! counts and order, never time):
//!
//! `cargo test --release --test rooms_load -- --ignored --nocapture`
//!
//! One publisher, one room of `RINGCAST_FANOUT_MEMBERS` subscribers (default 2000: client and
//! server sockets share this process's 20 000-descriptor limit) spread over two workers by the
//! kernel; `RINGCAST_FANOUT_MESSAGES` messages (default 50). Reports deliveries per second (first
//! publish to last delivery) and publish-to-delivery latency p50/p99, measured from the publisher's
//! clock carried in the payload (µs) and, as the protocol defines it, from the server's `ts` (ms).

mod common;
mod rooms_client;

use std::time::{Instant, SystemTime, UNIX_EPOCH};

use common::TestServer;
use futures_util::StreamExt;
use rooms_client::Client;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn unix_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_micros() as u64
}

fn percentile(sorted: &[u64], p: f64) -> u64 {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
#[ignore = "a measurement; run explicitly with --ignored --nocapture"]
async fn fanout_to_one_room_over_real_sockets() {
    let members = env("RINGCAST_FANOUT_MEMBERS", 2000);
    let messages = env("RINGCAST_FANOUT_MESSAGES", 50);
    let gap_ms = env("RINGCAST_FANOUT_GAP_MS", 0);
    let server = TestServer::with(|c| {
        c.workers = 2;
        c.max_connections = members + 16;
        // The test's readers answer pings only once spawned, and the set-up phase takes a while.
        c.ping_interval = std::time::Duration::from_secs(600);
        c.idle_timeout = std::time::Duration::from_secs(1200);
    });
    let url = server.url("/ws");
    let mut per_worker = 0;
    let mut readers = Vec::with_capacity(members);
    for i in 0..members {
        let mut c = Client::connect(&url).await;
        // `presence: false`: a broadcast subscriber wants messages, not joined/left events, and
        // it keeps each join O(1) frames instead of O(members).
        c.ok(json!({"type":"join","room":"bench","name":format!("s{i}"),"presence":false}))
            .await;
        per_worker += usize::from(c.worker() == 0);
        // Read from now on (messages only: this member watches no presence).
        readers.push(tokio::spawn(async move {
            let mut ws = c.ws;
            let mut got = Vec::with_capacity(messages);
            while got.len() < messages {
                let t = match ws.next().await {
                    Some(Ok(Message::Text(t))) => t,
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                    other => panic!("subscriber lost its connection: {other:?}"),
                };
                let now_us = unix_micros();
                let v: Value = serde_json::from_str(&t).unwrap();
                if v["type"] != "message" {
                    continue;
                }
                let sent_us = v["payload"]["t"].as_u64().unwrap();
                let ts_ms = v["ts"].as_u64().unwrap();
                got.push((
                    v["payload"]["i"].as_u64().unwrap(),
                    now_us.saturating_sub(sent_us),
                    (now_us / 1000).saturating_sub(ts_ms),
                ));
            }
            (got, Instant::now())
        }));
    }
    let mut publisher = Client::connect(&url).await;
    let start = Instant::now();
    for i in 0..messages {
        if gap_ms > 0 && i > 0 {
            tokio::time::sleep(std::time::Duration::from_millis(gap_ms as u64)).await;
        }
        publisher
            .send(json!({"type":"publish","room":"bench","echo":false,"payload":{"i":i,"t":unix_micros(),"text":"a chat-sized message of about sixty bytes"}}))
            .await;
    }
    let mut from_publisher = Vec::with_capacity(members * messages);
    let mut from_ts = Vec::with_capacity(members * messages);
    let mut last = start;
    for r in readers {
        let (got, done) = r.await.unwrap();
        for (n, (i, us, ms)) in got.into_iter().enumerate() {
            assert_eq!(i, n as u64, "in publish order");
            from_publisher.push(us);
            from_ts.push(ms);
        }
        last = last.max(done);
    }
    from_publisher.sort_unstable();
    from_ts.sort_unstable();
    let secs = (last - start).as_secs_f64();
    let deliveries = members * messages;
    println!(
        "fanout: {members} members ({per_worker} on worker 0), {messages} messages, \
         {deliveries} deliveries in {secs:.3} s = {:.0} deliveries/s",
        deliveries as f64 / secs
    );
    println!(
        "latency publisher→member: p50 {} µs, p99 {} µs; server ts→member: p50 {} ms, p99 {} ms",
        percentile(&from_publisher, 0.50),
        percentile(&from_publisher, 0.99),
        percentile(&from_ts, 0.50),
        percentile(&from_ts, 0.99)
    );
}
