//! The client against the Node reference server, `@colyseus/core` 0.18.17
//! (`tests/node-room.mjs`, the same room as `common::TestRoom`), started on
//! a free loopback port by each test. Needs Node.js 20+ and npm.

mod common;

use common::{node_server, scenarios};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn join_paths_and_errors() {
    let server = node_server();
    scenarios::join_paths_and_errors(server.port, true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typed_state_and_messages() {
    let server = node_server();
    scenarios::typed_state_and_messages(server.port, true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynamic_state_and_callbacks() {
    let server = node_server();
    scenarios::dynamic_state_and_callbacks(server.port, true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leave_codes() {
    let server = node_server();
    scenarios::leave_codes(server.port, true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drop_and_automatic_reconnection() {
    let server = node_server();
    scenarios::drop_and_automatic_reconnection(server.port, true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnection_limits() {
    let server = node_server();
    scenarios::reconnection_limits(server.port, true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnect_by_token() {
    let server = node_server();
    scenarios::reconnect_by_token(server.port, true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_room_stays_connected() {
    let server = node_server();
    scenarios::idle_room_stays_connected(server.port, true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_asks_to_reconnect() {
    let server = node_server();
    scenarios::server_asks_to_reconnect(server.port, true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_reconnection() {
    let server = node_server();
    scenarios::refused_reconnection(server.port, true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests() {
    let server = node_server();
    scenarios::requests(server.port, true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latency() {
    let server = node_server();
    scenarios::latency(server.port, true).await;
}
