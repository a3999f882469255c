//! Close frames (RFC 6455 §5.5.1, §7.4): parsing a peer's close payload and encoding ours.
//!
//! Owns which close codes may appear on the wire and the shape of a close payload (empty, or a
//! 2-byte big-endian code followed by a UTF-8 reason). Never allocates: a parsed reason borrows the
//! payload, an encoded payload lives in a stack array.

use super::error::ProtocolError;
use super::frame::MAX_CONTROL_PAYLOAD;

/// 1000: "a normal closure".
pub const CLOSE_NORMAL: u16 = 1000;
/// 1001: "an endpoint is going away, such as a server going down".
pub const CLOSE_GOING_AWAY: u16 = 1001;

/// The longest close reason that fits in a control frame after the 2-byte code.
pub const MAX_CLOSE_REASON: usize = MAX_CONTROL_PAYLOAD as usize - 2;

/// A close payload, parsed and validated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CloseFrame<'a> {
    /// The status code; `None` for an empty payload (reported locally as 1005, never sent).
    pub code: Option<u16>,
    /// The reason, possibly empty (always empty when `code` is `None`).
    pub reason: &'a str,
}

/// May `code` appear in a close frame on the wire?
///
/// Accepted: 1000-1003 and 1007-1011 (defined by §7.4.1) and 3000-4999 (§7.4.2: libraries,
/// frameworks, applications and private use). Refused: below 1000 ("not used"), 1004 (reserved),
/// 1005, 1006 and 1015 ("MUST NOT be set as a status code in a Close control frame by an
/// endpoint"), and 1012-2999 ("reserved for definition by this protocol"; Autobahn 7.9.x expects
/// 1012-1014 refused as well), and 5000 and above (undefined).
pub const fn is_valid_close_code(code: u16) -> bool {
    matches!(code, 1000..=1003 | 1007..=1011 | 3000..=4999)
}

/// Parses and validates the (already unmasked) payload of a close frame.
///
/// - §5.5.1: "If there is a body, the first two bytes of the body MUST be a 2-byte unsigned
///   integer (in network byte order) representing a status code": a 1-byte body fails with
///   [`ProtocolError::CloseOneByte`] (1002).
/// - A code that may not be sent fails with [`ProtocolError::InvalidCloseCode`] (1002).
/// - §5.5.1: the reason's "data is not guaranteed to be human readable" but is UTF-8-encoded
///   (§7.1.6): invalid UTF-8 fails with [`ProtocolError::InvalidCloseReason`] (1007).
pub fn parse_close_payload(payload: &[u8]) -> Result<CloseFrame<'_>, ProtocolError> {
    match payload {
        [] => Ok(CloseFrame {
            code: None,
            reason: "",
        }),
        [_] => Err(ProtocolError::CloseOneByte),
        [hi, lo, reason @ ..] => {
            let code = u16::from_be_bytes([*hi, *lo]);
            if !is_valid_close_code(code) {
                return Err(ProtocolError::InvalidCloseCode(code));
            }
            let reason = simdutf8::basic::from_utf8(reason)
                .map_err(|_| ProtocolError::InvalidCloseReason)?;
            Ok(CloseFrame {
                code: Some(code),
                reason,
            })
        }
    }
}

/// An encoded close payload: `code` then `reason`, at most 125 bytes, on the stack.
#[derive(Clone, Copy, Debug)]
pub struct ClosePayload {
    bytes: [u8; MAX_CONTROL_PAYLOAD as usize],
    len: u8,
}

impl ClosePayload {
    /// The empty payload: the reply to an empty close.
    pub const EMPTY: ClosePayload = ClosePayload {
        bytes: [0; MAX_CONTROL_PAYLOAD as usize],
        len: 0,
    };

    /// Encodes `code` and `reason`. A reason longer than [`MAX_CLOSE_REASON`] bytes is cut at the
    /// last char boundary that fits, so the payload stays valid UTF-8 and within §5.5's 125 bytes.
    pub fn new(code: u16, reason: &str) -> Self {
        let mut cut = reason.len().min(MAX_CLOSE_REASON);
        while !reason.is_char_boundary(cut) {
            cut -= 1;
        }
        let mut bytes = [0; MAX_CONTROL_PAYLOAD as usize];
        bytes[..2].copy_from_slice(&code.to_be_bytes());
        bytes[2..2 + cut].copy_from_slice(&reason.as_bytes()[..cut]);
        ClosePayload {
            bytes,
            len: (2 + cut) as u8,
        }
    }

    /// The payload bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_defined_by_the_rfc_and_the_private_ranges_are_accepted() {
        for code in [
            1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 3999, 4000, 4999,
        ] {
            assert!(is_valid_close_code(code), "{code}");
            let wire = ClosePayload::new(code, "bye");
            assert_eq!(
                parse_close_payload(wire.as_bytes()),
                Ok(CloseFrame {
                    code: Some(code),
                    reason: "bye"
                })
            );
        }
    }

    #[test]
    fn reserved_and_local_only_codes_fail_with_1002() {
        // Autobahn 7.9.x plus the range edges.
        for code in [
            0, 999, 1004, 1005, 1006, 1012, 1013, 1014, 1015, 1016, 1100, 2000, 2999, 5000, 65535,
        ] {
            assert!(!is_valid_close_code(code), "{code}");
            let err = parse_close_payload(&code.to_be_bytes()).unwrap_err();
            assert_eq!(err, ProtocolError::InvalidCloseCode(code));
            assert_eq!(err.close_code(), 1002);
        }
    }

    #[test]
    fn an_empty_close_payload_has_no_code() {
        assert_eq!(
            parse_close_payload(&[]),
            Ok(CloseFrame {
                code: None,
                reason: ""
            })
        );
    }

    #[test]
    fn a_close_payload_of_one_byte_fails_with_1002() {
        let err = parse_close_payload(&[0x03]).unwrap_err();
        assert_eq!(err, ProtocolError::CloseOneByte);
        assert_eq!(err.close_code(), 1002);
    }

    #[test]
    fn a_close_reason_that_is_not_utf8_fails_with_1007() {
        let err = parse_close_payload(&[0x03, 0xE8, 0xCE, 0xBA, 0xE1, 0xBD]).unwrap_err();
        assert_eq!(err, ProtocolError::InvalidCloseReason);
        assert_eq!(err.close_code(), 1007);
    }

    #[test]
    fn a_long_reason_is_cut_on_a_char_boundary_to_fit_125_bytes() {
        let reason = "é".repeat(100); // 200 bytes
        let p = ClosePayload::new(1000, &reason);
        assert_eq!(p.as_bytes().len(), 2 + 122);
        assert!(std::str::from_utf8(&p.as_bytes()[2..]).is_ok());
        let ascii = "x".repeat(200);
        assert_eq!(ClosePayload::new(1000, &ascii).as_bytes().len(), 125);
        assert_eq!(ClosePayload::EMPTY.as_bytes(), &[] as &[u8]);
    }
}
