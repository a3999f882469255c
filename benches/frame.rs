//! Frame header decode and payload unmasking (fast path against the scalar reference).
//!
//! `cargo bench --bench frame -- --quick --noplot`. Each closure asserts on its result so nothing
//! is optimised away.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use ringcast::proto::mask::{apply_mask, apply_mask_scalar};
use ringcast::proto::{decode_header, DecodeLimits, HeaderStatus};

fn header_decode(c: &mut Criterion) {
    let limits = DecodeLimits::server(16 << 20);
    let mut group = c.benchmark_group("header_decode");
    for (name, wire) in [
        ("7-bit", vec![0x81, 0x85, 1, 2, 3, 4]),
        ("16-bit", vec![0x82, 0xFE, 0x04, 0x00, 1, 2, 3, 4]),
        (
            "64-bit",
            vec![0x82, 0xFF, 0, 0, 0, 0, 0, 1, 0, 0, 1, 2, 3, 4],
        ),
    ] {
        group.throughput(Throughput::Elements(1));
        group.bench_function(name, |b| {
            b.iter(|| {
                let status = decode_header(black_box(&wire), &limits).unwrap();
                assert!(matches!(status, HeaderStatus::Complete { .. }));
                status
            })
        });
    }
    group.finish();
}

fn unmask(c: &mut Criterion) {
    let key = [0x37, 0xFA, 0x21, 0x3D];
    for len in [16usize, 1024, 64 * 1024] {
        let mut group = c.benchmark_group(format!("unmask/{len}"));
        group.throughput(Throughput::Bytes(len as u64));
        let mut buf = vec![0xA5u8; len];
        group.bench_function("fast", |b| {
            b.iter(|| {
                apply_mask(black_box(&mut buf), key, 0);
                assert_ne!(buf[len - 1], 0);
            })
        });
        group.bench_function("scalar", |b| {
            b.iter(|| {
                apply_mask_scalar(black_box(&mut buf), key, 0);
                assert_ne!(buf[len - 1], 0);
            })
        });
        group.finish();
    }
}

criterion_group!(benches, header_decode, unmask);
criterion_main!(benches);
