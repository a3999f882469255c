//! A fastwebsockets echo server, the second peer `benches/compare.sh` measures ringcast against.
//!
//! `cargo run --release --example peer_fastwebsockets -- PORT`
//!
//! Single-threaded (a tokio current-thread runtime), listens on 127.0.0.1:PORT, echoes every text
//! and binary message on any path, with fastwebsockets' automatic pong and close replies and its
//! fragment collector. The HTTP upgrade is done here with httparse and ringcast's accept-key
//! function instead of fastwebsockets' hyper-based `upgrade` feature, so the peer pulls in no
//! HTTP stack. Prints one line when listening and nothing per message or connection.

use fastwebsockets::{FragmentCollector, OpCode, Role, WebSocket};
use ringcast::proto::handshake::AcceptKey;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Longest request head accepted.
const MAX_HEAD: usize = 8 * 1024;

fn main() -> std::io::Result<()> {
    let port = port_arg()?;
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(async move {
            let listener = TcpListener::bind(("127.0.0.1", port)).await?;
            println!(
                "peer_fastwebsockets listening on {}",
                listener.local_addr()?
            );
            loop {
                let (stream, _) = listener.accept().await?;
                tokio::spawn(echo(stream));
            }
        })
}

async fn echo(mut stream: TcpStream) {
    if stream.set_nodelay(true).is_err() || !upgrade(&mut stream).await {
        return;
    }
    let mut ws = WebSocket::after_handshake(stream, Role::Server);
    ws.set_auto_close(true);
    ws.set_auto_pong(true);
    let mut ws = FragmentCollector::new(ws);
    while let Ok(frame) = ws.read_frame().await {
        let echo = match frame.opcode {
            // auto_close already answered it.
            OpCode::Close => break,
            OpCode::Text | OpCode::Binary => ws.write_frame(frame).await,
            _ => Ok(()),
        };
        if echo.is_err() {
            break;
        }
    }
}

/// Reads the request head and answers 101; `false` (and the connection dropped) on anything
/// that is not a WebSocket upgrade. A client may not send frames before the 101 (RFC 6455 §4.1),
/// so bytes after the head mean a misbehaving client and are refused too.
async fn upgrade(stream: &mut TcpStream) -> bool {
    let mut head = Vec::with_capacity(1024);
    loop {
        match stream.read_buf(&mut head).await {
            Ok(0) | Err(_) => return false,
            Ok(_) => {}
        }
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut request = httparse::Request::new(&mut headers);
        match request.parse(&head) {
            Ok(httparse::Status::Complete(len)) if len == head.len() => {
                let key = request
                    .headers
                    .iter()
                    .find(|h| h.name.eq_ignore_ascii_case("sec-websocket-key"))
                    .and_then(|h| std::str::from_utf8(h.value).ok());
                let Some(key) = key else { return false };
                let response = format!(
                    "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\
                     Connection: Upgrade\r\nSec-WebSocket-Accept: {}\r\n\r\n",
                    AcceptKey::from_key(key.as_bytes()).as_str()
                );
                return stream.write_all(response.as_bytes()).await.is_ok();
            }
            Ok(httparse::Status::Partial) if head.len() < MAX_HEAD => {}
            _ => return false,
        }
    }
}

fn port_arg() -> std::io::Result<u16> {
    std::env::args()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .ok_or_else(|| std::io::Error::other("usage: peer_fastwebsockets PORT"))
}
