//! A user's inbox: messages kept until one of the user's connections acknowledges them (or, for
//! messages sent without `ack`, until a connection of the user first receives them), with their
//! bounds, redelivery backoff and expiry.
//!
//! Owns the storage trait [`InboxStore`] and its in-memory implementation [`MemoryInbox`], the
//! bounds ([`InboxLimits`]: messages and bytes per user, bytes per store) and the redelivery
//! schedule ([`Backoff`]). The store belongs to the user's owner worker; it must never send
//! anything, read a clock or allocate per call beyond the message it keeps: it answers which
//! messages to deliver (a [`Delivery`]) and the driver sends them.
//!
//! ## Life of a message
//!
//! - Sent with `ack` to a user: kept ([`InboxStore::push`]). If the user was online it has just
//!   been delivered once (`delivered = true`) and a redelivery is due after
//!   [`Backoff::delay`]`(1)`; otherwise it waits for the user's next connection.
//! - Sent without `ack` to an offline user: kept until a connection of the user receives it once.
//!   (Sent without `ack` to an online user it is never kept: the driver fans it out and forgets it.)
//! - A connection of the user arrives ([`InboxStore::on_connect`]): every kept message is delivered
//!   to it, in the order they were sent, `redelivered` when it had been delivered before. Messages
//!   without `ack` leave the inbox there; the others start a new round of timed redeliveries.
//! - Redelivery ([`InboxStore::poll`]): an unacknowledged message is delivered again to every
//!   connection of its user after `first`, then `first × factor`, … (capped at `cap`), at most
//!   `max_attempts` deliveries per round (the round's first included); after that, or while the
//!   user is offline, it waits for the user's next connection.
//! - [`InboxStore::ack`] removes it. At `ttl` after it was sent it expires, acknowledged or not.
//!
//! ## Bounds and accounting
//!
//! Each kept message costs its payload, its sender's user id and receipt id, plus
//! [`ENTRY_OVERHEAD`] for the bookkeeping around it; each user with a non-empty inbox costs the
//! store [`USER_OVERHEAD`] more (its map slot, its queue's allocation, its id). Both are rounded up
//! from a measurement of the heap (see their docs). A push that would take a user over
//! `max_messages` or `max_bytes`, or the store over `max_total_bytes`, is refused ([`InboxFull`], one variant per bound) and nothing already kept is
//! evicted: what the inbox has promised to deliver stays promised. Invariant (checked by the tests
//! under a flood): [`InboxStore::usage`] never exceeds the bounds.
//!
//! ## A remote store (Redis, a later issue)
//!
//! Every operation is a request with an owned answer (no borrow of the store's internals escapes a
//! call), and the owner applies operations for one user in order, so a remote implementation can
//! run the same calls as a queue of commands and hand the same answers back through the mesh. The
//! intended Redis mapping, per user `u`:
//!
//! - `inbox:{u}` a hash `n → encoded message` (sender, ts, payload, ack, receipt, deliveries),
//!   and `inbox:{u}:order` a sorted set of `n` scored by `n` (delivery order, `ZRANGE` on connect);
//! - `inbox:due` a sorted set of `u:n` scored by the next deadline (retry or expiry), read with
//!   `ZRANGE … BYSCORE -inf now` by the owner's tick;
//! - `inbox:{u}:bytes` a counter checked with the push in one script (the bounds), `EXPIRE` on the
//!   keys at the TTL as a backstop.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::Arc;

use bytes::Bytes;

use crate::envelope::ConnId;

/// Bytes each kept message is charged on top of its payload and strings: its entry, its node in
/// the deadline index and its slot in the message → user map. Measured (a counting allocator,
/// 16-byte payloads, 100 users × 1000 and 1 user × 1000 messages): 223 to 242 bytes of heap beyond
/// the payload per message; rounded up.
pub const ENTRY_OVERHEAD: usize = 256;

/// Bytes the store is charged for each user whose inbox is not empty (not counted against the
/// user's own `max_bytes`): its map slot, its user id and its queue's allocation. Measured as
/// above with 10 000 users × 1 message: about 550 bytes per user beyond one message's cost; a
/// queue's spare capacity can add up to its used size again while it grows.
pub const USER_OVERHEAD: usize = 640;

