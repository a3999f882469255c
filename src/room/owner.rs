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
//! Costs: join and leave are O(log members); listing the workers of an audience is O(workers)
//! for a large room and O(members) for a room of at most [`FEW`] (kept as a sorted vector, or as
//! the member itself for a room of one: no allocation besides the map entry and the name);
//! nothing here is O(members) of a large room except [`OwnedRooms::members`], which presence
//! replies walk.

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

/// One member as the owner keeps it: 24 bytes.
#[derive(Debug)]
struct Member {
    conn: ConnId,
    /// `None` when the member has neither user nor name (anonymous members: most of them), so
    /// they pay one pointer, not two empty strings.
    info: Option<Box<MemberInfo>>,
    /// Receives `joined`/`left` events.
    watch: bool,
}

impl Member {
    fn new(conn: ConnId, info: MemberInfo, watch: bool) -> Member {
        let info = (info.user.is_some() || info.name.is_some()).then(|| Box::new(info));
        Member { conn, info, watch }
    }

    fn info(&self) -> &MemberInfo {
        static ANONYMOUS: MemberInfo = MemberInfo {
            user: None,
            name: None,
        };
        self.info.as_deref().unwrap_or(&ANONYMOUS)
    }

    fn into_departed(self) -> Departed {
        Departed {
            info: self.info.map_or(
                MemberInfo {
                    user: None,
                    name: None,
                },
                |b| *b,
            ),
            watched: self.watch,
        }
    }

    fn is_in(&self, audience: Audience) -> bool {
        match audience {
            Audience::Members => true,
            Audience::Watchers => self.watch,
        }
    }
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

/// A room's members by connection id, in the smallest shape that holds them: the member itself
/// for a one-member room (direct messages, a user's own room: the common case by count), a
/// sorted vector up to [`FEW`], a B-tree with per-worker counts past it. 24 bytes whatever the
/// shape (the map entry of a room is its name and this).
///
/// Only the B-tree keeps per-worker counts: up to [`FEW`] members, sorted by `ConnId` and so by
/// worker, the workers of an audience are read off the members in one pass of at most [`FEW`].
// The vector is boxed so the enum stays 24 bytes (the size of the inline member), not 32: the
// common room, of one member, pays for no vector header it does not use.
#[allow(clippy::box_collection)]
#[derive(Debug)]
enum Members {
    One(Member),
    /// Invariant: sorted by `conn`, no duplicates, `2 <= len() <= FEW`.
    Few(Box<Vec<Member>>),
    /// Invariant: `len() > 0` (a room emptied is dropped; a tree is not turned back into a
    /// vector, so a room at the threshold does not flip on every join and leave).
    Many(Box<Tree>),
}

/// The members of a large room.
#[derive(Debug)]
struct Tree {
    members: BTreeMap<ConnId, Member>,
    /// Invariant: `per_worker[w].members` counts exactly the members whose `ConnId::worker == w`
    /// (so they sum to `members.len()`), and `per_worker[w].watchers` those of them with `watch`.
    per_worker: Box<[OnWorker]>,
}

impl Members {
    fn len(&self) -> usize {
        match self {
            Members::One(_) => 1,
            Members::Few(v) => v.len(),
            Members::Many(t) => t.members.len(),
        }
    }

    fn contains(&self, conn: &ConnId) -> bool {
        match self {
            Members::One(m) => m.conn == *conn,
            Members::Few(v) => v.binary_search_by_key(conn, |m| m.conn).is_ok(),
            Members::Many(t) => t.members.contains_key(conn),
        }
    }

    /// Whether a member other than those listed is on `worker`.
    fn any_on(&self, worker: u32) -> bool {
        match self {
            Members::One(m) => m.conn.worker == worker,
            Members::Few(v) => v.iter().any(|m| m.conn.worker == worker),
            Members::Many(t) => t.per_worker[worker as usize].members > 0,
        }
    }

