//! Join authorization (`authorize_join_url`), as a specification, against a backend on
//! 127.0.0.1: the server asks `{user, room, conn, node}` (signed when `webhook_secret` is set)
//! before it accepts a join; `{"allow": true}` lets it through, `{"allow": false, "reason"}`
//! refuses it with `forbidden` and that reason; a backend that is down, too slow or answers
//! something else refuses it with `unavailable` (fail closed) or lets it through (fail open);
//! decisions are reused for the cache ttl; and a slow backend delays nobody else.
//!
//! Waiting is always for an event (a reply, a request at the backend), never for a span of
//! wall-clock time.

mod auth_support;
mod backend_support;
mod common;
mod rooms_client;

use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use backend_support::{expected_signature, refused_port, Answer, Receiver, Request};
use common::{http_get, TestServer};
use ringcast::config::Config;
use ringcast::security::{AuthMode, Secret};
use rooms_client::Client;
use serde_json::{json, Value};

const JWT_SECRET: &str = "an-hmac-secret-of-at-least-32-bytes!";
const HOOK_SECRET: &str = "authorize-test-secret-0123456789";

fn token(sub: &str) -> String {
    auth_support::hs256_token(JWT_SECRET, sub)
}

/// Optional auth, joins asked of `url`.
fn server(url: String, tweak: impl FnOnce(&mut Config)) -> TestServer {
    TestServer::with(|c| {
        c.security.auth = AuthMode::Optional;
        c.security.auth_jwt_secret = Some(Secret(JWT_SECRET.into()));
        c.authorize_join_url = Some(url);
        c.authorize_join_timeout = Duration::from_secs(5);
        tweak(c);
    })
}

async fn connect_as(server: &TestServer, user: &str) -> Client {
    let url = format!("{}?token={}", server.url("/ws"), token(user));
    Client::connect_as(&url, Some(user)).await
}

fn metric(server: &TestServer, series: &str) -> u64 {
    http_get(server.addr, "/metrics")
        .lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or(0)
}

