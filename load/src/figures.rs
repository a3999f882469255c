//! How the report writes numbers for people: counts and rates with thousands separators,
//! latencies in µs below 10 ms and in ms from there on, ratios that say which way is better.
//!
//! Owns only formatting. Never rounds what the JSON report carries: JSON keeps raw figures
//! (latencies in microseconds, rates as floats) for machines.

/// Which way a ratio should move for the first side to be the better one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Better {
    /// Throughput-like: more is better.
    Higher,
    /// Latency-like: less is better.
    Lower,
}

/// `1234567` → `1,234,567`.
pub fn count(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, d) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(d);
    }
    out
}

/// `x` with `decimals` decimals and separators in its integer part: `12345.67, 1` → `12,345.7`.
/// Negative values keep their sign; non-finite ones print as Rust prints them.
pub fn decimal(x: f64, decimals: usize) -> String {
    if !x.is_finite() {
        return x.to_string();
    }
    let text = format!("{:.*}", decimals, x.abs());
    let (int, frac) = text.split_once('.').unwrap_or((&text, ""));
    let int: u64 = int.parse().unwrap_or(u64::MAX);
    let sign = if x < 0.0 && text.bytes().any(|b| b.is_ascii_digit() && b != b'0') {
        "-"
    } else {
        ""
    };
    match frac {
        "" => format!("{sign}{}", count(int)),
        frac => format!("{sign}{}.{frac}", count(int)),
    }
}

/// A rate or any figure shown whole: `123456.7` → `123,457`.
pub fn whole(x: f64) -> String {
    decimal(x, 0)
}

/// A latency given in microseconds: µs below 10 ms (one decimal below 100 µs, whole above), ms
/// from 10 ms on (one decimal below 100 ms, whole above). `45.25` → `45.2 µs`, `9876.4` →
/// `9,876 µs`, `12345` → `12.3 ms`, `1234567` → `1,235 ms`.
pub fn latency(us: f64) -> String {
    if us.round() < 10_000.0 {
        if (us * 10.0).round() < 1000.0 {
            format!("{} µs", decimal(us, 1))
        } else {
            format!("{} µs", whole(us))
        }
    } else {
        let ms = us / 1000.0;
        if (ms * 10.0).round() < 1000.0 {
            format!("{} ms", decimal(ms, 1))
        } else {
            format!("{} ms", whole(ms))
        }
    }
}

/// A ratio with its direction: `0.8512, Higher` → `0.85× (higher is better)`.
pub fn ratio(x: f64, better: Better) -> String {
    let way = match better {
        Better::Higher => "higher",
        Better::Lower => "lower",
    };
    format!("{}× ({way} is better)", decimal(x, 2))
}

/// `n` and `one` or `many` by `n`: `1 connection`, `102 connections`, with separators.
pub fn plural(n: u64, one: &str, many: &str) -> String {
    format!("{} {}", count(n), if n == 1 { one } else { many })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_get_a_separator_every_three_digits() {
        assert_eq!(count(0), "0");
        assert_eq!(count(999), "999");
        assert_eq!(count(1000), "1,000");
        assert_eq!(count(123_456), "123,456");
        assert_eq!(count(1_234_567), "1,234,567");
        assert_eq!(count(u64::MAX), "18,446,744,073,709,551,615");
    }

    #[test]
    fn decimals_keep_separators_in_the_integer_part_only() {
        assert_eq!(decimal(12_345.67, 1), "12,345.7");
        assert_eq!(decimal(999.96, 1), "1,000.0");
        assert_eq!(decimal(0.5, 2), "0.50");
        assert_eq!(decimal(-1234.5, 1), "-1,234.5");
        assert_eq!(decimal(-0.01, 1), "0.0", "no negative zero");
        assert_eq!(whole(123_456.7), "123,457");
    }

    #[test]
    fn latencies_are_in_microseconds_below_10_ms_and_in_milliseconds_from_there() {
        assert_eq!(latency(0.4), "0.4 µs");
        assert_eq!(latency(45.25), "45.2 µs");
        assert_eq!(latency(99.94), "99.9 µs");
        assert_eq!(latency(99.96), "100 µs");
        assert_eq!(latency(100.0), "100 µs");
        assert_eq!(latency(812.4), "812 µs");
        assert_eq!(latency(9_876.4), "9,876 µs");
        assert_eq!(latency(9_999.4), "9,999 µs");
        // The boundary is taken after rounding: never "10,000 µs".
        assert_eq!(latency(9_999.6), "10.0 ms");
        assert_eq!(latency(10_000.0), "10.0 ms");
        assert_eq!(latency(12_345.0), "12.3 ms");
        assert_eq!(latency(99_940.0), "99.9 ms");
        assert_eq!(latency(99_960.0), "100 ms");
        assert_eq!(latency(150_000.0), "150 ms");
        assert_eq!(latency(1_234_567.0), "1,235 ms");
    }

    #[test]
    fn every_ratio_says_which_way_is_better() {
        assert_eq!(ratio(0.8512, Better::Higher), "0.85× (higher is better)");
        assert_eq!(ratio(2.0, Better::Lower), "2.00× (lower is better)");
        assert_eq!(ratio(1234.5, Better::Lower), "1,234.50× (lower is better)");
    }

    #[test]
    fn plurals_follow_the_count() {
        assert_eq!(plural(1, "connection", "connections"), "1 connection");
        assert_eq!(plural(0, "connection", "connections"), "0 connections");
        assert_eq!(
            plural(1200, "connection", "connections"),
            "1,200 connections"
        );
    }
}
