//! The load tool's errors: [`LoadError`] stops a run, [`ConnError`] ends one connection and is
//! counted in the report's failures by its message.
//!
//! Owns the wording of every failure. Never carries per-connection numbers in a [`ConnError`]
//! message where they would split one failure reason into many rows of the report.

use std::collections::BTreeMap;

use super::args::Scenario;
use super::sys::ProcError;
use super::target::TargetError;
use ringcast::proto::handshake::ClientHandshakeError;
use ringcast::proto::{CloseFrame, ProtocolError};

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
    /// A combination of flags the tool cannot run.
    #[error("unsupported: {0}")]
    Unsupported(&'static str),
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
    /// Not one connection succeeded; the failures by reason say why (closes by the server
    /// included, as `closed by the server: CODE "REASON"`).
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
    /// The upgrade request could not be written, or the server's response was wrong.
    #[error("upgrade: {0}")]
    Upgrade(#[from] ClientHandshakeError),
    /// The server closed the connection before its response head was complete.
    #[error("upgrade: connection closed during the handshake")]
    UpgradeEof,
    /// A read or write failed.
    #[error("i/o: {0}")]
    Io(std::io::ErrorKind),
    /// The server broke RFC 6455.
    #[error("protocol: {0}")]
    Protocol(#[from] ProtocolError),
    /// The server closed the TCP connection while messages were expected.
    #[error("closed by the server: {}", ServerClose::Eof)]
    Eof,
    /// The server sent a close frame while messages were expected.
    #[error("closed by the server: {0}")]
    Closed(ServerClose),
    /// An echoed message had a different length from the one sent.
    #[error("echo of the wrong length")]
    EchoMismatch,
    /// A data message arrived that the tool had not sent.
    #[error("unsolicited message")]
    Unsolicited,
    /// `fanout`: the server answered a join with an error reply.
    #[error("join refused by the server")]
    JoinRefused,
    /// permessage-deflate: the server's answer to the offer, or one of its compressed
    /// messages, was refused (RFC 7692 §7.1, §7.2.2).
    #[error("permessage-deflate: {0}")]
    Deflate(#[from] super::deflate::DeflateError),
    /// More than the backlog cap of messages are unanswered: the server stalled.
    #[error("too many unanswered messages (server stalled)")]
    Backlog,
}

impl ConnError {
    /// How the server ended this connection, when it did (a close frame or a bare EOF), as
    /// opposed to a failure the tool saw on its own (refused connect, timeout, bad frame).
    pub fn server_close(&self) -> Option<ServerClose> {
        match self {
            ConnError::Closed(close) => Some(close.clone()),
            ConnError::Eof => Some(ServerClose::Eof),
            _ => None,
        }
    }
}

/// How the server ended a connection the tool still needed: its close frame's code and reason
/// exactly as sent, or a TCP close without any close frame. Displays as
/// `1008 "slow consumer"`, `1001` (no reason), `no status code` or `without a close frame (EOF)`,
/// so a report row reads `102 connections closed by the server: 1008 "slow consumer"`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ServerClose {
    /// A close frame.
    Frame {
        /// The status code; `None` for an empty close body.
        code: Option<u16>,
        /// The reason text (UTF-8, at most 123 bytes, possibly empty).
        reason: String,
    },
    /// The TCP connection ended without a close frame.
    Eof,
}

impl ServerClose {
    /// Copies a parsed close frame (one allocation, on a connection's last frame only).
    pub fn from_frame(frame: CloseFrame<'_>) -> ServerClose {
        ServerClose::Frame {
            code: frame.code,
            reason: frame.reason.to_owned(),
        }
    }
}

impl std::fmt::Display for ServerClose {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ServerClose::Frame { code: None, .. } => f.write_str("no status code"),
            ServerClose::Frame {
                code: Some(code),
                reason,
            } if reason.is_empty() => write!(f, "{code}"),
            // `{:?}` quotes the reason and escapes control characters, so a hostile reason
            // cannot forge a line of the report.
            ServerClose::Frame {
                code: Some(code),
                reason,
            } => write!(f, "{code} {reason:?}"),
            ServerClose::Eof => f.write_str("without a close frame (EOF)"),
        }
    }
}

impl From<std::io::Error> for ConnError {
    fn from(e: std::io::Error) -> Self {
        ConnError::Io(e.kind())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_server_close_reads_as_the_server_sent_it() {
        let close = |code, reason: &str| {
            ConnError::Closed(ServerClose::Frame {
                code,
                reason: reason.to_owned(),
            })
        };
        assert_eq!(
            close(Some(1008), "slow consumer").to_string(),
            r#"closed by the server: 1008 "slow consumer""#
        );
        assert_eq!(
            close(Some(1001), "").to_string(),
            "closed by the server: 1001"
        );
        assert_eq!(
            close(None, "").to_string(),
            "closed by the server: no status code"
        );
        assert_eq!(
            close(Some(1008), "two\nlines").to_string(),
            r#"closed by the server: 1008 "two\nlines""#
        );
        assert_eq!(
            ConnError::Eof.to_string(),
            "closed by the server: without a close frame (EOF)"
        );
        assert_eq!(ConnError::Eof.server_close(), Some(ServerClose::Eof));
        assert_eq!(ConnError::ConnectTimeout.server_close(), None);
    }
}
