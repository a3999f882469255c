//! One connection: its state in the worker's table, and the task that serves it while it is active.
//!
//! Owns the I/O of one socket and nothing else: every protocol decision (what to reply, which close
//! code, when the connection is over) is the machine's ([`crate::proto::conn::Connection`]) or the
//! handshake module's.
//!
//! A connection has a task only while it is active. Readiness comes from the worker's reactor (one
//! epoll registration per connection for its whole life); a read is a non-blocking `recv` right
//! after readiness, into a pooled buffer that is given back as soon as every byte in it is
//! consumed; writes go through the ring. A connection that has
//! been quiet for [`PARK_AFTER`] with nothing to write *parks*: its task ends, leaving only its
//! [`ConnShared`] in the table (no task, no buffer, no tokio registration). Readiness, queued
//! output or a timer starts a new task ([`Worker::wake`]). That is what keeps an idle connection
//! small.

use std::borrow::Cow;
use std::cell::{Cell, RefCell, RefMut};
use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::pin::pin;
use std::rc::Rc;
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use futures_util::future::{Fuse, FusedFuture, FutureExt};
use tokio_uring::net::TcpStream;

use crate::proto::conn::{Compression, Connection, Event, SendError, State};
use crate::proto::error::{self, CLOSE_POLICY_VIOLATION};
use crate::security::auth::{TOKEN_EXPIRED_CLOSE_CODE, TOKEN_EXPIRED_REASON};
use crate::security::{Refusal, Verdict};
use crate::table::ConnKey;
use crate::time::wheel::TimerKey;

use super::admission::{self, ConnSecurity};
use super::app::{self, Session};
use super::notify::LocalNotify;
use super::route::{self, Endpoint, Incoming, Route};
use super::worker::{millis, EndpointLimits, Worker};

/// A connection with nothing to read or write for this long gives up its task.
pub const PARK_AFTER: Duration = Duration::from_secs(1);

/// At most this many chunks go into one vectored write (the kernel's IOV_MAX is 1024).
const MAX_IOV: usize = 512;

/// The close reason for a connection that stayed over its message limits.
const RATE_CLOSE_REASON: &str = error::REASON_MESSAGE_RATE;

/// A read is only issued with at least this much free space in the buffer.
const MIN_READ_SPACE: usize = 512;

/// Why a connection is dropped without (or before the end of) a closing handshake.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Timeout {
    /// The upgrade request did not complete within the handshake timeout.
    Handshake,
    /// We sent a close and the peer did not answer (or did not take our last bytes) in time.
    Close,
    /// The drain timeout passed during shutdown.
    Drain,
}

impl Timeout {
    fn reason(self) -> &'static str {
        match self {
            Timeout::Handshake => "handshake timeout",
            Timeout::Close => "close timeout: the peer did not complete the closing handshake",
            Timeout::Drain => "drain timeout",
        }
    }
}

/// Where a connection is in its life, as far as its timer is concerned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Reading the upgrade request; the timer is the handshake timeout.
    Handshake,
    /// WebSocket open; the timer is the heartbeat (ping, idle timeout), the park check, or, once a
    /// close was sent, the close timeout.
    Open,
    /// FIN sent; reading the peer's last bytes until its FIN. The timer bounds it.
    Linger,
}

/// How a WebSocket connection ended, for the close log line and the counters.
struct Ending {
    code: u16,
    reason: Cow<'static, str>,
}

