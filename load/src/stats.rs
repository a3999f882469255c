//! What a load thread counts while it runs, and merging the threads' counts into one.
//!
//! Owns the HDR histogram of round trips (nanoseconds), the completion timeline, and the
//! counters. Everything is sized before the measurement starts: recording a message is an
//! array increment and a histogram increment, never an allocation (failures, which end a
//! connection, are the one exception).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde::Serialize;

use super::error::{ConnError, ServerClose};

fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, HIGHEST_NS, 3).expect("static histogram bounds are valid")
}

/// Width of one timeline bucket.
pub const TICK: Duration = Duration::from_millis(100);

/// The largest round trip the histogram resolves (longer ones are clamped to it): 10 minutes.
const HIGHEST_NS: u64 = 600_000_000_000;

/// Counts kept by one load thread; merged at the end.
#[derive(Debug, Clone)]
pub struct Stats {
    /// Round trips (or handshake times in `connect`) in nanoseconds, 3 significant digits.
    pub latency: Histogram<u64>,
    /// `latency` only: how late the tool noticed each scheduled send, in nanoseconds. Its own
    /// lateness is part of every round trip, so this bounds what the tool adds to them.
    pub send_lag: Histogram<u64>,
    /// Messages (or handshakes) completed before the deadline.
    pub completed: u64,
    /// Messages answered after the deadline, while draining (in the histogram, not in rates).
    pub late: u64,
    /// Messages never answered within the drain time.
    pub unanswered: u64,
    /// Completions per [`TICK`] since the start of the measurement.
    pub timeline: Vec<u64>,
    /// Connections that completed the upgrade (or TCP connect in `--raw`).
    pub connected: u64,
    /// Connections that finished with a close handshake answered by the server.
    pub closed_cleanly: u64,
    /// Pings received from the server.
    pub pings: u64,
    /// Pongs sent back.
    pub pongs: u64,
    /// When the last handshake completed, relative to the start (`connect`).
    pub last_completion: Duration,
    /// Failed connections by reason, except those the server closed.
    pub failures: BTreeMap<String, u64>,
    /// Connections the server closed while the tool still needed them, by how it closed them
    /// (code and reason as sent, or EOF).
    pub closed_by_server: BTreeMap<ServerClose, u64>,
    /// `fanout`: messages the publisher sent before the deadline.
    pub published: u64,
    /// `fanout`: subscribers whose join the server accepted.
    pub joined: u64,
    /// `--deflate`: connections whose server accepted permessage-deflate.
    pub deflate_negotiated: u64,
    /// Messages that arrived compressed (and were inflated) during the measurement.
    pub compressed_messages: u64,
    /// Bytes read from the server during the measurement (drain included): frame headers and
    /// payloads as they were on the wire, compressed or not.
    pub wire_bytes_in: u64,
}

impl Stats {
    /// Empty counts with a timeline long enough for `span` (measurement plus drain).
    pub fn new(span: Duration) -> Stats {
        let ticks = (span.as_nanos() / TICK.as_nanos()) as usize + 2;
        Stats {
            latency: histogram(),
            send_lag: histogram(),
            completed: 0,
            late: 0,
            unanswered: 0,
            timeline: vec![0; ticks],
            connected: 0,
            closed_cleanly: 0,
            pings: 0,
            pongs: 0,
            last_completion: Duration::ZERO,
            failures: BTreeMap::new(),
            closed_by_server: BTreeMap::new(),
            published: 0,
            joined: 0,
            deflate_negotiated: 0,
            compressed_messages: 0,
            wire_bytes_in: 0,
        }
    }

    /// Records `count` completions at `now`, each with the round trip `rtt` when given.
    /// `start` is the thread's measurement start and `deadline` its end.
    #[inline]
    pub fn complete(
        &mut self,
        start: Instant,
        deadline: Instant,
        now: Instant,
        rtt: Option<Duration>,
    ) {
        if let Some(rtt) = rtt {
            self.latency
                .saturating_record(u64::try_from(rtt.as_nanos()).unwrap_or(u64::MAX).max(1));
        }
        if now >= deadline {
            self.late += 1;
            return;
        }
        self.completed += 1;
        let since = now.saturating_duration_since(start);
        self.last_completion = self.last_completion.max(since);
        let tick = (since.as_nanos() / TICK.as_nanos()) as usize;
        if let Some(slot) = self.timeline.get_mut(tick) {
            *slot += 1;
        }
    }

