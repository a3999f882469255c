//! Messages between workers (and from the control thread to workers).
//!
//! Owns the vocabulary cores use to talk to each other. Workers never share mutable state: anything
//! one worker needs from another travels as a [`MeshMsg`] through that worker's inbox (a tokio
//! unbounded channel: lock-free on the sending side, drained by the owning worker's runtime).
//! Messages from one worker to another arrive in the order they were sent (FIFO per pair), which
//! is what room ordering rests on (see [`crate::room`]). Frames travel as [`Bytes`]: the mesh
//! carries a reference count, never a copy.

use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::mpsc;

use crate::envelope::ConnId;
use crate::room::stream::Position;
use crate::room::{Audience, MemberInfo, RoomFrame};
use crate::table::ConnKey;

/// A client's resume point, carried to a room's owner.
#[derive(Debug)]
pub struct Resume {
    /// The last offset the client saw.
    pub offset: u64,
    /// The epoch it saw it in, as the client wrote it.
    pub epoch: Box<str>,
}

/// What a clustered join read from Redis (see [`crate::cluster::bridge`]).
#[derive(Debug)]
pub struct ClusterOpen {
    /// The room's position when the joiner starts receiving live messages.
    pub at: Position,
    /// For a resume: whether every missed message is in `replay`.
    pub recovered: Option<bool>,
    /// The frames the joiner missed, in order.
    pub replay: Vec<Bytes>,
}

