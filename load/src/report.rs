//! The result of a run, and its two renderings: a table for people, JSON for machines.
//!
//! Owns the definitions of the reported figures (what "MB/s" means, over which window a rate is
//! taken). Never measures: it only derives figures from merged [`Stats`] and the caller's samples.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

use super::args::{Plan, Scenario, DRAIN};
use super::figures::{count, decimal, latency, plural, ratio as ratio_text, whole, Better};
use super::stats::{Percentiles, Stats, TICK};

/// Resident memory of the server (`--server-pid`), in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Memory {
    /// Before the first connection was opened.
    pub before: u64,
    /// Once every connection was open.
    pub connected: u64,
    /// At the end of the measurement, connections still open.
    pub end: u64,
    /// `(end - before) / connections open`, in bytes; negative if the server shrank.
    pub per_connection: f64,
}

/// CPU use over the measurement window, in cores (1.0 = one core fully busy).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Cpu {
    /// The load tool itself (all its threads).
    pub tool_cores: f64,
    /// The server, when `--server-pid` was given.
    pub server_cores: Option<f64>,
    /// The server's CPU time over the window in seconds (user + system, from
    /// `/proc/PID/stat`), when `--server-pid` was given: divided by the messages, the server's
    /// CPU per message.
    pub server_seconds: Option<f64>,
}

/// What the caller sampled around the measurement.
#[derive(Debug, Clone, Copy)]
pub struct Samples {
    /// CPU use over the window.
    pub cpu: Cpu,
    /// Server memory, when sampled.
    pub memory: Option<Memory>,
}

/// Bytes the server sent, as the tool read them (TCP payload: frame headers and payloads, as
/// they were on the wire).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Wire {
    /// Read during the measurement window and its drain, by every connection (the `fanout`
    /// publisher's replies included).
    pub bytes_in: u64,
    /// `bytes_in` over the messages (or deliveries) completed, late ones included.
    pub per_message: Option<f64>,
}

/// `--deflate`: what the server accepted and used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Deflate {
    /// Connections whose server accepted the offer.
    pub negotiated: u64,
    /// Messages that arrived compressed during the measurement (each was inflated and checked).
    pub compressed_messages: u64,
}

/// `fanout`'s own figures. Deliveries are `completed + late`; `completed / window_s` is the
/// deliveries per second, and `latency_us` is publish-to-delivery latency (from the publisher's
/// send time carried in the payload to the subscriber's read, both unix microseconds).
/// `--payload` does not apply (the payload is `{"t":…}`), so neither do `payload` and
/// `mb_per_second` in a `fanout` report.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Fanout {
    /// Subscribers asked for.
    pub subscribers: u32,
    /// Subscribers whose join the server accepted.
    pub joined: u64,
    /// Messages published before the deadline.
    pub published: u64,
    /// `published × joined`.
    pub expected_deliveries: u64,
    /// Deliveries seen (within the window or while draining).
    pub delivered: u64,
    /// `expected_deliveries - delivered` (0 if more arrived).
    pub missing_deliveries: u64,
}

/// `fanout`'s baseline phase: the room phase's frames written by a helper process to as many
/// plain TCP sockets, at the same rate, for the same duration, with no server in between; the
/// subscribers read and time them exactly as in the room phase. Figures as in [`Report`] and
/// [`Fanout`]; `expected_deliveries` is `published × connections`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Baseline {
    /// Sockets the subscribers read from.
    pub connections: u64,
    /// Writer threads in the helper.
    pub writers: u32,
    /// Messages on the helper's schedule.
    pub published: u64,
    /// `published × connections`.
    pub expected_deliveries: u64,
    /// Deliveries seen (within the window or while draining).
    pub delivered: u64,
    /// `expected_deliveries - delivered` (0 if more arrived).
    pub missing_deliveries: u64,
    /// Sockets the helper dropped after a write failed or blocked too long.
    pub dropped_sockets: u64,
    /// Deliveries within the window.
    pub completed: u64,
    /// Deliveries after the window, while draining.
    pub late: u64,
    /// `completed / window_s` (the room phase's window).
    pub per_second: f64,
    /// Write-to-delivery latency, in microseconds.
    pub latency_us: Option<Percentiles>,
    /// The helper's CPU use over the window, in cores.
    pub writer_cores: Option<f64>,
    /// The load tool's.
    pub tool_cores: f64,
    /// Failed subscriber sockets by reason (the writer closing one included).
    pub failures: BTreeMap<String, u64>,
    /// Room phase over baseline, same run.
    pub ratio: Ratio,
}

