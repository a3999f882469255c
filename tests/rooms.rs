//! `GET /ws`: every command, every error code, presence, and the abuse limit, spoken by an
//! independent client (tokio-tungstenite + serde_json).

mod common;
mod rooms_client;

use common::*;
use futures_util::{SinkExt, StreamExt};
use rooms_client::Client;
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;

#[tokio::test]
async fn the_welcome_names_the_connection_and_a_null_user() {
    let server = TestServer::start();
    let a = Client::connect(&server.url("/ws")).await;
    let b = Client::connect(&server.url("/ws")).await;
    assert_ne!(a.conn, b.conn);
    assert!(a.worker() < 2 && b.worker() < 2);
}

#[tokio::test]
async fn a_publish_reaches_every_member_with_offset_from_ts_and_the_payload_verbatim() {
    let server = TestServer::start();
    let mut a = Client::connect(&server.url("/ws")).await;
    let mut b = Client::connect(&server.url("/ws")).await;
    a.join("lobby", "ann").await;
    b.join("lobby", "bob").await;
    assert_eq!(a.next_of("joined").await["name"], "bob");
    let raw = r#"{"type":"publish","room":"lobby","id":"p1","payload":{"text": "hé \"x\"", "n": [1, 2.50]}}"#;
    a.send_text(raw).await;
    let (reply, _) = a.reply("p1").await;
    assert_eq!(reply["ok"], true);
    for client in [&mut a, &mut b] {
        let m = client.next_of("message").await;
        assert_eq!(m["room"], "lobby");
        assert_eq!(m["offset"], 1);
        assert_eq!(m["v"], 1);
        assert!(m["ts"].as_u64().unwrap() > 1_600_000_000_000);
        assert_eq!(m["payload"], json!({"text": "hé \"x\"", "n": [1, 2.50]}));
    }
    // Verbatim: the payload's own spacing and number spelling survive.
    b.ok(json!({"type":"publish","room":"lobby","payload":0}))
        .await;
    a.send_text(raw).await;
    let mut text = None;
    while text.is_none() {
        match b.ws.next().await.unwrap().unwrap() {
            Message::Text(t) if t.contains("\"offset\":3") => text = Some(t.to_string()),
            _ => {}
        }
    }
    assert!(text
        .unwrap()
        .ends_with(r#""payload":{"text": "hé \"x\"", "n": [1, 2.50]}}"#));
}

#[tokio::test]
async fn echo_false_keeps_the_publisher_out_of_its_own_delivery() {
    let server = TestServer::start();
    let mut a = Client::connect(&server.url("/ws")).await;
    let mut b = Client::connect(&server.url("/ws")).await;
    a.join("r", "a").await;
    b.join("r", "b").await;
    a.ok(json!({"type":"publish","room":"r","payload":"quiet","echo":false}))
        .await;
    a.ok(json!({"type":"publish","room":"r","payload":"loud"}))
        .await;
    assert_eq!(b.next_of("message").await["payload"], "quiet");
    assert_eq!(b.next_of("message").await["payload"], "loud");
    let first = a.next_of("message").await;
    assert_eq!(
        (first["payload"].clone(), first["offset"].clone()),
        (json!("loud"), json!(2))
    );
}

#[tokio::test]
async fn leaving_stops_delivery_and_members_see_joined_and_left() {
    let server = TestServer::start();
    let mut a = Client::connect(&server.url("/ws")).await;
    let mut b = Client::connect(&server.url("/ws")).await;
    a.join("r", "a").await;
    b.join("r", "b").await;
    let joined = a.next_of("joined").await;
    assert_eq!(
        (joined["conn"].as_str(), joined["room"].as_str()),
        (Some(b.conn.as_str()), Some("r"))
    );
    b.ok(json!({"type":"leave","room":"r"})).await;
    let left = a.next_of("left").await;
    assert_eq!(left["conn"], b.conn.as_str());
    assert_eq!(left["name"], "b");
    a.ok(json!({"type":"publish","room":"r","payload":1})).await;
    assert_eq!(a.next_of("message").await["payload"], 1);
    // b gets nothing more from r: its next message is the reply to a fresh request.
    let id = b.send(json!({"type":"stats"})).await;
    let next = b.recv().await;
    assert_eq!(
        (next["type"].as_str(), next["id"].as_str()),
        (Some("stats"), Some(id.as_str()))
    );
}

#[tokio::test]
async fn leaving_a_room_not_joined_fails_with_not_joined() {
    let server = TestServer::start();
    let mut a = Client::connect(&server.url("/ws")).await;
    a.fails(json!({"type":"leave","room":"r"}), "not_joined")
        .await;
}

#[tokio::test]
async fn presence_lists_the_members_with_their_names() {
    let server = TestServer::start();
    let mut a = Client::connect(&server.url("/ws")).await;
    let mut b = Client::connect(&server.url("/ws")).await;
    a.join("r", "ann").await;
    b.join("r", "bob").await;
    let mut members = a.presence("r").await;
    members.sort_by(|x, y| x.0.cmp(&y.0));
    let mut expected = vec![
        (a.conn.clone(), json!("ann")),
        (b.conn.clone(), json!("bob")),
    ];
    expected.sort_by(|x, y| x.0.cmp(&y.0));
    assert_eq!(members, expected);
    assert!(a.presence("empty").await.is_empty());
}

#[tokio::test]
async fn a_direct_send_reaches_its_target_and_an_unknown_target_fails() {
    let server = TestServer::start();
    let mut a = Client::connect(&server.url("/ws")).await;
    let mut b = Client::connect(&server.url("/ws")).await;
    a.ok(json!({"type":"send","to":b.conn,"payload":{"hi":true}}))
        .await;
    let d = b.next_of("direct").await;
    assert_eq!(d["from"], a.conn.as_str());
    assert_eq!(d["payload"], json!({"hi":true}));
    for to in ["0:4000.0", "9:1.0", "nonsense"] {
        a.fails(
            json!({"type":"send","to":to,"payload":1}),
            "no_such_connection",
        )
        .await;
    }
}

#[tokio::test]
async fn a_direct_send_to_an_echo_connection_fails_with_no_such_connection() {
    let server = TestServer::with(|c| c.workers = 1);
    let _echo = ws_connect(server.addr, "/echo");
    let mut a = Client::connect(&server.url("/ws")).await;
    // The echo connection took slot 0 of worker 0 before the /ws one.
    a.fails(
        json!({"type":"send","to":"0:0.0","payload":1}),
        "no_such_connection",
    )
    .await;
}

#[tokio::test]
async fn every_malformed_envelope_gets_its_error_code_and_the_connection_stays_open() {
    let server = TestServer::with(|c| {
        c.max_room_name_len = 8;
        c.max_payload_size = 16;
    });
    let mut a = Client::connect(&server.url("/ws")).await;
    let cases = [
        (r#"{"id":"x1","type":"join","room":"#, "bad_json"),
        (
            r#"{"id":"x2","v":2,"type":"join","room":"r"}"#,
            "bad_version",
        ),
        (
            r#"{"id":"x3","type":"subscribe","room":"r"}"#,
            "unknown_type",
        ),
        (r#"{"id":"x4","type":"join"}"#, "missing_field"),
        (r#"{"id":"x5","type":"join","room":42}"#, "bad_field"),
        (
            r#"{"id":"x6","type":"join","room":"123456789"}"#,
            "room_name_too_long",
        ),
        (
            r#"{"id":"x7","type":"publish","room":"r","payload":"0123456789abcdef"}"#,
            "payload_too_large",
        ),
    ];
    for (text, code) in cases {
        a.send_text(text).await;
        let reply = a.recv().await;
        assert_eq!(reply["type"], "reply", "{text}");
        assert_eq!(reply["ok"], false, "{text}");
        assert_eq!(reply["error"]["code"], code, "{text}");
    }
    // Still open, and still serving.
    a.join("r", "a").await;
}

#[tokio::test]
async fn a_binary_message_fails_with_binary_message() {
    let server = TestServer::start();
    let mut a = Client::connect(&server.url("/ws")).await;
    a.ws.send(Message::binary(b"{}".to_vec())).await.unwrap();
    let reply = a.recv().await;
    assert_eq!(reply["error"]["code"], "binary_message");
    assert!(reply["id"].is_null());
}

#[tokio::test]
async fn sustained_malformed_envelopes_close_the_connection_with_1008() {
    let server = TestServer::with(|c| c.max_envelope_errors = 3);
    let mut a = Client::connect(&server.url("/ws")).await;
    // A good envelope between bad ones resets the count.
    for text in ["nope", "nope", r#"{"type":"stats"}"#, "nope", "nope"] {
        a.send_text(text).await;
        a.recv().await;
    }
    a.send_text("nope").await;
    assert_eq!(a.recv().await["error"]["code"], "bad_json");
    let close = loop {
        match a.ws.next().await.unwrap().unwrap() {
            Message::Close(frame) => break frame.expect("a close code"),
            Message::Ping(_) | Message::Pong(_) => {}
            other => panic!("expected the close, got {other:?}"),
        }
    };
    assert_eq!(u16::from(close.code), 1008);
    assert_eq!(close.reason.as_str(), "too many malformed envelopes");
}

#[tokio::test]
async fn joining_past_the_rooms_per_connection_limit_fails_with_too_many_rooms() {
    let server = TestServer::with(|c| c.max_rooms_per_connection = 2);
    let mut a = Client::connect(&server.url("/ws")).await;
    a.join("one", "a").await;
    a.join("two", "a").await;
    a.fails(json!({"type":"join","room":"three"}), "too_many_rooms")
        .await;
    a.ok(json!({"type":"leave","room":"one"})).await;
    a.join("three", "a").await;
}

#[tokio::test]
async fn joining_a_full_room_fails_with_room_full() {
    let server = TestServer::with(|c| c.max_room_members = 1);
    let mut a = Client::connect(&server.url("/ws")).await;
    let mut b = Client::connect(&server.url("/ws")).await;
    a.join("r", "a").await;
    b.fails(json!({"type":"join","room":"r"}), "room_full")
        .await;
    // The refused join left nothing behind: b is in no room.
    b.fails(json!({"type":"leave","room":"r"}), "not_joined")
        .await;
}

#[tokio::test]
async fn joining_twice_fails_with_already_joined() {
    let server = TestServer::start();
    let mut a = Client::connect(&server.url("/ws")).await;
    a.join("r", "a").await;
    a.fails(json!({"type":"join","room":"r"}), "already_joined")
        .await;
}

#[tokio::test]
async fn publishing_without_joining_is_allowed_unless_configured_otherwise() {
    let open = TestServer::start();
    let mut a = Client::connect(&open.url("/ws")).await;
    a.ok(json!({"type":"publish","room":"r","payload":1})).await;
    let strict = TestServer::with(|c| c.publish_requires_join = true);
    let mut b = Client::connect(&strict.url("/ws")).await;
    b.fails(
        json!({"type":"publish","room":"r","payload":1}),
        "not_joined",
    )
    .await;
    b.join("r", "b").await;
    b.ok(json!({"type":"publish","room":"r","payload":1})).await;
}

#[tokio::test]
async fn stats_count_connections_and_messages() {
    let server = TestServer::start();
    let mut a = Client::connect(&server.url("/ws")).await;
    let _b = Client::connect(&server.url("/ws")).await;
    let id = a.send(json!({"type":"stats"})).await;
    let stats = a.recv().await;
    assert_eq!(
        (stats["type"].as_str(), stats["id"].as_str()),
        (Some("stats"), Some(id.as_str()))
    );
    assert_eq!(stats["connections"], 2);
    assert!(stats["messages_in"].as_u64().unwrap() >= 1);
    assert!(stats["messages_out"].as_u64().unwrap() >= 2);
}

#[test]
fn the_demo_page_is_served_at_the_root() {
    let server = TestServer::start();
    let body = http_get(server.addr, "/");
    assert!(body.starts_with("<!doctype html>"), "{body}");
    assert!(body.contains("/ws"));
    assert!(!body.contains("src=\"http"), "no external assets");
}
