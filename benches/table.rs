//! Connection table vs a bare `slab::Slab` (the cost of generation checks) at 100k connections:
//! insert, get by key, remove by key. Per-operation cost = reported time / 100 000.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use ringcast::table::{ConnKey, ConnTable};
use slab::Slab;

const N: usize = 100_000;

fn table(c: &mut Criterion) {
    let mut group = c.benchmark_group("table");
    group.sample_size(20);
    group.throughput(Throughput::Elements(N as u64));

    group.bench_function("conntable/insert", |b| {
        b.iter_batched(
            || ConnTable::with_capacity(N),
            |mut table| {
                for i in 0..N as u64 {
                    black_box(table.insert(i));
                }
                table
            },
            BatchSize::LargeInput,
        )
    });
    group.bench_function("slab/insert", |b| {
        b.iter_batched(
            || Slab::with_capacity(N),
            |mut slab| {
                for i in 0..N as u64 {
                    black_box(slab.insert(i));
                }
                slab
            },
            BatchSize::LargeInput,
        )
    });

    let mut table = ConnTable::with_capacity(N);
    let keys: Vec<ConnKey> = (0..N as u64).map(|i| table.insert(i)).collect();
    let mut slab = Slab::with_capacity(N);
    let indices: Vec<usize> = (0..N as u64).map(|i| slab.insert(i)).collect();
    group.bench_function("conntable/get", |b| {
        b.iter(|| {
            let sum: u64 = keys.iter().map(|&k| *table.get(k).expect("live")).sum();
            assert_eq!(sum, (N as u64 - 1) * N as u64 / 2);
        })
    });
    group.bench_function("slab/get", |b| {
        b.iter(|| {
            let sum: u64 = indices.iter().map(|&k| *slab.get(k).expect("live")).sum();
            assert_eq!(sum, (N as u64 - 1) * N as u64 / 2);
        })
    });

    group.bench_function("conntable/remove", |b| {
        b.iter_batched(
            table_full,
            |(mut table, keys)| {
                for key in keys {
                    black_box(table.remove(key).expect("live"));
                }
                table
            },
            BatchSize::LargeInput,
        )
    });
    group.bench_function("slab/remove", |b| {
        b.iter_batched(
            || {
                let mut slab = Slab::with_capacity(N);
                let indices: Vec<usize> = (0..N as u64).map(|i| slab.insert(i)).collect();
                (slab, indices)
            },
            |(mut slab, indices)| {
                for index in indices {
                    black_box(slab.remove(index));
                }
                slab
            },
            BatchSize::LargeInput,
        )
    });
    group.finish();
}

fn table_full() -> (ConnTable<u64>, Vec<ConnKey>) {
    let mut table = ConnTable::with_capacity(N);
    let keys = (0..N as u64).map(|i| table.insert(i)).collect();
    (table, keys)
}

criterion_group!(benches, table);
criterion_main!(benches);
