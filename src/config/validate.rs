//! The rules: each option's own rule (the helpers an entry's `check` calls in
//! [`super::options`]) and the hand-written rules between options ([`Config::validate`]).
//!
//! Pure checks over values; it must never read a layer, a file or the environment (the public key
//! file is read by [`super::Loader::build`]).

use std::fmt::Display;
use std::time::Duration;

use super::error::{ConfigError, Refusal};
use super::load::{Origin, Provenance};
use super::options::{Config, Key};
use super::units::{format_duration, format_size};
use crate::room::stream::HistoryRule;
use crate::security::auth::is_token_protocol;

/// `lo..=hi`.
pub(super) fn between<T: PartialOrd + Display>(value: T, lo: T, hi: T) -> Result<(), Refusal> {
    if value < lo || value > hi {
        return Err(Refusal::MustBe(format!("between {lo} and {hi}")));
    }
    Ok(())
}

/// At least 1.
pub(super) fn at_least_one<T: PartialOrd + From<u8>>(value: T) -> Result<(), Refusal> {
    if value < T::from(1) {
        return Err(Refusal::MustBe("at least 1".to_owned()));
    }
    Ok(())
}

/// A size in `lo..=hi`, the bounds written in human units.
pub(super) fn sizes_between(value: usize, lo: usize, hi: usize) -> Result<(), Refusal> {
    if value < lo || value > hi {
        return Err(Refusal::MustBe(format!(
            "between {} and {}",
            format_size(lo),
            format_size(hi)
        )));
    }
    Ok(())
}

/// A size of at least `min`; `why` follows the bound in the message.
pub(super) fn at_least(value: usize, min: usize, why: &str) -> Result<(), Refusal> {
    if value < min {
        return Err(Refusal::MustBe(format!(
            "at least {}{why}",
            format_size(min)
        )));
    }
    Ok(())
}

/// A size other than 0.
pub(super) fn greater_than_zero(value: usize) -> Result<(), Refusal> {
    if value == 0 {
        return Err(Refusal::MustBe("greater than 0".to_owned()));
    }
    Ok(())
}

/// A duration other than 0.
pub(super) fn longer_than_zero(value: Duration) -> Result<(), Refusal> {
    if value.is_zero() {
        return Err(Refusal::MustBe("longer than 0s".to_owned()));
    }
    Ok(())
}

/// A power of two in `1..=max` (the kernel rounds ring sizes up to one).
pub(super) fn power_of_two_up_to(value: u32, max: u32) -> Result<(), Refusal> {
    between(value, 1, max)?;
    if !value.is_power_of_two() {
        return Err(Refusal::NotPowerOfTwo(value));
    }
    Ok(())
}

/// `off`, or whole milliseconds between 1 ms and `max` (the kernel takes `sq_thread_idle` in
/// whole milliseconds).
pub(super) fn off_or_whole_ms(value: Option<Duration>, max: Duration) -> Result<(), Refusal> {
    let Some(idle) = value else {
        return Ok(());
    };
    let whole_ms = idle.subsec_nanos() % 1_000_000 == 0;
    if idle < Duration::from_millis(1) || idle > max || !whole_ms {
        return Err(Refusal::MustBe(format!(
            "off or whole milliseconds between 1ms and {} (a bare number means seconds)",
            format_duration(max)
        )));
    }
    Ok(())
}

/// Unset, or a `redis://HOST:PORT` address.
pub(super) fn redis_url(value: &Option<String>) -> Result<(), Refusal> {
    match value {
        Some(url) if !url.starts_with("redis://") || url.len() == "redis://".len() => {
            Err(Refusal::MustBe("a redis://HOST:PORT address".to_owned()))
        }
        _ => Ok(()),
    }
}

