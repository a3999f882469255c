//! The per-connection protocol machine (RFC 6455 §5-§7), sans-IO.
//!
//! Owns every protocol decision on an open connection: frame parsing, message assembly, replies
//! (pong, close echo), close codes and reasons, the closing handshake's states, the outgoing frame
//! queue and its backpressure limit. Bytes come in through [`Connection::handle_read`], events go
//! out through [`Connection::poll_event`], bytes to send through [`Connection::poll_transmit`].
//!
//! Never does I/O, never reads a clock (closing timeouts are the driver's), never logs per frame,
//! and never allocates per frame on the steady path:
//! - an unfragmented message's payload is split off the read buffer (`BytesMut::split_to`) and
//!   unmasked in place, never copied;
//! - outgoing headers are written into a per-connection arena ([`ARENA_CHUNK`] bytes, refilled when
//!   used up) and split off as `Bytes`, so a header costs no allocation of its own;
//! - payloads of at most [`COALESCE_MAX`] bytes are copied next to their header in the arena (one
//!   iovec instead of two); larger payloads are queued as they are, shared by reference count.
//!
//! States: `Open` → (we call [`Connection::close`], or backpressure under
//! [`BackpressurePolicy::Close`]) → `Closing` → (the peer's close arrives) → `Closed`. A close
//! received in `Open` is echoed and goes straight to `Closed`; a protocol error queues our close
//! and goes to `Closed` ("_Fail the WebSocket Connection_", §7.1.7). In `Closed` the driver flushes
//! what [`Connection::poll_transmit`] hands out and closes TCP; input is discarded.

use std::collections::VecDeque;
use std::fmt::Write as _;

use bytes::{Buf, Bytes, BytesMut};

use super::assembler::{Assembler, Route};
use super::close::{
    is_valid_close_code, parse_close_payload, ClosePayload, CLOSE_NORMAL, MAX_CLOSE_REASON,
};
use super::deflate::{Deflater, InflateError, Inflater, Negotiated, MIN_DEFLATE_WINDOW_BITS};
use super::error::{ProtocolError, CLOSE_POLICY_VIOLATION};
use super::frame::{
    decode_header, DecodeLimits, FrameHeader, HeaderStatus, MAX_CONTROL_PAYLOAD, MAX_HEADER_LEN,
    RSV1,
};
use super::mask::apply_mask;
use super::opcode::OpCode;

pub use super::assembler::MessageKind;

/// Payloads up to this many bytes are copied next to their header into one chunk.
///
/// 128 covers every control frame (≤ 125 bytes) and typical chat-sized messages. Below it, a
/// `memcpy` of the payload costs less than a second iovec in `writev` (a 16-byte descriptor, a
/// separate kernel copy loop iteration, and one more `Bytes` refcount round trip); above it the
/// copy starts to dominate and the payload is shared instead.
pub const COALESCE_MAX: usize = 128;

/// Size of one header arena block. Headers are ≤ 10 bytes (servers do not mask), coalesced frames
/// ≤ 138, so a block serves hundreds of frames before a new one is needed; a block is reclaimed
/// rather than reallocated once every `Bytes` split from it has been dropped.
pub const ARENA_CHUNK: usize = 4096;

/// The reason sent with close 1008 when the backpressure limit is hit under
/// [`BackpressurePolicy::Close`].
pub const SLOW_CONSUMER_REASON: &str = super::error::REASON_SLOW_CONSUMER;

/// What to do when a connection's outgoing bytes exceed [`ConnLimits::max_backpressure`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BackpressurePolicy {
    /// Close the connection with 1008 "slow consumer" ([`Event::SlowConsumer`]). Right when every
    /// message matters: the client reconnects and resynchronises.
    Close,
    /// Drop the data message ([`SendError::Dropped`]) and keep the connection. Right for feeds
    /// where the next update supersedes the last. Control frames are never dropped.
    DropData,
}

/// A close reason formatted on the stack (failing never allocates); what does not fit in a
/// close frame is dropped.
struct ReasonBuf {
    bytes: [u8; MAX_CLOSE_REASON],
    len: usize,
}

impl Default for ReasonBuf {
    fn default() -> Self {
        ReasonBuf {
            bytes: [0; MAX_CLOSE_REASON],
            len: 0,
        }
    }
}

impl ReasonBuf {
    fn as_str(&self) -> &str {
        // Only whole `&str`s are appended (see `write_str`), so the bytes are UTF-8.
        std::str::from_utf8(&self.bytes[..self.len]).unwrap_or_default()
    }
}

impl std::fmt::Write for ReasonBuf {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        let end = self.len + s.len();
        if end > self.bytes.len() {
            return Err(std::fmt::Error);
        }
        self.bytes[self.len..end].copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

/// Per-connection limits. All defaults are here.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConnLimits {
    /// Largest payload one incoming frame may declare. Default 16 MiB. Larger → close 1009 as soon
    /// as the length field arrives. Lower it to bound the read buffer a single frame can demand.
    pub max_frame_len: u64,
    /// Largest incoming message (sum of its fragments). Default 16 MiB. Larger → close 1009,
    /// checked on declared lengths before anything is reserved.
    pub max_message_len: usize,
    /// Outgoing bytes (queued plus handed to the driver but not yet written) above which
    /// `backpressure_policy` applies. Default 1 MiB. Raise for bursty large fan-out; memory per
    /// connection is bounded by roughly this plus one message.
    pub max_backpressure: usize,
    /// What happens above `max_backpressure`. Default [`BackpressurePolicy::Close`].
    pub backpressure_policy: BackpressurePolicy,
}

impl Default for ConnLimits {
    fn default() -> Self {
        ConnLimits {
            max_frame_len: 16 << 20,
            max_message_len: 16 << 20,
            max_backpressure: 1 << 20,
            backpressure_policy: BackpressurePolicy::Close,
        }
    }
}

/// permessage-deflate (RFC 7692) as one connection uses it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Compression {
    /// What the handshake negotiated.
    pub params: Negotiated,
    /// `Some(level)`: the connection may compress its own outgoing messages with a context of its
    /// own ([`Connection::send_deflated`], the `dedicated` mode). `None`: it only sends frames
    /// compressed elsewhere ([`Connection::send_encoded_deflated`], the `shared` mode) or plain
    /// ones.
    pub dedicated_level: Option<u32>,
}

/// Something the application or the driver should know about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// A complete data message; text has been validated as UTF-8.
    Message {
        /// Text or binary.
        kind: MessageKind,
        /// The unmasked payload.
        payload: BytesMut,
    },
    /// A ping arrived (informational: the pong is already queued while `Open`).
    Ping(Bytes),
    /// A pong arrived.
    Pong(Bytes),
    /// The peer's close frame. Our reply is already queued (in `Open`); the state is `Closed`.
    PeerClosed {
        /// The peer's code, `None` for an empty close.
        code: Option<u16>,
        /// The peer's reason (valid UTF-8, possibly empty).
        reason: Bytes,
    },
    /// We failed the connection; our close (when one was still due) is queued; state `Closed`.
    Failed(ProtocolError),
    /// The backpressure limit was hit under [`BackpressurePolicy::Close`]; close 1008 is queued.
    SlowConsumer,
}

/// The closing handshake's progress (§7).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// Messages flow both ways.
    Open,
    /// We sent a close and wait for the peer's; incoming frames are still parsed.
    Closing,
    /// Done: flush what is queued, then close TCP. Input is discarded.
    Closed,
}

/// Why an outgoing data message was not queued.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// The connection is not `Open` (§5.5.1: "After sending a Close frame, the endpoint MUST NOT
    /// send any more data frames").
    #[error("connection is not open")]
    Closed,
    /// Over the backpressure limit under [`BackpressurePolicy::DropData`]; the message was dropped.
    #[error("message dropped: peer is not reading")]
    Dropped,
    /// Over the backpressure limit under [`BackpressurePolicy::Close`]; closing with 1008.
    #[error("slow consumer: closing with 1008")]
    SlowConsumer,
}

/// A frame whose header has been consumed from the read buffer and whose payload has not (fully).
#[derive(Clone, Copy, Debug)]
struct InFrame {
    opcode: OpCode,
    fin: bool,
    mask: Option<[u8; 4]>,
    /// Declared payload length (≤ the frame and message limits, so it fits in `usize`).
    len: usize,
    /// Payload bytes already unmasked (and validated, for text). For [`Route::Whole`] they are
    /// still at the front of the read buffer; for fragments they have been moved to the assembler.
    /// Invariant: `done <= len`; bytes `..done` are never unmasked again.
    done: usize,
    /// `None` for a control frame.
    route: Option<Route>,
}

/// One WebSocket connection's protocol state (server role).
#[derive(Debug)]
pub struct Connection {
    limits: ConnLimits,
    /// Header rules derived from `limits` (server: client frames must be masked).
    decode: DecodeLimits,
    state: State,
    /// The frame being received, once its header is consumed.
    frame: Option<InFrame>,
    /// The data message being received.
    assembler: Assembler,
    /// Events not yet polled. Grows to the most events one read produces, then is reused.
    events: VecDeque<Event>,
    /// Outgoing chunks in wire order; never split inside a frame's chunks by `poll_transmit`.
    queue: VecDeque<Bytes>,
    /// Bytes in `queue` plus `pending_pong`.
    queued: usize,
    /// Bytes handed out by `poll_transmit` and not yet reported by `on_written`.
    in_flight: usize,
    /// The latest pong while over the backpressure limit (§5.5.3: an endpoint "MAY elect to send
    /// a Pong frame for only the most recently processed Ping frame"): replaced, never piled up.
    pending_pong: Option<Bytes>,
    /// Where outgoing headers (and small payloads) are written before being split off.
    arena: BytesMut,
    /// permessage-deflate, when negotiated.
    compression: Option<Compression>,
    /// The inflate context, made on the first compressed message (an idle connection that never
    /// sends one never pays for it). Kept between messages only under client context takeover.
    inflater: Option<Box<Inflater>>,
    /// The connection's own compression context (dedicated mode), made on first use.
    deflater: Option<Box<Deflater>>,
}

