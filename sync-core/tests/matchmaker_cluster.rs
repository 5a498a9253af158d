//! The matchmaker of application code (`Server::matchmaker`) in a cluster:
//! two processes sharing a `redis-server`, each creating rooms on the
//! other and reserving seats in the other's rooms; the seats are consumed
//! by the real `@colyseus/sdk` 0.18, which reaches the holder through the
//! reservation's `publicAddress`.

mod common;

use std::sync::Arc;
use std::time::Duration;

use roomcast::testing::redis::RedisServer;
use roomcast::{RedisPresence, RedisStore, Server, ServerConfig};
use serde_json::json;

use common::e2e::{run_script_on, TestServer};
use common::room::E2eRoom;

/// A process of the cluster on a free port of 127.0.0.1.
fn process(redis: &RedisServer, id: &str) -> TestServer {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (server, port) = runtime.block_on(async {
        let presence = RedisPresence::connect(&redis.url()).await.unwrap();
        let store = RedisStore::connect(&presence, "mm:").await.unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let mut config = ServerConfig::default();
        config.process_id = id.into();
        config.public_address = Some(format!("127.0.0.1:{port}"));
        let server = Server::builder()
            .define("counter", E2eRoom::default)
            .presence(Arc::new(presence))
            .store(Arc::new(store))
            .config(config)
            .build();
        let transport = roomcast::WebSocketTransport::new(listener);
        let serving = server.clone();
        tokio::spawn(async move {
            roomcast::transport::Transport::serve(transport, serving)
                .await
                .unwrap();
        });
        (server, port)
    });
    TestServer {
        port,
        server,
        runtime,
    }
}

#[test]
fn matchmaker_across_processes_with_the_sdk() {
    let redis = RedisServer::start();
    let a = process(&redis, "pa");
    let b = process(&redis, "pb");
    let (ma, mb) = (a.server.matchmaker(), b.server.matchmaker());
    let seats = a.runtime.block_on(async {
        // Both processes registered (their cluster tasks started serving).
        for _ in 0..500 {
            if a.server.store().processes().await.unwrap().len() == 2 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(a.server.store().processes().await.unwrap().len(), 2);
        // The first room goes here, the second to the least loaded process.
        let here = ma.create_room("counter", json!({})).await.unwrap();
        assert_eq!(here.process_id, "pa");
        let there = ma.create_room("counter", json!({})).await.unwrap();
        assert_eq!(there.process_id, "pb");
        assert_eq!(there.clients, 0);
        // Both processes see both rooms; conditions on metadata too.
        for m in [&ma, &mb] {
            let rooms = m.query(json!({ "name": "counter" })).await.unwrap();
            assert_eq!(rooms.len(), 2);
            let rooms = m
                .query(json!({ "processId": "pb", "mode": "classic" }))
                .await;
            assert_eq!(rooms.unwrap().len(), 1);
        }
        // Seats in the other process's rooms, and in its own.
        let seats = [
            mb.reserve_seat_for(&here, json!({})).await.unwrap(),
            ma.reserve_seat_for(&there, json!({})).await.unwrap(),
            mb.join_or_create("counter", json!({})).await.unwrap(),
        ];
        assert_eq!(seats[0].room.process_id, "pa");
        assert_eq!(seats[1].room.process_id, "pb");
        // A private room takes a seat reserved for it (hidden from
        // matchmaking only).
        let private = mb.create_room("counter", json!({ "private": true })).await;
        let private = private.unwrap();
        assert!(private.private);
        ma.reserve_seat_for(&private, json!({})).await.unwrap();
        // One locked by hand too (an invitation), unlike joinById.
        let locked = mb.create_room("counter", json!({ "lock": true })).await;
        let locked = locked.unwrap();
        assert!(locked.locked);
        let refused = ma.join_by_id(&locked.room_id, json!({})).await;
        assert_eq!(refused.unwrap_err().code, 522);
        ma.reserve_seat_for(&locked, json!({})).await.unwrap();
        let unknown =
            ma.reserve_seat_for(&roomcast::RoomListing::new("nope", "counter"), json!({}));
        assert_eq!(unknown.await.unwrap_err().code, 522);
        seats
    });
    let seats: Vec<String> = seats
        .iter()
        .map(|s| serde_json::to_string(s).unwrap())
        .collect();
    let seats: Vec<&str> = seats.iter().map(String::as_str).collect();
    run_script_on(&a, "consume.mjs", &seats, Duration::from_secs(60));
}
