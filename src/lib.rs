//! ringcast: a thread-per-core io_uring WebSocket server.
//!
//! A map of the crate (dependencies point one way: `driver` → everything else):
//!
//! - [`proto`]: RFC 6455, sans-IO. The upgrade handshake, the frame codec, masking, message
//!   assembly with incremental UTF-8 checks, close codes, and the per-connection protocol machine;
//!   permessage-deflate (RFC 7692): the offer negotiation and the bounded per-message codec.
//!   Bytes and `now` in, bytes and events out.
//! - [`time`]: the per-worker hierarchical timer wheel (heartbeats, idle/handshake/close timeouts),
//!   sans-IO: ticks are passed in, no clock is read. O(1) insert, cancel and reset.
//! - [`table`]: the per-core connection slab; [`table::ConnKey`]s carry a generation so a stale
//!   key misses instead of reaching the connection that reused its slot.
//! - [`config`]: every server knob with its default (one `impl Default`), the merge of flag >
//!   `RINGCAST_*` environment > TOML file > default, and validation naming key and origin.
//! - [`cli`]: the `ringcast serve` command line (clap derive); help shows each default.
//! - [`logging`]: the stderr `tracing` subscriber (text or JSON), filtered by `RUST_LOG`.
//! - [`metrics`]: per-worker counters (single writer each) and their Prometheus rendering.
//! - [`envelope`]: the JSON envelope of `GET /ws` (simd-json): client text → typed commands with
//!   stable error codes; server envelopes rendered straight into frames, payloads copied verbatim.
//! - [`room`]: the per-worker room registry (room ↔ local members, conn → rooms) and the owner
//!   side of a room (member list, `seq`, which workers have members), sans-IO.
//! - [`security`]: sans-IO abuse and access rules: CIDR allow/deny and `X-Forwarded-For`, the
//!   Origin policy, JWT verification and room permissions, token buckets, the bounded per-IP
//!   table and the per-connection message guard, gathered in one [`security::Policy`] built from
//!   a [`security::SecurityConfig`]. A tested library only for now: the driver does not call it
//!   and none of its settings is an option yet.
//! - [`driver`]: the only I/O. One thread per worker, each with its own tokio-uring runtime,
//!   `SO_REUSEPORT` listener, connection table, timer wheel and buffer pool; the graceful drain.
//! - [`loadgen`]: `ringcast bench`, the load tool: echo, latency, connect and idle scenarios
//!   against a WebSocket (or raw TCP echo) server on loopback; table, JSON and SVG reports.
//!
//! Nothing outside `driver`, `loadgen` (a client, not part of the server) and the binary performs
//! I/O or reads a clock.

#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod cli;
pub mod config;
pub mod driver;
pub mod envelope;
pub mod loadgen;
pub mod logging;
pub mod metrics;
pub mod proto;
pub mod room;
pub mod security;
pub mod table;
pub mod time;
