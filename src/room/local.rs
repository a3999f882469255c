//! One worker's view of its rooms: room → local members (and watchers), connection → rooms.
//!
//! Owns the membership of this worker's connections and the fan-out loop over them. It must never
//! copy a frame: [`LocalRooms::fan_out`] hands every recipient a clone of the same `Bytes`.
//!
//! # Geometry
//!
//! `rooms` maps a room name to two [`Slab`]s of member keys: every accepted member (a room of one
//! keeps its member inline, in slot 0, until a second one joins), and the subset that watches
//! membership (joined with presence on; allocated on the first watcher). `conns` maps a
//! connection to its memberships (the first inline, more in a vector), each remembering its
//! slots in the room's slabs. Join, confirm
//! and leave are O(rooms of the connection) plus O(1) in the room; a disconnect is O(rooms of the
//! connection); fan-out is O(slab capacity of the audience): a message walks the members, a
//! `joined`/`left` event only the watchers. An emptied room is removed.
//!
//! A membership is *pending* from the join request until the owner worker accepts it: it counts
//! towards the per-connection limit and blocks a second join, but receives nothing yet.

use std::collections::HashMap;
use std::num::NonZeroU32;

use slab::Slab;

use super::{Audience, RoomError, RoomLimits};
use crate::table::ConnKey;

/// A slot in one of a room's slabs, stored as index + 1 so `Option<Slot>` is four bytes.
/// Slab indexes fit in `u32`: a room's local slab never holds more entries than the worker has
/// connections, and the connection table is indexed by `u32` ([`ConnKey`]).
#[derive(Clone, Copy, Debug)]
struct Slot(NonZeroU32);

impl Slot {
    fn new(index: usize) -> Slot {
        let one_based = u32::try_from(index + 1).expect("slab index beyond the connection table");
        Slot(NonZeroU32::new(one_based).expect("index + 1 > 0"))
    }

    fn index(self) -> usize {
        self.0.get() as usize - 1
    }
}

/// One membership of one connection: 24 bytes.
#[derive(Debug)]
struct Membership {
    room: Box<str>,
    /// The member's slot once the owner accepted it; `None` while pending.
    member: Option<Slot>,
    /// Its slot among the watchers; `Some` only for an accepted watcher.
    watcher: Option<Slot>,
}

/// The memberships of one connection: most connections are in one room, which is kept inline
/// (24 bytes, no allocation); a second one moves them into a vector. Never empty: a connection
/// without memberships has no entry.
// The vector is boxed so the enum stays 24 bytes (the size of the inline membership), not 32: the
// common connection, in one room, pays for no vector header it does not use.
#[allow(clippy::box_collection)]
#[derive(Debug)]
enum Memberships {
    One(Membership),
    /// Invariant: `len() >= 2`.
    Many(Box<Vec<Membership>>),
}

impl Memberships {
    fn as_slice(&self) -> &[Membership] {
        match self {
            Memberships::One(m) => std::slice::from_ref(m),
            Memberships::Many(v) => v,
        }
    }

    fn as_mut_slice(&mut self) -> &mut [Membership] {
        match self {
            Memberships::One(m) => std::slice::from_mut(m),
            Memberships::Many(v) => v,
        }
    }

    fn push(&mut self, m: Membership) {
        if let Memberships::Many(v) = self {
            v.push(m);
            return;
        }
        let Memberships::One(first) =
            std::mem::replace(self, Memberships::Many(Box::new(Vec::with_capacity(2))))
        else {
            unreachable!("not Many")
        };
        if let Memberships::Many(v) = self {
            v.extend([first, m]);
        }
    }

    /// Removes the membership at `i` of a list of two or more (a list of one is dropped whole
    /// by its owner, see [`Memberships::into_vec`]).
    fn swap_remove(&mut self, i: usize) -> Membership {
        let Memberships::Many(v) = self else {
            panic!("removing from a list of one")
        };
        let gone = v.swap_remove(i);
        if v.len() == 1 {
            *self = Memberships::One(v.pop().expect("one left"));
        }
        gone
    }

    fn into_vec(self) -> Vec<Membership> {
        match self {
            Memberships::One(m) => vec![m],
            Memberships::Many(v) => *v,
        }
    }
}