    /// Inserts a member not yet present; `workers`: the server's worker count.
    fn insert(&mut self, member: Member, workers: usize) {
        match self {
            Members::One(first) => {
                let first_conn = first.conn;
                // Move the one member out by swapping in the vector that will hold both.
                let Members::One(first) =
                    std::mem::replace(self, Members::Few(Box::new(Vec::with_capacity(2))))
                else {
                    unreachable!("matched One above")
                };
                let Members::Few(v) = self else {
                    unreachable!("just replaced")
                };
                if member.conn < first_conn {
                    v.extend([member, first]);
                } else {
                    v.extend([first, member]);
                }
            }
            Members::Few(v) if v.len() < FEW => {
                let at = v
                    .binary_search_by_key(&member.conn, |m| m.conn)
                    .unwrap_err();
                v.insert(at, member);
            }
            Members::Few(v) => {
                let mut tree = Tree {
                    members: BTreeMap::new(),
                    per_worker: vec![OnWorker::default(); workers].into_boxed_slice(),
                };
                for m in std::mem::take(&mut **v).into_iter().chain([member]) {
                    tree.add(m);
                }
                *self = Members::Many(Box::new(tree));
            }
            Members::Many(t) => t.add(member),
        }
    }

    /// Removes `conn` from a room of two or more members (a room of one is dropped whole by the
    /// caller, see [`Members::into_only`]).
    fn remove(&mut self, conn: &ConnId) -> Option<Member> {
        match self {
            Members::One(_) => None,
            Members::Few(v) => {
                let at = v.binary_search_by_key(conn, |m| m.conn).ok()?;
                let gone = v.remove(at);
                if v.len() == 1 {
                    let last = v.pop().expect("one left");
                    *self = Members::One(last);
                }
                Some(gone)
            }
            Members::Many(t) => {
                let gone = t.members.remove(conn)?;
                let on = &mut t.per_worker[conn.worker as usize];
                on.members -= 1;
                on.watchers -= u32::from(gone.watch);
                Some(gone)
            }
        }
    }

    /// The member of a room of one, whatever its shape.
    fn into_only(self) -> Option<Member> {
        match self {
            Members::One(m) => Some(m),
            Members::Few(mut v) if v.len() == 1 => v.pop(),
            Members::Many(t) if t.members.len() == 1 => t.members.into_values().next(),
            Members::Few(_) | Members::Many(_) => None,
        }
    }

    fn iter(&self) -> MembersIter<'_> {
        match self {
            Members::One(m) => MembersIter::Few(std::slice::from_ref(m).iter()),
            Members::Few(v) => MembersIter::Few(v.iter()),
            Members::Many(t) => MembersIter::Many(t.members.values()),
        }
    }

    /// Workers with at least one member in `audience`, ascending. O(workers) for a large room,
    /// O(members) (at most [`FEW`]) for a small one.
    fn workers(&self, audience: Audience) -> WorkersIter<'_> {
        match self {
            Members::One(m) => WorkersIter::Few {
                members: std::slice::from_ref(m).iter(),
                audience,
                last: None,
            },
            Members::Few(v) => WorkersIter::Few {
                members: v.iter(),
                audience,
                last: None,
            },
            Members::Many(t) => WorkersIter::Many {
                per_worker: t.per_worker.iter().enumerate(),
                audience,
            },
        }
    }
}

impl Tree {
    fn add(&mut self, member: Member) {
        let on = &mut self.per_worker[member.conn.worker as usize];
        on.members += 1;
        on.watchers += u32::from(member.watch);
        self.members.insert(member.conn, member);
    }
}

