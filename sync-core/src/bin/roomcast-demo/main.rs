//! Roomcast demo server: `cargo run -p roomcast --bin roomcast-demo` serves
//! on 127.0.0.1:2567, for `@colyseus/sdk` 0.18 at the root and
//! `colyseus.js` 0.16 under `/legacy`, the rooms
//!
//! - `world`: players moving on a map, and a chat;
//! - `battle`: matches of `maxClients` players (default 10) that only
//!   players of the same `mode` option share (`filter_by(["mode"])`);
//! - `filler`: an empty room that stays listed.
//!
//! By default it is one process on its own. With `ROOMCAST_REDIS` it is a
//! node of a cluster: processes that share one Redis share their listings
//! and seats, so a client matchmaking through any of them gets a seat in a
//! room of any of them, and the seat reservation sends its WebSocket to
//! the process that holds the room.
//!
//! Environment:
//!
//! - `ROOMCAST_ADDR`: the address to listen on (default `127.0.0.1:2567`;
//!   port 0 picks a free port);
//! - `ROOMCAST_REDIS=redis://host:port`: be a cluster node, with presence,
//!   listings and seats in that Redis;
//! - `ROOMCAST_REDIS_PREFIX`: the prefix of its Redis keys (default
//!   `roomcast:`); the nodes of a cluster use the same;
//! - `ROOMCAST_PROCESS_ID`: this process' id in the cluster (default
//!   random);
//! - `ROOMCAST_PUBLIC_ADDRESS`: `host[:port][/path]` where clients reach
//!   this process, sent in seat reservations (default: none for a single
//!   process; in a cluster, the address listened on, `127.0.0.1:<port>`
//!   when listening on every interface);
//! - `ROOMCAST_DEBUG=1`: debug logs;
//! - `ROOMCAST_MONITOR_TOKEN=<token>`: serve the monitor at
//!   `/monitor/?token=<token>` and Prometheus metrics at `/metrics`.
//!
//! Once listening it prints `roomcast ready <port> <processId>` on stdout.
//!
//! `--reflection-out <file>`: write the Reflection of the `world` room's
//! state (the bytes of the JOIN_ROOM handshake) to `<file>` and exit, for
//! `roomcast-codegen`.

mod battle;
mod room;

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use roomcast::transport::Transport;
use roomcast::{Dialect, RedisPresence, RedisStore, Server, ServerConfig, WebSocketTransport};

/// `--reflection-out <file>`: the path to write the `world` state's
/// Reflection to, instead of serving.
fn reflection_out() -> std::io::Result<Option<String>> {
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        if arg == "--reflection-out" {
            return args
                .next()
                .map(Some)
                .ok_or_else(|| std::io::Error::other("--reflection-out needs a file name"));
        }
    }
    Ok(None)
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    if let Some(path) = reflection_out()? {
        let types =
            roomcast::schema::registry_of::<room::World>().map_err(std::io::Error::other)?;
        let bytes = roomcast::schema::encode_reflection(&types, roomcast::schema::Dialect::Modern);
        return std::fs::write(&path, bytes);
    }
    let env = |name| std::env::var(name).ok().filter(|v| !v.is_empty());
    let debug = env("ROOMCAST_DEBUG").is_some_and(|v| v == "1");
    tracing_subscriber::fmt()
        .with_max_level(if debug {
            tracing::Level::DEBUG
        } else {
            tracing::Level::INFO
        })
        .init();
    let addr = env("ROOMCAST_ADDR").unwrap_or_else(|| "127.0.0.1:2567".into());
    let transport = WebSocketTransport::bind(&addr).await?;
    let mut local = transport.local_addr()?;
    if local.ip().is_unspecified() {
        local.set_ip(IpAddr::V4(Ipv4Addr::LOCALHOST));
    }

    let mut config = ServerConfig::default();
    if let Some(id) = env("ROOMCAST_PROCESS_ID") {
        config.process_id = id;
    }
    config.public_address = env("ROOMCAST_PUBLIC_ADDRESS");
    let mut builder = Server::builder();
    if let Some(url) = env("ROOMCAST_REDIS") {
        let prefix = env("ROOMCAST_REDIS_PREFIX").unwrap_or_else(|| "roomcast:".into());
        let presence = RedisPresence::connect(&url)
            .await
            .map_err(|e| std::io::Error::other(format!("{url}: {e}")))?;
        let store = RedisStore::connect(&presence, &prefix)
            .await
            .map_err(|e| std::io::Error::other(format!("{url}: {e}")))?;
        builder = builder.presence(Arc::new(presence)).store(Arc::new(store));
        config
            .public_address
            .get_or_insert_with(|| local.to_string());
        tracing::info!("cluster node {} on {url} ({prefix})", config.process_id);
    }
    if let Some(token) = env("ROOMCAST_MONITOR_TOKEN") {
        let url = format!("http://{local}/monitor/?token={token}");
        tracing::info!("monitor on {url}, metrics on http://{local}/metrics");
        let monitor = roomcast::MonitorConfig::token(token);
        builder = builder.monitor(monitor).metrics("/metrics");
    }
    let process_id = config.process_id.clone();
    let server = builder
        .config(config)
        .define("world", || room::DemoRoom)
        .define("battle", battle::BattleRoom::default)
        .filter_by(["mode"])
        .define("filler", battle::FillerRoom::default)
        .endpoint("/legacy", Dialect::Legacy)
        .build();

    tracing::info!(
        "roomcast demo: clients join http://{} (rooms \"world\", \"battle\", \"filler\"; colyseus.js 0.16: http://{0}/legacy)",
        transport.local_addr()?
    );
    // Line-buffered: flushed at the newline.
    println!("roomcast ready {} {process_id}", local.port());
    transport.serve(server).await
}
