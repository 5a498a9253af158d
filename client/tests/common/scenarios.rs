//! The scenarios, each run against Roomcast and against the Node reference
//! server: `port` is the server's, `node` says which one it is.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use roomcast_client::{
    Client, Dynamic, ErrorCode, JoinError, MessageType, ReconnectionConfig, RoomEvent,
};
use roomcast_schema::decoder::{At, RefId};
use serde_json::json;

use super::{until, Proxy, World};

fn client(port: u16) -> Client {
    Client::new(&format!("http://127.0.0.1:{port}")).unwrap()
}

/// Reconnection that starts at once and retries fast.
fn quick_reconnection() -> ReconnectionConfig {
    let mut config = ReconnectionConfig::default();
    config.min_uptime = Duration::ZERO;
    config.delay = Duration::from_millis(50);
    config.min_delay = Duration::from_millis(50);
    config.max_delay = Duration::from_millis(200);
    config
}

fn is_full_state(_: &roomcast_client::Room<World>, e: &RoomEvent) -> bool {
    matches!(e, RoomEvent::StateChange { full: true })
}

/// Every join method, and the errors of each.
pub(crate) async fn join_paths_and_errors(port: u16, node: bool) {
    let client = client(port);
    let e = client
        .join_or_create::<World>("nowhere", &())
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some(ErrorCode::NoHandler), "{e}");
    let e = client.join::<World>("test", &()).await.unwrap_err();
    assert_eq!(e.code(), Some(ErrorCode::InvalidCriteria), "{e}");

    let mut a = client
        .create::<World>("test", &json!({ "name": "a" }))
        .await
        .unwrap();
    assert_eq!(a.name(), "test");
    let mut b = client
        .join::<World>("test", &json!({ "name": "b" }))
        .await
        .unwrap();
    let mut c = client
        .join_or_create::<World>("test", &json!({ "name": "c" }))
        .await
        .unwrap();
    let mut d = client
        .join_by_id::<Dynamic>(a.room_id(), &json!({ "name": "d" }))
        .await
        .unwrap();
    for room_id in [b.room_id(), c.room_id(), d.room_id()] {
        assert_eq!(room_id, a.room_id());
    }
    assert_ne!(a.session_id(), b.session_id());
    let e = client
        .join_by_id::<World>("NoSuchRoom1", &())
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some(ErrorCode::InvalidRoomId), "{e}");

    // onAuth runs at the WebSocket: its error comes in an ERROR frame.
    let e = client
        .join::<World>("test", &json!({ "password": "wrong" }))
        .await
        .unwrap_err();
    assert!(matches!(e, JoinError::Refused { .. }), "{e}");
    assert_eq!(e.code(), Some(ErrorCode::Other(4401)), "{e}");

    let listing = client.get_available_rooms("test").await;
    if node {
        // The 0.18 reference server has no listing route.
        assert!(listing.is_err());
    } else {
        let rooms = listing.unwrap();
        assert_eq!(rooms.len(), 1);
        assert_eq!(rooms[0].room_id, a.room_id());
        assert_eq!(rooms[0].clients, 4);
    }

    let e = client.reconnect::<World>("no-colon").await.unwrap_err();
    assert!(matches!(e, JoinError::InvalidToken));
    let token = format!("{}:notAToken", a.room_id());
    let e = client.reconnect::<World>(&token).await.unwrap_err();
    assert!(
        matches!(
            e.code(),
            Some(ErrorCode::Expired | ErrorCode::InvalidRoomId)
        ),
        "{e}"
    );

    for code in [
        a.leave(true).await,
        b.leave(true).await,
        c.leave(true).await,
    ] {
        assert_eq!(code, 4000);
    }
    assert_eq!(d.leave(true).await, 4000);
}

