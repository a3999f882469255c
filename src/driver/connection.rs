//! One connection's task: read the upgrade request, answer it, then move bytes between the socket
//! and the protocol machine until the connection ends.
//!
//! Owns the I/O of one socket and nothing else: every protocol decision (what to reply, which close
//! code, when the connection is over) is the machine's ([`crate::proto::conn::Connection`]) or the
//! handshake module's. Never holds a read buffer while idle: it waits for readiness first
//! (`AsyncFd`, no buffer), then reads through the ring into a pooled buffer, and gives the buffer
//! back once every byte in it has been consumed.

use std::cell::{Cell, RefCell};
use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, RawFd};
use std::pin::pin;
use std::rc::Rc;

use bytes::{Buf, Bytes, BytesMut};
use futures_util::future::{Fuse, FusedFuture, FutureExt};
use tokio::io::unix::{AsyncFd, AsyncFdReadyGuard};
use tokio::io::Interest;
use tokio_uring::buf::BoundedBuf;
use tokio_uring::net::TcpStream;

use crate::proto::conn::{Connection, Event, SendError, State};
use crate::table::ConnKey;
use crate::time::wheel::TimerKey;

use super::notify::LocalNotify;
use super::route::{self, Route};
use super::worker::{millis, Worker};

/// At most this many chunks go into one vectored write (the kernel's IOV_MAX is 1024).
const MAX_IOV: usize = 512;

/// A read is only issued with at least this much free space in the buffer.
const MIN_READ_SPACE: usize = 512;

/// Why a connection is being dropped without (or before the end of) a closing handshake.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kill {
    /// The upgrade request did not complete within the handshake timeout.
    HandshakeTimeout,
    /// We sent a close and the peer did not answer within the close timeout.
    CloseTimeout,
    /// The drain timeout passed during shutdown.
    DrainTimeout,
}

impl Kill {
    fn reason(self) -> &'static str {
        match self {
            Kill::HandshakeTimeout => "handshake timeout",
            Kill::CloseTimeout => "close timeout: no close reply from the peer",
            Kill::DrainTimeout => "drain timeout",
        }
    }
}

/// Where a connection is in its life, as far as its timer is concerned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Reading the upgrade request; the timer is the handshake timeout.
    Handshake,
    /// WebSocket open; the timer is the heartbeat (ping, then idle timeout) or, once a close was
    /// sent, the close timeout.
    Open,
    /// Closing the TCP connection: FIN sent, draining the peer's last bytes; the timer bounds it.
    Linger,
}

/// The part of a connection other tasks of the worker reach through the connection table.
pub struct ConnShared {
    /// Wakes the connection's task: output queued, timer fired, shutdown began.
    pub notify: LocalNotify,
    /// The single armed timer of this connection, if any.
    pub timer: Cell<Option<TimerKey>>,
    phase: Cell<Phase>,
    kill: Cell<Option<Kill>>,
    /// Tick (ms) of the last byte received; the heartbeat measures silence from here.
    last_activity: Cell<u64>,
    /// A heartbeat ping is outstanding since `last_activity`.
    pinged: Cell<bool>,
    /// Drop the TCP connection as soon as the queued bytes are written (idle timeout: the peer is
    /// presumed gone, so its close reply is not awaited).
    drop_after_flush: Cell<bool>,
    /// The protocol machine, once the upgrade succeeded.
    pub machine: RefCell<Option<Connection>>,
}

impl ConnShared {
    fn new(now: u64) -> Self {
        ConnShared {
            notify: LocalNotify::default(),
            timer: Cell::new(None),
            phase: Cell::new(Phase::Handshake),
            kill: Cell::new(None),
            last_activity: Cell::new(now),
            pinged: Cell::new(false),
            drop_after_flush: Cell::new(false),
            machine: RefCell::new(None),
        }
    }

    /// Makes the task drop the TCP connection at once.
    pub fn kill(&self, why: Kill) {
        if self.kill.get().is_none() {
            self.kill.set(Some(why));
        }
        self.notify.notify();
    }
}

