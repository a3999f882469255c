//! Webhooks: events handed over by the workers, batched, signed and `POST`ed to `webhook_url` by
//! one sender thread, retried with exponential backoff and full jitter until the backend takes
//! them.
//!
//! Owns the path of an event from a worker to the backend and every bound on it:
//!
//! - a worker hands an [`Event`] to [`Webhooks::emit`], which `try_send`s it on a bounded
//!   channel of `webhook_queue_size` events: a worker never waits, and an event that does not fit
//!   is dropped and counted (`ringcast_webhook_dropped_total{reason="queue_full"}`); the sender
//!   logs each burst of drops once when it begins and once when it ends ([`OverflowLog`]);
//! - the sender takes up to `webhook_batch_size` events, waiting at most `webhook_batch_wait`
//!   after the first, renders them as one body ([`super::event::render_batch`]), signs it
//!   ([`super::sign`]) and `POST`s it; anything but a 2xx answer within `webhook_timeout`
//!   (refused connection, timeout, 5xx, 4xx) is retried, the same body with a fresh timestamp
//!   and signature, after a delay drawn uniformly in `[0, min(cap, 100ms × 2^attempt))` (full
//!   jitter, cap `webhook_retry_max_delay`) — forever, while the server runs;
//! - while a batch is retried the next events wait in the channel behind it, so events arrive in
//!   the order the channel took them, within a batch and across retries. An event refused by a
//!   full channel is lost: while the backend stays down (nothing leaves the channel) that is the
//!   newest events; when the sender merely falls behind, a loss can fall between two delivered
//!   events, whose `id`s are consecutive all the same (ids are given as the sender takes events).
//!
//! Delivery is at least once: a backend that processed a batch but answered too late gets it
//! again; every event carries an `id` (`<node>-<sequence>`) to deduplicate on.
//!
//! At a graceful stop ([`Webhooks::finish`], after every worker has drained, so the drain's own
//! `disconnect` events are in the queue) the sender delivers what is queued, retrying as usual,
//! for up to `drain_timeout`; what is still undelivered then is counted as
//! `ringcast_webhook_dropped_total{reason="shutdown"}` and logged once. A SIGKILL loses the queue.
//!
//! It must never block a worker, never hold more than `webhook_queue_size + webhook_batch_size`
//! events, and never reorder events.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use super::event::{render_batch, Event, EventKind, EventSet};
use super::http::{Client, Target};
use super::sign::{signature, SIGNATURE_HEADER, TIMESTAMP_HEADER};
use super::{unix_secs, Rng};

/// The first retry's delay bound; it doubles each attempt up to the configured cap.
pub const RETRY_BASE: Duration = Duration::from_millis(100);

/// What the sender needs to know.
#[derive(Clone, Debug)]
pub struct WebhookConfig {
    /// Where batches go.
    pub target: Target,
    /// The HMAC key.
    pub secret: Vec<u8>,
    /// The kinds sent.
    pub events: EventSet,
    /// Most events per request.
    pub batch_size: usize,
    /// Longest wait for more events after the first of a batch.
    pub batch_wait: Duration,
    /// Events that may wait for the sender.
    pub queue_size: usize,
    /// Longest exchange (connect, send, answer).
    pub timeout: Duration,
    /// Longest delay between two attempts.
    pub retry_max_delay: Duration,
    /// This node's name in events and ids.
    pub node: Arc<str>,
}

/// Counters of the webhook path, written by workers (drops) and the sender (the rest), read by
/// `/metrics` on any worker.
#[derive(Debug, Default)]
pub struct WebhookStatus {
    dropped_full: AtomicU64,
    dropped_shutdown: AtomicU64,
    delivered: AtomicU64,
    requests: AtomicU64,
    failures: AtomicU64,
    queued: AtomicU64,
    failing: AtomicBool,
}

impl WebhookStatus {
    /// Events dropped because the queue was full.
    pub fn dropped(&self) -> u64 {
        self.dropped_full.load(Ordering::Relaxed)
    }

    /// Events the backend took (a 2xx answer).
    pub fn delivered(&self) -> u64 {
        self.delivered.load(Ordering::Relaxed)
    }

