//! The command line: `ringcast serve [OPTIONS]`, `ringcast --version`, `ringcast --help`.
//!
//! Owns the clap definitions and the hand-over of flag values to [`Loader`]. Every option
//! of [`Config`] is a flag here; flags are taken as text and parsed by [`crate::config`], so a bad value is
//! reported the same way whether it came from a flag, a `RINGCAST_*` variable or the file. The
//! environment is read by [`Loader::env`], not by clap, so the loader knows which layer each
//! value came from. The help text shows every default, rendered from [`Config::default`] (the one
//! source of defaults), next to the option's environment variable.
//!
//! It must never start the server or set up logging: `main` does that with what this returns.

use std::ffi::OsString;

use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand};

use crate::config::{Config, ConfigError, Key, Loader};

/// `ringcast`: the top-level command line.
#[derive(Debug, Parser)]
#[command(name = "ringcast", version, about, propagate_version = true)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
// Parsed once at start-up: the size difference between the variants costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the WebSocket server.
    ///
    /// Every option is also a RINGCAST_* environment variable and a key of the --config file
    /// (the key is the option name with underscores: max_frame_size). Precedence: flag >
    /// environment > file > default. Durations read "30s", "500ms", "2m", "1m30s" or a bare
    /// number of seconds; sizes read "16MiB", "8KiB" or a bare number of bytes.
    Serve(ServeArgs),
    /// Drive load against a WebSocket server on loopback and report throughput, latency and
    /// memory (scenarios: echo, latency, connect, idle, fanout).
    Bench(crate::loadgen::BenchArgs),
}

/// Options of `ringcast serve`. Each [`Key`] option is kept as raw text (see the module doc);
/// [`ServeArgs::load_config`] turns them into a [`Config`].
#[derive(Debug, Default, Args)]
pub struct ServeArgs {
    /// TOML file with any of the keys below (see --print-config for the format).
    #[arg(long, value_name = "FILE", env = "RINGCAST_CONFIG")]
    pub config: Option<std::path::PathBuf>,
    /// Print the effective configuration (all layers merged, validated) as TOML and exit.
    #[arg(long)]
    pub print_config: bool,

