//! Server configuration: every knob, its default, its rules, and where each value came from.
//!
//! Owns [`Config`] (one [`impl Default`](Config::default) holding every default), the catalogue of
//! keys ([`Key`]: TOML key, `--flag`, `RINGCAST_*` variable), the human formats for durations
//! (`"30s"`, `"1m30s"`, `"500ms"`, a bare number of seconds) and sizes (`"16MiB"`, `"8KiB"`, a bare
//! number of bytes), the merge of the layers (flag > environment > file > default, see [`Loader`])
//! and [`Config::validate`].
//!
//! It must never touch a socket, spawn, or read a clock; the only I/O is reading the config file in
//! [`Loader::file`] and checking a configured JWT public key file in [`Loader::build`]. It runs once at start-up, so it may allocate freely: nothing here is on a hot
//! path, and the driver copies the values it needs out of [`Config`].

use std::ffi::OsString;
use std::fmt;
use std::net::{AddrParseError, IpAddr, Ipv4Addr, SocketAddr};
use std::num::ParseIntError;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::proto::frame::MAX_HEADER_LEN;
use crate::security::auth::{is_token_protocol, AuthMode};
use crate::security::ip::{Cidr, CidrError};
use crate::security::origin::{OriginPattern, OriginPatternError};
use crate::security::{read_public_key, Secret, SecurityConfig, SecurityConfigError};

const KIB: usize = 1024;
const MIB: usize = 1024 * KIB;

/// Most worker threads [`Config::validate`] accepts.
pub const MAX_WORKERS: usize = 1024;
/// Smallest handshake header limit: below 1 KiB ordinary browser handshakes (cookies, user agent)
/// would be refused with 431.
pub const MIN_HEADER_BYTES: usize = KIB;
/// Largest handshake header limit: more is an attack surface, not a use case.
pub const MAX_HEADER_BYTES: usize = MIB;
/// Fewest header lines a handshake can carry. RFC 6455 §4.1 requires five: "|Host|", "|Upgrade|",
/// "|Connection|", "|Sec-WebSocket-Key|" and "|Sec-WebSocket-Version|".
pub const MIN_HEADERS: usize = 5;
/// Most header lines: the driver parses into a header array of this length.
pub const MAX_HEADERS: usize = 1024;
/// Smallest frame limit. RFC 6455 §5.5: "All control frames MUST have a payload length of 125 bytes
/// or less", and an endpoint must be able to receive every one of them.
pub const MIN_FRAME_SIZE: usize = 125;
/// Largest io_uring submission queue (the kernel's `IORING_MAX_ENTRIES`).
pub const MAX_RING_ENTRIES: u32 = 32768;
/// Longest SQPOLL idle time: past this the polling thread burns a core for nothing.
pub const MAX_SQPOLL_IDLE: Duration = Duration::from_secs(60);
/// Longest room name [`Config::validate`] accepts for `max_room_name_len`: names travel in every
/// message frame of the room, so a long limit costs bandwidth on every delivery.
pub const MAX_ROOM_NAME_LEN: usize = 1024;
/// Largest listen backlog (the kernel caps it at `net.core.somaxconn` anyway).
pub const MAX_BACKLOG: u32 = 65535;

/// What to do when a connection's outgoing queue would exceed [`Config::max_backpressure`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum BackpressurePolicy {
    /// Close the slow connection with 1008 (policy violation): no message is ever silently lost.
    #[default]
    Close,
    /// Drop the new message for that connection and keep it open: for lossy feeds (prices, cursors)
    /// where the next message supersedes the last.
    Drop,
}

impl BackpressurePolicy {
    /// The spelling used in flags, environment and file.
    pub fn as_str(self) -> &'static str {
        match self {
            BackpressurePolicy::Close => "close",
            BackpressurePolicy::Drop => "drop",
        }
    }
}

/// Whether and how permessage-deflate (RFC 7692) is offered back to clients.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum CompressionMode {
    /// Decline every offer: no connection compresses.
    Off,
    /// Accept offers answering `server_no_context_takeover` and `client_no_context_takeover`: each
    /// worker compresses with one shared context reset per message, so one compressed frame goes
    /// to every recipient of a room message, and an idle connection holds no context at all.
    #[default]
    Shared,
    /// Accept offers with context takeover where the client allows it: each connection compresses
    /// its own replies with its own context (better ratios on similar messages, tens of KiB of
    /// memory per connection that has sent or received a compressed message). Room fan-out still
    /// uses the shared, once-per-message frame.
    Dedicated,
}

impl CompressionMode {
    /// The spelling used in flags, environment and file.
    pub fn as_str(self) -> &'static str {
        match self {
            CompressionMode::Off => "off",
            CompressionMode::Shared => "shared",
            CompressionMode::Dedicated => "dedicated",
        }
    }
}

/// Smallest LZ77 window [`Config::validate`] accepts for `compression_window_bits` (zlib's raw
/// deflate cannot use 8).
pub const MIN_COMPRESSION_WINDOW_BITS: u8 = 9;
/// Largest LZ77 window: 32 KiB, DEFLATE's maximum.
pub const MAX_COMPRESSION_WINDOW_BITS: u8 = 15;
/// Highest compression level (zlib's scale, 0 = stored only, 9 = smallest output).
pub const MAX_COMPRESSION_LEVEL: u32 = 9;

/// How log lines are written to stderr.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line, for log shippers.
    Json,
}

impl LogFormat {
    /// The spelling used in flags, environment and file.
    pub fn as_str(self) -> &'static str {
        match self {
            LogFormat::Text => "text",
            LogFormat::Json => "json",
        }
    }
}

/// Everything a `ringcast serve` process is told. Build it with [`Loader`] (or start from
/// [`Config::default`]) and check it with [`Config::validate`] before use.
///
/// Each field documents its default and when to change it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// Address every worker binds with SO_REUSEPORT. Default `127.0.0.1:8080` (loopback only, so a
    /// fresh install is not exposed). Use `0.0.0.0:PORT` or `[::]:PORT` to serve the network.
    pub listen: SocketAddr,
    /// Worker threads, each with its own io_uring runtime, listener and connection table. Default:
    /// the number of CPUs (`std::thread::available_parallelism`). Lower it to leave cores to other
    /// processes (a load generator on the same machine, say). Between 1 and [`MAX_WORKERS`].
    pub workers: usize,
    /// Pin worker `i` to CPU `i`. Default `false`. Turn on when ringcast owns the machine: it keeps
    /// caches warm and stops the scheduler from moving workers; leave off when sharing cores.
    pub pin: bool,
    /// Largest handshake request (request line plus headers) in bytes; more is refused with 431.
    /// Default 8 KiB. Raise it only for clients with very large cookies. Between
    /// [`MIN_HEADER_BYTES`] and [`MAX_HEADER_BYTES`].
    pub max_header_bytes: usize,
    /// Most header lines in a handshake request; more is refused with 431. Default 64. Between
    /// [`MIN_HEADERS`] and [`MAX_HEADERS`].
    pub max_headers: usize,
    /// Largest payload a single frame may declare; more fails the connection with 1009, before any
    /// memory is reserved. Default 16 MiB. Lower it when messages are small (chat, games): it bounds
    /// what one hostile client can make a worker buffer. At least [`MIN_FRAME_SIZE`] and at most
    /// `max_message_size`, since an unfragmented frame is a whole message.
    pub max_frame_size: usize,
    /// Largest message after reassembling fragments; more fails the connection with 1009. Default
    /// 16 MiB. Lower it with `max_frame_size`. At least `max_frame_size`.
    pub max_message_size: usize,
    /// Subprotocols offered in `Sec-WebSocket-Protocol`, in server preference order: the first one
    /// the client also lists is selected. Default: none (the header is never sent back). Each must
    /// be an HTTP token, and each may appear once.
    pub subprotocols: Vec<String>,
    /// Time a client has to complete the upgrade handshake after connecting. Default 10 s. Lower it
    /// under slowloris-style floods of idle sockets.
    pub handshake_timeout: Duration,
    /// Interval between server pings on a quiet connection. Default 30 s. Lower it behind proxies or
    /// NAT that drop idle TCP flows sooner. Must be shorter than `idle_timeout`.
    pub ping_interval: Duration,
    /// A connection that sends nothing (not even a pong) for this long is closed. Default 75 s,
    /// which allows two missed pings at the default `ping_interval`.
    pub idle_timeout: Duration,
    /// After sending a close frame, time to wait for the peer's close before dropping the TCP
    /// connection. Default 5 s.
    pub close_timeout: Duration,
    /// On shutdown (SIGTERM/SIGINT), time to let connections close cleanly before the process
    /// exits. Default 10 s. Raise it to ride out rolling deploys with slow clients.
    pub drain_timeout: Duration,
    /// Bytes that may wait in one connection's outgoing queue; past this, `backpressure_policy`
    /// applies. Default 1 MiB. Worst-case memory is this times `max_connections`; a message larger
    /// than this limit can never be queued.
    pub max_backpressure: usize,
    /// What happens to a connection whose queue is full. Default `close`.
    pub backpressure_policy: BackpressurePolicy,
    /// Most open WebSocket connections per process (the cap is shared across workers); upgrades past
    /// it are refused with 503 and `Retry-After`. Default 10 000: finite, so a connection flood is refused before it
    /// exhausts memory (worst case about `max_connections` × (`read_buffer_size` +
    /// `max_backpressure`)) or file descriptors. `ulimit -n` must exceed it by a few (listeners,
    /// rings). `0` means unlimited, leaving the descriptor limit as the only bound. Raise it together
    /// with `ulimit -n`.
    pub max_connections: usize,
    /// Initial size of each connection's read buffer. It grows on demand up to the frame limit and
    /// shrinks back afterwards. Default 4 KiB. Raise it when most messages are larger (fewer reads per
    /// message); idle connections hold no read buffer at all, so it does not cost idle memory. At least
    /// [`MAX_HEADER_LEN`] so a frame header always fits.
    pub read_buffer_size: usize,
    /// io_uring submission queue entries per worker. Default 256. Raise it when a worker drives
    /// thousands of busy connections and submissions queue up. A power of two, at most
    /// [`MAX_RING_ENTRIES`]: the kernel would round anything else up.
    pub ring_entries: u32,
    /// SQPOLL: a kernel thread polls each worker's submission queue, saving a syscall per batch, and
    /// sleeps after this much idleness. Default `None` (`off`): it costs a core per worker while
    /// busy. Turn on (with e.g. `2ms`) only with spare cores. At most [`MAX_SQPOLL_IDLE`], in whole
    /// milliseconds.
    pub sqpoll: Option<Duration>,
    /// Listen backlog (pending, not yet accepted connections) per worker. Default 1024. Raise it for
    /// bursts of reconnecting clients, together with `net.core.somaxconn`. At most [`MAX_BACKLOG`].
    pub backlog: u32,
    /// Log line format on stderr. Default `text`. The level comes from `RUST_LOG` (default `info`).
    pub log_format: LogFormat,
    /// Rooms one `/ws` connection may be in at once; one more gets `too_many_rooms`. Default 64.
    /// Each membership costs a few dozen bytes on the worker and on the room's owner. At least 1.
    pub max_rooms_per_connection: usize,
    /// Members one room may have across the server; one more gets `room_full`. Default 100 000.
    /// A publish to a room costs one write per member: lower it to bound that work. At least 1.
    pub max_room_members: usize,
    /// Longest room name in bytes (UTF-8); longer gets `room_name_too_long`. Default 64. The name
    /// is written into every message frame of the room. Between 1 and [`MAX_ROOM_NAME_LEN`].
    pub max_room_name_len: usize,
    /// Largest `payload` of a `publish` or `send`, as written in the envelope; larger gets
    /// `payload_too_large`. Default 64 KiB. Every member's queue holds a reference to each
    /// message, so this times the room's backlog bounds memory. At least 1 and at most
    /// `max_message_size`.
    pub max_payload_size: usize,
    /// Malformed envelopes in a row after which a `/ws` connection is closed with 1008. Default 16.
    /// Each gets an error reply first; a well-formed envelope resets the count. At least 1.
    pub max_envelope_errors: u32,
    /// Whether `publish` requires membership of the room (`not_joined` otherwise). Default
    /// `false`: any connection may publish to any room, like a webhook. Turn on for chat.
    pub publish_requires_join: bool,
    /// permessage-deflate: `off`, `shared` or `dedicated` (see [`CompressionMode`]). Default
    /// `shared`: browsers offer the extension on every connection, JSON shrinks two to four times,
    /// and the shared mode compresses a room message once and keeps no per-connection context
    /// (tuning.md has the measurements). Turn `off` when egress is cheap and CPU is not.
    pub compression: CompressionMode,
    /// Messages shorter than this are sent uncompressed (RSV1 clear) even to clients that
    /// negotiated compression. Default 128 B: below it deflate saves a few bytes at best and costs
    /// a compression call. Raise it to save CPU on small messages. At most `max_message_size`.
    pub compression_min_size: usize,
    /// DEFLATE level, 0 (stored) to 9 (smallest). Default 1: on JSON it keeps most of level 6's
    /// ratio at a fraction of the CPU (tuning.md). Raise it when egress costs more than CPU.
    pub compression_level: u32,
    /// LZ77 window of our compressor in bits, 9 to 15. Default 15 (32 KiB). A client that asks for
    /// a smaller window than this gets shared (room) frames uncompressed; in `dedicated` mode the
    /// window also bounds each connection's compression memory (about 2^(bits+2) bytes plus a
    /// fixed part). Between [`MIN_COMPRESSION_WINDOW_BITS`] and [`MAX_COMPRESSION_WINDOW_BITS`].
    pub compression_window_bits: u8,
    /// Authentication, Origin, address and rate rules (`auth`, `allowed_origins`, `allow_cidr`,
    /// `max_connections_per_ip`, `message_rate`, ...): each field of [`SecurityConfig`] is a key
    /// of the same name, documented there with its default and when to change it.
    pub security: SecurityConfig,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 8080),
            workers: default_workers(),
            pin: false,
            max_header_bytes: 8 * KIB,
            max_headers: 64,
            max_frame_size: 16 * MIB,
            max_message_size: 16 * MIB,
            subprotocols: Vec::new(),
            handshake_timeout: Duration::from_secs(10),
            ping_interval: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(75),
            close_timeout: Duration::from_secs(5),
            drain_timeout: Duration::from_secs(10),
            max_backpressure: MIB,
            backpressure_policy: BackpressurePolicy::Close,
            max_connections: 10_000,
            read_buffer_size: 4 * KIB,
            ring_entries: 256,
            sqpoll: None,
            backlog: 1024,
            log_format: LogFormat::Text,
            max_rooms_per_connection: 64,
            max_room_members: 100_000,
            max_room_name_len: 64,
            max_payload_size: 64 * KIB,
            max_envelope_errors: 16,
            publish_requires_join: false,
            compression: CompressionMode::Shared,
            compression_min_size: 128,
            compression_level: 1,
            compression_window_bits: MAX_COMPRESSION_WINDOW_BITS,
            security: SecurityConfig::default(),
        }
    }
}

