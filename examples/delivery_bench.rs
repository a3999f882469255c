//! The client side of the reliable-delivery benches: `benches/resume_storm.sh` and
//! `benches/history_rss.sh` run it against a `ringcast serve` they started on 127.0.0.1.
//!
//! ```text
//! cargo run --release --example delivery_bench -- storm --url ws://127.0.0.1:PORT/ws --pid PID
//! cargo run --release --example delivery_bench -- flood --url ws://127.0.0.1:PORT/ws
//! ```
//!
//! - `storm`: `--subscribers` connections join one room (presence off). Then, `--rounds` times,
//!   two storms: every subscriber drops its connection; for the *baseline* storm nothing is
//!   published meanwhile, for the *replay* storm a publisher sends `--missed` messages; then all
//!   reconnect at once and join with `since` their last offset. A subscriber has caught up when
//!   the reply said `recovered: true` and it holds every missed message exactly once, in order
//!   (anything else fails the run). Prints, per storm, the time from the first reconnect until the
//!   last subscriber caught up and the server's CPU time (utime + stime of `--pid`), and the CPU
//!   per replayed message: (replay storm − baseline storm) / (subscribers × missed), so the
//!   handshakes and joins both storms share are taken out.
//! - `flood`: publishes `--per-room` messages of `--size` bytes to each of `--rooms` rooms nobody
//!   is in (kept only as history), then sends `--per-user` messages of `--size` bytes with
//!   `ack` to each of `--users` users who never connect (kept in their inboxes), and prints how
//!   many were accepted and refused (`inbox_full`). The script measures the server's RSS around it.
//!
//! Single-threaded (one tokio current-thread runtime: the script pins it to its own core). Every
//! phase is bounded by `--timeout`; 127.0.0.1 only (the URL is checked).

use std::collections::HashMap;
use std::io::{Read, Write};
use std::rc::Rc;
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio::sync::Semaphore;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;
type Error = Box<dyn std::error::Error>;

#[derive(Parser)]
struct Args {
    /// The server's `/ws` URL, on 127.0.0.1.
    #[arg(long, global = true, default_value = "ws://127.0.0.1:19451/ws")]
    url: String,
    /// Bound on each phase, in seconds.
    #[arg(long, global = true, default_value_t = 120)]
    timeout: u64,
    /// Connections opening at once.
    #[arg(long, global = true, default_value_t = 512)]
    concurrency: usize,
    #[command(subcommand)]
    mode: Mode,
}

#[derive(Subcommand)]
enum Mode {
    /// Drop and resume every subscriber at once.
    Storm {
        /// The server's process id (its CPU time is read from /proc).
        #[arg(long)]
        pid: u32,
        #[arg(long, default_value_t = 10_000)]
        subscribers: usize,
        /// Messages published while the subscribers are away (the room's history must hold them).
        #[arg(long, default_value_t = 100)]
        missed: u64,
        #[arg(long, default_value_t = 64)]
        size: usize,
        #[arg(long, default_value_t = 2)]
        rounds: usize,
        #[arg(long, default_value = "storm:1")]
        room: String,
    },
    /// Fill room histories and offline inboxes.
    Flood {
        #[arg(long, default_value_t = 2_000)]
        rooms: usize,
        #[arg(long, default_value_t = 100)]
        per_room: usize,
        #[arg(long, default_value_t = 1_000)]
        users: usize,
        #[arg(long, default_value_t = 200)]
        per_user: usize,
        /// Payload bytes of each message.
        #[arg(long, default_value_t = 1_000)]
        size: usize,
        /// Publishing connections.
        #[arg(long, default_value_t = 8)]
        publishers: usize,
    },
}

