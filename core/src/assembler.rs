//! Message assembly (RFC 6455 §5.4): which data frame starts, continues or ends a message, the
//! message size limit, and UTF-8 validation of text across frames and partial frames.
//!
//! Owns the message in progress: its kind, the fragments received so far, and the running UTF-8
//! state. Never sees frame headers' bytes or masks, never reads from a socket, and never buffers an
//! unfragmented message: such a frame is [`Route::Whole`] and its payload stays in the caller's
//! read buffer until it is split off whole. Only fragments are copied, into one buffer reserved per
//! fragment with the fragment's declared length, after the size limit has been checked, so the
//! excess of an oversized message is never buffered.

use bytes::BytesMut;

use super::error::ProtocolError;
use super::frame::{FrameHeader, RSV1};
use super::opcode::OpCode;
use super::utf8::Utf8Validator;

/// The type of a data message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MessageKind {
    /// Opcode `%x1`: the payload is UTF-8 text (validated before it is delivered).
    Text,
    /// Opcode `%x2`: arbitrary bytes.
    Binary,
}

impl MessageKind {
    /// The opcode of the first frame of such a message.
    #[inline]
    pub fn opcode(self) -> OpCode {
        match self {
            MessageKind::Text => OpCode::Text,
            MessageKind::Binary => OpCode::Binary,
        }
    }
}

/// Where a data frame's payload goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route {
    /// An unfragmented message (FIN set, not a continuation): the payload is split off the read
    /// buffer as the message, never copied.
    Whole(MessageKind),
    /// A fragment of a message: its payload is appended with [`Assembler::push_fragment`].
    Fragment,
}

/// The message in progress on one connection.
#[derive(Debug)]
pub struct Assembler {
    /// The configured message limit (`ConnLimits::max_message_len`).
    max_message_len: usize,
    /// The kind of the fragmented message in progress, if any.
    ///
    /// Invariant: `None` ⇒ `fragments` is empty.
    fragmented: Option<MessageKind>,
    /// The fragments received so far, unmasked. Its length is the message size so far and never
    /// exceeds `max_message_len`.
    fragments: BytesMut,
    /// Whether the current message (whole frame or fragmented) is text and must be validated.
    /// `false` while the message is compressed: its text is validated once inflated.
    text: bool,
    /// The current message had RSV1 on its first frame (RFC 7692 "Per-Message Compressed"): its
    /// payload is DEFLATE data, to be inflated once complete. Only set when the connection
    /// negotiated the extension (the header decoder refuses RSV1 otherwise).
    compressed: bool,
    /// UTF-8 state of the current text message, across frames and across partial frames.
    utf8: Utf8Validator,
}

impl Assembler {
    /// An assembler with no message in progress.
    pub fn new(max_message_len: usize) -> Self {
        Assembler {
            max_message_len,
            fragmented: None,
            fragments: BytesMut::new(),
            text: false,
            compressed: false,
            utf8: Utf8Validator::new(),
        }
    }

    /// `true` while a fragmented message is open (its final fragment has not arrived).
    pub fn in_progress(&self) -> bool {
        self.fragmented.is_some()
    }

    /// Whether the message in progress (or just completed) is compressed (RSV1 on its first frame).
    pub fn compressed(&self) -> bool {
        self.compressed
    }

    /// Bytes currently reserved for fragments (memory accounting; bounded by the message limit).
    pub fn reserved(&self) -> usize {
        self.fragments.capacity()
    }

