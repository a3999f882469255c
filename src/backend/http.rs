//! A small HTTP/1.1 client for the backend: `POST` a body to one `http://HOST:PORT/path`, with
//! keep-alive, a timeout on the whole exchange, and a bounded answer.
//!
//! Owns the wire format of a request and the reading of a response (`Content-Length`, chunked, or
//! delimited by the close); [`Target`] parses the URL once at start-up. It runs only on the
//! backend threads ([`super::webhook`], [`super::authorize`]), never on a worker, and must never
//! speak TLS (a plain `http://` URL is the contract: put a local proxy in front of an `https`
//! backend) or follow redirects.

use std::cell::RefCell;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Largest response head read.
const MAX_HEAD: usize = 16 * 1024;
/// Largest response body read; a larger one is an error (the backend answers small JSON).
pub const MAX_BODY: usize = 64 * 1024;
/// Idle keep-alive connections kept per target.
const MAX_IDLE: usize = 16;

/// Why a URL is not a backend URL.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    /// Not `http://` (TLS is not spoken).
    #[error("must start with http:// (https is not supported: put a local proxy in front)")]
    Scheme,
    /// No host after the scheme.
    #[error("has no host")]
    NoHost,
    /// User information (`user:pass@`) in the authority.
    #[error("must not carry credentials (user:password@)")]
    Credentials,
    /// A port that is not a number from 1 to 65535.
    #[error("has a bad port")]
    Port,
    /// A fragment or whitespace or control characters.
    #[error("must not contain whitespace, control characters or a #fragment")]
    Characters,
}

/// Where requests go: parsed once from `http://HOST[:PORT][/path][?query]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    /// `HOST:PORT` to connect to (resolved at each new connection).
    pub authority: String,
    /// The `Host` header: the authority as written.
    pub host: String,
    /// The request target (path and query), at least `/`.
    pub path: String,
}

impl Target {
    /// Parses a backend URL.
    pub fn parse(url: &str) -> Result<Target, UrlError> {
        if url.bytes().any(|b| b <= b' ' || b == 0x7f || b == b'#') {
            return Err(UrlError::Characters);
        }
        let rest = url
            .get(..7)
            .filter(|s| s.eq_ignore_ascii_case("http://"))
            .map(|_| &url[7..])
            .ok_or(UrlError::Scheme)?;
        let (host, path) = match rest.find(['/', '?']) {
            Some(i) if rest.as_bytes()[i] == b'/' => (&rest[..i], rest[i..].to_owned()),
            Some(i) => (&rest[..i], format!("/{}", &rest[i..])),
            None => (rest, "/".to_owned()),
        };
        if host.contains('@') {
            return Err(UrlError::Credentials);
        }
        if host.is_empty() || host.starts_with(':') {
            return Err(UrlError::NoHost);
        }
        // `[v6]:port`, `name:port`, or no port (80).
        let port_at = match host.rfind(':') {
            Some(i) if !host[i..].contains(']') => Some(i),
            _ => None,
        };
        let authority = match port_at {
            Some(i) => {
                let port: u16 = host[i + 1..].parse().map_err(|_| UrlError::Port)?;
                if port == 0 {
                    return Err(UrlError::Port);
                }
                host.to_owned()
            }
            None => format!("{host}:80"),
        };
        Ok(Target {
            authority,
            host: host.to_owned(),
            path,
        })
    }
}

/// Why an exchange failed.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// The connection could not be opened.
    #[error("cannot connect: {0}")]
    Connect(std::io::Error),
    /// Reading or writing failed, or the backend closed before answering.
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    /// No complete answer within the timeout.
    #[error("no answer within {}ms", .0.as_millis())]
    Timeout(Duration),
    /// The answer is not HTTP/1.x as this client reads it.
    #[error("malformed response: {0}")]
    Malformed(&'static str),
}

/// One response: its status and body.
#[derive(Debug)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// The body (at most [`MAX_BODY`] bytes).
    pub body: Vec<u8>,
}

struct Conn {
    stream: TcpStream,
    /// Bytes read past the previous response (a backend that answers early); normally empty.
    buf: Vec<u8>,
    /// Whether any byte of the current exchange's answer arrived.
    answered: bool,
}

/// Keep-alive connections to one target. Single-threaded (`RefCell`): used by one backend thread,
/// and no borrow is held across an `.await` (a connection is taken out while in use).
pub struct Client {
    target: Target,
    timeout: Duration,
    idle: RefCell<Vec<Conn>>,
}