/// The members of a room in connection-id order.
enum MembersIter<'a> {
    Few(std::slice::Iter<'a, Member>),
    Many(std::collections::btree_map::Values<'a, ConnId, Member>),
}

impl<'a> Iterator for MembersIter<'a> {
    type Item = &'a Member;

    fn next(&mut self) -> Option<Self::Item> {
        match self {
            MembersIter::Few(i) => i.next(),
            MembersIter::Many(i) => i.next(),
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

/// The workers of one audience of a room, ascending and each once.
enum WorkersIter<'a> {
    /// Members sorted by `ConnId`, hence by worker: a worker is yielded at its first member in
    /// the audience.
    Few {
        members: std::slice::Iter<'a, Member>,
        audience: Audience,
        last: Option<u32>,
    },
    Many {
        per_worker: std::iter::Enumerate<std::slice::Iter<'a, OnWorker>>,
        audience: Audience,
    },
}

impl Iterator for WorkersIter<'_> {
    type Item = usize;

    fn next(&mut self) -> Option<usize> {
        match self {
            WorkersIter::Few {
                members,
                audience,
                last,
            } => {
                let w = members
                    .by_ref()
                    .filter(|m| m.is_in(*audience))
                    .map(|m| m.conn.worker)
                    .find(|w| *last != Some(*w))?;
                *last = Some(w);
                Some(w as usize)
            }
            WorkersIter::Many {
                per_worker,
                audience,
            } => per_worker
                .find(|(_, on)| on.count(*audience) > 0)
                .map(|(w, _)| w),
        }
    }
}

/// The rooms owned by one worker.
///
/// Memory: per room one map entry (its name's 16-byte pointer and 24 bytes of [`Members`], plus
/// hash-table slack), its name, and past one member the members' vector or tree.
#[derive(Debug)]
pub struct OwnedRooms {
    workers: usize,
    /// Invariant: every room here has at least one member.
    rooms: HashMap<Box<str>, Members>,
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
        assert!(
            (conn.worker as usize) < self.workers,
            "connection of an unknown worker"
        );
        let Some(members) = self.rooms.get_mut(room) else {
            if limits.max_members_per_room == 0 {
                return Err(RoomError::RoomFull { limit: 0 });
            }
            let member = Member::new(conn, info, watch);
            self.rooms.insert(room.into(), Members::One(member));
            return Ok(true);
        };
        if members.contains(&conn) {
            return Err(RoomError::AlreadyJoined);
        }
        if members.len() >= limits.max_members_per_room {
            return Err(RoomError::RoomFull {
                limit: limits.max_members_per_room,
            });
        }
        let first_on_worker = !members.any_on(conn.worker);
        members.insert(Member::new(conn, info, watch), self.workers);
        Ok(first_on_worker)
    }

    /// Removes `conn` from `room`; returns what was known about it.
    pub fn leave(&mut self, room: &str, conn: ConnId) -> Result<Departed, RoomError> {
        let members = self.rooms.get_mut(room).ok_or(RoomError::NotJoined)?;
        if !members.contains(&conn) {
            return Err(RoomError::NotJoined);
        }
        let gone = if members.len() == 1 {
            self.rooms
                .remove(room)
                .and_then(Members::into_only)
                .expect("a one-member room holds its member")
        } else {
            // Two or more: at least one stays.
            members.remove(&conn).expect("contained")
        };
        Ok(gone.into_departed())
    }

    /// Whether `room` has members.
    pub fn contains(&self, room: &str) -> bool {
        self.rooms.contains_key(room)
    }

    /// Workers with at least one member of `room` in `audience`, ascending. O(workers), or
    /// O(members) for a room of at most [`FEW`].
    pub fn workers_of(&self, room: &str, audience: Audience) -> impl Iterator<Item = usize> + '_ {
        self.rooms
            .get(room)
            .into_iter()
            .flat_map(move |m| m.workers(audience))
    }

    /// The members of `room`, watchers or not, ordered by connection id (empty for an unknown
    /// room). O(members): presence replies walk it.
    pub fn members(&self, room: &str) -> impl ExactSizeIterator<Item = (ConnId, &MemberInfo)> + '_ {
        self.rooms
            .get(room)
            .map_or(MembersIter::Few([].iter()), Members::iter)
            .map(|m| (m.conn, m.info()))
    }

    /// The owned rooms whose name starts with `prefix`, with their member counts, in no
    /// particular order. O(rooms owned).
    pub fn counts<'a>(&'a self, prefix: &'a str) -> impl Iterator<Item = (&'a str, usize)> + 'a {
        self.rooms
            .iter()
            .filter(move |(name, _)| name.starts_with(prefix))
            .map(|(name, members)| (&**name, members.len()))
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
    fn the_workers_of_an_audience_match_the_members_in_every_shape() {
        // Joins and leaves over 3 workers take a room from one member to a vector, a tree and
        // back down; after each, the workers listed are those with a member (or watcher) there.
        let workers = 3;
        let mut rooms = OwnedRooms::new(workers);
        let l = RoomLimits::default();
        let mut model: Vec<(ConnId, bool)> = Vec::new();
        let check = |rooms: &OwnedRooms, model: &[(ConnId, bool)]| {
            for audience in [Audience::Members, Audience::Watchers] {
                let want: Vec<usize> = (0..workers)
                    .filter(|&w| {
                        model.iter().any(|&(c, watch)| {
                            c.worker as usize == w && (audience == Audience::Members || watch)
                        })
                    })
                    .collect();
                let got: Vec<usize> = rooms.workers_of("r", audience).collect();
                assert_eq!(got, want, "{audience:?} of {} members", model.len());
            }
            assert_eq!(rooms.members("r").len(), model.len());
        };
        let n = 2 * FEW as u64 + 3;
        for i in 0..n {
            let c = conn((i * 7 % 3) as u32, i);
            let watch = i % 4 == 1;
            let first_on_worker = !model.iter().any(|(m, _)| m.worker == c.worker);
            assert_eq!(
                rooms.join("r", c, anon(), watch, &l).unwrap(),
                first_on_worker
            );
            model.push((c, watch));
            check(&rooms, &model);
        }
        // Leave from the front, the back and the middle, down to none.
        while !model.is_empty() {
            let at = model.len() / 3;
            let (c, watch) = model.remove(at);
            assert_eq!(rooms.leave("r", c).unwrap().watched, watch);
            if model.is_empty() {
                assert!(!rooms.contains("r"));
            } else {
                check(&rooms, &model);
            }
        }
        // A vector shrunk to one member is a room of one again: its last leave drops it.
        rooms.join("r", conn(0, 1), anon(), true, &l).unwrap();
        rooms.join("r", conn(2, 2), anon(), false, &l).unwrap();
        rooms.leave("r", conn(0, 1)).unwrap();
        assert_eq!(
            rooms.workers_of("r", Audience::Members).collect::<Vec<_>>(),
            vec![2]
        );
        assert!(!rooms.leave("r", conn(2, 2)).unwrap().watched);
        assert!(rooms.is_empty());
    }

    #[test]
    fn a_members_user_and_name_come_back_in_its_left_event() {
        let mut rooms = OwnedRooms::new(1);
        let l = RoomLimits::default();
        let ann = MemberInfo {
            user: Some("ann".into()),
            name: Some("Ann".into()),
        };
        rooms.join("r", conn(0, 1), ann.clone(), true, &l).unwrap();
        rooms.join("r", conn(0, 2), anon(), true, &l).unwrap();
        let listed: Vec<MemberInfo> = rooms.members("r").map(|(_, i)| i.clone()).collect();
        assert_eq!(listed, vec![ann.clone(), anon()]);
        assert_eq!(rooms.leave("r", conn(0, 1)).unwrap().info, ann);
    }

    #[test]
    fn a_room_of_one_is_its_map_entry_and_nothing_more() {
        // The geometry the module and `tests/rooms_memory.rs` count on.
        assert_eq!(std::mem::size_of::<Member>(), 24);
        assert_eq!(std::mem::size_of::<Members>(), 24);
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
