//! Messages to users (`send` with `to_user`), as a specification: every connection of the user on
//! every worker receives them; with `ack` they are kept until acknowledged and redelivered, marked,
//! on reconnect and after the ack timeout; an offline user gets its inbox when it connects; the
//! inbox's TTL and bounds hold under a flood and every refusal is counted; the sender can get a
//! `delivered` receipt; anonymous connections and servers without auth get specific errors.
//!
//! Users authenticate with an HS256 token in `?token=` (docs/security.md). Waiting is always for
//! an event (a message, a metric), never for a span of wall-clock time.

mod auth_support;
mod common;
mod rooms_client;

use std::time::{Duration, Instant};

use common::*;
use ringcast::config::Config;
use ringcast::security::{AuthMode, Secret};
use rooms_client::Client;
use serde_json::{json, Value};

const SECRET: &str = "an-hmac-secret-of-at-least-32-bytes!";

/// Guards against a broken server hanging the test; never part of an assertion.
const HANG_GUARD: Duration = Duration::from_secs(10);

fn token(sub: &str) -> String {
    auth_support::hs256_token(SECRET, sub)
}

/// Two workers, auth `mode`, acks that never time out unless `tweak` says otherwise.
fn server(mode: AuthMode, tweak: impl FnOnce(&mut Config)) -> TestServer {
    TestServer::with(|c| {
        c.security.auth = mode;
        c.security.auth_jwt_secret = Some(Secret(SECRET.into()));
        c.ack_timeout = Duration::from_secs(3600);
        c.ack_backoff_cap = Duration::from_secs(3600);
        tweak(c);
    })
}

async fn connect_as(server: &TestServer, user: &str) -> Client {
    let url = format!("{}?token={}", server.url("/ws"), token(user));
    Client::connect_as(&url, Some(user)).await
}

/// A connection of `user` on worker `worker` (the kernel spreads connections over the workers).
async fn connect_as_on(server: &TestServer, user: &str, worker: u32) -> Client {
    for _ in 0..200 {
        let c = connect_as(server, user).await;
        if c.worker() == worker {
            return c;
        }
    }
    panic!("200 connections never reached worker {worker}");
}

/// Sends a message to `user`; returns the reply.
async fn send_to(from: &mut Client, user: &str, payload: Value, ack: bool, receipt: bool) -> Value {
    from.call(json!({"type":"send","to_user":user,"payload":payload,"ack":ack,"receipt":receipt}))
        .await
}

/// Sends a message to `user` and returns its `msg_id` (asserting an ok reply).
async fn sent(from: &mut Client, user: &str, payload: Value, ack: bool) -> String {
    let reply = send_to(from, user, payload, ack, false).await;
    assert_eq!(reply["ok"], true, "{reply}");
    reply["msg_id"].as_str().expect("msg_id").to_owned()
}

async fn ack(client: &mut Client, msg_id: &str) -> Value {
    client
        .send_text(&json!({"type":"ack","id":msg_id}).to_string())
        .await;
    client.reply(msg_id).await.0
}

/// The value of the `/metrics` line that starts with `series ` (0 when absent).
fn metric(server: &TestServer, series: &str) -> u64 {
    let body = http_get(server.addr, "/metrics");
    body.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or(0)
}

/// Waits until `series` reads `want` in `/metrics`.
fn wait_metric(server: &TestServer, series: &str, want: u64) {
    let deadline = Instant::now() + HANG_GUARD;
    loop {
        let got = metric(server, series);
        if got == want {
            return;
        }
        assert!(Instant::now() < deadline, "{series} is {got}, want {want}");
        std::thread::yield_now();
    }
}

/// Proves nothing else is queued for `client` before a marker: `marker` (sent by `from` to
/// `client`'s user, without ack) must be the next message `client` receives.
async fn next_is_marker(client: &mut Client, from: &mut Client, user: &str) {
    sent(from, user, json!("marker"), false).await;
    let next = client.next_of("user_message").await;
    assert_eq!(next["payload"], "marker", "{next}");
}