/// The accepted local members of one room.
#[derive(Debug)]
enum Members {
    /// One member, in slot 0 (no slab until a second one joins).
    One(ConnKey),
    /// Invariant: not empty.
    Many(Box<Slab<ConnKey>>),
}

impl Members {
    /// Adds `conn`; returns its slot.
    fn insert(&mut self, conn: ConnKey) -> Slot {
        match self {
            Members::One(first) => {
                let mut slab = Slab::with_capacity(2);
                // A fresh slab hands out 0 first: the one member keeps its slot.
                let zero = slab.insert(*first);
                debug_assert_eq!(zero, 0);
                let at = slab.insert(conn);
                *self = Members::Many(Box::new(slab));
                Slot::new(at)
            }
            Members::Many(slab) => Slot::new(slab.insert(conn)),
        }
    }

    /// Removes the member in `slot`; returns whether the room is now empty.
    fn remove(&mut self, slot: Slot) -> bool {
        match self {
            Members::One(_) => true,
            Members::Many(slab) => {
                slab.remove(slot.index());
                slab.is_empty()
            }
        }
    }
}

/// The accepted local members of one room: 24 bytes plus, past one member, a slab.
#[derive(Debug)]
struct Local {
    members: Members,
    /// Invariant: a subset of `members` (the same keys, in slots of their own). Boxed, and
    /// created on the first watcher: most rooms by count (one-member rooms, broadcast rooms joined
    /// with presence on) have none, and pay one pointer instead of a slab.
    watchers: Option<Box<Slab<ConnKey>>>,
}

/// Room ↔ member maps of one worker.
///
/// Memory: per room a map entry (name pointer and [`Local`], 40 bytes, plus hash-table slack)
/// and its name; per connection in rooms a map entry (key and [`Memberships`], 32 bytes) and per
/// membership the room's name again (plus 24 bytes in a vector past the first).
#[derive(Debug, Default)]
pub struct LocalRooms {
    /// Room → accepted local members. Invariant: a room is present iff it has an accepted member.
    rooms: HashMap<Box<str>, Local>,
    /// Connection → its memberships (pending and accepted). Invariant: every accepted membership
    /// `(room, Some(member))` has `rooms[room]`'s member in slot `member` equal to `conn` (and
    /// likewise among its watchers for `watcher`), and no connection is listed twice in one
    /// room. A connection with no membership has no entry.
    conns: HashMap<ConnKey, Memberships>,
}

impl LocalRooms {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records a join request of `conn` for `room` as pending.
    pub fn begin_join(
        &mut self,
        conn: ConnKey,
        room: &str,
        limits: &RoomLimits,
    ) -> Result<(), RoomError> {
        let pending = Membership {
            room: room.into(),
            member: None,
            watcher: None,
        };
        let Some(list) = self.conns.get_mut(&conn) else {
            if limits.max_rooms_per_connection == 0 {
                return Err(RoomError::TooManyRooms { limit: 0 });
            }
            self.conns.insert(conn, Memberships::One(pending));
            return Ok(());
        };
        if list.as_slice().iter().any(|m| &*m.room == room) {
            return Err(RoomError::AlreadyJoined);
        }
        if list.as_slice().len() >= limits.max_rooms_per_connection {
            return Err(RoomError::TooManyRooms {
                limit: limits.max_rooms_per_connection,
            });
        }
        list.push(pending);
        Ok(())
    }

    /// The owner accepted the join: `conn` starts receiving `room`'s messages, and with `watch`
    /// its `joined`/`left` events too. `false` when the membership is no longer pending (the
    /// connection left or went away meanwhile).
    pub fn confirm_join(&mut self, conn: ConnKey, room: &str, watch: bool) -> bool {
        let Some(m) = self.conns.get_mut(&conn).and_then(|list| {
            list.as_mut_slice()
                .iter_mut()
                .find(|m| &*m.room == room && m.member.is_none())
        }) else {
            return false;
        };
        let local = match self.rooms.get_mut(room) {
            Some(local) => {
                m.member = Some(local.members.insert(conn));
                local
            }
            None => {
                m.member = Some(Slot::new(0));
                let fresh = Local {
                    members: Members::One(conn),
                    watchers: None,
                };
                self.rooms.entry(room.into()).or_insert(fresh)
            }
        };
        if watch {
            let watchers = local.watchers.get_or_insert_with(Box::default);
            m.watcher = Some(Slot::new(watchers.insert(conn)));
        }
        true
    }

