//! Encode-once fan-out on the sans-IO path, against writing the same frame without room logic.
//!
//! `cargo bench --bench fanout -- --quick --noplot`.
//!
//! - `envelope/parse_publish`: parsing a typical publish envelope (simd-json tape over the
//!   worker's scratch copy, payload located as a byte range).
//! - `fanout/rooms/N`: what one publish costs the owner and member workers for a room of N local
//!   members: render the message frame once (header + JSON + verbatim payload), walk the room's
//!   member slab, queue a clone of the one `Bytes` on each member's machine (`send_encoded`),
//!   then let every machine hand its bytes to the "socket" (`poll_transmit` + `on_written`).
//! - `fanout/baseline/N`: the same pre-rendered frame queued and drained on the same N machines by
//!   a plain loop: no room lookup, no rendering. `rooms / baseline` is the cost of the room logic.
//!
//! Throughput is in deliveries (elements): criterion reports deliveries per second.

use bytes::{Bytes, BytesMut};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use ringcast::envelope::{render, Command, ConnId, EnvelopeLimits, Parser};
use ringcast::proto::{ConnLimits, Connection};
use ringcast::room::{Audience, LocalRooms, RoomLimits};
use ringcast::table::ConnKey;

const PAYLOAD: &[u8] = br#"{"name":"ann","text":"hello, everyone in the room"}"#;

fn parse(c: &mut Criterion) {
    let msg = br#"{"v":1,"type":"publish","room":"lobby","id":"42","payload":{"name":"ann","text":"hello, everyone in the room"}}"#;
    let mut parser = Parser::new(EnvelopeLimits::default());
    let mut group = c.benchmark_group("envelope");
    group.throughput(Throughput::Bytes(msg.len() as u64));
    group.bench_function("parse_publish", |b| {
        b.iter(|| match parser.parse(msg) {
            Ok(Command::Publish { payload, .. }) => assert_eq!(&msg[payload], PAYLOAD),
            other => panic!("{other:?}"),
        })
    });
    group.finish();
}

fn machines(n: usize) -> Vec<Connection> {
    (0..n)
        .map(|_| Connection::new(ConnLimits::default()))
        .collect()
}

fn drain(machines: &mut [Connection], wire: &mut Vec<Bytes>) {
    for m in machines {
        let n = m.poll_transmit(wire);
        wire.clear();
        m.on_written(n);
    }
}

fn fanout(c: &mut Criterion) {
    let from = ConnId {
        worker: 0,
        key: ConnKey::from_u64(0),
    };
    for n in [10usize, 1_000, 10_000] {
        let mut group = c.benchmark_group("fanout");
        group.throughput(Throughput::Elements(n as u64));
        let mut rooms = LocalRooms::new();
        for i in 0..n as u64 {
            let key = ConnKey::from_u64(i);
            rooms
                .begin_join(key, "lobby", &RoomLimits::default())
                .unwrap();
            assert!(rooms.confirm_join(key, "lobby", true));
        }
        let mut members = machines(n);
        let mut arena = BytesMut::new();
        let mut wire = Vec::new();
        let mut seq = 0;
        group.bench_function(format!("rooms/{n}"), |b| {
            b.iter(|| {
                seq += 1;
                let frame =
                    render::message(&mut arena, "lobby", seq, from, 1_700_000_000_000, PAYLOAD);
                let sent = rooms.fan_out("lobby", Audience::Members, &frame, None, |key, f| {
                    members[key.index() as usize].send_encoded(f).unwrap();
                });
                assert_eq!(sent, n);
                drain(&mut members, &mut wire);
            })
        });
        let frame = render::message(&mut arena, "lobby", 1, from, 1_700_000_000_000, PAYLOAD);
        let mut plain = machines(n);
        group.bench_function(format!("baseline/{n}"), |b| {
            b.iter(|| {
                for m in plain.iter_mut() {
                    m.send_encoded(frame.clone()).unwrap();
                }
                drain(&mut plain, &mut wire);
            })
        });
        group.finish();
    }
}

criterion_group!(benches, parse, fanout);
criterion_main!(benches);
