//! The owner side of the rooms a worker owns: authoritative members and member workers.
//!
//! Owns, per room: the member list (connection id → user, display name and whether it watches
//! membership, ordered by connection id so presence lists are stable) and a count of members and
//! of watchers per worker, so a message goes only to workers that have members and a
//! `joined`/`left` event only to workers that have watchers. It must never send anything: it
//! answers what the driver should send and to which workers.
//!
//! A room exists here while it has members; an emptied room is dropped. Offsets, epochs and
//! history are the room's *stream*, kept apart in a [`super::stream::RoomStore`] (a stream may
//! outlive its members).
//!
//! Costs: join and leave are O(log members) plus O(workers) to list the workers of an audience
//! (a room of at most [`FEW`] members keeps them in a sorted vector: O(members) moves of at most
//! [`FEW`] entries, and one allocation of exactly one entry for a one-member room, instead of a
//! B-tree node of eleven); nothing here is O(members) except [`OwnedRooms::members`], which
//! presence replies walk.

use std::collections::{BTreeMap, HashMap};

use super::{Audience, RoomError, RoomLimits};
use crate::envelope::ConnId;

/// What the owner keeps about one member.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemberInfo {
    /// The authenticated user, if any.
    pub user: Option<Box<str>>,
    /// The display name the member gave when joining, if any.
    pub name: Option<Box<str>>,
}

/// A member that left: what was known about it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Departed {
    /// Its user and name, for the `left` event.
    pub info: MemberInfo,
    /// Whether it watched the room's membership.
    pub watched: bool,
}

#[derive(Debug)]
struct Member {
    info: MemberInfo,
    /// Receives `joined`/`left` events.
    watch: bool,
}

/// Members and watchers of one room on one worker.
#[derive(Clone, Copy, Debug, Default)]
struct OnWorker {
    members: u32,
    /// Invariant: `watchers <= members`.
    watchers: u32,
}

impl OnWorker {
    fn count(self, audience: Audience) -> u32 {
        match audience {
            Audience::Members => self.members,
            Audience::Watchers => self.watchers,
        }
    }
}

/// Members up to which a room keeps them in a sorted vector rather than a B-tree.
pub const FEW: usize = 16;

/// A room's members by connection id: a sorted vector while few (one-member rooms, direct
/// messages: the common case by count), a B-tree past [`FEW`].
#[derive(Debug)]
enum Members {
    /// Invariant: sorted by `ConnId`, no duplicates, `len() <= FEW`.
    Few(Vec<(ConnId, Member)>),
    Many(BTreeMap<ConnId, Member>),
}

impl Members {
    fn len(&self) -> usize {
        match self {
            Members::Few(v) => v.len(),
            Members::Many(m) => m.len(),
        }
    }

    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn contains(&self, conn: &ConnId) -> bool {
        match self {
            Members::Few(v) => v.binary_search_by_key(conn, |(c, _)| *c).is_ok(),
            Members::Many(m) => m.contains_key(conn),
        }
    }

    /// Inserts a member not yet present.
    fn insert(&mut self, conn: ConnId, member: Member) {
        match self {
            Members::Few(v) if v.len() < FEW => {
                let at = v.binary_search_by_key(&conn, |(c, _)| *c).unwrap_err();
                if v.capacity() == 0 {
                    // A room starts with one member: room for exactly one.
                    v.reserve_exact(1);
                }
                v.insert(at, (conn, member));
            }
            Members::Few(v) => {
                let mut map: BTreeMap<ConnId, Member> = std::mem::take(v).into_iter().collect();
                map.insert(conn, member);
                *self = Members::Many(map);
            }
            Members::Many(m) => {
                m.insert(conn, member);
            }
        }
    }

    fn remove(&mut self, conn: &ConnId) -> Option<Member> {
        match self {
            Members::Few(v) => {
                let at = v.binary_search_by_key(conn, |(c, _)| *c).ok()?;
                Some(v.remove(at).1)
            }
            Members::Many(m) => m.remove(conn),
        }
    }

    fn iter(&self) -> MembersIter<'_> {
        match self {
            Members::Few(v) => MembersIter::Few(v.iter()),
            Members::Many(m) => MembersIter::Many(m.iter()),
        }
    }
}

