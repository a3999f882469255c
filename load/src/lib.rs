//! `ringcast-bench`: the load tool of the ringcast workspace (issues 6 and 10).
//!
//! A crate of its own beside the server, so that a program embedding the server pulls none of
//! the tool's dependencies (plotters, indicatif, hdrhistogram, serde_json). It takes from
//! `ringcast` only the protocol pieces a client needs: the frame header codec, masking, close
//! payloads, the client half of the opening handshake, and the `/ws` envelope renderer (for the
//! `fanout` baseline).
//!
//! Owns generating load against a WebSocket (or raw TCP echo) server and reporting what it saw.
//! Never runs inside the server, never touches the server's state, never loads a target outside
//! loopback without `--allow-remote`, and never runs unbounded: every scenario ends after
//! `--duration` (cap 600 s) plus a fixed drain and close time.
//!
//! Built so that it is not the bottleneck on one core: each load thread runs its own
//! current-thread event loop; every data frame is encoded and masked once per thread and written
//! from a pre-built burst (pipelined: one write carries every frame that is due); all connections
//! of a thread share one read buffer; server frames are decoded with the crate's own header
//! decoder and their payloads skipped, not copied.
//!
//! A run ends in a verdict: the report's last line is `result: ok (…)`, or `result: FAILED: …`
//! naming what went wrong (connections the server closed, with the close code and reason it
//! sent; other failed connections; lost messages or deliveries), and the binary exits non-zero.
//!
//! Map:
//! - [`args`]: flags, defaults, hard caps → [`Plan`].
//! - [`target`]: `ws://` URL, resolution, the loopback rule.
//! - [`codec`]: pre-encoded masked frames out, server frames (or raw echoed bytes) in.
//! - [`content`]: `--json-payload`'s realistic JSON bodies.
//! - [`deflate`]: `--deflate`: the permessage-deflate offer, the check of the server's answer,
//!   inflating what arrives compressed (the tool sends plain).
//! - `conn`: one connection's I/O: open (TCP, then `ringcast::proto::handshake`'s client
//!   upgrade), pump, hold, close.
//! - `runner`: threads and phases (open → measure → close).
//! - `baseline`: `fanout`'s baseline phase and its helper process, the baseline writer.
//! - [`stats`]: histogram, timeline, counters; [`report`]: table, JSON and the verdict;
//!   [`figures`]: how numbers are written for people; [`plot`]: SVG.
//! - `progress`: the progress bar (opening and joining, then the measurement's clock).
//! - [`sys`]: `/proc` readers (RSS, CPU time, open-file limit).
//!
//! How counting works, per scenario:
//! - `echo`, `latency`: a message completes when its echo (a whole data message of the same
//!   length) arrives; its round trip runs from its send time (`echo`: when it was queued;
//!   `latency`: when it was *scheduled*, so a stalled server shows its stalls).
//! - `--raw`: the echo is the masked frame itself, so every frame-length of bytes read back
//!   completes one message, whatever the read boundaries.
//! - `connect`: a handshake completes at the 101; its time runs from the TCP connect call.
//! - `idle`: the server's data messages and pings are counted; RSS is sampled around the hold.
//!
//! - `fanout` (ringcast `/ws` only): connection 0 publishes, connections 1..=C subscribe. In the
//!   open phase each subscriber joins `--room` with `"presence":false` and waits for the `ok`
//!   reply (unmeasured; no `joined` events, so opening C subscribers costs O(C) server writes).
//!   In the measure phase the publisher sends `{"t":<unix µs>}` payloads at `--rate` with
//!   `"echo":false`; each subscriber scans every message's payload for `"t":` without copying
//!   it and records now − t (same host, same clock) as the delivery latency. A delivery
//!   completes at its read; subscribers keep reading for [`args::DRAIN`] after the deadline, so
//!   late deliveries count (as `late`). Expected deliveries are published × joined subscribers;
//!   the difference is reported as missing.
//! - `fanout` baseline (after the room phase, unless `--no-baseline`): a helper process (this
//!   program again, see `baseline`) accepts C plain TCP connections from C subscribers and, on
//!   the same schedule, writes each message, rendered as the server renders it, to every socket
//!   with plain blocking `write`s (a backlog coalesced into one write per socket): no server,
//!   no rooms, no WebSocket machine. Its `t` is the message's due time. The subscribers read
//!   and time exactly as above. The report gives both phases and room ÷ baseline for deliveries/s,
//!   p50 and p99, all from the same run.

pub mod args;
mod baseline;
pub mod codec;
mod conn;
pub mod content;
pub mod deflate;
pub mod error;
pub mod figures;
pub mod plot;
mod progress;
pub mod report;
mod runner;
pub mod stats;
pub mod sys;
pub mod target;

use std::io::Write;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub use args::{BenchArgs, Plan, Scenario};
pub use error::{ConnError, LoadError, ServerClose};
pub use report::Report;

use progress::Progress;
use report::{Cpu, Memory, Samples};

/// Runs the scenario `args` describes, prints the table (or JSON with `--json`) on stdout,
/// writes `--plot` if asked, then prints the verdict ([`Report::verdict`]) as the last line: on
/// stdout after the table, on stderr after JSON (only when the run failed, so stdout stays one
/// JSON document). Returns the report; the caller exits non-zero when
/// [`Report::problems`] is not empty. `None` when this process ran as the `fanout` baseline
/// writer of another one (`--baseline-writer`, internal), which reports through its own line
/// protocol instead.
pub fn run(args: BenchArgs) -> Result<Option<Report>, LoadError> {
    if args.baseline_writer {
        baseline::writer::serve(&args)?;
        return Ok(None);
    }
    let report = measure(&args)?;
    let out = if args.json {
        report.to_json()
    } else {
        report.table()
    };
    print(&mut std::io::stdout().lock(), "stdout", &out)?;
    if let Some(path) = &args.plot {
        plot::draw(&report, path)?;
    }
    if !args.json {
        print(&mut std::io::stdout().lock(), "stdout", &report.verdict())?;
    } else if !report.problems.is_empty() {
        print(&mut std::io::stderr().lock(), "stderr", &report.verdict())?;
    }
    Ok(Some(report))
}

