//! The tokio shell without sockets: matchmaking through `Server::matchmake`
//! and clients as in-memory `Session`s (the transport seam), so room tasks,
//! seat routing, listings and shutdown are tested without a network.

mod common;

use std::time::Duration;

use common::counter_body;
use common::room::E2eRoom;
use roomcast::msgpack::{self, Value};
use roomcast::protocol::{self, close_code};
use roomcast::testing::{next_received, Received};
use roomcast::transport::Session;
use roomcast::{ConnectRequest, Method, NoState, Options, Room, RoomCtx, Server, ServerError};
use serde_json::json;

fn server() -> Server {
    Server::builder()
        .define("counter", E2eRoom::default)
        .define("broken", Broken::default)
        .define("slow", Slow::default)
        .build()
}

/// A room whose creation takes a while (concurrent requests overlap it).
#[derive(Default)]
struct Slow;

impl Room for Slow {
    type State = NoState;
    type UserData = ();
    type Auth = ();

    async fn on_create(&mut self, _: &mut RoomCtx<Self>, _: &Options) -> Result<(), ServerError> {
        tokio::time::sleep(Duration::from_millis(20)).await;
        Ok(())
    }
}

#[derive(Default)]
struct Broken;

impl Room for Broken {
    type State = NoState;
    type UserData = ();
    type Auth = ();

    async fn on_create(
        &mut self,
        _: &mut RoomCtx<Self>,
        options: &Options,
    ) -> Result<(), ServerError> {
        if options["panic"] == true {
            panic!("on_create exploded");
        }
        Err(ServerError::new(4500, "cannot create"))
    }
}

/// Reads the session's next output (with a deadline).
async fn next(session: &mut Session) -> Received {
    next_received(session, Duration::from_secs(2)).await
}

async fn send(session: &Session, ty: &str, payload: &Value) {
    let mut bytes = Vec::new();
    msgpack::encode(payload, &mut bytes);
    session
        .deliver(protocol::encode_room_data(&ty.into(), &bytes))
        .await;
}

/// Matchmakes and joins: returns the session after JOIN_ROOM, the state and
/// the welcome message.
async fn join(
    server: &Server,
    method: Method,
    target: &str,
    options: Options,
) -> (Session, String) {
    let seat = server.matchmake(method, target, options).await.unwrap();
    let room_id = seat.room.room_id.clone();
    let mut session = server
        .open_session(&room_id, ConnectRequest::new(seat.session_id))
        .await;
    assert!(matches!(
        next(&mut session).await,
        Received::JoinRoom { .. }
    ));
    session.deliver(vec![0x0a].into()).await;
    assert!(matches!(next(&mut session).await, Received::State(_)));
    assert!(matches!(next(&mut session).await, Received::Message(..)));
    (session, room_id)
}

#[tokio::test]
async fn matchmaking_routes_seats_to_room_tasks() {
    let server = server();
    let (a, room) = join(&server, Method::JoinOrCreate, "counter", json!({})).await;
    let (mut b, same) = join(&server, Method::JoinOrCreate, "counter", json!({})).await;
    assert_eq!(room, same);
    let (_c, by_id) = join(&server, Method::JoinById, &room, json!({})).await;
    assert_eq!(by_id, room);
    let listing = &server.available_rooms("counter").await.unwrap()[0];
    assert_eq!(
        (listing.clients, listing.room_id.as_str()),
        (3, room.as_str())
    );

    send(&a, "inc", &Value::Int(4)).await;
    // b hears c join, then gets the patch.
    assert!(matches!(next(&mut b).await, Received::Message(..)));
    assert_eq!(next(&mut b).await, Received::Patch(counter_body(4).into()));
}

#[tokio::test]
async fn matchmaking_errors() {
    let server = server();
    let err = server
        .matchmake(Method::Join, "counter", json!({}))
        .await
        .unwrap_err();
    assert_eq!(err.code, 521);
    let err = server
        .matchmake(Method::JoinOrCreate, "nope", json!({}))
        .await
        .unwrap_err();
    assert_eq!(err.code, 520);
    let err = server
        .matchmake(Method::JoinById, "missing", json!({}))
        .await
        .unwrap_err();
    assert_eq!(err.code, 522);
    let err = server
        .matchmake(
            Method::Reconnect,
            "missing",
            json!({ "reconnectionToken": "x:y" }),
        )
        .await
        .unwrap_err();
    assert_eq!(err.code, 522);
    let err = server
        .matchmake(Method::Create, "broken", json!({}))
        .await
        .unwrap_err();
    assert_eq!((err.code, &*err.message), (4500, "cannot create"));
    let err = server
        .matchmake(Method::Create, "broken", json!({ "panic": true }))
        .await
        .unwrap_err();
    assert_eq!(
        err.code, 526,
        "a panicking on_create is an application error"
    );
    assert!(server.rooms().await.unwrap().is_empty());
}

