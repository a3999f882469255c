//! The bridge: this node's one Redis connection, on its own thread and runtime.
//!
//! Owns the I/O with Redis and the order in which Redis traffic reaches the workers. Workers
//! talk to it only through a bounded channel of [`BridgeCmd`]s (`try_send`: a worker never
//! waits, a full channel is answered `unavailable`) and it answers through the mesh
//! (`MeshMsg::ToConn` to a connection's worker, `MeshMsg::ClusterJoined` and
//! `MeshMsg::ClusterDeliver` to the room's owner worker, which fans out as for a local
//! publish), or, for a call of the server API, on the oneshot channel its request waits on
//! ([`Asker`]): an API publish or history read takes exactly the path of a `/ws` one.
//!
//! # One connection, and why it orders delivery
//!
//! Commands, scripts and the room subscriptions share one RESP3 connection. Redis writes a
//! subscriber's pub/sub messages and a script's reply into that connection's output in the
//! order it executed them, and the client hands pub/sub messages to the push channel as it reads
//! them, before resolving any later reply. So when the `OPEN` script of a join (which reads the
//! room's position `L`) answers, every message `≤ L` is already in the push channel, and the
//! join's result, queued on the same channel (`Event`), is handled after them.
//!
//! **Delivery comes only from the subscription**: a node's own publishes reach its members the
//! same way as another node's (the publish script's reply only answers the publisher). One
//! channel, one connection: a room's messages arrive in offset order, and the per-room cursor
//! drops any offset already delivered (after a resync). Messages that arrived after `L` but
//! before the join's result was handled are handed to the joiner from a small per-room ring of
//! recent frames ([`RING`]), so a resume is exactly once across the replay/live boundary.
//!
//! # Redis loss
//!
//! A lost connection marks the cluster disconnected at once: publishes, joins and history answer
//! `unavailable` (no offset is ever assigned outside Redis). The bridge reconnects with backoff
//! (100 ms doubling to 2 s), reloads its scripts, resubscribes every room with local members,
//! and resyncs each: the messages published while it was away are read from the Stream and
//! delivered in order before any live one (or, when the Stream no longer has them or the epoch
//! changed, the offsets simply jump: never a gap presented as whole).
//!
//! It must never block a worker, never assign an offset itself, and never deliver a room's
//! messages out of offset order.

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, VecDeque};
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, PushInfo, PushKind, Value};
use tokio::sync::{mpsc, oneshot, Notify};

use super::record::{self, Body, RoomKeys};
use super::script;
use super::ClusterStatus;
use crate::backend::event::{Event as HookEvent, EventKind};
use crate::driver::mesh::{ClusterOpen, MeshMsg, Outbox, Resume};
use crate::envelope::{render, ConnId, ErrorCode};
use crate::room::stream::{Epoch, EpochSource, HistoryRules, Position};
use crate::room::{owner_of, MemberInfo};

/// Most recent frames kept per subscribed room to close the gap between a join's read of the
/// Stream and the live messages already handed on (a few at most; the bound keeps it O(1)).
pub const RING: usize = 256;

/// Publishes sent to Redis in one pipeline at most.
const BATCH: usize = 256;

/// Commands waiting for the bridge at most; past it workers answer `unavailable`.
pub const QUEUE: usize = 65_536;

/// The message of an `unavailable` reply.
pub const UNAVAILABLE: &str = "the cluster's Redis is unreachable; nothing was published (retry)";

/// Why a server-API call through the bridge got no answer from Redis: the connection is down,
/// or the bridge's queue is full. The API answers it 503 `unavailable`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{UNAVAILABLE}")]
pub struct Unreachable;

/// Who waits for the answer to a publish or a history read, and how it is told.
///
/// A `/ws` command is answered with a reply frame through the mesh (its `id` echoed); a call of
/// the server API ([`crate::api`]) with a value on the oneshot channel its request waits on.
/// Either way exactly one answer: the result, or `unavailable`.
#[derive(Debug)]
pub enum Asker<T> {
    /// A `/ws` connection's command.
    Conn {
        /// The connection.
        conn: ConnId,
        /// The command's `id`, for the reply.
        id: Option<Box<str>>,
    },
    /// A server-API request, waiting on its own task; a dropped receiver (the caller hung up)
    /// is ignored.
    Api(oneshot::Sender<Result<T, Unreachable>>),
}

