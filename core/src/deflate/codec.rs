//! The per-message DEFLATE codec (RFC 7692 §7.2): raw DEFLATE, sync-flushed, the trailing
//! `00 00 ff ff` removed on the way out and appended on the way in.
//!
//! Owns one compression or decompression context and when it is reset (no context takeover).
//! Never allocates past the caller's limit while inflating: the output grows in steps and the
//! step that would pass `max` is refused, so a decompression bomb costs at most `max + 1` bytes
//! of output before it is reported. Never builds frames (that is [`super::super::conn`]'s and
//! the fan-out's business): it takes and returns payload bytes.
//!
//! Backend: `flate2` on `zlib-rs` (pure Rust, zlib's algorithms and window-bits control); see
//! tuning.md for the measurement that chose it.

use std::fmt;

use bytes::Bytes;
use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

use super::{MAX_WINDOW_BITS, MIN_DEFLATE_WINDOW_BITS, SYNC_TAIL};
use crate::frame::{FrameHeader, MAX_HEADER_LEN, RSV1};
use crate::opcode::OpCode;

/// The longest header a server frame has (no masking key): 2 + 8.
const SERVER_HEAD_ROOM: usize = 10;

/// Why an inflated message was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InflateError {
    /// The inflated message would exceed the message limit (close 1009).
    TooBig,
    /// The payload is not a valid DEFLATE stream (close 1007).
    Corrupt,
}

impl fmt::Display for InflateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            InflateError::TooBig => "inflated message over the size limit",
            InflateError::Corrupt => "invalid DEFLATE data",
        })
    }
}

impl std::error::Error for InflateError {}

/// A compression context for outgoing messages.
pub struct Deflater {
    inner: Compress,
    /// §7.1.1.1: with `server_no_context_takeover` every message starts from an empty window.
    no_context_takeover: bool,
}

impl fmt::Debug for Deflater {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Deflater")
            .field("no_context_takeover", &self.no_context_takeover)
            .finish_non_exhaustive()
    }
}

impl Deflater {
    /// A compressor at `level` (0-9) with a `window_bits` window (clamped to 9..=15: zlib's raw
    /// deflate cannot do 8; callers send uncompressed when the peer allowed only 8).
    pub fn new(level: u32, window_bits: u8, no_context_takeover: bool) -> Deflater {
        let bits = window_bits.clamp(MIN_DEFLATE_WINDOW_BITS, MAX_WINDOW_BITS);
        Deflater {
            inner: Compress::new_with_window_bits(Compression::new(level.min(9)), false, bits),
            no_context_takeover,
        }
    }

    /// Appends the compressed form of one message to `out` (§7.2.1: compress, sync flush, remove
    /// the trailing `00 00 ff ff`). With no context takeover the context is reset afterwards.
    pub fn compress(&mut self, message: &[u8], out: &mut Vec<u8>) {
        if message.is_empty() {
            // §7.2.3.6: an empty message may be sent as the single octet 0x00 (an empty stored
            // block once the tail is appended). A sync flush with no new input would emit nothing
            // at all after an earlier flush (zlib answers it with a buffer error), so the empty
            // block is written here; it leaves both windows as they were.
            out.push(0x00);
            return;
        }
        let start = out.len();
        // Enough for typical text in one pass; grown if not.
        out.reserve(message.len() / 2 + 64);
        let mut consumed = 0usize;
        loop {
            let before = self.inner.total_in();
            self.inner
                .compress_vec(&message[consumed..], out, FlushCompress::Sync)
                .expect("raw deflate with a sync flush cannot fail on valid state");
            consumed += (self.inner.total_in() - before) as usize;
            // All input taken and room left over: the sync flush is complete.
            if consumed == message.len() && out.len() < out.capacity() {
                break;
            }
            out.reserve(out.capacity().max(64));
        }
        debug_assert!(out[start..].ends_with(&SYNC_TAIL));
        if out[start..].ends_with(&SYNC_TAIL) {
            out.truncate(out.len() - SYNC_TAIL.len());
        }
        if self.no_context_takeover {
            self.inner.reset();
        }
    }
}

impl Deflater {
    /// Forgets the context: the next message refers to nothing sent before it.
    pub fn reset(&mut self) {
        self.inner.reset();
    }