#[tokio::test]
async fn a_message_to_a_user_reaches_every_connection_of_the_user_on_every_worker() {
    let server = server(AuthMode::Required, |_| {});
    let mut ann0 = connect_as_on(&server, "ann", 0).await;
    let mut ann1 = connect_as_on(&server, "ann", 1).await;
    let mut cat = connect_as(&server, "cat").await;
    let mut bob = connect_as(&server, "bob").await;
    let raw =
        r#"{"type":"send","to_user":"ann","id":"s1","payload":{"text": "hé", "n": [1, 2.50]}}"#;
    bob.send_text(raw).await;
    let (reply, _) = bob.reply("s1").await;
    assert_eq!(reply["ok"], true, "{reply}");
    let msg_id = reply["msg_id"].as_str().unwrap();
    for ann in [&mut ann0, &mut ann1] {
        let m = ann.next_of("user_message").await;
        assert_eq!(m["v"], 1);
        assert_eq!(m["msg_id"], msg_id);
        assert_eq!(m["from"], bob.conn.as_str());
        assert_eq!(m["user"], "bob");
        assert_eq!(m["ack"], false);
        assert_eq!(m["redelivered"], false);
        assert!(m["ts"].as_u64().unwrap() > 1_600_000_000_000);
        assert_eq!(m["payload"], json!({"text": "hé", "n": [1, 2.50]}));
    }
    // Nobody else got it: cat's next user message is the one addressed to cat.
    next_is_marker(&mut cat, &mut bob, "cat").await;
    // Ids are distinct per message.
    let second = sent(&mut bob, "ann", json!(2), false).await;
    assert_ne!(second, msg_id);
    assert_eq!(
        ann0.next_of("user_message").await["msg_id"],
        second.as_str()
    );
    assert_eq!(
        ann1.next_of("user_message").await["msg_id"],
        second.as_str()
    );
    // One sender's messages reach each connection in the order they were sent.
    for n in 0..100 {
        let send = json!({"type":"send","to_user":"ann","payload":n});
        bob.send_text(&send.to_string()).await;
    }
    for ann in [&mut ann0, &mut ann1] {
        for n in 0..100 {
            assert_eq!(ann.next_of("user_message").await["payload"], n);
        }
    }
}

#[tokio::test]
async fn an_unacked_message_is_redelivered_marked_on_reconnect_and_an_acked_one_is_not() {
    let server = server(AuthMode::Required, |_| {});
    let mut bob = connect_as(&server, "bob").await;
    let mut ann = connect_as(&server, "ann").await;
    let m1 = sent(&mut bob, "ann", json!("one"), true).await;
    let m2 = sent(&mut bob, "ann", json!("two"), true).await;
    for (id, payload) in [(&m1, "one"), (&m2, "two")] {
        let m = ann.next_of("user_message").await;
        assert_eq!(
            (m["msg_id"].as_str(), m["payload"].as_str()),
            (Some(id.as_str()), Some(payload))
        );
        assert_eq!(
            (m["ack"].as_bool(), m["redelivered"].as_bool()),
            (Some(true), Some(false))
        );
    }
    assert_eq!(ack(&mut ann, &m1).await["ok"], true);
    drop(ann);
    let mut ann = connect_as(&server, "ann").await;
    let again = ann.next_of("user_message").await;
    assert_eq!(again["msg_id"], m2.as_str());
    assert_eq!(again["payload"], "two");
    assert_eq!(again["redelivered"], true);
    next_is_marker(&mut ann, &mut bob, "ann").await;
    // Acknowledged from the new connection: a third one gets nothing.
    assert_eq!(ack(&mut ann, &m2).await["ok"], true);
    let mut ann3 = connect_as(&server, "ann").await;
    next_is_marker(&mut ann3, &mut bob, "ann").await;
    wait_metric(&server, "ringcast_inbox_messages", 0);
}

