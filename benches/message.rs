//! Decoding a masked message through `Connection::handle_read`: header, unmask in place, UTF-8
//! validation (text), split off as the message.
//!
//! `cargo bench --bench message -- --quick --noplot`.
//!
//! Each iteration first copies the masked wire bytes into the (reused, cache-warm) read buffer,
//! as `recv` would, because unmasking happens in place. `copy_only` measures that copy alone, so
//! `handle_read_*` minus `copy_only` is the protocol's own cost, and `text` minus `binary` is the
//! cost of UTF-8 validation.

use bytes::BytesMut;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use ringcast::proto::{ConnLimits, Connection, Event, MessageKind};

/// A masked final frame with first byte `b0`, carrying about `len` bytes of mixed-script UTF-8
/// (cut on a char boundary).
fn masked_frame(b0: u8, len: usize) -> Vec<u8> {
    let text: Vec<u8> = "ringcast κόσμε 🦀 ".bytes().cycle().take(len).collect();
    let text = match std::str::from_utf8(&text) {
        Ok(_) => text,
        Err(e) => text[..e.valid_up_to()].to_vec(),
    };
    let key = [0x37, 0xFA, 0x21, 0x3D];
    let mut wire = vec![b0];
    match text.len() {
        n @ 0..=125 => wire.push(0x80 | n as u8),
        n @ 126..=0xFFFF => {
            wire.push(0x80 | 126);
            wire.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            wire.push(0x80 | 127);
            wire.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    wire.extend_from_slice(&key);
    wire.extend(text.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
    wire
}

fn decode_message(c: &mut Criterion) {
    for len in [1024usize, 64 * 1024] {
        let mut group = c.benchmark_group(format!("decode/{len}"));
        group.throughput(Throughput::Bytes(len as u64));
        let mut buf = BytesMut::with_capacity(2 * len + 64);
        let text = masked_frame(0x81, len);
        group.bench_function("copy_only", |b| {
            b.iter(|| {
                buf.extend_from_slice(&text);
                assert_eq!(buf.len(), text.len());
                buf.clear();
            })
        });
        for (name, wire, kind) in [
            ("handle_read_text", text.clone(), MessageKind::Text),
            (
                "handle_read_binary",
                masked_frame(0x82, len),
                MessageKind::Binary,
            ),
        ] {
            let mut conn = Connection::new(ConnLimits::default());
            group.bench_function(name, |b| {
                b.iter(|| {
                    buf.extend_from_slice(&wire);
                    conn.handle_read(&mut buf);
                    match conn.poll_event() {
                        Some(Event::Message { kind: k, payload }) if k == kind => payload,
                        other => panic!("expected a {kind:?} message, got {other:?}"),
                    }
                })
            });
        }
        group.finish();
    }
}

criterion_group!(benches, decode_message);
criterion_main!(benches);