fn main() -> Result<(), Error> {
    let args = Args::parse();
    if !args.url.starts_with("ws://127.0.0.1:") {
        return Err("the URL must be ws://127.0.0.1:PORT/...: loopback only".into());
    }
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(async move {
            let limit = Duration::from_secs(args.timeout);
            match args.mode {
                Mode::Storm {
                    pid,
                    subscribers,
                    missed,
                    size,
                    rounds,
                    ref room,
                } => {
                    let storm = Storm {
                        url: args.url.clone(),
                        room: room.clone(),
                        pid,
                        subscribers,
                        missed,
                        payload: "x".repeat(size),
                        concurrency: args.concurrency,
                        limit,
                    };
                    storm.run(rounds).await
                }
                Mode::Flood {
                    rooms,
                    per_room,
                    users,
                    per_user,
                    size,
                    publishers,
                } => {
                    let flood = Flood {
                        url: args.url.clone(),
                        payload: "x".repeat(size),
                        publishers,
                        limit,
                    };
                    flood.run(rooms, per_room, users, per_user).await
                }
            }
        })
}

/// Opens a connection and reads its `welcome`.
async fn connect(url: &str) -> Result<Ws, Error> {
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await?;
    let welcome = next_text(&mut ws).await?;
    if !welcome.contains(r#""type":"welcome""#) {
        return Err(format!("expected welcome, got {welcome}").into());
    }
    Ok(ws)
}

/// The next text message.
async fn next_text(ws: &mut Ws) -> Result<String, Error> {
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(t))) => return Ok(t.as_str().to_owned()),
            Some(Ok(Message::Close(c))) => {
                return Err(format!("closed by the server: {c:?}").into())
            }
            Some(Ok(_)) => continue,
            Some(Err(e)) => return Err(e.into()),
            None => return Err("connection ended".into()),
        }
    }
}

/// Sends `command` and returns the reply with its `id` (other envelopes are skipped).
async fn call(ws: &mut Ws, command: Value) -> Result<Value, Error> {
    let id = command["id"].clone();
    ws.send(Message::text(command.to_string())).await?;
    loop {
        let text = next_text(ws).await?;
        let v: Value = serde_json::from_str(&text)?;
        if v["type"] == "reply" && v["id"] == id {
            return Ok(v);
        }
    }
}

/// The offset of a `message` envelope, read without parsing the whole envelope (the client
/// must not be what a storm measures).
fn message_offset(text: &str) -> Option<u64> {
    if !text.starts_with(r#"{"v":1,"type":"message""#) {
        return None;
    }
    let at = text.find(r#""offset":"#)? + r#""offset":"#.len();
    let digits = text[at..].bytes().take_while(u8::is_ascii_digit).count();
    text[at..at + digits].parse().ok()
}

/// utime + stime of `pid`, in seconds.
fn cpu_seconds(pid: u32) -> Result<f64, Error> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = &stat[stat.rfind(')').ok_or("bad /proc stat")? + 2..];
    let fields: Vec<&str> = rest.split(' ').collect();
    let ticks: u64 = fields[11].parse::<u64>()? + fields[12].parse::<u64>()?;
    // SAFETY: sysconf has no preconditions; _SC_CLK_TCK is a valid name.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    Ok(ticks as f64 / hz as f64)
}

