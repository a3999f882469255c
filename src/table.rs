//! The per-core connection table: a slab of connections addressed by generation-checked keys.
//!
//! Owns the storage of one worker's connections and the mapping [`ConnKey`] → connection. It must
//! never hand out a connection for a stale key: a key names one insertion, and once that value is
//! removed the key misses for good, even after its slot is reused by a new connection (until that
//! same slot has been reused 2^32 times and its generation wraps). Timers, room memberships and
//! cross-core messages therefore hold `ConnKey`s, never references. No I/O, no clock, no locks: the
//! table belongs to one thread.
//!
//! # Geometry
//!
//! A [`slab::Slab<T>`] holds the values; a parallel `Vec<u32>` holds one generation per slab index
//! ever handed out, bumped (wrapping) when that index's value is removed. A key is
//! `(index: u32, generation: u32)`: it resolves iff the slab has a value at `index` and
//! `generations[index] == generation`. Freed indices are reused LIFO by the slab, so the table
//! stays dense (memory ≈ peak connection count). At most `u32::MAX + 1` live connections (index
//! must fit a `u32`), far above the per-process file limit.
//!
//! # Cost
//!
//! `insert`, `get`, `get_mut`, `remove`, `contains`: O(1), no allocation once the slab has reached
//! its peak size (reserve it with [`ConnTable::with_capacity`]). Iteration is O(peak size).

use std::fmt;

use slab::Slab;

/// Names one connection in one [`ConnTable`]: a slot index and that slot's generation at insert.
///
/// Shown as `index.generation` (`12.3`); packs into a `u64` as `generation << 32 | index` for
/// carrying through io_uring user data, cross-core messages or logs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnKey {
    /// Slab index of the connection.
    index: u32,
    /// Generation of the slot when the connection was inserted.
    generation: u32,
}

impl ConnKey {
    /// The slot index.
    pub const fn index(self) -> u32 {
        self.index
    }

    /// The slot's generation when this key was issued.
    pub const fn generation(self) -> u32 {
        self.generation
    }

    /// Packs the key as `generation << 32 | index`.
    pub const fn to_u64(self) -> u64 {
        ((self.generation as u64) << 32) | self.index as u64
    }

    /// Unpacks a key made by [`to_u64`](Self::to_u64). Any `u64` is a well-formed key; whether it
    /// names a live connection is for the table to say.
    pub const fn from_u64(packed: u64) -> Self {
        Self {
            index: packed as u32,
            generation: (packed >> 32) as u32,
        }
    }
}

impl From<ConnKey> for u64 {
    fn from(key: ConnKey) -> u64 {
        key.to_u64()
    }
}

impl From<u64> for ConnKey {
    fn from(packed: u64) -> Self {
        Self::from_u64(packed)
    }
}

impl fmt::Display for ConnKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.index, self.generation)
    }
}

/// One worker's connections (see the module doc for the layout).
pub struct ConnTable<T> {
    /// The values, densely packed; a freed index is reused by the next insert.
    slots: Slab<T>,
    /// Generation per slab index ever handed out. Invariant: `generations.len()` equals the
    /// number of distinct indices the slab has used, so every occupied index has a generation.
    generations: Vec<u32>,
}

impl<T> ConnTable<T> {
    /// An empty table; allocates on first insert.
    pub fn new() -> Self {
        Self::with_capacity(0)
    }

