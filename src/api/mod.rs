//! The server API for backends (`--api-listen`), sans-IO: which route a request names, whether
//! its key is accepted, how long its body may be, what its JSON body says, and the rendered
//! answer. See `docs/api.yaml` for the wire contract.
//!
//! Owns the API's rules and wire format. Never does I/O and never reads a clock: the driver
//! (`driver::api`) reads requests off the socket, hands them here, and carries the typed commands
//! to the rooms' owner workers through the mesh — the same path a `/ws` publish takes.
//!
//! Every refusal is an [`ApiError`]: an HTTP status and a stable code (the codes of
//! `docs/protocol.md` where one fits: `unauthorized`, `bad_json`, `missing_field`, `bad_field`,
//! `room_name_too_long`, `payload_too_large`; and `not_found`, `method_not_allowed`,
//! `length_required` for what only HTTP can get wrong; `unavailable` while draining, or while a
//! clustered node cannot reach Redis).

pub mod keys;

use std::fmt;

use crate::envelope::{EnvelopeLimits, ErrorCode};
use crate::proto::handshake::{self, Request};
use crate::room::stream::Position;

pub use keys::ApiKeys;

/// The publisher id of every message published through the API, as `/ws` members see it in
/// `from`. It names no connection (no worker has this index), and it is also the sender under
/// which API `msg_id`s are deduplicated: every API client shares one `msg_id` space per room.
pub const API_SENDER: crate::envelope::ConnId = crate::envelope::ConnId {
    worker: u32::MAX,
    key: crate::table::ConnKey::from_u64(u64::MAX),
};

/// A route the API serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route {
    /// `POST /api/publish`.
    Publish,
    /// `GET /api/info`.
    Info,
    /// `POST /api/broadcast`.
    Broadcast,
    /// `GET /api/presence?room=`.
    Presence,
    /// `GET /api/history?room=&since=&limit=`.
    History,
    /// `POST /api/send`.
    Send,
    /// `POST /api/disconnect`.
    Disconnect,
    /// `GET /api/rooms?prefix=`.
    Rooms,
    /// `GET /api/openapi.yaml`: [`OPENAPI`].
    OpenApi,
}

impl Route {
    /// Every route with its method and path (what the spec test compares with `docs/api.yaml`).
    pub const ALL: [(Route, &'static str, &'static str); 9] = [
        (Route::OpenApi, "GET", "/api/openapi.yaml"),
        (Route::Publish, "POST", "/api/publish"),
        (Route::Send, "POST", "/api/send"),
        (Route::Disconnect, "POST", "/api/disconnect"),
        (Route::Rooms, "GET", "/api/rooms"),
        (Route::Broadcast, "POST", "/api/broadcast"),
        (Route::Presence, "GET", "/api/presence"),
        (Route::History, "GET", "/api/history"),
        (Route::Info, "GET", "/api/info"),
    ];
}

/// The API's OpenAPI 3 document (`docs/api.yaml`), served at `GET /api/openapi.yaml`.
pub const OPENAPI: &str = include_str!("../../docs/api.yaml");

impl Route {
    /// The media type of the route's successful answer.
    pub fn content_type(self) -> &'static str {
        match self {
            Route::OpenApi => "application/yaml",
            _ => "application/json",
        }
    }
}