/// A message delivered to one worker.
#[derive(Debug)]
pub enum MeshMsg {
    /// Begin the graceful drain: refuse new sessions, close every connection with 1001, exit when
    /// all are gone or the drain timeout passes.
    Shutdown,
    /// To a room's owner: `conn` asks to join `room` (its worker already recorded it as pending).
    Join {
        /// The room.
        room: Box<str>,
        /// Who joins.
        conn: ConnId,
        /// Its user and display name, for presence and events.
        info: MemberInfo,
        /// The client's id, for the reply.
        id: Option<Box<str>>,
        /// It also receives the room's `joined`/`left` events (the join's `presence`).
        watch: bool,
        /// Resume after this point: replay what the joiner missed, then live.
        since: Option<Resume>,
    },
    /// To a room's owner: `conn` left `room` (its worker already stopped delivering to it).
    Leave {
        /// The room.
        room: Box<str>,
        /// Who leaves.
        conn: ConnId,
        /// `Some(id)` when the client asked (it gets a reply); `None` on disconnect.
        reply: Option<Option<Box<str>>>,
    },
    /// To a room's owner: publish `payload` (verbatim JSON) to `room`.
    Publish {
        /// The room name (UTF-8), in a shared buffer.
        room: Bytes,
        /// The publisher.
        from: ConnId,
        /// The publisher's user id (its token's `sub`), shared, when it has one.
        user: Option<Arc<str>>,
        /// The payload JSON exactly as the publisher wrote it.
        payload: Bytes,
        /// Whether the publisher gets its own message.
        echo: bool,
        /// The client's id, for the reply (sent by the owner once the offset is assigned).
        id: Option<Box<str>>,
        /// The client's message id: a retry with the same one is answered, not delivered.
        msg_id: Option<Box<str>>,
    },
    /// To a room's owner: `conn` asks for the room's history.
    History {
        /// The room.
        room: Box<str>,
        /// Who asks.
        conn: ConnId,
        /// The client's id, for the answer.
        id: Option<Box<str>>,
        /// The last `limit` messages (capped by `max_recovery_messages`).
        limit: Option<u64>,
        /// Or those after this point, all or nothing.
        since: Option<Resume>,
    },
    /// To a room's owner: `conn` asks who is in `room`.
    Presence {
        /// The room.
        room: Box<str>,
        /// Who asks.
        conn: ConnId,
        /// The client's id, for the reply.
        id: Option<Box<str>>,
    },
    /// From a room's owner to the joiner's worker: the join was accepted (`ok`) or refused; `reply`
    /// is the rendered reply frame for the client. Sent before any frame of the room that follows
    /// the join, so the joiner misses nothing after its acceptance.
    JoinResult {
        /// The room.
        room: Box<str>,
        /// The joiner on this worker.
        key: ConnKey,
        /// Accepted?
        ok: bool,
        /// It receives the room's `joined`/`left` events (as asked in the join).
        watch: bool,
        /// The reply frame.
        reply: Bytes,
        /// The frames of the messages the joiner missed (a resume), queued right after the
        /// reply and before any live frame of the room.
        replay: Vec<Bytes>,
    },
    /// From a room's owner to every worker with members of `audience`: one frame for each of
    /// those local members of `room`, except `skip` (a publisher that asked for no echo).
    Deliver {
        /// The room name (UTF-8), in a shared buffer.
        room: Bytes,
        /// Every member (a message) or only the watchers (a `joined`/`left` event).
        audience: Audience,
        /// The encoded frame (plain, and compressed when it is), shared by every recipient on every
        /// worker.
        frame: RoomFrame,
        /// A local connection not to deliver to.
        skip: Option<ConnKey>,
    },
    /// Clustered, from the bridge to a room's owner: a join the owner registered was opened in
    /// Redis (`Some`), or Redis is unreachable (`None`: the owner undoes the join and answers
    /// `unavailable`).
    ClusterJoined {
        /// The room.
        room: Box<str>,
        /// Who joins.
        conn: ConnId,
        /// Its user and name, for the `joined` event.
        info: MemberInfo,
        /// The client's id.
        id: Option<Box<str>>,
        /// It watches presence.
        watch: bool,
        /// What Redis answered.
        result: Option<ClusterOpen>,
    },
    /// Clustered, from the bridge to a room's owner: a message of the room (from any node),
    /// rendered once for this node, in offset order. The owner fans it out as a local publish.
    ClusterDeliver {
        /// The room name (UTF-8).
        room: Bytes,
        /// The encoded frame.
        frame: Bytes,
        /// The publisher, when it is on this node and asked for no echo.
        skip: Option<ConnId>,
    },
    /// A rendered frame for one connection of this worker (a reply decided elsewhere).
    ToConn {
        /// The connection.
        key: ConnKey,
        /// The frame.
        frame: Bytes,
    },
    /// A direct message for connection `to` of this worker; the sender gets a reply.
    Direct {
        /// The recipient on this worker.
        to: ConnKey,
        /// The sender (on any worker).
        from: ConnId,
        /// The rendered `direct` frame.
        frame: Bytes,
        /// The sender's id, for its reply.
        id: Option<Box<str>>,
    },
    /// To a user's owner: `conn` is a `/ws` connection authenticated as `user` (sent once, when
    /// its session opens, after its welcome).
    UserOnline {
        /// The user (the token's `sub`).
        user: Arc<str>,
        /// Its new connection.
        conn: ConnId,
    },
    /// To a user's owner: connection `conn` of `user` closed (sent once, after `UserOnline`).
    UserOffline {
        /// The user.
        user: Arc<str>,
        /// The closed connection.
        conn: ConnId,
    },
    /// To a user's owner: a message for every connection of `user`.
    UserSend {
        /// The recipient user (UTF-8) in a shared buffer: no allocation per message.
        user: Bytes,
        /// The sender.
        from: ConnId,
        /// The sender's user, when authenticated.
        sender: Option<Arc<str>>,
        /// The payload JSON exactly as the sender wrote it (a view of its message).
        payload: Bytes,
        /// Keep it until a connection of the user acknowledges it.
        ack: bool,
        /// The sender wants a `delivered` receipt.
        receipt: bool,
        /// The sender's id, for its reply and receipt.
        id: Option<Box<str>>,
    },
    /// To a user's owner: `conn`, a connection of `user`, acknowledged message `msg_id`.
    UserAck {
        /// The acknowledging connection's user.
        user: Arc<str>,
        /// The message id as the client wrote it.
        msg_id: Box<str>,
        /// The acknowledging connection (it gets the reply).
        conn: ConnId,
    },
    /// A server API call for this worker (see [`super::api::Call`]).
    Api(super::api::Call),
    /// From the join authorizer to the joiner's worker: the backend's answer to a join
    /// ([`crate::backend::authorize`]).
    JoinAuthorized(Box<crate::backend::authorize::JoinAnswer>),
}

/// The sending side of one worker's inbox.
pub type Outbox = mpsc::UnboundedSender<MeshMsg>;

/// The receiving side, owned by the worker, with a sender to every worker (itself included) for
/// the messages it originates.
#[derive(Debug)]
pub struct Inbox {
    /// This worker's messages.
    pub rx: mpsc::UnboundedReceiver<MeshMsg>,
    /// Outbox of worker `i` at index `i`.
    pub peers: Vec<Outbox>,
    /// The cluster bridge, when the server runs clustered.
    pub cluster: Option<crate::cluster::bridge::Link>,
}

/// One inbox per worker: the senders (cloneable, for every other party) and the receivers (one per
/// worker, moved into its thread).
pub fn mesh(workers: usize) -> (Vec<Outbox>, Vec<Inbox>) {
    let (outboxes, receivers): (Vec<Outbox>, Vec<_>) =
        (0..workers).map(|_| mpsc::unbounded_channel()).unzip();
    let inboxes = receivers
        .into_iter()
        .map(|rx| Inbox {
            rx,
            peers: outboxes.clone(),
            cluster: None,
        })
        .collect();
    (outboxes, inboxes)
}
