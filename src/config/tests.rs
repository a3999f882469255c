//! The configuration as a specification: human units, the catalogue, the layers and their
//! precedence, every refusal with its exact message, and the walk of every declared option
//! through every layer.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::units::{KIB, MIB};
use super::*;
use crate::room::stream::HistoryRule;
use crate::security::auth::AuthMode;
use crate::security::Secret;

fn load(file: &str, env: &[(&str, &str)], flags: &[(Key, &str)]) -> Result<Config, ConfigError> {
    let mut loader = Loader::new();
    loader.toml(file, Path::new("test.toml"))?;
    loader.env(|name| {
        env.iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| OsString::from(v))
    })?;
    loader.flags(flags.iter().copied())?;
    loader.build()
}

fn load_err(file: &str, env: &[(&str, &str)], flags: &[(Key, &str)]) -> String {
    load(file, env, flags)
        .expect_err("configuration should be rejected")
        .to_string()
}

// --- durations -------------------------------------------------------------------------

#[test]
fn a_bare_number_is_a_duration_in_seconds() {
    assert_eq!(parse_duration("30"), Ok(Duration::from_secs(30)));
    assert_eq!(parse_duration(" 0 "), Ok(Duration::ZERO));
}

#[test]
fn durations_take_ns_us_ms_s_m_h_units() {
    assert_eq!(parse_duration("7ns"), Ok(Duration::from_nanos(7)));
    assert_eq!(parse_duration("7us"), Ok(Duration::from_micros(7)));
    assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
    assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
    assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
    assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
}

#[test]
fn compound_durations_add_their_parts() {
    assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
    assert_eq!(
        parse_duration("1h2m3s4ms"),
        Ok(Duration::from_millis(3_723_004))
    );
}

#[test]
fn malformed_durations_say_why() {
    assert_eq!(parse_duration(""), Err(DurationError::Empty));
    assert_eq!(parse_duration("  "), Err(DurationError::Empty));
    assert_eq!(
        parse_duration("s"),
        Err(DurationError::MissingNumber("s".into()))
    );
    assert_eq!(
        parse_duration("5x"),
        Err(DurationError::UnknownUnit("x".into()))
    );
    assert_eq!(
        parse_duration("1m30"),
        Err(DurationError::UnknownUnit(String::new()))
    );
    assert_eq!(
        parse_duration("-5s"),
        Err(DurationError::MissingNumber("-5s".into()))
    );
    assert_eq!(
        parse_duration("1.5s"),
        Err(DurationError::UnknownUnit(String::new()))
    );
    assert_eq!(
        parse_duration("5 s"),
        Err(DurationError::UnknownUnit(String::new()))
    );
}

#[test]
fn durations_that_overflow_are_rejected() {
    assert_eq!(
        parse_duration("99999999999999999999"),
        Err(DurationError::Overflow)
    );
    assert_eq!(
        parse_duration("18446744073709551615h"),
        Err(DurationError::Overflow)
    );
    assert_eq!(
        parse_duration("18446744073709551615s1s"),
        Err(DurationError::Overflow)
    );
}

#[test]
fn formatted_durations_use_the_largest_units_first() {
    assert_eq!(format_duration(Duration::ZERO), "0s");
    assert_eq!(format_duration(Duration::from_secs(30)), "30s");
    assert_eq!(format_duration(Duration::from_secs(90)), "1m30s");
    assert_eq!(format_duration(Duration::from_secs(7200)), "2h");
    assert_eq!(format_duration(Duration::from_millis(1500)), "1s500ms");
    assert_eq!(format_duration(Duration::new(0, 1_002_003)), "1ms2us3ns");
}

#[test]
fn every_formatted_duration_parses_back_to_itself() {
    let samples = [
        Duration::ZERO,
        Duration::from_nanos(1),
        Duration::from_millis(999),
        Duration::from_secs(59),
        Duration::from_secs(3661),
        Duration::new(86_400 * 365, 123_456_789),
        Duration::MAX,
    ];
    for d in samples {
        assert_eq!(parse_duration(&format_duration(d)), Ok(d), "{d:?}");
    }
}

// --- sizes -----------------------------------------------------------------------------

#[test]
fn a_bare_number_is_a_size_in_bytes() {
    assert_eq!(parse_size("1024"), Ok(1024));
    assert_eq!(parse_size("0"), Ok(0));
}

#[test]
fn sizes_take_binary_and_decimal_units_in_any_case() {
    assert_eq!(parse_size("8KiB"), Ok(8192));
    assert_eq!(parse_size("16MiB"), Ok(16 << 20));
    assert_eq!(parse_size("1GiB"), Ok(1 << 30));
    assert_eq!(parse_size("16mib"), Ok(16 << 20));
    assert_eq!(parse_size("3 B"), Ok(3));
    assert_eq!(parse_size("2kB"), Ok(2000));
    assert_eq!(parse_size("2MB"), Ok(2_000_000));
    assert_eq!(parse_size("1GB"), Ok(1_000_000_000));
}

