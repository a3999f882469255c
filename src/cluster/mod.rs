//! Cluster: several ringcast nodes act as one through Redis (`--cluster redis://HOST:PORT`).
//!
//! Owns what nodes share and how it travels. Without `cluster` nothing here runs: one node, no
//! Redis, rooms live in each owner worker's memory ([`crate::room::stream::MemoryStore`]).
//! With it, for every room:
//!
//! - **Offsets, epoch, history and `msg_id` deduplication live in Redis**: one Lua script per
//!   publish ([`script::PUBLISH`]) checks the `msg_id`, increments the offset, appends the
//!   [`record`] to the room's Redis Stream (bounded by the room's history size, expiring with
//!   its ttl), publishes it on the room's channel and remembers the `msg_id`, atomically. Every
//!   node agrees on offsets, and a retry that lands on another node is still deduplicated.
//! - **Joins and history read the Stream** ([`script::OPEN`]), from any node: a client that
//!   resumes on another node than the one it left recovers what it missed, exactly once.
//! - **Fan-out**: a node subscribes to a room's channel while it has members in the room; what
//!   arrives is rendered once and handed to the room's owner worker, which fans it out to the
//!   workers with members exactly as a local publish. A message reaches each node once.
//!
//! The room's owner *worker* still owns membership (per node); the [`bridge`] (one per node, its
//! own thread and tokio runtime) is the only code that talks to Redis. Workers never wait for
//! it: they `try_send` commands on a bounded channel and get answers through the mesh.
//!
//! # Redis client: `redis` (redis-rs) 1.x over `fred`
//!
//! Both are maintained, async, pipelined and reconnecting, with RESP3, pub/sub, sharded pub/sub
//! (`SSUBSCRIBE`) and Redis Cluster support. We use `redis` (features `tokio-comp`,
//! `script`, `streams`, no TLS): it is the ecosystem's reference client,
//! its multiplexed connection gives RESP3 push messages (pub/sub) on the same connection as
//! commands in server order — which is what orders a join's read against live messages here —
//! and it builds in a fraction of `fred`'s time (fewer dependencies; `fred`'s strength, a
//! client-side pool and routing layer with its own reconnect policies, is what the bridge does
//! itself in ~100 lines, with the state it needs to resubscribe and resync rooms).
//!
//! What is not shared yet: presence and `joined`/`left` events (each node answers `presence`
//! with its own members), user messages and sessions; Redis Cluster mode (sharded pub/sub) —
//! the keys already carry the room in a `{hash tag}` so a room's keys share a shard.

pub mod bridge;
pub mod record;
pub mod script;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;

/// The state of this node's link to Redis, read by `/healthz` and `/metrics` on any worker;
/// written only by the bridge.
#[derive(Debug, Default)]
pub struct ClusterStatus {
    connected: AtomicBool,
    reconnects: AtomicU64,
    unavailable: AtomicU64,
    last_error: Mutex<Option<String>>,
}

impl ClusterStatus {
    /// Whether the bridge holds a working connection to Redis.
    pub fn connected(&self) -> bool {
        self.connected.load(Ordering::Relaxed)
    }

    /// Times the connection was lost (each followed by reconnect attempts with backoff).
    pub fn reconnects(&self) -> u64 {
        self.reconnects.load(Ordering::Relaxed)
    }

    /// Commands answered `unavailable`.
    pub fn unavailable(&self) -> u64 {
        self.unavailable.load(Ordering::Relaxed)
    }

    /// The last Redis error, if any.
    pub fn last_error(&self) -> Option<String> {
        self.last_error
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Records the connection state.
    pub fn set_connected(&self, up: bool) {
        self.connected.store(up, Ordering::Relaxed);
    }

    /// Counts one lost connection.
    pub fn count_reconnect(&self) {
        self.reconnects.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts one `unavailable` answer.
    pub fn count_unavailable(&self) {
        self.unavailable.fetch_add(1, Ordering::Relaxed);
    }

    /// Records the last error.
    pub fn set_error(&self, error: String) {
        *self.last_error.lock().unwrap_or_else(|p| p.into_inner()) = Some(error);
    }

    /// The `/healthz` line: `cluster: connected` or `cluster: disconnected (<last error>)`.
    pub fn health_line(&self) -> String {
        if self.connected() {
            "cluster: connected\n".to_owned()
        } else {
            format!(
                "cluster: disconnected ({})\n",
                self.last_error().as_deref().unwrap_or("connecting")
            )
        }
    }

    /// Prometheus series of the cluster link.
    pub fn render_metrics(&self, out: &mut String) {
        use std::fmt::Write;
        let _ = write!(
            out,
            "# HELP ringcast_cluster_connected Whether this node's bridge holds a connection to Redis.\n\
             # TYPE ringcast_cluster_connected gauge\n\
             ringcast_cluster_connected {}\n\
             # HELP ringcast_cluster_reconnects_total Connections to Redis lost (then re-established with backoff).\n\
             # TYPE ringcast_cluster_reconnects_total counter\n\
             ringcast_cluster_reconnects_total {}\n\
             # HELP ringcast_cluster_unavailable_total Publishes, joins and history requests answered unavailable.\n\
             # TYPE ringcast_cluster_unavailable_total counter\n\
             ringcast_cluster_unavailable_total {}\n",
            u8::from(self.connected()),
            self.reconnects(),
            self.unavailable()
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn health_and_metrics_say_whether_redis_is_reachable() {
        let s = ClusterStatus::default();
        assert_eq!(s.health_line(), "cluster: disconnected (connecting)\n");
        s.set_error("Connection refused".into());
        s.count_reconnect();
        s.count_unavailable();
        assert_eq!(
            s.health_line(),
            "cluster: disconnected (Connection refused)\n"
        );
        let mut m = String::new();
        s.render_metrics(&mut m);
        assert!(m.contains("ringcast_cluster_connected 0\n"), "{m}");
        assert!(m.contains("ringcast_cluster_reconnects_total 1\n"));
        assert!(m.contains("ringcast_cluster_unavailable_total 1\n"));
        s.set_connected(true);
        assert_eq!(s.health_line(), "cluster: connected\n");
    }
}