    /// The owner refused the join: forget the pending membership.
    pub fn abort_join(&mut self, conn: ConnKey, room: &str) {
        let Some(list) = self.conns.get(&conn) else {
            return;
        };
        if let Some(i) = list
            .as_slice()
            .iter()
            .position(|m| &*m.room == room && m.member.is_none())
        {
            self.remove_membership(conn, i);
        }
    }

    /// Removes `conn` from `room` (pending or accepted); it receives nothing more from it.
    pub fn leave(&mut self, conn: ConnKey, room: &str) -> Result<(), RoomError> {
        let list = self.conns.get(&conn).ok_or(RoomError::NotJoined)?;
        let i = list
            .as_slice()
            .iter()
            .position(|m| &*m.room == room)
            .ok_or(RoomError::NotJoined)?;
        let m = self.remove_membership(conn, i);
        self.release(m);
        Ok(())
    }

    /// Takes membership `i` out of `conn`'s list, dropping the list when it was the last.
    fn remove_membership(&mut self, conn: ConnKey, i: usize) -> Membership {
        let list = self.conns.get_mut(&conn).expect("listed");
        if list.as_slice().len() > 1 {
            return list.swap_remove(i);
        }
        let mut only = self.conns.remove(&conn).expect("listed").into_vec();
        only.pop().expect("one membership")
    }

    /// Removes `conn` from every room; returns the rooms it was in or joining, so the caller can
    /// tell their owners. O(rooms of `conn`).
    pub fn leave_all(&mut self, conn: ConnKey) -> Vec<Box<str>> {
        let list = self
            .conns
            .remove(&conn)
            .map_or_else(Vec::new, Memberships::into_vec);
        let mut rooms = Vec::with_capacity(list.len());
        for m in list {
            rooms.push(m.room.clone());
            self.release(m);
        }
        rooms
    }

    fn release(&mut self, m: Membership) {
        let Some(member) = m.member else { return };
        let Some(local) = self.rooms.get_mut(&*m.room) else {
            return;
        };
        if let (Some(w), Some(watchers)) = (m.watcher, &mut local.watchers) {
            watchers.remove(w.index());
        }
        if local.members.remove(member) {
            self.rooms.remove(&*m.room);
        }
    }

    /// Whether `conn` is an accepted member of `room`.
    pub fn is_member(&self, conn: ConnKey, room: &str) -> bool {
        self.conns.get(&conn).is_some_and(|list| {
            list.as_slice()
                .iter()
                .any(|m| &*m.room == room && m.member.is_some())
        })
    }

    /// Rooms `conn` is in or joining (tests check that leaving forgets the connection).
    #[cfg(test)]
    fn rooms_of(&self, conn: ConnKey) -> usize {
        self.conns.get(&conn).map_or(0, |l| l.as_slice().len())
    }

    /// Rooms with at least one accepted local member (tests check that empty rooms are dropped).
    #[cfg(test)]
    fn room_count(&self) -> usize {
        self.rooms.len()
    }