impl Connection {
    /// A server-side connection, `Open`, right after the handshake.
    pub fn new(limits: ConnLimits) -> Self {
        Connection::with_compression(limits, None)
    }

    /// A server-side connection that negotiated permessage-deflate (or not, with `None`). With it,
    /// RSV1 is accepted on the first frame of a data message and such messages are inflated.
    pub fn with_compression(limits: ConnLimits, compression: Option<Compression>) -> Self {
        let mut decode = DecodeLimits::server(limits.max_frame_len);
        if compression.is_some() {
            decode.allowed_rsv = RSV1;
        }
        Connection {
            limits,
            decode,
            state: State::Open,
            frame: None,
            assembler: Assembler::new(limits.max_message_len),
            events: VecDeque::new(),
            queue: VecDeque::new(),
            queued: 0,
            in_flight: 0,
            pending_pong: None,
            arena: BytesMut::new(),
            compression,
            inflater: None,
            deflater: None,
        }
    }

    /// permessage-deflate as negotiated, if it was.
    #[inline]
    pub fn compression(&self) -> Option<&Compression> {
        self.compression.as_ref()
    }

    /// Whether a frame compressed without context takeover by a compressor using a
    /// `window_bits` window may be sent here: the extension was negotiated and the client
    /// allowed us at least that window.
    pub fn accepts_deflated(&self, window_bits: u8) -> bool {
        self.compression
            .is_some_and(|c| c.params.server_max_window_bits >= window_bits)
    }

    /// The closing handshake's progress.
    #[inline]
    pub fn state(&self) -> State {
        self.state
    }

    /// The limits this connection enforces.
    #[inline]
    pub fn limits(&self) -> &ConnLimits {
        &self.limits
    }

    /// At most how many more bytes complete the frame in progress (0 between frames). A driver
    /// may reserve this much before its next read; it is bounded by `max_frame_len`.
    pub fn read_hint(&self) -> usize {
        self.frame.map_or(0, |f| f.len - f.done)
    }

    /// Consumes what it can from `buf`: complete frames, validated prefixes of a data frame in
    /// progress. Leaves an incomplete frame in place.
    ///
    /// Contract with the driver: pass the same buffer every time and only append to it. The bytes
    /// left behind belong to the frame in progress (some may already be unmasked and validated);
    /// they are never looked at twice.
    pub fn handle_read(&mut self, buf: &mut BytesMut) {
        while self.handle_read_until_message(buf) {}
    }

    /// Like [`Connection::handle_read`], but stops right after a complete data message and returns
    /// `true` (call again once the message is handled). The driver uses it so that its reply to a
    /// message goes out before anything the machine decides about the bytes behind it: a valid
    /// message followed by a violation gets its echo, then the close.
    pub fn handle_read_until_message(&mut self, buf: &mut BytesMut) -> bool {
        while self.state != State::Closed {
            if !self.step(buf) {
                return false;
            }
            if matches!(self.events.back(), Some(Event::Message { .. })) {
                return true;
            }
        }
        // §7.1.7/§5.5.1: after the closing handshake or a failure nothing more is processed;
        // data after the peer's close is ignored.
        buf.clear();
        false
    }

    /// Makes one unit of progress: a header, a piece of payload, or a whole frame. Returns
    /// `false` when it needs more bytes.
    fn step(&mut self, buf: &mut BytesMut) -> bool {
        let Some(frame) = self.frame.as_mut() else {
            return match decode_header(buf, &self.decode) {
                Err(e) => {
                    self.fail(e);
                    true
                }
                Ok(HeaderStatus::Partial { .. }) => false,
                Ok(HeaderStatus::Complete { header, header_len }) => {
                    self.begin_frame(&header);
                    if self.state != State::Closed {
                        buf.advance(header_len);
                    }
                    true
                }
            };
        };
        match frame.route {
            None => {
                if buf.len() < frame.len {
                    return false;
                }
                let mut payload = buf.split_to(frame.len);
                if let Some(key) = frame.mask {
                    apply_mask(&mut payload, key, 0);
                }
                let opcode = frame.opcode;
                self.frame = None;
                self.on_control(opcode, payload.freeze());
                true
            }
            Some(Route::Whole(kind)) => {
                let avail = buf.len().min(frame.len);
                if avail > frame.done {
                    let fresh = &mut buf[frame.done..avail];
                    if let Some(key) = frame.mask {
                        apply_mask(fresh, key, frame.done);
                    }
                    frame.done = avail;
                    // §8.1: "When an endpoint is to interpret a byte stream as UTF-8 but finds
                    // that the byte stream is not, in fact, a valid UTF-8 stream, that endpoint
                    // MUST _Fail the WebSocket Connection_." Checked on each arrived prefix.
                    if let Err(e) = self.assembler.check_text(fresh) {
                        self.fail(e);
                        return true;
                    }
                }
                if frame.done < frame.len {
                    return false;
                }
                let len = frame.len;
                self.frame = None;
                if let Err(e) = self.assembler.finish_whole() {
                    self.fail(e);
                    return true;
                }
                let payload = buf.split_to(len);
                self.deliver(kind, payload);
                true
            }
            Some(Route::Fragment) => {
                let n = buf.len().min(frame.len - frame.done);
                if let Some(key) = frame.mask {
                    apply_mask(&mut buf[..n], key, frame.done);
                }
                frame.done += n;
                let (done, fin) = (frame.done == frame.len, frame.fin);
                if let Err(e) = self.assembler.push_fragment(&buf[..n]) {
                    self.fail(e);
                    return true;
                }
                buf.advance(n);
                if !done {
                    return false;
                }
                self.frame = None;
                match self.assembler.end_fragment(fin) {
                    Err(e) => self.fail(e),
                    Ok(Some((kind, payload))) => self.deliver(kind, payload),
                    Ok(None) => {}
                }
                true
            }
        }
    }

    /// Hands a complete message to the application, inflating it first when it is compressed.
    ///
    /// RFC 7692 §7.2.2: "Append 4 octets of 0x00 0x00 0xff 0xff to the tail end of the payload of
    /// the message. Decompress the resulting data using DEFLATE." The inflated size is bounded by
    /// `max_message_len` while inflating (1009 past it); the text is validated once inflated.
    fn deliver(&mut self, kind: MessageKind, payload: BytesMut) {
        if !self.assembler.compressed() {
            self.events.push_back(Event::Message { kind, payload });
            return;
        }
        let params = self
            .compression
            .expect("RSV1 is only accepted when the extension was negotiated")
            .params;
        let inflater = self.inflater.get_or_insert_with(|| {
            Box::new(Inflater::new(
                params.client_max_window_bits,
                params.client_no_context_takeover,
            ))
        });
        let mut out = Vec::new();
        match inflater.inflate(&payload, self.limits.max_message_len, &mut out) {
            Err(InflateError::TooBig) => return self.fail(ProtocolError::MessageTooBig),
            Err(InflateError::Corrupt) => return self.fail(ProtocolError::InvalidCompressedData),
            Ok(()) => {}
        }
        // §8.1 applies to the message, i.e. to the inflated text.
        if kind == MessageKind::Text && simdutf8::basic::from_utf8(&out).is_err() {
            return self.fail(ProtocolError::InvalidUtf8);
        }
        self.events.push_back(Event::Message {
            kind,
            payload: BytesMut::from(Bytes::from(out)),
        });
    }

    /// Routes a decoded header; fails the connection on a fragmentation or size violation.
    fn begin_frame(&mut self, header: &FrameHeader) {
        let route = if header.opcode.is_control() {
            None
        } else {
            match self.assembler.begin_frame(header) {
                Ok(route) => Some(route),
                Err(e) => return self.fail(e),
            }
        };
        self.frame = Some(InFrame {
            opcode: header.opcode,
            fin: header.fin,
            mask: header.mask,
            // ≤ 125 for control frames; ≤ max_message_len (a usize) for data frames.
            len: header.payload_len as usize,
            done: 0,
            route,
        });
    }

    fn on_control(&mut self, opcode: OpCode, payload: Bytes) {
        match opcode {
            OpCode::Ping => {
                // §5.5.2: "Upon receipt of a Ping frame, an endpoint MUST send a Pong frame in
                // response ... The Pong frame sent in response to a Ping frame must have
                // identical "Application data" as found in the message body of the Ping frame."
                if self.state == State::Open {
                    self.queue_pong(&payload);
                }
                self.events.push_back(Event::Ping(payload));
            }
            OpCode::Pong => self.events.push_back(Event::Pong(payload)),
            OpCode::Close => match parse_close_payload(&payload) {
                Err(e) => self.fail(e),
                Ok(close) => {
                    if self.state == State::Open {
                        // §5.5.1: "If an endpoint receives a Close frame and did not previously
                        // send a Close frame, the endpoint MUST send a Close frame in response.
                        // ... it typically echos the status code it received."
                        let reply = match close.code {
                            Some(code) => ClosePayload::new(code, ""),
                            None => ClosePayload::EMPTY,
                        };
                        self.queue_control(OpCode::Close, reply.as_bytes());
                    }
                    // §7.1.1: the server closes TCP once the close frames are exchanged.
                    self.state = State::Closed;
                    let code = close.code;
                    let reason = if code.is_some() {
                        payload.slice(2..)
                    } else {
                        Bytes::new()
                    };
                    self.events.push_back(Event::PeerClosed { code, reason });
                }
            },
            _ => unreachable!("only control opcodes reach on_control"),
        }
    }

