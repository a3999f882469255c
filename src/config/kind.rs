//! Value kinds: how one option's value is read from text (a flag, a `RINGCAST_*` variable) or
//! from TOML (the config file), and written back for `--print-config` and `serve --help`.
//!
//! A kind is a marker type implementing [`Kind<T>`] for the field type `T` it fills: [`Size`] and
//! [`Count`] both fill a `usize`, one in human units (`"16MiB"`), the other as a plain number.
//! Every read error names the key and the layer (through [`Reader`]). A kind must never check a
//! range (that is the option's `check` in [`super::options`]) and never print a secret: [`Secret`]
//! renders for the loader's own round trip only, and [`Kind::toml`] hides it.

use std::net::{AddrParseError, SocketAddr};
use std::num::ParseIntError;
use std::path::PathBuf;
use std::time::Duration;

use super::error::{ConfigError, ValueError};
use super::load::Provenance;
use super::units::{format_duration, format_size, parse_duration, parse_size};
use crate::room::stream::HistoryRule;
use crate::security::ip::Cidr;
use crate::security::origin::OriginPattern;

/// A value as it arrives from a layer.
#[derive(Clone, Copy)]
pub(super) enum Raw<'a> {
    /// From a flag or an environment variable.
    Text(&'a str),
    /// From the config file.
    Toml(&'a toml::Value),
}

fn toml_type(value: &toml::Value) -> &'static str {
    match value {
        toml::Value::String(_) => "a string",
        toml::Value::Integer(_) => "an integer",
        toml::Value::Float(_) => "a float",
        toml::Value::Boolean(_) => "a boolean",
        toml::Value::Datetime(_) => "a datetime",
        toml::Value::Array(_) => "an array",
        toml::Value::Table(_) => "a table",
    }
}

/// Reads one raw value for one key; every error names the key and its origin.
pub(super) struct Reader<'a> {
    pub(super) at: &'a Provenance,
}

impl Reader<'_> {
    fn wrong_type(&self, expected: &'static str, found: &toml::Value) -> ConfigError {
        ConfigError::WrongType {
            at: self.at.clone(),
            expected,
            found: toml_type(found),
        }
    }

    fn bad(&self, value: impl Into<String>, problem: impl Into<ValueError>) -> ConfigError {
        ConfigError::BadValue {
            at: self.at.clone(),
            value: value.into(),
            problem: Box::new(problem.into()),
        }
    }

    fn negative(&self, n: i64) -> ConfigError {
        ConfigError::OutOfRange {
            at: self.at.clone(),
            value: n.to_string(),
            allowed: "zero or more".to_owned(),
        }
    }

    fn text<'v>(&self, raw: Raw<'v>) -> Result<&'v str, ConfigError> {
        match raw {
            Raw::Text(s) => Ok(s),
            Raw::Toml(toml::Value::String(s)) => Ok(s),
            Raw::Toml(other) => Err(self.wrong_type("a string", other)),
        }
    }

    fn strings(&self, raw: Raw<'_>) -> Result<Vec<String>, ConfigError> {
        match raw {
            // Comma-separated; an empty string is the empty list.
            Raw::Text(s) => Ok(s
                .split(',')
                .map(str::trim)
                .filter(|p| !p.is_empty())
                .map(str::to_owned)
                .collect()),
            Raw::Toml(toml::Value::Array(items)) => items
                .iter()
                .map(|item| match item {
                    toml::Value::String(s) => Ok(s.clone()),
                    other => Err(self.wrong_type("an array of strings", other)),
                })
                .collect(),
            Raw::Toml(other) => Err(self.wrong_type("an array of strings", other)),
        }
    }

    /// A list whose entries each parse as `T`; `problem` says why an entry does not.
    fn parsed_list<T: std::str::FromStr>(
        &self,
        raw: Raw<'_>,
        problem: fn(String, T::Err) -> ValueError,
    ) -> Result<Vec<T>, ConfigError> {
        self.strings(raw)?
            .into_iter()
            .map(|entry| {
                entry
                    .parse()
                    .map_err(|e| self.bad(entry.clone(), problem(entry, e)))
            })
            .collect()
    }

    /// Text where an empty string means "not set".
    fn optional_text(&self, raw: Raw<'_>) -> Result<Option<String>, ConfigError> {
        let s = self.text(raw)?;
        Ok((!s.is_empty()).then(|| s.to_owned()))
    }
}

