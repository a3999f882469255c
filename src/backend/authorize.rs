//! Join authorization: before a join is accepted, the backend at `authorize_join_url` is asked
//! whether the user may join the room; its decisions are cached for `authorize_join_cache_ttl`.
//!
//! Owns the question, the contract of the answer, the cache and the failure policy. The
//! contract (also in `docs/webhooks.md`): the server `POST`s `{"user":…,"room":…,"conn":…,
//! "node":…}` (`user` is `null` for an anonymous connection), signed as webhooks are when
//! `webhook_secret` is set; a 2xx answer whose body is a JSON object with `"allow": true` allows
//! the join, one with `"allow": false` refuses it with `forbidden` and the object's `"reason"`
//! (a string, optional, cut to [`MAX_REASON`] bytes). Anything else — no connection, no answer
//! within `authorize_join_timeout`, another status, another body — is a failure: with
//! `authorize_join_fail_open` the join goes ahead, without it the join is refused with
//! `unavailable`. Failures are never cached; allow and deny are, per `(user, room)` (anonymous
//! connections share the `null` user), for the ttl, at most `authorize_join_cache_size`
//! decisions.
//!
//! A worker never waits: it `try_send`s the question ([`Authorizer::ask`]; a full channel is a
//! failure, answered at once by the policy) and the authorizer thread answers through the mesh
//! (`MeshMsg::JoinAuthorized` to the joiner's worker), as the cluster bridge does. Questions run
//! concurrently (at most [`MAX_IN_FLIGHT`] at once) so one slow answer delays no other join.
//! While decisions are cached (a ttl above 0), a question for a `(user, room)` already being asked
//! waits for that answer instead of asking again (a user opening several tabs at once costs the
//! backend one request); it is counted as a cache hit.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use super::http::{Client, Target};
use super::sign::{signature, SIGNATURE_HEADER, TIMESTAMP_HEADER};
use super::unix_secs;
use crate::driver::mesh::{MeshMsg, Outbox, Resume};
use crate::envelope::ConnId;

/// Longest `reason` kept from a refusal (longer ones are cut at a character boundary).
pub const MAX_REASON: usize = 256;
/// Questions waiting for the authorizer at most; past it a join is answered by the policy.
pub const QUEUE: usize = 4096;
/// Questions asked of the backend at once at most.
pub const MAX_IN_FLIGHT: usize = 64;

/// What the authorizer needs to know.
#[derive(Clone, Debug)]
pub struct AuthorizeConfig {
    /// Where questions go.
    pub target: Target,
    /// The HMAC key, when requests are signed.
    pub secret: Option<Vec<u8>>,
    /// Longest wait for an answer.
    pub timeout: Duration,
    /// How long a decision is reused (0: never).
    pub cache_ttl: Duration,
    /// Most decisions kept.
    pub cache_size: usize,
    /// A failure allows the join.
    pub fail_open: bool,
    /// This node's name, sent with each question.
    pub node: Arc<str>,
}

/// The rest of a join, carried through the question so the worker can finish it.
#[derive(Debug)]
pub struct PendingJoin {
    /// The client's id, for the reply.
    pub id: Option<Box<str>>,
    /// The display name.
    pub name: Option<Box<str>>,
    /// It watches presence.
    pub watch: bool,
    /// Resume point.
    pub since: Option<Resume>,
}

/// One question: may `user` (on `conn`) join `room`?
#[derive(Debug)]
pub struct JoinAsk {
    /// The connection's user; `None` when anonymous.
    pub user: Option<Arc<str>>,
    /// The room.
    pub room: Box<str>,
    /// The joiner.
    pub conn: ConnId,
    /// The rest of its join.
    pub join: PendingJoin,
}

/// The answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Join.
    Allow,
    /// Refused by the backend, with its reason (possibly empty).
    Deny(Box<str>),
    /// The backend could not decide and the policy is fail-closed.
    Unavailable,
}

/// A question with its answer, sent to the joiner's worker.
#[derive(Debug)]
pub struct JoinAnswer {
    /// The question.
    pub ask: JoinAsk,
    /// The answer.
    pub verdict: Verdict,
}

/// Counters, written by the authorizer thread and (for a full queue) the workers.
#[derive(Debug, Default)]
pub struct AuthorizeStatus {
    allowed: AtomicU64,
    denied: AtomicU64,
    fail_open: AtomicU64,
    fail_closed: AtomicU64,
    requests: AtomicU64,
    cache_hits: AtomicU64,
    failing: AtomicBool,
}

