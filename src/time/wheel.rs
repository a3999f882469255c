//! A hierarchical hashed timer wheel with slab-linked entries: O(1) insert, cancel and reset.
//!
//! Owns every pending timer of one worker and decides when each one is due. It must never read a
//! clock, sleep, spawn or do I/O: time is a `u64` tick count passed to [`TimerWheel::new`] and
//! [`TimerWheel::advance`] (the driver uses 1 tick = 1 ms, so a `u64` spans far beyond any uptime).
//! It never fires a timer early and never fires one twice.
//!
//! # Geometry
//!
//! [`LEVELS`] = 11 levels of [`SLOTS`] = 64 slots. A slot at level `L` spans `64^L` ticks, so a
//! level spans `64^(L+1)` ticks: level 0 holds single ticks (64 ticks), level 1 spans 4 096 ticks
//! (≈ 4 s at 1 ms), level 2 ≈ 4.4 min, level 3 ≈ 4.7 h, … and level 10 covers bits 60–63 of the
//! deadline. 11 × 6 = 66 ≥ 64 bits, so **every** `u64` deadline has a place; there is no overflow
//! list and no maximum timeout.
//!
//! A timer's level is chosen by the highest bit in which its deadline differs from the wheel's
//! current time `elapsed` (`level_for`): a deadline in the same 64-tick block as `elapsed` goes to
//! level 0, one in the same 4 096-tick block to level 1, and so on. Its slot at that level is the
//! deadline's 6-bit digit for that level (`slot_for`). Consequences, relied on below:
//!
//! - every timer at level `L` is due before every timer at level `L + 1`, so the earliest timer is
//!   in the first occupied slot of the lowest occupied level;
//! - a level-0 slot holds timers of one exact deadline, so expiry has 1-tick resolution;
//! - a slot at level `L ≥ 1` is *cascaded* when time reaches its first tick: its timers are
//!   re-filed at lower levels (each timer is moved at most [`LEVELS`] − 1 times in its life).
//!
//! Each level keeps a 64-bit occupancy field (bit `s` set ⇔ slot `s` is non-empty), so finding the
//! next occupied slot is one rotate and one `trailing_zeros`, never a scan. Timers whose deadline is
//! already `<= elapsed` when inserted go to a separate *pending* list that the next
//! [`TimerWheel::advance`] drains first.
//!
//! # Storage
//!
//! Entries live in one [`slab::Slab`]; each slot (and the pending list) is a doubly linked list
//! threaded through the entries by slab index, so cancel unlinks in O(1) without `unsafe` (the
//! tokio-util `DelayQueue` layout). A [`TimerKey`] is a slab index plus a generation kept per slab
//! index and bumped on every removal, so a key whose timer has fired or been cancelled misses
//! instead of touching whichever timer reuses the index (until the same index has been reused
//! 2^32 times, when its generation wraps).
//!
//! # Cost
//!
//! insert, cancel, reset: O(1). advance: O(timers fired + timers cascaded + occupied slots
//! visited); no allocation except the caller's `expired` vector growing. The slab grows by
//! doubling on insert unless [`TimerWheel::with_capacity`] reserved enough. Expiry touches each
//! entry once per cascade, so with a million timers inserted in random deadline order it is
//! memory-bound (`benches/wheel.rs`: ≈ 0.7 µs per timer here, a `BTreeMap` pops in ≈ 55 ns); when
//! timers are inserted roughly in deadline order, as fixed timeouts are, it is ≈ 60 ns.

use std::fmt;

use slab::Slab;

