//! Load threads and the phases of a run.
//!
//! Owns the threads (one tokio current-thread runtime each, plain epoll: the load tool must not
//! compete with the io_uring server it measures for the same kernel paths), the split of
//! connections among them, and the three phases every scenario goes through:
//!
//! 1. **open**: connect and upgrade, spread over `--ramp-up` (this *is* the measurement in
//!    `connect`);
//! 2. **measure**: pump (`echo`, `latency`), hold (`idle`), or keep the connections (`connect`);
//! 3. **close**: close handshakes, bounded by a timeout.
//!
//! Threads park after phases 1 and 2 until the caller, having sampled the clock, CPU time and
//! the server's memory, releases them. Never measures anything itself: counting
//! is [`super::stats`], per-connection I/O is [`super::conn`].
//!
//! Invariant: every load thread arrives at both phase ends exactly once, even when it fails or
//! panics ([`PhaseGuard`] arrives at the ones it still owes when dropped), so the caller never
//! hangs waiting for a thread.

use std::rc::Rc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio::task::LocalSet;

use super::args::{Plan, Scenario};
use super::conn::{self, Conn, Finish, Pacing, Worker};
use super::error::{ConnError, LoadError};
use super::stats::Stats;

/// What the threads and the caller share.
pub(crate) struct Shared {
    /// Threads that finished phase 1 and phase 2 (for the caller's progress loop).
    arrived: [AtomicU32; 2],
    /// Set by the caller once it has sampled after phase 1 / phase 2; threads wait for it.
    released: Mutex<[bool; 2]>,
    wake: Condvar,
    /// Over all threads: connections opened (and joined) during phase 1, then completions (the
    /// caller resets it between the two; in `connect` the opens are the completions).
    pub progress: Arc<AtomicU64>,
    /// Connections opened so far over all threads (final once phase 1 has ended).
    pub opened: AtomicU64,
}

impl Shared {
    fn release(&self, phase: usize) {
        let mut released = self.released.lock().unwrap_or_else(|p| p.into_inner());
        released[phase] = true;
        self.wake.notify_all();
    }
}

/// A thread's place in the phases: arrives at each phase end and waits for the caller's release.
/// Dropping it arrives at the phases still owed, so a thread that fails early never leaves the
/// caller waiting.
struct PhaseGuard<'a> {
    shared: &'a Shared,
    next: usize,
}

impl PhaseGuard<'_> {
    fn arrive(&mut self) {
        let phase = self.next;
        self.next += 1;
        self.shared.arrived[phase].fetch_add(1, Ordering::Release);
        let mut released = self
            .shared
            .released
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        while !released[phase] {
            released = self
                .shared
                .wake
                .wait(released)
                .unwrap_or_else(|p| p.into_inner());
        }
    }
}

impl Drop for PhaseGuard<'_> {
    fn drop(&mut self) {
        while self.next < 2 {
            self.arrive();
        }
    }
}

/// A started run: the threads, and the handle the caller uses to follow the phases.
pub(crate) struct Run {
    pub shared: Arc<Shared>,
    threads: Vec<JoinHandle<Result<Stats, LoadError>>>,
}

impl Run {
    /// Starts `plan.threads` load threads; they begin phase 1 at once.
    pub fn start(plan: &Arc<Plan>) -> Result<Run, LoadError> {
        let shared = Arc::new(Shared {
            arrived: [AtomicU32::new(0), AtomicU32::new(0)],
            released: Mutex::new([false; 2]),
            wake: Condvar::new(),
            progress: Arc::new(AtomicU64::new(0)),
            opened: AtomicU64::new(0),
        });
        let seed = seed();
        let mut run = Run {
            shared,
            threads: Vec::with_capacity(plan.threads as usize),
        };
        for t in 0..plan.threads {
            let (plan, shared) = (Arc::clone(plan), Arc::clone(&run.shared));
            let spawned = std::thread::Builder::new()
                .name(format!("ringcast-bench-{t}"))
                .spawn(move || thread_main(plan, t, seed, &shared));
            match spawned {
                Ok(handle) => run.threads.push(handle),
                Err(e) => {
                    // Let the threads already started run through and end.
                    run.shared.release(0);
                    run.shared.release(1);
                    let _partial = run.finish();
                    return Err(LoadError::Thread(e));
                }
            }
        }
        Ok(run)
    }

