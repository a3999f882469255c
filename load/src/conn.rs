//! One load connection's I/O on a load thread's event loop: open (TCP + upgrade), pump messages
//! (`echo`, `latency`), hold (`idle`), close.
//!
//! Owns the per-connection write position, the queue of send times, and pong replies. Makes no
//! measurement decision beyond "this message completed now, it was sent then": counting belongs to
//! [`Stats`], decoding to [`super::codec`], the upgrade to `ringcast::proto::handshake`.
//!
//! Never allocates per message: reads go into the thread's one read buffer, writes come from the
//! thread's pre-encoded [`Burst`], send times go into a queue sized when the connection starts
//! (in `latency` it grows only while the server falls behind, up to the backlog cap). With
//! `--deflate`, a connection's compressed messages are gathered and inflated in its own buffers,
//! which grow to the largest message and are then reused.
//! Never writes a control frame into the middle of a data frame (§5.4: "control frames MAY be
//! injected in the middle of a fragmented message", i.e. between frames, never inside one).

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt, Interest};
use tokio::net::TcpStream;
use tokio::sync::Semaphore;

use super::args::{Plan, Scenario, DRAIN};
use super::codec::{self, Burst, Incoming, RawCounter, ServerFrames};
use super::content;
use super::deflate::{self, ClientInflate};
use super::error::{ConnError, ServerClose};
use super::stats::Stats;
use ringcast::proto::frame::{FrameHeader, MAX_HEADER_LEN};
use ringcast::proto::handshake::{
    write_client_request, ClientKey, HandshakeLimits, Parse, ResponseValidator,
};
use ringcast::proto::mask::apply_mask;
use ringcast::proto::OpCode;

/// Size of the read buffer a load thread shares among its connections.
const READ_BUF: usize = 256 * 1024;

/// How close to a scheduled send an open-loop connection stops sleeping and starts yielding:
/// one tick of the runtime's millisecond timer.
const SPIN: Duration = Duration::from_millis(1);

/// How long closing waits for the server's close frame.
const CLOSE_WAIT: Duration = Duration::from_secs(1);

/// A pong frame on the wire: header plus at most 125 bytes.
const PONG_MAX: usize = MAX_HEADER_LEN + 125;

/// Everything the connections of one load thread share. Single-threaded (`Rc`, `RefCell`): the
/// event loop runs one task at a time and no borrow is held across an `.await`.
pub(crate) struct Worker {
    /// The validated run.
    pub plan: Arc<Plan>,
    /// This thread's counts.
    pub stats: RefCell<Stats>,
    /// The one read buffer: a read is decoded completely before the next `.await`.
    read_buf: RefCell<Box<[u8]>>,
    /// The pre-encoded data frame, repeated.
    pub burst: Burst,
    /// The pre-encoded close frame.
    close: Vec<u8>,
    /// This thread's masking key (see [`codec::masked_frame`] on reusing keys).
    key: [u8; 4],
    /// Source of `Sec-WebSocket-Key` nonces.
    nonce: Cell<u64>,
    /// Completions over all threads, for the progress bar.
    pub progress: Arc<AtomicU64>,
    /// Bounds the handshakes in progress on this thread.
    pub pending: Semaphore,
    /// When this thread's measurement started.
    pub start: Cell<Instant>,
    /// The measure phase is running: bytes read now count as the run's wire bytes.
    pub measuring: Cell<bool>,
}