/// A typed state, and messages both ways.
pub(crate) async fn typed_state_and_messages(port: u16, _node: bool) {
    let client = client(port);
    let mut room = client
        .join_or_create::<World>("test", &json!({ "name": "ana" }))
        .await
        .unwrap();
    until(&mut room, is_full_state).await;
    let me = room.session_id().to_owned();
    assert_eq!(room.state().players.get(&me).unwrap().name, "ana");

    // The decoder's callbacks on a typed room.
    let lines = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&lines);
    room.callbacks()
        .unwrap()
        .on_add(At::Field(RefId::ROOT, "log"), move |cx, _, line| {
            // The typed state, after the whole patch.
            let world = cx.state::<World>().expect("a typed room's state");
            let line = line.as_str().unwrap_or_default();
            let held = world.log.iter().any(|l| l == line);
            sink.lock().unwrap().push((line.to_owned(), held));
        })
        .unwrap();
    room.send("log", "hello").unwrap();
    until(&mut room, |r, _| r.state().counter == 1).await;
    assert_eq!(room.state().log.iter().collect::<Vec<_>>(), ["hello"]);
    assert_eq!(*lines.lock().unwrap(), [("hello".to_owned(), true)]);

    let echoed = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&echoed);
    room.on_message("echo", move |m| {
        sink.lock()
            .unwrap()
            .push(m.decode::<serde_json::Value>().unwrap());
    });
    let others = Arc::new(AtomicU32::new(0));
    let count = Arc::clone(&others);
    room.on_any_message(move |_| {
        count.fetch_add(1, Ordering::Relaxed);
    });
    let payload = json!({ "text": "hi", "n": 1, "list": [1.5, "x", null] });
    room.send("echo", &payload).unwrap();
    let RoomEvent::Message(m) = until(&mut room, |_, e| matches!(e, RoomEvent::Message(_))).await
    else {
        unreachable!()
    };
    assert_eq!(m.ty(), &MessageType::from("echo"));
    assert_eq!(m.decode::<serde_json::Value>().unwrap(), payload);
    assert_eq!(*echoed.lock().unwrap(), [payload]);

    room.send(7, &[1, 2]).unwrap();
    let RoomEvent::Message(m) = until(&mut room, |_, e| matches!(e, RoomEvent::Message(_))).await
    else {
        unreachable!()
    };
    assert_eq!(m.ty(), &MessageType::Number(7));
    assert_eq!(m.decode::<Vec<u8>>().unwrap(), [1, 2]);
    assert_eq!(
        others.load(Ordering::Relaxed),
        1,
        "'*' got the unhandled type"
    );

    room.send_bytes("bin", &[1, 2, 3]).unwrap();
    let RoomEvent::Message(m) = until(&mut room, |_, e| matches!(e, RoomEvent::Message(_))).await
    else {
        unreachable!()
    };
    assert!(m.is_bytes());
    assert_eq!(
        (m.ty(), m.bytes()),
        (&MessageType::from("bin"), &[1, 2, 3][..])
    );

    let errors = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&errors);
    room.on_error(move |code, message| sink.lock().unwrap().push((code, message.to_owned())));
    room.send_empty("fail").unwrap();
    let RoomEvent::Error { code, message } =
        until(&mut room, |_, e| matches!(e, RoomEvent::Error { .. })).await
    else {
        unreachable!()
    };
    assert_eq!(
        (code, message.as_str()),
        (ErrorCode::Other(4321), "failed on purpose")
    );
    assert_eq!(errors.lock().unwrap().len(), 1);

    room.ping().unwrap();
    let RoomEvent::Pong(rtt) = until(&mut room, |_, e| matches!(e, RoomEvent::Pong(_))).await
    else {
        unreachable!()
    };
    assert!(rtt < Duration::from_secs(5));
    assert_eq!(room.leave(true).await, 4000);
    assert!(room.recv().await.is_none());
    assert!(room.send("log", "late").is_err());
}

