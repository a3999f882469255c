//! The layers and where each value came from: start from the defaults, then apply the config
//! file, the `RINGCAST_*` environment and the flags, each overriding the last (flag > environment
//! > file > default), remembering each key's [`Origin`] so every error can name it.
//!
//! Also owns the suggestion for a misspelt file key or `RINGCAST_*` variable. The only I/O is
//! reading the config file ([`Loader::file`]) and checking a configured JWT public key file
//! ([`Loader::build`]); it must never read the process environment itself (the caller passes a
//! lookup) so tests can give it any environment.

use std::ffi::OsString;
use std::fmt;
use std::path::{Path, PathBuf};

use super::error::{ConfigError, ValueError};
use super::kind::Raw;
use super::options::{Config, Key};
use crate::security::read_public_key;

/// Where a value came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Origin {
    /// [`Config::default`].
    Default,
    /// Set directly on a [`Config`] by the program (what [`Config::validate`] reports, since a bare
    /// `Config` does not remember its layers).
    Program,
    /// A key of this TOML file.
    File(PathBuf),
    /// The key's `RINGCAST_*` environment variable.
    Env,
    /// The key's command-line flag.
    Flag,
}

/// A key together with where its value came from; displays as `flag --workers`,
/// `environment variable RINGCAST_WORKERS`, `config file ringcast.toml` or `default`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Provenance {
    /// The key.
    pub key: Key,
    /// Where its value came from.
    pub origin: Origin,
}

impl fmt::Display for Provenance {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.origin {
            Origin::Default => f.write_str("default"),
            Origin::Program => f.write_str("set by the program"),
            Origin::File(path) => write!(f, "config file {}", path.display()),
            Origin::Env => write!(f, "environment variable {}", self.key.env_var()),
            Origin::Flag => write!(f, "flag --{}", self.key.flag()),
        }
    }
}

/// The `RINGCAST_*` variable naming the config file (read by the command line, not a [`Key`]).
pub const CONFIG_FILE_VAR: &str = "RINGCAST_CONFIG";

/// The `RINGCAST_*` names among `names` that are neither a [`Key`]'s variable nor
/// [`CONFIG_FILE_VAR`], each with the key it was probably meant to be. A misspelt
/// `RINGCAST_AUTH_REQURED` is otherwise silently ignored, so the caller warns about each.
pub fn unknown_env_vars(names: impl IntoIterator<Item = OsString>) -> Vec<(String, Option<Key>)> {
    names
        .into_iter()
        .filter_map(|name| name.into_string().ok())
        .filter(|name| name.starts_with("RINGCAST_") && name != CONFIG_FILE_VAR)
        .filter(|name| Key::ALL.iter().all(|k| k.env_var() != *name))
        .map(|name| {
            let guess = closest_key(&name["RINGCAST_".len()..]);
            (name, guess)
        })
        .collect()
}