    /// Address to bind.
    #[arg(
        long,
        value_name = "ADDR",
        help = "Address to bind (IPv6 as [::1]:8080)",
        help_heading = "Network"
    )]
    pub listen: Option<String>,
    /// Listen backlog per worker.
    #[arg(long, value_name = "N", help_heading = "Network")]
    pub backlog: Option<String>,
    /// Most open connections per process; 0 means unlimited.
    #[arg(long, value_name = "N", help_heading = "Network")]
    pub max_connections: Option<String>,

    /// Worker threads, each with its own io_uring runtime and listener.
    #[arg(long, value_name = "N", help_heading = "Workers")]
    pub workers: Option<String>,
    /// Pin worker i to CPU i (--pin alone means true).
    #[arg(
        long,
        value_name = "BOOL",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true",
        help_heading = "Workers"
    )]
    pub pin: Option<String>,
    /// io_uring submission queue entries per worker (a power of two).
    #[arg(long, value_name = "N", help_heading = "Workers")]
    pub ring_entries: Option<String>,
    /// SQPOLL kernel polling thread: off, or its idle time (e.g. 2ms).
    #[arg(long, value_name = "off|DURATION", help_heading = "Workers")]
    pub sqpoll: Option<String>,

    /// Largest handshake request (request line and headers); more gets 431.
    #[arg(long, value_name = "SIZE", help_heading = "Handshake")]
    pub max_header_bytes: Option<String>,
    /// Most handshake header lines; more gets 431.
    #[arg(long, value_name = "N", help_heading = "Handshake")]
    pub max_headers: Option<String>,
    /// Accepted Sec-WebSocket-Protocol values, comma-separated, server preference first.
    #[arg(long, value_name = "LIST", help_heading = "Handshake")]
    pub subprotocols: Option<String>,
    /// Time allowed to complete the upgrade handshake.
    #[arg(long, value_name = "DURATION", help_heading = "Handshake")]
    pub handshake_timeout: Option<String>,

    /// Largest frame payload; more closes with 1009 (at most max-message-size).
    #[arg(long, value_name = "SIZE", help_heading = "Messages")]
    pub max_frame_size: Option<String>,
    /// Largest reassembled message; more closes with 1009.
    #[arg(long, value_name = "SIZE", help_heading = "Messages")]
    pub max_message_size: Option<String>,
    /// Initial per-connection read buffer (grows up to the frame limit, shrinks back).
    #[arg(long, value_name = "SIZE", help_heading = "Messages")]
    pub read_buffer_size: Option<String>,
    /// Bytes that may queue for one connection before backpressure-policy applies.
    #[arg(long, value_name = "SIZE", help_heading = "Messages")]
    pub max_backpressure: Option<String>,
    /// On a full queue: close the connection (1008) or drop the message.
    #[arg(long, value_name = "close|drop", help_heading = "Messages")]
    pub backpressure_policy: Option<String>,

    /// Interval between pings on a quiet connection (shorter than idle-timeout).
    #[arg(long, value_name = "DURATION", help_heading = "Timeouts")]
    pub ping_interval: Option<String>,
    /// Close a connection that sends nothing for this long.
    #[arg(long, value_name = "DURATION", help_heading = "Timeouts")]
    pub idle_timeout: Option<String>,
    /// Wait this long for the peer's close frame after sending ours.
    #[arg(long, value_name = "DURATION", help_heading = "Timeouts")]
    pub close_timeout: Option<String>,
    /// On SIGTERM/SIGINT, let connections close for this long before exiting.
    #[arg(long, value_name = "DURATION", help_heading = "Timeouts")]
    pub drain_timeout: Option<String>,

    /// Log format on stderr; the level comes from RUST_LOG (default info).
    #[arg(long, value_name = "text|json", help_heading = "Logging")]
    pub log_format: Option<String>,

    /// Rooms one /ws connection may be in at once.
    #[arg(long, value_name = "N", help_heading = "Rooms")]
    pub max_rooms_per_connection: Option<String>,
    /// Members one room may have across the server.
    #[arg(long, value_name = "N", help_heading = "Rooms")]
    pub max_room_members: Option<String>,
    /// Longest room name in bytes.
    #[arg(long, value_name = "N", help_heading = "Rooms")]
    pub max_room_name_len: Option<String>,
    /// Largest publish/send payload (at most max-message-size).
    #[arg(long, value_name = "SIZE", help_heading = "Rooms")]
    pub max_payload_size: Option<String>,
    /// Malformed envelopes in a row before closing with 1008.
    #[arg(long, value_name = "N", help_heading = "Rooms")]
    pub max_envelope_errors: Option<String>,
    /// Only members may publish to a room (--publish-requires-join alone means true).
    #[arg(
        long,
        value_name = "BOOL",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true",
        help_heading = "Rooms"
    )]
    pub publish_requires_join: Option<String>,

    /// permessage-deflate: off, shared (one context per worker, reset per message; a room message is compressed once), dedicated (a context per connection).
    #[arg(
        long,
        value_name = "off|shared|dedicated",
        help_heading = "Compression"
    )]
    pub compression: Option<String>,
    /// Messages shorter than this are sent uncompressed.
    #[arg(long, value_name = "SIZE", help_heading = "Compression")]
    pub compression_min_size: Option<String>,
    /// DEFLATE level, 0 (stored) to 9 (smallest).
    #[arg(long, value_name = "N", help_heading = "Compression")]
    pub compression_level: Option<String>,
    /// LZ77 window of our compressor in bits, 9 to 15.
    #[arg(long, value_name = "N", help_heading = "Compression")]
    pub compression_window_bits: Option<String>,

    /// JWT on the upgrade: off (tokens ignored), optional (no token = anonymous, a bad one = 401), required (401 without a valid token).
    #[arg(long, value_name = "off|optional|required", help_heading = "Auth")]
    pub auth: Option<String>,
    /// HMAC secret for HS256/384/512 tokens, at least 32 bytes (prefer the environment variable: flags show in ps).
    #[arg(long, value_name = "SECRET", help_heading = "Auth")]
    pub auth_jwt_secret: Option<String>,
    /// PEM public key (RSA for RS256, EC P-256 for ES256), read at start-up.
    #[arg(long, value_name = "FILE", help_heading = "Auth")]
    pub auth_jwt_public_key: Option<String>,
    /// Clock skew tolerated on exp and nbf (at most 5m).
    #[arg(long, value_name = "DURATION", help_heading = "Auth")]
    pub auth_leeway: Option<String>,
    /// Origins whose pages may connect (https://app.example.com, *.example.com, *); empty: Origin must match Host.
    #[arg(long, value_name = "LIST", help_heading = "Origin and addresses")]
    pub allowed_origins: Option<String>,
    /// Refuse requests without Origin (non-browser clients) with 403 (--require-origin alone means true).
    #[arg(
        long,
        value_name = "BOOL",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true",
        help_heading = "Origin and addresses"
    )]
    pub require_origin: Option<String>,
    /// Only peers in these CIDR blocks may connect (checked at accept); empty: everyone not denied.
    #[arg(long, value_name = "LIST", help_heading = "Origin and addresses")]
    pub allow_cidr: Option<String>,
    /// Peers in these CIDR blocks are refused at accept, even when allowed.
    #[arg(long, value_name = "LIST", help_heading = "Origin and addresses")]
    pub deny_cidr: Option<String>,
    /// Proxies whose X-Forwarded-For is believed (CIDR blocks).
    #[arg(long, value_name = "LIST", help_heading = "Origin and addresses")]
    pub trusted_proxies: Option<String>,
    /// Most open connections from one client address (503 past it); 0: off.
    #[arg(long, value_name = "N", help_heading = "Rate limits")]
    pub max_connections_per_ip: Option<String>,
    /// Handshakes per second per client address (503 + Retry-After past it); 0: off.
    #[arg(long, value_name = "N", help_heading = "Rate limits")]
    pub handshake_rate: Option<String>,
    /// Handshakes one address may make at once before handshake-rate applies.
    #[arg(long, value_name = "N", help_heading = "Rate limits")]
    pub handshake_burst: Option<String>,
    /// Messages per second per connection (error reply rate_limited past it, 1008 if it stays over); 0: off.
    #[arg(long, value_name = "N", help_heading = "Rate limits")]
    pub message_rate: Option<String>,
    /// Messages a connection may send at once before message-rate applies.
    #[arg(long, value_name = "N", help_heading = "Rate limits")]
    pub message_burst: Option<String>,
    /// Payload bytes per second per connection; 0: off.
    #[arg(long, value_name = "SIZE", help_heading = "Rate limits")]
    pub message_bytes_rate: Option<String>,
    /// Over-limit messages in a row that close the connection with 1008.
    #[arg(long, value_name = "N", help_heading = "Rate limits")]
    pub message_rate_strikes: Option<String>,
    /// Time a connection may stay over its message limits before the 1008 close.
    #[arg(long, value_name = "DURATION", help_heading = "Rate limits")]
    pub message_rate_grace: Option<String>,
}

