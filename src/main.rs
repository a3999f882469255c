//! The `ringcast` binary: command line and `RINGCAST_*` environment → [`Config`] → logging → server.
//!
//! Owns process concerns only: the global allocator, exit codes, and printing errors. It must never
//! make a protocol or configuration decision of its own: `ringcast::cli` parses, `ringcast::config`
//! merges and validates, `ringcast::driver` serves.
//!
//! Exit codes: 0 success (and `--help`, `--version`, `--print-config`); 1 the server failed;
//! 2 the command line or configuration is wrong (clap uses 2 for usage errors too).

use std::io::Write;
use std::process::ExitCode;

use ringcast::cli::{self, Command, ServeArgs};
use ringcast::logging;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The configuration (or `RUST_LOG`) is wrong: the user must fix it before anything can run.
const EXIT_CONFIG: u8 = 2;
/// The server could not start or failed while running.
const EXIT_FAILURE: u8 = 1;

fn main() -> ExitCode {
    match cli::parse().command {
        Command::Serve(args) => serve(&args),
    }
}

fn serve(args: &ServeArgs) -> ExitCode {
    let config = match args.load_config() {
        Ok(config) => config,
        Err(e) => {
            eprintln!("ringcast: {e}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    if args.print_config {
        let mut out = std::io::stdout().lock();
        return match out
            .write_all(config.to_toml().as_bytes())
            .and_then(|()| out.flush())
        {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("ringcast: cannot write the configuration: {e}");
                ExitCode::from(EXIT_FAILURE)
            }
        };
    }
    // Reads and checks `auth_jwt_public_key`: a key that cannot be used is a configuration error.
    let policy = match ringcast::security::Policy::from_config(&config.security) {
        Ok(policy) => policy,
        Err(e) => {
            eprintln!("ringcast: {e}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    if let Err(e) = logging::init(config.log_format) {
        eprintln!("ringcast: {e}");
        return ExitCode::from(EXIT_CONFIG);
    }
    for (name, guess) in ringcast::config::unknown_env_vars(std::env::vars_os().map(|(k, _)| k)) {
        match guess {
            Some(key) => tracing::warn!(
                variable = %name,
                "unknown RINGCAST_* variable ignored (did you mean {}?)",
                key.env_var()
            ),
            None => tracing::warn!(variable = %name, "unknown RINGCAST_* variable ignored"),
        }
    }
    tracing::info!(
        listen = %config.listen,
        workers = config.workers,
        version = env!("CARGO_PKG_VERSION"),
        "starting"
    );
    match ringcast::driver::run(config, policy) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "server stopped");
            ExitCode::from(EXIT_FAILURE)
        }
    }
}