/// A dynamic state from Reflection, with change callbacks.
pub(crate) async fn dynamic_state_and_callbacks(port: u16, _node: bool) {
    let client = client(port);
    let mut room = client
        .join_or_create::<Dynamic>("test", &json!({ "name": "ana" }))
        .await
        .unwrap();
    let added = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&added);
    let counter = Arc::new(Mutex::new(Vec::new()));
    let values = Arc::clone(&counter);
    {
        let mut cx = room.callbacks().expect("the server sent its types");
        cx.on_add(At::Field(RefId::ROOT, "players"), move |_, key, _| {
            sink.lock().unwrap().push(key.to_string());
        })
        .unwrap();
        cx.listen(RefId::ROOT, "counter", move |_, now, _| {
            values
                .lock()
                .unwrap()
                .push(now.and_then(|v| v.as_f64()).unwrap_or(-1.0));
        })
        .unwrap();
    }
    until(&mut room, |_, e| {
        matches!(e, RoomEvent::StateChange { full: true })
    })
    .await;
    assert_eq!(*added.lock().unwrap(), [room.session_id().to_owned()]);
    let state: serde_json::Value = serde_json::from_str(&room.state().unwrap().to_json()).unwrap();
    assert_eq!(state["players"][room.session_id()]["name"], "ana");

    let mut other = client
        .join::<Dynamic>("test", &json!({ "name": "bo" }))
        .await
        .unwrap();
    until(&mut room, |_, _| added.lock().unwrap().len() == 2).await;
    assert_eq!(added.lock().unwrap()[1], other.session_id());

    other.send("log", "one").unwrap();
    other.send("log", "two").unwrap();
    until(&mut room, |_, _| {
        counter.lock().unwrap().last() == Some(&2.0)
    })
    .await;
    let state: serde_json::Value = serde_json::from_str(&room.state().unwrap().to_json()).unwrap();
    assert_eq!(state["log"], json!(["one", "two"]));
    assert_eq!(other.leave(true).await, 4000);
    assert_eq!(room.leave(true).await, 4000);
}

/// The close codes a room ends with.
pub(crate) async fn leave_codes(port: u16, _node: bool) {
    let client = client(port);
    let mut room = client.join_or_create::<World>("test", &()).await.unwrap();
    let codes = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&codes);
    room.on_leave(move |code, _| sink.lock().unwrap().push(code));
    assert_eq!(room.leave(true).await, 4000);
    assert_eq!(*codes.lock().unwrap(), [4000]);

    // The server closes with its own code: not a drop, no reconnection.
    let mut room = client.join_or_create::<World>("test", &()).await.unwrap();
    room.send("kick", &4005).unwrap();
    let RoomEvent::Leave { code, .. } =
        until(&mut room, |_, e| matches!(e, RoomEvent::Leave { .. })).await
    else {
        unreachable!()
    };
    assert_eq!(code, 4005);

    // A non-consented leave closes the socket.
    let mut room = client.join_or_create::<World>("test", &()).await.unwrap();
    assert_eq!(room.leave(false).await, 1000);

    // Dropping a room closes its connection.
    let mut watcher = client.join_or_create::<World>("test", &()).await.unwrap();
    let dropped = client
        .join_by_id::<World>(watcher.room_id(), &json!({ "hold": false }))
        .await
        .unwrap();
    let gone = dropped.session_id().to_owned();
    until(&mut watcher, |r, _| r.state().players.get(&gone).is_some()).await;
    drop(dropped);
    until(&mut watcher, |r, _| r.state().players.get(&gone).is_none()).await;
    assert_eq!(watcher.leave(true).await, 4000);
}