/// Why a request was refused; each has its status and stable code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    /// No route has this path.
    #[error("no API route has this path")]
    NotFound,
    /// The path exists, not with this method.
    #[error("this path does not take this method")]
    MethodNotAllowed,
    /// No `Authorization: apikey KEY`, or an unknown key.
    #[error("a valid Authorization: apikey KEY header is required")]
    Unauthorized,
    /// A body sent with `Transfer-Encoding` (chunked) instead of `Content-Length`.
    #[error("send the body with Content-Length; Transfer-Encoding is not accepted")]
    LengthRequired,
    /// A `Content-Length` that is not one decimal number.
    #[error("Content-Length is not a single decimal number")]
    BadLength,
    /// A body over `api_max_body`.
    #[error("the body is larger than api_max_body ({0} bytes)")]
    BodyTooLarge(usize),
    /// The body is not a JSON object.
    #[error("the body is not a JSON object")]
    BadJson,
    /// A required member is missing.
    #[error("missing field {0}")]
    MissingField(&'static str),
    /// A member of the wrong type.
    #[error("field {0} has the wrong type")]
    BadField(&'static str),
    /// A room name over `max_room_name_len`.
    #[error("room name longer than max_room_name_len")]
    RoomNameTooLong,
    /// A payload over `max_payload_size`.
    #[error("payload larger than max_payload_size")]
    PayloadTooLarge,
    /// The server is draining.
    #[error("the server is shutting down")]
    Unavailable,
    /// Clustered: a publish, broadcast or history read needs the cluster's Redis, which is
    /// unreachable (or this node's bridge to it is saturated). No offset is assigned outside
    /// Redis; whether a publish cut off mid-flight reached Redis is unknown, which a retry with
    /// the same `msg_id` settles.
    #[error("the cluster's Redis is unreachable; retry (with the same msg_id a retry is never published twice)")]
    RedisUnreachable,
    /// `/api/send` on a server with auth off (no connection is a user).
    #[error("messages to users need authentication: this server runs with auth off")]
    AuthDisabled,
    /// The user's inbox refused the message (one of its bounds).
    #[error("{0}")]
    InboxFull(String),
    /// `/api/disconnect` named a connection that is not open.
    #[error("no connection has this id")]
    NoSuchConnection,
}

impl ApiError {
    /// The HTTP status.
    pub fn status(&self) -> u16 {
        match self {
            ApiError::NotFound => 404,
            ApiError::MethodNotAllowed => 405,
            ApiError::Unauthorized => 401,
            ApiError::LengthRequired => 411,
            ApiError::BodyTooLarge(_) | ApiError::PayloadTooLarge => 413,
            ApiError::Unavailable | ApiError::RedisUnreachable => 503,
            ApiError::InboxFull(_) => 429,
            ApiError::NoSuchConnection => 404,
            ApiError::AuthDisabled
            | ApiError::BadLength
            | ApiError::BadJson
            | ApiError::MissingField(_)
            | ApiError::BadField(_)
            | ApiError::RoomNameTooLong => 400,
        }
    }

    /// The stable code in the JSON answer.
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::NotFound => "not_found",
            ApiError::MethodNotAllowed => "method_not_allowed",
            ApiError::Unauthorized => ErrorCode::Unauthorized.as_str(),
            ApiError::LengthRequired => "length_required",
            ApiError::BadLength => "bad_length",
            ApiError::BodyTooLarge(_) | ApiError::PayloadTooLarge => {
                ErrorCode::PayloadTooLarge.as_str()
            }
            ApiError::BadJson => ErrorCode::BadJson.as_str(),
            ApiError::MissingField(_) => ErrorCode::MissingField.as_str(),
            ApiError::BadField(_) => ErrorCode::BadField.as_str(),
            ApiError::RoomNameTooLong => ErrorCode::RoomNameTooLong.as_str(),
            ApiError::Unavailable | ApiError::RedisUnreachable => "unavailable",
            ApiError::AuthDisabled => ErrorCode::AuthDisabled.as_str(),
            ApiError::InboxFull(_) => ErrorCode::InboxFull.as_str(),
            ApiError::NoSuchConnection => ErrorCode::NoSuchConnection.as_str(),
        }
    }

    /// Whether the connection must close after the answer: the rest of the stream cannot be
    /// framed (an unread body of unknown or refused length).
    pub fn closes(&self) -> bool {
        matches!(
            self,
            ApiError::LengthRequired | ApiError::BadLength | ApiError::BodyTooLarge(_)
        )
    }
}

