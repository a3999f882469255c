//! The `/ws` application: envelopes in, room operations through the mesh, frames out.
//!
//! Owns the glue between a connection's messages, this worker's room registries
//! ([`LocalRooms`], [`OwnedRooms`]) and the mesh. Every decision about the wire format is the
//! envelope module's, every decision about membership the room module's; this module routes:
//!
//! - a command from a local connection goes to the room's owner worker (itself included, through
//!   its own inbox, so there is one path and one order for every room);
//! - the owner assigns `offset` (through its [`RoomStore`]) and `ts`, answers the publisher with
//!   the offset, renders the frame **once**, keeps it in the room's history (the same `Bytes`)
//!   and sends it to each worker with members; each worker queues a clone on every local member
//!   ([`Connection::send_encoded`]) and wakes it. A slow member only fills its own queue; the
//!   machine's backpressure policy applies to it alone.
//! - a join with `since` is answered by the owner in one step: the member is registered and the
//!   frames it missed are read from history together, and travel in the join's result, ahead of
//!   every later frame of the room on the same FIFO channel: nothing missed, nothing twice.
//!
//! Messages to users (`send` with `to_user`, `ack`) and users' sessions are [`super::users`]'s:
//! this module only hands it the commands and the mesh messages.
//!
//! It never blocks, never awaits, and never holds a `RefCell` borrow across a call that could take
//! the same one: a connection's own machine is passed in by `process()`, and other connections are
//! only reached from the inbox task, never from inside `process()`.

use std::cell::{Cell, RefCell, RefMut};
use std::rc::Rc;
use std::sync::atomic::Ordering;

use bytes::{Bytes, BytesMut};

use crate::envelope::{
    render, Command, ConnId, EnvelopeError, EnvelopeLimits, ErrorCode, Parser, Rejected,
};
use crate::proto::conn::{Connection, SendError};
use crate::proto::error::CLOSE_POLICY_VIOLATION;
use crate::proto::MessageKind;
use crate::room::dedup::{Dedup, DedupKey, Sender};
use crate::room::stream::{
    Entry, EpochSource, HistoryPolicy, HistoryRules, MemoryStore, Recovery, RoomStore, Since,
};
use crate::room::{owner_of, Audience, LocalRooms, MemberInfo, OwnedRooms, RoomFrame, RoomLimits};
use crate::table::ConnKey;

use super::admission;
use super::connection::ConnShared;
use super::hooks;
use super::mesh::{ClusterOpen, MeshMsg, Outbox, Resume};
use super::users::{self, Users};
use super::worker::millis;
use super::worker::Worker;
use crate::backend::authorize::PendingJoin;
use crate::cluster::bridge::{Asker, BridgeCmd, Link, UNAVAILABLE};

/// The close reason after `max_envelope_errors` malformed envelopes in a row.
pub const ABUSE_REASON: &str = crate::proto::error::REASON_MALFORMED_ENVELOPES;

/// The message of a `forbidden` reply to a join or publish outside the token's `rooms` claim.
const FORBIDDEN_ROOM: &str = "the token's rooms claim does not include this room";

/// The message of a `rate_limited` reply.
const RATE_LIMITED: &str =
    "over the connection's message rate; this message was dropped (staying over closes with 1008)";

/// The worker's parser, borrowed for one message (the command borrows its buffers); gives
/// outsized buffers back ([`Parser::trim`]) when the borrow ends, so one huge envelope does not
/// keep its memory until the next one.
struct TrimOnDrop<'a>(RefMut<'a, Parser>);

impl std::ops::Deref for TrimOnDrop<'_> {
    type Target = Parser;
    fn deref(&self) -> &Parser {
        &self.0
    }
}

impl std::ops::DerefMut for TrimOnDrop<'_> {
    fn deref_mut(&mut self) -> &mut Parser {
        &mut self.0
    }
}

impl Drop for TrimOnDrop<'_> {
    fn drop(&mut self) {
        self.0.trim();
    }
}

/// Per-connection state of a `/ws` session, kept in [`ConnShared`].
#[derive(Debug, Default)]
pub struct Session {
    /// The connection's key, set when the `/ws` session opens; `None` for other endpoints.
    key: Cell<Option<ConnKey>>,
    /// Malformed envelopes in a row. Invariant: reset to 0 by every well-formed envelope.
    errors: Cell<u32>,
}