/// How values of one kind fill a field of type `T`.
pub(super) trait Kind<T> {
    /// On the command line, the flag alone (`--pin`) means this value; `None`: a value is needed.
    const BARE_FLAG: Option<&'static str> = None;

    /// The placeholder `serve --help` shows for the value (`SIZE`, `DURATION`, `close|drop`).
    fn value_name() -> String;

    /// Reads one value from a layer.
    fn read(r: &Reader<'_>, raw: Raw<'_>) -> Result<T, ConfigError>;

    /// The value as a flag or variable would give it (`"16MiB"`, `"30s"`, `"chat,v2"`, `"off"`).
    fn render(value: &T) -> String;

    /// The value as a TOML value for `--print-config`, or `None` when it must not be printed
    /// (a set secret).
    fn toml(value: &T) -> Option<toml::Value> {
        Some(toml::Value::String(Self::render(value)))
    }
}

/// Joins canonical texts with commas, as a flag takes a list.
fn join<T: ToString>(items: &[T]) -> String {
    items
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

fn toml_strings<T: ToString>(items: &[T]) -> toml::Value {
    toml::Value::Array(
        items
            .iter()
            .map(|i| toml::Value::String(i.to_string()))
            .collect(),
    )
}

/// `IP:PORT` (`127.0.0.1:8080`, `[::1]:8080`); a TOML string.
pub(super) struct Addr;

impl Kind<SocketAddr> for Addr {
    fn value_name() -> String {
        "ADDR".to_owned()
    }
    fn read(r: &Reader<'_>, raw: Raw<'_>) -> Result<SocketAddr, ConfigError> {
        let s = r.text(raw)?;
        s.trim().parse().map_err(|e: AddrParseError| r.bad(s, e))
    }
    fn render(value: &SocketAddr) -> String {
        value.to_string()
    }
}

/// An optional `IP:PORT`; empty means not set (off).
pub(super) struct OptAddr;

impl Kind<Option<SocketAddr>> for OptAddr {
    fn value_name() -> String {
        "ADDR".to_owned()
    }
    fn read(r: &Reader<'_>, raw: Raw<'_>) -> Result<Option<SocketAddr>, ConfigError> {
        match r.optional_text(raw)? {
            None => Ok(None),
            Some(s) => s
                .trim()
                .parse()
                .map(Some)
                .map_err(|e: AddrParseError| r.bad(s, e)),
        }
    }
    fn render(value: &Option<SocketAddr>) -> String {
        value.map_or_else(String::new, |a| a.to_string())
    }
}

/// A whole number (`usize`, `u32`); a TOML integer.
pub(super) struct Count;

impl<T> Kind<T> for Count
where
    T: std::str::FromStr<Err = ParseIntError> + ToString + Copy,
    i64: TryFrom<T>,
{
    fn value_name() -> String {
        "N".to_owned()
    }
    fn read(r: &Reader<'_>, raw: Raw<'_>) -> Result<T, ConfigError> {
        match raw {
            Raw::Text(s) => s.trim().parse().map_err(|e| r.bad(s, e)),
            // Parsing the decimal text gives the field's own range check and overflow message.
            Raw::Toml(toml::Value::Integer(n)) => n.to_string().parse().map_err(|e| {
                if *n < 0 {
                    r.negative(*n)
                } else {
                    r.bad(n.to_string(), e)
                }
            }),
            Raw::Toml(other) => Err(r.wrong_type("an integer", other)),
        }
    }
    fn render(value: &T) -> String {
        value.to_string()
    }
    fn toml(value: &T) -> Option<toml::Value> {
        Some(toml::Value::Integer(
            i64::try_from(*value).unwrap_or(i64::MAX),
        ))
    }
}

/// `true` or `false` (any case in text); a TOML boolean. The flag alone means `true`.
pub(super) struct Bool;

impl Kind<bool> for Bool {
    fn value_name() -> String {
        "BOOL".to_owned()
    }
    const BARE_FLAG: Option<&'static str> = Some("true");

    fn read(r: &Reader<'_>, raw: Raw<'_>) -> Result<bool, ConfigError> {
        match raw {
            Raw::Text(s) => match s.trim().to_ascii_lowercase().as_str() {
                "true" => Ok(true),
                "false" => Ok(false),
                _ => Err(r.bad(s, ValueError::Bool)),
            },
            Raw::Toml(toml::Value::Boolean(b)) => Ok(*b),
            Raw::Toml(other) => Err(r.wrong_type("true or false", other)),
        }
    }
    fn render(value: &bool) -> String {
        value.to_string()
    }
    fn toml(value: &bool) -> Option<toml::Value> {
        Some(toml::Value::Boolean(*value))
    }
}

/// Bytes in human units ([`parse_size`]); in TOML also an integer number of bytes.
pub(super) struct Size;

impl Kind<usize> for Size {
    fn value_name() -> String {
        "SIZE".to_owned()
    }
    fn read(r: &Reader<'_>, raw: Raw<'_>) -> Result<usize, ConfigError> {
        const EXPECTED: &str = "a size string such as \"16MiB\" or an integer number of bytes";
        match raw {
            Raw::Text(s) => parse_size(s).map_err(|e| r.bad(s, e)),
            Raw::Toml(toml::Value::String(s)) => parse_size(s).map_err(|e| r.bad(s, e)),
            Raw::Toml(toml::Value::Integer(n)) => usize::try_from(*n).map_err(|_| r.negative(*n)),
            Raw::Toml(other) => Err(r.wrong_type(EXPECTED, other)),
        }
    }
    fn render(value: &usize) -> String {
        format_size(*value)
    }
}

/// A duration in human units ([`parse_duration`]); in TOML also an integer number of seconds.
pub(super) struct Time;

impl Kind<Duration> for Time {
    fn value_name() -> String {
        "DURATION".to_owned()
    }
    fn read(r: &Reader<'_>, raw: Raw<'_>) -> Result<Duration, ConfigError> {
        const EXPECTED: &str = "a duration string such as \"30s\" or an integer number of seconds";
        match raw {
            Raw::Text(s) => parse_duration(s).map_err(|e| r.bad(s, e)),
            Raw::Toml(toml::Value::String(s)) => parse_duration(s).map_err(|e| r.bad(s, e)),
            Raw::Toml(toml::Value::Integer(n)) => u64::try_from(*n)
                .map(Duration::from_secs)
                .map_err(|_| r.negative(*n)),
            Raw::Toml(other) => Err(r.wrong_type(EXPECTED, other)),
        }
    }
    fn render(value: &Duration) -> String {
        format_duration(*value)
    }
}

/// `off`, or a duration as [`Time`].
pub(super) struct OffOrTime;

impl Kind<Option<Duration>> for OffOrTime {
    fn value_name() -> String {
        "off|DURATION".to_owned()
    }
    fn read(r: &Reader<'_>, raw: Raw<'_>) -> Result<Option<Duration>, ConfigError> {
        match raw {
            Raw::Text(s) if s.trim() == "off" => Ok(None),
            Raw::Toml(toml::Value::String(s)) if s.trim() == "off" => Ok(None),
            other => Time::read(r, other).map(Some),
        }
    }
    fn render(value: &Option<Duration>) -> String {
        value.map_or_else(|| "off".to_owned(), format_duration)
    }
}

/// A type with a fixed set of spellings (case-insensitive on input).
pub(super) trait Choices: Copy + PartialEq + 'static {
    /// Every value with its spelling.
    const CHOICES: &'static [(&'static str, Self)];
}

