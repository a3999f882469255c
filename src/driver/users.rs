//! Messages to users, the driver side: `send` with `to_user`, `ack`, the users' live
//! connections and inboxes on their owner worker, redelivery on the worker's tick.
//!
//! Owns the glue between a connection's user commands, this worker's share of users
//! ([`crate::user`]: the users it owns, their live connections, their inboxes and message ids) and
//! the mesh. Every user has one owner worker ([`owner_of_user`]); everything about a user goes
//! there through the mesh, the owner's own included, so there is one path and one order per user:
//!
//! - a `/ws` session authenticated as a user registers its connection with the owner when it
//!   opens (after its welcome is queued) and removes it when it closes;
//! - a `send` with `to_user` goes to the owner, which assigns the message id and `ts`, keeps the
//!   message in the inbox when it must (with `ack`, or the user is offline), renders the frame
//!   **once** and sends the same `Bytes` to every connection of the user, on every worker;
//! - an `ack` goes to the owner, which drops the message and sends the sender its receipt;
//! - the owner's tick redelivers what is due and drops what expired.
//!
//! It never blocks or awaits, and never holds a `RefCell` borrow of its own state across a call
//! that could take it again (mesh sends do not come back here synchronously).

use std::cell::RefCell;
use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::rc::Rc;

use bytes::Bytes;

use crate::config::Config;
use crate::envelope::{render, ConnId, ErrorCode};
use crate::proto::conn::Connection;
use crate::user::inbox::{
    Backoff, Delivery, InboxLimits, InboxStore, MemoryInbox, Receipt, UserMessage,
};
use crate::user::{owner_of_user, MsgIds, Sessions};

use super::admission;
use super::connection::ConnShared;
use super::mesh::MeshMsg;
use super::worker::{millis, Worker};

/// The message of an `auth_disabled` reply to a `send` with `to_user`.
const AUTH_OFF: &str =
    "messages to users need authentication: this server runs with auth off, so no connection is a user";

/// The message of an `anonymous` reply to an `ack`.
const ANONYMOUS: &str =
    "anonymous connections cannot receive user-addressed messages, so there is \
     nothing to acknowledge; connect with a token whose sub names the user";

/// The message of an `unknown_message` reply.
const UNKNOWN: &str =
    "no unacknowledged message of this user has this id (acknowledged, expired, or never sent to it)";

/// This worker's share of users: the ones it owns.
pub struct Users {
    /// Live connections of the users this worker owns.
    sessions: RefCell<Sessions>,
    /// Their inboxes.
    inbox: RefCell<MemoryInbox>,
    /// The ids of the messages this worker accepts as an owner.
    ids: RefCell<MsgIds>,
    /// Scratch for the deliveries the inbox answers (reused).
    scratch: RefCell<Vec<Delivery>>,
    /// Whether the server authenticates at all (with `auth off` nobody is a user).
    auth_on: bool,
}

impl Users {
    /// Worker `worker`'s share (of `workers`), with bounds and backoff from `config`: each worker
    /// gets an even share of `inbox_max_total_bytes`.
    pub fn new(config: &Config, worker: usize, workers: usize) -> Users {
        let limits = InboxLimits {
            ttl_ms: millis(config.inbox_ttl),
            max_messages: config.inbox_max_messages,
            max_bytes: config.inbox_max_bytes,
            max_total_bytes: (config.inbox_max_total_bytes / workers.max(1))
                .max(config.inbox_max_bytes),
        };
        let backoff = Backoff {
            first_ms: millis(config.ack_timeout),
            factor: config.ack_backoff_factor,
            cap_ms: millis(config.ack_backoff_cap),
            max_attempts: config.ack_max_attempts,
        };
        Users {
            sessions: RefCell::new(Sessions::new()),
            inbox: RefCell::new(MemoryInbox::new(limits, backoff)),
            ids: RefCell::new(MsgIds::new(&process_epoch(), worker)),
            scratch: RefCell::new(Vec::new()),
            auth_on: config.security.auth != crate::security::AuthMode::Off,
        }
    }
}

