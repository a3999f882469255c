//! Rate and count limits, as a specification, in virtual time: the token bucket's arithmetic,
//! the per-IP connection cap and handshake rate, the bounded per-IP table under a flood of
//! distinct addresses, and the per-connection message guard (rate_limited, then close 1008).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ringcast::security::rate::{
    MessageGuard, MessageLimits, PeerLimit, PeerTable, Rate, TokenBucket, Verdict,
};
use ringcast::security::{Policy, Refusal, SecurityConfig};

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn rate(per_sec: u64, burst: u64) -> Rate {
    Rate::new(per_sec, burst).unwrap()
}

// --- token bucket ---------------------------------------------------------------------------

#[test]
fn a_zero_rate_or_burst_means_the_limit_is_off() {
    assert_eq!(Rate::new(0, 5), None);
    assert_eq!(Rate::new(5, 0), None);
}

#[test]
fn a_full_bucket_gives_its_burst_then_one_token_per_interval() {
    let r = rate(10, 3); // one token every 100 ms
    let mut b = TokenBucket::full(&r, 1_000);
    for _ in 0..3 {
        assert_eq!(b.try_take(&r, 1, 1_000), Ok(()));
    }
    assert_eq!(b.try_take(&r, 1, 1_000), Err(100));
    assert_eq!(b.try_take(&r, 1, 1_040), Err(60));
    assert_eq!(b.try_take(&r, 1, 1_100), Ok(()));
    assert_eq!(b.try_take(&r, 1, 1_100), Err(100));
}

#[test]
fn refill_stops_at_the_burst() {
    let r = rate(10, 3);
    let mut b = TokenBucket::full(&r, 0);
    assert_eq!(b.try_take(&r, 3, 0), Ok(()));
    assert_eq!(b.available(&r, 1_000_000), 3);
    assert!(b.is_full(&r, 1_000_000));
}

#[test]
fn fractional_refill_accumulates_exactly() {
    // 3 tokens/s: 333.3 ms each. After 1 s exactly 3 tokens, never 2 by rounding.
    let r = rate(3, 3);
    let mut b = TokenBucket::full(&r, 0);
    assert_eq!(b.try_take(&r, 3, 0), Ok(()));
    for t in [100, 200, 300] {
        assert_eq!(b.available(&r, t), 0, "at {t} ms");
    }
    assert_eq!(b.available(&r, 334), 1);
    assert_eq!(b.available(&r, 1_000), 3);
}

#[test]
fn more_than_the_burst_can_never_be_taken_at_once() {
    let r = rate(100, 5);
    let mut b = TokenBucket::full(&r, 0);
    assert_eq!(b.try_take(&r, 6, 0), Err(u64::MAX));
    assert_eq!(b.available(&r, 0), 5, "a refused take takes nothing");
}

#[test]
fn a_clock_going_backwards_adds_nothing() {
    let r = rate(10, 2);
    let mut b = TokenBucket::full(&r, 5_000);
    assert_eq!(b.try_take(&r, 2, 5_000), Ok(()));
    assert_eq!(b.available(&r, 1_000), 0);
    assert_eq!(b.available(&r, 5_100), 1);
}

#[test]
fn huge_rates_and_times_saturate_instead_of_overflowing() {
    let r = rate(u64::MAX, u64::MAX);
    let mut b = TokenBucket::full(&r, 0);
    assert_eq!(b.try_take(&r, u64::MAX / 2000, 0), Ok(()));
    // A refill over the whole u64 range saturates at the capacity.
    assert_eq!(b.available(&r, u64::MAX), i64::MAX as u64 / 1000);
}

#[test]
fn a_debt_bucket_lets_one_large_item_through_then_blocks_until_paid() {
    let r = rate(1_000, 1_000); // 1000 bytes/s
    let mut b = TokenBucket::full(&r, 0);
    assert_eq!(b.take_allowing_debt(&r, 5_000, 0), Ok(()));
    // 4000 bytes of debt: 4 s to pay back.
    assert_eq!(b.take_allowing_debt(&r, 1, 0), Err(4_000));
    assert_eq!(b.take_allowing_debt(&r, 1, 3_999), Err(1));
    assert_eq!(b.take_allowing_debt(&r, 1, 4_000), Ok(()));
}

// --- the per-IP table -----------------------------------------------------------------------

#[test]
fn the_per_ip_cap_counts_open_connections_and_release_frees_a_slot() {
    let mut t = PeerTable::new(16, Some(2), None);
    let a = ip("198.51.100.1");
    assert_eq!(t.admit(a, 0), Ok(()));
    assert_eq!(t.admit(a, 0), Ok(()));
    assert_eq!(t.admit(a, 0), Err(PeerLimit::Connections { limit: 2 }));
    assert_eq!(
        t.admit(ip("198.51.100.2"), 0),
        Ok(()),
        "other addresses unaffected"
    );
    t.release(a);
    assert_eq!(t.active(a), 1);
    assert_eq!(t.admit(a, 0), Ok(()));
}

