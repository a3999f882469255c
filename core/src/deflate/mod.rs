//! permessage-deflate (RFC 7692), sans-IO: the extension negotiation and the per-message
//! compression codec.
//!
//! Owns: reading a client's `permessage-deflate` offers and choosing the parameters and the
//! `Sec-WebSocket-Extensions` answer ([`negotiate`]); compressing a message into a raw DEFLATE
//! stream with its trailing `00 00 ff ff` removed and inflating one back with a hard bound on the
//! inflated size ([`codec`]). The frame-level rules (RSV1 on first fragments only, never on control
//! frames, only when negotiated) are enforced by [`super::frame`], [`super::assembler`] and
//! [`super::conn`] with the [`Negotiated`] parameters they are given.
//!
//! Never does I/O, never reads a clock, never decides *which* connections compress (the driver's
//! `--compression` mode does), and never allocates past the message limit while inflating.

pub mod codec;
pub mod negotiate;

pub use codec::{Deflater, InflateError, Inflater};
pub use negotiate::{negotiate, Accepted, Negotiated, ServerPolicy, EXTENSION_NAME};

/// The smallest LZ77 window (in bits) the RFC allows a peer to ask for (§7.1.2: "8 to 15").
pub const MIN_WINDOW_BITS: u8 = 8;

/// The largest LZ77 window (in bits): 32 KiB, DEFLATE's own maximum.
pub const MAX_WINDOW_BITS: u8 = 15;

/// The smallest window our compressor can honour: zlib's raw deflate refuses 8 (a 256-byte
/// window), so a peer that limits us to 8 bits is sent uncompressed messages (RSV1 clear), which
/// §6 allows on a connection that negotiated the extension.
pub const MIN_DEFLATE_WINDOW_BITS: u8 = 9;

/// The four bytes a sync flush ends with; removed before sending, appended before inflating
/// (§7.2.1: "Remove 4 octets (that are 0x00 0x00 0xff 0xff) from the tail end"; §7.2.2: "Append 4
/// octets of 0x00 0x00 0xff 0xff to the tail end of the payload of the message").
pub const SYNC_TAIL: [u8; 4] = [0x00, 0x00, 0xff, 0xff];