/// Room phase ÷ baseline phase of one `fanout` run. Deliveries per second: 1.0 means the server
/// delivered as many as plain writes did (higher is better); latencies: 2.0 means twice the
/// baseline's (lower is better). `None` where either side has no figure.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Ratio {
    /// `per_second` room / baseline.
    pub deliveries_per_second: Option<f64>,
    /// Latency p50 room / baseline.
    pub p50: Option<f64>,
    /// Latency p99 room / baseline.
    pub p99: Option<f64>,
}

fn ratio(room: f64, baseline: f64) -> Option<f64> {
    (baseline > 0.0).then(|| room / baseline)
}

impl Baseline {
    /// The baseline's figures from its merged counts, the helper's counts and the CPU sampled
    /// around its window; `room` is the room phase's report it is compared with.
    pub(crate) fn new(
        room: &Report,
        writers: u32,
        stats: &Stats,
        written: &super::baseline::Written,
        cpu: Cpu,
    ) -> Baseline {
        let per_second = if room.window_s > 0.0 {
            stats.completed as f64 / room.window_s
        } else {
            0.0
        };
        let latency_us = stats.percentiles();
        let expected = written.published * stats.connected;
        let delivered = stats.completed + stats.late;
        let both = |f: fn(&Percentiles) -> f64| {
            room.latency_us
                .zip(latency_us)
                .and_then(|(r, b)| ratio(f(&r), f(&b)))
        };
        Baseline {
            connections: stats.connected,
            writers,
            published: written.published,
            expected_deliveries: expected,
            delivered,
            missing_deliveries: expected.saturating_sub(delivered),
            dropped_sockets: written.dropped,
            completed: stats.completed,
            late: stats.late,
            per_second,
            latency_us,
            writer_cores: cpu.server_cores,
            tool_cores: cpu.tool_cores,
            failures: stats.all_failures(),
            ratio: Ratio {
                deliveries_per_second: ratio(room.per_second, per_second),
                p50: both(|p| p.p50),
                p99: both(|p| p.p99),
            },
        }
    }
}

