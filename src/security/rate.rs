//! Rate and count limits: the token bucket, the per-IP table (concurrent connections and
//! handshake rate) with bounded memory, and the per-connection message guard.
//!
//! Owns the integer arithmetic of every limit. Time is a millisecond count passed in by the
//! caller (the driver's monotonic tick); nothing here reads a clock, does I/O or logs.
//! [`MessageGuard::check`] runs once per message and never allocates; the per-IP table
//! allocates only when it inserts a new address, and never holds more than
//! `max(capacity, addresses with an open connection)` entries.

use std::collections::HashMap;
use std::net::IpAddr;

use super::ip::canonical;

/// Tokens are counted in thousandths, so a rate in tokens per second is exactly that many
/// milli-tokens per millisecond: the refill `elapsed_ms × per_sec` needs no division.
const MILLI: u64 = 1000;

/// A refill rate and a capacity: `per_sec` tokens per second, at most `burst` stored.
///
/// Invariant (checked by [`Rate::new`]): `per_sec > 0` and `burst > 0`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rate {
    per_sec: u64,
    burst: u64,
}

impl Rate {
    /// A rate, or `None` when either number is 0 (the limit is off).
    pub fn new(per_sec: u64, burst: u64) -> Option<Rate> {
        (per_sec > 0 && burst > 0).then_some(Rate { per_sec, burst })
    }

    /// Tokens added per second.
    pub fn per_sec(&self) -> u64 {
        self.per_sec
    }

    /// Most tokens stored.
    pub fn burst(&self) -> u64 {
        self.burst
    }

    /// The capacity in milli-tokens.
    fn capacity(&self) -> i64 {
        i64::try_from(self.burst.saturating_mul(MILLI)).unwrap_or(i64::MAX)
    }
}

/// A token bucket, without its [`Rate`] (which the caller keeps once for many buckets).
///
/// `level` is in milli-tokens and never exceeds the capacity; it goes below zero only through
/// [`TokenBucket::take_allowing_debt`], and refills back up at the rate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TokenBucket {
    level: i64,
    last_ms: u64,
}

impl TokenBucket {
    /// A full bucket at `now_ms`.
    pub fn full(rate: &Rate, now_ms: u64) -> TokenBucket {
        TokenBucket {
            level: rate.capacity(),
            last_ms: now_ms,
        }
    }

    /// Adds what `now_ms - last` earned, up to the capacity. A clock that goes backwards adds
    /// nothing (and does not move `last` back).
    fn refill(&mut self, rate: &Rate, now_ms: u64) {
        let elapsed = now_ms.saturating_sub(self.last_ms);
        if elapsed == 0 {
            return;
        }
        self.last_ms = now_ms;
        // per_sec tokens/s == per_sec milli-tokens/ms.
        let earned = i64::try_from(elapsed.saturating_mul(rate.per_sec)).unwrap_or(i64::MAX);
        self.level = self.level.saturating_add(earned).min(rate.capacity());
    }

    /// Whole tokens available at `now_ms`.
    pub fn available(&mut self, rate: &Rate, now_ms: u64) -> u64 {
        self.refill(rate, now_ms);
        u64::try_from(self.level.max(0)).unwrap_or(0) / MILLI
    }

    /// `true` when the bucket is full at `now_ms`: it then behaves exactly like a new one, so
    /// the per-IP table may forget it.
    pub fn is_full(&mut self, rate: &Rate, now_ms: u64) -> bool {
        self.refill(rate, now_ms);
        self.level >= rate.capacity()
    }

    /// Takes `n` tokens if that many are there; otherwise takes nothing and returns how many
    /// milliseconds until they will be (rounded up; `u64::MAX` when `n` exceeds the burst, since
    /// it never will be).
    pub fn try_take(&mut self, rate: &Rate, n: u64, now_ms: u64) -> Result<(), u64> {
        self.refill(rate, now_ms);
        let cost = i64::try_from(n.saturating_mul(MILLI)).unwrap_or(i64::MAX);
        if self.level >= cost {
            self.level -= cost;
            return Ok(());
        }
        if cost > rate.capacity() {
            return Err(u64::MAX);
        }
        let missing = u64::try_from(cost - self.level).unwrap_or(u64::MAX);
        Err(missing.div_ceil(rate.per_sec))
    }

    /// Takes `n` tokens if the bucket is not in debt, even when fewer than `n` are there (the
    /// level may go negative). For byte budgets: a message larger than the burst still passes
    /// when the connection has been quiet, and pays for itself by blocking the next ones until
    /// the refill has covered it, so the average never exceeds the rate.
    pub fn take_allowing_debt(&mut self, rate: &Rate, n: u64, now_ms: u64) -> Result<(), u64> {
        self.refill(rate, now_ms);
        if self.level < 0 {
            let missing = self.level.unsigned_abs();
            return Err(missing.div_ceil(rate.per_sec).max(1));
        }
        let cost = i64::try_from(n.saturating_mul(MILLI)).unwrap_or(i64::MAX);
        self.level = self.level.saturating_sub(cost);
        Ok(())
    }
}

