//! The command line of `ringcast-bench` and its validation into a [`Plan`].
//!
//! Owns every knob of the load tool, its default, and its hard cap. Never starts anything:
//! [`BenchArgs::plan`] only checks and resolves, so a bad flag fails before a socket is opened.
//!
//! Hard caps (a flag above its cap is an error, not silently clamped):
//!
//! | knob | default | cap |
//! |---|---|---|
//! | `--url` | `ws://127.0.0.1:8080` (the server's default `--listen`) + the scenario's path: `/ws` for `fanout`, `/echo` otherwise (also for a URL given without a path) | loopback unless `--allow-remote` |
//! | `--duration` | 10 s | 600 s |
//! | `--connections` | 100 | 100 000, and below the open-file soft limit |
//! | `--payload` | 32 B | 16 MiB |
//! | `--in-flight` | 1 | 4096, and `in_flight × frame` ≤ 64 MiB |
//! | `--rate` | `latency`: 10 000 msg/s over all connections; `fanout`: 1 000 msg/s published | 10 000 000 msg/s |
//! | `--room` (`fanout`) | `bench` | 64 bytes of `[A-Za-z0-9_.:-]` |
//! | `--threads` | 1 | 64 |
//! | `--baseline-writers` (`fanout`) | 1 | 64 |
//! | unanswered messages in `latency` | — | 4 Mi over all connections |

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, ValueEnum};

use super::error::LoadError;
use super::target::Target;

/// Longest run of any scenario.
pub const MAX_DURATION: Duration = Duration::from_secs(600);
/// Most connections one run opens.
pub const MAX_CONNECTIONS: u32 = 100_000;
/// Largest message payload.
pub const MAX_PAYLOAD: usize = 16 << 20;
/// Most messages in flight per connection in `echo`.
pub const MAX_IN_FLIGHT: u32 = 4096;
/// Largest `in_flight × frame` a thread pre-encodes.
pub const MAX_BURST_BYTES: usize = 64 << 20;
/// Highest offered rate in `latency`.
pub const MAX_RATE: u64 = 10_000_000;
/// Most load threads.
pub const MAX_THREADS: u32 = 64;
/// Most unanswered messages `latency` remembers over all connections before it declares the
/// server stalled (each costs 16 bytes of send time).
pub const MAX_BACKLOG: usize = 4 << 20;
/// How long a run waits for outstanding echoes and close handshakes after its duration.
pub const DRAIN: Duration = Duration::from_secs(2);
/// The server's default `--listen` address: where the tool points when `--url` is not given.
pub const DEFAULT_ADDR: &str = "127.0.0.1:8080";
/// `--rate` in `latency` when not given: messages per second offered over all connections.
pub const DEFAULT_LATENCY_RATE: u64 = 10_000;
/// `--rate` in `fanout` when not given: messages per second the publisher sends. With the
/// default 100 subscribers that is 100 000 deliveries/s. Measured on the 2-core development
/// machine, busy with other builds (load average 16), against `ringcast serve --workers 2`:
/// 1 000 and 2 000 msg/s delivered everything; 3 000 too, with p99 near 200 ms; 10 000 (the old
/// default, shared with `latency`) did not: the server closed every subscriber with 1008 "slow
/// consumer" and 79 % of the deliveries were lost (tuning.md, "Fan-out").
pub const DEFAULT_FANOUT_RATE: u64 = 1_000;
/// File descriptors kept free for the tool itself (stdio, runtime, epoll, output files).
const SPARE_FDS: u64 = 64;

/// What to measure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Scenario {
    /// C connections each keep D messages of P bytes in flight: throughput and round trips.
    Echo,
    /// A fixed offered rate spread over C connections: round-trip percentiles measured from each
    /// message's scheduled send time (no coordinated omission).
    Latency,
    /// Open C connections over `--ramp-up`: handshakes/s, handshake times, failures by reason.
    Connect,
    /// Hold C connections for `--duration`, optionally answering pings; with `--server-pid`,
    /// the server's resident memory per connection.
    Idle,
    /// C subscribers join one room (`--room`), then one more connection publishes to it at
    /// `--rate` for `--duration`: deliveries/s, missing deliveries, and publish-to-delivery
    /// latency (the publisher's send time in microseconds travels in each payload). Needs a
    /// ringcast `/ws` target. Subscribers join with `"presence":false`, so opening them costs
    /// the server O(C) frames. Then, unless `--no-baseline`, the same frames are written to C
    /// plain TCP sockets at the same rate without any server, and both are reported with their
    /// ratio.
    Fanout,
}

