//! Webhook sender throughput: events per second the sender delivers to a local receiver, by batch
//! size, and what handing one event to it costs a worker. A script, not a timed test: it prints
//! figures and asserts only that every event arrived.
//!
//! Run: `cargo bench --bench webhook`. The receiver is a minimal keep-alive HTTP/1.1 server in
//! this process (a thread; it counts events and answers 204), so the figures are the sender's
//! (render, sign, one request per batch) plus loopback TCP; a real backend is usually slower.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ringcast::backend::event::{Event, EventKind, EventSet};
use ringcast::backend::http::Target;
use ringcast::backend::webhook::{self, WebhookConfig};
use ringcast::envelope::ConnId;
use ringcast::table::ConnKey;

const EVENTS: u64 = 200_000;

fn receiver() -> (String, Arc<AtomicU64>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hooks", listener.local_addr().unwrap());
    let count = Arc::new(AtomicU64::new(0));
    let counted = count.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let stream = stream.unwrap();
            let counted = counted.clone();
            std::thread::spawn(move || {
                let mut out = stream.try_clone().unwrap();
                let mut r = BufReader::new(stream);
                let mut line = String::new();
                loop {
                    let mut len = 0;
                    line.clear();
                    if r.read_line(&mut line).unwrap_or(0) == 0 {
                        return;
                    }
                    loop {
                        line.clear();
                        r.read_line(&mut line).unwrap();
                        if line == "\r\n" {
                            break;
                        }
                        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                            len = v.trim().parse().unwrap();
                        }
                    }
                    let mut body = vec![0; len];
                    r.read_exact(&mut body).unwrap();
                    let events = body.windows(6).filter(|w| w == b"{\"id\":").count();
                    counted.fetch_add(events as u64, Ordering::Relaxed);
                    out.write_all(b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n")
                        .unwrap();
                }
            });
        }
    });
    (url, count)
}

fn event(n: u64) -> Event {
    let mut e = Event::new(EventKind::Join, 1_764_784_800_000 + n, 0);
    e.conn = Some(ConnId {
        worker: 0,
        key: ConnKey::from_u64(n),
    });
    e.user = Some("user-1234".into());
    e.room = Some("room:lobby".into());
    e
}

/// Delivers `EVENTS` events with batches of `batch`; returns events per second.
fn run(batch: usize) -> f64 {
    let (url, count) = receiver();
    let hooks = webhook::start(WebhookConfig {
        target: Target::parse(&url).unwrap(),
        secret: b"bench-secret-0123456789".to_vec(),
        events: EventSet::from_names(&["join"]).unwrap(),
        batch_size: batch,
        batch_wait: Duration::from_millis(1),
        queue_size: EVENTS as usize,
        timeout: Duration::from_secs(5),
        retry_max_delay: Duration::from_millis(100),
        node: "bench".into(),
    })
    .unwrap();
    let start = Instant::now();
    for n in 0..EVENTS {
        hooks.emit(event(n));
    }
    while count.load(Ordering::Relaxed) < EVENTS {
        assert!(start.elapsed() < Duration::from_secs(300), "stalled");
        std::thread::sleep(Duration::from_millis(1));
    }
    assert_eq!(hooks.status.dropped(), 0);
    EVENTS as f64 / start.elapsed().as_secs_f64()
}

/// What `emit` costs the caller (a worker) per event, queue not full, sender idle behind a
/// refused port so nothing is drained: the `try_send` plus building the event.
fn emit_cost() -> Duration {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let hooks = webhook::start(WebhookConfig {
        target: Target::parse(&format!("http://{port}/")).unwrap(),
        secret: b"bench-secret-0123456789".to_vec(),
        events: EventSet::from_names(&["join"]).unwrap(),
        batch_size: 1,
        batch_wait: Duration::from_millis(1),
        queue_size: EVENTS as usize,
        timeout: Duration::from_secs(5),
        retry_max_delay: Duration::from_secs(60),
        node: "bench".into(),
    })
    .unwrap();
    let start = Instant::now();
    for n in 0..EVENTS {
        hooks.emit(event(n));
    }
    start.elapsed() / EVENTS as u32
}

fn main() {
    println!("webhook sender, {EVENTS} join events to a local receiver");
    let base = run(1);
    println!("  batch    1: {base:>10.0} events/s (baseline: one request per event)");
    for batch in [10, 100, 1000] {
        let rate = run(batch);
        println!(
            "  batch {batch:>4}: {rate:>10.0} events/s ({:.1}x the baseline, higher is better)",
            rate / base
        );
    }
    println!(
        "  emit on the worker side: {:?} per event (build + try_send)",
        emit_cost()
    );
}