/// A random epoch for this process's message ids (12 hex digits): `RandomState` is seeded from
/// the OS's random source, mixed with the time and the process id.
fn process_epoch() -> String {
    let mut h = RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    h.write_u32(std::process::id());
    format!("{:012x}", h.finish() >> 16)
}

fn owner(worker: &Worker, user: &str) -> usize {
    owner_of_user(user, worker.shared.stats.len())
}

/// A `/ws` session opened: an authenticated one registers with its user's owner.
pub fn on_open(worker: &Worker, conn: &ConnShared, me: ConnId) {
    if let Some(user) = admission::user(conn) {
        let to = owner(worker, &user);
        worker.app.send(to, MeshMsg::UserOnline { user, conn: me });
    }
}

/// A `/ws` session closed: an authenticated one leaves its user's live connections.
pub fn on_close(worker: &Worker, conn: &ConnShared, me: ConnId) {
    if let Some(user) = admission::user(conn) {
        let to = owner(worker, &user);
        worker.app.send(to, MeshMsg::UserOffline { user, conn: me });
    }
}

/// Queues an error reply on the sender's own machine.
fn refuse(
    worker: &Worker,
    machine: &mut Connection,
    id: Option<&str>,
    code: ErrorCode,
    message: &str,
) {
    let frame = render::reply_err(&mut worker.app.arena.borrow_mut(), id, code, message);
    super::app::queue(worker, machine, frame);
}

/// `send` with `to_user`: to the user's owner, or refused here when nobody can be a user.
#[allow(clippy::too_many_arguments)]
pub fn on_send(
    worker: &Worker,
    conn: &ConnShared,
    machine: &mut Connection,
    me: ConnId,
    user: &str,
    id: Option<&str>,
    payload: Bytes,
    ack: bool,
    receipt: bool,
) {
    if !worker.app.users.auth_on {
        return refuse(worker, machine, id, ErrorCode::AuthDisabled, AUTH_OFF);
    }
    let user_bytes = {
        let mut arena = worker.app.arena.borrow_mut();
        arena.extend_from_slice(user.as_bytes());
        arena.split().freeze()
    };
    worker.app.send(
        owner(worker, user),
        MeshMsg::UserSend {
            user: user_bytes,
            from: me,
            sender: admission::user(conn),
            payload,
            ack,
            receipt,
            id: id.map(Into::into),
        },
    );
}

/// `ack`: to the owner of the connection's user; anonymous connections have nothing to ack.
pub fn on_ack(
    worker: &Worker,
    conn: &ConnShared,
    machine: &mut Connection,
    me: ConnId,
    msg_id: &str,
) {
    let Some(user) = admission::user(conn) else {
        return refuse(
            worker,
            machine,
            Some(msg_id),
            ErrorCode::Anonymous,
            ANONYMOUS,
        );
    };
    worker.app.send(
        owner(worker, &user),
        MeshMsg::UserAck {
            user,
            msg_id: msg_id.into(),
            conn: me,
        },
    );
}

fn to_conn(worker: &Worker, conn: ConnId, frame: Bytes) {
    worker.app.send(
        conn.worker as usize,
        MeshMsg::ToConn {
            key: conn.key,
            frame,
        },
    );
}

/// Renders `m` once and sends the same frame to each of `conns`.
fn deliver(worker: &Worker, m: &UserMessage, redelivered: bool, conns: &[ConnId]) {
    if conns.is_empty() {
        return;
    }
    let frame = {
        let ids = worker.app.users.ids.borrow();
        render::user_message(
            &mut worker.app.arena.borrow_mut(),
            render::UserMessage {
                msg_id: ids.id(m.n),
                from: m.from,
                sender: m.sender.as_deref(),
                ts: m.ts,
                ack: m.ack,
                redelivered,
                payload: &m.payload,
            },
        )
    };
    if redelivered {
        worker.stats().user_redeliveries.add(1);
    }
    for &conn in conns {
        to_conn(worker, conn, frame.clone());
    }
}