    /// Checks a data frame's header against the fragmentation rules and the message limit, and
    /// reserves room for a fragment's payload. Call once per data frame, before its payload.
    ///
    /// Nothing is reserved when this fails, and at most the frame's declared length (within the
    /// limit) when it succeeds.
    pub fn begin_frame(&mut self, header: &FrameHeader) -> Result<Route, ProtocolError> {
        debug_assert!(!header.opcode.is_control());
        let kind = match (header.opcode, self.fragmented) {
            // §5.4: "a single message MUST NOT be interleaved"; a continuation continues the
            // open message only.
            (OpCode::Continuation, None) => return Err(ProtocolError::UnexpectedContinuation),
            (OpCode::Text | OpCode::Binary, Some(_)) => {
                return Err(ProtocolError::ExpectedContinuation)
            }
            // RFC 7692 §6.1: the "Per-Message Compressed" bit belongs to the first frame only.
            (OpCode::Continuation, Some(_)) if header.rsv & RSV1 != 0 => {
                return Err(ProtocolError::CompressedContinuation)
            }
            (OpCode::Continuation, Some(kind)) => kind,
            (OpCode::Text, None) => MessageKind::Text,
            (OpCode::Binary, None) => MessageKind::Binary,
            (_, _) => unreachable!("control frames are not routed through the assembler"),
        };
        // Checked on the declared length, before a byte of payload is buffered or reserved.
        let so_far = self.fragments.len() as u64;
        if so_far + header.payload_len > self.max_message_len as u64 {
            return Err(ProtocolError::MessageTooBig);
        }
        // Fits in usize: bounded by max_message_len.
        let len = header.payload_len as usize;
        if self.fragmented.is_none() {
            self.compressed = header.rsv & RSV1 != 0;
            self.text = kind == MessageKind::Text && !self.compressed;
            self.utf8.reset();
            if header.fin {
                return Ok(Route::Whole(kind));
            }
            self.fragmented = Some(kind);
        }
        self.fragments.reserve(len);
        Ok(Route::Fragment)
    }

    /// Validates the next (unmasked) piece of the current message's text, if it is text. Used for
    /// [`Route::Whole`] payloads as they arrive; fails as soon as the text cannot be valid.
    #[inline]
    pub fn check_text(&mut self, piece: &[u8]) -> Result<(), ProtocolError> {
        if self.text {
            self.utf8.feed(piece)?;
        }
        Ok(())
    }

    /// Ends a [`Route::Whole`] message: fails if its text ends inside a code point.
    #[inline]
    pub fn finish_whole(&mut self) -> Result<(), ProtocolError> {
        if self.text {
            self.utf8.finish()?;
        }
        Ok(())
    }

    /// Validates and appends the next (unmasked) piece of a fragment. The total stays within the
    /// reservation made by [`Assembler::begin_frame`], so this does not allocate.
    pub fn push_fragment(&mut self, piece: &[u8]) -> Result<(), ProtocolError> {
        debug_assert!(self.fragmented.is_some());
        self.check_text(piece)?;
        self.fragments.extend_from_slice(piece);
        Ok(())
    }