    /// Records how late a scheduled send was noticed.
    #[inline]
    pub fn lag(&mut self, late: Duration) {
        self.send_lag
            .saturating_record(u64::try_from(late.as_nanos()).unwrap_or(u64::MAX).max(1));
    }

    /// Counts one failed connection: under how the server closed it, or under its reason.
    pub fn fail(&mut self, error: &ConnError) {
        match error.server_close() {
            Some(close) => *self.closed_by_server.entry(close).or_insert(0) += 1,
            None => *self.failures.entry(error.to_string()).or_insert(0) += 1,
        }
    }

    /// Every failure by its full reason, closes by the server included (`closed by the server:
    /// 1008 "slow consumer"`): what to say when not one connection succeeded.
    pub fn all_failures(&self) -> BTreeMap<String, u64> {
        let mut all = self.failures.clone();
        for (close, n) in &self.closed_by_server {
            *all.entry(format!("closed by the server: {close}"))
                .or_insert(0) += n;
        }
        all
    }

    /// Adds another thread's counts to these.
    pub fn merge(&mut self, other: &Stats) {
        self.latency
            .add(&other.latency)
            .expect("histograms share bounds");
        self.send_lag
            .add(&other.send_lag)
            .expect("histograms share bounds");
        self.completed += other.completed;
        self.late += other.late;
        self.unanswered += other.unanswered;
        if self.timeline.len() < other.timeline.len() {
            self.timeline.resize(other.timeline.len(), 0);
        }
        for (mine, theirs) in self.timeline.iter_mut().zip(&other.timeline) {
            *mine += theirs;
        }
        self.connected += other.connected;
        self.closed_cleanly += other.closed_cleanly;
        self.pings += other.pings;
        self.pongs += other.pongs;
        self.published += other.published;
        self.joined += other.joined;
        self.deflate_negotiated += other.deflate_negotiated;
        self.compressed_messages += other.compressed_messages;
        self.wire_bytes_in += other.wire_bytes_in;
        self.last_completion = self.last_completion.max(other.last_completion);
        for (reason, n) in &other.failures {
            *self.failures.entry(reason.clone()).or_insert(0) += n;
        }
        for (close, n) in &other.closed_by_server {
            *self.closed_by_server.entry(close.clone()).or_insert(0) += n;
        }
    }

    /// The round-trip summary in microseconds, `None` when nothing was recorded.
    pub fn percentiles(&self) -> Option<Percentiles> {
        Percentiles::of(&self.latency)
    }

    /// The send-lag summary in microseconds, `None` outside `latency`.
    pub fn send_lag_percentiles(&self) -> Option<Percentiles> {
        Percentiles::of(&self.send_lag)
    }

    /// `(percentile, microseconds)` points for a latency distribution plot, up to 99.999 %.
    pub fn latency_curve(&self) -> Vec<(f64, f64)> {
        if self.latency.is_empty() {
            return Vec::new();
        }
        // Evenly spaced in "nines": q = 1 - 10^(-x) for x in 0..=5 by 0.05.
        (0..=100)
            .map(|i| {
                let nines = f64::from(i) * 0.05;
                let q = 1.0 - 10f64.powf(-nines);
                (q * 100.0, self.latency.value_at_quantile(q) as f64 / 1000.0)
            })
            .collect()
    }
}

/// Round-trip percentiles in microseconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Percentiles {
    /// Samples recorded.
    pub count: u64,
    /// Smallest.
    pub min: f64,
    /// Arithmetic mean.
    pub mean: f64,
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// 99.9th percentile.
    pub p999: f64,
    /// Largest.
    pub max: f64,
}

