//! The only I/O in ringcast: worker threads, rings, sockets, buffers, signals.
//!
//! Owns threads and the movement of bytes and time. Makes no protocol decision: the handshake module
//! and the protocol machine decide every reply; this module reads, writes, arms timers and counts.
//!
//! - [`Server::start`] binds the workers' listeners (one shared socket, or one `SO_REUSEPORT`
//!   socket each with `reuse_port`) and starts the workers;
//!   [`Server::shutdown`] begins the graceful drain;
//!   with `api_listen`, the same again for the server API's listeners ([`api`]); [`Server::wait`] joins the workers.
//! - [`run`] is the binary's entry point: a server plus SIGTERM/SIGINT handling.

mod admission;
mod api;
mod app;
mod compress;
mod connection;
mod hooks;
mod listener;
pub(crate) mod mesh;
mod notify;
mod pool;
mod reactor;
mod route;
mod users;
mod worker;

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use crate::config::Config;
use crate::metrics::WorkerStats;
use crate::security::Policy;

pub use worker::Shared;

/// A running server: its workers, their inboxes and the address they listen on.
pub struct Server {
    local_addr: SocketAddr,
    api_addr: Option<SocketAddr>,
    outboxes: Vec<mesh::Outbox>,
    threads: Vec<JoinHandle<io::Result<()>>>,
    shared: Arc<Shared>,
}

impl Server {
    /// Builds the security policy from `config` (reading `auth_jwt_public_key`), binds the
    /// listeners and starts one worker thread per configured worker. A policy that cannot be
    /// built is an `InvalidInput` error naming the key.
    pub fn start(config: Config) -> io::Result<Server> {
        let policy = Policy::from_config(&config.security)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        Server::start_with_policy(config, policy)
    }

    /// [`Server::start`] with a policy already built from `config.security`.
    pub fn start_with_policy(config: Config, policy: Policy) -> io::Result<Server> {
        let workers = config.workers;
        let (listeners, local_addr) =
            listener::bind(config.listen, workers, config.backlog, config.reuse_port)?;
        let api_keys = api_keys(&config)?;
        let (api_listeners, api_addr) = match config.api_listen {
            Some(addr) => {
                let (sockets, bound) =
                    listener::bind(addr, workers, config.backlog, config.reuse_port)?;
                (sockets.into_iter().map(Some).collect(), Some(bound))
            }
            None => ((0..workers).map(|_| None).collect::<Vec<_>>(), None),
        };
        let pin = config.pin;
        let (outboxes, mut inboxes) = mesh::mesh(workers);
        let backend = crate::backend::Backend::start(&config, &outboxes)?;
        let shared = Arc::new(Shared {
            stats: (0..workers).map(|_| WorkerStats::default()).collect(),
            draining: AtomicBool::new(false),
            open_connections: AtomicUsize::new(0),
            workers_drained: AtomicUsize::new(0),
            policy,
            cluster: config
                .cluster
                .is_some()
                .then(|| Arc::new(crate::cluster::ClusterStatus::default())),
            api_keys,
            backend,
            config,
        });
        if let Some(url) = &shared.config.cluster {
            let link = crate::cluster::bridge::start(
                crate::cluster::bridge::BridgeConfig {
                    url: url.clone(),
                    rules: crate::room::stream::HistoryRules::new(
                        crate::room::stream::HistoryPolicy {
                            size: shared.config.history_size,
                            ttl: worker::millis(shared.config.history_ttl),
                        },
                        &shared.config.history_rooms,
                    ),
                    max_recovery: shared.config.max_recovery_messages,
                    dedup_ms: worker::millis(shared.config.dedup_window),
                    publish_events: shared
                        .backend
                        .webhooks
                        .clone()
                        .filter(|w| w.wants(crate::backend::event::EventKind::Publish)),
                },
                outboxes.clone(),
                shared.cluster.clone().expect("set when cluster is"),
            )?;
            for inbox in &mut inboxes {
                inbox.cluster = Some(link.clone());
            }
        }
        let cores = if pin {
            core_affinity::get_core_ids().unwrap_or_default()
        } else {
            Vec::new()
        };
        let mut threads = Vec::with_capacity(workers);
        let sockets = listeners.into_iter().zip(api_listeners);
        for (id, ((listener, api_listener), inbox)) in sockets.zip(inboxes).enumerate() {
            let shared = shared.clone();
            let core = (!cores.is_empty()).then(|| cores[id % cores.len()]);
            let thread = std::thread::Builder::new()
                .name(format!("ringcast-w{id}"))
                .spawn(move || {
                    if let Some(core) = core {
                        if !core_affinity::set_for_current(core) {
                            tracing::warn!(
                                worker = id,
                                core = core.id,
                                "could not pin worker to its core"
                            );
                        }
                    }
                    worker::run(id, shared, listener, api_listener, inbox)
                })?;
            threads.push(thread);
        }
        tracing::info!(listen = %local_addr, workers, pin, "ringcast listening");
        if let Some(api) = api_addr {
            tracing::info!(api = %api, "ringcast API listening");
        }
        Ok(Server {
            local_addr,
            api_addr,
            outboxes,
            threads,
            shared,
        })
    }