/// Sends `message`'s sender its `delivered` receipt, if it asked for one.
fn send_receipt(worker: &Worker, user: &str, message: &UserMessage) {
    let Some(Receipt { to, id }) = &message.receipt else {
        return;
    };
    let frame = {
        let ids = worker.app.users.ids.borrow();
        render::delivered(
            &mut worker.app.arena.borrow_mut(),
            id.as_deref(),
            ids.id(message.n),
            user,
        )
    };
    to_conn(worker, *to, frame);
}

/// Mirrors the inbox's usage into the gauges.
fn gauges(worker: &Worker) {
    let usage = worker.app.users.inbox.borrow().usage();
    worker.stats().inbox_messages.set(usage.messages as u64);
    worker.stats().inbox_bytes.set(usage.bytes as u64);
}

/// Handles one mesh message about users (this worker owns the user).
pub fn on_mesh(worker: &Rc<Worker>, msg: MeshMsg) {
    let users = &worker.app.users;
    let now = worker.now();
    match msg {
        MeshMsg::UserOnline { user, conn } => {
            if !users.sessions.borrow_mut().connect(&user, conn) {
                return;
            }
            let mut scratch = users.scratch.take();
            users
                .inbox
                .borrow_mut()
                .on_connect(&user, now, &mut scratch);
            for delivery in &scratch {
                deliver(worker, &delivery.message, delivery.redelivered, &[conn]);
                if !delivery.message.ack {
                    // Kept only until a connection received it: this one did.
                    send_receipt(worker, &user, &delivery.message);
                }
            }
            scratch.clear();
            *users.scratch.borrow_mut() = scratch;
            gauges(worker);
        }
        MeshMsg::UserOffline { user, conn } => {
            users.sessions.borrow_mut().disconnect(&user, conn);
        }
        MeshMsg::UserSend {
            user,
            from,
            sender,
            payload,
            ack,
            receipt,
            id,
        } => {
            // Put in the mesh from a `&str` by `on_send`.
            let user = std::str::from_utf8(&user).expect("user ids in the mesh are UTF-8");
            let receipt_id = id.clone();
            send_at_owner(
                worker,
                user,
                from,
                sender,
                payload,
                ack,
                receipt,
                receipt_id,
                |result| {
                    let frame = match result {
                        Ok(n) => {
                            let ids = users.ids.borrow();
                            render::reply_ok_msg(
                                &mut worker.app.arena.borrow_mut(),
                                id.as_deref(),
                                ids.id(n),
                            )
                        }
                        Err(full) => render::reply_err(
                            &mut worker.app.arena.borrow_mut(),
                            id.as_deref(),
                            ErrorCode::InboxFull,
                            full,
                        ),
                    };
                    to_conn(worker, from, frame);
                },
            );
        }
        MeshMsg::UserAck { user, msg_id, conn } => {
            let n = users.ids.borrow().parse(&msg_id);
            let acked = n.and_then(|n| users.inbox.borrow_mut().ack(&user, n));
            let reply = {
                let mut arena = worker.app.arena.borrow_mut();
                match &acked {
                    Some(_) => render::reply_ok(&mut arena, Some(&msg_id)),
                    None => render::reply_err(
                        &mut arena,
                        Some(&msg_id),
                        ErrorCode::UnknownMessage,
                        UNKNOWN,
                    ),
                }
            };
            to_conn(worker, conn, reply);
            if let Some(message) = acked {
                send_receipt(worker, &user, &message);
                gauges(worker);
            }
        }
        other => unreachable!("not a user message: {other:?}"),
    }
}