#[tokio::test]
async fn an_offline_user_gets_its_messages_in_order_when_it_connects() {
    let server = server(AuthMode::Required, |_| {});
    let mut bob = connect_as(&server, "bob").await;
    let ids = [
        sent(&mut bob, "dan", json!(1), true).await,
        sent(&mut bob, "dan", json!(2), false).await,
        sent(&mut bob, "dan", json!(3), true).await,
    ];
    wait_metric(&server, "ringcast_inbox_messages", 3);
    let mut dan = connect_as(&server, "dan").await;
    for (i, id) in ids.iter().enumerate() {
        let m = dan.next_of("user_message").await;
        assert_eq!(m["msg_id"], id.as_str());
        assert_eq!(m["payload"], i + 1);
        assert_eq!(m["redelivered"], false, "never delivered before");
    }
    // The one sent without ack was delivered once and is gone; the others come again.
    let mut dan2 = connect_as(&server, "dan").await;
    for id in [&ids[0], &ids[2]] {
        let m = dan2.next_of("user_message").await;
        assert_eq!(
            (m["msg_id"].as_str(), m["redelivered"].as_bool()),
            (Some(id.as_str()), Some(true))
        );
    }
    next_is_marker(&mut dan2, &mut bob, "dan").await;
}

#[tokio::test]
async fn an_unacked_message_is_redelivered_after_the_ack_timeout_until_acknowledged() {
    let server = server(AuthMode::Required, |c| {
        c.ack_timeout = Duration::from_millis(20);
        c.ack_backoff_factor = 2;
        c.ack_backoff_cap = Duration::from_millis(40);
        c.ack_max_attempts = 3;
    });
    let mut bob = connect_as(&server, "bob").await;
    let mut ann = connect_as(&server, "ann").await;
    let id = sent(&mut bob, "ann", json!("tick"), true).await;
    let flags: Vec<Value> = {
        let mut v = Vec::new();
        for _ in 0..3 {
            let m = ann.next_of("user_message").await;
            assert_eq!(m["msg_id"], id.as_str());
            v.push(m["redelivered"].clone());
        }
        v
    };
    assert_eq!(flags, [json!(false), json!(true), json!(true)]);
    wait_metric(&server, "ringcast_user_redeliveries_total", 2);
    assert_eq!(ack(&mut ann, &id).await["ok"], true);
    wait_metric(&server, "ringcast_inbox_messages", 0);
    // A second ack of the same message: nothing is waiting for it any more.
    let again = ack(&mut ann, &id).await;
    assert_eq!(again["error"]["code"], "unknown_message", "{again}");
}

#[tokio::test]
async fn inbox_ttl_drops_unacknowledged_messages() {
    let server = server(AuthMode::Required, |c| {
        c.inbox_ttl = Duration::from_millis(30)
    });
    let mut bob = connect_as(&server, "bob").await;
    let id = sent(&mut bob, "eve", json!("stale"), true).await;
    wait_metric(&server, "ringcast_inbox_expired_total", 1);
    wait_metric(&server, "ringcast_inbox_messages", 0);
    let mut eve = connect_as(&server, "eve").await;
    next_is_marker(&mut eve, &mut bob, "eve").await;
    let late = ack(&mut eve, &id).await;
    assert_eq!(late["error"]["code"], "unknown_message", "{late}");
}

