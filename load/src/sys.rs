//! Reading process facts from `/proc`: resident memory, CPU time, and the open-file limit.
//!
//! Owns the parsing of `/proc/PID/status`, `/proc/PID/stat` and `/proc/self/limits`. Never writes
//! anything and never uses `unsafe` (so no `getrusage`/`getrlimit`): everything comes from text.

use std::time::Duration;

/// Linux reports `utime`/`stime` in `USER_HZ` ticks, which the kernel fixes at 100 on every
/// architecture that exposes it to user space (`getconf CLK_TCK`).
const USER_HZ: u64 = 100;

/// Why a `/proc` fact could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ProcError {
    /// The file could not be read (no such process, or no permission).
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file did not contain the expected field.
    #[error("no {field} in {path}")]
    Field {
        /// The field looked for.
        field: &'static str,
        /// The file.
        path: String,
    },
}

fn read(path: String) -> Result<(String, String), ProcError> {
    match std::fs::read_to_string(&path) {
        Ok(text) => Ok((text, path)),
        Err(source) => Err(ProcError::Read { path, source }),
    }
}

/// The resident set size of process `pid` in bytes (`VmRSS` in `/proc/PID/status`).
pub fn rss_bytes(pid: u32) -> Result<u64, ProcError> {
    let (text, path) = read(format!("/proc/{pid}/status"))?;
    parse_vm_rss(&text).ok_or(ProcError::Field {
        field: "VmRSS",
        path,
    })
}

/// Parses `VmRSS:   1234 kB` out of a status file.
pub fn parse_vm_rss(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let mut parts = line["VmRSS:".len()..].split_whitespace();
    let value: u64 = parts.next()?.parse().ok()?;
    match parts.next()? {
        "kB" => Some(value * 1024),
        _ => None,
    }
}

/// User plus system CPU time consumed so far by process `pid` (`self` when `None`).
pub fn cpu_time(pid: Option<u32>) -> Result<Duration, ProcError> {
    let (text, path) = match pid {
        Some(pid) => read(format!("/proc/{pid}/stat"))?,
        None => read("/proc/self/stat".to_owned())?,
    };
    parse_stat_cpu(&text).ok_or(ProcError::Field {
        field: "utime/stime",
        path,
    })
}

/// Parses fields 14 and 15 (`utime`, `stime`) of a stat line. The command name (field 2) is in
/// parentheses and may contain spaces, so counting starts after the last `)`.
pub fn parse_stat_cpu(stat: &str) -> Option<Duration> {
    let after = &stat[stat.rfind(')')? + 1..];
    // `after` starts at field 3 (state); utime is field 14, i.e. index 11 here.
    let mut fields = after.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(Duration::from_millis((utime + stime) * 1000 / USER_HZ))
}

/// The soft limit on open files for this process, `None` when unlimited or unreadable.
pub fn open_file_limit() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/self/limits").ok()?;
    parse_open_file_limit(&text)
}

/// Parses the soft limit from the `Max open files` line of a limits file.
pub fn parse_open_file_limit(limits: &str) -> Option<u64> {
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line["Max open files".len()..]
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vm_rss_is_read_in_kilobytes() {
        let status = "Name:\tringcast\nVmPeak:\t  9000 kB\nVmRSS:\t    5120 kB\nThreads:\t1\n";
        assert_eq!(parse_vm_rss(status), Some(5120 * 1024));
        assert_eq!(parse_vm_rss("Name:\tx\n"), None);
    }

    #[test]
    fn cpu_time_skips_a_command_name_with_spaces_and_parens() {
        let stat = "42 (a (b) c) S 1 42 42 0 -1 4194304 100 0 0 0 250 50 0 0 20 0 1 0 1 1 1";
        assert_eq!(parse_stat_cpu(stat), Some(Duration::from_secs(3)));
    }

    #[test]
    fn this_process_has_a_resident_size_and_a_cpu_time() {
        assert!(rss_bytes(std::process::id()).unwrap() > 0);
        assert!(cpu_time(None).is_ok());
    }

    #[test]
    fn the_open_file_soft_limit_is_the_first_number() {
        let limits = "Limit                     Soft Limit           Hard Limit           Units\n\
                      Max open files            1024                 20000                files\n";
        assert_eq!(parse_open_file_limit(limits), Some(1024));
        let unlimited =
            "Max open files            unlimited            unlimited            files\n";
        assert_eq!(parse_open_file_limit(unlimited), None);
    }
}
