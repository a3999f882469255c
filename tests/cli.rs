//! The `ringcast` binary as a user meets it: flags, `RINGCAST_*` variables and a `--config` file,
//! merged with flag > environment > file > default, observed through `serve --print-config`; every
//! invalid value refused with exit status 2 and a message naming the key and where it came from.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use ringcast::config::{Config, Key};

/// Runs the built binary with only the given `RINGCAST_*` variables (and no `RUST_LOG`).
fn ringcast(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ringcast"));
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("RINGCAST_") {
            cmd.env_remove(name);
        }
    }
    cmd.env_remove("RUST_LOG");
    cmd.args(args).envs(env.iter().copied());
    cmd.output().expect("the ringcast binary runs")
}

/// Writes `contents` to a file named `name` in this test binary's scratch directory.
fn config_file(name: &str, contents: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("ringcast-cli-tests");
    std::fs::create_dir_all(&dir).expect("scratch directory");
    let path = dir.join(name);
    std::fs::write(&path, contents).expect("write config file");
    path
}

fn stdout(out: &Output) -> String {
    String::from_utf8(out.stdout.clone()).expect("stdout is UTF-8")
}

fn stderr(out: &Output) -> String {
    String::from_utf8(out.stderr.clone()).expect("stderr is UTF-8")
}

/// Runs `serve --print-config` and parses what it prints.
fn effective(args: &[&str], env: &[(&str, &str)]) -> toml::Table {
    let mut argv = vec!["serve", "--print-config"];
    argv.extend_from_slice(args);
    let out = ringcast(&argv, env);
    assert_eq!(out.status.code(), Some(0), "stderr: {}", stderr(&out));
    stdout(&out).parse().expect("--print-config prints TOML")
}

fn string(s: &str) -> toml::Value {
    toml::Value::String(s.to_owned())
}