    /// Compresses one message into a whole server frame: FIN, RSV1 (§6: "the "Per-Message
    /// Compressed" bit ... set on the first frame"), unmasked. Header and payload share one
    /// buffer: the payload is compressed behind room for the longest header, the header is
    /// written just in front of it, so the frame costs one allocation and no copy.
    pub fn compress_frame(&mut self, opcode: OpCode, message: &[u8]) -> Bytes {
        debug_assert!(
            !opcode.is_control(),
            "RFC 7692 §6.1: never on control frames"
        );
        let mut buf = Vec::with_capacity(SERVER_HEAD_ROOM + message.len() / 2 + 64);
        buf.resize(SERVER_HEAD_ROOM, 0);
        self.compress(message, &mut buf);
        let header = FrameHeader {
            fin: true,
            rsv: RSV1,
            opcode,
            mask: None,
            payload_len: (buf.len() - SERVER_HEAD_ROOM) as u64,
        };
        let mut head = [0u8; MAX_HEADER_LEN];
        let n = header.encode(&mut head);
        let start = SERVER_HEAD_ROOM - n;
        buf[start..SERVER_HEAD_ROOM].copy_from_slice(&head[..n]);
        Bytes::from(buf).slice(start..)
    }
}

/// A decompression context for incoming messages.
pub struct Inflater {
    inner: Decompress,
    /// §7.1.1.2: with `client_no_context_takeover` every message starts from an empty window.
    no_context_takeover: bool,
}

impl fmt::Debug for Inflater {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Inflater")
            .field("no_context_takeover", &self.no_context_takeover)
            .finish_non_exhaustive()
    }
}

/// The first output step while inflating: most messages fit, and a bomb cannot make us reserve
/// much more than its own compressed size before the limit is reached.
const FIRST_STEP: usize = 1024;

impl Inflater {
    /// A decompressor for a peer compressing with at most `window_bits` (a larger window decodes
    /// any smaller one, so 8 is decoded with 9).
    pub fn new(window_bits: u8, no_context_takeover: bool) -> Inflater {
        let bits = window_bits.clamp(MIN_DEFLATE_WINDOW_BITS, MAX_WINDOW_BITS);
        Inflater {
            inner: Decompress::new_with_window_bits(false, bits),
            no_context_takeover,
        }
    }

    /// Inflates one message (§7.2.2: append `00 00 ff ff`, decompress) into `out`, which must be
    /// empty. Fails with [`InflateError::TooBig`] as soon as the output passes `max` bytes; `out`
    /// never holds (or reserves) more than `max + 1` bytes, whatever the input claims.
    ///
    /// A stream that ends with a final block (BFINAL) ends the context: the next message starts
    /// from an empty window, as the peer's next stream must.
    pub fn inflate(
        &mut self,
        payload: &[u8],
        max: usize,
        out: &mut Vec<u8>,
    ) -> Result<(), InflateError> {
        debug_assert!(out.is_empty());
        let result = self.inflate_inner(payload, max, out);
        if self.no_context_takeover || result.is_err() {
            self.inner.reset(false);
        }
        result
    }