/// Everything a connection keeps between activations; reached by the worker through the table.
pub struct ConnShared {
    stream: TcpStream,
    peer: SocketAddr,
    /// Tick (ms) of the accept.
    started: u64,
    /// Wakes the running task: output queued, readiness, a timer, shutdown.
    notify: LocalNotify,
    /// The single armed timer of this connection, if any.
    pub timer: Cell<Option<TimerKey>>,
    /// A task is serving this connection now. Invariant: set exactly while a task for it exists
    /// (set by [`Worker::wake`] before spawning, cleared by the task when it parks or ends).
    task_running: Cell<bool>,
    /// The reactor reported readiness that no read has consumed yet. It may be stale (an event
    /// for bytes an earlier read already took): reads never block, so that costs one `EAGAIN`.
    /// Cleared only once a read finds the socket drained (see [`read_some`]).
    readable: Cell<bool>,
    /// The timer asked the task to park at its next quiet moment.
    park_requested: Cell<bool>,
    phase: Cell<Phase>,
    kill: Cell<Option<Timeout>>,
    /// Tick of the last byte received: the heartbeat measures the peer's silence from here.
    last_read: Cell<u64>,
    /// Tick of the last read or completed write: parking measures quiet from here.
    last_busy: Cell<u64>,
    /// A heartbeat ping is outstanding since `last_read`.
    pinged: Cell<bool>,
    /// Drop TCP as soon as the queued bytes are written (idle timeout: the peer is presumed gone).
    drop_after_flush: Cell<bool>,
    endpoint: Cell<Endpoint>,
    /// Bytes of a partly received frame, kept across activations (empty, unallocated when idle).
    rbuf: RefCell<BytesMut>,
    ending: RefCell<Ending>,
    /// The upgrade succeeded: the connection speaks WebSocket.
    upgraded: Cell<bool>,
    /// The protocol machine of an upgraded connection. Dropped while the connection is parked
    /// and the machine is idle (an idle machine equals a new one), so a parked connection keeps
    /// neither the machine nor its header arena; made again on demand.
    machine: RefCell<Option<Box<Connection>>>,
    /// permessage-deflate as negotiated at the upgrade: what a machine made again after parking
    /// is given (its contexts are only dropped with it when no context takeover allows it).
    compression: Cell<Option<Compression>>,
    /// The `/ws` session (its key, its count of malformed envelopes); empty for other endpoints.
    pub session: Session,
    /// What the security policy granted (per-IP slots, identity, message guard, token expiry);
    /// `None` when there is nothing to keep, as under the default configuration.
    pub security: RefCell<Option<Box<ConnSecurity>>>,
    /// Refused at accept (address rules, per-IP limits): the task answers this and closes
    /// without reading a byte.
    refused: Cell<Option<Box<Refusal>>>,
}

impl ConnShared {
    /// Records a readiness event from the reactor.
    pub fn mark_readable(&self) {
        self.readable.set(true);
    }

    /// Whether a task serves the connection now.
    pub fn task_running(&self) -> bool {
        self.task_running.get()
    }

    /// Marks the connection as served by a new task (see [`Worker::wake`]).
    pub fn set_task_running(&self) {
        self.task_running.set(true);
    }

    /// Wakes the running task, if any.
    pub fn notify(&self) {
        self.notify.notify();
    }

    /// The machine of an upgraded connection, made anew (with its endpoint's limits) if it was
    /// dropped while parked; `None` before the upgrade.
    pub fn machine(&self, limits: &EndpointLimits) -> Option<RefMut<'_, Connection>> {
        if !self.upgraded.get() {
            return None;
        }
        let limits = limits.of(self.endpoint.get());
        let guard = self.machine.borrow_mut();
        Some(RefMut::map(guard, |m| {
            &mut **m.get_or_insert_with(|| {
                Box::new(Connection::with_compression(
                    *limits,
                    self.compression.get(),
                ))
            })
        }))
    }

    /// Makes the task drop the TCP connection at once (the caller wakes it).
    fn kill(&self, why: Timeout) {
        if self.kill.get().is_none() {
            self.kill.set(Some(why));
        }
    }
}

/// Takes an accepted socket into the worker: table slot, reactor registration, handshake timer.
/// No task is started until the client sends something.
pub fn accept(worker: &Rc<Worker>, stream: TcpStream, peer: SocketAddr) {
    let now = worker.now();
    let (security, refused) = match admission::at_accept(worker, peer) {
        Ok(permit) => (admission::accepted(permit), None),
        Err(refusal) => (None, Some(Box::new(refusal))),
    };
    let answer_now = refused.is_some();
    let fd = stream.as_raw_fd();
    let conn = Rc::new(ConnShared {
        stream,
        peer,
        started: now,
        notify: LocalNotify::default(),
        timer: Cell::new(None),
        task_running: Cell::new(false),
        readable: Cell::new(false),
        park_requested: Cell::new(false),
        phase: Cell::new(Phase::Handshake),
        kill: Cell::new(None),
        last_read: Cell::new(now),
        last_busy: Cell::new(now),
        pinged: Cell::new(false),
        drop_after_flush: Cell::new(false),
        endpoint: Cell::new(Endpoint::Echo),
        rbuf: RefCell::new(BytesMut::new()),
        ending: RefCell::new(Ending {
            code: error::CLOSE_ABNORMAL,
            reason: Cow::Borrowed(error::REASON_ABNORMAL),
        }),
        upgraded: Cell::new(false),
        machine: RefCell::new(None),
        compression: Cell::new(None),
        session: Session::default(),
        security: RefCell::new(security),
        refused: Cell::new(refused),
    });
    let key = worker.table.borrow_mut().insert(conn.clone());
    if let Err(e) = worker.reactor.register(fd, key) {
        tracing::warn!(%peer, error = %e, "cannot register socket with the reactor; dropping it");
        worker.table.borrow_mut().remove(key);
        return;
    }
    worker.arm(
        key,
        &conn.timer,
        now + millis(worker.config().handshake_timeout),
    );
    if answer_now {
        // Refused at accept: answer at once, nothing from this peer will be read.
        worker.wake(key, &conn);
    }
}

