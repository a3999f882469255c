//! Timer wheel vs a `BTreeMap<(u64, u64), T>` baseline at 10k, 100k and 1M timers: insert, cancel
//! (in random order), and expire (advancing 1 tick at a time, as a 1 ms driver does, and in one
//! jump). Deadlines are uniform over 1 ms – 10 min, the range of heartbeats and idle timeouts,
//! inserted in random order (the wheel's worst case for memory locality) and, for expiry, also in
//! deadline order.
//!
//! Per-operation cost = reported time / timers (criterion's `thrpt` is in operations per second).
//! Every routine checks its result so the work cannot be optimised away.

use std::collections::BTreeMap;
use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion, Throughput};
use ringcast::time::{TimerKey, TimerWheel};

const SIZES: [usize; 3] = [10_000, 100_000, 1_000_000];
/// Deadlines fall in `1..=SPAN` ticks (10 min at 1 ms).
const SPAN: u64 = 600_000;

/// xorshift64: reproducible deadlines without a `rand` dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

fn deadlines(n: usize) -> Vec<u64> {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    (0..n).map(|_| 1 + rng.next() % SPAN).collect()
}

/// A random permutation of `0..n` (Fisher–Yates), the order timers get cancelled in.
fn shuffled(n: usize) -> Vec<usize> {
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    let mut order: Vec<usize> = (0..n).collect();
    for i in (1..n).rev() {
        order.swap(i, (rng.next() % (i as u64 + 1)) as usize);
    }
    order
}

fn full_wheel(ds: &[u64]) -> TimerWheel<u64> {
    let mut wheel = TimerWheel::with_capacity(0, ds.len());
    for (i, &d) in ds.iter().enumerate() {
        wheel.insert(d, i as u64);
    }
    wheel
}

fn full_map(ds: &[u64]) -> BTreeMap<(u64, u64), u64> {
    ds.iter()
        .enumerate()
        .map(|(i, &d)| ((d, i as u64), i as u64))
        .collect()
}

fn insert(c: &mut Criterion) {
    let mut group = c.benchmark_group("insert");
    group.sample_size(10);
    for n in SIZES {
        let ds = deadlines(n);
        group.throughput(Throughput::Elements(n as u64));
        group.bench_with_input(BenchmarkId::new("wheel", n), &ds, |b, ds| {
            b.iter_batched(
                || TimerWheel::with_capacity(0, ds.len()),
                |mut wheel| {
                    for (i, &d) in ds.iter().enumerate() {
                        black_box(wheel.insert(d, i as u64));
                    }
                    assert_eq!(wheel.len(), ds.len());
                    wheel
                },
                BatchSize::LargeInput,
            )
        });
        group.bench_with_input(BenchmarkId::new("btreemap", n), &ds, |b, ds| {
            b.iter_batched(
                BTreeMap::new,
                |mut map| {
                    for (i, &d) in ds.iter().enumerate() {
                        map.insert((d, i as u64), i as u64);
                    }
                    assert_eq!(map.len(), ds.len());
                    map
                },
                BatchSize::LargeInput,
            )
        });
    }
    group.finish();
}

fn cancel(c: &mut Criterion) {
    let mut group = c.benchmark_group("cancel");
    group.sample_size(10);
    for n in SIZES {
        let ds = deadlines(n);
        let order = shuffled(n);
        group.throughput(Throughput::Elements(n as u64));
        group.bench_with_input(BenchmarkId::new("wheel", n), &ds, |b, ds| {
            b.iter_batched(
                || {
                    let mut wheel = TimerWheel::with_capacity(0, ds.len());
                    let keys: Vec<TimerKey> = ds
                        .iter()
                        .enumerate()
                        .map(|(i, &d)| wheel.insert(d, i as u64))
                        .collect();
                    let keys: Vec<TimerKey> = order.iter().map(|&i| keys[i]).collect();
                    (wheel, keys)
                },
                |(mut wheel, keys)| {
                    for key in keys {
                        black_box(wheel.cancel(key).expect("live key"));
                    }
                    assert!(wheel.is_empty());
                    wheel
                },
                BatchSize::LargeInput,
            )
        });
        group.bench_with_input(BenchmarkId::new("btreemap", n), &ds, |b, ds| {
            b.iter_batched(
                || {
                    let keys: Vec<(u64, u64)> = order.iter().map(|&i| (ds[i], i as u64)).collect();
                    (full_map(ds), keys)
                },
                |(mut map, keys)| {
                    for key in keys {
                        black_box(map.remove(&key).expect("live key"));
                    }
                    assert!(map.is_empty());
                    map
                },
                BatchSize::LargeInput,
            )
        });
    }
    group.finish();
}

fn expire(c: &mut Criterion) {
    let cases = [
        ("expire_1ms_steps", 1, false),
        ("expire_one_jump", SPAN, false),
        // Deadlines inserted in deadline order, as fixed timeouts (now + 75 s) arrive: slot lists
        // then follow slab order and the cascades walk memory sequentially.
        ("expire_one_jump_sorted_inserts", SPAN, true),
    ];
    for (name, step, sorted) in cases {
        let mut group = c.benchmark_group(name);
        group.sample_size(10);
        for n in SIZES {
            let mut ds = deadlines(n);
            if sorted {
                ds.sort_unstable();
            }
            group.throughput(Throughput::Elements(n as u64));
            group.bench_with_input(BenchmarkId::new("wheel", n), &ds, |b, ds| {
                b.iter_batched(
                    || (full_wheel(ds), Vec::with_capacity(ds.len())),
                    |(mut wheel, mut out)| {
                        let mut now = 0;
                        while now < SPAN {
                            now += step;
                            wheel.advance(now, &mut out);
                        }
                        assert_eq!(out.len(), ds.len());
                        (wheel, out)
                    },
                    BatchSize::LargeInput,
                )
            });
            group.bench_with_input(BenchmarkId::new("btreemap", n), &ds, |b, ds| {
                b.iter_batched(
                    || (full_map(ds), Vec::with_capacity(ds.len())),
                    |(mut map, mut out)| {
                        let mut now = 0;
                        while now < SPAN {
                            now += step;
                            while let Some(entry) = map.first_entry() {
                                if entry.key().0 > now {
                                    break;
                                }
                                out.push(entry.remove());
                            }
                        }
                        assert_eq!(out.len(), ds.len());
                        (map, out)
                    },
                    BatchSize::LargeInput,
                )
            });
        }
        group.finish();
    }
}

criterion_group!(benches, insert, cancel, expire);
criterion_main!(benches);
