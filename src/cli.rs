//! The command line: `ringcast serve [OPTIONS]`, `ringcast --version`, `ringcast --help`.
//!
//! Owns the clap definitions and the hand-over of flag values to [`Loader`]. Every option of
//! [`Config`] is a flag here, built from the one table of options ([`Key::spec`]) with clap's
//! builder API, so a new option needs nothing in this file. Flags are taken as text and parsed by
//! [`crate::config`], so a bad value is reported the same way whether it came from a flag, a
//! `RINGCAST_*` variable or the file. The
//! environment is read by [`Loader::env`], not by clap, so the loader knows which layer each
//! value came from. The help text shows every default, rendered from [`Config::default`] (the one
//! source of defaults), next to the option's environment variable.
//!
//! It must never start the server or set up logging: `main` does that with what this returns.

use std::ffi::OsString;

use clap::{Arg, ArgMatches, Args, CommandFactory, FromArgMatches, Parser, Subcommand};

use crate::config::{Config, ConfigError, Key, Loader};

/// `ringcast`: the top-level command line.
#[derive(Debug, Parser)]
#[command(name = "ringcast", version, about, propagate_version = true)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the WebSocket server.
    ///
    /// Every option is also a RINGCAST_* environment variable and a key of the --config file
    /// (the key is the option name with underscores: max_frame_size). Precedence: flag >
    /// environment > file > default. Durations read "30s", "500ms", "2m", "1m30s" or a bare
    /// number of seconds; sizes read "16MiB", "8KiB" or a bare number of bytes.
    Serve(ServeArgs),
}

/// Options of `ringcast serve`: the config file, `--print-config`, and one flag per option of
/// the table ([`OptionFlags`]); [`ServeArgs::load_config`] turns them into a [`Config`].
#[derive(Debug, Default, Args)]
pub struct ServeArgs {
    /// TOML file with any of the keys below (see --print-config for the format).
    #[arg(long, value_name = "FILE", env = "RINGCAST_CONFIG")]
    pub config: Option<std::path::PathBuf>,
    /// Print the effective configuration (all layers merged, validated) as TOML and exit.
    #[arg(long)]
    pub print_config: bool,
    /// The option flags, as given.
    #[command(flatten)]
    pub options: OptionFlags,
}

/// The text given to each option's flag, kept raw (see the module doc). Its clap arguments are
/// built from the table of options ([`Key::spec`]): one `--flag` per [`Key`], under the option's
/// help group, its help ending in the default and the variable.
#[derive(Debug, Default, Clone)]
pub struct OptionFlags {
    /// Indexed by [`Key::index`].
    values: Vec<Option<String>>,
}

impl OptionFlags {
    /// The text given to `--KEY`, if any.
    pub fn get(&self, key: Key) -> Option<&str> {
        self.values.get(key.index())?.as_deref()
    }
}

impl FromArgMatches for OptionFlags {
    fn from_arg_matches(matches: &ArgMatches) -> Result<Self, clap::Error> {
        let mut flags = OptionFlags::default();
        flags.update_from_arg_matches(matches)?;
        Ok(flags)
    }

    fn update_from_arg_matches(&mut self, matches: &ArgMatches) -> Result<(), clap::Error> {
        self.values.resize(Key::COUNT, None);
        for key in Key::ALL {
            if let Some(value) = matches.get_one::<String>(key.name()) {
                self.values[key.index()] = Some(value.clone());
            }
        }
        Ok(())
    }
}

impl clap::Args for OptionFlags {
    fn augment_args(mut cmd: clap::Command) -> clap::Command {
        let defaults = Config::default();
        for key in Key::ALL {
            let spec = key.spec();
            let mut arg = Arg::new(spec.name)
                .long(key.flag())
                .value_name((spec.value_name)())
                .help_heading(spec.group)
                .help(format!(
                    "{} [default: {}] [env: {}]",
                    spec.help,
                    help_default(&defaults, key),
                    key.env_var()
                ));
            if let Some(bare) = spec.bare_flag {
                arg = arg
                    .num_args(0..=1)
                    .require_equals(true)
                    .default_missing_value(bare);
            }
            cmd = cmd.arg(arg);
        }
        cmd
    }

    fn augment_args_for_update(cmd: clap::Command) -> clap::Command {
        Self::augment_args(cmd)
    }
}