impl Client {
    /// A client for `target` whose exchanges each end within `timeout`.
    pub fn new(target: Target, timeout: Duration) -> Client {
        Client {
            target,
            timeout,
            idle: RefCell::new(Vec::new()),
        }
    }

    /// `POST`s `body` (JSON) with `headers`, on a kept-alive connection when there is one. A
    /// kept-alive connection the backend closed meanwhile is retried once on a new connection
    /// (nothing was answered on it, so nothing is sent twice to a live backend).
    pub async fn post(&self, headers: &[(&str, &str)], body: &[u8]) -> Result<Response, HttpError> {
        let request = self.request(headers, body);
        let timeout = self.timeout;
        let exchange = async {
            let reused = self.idle.borrow_mut().pop();
            if let Some(mut conn) = reused {
                match exchange(&mut conn, &request).await {
                    Ok((response, keep)) => {
                        self.park(conn, keep);
                        return Ok(response);
                    }
                    // Closed by the backend while idle: nothing was answered, so nothing was
                    // processed; send it again on a new connection.
                    Err(_) if !conn.answered => {}
                    Err(e) => return Err(e),
                }
            }
            let stream = TcpStream::connect(&self.target.authority)
                .await
                .map_err(HttpError::Connect)?;
            let _ = stream.set_nodelay(true);
            let mut conn = Conn {
                stream,
                buf: Vec::new(),
                answered: false,
            };
            let (response, keep) = exchange(&mut conn, &request).await?;
            self.park(conn, keep);
            Ok(response)
        };
        tokio::time::timeout(timeout, exchange)
            .await
            .map_err(|_| HttpError::Timeout(timeout))?
    }

    fn park(&self, conn: Conn, keep: bool) {
        let mut idle = self.idle.borrow_mut();
        if keep && idle.len() < MAX_IDLE {
            idle.push(conn);
        }
    }

    fn request(&self, headers: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
        use std::io::Write;
        let mut out = Vec::with_capacity(256 + body.len());
        let _ = write!(
            out,
            "POST {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: ringcast/{}\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\n",
            self.target.path,
            self.target.host,
            env!("CARGO_PKG_VERSION"),
            body.len()
        );
        for (name, value) in headers {
            let _ = write!(out, "{name}: {value}\r\n");
        }
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(body);
        out
    }
}

/// Writes `request` and reads one response; `keep`: the connection may carry another.
async fn exchange(conn: &mut Conn, request: &[u8]) -> Result<(Response, bool), HttpError> {
    conn.answered = !conn.buf.is_empty();
    conn.stream.write_all(request).await?;
    let mut buf = std::mem::take(&mut conn.buf);
    let (status, head_len, framing, keep) = loop {
        let parsed = {
            let mut headers = [httparse::EMPTY_HEADER; 64];
            let mut response = httparse::Response::new(&mut headers);
            match response.parse(&buf) {
                Ok(httparse::Status::Complete(len)) => {
                    let status = response.code.ok_or(HttpError::Malformed("no status"))?;
                    let close = response.version == Some(0)
                        || header_has(response.headers, "connection", "close");
                    Some((status, len, framing(response.headers)?, !close))
                }
                Ok(httparse::Status::Partial) => None,
                Err(_) => return Err(HttpError::Malformed("not an HTTP/1.x response")),
            }
        };
        match parsed {
            // An interim answer (100 Continue): the real one follows.
            Some((status, len, ..)) if (100..200).contains(&status) => {
                buf.drain(..len);
            }
            Some(done) => break done,
            None => {
                if buf.len() >= MAX_HEAD {
                    return Err(HttpError::Malformed("head too large"));
                }
                if read_more(conn, &mut buf).await? == 0 {
                    return Err(HttpError::Io(std::io::ErrorKind::UnexpectedEof.into()));
                }
            }
        }
    };
    buf.drain(..head_len);
    let (body, keep) = match framing {
        Framing::Length(n) => {
            if n > MAX_BODY {
                return Err(HttpError::Malformed("body too large"));
            }
            while buf.len() < n {
                if read_more(conn, &mut buf).await? == 0 {
                    return Err(HttpError::Io(std::io::ErrorKind::UnexpectedEof.into()));
                }
            }
            let rest = buf.split_off(n);
            conn.buf = rest;
            (buf, keep)
        }
        Framing::Chunked => {
            let (body, rest) = read_chunked(conn, buf).await?;
            conn.buf = rest;
            (body, keep)
        }
        Framing::Close => {
            while read_more(conn, &mut buf).await? > 0 {
                if buf.len() > MAX_BODY {
                    return Err(HttpError::Malformed("body too large"));
                }
            }
            (buf, false)
        }
    };
    Ok((Response { status, body }, keep))
}

