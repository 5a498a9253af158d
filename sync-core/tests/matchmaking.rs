//! Matchmaking on the listing store, in one process: `filter_by`,
//! `sort_by`, seats counted by the store under concurrency, and seats that
//! another process would have claimed (taken when the client arrives).

use std::collections::HashMap;
use std::time::Duration;

use roomcast::testing::{next_received, Received};
use roomcast::transport::Session;
use roomcast::{
    ConnectRequest, Method, NoState, Options, Order, Room, RoomCtx, SeatRequest, Server,
    ServerError,
};
use serde_json::json;

/// Rooms of `maxClients` (option, default 10); `fail` makes `on_create`
/// refuse.
#[derive(Default)]
struct Battle;

impl Room for Battle {
    type State = NoState;
    type UserData = ();
    type Auth = ();

    async fn on_create(
        &mut self,
        ctx: &mut RoomCtx<Self>,
        options: &Options,
    ) -> Result<(), ServerError> {
        if options["fail"] == true {
            return Err(ServerError::new(4500, "refused"));
        }
        ctx.set_max_clients(Some(options["maxClients"].as_u64().unwrap_or(10) as usize));
        // A creation that takes a while, so concurrent requests overlap it.
        tokio::time::sleep(Duration::from_millis(5)).await;
        Ok(())
    }
}

fn server() -> Server {
    Server::builder()
        .define("battle", Battle::default)
        .filter_by(["mode"])
        .define("ranked", Battle::default)
        .sort_by([("clients", Order::Desc)])
        .build()
}

async fn next(session: &mut Session) -> Received {
    next_received(session, Duration::from_secs(2)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_join_or_create_fills_one_room_per_ten_per_mode() {
    let server = server();
    let joins = (0..90).map(|i| {
        let server = server.clone();
        tokio::spawn(async move {
            let mode = format!("m{}", i % 3);
            let seat = server
                .matchmake(Method::JoinOrCreate, "battle", json!({ "mode": mode }))
                .await
                .unwrap();
            (mode, seat.room.room_id, seat.session_id)
        })
    });
    let mut rooms: HashMap<String, (String, usize)> = HashMap::new();
    let mut seats = Vec::new();
    for join in joins {
        let (mode, room_id, session_id) = join.await.unwrap();
        let entry = rooms.entry(room_id.clone()).or_insert((mode.clone(), 0));
        assert_eq!(entry.0, mode, "a room holds one mode");
        entry.1 += 1;
        seats.push((room_id, session_id));
    }
    let mut per_mode: HashMap<&str, Vec<usize>> = HashMap::new();
    for (mode, count) in rooms.values() {
        per_mode.entry(mode).or_default().push(*count);
    }
    for (mode, mut counts) in per_mode {
        counts.sort_unstable();
        assert_eq!(counts, [10, 10, 10], "mode {mode}: 30 joins, rooms of 10");
    }
    // Every seat is in its room: the client joins.
    for (room_id, session_id) in seats.into_iter().step_by(7) {
        let mut session = server
            .open_session(&room_id, ConnectRequest::new(session_id))
            .await;
        assert!(matches!(
            next(&mut session).await,
            Received::JoinRoom { .. }
        ));
    }
    let listed = server.rooms().await.unwrap();
    assert_eq!(listed.len(), 9);
    assert!(listed.iter().all(|r| r.clients == 10 && r.locked));
}

#[tokio::test]
async fn requests_without_the_filter_field_join_any_room_and_sort_by_picks_the_fullest() {
    let server = server();
    let a = server
        .matchmake(Method::Create, "battle", json!({ "mode": "a" }))
        .await
        .unwrap();
    let any = server
        .matchmake(Method::JoinOrCreate, "battle", json!({}))
        .await
        .unwrap();
    assert_eq!(any.room.room_id, a.room.room_id);
    let other = server
        .matchmake(Method::JoinOrCreate, "battle", json!({ "mode": "b" }))
        .await
        .unwrap();
    assert_ne!(other.room.room_id, a.room.room_id);
    assert_eq!(
        server
            .matchmake(Method::Join, "battle", json!({ "mode": "c" }))
            .await
            .unwrap_err()
            .code,
        521
    );

    // "ranked" sorts by clients, most first: the older, emptier room loses.
    let first = server
        .matchmake(Method::Create, "ranked", json!({}))
        .await
        .unwrap();
    let second = server
        .matchmake(Method::Create, "ranked", json!({}))
        .await
        .unwrap();
    server
        .matchmake(Method::JoinById, &second.room.room_id, json!({}))
        .await
        .unwrap();
    let picked = server
        .matchmake(Method::JoinOrCreate, "ranked", json!({}))
        .await
        .unwrap();
    assert_eq!(picked.room.room_id, second.room.room_id);
    assert_eq!(picked.room.clients, 3);
    let listed: Vec<_> = server
        .available_rooms("ranked")
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.room_id)
        .collect();
    assert_eq!(listed, [second.room.room_id, first.room.room_id]);
}

#[tokio::test]
async fn a_seat_claimed_in_the_store_is_taken_when_its_client_arrives() {
    let server = server();
    let seat = server
        .matchmake(Method::Create, "battle", json!({ "mode": "a" }))
        .await
        .unwrap();
    let room_id = seat.room.room_id;
    // What another process of a cluster does: count the seat in the
    // store; the room hears of it only when the client connects.
    let claim = SeatRequest::new("elsewhere", json!({ "mode": "a" }), Duration::from_secs(15));
    let claimed = server
        .store()
        .claim_in(&room_id, &claim)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(claimed.listing.clients, 2);
    let mut session = server
        .open_session(&room_id, ConnectRequest::new("elsewhere"))
        .await;
    assert!(matches!(
        next(&mut session).await,
        Received::JoinRoom { .. }
    ));
    // A session nobody claimed is refused, as before.
    let mut stranger = server
        .open_session(&room_id, ConnectRequest::new("stranger"))
        .await;
    assert!(matches!(
        next(&mut stranger).await,
        Received::Error { code: 524, .. }
    ));
    assert_eq!(next(&mut stranger).await, Received::Closed(4002));
    // The seat is used once.
    let mut again = server
        .open_session(&room_id, ConnectRequest::new("elsewhere"))
        .await;
    assert!(matches!(
        next(&mut again).await,
        Received::Error { code: 524, .. }
    ));
}

#[tokio::test]
async fn a_failed_creation_gives_its_lock_back() {
    let server = server();
    for _ in 0..2 {
        let started = std::time::Instant::now();
        let err = server
            .matchmake(
                Method::JoinOrCreate,
                "battle",
                json!({ "mode": "x", "fail": true }),
            )
            .await
            .unwrap_err();
        assert_eq!(err.code, 4500);
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "the second request did not wait for the first one's lock"
        );
    }
    let seat = server
        .matchmake(Method::JoinOrCreate, "battle", json!({ "mode": "x" }))
        .await
        .unwrap();
    assert_eq!(seat.room.clients, 1);
}