impl AuthorizeStatus {
    /// Requests sent to the backend.
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    fn count(&self, verdict: &Verdict, failed: bool) {
        let counter = match (verdict, failed) {
            (Verdict::Allow, false) => &self.allowed,
            (Verdict::Allow, true) => &self.fail_open,
            (Verdict::Deny(_), _) => &self.denied,
            (Verdict::Unavailable, _) => &self.fail_closed,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Prometheus series.
    pub fn render_metrics(&self, out: &mut String) {
        use std::fmt::Write;
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let _ = write!(
            out,
            "# HELP ringcast_authorize_join_total Joins decided by authorize_join_url: allowed, denied, or after a failure (fail_open: allowed, fail_closed: refused unavailable).\n\
             # TYPE ringcast_authorize_join_total counter\n\
             ringcast_authorize_join_total{{result=\"allowed\"}} {}\n\
             ringcast_authorize_join_total{{result=\"denied\"}} {}\n\
             ringcast_authorize_join_total{{result=\"fail_open\"}} {}\n\
             ringcast_authorize_join_total{{result=\"fail_closed\"}} {}\n\
             # HELP ringcast_authorize_join_requests_total Requests sent to authorize_join_url.\n\
             # TYPE ringcast_authorize_join_requests_total counter\n\
             ringcast_authorize_join_requests_total {}\n\
             # HELP ringcast_authorize_join_cache_hits_total Joins decided from the decision cache.\n\
             # TYPE ringcast_authorize_join_cache_hits_total counter\n\
             ringcast_authorize_join_cache_hits_total {}\n",
            get(&self.allowed),
            get(&self.denied),
            get(&self.fail_open),
            get(&self.fail_closed),
            get(&self.requests),
            get(&self.cache_hits),
        );
    }
}

/// The workers' handle on the authorizer.
#[derive(Debug)]
pub struct Authorizer {
    tx: mpsc::Sender<JoinAsk>,
    fail_open: bool,
    /// The counters.
    pub status: Arc<AuthorizeStatus>,
}

impl Authorizer {
    /// Hands `ask` to the authorizer without waiting. When it cannot take it (saturated), the
    /// policy answers at once: `Err` carries the question back with that verdict.
    pub fn ask(&self, ask: JoinAsk) -> Result<(), Box<JoinAnswer>> {
        self.tx.try_send(ask).map_err(|e| {
            let ask = match e {
                mpsc::error::TrySendError::Full(a) | mpsc::error::TrySendError::Closed(a) => a,
            };
            let verdict = failure_verdict(self.fail_open);
            self.status.count(&verdict, true);
            Box::new(JoinAnswer { ask, verdict })
        })
    }
}

fn failure_verdict(fail_open: bool) -> Verdict {
    if fail_open {
        Verdict::Allow
    } else {
        Verdict::Unavailable
    }
}

/// Starts the authorizer thread; it answers on `outboxes`.
pub fn start(config: AuthorizeConfig, outboxes: Vec<Outbox>) -> std::io::Result<Authorizer> {
    let (tx, rx) = mpsc::channel(QUEUE);
    let status = Arc::new(AuthorizeStatus::default());
    let handle = Authorizer {
        tx,
        fail_open: config.fail_open,
        status: status.clone(),
    };
    std::thread::Builder::new()
        .name("ringcast-authorize".into())
        .spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("the authorizer runtime starts");
            let local = tokio::task::LocalSet::new();
            local.block_on(&rt, run(config, rx, outboxes, status));
        })?;
    Ok(handle)
}

/// Who asks about which room: the cache key.
type CacheKey = (Option<Box<str>>, Box<str>);

/// Decisions by `(user, room)`, each for `ttl`, at most `max`. Sans-IO: `now` is passed in (ms).
#[derive(Debug)]
pub struct DecisionCache {
    ttl_ms: u64,
    max: usize,
    map: HashMap<CacheKey, (Verdict, u64)>,
}

