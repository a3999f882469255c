//! The JSON envelope of `GET /ws`: client text messages in, typed commands out; server envelopes
//! rendered straight into WebSocket frames.
//!
//! Owns the wire format described in `docs/protocol.md`: parsing ([`Parser::parse`], simd-json tape
//! over a per-worker scratch copy, strings borrowed from it), the stable error codes
//! ([`ErrorCode`]), connection ids ([`ConnId`]) and the renderers ([`render`]) that write a server
//! frame header plus JSON text into an arena and split it off as one [`Bytes`].
//!
//! It must never do I/O, read a clock (`ts` is passed in) or re-serialise a client's payload: a
//! payload is located as a byte range of the original message and copied verbatim. Every string the
//! server writes is JSON-escaped. Steady state, parsing allocates nothing (scratch, simd-json
//! buffers and tape are reused) and rendering allocates only when the arena runs out of room.

use std::fmt::{self, Write as _};
use std::ops::Range;

use bytes::{BufMut, Bytes, BytesMut};

use crate::proto::{FrameHeader, OpCode, MAX_HEADER_LEN};
use crate::room::stream::{Position, Since};
use crate::table::ConnKey;

/// The only protocol version: a client envelope may carry `"v":1` (or omit it); any other value
/// is [`ErrorCode::BadVersion`].
pub const VERSION: u64 = 1;

/// The subprotocol naming this wire format. `/ws` always speaks it (besides any configured
/// `subprotocols`) and selects it when a client offers it, which is how a browser brings a token
/// in `Sec-WebSocket-Protocol`: `new WebSocket(url, ["ringcast.v1", "bearer." + jwt])` (see
/// `docs/security.md`).
pub const SUBPROTOCOL: &str = "ringcast.v1";

/// Longest `id` a client may attach (it is echoed in the reply).
pub const MAX_ID_LEN: usize = 128;

/// Longest display `name` a client may give when joining.
pub const MAX_NAME_LEN: usize = 64;

/// Longest `msg_id` a client may attach to a publish.
pub const MAX_MSG_ID_LEN: usize = 64;
/// Longest user id a `send` may address with `to_user` (a JWT `sub` of more is not addressable).
pub const MAX_USER_LEN: usize = 256;

/// The largest header a server data frame needs: 2 bytes + a 64-bit length (no mask).
const SERVER_HEADER_MAX: usize = 10;

/// Bytes the arena grows by when it runs out: many small replies share one allocation.
pub const ARENA_CHUNK: usize = 16 * 1024;

/// Deepest nesting of arrays and objects a client envelope may have, the envelope object itself
/// counting as one level (so a payload may nest 1023 deep). RFC 8259 §9: "An implementation may
/// set limits on the maximum depth of nesting." Deeper: `bad_json` "nesting deeper than 1024
/// levels". It bounds the parser's stack, not its time (that is the message size limit's job).
pub const MAX_DEPTH: usize = 1024;

/// Room a `/ws` message has beside its payload: the envelope's own fields at their limits,
/// escaped (`type`, `v`, `echo`, `presence`, an `id` of [`MAX_ID_LEN`], a `name` of
/// [`MAX_NAME_LEN`], a room name of up to 1024 bytes, a `to`, a `refresh` token), and a few
/// fields a client adds for itself. A `/ws` message larger than `max_payload_size` plus this is
/// failed with 1009 while it arrives (see [`max_message_len`]): `/echo`'s 16 MiB is far more than
/// an envelope needs, and a big envelope of tiny values is the parser's worst case.
pub const ENVELOPE_ROOM: usize = 16 * 1024;

/// The largest `/ws` message the server takes with these limits: the payload limit plus
/// [`ENVELOPE_ROOM`].
pub fn max_message_len(limits: &EnvelopeLimits) -> usize {
    limits.max_payload_len.saturating_add(ENVELOPE_ROOM)
}

/// What the parser's reusable buffers may keep between messages, estimated in bytes (see
/// [`Parser::retained_bytes`]). An envelope with a 64 KiB string payload stays under it, so
/// steady traffic never reallocates; one made of tens of thousands of tiny values (whose tape and
/// structural indexes cost many times its size) goes over, and its buffers are given back once
/// it has been handled.
pub const RETAINED_BYTES: usize = 256 * 1024;

/// A connection id unique within one server: `worker:index.generation` (`0:12.3`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId {
    /// The worker that owns the connection.
    pub worker: u32,
    /// Its key in that worker's table.
    pub key: ConnKey,
}

impl fmt::Display for ConnId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.worker, self.key)
    }
}

impl ConnId {
    /// Parses `worker:index.generation`; `None` for anything else (no sign, no spaces, decimal).
    pub fn parse(text: &str) -> Option<ConnId> {
        let (worker, rest) = text.split_once(':')?;
        let (index, generation) = rest.split_once('.')?;
        let num = |s: &str| -> Option<u32> {
            if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            s.parse().ok()
        };
        let key = ConnKey::from_u64((u64::from(num(generation)?) << 32) | u64::from(num(index)?));
        Some(ConnId {
            worker: num(worker)?,
            key,
        })
    }
}

/// The stable error codes of `{"type":"reply","ok":false,"error":{"code":…}}`. Their spelling
/// never changes; `docs/protocol.md` lists each with its meaning.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// Not JSON, not an object, or a duplicated key.
    BadJson,
    /// `"v"` present and not `1`.
    BadVersion,
    /// `"type"` not one of the commands.
    UnknownType,
    /// A field the command requires is absent.
    MissingField,
    /// A field has the wrong JSON type, or an empty or over-long value.
    BadField,
    /// A binary frame on `/ws`: envelopes are text.
    BinaryMessage,
    /// A room name longer than the configured limit.
    RoomNameTooLong,
    /// A payload larger than the configured limit.
    PayloadTooLarge,
    /// Leaving (or, when configured, publishing to) a room the connection has not joined.
    NotJoined,
    /// Refused by policy: the token's `rooms` claim does not cover the room, or a `refresh`
    /// carries another user's token.
    Forbidden,
    /// Over the connection's message rate (`message_rate`, `message_bytes_rate`); the message
    /// was dropped. Staying over closes the connection with 1008.
    RateLimited,
    /// A direct `send` to a connection that does not exist.
    NoSuchConnection,
    /// Joining one room more than the per-connection limit allows.
    TooManyRooms,
    /// Joining a room that has reached its member limit.
    RoomFull,
    /// Joining a room the connection is already in (or is joining).
    AlreadyJoined,
    /// A `refresh` whose token does not verify (bad signature, malformed, not yet valid).
    Unauthorized,
    /// A `refresh` whose token has already expired.
    TokenExpired,
    /// A `refresh` on a server (or connection) without authentication; a `send` with `to_user`
    /// on a server without authentication (no connection can be a user).
    AuthDisabled,
    /// A `send` with `to_user` whose user's inbox (or the server's inbox budget) is full: the
    /// message was refused.
    InboxFull,
    /// An `ack` naming no unacknowledged message of this user (acknowledged already, expired,
    /// never sent to this user, or from an earlier run).
    UnknownMessage,
    /// An `ack` from an anonymous connection: only connections authenticated as a user receive
    /// user-addressed messages.
    Anonymous,
    /// Clustered (`cluster`): the cluster's Redis is unreachable (or the bridge to it is
    /// saturated), so a publish, join or history request cannot be served without risking
    /// offsets that collide later. Nothing was done; retry.
    Unavailable,
}

impl ErrorCode {
    /// Every code, in documentation order.
    pub const ALL: [ErrorCode; 22] = [
        ErrorCode::BadJson,
        ErrorCode::BadVersion,
        ErrorCode::UnknownType,
        ErrorCode::MissingField,
        ErrorCode::BadField,
        ErrorCode::BinaryMessage,
        ErrorCode::RoomNameTooLong,
        ErrorCode::PayloadTooLarge,
        ErrorCode::NotJoined,
        ErrorCode::Forbidden,
        ErrorCode::RateLimited,
        ErrorCode::NoSuchConnection,
        ErrorCode::TooManyRooms,
        ErrorCode::RoomFull,
        ErrorCode::AlreadyJoined,
        ErrorCode::Unauthorized,
        ErrorCode::TokenExpired,
        ErrorCode::AuthDisabled,
        ErrorCode::InboxFull,
        ErrorCode::UnknownMessage,
        ErrorCode::Anonymous,
        ErrorCode::Unavailable,
    ];

    /// The wire spelling (`"not_joined"`).
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::BadJson => "bad_json",
            ErrorCode::BadVersion => "bad_version",
            ErrorCode::UnknownType => "unknown_type",
            ErrorCode::MissingField => "missing_field",
            ErrorCode::BadField => "bad_field",
            ErrorCode::BinaryMessage => "binary_message",
            ErrorCode::RoomNameTooLong => "room_name_too_long",
            ErrorCode::PayloadTooLarge => "payload_too_large",
            ErrorCode::NotJoined => "not_joined",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::NoSuchConnection => "no_such_connection",
            ErrorCode::TooManyRooms => "too_many_rooms",
            ErrorCode::RoomFull => "room_full",
            ErrorCode::AlreadyJoined => "already_joined",
            ErrorCode::Unauthorized => "unauthorized",
            ErrorCode::TokenExpired => "token_expired",
            ErrorCode::AuthDisabled => "auth_disabled",
            ErrorCode::InboxFull => "inbox_full",
            ErrorCode::UnknownMessage => "unknown_message",
            ErrorCode::Anonymous => "anonymous",
            ErrorCode::Unavailable => "unavailable",
        }
    }

    /// The code spelt `wire` (the inverse of [`ErrorCode::as_str`]).
    pub fn from_wire(wire: &str) -> Option<ErrorCode> {
        ErrorCode::ALL.into_iter().find(|c| c.as_str() == wire)
    }

    /// Whether the code means the envelope itself was malformed (these count towards closing a
    /// connection with 1008 for sustained abuse; refusals of well-formed requests do not).
    pub fn is_malformed(self) -> bool {
        matches!(
            self,
            ErrorCode::BadJson
                | ErrorCode::BadVersion
                | ErrorCode::UnknownType
                | ErrorCode::MissingField
                | ErrorCode::BadField
                | ErrorCode::BinaryMessage
                | ErrorCode::RoomNameTooLong
                | ErrorCode::PayloadTooLarge
        )
    }
}

