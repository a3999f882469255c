//! Protocol violations after the handshake, one variant each, and the close code and reason each
//! one earns (RFC 6455 §7.4.1).
//!
//! Owns the mapping violation → (close code, reason). Never formats on the hot path: reasons are
//! `&'static str` and fit in a control frame (≤ 123 bytes).

use std::fmt;

/// 1000: "a normal closure, meaning that the purpose for which the connection was established has
/// been fulfilled".
pub const CLOSE_NORMAL: u16 = 1000;
/// 1001: "an endpoint is "going away", such as a server going down". Sent on shutdown and after
/// an idle timeout.
pub const CLOSE_GOING_AWAY: u16 = 1001;
/// 1006: "a reserved value and MUST NOT be set as a status code in a Close control frame by an
/// endpoint". Recorded (metrics, logs) for a connection that ended without a closing handshake;
/// never sent.
pub const CLOSE_ABNORMAL: u16 = 1006;
/// 1002: "an endpoint is terminating the connection due to a protocol error".
pub const CLOSE_PROTOCOL_ERROR: u16 = 1002;
/// 1007: "data within a message that was not consistent with the type of the message".
pub const CLOSE_INVALID_PAYLOAD: u16 = 1007;
/// 1008: "a message that violates its policy".
pub const CLOSE_POLICY_VIOLATION: u16 = 1008;
/// 1009: "a message that is too big for it to process".
pub const CLOSE_MESSAGE_TOO_BIG: u16 = 1009;

/// 4001 (RFC 6455 §7.4.2: "Status codes in the range 4000-4999 are reserved for private use"):
/// the connection's token expired without a `refresh`.
pub const CLOSE_TOKEN_EXPIRED: u16 = 4001;

/// Reason sent with [`CLOSE_GOING_AWAY`] when the server drains.
pub const REASON_GOING_AWAY: &str = "going away";
/// Reason sent with [`CLOSE_GOING_AWAY`] when a connection was silent past `idle_timeout`.
pub const REASON_IDLE_TIMEOUT: &str = "idle timeout";
/// Reason recorded with [`CLOSE_ABNORMAL`].
pub const REASON_ABNORMAL: &str = "abnormal closure";
/// Reason sent with [`CLOSE_TOKEN_EXPIRED`].
pub const REASON_TOKEN_EXPIRED: &str = "token expired";
/// Reason sent with [`CLOSE_POLICY_VIOLATION`] when a connection stays over its message rate.
pub const REASON_MESSAGE_RATE: &str = "message rate exceeded";
/// Reason sent with [`CLOSE_POLICY_VIOLATION`] after `max_envelope_errors` malformed `/ws`
/// envelopes in a row.
pub const REASON_MALFORMED_ENVELOPES: &str = "too many malformed envelopes";
/// Reason sent with [`CLOSE_POLICY_VIOLATION`] when a connection's outgoing queue overflows under
/// the `close` backpressure policy.
pub const REASON_SLOW_CONSUMER: &str = "slow consumer";

/// Every way a peer can break RFC 6455 (or our limits) once the connection is open.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProtocolError {
    /// An opcode in `%x3-7` or `%xB-F`.
    ReservedOpcode(u8),
    /// RSV1-3 set without an extension that defines them (bits as `0b(rsv1)(rsv2)(rsv3)`).
    ReservedBits(u8),
    /// A client frame without the MASK bit (§5.1: "The server MUST close the connection upon
    /// receiving a frame that is not masked").
    UnmaskedFrame,
    /// A masked frame received by a client (§5.1: "A client MUST close a connection if it detects a
    /// masked frame").
    MaskedFrame,
    /// A control frame with FIN clear (§5.5: "Control frames ... MUST NOT be fragmented").
    FragmentedControl,
    /// A control frame with a payload over 125 bytes (§5.5).
    ControlTooLong,
    /// A 64-bit length with the most significant bit set (§5.2).
    LengthTopBit,
    /// A frame whose declared payload exceeds the configured frame limit.
    FrameTooBig,
    /// A message whose total size exceeds the configured message limit.
    MessageTooBig,
    /// A continuation frame with no fragmented message to continue.
    UnexpectedContinuation,
    /// A text or binary frame while a fragmented message is still open.
    ExpectedContinuation,
    /// Text that is not UTF-8 (§8.1).
    InvalidUtf8,
    /// A close frame whose payload is exactly one byte (§5.5.1).
    CloseOneByte,
    /// A close code that may not be sent on the wire (§7.4).
    InvalidCloseCode(u16),
    /// A close reason that is not UTF-8.
    InvalidCloseReason,
    /// RSV1 ("Per-Message Compressed") on a continuation frame (RFC 7692 §6.1: "An endpoint MUST
    /// NOT set the "Per-Message Compressed" bit of control frames and non-first fragments of a
    /// data message").
    CompressedContinuation,
    /// A compressed message whose payload is not valid DEFLATE data (RFC 7692 §7.2.2).
    InvalidCompressedData,
}