impl Worker {
    /// State for load thread `thread`; `seed` makes keys differ between runs and threads.
    pub fn new(plan: Arc<Plan>, thread: u32, seed: u64, progress: Arc<AtomicU64>) -> Worker {
        let mut nonce = splitmix(seed ^ u64::from(thread).wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let key = (nonce as u32).to_be_bytes();
        nonce = splitmix(nonce);
        let (opcode, fill) = if plan.text {
            (OpCode::Text, b'x')
        } else {
            (OpCode::Binary, 0xA5)
        };
        let frames: Vec<Vec<u8>> = if plan.json_payload {
            (0..content::VARIANTS)
                .map(|k| codec::masked_frame(opcode, &content::json_payload(plan.payload, k), key))
                .collect()
        } else {
            vec![codec::masked_frame(opcode, &vec![fill; plan.payload], key)]
        };
        let span = plan.duration + plan.ramp_up + DRAIN;
        let permits = (plan.max_pending / plan.threads).max(1) as usize;
        Worker {
            stats: RefCell::new(Stats::new(span)),
            read_buf: RefCell::new(vec![0; READ_BUF].into_boxed_slice()),
            burst: Burst::cycle(&frames, plan.owed_frames),
            close: codec::close_frame(key),
            key,
            nonce: Cell::new(nonce),
            progress,
            pending: Semaphore::new(permits),
            start: Cell::new(Instant::now()),
            measuring: Cell::new(false),
            plan,
        }
    }

    fn next_nonce(&self) -> [u8; 16] {
        let a = splitmix(self.nonce.get());
        let b = splitmix(a);
        self.nonce.set(b);
        let mut out = [0; 16];
        out[..8].copy_from_slice(&a.to_le_bytes());
        out[8..].copy_from_slice(&b.to_le_bytes());
        out
    }

    /// Largest server message accepted (inflated, when compressed): the echo of our payload, or
    /// a control frame (`fanout`: any envelope up to 1 MiB).
    fn max_message(&self) -> u64 {
        if self.plan.scenario == Scenario::Fanout {
            return 1 << 20;
        }
        (self.plan.payload as u64).max(125)
    }

    /// Largest server frame accepted: [`Worker::max_message`], plus what DEFLATE may add to
    /// incompressible data (a stored block costs 5 bytes per 64 KiB) when compression is offered.
    fn max_frame(&self) -> u64 {
        let max = self.max_message();
        if self.plan.deflate {
            max + max / 1024 + 64
        } else {
            max
        }
    }
}

/// SplitMix64: a small, well-mixed sequence for nonces and keys (not cryptographic; the RFC's
/// nonce only needs to differ per connection for a load tool).
fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = x;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// How messages are offered on a connection.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Pacing {
    /// `echo`: keep this many messages in flight; a new one goes out as each echo returns.
    Closed {
        /// Messages in flight.
        in_flight: usize,
    },
    /// `latency`: message `k` is due at `start + phase + k × interval`, whether or not earlier
    /// ones were answered (no coordinated omission).
    Open {
        /// Time between two messages on this connection.
        interval: Duration,
        /// This connection's offset, spreading connections evenly over one interval.
        phase: Duration,
    },
}

impl Pacing {
    fn due(&self, start: Instant, k: u64) -> Option<Instant> {
        match *self {
            Pacing::Closed { .. } => None,
            Pacing::Open { interval, phase } => {
                let offset = interval.as_nanos() as f64 * k as f64;
                Some(start + phase + Duration::from_nanos(offset as u64))
            }
        }
    }
}

/// What a read produced beyond messages.
enum ReadStatus {
    /// Bytes were consumed (or none were ready).
    Open,
    /// The server sent a close frame (its code and reason, as sent).
    Closed(ServerClose),
    /// The server closed the TCP connection.
    Eof,
}

/// How a pump ended.
pub(crate) enum Finish {
    /// Every message was answered and written: the stream is at a frame boundary.
    Clean,
    /// The drain time ran out with messages unanswered or bytes unwritten: no close handshake.
    Abandoned,
}

/// An open connection.
pub(crate) struct Conn {
    stream: TcpStream,
    frames: ServerFrames,
    /// `Some` in `--raw` mode: counts echoed bytes instead of decoding frames.
    raw: Option<RawCounter>,
    /// Bytes that arrived with the upgrade response, to decode before reading more.
    leftover: Vec<u8>,
    /// A pong to send: `pong[written..len]` is still due.
    pong: [u8; PONG_MAX],
    pong_len: usize,
    pong_written: usize,
    /// A newer ping arrived while a pong was half written; its pong follows.
    pong_next: Option<([u8; PONG_MAX], usize)>,
    /// Answer pings (always, except in `idle` without `--answer-pings`).
    answer_pings: bool,
    /// The connection was upgraded, so it ends with a close handshake (not in `--raw`, nor in
    /// the `fanout` baseline, whose writer sends plain frames over plain TCP).
    upgraded: bool,
    /// permessage-deflate, when offered (`--deflate`) and accepted by the server.
    inflate: Option<Box<ClientInflate>>,
}

