//! Webhooks (`webhook_url`), as a specification, against a receiver on 127.0.0.1: every
//! configured event arrives, signed (HMAC-SHA256 over `"<timestamp>.<body>"`), with its fields;
//! a backend that fails (500, refused connections) gets the same events later, in order; one that
//! stays down costs a bounded queue, and what it could not hold is counted in `/metrics` (the
//! delivered events stay in order); a webhook configuration without its secret,
//! or with a bad URL, secret or event name, is refused at start.
//!
//! Waiting is always for an event (a request at the receiver, a metric), never for a span of
//! wall-clock time.

mod auth_support;
mod backend_support;
mod common;
mod rooms_client;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use backend_support::{expected_signature, refused_port, Answer, Receiver, Request};
use common::{http_get, wait_for, TestServer};
use ringcast::config::Config;
use ringcast::security::{AuthMode, Secret};
use rooms_client::Client;
use serde_json::{json, Value};

const JWT_SECRET: &str = "an-hmac-secret-of-at-least-32-bytes!";
const HOOK_SECRET: &str = "webhook-test-secret-0123456789";

fn token(sub: &str) -> String {
    auth_support::hs256_token(JWT_SECRET, sub)
}

/// Two workers, optional auth, webhooks to `url` with short batching and retry delays.
fn server(url: String, tweak: impl FnOnce(&mut Config)) -> TestServer {
    TestServer::with(|c| {
        c.security.auth = AuthMode::Optional;
        c.security.auth_jwt_secret = Some(Secret(JWT_SECRET.into()));
        c.webhook_url = Some(url);
        c.webhook_secret = Some(Secret(HOOK_SECRET.into()));
        c.webhook_batch_wait = Duration::from_millis(5);
        c.webhook_retry_max_delay = Duration::from_millis(100);
        c.webhook_timeout = Duration::from_secs(2);
        tweak(c);
    })
}

async fn connect_as(server: &TestServer, user: &str) -> Client {
    let url = format!("{}?token={}", server.url("/ws"), token(user));
    Client::connect_as(&url, Some(user)).await
}

/// The events of every request the receiver accepted (2xx), in arrival order.
fn accepted_events(requests: &[Request]) -> Vec<Value> {
    requests
        .iter()
        .filter(|r| (200..300).contains(&r.status))
        .flat_map(|r| r.json()["events"].as_array().unwrap().clone())
        .collect()
}

/// The value of the `/metrics` line `series value` (0 when absent).
fn metric(server: &TestServer, series: &str) -> u64 {
    http_get(server.addr, "/metrics")
        .lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or(0)
}

/// Asserts `request` carries a valid signature over its body and a current timestamp.
fn assert_signed(request: &Request) {
    let ts = request
        .header("x-ringcast-timestamp")
        .expect("a timestamp header");
    let sig = request
        .header("x-ringcast-signature")
        .expect("a signature header");
    assert_eq!(sig, expected_signature(HOOK_SECRET, ts, &request.body));
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let ts: u64 = ts.parse().expect("Unix seconds");
    assert!(now.abs_diff(ts) < 60, "timestamp {ts} vs now {now}");
    assert_eq!(request.header("content-type"), Some("application/json"));
    assert!(request.line.starts_with("POST /hooks "), "{}", request.line);
}

/// Joins `room` and publishes `count` messages to it; returns their offsets in order.
async fn publish_many(client: &mut Client, room: &str, count: usize) -> Vec<u64> {
    client.ok(json!({"type":"join","room":room})).await;
    let mut offsets = Vec::new();
    for n in 0..count {
        let reply = client
            .call(json!({"type":"publish","room":room,"payload":{"n":n},"echo":false}))
            .await;
        assert_eq!(reply["ok"], true, "{reply}");
        offsets.push(reply["offset"].as_u64().expect("an offset"));
    }
    offsets
}

fn offsets_of(events: &[Value]) -> Vec<u64> {
    events
        .iter()
        .filter(|e| e["type"] == "publish")
        .map(|e| e["offset"].as_u64().unwrap())
        .collect()
}

