//! The per-IP table as every worker shares it: [`PeerTable`] split into [`PEER_SHARDS`] shards,
//! each behind its own lock, an address always in the same shard.
//!
//! Owns which shard an address lives in and the split of the table's capacity between shards.
//! The limits themselves (the connection cap, the handshake bucket, eviction) are
//! [`PeerTable`]'s, applied per shard. Never does I/O, never reads a clock.
//!
//! Why shards: each accept and each close takes the table, from whichever worker holds the
//! connection. With one lock, every worker's accepts queue behind each other's closes; with 64,
//! two workers meet on a lock only when they touch addresses of the same shard at the same moment,
//! and a flood from one address (the case the limits exist for) holds one shard of 64. The limits
//! stay exact: an address's count and bucket are in one place, behind one lock, as before.

use std::net::IpAddr;
use std::sync::{Mutex, MutexGuard};

use super::ip::canonical;
use super::rate::{PeerLimit, PeerTable, Rate};

/// Shards of the per-IP table (a power of two: the shard is the top bits of a hash).
pub const PEER_SHARDS: usize = 64;

/// The per-IP table shared by all workers; see the module doc.
///
/// Memory: each shard remembers about `capacity / PEER_SHARDS` idle addresses, so the whole
/// table about `capacity`, plus the addresses with open connections (bounded by the connection
/// caps), as one [`PeerTable`] of `capacity` did.
#[derive(Debug)]
pub struct ShardedPeers {
    shards: Box<[Mutex<PeerTable>]>,
}

impl ShardedPeers {
    /// A table remembering about `capacity` idle addresses in all, with the per-address cap and
    /// handshake rate of [`PeerTable::new`].
    pub fn new(capacity: usize, max_per_ip: Option<u32>, handshake: Option<Rate>) -> ShardedPeers {
        let per_shard = capacity.div_ceil(PEER_SHARDS).max(1);
        ShardedPeers {
            shards: (0..PEER_SHARDS)
                .map(|_| Mutex::new(PeerTable::new(per_shard, max_per_ip, handshake)))
                .collect(),
        }
    }

    /// [`PeerTable::admit`] in `ip`'s shard.
    pub fn admit(&self, ip: IpAddr, now_ms: u64) -> Result<(), PeerLimit> {
        self.shard(ip).admit(ip, now_ms)
    }

    /// [`PeerTable::release`] in `ip`'s shard.
    pub fn release(&self, ip: IpAddr) {
        self.shard(ip).release(ip);
    }

    /// Open connections counted for `ip`.
    pub fn active(&self, ip: IpAddr) -> u32 {
        self.shard(ip).active(ip)
    }

    /// Addresses remembered by all shards (takes each shard's lock in turn: for metrics and
    /// tests, not for the accept path).
    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| lock(s).len()).sum()
    }

    /// `true` when no shard remembers an address.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Locks the shard holding `ip`.
    fn shard(&self, ip: IpAddr) -> MutexGuard<'_, PeerTable> {
        lock(&self.shards[shard_of(ip)])
    }
}

/// The shard of `ip`: a multiplicative hash of its canonical form (an IPv4 address and its
/// IPv4-mapped IPv6 form are one address, so one shard), top bits. Neighbouring addresses (a
/// /24 of clients) spread over the shards rather than landing in one.
fn shard_of(ip: IpAddr) -> usize {
    const SHARD_BITS: u32 = PEER_SHARDS.trailing_zeros();
    let key = canonical(ip);
    let folded = (key as u64) ^ ((key >> 64) as u64);
    (folded.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (64 - SHARD_BITS)) as usize
}

