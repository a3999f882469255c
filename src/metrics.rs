//! Counters every worker keeps about itself, and their Prometheus text rendering.
//!
//! Owns: the per-worker counter block ([`WorkerStats`]) and [`render`]. Each block has exactly one
//! writer (its worker thread); any thread may read it. Writers use [`Counter::add`], a relaxed
//! load + store (plain moves on x86, no locked instruction), which is correct only because of that
//! single-writer invariant. Never logs, never allocates on the counting path.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use crate::security::auth::TOKEN_EXPIRED_CLOSE_CODE;
use crate::security::{AuthError, IpError, Refusal};
use crate::user::inbox::InboxFull;

/// A monotonically increasing (or, for gauges, up-and-down) number with a single writer.
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    /// Adds `n`. Only the owning worker may call this (single-writer invariant, see module doc).
    #[inline]
    pub fn add(&self, n: u64) {
        self.0.store(self.0.load(Relaxed).wrapping_add(n), Relaxed);
    }

    /// Subtracts `n` (gauges only).
    #[inline]
    pub fn sub(&self, n: u64) {
        self.0.store(self.0.load(Relaxed).wrapping_sub(n), Relaxed);
    }

    /// Sets the value (gauges mirrored from a worker's own structures).
    #[inline]
    pub fn set(&self, n: u64) {
        self.0.store(n, Relaxed);
    }

    /// Reads the current value from any thread.
    #[inline]
    pub fn get(&self) -> u64 {
        self.0.load(Relaxed)
    }
}

/// Why a handshake (or a plain HTTP request on a WebSocket port) was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(usize)]
pub enum Rejection {
    /// 400: malformed request, missing Host, missing or bad key.
    BadRequest,
    /// 404: unknown path.
    NotFound,
    /// 405: not GET.
    MethodNotAllowed,
    /// 426: wrong version, or not an upgrade on a WebSocket path.
    UpgradeRequired,
    /// 431: headers over the byte or count limit.
    HeadersTooLarge,
    /// 505: not HTTP/1.1.
    HttpVersion,
    /// The request did not complete within the handshake timeout (slowloris).
    Timeout,
    /// 503: the server is draining.
    Draining,
    /// 503: the connection cap was reached.
    Capacity,
    /// 403 at accept: the peer is in `deny_cidr`.
    IpDenied,
    /// 403 at accept: the peer is outside `allow_cidr`.
    IpNotAllowed,
    /// 403: the client a trusted proxy forwarded is denied or not allowed.
    ForwardedIp,
    /// 503: the client address is at `max_connections_per_ip`.
    PerIpConnections,
    /// 503: the client address is over `handshake_rate`.
    HandshakeRate,
    /// 403: the `Origin` is not allowed (or missing when required).
    Origin,
    /// 401: no token where one is required.
    AuthMissing,
    /// 401: the token has expired.
    AuthExpired,
    /// 401: the token is malformed, badly signed, not yet valid or uses a refused algorithm.
    AuthInvalid,
    /// Any other status.
    Other,
}

impl From<&Refusal> for Rejection {
    fn from(refusal: &Refusal) -> Rejection {
        match refusal {
            Refusal::Address(IpError::Denied) => Rejection::IpDenied,
            Refusal::Address(IpError::NotAllowed) => Rejection::IpNotAllowed,
            Refusal::ForwardedAddress(_) => Rejection::ForwardedIp,
            Refusal::TooManyConnections { .. } => Rejection::PerIpConnections,
            Refusal::HandshakeRate { .. } => Rejection::HandshakeRate,
            Refusal::Origin(_) => Rejection::Origin,
            Refusal::Auth(AuthError::Missing) => Rejection::AuthMissing,
            Refusal::Auth(AuthError::Expired) => Rejection::AuthExpired,
            Refusal::Auth(_) => Rejection::AuthInvalid,
        }
    }
}

