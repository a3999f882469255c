//! The server API's I/O: each worker accepts on its API listener (`api_listen`), reads requests
//! (HTTP/1.1, keep-alive, pipelined), and carries the calls [`crate::api`] decodes to the rooms'
//! owner workers through the mesh.
//!
//! Owns the API connections' sockets and buffers, and nothing else: every decision (route, key,
//! body length, JSON, the answer's bytes) is [`crate::api`]'s, and a publish goes through the
//! same owner code as a `/ws` publish ([`app::publish_at_owner`]): same offsets, history, dedup,
//! fan-out. Clustered, the owner hands an API publish or history read to the node's Redis bridge
//! exactly as a `/ws` one ([`crate::cluster::bridge::Asker::Api`]): Redis assigns the offset,
//! the room's channel delivers it on every node, history is read from the room's Stream, and
//! while Redis is unreachable the call answers 503 `unavailable`.
//!
//! Pipelined requests of one connection that have arrived whole are started together, in order
//! (each owner sees them in request order), and answered in order in one write
//! ([`PIPELINE_BATCH`] at most at once): answers are never reordered, and a backend that
//! pipelines pays one turn of the worker per batch, not per request. A request head goes through
//! the handshake's parser (`RequestParser`, httparse) with the same head limits; a body is read
//! only once its `Content-Length` is known to be within `api_max_body`. It never blocks a worker: a
//! call to another worker is awaited on a oneshot channel, on this connection's own task.

use std::rc::Rc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::sync::oneshot;
use tokio_uring::net::{TcpListener, TcpStream};

use crate::api::{self, ApiError, Route};
use crate::cluster::bridge::{Asker, BridgeCmd, Unreachable};
use crate::envelope::render::frame_text;
use crate::proto::conn::State;
use crate::proto::handshake::{Parse, Request, RequestParser};
use crate::room::owner_of;
use crate::room::stream::Position;
use crate::table::ConnKey;

use super::app;
use super::mesh::{MeshMsg, Resume};
use super::users;
use super::worker::Worker;

/// A call from an API connection to the worker that owns its subject.
#[derive(Debug)]
pub enum Call {
    /// Publish to a room owned by the receiving worker.
    Publish {
        /// The room name (UTF-8).
        room: Bytes,
        /// The payload JSON.
        payload: Bytes,
        /// The idempotency key.
        msg_id: Option<Box<str>>,
        /// Gets the position (`None`: nobody to deliver to and nothing kept, on a node that is
        /// not clustered), or, clustered, [`Unreachable`] while Redis is.
        reply: oneshot::Sender<Result<Option<Position>, Unreachable>>,
    },
    /// Who is in a room owned by the receiving worker.
    Presence {
        /// The room.
        room: Box<str>,
        /// Gets the `/ws` presence frame.
        reply: oneshot::Sender<Bytes>,
    },
    /// The history of a room owned by the receiving worker.
    History {
        /// The room.
        room: Box<str>,
        /// The last `limit` messages.
        limit: Option<u64>,
        /// Or those after this point.
        since: Option<Resume>,
        /// Gets the `/ws` history frame, or, clustered, [`Unreachable`] while Redis is.
        reply: oneshot::Sender<Result<Bytes, Unreachable>>,
    },
    /// A message to a user owned by the receiving worker.
    Send {
        /// The user.
        user: Box<str>,
        /// The payload JSON.
        payload: Bytes,
        /// Keep it until acknowledged.
        ack: bool,
        /// Gets the message id, or the inbox's refusal.
        reply: oneshot::Sender<Result<String, String>>,
    },
    /// Close every connection of a user owned by the receiving worker.
    DisconnectUser {
        /// The user.
        user: Box<str>,
        /// The close code.
        code: u16,
        /// The close reason.
        reason: Box<str>,
        /// Gets how many connections are being closed.
        reply: oneshot::Sender<usize>,
    },
    /// Close connections of the receiving worker.
    Close {
        /// Their keys.
        keys: Vec<ConnKey>,
        /// The close code.
        code: u16,
        /// The close reason.
        reason: Box<str>,
        /// Gets how many were open (and are now closing), if anyone waits.
        reply: Option<oneshot::Sender<usize>>,
    },
    /// The rooms the receiving worker owns, with member counts.
    Rooms {
        /// Only names starting with this.
        prefix: Box<str>,
        /// Gets them.
        reply: oneshot::Sender<Vec<(Box<str>, usize)>>,
    },
}