/// Allows every room but `vip`.
fn vip_only(request: &Request) -> Answer {
    if request.json()["room"] == "vip" {
        Answer::ok(r#"{"allow":false,"reason":"vip members only"}"#)
    } else {
        Answer::ok(r#"{"allow":true}"#)
    }
}

async fn join(client: &mut Client, room: &str) -> Value {
    client.call(json!({"type":"join","room":room})).await
}

#[tokio::test]
async fn the_backend_allows_or_refuses_each_join_and_is_asked_who_joins_what() {
    let backend = Receiver::start(vip_only);
    let server = server(backend.url("/authorize"), |c| {
        c.webhook_secret = Some(Secret(HOOK_SECRET.into()));
    });
    let mut alice = connect_as(&server, "alice").await;
    let joined = join(&mut alice, "lobby").await;
    assert_eq!(joined["ok"], true, "{joined}");
    assert!(joined["offset"].is_u64(), "a join reply: {joined}");

    let refused = join(&mut alice, "vip").await;
    assert_eq!(refused["ok"], false, "{refused}");
    assert_eq!(refused["error"]["code"], "forbidden");
    assert_eq!(refused["error"]["message"], "vip members only");
    // Refused means not a member: a publish there is not joined.
    alice
        .fails(json!({"type":"leave","room":"vip"}), "not_joined")
        .await;

    let asked = backend.requests();
    assert_eq!(asked.len(), 2);
    for (request, room) in asked.iter().zip(["lobby", "vip"]) {
        assert!(request.line.starts_with("POST /authorize "));
        let body = request.json();
        assert_eq!(body["user"], "alice");
        assert_eq!(body["room"], room);
        assert_eq!(body["conn"], alice.conn.as_str());
        assert!(body["node"].is_string());
        let ts = request.header("x-ringcast-timestamp").expect("signed");
        assert_eq!(
            request.header("x-ringcast-signature"),
            Some(expected_signature(HOOK_SECRET, ts, &request.body).as_str())
        );
    }

    // An anonymous connection is asked about with a null user.
    let mut anonymous = Client::connect(&server.url("/ws")).await;
    let joined = join(&mut anonymous, "lobby").await;
    assert_eq!(joined["ok"], true, "{joined}");
    assert_eq!(backend.requests()[2].json()["user"], Value::Null);
    assert_eq!(
        metric(&server, "ringcast_authorize_join_total{result=\"allowed\"}"),
        2
    );
    assert_eq!(
        metric(&server, "ringcast_authorize_join_total{result=\"denied\"}"),
        1
    );
}

#[tokio::test]
async fn an_answer_outside_the_contract_is_a_failure_not_a_decision() {
    let backend = Receiver::start(|request| match request.json()["room"].as_str() {
        Some("teapot") => Answer::status(418),
        _ => Answer::ok(r#"{"allowed":true}"#),
    });
    let server = server(backend.url("/authorize"), |_| {});
    let mut client = Client::connect(&server.url("/ws")).await;
    client
        .fails(json!({"type":"join","room":"teapot"}), "unavailable")
        .await;
    client
        .fails(json!({"type":"join","room":"typo"}), "unavailable")
        .await;
}

#[tokio::test]
async fn a_decision_is_reused_for_the_same_user_and_room_until_its_ttl() {
    let backend = Receiver::start(vip_only);
    let server = server(backend.url("/authorize"), |c| {
        c.authorize_join_cache_ttl = Duration::from_secs(3600);
    });
    let mut alice = connect_as(&server, "alice").await;
    assert_eq!(join(&mut alice, "lobby").await["ok"], true);
    alice.ok(json!({"type":"leave","room":"lobby"})).await;
    assert_eq!(join(&mut alice, "lobby").await["ok"], true);
    // A refusal is cached too.
    alice
        .fails(json!({"type":"join","room":"vip"}), "forbidden")
        .await;
    alice
        .fails(json!({"type":"join","room":"vip"}), "forbidden")
        .await;
    assert_eq!(backend.requests().len(), 2, "one request per (user, room)");
    assert_eq!(
        metric(&server, "ringcast_authorize_join_cache_hits_total"),
        2
    );
    // Another user is asked about.
    let mut bob = connect_as(&server, "bob").await;
    assert_eq!(join(&mut bob, "lobby").await["ok"], true);
    assert_eq!(backend.requests().len(), 3);

    // With a ttl of 0 every join is asked.
    let uncached = Receiver::start(vip_only);
    let server = server_with_ttl_zero(&uncached);
    let mut alice = connect_as(&server, "alice").await;
    assert_eq!(join(&mut alice, "lobby").await["ok"], true);
    alice.ok(json!({"type":"leave","room":"lobby"})).await;
    assert_eq!(join(&mut alice, "lobby").await["ok"], true);
    assert_eq!(uncached.requests().len(), 2);
}

#[tokio::test]
async fn identical_questions_asked_at_once_cost_the_backend_one_request() {
    // A backend that takes its time: every question below arrives while the first is with it.
    let backend = Receiver::start(|_| Answer {
        hold: Duration::from_secs(1),
        ..Answer::ok(r#"{"allow":true}"#)
    });
    let server = server(backend.url("/authorize"), |c| {
        c.authorize_join_cache_ttl = Duration::from_secs(3600);
    });
    // One user opening three tabs at once, and another user at the same moment.
    let mut tabs = Vec::new();
    for _ in 0..3 {
        tabs.push(connect_as(&server, "alice").await);
    }
    let mut bob = connect_as(&server, "bob").await;
    let mut asked = Vec::new();
    for tab in &mut tabs {
        asked.push(tab.send(json!({"type":"join","room":"lobby"})).await);
    }
    let bob_asked = bob.send(json!({"type":"join","room":"lobby"})).await;
    for (tab, id) in tabs.iter_mut().zip(&asked) {
        let (reply, _) = tab.reply(id).await;
        assert_eq!(reply["ok"], true, "{reply}");
    }
    assert_eq!(bob.reply(&bob_asked).await.0["ok"], true);
    let users: Vec<Value> = backend
        .requests()
        .iter()
        .map(|r| r.json()["user"].clone())
        .collect();
    assert_eq!(users.len(), 2, "one request per (user, room): {users:?}");
    assert!(users.contains(&json!("alice")) && users.contains(&json!("bob")));
    assert_eq!(
        metric(&server, "ringcast_authorize_join_total{result=\"allowed\"}"),
        4,
        "every join is counted with its decision"
    );

    // With a ttl of 0 nothing is shared: each join is asked, even at the same moment.
    let uncached = Receiver::start(|_| Answer {
        hold: Duration::from_millis(300),
        ..Answer::ok(r#"{"allow":true}"#)
    });
    let server = server_with_ttl_zero(&uncached);
    let mut tabs = Vec::new();
    for _ in 0..2 {
        tabs.push(connect_as(&server, "alice").await);
    }
    let mut asked = Vec::new();
    for tab in &mut tabs {
        asked.push(tab.send(json!({"type":"join","room":"lobby"})).await);
    }
    for (tab, id) in tabs.iter_mut().zip(&asked) {
        assert_eq!(tab.reply(id).await.0["ok"], true);
    }
    assert_eq!(uncached.requests().len(), 2);
}

fn server_with_ttl_zero(backend: &Receiver) -> TestServer {
    server(backend.url("/authorize"), |c| {
        c.authorize_join_cache_ttl = Duration::ZERO;
    })
}

#[tokio::test]
async fn a_backend_that_is_down_refuses_joins_when_fail_closed_and_allows_them_when_fail_open() {
    let down = refused_port();
    let closed = server(format!("http://{}/authorize", down.addr), |_| {});
    let mut client = Client::connect(&closed.url("/ws")).await;
    client
        .fails(json!({"type":"join","room":"lobby"}), "unavailable")
        .await;
    assert_eq!(
        metric(
            &closed,
            "ringcast_authorize_join_total{result=\"fail_closed\"}"
        ),
        1
    );
    // A failure is not cached: the next join asks again (and fails again).
    client
        .fails(json!({"type":"join","room":"lobby"}), "unavailable")
        .await;
    assert_eq!(metric(&closed, "ringcast_authorize_join_requests_total"), 2);

    let open = server(format!("http://{}/authorize", down.addr), |c| {
        c.authorize_join_fail_open = true;
    });
    let mut client = Client::connect(&open.url("/ws")).await;
    let joined = join(&mut client, "lobby").await;
    assert_eq!(joined["ok"], true, "{joined}");
    assert_eq!(
        metric(&open, "ringcast_authorize_join_total{result=\"fail_open\"}"),
        1
    );
}

#[tokio::test]
async fn a_backend_slower_than_the_timeout_is_a_failure() {
    // It would allow, but only after the timeout: the join follows the failure policy.
    let backend = Receiver::start(|_| Answer {
        hold: Duration::from_secs(3),
        ..Answer::ok(r#"{"allow":true}"#)
    });
    let server = server(backend.url("/authorize"), |c| {
        c.authorize_join_timeout = Duration::from_millis(100);
    });
    let mut client = Client::connect(&server.url("/ws")).await;
    client
        .fails(json!({"type":"join","room":"lobby"}), "unavailable")
        .await;
}

#[tokio::test]
async fn a_slow_authorizer_delays_no_other_connection() {
    // The backend holds the question about `slow` until the test opens the gate.
    let gate = Arc::new((Mutex::new(false), Condvar::new()));
    let backend = {
        let gate = gate.clone();
        Receiver::start(move |request| {
            if request.json()["room"] == "slow" {
                let (open, cond) = &*gate;
                let mut open = open.lock().unwrap();
                while !*open {
                    open = cond.wait(open).unwrap();
                }
            }
            Answer::ok(r#"{"allow":true}"#)
        })
    };
    // One worker: both connections share it, so a blocked worker would block both.
    let server = server(backend.url("/authorize"), |c| c.workers = 1);
    let mut waiting = Client::connect(&server.url("/ws")).await;
    let pending = waiting.send(json!({"type":"join","room":"slow"})).await;
    backend.wait_arrivals(1);
    let mut other = Client::connect(&server.url("/ws")).await;
    // Its own join is asked and answered while the slow one waits, and its messages flow.
    assert_eq!(join(&mut other, "fast").await["ok"], true);
    other
        .ok(json!({"type":"publish","room":"fast","payload":"hello"}))
        .await;
    let message = other.next_of("message").await;
    assert_eq!(message["payload"], "hello");
    assert!(backend
        .requests()
        .iter()
        .all(|r| r.json()["room"] == "fast"));

    // Open the gate: the slow join completes.
    *gate.0.lock().unwrap() = true;
    gate.1.notify_all();
    let (reply, _) = waiting.reply(&pending).await;
    assert_eq!(reply["ok"], true, "{reply}");
}
