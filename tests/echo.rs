//! `/echo` returns every text and binary message unchanged, to an independent client
//! (tokio-tungstenite) and to raw bytes.

mod common;

use std::io::Write;

use common::*;
use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;

const EDGE_LENGTHS: [usize; 6] = [0, 125, 126, 65535, 65536, 1 << 20];

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 + 3) as u8).collect()
}

#[tokio::test]
async fn text_and_binary_messages_at_edge_lengths_come_back_unchanged() {
    let server = TestServer::start();
    let config = WebSocketConfig::default()
        .max_message_size(Some(4 << 20))
        .max_frame_size(Some(4 << 20));
    let (mut ws, response) =
        tokio_tungstenite::connect_async_with_config(server.url("/echo"), Some(config), false)
            .await
            .unwrap();
    assert_eq!(response.status(), 101);
    for len in EDGE_LENGTHS {
        let text: String = std::iter::repeat_n('é', len / 2)
            .chain(std::iter::repeat_n('a', len % 2))
            .collect();
        ws.send(Message::text(text.clone())).await.unwrap();
        assert_eq!(
            ws.next().await.unwrap().unwrap(),
            Message::text(text),
            "text of {len} bytes"
        );
        let bin = pattern(len);
        ws.send(Message::binary(bin.clone())).await.unwrap();
        assert_eq!(
            ws.next().await.unwrap().unwrap(),
            Message::binary(bin),
            "binary of {len} bytes"
        );
    }
    ws.close(None).await.unwrap();
    while let Some(Ok(_)) = ws.next().await {}
}

#[tokio::test]
async fn pipelined_messages_are_echoed_in_order() {
    let server = TestServer::start();
    let (ws, _) = tokio_tungstenite::connect_async(server.url("/echo"))
        .await
        .unwrap();
    let (mut tx, mut rx) = ws.split();
    let sender = tokio::spawn(async move {
        for i in 0..500u32 {
            tx.send(Message::text(format!("message {i}")))
                .await
                .unwrap();
        }
    });
    for i in 0..500u32 {
        assert_eq!(
            rx.next().await.unwrap().unwrap(),
            Message::text(format!("message {i}"))
        );
    }
    sender.await.unwrap();
}

#[test]
fn a_fragmented_message_is_echoed_whole_with_control_frames_in_between() {
    let server = TestServer::start();
    let mut s = ws_connect(server.addr, "/echo");
    let mut wire = client_frame(false, 1, b"Hel");
    wire.extend(client_frame(true, 9, b"ping in the middle"));
    wire.extend(client_frame(false, 0, "lo, wörld".as_bytes()));
    wire.extend(client_frame(true, 0, b"!"));
    s.write_all(&wire).unwrap();
    let pong = read_frame(&mut s).unwrap();
    assert_eq!(
        (pong.opcode, pong.payload.as_slice()),
        (0xA, &b"ping in the middle"[..])
    );
    let msg = read_frame(&mut s).unwrap();
    assert_eq!(
        msg,
        Frame {
            fin: true,
            opcode: 1,
            payload: "Hello, wörld!".as_bytes().to_vec()
        }
    );
}

#[test]
fn bytes_arriving_one_at_a_time_still_make_one_message() {
    let server = TestServer::start();
    let mut s = ws_connect(server.addr, "/echo");
    for byte in client_frame(true, 2, &pattern(300)) {
        s.write_all(&[byte]).unwrap();
    }
    assert_eq!(
        read_frame(&mut s).unwrap(),
        Frame {
            fin: true,
            opcode: 2,
            payload: pattern(300)
        }
    );
}

#[test]
fn a_ping_is_answered_with_a_pong_carrying_the_same_payload() {
    let server = TestServer::start();
    let mut s = ws_connect(server.addr, "/echo");
    for payload in [&b""[..], b"x", &[0xAB; 125]] {
        s.write_all(&client_frame(true, 9, payload)).unwrap();
        assert_eq!(
            read_frame(&mut s).unwrap(),
            Frame {
                fin: true,
                opcode: 0xA,
                payload: payload.to_vec()
            }
        );
    }
}

#[test]
fn an_unsolicited_pong_is_ignored() {
    let server = TestServer::start();
    let mut s = ws_connect(server.addr, "/echo");
    s.write_all(&client_frame(true, 0xA, b"unsolicited"))
        .unwrap();
    s.write_all(&client_frame(true, 1, b"after")).unwrap();
    assert_eq!(read_frame(&mut s).unwrap().payload, b"after");
}

#[test]
fn a_frame_sent_right_behind_the_upgrade_request_is_not_lost() {
    let server = TestServer::start();
    let mut s = connect(server.addr);
    let mut wire = upgrade_request("/echo", server.addr).into_bytes();
    wire.extend(client_frame(true, 1, b"eager"));
    let head = send_request(&mut s, &wire);
    assert!(head.starts_with("HTTP/1.1 101 "), "{head}");
    assert_eq!(read_frame(&mut s).unwrap().payload, b"eager");
}
