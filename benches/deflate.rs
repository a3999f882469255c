//! permessage-deflate per message: compress and inflate realistic JSON with our codec (flate2 on
//! zlib-rs) at levels 1 and 6, in shared (no context takeover) and dedicated (context takeover)
//! form, against miniz_oxide's one-shot raw deflate; and the bytes each puts on the wire.
//!
//! `cargo bench --bench deflate -- --quick --noplot`. The compressed sizes are printed once per
//! message kind (`wire:` lines) so ratios come from the same run as the timings. The
//! `deflate/min_size` group (its `min_size:` lines) measures the same per message size, 64 B to
//! 2 KiB, for the `compression_min_size` default.
//!
//! Messages: a 300 B chat message and a 4 KiB dashboard update, each a stream of similar but not
//! identical JSON documents (ids, timestamps and values change), as a room would carry.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use ringcast::proto::deflate::{Deflater, Inflater};

/// `count` distinct chat messages of about 300 bytes.
fn chat(count: usize) -> Vec<Vec<u8>> {
    (0..count)
        .map(|i| {
            format!(
                r#"{{"v":1,"type":"message","room":"general","seq":{},"from":"0:{}.0","user":"user-{}","ts":{},"payload":{{"text":"{} it works on my machine, shipping it to staging now","reply_to":{},"mentions":["@ops","@user-{}"],"client":"web"}}}}"#,
                1000 + i,
                i % 97,
                i % 13,
                1764081000123u64 + i as u64 * 917,
                ["ok,", "sure,", "hm,", "lgtm,"][i % 4],
                900 + i / 3,
                (i + 5) % 13
            )
            .into_bytes()
        })
        .collect()
}