impl Rejection {
    /// Every rejection, in rendering order.
    pub const ALL: [Rejection; 19] = [
        Rejection::BadRequest,
        Rejection::NotFound,
        Rejection::MethodNotAllowed,
        Rejection::UpgradeRequired,
        Rejection::HeadersTooLarge,
        Rejection::HttpVersion,
        Rejection::Timeout,
        Rejection::Draining,
        Rejection::Capacity,
        Rejection::IpDenied,
        Rejection::IpNotAllowed,
        Rejection::ForwardedIp,
        Rejection::PerIpConnections,
        Rejection::HandshakeRate,
        Rejection::Origin,
        Rejection::AuthMissing,
        Rejection::AuthExpired,
        Rejection::AuthInvalid,
        Rejection::Other,
    ];

    /// The rejection an HTTP error status stands for.
    pub fn from_status(status: u16) -> Rejection {
        match status {
            400 => Rejection::BadRequest,
            404 => Rejection::NotFound,
            405 => Rejection::MethodNotAllowed,
            426 => Rejection::UpgradeRequired,
            431 => Rejection::HeadersTooLarge,
            505 => Rejection::HttpVersion,
            _ => Rejection::Other,
        }
    }

    /// The Prometheus label value.
    pub fn label(self) -> &'static str {
        match self {
            Rejection::BadRequest => "bad_request",
            Rejection::NotFound => "not_found",
            Rejection::MethodNotAllowed => "method_not_allowed",
            Rejection::UpgradeRequired => "upgrade_required",
            Rejection::HeadersTooLarge => "headers_too_large",
            Rejection::HttpVersion => "http_version",
            Rejection::Timeout => "timeout",
            Rejection::Draining => "draining",
            Rejection::Capacity => "capacity",
            // The security rejections share `Refusal::label`'s spelling.
            Rejection::IpDenied => "ip_denied",
            Rejection::IpNotAllowed => "ip_not_allowed",
            Rejection::ForwardedIp => "forwarded_ip",
            Rejection::PerIpConnections => "per_ip_connections",
            Rejection::HandshakeRate => "handshake_rate",
            Rejection::Origin => "origin",
            Rejection::AuthMissing => "auth_missing",
            Rejection::AuthExpired => "auth_expired",
            Rejection::AuthInvalid => "auth_invalid",
            Rejection::Other => "other",
        }
    }
}

/// The close codes counted one by one; anything else lands in "other".
pub const COUNTED_CLOSE_CODES: [u16; 11] = [
    1000,
    1001,
    1002,
    1003,
    1006,
    1007,
    1008,
    1009,
    1010,
    1011,
    TOKEN_EXPIRED_CLOSE_CODE,
];

