//! The driver's side of the application backend ([`crate::backend`]): the points where webhook
//! events are raised, and the join that waits for the backend's permission.
//!
//! Owns the one-line hooks the rest of the driver calls where things happen (a session opens or
//! ends, a member joins or leaves, a message is published, an inbox message expires) and the
//! detour a join takes through the authorizer. With webhooks off a hook is one branch on an
//! `Option`; with an event not selected, one more AND: nothing is built, nothing allocated. It
//! never waits: events and questions are `try_send`s, and the authorizer's answer comes back as a
//! mesh message ([`on_authorized`]).

use std::rc::Rc;
use std::sync::Arc;

use bytes::Bytes;

use crate::backend::authorize::{JoinAnswer, JoinAsk, PendingJoin, Verdict};
use crate::backend::event::{Event, EventKind, LeaveReason};
use crate::envelope::{render, ConnId, ErrorCode};
use crate::room::MemberInfo;
use crate::table::ConnKey;

use super::admission;
use super::connection::ConnShared;
use super::worker::Worker;

/// The message of an `unavailable` reply to a join the backend could not decide (fail closed).
const AUTHORIZE_UNAVAILABLE: &str =
    "the join authorization backend did not answer; the join was refused (retry)";

/// Builds and hands over an event of `kind` when webhooks send it.
#[inline]
fn emit(worker: &Worker, kind: EventKind, fill: impl FnOnce(&mut Event)) {
    let Some(hooks) = &worker.shared.backend.webhooks else {
        return;
    };
    if !hooks.wants(kind) {
        return;
    }
    let mut event = Event::new(kind, super::app::unix_now(worker), worker.id as u32);
    fill(&mut event);
    hooks.emit(event);
}

fn me(worker: &Worker, key: ConnKey) -> ConnId {
    ConnId {
        worker: worker.id as u32,
        key,
    }
}

/// A `/ws` session opened (`connect`) or ended (`disconnect`).
pub fn session(worker: &Worker, key: ConnKey, conn: &ConnShared, open: bool) {
    let kind = if open {
        EventKind::Connect
    } else {
        EventKind::Disconnect
    };
    emit(worker, kind, |e| {
        e.conn = Some(me(worker, key));
        e.user = admission::user(conn);
    });
}

/// At a room's owner: `conn` joined (`join`) or left (`leave`; `asked`: it sent `leave`).
pub fn membership(
    worker: &Worker,
    room: &str,
    conn: ConnId,
    info: &MemberInfo,
    joined: bool,
    asked: bool,
) {
    let kind = if joined {
        EventKind::Join
    } else {
        EventKind::Leave
    };
    emit(worker, kind, |e| {
        e.conn = Some(conn);
        e.user = info.user.as_deref().map(Arc::from);
        e.room = Some(room.into());
        if !joined {
            e.reason = Some(if asked {
                LeaveReason::Left
            } else {
                LeaveReason::Disconnected
            });
        }
    });
}

/// At a room's owner: a message got `offset` (`publish`).
pub fn published(
    worker: &Worker,
    room: &str,
    from: ConnId,
    user: Option<&Arc<str>>,
    offset: u64,
    payload: &Bytes,
) {
    emit(worker, EventKind::Publish, |e| {
        e.conn = Some(from);
        e.user = user.cloned();
        e.room = Some(room.into());
        e.offset = Some(offset);
        e.payload = Some(payload.clone());
    });
}

/// At a user's owner: a message to `user` expired unacknowledged (`inbox_expired`); `msg_id`
/// renders its id only when the event is sent.
pub fn inbox_expired(
    worker: &Worker,
    user: &Arc<str>,
    deliveries: u32,
    msg_id: impl FnOnce() -> Box<str>,
) {
    emit(worker, EventKind::InboxExpired, |e| {
        e.user = Some(user.clone());
        e.msg_id = Some(msg_id());
        e.deliveries = Some(deliveries);
    });
}

/// With `authorize_join_url`: hands the join to the authorizer and returns `None` (the answer
/// comes back as [`on_authorized`]). Without it: gives the join back to go ahead now.
pub fn authorize_join(
    worker: &Worker,
    conn: &ConnShared,
    key: ConnKey,
    room: &str,
    join: PendingJoin,
) -> Option<PendingJoin> {
    let Some(authorizer) = &worker.shared.backend.authorizer else {
        return Some(join);
    };
    let ask = JoinAsk {
        user: admission::user(conn),
        room: room.into(),
        conn: me(worker, key),
        join,
    };
    if let Err(answer) = authorizer.ask(ask) {
        // Saturated: the failure policy answered at once. Through this worker's own inbox, like
        // every answer: the joiner's machine is borrowed by the caller right now.
        worker
            .app
            .send(worker.id, super::mesh::MeshMsg::JoinAuthorized(answer));
    }
    None
}

/// The authorizer's answer, at the joiner's worker: the join goes ahead, or is refused with
/// `forbidden` (the backend's reason) or `unavailable` (fail closed). Dropped when the
/// connection went away meanwhile.
pub fn on_authorized(worker: &Rc<Worker>, answer: JoinAnswer) {
    let JoinAnswer { ask, verdict } = answer;
    let key = ask.conn.key;
    let conn = worker.table.borrow().get(key).cloned();
    let Some(conn) = conn.filter(|c| super::app::in_session(c, key)) else {
        return;
    };
    let id = ask.join.id.clone();
    let (code, message): (ErrorCode, Box<str>) = match verdict {
        Verdict::Allow => match super::app::start_join(worker, &conn, key, &ask.room, ask.join) {
            Ok(()) => return,
            Err(e) => (e.code(), e.to_string().into()),
        },
        Verdict::Deny(reason) if reason.is_empty() => {
            (ErrorCode::Forbidden, "the backend refused this join".into())
        }
        Verdict::Deny(reason) => (ErrorCode::Forbidden, reason),
        Verdict::Unavailable => (ErrorCode::Unavailable, AUTHORIZE_UNAVAILABLE.into()),
    };
    let frame = render::reply_err(
        &mut worker.app.arena.borrow_mut(),
        id.as_deref(),
        code,
        &*message,
    );
    super::app::push(worker, key, frame);
}