    /// _Fail the WebSocket Connection_ (§7.1.7): queue our close with the violation's code and
    /// reason unless we already sent one, report it, and stop reading.
    fn fail(&mut self, e: ProtocolError) {
        if self.state == State::Open {
            // A size violation names the limit it broke, so the peer learns what would fit.
            let limit = match e {
                ProtocolError::FrameTooBig => Some(self.limits.max_frame_len),
                ProtocolError::MessageTooBig => Some(self.limits.max_message_len as u64),
                _ => None,
            };
            let mut reason = ReasonBuf::default();
            let reason = match limit {
                Some(limit) => {
                    let _ = write!(reason, "{} (limit {limit} bytes)", e.reason());
                    reason.as_str()
                }
                None => e.reason(),
            };
            self.queue_control(
                OpCode::Close,
                ClosePayload::new(e.close_code(), reason).as_bytes(),
            );
        }
        self.state = State::Closed;
        self.frame = None;
        self.events.push_back(Event::Failed(e));
    }

    /// Handles the peer closing TCP without a close frame: nothing more will come.
    pub fn handle_eof(&mut self) {
        self.state = State::Closed;
        self.frame = None;
    }

    /// The next event, in the order things happened.
    #[inline]
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// Queues a data message as one final frame. The payload is not copied unless it is at most
    /// [`COALESCE_MAX`] bytes.
    pub fn send(&mut self, kind: MessageKind, payload: Bytes) -> Result<(), SendError> {
        let header = FrameHeader::server(kind.opcode(), payload.len() as u64);
        self.admit(header.encoded_len() + payload.len())?;
        self.queue_frame(header, payload);
        Ok(())
    }

    /// Queues a whole pre-encoded data frame (fan-out: encoded once, shared by reference count).
    /// The caller guarantees it is one complete, unmasked, final data frame.
    pub fn send_encoded(&mut self, frame: Bytes) -> Result<(), SendError> {
        self.admit(frame.len())?;
        self.push(frame);
        Ok(())
    }

    /// Queues a data message compressed with this connection's own context (dedicated mode), as
    /// one final frame with RSV1. Sent plain instead when the connection has no dedicated context
    /// or the client allowed a window our compressor cannot honour (8 bits).
    pub fn send_deflated(&mut self, kind: MessageKind, payload: Bytes) -> Result<(), SendError> {
        let Some((params, level)) = self
            .compression
            .and_then(|c| c.dedicated_level.map(|l| (c.params, l)))
            .filter(|(p, _)| p.server_max_window_bits >= MIN_DEFLATE_WINDOW_BITS)
        else {
            return self.send(kind, payload);
        };
        if self.state != State::Open {
            return Err(SendError::Closed);
        }
        let deflater = self.deflater.get_or_insert_with(|| {
            Box::new(Deflater::new(
                level,
                params.server_max_window_bits,
                params.server_no_context_takeover,
            ))
        });
        let frame = deflater.compress_frame(kind.opcode(), &payload);
        if let Err(e) = self.admit(frame.len()) {
            // The context has taken in a message the peer will never see: nothing sent later may
            // refer back to it.
            if let Some(deflater) = self.deflater.as_mut() {
                deflater.reset();
            }
            return Err(e);
        }
        self.push(frame);
        Ok(())
    }

    /// Queues a whole frame compressed elsewhere without context takeover (the shared
    /// compressor, fan-out). The caller checked [`Connection::accepts_deflated`]. Our own
    /// context, if any, is reset: the client's window now holds this frame's data, which our
    /// context never saw, so nothing sent later may refer back past it.
    pub fn send_encoded_deflated(&mut self, frame: Bytes) -> Result<(), SendError> {
        debug_assert!(self.compression.is_some());
        self.admit(frame.len())?;
        if let Some(deflater) = self.deflater.as_mut() {
            deflater.reset();
        }
        self.push(frame);
        Ok(())
    }

    /// Queues a ping (heartbeat) while `Open`. At most 125 bytes of `payload` are sent (§5.5).
    /// Never dropped for backpressure.
    pub fn send_ping(&mut self, payload: &[u8]) {
        if self.state == State::Open {
            let len = payload.len().min(MAX_CONTROL_PAYLOAD as usize);
            self.queue_control(OpCode::Ping, &payload[..len]);
        }
    }

    /// Starts the closing handshake (`Open` → `Closing`); a no-op in any other state.
    ///
    /// `code` must be one that may be sent ([`is_valid_close_code`]); any other is replaced by
    /// 1000 (and trips a debug assertion). The reason is cut to fit in 123 bytes.
    pub fn close(&mut self, code: u16, reason: &str) {
        debug_assert!(
            is_valid_close_code(code),
            "close code {code} may not be sent"
        );
        if self.state != State::Open {
            return;
        }
        let code = if is_valid_close_code(code) {
            code
        } else {
            CLOSE_NORMAL
        };
        self.queue_control(OpCode::Close, ClosePayload::new(code, reason).as_bytes());
        self.state = State::Closing;
    }

    /// Moves every queued chunk into `out`, in wire order, and returns how many bytes moved. The
    /// moved bytes count toward backpressure until reported by [`Connection::on_written`].
    pub fn poll_transmit(&mut self, out: &mut Vec<Bytes>) -> usize {
        let moved = self.queued;
        // A pong may go between any two frames; `queue` always starts on a frame boundary
        // because this function hands out everything at once.
        if let Some(pong) = self.pending_pong.take() {
            out.push(pong);
        }
        out.extend(self.queue.drain(..));
        self.queued = 0;
        self.in_flight += moved;
        moved
    }

    /// The driver wrote `n` bytes of what `poll_transmit` handed out.
    pub fn on_written(&mut self, n: usize) {
        debug_assert!(n <= self.in_flight, "wrote more than was handed out");
        self.in_flight -= n.min(self.in_flight);
    }

    /// Whether the machine holds nothing but its `Open` state: no frame or fragmented message in
    /// progress, no event to poll, nothing queued or in flight. An idle machine is equal to a new
    /// one, so the driver may drop it while a connection is parked and make a new one later.
    pub fn is_idle(&self) -> bool {
        self.state == State::Open
            && self.frame.is_none()
            && !self.assembler.in_progress()
            && self.events.is_empty()
            && self.queue.is_empty()
            && self.pending_pong.is_none()
            && self.queued == 0
            && self.in_flight == 0
            && self.contexts_droppable()
    }

    /// Drops each compression context whose direction negotiated no context takeover (RFC 7692
    /// §7.1.1.1, §7.1.1.2): between messages such a context holds nothing a later message
    /// depends on, only its buffers (a deflate context is hundreds of KiB), and the next message
    /// makes it afresh. A context under context takeover is kept: the peer's next message (or
    /// our next one, in the peer's view) may refer back into its window. The driver calls this
    /// when a connection parks whose machine it cannot drop (see [`Connection::is_idle`]).
    /// Between two messages only: a message being inflated holds no context yet (it is inflated
    /// once complete), so this is safe mid-fragment too.
    pub fn release_idle_contexts(&mut self) {
        let Some(c) = self.compression else {
            return;
        };
        if c.params.server_no_context_takeover {
            self.deflater = None;
        }
        if c.params.client_no_context_takeover {
            self.inflater = None;
        }
    }

    /// Whether the compression contexts hold nothing a later message depends on: they are absent,
    /// or no context takeover was negotiated for them, so a new machine may make them afresh.
    fn contexts_droppable(&self) -> bool {
        let Some(c) = self.compression else {
            return true;
        };
        (self.inflater.is_none() || c.params.client_no_context_takeover)
            && (self.deflater.is_none() || c.params.server_no_context_takeover)
    }

    /// Outgoing bytes not yet written: queued, plus handed out but not reported written.
    #[inline]
    pub fn buffered_bytes(&self) -> usize {
        self.queued + self.in_flight
    }

    /// Applies the backpressure policy to a data frame of `frame_len` bytes.
    ///
    /// Over the limit means: the frame would bring [`Connection::buffered_bytes`] above
    /// `max_backpressure`. A connection with nothing buffered always accepts one frame, so a
    /// message larger than the limit can still be sent to a reader that keeps up.
    fn admit(&mut self, frame_len: usize) -> Result<(), SendError> {
        if self.state != State::Open {
            return Err(SendError::Closed);
        }
        let buffered = self.buffered_bytes();
        if buffered == 0 || buffered + frame_len <= self.limits.max_backpressure {
            return Ok(());
        }
        match self.limits.backpressure_policy {
            BackpressurePolicy::DropData => Err(SendError::Dropped),
            BackpressurePolicy::Close => {
                // §7.4.1: 1008 "a message that violates its policy".
                self.queue_control(
                    OpCode::Close,
                    ClosePayload::new(CLOSE_POLICY_VIOLATION, SLOW_CONSUMER_REASON).as_bytes(),
                );
                self.state = State::Closing;
                self.events.push_back(Event::SlowConsumer);
                Err(SendError::SlowConsumer)
            }
        }
    }

    /// Queues a pong; above the backpressure limit only the latest pong is kept.
    fn queue_pong(&mut self, payload: &[u8]) {
        let frame = self.encode_small(
            FrameHeader::server(OpCode::Pong, payload.len() as u64),
            payload,
        );
        if self.buffered_bytes() + frame.len() <= self.limits.max_backpressure {
            self.push(frame);
            return;
        }
        if let Some(old) = self.pending_pong.take() {
            self.queued -= old.len();
        }
        self.queued += frame.len();
        self.pending_pong = Some(frame);
    }

    /// Queues a control frame (payload ≤ 125 bytes) as one chunk.
    fn queue_control(&mut self, opcode: OpCode, payload: &[u8]) {
        debug_assert!(payload.len() <= MAX_CONTROL_PAYLOAD as usize);
        let frame = self.encode_small(FrameHeader::server(opcode, payload.len() as u64), payload);
        self.push(frame);
    }

    /// Queues a data frame: coalesced with its header when small, else header and shared payload.
    fn queue_frame(&mut self, header: FrameHeader, payload: Bytes) {
        if payload.len() <= COALESCE_MAX {
            let frame = self.encode_small(header, &payload);
            self.push(frame);
        } else {
            let head = self.encode_small(header, &[]);
            self.push(head);
            self.push(payload);
        }
    }