impl ServeArgs {
    /// The text given to `--KEY` on the command line, if any.
    pub fn flag(&self, key: Key) -> Option<&str> {
        self.options.get(key)
    }

    /// Merges default, `--config` file, the process's `RINGCAST_*` variables and these flags
    /// (later wins), then validates.
    pub fn load_config(&self) -> Result<Config, ConfigError> {
        self.load_config_with(|name| std::env::var_os(name))
    }

    /// [`ServeArgs::load_config`] with the environment supplied by `env`.
    pub fn load_config_with(
        &self,
        env: impl Fn(&str) -> Option<OsString>,
    ) -> Result<Config, ConfigError> {
        let mut loader = Loader::new();
        if let Some(path) = &self.config {
            loader.file(path)?;
        }
        loader.env(env)?;
        loader.flags(
            Key::ALL
                .into_iter()
                .filter_map(|k| Some((k, self.flag(k)?))),
        )?;
        loader.build()
    }
}

/// The default of `key` as shown in `--help`: the declaration's `shown` text, or the rendered
/// default (`none` when empty).
fn help_default(defaults: &Config, key: Key) -> String {
    if let Some(shown) = key.spec().shown {
        return shown(defaults);
    }
    match defaults.render(key) {
        empty if empty.is_empty() => "none".to_owned(),
        value => value,
    }
}

/// The clap command; each `serve` option's help ends in its default and its variable.
pub fn command() -> clap::Command {
    Cli::command()
}

/// Parses `args` (program name first). On `--help`, `--version` or a usage error this returns
/// clap's error, whose `exit()` prints it and exits (0 for help/version, 2 otherwise).
pub fn try_parse_from<I, T>(args: I) -> Result<Cli, clap::Error>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    Cli::try_parse_from(args)
}

/// Parses the process's arguments, exiting on `--help`, `--version` or a usage error.
pub fn parse() -> Cli {
    try_parse_from(std::env::args_os()).unwrap_or_else(|e| e.exit())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn serve(args: &[&str]) -> ServeArgs {
        let argv = ["ringcast", "serve"].iter().chain(args);
        match try_parse_from(argv)
            .expect("arguments should parse")
            .command
        {
            Command::Serve(args) => args,
            #[allow(unreachable_patterns)] // other subcommands (bench) join later
            other => panic!("parsed as {other:?}"),
        }
    }

    #[test]
    fn the_clap_definition_is_consistent() {
        command().debug_assert();
    }

    #[test]
    fn every_key_has_a_flag_of_the_same_name() {
        for key in Key::ALL {
            let flag = format!("--{}=x", key.flag());
            assert_eq!(serve(&[&flag]).flag(key), Some("x"), "{key}");
        }
    }

    #[test]
    fn pin_alone_means_true() {
        assert_eq!(serve(&["--pin"]).flag(Key::Pin), Some("true"));
        assert_eq!(serve(&["--pin=false"]).flag(Key::Pin), Some("false"));
        assert_eq!(serve(&[]).flag(Key::Pin), None);
    }

    #[test]
    fn flags_override_the_environment() {
        let args = serve(&["--workers", "2"]);
        let env = |name: &str| match name {
            "RINGCAST_WORKERS" => Some("5".into()),
            "RINGCAST_BACKLOG" => Some("64".into()),
            _ => None,
        };
        let config = args.load_config_with(env).unwrap();
        assert_eq!((config.workers, config.backlog), (2, 64));
    }

    #[test]
    fn a_bad_flag_is_reported_as_coming_from_the_flag() {
        let err = serve(&["--sqpoll", "sometimes"])
            .load_config_with(|_| None)
            .unwrap_err();
        assert!(
            err.to_string()
                .starts_with("invalid sqpoll = \"sometimes\" (flag --sqpoll)"),
            "{err}"
        );
    }

    #[test]
    fn help_shows_each_default_rendered_from_config_default() {
        let mut cmd = command();
        let help = cmd
            .find_subcommand_mut("serve")
            .unwrap()
            .render_help()
            .to_string();
        assert!(
            help.contains("[default: 16MiB] [env: RINGCAST_MAX_FRAME_SIZE]"),
            "{help}"
        );
        assert!(
            help.contains("[default: none] [env: RINGCAST_SUBPROTOCOLS]"),
            "{help}"
        );
    }
}