/// Why a client envelope was refused before reaching any room. One variant per violation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EnvelopeError {
    /// simd-json rejected the text.
    #[error("not valid JSON")]
    NotJson,
    /// Valid JSON, but not an object.
    #[error("an envelope is a JSON object")]
    NotAnObject,
    /// The same known key twice (RFC 8259 §4: "The names within an object SHOULD be unique").
    #[error("key `{0}` appears twice")]
    DuplicateKey(&'static str),
    /// `"v"` is not 1.
    #[error("unsupported version (this server speaks \"v\":1)")]
    BadVersion,
    /// No `"type"`.
    #[error("missing field `type`")]
    MissingType,
    /// A `"type"` this server does not know.
    #[error(
        "unknown type (expected join, leave, publish, send, ack, presence, history, stats or \
         refresh)"
    )]
    UnknownType,
    /// A required field is absent.
    #[error("missing field `{0}`")]
    MissingField(&'static str),
    /// A field of the wrong JSON type.
    #[error("field `{field}` must be {expected}")]
    WrongType {
        /// The field.
        field: &'static str,
        /// What it must be, in words.
        expected: &'static str,
    },
    /// An empty room name.
    #[error("field `room` must not be empty")]
    EmptyRoom,
    /// An empty `token` in a `refresh`.
    #[error("field `token` must not be empty")]
    EmptyToken,
    /// An `id` longer than [`MAX_ID_LEN`].
    #[error("field `id` is longer than 128 bytes")]
    IdTooLong,
    /// A `name` longer than [`MAX_NAME_LEN`].
    #[error("field `name` is longer than 64 bytes")]
    NameTooLong,
    /// A `msg_id` that is empty or longer than [`MAX_MSG_ID_LEN`].
    #[error("field `msg_id` must be 1 to 64 bytes")]
    BadMsgId,
    /// A room name over the configured limit.
    #[error("room name is longer than {limit} bytes")]
    RoomNameTooLong {
        /// The limit.
        limit: usize,
    },
    /// A payload over the configured limit.
    #[error("payload is larger than {limit} bytes")]
    PayloadTooLarge {
        /// The limit.
        limit: usize,
    },
    /// A binary message.
    #[error("envelopes are JSON text; binary messages are not accepted on /ws")]
    Binary,
    /// An empty `to_user`.
    #[error("field `to_user` must not be empty")]
    EmptyUser,
    /// A `to_user` longer than [`MAX_USER_LEN`].
    #[error("field `to_user` is longer than 256 bytes")]
    UserTooLong,
    /// A `send` with both `to` and `to_user`.
    #[error("a send has either `to` (a connection) or `to_user` (a user), not both")]
    TwoRecipients,
    /// `ack` or `receipt` on a `send` to a connection.
    #[error("`ack` and `receipt` apply only to a send with `to_user`")]
    AckWithoutUser,
    /// Arrays and objects nested deeper than [`MAX_DEPTH`].
    #[error("nesting deeper than {limit} levels")]
    TooDeep {
        /// The limit.
        limit: usize,
    },
}

impl EnvelopeError {
    /// The stable code this violation is reported with.
    pub fn code(self) -> ErrorCode {
        match self {
            EnvelopeError::NotJson
            | EnvelopeError::NotAnObject
            | EnvelopeError::DuplicateKey(_)
            | EnvelopeError::TooDeep { .. } => ErrorCode::BadJson,
            EnvelopeError::BadVersion => ErrorCode::BadVersion,
            EnvelopeError::MissingType | EnvelopeError::MissingField(_) => ErrorCode::MissingField,
            EnvelopeError::UnknownType => ErrorCode::UnknownType,
            EnvelopeError::WrongType { .. }
            | EnvelopeError::EmptyUser
            | EnvelopeError::UserTooLong
            | EnvelopeError::TwoRecipients
            | EnvelopeError::AckWithoutUser
            | EnvelopeError::EmptyRoom
            | EnvelopeError::EmptyToken
            | EnvelopeError::IdTooLong
            | EnvelopeError::NameTooLong
            | EnvelopeError::BadMsgId => ErrorCode::BadField,
            EnvelopeError::RoomNameTooLong { .. } => ErrorCode::RoomNameTooLong,
            EnvelopeError::PayloadTooLarge { .. } => ErrorCode::PayloadTooLarge,
            EnvelopeError::Binary => ErrorCode::BinaryMessage,
        }
    }
}

/// A malformed envelope, with the client's `id` when it could be read (the reply carries it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rejected<'a> {
    /// The client's id, if the envelope had a readable one.
    pub id: Option<&'a str>,
    /// What was wrong.
    pub error: EnvelopeError,
}

/// A well-formed client command. Strings borrow from the parser's scratch (unescaped); payloads
/// are byte ranges of the original message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command<'a> {
    /// `{"type":"join","room":…,"name":…,"presence":…}`: become a member of `room`.
    Join {
        /// The room.
        room: &'a str,
        /// The client's id for the reply.
        id: Option<&'a str>,
        /// A display name shown in presence and joined/left events.
        name: Option<&'a str>,
        /// Whether the member receives the room's `joined`/`left` events (default `true`).
        /// `false` keeps a big broadcast room at O(1) frames per join.
        presence: bool,
        /// `"since":{"offset":…,"epoch":…}`: resume after this message (replay, then live).
        since: Option<Since<'a>>,
    },
    /// `{"type":"leave","room":…}`.
    Leave {
        /// The room.
        room: &'a str,
        /// The client's id for the reply.
        id: Option<&'a str>,
    },
    /// `{"type":"publish","room":…,"payload":…,"echo":…}`.
    Publish {
        /// The room.
        room: &'a str,
        /// The client's id for the reply.
        id: Option<&'a str>,
        /// The payload JSON: a range of the original message, copied verbatim.
        payload: Range<usize>,
        /// Whether the publisher receives its own message (default `true`).
        echo: bool,
        /// The client's message id: a retry with the same one is accepted once.
        msg_id: Option<&'a str>,
    },
    /// `{"type":"send","to":…,"payload":…}`: a direct message to one connection.
    Send {
        /// The recipient's connection id, as written.
        to: &'a str,
        /// The client's id for the reply.
        id: Option<&'a str>,
        /// The payload JSON: a range of the original message.
        payload: Range<usize>,
    },
    /// `{"type":"send","to_user":…,"payload":…,"ack":…,"receipt":…}`: a message to every
    /// connection authenticated as `user`, on every worker, kept for the user while it is offline
    /// and, with `ack`, until one of its connections acknowledges it.
    SendUser {
        /// The recipient user id (a JWT `sub`), as written.
        user: &'a str,
        /// The client's id for the reply.
        id: Option<&'a str>,
        /// The payload JSON: a range of the original message.
        payload: Range<usize>,
        /// Keep it until a connection of the user acknowledges it (default `false`).
        ack: bool,
        /// Send the sender a `delivered` receipt (default `false`).
        receipt: bool,
    },
    /// `{"type":"ack","id":…}`: the connection's user received user message `id` (its `msg_id`);
    /// the reply carries the same `id` back.
    Ack {
        /// The message id being acknowledged, which is also the reply's id.
        id: &'a str,
    },
    /// `{"type":"presence","room":…}`: list the members of `room`.
    Presence {
        /// The room.
        room: &'a str,
        /// The client's id for the reply.
        id: Option<&'a str>,
    },
    /// `{"type":"history","room":…,"limit":…}` or `…,"since":{…}`: the last `limit` messages of
    /// `room` still held, or those after `since`, with the room's current offset and epoch.
    History {
        /// The room.
        room: &'a str,
        /// The client's id for the reply.
        id: Option<&'a str>,
        /// How many of the last messages (capped by the server); `None`: as many as allowed.
        limit: Option<u64>,
        /// Only those after this point (all or nothing, as a resume).
        since: Option<Since<'a>>,
    },
    /// `{"type":"stats"}`: server-wide connection and message counters (for the demo page).
    Stats {
        /// The client's id for the reply.
        id: Option<&'a str>,
    },
    /// `{"type":"refresh","token":…}`: a new token for the same user, before the current one
    /// expires (the connection is otherwise closed with 4001).
    Refresh {
        /// The new JWT.
        token: &'a str,
        /// The client's id for the reply.
        id: Option<&'a str>,
    },
}

impl<'a> Command<'a> {
    /// The client's `id`, which the reply carries back.
    pub fn id(&self) -> Option<&'a str> {
        match *self {
            Command::Join { id, .. }
            | Command::Leave { id, .. }
            | Command::Publish { id, .. }
            | Command::Send { id, .. }
            | Command::Presence { id, .. }
            | Command::History { id, .. }
            | Command::Stats { id }
            | Command::Refresh { id, .. }
            | Command::SendUser { id, .. } => id,
            Command::Ack { id } => Some(id),
        }
    }
}

/// Limits the parser enforces before anything reaches a room.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EnvelopeLimits {
    /// Longest room name in bytes (UTF-8 after unescaping).
    pub max_room_name_len: usize,
    /// Largest `payload` in bytes, as written in the message.
    pub max_payload_len: usize,
}

impl Default for EnvelopeLimits {
    fn default() -> Self {
        EnvelopeLimits {
            max_room_name_len: 64,
            max_payload_len: 64 * 1024,
        }
    }
}

/// The envelope parser of one worker: scratch copy, simd-json buffers and tape, reused across
/// messages so parsing allocates nothing once they have grown to the largest message seen, up to
/// [`RETAINED_BYTES`]: past that they are given back ([`Parser::trim`]).
pub struct Parser {
    limits: EnvelopeLimits,
    /// A copy of the message plus simd-json's padding: simd-json unescapes strings in place, and
    /// the original must stay intact for verbatim payloads.
    scratch: Vec<u8>,
    /// A second copy, for the rare message holding a number simd-json cannot represent: the same
    /// text with such numbers rewritten (see [`neutralise_numbers`]). Empty until one arrives.
    renumbered: Vec<u8>,
    buffers: simd_json::Buffers,
    /// Kept empty between calls (its `'static` lifetime is only nominal: no node outlives a call).
    tape: Option<simd_json::Tape<'static>>,
}

/// The known keys of a client envelope, in the order their slots are kept.
const KEYS: [&str; 17] = [
    "v", "type", "id", "room", "payload", "echo", "to", "name", "user", "token", "presence",
    "since", "msg_id", "limit", "to_user", "ack", "receipt",
];