impl std::fmt::Display for Scenario {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Scenario::Echo => "echo",
            Scenario::Latency => "latency",
            Scenario::Connect => "connect",
            Scenario::Idle => "idle",
            Scenario::Fanout => "fanout",
        })
    }
}

impl Scenario {
    /// The request path when the URL has none: `/ws` (rooms) for `fanout`, `/echo` otherwise.
    pub fn default_path(self) -> &'static str {
        match self {
            Scenario::Fanout => "/ws",
            Scenario::Echo | Scenario::Latency | Scenario::Connect | Scenario::Idle => "/echo",
        }
    }

    /// `--rate` when not given (only `latency` and `fanout` read it).
    pub fn default_rate(self) -> u64 {
        match self {
            Scenario::Fanout => DEFAULT_FANOUT_RATE,
            _ => DEFAULT_LATENCY_RATE,
        }
    }
}

/// `ringcast-bench SCENARIO [--url ws://…]`: the load tool's flags.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "ringcast-bench",
    version,
    about = "Drive load against a WebSocket server on loopback and report throughput, latency \
             and memory.",
    after_help = "Exit status: 0 when every connection lasted and nothing was lost; 3 when the \
                  run finished but the server closed connections, connections failed or \
                  messages were lost (the last line says which); 1 when the run could not be \
                  made; 2 for a bad command line."
)]
pub struct BenchArgs {
    /// What to measure.
    #[arg(value_enum)]
    pub scenario: Scenario,
    /// The server to load: ws://HOST[:PORT][/PATH], only on loopback unless --allow-remote.
    /// Default: ws://127.0.0.1:8080 (the server's default --listen). Without a path: /ws for
    /// fanout, /echo for the other scenarios.
    #[arg(long, value_name = "URL")]
    pub url: Option<String>,
    /// Connections to open (cap 100 000 and the open-file limit).
    #[arg(short = 'c', long, default_value_t = 100)]
    pub connections: u32,
    /// Payload bytes per message (cap 16 MiB).
    #[arg(short = 'p', long, default_value_t = 32)]
    pub payload: usize,
    /// Messages in flight per connection in `echo` (cap 4096).
    #[arg(short = 'd', long, default_value_t = 1)]
    pub in_flight: u32,
    /// How long to measure (`echo`, `latency`, `idle`) or the deadline for all handshakes
    /// (`connect`): e.g. 500ms, 10s, 2m (cap 600 s).
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub duration: Duration,
    /// Offered messages per second over all connections in `latency` (default 10000), or the
    /// publisher's messages per second in `fanout` (default 1000; deliveries/s are this times
    /// the subscribers). Cap 10 000 000.
    #[arg(long)]
    pub rate: Option<u64>,
    /// Spread connection attempts evenly over this time (0 = as fast as allowed).
    #[arg(long, default_value = "0s", value_parser = parse_duration)]
    pub ramp_up: Duration,
    /// Handshakes in progress at once per run (connection attempts beyond it wait).
    #[arg(long, default_value_t = 256)]
    pub max_pending: u32,
    /// Give up on a connection whose TCP connect plus upgrade takes longer than this.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub connect_timeout: Duration,
    /// In `idle`, answer the server's pings with pongs.
    #[arg(long)]
    pub answer_pings: bool,
    /// Sample this process's VmRSS and CPU time (the server under test).
    #[arg(long)]
    pub server_pid: Option<u32>,
    /// Load threads, each with its own event loop (cap 64).
    #[arg(long, default_value_t = 1)]
    pub threads: u32,
    /// Raw TCP echo target: no upgrade; every frame's worth of echoed bytes counts as a message.
    #[arg(long)]
    pub raw: bool,
    /// Send text frames (ASCII payload) instead of binary ones.
    #[arg(long)]
    pub text: bool,
    /// Offer permessage-deflate (RFC 7692) as browsers do (`permessage-deflate;
    /// client_max_window_bits`). Where the server accepts, its compressed messages are inflated
    /// (and checked) before they count; the tool's own messages go uncompressed. The report
    /// says how many connections negotiated it and the bytes read from the server.
    #[arg(long)]
    pub deflate: bool,
    /// Payloads are realistic JSON of exactly --payload bytes (at least 64): a chat message
    /// below 1 KiB, a dashboard update from 1 KiB, with numbers that change from message to
    /// message (16 variants) instead of one repeated byte. Text frames. In `fanout` the
    /// published payload is `{"t":<send time>,"body":<this JSON>}`.
    #[arg(long)]
    pub json_payload: bool,
    /// No progress bar.
    #[arg(short, long)]
    pub quiet: bool,
    /// Print the report as JSON on stdout instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Draw throughput over time and the latency distribution into this SVG file.
    #[arg(long, value_name = "FILE.svg")]
    pub plot: Option<PathBuf>,
    /// Allow a target outside loopback.
    #[arg(long)]
    pub allow_remote: bool,
    /// The room `fanout` subscribers join and its publisher publishes to (letters, digits,
    /// `_ . : -`; at most 64 bytes).
    #[arg(long, default_value = "bench")]
    pub room: String,
    /// `fanout`: skip the baseline phase (the same frames written to as many plain TCP sockets
    /// by a helper process, without any server).
    #[arg(long)]
    pub no_baseline: bool,
    /// `fanout`: threads of the baseline writer, each writing to its share of the sockets; match
    /// the server's `--workers` for a like-for-like ratio (cap 64).
    #[arg(long, default_value_t = 1)]
    pub baseline_writers: u32,
    /// `fanout`: pin the baseline writer's threads to this CPU (e.g. the one the server was
    /// pinned to with `taskset`).
    #[arg(long, value_name = "CPU")]
    pub baseline_cpu: Option<usize>,
    /// `fanout`: the ringcast-bench executable that runs the baseline writer (default: this
    /// program).
    #[arg(long, value_name = "PATH")]
    pub baseline_exe: Option<PathBuf>,
    /// Internal: run as the baseline writer of a parent `ringcast-bench fanout` (it drives this
    /// process through stdin and stdout).
    #[arg(long, hide = true)]
    pub baseline_writer: bool,
}