#[test]
fn an_ipv4_peer_and_its_mapped_ipv6_form_share_one_count() {
    let mut t = PeerTable::new(16, Some(1), None);
    assert_eq!(t.admit(ip("192.0.2.1"), 0), Ok(()));
    assert_eq!(
        t.admit(ip("::ffff:192.0.2.1"), 0),
        Err(PeerLimit::Connections { limit: 1 })
    );
}

#[test]
fn the_handshake_rate_refuses_a_burst_and_says_when_to_retry() {
    let mut t = PeerTable::new(16, None, Some(rate(2, 3)));
    let a = ip("198.51.100.1");
    for _ in 0..3 {
        assert_eq!(t.admit(a, 0), Ok(()));
    }
    assert_eq!(
        t.admit(a, 0),
        Err(PeerLimit::HandshakeRate {
            retry_after_ms: 500
        })
    );
    assert_eq!(t.admit(a, 500), Ok(()));
}

#[test]
fn a_flood_of_distinct_addresses_never_grows_the_table_past_its_capacity() {
    const CAPACITY: usize = 1_024;
    let mut t = PeerTable::new(CAPACITY, Some(4), Some(rate(1, 5)));
    let mut max_len = 0;
    for i in 0..100_000u32 {
        let addr = IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + i));
        // Each connects and leaves at once, with its bucket not yet refilled: the worst case,
        // no entry is forgettable for free.
        assert_eq!(t.admit(addr, u64::from(i)), Ok(()));
        t.release(addr);
        max_len = max_len.max(t.len());
    }
    assert!(max_len <= CAPACITY, "table grew to {max_len}");
}

#[test]
fn open_connections_are_never_evicted_and_idle_entries_are_forgotten_first() {
    let mut t = PeerTable::new(8, Some(1), Some(rate(1, 1)));
    let holder = ip("2001:db8::1");
    assert_eq!(t.admit(holder, 0), Ok(()));
    for i in 0..1_000u16 {
        let addr = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, i));
        assert_eq!(t.admit(addr, u64::from(i)), Ok(()));
        t.release(addr);
    }
    assert!(t.len() <= 8);
    // The holder's slot survived every eviction: its cap still applies.
    assert_eq!(t.active(holder), 1);
    assert_eq!(
        t.admit(holder, 2_000),
        Err(PeerLimit::Connections { limit: 1 })
    );
}

#[test]
fn the_policy_refuses_over_the_per_ip_cap_with_503_and_retry_after() {
    let config = SecurityConfig {
        max_connections_per_ip: 2,
        ..SecurityConfig::default()
    };
    let policy = Policy::new(&config, None).unwrap();
    let a = ip("198.51.100.1");
    let first = policy.admit_peer(a, 0).unwrap();
    let second = policy.admit_peer(a, 0).unwrap();
    let err = policy.admit_peer(a, 0).unwrap_err();
    assert_eq!(err, Refusal::TooManyConnections { limit: 2 });
    assert_eq!((err.status(), err.retry_after_secs()), (503, Some(1)));
    let mut out = Vec::new();
    err.render(&mut out);
    let text = String::from_utf8(out).unwrap();
    assert!(
        text.starts_with("HTTP/1.1 503 Service Unavailable\r\n"),
        "{text}"
    );
    assert!(text.contains("\r\nRetry-After: 1\r\n"), "{text}");
    // Another address is still served while this one is capped.
    assert!(policy.admit_peer(ip("198.51.100.2"), 0).is_ok());
    // Dropping a permit (or releasing it) gives the slot back, once.
    drop(first);
    assert_eq!(policy.connections_from(a), 1);
    let third = policy.admit_peer(a, 0).unwrap();
    second.release();
    third.release();
    assert_eq!(policy.connections_from(a), 0);
}

#[test]
fn the_policy_handshake_rate_rounds_retry_after_up_to_whole_seconds() {
    let config = SecurityConfig {
        handshake_rate: 1,
        handshake_burst: 2,
        ..SecurityConfig::default()
    };
    let policy = Policy::new(&config, None).unwrap();
    let a = ip("198.51.100.1");
    let _p = [
        policy.admit_peer(a, 0).unwrap(),
        policy.admit_peer(a, 0).unwrap(),
    ];
    let err = policy.admit_peer(a, 400).unwrap_err();
    assert_eq!(
        err,
        Refusal::HandshakeRate {
            retry_after_secs: 1
        }
    );
    assert_eq!(err.label(), "handshake_rate");
    assert!(policy.admit_peer(a, 1_000).is_ok());
}

