//! Idempotent publish: the `msg_id`s a room's owner has accepted recently, and what it answered.
//!
//! Owns one table per owner worker, keyed by (room, sender, `msg_id`), where the sender is the
//! authenticated user or, for an anonymous publisher, its connection. A publish whose key is in
//! the table is a retry: the owner answers it with the remembered outcome (the original offset)
//! and delivers nothing. An entry lives `window` ms after the publish it remembers; the table
//! holds at most `capacity` entries, and past that the oldest is forgotten early and counted
//! ([`Dedup::evicted`]): a retry of a forgotten `msg_id` would be delivered again.
//!
//! It must never read a clock (`now` is passed in) and never grow past `capacity`. Memory per
//! entry: about 150 B plus the room name and the `msg_id` (one shared key allocation referenced
//! from the map and the expiry queue).

use std::collections::{HashMap, VecDeque};
use std::rc::Rc;
use std::sync::Arc;

use super::stream::{Millis, Position};
use crate::envelope::ConnId;

/// Who published, for deduplication.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Sender {
    /// An authenticated user (every connection of the user shares its `msg_id`s).
    User(Arc<str>),
    /// An anonymous connection.
    Conn(ConnId),
}

/// One remembered publish.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct DedupKey {
    room: Box<str>,
    sender: Sender,
    msg_id: Box<str>,
}

impl DedupKey {
    /// The key of a publish to `room` by `sender` with `msg_id`.
    pub fn new(room: &str, sender: Sender, msg_id: &str) -> Rc<DedupKey> {
        Rc::new(DedupKey {
            room: room.into(),
            sender,
            msg_id: msg_id.into(),
        })
    }
}

/// What a publish was answered with: the position its message got, or `None` when it went to a
/// room without members or history (delivered to nobody, no offset).
pub type Outcome = Option<Position>;

#[derive(Debug)]
struct Seen {
    outcome: Outcome,
    /// When the entry stops deduplicating.
    until: Millis,
}

/// The `msg_id` table of one owner worker.
#[derive(Debug)]
pub struct Dedup {
    window: Millis,
    capacity: usize,
    seen: HashMap<Rc<DedupKey>, Seen>,
    /// Keys in the order they were remembered, with their expiry (the window is fixed, so this is
    /// also expiry order). May hold keys already replaced or removed: those are skipped.
    order: VecDeque<(Millis, Rc<DedupKey>)>,
    evicted: u64,
}

impl Dedup {
    /// An empty table remembering each publish for `window` ms, at most `capacity` at once.
    pub fn new(window: Millis, capacity: usize) -> Self {
        Dedup {
            window,
            capacity: capacity.max(1),
            seen: HashMap::new(),
            order: VecDeque::new(),
            evicted: 0,
        }
    }

    /// The remembered outcome of `key`, if it is a retry within the window.
    pub fn seen(&self, key: &DedupKey, now: Millis) -> Option<Outcome> {
        self.seen
            .get(key)
            .filter(|s| now < s.until)
            .map(|s| s.outcome)
    }

    /// Remembers that `key` was answered with `outcome` at `now`.
    pub fn remember(&mut self, key: Rc<DedupKey>, outcome: Outcome, now: Millis) {
        self.seen.remove(&*key);
        while self.seen.len() >= self.capacity {
            let Some((_, old)) = self.order.pop_front() else {
                break;
            };
            if self.forget(&old) {
                self.evicted += 1;
            }
        }
        let until = now.saturating_add(self.window);
        self.order.push_back((until, key.clone()));
        self.seen.insert(key, Seen { outcome, until });
    }

    /// Removes `key` if the map still holds this very allocation (not a later re-insert).
    fn forget(&mut self, key: &Rc<DedupKey>) -> bool {
        let current = self
            .seen
            .get_key_value(&**key)
            .is_some_and(|(k, _)| Rc::ptr_eq(k, key));
        if current {
            self.seen.remove(&**key);
        }
        current
    }

    /// Forgets every entry whose window has passed at `now`. O(expired).
    pub fn expire(&mut self, now: Millis) {
        while let Some((until, _)) = self.order.front() {
            if *until > now {
                break;
            }
            let (_, key) = self.order.pop_front().expect("front exists");
            self.forget(&key);
        }
    }

    /// Entries held.
    pub fn len(&self) -> usize {
        self.seen.len()
    }

    /// Whether no entry is held.
    pub fn is_empty(&self) -> bool {
        self.seen.is_empty()
    }

    /// Entries forgotten before their window ended, for lack of room.
    pub fn evicted(&self) -> u64 {
        self.evicted
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::room::stream::EpochSource;
    use crate::table::ConnKey;

    fn anon(i: u64) -> Sender {
        Sender::Conn(ConnId {
            worker: 0,
            key: ConnKey::from_u64(i),
        })
    }

    fn at(offset: u64) -> Outcome {
        Some(Position {
            offset,
            epoch: EpochSource::new(1).next_epoch(),
        })
    }

    #[test]
    fn a_retry_within_the_window_gets_the_original_outcome() {
        let mut d = Dedup::new(1000, 10);
        let key = DedupKey::new("r", anon(1), "m1");
        assert_eq!(d.seen(&key, 0), None, "first time");
        d.remember(key.clone(), at(41), 0);
        assert_eq!(
            d.seen(&DedupKey::new("r", anon(1), "m1"), 999),
            Some(at(41))
        );
        assert_eq!(d.seen(&key, 1000), None, "the window has passed");
    }

    #[test]
    fn the_key_is_room_sender_and_msg_id() {
        let mut d = Dedup::new(1000, 10);
        d.remember(DedupKey::new("r", anon(1), "m"), at(1), 0);
        assert_eq!(d.seen(&DedupKey::new("s", anon(1), "m"), 0), None);
        assert_eq!(d.seen(&DedupKey::new("r", anon(2), "m"), 0), None);
        assert_eq!(d.seen(&DedupKey::new("r", anon(1), "n"), 0), None);
        let ann = || Sender::User("ann".into());
        d.remember(DedupKey::new("r", ann(), "m"), None, 0);
        assert_eq!(d.seen(&DedupKey::new("r", ann(), "m"), 0), Some(None));
    }

    #[test]
    fn expiry_forgets_in_order_and_a_reinsert_survives_its_old_entry() {
        let mut d = Dedup::new(100, 10);
        d.remember(DedupKey::new("r", anon(1), "a"), at(1), 0);
        d.remember(DedupKey::new("r", anon(1), "b"), at(2), 50);
        // "a" expires at 100 but is not swept; it is remembered again at 120.
        d.remember(DedupKey::new("r", anon(1), "a"), at(3), 120);
        d.expire(150);
        assert_eq!(d.seen(&DedupKey::new("r", anon(1), "b"), 150), None);
        assert_eq!(d.seen(&DedupKey::new("r", anon(1), "a"), 150), Some(at(3)));
        assert_eq!(d.len(), 1);
        d.expire(220);
        assert!(d.is_empty());
    }

    #[test]
    fn the_table_never_holds_more_than_its_capacity_and_counts_what_it_forgot() {
        let mut d = Dedup::new(1_000_000, 100);
        for i in 0..1000u64 {
            d.remember(DedupKey::new("r", anon(1), &i.to_string()), at(i), i);
            assert!(d.len() <= 100);
        }
        assert_eq!(d.evicted(), 900);
        assert_eq!(
            d.seen(&DedupKey::new("r", anon(1), "999"), 1000),
            Some(at(999))
        );
        assert_eq!(d.seen(&DedupKey::new("r", anon(1), "0"), 1000), None);
    }
}