/// This worker's share of the application.
pub struct App {
    /// Parser with its reused scratch.
    parser: RefCell<Parser>,
    /// Arena server frames are rendered into and split off (see [`render::Frame`]).
    pub(super) arena: RefCell<BytesMut>,
    /// Room → members on this worker.
    local: RefCell<LocalRooms>,
    /// Rooms this worker owns.
    owned: RefCell<OwnedRooms>,
    /// The streams (offset, epoch, history) of the rooms this worker owns.
    store: RefCell<MemoryStore>,
    /// Recent publish `msg_id`s of the rooms this worker owns.
    dedup: RefCell<Dedup>,
    /// Most messages one resume or history answer carries.
    max_recovery: usize,
    /// Inbox of every worker (this one included), by worker id.
    peers: Vec<Outbox>,
    limits: RoomLimits,
    max_envelope_errors: u32,
    /// Unix time in ms at the worker's epoch: `ts` = this + the worker's clock.
    unix_at_epoch: u64,
    /// The users this worker owns: their live connections and inboxes ([`users`]).
    pub(super) users: Users,
    /// Clustered: the bridge to Redis, which then holds the streams of the rooms this worker
    /// owns (offsets, history, `msg_id`s) instead of `store` and `dedup`.
    cluster: Option<Link>,
}

impl App {
    /// The application state of worker `id`.
    pub fn new(
        config: &crate::config::Config,
        id: usize,
        peers: Vec<Outbox>,
        cluster: Option<Link>,
    ) -> App {
        let unix_at_epoch = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        let workers = peers.len().max(1);
        let rules = HistoryRules::new(
            HistoryPolicy {
                size: config.history_size,
                ttl: millis(config.history_ttl),
            },
            &config.history_rooms,
        );
        // Epochs: randomness of this process (std's per-process random hash keys) and the worker
        // id, so no restart and no other worker hands out an epoch seen before.
        let seed = {
            use std::hash::{BuildHasher, Hasher};
            let mut h = std::collections::hash_map::RandomState::new().build_hasher();
            h.write_usize(id);
            h.finish()
        };
        let store = MemoryStore::new(
            rules,
            config.history_max_bytes.div_ceil(workers),
            EpochSource::new(seed),
            0,
        );
        App {
            parser: RefCell::new(Parser::new(envelope_limits(config))),
            arena: RefCell::new(BytesMut::new()),
            local: RefCell::new(LocalRooms::new()),
            owned: RefCell::new(OwnedRooms::new(peers.len())),
            store: RefCell::new(store),
            dedup: RefCell::new(Dedup::new(
                millis(config.dedup_window),
                config.dedup_max_entries.div_ceil(workers),
            )),
            max_recovery: config.max_recovery_messages,
            limits: RoomLimits {
                max_rooms_per_connection: config.max_rooms_per_connection,
                max_members_per_room: config.max_room_members,
                publish_requires_join: config.publish_requires_join,
            },
            max_envelope_errors: config.max_envelope_errors,
            users: Users::new(config, id, peers.len()),
            peers,
            unix_at_epoch,
            cluster,
        }
    }

    pub(super) fn send(&self, worker: usize, msg: MeshMsg) {
        // A worker that already exited (shutdown) drops the message: its connections are gone.
        let _ = self.peers[worker].send(msg);
    }

    fn owner(&self, room: &str) -> usize {
        owner_of(room, self.peers.len())
    }
}

/// The envelope limits `config` sets.
pub fn envelope_limits(config: &crate::config::Config) -> EnvelopeLimits {
    EnvelopeLimits {
        max_room_name_len: config.max_room_name_len,
        max_payload_len: config.max_payload_size,
    }
}

pub(super) fn unix_now(worker: &Worker) -> u64 {
    worker.app.unix_at_epoch + worker.refresh_now()
}

fn me(worker: &Worker, key: ConnKey) -> ConnId {
    ConnId {
        worker: worker.id as u32,
        key,
    }
}

/// Starts a `/ws` session: remembers the key and queues the welcome.
pub fn on_open(worker: &Worker, key: ConnKey, conn: &ConnShared) {
    conn.session.key.set(Some(key));
    let user = admission::user(conn);
    let frame = render::welcome(
        &mut worker.app.arena.borrow_mut(),
        me(worker, key),
        user.as_deref(),
    );
    if let Some(mut machine) = conn.machine(&worker.conn_limits) {
        queue(worker, &mut machine, frame);
    }
    // After the welcome: whatever the user's owner sends back follows it.
    users::on_open(worker, conn, me(worker, key));
    hooks::session(worker, key, conn, true);
}

/// Ends a `/ws` session: leaves every room (O(rooms of the connection)) and tells their owners.
pub fn on_close(worker: &Worker, key: ConnKey, conn: &ConnShared) {
    if conn.session.key.take() != Some(key) {
        return;
    }
    let app = &worker.app;
    let rooms = app.local.borrow_mut().leave_all(key);
    for room in rooms {
        let owner = app.owner(&room);
        app.send(
            owner,
            MeshMsg::Leave {
                room,
                conn: me(worker, key),
                reply: None,
            },
        );
    }
    users::on_close(worker, conn, me(worker, key));
    hooks::session(worker, key, conn, false);
}