#[test]
fn malformed_sizes_say_why() {
    assert_eq!(parse_size(""), Err(SizeError::Empty));
    assert_eq!(parse_size("MiB"), Err(SizeError::MissingNumber));
    assert_eq!(parse_size("-1"), Err(SizeError::MissingNumber));
    assert_eq!(parse_size("16M"), Err(SizeError::UnknownUnit("M".into())));
    assert_eq!(
        parse_size("1.5MiB"),
        Err(SizeError::UnknownUnit(".5MiB".into()))
    );
    assert_eq!(parse_size("99999999999999999999"), Err(SizeError::Overflow));
    assert_eq!(
        parse_size("18446744073709551615GiB"),
        Err(SizeError::Overflow)
    );
}

#[test]
fn formatted_sizes_use_the_largest_exact_binary_unit() {
    assert_eq!(format_size(16 << 20), "16MiB");
    assert_eq!(format_size(8192), "8KiB");
    assert_eq!(format_size(1 << 30), "1GiB");
    assert_eq!(format_size(1536), "1536B");
    assert_eq!(format_size(1000), "1000B");
    assert_eq!(format_size(0), "0B");
}

#[test]
fn every_formatted_size_parses_back_to_itself() {
    for n in [0, 1, 14, 1000, 1024, 1025, 3 << 20, 5 << 30, usize::MAX] {
        assert_eq!(parse_size(&format_size(n)), Ok(n), "{n}");
    }
}

// --- defaults and the catalogue ---------------------------------------------------------

#[test]
fn the_defaults_are_valid() {
    Config::default()
        .validate()
        .expect("defaults must validate");
}

#[test]
fn the_defaults_match_the_documented_values() {
    let c = Config::default();
    assert_eq!(c.render(Key::Listen), "127.0.0.1:8080");
    assert_eq!(c.workers, default_workers());
    assert_eq!(c.render(Key::MaxHeaderBytes), "8KiB");
    assert_eq!(c.max_headers, 64);
    assert_eq!(c.render(Key::MaxFrameSize), "16MiB");
    assert_eq!(c.render(Key::MaxMessageSize), "16MiB");
    assert_eq!(c.render(Key::HandshakeTimeout), "10s");
    assert_eq!(c.render(Key::PingInterval), "30s");
    assert_eq!(c.render(Key::IdleTimeout), "1m15s");
    assert_eq!(c.render(Key::CloseTimeout), "5s");
    assert_eq!(c.render(Key::DrainTimeout), "10s");
    assert_eq!(c.render(Key::MaxBackpressure), "1MiB");
    assert_eq!(c.render(Key::BackpressurePolicy), "close");
    assert_eq!(c.max_connections, 10_000);
    assert_eq!(c.render(Key::ReadBufferSize), "4KiB");
    assert_eq!(c.ring_entries, 256);
    assert_eq!(c.render(Key::Sqpoll), "off");
    assert_eq!(c.backlog, 1024);
    assert_eq!(c.render(Key::LogFormat), "text");
    assert!(!c.pin && c.subprotocols.is_empty());
    assert_eq!(c.history_size, 0);
    assert_eq!(c.render(Key::HistoryTtl), "5m");
    assert_eq!(c.render(Key::HistoryMaxBytes), "64MiB");
    // The demo page's rooms keep history; every other room keeps none unless configured.
    assert_eq!(c.render(Key::HistoryRooms), "demo:=100/10m");
    assert_eq!(c.max_recovery_messages, 1000);
    assert_eq!(c.render(Key::DedupWindow), "2m");
    assert_eq!(c.dedup_max_entries, 100_000);
    assert_eq!(c.cluster, None);
}

// --- compression -----------------------------------------------------------------------

#[test]
fn compression_options_are_checked_against_their_ranges() {
    let bad = |key: Key, value: &str| load_err("", &[], &[(key, value)]);
    assert!(bad(Key::Compression, "zstd").contains("off, shared, dedicated"));
    assert!(bad(Key::CompressionLevel, "10").contains("between 0 and 9"));
    assert!(bad(Key::CompressionWindowBits, "8").contains("between 9 and 15"));
    assert!(bad(Key::CompressionWindowBits, "16").contains("between 9 and 15"));
    assert!(bad(Key::CompressionMinSize, "32MiB").contains("at most max_message_size"));
    let c = Config::default();
    assert_eq!(c.render(Key::Compression), "shared");
    assert_eq!(c.render(Key::CompressionMinSize), "256B");
}

// --- room history rules ----------------------------------------------------------------

