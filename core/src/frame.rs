//! Frame header codec (RFC 6455 §5.2), sans-IO.
//!
//! Owns: decoding a header from the front of a byte slice and encoding one into a small stack
//! array. Never touches the payload (unmasking lives in [`super::mask`]), never allocates, and
//! consumes nothing when it needs more bytes: [`HeaderStatus::Partial`] says how many bytes the
//! header needs in total, so the caller reads more and calls again.
//!
//! Every limit is checked as soon as the bytes that carry it have arrived, before the caller could
//! reserve memory for a payload.
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-------+-+-------------+-------------------------------+
//! |F|R|R|R| opcode|M| Payload len |    Extended payload length    |
//! |I|S|S|S|  (4)  |A|     (7)     |             (16/64)           |
//! |N|V|V|V|       |S|             |   (if payload len==126/127)   |
//! | |1|2|3|       |K|             |                               |
//! +-+-+-+-+-------+-+-------------+ - - - - - - - - - - - - - - - +
//! ```

use super::error::ProtocolError;
use super::opcode::OpCode;

/// The longest possible header: 2 + 8 (64-bit length) + 4 (masking key).
pub const MAX_HEADER_LEN: usize = 14;

/// The largest payload a control frame may carry (§5.5: "125 bytes or less").
pub const MAX_CONTROL_PAYLOAD: u64 = 125;

/// RSV1, as it sits in [`FrameHeader::rsv`] (`0b100`).
pub const RSV1: u8 = 0b100;

/// A decoded frame header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameHeader {
    /// FIN: this is the final fragment of a message.
    pub fin: bool,
    /// RSV1..RSV3 as `0b(rsv1)(rsv2)(rsv3)`.
    pub rsv: u8,
    /// The frame's opcode.
    pub opcode: OpCode,
    /// The masking key, when the MASK bit is set.
    pub mask: Option<[u8; 4]>,
    /// The declared payload length.
    pub payload_len: u64,
}

/// What the decoder enforces on each header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DecodeLimits {
    /// Largest payload a single frame may declare; larger → [`ProtocolError::FrameTooBig`].
    pub max_frame_len: u64,
    /// RSV bits a negotiated extension has defined (`0` with no extension).
    pub allowed_rsv: u8,
    /// `true` on a server (client frames MUST be masked), `false` on a client (server frames MUST
    /// NOT be masked).
    pub expect_masked: bool,
}

impl DecodeLimits {
    /// Limits for a server reading client frames, with no extension.
    pub fn server(max_frame_len: u64) -> Self {
        DecodeLimits {
            max_frame_len,
            allowed_rsv: 0,
            expect_masked: true,
        }
    }

    /// Limits for a client reading server frames, with no extension.
    pub fn client(max_frame_len: u64) -> Self {
        DecodeLimits {
            max_frame_len,
            allowed_rsv: 0,
            expect_masked: false,
        }
    }
}

/// The outcome of [`decode_header`] when the bytes seen so far break no rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HeaderStatus {
    /// A whole header: `header_len` bytes of the input belong to it; the payload follows.
    Complete {
        /// The decoded header.
        header: FrameHeader,
        /// How many bytes of the input the header occupies.
        header_len: usize,
    },
    /// More bytes are needed: the header is `needed` bytes long in total (a lower bound while the
    /// length byte has not arrived). Nothing was consumed.
    Partial {
        /// The header's total length in bytes, as far as it is known yet.
        needed: usize,
    },
}