/// Opens connection: TCP connect, `TCP_NODELAY`, then the upgrade (skipped in `--raw` and in the
/// `fanout` baseline phase).
pub(crate) async fn open(w: &Worker, answer_pings: bool) -> Result<Conn, ConnError> {
    let plan = &w.plan;
    let stream = TcpStream::connect(plan.target.addr)
        .await
        .map_err(|e| ConnError::Connect(e.kind()))?;
    stream.set_nodelay(true)?;
    let mut conn = Conn {
        stream,
        frames: ServerFrames::new(w.max_frame()),
        raw: plan.raw.then(|| RawCounter::new(w.burst.frame_len())),
        leftover: Vec::new(),
        pong: [0; PONG_MAX],
        pong_len: 0,
        pong_written: 0,
        pong_next: None,
        answer_pings,
        upgraded: !(plan.raw || plan.baseline_phase),
        inflate: None,
    };
    if !conn.upgraded {
        return Ok(conn);
    }
    // The crate's client handshake (§4.1): no subprotocol offered, so a server that selects one
    // fails the connection. With `--deflate` the tool adds its offer to the request and takes
    // the server's answer out of the response itself (the crate's client offers no extension).
    let key = ClientKey::from_nonce(w.next_nonce());
    let mut request = Vec::with_capacity(256);
    write_client_request(
        &plan.target.host_header,
        &plan.target.path,
        &key,
        &[],
        &mut request,
    )?;
    if plan.deflate {
        // Before the empty line that ends the head.
        request.truncate(request.len() - 2);
        request.extend_from_slice(b"Sec-WebSocket-Extensions: ");
        request.extend_from_slice(deflate::OFFER.as_bytes());
        request.extend_from_slice(b"\r\n\r\n");
    }
    conn.stream.write_all(&request).await?;
    let limits = HandshakeLimits::default();
    let mut response = ResponseValidator::new(&key, &[], limits);
    let mut head = Vec::with_capacity(1024);
    loop {
        if conn.stream.read_buf(&mut head).await? == 0 {
            return Err(ConnError::UpgradeEof);
        }
        let end = head
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .map(|at| at + 4);
        match end {
            Some(end) if plan.deflate => {
                let (rest, answer) = deflate::take_answer(&head[..end])?;
                match response.feed(&rest)? {
                    Parse::Complete(_accepted, len) if len == rest.len() => {}
                    _ => return Err(ConnError::UpgradeEof),
                }
                if let Some(answer) = answer {
                    conn.frames.allow_compression();
                    conn.inflate = Some(Box::new(ClientInflate::new(answer)));
                    w.stats.borrow_mut().deflate_negotiated += 1;
                }
                conn.leftover = head.split_off(end);
                return Ok(conn);
            }
            // Bounded: the validator fails once the head passes its byte limit (8 KiB).
            _ => {
                if let Parse::Complete(_accepted, len) = response.feed(&head)? {
                    conn.leftover = head.split_off(len);
                    return Ok(conn);
                }
            }
        }
    }
}

impl Conn {
    fn pong_pending(&self) -> bool {
        self.pong_written < self.pong_len
    }

    /// What to wait for: always readable; writable too while data (`owed` bytes) or a pong
    /// waits to be written.
    fn interest(&self, owed: usize) -> Interest {
        if owed > 0 || self.pong_pending() {
            Interest::READABLE | Interest::WRITABLE
        } else {
            Interest::READABLE
        }
    }

    /// Queues a pong for `ping`. §5.5.3: "If an endpoint receives a Ping frame and has not yet
    /// sent Pong frame(s) in response to previous Ping frame(s), the endpoint MAY elect to send a
    /// Pong frame for only the most recently processed Ping frame." An unstarted pong is
    /// replaced; a half-written one is finished first and the newest follows it.
    fn queue_pong(&mut self, ping: &[u8], key: [u8; 4]) {
        if self.pong_written == 0 || !self.pong_pending() {
            self.pong_len = codec::pong_frame(ping, key, &mut self.pong);
            self.pong_written = 0;
        } else {
            let mut next = [0; PONG_MAX];
            let len = codec::pong_frame(ping, key, &mut next);
            self.pong_next = Some((next, len));
        }
    }

    /// Decodes `bytes`, calling `on_message(len)` per data message; answers pings.
    fn process(
        &mut self,
        w: &Worker,
        bytes: &[u8],
        on_message: &mut impl FnMut(u64),
    ) -> Result<ReadStatus, ConnError> {
        self.process_tapped(w, bytes, on_message, &mut |_| {})
    }

