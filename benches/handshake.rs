//! The server side of an opening handshake: parse + validate + render the 101, for a real Chrome
//! request. Throughput is request bytes; every iteration asserts its result, so nothing is
//! optimised away.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use ringcast::proto::handshake::{
    validate_upgrade, AcceptKey, HandshakeLimits, Parse, RequestParser, UpgradeConfig,
};

/// Chrome 131 on Linux, as sent (the unit tests' fixture).
const CHROME: &[u8] = include_bytes!("../core/src/handshake/fixtures/chrome131.http");

/// Length of the 101 for `CHROME`: status line, Upgrade, Connection, Accept, blank line.
const RESPONSE_LEN: usize = 129;

fn handshake(c: &mut Criterion) {
    let config = UpgradeConfig::with_protocols(["chat"]);
    let mut group = c.benchmark_group("handshake");
    group.throughput(Throughput::Bytes(CHROME.len() as u64));

    let mut out = Vec::with_capacity(256);
    group.bench_function("chrome_parse_validate_render_101", |b| {
        b.iter(|| {
            out.clear();
            let mut parser = RequestParser::new(HandshakeLimits::default());
            let Ok(Parse::Complete(req, consumed)) = parser.parse(black_box(CHROME)) else {
                panic!("chrome request not complete")
            };
            assert_eq!(consumed, CHROME.len());
            let up = validate_upgrade(&req, &config).expect("chrome request valid");
            up.render_response(&mut out);
            assert_eq!(out.len(), RESPONSE_LEN);
        })
    });

    // The same request arriving in 32-byte reads: the scanner resumes, httparse runs once.
    group.bench_function("chrome_in_32_byte_reads", |b| {
        b.iter(|| {
            out.clear();
            let mut parser = RequestParser::new(HandshakeLimits::default());
            let mut end = 0;
            let (req, consumed) = loop {
                end = (end + 32).min(CHROME.len());
                match parser.parse(black_box(&CHROME[..end])) {
                    Ok(Parse::Partial) => continue,
                    Ok(Parse::Complete(req, n)) => break (req, n),
                    Err(e) => panic!("{e}"),
                }
            };
            assert_eq!(consumed, CHROME.len());
            let up = validate_upgrade(&req, &config).expect("chrome request valid");
            up.render_response(&mut out);
            assert_eq!(out.len(), RESPONSE_LEN);
        })
    });
    group.finish();

    let mut group = c.benchmark_group("accept_key");
    group.throughput(Throughput::Bytes(24));
    group.bench_function("sha1_base64", |b| {
        b.iter(|| {
            let accept = AcceptKey::from_key(black_box(b"x3JJHMbDL1EzLkh9GBhXDw=="));
            assert_eq!(accept.as_bytes(), b"HSmrc0sMlYUkAGmm5OPpG2HaGWk=");
        })
    });
    group.finish();
}

criterion_group!(benches, handshake);
criterion_main!(benches);
