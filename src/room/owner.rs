//! The owner side of the rooms a worker owns: authoritative members, `seq`, member workers.
//!
//! Owns, per room: the member list (connection id → user and display name, ordered by
//! connection id so presence lists are stable), the `seq` counter, and a count of members per
//! worker, so a frame goes only to workers that have members. It must never send anything: it
//! answers what the driver should send and to which workers.
//!
//! `seq` starts at 1 for the first message published to a room and grows by one per message. A
//! room exists while it has members; an emptied room is dropped, and a room created again later
//! starts over at 1 (a publish to a room without members is delivered to nobody and takes no seq).

use std::collections::{BTreeMap, HashMap};

use super::{RoomError, RoomLimits};
use crate::envelope::ConnId;

/// What the owner keeps about one member.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemberInfo {
    /// The authenticated user, if any.
    pub user: Option<Box<str>>,
    /// The display name the member gave when joining, if any.
    pub name: Option<Box<str>>,
}

#[derive(Debug)]
struct RoomState {
    /// The last seq assigned (0: none yet).
    seq: u64,
    members: BTreeMap<ConnId, MemberInfo>,
    /// Members per worker. Invariant: the sum equals `members.len()`, and `per_worker[w]` counts
    /// exactly the members whose `ConnId::worker == w`.
    per_worker: Box<[u32]>,
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

    /// Adds `conn` to `room`, creating the room if needed. Returns `true` when `conn`'s worker had
    /// no member in the room before (it starts receiving the room's frames).
    pub fn join(
        &mut self,
        room: &str,
        conn: ConnId,
        info: MemberInfo,
        limits: &RoomLimits,
    ) -> Result<bool, RoomError> {
        let worker = conn.worker as usize;
        assert!(worker < self.workers, "connection of an unknown worker");
        let workers = self.workers;
        let state = self.rooms.entry(room.into()).or_insert_with(|| RoomState {
            seq: 0,
            members: BTreeMap::new(),
            per_worker: vec![0; workers].into_boxed_slice(),
        });
        if state.members.contains_key(&conn) {
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
        state.members.insert(conn, info);
        state.per_worker[worker] += 1;
        Ok(state.per_worker[worker] == 1)
    }

    /// Removes `conn` from `room`; returns what was known about it.
    pub fn leave(&mut self, room: &str, conn: ConnId) -> Result<MemberInfo, RoomError> {
        let state = self.rooms.get_mut(room).ok_or(RoomError::NotJoined)?;
        let info = state.members.remove(&conn).ok_or(RoomError::NotJoined)?;
        state.per_worker[conn.worker as usize] -= 1;
        if state.members.is_empty() {
            self.rooms.remove(room);
        }
        Ok(info)
    }

    /// Assigns the next seq of `room`; `None` when the room has no members (nothing to deliver,
    /// no seq taken). The frame then goes to [`OwnedRooms::workers_of`].
    pub fn next_seq(&mut self, room: &str) -> Option<u64> {
        let state = self.rooms.get_mut(room)?;
        state.seq += 1;
        Some(state.seq)
    }

    /// Workers with at least one member of `room`.
    pub fn workers_of(&self, room: &str) -> impl Iterator<Item = usize> + '_ {
        self.rooms
            .get(room)
            .into_iter()
            .flat_map(|s| member_workers(&s.per_worker))
    }

    /// The members of `room`, ordered by connection id (empty for an unknown room).
    pub fn members(&self, room: &str) -> impl ExactSizeIterator<Item = (ConnId, &MemberInfo)> + '_ {
        self.rooms
            .get(room)
            .map(|s| s.members.iter())
            .unwrap_or_default()
            .map(|(&c, i)| (c, i))
    }

    /// The last seq assigned in `room` (0 when none, or when the room does not exist).
    pub fn seq(&self, room: &str) -> u64 {
        self.rooms.get(room).map_or(0, |s| s.seq)
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

fn member_workers(per_worker: &[u32]) -> impl Iterator<Item = usize> + '_ {
    per_worker
        .iter()
        .enumerate()
        .filter(|(_, &n)| n > 0)
        .map(|(w, _)| w)
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

    fn publish(rooms: &mut OwnedRooms, room: &str) -> Option<(u64, Vec<usize>)> {
        let seq = rooms.next_seq(room)?;
        Some((seq, rooms.workers_of(room).collect()))
    }

    fn anon() -> MemberInfo {
        MemberInfo {
            user: None,
            name: None,
        }
    }

    #[test]
    fn seq_starts_at_one_and_grows_by_one_per_publish() {
        let mut rooms = OwnedRooms::new(2);
        rooms
            .join("r", conn(0, 1), anon(), &RoomLimits::default())
            .unwrap();
        let seqs: Vec<u64> = (0..3)
            .map(|_| publish(&mut rooms, "r").unwrap().0)
            .collect();
        assert_eq!(seqs, vec![1, 2, 3]);
    }

    #[test]
    fn a_publish_to_a_room_without_members_takes_no_seq() {
        let mut rooms = OwnedRooms::new(1);
        assert!(publish(&mut rooms, "nobody").is_none());
        assert_eq!(rooms.seq("nobody"), 0);
    }

    #[test]
    fn only_workers_with_members_receive_a_rooms_frames() {
        let mut rooms = OwnedRooms::new(4);
        let l = RoomLimits::default();
        assert!(rooms.join("r", conn(1, 1), anon(), &l).unwrap());
        assert!(!rooms.join("r", conn(1, 2), anon(), &l).unwrap());
        assert!(rooms.join("r", conn(3, 1), anon(), &l).unwrap());
        assert_eq!(publish(&mut rooms, "r").unwrap().1, vec![1, 3]);
        rooms.leave("r", conn(3, 1)).unwrap();
        assert_eq!(rooms.workers_of("r").collect::<Vec<_>>(), vec![1]);
        assert_eq!(rooms.next_seq("r"), Some(2));
    }

    #[test]
    fn a_full_room_refuses_with_room_full() {
        let mut rooms = OwnedRooms::new(1);
        let l = RoomLimits {
            max_members_per_room: 1,
            ..RoomLimits::default()
        };
        rooms.join("r", conn(0, 1), anon(), &l).unwrap();
        assert_eq!(
            rooms.join("r", conn(0, 2), anon(), &l),
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
        rooms.join("r", conn(1, 0), named("bo"), &l).unwrap();
        rooms.join("r", conn(0, 5), named("al"), &l).unwrap();
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
    fn the_last_leave_drops_the_room_and_a_new_room_restarts_seq() {
        let mut rooms = OwnedRooms::new(1);
        let l = RoomLimits::default();
        rooms.join("r", conn(0, 1), anon(), &l).unwrap();
        publish(&mut rooms, "r");
        assert_eq!(rooms.leave("r", conn(0, 1)), Ok(anon()));
        assert!(rooms.is_empty());
        assert_eq!(rooms.leave("r", conn(0, 1)), Err(RoomError::NotJoined));
        rooms.join("r", conn(0, 1), anon(), &l).unwrap();
        assert_eq!(publish(&mut rooms, "r").unwrap().0, 1);
    }
}