/// Decodes the frame header at the front of `buf`.
///
/// Cost: O(1), reads at most [`MAX_HEADER_LEN`] bytes. Rules are checked byte by byte, so a
/// violation is reported as soon as the byte carrying it is present, even if the header is not
/// complete yet.
pub fn decode_header(buf: &[u8], limits: &DecodeLimits) -> Result<HeaderStatus, ProtocolError> {
    let Some(&b0) = buf.first() else {
        return Ok(HeaderStatus::Partial { needed: 2 });
    };
    let fin = b0 & 0x80 != 0;
    let rsv = (b0 >> 4) & 0x07;
    // §5.2: "If a nonzero value is received and none of the negotiated extensions defines the
    // meaning of such a nonzero value, the receiving endpoint MUST _Fail the WebSocket Connection_."
    if rsv & !limits.allowed_rsv != 0 {
        return Err(ProtocolError::ReservedBits(rsv));
    }
    // §5.2: "If an unknown opcode is received, the receiving endpoint MUST _Fail the WebSocket
    // Connection_."
    let opcode = OpCode::from_wire(b0).ok_or(ProtocolError::ReservedOpcode(b0 & 0x0F))?;
    // §5.5: "All control frames ... MUST NOT be fragmented."
    if opcode.is_control() && !fin {
        return Err(ProtocolError::FragmentedControl);
    }
    // An extension's RSV bit never applies to control frames (RFC 7692 §6.1 for RSV1).
    if opcode.is_control() && rsv != 0 {
        return Err(ProtocolError::ReservedBits(rsv));
    }
    let Some(&b1) = buf.get(1) else {
        return Ok(HeaderStatus::Partial { needed: 2 });
    };
    let masked = b1 & 0x80 != 0;
    if masked != limits.expect_masked {
        return Err(if limits.expect_masked {
            ProtocolError::UnmaskedFrame
        } else {
            ProtocolError::MaskedFrame
        });
    }
    let len7 = b1 & 0x7F;
    let (ext_len, needed) = match len7 {
        126 => (2, 4),
        127 => (8, 10),
        _ => (0, 2),
    };
    // §5.5: "All control frames MUST have a payload length of 125 bytes or less".
    if opcode.is_control() && len7 > 125 {
        return Err(ProtocolError::ControlTooLong);
    }
    let needed = needed + if masked { 4 } else { 0 };
    if buf.len() < 2 + ext_len {
        return Ok(HeaderStatus::Partial { needed });
    }
    let payload_len = match ext_len {
        0 => u64::from(len7),
        2 => u64::from(u16::from_be_bytes([buf[2], buf[3]])),
        _ => {
            let mut be = [0u8; 8];
            be.copy_from_slice(&buf[2..10]);
            let len = u64::from_be_bytes(be);
            // §5.2: "the most significant bit MUST be 0".
            if len >> 63 != 0 {
                return Err(ProtocolError::LengthTopBit);
            }
            len
        }
    };
    if payload_len > limits.max_frame_len {
        return Err(ProtocolError::FrameTooBig);
    }
    if buf.len() < needed {
        return Ok(HeaderStatus::Partial { needed });
    }
    let mask = masked.then(|| {
        let at = 2 + ext_len;
        [buf[at], buf[at + 1], buf[at + 2], buf[at + 3]]
    });
    Ok(HeaderStatus::Complete {
        header: FrameHeader {
            fin,
            rsv,
            opcode,
            mask,
            payload_len,
        },
        header_len: needed,
    })
}

impl FrameHeader {
    /// A final, unmasked header with no RSV bits: what a server sends.
    pub fn server(opcode: OpCode, payload_len: u64) -> Self {
        FrameHeader {
            fin: true,
            rsv: 0,
            opcode,
            mask: None,
            payload_len,
        }
    }

    /// The number of bytes [`FrameHeader::encode`] writes.
    #[inline]
    pub fn encoded_len(&self) -> usize {
        let len = match self.payload_len {
            0..=125 => 2,
            126..=0xFFFF => 4,
            _ => 10,
        };
        len + if self.mask.is_some() { 4 } else { 0 }
    }