fn print(out: &mut impl Write, name: &str, text: &str) -> Result<(), LoadError> {
    writeln!(out, "{text}")
        .and_then(|()| out.flush())
        .map_err(|e| LoadError::Output {
            path: name.to_owned(),
            reason: e.to_string(),
        })
}

/// Runs the scenario and returns the report without printing it (a progress bar still shows on a
/// terminal unless `--quiet`). `fanout` runs its baseline phase after the room phase unless
/// `--no-baseline`.
pub fn measure(args: &BenchArgs) -> Result<Report, LoadError> {
    let plan = Arc::new(args.plan()?);
    let room = drive(&plan, plan.server_pid, args.quiet, |_| Ok(()))?;
    let mut report = Report::new(&plan, &room.stats, room.samples);
    if let Some(b) = &plan.baseline {
        let mut writer = baseline::Writer::spawn(&plan, b)?;
        let bplan = Arc::new(plan.for_baseline(writer.addr));
        let measured = drive(&bplan, Some(writer.pid()), args.quiet, |opened| {
            writer.ready(opened)?;
            writer.go()
        })?;
        let written = writer.finish()?;
        let baseline = report::Baseline::new(
            &report,
            b.writers,
            &measured.stats,
            &written,
            measured.samples.cpu,
        );
        report.set_baseline(baseline);
    }
    Ok(report)
}

/// What one pass through the phases measured.
struct Measured {
    stats: stats::Stats,
    samples: Samples,
}

/// Runs `plan` through its phases (open, measure, close), sampling CPU time (the tool's, and
/// `pid`'s) and `pid`'s memory around them. `before_measure(opened)` runs once every connection
/// is open, just before the measurement starts.
fn drive(
    plan: &Arc<Plan>,
    pid: Option<u32>,
    quiet: bool,
    before_measure: impl FnOnce(u64) -> Result<(), LoadError>,
) -> Result<Measured, LoadError> {
    let rss = |pid: Option<u32>| pid.map(sys::rss_bytes).transpose();
    let cpu_now = || -> Result<(Instant, Duration, Option<Duration>), LoadError> {
        let server = pid.map(|p| sys::cpu_time(Some(p))).transpose()?;
        Ok((Instant::now(), sys::cpu_time(None)?, server))
    };
    let rss_before = rss(pid)?;
    let mut cpu_start = cpu_now()?;

    let mut bar = Progress::new(plan, quiet);
    let run = runner::Run::start(plan)?;
    // Connections opened (and joined, in `fanout`) during the open phase; completions during
    // the measurement.
    let progress = Arc::clone(&run.shared.progress);
    let opening = Instant::now();
    let show_opening = || {
        if let Some(bar) = &bar {
            bar.opening(progress.load(Ordering::Relaxed), opening);
        }
    };
    run.wait_phase(0, &show_opening);
    // The final count, which the last tick before the phase ended may have missed.
    show_opening();
    let rss_connected = rss(pid)?;
    if let Err(e) = before_measure(run.shared.opened.load(Ordering::Relaxed)) {
        run.release(0);
        run.release(1);
        let _partial = run.finish();
        return Err(e);
    }
    if plan.scenario != Scenario::Connect {
        progress.store(0, Ordering::Relaxed);
        cpu_start = cpu_now()?;
    }
    let cpu_end_connect = cpu_now()?;
    if let Some(bar) = &mut bar {
        bar.start_measuring();
    }
    run.release(0);

    let measuring = Instant::now();
    run.wait_phase(1, || {
        if let Some(bar) = &bar {
            bar.measuring(progress.load(Ordering::Relaxed), measuring);
        }
    });
    let rss_end = rss(pid)?;
    let cpu_end = match plan.scenario {
        Scenario::Connect => cpu_end_connect,
        _ => cpu_now()?,
    };
    run.release(1);
    if let Some(bar) = bar {
        bar.finish();
    }
    let stats = run.finish()?;
    if stats.connected == 0 {
        return Err(LoadError::NoConnection(stats.all_failures()));
    }

    let wall = cpu_end
        .0
        .duration_since(cpu_start.0)
        .as_secs_f64()
        .max(1e-9);
    let cores = |a: Duration, b: Duration| b.saturating_sub(a).as_secs_f64() / wall;
    let cpu = Cpu {
        tool_cores: cores(cpu_start.1, cpu_end.1),
        server_cores: cpu_start.2.zip(cpu_end.2).map(|(a, b)| cores(a, b)),
        server_seconds: cpu_start
            .2
            .zip(cpu_end.2)
            .map(|(a, b)| b.saturating_sub(a).as_secs_f64()),
    };
    let memory = match (rss_before, rss_connected, rss_end) {
        (Some(before), Some(connected), Some(end)) => Some(Memory {
            before,
            connected,
            end,
            per_connection: (end as f64 - before as f64) / stats.connected as f64,
        }),
        _ => None,
    };
    let samples = Samples { cpu, memory };
    Ok(Measured { stats, samples })
}
