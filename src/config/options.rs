//! The one table of options: each `ringcast serve` option declared once, with its field, type,
//! value kind, default, help group, help line, an example and a bad value (for the test that walks
//! every option through every layer), and its own rule.
//!
//! The `options!` macro ([`super::declare`]) turns each entry into the [`Config`] field (or the
//! [`SecurityConfig`] field reached as `config.security.FIELD`), its default, its [`Key`], its
//! `--flag`, its `RINGCAST_*` variable, its TOML key, its `--print-config` line and its
//! `serve --help` entry. An entry's `check` sees only its own value; rules between options are in
//! [`super::validate`].
//!
//! This file must hold declarations only: what an option means is its doc comment (its default
//! and when to change it); how a kind is read is [`super::kind`].

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use super::declare::options;
use super::kind::Choices;
use super::units::{KIB, MIB};
use super::validate::{
    api_keys_long_enough, at_least, at_least_1ms, at_least_one, between, greater_than_zero,
    history_rules_are_valid, http_url, longer_than_zero, off_or_whole_ms, power_of_two_up_to,
    redis_url, secret_long_enough, sizes_between, subprotocols_are_tokens, webhook_event_names,
};
use crate::proto::frame::MAX_HEADER_LEN;
use crate::room::stream::HistoryRule;
use crate::security::auth::AuthMode;
use crate::security::ip::Cidr;
use crate::security::origin::OriginPattern;
use crate::security::Secret;

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

/// The number of CPUs this process may run on, capped to [`MAX_WORKERS`]; 1 if unknown.
pub fn default_workers() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .min(MAX_WORKERS)
}

/// One option's declaration, as [`Key::spec`] returns it.
#[derive(Debug)]
pub struct Spec {
    /// The TOML key and field name (`max_frame_size`).
    pub name: &'static str,
    /// The `serve --help` heading it is listed under.
    pub group: &'static str,
    /// The one-line help (without its default and variable, which are added).
    pub help: &'static str,
    /// A valid value other than the default, as a flag takes it.
    pub example: &'static str,
    /// A value refused (from every layer) with an error naming the key and the layer.
    pub bad: &'static str,
    /// The value the flag alone stands for (`--pin` is `--pin=true`), if it may stand alone.
    pub bare_flag: Option<&'static str>,
    /// The placeholder for the value in `serve --help`.
    pub value_name: fn() -> String,
    /// How `serve --help` shows the default when the rendered value would mislead (`workers`).
    pub shown: Option<fn(&Config) -> String>,
}

impl Key {
    /// The TOML key, which is also the field name and the clap argument id.
    pub fn name(self) -> &'static str {
        self.spec().name
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

    /// Position in [`Key::ALL`]. Invariant: the variants are declared in `ALL` order (both come
    /// from the same table, and a unit test checks `Key::ALL[k.index()] == k`), so per-key
    /// tables can be plain arrays.
    pub fn index(self) -> usize {
        self as usize
    }
}

impl std::fmt::Display for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

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

impl Choices for BackpressurePolicy {
    const CHOICES: &'static [(&'static str, Self)] = &[
        ("close", BackpressurePolicy::Close),
        ("drop", BackpressurePolicy::Drop),
    ];
}

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

impl Choices for LogFormat {
    const CHOICES: &'static [(&'static str, Self)] =
        &[("text", LogFormat::Text), ("json", LogFormat::Json)];
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

impl Choices for CompressionMode {
    const CHOICES: &'static [(&'static str, Self)] = &[
        ("off", CompressionMode::Off),
        ("shared", CompressionMode::Shared),
        ("dedicated", CompressionMode::Dedicated),
    ];
}

/// Smallest LZ77 window [`Config::validate`] accepts for `compression_window_bits` (zlib's raw
/// deflate cannot use 8).
pub const MIN_COMPRESSION_WINDOW_BITS: u8 = 9;
/// Largest LZ77 window: 32 KiB, DEFLATE's maximum.
pub const MAX_COMPRESSION_WINDOW_BITS: u8 = 15;
/// Highest compression level (zlib's scale, 0 = stored only, 9 = smallest output).
pub const MAX_COMPRESSION_LEVEL: u32 = 9;

impl Choices for AuthMode {
    const CHOICES: &'static [(&'static str, Self)] = &[
        ("off", AuthMode::Off),
        ("optional", AuthMode::Optional),
        ("required", AuthMode::Required),
    ];
}