#[tokio::test]
async fn every_configured_event_arrives_signed_with_its_fields() {
    let receiver = Receiver::start(|_| Answer::status(204));
    let server = server(receiver.url("/hooks"), |c| {
        c.webhook_events = [
            "connect",
            "disconnect",
            "join",
            "leave",
            "publish",
            "inbox_expired",
        ]
        .map(String::from)
        .to_vec();
        c.inbox_ttl = Duration::from_millis(300);
    });
    let mut alice = connect_as(&server, "alice").await;
    let conn = alice.conn.clone();
    alice.ok(json!({"type":"join","room":"lobby"})).await;
    alice.ok(json!({"type":"join","room":"other"})).await;
    let published = alice
        .call(json!({"type":"publish","room":"lobby","payload":{"n":[1,"two"]}}))
        .await;
    let offset = published["offset"].as_u64().expect("an offset");
    alice.ok(json!({"type":"leave","room":"lobby"})).await;
    // Kept for bob, who never connects: it expires after inbox_ttl.
    let sent = alice
        .call(json!({"type":"send","to_user":"bob","payload":"hi","ack":true}))
        .await;
    let msg_id = sent["msg_id"].as_str().expect("a msg_id").to_owned();
    let requests = receiver.wait_until("inbox_expired", |r| {
        accepted_events(r)
            .iter()
            .any(|e| e["type"] == "inbox_expired")
    });
    drop(alice);
    let requests = {
        let _ = requests;
        receiver.wait_until("disconnect", |r| {
            let events = accepted_events(r);
            events.iter().any(|e| e["type"] == "disconnect")
                && events
                    .iter()
                    .any(|e| e["type"] == "leave" && e["reason"] == "disconnect")
        })
    };
    for request in &requests {
        assert_signed(request);
    }
    let events = accepted_events(&requests);
    let of = |kind: &str, room: Option<&str>| -> Value {
        events
            .iter()
            .find(|e| e["type"] == kind && room.is_none_or(|r| e["room"] == r))
            .unwrap_or_else(|| panic!("no {kind} event in {events:#?}"))
            .clone()
    };
    // Common fields: a unique id, the time, the node and the worker.
    let mut ids: Vec<&str> = events.iter().map(|e| e["id"].as_str().unwrap()).collect();
    ids.dedup();
    assert_eq!(ids.len(), events.len(), "ids are unique");
    for e in &events {
        assert!(e["time"].as_u64().is_some() && e["node"].is_string(), "{e}");
        assert!(e["worker"].as_u64().is_some(), "{e}");
    }
    let connect = of("connect", None);
    assert_eq!(
        (&connect["conn"], &connect["user"]),
        (&json!(conn), &json!("alice"))
    );
    let join = of("join", Some("lobby"));
    assert_eq!(
        (&join["conn"], &join["user"]),
        (&json!(conn), &json!("alice"))
    );
    let publish = of("publish", None);
    assert_eq!(publish["room"], "lobby");
    assert_eq!(publish["offset"], offset);
    assert_eq!(publish["payload"], json!({"n":[1,"two"]}));
    assert_eq!(
        (&publish["conn"], &publish["user"]),
        (&json!(conn), &json!("alice"))
    );
    let leave = of("leave", Some("lobby"));
    assert_eq!(
        (&leave["conn"], &leave["reason"]),
        (&json!(conn), &json!("leave"))
    );
    let cut = of("leave", Some("other"));
    assert_eq!(
        (&cut["conn"], &cut["reason"]),
        (&json!(conn), &json!("disconnect"))
    );
    let expired = of("inbox_expired", None);
    assert_eq!(expired["user"], "bob");
    assert_eq!(expired["msg_id"], msg_id.as_str());
    assert_eq!(expired["deliveries"], 0);
    let disconnect = of("disconnect", None);
    assert_eq!(
        (&disconnect["conn"], &disconnect["user"]),
        (&json!(conn), &json!("alice"))
    );
    // What one connection did arrives in the order it happened.
    let position = |e: &Value| events.iter().position(|x| x == e).unwrap();
    assert!(position(&connect) < position(&join));
    assert!(position(&join) < position(&publish));
    assert!(position(&publish) < position(&leave));
    assert!(position(&leave) < position(&disconnect));
}

#[tokio::test]
async fn only_the_configured_events_are_sent() {
    let receiver = Receiver::start(|_| Answer::status(200));
    let server = server(receiver.url("/hooks"), |c| {
        c.webhook_events = vec!["join".into()];
    });
    let mut client = Client::connect(&server.url("/ws")).await;
    client.ok(json!({"type":"join","room":"a"})).await;
    client
        .ok(json!({"type":"publish","room":"a","payload":1}))
        .await;
    client.ok(json!({"type":"leave","room":"a"})).await;
    client.ok(json!({"type":"join","room":"b"})).await;
    let requests = receiver.wait_until("two joins", |r| accepted_events(r).len() >= 2);
    let events = accepted_events(&requests);
    let kinds: Vec<(&str, &str)> = events
        .iter()
        .map(|e| (e["type"].as_str().unwrap(), e["room"].as_str().unwrap()))
        .collect();
    assert_eq!(kinds, [("join", "a"), ("join", "b")]);
    // An anonymous connection's events carry a null user.
    assert_eq!(events[0]["user"], Value::Null);
}

