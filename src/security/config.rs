//! The rules of the settings a [`super::Policy`] is built from: [`SecurityConfig::validate`], its
//! errors, [`Secret`], and reading the public key file.
//!
//! Each field is an option of `ringcast serve` ([`crate::config::Config::security`]), declared
//! with its default in the one table of options (`src/config/options.rs`): the flag, the
//! `RINGCAST_*` variable and the TOML key carry the field's name.
//!
//! `auth_jwt_secret` is `--auth-jwt-secret`, `RINGCAST_AUTH_JWT_SECRET`, `auth_jwt_secret = ...`;
//! [`SecurityConfigError`] names the field it refuses so the loader can attach where the value
//! came from.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use thiserror::Error;

use super::auth::{AuthMode, Verifier};
use crate::config::format_duration;

/// Shortest HMAC secret. RFC 7518 §3.2: "A key of the same size as the hash output (for
/// instance, 256 bits for "HS256") or larger MUST be used with this algorithm."
pub const MIN_JWT_SECRET_BYTES: usize = 32;

/// Largest clock-skew leeway on `exp`/`nbf`. RFC 7519 §4.1.4: "usually no more than a few
/// minutes".
pub const MAX_AUTH_LEEWAY: Duration = Duration::from_secs(300);

/// A secret value: compared and cloned like a string, never shown by `Debug` (so a logged
/// [`SecurityConfig`] does not leak it).
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// Every security and abuse setting. Declared, with each field's default and doc, in the one
/// table of options ([`crate::config`]); its rules are [`SecurityConfig::validate`] here.
pub use crate::config::SecurityConfig;

/// Every way a [`SecurityConfig`] can be wrong; each names the field ([`Self::field`]). A
/// secret's value is never shown.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum SecurityConfigError {
    /// `auth` is on but no key is configured, so no token could ever verify.
    #[error("invalid auth = {}: needs auth_jwt_secret or auth_jwt_public_key", mode.as_str())]
    AuthWithoutKey {
        /// The mode.
        mode: AuthMode,
    },
    /// An HMAC secret shorter than [`MIN_JWT_SECRET_BYTES`]. The value is not shown.
    #[error("invalid auth_jwt_secret: must be at least {MIN_JWT_SECRET_BYTES} bytes, got {len} (RFC 7518 §3.2)")]
    ShortSecret {
        /// Its length in bytes.
        len: usize,
    },
    /// The public key cannot be read or is not a usable PEM public key.
    #[error("invalid auth_jwt_public_key{}: {problem}", path.as_ref().map_or_else(String::new, |p| format!(" = {:?}", p.display())))]
    PublicKey {
        /// The file, when the key came from one (not when the PEM text was passed in).
        path: Option<PathBuf>,
        /// Why it cannot be used.
        problem: String,
    },
    /// A value outside its allowed range.
    #[error("invalid {field} = {value}: must be {allowed}")]
    OutOfRange {
        /// The field.
        field: &'static str,
        /// The value, formatted as the user would write it.
        value: String,
        /// The allowed range, in words.
        allowed: String,
    },
}

impl SecurityConfigError {
    /// The [`SecurityConfig`] field refused (the future option's key).
    pub fn field(&self) -> &'static str {
        match self {
            SecurityConfigError::AuthWithoutKey { .. } => "auth",
            SecurityConfigError::ShortSecret { .. } => "auth_jwt_secret",
            SecurityConfigError::PublicKey { .. } => "auth_jwt_public_key",
            SecurityConfigError::OutOfRange { field, .. } => field,
        }
    }
}

impl SecurityConfig {
    /// Checks the rules between and within fields. Does no I/O: the public key file is read
    /// and checked by [`super::Policy::from_config`] (or [`read_public_key`]).
    pub fn validate(&self) -> Result<(), SecurityConfigError> {
        self.check(self.auth_jwt_public_key.is_some())
    }

    /// [`Self::validate`], with `has_public_key` saying whether a public key is at hand (a file
    /// named, or PEM text passed to [`super::Policy::new`]).
    pub(crate) fn check(&self, has_public_key: bool) -> Result<(), SecurityConfigError> {
        if let Some(secret) = &self.auth_jwt_secret {
            if secret.0.len() < MIN_JWT_SECRET_BYTES {
                return Err(SecurityConfigError::ShortSecret {
                    len: secret.0.len(),
                });
            }
        }
        if self.auth != AuthMode::Off && self.auth_jwt_secret.is_none() && !has_public_key {
            return Err(SecurityConfigError::AuthWithoutKey { mode: self.auth });
        }
        if self.auth_leeway > MAX_AUTH_LEEWAY {
            return Err(SecurityConfigError::OutOfRange {
                field: "auth_leeway",
                value: format_duration(self.auth_leeway),
                allowed: format!("at most {}", format_duration(MAX_AUTH_LEEWAY)),
            });
        }
        if self.message_rate_strikes == 0 {
            return Err(SecurityConfigError::OutOfRange {
                field: "message_rate_strikes",
                value: "0".to_owned(),
                allowed: "at least 1".to_owned(),
            });
        }
        if self.message_rate_grace.is_zero() {
            return Err(SecurityConfigError::OutOfRange {
                field: "message_rate_grace",
                value: format_duration(self.message_rate_grace),
                allowed: "longer than 0s".to_owned(),
            });
        }
        // Invariant: an enabled bucket has room for at least one token, or it would refuse all.
        for (rate_field, rate, burst_field, burst) in [
            (
                "handshake_rate",
                self.handshake_rate,
                "handshake_burst",
                self.handshake_burst,
            ),
            (
                "message_rate",
                self.message_rate,
                "message_burst",
                self.message_burst,
            ),
        ] {
            if rate > 0 && burst == 0 {
                return Err(SecurityConfigError::OutOfRange {
                    field: burst_field,
                    value: burst.to_string(),
                    allowed: format!("at least 1 while {rate_field} is on"),
                });
            }
        }
        Ok(())
    }
}