    /// Waits until every thread has finished phase `phase` (0 or 1), calling `tick` every
    /// 100 ms meanwhile. The threads stay parked until [`Run::release`].
    pub fn wait_phase(&self, phase: usize, mut tick: impl FnMut()) {
        let total = self.threads.len() as u32;
        while self.shared.arrived[phase].load(Ordering::Acquire) < total {
            tick();
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Lets the threads go on past phase `phase`.
    pub fn release(&self, phase: usize) {
        self.shared.release(phase);
    }

    /// Joins the threads (after both releases) and merges their counts.
    pub fn finish(self) -> Result<Stats, LoadError> {
        let mut merged: Option<Stats> = None;
        let mut first_error = None;
        for handle in self.threads {
            match handle.join() {
                Ok(Ok(stats)) => match &mut merged {
                    Some(m) => m.merge(&stats),
                    None => merged = Some(stats),
                },
                Ok(Err(e)) => first_error = first_error.or(Some(e)),
                Err(_) => first_error = first_error.or(Some(LoadError::ThreadPanicked)),
            }
        }
        match (first_error, merged) {
            (Some(e), _) => Err(e),
            (None, Some(m)) => Ok(m),
            (None, None) => Err(LoadError::ThreadPanicked),
        }
    }
}

/// Per-run randomness for masking keys and nonces, from the standard library's hasher seed.
fn seed() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    h.finish()
}

fn thread_main(plan: Arc<Plan>, t: u32, seed: u64, shared: &Shared) -> Result<Stats, LoadError> {
    let mut guard = PhaseGuard { shared, next: 0 };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(LoadError::Thread)?;
    let local = LocalSet::new();
    let w = Rc::new(Worker::new(
        Arc::clone(&plan),
        t,
        seed,
        Arc::clone(&shared.progress),
    ));

    // Phase 1: open.
    w.start.set(Instant::now());
    let conns = local.block_on(&runtime, open_all(&w, t));
    shared
        .opened
        .fetch_add(conns.len() as u64, Ordering::Relaxed);
    guard.arrive();

    // Phase 2: measure.
    w.start.set(Instant::now());
    w.measuring.set(true);
    let conns = local.block_on(&runtime, measure(&w, conns));
    w.measuring.set(false);
    guard.arrive();

    // Phase 3: close.
    local.block_on(&runtime, async {
        let tasks: Vec<_> = conns
            .into_iter()
            .map(|c| {
                let w = Rc::clone(&w);
                tokio::task::spawn_local(async move { c.close(&w).await })
            })
            .collect();
        for task in tasks {
            let _closed = task.await;
        }
    });
    drop(local);
    let w = Rc::try_unwrap(w).unwrap_or_else(|_| unreachable!("all tasks finished"));
    Ok(w.stats.into_inner())
}

/// The global connection indices thread `t` owns: `t`, `t + T`, `t + 2T`, …
fn owned(plan: &Plan, t: u32) -> impl Iterator<Item = u32> {
    (t..plan.connections).step_by(plan.threads as usize)
}

async fn open_all(w: &Rc<Worker>, t: u32) -> Vec<(u32, Conn)> {
    let plan = &w.plan;
    let start = w.start.get();
    // In `connect` the whole phase is bounded by --duration; elsewhere each attempt is bounded
    // by --connect-timeout after its ramp slot.
    let deadline = (plan.scenario == Scenario::Connect).then(|| start + plan.duration);
    let answer_pings = plan.scenario != Scenario::Idle || plan.answer_pings;
    let tasks: Vec<_> = owned(plan, t)
        .map(|i| {
            let w = Rc::clone(w);
            let slot = start
                + plan
                    .ramp_up
                    .mul_f64(f64::from(i) / f64::from(plan.connections));
            tokio::task::spawn_local(async move {
                let attempt = async {
                    tokio::time::sleep_until(slot.into()).await;
                    let _permit = w.pending.acquire().await.expect("never closed");
                    let began = Instant::now();
                    let open = async {
                        let mut conn = conn::open(&w, answer_pings).await?;
                        // `fanout`: connection 0 publishes, every other one joins the room first
                        // (in the baseline phase all are subscribers and there is no room).
                        if w.plan.scenario == Scenario::Fanout && i != 0 && !w.plan.baseline_phase {
                            conn.join(&w).await?;
                            w.stats.borrow_mut().joined += 1;
                        }
                        Ok::<_, ConnError>(conn)
                    };
                    let conn = tokio::time::timeout(w.plan.connect_timeout, open)
                        .await
                        .map_err(|_| ConnError::ConnectTimeout)??;
                    Ok::<_, ConnError>((conn, began))
                };
                let result = match deadline {
                    Some(d) => tokio::time::timeout_at(d.into(), attempt)
                        .await
                        .unwrap_or(Err(ConnError::Deadline)),
                    None => attempt.await,
                };
                let mut stats = w.stats.borrow_mut();
                match result {
                    Ok((conn, began)) => {
                        stats.connected += 1;
                        // Open (and joined): the progress bar's open phase; in `connect`,
                        // also the completions.
                        w.progress.fetch_add(1, Ordering::Relaxed);
                        if w.plan.scenario == Scenario::Connect {
                            let now = Instant::now();
                            let far = now + w.plan.duration + Duration::from_secs(1);
                            let start = w.start.get();
                            stats.complete(start, far, now, Some(now - began));
                        }
                        Some((i, conn))
                    }
                    Err(e) => {
                        stats.fail(&e);
                        None
                    }
                }
            })
        })
        .collect();
    let mut conns = Vec::with_capacity(tasks.len());
    for task in tasks {
        if let Ok(Some(c)) = task.await {
            conns.push(c);
        }
    }
    conns
}

async fn measure(w: &Rc<Worker>, conns: Vec<(u32, Conn)>) -> Vec<Conn> {
    let plan = &w.plan;
    if plan.scenario == Scenario::Connect {
        return conns.into_iter().map(|(_, c)| c).collect();
    }
    let n = f64::from(plan.connections);
    let tasks: Vec<_> = conns
        .into_iter()
        .map(|(i, mut c)| {
            let w = Rc::clone(w);
            tokio::task::spawn_local(async move {
                let result = match w.plan.scenario {
                    Scenario::Echo => c
                        .pump(
                            &w,
                            Pacing::Closed {
                                in_flight: w.plan.in_flight as usize,
                            },
                        )
                        .await
                        .map(|f| matches!(f, Finish::Clean)),
                    Scenario::Latency => {
                        // Each connection offers rate / C messages per second, phases spread
                        // evenly so the server sees a steady stream, not C-message bursts.
                        let interval = Duration::from_secs_f64(n / w.plan.rate as f64);
                        let phase = interval.mul_f64(f64::from(i) / n);
                        c.pump(&w, Pacing::Open { interval, phase })
                            .await
                            .map(|f| matches!(f, Finish::Clean))
                    }
                    Scenario::Idle => {
                        let until = w.start.get() + w.plan.duration;
                        c.hold(&w, until).await.map(|()| true)
                    }
                    Scenario::Fanout if i == 0 && !w.plan.baseline_phase => {
                        c.publish(&w).await.map(|()| true)
                    }
                    Scenario::Fanout => c.subscribe(&w).await.map(|()| true),
                    Scenario::Connect => unreachable!("handled above"),
                };
                match result {
                    Ok(true) => Some(c),
                    Ok(false) => None,
                    Err(e) => {
                        w.stats.borrow_mut().fail(&e);
                        None
                    }
                }
            })
        })
        .collect();
    let mut kept = Vec::with_capacity(tasks.len());
    for task in tasks {
        if let Ok(Some(c)) = task.await {
            kept.push(c);
        }
    }
    kept
}
