//! The server API for backends (`api_listen`), as a specification, on real sockets: every request
//! needs a key (a wrong or missing one is 401 and counted); bodies are bounded and framed by
//! `Content-Length` alone (413 before the body is read, 411 for chunked); connections are kept
//! alive and pipelined requests are answered in order; a publish through the API is the same
//! publish as one from `/ws` (members receive it in order with the next offset, and `msg_id`
//! retries are deduplicated).
//!
//! Waiting is always for an event (an answer, a message), never for a span of wall-clock time.

mod api_client;
mod auth_support;
mod common;
mod rooms_client;

use std::net::SocketAddr;
use std::time::Duration;

use api_client::{publish_body, Http, HANG_GUARD, KEY};
use common::{http_get, http_request};
use ringcast::config::Config;
use ringcast::driver::Server;
use ringcast::security::Secret;
use rooms_client::Client;
use serde_json::{json, Value};

const OTHER_KEY: &str = "api-rotated-key-0123456789";

/// A server with the API on, two workers, shut down when dropped.
struct ApiServer {
    server: Option<Server>,
    addr: SocketAddr,
    api: SocketAddr,
}

impl ApiServer {
    fn start(tweak: impl FnOnce(&mut Config)) -> ApiServer {
        let mut config = Config {
            listen: "127.0.0.1:0".parse().unwrap(),
            workers: 2,
            drain_timeout: Duration::from_secs(2),
            api_listen: Some("127.0.0.1:0".parse().unwrap()),
            api_key: vec![Secret(KEY.into()), Secret(OTHER_KEY.into())],
            ..Config::default()
        };
        tweak(&mut config);
        let server = Server::start(config).expect("server starts");
        let addr = server.local_addr();
        let api = server.api_addr().expect("the API listens");
        ApiServer {
            server: Some(server),
            addr,
            api,
        }
    }

    fn ws(&self) -> String {
        format!("ws://{}/ws", self.addr)
    }
}

impl Drop for ApiServer {
    fn drop(&mut self) {
        if let Some(server) = self.server.take() {
            server.shutdown();
            let _ = server.wait();
        }
    }
}

/// The all-workers total of a counter in `/metrics` (counted before the answer is written).
fn metric(addr: SocketAddr, name: &str) -> u64 {
    let series = format!("ringcast_{name} ");
    http_get(addr, "/metrics")
        .lines()
        .find_map(|l| l.strip_prefix(&series)?.parse().ok())
        .expect("the series is rendered")
}

#[tokio::test]
async fn a_publish_through_the_api_reaches_members_in_order_with_the_next_offsets() {
    let server = ApiServer::start(|c| c.history_size = 10);
    let mut member = Client::connect(&server.ws()).await;
    member.join("news", "m").await;
    let mut ws_publisher = Client::connect(&server.ws()).await;
    let reply = ws_publisher
        .call(json!({"type":"publish","room":"news","payload":"from ws"}))
        .await;
    let first = reply["offset"].as_u64().expect("an offset");
    let epoch = reply["epoch"].clone();

    let mut api = Http::connect(server.api).await;
    for i in 1..=3u64 {
        let a = api
            .call(
                "POST",
                "/api/publish",
                &publish_body("news", json!({"n": i}), None),
            )
            .await;
        assert_eq!(a.status, 200, "{a:?}");
        assert!(a.head.contains("content-type: application/json"));
        assert_eq!(a.json(), json!({"offset": first + i, "epoch": epoch}));
    }
    let m = member.next_of("message").await;
    assert_eq!(m["payload"], "from ws");
    for i in 1..=3u64 {
        let m = member.next_of("message").await;
        assert_eq!(m["room"], "news");
        assert_eq!(m["offset"], first + i);
        assert_eq!(m["payload"], json!({"n": i}));
        assert_eq!(m["from"], "4294967295:4294967295.4294967295");
    }
}