#[test]
fn history_rooms_read_as_file_tables_and_as_flag_text() {
    let file = "[[history_rooms]]\nprefix = \"chat:\"\nsize = 100\nttl = \"10m\"\n\n\
                [[history_rooms]]\nprefix = \"ticker:\"\nsize = 0\n";
    let from_file = load(file, &[], &[]).unwrap().history_rooms;
    let from_flag = load("", &[], &[(Key::HistoryRooms, "chat:=100/10m, ticker:=0")])
        .unwrap()
        .history_rooms;
    assert_eq!(from_file, from_flag);
    assert_eq!(from_file[0].prefix, "chat:");
    assert_eq!(from_file[0].ttl, Some(Duration::from_secs(600)));
    assert_eq!(from_file[1].ttl, None);
    // An empty value drops every rule, the demo's default one included.
    let none = load("", &[], &[(Key::HistoryRooms, "")])
        .unwrap()
        .history_rooms;
    assert!(none.is_empty());
}

#[test]
fn bad_history_rules_say_why() {
    for (flag, why) in [
        ("chat:", "no `=`"),
        ("chat:=x", "size"),
        ("chat:=1/forever", "ttl"),
    ] {
        let e = load_err("", &[], &[(Key::HistoryRooms, flag)]);
        assert!(
            e.contains(why) && e.contains("history_rooms"),
            "{flag}: {e}"
        );
    }
    let e = load_err(
        "[[history_rooms]]\nprefix = \"a\"\nsize = 1\nsise = 2\n",
        &[],
        &[],
    );
    assert!(e.contains("unknown key `sise`"), "{e}");
    let e = load_err("", &[], &[(Key::HistoryRooms, "a=1,a=2")]);
    assert!(e.contains("one rule per prefix"), "{e}");
    let e = load_err("", &[], &[(Key::HistoryRooms, "a=1/0s")]);
    assert!(e.contains("longer than 0s"), "{e}");
}

#[test]
fn keys_map_to_flags_and_environment_variables() {
    assert_eq!(Key::MaxFrameSize.flag(), "max-frame-size");
    assert_eq!(Key::MaxFrameSize.env_var(), "RINGCAST_MAX_FRAME_SIZE");
    for key in Key::ALL {
        assert_eq!(Key::from_name(key.name()), Some(key));
        assert_eq!(Key::ALL[key.index()], key);
    }
}

// --- layers ----------------------------------------------------------------------------

#[test]
fn a_flag_beats_the_environment_which_beats_the_file_which_beats_the_default() {
    let file = "workers = 3\nping_interval = \"20s\"\nidle_timeout = \"40s\"\n";
    let env = [
        ("RINGCAST_PING_INTERVAL", "25s"),
        ("RINGCAST_IDLE_TIMEOUT", "50s"),
    ];
    let flags = [(Key::IdleTimeout, "60s")];
    let mut loader = Loader::new();
    loader.toml(file, Path::new("test.toml")).unwrap();
    loader
        .env(|name| {
            env.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| OsString::from(v))
        })
        .unwrap();
    loader.flags(flags).unwrap();
    assert_eq!(
        loader.origin(Key::Workers),
        &Origin::File("test.toml".into())
    );
    assert_eq!(loader.origin(Key::PingInterval), &Origin::Env);
    assert_eq!(loader.origin(Key::IdleTimeout), &Origin::Flag);
    assert_eq!(loader.origin(Key::Listen), &Origin::Default);
    let c = loader.build().unwrap();
    assert_eq!(c.workers, 3);
    assert_eq!(c.ping_interval, Duration::from_secs(25));
    assert_eq!(c.idle_timeout, Duration::from_secs(60));
    assert_eq!(c.listen, Config::default().listen);
}