    /// The address every worker listens on (the real port when the config said port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The address of the server API (`api_listen`, with its real port), when it is on.
    pub fn api_addr(&self) -> Option<SocketAddr> {
        self.api_addr
    }

    /// Counters and flags shared by the workers.
    pub fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// Begins the graceful drain on every worker (idempotent).
    pub fn shutdown(&self) {
        if !self.shared.draining.swap(true, Ordering::SeqCst) {
            for outbox in &self.outboxes {
                let _ = outbox.send(mesh::MeshMsg::Shutdown);
            }
        }
    }

    /// Waits for every worker to finish its drain, then for the webhook sender to deliver the
    /// events still queued (the drain's `disconnect` events among them), for up to
    /// `drain_timeout` more.
    pub fn wait(self) -> io::Result<()> {
        let mut result = Ok(());
        for thread in self.threads {
            match thread.join() {
                Ok(Ok(())) => {}
                Ok(Err(e)) => result = Err(e),
                Err(_) => result = Err(io::Error::other("a worker thread panicked")),
            }
        }
        if let Some(webhooks) = &self.shared.backend.webhooks {
            webhooks.finish(self.shared.config.drain_timeout);
        }
        result
    }
}

/// Runs a server until SIGTERM or SIGINT and its drain complete. A second signal exits at once.
pub fn run(config: Config, policy: Policy) -> io::Result<()> {
    let signals = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    signals.block_on(async {
        use tokio::signal::unix::{signal, SignalKind};
        // Handlers first: a signal that arrives once the port is open must drain, not kill.
        let mut term = signal(SignalKind::terminate())?;
        let mut int = signal(SignalKind::interrupt())?;
        let server = Server::start_with_policy(config, policy)?;
        tokio::select! {
            _ = term.recv() => tracing::info!("SIGTERM: draining"),
            _ = int.recv() => tracing::info!("SIGINT: draining"),
        }
        server.shutdown();
        let waiter = tokio::task::spawn_blocking(move || server.wait());
        tokio::select! {
            joined = waiter => {
                let result = joined.map_err(io::Error::other)?;
                tracing::info!("drained; exiting");
                result
            }
            _ = term.recv() => second_signal(),
            _ = int.recv() => second_signal(),
        }
    })
}

/// The server API's keys: `api_key` and those of `api_key_file`. With `api_listen` set, at least
/// one is needed (an API nobody can call is a misconfiguration, refused at start-up).
fn api_keys(config: &Config) -> io::Result<crate::api::ApiKeys> {
    let mut keys = crate::api::ApiKeys::default();
    if config.api_listen.is_none() {
        return Ok(keys);
    }
    keys.extend(config.api_key.iter().cloned());
    if let Some(path) = &config.api_key_file {
        let from_file = crate::config::read_api_key_file(path).map_err(|e| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("api_key_file {}: {e}", path.display()),
            )
        })?;
        keys.extend(from_file);
    }
    if keys.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "api_listen is set but no API key is: set api_key (RINGCAST_API_KEY) or api_key_file",
        ));
    }
    Ok(keys)
}

fn second_signal() -> ! {
    tracing::warn!("second signal: exiting now");
    std::process::exit(1)
}
