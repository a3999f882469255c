//! The load tool's side of the wire after the upgrade, sans-IO: pre-encoded masked client frames
//! going out, and a counter of server frames coming in.
//!
//! Owns: building each outgoing frame once ([`masked_frame`], [`Burst`]), decoding the server's
//! frames into per-message events ([`ServerFrames`]), and counting echoed bytes in `--raw` mode
//! ([`RawCounter`]). Never does I/O, never reads a clock, and never allocates after construction:
//! the decoder keeps at most one header (14 bytes) and one control payload (125 bytes) in fixed
//! arrays and skips data payloads without copying them.

use ringcast::proto::frame::{
    decode_header, DecodeLimits, FrameHeader, HeaderStatus, MAX_CONTROL_PAYLOAD, MAX_HEADER_LEN,
    RSV1,
};
use ringcast::proto::mask::apply_mask;
use ringcast::proto::{parse_close_payload, CloseFrame, OpCode, ProtocolError};

/// Close code 1000, "normal closure" (§7.4.1), which the tool sends when it is done.
pub const CLOSE_NORMAL: u16 = 1000;

/// Builds one complete masked client frame: header, then `payload` XORed with `key`.
///
/// §5.3: "The masking key is a 32-bit value chosen at random by the client" and "needs to be
/// unpredictable". The load tool deliberately reuses one pre-encoded frame per thread so that the
/// per-message cost is a `memcpy`-free write; a server cannot observe key freshness and must not
/// depend on it, so this changes nothing about what is measured. Each thread draws its own key.
pub fn masked_frame(opcode: OpCode, payload: &[u8], key: [u8; 4]) -> Vec<u8> {
    let header = FrameHeader {
        fin: true,
        rsv: 0,
        opcode,
        // §5.1: "a client MUST mask all frames that it sends to the server".
        mask: Some(key),
        payload_len: payload.len() as u64,
    };
    let mut head = [0u8; MAX_HEADER_LEN];
    let head_len = header.encode(&mut head);
    let mut frame = Vec::with_capacity(head_len + payload.len());
    frame.extend_from_slice(&head[..head_len]);
    frame.extend_from_slice(payload);
    apply_mask(&mut frame[head_len..], key, 0);
    frame
}

/// The wire length of a masked client frame carrying `payload` bytes.
pub fn masked_frame_len(payload: usize) -> usize {
    let header = FrameHeader {
        fin: true,
        rsv: 0,
        opcode: OpCode::Binary,
        mask: Some([0; 4]),
        payload_len: payload as u64,
    };
    header.encoded_len() + payload
}

/// A masked close frame carrying [`CLOSE_NORMAL`] and no reason.
pub fn close_frame(key: [u8; 4]) -> Vec<u8> {
    masked_frame(OpCode::Close, &CLOSE_NORMAL.to_be_bytes(), key)
}

/// A masked pong answering a ping with `payload` (§5.5.3: "A Pong frame sent in response to a
/// Ping frame must have identical 'Application data' as found in the message body of the Ping
/// frame being replied to"). Built into a stack array: answering pings does not allocate.
pub fn pong_frame(payload: &[u8], key: [u8; 4], out: &mut [u8; MAX_HEADER_LEN + 125]) -> usize {
    debug_assert!(payload.len() as u64 <= MAX_CONTROL_PAYLOAD);
    let header = FrameHeader {
        fin: true,
        rsv: 0,
        opcode: OpCode::Pong,
        mask: Some(key),
        payload_len: payload.len() as u64,
    };
    let mut head = [0u8; MAX_HEADER_LEN];
    let head_len = header.encode(&mut head);
    out[..head_len].copy_from_slice(&head[..head_len]);
    out[head_len..head_len + payload.len()].copy_from_slice(payload);
    apply_mask(&mut out[head_len..head_len + payload.len()], key, 0);
    head_len + payload.len()
}

/// The same frame (or cycle of equally long frames) repeated back to back, so that any run of up
/// to `max_owed` whole frames starting at any byte offset inside the first cycle is one
/// contiguous slice: a connection that owes `k` frames and has already written `p` bytes writes
/// `slice(p, k * frame_len - p)` in one call, with no copying.
#[derive(Debug)]
pub struct Burst {
    bytes: Vec<u8>,
    frame_len: usize,
    /// Bytes of one cycle: `frame_len × frames in the cycle`.
    cycle_len: usize,
}