#[test]
fn every_key_can_be_set_from_each_layer() {
    let mut wanted = Config {
        listen: "[::1]:9000".parse().unwrap(),
        workers: 3,
        pin: true,
        max_header_bytes: 2 * KIB,
        max_headers: 10,
        max_frame_size: MIB,
        max_message_size: 2 * MIB,
        subprotocols: vec!["chat".into(), "v2.json".into()],
        handshake_timeout: Duration::from_secs(3),
        ping_interval: Duration::from_millis(1500),
        idle_timeout: Duration::from_secs(4),
        close_timeout: Duration::from_secs(6),
        drain_timeout: Duration::from_secs(120),
        max_backpressure: 64 * KIB,
        backpressure_policy: BackpressurePolicy::Drop,
        max_connections: 0,
        read_buffer_size: 512,
        ring_entries: 1024,
        sqpoll: Some(Duration::from_millis(2)),
        backlog: 16,
        log_format: LogFormat::Json,
        max_rooms_per_connection: 3,
        max_room_members: 500,
        max_room_name_len: 32,
        max_payload_size: 8 * KIB,
        max_envelope_errors: 4,
        publish_requires_join: true,
        history_size: 10,
        history_ttl: Duration::from_secs(90),
        history_max_bytes: 2 * MIB,
        history_rooms: vec![
            HistoryRule {
                prefix: "chat:".into(),
                size: 100,
                ttl: Some(Duration::from_secs(600)),
            },
            HistoryRule {
                prefix: "ticker:".into(),
                size: 0,
                ttl: None,
            },
        ],
        max_recovery_messages: 50,
        dedup_window: Duration::from_secs(30),
        dedup_max_entries: 7,
        inbox_ttl: Duration::from_secs(90),
        inbox_max_messages: 7,
        inbox_max_bytes: 8 * KIB,
        inbox_max_total_bytes: 2 * MIB,
        ack_timeout: Duration::from_millis(250),
        ack_backoff_factor: 3,
        ack_backoff_cap: Duration::from_secs(20),
        ack_max_attempts: 9,
        compression: CompressionMode::Dedicated,
        compression_min_size: KIB,
        compression_level: 6,
        compression_window_bits: 10,
        cluster: Some("redis://127.0.0.1:7001".into()),
        reuse_port: true,
        api_listen: Some("127.0.0.1:8081".parse().unwrap()),
        api_key: vec![
            Secret("0123456789abcdef".into()),
            Secret("fedcba9876543210".into()),
        ],
        api_key_file: Some(PathBuf::from(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/api_fixtures/keys.txt"
        ))),
        api_max_body: 64 * KIB,
        webhook_url: Some("http://127.0.0.1:9000/hooks".into()),
        webhook_events: vec![
            "join".into(),
            "leave".into(),
            "publish".into(),
            "inbox_expired".into(),
        ],
        webhook_secret: Some(Secret("a-webhook-secret-0123456789".into())),
        webhook_batch_size: 10,
        webhook_batch_wait: Duration::from_millis(200),
        webhook_queue_size: 1000,
        webhook_timeout: Duration::from_secs(2),
        webhook_retry_max_delay: Duration::from_secs(1),
        authorize_join_url: Some("http://127.0.0.1:9000/authorize".into()),
        authorize_join_timeout: Duration::from_millis(250),
        authorize_join_fail_open: true,
        authorize_join_cache_ttl: Duration::from_secs(300),
        authorize_join_cache_size: 1000,
        security: SecurityConfig {
            auth: AuthMode::Required,
            auth_jwt_secret: Some(Secret("0123456789abcdef0123456789abcdef!".into())),
            auth_jwt_public_key: Some(PathBuf::from(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/security_fixtures/rsa_public.pem"
            ))),
            auth_leeway: Duration::from_secs(5),
            allowed_origins: vec![
                "https://app.example.com".parse().unwrap(),
                "*.example.org".parse().unwrap(),
            ],
            require_origin: true,
            allow_cidr: vec!["10.0.0.0/8".parse().unwrap(), "::1/128".parse().unwrap()],
            deny_cidr: vec!["10.1.0.0/16".parse().unwrap()],
            trusted_proxies: vec!["192.168.0.0/24".parse().unwrap()],
            max_connections_per_ip: 7,
            handshake_rate: 3,
            handshake_burst: 4,
            message_rate: 50,
            message_burst: 60,
            message_bytes_rate: 64 * KIB,
            message_rate_strikes: 2,
            message_rate_grace: Duration::from_millis(1500),
        },
    };
    let text: Vec<(Key, String)> = Key::ALL.iter().map(|&k| (k, wanted.render(k))).collect();

    let from_file = load(&wanted.toml_document(true), &[], &[]).unwrap();
    assert_eq!(from_file, wanted);

    let env: Vec<(String, String)> = text.iter().map(|(k, v)| (k.env_var(), v.clone())).collect();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    assert_eq!(load("", &env, &[]).unwrap(), wanted);

    let flags: Vec<(Key, &str)> = text.iter().map(|(k, v)| (*k, v.as_str())).collect();
    assert_eq!(load("", &[], &flags).unwrap(), wanted);

    wanted.subprotocols.clear();
    assert_eq!(
        load("", &[], &[(Key::Subprotocols, "")])
            .unwrap()
            .subprotocols,
        wanted.subprotocols
    );
}

#[test]
fn file_values_may_be_bare_numbers_for_durations_and_sizes() {
    let c = load(
        "idle_timeout = 90\nmax_frame_size = 4096\nsqpoll = 1\n",
        &[],
        &[],
    )
    .unwrap();
    assert_eq!(c.idle_timeout, Duration::from_secs(90));
    assert_eq!(c.max_frame_size, 4096);
    assert_eq!(c.sqpoll, Some(Duration::from_secs(1)));
}

#[test]
fn the_pin_flag_and_choices_ignore_case() {
    let c = load(
        "",
        &[("RINGCAST_PIN", "TRUE"), ("RINGCAST_LOG_FORMAT", "JSON")],
        &[],
    )
    .unwrap();
    assert!(c.pin);
    assert_eq!(c.log_format, LogFormat::Json);
}

