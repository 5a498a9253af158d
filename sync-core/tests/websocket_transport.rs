//! The WebSocket transport over real loopback sockets: frames written by
//! the room's task straight into the socket, what happens to a client
//! that stops reading while the room keeps sending, and clients refused
//! while they flood (a frame over the limit, a burst over the rate limit)
//! getting their ERROR and close rather than a reset.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use roomcast::msgpack::Value;
use roomcast::{
    BroadcastOptions, Method, NoState, Options, Room, RoomCtx, Server, ServerConfig, ServerError,
};
use serde_json::json;
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// One 64 KiB blob.
const BLOB: usize = 64 * 1024;
/// Blobs per `flood` (2 MiB: less than a connection may queue, 4 MiB).
const BLOBS: usize = 32;
/// Floods the good client asks for, one after the other: together far more
/// than a socket's buffers and the connection's queue.
const ROUNDS: usize = 10;

/// `flood` broadcasts [`BLOBS`] blobs; `count` answers with the number of
/// clients in the room.
#[derive(Default)]
struct Flood;

impl Room for Flood {
    type State = NoState;
    type UserData = ();
    type Auth = ();

    async fn on_create(&mut self, ctx: &mut RoomCtx<Self>, _: &Options) -> Result<(), ServerError> {
        ctx.on_message("flood", |_, ctx, _, _: Value| {
            let blob = vec![7u8; BLOB];
            for _ in 0..BLOBS {
                ctx.broadcast_bytes("blob", &blob, BroadcastOptions::default());
            }
        });
        ctx.on_message("count", |_, ctx, client, _: Value| {
            let clients = ctx.clients().count();
            ctx.send(client, "count", &clients);
        });
        Ok(())
    }
}

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Reserves a seat and connects; `recv_buffer` shrinks the socket's
/// receive buffer (a client that will not read).
async fn join(server: &Server, port: u16, recv_buffer: Option<u32>) -> Ws {
    let seat = server
        .matchmake(Method::JoinOrCreate, "flood", json!({}))
        .await
        .unwrap();
    let socket = TcpSocket::new_v4().unwrap();
    if let Some(size) = recv_buffer {
        socket.set_recv_buffer_size(size).unwrap();
    }
    let tcp = socket.connect(([127, 0, 0, 1], port).into()).await.unwrap();
    let url = format!(
        "ws://127.0.0.1:{port}/p/{}?sessionId={}",
        seat.room.room_id, seat.session_id
    );
    let (mut ws, _) = tokio_tungstenite::client_async(url, MaybeTlsStream::Plain(tcp))
        .await
        .unwrap();
    // JOIN_ROOM, then the ack.
    let joined = next_binary(&mut ws).await.expect("JOIN_ROOM");
    assert_eq!(joined[0], 10);
    ws.send(Message::Binary(vec![10].into())).await.unwrap();
    ws
}

async fn next_binary(ws: &mut Ws) -> Option<Vec<u8>> {
    loop {
        match tokio::time::timeout(Duration::from_secs(10), ws.next()).await {
            Ok(Some(Ok(Message::Binary(frame)))) => return Some(frame.to_vec()),
            Ok(Some(Ok(_))) => {}
            Ok(Some(Err(_)) | None) => return None,
            Err(_) => panic!("nothing received for 10 s"),
        }
    }
}

/// A server with the `flood` room on the WebSocket transport; its port.
async fn serve() -> (Server, u16) {
    serve_with(ServerConfig::default()).await
}

/// [`serve`] with `config`.
async fn serve_with(config: ServerConfig) -> (Server, u16) {
    let server = Server::builder()
        .config(config)
        .define("flood", Flood::default)
        .build();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let serving = server.clone();
    tokio::spawn(async move {
        let transport = roomcast::WebSocketTransport::new(listener);
        roomcast::transport::Transport::serve(transport, serving).await
    });
    (server, port)
}