impl Parser {
    /// A parser enforcing `limits`.
    pub fn new(limits: EnvelopeLimits) -> Self {
        Parser {
            limits,
            scratch: Vec::new(),
            renumbered: Vec::new(),
            buffers: simd_json::Buffers::with_max_depth(0, MAX_DEPTH),
            tape: Some(simd_json::Tape::null()),
        }
    }

    /// An estimate of the bytes the reusable buffers hold: the two copies, simd-json's string
    /// buffer (as large as the last message), its structural indexes and stage-2 stack (4 bytes
    /// and up to 16 per structural character of the last message) and the tape (one node per
    /// value).
    pub fn retained_bytes(&self) -> usize {
        let tape = self.tape.as_ref().map_or(0, |t| t.0.capacity());
        2 * self.scratch.capacity()
            + self.renumbered.capacity()
            + 20 * self.buffers.structural_indexes().len()
            + tape * std::mem::size_of::<simd_json::Node<'static>>()
    }

    /// Gives the buffers back when the last message grew them past [`RETAINED_BYTES`] (O(1)
    /// otherwise). Called at the start of every parse and by the driver once a command has been
    /// handled, so an outsized message costs its memory only while it is being handled.
    pub fn trim(&mut self) {
        if self.retained_bytes() > RETAINED_BYTES {
            self.scratch = Vec::new();
            self.renumbered = Vec::new();
            self.buffers = simd_json::Buffers::with_max_depth(0, MAX_DEPTH);
            self.tape = Some(simd_json::Tape::null());
        }
    }

    /// The limits in force.
    pub fn limits(&self) -> EnvelopeLimits {
        self.limits
    }

    /// Parses one text message. Payload ranges index into `msg`.
    ///
    /// The message is parsed once, except when simd-json refuses a number it cannot represent
    /// (an integer beyond 64 bits, a float beyond `f64`): every RFC 8259 number is valid in a
    /// payload, which is copied, never interpreted, so the text is parsed a second time with
    /// such numbers rewritten ([`neutralise_numbers`]). That costs one scan more than a parse.
    pub fn parse<'a>(&'a mut self, msg: &[u8]) -> Result<Command<'a>, Rejected<'a>> {
        self.trim();
        let Parser {
            limits,
            scratch,
            renumbered,
            buffers,
            tape: slot,
        } = self;
        let reject = |error| Rejected { id: None, error };
        copy_padded(scratch, msg);
        let mut tape: simd_json::Tape<'a> =
            slot.take().unwrap_or_else(simd_json::Tape::null).reset();
        let mut parsed = simd_json::fill_tape_padded(scratch, msg.len(), buffers, &mut tape);
        if parsed
            .as_ref()
            .is_err_and(|e| matches!(e.error(), simd_json::ErrorType::InvalidNumber))
        {
            copy_padded(renumbered, msg);
            neutralise_numbers(&mut renumbered[..msg.len()]);
            parsed = simd_json::fill_tape_padded(renumbered, msg.len(), buffers, &mut tape);
        }
        let result = match parsed {
            Err(e) if matches!(e.error(), simd_json::ErrorType::DepthLimitExceeded) => {
                Err(reject(EnvelopeError::TooDeep { limit: MAX_DEPTH }))
            }
            Err(_) => Err(reject(EnvelopeError::NotJson)),
            Ok(()) => interpret(&tape.0, msg, buffers.structural_indexes(), limits),
        };
        *slot = Some(tape.reset());
        result
    }
}

/// A field's tape value: its node index and, for the top-level member number, its position.
#[derive(Clone, Copy)]
struct Slot {
    node: usize,
    member: usize,
}

fn interpret<'a>(
    nodes: &[simd_json::Node<'a>],
    msg: &[u8],
    structurals: &[u32],
    limits: &EnvelopeLimits,
) -> Result<Command<'a>, Rejected<'a>> {
    use simd_json::{Node, StaticNode};
    let no_id = |error| Rejected { id: None, error };
    let Some(&Node::Object { len, .. }) = nodes.first() else {
        return Err(no_id(EnvelopeError::NotAnObject));
    };
    // Walk the top-level members once; remember where each known key's value is.
    let mut slots: [Option<Slot>; KEYS.len()] = [None; KEYS.len()];
    let mut at = 1;
    for member in 0..len {
        let Some(Node::String(key)) = nodes.get(at) else {
            return Err(no_id(EnvelopeError::NotJson));
        };
        let value = at + 1;
        let width = match nodes.get(value) {
            Some(Node::Object { count, .. } | Node::Array { count, .. }) => count + 1,
            Some(_) => 1,
            None => return Err(no_id(EnvelopeError::NotJson)),
        };
        if let Some(k) = KEYS.iter().position(|k| k == key) {
            if slots[k].is_some() {
                return Err(no_id(EnvelopeError::DuplicateKey(KEYS[k])));
            }
            slots[k] = Some(Slot {
                node: value,
                member,
            });
        }
        at = value + width;
    }
    let string = |k: usize| -> Result<Option<&'a str>, EnvelopeError> {
        match slots[k] {
            None => Ok(None),
            Some(s) => match nodes[s.node] {
                Node::String(v) => Ok(Some(v)),
                _ => Err(EnvelopeError::WrongType {
                    field: KEYS[k],
                    expected: "a string",
                }),
            },
        }
    };
    // The id first, so every later rejection can carry it back.
    let id = match string(2) {
        Ok(id) => id,
        Err(error) => return Err(no_id(error)),
    };
    if id.is_some_and(|id| id.len() > MAX_ID_LEN) {
        return Err(no_id(EnvelopeError::IdTooLong));
    }
    let fail = |error| Rejected { id, error };
    if let Some(v) = slots[0] {
        match nodes[v.node] {
            Node::Static(StaticNode::U64(VERSION)) => {}
            Node::Static(StaticNode::I64(n)) if n == VERSION as i64 => {}
            _ => return Err(fail(EnvelopeError::BadVersion)),
        }
    }
    let kind = string(1)
        .map_err(fail)?
        .ok_or(fail(EnvelopeError::MissingType))?;
    let room = || -> Result<&'a str, Rejected<'a>> {
        let room = string(3)
            .map_err(fail)?
            .ok_or(fail(EnvelopeError::MissingField("room")))?;
        if room.is_empty() {
            return Err(fail(EnvelopeError::EmptyRoom));
        }
        if room.len() > limits.max_room_name_len {
            return Err(fail(EnvelopeError::RoomNameTooLong {
                limit: limits.max_room_name_len,
            }));
        }
        Ok(room)
    };
    // An optional boolean field, `default` when absent.
    let boolean = |k: usize, default: bool| -> Result<bool, Rejected<'a>> {
        match slots[k].map(|s| nodes[s.node]) {
            None => Ok(default),
            Some(Node::Static(StaticNode::Bool(b))) => Ok(b),
            Some(_) => Err(fail(EnvelopeError::WrongType {
                field: KEYS[k],
                expected: "true or false",
            })),
        }
    };
    let payload = || -> Result<Range<usize>, Rejected<'a>> {
        let slot = slots[4].ok_or(fail(EnvelopeError::MissingField("payload")))?;
        let span =
            member_value_span(msg, structurals, slot.member).ok_or(fail(EnvelopeError::NotJson))?;
        if span.len() > limits.max_payload_len {
            return Err(fail(EnvelopeError::PayloadTooLarge {
                limit: limits.max_payload_len,
            }));
        }
        Ok(span)
    };
    // `"since":{"offset":<u64>,"epoch":<string>}`; other keys inside are ignored.
    let since = || -> Result<Option<Since<'a>>, Rejected<'a>> {
        let Some(slot) = slots[11] else {
            return Ok(None);
        };
        let wrong = || {
            fail(EnvelopeError::WrongType {
                field: "since",
                expected: "an object {\"offset\": <integer>, \"epoch\": <string>}",
            })
        };
        let Node::Object { len, .. } = nodes[slot.node] else {
            return Err(wrong());
        };
        let (mut offset, mut epoch) = (None, None);
        let mut at = slot.node + 1;
        for _ in 0..len {
            let Some(Node::String(key)) = nodes.get(at) else {
                return Err(wrong());
            };
            let value = at + 1;
            let width = match nodes.get(value) {
                Some(Node::Object { count, .. } | Node::Array { count, .. }) => count + 1,
                Some(_) => 1,
                None => return Err(wrong()),
            };
            match (*key, nodes[value]) {
                ("offset", Node::Static(StaticNode::U64(n))) => offset = Some(n),
                ("offset", Node::Static(StaticNode::I64(n))) if n >= 0 => offset = Some(n as u64),
                ("epoch", Node::String(e)) => epoch = Some(e),
                ("offset" | "epoch", _) => return Err(wrong()),
                _ => {}
            }
            at = value + width;
        }
        match (offset, epoch) {
            (Some(offset), Some(epoch)) => Ok(Some(Since { offset, epoch })),
            _ => Err(wrong()),
        }
    };
    match kind {
        "join" => {
            let room = room()?;
            let name = string(7).map_err(fail)?;
            if name.is_some_and(|n| n.len() > MAX_NAME_LEN) {
                return Err(fail(EnvelopeError::NameTooLong));
            }
            Ok(Command::Join {
                room,
                id,
                name,
                presence: boolean(10, true)?,
                since: since()?,
            })
        }
        "leave" => Ok(Command::Leave { room: room()?, id }),
        "publish" => {
            let room = room()?;
            let echo = boolean(5, true)?;
            let msg_id = string(12).map_err(fail)?;
            if msg_id.is_some_and(|m| m.is_empty() || m.len() > MAX_MSG_ID_LEN) {
                return Err(fail(EnvelopeError::BadMsgId));
            }
            Ok(Command::Publish {
                room,
                id,
                payload: payload()?,
                echo,
                msg_id,
            })
        }
        "send" => {
            let to = string(6).map_err(fail)?;
            let to_user = string(14).map_err(fail)?;
            let (ack, receipt) = (boolean(15, false)?, boolean(16, false)?);
            match (to, to_user) {
                (Some(_), Some(_)) => Err(fail(EnvelopeError::TwoRecipients)),
                (None, None) => Err(fail(EnvelopeError::MissingField("to"))),
                (Some(to), None) => {
                    if slots[15].is_some() || slots[16].is_some() {
                        return Err(fail(EnvelopeError::AckWithoutUser));
                    }
                    Ok(Command::Send {
                        to,
                        id,
                        payload: payload()?,
                    })
                }
                (None, Some(user)) => {
                    if user.is_empty() {
                        return Err(fail(EnvelopeError::EmptyUser));
                    }
                    if user.len() > MAX_USER_LEN {
                        return Err(fail(EnvelopeError::UserTooLong));
                    }
                    Ok(Command::SendUser {
                        user,
                        id,
                        payload: payload()?,
                        ack,
                        receipt,
                    })
                }
            }
        }
        "ack" => match id {
            Some(id) => Ok(Command::Ack { id }),
            None => Err(fail(EnvelopeError::MissingField("id"))),
        },
        "presence" => Ok(Command::Presence { room: room()?, id }),
        "history" => {
            let room = room()?;
            let limit = match slots[13].map(|s| nodes[s.node]) {
                None => None,
                Some(Node::Static(StaticNode::U64(n))) => Some(n),
                Some(Node::Static(StaticNode::I64(n))) if n >= 0 => Some(n as u64),
                Some(_) => {
                    return Err(fail(EnvelopeError::WrongType {
                        field: "limit",
                        expected: "an integer of 0 or more",
                    }))
                }
            };
            Ok(Command::History {
                room,
                id,
                limit,
                since: since()?,
            })
        }
        "stats" => Ok(Command::Stats { id }),
        "refresh" => {
            let token = string(9)
                .map_err(fail)?
                .ok_or(fail(EnvelopeError::MissingField("token")))?;
            if token.is_empty() {
                return Err(fail(EnvelopeError::EmptyToken));
            }
            Ok(Command::Refresh { token, id })
        }
        _ => Err(fail(EnvelopeError::UnknownType)),
    }
}