    /// [`Conn::process`], also handing each piece of a data payload to `on_data` in order.
    fn process_tapped(
        &mut self,
        w: &Worker,
        bytes: &[u8],
        on_message: &mut impl FnMut(u64),
        on_data: &mut impl FnMut(&[u8]),
    ) -> Result<ReadStatus, ConnError> {
        if let Some(raw) = &mut self.raw {
            let payload = w.plan.payload as u64;
            for _ in 0..raw.feed(bytes.len()) {
                on_message(payload);
            }
            return Ok(ReadStatus::Open);
        }
        let mut closed = None;
        let mut ping: Option<([u8; 125], usize)> = None;
        let mut pings = 0;
        // permessage-deflate: a compressed message's pieces are gathered, inflated when it
        // ends, and only then handed to `on_data` and `on_message`, as if it had come plain.
        let inflate = RefCell::new(self.inflate.as_deref_mut());
        let on_data = RefCell::new(on_data);
        let mut inflate_error = None;
        let mut compressed_messages = 0u64;
        let max_message = w.max_message() as usize;
        self.frames.feed_tapped(
            bytes,
            |event| match event {
                Incoming::Message {
                    compressed: true, ..
                } => {
                    let mut inflate = inflate.borrow_mut();
                    let state = inflate
                        .as_deref_mut()
                        .expect("RSV1 is refused unless permessage-deflate was negotiated");
                    match state.finish(max_message) {
                        Ok(message) => {
                            compressed_messages += 1;
                            (on_data.borrow_mut())(message);
                            on_message(message.len() as u64);
                        }
                        Err(e) => {
                            inflate_error.get_or_insert(e);
                        }
                    }
                }
                Incoming::Message { len, .. } => on_message(len),
                Incoming::Ping(payload) => {
                    pings += 1;
                    let mut copy = [0; 125];
                    copy[..payload.len()].copy_from_slice(payload);
                    ping = Some((copy, payload.len()));
                }
                Incoming::Pong => {}
                Incoming::Close(frame) => closed = Some(ServerClose::from_frame(frame)),
            },
            |piece, compressed| match inflate.borrow_mut().as_deref_mut() {
                Some(state) if compressed => state.push(piece),
                _ => (on_data.borrow_mut())(piece),
            },
        )?;
        if let Some(e) = inflate_error {
            return Err(e.into());
        }
        if compressed_messages > 0 && w.measuring.get() {
            w.stats.borrow_mut().compressed_messages += compressed_messages;
        }
        if pings > 0 {
            let mut stats = w.stats.borrow_mut();
            stats.pings += pings;
            if let (true, Some((payload, len))) = (self.answer_pings, ping) {
                stats.pongs += 1;
                drop(stats);
                self.queue_pong(&payload[..len], w.key);
            }
        }
        Ok(match closed {
            Some(close) => ReadStatus::Closed(close),
            None => ReadStatus::Open,
        })
    }

    /// One non-blocking read into the thread's buffer, decoded at once.
    fn read(
        &mut self,
        w: &Worker,
        on_message: &mut impl FnMut(u64),
    ) -> Result<ReadStatus, ConnError> {
        self.read_tapped(w, on_message, &mut |_| {})
    }

