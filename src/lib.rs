//! ringcast: a thread-per-core io_uring WebSocket server.
//!
//! A map of the crate (dependencies point one way: `driver` → everything else):
//!
//! - [`proto`]: RFC 6455, sans-IO. The upgrade handshake, the frame codec, masking, message
//!   assembly with incremental UTF-8 checks, close codes, and the per-connection protocol machine.
//!   Bytes and `now` in, bytes and events out.
//! - [`config`]: every server knob with its default (one `impl Default`), the merge of flag >
//!   `RINGCAST_*` environment > TOML file > default, and validation naming key and origin.
//! - [`cli`]: the `ringcast serve` command line (clap derive); help shows each default.
//! - [`logging`]: the stderr `tracing` subscriber (text or JSON), filtered by `RUST_LOG`.
//!
//! Nothing outside `driver` (and the binary) performs I/O or reads a clock.

#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod cli;
pub mod config;
pub mod logging;
pub mod proto;