/// History rules: one per prefix, each ttl (when given) longer than 0.
pub(super) fn history_rules_are_valid(rules: &[HistoryRule]) -> Result<(), Refusal> {
    for (i, rule) in rules.iter().enumerate() {
        if rule.ttl.is_some_and(|t| t.is_zero()) {
            return Err(Refusal::MustBe(format!(
                "a ttl longer than 0s (rule {rule})"
            )));
        }
        if rules[..i].iter().any(|r| r.prefix == rule.prefix) {
            return Err(Refusal::MustBe(format!(
                "one rule per prefix ({:?} is given twice)",
                rule.prefix
            )));
        }
    }
    Ok(())
}

/// Subprotocols that may be offered: unique HTTP tokens, none reserved for tokens.
pub(super) fn subprotocols_are_tokens(list: &[String]) -> Result<(), Refusal> {
    for (i, protocol) in list.iter().enumerate() {
        // RFC 6455 §4.1: "The elements that comprise this value MUST be non-empty strings with
        // characters in the range U+0021 to U+007E not including separator characters as
        // defined in [RFC2616] and MUST all be unique strings."
        if protocol.is_empty() || !protocol.bytes().all(is_token_byte) {
            return Err(Refusal::NotToken(protocol.clone()));
        }
        // A `bearer.` entry carries a JWT: selecting it would echo the token in the 101.
        if is_token_protocol(protocol) {
            return Err(Refusal::CarriesToken(protocol.clone()));
        }
        if list[..i].contains(protocol) {
            return Err(Refusal::Repeated(protocol.clone()));
        }
    }
    Ok(())
}

/// An RFC 2616 token character: U+0021 to U+007E minus the separators
/// `( ) < > @ , ; : \ " / [ ] ? = { }` (space and tab are already outside the range).
fn is_token_byte(b: u8) -> bool {
    (0x21..=0x7e).contains(&b) && !b"()<>@,;:\\\"/[]?={}".contains(&b)
}

impl Config {
    /// Checks every option's own rule and every rule between options. Errors name the key;
    /// since a bare `Config` does not remember its layers, the origin they report is
    /// [`Origin::Program`] ([`super::Loader::build`] reports the real one).
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.check(&|key| Provenance {
            key,
            origin: Origin::Program,
        })
    }

    /// [`Config::validate`] with `at` saying where each key's value came from.
    pub(super) fn check(&self, at: &dyn Fn(Key) -> Provenance) -> Result<(), ConfigError> {
        self.check_each(at)?;
        // Invariant: max_frame_size <= max_message_size. An unfragmented frame is a whole message,
        // so a larger frame limit could never be reached; rejecting it keeps the two honest.
        if self.max_frame_size > self.max_message_size {
            return Err(ConfigError::FrameAboveMessage {
                frame: self.max_frame_size,
                frame_at: at(Key::MaxFrameSize),
                message: self.max_message_size,
                message_at: at(Key::MaxMessageSize),
            });
        }
        self.security
            .validate()
            .map_err(|e| ConfigError::security(e, at))?;
        // Invariant: ping_interval < idle_timeout, so a healthy idle peer is pinged (and answers)
        // before the idle timer can fire.
        if self.ping_interval >= self.idle_timeout {
            return Err(ConfigError::PingNotBelowIdle {
                ping: self.ping_interval,
                ping_at: at(Key::PingInterval),
                idle: self.idle_timeout,
                idle_at: at(Key::IdleTimeout),
            });
        }
        // A payload travels inside one message, so a larger payload limit could never be reached.
        if self.max_payload_size == 0 || self.max_payload_size > self.max_message_size {
            return Err(ConfigError::OutOfRange {
                at: at(Key::MaxPayloadSize),
                value: format_size(self.max_payload_size),
                allowed: format!(
                    "between 1B and max_message_size ({})",
                    format_size(self.max_message_size)
                ),
            });
        }
        // A message over max_message_size is never sent, so a larger threshold could never apply.
        if self.compression_min_size > self.max_message_size {
            return Err(ConfigError::OutOfRange {
                at: at(Key::CompressionMinSize),
                value: format_size(self.compression_min_size),
                allowed: format!(
                    "at most max_message_size ({})",
                    format_size(self.max_message_size)
                ),
            });
        }
        // Each worker gets an even share of the inbox budget; one user's inbox must fit in it.
        if self.inbox_max_total_bytes < self.inbox_max_bytes {
            return Err(ConfigError::OutOfRange {
                at: at(Key::InboxMaxTotalBytes),
                value: format_size(self.inbox_max_total_bytes),
                allowed: format!(
                    "at least inbox_max_bytes ({})",
                    format_size(self.inbox_max_bytes)
                ),
            });
        }
        // Every webhook is signed: a receiver that cannot check where events come from would
        // take forged ones. A secret with nothing to sign is a mistake worth naming.
        if self.webhook_url.is_some() && self.webhook_secret.is_none() {
            return Err(ConfigError::Requires {
                at: at(Key::WebhookUrl),
                needs: "webhook_secret (every webhook is signed; set RINGCAST_WEBHOOK_SECRET)",
            });
        }
        if self.webhook_secret.is_some()
            && self.webhook_url.is_none()
            && self.authorize_join_url.is_none()
        {
            return Err(ConfigError::Requires {
                at: at(Key::WebhookSecret),
                needs:
                    "webhook_url or authorize_join_url (it signs their requests and nothing else)",
            });
        }
        // The backoff starts at ack_timeout and grows up to the cap: a cap below the start
        // could never be honoured.
        if self.ack_backoff_cap < self.ack_timeout {
            return Err(ConfigError::OutOfRange {
                at: at(Key::AckBackoffCap),
                value: format_duration(self.ack_backoff_cap),
                allowed: format!(
                    "at least ack_timeout ({})",
                    format_duration(self.ack_timeout)
                ),
            });
        }
        Ok(())
    }
}

