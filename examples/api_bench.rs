//! The server API against `/ws`, measured in one run: `benches/api.sh` starts the server and
//! drives this client (see that script for the set-up and tuning.md "Server API" for figures).
//!
//! `cargo run --release --example api_bench -- --ws 127.0.0.1:P --api 127.0.0.1:Q --key KEY`
//!
//! Two measurements, each taken for the API and for `/ws` alternately, `--rounds` times, on the
//! same server, so every figure has its `/ws` baseline from the same run:
//!
//! - **Publishes/s** (closed loop): `--conns` connections each write `depth` publishes in one
//!   write (HTTP/1.1 keep-alive requests pipelined, or `/ws` publish frames), read the `depth`
//!   answers (each must be a 200 or an `ok` reply), and repeat, for `--seconds`. Depth 1 and 16.
//!   The room (`tput:bench`) has no members and keeps history (the script gives it
//!   `--history-rooms tput:=100`), so every publish takes an offset, renders its frame once and
//!   keeps it: the owner's work is the same for both; what differs is the way in.
//! - **Publish-to-delivery latency** at `--subscribers` members of `lat:bench` (joined with
//!   `"presence":false`): one publisher sends `--rate` publishes/s for `--seconds`, each payload
//!   `{"t":<unix µs when the publish was written>}`; every member reads each message and records
//!   now − t. The phase ends when every member has every message (or after a 10 s guard, which
//!   reports the missing deliveries and fails the run).
//!
//! The client is one thread (a current-thread tokio runtime): pin it to its own core. Frames are
//! built with the server crate's own client pieces (handshake, frame header, mask); HTTP answers
//! are framed by `Content-Length`. Traffic goes to the given loopback addresses only.

use std::cell::{Cell, RefCell};
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use clap::Parser;
use ringcast::proto::frame::{decode_header, DecodeLimits, FrameHeader, HeaderStatus};
use ringcast::proto::handshake::{
    write_client_request, ClientKey, HandshakeLimits, Parse, ResponseValidator,
};
use ringcast::proto::mask::apply_mask;
use ringcast::proto::OpCode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[derive(Parser, Debug)]
#[command(about = "The server API against /ws: publishes/s and publish-to-delivery latency")]
struct Args {
    /// The server's client listener (`/ws`), on loopback.
    #[arg(long)]
    ws: SocketAddr,
    /// The server's API listener, on loopback.
    #[arg(long)]
    api: SocketAddr,
    /// An API key the server accepts.
    #[arg(long)]
    key: String,
    /// Connections of the throughput measurement.
    #[arg(long, default_value_t = 8)]
    conns: usize,
    /// Seconds of each measured phase.
    #[arg(long, default_value_t = 3)]
    seconds: u64,
    /// Members of the latency room.
    #[arg(long, default_value_t = 1000)]
    subscribers: usize,
    /// Publishes per second of the latency measurement.
    #[arg(long, default_value_t = 100)]
    rate: u64,
    /// API / `/ws` alternations of each measurement.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Print one JSON object instead of the table.
    #[arg(long)]
    json: bool,
}

/// How a publish enters the server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Via {
    Api,
    Ws,
}

impl Via {
    fn name(self) -> &'static str {
        match self {
            Via::Api => "api",
            Via::Ws => "ws",
        }
    }
}

/// Guards a phase against a server that stopped answering; never part of a figure.
const GUARD: Duration = Duration::from_secs(10);

type Error = Box<dyn std::error::Error>;