/// A finished run.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The scenario.
    pub scenario: Scenario,
    /// The URL loaded.
    pub url: String,
    /// Raw TCP echo mode (every frame-length of echoed bytes counts as one message).
    pub raw: bool,
    /// Connections asked for.
    pub connections: u32,
    /// Connections that were opened (upgrade completed).
    pub connected: u64,
    /// Load threads.
    pub threads: u32,
    /// Payload bytes per message.
    pub payload: usize,
    /// Messages in flight per connection (`echo`).
    pub in_flight: Option<u32>,
    /// Offered messages per second (`latency`).
    pub offered_rate: Option<u64>,
    /// The window the rates are taken over, in seconds: `--duration` for `echo`, `latency` and
    /// `idle`; first attempt to last completed handshake for `connect`.
    pub window_s: f64,
    /// Messages echoed within the window (handshakes in `connect`, server messages in `idle`).
    pub completed: u64,
    /// Messages answered after the window, while draining (in the latencies, not the rates).
    pub late: u64,
    /// Messages never answered.
    pub unanswered: u64,
    /// `completed / window_s`.
    pub per_second: f64,
    /// Echoed payload in decimal megabytes per second, one direction: `per_second × payload /
    /// 10^6`. Headers are not counted; the same bytes went out too.
    pub mb_per_second: f64,
    /// Round trips (handshake times in `connect`), in microseconds; `None` when none completed.
    pub latency_us: Option<Percentiles>,
    /// `latency` only: how late the tool itself noticed each scheduled send, in microseconds.
    /// Every round trip includes this lag, so it bounds the tool's own share of them.
    pub send_lag_us: Option<Percentiles>,
    /// `fanout`: the deliveries side (`None` in the other scenarios).
    pub fanout: Option<Fanout>,
    /// What the server put on the wire toward the tool.
    pub wire: Wire,
    /// `--deflate`: what was negotiated and compressed.
    pub deflate: Option<Deflate>,
    /// `fanout` without `--no-baseline`: the baseline phase and the ratios to it.
    pub baseline: Option<Baseline>,
    /// Connections the server closed while the tool still needed them, by the close code and
    /// reason it sent (`1008 "slow consumer"`), or `without a close frame (EOF)`.
    pub closed_by_server: BTreeMap<String, u64>,
    /// Connections that failed otherwise, by reason.
    pub failures: BTreeMap<String, u64>,
    /// What went wrong, one sentence each: connections the server closed (with the code and
    /// reason it sent), connections that failed otherwise, messages or deliveries lost, and the
    /// same for the `fanout` baseline. Empty when nothing did; the tool exits non-zero when not.
    pub problems: Vec<String>,
    /// Connections whose close handshake the server completed.
    pub closed_cleanly: u64,
    /// Pings received from the server.
    pub pings: u64,
    /// Pongs sent back: pings read together get one pong for the latest (§5.5.3), so this can
    /// be lower than `pings`.
    pub pongs: u64,
    /// CPU use over the window.
    pub cpu: Cpu,
    /// Server memory (`--server-pid`).
    pub memory: Option<Memory>,
    /// Completions per second in each [`TICK`] of the window.
    pub timeline: Vec<f64>,
    /// Width of one timeline step in milliseconds.
    pub timeline_step_ms: u64,
    /// `(percentile, microseconds)` points of the latency distribution.
    pub latency_curve: Vec<(f64, f64)>,
}

impl Report {
    /// Derives the report from merged counts and the caller's samples.
    pub fn new(plan: &Plan, stats: &Stats, samples: Samples) -> Report {
        let window = match plan.scenario {
            Scenario::Connect => stats.last_completion,
            _ => plan.duration,
        };
        let window_s = window.as_secs_f64();
        let per_second = if window_s > 0.0 {
            stats.completed as f64 / window_s
        } else {
            0.0
        };
        let ticks = (window.as_nanos().div_ceil(TICK.as_nanos()) as usize).max(1);
        let per_tick = 1.0 / TICK.as_secs_f64();
        let timeline = stats
            .timeline
            .iter()
            .take(ticks)
            .map(|&n| n as f64 * per_tick)
            .collect();
        let mut report = Report {
            scenario: plan.scenario,
            url: plan.url.clone(),
            raw: plan.raw,
            connections: plan.connections,
            connected: stats.connected,
            threads: plan.threads,
            payload: plan.payload,
            in_flight: (plan.scenario == Scenario::Echo).then_some(plan.in_flight),
            offered_rate: matches!(plan.scenario, Scenario::Latency | Scenario::Fanout)
                .then_some(plan.rate),
            window_s,
            completed: stats.completed,
            late: stats.late,
            unanswered: stats.unanswered,
            per_second,
            mb_per_second: per_second * plan.payload as f64 / 1e6,
            latency_us: stats.percentiles(),
            send_lag_us: stats.send_lag_percentiles(),
            fanout: plan.subscribers.map(|subscribers| {
                let expected = stats.published * stats.joined;
                let delivered = stats.completed + stats.late;
                Fanout {
                    subscribers,
                    joined: stats.joined,
                    published: stats.published,
                    expected_deliveries: expected,
                    delivered,
                    missing_deliveries: expected.saturating_sub(delivered),
                }
            }),
            wire: Wire {
                bytes_in: stats.wire_bytes_in,
                per_message: {
                    let messages = stats.completed + stats.late;
                    (messages > 0).then(|| stats.wire_bytes_in as f64 / messages as f64)
                },
            },
            deflate: plan.deflate.then_some(Deflate {
                negotiated: stats.deflate_negotiated,
                compressed_messages: stats.compressed_messages,
            }),
            baseline: None,
            closed_by_server: stats
                .closed_by_server
                .iter()
                .map(|(close, n)| (close.to_string(), *n))
                .collect(),
            failures: stats.failures.clone(),
            problems: Vec::new(),
            closed_cleanly: stats.closed_cleanly,
            pings: stats.pings,
            pongs: stats.pongs,
            cpu: samples.cpu,
            memory: samples.memory,
            timeline,
            timeline_step_ms: TICK.as_millis() as u64,
            latency_curve: stats.latency_curve(),
        };
        report.problems = report.find_problems();
        report
    }

