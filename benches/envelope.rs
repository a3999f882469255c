//! Parsing `/ws` envelopes (`envelope::Parser::parse`), in bytes per second, from the common case
//! to the worst a client can send within the `/ws` message limit
//! (`envelope::max_message_len`: `max_payload_size` + `ENVELOPE_ROOM`, 80 KiB by default).
//!
//! `cargo bench --bench envelope -- --quick --noplot`.
//!
//! - `small_publish`: a chat message, the common case.
//! - `string_payload_64k`: one 64 KiB string payload: few values, long strings.
//! - `tiny_values_at_limit`: `[0,0,0,…]` filling a whole message: one tape node and two
//!   structural indexes per two bytes, the worst case per byte (it is refused afterwards as
//!   `payload_too_large`, but only once it has been parsed).
//! - `deep_nesting`: 1023 nested arrays (the depth limit).
//! - `big_numbers_at_limit`: `1e400` repeated to the limit: every number is one simd-json cannot
//!   represent, so the message is scanned and parsed a second time.
//!
//! Each iteration asserts the parse result, so nothing is optimised away.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use ringcast::envelope::{max_message_len, EnvelopeError, EnvelopeLimits, Parser, MAX_DEPTH};

/// `{"type":"publish","room":"r","payload":[<item>,<item>,…]}` as long as fits in `len` bytes.
fn array_envelope(item: &str, len: usize) -> String {
    let head = r#"{"type":"publish","room":"r","payload":["#;
    let tail = "]}";
    let n = (len - head.len() - tail.len() + 1) / (item.len() + 1);
    let items = vec![item; n].join(",");
    format!("{head}{items}{tail}")
}

fn parse(c: &mut Criterion) {
    let limits = EnvelopeLimits::default();
    let limit = max_message_len(&limits);
    let deep = format!(
        r#"{{"type":"publish","room":"r","payload":{}{}}}"#,
        "[".repeat(MAX_DEPTH - 1),
        "]".repeat(MAX_DEPTH - 1)
    );
    let cases: [(&str, String, bool); 5] = [
        (
            "small_publish",
            r#"{"type":"publish","room":"lobby","id":"42","payload":{"text":"hello there","n":[1,2.5]}}"#
                .to_owned(),
            true,
        ),
        (
            "string_payload_64k",
            format!(
                r#"{{"type":"publish","room":"r","payload":"{}"}}"#,
                "x".repeat(limits.max_payload_len - 2)
            ),
            true,
        ),
        ("tiny_values_at_limit", array_envelope("0", limit), false),
        ("deep_nesting", deep, true),
        ("big_numbers_at_limit", array_envelope("1e400", limit), false),
    ];
    let mut group = c.benchmark_group("envelope_parse");
    let mut parser = Parser::new(limits);
    for (name, msg, accepted) in &cases {
        assert!(msg.len() <= limit, "{name}: {} bytes", msg.len());
        group.throughput(Throughput::Bytes(msg.len() as u64));
        group.bench_function(*name, |b| {
            b.iter(|| match parser.parse(msg.as_bytes()) {
                Ok(_) => assert!(*accepted, "{name}"),
                Err(r) => assert!(
                    !*accepted && matches!(r.error, EnvelopeError::PayloadTooLarge { .. }),
                    "{name}: {:?}",
                    r.error
                ),
            })
        });
    }
    group.finish();
}

criterion_group!(benches, parse);
criterion_main!(benches);
