//! Every way a configuration can be wrong ([`ConfigError`]), each naming the key and where its
//! value came from, and what a single option's own rule can say about its value ([`Refusal`]).
//!
//! Types and messages only: it must never decide what is valid (that is [`super::options`] and
//! [`super::validate`]) and never show a secret's value.

use std::ffi::OsString;
use std::net::AddrParseError;
use std::num::ParseIntError;
use std::path::PathBuf;
use std::time::Duration;

use super::load::Provenance;
use super::options::Key;
use super::units::{format_duration, format_size, DurationError, SizeError};
use crate::security::ip::CidrError;
use crate::security::origin::OriginPatternError;
use crate::security::SecurityConfigError;

/// Why a single value does not parse, whatever its key.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ValueError {
    /// A bad duration.
    #[error(transparent)]
    Duration(#[from] DurationError),
    /// A bad size.
    #[error(transparent)]
    Size(#[from] SizeError),
    /// A bad whole number.
    #[error("not a whole number ({0})")]
    Integer(#[from] ParseIntError),
    /// Neither `true` nor `false`.
    #[error("not a boolean (use true or false)")]
    Bool,
    /// Not `IP:PORT`.
    #[error("not a socket address such as 127.0.0.1:8080 or [::1]:8080 ({0})")]
    Address(#[from] AddrParseError),
    /// Not one of a fixed set of words.
    #[error("must be one of: {allowed}")]
    Choice {
        /// The accepted words, comma-separated.
        allowed: String,
    },
    /// A list entry that is not a CIDR block.
    #[error("{entry:?} is not a CIDR block such as 10.0.0.0/8 or 2001:db8::/32 ({problem})")]
    Cidr {
        /// The entry.
        entry: String,
        /// Why.
        problem: CidrError,
    },
    /// A `history_rooms` entry that does not read `prefix=size` or `prefix=size/ttl` (or, in the
    /// file, a table `{prefix, size, ttl}`).
    #[error("{entry:?} is not a history rule such as chat:=100/10m or ticker:=0 ({problem})")]
    HistoryRule {
        /// The entry.
        entry: String,
        /// Why.
        problem: String,
    },
    /// An `api_key_file` that cannot be read or holds no usable key.
    #[error("cannot use as an API key file: {0}")]
    ApiKeyFile(String),
    /// A list entry that is not an origin pattern.
    #[error("{entry:?} is not an origin pattern such as https://app.example.com, *.example.com or * ({problem})")]
    Origin {
        /// The entry.
        entry: String,
        /// Why.
        problem: OriginPatternError,
    },
}

/// Every way a configuration can be wrong, each naming the key and where its value came from.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The config file cannot be read.
    #[error("cannot read config file {}: {source}", path.display())]
    ReadFile {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The config file is not TOML.
    #[error("config file {} is not valid TOML: {message}", path.display())]
    FileSyntax {
        /// The file.
        path: PathBuf,
        /// The parser's explanation, with line and column.
        message: String,
    },
    /// A key in the config file that ringcast does not know.
    #[error("unknown key `{key}` in config file {}{}", path.display(), did_you_mean(suggestion))]
    UnknownKey {
        /// The key as written.
        key: String,
        /// The file.
        path: PathBuf,
        /// A known key it was probably meant to be.
        suggestion: Option<Key>,
    },
    /// A TOML value of the wrong type (`workers = "four"`).
    #[error("{} ({at}) must be {expected}, found {found}", at.key)]
    WrongType {
        /// The key and its file.
        at: Provenance,
        /// What the key takes.
        expected: &'static str,
        /// The TOML type found.
        found: &'static str,
    },
    /// An environment variable that is not valid UTF-8.
    #[error("{} ({at}) is not valid UTF-8", at.key)]
    NotUnicode {
        /// The key and its variable.
        at: Provenance,
        /// The raw value.
        value: OsString,
    },
    /// A value that does not parse.
    #[error("invalid {} = {value:?} ({at}): {problem}", at.key)]
    BadValue {
        /// The key and where it came from.
        at: Provenance,
        /// The value as given.
        value: String,
        /// Why it does not parse (boxed: some problems carry the entry they refuse).
        problem: Box<ValueError>,
    },
    /// A value that parses but lies outside its allowed range.
    #[error("invalid {} = {value} ({at}): must be {allowed}", at.key)]
    OutOfRange {
        /// The key and where it came from.
        at: Provenance,
        /// The value, formatted as the user would write it.
        value: String,
        /// The allowed range, in words.
        allowed: String,
    },
    /// `ring_entries` that is not a power of two.
    #[error(
        "invalid {} = {value} ({at}): must be a power of two (the kernel would round it up to {})",
        at.key, value.next_power_of_two()
    )]
    NotPowerOfTwo {
        /// `ring_entries` and where it came from.
        at: Provenance,
        /// The value.
        value: u32,
    },
    /// `ping_interval` not shorter than `idle_timeout`: idle connections would be closed before
    /// their ping could keep them alive.
    #[error(
        "invalid ping_interval = {} ({ping_at}): must be shorter than idle_timeout = {} ({idle_at})",
        format_duration(*ping), format_duration(*idle)
    )]
    PingNotBelowIdle {
        /// `ping_interval`.
        ping: Duration,
        /// Where it came from.
        ping_at: Provenance,
        /// `idle_timeout`.
        idle: Duration,
        /// Where it came from.
        idle_at: Provenance,
    },
    /// `max_frame_size` above `max_message_size`: an unfragmented frame is a whole message, so the
    /// frame limit could never be reached.
    #[error(
        "invalid max_frame_size = {} ({frame_at}): must not exceed max_message_size = {} ({message_at})",
        format_size(*frame), format_size(*message)
    )]
    FrameAboveMessage {
        /// `max_frame_size`.
        frame: usize,
        /// Where it came from.
        frame_at: Provenance,
        /// `max_message_size`.
        message: usize,
        /// Where it came from.
        message_at: Provenance,
    },
    /// A subprotocol that is not an HTTP token.
    #[error(
        "invalid subprotocols ({at}): {protocol:?} is not a token (RFC 6455 §4.1: non-empty, \
         characters U+0021 to U+007E, no separators)"
    )]
    InvalidSubprotocol {
        /// `subprotocols` and where it came from.
        at: Provenance,
        /// The offending entry.
        protocol: String,
    },
    /// A security setting that breaks one of [`SecurityConfig`](crate::security::SecurityConfig)'s rules (the message names the key
    /// and never shows a secret).
    #[error("{error} ({at})")]
    Security {
        /// The key and where it came from.
        at: Provenance,
        /// The rule broken.
        error: SecurityConfigError,
    },
    /// A subprotocol that would carry a token (`bearer.*`): selecting it would echo the client's
    /// token in the 101 response.
    #[error(
        "invalid subprotocols ({at}): {protocol:?} is reserved for tokens (a `bearer.` entry \
         carries a JWT and is never selected, so it is never echoed)"
    )]
    TokenSubprotocol {
        /// `subprotocols` and where it came from.
        at: Provenance,
        /// The offending entry.
        protocol: String,
    },
    /// An option set without another it needs (`webhook_url` without `webhook_secret`).
    #[error("{} is set ({at}) but needs {needs}", at.key)]
    Requires {
        /// The key and where it came from.
        at: Provenance,
        /// What else must be set, and why.
        needs: &'static str,
    },
    /// A subprotocol listed twice.
    #[error("invalid subprotocols ({at}): {protocol:?} is listed twice (RFC 6455 §4.1: \"MUST all be unique strings\")")]
    DuplicateSubprotocol {
        /// `subprotocols` and where it came from.
        at: Provenance,
        /// The repeated entry.
        protocol: String,
    },
}