    /// An empty table with room for `capacity` connections before any reallocation.
    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            slots: Slab::with_capacity(capacity),
            generations: Vec::with_capacity(capacity),
        }
    }

    /// Number of connections the table can hold without reallocating.
    pub fn capacity(&self) -> usize {
        self.slots.capacity()
    }

    /// Number of live connections.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// True when no connection is live.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Stores `value` and returns its key. O(1).
    ///
    /// # Panics
    /// If the table would need a slot index beyond `u32::MAX`.
    pub fn insert(&mut self, value: T) -> ConnKey {
        self.insert_with(|_| value)
    }

    /// Stores the value `f` builds from its own key (a connection that knows its key). O(1). If
    /// `f` panics the table is unchanged.
    ///
    /// # Panics
    /// If the table would need a slot index beyond `u32::MAX`.
    pub fn insert_with(&mut self, f: impl FnOnce(ConnKey) -> T) -> ConnKey {
        let index = self.slots.vacant_key();
        let key = ConnKey {
            index: u32::try_from(index).expect("a connection table holds at most 2^32 slots"),
            // The slab hands out a freed index (with a generation) or the next never-used one.
            generation: self.generations.get(index).copied().unwrap_or(0),
        };
        let value = f(key);
        if index == self.generations.len() {
            self.generations.push(key.generation);
        }
        let inserted = self.slots.insert(value);
        debug_assert_eq!(inserted, index);
        key
    }

    /// The connection `key` names, or `None` if the key is stale.
    #[inline]
    pub fn get(&self, key: ConnKey) -> Option<&T> {
        if self.generation_matches(key) {
            self.slots.get(key.index as usize)
        } else {
            None
        }
    }

    /// The connection `key` names, mutably, or `None` if the key is stale.
    #[inline]
    pub fn get_mut(&mut self, key: ConnKey) -> Option<&mut T> {
        if self.generation_matches(key) {
            self.slots.get_mut(key.index as usize)
        } else {
            None
        }
    }

    /// Removes and returns the connection `key` names. A stale key returns `None` and removes
    /// nothing. Afterwards `key` (and every copy of it) is stale. O(1).
    pub fn remove(&mut self, key: ConnKey) -> Option<T> {
        let index = key.index as usize;
        if !self.generation_matches(key) || !self.slots.contains(index) {
            return None;
        }
        let generation = &mut self.generations[index];
        *generation = generation.wrapping_add(1);
        Some(self.slots.remove(index))
    }

    /// True while the connection `key` names has not been removed.
    #[inline]
    pub fn contains(&self, key: ConnKey) -> bool {
        self.generation_matches(key) && self.slots.contains(key.index as usize)
    }

    /// Every live connection with its key, in slot order.
    pub fn iter(&self) -> impl Iterator<Item = (ConnKey, &T)> + '_ {
        self.slots
            .iter()
            .map(|(index, value)| (self.key_at(index), value))
    }

    /// Every live connection with its key, mutably, in slot order.
    pub fn iter_mut(&mut self) -> impl Iterator<Item = (ConnKey, &mut T)> + '_ {
        let generations = &self.generations;
        self.slots.iter_mut().map(move |(index, value)| {
            let key = ConnKey {
                index: index as u32,
                generation: generations[index],
            };
            (key, value)
        })
    }

    /// Every live key, in slot order.
    pub fn keys(&self) -> impl Iterator<Item = ConnKey> + '_ {
        self.slots.iter().map(|(index, _)| self.key_at(index))
    }

    /// Whether `key`'s generation is its slot's current one (the slot may still be vacant).
    #[inline]
    fn generation_matches(&self, key: ConnKey) -> bool {
        self.generations.get(key.index as usize) == Some(&key.generation)
    }

    /// The key of the occupied slot `index`.
    #[inline]
    fn key_at(&self, index: usize) -> ConnKey {
        ConnKey {
            index: index as u32,
            generation: self.generations[index],
        }
    }
}