#[test]
fn with_no_per_ip_limits_the_table_is_never_touched() {
    let policy = Policy::new(&SecurityConfig::default(), None).unwrap();
    for i in 0..1_000u32 {
        let permit = policy.admit_peer(IpAddr::V4(Ipv4Addr::from(i)), 0).unwrap();
        assert!(!permit.is_counted());
    }
    assert_eq!(policy.tracked_addresses(), 0);
}

// --- the message guard ---------------------------------------------------------------------

fn limits(
    messages: Option<Rate>,
    bytes: Option<Rate>,
    strikes: u32,
    grace_ms: u64,
) -> MessageLimits {
    MessageLimits {
        messages,
        bytes,
        strikes,
        grace_ms,
    }
}

#[test]
fn messages_within_the_rate_are_ok() {
    let mut g = MessageGuard::new(limits(Some(rate(10, 10)), None, 3, 1_000), 0);
    for i in 0..100u64 {
        assert_eq!(g.check(i * 100, 10), Verdict::Ok, "message {i}");
    }
}

#[test]
fn over_the_rate_is_rate_limited_and_a_conforming_message_forgives() {
    let mut g = MessageGuard::new(limits(Some(rate(10, 2)), None, 5, 10_000), 0);
    assert_eq!(g.check(0, 1), Verdict::Ok);
    assert_eq!(g.check(0, 1), Verdict::Ok);
    assert_eq!(g.check(0, 1), Verdict::RateLimited);
    assert_eq!(g.check(10, 1), Verdict::RateLimited);
    assert_eq!(g.strikes(), 2);
    assert_eq!(g.check(100, 1), Verdict::Ok);
    assert_eq!(g.strikes(), 0);
}

#[test]
fn n_consecutive_violations_close_the_connection() {
    let mut g = MessageGuard::new(limits(Some(rate(1, 1)), None, 3, 60_000), 0);
    assert_eq!(g.check(0, 1), Verdict::Ok);
    assert_eq!(g.check(1, 1), Verdict::RateLimited);
    assert_eq!(g.check(2, 1), Verdict::RateLimited);
    assert_eq!(g.check(3, 1), Verdict::Close);
}

#[test]
fn staying_over_for_the_grace_period_closes_even_with_few_messages() {
    let mut g = MessageGuard::new(limits(Some(rate(1, 1)), None, 1_000, 500), 0);
    assert_eq!(g.check(0, 1), Verdict::Ok);
    assert_eq!(g.check(10, 1), Verdict::RateLimited);
    assert_eq!(g.check(509, 1), Verdict::RateLimited);
    assert_eq!(g.check(510, 1), Verdict::Close);
}

#[test]
fn the_byte_budget_limits_volume_and_costs_no_message_token_when_refusing() {
    let mut g = MessageGuard::new(
        limits(Some(rate(100, 2)), Some(rate(1_000, 1_000)), 10, 60_000),
        0,
    );
    // One 3000-byte message passes on a quiet connection (debt), the next waits for 3 s.
    assert_eq!(g.check(0, 3_000), Verdict::Ok);
    assert_eq!(g.check(0, 1), Verdict::RateLimited);
    assert_eq!(g.check(1_000, 1), Verdict::RateLimited);
    assert_eq!(g.check(2_000, 1), Verdict::Ok);
    // The refused messages did not spend message tokens: the burst of 2 is there.
    assert_eq!(g.check(5_000, 1), Verdict::Ok);
    assert_eq!(g.check(5_000, 1), Verdict::Ok);
    assert_eq!(g.check(5_000, 1), Verdict::RateLimited);
}

#[test]
fn with_no_limits_every_message_is_ok() {
    let mut g = MessageGuard::new(MessageLimits::default(), 0);
    for i in 0..10_000u64 {
        assert_eq!(g.check(0, i), Verdict::Ok);
    }
}

#[test]
fn the_policy_builds_message_limits_from_the_config() {
    let config = SecurityConfig {
        message_rate: 5,
        message_burst: 2,
        message_bytes_rate: 4096,
        message_rate_strikes: 2,
        message_rate_grace: std::time::Duration::from_millis(750),
        ..SecurityConfig::default()
    };
    let policy = Policy::new(&config, None).unwrap();
    let l = policy.message_limits();
    assert_eq!(l.messages, Some(rate(5, 2)));
    assert_eq!(l.bytes, Some(rate(4096, 4096)));
    assert_eq!((l.strikes, l.grace_ms), (2, 750));
    let mut g = policy.message_guard(0);
    assert_eq!(g.check(0, 1), Verdict::Ok);
    assert_eq!(g.check(0, 1), Verdict::Ok);
    assert_eq!(g.check(0, 1), Verdict::RateLimited);
}