/// The number of CPUs this process may run on, capped to [`MAX_WORKERS`]; 1 if unknown.
pub fn default_workers() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .min(MAX_WORKERS)
}

/// One configuration key. Its TOML key is [`Key::name`], its flag `--`[`Key::flag`], its
/// environment variable [`Key::env_var`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[allow(missing_docs)] // each variant is the field of `Config` with the same name
pub enum Key {
    Listen,
    Workers,
    Pin,
    MaxHeaderBytes,
    MaxHeaders,
    MaxFrameSize,
    MaxMessageSize,
    Subprotocols,
    HandshakeTimeout,
    PingInterval,
    IdleTimeout,
    CloseTimeout,
    DrainTimeout,
    MaxBackpressure,
    BackpressurePolicy,
    MaxConnections,
    ReadBufferSize,
    RingEntries,
    Sqpoll,
    Backlog,
    LogFormat,
    MaxRoomsPerConnection,
    MaxRoomMembers,
    MaxRoomNameLen,
    MaxPayloadSize,
    MaxEnvelopeErrors,
    PublishRequiresJoin,
    Compression,
    CompressionMinSize,
    CompressionLevel,
    CompressionWindowBits,
    Auth,
    AuthJwtSecret,
    AuthJwtPublicKey,
    AuthLeeway,
    AllowedOrigins,
    RequireOrigin,
    AllowCidr,
    DenyCidr,
    TrustedProxies,
    MaxConnectionsPerIp,
    HandshakeRate,
    HandshakeBurst,
    MessageRate,
    MessageBurst,
    MessageBytesRate,
    MessageRateStrikes,
    MessageRateGrace,
}

impl Key {
    /// Every key, in the order `--print-config` writes them.
    pub const ALL: [Key; 48] = [
        Key::Listen,
        Key::Workers,
        Key::Pin,
        Key::MaxHeaderBytes,
        Key::MaxHeaders,
        Key::MaxFrameSize,
        Key::MaxMessageSize,
        Key::Subprotocols,
        Key::HandshakeTimeout,
        Key::PingInterval,
        Key::IdleTimeout,
        Key::CloseTimeout,
        Key::DrainTimeout,
        Key::MaxBackpressure,
        Key::BackpressurePolicy,
        Key::MaxConnections,
        Key::ReadBufferSize,
        Key::RingEntries,
        Key::Sqpoll,
        Key::Backlog,
        Key::LogFormat,
        Key::MaxRoomsPerConnection,
        Key::MaxRoomMembers,
        Key::MaxRoomNameLen,
        Key::MaxPayloadSize,
        Key::MaxEnvelopeErrors,
        Key::PublishRequiresJoin,
        Key::Compression,
        Key::CompressionMinSize,
        Key::CompressionLevel,
        Key::CompressionWindowBits,
        Key::Auth,
        Key::AuthJwtSecret,
        Key::AuthJwtPublicKey,
        Key::AuthLeeway,
        Key::AllowedOrigins,
        Key::RequireOrigin,
        Key::AllowCidr,
        Key::DenyCidr,
        Key::TrustedProxies,
        Key::MaxConnectionsPerIp,
        Key::HandshakeRate,
        Key::HandshakeBurst,
        Key::MessageRate,
        Key::MessageBurst,
        Key::MessageBytesRate,
        Key::MessageRateStrikes,
        Key::MessageRateGrace,
    ];

    /// The TOML key, which is also the `Config` field name and the clap argument id.
    pub fn name(self) -> &'static str {
        match self {
            Key::Listen => "listen",
            Key::Workers => "workers",
            Key::Pin => "pin",
            Key::MaxHeaderBytes => "max_header_bytes",
            Key::MaxHeaders => "max_headers",
            Key::MaxFrameSize => "max_frame_size",
            Key::MaxMessageSize => "max_message_size",
            Key::Subprotocols => "subprotocols",
            Key::HandshakeTimeout => "handshake_timeout",
            Key::PingInterval => "ping_interval",
            Key::IdleTimeout => "idle_timeout",
            Key::CloseTimeout => "close_timeout",
            Key::DrainTimeout => "drain_timeout",
            Key::MaxBackpressure => "max_backpressure",
            Key::BackpressurePolicy => "backpressure_policy",
            Key::MaxConnections => "max_connections",
            Key::ReadBufferSize => "read_buffer_size",
            Key::RingEntries => "ring_entries",
            Key::Sqpoll => "sqpoll",
            Key::Backlog => "backlog",
            Key::LogFormat => "log_format",
            Key::MaxRoomsPerConnection => "max_rooms_per_connection",
            Key::MaxRoomMembers => "max_room_members",
            Key::MaxRoomNameLen => "max_room_name_len",
            Key::MaxPayloadSize => "max_payload_size",
            Key::MaxEnvelopeErrors => "max_envelope_errors",
            Key::PublishRequiresJoin => "publish_requires_join",
            Key::Compression => "compression",
            Key::CompressionMinSize => "compression_min_size",
            Key::CompressionLevel => "compression_level",
            Key::CompressionWindowBits => "compression_window_bits",
            Key::Auth => "auth",
            Key::AuthJwtSecret => "auth_jwt_secret",
            Key::AuthJwtPublicKey => "auth_jwt_public_key",
            Key::AuthLeeway => "auth_leeway",
            Key::AllowedOrigins => "allowed_origins",
            Key::RequireOrigin => "require_origin",
            Key::AllowCidr => "allow_cidr",
            Key::DenyCidr => "deny_cidr",
            Key::TrustedProxies => "trusted_proxies",
            Key::MaxConnectionsPerIp => "max_connections_per_ip",
            Key::HandshakeRate => "handshake_rate",
            Key::HandshakeBurst => "handshake_burst",
            Key::MessageRate => "message_rate",
            Key::MessageBurst => "message_burst",
            Key::MessageBytesRate => "message_bytes_rate",
            Key::MessageRateStrikes => "message_rate_strikes",
            Key::MessageRateGrace => "message_rate_grace",
        }
    }

    /// The long flag without its leading `--` (`max-frame-size`).
    pub fn flag(self) -> String {
        self.name().replace('_', "-")
    }

    /// The environment variable (`RINGCAST_MAX_FRAME_SIZE`).
    pub fn env_var(self) -> String {
        format!("RINGCAST_{}", self.name().to_ascii_uppercase())
    }

    /// The key whose TOML name is `name`.
    pub fn from_name(name: &str) -> Option<Key> {
        Key::ALL.into_iter().find(|k| k.name() == name)
    }

    /// Position in [`Key::ALL`]. Invariant: the variants are declared in `ALL` order (a unit test
    /// checks `Key::ALL[k.index()] == k`), so per-key tables can be plain arrays.
    fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Where a value came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Origin {
    /// [`Config::default`].
    Default,
    /// Set directly on a [`Config`] by the program (what [`Config::validate`] reports, since a bare
    /// `Config` does not remember its layers).
    Program,
    /// A key of this TOML file.
    File(PathBuf),
    /// The key's `RINGCAST_*` environment variable.
    Env,
    /// The key's command-line flag.
    Flag,
}

/// A key together with where its value came from; displays as `flag --workers`,
/// `environment variable RINGCAST_WORKERS`, `config file ringcast.toml` or `default`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Provenance {
    /// The key.
    pub key: Key,
    /// Where its value came from.
    pub origin: Origin,
}

impl fmt::Display for Provenance {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.origin {
            Origin::Default => f.write_str("default"),
            Origin::Program => f.write_str("set by the program"),
            Origin::File(path) => write!(f, "config file {}", path.display()),
            Origin::Env => write!(f, "environment variable {}", self.key.env_var()),
            Origin::Flag => write!(f, "flag --{}", self.key.flag()),
        }
    }
}

