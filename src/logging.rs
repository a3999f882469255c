//! Process-wide logging: a `tracing` subscriber writing to stderr, as text or one JSON object per
//! line, filtered by `RUST_LOG` (default `info`).
//!
//! Owns the choice of subscriber and filter, nothing else. It must never be called from library
//! code or tests that run in parallel (there is one global subscriber per process: `main` installs
//! it once), and the hot path must never log per frame: log per connection or per event at most.

use std::io::IsTerminal;

use tracing_subscriber::filter::{LevelFilter, ParseError};
use tracing_subscriber::util::{SubscriberInitExt, TryInitError};
use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

/// The variable holding the filter directives (`info`, `ringcast=debug,warn`, ...).
pub const FILTER_VAR: &str = "RUST_LOG";

/// Why logging could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum LoggingError {
    /// `RUST_LOG` holds a directive that does not parse.
    #[error("invalid RUST_LOG = {value:?}: {source}")]
    BadFilter {
        /// The variable's value.
        value: String,
        /// The parser's complaint.
        source: ParseError,
    },
    /// A global subscriber was installed already.
    #[error("a logger is already installed: {0}")]
    AlreadyInstalled(#[from] TryInitError),
}

/// The filter for the directives in `rust_log`; unset or empty means `info`.
pub fn filter(rust_log: Option<&str>) -> Result<EnvFilter, LoggingError> {
    let value = rust_log.unwrap_or_default();
    EnvFilter::builder()
        .with_default_directive(LevelFilter::INFO.into())
        .parse(value)
        .map_err(|source| LoggingError::BadFilter {
            value: value.to_owned(),
            source,
        })
}

/// Installs the global subscriber: `format` lines on stderr, filtered by `RUST_LOG`. Colours only
/// when stderr is a terminal. Call once, from `main`.
pub fn init(format: LogFormat) -> Result<(), LoggingError> {
    let rust_log = std::env::var(FILTER_VAR).ok();
    let filter = filter(rust_log.as_deref())?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder
            .with_ansi(std::io::stderr().is_terminal())
            .finish()
            .try_init()?,
        LogFormat::Json => builder.json().finish().try_init()?,
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_rust_log_means_info() {
        assert_eq!(
            filter(None).unwrap().max_level_hint(),
            Some(LevelFilter::INFO)
        );
        assert_eq!(
            filter(Some("")).unwrap().max_level_hint(),
            Some(LevelFilter::INFO)
        );
    }

    #[test]
    fn rust_log_directives_set_the_level() {
        let f = filter(Some("warn,ringcast=trace")).unwrap();
        assert_eq!(f.max_level_hint(), Some(LevelFilter::TRACE));
    }

    #[test]
    fn a_malformed_rust_log_is_an_error_quoting_it() {
        let err = filter(Some("ringcast=loud")).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("invalid RUST_LOG = \"ringcast=loud\": "),
            "{err}"
        );
    }
}