pub(super) fn queue(worker: &Worker, machine: &mut Connection, frame: Bytes) -> bool {
    counted(worker, machine.send_encoded(frame))
}

/// Counts the outcome of queueing one frame; `true` when it was queued.
fn counted(worker: &Worker, sent: Result<(), SendError>) -> bool {
    match sent {
        Ok(()) => {
            worker.stats().messages_out.add(1);
            true
        }
        Err(SendError::Dropped | SendError::SlowConsumer) => {
            worker.stats().slow_consumers.add(1);
            false
        }
        Err(SendError::Closed) => false,
    }
}

/// Handles one data message of a `/ws` connection.
pub fn on_message(
    worker: &Worker,
    conn: &ConnShared,
    machine: &mut Connection,
    kind: MessageKind,
    message: BytesMut,
) {
    let Some(key) = conn.session.key.get() else {
        return;
    };
    let app = &worker.app;
    let message = message.freeze();
    let mut parser = TrimOnDrop(app.parser.borrow_mut());
    let parsed = match kind {
        MessageKind::Binary => Err(Rejected {
            id: None,
            error: EnvelopeError::Binary,
        }),
        MessageKind::Text => parser.parse(&message),
    };
    let command = match parsed {
        Ok(command) => {
            conn.session.errors.set(0);
            command
        }
        Err(Rejected { id, error }) => {
            let reply = render::reply_err(&mut app.arena.borrow_mut(), id, error.code(), error);
            queue(worker, machine, reply);
            let errors = conn.session.errors.get() + 1;
            conn.session.errors.set(errors);
            if errors >= app.max_envelope_errors {
                machine.close(CLOSE_POLICY_VIOLATION, ABUSE_REASON);
            }
            return;
        }
    };
    let me = me(worker, key);
    let reply = |machine: &mut Connection,
                 id: Option<&str>,
                 result: Result<(), (ErrorCode, &dyn std::fmt::Display)>| {
        let mut arena = app.arena.borrow_mut();
        let frame = match result {
            Ok(()) => render::reply_ok(&mut arena, id),
            Err((code, message)) => render::reply_err(&mut arena, id, code, message),
        };
        drop(arena);
        queue(worker, machine, frame);
    };
    match command {
        Command::Join {
            room,
            id,
            name,
            presence,
            since,
        } => {
            if !admission::may_use_room(conn, room) {
                return reply(machine, id, Err((ErrorCode::Forbidden, &FORBIDDEN_ROOM)));
            }
            let join = PendingJoin {
                id: id.map(Into::into),
                name: name.map(Into::into),
                watch: presence,
                since: since.map(resume),
            };
            // With `authorize_join_url` the join waits for the backend's answer.
            let Some(join) = hooks::authorize_join(worker, conn, key, room, join) else {
                return;
            };
            if let Err(e) = start_join(worker, conn, key, room, join) {
                reply(machine, id, Err((e.code(), &e)));
            }
        }
        Command::Leave { room, id } => {
            if let Err(e) = app.local.borrow_mut().leave(key, room) {
                return reply(machine, id, Err((e.code(), &e)));
            }
            app.send(
                app.owner(room),
                MeshMsg::Leave {
                    room: room.into(),
                    conn: me,
                    reply: Some(id.map(Into::into)),
                },
            );
        }
        Command::Publish {
            room,
            id,
            payload,
            echo,
            msg_id,
        } => {
            if !admission::may_use_room(conn, room) {
                return reply(machine, id, Err((ErrorCode::Forbidden, &FORBIDDEN_ROOM)));
            }
            if app.limits.publish_requires_join && !app.local.borrow().is_member(key, room) {
                let e = crate::room::RoomError::NotJoined;
                return reply(machine, id, Err((e.code(), &e)));
            }
            let room_bytes = {
                let mut arena = app.arena.borrow_mut();
                arena.extend_from_slice(room.as_bytes());
                arena.split().freeze()
            };
            app.send(
                app.owner(room),
                MeshMsg::Publish {
                    room: room_bytes,
                    from: me,
                    user: admission::user(conn),
                    // A view of the received message: no copy until the owner renders the frame.
                    payload: message.slice(payload),
                    echo,
                    id: id.map(Into::into),
                    msg_id: msg_id.map(Into::into),
                },
            );
            // The owner replies once it has assigned the offset.
        }
        Command::History {
            room,
            id,
            limit,
            since,
        } => {
            if !admission::may_use_room(conn, room) {
                return reply(machine, id, Err((ErrorCode::Forbidden, &FORBIDDEN_ROOM)));
            }
            app.send(
                app.owner(room),
                MeshMsg::History {
                    room: room.into(),
                    conn: me,
                    id: id.map(Into::into),
                    limit,
                    since: since.map(resume),
                },
            );
        }
        Command::Send { to, id, payload } => {
            let Some(target) = ConnId::parse(to).filter(|t| (t.worker as usize) < app.peers.len())
            else {
                return reply(
                    machine,
                    id,
                    Err((ErrorCode::NoSuchConnection, &"no connection has this id")),
                );
            };
            let frame = render::direct(
                &mut app.arena.borrow_mut(),
                me,
                admission::user(conn).as_deref(),
                unix_now(worker),
                &message[payload],
            );
            app.send(
                target.worker as usize,
                MeshMsg::Direct {
                    to: target.key,
                    from: me,
                    frame,
                    id: id.map(Into::into),
                },
            );
        }
        Command::SendUser {
            user,
            id,
            payload,
            ack,
            receipt,
        } => users::on_send(
            worker,
            conn,
            machine,
            me,
            user,
            id,
            // A view of the received message: the owner copies it only if it keeps it.
            message.slice(payload),
            ack,
            receipt,
        ),
        Command::Ack { id } => users::on_ack(worker, conn, machine, me, id),
        Command::Presence { room, id } => {
            app.send(
                app.owner(room),
                MeshMsg::Presence {
                    room: room.into(),
                    conn: me,
                    id: id.map(Into::into),
                },
            );
        }
        Command::Refresh { token, id } => match admission::refresh(worker, conn, token) {
            Ok(earlier) => {
                if let Some(at) = earlier {
                    // The new token expires before the armed timer would look: re-arm.
                    worker.arm(key, &conn.timer, at);
                }
                reply(machine, id, Ok(()));
            }
            Err(e) => {
                // The security module names the code; every name it uses is an `ErrorCode`.
                let code = ErrorCode::from_wire(e.reply_code()).unwrap_or(ErrorCode::Unauthorized);
                reply(machine, id, Err((code, &e)));
            }
        },
        Command::Stats { id } => {
            let shared = &worker.shared;
            let (messages_in, messages_out) = shared.stats.iter().fold((0, 0), |(i, o), s| {
                (i + s.messages_in.get(), o + s.messages_out.get())
            });
            let frame = render::stats(
                &mut app.arena.borrow_mut(),
                id,
                shared.open_connections.load(Ordering::Relaxed) as u64,
                messages_in,
                messages_out,
            );
            queue(worker, machine, frame);
        }
    }
}