impl<T> Asker<T> {
    /// Answers `unavailable`: the API caller directly; for a connection, the reply frame (rendered
    /// into `arena`) and whom to send it to, through the mesh.
    pub fn unavailable(self, arena: &mut BytesMut) -> Option<(ConnId, Bytes)> {
        match self {
            Asker::Conn { conn, id } => Some((
                conn,
                render::reply_err(arena, id.as_deref(), ErrorCode::Unavailable, UNAVAILABLE),
            )),
            Asker::Api(tx) => {
                let _ = tx.send(Err(Unreachable));
                None
            }
        }
    }

    /// Whether the server API asks (its `msg_id`s share one space across nodes).
    pub fn is_api(&self) -> bool {
        matches!(self, Asker::Api(_))
    }
}

/// What a worker asks of the bridge.
#[derive(Debug)]
pub enum BridgeCmd {
    /// Publish to a room (from its owner worker, in the order it received them).
    Publish {
        /// The room name (UTF-8).
        room: Bytes,
        /// The publisher.
        from: ConnId,
        /// Its user id.
        user: Option<Arc<str>>,
        /// Verbatim payload JSON.
        payload: Bytes,
        /// Whether the publisher gets its own message.
        echo: bool,
        /// Who gets the position Redis assigns (or `unavailable`); for the server API the
        /// position is always `Some` (every clustered publish takes an offset).
        asker: Asker<Option<Position>>,
        /// The client's message id.
        msg_id: Option<Box<str>>,
        /// Unix ms when the owner received it.
        ts: u64,
    },
    /// A member the owner registered: subscribe (the room's first on this node), read its position
    /// and what it missed.
    Join {
        /// The room.
        room: Box<str>,
        /// Who joins.
        conn: ConnId,
        /// For the owner's `joined` event.
        info: MemberInfo,
        /// The client's id.
        id: Option<Box<str>>,
        /// It watches presence.
        watch: bool,
        /// Resume point.
        since: Option<Resume>,
    },
    /// A member the owner removed (the room's last on this node: unsubscribe).
    Leave {
        /// The room.
        room: Box<str>,
    },
    /// A `history` command, or a `GET /api/history`.
    History {
        /// The room.
        room: Box<str>,
        /// Who gets the `history` frame (the API: with `id` null).
        asker: Asker<Bytes>,
        /// The last `limit` messages.
        limit: Option<u64>,
        /// Or those after this point.
        since: Option<Resume>,
    },
}

/// A worker's handle on the bridge.
#[derive(Clone, Debug)]
pub struct Link {
    tx: mpsc::Sender<BridgeCmd>,
    /// The cluster's state, for replies and metrics.
    pub status: Arc<ClusterStatus>,
}

impl Link {
    /// Hands `cmd` to the bridge without waiting; gives it back when the bridge is saturated or
    /// gone, or when Redis is known to be unreachable (the caller answers `unavailable`). Boxed
    /// only on that refusal path.
    pub fn try_send(&self, cmd: BridgeCmd) -> Result<(), Box<BridgeCmd>> {
        if !self.status.connected() && !matches!(cmd, BridgeCmd::Leave { .. }) {
            return Err(Box::new(cmd));
        }
        self.tx.try_send(cmd).map_err(|e| match e {
            mpsc::error::TrySendError::Full(c) | mpsc::error::TrySendError::Closed(c) => {
                Box::new(c)
            }
        })
    }
}

/// What the bridge needs to know of the server.
#[derive(Clone, Debug)]
pub struct BridgeConfig {
    /// `redis://HOST:PORT`.
    pub url: String,
    /// History size and ttl per room.
    pub rules: HistoryRules,
    /// Most messages a resume or history answer carries.
    pub max_recovery: usize,
    /// `msg_id` window, ms.
    pub dedup_ms: u64,
    /// The webhook sender, when it sends `publish` events: clustered, a message's offset is
    /// known here (from the publish script), so its event is raised here, once per message, on
    /// the node where it was published.
    pub publish_events: Option<Arc<crate::backend::webhook::Webhooks>>,
}

/// Starts the bridge thread; returns the handle every worker gets.
pub fn start(
    config: BridgeConfig,
    outboxes: Vec<Outbox>,
    status: Arc<ClusterStatus>,
) -> std::io::Result<Link> {
    let (tx, rx) = mpsc::channel(QUEUE);
    let link = Link {
        tx,
        status: status.clone(),
    };
    let client = redis::Client::open(format!(
        "{}/?protocol=resp3",
        config.url.trim_end_matches('/')
    ))
    .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    std::thread::Builder::new()
        .name("ringcast-cluster".into())
        .spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("the cluster runtime starts");
            let local = tokio::task::LocalSet::new();
            local.block_on(&rt, run(client, config, outboxes, status, rx));
        })?;
    Ok(link)
}