/// One word of a [`Choices`] type; a TOML string.
pub(super) struct OneOf;

impl<T: Choices> Kind<T> for OneOf {
    fn value_name() -> String {
        let names: Vec<&str> = T::CHOICES.iter().map(|(name, _)| *name).collect();
        names.join("|")
    }
    fn read(r: &Reader<'_>, raw: Raw<'_>) -> Result<T, ConfigError> {
        let s = r.text(raw)?;
        let wanted = s.trim().to_ascii_lowercase();
        T::CHOICES
            .iter()
            .find(|(name, _)| *name == wanted)
            .map(|(_, v)| *v)
            .ok_or_else(|| {
                let names: Vec<&str> = T::CHOICES.iter().map(|(name, _)| *name).collect();
                r.bad(
                    s,
                    ValueError::Choice {
                        allowed: names.join(", "),
                    },
                )
            })
    }
    fn render(value: &T) -> String {
        T::CHOICES
            .iter()
            .find(|(_, v)| v == value)
            .map_or("", |(name, _)| name)
            .to_owned()
    }
}

/// A list of words: comma-separated in text, an array of strings in TOML.
pub(super) struct Words;

impl Kind<Vec<String>> for Words {
    fn value_name() -> String {
        "LIST".to_owned()
    }
    fn read(r: &Reader<'_>, raw: Raw<'_>) -> Result<Vec<String>, ConfigError> {
        r.strings(raw)
    }
    fn render(value: &Vec<String>) -> String {
        value.join(",")
    }
    fn toml(value: &Vec<String>) -> Option<toml::Value> {
        Some(toml_strings(value))
    }
}