/// Registers a join of `room` on this worker (pending until the owner answers) and asks the
/// owner; refused here when the connection is already a member or in too many rooms.
pub(super) fn start_join(
    worker: &Worker,
    conn: &ConnShared,
    key: ConnKey,
    room: &str,
    join: PendingJoin,
) -> Result<(), crate::room::RoomError> {
    let app = &worker.app;
    app.local.borrow_mut().begin_join(key, room, &app.limits)?;
    app.send(
        app.owner(room),
        MeshMsg::Join {
            room: room.into(),
            conn: me(worker, key),
            info: MemberInfo {
                user: admission::user(conn).as_deref().map(Into::into),
                name: join.name,
            },
            id: join.id,
            watch: join.watch,
            since: join.since,
        },
    );
    Ok(())
}

/// Whether `key` is `conn`'s open `/ws` session.
pub(super) fn in_session(conn: &ConnShared, key: ConnKey) -> bool {
    conn.session.key.get() == Some(key)
}

fn resume(since: Since<'_>) -> Resume {
    Resume {
        offset: since.offset,
        epoch: since.epoch.into(),
    }
}

fn since(resume: &Resume) -> Since<'_> {
    Since {
        offset: resume.offset,
        epoch: &resume.epoch,
    }
}

/// The owner worker's periodic work: history TTLs, forgotten `msg_id`s, their gauges.
pub fn on_tick(worker: &Worker, now: u64) {
    let app = &worker.app;
    let mut store = app.store.borrow_mut();
    store.expire(now);
    let mut dedup = app.dedup.borrow_mut();
    dedup.expire(now);
    let stats = worker.stats();
    let s = store.stats();
    stats.history_bytes.set(s.bytes as u64);
    stats.history_evicted.set(s.evicted);
    stats.dedup_evicted.set(dedup.evicted());
}

/// Answers a message refused for going over the connection's message rate: an error reply
/// `rate_limited`, carrying the envelope's `id` when it has a readable one. The message is not
/// acted on.
pub fn on_rate_limited(
    worker: &Worker,
    machine: &mut Connection,
    kind: MessageKind,
    message: &[u8],
) {
    let app = &worker.app;
    let mut parser = TrimOnDrop(app.parser.borrow_mut());
    let id = match kind {
        MessageKind::Binary => None,
        MessageKind::Text => match parser.parse(message) {
            Ok(command) => command.id(),
            Err(Rejected { id, .. }) => id,
        },
    };
    let frame = render::reply_err(
        &mut app.arena.borrow_mut(),
        id,
        ErrorCode::RateLimited,
        RATE_LIMITED,
    );
    drop(parser);
    queue(worker, machine, frame);
}