/// Why a duration string does not parse.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    /// Nothing but whitespace.
    #[error("empty duration")]
    Empty,
    /// A unit with no number before it, or a non-digit where a number belongs.
    #[error("expected a number at `{0}`")]
    MissingNumber(String),
    /// A unit other than `ns`, `us`, `ms`, `s`, `m`, `h`.
    #[error("unknown unit `{0}` (use ns, us, ms, s, m or h, e.g. 30s, 500ms, 1m30s)")]
    UnknownUnit(String),
    /// More than `Duration` can hold.
    #[error("duration too large")]
    Overflow,
}

/// Why a size string does not parse.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SizeError {
    /// Nothing but whitespace.
    #[error("empty size")]
    Empty,
    /// No whole number at the start.
    #[error("expected a whole number of bytes, optionally with a unit (e.g. 16MiB, 8KiB, 1024)")]
    MissingNumber,
    /// A unit other than `B`, `KiB`, `MiB`, `GiB`, `KB`, `MB`, `GB`.
    #[error("unknown unit `{0}` (use B, KiB, MiB, GiB, or decimal KB, MB, GB)")]
    UnknownUnit(String),
    /// More than `usize` can hold.
    #[error("size too large")]
    Overflow,
}

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
        allowed: &'static str,
    },
    /// A list entry that is not a CIDR block.
    #[error("{entry:?} is not a CIDR block such as 10.0.0.0/8 or 2001:db8::/32 ({problem})")]
    Cidr {
        /// The entry.
        entry: String,
        /// Why.
        problem: CidrError,
    },
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
    /// A security setting that breaks one of [`SecurityConfig`]'s rules (the message names the key
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
    /// A security rule refused by [`SecurityConfig`], attributed to the key it names.
    fn security(error: SecurityConfigError, at: &dyn Fn(Key) -> Provenance) -> ConfigError {
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

// ---------------------------------------------------------------------------------------------
// Human durations and sizes
// ---------------------------------------------------------------------------------------------

/// Parses a duration: a bare whole number of seconds (`"30"`), or one or more `<number><unit>`
/// groups with units `ns`, `us`, `ms`, `s`, `m`, `h` (`"500ms"`, `"2m"`, `"1m30s"`).
pub fn parse_duration(text: &str) -> Result<Duration, DurationError> {
    let text = text.trim();
    if text.is_empty() {
        return Err(DurationError::Empty);
    }
    if text.bytes().all(|b| b.is_ascii_digit()) {
        return text
            .parse::<u64>()
            .map(Duration::from_secs)
            .map_err(|_| DurationError::Overflow);
    }
    let mut rest = text;
    let mut total = Duration::ZERO;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(DurationError::MissingNumber(rest.to_owned()));
        }
        let number: u64 = rest[..digits]
            .parse()
            .map_err(|_| DurationError::Overflow)?;
        rest = &rest[digits..];
        let unit_len = rest.bytes().take_while(u8::is_ascii_alphabetic).count();
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        let part = match unit {
            "ns" => Some(Duration::from_nanos(number)),
            "us" => Some(Duration::from_micros(number)),
            "ms" => Some(Duration::from_millis(number)),
            "s" => Some(Duration::from_secs(number)),
            "m" => number.checked_mul(60).map(Duration::from_secs),
            "h" => number.checked_mul(3600).map(Duration::from_secs),
            // A number not followed by a unit inside a compound ("1m30") is ambiguous.
            _ => return Err(DurationError::UnknownUnit(unit.to_owned())),
        };
        total = part
            .and_then(|p| total.checked_add(p))
            .ok_or(DurationError::Overflow)?;
    }
    Ok(total)
}

/// Writes a duration the way [`parse_duration`] reads it, with the largest units first
/// (`"1m30s"`, `"500ms"`, `"0s"`). `parse_duration(&format_duration(d)) == Ok(d)` for every `d`.
pub fn format_duration(d: Duration) -> String {
    if d.is_zero() {
        return "0s".to_owned();
    }
    let secs = d.as_secs();
    let nanos = d.subsec_nanos();
    let parts = [
        (secs / 3600, "h"),
        (secs / 60 % 60, "m"),
        (secs % 60, "s"),
        (u64::from(nanos / 1_000_000), "ms"),
        (u64::from(nanos / 1_000 % 1_000), "us"),
        (u64::from(nanos % 1_000), "ns"),
    ];
    let mut out = String::new();
    for (n, unit) in parts {
        if n != 0 {
            out.push_str(&n.to_string());
            out.push_str(unit);
        }
    }
    out
}

/// Parses a size in bytes: a bare whole number (`"1024"`), or a number and a unit, case-insensitive,
/// optionally separated by a space: binary `B`, `KiB`, `MiB`, `GiB`, or decimal `KB`, `MB`, `GB`.
pub fn parse_size(text: &str) -> Result<usize, SizeError> {
    let text = text.trim();
    if text.is_empty() {
        return Err(SizeError::Empty);
    }
    let digits = text.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 {
        return Err(SizeError::MissingNumber);
    }
    let number: usize = text[..digits].parse().map_err(|_| SizeError::Overflow)?;
    let unit = text[digits..].trim_start();
    let multiplier: usize = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kib" => KIB,
        "mib" => MIB,
        "gib" => 1024 * MIB,
        "kb" => 1000,
        "mb" => 1_000_000,
        "gb" => 1_000_000_000,
        _ => return Err(SizeError::UnknownUnit(unit.to_owned())),
    };
    number.checked_mul(multiplier).ok_or(SizeError::Overflow)
}

/// Writes a size the way [`parse_size`] reads it, in the largest binary unit that divides it
/// exactly (`"16MiB"`, `"8KiB"`, `"1000B"`). `parse_size(&format_size(n)) == Ok(n)` for every `n`.
pub fn format_size(bytes: usize) -> String {
    const UNITS: [(usize, &str); 3] = [(1024 * MIB, "GiB"), (MIB, "MiB"), (KIB, "KiB")];
    for (unit, name) in UNITS {
        if bytes != 0 && bytes % unit == 0 {
            return format!("{}{name}", bytes / unit);
        }
    }
    format!("{bytes}B")
}

// ---------------------------------------------------------------------------------------------
// Reading one value, from text (flag, environment) or TOML (file)
// ---------------------------------------------------------------------------------------------

/// A value as it arrives from a layer.
enum Raw<'a> {
    /// From a flag or an environment variable.
    Text(&'a str),
    /// From the config file.
    Toml(&'a toml::Value),
}

fn toml_type(value: &toml::Value) -> &'static str {
    match value {
        toml::Value::String(_) => "a string",
        toml::Value::Integer(_) => "an integer",
        toml::Value::Float(_) => "a float",
        toml::Value::Boolean(_) => "a boolean",
        toml::Value::Datetime(_) => "a datetime",
        toml::Value::Array(_) => "an array",
        toml::Value::Table(_) => "a table",
    }
}

/// Reads one raw value for one key; every error names the key and its origin.
struct Reader<'a> {
    at: &'a Provenance,
}

impl Reader<'_> {
    fn wrong_type(&self, expected: &'static str, found: &toml::Value) -> ConfigError {
        ConfigError::WrongType {
            at: self.at.clone(),
            expected,
            found: toml_type(found),
        }
    }

    fn bad(&self, value: impl Into<String>, problem: impl Into<ValueError>) -> ConfigError {
        ConfigError::BadValue {
            at: self.at.clone(),
            value: value.into(),
            problem: Box::new(problem.into()),
        }
    }

    fn negative(&self, n: i64) -> ConfigError {
        ConfigError::OutOfRange {
            at: self.at.clone(),
            value: n.to_string(),
            allowed: "zero or more".to_owned(),
        }
    }

    fn duration(&self, raw: Raw<'_>) -> Result<Duration, ConfigError> {
        const EXPECTED: &str = "a duration string such as \"30s\" or an integer number of seconds";
        match raw {
            Raw::Text(s) => parse_duration(s).map_err(|e| self.bad(s, e)),
            Raw::Toml(toml::Value::String(s)) => parse_duration(s).map_err(|e| self.bad(s, e)),
            Raw::Toml(toml::Value::Integer(n)) => u64::try_from(*n)
                .map(Duration::from_secs)
                .map_err(|_| self.negative(*n)),
            Raw::Toml(other) => Err(self.wrong_type(EXPECTED, other)),
        }
    }

    fn size(&self, raw: Raw<'_>) -> Result<usize, ConfigError> {
        const EXPECTED: &str = "a size string such as \"16MiB\" or an integer number of bytes";
        match raw {
            Raw::Text(s) => parse_size(s).map_err(|e| self.bad(s, e)),
            Raw::Toml(toml::Value::String(s)) => parse_size(s).map_err(|e| self.bad(s, e)),
            Raw::Toml(toml::Value::Integer(n)) => {
                usize::try_from(*n).map_err(|_| self.negative(*n))
            }
            Raw::Toml(other) => Err(self.wrong_type(EXPECTED, other)),
        }
    }

    fn count<T: std::str::FromStr<Err = ParseIntError>>(
        &self,
        raw: Raw<'_>,
    ) -> Result<T, ConfigError> {
        match raw {
            Raw::Text(s) => s.trim().parse().map_err(|e| self.bad(s, e)),
            // Parsing the decimal text gives the field's own range check and overflow message.
            Raw::Toml(toml::Value::Integer(n)) => n.to_string().parse().map_err(|e| {
                if *n < 0 {
                    self.negative(*n)
                } else {
                    self.bad(n.to_string(), e)
                }
            }),
            Raw::Toml(other) => Err(self.wrong_type("an integer", other)),
        }
    }

    fn boolean(&self, raw: Raw<'_>) -> Result<bool, ConfigError> {
        match raw {
            Raw::Text(s) => match s.trim().to_ascii_lowercase().as_str() {
                "true" => Ok(true),
                "false" => Ok(false),
                _ => Err(self.bad(s, ValueError::Bool)),
            },
            Raw::Toml(toml::Value::Boolean(b)) => Ok(*b),
            Raw::Toml(other) => Err(self.wrong_type("true or false", other)),
        }
    }

    fn text<'v>(&self, raw: &Raw<'v>) -> Result<&'v str, ConfigError> {
        match *raw {
            Raw::Text(s) => Ok(s),
            Raw::Toml(toml::Value::String(s)) => Ok(s),
            Raw::Toml(other) => Err(self.wrong_type("a string", other)),
        }
    }

    fn address(&self, raw: Raw<'_>) -> Result<SocketAddr, ConfigError> {
        let s = self.text(&raw)?;
        s.trim().parse().map_err(|e: AddrParseError| self.bad(s, e))
    }

    fn list(&self, raw: Raw<'_>) -> Result<Vec<String>, ConfigError> {
        match raw {
            // Comma-separated; an empty string is the empty list.
            Raw::Text(s) => Ok(s
                .split(',')
                .map(str::trim)
                .filter(|p| !p.is_empty())
                .map(str::to_owned)
                .collect()),
            Raw::Toml(toml::Value::Array(items)) => items
                .iter()
                .map(|item| match item {
                    toml::Value::String(s) => Ok(s.clone()),
                    other => Err(self.wrong_type("an array of strings", other)),
                })
                .collect(),
            Raw::Toml(other) => Err(self.wrong_type("an array of strings", other)),
        }
    }

    /// A list whose entries each parse as `T`; `problem` says why an entry does not.
    fn parsed_list<T: std::str::FromStr>(
        &self,
        raw: Raw<'_>,
        problem: fn(String, T::Err) -> ValueError,
    ) -> Result<Vec<T>, ConfigError> {
        self.list(raw)?
            .into_iter()
            .map(|entry| {
                entry
                    .parse()
                    .map_err(|e| self.bad(entry.clone(), problem(entry, e)))
            })
            .collect()
    }

    fn cidrs(&self, raw: Raw<'_>) -> Result<Vec<Cidr>, ConfigError> {
        self.parsed_list(raw, |entry, problem| ValueError::Cidr { entry, problem })
    }

    fn origins(&self, raw: Raw<'_>) -> Result<Vec<OriginPattern>, ConfigError> {
        self.parsed_list(raw, |entry, problem| ValueError::Origin { entry, problem })
    }

    /// Text where an empty string means "not set".
    fn optional_text(&self, raw: Raw<'_>) -> Result<Option<String>, ConfigError> {
        let s = self.text(&raw)?;
        Ok((!s.is_empty()).then(|| s.to_owned()))
    }

    fn choice<T: Copy>(
        &self,
        raw: Raw<'_>,
        options: &[(&str, T)],
        allowed: &'static str,
    ) -> Result<T, ConfigError> {
        let s = self.text(&raw)?;
        let wanted = s.trim().to_ascii_lowercase();
        options
            .iter()
            .find(|(name, _)| *name == wanted)
            .map(|(_, v)| *v)
            .ok_or_else(|| self.bad(s, ValueError::Choice { allowed }))
    }

    fn sqpoll(&self, raw: Raw<'_>) -> Result<Option<Duration>, ConfigError> {
        match raw {
            Raw::Text(s) if s.trim() == "off" => Ok(None),
            Raw::Toml(toml::Value::String(s)) if s.trim() == "off" => Ok(None),
            other => self.duration(other).map(Some),
        }
    }
}