/// Handles the expiry of connection `key`'s timer.
pub fn on_timer(worker: &Rc<Worker>, key: ConnKey, conn: &Rc<ConnShared>, now: u64) {
    conn.timer.set(None);
    match conn.phase.get() {
        Phase::Handshake => {
            conn.kill(Timeout::Handshake);
            worker.wake(key, conn);
        }
        Phase::Linger => {
            conn.kill(Timeout::Close);
            worker.wake(key, conn);
        }
        Phase::Open => {
            let cfg = worker.config();
            let (ping, idle) = (millis(cfg.ping_interval), millis(cfg.idle_timeout));
            let Some(mut machine) = conn.machine(&worker.conn_limits) else {
                return;
            };
            if machine.state() != State::Open || conn.drop_after_flush.get() {
                conn.kill(Timeout::Close);
                worker.wake(key, conn);
                return;
            }
            let expires_at = admission::expires_at(conn);
            if expires_at.is_some_and(|at| now >= at) {
                machine.close(TOKEN_EXPIRED_CLOSE_CODE, TOKEN_EXPIRED_REASON);
                *conn.ending.borrow_mut() = Ending {
                    code: TOKEN_EXPIRED_CLOSE_CODE,
                    reason: Cow::Borrowed(TOKEN_EXPIRED_REASON),
                };
                worker.wake(key, conn);
                return;
            }
            let last = conn.last_read.get();
            let silent = now.saturating_sub(last);
            if silent >= idle {
                machine.close(error::CLOSE_GOING_AWAY, error::REASON_IDLE_TIMEOUT);
                conn.drop_after_flush.set(true);
                worker.wake(key, conn);
                return;
            }
            if silent >= ping && !conn.pinged.get() {
                machine.send_ping(b"ringcast");
                conn.pinged.set(true);
                worker.stats().pings_sent.add(1);
                worker.wake(key, conn);
            }
            let mut next = (last + if conn.pinged.get() { idle } else { ping })
                .min(expires_at.unwrap_or(u64::MAX));
            if conn.task_running.get() && !conn.park_requested.get() {
                let park_due = conn.last_busy.get() + millis(PARK_AFTER);
                if now >= park_due {
                    conn.park_requested.set(true);
                    conn.notify();
                } else {
                    next = next.min(park_due);
                }
            }
            worker.arm(key, &conn.timer, next);
        }
    }
}

/// Starts the closing handshake with 1001 "going away" (shutdown), or drops a connection that has
/// not finished its handshake.
pub fn go_away(worker: &Rc<Worker>, key: ConnKey, conn: &Rc<ConnShared>) {
    let upgraded = match conn.machine(&worker.conn_limits) {
        Some(mut machine) => {
            machine.close(error::CLOSE_GOING_AWAY, error::REASON_GOING_AWAY);
            true
        }
        None => false,
    };
    if upgraded {
        worker.arm(
            key,
            &conn.timer,
            worker.now() + millis(worker.config().close_timeout),
        );
    } else {
        conn.kill(Timeout::Drain);
    }
    worker.wake(key, conn);
}

/// Drops a connection at once (the drain timeout passed).
pub fn kill_now(worker: &Rc<Worker>, key: ConnKey, conn: &Rc<ConnShared>) {
    conn.kill(Timeout::Drain);
    worker.wake(key, conn);
}

/// What an activation ended with.
enum Outcome {
    /// Quiet: the task ends, the connection stays in the table.
    Parked,
    /// The connection is over.
    Done,
}

/// Why serving stopped early.
enum Stop {
    /// The peer closed its side of the TCP connection.
    Eof,
    /// A timer or the drain dropped the connection.
    Killed(Timeout),
    /// The socket failed.
    Io(io::Error),
}