/// Closes `/ws` or `/echo` connection `key` of this worker with `code` and `reason` (the peer
/// gets the close frame; the close timeout applies as for any close we start). `false` when it
/// is not open (gone, or not yet upgraded).
fn close(worker: &Rc<Worker>, key: ConnKey, code: u16, reason: &str) -> bool {
    let conn = worker.table.borrow().get(key).cloned();
    let Some(conn) = conn else {
        return false;
    };
    let closing = match conn.machine(&worker.conn_limits) {
        Some(mut machine) if machine.state() == State::Open => {
            machine.close(code, reason);
            true
        }
        _ => false,
    };
    if closing {
        let deadline = worker.now() + super::worker::millis(worker.config().close_timeout);
        worker.arm(key, &conn.timer, deadline);
        worker.wake(key, &conn);
    }
    closing
}

/// Handles a call at the worker it was sent to.
pub fn on_mesh(worker: &Rc<Worker>, call: Call) {
    match call {
        Call::Publish {
            room,
            payload,
            msg_id,
            reply,
        } => {
            if let Some(link) = app::cluster(worker) {
                // As a `/ws` publish at its owner: Redis assigns the offset; the bridge answers.
                let cmd = BridgeCmd::Publish {
                    room,
                    from: api::API_SENDER,
                    user: None,
                    payload,
                    echo: true,
                    asker: Asker::Api(reply),
                    msg_id,
                    ts: app::unix_now(worker),
                };
                if let Err(BridgeCmd::Publish { asker, .. }) = link.try_send(cmd).map_err(|c| *c) {
                    app::unavailable(worker, link, asker);
                }
                return;
            }
            app::publish_at_owner(
                worker,
                room,
                api::API_SENDER,
                None,
                payload,
                true,
                msg_id,
                |at| {
                    // The caller may have hung up meanwhile: the publish stands, unanswered.
                    let _ = reply.send(Ok(at));
                },
            );
        }
        Call::Presence { room, reply } => {
            let _ = reply.send(app::presence_at_owner(worker, &room, None));
        }
        Call::History {
            room,
            limit,
            since,
            reply,
        } => {
            if let Some(link) = app::cluster(worker) {
                // As a `/ws` history at its owner: read from the room's Redis Stream.
                let cmd = BridgeCmd::History {
                    room,
                    asker: Asker::Api(reply),
                    limit,
                    since,
                };
                if let Err(BridgeCmd::History { asker, .. }) = link.try_send(cmd).map_err(|c| *c) {
                    app::unavailable(worker, link, asker);
                }
                return;
            }
            let frame = app::history_at_owner(worker, &room, None, limit, since.as_ref());
            let _ = reply.send(Ok(frame));
        }
        Call::Send {
            user,
            payload,
            ack,
            reply,
        } => users::api_send(worker, &user, payload, ack, reply),
        Call::DisconnectUser {
            user,
            code,
            reason,
            reply,
        } => {
            let conns = users::conns_of(worker, &user);
            let _ = reply.send(conns.len());
            let mut by_worker: Vec<Vec<ConnKey>> = vec![Vec::new(); worker.shared.stats.len()];
            for c in conns {
                by_worker[c.worker as usize].push(c.key);
            }
            for (w, keys) in by_worker.into_iter().enumerate() {
                if !keys.is_empty() {
                    worker.app.send(
                        w,
                        MeshMsg::Api(Call::Close {
                            keys,
                            code,
                            reason: reason.clone(),
                            reply: None,
                        }),
                    );
                }
            }
        }
        Call::Close {
            keys,
            code,
            reason,
            reply,
        } => {
            let closed = keys
                .into_iter()
                .filter(|&key| close(worker, key, code, &reason))
                .count();
            if let Some(reply) = reply {
                let _ = reply.send(closed);
            }
        }
        Call::Rooms { prefix, reply } => {
            let _ = reply.send(app::room_counts(worker, &prefix));
        }
    }
}