/// JSON whitespace (RFC 8259 §2: space, horizontal tab, line feed, carriage return).
fn is_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r')
}

/// Makes `out` a copy of `msg` followed by simd-json's padding.
fn copy_padded(out: &mut Vec<u8>, msg: &[u8]) {
    out.clear();
    // One exact reservation: growing by `extend` then `resize` would double the capacity.
    out.reserve(msg.len() + simd_json::INPUT_PADDING);
    out.extend_from_slice(msg);
    out.resize(msg.len() + simd_json::INPUT_PADDING, 0);
}

/// Whether `t` is exactly one RFC 8259 §6 number, of any length:
/// `number = [ minus ] int [ frac ] [ exp ]`, `int = zero / ( digit1-9 *DIGIT )`,
/// `frac = decimal-point 1*DIGIT`, `exp = e [ minus / plus ] 1*DIGIT`.
fn is_json_number(t: &[u8]) -> bool {
    let digits = |at: usize| {
        t[at.min(t.len())..]
            .iter()
            .take_while(|b| b.is_ascii_digit())
            .count()
    };
    let mut at = usize::from(t.first() == Some(&b'-'));
    match t.get(at) {
        Some(b'0') => at += 1,
        Some(b'1'..=b'9') => at += digits(at),
        _ => return false,
    }
    if t.get(at) == Some(&b'.') {
        let n = digits(at + 1);
        if n == 0 {
            return false;
        }
        at += 1 + n;
    }
    if matches!(t.get(at), Some(b'e' | b'E')) {
        at += 1;
        if matches!(t.get(at), Some(b'+' | b'-')) {
            at += 1;
        }
        let n = digits(at);
        if n == 0 {
            return false;
        }
        at += n;
    }
    at == t.len()
}

/// Integers of at most this many digits (sign aside) fit in simd-json's `i64`/`u64`, whatever
/// they are; they are left alone so that `"v":1` keeps its meaning.
const SAFE_INTEGER_DIGITS: usize = 18;

/// Rewrites, in place, every number of the JSON text `text` that simd-json might refuse to
/// represent as `0` followed by spaces (same length, so every byte offset stays valid): numbers
/// with a fraction or an exponent, and integers longer than [`SAFE_INTEGER_DIGITS`]. Only tokens
/// that are valid RFC 8259 numbers are rewritten; anything else is left for simd-json to refuse.
///
/// The parser reads the rewritten text for the structure and the original for payloads, so a
/// payload keeps its numbers as written. Outside payloads a rewritten number changes no
/// decision: a number is the wrong type for every field but `v`, and `v` must be the integer 1,
/// which is never rewritten.
fn neutralise_numbers(text: &mut [u8]) {
    let mut at = 0;
    while at < text.len() {
        match text[at] {
            b'"' => {
                // Skip the string: a backslash escapes the next byte (`\"`, `\\`, `\uXXXX`).
                at += 1;
                while at < text.len() && text[at] != b'"' {
                    at += if text[at] == b'\\' { 2 } else { 1 };
                }
                at += 1;
            }
            b'-' | b'0'..=b'9' => {
                let start = at;
                while at < text.len()
                    && matches!(text[at], b'0'..=b'9' | b'.' | b'e' | b'E' | b'+' | b'-')
                {
                    at += 1;
                }
                let token = &mut text[start..at];
                let plain = token.iter().all(|b| b.is_ascii_digit() || *b == b'-')
                    && token.iter().filter(|b| b.is_ascii_digit()).count() <= SAFE_INTEGER_DIGITS;
                if !plain && is_json_number(token) {
                    token.fill(b' ');
                    token[0] = b'0';
                }
            }
            _ => at += 1,
        }
    }
}

/// The byte range of the value of top-level member number `member` of a valid JSON object, found
/// from simd-json's structural indexes (positions of `{ } [ ] : ,`, of opening quotes and of the
/// first byte of every other scalar; nothing inside a string is structural). The value starts at
/// the first structural after the member's `:` and ends before the `,` or `}` that closes it at
/// depth 1, with trailing whitespace trimmed.
fn member_value_span(msg: &[u8], structurals: &[u32], member: usize) -> Option<Range<usize>> {
    let mut depth = 0usize;
    let mut current = 0usize;
    let mut expecting = false;
    let mut start = None;
    for &p in structurals {
        let p = p as usize;
        let &c = msg.get(p)?;
        let starts_value = depth == 1 && expecting;
        match c {
            b'{' | b'[' => depth += 1,
            b'}' | b']' => depth = depth.checked_sub(1)?,
            b':' if depth == 1 => {
                expecting = true;
                continue;
            }
            _ => {}
        }
        if starts_value {
            expecting = false;
            if current == member {
                start = Some(p);
            }
        }
        let closes_member = (c == b',' && depth == 1) || (c == b'}' && depth == 0);
        if closes_member {
            if current == member {
                let start = start?;
                let mut end = p;
                while end > start && is_ws(msg[end - 1]) {
                    end -= 1;
                }
                return Some(start..end);
            }
            current += 1;
        }
    }
    None
}

// ---------------------------------------------------------------------------------------------
// Rendering server envelopes
// ---------------------------------------------------------------------------------------------

/// Writes server envelopes as complete, unmasked, final text frames into an arena.
pub mod render {
    use super::*;