/// The counters of one worker.
#[derive(Debug, Default)]
pub struct WorkerStats {
    /// Gauge: WebSocket connections open now.
    pub connections_open: Counter,
    /// Upgrades answered with 101.
    pub handshakes_accepted: Counter,
    /// Handshakes refused, indexed by [`Rejection`].
    pub handshakes_rejected: [Counter; Rejection::ALL.len()],
    /// Plain HTTP requests served (health, metrics, pages).
    pub http_requests: Counter,
    /// Data messages received.
    pub messages_in: Counter,
    /// Data messages queued for sending.
    pub messages_out: Counter,
    /// Bytes read from sockets (after the handshake).
    pub bytes_in: Counter,
    /// Bytes written to sockets (after the handshake).
    pub bytes_out: Counter,
    /// Connections closed, indexed like [`COUNTED_CLOSE_CODES`], plus one slot for other codes.
    pub closes: [Counter; COUNTED_CLOSE_CODES.len() + 1],
    /// Data messages refused for going over the connection's message rate (`rate_limited`).
    pub messages_rate_limited: Counter,
    /// Connections closed (or messages dropped) because the peer did not read fast enough.
    pub slow_consumers: Counter,
    /// Gauge: timers armed in the worker's wheel.
    pub timers_armed: Counter,
    /// Pings sent by the heartbeat.
    pub pings_sent: Counter,
    /// Gauge: frame bytes held in the histories of the rooms this worker owns.
    pub history_bytes: Counter,
    /// History messages evicted to stay within `history_max_bytes`.
    pub history_evicted: Counter,
    /// Remembered `msg_id`s forgotten before their window for lack of room (`dedup_max_entries`).
    pub dedup_evicted: Counter,
    /// Publishes recognised as retries of an earlier `msg_id` (answered, not delivered again).
    pub publishes_deduplicated: Counter,
    /// Messages to users (`send` with `to_user`) accepted by this worker, as the users' owner.
    pub user_messages: Counter,
    /// Messages to users refused by this worker's inboxes, indexed like [`InboxFull::LABELS`].
    pub inbox_refused: [Counter; InboxFull::LABELS.len()],
    /// Messages dropped from this worker's inboxes at `inbox_ttl`.
    pub inbox_expired: Counter,
    /// Deliveries of a user message after its first (on reconnect or after the ack timeout).
    pub user_redeliveries: Counter,
    /// Gauge: messages held in this worker's inboxes.
    pub inbox_messages: Counter,
    /// Gauge: bytes charged to this worker's inboxes (see [`crate::user::inbox`]).
    pub inbox_bytes: Counter,
    /// Server API requests answered (any status).
    pub api_requests: Counter,
    /// Server API requests refused with 401 (no key, or a wrong one).
    pub api_unauthorized: Counter,
}

impl WorkerStats {
    /// Counts one refused handshake.
    #[inline]
    pub fn rejected(&self, why: Rejection) {
        self.handshakes_rejected[why as usize].add(1);
    }

    /// Counts one closed connection by the code it ended with (1006 when it ended without one).
    #[inline]
    pub fn closed(&self, code: u16) {
        let slot = COUNTED_CLOSE_CODES
            .iter()
            .position(|&c| c == code)
            .unwrap_or(COUNTED_CLOSE_CODES.len());
        self.closes[slot].add(1);
    }
}

/// Picks one counter out of a worker's block.
type CounterOf = fn(&WorkerStats) -> &Counter;

/// Renders every worker's counters, per worker and in total, in the Prometheus text format
/// (version 0.0.4).
pub fn render(workers: &[WorkerStats], draining: bool) -> String {
    let mut out = String::with_capacity(4096);
    let simple: [(&str, &str, &str, CounterOf); 15] = [
        (
            "connections_open",
            "gauge",
            "WebSocket connections open.",
            |w| &w.connections_open,
        ),
        (
            "handshakes_accepted_total",
            "counter",
            "Upgrades answered with 101.",
            |w| &w.handshakes_accepted,
        ),
        (
            "http_requests_total",
            "counter",
            "Plain HTTP requests served.",
            |w| &w.http_requests,
        ),
        (
            "messages_in_total",
            "counter",
            "Data messages received.",
            |w| &w.messages_in,
        ),
        (
            "messages_out_total",
            "counter",
            "Data messages queued for sending.",
            |w| &w.messages_out,
        ),
        (
            "bytes_in_total",
            "counter",
            "Bytes read after the handshake.",
            |w| &w.bytes_in,
        ),
        (
            "bytes_out_total",
            "counter",
            "Bytes written after the handshake.",
            |w| &w.bytes_out,
        ),
        (
            "slow_consumers_total",
            "counter",
            "Slow consumers closed or whose messages were dropped.",
            |w| &w.slow_consumers,
        ),
        (
            "timers_armed",
            "gauge",
            "Timers armed in the worker's timer wheel.",
            |w| &w.timers_armed,
        ),
        (
            "messages_rate_limited_total",
            "counter",
            "Data messages refused for going over the connection's message rate.",
            |w| &w.messages_rate_limited,
        ),
        (
            "pings_sent_total",
            "counter",
            "Heartbeat pings sent.",
            |w| &w.pings_sent,
        ),
        (
            "history_bytes",
            "gauge",
            "Frame bytes held in room histories.",
            |w| &w.history_bytes,
        ),
        (
            "history_evicted_total",
            "counter",
            "History messages evicted to stay within history_max_bytes.",
            |w| &w.history_evicted,
        ),
        (
            "dedup_evicted_total",
            "counter",
            "Remembered publish msg_ids forgotten early for lack of room.",
            |w| &w.dedup_evicted,
        ),
        (
            "publishes_deduplicated_total",
            "counter",
            "Publishes recognised as retries of an earlier msg_id.",
            |w| &w.publishes_deduplicated,
        ),
    ];
    for (name, kind, help, get) in simple {
        header(&mut out, name, kind, help);
        series(&mut out, name, None, workers, |w| get(w).get());
    }
    let name = "handshakes_rejected_total";
    header(&mut out, name, "counter", "Handshakes refused, by reason.");
    for why in Rejection::ALL {
        let label = ("reason", why.label());
        series(&mut out, name, Some(label), workers, |w| {
            w.handshakes_rejected[why as usize].get()
        });
    }
    let name = "closes_total";
    header(
        &mut out,
        name,
        "counter",
        "Connections closed, by close code.",
    );
    for slot in 0..=COUNTED_CLOSE_CODES.len() {
        let code = COUNTED_CLOSE_CODES
            .get(slot)
            .map_or_else(|| "other".to_string(), |c| c.to_string());
        series(&mut out, name, Some(("code", &code)), workers, |w| {
            w.closes[slot].get()
        });
    }
    render_users(&mut out, workers);
    render_api(&mut out, workers);
    let _ = writeln!(
        out,
        "# HELP ringcast_draining 1 while the server is shutting down.\n# TYPE ringcast_draining gauge\nringcast_draining {}",
        u8::from(draining)
    );
    out
}