impl BenchArgs {
    /// Parses the flags alone, without a program name (`["echo", "--url", …]`), as
    /// `ringcast-bench` would; for tests and wrappers.
    pub fn parse_flags<I, T>(flags: I) -> Result<BenchArgs, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        let argv =
            std::iter::once("ringcast-bench".into()).chain(flags.into_iter().map(Into::into));
        <BenchArgs as Parser>::try_parse_from(argv)
    }

    /// `--rate`, or the scenario's default.
    pub fn rate(&self) -> u64 {
        self.rate.unwrap_or(self.scenario.default_rate())
    }

    /// Checks every cap and resolves the target. Nothing is opened.
    pub fn plan(&self) -> Result<Plan, LoadError> {
        let url = match &self.url {
            Some(url) => url.clone(),
            None => format!("ws://{DEFAULT_ADDR}"),
        };
        let target = Target::resolve(&url, self.scenario.default_path(), self.allow_remote)?;
        let rate = self.rate();
        check(
            "duration (ms)",
            self.duration.as_millis() as u64,
            1,
            MAX_DURATION.as_millis() as u64,
        )?;
        check(
            "connections",
            self.connections.into(),
            1,
            MAX_CONNECTIONS.into(),
        )?;
        check("threads", self.threads.into(), 1, MAX_THREADS.into())?;
        check("payload", self.payload as u64, 0, MAX_PAYLOAD as u64)?;
        check(
            "max-pending",
            self.max_pending.into(),
            1,
            MAX_CONNECTIONS.into(),
        )?;
        check(
            "ramp-up (ms)",
            self.ramp_up.as_millis() as u64,
            0,
            MAX_DURATION.as_millis() as u64,
        )?;
        check(
            "connect-timeout (ms)",
            self.connect_timeout.as_millis() as u64,
            1,
            60_000,
        )?;
        match self.scenario {
            Scenario::Echo => check("in-flight", self.in_flight.into(), 1, MAX_IN_FLIGHT.into())?,
            Scenario::Latency => check("rate", rate, 1, MAX_RATE)?,
            Scenario::Connect | Scenario::Idle | Scenario::Fanout if self.raw => {
                return Err(LoadError::RawUnsupported(self.scenario))
            }
            Scenario::Fanout => {
                check("rate", rate, 1, MAX_RATE)?;
                check(
                    "baseline-writers",
                    self.baseline_writers.into(),
                    1,
                    MAX_THREADS.into(),
                )?;
                check("room length", self.room.len() as u64, 1, 64)?;
                if !self
                    .room
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"_.:-".contains(&b))
                {
                    return Err(LoadError::BadRoom(self.room.clone()));
                }
            }
            Scenario::Connect | Scenario::Idle => {}
        }
        if self.deflate && self.raw {
            return Err(LoadError::Unsupported("--deflate with --raw (no upgrade)"));
        }
        if self.json_payload {
            check(
                "payload (with --json-payload)",
                self.payload as u64,
                super::content::MIN_JSON_PAYLOAD as u64,
                MAX_PAYLOAD as u64,
            )?;
        }
        if self.scenario == Scenario::Fanout
            && !self.no_baseline
            && (self.deflate || self.json_payload)
        {
            return Err(LoadError::Unsupported(
                "the fanout baseline with --deflate or --json-payload (its writer sends the \
                 default payload uncompressed): add --no-baseline",
            ));
        }
        // `fanout`: the subscribers plus one publisher. The baseline phase needs only the
        // subscribers' descriptors here: its writer's ends are in the writer's own process.
        let connections = match self.scenario {
            Scenario::Fanout => self.connections + 1,
            _ => self.connections,
        };
        if let Some(limit) = super::sys::open_file_limit() {
            let needed = u64::from(connections) + SPARE_FDS;
            if needed > limit {
                return Err(LoadError::TooManyFiles { needed, limit });
            }
        }
        let threads = self.threads.min(connections);
        let frame_len = super::codec::masked_frame_len(self.payload);
        let owed_frames = match self.scenario {
            Scenario::Echo => self.in_flight as usize,
            // Open loop: a write covers at most this many due frames; more wait for the next.
            _ => 64,
        };
        let cycle = if self.json_payload {
            super::content::VARIANTS as usize
        } else {
            1
        };
        let burst_bytes = frame_len.saturating_mul(owed_frames + cycle);
        if burst_bytes > MAX_BURST_BYTES {
            return Err(LoadError::OutOfRange {
                what: "in-flight × frame bytes",
                value: burst_bytes as u64,
                min: 0,
                max: MAX_BURST_BYTES as u64,
            });
        }
        Ok(Plan {
            scenario: self.scenario,
            url: target.url(),
            target,
            connections,
            subscribers: (self.scenario == Scenario::Fanout).then_some(self.connections),
            room: self.room.clone(),
            payload: self.payload,
            in_flight: self.in_flight,
            duration: self.duration,
            rate,
            ramp_up: self.ramp_up,
            max_pending: self.max_pending,
            connect_timeout: self.connect_timeout,
            answer_pings: self.answer_pings,
            server_pid: self.server_pid,
            threads,
            raw: self.raw,
            text: self.text || self.json_payload,
            deflate: self.deflate,
            json_payload: self.json_payload,
            owed_frames,
            backlog_per_connection: (MAX_BACKLOG / connections as usize).max(1),
            baseline: (self.scenario == Scenario::Fanout && !self.no_baseline).then(|| {
                BaselinePlan {
                    writers: self.baseline_writers,
                    cpu: self.baseline_cpu,
                    exe: self.baseline_exe.clone(),
                }
            }),
            baseline_phase: false,
        })
    }
}