/// The route `method` `path` names.
pub fn route(method: &str, path: &str) -> Result<Route, ApiError> {
    let mut path_known = false;
    for (route, m, p) in Route::ALL {
        if p == path {
            if m == method {
                return Ok(route);
            }
            path_known = true;
        }
    }
    Err(if path_known {
        ApiError::MethodNotAllowed
    } else {
        ApiError::NotFound
    })
}

/// Checks `Authorization: apikey KEY` against `keys`.
pub fn authorize(request: &Request, keys: &ApiKeys) -> Result<(), ApiError> {
    let presented = request
        .authorization()
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("apikey"))
        .map(|(_, key)| key.trim());
    match presented {
        Some(key) if keys.accepts(key) => Ok(()),
        _ => Err(ApiError::Unauthorized),
    }
}

/// The body length `request` announces: 0 without `Content-Length`. Decided from the head alone,
/// before any of the body is read (RFC 9112 §6.3: a `Transfer-Encoding` we do not frame is
/// refused rather than guessed at).
pub fn body_length(request: &Request, max: usize) -> Result<usize, ApiError> {
    if request.header("transfer-encoding").is_some() {
        return Err(ApiError::LengthRequired);
    }
    let mut lengths = request.header_all("content-length");
    let Some(first) = lengths.next() else {
        return Ok(0);
    };
    if lengths.next().is_some() || first.is_empty() || !first.iter().all(u8::is_ascii_digit) {
        return Err(ApiError::BadLength);
    }
    let len = std::str::from_utf8(first)
        .ok()
        .and_then(|s| s.parse::<usize>().ok())
        .ok_or(ApiError::BodyTooLarge(max))?;
    if len > max {
        return Err(ApiError::BodyTooLarge(max));
    }
    Ok(len)
}

/// A `POST /api/publish` body.
#[derive(Debug, PartialEq, Eq)]
pub struct Publish {
    /// The room.
    pub room: String,
    /// The payload, as compact JSON re-encoded from the body.
    pub payload: Vec<u8>,
    /// The idempotency key.
    pub msg_id: Option<String>,
}

/// Parses a publish body (simd-json; `body` is used as scratch and left unspecified).
pub fn parse_publish(body: &mut [u8], limits: &EnvelopeLimits) -> Result<Publish, ApiError> {
    use simd_json::prelude::*;
    let value = simd_json::to_borrowed_value(body).map_err(|_| ApiError::BadJson)?;
    let object = value.as_object().ok_or(ApiError::BadJson)?;
    let room = match object.get("room") {
        None => return Err(ApiError::MissingField("room")),
        Some(v) => v.as_str().ok_or(ApiError::BadField("room"))?,
    };
    check_room(room, limits, "room")?;
    let payload = required_payload(object, limits)?;
    let msg_id = match object.get("msg_id") {
        None => None,
        Some(v) if v.is_null() => None,
        Some(v) => match v.as_str() {
            Some(s) if !s.is_empty() => Some(s.to_owned()),
            _ => return Err(ApiError::BadField("msg_id")),
        },
    };
    Ok(Publish {
        room: room.to_owned(),
        payload,
        msg_id,
    })
}

/// A `POST /api/broadcast` body: one payload for several rooms.
#[derive(Debug, PartialEq, Eq)]
pub struct Broadcast {
    /// The rooms, in the order of the answer's `results`.
    pub rooms: Vec<String>,
    /// The payload, as compact JSON re-encoded from the body (once for every room).
    pub payload: Vec<u8>,
}

/// Parses a broadcast body (`rooms`: a non-empty array of room names, `payload`).
pub fn parse_broadcast(body: &mut [u8], limits: &EnvelopeLimits) -> Result<Broadcast, ApiError> {
    use simd_json::prelude::*;
    let value = simd_json::to_borrowed_value(body).map_err(|_| ApiError::BadJson)?;
    let object = value.as_object().ok_or(ApiError::BadJson)?;
    let list = object
        .get("rooms")
        .ok_or(ApiError::MissingField("rooms"))?
        .as_array()
        .filter(|a| !a.is_empty())
        .ok_or(ApiError::BadField("rooms"))?;
    let mut rooms = Vec::with_capacity(list.len());
    for room in list {
        let room = room.as_str().ok_or(ApiError::BadField("rooms"))?;
        check_room(room, limits, "rooms")?;
        rooms.push(room.to_owned());
    }
    let payload = required_payload(object, limits)?;
    Ok(Broadcast { rooms, payload })
}

