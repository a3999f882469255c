//! The load tool's errors: [`LoadError`] stops a run, [`ConnError`] ends one connection and is
//! counted in the report's failures by its message.
//!
//! Owns the wording of every failure. Never carries per-connection numbers in a [`ConnError`]
//! message where they would split one failure reason into many rows of the report.

use std::collections::BTreeMap;

use super::args::Scenario;
use super::sys::ProcError;
use super::target::TargetError;
use super::upgrade::UpgradeError;
use crate::proto::ProtocolError;

/// Why a run could not start or finish.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The URL is unusable or not loopback.
    #[error(transparent)]
    Target(#[from] TargetError),
    /// A numeric flag outside its documented range.
    #[error("{what} = {value} is outside {min}..={max}")]
    OutOfRange {
        /// The flag.
        what: &'static str,
        /// The value given.
        value: u64,
        /// The smallest value allowed.
        min: u64,
        /// The largest value allowed.
        max: u64,
    },
    /// `--raw` with a scenario that needs the WebSocket handshake.
    #[error("--raw does not apply to the {0} scenario")]
    RawUnsupported(Scenario),
    /// More connections than the open-file soft limit allows.
    #[error(
        "{needed} file descriptors needed but the open-file limit is {limit} (raise `ulimit -n`)"
    )]
    TooManyFiles {
        /// Connections plus spare descriptors.
        needed: u64,
        /// The soft limit.
        limit: u64,
    },
    /// `--room` holds a character the tool will not put into JSON unescaped.
    #[error("room {0:?}: only letters, digits and `_ . : -` are allowed")]
    BadRoom(String),
    /// A load thread or its event loop could not be started.
    #[error("cannot start a load thread: {0}")]
    Thread(std::io::Error),
    /// A load thread panicked.
    #[error("a load thread panicked")]
    ThreadPanicked,
    /// Not one connection succeeded; the failures by reason say why.
    #[error("no connection succeeded: {}", summary(.0))]
    NoConnection(BTreeMap<String, u64>),
    /// `--server-pid` could not be sampled.
    #[error(transparent)]
    Proc(#[from] ProcError),
    /// The `fanout` baseline writer (a helper process) could not be run or broke its protocol.
    #[error("baseline writer: {step}: {reason}")]
    Baseline {
        /// The step of the protocol (`start`, `listening`, `ready`, `go`, `done`, …).
        step: &'static str,
        /// What went wrong.
        reason: String,
    },
    /// Writing the report or the plot failed.
    #[error("cannot write {path}: {reason}")]
    Output {
        /// The file (or `stdout`).
        path: String,
        /// What went wrong.
        reason: String,
    },
}

/// `3 × connect: connection refused; 1 × connect timed out`.
fn summary(failures: &BTreeMap<String, u64>) -> String {
    if failures.is_empty() {
        return "no attempt finished".to_owned();
    }
    let rows: Vec<String> = failures.iter().map(|(r, n)| format!("{n} × {r}")).collect();
    rows.join("; ")
}

/// Why one connection failed. The report counts failures by this message.
#[derive(Debug, thiserror::Error)]
pub enum ConnError {
    /// The TCP connect failed.
    #[error("connect: {0}")]
    Connect(std::io::ErrorKind),
    /// Connect plus upgrade took longer than `--connect-timeout`.
    #[error("connect timed out")]
    ConnectTimeout,
    /// The run's deadline passed before this connection was opened.
    #[error("not opened before the deadline")]
    Deadline,
    /// The server's upgrade response was wrong.
    #[error("upgrade: {0}")]
    Upgrade(#[from] UpgradeError),
    /// A read or write failed.
    #[error("i/o: {0}")]
    Io(std::io::ErrorKind),
    /// The server broke RFC 6455.
    #[error("protocol: {0}")]
    Protocol(#[from] ProtocolError),
    /// The server closed the TCP connection while messages were expected.
    #[error("closed by the server (EOF)")]
    Eof,
    /// The server sent a close frame while messages were expected.
    #[error("close frame from the server (code {0:?})")]
    Closed(Option<u16>),
    /// An echoed message had a different length from the one sent.
    #[error("echo of the wrong length")]
    EchoMismatch,
    /// A data message arrived that the tool had not sent.
    #[error("unsolicited message")]
    Unsolicited,
    /// `fanout`: the server answered a join with an error reply.
    #[error("join refused by the server")]
    JoinRefused,
    /// More than the backlog cap of messages are unanswered: the server stalled.
    #[error("too many unanswered messages (server stalled)")]
    Backlog,
}

impl From<std::io::Error> for ConnError {
    fn from(e: std::io::Error) -> Self {
        ConnError::Io(e.kind())
    }
}