    /// Prometheus series.
    pub fn render_metrics(&self, out: &mut String) {
        use std::fmt::Write;
        let _ = write!(
            out,
            "# HELP ringcast_webhook_events_total Webhook events the backend accepted (2xx).\n\
             # TYPE ringcast_webhook_events_total counter\n\
             ringcast_webhook_events_total {}\n\
             # HELP ringcast_webhook_dropped_total Webhook events lost: the queue was full (backend down or slow), or the server stopped with them queued.\n\
             # TYPE ringcast_webhook_dropped_total counter\n\
             ringcast_webhook_dropped_total{{reason=\"queue_full\"}} {}\n\
             ringcast_webhook_dropped_total{{reason=\"shutdown\"}} {}\n\
             # HELP ringcast_webhook_requests_total Webhook requests sent (each attempt of each batch).\n\
             # TYPE ringcast_webhook_requests_total counter\n\
             ringcast_webhook_requests_total {}\n\
             # HELP ringcast_webhook_failed_requests_total Webhook requests that failed (refused, timed out, non-2xx) and were retried.\n\
             # TYPE ringcast_webhook_failed_requests_total counter\n\
             ringcast_webhook_failed_requests_total {}\n\
             # HELP ringcast_webhook_queued_events Webhook events waiting for the sender (besides the batch in flight).\n\
             # TYPE ringcast_webhook_queued_events gauge\n\
             ringcast_webhook_queued_events {}\n",
            self.delivered(),
            self.dropped(),
            self.dropped_shutdown.load(Ordering::Relaxed),
            self.requests.load(Ordering::Relaxed),
            self.failures.load(Ordering::Relaxed),
            self.queued.load(Ordering::Relaxed),
        );
    }
}

/// The workers' handle on the sender.
#[derive(Debug)]
pub struct Webhooks {
    tx: mpsc::Sender<Event>,
    events: EventSet,
    /// The counters.
    pub status: Arc<WebhookStatus>,
    /// Tells the sender to finish (see [`Webhooks::finish`]).
    stop: Arc<Stop>,
    /// Disconnected when the sender thread has returned.
    finished: Mutex<std::sync::mpsc::Receiver<()>>,
    /// `webhook_timeout`: how long a request in flight at the flush deadline may still take.
    request_timeout: Duration,
}

/// The graceful stop, as the sender sees it: set once, with the moment the flush must end.
#[derive(Debug, Default)]
struct Stop {
    /// The end of the flush; set means the server is stopping.
    deadline: OnceLock<Instant>,
    /// Wakes a sender waiting for events.
    wake: tokio::sync::Notify,
}

impl Stop {
    /// `Some(deadline)` once the server is stopping.
    fn deadline(&self) -> Option<Instant> {
        self.deadline.get().copied()
    }
}

impl Webhooks {
    /// Whether `kind` is sent: ask before building an event.
    #[inline]
    pub fn wants(&self, kind: EventKind) -> bool {
        self.events.has(kind)
    }

    /// Hands `event` to the sender without waiting; a full queue drops it (counted).
    pub fn emit(&self, event: Event) {
        if self.tx.try_send(event).is_err() {
            self.status.dropped_full.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// At a graceful stop, once no worker emits any more: lets the sender deliver what is
    /// queued for up to `budget`, and waits for it. What it could not deliver by then is counted
    /// (`reason="shutdown"`) and logged by the sender.
    pub fn finish(&self, budget: Duration) {
        let deadline = Instant::now() + budget;
        if self.stop.deadline.set(deadline).is_err() {
            return;
        }
        self.stop.wake.notify_one();
        let finished = self.finished.lock().unwrap_or_else(|p| p.into_inner());
        // The sender returns by the deadline (its waits are cut there), or once the request in
        // flight at that moment ends, within `webhook_timeout`.
        let _ = finished.recv_timeout(budget + self.request_timeout);
    }
}

/// Starts the sender thread.
pub fn start(config: WebhookConfig) -> std::io::Result<Webhooks> {
    let (tx, rx) = mpsc::channel(config.queue_size);
    let status = Arc::new(WebhookStatus::default());
    let stop = Arc::new(Stop::default());
    let (finished_tx, finished) = std::sync::mpsc::channel::<()>();
    let handle = Webhooks {
        tx,
        events: config.events,
        status: status.clone(),
        stop: stop.clone(),
        finished: Mutex::new(finished),
        request_timeout: config.timeout,
    };
    std::thread::Builder::new()
        .name("ringcast-webhook".into())
        .spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("the webhook runtime starts");
            rt.block_on(run(config, rx, status, &stop));
            drop(finished_tx);
        })?;
    Ok(handle)
}