impl<T> Default for ConnTable<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: fmt::Debug> fmt::Debug for ConnTable<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashMap;

    #[test]
    fn a_key_displays_as_index_dot_generation() {
        let key = ConnKey {
            index: 12,
            generation: 3,
        };
        assert_eq!(key.to_string(), "12.3");
    }

    #[test]
    fn a_key_round_trips_through_u64_with_the_generation_on_top() {
        let key = ConnKey {
            index: 7,
            generation: u32::MAX,
        };
        let packed: u64 = key.into();
        assert_eq!(packed, (u64::from(u32::MAX) << 32) | 7);
        assert_eq!(ConnKey::from(packed), key);
        assert_eq!(ConnKey::from_u64(u64::MAX).index(), u32::MAX);
    }

    #[test]
    fn a_removed_key_misses_even_after_its_slot_is_reused() {
        let mut table = ConnTable::new();
        let old = table.insert("a");
        assert_eq!(table.remove(old), Some("a"));
        let new = table.insert("b");
        assert_eq!(new.index(), old.index(), "the slot is reused");
        assert_eq!(new.generation(), old.generation() + 1);
        assert_eq!(table.get(old), None);
        assert_eq!(table.get_mut(old), None);
        assert!(!table.contains(old));
        assert_eq!(table.remove(old), None, "a stale key removes nothing");
        assert_eq!(table.get(new), Some(&"b"));
        assert_eq!(table.len(), 1);
    }

    #[test]
    fn a_key_for_a_slot_never_used_misses() {
        let mut table = ConnTable::new();
        table.insert(1);
        assert_eq!(table.get(ConnKey::from_u64(5)), None);
        assert_eq!(table.remove(ConnKey::from_u64(5)), None);
        assert_eq!(table.len(), 1);
    }

    #[test]
    fn a_vacant_slot_with_a_matching_generation_misses() {
        let mut table = ConnTable::new();
        let key = table.insert(1);
        table.remove(key);
        let forged = ConnKey {
            index: key.index(),
            generation: key.generation() + 1,
        };
        assert_eq!(table.get(forged), None, "the slot is vacant");
        assert_eq!(table.remove(forged), None);
    }

    #[test]
    fn insert_with_hands_the_value_its_own_key() {
        let mut table = ConnTable::new();
        table.insert(ConnKey::from_u64(0));
        let removed = table.insert(ConnKey::from_u64(0));
        table.remove(removed);
        let key = table.insert_with(|key| key);
        assert_eq!(table.get(key), Some(&key));
        assert_eq!(key.generation(), 1, "it reused the removed slot");
    }

    #[test]
    fn a_panicking_builder_leaves_the_table_unchanged() {
        let mut table = ConnTable::new();
        let live = table.insert(1u8);
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            table.insert_with(|_| panic!("builder failed"))
        }));
        assert!(result.is_err());
        assert_eq!(table.len(), 1);
        assert_eq!(table.keys().collect::<Vec<_>>(), vec![live]);
        let next = table.insert(2);
        assert_eq!(next.index(), 1);
    }

    #[test]
    fn iter_and_keys_yield_every_live_connection_once() {
        let mut table = ConnTable::with_capacity(4);
        let a = table.insert('a');
        let b = table.insert('b');
        let c = table.insert('c');
        table.remove(b);
        assert_eq!(table.iter().collect::<Vec<_>>(), vec![(a, &'a'), (c, &'c')]);
        assert_eq!(table.keys().collect::<Vec<_>>(), vec![a, c]);
        for (_, v) in table.iter_mut() {
            *v = v.to_ascii_uppercase();
        }
        assert_eq!(table.get(c), Some(&'C'));
    }

    #[derive(Clone, Debug)]
    enum Op {
        Insert,
        InsertWith,
        /// Remove the n-th key ever issued (live or stale).
        Remove(usize),
        /// Overwrite through `get_mut` the n-th key ever issued.
        Update(usize, u32),
        /// Probe with an arbitrary (almost always stale or unknown) key.
        Forged(u64),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            3 => Just(Op::Insert),
            1 => Just(Op::InsertWith),
            3 => any::<usize>().prop_map(Op::Remove),
            2 => (any::<usize>(), any::<u32>()).prop_map(|(n, v)| Op::Update(n, v)),
            1 => prop_oneof![any::<u64>(), 0u64..(4 << 32)].prop_map(Op::Forged),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        /// The table against a HashMap keyed by ConnKey: same answers for live, stale and forged
        /// keys, same contents, and no key ever issued twice.
        #[test]
        fn the_table_behaves_like_a_map_with_stale_keys(ops in proptest::collection::vec(op(), 1..300)) {
            let mut table = ConnTable::new();
            let mut model: HashMap<ConnKey, u32> = HashMap::new();
            let mut issued: Vec<ConnKey> = Vec::new();
            let mut next_value = 0u32;
            for op in ops {
                match op {
                    Op::Insert | Op::InsertWith => {
                        let value = next_value;
                        next_value += 1;
                        let key = if matches!(op, Op::Insert) {
                            table.insert(value)
                        } else {
                            let mut seen = None;
                            let key = table.insert_with(|k| { seen = Some(k); value });
                            prop_assert_eq!(seen, Some(key));
                            key
                        };
                        prop_assert!(!issued.contains(&key), "key {} issued twice", key);
                        issued.push(key);
                        model.insert(key, value);
                    }
                    Op::Remove(n) if !issued.is_empty() => {
                        let key = issued[n % issued.len()];
                        prop_assert_eq!(table.remove(key), model.remove(&key));
                    }
                    Op::Update(n, v) if !issued.is_empty() => {
                        let key = issued[n % issued.len()];
                        match (table.get_mut(key), model.get_mut(&key)) {
                            (Some(t), Some(m)) => { *t = v; *m = v; }
                            (None, None) => {}
                            (t, m) => prop_assert!(false, "get_mut {:?} vs model {:?}", t, m),
                        }
                    }
                    Op::Forged(packed) => {
                        let key = ConnKey::from_u64(packed);
                        prop_assert_eq!(table.get(key), model.get(&key));
                        prop_assert_eq!(table.contains(key), model.contains_key(&key));
                    }
                    _ => {}
                }
                prop_assert_eq!(table.len(), model.len());
                let contents: HashMap<ConnKey, u32> = table.iter().map(|(k, v)| (k, *v)).collect();
                prop_assert_eq!(&contents, &model);
                prop_assert_eq!(table.keys().count(), model.len());
                for key in &issued {
                    prop_assert_eq!(table.get(*key), model.get(key));
                }
            }
        }
    }
}