/// Delivered to the event task, in connection order.
enum Event {
    /// A push from Redis (a room message, a subscription change, the disconnection).
    Push(PushInfo),
    /// A join's `OPEN` answered.
    Opened(Box<Opening>),
    /// After a reconnect: a room's `OPEN` from its cursor answered.
    Resynced {
        room: Box<str>,
        at: Position,
        status: i64,
        records: Vec<Vec<u8>>,
    },
}

struct Opening {
    room: Box<str>,
    conn: ConnId,
    info: MemberInfo,
    id: Option<Box<str>>,
    watch: bool,
    resume: bool,
    at: Position,
    status: i64,
    records: Vec<Vec<u8>>,
}

/// One room this node is subscribed to (has members in).
struct Sub {
    /// Members on this node (joins the owner registered minus leaves).
    members: usize,
    /// Whether SUBSCRIBE went through on the current connection.
    subscribed: bool,
    /// The epoch of the last delivered message; `None` before the first.
    epoch: Option<Epoch>,
    /// The last delivered offset. Invariant: live messages at or below it are dropped.
    cursor: u64,
    /// The last [`RING`] delivered frames, by offset.
    ring: VecDeque<(u64, Bytes)>,
    /// Between a reconnect and the room's resync: live messages wait in `held`.
    syncing: bool,
    held: Vec<(Position, Bytes, Option<ConnId>)>,
    /// Joins answered while syncing: handled after it.
    waiting: Vec<Opening>,
}

impl Sub {
    fn new() -> Sub {
        Sub {
            members: 0,
            subscribed: false,
            epoch: None,
            cursor: 0,
            ring: VecDeque::new(),
            syncing: false,
            held: Vec::new(),
            waiting: Vec::new(),
        }
    }
}

struct Ctx {
    config: BridgeConfig,
    outboxes: Vec<Outbox>,
    status: Arc<ClusterStatus>,
    node: u64,
    publish_sha: String,
    open_sha: String,
    conn: RefCell<Option<MultiplexedConnection>>,
    rooms: RefCell<HashMap<Box<str>, Sub>>,
    events: mpsc::UnboundedSender<Event>,
    epochs: RefCell<EpochSource>,
    arena: RefCell<BytesMut>,
    lost: Notify,
    generation: Cell<u64>,
}

impl Ctx {
    fn send(&self, worker: usize, msg: MeshMsg) {
        let _ = self.outboxes[worker].send(msg);
    }

    fn owner(&self, room: &str) -> usize {
        owner_of(room, self.outboxes.len())
    }

    fn fresh_epoch(&self) -> String {
        self.epochs.borrow_mut().next_epoch().to_string()
    }

    fn failed(&self, error: &redis::RedisError) {
        self.status.set_error(error.to_string());
    }

    fn to_conn(&self, conn: ConnId, frame: Bytes) {
        self.send(
            conn.worker as usize,
            MeshMsg::ToConn {
                key: conn.key,
                frame,
            },
        );
    }

    fn unavailable<T>(&self, asker: Asker<T>) {
        self.status.count_unavailable();
        let frame = asker.unavailable(&mut self.arena.borrow_mut());
        if let Some((conn, frame)) = frame {
            self.to_conn(conn, frame);
        }
    }

    /// The `message` frame of a record, rendered once for this node, and who not to echo to.
    fn render(&self, room: &str, rec: &record::Record<'_>) -> (Bytes, Option<ConnId>) {
        let b = &rec.body;
        let mut own = BytesMut::with_capacity(render::message_capacity(room, b.user, b.payload));
        let frame = render::message_by(
            &mut own,
            room,
            rec.at.offset,
            b.from,
            b.user,
            b.ts,
            b.payload,
        );
        let skip = (b.node == self.node && !b.echo).then_some(b.from);
        (frame, skip)
    }
}

fn node_id() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(u64::from(std::process::id()));
    h.finish()
}