#[tokio::test]
async fn a_backend_answering_500_gets_the_same_batches_again_and_every_event_in_order() {
    let calls = Arc::new(AtomicUsize::new(0));
    let receiver = {
        let calls = calls.clone();
        Receiver::start(move |_| {
            if calls.fetch_add(1, Ordering::SeqCst) < 3 {
                Answer::status(500)
            } else {
                Answer::status(200)
            }
        })
    };
    let server = server(receiver.url("/hooks"), |c| {
        c.webhook_events = vec!["publish".into()];
        c.webhook_batch_size = 5;
    });
    let mut client = Client::connect(&server.url("/ws")).await;
    let offsets = publish_many(&mut client, "feed", 30).await;
    let requests = receiver.wait_until("30 events accepted", |r| {
        offsets_of(&accepted_events(r)).len() >= 30
    });
    assert_eq!(offsets_of(&accepted_events(&requests)), offsets);
    // The failed batch was sent again as it was: same events, same ids.
    assert!(requests[..3].iter().all(|r| r.status == 500));
    assert_eq!(requests[0].body, requests[3].body);
    assert!(metric(&server, "ringcast_webhook_failed_requests_total") >= 3);
    assert_eq!(metric(&server, "ringcast_webhook_events_total"), 30);
}

#[tokio::test]
async fn a_backend_that_refuses_connections_for_a_while_gets_every_event_later_in_order() {
    let down = refused_port();
    let server = server(format!("http://{}/hooks", down.addr), |c| {
        c.webhook_events = vec!["publish".into()];
        c.webhook_batch_size = 4;
    });
    let mut client = Client::connect(&server.url("/ws")).await;
    let offsets = publish_many(&mut client, "feed", 20).await;
    wait_for("two refused attempts", || {
        metric(&server, "ringcast_webhook_failed_requests_total") >= 2
    });
    let receiver = Receiver::start_at(down.release(), |_| Answer::status(200));
    let requests = receiver.wait_until("20 events accepted", |r| {
        offsets_of(&accepted_events(r)).len() >= 20
    });
    assert_eq!(offsets_of(&accepted_events(&requests)), offsets);
    assert_eq!(
        metric(
            &server,
            "ringcast_webhook_dropped_total{reason=\"queue_full\"}"
        ),
        0
    );
}

#[tokio::test]
async fn a_backend_that_stays_down_costs_a_bounded_queue_and_the_loss_is_counted() {
    const QUEUE: usize = 8;
    const BATCH: usize = 4;
    const SENT: usize = 100;
    let down = refused_port();
    let server = server(format!("http://{}/hooks", down.addr), |c| {
        c.webhook_events = vec!["publish".into()];
        c.webhook_batch_size = BATCH;
        c.webhook_queue_size = QUEUE;
    });
    let mut client = Client::connect(&server.url("/ws")).await;
    let offsets = publish_many(&mut client, "feed", SENT).await;
    // The sender holds one batch and the queue QUEUE events; everything else is dropped.
    let dropped_series = "ringcast_webhook_dropped_total{reason=\"queue_full\"}";
    wait_for("the overflow is counted", || {
        metric(&server, dropped_series) as usize >= SENT - QUEUE - BATCH
    });
    let dropped = metric(&server, dropped_series) as usize;
    assert!(dropped < SENT, "something is kept: {dropped}");
    // The queue holds events, never more than its bound (the gauge is refreshed after each
    // failed attempt).
    wait_for("the queue gauge is refreshed", || {
        metric(&server, "ringcast_webhook_queued_events") > 0
    });
    assert!(metric(&server, "ringcast_webhook_queued_events") as usize <= QUEUE);
    // Publishing went on unhindered meanwhile: every publish was answered with its offset.
    assert_eq!(offsets.len(), SENT);

    let receiver = Receiver::start_at(down.release(), |_| Answer::status(200));
    wait_for("every event delivered or counted as dropped", || {
        metric(&server, "ringcast_webhook_events_total") as usize
            + metric(&server, dropped_series) as usize
            == SENT
    });
    let dropped = metric(&server, dropped_series) as usize;
    assert!(dropped >= SENT - QUEUE - BATCH, "{dropped}");
    // What arrives is what the queue and the batch held: the oldest event first, then the others
    // in order (a loss can fall between two of them when the sender was slow to take the first
    // ones, before it found the backend down).
    let delivered = offsets_of(&accepted_events(&receiver.requests()));
    assert_eq!(delivered.len(), SENT - dropped);
    assert!(delivered.len() <= QUEUE + BATCH, "{delivered:?}");
    assert_eq!(delivered[0], offsets[0]);
    assert!(delivered.windows(2).all(|w| w[0] < w[1]), "{delivered:?}");
    assert!(
        delivered.iter().all(|o| offsets.contains(o)),
        "{delivered:?}"
    );
}