/// The bounds of the inboxes of one store (one owner worker). All defaults are the server's
/// options' (`inbox_*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InboxLimits {
    /// Milliseconds a message is kept after it was sent, acknowledged or not.
    pub ttl_ms: u64,
    /// Messages one user's inbox may hold.
    pub max_messages: usize,
    /// Bytes one user's inbox may hold (see the module doc for what a message costs).
    pub max_bytes: usize,
    /// Bytes every inbox of this store may hold together.
    pub max_total_bytes: usize,
}

/// When an unacknowledged message is delivered again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Backoff {
    /// Milliseconds from a round's first delivery to its second.
    pub first_ms: u64,
    /// Each later delay is the previous one times this (at least 1).
    pub factor: u32,
    /// No delay is longer than this many milliseconds.
    pub cap_ms: u64,
    /// Most deliveries in one round (its first included); then the message waits for the user's
    /// next connection. At least 1.
    pub max_attempts: u32,
}

impl Backoff {
    /// The delay after delivery number `attempt` (1-based) of a round: `first × factor^(attempt-1)`,
    /// capped; saturating, never overflowing.
    pub fn delay(&self, attempt: u32) -> u64 {
        let mut d = self.first_ms;
        for _ in 1..attempt {
            d = d.saturating_mul(u64::from(self.factor));
            if d >= self.cap_ms {
                break;
            }
        }
        d.min(self.cap_ms)
    }
}

/// Who asked for a `delivered` receipt: the sender's connection and its `send`'s id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Receipt {
    /// The sender's connection.
    pub to: ConnId,
    /// The id of its `send`, carried back in the receipt.
    pub id: Option<Box<str>>,
}

/// A user message as the owner keeps and delivers it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserMessage {
    /// Its number among its owner's messages (see [`super::MsgIds`]); increasing in send order.
    pub n: u64,
    /// The sender's connection.
    pub from: ConnId,
    /// The sender's user, when authenticated.
    pub sender: Option<Arc<str>>,
    /// Unix ms when the owner accepted it.
    pub ts: u64,
    /// The payload JSON, verbatim.
    pub payload: Bytes,
    /// Kept until acknowledged.
    pub ack: bool,
    /// The sender wants a `delivered` receipt.
    pub receipt: Option<Receipt>,
}

impl UserMessage {
    /// What keeping this message costs against the bounds.
    pub fn cost(&self) -> usize {
        ENTRY_OVERHEAD
            + self.payload.len()
            + self.sender.as_deref().map_or(0, str::len)
            + self
                .receipt
                .as_ref()
                .and_then(|r| r.id.as_deref())
                .map_or(0, str::len)
    }
}

/// One delivery the driver must make.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delivery {
    /// The recipient user.
    pub user: Arc<str>,
    /// The message (a clone: its payload is a reference count).
    pub message: UserMessage,
    /// It was delivered before.
    pub redelivered: bool,
}

/// What an inbox (or every inbox of a store) holds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Usage {
    /// Messages kept.
    pub messages: usize,
    /// Bytes charged (see the module doc).
    pub bytes: usize,
}

/// Why a message was not kept. One variant per bound.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum InboxFull {
    /// The user's inbox holds `inbox_max_messages` messages.
    #[error("the user's inbox holds {limit} messages (inbox_max_messages); this one was refused")]
    Messages {
        /// The limit.
        limit: usize,
    },
    /// The message would take the user's inbox over `inbox_max_bytes`.
    #[error("the user's inbox would exceed {limit} bytes (inbox_max_bytes); this one was refused")]
    Bytes {
        /// The limit.
        limit: usize,
    },
    /// The message would take the server's inboxes over their budget.
    #[error(
        "the server's inboxes would exceed their budget of {limit} bytes; this one was refused"
    )]
    Total {
        /// This store's budget.
        limit: usize,
    },
}

impl InboxFull {
    /// Every refusal, in the order `/metrics` lists them.
    pub const LABELS: [&'static str; 3] = ["user_messages", "user_bytes", "total_bytes"];

    /// Its position in [`InboxFull::LABELS`].
    pub fn index(self) -> usize {
        match self {
            InboxFull::Messages { .. } => 0,
            InboxFull::Bytes { .. } => 1,
            InboxFull::Total { .. } => 2,
        }
    }

    /// Its `/metrics` label.
    pub fn label(self) -> &'static str {
        Self::LABELS[self.index()]
    }
}

/// Where the owner keeps user messages. See the module doc for the life of a message and for the
/// intended remote mapping.
pub trait InboxStore {
    /// Keeps `message` for `user`, or refuses it over a bound (then nothing changes). `delivered`:
    /// it has just been delivered to the user's live connections (first delivery of a round).
    fn push(
        &mut self,
        user: &str,
        message: UserMessage,
        delivered: bool,
        now: u64,
    ) -> Result<(), InboxFull>;