/// `0d <type string> <msgpack nil>`
fn message(ty: &str) -> Message {
    let mut frame = vec![13, 0xa0 | ty.len() as u8];
    frame.extend_from_slice(ty.as_bytes());
    frame.push(0xc0);
    Message::Binary(frame.into())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_stops_reading_is_dropped_and_the_room_carries_on() {
    let (server, port) = serve().await;

    let mut good = join(&server, port, None).await;
    let mut stalled = join(&server, port, Some(4096)).await;

    good.send(message("count")).await.unwrap();
    let answer = next_binary(&mut good).await.unwrap();
    assert_eq!(answer.last(), Some(&2), "two clients: {answer:?}");

    // The good client reads every blob, whole; the stalled one reads
    // nothing.
    for round in 0..ROUNDS {
        good.send(message("flood")).await.unwrap();
        for i in 0..BLOBS {
            let frame = next_binary(&mut good)
                .await
                .unwrap_or_else(|| panic!("connection lost at blob {i} of round {round}"));
            assert_eq!(frame[0], 17, "ROOM_DATA_BYTES");
            assert_eq!(frame.len(), 1 + 5 + BLOB, "blob {i}");
            assert!(frame[6..].iter().all(|&b| b == 7));
        }
    }

    // The room dropped the stalled client and answers the good one.
    good.send(message("count")).await.unwrap();
    let answer = next_binary(&mut good).await.unwrap();
    assert_eq!(answer.last(), Some(&1), "one client left: {answer:?}");

    // The stalled client finds its connection ended once it reads again
    // (after whatever was already in its socket).
    let mut received = 0;
    while next_binary(&mut stalled).await.is_some() {
        received += 1;
    }
    assert!(
        received < BLOBS * ROUNDS,
        "the stalled client got everything"
    );
}

/// tungstenite's own replies (pong, the close handshake) go through the
/// same queue as the room's frames: a ping is answered between room frames,
/// and a client's close gets its close reply and reaches the room as a
/// consented leave.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pings_are_answered_and_a_close_is_returned() {
    let (server, port) = serve().await;
    let mut a = join(&server, port, None).await;
    let mut b = join(&server, port, None).await;

    a.send(Message::Ping(b"are you there".to_vec().into()))
        .await
        .unwrap();
    a.send(message("count")).await.unwrap();
    let mut pong = false;
    loop {
        match tokio::time::timeout(Duration::from_secs(10), a.next()).await {
            Ok(Some(Ok(Message::Pong(data)))) => {
                assert_eq!(&data[..], b"are you there");
                pong = true;
            }
            Ok(Some(Ok(Message::Binary(frame)))) if frame[0] == 13 => break,
            Ok(Some(Ok(_))) => {}
            other => panic!("{other:?}"),
        }
    }
    assert!(pong, "the ping was answered before the room's reply");

    a.close(Some(tokio_tungstenite::tungstenite::protocol::CloseFrame {
        code: 4000.into(),
        reason: "".into(),
    }))
    .await
    .unwrap();
    // The close reply, then the end of the stream.
    let mut closed = false;
    while let Ok(Some(item)) = tokio::time::timeout(Duration::from_secs(10), a.next()).await {
        match item {
            Ok(Message::Close(_)) => closed = true,
            Ok(_) => {}
            Err(_) => break,
        }
    }
    assert!(closed, "no close reply");
    b.send(message("count")).await.unwrap();
    let answer = next_binary(&mut b).await.unwrap();
    assert_eq!(
        answer.last(),
        Some(&1),
        "the room saw the leave: {answer:?}"
    );
}

/// What a refused client saw: the ERROR frames' texts, then how its
/// connection ended (`Ok(close code)`, or the error that ended it).
struct Refusal {
    errors: Vec<String>,
    end: Result<u16, String>,
}

/// Sends `frames` into `ws` as fast as it takes them, reading only after
/// 500 ms (a client busy sending reads late), until the connection ends.
/// As a JS client does, a failed send ends the connection: frames the
/// server sent before a reset are then lost to the client.
async fn refused_while_flooding(ws: Ws, mut frames: impl Iterator<Item = Message>) -> Refusal {
    let (mut sink, mut stream) = ws.split();
    let start = tokio::time::Instant::now();
    let mut errors = Vec::new();
    let mut closing = false;
    let end = loop {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "not closed within 10 s"
        );
        if !closing && start.elapsed() < Duration::from_millis(500) {
            let Some(frame) = frames.next() else {
                closing = true;
                continue;
            };
            if let Err(e) = sink.send(frame).await {
                break Err(format!("send failed: {e}"));
            }
            continue;
        }
        let incoming = tokio::select! {
            incoming = stream.next() => incoming,
            sent = async {
                match frames.next() {
                    Some(frame) if !closing => sink.send(frame).await,
                    _ => std::future::pending().await,
                }
            } => {
                match sent {
                    Ok(()) => continue,
                    // After the server's close frame, sending is refused.
                    Err(tokio_tungstenite::tungstenite::Error::Protocol(_)) => {
                        closing = true;
                        continue;
                    }
                    Err(e) => break Err(format!("send failed: {e}")),
                }
            }
        };
        match incoming {
            Some(Ok(Message::Binary(frame))) if frame[0] == 11 => {
                errors.push(String::from_utf8_lossy(&frame).into_owned());
            }
            Some(Ok(Message::Close(frame))) => {
                break Ok(frame.map_or(1005, |f| u16::from(f.code)));
            }
            Some(Ok(_)) => {}
            Some(Err(e)) => break Err(e.to_string()),
            None => break Err("end of stream without a close frame".into()),
        }
    };
    Refusal { errors, end }
}

