//! permessage-deflate, sans-IO: the negotiation and the inflate path.
//!
//! - Negotiation: an accepted answer, read back as an offer, gives the same parameters (the
//!   answer says exactly what was chosen), its windows never exceed what the client allowed, and
//!   an answer is only given for a header that names the extension.
//! - Codec: messages compressed with any level, window and takeover round-trip through an
//!   inflater with the same parameters; arbitrary bytes inflated under a limit never yield or
//!   reserve more than the limit allows.
//! - Connection: compressed client frames (RSV1) split at a data-chosen point are delivered as
//!   the original messages.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use ringcast::proto::conn::Compression;
use ringcast::proto::deflate::negotiate::negotiate_header;
use ringcast::proto::deflate::{Deflater, InflateError, Inflater, ServerPolicy};
use ringcast::proto::{ConnLimits, Connection, Event, MessageKind};

fn negotiation(header: &[u8], cfg: u8) {
    let policy = ServerPolicy {
        server_no_context_takeover: cfg & 1 != 0,
        client_no_context_takeover: cfg & 2 != 0,
        server_max_window_bits: 9 + (cfg >> 2) % 7,
        client_max_window_bits: 8 + (cfg >> 5),
    };
    let Some(accepted) = negotiate_header(header, &policy) else {
        return;
    };
    let lower = String::from_utf8_lossy(header).to_ascii_lowercase();
    assert!(lower.contains("permessage-deflate"));
    let p = accepted.params;
    assert!((8..=15).contains(&p.server_max_window_bits));
    assert!((8..=15).contains(&p.client_max_window_bits));
    assert!(p.server_max_window_bits <= policy.server_max_window_bits);
    assert!(p.server_no_context_takeover >= policy.server_no_context_takeover);
    assert!(p.client_no_context_takeover >= policy.client_no_context_takeover);
    let again = negotiate_header(accepted.response.as_bytes(), &ServerPolicy::default())
        .expect("our answer is a valid offer");
    assert_eq!(again.params, p, "{:?}", accepted.response);
}

fn codec(cfg: u8, data: &[u8]) {
    let level = u32::from(cfg % 10);
    let bits = 9 + (cfg >> 4) % 7;
    let takeover = cfg & 0x80 == 0;
    let mut def = Deflater::new(level, bits, !takeover);
    let mut inf = Inflater::new(bits, !takeover);
    let pieces = data.split(|&b| b == 0xA5);
    for piece in pieces {
        let mut z = Vec::new();
        def.compress(piece, &mut z);
        let mut out = Vec::new();
        inf.inflate(&z, piece.len(), &mut out)
            .expect("our own output inflates");
        assert_eq!(out, piece);
        if !piece.is_empty() {
            let mut out = Vec::new();
            let mut fresh = Inflater::new(15, true);
            let r = fresh.inflate(&z, piece.len() - 1, &mut out);
            if takeover {
                // A message may refer to earlier ones: a fresh context may fail either way.
                assert!(out.capacity() <= piece.len());
            } else {
                assert_eq!(r, Err(InflateError::TooBig));
            }
        }
    }
    // Arbitrary bytes under a limit.
    let max = usize::from(cfg) * 37;
    let mut out = Vec::new();
    let r = Inflater::new(bits, false).inflate(data, max, &mut out);
    assert!(out.capacity() <= max + 1);
    if r.is_ok() {
        assert!(out.len() <= max);
    }
}

fn connection(cfg: u8, data: &[u8]) {
    let params = negotiate_header(b"permessage-deflate", &ServerPolicy::default())
        .unwrap()
        .params;
    let mut conn = Connection::with_compression(
        ConnLimits::default(),
        Some(Compression {
            params,
            dedicated_level: None,
        }),
    );
    let mut def = Deflater::new(u32::from(cfg % 10), 15, false);
    let messages: Vec<&[u8]> = data.split(|&b| b == 0x5A).collect();
    let mut wire = Vec::new();
    for m in &messages {
        let mut z = Vec::new();
        def.compress(m, &mut z);
        // Fragment into two frames when long enough: RSV1 on the first only.
        let cut = if z.len() > 2 && cfg & 1 != 0 {
            z.len() / 2
        } else {
            z.len()
        };
        for (i, part) in [&z[..cut], &z[cut..]].into_iter().enumerate() {
            if i == 1 && cut == z.len() {
                break;
            }
            let fin = i == 1 || cut == z.len();
            let first = (if i == 0 { 0x40 | 0x02 } else { 0x00 }) | (u8::from(fin) << 7);
            wire.push(first);
            assert!(part.len() <= 0xFFFF);
            if part.len() < 126 {
                wire.push(0x80 | part.len() as u8);
            } else {
                wire.push(0x80 | 126);
                wire.extend_from_slice(&(part.len() as u16).to_be_bytes());
            }
            wire.extend_from_slice(&[0, 0, 0, 0]);
            wire.extend_from_slice(part);
        }
    }
    let split = usize::from(cfg) * 7 % (wire.len() + 1);
    let mut buf = BytesMut::new();
    let mut got = Vec::new();
    for chunk in [&wire[..split], &wire[split..]] {
        buf.extend_from_slice(chunk);
        conn.handle_read(&mut buf);
        while let Some(e) = conn.poll_event() {
            match e {
                Event::Message { kind, payload } => {
                    assert_eq!(kind, MessageKind::Binary);
                    got.push(payload.to_vec());
                }
                other => panic!("unexpected {other:?}"),
            }
        }
    }
    assert_eq!(got, messages);
}

fuzz_target!(|data: &[u8]| {
    let Some((&cfg, rest)) = data.split_first() else {
        return;
    };
    match cfg & 3 {
        0 => negotiation(rest, cfg.rotate_right(2)),
        1 | 2 => codec(
            cfg.rotate_right(2) ^ rest.first().copied().unwrap_or(0),
            rest,
        ),
        _ => connection(cfg >> 2, rest),
    }
});