/// Bits of a deadline consumed by one level.
const SLOT_BITS: u32 = 6;
/// Slots per level (`2^SLOT_BITS`): one bit each in a `u64` occupancy field.
pub const SLOTS: usize = 1 << SLOT_BITS;
/// Mask of one level's digit.
const SLOT_MASK: u64 = SLOTS as u64 - 1;
/// Levels: the smallest count with `LEVELS * SLOT_BITS >= 64`, so any `u64` deadline fits.
pub const LEVELS: usize = 11;
const _: () = assert!(LEVELS as u32 * SLOT_BITS >= u64::BITS);
const _: () = assert!((LEVELS as u32 - 1) * SLOT_BITS < u64::BITS);
/// Index of the pending list (already-due timers), after the `LEVELS * SLOTS` slot lists.
const PENDING: usize = LEVELS * SLOTS;
/// "No entry" in a link; also why a wheel holds at most `u32::MAX - 1` timers.
const NIL: u32 = u32::MAX;

/// Names one timer in one [`TimerWheel`]. A key goes stale when its timer fires or is cancelled;
/// a stale key then misses (returns `None` / `false`) for the rest of the wheel's life, even after
/// its slab index is reused (up to 2^32 reuses of that index).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TimerKey {
    /// Slab index of the entry.
    index: u32,
    /// `generations[index]` when the timer was inserted.
    generation: u32,
}

/// One timer: its value, its deadline, and its links in the list it sits on.
struct Entry<T> {
    value: T,
    deadline: u64,
    /// Previous entry in the same list, or `NIL` at the head.
    prev: u32,
    /// Next entry in the same list, or `NIL` at the tail.
    next: u32,
    /// Which list the entry is on: `level * SLOTS + slot`, or `PENDING`. Needed to fix the list's
    /// head/tail and occupancy bit on unlink without recomputing the level.
    list: u16,
}

/// Head and tail of one doubly linked list (tail kept so pushes are O(1) and FIFO).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct List {
    head: u32,
    tail: u32,
}

const EMPTY: List = List {
    head: NIL,
    tail: NIL,
};

/// A hierarchical timer wheel holding values of type `T` (see the module doc for the geometry).
pub struct TimerWheel<T> {
    /// The wheel's current time: the `now` of the last [`advance`](Self::advance) (or of
    /// [`new`](Self::new)). Never decreases. Every timer on a slot list has `deadline > elapsed`;
    /// every timer with `deadline <= elapsed` is on the pending list.
    elapsed: u64,
    /// All timers; slab indices are the links.
    entries: Slab<Entry<T>>,
    /// Generation per slab index, bumped when that index's timer is removed. Invariant:
    /// `generations.len()` equals the number of indices the slab has ever handed out.
    generations: Vec<u32>,
    /// `LEVELS * SLOTS` slot lists followed by the pending list.
    lists: Box<[List]>,
    /// Per level, bit `s` set ⇔ `lists[level * SLOTS + s]` is non-empty.
    occupied: [u64; LEVELS],
}

/// The level a timer due at `deadline` belongs to when the wheel's time is `elapsed`: the index of
/// the 6-bit digit holding the highest bit in which the two differ (0 when they differ only in the
/// lowest digit, or not at all).
#[inline]
pub(crate) fn level_for(elapsed: u64, deadline: u64) -> usize {
    // OR-ing the low digit in keeps `leading_zeros` ≤ 58, so `significant` is at least 5.
    let masked = (elapsed ^ deadline) | SLOT_MASK;
    let significant = u64::BITS - 1 - masked.leading_zeros();
    (significant / SLOT_BITS) as usize
}

/// The slot of `deadline` at `level`: its `level`-th 6-bit digit.
#[inline]
pub(crate) fn slot_for(deadline: u64, level: usize) -> usize {
    ((deadline >> (level as u32 * SLOT_BITS)) & SLOT_MASK) as usize
}

/// First tick of `slot` at `level`, within the level-sized block that contains `elapsed`.
#[inline]
pub(crate) fn slot_start(elapsed: u64, level: usize, slot: usize) -> u64 {
    let block_bits = (level as u32 + 1) * SLOT_BITS;
    // The top level's block is the whole u64 range, so its block start is 0.
    let block_start = if block_bits >= u64::BITS {
        0
    } else {
        elapsed & !((1u64 << block_bits) - 1)
    };
    block_start | ((slot as u64) << (level as u32 * SLOT_BITS))
}

