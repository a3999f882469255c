//! Fan-out across workers: ordering per publisher, `offset` per room, delivery only to members, and
//! leaving every room on disconnect.

mod common;
mod rooms_client;

use common::*;
use rooms_client::{one_per_worker, Client};
use serde_json::json;

#[tokio::test]
async fn one_publishers_messages_reach_members_on_every_worker_in_order_with_consecutive_offsets() {
    let server = TestServer::with(|c| c.workers = 2);
    let url = server.url("/ws");
    let mut members = one_per_worker(&url, 2).await;
    members.extend(one_per_worker(&url, 2).await);
    for (i, m) in members.iter_mut().enumerate() {
        m.join("ordered", &format!("m{i}")).await;
    }
    // The publisher is not a member; it lands on either worker.
    let mut publisher = Client::connect(&url).await;
    const N: u64 = 300;
    for i in 0..N {
        publisher
            .send(json!({"type":"publish","room":"ordered","payload":{"i":i}}))
            .await;
    }
    for m in &mut members {
        let mut first_seq = None;
        for i in 0..N {
            let msg = m.next_of("message").await;
            assert_eq!(
                msg["payload"]["i"],
                i,
                "member {} on worker {}",
                m.conn,
                m.worker()
            );
            assert_eq!(msg["from"], publisher.conn.as_str());
            let seq = msg["offset"].as_u64().unwrap();
            let first = *first_seq.get_or_insert(seq);
            assert_eq!(seq, first + i, "offset grows by one per message");
        }
        assert_eq!(first_seq, Some(1));
    }
}

#[tokio::test]
async fn two_publishers_interleave_but_each_stays_in_order_and_offset_never_goes_back() {
    let server = TestServer::with(|c| c.workers = 2);
    let url = server.url("/ws");
    let mut pubs = one_per_worker(&url, 2).await;
    let mut member = Client::connect(&url).await;
    member.join("mix", "m").await;
    const N: u64 = 200;
    for i in 0..N {
        for (p, publisher) in pubs.iter_mut().enumerate() {
            publisher
                .send(json!({"type":"publish","room":"mix","payload":[p, i]}))
                .await;
        }
    }
    let mut next = [0u64; 2];
    let mut last_seq = 0;
    for _ in 0..2 * N {
        let msg = member.next_of("message").await;
        let seq = msg["offset"].as_u64().unwrap();
        assert_eq!(seq, last_seq + 1);
        last_seq = seq;
        let p = msg["payload"][0].as_u64().unwrap() as usize;
        assert_eq!(msg["payload"][1], next[p], "publisher {p} in order");
        next[p] += 1;
    }
}

#[tokio::test]
async fn a_disconnect_leaves_every_room_and_members_on_other_workers_see_it() {
    let server = TestServer::with(|c| c.workers = 2);
    let url = server.url("/ws");
    let mut clients = one_per_worker(&url, 2).await;
    let leaver = clients.pop().unwrap();
    let mut stayer = clients.pop().unwrap();
    assert_ne!(leaver.worker(), stayer.worker());
    let mut leaver = leaver;
    for room in ["a", "b", "c"] {
        stayer.join(room, "stayer").await;
        leaver.join(room, "leaver").await;
    }
    let gone = leaver.conn.clone();
    drop(leaver);
    let mut left_rooms = Vec::new();
    while left_rooms.len() < 3 {
        let ev = stayer.next_of("left").await;
        assert_eq!(ev["conn"], gone.as_str());
        left_rooms.push(ev["room"].as_str().unwrap().to_owned());
    }
    left_rooms.sort();
    assert_eq!(left_rooms, ["a", "b", "c"]);
    for room in ["a", "b", "c"] {
        let members = stayer.presence(room).await;
        assert_eq!(members.len(), 1);
        assert_eq!(members[0].0, stayer.conn);
    }
}

#[tokio::test]
async fn a_non_member_on_another_worker_gets_nothing_from_the_room() {
    let server = TestServer::with(|c| c.workers = 2);
    let url = server.url("/ws");
    let mut clients = one_per_worker(&url, 2).await;
    let mut outsider = clients.pop().unwrap();
    let mut member = clients.pop().unwrap();
    member.join("private", "m").await;
    outsider
        .ok(json!({"type":"publish","room":"private","payload":"x"}))
        .await;
    assert_eq!(member.next_of("message").await["payload"], "x");
    // The outsider's next message is the answer to a new request, not the room's message.
    let id = outsider.send(json!({"type":"stats"})).await;
    let next = outsider.recv().await;
    assert_eq!(next["id"], id.as_str());
}