fn check(what: &'static str, value: u64, min: u64, max: u64) -> Result<(), LoadError> {
    if (min..=max).contains(&value) {
        Ok(())
    } else {
        Err(LoadError::OutOfRange {
            what,
            value,
            min,
            max,
        })
    }
}

/// A validated run: what every load thread needs to know, shared read-only.
#[derive(Debug, Clone)]
pub struct Plan {
    /// What to measure.
    pub scenario: Scenario,
    /// The URL loaded (the default, or the one given, with the scenario's path if it had none).
    pub url: String,
    /// The resolved target.
    pub target: Target,
    /// Connections over all threads (in `fanout`: the subscribers plus the publisher, which is
    /// connection 0).
    pub connections: u32,
    /// `fanout`: the subscriber connections.
    pub subscribers: Option<u32>,
    /// `fanout`: the room.
    pub room: String,
    /// Payload bytes per message.
    pub payload: usize,
    /// Messages in flight per connection (`echo`).
    pub in_flight: u32,
    /// Measurement time, or the handshake deadline in `connect`.
    pub duration: Duration,
    /// Offered messages per second over all connections (`latency`).
    pub rate: u64,
    /// Time over which connection attempts are spread.
    pub ramp_up: Duration,
    /// Handshakes in progress at once over all threads.
    pub max_pending: u32,
    /// Per-connection limit on connect plus upgrade.
    pub connect_timeout: Duration,
    /// Answer pings in `idle`.
    pub answer_pings: bool,
    /// The server process to sample.
    pub server_pid: Option<u32>,
    /// Load threads actually started (never more than connections).
    pub threads: u32,
    /// Raw TCP echo mode.
    pub raw: bool,
    /// Text frames instead of binary.
    pub text: bool,
    /// Offer permessage-deflate and inflate what the server compresses.
    pub deflate: bool,
    /// Realistic JSON payloads ([`super::content`]) instead of one repeated byte.
    pub json_payload: bool,
    /// Most whole frames one write may carry (sizes the pre-encoded burst).
    pub owed_frames: usize,
    /// Most unanswered messages per connection in `latency`.
    pub backlog_per_connection: usize,
    /// `fanout` without `--no-baseline`: how to run the baseline phase after the room phase.
    pub baseline: Option<BaselinePlan>,
    /// This plan *is* the baseline phase of `fanout`: every connection is a subscriber reading
    /// plain, unmasked server frames over plain TCP from the baseline writer (no upgrade, no
    /// join, no publisher, no close handshake).
    pub baseline_phase: bool,
}