impl<T> TimerWheel<T> {
    /// An empty wheel whose time is `now`.
    pub fn new(now: u64) -> Self {
        Self::with_capacity(now, 0)
    }

    /// An empty wheel whose time is `now`, with room for `capacity` timers before the slab grows.
    pub fn with_capacity(now: u64, capacity: usize) -> Self {
        Self {
            elapsed: now,
            entries: Slab::with_capacity(capacity),
            generations: Vec::with_capacity(capacity),
            lists: vec![EMPTY; PENDING + 1].into_boxed_slice(),
            occupied: [0; LEVELS],
        }
    }

    /// Number of timers that have neither fired nor been cancelled.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when no timer is pending.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The wheel's time: the largest `now` it has been given.
    pub fn now(&self) -> u64 {
        self.elapsed
    }

    /// Schedules `value` to fire at the first [`advance`](Self::advance) whose `now >= deadline`.
    /// A `deadline <= self.now()` fires at the next `advance`, whatever its `now`. O(1).
    ///
    /// # Panics
    /// If the wheel already holds `u32::MAX - 1` timers.
    pub fn insert(&mut self, deadline: u64, value: T) -> TimerKey {
        let index = self.entries.vacant_key();
        let index32 = u32::try_from(index)
            .ok()
            .filter(|&i| i != NIL)
            .expect("a timer wheel holds at most u32::MAX - 1 timers");
        // The slab hands out either a freed index or the next never-used one.
        debug_assert!(index <= self.generations.len());
        if index == self.generations.len() {
            self.generations.push(0);
        }
        let inserted = self.entries.insert(Entry {
            value,
            deadline,
            prev: NIL,
            next: NIL,
            list: 0,
        });
        debug_assert_eq!(inserted, index);
        self.link(index32, deadline);
        TimerKey {
            index: index32,
            generation: self.generations[index],
        }
    }

    /// Removes the timer and returns its value, or `None` if `key` is stale (fired, cancelled, or
    /// from another wheel's index space). A stale key never removes another timer. O(1).
    pub fn cancel(&mut self, key: TimerKey) -> Option<T> {
        let index = self.resolve(key)?;
        self.unlink(index);
        Some(self.release(index))
    }

    /// Moves a live timer to `deadline`, keeping its key (the idle timeout pushed back on every
    /// frame). Returns `false`, changing nothing, for a stale key. O(1).
    pub fn reset(&mut self, key: TimerKey, deadline: u64) -> bool {
        let Some(index) = self.resolve(key) else {
            return false;
        };
        self.unlink(index);
        self.entries[index as usize].deadline = deadline;
        self.link(index, deadline);
        true
    }

    /// True while the timer named by `key` has neither fired nor been cancelled.
    pub fn contains(&self, key: TimerKey) -> bool {
        self.resolve(key).is_some()
    }

    /// The deadline of a live timer.
    pub fn deadline(&self, key: TimerKey) -> Option<u64> {
        let index = self.resolve(key)?;
        Some(self.entries[index as usize].deadline)
    }

    /// The value of a live timer.
    pub fn get(&self, key: TimerKey) -> Option<&T> {
        let index = self.resolve(key)?;
        Some(&self.entries[index as usize].value)
    }

    /// The value of a live timer, mutably.
    pub fn get_mut(&mut self, key: TimerKey) -> Option<&mut T> {
        let index = self.resolve(key)?;
        Some(&mut self.entries[index as usize].value)
    }

