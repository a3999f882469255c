//! Reading the first request of a connection and deciding what it gets: a WebSocket endpoint, a
//! plain HTTP answer, or a refusal.
//!
//! Owns the server's routing table (`/echo`, `/ws`, `/` (the demo page), `/healthz`, `/metrics`) and the admission checks that
//! need server state (draining, the global connection cap), in this order on a WebSocket path:
//! the RFC 6455 upgrade rules, draining, the security policy (forwarded client, Origin, token:
//! [`admission::at_request`]), then a slot under `max_connections`. Every refusal is rendered
//! by the handshake or security module with its specific status and reason; this module only
//! picks it.

use std::net::IpAddr;

use bytes::BytesMut;

use crate::metrics::{self, Rejection};
use crate::proto::deflate::Negotiated;
use crate::proto::handshake::{self, HandshakeError, Parse, Request, RequestParser};
use crate::security::auth::is_token_protocol;
use crate::security::{Admitted, Refusal};

use super::admission;
use super::connection::{read_for_handshake, ConnShared, StopReading};
use super::worker::Worker;

/// The browser demo served at `GET /`: one self-contained page (no external assets).
const DEMO_PAGE: &str = include_str!("demo.html");
/// The browser client of the `/ws` protocol, an ES module served at `GET /ringcast.js` (the demo
/// page imports it). A module script must be served with a JavaScript MIME type.
const CLIENT_MODULE: &str = include_str!("ringcast.js");

/// A WebSocket endpoint a connection was upgraded to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Endpoint {
    /// `GET /echo`: every data message is sent back unchanged.
    Echo,
    /// `GET /ws`: JSON envelopes, rooms and pub/sub (see `docs/protocol.md`).
    Ws,
}

/// Why a request was refused.
pub enum Refused {
    /// A rule of the security policy (logged with its detail).
    Security(Refusal),
    /// A protocol or server-state rule.
    Server(Rejection),
}

impl Refused {
    /// The counter it is counted under.
    pub fn rejection(&self) -> Rejection {
        match self {
            Refused::Security(refusal) => refusal.into(),
            Refused::Server(why) => *why,
        }
    }
}

/// What the first request of a connection gets.
pub enum Route {
    /// A complete HTTP response, after which the connection is closed.
    Respond {
        /// The rendered response.
        bytes: Vec<u8>,
        /// Why the request was refused, or `None` for a successful plain request.
        rejection: Option<Refused>,
    },
    /// A `101 Switching Protocols` response; the connection then speaks WebSocket. A slot under the
    /// global connection cap has been reserved for it.
    Upgrade {
        /// The rendered 101 response.
        response: Vec<u8>,
        /// Which endpoint serves the connection.
        endpoint: Endpoint,
        /// What the security policy granted (identity, the forwarded client's per-IP slot).
        admitted: Admitted,
        /// permessage-deflate, when accepted (its answer is in `response`).
        compression: Option<Negotiated>,
    },
}

/// What arrived before the handshake ended.
pub enum Incoming {
    /// A complete request and the bytes that followed it (the first frames, if the client did not
    /// wait for the 101).
    Request(Request, BytesMut),
    /// A request that breaks a rule.
    Invalid(HandshakeError),
    /// The peer went away before completing a request.
    Gone,
}

/// Reads until the request head is complete, invalid, or the connection ends. The parser scans
/// each byte once and never looks past the head-size limit.
pub async fn read_request(worker: &Worker, conn: &ConnShared) -> Result<Incoming, StopReading> {
    let mut parser = RequestParser::new(worker.handshake_limits);
    let mut buf = BytesMut::new();
    loop {
        if read_for_handshake(worker, conn, &mut buf).await? == 0 {
            return Ok(Incoming::Gone);
        }
        match parser.parse(&buf) {
            Ok(Parse::Partial) => {}
            Ok(Parse::Complete(request, consumed)) => {
                let _ = buf.split_to(consumed);
                if buf.is_empty() {
                    worker.pool.borrow_mut().give_read(buf);
                    buf = BytesMut::new();
                }
                return Ok(Incoming::Request(request, buf));
            }
            Err(err) => {
                buf.clear();
                worker.pool.borrow_mut().give_read(buf);
                return Ok(Incoming::Invalid(err));
            }
        }
    }
}

/// Renders a refusal for a handshake error.
pub fn refusal(err: HandshakeError) -> Route {
    let mut bytes = Vec::with_capacity(256);
    err.render_response(&mut bytes);
    Route::Respond {
        bytes,
        rejection: Some(Refused::Server(Rejection::from_status(err.status()))),
    }
}

/// Decides what `request` from `peer` gets. A `HEAD` gets what a `GET` would, without the body
/// (RFC 9110 §9.3.2: "the server SHOULD send the same header fields in response to a HEAD
/// request as it would have sent if the request method had been GET", Content-Length
/// included), and is never upgraded.
pub fn route(worker: &Worker, request: &Request, peer: IpAddr) -> Route {
    if request.method() == "HEAD" {
        let mut route = match request.path() {
            "/echo" => refusal(handshake::refuse_head(request, &worker.upgrade_config)),
            "/ws" => refusal(handshake::refuse_head(request, &worker.ws_upgrade_config)),
            _ => route_get(worker, request, peer),
        };
        if let Route::Respond { bytes, .. } = &mut route {
            drop_body(bytes);
        }
        return route;
    }
    route_get(worker, request, peer)
}

