//! The `ringcast-bench` binary: the command line → [`ringcast_load::run`] → an exit code.
//!
//! Owns process concerns only: parsing (clap), printing a run's error, and the exit status.
//! Exit codes: 0 the run finished and nothing went wrong; 3 the run finished but the server
//! closed connections, connections failed or messages were lost (the report's last line says
//! which); 1 the run could not be made (bad target, no connection at all, I/O); 2 a bad command
//! line (clap).

use std::process::ExitCode;

use clap::Parser;
use ringcast_load::BenchArgs;

/// The run could not be made.
const EXIT_ERROR: u8 = 1;
/// The run finished, and its report names what went wrong.
const EXIT_PROBLEMS: u8 = 3;

fn main() -> ExitCode {
    match ringcast_load::run(BenchArgs::parse()) {
        Ok(Some(report)) if !report.problems.is_empty() => ExitCode::from(EXIT_PROBLEMS),
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ringcast-bench: {e}");
            ExitCode::from(EXIT_ERROR)
        }
    }
}