    /// Moves the wheel's time to `now` and appends to `expired` the value of every timer with
    /// `deadline <= now`, each exactly once, and nothing else (plus, first, timers inserted with a
    /// deadline already `<= self.now()`). A `now` below [`now()`](Self::now) is taken as `now()`:
    /// time never runs backwards.
    ///
    /// Order guarantee (exact, the resolution is 1 tick): values come out sorted by *effective
    /// deadline* — `max(deadline, self.now() at the insert or reset)` — and timers with equal
    /// effective deadlines come out in the order they were inserted or last reset (FIFO).
    ///
    /// Cost: O(fired + cascaded + occupied slots visited). Appending may grow `expired`; reuse one
    /// vector across calls to keep this allocation-free.
    pub fn advance(&mut self, now: u64, expired: &mut Vec<T>) {
        let now = now.max(self.elapsed);
        // Pending timers are due at `elapsed`, before anything on a slot list (all `> elapsed`).
        self.drain_pending(expired);
        while let Some((level, slot, start)) = self.next_expiration() {
            if start > now {
                break;
            }
            // Time reaches this slot's first tick; every earlier slot is empty (lower levels first,
            // within a level the slot nearest `elapsed` first), so no timer is skipped.
            self.elapsed = start;
            let list = level * SLOTS + slot;
            let mut index = self.lists[list].head;
            self.lists[list] = EMPTY;
            self.occupied[level] &= !(1u64 << slot);
            while index != NIL {
                let entry = &self.entries[index as usize];
                let (next, deadline) = (entry.next, entry.deadline);
                // Every timer in a slot is due at or after the slot's first tick.
                debug_assert!(deadline >= start);
                if deadline == start {
                    // Walking the list head to tail keeps FIFO among equal deadlines.
                    expired.push(self.release(index));
                } else {
                    // Cascade: `deadline` is within this slot's span, so it lands at a lower level.
                    debug_assert!(level_for(start, deadline) < level);
                    self.link(index, deadline);
                }
                index = next;
            }
        }
        self.elapsed = now;
    }

    /// When the next timer may fire, for the driver to sleep until then: `None` when the wheel is
    /// empty; `Some(self.now())` when a timer is already due. Otherwise a lower bound on the
    /// earliest deadline that is exact when that deadline is in the same 64-tick block as
    /// `now()` (level 0), and otherwise the first tick of the earliest occupied slot: advancing to
    /// it may fire nothing (it only cascades), after which `next_deadline` is sharper. Nothing
    /// fires at any `now` below the value returned. O(LEVELS).
    pub fn next_deadline(&self) -> Option<u64> {
        if self.lists[PENDING].head != NIL {
            return Some(self.elapsed);
        }
        self.next_expiration().map(|(_, _, start)| start)
    }

    /// The first occupied slot of the lowest occupied level, with the tick it starts at.
    fn next_expiration(&self) -> Option<(usize, usize, u64)> {
        (0..LEVELS).find_map(|level| {
            let occupied = self.occupied[level];
            if occupied == 0 {
                return None;
            }
            // Rotate so the slot `elapsed` is in becomes bit 0; the first set bit after it is the
            // next occupied slot. Timers at a level sit at or after `elapsed`'s slot within the
            // current block (their higher digits equal `elapsed`'s), so this never wraps.
            let current = slot_for(self.elapsed, level) as u32;
            let slot =
                ((occupied.rotate_right(current).trailing_zeros() + current) as usize) % SLOTS;
            debug_assert!(slot as u32 >= current);
            Some((level, slot, slot_start(self.elapsed, level, slot)))
        })
    }

    /// Index of the live entry `key` names, if it is not stale.
    #[inline]
    fn resolve(&self, key: TimerKey) -> Option<u32> {
        let index = key.index as usize;
        // `contains` implies `index < generations.len()`.
        (self.entries.contains(index) && self.generations[index] == key.generation)
            .then_some(key.index)
    }

    /// Removes an already unlinked entry from the slab and makes its key stale.
    #[inline]
    fn release(&mut self, index: u32) -> T {
        let entry = self.entries.remove(index as usize);
        let generation = &mut self.generations[index as usize];
        *generation = generation.wrapping_add(1);
        entry.value
    }

