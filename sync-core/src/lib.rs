#![doc = include_str!("../README.md")]
// The documentation is written for the whole crate: without the server its
// links to the server's items (`Server`, `RedisPresence`, ...) lead nowhere.
#![cfg_attr(not(feature = "server"), allow(rustdoc::broken_intra_doc_links))]

// `#[roomcast::room]` names the crate `::roomcast`, also on the built-in
// rooms (`LobbyRoom`, `RelayRoom`).
extern crate self as roomcast;

pub mod clock;
mod error;
mod lobby;
mod matchmaker;
#[cfg(feature = "server")]
mod metrics;
#[cfg(not(feature = "server"))]
#[path = "metrics_off.rs"]
mod metrics;
pub mod msgpack;
pub mod prelude;
mod presence;
pub mod protocol;
mod relay;
mod room;
#[cfg(feature = "server")]
mod server;
mod state;
pub mod testing;
#[cfg(feature = "server")]
pub mod transport;

/// Writes what an `impl Room` leaves out: the associated types (no state,
/// `()` per client, `Auth` from `on_auth`), the parameters a hook does not
/// use, `-> Result` of a hook that cannot fail, and a starting state of
/// default data: see
/// [`Room`](trait@Room#leaving-out-what-a-room-does-not-use-roomcastroom).
pub use roomcast_schema_derive::room;
/// `#[derive(Schema)]` for a server that depends on `roomcast` alone: the
/// generated code names the encoder as `roomcast::schema`, so no
/// `#[schema(crate = "roomcast::schema")]` is needed.
///
/// ```
/// use roomcast::schema::MapSchema;
///
/// #[derive(roomcast::Schema, Default)]
/// struct Player {
///     x: f32,
/// }
///
/// #[derive(roomcast::Schema, Default)]
/// struct World {
///     players: MapSchema<Player>,
/// }
/// ```
pub use roomcast_schema_derive::RoomcastSchema as Schema;

/// What `#[roomcast::room]` expands to names these; not public API.
#[doc(hidden)]
pub mod __private {
    pub use crate::room::initial::{Initial, NoInitial, ViaDefault};
}

/// The state encoder (`roomcast-schema`), re-exported.
pub use roomcast_schema as schema;

pub use crate::clock::{Clock, TimerId};
pub use crate::error::ServerError;

/// What a fallible hook returns, short enough for a signature on one line:
/// `async fn on_join(..) -> roomcast::Result` is
/// `Result<(), ServerError>`.
pub type Result<T = (), E = ServerError> = std::result::Result<T, E>;

pub use crate::lobby::{LobbyRoom, LOBBY_CHANNEL};
#[cfg(feature = "server")]
pub use crate::matchmaker::RedisStore;
pub use crate::matchmaker::{
    Claim, ClaimInError, Claimed, CreateLock, ListingStore, LocalStore, Order, ProcessInfo,
    ProcessLoad, RoomListing, RoomQuery, RoomUpdate, SeatRequest, SortKeys, StoreError,
    StoreFuture, CREATE_LOCK_TTL, HEARTBEAT_PERIOD, PROCESS_TTL,
};
#[cfg(feature = "server")]
pub use crate::presence::RedisPresence;
pub use crate::presence::{LocalPresence, Presence, PresenceError, PresenceFuture, Subscription};
pub use crate::protocol::{Dialect, MessageType};
pub use crate::relay::{RelayPlayer, RelayRoom, RelayState};
pub use crate::room::{
    AuthRequest, BroadcastOptions, Client, ClientId, ConnId, ConnectRequest, Continuation, Options,
    Reconnection, ReconnectionError, ReconnectionWindow, Reply, Room, RoomCore, RoomCtx,
    RoomDriver, RoomHandle, SeatError, Sender, Transmit, TransmitKind, DEFAULT_SIMULATION_INTERVAL,
};
#[cfg(feature = "server")]
pub use crate::server::{
    Matchmaker, Method, MonitorAuth, MonitorConfig, SeatReservation, Server, ServerBuilder,
    ServerConfig, WebSocketTransport,
};
pub use crate::state::{DialectSet, IntoState, NoState, PatchFrames, StateAccess, SyncState};

#[cfg(test)]
pub(crate) fn hex(s: &str) -> Vec<u8> {
    let s: String = s.split_whitespace().collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex digits"))
        .collect()
}