#[test]
fn a_webhook_config_without_its_secret_or_with_bad_values_is_refused_at_start() {
    let base = || Config {
        webhook_url: Some("http://127.0.0.1:9/hooks".into()),
        webhook_secret: Some(Secret(HOOK_SECRET.into())),
        ..Config::default()
    };
    base()
        .validate()
        .expect("a complete webhook config is valid");
    // `embedded`: a program that starts a `Server` from an unvalidated `Config` is refused too.
    let refused = |tweak: &dyn Fn(&mut Config), says: &str, embedded: bool| {
        let mut config = base();
        tweak(&mut config);
        let error = config.validate().expect_err(says).to_string();
        assert!(error.contains(says), "{error:?} should say {says:?}");
        if embedded {
            let started = ringcast::driver::Server::start(Config {
                listen: "127.0.0.1:0".parse().unwrap(),
                ..config
            });
            assert!(started.is_err(), "{says}");
        }
    };
    refused(&|c| c.webhook_secret = None, "needs webhook_secret", true);
    refused(
        &|c| c.webhook_secret = Some(Secret("short".into())),
        "at least 16 bytes",
        false,
    );
    refused(
        &|c| c.webhook_url = Some("https://backend.example.com/hooks".into()),
        "http://",
        true,
    );
    refused(
        &|c| c.webhook_events = vec!["join".into(), "teleport".into()],
        "\"teleport\" is no event",
        true,
    );
    refused(
        &|c| c.webhook_url = None,
        "webhook_secret is set (set by the program) but needs webhook_url or authorize_join_url",
        false,
    );
}

#[test]
fn the_binary_refuses_a_webhook_url_without_a_secret_with_a_clear_error() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ringcast"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--webhook-url",
            "http://127.0.0.1:9/hooks",
        ])
        .env_remove("RINGCAST_WEBHOOK_SECRET")
        .output()
        .expect("run ringcast");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("webhook_url is set (flag --webhook-url) but needs webhook_secret"),
        "{stderr}"
    );
}