    /// Files an unlinked entry under `deadline`: on the pending list if already due, else at the
    /// tail of its slot.
    #[inline]
    fn link(&mut self, index: u32, deadline: u64) {
        let list = if deadline <= self.elapsed {
            PENDING
        } else {
            let level = level_for(self.elapsed, deadline);
            level * SLOTS + slot_for(deadline, level)
        };
        let tail = self.lists[list].tail;
        let entry = &mut self.entries[index as usize];
        entry.prev = tail;
        entry.next = NIL;
        entry.list = list as u16;
        if tail == NIL {
            self.lists[list].head = index;
            if list != PENDING {
                self.occupied[list / SLOTS] |= 1u64 << (list % SLOTS);
            }
        } else {
            self.entries[tail as usize].next = index;
        }
        self.lists[list].tail = index;
    }

    /// Takes a live entry off its list, clearing the slot's occupancy bit if it empties.
    #[inline]
    fn unlink(&mut self, index: u32) {
        let entry = &self.entries[index as usize];
        let (prev, next, list) = (entry.prev, entry.next, entry.list as usize);
        if prev == NIL {
            self.lists[list].head = next;
        } else {
            self.entries[prev as usize].next = next;
        }
        if next == NIL {
            self.lists[list].tail = prev;
        } else {
            self.entries[next as usize].prev = prev;
        }
        if self.lists[list].head == NIL && list != PENDING {
            self.occupied[list / SLOTS] &= !(1u64 << (list % SLOTS));
        }
    }

    /// Fires every pending timer, in the order they were filed.
    fn drain_pending(&mut self, expired: &mut Vec<T>) {
        let mut index = self.lists[PENDING].head;
        self.lists[PENDING] = EMPTY;
        while index != NIL {
            let next = self.entries[index as usize].next;
            expired.push(self.release(index));
            index = next;
        }
    }
}

