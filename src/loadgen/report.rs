//! The result of a run, and its two renderings: a table for people, JSON for machines.
//!
//! Owns the definitions of the reported figures (what "MB/s" means, over which window a rate is
//! taken). Never measures: it only derives figures from merged [`Stats`] and the caller's samples.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

use super::args::{Plan, Scenario};
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
}

/// What the caller sampled around the measurement.
#[derive(Debug, Clone, Copy)]
pub struct Samples {
    /// CPU use over the window.
    pub cpu: Cpu,
    /// Server memory, when sampled.
    pub memory: Option<Memory>,
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
    /// Failed subscriber sockets by reason.
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
            failures: stats.failures.clone(),
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
    /// `fanout` without `--no-baseline`: the baseline phase and the ratios to it.
    pub baseline: Option<Baseline>,
    /// Failed connections by reason.
    pub failures: BTreeMap<String, u64>,
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
        Report {
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
            baseline: None,
            failures: stats.failures.clone(),
            closed_cleanly: stats.closed_cleanly,
            pings: stats.pings,
            pongs: stats.pongs,
            cpu: samples.cpu,
            memory: samples.memory,
            timeline,
            timeline_step_ms: TICK.as_millis() as u64,
            latency_curve: stats.latency_curve(),
        }
    }

    /// The report as pretty JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a report always serializes")
    }

    /// The report as an aligned two-column table.
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
                "{} open of {} ({} threads)",
                self.connected, self.connections, self.threads
            ),
        );
        let unit = match self.scenario {
            Scenario::Connect => "handshakes",
            Scenario::Idle => "server messages",
            Scenario::Echo | Scenario::Latency => "messages",
            Scenario::Fanout => "deliveries",
        };
        if matches!(self.scenario, Scenario::Echo | Scenario::Latency) {
            row("payload", format!("{} B", self.payload));
        }
        if let Some(d) = self.in_flight {
            row("in flight", format!("{d} per connection"));
        }
        if let Some(r) = self.offered_rate {
            row("offered", format!("{r} msg/s"));
        }
        if let Some(f) = &self.fanout {
            row(
                "subscribers",
                format!("{} joined of {}", f.joined, f.subscribers),
            );
            row("published", f.published.to_string());
            row(
                "expected deliveries",
                format!(
                    "{} ({} delivered, {} missing)",
                    f.expected_deliveries, f.delivered, f.missing_deliveries
                ),
            );
        }
        row("window", format!("{:.3} s", self.window_s));
        if self.fanout.is_some() {
            row(unit, format!("{} (+{} late)", self.completed, self.late));
        } else {
            row(
                unit,
                format!(
                    "{} (+{} late, {} unanswered)",
                    self.completed, self.late, self.unanswered
                ),
            );
        }
        row(&format!("{unit}/s"), format!("{:.0}", self.per_second));
        if matches!(self.scenario, Scenario::Echo | Scenario::Latency) {
            row("payload MB/s", format!("{:.2}", self.mb_per_second));
        }
        if let Some(p) = &self.latency_us {
            let what = match self.scenario {
                Scenario::Connect => "handshake µs",
                Scenario::Fanout => "delivery µs",
                _ => "round trip µs",
            };
            row(
                what,
                format!(
                    "p50 {:.1}  p90 {:.1}  p99 {:.1}  p99.9 {:.1}  max {:.1}  (min {:.1}, mean {:.1}, n {})",
                    p.p50, p.p90, p.p99, p.p999, p.max, p.min, p.mean, p.count
                ),
            );
        }
        if let Some(p) = &self.send_lag_us {
            row(
                "send lag µs (tool)",
                format!("p50 {:.1}  p99 {:.1}  max {:.1}", p.p50, p.p99, p.max),
            );
        }
        if self.pings > 0 {
            row(
                "pings",
                format!("{} received, {} answered", self.pings, self.pongs),
            );
        }
        if !self.raw {
            row("closed cleanly", self.closed_cleanly.to_string());
        }
        if self.failures.is_empty() {
            row("failures", "none".to_owned());
        }
        for (reason, n) in &self.failures {
            row("failure", format!("{n} × {reason}"));
        }
        row("tool cpu", format!("{:.2} cores", self.cpu.tool_cores));
        if let Some(s) = self.cpu.server_cores {
            row("server cpu", format!("{s:.2} cores"));
        }
        if let Some(m) = &self.memory {
            row(
                "server rss",
                format!(
                    "{:.1} MiB before, {:.1} MiB connected, {:.1} MiB at end: {:.0} B per connection",
                    mib(m.before),
                    mib(m.connected),
                    mib(m.end),
                    m.per_connection
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
                "the same frames written to {} plain TCP sockets by {} thread(s), no server",
                self.connections, self.writers
            ),
        );
        row(
            "baseline deliveries",
            format!(
                "{} (+{} late) of {} expected ({} missing, {} sockets dropped)",
                self.completed,
                self.late,
                self.expected_deliveries,
                self.missing_deliveries,
                self.dropped_sockets
            ),
        );
        row("baseline deliveries/s", format!("{:.0}", self.per_second));
        if let Some(p) = &self.latency_us {
            row(
                "baseline delivery µs",
                format!(
                    "p50 {:.1}  p90 {:.1}  p99 {:.1}  p99.9 {:.1}  max {:.1}  (n {})",
                    p.p50, p.p90, p.p99, p.p999, p.max, p.count
                ),
            );
        }
        let cores = self
            .writer_cores
            .map_or("?".to_owned(), |c| format!("{c:.2}"));
        row(
            "baseline cpu",
            format!("writer {cores} cores, tool {:.2} cores", self.tool_cores),
        );
        for (reason, n) in &self.failures {
            row("baseline failure", format!("{n} × {reason}"));
        }
        let x = |r: Option<f64>| r.map_or("n/a".to_owned(), |r| format!("{r:.2}×"));
        row(
            "room / baseline",
            format!(
                "deliveries/s {}  p50 {}  p99 {}",
                x(self.ratio.deliveries_per_second),
                x(self.ratio.p50),
                x(self.ratio.p99)
            ),
        );
    }
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;
    use crate::loadgen::args::BenchArgs;

    fn report(argv: &[&str], fill: impl FnOnce(&mut Stats, Instant)) -> Report {
        let plan = BenchArgs::try_parse_from(argv).unwrap().plan().unwrap();
        let mut stats = Stats::new(plan.duration);
        fill(&mut stats, Instant::now());
        let samples = Samples {
            cpu: Cpu {
                tool_cores: 0.5,
                server_cores: None,
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
                s.fail("connect: connection refused");
            }
            s.fail("connect timed out");
        });
        let table = r.table();
        assert!(table.contains("3 × connect: connection refused"), "{table}");
        assert!(table.contains("1 × connect timed out"), "{table}");
        assert!(!table.contains("failures  none"), "{table}");
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