/// The families of the server API.
fn render_api(out: &mut String, workers: &[WorkerStats]) {
    let simple: [(&str, &str, &str, CounterOf); 2] = [
        (
            "api_requests_total",
            "counter",
            "Server API requests answered.",
            |w| &w.api_requests,
        ),
        (
            "api_unauthorized_total",
            "counter",
            "Server API requests refused with 401 (missing or wrong API key).",
            |w| &w.api_unauthorized,
        ),
    ];
    for (name, kind, help, get) in simple {
        header(out, name, kind, help);
        series(out, name, None, workers, |w| get(w).get());
    }
}

/// The families of messages to users and their inboxes.
fn render_users(out: &mut String, workers: &[WorkerStats]) {
    let simple: [(&str, &str, &str, CounterOf); 5] = [
        (
            "user_messages_total",
            "counter",
            "Messages to users accepted by their owner worker.",
            |w| &w.user_messages,
        ),
        (
            "inbox_expired_total",
            "counter",
            "Messages to users dropped from an inbox at inbox_ttl.",
            |w| &w.inbox_expired,
        ),
        (
            "user_redeliveries_total",
            "counter",
            "Deliveries of a user message after its first (reconnect or ack timeout).",
            |w| &w.user_redeliveries,
        ),
        (
            "inbox_messages",
            "gauge",
            "Messages held in users' inboxes.",
            |w| &w.inbox_messages,
        ),
        (
            "inbox_bytes",
            "gauge",
            "Bytes charged to users' inboxes (payloads plus bookkeeping).",
            |w| &w.inbox_bytes,
        ),
    ];
    for (name, kind, help, get) in simple {
        header(out, name, kind, help);
        series(out, name, None, workers, |w| get(w).get());
    }
    let name = "inbox_refused_total";
    header(
        out,
        name,
        "counter",
        "Messages to users refused (inbox_full), by the bound they hit.",
    );
    for (i, label) in InboxFull::LABELS.iter().enumerate() {
        series(out, name, Some(("reason", label)), workers, |w| {
            w.inbox_refused[i].get()
        });
    }
}

/// Writes the `# HELP` and `# TYPE` lines of one metric family.
fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(
        out,
        "# HELP ringcast_{name} {help}\n# TYPE ringcast_{name} {kind}"
    );
}