/// A network loss: the room reconnects by itself, delivers what was sent
/// while offline, and re-syncs its state.
pub(crate) async fn drop_and_automatic_reconnection(port: u16, _node: bool) {
    let proxy = Proxy::start(port).await;
    let client = client(proxy.port).with_reconnection(quick_reconnection());
    let mut room = client
        .join_or_create::<World>("test", &json!({ "name": "ana" }))
        .await
        .unwrap();
    let reconnects = Arc::new(AtomicU32::new(0));
    let count = Arc::clone(&reconnects);
    room.on_reconnect(move || {
        count.fetch_add(1, Ordering::Relaxed);
    });
    until(&mut room, is_full_state).await;
    let (session, token) = (room.session_id().to_owned(), room.reconnection_token());

    proxy.cut();
    let RoomEvent::Drop { code, .. } =
        until(&mut room, |_, e| matches!(e, RoomEvent::Drop { .. })).await
    else {
        unreachable!()
    };
    assert_eq!(code, 1006);
    // Sent while offline: kept and delivered after the reconnection.
    room.send("log", "sent offline").unwrap();
    until(&mut room, |_, e| matches!(e, RoomEvent::Reconnect)).await;
    assert_eq!(reconnects.load(Ordering::Relaxed), 1);
    until(&mut room, is_full_state).await;
    // (The message may be applied before the full state is taken.)
    if room.state().counter != 1 {
        until(&mut room, |r, _| r.state().counter == 1).await;
    }
    assert_eq!(
        room.state().log.iter().collect::<Vec<_>>(),
        ["sent offline"]
    );
    assert_eq!(room.session_id(), session);
    assert_ne!(room.reconnection_token(), token, "a new token each join");
    assert_eq!(room.state().players.get(&session).unwrap().name, "ana");

    // Still working after it.
    room.send("echo", "again").unwrap();
    until(&mut room, |_, e| matches!(e, RoomEvent::Message(_))).await;
    assert_eq!(room.leave(true).await, 4000);
}

/// Reconnection gives up (4003), and does not start before `min_uptime`
/// (1006).
pub(crate) async fn reconnection_limits(port: u16, _node: bool) {
    let proxy = Proxy::start(port).await;
    let mut config = quick_reconnection();
    config.max_retries = 2;
    let client = client(proxy.port).with_reconnection(config);
    let mut room = client.join_or_create::<World>("test", &()).await.unwrap();
    until(&mut room, is_full_state).await;
    proxy.refuse();
    proxy.cut();
    let mut attempts = 0;
    let code = loop {
        match until(&mut room, |_, _| true).await {
            RoomEvent::Reconnecting { attempt, .. } => attempts = attempt,
            RoomEvent::Leave { code, .. } => break code,
            _ => {}
        }
    };
    assert_eq!((attempts, code), (2, 4003));

    let proxy = Proxy::start(port).await;
    let client = Client::new(&format!("http://127.0.0.1:{}", proxy.port)).unwrap();
    let mut room = client.join_or_create::<World>("test", &()).await.unwrap();
    until(&mut room, is_full_state).await;
    proxy.cut();
    let RoomEvent::Leave { code, .. } =
        until(&mut room, |_, e| matches!(e, RoomEvent::Leave { .. })).await
    else {
        unreachable!()
    };
    assert_eq!(code, 1006, "joined less than min_uptime (5 s) ago");
}

/// `Client::reconnect` with a room's token after it dropped.
pub(crate) async fn reconnect_by_token(port: u16, _node: bool) {
    let client = client(port);
    let mut room = client
        .join_or_create::<World>("test", &json!({ "name": "ana" }))
        .await
        .unwrap();
    until(&mut room, is_full_state).await;
    let (session, token) = (room.session_id().to_owned(), room.reconnection_token());
    // A non-consented leave: the room holds the seat.
    room.leave(false).await;
    let mut back = client.reconnect::<World>(&token).await.unwrap();
    assert_eq!(
        (back.room_id(), back.session_id()),
        (room.room_id(), session.as_str())
    );
    until(&mut back, |r, _| r.state().players.get(&session).is_some()).await;
    assert_eq!(back.state().players.get(&session).unwrap().name, "ana");
    // The token was used.
    let e = client.reconnect::<World>(&token).await.unwrap_err();
    assert!(e.code().is_some(), "{e}");
    assert_eq!(back.leave(true).await, 4000);
}