async fn run(
    client: redis::Client,
    config: BridgeConfig,
    outboxes: Vec<Outbox>,
    status: Arc<ClusterStatus>,
    rx: mpsc::Receiver<BridgeCmd>,
) {
    let (events, events_rx) = mpsc::unbounded_channel();
    let node = node_id();
    let ctx = Rc::new(Ctx {
        config,
        outboxes,
        status,
        node,
        publish_sha: redis::Script::new(script::PUBLISH).get_hash().to_owned(),
        open_sha: redis::Script::new(script::OPEN).get_hash().to_owned(),
        conn: RefCell::new(None),
        rooms: RefCell::new(HashMap::new()),
        events,
        epochs: RefCell::new(EpochSource::new(node)),
        arena: RefCell::new(BytesMut::new()),
        lost: Notify::new(),
        generation: Cell::new(0),
    });
    tokio::task::spawn_local(event_loop(ctx.clone(), events_rx));
    tokio::task::spawn_local(command_loop(ctx.clone(), rx));
    supervise(ctx, client).await;
}

/// Connects, keeps the connection, reconnects with backoff. Never returns.
async fn supervise(ctx: Rc<Ctx>, client: redis::Client) {
    let mut backoff = Duration::from_millis(100);
    loop {
        let generation = ctx.generation.get() + 1;
        ctx.generation.set(generation);
        let events = ctx.events.clone();
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(2)))
            .set_response_timeout(Some(Duration::from_secs(5)))
            .set_push_sender(move |info: PushInfo| events.send(Event::Push(info)));
        match connect(&ctx, &client, &config).await {
            Ok(conn) => {
                backoff = Duration::from_millis(100);
                *ctx.conn.borrow_mut() = Some(conn.clone());
                ctx.status.set_connected(true);
                tracing::info!(url = %ctx.config.url, "cluster: connected to Redis");
                resync(&ctx, conn).await;
                ctx.lost.notified().await;
                *ctx.conn.borrow_mut() = None;
                ctx.status.set_connected(false);
                ctx.status.count_reconnect();
                for sub in ctx.rooms.borrow_mut().values_mut() {
                    sub.subscribed = false;
                }
                tracing::warn!(url = %ctx.config.url, "cluster: lost Redis; publishes answer unavailable until it returns");
            }
            Err(e) => {
                ctx.failed(&e);
                tracing::debug!(error = %e, "cluster: Redis connect failed");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(2));
            }
        }
    }
}

async fn connect(
    ctx: &Ctx,
    client: &redis::Client,
    config: &AsyncConnectionConfig,
) -> redis::RedisResult<MultiplexedConnection> {
    let mut conn = client
        .get_multiplexed_async_connection_with_config(config)
        .await?;
    for text in [script::PUBLISH, script::OPEN] {
        let sha: String = redis::cmd("SCRIPT")
            .arg("LOAD")
            .arg(text)
            .query_async(&mut conn)
            .await?;
        debug_assert!(sha == ctx.publish_sha || sha == ctx.open_sha);
    }
    Ok(conn)
}

/// After a (re)connect: every room with members is resubscribed and read from its cursor.
async fn resync(ctx: &Rc<Ctx>, mut conn: MultiplexedConnection) {
    let rooms: Vec<(Box<str>, u64, Option<Epoch>)> = ctx
        .rooms
        .borrow_mut()
        .iter_mut()
        .map(|(room, sub)| {
            sub.syncing = true;
            (room.clone(), sub.cursor, sub.epoch)
        })
        .collect();
    for (room, cursor, epoch) in rooms {
        let keys = RoomKeys::of(&room);
        if let Err(e) = conn.subscribe(&keys.channel).await {
            ctx.failed(&e);
            return;
        }
        if let Some(sub) = ctx.rooms.borrow_mut().get_mut(&room) {
            sub.subscribed = true;
        }
        let since = epoch.map(|e| (cursor, e.to_string()));
        match open(
            ctx,
            &mut conn,
            &keys,
            since.as_ref().map(|(o, e)| (*o, e.as_str())),
        )
        .await
        {
            Ok((at, status, records)) => {
                let _ = ctx.events.send(Event::Resynced {
                    room,
                    at,
                    status,
                    records,
                });
            }
            Err(e) => {
                ctx.failed(&e);
                return;
            }
        }
    }
}

