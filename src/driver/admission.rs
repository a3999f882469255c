//! The security policy at the four points a connection meets it: accept, the upgrade request,
//! each data message, and its token's expiry.
//!
//! Owns a connection's share of the policy's decisions ([`ConnSecurity`]: its per-IP permits, its
//! identity, its message guard, its expiry tick) and the once-per-refusal log line. Every rule
//! itself is [`crate::security::Policy`]'s; this module only asks it, with the worker's clocks,
//! and keeps what it answered for the connection's life.
//!
//! It must never do I/O or block, and never take the policy's per-IP lock per message: the lock
//! is taken at accept, at the upgrade (behind a trusted proxy) and when a permit drops, once
//! each. A connection under the default configuration (no per-IP limits, no auth, no message
//! rate) gets no [`ConnSecurity`] at all: the box is only made when there is something to keep.

use std::cell::Cell;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::proto::handshake::Request;
use crate::security::{Admitted, Identity, MessageGuard, Now, PeerPermit, Refusal, Verdict};

use super::connection::ConnShared;
use super::worker::Worker;

/// What the policy granted one connection, kept until it is torn down.
#[derive(Debug)]
pub struct ConnSecurity {
    /// The per-IP slot taken at accept; given back when this is dropped (teardown).
    peer: Option<PeerPermit>,
    /// The forwarded client's per-IP slot (behind a trusted proxy); given back likewise. Never
    /// read: held only so that dropping the record releases it (hence the leading underscore).
    _forwarded: Option<PeerPermit>,
    /// Who the connection is (anonymous without a token).
    pub identity: Identity,
    /// The per-connection message limits, when `message_rate` or `message_bytes_rate` is on.
    guard: Option<MessageGuard>,
    /// Worker tick (ms) at which the token expires, leeway included; `None`: never.
    pub expires_at: Option<u64>,
}

impl ConnSecurity {
    /// A record holding nothing yet: no permits, anonymous, no guard, no expiry.
    fn anonymous() -> ConnSecurity {
        ConnSecurity {
            peer: None,
            _forwarded: None,
            identity: Identity::anonymous(),
            guard: None,
            expires_at: None,
        }
    }
}

/// Wall-clock Unix time in milliseconds (token `exp`/`nbf` are wall-clock).
pub fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// At accept, before any byte is read: the CIDR lists, the per-IP cap and handshake rate.
/// `Ok(Some(permit))` when a per-IP slot was taken for the connection.
pub fn at_accept(worker: &Worker, peer: SocketAddr) -> Result<Option<PeerPermit>, Refusal> {
    let permit = worker.shared.policy.admit_peer(peer.ip(), worker.now())?;
    Ok(permit.is_counted().then_some(permit))
}

/// With the complete upgrade request: the forwarded client, the Origin, the token.
pub fn at_request(worker: &Worker, request: &Request, peer: IpAddr) -> Result<Admitted, Refusal> {
    let now = Now {
        tick_ms: worker.now(),
        unix_ms: unix_ms(),
    };
    worker.shared.policy.admit_request(request, peer, now)
}

/// What a connection keeps from accept: its per-IP slot, when one was taken.
pub fn accepted(permit: Option<PeerPermit>) -> Option<Box<ConnSecurity>> {
    permit.map(|permit| {
        Box::new(ConnSecurity {
            peer: Some(permit),
            ..ConnSecurity::anonymous()
        })
    })
}

/// Builds what a newly upgraded connection keeps (`accepted`: what it kept from accept), or
/// `None` when there is nothing to keep.
pub fn on_upgrade(
    worker: &Worker,
    accepted: Option<Box<ConnSecurity>>,
    admitted: Admitted,
) -> Option<Box<ConnSecurity>> {
    let peer_permit = accepted.and_then(|mut s| s.peer.take());
    let policy = &worker.shared.policy;
    let now = worker.now();
    let limits = policy.message_limits();
    let guard =
        (limits.messages.is_some() || limits.bytes.is_some()).then(|| policy.message_guard(now));
    let expires_at = policy
        .ms_until_expiry(&admitted.identity, unix_ms())
        .map(|ms| now.saturating_add(ms));
    let anonymous = admitted.identity == Identity::anonymous();
    if peer_permit.is_none() && admitted.forwarded_permit.is_none() && anonymous && guard.is_none()
    {
        return None;
    }
    Some(Box::new(ConnSecurity {
        peer: peer_permit,
        _forwarded: admitted.forwarded_permit,
        identity: admitted.identity,
        guard,
        expires_at,
    }))
}

