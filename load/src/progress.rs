//! The progress bar on stderr: a terminal only, never with `--quiet`.
//!
//! Owns what the user watches while a run is under way: first the open phase (connections
//! opened, and in `fanout` subscribers joined, out of all of them: joining a large room takes a
//! while and must not look like a hang), then the measurement, whose clock runs from 0 to
//! exactly `--duration` (the bar's own elapsed time would include the open phase), then the
//! drain. Never counts anything itself: it shows the runner's progress counter.

use std::time::Instant;

use indicatif::{ProgressBar, ProgressStyle};

use super::args::{Plan, Scenario, DRAIN};
use super::figures::{count, whole};

/// The bar of one pass through the phases (the `fanout` room phase and its baseline phase each
/// get one).
pub(crate) struct Progress {
    bar: ProgressBar,
    scenario: Scenario,
    /// `--duration` in seconds: the measurement's length, or `connect`'s handshake deadline.
    duration_s: f64,
}

impl Progress {
    /// A bar for `plan`, or `None` when stderr is not a terminal or `quiet`.
    pub fn new(plan: &Plan, quiet: bool) -> Option<Progress> {
        use std::io::IsTerminal;
        if quiet || !std::io::stderr().is_terminal() {
            return None;
        }
        let bar = ProgressBar::new(u64::from(plan.connections));
        set_template(&bar, "{prefix} {msg} [{bar:40}] {pos}/{len}");
        bar.set_prefix(if plan.baseline_phase {
            "fanout baseline".to_owned()
        } else {
            plan.scenario.to_string()
        });
        bar.set_message(match plan.scenario {
            _ if plan.baseline_phase => "connecting to the baseline writer",
            Scenario::Fanout => "opening and joining the room",
            Scenario::Connect => "handshakes",
            Scenario::Echo | Scenario::Latency | Scenario::Idle => "opening connections",
        });
        Some(Progress {
            bar,
            scenario: plan.scenario,
            duration_s: plan.duration.as_secs_f64(),
        })
    }

    /// The open phase: `done` connections are open (and joined), `started` is when it began.
    pub fn opening(&self, done: u64, started: Instant) {
        self.bar.set_position(done);
        if self.scenario == Scenario::Connect {
            let elapsed = started.elapsed().as_secs_f64().min(self.duration_s);
            self.bar.set_message(format!(
                "handshakes, {elapsed:.1} s of the {:.1} s deadline",
                self.duration_s
            ));
        }
    }

    /// The open phase is over: from now on the bar is the measurement's clock, a new bar so that
    /// no frame mixes the two (`connect` has no more to show).
    pub fn start_measuring(&mut self) {
        self.bar.finish_and_clear();
        if self.scenario == Scenario::Connect {
            return;
        }
        let prefix = self.bar.prefix();
        self.bar = ProgressBar::new((self.duration_s * 1000.0) as u64);
        set_template(&self.bar, "{prefix} [{bar:40}] {msg}");
        self.bar.set_prefix(prefix);
        self.bar
            .set_message(format!("0.0 s / {:.1} s  starting", self.duration_s));
    }

    /// The measurement: `done` completions since it `started`. The clock stops at
    /// `--duration`; the drain that follows says so instead of running the clock on.
    pub fn measuring(&self, done: u64, started: Instant) {
        if self.scenario == Scenario::Connect {
            return;
        }
        let elapsed = started.elapsed().as_secs_f64();
        let unit = match self.scenario {
            Scenario::Fanout => "deliveries",
            Scenario::Idle => "server messages",
            _ => "messages",
        };
        let clock = elapsed.min(self.duration_s);
        self.bar.set_position((clock * 1000.0) as u64);
        let rate = done as f64 / clock.max(1e-3);
        let state = if elapsed < self.duration_s {
            format!("{} {unit}, {}/s", count(done), whole(rate))
        } else {
            format!(
                "{} {unit}; draining: waiting up to {} s for late ones",
                count(done),
                DRAIN.as_secs()
            )
        };
        self.bar
            .set_message(format!("{clock:.1} s / {:.1} s  {state}", self.duration_s));
    }

    /// Removes the bar before the report is printed.
    pub fn finish(self) {
        self.bar.finish_and_clear();
    }
}

fn set_template(bar: &ProgressBar, template: &str) {
    if let Ok(style) = ProgressStyle::with_template(template) {
        bar.set_style(style.progress_chars("=> "));
    }
}