impl ServeArgs {
    /// The text given to `--KEY` on the command line, if any.
    pub fn flag(&self, key: Key) -> Option<&str> {
        let value = match key {
            Key::Listen => &self.listen,
            Key::Workers => &self.workers,
            Key::Pin => &self.pin,
            Key::MaxHeaderBytes => &self.max_header_bytes,
            Key::MaxHeaders => &self.max_headers,
            Key::MaxFrameSize => &self.max_frame_size,
            Key::MaxMessageSize => &self.max_message_size,
            Key::Subprotocols => &self.subprotocols,
            Key::HandshakeTimeout => &self.handshake_timeout,
            Key::PingInterval => &self.ping_interval,
            Key::IdleTimeout => &self.idle_timeout,
            Key::CloseTimeout => &self.close_timeout,
            Key::DrainTimeout => &self.drain_timeout,
            Key::MaxBackpressure => &self.max_backpressure,
            Key::BackpressurePolicy => &self.backpressure_policy,
            Key::MaxConnections => &self.max_connections,
            Key::ReadBufferSize => &self.read_buffer_size,
            Key::RingEntries => &self.ring_entries,
            Key::Sqpoll => &self.sqpoll,
            Key::Backlog => &self.backlog,
            Key::LogFormat => &self.log_format,
            Key::MaxRoomsPerConnection => &self.max_rooms_per_connection,
            Key::MaxRoomMembers => &self.max_room_members,
            Key::MaxRoomNameLen => &self.max_room_name_len,
            Key::MaxPayloadSize => &self.max_payload_size,
            Key::MaxEnvelopeErrors => &self.max_envelope_errors,
            Key::PublishRequiresJoin => &self.publish_requires_join,
            Key::Compression => &self.compression,
            Key::CompressionMinSize => &self.compression_min_size,
            Key::CompressionLevel => &self.compression_level,
            Key::CompressionWindowBits => &self.compression_window_bits,
            Key::Auth => &self.auth,
            Key::AuthJwtSecret => &self.auth_jwt_secret,
            Key::AuthJwtPublicKey => &self.auth_jwt_public_key,
            Key::AuthLeeway => &self.auth_leeway,
            Key::AllowedOrigins => &self.allowed_origins,
            Key::RequireOrigin => &self.require_origin,
            Key::AllowCidr => &self.allow_cidr,
            Key::DenyCidr => &self.deny_cidr,
            Key::TrustedProxies => &self.trusted_proxies,
            Key::MaxConnectionsPerIp => &self.max_connections_per_ip,
            Key::HandshakeRate => &self.handshake_rate,
            Key::HandshakeBurst => &self.handshake_burst,
            Key::MessageRate => &self.message_rate,
            Key::MessageBurst => &self.message_burst,
            Key::MessageBytesRate => &self.message_bytes_rate,
            Key::MessageRateStrikes => &self.message_rate_strikes,
            Key::MessageRateGrace => &self.message_rate_grace,
        };
        value.as_deref()
    }