    /// The report as pretty JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a report always serializes")
    }

    /// Adds the `fanout` baseline phase (its problems join the report's).
    pub fn set_baseline(&mut self, baseline: Baseline) {
        self.baseline = Some(baseline);
        self.problems = self.find_problems();
    }

    /// What went wrong in this run, one sentence each, worst first: connections the server
    /// closed (with the code and reason it sent), connections that failed otherwise, messages
    /// or deliveries lost; the same for the `fanout` baseline. Empty when nothing did.
    fn find_problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        for (close, n) in &self.closed_by_server {
            out.push(format!(
                "{} closed by the server: {close}",
                plural(*n, "connection", "connections")
            ));
        }
        for (reason, n) in &self.failures {
            out.push(format!(
                "{} failed: {reason}",
                plural(*n, "connection", "connections")
            ));
        }
        if let Some(f) = &self.fanout {
            if f.missing_deliveries > 0 {
                out.push(format!(
                    "{} of {} deliveries lost",
                    count(f.missing_deliveries),
                    count(f.expected_deliveries)
                ));
            }
        }
        if self.unanswered > 0 {
            out.push(format!(
                "{} never answered (not even within the {} s drain)",
                plural(self.unanswered, "message", "messages"),
                DRAIN.as_secs()
            ));
        }
        if let Some(b) = &self.baseline {
            for (reason, n) in &b.failures {
                out.push(format!(
                    "baseline: {} failed: {reason}",
                    plural(*n, "socket", "sockets")
                ));
            }
            if b.missing_deliveries > 0 {
                out.push(format!(
                    "baseline: {} of {} deliveries lost ({} dropped by the writer)",
                    count(b.missing_deliveries),
                    count(b.expected_deliveries),
                    plural(b.dropped_sockets, "socket", "sockets")
                ));
            }
        }
        out
    }

    /// The last line of a run: `result: ok (…)` or `result: FAILED: …` listing
    /// [`Report::problems`].
    pub fn verdict(&self) -> String {
        if self.problems.is_empty() {
            let what = match self.scenario {
                Scenario::Fanout => "every delivery arrived",
                Scenario::Echo | Scenario::Latency => "every message answered",
                Scenario::Connect => "every handshake completed",
                Scenario::Idle => "every connection held",
            };
            format!("result: ok ({what}, no connection failed)")
        } else {
            format!("result: FAILED: {}", self.problems.join("; "))
        }
    }

    /// The report as an aligned two-column table (without the verdict line, which the caller
    /// prints last).
    pub fn table(&self) -> String {
        let mut rows: Vec<(String, String)> = Vec::new();
        let mut row = |k: &str, v: String| rows.push((k.to_owned(), v));
        row(
            "scenario",
            format!("{}{}", self.scenario, if self.raw { " (raw)" } else { "" }),
        );
        row("url", self.url.clone());
        row(
            "connections",
            format!(
                "{} open of {} ({})",
                count(self.connected),
                count(self.connections.into()),
                plural(self.threads.into(), "thread", "threads")
            ),
        );
        let (unit, answered) = match self.scenario {
            Scenario::Connect => ("handshakes", "completed"),
            Scenario::Idle => ("server messages", "received"),
            Scenario::Echo | Scenario::Latency => ("messages", "answered"),
            Scenario::Fanout => ("deliveries", "delivered"),
        };
        if matches!(self.scenario, Scenario::Echo | Scenario::Latency) {
            row("payload", format!("{} B", count(self.payload as u64)));
        }
        if let Some(d) = self.in_flight {
            row("in flight", format!("{} per connection", count(d.into())));
        }
        if let Some(r) = self.offered_rate {
            let what = match self.scenario {
                Scenario::Fanout => "publish rate",
                _ => "offered rate",
            };
            row(what, format!("{} msg/s", count(r)));
        }
        if let Some(f) = &self.fanout {
            row(
                "subscribers",
                format!(
                    "{} joined of {}",
                    count(f.joined),
                    count(f.subscribers.into())
                ),
            );
            row("published", count(f.published));
            row(
                "deliveries expected",
                format!(
                    "{} (published × joined): {} delivered, {} lost",
                    count(f.expected_deliveries),
                    count(f.delivered),
                    count(f.missing_deliveries)
                ),
            );
        }
        let window = match self.scenario {
            Scenario::Connect => "first attempt to last handshake",
            _ => "--duration",
        };
        row("window", format!("{:.3} s ({window})", self.window_s));
        // "late" is defined here, where it is printed.
        let late = format!(
            "+{} late: {answered} after the window, within the {} s drain; in the latencies, \
             not in the rates",
            count(self.late),
            DRAIN.as_secs()
        );
        let unanswered = match self.scenario {
            Scenario::Echo | Scenario::Latency => {
                format!(", {} never answered", count(self.unanswered))
            }
            _ => String::new(),
        };
        row(
            unit,
            format!(
                "{} {answered} within the window ({late}{unanswered})",
                count(self.completed)
            ),
        );
        row(
            &format!("{unit}/s"),
            format!("{} (within the window)", whole(self.per_second)),
        );
        if matches!(self.scenario, Scenario::Echo | Scenario::Latency) {
            row(
                "payload MB/s",
                format!("{} (one direction)", decimal(self.mb_per_second, 2)),
            );
        }
        if let Some(p) = &self.latency_us {
            let what = match self.scenario {
                Scenario::Connect => "handshake time",
                Scenario::Fanout => "delivery latency",
                _ => "round trip",
            };
            row(what, percentiles(p));
        }
        if let Some(p) = &self.send_lag_us {
            row(
                "send lag (tool)",
                format!(
                    "p50 {}  p99 {}  max {}",
                    latency(p.p50),
                    latency(p.p99),
                    latency(p.max)
                ),
            );
        }
        if self.pings > 0 {
            row(
                "pings",
                format!(
                    "{} received, {} answered",
                    count(self.pings),
                    count(self.pongs)
                ),
            );
        }
        if !self.raw {
            row("closed cleanly", count(self.closed_cleanly));
        }
        for (close, n) in &self.closed_by_server {
            row("closed by the server", format!("{} × {close}", count(*n)));
        }
        if self.failures.is_empty() {
            row("failures", "none".to_owned());
        }
        for (reason, n) in &self.failures {
            row("failure", format!("{} × {reason}", count(*n)));
        }
        row(
            "bytes read",
            match self.wire.per_message {
                Some(per) => format!(
                    "{} B from the server during the window and drain ({} B per {})",
                    count(self.wire.bytes_in),
                    whole(per),
                    match self.scenario {
                        Scenario::Connect => "handshake",
                        Scenario::Idle => "server message",
                        Scenario::Echo | Scenario::Latency => "message",
                        Scenario::Fanout => "delivery",
                    }
                ),
                None => format!("{} B", count(self.wire.bytes_in)),
            },
        );
        if let Some(d) = &self.deflate {
            row(
                "permessage-deflate",
                format!(
                    "offered; {} of {} connections negotiated it; {} messages arrived compressed",
                    count(d.negotiated),
                    count(self.connected),
                    count(d.compressed_messages)
                ),
            );
        }
        row("tool cpu", format!("{:.2} cores", self.cpu.tool_cores));
        if let Some(s) = self.cpu.server_cores {
            row("server cpu", format!("{s:.2} cores"));
        }
        if let Some(m) = &self.memory {
            row(
                "server rss",
                format!(
                    "{:.1} MiB before, {:.1} MiB connected, {:.1} MiB at end: {} B per connection",
                    mib(m.before),
                    mib(m.connected),
                    mib(m.end),
                    whole(m.per_connection)
                ),
            );
        }
        if let Some(b) = &self.baseline {
            b.rows(&mut row);
        }
        let width = rows
            .iter()
            .map(|(k, _)| k.chars().count())
            .max()
            .unwrap_or(0);
        let mut out = String::new();
        for (k, v) in rows {
            let _infallible = writeln!(out, "{k:<width$}  {v}");
        }
        out
    }
}