#[tokio::test]
async fn msg_id_retries_through_the_api_are_answered_not_delivered_again() {
    let server = ApiServer::start(|_| {});
    let mut member = Client::connect(&server.ws()).await;
    member.join("orders", "m").await;
    let mut api = Http::connect(server.api).await;
    let body = publish_body("orders", json!("created"), Some("order-1"));
    let first = api.call("POST", "/api/publish", &body).await.json();
    // A retry on another connection (it may land on the other worker).
    let mut again = Http::connect(server.api).await;
    assert_eq!(
        again.call("POST", "/api/publish", &body).await.json(),
        first
    );
    let next = api
        .call(
            "POST",
            "/api/publish",
            &publish_body("orders", json!("paid"), Some("order-2")),
        )
        .await
        .json();
    assert_eq!(next["offset"], first["offset"].as_u64().unwrap() + 1);
    assert_eq!(member.next_of("message").await["payload"], "created");
    assert_eq!(member.next_of("message").await["payload"], "paid");
    assert!(metric(server.addr, "publishes_deduplicated_total") >= 1);
}

#[tokio::test]
async fn a_publish_to_a_room_nobody_is_in_and_that_keeps_nothing_takes_no_offset() {
    let server = ApiServer::start(|_| {});
    let mut api = Http::connect(server.api).await;
    let a = api
        .call(
            "POST",
            "/api/publish",
            &publish_body("empty", json!(1), None),
        )
        .await;
    assert_eq!(a.json(), json!({"offset": null, "epoch": null}));
}

#[tokio::test]
async fn a_missing_or_wrong_key_is_401_and_counted_and_every_listed_key_works() {
    let server = ApiServer::start(|_| {});
    let mut api = Http::connect(server.api).await;
    api.send("GET", "/api/info", None, "").await;
    api.answer().await.is_error(401, "unauthorized");
    api.send("GET", "/api/info", Some("api-test-key-012345678X"), "")
        .await;
    api.answer().await.is_error(401, "unauthorized");
    api.send_raw(
        format!("GET /api/info HTTP/1.1\r\nAuthorization: Bearer {KEY}\r\n\r\n").as_bytes(),
    )
    .await;
    api.answer().await.is_error(401, "unauthorized");
    assert_eq!(metric(server.addr, "api_unauthorized_total"), 3);
    // The connection stays usable, and both rotated keys are accepted.
    for key in [KEY, OTHER_KEY] {
        api.send("GET", "/api/info", Some(key), "").await;
        assert_eq!(api.answer().await.status, 200);
    }
}

#[tokio::test]
async fn keys_may_come_from_a_file() {
    let server = ApiServer::start(|c| {
        c.api_key.clear();
        c.api_key_file =
            Some(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/api_fixtures/keys.txt").into());
    });
    let mut api = Http::connect(server.api).await;
    api.send("GET", "/api/info", Some("api-test-key-file-0123456789"), "")
        .await;
    assert_eq!(api.answer().await.status, 200);
    api.send("GET", "/api/info", Some(KEY), "").await;
    api.answer().await.is_error(401, "unauthorized");
}

#[test]
fn an_api_without_any_key_is_refused_at_start_up() {
    let config = Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        api_listen: Some("127.0.0.1:0".parse().unwrap()),
        ..Config::default()
    };
    let err = Server::start(config).err().expect("refused");
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
    assert!(err.to_string().contains("no API key"), "{err}");
}

