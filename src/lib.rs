//! ringcast: a thread-per-core io_uring WebSocket server.
//!
//! A map of the crate (dependencies point one way: `driver` → everything else):
//!
//! - [`proto`]: RFC 6455, sans-IO. The upgrade handshake, the frame codec, masking, message
//!   assembly with incremental UTF-8 checks, close codes, and the per-connection protocol machine.
//!   Bytes and `now` in, bytes and events out.
//!
//! Nothing outside `driver` (and the binary) performs I/O or reads a clock.

#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod proto;
