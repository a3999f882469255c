//! Many connections across two workers, all served correctly.

mod common;

use common::*;
use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_concurrent_connections_across_two_workers_all_echo_correctly() {
    let server = TestServer::start();
    let url = server.url("/echo");
    let mut sockets = Vec::with_capacity(1000);
    for _ in 0..1000 {
        let (ws, _) = tokio_tungstenite::connect_async(&url).await.unwrap();
        sockets.push(ws);
    }
    // Every connection is open at once; each echoes its own message.
    let tasks: Vec<_> = sockets
        .into_iter()
        .enumerate()
        .map(|(i, mut ws)| {
            tokio::spawn(async move {
                for round in 0..3 {
                    let text = format!("connection {i} round {round}");
                    ws.send(Message::text(text.clone())).await.unwrap();
                    assert_eq!(ws.next().await.unwrap().unwrap(), Message::text(text));
                }
                ws.close(None).await.unwrap();
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let metrics = tokio::task::spawn_blocking({
        let addr = server.addr;
        move || http_get(addr, "/metrics")
    })
    .await
    .unwrap();
    // Both workers took a share (SO_REUSEPORT spreads connections across the listeners).
    for worker in 0..2 {
        let accepted: u64 = metrics
            .lines()
            .find_map(|l| {
                l.strip_prefix(&format!(
                    "ringcast_handshakes_accepted_total{{worker=\"{worker}\"}} "
                ))
            })
            .unwrap()
            .parse()
            .unwrap();
        assert!(accepted > 0, "worker {worker} accepted nothing:\n{metrics}");
    }
}
