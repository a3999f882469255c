//! The JavaScript client (`GET /ringcast.js`) and the demo page built on it, in real Chromium: a
//! message typed while the server is down waits as pending, is published once after the server
//! comes back, and the page says what it could not recover; a room joined while offline is joined
//! on reconnect; publishes past the offline queue's bound are refused at once, never dropped.

mod browser_support;
mod common;

use browser_support::{js, Browser, Cdp};
use common::TestServer;
use serde_json::json;

fn say(text: &str) -> String {
    format!(
        "document.getElementById('text').value = {}; \
         document.getElementById('send').click(); true",
        js(text)
    )
}

fn log_lines_equal_to(line: &str) -> String {
    format!(
        "[...document.querySelectorAll('#log li')].filter(li => li.textContent === {}).length",
        js(line)
    )
}

#[tokio::test]
async fn a_message_typed_while_the_server_restarts_is_pending_then_delivered_once() {
    let server = TestServer::start();
    let addr = server.addr;
    let browser = Browser::launch();
    let mut cdp = Cdp::connect(&browser.devtools_url).await;
    let page_url = format!("http://{addr}/");
    let ann = cdp.open(&page_url).await;
    let bob = cdp.open(&page_url).await;
    for (page, name) in [(&ann, "ann"), (&bob, "bob")] {
        cdp.until(
            page,
            "online",
            "document.getElementById('status').textContent === 'online'",
        )
        .await;
        cdp.eval(
            page,
            &format!(
                "document.getElementById('name').value = {}; \
                 document.getElementById('room').value = 'restart'; \
                 document.getElementById('join').click(); \
                 document.getElementById('join').click(); true",
                js(name)
            ),
        )
        .await;
        cdp.until(
            page,
            "joined",
            "[...document.querySelectorAll('#log li')].some(li => li.textContent === 'joined restart')",
        )
        .await;
    }

    // The server goes away; ann types while it is down.
    server.shutdown();
    cdp.until(
        &ann,
        "ann sees she is offline",
        "document.getElementById('status').textContent === 'offline'",
    )
    .await;
    cdp.eval(&ann, &say("typed while offline")).await;
    assert_eq!(
        cdp.eval(
            &ann,
            "[...document.querySelectorAll('#log li.pending')].map(li => li.textContent.startsWith('ann: typed while offline')).length"
        )
        .await,
        json!(1),
        "the line shows as pending"
    );

    // A new server on the same address: both pages reconnect, re-join, and the message is
    // published once.
    let _again = TestServer::with(|c| c.listen = addr);
    cdp.until(
        &bob,
        "bob gets the message once",
        &format!("{} === 1", log_lines_equal_to("ann: typed while offline")),
    )
    .await;
    cdp.until(
        &ann,
        "ann's line is sent (no longer pending)",
        "document.querySelectorAll('#log li.pending').length === 0",
    )
    .await;
    // The new server has no history of the old one: the pages say so instead of pretending.
    cdp.until(
        &bob,
        "bob is told what could not be recovered",
        "[...document.querySelectorAll('#log li.warn')].some(li => li.textContent.includes('cannot be recovered'))",
    )
    .await;
    // Nothing arrives twice, even after a while of further traffic.
    cdp.eval(&bob, &say("and back")).await;
    cdp.until(
        &ann,
        "ann sees bob",
        &format!("{} === 1", log_lines_equal_to("bob: and back")),
    )
    .await;
    assert_eq!(
        cdp.eval(&bob, &log_lines_equal_to("ann: typed while offline"))
            .await,
        json!(1)
    );
}

#[tokio::test]
async fn the_client_module_queues_offline_publishes_within_its_bound_and_refuses_past_it() {
    let server = TestServer::start();
    let browser = Browser::launch();
    let mut cdp = Cdp::connect(&browser.devtools_url).await;
    let page = cdp.open(&format!("http://{}/healthz", server.addr)).await;
    // A client pointed at a port nobody serves stays offline: its queue holds two, the third is
    // refused at once with queue_full.
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let result = cdp
        .eval(
            &page,
            &format!(
                "(async () => {{ \
                   const {{ Ringcast }} = await import('http://{}/ringcast.js'); \
                   const rc = new Ringcast('ws://{dead}/ws', {{ maxQueue: 2, backoffBase: 50, backoffCap: 100 }}); \
                   const a = rc.publish('r', 1), b = rc.publish('r', 2); \
                   let refused = null; \
                   try {{ await rc.publish('r', 3); }} catch (e) {{ refused = e.code; }} \
                   const pending = rc.pending; rc.close(); \
                   await Promise.allSettled([a, b]); \
                   return {{ refused, pending }}; \
                 }})()",
                server.addr
            ),
        )
        .await;
    assert_eq!(result, json!({"refused": "queue_full", "pending": 2}));
}