/// Handles the expiry of connection `key`'s timer.
pub fn on_timer(worker: &Worker, key: ConnKey, conn: &ConnShared, now: u64) {
    conn.timer.set(None);
    match conn.phase.get() {
        Phase::Handshake => conn.kill(Kill::HandshakeTimeout),
        Phase::Linger => conn.kill(Kill::CloseTimeout),
        Phase::Open => {
            let cfg = worker.config();
            let mut machine = conn.machine.borrow_mut();
            let Some(machine) = machine.as_mut() else {
                return;
            };
            match machine.state() {
                State::Closing | State::Closed => conn.kill(Kill::CloseTimeout),
                State::Open => {
                    let last = conn.last_activity.get();
                    let silent = now.saturating_sub(last);
                    if silent >= millis(cfg.idle_timeout) {
                        machine.close(1001, "idle timeout");
                        conn.drop_after_flush.set(true);
                        conn.notify.notify();
                    } else if silent >= millis(cfg.ping_interval) && !conn.pinged.get() {
                        machine.send_ping(b"ringcast");
                        conn.pinged.set(true);
                        worker.stats().pings_sent.add(1);
                        worker.arm(key, &conn.timer, last + millis(cfg.idle_timeout));
                        conn.notify.notify();
                    } else {
                        let wait = if conn.pinged.get() {
                            cfg.idle_timeout
                        } else {
                            cfg.ping_interval
                        };
                        worker.arm(key, &conn.timer, last + millis(wait));
                    }
                }
            }
        }
    }
}

/// Starts the closing handshake with 1001 "going away" (shutdown), or drops a connection that has
/// not finished its handshake.
pub fn go_away(worker: &Worker, key: ConnKey, conn: &ConnShared) {
    match conn.machine.borrow_mut().as_mut() {
        Some(machine) => {
            machine.close(1001, "going away");
            worker.arm(
                key,
                &conn.timer,
                worker.now() + millis(worker.config().close_timeout),
            );
            conn.notify.notify();
        }
        None => conn.kill(Kill::DrainTimeout),
    }
}

/// How a connection ended, for the close log line and the counters.
struct Ending {
    code: u16,
    reason: String,
}

/// The task of one accepted TCP connection.
pub async fn run(worker: Rc<Worker>, stream: TcpStream, peer: SocketAddr) {
    let started = worker.now();
    let conn = Rc::new(ConnShared::new(started));
    let key = worker.table.borrow_mut().insert(conn.clone());
    worker.arm(
        key,
        &conn.timer,
        started + millis(worker.config().handshake_timeout),
    );

    let upgraded = serve(&worker, &stream, peer, key, &conn).await;

    worker.disarm(&conn.timer);
    worker.table.borrow_mut().remove(key);
    if let Some(ending) = upgraded {
        let stats = worker.stats();
        stats.connections_open.sub(1);
        stats.closed(ending.code);
        worker.shared.release_connection();
        tracing::info!(
            conn = %worker.conn_id(key),
            %peer,
            duration_ms = worker.refresh_now().saturating_sub(started),
            code = ending.code,
            reason = %ending.reason,
            "connection closed"
        );
    }
}