impl<T> fmt::Debug for TimerWheel<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TimerWheel")
            .field("now", &self.elapsed)
            .field("len", &self.entries.len())
            .field("next_deadline", &self.next_deadline())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    fn fire(wheel: &mut TimerWheel<u32>, now: u64) -> Vec<u32> {
        let mut out = Vec::new();
        wheel.advance(now, &mut out);
        out
    }

    // ---- geometry ----

    #[test]
    fn level_is_the_digit_of_the_highest_differing_bit() {
        assert_eq!(level_for(0, 0), 0);
        assert_eq!(level_for(0, 1), 0);
        assert_eq!(level_for(0, 63), 0);
        assert_eq!(level_for(0, 64), 1);
        assert_eq!(
            level_for(63, 64),
            1,
            "adjacent ticks across a 64-block boundary"
        );
        assert_eq!(level_for(64, 127), 0);
        assert_eq!(level_for(0, 4095), 1);
        assert_eq!(level_for(0, 4096), 2);
        assert_eq!(level_for(0, 1 << 59), 9);
        assert_eq!(level_for(0, 1 << 60), 10);
        assert_eq!(level_for(0, u64::MAX), 10);
        assert_eq!(level_for(u64::MAX - 1, u64::MAX), 0);
    }

    #[test]
    fn every_u64_deadline_maps_to_an_existing_level_and_slot() {
        for bit in 0..64 {
            for deadline in [1u64 << bit, (1u64 << bit) - 1, u64::MAX >> bit] {
                let level = level_for(0, deadline);
                assert!(level < LEVELS, "deadline {deadline:#x}");
                assert!(slot_for(deadline, level) < SLOTS);
            }
        }
        // The top level uses only the 4 remaining bits.
        assert_eq!(slot_for(u64::MAX, LEVELS - 1), 15);
    }

    #[test]
    fn slot_is_the_deadlines_digit_at_that_level() {
        let deadline = (5u64 << 12) | (7 << 6) | 9;
        assert_eq!(slot_for(deadline, 0), 9);
        assert_eq!(slot_for(deadline, 1), 7);
        assert_eq!(slot_for(deadline, 2), 5);
        assert_eq!(slot_for(deadline, 3), 0);
    }

    #[test]
    fn slot_start_is_the_first_tick_of_the_slot_in_the_current_block() {
        assert_eq!(slot_start(70, 0, 5), 69);
        assert_eq!(slot_start(70, 1, 3), 192);
        assert_eq!(slot_start(5000, 1, 10), 4096 + 640);
        assert_eq!(slot_start(5000, 2, 2), 8192);
        assert_eq!(slot_start(u64::MAX, LEVELS - 1, 15), 15 << 60);
        // A timer's slot always starts at or before its deadline, within one slot span.
        for (elapsed, deadline) in [(0u64, 100u64), (70, 75_000), (1 << 40, (1 << 40) + 10_000)] {
            let level = level_for(elapsed, deadline);
            let start = slot_start(elapsed, level, slot_for(deadline, level));
            assert!(start <= deadline && deadline - start < 1u64 << (6 * level as u32));
        }
    }

    // ---- behaviour ----

    #[test]
    fn a_timer_never_fires_early_and_fires_at_its_deadline() {
        let mut wheel = TimerWheel::new(0);
        wheel.insert(75_000, 1);
        assert!(fire(&mut wheel, 74_999).is_empty());
        assert_eq!(wheel.len(), 1);
        assert_eq!(fire(&mut wheel, 75_000), vec![1]);
        assert!(wheel.is_empty());
    }

    #[test]
    fn a_timer_fires_at_the_first_advance_past_its_deadline_however_big_the_jump() {
        let mut wheel = TimerWheel::new(1_000);
        wheel.insert(1_010, 1);
        wheel.insert(11_000, 2);
        wheel.insert(300_000, 3);
        assert_eq!(fire(&mut wheel, 10_000_000), vec![1, 2, 3]);
        assert_eq!(wheel.now(), 10_000_000);
    }

    #[test]
    fn a_deadline_already_passed_fires_at_the_next_advance() {
        let mut wheel = TimerWheel::new(500);
        wheel.insert(10, 1);
        wheel.insert(500, 2);
        assert_eq!(wheel.next_deadline(), Some(500));
        assert_eq!(fire(&mut wheel, 500), vec![1, 2]);
    }

    #[test]
    fn timers_fire_in_deadline_order_and_fifo_within_a_tick() {
        let mut wheel = TimerWheel::new(0);
        wheel.insert(10_000, 1);
        wheel.insert(5, 2);
        wheel.insert(10_000, 3);
        wheel.insert(70, 4);
        wheel.insert(5, 5);
        assert_eq!(fire(&mut wheel, 20_000), vec![2, 5, 4, 1, 3]);
    }

    #[test]
    fn fifo_within_a_tick_survives_cascading() {
        let mut wheel = TimerWheel::new(0);
        wheel.insert(5_000, 1);
        assert!(fire(&mut wheel, 4_100).is_empty()); // 1 has cascaded to level 0 by now
        wheel.insert(5_000, 2);
        assert_eq!(fire(&mut wheel, 5_000), vec![1, 2]);
    }

    #[test]
    fn far_deadlines_cascade_down_and_fire_on_time() {
        let far = [1u64 << 36, (1 << 48) + 3, 1 << 60, u64::MAX - 1, u64::MAX];
        let mut wheel = TimerWheel::new(0);
        for (i, &deadline) in far.iter().enumerate() {
            wheel.insert(deadline, i as u32);
        }
        for (i, &deadline) in far.iter().enumerate() {
            assert!(
                fire(&mut wheel, deadline - 1).is_empty(),
                "early at {deadline:#x}"
            );
            assert_eq!(fire(&mut wheel, deadline), vec![i as u32]);
        }
        assert!(wheel.is_empty());
    }

    #[test]
    fn cancel_returns_the_value_once_and_the_timer_never_fires() {
        let mut wheel = TimerWheel::new(0);
        let key = wheel.insert(100, 7);
        assert_eq!(wheel.cancel(key), Some(7));
        assert_eq!(wheel.cancel(key), None);
        assert!(fire(&mut wheel, 1_000).is_empty());
    }

    #[test]
    fn a_stale_key_misses_after_its_index_is_reused() {
        let mut wheel = TimerWheel::new(0);
        let old = wheel.insert(100, 1);
        wheel.cancel(old);
        let new = wheel.insert(200, 2);
        assert_eq!(new.index, old.index, "the slab reuses the freed index");
        assert_ne!(new, old);
        assert_eq!(wheel.cancel(old), None);
        assert!(!wheel.reset(old, 1));
        assert_eq!(wheel.get(old), None);
        assert_eq!(wheel.get(new), Some(&2));
        assert_eq!(fire(&mut wheel, 200), vec![2]);
    }

    #[test]
    fn the_key_of_a_fired_timer_is_stale() {
        let mut wheel = TimerWheel::new(0);
        let key = wheel.insert(3, 1);
        assert_eq!(fire(&mut wheel, 3), vec![1]);
        assert!(!wheel.contains(key));
        assert_eq!(wheel.cancel(key), None);
    }

    #[test]
    fn reset_moves_a_timer_later_and_earlier_keeping_its_key() {
        let mut wheel = TimerWheel::new(0);
        let key = wheel.insert(75_000, 1);
        assert!(wheel.reset(key, 150_000));
        assert!(fire(&mut wheel, 149_999).is_empty());
        assert!(wheel.reset(key, 149_000), "a deadline now in the past");
        assert_eq!(wheel.deadline(key), Some(149_000));
        assert_eq!(fire(&mut wheel, 149_999), vec![1]);
    }

    #[test]
    fn time_never_runs_backwards() {
        let mut wheel = TimerWheel::new(1_000);
        wheel.insert(1_500, 1);
        assert!(fire(&mut wheel, 10).is_empty());
        assert_eq!(wheel.now(), 1_000);
        assert_eq!(fire(&mut wheel, 1_500), vec![1]);
    }

    #[test]
    fn next_deadline_is_none_when_empty_exact_within_64_ticks_and_a_bound_beyond() {
        let mut wheel = TimerWheel::new(0);
        assert_eq!(wheel.next_deadline(), None);
        let near = wheel.insert(40, 1);
        assert_eq!(wheel.next_deadline(), Some(40));
        wheel.cancel(near);
        wheel.insert(5_000, 2);
        // From 0, 5000 sits at level 2, slot 1, which starts at 4096.
        assert_eq!(wheel.next_deadline(), Some(4_096));
        assert!(fire(&mut wheel, 4_096).is_empty());
        // Cascaded to level 1, slot 14: 4096 + 14 * 64.
        assert_eq!(wheel.next_deadline(), Some(4_992));
        assert!(fire(&mut wheel, 4_992).is_empty());
        assert_eq!(wheel.next_deadline(), Some(5_000));
    }

    #[test]
    fn a_driver_sleeping_until_next_deadline_fires_every_timer_on_time() {
        let deadlines = [10u64, 10_000, 75_000, 75_001, 300_000, 1 << 33];
        let mut wheel = TimerWheel::new(0);
        for &d in &deadlines {
            wheel.insert(d, d);
        }
        let mut fired = Vec::new();
        while let Some(next) = wheel.next_deadline() {
            let mut out = Vec::new();
            wheel.advance(next, &mut out);
            fired.extend(out.into_iter().map(|d| (d, next)));
        }
        let expected: Vec<_> = deadlines.iter().map(|&d| (d, d)).collect();
        assert_eq!(fired, expected, "each value fired exactly at its deadline");
    }

    // ---- model ----

    #[derive(Clone, Debug)]
    enum Op {
        /// Insert at `now + delta` (saturating), `delta` possibly negative.
        Insert(i64),
        /// Insert at an absolute deadline (far ones, `u64::MAX`).
        InsertAt(u64),
        /// Cancel the n-th key ever issued (often stale).
        Cancel(usize),
        /// Reset the n-th key ever issued to `now + delta`.
        Reset(usize, i64),
        /// Advance by `delta` ticks (negative: try to run time backwards).
        Advance(i64),
    }

    fn delta() -> impl Strategy<Value = i64> {
        prop_oneof![
            -100i64..100,
            -5_000i64..100_000,
            0i64..(1 << 40),
            Just(0i64),
            Just(63),
            Just(64),
            Just(4_096),
        ]
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => delta().prop_map(Op::Insert),
            1 => prop_oneof![any::<u64>(), Just(u64::MAX), (u64::MAX - 200)..=u64::MAX].prop_map(Op::InsertAt),
            2 => any::<usize>().prop_map(Op::Cancel),
            2 => (any::<usize>(), delta()).prop_map(|(k, d)| Op::Reset(k, d)),
            3 => delta().prop_map(Op::Advance),
        ]
    }

    fn offset(now: u64, delta: i64) -> u64 {
        now.saturating_add_signed(delta)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        /// The wheel against a BTreeMap keyed by (effective deadline, filing order): same values
        /// fired, in the same order, at the same advances; stale keys miss; `next_deadline` never
        /// overshoots the earliest timer.
        #[test]
        fn the_wheel_behaves_like_an_ordered_map(ops in proptest::collection::vec(op(), 1..200)) {
            let mut wheel = TimerWheel::new(1_000);
            let mut model: BTreeMap<(u64, u64), u32> = BTreeMap::new();
            // Per issued key: its model slot while live.
            let mut keys: Vec<(TimerKey, Option<(u64, u64)>)> = Vec::new();
            let mut now = 1_000u64;
            let mut seq = 0u64;
            let mut out = Vec::new();
            for op in ops {
                match op {
                    Op::Insert(_) | Op::InsertAt(_) => {
                        let deadline = match op {
                            Op::Insert(d) => offset(now, d),
                            Op::InsertAt(at) => at,
                            _ => unreachable!(),
                        };
                        let value = keys.len() as u32;
                        let key = wheel.insert(deadline, value);
                        let slot = (deadline.max(now), seq);
                        seq += 1;
                        model.insert(slot, value);
                        keys.push((key, Some(slot)));
                    }
                    Op::Cancel(n) if !keys.is_empty() => {
                        let n = n % keys.len();
                        let (key, slot) = keys[n];
                        let expected = slot.and_then(|s| model.remove(&s));
                        prop_assert_eq!(wheel.cancel(key), expected);
                        keys[n].1 = None;
                    }
                    Op::Reset(n, d) if !keys.is_empty() => {
                        let n = n % keys.len();
                        let (key, slot) = keys[n];
                        let deadline = offset(now, d);
                        let live = slot.is_some();
                        prop_assert_eq!(wheel.reset(key, deadline), live);
                        if let Some(old) = slot {
                            let value = model.remove(&old).expect("model tracks live keys");
                            let new = (deadline.max(now), seq);
                            seq += 1;
                            model.insert(new, value);
                            keys[n].1 = Some(new);
                            prop_assert_eq!(wheel.deadline(key), Some(deadline));
                        }
                    }
                    Op::Advance(d) => {
                        now = offset(now, d).max(now);
                        out.clear();
                        wheel.advance(now, &mut out);
                        let mut expected = Vec::new();
                        while let Some(entry) = model.first_entry() {
                            if entry.key().0 > now {
                                break;
                            }
                            expected.push(entry.remove());
                        }
                        prop_assert_eq!(&out, &expected);
                        for &v in &expected {
                            keys[v as usize].1 = None;
                        }
                        prop_assert_eq!(wheel.now(), now);
                    }
                    _ => {}
                }
                prop_assert_eq!(wheel.len(), model.len());
                for (key, slot) in &keys {
                    prop_assert_eq!(wheel.contains(*key), slot.is_some());
                }
                let earliest = model.keys().next().map(|&(d, _)| d);
                let next = wheel.next_deadline();
                prop_assert_eq!(next.is_some(), earliest.is_some());
                if let (Some(next), Some(earliest)) = (next, earliest) {
                    prop_assert!(next <= earliest, "next_deadline {} past earliest {}", next, earliest);
                    prop_assert!(next >= now);
                    if earliest / 64 == now / 64 {
                        prop_assert_eq!(next, earliest, "exact within the current 64-tick block");
                    }
                }
            }
        }
    }
}