impl DecisionCache {
    /// An empty cache.
    pub fn new(ttl: Duration, max: usize) -> DecisionCache {
        DecisionCache {
            ttl_ms: u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX),
            max,
            map: HashMap::new(),
        }
    }

    /// The decision for `(user, room)` if one is fresh at `now`.
    pub fn get(&self, user: Option<&str>, room: &str, now: u64) -> Option<&Verdict> {
        if self.ttl_ms == 0 {
            return None;
        }
        let key = (user.map(Into::into), room.into());
        self.map
            .get(&key)
            .filter(|(_, expires)| *expires > now)
            .map(|(v, _)| v)
    }

    /// Remembers `verdict` (allow or deny only) until `now + ttl`. At `max`, expired decisions
    /// go first, then any one: the cache never holds more than `max`.
    pub fn insert(&mut self, user: Option<&str>, room: &str, verdict: Verdict, now: u64) {
        if self.ttl_ms == 0 || self.max == 0 || verdict == Verdict::Unavailable {
            return;
        }
        let key: CacheKey = (user.map(Into::into), room.into());
        if self.map.len() >= self.max && !self.map.contains_key(&key) {
            self.map.retain(|_, (_, expires)| *expires > now);
            if self.map.len() >= self.max {
                let victim = self.map.keys().next().cloned().expect("max > 0");
                self.map.remove(&victim);
            }
        }
        self.map
            .insert(key, (verdict, now.saturating_add(self.ttl_ms)));
    }

    /// Decisions held.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether no decision is held.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

/// Reads the backend's answer; `None` when it breaks the contract.
pub fn parse_answer(status: u16, body: &[u8]) -> Option<Verdict> {
    if !(200..300).contains(&status) {
        return None;
    }
    let value: serde_json::Value = serde_json::from_slice(body).ok()?;
    let object = value.as_object()?;
    match object.get("allow")?.as_bool()? {
        true => Some(Verdict::Allow),
        false => {
            let reason = object.get("reason").and_then(|r| r.as_str()).unwrap_or("");
            let mut end = reason.len().min(MAX_REASON);
            while !reason.is_char_boundary(end) {
                end -= 1;
            }
            Some(Verdict::Deny(reason[..end].into()))
        }
    }
}

/// The cache key of a question: its user (`None`: anonymous) and room.
type AskKey = (Option<Arc<str>>, Box<str>);

struct Ctx {
    config: AuthorizeConfig,
    client: Client,
    cache: RefCell<DecisionCache>,
    /// Questions waiting for the answer to an identical one being asked (cached decisions only).
    /// Invariant: a key is here exactly while its first question is with the backend.
    waiting: RefCell<HashMap<AskKey, Vec<JoinAsk>>>,
    outboxes: Vec<Outbox>,
    status: Arc<AuthorizeStatus>,
    epoch: Instant,
}