/// The value of one `/metrics` series of the server at `url`, 0 when absent.
fn metric(url: &str, series: &str) -> Result<f64, Error> {
    let addr = url
        .trim_start_matches("ws://")
        .split('/')
        .next()
        .ok_or("bad url")?;
    let mut s = std::net::TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(
        s,
        "GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )?;
    let mut body = String::new();
    s.read_to_string(&mut body)?;
    Ok(body
        .lines()
        .filter_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .filter_map(|v| v.trim().parse::<f64>().ok())
        .sum())
}

fn ms(d: Duration) -> String {
    format!("{:.0} ms", d.as_secs_f64() * 1e3)
}

struct Storm {
    url: String,
    room: String,
    pid: u32,
    subscribers: usize,
    missed: u64,
    payload: String,
    concurrency: usize,
    limit: Duration,
}

/// One storm's figures.
struct Figures {
    wall: Duration,
    median: Duration,
    cpu: f64,
}

impl Storm {
    async fn run(&self, rounds: usize) -> Result<(), Error> {
        let mut publisher = connect(&self.url).await?;
        let started = Instant::now();
        let (mut subs, joined) = self.open_all(None, 0).await?;
        let position = joined.ok_or("no subscriber")?;
        println!(
            "storm: {} subscribers joined {} in {}",
            self.subscribers,
            self.room,
            ms(started.elapsed())
        );
        let (mut offset, epoch) = position;
        let mut per_message = Vec::new();
        for round in 1..=rounds {
            let mut figures = Vec::new();
            for missed in [0, self.missed] {
                drop(subs);
                self.wait_for_connections(1).await?;
                for n in 0..missed {
                    let reply = call(
                        &mut publisher,
                        json!({"type":"publish","room":self.room,"id":n.to_string(),
                               "payload":self.payload}),
                    )
                    .await?;
                    if reply["ok"] != true {
                        return Err(format!("publish refused: {reply}").into());
                    }
                }
                let cpu = cpu_seconds(self.pid)?;
                let t0 = Instant::now();
                let (again, finished) = self.resume_all(offset, &epoch, missed, t0).await?;
                let wall = t0.elapsed();
                let cpu = cpu_seconds(self.pid)? - cpu;
                subs = again;
                offset += missed;
                let f = Figures {
                    wall,
                    median: finished,
                    cpu,
                };
                println!(
                    "round {round} storm replaying {missed} messages to {} subscribers: all caught \
                     up in {} (median {}), server CPU {:.3} s",
                    self.subscribers,
                    ms(f.wall),
                    ms(f.median),
                    f.cpu
                );
                figures.push(f);
            }
            let replayed = (self.subscribers as u64 * self.missed) as f64;
            let extra = figures[1].cpu - figures[0].cpu;
            per_message.push(extra * 1e9 / replayed);
            println!(
                "round {round}: server CPU per replayed message {:.0} ns ((replay − baseline) / \
                 {replayed}); catch-up {} replaying vs {} baseline",
                extra * 1e9 / replayed,
                ms(figures[1].wall),
                ms(figures[0].wall)
            );
        }
        per_message.sort_by(f64::total_cmp);
        println!(
            "storm: median server CPU per replayed message {:.0} ns over {rounds} rounds",
            per_message[per_message.len() / 2]
        );
        Ok(())
    }

    /// Waits until the server counts `n` connections (the dropped ones are gone).
    async fn wait_for_connections(&self, n: u64) -> Result<(), Error> {
        let deadline = Instant::now() + self.limit;
        while metric(&self.url, "ringcast_connections_open")? as u64 > n {
            if Instant::now() > deadline {
                return Err("dropped connections were never closed by the server".into());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(())
    }

    /// Opens every subscriber and joins, with `since` when given; each waits for its `missed`
    /// messages. Returns the connections and the position of the first join reply.
    #[allow(clippy::type_complexity)]
    async fn open_all(
        &self,
        since: Option<(u64, &str)>,
        missed: u64,
    ) -> Result<(Vec<Ws>, Option<(u64, String)>), Error> {
        let (subs, _, position) = self
            .subscribe_all(since, missed, Instant::now(), self.concurrency)
            .await?;
        Ok((subs, position))
    }

    /// Every subscriber reconnects at once with `since`; returns them and the median time until
    /// one had caught up.
    async fn resume_all(
        &self,
        offset: u64,
        epoch: &str,
        missed: u64,
        t0: Instant,
    ) -> Result<(Vec<Ws>, Duration), Error> {
        let (subs, mut done, _) = self
            .subscribe_all(Some((offset, epoch)), missed, t0, self.subscribers)
            .await?;
        done.sort();
        Ok((subs, done[done.len() / 2]))
    }

    #[allow(clippy::type_complexity)]
    async fn subscribe_all(
        &self,
        since: Option<(u64, &str)>,
        missed: u64,
        t0: Instant,
        concurrency: usize,
    ) -> Result<(Vec<Ws>, Vec<Duration>, Option<(u64, String)>), Error> {
        let gate = Rc::new(Semaphore::new(concurrency));
        let mut tasks = Vec::with_capacity(self.subscribers);
        let set = tokio::task::LocalSet::new();
        for i in 0..self.subscribers {
            let gate = Rc::clone(&gate);
            let url = self.url.clone();
            let mut join = json!({"type":"join","room":self.room,"id":"j","presence":false});
            if let Some((offset, epoch)) = since {
                join["since"] = json!({"offset": offset, "epoch": epoch});
            }
            tasks.push(set.spawn_local(async move {
                let permit = gate.acquire().await.expect("never closed");
                let mut ws = connect(&url).await?;
                drop(permit);
                let reply = call(&mut ws, join).await?;
                if reply["ok"] != true || (missed > 0 && reply["recovered"] != true) {
                    return Err(format!("subscriber {i}: join {reply}").into());
                }
                let first = reply["offset"].as_u64().ok_or("no offset")? - missed;
                let mut want = first + 1;
                while want <= first + missed {
                    let text = next_text(&mut ws).await?;
                    if let Some(offset) = message_offset(&text) {
                        if offset != want {
                            return Err(format!(
                                "subscriber {i}: offset {offset} where {want} was due"
                            )
                            .into());
                        }
                        want += 1;
                    }
                }
                let epoch = reply["epoch"].as_str().unwrap_or_default().to_owned();
                Ok::<_, Error>((ws, t0.elapsed(), (reply["offset"].as_u64().unwrap(), epoch)))
            }));
        }
        let limit = self.limit;
        set.run_until(async move {
            let mut subs = Vec::with_capacity(tasks.len());
            let mut done = Vec::with_capacity(tasks.len());
            let mut position = None;
            let deadline = tokio::time::Instant::now() + limit;
            for task in tasks {
                let (ws, at, pos) = tokio::time::timeout_at(deadline, task)
                    .await
                    .map_err(|_| "a subscriber did not catch up in time")???;
                subs.push(ws);
                done.push(at);
                position.get_or_insert(pos);
            }
            Ok((subs, done, position))
        })
        .await
    }
}

struct Flood {
    url: String,
    payload: String,
    publishers: usize,
    limit: Duration,
}

impl Flood {
    async fn run(
        &self,
        rooms: usize,
        per_room: usize,
        users: usize,
        per_user: usize,
    ) -> Result<(), Error> {
        let started = Instant::now();
        let outcome = self
            .spread(rooms * per_room, |n| {
                json!({"type":"publish","room":format!("flood:{}", n % rooms),"id":n.to_string(),
                       "payload":self.payload})
            })
            .await?;
        println!(
            "flood: {} publishes to {rooms} rooms of history in {}: {outcome:?}",
            rooms * per_room,
            ms(started.elapsed())
        );
        let started = Instant::now();
        let outcome = self
            .spread(users * per_user, |n| {
                json!({"type":"send","to_user":format!("offline-{}", n % users),"id":n.to_string(),
                       "ack":true,"payload":self.payload})
            })
            .await?;
        println!(
            "flood: {} sends to {users} offline users in {}: {outcome:?}",
            users * per_user,
            ms(started.elapsed())
        );
        Ok(())
    }

    /// Sends `count` commands made by `command(n)` over the publishers, 64 in flight on each;
    /// returns the replies counted by outcome (`ok` or the error code).
    async fn spread(
        &self,
        count: usize,
        command: impl Fn(usize) -> Value,
    ) -> Result<HashMap<String, usize>, Error> {
        const IN_FLIGHT: usize = 64;
        let mut conns = Vec::new();
        for _ in 0..self.publishers {
            conns.push(connect(&self.url).await?);
        }
        let mut outcome = HashMap::new();
        let mut next = 0;
        let deadline = Instant::now() + self.limit;
        while next < count {
            if Instant::now() > deadline {
                return Err("the flood did not finish in time".into());
            }
            let mut sent = Vec::new();
            for ws in &mut conns {
                let batch = IN_FLIGHT.min(count - next);
                for n in next..next + batch {
                    ws.feed(Message::text(command(n).to_string())).await?;
                }
                ws.flush().await?;
                sent.push(batch);
                next += batch;
            }
            for (ws, batch) in conns.iter_mut().zip(sent) {
                let mut replies = 0;
                while replies < batch {
                    let text = next_text(ws).await?;
                    let v: Value = serde_json::from_str(&text)?;
                    if v["type"] != "reply" {
                        continue;
                    }
                    replies += 1;
                    let key = if v["ok"] == true {
                        "ok".to_owned()
                    } else {
                        v["error"]["code"].as_str().unwrap_or("?").to_owned()
                    };
                    *outcome.entry(key).or_insert(0) += 1;
                }
            }
        }
        Ok(outcome)
    }
}