#[test]
fn an_unknown_file_key_is_named_with_a_suggestion() {
    let err = load_err("max-frame-size = 10\n", &[], &[]);
    assert_eq!(
        err,
        "unknown key `max-frame-size` in config file test.toml (did you mean `max_frame_size`?)"
    );
    let err = load_err("colour = \"blue\"\n", &[], &[]);
    assert_eq!(err, "unknown key `colour` in config file test.toml");
}

#[test]
fn a_file_that_is_not_toml_is_rejected() {
    let err = load("workers = \n", &[], &[]).unwrap_err();
    assert!(matches!(err, ConfigError::FileSyntax { .. }), "{err}");
}

#[test]
fn a_missing_file_names_its_path() {
    let err = Loader::new()
        .file(Path::new("/nonexistent/ringcast.toml"))
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("cannot read config file /nonexistent/ringcast.toml:"),
        "{err}"
    );
}

#[test]
fn a_file_value_of_the_wrong_type_names_key_type_and_file() {
    assert_eq!(
        load_err("workers = \"four\"\n", &[], &[]),
        "workers (config file test.toml) must be an integer, found a string"
    );
    assert_eq!(
        load_err("pin = 1\n", &[], &[]),
        "pin (config file test.toml) must be true or false, found an integer"
    );
    assert_eq!(
        load_err("subprotocols = \"chat\"\n", &[], &[]),
        "subprotocols (config file test.toml) must be an array of strings, found a string"
    );
    assert_eq!(
        load_err("subprotocols = [\"chat\", 2]\n", &[], &[]),
        "subprotocols (config file test.toml) must be an array of strings, found an integer"
    );
    assert_eq!(
        load_err("idle_timeout = 1.5\n", &[], &[]),
        "idle_timeout (config file test.toml) must be a duration string such as \"30s\" or an \
         integer number of seconds, found a float"
    );
}

#[test]
fn a_negative_file_number_is_out_of_range() {
    assert_eq!(
        load_err("max_frame_size = -1\n", &[], &[]),
        "invalid max_frame_size = -1 (config file test.toml): must be zero or more"
    );
    assert_eq!(
        load_err("workers = -2\n", &[], &[]),
        "invalid workers = -2 (config file test.toml): must be zero or more"
    );
}

#[test]
fn a_file_number_too_large_for_its_field_is_rejected() {
    let err = load_err("ring_entries = 5000000000\n", &[], &[]);
    assert!(
        err.starts_with("invalid ring_entries = \"5000000000\" (config file test.toml)"),
        "{err}"
    );
}

#[test]
fn unparsable_values_name_the_key_the_value_and_the_layer() {
    assert_eq!(
        load_err("", &[("RINGCAST_IDLE_TIMEOUT", "soon")], &[]),
        "invalid idle_timeout = \"soon\" (environment variable RINGCAST_IDLE_TIMEOUT): \
         expected a number at `soon`"
    );
    assert_eq!(
        load_err("", &[], &[(Key::MaxFrameSize, "16M")]),
        "invalid max_frame_size = \"16M\" (flag --max-frame-size): unknown unit `M` \
         (use B, KiB, MiB, GiB, or decimal KB, MB, GB)"
    );
    assert_eq!(
        load_err("", &[], &[(Key::BackpressurePolicy, "block")]),
        "invalid backpressure_policy = \"block\" (flag --backpressure-policy): \
         must be one of: close, drop"
    );
    assert_eq!(
        load_err("", &[], &[(Key::Pin, "yes")]),
        "invalid pin = \"yes\" (flag --pin): not a boolean (use true or false)"
    );
    let err = load_err("listen = \"localhost:80\"\n", &[], &[]);
    assert!(
        err.starts_with(
            "invalid listen = \"localhost:80\" (config file test.toml): not a socket address"
        ),
        "{err}"
    );
    let err = load_err("", &[("RINGCAST_WORKERS", "two")], &[]);
    assert!(
        err.starts_with(
            "invalid workers = \"two\" (environment variable RINGCAST_WORKERS): not a whole number"
        ),
        "{err}"
    );
}

#[test]
fn an_environment_variable_that_is_not_utf8_is_rejected() {
    use std::os::unix::ffi::OsStringExt;
    let err = Loader::new()
        .env(|name| (name == "RINGCAST_LISTEN").then(|| OsString::from_vec(vec![0xff])))
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "listen (environment variable RINGCAST_LISTEN) is not valid UTF-8"
    );
}

// --- validation --------------------------------------------------------------------------

#[test]
fn workers_must_be_between_1_and_1024() {
    assert_eq!(
        load_err("", &[], &[(Key::Workers, "0")]),
        "invalid workers = 0 (flag --workers): must be between 1 and 1024"
    );
    assert!(load_err("", &[], &[(Key::Workers, "1025")]).contains("between 1 and 1024"));
    assert_eq!(
        load("", &[], &[(Key::Workers, "1024")]).unwrap().workers,
        1024
    );
}

