//! RFC 6455, sans-IO: the handshake, frames, messages and the close handshake; and RFC 7692's
//! permessage-deflate ([`deflate`]): negotiation, RSV1 rules and the bounded codec.
//!
//! Everything here takes bytes (and, where time matters, `now`) and returns bytes and events. It
//! never does I/O, never reads a clock, never spawns, and never imports tokio, tokio-uring, socket2
//! or `std::net`: the driver moves bytes, this module decides.

pub mod assembler;
pub mod close;
pub mod conn;
pub mod deflate;
pub mod error;
pub mod frame;
pub mod handshake;
pub mod mask;
pub mod opcode;
pub mod utf8;

pub use assembler::MessageKind;
pub use close::{is_valid_close_code, parse_close_payload, CloseFrame, ClosePayload};
pub use conn::{BackpressurePolicy, ConnLimits, Connection, Event, SendError, State};
pub use error::ProtocolError;
pub use frame::{decode_header, DecodeLimits, FrameHeader, HeaderStatus, MAX_HEADER_LEN};
pub use opcode::OpCode;
pub use utf8::{InvalidUtf8, Utf8Validator};
