//! The bytes a room message is kept and carried as in Redis, and the Redis key of each thing.
//!
//! Owns one format: a published message is a **record**, `<offset>:<epoch>:<body>`, stored as
//! the one field of its Redis Stream entry and sent as the pub/sub message of the room's
//! channel. The publish script writes the `<offset>:<epoch>:` prefix (only Redis knows the
//! offset); the node writes the [`Body`]. Every node renders the `message` frame from a record
//! once, whatever its number of local members.
//!
//! Body layout (little endian): `from.worker` u32, `from.key` u64, `ts` u64, publishing node u64,
//! flags u8 (bit 0: echo), user length u16, user bytes, then the payload JSON verbatim.
//!
//! It must never do I/O; a record that does not parse is refused with a [`RecordError`], never
//! half-read.

use bytes::{BufMut, Bytes, BytesMut};

use crate::envelope::ConnId;
use crate::room::stream::{Epoch, Position};
use crate::table::ConnKey;

/// Fixed part of a body before the user bytes.
const FIXED: usize = 4 + 8 + 8 + 8 + 1 + 2;

/// Why a record could not be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    /// No `<offset>:` prefix of decimal digits.
    #[error("record without an offset prefix")]
    Offset,
    /// No `<epoch>:` of 16 lowercase hex digits after the offset.
    #[error("record without an epoch")]
    Epoch,
    /// The body is shorter than its fixed fields or its user length.
    #[error("record body truncated")]
    Truncated,
    /// The user id is not UTF-8.
    #[error("record user id is not UTF-8")]
    User,
}

/// What the publishing node knows of a message (everything but its offset and epoch).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Body<'a> {
    /// The publisher (on the publishing node).
    pub from: ConnId,
    /// Its user id, when authenticated.
    pub user: Option<&'a str>,
    /// Unix ms when the owner received the publish.
    pub ts: u64,
    /// The publishing node's id.
    pub node: u64,
    /// Whether the publisher receives its own message.
    pub echo: bool,
    /// The payload JSON, verbatim.
    pub payload: &'a [u8],
}

impl Body<'_> {
    /// Encodes the body into `out` (which it splits off: one allocation reused by the caller).
    pub fn encode(&self, out: &mut BytesMut) -> Bytes {
        let user = self.user.unwrap_or("").as_bytes();
        out.reserve(FIXED + user.len() + self.payload.len());
        out.put_u32_le(self.from.worker);
        out.put_u64_le(self.from.key.to_u64());
        out.put_u64_le(self.ts);
        out.put_u64_le(self.node);
        out.put_u8(u8::from(self.echo) | (u8::from(self.user.is_some()) << 1));
        out.put_u16_le(user.len() as u16);
        out.put_slice(user);
        out.put_slice(self.payload);
        out.split().freeze()
    }
}

/// A record read back: its position and body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record<'a> {
    /// The offset and epoch Redis gave it.
    pub at: Position,
    /// What the publisher sent.
    pub body: Body<'a>,
}

/// Reads `<offset>:<epoch>:` (what the scripts answer and prefix records with).
pub fn parse_position(text: &[u8]) -> Result<(Position, &[u8]), RecordError> {
    let colon = text
        .iter()
        .position(|&b| b == b':')
        .ok_or(RecordError::Offset)?;
    let digits = &text[..colon];
    if digits.is_empty() || digits.len() > 19 || !digits.iter().all(u8::is_ascii_digit) {
        return Err(RecordError::Offset);
    }
    let offset = digits
        .iter()
        .fold(0u64, |n, &d| n * 10 + u64::from(d - b'0'));
    let rest = &text[colon + 1..];
    if rest.len() < 16 || rest.get(16).is_some_and(|&b| b != b':') {
        return Err(RecordError::Epoch);
    }
    let epoch = Epoch::from_text(&rest[..16]).ok_or(RecordError::Epoch)?;
    let rest = rest.get(17..).unwrap_or(&[]);
    Ok((Position { offset, epoch }, rest))
}

/// Reads a whole record.
pub fn parse(record: &[u8]) -> Result<Record<'_>, RecordError> {
    let (at, body) = parse_position(record)?;
    if body.len() < FIXED {
        return Err(RecordError::Truncated);
    }
    let u32_at = |i: usize| u32::from_le_bytes(body[i..i + 4].try_into().expect("4 bytes"));
    let u64_at = |i: usize| u64::from_le_bytes(body[i..i + 8].try_into().expect("8 bytes"));
    let worker = u32_at(0);
    let key = ConnKey::from_u64(u64_at(4));
    let ts = u64_at(12);
    let node = u64_at(20);
    let flags = body[28];
    let user_len = usize::from(u16::from_le_bytes([body[29], body[30]]));
    let rest = &body[FIXED..];
    if rest.len() < user_len {
        return Err(RecordError::Truncated);
    }
    let (user, payload) = rest.split_at(user_len);
    let user = if flags & 2 != 0 {
        Some(std::str::from_utf8(user).map_err(|_| RecordError::User)?)
    } else {
        None
    };
    Ok(Record {
        at,
        body: Body {
            from: ConnId { worker, key },
            user,
            ts,
            node,
            echo: flags & 1 != 0,
            payload,
        },
    })
}

