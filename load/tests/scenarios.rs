//! `ringcast-bench` end to end: every scenario, short, against servers started inside the test on
//! 127.0.0.1:0. The tests assert behaviour (messages counted, no failures, percentiles ordered,
//! reports that parse, the verdict and the exit status), never speed.

// The server crate's own test support (an in-process ringcast server on 127.0.0.1:0).
#[path = "../../tests/common/mod.rs"]
mod common;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use ringcast_load::target::TargetError;
use ringcast_load::{measure, BenchArgs, LoadError, Report};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::Message;

/// Starts a server on its own thread and current-thread runtime; returns its address.
fn serve<F, Fut>(handle: F) -> SocketAddr
where
    F: Fn(tokio::net::TcpStream) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + 'static,
{
    let std_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    std_listener.set_nonblocking(true).unwrap();
    let addr = std_listener.local_addr().unwrap();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let local = tokio::task::LocalSet::new();
        local.block_on(&rt, async move {
            let listener = TcpListener::from_std(std_listener).unwrap();
            loop {
                let (stream, _) = listener.accept().await.unwrap();
                tokio::task::spawn_local(handle(stream));
            }
        });
    });
    addr
}

/// A tokio-tungstenite echo server.
fn echo_server() -> SocketAddr {
    serve(|stream| async move {
        let Ok(mut ws) = tokio_tungstenite::accept_async(stream).await else {
            return;
        };
        while let Some(Ok(msg)) = ws.next().await {
            if (msg.is_text() || msg.is_binary()) && ws.send(msg).await.is_err() {
                return;
            }
        }
    })
}