/// An idle room stays connected: the client answers the server's
/// WebSocket pings (the reference drops a client that misses two, sent
/// every 3 s) without the application calling `recv`.
pub(crate) async fn idle_room_stays_connected(port: u16, _node: bool) {
    let client = client(port);
    let mut room = client.join_or_create::<World>("test", &()).await.unwrap();
    until(&mut room, is_full_state).await;
    tokio::time::sleep(Duration::from_secs(8)).await;
    room.send("echo", "still here").unwrap();
    let event = until(&mut room, |_, e| {
        matches!(e, RoomEvent::Message(_) | RoomEvent::Drop { .. })
    })
    .await;
    assert!(matches!(event, RoomEvent::Message(_)), "{event:?}");
    assert_eq!(room.leave(true).await, 4000);
}

/// The server closes with 4010 (`MAY_TRY_RECONNECT`): the client takes it
/// as a drop and comes back by itself.
pub(crate) async fn server_asks_to_reconnect(port: u16, _node: bool) {
    let client = client(port).with_reconnection(quick_reconnection());
    let mut room = client.join_or_create::<World>("test", &()).await.unwrap();
    until(&mut room, is_full_state).await;
    let session = room.session_id().to_owned();
    room.send("kick", &4010).unwrap();
    let RoomEvent::Drop { code, .. } =
        until(&mut room, |_, e| matches!(e, RoomEvent::Drop { .. })).await
    else {
        unreachable!()
    };
    assert_eq!(code, 4010);
    until(&mut room, |_, e| matches!(e, RoomEvent::Reconnect)).await;
    until(&mut room, is_full_state).await;
    assert!(room.state().players.get(&session).is_some());
    assert_eq!(room.leave(true).await, 4000);
}

/// A drop after which the room does not hold the seat: the reconnection
/// is refused (ERROR, then the room ends with 4003).
pub(crate) async fn refused_reconnection(port: u16, _node: bool) {
    let proxy = Proxy::start(port).await;
    let client = client(proxy.port).with_reconnection(quick_reconnection());
    let mut room = client
        .join_or_create::<World>("test", &json!({ "hold": false }))
        .await
        .unwrap();
    until(&mut room, is_full_state).await;
    proxy.cut();
    let mut error = None;
    let code = loop {
        match until(&mut room, |_, _| true).await {
            RoomEvent::Error { code, .. } => error = Some(code),
            RoomEvent::Leave { code, .. } => break code,
            _ => {}
        }
    };
    assert_eq!((error, code), (Some(ErrorCode::Expired), 4003));
}

/// Requests (0.18 ROOM_REQUEST / ROOM_RESPONSE).
pub(crate) async fn requests(port: u16, _node: bool) {
    let client = client(port);
    let mut room = client.join_or_create::<World>("test", &()).await.unwrap();
    let sender = room.sender();
    let limit = Duration::from_secs(5);
    // Answered without anyone calling recv.
    let answer: serde_json::Value = sender
        .request("ask", &json!([1, "x"]), limit)
        .await
        .unwrap();
    assert_eq!(answer, json!({ "got": [1, "x"] }));
    let e = sender
        .request::<_, serde_json::Value>("ask-fail", &(), limit)
        .await
        .unwrap_err();
    match e {
        roomcast_client::ReplyError::Failed { message, code, .. } => {
            assert_eq!((message.as_str(), code), ("no", Some(4444)));
        }
        other => panic!("{other}"),
    }
    let e = sender
        .request::<_, serde_json::Value>("no-handler", &(), limit)
        .await
        .unwrap_err();
    assert!(
        matches!(e, roomcast_client::ReplyError::Failed { .. }),
        "{e}"
    );
    assert_eq!(room.leave(true).await, 4000);
    let e = sender
        .request::<_, serde_json::Value>("ask", &(), limit)
        .await
        .unwrap_err();
    assert!(matches!(e, roomcast_client::ReplyError::Closed), "{e}");
}

/// The latency probe (a WebSocket that joins no room).
pub(crate) async fn latency(port: u16, _node: bool) {
    let rtt = client(port).get_latency(3).await.unwrap();
    assert!(rtt < Duration::from_secs(1), "{rtt:?}");
    let e = Client::new("http://127.0.0.1:1")
        .unwrap()
        .get_latency(1)
        .await;
    assert!(e.is_err());
}
