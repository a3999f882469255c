//! One worker: an OS thread running its own tokio-uring runtime, listener, connection table, timer
//! wheel and buffer pool.
//!
//! Owns everything per core. Nothing here is shared with another thread except the read-only
//! [`Shared`] block (config, counters, the global connection count) and the mesh inbox. State that
//! several tasks of this worker touch lives in `Cell`/`RefCell`: a borrow is never held across an
//! `.await`, which is what keeps those borrows from ever overlapping.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::config::Config;
use crate::metrics::WorkerStats;
use crate::proto::conn::{BackpressurePolicy, ConnLimits};
use crate::proto::handshake::{HandshakeLimits, UpgradeConfig};
use crate::security::Policy;
use crate::table::{ConnKey, ConnTable};
use crate::time::wheel::{TimerKey, TimerWheel};

use super::admission::RefusalLog;
use super::app::{self, App};
use super::compress::Compressor;
use super::connection::{self, ConnShared};
use super::mesh::{Inbox, MeshMsg};

type Receiver = tokio::sync::mpsc::UnboundedReceiver<MeshMsg>;
use super::notify::LocalNotify;
use super::pool::BufferPool;
use super::reactor::{self, Reactor};
use super::route::Endpoint;

/// How often a worker advances its timer wheel. The wheel's resolution is 1 ms; the tick bounds how
/// late a timer can fire.
pub const TICK: Duration = Duration::from_millis(10);

/// How many read buffers and iovec lists a worker keeps for reuse.
const POOLED_BUFFERS: usize = 64;

/// State shared by all workers of one server: read-mostly, written only through atomics.
pub struct Shared {
    /// The validated configuration.
    pub config: Config,
    /// One counter block per worker (worker `i` writes only `stats[i]`).
    pub stats: Box<[WorkerStats]>,
    /// Set once the drain has begun; read by `/healthz` and `/metrics` on any worker.
    pub draining: AtomicBool,
    /// WebSocket connections open across all workers, for the global cap.
    pub open_connections: AtomicUsize,
    /// Workers whose drain is complete. A drained worker keeps accepting (and answering 503 and
    /// `/healthz`) until every worker is drained: the kernel keeps queueing connections on every
    /// open listener (each worker's `SO_REUSEPORT` socket, or the one socket the workers share),
    /// and one that nobody accepts would hang its clients.
    pub workers_drained: AtomicUsize,
    /// The security rules, built once from `config.security` (its per-IP table is the only
    /// state workers share behind a lock, taken once per accept and close, never per message).
    pub policy: Policy,
    /// The link to the cluster's Redis, when clustered (read by `/healthz` and `/metrics`).
    pub cluster: Option<Arc<crate::cluster::ClusterStatus>>,
    /// The server API's keys (`api_key` and `api_key_file`); empty when the API is off.
    pub api_keys: crate::api::ApiKeys,
    /// The webhook sender and the join authorizer, when configured.
    pub backend: crate::backend::Backend,
}

impl Shared {
    /// Reserves one slot under `max_connections`; `false` when the server is full.
    pub fn try_reserve_connection(&self) -> bool {
        let max = self.config.max_connections;
        let prev = self.open_connections.fetch_add(1, Ordering::Relaxed);
        if max != 0 && prev >= max {
            self.open_connections.fetch_sub(1, Ordering::Relaxed);
            return false;
        }
        true
    }

    /// Gives back a slot taken by [`Shared::try_reserve_connection`].
    pub fn release_connection(&self) {
        self.open_connections.fetch_sub(1, Ordering::Relaxed);
    }
}

/// What a connection's timer means when it fires; decided from the connection's own state.
pub type TimerEntry = ConnKey;