/// A WebSocket server that pings every 50 ms and counts the pongs it gets back.
fn pinging_server(pongs: Arc<AtomicU64>) -> SocketAddr {
    serve(move |stream| {
        let pongs = Arc::clone(&pongs);
        async move {
            let Ok(ws) = tokio_tungstenite::accept_async(stream).await else {
                return;
            };
            let (mut tx, mut rx) = ws.split();
            let pinger = tokio::task::spawn_local(async move {
                loop {
                    if tx.send(Message::Ping(b"hb".to_vec().into())).await.is_err() {
                        return;
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            });
            while let Some(Ok(msg)) = rx.next().await {
                if let Message::Pong(payload) = msg {
                    assert_eq!(&payload[..], b"hb", "a pong must echo the ping payload");
                    pongs.fetch_add(1, Ordering::Relaxed);
                }
            }
            pinger.abort();
        }
    })
}

/// A plain TCP echo: no upgrade, bytes back unchanged (like examples/raw_echo_uring.rs).
fn raw_echo_server() -> SocketAddr {
    serve(|mut stream| async move {
        let mut buf = vec![0u8; 16 * 1024];
        while let Ok(n @ 1..) = stream.read(&mut buf).await {
            if stream.write_all(&buf[..n]).await.is_err() {
                return;
            }
        }
    })
}

/// An HTTP server that refuses every upgrade with 404.
fn refusing_server() -> SocketAddr {
    serve(|mut stream| async move {
        let mut buf = [0u8; 1024];
        let _request = stream.read(&mut buf).await;
        let _sent = stream
            .write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
            .await;
    })
}

fn args(scenario: &str, addr: SocketAddr, extra: &[&str]) -> BenchArgs {
    let url = format!("ws://{addr}/echo");
    let mut argv = vec![scenario, "--url", &url, "--quiet"];
    argv.extend_from_slice(extra);
    BenchArgs::parse_flags(argv).unwrap()
}

fn assert_ordered_latency(report: &Report) {
    let p = report.latency_us.expect("round trips recorded");
    assert!(p.count > 0);
    assert!(p.min <= p.p50, "{p:?}");
    assert!(
        p.p50 <= p.p90 && p.p90 <= p.p99 && p.p99 <= p.p999 && p.p999 <= p.max,
        "{p:?}"
    );
}

#[test]
fn echo_counts_messages_with_no_failures_and_closes_cleanly() {
    let addr = echo_server();
    let report = measure(&args(
        "echo",
        addr,
        &["-c", "4", "-p", "32", "-d", "4", "--duration", "300ms"],
    ))
    .unwrap();
    assert_eq!(report.connected, 4);
    assert!(report.completed > 0);
    assert!(report.failures.is_empty(), "{:?}", report.failures);
    assert_eq!(report.unanswered, 0);
    assert_eq!(report.closed_cleanly, 4);
    assert!(report.send_lag_us.is_none(), "echo has no schedule");
    assert!(report.per_second > 0.0 && report.mb_per_second > 0.0);
    assert_ordered_latency(&report);
}

#[test]
fn echo_of_large_text_messages_over_two_threads_works() {
    let addr = echo_server();
    let report = measure(&args(
        "echo",
        addr,
        &[
            "-c",
            "2",
            "-p",
            "70000",
            "--text",
            "--threads",
            "2",
            "--duration",
            "300ms",
        ],
    ))
    .unwrap();
    assert_eq!(report.threads, 2);
    assert!(report.completed > 0);
    assert!(report.failures.is_empty(), "{:?}", report.failures);
}

#[test]
fn latency_offers_no_more_than_the_fixed_rate_and_orders_percentiles() {
    let addr = echo_server();
    let report = measure(&args(
        "latency",
        addr,
        &["-c", "4", "--rate", "2000", "--duration", "500ms"],
    ))
    .unwrap();
    // 2000 msg/s for 0.5 s is 1000 messages; the schedule cannot offer more.
    assert!(
        report.completed > 0 && report.completed <= 1000,
        "{}",
        report.completed
    );
    assert_eq!(report.offered_rate, Some(2000));
    let lag = report
        .send_lag_us
        .expect("latency reports the tool's own send lag");
    assert_eq!(
        lag.count,
        report.completed + report.late + report.unanswered
    );
    assert!(report.failures.is_empty(), "{:?}", report.failures);
    assert_eq!(report.unanswered, 0);
    assert_ordered_latency(&report);
}

#[test]
fn connect_opens_every_connection_over_the_ramp() {
    let addr = echo_server();
    let report = measure(&args(
        "connect",
        addr,
        &["-c", "20", "--ramp-up", "100ms", "--duration", "1s"],
    ))
    .unwrap();
    assert_eq!(report.connected, 20);
    assert_eq!(report.completed, 20);
    assert!(report.failures.is_empty(), "{:?}", report.failures);
    assert_eq!(report.latency_us.unwrap().count, 20);
    assert!(report.per_second > 0.0);
}

#[test]
fn connect_to_a_closed_port_fails_with_the_refusal_as_reason() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    // The listener is dropped: nothing listens on `port` any more.
    let err = measure(&args("connect", port, &["-c", "3", "--duration", "1s"])).unwrap_err();
    match err {
        LoadError::NoConnection(failures) => {
            assert_eq!(failures.len(), 1, "{failures:?}");
            let (reason, count) = failures.iter().next().unwrap();
            assert!(reason.contains("refused"), "{reason}");
            assert_eq!(*count, 3);
        }
        other => panic!("expected NoConnection, got {other}"),
    }
}

#[test]
fn a_refused_upgrade_is_counted_by_status() {
    let addr = refusing_server();
    let err = measure(&args("echo", addr, &["-c", "2", "--duration", "200ms"])).unwrap_err();
    match err {
        LoadError::NoConnection(failures) => {
            assert_eq!(
                failures.get("upgrade: server answered 404, not 101"),
                Some(&2),
                "{failures:?}"
            )
        }
        other => panic!("expected NoConnection, got {other}"),
    }
}

#[test]
fn idle_answers_pings_and_samples_server_memory() {
    let pongs = Arc::new(AtomicU64::new(0));
    let addr = pinging_server(Arc::clone(&pongs));
    let pid = std::process::id().to_string();
    let report = measure(&args(
        "idle",
        addr,
        &[
            "-c",
            "3",
            "--duration",
            "400ms",
            "--answer-pings",
            "--server-pid",
            &pid,
        ],
    ))
    .unwrap();
    assert_eq!(report.connected, 3);
    assert!(report.pings > 0);
    // Pings that arrive together get one pong for the latest (RFC 6455 §5.5.3 allows it).
    assert!(
        report.pongs > 0 && report.pongs <= report.pings,
        "{report:?}"
    );
    assert!(report.failures.is_empty(), "{:?}", report.failures);
    let memory = report.memory.expect("sampled with --server-pid");
    assert!(memory.before > 0 && memory.end > 0);
    assert!(report.cpu.server_cores.is_some());
    // The server saw the pongs (some may still be in flight when the run ends).
    assert!(pongs.load(Ordering::Relaxed) > 0);
}

#[test]
fn idle_without_answer_pings_sends_no_pongs() {
    let pongs = Arc::new(AtomicU64::new(0));
    let addr = pinging_server(Arc::clone(&pongs));
    let report = measure(&args("idle", addr, &["-c", "2", "--duration", "300ms"])).unwrap();
    assert!(report.pings > 0);
    assert_eq!(report.pongs, 0);
    assert_eq!(pongs.load(Ordering::Relaxed), 0);
}

#[test]
fn raw_mode_counts_each_echoed_frame_length_as_a_message() {
    let addr = raw_echo_server();
    let report = measure(&args(
        "echo",
        addr,
        &[
            "--raw",
            "-c",
            "2",
            "-p",
            "100",
            "-d",
            "8",
            "--duration",
            "300ms",
        ],
    ))
    .unwrap();
    assert!(report.raw);
    assert!(report.completed > 0);
    assert!(report.failures.is_empty(), "{:?}", report.failures);
    assert_ordered_latency(&report);
}

#[test]
fn the_json_report_parses_and_carries_the_figures() {
    let addr = echo_server();
    let report = measure(&args("echo", addr, &["-c", "2", "--duration", "200ms"])).unwrap();
    let json: serde_json::Value = serde_json::from_str(&report.to_json()).unwrap();
    assert_eq!(json["scenario"], "echo");
    assert_eq!(json["completed"], report.completed);
    assert!(json["latency_us"]["p99"].as_f64().unwrap() > 0.0);
    assert!(json["timeline"].as_array().unwrap().len() >= 2);
}

#[test]
fn the_plot_is_an_svg_file() {
    let addr = echo_server();
    let path = std::env::temp_dir().join(format!("ringcast-bench-{}.svg", std::process::id()));
    let path_arg = path.to_str().unwrap().to_owned();
    let report = ringcast_load::run(args(
        "echo",
        addr,
        &[
            "-c",
            "1",
            "--duration",
            "200ms",
            "--json",
            "--plot",
            &path_arg,
        ],
    ))
    .unwrap()
    .expect("a report, not the baseline writer role");
    assert!(report.completed > 0);
    let svg = std::fs::read_to_string(&path).unwrap();
    std::fs::remove_file(&path).unwrap();
    assert!(svg.starts_with("<svg"), "{}", &svg[..svg.len().min(80)]);
    assert!(svg.contains("throughput"));
}

#[test]
fn a_remote_target_is_refused_without_allow_remote() {
    // 192.0.2.1 is TEST-NET-1 (RFC 5737): the check happens before any connection attempt.
    let args = BenchArgs::parse_flags(["echo", "--url", "ws://192.0.2.1:9/", "--quiet"]).unwrap();
    assert!(matches!(
        measure(&args),
        Err(LoadError::Target(TargetError::Remote(_)))
    ));
}

/// `ringcast-bench fanout` against an in-process server, with its baseline phase run by the
/// ringcast-bench binary Cargo built for this test.
fn fanout_args(url: &str, extra: &[&str]) -> BenchArgs {
    let mut argv = vec![
        "fanout",
        "--url",
        url,
        "--quiet",
        "-c",
        "4",
        "--rate",
        "200",
        "--duration",
        "500ms",
        "--room",
        "fanout-test",
        "--threads",
        "2",
        "--baseline-exe",
        env!("CARGO_BIN_EXE_ringcast-bench"),
    ];
    argv.extend_from_slice(extra);
    BenchArgs::parse_flags(argv).unwrap()
}

#[test]
fn fanout_delivers_every_message_to_every_subscriber_of_a_ringcast_room() {
    let server = common::TestServer::start();
    let report = measure(&fanout_args(&server.url("/ws"), &["--no-baseline"])).unwrap();
    assert!(report.failures.is_empty(), "{:?}", report.failures);
    assert_eq!(report.connected, 5, "4 subscribers and the publisher");
    let f = report.fanout.expect("fanout figures");
    assert_eq!(f.subscribers, 4);
    assert_eq!(f.joined, 4);
    assert!(f.published > 0);
    assert_eq!(f.expected_deliveries, f.published * 4);
    assert!(report.completed > 0, "deliveries within the window");
    assert_eq!(f.delivered, report.completed + report.late);
    assert_eq!(f.missing_deliveries, 0, "{f:?}");
    assert_eq!(f.delivered, f.expected_deliveries, "{f:?}");
    assert_ordered_latency(&report);
    assert!(report.baseline.is_none(), "--no-baseline");
    let json: serde_json::Value = serde_json::from_str(&report.to_json()).unwrap();
    assert_eq!(json["scenario"], "fanout");
    assert_eq!(
        json["fanout"]["expected_deliveries"].as_u64(),
        Some(f.expected_deliveries)
    );
    assert_eq!(json["fanout"]["missing_deliveries"].as_u64(), Some(0));
    assert!(report.table().contains("deliveries expected"));
    server.shutdown();
}

#[test]
fn fanout_reports_a_baseline_of_plain_writes_and_the_ratio_to_it() {
    let server = common::TestServer::start();
    let report = measure(&fanout_args(&server.url("/ws"), &[])).unwrap();
    assert!(report.failures.is_empty(), "{:?}", report.failures);
    let f = report.fanout.expect("fanout figures");
    assert_eq!(f.missing_deliveries, 0, "{f:?}");
    let b = report.baseline.clone().expect("the baseline phase ran");
    assert!(b.failures.is_empty(), "{:?}", b.failures);
    assert_eq!(b.connections, 4, "as many sockets as subscribers");
    assert_eq!(b.writers, 1);
    // 200 msg/s for 500 ms: messages due at 0, 5, …, 495 ms.
    assert_eq!(b.published, 100);
    assert_eq!(b.expected_deliveries, 400);
    assert_eq!(b.dropped_sockets, 0);
    assert_eq!(b.delivered, b.completed + b.late);
    assert_eq!(b.missing_deliveries, 0, "{b:?}");
    assert!(b.per_second > 0.0);
    let p = b.latency_us.expect("baseline latencies");
    assert_eq!(p.count, b.delivered, "every delivery carried its send time");
    assert!(p.p50 <= p.p99, "{p:?}");
    assert!(b.writer_cores.is_some(), "the helper's CPU was sampled");
    let room = report.latency_us.unwrap();
    let ratio = |a: f64, b: f64| a / b;
    assert_eq!(
        b.ratio.deliveries_per_second,
        Some(ratio(report.per_second, b.per_second))
    );
    assert_eq!(b.ratio.p50, Some(ratio(room.p50, p.p50)));
    assert_eq!(b.ratio.p99, Some(ratio(room.p99, p.p99)));
    let table = report.table();
    for row in [
        "baseline deliveries/s",
        "baseline delivery latency",
        "room / baseline deliveries/s",
        "room / baseline p99 latency",
    ] {
        assert!(table.contains(row), "{row} missing from\n{table}");
    }
    let json: serde_json::Value = serde_json::from_str(&report.to_json()).unwrap();
    assert_eq!(json["baseline"]["expected_deliveries"], 400);
    assert!(json["baseline"]["ratio"]["deliveries_per_second"].is_f64());
    assert!(json["baseline"]["ratio"]["p99"].is_f64());
    server.shutdown();
}

#[test]
fn fanout_refuses_raw_mode_and_odd_room_names() {
    let addr = echo_server();
    let bad_room = args("fanout", addr, &["--room", "a\"b"]);
    assert!(matches!(bad_room.plan(), Err(LoadError::BadRoom(_))));
    let raw = args("fanout", addr, &["--raw"]);
    assert!(matches!(raw.plan(), Err(LoadError::RawUnsupported(_))));
}

/// A WebSocket server that answers each connection's first message with a close frame carrying
/// `code` and `reason`, as a server shedding a slow consumer does.
fn closing_server(code: u16, reason: &'static str) -> SocketAddr {
    use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
    use tokio_tungstenite::tungstenite::protocol::CloseFrame;
    serve(move |stream| async move {
        let Ok(mut ws) = tokio_tungstenite::accept_async(stream).await else {
            return;
        };
        if let Some(Ok(_first)) = ws.next().await {
            let frame = CloseFrame {
                code: CloseCode::from(code),
                reason: reason.into(),
            };
            let _sent = ws.send(Message::Close(Some(frame))).await;
            while let Some(Ok(_)) = ws.next().await {}
        }
    })
}

#[test]
fn connections_the_server_closes_are_reported_by_the_code_and_reason_it_sent() {
    let addr = closing_server(1008, "slow consumer");
    let report = measure(&args("echo", addr, &["-c", "3", "--duration", "300ms"])).unwrap();
    assert_eq!(report.connected, 3);
    assert_eq!(
        report.closed_by_server.get(r#"1008 "slow consumer""#),
        Some(&3),
        "{:?}",
        report.closed_by_server
    );
    assert!(report.failures.is_empty(), "{:?}", report.failures);
    assert_eq!(
        report.problems,
        [r#"3 connections closed by the server: 1008 "slow consumer""#]
    );
    assert!(report.verdict().starts_with("result: FAILED: "));
}

/// A `/ws` look-alike that accepts every join and delivers nothing that is published.
fn swallowing_server() -> SocketAddr {
    serve(|stream| async move {
        let Ok(mut ws) = tokio_tungstenite::accept_async(stream).await else {
            return;
        };
        while let Some(Ok(msg)) = ws.next().await {
            let Message::Text(text) = msg else { continue };
            if text.contains(r#""type":"join""#) {
                let reply = r#"{"v":1,"type":"reply","id":"bench-join","ok":true}"#;
                if ws.send(Message::text(reply)).await.is_err() {
                    return;
                }
            }
        }
    })
}

#[test]
fn fanout_counts_deliveries_the_server_never_made_as_lost() {
    let addr = swallowing_server();
    let report = measure(&args(
        "fanout",
        addr,
        &[
            "-c",
            "3",
            "--rate",
            "100",
            "--duration",
            "300ms",
            "--no-baseline",
        ],
    ))
    .unwrap();
    let f = report.fanout.expect("fanout figures");
    assert_eq!(f.joined, 3);
    assert!(f.published > 0);
    assert_eq!(f.delivered, 0);
    assert_eq!(f.missing_deliveries, f.expected_deliveries);
    assert_eq!(
        report.problems,
        [format!(
            "{} of {} deliveries lost",
            f.expected_deliveries, f.expected_deliveries
        )]
    );
}

/// Runs the `ringcast-bench` binary with `flags`; returns its exit code and stdout.
fn bench_binary(flags: &[&str]) -> (Option<i32>, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ringcast-bench"))
        .args(flags)
        .output()
        .expect("ringcast-bench runs");
    (
        out.status.code(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

#[test]
fn the_binary_exits_0_and_says_ok_last_when_nothing_went_wrong() {
    let server = common::TestServer::start();
    // No path in the URL: `echo` goes to /echo.
    let url = format!("ws://{}", server.addr);
    let (code, stdout, stderr) =
        bench_binary(&["echo", "--url", &url, "-c", "2", "--duration", "200ms"]);
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    assert!(stdout.contains(&format!("{url}/echo")), "{stdout}");
    assert_eq!(
        stdout.lines().last(),
        Some("result: ok (every message answered, no connection failed)"),
        "{stdout}"
    );
    server.shutdown();
}

#[test]
fn the_binary_exits_non_zero_and_names_the_servers_close_code_and_reason_last() {
    // One message allowed, then at most 1 a second: the second of 8 pipelined echoes exceeds
    // the limit and ringcast closes the connection with 1008 "message rate exceeded".
    let server = common::TestServer::with(|c| {
        c.security.message_rate = 1;
        c.security.message_burst = 1;
    });
    let url = format!("ws://{}", server.addr);
    let (code, stdout, stderr) = bench_binary(&[
        "echo",
        "--url",
        &url,
        "-c",
        "4",
        "-d",
        "8",
        "--duration",
        "300ms",
    ]);
    assert_eq!(code, Some(3), "{stdout}{stderr}");
    assert_eq!(
        stdout.lines().last(),
        Some(r#"result: FAILED: 4 connections closed by the server: 1008 "message rate exceeded""#),
        "{stdout}"
    );
    assert!(
        stdout.contains(r#"closed by the server  4 × 1008 "message rate exceeded""#),
        "{stdout}"
    );
    // With --json the report stays one JSON document on stdout; the verdict goes to stderr.
    let (code, stdout, stderr) = bench_binary(&[
        "echo",
        "--url",
        &url,
        "-c",
        "2",
        "-d",
        "8",
        "--duration",
        "300ms",
        "--json",
    ]);
    assert_eq!(code, Some(3), "{stdout}{stderr}");
    let json: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(
        json["closed_by_server"][r#"1008 "message rate exceeded""#],
        2
    );
    assert_eq!(
        stderr.lines().last(),
        Some(r#"result: FAILED: 2 connections closed by the server: 1008 "message rate exceeded""#)
    );
    server.shutdown();
}