impl Ctx {
    fn now(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn answer(&self, ask: JoinAsk, verdict: Verdict) {
        let worker = ask.conn.worker as usize;
        if let Some(outbox) = self.outboxes.get(worker) {
            let _ = outbox.send(MeshMsg::JoinAuthorized(Box::new(JoinAnswer {
                ask,
                verdict,
            })));
        }
    }

    async fn decide(&self, ask: &JoinAsk) -> Result<Verdict, String> {
        let mut body = Vec::with_capacity(128);
        let _ = serde_json::to_writer(
            &mut body,
            &serde_json::json!({
                "user": ask.user.as_deref(),
                "room": &*ask.room,
                "conn": ask.conn.to_string(),
                "node": &*self.config.node,
            }),
        );
        let ts = unix_secs();
        let sig = self
            .config
            .secret
            .as_ref()
            .map(|s| (signature(s, ts, &body), ts.to_string()));
        let headers: Vec<(&str, &str)> = match &sig {
            Some((sig, ts)) => vec![(SIGNATURE_HEADER, sig), (TIMESTAMP_HEADER, ts)],
            None => Vec::new(),
        };
        self.status.requests.fetch_add(1, Ordering::Relaxed);
        let response = self
            .client
            .post(&headers, &body)
            .await
            .map_err(|e| e.to_string())?;
        parse_answer(response.status, &response.body).ok_or_else(|| {
            format!(
                "answered {} without a JSON object with a boolean \"allow\"",
                response.status
            )
        })
    }
}

async fn run(
    config: AuthorizeConfig,
    mut rx: mpsc::Receiver<JoinAsk>,
    outboxes: Vec<Outbox>,
    status: Arc<AuthorizeStatus>,
) {
    let ctx = Rc::new(Ctx {
        client: Client::new(config.target.clone(), config.timeout),
        cache: RefCell::new(DecisionCache::new(config.cache_ttl, config.cache_size)),
        waiting: RefCell::new(HashMap::new()),
        config,
        outboxes,
        status,
        epoch: Instant::now(),
    });
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_IN_FLIGHT));
    while let Some(ask) = rx.recv().await {
        let cached = ctx
            .cache
            .borrow()
            .get(ask.user.as_deref(), &ask.room, ctx.now())
            .cloned();
        if let Some(verdict) = cached {
            ctx.status.cache_hits.fetch_add(1, Ordering::Relaxed);
            ctx.status.count(&verdict, false);
            ctx.answer(ask, verdict);
            continue;
        }
        // A decision that will be cached is shared with identical questions asked meanwhile.
        let key: Option<AskKey> =
            (!ctx.config.cache_ttl.is_zero()).then(|| (ask.user.clone(), ask.room.clone()));
        if let Some(key) = &key {
            if let Some(waiters) = ctx.waiting.borrow_mut().get_mut(key) {
                ctx.status.cache_hits.fetch_add(1, Ordering::Relaxed);
                waiters.push(ask);
                continue;
            }
            ctx.waiting.borrow_mut().insert(key.clone(), Vec::new());
        }
        let permit = slots.clone().acquire_owned().await.expect("never closed");
        let ctx = ctx.clone();
        tokio::task::spawn_local(async move {
            let decided = ctx.decide(&ask).await;
            drop(permit);
            let (verdict, failed) = match decided {
                Ok(verdict) => {
                    if ctx.status.failing.swap(false, Ordering::Relaxed) {
                        tracing::info!("authorize_join_url answers again");
                    }
                    ctx.cache.borrow_mut().insert(
                        ask.user.as_deref(),
                        &ask.room,
                        verdict.clone(),
                        ctx.now(),
                    );
                    (verdict, false)
                }
                Err(problem) => {
                    if !ctx.status.failing.swap(true, Ordering::Relaxed) {
                        tracing::warn!(
                            url = %ctx.config.target.host,
                            problem,
                            fail_open = ctx.config.fail_open,
                            "join authorization failed (logged once per outage)"
                        );
                    }
                    (failure_verdict(ctx.config.fail_open), true)
                }
            };
            let waiters = key
                .and_then(|k| ctx.waiting.borrow_mut().remove(&k))
                .unwrap_or_default();
            for waiter in waiters {
                ctx.status.count(&verdict, failed);
                ctx.answer(waiter, verdict.clone());
            }
            ctx.status.count(&verdict, failed);
            ctx.answer(ask, verdict);
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_answer_contract_is_2xx_with_a_boolean_allow() {
        assert_eq!(
            parse_answer(200, br#"{"allow":true}"#),
            Some(Verdict::Allow)
        );
        assert_eq!(
            parse_answer(204, br#"{"allow":false,"reason":"banned"}"#),
            Some(Verdict::Deny("banned".into()))
        );
        assert_eq!(
            parse_answer(200, br#"{"allow":false}"#),
            Some(Verdict::Deny("".into()))
        );
        let long = format!(r#"{{"allow":false,"reason":"{}"}}"#, "é".repeat(200));
        let Some(Verdict::Deny(reason)) = parse_answer(200, long.as_bytes()) else {
            panic!("a long reason is cut, not refused");
        };
        assert!(reason.len() <= MAX_REASON && reason.chars().all(|c| c == 'é'));
        for (status, body) in [
            (403, &br#"{"allow":true}"#[..]),
            (500, b"{}"),
            (200, b""),
            (200, b"true"),
            (200, br#"{"allow":"yes"}"#),
            (200, br#"{"allowed":true}"#),
        ] {
            assert_eq!(parse_answer(status, body), None, "{status} {body:?}");
        }
    }

    #[test]
    fn the_cache_keeps_decisions_for_their_ttl_never_failures_and_never_more_than_its_size() {
        let mut cache = DecisionCache::new(Duration::from_secs(1), 3);
        cache.insert(Some("ann"), "a", Verdict::Allow, 0);
        cache.insert(None, "a", Verdict::Deny("no".into()), 0);
        cache.insert(Some("bob"), "a", Verdict::Unavailable, 0);
        assert_eq!(cache.get(Some("ann"), "a", 999), Some(&Verdict::Allow));
        assert_eq!(cache.get(None, "a", 999), Some(&Verdict::Deny("no".into())));
        assert_eq!(cache.get(Some("ann"), "b", 999), None);
        assert_eq!(
            cache.get(Some("bob"), "a", 0),
            None,
            "failures are not cached"
        );
        assert_eq!(cache.get(Some("ann"), "a", 1000), None, "expired");
        for i in 0..100 {
            cache.insert(Some(&format!("u{i}")), "a", Verdict::Allow, 500);
            assert!(cache.len() <= 3);
        }
        let off = DecisionCache::new(Duration::ZERO, 3);
        assert_eq!(off.get(Some("ann"), "a", 0), None);
    }
}