/// A body's required `payload`, re-encoded as compact JSON and bounded by `max_payload_len`.
fn required_payload(
    object: &simd_json::borrowed::Object<'_>,
    limits: &EnvelopeLimits,
) -> Result<Vec<u8>, ApiError> {
    let payload = object
        .get("payload")
        .ok_or(ApiError::MissingField("payload"))?;
    let payload = simd_json::to_vec(payload).map_err(|_| ApiError::BadJson)?;
    if payload.len() > limits.max_payload_len {
        return Err(ApiError::PayloadTooLarge);
    }
    Ok(payload)
}

fn check_room(room: &str, limits: &EnvelopeLimits, field: &'static str) -> Result<(), ApiError> {
    if room.is_empty() {
        return Err(ApiError::BadField(field));
    }
    if room.len() > limits.max_room_name_len {
        return Err(ApiError::RoomNameTooLong);
    }
    Ok(())
}

/// The `room` query parameter, required.
pub fn query_room(request: &Request, limits: &EnvelopeLimits) -> Result<String, ApiError> {
    let room = request
        .query_param("room")
        .ok_or(ApiError::MissingField("room"))?;
    check_room(&room, limits, "room")?;
    Ok(room.into_owned())
}

/// A history query: `since=OFFSET:EPOCH` (all after it, or nothing) or `limit=N` (the last N).
#[derive(Debug, PartialEq, Eq)]
pub struct HistoryQuery {
    /// The last `limit` messages.
    pub limit: Option<u64>,
    /// Or those after `(offset, epoch)`.
    pub since: Option<(u64, String)>,
}

/// Reads `since` and `limit` from the query.
pub fn history_query(request: &Request) -> Result<HistoryQuery, ApiError> {
    let limit = match request.query_param("limit") {
        None => None,
        Some(l) => Some(l.parse::<u64>().map_err(|_| ApiError::BadField("limit"))?),
    };
    let since = match request.query_param("since") {
        None => None,
        Some(s) => {
            let (offset, epoch) = s.split_once(':').ok_or(ApiError::BadField("since"))?;
            let offset = offset.parse().map_err(|_| ApiError::BadField("since"))?;
            if epoch.is_empty() {
                return Err(ApiError::BadField("since"));
            }
            Some((offset, epoch.to_owned()))
        }
    };
    Ok(HistoryQuery { limit, since })
}

/// A `POST /api/send` body: a message to every connection of a user.
#[derive(Debug, PartialEq, Eq)]
pub struct Send {
    /// The user (a token's `sub`).
    pub to_user: String,
    /// The payload, as compact JSON re-encoded from the body.
    pub payload: Vec<u8>,
    /// Keep it until a connection of the user acknowledges it.
    pub ack: bool,
}

/// Parses a send body (`to_user`, `payload`, optional `ack`).
pub fn parse_send(body: &mut [u8], limits: &EnvelopeLimits) -> Result<Send, ApiError> {
    use simd_json::prelude::*;
    let value = simd_json::to_borrowed_value(body).map_err(|_| ApiError::BadJson)?;
    let object = value.as_object().ok_or(ApiError::BadJson)?;
    let to_user = object
        .get("to_user")
        .ok_or(ApiError::MissingField("to_user"))?
        .as_str()
        .filter(|u| !u.is_empty())
        .ok_or(ApiError::BadField("to_user"))?;
    let payload = required_payload(object, limits)?;
    let ack = match object.get("ack") {
        None => false,
        Some(v) => v.as_bool().ok_or(ApiError::BadField("ack"))?,
    };
    Ok(Send {
        to_user: to_user.to_owned(),
        payload,
        ack,
    })
}