/// Writes one series per worker (`worker="i"` plus `label`, if any) and their total (`label`
/// only).
fn series(
    out: &mut String,
    name: &str,
    label: Option<(&str, &str)>,
    workers: &[WorkerStats],
    value: impl Fn(&WorkerStats) -> u64,
) {
    let extra = label.map_or_else(String::new, |(k, v)| format!("{k}=\"{v}\""));
    let mut total = 0u64;
    for (i, w) in workers.iter().enumerate() {
        let v = value(w);
        total = total.wrapping_add(v);
        let sep = if extra.is_empty() { "" } else { "," };
        let _ = writeln!(out, "ringcast_{name}{{worker=\"{i}\"{sep}{extra}}} {v}");
    }
    if extra.is_empty() {
        let _ = writeln!(out, "ringcast_{name} {total}");
    } else {
        let _ = writeln!(out, "ringcast_{name}{{{extra}}} {total}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_security_refusal_is_counted_under_its_own_label() {
        use crate::security::OriginError;
        let all = [
            Refusal::Address(IpError::Denied),
            Refusal::Address(IpError::NotAllowed),
            Refusal::ForwardedAddress(IpError::Denied),
            Refusal::TooManyConnections { limit: 1 },
            Refusal::HandshakeRate {
                retry_after_secs: 1,
            },
            Refusal::Origin(OriginError::Missing),
            Refusal::Auth(AuthError::Missing),
            Refusal::Auth(AuthError::Expired),
            Refusal::Auth(AuthError::BadSignature),
        ];
        for refusal in &all {
            assert_eq!(
                Rejection::from(refusal).label(),
                refusal.label(),
                "{refusal:?}"
            );
        }
    }

    #[test]
    fn renders_per_worker_and_total_series() {
        let workers = [WorkerStats::default(), WorkerStats::default()];
        workers[0].messages_in.add(3);
        workers[1].messages_in.add(4);
        workers[1].rejected(Rejection::NotFound);
        workers[0].closed(1000);
        workers[1].closed(4000);
        let text = render(&workers, false);
        assert!(text.contains("ringcast_messages_in_total{worker=\"0\"} 3\n"));
        assert!(text.contains("ringcast_messages_in_total{worker=\"1\"} 4\n"));
        assert!(text.contains("ringcast_messages_in_total 7\n"));
        assert!(text.contains("ringcast_handshakes_rejected_total{reason=\"not_found\"} 1\n"));
        assert!(text.contains("ringcast_closes_total{code=\"1000\"} 1\n"));
        assert!(text.contains("ringcast_closes_total{code=\"other\"} 1\n"));
        assert!(text.contains("ringcast_draining 0\n"));
    }

    #[test]
    fn inbox_refusals_are_counted_by_the_bound_they_hit() {
        let workers = [WorkerStats::default(), WorkerStats::default()];
        let full = InboxFull::Total { limit: 1 };
        workers[1].inbox_refused[full.index()].add(2);
        workers[0].inbox_bytes.set(300);
        let text = render(&workers, false);
        assert!(text.contains("ringcast_inbox_refused_total{reason=\"total_bytes\"} 2\n"));
        assert!(text.contains("ringcast_inbox_refused_total{reason=\"user_messages\"} 0\n"));
        assert!(text.contains("ringcast_inbox_bytes 300\n"));
    }

    #[test]
    fn gauges_go_up_and_down() {
        let s = WorkerStats::default();
        s.connections_open.add(2);
        s.connections_open.sub(1);
        assert_eq!(s.connections_open.get(), 1);
    }

    #[test]
    fn every_rejection_has_its_own_slot() {
        for (i, why) in Rejection::ALL.iter().enumerate() {
            assert_eq!(*why as usize, i);
        }
        assert_eq!(Rejection::from_status(431), Rejection::HeadersTooLarge);
        assert_eq!(Rejection::from_status(418), Rejection::Other);
    }
}