/// Queues `frame` on local connection `key` and wakes it. `false` when there is no such `/ws`
/// connection (or it no longer takes data).
pub(super) fn push(worker: &Rc<Worker>, key: ConnKey, frame: Bytes) -> bool {
    let conn = worker.table.borrow().get(key).cloned();
    let Some(conn) = conn else {
        return false;
    };
    if conn.session.key.get() != Some(key) {
        return false;
    }
    let queued = match conn.machine(&worker.conn_limits) {
        Some(mut machine) => queue(worker, &mut machine, frame),
        None => false,
    };
    // Wake even when refused: a slow consumer's machine has queued its close frame.
    worker.wake(key, &conn);
    queued
}

/// [`push`] for a room frame: the recipient gets the encoding it negotiated.
fn push_room(worker: &Rc<Worker>, key: ConnKey, frame: &RoomFrame) -> bool {
    let conn = worker.table.borrow().get(key).cloned();
    let Some(conn) = conn else {
        return false;
    };
    if conn.session.key.get() != Some(key) {
        return false;
    }
    let queued = match conn.machine(&worker.conn_limits) {
        Some(mut machine) => counted(worker, worker.compression.deliver(&mut machine, frame)),
        None => false,
    };
    // Wake even when refused: a slow consumer's machine has queued its close frame.
    worker.wake(key, &conn);
    queued
}

fn room_str(room: &Bytes) -> &str {
    // Room names are put in the mesh from `&str`s by this module.
    std::str::from_utf8(room).expect("room names in the mesh are UTF-8")
}

fn room_bytes(worker: &Worker, room: &str) -> Bytes {
    let mut arena = worker.app.arena.borrow_mut();
    arena.extend_from_slice(room.as_bytes());
    arena.split().freeze()
}

/// Sends a `joined` (`joined: true`) or `left` event about `conn` to every worker with watchers
/// of `room`: O(workers), and nothing at all (not even a render) when nobody watches.
fn announce(worker: &Worker, joined: bool, room: &str, conn: ConnId, info: &MemberInfo) {
    let app = &worker.app;
    let owned = app.owned.borrow();
    let mut workers = owned.workers_of(room, Audience::Watchers).peekable();
    if workers.peek().is_none() {
        return;
    }
    let frame = render::membership(
        &mut app.arena.borrow_mut(),
        joined,
        room,
        conn,
        info.user.as_deref(),
        info.name.as_deref(),
    );
    let room_shared = room_bytes(worker, room);
    let frame = RoomFrame::plain(frame);
    for w in workers {
        app.send(
            w,
            MeshMsg::Deliver {
                room: room_shared.clone(),
                audience: Audience::Watchers,
                frame: frame.clone(),
                skip: None,
            },
        );
    }
}

