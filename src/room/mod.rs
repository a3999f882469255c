//! Rooms: who is in which room, on this worker and for the whole server.
//!
//! Owns two sans-IO structures and the rule that ties them together:
//!
//! - [`LocalRooms`] (one per worker): room → the members connected to *this* worker, and
//!   connection → its rooms, so a disconnect leaves every room in O(rooms of that connection).
//!   It is what a worker fans a room's frame out over.
//! - [`OwnedRooms`] (one per worker, for the rooms it owns): the authoritative member list of each
//!   room (connection ids, users, names) and which workers have members and which have
//!   *watchers*.
//! - [`stream`] (one store per worker, for the rooms it owns): each room's `offset` counter,
//!   `epoch` and bounded history behind the [`stream::RoomStore`] trait; [`dedup`]: the
//!   `msg_id`s of recent publishes, so a retried publish is accepted once.
//!
//! Every member receives the room's messages; only **watchers** (members that joined with
//! presence on, the default) also receive its `joined`/`left` events. Both registries keep the
//! watchers apart from the members ([`Audience`]), so a join or leave costs O(watchers), not
//! O(members): filling a room of N members that opted out is O(N) frames, not O(N²).
//!
//! Every room has exactly one **owner worker**, [`owner_of`]`(room, workers)`: a fixed hash of the
//! name, the same on every worker. Joins, leaves, publishes and presence queries go to the owner
//! through the mesh (FIFO per pair of workers), which is what makes `offset` a single counter per
//! room, the member list consistent without locks, and a resume exact: the owner registers a
//! joiner and computes its replay in one step, and every later message reaches the joiner's
//! worker after that replay on the same FIFO channel.
//!
//! Nothing here does I/O, reads a clock, or knows about sockets; fan-out hands each recipient a
//! clone of one [`bytes::Bytes`] (a reference count, never a copy of the frame).

pub mod dedup;
mod local;
mod owner;
pub mod stream;

pub use local::LocalRooms;
pub use owner::{Departed, MemberInfo, OwnedRooms};

use bytes::Bytes;

use crate::envelope::ErrorCode;

/// One room frame in every encoding it is sent in: at most two, whatever the room size.
///
/// Rendered (and compressed) once at the room's owner; every recipient gets a clone of one of the
/// two `Bytes` (a reference count, never a copy). History, when it lands, keeps this struct so it
/// can serve both kinds of recipient.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoomFrame {
    /// The frame as-is: for recipients that did not negotiate compression, and for all of them
    /// when the message is below the compression threshold.
    pub plain: Bytes,
    /// The same message compressed without context takeover (RFC 7692, RSV1 set), for recipients
    /// that negotiated permessage-deflate and allow our window. `None`: not compressed.
    pub deflated: Option<Bytes>,
}

impl RoomFrame {
    /// A frame that is only sent plain.
    pub fn plain(plain: Bytes) -> RoomFrame {
        RoomFrame {
            plain,
            deflated: None,
        }
    }
}

/// Who in a room a frame is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Audience {
    /// Every member: published messages.
    Members,
    /// Only the members that watch membership: `joined` and `left` events.
    Watchers,
}

/// Limits on rooms. All defaults are here.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RoomLimits {
    /// Rooms one connection may be in (or joining) at once. Default 64. More → `too_many_rooms`.
    pub max_rooms_per_connection: usize,
    /// Members one room may have across the server. Default 100 000. More → `room_full`.
    pub max_members_per_room: usize,
    /// Whether `publish` requires membership of the room. Default `false` (anyone may publish,
    /// like a webhook into a room). More → `not_joined`.
    pub publish_requires_join: bool,
}

impl Default for RoomLimits {
    fn default() -> Self {
        RoomLimits {
            max_rooms_per_connection: 64,
            max_members_per_room: 100_000,
            publish_requires_join: false,
        }
    }
}

/// Why a room operation was refused. One variant per violation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RoomError {
    /// The connection is already in (or joining) the room.
    #[error("already a member of this room")]
    AlreadyJoined,
    /// The connection is in as many rooms as allowed.
    #[error("in {limit} rooms already (the limit)")]
    TooManyRooms {
        /// The limit.
        limit: usize,
    },
    /// The room has as many members as allowed.
    #[error("the room has {limit} members (the limit)")]
    RoomFull {
        /// The limit.
        limit: usize,
    },
    /// The connection is not a member of the room.
    #[error("not a member of this room")]
    NotJoined,
}

impl RoomError {
    /// The stable code this refusal is reported with.
    pub fn code(self) -> ErrorCode {
        match self {
            RoomError::AlreadyJoined => ErrorCode::AlreadyJoined,
            RoomError::TooManyRooms { .. } => ErrorCode::TooManyRooms,
            RoomError::RoomFull { .. } => ErrorCode::RoomFull,
            RoomError::NotJoined => ErrorCode::NotJoined,
        }
    }
}

/// The worker that owns `room` among `workers`: FNV-1a of the name, modulo the worker count. A
/// fixed function (not a randomly seeded hasher), so every worker computes the same owner.
pub fn owner_of(room: &str, workers: usize) -> usize {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in room.as_bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    (h % workers.max(1) as u64) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_owner_is_stable_and_in_range() {
        for workers in 1..8 {
            for room in ["", "lobby", "a", "ß", "room-42"] {
                let w = owner_of(room, workers);
                assert!(w < workers);
                assert_eq!(w, owner_of(room, workers));
            }
        }
        // FNV-1a of "a" is 0xaf63dc4c8601ec8c (published test vector).
        assert_eq!(
            owner_of("a", 1 << 20),
            (0xaf63_dc4c_8601_ec8c_u64 % (1 << 20)) as usize
        );
    }

    #[test]
    fn rooms_spread_over_workers() {
        let mut counts = [0usize; 4];
        for i in 0..1000 {
            counts[owner_of(&format!("room-{i}"), 4)] += 1;
        }
        assert!(counts.iter().all(|&c| c > 150), "{counts:?}");
    }
}