/// Truncates a rendered response after its head.
fn drop_body(response: &mut Vec<u8>) {
    if let Some(end) = response.windows(4).position(|w| w == b"\r\n\r\n") {
        response.truncate(end + 4);
    }
}

fn route_get(worker: &Worker, request: &Request, peer: IpAddr) -> Route {
    match request.path() {
        "/echo" => upgrade(worker, request, peer, Endpoint::Echo),
        "/ws" => upgrade(worker, request, peer, Endpoint::Ws),
        "/" => plain(request, || {
            (
                200,
                "text/html; charset=utf-8",
                DEMO_PAGE.as_bytes().to_vec(),
            )
        }),
        "/ringcast.js" => plain(request, || {
            (
                200,
                "text/javascript; charset=utf-8",
                CLIENT_MODULE.as_bytes().to_vec(),
            )
        }),
        "/healthz" => plain(request, || {
            if worker.draining() {
                (503, "text/plain; charset=utf-8", b"draining\n".to_vec())
            } else {
                let mut body = String::from("ok\n");
                if let Some(cluster) = &worker.shared.cluster {
                    body.push_str(&cluster.health_line());
                }
                (200, "text/plain; charset=utf-8", body.into_bytes())
            }
        }),
        "/metrics" => plain(request, || {
            let mut text = metrics::render(&worker.shared.stats, worker.draining());
            if let Some(cluster) = &worker.shared.cluster {
                cluster.render_metrics(&mut text);
            }
            worker.shared.backend.render_metrics(&mut text);
            (
                200,
                "text/plain; version=0.0.4; charset=utf-8",
                text.into_bytes(),
            )
        }),
        _ => refusal(HandshakeError::NotFound),
    }
}

fn upgrade(worker: &Worker, request: &Request, peer: IpAddr, endpoint: Endpoint) -> Route {
    let config = match endpoint {
        Endpoint::Echo => &worker.upgrade_config,
        Endpoint::Ws => &worker.ws_upgrade_config,
    };
    let upgrade = match handshake::validate_upgrade(request, config) {
        Ok(upgrade) => upgrade,
        Err(err) => return refusal(err),
    };
    // A `bearer.<jwt>` entry is never selected (the token would be echoed), and a 101 selecting
    // none of the offered protocols is failed by a browser (RFC 6455 §4.1: the client fails the
    // connection if the answer "indicates the use of a subprotocol that was not present", and
    // browsers also fail one that selects none when some were offered). So a token offered this
    // way needs a protocol the server selects beside it: refused clearly here, not by a 1006 in
    // the browser later.
    if upgrade.protocol().is_none() && request.protocols().iter().any(|p| is_token_protocol(p)) {
        return refusal(HandshakeError::TokenProtocolAlone);
    }
    if worker.draining() {
        return unavailable(Rejection::Draining, "server is shutting down\n");
    }
    let admitted = match admission::at_request(worker, request, peer) {
        Ok(admitted) => admitted,
        Err(refused) => {
            let mut bytes = Vec::with_capacity(256);
            refused.render(&mut bytes);
            return Route::Respond {
                bytes,
                rejection: Some(Refused::Security(refused)),
            };
        }
    };
    if !worker.shared.try_reserve_connection() {
        return unavailable(Rejection::Capacity, "connection limit reached\n");
    }
    let accepted = worker.compression.negotiate(upgrade.offered_extensions());
    let mut response = Vec::with_capacity(256);
    upgrade.render_response_with_extensions(
        accepted.as_ref().map(|a| a.response.as_str()),
        &mut response,
    );
    Route::Upgrade {
        response,
        endpoint,
        admitted,
        compression: accepted.map(|a| a.params),
    }
}

fn unavailable(why: Rejection, reason: &str) -> Route {
    let mut bytes = Vec::with_capacity(192);
    handshake::render_response(
        503,
        "text/plain; charset=utf-8",
        &[("Connection", "close"), ("Retry-After", "1")],
        reason.as_bytes(),
        &mut bytes,
    )
    .expect("static headers are valid");
    Route::Respond {
        bytes,
        rejection: Some(Refused::Server(why)),
    }
}

/// A plain endpoint's response to a GET (or a HEAD, whose body [`route`] drops).
fn plain(request: &Request, answer: impl FnOnce() -> (u16, &'static str, Vec<u8>)) -> Route {
    if !matches!(request.method(), "GET" | "HEAD") {
        return refusal(HandshakeError::MethodNotAllowed);
    }
    let (status, content_type, body) = answer();
    let mut bytes = Vec::with_capacity(body.len() + 128);
    handshake::render_response(
        status,
        content_type,
        &[("Connection", "close")],
        &body,
        &mut bytes,
    )
    .expect("static headers are valid");
    Route::Respond {
        bytes,
        rejection: None,
    }
}