    /// [`Conn::read`], also handing each piece of a data payload to `on_data` in order.
    fn read_tapped(
        &mut self,
        w: &Worker,
        on_message: &mut impl FnMut(u64),
        on_data: &mut impl FnMut(&[u8]),
    ) -> Result<ReadStatus, ConnError> {
        let mut buf = w.read_buf.borrow_mut();
        match self.stream.try_read(&mut buf) {
            Ok(0) => Ok(ReadStatus::Eof),
            Ok(n) => {
                if w.measuring.get() {
                    w.stats.borrow_mut().wire_bytes_in += n as u64;
                }
                self.process_tapped(w, &buf[..n], on_message, on_data)
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => Ok(ReadStatus::Open),
            Err(e) => Err(e.into()),
        }
    }

    /// One non-blocking write: a due pong at a frame boundary, else up to `owed` data bytes
    /// (stopping at the frame boundary when a pong waits).
    fn write(&mut self, w: &Worker, owed: &mut usize, sent: &mut u64) -> Result<(), ConnError> {
        let frame_len = w.burst.frame_len() as u64;
        let at_boundary = *sent % frame_len == 0;
        let result = if self.pong_pending() && at_boundary {
            let r = self
                .stream
                .try_write(&self.pong[self.pong_written..self.pong_len]);
            if let Ok(n) = r {
                self.pong_written += n;
                if !self.pong_pending() {
                    if let Some((next, len)) = self.pong_next.take() {
                        self.pong = next;
                        self.pong_len = len;
                        self.pong_written = 0;
                    }
                }
            }
            r.map(|_| ())
        } else if *owed > 0 {
            let mut limit = *owed;
            if self.pong_pending() {
                limit = limit.min((frame_len - *sent % frame_len) as usize);
            }
            let r = self.stream.try_write(w.burst.next(*sent, limit));
            if let Ok(n) = r {
                *sent += n as u64;
                *owed -= n;
            }
            r.map(|_| ())
        } else {
            Ok(())
        };
        match result {
            Err(e) if e.kind() != std::io::ErrorKind::WouldBlock => Err(e.into()),
            _ => Ok(()),
        }
    }

    /// `echo` and `latency`: offer messages until the deadline, then wait up to [`DRAIN`] for the
    /// outstanding echoes.
    pub(crate) async fn pump(&mut self, w: &Worker, pacing: Pacing) -> Result<Finish, ConnError> {
        let plan = &w.plan;
        let start = w.start.get();
        let deadline = start + plan.duration;
        let drain_end = deadline + DRAIN;
        let frame_len = w.burst.frame_len();
        let payload = plan.payload as u64;
        let (capacity, refill) = match pacing {
            Pacing::Closed { in_flight } => (in_flight, true),
            Pacing::Open { .. } => (plan.backlog_per_connection, false),
        };
        // Send times of the messages in flight, oldest first: TCP keeps order and an echo server
        // answers in order, so the next echo always belongs to the front entry.
        // `echo` never has more than `in_flight` entries; `latency` reserves a little and grows
        // only while the server falls behind, up to the backlog cap.
        let mut sent_at: VecDeque<Instant> = VecDeque::with_capacity(capacity.min(1024));
        let mut owed = 0usize;
        let mut sent = 0u64;
        let mut next = 0u64;
        if let Pacing::Closed { in_flight } = pacing {
            sent_at.extend(std::iter::repeat_n(start, in_flight));
            owed = in_flight * frame_len;
        }
        // Set by a message callback, checked at the top of the loop.
        let failure: Cell<Option<ConnError>> = Cell::new(None);
        let on_message =
            |len: u64, now: Instant, sent_at: &mut VecDeque<Instant>, owed: &mut usize| {
                let Some(then) = sent_at.pop_front() else {
                    failure.set(Some(ConnError::Unsolicited));
                    return;
                };
                if len != payload {
                    failure.set(Some(ConnError::EchoMismatch));
                }
                w.stats.borrow_mut().complete(
                    start,
                    deadline,
                    now,
                    Some(now.saturating_duration_since(then)),
                );
                if refill && now < deadline {
                    sent_at.push_back(now);
                    *owed += frame_len;
                }
            };
        let leftover = std::mem::take(&mut self.leftover);
        if !leftover.is_empty() {
            let now = Instant::now();
            let status = self.process(w, &leftover, &mut |len| {
                on_message(len, now, &mut sent_at, &mut owed)
            })?;
            check_open(status)?;
        }
        // One timer for the whole pump, re-armed only when its target changes.
        let timer = tokio::time::sleep_until(deadline.into());
        tokio::pin!(timer);
        loop {
            if let Some(e) = failure.take() {
                return Err(e);
            }
            let now = Instant::now();
            // Queue every message that is due; its send time is the schedule, not the write.
            while let Some(due) = pacing.due(start, next) {
                if due > now || due >= deadline {
                    break;
                }
                if sent_at.len() == capacity {
                    return Err(ConnError::Backlog);
                }
                w.stats.borrow_mut().lag(now - due);
                sent_at.push_back(due);
                owed += frame_len;
                next += 1;
            }
            if now >= deadline && sent_at.is_empty() && owed == 0 && !self.pong_pending() {
                return Ok(Finish::Clean);
            }
            if now >= drain_end {
                w.stats.borrow_mut().unanswered += sent_at.len() as u64;
                return Ok(Finish::Abandoned);
            }
            let wake = if now < deadline {
                pacing
                    .due(start, next)
                    .map_or(deadline, |due| due.min(deadline))
            } else {
                drain_end
            };
            // The runtime's timer has millisecond resolution, and a message sent late is charged
            // to the server (its round trip runs from the schedule). So an open-loop connection
            // sleeps until SPIN before its next message and then yields to the event loop until
            // the message is due: precise sends, for the price of a busy load core.
            let spin = matches!(pacing, Pacing::Open { .. })
                && now < deadline
                && wake.saturating_duration_since(now) <= SPIN;
            if !spin {
                let target = match pacing {
                    Pacing::Open { .. } if now < deadline => wake - SPIN,
                    _ => wake,
                };
                if timer.deadline() != target.into() {
                    timer.as_mut().reset(target.into());
                }
            }
            let interest = self.interest(owed);
            tokio::select! {
                ready = self.stream.ready(interest) => {
                    let ready = ready?;
                    if ready.is_readable() {
                        let before = w.stats.borrow().completed;
                        let now = Instant::now();
                        let status = self.read(w, &mut |len| {
                            on_message(len, now, &mut sent_at, &mut owed)
                        })?;
                        check_open(status)?;
                        let done = w.stats.borrow().completed - before;
                        w.progress.fetch_add(done, Ordering::Relaxed);
                    }
                    // Write what the read just made due without waiting for another readiness
                    // round: an echo's replacement goes out in the same turn of the loop.
                    if ready.is_writable() || owed > 0 || self.pong_pending() {
                        self.write(w, &mut owed, &mut sent)?;
                    }
                }
                () = &mut timer, if !spin => {}
                () = tokio::task::yield_now(), if spin => {}
            }
        }
    }

    /// `idle`: keep the connection open until `until`, answering pings if asked. Data messages
    /// the server sends are counted as completions without a round trip.
    pub(crate) async fn hold(&mut self, w: &Worker, until: Instant) -> Result<(), ConnError> {
        let start = w.start.get();
        let on_message = &mut |_len: u64| {
            w.stats
                .borrow_mut()
                .complete(start, until, Instant::now(), None);
            w.progress.fetch_add(1, Ordering::Relaxed);
        };
        self.read_until(w, until, || false, on_message, &mut |_| {})
            .await
    }

    /// The read loop of every scenario that only listens (`idle`, the `fanout` subscribers, the
    /// publisher between two sends, a join waiting for its reply): decodes what arrived with the
    /// upgrade, then reads as the socket becomes readable, answering pings, until `until`, or
    /// until `done()` holds after a read. `on_message` and `on_data` are as in
    /// [`Conn::process_tapped`].
    async fn read_until(
        &mut self,
        w: &Worker,
        until: Instant,
        done: impl Fn() -> bool,
        on_message: &mut impl FnMut(u64),
        on_data: &mut impl FnMut(&[u8]),
    ) -> Result<(), ConnError> {
        let leftover = std::mem::take(&mut self.leftover);
        check_open(self.process_tapped(w, &leftover, on_message, on_data)?)?;
        let timer = tokio::time::sleep_until(until.into());
        tokio::pin!(timer);
        // Only pongs are written here: no data is ever owed.
        let (mut owed, mut sent) = (0usize, 0u64);
        while !done() {
            let interest = self.interest(owed);
            tokio::select! {
                ready = self.stream.ready(interest) => {
                    let ready = ready?;
                    if ready.is_readable() {
                        check_open(self.read_tapped(w, on_message, on_data)?)?;
                    }
                    if ready.is_writable() {
                        self.write(w, &mut owed, &mut sent)?;
                    }
                }
                () = &mut timer => return Ok(()),
            }
        }
        Ok(())
    }

    /// Writes one masked text frame carrying `json` (built in `frame`, reused across calls).
    async fn send_text(
        &mut self,
        w: &Worker,
        json: &[u8],
        frame: &mut Vec<u8>,
    ) -> Result<(), ConnError> {
        let header = FrameHeader {
            fin: true,
            rsv: 0,
            opcode: OpCode::Text,
            mask: Some(w.key),
            payload_len: json.len() as u64,
        };
        let mut head = [0u8; MAX_HEADER_LEN];
        let head_len = header.encode(&mut head);
        frame.clear();
        frame.extend_from_slice(&head[..head_len]);
        frame.extend_from_slice(json);
        apply_mask(&mut frame[head_len..], w.key, 0);
        self.stream.write_all(frame).await?;
        Ok(())
    }

    /// `fanout` subscriber setup: joins `--room` with `"presence":false` (no `joined`/`left`
    /// events, so filling the room costs the server O(subscribers) frames, not O(subscribers²))
    /// and waits for the server's reply (the welcome read meanwhile is skipped). Runs in the open
    /// phase, unmeasured.
    pub(crate) async fn join(&mut self, w: &Worker) -> Result<(), ConnError> {
        let json = format!(
            r#"{{"v":1,"type":"join","room":"{}","id":"bench-join","presence":false}}"#,
            w.plan.room
        );
        let mut frame = Vec::with_capacity(json.len() + MAX_HEADER_LEN);
        self.send_text(w, json.as_bytes(), &mut frame).await?;
        // The current message's first bytes (enough to tell a reply and its `ok`).
        let text = RefCell::new(Vec::with_capacity(512));
        let verdict: Cell<Option<bool>> = Cell::new(None);
        let mut on_message = |_len: u64| {
            let mut t = text.borrow_mut();
            if contains(&t, br#""type":"reply""#) && contains(&t, br#""id":"bench-join""#) {
                verdict.set(Some(contains(&t, br#""ok":true"#)));
            }
            t.clear();
        };
        let mut on_data = |piece: &[u8]| {
            let mut t = text.borrow_mut();
            let room = 4096usize.saturating_sub(t.len());
            t.extend_from_slice(&piece[..piece.len().min(room)]);
        };
        let until = Instant::now() + w.plan.connect_timeout;
        let done = || verdict.get().is_some();
        self.read_until(w, until, done, &mut on_message, &mut on_data)
            .await?;
        match verdict.get() {
            Some(true) => Ok(()),
            Some(false) => Err(ConnError::JoinRefused),
            None => Err(ConnError::ConnectTimeout),
        }
    }

    /// `fanout` publisher: publishes to `--room` at `--rate` until the deadline, each payload
    /// `{"t":<unix µs at send>}` (with `--json-payload`: `{"t":…,"body":<JSON of --payload
    /// bytes>}`, cycling through the variants), `"echo":false`; reads (and skips) the server's
    /// replies.
    /// Messages are sent when due on the runtime's millisecond timer, so at high rates they leave
    /// in small bursts; each carries its own send time, so latency is unaffected by that.
    pub(crate) async fn publish(&mut self, w: &Worker) -> Result<(), ConnError> {
        let plan = &w.plan;
        let start = w.start.get();
        let deadline = start + plan.duration;
        let interval_ns = 1e9 / plan.rate as f64;
        let due = |k: u64| start + Duration::from_nanos((interval_ns * k as f64) as u64);
        let prefix = format!(
            r#"{{"v":1,"type":"publish","room":"{}","payload":{{"t":"#,
            plan.room
        );
        let suffix = br#"},"echo":false}"#;
        let bodies: Vec<Vec<u8>> = if plan.json_payload {
            (0..content::VARIANTS)
                .map(|k| {
                    let mut b = br#","body":"#.to_vec();
                    b.extend(content::json_payload(plan.payload, k));
                    b
                })
                .collect()
        } else {
            vec![Vec::new()]
        };
        let longest = bodies.iter().map(Vec::len).max().unwrap_or(0);
        let mut json = Vec::with_capacity(prefix.len() + 24 + longest + suffix.len());
        let mut frame = Vec::with_capacity(json.capacity() + MAX_HEADER_LEN);
        let mut k = 0u64;
        loop {
            let now = Instant::now();
            while due(k) <= now && due(k) < deadline {
                json.clear();
                json.extend_from_slice(prefix.as_bytes());
                push_u64(&mut json, unix_micros());
                json.extend_from_slice(&bodies[(k % bodies.len() as u64) as usize]);
                json.extend_from_slice(suffix);
                self.send_text(w, &json, &mut frame).await?;
                w.stats.borrow_mut().published += 1;
                k += 1;
            }
            let next = due(k);
            if next >= deadline {
                return Ok(());
            }
            self.read_until(w, next, || false, &mut |_| {}, &mut |_| {})
                .await?;
        }
    }

    /// `fanout` subscriber: until the deadline plus [`DRAIN`], scans every data message for the
    /// publisher's `"t":` send time and records the publish-to-delivery latency; messages
    /// without one (membership events, replies) are skipped. Allocation-free per message.
    pub(crate) async fn subscribe(&mut self, w: &Worker) -> Result<(), ConnError> {
        let start = w.start.get();
        let deadline = start + w.plan.duration;
        let until = deadline + DRAIN;
        let scan = Cell::new(SendTime::default());
        let mut on_message = |_len: u64| {
            let found = scan.replace(SendTime::default()).value();
            if let Some(t) = found {
                let latency = Duration::from_micros(unix_micros().saturating_sub(t));
                w.stats
                    .borrow_mut()
                    .complete(start, deadline, Instant::now(), Some(latency));
                w.progress.fetch_add(1, Ordering::Relaxed);
            }
        };
        let mut on_data = |piece: &[u8]| {
            let mut s = scan.get();
            s.feed(piece);
            scan.set(s);
        };
        self.read_until(w, until, || false, &mut on_message, &mut on_data)
            .await
    }

    /// Sends our close frame and waits up to [`CLOSE_WAIT`] for the server's (§5.5.1: "the
    /// endpoint MUST send a Close frame in response"). Counts a clean close; never fails the run.
    pub(crate) async fn close(mut self, w: &Worker) {
        if !self.upgraded {
            return;
        }
        let answered = tokio::time::timeout(CLOSE_WAIT, async {
            // Finish a half-written pong first: the close frame must start at a frame boundary.
            if self.pong_written > 0 && self.pong_pending() {
                let rest = &self.pong[self.pong_written..self.pong_len];
                self.stream.write_all(rest).await.ok()?;
            }
            self.stream.write_all(&w.close).await.ok()?;
            loop {
                self.stream.readable().await.ok()?;
                match self.read(w, &mut |_| {}) {
                    Ok(ReadStatus::Closed(_)) => return Some(()),
                    Ok(ReadStatus::Open) => {}
                    Ok(ReadStatus::Eof) | Err(_) => return None,
                }
            }
        })
        .await;
        if let Ok(Some(())) = answered {
            w.stats.borrow_mut().closed_cleanly += 1;
        }
    }
}

fn check_open(status: ReadStatus) -> Result<(), ConnError> {
    match status {
        ReadStatus::Open => Ok(()),
        ReadStatus::Closed(close) => Err(ConnError::Closed(close)),
        ReadStatus::Eof => Err(ConnError::Eof),
    }
}

/// Whether `needle` occurs in `hay`.
fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// The current time as unix microseconds (0 before 1970).
pub(crate) fn unix_micros() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

/// Appends `n` in decimal without allocating beyond `out`'s capacity.
pub(crate) fn push_u64(out: &mut Vec<u8>, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[i..]);
}

/// Finds the publisher's send time, the first `"t":<digits>` in a message, fed in pieces split
/// anywhere. The server's own keys (`"type"`, `"ts"`, …) never match `"t":`, and the payload is
/// forwarded as written, so the first match is the publisher's.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct SendTime {
    /// Bytes of `"t":` matched so far (4 = matched, reading digits).
    matched: u8,
    /// The digits read so far.
    value: u64,
    /// At least one digit was read.
    digits: bool,
    /// The number ended (a non-digit followed it).
    done: bool,
}

impl SendTime {
    const KEY: &'static [u8; 4] = br#""t":"#;

    /// Scans the next piece of the message.
    pub(crate) fn feed(&mut self, piece: &[u8]) {
        for &b in piece {
            if self.done {
                return;
            }
            if self.matched == 4 {
                if b.is_ascii_digit() {
                    self.value = self
                        .value
                        .saturating_mul(10)
                        .saturating_add(u64::from(b - b'0'));
                    self.digits = true;
                } else {
                    self.done = true;
                }
            } else if b == Self::KEY[self.matched as usize] {
                self.matched += 1;
            } else {
                self.matched = u8::from(b == Self::KEY[0]);
            }
        }
    }

    /// The send time, once its digits were seen.
    pub(crate) fn value(&self) -> Option<u64> {
        self.digits.then_some(self.value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_send_time_is_found_across_any_split() {
        let msg = br#"{"v":1,"type":"message","room":"r","seq":3,"from":"0:1.0","ts":1764081000123,"payload":{"t":1764081000123456}}"#;
        for cut in 0..msg.len() {
            let mut s = SendTime::default();
            s.feed(&msg[..cut]);
            s.feed(&msg[cut..]);
            assert_eq!(s.value(), Some(1_764_081_000_123_456), "cut at {cut}");
        }
        let mut s = SendTime::default();
        s.feed(br#"{"v":1,"type":"joined","room":"r","conn":"0:1.0","user":null,"name":null}"#);
        assert_eq!(s.value(), None);
    }

    #[test]
    fn decimal_digits_are_appended() {
        let mut out = Vec::new();
        push_u64(&mut out, 0);
        out.push(b' ');
        push_u64(&mut out, 1_764_081_000_123_456);
        assert_eq!(out, b"0 1764081000123456");
    }
}