impl Config {
    /// Sets `key` from one raw value. Ranges and cross-key rules are left to [`Config::validate`].
    fn set(&mut self, at: &Provenance, raw: Raw<'_>) -> Result<(), ConfigError> {
        let r = Reader { at };
        match at.key {
            Key::Listen => self.listen = r.address(raw)?,
            Key::Workers => self.workers = r.count(raw)?,
            Key::Pin => self.pin = r.boolean(raw)?,
            Key::MaxHeaderBytes => self.max_header_bytes = r.size(raw)?,
            Key::MaxHeaders => self.max_headers = r.count(raw)?,
            Key::MaxFrameSize => self.max_frame_size = r.size(raw)?,
            Key::MaxMessageSize => self.max_message_size = r.size(raw)?,
            Key::Subprotocols => self.subprotocols = r.list(raw)?,
            Key::HandshakeTimeout => self.handshake_timeout = r.duration(raw)?,
            Key::PingInterval => self.ping_interval = r.duration(raw)?,
            Key::IdleTimeout => self.idle_timeout = r.duration(raw)?,
            Key::CloseTimeout => self.close_timeout = r.duration(raw)?,
            Key::DrainTimeout => self.drain_timeout = r.duration(raw)?,
            Key::MaxBackpressure => self.max_backpressure = r.size(raw)?,
            Key::BackpressurePolicy => {
                self.backpressure_policy = r.choice(
                    raw,
                    &[
                        ("close", BackpressurePolicy::Close),
                        ("drop", BackpressurePolicy::Drop),
                    ],
                    "close, drop",
                )?
            }
            Key::MaxConnections => self.max_connections = r.count(raw)?,
            Key::ReadBufferSize => self.read_buffer_size = r.size(raw)?,
            Key::RingEntries => self.ring_entries = r.count(raw)?,
            Key::Sqpoll => self.sqpoll = r.sqpoll(raw)?,
            Key::Backlog => self.backlog = r.count(raw)?,
            Key::LogFormat => {
                self.log_format = r.choice(
                    raw,
                    &[("text", LogFormat::Text), ("json", LogFormat::Json)],
                    "text, json",
                )?
            }
            Key::MaxRoomsPerConnection => self.max_rooms_per_connection = r.count(raw)?,
            Key::MaxRoomMembers => self.max_room_members = r.count(raw)?,
            Key::MaxRoomNameLen => self.max_room_name_len = r.count(raw)?,
            Key::MaxPayloadSize => self.max_payload_size = r.size(raw)?,
            Key::MaxEnvelopeErrors => self.max_envelope_errors = r.count(raw)?,
            Key::PublishRequiresJoin => self.publish_requires_join = r.boolean(raw)?,
            Key::Compression => {
                self.compression = r.choice(
                    raw,
                    &[
                        ("off", CompressionMode::Off),
                        ("shared", CompressionMode::Shared),
                        ("dedicated", CompressionMode::Dedicated),
                    ],
                    "off, shared, dedicated",
                )?
            }
            Key::CompressionMinSize => self.compression_min_size = r.size(raw)?,
            Key::CompressionLevel => self.compression_level = r.count(raw)?,
            Key::CompressionWindowBits => self.compression_window_bits = r.count(raw)?,
            Key::Auth => {
                self.security.auth = r.choice(
                    raw,
                    &[
                        ("off", AuthMode::Off),
                        ("optional", AuthMode::Optional),
                        ("required", AuthMode::Required),
                    ],
                    "off, optional, required",
                )?
            }
            Key::AuthJwtSecret => self.security.auth_jwt_secret = r.optional_text(raw)?.map(Secret),
            Key::AuthJwtPublicKey => {
                self.security.auth_jwt_public_key = r.optional_text(raw)?.map(PathBuf::from)
            }
            Key::AuthLeeway => self.security.auth_leeway = r.duration(raw)?,
            Key::AllowedOrigins => self.security.allowed_origins = r.origins(raw)?,
            Key::RequireOrigin => self.security.require_origin = r.boolean(raw)?,
            Key::AllowCidr => self.security.allow_cidr = r.cidrs(raw)?,
            Key::DenyCidr => self.security.deny_cidr = r.cidrs(raw)?,
            Key::TrustedProxies => self.security.trusted_proxies = r.cidrs(raw)?,
            Key::MaxConnectionsPerIp => self.security.max_connections_per_ip = r.count(raw)?,
            Key::HandshakeRate => self.security.handshake_rate = r.count(raw)?,
            Key::HandshakeBurst => self.security.handshake_burst = r.count(raw)?,
            Key::MessageRate => self.security.message_rate = r.count(raw)?,
            Key::MessageBurst => self.security.message_burst = r.count(raw)?,
            Key::MessageBytesRate => self.security.message_bytes_rate = r.size(raw)?,
            Key::MessageRateStrikes => self.security.message_rate_strikes = r.count(raw)?,
            Key::MessageRateGrace => self.security.message_rate_grace = r.duration(raw)?,
        }
        Ok(())
    }

    /// The value of `key`, written as it would be in a flag or environment variable (and, quoted
    /// where TOML needs it, in the file): `"16MiB"`, `"30s"`, `"chat,superchat"`, `"off"`.
    pub fn render(&self, key: Key) -> String {
        match key {
            Key::Listen => self.listen.to_string(),
            Key::Workers => self.workers.to_string(),
            Key::Pin => self.pin.to_string(),
            Key::MaxHeaderBytes => format_size(self.max_header_bytes),
            Key::MaxHeaders => self.max_headers.to_string(),
            Key::MaxFrameSize => format_size(self.max_frame_size),
            Key::MaxMessageSize => format_size(self.max_message_size),
            Key::Subprotocols => self.subprotocols.join(","),
            Key::HandshakeTimeout => format_duration(self.handshake_timeout),
            Key::PingInterval => format_duration(self.ping_interval),
            Key::IdleTimeout => format_duration(self.idle_timeout),
            Key::CloseTimeout => format_duration(self.close_timeout),
            Key::DrainTimeout => format_duration(self.drain_timeout),
            Key::MaxBackpressure => format_size(self.max_backpressure),
            Key::BackpressurePolicy => self.backpressure_policy.as_str().to_owned(),
            Key::MaxConnections => self.max_connections.to_string(),
            Key::ReadBufferSize => format_size(self.read_buffer_size),
            Key::RingEntries => self.ring_entries.to_string(),
            Key::Sqpoll => self
                .sqpoll
                .map_or_else(|| "off".to_owned(), format_duration),
            Key::Backlog => self.backlog.to_string(),
            Key::LogFormat => self.log_format.as_str().to_owned(),
            Key::MaxRoomsPerConnection => self.max_rooms_per_connection.to_string(),
            Key::MaxRoomMembers => self.max_room_members.to_string(),
            Key::MaxRoomNameLen => self.max_room_name_len.to_string(),
            Key::MaxPayloadSize => format_size(self.max_payload_size),
            Key::MaxEnvelopeErrors => self.max_envelope_errors.to_string(),
            Key::PublishRequiresJoin => self.publish_requires_join.to_string(),
            Key::Compression => self.compression.as_str().to_owned(),
            Key::CompressionMinSize => format_size(self.compression_min_size),
            Key::CompressionLevel => self.compression_level.to_string(),
            Key::CompressionWindowBits => self.compression_window_bits.to_string(),
            Key::Auth => self.security.auth.as_str().to_owned(),
            Key::AuthJwtSecret => self
                .security
                .auth_jwt_secret
                .as_ref()
                .map_or_else(String::new, |s| s.0.clone()),
            Key::AuthJwtPublicKey => self
                .security
                .auth_jwt_public_key
                .as_ref()
                .map_or_else(String::new, |p| p.display().to_string()),
            Key::AuthLeeway => format_duration(self.security.auth_leeway),
            Key::AllowedOrigins => join(&self.security.allowed_origins),
            Key::RequireOrigin => self.security.require_origin.to_string(),
            Key::AllowCidr => join(&self.security.allow_cidr),
            Key::DenyCidr => join(&self.security.deny_cidr),
            Key::TrustedProxies => join(&self.security.trusted_proxies),
            Key::MaxConnectionsPerIp => self.security.max_connections_per_ip.to_string(),
            Key::HandshakeRate => self.security.handshake_rate.to_string(),
            Key::HandshakeBurst => self.security.handshake_burst.to_string(),
            Key::MessageRate => self.security.message_rate.to_string(),
            Key::MessageBurst => self.security.message_burst.to_string(),
            Key::MessageBytesRate => format_size(self.security.message_bytes_rate),
            Key::MessageRateStrikes => self.security.message_rate_strikes.to_string(),
            Key::MessageRateGrace => format_duration(self.security.message_rate_grace),
        }
    }

    /// The whole configuration as a TOML document, one `key = value` line per key in
    /// [`Key::ALL`] order. Feeding it back through `--config` yields the same `Config`, except
    /// that a set `auth_jwt_secret` is never printed: its line is a comment saying it is set.
    pub fn to_toml(&self) -> String {
        self.toml_document(false)
    }