#[tokio::test]
async fn info_names_the_version_the_workers_and_the_connections() {
    let server = ApiServer::start(|_| {});
    let _client = Client::connect(&server.ws()).await;
    let mut api = Http::connect(server.api).await;
    let info = api.call("GET", "/api/info", "").await.json();
    assert_eq!(info["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(info["workers"], 2);
    assert_eq!(info["connections"], 1);
    assert_eq!(
        info.get("cluster"),
        Some(&Value::Null),
        "not clustered: {info}"
    );
}

#[tokio::test]
async fn an_unknown_path_is_404_and_a_wrong_method_405() {
    let server = ApiServer::start(|_| {});
    let mut api = Http::connect(server.api).await;
    api.call("GET", "/api/nothing", "")
        .await
        .is_error(404, "not_found");
    api.call("GET", "/api/publish", "")
        .await
        .is_error(405, "method_not_allowed");
    api.call("POST", "/api/info", "")
        .await
        .is_error(405, "method_not_allowed");
}

#[tokio::test]
async fn malformed_bodies_get_specific_codes_and_the_connection_stays_open() {
    let server = ApiServer::start(|c| {
        c.max_room_name_len = 8;
        c.max_payload_size = 16;
    });
    let mut api = Http::connect(server.api).await;
    for (body, status, code) in [
        ("{not json", 400, "bad_json"),
        ("[1,2]", 400, "bad_json"),
        (r#"{"payload":1}"#, 400, "missing_field"),
        (r#"{"room":"r"}"#, 400, "missing_field"),
        (r#"{"room":7,"payload":1}"#, 400, "bad_field"),
        (r#"{"room":"r","payload":1,"msg_id":7}"#, 400, "bad_field"),
        (
            r#"{"room":"123456789","payload":1}"#,
            400,
            "room_name_too_long",
        ),
        (
            r#"{"room":"r","payload":"0123456789abcdef"}"#,
            413,
            "payload_too_large",
        ),
    ] {
        let a = api.call("POST", "/api/publish", body).await;
        a.is_error(status, code);
        assert!(!a.head.contains("connection: close"), "{body}: {a:?}");
    }
    assert_eq!(api.call("GET", "/api/info", "").await.status, 200);
}

#[tokio::test]
async fn an_oversized_body_is_413_before_it_is_sent() {
    let server = ApiServer::start(|c| c.api_max_body = 1024);
    let mut api = Http::connect(server.api).await;
    // Only the head: the answer cannot wait for the body.
    api.send_raw(
        format!("POST /api/publish HTTP/1.1\r\nAuthorization: apikey {KEY}\r\nContent-Length: 1025\r\n\r\n")
            .as_bytes(),
    )
    .await;
    let a = api.answer().await;
    a.is_error(413, "payload_too_large");
    assert!(a.head.contains("connection: close"));
    api.assert_closed().await;
}

#[tokio::test]
async fn a_chunked_body_is_411_and_a_bad_length_400() {
    let server = ApiServer::start(|_| {});
    let mut api = Http::connect(server.api).await;
    api.send_raw(
        format!("POST /api/publish HTTP/1.1\r\nAuthorization: apikey {KEY}\r\nTransfer-Encoding: chunked\r\n\r\n")
            .as_bytes(),
    )
    .await;
    api.answer().await.is_error(411, "length_required");
    api.assert_closed().await;
    let mut api = Http::connect(server.api).await;
    api.send_raw(b"POST /api/publish HTTP/1.1\r\nContent-Length: 1, 2\r\n\r\n")
        .await;
    api.answer().await.is_error(400, "bad_length");
    api.assert_closed().await;
}

#[tokio::test]
async fn pipelined_requests_are_answered_in_order_on_one_connection() {
    let server = ApiServer::start(|c| c.history_size = 10);
    let mut member = Client::connect(&server.ws()).await;
    member.join("pipe", "m").await;
    let mut api = Http::connect(server.api).await;
    let mut batch = String::new();
    for i in 0..16 {
        let body = publish_body("pipe", json!(i), None);
        batch.push_str(&format!(
            "POST /api/publish HTTP/1.1\r\nAuthorization: apikey {KEY}\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        ));
    }
    batch.push_str(&format!(
        "GET /api/nothing HTTP/1.1\r\nAuthorization: apikey {KEY}\r\n\r\n"
    ));
    api.send_raw(batch.as_bytes()).await;
    let mut last = None;
    for _ in 0..16 {
        let offset = api.answer().await.json()["offset"].as_u64().unwrap();
        if let Some(prev) = last {
            assert_eq!(offset, prev + 1);
        }
        last = Some(offset);
    }
    api.answer().await.is_error(404, "not_found");
    for i in 0..16 {
        assert_eq!(member.next_of("message").await["payload"], i);
    }
}

#[tokio::test]
async fn requests_that_arrive_in_pieces_are_read_whole() {
    let server = ApiServer::start(|c| c.history_size = 10);
    let mut api = Http::connect(server.api).await;
    let mut stream = Vec::new();
    for i in 0..3 {
        let body = publish_body("pieces", json!({"n": i}), None);
        stream.extend_from_slice(
            format!(
                "POST /api/publish HTTP/1.1\r\nAuthorization: apikey {KEY}\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            )
            .as_bytes(),
        );
    }
    // Cut inside the method, the head and the bodies, each piece its own segment (the pause
    // only shapes the input: pieces that still coalesce make the test weaker, never wrong).
    for piece in stream.chunks(23) {
        api.send_raw(piece).await;
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let mut offsets = Vec::new();
    for _ in 0..3 {
        let a = api.answer().await;
        assert_eq!(a.status, 200, "{a:?}");
        offsets.push(a.json()["offset"].as_u64().unwrap());
    }
    assert_eq!(offsets, [1, 2, 3]);
}

#[tokio::test]
async fn pipelined_requests_act_in_order_and_nothing_after_a_close_is_served() {
    let server = ApiServer::start(|c| c.history_size = 10);
    let mut api = Http::connect(server.api).await;
    let publish = |n: u32| {
        let body = publish_body("batch", json!(n), None);
        format!(
            "POST /api/publish HTTP/1.1\r\nAuthorization: apikey {KEY}\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
    };
    // One write: publish, history (sees it), a request asking to close, and one after it.
    let batch = format!(
        "{}GET /api/history?room=batch HTTP/1.1\r\nAuthorization: apikey {KEY}\r\n\r\n\
         GET /api/info HTTP/1.1\r\nAuthorization: apikey {KEY}\r\nConnection: close\r\n\r\n{}",
        publish(1),
        publish(2)
    );
    api.send_raw(batch.as_bytes()).await;
    assert_eq!(api.answer().await.json()["offset"], 1);
    let history = api.answer().await.json();
    assert_eq!(history["messages"][0]["payload"], 1, "{history}");
    let info = api.answer().await;
    assert!(info.head.contains("connection: close"), "{info:?}");
    api.assert_closed().await;
    let mut again = Http::connect(server.api).await;
    let history = again
        .call("GET", "/api/history?room=batch", "")
        .await
        .json();
    assert_eq!(
        history["messages"].as_array().map(Vec::len),
        Some(1),
        "the publish after the close was never served: {history}"
    );
}

#[tokio::test]
async fn connection_close_is_honoured() {
    let server = ApiServer::start(|_| {});
    let mut api = Http::connect(server.api).await;
    api.send_raw(
        format!(
            "GET /api/info HTTP/1.1\r\nAuthorization: apikey {KEY}\r\nConnection: close\r\n\r\n"
        )
        .as_bytes(),
    )
    .await;
    let a = api.answer().await;
    assert_eq!(a.status, 200);
    assert!(a.head.contains("connection: close"));
    api.assert_closed().await;
}

#[tokio::test]
async fn the_api_is_not_served_where_clients_connect() {
    let server = ApiServer::start(|_| {});
    let (head, _) = http_request(
        server.addr,
        &format!("GET /api/info HTTP/1.1\r\nAuthorization: apikey {KEY}\r\n\r\n"),
    );
    assert!(head.starts_with("HTTP/1.1 404"), "{head}");
}

#[tokio::test]
async fn a_broadcast_reaches_every_room_and_answers_each_offset() {
    let server = ApiServer::start(|c| c.history_size = 10);
    let mut a = Client::connect(&server.ws()).await;
    a.join("a", "m").await;
    let mut b = Client::connect(&server.ws()).await;
    b.join("b", "m").await;
    let mut api = Http::connect(server.api).await;
    let answer = api
        .call(
            "POST",
            "/api/broadcast",
            &json!({"rooms": ["a", "b", "c"], "payload": {"price": 7}}).to_string(),
        )
        .await;
    assert_eq!(answer.status, 200, "{answer:?}");
    let results = answer.json()["results"].as_array().unwrap().clone();
    let rooms: Vec<&str> = results
        .iter()
        .map(|r| r["room"].as_str().unwrap())
        .collect();
    assert_eq!(rooms, ["a", "b", "c"]);
    for (client, result) in [(&mut a, &results[0]), (&mut b, &results[1])] {
        let m = client.next_of("message").await;
        assert_eq!(m["payload"], json!({"price": 7}));
        assert_eq!(m["offset"], result["offset"]);
    }
    // History on: even a room nobody is in takes an offset and keeps the message.
    assert_eq!(results[2]["offset"], 1);
    api.call("POST", "/api/broadcast", r#"{"rooms":[],"payload":1}"#)
        .await
        .is_error(400, "bad_field");
}

#[tokio::test]
async fn presence_lists_the_members_of_a_room_on_every_worker() {
    let server = ApiServer::start(|_| {});
    let mut members = rooms_client::one_per_worker(&server.ws(), 2).await;
    for (i, m) in members.iter_mut().enumerate() {
        m.join("lobby", &format!("m{i}")).await;
    }
    let mut api = Http::connect(server.api).await;
    let p = api.call("GET", "/api/presence?room=lobby", "").await.json();
    assert_eq!(p["type"], "presence");
    assert_eq!(p["room"], "lobby");
    let mut conns: Vec<&str> = p["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["conn"].as_str().unwrap())
        .collect();
    conns.sort_unstable();
    let mut want: Vec<&str> = members.iter().map(|m| m.conn.as_str()).collect();
    want.sort_unstable();
    assert_eq!(conns, want);
    let empty = api
        .call("GET", "/api/presence?room=nobody", "")
        .await
        .json();
    assert_eq!(empty["members"], json!([]));
    api.call("GET", "/api/presence", "")
        .await
        .is_error(400, "missing_field");
}

#[tokio::test]
async fn history_answers_the_last_messages_or_those_after_a_point() {
    let server = ApiServer::start(|c| c.history_size = 10);
    let mut api = Http::connect(server.api).await;
    let mut epoch = String::new();
    for i in 1..=4 {
        let at = api
            .call("POST", "/api/publish", &publish_body("log", json!(i), None))
            .await
            .json();
        epoch = at["epoch"].as_str().unwrap().to_owned();
    }
    let payloads = |h: &Value| -> Vec<Value> {
        h["messages"]
            .as_array()
            .unwrap_or_else(|| panic!("{h}"))
            .iter()
            .map(|m| m["payload"].clone())
            .collect()
    };
    let last = api
        .call("GET", "/api/history?room=log&limit=2", "")
        .await
        .json();
    assert_eq!(last["type"], "history", "{last}");
    assert_eq!(payloads(&last), [json!(3), json!(4)]);
    let after = api
        .call("GET", &format!("/api/history?room=log&since=1:{epoch}"), "")
        .await
        .json();
    assert_eq!(after["recovered"], true, "{after}");
    assert_eq!(payloads(&after), [json!(2), json!(3), json!(4)]);
    let stale = api
        .call("GET", "/api/history?room=log&since=1:0000000000000000", "")
        .await
        .json();
    assert_eq!(stale["recovered"], false, "{stale}");
    api.call("GET", "/api/history?room=log&since=nope", "")
        .await
        .is_error(400, "bad_field");
}

const SECRET: &str = "an-hmac-secret-of-at-least-32-bytes!";

fn token(sub: &str) -> String {
    auth_support::hs256_token(SECRET, sub)
}

fn with_auth(c: &mut Config) {
    c.security.auth = ringcast::security::AuthMode::Required;
    c.security.auth_jwt_secret = Some(Secret(SECRET.into()));
}

async fn connect_as(server: &ApiServer, user: &str) -> Client {
    Client::connect_as(
        &format!("{}?token={}", server.ws(), token(user)),
        Some(user),
    )
    .await
}

#[tokio::test]
async fn send_reaches_every_connection_of_the_user_and_answers_the_message_id() {
    let server = ApiServer::start(with_auth);
    let mut first = connect_as(&server, "ann").await;
    let mut second = connect_as(&server, "ann").await;
    let mut api = Http::connect(server.api).await;
    let a = api
        .call(
            "POST",
            "/api/send",
            r#"{"to_user":"ann","payload":{"order":42},"ack":true}"#,
        )
        .await;
    assert_eq!(a.status, 200, "{a:?}");
    let msg_id = a.json()["msg_id"].as_str().expect("a msg_id").to_owned();
    for client in [&mut first, &mut second] {
        let m = client.next_of("user_message").await;
        assert_eq!(m["msg_id"], msg_id.as_str(), "{m}");
        assert_eq!(m["payload"], json!({"order": 42}));
    }
    api.call("POST", "/api/send", r#"{"to_user":"ann"}"#)
        .await
        .is_error(400, "missing_field");
}

#[tokio::test]
async fn send_on_a_server_without_auth_is_refused_and_a_full_inbox_is_429() {
    let server = ApiServer::start(|_| {});
    let mut api = Http::connect(server.api).await;
    api.call("POST", "/api/send", r#"{"to_user":"ann","payload":1}"#)
        .await
        .is_error(400, "auth_disabled");
    drop(server);
    let server = ApiServer::start(|c| {
        with_auth(c);
        c.inbox_max_messages = 1;
    });
    let mut api = Http::connect(server.api).await;
    let body = r#"{"to_user":"offline","payload":1}"#;
    assert_eq!(api.call("POST", "/api/send", body).await.status, 200);
    api.call("POST", "/api/send", body)
        .await
        .is_error(429, "inbox_full");
}

#[tokio::test]
async fn disconnect_closes_every_connection_of_the_user_with_the_given_code() {
    let server = ApiServer::start(with_auth);
    let mut ann = vec![
        connect_as(&server, "ann").await,
        connect_as(&server, "ann").await,
    ];
    let mut bob = connect_as(&server, "bob").await;
    let mut api = Http::connect(server.api).await;
    let a = api
        .call(
            "POST",
            "/api/disconnect",
            r#"{"user":"ann","code":4001,"reason":"banned"}"#,
        )
        .await;
    assert_eq!(a.json(), json!({"disconnected": 2}));
    for c in &mut ann {
        use futures_util::StreamExt;
        let close = tokio::time::timeout(HANG_GUARD, async {
            loop {
                match c.ws.next().await {
                    Some(Ok(tokio_tungstenite::tungstenite::Message::Close(f))) => return f,
                    Some(Ok(_)) => continue,
                    other => panic!("expected a close frame, got {other:?}"),
                }
            }
        })
        .await
        .expect("a close before the hang guard")
        .expect("a close code");
        assert_eq!(u16::from(close.code), 4001);
        assert_eq!(close.reason.as_str(), "banned");
    }
    // Others stay connected.
    bob.ok(json!({"type":"join","room":"still-here"})).await;
    // One connection by id.
    let bob_conn = bob.conn.clone();
    let a = api
        .call(
            "POST",
            "/api/disconnect",
            &json!({"conn": bob_conn}).to_string(),
        )
        .await;
    assert_eq!(a.json(), json!({"disconnected": 1}));
    api.call(
        "POST",
        "/api/disconnect",
        &json!({"conn": bob_conn}).to_string(),
    )
    .await
    .is_error(404, "no_such_connection");
    api.call("POST", "/api/disconnect", r#"{"user":"ann","code":1006}"#)
        .await
        .is_error(400, "bad_field");
}

#[tokio::test]
async fn rooms_lists_rooms_on_every_worker_with_member_counts_by_prefix() {
    let server = ApiServer::start(|_| {});
    let mut clients = rooms_client::one_per_worker(&server.ws(), 2).await;
    for c in &mut clients {
        c.join("chat:a", "m").await;
    }
    clients[0].join("chat:b", "m").await;
    clients[1].join("other", "m").await;
    let mut api = Http::connect(server.api).await;
    let all = api.call("GET", "/api/rooms", "").await.json();
    assert_eq!(
        all,
        json!({"rooms": [
            {"room": "chat:a", "members": 2},
            {"room": "chat:b", "members": 1},
            {"room": "other", "members": 1},
        ]})
    );
    let chat = api
        .call("GET", "/api/rooms?prefix=chat%3A", "")
        .await
        .json();
    assert_eq!(chat["rooms"].as_array().unwrap().len(), 2, "{chat}");
}

/// The `(METHOD, path)` pairs of `docs/api.yaml`: under `paths:`, a path at two spaces of
/// indent, its methods at four. (The document is ours and keeps that layout; a line walker keeps
/// the test free of a YAML dependency.)
fn spec_routes() -> Vec<(String, String)> {
    let spec = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/api.yaml"))
        .expect("docs/api.yaml");
    let mut routes = Vec::new();
    let mut in_paths = false;
    let mut path = None;
    for line in spec.lines() {
        if !line.starts_with(' ') && !line.is_empty() {
            in_paths = line == "paths:";
            continue;
        }
        if !in_paths {
            continue;
        }
        if let Some(p) = line.strip_prefix("  /") {
            path = Some(format!("/{}", p.trim_end_matches(':')));
        } else if let Some(m) = line.strip_prefix("    ").filter(|m| !m.starts_with(' ')) {
            let method = m.trim_end_matches(':');
            if ["get", "post", "put", "delete", "patch"].contains(&method) {
                routes.push((
                    method.to_ascii_uppercase(),
                    path.clone().expect("a path first"),
                ));
            }
        }
    }
    routes
}

#[tokio::test]
async fn every_route_of_the_spec_is_served_and_every_served_route_is_in_the_spec() {
    let spec = spec_routes();
    assert!(spec.len() >= 9, "{spec:?}");
    let served: Vec<(String, String)> = ringcast::api::Route::ALL
        .iter()
        .map(|(_, m, p)| ((*m).to_owned(), (*p).to_owned()))
        .collect();
    for route in &served {
        assert!(
            spec.contains(route),
            "{route:?} is served but not in docs/api.yaml"
        );
    }
    let server = ApiServer::start(|_| {});
    let mut api = Http::connect(server.api).await;
    for (method, path) in &spec {
        // An empty body: a route that needs one answers 400, never 404 or 405.
        let a = api.call(method, path, "").await;
        assert!(
            ![404, 405].contains(&a.status),
            "{method} {path} from docs/api.yaml is not served: {a:?}"
        );
        assert!(
            served.contains(&(method.clone(), path.clone())),
            "{method} {path}"
        );
    }
}

#[tokio::test]
async fn the_spec_is_served_as_it_is_in_the_repository() {
    let server = ApiServer::start(|_| {});
    let mut api = Http::connect(server.api).await;
    let a = api.call("GET", "/api/openapi.yaml", "").await;
    assert_eq!(a.status, 200);
    assert!(a.head.contains("content-type: application/yaml"), "{a:?}");
    let on_disk = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/api.yaml")).unwrap();
    assert_eq!(a.body, on_disk);
}

#[tokio::test]
async fn a_silent_api_connection_is_closed_after_idle_timeout() {
    let server = ApiServer::start(|c| c.idle_timeout = Duration::from_millis(200));
    let mut idle = Http::connect(server.api).await;
    assert_eq!(idle.call("GET", "/api/info", "").await.status, 200);
    // Idle between requests: the server closes (waited for as an event, bounded by the guard).
    idle.assert_closed().await;
    // Stalled inside a head.
    let mut stalled = Http::connect(server.api).await;
    stalled.send_raw(b"GET /api/info HTTP/1.1\r\n").await;
    stalled.assert_closed().await;
}