    /// Writes the header into `out` and returns how many bytes it used. Uses the shortest length
    /// encoding (§5.2: "the minimal number of bytes MUST be used to encode the length").
    ///
    /// The caller keeps header and payload apart and writes them as two slices.
    #[inline]
    pub fn encode(&self, out: &mut [u8; MAX_HEADER_LEN]) -> usize {
        debug_assert!(
            self.payload_len >> 63 == 0,
            "payload length must fit in 63 bits"
        );
        out[0] = (u8::from(self.fin) << 7) | ((self.rsv & 0x07) << 4) | self.opcode.to_wire();
        let mask_bit = if self.mask.is_some() { 0x80 } else { 0 };
        let mut at = match self.payload_len {
            len @ 0..=125 => {
                out[1] = mask_bit | len as u8;
                2
            }
            len @ 126..=0xFFFF => {
                out[1] = mask_bit | 126;
                out[2..4].copy_from_slice(&(len as u16).to_be_bytes());
                4
            }
            len => {
                out[1] = mask_bit | 127;
                out[2..10].copy_from_slice(&len.to_be_bytes());
                10
            }
        };
        if let Some(key) = self.mask {
            out[at..at + 4].copy_from_slice(&key);
            at += 4;
        }
        at
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BIG: u64 = 1 << 40;

    fn server() -> DecodeLimits {
        DecodeLimits::server(BIG)
    }

    fn encode(h: FrameHeader) -> Vec<u8> {
        let mut out = [0u8; MAX_HEADER_LEN];
        let n = h.encode(&mut out);
        assert_eq!(n, h.encoded_len());
        out[..n].to_vec()
    }

    #[test]
    fn rfc_example_single_frame_unmasked_text() {
        // §5.7: 0x81 0x05 0x48 0x65 0x6c 0x6c 0x6f (contains "Hello")
        let wire = [0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f];
        let got = decode_header(&wire, &DecodeLimits::client(BIG)).unwrap();
        assert_eq!(
            got,
            HeaderStatus::Complete {
                header: FrameHeader::server(OpCode::Text, 5),
                header_len: 2
            }
        );
        assert_eq!(encode(FrameHeader::server(OpCode::Text, 5)), wire[..2]);
    }

    #[test]
    fn rfc_example_single_frame_masked_text() {
        // §5.7: 0x81 0x85 0x37 0xfa 0x21 0x3d 0x7f 0x9f 0x4d 0x51 0x58 (contains "Hello")
        let wire = [
            0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
        ];
        let HeaderStatus::Complete { header, header_len } =
            decode_header(&wire, &server()).unwrap()
        else {
            panic!("complete header expected")
        };
        assert_eq!(header_len, 6);
        assert_eq!(header.mask, Some([0x37, 0xfa, 0x21, 0x3d]));
        assert_eq!(header.payload_len, 5);
        assert_eq!(encode(header), wire[..6]);
    }

    #[test]
    fn rfc_example_256_bytes_and_64_kib_binary() {
        // §5.7: 0x82 0x7E 0x0100 [256 bytes], 0x82 0x7F 0x0000000000010000 [65536 bytes]
        assert_eq!(
            encode(FrameHeader::server(OpCode::Binary, 256)),
            [0x82, 0x7E, 0x01, 0x00]
        );
        assert_eq!(
            encode(FrameHeader::server(OpCode::Binary, 65536)),
            [0x82, 0x7F, 0, 0, 0, 0, 0, 1, 0, 0]
        );
    }

    #[test]
    fn edge_lengths_use_the_minimal_encoding_and_round_trip() {
        for (len, header_len) in [
            (0u64, 2usize),
            (125, 2),
            (126, 4),
            (65535, 4),
            (65536, 10),
            (u64::MAX >> 1, 10),
        ] {
            for mask in [None, Some([1, 2, 3, 4])] {
                let h = FrameHeader {
                    fin: true,
                    rsv: 0,
                    opcode: OpCode::Binary,
                    mask,
                    payload_len: len,
                };
                let wire = encode(h);
                assert_eq!(wire.len(), header_len + if mask.is_some() { 4 } else { 0 });
                let limits = DecodeLimits {
                    max_frame_len: u64::MAX,
                    allowed_rsv: 0,
                    expect_masked: mask.is_some(),
                };
                assert_eq!(
                    decode_header(&wire, &limits).unwrap(),
                    HeaderStatus::Complete {
                        header: h,
                        header_len: wire.len()
                    }
                );
            }
        }
    }

    #[test]
    fn a_header_split_at_every_byte_is_partial_until_complete_and_consumes_nothing() {
        let h = FrameHeader {
            fin: false,
            rsv: 0,
            opcode: OpCode::Text,
            mask: Some([9, 8, 7, 6]),
            payload_len: 70_000,
        };
        let wire = encode(h);
        for cut in 0..wire.len() {
            match decode_header(&wire[..cut], &server()).unwrap() {
                HeaderStatus::Partial { needed } => assert!(needed > cut && needed <= wire.len()),
                other => panic!("cut {cut}: {other:?}"),
            }
        }
        assert!(matches!(
            decode_header(&wire, &server()).unwrap(),
            HeaderStatus::Complete { .. }
        ));
    }

    #[test]
    fn reserved_opcodes_fail_on_the_first_byte() {
        for op in (0x3..=0x7).chain(0xB..=0xF) {
            assert_eq!(
                decode_header(&[0x80 | op], &server()),
                Err(ProtocolError::ReservedOpcode(op))
            );
        }
    }

    #[test]
    fn rsv_bits_fail_unless_an_extension_allows_them() {
        for rsv in 1u8..8 {
            let b0 = 0x81 | (rsv << 4);
            assert_eq!(
                decode_header(&[b0], &server()),
                Err(ProtocolError::ReservedBits(rsv))
            );
        }
        let with_rsv1 = DecodeLimits {
            allowed_rsv: RSV1,
            ..server()
        };
        assert!(decode_header(&[0xC1, 0x80, 0, 0, 0, 0], &with_rsv1).is_ok());
        // …but never on a control frame.
        assert_eq!(
            decode_header(&[0xC9], &with_rsv1),
            Err(ProtocolError::ReservedBits(RSV1))
        );
    }

    #[test]
    fn control_frames_must_be_final_and_short() {
        assert_eq!(
            decode_header(&[0x09], &server()),
            Err(ProtocolError::FragmentedControl)
        );
        assert_eq!(
            decode_header(&[0x89, 0x80 | 126], &server()),
            Err(ProtocolError::ControlTooLong)
        );
        assert_eq!(
            decode_header(&[0x8A, 0x80 | 127], &server()),
            Err(ProtocolError::ControlTooLong)
        );
        assert!(matches!(
            decode_header(&[0x89, 0x80 | 125, 0, 0, 0, 0], &server()),
            Ok(HeaderStatus::Complete { .. })
        ));
    }

    #[test]
    fn masking_must_match_the_role() {
        assert_eq!(
            decode_header(&[0x81, 0x05], &server()),
            Err(ProtocolError::UnmaskedFrame)
        );
        assert_eq!(
            decode_header(&[0x81, 0x85], &DecodeLimits::client(BIG)),
            Err(ProtocolError::MaskedFrame)
        );
    }

    #[test]
    fn a_64_bit_length_with_the_top_bit_fails_before_anything_is_reserved() {
        let wire = [0x82, 0xFF, 0x80, 0, 0, 0, 0, 0, 0, 0];
        assert_eq!(
            decode_header(&wire, &server()),
            Err(ProtocolError::LengthTopBit)
        );
        // The largest legal declaration is refused by the size limit, not allocated.
        let wire = [0x82, 0xFF, 0x7F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF];
        assert_eq!(
            decode_header(&wire, &server()),
            Err(ProtocolError::FrameTooBig)
        );
    }

    #[test]
    fn the_frame_limit_is_checked_as_soon_as_the_length_arrives() {
        let limits = DecodeLimits::server(1000);
        // 16-bit length 1001, masking key not yet received.
        assert_eq!(
            decode_header(&[0x82, 0xFE, 0x03, 0xE9], &limits),
            Err(ProtocolError::FrameTooBig)
        );
        assert!(matches!(
            decode_header(&[0x82, 0xFE, 0x03, 0xE8], &limits),
            Ok(HeaderStatus::Partial { needed: 8 })
        ));
    }
}