    /// Writes `header` followed by `payload` into the arena and splits them off as one chunk.
    fn encode_small(&mut self, header: FrameHeader, payload: &[u8]) -> Bytes {
        let mut head = [0u8; MAX_HEADER_LEN];
        let head_len = header.encode(&mut head);
        let need = head_len + payload.len();
        if self.arena.capacity() < need {
            // Reclaims the current block when every chunk split from it has been dropped;
            // otherwise starts a new one.
            self.arena.reserve(ARENA_CHUNK.max(need));
        }
        self.arena.extend_from_slice(&head[..head_len]);
        self.arena.extend_from_slice(payload);
        self.arena.split().freeze()
    }

    fn push(&mut self, chunk: Bytes) {
        self.queued += chunk.len();
        self.queue.push_back(chunk);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::{CLOSE_INVALID_PAYLOAD, CLOSE_MESSAGE_TOO_BIG, CLOSE_PROTOCOL_ERROR};

    const TEXT: u8 = 0x1;
    const BINARY: u8 = 0x2;
    const CONT: u8 = 0x0;
    const CLOSE: u8 = 0x8;
    const PING: u8 = 0x9;
    const PONG: u8 = 0xA;

    /// A masked client frame, as a browser would send it.
    fn frame_rsv(fin: bool, rsv: u8, opcode: u8, payload: &[u8]) -> Vec<u8> {
        let key = [0x37, 0xFA, 0x21, (payload.len() as u8) ^ 0x3D];
        let mut out = vec![(u8::from(fin) << 7) | (rsv << 4) | opcode];
        match payload.len() {
            n @ 0..=125 => out.push(0x80 | n as u8),
            n @ 126..=0xFFFF => {
                out.push(0x80 | 126);
                out.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                out.push(0x80 | 127);
                out.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        out.extend_from_slice(&key);
        out.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
        out
    }

    fn frame(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
        frame_rsv(fin, 0, opcode, payload)
    }

    /// What the server must put on the wire: unmasked, final.
    fn server_frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
        let op = OpCode::from_wire(opcode).unwrap();
        let mut head = [0u8; MAX_HEADER_LEN];
        let n = FrameHeader::server(op, payload.len() as u64).encode(&mut head);
        [&head[..n], payload].concat()
    }

    fn close_payload(code: u16, reason: &str) -> Vec<u8> {
        [&code.to_be_bytes()[..], reason.as_bytes()].concat()
    }

    #[test]
    fn handle_read_until_message_stops_after_each_message_so_replies_precede_a_later_failure() {
        let mut conn = Connection::new(ConnLimits::default());
        let mut buf = BytesMut::new();
        buf.extend_from_slice(&frame(true, 1, b"one"));
        buf.extend_from_slice(&frame(true, 1, b"two"));
        buf.extend_from_slice(&[0x83, 0x80, 0, 0, 0, 0]); // reserved opcode 3
        assert!(conn.handle_read_until_message(&mut buf));
        assert!(
            matches!(conn.poll_event(), Some(Event::Message { ref payload, .. }) if &payload[..] == b"one")
        );
        assert_eq!(
            conn.state(),
            State::Open,
            "the violation behind it is not looked at yet"
        );
        assert!(conn.handle_read_until_message(&mut buf));
        assert!(
            matches!(conn.poll_event(), Some(Event::Message { ref payload, .. }) if &payload[..] == b"two")
        );
        assert!(!conn.handle_read_until_message(&mut buf));
        assert!(matches!(
            conn.poll_event(),
            Some(Event::Failed(ProtocolError::ReservedOpcode(3)))
        ));
        assert_eq!(conn.state(), State::Closed);
    }

    #[test]
    fn a_machine_is_idle_only_with_nothing_in_progress_queued_or_in_flight() {
        let mut conn = Connection::new(ConnLimits::default());
        assert!(conn.is_idle());
        let mut buf = BytesMut::new();
        buf.extend_from_slice(&frame(false, 1, b"frag"));
        conn.handle_read(&mut buf);
        assert!(!conn.is_idle(), "a fragmented message is in progress");
        buf.extend_from_slice(&frame(true, 0, b"ment"));
        conn.handle_read(&mut buf);
        assert!(!conn.is_idle(), "an event waits to be polled");
        let Some(Event::Message { kind, payload }) = conn.poll_event() else {
            panic!("message")
        };
        assert!(conn.is_idle());
        conn.send(kind, payload.freeze()).unwrap();
        assert!(!conn.is_idle(), "output is queued");
        let mut out = Vec::new();
        let n = conn.poll_transmit(&mut out);
        assert!(!conn.is_idle(), "output is in flight");
        conn.on_written(n);
        assert!(conn.is_idle());
        buf.extend_from_slice(&frame(true, 2, b"xyz")[..6]);
        conn.handle_read(&mut buf);
        assert!(
            !conn.is_idle(),
            "a frame header was consumed, its payload is pending"
        );
    }

    fn events(conn: &mut Connection) -> Vec<Event> {
        std::iter::from_fn(|| conn.poll_event()).collect()
    }

    fn transmitted(conn: &mut Connection) -> Vec<u8> {
        let mut out = Vec::new();
        let n = conn.poll_transmit(&mut out);
        let bytes = out.concat();
        assert_eq!(n, bytes.len());
        bytes
    }

    /// Feeds `wire` in pieces ending at each of `cuts` (then the rest), on one read buffer.
    fn feed_cut(
        limits: ConnLimits,
        wire: &[u8],
        cuts: &[usize],
    ) -> (Connection, Vec<Event>, Vec<u8>) {
        let mut conn = Connection::new(limits);
        let mut buf = BytesMut::new();
        let mut start = 0;
        for &end in cuts.iter().chain([&wire.len()]) {
            buf.extend_from_slice(&wire[start..end]);
            conn.handle_read(&mut buf);
            start = end;
        }
        let ev = events(&mut conn);
        let tx = transmitted(&mut conn);
        (conn, ev, tx)
    }

    fn feed(wire: &[u8]) -> (Connection, Vec<Event>, Vec<u8>) {
        feed_cut(ConnLimits::default(), wire, &[])
    }

    fn text(s: &str) -> Event {
        Event::Message {
            kind: MessageKind::Text,
            payload: BytesMut::from(s.as_bytes()),
        }
    }

    fn binary(b: &[u8]) -> Event {
        Event::Message {
            kind: MessageKind::Binary,
            payload: BytesMut::from(b),
        }
    }

    fn failed_with(err: ProtocolError) -> (Event, Vec<u8>) {
        (
            Event::Failed(err),
            server_frame(CLOSE, &close_payload(err.close_code(), err.reason())),
        )
    }

    fn assert_fails(wire: &[u8], before: &[Event], err: ProtocolError, code: u16) {
        let (conn, ev, tx) = feed(wire);
        let (event, close) = failed_with(err);
        assert_eq!(err.close_code(), code);
        assert_eq!(ev, [before, &[event]].concat());
        assert!(tx.ends_with(&close), "ends with our close {code}");
        assert_eq!(conn.state(), State::Closed);
    }

    #[test]
    fn rfc_masked_hello_is_a_text_message() {
        // §5.7: 0x81 0x85 0x37 0xfa 0x21 0x3d 0x7f 0x9f 0x4d 0x51 0x58 contains "Hello".
        let wire = [
            0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
        ];
        let (conn, ev, tx) = feed(&wire);
        assert_eq!(ev, [text("Hello")]);
        assert!(tx.is_empty());
        assert_eq!(conn.state(), State::Open);
    }

    #[test]
    fn edge_lengths_arrive_whole_and_unmasked() {
        for len in [0usize, 1, 125, 126, 127, 65535, 65536, 100_000] {
            let payload: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
            let (_, ev, _) = feed(&frame(true, BINARY, &payload));
            assert_eq!(ev, [binary(&payload)], "len {len}");
            let ascii: String = (0..len).map(|i| (b'a' + (i % 26) as u8) as char).collect();
            let (_, ev, _) = feed(&frame(true, TEXT, ascii.as_bytes()));
            assert_eq!(ev, [text(&ascii)], "len {len}");
        }
    }

    /// A conversation touching every path: fragments with control frames between them, a
    /// multi-byte code point split across fragments, a 64 KiB frame, ping, pong, close.
    fn conversation() -> Vec<u8> {
        let big: Vec<u8> = (0..65536u32).map(|i| (i * 7) as u8).collect();
        [
            frame(true, TEXT, "héllo".as_bytes()),
            frame(false, TEXT, &"κό".as_bytes()[..3]),
            frame(true, PING, b"p1"),
            frame(false, CONT, &"κό".as_bytes()[3..]),
            frame(true, PONG, b"unsolicited"),
            frame(true, CONT, "σμε".as_bytes()),
            frame(true, BINARY, &big),
            frame(false, BINARY, b""),
            frame(true, CONT, b"\xFF"),
            frame(true, PING, b""),
            frame(true, CLOSE, &close_payload(1000, "bye")),
            frame(true, TEXT, b"ignored after close"),
        ]
        .concat()
    }

    #[test]
    fn a_conversation_yields_messages_replies_and_the_close_echo_in_order() {
        let (conn, ev, tx) = feed(&conversation());
        let big: Vec<u8> = (0..65536u32).map(|i| (i * 7) as u8).collect();
        assert_eq!(
            ev,
            [
                text("héllo"),
                Event::Ping(Bytes::from_static(b"p1")),
                Event::Pong(Bytes::from_static(b"unsolicited")),
                text("κόσμε"),
                binary(&big),
                binary(b"\xFF"),
                Event::Ping(Bytes::new()),
                Event::PeerClosed {
                    code: Some(1000),
                    reason: Bytes::from_static(b"bye")
                },
            ]
        );
        let expected = [
            server_frame(PONG, b"p1"),
            server_frame(PONG, b""),
            server_frame(CLOSE, &1000u16.to_be_bytes()),
        ]
        .concat();
        assert_eq!(tx, expected);
        assert_eq!(conn.state(), State::Closed);
    }

    #[test]
    fn the_stream_split_at_every_byte_produces_the_same_events_and_bytes() {
        // The 64 KiB frame makes every split point too slow to try: a smaller conversation is
        // cut at every byte, the full one at pairs of points at a stride.
        let wire = [
            frame(true, TEXT, "héllo".as_bytes()),
            frame(false, TEXT, &"κό".as_bytes()[..3]),
            frame(true, PING, b"p1"),
            frame(false, CONT, &"κό".as_bytes()[3..]),
            frame(true, CONT, "σμε".as_bytes()),
            frame(true, BINARY, &[7u8; 300]),
            frame(true, CLOSE, &close_payload(3000, "done")),
        ]
        .concat();
        let (_, whole_ev, whole_tx) = feed(&wire);
        assert_eq!(whole_ev.len(), 5);
        for a in 0..=wire.len() {
            let (_, ev, tx) = feed_cut(ConnLimits::default(), &wire, &[a]);
            assert_eq!(ev, whole_ev, "cut at {a}");
            assert_eq!(tx, whole_tx, "cut at {a}");
        }
        // One byte at a time.
        let every: Vec<usize> = (1..wire.len()).collect();
        let (_, ev, tx) = feed_cut(ConnLimits::default(), &wire, &every);
        assert_eq!((ev, tx), (whole_ev, whole_tx));

        let wire = conversation();
        let (_, whole_ev, whole_tx) = feed(&wire);
        for a in (0..=wire.len()).step_by(997) {
            for b in (a..=wire.len()).step_by(4099) {
                let (_, ev, tx) = feed_cut(ConnLimits::default(), &wire, &[a, b]);
                assert_eq!(ev, whole_ev, "cuts at {a}, {b}");
                assert_eq!(tx, whole_tx, "cuts at {a}, {b}");
            }
        }
    }

    #[test]
    fn a_ping_is_answered_with_a_pong_carrying_the_same_payload() {
        // Autobahn 2.3/2.4: binary payload, 125 bytes.
        let payload: Vec<u8> = (0..125u8).map(|b| b.wrapping_mul(3)).collect();
        let (_, ev, tx) = feed(&frame(true, PING, &payload));
        assert_eq!(ev, [Event::Ping(Bytes::from(payload.clone()))]);
        assert_eq!(tx, server_frame(PONG, &payload));
    }

    #[test]
    fn a_ping_of_126_bytes_fails_with_1002() {
        // Autobahn 2.5.
        assert_fails(
            &frame(true, PING, &[0; 126]),
            &[],
            ProtocolError::ControlTooLong,
            CLOSE_PROTOCOL_ERROR,
        );
    }

    #[test]
    fn an_unsolicited_pong_is_reported_and_not_answered() {
        // Autobahn 2.8.
        let (_, ev, tx) = feed(&frame(true, PONG, b"unsolicited"));
        assert_eq!(ev, [Event::Pong(Bytes::from_static(b"unsolicited"))]);
        assert!(tx.is_empty());
    }

    #[test]
    fn ten_pings_get_ten_pongs_in_order() {
        // Autobahn 2.10/2.11.
        let wire: Vec<u8> = (0..10u8).flat_map(|i| frame(true, PING, &[i; 3])).collect();
        let (_, _, tx) = feed(&wire);
        let expected: Vec<u8> = (0..10u8)
            .flat_map(|i| server_frame(PONG, &[i; 3]))
            .collect();
        assert_eq!(tx, expected);
    }

    #[test]
    fn reserved_bits_fail_with_1002_after_earlier_messages_are_delivered() {
        // Autobahn 3.2-3.7: a valid message, then a frame with RSV bits, then a ping that must
        // not be answered.
        for rsv in 1..8 {
            let wire = [
                frame(true, TEXT, b"hi"),
                frame_rsv(true, rsv, TEXT, b"x"),
                frame(true, PING, b""),
            ]
            .concat();
            assert_fails(
                &wire,
                &[text("hi")],
                ProtocolError::ReservedBits(rsv),
                CLOSE_PROTOCOL_ERROR,
            );
            let (_, _, tx) = feed(&wire);
            assert!(!tx.starts_with(&server_frame(PONG, b"")));
        }
    }

    #[test]
    fn reserved_opcodes_fail_with_1002() {
        // Autobahn 4.1.x / 4.2.x.
        for op in (3..=7).chain(11..=15) {
            let wire = [frame(true, TEXT, b"hi"), frame(true, op, b"")].concat();
            assert_fails(
                &wire,
                &[text("hi")],
                ProtocolError::ReservedOpcode(op),
                CLOSE_PROTOCOL_ERROR,
            );
        }
    }

    #[test]
    fn an_unmasked_client_frame_fails_with_1002() {
        assert_fails(
            &server_frame(TEXT, b"hi"),
            &[],
            ProtocolError::UnmaskedFrame,
            CLOSE_PROTOCOL_ERROR,
        );
    }

    #[test]
    fn fragmented_control_frames_fail_with_1002() {
        // Autobahn 5.1, 5.2.
        for op in [PING, PONG] {
            assert_fails(
                &[frame(false, op, b"frag"), frame(true, CONT, b"ment")].concat(),
                &[],
                ProtocolError::FragmentedControl,
                CLOSE_PROTOCOL_ERROR,
            );
        }
    }

    #[test]
    fn control_frames_between_fragments_are_handled_at_once() {
        // Autobahn 5.6-5.8.
        let wire = [
            frame(false, TEXT, b"frag"),
            frame(true, PING, b"ping"),
            frame(true, CONT, b"ment"),
        ]
        .concat();
        let (_, ev, tx) = feed(&wire);
        assert_eq!(
            ev,
            [Event::Ping(Bytes::from_static(b"ping")), text("fragment")]
        );
        assert_eq!(tx, server_frame(PONG, b"ping"));
    }

    #[test]
    fn a_continuation_with_nothing_to_continue_fails_with_1002() {
        // Autobahn 5.9-5.14: FIN set or not, alone or before a text frame.
        for fin in [true, false] {
            assert_fails(
                &[frame(fin, CONT, b"x"), frame(true, TEXT, b"y")].concat(),
                &[],
                ProtocolError::UnexpectedContinuation,
                CLOSE_PROTOCOL_ERROR,
            );
        }
        // Autobahn 5.15: a message, then a stray continuation.
        assert_fails(
            &[
                frame(false, TEXT, b"frag1"),
                frame(true, CONT, b"frag2"),
                frame(false, CONT, b"frag3"),
                frame(true, TEXT, b"frag4"),
            ]
            .concat(),
            &[text("frag1frag2")],
            ProtocolError::UnexpectedContinuation,
            CLOSE_PROTOCOL_ERROR,
        );
    }

    #[test]
    fn a_new_data_frame_inside_a_fragmented_message_fails_with_1002() {
        // Autobahn 5.18-5.20: both fragments with the text opcode.
        assert_fails(
            &[
                frame(false, TEXT, b"frag1"),
                frame(true, PING, b""),
                frame(true, TEXT, b"frag2"),
            ]
            .concat(),
            &[Event::Ping(Bytes::new())],
            ProtocolError::ExpectedContinuation,
            CLOSE_PROTOCOL_ERROR,
        );
    }

    #[test]
    fn invalid_utf8_fails_with_1007_in_a_whole_frame() {
        // Autobahn 6.3.1: "κόσμε-edited" with an invalid byte.
        let bad =
            b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80\x65\x64\x69\x74\x65\x64";
        assert_fails(
            &frame(true, TEXT, bad),
            &[],
            ProtocolError::InvalidUtf8,
            CLOSE_INVALID_PAYLOAD,
        );
    }

    #[test]
    fn invalid_utf8_fails_fast_inside_a_frame_that_has_only_partly_arrived() {
        // Autobahn 6.4.3/6.4.4: the frame is declared long; the invalid byte arrives first.
        let mut payload = "κόσμε".as_bytes().to_vec();
        payload.extend_from_slice(b"\xF4\x90\x80\x80");
        payload.extend_from_slice(b"-edited and much more text to come");
        let wire = frame(true, TEXT, &payload);
        let invalid_at = wire.len() - payload.len() + "κόσμε".len() + 1; // at 0x90
        let mut conn = Connection::new(ConnLimits::default());
        let mut buf = BytesMut::from(&wire[..invalid_at]);
        conn.handle_read(&mut buf);
        assert_eq!(conn.poll_event(), None, "a valid prefix so far");
        assert_eq!(
            conn.read_hint(),
            payload.len() - (invalid_at - (wire.len() - payload.len()))
        );
        buf.extend_from_slice(&wire[invalid_at..invalid_at + 1]);
        conn.handle_read(&mut buf);
        assert_eq!(
            conn.poll_event(),
            Some(Event::Failed(ProtocolError::InvalidUtf8))
        );
        assert_eq!(conn.state(), State::Closed);
        let (_, close) = failed_with(ProtocolError::InvalidUtf8);
        assert_eq!(transmitted(&mut conn), close);
    }

    #[test]
    fn invalid_utf8_fails_fast_in_a_fragment_before_the_message_ends() {
        // Autobahn 6.4.1/6.4.2: the first fragment is valid, the second breaks the text, the
        // third never arrives.
        let wire = [
            frame(false, TEXT, "κόσμε".as_bytes()),
            frame(false, CONT, b"\xF4\x90\x80\x80"),
        ]
        .concat();
        assert_fails(
            &wire,
            &[],
            ProtocolError::InvalidUtf8,
            CLOSE_INVALID_PAYLOAD,
        );
    }

    #[test]
    fn text_ending_inside_a_code_point_fails_with_1007() {
        assert_fails(
            &frame(true, TEXT, b"ok\xE2\x82"),
            &[],
            ProtocolError::InvalidUtf8,
            CLOSE_INVALID_PAYLOAD,
        );
        assert_fails(
            &[frame(false, TEXT, b"ok\xE2"), frame(true, CONT, b"\x82")].concat(),
            &[],
            ProtocolError::InvalidUtf8,
            CLOSE_INVALID_PAYLOAD,
        );
    }

    #[test]
    fn a_close_is_echoed_with_its_code_and_closes() {
        // Autobahn 7.1.1, 7.7.x.
        for code in [1000, 1001, 1003, 1011, 3000, 4999] {
            let (conn, ev, tx) = feed(&frame(true, CLOSE, &close_payload(code, "reason")));
            assert_eq!(
                ev,
                [Event::PeerClosed {
                    code: Some(code),
                    reason: Bytes::from_static(b"reason")
                }]
            );
            assert_eq!(tx, server_frame(CLOSE, &code.to_be_bytes()));
            assert_eq!(conn.state(), State::Closed);
        }
    }

    #[test]
    fn an_empty_close_is_answered_with_an_empty_close() {
        // Autobahn 7.3.1.
        let (_, ev, tx) = feed(&frame(true, CLOSE, b""));
        assert_eq!(
            ev,
            [Event::PeerClosed {
                code: None,
                reason: Bytes::new()
            }]
        );
        assert_eq!(tx, server_frame(CLOSE, b""));
    }

    #[test]
    fn a_close_frame_with_one_byte_fails_with_1002() {
        // Autobahn 7.3.2.
        assert_fails(
            &frame(true, CLOSE, b"\x03"),
            &[],
            ProtocolError::CloseOneByte,
            CLOSE_PROTOCOL_ERROR,
        );
    }

    #[test]
    fn a_close_with_an_invalid_code_fails_with_1002() {
        // Autobahn 7.9.x.
        for code in [
            0, 999, 1004, 1005, 1006, 1012, 1015, 1016, 2999, 5000, 65535,
        ] {
            assert_fails(
                &frame(true, CLOSE, &close_payload(code, "")),
                &[],
                ProtocolError::InvalidCloseCode(code),
                CLOSE_PROTOCOL_ERROR,
            );
        }
    }

    #[test]
    fn a_close_with_an_invalid_utf8_reason_fails_with_1007() {
        // Autobahn 7.5.1.
        let payload = [
            &1000u16.to_be_bytes()[..],
            b"\xce\xba\xe1\xbd\xb9\xed\xa0\x80",
        ]
        .concat();
        assert_fails(
            &frame(true, CLOSE, &payload),
            &[],
            ProtocolError::InvalidCloseReason,
            CLOSE_INVALID_PAYLOAD,
        );
    }

    #[test]
    fn frames_after_the_peers_close_are_ignored() {
        // Autobahn 7.1.2-7.1.5: nothing after the close is processed or answered.
        let wire = [
            frame(true, CLOSE, b""),
            frame(true, PING, b"late"),
            frame(true, TEXT, b"late"),
            vec![0xFF, 0xFF],
        ]
        .concat();
        let (mut conn, ev, tx) = feed(&wire);
        assert_eq!(ev.len(), 1);
        assert_eq!(tx, server_frame(CLOSE, b""));
        let mut more = BytesMut::from(&frame(true, PING, b"")[..]);
        conn.handle_read(&mut more);
        assert!(more.is_empty(), "input after Closed is discarded");
        assert_eq!(conn.poll_event(), None);
    }

    #[test]
    fn our_close_moves_to_closing_and_the_peers_close_to_closed() {
        let mut conn = Connection::new(ConnLimits::default());
        conn.close(1001, "going away");
        assert_eq!(conn.state(), State::Closing);
        assert_eq!(
            transmitted(&mut conn),
            server_frame(CLOSE, &close_payload(1001, "going away"))
        );
        assert_eq!(
            conn.send(MessageKind::Text, Bytes::from_static(b"x")),
            Err(SendError::Closed)
        );
        conn.close(1000, "again");
        assert!(transmitted(&mut conn).is_empty(), "close is sent once");
        // Data still arriving before the peer's close is delivered; pings are not answered.
        let mut buf = BytesMut::from(
            &[
                frame(true, TEXT, b"in flight"),
                frame(true, PING, b""),
                frame(true, CLOSE, &close_payload(1001, "")),
            ]
            .concat()[..],
        );
        conn.handle_read(&mut buf);
        assert_eq!(
            events(&mut conn),
            [
                text("in flight"),
                Event::Ping(Bytes::new()),
                Event::PeerClosed {
                    code: Some(1001),
                    reason: Bytes::new()
                }
            ]
        );
        assert!(transmitted(&mut conn).is_empty(), "no second close");
        assert_eq!(conn.state(), State::Closed);
    }

    #[test]
    fn a_protocol_error_while_closing_sends_no_second_close() {
        let mut conn = Connection::new(ConnLimits::default());
        conn.close(1000, "");
        transmitted(&mut conn);
        let mut buf = BytesMut::from(&frame(true, 0x3, b"")[..]);
        conn.handle_read(&mut buf);
        assert_eq!(
            events(&mut conn),
            [Event::Failed(ProtocolError::ReservedOpcode(3))]
        );
        assert!(transmitted(&mut conn).is_empty());
        assert_eq!(conn.state(), State::Closed);
    }

    #[test]
    fn eof_without_a_close_frame_closes() {
        let mut conn = Connection::new(ConnLimits::default());
        let mut buf = BytesMut::from(&frame(true, TEXT, b"partial")[..5]);
        conn.handle_read(&mut buf);
        conn.handle_eof();
        assert_eq!(conn.state(), State::Closed);
        assert_eq!(conn.poll_event(), None);
    }

    #[test]
    fn a_message_over_the_limit_fails_with_1009_without_buffering_the_excess() {
        let limits = ConnLimits {
            max_message_len: 1000,
            ..ConnLimits::default()
        };
        // One frame over the limit: refused on its header, payload never looked at.
        let (_, ev, tx) = feed_cut(limits, &frame(true, BINARY, &[0; 1001]), &[]);
        let event = Event::Failed(ProtocolError::MessageTooBig);
        let close = server_frame(
            CLOSE,
            &close_payload(1009, "message too big (limit 1000 bytes)"),
        );
        assert_eq!((ev, tx), (vec![event.clone()], close.clone()));
        // Fragments adding up to more: refused on the header of the fragment that crosses it.
        let wire = [
            frame(false, BINARY, &[1; 600]),
            frame(true, CONT, &[2; 401]),
        ]
        .concat();
        let mut conn = Connection::new(limits);
        let header_of_second = 608 + 8;
        let mut buf = BytesMut::from(&wire[..header_of_second]);
        conn.handle_read(&mut buf);
        assert_eq!(events(&mut conn), [event]);
        assert!(conn.assembler.reserved() < 1001);
        assert_eq!(transmitted(&mut conn), close);
    }

    #[test]
    fn a_frame_over_the_frame_limit_fails_with_1009_on_its_length_field() {
        let limits = ConnLimits {
            max_frame_len: 70_000,
            ..ConnLimits::default()
        };
        let wire = frame(true, BINARY, &vec![0; 70_001]);
        let (_, ev, tx) = feed_cut(limits, &wire[..10], &[]);
        assert_eq!(ev, [Event::Failed(ProtocolError::FrameTooBig)]);
        assert_eq!(
            tx,
            server_frame(
                CLOSE,
                &close_payload(1009, "frame too big (limit 70000 bytes)")
            )
        );
        assert_eq!(
            ProtocolError::FrameTooBig.close_code(),
            CLOSE_MESSAGE_TOO_BIG
        );
    }

    #[test]
    fn a_frame_declaring_2_pow_62_bytes_allocates_nothing() {
        let limits = ConnLimits {
            max_frame_len: u64::MAX >> 1,
            ..ConnLimits::default()
        };
        let mut conn = Connection::new(limits);
        // Warm up with one ping/pong round so the event and output queues and the header arena
        // exist: then only the huge declaration itself could allocate.
        let mut buf = BytesMut::with_capacity(64);
        buf.extend_from_slice(&frame(true, PING, b"warm"));
        conn.handle_read(&mut buf);
        assert_eq!(events(&mut conn).len(), 1);
        assert_eq!(transmitted(&mut conn), server_frame(PONG, b"warm"));
        buf.extend_from_slice(&[0x82, 0xFF]);
        buf.extend_from_slice(&(1u64 << 62).to_be_bytes());
        buf.extend_from_slice(&[1, 2, 3, 4, 5, 6, 7, 8]);
        let allocations = alloc_count::during(|| conn.handle_read(&mut buf));
        assert_eq!(allocations, 0);
        assert_eq!(
            conn.poll_event(),
            Some(Event::Failed(ProtocolError::MessageTooBig))
        );
    }

    #[test]
    fn the_steady_path_does_not_allocate_per_frame() {
        let mut conn = Connection::new(ConnLimits::default());
        let mut buf = BytesMut::with_capacity(8192);
        let mut out = Vec::with_capacity(16);
        let wire = [
            frame(true, TEXT, "κόσμε".repeat(40).as_bytes()),
            frame(true, BINARY, &[9; 1000]),
            frame(true, PING, b"hb"),
        ]
        .concat();
        let reply = Bytes::from(vec![b'r'; 500]);
        let round = |conn: &mut Connection, buf: &mut BytesMut, out: &mut Vec<Bytes>| {
            buf.extend_from_slice(&wire);
            conn.handle_read(buf);
            let mut n = 0;
            while let Some(ev) = conn.poll_event() {
                n += 1;
                drop(ev);
            }
            assert_eq!(n, 3);
            conn.send(MessageKind::Binary, reply.clone()).unwrap();
            conn.send(MessageKind::Text, Bytes::from_static(b"small"))
                .unwrap();
            let written = conn.poll_transmit(out);
            conn.on_written(written);
            out.clear();
        };
        for _ in 0..4 {
            round(&mut conn, &mut buf, &mut out);
        }
        let allocations = alloc_count::during(|| {
            for _ in 0..100 {
                round(&mut conn, &mut buf, &mut out);
            }
        });
        assert_eq!(allocations, 0);
    }

    #[test]
    fn backpressure_close_policy_closes_with_1008_slow_consumer() {
        let limits = ConnLimits {
            max_backpressure: 1000,
            ..ConnLimits::default()
        };
        let mut conn = Connection::new(limits);
        let msg = Bytes::from(vec![0u8; 300]);
        for _ in 0..3 {
            conn.send(MessageKind::Binary, msg.clone()).unwrap();
        }
        assert_eq!(conn.buffered_bytes(), 3 * 304);
        let mut out = Vec::new();
        let handed = conn.poll_transmit(&mut out);
        assert_eq!(handed, 912);
        assert_eq!(
            conn.buffered_bytes(),
            912,
            "handed out but not written still counts"
        );
        conn.on_written(500);
        assert_eq!(conn.buffered_bytes(), 412);
        conn.send(MessageKind::Binary, msg.clone()).unwrap();
        assert_eq!(
            conn.send(MessageKind::Binary, msg.clone()),
            Err(SendError::SlowConsumer)
        );
        assert_eq!(conn.poll_event(), Some(Event::SlowConsumer));
        assert_eq!(conn.state(), State::Closing);
        out.clear();
        conn.poll_transmit(&mut out);
        let tail = out.last().unwrap();
        assert_eq!(
            &tail[..],
            &server_frame(CLOSE, &close_payload(1008, "slow consumer"))[..]
        );
        assert_eq!(conn.send(MessageKind::Binary, msg), Err(SendError::Closed));
    }

    #[test]
    fn backpressure_drop_policy_drops_data_but_never_control_frames() {
        let limits = ConnLimits {
            max_backpressure: 1000,
            backpressure_policy: BackpressurePolicy::DropData,
            ..ConnLimits::default()
        };
        let mut conn = Connection::new(limits);
        let big = Bytes::from(vec![0u8; 2000]);
        conn.send(MessageKind::Binary, big.clone())
            .expect("an idle connection accepts one message over the limit");
        assert_eq!(
            conn.send(MessageKind::Binary, big.clone()),
            Err(SendError::Dropped)
        );
        assert_eq!(
            conn.send_encoded(Bytes::from_static(b"\x82\x01x")),
            Err(SendError::Dropped)
        );
        conn.send_ping(b"hb");
        assert_eq!(conn.state(), State::Open);
        assert_eq!(conn.poll_event(), None);
        // Many pings while over the limit: only the latest pong is kept.
        let wire: Vec<u8> = (0..50u8).flat_map(|i| frame(true, PING, &[i])).collect();
        let mut buf = BytesMut::from(&wire[..]);
        conn.handle_read(&mut buf);
        assert_eq!(events(&mut conn).len(), 50);
        let mut out = Vec::new();
        let n = conn.poll_transmit(&mut out);
        let wire_out = out.concat();
        assert_eq!(n, wire_out.len());
        let expected = [
            server_frame(PONG, &[49]),
            server_frame(BINARY, &big),
            server_frame(PING, b"hb"),
        ]
        .concat();
        assert_eq!(wire_out, expected);
        conn.on_written(n);
        assert_eq!(conn.buffered_bytes(), 0);
        conn.send(MessageKind::Binary, big).unwrap();
    }

    #[test]
    fn small_payloads_share_a_chunk_with_their_header_and_large_ones_do_not() {
        let mut conn = Connection::new(ConnLimits::default());
        conn.send(MessageKind::Text, Bytes::from(vec![b'a'; COALESCE_MAX]))
            .unwrap();
        conn.send(MessageKind::Text, Bytes::from(vec![b'b'; COALESCE_MAX + 1]))
            .unwrap();
        let mut out = Vec::new();
        conn.poll_transmit(&mut out);
        assert_eq!(out.len(), 3);
        assert_eq!(&out[0][..], &server_frame(TEXT, &[b'a'; COALESCE_MAX])[..]);
        assert_eq!(out[1].len(), 4);
        assert_eq!(&out[2][..], &[b'b'; COALESCE_MAX + 1][..]);
    }

    #[test]
    fn a_pre_encoded_frame_is_queued_as_is() {
        let mut conn = Connection::new(ConnLimits::default());
        let shared = Bytes::from(server_frame(TEXT, b"fan-out"));
        conn.send_encoded(shared.clone()).unwrap();
        let mut out = Vec::new();
        assert_eq!(conn.poll_transmit(&mut out), shared.len());
        assert_eq!(out, std::slice::from_ref(&shared));
        assert_eq!(out[0].as_ptr(), shared.as_ptr(), "shared, not copied");
    }

    mod permessage_deflate {
        //! RFC 7692 on the connection: RSV1 rules, inflation, bounds, outgoing compression.
        use super::*;
        use crate::deflate::negotiate::{Negotiated, ServerPolicy};

        /// §7.2.3.1: "Hello" compressed (the payload of `0xc1 0x07 ...`).
        const HELLO_Z: [u8; 7] = [0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00];

        fn params(client_no_context_takeover: bool) -> Negotiated {
            let policy = ServerPolicy {
                client_no_context_takeover,
                ..ServerPolicy::default()
            };
            crate::deflate::negotiate::negotiate_header(b"permessage-deflate", &policy)
                .unwrap()
                .params
        }

        fn deflate_conn(limits: ConnLimits, dedicated: Option<u32>) -> Connection {
            Connection::with_compression(
                limits,
                Some(Compression {
                    params: params(false),
                    dedicated_level: dedicated,
                }),
            )
        }

        fn feed_to(conn: &mut Connection, wire: &[u8]) -> (Vec<Event>, Vec<u8>) {
            let mut buf = BytesMut::from(wire);
            conn.handle_read(&mut buf);
            (events(conn), transmitted(conn))
        }

        #[test]
        fn rfc_hello_compressed_in_one_frame_is_delivered_inflated() {
            let mut conn = deflate_conn(ConnLimits::default(), None);
            let (ev, tx) = feed_to(&mut conn, &frame_rsv(true, 0b100, TEXT, &HELLO_Z));
            assert_eq!(ev, [text("Hello")]);
            assert!(tx.is_empty());
        }

        #[test]
        fn rfc_hello_compressed_in_two_fragments_is_delivered_inflated() {
            // §7.2.3.1: "0x41 0x03 0xf2 0x48 0xcd" then "0x80 0x04 0xc9 0xc9 0x07 0x00".
            let mut conn = deflate_conn(ConnLimits::default(), None);
            let wire = [
                frame_rsv(false, 0b100, TEXT, &HELLO_Z[..3]),
                frame(true, CONT, &HELLO_Z[3..]),
            ]
            .concat();
            assert_eq!(feed_to(&mut conn, &wire).0, [text("Hello")]);
        }

        #[test]
        fn rfc_context_takeover_carries_the_window_to_the_next_message() {
            // §7.2.3.2: the second "Hello" refers back to the first.
            let mut conn = deflate_conn(ConnLimits::default(), None);
            let wire = [
                frame_rsv(true, 0b100, TEXT, &HELLO_Z),
                frame_rsv(true, 0b100, TEXT, &[0xf2, 0x00, 0x11, 0x00, 0x00]),
            ]
            .concat();
            assert_eq!(feed_to(&mut conn, &wire).0, [text("Hello"), text("Hello")]);
            assert!(
                !conn.is_idle(),
                "the client's window must be kept: the machine may not be dropped"
            );
        }

        #[test]
        fn without_client_context_takeover_the_machine_stays_droppable() {
            let mut conn = Connection::with_compression(
                ConnLimits::default(),
                Some(Compression {
                    params: params(true),
                    dedicated_level: None,
                }),
            );
            feed_to(&mut conn, &frame_rsv(true, 0b100, TEXT, &HELLO_Z));
            assert!(conn.is_idle());
        }

        #[test]
        fn uncompressed_messages_still_pass_on_a_deflate_connection() {
            let mut conn = deflate_conn(ConnLimits::default(), None);
            assert_eq!(
                feed_to(&mut conn, &frame(true, TEXT, b"plain")).0,
                [text("plain")]
            );
        }

        #[test]
        fn rsv1_without_the_extension_fails_with_1002() {
            assert_fails(
                &frame_rsv(true, 0b100, TEXT, &HELLO_Z),
                &[],
                ProtocolError::ReservedBits(0b100),
                CLOSE_PROTOCOL_ERROR,
            );
        }

        #[test]
        fn rsv1_on_a_continuation_or_a_control_frame_fails_with_1002() {
            let mut conn = deflate_conn(ConnLimits::default(), None);
            let wire = [
                frame_rsv(false, 0b100, TEXT, &HELLO_Z[..3]),
                frame_rsv(true, 0b100, CONT, &HELLO_Z[3..]),
            ]
            .concat();
            let (ev, tx) = feed_to(&mut conn, &wire);
            let (event, close) = failed_with(ProtocolError::CompressedContinuation);
            assert_eq!((ev, tx), (vec![event], close));
            for op in [PING, PONG, CLOSE] {
                let mut conn = deflate_conn(ConnLimits::default(), None);
                let (ev, _) = feed_to(&mut conn, &frame_rsv(true, 0b100, op, b""));
                assert_eq!(ev, [Event::Failed(ProtocolError::ReservedBits(0b100))]);
            }
            // RSV2 and RSV3 stay reserved.
            let mut conn = deflate_conn(ConnLimits::default(), None);
            let (ev, _) = feed_to(&mut conn, &frame_rsv(true, 0b010, TEXT, b"x"));
            assert_eq!(ev, [Event::Failed(ProtocolError::ReservedBits(0b010))]);
        }

        #[test]
        fn a_decompression_bomb_closes_with_1009() {
            let limits = ConnLimits {
                max_message_len: 64 * 1024,
                ..ConnLimits::default()
            };
            let mut bomb = Vec::new();
            Deflater::new(9, 15, true).compress(&vec![b'a'; 1 << 20], &mut bomb);
            assert!(bomb.len() < 2000);
            let mut conn = deflate_conn(limits, None);
            let (ev, tx) = feed_to(&mut conn, &frame_rsv(true, 0b100, BINARY, &bomb));
            let event = Event::Failed(ProtocolError::MessageTooBig);
            let close = server_frame(
                CLOSE,
                &close_payload(1009, "message too big (limit 65536 bytes)"),
            );
            assert_eq!((ev, tx), (vec![event], close));
            assert_eq!(
                ProtocolError::MessageTooBig.close_code(),
                CLOSE_MESSAGE_TOO_BIG
            );
        }

        #[test]
        fn invalid_utf8_inside_compressed_text_fails_with_1007() {
            let mut z = Vec::new();
            Deflater::new(6, 15, true).compress(b"\xff\xfe", &mut z);
            let mut conn = deflate_conn(ConnLimits::default(), None);
            let (ev, _) = feed_to(&mut conn, &frame_rsv(true, 0b100, TEXT, &z));
            assert_eq!(ev, [Event::Failed(ProtocolError::InvalidUtf8)]);
        }

        #[test]
        fn garbage_deflate_data_fails_with_1007() {
            let mut conn = deflate_conn(ConnLimits::default(), None);
            let (ev, _) = feed_to(&mut conn, &frame_rsv(true, 0b100, BINARY, &[0xff, 0xff]));
            assert_eq!(ev, [Event::Failed(ProtocolError::InvalidCompressedData)]);
            assert_eq!(
                ProtocolError::InvalidCompressedData.close_code(),
                CLOSE_INVALID_PAYLOAD
            );
        }

        #[test]
        fn send_deflated_writes_the_rfc_frame_and_keeps_the_context() {
            let mut conn = deflate_conn(ConnLimits::default(), Some(6));
            conn.send_deflated(MessageKind::Text, Bytes::from_static(b"Hello"))
                .unwrap();
            conn.send_deflated(MessageKind::Text, Bytes::from_static(b"Hello"))
                .unwrap();
            assert_eq!(
                transmitted(&mut conn),
                [
                    &[0xc1, 0x07][..],
                    &HELLO_Z,
                    &[0xc1, 0x05, 0xf2, 0x00, 0x11, 0x00, 0x00]
                ]
                .concat()
            );
            conn.on_written(conn.buffered_bytes());
            assert!(
                !conn.is_idle(),
                "server context takeover keeps the deflater"
            );
            // A frame compressed elsewhere resets our context: the next one stands alone.
            let shared = Deflater::new(6, 15, true).compress_frame(OpCode::Text, b"Hello");
            assert!(conn.accepts_deflated(15));
            conn.send_encoded_deflated(shared.clone()).unwrap();
            conn.send_deflated(MessageKind::Text, Bytes::from_static(b"Hello"))
                .unwrap();
            assert_eq!(transmitted(&mut conn), [&shared[..], &shared[..]].concat());
        }

        /// A dedicated connection whose client offered `offer`, as the dedicated policy answers it.
        fn dedicated_conn(offer: &str) -> Connection {
            let params = crate::deflate::negotiate::negotiate_header(
                offer.as_bytes(),
                &ServerPolicy::default(),
            )
            .unwrap()
            .params;
            Connection::with_compression(
                ConnLimits::default(),
                Some(Compression {
                    params,
                    dedicated_level: Some(6),
                }),
            )
        }

        /// Receives the RFC's two "Hello"s (the second refers back to the first) and sends two.
        fn exchange_hellos(conn: &mut Connection) {
            let wire = [
                frame_rsv(true, 0b100, TEXT, &HELLO_Z),
                frame_rsv(true, 0b100, TEXT, &[0xf2, 0x00, 0x11, 0x00, 0x00]),
            ]
            .concat();
            assert_eq!(feed_to(conn, &wire).0, [text("Hello"), text("Hello")]);
            for _ in 0..2 {
                conn.send_deflated(MessageKind::Text, Bytes::from_static(b"Hello"))
                    .unwrap();
            }
            transmitted(conn);
            conn.on_written(conn.buffered_bytes());
        }

        #[test]
        fn parking_releases_exactly_the_contexts_without_context_takeover() {
            // server_no_context_takeover only: our deflater holds nothing between messages, the
            // client's window must stay (its next message may refer back).
            let mut conn = dedicated_conn("permessage-deflate; server_no_context_takeover");
            exchange_hellos(&mut conn);
            assert!(conn.deflater.is_some() && conn.inflater.is_some());
            assert!(!conn.is_idle(), "the inflate window keeps the machine");
            conn.release_idle_contexts();
            assert!(conn.deflater.is_none(), "no takeover: released");
            assert!(conn.inflater.is_some(), "client takeover: kept");
            // The client's next message still refers back to its window, and ours stands alone.
            let (ev, _) = feed_to(
                &mut conn,
                &frame_rsv(true, 0b100, TEXT, &[0xf2, 0x00, 0x11, 0x00, 0x00]),
            );
            assert_eq!(ev, [text("Hello")]);
            conn.send_deflated(MessageKind::Text, Bytes::from_static(b"Hello"))
                .unwrap();
            assert_eq!(
                transmitted(&mut conn),
                [&[0xc1, 0x07][..], &HELLO_Z].concat()
            );

            // Takeover both ways (what browsers get in dedicated mode): both contexts are kept,
            // and our next message still refers back to the earlier ones (shorter than "Hello"
            // standing alone).
            let mut conn = dedicated_conn("permessage-deflate; client_max_window_bits");
            exchange_hellos(&mut conn);
            conn.release_idle_contexts();
            assert!(conn.deflater.is_some() && conn.inflater.is_some());
            conn.send_deflated(MessageKind::Text, Bytes::from_static(b"Hello"))
                .unwrap();
            let third = transmitted(&mut conn);
            assert_eq!(third[0], 0xc1);
            assert!(third.len() - 2 < HELLO_Z.len(), "{third:x?}");

            // No takeover either way: both go, and the machine itself may be dropped.
            let mut conn = dedicated_conn(
                "permessage-deflate; server_no_context_takeover; client_no_context_takeover",
            );
            feed_to(&mut conn, &frame_rsv(true, 0b100, TEXT, &HELLO_Z));
            conn.send_deflated(MessageKind::Text, Bytes::from_static(b"Hello"))
                .unwrap();
            transmitted(&mut conn);
            conn.on_written(conn.buffered_bytes());
            assert!(conn.is_idle());
            conn.release_idle_contexts();
            assert!(conn.deflater.is_none() && conn.inflater.is_none());
        }

        #[test]
        fn a_message_dropped_for_backpressure_is_forgotten_by_the_context() {
            let limits = ConnLimits {
                max_backpressure: 10,
                backpressure_policy: BackpressurePolicy::DropData,
                ..ConnLimits::default()
            };
            let mut conn = deflate_conn(limits, Some(6));
            conn.send_deflated(MessageKind::Text, Bytes::from_static(b"Hello"))
                .unwrap();
            assert_eq!(
                conn.send_deflated(MessageKind::Text, Bytes::from_static(b"Hello")),
                Err(SendError::Dropped)
            );
            transmitted(&mut conn);
            conn.on_written(conn.buffered_bytes());
            // Had the context kept the dropped "Hello", this would refer back to it.
            conn.send_deflated(MessageKind::Text, Bytes::from_static(b"Hello"))
                .unwrap();
            assert_eq!(
                transmitted(&mut conn),
                [&[0xc1, 0x07][..], &HELLO_Z].concat()
            );
        }

        #[test]
        fn without_a_dedicated_context_or_with_an_8_bit_window_send_deflated_sends_plain() {
            let mut conn = deflate_conn(ConnLimits::default(), None);
            conn.send_deflated(MessageKind::Text, Bytes::from_static(b"Hello"))
                .unwrap();
            assert_eq!(transmitted(&mut conn), server_frame(TEXT, b"Hello"));
            let mut p = params(false);
            p.server_max_window_bits = 8;
            let mut conn = Connection::with_compression(
                ConnLimits::default(),
                Some(Compression {
                    params: p,
                    dedicated_level: Some(6),
                }),
            );
            assert!(!conn.accepts_deflated(15));
            conn.send_deflated(MessageKind::Text, Bytes::from_static(b"Hello"))
                .unwrap();
            assert_eq!(transmitted(&mut conn), server_frame(TEXT, b"Hello"));
            assert!(!Connection::new(ConnLimits::default()).accepts_deflated(9));
        }
    }

    /// Counts heap allocations made by the current thread (other test threads do not interfere).
    #[allow(unsafe_code)]
    mod alloc_count {
        use std::alloc::{GlobalAlloc, Layout, System};
        use std::cell::Cell;

        thread_local! {
            static COUNT: Cell<usize> = const { Cell::new(0) };
        }

        struct Counting;

        // SAFETY: forwards every call unchanged to the system allocator; the thread-local counter
        // has a const initialiser and no destructor, so touching it never allocates or recurses.
        unsafe impl GlobalAlloc for Counting {
            unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
                let _ = COUNT.try_with(|c| c.set(c.get() + 1));
                // SAFETY: same contract as ours, passed through.
                unsafe { System.alloc(layout) }
            }
            unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
                // SAFETY: `ptr` came from `System.alloc` with this layout.
                unsafe { System.dealloc(ptr, layout) }
            }
            unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
                let _ = COUNT.try_with(|c| c.set(c.get() + 1));
                // SAFETY: same contract as ours, passed through.
                unsafe { System.realloc(ptr, layout, new_size) }
            }
        }

        #[global_allocator]
        static GLOBAL: Counting = Counting;

        /// How many allocations (and reallocations) `f` made on this thread.
        pub fn during(f: impl FnOnce()) -> usize {
            let before = COUNT.with(Cell::get);
            f();
            COUNT.with(Cell::get) - before
        }
    }
}
