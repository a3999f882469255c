//! Frame opcodes (RFC 6455 §5.2, §11.8).
//!
//! Owns the mapping between the 4-bit wire value and [`OpCode`]. Never accepts a reserved value:
//! `%x3-7` and `%xB-F` are "reserved for further (non-)control frames" and have no variant here.

/// A defined WebSocket opcode.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum OpCode {
    /// `%x0` continuation frame.
    Continuation = 0x0,
    /// `%x1` text frame.
    Text = 0x1,
    /// `%x2` binary frame.
    Binary = 0x2,
    /// `%x8` connection close.
    Close = 0x8,
    /// `%x9` ping.
    Ping = 0x9,
    /// `%xA` pong.
    Pong = 0xA,
}

impl OpCode {
    /// Decodes the low nibble of the first header byte; `None` for a reserved opcode.
    #[inline]
    pub fn from_wire(nibble: u8) -> Option<OpCode> {
        match nibble & 0x0F {
            0x0 => Some(OpCode::Continuation),
            0x1 => Some(OpCode::Text),
            0x2 => Some(OpCode::Binary),
            0x8 => Some(OpCode::Close),
            0x9 => Some(OpCode::Ping),
            0xA => Some(OpCode::Pong),
            _ => None,
        }
    }

    /// The 4-bit wire value.
    #[inline]
    pub fn to_wire(self) -> u8 {
        self as u8
    }

    /// "Control frames are identified by opcodes where the most significant bit of the opcode is 1."
    #[inline]
    pub fn is_control(self) -> bool {
        (self as u8) & 0x8 != 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_nibble_maps_to_a_defined_opcode_or_none() {
        for n in 0u8..16 {
            match OpCode::from_wire(n) {
                Some(op) => assert_eq!(op.to_wire(), n),
                None => assert!((0x3..=0x7).contains(&n) || (0xB..=0xF).contains(&n)),
            }
        }
    }

    #[test]
    fn control_opcodes_have_the_high_bit() {
        assert!(OpCode::Close.is_control());
        assert!(OpCode::Ping.is_control());
        assert!(OpCode::Pong.is_control());
        assert!(!OpCode::Text.is_control());
        assert!(!OpCode::Binary.is_control());
        assert!(!OpCode::Continuation.is_control());
    }
}
