//! Webhook events: their kinds (the names `webhook_events` takes), what each carries, and the
//! JSON body of a batch (see `docs/webhooks.md`, which is the contract).
//!
//! Sans-IO: a worker builds an [`Event`] where the thing happened and hands it to the sender;
//! the sender numbers it and renders batches. It must never read a clock (the worker stamps
//! `time`) and never decide whether an event is wanted (that is [`EventSet`], asked by the
//! worker before it builds anything).

use std::io::Write;
use std::sync::Arc;

use bytes::Bytes;

use crate::envelope::ConnId;

/// What happened. The names are the ones `webhook_events` takes and the `type` of the event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum EventKind {
    /// A `/ws` session opened (after the upgrade and the welcome).
    Connect = 0,
    /// A `/ws` session ended, for any reason.
    Disconnect = 1,
    /// A join was accepted (the member is registered at the room's owner).
    Join = 2,
    /// A member left a room: it asked (`leave`) or its connection ended.
    Leave = 3,
    /// A message was published to a room (from `/ws` or the server API) and got its offset.
    Publish = 4,
    /// A message to a user expired from the inbox before any connection of the user
    /// acknowledged it (or, for one sent without `ack`, before the user connected).
    InboxExpired = 5,
}

impl EventKind {
    /// Every kind, in the order of the docs.
    pub const ALL: [EventKind; 6] = [
        EventKind::Connect,
        EventKind::Disconnect,
        EventKind::Join,
        EventKind::Leave,
        EventKind::Publish,
        EventKind::InboxExpired,
    ];

    /// Its name in `webhook_events` and in the event's `type`.
    pub fn name(self) -> &'static str {
        match self {
            EventKind::Connect => "connect",
            EventKind::Disconnect => "disconnect",
            EventKind::Join => "join",
            EventKind::Leave => "leave",
            EventKind::Publish => "publish",
            EventKind::InboxExpired => "inbox_expired",
        }
    }

    /// The kind named `name`.
    pub fn from_name(name: &str) -> Option<EventKind> {
        EventKind::ALL.into_iter().find(|k| k.name() == name)
    }
}

/// A set of kinds: one bit each. Asking it costs one AND, so the hooks ask it before building
/// anything.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EventSet(u8);

impl EventSet {
    /// The set of the kinds named in `names`; `Err(name)` for a name that is no kind.
    pub fn from_names<S: AsRef<str>>(names: &[S]) -> Result<EventSet, String> {
        let mut set = EventSet(0);
        for name in names {
            let kind =
                EventKind::from_name(name.as_ref()).ok_or_else(|| name.as_ref().to_owned())?;
            set.0 |= 1 << kind as u8;
        }
        Ok(set)
    }

    /// Whether `kind` is in the set.
    #[inline]
    pub fn has(self, kind: EventKind) -> bool {
        self.0 & (1 << kind as u8) != 0
    }
}

/// Why a member left a room (the `reason` of a `leave` event).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LeaveReason {
    /// The client sent `leave`.
    Left,
    /// Its connection ended.
    Disconnected,
}

/// One event, as the worker saw it. Fields a kind does not use are `None`.
#[derive(Clone, Debug)]
pub struct Event {
    /// What happened.
    pub kind: EventKind,
    /// Unix time in ms, when the worker saw it.
    pub time: u64,
    /// The worker that saw it.
    pub worker: u32,
    /// The connection (its id as clients see it); the server API's publishes carry
    /// [`crate::api::API_SENDER`], rendered as `"api"`.
    pub conn: Option<ConnId>,
    /// The connection's user (token `sub`), or the recipient of an inbox message.
    pub user: Option<Arc<str>>,
    /// The room.
    pub room: Option<Box<str>>,
    /// A publish's offset in its room.
    pub offset: Option<u64>,
    /// A publish's payload, verbatim JSON (a reference count on the published message).
    pub payload: Option<Bytes>,
    /// An inbox message's id (as its recipient saw it).
    pub msg_id: Option<Box<str>>,
    /// Times an expired inbox message had been delivered (0: never).
    pub deliveries: Option<u32>,
    /// A leave's reason.
    pub reason: Option<LeaveReason>,
}

impl Event {
    /// An event of `kind` with only its common fields set.
    pub fn new(kind: EventKind, time: u64, worker: u32) -> Event {
        Event {
            kind,
            time,
            worker,
            conn: None,
            user: None,
            room: None,
            offset: None,
            payload: None,
            msg_id: None,
            deliveries: None,
            reason: None,
        }
    }
}

fn string(out: &mut Vec<u8>, s: &str) {
    // serde_json escapes as RFC 8259 §7 requires; writing into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, s);
}