impl Baseline {
    fn rows(&self, row: &mut impl FnMut(&str, String)) {
        row(
            "baseline",
            format!(
                "the same frames written to {} by {}, no server",
                plural(self.connections, "plain TCP socket", "plain TCP sockets"),
                plural(self.writers.into(), "thread", "threads")
            ),
        );
        row(
            "baseline deliveries",
            format!(
                "{} within the window (+{} late, as above) of {} expected: {} lost, {} dropped",
                count(self.completed),
                count(self.late),
                count(self.expected_deliveries),
                count(self.missing_deliveries),
                plural(self.dropped_sockets, "socket", "sockets")
            ),
        );
        row("baseline deliveries/s", whole(self.per_second));
        if let Some(p) = &self.latency_us {
            row("baseline delivery latency", percentiles(p));
        }
        let cores = self
            .writer_cores
            .map_or("?".to_owned(), |c| format!("{c:.2}"));
        row(
            "baseline cpu",
            format!("writer {cores} cores, tool {:.2} cores", self.tool_cores),
        );
        for (reason, n) in &self.failures {
            row("baseline failure", format!("{} × {reason}", count(*n)));
        }
        let x = |r: Option<f64>, better| r.map_or("n/a".to_owned(), |r| ratio_text(r, better));
        row(
            "room / baseline deliveries/s",
            x(self.ratio.deliveries_per_second, Better::Higher),
        );
        row(
            "room / baseline p50 latency",
            x(self.ratio.p50, Better::Lower),
        );
        row(
            "room / baseline p99 latency",
            x(self.ratio.p99, Better::Lower),
        );
    }
}