/// The baseline phase of `fanout`: a helper process writes the room phase's frames to as many
/// plain TCP sockets, at the same rate, for the same duration.
#[derive(Debug, Clone)]
pub struct BaselinePlan {
    /// Writer threads in the helper.
    pub writers: u32,
    /// The CPU they are pinned to, if any.
    pub cpu: Option<usize>,
    /// The ringcast executable to run as the helper; `None`: this program.
    pub exe: Option<PathBuf>,
}

impl Plan {
    /// The plan of the baseline phase that follows this `fanout` plan: the same subscribers,
    /// rate, duration, room and threads, connecting to the baseline writer at `writer`.
    pub fn for_baseline(&self, writer: std::net::SocketAddr) -> Plan {
        let connections = self.subscribers.unwrap_or(self.connections);
        Plan {
            url: format!("tcp://{writer}"),
            target: Target {
                addr: writer,
                host_header: writer.to_string(),
                path: "/".to_owned(),
            },
            connections,
            threads: self.threads.min(connections),
            server_pid: None,
            backlog_per_connection: (MAX_BACKLOG / connections as usize).max(1),
            baseline: None,
            baseline_phase: true,
            ..self.clone()
        }
    }
}

/// Parses `250ms`, `10s`, `2m` or a bare number of seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a duration like 500ms, 10s or 2m"))?;
    let seconds = match unit {
        "ms" => value / 1000.0,
        "" | "s" => value,
        "m" => value * 60.0,
        other => return Err(format!("unknown duration unit {other:?} (use ms, s or m)")),
    };
    if !seconds.is_finite() || seconds > MAX_DURATION.as_secs_f64() * 10.0 {
        return Err(format!("{text:?} is out of range"));
    }
    Ok(Duration::from_secs_f64(seconds))
}