/// The task of an active connection; spawned by [`Worker::wake`].
pub async fn activate(worker: Rc<Worker>, key: ConnKey, conn: Rc<ConnShared>) {
    match drive(&worker, key, &conn).await {
        // Decided with no `.await` since the last check, so nothing can have slipped in between.
        Outcome::Parked => conn.task_running.set(false),
        Outcome::Done => teardown(&worker, key, &conn),
    }
}

async fn drive(worker: &Rc<Worker>, key: ConnKey, conn: &Rc<ConnShared>) -> Outcome {
    if conn.phase.get() == Phase::Handshake && !handshake(worker, key, conn).await {
        return Outcome::Done;
    }
    let result = websocket(worker, key, conn).await;
    let mut ending = conn.ending.borrow_mut();
    match result {
        Ok(Step::Park) => return Outcome::Parked,
        Ok(Step::Linger) => {
            drop(ending);
            linger(worker, key, conn).await;
            return Outcome::Done;
        }
        Err(Stop::Eof) => {}
        Err(Stop::Killed(kill)) => ending.reason = Cow::Borrowed(kill.reason()),
        Err(Stop::Io(e)) => ending.reason = Cow::Owned(format!("I/O error: {e}")),
    }
    Outcome::Done
}

/// Removes a finished connection from the worker; counts and logs it once.
fn teardown(worker: &Worker, key: ConnKey, conn: &ConnShared) {
    worker.reactor.deregister(conn.stream.as_raw_fd());
    worker.disarm(&conn.timer);
    worker.table.borrow_mut().remove(key);
    app::on_close(worker, key, conn);
    if let Some(mut pending) = Some(conn.rbuf.take()).filter(|b| b.capacity() > 0) {
        pending.clear();
        worker.pool.borrow_mut().give_read(pending);
    }
    // Gives back the per-IP slots, upgraded or not.
    drop(conn.security.take());
    if !conn.upgraded.get() {
        return;
    }
    let stats = worker.stats();
    let ending = conn.ending.borrow();
    stats.connections_open.sub(1);
    stats.closed(ending.code);
    worker.shared.release_connection();
    tracing::info!(
        conn = %worker.conn_id(key),
        peer = %conn.peer,
        duration_ms = worker.refresh_now().saturating_sub(conn.started),
        code = ending.code,
        reason = %ending.reason,
        "connection closed"
    );
}

/// Reads and answers the first request. Returns `true` once the connection is upgraded.
async fn handshake(worker: &Rc<Worker>, key: ConnKey, conn: &Rc<ConnShared>) -> bool {
    let peer = conn.peer;
    if let Some(refusal) = conn.refused.take() {
        worker.stats().rejected((&*refusal).into());
        admission::log_refusal(worker, peer, None, &refusal);
        let mut bytes = Vec::with_capacity(256);
        refusal.render(&mut bytes);
        let _ = write_all(worker, conn, Bytes::from(bytes)).await;
        linger(worker, key, conn).await;
        return false;
    }
    let (request, leftover) = match route::read_request(worker, conn).await {
        Ok(Incoming::Request(request, leftover)) => (request, leftover),
        Ok(Incoming::Invalid(err)) => {
            worker
                .stats()
                .rejected(crate::metrics::Rejection::from_status(err.status()));
            if worker.refusal_log.admit(worker.now()) {
                tracing::info!(%peer, status = err.status(), reason = %err, "handshake refused");
            }
            if let Route::Respond { bytes, .. } = route::refusal(err) {
                let _ = write_all(worker, conn, Bytes::from(bytes)).await;
            }
            linger(worker, key, conn).await;
            return false;
        }
        Ok(Incoming::Gone) | Err(StopReading::Gone) => return false,
        Err(StopReading::Timeout) => {
            worker.stats().rejected(crate::metrics::Rejection::Timeout);
            if worker.refusal_log.admit(worker.now()) {
                tracing::info!(%peer, "handshake timeout");
            }
            return false;
        }
    };
    let (endpoint, admitted) = match route::route(worker, &request, peer.ip()) {
        Route::Respond { bytes, rejection } => {
            match rejection {
                Some(why) => count_and_log_refusal(worker, peer, request.path(), &why),
                None => worker.stats().http_requests.add(1),
            }
            let _ = write_all(worker, conn, Bytes::from(bytes)).await;
            linger(worker, key, conn).await;
            return false;
        }
        Route::Upgrade {
            response,
            endpoint,
            admitted,
            compression,
        } => {
            conn.compression
                .set(compression.map(|c| worker.compression.for_connection(c)));
            if write_all(worker, conn, Bytes::from(response))
                .await
                .is_err()
            {
                worker.shared.release_connection();
                return false;
            }
            (endpoint, admitted)
        }
    };
    let accepted = conn.security.take();
    *conn.security.borrow_mut() = admission::on_upgrade(worker, accepted, admitted);
    let stats = worker.stats();
    stats.handshakes_accepted.add(1);
    stats.connections_open.add(1);
    // The endpoint first: the machine, made on first use after `upgraded`, takes its limits.
    conn.endpoint.set(endpoint);
    conn.upgraded.set(true);
    if endpoint == Endpoint::Ws {
        app::on_open(worker, key, conn);
    }
    conn.phase.set(Phase::Open);
    let now = worker.now();
    conn.last_read.set(now);
    conn.last_busy.set(now);
    tracing::info!(conn = %worker.conn_id(key), %peer, path = %request.path(), "connection open");
    if !leftover.is_empty() {
        *conn.rbuf.borrow_mut() = leftover;
        process(worker, conn);
    }
    true
}