impl Burst {
    /// Repeats `frame` so that `max_owed` whole frames fit after any offset into the first one.
    pub fn new(frame: &[u8], max_owed: usize) -> Self {
        Burst::cycle(std::slice::from_ref(&frame.to_vec()), max_owed)
    }

    /// Repeats the cycle `frames` (all of one length, e.g. variants of one JSON document) so
    /// that `max_owed` whole frames fit after any offset into the first cycle: the wire carries
    /// `frames[0], frames[1], …, frames[n-1], frames[0], …`.
    pub fn cycle(frames: &[Vec<u8>], max_owed: usize) -> Self {
        let frame_len = frames.first().map_or(0, Vec::len);
        assert!(frame_len > 0, "a frame has at least a 2-byte header");
        assert!(
            frames.iter().all(|f| f.len() == frame_len),
            "the frames of a cycle have one length"
        );
        let copies = frames.len() + max_owed;
        let mut bytes = Vec::with_capacity(frame_len * copies);
        for f in frames.iter().cycle().take(copies) {
            bytes.extend_from_slice(f);
        }
        Burst {
            bytes,
            frame_len,
            cycle_len: frame_len * frames.len(),
        }
    }

    /// The length of one frame on the wire, header included.
    pub fn frame_len(&self) -> usize {
        self.frame_len
    }

    /// The next bytes to write when the stream has sent `sent` bytes in total and `owed` more
    /// bytes are due (`owed` ≤ `max_owed × frame_len`).
    ///
    /// Invariant: the wire is the cycle repeated, so the position inside the current cycle is
    /// `sent % cycle_len`, and the returned slice is never longer than `owed`.
    pub fn next(&self, sent: u64, owed: usize) -> &[u8] {
        let at = (sent % self.cycle_len as u64) as usize;
        let end = (at + owed).min(self.bytes.len());
        &self.bytes[at..end]
    }
}

