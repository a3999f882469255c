//! Reliable room delivery on real sockets: offsets and epochs in replies, history, resuming with
//! `since` (exactly once across a cut, and across a publish racing the resume), `recovered:false`
//! when history cannot cover the gap, idempotent publish with `msg_id`, and the history byte
//! budget under a flood.

mod auth_support;
mod common;
mod rooms_client;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use ringcast::config::Config;
use ringcast::room::stream::HistoryRule;
use ringcast::security::{AuthMode, Secret};
use rooms_client::Client;
use serde_json::{json, Value};

/// A server whose `chat:` rooms keep `size` messages.
fn with_history(size: usize, tweak: impl FnOnce(&mut Config)) -> TestServer {
    TestServer::with(|c| {
        c.history_rooms = vec![HistoryRule {
            prefix: "chat:".into(),
            size,
            ttl: None,
        }];
        c.max_backpressure = 64 << 20;
        tweak(c);
    })
}

/// Reads messages of the room until offset `last`, returning their offsets (other envelopes are
/// skipped).
async fn offsets_until(client: &mut Client, last: u64) -> Vec<u64> {
    let mut seen = Vec::new();
    while seen.last() != Some(&last) {
        let m = client.next_of("message").await;
        let offset = m["offset"].as_u64().unwrap();
        assert_eq!(m["payload"], offset, "payload i was published as offset i");
        seen.push(offset);
    }
    seen
}

fn epoch_of(v: &Value) -> String {
    let e = v["epoch"].as_str().expect("an epoch").to_owned();
    assert_eq!(e.len(), 16, "{v}");
    e
}

#[tokio::test]
async fn every_join_and_publish_reply_carries_the_rooms_offset_and_epoch() {
    let server = TestServer::start();
    let mut a = Client::connect(&server.url("/ws")).await;
    let r = a
        .call(json!({"type":"publish","room":"empty","payload":1}))
        .await;
    assert_eq!(
        (r["ok"].clone(), r["offset"].clone()),
        (json!(true), Value::Null)
    );
    assert!(
        r["epoch"].is_null(),
        "no members, no history: no offset taken"
    );
    let joined = a
        .call(json!({"type":"join","room":"r","presence":false}))
        .await;
    assert_eq!(joined["offset"], 0);
    assert!(joined.get("recovered").is_none(), "no since, no recovered");
    let epoch = epoch_of(&joined);
    for n in 1..=3u64 {
        let id = a
            .send(json!({"type":"publish","room":"r","payload":n}))
            .await;
        // The reply comes before the publisher's own copy: the owner answers, then fans out.
        let reply = a.recv().await;
        assert_eq!(
            (reply["id"].as_str(), reply["ok"].as_bool()),
            (Some(id.as_str()), Some(true))
        );
        assert_eq!(reply["offset"], n);
        assert_eq!(reply["epoch"], epoch.as_str());
        assert_eq!(a.next_of("message").await["offset"], n);
    }
    let mut b = Client::connect(&server.url("/ws")).await;
    let joined = b.call(json!({"type":"join","room":"r"})).await;
    assert_eq!(
        (joined["offset"].clone(), epoch_of(&joined)),
        (json!(3), epoch)
    );
}