/// Full-jitter exponential backoff: the delay before attempt `attempt + 1` (`attempt` ≥ 1 failed
/// attempts so far) is uniform in `[0, min(cap, base × 2^(attempt-1)))`.
pub fn backoff(attempt: u32, base: Duration, cap: Duration, rng: &mut Rng) -> Duration {
    let ceiling = base
        .saturating_mul(1u32 << attempt.saturating_sub(1).min(20))
        .min(cap);
    let ms = u64::try_from(ceiling.as_millis()).unwrap_or(u64::MAX);
    Duration::from_millis(if ms == 0 { 0 } else { rng.next_u64() % ms })
}

/// One log line when a burst of drops begins and one when it ends, whatever its length.
#[derive(Debug, Default)]
pub struct OverflowLog {
    /// Drops counted at the last observation.
    seen: u64,
    /// Drops counted when the current burst began.
    burst_from: Option<u64>,
}

/// What [`OverflowLog::observe`] says to log.
#[derive(Debug, PartialEq, Eq)]
pub enum Overflow {
    /// Drops began.
    Began,
    /// The burst ended (a batch went through with no new drop): this many were lost in it.
    Ended(u64),
}

impl OverflowLog {
    /// `dropped`: the counter now; `delivered`: a batch was just accepted.
    pub fn observe(&mut self, dropped: u64, delivered: bool) -> Option<Overflow> {
        let grew = dropped > self.seen;
        let before = self.seen;
        self.seen = dropped;
        match self.burst_from {
            None if grew => {
                self.burst_from = Some(before);
                Some(Overflow::Began)
            }
            Some(from) if !grew && delivered => {
                self.burst_from = None;
                Some(Overflow::Ended(dropped - from))
            }
            _ => None,
        }
    }
}