/// Why the per-IP table refused a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PeerLimit {
    /// The address already has `limit` open connections.
    Connections {
        /// `max_connections_per_ip`.
        limit: u32,
    },
    /// The address opened connections faster than its handshake rate; a token comes back in
    /// `retry_after_ms`.
    HandshakeRate {
        /// Milliseconds until the next handshake would be admitted.
        retry_after_ms: u64,
    },
}

/// One address's state.
#[derive(Clone, Copy, Debug)]
struct PeerEntry {
    /// Open connections admitted and not yet released.
    active: u32,
    /// Handshake tokens (meaningful only with a handshake rate).
    bucket: TokenBucket,
    /// Last admission attempt, for eviction order.
    last_ms: u64,
}

/// Per-address connection counts and handshake buckets, with bounded memory.
///
/// Geometry: a hash map from the address (128-bit, see [`canonical`]) to a 32-byte entry. When
/// an insert would exceed `capacity`, `make_room` first drops every forgettable
/// entry (no open connection and a full bucket: identical to a fresh one), then, if that freed
/// less than a quarter of the capacity, the least recently seen half of the entries without open
/// connections. So a flood of distinct addresses costs O(1) amortised per insert and at most
/// `capacity` entries plus those with open connections (which the connection caps bound).
/// Evicting an entry with a partly drained bucket forgives that address's debt: the price of a
/// bounded table, paid only under a flood of distinct addresses.
#[derive(Debug)]
pub struct PeerTable {
    entries: HashMap<u128, PeerEntry>,
    capacity: usize,
    max_per_ip: Option<u32>,
    handshake: Option<Rate>,
}

impl PeerTable {
    /// A table remembering about `capacity` idle addresses (at least 1), with a cap on open
    /// connections per address (`None`: no cap) and a handshake rate per address (`None`: off).
    pub fn new(capacity: usize, max_per_ip: Option<u32>, handshake: Option<Rate>) -> PeerTable {
        PeerTable {
            entries: HashMap::new(),
            capacity: capacity.max(1),
            max_per_ip,
            handshake,
        }
    }

    /// `true` when neither limit is on: the driver may skip the table.
    pub fn is_disabled(&self) -> bool {
        self.max_per_ip.is_none() && self.handshake.is_none()
    }

    /// Admits one connection from `ip` at `now_ms`: checks the per-address cap, then takes a
    /// handshake token. On `Ok` the address's open count went up by one; call
    /// [`PeerTable::release`] exactly once when that connection ends.
    pub fn admit(&mut self, ip: IpAddr, now_ms: u64) -> Result<(), PeerLimit> {
        let key = canonical(ip);
        if !self.entries.contains_key(&key) && self.entries.len() >= self.capacity {
            self.make_room(now_ms);
        }
        let handshake = self.handshake;
        let entry = self.entries.entry(key).or_insert_with(|| PeerEntry {
            active: 0,
            bucket: handshake.map_or(
                TokenBucket {
                    level: 0,
                    last_ms: now_ms,
                },
                |r| TokenBucket::full(&r, now_ms),
            ),
            last_ms: now_ms,
        });
        entry.last_ms = now_ms;
        if let Some(limit) = self.max_per_ip {
            if entry.active >= limit {
                return Err(PeerLimit::Connections { limit });
            }
        }
        if let Some(rate) = &handshake {
            entry
                .bucket
                .try_take(rate, 1, now_ms)
                .map_err(|retry_after_ms| PeerLimit::HandshakeRate { retry_after_ms })?;
        }
        entry.active += 1;
        Ok(())
    }

    /// Ends one connection admitted for `ip`. Releasing an address with no open connection is
    /// ignored (it cannot happen through [`super::PeerPermit`], which releases once). Eviction
    /// order follows admissions only, so this needs no time.
    pub fn release(&mut self, ip: IpAddr) {
        if let Some(entry) = self.entries.get_mut(&canonical(ip)) {
            entry.active = entry.active.saturating_sub(1);
        }
    }

    /// Open connections currently counted for `ip`.
    pub fn active(&self, ip: IpAddr) -> u32 {
        self.entries.get(&canonical(ip)).map_or(0, |e| e.active)
    }

