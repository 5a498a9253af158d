//! The client against a Roomcast server served in-process on a free
//! loopback port (the room of `common::TestRoom`).

mod common;

use common::{roomcast_server, scenarios};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn join_paths_and_errors() {
    let server = roomcast_server().await;
    scenarios::join_paths_and_errors(server.port, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typed_state_and_messages() {
    let server = roomcast_server().await;
    scenarios::typed_state_and_messages(server.port, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynamic_state_and_callbacks() {
    let server = roomcast_server().await;
    scenarios::dynamic_state_and_callbacks(server.port, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leave_codes() {
    let server = roomcast_server().await;
    scenarios::leave_codes(server.port, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drop_and_automatic_reconnection() {
    let server = roomcast_server().await;
    scenarios::drop_and_automatic_reconnection(server.port, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnection_limits() {
    let server = roomcast_server().await;
    scenarios::reconnection_limits(server.port, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnect_by_token() {
    let server = roomcast_server().await;
    scenarios::reconnect_by_token(server.port, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_asks_to_reconnect() {
    let server = roomcast_server().await;
    scenarios::server_asks_to_reconnect(server.port, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_reconnection() {
    let server = roomcast_server().await;
    scenarios::refused_reconnection(server.port, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests() {
    let server = roomcast_server().await;
    scenarios::requests(server.port, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latency() {
    let server = roomcast_server().await;
    scenarios::latency(server.port, false).await;
}
