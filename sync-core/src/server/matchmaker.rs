//! The matchmaker as application code and rooms call it (Colyseus'
//! `matchMaker` module: `query`, `createRoom`, `reserveSeatFor`,
//! `joinOrCreate`, …).

use std::future::Future;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};

use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::Value;

use super::{CreateError, Inner, Method, SeatReservation, Server};
use crate::error::ServerError;
use crate::matchmaker::RoomListing;
use crate::room::Options;

/// The server's matchmaking, for application code
/// ([`Server::matchmaker`]) and rooms ([`RoomCtx::matchmaker`](crate::RoomCtx::matchmaker)):
/// Colyseus' `matchMaker.query`, `createRoom`, `reserveSeatFor`,
/// `joinOrCreate`, `create`, `join` and `joinById`. In a cluster (a shared
/// [`ListingStore`](crate::ListingStore)) it sees and reaches the rooms of
/// every process.
///
/// Cheap to clone. Its methods return futures that own what they need
/// (`'static`), so a room can hand one straight to
/// [`RoomCtx::spawn`](crate::RoomCtx::spawn); a hook may also await one,
/// as long as it does not ask for a seat in its own room (which processes
/// nothing while the hook runs).
///
/// A [`SeatReservation`] serializes in the shape the SDKs'
/// `client.consumeSeatReservation(reservation)` takes.
///
/// # Examples
///
/// ```
/// use roomcast::{NoState, Options, Room, RoomCtx, Server, ServerError};
/// use serde_json::json;
///
/// #[derive(Default)]
/// struct Battle;
///
/// impl Room for Battle {
///     type State = NoState;
///     type UserData = ();
///     type Auth = ();
///     async fn on_create(&mut self, _: &mut RoomCtx<Self>, _: &Options) -> Result<(), ServerError> {
///         Ok(())
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), ServerError> {
/// let server = Server::builder().define("battle", Battle::default).build();
/// let matchmaker = server.matchmaker();
/// let room = matchmaker.create_room("battle", json!({ "mode": "duel" })).await?;
/// let seat = matchmaker.reserve_seat_for(&room, json!({})).await?;
/// // What the client passes to `client.consumeSeatReservation(...)`:
/// let for_client = serde_json::to_value(&seat).unwrap();
/// assert_eq!(for_client["roomId"], room.room_id.as_str());
/// assert_eq!(matchmaker.query(json!({ "name": "battle" })).await?.len(), 1);
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct Matchmaker {
    pub(super) inner: Weak<Inner>,
}

impl std::fmt::Debug for Matchmaker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Matchmaker")
            .field("attached", &(self.inner.strong_count() > 0))
            .finish()
    }
}

impl Default for Matchmaker {
    /// A matchmaker of no server (a room run by another shell): every call
    /// fails with 503.
    fn default() -> Self {
        Self { inner: Weak::new() }
    }
}

impl Matchmaker {
    fn server(&self) -> Result<Server, ServerError> {
        self.inner
            .upgrade()
            .map(|inner| Server { inner })
            .ok_or_else(|| ServerError::new(503, "the room runs without a server"))
    }