#[test]
fn version_prints_the_name_and_crate_version() {
    let out = ringcast(&["--version"], &[]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        stdout(&out),
        format!("ringcast {}\n", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn print_config_with_nothing_set_prints_the_defaults() {
    let out = ringcast(&["serve", "--print-config"], &[]);
    assert_eq!(out.status.code(), Some(0), "stderr: {}", stderr(&out));
    assert_eq!(stdout(&out), Config::default().to_toml());
}

#[test]
fn a_flag_beats_the_environment_which_beats_the_file_which_beats_the_default() {
    let file = config_file(
        "precedence.toml",
        r#"
listen = "0.0.0.0:9000"
workers = 3
idle_timeout = "90s"
max_frame_size = "1MiB"
subprotocols = ["from-file"]
log_format = "json"
"#,
    );
    let config = effective(
        &[
            "--config",
            file.to_str().unwrap(),
            "--listen",
            "127.0.0.2:9002",
            "--subprotocols",
            "from-flag",
        ],
        &[
            ("RINGCAST_LISTEN", "[::1]:9001"),
            ("RINGCAST_IDLE_TIMEOUT", "2m"),
            ("RINGCAST_SUBPROTOCOLS", "env-a,env-b"),
            ("RINGCAST_SQPOLL", "2ms"),
        ],
    );
    // flag > env > file
    assert_eq!(config["listen"], string("127.0.0.2:9002"));
    assert_eq!(
        config["subprotocols"],
        toml::Value::Array(vec![string("from-flag")])
    );
    // env > file, env > default
    assert_eq!(config["idle_timeout"], string("2m"));
    assert_eq!(config["sqpoll"], string("2ms"));
    // file > default
    assert_eq!(config["workers"], toml::Value::Integer(3));
    assert_eq!(config["max_frame_size"], string("1MiB"));
    assert_eq!(config["log_format"], string("json"));
    // default
    assert_eq!(config["ping_interval"], string("30s"));
    assert_eq!(config["max_message_size"], string("16MiB"));
}

#[test]
fn the_config_file_may_be_named_by_ringcast_config() {
    let file = config_file("from-env.toml", "backlog = 77\n");
    let config = effective(&[], &[("RINGCAST_CONFIG", file.to_str().unwrap())]);
    assert_eq!(config["backlog"], toml::Value::Integer(77));
}

#[test]
fn print_config_output_is_accepted_back_as_a_config_file_unchanged() {
    let first = ringcast(
        &[
            "serve",
            "--print-config",
            "--listen=[::]:443",
            "--pin",
            "--subprotocols=chat,v2.chat",
            "--sqpoll=1ms",
            "--max-frame-size=64KiB",
            "--max-message-size=1000000",
            "--idle-timeout=1h1m1s",
            "--log-format=json",
        ],
        &[],
    );
    assert_eq!(first.status.code(), Some(0), "stderr: {}", stderr(&first));
    let file = config_file("round-trip.toml", &stdout(&first));
    let second = ringcast(
        &[
            "serve",
            "--print-config",
            "--config",
            file.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(second.status.code(), Some(0), "stderr: {}", stderr(&second));
    assert_eq!(stdout(&second), stdout(&first));
}

/// Where an invalid value is given.
#[derive(Clone, Copy)]
enum Via {
    Flag,
    Env,
    File,
}

#[test]
fn every_invalid_value_exits_2_naming_the_key_and_where_it_came_from() {
    use Via::*;
    // (layer, key, value: text for flag/env, a TOML value for the file)
    let cases = [
        (Flag, Key::Listen, "localhost"),
        (Env, Key::Workers, "0"),
        (Flag, Key::Pin, "maybe"),
        (File, Key::MaxHeaderBytes, "\"512B\""),
        (Flag, Key::MaxHeaders, "2"),
        (Env, Key::MaxFrameSize, "16M"),
        (Flag, Key::MaxMessageSize, "100"),
        (Env, Key::Subprotocols, "a b"),
        (File, Key::HandshakeTimeout, "0"),
        (Flag, Key::PingInterval, "2h"),
        (Env, Key::IdleTimeout, "soon"),
        (Flag, Key::CloseTimeout, "5 s"),
        (File, Key::DrainTimeout, "-1"),
        (Flag, Key::MaxBackpressure, "0"),
        (Env, Key::BackpressurePolicy, "block"),
        (Flag, Key::MaxConnections, "lots"),
        (Env, Key::ReadBufferSize, "8"),
        (File, Key::RingEntries, "300"),
        (Flag, Key::Sqpoll, "on"),
        (Env, Key::Backlog, "0"),
        (File, Key::LogFormat, "\"xml\""),
        (Flag, Key::MaxRoomsPerConnection, "0"),
        (Env, Key::MaxRoomMembers, "many"),
        (File, Key::MaxRoomNameLen, "5000"),
        (Flag, Key::MaxPayloadSize, "32MiB"),
        (Env, Key::MaxEnvelopeErrors, "0"),
        (Flag, Key::PublishRequiresJoin, "sometimes"),
        (File, Key::ReusePort, "\"yes\""),
        (Env, Key::Cluster, "localhost:6379"),
        (Flag, Key::Compression, "zstd"),
        (Env, Key::CompressionMinSize, "32MiB"),
        (File, Key::CompressionLevel, "10"),
        (Flag, Key::CompressionWindowBits, "8"),
        (Flag, Key::Auth, "maybe"),
        (Env, Key::AuthJwtSecret, "short"),
        (
            File,
            Key::AuthJwtPublicKey,
            "\"/nonexistent/ringcast-key.pem\"",
        ),
        (Flag, Key::AuthLeeway, "10m"),
        (Env, Key::AllowedOrigins, "ftp://x.example.com"),
        (File, Key::RequireOrigin, "\"yes\""),
        (Flag, Key::AllowCidr, "10.0.0.1/8"),
        (Env, Key::DenyCidr, "300.1.1.1"),
        (File, Key::TrustedProxies, "[\"::1/129\"]"),
        (Flag, Key::MaxConnectionsPerIp, "-1"),
        (Env, Key::HandshakeRate, "fast"),
        (File, Key::HandshakeBurst, "-5"),
        (Flag, Key::MessageRate, "1.5"),
        (Env, Key::MessageBurst, "x"),
        (File, Key::MessageBytesRate, "\"1 parsec\""),
        (Flag, Key::MessageRateStrikes, "0"),
        (Env, Key::MessageRateGrace, "0s"),
        (File, Key::HistorySize, "-3"),
        (Flag, Key::HistoryTtl, "0s"),
        (Env, Key::HistoryMaxBytes, "100"),
        (Flag, Key::HistoryRooms, "chat:"),
        (File, Key::MaxRecoveryMessages, "0"),
        (Env, Key::DedupWindow, "forever"),
        (Flag, Key::DedupMaxEntries, "0"),
        (Flag, Key::InboxTtl, "0s"),
        (Env, Key::InboxMaxMessages, "0"),
        (File, Key::InboxMaxBytes, "0"),
        (Flag, Key::InboxMaxTotalBytes, "1KiB"),
        (Env, Key::AckTimeout, "0"),
        (File, Key::AckBackoffFactor, "17"),
        (Flag, Key::AckBackoffCap, "1s"),
        (Env, Key::AckMaxAttempts, "0"),
        (Flag, Key::ApiListen, "localhost"),
        (Env, Key::ApiKey, "short"),
        (File, Key::ApiKeyFile, "\"/nonexistent/ringcast-api-keys\""),
        (Flag, Key::ApiMaxBody, "12"),
        (Env, Key::WebhookUrl, "https://backend.example.com/hooks"),
        (File, Key::WebhookEvents, "[\"join\", \"teleport\"]"),
        (Flag, Key::WebhookSecret, "short"),
        (Env, Key::WebhookBatchSize, "0"),
        (File, Key::WebhookBatchWait, "\"0s\""),
        (Flag, Key::WebhookQueueSize, "0"),
        (Env, Key::WebhookTimeout, "0s"),
        (File, Key::WebhookRetryMaxDelay, "\"0s\""),
        (Flag, Key::AuthorizeJoinUrl, "ftp://backend/authorize"),
        (Env, Key::AuthorizeJoinTimeout, "0s"),
        (File, Key::AuthorizeJoinFailOpen, "\"sometimes\""),
        (Flag, Key::AuthorizeJoinCacheTtl, "forever"),
        (Env, Key::AuthorizeJoinCacheSize, "0"),
    ];
    for key in Key::ALL {
        assert!(
            cases.iter().any(|&(_, k, _)| k == key),
            "no invalid-value case for {key}"
        );
    }
    for (via, key, value) in cases {
        let (out, origin) = match via {
            Flag => {
                let flag = format!("--{}={value}", key.flag());
                (
                    ringcast(&["serve", "--print-config", &flag], &[]),
                    format!("flag --{}", key.flag()),
                )
            }
            Env => {
                let var = key.env_var();
                (
                    ringcast(&["serve", "--print-config"], &[(&var, value)]),
                    format!("environment variable {var}"),
                )
            }
            File => {
                let file = config_file(
                    &format!("invalid-{key}.toml"),
                    &format!("{key} = {value}\n"),
                );
                let path = file.to_str().unwrap();
                (
                    ringcast(&["serve", "--print-config", "--config", path], &[]),
                    format!("config file {path}"),
                )
            }
        };
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{key} = {value}: {err}");
        assert!(out.stdout.is_empty(), "{key} = {value}: printed a config");
        assert!(err.starts_with("ringcast: "), "{key}: {err}");
        assert!(err.contains(key.name()), "{key} not named in: {err}");
        assert!(
            err.contains(&format!("({origin})")),
            "{origin} not named in: {err}"
        );
    }
}

#[test]
fn an_unknown_key_in_the_config_file_exits_2_naming_it() {
    let file = config_file("unknown.toml", "workers = 2\nmax_frames = 9\n");
    let out = ringcast(&["serve", "--config", file.to_str().unwrap()], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        stderr(&out),
        format!(
            "ringcast: unknown key `max_frames` in config file {}\n",
            file.display()
        )
    );
}

#[test]
fn a_missing_config_file_exits_2_naming_it() {
    let out = ringcast(&["serve", "--config", "/nonexistent/ringcast.toml"], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).starts_with("ringcast: cannot read config file /nonexistent/ringcast.toml: "),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_config_file_that_is_not_toml_exits_2_naming_it() {
    let file = config_file("broken.toml", "workers = = 2\n");
    let out = ringcast(&["serve", "--config", file.to_str().unwrap()], &[]);
    assert_eq!(out.status.code(), Some(2));
    let expected = format!("ringcast: config file {} is not valid TOML", file.display());
    assert!(stderr(&out).starts_with(&expected), "{}", stderr(&out));
}

#[test]
fn an_unknown_flag_is_a_usage_error_with_exit_2() {
    let out = ringcast(&["serve", "--max-frames=9"], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--max-frames"), "{}", stderr(&out));
}

#[test]
fn a_malformed_rust_log_exits_2_quoting_it() {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ringcast"));
    let out = cmd
        .args(["serve", "--listen=127.0.0.1:0"])
        .env("RUST_LOG", "ringcast=loud")
        .output()
        .expect("the ringcast binary runs");
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).starts_with("ringcast: invalid RUST_LOG = \"ringcast=loud\""),
        "{}",
        stderr(&out)
    );
}

#[test]
fn serve_help_lists_every_option_with_its_default_and_variable() {
    let out = ringcast(&["serve", "--help"], &[]);
    assert_eq!(out.status.code(), Some(0));
    let help = stdout(&out);
    let defaults = Config::default();
    for key in Key::ALL {
        let default = match key {
            Key::Workers => format!("number of CPUs, {} here", defaults.workers),
            _ => match defaults.render(key) {
                empty if empty.is_empty() => "none".to_owned(),
                value => value,
            },
        };
        let line = help
            .lines()
            // The whole flag: `--auth` must not match `--authorize-join-url`.
            .skip_while(|l| {
                l.trim_start().split([' ', '[']).next()
                    != Some(format!("--{}", key.flag()).as_str())
            })
            .nth(1)
            .unwrap_or_else(|| panic!("--{} missing from help:\n{help}", key.flag()));
        assert!(
            line.ends_with(&format!("[default: {default}] [env: {}]", key.env_var())),
            "{key}: {line}"
        );
    }
}
