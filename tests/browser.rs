//! End to end in a real browser: two headless Chromium pages load the demo at `GET /`, join the
//! same room, and chat through the server; each sees the other's message and presence.
//!
//! Chromium is driven over the DevTools protocol with the dev-dependencies already here
//! (tokio-tungstenite for the protocol's WebSocket, serde_json for its messages): a dozen lines of
//! client instead of a large generated CDP crate. Chromium is required: when it is missing the
//! test fails with instructions (CI installs Debian's `chromium`); it never passes silently.

mod common;

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use common::TestServer;
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// Where Chromium is looked for (override with `RINGCAST_CHROMIUM`).
const CHROMIUM: &str = "/usr/bin/chromium";

/// The browser process and its throwaway profile; killed and removed on drop.
struct Browser {
    child: Child,
    profile: PathBuf,
    devtools_url: String,
}

impl Browser {
    fn launch() -> Browser {
        let exe = std::env::var("RINGCAST_CHROMIUM").unwrap_or_else(|_| CHROMIUM.to_owned());
        assert!(
            std::path::Path::new(&exe).exists(),
            "Chromium not found at {exe}: install it (`apt-get install -y chromium`) or point \
             RINGCAST_CHROMIUM at a Chromium binary; this test needs a real browser"
        );
        let profile = std::env::temp_dir().join(format!(
            "ringcast-browser-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        ));
        std::fs::create_dir_all(&profile).unwrap();
        let mut child = Command::new(&exe)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--remote-debugging-port=0",
            ])
            .arg(format!("--user-data-dir={}", profile.display()))
            .arg("about:blank")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {exe}: {e}"));
        // Chromium prints "DevTools listening on ws://127.0.0.1:PORT/devtools/browser/ID".
        let stderr = child.stderr.take().unwrap();
        let mut lines = BufReader::new(stderr).lines();
        let devtools_url = loop {
            match lines.next() {
                Some(Ok(line)) => {
                    if let Some(at) = line.find("ws://") {
                        break line[at..].trim().to_owned();
                    }
                }
                _ => {
                    let _ = child.kill();
                    panic!("Chromium exited before announcing its DevTools endpoint");
                }
            }
        };
        // Keep draining stderr so Chromium never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        Browser {
            child,
            profile,
            devtools_url,
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

/// A minimal DevTools protocol client: one request at a time, events ignored.
struct Cdp {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    next: u64,
}

impl Cdp {
    async fn connect(url: &str) -> Cdp {
        let (ws, _) = tokio_tungstenite::connect_async(url)
            .await
            .expect("DevTools WebSocket");
        Cdp { ws, next: 0 }
    }

    async fn call(&mut self, session: Option<&str>, method: &str, params: Value) -> Value {
        match self.try_call(session, method, params).await {
            Ok(v) => v,
            Err(e) => panic!("{method} failed: {e}"),
        }
    }

    async fn try_call(
        &mut self,
        session: Option<&str>,
        method: &str,
        params: Value,
    ) -> Result<Value, Value> {
        self.next += 1;
        let id = self.next;
        let mut msg = json!({"id": id, "method": method, "params": params});
        if let Some(s) = session {
            msg["sessionId"] = json!(s);
        }
        self.ws.send(Message::text(msg.to_string())).await.unwrap();
        loop {
            let Some(Ok(Message::Text(text))) = self.ws.next().await else {
                panic!("DevTools connection ended during {method}");
            };
            let v: Value = serde_json::from_str(&text).unwrap();
            if v["id"] == id {
                return if v["error"].is_null() {
                    Ok(v["result"].clone())
                } else {
                    Err(v["error"].clone())
                };
            }
        }
    }

    /// Opens a page at `url`; returns its session id.
    async fn open(&mut self, url: &str) -> String {
        let target = self
            .call(None, "Target.createTarget", json!({"url": url}))
            .await;
        let attached = self
            .call(
                None,
                "Target.attachToTarget",
                json!({"targetId": target["targetId"], "flatten": true}),
            )
            .await;
        attached["sessionId"].as_str().unwrap().to_owned()
    }

    /// Evaluates `expression` in the page (awaiting a promise) and returns its value; a thrown
    /// exception fails the test with its text.
    /// A page that is still navigating has no context yet: such an evaluation is retried.
    async fn eval(&mut self, session: &str, expression: &str) -> Value {
        let params = json!({"expression": expression, "awaitPromise": true, "returnByValue": true});
        let r = loop {
            match self
                .try_call(Some(session), "Runtime.evaluate", params.clone())
                .await
            {
                Ok(r) => break r,
                Err(e) if e["message"].as_str().is_some_and(|m| m.contains("context")) => {
                    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                }
                Err(e) => panic!("Runtime.evaluate failed: {e}"),
            }
        };
        assert!(
            r["exceptionDetails"].is_null(),
            "page script failed: {}",
            r["exceptionDetails"]
        );
        r["result"]["value"].clone()
    }

    /// Waits (inside the page, polling every 20 ms) until `condition` is true. The 20 s bound is
    /// a hang guard reported as a failure, not a measurement.
    async fn until(&mut self, session: &str, what: &str, condition: &str) {
        let script = format!(
            "new Promise((resolve, reject) => {{ const t0 = Date.now(); const tick = () => {{ \
               try {{ if ({condition}) return resolve(true); }} catch (e) {{}} \
               if (Date.now() - t0 > 20000) return reject(new Error('never: ' + {what:?})); \
               setTimeout(tick, 20); }}; tick(); }})"
        );
        assert_eq!(self.eval(session, &script).await, json!(true), "{what}");
    }
}

fn js(s: &str) -> String {
    serde_json::to_string(s).unwrap()
}

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