    /// Addresses currently remembered.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// `true` when no address is remembered.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Frees space for inserts; see the type's doc for the policy and its cost.
    fn make_room(&mut self, now_ms: u64) {
        let handshake = self.handshake;
        self.entries.retain(|_, e| {
            let idle = match &handshake {
                Some(rate) => e.bucket.is_full(rate, now_ms),
                None => true,
            };
            e.active > 0 || !idle
        });
        if self.entries.len() + self.capacity / 4 <= self.capacity {
            return;
        }
        let mut inactive: Vec<(u64, u128)> = self
            .entries
            .iter()
            .filter(|(_, e)| e.active == 0)
            .map(|(k, e)| (e.last_ms, *k))
            .collect();
        let evict = inactive.len().div_ceil(2);
        if evict == 0 {
            return;
        }
        inactive.select_nth_unstable(evict - 1);
        for (_, key) in &inactive[..evict] {
            self.entries.remove(key);
        }
    }
}

/// What happens to a message under the per-connection limits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Within the limits: process it.
    Ok,
    /// Over a limit: drop it and answer with an error reply `rate_limited`.
    RateLimited,
    /// Over a limit for too long: close the connection with 1008 (policy violation).
    Close,
}

/// Consecutive over-limit messages after which [`MessageGuard`] closes, by default (the
/// `message_rate_strikes` default).
pub const DEFAULT_STRIKES: u32 = 16;
/// Milliseconds a connection may stay over its limits (without one conforming message) before
/// [`MessageGuard`] closes it, by default (the `message_rate_grace` default).
pub const DEFAULT_GRACE_MS: u64 = 5_000;

/// The per-connection message limits, shared by every connection of a server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MessageLimits {
    /// Messages per second and burst; `None`: unlimited.
    pub messages: Option<Rate>,
    /// Payload bytes per second (burst: one second's worth, and one message may overdraw it,
    /// see [`TokenBucket::take_allowing_debt`]); `None`: unlimited.
    pub bytes: Option<Rate>,
    /// Close after this many consecutive over-limit messages.
    pub strikes: u32,
    /// Close once the first of a run of over-limit messages is this many ms old.
    pub grace_ms: u64,
}

impl Default for MessageLimits {
    /// No limits, [`DEFAULT_STRIKES`], [`DEFAULT_GRACE_MS`].
    fn default() -> Self {
        MessageLimits {
            messages: None,
            bytes: None,
            strikes: DEFAULT_STRIKES,
            grace_ms: DEFAULT_GRACE_MS,
        }
    }
}

/// One connection's message budget.
///
/// Rule: a message within both buckets is [`Verdict::Ok`] and ends any run of violations. A
/// message over either is [`Verdict::RateLimited`] and takes nothing from either bucket. The
/// run becomes [`Verdict::Close`] at its `strikes`-th message, or at the first message arriving
/// `grace_ms` or more after the run began: a client that keeps sending past its limit is cut off,
/// one that backs off (and so sends a conforming message) is not.
#[derive(Clone, Copy, Debug)]
pub struct MessageGuard {
    limits: MessageLimits,
    messages: TokenBucket,
    bytes: TokenBucket,
    /// Over-limit messages in the current run.
    strikes: u32,
    /// When the current run began.
    over_since: Option<u64>,
}

impl MessageGuard {
    /// A guard with full buckets at `now_ms`.
    pub fn new(limits: MessageLimits, now_ms: u64) -> MessageGuard {
        let empty = TokenBucket {
            level: 0,
            last_ms: now_ms,
        };
        MessageGuard {
            limits,
            messages: limits
                .messages
                .map_or(empty, |r| TokenBucket::full(&r, now_ms)),
            bytes: limits
                .bytes
                .map_or(empty, |r| TokenBucket::full(&r, now_ms)),
            strikes: 0,
            over_since: None,
        }
    }

    /// Accounts one message of `bytes` payload bytes arriving at `now_ms`. O(1), no allocation.
    pub fn check(&mut self, now_ms: u64, bytes: u64) -> Verdict {
        if self.within(now_ms, bytes) {
            self.strikes = 0;
            self.over_since = None;
            return Verdict::Ok;
        }
        self.strikes = self.strikes.saturating_add(1);
        let since = *self.over_since.get_or_insert(now_ms);
        if self.strikes >= self.limits.strikes
            || now_ms.saturating_sub(since) >= self.limits.grace_ms
        {
            Verdict::Close
        } else {
            Verdict::RateLimited
        }
    }

    /// Takes from both buckets if both allow it, from neither otherwise.
    fn within(&mut self, now_ms: u64, bytes: u64) -> bool {
        if let Some(rate) = &self.limits.messages {
            // Look before taking: a message refused by the byte budget must not cost a token.
            if self.messages.available(rate, now_ms) < 1 {
                return false;
            }
        }
        if let Some(rate) = &self.limits.bytes {
            if self.bytes.take_allowing_debt(rate, bytes, now_ms).is_err() {
                return false;
            }
        }
        if let Some(rate) = &self.limits.messages {
            let taken = self.messages.try_take(rate, 1, now_ms);
            debug_assert!(taken.is_ok(), "availability was checked above");
        }
        true
    }

    /// Over-limit messages in the current run (0 when the last message conformed).
    pub fn strikes(&self) -> u32 {
        self.strikes
    }
}