/// At least 1 ms (timers have millisecond resolution).
pub(super) fn at_least_1ms(value: Duration) -> Result<(), Refusal> {
    if value < Duration::from_millis(1) {
        return Err(Refusal::MustBe("at least 1ms".to_owned()));
    }
    Ok(())
}

/// Every API key at least [`MIN_API_KEY_BYTES`](crate::api::keys::MIN_API_KEY_BYTES) bytes.
pub(super) fn api_keys_long_enough(keys: &[crate::security::Secret]) -> Result<(), Refusal> {
    let min = crate::api::keys::MIN_API_KEY_BYTES;
    if keys.iter().any(|k| k.0.len() < min) {
        return Err(Refusal::MustBe(format!(
            "keys of at least {min} bytes each"
        )));
    }
    Ok(())
}

/// Unset, or a plain `http://HOST[:PORT][/path]` URL ([`crate::backend::http::Target`]).
pub(super) fn http_url(value: &Option<String>) -> Result<(), Refusal> {
    match value.as_deref().map(crate::backend::http::Target::parse) {
        Some(Err(e)) => Err(Refusal::MustBe(format!(
            "an http://HOST:PORT/path URL; this one {e}"
        ))),
        _ => Ok(()),
    }
}

/// Event names [`crate::backend::event::EventKind`] knows.
pub(super) fn webhook_event_names(names: &[String]) -> Result<(), Refusal> {
    crate::backend::event::EventSet::from_names(names).map_err(|name| {
        let known: Vec<&str> = crate::backend::event::EventKind::ALL
            .iter()
            .map(|k| k.name())
            .collect();
        Refusal::MustBe(format!(
            "a list of: {} ({name:?} is no event)",
            known.join(", ")
        ))
    })?;
    Ok(())
}

/// Unset, or at least [`MIN_WEBHOOK_SECRET_BYTES`] bytes.
pub(super) fn secret_long_enough(value: &Option<crate::security::Secret>) -> Result<(), Refusal> {
    match value {
        Some(s) if s.0.len() < MIN_WEBHOOK_SECRET_BYTES => Err(Refusal::MustBe(format!(
            "at least {MIN_WEBHOOK_SECRET_BYTES} bytes"
        ))),
        _ => Ok(()),
    }
}

/// Shortest `webhook_secret`: an HMAC key guessable in less than 2^128 tries signs nothing.
pub const MIN_WEBHOOK_SECRET_BYTES: usize = 16;