/// Counts a refused request and logs it (within the worker's refusal log budget).
fn count_and_log_refusal(worker: &Worker, peer: SocketAddr, path: &str, why: &route::Refused) {
    worker.stats().rejected(why.rejection());
    match why {
        route::Refused::Security(refusal) => {
            admission::log_refusal(worker, peer, Some(path), refusal)
        }
        route::Refused::Server(why) => {
            if worker.refusal_log.admit(worker.now()) {
                tracing::info!(%peer, path, reason = why.label(), "request refused");
            }
        }
    }
}

/// How the WebSocket loop of one activation ended without an error.
enum Step {
    /// Quiet: give up the task.
    Park,
    /// The closing handshake is over (or we give up on it): FIN, then wait for the peer's.
    Linger,
}

/// Moves bytes between the socket and the machine. Reading and writing proceed concurrently: a
/// peer that does not read stalls only its own write, while its input is still read and its
/// output queue grows until the machine's backpressure policy acts.
async fn websocket(worker: &Rc<Worker>, key: ConnKey, conn: &Rc<ConnShared>) -> Result<Step, Stop> {
    let cfg = worker.config();
    let now = worker.now();
    let heartbeat = conn.last_read.get()
        + millis(if conn.pinged.get() {
            cfg.idle_timeout
        } else {
            cfg.ping_interval
        });
    conn.park_requested.set(false);
    let expiry = admission::expires_at(conn).unwrap_or(u64::MAX);
    worker.arm(
        key,
        &conn.timer,
        heartbeat.min(now + millis(PARK_AFTER)).min(expiry),
    );

    let mut write = pin!(Fuse::terminated());
    let mut in_flight = 0usize;
    let mut close_timer_armed = false;
    let mut eof = false;
    loop {
        if let Some(kill) = conn.kill.get() {
            return Err(Stop::Killed(kill));
        }
        let state = conn
            .machine(&worker.conn_limits)
            .map_or(State::Closed, |m| m.state());
        if write.is_terminated() {
            let mut iov = worker.pool.borrow_mut().take_iov();
            in_flight = conn
                .machine(&worker.conn_limits)
                .map_or(0, |mut m| m.poll_transmit(&mut iov));
            if iov.is_empty() {
                worker.pool.borrow_mut().give_iov(iov);
                if state == State::Closed || conn.drop_after_flush.get() {
                    if conn.drop_after_flush.get() {
                        let mut ending = conn.ending.borrow_mut();
                        if ending.code == error::CLOSE_ABNORMAL {
                            *ending = Ending {
                                code: error::CLOSE_GOING_AWAY,
                                reason: Cow::Borrowed(error::REASON_IDLE_TIMEOUT),
                            };
                        }
                    }
                    return if eof {
                        Err(Stop::Eof)
                    } else {
                        Ok(Step::Linger)
                    };
                }
                if eof {
                    return Err(Stop::Eof);
                }
                if conn.park_requested.get() && !conn.readable.get() && state == State::Open {
                    conn.park_requested.set(false);
                    let mut machine = conn.machine.borrow_mut();
                    match machine.as_deref_mut() {
                        Some(m) if m.is_idle() => *machine = None,
                        // Kept (a context under context takeover, a message in progress): it
                        // still gives up the compression contexts that hold no state.
                        Some(m) => m.release_idle_contexts(),
                        None => {}
                    }
                    return Ok(Step::Park);
                }
            } else {
                write.set(write_all_chunks(&conn.stream, iov).fuse());
            }
        }
        if (state == State::Closing || conn.drop_after_flush.get()) && !close_timer_armed {
            // We sent a close: the peer has `close_timeout` to answer (or, after an idle timeout,
            // to take our last bytes) before the TCP connection is dropped.
            close_timer_armed = true;
            worker.arm(key, &conn.timer, worker.now() + millis(cfg.close_timeout));
        }
        let can_read = !eof && state != State::Closed && conn.readable.get();
        tokio::select! {
            biased;
            (res, iov) = &mut write => {
                worker.pool.borrow_mut().give_iov(iov);
                res.map_err(Stop::Io)?;
                if let Some(mut machine) = conn.machine(&worker.conn_limits) {
                    machine.on_written(in_flight);
                }
                worker.stats().bytes_out.add(in_flight as u64);
                conn.last_busy.set(worker.now());
            }
            () = conn.notify.notified(), if !can_read => {}
            () = std::future::ready(()), if can_read => {
                let mut buf = conn.rbuf.take();
                let want = conn.machine(&worker.conn_limits).map_or(0, |m| m.read_hint());
                let read = read_some(worker, conn, &mut buf, want).await;
                *conn.rbuf.borrow_mut() = buf;
                match read.map_err(Stop::Io)? {
                    None => {}
                    Some(0) => {
                        eof = true;
                        if let Some(mut machine) = conn.machine(&worker.conn_limits) {
                            machine.handle_eof();
                        }
                    }
                    Some(n) => {
                        worker.stats().bytes_in.add(n as u64);
                        let now = worker.now();
                        conn.last_read.set(now);
                        conn.last_busy.set(now);
                        conn.pinged.set(false);
                        conn.park_requested.set(false);
                    }
                }
                process(worker, conn);
            }
        }
    }
}