/// The Redis keys and channel of one room. The room name sits in a `{…}` hash tag so that, on a
/// Redis Cluster, every key of a room lands on one shard (a script may only touch one).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoomKeys {
    /// The last offset assigned (an integer).
    pub offset: String,
    /// The stream's epoch (16 hex digits).
    pub epoch: String,
    /// The Redis Stream of records (entry id `<offset>-0`).
    pub stream: String,
    /// The pub/sub channel records are published on.
    pub channel: String,
}

/// Prefix of every key and channel ringcast writes.
pub const PREFIX: &str = "rc:{";

impl RoomKeys {
    /// The keys of `room`.
    pub fn of(room: &str) -> RoomKeys {
        RoomKeys {
            offset: format!("{PREFIX}{room}}}:o"),
            epoch: format!("{PREFIX}{room}}}:e"),
            stream: format!("{PREFIX}{room}}}:s"),
            channel: format!("{PREFIX}{room}}}:m"),
        }
    }

    /// The `msg_id` key of a publish by `sender` (`u:<user>` or `c:<node>:<conn>`).
    pub fn dedup(room: &str, sender: &str, msg_id: &str) -> String {
        format!("{PREFIX}{room}}}:d:{}:{sender}:{msg_id}", sender.len())
    }

    /// The room a channel name is of, if it is one of ours.
    pub fn room_of_channel(channel: &[u8]) -> Option<&str> {
        let inner = channel
            .strip_prefix(PREFIX.as_bytes())?
            .strip_suffix(b"}:m")?;
        std::str::from_utf8(inner).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::room::stream::EpochSource;

    fn body(user: Option<&'static str>) -> Body<'static> {
        Body {
            from: ConnId {
                worker: 3,
                key: ConnKey::from_u64(0x1234_5678_9abc),
            },
            user,
            ts: 1_700_000_000_123,
            node: 0xfeed,
            echo: false,
            payload: br#"{"a":[1,2]}"#,
        }
    }

    fn as_record(at: Position, body: &Body<'_>) -> Vec<u8> {
        let mut out = format!("{}:{}:", at.offset, at.epoch).into_bytes();
        out.extend_from_slice(&body.encode(&mut BytesMut::new()));
        out
    }

    #[test]
    fn a_record_reads_back_what_was_written() {
        let at = Position {
            offset: 42,
            epoch: EpochSource::new(7).next_epoch(),
        };
        for user in [None, Some("ann"), Some("")] {
            let b = body(user);
            let bytes = as_record(at, &b);
            assert_eq!(parse(&bytes), Ok(Record { at, body: b }));
        }
    }

    #[test]
    fn a_damaged_record_is_refused_not_half_read() {
        let at = Position {
            offset: 1,
            epoch: EpochSource::new(7).next_epoch(),
        };
        let good = as_record(at, &body(Some("ann")));
        assert_eq!(parse(b"x:0123456789abcdef:"), Err(RecordError::Offset));
        assert_eq!(parse(b"12:0123456789ABCDEF:"), Err(RecordError::Epoch));
        assert_eq!(parse(b"12:0123:"), Err(RecordError::Epoch));
        let prefix = good.iter().filter(|&&b| b == b':').count();
        assert!(prefix >= 2);
        // Cut inside the fixed fields, then inside the user id.
        let head = format!("1:{}:", at.epoch).len();
        assert_eq!(parse(&good[..head + 10]), Err(RecordError::Truncated));
        assert_eq!(
            parse(&good[..head + FIXED + 1]),
            Err(RecordError::Truncated)
        );
    }

    #[test]
    fn a_position_reply_is_offset_and_epoch() {
        let (at, rest) = parse_position(b"7:00000000000000ff").unwrap();
        assert_eq!(at.offset, 7);
        assert_eq!(at.epoch.to_string(), "00000000000000ff");
        assert!(rest.is_empty());
    }

    #[test]
    fn every_key_of_a_room_shares_its_hash_tag_and_the_channel_names_the_room() {
        let k = RoomKeys::of("chat:1");
        for key in [&k.offset, &k.epoch, &k.stream, &k.channel] {
            assert!(key.starts_with("rc:{chat:1}:"), "{key}");
        }
        assert_eq!(
            RoomKeys::room_of_channel(k.channel.as_bytes()),
            Some("chat:1")
        );
        assert_eq!(RoomKeys::room_of_channel(b"other"), None);
        // The sender's length is in the key, so `u:a` + `b:c` never meets `u:a:b` + `c`.
        assert_ne!(
            RoomKeys::dedup("r", "u:a", "b:c"),
            RoomKeys::dedup("r", "u:a:b", "c")
        );
    }
}
