//! A worker's side of permessage-deflate: the `--compression` mode applied to the handshake and
//! to each outgoing message, and the worker's shared compressor.
//!
//! Owns the choice of *which* encoding a message gets (plain, compressed by the shared context,
//! or by the connection's own context) from the mode, the size threshold and what the connection
//! negotiated. Every protocol rule (offer parsing, RSV1, the codec, inflate bounds) is
//! [`crate::proto::deflate`]'s and the machine's; this module never inflates and never parses.
//!
//! The shared compressor is one context per worker, reset after every message (the connections
//! that get its frames negotiated `server_no_context_takeover`, or have no context of their own
//! to disturb): a room message is compressed once, at its owner, whatever the room size.

use std::cell::RefCell;

use bytes::Bytes;

use crate::config::{CompressionMode, Config};
use crate::proto::conn::{Compression, Connection, SendError};
use crate::proto::deflate::{negotiate, Accepted, Deflater, Negotiated, ServerPolicy};
use crate::proto::frame::{decode_header, DecodeLimits, HeaderStatus};
use crate::proto::handshake::ExtensionOffer;
use crate::proto::MessageKind;
use crate::room::RoomFrame;

/// The worker's compression settings and its shared context.
pub struct Compressor {
    mode: CompressionMode,
    /// What the handshake answers on top of a client's offer.
    policy: ServerPolicy,
    /// Messages shorter than this go plain (`compression_min_size`).
    min_size: usize,
    /// DEFLATE level for every context (`compression_level`).
    level: u32,
    /// Our window (`compression_window_bits`): the shared context's, and the most a dedicated
    /// one uses.
    window_bits: u8,
    /// The shared context, made on first use (a worker that never compresses holds none).
    shared: RefCell<Option<Deflater>>,
}

impl Compressor {
    /// The settings of `config`.
    pub fn new(config: &Config) -> Compressor {
        let shared = config.compression == CompressionMode::Shared;
        Compressor {
            mode: config.compression,
            policy: ServerPolicy {
                // Shared: every message stands alone, and the client's context can be dropped
                // between messages, so an idle connection holds no context on either side.
                server_no_context_takeover: shared,
                client_no_context_takeover: shared,
                server_max_window_bits: config.compression_window_bits,
                ..ServerPolicy::default()
            },
            min_size: config.compression_min_size,
            level: config.compression_level,
            window_bits: config.compression_window_bits,
            shared: RefCell::new(None),
        }
    }

    /// The accepted offer, if compression is on and the client made an acceptable one.
    pub fn negotiate(&self, offers: &[ExtensionOffer]) -> Option<Accepted> {
        if self.mode == CompressionMode::Off {
            return None;
        }
        negotiate(offers, &self.policy)
    }

    /// What a connection that negotiated `params` is given.
    pub fn for_connection(&self, params: Negotiated) -> Compression {
        Compression {
            params,
            dedicated_level: (self.mode == CompressionMode::Dedicated).then_some(self.level),
        }
    }

    /// Queues one message on one connection in the best encoding it accepts: compressed by the
    /// connection's own context (dedicated), by the shared one (shared), or plain.
    pub fn send(
        &self,
        machine: &mut Connection,
        kind: MessageKind,
        payload: Bytes,
    ) -> Result<(), SendError> {
        if payload.len() < self.min_size || machine.compression().is_none() {
            return machine.send(kind, payload);
        }
        match self.mode {
            CompressionMode::Dedicated => machine.send_deflated(kind, payload),
            CompressionMode::Shared if machine.accepts_deflated(self.window_bits) => {
                let frame = self.deflate(kind, &payload);
                machine.send_encoded_deflated(frame)
            }
            _ => machine.send(kind, payload),
        }
    }

    /// Both encodings of a room frame rendered once by its owner: the compressed one is made
    /// when compression is on and the message reaches the threshold.
    pub fn room_frame(&self, plain: Bytes) -> RoomFrame {
        if self.mode == CompressionMode::Off {
            return RoomFrame::plain(plain);
        }
        // Server frames are unmasked and final; the renderer only writes text frames.
        let Ok(HeaderStatus::Complete { header, header_len }) =
            decode_header(&plain, &DecodeLimits::client(u64::MAX))
        else {
            debug_assert!(false, "a rendered frame has a complete header");
            return RoomFrame::plain(plain);
        };
        let payload = &plain[header_len..];
        if payload.len() < self.min_size || header.opcode.is_control() {
            return RoomFrame::plain(plain);
        }
        let kind = if header.opcode == crate::proto::OpCode::Binary {
            MessageKind::Binary
        } else {
            MessageKind::Text
        };
        let deflated = self.deflate(kind, payload);
        RoomFrame {
            plain,
            deflated: Some(deflated),
        }
    }

