//! The application backend over HTTP: webhooks that tell it what happened ([`webhook`]) and the
//! synchronous question whether a user may join a room ([`authorize`]). `docs/webhooks.md` is
//! the contract.
//!
//! Owns the two backend threads and the workers' handles on them ([`Backend`], in
//! [`crate::driver::Shared`]). With neither `webhook_url` nor `authorize_join_url` set nothing
//! here runs and the hooks in the driver cost one branch on an `Option`. Besides `driver` and
//! `cluster::bridge`, these threads are the only code doing I/O; they must never block a worker:
//! workers only `try_send` to them, and answers come back through the mesh.
//!
//! - [`http`]: a small HTTP/1.1 client (keep-alive, timeouts, bounded answers), `http://` only.
//! - [`event`]: the events, their names and the JSON of a batch.
//! - [`sign`]: the HMAC-SHA256 signature headers.

pub mod authorize;
pub mod event;
pub mod http;
pub mod sign;
pub mod webhook;

use std::sync::Arc;

use crate::config::Config;
use crate::driver::mesh::Outbox;

/// The workers' handles on the backend threads; both `None` when the backend is not configured.
#[derive(Debug, Default)]
pub struct Backend {
    /// The webhook sender, with `webhook_url`.
    pub webhooks: Option<Arc<webhook::Webhooks>>,
    /// The join authorizer, with `authorize_join_url`.
    pub authorizer: Option<authorize::Authorizer>,
}

impl Backend {
    /// Starts what `config` asks for (a validated config: URLs and events parse). The authorizer
    /// answers workers on `outboxes`.
    pub fn start(config: &Config, outboxes: &[Outbox]) -> std::io::Result<Backend> {
        let node: Arc<str> = node_name().into();
        let secret = config
            .webhook_secret
            .as_ref()
            .map(|s| s.0.as_bytes().to_vec());
        let invalid = |e: String| std::io::Error::new(std::io::ErrorKind::InvalidInput, e);
        let webhooks = match &config.webhook_url {
            None => None,
            Some(url) => {
                let target = http::Target::parse(url)
                    .map_err(|e| invalid(format!("webhook_url {url:?} {e}")))?;
                let events = event::EventSet::from_names(&config.webhook_events)
                    .map_err(|name| invalid(format!("webhook_events: unknown event {name:?}")))?;
                let secret = secret.clone().ok_or_else(|| {
                    invalid("webhook_url is set but webhook_secret is not".to_owned())
                })?;
                let hooks = webhook::start(webhook::WebhookConfig {
                    target,
                    secret,
                    events,
                    batch_size: config.webhook_batch_size,
                    batch_wait: config.webhook_batch_wait,
                    queue_size: config.webhook_queue_size,
                    timeout: config.webhook_timeout,
                    retry_max_delay: config.webhook_retry_max_delay,
                    node: node.clone(),
                })?;
                tracing::info!(url = %url, events = ?config.webhook_events, "webhooks on");
                Some(Arc::new(hooks))
            }
        };
        let authorizer = match &config.authorize_join_url {
            None => None,
            Some(url) => {
                let target = http::Target::parse(url)
                    .map_err(|e| invalid(format!("authorize_join_url {url:?} {e}")))?;
                let authorizer = authorize::start(
                    authorize::AuthorizeConfig {
                        target,
                        secret,
                        timeout: config.authorize_join_timeout,
                        cache_ttl: config.authorize_join_cache_ttl,
                        cache_size: config.authorize_join_cache_size,
                        fail_open: config.authorize_join_fail_open,
                        node,
                    },
                    outboxes.to_vec(),
                )?;
                tracing::info!(url = %url, fail_open = config.authorize_join_fail_open, "join authorization on");
                Some(authorizer)
            }
        };
        Ok(Backend {
            webhooks,
            authorizer,
        })
    }

    /// The Prometheus series of what is on.
    pub fn render_metrics(&self, out: &mut String) {
        if let Some(w) = &self.webhooks {
            w.status.render_metrics(out);
        }
        if let Some(a) = &self.authorizer {
            a.status.render_metrics(out);
        }
    }
}

/// This node's name in events: `<hostname>-<pid>`.
fn node_name() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "ringcast".to_owned());
    format!("{host}-{}", std::process::id())
}

/// Unix time in whole seconds.
pub(crate) fn unix_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// A small xorshift generator for retry jitter (not for anything secret), seeded from std's
/// per-process random hash keys.
#[derive(Debug)]
pub struct Rng(u64);

impl Rng {
    /// A generator with a random seed.
    pub fn seeded() -> Rng {
        use std::hash::{BuildHasher, Hasher};
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u64(0x9e37_79b9_7f4a_7c15);
        Rng(h.finish() | 1)
    }

    /// The next value.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
}