/// What the server sent, one event per completed frame or message.
#[derive(Debug, PartialEq, Eq)]
pub enum Incoming<'a> {
    /// The final frame of a text or binary message arrived; `len` is the message's payload size.
    Message {
        /// Payload bytes over all the message's frames (as sent: compressed when `compressed`).
        len: u64,
        /// RSV1 was set on the message's first frame: its payload is DEFLATE data (RFC 7692 §6),
        /// only possible after [`ServerFrames::allow_compression`].
        compressed: bool,
    },
    /// A ping with its payload (at most 125 bytes).
    Ping(&'a [u8]),
    /// A pong (unsolicited or not; the tool sends no pings).
    Pong,
    /// A close frame with its status code and reason exactly as the server sent them (checked
    /// as §5.5.1 and §7.4 ask: a valid code, a UTF-8 reason; `code` is `None` for an empty body).
    Close(CloseFrame<'a>),
}

/// Where the decoder is inside the server's byte stream.
#[derive(Clone, Copy, Debug)]
enum State {
    /// Between frames; `hdr[..hdr_len]` holds a header split across reads.
    Header,
    /// Inside a frame's payload with `remaining` bytes to go.
    Payload {
        opcode: OpCode,
        fin: bool,
        remaining: u64,
    },
}

/// Decodes the server's frames from a byte stream fed in arbitrary pieces.
///
/// Uses the crate's [`decode_header`] with client limits, so a masked server frame, a reserved
/// opcode or an oversized frame fails the connection exactly as the server's own decoder would.
#[derive(Debug)]
pub struct ServerFrames {
    limits: DecodeLimits,
    state: State,
    /// A header split across reads; never more than [`MAX_HEADER_LEN`] bytes.
    hdr: [u8; MAX_HEADER_LEN],
    hdr_len: usize,
    /// The payload of the control frame being received; control payloads are ≤ 125 bytes (§5.5).
    ctrl: [u8; MAX_CONTROL_PAYLOAD as usize],
    ctrl_len: usize,
    /// Payload bytes of the data message being received, over its frames so far.
    message_len: u64,
    /// A data frame with FIN clear was seen and its message is not finished yet.
    fragmented: bool,
    /// The data message being received is compressed (RSV1 on its first frame).
    compressed: bool,
}

impl ServerFrames {
    /// A decoder refusing frames larger than `max_frame_len` bytes.
    pub fn new(max_frame_len: u64) -> Self {
        ServerFrames {
            limits: DecodeLimits::client(max_frame_len),
            state: State::Header,
            hdr: [0; MAX_HEADER_LEN],
            hdr_len: 0,
            ctrl: [0; MAX_CONTROL_PAYLOAD as usize],
            ctrl_len: 0,
            message_len: 0,
            fragmented: false,
            compressed: false,
        }
    }

    /// permessage-deflate was negotiated: RSV1 marks a compressed message (RFC 7692 §6). It is
    /// still refused on control frames (§6.1: "An endpoint MUST NOT set the "Per-Message
    /// Compressed" bit of control frames") and on continuation frames (§6.1: set "on the first
    /// frame of a message" only).
    pub fn allow_compression(&mut self) {
        self.limits.allowed_rsv = RSV1;
    }

    /// Consumes all of `buf`, calling `on` for each completed message or control frame.
    ///
    /// Cost: O(number of frames) plus a copy of control payloads; data payloads are skipped.
    pub fn feed(&mut self, buf: &[u8], on: impl FnMut(Incoming<'_>)) -> Result<(), ProtocolError> {
        self.feed_tapped(buf, on, |_, _| {})
    }

    /// Like [`ServerFrames::feed`], and also hands every piece of a data payload to `data` as it
    /// passes (pieces of one message arrive in order, before its [`Incoming::Message`]), with
    /// whether the message is compressed. Still copies nothing: `data` sees slices of `buf`.
    pub fn feed_tapped(
        &mut self,
        mut buf: &[u8],
        mut on: impl FnMut(Incoming<'_>),
        mut data: impl FnMut(&[u8], bool),
    ) -> Result<(), ProtocolError> {
        while !buf.is_empty() {
            match self.state {
                State::Header => {
                    let (status, used) = if self.hdr_len == 0 {
                        let status = decode_header(buf, &self.limits)?;
                        let used = match status {
                            HeaderStatus::Complete { header_len, .. } => header_len,
                            // Partial: a header is at most 14 bytes, so the rest fits in `hdr`.
                            HeaderStatus::Partial { .. } => buf.len(),
                        };
                        if let HeaderStatus::Partial { .. } = status {
                            self.hdr[..buf.len()].copy_from_slice(buf);
                            self.hdr_len = buf.len();
                        }
                        (status, used)
                    } else {
                        let before = self.hdr_len;
                        let take = (MAX_HEADER_LEN - before).min(buf.len());
                        self.hdr[before..before + take].copy_from_slice(&buf[..take]);
                        let status = decode_header(&self.hdr[..before + take], &self.limits)?;
                        match status {
                            HeaderStatus::Complete { header_len, .. } => {
                                self.hdr_len = 0;
                                (status, header_len - before)
                            }
                            HeaderStatus::Partial { .. } => {
                                self.hdr_len = before + take;
                                (status, take)
                            }
                        }
                    };
                    buf = &buf[used..];
                    if let HeaderStatus::Complete { header, .. } = status {
                        self.start_frame(header)?;
                        if header.payload_len == 0 {
                            self.finish_frame(&mut on)?;
                        }
                    }
                }
                State::Payload {
                    opcode,
                    fin,
                    remaining,
                } => {
                    let take = remaining.min(buf.len() as u64) as usize;
                    if opcode.is_control() {
                        self.ctrl[self.ctrl_len..self.ctrl_len + take]
                            .copy_from_slice(&buf[..take]);
                        self.ctrl_len += take;
                    } else {
                        data(&buf[..take], self.compressed);
                    }
                    buf = &buf[take..];
                    let remaining = remaining - take as u64;
                    self.state = State::Payload {
                        opcode,
                        fin,
                        remaining,
                    };
                    if remaining == 0 {
                        self.finish_frame(&mut on)?;
                    }
                }
            }
        }
        Ok(())
    }

    fn start_frame(&mut self, header: FrameHeader) -> Result<(), ProtocolError> {
        match header.opcode {
            // §5.4: "a fragmented message consists of a single frame with the FIN bit clear and
            // an opcode other than 0, followed by zero or more frames with the FIN bit clear and
            // the opcode set to 0, and terminated by a single frame with the FIN bit set and an
            // opcode of 0."
            OpCode::Continuation if !self.fragmented => {
                return Err(ProtocolError::UnexpectedContinuation);
            }
            OpCode::Text | OpCode::Binary if self.fragmented => {
                return Err(ProtocolError::ExpectedContinuation);
            }
            _ => {}
        }
        if header.rsv & RSV1 != 0 {
            match header.opcode {
                OpCode::Continuation => return Err(ProtocolError::CompressedContinuation),
                op if op.is_control() => return Err(ProtocolError::ReservedBits(header.rsv)),
                _ => {}
            }
        }
        if !header.opcode.is_control() {
            if header.opcode != OpCode::Continuation {
                self.compressed = header.rsv & RSV1 != 0;
            }
            self.message_len += header.payload_len;
            self.fragmented = !header.fin;
        } else {
            self.ctrl_len = 0;
        }
        self.state = State::Payload {
            opcode: header.opcode,
            fin: header.fin,
            remaining: header.payload_len,
        };
        Ok(())
    }

    fn finish_frame(&mut self, on: &mut impl FnMut(Incoming<'_>)) -> Result<(), ProtocolError> {
        let State::Payload { opcode, fin, .. } = self.state else {
            unreachable!("finish_frame is only called inside a frame")
        };
        self.state = State::Header;
        match opcode {
            OpCode::Text | OpCode::Binary | OpCode::Continuation => {
                if fin {
                    on(Incoming::Message {
                        len: self.message_len,
                        compressed: self.compressed,
                    });
                    self.message_len = 0;
                    self.fragmented = false;
                }
            }
            OpCode::Ping => on(Incoming::Ping(&self.ctrl[..self.ctrl_len])),
            OpCode::Pong => on(Incoming::Pong),
            // §5.5.1: "If there is a body, the first two bytes of the body MUST be a 2-byte
            // unsigned integer ... Following the 2-byte integer, the body MAY contain UTF-8-encoded
            // data": the crate's own close-payload parser checks both, and the code (§7.4).
            OpCode::Close => on(Incoming::Close(parse_close_payload(
                &self.ctrl[..self.ctrl_len],
            )?)),
        }
        Ok(())
    }
}

/// Counts messages in `--raw` mode, where the server is a plain TCP echo.
///
/// The raw echo returns the masked client frames unchanged, so they cannot be decoded as server
/// frames (§5.1 forbids masked server frames). The counting rule instead: the tool sends whole
/// frames of `frame_len` bytes, so every `frame_len` bytes that come back complete one message,
/// whatever the read boundaries. A short read leaves a remainder that the next read completes.
#[derive(Debug)]
pub struct RawCounter {
    frame_len: u64,
    partial: u64,
}

impl RawCounter {
    /// A counter for frames of `frame_len` bytes (header included).
    pub fn new(frame_len: usize) -> Self {
        assert!(frame_len > 0, "a frame has at least a 2-byte header");
        RawCounter {
            frame_len: frame_len as u64,
            partial: 0,
        }
    }

    /// Accounts for `n` more echoed bytes and returns how many messages they completed.
    pub fn feed(&mut self, n: usize) -> u64 {
        let total = self.partial + n as u64;
        self.partial = total % self.frame_len;
        total / self.frame_len
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ringcast::proto::mask::apply_mask_scalar;

    /// A server frame (unmasked) with `payload`.
    fn server_frame(fin: bool, opcode: OpCode, payload: &[u8]) -> Vec<u8> {
        let header = FrameHeader {
            fin,
            ..FrameHeader::server(opcode, payload.len() as u64)
        };
        let mut head = [0; MAX_HEADER_LEN];
        let n = header.encode(&mut head);
        let mut out = head[..n].to_vec();
        out.extend_from_slice(payload);
        out
    }

    fn events(decoder: &mut ServerFrames, bytes: &[u8]) -> Result<Vec<String>, ProtocolError> {
        let mut out = Vec::new();
        decoder.feed(bytes, |e| out.push(format!("{e:?}")))?;
        Ok(out)
    }

    #[test]
    fn a_masked_frame_is_the_rfc_example_when_given_its_key() {
        // §5.7: a single-frame masked text message containing "Hello".
        let frame = masked_frame(OpCode::Text, b"Hello", [0x37, 0xfa, 0x21, 0x3d]);
        assert_eq!(
            frame,
            [0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58]
        );
        assert_eq!(masked_frame_len(5), frame.len());
        assert_eq!(masked_frame_len(126), 4 + 4 + 126);
        assert_eq!(masked_frame_len(65536), 10 + 4 + 65536);
    }

    #[test]
    fn a_close_frame_carries_1000_masked() {
        let key = [1, 2, 3, 4];
        let mut frame = close_frame(key);
        assert_eq!(&frame[..6], &[0x88, 0x82, 1, 2, 3, 4]);
        apply_mask_scalar(&mut frame[6..], key, 0);
        assert_eq!(&frame[6..], &1000u16.to_be_bytes());
    }

    #[test]
    fn a_pong_echoes_the_ping_payload_masked() {
        let key = [9, 8, 7, 6];
        let mut out = [0; MAX_HEADER_LEN + 125];
        let n = pong_frame(b"abc", key, &mut out);
        assert_eq!(n, 9);
        assert_eq!(&out[..6], &[0x8A, 0x83, 9, 8, 7, 6]);
        apply_mask_scalar(&mut out[6..9], key, 0);
        assert_eq!(&out[6..9], b"abc");
    }

    #[test]
    fn a_burst_slice_continues_mid_frame_and_never_exceeds_what_is_owed() {
        let frame = masked_frame(OpCode::Binary, &[7; 10], [1, 2, 3, 4]);
        let len = frame.len();
        let burst = Burst::new(&frame, 3);
        assert_eq!(
            burst.next(0, 3 * len),
            [&frame[..], &frame[..], &frame[..]].concat()
        );
        // 5 bytes of the current frame already sent, the rest of it plus two more owed.
        let owed = 3 * len - 5;
        assert_eq!(
            burst.next(5, owed),
            [&frame[5..], &frame[..], &frame[..]].concat()
        );
        assert_eq!(burst.next(len as u64 * 7 + 2, 4), &frame[2..6]);
    }

    #[test]
    fn a_cycle_of_frames_goes_out_in_order_from_any_position() {
        let frames: Vec<Vec<u8>> = (0..3u8)
            .map(|i| masked_frame(OpCode::Text, &[b'a' + i; 5], [1, 2, 3, 4]))
            .collect();
        let len = frames[0].len();
        let burst = Burst::cycle(&frames, 4);
        assert_eq!(
            burst.next(0, 4 * len),
            frames
                .concat()
                .iter()
                .chain(&frames[0])
                .copied()
                .collect::<Vec<_>>()
        );
        // Two frames and 3 bytes sent: the rest of frames[2], then frames[0..3] again.
        let sent = 2 * len as u64 + 3;
        let expected = [&frames[2][3..], &frames[0], &frames[1], &frames[2]].concat();
        assert_eq!(burst.next(sent, expected.len()), expected);
        // Far along the stream: the position in the cycle is all that matters.
        assert_eq!(
            burst.next(sent + 300 * len as u64, expected.len()),
            expected
        );
    }

    #[test]
    fn rsv1_marks_a_compressed_message_only_once_negotiated() {
        let mut first = server_frame(false, OpCode::Text, b"ab");
        first[0] |= 0x40;
        let mut wire = first.clone();
        wire.extend(server_frame(true, OpCode::Continuation, b"c"));
        wire.extend(server_frame(true, OpCode::Text, b"plain"));
        assert_eq!(
            events(&mut ServerFrames::new(1000), &wire),
            Err(ProtocolError::ReservedBits(0b100)),
            "not negotiated"
        );
        let mut decoder = ServerFrames::new(1000);
        decoder.allow_compression();
        assert_eq!(
            events(&mut decoder, &wire).unwrap(),
            [
                "Message { len: 3, compressed: true }",
                "Message { len: 5, compressed: false }"
            ]
        );
        // §6.1: never on a continuation or a control frame.
        let mut cont = server_frame(true, OpCode::Continuation, b"c");
        cont[0] |= 0x40;
        let mut decoder = ServerFrames::new(1000);
        decoder.allow_compression();
        assert_eq!(
            events(&mut decoder, &[first.clone(), cont].concat()),
            Err(ProtocolError::CompressedContinuation)
        );
        let mut ping = server_frame(true, OpCode::Ping, b"");
        ping[0] |= 0x40;
        let mut decoder = ServerFrames::new(1000);
        decoder.allow_compression();
        assert_eq!(
            events(&mut decoder, &ping),
            Err(ProtocolError::ReservedBits(0b100))
        );
    }

    #[test]
    fn messages_split_at_every_byte_decode_the_same() {
        let mut wire = server_frame(true, OpCode::Binary, &[1; 300]);
        wire.extend(server_frame(true, OpCode::Ping, b"hi"));
        wire.extend(server_frame(false, OpCode::Text, b"ab"));
        wire.extend(server_frame(true, OpCode::Pong, b""));
        wire.extend(server_frame(true, OpCode::Continuation, b"cde"));
        wire.extend(server_frame(true, OpCode::Close, &1001u16.to_be_bytes()));
        let expected = vec![
            "Message { len: 300, compressed: false }",
            "Ping([104, 105])",
            "Pong",
            "Message { len: 5, compressed: false }",
            r#"Close(CloseFrame { code: Some(1001), reason: "" })"#,
        ];
        assert_eq!(
            events(&mut ServerFrames::new(1000), &wire).unwrap(),
            expected
        );
        for cut in 0..wire.len() {
            let mut decoder = ServerFrames::new(1000);
            let mut got = events(&mut decoder, &wire[..cut]).unwrap();
            got.extend(events(&mut decoder, &wire[cut..]).unwrap());
            assert_eq!(got, expected, "cut at {cut}");
        }
    }

    #[test]
    fn byte_by_byte_feeding_decodes_a_64_bit_length_header() {
        let wire = server_frame(true, OpCode::Binary, &vec![0; 70_000]);
        let mut decoder = ServerFrames::new(100_000);
        let mut got = Vec::new();
        for b in &wire {
            got.extend(events(&mut decoder, std::slice::from_ref(b)).unwrap());
        }
        assert_eq!(got, ["Message { len: 70000, compressed: false }"]);
    }

    #[test]
    fn a_masked_server_frame_fails_the_connection() {
        let frame = masked_frame(OpCode::Binary, b"x", [1, 2, 3, 4]);
        assert_eq!(
            events(&mut ServerFrames::new(1000), &frame),
            Err(ProtocolError::MaskedFrame)
        );
    }

    #[test]
    fn a_frame_over_the_limit_fails_before_its_payload_arrives() {
        let wire = server_frame(true, OpCode::Binary, &[0; 2000]);
        assert_eq!(
            events(&mut ServerFrames::new(1000), &wire[..4]),
            Err(ProtocolError::FrameTooBig)
        );
    }

    #[test]
    fn a_continuation_without_a_message_fails_with_unexpected_continuation() {
        let wire = server_frame(true, OpCode::Continuation, b"x");
        assert_eq!(
            events(&mut ServerFrames::new(1000), &wire),
            Err(ProtocolError::UnexpectedContinuation)
        );
    }

    #[test]
    fn a_new_message_inside_a_fragmented_one_fails_with_expected_continuation() {
        let mut wire = server_frame(false, OpCode::Text, b"a");
        wire.extend(server_frame(true, OpCode::Binary, b"b"));
        assert_eq!(
            events(&mut ServerFrames::new(1000), &wire),
            Err(ProtocolError::ExpectedContinuation)
        );
    }

    #[test]
    fn a_close_frame_with_one_byte_fails_and_an_empty_one_has_no_code() {
        let wire = server_frame(true, OpCode::Close, &[3]);
        assert_eq!(
            events(&mut ServerFrames::new(1000), &wire),
            Err(ProtocolError::CloseOneByte)
        );
        let wire = server_frame(true, OpCode::Close, &[]);
        assert_eq!(
            events(&mut ServerFrames::new(1000), &wire).unwrap(),
            [r#"Close(CloseFrame { code: None, reason: "" })"#]
        );
    }

    #[test]
    fn a_close_frame_carries_its_reason_and_a_bad_one_fails() {
        let mut body = 1008u16.to_be_bytes().to_vec();
        body.extend_from_slice(b"slow consumer");
        let wire = server_frame(true, OpCode::Close, &body);
        assert_eq!(
            events(&mut ServerFrames::new(1000), &wire).unwrap(),
            [r#"Close(CloseFrame { code: Some(1008), reason: "slow consumer" })"#]
        );
        let mut body = 1000u16.to_be_bytes().to_vec();
        body.extend_from_slice(&[0xC3, 0x28]);
        let wire = server_frame(true, OpCode::Close, &body);
        assert_eq!(
            events(&mut ServerFrames::new(1000), &wire),
            Err(ProtocolError::InvalidCloseReason)
        );
    }

    #[test]
    fn raw_counting_completes_one_message_per_frame_length_across_reads() {
        let mut raw = RawCounter::new(10);
        assert_eq!(raw.feed(7), 0);
        assert_eq!(raw.feed(3), 1);
        assert_eq!(raw.feed(25), 2);
        assert_eq!(raw.feed(5), 1);
        assert_eq!(raw.feed(0), 0);
    }
}