/// Runs `OPEN`: the room's position, and with `since` the records after it.
async fn open(
    ctx: &Ctx,
    conn: &mut MultiplexedConnection,
    keys: &RoomKeys,
    since: Option<(u64, &str)>,
) -> redis::RedisResult<(Position, i64, Vec<Vec<u8>>)> {
    let (offset, epoch) = match since {
        Some((o, e)) => (i64::try_from(o).unwrap_or(i64::MAX), e),
        None => (-1, ""),
    };
    let reply: Vec<Value> = redis::cmd("EVALSHA")
        .arg(&ctx.open_sha)
        .arg(3)
        .arg(&keys.offset)
        .arg(&keys.epoch)
        .arg(&keys.stream)
        .arg(ctx.fresh_epoch())
        .arg(script::KEYS_TTL_MS)
        .arg(offset)
        .arg(epoch)
        .arg(ctx.config.max_recovery)
        .query_async(conn)
        .await?;
    parse_open(reply)
}

fn bad_reply(what: &'static str) -> redis::RedisError {
    redis::RedisError::from((
        redis::ErrorKind::Client,
        "unexpected script reply",
        what.to_owned(),
    ))
}

fn parse_open(reply: Vec<Value>) -> redis::RedisResult<(Position, i64, Vec<Vec<u8>>)> {
    let mut items = reply.into_iter();
    let at = match items.next() {
        Some(Value::BulkString(b)) => {
            record::parse_position(&b)
                .map_err(|_| bad_reply("position"))?
                .0
        }
        _ => return Err(bad_reply("position")),
    };
    let status = match items.next() {
        Some(Value::Int(s)) => s,
        _ => return Err(bad_reply("status")),
    };
    let records = items
        .filter_map(|v| match v {
            Value::BulkString(b) => Some(b),
            _ => None,
        })
        .collect();
    Ok((at, status, records))
}

async fn command_loop(ctx: Rc<Ctx>, mut rx: mpsc::Receiver<BridgeCmd>) {
    let mut next: Option<BridgeCmd> = None;
    loop {
        let cmd = match next.take() {
            Some(cmd) => cmd,
            None => match rx.recv().await {
                Some(cmd) => cmd,
                None => return,
            },
        };
        match cmd {
            BridgeCmd::Publish { .. } => {
                let mut batch = vec![cmd];
                while batch.len() < BATCH {
                    match rx.try_recv() {
                        Ok(c @ BridgeCmd::Publish { .. }) => batch.push(c),
                        Ok(other) => {
                            next = Some(other);
                            break;
                        }
                        Err(_) => break,
                    }
                }
                publish(&ctx, batch).await;
            }
            BridgeCmd::Join {
                room,
                conn,
                info,
                id,
                watch,
                since,
            } => join(&ctx, room, conn, info, id, watch, since).await,
            BridgeCmd::Leave { room } => leave(&ctx, room).await,
            BridgeCmd::History {
                room,
                asker,
                limit,
                since,
            } => history(&ctx, room, asker, limit, since).await,
        }
    }
}

