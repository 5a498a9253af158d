//! End-to-end tests: the real `@colyseus/sdk` 0.18.4 and `colyseus.js`
//! 0.16.22 (from `tests/node/node_modules`) against a Roomcast server on
//! 127.0.0.1. Each test runs one script of `tests/node/sdk/`.

mod common;

use std::time::Duration;

use common::e2e::{run_script, run_script_at, run_script_on, start_node_twins, start_server};
use serde_json::json;

const TIMEOUT: Duration = Duration::from_secs(60);

#[test]
fn matchmaking_and_state_modern() {
    run_script("matchmaking.mjs", TIMEOUT);
}

#[test]
fn room_api_modern() {
    run_script("room_api.mjs", TIMEOUT);
}

#[test]
fn broadcast_ordering_modern() {
    run_script("ordering.mjs", TIMEOUT);
}

#[test]
fn reconnection_modern() {
    run_script("reconnect.mjs", TIMEOUT);
}

#[test]
fn legacy_client() {
    run_script("legacy.mjs", TIMEOUT);
}

#[test]
fn demo_room_state_matches_in_both_sdks() {
    run_script("world.mjs", TIMEOUT);
}

#[test]
fn wrong_dialect_endpoint_is_explained_to_both_sdks() {
    run_script("dialect.mjs", TIMEOUT);
}

#[test]
fn lobby_room_modern() {
    run_script("lobby.mjs", TIMEOUT);
}

#[test]
fn relay_room_with_both_sdks() {
    run_script("relay.mjs", TIMEOUT);
}

/// The example rooms (`examples/rooms/`) and their Node twins pass the same
/// scripts.
#[test]
fn tictactoe_example_and_its_node_twin() {
    run_script("tictactoe.mjs", TIMEOUT);
    run_script_at(start_node_twins().port, "tictactoe.mjs", &[], TIMEOUT);
}

#[test]
fn chat_example_and_its_node_twin() {
    run_script("chat.mjs", TIMEOUT);
    run_script_at(start_node_twins().port, "chat.mjs", &[], TIMEOUT);
}

#[test]
fn per_client_views_modern() {
    run_script("views.mjs", TIMEOUT);
}

#[test]
fn per_client_views_legacy() {
    run_script("views_legacy.mjs", TIMEOUT);
}

/// Seats reserved by application code (`Server::matchmaker`) and by a room
/// (`RoomCtx::matchmaker`), consumed by both SDKs.
#[test]
fn matchmaker_seats_consumed_by_both_sdks() {
    let server = start_server();
    let matchmaker = server.server.matchmaker();
    let (a, b, c) = server.runtime.block_on(async {
        let room = matchmaker.create_room("counter", json!({})).await.unwrap();
        assert_eq!(room.clients, 0);
        let a = matchmaker.reserve_seat_for(&room, json!({})).await.unwrap();
        let b = matchmaker
            .join_or_create("counter", json!({}))
            .await
            .unwrap();
        assert_eq!(b.room.room_id, room.room_id);
        let listed = matchmaker
            .query(json!({ "name": "counter" }))
            .await
            .unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].clients, 2);
        let by_metadata = matchmaker
            .query(json!({ "mode": "classic" }))
            .await
            .unwrap();
        assert_eq!(by_metadata.len(), 1);
        assert!(matchmaker
            .query(json!({ "mode": "x" }))
            .await
            .unwrap()
            .is_empty());
        let private = matchmaker.create_room("counter", json!({ "private": true }));
        let private = private.await.unwrap();
        matchmaker
            .reserve_seat_for(&private, json!({}))
            .await
            .unwrap();
        // A room locked by hand takes a reserved seat (an invitation), not
        // a joinById.
        let locked = matchmaker.create_room("counter", json!({ "lock": true }));
        let locked = locked.await.unwrap();
        assert!(locked.locked);
        let refused = matchmaker.join_by_id(&locked.room_id, json!({})).await;
        assert_eq!(refused.unwrap_err().code, 522);
        let c = matchmaker
            .reserve_seat_for(&locked, json!({}))
            .await
            .unwrap();
        (a, b, c)
    });
    let [a, b, c] = [a, b, c].map(|seat| serde_json::to_string(&seat).unwrap());
    run_script_on(&server, "seat.mjs", &[&a, &b, &c], TIMEOUT);
}