/// The protocol limits of each WebSocket endpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EndpointLimits {
    /// `/echo`: the configured limits as they are.
    pub echo: ConnLimits,
    /// `/ws`: the same, but a message may be at most an envelope
    /// ([`crate::envelope::max_message_len`]: `max_payload_size` plus
    /// [`crate::envelope::ENVELOPE_ROOM`], if that is below `max_message_size`). Larger fails
    /// with 1009 on the frame header that crosses the limit, before any of it is buffered.
    pub ws: ConnLimits,
}

impl EndpointLimits {
    /// The limits for `config`.
    pub fn new(config: &Config) -> EndpointLimits {
        let echo = ConnLimits {
            max_frame_len: config.max_frame_size as u64,
            max_message_len: config.max_message_size,
            max_backpressure: config.max_backpressure,
            backpressure_policy: match config.backpressure_policy {
                crate::config::BackpressurePolicy::Close => BackpressurePolicy::Close,
                crate::config::BackpressurePolicy::Drop => BackpressurePolicy::DropData,
            },
        };
        let envelope = crate::envelope::max_message_len(&app::envelope_limits(config));
        EndpointLimits {
            echo,
            ws: ConnLimits {
                max_message_len: echo.max_message_len.min(envelope),
                ..echo
            },
        }
    }

    /// The limits of `endpoint`.
    pub fn of(&self, endpoint: Endpoint) -> &ConnLimits {
        match endpoint {
            Endpoint::Echo => &self.echo,
            Endpoint::Ws => &self.ws,
        }
    }
}

/// The per-thread state of one worker.
pub struct Worker {
    /// This worker's index (also its CPU when pinning).
    pub id: usize,
    /// Config, counters and flags shared with the other workers.
    pub shared: Arc<Shared>,
    /// Protocol limits handed to every new connection machine, per endpoint.
    pub conn_limits: EndpointLimits,
    /// Limits on the upgrade request head.
    pub handshake_limits: HandshakeLimits,
    /// Subprotocols this server speaks, for the upgrade of `/echo`: the configured ones.
    pub upgrade_config: UpgradeConfig,
    /// The same for `/ws`: the configured ones, then [`crate::envelope::SUBPROTOCOL`].
    pub ws_upgrade_config: UpgradeConfig,
    /// Open connections of this worker, by key.
    pub table: RefCell<ConnTable<Rc<ConnShared>>>,
    /// Every connection timer of this worker (1 tick = 1 ms since `epoch`).
    pub wheel: RefCell<TimerWheel<TimerEntry>>,
    /// Read buffers and iovec lists.
    pub pool: RefCell<BufferPool>,
    /// Read readiness of every socket of this worker.
    pub reactor: Reactor,
    /// The `/ws` application: envelope parser, room registries, the other workers' inboxes.
    pub app: App,
    /// permessage-deflate: the mode, the threshold and this worker's shared compressor.
    pub compression: Compressor,
    /// This worker's budget of refusal log lines.
    pub refusal_log: RefusalLog,
    /// Milliseconds since `epoch`, refreshed every tick and on every accept. Reading this instead of
    /// the clock keeps clock reads off the per-frame path; the one per-message clock read left is
    /// the owner's `ts` stamp on each published or sent message (`app::unix_now`), which must be
    /// exact to the millisecond rather than up to a tick old.
    now: Cell<u64>,
    epoch: Instant,
    /// Set when this worker's drain is complete: the worker's main future returns.
    done: LocalNotify,
}

impl Worker {
    /// The counters this worker writes.
    #[inline]
    pub fn stats(&self) -> &WorkerStats {
        &self.shared.stats[self.id]
    }

    /// The configuration.
    #[inline]
    pub fn config(&self) -> &Config {
        &self.shared.config
    }

    /// The cached time in ms since the worker started.
    #[inline]
    pub fn now(&self) -> u64 {
        self.now.get()
    }

    /// Reads the clock and refreshes the cached time.
    pub fn refresh_now(&self) -> u64 {
        let now = u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.now.set(now);
        now
    }

    /// Whether the server is draining.
    pub fn draining(&self) -> bool {
        self.shared.draining.load(Ordering::Relaxed)
    }

