//! The security checks on their paths: the per-message guard (every message), the per-IP table
//! (every accept) under a flood of distinct addresses, and JWT verification (every upgrade with
//! `auth` on) for HS256, RS256 and ES256. Every routine asserts its result inside the timed
//! closure so the work cannot be optimised away.

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use ringcast::security::auth::Verifier;
use ringcast::security::rate::{MessageGuard, MessageLimits, PeerTable, Rate, Verdict};
use ringcast::security::ShardedPeers;

const SECRET: &[u8] = b"an-hmac-secret-of-at-least-32-bytes!";
const NOW_S: u64 = 1_700_000_000;

fn message_guard(c: &mut Criterion) {
    let limits = MessageLimits {
        messages: Rate::new(1_000_000, 1_000_000),
        bytes: Rate::new(1 << 40, 1 << 40),
        ..MessageLimits::default()
    };
    let mut g = c.benchmark_group("message_guard");
    g.throughput(Throughput::Elements(1));
    g.bench_function("check_within_limits", |b| {
        let mut guard = MessageGuard::new(limits, 0);
        let mut now = 0u64;
        b.iter(|| {
            now += 1;
            assert_eq!(guard.check(black_box(now), black_box(128)), Verdict::Ok);
        })
    });
    g.finish();
}

fn peer_table(c: &mut Criterion) {
    let mut g = c.benchmark_group("peer_table");
    g.throughput(Throughput::Elements(1));
    g.bench_function("admit_release_distinct_ips_65536_capacity", |b| {
        let mut table = PeerTable::new(65_536, Some(8), Rate::new(5, 10));
        let mut i = 0u32;
        b.iter(|| {
            i = i.wrapping_add(1);
            let ip = IpAddr::V4(Ipv4Addr::from(i));
            assert!(table.admit(ip, u64::from(i)).is_ok());
            table.release(ip);
        });
        assert!(table.len() <= 65_536);
    });
    // The same through the shared, sharded table every worker uses (the lock and the shard hash
    // are the difference), and with a second thread hammering other addresses meanwhile.
    g.bench_function("sharded_admit_release_distinct_ips", |b| {
        let table = ShardedPeers::new(65_536, Some(8), Rate::new(5, 10));
        let mut i = 0u32;
        b.iter(|| {
            i = i.wrapping_add(1);
            let ip = IpAddr::V4(Ipv4Addr::from(i));
            assert!(table.admit(ip, u64::from(i)).is_ok());
            table.release(ip);
        });
    });
    // The baseline: the whole table behind one lock, as before it was sharded.
    g.bench_function("one_lock_admit_release_with_a_contending_thread", |b| {
        let table = Mutex::new(PeerTable::new(65_536, Some(8), Rate::new(5, 10)));
        with_a_contending_thread(b, Arc::new(table), |t, ip, now| {
            let admitted = t.lock().unwrap().admit(ip, now).is_ok();
            if admitted {
                t.lock().unwrap().release(ip);
            }
            admitted
        });
    });
    g.bench_function("sharded_admit_release_with_a_contending_thread", |b| {
        let table = ShardedPeers::new(65_536, Some(8), Rate::new(5, 10));
        with_a_contending_thread(b, Arc::new(table), |t, ip, now| {
            let admitted = t.admit(ip, now).is_ok();
            if admitted {
                t.release(ip);
            }
            admitted
        });
    });
    g.finish();
}

/// Times `admit_release` on addresses of the lower half of the IPv4 space while a second thread
/// runs it on the upper half of the same `table` until the timing is over.
fn with_a_contending_thread<T: Send + Sync + 'static>(
    b: &mut criterion::Bencher<'_>,
    table: Arc<T>,
    admit_release: fn(&T, IpAddr, u64) -> bool,
) {
    let stop = Arc::new(AtomicBool::new(false));
    let other = {
        let (table, stop) = (Arc::clone(&table), Arc::clone(&stop));
        std::thread::spawn(move || {
            let mut j = 0u32;
            while !stop.load(Ordering::Relaxed) {
                j = j.wrapping_add(1);
                admit_release(
                    &table,
                    IpAddr::V4(Ipv4Addr::from(j | 0x8000_0000)),
                    u64::from(j),
                );
            }
        })
    };
    let mut i = 0u32;
    b.iter(|| {
        i = i.wrapping_add(1) & 0x7fff_ffff;
        assert!(admit_release(
            &table,
            IpAddr::V4(Ipv4Addr::from(i)),
            u64::from(i)
        ));
    });
    stop.store(true, Ordering::Relaxed);
    other.join().unwrap();
}

fn jwt(c: &mut Criterion) {
    let claims =
        serde_json::json!({ "sub": "alice", "exp": NOW_S + 3600, "rooms": ["lobby", "team-*"] });
    let hs = encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(SECRET),
    )
    .unwrap();
    let rs_key =
        EncodingKey::from_rsa_pem(include_bytes!("../tests/security_fixtures/rsa_private.pem"))
            .unwrap();
    let rs = encode(&Header::new(Algorithm::RS256), &claims, &rs_key).unwrap();
    let es_key =
        EncodingKey::from_ec_pem(include_bytes!("../tests/security_fixtures/ec_private.pem"))
            .unwrap();
    let es = encode(&Header::new(Algorithm::ES256), &claims, &es_key).unwrap();
    let hs_v = Verifier::new(Some(SECRET), None, 30).unwrap();
    let rs_v = Verifier::new(
        None,
        Some(include_bytes!("../tests/security_fixtures/rsa_public.pem")),
        30,
    )
    .unwrap();
    let es_v = Verifier::new(
        None,
        Some(include_bytes!("../tests/security_fixtures/ec_public.pem")),
        30,
    )
    .unwrap();

    let mut g = c.benchmark_group("jwt_verify");
    g.throughput(Throughput::Elements(1));
    for (name, verifier, token) in [
        ("hs256", &hs_v, &hs),
        ("rs256", &rs_v, &rs),
        ("es256", &es_v, &es),
    ] {
        g.bench_function(name, |b| {
            b.iter(|| {
                let id = verifier.verify(black_box(token), NOW_S * 1000).unwrap();
                assert!(id.rooms.can_join("team-red"));
            })
        });
    }
    g.finish();
}

criterion_group!(benches, message_guard, peer_table, jwt);
criterion_main!(benches);