    /// Ends a fragment. When it was the final one (`fin`), hands back the whole message.
    pub fn end_fragment(
        &mut self,
        fin: bool,
    ) -> Result<Option<(MessageKind, BytesMut)>, ProtocolError> {
        if !fin {
            return Ok(None);
        }
        let kind = self
            .fragmented
            .take()
            .expect("a fragment ends only inside a fragmented message");
        let message = self.fragments.split();
        self.finish_whole()?;
        Ok(Some((kind, message)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(fin: bool, opcode: OpCode, len: u64) -> FrameHeader {
        FrameHeader {
            fin,
            rsv: 0,
            opcode,
            mask: None,
            payload_len: len,
        }
    }

    #[test]
    fn a_final_text_frame_is_a_whole_message() {
        let mut a = Assembler::new(100);
        assert_eq!(
            a.begin_frame(&header(true, OpCode::Text, 5)),
            Ok(Route::Whole(MessageKind::Text))
        );
        assert!(!a.in_progress());
        assert_eq!(a.check_text(b"hello"), Ok(()));
        assert_eq!(a.finish_whole(), Ok(()));
    }

    #[test]
    fn a_continuation_with_nothing_to_continue_fails_with_1002() {
        let mut a = Assembler::new(100);
        for fin in [true, false] {
            let err = a
                .begin_frame(&header(fin, OpCode::Continuation, 1))
                .unwrap_err();
            assert_eq!(err, ProtocolError::UnexpectedContinuation);
            assert_eq!(err.close_code(), 1002);
        }
    }

    #[test]
    fn a_new_data_frame_inside_a_fragmented_message_fails_with_1002() {
        for op in [OpCode::Text, OpCode::Binary] {
            let mut a = Assembler::new(100);
            assert_eq!(
                a.begin_frame(&header(false, OpCode::Binary, 1)),
                Ok(Route::Fragment)
            );
            assert_eq!(
                a.begin_frame(&header(true, op, 1)),
                Err(ProtocolError::ExpectedContinuation)
            );
        }
    }

    #[test]
    fn fragments_are_assembled_in_order() {
        let mut a = Assembler::new(100);
        assert_eq!(
            a.begin_frame(&header(false, OpCode::Text, 3)),
            Ok(Route::Fragment)
        );
        a.push_fragment(b"fra").unwrap();
        assert_eq!(a.end_fragment(false), Ok(None));
        assert_eq!(
            a.begin_frame(&header(false, OpCode::Continuation, 0)),
            Ok(Route::Fragment)
        );
        assert_eq!(a.end_fragment(false), Ok(None));
        a.begin_frame(&header(true, OpCode::Continuation, 4))
            .unwrap();
        a.push_fragment(b"gmen").unwrap();
        let (kind, msg) = a.end_fragment(true).unwrap().unwrap();
        assert_eq!(kind, MessageKind::Text);
        assert_eq!(&msg[..], b"fragmen");
        assert!(!a.in_progress());
    }

    #[test]
    fn the_message_limit_counts_every_fragment_and_reserves_nothing_when_exceeded() {
        let mut a = Assembler::new(10);
        assert_eq!(
            a.begin_frame(&header(true, OpCode::Binary, 11)),
            Err(ProtocolError::MessageTooBig)
        );
        a.begin_frame(&header(false, OpCode::Binary, 6)).unwrap();
        a.push_fragment(b"123456").unwrap();
        a.end_fragment(false).unwrap();
        let cap = a.fragments.capacity();
        let err = a
            .begin_frame(&header(true, OpCode::Continuation, 5))
            .unwrap_err();
        assert_eq!(err, ProtocolError::MessageTooBig);
        assert_eq!(err.close_code(), 1009);
        assert_eq!(a.fragments.capacity(), cap);
        // Exactly at the limit is fine.
        assert_eq!(
            a.begin_frame(&header(true, OpCode::Continuation, 4)),
            Ok(Route::Fragment)
        );
    }

    #[test]
    fn a_declared_length_of_2_pow_62_fails_before_any_reservation() {
        let mut a = Assembler::new(16 << 20);
        assert_eq!(
            a.begin_frame(&header(false, OpCode::Binary, 1 << 62)),
            Err(ProtocolError::MessageTooBig)
        );
        assert_eq!(a.fragments.capacity(), 0);
    }

    #[test]
    fn text_split_across_fragments_inside_a_code_point_is_valid() {
        let mut a = Assembler::new(100);
        let euro = "€".as_bytes();
        a.begin_frame(&header(false, OpCode::Text, 1)).unwrap();
        a.push_fragment(&euro[..1]).unwrap();
        a.end_fragment(false).unwrap();
        a.begin_frame(&header(true, OpCode::Continuation, 2))
            .unwrap();
        a.push_fragment(&euro[1..]).unwrap();
        let (_, msg) = a.end_fragment(true).unwrap().unwrap();
        assert_eq!(&msg[..], euro);
    }

    #[test]
    fn invalid_text_in_a_fragment_fails_with_1007_before_the_message_ends() {
        let mut a = Assembler::new(100);
        a.begin_frame(&header(false, OpCode::Text, 3)).unwrap();
        assert_eq!(a.push_fragment(b"ok\xF4"), Ok(()));
        a.end_fragment(false).unwrap();
        a.begin_frame(&header(false, OpCode::Continuation, 1))
            .unwrap();
        let err = a.push_fragment(b"\x90").unwrap_err();
        assert_eq!(err, ProtocolError::InvalidUtf8);
        assert_eq!(err.close_code(), 1007);
    }

    #[test]
    fn text_ending_inside_a_code_point_fails_at_the_final_fragment() {
        let mut a = Assembler::new(100);
        a.begin_frame(&header(false, OpCode::Text, 1)).unwrap();
        a.push_fragment(b"\xE2").unwrap();
        a.end_fragment(false).unwrap();
        a.begin_frame(&header(true, OpCode::Continuation, 0))
            .unwrap();
        assert_eq!(a.end_fragment(true), Err(ProtocolError::InvalidUtf8));
    }

    #[test]
    fn binary_is_never_validated() {
        let mut a = Assembler::new(100);
        assert_eq!(
            a.begin_frame(&header(true, OpCode::Binary, 2)),
            Ok(Route::Whole(MessageKind::Binary))
        );
        assert_eq!(a.check_text(b"\xFF\xFE"), Ok(()));
        assert_eq!(a.finish_whole(), Ok(()));
    }
}