/// Whom `POST /api/disconnect` closes.
#[derive(Debug, PartialEq, Eq)]
pub enum Target {
    /// Every connection of a user.
    User(String),
    /// One connection.
    Conn(crate::envelope::ConnId),
}

/// A `POST /api/disconnect` body.
#[derive(Debug, PartialEq, Eq)]
pub struct Disconnect {
    /// Whom to close.
    pub target: Target,
    /// The close code: 1000, or an application's 3000–4999. Default 1000.
    pub code: u16,
    /// The close reason, at most [`MAX_CLOSE_REASON`] bytes.
    pub reason: String,
}

/// Longest close reason (RFC 6455 §5.5: a control frame's payload is at most 125 bytes, two of
/// them the code).
pub const MAX_CLOSE_REASON: usize = 123;

/// Parses a disconnect body: exactly one of `user` and `conn`, optional `code` and `reason`.
pub fn parse_disconnect(body: &mut [u8]) -> Result<Disconnect, ApiError> {
    use simd_json::prelude::*;
    let value = simd_json::to_borrowed_value(body).map_err(|_| ApiError::BadJson)?;
    let object = value.as_object().ok_or(ApiError::BadJson)?;
    let target = match (object.get("user"), object.get("conn")) {
        (Some(u), None) => Target::User(
            u.as_str()
                .filter(|u| !u.is_empty())
                .ok_or(ApiError::BadField("user"))?
                .to_owned(),
        ),
        (None, Some(c)) => Target::Conn(
            c.as_str()
                .and_then(crate::envelope::ConnId::parse)
                .ok_or(ApiError::BadField("conn"))?,
        ),
        (None, None) => return Err(ApiError::MissingField("user")),
        (Some(_), Some(_)) => return Err(ApiError::BadField("conn")),
    };
    let code = match object.get("code") {
        None => 1000,
        Some(c) => c
            .as_u64()
            .and_then(|c| u16::try_from(c).ok())
            .filter(|&c| c == 1000 || (3000..=4999).contains(&c))
            .ok_or(ApiError::BadField("code"))?,
    };
    let reason = match object.get("reason") {
        None => String::new(),
        Some(r) => r
            .as_str()
            .filter(|r| r.len() <= MAX_CLOSE_REASON)
            .ok_or(ApiError::BadField("reason"))?
            .to_owned(),
    };
    Ok(Disconnect {
        target,
        code,
        reason,
    })
}