/// Feeds the buffered bytes to the machine and handles every event it produces; gives the read
/// buffer back to the pool once it is empty.
fn process(worker: &Worker, conn: &ConnShared) {
    let mut rbuf = conn.rbuf.borrow_mut();
    let Some(mut machine) = conn.machine(&worker.conn_limits) else {
        return;
    };
    let stats = worker.stats();
    let endpoint = conn.endpoint.get();
    let mut ending = conn.ending.borrow_mut();
    // One message at a time: the reply to a message goes out before anything the machine decides
    // about the bytes behind it (a valid message followed by a violation is echoed, then failed).
    loop {
        let more = machine.handle_read_until_message(&mut rbuf);
        while let Some(event) = machine.poll_event() {
            match event {
                Event::Message { kind, payload } => {
                    stats.messages_in.add(1);
                    let verdict = admission::check_message(worker, conn, payload.len());
                    if verdict != Verdict::Ok {
                        stats.messages_rate_limited.add(1);
                    }
                    match (verdict, endpoint) {
                        (Verdict::Ok, Endpoint::Echo) => {
                            match worker
                                .compression
                                .send(&mut machine, kind, payload.freeze())
                            {
                                Ok(()) => stats.messages_out.add(1),
                                // A slow consumer is counted here, when the send overflows
                                // (as `app::queue` does on `/ws`), not at its event: the event
                                // is only seen if the peer sends again, the error always.
                                Err(SendError::Dropped | SendError::SlowConsumer) => {
                                    stats.slow_consumers.add(1)
                                }
                                Err(SendError::Closed) => {}
                            }
                        }
                        (Verdict::Ok, Endpoint::Ws) => {
                            app::on_message(worker, conn, &mut machine, kind, payload)
                        }
                        (Verdict::RateLimited, Endpoint::Ws) => {
                            app::on_rate_limited(worker, &mut machine, kind, &payload)
                        }
                        // `/echo` has no reply to refuse one message with: the first message
                        // over the limit ends the connection, as staying over does on `/ws`.
                        (Verdict::RateLimited, Endpoint::Echo) | (Verdict::Close, _) => {
                            machine.close(CLOSE_POLICY_VIOLATION, RATE_CLOSE_REASON);
                            *ending = Ending {
                                code: CLOSE_POLICY_VIOLATION,
                                reason: Cow::Borrowed(RATE_CLOSE_REASON),
                            };
                        }
                    }
                }
                Event::Ping(_) | Event::Pong(_) => {}
                Event::PeerClosed { code, reason } => {
                    *ending = Ending {
                        code: code.unwrap_or(1005),
                        reason: Cow::Owned(String::from_utf8_lossy(&reason).into_owned()),
                    };
                }
                Event::Failed(err) => {
                    *ending = Ending {
                        code: err.close_code(),
                        reason: Cow::Borrowed(err.reason()),
                    }
                }
                // Already counted by the send that overflowed (see above).
                Event::SlowConsumer => {
                    *ending = Ending {
                        code: CLOSE_POLICY_VIOLATION,
                        reason: Cow::Borrowed(error::REASON_SLOW_CONSUMER),
                    };
                }
            }
        }
        if !more {
            break;
        }
    }
    if rbuf.is_empty() && rbuf.capacity() > 0 {
        worker
            .pool
            .borrow_mut()
            .give_read(std::mem::take(&mut *rbuf));
    }
}

