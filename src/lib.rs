//! ringcast: a thread-per-core io_uring WebSocket server.
//!
//! A map of the crate (dependencies point one way: `driver` → everything else):
//!
//! - [`proto`]: the member crate `ringcast-core` (`core/`), re-exported: RFC 6455, sans-IO. The upgrade handshake, the frame codec, masking, message
//!   assembly with incremental UTF-8 checks, close codes, and the per-connection protocol machine;
//!   permessage-deflate (RFC 7692): the offer negotiation and the bounded per-message codec.
//!   Bytes and `now` in, bytes and events out.
//! - [`time`]: the per-worker hierarchical timer wheel (heartbeats, idle/handshake/close timeouts),
//!   sans-IO: ticks are passed in, no clock is read. O(1) insert, cancel and reset.
//! - [`table`]: the per-core connection slab; [`table::ConnKey`]s carry a generation so a stale
//!   key misses instead of reaching the connection that reused its slot.
//! - [`config`]: every server option declared once in one table (field, kind, default, help,
//!   rule), the merge of flag > `RINGCAST_*` environment > TOML file > default, and validation
//!   naming key and origin.
//! - [`cli`]: the `ringcast serve` command line (clap; one flag per declared option); help shows
//!   each default.
//! - [`logging`]: the stderr `tracing` subscriber (text or JSON), filtered by `RUST_LOG`.
//! - [`metrics`]: per-worker counters (single writer each) and their Prometheus rendering.
//! - [`envelope`]: the JSON envelope of `GET /ws` (simd-json): client text → typed commands with
//!   stable error codes; server envelopes rendered straight into frames, payloads copied verbatim.
//! - [`room`]: the per-worker room registry (room ↔ local members, conn → rooms), the owner
//!   side of a room (member list, which workers have members), its stream (`offset`, `epoch`,
//!   bounded history behind the `RoomStore` trait) and the `msg_id` table of idempotent
//!   publishes, sans-IO.
//! - [`user`]: messages to users, sans-IO: the user's owner worker, its live connections, server
//!   message ids, and the inbox ([`user::inbox::InboxStore`], in memory) with its bounds,
//!   redelivery backoff and expiry.
//! - [`security`]: sans-IO abuse and access rules: CIDR allow/deny and `X-Forwarded-For`, the
//!   Origin policy, JWT verification and room permissions, token buckets, the bounded per-IP
//!   table and the per-connection message guard, gathered in one [`security::Policy`] built from
//!   a [`security::SecurityConfig`]. The driver asks it at four points (`driver/admission.rs`):
//!   at accept, on the upgrade request, per message, and at token expiry.
//! - [`cluster`]: several nodes as one through Redis (`--cluster`): room offsets, history and
//!   `msg_id` dedup in Redis, cross-node fan-out; its bridge (one thread per node) is, with
//!   `driver`, the only code doing I/O.
//! - [`api`]: the server API for backends (`api_listen`), sans-IO: routes, API keys, body
//!   length decided from the head, JSON bodies (simd-json) → typed calls, rendered answers with
//!   stable error codes; `docs/api.yaml` is its contract.
//! - [`backend`]: the application backend over HTTP (`webhook_url`, `authorize_join_url`):
//!   webhook events batched, signed and retried from a bounded queue, and the question whether a
//!   user may join a room, with its cache; each on its own thread, answering workers through the
//!   mesh.
//! - [`driver`]: the only I/O. One thread per worker, each with its own tokio-uring runtime,
//!   `SO_REUSEPORT` listener, connection table, timer wheel and buffer pool; the graceful drain.
//!
//! Nothing outside `driver`, `cluster::bridge`, the `backend` threads and the binary performs
//! I/O or reads a clock.
//!
//! The load tool is not part of this crate: it is the workspace member `load/` (package
//! `ringcast-load`, binary `ringcast-bench`), which uses `proto`'s client side and `envelope`,
//! so embedding the server pulls none of its dependencies.

#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod api;
pub mod backend;
pub mod cli;
pub mod cluster;
pub mod config;
pub mod driver;
pub mod envelope;
pub mod logging;
pub mod metrics;
pub use ringcast_core as proto;
pub mod room;
pub mod security;
pub mod table;
pub mod time;
pub mod user;
