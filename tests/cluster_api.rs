//! The server API on clustered nodes (`--cluster` with `--api-listen`), as a specification, on
//! real `redis-server` and real node processes: an API publish takes the path of a `/ws` publish
//! through Redis (the script's offsets, members on every node, `msg_id` dedup across nodes,
//! history from the room's Stream), answers 503 `unavailable` while Redis is down and works
//! again when it returns; presence, rooms and info answer for the node asked.
//!
//! Waiting is always for an event (an answer, a message, a `/healthz` line), never for a span of
//! wall-clock time.

mod api_client;
mod backend_support;
mod cluster_support;
mod common;
mod rooms_client;

use api_client::{publish_body, Http, KEY};
use backend_support::{Answer, Receiver};
use cluster_support::{Node, Redis};
use rooms_client::Client;
use serde_json::{json, Value};

/// The publisher id of every message published through the API (docs/api.yaml).
const API_FROM: &str = "4294967295:4294967295.4294967295";

/// A node with the API on, two workers, `chat:` rooms keeping 1 000 messages in the Stream.
fn node(redis: &Redis) -> Node {
    Node::start(
        redis,
        &[
            "--workers",
            "2",
            "--history-rooms",
            "chat:=1000",
            "--api-listen",
            "127.0.0.1:0",
            "--api-key",
            KEY,
        ],
    )
}

/// Joins `room` and returns the reply.
async fn join(c: &mut Client, room: &str) -> Value {
    let r = c
        .call(json!({"type":"join","room":room,"presence":false}))
        .await;
    assert_eq!(r["ok"], true, "{r}");
    r
}

/// The next `message` of the room as (offset, payload), checking it came from the API.
async fn next_from_api(c: &mut Client) -> (u64, Value) {
    let m = c.next_of("message").await;
    assert_eq!(m["from"], API_FROM, "{m}");
    (m["offset"].as_u64().unwrap(), m["payload"].clone())
}

