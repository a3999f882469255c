//! A byte stream fed to a `Connection` whole and split at data-chosen points gives the same
//! events and the same transmitted bytes, never panics, and what it transmits is a sequence of
//! well-formed server frames with nothing after a close.
//!
//! The input is a small program that writes mostly-valid masked client frames (so the fuzzer
//! gets past the header checks into assembly, UTF-8 and close handling), with raw bytes mixed in.
#![no_main]

use bytes::{Buf, BytesMut};
use libfuzzer_sys::fuzz_target;
use ringcast::proto::{
    decode_header, BackpressurePolicy, ConnLimits, Connection, DecodeLimits, Event, HeaderStatus,
    OpCode, State,
};

struct Input<'a>(&'a [u8]);

impl<'a> Input<'a> {
    fn byte(&mut self) -> Option<u8> {
        let (&b, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(b)
    }
    fn take(&mut self, n: usize) -> &'a [u8] {
        let (head, rest) = self.0.split_at(n.min(self.0.len()));
        self.0 = rest;
        head
    }
}

/// Opcodes weighted toward the valid ones; 0x3 and 0xB are reserved.
const OPCODES: [u8; 12] = [0x1, 0x2, 0x0, 0x0, 0x9, 0xA, 0x8, 0x1, 0x2, 0x0, 0x3, 0xB];
/// Lengths around every encoding boundary and the limits used below.
const EDGE_LENGTHS: [usize; 8] = [0, 125, 126, 127, 300, 501, 65535, 65536];
/// Close codes, valid and not.
const CLOSE_CODES: [u16; 8] = [1000, 1001, 1005, 1012, 3000, 4999, 5000, 0];
/// Payload filler that is valid UTF-8 in any whole number of repetitions.
const FILLER: &[u8] = "aé€😀".as_bytes();

fn write_frame(inp: &mut Input<'_>, op: u8, wire: &mut Vec<u8>) {
    let opcode = OPCODES[usize::from(op & 0x0F) % OPCODES.len()];
    let fin = op & 0x20 != 0 || opcode & 0x8 != 0;
    let rsv = if op & 0xF0 == 0x70 { op & 0x7 } else { 0 };
    let selector = inp.byte().unwrap_or(0);
    let len = if selector < 224 {
        usize::from(selector & 0x7F)
    } else {
        EDGE_LENGTHS[usize::from(selector & 7)]
    };
    let key: [u8; 4] = {
        let k = inp.take(4);
        [0, 1, 2, 3].map(|i| k.get(i).copied().unwrap_or(0x5A))
    };
    let mut payload = inp.take(len).to_vec();
    // Pad with filler (valid UTF-8 when whole), so long frames need no long input.
    let missing = len - payload.len();
    payload.extend(FILLER.iter().cycle().take(missing));
    if opcode == 0x8 && len >= 2 && op & 0x40 != 0 {
        let code = CLOSE_CODES[usize::from(payload[0] & 7)];
        payload[..2].copy_from_slice(&code.to_be_bytes());
    }

    wire.push((u8::from(fin) << 7) | (rsv << 4) | opcode);
    match len {
        0..=125 => wire.push(0x80 | len as u8),
        126..=0xFFFF => {
            wire.push(0x80 | 126);
            wire.extend_from_slice(&(len as u16).to_be_bytes());
        }
        _ => {
            wire.push(0x80 | 127);
            wire.extend_from_slice(&(len as u64).to_be_bytes());
        }
    }
    wire.extend_from_slice(&key);
    wire.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
}

struct Run {
    events: Vec<Event>,
    sent: Vec<u8>,
    state: State,
}

fn run(limits: ConnLimits, wire: &[u8], cuts: &[usize]) -> Run {
    let mut conn = Connection::new(limits);
    let mut buf = BytesMut::new();
    let mut events = Vec::new();
    let mut start = 0;
    for &end in cuts.iter().chain([&wire.len()]) {
        buf.extend_from_slice(&wire[start..end]);
        conn.handle_read(&mut buf);
        assert!(conn.read_hint() as u64 <= limits.max_frame_len);
        events.extend(std::iter::from_fn(|| conn.poll_event()));
        start = end;
    }
    let mut out = Vec::new();
    let n = conn.poll_transmit(&mut out);
    let sent = out.concat();
    assert_eq!(n, sent.len());
    assert_eq!(conn.buffered_bytes(), n);
    Run {
        events,
        sent,
        state: conn.state(),
    }
}

/// The server's output parses as unmasked frames, and nothing follows a close frame.
fn check_output(sent: &[u8]) {
    let limits = DecodeLimits::client(u64::MAX >> 1);
    let mut rest = sent;
    while !rest.is_empty() {
        let Ok(HeaderStatus::Complete { header, header_len }) = decode_header(rest, &limits) else {
            panic!("malformed output frame");
        };
        let end = header_len + header.payload_len as usize;
        assert!(end <= rest.len());
        rest.advance(end);
        if header.opcode == OpCode::Close {
            assert!(rest.is_empty(), "a frame after our close");
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let mut inp = Input(data);
    let Some(cfg) = inp.byte() else { return };
    let limits = ConnLimits {
        max_frame_len: if cfg & 1 != 0 { 300 } else { 1 << 20 },
        max_message_len: if cfg & 2 != 0 { 500 } else { 1 << 20 },
        max_backpressure: if cfg & 4 != 0 { 64 } else { 1 << 20 },
        backpressure_policy: if cfg & 8 != 0 {
            BackpressurePolicy::DropData
        } else {
            BackpressurePolicy::Close
        },
    };
    let cut_seeds: Vec<u16> = (0..cfg >> 4)
        .map(|_| u16::from_le_bytes([inp.byte().unwrap_or(0), inp.byte().unwrap_or(0)]))
        .collect();

    let mut wire = Vec::new();
    while let Some(op) = inp.byte() {
        if op >> 6 == 0 {
            wire.extend_from_slice(inp.take(usize::from(op & 0x3F)));
        } else {
            write_frame(&mut inp, op, &mut wire);
        }
    }

    let mut cuts: Vec<usize> = cut_seeds
        .iter()
        .map(|&c| usize::from(c) % (wire.len() + 1))
        .collect();
    cuts.sort_unstable();

    let whole = run(limits, &wire, &[]);
    let split = run(limits, &wire, &cuts);
    assert_eq!(whole.events, split.events);
    assert_eq!(whole.sent, split.sent);
    assert_eq!(whole.state, split.state);
    check_output(&whole.sent);
    if let Some(i) = whole
        .events
        .iter()
        .position(|e| matches!(e, Event::Failed(_) | Event::PeerClosed { .. }))
    {
        assert_eq!(
            i + 1,
            whole.events.len(),
            "nothing after a failure or the peer's close"
        );
        assert_eq!(whole.state, State::Closed);
    }
});
