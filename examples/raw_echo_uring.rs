//! A raw TCP echo server on tokio-uring: the ceiling in `benches/compare.sh`.
//!
//! `cargo run --release --example raw_echo_uring -- PORT`
//!
//! Single-threaded (one tokio-uring runtime), listens on 127.0.0.1:PORT and writes back every
//! byte it reads, unchanged: no HTTP, no WebSocket framing, no masking. The load tool drives it
//! with `ringcast bench --raw`, which sends the same masked frames as against a WebSocket server
//! and counts every frame-length of echoed bytes as one message. Whatever a WebSocket server
//! reaches, it cannot beat this: the same syscalls with zero protocol work. Prints one line when
//! listening and nothing per message or connection.

use std::net::SocketAddr;

use tokio_uring::net::{TcpListener, TcpStream};

/// Bytes read per call; the buffer is owned by each connection and reused for its lifetime.
const BUF: usize = 64 * 1024;

fn main() -> std::io::Result<()> {
    let port: u16 = std::env::args()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .ok_or_else(|| std::io::Error::other("usage: raw_echo_uring PORT"))?;
    tokio_uring::start(async move {
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let listener = TcpListener::bind(addr)?;
        println!("raw_echo_uring listening on {addr}");
        loop {
            let (stream, _) = listener.accept().await?;
            stream.set_nodelay(true)?;
            tokio_uring::spawn(echo(stream));
        }
    })
}

async fn echo(stream: TcpStream) {
    let mut buf = vec![0u8; BUF];
    loop {
        // Owned-buffer I/O: the buffer goes into each call and comes back with the result.
        let (read, b) = stream.read(buf).await;
        let n = match read {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        let (written, b) = stream
            .write_all(tokio_uring::buf::BoundedBuf::slice(b, ..n))
            .await;
        buf = b.into_inner();
        if written.is_err() {
            return;
        }
    }
}