    /// A connection of `user` arrived: appends to `out` every message kept for the user, oldest
    /// first. Messages without `ack` leave the inbox; the others start a new round.
    fn on_connect(&mut self, user: &Arc<str>, now: u64, out: &mut Vec<Delivery>);

    /// Removes message `n` of `user`: acknowledged. `None` when the user has no such message
    /// (acknowledged already, expired, never sent to this user).
    fn ack(&mut self, user: &str, n: u64) -> Option<UserMessage>;

    /// Everything due by `now`: expired messages are dropped (their count is returned, and each
    /// is shown to `expired` with its user and how many times it was delivered) and
    /// redeliveries to users that `online` says are connected are appended to `out`.
    fn poll(
        &mut self,
        now: u64,
        online: &dyn Fn(&str) -> bool,
        out: &mut Vec<Delivery>,
        expired: &mut dyn FnMut(&Arc<str>, &UserMessage, u32),
    ) -> usize;

    /// What the whole store holds (its bytes include [`USER_OVERHEAD`] per user with messages).
    fn usage(&self) -> Usage;

    /// What `user`'s inbox holds (its messages' costs).
    fn user_usage(&self, user: &str) -> Usage;
}

/// One kept message and its schedule.
#[derive(Debug)]
struct Entry {
    message: UserMessage,
    cost: usize,
    /// Deliveries so far (all rounds).
    deliveries: u32,
    /// Deliveries in the current round.
    round: u32,
    /// When it expires.
    expires_at: u64,
    /// Its key in the due index: the earlier of its next redelivery (if any) and its expiry.
    deadline: u64,
}

#[derive(Debug, Default)]
struct UserInbox {
    /// Oldest first; `n` increasing.
    entries: VecDeque<Entry>,
    bytes: usize,
}

impl UserInbox {
    fn find(&self, n: u64) -> Option<usize> {
        self.entries.binary_search_by_key(&n, |e| e.message.n).ok()
    }
}

/// The in-memory [`InboxStore`]: a map of per-user queues and one deadline index.
///
/// Costs: push O(log kept); ack O(log kept + user's messages); poll O(log kept) per due message;
/// on_connect O(user's messages × log kept).
#[derive(Debug)]
pub struct MemoryInbox {
    limits: InboxLimits,
    backoff: Backoff,
    users: HashMap<Arc<str>, UserInbox>,
    /// `(deadline, n)` of every kept message. Invariant: exactly one element per entry, equal to
    /// `(entry.deadline, entry.message.n)`.
    due: BTreeSet<(u64, u64)>,
    /// The user of every kept message, by `n`.
    owner: HashMap<u64, Arc<str>>,
    usage: Usage,
}

impl MemoryInbox {
    /// An empty store with these bounds and this schedule.
    pub fn new(limits: InboxLimits, backoff: Backoff) -> MemoryInbox {
        MemoryInbox {
            limits,
            backoff,
            users: HashMap::new(),
            due: BTreeSet::new(),
            owner: HashMap::new(),
            usage: Usage::default(),
        }
    }

    /// Sets `entry`'s next deadline after a delivery at `now` (or none, when `delivered` is false)
    /// and indexes it.
    fn schedule(due: &mut BTreeSet<(u64, u64)>, backoff: &Backoff, entry: &mut Entry, now: u64) {
        let retry = (entry.round > 0 && entry.round < backoff.max_attempts)
            .then(|| now.saturating_add(backoff.delay(entry.round)));
        entry.deadline = retry.map_or(entry.expires_at, |r| r.min(entry.expires_at));
        due.insert((entry.deadline, entry.message.n));
    }

    /// Removes entry `at` of `user`'s inbox and everything that points at it.
    fn remove(&mut self, user: &str, at: usize) -> UserMessage {
        let inbox = self.users.get_mut(user).expect("indexed user");
        let entry = inbox.entries.remove(at).expect("indexed entry");
        inbox.bytes -= entry.cost;
        if inbox.entries.is_empty() {
            self.users.remove(user);
            self.usage.bytes -= USER_OVERHEAD;
        }
        self.due.remove(&(entry.deadline, entry.message.n));
        self.owner.remove(&entry.message.n);
        self.usage.messages -= 1;
        self.usage.bytes -= entry.cost;
        entry.message
    }
}