/// Serves the connection; returns how it ended if it was upgraded to WebSocket.
async fn serve(
    worker: &Rc<Worker>,
    stream: &TcpStream,
    peer: SocketAddr,
    key: ConnKey,
    conn: &ConnShared,
) -> Option<Ending> {
    let fd = match SocketFd::register(stream) {
        Ok(fd) => fd,
        Err(e) => {
            tracing::warn!(%peer, error = %e, "cannot register socket for readiness");
            return None;
        }
    };
    let mut io = SocketIo {
        worker,
        stream,
        fd: &fd,
        conn,
        key,
    };

    // 1. The upgrade request.
    let (request, leftover) = match route::read_request(&mut io).await {
        Ok(route::Incoming::Request(request, leftover)) => (request, leftover),
        Ok(route::Incoming::Invalid(err)) => {
            worker
                .stats()
                .rejected(crate::metrics::Rejection::from_status(err.status()));
            tracing::info!(%peer, status = err.status(), reason = %err, "handshake refused");
            if let Route::Respond { bytes, .. } = route::refusal(err) {
                let _ = io.write_all(Bytes::from(bytes)).await;
            }
            io.linger().await;
            return None;
        }
        Ok(route::Incoming::Gone) => return None,
        Err(Stop::Killed(Kill::HandshakeTimeout)) => {
            worker.stats().rejected(crate::metrics::Rejection::Timeout);
            tracing::info!(%peer, "handshake timeout");
            return None;
        }
        Err(_) => return None,
    };
    let endpoint = match route::route(worker, &request) {
        Route::Respond { bytes, rejection } => {
            if let Some(why) = rejection {
                worker.stats().rejected(why);
                tracing::info!(%peer, path = %request.path(), reason = %why.label(), "request refused");
            } else {
                worker.stats().http_requests.add(1);
            }
            let _ = io.write_all(Bytes::from(bytes)).await;
            io.linger().await;
            return None;
        }
        Route::Upgrade { response, endpoint } => {
            if io.write_all(Bytes::from(response)).await.is_err() {
                worker.shared.release_connection();
                return None;
            }
            endpoint
        }
    };

    // 2. WebSocket.
    let stats = worker.stats();
    stats.handshakes_accepted.add(1);
    stats.connections_open.add(1);
    *conn.machine.borrow_mut() = Some(Connection::new(worker.conn_limits));
    conn.phase.set(Phase::Open);
    conn.last_activity.set(worker.now());
    worker.arm(
        key,
        &conn.timer,
        worker.now() + millis(worker.config().ping_interval),
    );
    tracing::info!(conn = %worker.conn_id(key), %peer, path = %request.path(), "connection open");
    drop(request);

    let mut ending = Ending {
        code: 1006,
        reason: String::from("abnormal closure"),
    };
    let mut rbuf = leftover;
    if !rbuf.is_empty() {
        conn.last_activity.set(worker.now());
        process(worker, conn, &endpoint, &mut rbuf, &mut ending);
    }
    let outcome = websocket_loop(&mut io, key, &endpoint, &mut rbuf, &mut ending).await;
    match outcome {
        Err(Stop::Killed(kill)) => {
            ending.reason = kill.reason().to_string();
        }
        Err(Stop::Io(e)) => {
            ending.reason = format!("I/O error: {e}");
        }
        Err(Stop::Eof) => {}
        Ok(()) => io.linger().await,
    }
    Some(ending)
}

/// Why the loop of a connection stopped early.
pub enum Stop {
    /// The peer closed its side of the TCP connection.
    Eof,
    /// A timer or the drain dropped the connection.
    Killed(Kill),
    /// The socket failed.
    Io(io::Error),
}