#[tokio::test]
async fn history_answers_the_last_messages_or_those_after_an_offset() {
    let server = with_history(5, |_| {});
    let mut a = Client::connect(&server.url("/ws")).await;
    let mut epoch = String::new();
    for n in 1..=8u64 {
        // Nobody is in the room: it keeps its messages all the same.
        epoch = epoch_of(
            &a.call(json!({"type":"publish","room":"chat:a","payload":n}))
                .await,
        );
    }
    let id = a
        .send(json!({"type":"history","room":"chat:a","limit":2}))
        .await;
    let h = a.next_of("history").await;
    assert_eq!(
        (h["id"].as_str(), h["room"].as_str()),
        (Some(id.as_str()), Some("chat:a"))
    );
    assert_eq!(
        (h["offset"].clone(), epoch_of(&h)),
        (json!(8), epoch.clone())
    );
    let offsets = |h: &Value| -> Vec<u64> {
        h["messages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["offset"].as_u64().unwrap())
            .collect()
    };
    assert_eq!(offsets(&h), vec![7, 8]);
    assert_eq!(h["messages"][1]["payload"], 8);
    a.send(json!({"type":"history","room":"chat:a"})).await;
    assert_eq!(offsets(&a.next_of("history").await), vec![4, 5, 6, 7, 8]);
    a.send(json!({"type":"history","room":"chat:a","since":{"offset":5,"epoch":epoch}}))
        .await;
    let h = a.next_of("history").await;
    assert_eq!(
        (h["recovered"].clone(), offsets(&h)),
        (json!(true), vec![6, 7, 8])
    );
    a.send(json!({"type":"history","room":"chat:a","since":{"offset":1,"epoch":epoch}}))
        .await;
    let h = a.next_of("history").await;
    assert_eq!(
        (h["recovered"].clone(), offsets(&h)),
        (json!(false), vec![])
    );
    a.send(json!({"type":"history","room":"plain"})).await;
    let h = a.next_of("history").await;
    assert!(h["epoch"].is_null() && offsets(&h).is_empty(), "{h}");
}

#[tokio::test]
async fn a_subscriber_cut_mid_stream_resumes_with_every_message_exactly_once_in_order() {
    const N: u64 = 10_000;
    let server = with_history(N as usize, |c| c.max_recovery_messages = N as usize);
    let url = server.url("/ws");
    let mut sub = Client::connect(&url).await;
    let joined = sub
        .call(json!({"type":"join","room":"chat:feed","presence":false}))
        .await;
    let epoch = epoch_of(&joined);
    let cut_done = Arc::new(tokio::sync::Notify::new());
    let mut publisher = Client::connect(&url).await;
    let resumed = cut_done.clone();
    let publishing = tokio::spawn(async move {
        for i in 1..=N {
            if i == N / 2 + 1 {
                // The second half races the resume.
                resumed.notified().await;
            }
            let m = json!({"type":"publish","room":"chat:feed","payload":i,"echo":false});
            publisher.send_text(&m.to_string()).await;
        }
        let mut replies = 0;
        while replies < N {
            let r = publisher.next_of("reply").await;
            replies += 1;
            assert_eq!(
                r["offset"], replies,
                "the reply carries the message's offset"
            );
        }
    });
    let mut seen = Vec::new();
    while seen.len() < (N / 4) as usize {
        seen.push(sub.next_of("message").await["offset"].as_u64().unwrap());
    }
    let last = *seen.last().unwrap();
    sub.cut();
    cut_done.notify_one();
    let mut sub = Client::connect(&url).await;
    let since = json!({"offset": last, "epoch": epoch});
    let reply = sub
        .call(json!({"type":"join","room":"chat:feed","presence":false,"since":since}))
        .await;
    assert_eq!(reply["recovered"], true, "{reply}");
    assert_eq!(reply["epoch"], epoch.as_str());
    seen.extend(offsets_until(&mut sub, N).await);
    let expected: Vec<u64> = (1..=N).collect();
    assert!(seen == expected, "every message exactly once, in order");
    publishing.await.unwrap();
}

#[tokio::test]
async fn a_publish_racing_a_resume_is_seen_exactly_once() {
    const N: u64 = 6_000;
    let server = with_history(N as usize, |c| c.max_recovery_messages = N as usize);
    let url = server.url("/ws");
    let mut sub = Client::connect(&url).await;
    let joined = sub
        .call(json!({"type":"join","room":"chat:hot","presence":false}))
        .await;
    let epoch = epoch_of(&joined);
    let mut publisher = Client::connect(&url).await;
    let publishing = tokio::spawn(async move {
        for i in 1..=N {
            let m = json!({"type":"publish","room":"chat:hot","payload":i,"echo":false});
            publisher.send_text(&m.to_string()).await;
        }
        for _ in 0..N {
            publisher.next_of("reply").await;
        }
    });
    // Resume over and over while the publisher floods the room: each resume's join races
    // publishes, and each session must continue exactly where the last one stopped.
    let mut last = 0;
    let mut resumes = 0;
    while last < N {
        let stop = (last + 150).min(N);
        for offset in offsets_until(&mut sub, stop).await {
            last += 1;
            assert_eq!(offset, last, "no gap, no duplicate after resume {resumes}");
        }
        if last == N {
            break;
        }
        sub.cut();
        sub = Client::connect(&url).await;
        let since = json!({"offset": last, "epoch": epoch});
        let reply = sub
            .call(json!({"type":"join","room":"chat:hot","presence":false,"since":since}))
            .await;
        assert_eq!(reply["recovered"], true, "{reply}");
        assert!(reply["offset"].as_u64().unwrap() >= last);
        resumes += 1;
    }
    assert!(resumes >= 30, "{resumes} resumes");
    publishing.await.unwrap();
}

#[tokio::test]
async fn a_restarted_server_is_another_epoch_and_nothing_is_replayed() {
    let server = with_history(10, |_| {});
    let mut a = Client::connect(&server.url("/ws")).await;
    let mut reply = Value::Null;
    for n in 1..=3u64 {
        reply = a
            .call(json!({"type":"publish","room":"chat:r","payload":n}))
            .await;
    }
    let old = epoch_of(&reply);
    drop(a);
    server.shutdown();
    let server = with_history(10, |_| {});
    let mut b = Client::connect(&server.url("/ws")).await;
    let since = json!({"offset": 3, "epoch": old});
    let joined = b
        .call(json!({"type":"join","room":"chat:r","since":since}))
        .await;
    assert_eq!(joined["recovered"], false);
    assert_eq!(joined["offset"], 0);
    assert_ne!(epoch_of(&joined), old);
}

#[tokio::test]
async fn a_gap_larger_than_history_or_the_replay_bound_is_not_recovered() {
    let server = with_history(5, |c| c.max_recovery_messages = 3);
    let url = server.url("/ws");
    let mut a = Client::connect(&url).await;
    let mut epoch = String::new();
    for n in 1..=10u64 {
        epoch = epoch_of(
            &a.call(json!({"type":"publish","room":"chat:r","payload":n}))
                .await,
        );
    }
    // History holds 6..=10: offset 6 leaves 4 to replay, over the bound of 3; then (one more
    // published) offset 2 has fallen out.
    for (i, (since, case)) in [
        (6, "over max_recovery_messages"),
        (2, "fell out of history"),
    ]
    .into_iter()
    .enumerate()
    {
        let mut b = Client::connect(&url).await;
        let since = json!({"offset": since, "epoch": epoch});
        let joined = b
            .call(json!({"type":"join","room":"chat:r","since":since}))
            .await;
        assert_eq!(joined["recovered"], false, "{case}");
        assert_eq!(joined["offset"], 10 + i);
        // Nothing was replayed: the next message b sees is the next one published.
        a.ok(json!({"type":"publish","room":"chat:r","payload":0}))
            .await;
        assert!(
            b.next_of("message").await["offset"].as_u64().unwrap() > 10,
            "{case}"
        );
    }
    let mut c = Client::connect(&url).await;
    let since = json!({"offset": 10, "epoch": epoch});
    let joined = c
        .call(json!({"type":"join","room":"chat:r","since":since}))
        .await;
    assert_eq!(joined["recovered"], true, "within both bounds");
    assert_eq!(c.next_of("message").await["offset"], 11);
    assert_eq!(c.next_of("message").await["offset"], 12);
}

const SECRET: &str = "a-test-secret-that-is-long-enough-for-hs256!";

fn token(sub: &str) -> String {
    token_with(json!({"sub": sub}))
}

fn token_with(claims: Value) -> String {
    auth_support::hs256_token_with(SECRET, claims)
}

fn auth_server() -> TestServer {
    TestServer::with(|c| {
        c.security.auth = AuthMode::Optional;
        c.security.auth_jwt_secret = Some(Secret(SECRET.into()));
    })
}

#[tokio::test]
async fn history_is_subject_to_the_tokens_rooms_claim() {
    let server = auth_server();
    let jwt = token_with(json!({"sub": "bo", "rooms": ["chat:*"]}));
    let url = format!("{}?token={jwt}", server.url("/ws"));
    let mut bo = Client::connect_as(&url, Some("bo")).await;
    bo.fails(json!({"type":"history","room":"admin"}), "forbidden")
        .await;
    bo.send(json!({"type":"history","room":"chat:1"})).await;
    assert_eq!(bo.next_of("history").await["room"], "chat:1");
}

#[tokio::test]
async fn a_publish_retried_with_the_same_msg_id_after_a_lost_reply_is_delivered_once() {
    let server = auth_server();
    let url = server.url("/ws");
    let as_ann = format!("{url}?token={}", token("ann"));
    let mut member = Client::connect(&url).await;
    member
        .ok(json!({"type":"join","room":"r","presence":false}))
        .await;
    // Ann publishes and loses the connection before reading the reply.
    let mut ann = Client::connect_as(&as_ann, Some("ann")).await;
    ann.send(json!({"type":"publish","room":"r","msg_id":"m-1","payload":"once"}))
        .await;
    ann.cut();
    let first = member.next_of("message").await;
    assert_eq!(first["payload"], "once");
    // She reconnects and retries: the original reply, nothing delivered again.
    let mut ann = Client::connect_as(&as_ann, Some("ann")).await;
    let retry = ann
        .call(json!({"type":"publish","room":"r","msg_id":"m-1","payload":"once"}))
        .await;
    assert_eq!(retry["ok"], true);
    assert_eq!(
        retry["offset"], first["offset"],
        "the retry's reply has the original offset"
    );
    ann.ok(json!({"type":"publish","room":"r","msg_id":"m-2","payload":"next"}))
        .await;
    assert_eq!(
        member.next_of("message").await["payload"],
        "next",
        "no second copy"
    );
    // An anonymous sender is its connection: another connection's msg_id is another message.
    let mut anon = Client::connect(&url).await;
    let a1 = anon
        .call(json!({"type":"publish","room":"r","msg_id":"m-1","payload":"anon"}))
        .await;
    let a2 = anon
        .call(json!({"type":"publish","room":"r","msg_id":"m-1","payload":"anon"}))
        .await;
    assert_eq!(a1["offset"], a2["offset"]);
    assert_ne!(a1["offset"], retry["offset"]);
    assert_eq!(member.next_of("message").await["payload"], "anon");
    ann.ok(json!({"type":"publish","room":"r","payload":"end"}))
        .await;
    assert_eq!(member.next_of("message").await["payload"], "end");
}

/// The total of `ringcast_<name>` in the metrics text.
fn metric(text: &str, name: &str) -> u64 {
    let prefix = format!("ringcast_{name} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("no {name} in metrics"))
        .trim()
        .parse()
        .unwrap()
}

#[tokio::test]
async fn history_stays_within_its_byte_budget_under_a_flood_and_counts_evictions() {
    const BUDGET: usize = 16 * 1024;
    let server = with_history(10_000, |c| c.history_max_bytes = BUDGET);
    let mut a = Client::connect(&server.url("/ws")).await;
    let payload = "x".repeat(200);
    // 40 rooms × 25 messages × ~300 B ≈ 300 KB published into a 16 KiB budget.
    for round in 0..25 {
        for room in 0..40 {
            let m = json!({"type":"publish","room":format!("chat:{room}"),"payload":payload});
            a.send(m).await;
        }
        for _ in 0..40 {
            assert_eq!(a.next_of("reply").await["ok"], true, "round {round}");
        }
    }
    // The gauges are refreshed on the workers' tick: wait for the counted evictions.
    let deadline = Instant::now() + Duration::from_secs(10);
    let text = loop {
        let text = http_get(server.addr, "/metrics");
        if metric(&text, "history_evicted_total") > 0 || Instant::now() > deadline {
            break text;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    let evicted = metric(&text, "history_evicted_total");
    let held = metric(&text, "history_bytes");
    assert!(evicted > 0, "a flood over the budget evicts");
    assert!(
        held as usize <= BUDGET,
        "{held} B held over a {BUDGET} B budget"
    );
    assert!(
        held as usize >= BUDGET / 2,
        "eviction keeps most of the budget in use: {held}"
    );
}