impl ProtocolError {
    /// The close code we send when failing the connection for this violation.
    pub fn close_code(self) -> u16 {
        use ProtocolError::*;
        match self {
            InvalidUtf8 | InvalidCloseReason | InvalidCompressedData => CLOSE_INVALID_PAYLOAD,
            FrameTooBig | MessageTooBig => CLOSE_MESSAGE_TOO_BIG,
            ReservedOpcode(_)
            | ReservedBits(_)
            | UnmaskedFrame
            | MaskedFrame
            | FragmentedControl
            | ControlTooLong
            | LengthTopBit
            | UnexpectedContinuation
            | ExpectedContinuation
            | CloseOneByte
            | InvalidCloseCode(_)
            | CompressedContinuation => CLOSE_PROTOCOL_ERROR,
        }
    }

    /// The reason we put in the close frame: short, specific, static.
    pub fn reason(self) -> &'static str {
        use ProtocolError::*;
        match self {
            ReservedOpcode(_) => "reserved opcode",
            ReservedBits(_) => "reserved bits set without a negotiated extension",
            UnmaskedFrame => "client frame not masked",
            MaskedFrame => "server frame masked",
            FragmentedControl => "fragmented control frame",
            ControlTooLong => "control frame payload over 125 bytes",
            LengthTopBit => "64-bit payload length with the top bit set",
            FrameTooBig => "frame too big",
            MessageTooBig => "message too big",
            UnexpectedContinuation => "continuation frame without a message to continue",
            ExpectedContinuation => "new data frame inside a fragmented message",
            InvalidUtf8 => "invalid UTF-8 in text message",
            CloseOneByte => "close frame with a one-byte payload",
            InvalidCloseCode(_) => "invalid close code",
            InvalidCloseReason => "invalid UTF-8 in close reason",
            CompressedContinuation => "RSV1 set on a continuation frame",
            InvalidCompressedData => "invalid compressed data",
        }
    }
}

impl fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProtocolError::ReservedOpcode(op) => write!(f, "reserved opcode {op:#x}"),
            ProtocolError::ReservedBits(bits) => write!(f, "reserved bits {bits:#05b} set"),
            ProtocolError::InvalidCloseCode(code) => write!(f, "invalid close code {code}"),
            other => f.write_str(other.reason()),
        }
    }
}

impl std::error::Error for ProtocolError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reason_fits_in_a_close_frame() {
        use ProtocolError::*;
        let all = [
            ReservedOpcode(3),
            ReservedBits(4),
            UnmaskedFrame,
            MaskedFrame,
            FragmentedControl,
            ControlTooLong,
            LengthTopBit,
            FrameTooBig,
            MessageTooBig,
            UnexpectedContinuation,
            ExpectedContinuation,
            InvalidUtf8,
            CloseOneByte,
            InvalidCloseCode(1005),
            InvalidCloseReason,
            CompressedContinuation,
            InvalidCompressedData,
        ];
        for e in all {
            assert!(e.reason().len() <= 123, "{e:?}");
            assert!((1000..=1015).contains(&e.close_code()));
        }
    }
}