/// `p50 812 µs  p90 1,203 µs  p99 12.4 ms  p99.9 …  max …  (min …, mean …, n 123,456)`.
fn percentiles(p: &Percentiles) -> String {
    format!(
        "p50 {}  p90 {}  p99 {}  p99.9 {}  max {}  (min {}, mean {}, n {})",
        latency(p.p50),
        latency(p.p90),
        latency(p.p99),
        latency(p.p999),
        latency(p.max),
        latency(p.min),
        latency(p.mean),
        count(p.count)
    )
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;
    use crate::args::BenchArgs;
    use crate::error::{ConnError, ServerClose};

    fn report(argv: &[&str], fill: impl FnOnce(&mut Stats, Instant)) -> Report {
        let plan = BenchArgs::parse_flags(argv).unwrap().plan().unwrap();
        let mut stats = Stats::new(plan.duration);
        fill(&mut stats, Instant::now());
        let samples = Samples {
            cpu: Cpu {
                tool_cores: 0.5,
                server_cores: None,
                server_seconds: None,
            },
            memory: None,
        };
        Report::new(&plan, &stats, samples)
    }

    #[test]
    fn rates_are_taken_over_the_duration_and_mb_counts_payload_only() {
        let r = report(&["echo", "-p", "1000", "--duration", "2s"], |s, t0| {
            let end = t0 + Duration::from_secs(2);
            for _ in 0..4000 {
                s.complete(t0, end, t0, Some(Duration::from_micros(50)));
            }
        });
        assert_eq!(r.per_second, 2000.0);
        assert_eq!(r.mb_per_second, 2.0);
        assert_eq!(r.timeline.len(), 20, "2 s in 100 ms steps");
        assert_eq!(
            r.timeline[0], 40_000.0,
            "4000 completions in the first 100 ms"
        );
    }

    #[test]
    fn the_table_lists_each_failure_reason_with_its_count() {
        let r = report(&["echo"], |s, _| {
            s.connected = 1;
            for _ in 0..3 {
                s.fail(&ConnError::Connect(std::io::ErrorKind::ConnectionRefused));
            }
            s.fail(&ConnError::ConnectTimeout);
        });
        let table = r.table();
        assert!(table.contains("3 × connect: connection refused"), "{table}");
        assert!(table.contains("1 × connect timed out"), "{table}");
        assert!(!table.contains("failures  none"), "{table}");
    }

    fn slow_consumer() -> ConnError {
        ConnError::Closed(ServerClose::Frame {
            code: Some(1008),
            reason: "slow consumer".to_owned(),
        })
    }

    #[test]
    fn a_clean_run_has_no_problems_and_says_ok_last() {
        let r = report(&["echo", "--duration", "1s"], |s, t0| {
            s.connected = 100;
            let end = t0 + Duration::from_secs(1);
            s.complete(t0, end, t0, Some(Duration::from_micros(50)));
        });
        assert!(r.problems.is_empty(), "{:?}", r.problems);
        assert_eq!(
            r.verdict(),
            "result: ok (every message answered, no connection failed)"
        );
    }

    #[test]
    fn connections_closed_by_the_server_are_a_problem_named_by_code_and_reason() {
        let r = report(&["echo", "-c", "110"], |s, _| {
            s.connected = 110;
            for _ in 0..102 {
                s.fail(&slow_consumer());
            }
            s.fail(&ConnError::Eof);
            s.fail(&ConnError::Connect(std::io::ErrorKind::ConnectionRefused));
        });
        assert_eq!(
            r.problems,
            [
                r#"102 connections closed by the server: 1008 "slow consumer""#,
                "1 connection closed by the server: without a close frame (EOF)",
                "1 connection failed: connect: connection refused",
            ]
        );
        assert_eq!(
            r.verdict(),
            format!("result: FAILED: {}", r.problems.join("; "))
        );
        let table = r.table();
        assert!(
            table.contains(r#"closed by the server  102 × 1008 "slow consumer""#),
            "{table}"
        );
        let json: serde_json::Value = serde_json::from_str(&r.to_json()).unwrap();
        assert_eq!(json["closed_by_server"][r#"1008 "slow consumer""#], 102);
        assert_eq!(json["problems"].as_array().unwrap().len(), 3);
    }

    #[test]
    fn lost_deliveries_and_unanswered_messages_are_problems() {
        let r = report(&["fanout", "-c", "10"], |s, _| {
            s.connected = 11;
            s.joined = 10;
            s.published = 5;
        });
        assert_eq!(r.problems, ["50 of 50 deliveries lost"]);
        let r = report(&["echo"], |s, _| {
            s.connected = 1;
            s.unanswered = 7;
        });
        assert_eq!(
            r.problems,
            ["7 messages never answered (not even within the 2 s drain)"]
        );
    }

    #[test]
    fn the_table_writes_figures_for_people() {
        let r = report(&["latency", "--duration", "2s"], |s, t0| {
            s.connected = 100;
            let end = t0 + Duration::from_secs(2);
            for i in 0..24_690u64 {
                let rtt = if i % 50 == 0 { 25_000 } else { 850 };
                s.complete(t0, end, t0, Some(Duration::from_micros(rtt)));
            }
            s.complete(t0, end, end, Some(Duration::from_micros(900)));
        });
        let table = r.table();
        for expected in [
            "offered rate",
            "10,000 msg/s",
            "24,690 answered within the window",
            "12,345 (within the window)",
            // "late" is defined where it is printed.
            "+1 late: answered after the window, within the 2 s drain",
            "p50 850 µs",
            "p99 25.0 ms",
            "n 24,691",
        ] {
            assert!(
                table.contains(expected),
                "{expected:?} missing from\n{table}"
            );
        }
    }

    #[test]
    fn connect_rates_are_taken_up_to_the_last_handshake() {
        let r = report(&["connect", "-c", "10"], |s, t0| {
            let far = t0 + Duration::from_secs(60);
            for i in 1..=10u64 {
                let at = t0 + Duration::from_millis(50 * i);
                s.complete(t0, far, at, Some(Duration::from_micros(100)));
            }
        });
        assert_eq!(r.completed, 10);
        assert_eq!(r.window_s, 0.5);
        assert_eq!(r.per_second, 20.0);
        assert!(r.table().contains("handshakes/s"));
    }
}