impl ConfigError {
    /// A security rule refused by [`SecurityConfig`](crate::security::SecurityConfig), attributed to the key it names.
    pub(super) fn security(
        error: SecurityConfigError,
        at: &dyn Fn(Key) -> Provenance,
    ) -> ConfigError {
        let key = Key::from_name(error.field()).unwrap_or(Key::Auth);
        ConfigError::Security { at: at(key), error }
    }
}

fn did_you_mean(suggestion: &Option<Key>) -> String {
    match suggestion {
        Some(key) => format!(" (did you mean `{key}`?)"),
        None => String::new(),
    }
}

/// Why one option's own rule (the `check` of its declaration in [`super::options`]) refuses its
/// value. The loader turns it into a [`ConfigError`] naming the key and where the value came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Outside the allowed range; the text completes "must be ..." (`"between 1 and 1024"`).
    MustBe(String),
    /// Not a power of two (`ring_entries`).
    NotPowerOfTwo(u32),
    /// A subprotocol that is not an HTTP token.
    NotToken(String),
    /// A subprotocol reserved for carrying tokens (`bearer.*`).
    CarriesToken(String),
    /// A subprotocol listed twice.
    Repeated(String),
}

impl Refusal {
    /// The error for `at`, whose value reads `value` as the user would write it.
    pub(super) fn at(self, at: Provenance, value: String) -> ConfigError {
        match self {
            Refusal::MustBe(allowed) => ConfigError::OutOfRange { at, value, allowed },
            Refusal::NotPowerOfTwo(value) => ConfigError::NotPowerOfTwo { at, value },
            Refusal::NotToken(protocol) => ConfigError::InvalidSubprotocol { at, protocol },
            Refusal::CarriesToken(protocol) => ConfigError::TokenSubprotocol { at, protocol },
            Refusal::Repeated(protocol) => ConfigError::DuplicateSubprotocol { at, protocol },
        }
    }
}