/// A list of CIDR blocks, written as [`Words`].
pub(super) struct Cidrs;

impl Kind<Vec<Cidr>> for Cidrs {
    fn value_name() -> String {
        "LIST".to_owned()
    }
    fn read(r: &Reader<'_>, raw: Raw<'_>) -> Result<Vec<Cidr>, ConfigError> {
        r.parsed_list(raw, |entry, problem| ValueError::Cidr { entry, problem })
    }
    fn render(value: &Vec<Cidr>) -> String {
        join(value)
    }
    fn toml(value: &Vec<Cidr>) -> Option<toml::Value> {
        Some(toml_strings(value))
    }
}

/// A list of origin patterns, written as [`Words`].
pub(super) struct Origins;

impl Kind<Vec<OriginPattern>> for Origins {
    fn value_name() -> String {
        "LIST".to_owned()
    }
    fn read(r: &Reader<'_>, raw: Raw<'_>) -> Result<Vec<OriginPattern>, ConfigError> {
        r.parsed_list(raw, |entry, problem| ValueError::Origin { entry, problem })
    }
    fn render(value: &Vec<OriginPattern>) -> String {
        join(value)
    }
    fn toml(value: &Vec<OriginPattern>) -> Option<toml::Value> {
        Some(toml_strings(value))
    }
}

/// A secret string; empty means not set. Never printed by `--print-config` (a comment says it
/// is set) and redacted by `Debug` ([`crate::security::Secret`]).
pub(super) struct Secret;

impl Kind<Option<crate::security::Secret>> for Secret {
    fn value_name() -> String {
        "SECRET".to_owned()
    }
    fn read(r: &Reader<'_>, raw: Raw<'_>) -> Result<Option<crate::security::Secret>, ConfigError> {
        Ok(r.optional_text(raw)?.map(crate::security::Secret))
    }
    fn render(value: &Option<crate::security::Secret>) -> String {
        value.as_ref().map_or_else(String::new, |s| s.0.clone())
    }
    fn toml(value: &Option<crate::security::Secret>) -> Option<toml::Value> {
        match value {
            Some(_) => None,
            None => Some(toml::Value::String(String::new())),
        }
    }
}

/// A list of secrets, written as [`Words`]; the empty list means none. Never printed by
/// `--print-config` when set, like [`Secret`].
pub(super) struct Secrets;

impl Kind<Vec<crate::security::Secret>> for Secrets {
    fn value_name() -> String {
        "SECRETS".to_owned()
    }
    fn read(r: &Reader<'_>, raw: Raw<'_>) -> Result<Vec<crate::security::Secret>, ConfigError> {
        // A TOML string is read like the flag's comma-separated text (the loader's own round
        // trip writes a set list that way, since `--print-config` never writes it at all).
        let raw = match raw {
            Raw::Toml(toml::Value::String(s)) => Raw::Text(s),
            other => other,
        };
        Ok(r.strings(raw)?
            .into_iter()
            .map(crate::security::Secret)
            .collect())
    }
    fn render(value: &Vec<crate::security::Secret>) -> String {
        value
            .iter()
            .map(|s| s.0.as_str())
            .collect::<Vec<_>>()
            .join(",")
    }
    fn toml(value: &Vec<crate::security::Secret>) -> Option<toml::Value> {
        value.is_empty().then(|| toml::Value::Array(Vec::new()))
    }
}

/// A file path; empty means not set.
pub(super) struct File;

impl Kind<Option<PathBuf>> for File {
    fn value_name() -> String {
        "FILE".to_owned()
    }
    fn read(r: &Reader<'_>, raw: Raw<'_>) -> Result<Option<PathBuf>, ConfigError> {
        Ok(r.optional_text(raw)?.map(PathBuf::from))
    }
    fn render(value: &Option<PathBuf>) -> String {
        value
            .as_ref()
            .map_or_else(String::new, |p| p.display().to_string())
    }
}

/// Per-room-prefix history rules: `prefix=size[/ttl]`, comma-separated, in text (`chat:=100/10m,
/// ticker:=0`); an array of `{prefix, size, ttl}` tables (`[[history_rooms]]`) in the file.
pub(super) struct HistoryRules;

