//! The baseline phase of `fanout`: the same frames written to as many sockets, at the same rate,
//! with no server and no room logic, so the room phase can be quoted as a ratio of it.
//!
//! Owns the helper process that does the writing ([`writer`], run as `ringcast-bench fanout
//! --baseline-writer`) and the line protocol the load tool drives it with. A helper process,
//! not a thread: the writer's end of every socket must not count against the tool's open-file
//! limit (S subscribers need S descriptors on each side, and the hard limit here is 20 000), and
//! like the server it gets its own CPU figure and can be pinned to the server's core.
//!
//! The protocol, one line each way per step (stdin from the tool, stdout from the helper):
//!
//! 1. helper: `listening ADDR` (a 127.0.0.1 port it chose; it accepts from then on);
//! 2. tool: `ready N` once its N subscribers are connected; helper: `ready M` once it has
//!    accepted M ≥ N of them (or after [`writer::ACCEPT_WAIT`]);
//! 3. tool: `go`; the helper's schedule starts (message k due at k / rate, until the duration);
//! 4. helper: `done PUBLISHED WRITTEN DROPPED` when its schedule is over;
//! 5. tool: closes stdin; the helper closes its sockets and exits.
//!
//! Never runs unbounded: the helper stops writing [`super::args::DRAIN`] after its deadline
//! whatever it still owes, a write that blocks longer than [`writer::WRITE_TIMEOUT`] drops its
//! socket, and the tool kills the helper (by its pid, which it started) if it has not exited
//! [`EXIT_WAIT`] after stdin closed, or when the run fails.

pub(crate) mod writer;

use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use super::args::{BaselinePlan, Plan};
use super::error::LoadError;

/// How long the helper may take to exit once its stdin is closed.
const EXIT_WAIT: Duration = Duration::from_secs(5);

/// What the helper reports when its schedule is over.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Written {
    /// Messages on the schedule (due before the deadline), whether it wrote them all or not.
    pub published: u64,
    /// Frames written, over all sockets.
    pub written: u64,
    /// Sockets dropped after a failed or timed-out write.
    pub dropped: u64,
}

/// The running helper, seen from the load tool.
pub(crate) struct Writer {
    child: Child,
    /// `None` once closed (step 5).
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
    /// Where it accepts the subscribers.
    pub addr: SocketAddr,
}

fn fail(step: &'static str, reason: impl std::fmt::Display) -> LoadError {
    LoadError::Baseline {
        step,
        reason: reason.to_string(),
    }
}

impl Writer {
    /// Starts the helper for `plan` (the room phase's plan) and reads where it listens.
    pub fn spawn(plan: &Plan, baseline: &BaselinePlan) -> Result<Writer, LoadError> {
        let exe = match &baseline.exe {
            Some(exe) => exe.clone(),
            None => std::env::current_exe().map_err(|e| fail("start", e))?,
        };
        let subscribers = plan.subscribers.unwrap_or(plan.connections);
        let mut command = Command::new(&exe);
        command
            .args(["fanout", "--baseline-writer", "--quiet"])
            .arg("--connections")
            .arg(subscribers.to_string())
            .arg("--rate")
            .arg(plan.rate.to_string())
            .arg("--duration")
            .arg(format!("{}ms", plan.duration.as_millis()))
            .arg("--room")
            .arg(&plan.room)
            .arg("--baseline-writers")
            .arg(baseline.writers.to_string());
        if let Some(cpu) = baseline.cpu {
            command.arg("--baseline-cpu").arg(cpu.to_string());
        }
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| fail("start", format!("{}: {e}", exe.display())))?;
        let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            unreachable!("both were asked for as pipes");
        };
        let mut writer = Writer {
            child,
            stdin: Some(stdin),
            stdout: BufReader::new(stdout),
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        };
        let addr = writer.expect("listening")?;
        writer.addr = addr
            .parse()
            .ok()
            .filter(|a: &SocketAddr| a.ip().is_loopback())
            .ok_or_else(|| fail("listening", format!("not a loopback address: {addr:?}")))?;
        Ok(writer)
    }

    /// The helper's process id (for its CPU time).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    fn say(&mut self, step: &'static str, line: &str) -> Result<(), LoadError> {
        let stdin = self.stdin.as_mut().ok_or_else(|| fail(step, "closed"))?;
        writeln!(stdin, "{line}")
            .and_then(|()| stdin.flush())
            .map_err(|e| fail(step, e))
    }

    /// Reads the helper's next line, which must start with `word`; returns the rest.
    fn expect(&mut self, word: &'static str) -> Result<String, LoadError> {
        let mut line = String::new();
        let n = self
            .stdout
            .read_line(&mut line)
            .map_err(|e| fail(word, e))?;
        if n == 0 {
            return Err(fail(word, "the helper exited"));
        }
        match line.trim_end().split_once(' ') {
            Some((w, rest)) if w == word => Ok(rest.to_owned()),
            _ => Err(fail(word, format!("unexpected line {line:?}"))),
        }
    }

    /// Step 2: waits until the helper has accepted the `opened` subscribers; returns how many
    /// it has.
    pub fn ready(&mut self, opened: u64) -> Result<u64, LoadError> {
        self.say("ready", &format!("ready {opened}"))?;
        let accepted = self.expect("ready")?;
        accepted
            .parse()
            .map_err(|_| fail("ready", format!("not a count: {accepted:?}")))
    }

    /// Step 3: the schedule starts now.
    pub fn go(&mut self) -> Result<(), LoadError> {
        self.say("go", "go")
    }

    /// Steps 4 and 5: reads the helper's counts, closes its stdin and waits for it to exit.
    pub fn finish(mut self) -> Result<Written, LoadError> {
        let done = self.expect("done")?;
        let counts: Vec<u64> = done
            .split(' ')
            .map(str::parse)
            .collect::<Result<_, _>>()
            .map_err(|_| fail("done", format!("not three counts: {done:?}")))?;
        let [published, written, dropped] = counts[..] else {
            return Err(fail("done", format!("not three counts: {done:?}")));
        };
        self.stdin = None;
        let until = Instant::now() + EXIT_WAIT;
        while Instant::now() < until {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        Ok(Written {
            published,
            written,
            dropped,
        })
    }
}

impl Drop for Writer {
    /// A helper that has not exited by now (a failed run, or one past [`EXIT_WAIT`]) is killed.
    fn drop(&mut self) {
        self.stdin = None;
        if let Ok(None) = self.child.try_wait() {
            let _already_gone = self.child.kill();
        }
        let _status = self.child.wait();
    }
}