    /// Queues a room frame on one recipient: the compressed encoding when there is one and the
    /// connection accepts it, else the plain one.
    pub fn deliver(&self, machine: &mut Connection, frame: &RoomFrame) -> Result<(), SendError> {
        match &frame.deflated {
            Some(deflated) if machine.accepts_deflated(self.window_bits) => {
                machine.send_encoded_deflated(deflated.clone())
            }
            _ => machine.send_encoded(frame.plain.clone()),
        }
    }

    /// One message through the shared context, as a whole frame.
    fn deflate(&self, kind: MessageKind, payload: &[u8]) -> Bytes {
        let mut shared = self.shared.borrow_mut();
        let deflater =
            shared.get_or_insert_with(|| Deflater::new(self.level, self.window_bits, true));
        deflater.compress_frame(kind.opcode(), payload)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::conn::ConnLimits;
    use crate::proto::deflate::negotiate::negotiate_header;

    fn compressor(mode: CompressionMode) -> Compressor {
        Compressor::new(&Config {
            compression: mode,
            ..Config::default()
        })
    }

    /// A machine that negotiated what a client offering `header` gets from `c`.
    fn machine(c: &Compressor, header: Option<&str>) -> Connection {
        let params = header
            .and_then(|h| negotiate_header(h.as_bytes(), &c.policy))
            .map(|a| c.for_connection(a.params));
        Connection::with_compression(ConnLimits::default(), params)
    }

    fn text_frame(payload: &[u8]) -> Bytes {
        let mut frame = vec![0x81, 126];
        frame.extend_from_slice(&(payload.len() as u16).to_be_bytes());
        frame.extend_from_slice(payload);
        Bytes::from(frame)
    }

    fn sent(m: &mut Connection) -> Vec<Bytes> {
        let mut out = Vec::new();
        m.poll_transmit(&mut out);
        out
    }

    #[test]
    fn a_room_frame_is_compressed_once_and_shared_by_every_recipient_that_negotiated() {
        for mode in [CompressionMode::Shared, CompressionMode::Dedicated] {
            let c = compressor(mode);
            let plain =
                text_frame(&br#"{"type":"message","payload":"hello hello hello"}"#.repeat(8));
            let frame = c.room_frame(plain.clone());
            let deflated = frame.deflated.clone().expect("over the threshold");
            assert_eq!(deflated[0], 0xc1, "FIN, RSV1, text");
            let mut a = machine(&c, Some("permessage-deflate"));
            let mut b = machine(&c, Some("permessage-deflate; client_max_window_bits"));
            let mut none = machine(&c, None);
            let mut small_window =
                machine(&c, Some("permessage-deflate; server_max_window_bits=10"));
            for m in [&mut a, &mut b, &mut none, &mut small_window] {
                c.deliver(m, &frame).unwrap();
            }
            let (a, b) = (sent(&mut a), sent(&mut b));
            assert_eq!(a.len(), 1);
            assert_eq!(
                a[0].as_ptr(),
                deflated.as_ptr(),
                "{mode:?}: the same buffer, no copy"
            );
            assert_eq!(
                b[0].as_ptr(),
                deflated.as_ptr(),
                "{mode:?}: the same buffer, no copy"
            );
            for m in [&mut none, &mut small_window] {
                let got = sent(m);
                assert_eq!(got[0].as_ptr(), plain.as_ptr(), "{mode:?}: the plain frame");
            }
        }
    }

    #[test]
    fn small_room_frames_and_off_mode_have_only_the_plain_encoding() {
        // Just under the default threshold.
        let small = text_frame(&vec![b'x'; Config::default().compression_min_size - 1]);
        assert_eq!(
            compressor(CompressionMode::Shared)
                .room_frame(small.clone())
                .deflated,
            None
        );
        let big = text_frame(&[b'x'; 4096]);
        assert_eq!(
            compressor(CompressionMode::Off)
                .room_frame(big.clone())
                .deflated,
            None
        );
        assert!(compressor(CompressionMode::Shared)
            .room_frame(big)
            .deflated
            .is_some());
    }

    #[test]
    fn off_mode_accepts_no_offer_and_shared_mode_asks_for_no_context_takeover() {
        let offers = |h: &str| {
            let mut v = Vec::new();
            crate::proto::handshake::upgrade::parse_extensions(h.as_bytes(), &mut v).unwrap();
            v
        };
        let o = offers("permessage-deflate");
        assert_eq!(compressor(CompressionMode::Off).negotiate(&o), None);
        assert_eq!(
            compressor(CompressionMode::Shared)
                .negotiate(&o)
                .unwrap()
                .response,
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover"
        );
        assert_eq!(
            compressor(CompressionMode::Dedicated)
                .negotiate(&o)
                .unwrap()
                .response,
            "permessage-deflate"
        );
    }
}