#[tokio::test]
async fn a_flood_to_an_offline_user_stays_within_the_bounds_and_counts_what_it_refused() {
    let server = server(AuthMode::Required, |c| {
        c.inbox_max_messages = 50;
        c.inbox_max_bytes = 64 * 1024;
    });
    let mut bob = connect_as(&server, "bob").await;
    let mut accepted = Vec::new();
    for n in 0..200 {
        let reply = send_to(&mut bob, "fay", json!(n), true, false).await;
        if reply["ok"] == true {
            accepted.push(n);
        } else {
            assert_eq!(reply["error"]["code"], "inbox_full", "{reply}");
        }
    }
    assert_eq!(
        accepted,
        (0..50).collect::<Vec<_>>(),
        "the first 50 are kept"
    );
    wait_metric(
        &server,
        "ringcast_inbox_refused_total{reason=\"user_messages\"}",
        150,
    );
    assert_eq!(metric(&server, "ringcast_inbox_messages"), 50);
    assert_eq!(metric(&server, "ringcast_user_messages_total"), 50);
    // The byte bound: 2 KiB payloads into a 64 KiB inbox of another user.
    let big = "x".repeat(2048);
    let mut kept = 0;
    for _ in 0..100 {
        let reply = send_to(&mut bob, "gus", json!(big), true, false).await;
        if reply["ok"] == true {
            kept += 1;
        } else {
            assert_eq!(reply["error"]["code"], "inbox_full", "{reply}");
        }
    }
    let refused = metric(
        &server,
        "ringcast_inbox_refused_total{reason=\"user_bytes\"}",
    );
    assert_eq!(kept + refused, 100);
    assert!((20..32).contains(&kept), "{kept} of 2 KiB fit in 64 KiB");
    let bytes = metric(&server, "ringcast_inbox_bytes");
    assert!(bytes <= 2 * 64 * 1024, "{bytes}");
    // Everything kept is delivered, in order.
    let mut fay = connect_as(&server, "fay").await;
    for n in 0..50 {
        assert_eq!(fay.next_of("user_message").await["payload"], n);
    }
    next_is_marker(&mut fay, &mut bob, "fay").await;
}

#[tokio::test]
async fn the_global_inbox_budget_refuses_once_the_servers_inboxes_are_full() {
    // 2 workers: each owns half of 64 KiB; one user's inbox may take 32 KiB.
    let server = server(AuthMode::Required, |c| {
        c.inbox_max_bytes = 32 * 1024;
        c.inbox_max_total_bytes = 64 * 1024;
    });
    let mut bob = connect_as(&server, "bob").await;
    let big = "x".repeat(4096);
    let mut refused_total = false;
    for u in 0..40 {
        for _ in 0..4 {
            let reply = send_to(&mut bob, &format!("u{u}"), json!(big), true, false).await;
            refused_total |= reply["ok"] == false;
        }
    }
    assert!(refused_total);
    assert!(
        metric(
            &server,
            "ringcast_inbox_refused_total{reason=\"total_bytes\"}"
        ) > 0
    );
    assert!(metric(&server, "ringcast_inbox_bytes") <= 64 * 1024);
}

#[tokio::test]
async fn a_delivered_receipt_follows_the_ack_or_the_delivery_of_a_plain_message() {
    let server = server(AuthMode::Required, |_| {});
    let mut bob = connect_as(&server, "bob").await;
    let mut ann = connect_as(&server, "ann").await;
    let reply = send_to(&mut bob, "ann", json!("r"), true, true).await;
    let id = reply["msg_id"].as_str().unwrap().to_owned();
    let sid = reply["id"].as_str().unwrap().to_owned();
    assert_eq!(ann.next_of("user_message").await["msg_id"], id.as_str());
    // Not acknowledged yet: no receipt before the reply to a later command.
    let later = bob.send(json!({"type":"leave","room":"none"})).await;
    let (_, before) = bob.reply(&later).await;
    assert!(
        before.iter().all(|v| v["type"] != "delivered"),
        "{before:?}"
    );
    assert_eq!(ack(&mut ann, &id).await["ok"], true);
    let receipt = bob.next_of("delivered").await;
    assert_eq!(
        receipt,
        json!({"v":1,"type":"delivered","id":sid,"msg_id":id,"to_user":"ann"})
    );
    // Without ack: the receipt comes once the message is handed to the user's connections.
    let reply = send_to(&mut bob, "ann", json!("plain"), false, true).await;
    let receipt = bob.next_of("delivered").await;
    assert_eq!(receipt["msg_id"], reply["msg_id"]);
    // To an offline user: when it connects.
    let reply = send_to(&mut bob, "hal", json!("later"), false, true).await;
    let _hal = connect_as(&server, "hal").await;
    let receipt = bob.next_of("delivered").await;
    assert_eq!(receipt["msg_id"], reply["msg_id"]);
    assert_eq!(receipt["to_user"], "hal");
    // A receipt goes to the sending connection only: once it is gone, nobody gets it.
    let id = sent_with_receipt(&mut bob, "ann").await;
    while ann.next_of("user_message").await["msg_id"] != id.as_str() {}
    drop(bob);
    assert_eq!(ack(&mut ann, &id).await["ok"], true);
    let mut bob2 = connect_as(&server, "bob").await;
    let mut cat = connect_as(&server, "cat").await;
    sent(&mut cat, "bob", json!("marker"), false).await;
    let first = bob2.recv().await;
    assert_eq!(first["type"], "user_message", "{first}");
    assert_eq!(first["payload"], "marker");
}