/// Handles one mesh message about rooms or connections (everything but `Shutdown`).
pub fn on_mesh(worker: &Rc<Worker>, msg: MeshMsg) {
    let app = &worker.app;
    match msg {
        MeshMsg::Shutdown => {}
        msg @ (MeshMsg::UserOnline { .. }
        | MeshMsg::UserOffline { .. }
        | MeshMsg::UserSend { .. }
        | MeshMsg::UserAck { .. }) => users::on_mesh(worker, msg),
        MeshMsg::Join {
            room,
            conn,
            info,
            id,
            watch,
            since: resume,
        } => {
            let joined = app
                .owned
                .borrow_mut()
                .join(&room, conn, info.clone(), watch, &app.limits);
            let now = worker.now();
            let mut replay = Vec::new();
            if let (Ok(_), Some(link)) = (&joined, &app.cluster) {
                // Clustered: the position and what the joiner missed are read in Redis; the
                // result comes back as `ClusterJoined`.
                let cmd = BridgeCmd::Join {
                    room: room.clone(),
                    conn,
                    info,
                    id,
                    watch,
                    since: resume,
                };
                if let Err(BridgeCmd::Join { room, id, .. }) = link.try_send(cmd).map_err(|c| *c) {
                    // The bridge never saw this join: undo it here, with no `Leave` for the bridge.
                    app.owned.borrow_mut().leave(&room, conn).ok();
                    link.status.count_unavailable();
                    let reply = render::reply_err(
                        &mut app.arena.borrow_mut(),
                        id.as_deref(),
                        ErrorCode::Unavailable,
                        UNAVAILABLE,
                    );
                    app.send(
                        conn.worker as usize,
                        MeshMsg::JoinResult {
                            room,
                            key: conn.key,
                            ok: false,
                            watch,
                            reply,
                            replay: Vec::new(),
                        },
                    );
                }
                return;
            }
            let (ok, reply) = match joined {
                Ok(_) => {
                    // Registering the member and reading what it missed happen in this one step:
                    // every later message of the room is fanned out after this result.
                    let mut store = app.store.borrow_mut();
                    let at = store.open(&room, now);
                    let recovered = resume.as_ref().map(|r| {
                        store.replay(&room, since(r), app.max_recovery, now, &mut replay)
                            == Recovery::Recovered
                    });
                    let mut arena = app.arena.borrow_mut();
                    (
                        true,
                        render::reply_joined(&mut arena, id.as_deref(), at, recovered),
                    )
                }
                Err(e) => (
                    false,
                    render::reply_err(&mut app.arena.borrow_mut(), id.as_deref(), e.code(), e),
                ),
            };
            finish_join(worker, &room, conn, &info, watch, ok, reply, replay);
        }
        MeshMsg::Leave { room, conn, reply } => {
            let asked = reply.is_some();
            let left = app.owned.borrow_mut().leave(&room, conn);
            if let (Ok(_), Some(link)) = (&left, &app.cluster) {
                let _ = link.try_send(BridgeCmd::Leave { room: room.clone() });
            } else if left.is_ok() && !app.owned.borrow().contains(&room) {
                app.store.borrow_mut().release(&room, worker.now());
            }
            if let Some(id) = reply {
                let mut arena = app.arena.borrow_mut();
                let frame = match &left {
                    Ok(_) => render::reply_ok(&mut arena, id.as_deref()),
                    Err(e) => render::reply_err(&mut arena, id.as_deref(), e.code(), e),
                };
                drop(arena);
                app.send(
                    conn.worker as usize,
                    MeshMsg::ToConn {
                        key: conn.key,
                        frame,
                    },
                );
            }
            if let Ok(gone) = left {
                hooks::membership(worker, &room, conn, &gone.info, false, asked);
                announce(worker, false, &room, conn, &gone.info);
            }
        }
        MeshMsg::Publish {
            room,
            from,
            user,
            payload,
            echo,
            id,
            msg_id,
        } => {
            let ts = unix_now(worker);
            if let Some(link) = &app.cluster {
                // Clustered: Redis assigns the offset; the bridge answers the publisher and the
                // message comes back to every node with members through its subscription.
                let cmd = BridgeCmd::Publish {
                    room,
                    from,
                    user,
                    payload,
                    echo,
                    asker: Asker::Conn { conn: from, id },
                    msg_id,
                    ts,
                };
                if let Err(BridgeCmd::Publish { asker, .. }) = link.try_send(cmd).map_err(|c| *c) {
                    unavailable(worker, link, asker);
                }
                return;
            }
            publish_at_owner(worker, room, from, user, payload, echo, msg_id, |at| {
                let frame = render::reply_published(&mut app.arena.borrow_mut(), id.as_deref(), at);
                app.send(
                    from.worker as usize,
                    MeshMsg::ToConn {
                        key: from.key,
                        frame,
                    },
                );
            });
        }
        MeshMsg::Api(call) => super::api::on_mesh(worker, call),
        MeshMsg::JoinAuthorized(answer) => hooks::on_authorized(worker, *answer),
        MeshMsg::Presence { room, conn, id } => {
            let frame = presence_at_owner(worker, &room, id.as_deref());
            app.send(
                conn.worker as usize,
                MeshMsg::ToConn {
                    key: conn.key,
                    frame,
                },
            );
        }
        MeshMsg::JoinResult {
            room,
            key,
            ok,
            watch,
            reply,
            replay,
        } => {
            // `false` when refused, or when the connection left (or went away) meanwhile; its
            // leave follows ours to the owner, which undoes the join.
            let member = ok && app.local.borrow_mut().confirm_join(key, &room, watch);
            if !ok {
                app.local.borrow_mut().abort_join(key, &room);
            }
            push(worker, key, reply);
            if member {
                // Before any live frame of the room: those follow this result on the channel.
                for frame in replay {
                    push(worker, key, frame);
                }
            }
        }
        MeshMsg::History {
            room,
            conn,
            id,
            limit,
            since: resume,
        } => {
            if let Some(link) = &app.cluster {
                let cmd = BridgeCmd::History {
                    room,
                    asker: Asker::Conn { conn, id },
                    limit,
                    since: resume,
                };
                if let Err(BridgeCmd::History { asker, .. }) = link.try_send(cmd).map_err(|c| *c) {
                    unavailable(worker, link, asker);
                }
                return;
            }
            let frame = history_at_owner(worker, &room, id.as_deref(), limit, resume.as_ref());
            app.send(
                conn.worker as usize,
                MeshMsg::ToConn {
                    key: conn.key,
                    frame,
                },
            );
        }
        MeshMsg::Deliver {
            room,
            audience,
            frame,
            skip,
        } => {
            let local = app.local.borrow();
            local.fan_out(room_str(&room), audience, &frame, skip, |key, frame| {
                push_room(worker, key, &frame);
            });
        }
        MeshMsg::ToConn { key, frame } => {
            push(worker, key, frame);
        }
        MeshMsg::ClusterJoined {
            room,
            conn,
            info,
            id,
            watch,
            result,
        } => cluster_joined(worker, room, conn, info, id, watch, result),
        MeshMsg::ClusterDeliver { room, frame, skip } => {
            // Encoded (and compressed, when it is) once on this node; each member worker gets the
            // same buffers.
            let frame = worker.compression.room_frame(frame);
            for w in app
                .owned
                .borrow()
                .workers_of(room_str(&room), Audience::Members)
            {
                let skip = skip.filter(|s| s.worker as usize == w).map(|s| s.key);
                app.send(
                    w,
                    MeshMsg::Deliver {
                        room: room.clone(),
                        audience: Audience::Members,
                        frame: frame.clone(),
                        skip,
                    },
                );
            }
        }
        MeshMsg::Direct {
            to,
            from,
            frame,
            id,
        } => {
            let delivered = push(worker, to, frame);
            let mut arena = app.arena.borrow_mut();
            let reply = if delivered {
                render::reply_ok(&mut arena, id.as_deref())
            } else {
                render::reply_err(
                    &mut arena,
                    id.as_deref(),
                    ErrorCode::NoSuchConnection,
                    "no connection has this id",
                )
            };
            drop(arena);
            app.send(
                from.worker as usize,
                MeshMsg::ToConn {
                    key: from.key,
                    frame: reply,
                },
            );
        }
    }
}