    fn inflate_inner(
        &mut self,
        payload: &[u8],
        max: usize,
        out: &mut Vec<u8>,
    ) -> Result<(), InflateError> {
        let cap = max.saturating_add(1);
        for input in [payload, &SYNC_TAIL[..]] {
            let mut consumed = 0usize;
            loop {
                if out.len() == out.capacity() {
                    if out.len() > max {
                        return Err(InflateError::TooBig);
                    }
                    let step = out.capacity().max(FIRST_STEP).min(cap - out.len());
                    out.reserve_exact(step);
                }
                let (in_before, out_before) = (self.inner.total_in(), out.len());
                let status = self
                    .inner
                    .decompress_vec(&input[consumed..], out, FlushDecompress::Sync)
                    .map_err(|_| InflateError::Corrupt)?;
                consumed += (self.inner.total_in() - in_before) as usize;
                if out.len() > max {
                    return Err(InflateError::TooBig);
                }
                if status == Status::StreamEnd {
                    // The peer ended its stream: nothing after the final block is data.
                    self.inner.reset(false);
                    return Ok(());
                }
                let room_left = out.len() < out.capacity();
                if consumed == input.len() && room_left {
                    break;
                }
                if self.inner.total_in() == in_before && out.len() == out_before && room_left {
                    // No progress with input and room available: the stream is stuck.
                    return Err(InflateError::Corrupt);
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7692 §7.2.3.1: "Hello" compressed, as the payload of `0xc1 0x07 ...`.
    const HELLO: [u8; 7] = [0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00];

    fn inflate_all(
        inf: &mut Inflater,
        payload: &[u8],
        max: usize,
    ) -> Result<Vec<u8>, InflateError> {
        let mut out = Vec::new();
        inf.inflate(payload, max, &mut out).map(|()| out)
    }

    #[test]
    fn rfc_7_2_3_1_hello_inflates() {
        let mut inf = Inflater::new(15, false);
        assert_eq!(inflate_all(&mut inf, &HELLO, 100).unwrap(), b"Hello");
    }

    #[test]
    fn rfc_7_2_3_2_hello_twice_with_context_takeover_uses_the_shared_window() {
        // §7.2.3.2: the second "Hello" with context takeover is 0xf2 0x00 0x11 0x00 0x00.
        let mut inf = Inflater::new(15, false);
        assert_eq!(inflate_all(&mut inf, &HELLO, 100).unwrap(), b"Hello");
        assert_eq!(
            inflate_all(&mut inf, &[0xf2, 0x00, 0x11, 0x00, 0x00], 100).unwrap(),
            b"Hello"
        );
        // Our compressor produces the same two payloads.
        let mut def = Deflater::new(6, 15, false);
        let mut a = Vec::new();
        def.compress(b"Hello", &mut a);
        assert_eq!(a, HELLO);
        let mut b = Vec::new();
        def.compress(b"Hello", &mut b);
        assert_eq!(b, [0xf2, 0x00, 0x11, 0x00, 0x00]);
    }

    #[test]
    fn rfc_7_2_3_1_hello_as_a_whole_frame() {
        // §7.2.3.1: "0xc1 0x07 0xf2 0x48 0xcd 0xc9 0xc9 0x07 0x00".
        let frame = Deflater::new(6, 15, true).compress_frame(OpCode::Text, b"Hello");
        assert_eq!(
            &frame[..],
            [0xc1, 0x07, 0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00]
        );
        // 16-bit and 64-bit lengths put the header right in front of the payload too.
        let mut def = Deflater::new(0, 15, true);
        for len in [200usize, 70_000] {
            let message: Vec<u8> = (0..len).map(|i| (i * 7919 % 251) as u8).collect();
            let frame = def.compress_frame(OpCode::Binary, &message);
            let head = if frame[1] == 126 { 4 } else { 10 };
            assert_eq!(frame[0], 0xc2);
            let mut out = Vec::new();
            Inflater::new(15, true)
                .inflate(&frame[head..], len, &mut out)
                .unwrap();
            assert_eq!(out, message);
        }
    }

    #[test]
    fn rfc_7_2_3_3_a_stored_block_inflates() {
        // §7.2.3.3: "Hello" in a DEFLATE block with no compression.
        let payload = [
            0x00, 0x05, 0x00, 0xfa, 0xff, 0x48, 0x65, 0x6c, 0x6c, 0x6f, 0x00,
        ];
        let mut inf = Inflater::new(15, true);
        assert_eq!(inflate_all(&mut inf, &payload, 100).unwrap(), b"Hello");
    }

    #[test]
    fn rfc_7_2_3_4_a_final_block_ends_the_stream_and_the_next_message_starts_fresh() {
        // §7.2.3.4: "Hello" with BFINAL set: 0xf3 0x48 0xcd 0xc9 0xc9 0x07 0x00 0x00.
        let mut inf = Inflater::new(15, false);
        let payload = [0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, 0x00];
        assert_eq!(inflate_all(&mut inf, &payload, 100).unwrap(), b"Hello");
        assert_eq!(inflate_all(&mut inf, &HELLO, 100).unwrap(), b"Hello");
    }

    #[test]
    fn rfc_7_2_3_6_an_empty_message_is_a_single_zero_byte_or_nothing() {
        let mut inf = Inflater::new(15, false);
        // §7.2.3.6: "0x00" is an empty DEFLATE block; twice, the window carrying over.
        assert_eq!(inflate_all(&mut inf, &[0x00], 0).unwrap(), b"");
        assert_eq!(inflate_all(&mut inf, &[0x00], 0).unwrap(), b"");
        let mut def = Deflater::new(6, 15, true);
        let mut out = Vec::new();
        def.compress(b"", &mut out);
        assert_eq!(inflate_all(&mut inf, &out, 0).unwrap(), b"");
    }

    #[test]
    fn an_empty_message_between_two_others_keeps_the_shared_window_in_step() {
        // Found by the `deflate` fuzz target: with context takeover, compressing "" right after a
        // message produced no bytes at all, not a valid (empty) DEFLATE payload.
        let mut def = Deflater::new(6, 15, false);
        let mut inf = Inflater::new(15, false);
        for m in [&b"Hello"[..], b"", b"Hello", b"", b"", b"Hello world"] {
            let mut z = Vec::new();
            def.compress(m, &mut z);
            assert!(!z.is_empty());
            assert_eq!(inflate_all(&mut inf, &z, 100).unwrap(), m);
        }
    }

    #[test]
    fn without_context_takeover_each_message_stands_alone() {
        let mut def = Deflater::new(6, 15, true);
        let mut first = Vec::new();
        def.compress(b"Hello", &mut first);
        let mut second = Vec::new();
        def.compress(b"Hello", &mut second);
        assert_eq!(first, second, "no window carried over");
        // A fresh inflater (context dropped) reads each one.
        for m in [&first, &second] {
            assert_eq!(
                inflate_all(&mut Inflater::new(15, true), m, 100).unwrap(),
                b"Hello"
            );
        }
    }

    #[test]
    fn round_trips_at_every_window_and_level() {
        let text: Vec<u8> = (0..20_000u32)
            .flat_map(|i| format!("{{\"seq\":{i},\"user\":\"u{}\"}}", i % 37).into_bytes())
            .take(50_000)
            .collect();
        for bits in 9..=15 {
            for level in [0, 1, 6, 9] {
                for takeover in [false, true] {
                    let mut def = Deflater::new(level, bits, !takeover);
                    let mut inf = Inflater::new(bits, !takeover);
                    for chunk in text.chunks(7_000) {
                        let mut z = Vec::new();
                        def.compress(chunk, &mut z);
                        assert_eq!(
                            inflate_all(&mut inf, &z, chunk.len()).unwrap(),
                            chunk,
                            "bits {bits} level {level} takeover {takeover}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn a_decompression_bomb_stops_at_the_limit_without_reserving_past_it() {
        let zeros = vec![0u8; 10 << 20];
        let mut bomb = Vec::new();
        Deflater::new(9, 15, true).compress(&zeros, &mut bomb);
        assert!(bomb.len() < 20_000, "10 MiB of zeros is a small payload");
        for max in [0, 1, 1000, 65_536, 1 << 20] {
            let mut inf = Inflater::new(15, false);
            let mut out = Vec::new();
            assert_eq!(
                inf.inflate(&bomb, max, &mut out),
                Err(InflateError::TooBig),
                "max {max}"
            );
            assert!(out.capacity() <= max + 1, "max {max}: {}", out.capacity());
            // The context was reset: it still reads a good message.
            assert_eq!(inflate_all(&mut inf, &HELLO, 5).unwrap(), b"Hello");
        }
        // Exactly at the limit is fine.
        let mut out = Vec::new();
        Inflater::new(15, true)
            .inflate(&bomb, zeros.len(), &mut out)
            .unwrap();
        assert_eq!(out.len(), zeros.len());
    }

    #[test]
    fn garbage_is_reported_as_corrupt() {
        let mut inf = Inflater::new(15, false);
        // BTYPE 11 is reserved.
        assert_eq!(
            inflate_all(&mut inf, &[0xff, 0xff], 100),
            Err(InflateError::Corrupt)
        );
        // A stored block whose length check fails.
        assert_eq!(
            inflate_all(&mut inf, &[0x00, 0x05, 0x00, 0x00, 0x00], 100),
            Err(InflateError::Corrupt)
        );
    }
}