/// The owner's tick: redelivers what is due to every connection of its user, drops what expired.
pub fn on_tick(worker: &Worker, now: u64) {
    let users = &worker.app.users;
    if users.inbox.borrow().usage().messages == 0 {
        return;
    }
    let mut scratch = users.scratch.take();
    let expired = {
        let sessions = users.sessions.borrow();
        users.inbox.borrow_mut().poll(
            now,
            &|u| sessions.is_online(u),
            &mut scratch,
            &mut |user, message, deliveries| {
                super::hooks::inbox_expired(worker, user, deliveries, || {
                    users.ids.borrow().id(message.n).to_string().into()
                });
            },
        )
    };
    worker.stats().inbox_expired.add(expired as u64);
    for delivery in &scratch {
        let sessions = users.sessions.borrow();
        let conns = sessions.conns(&delivery.user);
        deliver(worker, &delivery.message, delivery.redelivered, conns);
    }
    scratch.clear();
    *users.scratch.borrow_mut() = scratch;
    gauges(worker);
}

/// A message to `user` at its owner, from a `/ws` connection or the server API alike: assigns
/// its id, keeps it in the inbox when it must, and delivers it to every live connection of the
/// user. `answer` gets the message's number (or the inbox's refusal) before any delivery; with
/// `receipt`, the sender gets a `delivered` receipt carrying its `id`.
#[allow(clippy::too_many_arguments)]
pub(super) fn send_at_owner(
    worker: &Worker,
    user: &str,
    from: ConnId,
    sender: Option<std::sync::Arc<str>>,
    payload: Bytes,
    ack: bool,
    receipt: bool,
    id: Option<Box<str>>,
    answer: impl FnOnce(Result<u64, crate::user::inbox::InboxFull>),
) {
    let users = &worker.app.users;
    let now = worker.now();
    let n = users.ids.borrow_mut().assign();
    let sessions = users.sessions.borrow();
    let conns = sessions.conns(user);
    let online = !conns.is_empty();
    let message = UserMessage {
        n,
        from,
        sender,
        ts: super::app::unix_now(worker),
        payload,
        ack,
        receipt: receipt.then_some(Receipt { to: from, id }),
    };
    if ack || !online {
        // Kept: its own copy of the payload, so the inbox holds (and is charged for)
        // exactly the payload and not the whole envelope it arrived in.
        let kept = UserMessage {
            payload: Bytes::copy_from_slice(&message.payload),
            ..message.clone()
        };
        let pushed = users.inbox.borrow_mut().push(user, kept, online, now);
        if let Err(full) = pushed {
            worker.stats().inbox_refused[full.index()].add(1);
            return answer(Err(full));
        }
    }
    worker.stats().user_messages.add(1);
    answer(Ok(n));
    if online {
        deliver(worker, &message, false, conns);
        if receipt && !ack {
            send_receipt(worker, user, &message);
        }
    }
    drop(sessions);
    gauges(worker);
}

/// `POST /api/send` at the user's owner: the same path as a `/ws` send; `reply` gets the
/// message id, or the inbox's refusal.
pub(super) fn api_send(
    worker: &Worker,
    user: &str,
    payload: Bytes,
    ack: bool,
    reply: tokio::sync::oneshot::Sender<Result<String, String>>,
) {
    let users = &worker.app.users;
    send_at_owner(
        worker,
        user,
        crate::api::API_SENDER,
        None,
        payload,
        ack,
        false,
        None,
        |result| {
            let _ = reply.send(match result {
                Ok(n) => Ok(users.ids.borrow().id(n).to_string()),
                Err(full) => Err(full.to_string()),
            });
        },
    );
}

/// The live connections of `user`, at its owner.
pub(super) fn conns_of(worker: &Worker, user: &str) -> Vec<ConnId> {
    worker.app.users.sessions.borrow().conns(user).to_vec()
}

/// Whether messages to users are possible (auth is on).
pub(super) fn auth_on(worker: &Worker) -> bool {
    worker.app.users.auth_on
}

/// The owner worker of `user`.
pub(super) fn owner_of(worker: &Worker, user: &str) -> usize {
    owner(worker, user)
}