/// One pipeline of publish scripts, in the order the owners sent them: Redis runs them in that
/// order, so each room's offsets follow its owner's order.
async fn publish(ctx: &Ctx, batch: Vec<BridgeCmd>) {
    let conn = ctx.conn.borrow().clone();
    let mut pipe = redis::pipe();
    let mut scratch = BytesMut::new();
    for cmd in &batch {
        let BridgeCmd::Publish {
            room,
            from,
            user,
            payload,
            echo,
            asker,
            msg_id,
            ts,
        } = cmd
        else {
            continue;
        };
        let name = std::str::from_utf8(room).expect("room names in the mesh are UTF-8");
        let keys = RoomKeys::of(name);
        let policy = ctx.config.rules.policy(name);
        let dedup = msg_id.as_deref().map(|m| {
            // The server API is one sender on every node (a retry through another node's API
            // finds the original); a user is one sender on every node; an anonymous connection
            // is itself, on its node.
            let sender = match (asker.is_api(), user) {
                (true, _) => "api".to_owned(),
                (false, Some(u)) => format!("u:{u}"),
                (false, None) => format!("c:{:016x}:{from}", ctx.node),
            };
            RoomKeys::dedup(name, &sender, m)
        });
        let body = Body {
            from: *from,
            user: user.as_deref(),
            ts: *ts,
            node: ctx.node,
            echo: *echo,
            payload,
        }
        .encode(&mut scratch);
        let size = if policy.keeps() { policy.size } else { 0 };
        pipe.cmd("EVALSHA")
            .arg(&ctx.publish_sha)
            .arg(4)
            .arg(&keys.offset)
            .arg(&keys.epoch)
            .arg(&keys.stream)
            .arg(dedup.as_deref().unwrap_or(&keys.offset))
            .arg(&keys.channel)
            .arg(&body[..])
            .arg(ctx.fresh_epoch())
            .arg(size)
            .arg(policy.ttl.max(1))
            .arg(script::KEYS_TTL_MS)
            .arg(ctx.config.dedup_ms.max(1))
            .arg(if dedup.is_some() { "1" } else { "0" });
    }
    let replies: Option<Vec<Value>> = match conn {
        Some(mut conn) => match pipe.query_async(&mut conn).await {
            Ok(r) => Some(r),
            Err(e) => {
                ctx.failed(&e);
                None
            }
        },
        None => None,
    };
    let mut replies = replies.map(Vec::into_iter);
    for cmd in batch {
        let BridgeCmd::Publish {
            asker,
            room,
            from,
            user,
            payload,
            ts,
            ..
        } = cmd
        else {
            continue;
        };
        // The script answers `{1, position}` for a new message, `{0, position}` for a `msg_id`
        // it has seen (the original's position).
        let answer = replies
            .as_mut()
            .and_then(Iterator::next)
            .and_then(|v| match v {
                Value::Array(items) => match items.as_slice() {
                    [Value::Int(new), Value::BulkString(at)] => record::parse_position(at)
                        .ok()
                        .map(|(at, _)| (at, *new == 1)),
                    _ => None,
                },
                _ => None,
            });
        if let (Some((at, true)), Some(hooks)) = (answer, &ctx.config.publish_events) {
            let name = std::str::from_utf8(&room).unwrap_or_default();
            let mut event = HookEvent::new(EventKind::Publish, ts, ctx.owner(name) as u32);
            event.conn = Some(from);
            event.user = user;
            event.room = Some(name.into());
            event.offset = Some(at.offset);
            event.payload = Some(payload);
            hooks.emit(event);
        }
        let at = answer.map(|(at, _)| at);
        match (at, asker) {
            (Some(at), Asker::Conn { conn, id }) => {
                let frame =
                    render::reply_published(&mut ctx.arena.borrow_mut(), id.as_deref(), Some(at));
                ctx.to_conn(conn, frame);
            }
            (Some(at), Asker::Api(tx)) => {
                let _ = tx.send(Ok(Some(at)));
            }
            (None, asker) => ctx.unavailable(asker),
        }
    }
}

#[allow(clippy::too_many_arguments)]
async fn join(
    ctx: &Ctx,
    room: Box<str>,
    conn: ConnId,
    info: MemberInfo,
    id: Option<Box<str>>,
    watch: bool,
    since: Option<Resume>,
) {
    let subscribed = {
        let mut rooms = ctx.rooms.borrow_mut();
        let sub = rooms.entry(room.clone()).or_insert_with(Sub::new);
        sub.members += 1;
        sub.subscribed
    };
    let refuse = |room: Box<str>, info, id, watch| {
        ctx.status.count_unavailable();
        ctx.send(
            ctx.owner(&room),
            MeshMsg::ClusterJoined {
                room,
                conn,
                info,
                id,
                watch,
                result: None,
            },
        );
    };
    let Some(mut redis) = ctx.conn.borrow().clone() else {
        return refuse(room, info, id, watch);
    };
    let keys = RoomKeys::of(&room);
    if !subscribed {
        if let Err(e) = redis.subscribe(&keys.channel).await {
            ctx.failed(&e);
            return refuse(room, info, id, watch);
        }
        if let Some(sub) = ctx.rooms.borrow_mut().get_mut(&room) {
            sub.subscribed = true;
        }
    }
    let point = since.as_ref().map(|r| (r.offset, &*r.epoch));
    match open(ctx, &mut redis, &keys, point).await {
        Ok((at, status, records)) => {
            let _ = ctx.events.send(Event::Opened(Box::new(Opening {
                room,
                conn,
                info,
                id,
                watch,
                resume: since.is_some(),
                at,
                status,
                records,
            })));
        }
        Err(e) => {
            ctx.failed(&e);
            refuse(room, info, id, watch);
        }
    }
}

async fn leave(ctx: &Ctx, room: Box<str>) {
    let unsubscribe = {
        let mut rooms = ctx.rooms.borrow_mut();
        let Some(sub) = rooms.get_mut(&room) else {
            return;
        };
        sub.members = sub.members.saturating_sub(1);
        if sub.members > 0 {
            return;
        }
        let sub = rooms.remove(&room).expect("present");
        sub.subscribed
    };
    if unsubscribe {
        let Some(mut redis) = ctx.conn.borrow().clone() else {
            return;
        };
        if let Err(e) = redis.unsubscribe(&RoomKeys::of(&room).channel).await {
            ctx.failed(&e);
        }
    }
}

