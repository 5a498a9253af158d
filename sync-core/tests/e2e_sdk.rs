//! End-to-end tests: the real `@colyseus/sdk` 0.18.4 and `colyseus.js`
//! 0.16.22 (from `tests/node/node_modules`) against a Roomcast server on
//! 127.0.0.1. Each test runs one script of `tests/node/sdk/`.

mod common;

use std::time::Duration;

use common::e2e::run_script;

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
fn per_client_views_modern() {
    run_script("views.mjs", TIMEOUT);
}

#[test]
fn per_client_views_legacy() {
    run_script("views_legacy.mjs", TIMEOUT);
}