/// Reads and checks a PEM public key file (the one I/O of this module, done at start-up).
pub fn read_public_key(path: &Path) -> Result<Vec<u8>, SecurityConfigError> {
    let refuse = |problem: String| SecurityConfigError::PublicKey {
        path: Some(path.to_path_buf()),
        problem,
    };
    let pem = std::fs::read(path).map_err(|e| refuse(format!("cannot read it: {e}")))?;
    Verifier::new(None, Some(&pem), 0).map_err(|e| refuse(e.to_string()))?;
    Ok(pem)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "0123456789abcdef0123456789abcdef";

    #[test]
    fn the_defaults_are_everything_off_but_safe_bounds() {
        let c = SecurityConfig::default();
        assert_eq!(c.auth, AuthMode::Off);
        assert!(c.auth_jwt_secret.is_none() && c.auth_jwt_public_key.is_none());
        assert_eq!(c.auth_leeway, Duration::from_secs(30));
        assert!(c.allowed_origins.is_empty() && !c.require_origin);
        assert!(c.allow_cidr.is_empty() && c.deny_cidr.is_empty() && c.trusted_proxies.is_empty());
        assert_eq!(
            (
                c.max_connections_per_ip,
                c.handshake_rate,
                c.handshake_burst
            ),
            (0, 0, 10)
        );
        assert_eq!(
            (c.message_rate, c.message_burst, c.message_bytes_rate),
            (0, 100, 0)
        );
        assert_eq!(c.message_rate_strikes, 16);
        assert_eq!(c.message_rate_grace, Duration::from_secs(5));
        assert_eq!(c.validate(), Ok(()));
    }

    #[test]
    fn auth_on_without_a_key_names_auth() {
        let config = SecurityConfig {
            auth: AuthMode::Required,
            ..SecurityConfig::default()
        };
        let err = config.validate().unwrap_err();
        assert_eq!(err.field(), "auth");
        assert_eq!(
            err.to_string(),
            "invalid auth = required: needs auth_jwt_secret or auth_jwt_public_key"
        );
        for key in [
            SecurityConfig {
                auth_jwt_secret: Some(Secret(SECRET.into())),
                ..config.clone()
            },
            SecurityConfig {
                auth: AuthMode::Optional,
                auth_jwt_public_key: Some("key.pem".into()),
                ..config.clone()
            },
        ] {
            assert_eq!(key.validate(), Ok(()));
        }
    }

    #[test]
    fn a_short_secret_is_refused_without_showing_it() {
        let config = SecurityConfig {
            auth_jwt_secret: Some(Secret("hunter2".into())),
            ..SecurityConfig::default()
        };
        let err = config.validate().unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid auth_jwt_secret: must be at least 32 bytes, got 7 (RFC 7518 §3.2)"
        );
        assert_eq!(err.field(), "auth_jwt_secret");
        assert!(!format!("{err:?}").contains("hunter2"));
        assert!(!format!("{config:?}").contains("hunter2"));
    }

    #[test]
    fn an_unreadable_public_key_file_names_the_field_and_the_file() {
        let err = read_public_key(Path::new("/nonexistent/key.pem")).unwrap_err();
        assert_eq!(err.field(), "auth_jwt_public_key");
        assert!(
            err.to_string().starts_with(
                "invalid auth_jwt_public_key = \"/nonexistent/key.pem\": cannot read it"
            ),
            "{err}"
        );
    }

    #[test]
    fn a_rate_with_a_zero_burst_is_refused() {
        let config = SecurityConfig {
            message_rate: 10,
            message_burst: 0,
            ..SecurityConfig::default()
        };
        assert_eq!(
            config.validate().unwrap_err().to_string(),
            "invalid message_burst = 0: must be at least 1 while message_rate is on"
        );
        let config = SecurityConfig {
            handshake_rate: 1,
            handshake_burst: 0,
            ..SecurityConfig::default()
        };
        assert_eq!(config.validate().unwrap_err().field(), "handshake_burst");
        // A zero burst with the rate off is harmless.
        let config = SecurityConfig {
            message_burst: 0,
            ..SecurityConfig::default()
        };
        assert_eq!(config.validate(), Ok(()));
    }

    #[test]
    fn the_leeway_is_at_most_five_minutes() {
        let at = |secs| SecurityConfig {
            auth_leeway: Duration::from_secs(secs),
            ..SecurityConfig::default()
        };
        assert_eq!(
            at(360).validate().unwrap_err().to_string(),
            "invalid auth_leeway = 6m: must be at most 5m"
        );
        assert_eq!(at(300).validate(), Ok(()));
    }

    #[test]
    fn strikes_and_grace_must_be_positive() {
        let config = SecurityConfig {
            message_rate_strikes: 0,
            ..SecurityConfig::default()
        };
        assert_eq!(
            config.validate().unwrap_err().to_string(),
            "invalid message_rate_strikes = 0: must be at least 1"
        );
        let config = SecurityConfig {
            message_rate_grace: Duration::ZERO,
            ..SecurityConfig::default()
        };
        assert_eq!(
            config.validate().unwrap_err().to_string(),
            "invalid message_rate_grace = 0s: must be longer than 0s"
        );
    }
}