impl HistoryRules {
    fn rule_from_text(r: &Reader<'_>, entry: &str) -> Result<HistoryRule, ConfigError> {
        let bad = |problem: String| {
            r.bad(
                entry,
                ValueError::HistoryRule {
                    entry: entry.to_owned(),
                    problem,
                },
            )
        };
        let (prefix, rest) = entry
            .rsplit_once('=')
            .ok_or_else(|| bad("no `=`".to_owned()))?;
        let (size, ttl) = match rest.split_once('/') {
            Some((size, ttl)) => (size, Some(ttl)),
            None => (rest, None),
        };
        let size = size
            .trim()
            .parse()
            .map_err(|e: ParseIntError| bad(format!("size: {e}")))?;
        let ttl = ttl
            .map(parse_duration)
            .transpose()
            .map_err(|e| bad(format!("ttl: {e}")))?;
        Ok(HistoryRule {
            prefix: prefix.to_owned(),
            size,
            ttl,
        })
    }

    fn rule_from_toml(r: &Reader<'_>, item: &toml::Value) -> Result<HistoryRule, ConfigError> {
        let toml::Value::Table(t) = item else {
            return Err(r.wrong_type("an array of {prefix, size, ttl} tables", item));
        };
        let entry = item.to_string();
        let bad = |problem: &str| {
            r.bad(
                entry.as_str(),
                ValueError::HistoryRule {
                    entry: entry.clone(),
                    problem: problem.to_owned(),
                },
            )
        };
        if let Some(k) = t
            .keys()
            .find(|k| !["prefix", "size", "ttl"].contains(&k.as_str()))
        {
            return Err(bad(&format!("unknown key `{k}`")));
        }
        let prefix = match t.get("prefix") {
            Some(toml::Value::String(p)) => p.clone(),
            _ => return Err(bad("`prefix` must be a string")),
        };
        let size = match t.get("size") {
            Some(toml::Value::Integer(n)) => {
                usize::try_from(*n).map_err(|_| bad("`size` must be zero or more"))?
            }
            _ => return Err(bad("`size` must be an integer")),
        };
        let ttl = match t.get("ttl") {
            None => None,
            Some(toml::Value::String(d)) => {
                Some(parse_duration(d).map_err(|e| bad(&format!("ttl: {e}")))?)
            }
            Some(toml::Value::Integer(n)) => Some(Duration::from_secs(
                u64::try_from(*n).map_err(|_| bad("`ttl` must be zero or more"))?,
            )),
            Some(_) => return Err(bad("`ttl` must be a duration string")),
        };
        Ok(HistoryRule { prefix, size, ttl })
    }
}

impl Kind<Vec<HistoryRule>> for HistoryRules {
    fn value_name() -> String {
        "PREFIX=N[/TTL],...".to_owned()
    }
    fn read(r: &Reader<'_>, raw: Raw<'_>) -> Result<Vec<HistoryRule>, ConfigError> {
        match raw {
            Raw::Text(s) => s
                .split(',')
                .map(str::trim)
                .filter(|e| !e.is_empty())
                .map(|entry| Self::rule_from_text(r, entry))
                .collect(),
            Raw::Toml(toml::Value::Array(items)) => items
                .iter()
                .map(|item| Self::rule_from_toml(r, item))
                .collect(),
            Raw::Toml(other) => Err(r.wrong_type("an array of {prefix, size, ttl} tables", other)),
        }
    }
    fn render(value: &Vec<HistoryRule>) -> String {
        join(value)
    }
    fn toml(value: &Vec<HistoryRule>) -> Option<toml::Value> {
        Some(toml::Value::Array(
            value
                .iter()
                .map(|rule| {
                    let mut t = toml::Table::new();
                    t.insert("prefix".into(), toml::Value::String(rule.prefix.clone()));
                    t.insert(
                        "size".into(),
                        toml::Value::Integer(i64::try_from(rule.size).unwrap_or(i64::MAX)),
                    );
                    if let Some(ttl) = rule.ttl {
                        t.insert("ttl".into(), toml::Value::String(format_duration(ttl)));
                    }
                    toml::Value::Table(t)
                })
                .collect(),
        ))
    }
}

/// A URL as text; empty means not set. Its scheme is the option's own rule.
pub(super) struct Url;

impl Kind<Option<String>> for Url {
    fn value_name() -> String {
        "URL".to_owned()
    }
    fn read(r: &Reader<'_>, raw: Raw<'_>) -> Result<Option<String>, ConfigError> {
        r.optional_text(raw)
    }
    fn render(value: &Option<String>) -> String {
        value.clone().unwrap_or_default()
    }
}