#[tokio::test]
async fn unknown_rooms_and_sessions_get_524() {
    let server = server();
    let mut session = server
        .open_session("nowhere", ConnectRequest::new("nobody"))
        .await;
    assert_eq!(
        next(&mut session).await,
        Received::Error {
            code: 524,
            message: "seat reservation expired.".into()
        }
    );
    assert_eq!(
        next(&mut session).await,
        Received::Closed(close_code::WITH_ERROR)
    );
    let (_a, room) = join(&server, Method::Create, "counter", json!({})).await;
    let mut wrong = server
        .open_session(&room, ConnectRequest::new("nobody"))
        .await;
    assert!(matches!(
        next(&mut wrong).await,
        Received::Error { code: 524, .. }
    ));
}

#[tokio::test]
async fn reconnect_through_the_shell() {
    let server = server();
    let seat = server
        .matchmake(Method::Create, "counter", json!({ "reconnect": 5 }))
        .await
        .unwrap();
    let room = seat.room.room_id.clone();
    let mut a = server
        .open_session(&room, ConnectRequest::new(seat.session_id.clone()))
        .await;
    let Received::JoinRoom { token, .. } = next(&mut a).await else {
        panic!("no JOIN_ROOM");
    };
    a.deliver(vec![0x0a].into()).await;
    let _ = (next(&mut a).await, next(&mut a).await);
    a.closed(Some(1006)).await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    let again = server
        .matchmake(
            Method::Reconnect,
            &room,
            json!({ "reconnectionToken": format!("{room}:{token}") }),
        )
        .await
        .unwrap();
    assert_eq!(again.session_id, seat.session_id);
    let mut request = ConnectRequest::new(again.session_id);
    request.reconnection_token = Some(token.clone());
    let mut back = server.open_session(&room, request).await;
    assert!(matches!(next(&mut back).await, Received::JoinRoom { token: t, .. } if t != token));
    back.deliver(vec![0x0a].into()).await;
    assert_eq!(
        next(&mut back).await,
        Received::State(counter_body(0).into())
    );
    // The spent token no longer works.
    let err = server
        .matchmake(
            Method::Reconnect,
            &room,
            json!({ "reconnectionToken": token }),
        )
        .await
        .unwrap_err();
    assert_eq!(err.code, 524);
}

#[tokio::test]
async fn shutdown_closes_clients_and_refuses_matchmaking() {
    let server = server();
    let (mut a, _) = join(&server, Method::Create, "counter", json!({})).await;
    server.shutdown().await;
    assert_eq!(
        next(&mut a).await,
        Received::Closed(close_code::SERVER_SHUTDOWN)
    );
    let err = server
        .matchmake(Method::JoinOrCreate, "counter", json!({}))
        .await
        .unwrap_err();
    assert_eq!(err.code, 503);
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(server.rooms().await.unwrap().is_empty(), "rooms disposed");
}

#[tokio::test]
async fn a_flooding_client_is_closed_and_the_room_carries_on() {
    let server = Server::builder()
        .define("counter", E2eRoom::default)
        .config({
            let mut config = roomcast::ServerConfig::default();
            config.max_messages_per_second = Some(20);
            config
        })
        .build();
    let (mut good, room) = join(&server, Method::Create, "counter", json!({})).await;
    let (mut flood, _) = join(&server, Method::JoinById, &room, json!({})).await;
    assert!(
        matches!(next(&mut good).await, Received::Message(..)),
        "joined"
    );
    for _ in 0..30 {
        send(&flood, "inc", &Value::Int(1)).await;
    }
    let mut got = Vec::new();
    loop {
        let r = next(&mut flood).await;
        let closed = matches!(r, Received::Closed(_));
        got.push(r);
        if closed {
            break;
        }
    }
    assert!(got.iter().any(
        |r| matches!(r, Received::Error { code: 4217, message } if message.contains("per second"))
    ));
    assert_eq!(got.last(), Some(&Received::Closed(close_code::WITH_ERROR)));
    send(&good, "whoami", &Value::Undefined).await;
    loop {
        if let Received::Message(ty, value) = next(&mut good).await {
            if ty == "whoami".into() {
                assert_eq!(value.get("clients"), Some(&Value::Int(1)));
                break;
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_join_or_create_fill_one_room() {
    let server = server();
    let seats = futures_util::future::join_all(
        (0..20).map(|_| server.matchmake(Method::JoinOrCreate, "slow", json!({}))),
    )
    .await;
    let rooms: std::collections::HashSet<String> = seats
        .into_iter()
        .map(|seat| seat.unwrap().room.room_id)
        .collect();
    assert_eq!(rooms.len(), 1, "{rooms:?}");
}