/// Judges one data message of `bytes` payload bytes against the connection's message limits.
pub fn check_message(worker: &Worker, conn: &ConnShared, bytes: usize) -> Verdict {
    let mut security = conn.security.borrow_mut();
    match security.as_mut().and_then(|s| s.guard.as_mut()) {
        Some(guard) => guard.check(worker.now(), bytes as u64),
        None => Verdict::Ok,
    }
}

/// The tick at which the connection's token expires, if it has one.
pub fn expires_at(conn: &ConnShared) -> Option<u64> {
    conn.security.borrow().as_ref().and_then(|s| s.expires_at)
}

/// The connection's user id (the token's `sub`), if it has one; a reference count, no copy.
pub fn user(conn: &ConnShared) -> Option<Arc<str>> {
    conn.security
        .borrow()
        .as_ref()
        .and_then(|s| s.identity.user.clone())
}

/// Whether the connection's token (its `rooms` claim) lets it join or publish to `room`.
pub fn may_use_room(conn: &ConnShared, room: &str) -> bool {
    conn.security
        .borrow()
        .as_ref()
        .is_none_or(|s| s.identity.rooms.can_join(room))
}

/// Replaces the connection's identity with the one a `refresh` token proves. Returns the new
/// expiry tick when it is earlier than the timer already armed would notice (the caller re-arms).
pub fn refresh(
    worker: &Worker,
    conn: &ConnShared,
    token: &str,
) -> Result<Option<u64>, crate::security::AuthError> {
    let policy = &worker.shared.policy;
    let mut slot = conn.security.borrow_mut();
    let anonymous = Identity::anonymous();
    let current = slot.as_ref().map_or(&anonymous, |s| &s.identity);
    let unix = unix_ms();
    let next = policy.refresh(current, token, unix)?;
    let now = worker.now();
    let expires_at = policy
        .ms_until_expiry(&next, unix)
        .map(|ms| now.saturating_add(ms));
    let security = slot.get_or_insert_with(|| Box::new(ConnSecurity::anonymous()));
    let earlier = match (security.expires_at, expires_at) {
        (Some(old), Some(new)) if new < old => Some(new),
        (None, Some(new)) => Some(new),
        _ => None,
    };
    security.identity = next;
    security.expires_at = expires_at;
    Ok(earlier)
}

/// Refusal lines (security refusals, bad handshakes, handshake timeouts) one worker writes per
/// second; past it, refusals are only counted, and one line
/// says how many went unlogged. A flood of refused connections must not turn into a flood of
/// log writes that slows every other client (every refusal is still counted in /metrics).
pub const REFUSAL_LOG_LINES_PER_SEC: u32 = 20;

/// The per-worker budget of refusal log lines (see [`REFUSAL_LOG_LINES_PER_SEC`]).
#[derive(Debug, Default)]
pub struct RefusalLog {
    /// Tick (ms) the current one-second window began.
    window_start: Cell<u64>,
    /// Lines written in the current window.
    written: Cell<u32>,
    /// Refusals not logged since the last line that reported them.
    suppressed: Cell<u64>,
}

impl RefusalLog {
    /// Whether a line may be written at tick `now`; reports what the last window suppressed.
    pub fn admit(&self, now: u64) -> bool {
        if now.saturating_sub(self.window_start.get()) >= 1000 {
            self.window_start.set(now);
            self.written.set(0);
            let suppressed = self.suppressed.replace(0);
            if suppressed > 0 {
                tracing::warn!(
                    suppressed,
                    "refusals not logged one by one in the last second (see /metrics)"
                );
            }
        }
        if self.written.get() < REFUSAL_LOG_LINES_PER_SEC {
            self.written.set(self.written.get() + 1);
            true
        } else {
            self.suppressed.set(self.suppressed.get() + 1);
            false
        }
    }
}

/// Logs one refusal: one line per refused connection or request (never per message), within
/// the worker's [`RefusalLog`] budget.
pub fn log_refusal(worker: &Worker, peer: SocketAddr, path: Option<&str>, refusal: &Refusal) {
    if !worker.refusal_log.admit(worker.now()) {
        return;
    }
    tracing::info!(
        %peer,
        path = path.unwrap_or(""),
        status = refusal.status(),
        reason = refusal.label(),
        detail = %refusal,
        "refused"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_refusal_log_writes_its_budget_per_second_then_only_counts() {
        let log = RefusalLog::default();
        let written = (0..100).filter(|_| log.admit(10)).count();
        assert_eq!(written, REFUSAL_LOG_LINES_PER_SEC as usize);
        assert_eq!(
            log.suppressed.get(),
            100 - u64::from(REFUSAL_LOG_LINES_PER_SEC)
        );
        // A new second: the budget is back and the suppressed count was reported and reset.
        assert!(log.admit(1010));
        assert_eq!(log.suppressed.get(), 0);
    }
}
