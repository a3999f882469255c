//! End to end in a real browser: two headless Chromium pages load the demo at `GET /`, join the
//! same room, and chat through the server; each sees the other's message and presence. A page
//! brings its token beside `ringcast.v1` in `Sec-WebSocket-Protocol`.

mod browser_support;
mod common;

use browser_support::{js, Browser, Cdp};
use common::TestServer;
use serde_json::{json, Value};

#[tokio::test]
async fn two_browser_pages_chat_through_the_server_and_see_each_others_presence() {
    let server = TestServer::start();
    let browser = Browser::launch();
    let mut cdp = Cdp::connect(&browser.devtools_url).await;
    let page_url = format!("http://{}/", server.addr);
    let ann = cdp.open(&page_url).await;
    let bob = cdp.open(&page_url).await;

    for (page, name) in [(&ann, "ann"), (&bob, "bob")] {
        cdp.until(
            page,
            "the page is online",
            "document.getElementById('status').textContent === 'online'",
        )
        .await;
        cdp.eval(
            page,
            &format!(
                "document.getElementById('name').value = {}; \
                 document.getElementById('room').value = 'e2e'; \
                 document.getElementById('join').click(); true",
                js(name)
            ),
        )
        .await;
    }
    let presence_has = |who: &str| {
        format!(
            "[...document.querySelectorAll('#presence li')].some(li => li.textContent.startsWith({}))",
            js(who)
        )
    };
    for page in [&ann, &bob] {
        cdp.until(page, "ann is present", &presence_has("ann"))
            .await;
        cdp.until(page, "bob is present", &presence_has("bob"))
            .await;
    }

    let say = |text: &str| {
        format!(
            "document.getElementById('text').value = {}; \
             document.getElementById('send').click(); true",
            js(text)
        )
    };
    let log_has = |line: &str| {
        format!(
            "[...document.querySelectorAll('#log li')].some(li => li.textContent === {})",
            js(line)
        )
    };
    cdp.eval(&ann, &say("hello from ann")).await;
    cdp.until(
        &bob,
        "bob sees ann's message",
        &log_has("ann: hello from ann"),
    )
    .await;
    cdp.eval(&bob, &say("hi ann, bob here")).await;
    cdp.until(
        &ann,
        "ann sees bob's message",
        &log_has("bob: hi ann, bob here"),
    )
    .await;
    cdp.until(
        &ann,
        "the live connection count shows both pages",
        "Number(document.getElementById('conns').textContent) >= 2",
    )
    .await;
    drop(cdp);
    drop(browser);
}

/// Opens a WebSocket from the page with `protocols` and reports how it went: the selected
/// protocol and the first message, or the close code when the browser failed the connection.
async fn open_ws_from_page(cdp: &mut Cdp, page: &str, url: &str, protocols: &[String]) -> Value {
    let script = format!(
        "new Promise((resolve, reject) => {{ \
           const ws = new WebSocket({url}, {protocols}); \
           const t = setTimeout(() => reject(new Error('no answer in 20 s')), 20000); \
           ws.onmessage = (e) => {{ clearTimeout(t); \
             resolve({{ protocol: ws.protocol, first: JSON.parse(e.data) }}); ws.close(); }}; \
           ws.onclose = (e) => {{ clearTimeout(t); resolve({{ closed: e.code }}); }}; \
         }})",
        url = js(url),
        protocols = serde_json::to_string(protocols).unwrap(),
    );
    cdp.eval(page, &script).await
}

#[tokio::test]
async fn a_browser_brings_its_token_beside_ringcast_v1_and_is_welcomed_as_its_user() {
    use jsonwebtoken::{encode, EncodingKey, Header};
    use ringcast::security::{AuthMode, Secret};
    const SECRET: &str = "an-hmac-secret-of-at-least-32-bytes!";
    let server = TestServer::with(|c| {
        c.security.auth = AuthMode::Required;
        c.security.auth_jwt_secret = Some(Secret(SECRET.into()));
    });
    let exp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 3600;
    let jwt = encode(
        &Header::default(),
        &json!({"sub": "ann", "exp": exp}),
        &EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .unwrap();
    let browser = Browser::launch();
    let mut cdp = Cdp::connect(&browser.devtools_url).await;
    // Any page of the server will do; the WebSocket is opened by script.
    let page = cdp.open(&format!("http://{}/healthz", server.addr)).await;
    let ws_url = format!("ws://{}/ws", server.addr);

    let got = open_ws_from_page(
        &mut cdp,
        &page,
        &ws_url,
        &["ringcast.v1".to_owned(), format!("bearer.{jwt}")],
    )
    .await;
    assert_eq!(got["protocol"], "ringcast.v1", "{got}");
    assert_eq!(got["first"]["type"], "welcome", "{got}");
    assert_eq!(got["first"]["user"], "ann", "{got}");

    // The token alone cannot work in a browser (the server refuses it with 400 rather than
    // answering with a 101 the browser would fail): the page sees the connection fail.
    let got = open_ws_from_page(&mut cdp, &page, &ws_url, &[format!("bearer.{jwt}")]).await;
    assert_eq!(got["closed"], 1006, "{got}");
    drop(cdp);
    drop(browser);
}