/// The key `name` was probably meant to be: written in another case or with dashes
/// (`Max-Frame-Size`), or within two edits of a key's name (`max_frame_sise`). Suggests keys for
/// unknown file keys and unknown `RINGCAST_*` variables alike.
fn closest_key(name: &str) -> Option<Key> {
    let name = name.to_ascii_lowercase().replace('-', "_");
    Key::ALL
        .into_iter()
        .map(|k| (strsim::levenshtein(k.name(), &name), k))
        .filter(|(d, _)| *d <= 2)
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

/// Merges the layers into a [`Config`]: start from the defaults, then apply the file, the
/// environment and the flags, in that order, each overriding the last (flag > env > file > default),
/// and remember where each key's value came from so errors can say so.
///
/// ```
/// use ringcast::config::{Key, Loader};
/// let env = |name: &str| (name == "RINGCAST_WORKERS").then(|| "3".into());
/// let mut loader = Loader::new();
/// loader.env(env).unwrap();
/// loader.flags([(Key::Listen, "[::1]:9000")]).unwrap();
/// let config = loader.build().unwrap();
/// assert_eq!(config.workers, 3);
/// assert_eq!(config.listen.to_string(), "[::1]:9000");
/// ```
#[derive(Debug)]
pub struct Loader {
    pub(super) config: Config,
    /// Where each key's current value came from, indexed by `Key as usize`.
    origins: Vec<Origin>,
}

impl Default for Loader {
    fn default() -> Self {
        Loader::new()
    }
}

impl Loader {
    /// Starts from [`Config::default`].
    pub fn new() -> Self {
        Loader {
            config: Config::default(),
            origins: vec![Origin::Default; Key::ALL.len()],
        }
    }

    fn apply(&mut self, key: Key, origin: Origin, raw: Raw<'_>) -> Result<(), ConfigError> {
        let at = Provenance { key, origin };
        self.config.set(&at, raw)?;
        self.origins[key.index()] = at.origin;
        Ok(())
    }

    /// Applies the TOML file at `path`. Unknown keys are an error.
    pub fn file(&mut self, path: &Path) -> Result<&mut Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::ReadFile {
            path: path.to_owned(),
            source,
        })?;
        self.toml(&text, path)
    }

    /// Applies TOML text as if read from `path` (which only names the origin).
    pub fn toml(&mut self, text: &str, path: &Path) -> Result<&mut Self, ConfigError> {
        let table: toml::Table =
            text.parse()
                .map_err(|e: toml::de::Error| ConfigError::FileSyntax {
                    path: path.to_owned(),
                    message: e.to_string().trim_end().to_owned(),
                })?;
        for (name, value) in &table {
            let key = Key::from_name(name).ok_or_else(|| ConfigError::UnknownKey {
                key: name.clone(),
                path: path.to_owned(),
                suggestion: closest_key(name),
            })?;
            self.apply(key, Origin::File(path.to_owned()), Raw::Toml(value))?;
        }
        Ok(self)
    }

    /// Applies every `RINGCAST_*` variable that `lookup` returns (pass
    /// `|name| std::env::var_os(name)` for the process environment).
    pub fn env(
        &mut self,
        lookup: impl Fn(&str) -> Option<OsString>,
    ) -> Result<&mut Self, ConfigError> {
        for key in Key::ALL {
            let Some(value) = lookup(&key.env_var()) else {
                continue;
            };
            let Some(text) = value.to_str() else {
                return Err(ConfigError::NotUnicode {
                    at: Provenance {
                        key,
                        origin: Origin::Env,
                    },
                    value,
                });
            };
            self.apply(key, Origin::Env, Raw::Text(text))?;
        }
        Ok(self)
    }

    /// Applies command-line flag values.
    pub fn flags<'a>(
        &mut self,
        flags: impl IntoIterator<Item = (Key, &'a str)>,
    ) -> Result<&mut Self, ConfigError> {
        for (key, text) in flags {
            self.apply(key, Origin::Flag, Raw::Text(text))?;
        }
        Ok(self)
    }

    /// Where `key`'s current value came from.
    pub fn origin(&self, key: Key) -> &Origin {
        &self.origins[key.index()]
    }

    /// Validates the merged configuration, naming each offending key's origin, and returns it.
    /// A named `auth_jwt_public_key` is read and checked here, so an unusable key is refused
    /// like any other bad value (and `--print-config` does not print a config that cannot run).
    pub fn build(self) -> Result<Config, ConfigError> {
        let at = |key: Key| Provenance {
            key,
            origin: self.origins[key.index()].clone(),
        };
        self.config.check(&at)?;
        if let Some(path) = &self.config.security.auth_jwt_public_key {
            read_public_key(path).map_err(|e| ConfigError::security(e, &at))?;
        }
        if let Some(path) = &self.config.api_key_file {
            read_api_key_file(path).map_err(|problem| ConfigError::BadValue {
                at: at(Key::ApiKeyFile),
                value: path.display().to_string(),
                problem: Box::new(ValueError::ApiKeyFile(problem)),
            })?;
        }
        Ok(self.config)
    }
}

/// The keys of an `api_key_file`: read and checked at start-up (here, so a bad file is refused
/// like any other bad value, and again by the server when it starts).
pub fn read_api_key_file(path: &std::path::Path) -> Result<Vec<crate::security::Secret>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
    crate::api::keys::parse_key_file(&text).map_err(|e| e.to_string())
}