    /// Merges default, `--config` file, the process's `RINGCAST_*` variables and these flags
    /// (later wins), then validates.
    pub fn load_config(&self) -> Result<Config, ConfigError> {
        self.load_config_with(|name| std::env::var_os(name))
    }

    /// [`ServeArgs::load_config`] with the environment supplied by `env`.
    pub fn load_config_with(
        &self,
        env: impl Fn(&str) -> Option<OsString>,
    ) -> Result<Config, ConfigError> {
        let mut loader = Loader::new();
        if let Some(path) = &self.config {
            loader.file(path)?;
        }
        loader.env(env)?;
        loader.flags(
            Key::ALL
                .into_iter()
                .filter_map(|k| Some((k, self.flag(k)?))),
        )?;
        loader.build()
    }
}

/// The default of `key` as shown in `--help`.
fn help_default(defaults: &Config, key: Key) -> String {
    match key {
        Key::Workers => format!("number of CPUs, {} here", defaults.workers),
        _ => match defaults.render(key) {
            empty if empty.is_empty() => "none".to_owned(),
            value => value,
        },
    }
}

/// The clap command, with each `serve` option's help ending in its default and its variable.
pub fn command() -> clap::Command {
    let defaults = Config::default();
    Cli::command().mut_subcommand("serve", |mut serve| {
        for key in Key::ALL {
            serve = serve.mut_arg(key.name(), |arg| {
                let help = arg.get_help().map(ToString::to_string).unwrap_or_default();
                arg.help(format!(
                    "{help} [default: {}] [env: {}]",
                    help_default(&defaults, key),
                    key.env_var()
                ))
            });
        }
        serve
    })
}

/// Parses `args` (program name first). On `--help`, `--version` or a usage error this returns
/// clap's error, whose `exit()` prints it and exits (0 for help/version, 2 otherwise).
pub fn try_parse_from<I, T>(args: I) -> Result<Cli, clap::Error>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let matches = command().try_get_matches_from(args)?;
    Cli::from_arg_matches(&matches)
}

/// Parses the process's arguments, exiting on `--help`, `--version` or a usage error.
pub fn parse() -> Cli {
    try_parse_from(std::env::args_os()).unwrap_or_else(|e| e.exit())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn serve(args: &[&str]) -> ServeArgs {
        let argv = ["ringcast", "serve"].iter().chain(args);
        match try_parse_from(argv)
            .expect("arguments should parse")
            .command
        {
            Command::Serve(args) => args,
            #[allow(unreachable_patterns)] // other subcommands (bench) join later
            other => panic!("parsed as {other:?}"),
        }
    }

    #[test]
    fn the_clap_definition_is_consistent() {
        command().debug_assert();
    }

    #[test]
    fn every_key_has_a_flag_of_the_same_name() {
        for key in Key::ALL {
            let flag = format!("--{}=x", key.flag());
            assert_eq!(serve(&[&flag]).flag(key), Some("x"), "{key}");
        }
    }

    #[test]
    fn pin_alone_means_true() {
        assert_eq!(serve(&["--pin"]).flag(Key::Pin), Some("true"));
        assert_eq!(serve(&["--pin=false"]).flag(Key::Pin), Some("false"));
        assert_eq!(serve(&[]).flag(Key::Pin), None);
    }

    #[test]
    fn flags_override_the_environment() {
        let args = serve(&["--workers", "2"]);
        let env = |name: &str| match name {
            "RINGCAST_WORKERS" => Some("5".into()),
            "RINGCAST_BACKLOG" => Some("64".into()),
            _ => None,
        };
        let config = args.load_config_with(env).unwrap();
        assert_eq!((config.workers, config.backlog), (2, 64));
    }

    #[test]
    fn a_bad_flag_is_reported_as_coming_from_the_flag() {
        let err = serve(&["--sqpoll", "sometimes"])
            .load_config_with(|_| None)
            .unwrap_err();
        assert!(
            err.to_string()
                .starts_with("invalid sqpoll = \"sometimes\" (flag --sqpoll)"),
            "{err}"
        );
    }

    #[test]
    fn help_shows_each_default_rendered_from_config_default() {
        let mut cmd = command();
        let help = cmd
            .find_subcommand_mut("serve")
            .unwrap()
            .render_help()
            .to_string();
        assert!(
            help.contains("[default: 16MiB] [env: RINGCAST_MAX_FRAME_SIZE]"),
            "{help}"
        );
        assert!(
            help.contains("[default: none] [env: RINGCAST_SUBPROTOCOLS]"),
            "{help}"
        );
    }
}