impl InboxStore for MemoryInbox {
    fn push(
        &mut self,
        user: &str,
        message: UserMessage,
        delivered: bool,
        now: u64,
    ) -> Result<(), InboxFull> {
        let cost = message.cost();
        let limits = self.limits;
        let kept = self.users.get(user).map(|u| (u.entries.len(), u.bytes));
        let (messages, bytes) = kept.unwrap_or((0, 0));
        if messages >= limits.max_messages {
            return Err(InboxFull::Messages {
                limit: limits.max_messages,
            });
        }
        if bytes + cost > limits.max_bytes {
            return Err(InboxFull::Bytes {
                limit: limits.max_bytes,
            });
        }
        let new_user = if kept.is_none() { USER_OVERHEAD } else { 0 };
        if self.usage.bytes + cost + new_user > limits.max_total_bytes {
            return Err(InboxFull::Total {
                limit: limits.max_total_bytes,
            });
        }
        let n = message.n;
        let mut entry = Entry {
            message,
            cost,
            deliveries: u32::from(delivered),
            round: u32::from(delivered),
            expires_at: now.saturating_add(limits.ttl_ms),
            deadline: 0,
        };
        Self::schedule(&mut self.due, &self.backoff, &mut entry, now);
        // The user id is allocated once per inbox, not once per message.
        let user: Arc<str> = match self.users.get_key_value(user) {
            Some((key, _)) => key.clone(),
            None => user.into(),
        };
        let inbox = self.users.entry(user.clone()).or_default();
        debug_assert!(inbox.entries.back().is_none_or(|e| e.message.n < n));
        inbox.entries.push_back(entry);
        inbox.bytes += cost;
        self.owner.insert(n, user);
        self.usage.messages += 1;
        self.usage.bytes += cost + new_user;
        Ok(())
    }

    fn on_connect(&mut self, user: &Arc<str>, now: u64, out: &mut Vec<Delivery>) {
        let Some(inbox) = self.users.get_mut(&**user) else {
            return;
        };
        let mut done = Vec::new();
        for entry in &mut inbox.entries {
            out.push(Delivery {
                user: user.clone(),
                message: entry.message.clone(),
                redelivered: entry.deliveries > 0,
            });
            entry.deliveries += 1;
            if entry.message.ack {
                self.due.remove(&(entry.deadline, entry.message.n));
                entry.round = 1;
                Self::schedule(&mut self.due, &self.backoff, entry, now);
            } else {
                done.push(entry.message.n);
            }
        }
        for n in done {
            let at = self.users[&**user].find(n).expect("just seen");
            self.remove(user, at);
        }
    }

    fn ack(&mut self, user: &str, n: u64) -> Option<UserMessage> {
        let at = self.users.get(user)?.find(n)?;
        Some(self.remove(user, at))
    }

    fn poll(
        &mut self,
        now: u64,
        online: &dyn Fn(&str) -> bool,
        out: &mut Vec<Delivery>,
        on_expired: &mut dyn FnMut(&Arc<str>, &UserMessage, u32),
    ) -> usize {
        let mut expired = 0;
        while let Some(&(deadline, n)) = self.due.first() {
            if deadline > now {
                break;
            }
            let user = self.owner[&n].clone();
            let at = self.users[&user].find(n).expect("indexed entry");
            let entry = &self.users[&user].entries[at];
            if entry.expires_at <= now {
                let deliveries = entry.deliveries;
                let message = self.remove(&user, at);
                on_expired(&user, &message, deliveries);
                expired += 1;
                continue;
            }
            self.due.pop_first();
            let entry = &mut self.users.get_mut(&user).expect("indexed user").entries[at];
            if online(&user) {
                out.push(Delivery {
                    user: user.clone(),
                    message: entry.message.clone(),
                    redelivered: true,
                });
                entry.deliveries += 1;
                entry.round += 1;
            } else {
                // Offline: wait for the next connection (or the expiry).
                entry.round = 0;
            }
            Self::schedule(&mut self.due, &self.backoff, entry, now);
        }
        expired
    }

    fn usage(&self) -> Usage {
        self.usage
    }

