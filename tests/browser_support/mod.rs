//! Shared by the browser tests: a headless Chromium (Debian's `chromium`) with a throwaway profile,
//! and a minimal DevTools protocol client over the dev-dependencies already here (tokio-tungstenite
//! for the protocol's WebSocket, serde_json for its messages). Chromium is required: when it is
//! missing a test fails with instructions (`./test.sh` installs it); it never passes silently.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// Where Chromium is looked for (override with `RINGCAST_CHROMIUM`).
const CHROMIUM: &str = "/usr/bin/chromium";

/// The browser process and its throwaway profile; killed and removed on drop.
pub struct Browser {
    child: Child,
    profile: PathBuf,
    pub devtools_url: String,
}

impl Browser {
    pub fn launch() -> Browser {
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
pub struct Cdp {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    next: u64,
}

impl Cdp {
    pub async fn connect(url: &str) -> Cdp {
        let (ws, _) = tokio_tungstenite::connect_async(url)
            .await
            .expect("DevTools WebSocket");
        Cdp { ws, next: 0 }
    }

    pub async fn call(&mut self, session: Option<&str>, method: &str, params: Value) -> Value {
        match self.try_call(session, method, params).await {
            Ok(v) => v,
            Err(e) => panic!("{method} failed: {e}"),
        }
    }

    pub async fn try_call(
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

    /// Opens a page at `url` and waits until it has loaded; returns its session id.
    pub async fn open(&mut self, url: &str) -> String {
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
        let session = attached["sessionId"].as_str().unwrap().to_owned();
        // Until the navigation is done the page is about:blank, whose scripts have the origin
        // `null`: a WebSocket opened then would be refused by the Origin policy.
        self.until(
            &session,
            "the page has loaded",
            "location.href !== 'about:blank' && document.readyState === 'complete'",
        )
        .await;
        session
    }

    /// Evaluates `expression` in the page (awaiting a promise) and returns its value; a thrown
    /// exception fails the test with its text.
    /// A page that is still navigating has no context yet: such an evaluation is retried.
    pub async fn eval(&mut self, session: &str, expression: &str) -> Value {
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
    pub async fn until(&mut self, session: &str, what: &str, condition: &str) {
        let script = format!(
            "new Promise((resolve, reject) => {{ const t0 = Date.now(); const tick = () => {{ \
               try {{ if ({condition}) return resolve(true); }} catch (e) {{}} \
               if (Date.now() - t0 > 20000) return reject(new Error('never: ' + {what:?})); \
               setTimeout(tick, 20); }}; tick(); }})"
        );
        assert_eq!(self.eval(session, &script).await, json!(true), "{what}");
    }
}

pub fn js(s: &str) -> String {
    serde_json::to_string(s).unwrap()
}
