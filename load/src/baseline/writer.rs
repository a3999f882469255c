//! The baseline writer: a helper process that accepts the subscribers' plain TCP connections and
//! writes each scheduled message, rendered as the server renders it, to every one of them.
//!
//! Owns the helper's side of the line protocol (see [`super`]) and its write loop. No rooms, no
//! mesh, no per-connection queue, no WebSocket machine: blocking `write`s from
//! `--baseline-writers` threads that split the sockets between them, one per socket per pass
//! (a pass carries every message due, so one message when the writer keeps up, the backlog in
//! one write when it does not). What the subscribers read is byte for byte the shape of a room
//! message: the crate's own [`render::message`] with the same room, a `seq`, a sender id, `ts`,
//! and the payload `{"t":<unix µs>}`, where `t` is the message's due time on the schedule.
//!
//! Never listens outside 127.0.0.1, never writes after its deadline plus [`DRAIN`], and never
//! lets one stuck socket hold the others for longer than [`WRITE_TIMEOUT`] (it is dropped).

use std::io::{BufRead, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use socket2::{Domain, Protocol, Socket, Type};

use super::Written;
use crate::args::{BenchArgs, DRAIN};
use crate::conn::{push_u64, unix_micros};
use crate::error::LoadError;
use ringcast::envelope::{render, ConnId};
use ringcast::table::ConnKey;

/// How long `ready N` waits for the N-th connection to be accepted.
pub const ACCEPT_WAIT: Duration = Duration::from_secs(10);

/// A write blocked this long drops its socket (its reader stopped reading).
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(1);

/// Listen backlog asked for (the kernel caps it at `net.core.somaxconn`).
const BACKLOG: i32 = 4096;

/// What the helper was asked to do: the parent's `fanout` flags.
#[derive(Debug, Clone)]
struct Schedule {
    sockets: usize,
    rate: u64,
    duration: Duration,
    room: String,
    writers: usize,
    cpu: Option<usize>,
}

/// Accepted sockets, and a signal for each new one.
type Accepted = Arc<(Mutex<Vec<TcpStream>>, Condvar)>;

fn io_fail(step: &'static str) -> impl Fn(std::io::Error) -> LoadError {
    move |e| LoadError::Baseline {
        step,
        reason: e.to_string(),
    }
}

/// Runs the helper: listens, follows the tool's lines on stdin, writes, reports, exits when
/// stdin closes.
pub fn serve(args: &BenchArgs) -> Result<(), LoadError> {
    let schedule = Schedule {
        sockets: args.connections as usize,
        rate: args.rate().max(1),
        duration: args.duration,
        room: args.room.clone(),
        writers: args.baseline_writers.max(1) as usize,
        cpu: args.baseline_cpu,
    };
    let listener = listen().map_err(io_fail("listen"))?;
    let addr = listener.local_addr().map_err(io_fail("listen"))?;
    let accepted: Accepted = Arc::new((Mutex::new(Vec::new()), Condvar::new()));
    {
        let accepted = Arc::clone(&accepted);
        let wanted = schedule.sockets;
        // Ends after `wanted` connections; if fewer come, it is still blocked in `accept` when
        // the process exits.
        std::thread::Builder::new()
            .name("baseline-accept".to_owned())
            .spawn(move || accept(&listener, wanted, &accepted))
            .map_err(LoadError::Thread)?;
    }
    let mut out = std::io::stdout().lock();
    let mut say = |line: String| -> Result<(), LoadError> {
        writeln!(out, "{line}")
            .and_then(|()| out.flush())
            .map_err(io_fail("stdout"))
    };
    say(format!("listening {addr}"))?;
    let mut lines = std::io::stdin().lock().lines();
    // The sockets stay open after the schedule, until stdin closes: the subscribers stop
    // reading on their own clock, not at an EOF.
    let mut open: Option<Vec<TcpStream>> = None;
    while let Some(line) = lines.next().transpose().map_err(io_fail("stdin"))? {
        match line.split_once(' ').unwrap_or((line.as_str(), "")) {
            ("ready", n) => {
                let n: usize = n.parse().unwrap_or(schedule.sockets);
                say(format!("ready {}", wait_for(&accepted, n)))?;
            }
            ("go", _) if open.is_none() => {
                let sockets = std::mem::take(&mut *lock(&accepted.0));
                let (w, still_open) = write_all(sockets, &schedule)?;
                say(format!("done {} {} {}", w.published, w.written, w.dropped))?;
                open = Some(still_open);
            }
            _ => {
                return Err(LoadError::Baseline {
                    step: "stdin",
                    reason: format!("unexpected line {line:?}"),
                })
            }
        }
    }
    // stdin closed: the tool is done.
    drop(open);
    Ok(())
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// A 127.0.0.1 listener on a port the kernel picks, with a backlog for thousands of connects.
fn listen() -> std::io::Result<TcpListener> {
    let socket = Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP))?;
    socket.bind(&SocketAddr::from(([127, 0, 0, 1], 0)).into())?;
    socket.listen(BACKLOG)?;
    Ok(socket.into())
}