// Each entry:
//
//     /// Doc: what it does, its default, its cost, when to change it.
//     Key field: Type as Kind = default,
//         group "Help heading", help "One help line",
//         example "a valid non-default value", bad "a refused value"
//         [, check |v| rule(v)]        // the option's own rule, see super::validate
//         [, shown |config| text];     // only when the rendered default would mislead in --help
//
// Kinds (super::kind): Addr, Count, Bool, Size, Time, OffOrTime, OneOf, Words, Cidrs, Origins,
// HistoryRules, Secret, File, Url. The entry order is the `--print-config` order (and, within a group, the help
// order): add a new option at the end of its section.
options! {
    /// Everything a `ringcast serve` process is told. Build it with [`Loader`](super::Loader) (or
    /// start from [`Config::default`]) and check it with [`Config::validate`] before use.
    ///
    /// Each field documents its default and when to change it.
    #[derive(Clone, Debug, PartialEq, Eq)]
    pub struct Config {
        /// Address the workers listen on. Default `127.0.0.1:8080` (loopback only, so a fresh
        /// install is not exposed). Use `0.0.0.0:PORT` or `[::]:PORT` to serve the network. An
        /// address another process already serves is refused ("address already in use") unless
        /// both set `reuse_port`.
        Listen listen: SocketAddr as Addr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 8080),
            group "Network", help "Address to bind (IPv6 as [::1]:8080)",
            example "[::1]:9000", bad "localhost";
        /// Worker threads, each with its own io_uring runtime, listener and connection table.
        /// Default: the number of CPUs (`std::thread::available_parallelism`). Lower it to leave
        /// cores to other processes (a load generator on the same machine, say). Between 1 and
        /// [`MAX_WORKERS`].
        Workers workers: usize as Count = default_workers(),
            group "Workers", help "Worker threads, each with its own io_uring runtime and listener",
            example "3", bad "0",
            check |v| between(*v, 1, MAX_WORKERS),
            shown |c| format!("number of CPUs, {} here", c.workers);
        /// Pin worker `i` to CPU `i`. Default `false`. Turn on when ringcast owns the machine: it
        /// keeps caches warm and stops the scheduler from moving workers; leave off when sharing
        /// cores.
        Pin pin: bool as Bool = false,
            group "Workers", help "Pin worker i to CPU i (--pin alone means true)",
            example "true", bad "maybe";
        /// Largest handshake request (request line plus headers) in bytes; more is refused with
        /// 431. Default 8 KiB. Raise it only for clients with very large cookies. Between
        /// [`MIN_HEADER_BYTES`] and [`MAX_HEADER_BYTES`].
        MaxHeaderBytes max_header_bytes: usize as Size = 8 * KIB,
            group "Handshake",
            help "Largest handshake request (request line and headers); more gets 431",
            example "2KiB", bad "512B",
            check |v| sizes_between(*v, MIN_HEADER_BYTES, MAX_HEADER_BYTES);
        /// Most header lines in a handshake request; more is refused with 431. Default 64. Between
        /// [`MIN_HEADERS`] and [`MAX_HEADERS`]: RFC 6455 §4.1 requires five ("MUST" carry Host,
        /// Upgrade, Connection, Sec-WebSocket-Key and Sec-WebSocket-Version), so fewer refuses
        /// everyone.
        MaxHeaders max_headers: usize as Count = 64,
            group "Handshake", help "Most handshake header lines; more gets 431",
            example "10", bad "2",
            check |v| between(*v, MIN_HEADERS, MAX_HEADERS);
        /// Largest payload a single frame may declare; more fails the connection with 1009, before
        /// any memory is reserved. Default 16 MiB. Lower it when messages are small (chat, games):
        /// it bounds what one hostile client can make a worker buffer. At least [`MIN_FRAME_SIZE`]
        /// (RFC 6455 §5.5: a lower limit would reject legal pings and closes) and at most
        /// `max_message_size`, since an unfragmented frame is a whole message.
        MaxFrameSize max_frame_size: usize as Size = 16 * MIB,
            group "Messages",
            help "Largest frame payload; more closes with 1009 (at most max-message-size)",
            example "1MiB", bad "16M",
            check |v| at_least(*v, MIN_FRAME_SIZE, " (the largest control frame)");
        /// Largest message after reassembling fragments; more fails the connection with 1009.
        /// Default 16 MiB. Lower it with `max_frame_size`. At least `max_frame_size`.
        MaxMessageSize max_message_size: usize as Size = 16 * MIB,
            group "Messages", help "Largest reassembled message; more closes with 1009",
            example "2MiB", bad "100";
        /// Subprotocols offered in `Sec-WebSocket-Protocol`, in server preference order: the first
        /// one the client also lists is selected. Default: none (the header is never sent back).
        /// Each must be an HTTP token, and each may appear once.
        Subprotocols subprotocols: Vec<String> as Words = Vec::new(),
            group "Handshake",
            help "Accepted Sec-WebSocket-Protocol values, comma-separated, server preference first",
            example "chat,v2.json", bad "a b",
            check |v| subprotocols_are_tokens(v);
        /// Time a client has to complete the upgrade handshake after connecting. Default 10 s.
        /// Lower it under slowloris-style floods of idle sockets.
        HandshakeTimeout handshake_timeout: Duration as Time = Duration::from_secs(10),
            group "Handshake", help "Time allowed to complete the upgrade handshake",
            example "3s", bad "0s",
            check |v| longer_than_zero(*v);
        /// Interval between server pings on a quiet connection. Default 30 s. Lower it behind
        /// proxies or NAT that drop idle TCP flows sooner. Must be shorter than `idle_timeout`.
        PingInterval ping_interval: Duration as Time = Duration::from_secs(30),
            group "Timeouts",
            help "Interval between pings on a quiet connection (shorter than idle-timeout)",
            example "1s500ms", bad "2h",
            check |v| longer_than_zero(*v);
        /// A connection that sends nothing (not even a pong) for this long is closed. Default
        /// 75 s, which allows two missed pings at the default `ping_interval`.
        IdleTimeout idle_timeout: Duration as Time = Duration::from_secs(75),
            group "Timeouts", help "Close a connection that sends nothing for this long",
            example "2m", bad "soon",
            check |v| longer_than_zero(*v);
        /// After sending a close frame, time to wait for the peer's close before dropping the TCP
        /// connection. Default 5 s.
        CloseTimeout close_timeout: Duration as Time = Duration::from_secs(5),
            group "Timeouts", help "Wait this long for the peer's close frame after sending ours",
            example "6s", bad "5 s",
            check |v| longer_than_zero(*v);
        /// On shutdown (SIGTERM/SIGINT), time to let connections close cleanly before the process
        /// exits. Default 10 s. Raise it to ride out rolling deploys with slow clients.
        DrainTimeout drain_timeout: Duration as Time = Duration::from_secs(10),
            group "Timeouts",
            help "On SIGTERM/SIGINT, let connections close for this long before exiting",
            example "2m", bad "-1",
            check |v| longer_than_zero(*v);
        /// Bytes that may wait in one connection's outgoing queue; past this,
        /// `backpressure_policy` applies. Default 1 MiB. Worst-case memory is this times
        /// `max_connections`; a message larger than this limit can never be queued.
        MaxBackpressure max_backpressure: usize as Size = MIB,
            group "Messages",
            help "Bytes that may queue for one connection before backpressure-policy applies",
            example "64KiB", bad "0",
            check |v| greater_than_zero(*v);
        /// What happens to a connection whose queue is full. Default `close`.
        BackpressurePolicy backpressure_policy: BackpressurePolicy as OneOf = BackpressurePolicy::Close,
            group "Messages", help "On a full queue: close the connection (1008) or drop the message",
            example "drop", bad "block";
        /// Most open WebSocket connections per process (the cap is shared across workers);
        /// upgrades past it are refused with 503 and `Retry-After`. Default 10 000: finite, so a
        /// connection flood is refused before it exhausts memory (worst case about
        /// `max_connections` × (`read_buffer_size` + `max_backpressure`)) or file descriptors.
        /// `ulimit -n` must exceed it by a few (listeners, rings). `0` means unlimited, leaving
        /// the descriptor limit as the only bound. Raise it together with `ulimit -n`.
        MaxConnections max_connections: usize as Count = 10_000,
            group "Network", help "Most open connections per process; 0 means unlimited",
            example "0", bad "lots";
        /// Initial size of each connection's read buffer. It grows on demand up to the frame limit
        /// and shrinks back afterwards. Default 4 KiB. Raise it when most messages are larger
        /// (fewer reads per message); idle connections hold no read buffer at all, so it does not
        /// cost idle memory. At least [`MAX_HEADER_LEN`] so a frame header always fits (the header
        /// decoder then makes progress without a regrowth).
        ReadBufferSize read_buffer_size: usize as Size = 4 * KIB,
            group "Messages",
            help "Initial per-connection read buffer (grows up to the frame limit, shrinks back)",
            example "512B", bad "8",
            check |v| at_least(*v, MAX_HEADER_LEN, " (the longest frame header)");
        /// io_uring submission queue entries per worker. Default 256. Raise it when a worker
        /// drives thousands of busy connections and submissions queue up. A power of two, at most
        /// [`MAX_RING_ENTRIES`]: the kernel would round anything else up.
        RingEntries ring_entries: u32 as Count = 256,
            group "Workers", help "io_uring submission queue entries per worker (a power of two)",
            example "1024", bad "300",
            check |v| power_of_two_up_to(*v, MAX_RING_ENTRIES);
        /// SQPOLL: a kernel thread polls each worker's submission queue, saving a syscall per
        /// batch, and sleeps after this much idleness. Default `None` (`off`): it costs a core per
        /// worker while busy. Turn on (with e.g. `2ms`) only with spare cores. At most
        /// [`MAX_SQPOLL_IDLE`], in whole milliseconds (the kernel takes `sq_thread_idle` in ms).
        Sqpoll sqpoll: Option<Duration> as OffOrTime = None,
            group "Workers", help "SQPOLL kernel polling thread: off, or its idle time (e.g. 2ms)",
            example "2ms", bad "on",
            check |v| off_or_whole_ms(*v, MAX_SQPOLL_IDLE);
        /// Listen backlog (pending, not yet accepted connections) per listener. Default 1024.
        /// Raise it for bursts of reconnecting clients, together with `net.core.somaxconn`. At
        /// most [`MAX_BACKLOG`].
        Backlog backlog: u32 as Count = 1024,
            group "Network", help "Listen backlog per worker",
            example "16", bad "0",
            check |v| between(*v, 1, MAX_BACKLOG);
        /// Log line format on stderr. Default `text`. The level comes from `RUST_LOG` (default
        /// `info`).
        LogFormat log_format: LogFormat as OneOf = LogFormat::Text,
            group "Logging", help "Log format on stderr; the level comes from RUST_LOG (default info)",
            example "json", bad "xml";
        /// Rooms one `/ws` connection may be in at once; one more gets `too_many_rooms`. Default
        /// 64. Each membership costs a few dozen bytes on the worker and on the room's owner. At
        /// least 1.
        MaxRoomsPerConnection max_rooms_per_connection: usize as Count = 64,
            group "Rooms", help "Rooms one /ws connection may be in at once",
            example "3", bad "0",
            check |v| at_least_one(*v);
        /// Members one room may have across the server; one more gets `room_full`. Default
        /// 100 000. A publish to a room costs one write per member: lower it to bound that work.
        /// At least 1.
        MaxRoomMembers max_room_members: usize as Count = 100_000,
            group "Rooms", help "Members one room may have across the server",
            example "500", bad "many",
            check |v| at_least_one(*v);
        /// Longest room name in bytes (UTF-8); longer gets `room_name_too_long`. Default 64. The
        /// name is written into every message frame of the room. Between 1 and
        /// [`MAX_ROOM_NAME_LEN`].
        MaxRoomNameLen max_room_name_len: usize as Count = 64,
            group "Rooms", help "Longest room name in bytes",
            example "32", bad "5000",
            check |v| between(*v, 1, MAX_ROOM_NAME_LEN);
        /// Largest `payload` of a `publish` or `send`, as written in the envelope; larger gets
        /// `payload_too_large`. Default 64 KiB. Every member's queue holds a reference to each
        /// message, so this times the room's backlog bounds memory. At least 1 and at most
        /// `max_message_size`.
        MaxPayloadSize max_payload_size: usize as Size = 64 * KIB,
            group "Rooms", help "Largest publish/send payload (at most max-message-size)",
            example "8KiB", bad "32MiB";
        /// Malformed envelopes in a row after which a `/ws` connection is closed with 1008.
        /// Default 16. Each gets an error reply first; a well-formed envelope resets the count. At
        /// least 1.
        MaxEnvelopeErrors max_envelope_errors: u32 as Count = 16,
            group "Rooms", help "Malformed envelopes in a row before closing with 1008",
            example "4", bad "0",
            check |v| at_least_one(*v);
        /// Whether `publish` requires membership of the room (`not_joined` otherwise). Default
        /// `false`: any connection may publish to any room, like a webhook. Turn on for chat.
        PublishRequiresJoin publish_requires_join: bool as Bool = false,
            group "Rooms",
            help "Only members may publish to a room (--publish-requires-join alone means true)",
            example "true", bad "sometimes";
        /// Messages kept per room for `history` and for resuming with `join` + `since`, in rooms
        /// no `history_rooms` rule names. Default 0: off (rooms keep offsets, not messages).
        /// Each kept message holds its frame (shared with the fan-out) until evicted;
        /// `history_max_bytes` bounds the total. Raise it for chat-like rooms whose clients
        /// reconnect.
        HistorySize history_size: usize as Count = 0,
            group "Room history",
            help "Messages kept per room for history and resume (0: off) where no history-rooms rule applies",
            example "100", bad "lots";
        /// How long after its last publish a room's history (and the room, once it has no
        /// members) is kept. Default 5 min. Also the default `ttl` of `history_rooms` rules.
        /// Longer than 0.
        HistoryTtl history_ttl: Duration as Time = Duration::from_secs(5 * 60),
            group "Room history", help "How long after its last publish a room's history is kept",
            example "10m", bad "0s",
            check |v| longer_than_zero(*v);
        /// Frame bytes all rooms' histories may hold together (each owner worker gets an equal
        /// share); over it the oldest messages of the largest rooms are evicted and counted in
        /// `ringcast_history_evicted_total`. Default 64 MiB. At least 1 KiB.
        HistoryMaxBytes history_max_bytes: usize as Size = 64 * MIB,
            group "Room history",
            help "Frame bytes all histories may hold; over it the oldest messages of the largest rooms go",
            example "256MiB", bad "100B",
            check |v| at_least(*v, KIB, "");
        /// Per-room-prefix overrides of `history_size` / `history_ttl`, the longest matching
        /// prefix winning: in the file `[[history_rooms]]` tables (`prefix = "chat:"`, `size =
        /// 100`, optional `ttl = "10m"`); as a flag or variable `chat:=100/10m,ticker:=0`.
        /// Default: `demo:` rooms (the demo page's) keep 100 messages for 10 minutes; give an
        /// empty value to drop that rule. Prefixes are unique and, in the flag form, contain no
        /// `,` or `=`.
        HistoryRooms history_rooms: Vec<HistoryRule> as HistoryRules = vec![HistoryRule {
                prefix: "demo:".to_owned(),
                size: 100,
                ttl: Some(Duration::from_secs(10 * 60)),
            }],
            group "Room history",
            help "Per-prefix history, longest prefix wins: prefix=size[/ttl], comma-separated (chat:=100/10m,ticker:=0)",
            example "chat:=100/10m,ticker:=0", bad "chat:",
            check |v| history_rules_are_valid(v);
        /// Most messages a `join` with `since` replays; a client that missed more gets
        /// `"recovered": false` and nothing replayed. Also caps a `history` answer. Default 1000.
        /// The replay is queued on the client's connection, so it counts against
        /// `max_backpressure`. At least 1.
        MaxRecoveryMessages max_recovery_messages: usize as Count = 1000,
            group "Room history",
            help "Most messages a join with since replays (more: recovered false); also caps history answers",
            example "50", bad "0",
            check |v| at_least_one(*v);
        /// How long the owner of a room remembers a publish's `msg_id`, so that a retry by the
        /// same sender is answered with the original reply instead of being delivered again.
        /// Default 2 min: longer than any sane client retry. Longer than 0.
        DedupWindow dedup_window: Duration as Time = Duration::from_secs(2 * 60),
            group "Room history",
            help "How long a publish msg_id is remembered for deduplicating retries",
            example "30s", bad "0s",
            check |v| longer_than_zero(*v);
        /// Most remembered `msg_id`s across the server (each owner worker gets an equal share);
        /// past it the oldest is forgotten early and counted in `ringcast_dedup_evicted_total`.
        /// Default 100 000; each costs about 150 B plus its room name and msg_id. At least 1.
        DedupMaxEntries dedup_max_entries: usize as Count = 100_000,
            group "Room history",
            help "Most msg_ids remembered across the server (oldest forgotten first past it)",
            example "7", bad "0",
            check |v| at_least_one(*v);
        /// How long a message sent to a user (`send` with `to_user`) is kept in the user's inbox,
        /// acknowledged or not: past it, it is dropped and counted as expired. Default 1 h. Raise
        /// it for users who stay offline longer (memory is bounded by the `inbox_max_*` options,
        /// not by this). At least 1 ms.
        InboxTtl inbox_ttl: Duration as Time = Duration::from_secs(3600),
            group "Messages to users",
            help "How long a message to a user is kept in its inbox, acknowledged or not",
            example "90s", bad "0s",
            check |v| at_least_1ms(*v);
        /// Messages one user's inbox may hold; one more is refused with `inbox_full`. Default
        /// 1000. At least 1.
        InboxMaxMessages inbox_max_messages: usize as Count = 1000,
            group "Messages to users",
            help "Messages one user's inbox may hold (more: inbox_full)",
            example "7", bad "0",
            check |v| at_least_one(*v);
        /// Bytes one user's inbox may hold (payloads plus 256 bytes of bookkeeping each); a
        /// message that would exceed it is refused with `inbox_full`. Default 1 MiB. At least
        /// 1 B.
        InboxMaxBytes inbox_max_bytes: usize as Size = MIB,
            group "Messages to users",
            help "Bytes one user's inbox may hold (more: inbox_full)",
            example "8KiB", bad "0",
            check |v| greater_than_zero(*v);
        /// Bytes all inboxes of the server may hold together, split evenly over the workers (each
        /// owns the inboxes of its share of users); past it, messages are refused with
        /// `inbox_full`. Default 64 MiB. At least `inbox_max_bytes`.
        InboxMaxTotalBytes inbox_max_total_bytes: usize as Size = 64 * MIB,
            group "Messages to users",
            help "Bytes all inboxes may hold together, split evenly over the workers (at least inbox-max-bytes)",
            example "2MiB", bad "1 parsec";
        /// Time from delivering a message sent with `ack` to delivering it again when no
        /// connection of the user has acknowledged it: the first delay of the redelivery backoff.
        /// Default 10 s. At least 1 ms.
        AckTimeout ack_timeout: Duration as Time = Duration::from_secs(10),
            group "Messages to users",
            help "Delay before an unacknowledged message is delivered again (the backoff's first delay)",
            example "250ms", bad "0s",
            check |v| at_least_1ms(*v);
        /// Each later redelivery delay is the previous one times this. Default 2. Between 1 and
        /// 16.
        AckBackoffFactor ack_backoff_factor: u32 as Count = 2,
            group "Messages to users",
            help "Each later redelivery delay is the previous one times this (1 to 16)",
            example "3", bad "17",
            check |v| between(*v, 1, 16);
        /// The longest redelivery delay. Default 5 min. At least `ack_timeout`.
        AckBackoffCap ack_backoff_cap: Duration as Time = Duration::from_secs(300),
            group "Messages to users",
            help "Longest redelivery delay (at least ack-timeout)",
            example "20s", bad "forever";
        /// Most deliveries of an unacknowledged message while its user stays connected (the
        /// first included); after that it waits in the inbox for the user's next connection
        /// (until `inbox_ttl`). Default 5. At least 1.
        AckMaxAttempts ack_max_attempts: u32 as Count = 5,
            group "Messages to users",
            help "Most deliveries of an unacknowledged message while its user stays connected",
            example "9", bad "0",
            check |v| at_least_one(*v);
        /// permessage-deflate: `off`, `shared` or `dedicated` (see [`CompressionMode`]). Default
        /// `shared`: browsers offer the extension on every connection, JSON shrinks two to four
        /// times, and the shared mode compresses a room message once and keeps no per-connection
        /// context (tuning.md has the measurements). Turn `off` when egress is cheap and CPU is
        /// not.
        Compression compression: CompressionMode as OneOf = CompressionMode::Shared,
            group "Compression",
            help "permessage-deflate: off, shared (one context per worker, reset per message; a room message is compressed once), dedicated (a context per connection)",
            example "dedicated", bad "zstd";
        /// Messages shorter than this are sent uncompressed (RSV1 clear) even to clients that
        /// negotiated compression. Default 256 B, by measurement (tuning.md, "Compression"):
        /// below it a shared (no context takeover) level-1 compression of JSON saved 3-10 % of
        /// the bytes for a fixed cost of a context reset and a compression call per message;
        /// from 256 B the saving grows (26 % at 512 B, 41 % at 1 KiB), and a room chat message
        /// (a ~130 B envelope around its payload) is still compressed. Raise it to save CPU on
        /// per-connection replies; lower it for big rooms of small messages. At most
        /// `max_message_size`.
        CompressionMinSize compression_min_size: usize as Size = 256,
            group "Compression", help "Messages shorter than this are sent uncompressed",
            example "1KiB", bad "1 parsec";
        /// DEFLATE level, 0 (stored) to 9 (smallest). Default 1: on JSON it keeps most of level
        /// 6's ratio at a fraction of the CPU (tuning.md). Raise it when egress costs more than
        /// CPU.
        CompressionLevel compression_level: u32 as Count = 1,
            group "Compression", help "DEFLATE level, 0 (stored) to 9 (smallest)",
            example "6", bad "10",
            check |v| between(*v, 0, MAX_COMPRESSION_LEVEL);
        /// LZ77 window of our compressor in bits, 9 to 15. Default 15 (32 KiB). A client that asks
        /// for a smaller window than this gets shared (room) frames uncompressed; in `dedicated`
        /// mode the window also bounds each connection's compression memory (about 2^(bits+2)
        /// bytes plus a fixed part). Between [`MIN_COMPRESSION_WINDOW_BITS`] and
        /// [`MAX_COMPRESSION_WINDOW_BITS`].
        CompressionWindowBits compression_window_bits: u8 as Count = MAX_COMPRESSION_WINDOW_BITS,
            group "Compression", help "LZ77 window of our compressor in bits, 9 to 15",
            example "10", bad "8",
            check |v| between(*v, MIN_COMPRESSION_WINDOW_BITS, MAX_COMPRESSION_WINDOW_BITS);
        /// The Redis that makes several ringcast nodes one cluster, as `redis://HOST:PORT` (see
        /// [`crate::cluster`]). Default unset: one node, no Redis, nothing changes. When set, room
        /// offsets, epochs, history and `msg_id` deduplication live in Redis and a room's
        /// messages reach every node with members; while Redis is unreachable publishes and joins
        /// answer `unavailable`. Must start with `redis://`.
        Cluster cluster: Option<String> as Url = None,
            group "Cluster",
            help "Redis of the cluster (redis://HOST:PORT): rooms, offsets, history and msg_id dedup shared by every node; unset: one node, no Redis",
            example "redis://127.0.0.1:7001", bad "localhost:6379",
            check |v| redis_url(v);
        /// Let other processes listen on the same address (`SO_REUSEPORT` across processes).
        /// Default `false`: a second server on an address this one serves is refused with
        /// "address already in use", and this one refuses to start on an address another process
        /// serves, because the kernel would split new connections between the two (and rooms with
        /// them). Turn on, in both processes, for a hand-over restart: start the new process, then
        /// SIGTERM the old one, which drains. Off, the workers share one listening socket; on,
        /// each worker has its own (see `tuning.md`).
        ReusePort reuse_port: bool as Bool = false,
            group "Network",
            help "Share the address with other processes that also set it, for a hand-over restart (--reuse-port alone means true)",
            example "true", bad "maybe";
        /// Address of the server API for backends (`/api/...`, see `docs/api.yaml`), on its own
        /// listener so it is never exposed where clients connect. Default: not set (no API).
        /// Every request needs an API key (`api_key` or `api_key_file`). Keep it on loopback or a
        /// private network.
        ApiListen api_listen: Option<SocketAddr> as OptAddr = None,
            group "API", help "Address of the server API for backends (off when unset)",
            example "127.0.0.1:8081", bad "localhost";
        /// API keys a backend presents as `Authorization: apikey KEY`, comma-separated; several
        /// at once allow rotation. Each at least [`MIN_API_KEY_BYTES`] bytes. Default: none.
        /// Prefer the environment variable or `api_key_file` over the flag, which `ps` shows.
        ApiKey api_key: Vec<Secret> as Secrets = Vec::new(),
            group "API",
            help "API keys (comma-separated, for rotation), at least 16 bytes each (prefer RINGCAST_API_KEY or api-key-file: flags show in ps)",
            example "0123456789abcdef,fedcba9876543210", bad "short",
            check |v| api_keys_long_enough(v);
        /// A file of API keys, one per line (blank lines and `#` comments skipped), read at
        /// start-up, in addition to `api_key`. Default: none.
        ApiKeyFile api_key_file: Option<PathBuf> as File = None,
            group "API", help "File of API keys, one per line, read at start-up",
            example "tests/api_fixtures/keys.txt", bad "/nonexistent/ringcast-api-keys";
        /// Largest request body the API reads; a larger `Content-Length` is answered 413 before
        /// any of the body is read. Default 1 MiB. Each API connection buffers at most this much
        /// plus the head. At least 1 KiB.
        ApiMaxBody api_max_body: usize as Size = MIB,
            group "API", help "Largest API request body (413 past it)",
            example "64KiB", bad "12",
            check |v| at_least(*v, KIB, "");
        /// Where webhooks go: `http://HOST:PORT/path` (plain HTTP only, no TLS: put a local
        /// proxy in front of an `https` backend). Default: not set (no webhooks). Events are
        /// batched, signed with `webhook_secret` (required with it) and retried until the backend
        /// answers 2xx; see `docs/webhooks.md`.
        WebhookUrl webhook_url: Option<String> as Url = None,
            group "Webhooks",
            help "Where webhooks are POSTed: http://HOST:PORT/path (http only, no TLS); unset: off",
            example "http://127.0.0.1:9000/hooks", bad "https://backend.example.com/hooks",
            check |v| http_url(v);
        /// The events sent, comma-separated: `connect`, `disconnect` (a `/ws` session opened or
        /// ended), `join`, `leave` (a member entered or left a room), `publish` (a message got its
        /// offset; one event per message: leave it out for high-rate rooms) and `inbox_expired`
        /// (a message to a user expired unacknowledged). Default: every event but `publish`.
        WebhookEvents webhook_events: Vec<String> as Words = ["connect", "disconnect", "join", "leave", "inbox_expired"].map(String::from).to_vec(),
            group "Webhooks",
            help "Events sent: connect, disconnect, join, leave, publish, inbox_expired (comma-separated)",
            example "join,leave,publish", bad "join,teleport",
            check |v| webhook_event_names(v);
        /// The HMAC-SHA256 key that signs every webhook (and join authorization) request:
        /// `X-Ringcast-Signature: sha256=<hex of HMAC(key, "<X-Ringcast-Timestamp>.<body>")>`.
        /// Required with `webhook_url`; at least 16 bytes. Default: none. Prefer the environment
        /// variable over the flag, which `ps` shows.
        WebhookSecret webhook_secret: Option<Secret> as Secret = None,
            group "Webhooks",
            help "HMAC-SHA256 key signing webhook and authorization requests, at least 16 bytes (prefer RINGCAST_WEBHOOK_SECRET: flags show in ps)",
            example "a-webhook-secret-0123456789", bad "short",
            check |v| secret_long_enough(v);
        /// Most events in one webhook request. Default 100. Between 1 and 10 000. Larger batches
        /// cost fewer requests per event; smaller ones less latency per retry.
        WebhookBatchSize webhook_batch_size: usize as Count = 100,
            group "Webhooks", help "Most events in one webhook request",
            example "10", bad "0",
            check |v| between(*v, 1, 10_000);
        /// Longest wait for more events after the first of a batch. Default 50 ms. At least 1 ms.
        /// Raise it to send fewer, fuller requests; lower it for fresher events.
        WebhookBatchWait webhook_batch_wait: Duration as Time = Duration::from_millis(50),
            group "Webhooks", help "Longest wait for more events after the first of a batch",
            example "200ms", bad "0s",
            check |v| at_least_1ms(*v);
        /// Events that may wait for the sender (besides the batch it is sending). Default 65 536
        /// (each costs about 200 bytes plus its room, user and, for `publish`, nothing more: the
        /// payload is shared). When it is full, new events are dropped and counted
        /// (`ringcast_webhook_dropped_total`) and logged once per burst; workers never wait.
        WebhookQueueSize webhook_queue_size: usize as Count = 65_536,
            group "Webhooks", help "Events that may wait for the webhook sender; past it new events are dropped (counted)",
            example "1000", bad "0",
            check |v| between(*v, 1, 16_777_216);
        /// Longest webhook exchange (connect, send, answer); past it the attempt fails and is
        /// retried. Default 5 s. At least 1 ms.
        WebhookTimeout webhook_timeout: Duration as Time = Duration::from_secs(5),
            group "Webhooks", help "Longest webhook request (then it is retried)",
            example "2s", bad "0s",
            check |v| at_least_1ms(*v);
        /// Cap on the delay between two attempts of a failed batch. Default 10 s. At least 1 ms.
        /// The delay is drawn uniformly below min(this, 100 ms × 2^attempt) (full jitter).
        WebhookRetryMaxDelay webhook_retry_max_delay: Duration as Time = Duration::from_secs(10),
            group "Webhooks", help "Longest delay between two attempts of a failed webhook batch",
            example "1s", bad "0s",
            check |v| at_least_1ms(*v);
        /// Asked before every join: `http://HOST:PORT/path` (plain HTTP only) gets
        /// `{"user","room","conn","node"}` and answers 2xx `{"allow": true}` or
        /// `{"allow": false, "reason": "..."}` (refused with `forbidden` and the reason). Default:
        /// not set (joins are not asked about). See `docs/webhooks.md`.
        AuthorizeJoinUrl authorize_join_url: Option<String> as Url = None,
            group "Join authorization",
            help "Backend asked before each join: http://HOST:PORT/path (http only); unset: off",
            example "http://127.0.0.1:9000/authorize", bad "ftp://backend/authorize",
            check |v| http_url(v);
        /// Longest wait for the backend's answer; past it the join follows
        /// `authorize_join_fail_open`. Default 1 s. At least 1 ms.
        AuthorizeJoinTimeout authorize_join_timeout: Duration as Time = Duration::from_secs(1),
            group "Join authorization", help "Longest wait for the join authorization answer",
            example "250ms", bad "0s",
            check |v| at_least_1ms(*v);
        /// When the backend cannot decide (down, slow, a broken answer): `true` lets the join
        /// through, `false` refuses it with `unavailable`. Default `false` (fail closed).
        AuthorizeJoinFailOpen authorize_join_fail_open: bool as Bool = false,
            group "Join authorization",
            help "Allow joins when the authorization backend fails (--authorize-join-fail-open alone means true); default: refuse them",
            example "true", bad "sometimes";
        /// How long an allow or deny is reused for the same user and room. Default 30 s; `0s`
        /// asks every time. Failures are never cached.
        AuthorizeJoinCacheTtl authorize_join_cache_ttl: Duration as Time = Duration::from_secs(30),
            group "Join authorization", help "How long a join decision is reused for the same user and room (0s: never)",
            example "5m", bad "forever";
        /// Most join decisions kept. Default 100 000 (each about 100 bytes plus the user and
        /// room). At least 1.
        AuthorizeJoinCacheSize authorize_join_cache_size: usize as Count = 100_000,
            group "Join authorization", help "Most join decisions kept",
            example "1000", bad "0",
            check |v| at_least_one(*v);
    }
    /// Authentication, Origin, address and rate rules (`auth`, `allowed_origins`, `allow_cidr`,
    /// `max_connections_per_ip`, `message_rate`, ...): each field of [`SecurityConfig`] is a key
    /// of the same name, documented there with its default and when to change it.
    pub security:
    /// Every security and abuse setting, with its default in [`SecurityConfig::default`]. Its
    /// rules are [`SecurityConfig::validate`] (in [`crate::security::config`]).
    #[derive(Clone, Debug, PartialEq, Eq)]
    pub struct SecurityConfig {
        /// JWT authentication on the upgrade: `off` (tokens ignored), `optional` (a request
        /// without a token is anonymous, one with a bad token gets 401) or `required` (401
        /// without a valid token). Default `off`. Anything but `off` needs `auth_jwt_secret` or
        /// `auth_jwt_public_key`. Cost: one verification per upgrade (HS256 ≈ 6.6 µs, RS256/ES256
        /// ≈ 0.57 ms). Use `required` on any endpoint that is not public by design.
        Auth auth: AuthMode as OneOf = AuthMode::Off,
            group "Auth",
            help "JWT on the upgrade: off (tokens ignored), optional (no token = anonymous, a bad one = 401), required (401 without a valid token)",
            example "optional", bad "maybe";
        /// HMAC secret for HS256/384/512 tokens, at least
        /// [`MIN_JWT_SECRET_BYTES`](crate::security::MIN_JWT_SECRET_BYTES) bytes. Default: none.
        /// Set it when your token issuer signs with a shared secret; prefer the environment
        /// variable or the file over the flag, which `ps` shows.
        AuthJwtSecret auth_jwt_secret: Option<Secret> as Secret = None,
            group "Auth",
            help "HMAC secret for HS256/384/512 tokens, at least 32 bytes (prefer the environment variable: flags show in ps)",
            example "0123456789abcdef0123456789abcdef!", bad "short";
        /// PEM file with an RSA (RS256) or EC P-256 (ES256) public key. Default: none. Read and
        /// checked once at start-up ([`crate::security::Policy::from_config`]). With a secret as
        /// well, HS* tokens use the secret and RS256/ES256 the key; never one for the other. Set
        /// it for tokens from an identity provider.
        AuthJwtPublicKey auth_jwt_public_key: Option<PathBuf> as File = None,
            group "Auth", help "PEM public key (RSA for RS256, EC P-256 for ES256), read at start-up",
            example "tests/security_fixtures/rsa_public.pem", bad "/nonexistent/ringcast-key.pem";
        /// Clock skew tolerated on `exp` and `nbf`. Default 30 s. At most
        /// [`MAX_AUTH_LEEWAY`](crate::security::MAX_AUTH_LEEWAY); raise it only when the token
        /// issuer's clock is known to drift.
        AuthLeeway auth_leeway: Duration as Time = Duration::from_secs(30),
            group "Auth", help "Clock skew tolerated on exp and nbf (at most 5m)",
            example "5s", bad "10m";
        /// Origins whose pages may connect (`https://app.example.com`, `https://*.example.com`,
        /// `*.example.com` for http or https, `*` for all). Default: none, meaning a browser's
        /// Origin must match the request's Host (same-origin only). Cost: O(patterns) per
        /// upgrade. Set it when the page is served from another host than the WebSocket endpoint.
        AllowedOrigins allowed_origins: Vec<OriginPattern> as Origins = Vec::new(),
            group "Origin and addresses",
            help "Origins whose pages may connect (https://app.example.com, *.example.com, *); empty: Origin must match Host",
            example "https://app.example.com,*.example.org", bad "ftp://x.example.com";
        /// Refuse requests without an Origin header (non-browser clients) with 403. Default
        /// `false`. Turn on when only browsers should connect.
        RequireOrigin require_origin: bool as Bool = false,
            group "Origin and addresses",
            help "Refuse requests without Origin (non-browser clients) with 403 (--require-origin alone means true)",
            example "true", bad "yes";
        /// Only peers in these CIDR blocks may connect (checked at accept, before any byte is
        /// read). Default: none, meaning everyone not denied. IPv4 blocks also match IPv4-mapped
        /// IPv6 peers. Cost: O(blocks) per accept. Set it for private services.
        AllowCidr allow_cidr: Vec<Cidr> as Cidrs = Vec::new(),
            group "Origin and addresses",
            help "Only peers in these CIDR blocks may connect (checked at accept); empty: everyone not denied",
            example "10.0.0.0/8,::1/128", bad "10.0.0.1/8";
        /// Peers in these CIDR blocks are refused at accept, even when also allowed. Default:
        /// none. Cost: O(blocks) per accept. Set it to block abusers.
        DenyCidr deny_cidr: Vec<Cidr> as Cidrs = Vec::new(),
            group "Origin and addresses",
            help "Peers in these CIDR blocks are refused at accept, even when allowed",
            example "10.1.0.0/16", bad "300.1.1.1";
        /// Proxies whose `X-Forwarded-For` is believed: the client is the right-most address
        /// there that is not itself a trusted proxy. Default: none (the header is ignored). Cost:
        /// O(hops × blocks) per upgrade. Set it to your load balancers' blocks, or per-IP limits
        /// see the proxy instead of the clients.
        TrustedProxies trusted_proxies: Vec<Cidr> as Cidrs = Vec::new(),
            group "Origin and addresses",
            help "Proxies whose X-Forwarded-For is believed (CIDR blocks)",
            example "192.168.0.0/24", bad "::1/129";
        /// Most open connections from one client address; more get 503. Default 0 (no
        /// per-address cap, only `max_connections`): loopback load tests and offices behind one
        /// NAT share an address. Cost: one hash lookup under one of 64 shard locks per accept
        /// and close; the per-IP table keeps at most
        /// [`TRACKED_IPS`](crate::security::TRACKED_IPS) idle entries (≈ 3 MiB). Set it (e.g.
        /// 100) on a public endpoint.
        MaxConnectionsPerIp max_connections_per_ip: u32 as Count = 0,
            group "Rate limits",
            help "Most open connections from one client address (503 past it); 0: off",
            example "7", bad "-1";
        /// Handshakes per second per client address (token bucket with `handshake_burst`); more
        /// get 503 with Retry-After. Default 0 (off). Cost: as `max_connections_per_ip`. Set it
        /// (e.g. 5) against reconnect storms and token guessing.
        HandshakeRate handshake_rate: u32 as Count = 0,
            group "Rate limits",
            help "Handshakes per second per client address (503 + Retry-After past it); 0: off",
            example "3", bad "fast";
        /// Handshakes one address may make at once before `handshake_rate` applies. Default 10.
        /// At least 1 when `handshake_rate` is on. Raise it for clients that legitimately open
        /// several connections at once.
        HandshakeBurst handshake_burst: u32 as Count = 10,
            group "Rate limits",
            help "Handshakes one address may make at once before handshake-rate applies",
            example "4", bad "-5";
        /// Messages per second per connection (token bucket with `message_burst`); more get an
        /// error reply `rate_limited`, and staying over closes with 1008. Default 0 (off). Cost:
        /// ≈ 16 ns per message (both buckets). Set it for chat or game traffic with a known
        /// ceiling.
        MessageRate message_rate: u32 as Count = 0,
            group "Rate limits",
            help "Messages per second per connection (error reply rate_limited past it, 1008 if it stays over); 0: off",
            example "50", bad "1.5";
        /// Messages a connection may send at once before `message_rate` applies. Default 100. At
        /// least 1 when `message_rate` is on. Raise it for clients that send in bursts.
        MessageBurst message_burst: u32 as Count = 100,
            group "Rate limits",
            help "Messages a connection may send at once before message-rate applies",
            example "60", bad "x";
        /// Payload bytes per second per connection (one second's worth may come at once, and a
        /// single larger message passes on a quiet connection, then blocks until paid for).
        /// Default 0 (off). Cost: included in `message_rate`'s. Set it to bound per-connection
        /// ingress volume.
        MessageBytesRate message_bytes_rate: usize as Size = 0,
            group "Rate limits", help "Payload bytes per second per connection; 0: off",
            example "64KiB", bad "1 parsec";
        /// Consecutive over-limit messages after which a connection is closed with 1008. Default
        /// 16. At least 1. Lower it to cut floods off sooner; raise it for bursty but honest
        /// clients.
        MessageRateStrikes message_rate_strikes: u32 as Count = 16,
            group "Rate limits",
            help "Over-limit messages in a row that close the connection with 1008",
            example "2", bad "0";
        /// A connection still over its message limits this long after its first refused message
        /// is closed with 1008, however few messages it sent. Default 5 s. Longer than 0. Lower
        /// it to cut slow floods off sooner; raise it for clients that catch up slowly.
        MessageRateGrace message_rate_grace: Duration as Time = Duration::from_secs(5),
            group "Rate limits",
            help "Time a connection may stay over its message limits before the 1008 close",
            example "1s500ms", bad "0s";
    }
}
