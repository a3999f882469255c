//! Human units: durations (`"30s"`, `"1m30s"`, `"500ms"`, a bare number of seconds) and sizes
//! (`"16MiB"`, `"8KiB"`, a bare number of bytes), parsed and written back so that writing then
//! reading gives the same value.
//!
//! Pure functions over text; it must never know about keys, layers or where a value came from
//! (that is [`super::kind`] and [`super::load`]).

use std::time::Duration;

/// One kibibyte.
pub const KIB: usize = 1024;
/// One mebibyte.
pub const MIB: usize = 1024 * KIB;

/// Why a duration string does not parse.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    /// Nothing but whitespace.
    #[error("empty duration")]
    Empty,
    /// A unit with no number before it, or a non-digit where a number belongs.
    #[error("expected a number at `{0}`")]
    MissingNumber(String),
    /// A unit other than `ns`, `us`, `ms`, `s`, `m`, `h`.
    #[error("unknown unit `{0}` (use ns, us, ms, s, m or h, e.g. 30s, 500ms, 1m30s)")]
    UnknownUnit(String),
    /// More than `Duration` can hold.
    #[error("duration too large")]
    Overflow,
}

/// Why a size string does not parse.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SizeError {
    /// Nothing but whitespace.
    #[error("empty size")]
    Empty,
    /// No whole number at the start.
    #[error("expected a whole number of bytes, optionally with a unit (e.g. 16MiB, 8KiB, 1024)")]
    MissingNumber,
    /// A unit other than `B`, `KiB`, `MiB`, `GiB`, `KB`, `MB`, `GB`.
    #[error("unknown unit `{0}` (use B, KiB, MiB, GiB, or decimal KB, MB, GB)")]
    UnknownUnit(String),
    /// More than `usize` can hold.
    #[error("size too large")]
    Overflow,
}

/// Parses a duration: a bare whole number of seconds (`"30"`), or one or more `<number><unit>`
/// groups with units `ns`, `us`, `ms`, `s`, `m`, `h` (`"500ms"`, `"2m"`, `"1m30s"`).
pub fn parse_duration(text: &str) -> Result<Duration, DurationError> {
    let text = text.trim();
    if text.is_empty() {
        return Err(DurationError::Empty);
    }
    if text.bytes().all(|b| b.is_ascii_digit()) {
        return text
            .parse::<u64>()
            .map(Duration::from_secs)
            .map_err(|_| DurationError::Overflow);
    }
    let mut rest = text;
    let mut total = Duration::ZERO;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(DurationError::MissingNumber(rest.to_owned()));
        }
        let number: u64 = rest[..digits]
            .parse()
            .map_err(|_| DurationError::Overflow)?;
        rest = &rest[digits..];
        let unit_len = rest.bytes().take_while(u8::is_ascii_alphabetic).count();
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        let part = match unit {
            "ns" => Some(Duration::from_nanos(number)),
            "us" => Some(Duration::from_micros(number)),
            "ms" => Some(Duration::from_millis(number)),
            "s" => Some(Duration::from_secs(number)),
            "m" => number.checked_mul(60).map(Duration::from_secs),
            "h" => number.checked_mul(3600).map(Duration::from_secs),
            // A number not followed by a unit inside a compound ("1m30") is ambiguous.
            _ => return Err(DurationError::UnknownUnit(unit.to_owned())),
        };
        total = part
            .and_then(|p| total.checked_add(p))
            .ok_or(DurationError::Overflow)?;
    }
    Ok(total)
}

/// Writes a duration the way [`parse_duration`] reads it, with the largest units first
/// (`"1m30s"`, `"500ms"`, `"0s"`). `parse_duration(&format_duration(d)) == Ok(d)` for every `d`.
pub fn format_duration(d: Duration) -> String {
    if d.is_zero() {
        return "0s".to_owned();
    }
    let secs = d.as_secs();
    let nanos = d.subsec_nanos();
    let parts = [
        (secs / 3600, "h"),
        (secs / 60 % 60, "m"),
        (secs % 60, "s"),
        (u64::from(nanos / 1_000_000), "ms"),
        (u64::from(nanos / 1_000 % 1_000), "us"),
        (u64::from(nanos % 1_000), "ns"),
    ];
    let mut out = String::new();
    for (n, unit) in parts {
        if n != 0 {
            out.push_str(&n.to_string());
            out.push_str(unit);
        }
    }
    out
}

/// Parses a size in bytes: a bare whole number (`"1024"`), or a number and a unit, case-insensitive,
/// optionally separated by a space: binary `B`, `KiB`, `MiB`, `GiB`, or decimal `KB`, `MB`, `GB`.
pub fn parse_size(text: &str) -> Result<usize, SizeError> {
    let text = text.trim();
    if text.is_empty() {
        return Err(SizeError::Empty);
    }
    let digits = text.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 {
        return Err(SizeError::MissingNumber);
    }
    let number: usize = text[..digits].parse().map_err(|_| SizeError::Overflow)?;
    let unit = text[digits..].trim_start();
    let multiplier: usize = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kib" => KIB,
        "mib" => MIB,
        "gib" => 1024 * MIB,
        "kb" => 1000,
        "mb" => 1_000_000,
        "gb" => 1_000_000_000,
        _ => return Err(SizeError::UnknownUnit(unit.to_owned())),
    };
    number.checked_mul(multiplier).ok_or(SizeError::Overflow)
}

/// Writes a size the way [`parse_size`] reads it, in the largest binary unit that divides it
/// exactly (`"16MiB"`, `"8KiB"`, `"1000B"`). `parse_size(&format_size(n)) == Ok(n)` for every `n`.
pub fn format_size(bytes: usize) -> String {
    const UNITS: [(usize, &str); 3] = [(1024 * MIB, "GiB"), (MIB, "MiB"), (KIB, "KiB")];
    for (unit, name) in UNITS {
        if bytes != 0 && bytes % unit == 0 {
            return format!("{}{name}", bytes / unit);
        }
    }
    format!("{bytes}B")
}