    fn matchmake(
        &self,
        method: Method,
        target: &str,
        options: Options,
    ) -> impl Future<Output = Result<SeatReservation, ServerError>> + Send + 'static {
        let server = self.server();
        let target = target.to_owned();
        async move { server?.matchmake(method, &target, options).await }
    }

    /// The listings of the rooms matching `conditions` (in a cluster: of
    /// every process), private and locked ones included, oldest first
    /// (`matchMaker.query(conditions)`).
    ///
    /// `conditions` is a JSON object; each of its fields must equal the
    /// listing's field of that name (`name`, `roomId`, `processId`,
    /// `clients`, `maxClients`, `locked`, `private`, `unlisted`), else the
    /// room's metadata field of that name, else its filter value. Anything
    /// but an object matches every room.
    ///
    /// # Errors
    ///
    /// When the listing store is unavailable.
    pub fn query(
        &self,
        conditions: Value,
    ) -> impl Future<Output = Result<Vec<RoomListing>, ServerError>> + Send + 'static {
        let server = self.server();
        async move {
            let mut rooms = server?.rooms().await?;
            rooms.retain(|room| matches(room, &conditions));
            rooms.sort_by_key(|room| room.created_at);
            Ok(rooms)
        }
    }

    /// Creates a room named `name` with no seat taken, on the least loaded
    /// process of the cluster (this one otherwise), and returns its
    /// listing (`matchMaker.createRoom(name, options)`). `on_create` gets
    /// `options` under the definition's options. As any new room, it is
    /// disposed if nobody has joined it within its seat reservation time
    /// (15 s by default), unless `on_create` turned auto-dispose off.
    ///
    /// # Errors
    ///
    /// 520 for an undefined name, what `on_create` returned, or the
    /// store's error.
    pub fn create_room(
        &self,
        name: &str,
        options: Options,
    ) -> impl Future<Output = Result<RoomListing, ServerError>> + Send + 'static {
        let server = self.server();
        let name = name.to_owned();
        async move {
            let server = server?;
            server.start_cluster();
            server.handler(&name)?;
            if let Some(process) = server.placement(&[]).await {
                match server
                    .create_remote(&process, &name, &options, None, false)
                    .await
                {
                    Ok((room, _)) => return Ok(room),
                    Err(CreateError::Server(e)) => return Err(e),
                    // Not answering: here instead.
                    Err(CreateError::Unreachable(e)) => {
                        tracing::warn!("remote room creation failed: {e}");
                    }
                    Err(CreateError::LockLost) => {}
                }
            }
            match server.create_room(&name, options, None, false).await {
                Ok((room, _)) => Ok(room),
                Err(CreateError::Server(e) | CreateError::Unreachable(e)) => Err(e),
                Err(CreateError::LockLost) => Err(ServerError::new(
                    crate::protocol::error_code::MATCHMAKE_UNHANDLED,
                    "the room could not be listed",
                )),
            }
        }
    }

    /// Reserves a seat in `room` for a client that will join with
    /// `options` (`matchMaker.reserveSeatFor(room, options)`); the client
    /// consumes it within the room's seat reservation time.
    ///
    /// As in Colyseus, a room locked by hand
    /// ([`lock`](crate::RoomCtx::lock)) or private takes it (an
    /// invitation-only room), a full one does not.
    ///
    /// # Errors
    ///
    /// 522 when the room is gone or full, or the store's error.
    pub fn reserve_seat_for(
        &self,
        room: &RoomListing,
        options: Options,
    ) -> impl Future<Output = Result<SeatReservation, ServerError>> + Send + 'static {
        let server = self.server();
        let room_id = room.room_id.clone();
        async move {
            let server = server?;
            server.start_cluster();
            if server.inner.shutting_down.load(Ordering::Relaxed) {
                return Err(ServerError::new(503, "server is shutting down"));
            }
            server.reserve_in(&room_id, options, true).await
        }
    }

    /// A seat in the best room named `name` with a free one, else in a
    /// new room (`matchMaker.joinOrCreate(name, options)`).
    ///
    /// # Errors
    ///
    /// The matchmaking errors (520–526), or what `on_create` returned.
    pub fn join_or_create(
        &self,
        name: &str,
        options: Options,
    ) -> impl Future<Output = Result<SeatReservation, ServerError>> + Send + 'static {
        self.matchmake(Method::JoinOrCreate, name, options)
    }

    /// A seat in a new room named `name` (`matchMaker.create`).
    ///
    /// # Errors
    ///
    /// As for [`join_or_create`](Self::join_or_create).
    pub fn create(
        &self,
        name: &str,
        options: Options,
    ) -> impl Future<Output = Result<SeatReservation, ServerError>> + Send + 'static {
        self.matchmake(Method::Create, name, options)
    }

    /// A seat in the best existing room named `name` (`matchMaker.join`).
    ///
    /// # Errors
    ///
    /// As for [`join_or_create`](Self::join_or_create); 524 when no room
    /// has a free seat.
    pub fn join(
        &self,
        name: &str,
        options: Options,
    ) -> impl Future<Output = Result<SeatReservation, ServerError>> + Send + 'static {
        self.matchmake(Method::Join, name, options)
    }

    /// A seat in room `room_id` (`matchMaker.joinById`).
    ///
    /// # Errors
    ///
    /// As for [`reserve_seat_for`](Self::reserve_seat_for).
    pub fn join_by_id(
        &self,
        room_id: &str,
        options: Options,
    ) -> impl Future<Output = Result<SeatReservation, ServerError>> + Send + 'static {
        self.matchmake(Method::JoinById, room_id, options)
    }
}

/// Whether `room` matches every field of `conditions` (see
/// [`Matchmaker::query`]).
fn matches(room: &RoomListing, conditions: &Value) -> bool {
    let Some(conditions) = conditions.as_object() else {
        return true;
    };
    let Ok(Value::Object(listing)) = serde_json::to_value(room) else {
        return false;
    };
    conditions.iter().all(|(key, want)| {
        let have = match key.as_str() {
            "metadata" | "filters" => listing.get(key),
            _ => listing
                .get(key)
                .or_else(|| room.metadata.get(key))
                .or_else(|| room.filters.get(key)),
        };
        have.unwrap_or(&Value::Null) == want
    })
}

impl Server {
    /// The server's matchmaker, for application code (Colyseus'
    /// `matchMaker` module); see [`Matchmaker`].
    #[must_use]
    pub fn matchmaker(&self) -> Matchmaker {
        Matchmaker {
            inner: Arc::downgrade(&self.inner),
        }
    }
}

/// The union of the 0.18 flat and 0.16 nested layouts of a seat
/// reservation (room-protocol.md §2.2): what `POST /matchmake/...` answers
/// and `client.consumeSeatReservation(...)` takes, in both SDKs.
impl Serialize for SeatReservation {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let room = &self.room;
        let mut nested = serde_json::json!({
            "name": room.name,
            "roomId": room.room_id,
            "processId": room.process_id,
            "clients": room.clients,
            "maxClients": room.max_clients,
            "locked": room.locked,
            "private": room.private,
            "metadata": room.metadata,
        });
        if let Some(address) = &room.public_address {
            nested["publicAddress"] = Value::from(address.as_str());
        }
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("name", &room.name)?;
        map.serialize_entry("sessionId", &self.session_id)?;
        map.serialize_entry("roomId", &room.room_id)?;
        map.serialize_entry("processId", &room.process_id)?;
        map.serialize_entry("protocol", "ws")?;
        if let Some(address) = &room.public_address {
            map.serialize_entry("publicAddress", address)?;
        }
        map.serialize_entry("room", &nested)?;
        map.end()
    }
}
