//! ringcast: a thread-per-core io_uring WebSocket server.
//!
//! A map of the crate (dependencies point one way: `driver` → everything else):
//!
//! - [`proto`]: RFC 6455, sans-IO. The upgrade handshake, the frame codec, masking, message
//!   assembly with incremental UTF-8 checks, close codes, and the per-connection protocol machine.
//!   Bytes and `now` in, bytes and events out.
//! - [`time`]: the per-worker hierarchical timer wheel (heartbeats, idle/handshake/close timeouts),
//!   sans-IO: ticks are passed in, no clock is read. O(1) insert, cancel and reset.
//! - [`table`]: the per-core connection slab; [`table::ConnKey`]s carry a generation so a stale
//!   key misses instead of reaching the connection that reused its slot.
//!
//! Nothing outside `driver` (and the binary) performs I/O or reads a clock.

#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod proto;
pub mod table;
pub mod time;