impl Percentiles {
    /// The summary of a nanosecond histogram, in microseconds; `None` when it is empty.
    pub fn of(h: &Histogram<u64>) -> Option<Percentiles> {
        if h.is_empty() {
            return None;
        }
        let us = |ns: u64| ns as f64 / 1000.0;
        Some(Percentiles {
            count: h.len(),
            min: us(h.min()),
            mean: h.mean() / 1000.0,
            p50: us(h.value_at_quantile(0.50)),
            p90: us(h.value_at_quantile(0.90)),
            p99: us(h.value_at_quantile(0.99)),
            p999: us(h.value_at_quantile(0.999)),
            max: us(h.max()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn completions_before_the_deadline_count_and_later_ones_are_late() {
        let start = Instant::now();
        let deadline = start + Duration::from_secs(1);
        let mut s = Stats::new(Duration::from_secs(1));
        s.complete(
            start,
            deadline,
            start + Duration::from_millis(150),
            Some(Duration::from_micros(20)),
        );
        s.complete(
            start,
            deadline,
            deadline + Duration::from_millis(1),
            Some(Duration::from_micros(40)),
        );
        assert_eq!(s.completed, 1);
        assert_eq!(s.late, 1);
        assert_eq!(s.timeline[1], 1);
        assert_eq!(
            s.latency.len(),
            2,
            "late answers still count as round trips"
        );
    }

    #[test]
    fn merging_adds_counts_timelines_histograms_and_failures() {
        let start = Instant::now();
        let deadline = start + Duration::from_secs(1);
        let mut a = Stats::new(Duration::from_secs(1));
        let mut b = Stats::new(Duration::from_secs(1));
        a.complete(start, deadline, start, Some(Duration::from_micros(10)));
        b.complete(start, deadline, start, Some(Duration::from_micros(30)));
        let slow = ConnError::Closed(ServerClose::Frame {
            code: Some(1008),
            reason: "slow consumer".to_owned(),
        });
        a.fail(&ConnError::ConnectTimeout);
        b.fail(&ConnError::ConnectTimeout);
        b.fail(&ConnError::Backlog);
        a.fail(&slow);
        b.fail(&slow);
        b.fail(&ConnError::Eof);
        a.merge(&b);
        assert_eq!(a.completed, 2);
        assert_eq!(a.timeline[0], 2);
        assert_eq!(a.latency.len(), 2);
        assert_eq!(a.failures["connect timed out"], 2);
        assert_eq!(a.failures.len(), 2, "server closes are kept apart");
        assert_eq!(a.closed_by_server[&ServerClose::Eof], 1);
        let slow = ServerClose::Frame {
            code: Some(1008),
            reason: "slow consumer".to_owned(),
        };
        assert_eq!(a.closed_by_server[&slow], 2);
        assert_eq!(
            a.all_failures()[r#"closed by the server: 1008 "slow consumer""#],
            2
        );
    }

    #[test]
    fn percentiles_are_ordered_and_bounded_by_min_and_max() {
        let start = Instant::now();
        let deadline = start + Duration::from_secs(1);
        let mut s = Stats::new(Duration::from_secs(1));
        for us in 1..=10_000u64 {
            s.complete(start, deadline, start, Some(Duration::from_micros(us)));
        }
        let p = s.percentiles().unwrap();
        assert!(p.min <= p.p50 && p.p50 <= p.p90 && p.p90 <= p.p99);
        assert!(p.p99 <= p.p999 && p.p999 <= p.max);
        // 3 significant digits: within 0.1 % of the exact value.
        assert!((p.p50 - 5000.0).abs() <= 5.0, "{}", p.p50);
        assert!((p.p99 - 9900.0).abs() <= 10.0, "{}", p.p99);
        let curve = s.latency_curve();
        assert!(curve
            .windows(2)
            .all(|w| w[0].0 < w[1].0 && w[0].1 <= w[1].1));
    }

    #[test]
    fn an_empty_histogram_has_no_percentiles() {
        assert_eq!(Stats::new(Duration::from_secs(1)).percentiles(), None);
    }
}