/// Renders `events` as one batch body: `{"events":[...]}`; event `i` gets the id
/// `<node>-<first_seq + i>`.
pub fn render_batch<'a>(
    node: &str,
    first_seq: u64,
    events: impl IntoIterator<Item = &'a Event>,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    out.extend_from_slice("{\"events\":[".as_bytes());
    for (i, e) in events.into_iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice("{\"id\":".as_bytes());
        string(&mut out, &format!("{node}-{}", first_seq + i as u64));
        out.extend_from_slice(",\"type\":\"".as_bytes());
        out.extend_from_slice(e.kind.name().as_bytes());
        let _ = write!(out, "\",\"time\":{},\"node\":", e.time);
        string(&mut out, node);
        let _ = write!(out, ",\"worker\":{}", e.worker);
        if let Some(conn) = e.conn {
            out.extend_from_slice(",\"conn\":".as_bytes());
            if conn == crate::api::API_SENDER {
                out.extend_from_slice("\"api\"".as_bytes());
            } else {
                string(&mut out, &conn.to_string());
            }
        }
        if e.kind != EventKind::InboxExpired || e.user.is_some() {
            out.extend_from_slice(",\"user\":".as_bytes());
            match &e.user {
                Some(u) => string(&mut out, u),
                None => out.extend_from_slice("null".as_bytes()),
            }
        }
        if let Some(room) = &e.room {
            out.extend_from_slice(",\"room\":".as_bytes());
            string(&mut out, room);
        }
        if let Some(reason) = e.reason {
            out.extend_from_slice(match reason {
                LeaveReason::Left => b",\"reason\":\"leave\"",
                LeaveReason::Disconnected => b",\"reason\":\"disconnect\"",
            });
        }
        if let Some(offset) = e.offset {
            let _ = write!(out, ",\"offset\":{offset}");
        }
        if let Some(msg_id) = &e.msg_id {
            out.extend_from_slice(",\"msg_id\":".as_bytes());
            string(&mut out, msg_id);
        }
        if let Some(n) = e.deliveries {
            let _ = write!(out, ",\"deliveries\":{n}");
        }
        if let Some(payload) = &e.payload {
            // Verbatim JSON: validated when it was published.
            out.extend_from_slice(",\"payload\":".as_bytes());
            out.extend_from_slice(payload);
        }
        out.push(b'}');
    }
    out.extend_from_slice("]}".as_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::table::ConnKey;
    use serde_json::{json, Value};

    #[test]
    fn event_names_round_trip_and_a_set_holds_exactly_its_kinds() {
        for kind in EventKind::ALL {
            assert_eq!(EventKind::from_name(kind.name()), Some(kind));
        }
        let set = EventSet::from_names(&["join", "inbox_expired"]).unwrap();
        assert!(set.has(EventKind::Join) && set.has(EventKind::InboxExpired));
        assert!(!set.has(EventKind::Publish) && !set.has(EventKind::Connect));
        assert_eq!(
            EventSet::from_names(&["join", "teleport"]),
            Err("teleport".to_owned())
        );
    }

    #[test]
    fn a_batch_is_json_with_ids_in_order_and_only_the_fields_of_each_kind() {
        let conn = ConnId {
            worker: 1,
            key: ConnKey::from_u64(7),
        };
        let mut publish = Event::new(EventKind::Publish, 1_700_000_000_123, 1);
        publish.conn = Some(conn);
        publish.user = Some("al\"ice".into());
        publish.room = Some("chat".into());
        publish.offset = Some(42);
        publish.payload = Some(Bytes::from_static(br#"{"n":[1,2]}"#));
        let mut leave = Event::new(EventKind::Leave, 5, 0);
        leave.conn = Some(crate::api::API_SENDER);
        leave.room = Some("r".into());
        leave.reason = Some(LeaveReason::Disconnected);
        let mut expired = Event::new(EventKind::InboxExpired, 6, 0);
        expired.user = Some("bob".into());
        expired.msg_id = Some("abc-1".into());
        expired.deliveries = Some(0);
        let body = render_batch("node-a", 10, [&publish, &leave, &expired]);
        let v: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            v,
            json!({"events": [
                {"id": "node-a-10", "type": "publish", "time": 1_700_000_000_123u64,
                 "node": "node-a", "worker": 1, "conn": conn.to_string(), "user": "al\"ice",
                 "room": "chat", "offset": 42, "payload": {"n": [1, 2]}},
                {"id": "node-a-11", "type": "leave", "time": 5, "node": "node-a", "worker": 0,
                 "conn": "api", "user": null, "room": "r", "reason": "disconnect"},
                {"id": "node-a-12", "type": "inbox_expired", "time": 6, "node": "node-a",
                 "worker": 0, "user": "bob", "msg_id": "abc-1", "deliveries": 0},
            ]})
        );
    }
}