/// Accepts API connections on this worker until the worker exits.
pub async fn accept_loop(worker: Rc<Worker>, listener: TcpListener) {
    loop {
        match listener.accept().await {
            Ok((stream, _peer)) => {
                let _ = stream.set_nodelay(true);
                tokio_uring::spawn(serve(worker.clone(), stream));
            }
            Err(e) => {
                tracing::warn!(worker = worker.id, error = %e, "API accept failed; pausing API accepts for 100 ms");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// Appends more bytes to `buf`; `None` when the peer closed, the read failed, or nothing came
/// for `idle` (`idle_timeout`, as on `/ws`): a silent API connection, idle between requests or
/// stalled inside one, is closed rather than held.
async fn read_more(stream: &TcpStream, buf: BytesMut, idle: Duration) -> Option<BytesMut> {
    use tokio_uring::buf::{BoundedBuf, Slice};
    let mut buf = buf;
    if buf.capacity() - buf.len() < 1024 {
        buf.reserve(4096);
    }
    // Invariant: the read goes after the bytes already held. tokio-uring reads into a buffer
    // from its start, so it is handed the free tail as a slice (whose `set_init` extends the
    // whole buffer); reading into `buf` itself would overwrite a request that arrived in parts.
    let len = buf.len();
    match tokio::time::timeout(idle, stream.read(buf.slice(len..))).await {
        Ok((Ok(n), tail)) if n > 0 => Some(Slice::into_inner(tail)),
        Ok(_) => None,
        Err(_) => {
            // The dropped read is still in flight in the ring (tokio-uring keeps its buffer until
            // the kernel is done), and it keeps the socket open past our close: shut it down,
            // which ends that read and sends the FIN.
            let _ = stream.shutdown(std::net::Shutdown::Both);
            None
        }
    }
}

/// Serves one API connection: request after request until the peer closes, asks to close, or
/// sends what cannot be framed.
async fn serve(worker: Rc<Worker>, stream: TcpStream) {
    let mut buf = BytesMut::with_capacity(4096);
    let mut parser = RequestParser::new(worker.handshake_limits);
    let max_body = worker.config().api_max_body;
    let idle = worker.config().idle_timeout;
    loop {
        let request = loop {
            match parser.parse(&buf) {
                Ok(Parse::Complete(request, consumed)) => {
                    let _ = buf.split_to(consumed);
                    parser.reset();
                    break request;
                }
                Ok(Parse::Partial) => match read_more(&stream, buf, idle).await {
                    Some(more) => buf = more,
                    None => return,
                },
                Err(err) => {
                    tracing::debug!(worker = worker.id, error = %err, "API request refused");
                    let mut out = Vec::with_capacity(256);
                    err.render_response(&mut out);
                    let _ = stream.write_all(out).await;
                    return;
                }
            }
        };
        let len = match api::body_length(&request, max_body) {
            Ok(len) => len,
            Err(err) => {
                tracing::debug!(worker = worker.id, error = %err, "API request refused");
                respond_error(&worker, &stream, &err, true).await;
                return;
            }
        };
        // Reserved once: the length is known and within `api_max_body`.
        buf.reserve(len.saturating_sub(buf.len()));
        while buf.len() < len {
            match read_more(&stream, buf, idle).await {
                Some(more) => buf = more,
                None => return,
            }
        }
        let body = buf.split_to(len);
        let close = wants_close(&request);
        let mut batch = vec![(request, body, close)];
        // Pipelined requests already read whole join this one, up to one that asks to close;
        // one still arriving, or refused from its head, waits for the next turn.
        while batch.len() < PIPELINE_BATCH && !batch.last().is_some_and(|(_, _, close)| *close) {
            match parser.parse(&buf) {
                Ok(Parse::Complete(request, consumed)) => {
                    parser.reset();
                    match api::body_length(&request, max_body) {
                        Ok(len) if consumed + len <= buf.len() => {
                            let _ = buf.split_to(consumed);
                            let body = buf.split_to(len);
                            let close = wants_close(&request);
                            batch.push((request, body, close));
                        }
                        _ => break,
                    }
                }
                Ok(Parse::Partial) => break,
                Err(_) => {
                    parser.reset();
                    break;
                }
            }
        }
        // Started together, in order (each sends its mesh message when first polled, so every
        // owner sees them in request order), answered in order, written in one write.
        let answers = futures_util::future::join_all(
            batch
                .iter_mut()
                .map(|(request, body, close)| answer(&worker, request, body, *close)),
        )
        .await;
        let mut out = Vec::new();
        let mut close = false;
        for (answer, closes) in answers {
            out.extend_from_slice(&answer);
            close |= closes;
            worker.stats().api_requests.add(1);
        }
        let (written, _) = stream.write_all(out).await;
        if written.is_err() || close {
            return;
        }
    }
}

/// Most pipelined requests of one connection started together: bounds one connection's share of
/// its worker's turn (and the answers buffered for one write).
const PIPELINE_BATCH: usize = 64;

/// Whether the client asked to close after this answer (`Connection: close`, or HTTP/1.0
/// without `keep-alive`).
fn wants_close(request: &Request) -> bool {
    let connection = request.header_str("connection").unwrap_or("");
    let has = |token: &str| {
        connection
            .split(',')
            .any(|t| t.trim().eq_ignore_ascii_case(token))
    };
    if request.minor_version() == 0 {
        !has("keep-alive")
    } else {
        has("close")
    }
}

async fn respond_error(worker: &Worker, stream: &TcpStream, err: &ApiError, close: bool) {
    let mut out = Vec::with_capacity(256);
    api::render_error(err, close, &mut out);
    worker.stats().api_requests.add(1);
    let _ = stream.write_all(out).await;
}

/// The rendered answer to one request and whether the connection closes after it.
async fn answer(
    worker: &Worker,
    request: &Request,
    body: &mut [u8],
    close: bool,
) -> (Vec<u8>, bool) {
    let mut out = Vec::with_capacity(256);
    let handled = match api::authorize(request, &worker.shared.api_keys)
        .and_then(|()| api::route(request.method(), request.path()))
    {
        Ok(route) => handle(worker, route, request, body)
            .await
            .map(|answer| (route, answer)),
        Err(err) => Err(err),
    };
    match handled {
        Ok((route, answer)) => api::render(200, route.content_type(), &answer, close, &mut out),
        Err(err) => {
            if err == ApiError::Unauthorized {
                worker.stats().api_unauthorized.add(1);
            }
            tracing::debug!(worker = worker.id, error = %err, path = request.path(), "API request refused");
            api::render_error(&err, close, &mut out);
            return (out, close || err.closes());
        }
    }
    (out, close)
}

async fn handle(
    worker: &Worker,
    route: Route,
    request: &Request,
    body: &mut [u8],
) -> Result<Vec<u8>, ApiError> {
    if worker.draining() {
        return Err(ApiError::Unavailable);
    }
    match route {
        Route::OpenApi => Ok(api::OPENAPI.as_bytes().to_vec()),
        Route::Info => {
            // This node's figures; clustered, whether it reaches the cluster's Redis.
            let shared = &worker.shared;
            let cluster = match &shared.cluster {
                None => "null",
                Some(status) if status.connected() => r#"{"connected":true}"#,
                Some(_) => r#"{"connected":false}"#,
            };
            Ok(format!(
                r#"{{"version":"{}","workers":{},"connections":{},"cluster":{cluster}}}"#,
                env!("CARGO_PKG_VERSION"),
                shared.stats.len(),
                shared
                    .open_connections
                    .load(std::sync::atomic::Ordering::Relaxed)
            )
            .into_bytes())
        }
        Route::Publish => {
            let limits = app::envelope_limits(worker.config());
            let publish = api::parse_publish(body, &limits)?;
            let at = publish_one(
                worker,
                publish.room,
                Bytes::from(publish.payload),
                publish.msg_id,
            )
            .await?;
            let mut out = b"{".to_vec();
            api::position_fields(at, &mut out);
            out.push(b'}');
            Ok(out)
        }
        Route::Broadcast => {
            let limits = app::envelope_limits(worker.config());
            let broadcast = api::parse_broadcast(body, &limits)?;
            // One payload buffer for every room; each owner renders its room's frame once.
            let payload = Bytes::from(broadcast.payload);
            let waits: Vec<_> = broadcast
                .rooms
                .iter()
                .map(|room| publish_one(worker, room.clone(), payload.clone(), None))
                .collect();
            let mut outcomes = Vec::with_capacity(waits.len());
            for wait in waits {
                outcomes.push(wait.await);
            }
            api::broadcast_answer(&broadcast.rooms, outcomes)
        }
        Route::Send => {
            let limits = app::envelope_limits(worker.config());
            let send = api::parse_send(body, &limits)?;
            if !users::auth_on(worker) {
                return Err(ApiError::AuthDisabled);
            }
            let (reply, rx) = oneshot::channel();
            worker.app.send(
                users::owner_of(worker, &send.to_user),
                MeshMsg::Api(Call::Send {
                    user: send.to_user.into(),
                    payload: Bytes::from(send.payload),
                    ack: send.ack,
                    reply,
                }),
            );
            let msg_id = rx
                .await
                .map_err(|_| ApiError::Unavailable)?
                .map_err(ApiError::InboxFull)?;
            Ok(format!(r#"{{"msg_id":{}}}"#, api::Quoted(&msg_id)).into_bytes())
        }
        Route::Disconnect => {
            let d = api::parse_disconnect(body)?;
            let (reply, rx) = oneshot::channel();
            let reason: Box<str> = d.reason.into();
            let to = match d.target {
                api::Target::User(user) => {
                    let owner = users::owner_of(worker, &user);
                    (
                        owner,
                        Call::DisconnectUser {
                            user: user.into(),
                            code: d.code,
                            reason,
                            reply,
                        },
                    )
                }
                api::Target::Conn(conn) => {
                    if conn.worker as usize >= worker.shared.stats.len() {
                        return Err(ApiError::NoSuchConnection);
                    }
                    (
                        conn.worker as usize,
                        Call::Close {
                            keys: vec![conn.key],
                            code: d.code,
                            reason,
                            reply: Some(reply),
                        },
                    )
                }
            };
            let one_conn = matches!(to.1, Call::Close { .. });
            worker.app.send(to.0, MeshMsg::Api(to.1));
            let closed = rx.await.map_err(|_| ApiError::Unavailable)?;
            if one_conn && closed == 0 {
                return Err(ApiError::NoSuchConnection);
            }
            Ok(format!(r#"{{"disconnected":{closed}}}"#).into_bytes())
        }
        Route::Rooms => {
            let prefix: Box<str> = request.query_param("prefix").unwrap_or_default().into();
            let mut rooms: Vec<(Box<str>, usize)> = ask_all(worker, |reply| Call::Rooms {
                prefix: prefix.clone(),
                reply,
            })
            .await?
            .into_iter()
            .flatten()
            .collect();
            rooms.sort_unstable();
            let mut out = br#"{"rooms":["#.to_vec();
            for (i, (name, members)) in rooms.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                out.extend_from_slice(
                    format!(r#"{{"room":{},"members":{members}}}"#, api::Quoted(name)).as_bytes(),
                );
            }
            out.extend_from_slice(b"]}");
            Ok(out)
        }
        Route::Presence => {
            let room = api::query_room(request, &app::envelope_limits(worker.config()))?;
            let (reply, rx) = oneshot::channel();
            let owner = owner_of(&room, worker.shared.stats.len());
            worker.app.send(
                owner,
                MeshMsg::Api(Call::Presence {
                    room: room.into(),
                    reply,
                }),
            );
            let frame = rx.await.map_err(|_| ApiError::Unavailable)?;
            Ok(frame_text(&frame).to_vec())
        }
        Route::History => {
            let room = api::query_room(request, &app::envelope_limits(worker.config()))?;
            let query = api::history_query(request)?;
            let (reply, rx) = oneshot::channel();
            let owner = owner_of(&room, worker.shared.stats.len());
            worker.app.send(
                owner,
                MeshMsg::Api(Call::History {
                    room: room.into(),
                    limit: query.limit,
                    since: query.since.map(|(offset, epoch)| Resume {
                        offset,
                        epoch: epoch.into(),
                    }),
                    reply,
                }),
            );
            let frame = rx
                .await
                .map_err(|_| ApiError::Unavailable)?
                .map_err(|Unreachable| ApiError::RedisUnreachable)?;
            Ok(frame_text(&frame).to_vec())
        }
    }
}

/// The `workers` answers of one call to every worker, gathered.
async fn ask_all<T>(
    worker: &Worker,
    call: impl Fn(oneshot::Sender<T>) -> Call,
) -> Result<Vec<T>, ApiError> {
    let workers = worker.shared.stats.len();
    let mut waits = Vec::with_capacity(workers);
    for w in 0..workers {
        let (reply, rx) = oneshot::channel();
        worker.app.send(w, MeshMsg::Api(call(reply)));
        waits.push(rx);
    }
    let mut answers = Vec::with_capacity(workers);
    for rx in waits {
        answers.push(rx.await.map_err(|_| ApiError::Unavailable)?);
    }
    Ok(answers)
}

/// Sends one publish to the room's owner; the returned future resolves to its position. The
/// message is sent at once (not when the future is first polled), so several publishes go out
/// together and each owner keeps their order.
fn publish_one(
    worker: &Worker,
    room: String,
    payload: Bytes,
    msg_id: Option<String>,
) -> impl std::future::Future<Output = Result<Option<Position>, ApiError>> {
    let (reply, rx) = oneshot::channel();
    let owner = owner_of(&room, worker.shared.stats.len());
    worker.app.send(
        owner,
        MeshMsg::Api(Call::Publish {
            room: Bytes::from(room.into_bytes()),
            payload,
            msg_id: msg_id.map(Into::into),
            reply,
        }),
    );
    // The owner (or, clustered, the bridge) always answers unless it has exited (shutdown).
    async move {
        rx.await
            .map_err(|_| ApiError::Unavailable)?
            .map_err(|Unreachable| ApiError::RedisUnreachable)
    }
}