/// Reads what the socket has into `buf` (a pooled buffer when `buf` has none) with one
/// non-blocking `recv` straight into the buffer's free space: no ring round trip between the
/// reactor's readiness and the bytes. `None`: the readiness was stale (the socket had nothing) and
/// nothing was read.
///
/// Invariants:
/// - Never blocks, so never waits holding a buffer: a stale `readable` costs one `EAGAIN`, after
///   which `readable` is cleared and an empty buffer goes back to the pool.
/// - `readable` is cleared only once the socket is known drained: the read came back short of
///   the room it was given (TCP `recv` copies the whole receive queue up to that room). Any byte
///   arriving later raises a new edge-triggered event, which sets `readable` again.
/// - `want` is how many more bytes finish the frame in progress (the machine's read hint). Room
///   for them plus [`MIN_READ_SPACE`] is reserved up front, so a large frame arrives in as few
///   reads as possible and the read that completes it is still short of its room, which proves
///   the socket drained without one more `recv`.
/// - Each read spends one unit of tokio's cooperative budget: a peer that keeps the socket full
///   cannot keep this task from yielding to the worker's other tasks.
async fn read_some(
    worker: &Worker,
    conn: &ConnShared,
    buf: &mut BytesMut,
    want: usize,
) -> io::Result<Option<usize>> {
    let mut owned = if buf.capacity() == 0 {
        worker.pool.borrow_mut().take_read()
    } else {
        std::mem::take(buf)
    };
    let room = want.saturating_add(MIN_READ_SPACE);
    if owned.capacity() - owned.len() < room {
        owned.reserve(room.max(worker.pool.borrow().read_size()));
    }
    let space = owned.capacity() - owned.len();
    let read = recv_now(&conn.stream, &mut owned);
    *buf = owned;
    if buf.is_empty() {
        worker.pool.borrow_mut().give_read(std::mem::take(buf));
    }
    match read {
        Ok(n) => {
            if n < space {
                conn.readable.set(false);
            }
            tokio::task::consume_budget().await;
            Ok(Some(n))
        }
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
            conn.readable.set(false);
            Ok(None)
        }
        // Interrupted by a signal before any byte was copied: `readable` still holds, try again.
        Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok(None),
        Err(e) => Err(e),
    }
}

/// One non-blocking `recv` into the free space of `buf`, appending what it read.
#[allow(unsafe_code)]
fn recv_now(stream: &TcpStream, buf: &mut BytesMut) -> io::Result<usize> {
    // SAFETY: the fd is `stream`'s open socket, and `stream` is borrowed for this whole call.
    let fd = unsafe { BorrowedFd::borrow_raw(stream.as_raw_fd()) };
    let n = socket2::SockRef::from(&fd)
        .recv_with_flags(buf.spare_capacity_mut(), libc::MSG_DONTWAIT)?;
    // SAFETY: `recv` initialised the first `n` bytes of the spare capacity (it returns at most
    // the length it was given), so the buffer's first `len + n` bytes are initialised.
    unsafe { buf.set_len(buf.len() + n) };
    Ok(n)
}

/// Waits for readiness (or a kill) and reads into `buf`; for the handshake and the linger, where
/// nothing else needs the task meanwhile.
async fn wait_and_read(
    worker: &Worker,
    conn: &ConnShared,
    buf: &mut BytesMut,
) -> Result<usize, Stop> {
    loop {
        if let Some(kill) = conn.kill.get() {
            return Err(Stop::Killed(kill));
        }
        if conn.readable.get() {
            if let Some(n) = read_some(worker, conn, buf, 0).await.map_err(Stop::Io)? {
                return Ok(n);
            }
            continue;
        }
        conn.notify.notified().await;
    }
}