fn main() -> Result<(), Error> {
    let args = Args::parse();
    if args.seconds == 0 || args.rate == 0 || args.rounds == 0 || args.conns == 0 {
        return Err("--seconds, --rate, --rounds and --conns must be at least 1".into());
    }
    for addr in [args.ws, args.api] {
        if !addr.ip().is_loopback() {
            return Err(format!(
                "{addr} is not a loopback address: this bench only loads 127.0.0.0/8"
            )
            .into());
        }
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let local = tokio::task::LocalSet::new();
    local.block_on(&rt, run(args))
}

async fn run(args: Args) -> Result<(), Error> {
    let mut tput: Vec<(Via, usize, f64)> = Vec::new();
    for _ in 0..args.rounds {
        for depth in [1, 16] {
            for via in [Via::Api, Via::Ws] {
                let rate = throughput(&args, via, depth)
                    .await
                    .map_err(|e| format!("throughput via {}, depth {depth}: {e}", via.name()))?;
                tput.push((via, depth, rate));
            }
        }
    }
    let members = Members::open(&args).await?;
    let mut lat: Vec<(Via, Latency)> = Vec::new();
    for _ in 0..args.rounds {
        for via in [Via::Api, Via::Ws] {
            let l = members
                .latency(&args, via)
                .await
                .map_err(|e| format!("latency via {}: {e}", via.name()))?;
            lat.push((via, l));
        }
    }
    report(&args, &tput, &lat);
    Ok(())
}

/// `POST /api/publish` of `payload` to `room`.
fn http_publish(key: &str, room: &str, payload: &str) -> Vec<u8> {
    let body = format!(r#"{{"room":"{room}","payload":{payload}}}"#);
    format!(
        "POST /api/publish HTTP/1.1\r\nHost: bench\r\nAuthorization: apikey {key}\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// A masked `/ws` text frame carrying `text`.
fn ws_frame(text: &str, out: &mut Vec<u8>) {
    ws_control(OpCode::Text, text.as_bytes(), out);
}

/// A masked client frame of `opcode` carrying `payload`.
fn ws_control(opcode: OpCode, payload: &[u8], out: &mut Vec<u8>) {
    let mask = [0x5a, 0x17, 0xc3, 0x88];
    let header = FrameHeader {
        fin: true,
        rsv: 0,
        opcode,
        mask: Some(mask),
        payload_len: payload.len() as u64,
    };
    let mut head = [0u8; ringcast::proto::frame::MAX_HEADER_LEN];
    let n = header.encode(&mut head);
    out.extend_from_slice(&head[..n]);
    let at = out.len();
    out.extend_from_slice(payload);
    apply_mask(&mut out[at..], mask, 0);
}

/// A `/ws` publish envelope of `payload` to `room` (no echo: the publisher reads its reply only).
fn ws_publish(room: &str, payload: &str) -> String {
    format!(r#"{{"type":"publish","room":"{room}","payload":{payload},"echo":false}}"#)
}

/// One connection, upgraded to `/ws` when asked, with its read buffer.
struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Conn {
    async fn http(addr: SocketAddr) -> Result<Conn, Error> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        Ok(Conn {
            stream,
            buf: Vec::with_capacity(16 * 1024),
        })
    }

    /// Connects and upgrades to `/ws`, then reads the welcome.
    async fn ws(addr: SocketAddr, nonce: u128) -> Result<Conn, Error> {
        let mut conn = Conn::http(addr).await?;
        let key = ClientKey::from_nonce(nonce.to_le_bytes());
        let mut request = Vec::with_capacity(256);
        write_client_request(&addr.to_string(), "/ws", &key, &[], &mut request)?;
        conn.stream.write_all(&request).await?;
        let mut response = ResponseValidator::new(&key, &[], HandshakeLimits::default());
        loop {
            if conn.stream.read_buf(&mut conn.buf).await? == 0 {
                return Err("the server closed during the upgrade".into());
            }
            if let Parse::Complete(_, len) = response.feed(&conn.buf)? {
                conn.buf.drain(..len);
                break;
            }
        }
        let welcome = conn.frame().await?;
        if !welcome.contains("\"welcome\"") {
            return Err(format!("expected the welcome, got {welcome}").into());
        }
        Ok(conn)
    }

    async fn fill(&mut self) -> Result<(), Error> {
        if self.buf.capacity() - self.buf.len() < 4096 {
            self.buf.reserve(16 * 1024);
        }
        match tokio::time::timeout(GUARD, self.stream.read_buf(&mut self.buf)).await {
            Ok(Ok(0)) => Err("the server closed the connection".into()),
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(e.into()),
            Err(_) => Err("no answer within the guard".into()),
        }
    }

    /// The next whole server frame's text, removed from the buffer.
    async fn frame(&mut self) -> Result<String, Error> {
        loop {
            if let Some((start, end)) = whole_frame(&self.buf)? {
                let text = String::from_utf8_lossy(&self.buf[start..end]).into_owned();
                self.buf.drain(..end);
                return Ok(text);
            }
            self.fill().await?;
        }
    }

    /// Reads `n` `/ws` replies; each must be `ok`.
    async fn ws_replies(&mut self, n: usize) -> Result<(), Error> {
        let mut got = 0;
        while got < n {
            let mut at = 0;
            while let Some((start, end)) = whole_frame(&self.buf[at..])? {
                let text = &self.buf[at + start..at + end];
                if !contains(text, br#""ok":true"#) {
                    return Err(format!(
                        "a publish was refused: {}",
                        String::from_utf8_lossy(text)
                    )
                    .into());
                }
                got += 1;
                at += end;
            }
            self.buf.drain(..at);
            if got < n {
                self.fill().await?;
            }
        }
        Ok(())
    }

    /// Reads `n` HTTP answers; each must be a 200.
    async fn http_answers(&mut self, n: usize) -> Result<(), Error> {
        let mut got = 0;
        while got < n {
            let mut at = 0;
            while let Some(len) = whole_answer(&self.buf[at..])? {
                got += 1;
                at += len;
            }
            self.buf.drain(..at);
            if got < n {
                self.fill().await?;
            }
        }
        Ok(())
    }
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// The payload bounds of the whole server frame at the front of `buf`, if it is all there, and
/// its opcode: text, or a ping (answered by members, see [`read_messages`]); anything else is an
/// error.
fn any_frame(buf: &[u8]) -> Result<Option<(OpCode, usize, usize)>, Error> {
    match decode_header(buf, &DecodeLimits::client(1 << 24))? {
        HeaderStatus::Partial { .. } => Ok(None),
        HeaderStatus::Complete { header, header_len } => {
            if !matches!(header.opcode, OpCode::Text | OpCode::Ping) {
                return Err(format!("unexpected {:?} frame from the server", header.opcode).into());
            }
            let end = header_len + header.payload_len as usize;
            Ok((buf.len() >= end).then_some((header.opcode, header_len, end)))
        }
    }
}

/// [`any_frame`] for a connection that is never idle long enough to be pinged (publishers):
/// text frames only.
fn whole_frame(buf: &[u8]) -> Result<Option<(usize, usize)>, Error> {
    match any_frame(buf)? {
        Some((OpCode::Text, start, end)) => Ok(Some((start, end))),
        Some((opcode, ..)) => Err(format!("unexpected {opcode:?} frame from the server").into()),
        None => Ok(None),
    }
}

/// The length of the whole HTTP answer at the front of `buf`, if it is all there; a status
/// other than 200 is an error.
fn whole_answer(buf: &[u8]) -> Result<Option<usize>, Error> {
    let Some(head_end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
        return Ok(None);
    };
    let head = std::str::from_utf8(&buf[..head_end])?;
    if !head.starts_with("HTTP/1.1 200 ") {
        let shown = &buf[..buf.len().min(head_end + 200)];
        return Err(format!(
            "an API publish was refused: {}",
            String::from_utf8_lossy(shown)
        )
        .into());
    }
    let len: usize = head
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse().ok())?
        })
        .ok_or("an answer without Content-Length")?;
    let end = head_end + 4 + len;
    Ok((buf.len() >= end).then_some(end))
}

/// Publishes/s of `args.conns` closed-loop connections, `depth` publishes per write.
async fn throughput(args: &Args, via: Via, depth: usize) -> Result<f64, Error> {
    let payload = r#"{"kind":"price","symbol":"ACME","bid":101.25,"ask":101.27,"seq":123456}"#;
    let one = match via {
        Via::Api => http_publish(&args.key, "tput:bench", payload),
        Via::Ws => {
            let mut f = Vec::new();
            ws_frame(&ws_publish("tput:bench", payload), &mut f);
            f
        }
    };
    let burst: Vec<u8> = one.repeat(depth);
    let mut conns = Vec::with_capacity(args.conns);
    for i in 0..args.conns {
        conns.push(match via {
            Via::Api => Conn::http(args.api).await?,
            Via::Ws => Conn::ws(args.ws, i as u128 + 1).await?,
        });
    }
    let end = Instant::now() + Duration::from_secs(args.seconds);
    let done = Rc::new(Cell::new(0u64));
    let mut tasks = Vec::new();
    for mut conn in conns {
        let burst = burst.clone();
        let done = done.clone();
        tasks.push(tokio::task::spawn_local(async move {
            while Instant::now() < end {
                conn.stream.write_all(&burst).await?;
                match via {
                    Via::Api => conn.http_answers(depth).await?,
                    Via::Ws => conn.ws_replies(depth).await?,
                }
                done.set(done.get() + depth as u64);
            }
            Ok::<(), Error>(())
        }));
    }
    let start = Instant::now();
    for t in tasks {
        t.await??;
    }
    Ok(done.get() as f64 / start.elapsed().as_secs_f64())
}

/// Publish-to-delivery latencies of one phase, µs.
struct Latency {
    samples: Vec<u64>,
}

impl Latency {
    fn percentile(&self, p: f64) -> u64 {
        let i = ((self.samples.len() as f64 - 1.0) * p).round() as usize;
        self.samples[i.min(self.samples.len() - 1)]
    }
}

fn unix_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

/// The members of the latency room, reading on their own tasks.
struct Members {
    /// Deliveries seen so far (every phase).
    delivered: Rc<Cell<u64>>,
    /// Latencies of the current phase.
    samples: Rc<RefCell<Vec<u64>>>,
    /// A member's read failed (the server closed it): the run fails.
    failed: Rc<RefCell<Option<String>>>,
    count: usize,
}

impl Members {
    async fn open(args: &Args) -> Result<Members, Error> {
        let members = Members {
            delivered: Rc::new(Cell::new(0)),
            samples: Rc::new(RefCell::new(Vec::new())),
            failed: Rc::new(RefCell::new(None)),
            count: args.subscribers,
        };
        let join = {
            let mut f = Vec::new();
            ws_frame(
                r#"{"type":"join","room":"lat:bench","presence":false}"#,
                &mut f,
            );
            f
        };
        for i in 0..args.subscribers {
            let mut conn = Conn::ws(args.ws, 1_000_000 + i as u128)
                .await
                .map_err(|e| format!("opening member {i}: {e}"))?;
            conn.stream.write_all(&join).await?;
            let reply = conn
                .frame()
                .await
                .map_err(|e| format!("joining member {i}: {e}"))?;
            if !reply.contains(r#""ok":true"#) {
                return Err(format!("a join was refused: {reply}").into());
            }
            let delivered = members.delivered.clone();
            let samples = members.samples.clone();
            let failed = members.failed.clone();
            tokio::task::spawn_local(async move {
                if let Err(e) = read_messages(conn, &delivered, &samples).await {
                    failed.borrow_mut().get_or_insert(e.to_string());
                }
            });
        }
        Ok(members)
    }

    /// One phase: `args.rate` publishes/s for `args.seconds` through `via`, then waits until
    /// every member has every message.
    async fn latency(&self, args: &Args, via: Via) -> Result<Latency, Error> {
        self.samples.borrow_mut().clear();
        let before = self.delivered.get();
        let mut publisher = match via {
            Via::Api => Conn::http(args.api).await?,
            Via::Ws => Conn::ws(args.ws, 42).await?,
        };
        let total = args.rate * args.seconds;
        let period = Duration::from_secs_f64(1.0 / args.rate as f64);
        let mut tick = tokio::time::interval(period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
        let mut out = Vec::with_capacity(256);
        let mut outstanding = 0;
        for _ in 0..total {
            tick.tick().await;
            let payload = format!(r#"{{"t":{}}}"#, unix_micros());
            out.clear();
            match via {
                Via::Api => out.extend_from_slice(&http_publish(&args.key, "lat:bench", &payload)),
                Via::Ws => ws_frame(&ws_publish("lat:bench", &payload), &mut out),
            }
            publisher.stream.write_all(&out).await?;
            outstanding += 1;
            // Answers are taken as they come, without waiting (a few outstanding at most): the
            // publisher keeps its schedule and its socket never backs up.
            if publisher.buf.capacity() - publisher.buf.len() < 4096 {
                publisher.buf.reserve(16 * 1024);
            }
            let _ = publisher.stream.try_read_buf(&mut publisher.buf);
            outstanding -= match via {
                Via::Api => count_ready_http(&mut publisher)?,
                Via::Ws => count_ready_ws(&mut publisher)?,
            };
        }
        match via {
            Via::Api => publisher.http_answers(outstanding).await?,
            Via::Ws => publisher.ws_replies(outstanding).await?,
        }
        let expected = before + total * self.count as u64;
        let guard = Instant::now() + GUARD;
        while self.delivered.get() < expected && Instant::now() < guard {
            if let Some(e) = self.failed.borrow().as_ref() {
                return Err(format!("a member failed: {e}").into());
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let got = self.delivered.get() - before;
        if got != total * self.count as u64 {
            return Err(format!(
                "{} of {} deliveries missing after the guard",
                total * self.count as u64 - got,
                total * self.count as u64
            )
            .into());
        }
        let mut samples = std::mem::take(&mut *self.samples.borrow_mut());
        samples.sort_unstable();
        Ok(Latency { samples })
    }
}

/// Counts (and removes) the whole HTTP answers already read.
fn count_ready_http(conn: &mut Conn) -> Result<usize, Error> {
    let mut at = 0;
    let mut n = 0;
    while let Some(len) = whole_answer(&conn.buf[at..])? {
        at += len;
        n += 1;
    }
    conn.buf.drain(..at);
    Ok(n)
}

/// Counts (and removes) the whole `/ws` replies already read; each must be `ok`.
fn count_ready_ws(conn: &mut Conn) -> Result<usize, Error> {
    let mut at = 0;
    let mut n = 0;
    while let Some((start, end)) = whole_frame(&conn.buf[at..])? {
        if !contains(&conn.buf[at + start..at + end], br#""ok":true"#) {
            return Err("a publish was refused".into());
        }
        at += end;
        n += 1;
    }
    conn.buf.drain(..at);
    Ok(n)
}

/// A member's loop: every message's `"t":` against the clock.
async fn read_messages(
    mut conn: Conn,
    delivered: &Cell<u64>,
    samples: &RefCell<Vec<u64>>,
) -> Result<(), Error> {
    loop {
        if conn.stream.read_buf(&mut conn.buf).await? == 0 {
            return Err("the server closed a member".into());
        }
        let now = unix_micros();
        let mut at = 0;
        let mut pongs = Vec::new();
        while let Some((opcode, start, end)) = any_frame(&conn.buf[at..])? {
            let text = &conn.buf[at + start..at + end];
            if opcode == OpCode::Ping {
                // A member idle between phases is pinged by the server's heartbeat: answer.
                let mut pong = Vec::new();
                ws_control(OpCode::Pong, text, &mut pong);
                pongs.extend_from_slice(&pong);
            } else if let Some(i) = text.windows(4).position(|w| w == br#""t":"#) {
                let t = text[i + 4..]
                    .iter()
                    .take_while(|b| b.is_ascii_digit())
                    .fold(0u64, |n, &d| n * 10 + u64::from(d - b'0'));
                samples.borrow_mut().push(now.saturating_sub(t));
                delivered.set(delivered.get() + 1);
            }
            at += end;
        }
        conn.buf.drain(..at);
        if !pongs.is_empty() {
            conn.stream.write_all(&pongs).await?;
        }
        if conn.buf.capacity() - conn.buf.len() < 4096 {
            conn.buf.reserve(16 * 1024);
        }
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn report(args: &Args, tput: &[(Via, usize, f64)], lat: &[(Via, Latency)]) {
    let rates = |via: Via, depth: usize| -> Vec<f64> {
        tput.iter()
            .filter(|(v, d, _)| *v == via && *d == depth)
            .map(|(_, _, r)| *r)
            .collect()
    };
    let ratios = |depth: usize| -> Vec<f64> {
        rates(Via::Api, depth)
            .iter()
            .zip(rates(Via::Ws, depth))
            .map(|(a, w)| a / w)
            .collect()
    };
    let pct = |via: Via, p: f64| -> Vec<u64> {
        lat.iter()
            .filter(|(v, _)| *v == via)
            .map(|(_, l)| l.percentile(p))
            .collect()
    };
    let lat_ratio = |p: f64| -> Vec<f64> {
        pct(Via::Api, p)
            .iter()
            .zip(pct(Via::Ws, p))
            .map(|(a, w)| *a as f64 / w as f64)
            .collect()
    };
    if args.json {
        let mut o = serde_json::json!({
            "conns": args.conns, "seconds": args.seconds, "rounds": args.rounds,
            "subscribers": args.subscribers, "rate": args.rate,
        });
        for depth in [1, 16] {
            for via in [Via::Api, Via::Ws] {
                o[format!("publishes_per_s_{}_depth{depth}", via.name())] =
                    serde_json::json!(rates(via, depth));
            }
            o[format!("ratio_api_ws_depth{depth}")] = serde_json::json!(ratios(depth));
        }
        for (name, p) in [("p50", 0.5), ("p99", 0.99)] {
            for via in [Via::Api, Via::Ws] {
                o[format!("latency_us_{name}_{}", via.name())] = serde_json::json!(pct(via, p));
            }
            o[format!("latency_ratio_api_ws_{name}")] = serde_json::json!(lat_ratio(p));
        }
        println!("{o}");
        return;
    }
    println!(
        "publishes/s, {} connections, closed loop, {} s per phase, {} rounds (API and /ws alternate)",
        args.conns, args.seconds, args.rounds
    );
    for depth in [1, 16] {
        let fmt = |v: &[f64]| {
            v.iter()
                .map(|r| format!("{r:.0}"))
                .collect::<Vec<_>>()
                .join(" ")
        };
        println!(
            "  depth {depth:>2}: api {} | ws {} | api/ws median {:.2} (higher is better for the API)",
            fmt(&rates(Via::Api, depth)),
            fmt(&rates(Via::Ws, depth)),
            median(ratios(depth))
        );
    }
    println!(
        "publish-to-delivery latency, {} members, {} publishes/s for {} s per phase (µs)",
        args.subscribers, args.rate, args.seconds
    );
    for (name, p) in [("p50", 0.5), ("p99", 0.99)] {
        let fmt = |v: &[u64]| v.iter().map(u64::to_string).collect::<Vec<_>>().join(" ");
        println!(
            "  {name}: api {} | ws {} | api/ws median {:.2} (lower is better for the API)",
            fmt(&pct(Via::Api, p)),
            fmt(&pct(Via::Ws, p)),
            median(lat_ratio(p))
        );
    }
}