    fn user_usage(&self, user: &str) -> Usage {
        self.users.get(user).map_or(Usage::default(), |u| Usage {
            messages: u.entries.len(),
            bytes: u.bytes,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::table::ConnKey;

    const LIMITS: InboxLimits = InboxLimits {
        ttl_ms: 60_000,
        max_messages: 4,
        max_bytes: 4 * (ENTRY_OVERHEAD + 100),
        max_total_bytes: 6 * (ENTRY_OVERHEAD + 100) + 2 * USER_OVERHEAD,
    };

    const BACKOFF: Backoff = Backoff {
        first_ms: 100,
        factor: 2,
        cap_ms: 350,
        max_attempts: 4,
    };

    fn store() -> MemoryInbox {
        MemoryInbox::new(LIMITS, BACKOFF)
    }

    fn msg(n: u64, ack: bool, payload_len: usize) -> UserMessage {
        UserMessage {
            n,
            from: ConnId {
                worker: 0,
                key: ConnKey::from_u64(1),
            },
            sender: None,
            ts: 0,
            payload: Bytes::from(vec![b'1'; payload_len]),
            ack,
            receipt: None,
        }
    }

    fn user(name: &str) -> Arc<str> {
        name.into()
    }

    fn ns(out: &[Delivery]) -> Vec<(u64, bool)> {
        out.iter().map(|d| (d.message.n, d.redelivered)).collect()
    }

    #[test]
    fn the_backoff_multiplies_from_the_first_delay_up_to_the_cap() {
        let delays: Vec<u64> = (1..=5).map(|a| BACKOFF.delay(a)).collect();
        assert_eq!(delays, [100, 200, 350, 350, 350]);
        let huge = Backoff {
            first_ms: u64::MAX / 2,
            factor: 16,
            cap_ms: u64::MAX,
            max_attempts: 100,
        };
        assert_eq!(huge.delay(90), u64::MAX);
    }

    #[test]
    fn an_offline_users_messages_are_delivered_in_order_on_connect_and_plain_ones_leave() {
        let mut s = store();
        let ann = user("ann");
        s.push(&ann, msg(1, true, 10), false, 0).unwrap();
        s.push(&ann, msg(2, false, 10), false, 0).unwrap();
        let mut out = Vec::new();
        s.on_connect(&ann, 5, &mut out);
        assert_eq!(ns(&out), [(1, false), (2, false)]);
        assert_eq!(s.user_usage("ann").messages, 1, "only the acked kind stays");
        out.clear();
        s.on_connect(&ann, 6, &mut out);
        assert_eq!(
            ns(&out),
            [(1, true)],
            "a second connection gets it again, marked"
        );
    }

    #[test]
    fn an_acknowledged_message_is_gone_and_a_second_ack_finds_nothing() {
        let mut s = store();
        let ann = user("ann");
        s.push(&ann, msg(1, true, 10), true, 0).unwrap();
        assert_eq!(s.ack("bob", 1), None, "another user's ack");
        assert_eq!(s.ack("ann", 1).map(|m| m.n), Some(1));
        assert_eq!(s.ack("ann", 1), None);
        assert_eq!(s.usage(), Usage::default());
        let mut out = Vec::new();
        assert_eq!(s.poll(u64::MAX, &|_| true, &mut out, &mut |_, _, _| {}), 0);
        assert!(out.is_empty());
    }

    #[test]
    fn an_unacknowledged_message_is_redelivered_with_backoff_up_to_max_attempts() {
        let mut s = store();
        let ann = user("ann");
        s.push(&ann, msg(1, true, 10), true, 0).unwrap();
        let mut out = Vec::new();
        let mut fired = Vec::new();
        for now in (0..=2_000).step_by(10) {
            s.poll(now, &|_| true, &mut out, &mut |_, _, _| {});
            fired.extend(out.drain(..).map(|d| (now, d.redelivered)));
        }
        // Delivered at 0 (push); redelivered at 100, +200 = 300, +350 = 650: four in the round.
        assert_eq!(fired, [(100, true), (300, true), (650, true)]);
        assert_eq!(s.user_usage("ann").messages, 1, "kept until the TTL");
        // A new connection starts a new round.
        s.on_connect(&ann, 3_000, &mut out);
        assert_eq!(ns(&out), [(1, true)]);
        out.clear();
        s.poll(3_100, &|_| true, &mut out, &mut |_, _, _| {});
        assert_eq!(ns(&out), [(1, true)]);
    }

    #[test]
    fn a_due_redelivery_to_an_offline_user_waits_for_the_next_connection() {
        let mut s = store();
        let ann = user("ann");
        s.push(&ann, msg(1, true, 10), true, 0).unwrap();
        let mut out = Vec::new();
        s.poll(100, &|_| false, &mut out, &mut |_, _, _| {});
        s.poll(10_000, &|_| true, &mut out, &mut |_, _, _| {});
        assert!(out.is_empty());
        s.on_connect(&ann, 10_001, &mut out);
        assert_eq!(ns(&out), [(1, true)]);
    }

    #[test]
    fn messages_expire_at_the_ttl_whether_or_not_they_were_delivered() {
        let mut s = store();
        let (ann, bob) = (user("ann"), user("bob"));
        s.push(&ann, msg(1, true, 10), true, 0).unwrap();
        s.push(&bob, msg(2, false, 10), false, 1_000).unwrap();
        let mut out = Vec::new();
        // Each expired message is shown with its user and how often it was delivered.
        let mut gone: Vec<(String, u64, u32)> = Vec::new();
        let mut seen = |u: &Arc<str>, m: &UserMessage, d: u32| gone.push((u.to_string(), m.n, d));
        assert_eq!(s.poll(59_999, &|_| false, &mut out, &mut seen), 0);
        assert_eq!(s.poll(60_000, &|_| false, &mut out, &mut seen), 1);
        assert_eq!(s.user_usage("ann"), Usage::default());
        assert_eq!(s.poll(61_000, &|_| false, &mut out, &mut seen), 1);
        assert_eq!(s.usage(), Usage::default());
        assert!(out.is_empty());
        assert_eq!(gone, [("ann".to_owned(), 1, 1), ("bob".to_owned(), 2, 0)]);
    }

    #[test]
    fn each_bound_refuses_with_its_own_reason_and_keeps_what_it_has() {
        let mut s = store();
        let ann = user("ann");
        for n in 1..=4 {
            s.push(&ann, msg(n, true, 1), false, 0).unwrap();
        }
        assert_eq!(
            s.push(&ann, msg(5, true, 1), false, 0),
            Err(InboxFull::Messages { limit: 4 })
        );
        let bob = user("bob");
        s.push(&bob, msg(6, true, 500), false, 0).unwrap();
        assert_eq!(
            s.push(&bob, msg(7, true, 500), false, 0),
            Err(InboxFull::Bytes {
                limit: LIMITS.max_bytes
            })
        );
        let cat = user("cat");
        assert_eq!(
            s.push(&cat, msg(8, true, 100), false, 0),
            Err(InboxFull::Total {
                limit: LIMITS.max_total_bytes
            })
        );
        assert_eq!(s.user_usage("ann").messages, 4);
        let mut out = Vec::new();
        s.on_connect(&ann, 1, &mut out);
        assert_eq!(out.len(), 4, "nothing kept was evicted");
    }

    #[test]
    fn a_flood_of_messages_stays_within_every_budget_and_accounting_balances() {
        let mut s = store();
        let users: Vec<Arc<str>> = (0..5).map(|i| user(&format!("u{i}"))).collect();
        let mut refused = [0usize; 3];
        let mut accepted = 0;
        let mut out = Vec::new();
        for n in 1..=2_000u64 {
            let u = &users[(n % 5) as usize];
            match s.push(u, msg(n, n % 3 != 0, (n % 150) as usize), n % 2 == 0, n) {
                Ok(()) => accepted += 1,
                Err(e) => refused[e.index()] += 1,
            }
            let usage = s.usage();
            assert!(usage.bytes <= LIMITS.max_total_bytes);
            for u in &users {
                let uu = s.user_usage(u);
                assert!(uu.messages <= LIMITS.max_messages && uu.bytes <= LIMITS.max_bytes);
            }
            // Charged bytes are exactly the kept messages' costs plus each non-empty inbox's.
            let sum: usize = users.iter().map(|u| s.user_usage(u).bytes).sum();
            let inboxes = users
                .iter()
                .filter(|u| s.user_usage(u).messages > 0)
                .count();
            assert_eq!(sum + inboxes * USER_OVERHEAD, usage.bytes);
            if n % 97 == 0 {
                s.ack(&users[((n - 1) % 5) as usize], n - 1);
                s.poll(n * 40, &|_| true, &mut out, &mut |_, _, _| {});
                out.clear();
            }
        }
        assert!(accepted > 0);
        assert_eq!(accepted + refused.iter().sum::<usize>(), 2_000);
        assert!(refused[2] > 0, "the global budget was reached: {refused:?}");
        // Everything expires in the end and the accounting comes back to zero.
        s.poll(u64::MAX, &|_| true, &mut out, &mut |_, _, _| {});
        assert_eq!(s.usage(), Usage::default());
        assert!(s.due.is_empty() && s.owner.is_empty() && s.users.is_empty());
    }
}
