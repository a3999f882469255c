//! `"presence": false` on join: a member that opts out of membership events still receives the
//! room's messages and is still listed by `presence`; members that did not opt out keep seeing
//! every `joined` and `left`, including those of quiet members.
//!
//! The "received nothing" assertions rest on the owner's FIFO order: an event is sent to a
//! member's worker before any later message of the room, so had a quiet member been sent one, it
//! would arrive before the message the test waits for.

mod common;
mod rooms_client;

use common::*;
use rooms_client::{one_per_worker, Client};
use serde_json::{json, Value};

/// Joins `room` with `"presence": false`; the reply is all that comes back.
async fn join_quietly(client: &mut Client, room: &str, name: &str) {
    client
        .ok(json!({"type":"join","room":room,"name":name,"presence":false}))
        .await;
}

/// Publishes `payload` to `room` from `publisher`.
async fn publish(publisher: &mut Client, room: &str, payload: Value) {
    publisher
        .ok(json!({"type":"publish","room":room,"payload":payload}))
        .await;
}

#[tokio::test]
async fn a_quiet_member_gets_messages_but_no_joined_or_left_while_a_watcher_gets_both() {
    let server = TestServer::with(|c| c.workers = 2);
    let url = server.url("/ws");
    // One quiet member and one watcher on each worker, whatever worker owns the room.
    let mut quiet = one_per_worker(&url, 2).await;
    let mut watchers = one_per_worker(&url, 2).await;
    for (i, q) in quiet.iter_mut().enumerate() {
        join_quietly(q, "hall", &format!("q{i}")).await;
    }
    for (i, w) in watchers.iter_mut().enumerate() {
        w.join("hall", &format!("w{i}")).await;
    }
    let mut visitor = Client::connect(&url).await;
    visitor.join("hall", "visitor").await;
    visitor.ok(json!({"type":"leave","room":"hall"})).await;
    publish(&mut visitor, "hall", json!("after the visit")).await;

    for q in &mut quiet {
        let next = q.recv().await;
        assert_eq!(
            (next["type"].as_str(), &next["payload"]),
            (Some("message"), &json!("after the visit")),
            "a quiet member on worker {} got {next}",
            q.worker()
        );
    }
    for w in &mut watchers {
        let mut events = Vec::new();
        loop {
            let v = w.recv().await;
            if v["type"] == "message" {
                assert_eq!(v["payload"], "after the visit");
                break;
            }
            events.push((v["type"].clone(), v["name"].clone()));
        }
        // Its own join was consumed by `join`; then w1's (for w0), then the visitor's coming and
        // going, in that order.
        let visit = [
            (json!("joined"), json!("visitor")),
            (json!("left"), json!("visitor")),
        ];
        assert!(
            events.ends_with(&visit),
            "worker {}: {events:?}",
            w.worker()
        );
    }
}

#[tokio::test]
async fn watchers_see_quiet_members_come_and_go() {
    let server = TestServer::start();
    let url = server.url("/ws");
    let mut watcher = Client::connect(&url).await;
    watcher.join("r", "watcher").await;
    let mut quiet = Client::connect(&url).await;
    join_quietly(&mut quiet, "r", "shy").await;
    let joined = watcher.next_of("joined").await;
    assert_eq!(
        (joined["conn"].as_str(), joined["name"].as_str()),
        (Some(quiet.conn.as_str()), Some("shy"))
    );
    let gone = quiet.conn.clone();
    drop(quiet);
    let left = watcher.next_of("left").await;
    assert_eq!(left["conn"], gone.as_str());
}

#[tokio::test]
async fn presence_lists_quiet_members_too() {
    let server = TestServer::start();
    let url = server.url("/ws");
    let mut quiet = Client::connect(&url).await;
    let mut watcher = Client::connect(&url).await;
    join_quietly(&mut quiet, "r", "shy").await;
    watcher.join("r", "loud").await;
    let mut expected = vec![
        (quiet.conn.clone(), json!("shy")),
        (watcher.conn.clone(), json!("loud")),
    ];
    expected.sort_by(|a, b| a.0.cmp(&b.0));
    let mut listed = quiet.presence("r").await;
    listed.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(listed, expected);
}

#[tokio::test]
async fn presence_must_be_a_boolean() {
    let server = TestServer::start();
    let mut c = Client::connect(&server.url("/ws")).await;
    c.fails(
        json!({"type":"join","room":"r","presence":"off"}),
        "bad_field",
    )
    .await;
    // The refused join left no trace: joining properly works.
    join_quietly(&mut c, "r", "c").await;
}