    /// Hands `frame` to every accepted local member of `room` in `audience` except `skip`: each
    /// gets a clone of the same frame (a `Bytes` or a [`super::RoomFrame`]: reference count
    /// increments, no copy, no allocation). Returns how many.
    pub fn fan_out<F: Clone>(
        &self,
        room: &str,
        audience: Audience,
        frame: &F,
        skip: Option<ConnKey>,
        mut deliver: impl FnMut(ConnKey, F),
    ) -> usize {
        let Some(local) = self.rooms.get(room) else {
            return 0;
        };
        let slab = match (audience, &local.members, &local.watchers) {
            (Audience::Members, Members::One(conn), _) => {
                if Some(*conn) == skip {
                    return 0;
                }
                deliver(*conn, frame.clone());
                return 1;
            }
            (Audience::Members, Members::Many(slab), _) => slab,
            (Audience::Watchers, _, Some(watchers)) => watchers,
            (Audience::Watchers, _, None) => return 0,
        };
        let mut n = 0;
        for (_, &conn) in slab.iter() {
            if Some(conn) != skip {
                deliver(conn, frame.clone());
                n += 1;
            }
        }
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn key(i: u64) -> ConnKey {
        ConnKey::from_u64(i)
    }

    fn joined(rooms: &mut LocalRooms, conn: u64, room: &str) {
        rooms
            .begin_join(key(conn), room, &RoomLimits::default())
            .unwrap();
        assert!(rooms.confirm_join(key(conn), room, true));
    }

    fn audience(rooms: &LocalRooms, room: &str, who: Audience) -> Vec<ConnKey> {
        let mut got = Vec::new();
        rooms.fan_out(room, who, &Bytes::from_static(b"f"), None, |c, _| {
            got.push(c)
        });
        got.sort();
        got
    }

    fn recipients(rooms: &LocalRooms, room: &str, skip: Option<ConnKey>) -> Vec<ConnKey> {
        let mut got = Vec::new();
        let frame = Bytes::from_static(b"f");
        rooms.fan_out(room, Audience::Members, &frame, skip, |c, _| got.push(c));
        got.sort();
        got
    }

    #[test]
    fn a_pending_member_receives_nothing_until_confirmed() {
        let mut rooms = LocalRooms::new();
        rooms
            .begin_join(key(1), "r", &RoomLimits::default())
            .unwrap();
        assert!(recipients(&rooms, "r", None).is_empty());
        assert!(!rooms.is_member(key(1), "r"));
        assert!(rooms.confirm_join(key(1), "r", true));
        assert_eq!(recipients(&rooms, "r", None), vec![key(1)]);
    }

    #[test]
    fn events_reach_only_watchers_and_messages_every_member() {
        let mut rooms = LocalRooms::new();
        let l = RoomLimits::default();
        for (conn, watch) in [(1, false), (2, true), (3, false)] {
            rooms.begin_join(key(conn), "r", &l).unwrap();
            assert!(rooms.confirm_join(key(conn), "r", watch));
        }
        assert_eq!(audience(&rooms, "r", Audience::Watchers), vec![key(2)]);
        assert_eq!(
            audience(&rooms, "r", Audience::Members),
            vec![key(1), key(2), key(3)]
        );
        rooms.leave(key(2), "r").unwrap();
        assert!(audience(&rooms, "r", Audience::Watchers).is_empty());
        assert_eq!(rooms.leave_all(key(1)), vec![Box::from("r")]);
        assert_eq!(audience(&rooms, "r", Audience::Members), vec![key(3)]);
        rooms.leave(key(3), "r").unwrap();
        assert_eq!(rooms.room_count(), 0);
    }

    #[test]
    fn a_room_of_one_grows_and_shrinks_without_losing_a_member() {
        // The first member sits inline in slot 0; the second moves both into a slab, the first
        // keeping its slot, so leaving in either order reaches the right member.
        for first_leaves in [true, false] {
            let mut rooms = LocalRooms::new();
            joined(&mut rooms, 1, "r");
            assert_eq!(recipients(&rooms, "r", None), vec![key(1)]);
            assert!(recipients(&rooms, "r", Some(key(1))).is_empty());
            joined(&mut rooms, 2, "r");
            joined(&mut rooms, 3, "r");
            let (gone, stays) = if first_leaves { (1, 2) } else { (2, 1) };
            rooms.leave(key(gone), "r").unwrap();
            rooms.leave(key(3), "r").unwrap();
            assert_eq!(recipients(&rooms, "r", None), vec![key(stays)]);
            assert_eq!(audience(&rooms, "r", Audience::Watchers), vec![key(stays)]);
            rooms.leave(key(stays), "r").unwrap();
            assert_eq!(rooms.room_count(), 0);
            assert_eq!(rooms.rooms_of(key(stays)), 0);
        }
    }

    #[test]
    fn a_connection_in_many_rooms_leaves_them_one_by_one() {
        let mut rooms = LocalRooms::new();
        for r in ["a", "b", "c"] {
            joined(&mut rooms, 1, r);
        }
        rooms.leave(key(1), "b").unwrap();
        assert!(rooms.is_member(key(1), "a") && rooms.is_member(key(1), "c"));
        rooms.leave(key(1), "a").unwrap();
        assert_eq!(rooms.rooms_of(key(1)), 1);
        assert_eq!(rooms.leave_all(key(1)), vec![Box::from("c")]);
        assert_eq!(rooms.room_count(), 0);
        rooms
            .begin_join(key(1), "p", &RoomLimits::default())
            .unwrap();
        rooms.abort_join(key(1), "p");
        assert_eq!(
            rooms.rooms_of(key(1)),
            0,
            "an aborted only join forgets the connection"
        );
    }

    #[test]
    fn a_room_of_one_and_a_connection_in_one_room_allocate_nothing_but_their_entries() {
        // The geometry documented on `LocalRooms`.
        assert_eq!(std::mem::size_of::<Membership>(), 24);
        assert_eq!(std::mem::size_of::<Memberships>(), 24);
        assert_eq!(std::mem::size_of::<Local>(), 24);
    }

    #[test]
    fn joining_twice_fails_with_already_joined() {
        let mut rooms = LocalRooms::new();
        joined(&mut rooms, 1, "r");
        assert_eq!(
            rooms.begin_join(key(1), "r", &RoomLimits::default()),
            Err(RoomError::AlreadyJoined)
        );
    }

    #[test]
    fn the_rooms_per_connection_limit_counts_pending_joins() {
        let limits = RoomLimits {
            max_rooms_per_connection: 2,
            ..RoomLimits::default()
        };
        let mut rooms = LocalRooms::new();
        rooms.begin_join(key(1), "a", &limits).unwrap();
        rooms.begin_join(key(1), "b", &limits).unwrap();
        assert_eq!(
            rooms.begin_join(key(1), "c", &limits),
            Err(RoomError::TooManyRooms { limit: 2 })
        );
        rooms.leave(key(1), "a").unwrap();
        assert!(rooms.begin_join(key(1), "c", &limits).is_ok());
    }

    #[test]
    fn leaving_a_room_not_joined_fails_with_not_joined() {
        let mut rooms = LocalRooms::new();
        assert_eq!(rooms.leave(key(1), "r"), Err(RoomError::NotJoined));
        joined(&mut rooms, 1, "a");
        assert_eq!(rooms.leave(key(1), "r"), Err(RoomError::NotJoined));
    }

    #[test]
    fn a_confirmation_after_leaving_is_ignored() {
        let mut rooms = LocalRooms::new();
        rooms
            .begin_join(key(1), "r", &RoomLimits::default())
            .unwrap();
        rooms.leave(key(1), "r").unwrap();
        assert!(!rooms.confirm_join(key(1), "r", true));
        assert!(recipients(&rooms, "r", None).is_empty());
    }

    #[test]
    fn leave_all_removes_every_membership_and_empty_rooms() {
        let mut rooms = LocalRooms::new();
        joined(&mut rooms, 1, "a");
        joined(&mut rooms, 1, "b");
        joined(&mut rooms, 2, "a");
        let mut left = rooms.leave_all(key(1));
        left.sort();
        assert_eq!(left, vec![Box::from("a"), Box::from("b")]);
        assert_eq!(recipients(&rooms, "a", None), vec![key(2)]);
        assert_eq!(rooms.room_count(), 1);
        assert_eq!(rooms.rooms_of(key(1)), 0);
    }

    #[test]
    fn fan_out_skips_only_the_excluded_member_and_shares_one_buffer() {
        let mut rooms = LocalRooms::new();
        for c in 0..5 {
            joined(&mut rooms, c, "r");
        }
        let frame = Bytes::from(vec![1u8; 64]);
        let mut ptrs = Vec::new();
        let n = rooms.fan_out("r", Audience::Members, &frame, Some(key(3)), |c, b| {
            assert_ne!(c, key(3));
            ptrs.push(b.as_ptr());
        });
        assert_eq!(n, 4);
        assert!(ptrs.iter().all(|&p| p == frame.as_ptr()));
    }
}