    /// Arms (or re-arms) the single timer of connection `key` at `deadline` ms.
    pub fn arm(&self, key: ConnKey, slot: &Cell<Option<TimerKey>>, deadline: u64) {
        let mut wheel = self.wheel.borrow_mut();
        if let Some(old) = slot.take() {
            wheel.cancel(old);
        }
        slot.set(Some(wheel.insert(deadline, key)));
    }

    /// Cancels the timer in `slot`, if armed.
    pub fn disarm(&self, slot: &Cell<Option<TimerKey>>) {
        if let Some(old) = slot.take() {
            self.wheel.borrow_mut().cancel(old);
        }
    }

    /// Makes sure connection `key` gets attention: wakes its task, or starts one if it is parked.
    pub fn wake(self: &Rc<Self>, key: ConnKey, conn: &Rc<ConnShared>) {
        if conn.task_running() {
            conn.notify();
        } else {
            conn.set_task_running();
            tokio_uring::spawn(connection::activate(self.clone(), key, conn.clone()));
        }
    }

    /// A connection id unique within this server: `worker:key`.
    pub fn conn_id(&self, key: ConnKey) -> String {
        format!("{}:{}", self.id, key)
    }
}

/// Milliseconds in a duration, saturating.
pub fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Runs worker `id` on the current thread until its drain completes.
pub fn run(
    id: usize,
    shared: Arc<Shared>,
    listener: std::net::TcpListener,
    api_listener: Option<std::net::TcpListener>,
    inbox: Inbox,
) -> std::io::Result<()> {
    let config = &shared.config;
    let mut builder = tokio_uring::builder();
    builder.entries(config.ring_entries);
    if let Some(idle_ms) = config.sqpoll_idle_ms() {
        builder.uring_builder(tokio_uring::uring_builder().setup_sqpoll(idle_ms));
    }
    let conn_limits = EndpointLimits::new(config);
    let handshake_limits = HandshakeLimits {
        max_head_bytes: config.max_header_bytes,
        max_headers: config.max_headers,
    };
    let upgrade_config = UpgradeConfig::with_protocols(config.subprotocols.iter());
    let mut ws_upgrade_config = upgrade_config.clone();
    if !ws_upgrade_config
        .protocols
        .iter()
        .any(|p| p == crate::envelope::SUBPROTOCOL)
    {
        ws_upgrade_config
            .protocols
            .push(crate::envelope::SUBPROTOCOL.to_owned());
    }
    let app = App::new(config, id, inbox.peers, inbox.cluster);
    let compression = Compressor::new(config);
    let inbox = inbox.rx;
    builder.start(async move {
        let (reactor, poll) = Reactor::new()?;
        let worker = Rc::new(Worker {
            reactor,
            app,
            compression,
            refusal_log: RefusalLog::default(),
            id,
            conn_limits,
            handshake_limits,
            upgrade_config,
            ws_upgrade_config,
            table: RefCell::new(ConnTable::new()),
            wheel: RefCell::new(TimerWheel::new(0)),
            pool: RefCell::new(BufferPool::new(
                shared.config.read_buffer_size,
                POOLED_BUFFERS,
            )),
            now: Cell::new(0),
            epoch: Instant::now(),
            done: LocalNotify::default(),
            shared,
        });
        let listener = tokio_uring::net::TcpListener::from_std(listener);
        tokio_uring::spawn(accept_loop(worker.clone(), listener));
        if let Some(api) = api_listener {
            let api = tokio_uring::net::TcpListener::from_std(api);
            tokio_uring::spawn(super::api::accept_loop(worker.clone(), api));
        }
        tokio_uring::spawn(tick_loop(worker.clone()));
        tokio_uring::spawn(inbox_loop(worker.clone(), inbox));
        let reactor = tokio_uring::spawn(reactor::run(worker.clone(), poll));
        tokio::select! {
            () = worker.done.notified() => Ok(()),
            failed = reactor => failed.map_err(std::io::Error::other)?,
        }
    })
}

