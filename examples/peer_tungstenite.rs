//! A tokio-tungstenite echo server, the first peer `benches/compare.sh` measures ringcast against.
//!
//! `cargo run --release --example peer_tungstenite -- PORT`
//!
//! Single-threaded (a tokio current-thread runtime), listens on 127.0.0.1:PORT, echoes every text
//! and binary message on any path. Pings are answered and close handshakes completed by
//! tungstenite itself. Prints one line when listening and nothing per message or connection.

use futures_util::{SinkExt, StreamExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::Message;

fn main() -> std::io::Result<()> {
    let port = port_arg()?;
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(async move {
            let listener = TcpListener::bind(("127.0.0.1", port)).await?;
            println!("peer_tungstenite listening on {}", listener.local_addr()?);
            loop {
                let (stream, _) = listener.accept().await?;
                tokio::spawn(echo(stream));
            }
        })
}

async fn echo(stream: TcpStream) {
    if stream.set_nodelay(true).is_err() {
        return;
    }
    let Ok(mut ws) = tokio_tungstenite::accept_async(stream).await else {
        return;
    };
    while let Some(Ok(message)) = ws.next().await {
        let reply = match message {
            Message::Text(_) | Message::Binary(_) => message,
            // Pongs to pings and the reply to a close are queued by tungstenite and flushed by
            // the next write or read; after a close the next read flushes it and ends the stream.
            Message::Ping(_) | Message::Pong(_) | Message::Frame(_) | Message::Close(_) => continue,
        };
        if ws.send(reply).await.is_err() {
            break;
        }
    }
}

fn port_arg() -> std::io::Result<u16> {
    std::env::args()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .ok_or_else(|| std::io::Error::other("usage: peer_tungstenite PORT"))
}