async fn sent_with_receipt(from: &mut Client, user: &str) -> String {
    let reply = send_to(from, user, json!("r"), true, true).await;
    reply["msg_id"].as_str().expect("msg_id").to_owned()
}

#[tokio::test]
async fn anonymous_connections_and_servers_without_auth_get_specific_errors() {
    let server = server(AuthMode::Optional, |_| {});
    let mut anon = Client::connect(&server.url("/ws")).await;
    let no = ack(&mut anon, "x-0-1").await;
    assert_eq!(no["error"]["code"], "anonymous", "{no}");
    assert!(no["error"]["message"]
        .as_str()
        .unwrap()
        .contains("anonymous"));
    // An anonymous sender may write to a user; the message carries no sender user.
    let mut ann = connect_as(&server, "ann").await;
    let id = sent(&mut anon, "ann", json!("hi"), false).await;
    let m = ann.next_of("user_message").await;
    assert_eq!(m["msg_id"], id.as_str());
    assert_eq!(m["from"], anon.conn.as_str());
    assert!(m.get("user").is_none(), "{m}");
    // Acks of ids that name nothing of this user.
    for bogus in ["nope", "x-0-1", id.as_str()] {
        let r = ack(&mut ann, bogus).await;
        assert_eq!(r["error"]["code"], "unknown_message", "{bogus}: {r}");
    }

    let off = TestServer::start();
    let mut c = Client::connect(&off.url("/ws")).await;
    c.fails(
        json!({"type":"send","to_user":"ann","payload":1}),
        "auth_disabled",
    )
    .await;
    c.fails(json!({"type":"ack","id":"x"}), "anonymous").await;
}

#[tokio::test]
async fn a_restart_loses_the_in_memory_inbox_and_old_ids_are_unknown() {
    let first = server(AuthMode::Required, |_| {});
    let mut bob = connect_as(&first, "bob").await;
    let old = sent(&mut bob, "ann", json!("before restart"), true).await;
    drop(bob);
    first.shutdown();
    let second = server(AuthMode::Required, |_| {});
    let mut bob = connect_as(&second, "bob").await;
    let mut ann = connect_as(&second, "ann").await;
    next_is_marker(&mut ann, &mut bob, "ann").await;
    let r = ack(&mut ann, &old).await;
    assert_eq!(r["error"]["code"], "unknown_message", "{r}");
    let new = sent(&mut bob, "ann", json!(1), false).await;
    assert_ne!(new, old);
}

#[tokio::test]
async fn a_message_with_ack_that_cannot_be_kept_is_not_delivered_even_to_an_online_user() {
    let server = server(AuthMode::Required, |c| c.inbox_max_messages = 1);
    let mut bob = connect_as(&server, "bob").await;
    let mut ann = connect_as(&server, "ann").await;
    let kept = sent(&mut bob, "ann", json!("kept"), true).await;
    let refused = send_to(&mut bob, "ann", json!("refused"), true, false).await;
    assert_eq!(refused["error"]["code"], "inbox_full", "{refused}");
    // Without ack nothing is kept, so the bound does not apply to an online user.
    sent(&mut bob, "ann", json!("plain"), false).await;
    let m = ann.next_of("user_message").await;
    assert_eq!(m["msg_id"], kept.as_str());
    assert_eq!(ann.next_of("user_message").await["payload"], "plain");
}
