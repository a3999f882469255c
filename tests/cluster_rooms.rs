//! Rooms across nodes (`--cluster`): three ringcast processes on one real Redis started by the
//! test. Ordered delivery with the same offsets on every node, a resume on another node (also
//! under 1 000 publishes/s), `msg_id` dedup across nodes, Redis killed and restarted, a node
//! killed mid-stream.

mod auth_support;
mod cluster_support;
mod common;
mod rooms_client;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use cluster_support::{Node, Redis};
use rooms_client::Client;
use serde_json::{json, Value};

/// `chat:` rooms keep 10 000 messages in the Redis Stream.
const HISTORY: &str = "chat:=10000";

fn node(redis: &Redis) -> Node {
    Node::start(
        redis,
        &[
            "--workers",
            "2",
            "--history-rooms",
            HISTORY,
            "--max-recovery-messages",
            "10000",
        ],
    )
}

fn three(redis: &Redis) -> [Node; 3] {
    [node(redis), node(redis), node(redis)]
}

/// Joins `room` and returns the reply.
async fn join(c: &mut Client, room: &str, since: Option<(u64, &str)>) -> Value {
    let mut env = json!({"type":"join","room":room,"presence":false});
    if let Some((offset, epoch)) = since {
        env["since"] = json!({"offset": offset, "epoch": epoch});
    }
    let r = c.call(env).await;
    assert_eq!(r["ok"], true, "{r}");
    r
}