/// Locks one shard; a panic while holding it cannot leave it inconsistent (every update is a
/// single field write), so a poisoned lock is used as is.
fn lock(shard: &Mutex<PeerTable>) -> MutexGuard<'_, PeerTable> {
    shard
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};
    use std::sync::Arc;

    fn v4(a: u8, b: u8, c: u8, d: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(a, b, c, d))
    }

    #[test]
    fn the_connection_cap_is_exact_per_address_whatever_its_shard() {
        let peers = ShardedPeers::new(1024, Some(2), None);
        for host in 0..=255u8 {
            let ip = v4(10, 0, 0, host);
            assert_eq!(peers.admit(ip, 0), Ok(()));
            assert_eq!(peers.admit(ip, 0), Ok(()));
            assert_eq!(
                peers.admit(ip, 0),
                Err(PeerLimit::Connections { limit: 2 }),
                "{ip}"
            );
            assert_eq!(peers.active(ip), 2);
        }
        peers.release(v4(10, 0, 0, 7));
        assert_eq!(peers.admit(v4(10, 0, 0, 7), 0), Ok(()));
    }

    #[test]
    fn an_ipv4_address_and_its_mapped_ipv6_form_share_one_count() {
        let peers = ShardedPeers::new(1024, Some(1), None);
        let v4 = v4(192, 0, 2, 1);
        let mapped = IpAddr::V6(Ipv4Addr::new(192, 0, 2, 1).to_ipv6_mapped());
        assert_eq!(shard_of(v4), shard_of(mapped));
        assert_eq!(peers.admit(v4, 0), Ok(()));
        assert_eq!(
            peers.admit(mapped, 0),
            Err(PeerLimit::Connections { limit: 1 })
        );
    }

    #[test]
    fn neighbouring_addresses_spread_over_the_shards() {
        let mut used = [0usize; PEER_SHARDS];
        for host in 0..=255u8 {
            used[shard_of(v4(203, 0, 113, host))] += 1;
        }
        let empty = used.iter().filter(|&&n| n == 0).count();
        let fullest = used.iter().max().copied().unwrap_or(0);
        // 256 addresses over 64 shards: 4 each on average; a hash that clustered a /24 into a few
        // shards (e.g. the low byte ignored) would leave most shards empty.
        assert!(empty < PEER_SHARDS / 8, "{empty} empty shards: {used:?}");
        assert!(fullest <= 12, "a shard holds {fullest}: {used:?}");
        for i in 0..256u16 {
            let ip = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, i));
            assert!(shard_of(ip) < PEER_SHARDS);
        }
    }

    #[test]
    fn a_flood_of_distinct_addresses_stays_within_the_capacity() {
        let peers = ShardedPeers::new(4096, None, Rate::new(1, 1));
        for n in 0..20_000u32 {
            let [a, b, c, d] = n.to_be_bytes();
            let ip = v4(a.wrapping_add(1), b, c, d);
            // Each connection opens and closes: the address is remembered only for its bucket.
            if peers.admit(ip, u64::from(n)).is_ok() {
                peers.release(ip);
            }
        }
        // Each shard keeps about capacity / shards idle addresses (its own make_room bound).
        assert!(peers.len() <= 4096 + PEER_SHARDS, "{}", peers.len());
    }

    #[test]
    fn workers_admitting_and_releasing_at_once_leave_every_count_at_zero() {
        let peers = Arc::new(ShardedPeers::new(65_536, Some(1_000_000), None));
        let threads: Vec<_> = (0..4u8)
            .map(|t| {
                let peers = Arc::clone(&peers);
                std::thread::spawn(move || {
                    for round in 0..2_000u32 {
                        let ip = v4(10, t, (round % 7) as u8, (round % 13) as u8);
                        peers.admit(ip, 0).unwrap();
                        peers.admit(v4(10, 9, 9, 9), 0).unwrap();
                        peers.release(ip);
                        peers.release(v4(10, 9, 9, 9));
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(peers.active(v4(10, 9, 9, 9)), 0);
        for t in 0..4u8 {
            for r in 0..91u32 {
                assert_eq!(peers.active(v4(10, t, (r % 7) as u8, (r % 13) as u8)), 0);
            }
        }
    }
}