/// Moves bytes between the socket and the machine until the connection is over. Reading and
/// writing proceed concurrently: a peer that does not read stalls only its own write, while its
/// input is still read and its output queue grows until the machine's backpressure policy acts.
async fn websocket_loop(
    io: &mut SocketIo<'_>,
    key: ConnKey,
    endpoint: &route::Endpoint,
    rbuf: &mut BytesMut,
    ending: &mut Ending,
) -> Result<(), Stop> {
    let worker = io.worker;
    let conn = io.conn;
    let stream = io.stream;
    let mut write = pin!(Fuse::terminated());
    let mut in_flight = 0usize;
    let mut close_timer_armed = false;
    let mut eof = false;
    loop {
        if let Some(kill) = conn.kill.get() {
            return Err(Stop::Killed(kill));
        }
        let state = conn
            .machine
            .borrow()
            .as_ref()
            .map_or(State::Closed, Connection::state);
        if write.is_terminated() {
            let mut iov = worker.pool.borrow_mut().take_iov();
            in_flight = conn
                .machine
                .borrow_mut()
                .as_mut()
                .map_or(0, |m| m.poll_transmit(&mut iov));
            if iov.is_empty() {
                worker.pool.borrow_mut().give_iov(iov);
                if state == State::Closed || conn.drop_after_flush.get() {
                    if conn.drop_after_flush.get() && ending.code == 1006 {
                        ending.code = 1001;
                        ending.reason = String::from("idle timeout");
                    }
                    return if eof { Err(Stop::Eof) } else { Ok(()) };
                }
                if eof {
                    return Err(Stop::Eof);
                }
            } else {
                write.set(write_all_chunks(stream, iov).fuse());
            }
        }
        if (state == State::Closing || conn.drop_after_flush.get()) && !close_timer_armed {
            // We sent a close: the peer has `close_timeout` to answer (or, after an idle timeout, to
            // take our last bytes) before the TCP connection is dropped.
            close_timer_armed = true;
            worker.arm(
                key,
                &conn.timer,
                worker.now() + millis(worker.config().close_timeout),
            );
        }
        let reading = !eof && state != State::Closed;
        tokio::select! {
            biased;
            (res, iov) = &mut write => {
                worker.pool.borrow_mut().give_iov(iov);
                res.map_err(Stop::Io)?;
                if let Some(machine) = conn.machine.borrow_mut().as_mut() {
                    machine.on_written(in_flight);
                }
                worker.stats().bytes_out.add(in_flight as u64);
            }
            () = conn.notify.notified() => {}
            ready = io.fd.readable(), if reading => {
                let guard = ready.map_err(Stop::Io)?;
                let n = io.read_ready(guard, rbuf).await.map_err(Stop::Io)?;
                if n == 0 {
                    eof = true;
                    if let Some(machine) = conn.machine.borrow_mut().as_mut() {
                        machine.handle_eof();
                    }
                } else {
                    worker.stats().bytes_in.add(n as u64);
                    conn.last_activity.set(worker.now());
                    conn.pinged.set(false);
                }
                process(worker, conn, endpoint, rbuf, ending);
                if rbuf.is_empty() && rbuf.capacity() > 0 {
                    worker.pool.borrow_mut().give_read(std::mem::take(rbuf));
                }
            }
        }
    }
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
        let written = match written {
            Ok(n) => n,
            Err(e) => {
                back.clear();
                return (Err(e), back);
            }
        };
        consume(&mut back, written);
        if let Some(rest) = rest {
            back.extend(rest);
        }
        iov = back;
    }
    (Ok(()), iov)
}

/// Feeds the read bytes to the machine and handles every event it produces.
fn process(
    worker: &Worker,
    conn: &ConnShared,
    endpoint: &route::Endpoint,
    rbuf: &mut BytesMut,
    ending: &mut Ending,
) {
    let mut machine = conn.machine.borrow_mut();
    let Some(machine) = machine.as_mut() else {
        return;
    };
    machine.handle_read(rbuf);
    let stats = worker.stats();
    while let Some(event) = machine.poll_event() {
        match event {
            Event::Message { kind, payload } => {
                stats.messages_in.add(1);
                match endpoint {
                    route::Endpoint::Echo => match machine.send(kind, payload.freeze()) {
                        Ok(()) => stats.messages_out.add(1),
                        Err(SendError::Dropped) => stats.slow_consumers.add(1),
                        Err(SendError::SlowConsumer | SendError::Closed) => {}
                    },
                }
            }
            Event::Ping(_) | Event::Pong(_) => {}
            Event::PeerClosed { code, reason } => {
                ending.code = code.unwrap_or(1005);
                ending.reason = String::from_utf8_lossy(&reason).into_owned();
            }
            Event::Failed(err) => {
                ending.code = err.close_code();
                ending.reason = err.to_string();
            }
            Event::SlowConsumer => {
                stats.slow_consumers.add(1);
                ending.code = 1008;
                ending.reason = String::from("slow consumer");
            }
        }
    }
}

/// The socket of one connection with its readiness registration.
pub struct SocketIo<'a> {
    /// The owning worker.
    pub worker: &'a Rc<Worker>,
    stream: &'a TcpStream,
    fd: &'a AsyncFd<SocketFd>,
    conn: &'a ConnShared,
    key: ConnKey,
}

