//! One worker's view of its rooms: room → local members (and watchers), connection → rooms.
//!
//! Owns the membership of this worker's connections and the fan-out loop over them. It must never
//! copy a frame: [`LocalRooms::fan_out`] hands every recipient a clone of the same `Bytes`.
//!
//! # Geometry
//!
//! `rooms` maps a room name to two [`Slab`]s of member keys: every accepted member, and the
//! subset that watches membership (joined with presence on). `conns` maps a connection to a
//! short list of its memberships, each remembering its slots in the room's slabs. Join, confirm
//! and leave are O(rooms of the connection) plus O(1) in the room; a disconnect is O(rooms of the
//! connection); fan-out is O(slab capacity of the audience): a message walks the members, a
//! `joined`/`left` event only the watchers. An emptied room is removed.
//!
//! A membership is *pending* from the join request until the owner worker accepts it: it counts
//! towards the per-connection limit and blocks a second join, but receives nothing yet.

use std::collections::HashMap;

use slab::Slab;

use super::{Audience, RoomError, RoomLimits};
use crate::table::ConnKey;

/// Where an accepted membership sits in its room's slabs.
#[derive(Clone, Copy, Debug)]
struct Slots {
    member: usize,
    /// `Some` for a watcher.
    watcher: Option<usize>,
}

/// One membership of one connection.
#[derive(Debug)]
struct Membership {
    room: Box<str>,
    /// The member's slots once the owner accepted it; `None` while pending.
    slots: Option<Slots>,
}

/// The accepted local members of one room.
#[derive(Debug, Default)]
struct Local {
    members: Slab<ConnKey>,
    /// Invariant: a subset of `members` (the same keys, in slots of their own). Boxed, and
    /// created on the first watcher: most rooms by count (one-member rooms, broadcast rooms joined
    /// with presence off) have none, and pay one pointer instead of a slab.
    watchers: Option<Box<Slab<ConnKey>>>,
}

impl Local {
    fn audience(&self, audience: Audience) -> Option<&Slab<ConnKey>> {
        match audience {
            Audience::Members => Some(&self.members),
            Audience::Watchers => self.watchers.as_deref(),
        }
    }
}

/// Room ↔ member maps of one worker.
#[derive(Debug, Default)]
pub struct LocalRooms {
    /// Room → accepted local members. Invariant: a room is present iff its `members` slab is
    /// non-empty.
    rooms: HashMap<Box<str>, Local>,
    /// Connection → its memberships (pending and accepted). Invariant: every accepted membership
    /// `(room, Some(slots))` has `rooms[room].members[slots.member] == conn` (and likewise in
    /// `watchers` for `slots.watcher`), and no connection is listed twice in one room. A
    /// connection with no membership has no entry.
    conns: HashMap<ConnKey, Vec<Membership>>,
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
        // Most connections are in one room: room for exactly one membership to start with.
        let list = self
            .conns
            .entry(conn)
            .or_insert_with(|| Vec::with_capacity(1));
        if list.iter().any(|m| &*m.room == room) {
            return Err(RoomError::AlreadyJoined);
        }
        if list.len() >= limits.max_rooms_per_connection {
            if list.is_empty() {
                self.conns.remove(&conn);
            }
            return Err(RoomError::TooManyRooms {
                limit: limits.max_rooms_per_connection,
            });
        }
        list.push(Membership {
            room: room.into(),
            slots: None,
        });
        Ok(())
    }

    /// The owner accepted the join: `conn` starts receiving `room`'s messages, and with `watch`
    /// its `joined`/`left` events too. `false` when the membership is no longer pending (the
    /// connection left or went away meanwhile).
    pub fn confirm_join(&mut self, conn: ConnKey, room: &str, watch: bool) -> bool {
        let Some(m) = self.conns.get_mut(&conn).and_then(|list| {
            list.iter_mut()
                .find(|m| &*m.room == room && m.slots.is_none())
        }) else {
            return false;
        };
        let local = self.rooms.entry(room.into()).or_insert_with(|| Local {
            // Room for the one member a new room has (the watchers' slab allocates on its first
            // watcher only).
            members: Slab::with_capacity(1),
            watchers: None,
        });
        m.slots = Some(Slots {
            member: local.members.insert(conn),
            watcher: watch.then(|| local.watchers.get_or_insert_with(Box::default).insert(conn)),
        });
        true
    }

    /// The owner refused the join: forget the pending membership.
    pub fn abort_join(&mut self, conn: ConnKey, room: &str) {
        if let Some(list) = self.conns.get_mut(&conn) {
            if let Some(i) = list
                .iter()
                .position(|m| &*m.room == room && m.slots.is_none())
            {
                list.swap_remove(i);
            }
            if list.is_empty() {
                self.conns.remove(&conn);
            }
        }
    }

    /// Removes `conn` from `room` (pending or accepted); it receives nothing more from it.
    pub fn leave(&mut self, conn: ConnKey, room: &str) -> Result<(), RoomError> {
        let list = self.conns.get_mut(&conn).ok_or(RoomError::NotJoined)?;
        let i = list
            .iter()
            .position(|m| &*m.room == room)
            .ok_or(RoomError::NotJoined)?;
        let m = list.swap_remove(i);
        if list.is_empty() {
            self.conns.remove(&conn);
        }
        self.release(m);
        Ok(())
    }

    /// Removes `conn` from every room; returns the rooms it was in or joining, so the caller can
    /// tell their owners. O(rooms of `conn`).
    pub fn leave_all(&mut self, conn: ConnKey) -> Vec<Box<str>> {
        let list = self.conns.remove(&conn).unwrap_or_default();
        let mut rooms = Vec::with_capacity(list.len());
        for m in list {
            rooms.push(m.room.clone());
            self.release(m);
        }
        rooms
    }

    fn release(&mut self, m: Membership) {
        if let Some(slots) = m.slots {
            if let Some(local) = self.rooms.get_mut(&*m.room) {
                local.members.remove(slots.member);
                if let (Some(w), Some(watchers)) = (slots.watcher, &mut local.watchers) {
                    watchers.remove(w);
                }
                if local.members.is_empty() {
                    self.rooms.remove(&*m.room);
                }
            }
        }
    }

    /// Whether `conn` is an accepted member of `room`.
    pub fn is_member(&self, conn: ConnKey, room: &str) -> bool {
        self.conns
            .get(&conn)
            .is_some_and(|list| list.iter().any(|m| &*m.room == room && m.slots.is_some()))
    }

    /// Rooms `conn` is in or joining (tests check that leaving forgets the connection).
    #[cfg(test)]
    fn rooms_of(&self, conn: ConnKey) -> usize {
        self.conns.get(&conn).map_or(0, Vec::len)
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
        let Some(slab) = self.rooms.get(room).and_then(|l| l.audience(audience)) else {
            return 0;
        };
        let mut n = 0;
        for (_, &conn) in slab {
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
