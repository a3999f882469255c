//! Any bytes → `Parser::parse` never panics, and what it accepts is sound: room names respect
//! the limits, and a payload range, rendered verbatim into a server `message` frame, yields a
//! frame whose text is a valid JSON object (the parser, fed that text, fails only with
//! `unknown_type`: the JSON is well-formed, the type is a server one).
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use ringcast::envelope::{render, Command, ConnId, EnvelopeError, EnvelopeLimits, Parser};
use ringcast::table::ConnKey;

const LIMITS: EnvelopeLimits = EnvelopeLimits {
    max_room_name_len: 32,
    max_payload_len: 4096,
};

fuzz_target!(|data: &[u8]| {
    let mut parser = Parser::new(LIMITS);
    let mut check = Parser::new(EnvelopeLimits {
        max_room_name_len: 1 << 20,
        max_payload_len: 1 << 20,
    });
    let mut arena = BytesMut::new();
    let from = ConnId {
        worker: 1,
        key: ConnKey::from_u64(7),
    };
    let (room, payload) = match parser.parse(data) {
        Err(rejected) => {
            assert!(rejected.id.is_none_or(|id| id.len() <= 128));
            return;
        }
        Ok(Command::Publish { room, payload, .. }) => (room, Some(payload)),
        Ok(Command::Send { payload, .. }) => ("direct", Some(payload)),
        Ok(Command::SendUser { user, payload, .. }) => {
            assert!(!user.is_empty() && user.len() <= ringcast::envelope::MAX_USER_LEN);
            ("direct", Some(payload))
        }
        Ok(Command::Ack { id }) => {
            assert!(id.len() <= 128);
            return;
        }
        Ok(
            Command::Join { room, .. }
            | Command::Leave { room, .. }
            | Command::Presence { room, .. }
            | Command::History { room, .. },
        ) => (room, None),
        Ok(Command::Stats { .. }) => return,
        Ok(Command::Refresh { token, id }) => {
            assert!(!token.is_empty());
            assert!(id.is_none_or(|id| id.len() <= 128));
            return;
        }
    };
    assert!(!room.is_empty() && room.len() <= LIMITS.max_room_name_len);
    let body: &[u8] = match &payload {
        Some(range) => {
            assert!(range.end <= data.len() && range.len() <= LIMITS.max_payload_len);
            &data[range.clone()]
        }
        None => b"null",
    };
    let room = room.to_owned();
    let frame = render::message(&mut arena, &room, 1, from, 2, body);
    let text_at = match frame[1] {
        126 => 4,
        127 => 10,
        _ => 2,
    };
    let reparsed = check.parse(&frame[text_at..]).map_err(|r| r.error);
    assert_eq!(
        reparsed,
        Err(EnvelopeError::UnknownType),
        "{:?}",
        String::from_utf8_lossy(&frame[text_at..])
    );
});
