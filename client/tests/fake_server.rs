//! A fake WebSocket server: one that sends malformed bytes (the client
//! reports bad frames as `RoomEvent::InvalidFrame`, a bad handshake as
//! `JoinError::Handshake`, keeps its state as it was, and never panics),
//! and what the client's WebSocket request carries.

mod common;

use common::World;
use futures_util::{SinkExt, StreamExt};
use roomcast::schema::Encoder;
use roomcast_client::{Client, Dynamic, JoinError, Room, RoomEvent, RoomState, SeatReservation};
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message;

/// A WebSocket server for one client: sends `join`, waits for the ack,
/// sends `frames`, closes with 4000.
async fn fake_server(join: Vec<u8>, frames: Vec<Vec<u8>>) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let mut ws = tokio_tungstenite::accept_async(tcp).await.unwrap();
        ws.send(Message::Binary(join.into())).await.unwrap();
        match ws.next().await {
            Some(Ok(Message::Binary(ack))) => assert_eq!(&ack[..], [10]),
            _ => return,
        }
        for frame in frames {
            if ws.send(Message::Binary(frame.into())).await.is_err() {
                return;
            }
        }
        let _ = ws
            .close(Some(CloseFrame {
                code: CloseCode::from(4000),
                reason: "done".into(),
            }))
            .await;
        while ws.next().await.is_some() {}
    });
    port
}

async fn join<S: RoomState>(port: u16) -> Result<Room<S>, JoinError> {
    let reservation: SeatReservation = serde_json::from_value(serde_json::json!({
        "name": "test", "sessionId": "s1", "roomId": "r1", "processId": "p1"
    }))
    .unwrap();
    Client::new(&format!("http://127.0.0.1:{port}"))
        .unwrap()
        .consume_seat_reservation(reservation)
        .await
}

/// JOIN_ROOM with token `t`, serializer `schema` and these Reflection
/// bytes.
fn join_frame(reflection: &[u8]) -> Vec<u8> {
    let mut frame = vec![10, 1, b't', 6, b's', b'c', b'h', b'e', b'm', b'a'];
    frame.push(u8::try_from(reflection.len()).unwrap());
    frame.extend_from_slice(reflection);
    frame
}

/// Deterministic junk: frames that start like every protocol code.
fn junk(count: usize) -> Vec<Vec<u8>> {
    let mut seed = 0x2545_f491_4f6c_dd1d_u64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    (0..count)
        .map(|_| {
            let len = (next() % 40) as usize;
            let mut frame: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            let codes = [10, 11, 13, 14, 15, 17, 18, 22, 0x8e, 0x8f, 0x4f, 0xff];
            if let Some(first) = frame.first_mut() {
                *first = codes[(next() % codes.len() as u64) as usize];
            }
            frame
        })
        .collect()
}

#[tokio::test]
async fn malformed_frames_are_reported_and_skipped() {
    let mut full = Encoder::new(World {
        counter: 5,
        ..World::default()
    });
    let mut frames = junk(2000);
    let mut state = vec![14];
    state.extend_from_slice(full.encode_all());
    frames.push(state);
    let port = fake_server(join_frame(&[]), frames).await;
    let mut room = join::<World>(port).await.unwrap();
    assert_eq!(room.reconnection_token(), "r1:t");
    // (A typed room moves into a task of its own.)
    let (invalid, last, room) = tokio::spawn(async move {
        let (mut invalid, mut last) = (0, None);
        while let Some(event) = room.recv().await {
            match event {
                RoomEvent::InvalidFrame(_) => invalid += 1,
                RoomEvent::Leave { code, .. } => last = Some(code),
                _ => {}
            }
        }
        (invalid, last, room)
    })
    .await
    .unwrap();
    assert!(invalid > 500, "{invalid} invalid frames");
    assert_eq!(last, Some(4000));
    assert_eq!(room.state().counter, 5, "a valid state after the junk");
}

#[tokio::test]
async fn a_malformed_handshake_fails_the_join() {
    for reflection in [&[0xff, 0x01, 0x02][..], &[0x80, 0xff], &[]] {
        let port = fake_server(join_frame(reflection), Vec::new()).await;
        match join::<Dynamic>(port).await {
            Err(JoinError::Handshake(_)) => assert!(!reflection.is_empty()),
            // No Reflection: a room without state types.
            Ok(mut room) => {
                assert!(reflection.is_empty());
                assert!(room.state().is_none() && room.callbacks().is_none());
            }
            Err(e) => panic!("{e}"),
        }
    }
    // A JOIN_ROOM cut short.
    let port = fake_server(vec![10, 9, b'x'], Vec::new()).await;
    assert!(matches!(
        join::<World>(port).await,
        Err(JoinError::Handshake(_))
    ));
}

#[tokio::test]
async fn the_websocket_request_carries_headers_and_the_seat() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let mut seen = None;
        #[allow(
            clippy::result_large_err,
            reason = "the callback's signature is tungstenite's"
        )]
        let callback = |request: &tokio_tungstenite::tungstenite::handshake::server::Request,
                        response| {
            seen = Some((
                request.uri().to_string(),
                request.headers().get("x-game").cloned(),
            ));
            Ok(response)
        };
        let mut ws = tokio_tungstenite::accept_hdr_async(tcp, callback)
            .await
            .unwrap();
        ws.send(Message::Binary(join_frame(&[]).into()))
            .await
            .unwrap();
        let _ = ws.next().await;
        seen.unwrap()
    });
    let reservation: SeatReservation = serde_json::from_value(serde_json::json!({
        "name": "test", "sessionId": "s1", "roomId": "r1", "processId": "p1"
    }))
    .unwrap();
    let client = Client::new(&format!("http://127.0.0.1:{port}/prefix?region=eu"))
        .unwrap()
        .with_header("x-game", "chess")
        .with_auth_token("tok");
    let _room = client
        .consume_seat_reservation::<World>(reservation)
        .await
        .unwrap();
    let (uri, header) = seen.await.unwrap();
    assert_eq!(
        uri,
        "/prefix/p1/r1?region=eu&sessionId=s1&_authToken=tok&skipHandshake=1"
    );
    assert_eq!(header.unwrap(), "chess");
}