impl SocketIo<'_> {
    /// Waits until the socket is readable (holding no buffer), then reads into `buf`.
    /// `Ok(None)`: woken by the connection's notify instead (output queued, or nothing).
    pub async fn read(&mut self, buf: &mut BytesMut) -> Result<Option<usize>, Stop> {
        if let Some(kill) = self.conn.kill.get() {
            return Err(Stop::Killed(kill));
        }
        let guard = tokio::select! {
            biased;
            () = self.conn.notify.notified() => {
                return match self.conn.kill.get() {
                    Some(kill) => Err(Stop::Killed(kill)),
                    None => Ok(None),
                };
            }
            ready = self.fd.readable() => ready.map_err(Stop::Io)?,
        };
        self.read_ready(guard, buf)
            .await
            .map(Some)
            .map_err(Stop::Io)
    }

    /// Reads through the ring into `buf` (a pooled buffer if `buf` has no capacity) once readiness
    /// was reported. Returns the bytes read; 0 is EOF.
    async fn read_ready(
        &self,
        mut guard: AsyncFdReadyGuard<'_, SocketFd>,
        buf: &mut BytesMut,
    ) -> io::Result<usize> {
        let mut owned = if buf.capacity() == 0 {
            self.worker.pool.borrow_mut().take_read()
        } else {
            std::mem::take(buf)
        };
        if owned.capacity() - owned.len() < MIN_READ_SPACE {
            owned.reserve(owned.len().max(self.worker.pool.borrow().read_size()));
        }
        let (start, end) = (owned.len(), owned.capacity());
        let (res, slice) = self.stream.read(owned.slice(start..end)).await;
        *buf = slice.into_inner();
        let n = res?;
        if n < end - start {
            // The socket is drained; wait for the next edge. (A newer edge is not cleared: tokio
            // compares readiness ticks.)
            guard.clear_ready();
        }
        if buf.is_empty() {
            self.worker.pool.borrow_mut().give_read(std::mem::take(buf));
        }
        Ok(n)
    }

    /// Writes one buffer completely, unless the connection is killed first.
    pub async fn write_all(&mut self, bytes: Bytes) -> Result<(), Stop> {
        let mut iov = self.worker.pool.borrow_mut().take_iov();
        iov.push(bytes);
        let mut op = pin!(write_all_chunks(self.stream, iov));
        let (res, iov) = loop {
            tokio::select! {
                biased;
                out = &mut op => break out,
                () = self.conn.notify.notified() => {
                    if let Some(kill) = self.conn.kill.get() {
                        return Err(Stop::Killed(kill));
                    }
                }
            }
        };
        self.worker.pool.borrow_mut().give_iov(iov);
        res.map_err(Stop::Io)
    }

    /// Ends the TCP connection politely: FIN first, then read and discard until the peer's FIN (or
    /// the close timeout), so unread bytes never turn our close into a reset that could destroy the
    /// close frame we just sent.
    pub async fn linger(&mut self) {
        let _ = self.stream.shutdown(std::net::Shutdown::Write);
        self.conn.phase.set(Phase::Linger);
        // The timer of this connection now bounds the linger.
        let deadline = self.worker.now() + millis(self.worker.config().close_timeout);
        self.worker.arm(self.key, &self.conn.timer, deadline);
        let mut scratch = BytesMut::new();
        loop {
            match self.read(&mut scratch).await {
                Ok(Some(0)) | Err(_) => break,
                Ok(Some(_)) => scratch.clear(),
                Ok(None) => {}
            }
        }
        if scratch.capacity() > 0 {
            scratch.clear();
            self.worker.pool.borrow_mut().give_read(scratch);
        }
    }
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

/// A socket's fd, registered for readiness without taking ownership (the `TcpStream` closes it).
pub struct SocketFd(RawFd);

impl SocketFd {
    /// Registers `stream`'s fd with the reactor for read readiness. The registration borrows the
    /// stream, so it cannot outlive it.
    #[allow(unsafe_code)]
    fn register(stream: &TcpStream) -> io::Result<AsyncFd<SocketFd>> {
        // SAFETY: the fd is the open socket of `stream`. The returned `AsyncFd` is a local of
        // `serve`, which only borrows `stream` from `run`; `run` drops the stream after `serve`
        // returns, so the fd stays open and refers to the same socket for the registration's
        // whole life, and `SocketFd::as_raw_fd` always returns that same fd.
        unsafe { AsyncFd::register_with_interest(SocketFd(stream.as_raw_fd()), Interest::READABLE) }
            .map_err(io::Error::from)
    }
}

impl AsRawFd for SocketFd {
    fn as_raw_fd(&self) -> RawFd {
        self.0
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