async fn history(
    ctx: &Ctx,
    room: Box<str>,
    asker: Asker<Bytes>,
    limit: Option<u64>,
    since: Option<Resume>,
) {
    let Some(mut redis) = ctx.conn.borrow().clone() else {
        return ctx.unavailable(asker);
    };
    let keys = RoomKeys::of(&room);
    let answer = match &since {
        Some(r) => open(ctx, &mut redis, &keys, Some((r.offset, &r.epoch)))
            .await
            .map(|(at, status, records)| (at, Some(status == 1), records)),
        None => {
            let n = limit.map_or(ctx.config.max_recovery, |l| {
                usize::try_from(l)
                    .unwrap_or(usize::MAX)
                    .min(ctx.config.max_recovery)
            });
            let mut pipe = redis::pipe();
            pipe.atomic()
                .cmd("EVALSHA")
                .arg(&ctx.open_sha)
                .arg(3)
                .arg(&keys.offset)
                .arg(&keys.epoch)
                .arg(&keys.stream)
                .arg(ctx.fresh_epoch())
                .arg(script::KEYS_TTL_MS)
                .arg(-1)
                .arg("")
                .arg(0)
                .cmd("XREVRANGE")
                .arg(&keys.stream)
                .arg("+")
                .arg("-")
                .arg("COUNT")
                .arg(n);
            match pipe
                .query_async::<(Vec<Value>, Vec<(String, Vec<(String, Vec<u8>)>)>)>(&mut redis)
                .await
            {
                Ok((opened, entries)) => parse_open(opened).map(|(at, _, _)| {
                    let records = entries
                        .into_iter()
                        .rev()
                        .filter_map(|(_, mut fields)| fields.pop().map(|(_, r)| r))
                        .collect();
                    (at, None, records)
                }),
                Err(e) => Err(e),
            }
        }
    };
    match answer {
        Ok((at, recovered, records)) => {
            let frames: Vec<Bytes> = records
                .iter()
                .filter_map(|r| record::parse(r).ok())
                .map(|rec| ctx.render(&room, &rec).0)
                .collect();
            let id = match &asker {
                Asker::Conn { id, .. } => id.as_deref(),
                Asker::Api(_) => None,
            };
            let frame = render::history(
                &mut ctx.arena.borrow_mut(),
                id,
                &room,
                Some(at),
                recovered,
                &frames,
            );
            match asker {
                Asker::Conn { conn, .. } => ctx.to_conn(conn, frame),
                Asker::Api(tx) => {
                    let _ = tx.send(Ok(frame));
                }
            }
        }
        Err(e) => {
            ctx.failed(&e);
            ctx.unavailable(asker);
        }
    }
}

async fn event_loop(ctx: Rc<Ctx>, mut rx: mpsc::UnboundedReceiver<Event>) {
    while let Some(event) = rx.recv().await {
        match event {
            Event::Push(info) => on_push(&ctx, info),
            Event::Opened(opening) => on_opened(&ctx, *opening),
            Event::Resynced {
                room,
                at,
                status,
                records,
            } => on_resynced(&ctx, &room, at, status, &records),
        }
    }
}

fn on_push(ctx: &Ctx, info: PushInfo) {
    match info.kind {
        PushKind::Disconnection if ctx.conn.borrow().is_some() => {
            ctx.status.set_connected(false);
            ctx.status.set_error("connection to Redis closed".into());
            ctx.lost.notify_one();
        }
        PushKind::Message => {
            let [Value::BulkString(channel), Value::BulkString(bytes)] = info.data.as_slice()
            else {
                return;
            };
            let Some(room) = RoomKeys::room_of_channel(channel) else {
                return;
            };
            match record::parse(bytes) {
                Ok(rec) => {
                    let (frame, skip) = ctx.render(room, &rec);
                    live(ctx, room, rec.at, frame, skip);
                }
                Err(e) => tracing::warn!(room, error = %e, "cluster: unreadable record dropped"),
            }
        }
        _ => {}
    }
}