#[test]
fn max_header_bytes_must_be_between_1kib_and_1mib() {
    assert_eq!(
        load_err("", &[], &[(Key::MaxHeaderBytes, "1023")]),
        "invalid max_header_bytes = 1023B (flag --max-header-bytes): must be between 1KiB and 1MiB"
    );
    assert!(load("", &[], &[(Key::MaxHeaderBytes, "1KiB")]).is_ok());
    assert!(load_err("", &[], &[(Key::MaxHeaderBytes, "1025KiB")]).contains("max_header_bytes"));
}

#[test]
fn max_headers_must_leave_room_for_the_five_required_headers() {
    assert!(load_err("max_headers = 4\n", &[], &[])
        .contains("max_headers = 4 (config file test.toml): must be between 5 and 1024"));
    assert!(load("max_headers = 5\n", &[], &[]).is_ok());
    assert!(load_err("max_headers = 1025\n", &[], &[]).contains("max_headers"));
}

#[test]
fn max_frame_size_below_125_bytes_is_rejected() {
    assert_eq!(
        load_err("", &[], &[(Key::MaxFrameSize, "124")]),
        "invalid max_frame_size = 124B (flag --max-frame-size): must be at least 125B \
         (the largest control frame)"
    );
    assert!(load("", &[], &[(Key::MaxFrameSize, "125")]).is_ok());
}

#[test]
fn max_frame_size_above_max_message_size_names_both_keys_and_origins() {
    assert_eq!(
        load_err(
            "max_message_size = \"1MiB\"\n",
            &[("RINGCAST_MAX_FRAME_SIZE", "2MiB")],
            &[]
        ),
        "invalid max_frame_size = 2MiB (environment variable RINGCAST_MAX_FRAME_SIZE): must \
         not exceed max_message_size = 1MiB (config file test.toml)"
    );
    assert!(load(
        "max_message_size = \"1MiB\"\nmax_frame_size = \"1MiB\"\n",
        &[],
        &[]
    )
    .is_ok());
}

#[test]
fn ping_interval_must_be_shorter_than_idle_timeout() {
    assert_eq!(
        load_err("", &[], &[(Key::PingInterval, "75s")]),
        "invalid ping_interval = 1m15s (flag --ping-interval): must be shorter than \
         idle_timeout = 1m15s (default)"
    );
    assert!(load("", &[], &[(Key::PingInterval, "74s")]).is_ok());
}

#[test]
fn zero_durations_are_rejected() {
    for key in [
        Key::HandshakeTimeout,
        Key::PingInterval,
        Key::IdleTimeout,
        Key::CloseTimeout,
        Key::DrainTimeout,
    ] {
        let err = load_err("", &[], &[(key, "0s")]);
        assert_eq!(
            err,
            format!(
                "invalid {key} = 0s (flag --{}): must be longer than 0s",
                key.flag()
            )
        );
    }
}

#[test]
fn zero_max_backpressure_is_rejected() {
    assert_eq!(
        load_err("", &[("RINGCAST_MAX_BACKPRESSURE", "0")], &[]),
        "invalid max_backpressure = 0B (environment variable RINGCAST_MAX_BACKPRESSURE): \
         must be greater than 0"
    );
}

#[test]
fn a_read_buffer_smaller_than_a_frame_header_is_rejected() {
    assert!(load_err("", &[], &[(Key::ReadBufferSize, "13")]).contains("at least 14B"));
    assert!(load("", &[], &[(Key::ReadBufferSize, "14")]).is_ok());
}

#[test]
fn ring_entries_must_be_a_power_of_two_up_to_32768() {
    assert_eq!(
        load_err("", &[], &[(Key::RingEntries, "300")]),
        "invalid ring_entries = 300 (flag --ring-entries): must be a power of two (the kernel \
         would round it up to 512)"
    );
    assert!(load_err("", &[], &[(Key::RingEntries, "0")]).contains("between 1 and 32768"));
    assert!(load_err("", &[], &[(Key::RingEntries, "65536")]).contains("between 1 and 32768"));
    assert!(load("", &[], &[(Key::RingEntries, "32768")]).is_ok());
}

#[test]
fn sqpoll_is_off_or_whole_milliseconds_up_to_a_minute() {
    assert_eq!(
        load("", &[], &[(Key::Sqpoll, "off")])
            .unwrap()
            .sqpoll_idle_ms(),
        None
    );
    assert_eq!(
        load("", &[], &[(Key::Sqpoll, "2ms")])
            .unwrap()
            .sqpoll_idle_ms(),
        Some(2)
    );
    assert!(load_err("", &[], &[(Key::Sqpoll, "2000")]).contains("between 1ms and 1m"));
    assert!(load_err("", &[], &[(Key::Sqpoll, "500us")]).contains("sqpoll"));
    assert!(load_err("", &[], &[(Key::Sqpoll, "1ms500us")]).contains("whole milliseconds"));
}

