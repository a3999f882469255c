//! ringcast: a thread-per-core io_uring WebSocket server.
//!
//! A map of the crate (dependencies point one way: `driver` → everything else):
//!
//! - [`proto`]: RFC 6455, sans-IO. The upgrade handshake, the frame codec, masking, message
//!   assembly with incremental UTF-8 checks, close codes, and the per-connection protocol machine.
//!   Bytes and `now` in, bytes and events out.
//! - [`loadgen`]: `ringcast bench`, the load tool: echo, latency, connect and idle scenarios
//!   against a WebSocket (or raw TCP echo) server on loopback; table, JSON and SVG reports.
//!
//! Nothing outside `driver`, `loadgen` (a client, not part of the server) and the binary performs
//! I/O or reads a clock.

#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod loadgen;
pub mod proto;