/// Answers `asker` with `unavailable` (the cluster's Redis is unreachable or the bridge is
/// full), counted.
pub(super) fn unavailable<T>(worker: &Worker, link: &Link, asker: Asker<T>) {
    link.status.count_unavailable();
    let frame = asker.unavailable(&mut worker.app.arena.borrow_mut());
    if let Some((conn, frame)) = frame {
        worker.app.send(
            conn.worker as usize,
            MeshMsg::ToConn {
                key: conn.key,
                frame,
            },
        );
    }
}

/// This worker's link to the cluster's Redis, when the node is clustered.
pub(super) fn cluster(worker: &Worker) -> Option<&Link> {
    worker.app.cluster.as_ref()
}

/// Clustered: finishes a join the bridge opened in Redis (`Some`), or undoes it (`None`).
/// The result goes to the joiner's worker ahead of every later frame of the room, which the
/// bridge hands to this owner on the same FIFO channel (see [`crate::cluster::bridge`]).
fn cluster_joined(
    worker: &Worker,
    room: Box<str>,
    conn: ConnId,
    info: MemberInfo,
    id: Option<Box<str>>,
    watch: bool,
    result: Option<ClusterOpen>,
) {
    let app = &worker.app;
    let (ok, reply, replay) = match result {
        Some(open) => (
            true,
            render::reply_joined(
                &mut app.arena.borrow_mut(),
                id.as_deref(),
                open.at,
                open.recovered,
            ),
            open.replay,
        ),
        None => {
            // The bridge counted this member: it is told of the undo, unless the joiner's own
            // leave already did.
            if app.owned.borrow_mut().leave(&room, conn).is_ok() {
                if let Some(link) = &app.cluster {
                    let _ = link.try_send(BridgeCmd::Leave { room: room.clone() });
                }
            }
            let reply = render::reply_err(
                &mut app.arena.borrow_mut(),
                id.as_deref(),
                ErrorCode::Unavailable,
                UNAVAILABLE,
            );
            (false, reply, Vec::new())
        }
    };
    finish_join(worker, &room, conn, &info, watch, ok, reply, replay);
}

/// Sends a join's result to the joiner's worker and, when it was accepted, announces the member.
/// The result goes out before the `joined` event and any later message of the room, on the same
/// FIFO channel: the joiner is a local member before they arrive.
#[allow(clippy::too_many_arguments)]
fn finish_join(
    worker: &Worker,
    room: &str,
    conn: ConnId,
    info: &MemberInfo,
    watch: bool,
    ok: bool,
    reply: Bytes,
    replay: Vec<Bytes>,
) {
    worker.app.send(
        conn.worker as usize,
        MeshMsg::JoinResult {
            room: room.into(),
            key: conn.key,
            ok,
            watch,
            reply,
            replay,
        },
    );
    if ok {
        hooks::membership(worker, room, conn, info, true, false);
        announce(worker, true, room, conn, info);
    }
}

