//! Roomcast demo server: `cargo run -p roomcast --bin roomcast-demo` serves
//! the room `world` (players moving on a map, a chat) on 127.0.0.1:2567,
//! for `@colyseus/sdk` 0.18 at the root and `colyseus.js` 0.16 under
//! `/legacy`.
//!
//! Environment: `ROOMCAST_ADDR` (default `127.0.0.1:2567`), `ROOMCAST_DEBUG=1`
//! for debug logs.

mod room;

use roomcast::{Dialect, Server};

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let debug = std::env::var("ROOMCAST_DEBUG").is_ok_and(|v| v == "1");
    tracing_subscriber::fmt()
        .with_max_level(if debug {
            tracing::Level::DEBUG
        } else {
            tracing::Level::INFO
        })
        .init();
    let addr = std::env::var("ROOMCAST_ADDR").unwrap_or_else(|_| "127.0.0.1:2567".into());
    let server = Server::builder()
        .define("world", room::DemoRoom::default)
        .endpoint("/legacy", Dialect::Legacy)
        .build();
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    tracing::info!(
        "roomcast demo on ws://{} (room \"world\"; 0.16 clients: /legacy)",
        listener.local_addr()?
    );
    roomcast::transport::Transport::serve(roomcast::WebSocketTransport::new(listener), server).await
}