/// `POST /api/publish` on `api`, asserted 200; returns `{offset, epoch}`.
async fn publish(api: &mut Http, room: &str, payload: Value, msg_id: Option<&str>) -> Value {
    let a = api
        .call("POST", "/api/publish", &publish_body(room, payload, msg_id))
        .await;
    assert_eq!(a.status, 200, "{a:?}");
    a.json()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_api_publish_reaches_members_on_every_node_in_order_with_the_next_offsets() {
    let redis = Redis::start();
    let nodes = [node(&redis), node(&redis)];
    let mut members = Vec::new();
    for n in &nodes {
        for _ in 0..2 {
            let mut c = Client::connect(&n.url("/ws")).await;
            join(&mut c, "chat:api").await;
            members.push(c);
        }
    }
    // A `/ws` publish on node B, then API publishes on node A: one sequence of offsets.
    let mut ws = Client::connect(&nodes[1].url("/ws")).await;
    let r = ws
        .call(json!({"type":"publish","room":"chat:api","payload":"ws"}))
        .await;
    assert_eq!(r["offset"], 1, "{r}");
    let epoch = r["epoch"].clone();
    let mut api = Http::connect(nodes[0].api_addr()).await;
    for i in 2..=6u64 {
        // The answer comes once Redis assigned the offset, and carries it.
        assert_eq!(
            publish(&mut api, "chat:api", json!({"n": i}), None).await,
            json!({"offset": i, "epoch": epoch})
        );
    }
    for c in &mut members {
        let m = c.next_of("message").await;
        assert_eq!((&m["offset"], &m["payload"]), (&json!(1), &json!("ws")));
        for i in 2..=6u64 {
            assert_eq!(next_from_api(c).await, (i, json!({"n": i})));
        }
    }
    // And the next `/ws` publish continues after them.
    let r = ws
        .call(json!({"type":"publish","room":"chat:api","payload":"after"}))
        .await;
    assert_eq!(r["offset"], 7, "{r}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_msg_id_retry_through_another_nodes_api_gets_the_original_offset_and_is_delivered_once() {
    let redis = Redis::start();
    let nodes = [node(&redis), node(&redis)];
    let mut watchers = Vec::new();
    for n in &nodes {
        let mut c = Client::connect(&n.url("/ws")).await;
        join(&mut c, "chat:orders").await;
        watchers.push(c);
    }
    let mut on_a = Http::connect(nodes[0].api_addr()).await;
    let mut on_b = Http::connect(nodes[1].api_addr()).await;
    let first = publish(&mut on_a, "chat:orders", json!("created"), Some("order-1")).await;
    assert_eq!(first["offset"], 1, "{first}");
    // The backend did not get (or did not trust) the answer: it retries through node B.
    let retry = publish(&mut on_b, "chat:orders", json!("created"), Some("order-1")).await;
    assert_eq!(retry, first, "the original outcome");
    let next = publish(&mut on_b, "chat:orders", json!("paid"), Some("order-2")).await;
    assert_eq!(next["offset"], 2, "{next}");
    // Each member, on either node: 1 then 2, no second 1.
    for w in &mut watchers {
        assert_eq!(next_from_api(w).await, (1, json!("created")));
        assert_eq!(next_from_api(w).await, (2, json!("paid")));
    }
    // The stream holds each message once.
    let h = on_b
        .call("GET", "/api/history?room=chat:orders", "")
        .await
        .json();
    let offsets: Vec<&Value> = h["messages"]
        .as_array()
        .unwrap_or_else(|| panic!("{h}"))
        .iter()
        .map(|m| &m["offset"])
        .collect();
    assert_eq!(offsets, [&json!(1), &json!(2)], "{h}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_through_the_api_on_one_node_shows_what_was_published_on_another() {
    let redis = Redis::start();
    let nodes = [node(&redis), node(&redis)];
    let mut on_a = Http::connect(nodes[0].api_addr()).await;
    let mut ws = Client::connect(&nodes[0].url("/ws")).await;
    let mut epoch = Value::Null;
    for i in 1..=4u64 {
        // Nobody is in the room on any node: clustered, every publish still takes an offset
        // (another node may have members) and the Stream keeps it.
        let at = publish(&mut on_a, "chat:log", json!(i), None).await;
        assert_eq!(at["offset"], i, "{at}");
        epoch = at["epoch"].clone();
    }
    ws.ok(json!({"type":"publish","room":"chat:log","payload":5}))
        .await;
    let payloads = |h: &Value| -> Vec<Value> {
        h["messages"]
            .as_array()
            .unwrap_or_else(|| panic!("{h}"))
            .iter()
            .map(|m| m["payload"].clone())
            .collect()
    };
    let mut on_b = Http::connect(nodes[1].api_addr()).await;
    let last = on_b
        .call("GET", "/api/history?room=chat:log&limit=2", "")
        .await;
    assert_eq!(last.status, 200, "{last:?}");
    let last = last.json();
    assert_eq!(last["type"], "history", "{last}");
    assert_eq!((&last["offset"], &last["epoch"]), (&json!(5), &epoch));
    assert_eq!(payloads(&last), [json!(4), json!(5)]);
    let epoch = epoch.as_str().unwrap();
    let after = on_b
        .call(
            "GET",
            &format!("/api/history?room=chat:log&since=1:{epoch}"),
            "",
        )
        .await
        .json();
    assert_eq!(after["recovered"], true, "{after}");
    assert_eq!(payloads(&after), [json!(2), json!(3), json!(4), json!(5)]);
    assert_eq!(after["messages"][0]["from"], API_FROM);
    let stale = on_b
        .call(
            "GET",
            "/api/history?room=chat:log&since=1:00000000000000ff",
            "",
        )
        .await
        .json();
    assert_eq!(stale["recovered"], false, "{stale}");
    assert_eq!(payloads(&stale), Vec::<Value>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broadcast_through_the_api_numbers_each_room_in_redis_and_reaches_every_node() {
    let redis = Redis::start();
    let nodes = [node(&redis), node(&redis)];
    let mut a_member = Client::connect(&nodes[0].url("/ws")).await;
    join(&mut a_member, "chat:one").await;
    let mut b_member = Client::connect(&nodes[1].url("/ws")).await;
    join(&mut b_member, "chat:two").await;
    let mut api = Http::connect(nodes[0].api_addr()).await;
    publish(&mut api, "chat:two", json!("before"), None).await;
    let a = api
        .call(
            "POST",
            "/api/broadcast",
            &json!({"rooms":["chat:one","chat:two"],"payload":{"alert":1}}).to_string(),
        )
        .await;
    assert_eq!(a.status, 200, "{a:?}");
    let results = a.json()["results"].clone();
    assert_eq!(results[0]["room"], "chat:one");
    assert_eq!(results[0]["offset"], 1, "{results}");
    assert_eq!(results[1]["room"], "chat:two");
    assert_eq!(results[1]["offset"], 2, "{results}");
    assert_eq!(next_from_api(&mut a_member).await, (1, json!({"alert":1})));
    assert_eq!(next_from_api(&mut b_member).await, (1, json!("before")));
    assert_eq!(next_from_api(&mut b_member).await, (2, json!({"alert":1})));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_killed_the_api_answers_503_unavailable_and_works_again_when_it_returns() {
    let mut redis = Redis::start();
    let nodes = [node(&redis), node(&redis)];
    let mut member = Client::connect(&nodes[1].url("/ws")).await;
    join(&mut member, "chat:outage").await;
    let mut api = Http::connect(nodes[0].api_addr()).await;
    let before = publish(&mut api, "chat:outage", json!(1), None).await;
    assert_eq!(next_from_api(&mut member).await, (1, json!(1)));

    redis.kill9();
    for n in &nodes {
        n.wait_health("cluster: disconnected");
    }
    // The same keep-alive connection: each call refused with 503 `unavailable`, none assigned
    // an offset, the connection stays open.
    api.call(
        "POST",
        "/api/publish",
        &publish_body("chat:outage", json!(2), Some("during")),
    )
    .await
    .is_error(503, "unavailable");
    api.call(
        "POST",
        "/api/broadcast",
        &json!({"rooms":["chat:outage","chat:other"],"payload":2}).to_string(),
    )
    .await
    .is_error(503, "unavailable");
    api.call("GET", "/api/history?room=chat:outage", "")
        .await
        .is_error(503, "unavailable");
    let info = api.call("GET", "/api/info", "").await;
    assert_eq!(info.status, 200, "{info:?}");
    assert_eq!(info.json()["cluster"], json!({"connected": false}));
    let metrics = nodes[0].get("/metrics");
    let refused = metrics
        .lines()
        .find_map(|l| l.strip_prefix("ringcast_cluster_unavailable_total "))
        .and_then(|v| v.trim().parse::<u64>().ok());
    assert!(refused >= Some(4), "each refusal counted: {metrics}");

    redis.restart();
    for n in &nodes {
        n.wait_health("cluster: connected");
    }
    let info = api.call("GET", "/api/info", "").await.json();
    assert_eq!(info["cluster"], json!({"connected": true}));
    // The restarted Redis is empty: the room starts over under a new epoch, and the member that
    // stayed connected on node B gets the API's publish through the resubscribed channel. The
    // msg_id refused during the outage was never recorded: it publishes now.
    let after = publish(&mut api, "chat:outage", json!(2), Some("during")).await;
    assert_eq!(after["offset"], 1, "{after}");
    assert_ne!(after["epoch"], before["epoch"], "a new epoch");
    assert_eq!(next_from_api(&mut member).await, (1, json!(2)));
    let h = api
        .call("GET", "/api/history?room=chat:outage", "")
        .await
        .json();
    assert_eq!(h["messages"].as_array().map(Vec::len), Some(1), "{h}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn presence_rooms_and_info_answer_for_the_node_asked() {
    let redis = Redis::start();
    let nodes = [node(&redis), node(&redis)];
    let mut on_a = Client::connect(&nodes[0].url("/ws")).await;
    on_a.join("chat:here", "ann").await;
    let mut api_a = Http::connect(nodes[0].api_addr()).await;
    let mut api_b = Http::connect(nodes[1].api_addr()).await;
    let members = |p: &Value| -> Vec<String> {
        p["members"]
            .as_array()
            .unwrap_or_else(|| panic!("{p}"))
            .iter()
            .map(|m| m["name"].as_str().unwrap_or_default().to_owned())
            .collect()
    };
    let here = api_a
        .call("GET", "/api/presence?room=chat:here", "")
        .await
        .json();
    assert_eq!(members(&here), ["ann"]);
    let there = api_b
        .call("GET", "/api/presence?room=chat:here", "")
        .await
        .json();
    assert_eq!(
        members(&there),
        Vec::<String>::new(),
        "node B's members only"
    );
    let rooms_a = api_a
        .call("GET", "/api/rooms?prefix=chat:", "")
        .await
        .json();
    assert_eq!(rooms_a, json!({"rooms":[{"room":"chat:here","members":1}]}));
    let rooms_b = api_b
        .call("GET", "/api/rooms?prefix=chat:", "")
        .await
        .json();
    assert_eq!(rooms_b, json!({"rooms":[]}), "node B's rooms only");
    // Node A counts its one client; node B none (the `/healthz` checks that started the nodes
    // are plain HTTP connections the gauge counts until their teardown: read until it settles).
    assert_eq!(
        connections_settle_at(&mut api_a, 1).await["cluster"],
        json!({"connected": true})
    );
    assert_eq!(
        connections_settle_at(&mut api_b, 0).await["cluster"],
        json!({"connected": true})
    );
}

/// `GET /api/info` until its `connections` is `n` (bounded); returns that answer.
async fn connections_settle_at(api: &mut Http, n: u64) -> Value {
    let until = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let info = api.call("GET", "/api/info", "").await.json();
        if info["connections"] == n {
            return info;
        }
        assert!(
            std::time::Instant::now() < until,
            "connections never {n}: {info}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clustered_publishes_raise_one_webhook_event_each_from_the_node_that_published_them() {
    let redis = Redis::start();
    let receiver = Receiver::start(|_| Answer::status(204));
    let url = receiver.url("/hooks");
    let hooked = |redis: &Redis| {
        Node::start(
            redis,
            &[
                "--workers",
                "2",
                "--api-listen",
                "127.0.0.1:0",
                "--api-key",
                KEY,
                "--webhook-url",
                &url,
                "--webhook-events",
                "publish",
                "--webhook-secret",
                "webhook-test-secret-0123456789",
                "--webhook-batch-wait",
                "5ms",
            ],
        )
    };
    let nodes = [hooked(&redis), hooked(&redis)];
    let mut ws = Client::connect(&nodes[0].url("/ws")).await;
    let first = ws
        .call(json!({"type":"publish","room":"news","payload":"a","msg_id":"m-1"}))
        .await;
    assert_eq!(first["offset"], 1, "{first}");
    let mut api = Http::connect(nodes[1].api_addr()).await;
    assert_eq!(
        publish(&mut api, "news", json!("b"), None).await["offset"],
        2
    );
    // A retry of m-1 is answered with the original offset and raises no event; the sentinel
    // after it, from the same connection, shows the retry's event would have arrived by now.
    let retry = ws
        .call(json!({"type":"publish","room":"news","payload":"a","msg_id":"m-1"}))
        .await;
    assert_eq!(retry["offset"], 1, "{retry}");
    let last = ws
        .call(json!({"type":"publish","room":"news","payload":"c"}))
        .await;
    assert_eq!(last["offset"], 3, "{last}");
    let requests = receiver.wait_until("three publish events", |r| {
        r.iter()
            .flat_map(|r| r.json()["events"].as_array().cloned().unwrap_or_default())
            .count()
            >= 3
    });
    let mut events: Vec<Value> = requests
        .iter()
        .flat_map(|r| r.json()["events"].as_array().cloned().unwrap_or_default())
        .collect();
    events.sort_by_key(|e| e["offset"].as_u64());
    let seen: Vec<(Value, Value, Value)> = events
        .iter()
        .map(|e| (e["type"].clone(), e["offset"].clone(), e["payload"].clone()))
        .collect();
    assert_eq!(
        seen,
        [
            (json!("publish"), json!(1), json!("a")),
            (json!("publish"), json!(2), json!("b")),
            (json!("publish"), json!(3), json!("c")),
        ],
        "one event per message, none for the retry: {events:?}"
    );
    assert_eq!(events[1]["conn"], "api");
    assert_ne!(
        events[0]["node"], events[1]["node"],
        "each event comes from the node where its message was published"
    );
    assert_eq!(events[0]["node"], events[2]["node"]);
}