/// `count` distinct dashboard updates of about 4 KiB: a table of series with changing values.
fn dashboard(count: usize) -> Vec<Vec<u8>> {
    (0..count)
        .map(|i| {
            let mut s = format!(
                r#"{{"v":1,"type":"message","room":"dash","seq":{},"ts":{},"payload":{{"series":["#,
                i,
                1764081000123u64 + i as u64 * 1000
            );
            let mut k = 0u64;
            while s.len() < 4000 {
                let v = (i as u64 * 7919 + k * 104_729) % 100_000;
                s.push_str(&format!(
                    r#"{{"host":"web-{:02}","metric":"cpu.user","value":{}.{:02},"unit":"percent","ok":{}}},"#,
                    k % 40,
                    v / 1000,
                    v % 100,
                    v % 7 != 0
                ));
                k += 1;
            }
            s.push_str(r#"{}]}}"#);
            s.into_bytes()
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    for (name, messages) in [("chat_300B", chat(64)), ("dashboard_4KiB", dashboard(64))] {
        let plain: usize = messages.iter().map(Vec::len).sum();
        let mut group = c.benchmark_group(format!("deflate/{name}"));
        group.throughput(Throughput::Bytes((plain / messages.len()) as u64));
        let mut report = vec![format!("plain {}", plain / messages.len())];
        for (label, level, takeover) in [
            ("shared_l1", 1, false),
            ("shared_l6", 6, false),
            ("dedicated_l1", 1, true),
            ("dedicated_l6", 6, true),
        ] {
            let mut def = Deflater::new(level, 15, !takeover);
            let mut out = Vec::with_capacity(8192);
            let mut total = 0;
            for m in &messages {
                out.clear();
                def.compress(m, &mut out);
                total += out.len();
            }
            report.push(format!("{label} {}", total / messages.len()));
            let mut i = 0;
            group.bench_function(BenchmarkId::new("compress", label), |b| {
                b.iter(|| {
                    let m = &messages[i % messages.len()];
                    i += 1;
                    out.clear();
                    def.compress(m, &mut out);
                    assert!(!out.is_empty());
                })
            });
            // Inflate the compressed stream in order (a dedicated stream refers back).
            let mut def = Deflater::new(level, 15, !takeover);
            let compressed: Vec<Vec<u8>> = messages
                .iter()
                .map(|m| {
                    let mut z = Vec::new();
                    def.compress(m, &mut z);
                    z
                })
                .collect();
            let mut inf = Inflater::new(15, !takeover);
            let mut i = 0;
            group.bench_function(BenchmarkId::new("inflate", label), |b| {
                b.iter(|| {
                    let k = i % messages.len();
                    if k == 0 {
                        inf = Inflater::new(15, !takeover);
                    }
                    i += 1;
                    let mut out = Vec::new();
                    inf.inflate(&compressed[k], 1 << 20, &mut out).unwrap();
                    assert_eq!(out.len(), messages[k].len());
                })
            });
        }
        for level in [1u8, 6] {
            let label = format!("miniz_oneshot_l{level}");
            let total: usize = messages
                .iter()
                .map(|m| miniz_oxide::deflate::compress_to_vec(m, level).len())
                .sum();
            report.push(format!("{label} {}", total / messages.len()));
            let mut i = 0;
            group.bench_function(BenchmarkId::new("compress", &label), |b| {
                b.iter(|| {
                    let m = &messages[i % messages.len()];
                    i += 1;
                    let z = miniz_oxide::deflate::compress_to_vec(m, level);
                    assert!(!z.is_empty());
                })
            });
            let compressed: Vec<Vec<u8>> = messages
                .iter()
                .map(|m| miniz_oxide::deflate::compress_to_vec(m, level))
                .collect();
            let mut i = 0;
            group.bench_function(BenchmarkId::new("inflate", &label), |b| {
                b.iter(|| {
                    let k = i % messages.len();
                    i += 1;
                    let out =
                        miniz_oxide::inflate::decompress_to_vec_with_limit(&compressed[k], 1 << 20)
                            .unwrap();
                    assert_eq!(out.len(), messages[k].len());
                })
            });
        }
        group.finish();
        eprintln!("wire: {name} bytes per message: {}", report.join(", "));
    }
}

/// `count` distinct room messages of exactly `size` bytes as the server sends them (the `/ws`
/// envelope around a chat payload whose text fills the rest); below the envelope's own size, the
/// bare chat payload (what an `/echo` or a small direct message carries).
fn sized(size: usize, count: usize) -> Vec<Vec<u8>> {
    // Text drawn from a vocabulary in a pseudo-random order: repeats happen, as in real chat,
    // but not the fixed cycle that would let DEFLATE collapse a long message.
    const WORDS: [&str; 48] = [
        "ok", "shipping", "it", "to", "staging", "now", "works", "on", "my", "machine", "lgtm",
        "after", "the", "build", "is", "green", "again", "can", "you", "review", "this", "pr",
        "before", "lunch", "deploy", "failed", "with", "a", "timeout", "retrying", "rollback",
        "done", "thanks", "who", "owns", "billing", "service", "alerts", "are", "noisy", "today",
        "mute", "for", "an", "hour", "please", "merged", "main",
    ];
    (0..count)
        .map(|i| {
            let head = if size >= 192 {
                format!(
                    r#"{{"v":1,"type":"message","room":"general","seq":{},"from":"0:{}.0","user":"user-{}","ts":{},"payload":{{"text":""#,
                    1000 + i,
                    i % 97,
                    i % 13,
                    1764081000123u64 + i as u64 * 917
                )
            } else {
                format!(r#"{{"user":"user-{}","seq":{},"text":""#, i % 13, 1000 + i)
            };
            let tail = if size >= 192 { r#""}}"# } else { r#""}"# };
            let mut text = String::new();
            let mut x = (i as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
            while head.len() + text.len() + tail.len() < size {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                text.push_str(WORDS[(x % WORDS.len() as u64) as usize]);
                text.push(' ');
            }
            text.truncate(size - head.len() - tail.len());
            format!("{head}{text}{tail}").into_bytes()
        })
        .collect()
}

/// The `compression_min_size` decision: for realistic JSON of each size, the bytes a shared
/// (no context takeover) level-1 compression saves and what it costs, next to the same with
/// context takeover (dedicated). `cargo bench --bench deflate -- min_size --quick --noplot`;
/// the `min_size:` lines give the sizes (exact, the same in every run).
fn min_size(c: &mut Criterion) {
    let mut group = c.benchmark_group("deflate/min_size");
    for size in [64usize, 128, 192, 256, 384, 512, 768, 1024, 2048] {
        let messages = sized(size, 64);
        assert!(messages.iter().all(|m| m.len() == size));
        group.throughput(Throughput::Bytes(size as u64));
        let mut line = format!("min_size: {size} B plain");
        for (label, takeover) in [("shared_l1", false), ("dedicated_l1", true)] {
            let mut def = Deflater::new(1, 15, !takeover);
            let mut out = Vec::with_capacity(4096);
            let total: usize = messages
                .iter()
                .map(|m| {
                    out.clear();
                    def.compress(m, &mut out);
                    out.len()
                })
                .sum();
            let avg = total as f64 / messages.len() as f64;
            line.push_str(&format!(", {label} {avg:.0} B ({:.2})", avg / size as f64));
            let mut i = 0;
            group.bench_function(BenchmarkId::new(label, size), |b| {
                b.iter(|| {
                    let m = &messages[i % messages.len()];
                    i += 1;
                    out.clear();
                    def.compress(m, &mut out);
                    assert!(!out.is_empty());
                })
            });
        }
        eprintln!("{line}");
    }
    group.finish();
}

criterion_group!(benches, bench, min_size);
criterion_main!(benches);
