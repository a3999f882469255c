//! The load tool's per-message CPU cost outside syscalls: decoding echoed server frames (and
//! counting raw echoed bytes). What `ringcast-bench` spends per message must stay far below what
//! a server spends, or the tool becomes the bottleneck it is meant to expose.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use ringcast::proto::frame::{FrameHeader, MAX_HEADER_LEN};
use ringcast::proto::OpCode;
use ringcast_load::codec::{RawCounter, ServerFrames};

/// `count` unmasked binary frames of `payload` bytes back to back, as an echo server sends them.
fn echoed(payload: usize, count: usize) -> Vec<u8> {
    let mut head = [0; MAX_HEADER_LEN];
    let n = FrameHeader::server(OpCode::Binary, payload as u64).encode(&mut head);
    let mut out = Vec::with_capacity((n + payload) * count);
    for _ in 0..count {
        out.extend_from_slice(&head[..n]);
        out.resize(out.len() + payload, 0xA5);
    }
    out
}

fn decode(c: &mut Criterion) {
    let mut group = c.benchmark_group("load_decode");
    for payload in [32usize, 16 * 1024] {
        let count = 256;
        let wire = echoed(payload, count);
        group.throughput(Throughput::Elements(count as u64));
        group.bench_with_input(
            BenchmarkId::new("server_frames", payload),
            &wire,
            |b, wire| {
                let mut frames = ServerFrames::new(payload as u64);
                b.iter(|| {
                    let mut messages = 0usize;
                    frames
                        .feed(wire, |_| messages += 1)
                        .expect("valid server frames");
                    assert_eq!(messages, count);
                })
            },
        );
        group.bench_with_input(
            BenchmarkId::new("raw_counter", payload),
            &wire,
            |b, wire| {
                let mut raw = RawCounter::new(wire.len() / count);
                b.iter(|| assert_eq!(raw.feed(std::hint::black_box(wire.len())), count as u64))
            },
        );
    }
    group.finish();
}

criterion_group!(benches, decode);
criterion_main!(benches);