/// A publish at the room's owner, from a `/ws` connection or the server API alike: deduplicates
/// by `msg_id`, assigns the offset, renders the frame once, keeps it in history and fans it out.
/// `answer` gets the position (or the original one for a retry, or `None` when no offset was
/// taken) before any frame of the message is sent, so a publisher reads its offset first.
#[allow(clippy::too_many_arguments)]
pub(super) fn publish_at_owner(
    worker: &Worker,
    room: Bytes,
    from: ConnId,
    user: Option<std::sync::Arc<str>>,
    payload: Bytes,
    echo: bool,
    msg_id: Option<Box<str>>,
    answer: impl FnOnce(Option<crate::room::stream::Position>),
) {
    let app = &worker.app;
    let name = room_str(&room);
    let ts = unix_now(worker);
    let now = worker.now();
    let key = msg_id.as_deref().map(|m| {
        let sender = user.clone().map_or(Sender::Conn(from), Sender::User);
        DedupKey::new(name, sender, m)
    });
    if let Some(seen) = key.as_ref().and_then(|k| app.dedup.borrow().seen(k, now)) {
        // A retry: the original answer, nothing delivered again.
        worker.stats().publishes_deduplicated.add(1);
        return answer(seen);
    }
    let mut store = app.store.borrow_mut();
    let keep = store.keeps_history(name);
    if !keep && !app.owned.borrow().contains(name) {
        // Nobody to deliver to and nothing to keep: no offset is taken.
        drop(store);
        answer(None);
        if let Some(key) = key {
            app.dedup.borrow_mut().remember(key, None, now);
        }
        return;
    }
    let at = store.append(name, now);
    let frame = if keep {
        // A kept frame gets an allocation of its own, so holding it pins no other frame.
        let mut own =
            BytesMut::with_capacity(render::message_capacity(name, user.as_deref(), &payload));
        render::message_by(
            &mut own,
            name,
            at.offset,
            from,
            user.as_deref(),
            ts,
            &payload,
        )
    } else {
        render::message_by(
            &mut app.arena.borrow_mut(),
            name,
            at.offset,
            from,
            user.as_deref(),
            ts,
            &payload,
        )
    };
    store.record(
        name,
        Entry {
            offset: at.offset,
            frame: frame.clone(),
        },
        now,
    );
    drop(store);
    if let Some(key) = key {
        app.dedup.borrow_mut().remember(key, Some(at), now);
    }
    // The reply goes before the frame on the same channel: the publisher reads its offset,
    // then (with echo) the message.
    answer(Some(at));
    hooks::published(worker, name, from, user.as_ref(), at.offset, &payload);
    // Encoded once (and compressed once, when it is); each member worker gets the same buffers
    // (reference counts only).
    let frame = worker.compression.room_frame(frame);
    for w in app.owned.borrow().workers_of(name, Audience::Members) {
        let skip = (!echo && from.worker as usize == w).then_some(from.key);
        app.send(
            w,
            MeshMsg::Deliver {
                room: room.clone(),
                audience: Audience::Members,
                frame: frame.clone(),
                skip,
            },
        );
    }
}

/// The `presence` frame of `room`, at its owner (for a `/ws` client or the server API).
pub(super) fn presence_at_owner(worker: &Worker, room: &str, id: Option<&str>) -> Bytes {
    let app = &worker.app;
    let owned = app.owned.borrow();
    let members = owned.members(room);
    let count = members.len();
    render::presence(
        &mut app.arena.borrow_mut(),
        id,
        room,
        count,
        members.map(|(conn, info)| render::Member {
            conn,
            user: info.user.as_deref(),
            name: info.name.as_deref(),
        }),
    )
}

/// The `history` frame of `room`, at its owner: after `resume` (all or nothing), or the last
/// `limit` messages, at most `max_recovery_messages` either way.
pub(super) fn history_at_owner(
    worker: &Worker,
    room: &str,
    id: Option<&str>,
    limit: Option<u64>,
    resume: Option<&Resume>,
) -> Bytes {
    let app = &worker.app;
    let store = app.store.borrow();
    let now = worker.now();
    let mut frames = Vec::new();
    let recovered = match resume {
        Some(r) => Some(
            store.replay(room, since(r), app.max_recovery, now, &mut frames) == Recovery::Recovered,
        ),
        None => {
            let n = limit.map_or(app.max_recovery, |l| {
                usize::try_from(l)
                    .unwrap_or(usize::MAX)
                    .min(app.max_recovery)
            });
            store.last(room, n, now, &mut frames);
            None
        }
    };
    render::history(
        &mut app.arena.borrow_mut(),
        id,
        room,
        store.position(room),
        recovered,
        &frames,
    )
}

/// The rooms this worker owns whose name starts with `prefix`, with their member counts.
pub(super) fn room_counts(worker: &Worker, prefix: &str) -> Vec<(Box<str>, usize)> {
    worker
        .app
        .owned
        .borrow()
        .counts(prefix)
        .map(|(name, n)| (name.into(), n))
        .collect()
}