    /// One frame being written: header room first, JSON text after; [`Frame::finish`] writes the
    /// header in front of the text and splits the frame off the arena.
    pub struct Frame<'a> {
        out: &'a mut BytesMut,
    }

    impl<'a> Frame<'a> {
        /// Starts a frame whose text will be about `estimate` bytes. The arena is expected empty
        /// (every previous frame has been split off); growth happens here, before any writing.
        pub fn begin(out: &'a mut BytesMut, estimate: usize) -> Frame<'a> {
            debug_assert!(out.is_empty());
            let need = SERVER_HEADER_MAX + estimate;
            if out.capacity() < need {
                out.reserve(need.max(ARENA_CHUNK));
            }
            out.put_bytes(0, SERVER_HEADER_MAX);
            Frame { out }
        }

        /// Appends raw bytes (already valid JSON text).
        #[inline]
        pub fn raw(&mut self, bytes: &[u8]) -> &mut Self {
            self.out.extend_from_slice(bytes);
            self
        }

        /// Appends a JSON string literal with `s` escaped (RFC 8259 §7: quotation mark, reverse
        /// solidus and the control characters U+0000 to U+001F "MUST be escaped").
        pub fn string(&mut self, s: &str) -> &mut Self {
            self.out.put_u8(b'"');
            escape_into(self.out, s);
            self.out.put_u8(b'"');
            self
        }

        /// Appends a string literal or `null`.
        pub fn opt_string(&mut self, s: Option<&str>) -> &mut Self {
            match s {
                Some(s) => self.string(s),
                None => self.raw(b"null"),
            }
        }

        /// Appends `value` formatted with `Display`, escaped, as a string literal.
        pub fn display(&mut self, value: impl fmt::Display) -> &mut Self {
            self.out.put_u8(b'"');
            let _ = write!(Escaper(self.out), "{value}");
            self.out.put_u8(b'"');
            self
        }

        /// `"from":<conn>` and, for an authenticated sender, `,"user":<sub>`.
        pub fn sender(&mut self, from: ConnId, user: Option<&str>) -> &mut Self {
            self.raw(br#""from":"#).display(from);
            if let Some(user) = user {
                self.raw(br#","user":"#).string(user);
            }
            self
        }

        /// `,"ts":<ts>,"payload":<verbatim>}`: the end of a `message` or `direct`.
        pub fn stamped_payload(&mut self, ts: u64, payload: &[u8]) -> &mut Self {
            self.raw(br#","ts":"#)
                .number(ts)
                .raw(br#","payload":"#)
                .raw(payload)
                .raw(b"}")
        }

        /// Appends a decimal number.
        pub fn number(&mut self, n: u64) -> &mut Self {
            let _ = write!(Escaper(self.out), "{n}");
            self
        }

        /// Writes the header in front of the text and splits the frame off the arena.
        pub fn finish(self) -> Bytes {
            let text_len = self.out.len() - SERVER_HEADER_MAX;
            let header = FrameHeader::server(OpCode::Text, text_len as u64);
            let mut buf = [0u8; MAX_HEADER_LEN];
            let n = header.encode(&mut buf);
            let skip = SERVER_HEADER_MAX - n;
            self.out[skip..SERVER_HEADER_MAX].copy_from_slice(&buf[..n]);
            let mut frame = self.out.split();
            bytes::Buf::advance(&mut frame, skip);
            frame.freeze()
        }
    }

    /// A `fmt::Write` that JSON-escapes into the arena.
    struct Escaper<'a>(&'a mut BytesMut);

    impl fmt::Write for Escaper<'_> {
        fn write_str(&mut self, s: &str) -> fmt::Result {
            escape_into(self.0, s);
            Ok(())
        }
    }

    fn escape_into(out: &mut BytesMut, s: &str) {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let bytes = s.as_bytes();
        let mut plain = 0;
        for (i, &b) in bytes.iter().enumerate() {
            let escaped: &[u8] = match b {
                b'"' => b"\\\"",
                b'\\' => b"\\\\",
                b'\n' => b"\\n",
                b'\r' => b"\\r",
                b'\t' => b"\\t",
                0..=0x1F => &[
                    b'\\',
                    b'u',
                    b'0',
                    b'0',
                    HEX[(b >> 4) as usize],
                    HEX[(b & 0xF) as usize],
                ],
                _ => continue,
            };
            out.extend_from_slice(&bytes[plain..i]);
            out.extend_from_slice(escaped);
            plain = i + 1;
        }
        out.extend_from_slice(&bytes[plain..]);
    }

    /// `{"v":1,"type":"welcome","conn":…,"user":…}`.
    pub fn welcome(out: &mut BytesMut, conn: ConnId, user: Option<&str>) -> Bytes {
        let mut f = Frame::begin(out, 64 + user.map_or(0, str::len) * 6);
        f.raw(br#"{"v":1,"type":"welcome","conn":"#)
            .display(conn)
            .raw(br#","user":"#)
            .opt_string(user)
            .raw(b"}");
        f.finish()
    }

    /// `{"v":1,"type":"reply","id":…,"ok":true}`.
    pub fn reply_ok(out: &mut BytesMut, id: Option<&str>) -> Bytes {
        let mut f = Frame::begin(out, 48 + id.map_or(0, str::len) * 6);
        f.raw(br#"{"v":1,"type":"reply","id":"#)
            .opt_string(id)
            .raw(br#","ok":true}"#);
        f.finish()
    }

    /// `,"offset":…,"epoch":…` (both `null` without a position).
    fn position(f: &mut Frame<'_>, at: Option<Position>) {
        match at {
            Some(p) => {
                f.raw(br#","offset":"#)
                    .number(p.offset)
                    .raw(br#","epoch":""#)
                    .raw(&p.epoch.text())
                    .raw(b"\"");
            }
            None => {
                f.raw(br#","offset":null,"epoch":null"#);
            }
        }
    }

    /// The ok reply to a `join`: `{"v":1,"type":"reply","id":…,"ok":true,"offset":…,"epoch":…}`
    /// plus `"recovered":…` when the join asked to resume.
    pub fn reply_joined(
        out: &mut BytesMut,
        id: Option<&str>,
        at: Position,
        recovered: Option<bool>,
    ) -> Bytes {
        let mut f = Frame::begin(out, 120 + id.map_or(0, str::len) * 6);
        f.raw(br#"{"v":1,"type":"reply","id":"#)
            .opt_string(id)
            .raw(br#","ok":true"#);
        position(&mut f, Some(at));
        if let Some(recovered) = recovered {
            f.raw(if recovered {
                br#","recovered":true"#
            } else {
                br#","recovered":false"#
            });
        }
        f.raw(b"}");
        f.finish()
    }

    /// The ok reply to a `publish`: `{"v":1,"type":"reply","id":…,"ok":true,"offset":…,
    /// "epoch":…}`, both `null` when the room had neither members nor history.
    pub fn reply_published(out: &mut BytesMut, id: Option<&str>, at: Option<Position>) -> Bytes {
        let mut f = Frame::begin(out, 120 + id.map_or(0, str::len) * 6);
        f.raw(br#"{"v":1,"type":"reply","id":"#)
            .opt_string(id)
            .raw(br#","ok":true"#);
        position(&mut f, at);
        f.raw(b"}");
        f.finish()
    }

    /// The JSON text of a server frame rendered here (its header skipped).
    pub fn frame_text(frame: &[u8]) -> &[u8] {
        let at = match frame[1] & 0x7F {
            126 => 4,
            127 => 10,
            _ => 2,
        };
        &frame[at..]
    }

    /// `{"v":1,"type":"history","id":…,"room":…,"offset":…,"epoch":…,"recovered":…,
    /// "messages":[<message envelope>,…]}`: each message is the text of its stored frame, as
    /// members received it. `recovered` only when the query had a `since`.
    pub fn history(
        out: &mut BytesMut,
        id: Option<&str>,
        room: &str,
        at: Option<Position>,
        recovered: Option<bool>,
        frames: &[Bytes],
    ) -> Bytes {
        let texts: usize = frames.iter().map(|f| f.len() + 1).sum();
        let mut f = Frame::begin(out, 160 + (id.map_or(0, str::len) + room.len()) * 6 + texts);
        f.raw(br#"{"v":1,"type":"history","id":"#)
            .opt_string(id)
            .raw(br#","room":"#)
            .string(room);
        position(&mut f, at);
        if let Some(recovered) = recovered {
            f.raw(br#","recovered":"#)
                .raw(if recovered { b"true" } else { b"false" });
        }
        f.raw(br#","messages":["#);
        for (i, frame) in frames.iter().enumerate() {
            if i > 0 {
                f.raw(b",");
            }
            f.raw(frame_text(frame));
        }
        f.raw(b"]}");
        f.finish()
    }

    /// `{"v":1,"type":"reply","id":…,"ok":false,"error":{"code":…,"message":…}}`.
    pub fn reply_err(
        out: &mut BytesMut,
        id: Option<&str>,
        code: ErrorCode,
        message: impl fmt::Display,
    ) -> Bytes {
        let mut f = Frame::begin(out, 160 + id.map_or(0, str::len) * 6);
        f.raw(br#"{"v":1,"type":"reply","id":"#)
            .opt_string(id)
            .raw(br#","ok":false,"error":{"code":""#)
            .raw(code.as_str().as_bytes())
            .raw(br#"","message":"#)
            .display(message)
            .raw(b"}}");
        f.finish()
    }

    /// `{"v":1,"type":"message","room":…,"offset":…,"from":…,"ts":…,"payload":<verbatim>}`.
    pub fn message(
        out: &mut BytesMut,
        room: &str,
        offset: u64,
        from: ConnId,
        ts: u64,
        payload: &[u8],
    ) -> Bytes {
        message_by(out, room, offset, from, None, ts, payload)
    }

    /// [`message`] from an authenticated publisher: `"user"` (the token's `sub`) follows
    /// `"from"`. Anonymous publishers' messages carry no `user` field.
    pub fn message_by(
        out: &mut BytesMut,
        room: &str,
        offset: u64,
        from: ConnId,
        user: Option<&str>,
        ts: u64,
        payload: &[u8],
    ) -> Bytes {
        let text = message_capacity(room, user, payload) - SERVER_HEADER_MAX;
        let mut f = Frame::begin(out, text);
        f.raw(br#"{"v":1,"type":"message","room":"#)
            .string(room)
            .raw(br#","offset":"#)
            .number(offset)
            .raw(b",")
            .sender(from, user)
            .stamped_payload(ts, payload);
        f.finish()
    }

    /// An upper bound of the bytes [`message_by`] writes (header included): rendering into a
    /// `BytesMut::with_capacity(message_capacity(…))` gives the frame an allocation of its own,
    /// with no more slack than this bound's.
    pub fn message_capacity(room: &str, user: Option<&str>, payload: &[u8]) -> usize {
        let user_len = user.map_or(0, |u| 10 + u.len() * 6);
        SERVER_HEADER_MAX + 128 + room.len() * 6 + user_len + payload.len()
    }

    /// `{"v":1,"type":"direct","from":…,"ts":…,"payload":<verbatim>}`.
    pub fn direct(
        out: &mut BytesMut,
        from: ConnId,
        user: Option<&str>,
        ts: u64,
        payload: &[u8],
    ) -> Bytes {
        let user_len = user.map_or(0, |u| 10 + u.len() * 6);
        let mut f = Frame::begin(out, 96 + user_len + payload.len());
        f.raw(br#"{"v":1,"type":"direct","#)
            .sender(from, user)
            .stamped_payload(ts, payload);
        f.finish()
    }

    /// `{"v":1,"type":"reply","id":…,"ok":true,"msg_id":…}`: a `send` to a user was accepted and
    /// got this message id.
    pub fn reply_ok_msg(out: &mut BytesMut, id: Option<&str>, msg_id: impl fmt::Display) -> Bytes {
        let mut f = Frame::begin(out, 96 + id.map_or(0, str::len) * 6);
        f.raw(br#"{"v":1,"type":"reply","id":"#)
            .opt_string(id)
            .raw(br#","ok":true,"msg_id":"#)
            .display(msg_id)
            .raw(b"}");
        f.finish()
    }

    /// One user message as its recipient receives it.
    #[derive(Clone, Copy, Debug)]
    pub struct UserMessage<'m, I> {
        /// The server-assigned message id.
        pub msg_id: I,
        /// The sender's connection.
        pub from: ConnId,
        /// The sender's user, when authenticated.
        pub sender: Option<&'m str>,
        /// Unix ms when the user's owner accepted it.
        pub ts: u64,
        /// The recipient must acknowledge it.
        pub ack: bool,
        /// It was delivered before.
        pub redelivered: bool,
        /// The payload JSON, verbatim.
        pub payload: &'m [u8],
    }

    /// `{"v":1,"type":"user_message","msg_id":…,"from":…,"user":…,"ts":…,"ack":…,
    /// "redelivered":…,"payload":<verbatim>}` (`user`, the sender's, only when it has one).
    pub fn user_message<I: fmt::Display>(out: &mut BytesMut, m: UserMessage<'_, I>) -> Bytes {
        let user_len = m.sender.map_or(0, |u| 10 + u.len() * 6);
        let mut f = Frame::begin(out, 160 + user_len + m.payload.len());
        f.raw(br#"{"v":1,"type":"user_message","msg_id":"#)
            .display(m.msg_id)
            .raw(b",")
            .sender(m.from, m.sender)
            .raw(br#","ts":"#)
            .number(m.ts)
            .raw(if m.ack {
                br#","ack":true"#
            } else {
                br#","ack":false"#
            })
            .raw(if m.redelivered {
                br#","redelivered":true,"payload":"#
            } else {
                br#","redelivered":false,"payload":"#
            })
            .raw(m.payload)
            .raw(b"}");
        f.finish()
    }

    /// `{"v":1,"type":"delivered","id":…,"msg_id":…,"to_user":…}`: the receipt a sender asked
    /// for (`id` is its `send`'s).
    pub fn delivered(
        out: &mut BytesMut,
        id: Option<&str>,
        msg_id: impl fmt::Display,
        to_user: &str,
    ) -> Bytes {
        let mut f = Frame::begin(out, 96 + id.map_or(0, str::len) * 6 + to_user.len() * 6);
        f.raw(br#"{"v":1,"type":"delivered","id":"#)
            .opt_string(id)
            .raw(br#","msg_id":"#)
            .display(msg_id)
            .raw(br#","to_user":"#)
            .string(to_user)
            .raw(b"}");
        f.finish()
    }

    /// `{"v":1,"type":"joined"|"left","room":…,"conn":…,"user":…,"name":…}`.
    pub fn membership(
        out: &mut BytesMut,
        joined: bool,
        room: &str,
        conn: ConnId,
        user: Option<&str>,
        name: Option<&str>,
    ) -> Bytes {
        let extra = room.len() + user.map_or(0, str::len) + name.map_or(0, str::len);
        let mut f = Frame::begin(out, 96 + extra * 6);
        f.raw(if joined {
            br#"{"v":1,"type":"joined","room":"#
        } else {
            br#"{"v":1,"type":"left","room":"#
        })
        .string(room)
        .raw(br#","conn":"#)
        .display(conn)
        .raw(br#","user":"#)
        .opt_string(user)
        .raw(br#","name":"#)
        .opt_string(name)
        .raw(b"}");
        f.finish()
    }

    /// One member in a presence list.
    #[derive(Clone, Copy, Debug)]
    pub struct Member<'m> {
        /// Its connection.
        pub conn: ConnId,
        /// Its authenticated user, if any.
        pub user: Option<&'m str>,
        /// Its display name, if it gave one.
        pub name: Option<&'m str>,
    }

    /// `{"v":1,"type":"presence","id":…,"room":…,"members":[{"conn":…,"user":…,"name":…},…]}`.
    pub fn presence<'m>(
        out: &mut BytesMut,
        id: Option<&str>,
        room: &str,
        count: usize,
        members: impl Iterator<Item = Member<'m>>,
    ) -> Bytes {
        let mut f = Frame::begin(out, 96 + room.len() * 6 + count * 64);
        f.raw(br#"{"v":1,"type":"presence","id":"#)
            .opt_string(id)
            .raw(br#","room":"#)
            .string(room)
            .raw(br#","members":["#);
        for (i, m) in members.enumerate() {
            if i > 0 {
                f.raw(b",");
            }
            f.raw(br#"{"conn":"#)
                .display(m.conn)
                .raw(br#","user":"#)
                .opt_string(m.user)
                .raw(br#","name":"#)
                .opt_string(m.name)
                .raw(b"}");
        }
        f.raw(b"]}");
        f.finish()
    }

    /// `{"v":1,"type":"stats","id":…,"connections":…,"messages_in":…,"messages_out":…}`.
    pub fn stats(
        out: &mut BytesMut,
        id: Option<&str>,
        connections: u64,
        messages_in: u64,
        messages_out: u64,
    ) -> Bytes {
        let mut f = Frame::begin(out, 128 + id.map_or(0, str::len) * 6);
        f.raw(br#"{"v":1,"type":"stats","id":"#)
            .opt_string(id)
            .raw(br#","connections":"#)
            .number(connections)
            .raw(br#","messages_in":"#)
            .number(messages_in)
            .raw(br#","messages_out":"#)
            .number(messages_out)
            .raw(b"}");
        f.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(msg: &str) -> Result<Command<'static>, (Option<String>, EnvelopeError)> {
        let mut p = Parser::new(EnvelopeLimits {
            max_room_name_len: 8,
            max_payload_len: 32,
        });
        match p.parse(msg.as_bytes()) {
            Ok(c) => Ok(leak(c)),
            Err(r) => Err((r.id.map(str::to_owned), r.error)),
        }
    }

    fn leak(c: Command<'_>) -> Command<'static> {
        let s = |x: &str| -> &'static str { Box::leak(x.to_owned().into_boxed_str()) };
        let o = |x: Option<&str>| x.map(s);
        match c {
            Command::Join {
                room,
                id,
                name,
                presence,
                since,
            } => Command::Join {
                room: s(room),
                id: o(id),
                name: o(name),
                presence,
                since: since.map(|x| Since {
                    offset: x.offset,
                    epoch: s(x.epoch),
                }),
            },
            Command::Leave { room, id } => Command::Leave {
                room: s(room),
                id: o(id),
            },
            Command::Publish {
                room,
                id,
                payload,
                echo,
                msg_id,
            } => Command::Publish {
                room: s(room),
                id: o(id),
                payload,
                echo,
                msg_id: o(msg_id),
            },
            Command::History {
                room,
                id,
                limit,
                since,
            } => Command::History {
                room: s(room),
                id: o(id),
                limit,
                since: since.map(|x| Since {
                    offset: x.offset,
                    epoch: s(x.epoch),
                }),
            },
            Command::Send { to, id, payload } => Command::Send {
                to: s(to),
                id: o(id),
                payload,
            },
            Command::Presence { room, id } => Command::Presence {
                room: s(room),
                id: o(id),
            },
            Command::Stats { id } => Command::Stats { id: o(id) },
            Command::Refresh { token, id } => Command::Refresh {
                token: s(token),
                id: o(id),
            },
            Command::SendUser {
                user,
                id,
                payload,
                ack,
                receipt,
            } => Command::SendUser {
                user: s(user),
                id: o(id),
                payload,
                ack,
                receipt,
            },
            Command::Ack { id } => Command::Ack { id: s(id) },
        }
    }

    #[test]
    fn every_refused_refresh_is_answered_with_a_documented_error_code() {
        use crate::security::AuthError::*;
        let all = [
            Missing,
            Malformed,
            AlgorithmNone,
            AlgorithmNotAllowed,
            BadSignature,
            Expired,
            NotYetValid,
            MissingExpiry,
            MissingSubject,
            InvalidClaims,
            SubjectChanged,
            Disabled,
        ];
        for e in all {
            let code = ErrorCode::from_wire(e.reply_code());
            assert!(code.is_some_and(|c| !c.is_malformed()), "{e:?}");
        }
    }

    #[test]
    fn refresh_carries_a_non_empty_token_and_its_id_comes_back_on_errors() {
        assert_eq!(
            parse(r#"{"type":"refresh","token":"a.b.c","id":"9"}"#),
            Ok(Command::Refresh {
                token: "a.b.c",
                id: Some("9")
            })
        );
        assert_eq!(
            parse(r#"{"type":"refresh","id":"9"}"#),
            Err((Some("9".into()), EnvelopeError::MissingField("token")))
        );
        assert_eq!(
            parse(r#"{"type":"refresh","token":""}"#),
            Err((None, EnvelopeError::EmptyToken))
        );
        assert_eq!(
            parse(r#"{"type":"refresh","token":7}"#).map_err(|(_, e)| e.code()),
            Err(ErrorCode::BadField)
        );
    }

    fn payload_of(msg: &str) -> &str {
        match parse(msg).unwrap() {
            Command::Publish { payload, .. } | Command::Send { payload, .. } => &msg[payload],
            other => panic!("not a publish: {other:?}"),
        }
    }

    fn code_of(msg: &str) -> ErrorCode {
        parse(msg).unwrap_err().1.code()
    }

    #[test]
    fn a_send_to_a_user_parses_with_ack_and_receipt_defaulting_to_false() {
        assert_eq!(
            parse(r#"{"type":"send","to_user":"ann","payload":1,"id":"5"}"#),
            Ok(Command::SendUser {
                user: "ann",
                id: Some("5"),
                payload: 41..42,
                ack: false,
                receipt: false,
            })
        );
        match parse(r#"{"type":"send","to_user":"ann","payload":[1],"ack":true,"receipt":true}"#) {
            Ok(Command::SendUser { ack, receipt, .. }) => assert!(ack && receipt),
            other => panic!("{other:?}"),
        }
        let cases = [
            (
                r#"{"type":"send","to":"0:1.0","to_user":"ann","payload":1}"#,
                EnvelopeError::TwoRecipients,
            ),
            (
                r#"{"type":"send","to":"0:1.0","ack":true,"payload":1}"#,
                EnvelopeError::AckWithoutUser,
            ),
            (
                r#"{"type":"send","to_user":"","payload":1}"#,
                EnvelopeError::EmptyUser,
            ),
            (
                r#"{"type":"send","to_user":"ann","payload":1,"ack":"yes"}"#,
                EnvelopeError::WrongType {
                    field: "ack",
                    expected: "true or false",
                },
            ),
            (
                r#"{"type":"send","to_user":"ann"}"#,
                EnvelopeError::MissingField("payload"),
            ),
        ];
        for (msg, error) in cases {
            assert_eq!(parse(msg).map_err(|(_, e)| e), Err(error), "{msg}");
            assert_eq!(error.code(), code_of(msg));
        }
        let long = format!(
            r#"{{"type":"send","to_user":"{}","payload":1}}"#,
            "u".repeat(MAX_USER_LEN + 1)
        );
        assert_eq!(parse(&long).unwrap_err().1, EnvelopeError::UserTooLong);
    }

    #[test]
    fn an_ack_names_the_message_in_its_id() {
        assert_eq!(
            parse(r#"{"type":"ack","id":"e-0-1"}"#),
            Ok(Command::Ack { id: "e-0-1" })
        );
        assert_eq!(
            parse(r#"{"type":"ack"}"#).unwrap_err().1,
            EnvelopeError::MissingField("id")
        );
    }

    #[test]
    fn a_user_message_and_its_receipt_render_every_field() {
        let mut arena = BytesMut::new();
        let from = ConnId {
            worker: 1,
            key: ConnKey::from_u64(5),
        };
        let frame = render::user_message(
            &mut arena,
            render::UserMessage {
                msg_id: "e-1-7",
                from,
                sender: Some("bob"),
                ts: 99,
                ack: true,
                redelivered: true,
                payload: br#"{"k": 1}"#,
            },
        );
        let v = text_of(&frame);
        assert_eq!(v["type"], "user_message");
        assert_eq!(v["msg_id"], "e-1-7");
        assert_eq!(v["from"], "1:5.0");
        assert_eq!(v["user"], "bob");
        assert_eq!(v["ts"], 99);
        assert_eq!(v["ack"], true);
        assert_eq!(v["redelivered"], true);
        assert!(frame.ends_with(br#""payload":{"k": 1}}"#));
        let v = text_of(&render::delivered(
            &mut arena,
            Some("s\\1"),
            "e-1-7",
            "a\"nn",
        ));
        assert_eq!(
            v,
            serde_json::json!({"v":1,"type":"delivered","id":"s\\1","msg_id":"e-1-7","to_user":"a\"nn"})
        );
        let v = text_of(&render::reply_ok_msg(&mut arena, None, "e-1-7"));
        assert_eq!(v["msg_id"], "e-1-7");
        assert_eq!(v["ok"], true);
    }

    #[test]
    fn a_join_with_id_and_name_parses() {
        assert_eq!(
            parse(r#"{"type":"join","room":"lobby","id":"1","name":"ann"}"#),
            Ok(Command::Join {
                room: "lobby",
                id: Some("1"),
                name: Some("ann"),
                presence: true,
                since: None,
            })
        );
    }

    #[test]
    fn a_join_may_resume_since_an_offset_in_an_epoch() {
        let since = |m: &str| match parse(m) {
            Ok(Command::Join { since, .. }) => since,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            since(r#"{"type":"join","room":"r","since":{"epoch":"ab","offset":41,"x":[1]}}"#),
            Some(Since {
                offset: 41,
                epoch: "ab"
            })
        );
        for bad in [
            r#"{"type":"join","room":"r","since":41}"#,
            r#"{"type":"join","room":"r","since":{"offset":41}}"#,
            r#"{"type":"join","room":"r","since":{"offset":-1,"epoch":"a"}}"#,
            r#"{"type":"join","room":"r","since":{"offset":1.5,"epoch":"a"}}"#,
            r#"{"type":"join","room":"r","since":{"offset":1,"epoch":2}}"#,
        ] {
            assert_eq!(code_of(bad), ErrorCode::BadField, "{bad}");
        }
    }

    #[test]
    fn a_publish_may_carry_a_msg_id_of_1_to_64_bytes() {
        let msg_id = |m: &str| match parse(m) {
            Ok(Command::Publish { msg_id, .. }) => msg_id,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            msg_id(r#"{"type":"publish","room":"r","payload":1,"msg_id":"m-1"}"#),
            Some("m-1")
        );
        assert_eq!(msg_id(r#"{"type":"publish","room":"r","payload":1}"#), None);
        let long = format!(
            r#"{{"type":"publish","room":"r","payload":1,"msg_id":"{}"}}"#,
            "x".repeat(65)
        );
        assert_eq!(code_of(&long), ErrorCode::BadField);
        assert_eq!(
            code_of(r#"{"type":"publish","room":"r","payload":1,"msg_id":""}"#),
            ErrorCode::BadField
        );
    }

    #[test]
    fn history_takes_a_limit_or_a_since() {
        assert_eq!(
            parse(r#"{"type":"history","room":"r","limit":5}"#),
            Ok(Command::History {
                room: "r",
                id: None,
                limit: Some(5),
                since: None
            })
        );
        assert_eq!(
            code_of(r#"{"type":"history","room":"r","limit":"5"}"#),
            ErrorCode::BadField
        );
        assert_eq!(code_of(r#"{"type":"history"}"#), ErrorCode::MissingField);
    }

    #[test]
    fn the_history_envelope_embeds_stored_message_texts_verbatim() {
        let mut arena = BytesMut::new();
        let from = ConnId {
            worker: 0,
            key: ConnKey::from_u64(1),
        };
        let big = format!("\"{}\"", "y".repeat(300));
        let frames = vec![
            render::message(&mut arena, "r", 1, from, 5, b"[1]"),
            render::message(&mut arena, "r", 2, from, 6, big.as_bytes()),
        ];
        let at = Position {
            offset: 2,
            epoch: crate::room::stream::EpochSource::new(3).next_epoch(),
        };
        let v = text_of(&render::history(
            &mut arena,
            Some("h"),
            "r",
            Some(at),
            Some(true),
            &frames,
        ));
        assert_eq!(v["offset"], 2);
        assert_eq!(v["epoch"], at.epoch.to_string());
        assert_eq!(v["recovered"], true);
        assert_eq!(v["messages"][0]["offset"], 1);
        assert_eq!(v["messages"][0]["payload"], serde_json::json!([1]));
        assert_eq!(v["messages"][1]["payload"].as_str().unwrap().len(), 300);
        let none = text_of(&render::history(&mut arena, None, "r", None, None, &[]));
        assert!(none["epoch"].is_null() && none.get("recovered").is_none());
    }

    #[test]
    fn presence_defaults_to_true_and_must_be_a_boolean() {
        let presence = |m: &str| match parse(m) {
            Ok(Command::Join { presence, .. }) => presence,
            other => panic!("{other:?}"),
        };
        assert!(presence(r#"{"type":"join","room":"r"}"#));
        assert!(presence(r#"{"type":"join","room":"r","presence":true}"#));
        assert!(!presence(r#"{"type":"join","room":"r","presence":false}"#));
        assert_eq!(
            parse(r#"{"type":"join","room":"r","presence":"no","id":"9"}"#).unwrap_err(),
            (
                Some("9".to_owned()),
                EnvelopeError::WrongType {
                    field: "presence",
                    expected: "true or false"
                }
            )
        );
        assert_eq!(
            code_of(r#"{"type":"join","room":"r","presence":false,"presence":false}"#),
            ErrorCode::BadJson
        );
    }

    #[test]
    fn escaped_strings_are_unescaped() {
        assert_eq!(
            parse(r#"{"type":"leave","room":"a\"b\u00e9"}"#),
            Ok(Command::Leave {
                room: "a\"bé",
                id: None
            })
        );
    }

    #[test]
    fn the_payload_range_covers_the_value_exactly_as_written() {
        assert_eq!(
            payload_of(r#"{"type":"publish","room":"r","payload":{"a":[1,2,{"b":"}"}]}}"#),
            r#"{"a":[1,2,{"b":"}"}]}"#
        );
        assert_eq!(
            payload_of(r#"{"payload" :  "x,\"}y"  , "type":"publish","room":"r"}"#),
            r#""x,\"}y""#
        );
        assert_eq!(
            payload_of(r#"{"type":"publish","room":"r","payload":-1.5e3 }"#),
            "-1.5e3"
        );
        assert_eq!(
            payload_of(r#"{"type":"send","to":"0:1.0","payload":null}"#),
            "null"
        );
        assert_eq!(
            payload_of(r#"{"type":"publish","x":{"payload":1},"room":"r","payload":[]}"#),
            "[]"
        );
    }

    #[test]
    fn echo_defaults_to_true_and_must_be_a_boolean() {
        let echo = |m: &str| match parse(m) {
            Ok(Command::Publish { echo, .. }) => echo,
            other => panic!("{other:?}"),
        };
        assert!(echo(r#"{"type":"publish","room":"r","payload":1}"#));
        assert!(!echo(
            r#"{"type":"publish","room":"r","payload":1,"echo":false}"#
        ));
        assert_eq!(
            code_of(r#"{"type":"publish","room":"r","payload":1,"echo":0}"#),
            ErrorCode::BadField
        );
    }

    #[test]
    fn every_malformed_envelope_maps_to_its_code() {
        let cases = [
            ("{", ErrorCode::BadJson),
            ("[1]", ErrorCode::BadJson),
            ("\"join\"", ErrorCode::BadJson),
            (
                r#"{"type":"join","type":"join","room":"r"}"#,
                ErrorCode::BadJson,
            ),
            (r#"{"v":2,"type":"join","room":"r"}"#, ErrorCode::BadVersion),
            (
                r#"{"v":"1","type":"join","room":"r"}"#,
                ErrorCode::BadVersion,
            ),
            (r#"{"room":"r"}"#, ErrorCode::MissingField),
            (r#"{"type":"join"}"#, ErrorCode::MissingField),
            (r#"{"type":"publish","room":"r"}"#, ErrorCode::MissingField),
            (r#"{"type":"send","payload":1}"#, ErrorCode::MissingField),
            (r#"{"type":"dance"}"#, ErrorCode::UnknownType),
            (r#"{"type":7}"#, ErrorCode::BadField),
            (r#"{"type":"join","room":1}"#, ErrorCode::BadField),
            (r#"{"type":"join","room":""}"#, ErrorCode::BadField),
            (
                r#"{"type":"join","room":"123456789"}"#,
                ErrorCode::RoomNameTooLong,
            ),
            (
                r#"{"type":"publish","room":"r","payload":"0123456789012345678901234567890123"}"#,
                ErrorCode::PayloadTooLarge,
            ),
        ];
        for (msg, code) in cases {
            assert_eq!(code_of(msg), code, "{msg}");
        }
    }

    #[test]
    fn a_rejection_carries_the_id_when_it_is_readable() {
        assert_eq!(
            parse(r#"{"type":"dance","id":"7"}"#).unwrap_err(),
            (Some("7".to_owned()), EnvelopeError::UnknownType)
        );
        assert_eq!(parse(r#"{"id":7}"#).unwrap_err().0, None);
    }

    #[test]
    fn the_version_may_be_omitted_or_be_one() {
        assert!(parse(r#"{"v":1,"type":"stats"}"#).is_ok());
        assert!(parse(r#"{"type":"stats"}"#).is_ok());
    }

    #[test]
    fn unknown_keys_are_ignored() {
        assert_eq!(
            parse(r#"{"type":"stats","future":{"x":[1]}}"#),
            Ok(Command::Stats { id: None })
        );
    }

    #[test]
    fn conn_ids_round_trip_and_reject_junk() {
        let id = ConnId {
            worker: 3,
            key: ConnKey::from_u64((7 << 32) | 12),
        };
        assert_eq!(id.to_string(), "3:12.7");
        assert_eq!(ConnId::parse("3:12.7"), Some(id));
        for junk in [
            "", "3", "3:12", "3:12.", "-1:1.1", "3:1 .1", "3:1.1.1", "a:1.1",
        ] {
            assert_eq!(ConnId::parse(junk), None, "{junk}");
        }
    }

    fn text_of(frame: &Bytes) -> serde_json::Value {
        let (len, at) = match frame[1] {
            126 => (u16::from_be_bytes([frame[2], frame[3]]) as usize, 4),
            127 => (
                u64::from_be_bytes(frame[2..10].try_into().unwrap()) as usize,
                10,
            ),
            n => (n as usize, 2),
        };
        assert_eq!(frame[0], 0x81, "a final text frame");
        assert_eq!(frame.len(), at + len, "the header's length is the text's");
        serde_json::from_slice(&frame[at..]).expect("valid JSON")
    }

    #[test]
    fn rendered_strings_are_escaped_and_payloads_verbatim() {
        let mut arena = BytesMut::new();
        let from = ConnId {
            worker: 1,
            key: ConnKey::from_u64(5),
        };
        let room = "q\"\\\n\u{1}é";
        let frame = render::message(&mut arena, room, 17, from, 99, br#"{"k": [1, 2]}"#);
        let v = text_of(&frame);
        assert_eq!(v["room"], room);
        assert_eq!(v["offset"], 17);
        assert_eq!(v["from"], "1:5.0");
        assert_eq!(v["payload"], serde_json::json!({"k": [1, 2]}));
        assert!(frame.ends_with(br#""payload":{"k": [1, 2]}}"#));
    }

    #[test]
    fn frames_of_every_header_size_are_well_formed() {
        let mut arena = BytesMut::new();
        let from = ConnId {
            worker: 0,
            key: ConnKey::from_u64(0),
        };
        for len in [0usize, 10, 125, 126, 65_535, 65_536, 70_000] {
            let payload = format!("\"{}\"", "x".repeat(len));
            let frame = render::direct(&mut arena, from, None, 1, payload.as_bytes());
            assert_eq!(text_of(&frame)["payload"].as_str().unwrap().len(), len);
            assert!(arena.is_empty());
        }
    }

    #[test]
    fn reply_err_carries_code_and_escaped_message() {
        let mut arena = BytesMut::new();
        let frame = render::reply_err(
            &mut arena,
            Some("x\"y"),
            ErrorCode::RoomFull,
            "room \"a\" is full",
        );
        let v = text_of(&frame);
        assert_eq!(v["id"], "x\"y");
        assert_eq!(v["ok"], false);
        assert_eq!(v["error"]["code"], "room_full");
        assert_eq!(v["error"]["message"], "room \"a\" is full");
    }

    #[test]
    fn every_error_code_is_distinct_snake_case() {
        let mut seen = std::collections::HashSet::new();
        for code in ErrorCode::ALL {
            let s = code.as_str();
            assert!(
                s.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
                "{s}"
            );
            assert!(seen.insert(s), "{s} twice");
        }
    }

    /// Parses with the default limits (64 KiB payloads).
    fn parse_wide(msg: &str) -> Result<Command<'static>, (Option<String>, EnvelopeError)> {
        let mut p = Parser::new(EnvelopeLimits::default());
        match p.parse(msg.as_bytes()) {
            Ok(c) => Ok(leak(c)),
            Err(r) => Err((r.id.map(str::to_owned), r.error)),
        }
    }

    fn wide_payload_of(msg: &str) -> &str {
        match parse_wide(msg) {
            Ok(Command::Publish { payload, .. } | Command::Send { payload, .. }) => &msg[payload],
            other => panic!("{msg}: {other:?}"),
        }
    }

    #[test]
    fn every_rfc_8259_number_in_a_payload_is_copied_verbatim_whatever_its_size() {
        let huge_mantissa = format!("-{}.{}e-7", "9".repeat(400), "1".repeat(400));
        let numbers = [
            "18446744073709551615", // u64::MAX: simd-json's own range
            "18446744073709551616", // one more: 20 digits beyond 64 bits
            "-9223372036854775809", // one below i64::MIN
            "123456789012345678901234567890",
            "-0",
            "-0.0e0",
            "1e309", // beyond f64
            "1E+400",
            "-1e-400", // below the smallest subnormal
            "2.5e-324",
            huge_mantissa.as_str(),
        ];
        for n in numbers {
            for payload in [
                n.to_owned(),
                format!("[{n}, {{\"deep\": [[{n}]], \"s\": \"{n} \\\" ]\"}}, {n}]"),
            ] {
                let msg = format!(r#"{{"type":"publish","room":"r","payload":{payload},"v":1}}"#);
                assert_eq!(wide_payload_of(&msg), payload, "{msg}");
                let msg = format!(r#"{{"type":"send","payload":{payload} ,"to":"0:1.0"}}"#);
                assert_eq!(wide_payload_of(&msg), payload, "{msg}");
            }
        }
    }

    #[test]
    fn big_numbers_outside_the_payload_are_still_the_wrong_type() {
        for n in ["18446744073709551616", "1e400", "-1e-400", "7"] {
            assert_eq!(
                parse_wide(&format!(r#"{{"type":"stats","id":{n}}}"#)).map_err(|(_, e)| e),
                Err(EnvelopeError::WrongType {
                    field: "id",
                    expected: "a string"
                }),
                "{n}"
            );
            assert_eq!(
                parse_wide(&format!(r#"{{"type":"join","room":{n},"id":"x"}}"#)).unwrap_err(),
                (
                    Some("x".to_owned()),
                    EnvelopeError::WrongType {
                        field: "room",
                        expected: "a string"
                    }
                ),
                "{n}"
            );
            assert_eq!(
                parse_wide(&format!(r#"{{"type":"stats","v":{n}}}"#)).map_err(|(_, e)| e),
                Err(EnvelopeError::BadVersion),
                "{n}"
            );
        }
        // `v` keeps its meaning beside a number that forces the second parse.
        assert!(parse_wide(r#"{"type":"publish","room":"r","payload":1e400,"v":1}"#).is_ok());
        assert_eq!(
            parse_wide(r#"{"type":"publish","room":"r","payload":1e400,"v":2}"#)
                .map_err(|(_, e)| e),
            Err(EnvelopeError::BadVersion)
        );
    }

    #[test]
    fn text_that_is_not_an_rfc_8259_number_is_still_bad_json() {
        for bad in [
            "01", "1.", ".5", "1e", "1e+", "-", "+1", "--1", "1.e5", "0x10", "1e400x", "Infinity",
            "NaN", "1_000",
        ] {
            for msg in [
                format!(r#"{{"type":"publish","room":"r","payload":{bad}}}"#),
                format!(r#"{{"type":"publish","room":"r","payload":[1e400,{bad}]}}"#),
            ] {
                assert_eq!(
                    parse_wide(&msg).map_err(|(_, e)| e),
                    Err(EnvelopeError::NotJson),
                    "{msg}"
                );
            }
        }
    }

    #[test]
    fn the_number_grammar_is_rfc_8259s() {
        for good in [
            "0", "-0", "1", "-12", "0.5", "1e5", "1E-5", "1e+05", "-0.0e-0", "10.01",
        ] {
            assert!(is_json_number(good.as_bytes()), "{good}");
        }
        for bad in [
            "", "-", "00", "01", "-01", ".1", "1.", "1e", "1e-", "+1", "1..2", "1e5e5", "1-",
        ] {
            assert!(!is_json_number(bad.as_bytes()), "{bad}");
        }
    }

    #[test]
    fn neutralising_keeps_every_offset_and_leaves_strings_and_small_integers_alone() {
        let mut text =
            br#"{"a":"1e400 \"2e500","b":[1e400,-7,18446744073709551616],"v":1}"#.to_vec();
        neutralise_numbers(&mut text);
        assert_eq!(
            std::str::from_utf8(&text).unwrap(),
            r#"{"a":"1e400 \"2e500","b":[0    ,-7,0                   ],"v":1}"#
        );
    }

    fn nested(depth: usize) -> String {
        // The envelope object is one level; the payload adds `depth - 1`.
        format!(
            r#"{{"type":"publish","room":"r","payload":{}{}}}"#,
            "[".repeat(depth - 1),
            "]".repeat(depth - 1)
        )
    }

    #[test]
    fn nesting_is_limited_to_max_depth_levels_with_a_specific_message() {
        assert!(parse_wide(&nested(MAX_DEPTH)).is_ok());
        let (_, error) = parse_wide(&nested(MAX_DEPTH + 1)).unwrap_err();
        assert_eq!(error, EnvelopeError::TooDeep { limit: MAX_DEPTH });
        assert_eq!(error.code(), ErrorCode::BadJson);
        assert_eq!(error.to_string(), "nesting deeper than 1024 levels");
    }

    #[test]
    fn an_outsized_message_gives_its_buffers_back() {
        let mut p = Parser::new(EnvelopeLimits::default());
        // The worst case per byte: a payload of tiny values, as large as a payload may be.
        let limits = p.limits();
        let zeros = (limits.max_payload_len - 3) / 2;
        let msg = format!(
            r#"{{"type":"send","to":"0:1.0","payload":[{}0]}}"#,
            "0,".repeat(zeros)
        );
        assert!(msg.len() <= max_message_len(&limits));
        assert!(matches!(p.parse(msg.as_bytes()), Ok(Command::Send { .. })));
        assert!(
            p.retained_bytes() > RETAINED_BYTES,
            "{}",
            p.retained_bytes()
        );
        p.trim();
        assert!(p.retained_bytes() <= 1024, "{}", p.retained_bytes());
        // The next message parses as usual.
        assert!(p.parse(br#"{"type":"stats"}"#).is_ok());
    }

    #[test]
    fn a_big_string_payload_keeps_its_buffers_so_steady_traffic_never_reallocates() {
        let mut p = Parser::new(EnvelopeLimits::default());
        let msg = format!(
            r#"{{"type":"publish","room":"r","payload":"{}"}}"#,
            "x".repeat(EnvelopeLimits::default().max_payload_len - 2)
        );
        assert!(p.parse(msg.as_bytes()).is_ok());
        assert!(
            p.retained_bytes() <= RETAINED_BYTES,
            "{}",
            p.retained_bytes()
        );
        let cap = p.scratch.capacity();
        for _ in 0..10 {
            assert!(p.parse(msg.as_bytes()).is_ok());
            p.trim();
        }
        assert_eq!(p.scratch.capacity(), cap);
    }

    #[test]
    fn parsing_reuses_its_buffers() {
        let mut p = Parser::new(EnvelopeLimits::default());
        let msg = br#"{"type":"publish","room":"lobby","payload":{"text":"hello"}}"#;
        assert!(p.parse(msg).is_ok());
        let cap = p.scratch.capacity();
        for _ in 0..100 {
            assert!(p.parse(msg).is_ok());
        }
        assert_eq!(p.scratch.capacity(), cap);
    }
}