    /// [`Config::to_toml`], with the secret printed when `with_secrets` (tests only).
    fn toml_document(&self, with_secrets: bool) -> String {
        let int = |n: u64| toml::Value::Integer(i64::try_from(n).unwrap_or(i64::MAX));
        let strings = |items: Vec<String>| {
            toml::Value::Array(items.into_iter().map(toml::Value::String).collect())
        };
        let texts = |items: &[_]| strings(items.iter().map(ToString::to_string).collect());
        let sec = &self.security;
        let mut out = String::new();
        for key in Key::ALL {
            let value = match key {
                Key::Workers => int(self.workers as u64),
                Key::Pin => toml::Value::Boolean(self.pin),
                Key::MaxHeaders => int(self.max_headers as u64),
                Key::MaxConnections => int(self.max_connections as u64),
                Key::RingEntries => int(u64::from(self.ring_entries)),
                Key::Backlog => int(u64::from(self.backlog)),
                Key::MaxRoomsPerConnection => int(self.max_rooms_per_connection as u64),
                Key::MaxRoomMembers => int(self.max_room_members as u64),
                Key::MaxRoomNameLen => int(self.max_room_name_len as u64),
                Key::MaxEnvelopeErrors => int(u64::from(self.max_envelope_errors)),
                Key::PublishRequiresJoin => toml::Value::Boolean(self.publish_requires_join),
                Key::CompressionLevel => int(u64::from(self.compression_level)),
                Key::CompressionWindowBits => int(u64::from(self.compression_window_bits)),
                Key::Subprotocols => strings(self.subprotocols.clone()),
                Key::AuthJwtSecret if sec.auth_jwt_secret.is_some() && !with_secrets => {
                    out.push_str("# auth_jwt_secret is set (never printed)\n");
                    continue;
                }
                Key::AllowedOrigins => strings(
                    sec.allowed_origins
                        .iter()
                        .map(ToString::to_string)
                        .collect(),
                ),
                Key::RequireOrigin => toml::Value::Boolean(sec.require_origin),
                Key::AllowCidr => texts(&sec.allow_cidr),
                Key::DenyCidr => texts(&sec.deny_cidr),
                Key::TrustedProxies => texts(&sec.trusted_proxies),
                Key::MaxConnectionsPerIp => int(u64::from(sec.max_connections_per_ip)),
                Key::HandshakeRate => int(u64::from(sec.handshake_rate)),
                Key::HandshakeBurst => int(u64::from(sec.handshake_burst)),
                Key::MessageRate => int(u64::from(sec.message_rate)),
                Key::MessageBurst => int(u64::from(sec.message_burst)),
                Key::MessageRateStrikes => int(u64::from(sec.message_rate_strikes)),
                _ => toml::Value::String(self.render(key)),
            };
            out.push_str(&format!("{} = {value}\n", key.name()));
        }
        out
    }

    /// SQPOLL idle time in milliseconds, as the kernel takes it, or `None` when SQPOLL is off.
    pub fn sqpoll_idle_ms(&self) -> Option<u32> {
        self.sqpoll
            .map(|d| u32::try_from(d.as_millis()).unwrap_or(u32::MAX))
    }

    /// Checks every range and cross-key rule. Errors name the key; since a bare `Config` does not
    /// remember its layers, the origin they report is [`Origin::Program`] ([`Loader::build`]
    /// reports the real one).
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.check(&|key| Provenance {
            key,
            origin: Origin::Program,
        })
    }

    fn check(&self, at: &dyn Fn(Key) -> Provenance) -> Result<(), ConfigError> {
        let range = |key: Key, value: String, allowed: String| ConfigError::OutOfRange {
            at: at(key),
            value,
            allowed,
        };
        let positive_size = |key: Key, value: usize| {
            if value == 0 {
                Err(range(key, format_size(value), "greater than 0".to_owned()))
            } else {
                Ok(())
            }
        };
        let positive_duration = |key: Key, value: Duration| {
            if value.is_zero() {
                Err(range(
                    key,
                    format_duration(value),
                    "longer than 0s".to_owned(),
                ))
            } else {
                Ok(())
            }
        };

        if !(1..=MAX_WORKERS).contains(&self.workers) {
            return Err(range(
                Key::Workers,
                self.workers.to_string(),
                format!("between 1 and {MAX_WORKERS}"),
            ));
        }
        if !(MIN_HEADER_BYTES..=MAX_HEADER_BYTES).contains(&self.max_header_bytes) {
            return Err(range(
                Key::MaxHeaderBytes,
                format_size(self.max_header_bytes),
                format!(
                    "between {} and {}",
                    format_size(MIN_HEADER_BYTES),
                    format_size(MAX_HEADER_BYTES)
                ),
            ));
        }
        // RFC 6455 §4.1: the handshake "MUST" carry Host, Upgrade, Connection,
        // Sec-WebSocket-Key and Sec-WebSocket-Version, so fewer than five lines refuses everyone.
        if !(MIN_HEADERS..=MAX_HEADERS).contains(&self.max_headers) {
            return Err(range(
                Key::MaxHeaders,
                self.max_headers.to_string(),
                format!("between {MIN_HEADERS} and {MAX_HEADERS}"),
            ));
        }
        // RFC 6455 §5.5: "All control frames MUST have a payload length of 125 bytes or less";
        // a frame limit below that would reject legal pings and closes.
        if self.max_frame_size < MIN_FRAME_SIZE {
            return Err(range(
                Key::MaxFrameSize,
                format_size(self.max_frame_size),
                format!(
                    "at least {} (the largest control frame)",
                    format_size(MIN_FRAME_SIZE)
                ),
            ));
        }
        // Invariant: max_frame_size <= max_message_size. An unfragmented frame is a whole message,
        // so a larger frame limit could never be reached; rejecting it keeps the two honest.
        if self.max_frame_size > self.max_message_size {
            return Err(ConfigError::FrameAboveMessage {
                frame: self.max_frame_size,
                frame_at: at(Key::MaxFrameSize),
                message: self.max_message_size,
                message_at: at(Key::MaxMessageSize),
            });
        }
        self.check_subprotocols(at(Key::Subprotocols))?;
        self.security
            .validate()
            .map_err(|e| ConfigError::security(e, at))?;
        positive_duration(Key::HandshakeTimeout, self.handshake_timeout)?;
        positive_duration(Key::PingInterval, self.ping_interval)?;
        positive_duration(Key::IdleTimeout, self.idle_timeout)?;
        positive_duration(Key::CloseTimeout, self.close_timeout)?;
        positive_duration(Key::DrainTimeout, self.drain_timeout)?;
        // Invariant: ping_interval < idle_timeout, so a healthy idle peer is pinged (and answers)
        // before the idle timer can fire.
        if self.ping_interval >= self.idle_timeout {
            return Err(ConfigError::PingNotBelowIdle {
                ping: self.ping_interval,
                ping_at: at(Key::PingInterval),
                idle: self.idle_timeout,
                idle_at: at(Key::IdleTimeout),
            });
        }
        positive_size(Key::MaxBackpressure, self.max_backpressure)?;
        // Invariant: a read buffer always holds a complete frame header, so the header decoder can
        // make progress without a regrowth.
        if self.read_buffer_size < MAX_HEADER_LEN {
            return Err(range(
                Key::ReadBufferSize,
                format_size(self.read_buffer_size),
                format!(
                    "at least {} (the longest frame header)",
                    format_size(MAX_HEADER_LEN)
                ),
            ));
        }
        if !(1..=MAX_RING_ENTRIES).contains(&self.ring_entries) {
            return Err(range(
                Key::RingEntries,
                self.ring_entries.to_string(),
                format!("between 1 and {MAX_RING_ENTRIES}"),
            ));
        }
        if !self.ring_entries.is_power_of_two() {
            return Err(ConfigError::NotPowerOfTwo {
                at: at(Key::RingEntries),
                value: self.ring_entries,
            });
        }
        if let Some(idle) = self.sqpoll {
            // The kernel takes sq_thread_idle in whole milliseconds.
            let whole_ms = idle.subsec_nanos() % 1_000_000 == 0;
            if idle < Duration::from_millis(1) || idle > MAX_SQPOLL_IDLE || !whole_ms {
                return Err(range(
                    Key::Sqpoll,
                    format_duration(idle),
                    format!(
                        "off or whole milliseconds between 1ms and {} (a bare number means seconds)",
                        format_duration(MAX_SQPOLL_IDLE)
                    ),
                ));
            }
        }
        if !(1..=MAX_BACKLOG).contains(&self.backlog) {
            return Err(range(
                Key::Backlog,
                self.backlog.to_string(),
                format!("between 1 and {MAX_BACKLOG}"),
            ));
        }
        let at_least_one = |key: Key, value: usize| {
            if value == 0 {
                Err(range(key, value.to_string(), "at least 1".to_owned()))
            } else {
                Ok(())
            }
        };
        at_least_one(Key::MaxRoomsPerConnection, self.max_rooms_per_connection)?;
        at_least_one(Key::MaxRoomMembers, self.max_room_members)?;
        at_least_one(Key::MaxEnvelopeErrors, self.max_envelope_errors as usize)?;
        if !(1..=MAX_ROOM_NAME_LEN).contains(&self.max_room_name_len) {
            return Err(range(
                Key::MaxRoomNameLen,
                self.max_room_name_len.to_string(),
                format!("between 1 and {MAX_ROOM_NAME_LEN}"),
            ));
        }
        if self.compression_level > MAX_COMPRESSION_LEVEL {
            return Err(range(
                Key::CompressionLevel,
                self.compression_level.to_string(),
                format!("between 0 and {MAX_COMPRESSION_LEVEL}"),
            ));
        }
        if !(MIN_COMPRESSION_WINDOW_BITS..=MAX_COMPRESSION_WINDOW_BITS)
            .contains(&self.compression_window_bits)
        {
            return Err(range(
                Key::CompressionWindowBits,
                self.compression_window_bits.to_string(),
                format!("between {MIN_COMPRESSION_WINDOW_BITS} and {MAX_COMPRESSION_WINDOW_BITS}"),
            ));
        }
        // A message over max_message_size is never sent, so a larger threshold could never apply.
        if self.compression_min_size > self.max_message_size {
            return Err(range(
                Key::CompressionMinSize,
                format_size(self.compression_min_size),
                format!(
                    "at most max_message_size ({})",
                    format_size(self.max_message_size)
                ),
            ));
        }
        // A payload travels inside one message, so a larger payload limit could never be reached.
        if self.max_payload_size == 0 || self.max_payload_size > self.max_message_size {
            return Err(range(
                Key::MaxPayloadSize,
                format_size(self.max_payload_size),
                format!(
                    "between 1B and max_message_size ({})",
                    format_size(self.max_message_size)
                ),
            ));
        }
        Ok(())
    }

    fn check_subprotocols(&self, at: Provenance) -> Result<(), ConfigError> {
        for (i, protocol) in self.subprotocols.iter().enumerate() {
            // RFC 6455 §4.1: "The elements that comprise this value MUST be non-empty strings with
            // characters in the range U+0021 to U+007E not including separator characters as
            // defined in [RFC2616] and MUST all be unique strings."
            if protocol.is_empty() || !protocol.bytes().all(is_token_byte) {
                return Err(ConfigError::InvalidSubprotocol {
                    at,
                    protocol: protocol.clone(),
                });
            }
            if is_token_protocol(protocol) {
                return Err(ConfigError::TokenSubprotocol {
                    at,
                    protocol: protocol.clone(),
                });
            }
            if self.subprotocols[..i].contains(protocol) {
                return Err(ConfigError::DuplicateSubprotocol {
                    at,
                    protocol: protocol.clone(),
                });
            }
        }
        Ok(())
    }
}