/// The next `message` of the room as (offset, payload).
async fn next_message(c: &mut Client) -> (u64, Value) {
    let m = c.next_of("message").await;
    (m["offset"].as_u64().unwrap(), m["payload"].clone())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_deliver_every_message_in_one_order_with_the_same_offsets() {
    let redis = Redis::start();
    let nodes = three(&redis);
    let mut members = Vec::new();
    for n in &nodes {
        let mut c = Client::connect(&n.url("/ws")).await;
        join(&mut c, "chat:all", None).await;
        members.push(c);
    }
    // A publisher on every node, interleaved: 3 × 40 messages.
    let mut publishers = Vec::new();
    for n in &nodes {
        publishers.push(Client::connect(&n.url("/ws")).await);
    }
    for i in 0..40 {
        for (p, publisher) in publishers.iter_mut().enumerate() {
            publisher
                .send(json!({"type":"publish","room":"chat:all","payload":[p, i]}))
                .await;
        }
    }
    let mut seen = Vec::new();
    for c in &mut members {
        let mut got = Vec::new();
        for _ in 0..120 {
            got.push(next_message(c).await);
        }
        let offsets: Vec<u64> = got.iter().map(|(o, _)| *o).collect();
        assert_eq!(offsets, (1..=120).collect::<Vec<_>>(), "in order, no gap");
        seen.push(got);
    }
    assert_eq!(seen[0], seen[1], "node 0 and node 1 saw the same sequence");
    assert_eq!(seen[0], seen[2], "node 0 and node 2 saw the same sequence");
    // Each publisher's own messages keep its order.
    for p in 0..3u64 {
        let mine: Vec<u64> = seen[0]
            .iter()
            .filter(|(_, v)| v[0] == p)
            .map(|(_, v)| v[1].as_u64().unwrap())
            .collect();
        assert_eq!(mine, (0..40).collect::<Vec<_>>());
    }
    // Publish replies carry the offsets Redis assigned: the same epoch everywhere.
    let r = publishers[1]
        .call(json!({"type":"publish","room":"chat:all","payload":"x"}))
        .await;
    assert_eq!(r["offset"], 121, "{r}");
    let j = join(&mut publishers[2], "chat:all", None).await;
    assert_eq!(j["epoch"], r["epoch"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_reaches_each_node_once_whatever_its_number_of_members() {
    let redis = Redis::start();
    let nodes = three(&redis);
    let mut many = Vec::new();
    for _ in 0..5 {
        let mut c = Client::connect(&nodes[0].url("/ws")).await;
        join(&mut c, "chat:many", None).await;
        many.push(c);
    }
    let mut p = Client::connect(&nodes[1].url("/ws")).await;
    for i in 1..=3u64 {
        let r = p
            .call(json!({"type":"publish","room":"chat:many","payload":i}))
            .await;
        assert_eq!(r["offset"], i);
    }
    for c in &mut many {
        for i in 1..=3u64 {
            assert_eq!(next_message(c).await, (i, json!(i)));
        }
    }
    // The echo of a publisher that asked for none is skipped on its own node only.
    let mut quiet = Client::connect(&nodes[0].url("/ws")).await;
    join(&mut quiet, "chat:many", None).await;
    // (Clustered, the message may reach its publisher before the publish reply: both are read
    // with `next_of`, which skips the other.)
    quiet
        .send(json!({"type":"publish","room":"chat:many","payload":"q","echo":false}))
        .await;
    quiet
        .send(json!({"type":"publish","room":"chat:many","payload":"e"}))
        .await;
    assert_eq!(next_message(&mut quiet).await, (5, json!("e")));
    assert_eq!(next_message(&mut many[0]).await, (4, json!("q")));
}

/// Reads the room's messages until offset `last`; asserts every offset after `after` comes
/// exactly once, in order.
async fn exactly_once(c: &mut Client, after: u64, last: u64) {
    let mut expect = after + 1;
    while expect <= last {
        let (offset, payload) = next_message(c).await;
        assert_eq!(offset, expect, "offset {offset} where {expect} was due");
        assert_eq!(
            payload,
            json!(offset),
            "payload i was published as offset i"
        );
        expect += 1;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resume_on_another_node_recovers_every_message_exactly_once() {
    let redis = Redis::start();
    let nodes = three(&redis);
    let mut p = Client::connect(&nodes[2].url("/ws")).await;
    let mut a = Client::connect(&nodes[0].url("/ws")).await;
    let j = join(&mut a, "chat:resume", None).await;
    let epoch = j["epoch"].as_str().unwrap().to_owned();
    for i in 1..=10u64 {
        p.ok(json!({"type":"publish","room":"chat:resume","payload":i}))
            .await;
    }
    exactly_once(&mut a, 0, 10).await;
    a.cut();
    for i in 11..=30u64 {
        p.ok(json!({"type":"publish","room":"chat:resume","payload":i}))
            .await;
    }
    let mut b = Client::connect(&nodes[1].url("/ws")).await;
    let r = join(&mut b, "chat:resume", Some((10, &epoch))).await;
    assert_eq!(r["recovered"], true, "{r}");
    assert_eq!(r["offset"], 30);
    exactly_once(&mut b, 10, 30).await;
    p.ok(json!({"type":"publish","room":"chat:resume","payload":31}))
        .await;
    exactly_once(&mut b, 30, 31).await;
    // Another epoch cannot be resumed: nothing replayed, recovered false.
    let mut c = Client::connect(&nodes[1].url("/ws")).await;
    let r = join(&mut c, "chat:resume", Some((3, "00000000000000ff"))).await;
    assert_eq!(r["recovered"], false, "{r}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resume_while_the_room_takes_1000_publishes_a_second_is_exactly_once() {
    let redis = Redis::start();
    let nodes = three(&redis);
    // The publisher on node 2 paces 1 000/s until the resumes are done, and checks every reply
    // (payload i is offset i: it alone publishes to the room).
    let stop = Arc::new(AtomicBool::new(false));
    let url = nodes[2].url("/ws");
    let stopped = stop.clone();
    let publisher = tokio::spawn(async move {
        let mut p = Client::connect(&url).await;
        let mut tick = tokio::time::interval(Duration::from_millis(1));
        let mut sent = 0u64;
        while !stopped.load(Ordering::Relaxed) {
            tick.tick().await;
            sent += 1;
            p.send(json!({"type":"publish","room":"chat:busy","payload":sent}))
                .await;
        }
        for _ in 0..sent {
            let r = p.next_of("reply").await;
            assert_eq!(r["ok"], true, "{r}");
        }
        sent
    });
    let mut replayed = 0;
    for round in 0..5u64 {
        let mut a = Client::connect(&nodes[(round % 2) as usize].url("/ws")).await;
        let j = join(&mut a, "chat:busy", None).await;
        let start = j["offset"].as_u64().unwrap();
        let epoch = j["epoch"].as_str().unwrap().to_owned();
        // Read 100 live messages, leave abruptly, resume on the other node at once.
        exactly_once(&mut a, start, start + 100).await;
        a.cut();
        let mut b = Client::connect(&nodes[1 - (round % 2) as usize].url("/ws")).await;
        let r = join(&mut b, "chat:busy", Some((start + 100, &epoch))).await;
        assert_eq!(r["recovered"], true, "{r}");
        // Messages published between the cut and the resume come in the replay.
        replayed += u64::from(r["offset"].as_u64().unwrap() > start + 100);
        // Replay and live together: every offset after the resume point, once, in order.
        exactly_once(&mut b, start + 100, start + 400).await;
    }
    stop.store(true, Ordering::Relaxed);
    assert!(
        replayed >= 3,
        "most resumes had a replay to cross ({replayed} of 5)"
    );
    publisher.await.unwrap();
}

const SECRET: &str = "a-test-secret-that-is-long-enough-for-hs256!";

fn token(sub: &str) -> String {
    auth_support::hs256_token(SECRET, sub)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_publish_retried_on_another_node_is_deduplicated() {
    let redis = Redis::start();
    let args = [
        "--history-rooms",
        HISTORY,
        "--auth",
        "optional",
        "--auth-jwt-secret",
        SECRET,
    ];
    let nodes = [Node::start(&redis, &args), Node::start(&redis, &args)];
    let mut watcher = Client::connect(&nodes[1].url("/ws")).await;
    join(&mut watcher, "chat:dedup", None).await;
    let tok = token("ann");
    let mut first =
        Client::connect_as(&format!("{}?token={tok}", nodes[0].url("/ws")), Some("ann")).await;
    let r1 = first
        .call(json!({"type":"publish","room":"chat:dedup","payload":1,"msg_id":"m-1"}))
        .await;
    assert_eq!(r1["offset"], 1, "{r1}");
    first.cut();
    // The retry lands on the other node, from a new connection of the same user.
    let mut retry =
        Client::connect_as(&format!("{}?token={tok}", nodes[1].url("/ws")), Some("ann")).await;
    let r2 = retry
        .call(json!({"type":"publish","room":"chat:dedup","payload":1,"msg_id":"m-1"}))
        .await;
    assert_eq!(r2["ok"], true, "{r2}");
    assert_eq!(
        (&r2["offset"], &r2["epoch"]),
        (&r1["offset"], &r1["epoch"]),
        "the original outcome"
    );
    let r3 = retry
        .call(json!({"type":"publish","room":"chat:dedup","payload":2,"msg_id":"m-2"}))
        .await;
    assert_eq!(r3["offset"], 2);
    // Delivered once: 1 then 2, no second 1.
    assert_eq!(next_message(&mut watcher).await, (1, json!(1)));
    assert_eq!(next_message(&mut watcher).await, (2, json!(2)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_killed_and_restarted_is_survived_and_the_gap_is_told() {
    let mut redis = Redis::start();
    let mut nodes = [node(&redis), node(&redis)];
    let mut a = Client::connect(&nodes[0].url("/ws")).await;
    let mut b = Client::connect(&nodes[1].url("/ws")).await;
    let j = join(&mut a, "chat:outage", None).await;
    let old_epoch = j["epoch"].as_str().unwrap().to_owned();
    join(&mut b, "chat:outage", None).await;
    for i in 1..=5u64 {
        a.ok(json!({"type":"publish","room":"chat:outage","payload":i}))
            .await;
    }
    exactly_once(&mut b, 0, 5).await;

    redis.kill9();
    for n in &nodes {
        n.wait_health("cluster: disconnected");
    }
    // Local connections stay up and are answered: a clear `unavailable`, no offset.
    a.fails(
        json!({"type":"publish","room":"chat:outage","payload":6}),
        "unavailable",
    )
    .await;
    b.fails(json!({"type":"join","room":"chat:other"}), "unavailable")
        .await;
    let metrics = nodes[0].get("/metrics");
    assert!(
        metrics.contains("ringcast_cluster_connected 0"),
        "{metrics}"
    );

    redis.restart();
    for n in &nodes {
        n.wait_health("cluster: connected");
    }
    assert!(nodes[0].alive() && nodes[1].alive(), "no node crashed");
    assert!(nodes[0]
        .get("/metrics")
        .contains("ringcast_cluster_reconnects_total 1"));
    // The restarted Redis lost the room: it starts over under a new epoch, and members that
    // stayed connected get it through the resubscribed channel, without a node restart.
    let r = a
        .call(json!({"type":"publish","room":"chat:outage","payload":1}))
        .await;
    assert_eq!(r["ok"], true, "{r}");
    assert_eq!(r["offset"], 1);
    assert_ne!(
        r["epoch"],
        old_epoch.as_str(),
        "a new epoch: the old stream is gone"
    );
    assert_eq!(next_message(&mut b).await, (1, json!(1)));
    // A client that resumes from before the outage learns of the gap.
    let mut c = Client::connect(&nodes[1].url("/ws")).await;
    let r = join(&mut c, "chat:outage", Some((5, &old_epoch))).await;
    assert_eq!(r["recovered"], false, "{r}");
    nodes[0].kill9();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_killed_mid_stream_loses_no_acknowledged_message() {
    let redis = Redis::start();
    let mut nodes = three(&redis);
    let mut reader = Client::connect(&nodes[0].url("/ws")).await;
    let j = join(&mut reader, "chat:kill", None).await;
    let epoch = j["epoch"].as_str().unwrap().to_owned();
    // A publisher on the node that dies, one on a survivor: every acknowledged offset counts.
    let mut doomed = Client::connect(&nodes[0].url("/ws")).await;
    let mut other = Client::connect(&nodes[2].url("/ws")).await;
    let mut acked = Vec::new();
    for i in 0..50u64 {
        let (p, who) = if i % 2 == 0 {
            (&mut doomed, 0)
        } else {
            (&mut other, 1)
        };
        let r = p
            .call(json!({"type":"publish","room":"chat:kill","payload":[who, i]}))
            .await;
        acked.push(r["offset"].as_u64().unwrap());
    }
    // The reader got some of them, then its node dies.
    let mut last = 0;
    for _ in 0..20 {
        last = next_message(&mut reader).await.0;
    }
    // Publishes that were sent but whose reply may never come: not acknowledged, not counted.
    doomed
        .send(json!({"type":"publish","room":"chat:kill","payload":"maybe"}))
        .await;
    nodes[0].kill9();
    for i in 50..60u64 {
        let r = other
            .call(json!({"type":"publish","room":"chat:kill","payload":[1, i]}))
            .await;
        acked.push(r["offset"].as_u64().unwrap());
    }
    let mut resumed = Client::connect(&nodes[1].url("/ws")).await;
    let r = join(&mut resumed, "chat:kill", Some((last, &epoch))).await;
    assert_eq!(r["recovered"], true, "{r}");
    let end = r["offset"].as_u64().unwrap();
    let mut got = Vec::new();
    while got.last().is_none_or(|&o| o < end) {
        got.push(next_message(&mut resumed).await.0);
    }
    assert_eq!(got, ((last + 1)..=end).collect::<Vec<_>>());
    for offset in acked.iter().filter(|&&o| o > last) {
        assert!(
            got.contains(offset),
            "acknowledged offset {offset} recovered"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_is_read_from_the_stream_on_any_node() {
    let redis = Redis::start();
    let nodes = [node(&redis), node(&redis)];
    let mut p = Client::connect(&nodes[0].url("/ws")).await;
    let mut epoch = Value::Null;
    for i in 1..=5u64 {
        let r = p
            .call(json!({"type":"publish","room":"chat:hist","payload":i}))
            .await;
        assert_eq!(r["offset"], i, "{r}");
        epoch = r["epoch"].clone();
    }
    let mut q = Client::connect(&nodes[1].url("/ws")).await;
    let id = q
        .send(json!({"type":"history","room":"chat:hist","limit":2}))
        .await;
    let h = q.next_of("history").await;
    assert_eq!(h["id"], id.as_str());
    assert_eq!((&h["offset"], &h["epoch"]), (&json!(5), &epoch), "{h}");
    let offsets: Vec<_> = h["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["offset"].clone(), m["payload"].clone()))
        .collect();
    assert_eq!(offsets, vec![(json!(4), json!(4)), (json!(5), json!(5))]);
    q.send(json!({"type":"history","room":"chat:hist","since":{"offset":1,"epoch":epoch}}))
        .await;
    let h = q.next_of("history").await;
    assert_eq!(h["recovered"], true, "{h}");
    assert_eq!(h["messages"].as_array().unwrap().len(), 4);
}