enum Framing {
    Length(usize),
    Chunked,
    Close,
}

fn framing(headers: &[httparse::Header<'_>]) -> Result<Framing, HttpError> {
    if header_has(headers, "transfer-encoding", "chunked") {
        return Ok(Framing::Chunked);
    }
    match headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case("content-length"))
    {
        Some(h) => std::str::from_utf8(h.value)
            .ok()
            .and_then(|v| v.trim().parse().ok())
            .map(Framing::Length)
            .ok_or(HttpError::Malformed("bad Content-Length")),
        None => Ok(Framing::Close),
    }
}

fn header_has(headers: &[httparse::Header<'_>], name: &str, token: &str) -> bool {
    headers.iter().any(|h| {
        h.name.eq_ignore_ascii_case(name)
            && h.value
                .split(|&b| b == b',')
                .any(|t| t.trim_ascii().eq_ignore_ascii_case(token.as_bytes()))
    })
}

async fn read_more(conn: &mut Conn, buf: &mut Vec<u8>) -> Result<usize, HttpError> {
    buf.reserve(4096);
    let n = conn.stream.read_buf(buf).await?;
    conn.answered |= n > 0;
    Ok(n)
}

/// Decodes a chunked body from `buf` (reading more as needed); returns the body and the bytes
/// past its end.
async fn read_chunked(conn: &mut Conn, mut buf: Vec<u8>) -> Result<(Vec<u8>, Vec<u8>), HttpError> {
    let mut body = Vec::new();
    loop {
        let line_end = loop {
            if let Some(i) = buf.windows(2).position(|w| w == b"\r\n") {
                break i;
            }
            if buf.len() > MAX_HEAD || read_more(conn, &mut buf).await? == 0 {
                return Err(HttpError::Malformed("bad chunk size line"));
            }
        };
        let size_text = std::str::from_utf8(&buf[..line_end])
            .ok()
            .map(|l| l.split(';').next().unwrap_or("").trim())
            .ok_or(HttpError::Malformed("bad chunk size line"))?;
        let size = usize::from_str_radix(size_text, 16)
            .map_err(|_| HttpError::Malformed("bad chunk size"))?;
        if body.len() + size > MAX_BODY {
            return Err(HttpError::Malformed("body too large"));
        }
        buf.drain(..line_end + 2);
        if size == 0 {
            // Trailers (none expected) end with an empty line.
            loop {
                if let Some(i) = buf.windows(2).position(|w| w == b"\r\n") {
                    let empty = i == 0;
                    buf.drain(..i + 2);
                    if empty {
                        return Ok((body, buf));
                    }
                    continue;
                }
                if buf.len() > MAX_HEAD || read_more(conn, &mut buf).await? == 0 {
                    return Err(HttpError::Malformed("bad chunked trailer"));
                }
            }
        }
        while buf.len() < size + 2 {
            if read_more(conn, &mut buf).await? == 0 {
                return Err(HttpError::Malformed("chunked body cut short"));
            }
        }
        body.extend_from_slice(&buf[..size]);
        buf.drain(..size + 2);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_backend_url_is_plain_http_with_a_host() {
        let t = Target::parse("http://127.0.0.1:8090/hooks?x=1").unwrap();
        assert_eq!(t.authority, "127.0.0.1:8090");
        assert_eq!(t.host, "127.0.0.1:8090");
        assert_eq!(t.path, "/hooks?x=1");
        let t = Target::parse("http://backend.internal").unwrap();
        assert_eq!(t.authority, "backend.internal:80");
        assert_eq!(t.path, "/");
        let t = Target::parse("http://[::1]:9000?q").unwrap();
        assert_eq!(t.authority, "[::1]:9000");
        assert_eq!(t.path, "/?q");
        assert_eq!(Target::parse("https://x/"), Err(UrlError::Scheme));
        assert_eq!(Target::parse("x:80/"), Err(UrlError::Scheme));
        assert_eq!(Target::parse("http:///p"), Err(UrlError::NoHost));
        assert_eq!(Target::parse("http://:80/p"), Err(UrlError::NoHost));
        assert_eq!(Target::parse("http://u:p@h/"), Err(UrlError::Credentials));
        assert_eq!(Target::parse("http://h:0/"), Err(UrlError::Port));
        assert_eq!(Target::parse("http://h:99999/"), Err(UrlError::Port));
        assert_eq!(Target::parse("http://h/a b"), Err(UrlError::Characters));
        assert_eq!(Target::parse("http://h/#f"), Err(UrlError::Characters));
    }
}