/// The members of a room in connection-id order.
enum MembersIter<'a> {
    Few(std::slice::Iter<'a, (ConnId, Member)>),
    Many(std::collections::btree_map::Iter<'a, ConnId, Member>),
}

impl<'a> Iterator for MembersIter<'a> {
    type Item = (ConnId, &'a Member);

    fn next(&mut self) -> Option<Self::Item> {
        match self {
            MembersIter::Few(i) => i.next().map(|(c, m)| (*c, m)),
            MembersIter::Many(i) => i.next().map(|(c, m)| (*c, m)),
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        match self {
            MembersIter::Few(i) => i.size_hint(),
            MembersIter::Many(i) => i.size_hint(),
        }
    }
}

impl ExactSizeIterator for MembersIter<'_> {}

#[derive(Debug)]
struct RoomState {
    members: Members,
    /// Invariant: `per_worker[w].members` counts exactly the members whose `ConnId::worker == w`
    /// (so they sum to `members.len()`), and `per_worker[w].watchers` those of them with `watch`.
    per_worker: Box<[OnWorker]>,
}

/// The rooms owned by one worker.
#[derive(Debug)]
pub struct OwnedRooms {
    workers: usize,
    rooms: HashMap<Box<str>, RoomState>,
}

impl OwnedRooms {
    /// An empty registry for a server of `workers` workers.
    pub fn new(workers: usize) -> Self {
        OwnedRooms {
            workers,
            rooms: HashMap::new(),
        }
    }

    /// Adds `conn` to `room`, creating the room if needed; `watch`: it also receives the room's
    /// `joined`/`left` events. Returns `true` when `conn`'s worker had no member in the room
    /// before (it starts receiving the room's frames).
    pub fn join(
        &mut self,
        room: &str,
        conn: ConnId,
        info: MemberInfo,
        watch: bool,
        limits: &RoomLimits,
    ) -> Result<bool, RoomError> {
        let worker = conn.worker as usize;
        assert!(worker < self.workers, "connection of an unknown worker");
        let workers = self.workers;
        let state = self.rooms.entry(room.into()).or_insert_with(|| RoomState {
            members: Members::Few(Vec::new()),
            per_worker: vec![OnWorker::default(); workers].into_boxed_slice(),
        });
        if state.members.contains(&conn) {
            return Err(RoomError::AlreadyJoined);
        }
        if state.members.len() >= limits.max_members_per_room {
            if state.members.is_empty() {
                self.rooms.remove(room);
            }
            return Err(RoomError::RoomFull {
                limit: limits.max_members_per_room,
            });
        }
        state.members.insert(conn, Member { info, watch });
        let on = &mut state.per_worker[worker];
        on.members += 1;
        on.watchers += u32::from(watch);
        Ok(on.members == 1)
    }

    /// Removes `conn` from `room`; returns what was known about it.
    pub fn leave(&mut self, room: &str, conn: ConnId) -> Result<Departed, RoomError> {
        let state = self.rooms.get_mut(room).ok_or(RoomError::NotJoined)?;
        let member = state.members.remove(&conn).ok_or(RoomError::NotJoined)?;
        let on = &mut state.per_worker[conn.worker as usize];
        on.members -= 1;
        on.watchers -= u32::from(member.watch);
        if state.members.is_empty() {
            self.rooms.remove(room);
        }
        Ok(Departed {
            info: member.info,
            watched: member.watch,
        })
    }

    /// Whether `room` has members.
    pub fn contains(&self, room: &str) -> bool {
        self.rooms.contains_key(room)
    }

    /// Workers with at least one member of `room` in `audience`. O(workers).
    pub fn workers_of(&self, room: &str, audience: Audience) -> impl Iterator<Item = usize> + '_ {
        self.rooms.get(room).into_iter().flat_map(move |s| {
            s.per_worker
                .iter()
                .enumerate()
                .filter(move |(_, on)| on.count(audience) > 0)
                .map(|(w, _)| w)
        })
    }

    /// The members of `room`, watchers or not, ordered by connection id (empty for an unknown
    /// room). O(members): presence replies walk it.
    pub fn members(&self, room: &str) -> impl ExactSizeIterator<Item = (ConnId, &MemberInfo)> + '_ {
        self.rooms
            .get(room)
            .map_or(MembersIter::Few([].iter()), |s| s.members.iter())
            .map(|(c, m)| (c, &m.info))
    }

    /// The owned rooms whose name starts with `prefix`, with their member counts, in no
    /// particular order. O(rooms owned).
    pub fn counts<'a>(&'a self, prefix: &'a str) -> impl Iterator<Item = (&'a str, usize)> + 'a {
        self.rooms
            .iter()
            .filter(move |(name, _)| name.starts_with(prefix))
            .map(|(name, state)| (&**name, state.members.len()))
    }

    /// Rooms with members.
    pub fn len(&self) -> usize {
        self.rooms.len()
    }

    /// Whether no owned room has members.
    pub fn is_empty(&self) -> bool {
        self.rooms.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::table::ConnKey;

    fn conn(worker: u32, i: u64) -> ConnId {
        ConnId {
            worker,
            key: ConnKey::from_u64(i),
        }
    }

    fn publish(rooms: &OwnedRooms, room: &str) -> Vec<usize> {
        rooms.workers_of(room, Audience::Members).collect()
    }

    fn anon() -> MemberInfo {
        MemberInfo {
            user: None,
            name: None,
        }
    }

    #[test]
    fn a_publish_to_a_room_without_members_goes_to_no_worker() {
        let rooms = OwnedRooms::new(1);
        assert!(publish(&rooms, "nobody").is_empty());
        assert!(!rooms.contains("nobody"));
    }

    #[test]
    fn only_workers_with_members_receive_a_rooms_frames() {
        let mut rooms = OwnedRooms::new(4);
        let l = RoomLimits::default();
        assert!(rooms.join("r", conn(1, 1), anon(), true, &l).unwrap());
        assert!(!rooms.join("r", conn(1, 2), anon(), true, &l).unwrap());
        assert!(rooms.join("r", conn(3, 1), anon(), true, &l).unwrap());
        assert_eq!(publish(&rooms, "r"), vec![1, 3]);
        rooms.leave("r", conn(3, 1)).unwrap();
        assert_eq!(
            rooms.workers_of("r", Audience::Members).collect::<Vec<_>>(),
            vec![1]
        );
    }

    #[test]
    fn membership_events_go_only_to_workers_with_watchers() {
        let mut rooms = OwnedRooms::new(3);
        let l = RoomLimits::default();
        for i in 0..100 {
            rooms
                .join("big", conn(i % 3, i.into()), anon(), false, &l)
                .unwrap();
        }
        let watchers = |rooms: &OwnedRooms| -> Vec<usize> {
            rooms.workers_of("big", Audience::Watchers).collect()
        };
        assert!(
            watchers(&rooms).is_empty(),
            "nobody watches: a join costs no frame"
        );
        assert_eq!(
            rooms
                .workers_of("big", Audience::Members)
                .collect::<Vec<_>>(),
            vec![0, 1, 2]
        );
        rooms.join("big", conn(2, 500), anon(), true, &l).unwrap();
        assert_eq!(watchers(&rooms), vec![2]);
        let gone = rooms.leave("big", conn(2, 500)).unwrap();
        assert!(gone.watched);
        assert!(watchers(&rooms).is_empty());
        assert!(!rooms.leave("big", conn(0, 0)).unwrap().watched);
    }

    #[test]
    fn presence_lists_watchers_and_quiet_members_alike() {
        let mut rooms = OwnedRooms::new(1);
        let l = RoomLimits::default();
        rooms.join("r", conn(0, 1), anon(), false, &l).unwrap();
        rooms.join("r", conn(0, 2), anon(), true, &l).unwrap();
        let listed: Vec<ConnId> = rooms.members("r").map(|(c, _)| c).collect();
        assert_eq!(listed, vec![conn(0, 1), conn(0, 2)]);
    }

    #[test]
    fn members_stay_ordered_and_counted_across_the_switch_to_a_tree_and_back() {
        let mut rooms = OwnedRooms::new(2);
        let l = RoomLimits::default();
        let n = 3 * FEW as u64;
        for i in (0..n).rev() {
            rooms
                .join("r", conn((i % 2) as u32, i), anon(), i % 3 == 0, &l)
                .unwrap();
            assert_eq!(
                rooms.join("r", conn((i % 2) as u32, i), anon(), true, &l),
                Err(RoomError::AlreadyJoined)
            );
        }
        let listed: Vec<ConnId> = rooms.members("r").map(|(c, _)| c).collect();
        let mut sorted = listed.clone();
        sorted.sort();
        assert_eq!((listed.len(), &listed), (n as usize, &sorted));
        for i in 0..n {
            let gone = rooms.leave("r", conn((i % 2) as u32, i)).unwrap();
            assert_eq!(gone.watched, i % 3 == 0);
            assert_eq!(rooms.members("r").len(), (n - i - 1) as usize);
        }
        assert!(!rooms.contains("r"));
    }

    #[test]
    fn a_full_room_refuses_with_room_full() {
        let mut rooms = OwnedRooms::new(1);
        let l = RoomLimits {
            max_members_per_room: 1,
            ..RoomLimits::default()
        };
        rooms.join("r", conn(0, 1), anon(), true, &l).unwrap();
        assert_eq!(
            rooms.join("r", conn(0, 2), anon(), true, &l),
            Err(RoomError::RoomFull { limit: 1 })
        );
    }

    #[test]
    fn members_are_listed_by_connection_id_with_their_names() {
        let mut rooms = OwnedRooms::new(2);
        let l = RoomLimits::default();
        let named = |n: &str| MemberInfo {
            user: None,
            name: Some(n.into()),
        };
        rooms.join("r", conn(1, 0), named("bo"), true, &l).unwrap();
        rooms.join("r", conn(0, 5), named("al"), true, &l).unwrap();
        let names: Vec<_> = rooms
            .members("r")
            .map(|(c, i)| (c.to_string(), i.name.as_deref().unwrap().to_owned()))
            .collect();
        assert_eq!(
            names,
            vec![("0:5.0".into(), "al".into()), ("1:0.0".into(), "bo".into())]
        );
    }

    #[test]
    fn the_last_leave_drops_the_room() {
        let mut rooms = OwnedRooms::new(1);
        let l = RoomLimits::default();
        rooms.join("r", conn(0, 1), anon(), true, &l).unwrap();
        assert!(rooms.contains("r"));
        assert_eq!(
            rooms.leave("r", conn(0, 1)),
            Ok(Departed {
                info: anon(),
                watched: true
            })
        );
        assert!(rooms.is_empty() && !rooms.contains("r"));
        assert_eq!(rooms.leave("r", conn(0, 1)), Err(RoomError::NotJoined));
    }
}