#[tokio::test]
async fn a_publish_through_the_server_api_raises_the_same_event_marked_api() {
    const API_KEY: &str = "webhook-api-key-0123456789";
    let receiver = Receiver::start(|_| Answer::status(200));
    let server = server(receiver.url("/hooks"), |c| {
        c.webhook_events = vec!["publish".into()];
        c.api_listen = Some("127.0.0.1:0".parse().unwrap());
        c.api_key = vec![Secret(API_KEY.into())];
    });
    // A member, so the publish takes an offset.
    let mut member = Client::connect(&server.url("/ws")).await;
    member.ok(json!({"type":"join","room":"news"})).await;
    let api = server.api_addr().expect("the API listens");
    let body = json!({"room":"news","payload":{"title":"hello"}}).to_string();
    let request = format!(
        "POST /api/publish HTTP/1.1\r\nHost: x\r\nAuthorization: apikey {API_KEY}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let (head, answer) = common::http_request(api, &request);
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let offset = serde_json::from_str::<Value>(&answer).unwrap()["offset"]
        .as_u64()
        .expect("an offset");
    let requests = receiver.wait_until("the publish event", |r| !accepted_events(r).is_empty());
    let events = accepted_events(&requests);
    assert_eq!(events[0]["type"], "publish");
    assert_eq!(events[0]["conn"], "api");
    assert_eq!(events[0]["user"], Value::Null);
    assert_eq!(events[0]["offset"], offset);
    assert_eq!(events[0]["payload"], json!({"title":"hello"}));
}

#[tokio::test]
async fn an_outage_and_its_overflow_are_logged_once_each_not_per_event() {
    let down = refused_port();
    let url = format!("http://{}/hooks", down.addr);
    let (mut child, addr, log) = common::spawn_binary(
        env!("CARGO_BIN_EXE_ringcast"),
        &[
            "--workers",
            "1",
            "--webhook-url",
            &url,
            "--webhook-events",
            "publish",
            "--webhook-queue-size",
            "4",
            "--webhook-batch-size",
            "2",
            "--webhook-retry-max-delay",
            "50ms",
            "--webhook-secret",
            HOOK_SECRET,
        ],
    );
    let mut client = Client::connect(&format!("ws://{addr}/ws")).await;
    publish_many(&mut client, "feed", 40).await;
    let metrics = || http_get(addr, "/metrics");
    let dropped = |m: &str| -> u64 {
        m.lines()
            .find_map(|l| {
                l.strip_prefix("ringcast_webhook_dropped_total{reason=\"queue_full\"} ")?
                    .parse()
                    .ok()
            })
            .unwrap_or(0)
    };
    wait_for("the overflow is counted", || {
        dropped(&metrics()) >= 40 - 4 - 2
    });
    // The backend comes back: the queue drains and the burst's end is logged.
    let receiver = Receiver::start_at(down.release(), |_| Answer::status(200));
    receiver.wait_until("the kept events arrive", |r| {
        offsets_of(&accepted_events(r)).len() as u64 + dropped(&metrics()) == 40
    });
    // One more event after the burst: delivered, and it ends the burst in the log.
    publish_many(&mut client, "feed2", 1).await;
    wait_for("the end of the burst is logged", || {
        log.lock().unwrap().contains("webhook queue has room again")
    });
    let _ = child.kill();
    let _ = child.wait();
    let log = log.lock().unwrap().clone();
    let count = |needle: &str| log.matches(needle).count();
    assert_eq!(count("webhook delivery failed"), 1, "{log}");
    assert_eq!(count("webhook queue full"), 1, "{log}");
    assert_eq!(count("webhook queue has room again"), 1, "{log}");
    assert_eq!(count("webhook backend takes events again"), 1, "{log}");
}

/// `kill -SIG pid`: the graceful stop a service manager sends.
fn signal(child: &std::process::Child, sig: &str) {
    let ok = std::process::Command::new("kill")
        .args([&format!("-{sig}"), &child.id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok);
}

#[tokio::test]
async fn events_queued_when_the_server_stops_reach_the_backend_before_it_exits() {
    // A slow backend: each request of one event takes 200 ms, so the queue is still long when
    // the drain (a moment) is over.
    let receiver = Receiver::start(|_| Answer {
        hold: Duration::from_millis(200),
        ..Answer::status(204)
    });
    let url = receiver.url("/hooks");
    let (mut child, addr, log) = common::spawn_binary(
        env!("CARGO_BIN_EXE_ringcast"),
        &[
            "--workers",
            "1",
            "--webhook-url",
            &url,
            "--webhook-events",
            "publish,disconnect",
            "--webhook-batch-size",
            "1",
            "--webhook-secret",
            HOOK_SECRET,
        ],
    );
    let mut client = Client::connect(&format!("ws://{addr}/ws")).await;
    let offsets = publish_many(&mut client, "feed", 8).await;
    signal(&child, "TERM");
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0));
    // Everything was delivered before the process exited: nothing arrives afterwards.
    let events = accepted_events(&receiver.requests());
    assert_eq!(offsets_of(&events), offsets, "{events:?}");
    assert_eq!(
        events.last().map(|e| e["type"].clone()),
        Some(json!("disconnect")),
        "the drain's own disconnect event is delivered last: {events:?}"
    );
    let log = log.lock().unwrap().clone();
    assert!(!log.contains("undelivered"), "{log}");
}

#[tokio::test]
async fn a_backend_that_is_down_at_stop_delays_the_exit_by_at_most_the_drain_timeout_and_the_loss_is_logged(
) {
    let down = refused_port();
    let url = format!("http://{}/hooks", down.addr);
    let (mut child, addr, log) = common::spawn_binary(
        env!("CARGO_BIN_EXE_ringcast"),
        &[
            "--workers",
            "1",
            "--drain-timeout",
            "1s",
            "--webhook-url",
            &url,
            "--webhook-events",
            "publish",
            "--webhook-secret",
            HOOK_SECRET,
        ],
    );
    let mut client = Client::connect(&format!("ws://{addr}/ws")).await;
    publish_many(&mut client, "feed", 5).await;
    signal(&child, "TERM");
    // The process exits by itself (a hang here fails the test by its harness timeout).
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0));
    let log = log.lock().unwrap().clone();
    assert_eq!(
        log.matches("server stopped with webhook events undelivered")
            .count(),
        1,
        "{log}"
    );
    assert!(log.contains("lost=5"), "{log}");
    drop(down);
}