/// `"offset":N,"epoch":"…"`, or nulls when no offset was taken.
pub fn position_fields(at: Option<Position>, out: &mut Vec<u8>) {
    match at {
        Some(at) => out.extend_from_slice(
            format!(
                r#""offset":{},"epoch":"{}""#,
                at.offset,
                std::str::from_utf8(&at.epoch.text()).expect("hex digits")
            )
            .as_bytes(),
        ),
        None => out.extend_from_slice(br#""offset":null,"epoch":null"#),
    }
}

/// The body of a `POST /api/broadcast` answer from each room's outcome (in the request's
/// order). When no room was published, the first refusal itself (a retry is plainly safe);
/// otherwise every room's position, a refused room's with nulls and its `error`, so only those
/// rooms need a retry.
pub fn broadcast_answer(
    rooms: &[String],
    outcomes: Vec<Result<Option<Position>, ApiError>>,
) -> Result<Vec<u8>, ApiError> {
    if let Some(Err(first)) = outcomes.first() {
        if outcomes.iter().all(Result::is_err) {
            return Err(first.clone());
        }
    }
    let mut out = br#"{"results":["#.to_vec();
    for (i, (room, outcome)) in rooms.iter().zip(outcomes).enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(format!(r#"{{"room":{},"#, Quoted(room)).as_bytes());
        match outcome {
            Ok(at) => position_fields(at, &mut out),
            Err(err) => {
                position_fields(None, &mut out);
                out.extend_from_slice(
                    format!(
                        r#","error":{{"code":"{}","message":{}}}"#,
                        err.code(),
                        Quoted(&err.to_string())
                    )
                    .as_bytes(),
                );
            }
        }
        out.push(b'}');
    }
    out.extend_from_slice(b"]}");
    Ok(out)
}

/// Renders an answer of `content_type`; `close` adds `Connection: close`.
pub fn render(status: u16, content_type: &str, body: &[u8], close: bool, out: &mut Vec<u8>) {
    let headers: &[(&str, &str)] = if close {
        &[("Connection", "close")]
    } else {
        &[]
    };
    handshake::render_response(status, content_type, headers, body, out)
        .expect("static headers are valid");
}

/// Renders the answer to a refusal: `{"error":{"code":…,"message":…}}`.
pub fn render_error(error: &ApiError, close: bool, out: &mut Vec<u8>) {
    let json = format!(
        r#"{{"error":{{"code":"{}","message":{}}}}}"#,
        error.code(),
        Quoted(&error.to_string())
    );
    render(
        error.status(),
        "application/json",
        json.as_bytes(),
        close || error.closes(),
        out,
    );
}

/// A string as a JSON string literal.
pub struct Quoted<'a>(pub &'a str);

impl fmt::Display for Quoted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"")?;
        for c in self.0.chars() {
            match c {
                '"' => f.write_str("\\\"")?,
                '\\' => f.write_str("\\\\")?,
                c if (c as u32) < 0x20 => write!(f, "\\u{:04x}", c as u32)?,
                c => write!(f, "{c}")?,
            }
        }
        f.write_str("\"")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::handshake::HandshakeLimits;

    fn request(head: &str) -> Request {
        let limits = HandshakeLimits {
            max_head_bytes: 8192,
            max_headers: 32,
        };
        Request::parse_head(head.as_bytes(), &limits).unwrap()
    }

    #[test]
    fn routes_know_their_method() {
        assert_eq!(route("POST", "/api/publish"), Ok(Route::Publish));
        assert_eq!(
            route("GET", "/api/publish"),
            Err(ApiError::MethodNotAllowed)
        );
        assert_eq!(route("GET", "/api/nope"), Err(ApiError::NotFound));
    }

    #[test]
    fn the_body_length_is_decided_from_the_head() {
        let r = request("POST /api/publish HTTP/1.1\r\nContent-Length: 10\r\n\r\n");
        assert_eq!(body_length(&r, 10), Ok(10));
        assert_eq!(body_length(&r, 9), Err(ApiError::BodyTooLarge(9)));
        let r = request("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n");
        assert_eq!(body_length(&r, 9), Err(ApiError::LengthRequired));
        let r = request("POST / HTTP/1.1\r\nContent-Length: +1\r\n\r\n");
        assert_eq!(body_length(&r, 9), Err(ApiError::BadLength));
        let r = request("POST / HTTP/1.1\r\nContent-Length: 99999999999999999999999\r\n\r\n");
        assert_eq!(body_length(&r, 9), Err(ApiError::BodyTooLarge(9)));
        let r = request("GET / HTTP/1.1\r\n\r\n");
        assert_eq!(body_length(&r, 9), Ok(0));
    }

    #[test]
    fn a_key_is_accepted_only_with_the_apikey_scheme() {
        let keys = ApiKeys::new(["0123456789abcdef".to_owned()]);
        let ok = request("GET / HTTP/1.1\r\nAuthorization: apikey 0123456789abcdef\r\n\r\n");
        assert_eq!(authorize(&ok, &keys), Ok(()));
        let bearer = request("GET / HTTP/1.1\r\nAuthorization: Bearer 0123456789abcdef\r\n\r\n");
        assert_eq!(authorize(&bearer, &keys), Err(ApiError::Unauthorized));
        let none = request("GET / HTTP/1.1\r\n\r\n");
        assert_eq!(authorize(&none, &keys), Err(ApiError::Unauthorized));
    }

    #[test]
    fn a_publish_body_is_checked_member_by_member() {
        let limits = EnvelopeLimits {
            max_room_name_len: 8,
            max_payload_len: 16,
        };
        let parse = |s: &str| parse_publish(&mut s.as_bytes().to_vec(), &limits);
        assert_eq!(
            parse(r#"{"room":"a","payload":{"x": 1},"msg_id":"m"}"#),
            Ok(Publish {
                room: "a".into(),
                payload: br#"{"x":1}"#.to_vec(),
                msg_id: Some("m".into())
            })
        );
        assert_eq!(parse("nope"), Err(ApiError::BadJson));
        assert_eq!(parse("[]"), Err(ApiError::BadJson));
        assert_eq!(
            parse(r#"{"payload":1}"#),
            Err(ApiError::MissingField("room"))
        );
        assert_eq!(
            parse(r#"{"room":1,"payload":1}"#),
            Err(ApiError::BadField("room"))
        );
        assert_eq!(
            parse(r#"{"room":"a"}"#),
            Err(ApiError::MissingField("payload"))
        );
        assert_eq!(
            parse(r#"{"room":"123456789","payload":1}"#),
            Err(ApiError::RoomNameTooLong)
        );
        assert_eq!(
            parse(r#"{"room":"a","payload":"0123456789abcdef"}"#),
            Err(ApiError::PayloadTooLarge)
        );
        assert_eq!(
            parse(r#"{"room":"a","payload":1,"msg_id":2}"#),
            Err(ApiError::BadField("msg_id"))
        );
    }

    #[test]
    fn a_broadcast_body_names_rooms_and_one_payload() {
        let limits = EnvelopeLimits {
            max_room_name_len: 8,
            max_payload_len: 16,
        };
        let parse = |s: &str| parse_broadcast(&mut s.as_bytes().to_vec(), &limits);
        assert_eq!(
            parse(r#"{"rooms":["a","b"],"payload":[1, 2]}"#),
            Ok(Broadcast {
                rooms: vec!["a".into(), "b".into()],
                payload: b"[1,2]".to_vec()
            })
        );
        assert_eq!(
            parse(r#"{"payload":1}"#),
            Err(ApiError::MissingField("rooms"))
        );
        assert_eq!(
            parse(r#"{"rooms":[],"payload":1}"#),
            Err(ApiError::BadField("rooms"))
        );
        assert_eq!(
            parse(r#"{"rooms":["a",1],"payload":1}"#),
            Err(ApiError::BadField("rooms"))
        );
        assert_eq!(
            parse(r#"{"rooms":["123456789"],"payload":1}"#),
            Err(ApiError::RoomNameTooLong)
        );
        assert_eq!(
            parse(r#"{"rooms":["a"]}"#),
            Err(ApiError::MissingField("payload"))
        );
    }

    #[test]
    fn history_queries_take_since_or_limit() {
        let q = |target: &str| history_query(&request(&format!("GET {target} HTTP/1.1\r\n\r\n")));
        assert_eq!(
            q("/api/history?room=a&since=3:00ff"),
            Ok(HistoryQuery {
                limit: None,
                since: Some((3, "00ff".into()))
            })
        );
        assert_eq!(
            q("/api/history?room=a&limit=2"),
            Ok(HistoryQuery {
                limit: Some(2),
                since: None
            })
        );
        assert_eq!(q("/api/history?since=3"), Err(ApiError::BadField("since")));
        assert_eq!(
            q("/api/history?since=x:ab"),
            Err(ApiError::BadField("since"))
        );
        assert_eq!(q("/api/history?limit=-1"), Err(ApiError::BadField("limit")));
    }

    #[test]
    fn a_disconnect_names_a_user_or_a_connection_and_a_sendable_code() {
        let parse = |s: &str| parse_disconnect(&mut s.as_bytes().to_vec());
        assert_eq!(
            parse(r#"{"user":"ann","code":4001,"reason":"banned"}"#),
            Ok(Disconnect {
                target: Target::User("ann".into()),
                code: 4001,
                reason: "banned".into()
            })
        );
        assert_eq!(
            parse(r#"{"conn":"1:2.3"}"#).map(|d| (d.code, d.reason)),
            Ok((1000, String::new()))
        );
        assert_eq!(parse("{}"), Err(ApiError::MissingField("user")));
        assert_eq!(
            parse(r#"{"user":"a","conn":"1:2.3"}"#),
            Err(ApiError::BadField("conn"))
        );
        assert_eq!(parse(r#"{"conn":"x"}"#), Err(ApiError::BadField("conn")));
        for code in [999, 1001, 1006, 2999, 5000, 70000] {
            let body = format!(r#"{{"user":"a","code":{code}}}"#);
            assert_eq!(parse(&body), Err(ApiError::BadField("code")), "{code}");
        }
        let long = format!(r#"{{"user":"a","reason":"{}"}}"#, "x".repeat(124));
        assert_eq!(parse(&long), Err(ApiError::BadField("reason")));
    }

    #[test]
    fn a_send_names_a_user_a_payload_and_maybe_ack() {
        let limits = EnvelopeLimits::default();
        let parse = |s: &str| parse_send(&mut s.as_bytes().to_vec(), &limits);
        assert_eq!(
            parse(r#"{"to_user":"ann","payload":"hi","ack":true}"#),
            Ok(Send {
                to_user: "ann".into(),
                payload: br#""hi""#.to_vec(),
                ack: true
            })
        );
        assert_eq!(
            parse(r#"{"payload":1}"#),
            Err(ApiError::MissingField("to_user"))
        );
        assert_eq!(
            parse(r#"{"to_user":"","payload":1}"#),
            Err(ApiError::BadField("to_user"))
        );
        assert_eq!(
            parse(r#"{"to_user":"a"}"#),
            Err(ApiError::MissingField("payload"))
        );
        assert_eq!(
            parse(r#"{"to_user":"a","payload":1,"ack":1}"#),
            Err(ApiError::BadField("ack"))
        );
    }

    #[test]
    fn a_broadcast_answer_names_each_refused_room_or_is_the_refusal_when_none_was_published() {
        let at = |offset| Position {
            offset,
            epoch: crate::room::stream::Epoch::from_text(b"00000000000000ab").unwrap(),
        };
        let rooms = ["a".to_owned(), "b".to_owned(), "c".to_owned()];
        let body = broadcast_answer(
            &rooms,
            vec![Ok(Some(at(3))), Err(ApiError::RedisUnreachable), Ok(None)],
        )
        .unwrap();
        let expected = format!(
            concat!(
                r#"{{"results":[{{"room":"a","offset":3,"epoch":"00000000000000ab"}},"#,
                r#"{{"room":"b","offset":null,"epoch":null,"error":{{"code":"unavailable","message":{}}}}},"#,
                r#"{{"room":"c","offset":null,"epoch":null}}]}}"#
            ),
            Quoted(&ApiError::RedisUnreachable.to_string())
        );
        assert_eq!(String::from_utf8(body).unwrap(), expected);
        assert_eq!(
            broadcast_answer(
                &rooms[..2],
                vec![Err(ApiError::RedisUnreachable), Err(ApiError::Unavailable)]
            ),
            Err(ApiError::RedisUnreachable)
        );
    }

    #[test]
    fn an_error_answer_carries_status_code_and_message() {
        let mut out = Vec::new();
        render_error(&ApiError::Unauthorized, false, &mut out);
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with("HTTP/1.1 401 "), "{text}");
        assert!(text.ends_with(
            r#"{"error":{"code":"unauthorized","message":"a valid Authorization: apikey KEY header is required"}}"#
        ));
        assert!(!text.contains("Connection: close"));
    }
}