/// The plan shared by all threads.
pub type SharedPlan = Arc<Plan>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_accept_ms_s_m_and_bare_seconds() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1.5"), Ok(Duration::from_millis(1500)));
        assert!(parse_duration("10h").is_err());
        assert!(parse_duration("fast").is_err());
    }

    fn plan(argv: &[&str]) -> Result<Plan, LoadError> {
        BenchArgs::parse_flags(argv).unwrap().plan()
    }

    #[test]
    fn defaults_make_a_valid_plan() {
        let p = plan(&["echo"]).unwrap();
        assert_eq!(p.connections, 100);
        assert_eq!(p.payload, 32);
        assert_eq!(p.duration, Duration::from_secs(10));
    }

    #[test]
    fn a_duration_over_the_cap_is_refused() {
        assert!(matches!(
            plan(&["echo", "--duration", "11m"]),
            Err(LoadError::OutOfRange {
                what: "duration (ms)",
                ..
            })
        ));
    }

    #[test]
    fn zero_connections_or_threads_are_refused() {
        assert!(matches!(
            plan(&["echo", "-c", "0"]),
            Err(LoadError::OutOfRange {
                what: "connections",
                ..
            })
        ));
        assert!(matches!(
            plan(&["echo", "--threads", "0"]),
            Err(LoadError::OutOfRange {
                what: "threads",
                ..
            })
        ));
    }

    #[test]
    fn a_burst_over_64_mib_is_refused() {
        assert!(matches!(
            plan(&["echo", "-p", "1048576", "-d", "100"]),
            Err(LoadError::OutOfRange {
                what: "in-flight × frame bytes",
                ..
            })
        ));
    }

    #[test]
    fn raw_mode_only_applies_to_message_scenarios() {
        assert!(matches!(
            plan(&["connect", "--raw"]),
            Err(LoadError::RawUnsupported(Scenario::Connect))
        ));
        assert!(plan(&["latency", "--raw"]).is_ok());
    }

    #[test]
    fn each_scenario_has_its_own_default_path_on_the_servers_default_address() {
        let fanout = plan(&["fanout"]).unwrap();
        assert_eq!(fanout.url, "ws://127.0.0.1:8080/ws");
        assert_eq!(fanout.target.addr, "127.0.0.1:8080".parse().unwrap());
        for scenario in ["echo", "latency", "connect", "idle"] {
            assert_eq!(plan(&[scenario]).unwrap().url, "ws://127.0.0.1:8080/echo");
        }
        // A URL without a path gets the scenario's; a path given (even `/`) is kept.
        let p = plan(&["fanout", "--url", "ws://127.0.0.1:9001"]).unwrap();
        assert_eq!(p.target.path, "/ws");
        let p = plan(&["echo", "--url", "ws://127.0.0.1:9001"]).unwrap();
        assert_eq!(p.target.path, "/echo");
        let p = plan(&["echo", "--url", "ws://127.0.0.1:9001/"]).unwrap();
        assert_eq!(p.target.path, "/");
    }

    #[test]
    fn the_default_address_is_the_servers_default_listen_address() {
        assert_eq!(
            DEFAULT_ADDR.parse::<std::net::SocketAddr>().unwrap(),
            ringcast::config::Config::default().listen
        );
    }

    #[test]
    fn each_rate_scenario_has_its_own_default_rate() {
        assert_eq!(plan(&["latency"]).unwrap().rate, DEFAULT_LATENCY_RATE);
        assert_eq!(plan(&["fanout"]).unwrap().rate, DEFAULT_FANOUT_RATE);
        assert_eq!(plan(&["fanout", "--rate", "50"]).unwrap().rate, 50);
    }

    #[test]
    fn threads_never_outnumber_connections() {
        assert_eq!(
            plan(&["echo", "-c", "2", "--threads", "8"])
                .unwrap()
                .threads,
            2
        );
    }
}