#[test]
fn backlog_must_be_between_1_and_65535() {
    assert!(load_err("backlog = 0\n", &[], &[]).contains("between 1 and 65535"));
    assert!(load_err("backlog = 65536\n", &[], &[]).contains("between 1 and 65535"));
}

#[test]
fn subprotocols_must_be_unique_tokens() {
    assert_eq!(
        load_err("", &[], &[(Key::Subprotocols, "chat,a b")]),
        "invalid subprotocols (flag --subprotocols): \"a b\" is not a token (RFC 6455 §4.1: \
         non-empty, characters U+0021 to U+007E, no separators)"
    );
    assert!(load_err("subprotocols = [\"\"]\n", &[], &[]).contains("\"\" is not a token"));
    assert!(load_err("subprotocols = [\"x/y\"]\n", &[], &[]).contains("not a token"));
    assert!(load_err("subprotocols = [\"é\"]\n", &[], &[]).contains("not a token"));
    assert_eq!(
        load_err("", &[("RINGCAST_SUBPROTOCOLS", "chat, chat")], &[]),
        "invalid subprotocols (environment variable RINGCAST_SUBPROTOCOLS): \"chat\" is listed \
         twice (RFC 6455 §4.1: \"MUST all be unique strings\")"
    );
}

#[test]
fn validate_on_a_bare_config_reports_the_program_as_origin() {
    let config = Config {
        workers: 0,
        ..Config::default()
    };
    assert_eq!(
        config.validate().unwrap_err().to_string(),
        "invalid workers = 0 (set by the program): must be between 1 and 1024"
    );
}

#[test]
fn print_config_output_reads_back_as_the_same_config() {
    let config = Config {
        subprotocols: vec!["a\"b".into()],
        ..Config::default()
    };
    let mut loader = Loader::new();
    loader.toml(&config.to_toml(), Path::new("x.toml")).unwrap();
    assert_eq!(loader.config, config);
    assert!(config
        .to_toml()
        .starts_with("listen = \"127.0.0.1:8080\"\nworkers = "));
}

#[test]
fn print_config_never_prints_the_jwt_secret() {
    let secret = "a-very-secret-hmac-key-of-32-bytes-or-more";
    let config = load("", &[("RINGCAST_AUTH_JWT_SECRET", secret)], &[]).unwrap();
    let text = config.to_toml();
    assert!(!text.contains(secret), "{text}");
    assert!(
        text.contains("# auth_jwt_secret is set (never printed)\n"),
        "{text}"
    );
    assert!(!format!("{config:?}").contains(secret));
}

#[test]
fn print_config_never_prints_api_keys() {
    let keys = "first-api-key-0123456789,second-api-key-0123456789";
    let config = load("", &[("RINGCAST_API_KEY", keys)], &[]).unwrap();
    assert_eq!(config.api_key.len(), 2);
    let text = config.to_toml();
    assert!(!text.contains("api-key-0123456789"), "{text}");
    assert!(
        text.contains("# api_key is set (never printed)\n"),
        "{text}"
    );
    assert!(!format!("{config:?}").contains("api-key-0123456789"));
    let unset = Config::default().to_toml();
    assert!(unset.contains("api_key = []\n"), "{unset}");
}

#[test]
fn an_api_key_file_that_cannot_be_used_is_refused_at_load() {
    let err = load_err(
        "",
        &[],
        &[(Key::ApiKeyFile, "/nonexistent/ringcast-api-keys")],
    );
    assert!(err.contains("cannot use as an API key file"), "{err}");
    let err = load_err("", &[("RINGCAST_API_KEY", "short")], &[]);
    assert!(err.contains("keys of at least 16 bytes each"), "{err}");
}

#[test]
fn security_rules_are_refused_naming_the_key_and_its_origin() {
    let err = load_err("", &[("RINGCAST_AUTH", "required")], &[]);
    assert!(
        err.contains("auth = required: needs auth_jwt_secret or auth_jwt_public_key"),
        "{err}"
    );
    assert!(err.contains("environment variable RINGCAST_AUTH"), "{err}");
    let err = load_err("", &[], &[(Key::AuthJwtSecret, "short")]);
    assert!(
        err.contains("auth_jwt_secret: must be at least 32 bytes, got 5"),
        "{err}"
    );
    assert!(!err.contains("short"), "the secret is never shown: {err}");
    let err = load_err("deny_cidr = [\"10.0.0.1/8\"]", &[], &[]);
    assert!(err.contains("invalid deny_cidr = \"10.0.0.1/8\""), "{err}");
    let err = load_err("", &[], &[(Key::AllowedOrigins, "ftp://x.example.com")]);
    assert!(err.contains("invalid allowed_origins"), "{err}");
    let err = load_err(
        "",
        &[],
        &[(Key::MessageRate, "10"), (Key::MessageBurst, "0")],
    );
    assert!(err.contains("message_burst"), "{err}");
}