/// Writes one buffer completely, unless the connection is killed first.
async fn write_all(worker: &Worker, conn: &ConnShared, bytes: Bytes) -> Result<(), Stop> {
    let mut iov = worker.pool.borrow_mut().take_iov();
    iov.push(bytes);
    let mut op = pin!(write_all_chunks(&conn.stream, iov));
    let (res, iov) = loop {
        tokio::select! {
            biased;
            out = &mut op => break out,
            () = conn.notify.notified() => {
                if let Some(kill) = conn.kill.get() {
                    return Err(Stop::Killed(kill));
                }
            }
        }
    };
    worker.pool.borrow_mut().give_iov(iov);
    res.map_err(Stop::Io)
}

/// Writes every chunk of `iov` completely: vectored, at most [`MAX_IOV`] chunks per call, resuming
/// after partial writes. Returns the emptied list for reuse.
async fn write_all_chunks(stream: &TcpStream, mut iov: Vec<Bytes>) -> (io::Result<()>, Vec<Bytes>) {
    while !iov.is_empty() {
        let rest = (iov.len() > MAX_IOV).then(|| iov.split_off(MAX_IOV));
        let (res, mut back) = if iov.len() == 1 {
            let one = iov.pop().expect("one chunk");
            let (res, one) = stream.write(one).submit().await;
            iov.push(one);
            (res, iov)
        } else {
            stream.writev(iov).await
        };
        let written = match res {
            Ok(0) => Err(io::ErrorKind::WriteZero.into()),
            other => other,
        };
        match written {
            Ok(n) => consume(&mut back, n),
            Err(e) => {
                back.clear();
                return (Err(e), back);
            }
        }
        if let Some(rest) = rest {
            back.extend(rest);
        }
        iov = back;
    }
    (Ok(()), iov)
}

/// Ends the TCP connection politely: FIN first, then read and discard until the peer's FIN (or
/// the close timeout), so unread bytes never turn our close into a reset that could destroy the
/// close frame we just sent.
async fn linger(worker: &Worker, key: ConnKey, conn: &ConnShared) {
    let _ = conn.stream.shutdown(std::net::Shutdown::Write);
    conn.phase.set(Phase::Linger);
    worker.arm(
        key,
        &conn.timer,
        worker.now() + millis(worker.config().close_timeout),
    );
    let mut scratch = BytesMut::new();
    while let Ok(n) = wait_and_read(worker, conn, &mut scratch).await {
        if n == 0 {
            break;
        }
        scratch.clear();
    }
    if scratch.capacity() > 0 {
        scratch.clear();
        worker.pool.borrow_mut().give_read(scratch);
    }
}

/// Reads for the handshake: the route module parses.
pub(super) async fn read_for_handshake(
    worker: &Worker,
    conn: &ConnShared,
    buf: &mut BytesMut,
) -> Result<usize, StopReading> {
    wait_and_read(worker, conn, buf)
        .await
        .map_err(|stop| match stop {
            Stop::Killed(Timeout::Handshake) => StopReading::Timeout,
            _ => StopReading::Gone,
        })
}

/// Why the handshake read stopped.
pub(super) enum StopReading {
    /// The handshake timeout passed.
    Timeout,
    /// The peer went away, the socket failed, or the server is dropping the connection.
    Gone,
}

/// Drops the first `n` written bytes from the front of `iov`.
fn consume(iov: &mut Vec<Bytes>, mut n: usize) {
    let mut done = 0;
    while done < iov.len() && n >= iov[done].len() {
        n -= iov[done].len();
        done += 1;
    }
    iov.drain(..done);
    if n > 0 {
        iov[0].advance(n);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consume_drops_whole_chunks_and_advances_a_partial_one() {
        let mut iov = vec![
            Bytes::from_static(b"abc"),
            Bytes::from_static(b"defg"),
            Bytes::from_static(b"h"),
        ];
        consume(&mut iov, 5);
        assert_eq!(
            iov,
            vec![Bytes::from_static(b"fg"), Bytes::from_static(b"h")]
        );
        consume(&mut iov, 3);
        assert!(iov.is_empty());
    }
}