/// ROOM_DATA "inc" with `n` (a positive fixint).
fn inc(n: u8) -> Message {
    Message::Binary(vec![13, 0xa3, b'i', b'n', b'c', n & 0x7f].into())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frame_over_twice_the_limit_gets_its_error_and_close_amid_a_flood() {
    let (server, port) = serve().await;
    let mut good = join(&server, port, None).await;
    let bad = join(&server, port, None).await;
    // 1 MiB: over twice the 64 KiB limit, so never read; then more frames
    // behind it, as a client keeps sending.
    let mut big = vec![0u8; 1024 * 1024];
    big[..5].copy_from_slice(&[13, 0xa3, b'i', b'n', b'c']);
    let frames = std::iter::once(Message::Binary(big.into())).chain((0..).map(|i| inc(i as u8)));
    let refusal = refused_while_flooding(bad, frames).await;
    assert_eq!(refusal.end, Ok(4002), "errors: {:?}", refusal.errors);
    assert!(
        refusal
            .errors
            .iter()
            .any(|e| e.contains("exceeds the limit")),
        "{:?}",
        refusal.errors
    );
    // The room dropped it and carries on.
    good.send(message("count")).await.unwrap();
    let answer = next_binary(&mut good).await.unwrap();
    assert_eq!(answer.last(), Some(&1), "one client left: {answer:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_over_the_rate_limit_gets_its_error_and_close_amid_the_burst() {
    let mut config = ServerConfig::default();
    config.max_messages_per_second = Some(50);
    let (server, port) = serve_with(config).await;
    let mut good = join(&server, port, None).await;
    let bad = join(&server, port, None).await;
    // Far more than 50 frames, as fast as the socket takes them, 1 KiB
    // each so the server's socket holds many unread:
    // `0d "inc" bin16(1016 bytes)`.
    let mut frame = vec![0u8; 1024];
    frame[..8].copy_from_slice(&[13, 0xa3, b'i', b'n', b'c', 0xc5, 0x03, 0xf8]);
    let frames = std::iter::repeat_with(move || Message::Binary(frame.clone().into()));
    let refusal = refused_while_flooding(bad, frames).await;
    assert_eq!(refusal.end, Ok(4002), "errors: {:?}", refusal.errors);
    assert!(
        refusal
            .errors
            .iter()
            .any(|e| e.contains("messages per second")),
        "{:?}",
        refusal.errors
    );
    good.send(message("count")).await.unwrap();
    let answer = next_binary(&mut good).await.unwrap();
    assert_eq!(answer.last(), Some(&1), "one client left: {answer:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_never_reads_is_closed_within_the_write_timeout() {
    let mut config = ServerConfig::default();
    config.write_timeout = Duration::from_secs(1);
    let (server, port) = serve_with(config).await;
    let mut good = join(&server, port, None).await;
    let mut stalled = join(&server, port, Some(4096)).await;

    // 6 MiB: more than the socket buffers take, so bytes wait for the
    // stalled client's socket; the write timeout (1 s; the keep-alive
    // would take 6 s or more) ends it, if the queue's cap does not first.
    let start = tokio::time::Instant::now();
    for _ in 0..3 {
        good.send(message("flood")).await.unwrap();
        for _ in 0..BLOBS {
            next_binary(&mut good)
                .await
                .expect("the good client gets every blob");
        }
    }
    let mut clients = 2;
    while clients == 2 {
        assert!(
            start.elapsed() < Duration::from_secs(4),
            "the stalled client is still in the room"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
        good.send(message("count")).await.unwrap();
        clients = *next_binary(&mut good).await.unwrap().last().unwrap();
    }
    assert_eq!(clients, 1);

    // Its socket is gone: reading ends (a reset, after what its buffer held).
    let mut received = 0;
    while next_binary(&mut stalled).await.is_some() {
        received += 1;
    }
    assert!(received < BLOBS, "the stalled client got everything");

    // The room carries on for the others.
    good.send(message("flood")).await.unwrap();
    for _ in 0..BLOBS {
        next_binary(&mut good)
            .await
            .expect("the good client gets every blob");
    }
}