#[test]
fn a_token_carrying_subprotocol_cannot_be_configured() {
    let err = load_err("", &[], &[(Key::Subprotocols, "chat,Bearer.x")]);
    assert!(err.contains("\"Bearer.x\" is reserved for tokens"), "{err}");
}

#[test]
fn unknown_ringcast_variables_are_reported_with_a_suggestion() {
    let names = [
        "RINGCAST_AUTH_JWT_SECERT",
        "RINGCAST_WORKERS",
        "RINGCAST_CONFIG",
        "RINGCAST_SOMETHING_ELSE",
        "PATH",
    ]
    .map(OsString::from);
    let unknown = unknown_env_vars(names);
    assert_eq!(
        unknown,
        vec![
            (
                "RINGCAST_AUTH_JWT_SECERT".to_owned(),
                Some(Key::AuthJwtSecret)
            ),
            ("RINGCAST_SOMETHING_ELSE".to_owned(), None),
        ]
    );
}

// --- every declared option through every layer ----------------------------------------------

/// The environment holding exactly `vars`.
fn env_of(vars: &[(String, String)]) -> impl Fn(&str) -> Option<OsString> + '_ {
    |name| {
        vars.iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| OsString::from(v))
    }
}

/// `key`'s value parsed from `text` given as its flag, as a TOML value for the file.
fn as_toml(key: Key, text: &str) -> toml::Value {
    let mut loader = Loader::new();
    loader.flags([(key, text)]).unwrap();
    loader
        .config
        .toml_value(key)
        .unwrap_or_else(|| toml::Value::String(loader.config.render(key)))
}

/// Driven by the table of options, so a new option is walked without touching this test: its
/// declared example (a valid value other than the default) set through the file, the environment
/// and a flag obeys flag > environment > file > default, each layer's origin recorded; the example
/// passes the option's own rule; and its declared bad value is refused from each layer with an
/// error naming the key and that layer.
#[test]
fn every_option_walks_through_every_layer_in_precedence_order() {
    let defaults = Config::default();
    for key in Key::ALL {
        let spec = key.spec();
        let default = defaults.render(key);
        let mut alone = Loader::new();
        alone.flags([(key, spec.example)]).unwrap();
        let example = alone.config.render(key);
        assert_ne!(
            example, default,
            "{key}: the example must differ from the default"
        );
        alone
            .config
            .check_each(&|k| Provenance {
                key: k,
                origin: Origin::Flag,
            })
            .unwrap_or_else(|e| panic!("{key}: the example breaks its own rule: {e}"));

        let file = format!("{key} = {}\n", as_toml(key, spec.example));
        // (file?, environment variable, flag) -> the value and origin that must win
        let cases = [
            (false, None, None, &default, Origin::Default),
            (true, None, None, &example, Origin::File("test.toml".into())),
            (true, Some(&default), None, &default, Origin::Env),
            (
                true,
                Some(&default),
                Some(spec.example),
                &example,
                Origin::Flag,
            ),
        ];
        for (with_file, env, flag, wanted, origin) in cases {
            let mut loader = Loader::new();
            if with_file {
                loader.toml(&file, Path::new("test.toml")).unwrap();
            }
            let vars: Vec<(String, String)> = env
                .map(|value| (key.env_var(), value.clone()))
                .into_iter()
                .collect();
            loader.env(env_of(&vars)).unwrap();
            loader.flags(flag.map(|f| (key, f))).unwrap();
            assert_eq!(&loader.config.render(key), wanted, "{key} from {origin:?}");
            assert_eq!(loader.origin(key), &origin, "{key}");
        }

        let bad = spec.bad;
        let file_key = format!("{key} = {}\n", toml::Value::String(bad.to_owned()));
        let layers = [
            (
                load("", &[], &[(key, bad)]),
                format!("(flag --{})", key.flag()),
            ),
            (
                load("", &[(&key.env_var(), bad)], &[]),
                format!("(environment variable {})", key.env_var()),
            ),
            (
                load(&file_key, &[], &[]),
                "(config file test.toml)".to_owned(),
            ),
        ];
        for (result, layer) in layers {
            let err = result
                .expect_err(&format!("{key} = {bad:?} {layer} must be refused"))
                .to_string();
            assert!(err.contains(key.name()), "{key} not named: {err}");
            assert!(err.contains(&layer), "{layer} not named: {err}");
        }
    }
}

#[test]
fn a_secret_set_in_any_layer_is_never_printed() {
    let secret = Key::AuthJwtSecret.spec().example;
    let file = format!("auth_jwt_secret = \"{secret}\"\n");
    for config in [
        load(&file, &[], &[]).unwrap(),
        load("", &[("RINGCAST_AUTH_JWT_SECRET", secret)], &[]).unwrap(),
        load("", &[], &[(Key::AuthJwtSecret, secret)]).unwrap(),
    ] {
        assert!(!config.to_toml().contains(secret));
        assert!(!format!("{config:?}").contains(secret));
    }
}