async fn accept_loop(worker: Rc<Worker>, listener: tokio_uring::net::TcpListener) {
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => {
                worker.refresh_now();
                let _ = stream.set_nodelay(true);
                connection::accept(&worker, stream, peer);
            }
            Err(e) => {
                // EMFILE/ENFILE/ENOMEM: back off instead of spinning; the error is logged once per burst.
                tracing::warn!(worker = worker.id, error = %e, "accept failed; pausing accepts for 100 ms");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

async fn tick_loop(worker: Rc<Worker>) {
    let mut interval = tokio::time::interval(TICK);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut expired = Vec::new();
    loop {
        interval.tick().await;
        let now = worker.refresh_now();
        worker.wheel.borrow_mut().advance(now, &mut expired);
        super::users::on_tick(&worker, now);
        for key in expired.drain(..) {
            let conn = worker.table.borrow().get(key).cloned();
            if let Some(conn) = conn {
                connection::on_timer(&worker, key, &conn, now);
            }
        }
        worker
            .stats()
            .timers_armed
            .set(worker.wheel.borrow().len() as u64);
        app::on_tick(&worker, now);
    }
}

async fn inbox_loop(worker: Rc<Worker>, mut inbox: Receiver) {
    while let Some(msg) = inbox.recv().await {
        match msg {
            MeshMsg::Shutdown => {
                tokio_uring::spawn(drain(worker.clone()));
            }
            other => app::on_mesh(&worker, other),
        }
    }
}

/// The graceful drain of this worker: close every open connection with 1001 in batches spread over
/// the first half of the drain timeout, wait for the peers' replies until the drain timeout, then
/// drop whatever is left and let the worker exit.
async fn drain(worker: Rc<Worker>) {
    let drain_timeout = worker.config().drain_timeout;
    let deadline = Instant::now() + drain_timeout;
    let keys: Vec<ConnKey> = worker.table.borrow().keys().collect();
    // Batches every STEP over half the drain time, so a restart does not make every client
    // reconnect in the same instant.
    const STEP: Duration = Duration::from_millis(20);
    let steps = ((drain_timeout / 2).as_millis() / STEP.as_millis()).max(1) as usize;
    let batch = keys.len().div_ceil(steps).max(1);
    tracing::info!(
        worker = worker.id,
        connections = keys.len(),
        batch,
        "draining"
    );
    for chunk in keys.chunks(batch) {
        for &key in chunk {
            let conn = worker.table.borrow().get(key).cloned();
            if let Some(conn) = conn {
                connection::go_away(&worker, key, &conn);
            }
        }
        if chunk.len() == batch && keys.len() > batch {
            tokio::time::sleep(STEP).await;
        }
    }
    while !worker.table.borrow().is_empty() && Instant::now() < deadline {
        tokio::time::sleep(TICK).await;
    }
    let left: Vec<(ConnKey, Rc<ConnShared>)> = worker
        .table
        .borrow()
        .iter()
        .map(|(k, c)| (k, c.clone()))
        .collect();
    if !left.is_empty() {
        tracing::info!(
            worker = worker.id,
            connections = left.len(),
            "drain timeout; dropping the rest"
        );
        for (key, conn) in &left {
            connection::kill_now(&worker, *key, conn);
        }
        // Let the killed tasks run their teardown (counters, log lines) before the runtime stops.
        for _ in 0..10 {
            if worker.table.borrow().is_empty() {
                break;
            }
            tokio::time::sleep(TICK).await;
        }
    }
    worker.shared.workers_drained.fetch_add(1, Ordering::SeqCst);
    while worker.shared.workers_drained.load(Ordering::SeqCst) < worker.shared.stats.len() {
        tokio::time::sleep(TICK).await;
    }
    worker.done.notify();
}