/// A live message of `room`: delivered once, in offset order (see the module doc).
fn live(ctx: &Ctx, room: &str, at: Position, frame: Bytes, skip: Option<ConnId>) {
    let mut rooms = ctx.rooms.borrow_mut();
    let Some(sub) = rooms.get_mut(room) else {
        return;
    };
    if sub.syncing {
        sub.held.push((at, frame, skip));
        return;
    }
    if sub.epoch != Some(at.epoch) {
        // The first message, or a stream Redis started over (new epoch): offsets restart.
        sub.epoch = Some(at.epoch);
        sub.cursor = at.offset.saturating_sub(1);
        sub.ring.clear();
    }
    if at.offset <= sub.cursor {
        return;
    }
    sub.cursor = at.offset;
    if sub.ring.len() == RING {
        sub.ring.pop_front();
    }
    sub.ring.push_back((at.offset, frame.clone()));
    drop(rooms);
    deliver(ctx, room, frame, skip);
}

fn deliver(ctx: &Ctx, room: &str, frame: Bytes, skip: Option<ConnId>) {
    let room_bytes = Bytes::copy_from_slice(room.as_bytes());
    ctx.send(
        ctx.owner(room),
        MeshMsg::ClusterDeliver {
            room: room_bytes,
            frame,
            skip,
        },
    );
}

fn on_opened(ctx: &Ctx, o: Opening) {
    let mut rooms = ctx.rooms.borrow_mut();
    let mut at = o.at;
    let mut recovered = match o.status {
        -1 => None,
        s => Some(s == 1),
    };
    let mut replay = Vec::new();
    if let Some(sub) = rooms.get_mut(&o.room) {
        if sub.syncing {
            sub.waiting.push(o);
            return;
        }
        if sub.epoch == Some(at.epoch) && sub.cursor > at.offset {
            // Live messages after the read were already handed on: the joiner gets them from
            // the ring, or, if the ring no longer has them, a resume is not recovered.
            let first = at.offset + 1;
            let from_ring: Vec<Bytes> = sub
                .ring
                .iter()
                .filter(|(off, _)| *off >= first)
                .map(|(_, f)| f.clone())
                .collect();
            let covered = sub.ring.front().is_some_and(|(off, _)| *off <= first);
            if o.resume {
                if covered && recovered == Some(true) {
                    replay.extend(
                        o.records
                            .iter()
                            .filter_map(|r| record::parse(r).ok())
                            .map(|r| ctx.render(&o.room, &r).0),
                    );
                    replay.extend(from_ring);
                } else {
                    recovered = Some(false);
                }
            }
            at.offset = sub.cursor;
        } else {
            if sub.epoch != Some(at.epoch) {
                // Nothing live yet (or a stream Redis started over): this read sets the cursor.
                sub.epoch = Some(at.epoch);
                sub.cursor = at.offset;
                sub.ring.clear();
            }
            if recovered == Some(true) {
                replay.extend(
                    o.records
                        .iter()
                        .filter_map(|r| record::parse(r).ok())
                        .map(|r| ctx.render(&o.room, &r).0),
                );
            }
        }
    }
    drop(rooms);
    let owner = ctx.owner(&o.room);
    ctx.send(
        owner,
        MeshMsg::ClusterJoined {
            room: o.room,
            conn: o.conn,
            info: o.info,
            id: o.id,
            watch: o.watch,
            result: Some(ClusterOpen {
                at,
                recovered,
                replay,
            }),
        },
    );
}

fn on_resynced(ctx: &Ctx, room: &str, at: Position, status: i64, records: &[Vec<u8>]) {
    let (held, waiting) = {
        let mut rooms = ctx.rooms.borrow_mut();
        let Some(sub) = rooms.get_mut(room) else {
            return;
        };
        sub.syncing = false;
        (
            std::mem::take(&mut sub.held),
            std::mem::take(&mut sub.waiting),
        )
    };
    if status == 1 {
        // The messages published while this node was away, in order, before any live one.
        for r in records {
            if let Ok(rec) = record::parse(r) {
                let (frame, skip) = ctx.render(room, &rec);
                live(ctx, room, rec.at, frame, skip);
            }
        }
    } else if let Some(sub) = ctx.rooms.borrow_mut().get_mut(room) {
        // Not recoverable (trimmed, or a new epoch): the offsets jump, visibly.
        if sub.epoch.is_some() {
            tracing::warn!(
                room,
                "cluster: messages missed during the Redis outage are not in the stream"
            );
        }
        sub.epoch = Some(at.epoch);
        sub.cursor = at.offset;
        sub.ring.clear();
    }
    for (at, frame, skip) in held {
        live(ctx, room, at, frame, skip);
    }
    for o in waiting {
        on_opened(ctx, o);
    }
}
