//! Read readiness for every socket of one worker through a single epoll instance.
//!
//! Owns the worker's epoll (through mio): each connection's fd is registered once, edge-triggered,
//! for its whole life, with its [`ConnKey`] as the token. One task waits for the epoll fd itself to
//! become readable (through tokio's reactor), drains the events and marks each connection readable,
//! waking its task or starting one if the connection is parked. An idle connection therefore has
//! no task, no buffer and no tokio registration: only its slot in the connection table. Never reads
//! or writes a socket: the connection tasks do that (reads with a non-blocking `recv` right after
//! the readiness this module reports, writes through the ring).

use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::rc::Rc;
use std::time::Duration;

use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Registry, Token};
use tokio::io::unix::AsyncFd;

use crate::table::ConnKey;

use super::worker::Worker;

/// How many events one `epoll_wait` returns at most; more are picked up by the next call.
const EVENTS_PER_POLL: usize = 1024;

/// The registering side of a worker's epoll instance.
pub struct Reactor {
    registry: Registry,
}

impl Reactor {
    /// A new epoll instance: the registering side, and the polling side for [`run`].
    pub fn new() -> io::Result<(Reactor, Poll)> {
        let poll = Poll::new()?;
        let registry = poll.registry().try_clone()?;
        Ok((Reactor { registry }, poll))
    }

    /// Registers `fd` for read readiness (edge-triggered, peer hang-up included) under `key`.
    pub fn register(&self, fd: RawFd, key: ConnKey) -> io::Result<()> {
        self.registry
            .register(&mut SourceFd(&fd), token(key), Interest::READABLE)
    }

    /// Removes `fd`; must happen before the fd is closed.
    pub fn deregister(&self, fd: RawFd) {
        // Failing here means the fd was never registered or is already closed: nothing to undo.
        let _ = self.registry.deregister(&mut SourceFd(&fd));
    }
}

fn token(key: ConnKey) -> Token {
    Token(key.to_u64() as usize)
}

/// The epoll fd, registered with tokio's reactor so the runtime wakes us when it has events.
struct PollFd(RawFd);

impl AsRawFd for PollFd {
    fn as_raw_fd(&self) -> RawFd {
        self.0
    }
}

/// Dispatches readiness to connections until the worker stops.
pub async fn run(worker: Rc<Worker>, mut poll: Poll) -> io::Result<()> {
    #[allow(unsafe_code)]
    // SAFETY: the fd is the epoll instance owned by `poll`, a local of this function that is
    // dropped after `ready` (locals drop in reverse order), so the fd stays open and names the same
    // epoll instance for the registration's whole life; `PollFd::as_raw_fd` returns that same fd.
    let ready = unsafe {
        AsyncFd::register_with_interest(PollFd(poll.as_raw_fd()), tokio::io::Interest::READABLE)
    }
    .map_err(io::Error::from)?;
    let mut events = Events::with_capacity(EVENTS_PER_POLL);
    loop {
        let mut guard = ready.readable().await?;
        poll.poll(&mut events, Some(Duration::ZERO))?;
        let mut count = 0;
        for event in events.iter() {
            count += 1;
            let key = ConnKey::from_u64(event.token().0 as u64);
            let conn = worker.table.borrow().get(key).cloned();
            if let Some(conn) = conn {
                conn.mark_readable();
                worker.wake(key, &conn);
            }
        }
        // Fewer events than asked for: the epoll instance is drained, so clearing now loses
        // nothing and saves an empty `epoll_wait` per wake-up. Every registration is edge-triggered
        // and so is tokio's registration of the epoll fd: an event that arrives from here on makes
        // the epoll fd readable again, a new edge that tokio reports after this clear (the clear
        // only forgets the readiness already seen, not one tokio has yet to deliver).
        if count < EVENTS_PER_POLL {
            guard.clear_ready();
        }
    }
}