async fn run(
    config: WebhookConfig,
    mut rx: mpsc::Receiver<Event>,
    status: Arc<WebhookStatus>,
    stop: &Stop,
) {
    let client = Client::new(config.target.clone(), config.timeout);
    let mut batch: Vec<Event> = Vec::with_capacity(config.batch_size);
    let mut seq = 0u64;
    let mut overflow = OverflowLog::default();
    let mut rng = Rng::seeded();
    let queue_size = config.queue_size;
    let log_overflow = |overflow: &mut OverflowLog, delivered: bool| match overflow
        .observe(status.dropped(), delivered)
    {
        Some(Overflow::Began) => tracing::warn!(
            queue = queue_size,
            "webhook queue full: dropping new events until the backend catches up \
                 (counted in ringcast_webhook_dropped_total)"
        ),
        Some(Overflow::Ended(lost)) => {
            tracing::warn!(lost, "webhook queue has room again; events were dropped")
        }
        None => {}
    };
    loop {
        let first = if stop.deadline().is_some() {
            // Stopping: nothing more is coming; deliver what is queued, then return.
            match rx.try_recv() {
                Ok(e) => e,
                Err(_) => return,
            }
        } else {
            tokio::select! {
                e = rx.recv() => match e {
                    Some(e) => e,
                    None => return,
                },
                () = stop.wake.notified() => continue,
            }
        };
        batch.push(first);
        let deadline = tokio::time::Instant::now() + config.batch_wait;
        while batch.len() < config.batch_size {
            match rx.try_recv() {
                Ok(e) => batch.push(e),
                Err(mpsc::error::TryRecvError::Disconnected) => break,
                Err(mpsc::error::TryRecvError::Empty) => {
                    match tokio::time::timeout_at(deadline, rx.recv()).await {
                        Ok(Some(e)) => batch.push(e),
                        _ => break,
                    }
                }
            }
        }
        status.queued.store(rx.len() as u64, Ordering::Relaxed);
        let body = render_batch(&config.node, seq, &batch);
        let mut attempt = 0u32;
        loop {
            let ts = unix_secs();
            let sig = signature(&config.secret, ts, &body);
            let ts = ts.to_string();
            status.requests.fetch_add(1, Ordering::Relaxed);
            let result = client
                .post(&[(SIGNATURE_HEADER, &sig), (TIMESTAMP_HEADER, &ts)], &body)
                .await;
            let problem = match result {
                Ok(r) if (200..300).contains(&r.status) => None,
                Ok(r) => Some(format!("answered {}", r.status)),
                Err(e) => Some(e.to_string()),
            };
            let Some(problem) = problem else {
                status
                    .delivered
                    .fetch_add(batch.len() as u64, Ordering::Relaxed);
                if status.failing.swap(false, Ordering::Relaxed) {
                    tracing::info!(attempts = attempt + 1, "webhook backend takes events again");
                }
                log_overflow(&mut overflow, true);
                break;
            };
            status.failures.fetch_add(1, Ordering::Relaxed);
            if !status.failing.swap(true, Ordering::Relaxed) {
                tracing::warn!(
                    url = %config.target.host,
                    problem,
                    "webhook delivery failed; retrying with backoff (logged once per outage)"
                );
            }
            log_overflow(&mut overflow, false);
            status.queued.store(rx.len() as u64, Ordering::Relaxed);
            let out_of_time = stop.deadline().is_some_and(|d| Instant::now() >= d);
            if rx.is_closed() || out_of_time {
                // The server is gone, or its stop's flush time is over: nobody will retry what
                // is left.
                let left = batch.len() + rx.len();
                status
                    .dropped_shutdown
                    .fetch_add(left as u64, Ordering::Relaxed);
                tracing::warn!(
                    lost = left,
                    "server stopped with webhook events undelivered"
                );
                return;
            }
            attempt += 1;
            let mut delay = backoff(attempt, RETRY_BASE, config.retry_max_delay, &mut rng);
            if let Some(deadline) = stop.deadline() {
                delay = delay.min(deadline.saturating_duration_since(Instant::now()));
            }
            tokio::select! {
                () = tokio::time::sleep(delay) => {}
                // A stop cuts a long backoff short: one more attempt, then the flush deadline
                // applies.
                () = stop.wake.notified() => {}
            }
        }
        seq += batch.len() as u64;
        batch.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_is_full_jitter_under_a_doubling_ceiling_and_the_cap() {
        let mut rng = Rng::seeded();
        let cap = Duration::from_secs(2);
        for attempt in 1..40 {
            let ceiling = (RETRY_BASE * 2u32.pow((attempt - 1).min(20))).min(cap);
            let mut max = Duration::ZERO;
            for _ in 0..200 {
                let d = backoff(attempt, RETRY_BASE, cap, &mut rng);
                assert!(d < ceiling, "attempt {attempt}: {d:?} >= {ceiling:?}");
                max = max.max(d);
            }
            // Full jitter spreads over the whole range, not just near the ceiling or zero.
            assert!(max > ceiling / 2, "attempt {attempt}: max {max:?}");
        }
    }

    #[test]
    fn a_burst_of_drops_is_reported_once_when_it_begins_and_once_when_it_ends() {
        let mut log = OverflowLog::default();
        assert_eq!(log.observe(0, true), None);
        assert_eq!(log.observe(3, false), Some(Overflow::Began));
        assert_eq!(log.observe(50, false), None);
        assert_eq!(log.observe(900, true), None, "still dropping");
        assert_eq!(log.observe(900, false), None, "nothing delivered yet");
        assert_eq!(log.observe(900, true), Some(Overflow::Ended(900)));
        assert_eq!(log.observe(900, true), None);
        assert_eq!(log.observe(901, true), Some(Overflow::Began));
        assert_eq!(log.observe(901, true), Some(Overflow::Ended(1)));
    }
}
