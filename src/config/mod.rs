//! Server configuration: every option declared once, its default, its rules, and where each
//! value came from.
//!
//! - `options`: the one table. Each entry declares an option (field, type, value kind,
//!   default, help group and line, an example and a bad value, its own rule); the `options!`
//!   macro (`declare`) makes of it the [`Config`] / [`SecurityConfig`] field, the one
//!   `impl Default`, the [`Key`] (TOML key, `--flag`, `RINGCAST_*` variable), the clap argument
//!   of `serve` ([`crate::cli`]), its `serve --help` entry, its `--print-config` line, and the
//!   arms that read and check it.
//! - `kind`: value kinds (address, count, bool, size, duration, choice, list, CIDR list,
//!   origin list, secret, file), each read from text or TOML and written back.
//! - `units`: human durations (`"30s"`, `"1m30s"`, `"500ms"`, a bare number of seconds) and
//!   sizes (`"16MiB"`, `"8KiB"`, a bare number of bytes).
//! - `load`: the layers, flag > environment > file > default ([`Loader`]), the [`Origin`] of
//!   every value, and the suggestion for a misspelt key or variable.
//! - `validate`: each option's own rule and the rules between options ([`Config::validate`]).
//! - `error`: [`ConfigError`], every message naming the key and where its value came from.
//!
//! # Adding an option
//!
//! One entry in `options`, at the end of its section (`Config`'s own fields, or
//! `SecurityConfig`'s for `config.security.*`): doc comment (default, cost, when to change it),
//! `Key field: Type as Kind = default`, `group`, `help`, `example`, `bad`, and a `check` if the
//! value has a range. The flag, the variable, the TOML key, `--print-config`, `serve --help` and
//! the test that walks every option through every layer all follow. A new value kind is one
//! `kind::Kind` impl; a rule between options is a few lines in [`Config::validate`]. Then say
//! in `tuning.md` (or `docs/security.md`) what the option costs.
//!
//! # What was compared
//!
//! - clap's derive with `env = "..."`: clap would read the variables itself, so the loader could
//!   no longer tell a flag from a variable (every error names its source), nor word the errors
//!   (`invalid workers = "two" (environment variable RINGCAST_WORKERS): ...`), nor suggest a
//!   misspelt variable; and each option would still need a field here and one there.
//! - serde for the file: one `Deserialize` struct per layer loses per-key provenance, needs
//!   custom deserializers for human units and for "integer or unit string", and still leaves the
//!   flags, the variables, the help and `--print-config` to be written beside it.
//! - A `macro_rules!` table of ours over a small `kind::Kind` trait (chosen): no new
//!   dependency, today's messages and precedence kept exactly, and clap is still the parser (its
//!   builder API, one argument per table entry). Each generated arm is a one-line dispatch, so
//!   the behaviour stays in plain functions.
//!
//! It must never touch a socket, spawn, or read a clock; the only I/O is reading the config file
//! in [`Loader::file`] and checking a configured JWT public key file and API key file in
//! [`Loader::build`]. It runs
//! once at start-up, so it may allocate freely: nothing here is on a hot path, and the driver
//! copies the values it needs out of [`Config`].

mod declare;
mod error;
mod kind;
mod load;
mod options;
mod units;
mod validate;

#[cfg(test)]
mod tests;

pub use error::{ConfigError, ValueError};
pub use load::{read_api_key_file, unknown_env_vars, Loader, Origin, Provenance, CONFIG_FILE_VAR};
pub use options::{
    default_workers, BackpressurePolicy, CompressionMode, Config, Key, LogFormat, SecurityConfig,
    Spec, MAX_BACKLOG, MAX_COMPRESSION_LEVEL, MAX_COMPRESSION_WINDOW_BITS, MAX_HEADERS,
    MAX_HEADER_BYTES, MAX_RING_ENTRIES, MAX_ROOM_NAME_LEN, MAX_SQPOLL_IDLE, MAX_WORKERS,
    MIN_COMPRESSION_WINDOW_BITS, MIN_FRAME_SIZE, MIN_HEADERS, MIN_HEADER_BYTES,
};
pub use units::{
    format_duration, format_size, parse_duration, parse_size, DurationError, SizeError,
};

impl Config {
    /// The whole configuration as a TOML document, one `key = value` line per key in
    /// [`Key::ALL`] order. Feeding it back through `--config` yields the same `Config`, except
    /// that a set secret (`auth_jwt_secret`) is never printed: its line is a comment saying it is
    /// set.
    pub fn to_toml(&self) -> String {
        self.toml_document(false)
    }

    /// [`Config::to_toml`], with secrets printed when `with_secrets` (tests only).
    fn toml_document(&self, with_secrets: bool) -> String {
        let mut out = String::new();
        for key in Key::ALL {
            let value = match self.toml_value(key) {
                Some(value) => value,
                None if with_secrets => toml::Value::String(self.render(key)),
                None => {
                    out.push_str(&format!("# {key} is set (never printed)\n"));
                    continue;
                }
            };
            out.push_str(&format!("{key} = {value}\n"));
        }
        out
    }

    /// SQPOLL idle time in milliseconds, as the kernel takes it, or `None` when SQPOLL is off.
    pub fn sqpoll_idle_ms(&self) -> Option<u32> {
        self.sqpoll
            .map(|d| u32::try_from(d.as_millis()).unwrap_or(u32::MAX))
    }
}