fn accept(listener: &TcpListener, wanted: usize, accepted: &Accepted) {
    for _ in 0..wanted {
        let Ok((stream, _)) = listener.accept() else {
            return;
        };
        // Like the server: no Nagle delay. A socket that refuses the options still counts.
        let _nodelay = stream.set_nodelay(true);
        let _timeout = stream.set_write_timeout(Some(WRITE_TIMEOUT));
        lock(&accepted.0).push(stream);
        accepted.1.notify_all();
    }
}

/// Waits until `n` sockets are accepted or [`ACCEPT_WAIT`] passes; returns how many are.
fn wait_for(accepted: &Accepted, n: usize) -> usize {
    let until = Instant::now() + ACCEPT_WAIT;
    let mut got = lock(&accepted.0);
    while got.len() < n {
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        got = accepted
            .1
            .wait_timeout(got, left)
            .unwrap_or_else(|p| p.into_inner())
            .0;
    }
    got.len()
}

/// Splits the sockets round-robin over the writer threads, runs the schedule on each from one
/// common start, and sums their counts. Every thread writes every message to its share, so
/// `published` is the same on each (the schedule's length); the first thread's is reported.
/// Returns the sockets still open.
fn write_all(
    sockets: Vec<TcpStream>,
    schedule: &Schedule,
) -> Result<(Written, Vec<TcpStream>), LoadError> {
    let writers = schedule.writers.min(sockets.len()).max(1);
    let mut shares: Vec<Vec<TcpStream>> = (0..writers).map(|_| Vec::new()).collect();
    for (i, s) in sockets.into_iter().enumerate() {
        shares[i % writers].push(s);
    }
    let start = (Instant::now(), unix_micros());
    let results: Vec<Result<(Written, Vec<TcpStream>), LoadError>> = std::thread::scope(|scope| {
        let handles: Vec<_> = shares
            .into_iter()
            .map(|share| scope.spawn(move || write_share(share, schedule, start)))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().map_err(|_| LoadError::ThreadPanicked)?)
            .collect()
    });
    let mut total = Written::default();
    let mut open = Vec::new();
    for (i, r) in results.into_iter().enumerate() {
        let (w, share) = r?;
        if i == 0 {
            total.published = w.published;
        }
        total.written += w.written;
        total.dropped += w.dropped;
        open.extend(share);
    }
    Ok((total, open))
}