/// Comma-separated canonical texts (CIDR blocks, origin patterns), as a flag would take them.
fn join<T: fmt::Display>(items: &[T]) -> String {
    items
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

/// An RFC 2616 token character: U+0021 to U+007E minus the separators
/// `( ) < > @ , ; : \ " / [ ] ? = { }` (space and tab are already outside the range).
fn is_token_byte(b: u8) -> bool {
    (0x21..=0x7e).contains(&b) && !b"()<>@,;:\\\"/[]?={}".contains(&b)
}

// ---------------------------------------------------------------------------------------------
// Layers
// ---------------------------------------------------------------------------------------------

/// The `RINGCAST_*` variable naming the config file (read by the command line, not a [`Key`]).
pub const CONFIG_FILE_VAR: &str = "RINGCAST_CONFIG";

/// The `RINGCAST_*` names among `names` that are neither a [`Key`]'s variable nor
/// [`CONFIG_FILE_VAR`], each with the key it was probably meant to be. A misspelt
/// `RINGCAST_AUTH_REQURED` is otherwise silently ignored, so the caller warns about each.
pub fn unknown_env_vars(names: impl IntoIterator<Item = OsString>) -> Vec<(String, Option<Key>)> {
    names
        .into_iter()
        .filter_map(|name| name.into_string().ok())
        .filter(|name| name.starts_with("RINGCAST_") && name != CONFIG_FILE_VAR)
        .filter(|name| Key::ALL.iter().all(|k| k.env_var() != *name))
        .map(|name| {
            let guess = closest_key(&name["RINGCAST_".len()..]);
            (name, guess)
        })
        .collect()
}

/// The key `name` was probably meant to be: written in another case or with dashes
/// (`Max-Frame-Size`), or within two edits of a key's name (`max_frame_sise`). Suggests keys for
/// unknown file keys and unknown `RINGCAST_*` variables alike.
fn closest_key(name: &str) -> Option<Key> {
    let name = name.to_ascii_lowercase().replace('-', "_");
    Key::ALL
        .into_iter()
        .map(|k| (strsim::levenshtein(k.name(), &name), k))
        .filter(|(d, _)| *d <= 2)
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

/// Merges the layers into a [`Config`]: start from the defaults, then apply the file, the
/// environment and the flags, in that order, each overriding the last (flag > env > file > default),
/// and remember where each key's value came from so errors can say so.
///
/// ```
/// use ringcast::config::{Key, Loader};
/// let env = |name: &str| (name == "RINGCAST_WORKERS").then(|| "3".into());
/// let mut loader = Loader::new();
/// loader.env(env).unwrap();
/// loader.flags([(Key::Listen, "[::1]:9000")]).unwrap();
/// let config = loader.build().unwrap();
/// assert_eq!(config.workers, 3);
/// assert_eq!(config.listen.to_string(), "[::1]:9000");
/// ```
#[derive(Debug)]
pub struct Loader {
    config: Config,
    /// Where each key's current value came from, indexed by `Key as usize`.
    origins: Vec<Origin>,
}

impl Default for Loader {
    fn default() -> Self {
        Loader::new()
    }
}

impl Loader {
    /// Starts from [`Config::default`].
    pub fn new() -> Self {
        Loader {
            config: Config::default(),
            origins: vec![Origin::Default; Key::ALL.len()],
        }
    }

    fn apply(&mut self, key: Key, origin: Origin, raw: Raw<'_>) -> Result<(), ConfigError> {
        let at = Provenance { key, origin };
        self.config.set(&at, raw)?;
        self.origins[key.index()] = at.origin;
        Ok(())
    }

    /// Applies the TOML file at `path`. Unknown keys are an error.
    pub fn file(&mut self, path: &Path) -> Result<&mut Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::ReadFile {
            path: path.to_owned(),
            source,
        })?;
        self.toml(&text, path)
    }

    /// Applies TOML text as if read from `path` (which only names the origin).
    pub fn toml(&mut self, text: &str, path: &Path) -> Result<&mut Self, ConfigError> {
        let table: toml::Table =
            text.parse()
                .map_err(|e: toml::de::Error| ConfigError::FileSyntax {
                    path: path.to_owned(),
                    message: e.to_string().trim_end().to_owned(),
                })?;
        for (name, value) in &table {
            let key = Key::from_name(name).ok_or_else(|| ConfigError::UnknownKey {
                key: name.clone(),
                path: path.to_owned(),
                suggestion: closest_key(name),
            })?;
            self.apply(key, Origin::File(path.to_owned()), Raw::Toml(value))?;
        }
        Ok(self)
    }

    /// Applies every `RINGCAST_*` variable that `lookup` returns (pass
    /// `|name| std::env::var_os(name)` for the process environment).
    pub fn env(
        &mut self,
        lookup: impl Fn(&str) -> Option<OsString>,
    ) -> Result<&mut Self, ConfigError> {
        for key in Key::ALL {
            let Some(value) = lookup(&key.env_var()) else {
                continue;
            };
            let Some(text) = value.to_str() else {
                return Err(ConfigError::NotUnicode {
                    at: Provenance {
                        key,
                        origin: Origin::Env,
                    },
                    value,
                });
            };
            self.apply(key, Origin::Env, Raw::Text(text))?;
        }
        Ok(self)
    }

    /// Applies command-line flag values.
    pub fn flags<'a>(
        &mut self,
        flags: impl IntoIterator<Item = (Key, &'a str)>,
    ) -> Result<&mut Self, ConfigError> {
        for (key, text) in flags {
            self.apply(key, Origin::Flag, Raw::Text(text))?;
        }
        Ok(self)
    }

    /// Where `key`'s current value came from.
    pub fn origin(&self, key: Key) -> &Origin {
        &self.origins[key.index()]
    }

    /// Validates the merged configuration, naming each offending key's origin, and returns it.
    /// A named `auth_jwt_public_key` is read and checked here, so an unusable key is refused
    /// like any other bad value (and `--print-config` does not print a config that cannot run).
    pub fn build(self) -> Result<Config, ConfigError> {
        let at = |key: Key| Provenance {
            key,
            origin: self.origins[key.index()].clone(),
        };
        self.config.check(&at)?;
        if let Some(path) = &self.config.security.auth_jwt_public_key {
            read_public_key(path).map_err(|e| ConfigError::security(e, &at))?;
        }
        Ok(self.config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(
        file: &str,
        env: &[(&str, &str)],
        flags: &[(Key, &str)],
    ) -> Result<Config, ConfigError> {
        let mut loader = Loader::new();
        loader.toml(file, Path::new("test.toml"))?;
        loader.env(|name| {
            env.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| OsString::from(v))
        })?;
        loader.flags(flags.iter().copied())?;
        loader.build()
    }

    fn load_err(file: &str, env: &[(&str, &str)], flags: &[(Key, &str)]) -> String {
        load(file, env, flags)
            .expect_err("configuration should be rejected")
            .to_string()
    }

    // --- durations -------------------------------------------------------------------------

    #[test]
    fn a_bare_number_is_a_duration_in_seconds() {
        assert_eq!(parse_duration("30"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration(" 0 "), Ok(Duration::ZERO));
    }

    #[test]
    fn durations_take_ns_us_ms_s_m_h_units() {
        assert_eq!(parse_duration("7ns"), Ok(Duration::from_nanos(7)));
        assert_eq!(parse_duration("7us"), Ok(Duration::from_micros(7)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
    }

    #[test]
    fn compound_durations_add_their_parts() {
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(
            parse_duration("1h2m3s4ms"),
            Ok(Duration::from_millis(3_723_004))
        );
    }

    #[test]
    fn malformed_durations_say_why() {
        assert_eq!(parse_duration(""), Err(DurationError::Empty));
        assert_eq!(parse_duration("  "), Err(DurationError::Empty));
        assert_eq!(
            parse_duration("s"),
            Err(DurationError::MissingNumber("s".into()))
        );
        assert_eq!(
            parse_duration("5x"),
            Err(DurationError::UnknownUnit("x".into()))
        );
        assert_eq!(
            parse_duration("1m30"),
            Err(DurationError::UnknownUnit(String::new()))
        );
        assert_eq!(
            parse_duration("-5s"),
            Err(DurationError::MissingNumber("-5s".into()))
        );
        assert_eq!(
            parse_duration("1.5s"),
            Err(DurationError::UnknownUnit(String::new()))
        );
        assert_eq!(
            parse_duration("5 s"),
            Err(DurationError::UnknownUnit(String::new()))
        );
    }

    #[test]
    fn durations_that_overflow_are_rejected() {
        assert_eq!(
            parse_duration("99999999999999999999"),
            Err(DurationError::Overflow)
        );
        assert_eq!(
            parse_duration("18446744073709551615h"),
            Err(DurationError::Overflow)
        );
        assert_eq!(
            parse_duration("18446744073709551615s1s"),
            Err(DurationError::Overflow)
        );
    }

    #[test]
    fn formatted_durations_use_the_largest_units_first() {
        assert_eq!(format_duration(Duration::ZERO), "0s");
        assert_eq!(format_duration(Duration::from_secs(30)), "30s");
        assert_eq!(format_duration(Duration::from_secs(90)), "1m30s");
        assert_eq!(format_duration(Duration::from_secs(7200)), "2h");
        assert_eq!(format_duration(Duration::from_millis(1500)), "1s500ms");
        assert_eq!(format_duration(Duration::new(0, 1_002_003)), "1ms2us3ns");
    }

    #[test]
    fn every_formatted_duration_parses_back_to_itself() {
        let samples = [
            Duration::ZERO,
            Duration::from_nanos(1),
            Duration::from_millis(999),
            Duration::from_secs(59),
            Duration::from_secs(3661),
            Duration::new(86_400 * 365, 123_456_789),
            Duration::MAX,
        ];
        for d in samples {
            assert_eq!(parse_duration(&format_duration(d)), Ok(d), "{d:?}");
        }
    }

    // --- sizes -----------------------------------------------------------------------------

    #[test]
    fn a_bare_number_is_a_size_in_bytes() {
        assert_eq!(parse_size("1024"), Ok(1024));
        assert_eq!(parse_size("0"), Ok(0));
    }

    #[test]
    fn sizes_take_binary_and_decimal_units_in_any_case() {
        assert_eq!(parse_size("8KiB"), Ok(8192));
        assert_eq!(parse_size("16MiB"), Ok(16 << 20));
        assert_eq!(parse_size("1GiB"), Ok(1 << 30));
        assert_eq!(parse_size("16mib"), Ok(16 << 20));
        assert_eq!(parse_size("3 B"), Ok(3));
        assert_eq!(parse_size("2kB"), Ok(2000));
        assert_eq!(parse_size("2MB"), Ok(2_000_000));
        assert_eq!(parse_size("1GB"), Ok(1_000_000_000));
    }

    #[test]
    fn malformed_sizes_say_why() {
        assert_eq!(parse_size(""), Err(SizeError::Empty));
        assert_eq!(parse_size("MiB"), Err(SizeError::MissingNumber));
        assert_eq!(parse_size("-1"), Err(SizeError::MissingNumber));
        assert_eq!(parse_size("16M"), Err(SizeError::UnknownUnit("M".into())));
        assert_eq!(
            parse_size("1.5MiB"),
            Err(SizeError::UnknownUnit(".5MiB".into()))
        );
        assert_eq!(parse_size("99999999999999999999"), Err(SizeError::Overflow));
        assert_eq!(
            parse_size("18446744073709551615GiB"),
            Err(SizeError::Overflow)
        );
    }

    #[test]
    fn formatted_sizes_use_the_largest_exact_binary_unit() {
        assert_eq!(format_size(16 << 20), "16MiB");
        assert_eq!(format_size(8192), "8KiB");
        assert_eq!(format_size(1 << 30), "1GiB");
        assert_eq!(format_size(1536), "1536B");
        assert_eq!(format_size(1000), "1000B");
        assert_eq!(format_size(0), "0B");
    }

    #[test]
    fn every_formatted_size_parses_back_to_itself() {
        for n in [0, 1, 14, 1000, 1024, 1025, 3 << 20, 5 << 30, usize::MAX] {
            assert_eq!(parse_size(&format_size(n)), Ok(n), "{n}");
        }
    }

    // --- defaults and the catalogue ---------------------------------------------------------

    #[test]
    fn the_defaults_are_valid() {
        Config::default()
            .validate()
            .expect("defaults must validate");
    }

    #[test]
    fn the_defaults_match_the_documented_values() {
        let c = Config::default();
        assert_eq!(c.render(Key::Listen), "127.0.0.1:8080");
        assert_eq!(c.workers, default_workers());
        assert_eq!(c.render(Key::MaxHeaderBytes), "8KiB");
        assert_eq!(c.max_headers, 64);
        assert_eq!(c.render(Key::MaxFrameSize), "16MiB");
        assert_eq!(c.render(Key::MaxMessageSize), "16MiB");
        assert_eq!(c.render(Key::HandshakeTimeout), "10s");
        assert_eq!(c.render(Key::PingInterval), "30s");
        assert_eq!(c.render(Key::IdleTimeout), "1m15s");
        assert_eq!(c.render(Key::CloseTimeout), "5s");
        assert_eq!(c.render(Key::DrainTimeout), "10s");
        assert_eq!(c.render(Key::MaxBackpressure), "1MiB");
        assert_eq!(c.render(Key::BackpressurePolicy), "close");
        assert_eq!(c.max_connections, 10_000);
        assert_eq!(c.render(Key::ReadBufferSize), "4KiB");
        assert_eq!(c.ring_entries, 256);
        assert_eq!(c.render(Key::Sqpoll), "off");
        assert_eq!(c.backlog, 1024);
        assert_eq!(c.render(Key::LogFormat), "text");
        assert!(!c.pin && c.subprotocols.is_empty());
    }

    #[test]
    fn keys_map_to_flags_and_environment_variables() {
        assert_eq!(Key::MaxFrameSize.flag(), "max-frame-size");
        assert_eq!(Key::MaxFrameSize.env_var(), "RINGCAST_MAX_FRAME_SIZE");
        for key in Key::ALL {
            assert_eq!(Key::from_name(key.name()), Some(key));
            assert_eq!(Key::ALL[key.index()], key);
        }
    }

    // --- layers ----------------------------------------------------------------------------

    #[test]
    fn a_flag_beats_the_environment_which_beats_the_file_which_beats_the_default() {
        let file = "workers = 3\nping_interval = \"20s\"\nidle_timeout = \"40s\"\n";
        let env = [
            ("RINGCAST_PING_INTERVAL", "25s"),
            ("RINGCAST_IDLE_TIMEOUT", "50s"),
        ];
        let flags = [(Key::IdleTimeout, "60s")];
        let mut loader = Loader::new();
        loader.toml(file, Path::new("test.toml")).unwrap();
        loader
            .env(|name| {
                env.iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| OsString::from(v))
            })
            .unwrap();
        loader.flags(flags).unwrap();
        assert_eq!(
            loader.origin(Key::Workers),
            &Origin::File("test.toml".into())
        );
        assert_eq!(loader.origin(Key::PingInterval), &Origin::Env);
        assert_eq!(loader.origin(Key::IdleTimeout), &Origin::Flag);
        assert_eq!(loader.origin(Key::Listen), &Origin::Default);
        let c = loader.build().unwrap();
        assert_eq!(c.workers, 3);
        assert_eq!(c.ping_interval, Duration::from_secs(25));
        assert_eq!(c.idle_timeout, Duration::from_secs(60));
        assert_eq!(c.listen, Config::default().listen);
    }

    #[test]
    fn compression_options_are_checked_against_their_ranges() {
        let bad = |key: Key, value: &str| load_err("", &[], &[(key, value)]);
        assert!(bad(Key::Compression, "zstd").contains("off, shared, dedicated"));
        assert!(bad(Key::CompressionLevel, "10").contains("between 0 and 9"));
        assert!(bad(Key::CompressionWindowBits, "8").contains("between 9 and 15"));
        assert!(bad(Key::CompressionWindowBits, "16").contains("between 9 and 15"));
        assert!(bad(Key::CompressionMinSize, "32MiB").contains("at most max_message_size"));
        let c = Config::default();
        assert_eq!(c.render(Key::Compression), "shared");
        assert_eq!(c.render(Key::CompressionMinSize), "128B");
    }

    #[test]
    fn every_key_can_be_set_from_each_layer() {
        let mut wanted = Config {
            listen: "[::1]:9000".parse().unwrap(),
            workers: 3,
            pin: true,
            max_header_bytes: 2 * KIB,
            max_headers: 10,
            max_frame_size: MIB,
            max_message_size: 2 * MIB,
            subprotocols: vec!["chat".into(), "v2.json".into()],
            handshake_timeout: Duration::from_secs(3),
            ping_interval: Duration::from_millis(1500),
            idle_timeout: Duration::from_secs(4),
            close_timeout: Duration::from_secs(6),
            drain_timeout: Duration::from_secs(120),
            max_backpressure: 64 * KIB,
            backpressure_policy: BackpressurePolicy::Drop,
            max_connections: 0,
            read_buffer_size: 512,
            ring_entries: 1024,
            sqpoll: Some(Duration::from_millis(2)),
            backlog: 16,
            log_format: LogFormat::Json,
            max_rooms_per_connection: 3,
            max_room_members: 500,
            max_room_name_len: 32,
            max_payload_size: 8 * KIB,
            max_envelope_errors: 4,
            publish_requires_join: true,
            compression: CompressionMode::Dedicated,
            compression_min_size: 64,
            compression_level: 6,
            compression_window_bits: 12,
            security: SecurityConfig {
                auth: AuthMode::Required,
                auth_jwt_secret: Some(Secret("0123456789abcdef0123456789abcdef!".into())),
                auth_jwt_public_key: Some(PathBuf::from(concat!(
                    env!("CARGO_MANIFEST_DIR"),
                    "/tests/security_fixtures/rsa_public.pem"
                ))),
                auth_leeway: Duration::from_secs(5),
                allowed_origins: vec![
                    "https://app.example.com".parse().unwrap(),
                    "*.example.org".parse().unwrap(),
                ],
                require_origin: true,
                allow_cidr: vec!["10.0.0.0/8".parse().unwrap(), "::1/128".parse().unwrap()],
                deny_cidr: vec!["10.1.0.0/16".parse().unwrap()],
                trusted_proxies: vec!["192.168.0.0/24".parse().unwrap()],
                max_connections_per_ip: 7,
                handshake_rate: 3,
                handshake_burst: 4,
                message_rate: 50,
                message_burst: 60,
                message_bytes_rate: 64 * KIB,
                message_rate_strikes: 2,
                message_rate_grace: Duration::from_millis(1500),
            },
        };
        let text: Vec<(Key, String)> = Key::ALL.iter().map(|&k| (k, wanted.render(k))).collect();

        let from_file = load(&wanted.toml_document(true), &[], &[]).unwrap();
        assert_eq!(from_file, wanted);

        let env: Vec<(String, String)> =
            text.iter().map(|(k, v)| (k.env_var(), v.clone())).collect();
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        assert_eq!(load("", &env, &[]).unwrap(), wanted);

        let flags: Vec<(Key, &str)> = text.iter().map(|(k, v)| (*k, v.as_str())).collect();
        assert_eq!(load("", &[], &flags).unwrap(), wanted);

        wanted.subprotocols.clear();
        assert_eq!(
            load("", &[], &[(Key::Subprotocols, "")])
                .unwrap()
                .subprotocols,
            wanted.subprotocols
        );
    }

    #[test]
    fn file_values_may_be_bare_numbers_for_durations_and_sizes() {
        let c = load(
            "idle_timeout = 90\nmax_frame_size = 4096\nsqpoll = 1\n",
            &[],
            &[],
        )
        .unwrap();
        assert_eq!(c.idle_timeout, Duration::from_secs(90));
        assert_eq!(c.max_frame_size, 4096);
        assert_eq!(c.sqpoll, Some(Duration::from_secs(1)));
    }

    #[test]
    fn the_pin_flag_and_choices_ignore_case() {
        let c = load(
            "",
            &[("RINGCAST_PIN", "TRUE"), ("RINGCAST_LOG_FORMAT", "JSON")],
            &[],
        )
        .unwrap();
        assert!(c.pin);
        assert_eq!(c.log_format, LogFormat::Json);
    }

    #[test]
    fn an_unknown_file_key_is_named_with_a_suggestion() {
        let err = load_err("max-frame-size = 10\n", &[], &[]);
        assert_eq!(
            err,
            "unknown key `max-frame-size` in config file test.toml (did you mean `max_frame_size`?)"
        );
        let err = load_err("colour = \"blue\"\n", &[], &[]);
        assert_eq!(err, "unknown key `colour` in config file test.toml");
    }

    #[test]
    fn a_file_that_is_not_toml_is_rejected() {
        let err = load("workers = \n", &[], &[]).unwrap_err();
        assert!(matches!(err, ConfigError::FileSyntax { .. }), "{err}");
    }

    #[test]
    fn a_missing_file_names_its_path() {
        let err = Loader::new()
            .file(Path::new("/nonexistent/ringcast.toml"))
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("cannot read config file /nonexistent/ringcast.toml:"),
            "{err}"
        );
    }

    #[test]
    fn a_file_value_of_the_wrong_type_names_key_type_and_file() {
        assert_eq!(
            load_err("workers = \"four\"\n", &[], &[]),
            "workers (config file test.toml) must be an integer, found a string"
        );
        assert_eq!(
            load_err("pin = 1\n", &[], &[]),
            "pin (config file test.toml) must be true or false, found an integer"
        );
        assert_eq!(
            load_err("subprotocols = \"chat\"\n", &[], &[]),
            "subprotocols (config file test.toml) must be an array of strings, found a string"
        );
        assert_eq!(
            load_err("subprotocols = [\"chat\", 2]\n", &[], &[]),
            "subprotocols (config file test.toml) must be an array of strings, found an integer"
        );
        assert_eq!(
            load_err("idle_timeout = 1.5\n", &[], &[]),
            "idle_timeout (config file test.toml) must be a duration string such as \"30s\" or an \
             integer number of seconds, found a float"
        );
    }

    #[test]
    fn a_negative_file_number_is_out_of_range() {
        assert_eq!(
            load_err("max_frame_size = -1\n", &[], &[]),
            "invalid max_frame_size = -1 (config file test.toml): must be zero or more"
        );
        assert_eq!(
            load_err("workers = -2\n", &[], &[]),
            "invalid workers = -2 (config file test.toml): must be zero or more"
        );
    }

    #[test]
    fn a_file_number_too_large_for_its_field_is_rejected() {
        let err = load_err("ring_entries = 5000000000\n", &[], &[]);
        assert!(
            err.starts_with("invalid ring_entries = \"5000000000\" (config file test.toml)"),
            "{err}"
        );
    }

    #[test]
    fn unparsable_values_name_the_key_the_value_and_the_layer() {
        assert_eq!(
            load_err("", &[("RINGCAST_IDLE_TIMEOUT", "soon")], &[]),
            "invalid idle_timeout = \"soon\" (environment variable RINGCAST_IDLE_TIMEOUT): \
             expected a number at `soon`"
        );
        assert_eq!(
            load_err("", &[], &[(Key::MaxFrameSize, "16M")]),
            "invalid max_frame_size = \"16M\" (flag --max-frame-size): unknown unit `M` \
             (use B, KiB, MiB, GiB, or decimal KB, MB, GB)"
        );
        assert_eq!(
            load_err("", &[], &[(Key::BackpressurePolicy, "block")]),
            "invalid backpressure_policy = \"block\" (flag --backpressure-policy): \
             must be one of: close, drop"
        );
        assert_eq!(
            load_err("", &[], &[(Key::Pin, "yes")]),
            "invalid pin = \"yes\" (flag --pin): not a boolean (use true or false)"
        );
        let err = load_err("listen = \"localhost:80\"\n", &[], &[]);
        assert!(
            err.starts_with(
                "invalid listen = \"localhost:80\" (config file test.toml): not a socket address"
            ),
            "{err}"
        );
        let err = load_err("", &[("RINGCAST_WORKERS", "two")], &[]);
        assert!(err.starts_with("invalid workers = \"two\" (environment variable RINGCAST_WORKERS): not a whole number"), "{err}");
    }

    #[test]
    fn an_environment_variable_that_is_not_utf8_is_rejected() {
        use std::os::unix::ffi::OsStringExt;
        let err = Loader::new()
            .env(|name| (name == "RINGCAST_LISTEN").then(|| OsString::from_vec(vec![0xff])))
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "listen (environment variable RINGCAST_LISTEN) is not valid UTF-8"
        );
    }

    // --- validation --------------------------------------------------------------------------

    #[test]
    fn workers_must_be_between_1_and_1024() {
        assert_eq!(
            load_err("", &[], &[(Key::Workers, "0")]),
            "invalid workers = 0 (flag --workers): must be between 1 and 1024"
        );
        assert!(load_err("", &[], &[(Key::Workers, "1025")]).contains("between 1 and 1024"));
        assert_eq!(
            load("", &[], &[(Key::Workers, "1024")]).unwrap().workers,
            1024
        );
    }

    #[test]
    fn max_header_bytes_must_be_between_1kib_and_1mib() {
        assert_eq!(
            load_err("", &[], &[(Key::MaxHeaderBytes, "1023")]),
            "invalid max_header_bytes = 1023B (flag --max-header-bytes): must be between 1KiB and 1MiB"
        );
        assert!(load("", &[], &[(Key::MaxHeaderBytes, "1KiB")]).is_ok());
        assert!(load_err("", &[], &[(Key::MaxHeaderBytes, "1025KiB")]).contains("max_header_bytes"));
    }

    #[test]
    fn max_headers_must_leave_room_for_the_five_required_headers() {
        assert!(load_err("max_headers = 4\n", &[], &[])
            .contains("max_headers = 4 (config file test.toml): must be between 5 and 1024"));
        assert!(load("max_headers = 5\n", &[], &[]).is_ok());
        assert!(load_err("max_headers = 1025\n", &[], &[]).contains("max_headers"));
    }

    #[test]
    fn max_frame_size_below_125_bytes_is_rejected() {
        assert_eq!(
            load_err("", &[], &[(Key::MaxFrameSize, "124")]),
            "invalid max_frame_size = 124B (flag --max-frame-size): must be at least 125B \
             (the largest control frame)"
        );
        assert!(load("", &[], &[(Key::MaxFrameSize, "125")]).is_ok());
    }

    #[test]
    fn max_frame_size_above_max_message_size_names_both_keys_and_origins() {
        assert_eq!(
            load_err(
                "max_message_size = \"1MiB\"\n",
                &[("RINGCAST_MAX_FRAME_SIZE", "2MiB")],
                &[]
            ),
            "invalid max_frame_size = 2MiB (environment variable RINGCAST_MAX_FRAME_SIZE): must \
             not exceed max_message_size = 1MiB (config file test.toml)"
        );
        assert!(load(
            "max_message_size = \"1MiB\"\nmax_frame_size = \"1MiB\"\n",
            &[],
            &[]
        )
        .is_ok());
    }

    #[test]
    fn ping_interval_must_be_shorter_than_idle_timeout() {
        assert_eq!(
            load_err("", &[], &[(Key::PingInterval, "75s")]),
            "invalid ping_interval = 1m15s (flag --ping-interval): must be shorter than \
             idle_timeout = 1m15s (default)"
        );
        assert!(load("", &[], &[(Key::PingInterval, "74s")]).is_ok());
    }

    #[test]
    fn zero_durations_are_rejected() {
        for key in [
            Key::HandshakeTimeout,
            Key::PingInterval,
            Key::IdleTimeout,
            Key::CloseTimeout,
            Key::DrainTimeout,
        ] {
            let err = load_err("", &[], &[(key, "0s")]);
            assert_eq!(
                err,
                format!(
                    "invalid {key} = 0s (flag --{}): must be longer than 0s",
                    key.flag()
                )
            );
        }
    }

    #[test]
    fn zero_max_backpressure_is_rejected() {
        assert_eq!(
            load_err("", &[("RINGCAST_MAX_BACKPRESSURE", "0")], &[]),
            "invalid max_backpressure = 0B (environment variable RINGCAST_MAX_BACKPRESSURE): \
             must be greater than 0"
        );
    }

    #[test]
    fn a_read_buffer_smaller_than_a_frame_header_is_rejected() {
        assert!(load_err("", &[], &[(Key::ReadBufferSize, "13")]).contains("at least 14B"));
        assert!(load("", &[], &[(Key::ReadBufferSize, "14")]).is_ok());
    }

    #[test]
    fn ring_entries_must_be_a_power_of_two_up_to_32768() {
        assert_eq!(
            load_err("", &[], &[(Key::RingEntries, "300")]),
            "invalid ring_entries = 300 (flag --ring-entries): must be a power of two (the kernel \
             would round it up to 512)"
        );
        assert!(load_err("", &[], &[(Key::RingEntries, "0")]).contains("between 1 and 32768"));
        assert!(load_err("", &[], &[(Key::RingEntries, "65536")]).contains("between 1 and 32768"));
        assert!(load("", &[], &[(Key::RingEntries, "32768")]).is_ok());
    }

    #[test]
    fn sqpoll_is_off_or_whole_milliseconds_up_to_a_minute() {
        assert_eq!(
            load("", &[], &[(Key::Sqpoll, "off")])
                .unwrap()
                .sqpoll_idle_ms(),
            None
        );
        assert_eq!(
            load("", &[], &[(Key::Sqpoll, "2ms")])
                .unwrap()
                .sqpoll_idle_ms(),
            Some(2)
        );
        assert!(load_err("", &[], &[(Key::Sqpoll, "2000")]).contains("between 1ms and 1m"));
        assert!(load_err("", &[], &[(Key::Sqpoll, "500us")]).contains("sqpoll"));
        assert!(load_err("", &[], &[(Key::Sqpoll, "1ms500us")]).contains("whole milliseconds"));
    }

    #[test]
    fn backlog_must_be_between_1_and_65535() {
        assert!(load_err("backlog = 0\n", &[], &[]).contains("between 1 and 65535"));
        assert!(load_err("backlog = 65536\n", &[], &[]).contains("between 1 and 65535"));
    }

    #[test]
    fn subprotocols_must_be_unique_tokens() {
        assert_eq!(
            load_err("", &[], &[(Key::Subprotocols, "chat,a b")]),
            "invalid subprotocols (flag --subprotocols): \"a b\" is not a token (RFC 6455 §4.1: \
             non-empty, characters U+0021 to U+007E, no separators)"
        );
        assert!(load_err("subprotocols = [\"\"]\n", &[], &[]).contains("\"\" is not a token"));
        assert!(load_err("subprotocols = [\"x/y\"]\n", &[], &[]).contains("not a token"));
        assert!(load_err("subprotocols = [\"é\"]\n", &[], &[]).contains("not a token"));
        assert_eq!(
            load_err("", &[("RINGCAST_SUBPROTOCOLS", "chat, chat")], &[]),
            "invalid subprotocols (environment variable RINGCAST_SUBPROTOCOLS): \"chat\" is listed \
             twice (RFC 6455 §4.1: \"MUST all be unique strings\")"
        );
    }

    #[test]
    fn validate_on_a_bare_config_reports_the_program_as_origin() {
        let config = Config {
            workers: 0,
            ..Config::default()
        };
        assert_eq!(
            config.validate().unwrap_err().to_string(),
            "invalid workers = 0 (set by the program): must be between 1 and 1024"
        );
    }

    #[test]
    fn print_config_output_reads_back_as_the_same_config() {
        let config = Config {
            subprotocols: vec!["a\"b".into()],
            ..Config::default()
        };
        let mut loader = Loader::new();
        loader.toml(&config.to_toml(), Path::new("x.toml")).unwrap();
        assert_eq!(loader.config, config);
        assert!(config
            .to_toml()
            .starts_with("listen = \"127.0.0.1:8080\"\nworkers = "));
    }

    #[test]
    fn print_config_never_prints_the_jwt_secret() {
        let secret = "a-very-secret-hmac-key-of-32-bytes-or-more";
        let config = load("", &[("RINGCAST_AUTH_JWT_SECRET", secret)], &[]).unwrap();
        let text = config.to_toml();
        assert!(!text.contains(secret), "{text}");
        assert!(
            text.contains("# auth_jwt_secret is set (never printed)\n"),
            "{text}"
        );
        assert!(!format!("{config:?}").contains(secret));
    }

    #[test]
    fn security_rules_are_refused_naming_the_key_and_its_origin() {
        let err = load_err("", &[("RINGCAST_AUTH", "required")], &[]);
        assert!(
            err.contains("auth = required: needs auth_jwt_secret or auth_jwt_public_key"),
            "{err}"
        );
        assert!(err.contains("environment variable RINGCAST_AUTH"), "{err}");
        let err = load_err("", &[], &[(Key::AuthJwtSecret, "short")]);
        assert!(
            err.contains("auth_jwt_secret: must be at least 32 bytes, got 5"),
            "{err}"
        );
        assert!(!err.contains("short"), "the secret is never shown: {err}");
        let err = load_err("deny_cidr = [\"10.0.0.1/8\"]", &[], &[]);
        assert!(err.contains("invalid deny_cidr = \"10.0.0.1/8\""), "{err}");
        let err = load_err("", &[], &[(Key::AllowedOrigins, "ftp://x.example.com")]);
        assert!(err.contains("invalid allowed_origins"), "{err}");
        let err = load_err(
            "",
            &[],
            &[(Key::MessageRate, "10"), (Key::MessageBurst, "0")],
        );
        assert!(err.contains("message_burst"), "{err}");
    }

    #[test]
    fn a_token_carrying_subprotocol_cannot_be_configured() {
        let err = load_err("", &[], &[(Key::Subprotocols, "chat,Bearer.x")]);
        assert!(err.contains("\"Bearer.x\" is reserved for tokens"), "{err}");
    }

    #[test]
    fn unknown_ringcast_variables_are_reported_with_a_suggestion() {
        let names = [
            "RINGCAST_AUTH_JWT_SECERT",
            "RINGCAST_WORKERS",
            "RINGCAST_CONFIG",
            "RINGCAST_SOMETHING_ELSE",
            "PATH",
        ]
        .map(OsString::from);
        let unknown = unknown_env_vars(names);
        assert_eq!(
            unknown,
            vec![
                (
                    "RINGCAST_AUTH_JWT_SECERT".to_owned(),
                    Some(Key::AuthJwtSecret)
                ),
                ("RINGCAST_SOMETHING_ELSE".to_owned(), None),
            ]
        );
    }
}