/// One writer thread: message k is due at `start + k / rate` while that is before the deadline.
/// Each pass renders every message due by now and writes them, back to back, to every socket of
/// `share` still open, in order, one `write` per socket: a message per write when the writer
/// keeps up, and when it falls behind, the backlog coalesced as the server coalesces a
/// connection's queued frames into one vectored write. A message's `t` is its *due* time (unix
/// µs), so a writer that falls behind is charged for it. Returns the sockets still open.
fn write_share(
    mut share: Vec<TcpStream>,
    schedule: &Schedule,
    start: (Instant, u64),
) -> Result<(Written, Vec<TcpStream>), LoadError> {
    if let Some(id) = schedule.cpu {
        if !core_affinity::set_for_current(core_affinity::CoreId { id }) {
            return Err(LoadError::Baseline {
                step: "pin",
                reason: format!("cannot pin a writer thread to CPU {id}"),
            });
        }
    }
    let (start, start_unix_us) = start;
    let deadline = start + schedule.duration;
    let give_up = deadline + DRAIN;
    let interval_ns = 1e9 / schedule.rate as f64;
    let offset = |k: u64| Duration::from_nanos((interval_ns * k as f64) as u64);
    let from = ConnId {
        worker: 0,
        key: ConnKey::from_u64(0),
    };
    let mut arena = BytesMut::new();
    let mut payload = Vec::with_capacity(32);
    let mut batch = Vec::new();
    // The schedule's length, as the publisher of the room phase counts it (every message due
    // before the deadline), whether or not this writer manages to write them all.
    let mut scheduled = (schedule.duration.as_nanos() as f64 / interval_ns) as u64;
    while scheduled > 0 && offset(scheduled - 1) >= schedule.duration {
        scheduled -= 1;
    }
    while offset(scheduled) < schedule.duration {
        scheduled += 1;
    }
    let mut counts = Written {
        published: scheduled,
        ..Written::default()
    };
    let mut next = 0u64;
    loop {
        let now = Instant::now();
        if now >= give_up {
            break;
        }
        batch.clear();
        let first = next;
        while start + offset(next) <= now && start + offset(next) < deadline {
            let t = start_unix_us + offset(next).as_micros() as u64;
            payload.clear();
            payload.extend_from_slice(br#"{"t":"#);
            push_u64(&mut payload, t);
            payload.push(b'}');
            let frame = render::message(
                &mut arena,
                &schedule.room,
                next + 1,
                from,
                t / 1000,
                &payload,
            );
            batch.extend_from_slice(&frame);
            next += 1;
        }
        let due = start + offset(next);
        if next == first {
            if due >= deadline {
                break;
            }
            std::thread::sleep(due - now);
            continue;
        }
        let before = share.len();
        share.retain_mut(|s| s.write_all(&batch).is_ok());
        counts.dropped += (before - share.len()) as u64;
        counts.written += (next - first) * share.len() as u64;
    }
    Ok((counts, share))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::{Incoming, ServerFrames};
    use crate::conn::SendTime;
    use std::cell::Cell;
    use std::io::Read;

    #[test]
    fn every_socket_gets_every_scheduled_message_as_a_server_frame() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let readers: Vec<TcpStream> = (0..3).map(|_| TcpStream::connect(addr).unwrap()).collect();
        let sockets: Vec<TcpStream> = (0..3).map(|_| listener.accept().unwrap().0).collect();
        let schedule = Schedule {
            sockets: 3,
            rate: 100,
            duration: Duration::from_millis(50),
            room: "r".to_owned(),
            writers: 2,
            cpu: None,
        };
        let (w, open) = write_all(sockets, &schedule).unwrap();
        assert_eq!(open.len(), 3);
        // Due at 0, 10, 20, 30 and 40 ms: five messages before the 50 ms deadline.
        assert_eq!(
            w,
            Written {
                published: 5,
                written: 15,
                dropped: 0
            }
        );
        for mut r in readers {
            r.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let mut frames = ServerFrames::new(1 << 20);
            let (mut messages, mut times) = (0, 0);
            let scan = Cell::new(SendTime::default());
            let mut buf = [0u8; 4096];
            while messages < 5 {
                let n = r.read(&mut buf).unwrap();
                assert!(n > 0, "the writer keeps the socket open");
                frames
                    .feed_tapped(
                        &buf[..n],
                        |event| {
                            if let Incoming::Message { .. } = event {
                                messages += 1;
                                times += u32::from(scan.take().value().is_some());
                            }
                        },
                        |piece, _compressed| {
                            let mut s = scan.get();
                            s.feed(piece);
                            scan.set(s);
                        },
                    )
                    .unwrap();
            }
            assert_eq!(times, 5, "every message carries its send time");
        }
    }
}
