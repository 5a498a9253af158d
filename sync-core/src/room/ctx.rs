//! [`RoomCtx`]: everything a hook can read and change about its room.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_channel::oneshot;
use roomcast_schema::ViewId;
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::io::{ConnId, Transmit, TransmitKind};
use super::{Client, ClientId, Options, Room};
use crate::clock::{Clock, TimerId};
use crate::error::ServerError;
use crate::matchmaker::ListingStore;
use crate::msgpack::{self, Value};
use crate::presence::Presence;
use crate::protocol::{self, Dialect, MessageType};
use crate::state::{DialectSet, IntoState, StateAccess, SyncState};

pub(crate) type Handler<R> = Arc<
    dyn Fn(&mut R, &mut RoomCtx<R>, &Client, &Value) -> Result<ReplyOutcome, msgpack::ValueError>
        + Send
        + Sync,
>;
pub(crate) type AnyHandler<R> =
    Arc<dyn Fn(&mut R, &mut RoomCtx<R>, &Client, &MessageType, &Value) + Send + Sync>;
pub(crate) type CallHandler<R> = Arc<
    dyn Fn(&mut R, &mut RoomCtx<R>, serde_json::Value) -> Result<serde_json::Value, ServerError>
        + Send
        + Sync,
>;
pub(crate) type SimulationCallback<R> = Box<dyn FnMut(&mut R, &mut RoomCtx<R>, Duration) + Send>;
/// What runs with the room when a spawned future finished (see
/// [`RoomDriver::poll_spawned`](crate::RoomDriver::poll_spawned)).
pub type Continuation<R> = Box<dyn FnOnce(&mut R, &mut RoomCtx<R>) + Send>;
pub(crate) type Spawned<R> = Pin<Box<dyn Future<Output = Continuation<R>> + Send>>;

/// What a message handler returns: `()`, or `Result<T, ServerError>` to
/// answer a 0.18 `room.request(type, payload)` (the `Ok` value is the
/// response; an `Err` rejects the client's promise with its code and
/// message). For plain messages the value is dropped. (A handler whose
/// body only panics needs an explicit `-> ()`.)
///
/// # Examples
///
/// ```
/// # use roomcast::{Room, RoomCtx, ServerError};
/// fn register<R: Room>(ctx: &mut RoomCtx<R>) {
///     ctx.on_message("double", |_room: &mut R, _ctx, _client, n: i64| -> Result<i64, ServerError> {
///         n.checked_mul(2).ok_or_else(|| ServerError::new(4400, "too large"))
///     });
/// }
/// ```
pub trait Reply {
    #[doc(hidden)]
    fn into_outcome(self) -> ReplyOutcome;
}

#[doc(hidden)]
#[derive(Debug)]
pub enum ReplyOutcome {
    Empty,
    Value(Vec<u8>),
    Error(ServerError),
}

impl Reply for () {
    fn into_outcome(self) -> ReplyOutcome {
        ReplyOutcome::Empty
    }
}

impl<T: Serialize> Reply for Result<T, ServerError> {
    fn into_outcome(self) -> ReplyOutcome {
        match self.map(|value| msgpack::to_vec(&value)) {
            Ok(Ok(bytes)) => ReplyOutcome::Value(bytes),
            Ok(Err(e)) => ReplyOutcome::Error(ServerError::application(format!(
                "the response could not be serialized: {e}"
            ))),
            Err(e) => ReplyOutcome::Error(e),
        }
    }
}

/// Colyseus' default simulation interval, 16.6 ms (60 Hz).
pub const DEFAULT_SIMULATION_INTERVAL: Duration = Duration::from_micros(16_600);

/// Limits applied to every client of a room.
/// How long a client may take to acknowledge JOIN_ROOM by default.
pub(crate) const DEFAULT_JOIN_ACK_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Clone, Copy, Debug)]
pub(crate) struct Limits {
    pub(crate) max_frame_bytes: usize,
    pub(crate) max_messages_per_second: Option<u32>,
    pub(crate) join_ack_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_frame_bytes: 64 * 1024,
            max_messages_per_second: None,
            join_ack_timeout: DEFAULT_JOIN_ACK_TIMEOUT,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Status {
    /// Seat reserved over HTTP, no connection yet.
    Reserved,
    /// Connected; `on_auth` pending.
    Authenticating,
    /// Authenticated; `on_join` pending.
    Joining,
    /// JOIN_ROOM sent; waiting for the client's `0a`.
    AwaitingAck,
    /// Receiving patches and messages.
    Joined,
    /// Connection lost; `on_drop` pending.
    Dropping,
    /// Seat held by `allow_reconnection`.
    Reconnecting,
    /// `on_leave` pending; the slot goes away afterwards.
    Leaving,
}

pub(crate) struct Slot<R: Room> {
    pub(crate) session_id: Arc<str>,
    pub(crate) status: Status,
    pub(crate) conn: Option<ConnId>,
    pub(crate) dialect: Dialect,
    pub(crate) expires: Option<Instant>,
    pub(crate) options: Options,
    pub(crate) token: String,
    pub(crate) user_data: R::UserData,
    pub(crate) auth: R::Auth,
    /// Frames for the client before it acknowledged JOIN_ROOM, or before
    /// its full state went out.
    pub(crate) pending: Vec<Bytes>,
    /// Acknowledged JOIN_ROOM, full state not sent yet: joiners of one
    /// batch of commands share one full-state encode
    /// (`RoomCore::poll_transmit`). Outgoing frames wait in `pending`.
    pub(crate) syncing: bool,
    pub(crate) rate: (Instant, u32),
    pub(crate) skip_handshake: bool,
    pub(crate) waiter: Option<oneshot::Sender<Result<Client, ReconnectionError>>>,
    /// Whether `on_leave` still has to run when a reconnection fails.
    pub(crate) leave_on_failure: bool,
    pub(crate) consented: bool,
    /// The close code of the leave or drop, for `on_leave`.
    pub(crate) close_code: u16,
    pub(crate) auth_request: Option<super::AuthRequest>,
    /// The client's view of the state's filtered fields, if it has one.
    pub(crate) view: Option<ViewId>,
}

impl<R: Room> Slot<R> {
    /// Whether the slot takes a seat (counts towards `max_clients`).
    pub(crate) fn takes_seat(&self) -> bool {
        !matches!(self.status, Status::Dropping | Status::Leaving)
    }

    /// Whether the slot is one of the room's `clients`.
    pub(crate) fn is_client(&self) -> bool {
        matches!(
            self.status,
            Status::Joining | Status::AwaitingAck | Status::Joined
        )
    }
}

pub(crate) enum Event {
    Auth(ClientId),
    Join(ClientId),
    Message {
        client: ClientId,
        ty: MessageType,
        payload: Value,
        request: Option<u32>,
    },
    Simulation(Duration),
    Timer(TimerId),
    Patch,
    Drop {
        client: ClientId,
        code: u16,
    },
    Leave {
        client: ClientId,
        code: u16,
    },
    Reconnect(ClientId),
    Dispose,
}

pub(crate) struct Simulation<R: Room> {
    pub(crate) interval: Duration,
    pub(crate) next: Instant,
    pub(crate) last: Instant,
    pub(crate) callback: Option<SimulationCallback<R>>,
}

/// Options of [`RoomCtx::broadcast`].
///
/// # Examples
///
/// ```
/// use roomcast::BroadcastOptions;
///
/// let options = BroadcastOptions::default().after_next_patch();
/// # let _ = options;
/// ```
#[derive(Clone, Debug, Default)]
pub struct BroadcastOptions {
    except: Vec<ClientId>,
    after_next_patch: bool,
}

/// No options: `ctx.broadcast(ty, &message, ())`.
impl From<()> for BroadcastOptions {
    fn from((): ()) -> Self {
        Self::default()
    }
}

impl BroadcastOptions {
    /// Skips `client` (may be called several times).
    #[must_use]
    pub fn except(mut self, client: &Client) -> Self {
        self.except.push(client.id);
        self
    }

    /// Sends right after the next patch instead of now.
    #[must_use]
    pub fn after_next_patch(mut self) -> Self {
        self.after_next_patch = true;
        self
    }
}

/// Why a [`Reconnection`] failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReconnectionError {
    /// The time given to `allow_reconnection` ran out.
    #[error("reconnection timed out")]
    Timeout,
    /// [`RoomCtx::reject_reconnection`] was called.
    #[error("reconnection rejected")]
    Rejected,
    /// The client was not dropped (called outside `on_drop`/`on_leave`).
    #[error("client is not waiting for a reconnection")]
    NotDropped,
    /// The room was disposed while waiting.
    #[error("room disposed")]
    Disposed,
}

/// Resolves with the client when it reconnects, or fails
/// ([`ReconnectionError`]). Returned by [`RoomCtx::allow_reconnection`].
///
/// The seat is held whether or not it is awaited, and `on_reconnect` or
/// `on_leave` follow either way: most rooms drop it. To act on the outcome
/// where the window was opened, await it through [`RoomCtx::spawn`], not
/// inside a hook: the room processes nothing — not even the reconnection —
/// while a hook runs. A task ([`RoomCtx::spawn_task`]) may await it and
/// then come back to the room.
pub struct Reconnection {
    rx: Option<oneshot::Receiver<Result<Client, ReconnectionError>>>,
    error: ReconnectionError,
}

impl fmt::Debug for Reconnection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Reconnection").finish_non_exhaustive()
    }
}

impl Future for Reconnection {
    type Output = Result<Client, ReconnectionError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let error = self.error;
        match self.rx.as_mut() {
            None => Poll::Ready(Err(error)),
            Some(rx) => Pin::new(rx)
                .poll(cx)
                .map(|r| r.unwrap_or(Err(ReconnectionError::Disposed))),
        }
    }
}

/// How long [`RoomCtx::allow_reconnection`] holds a seat: seconds (`20`,
/// `2.5`), a [`Duration`], or `None` for "until
/// [`reject_reconnection`](RoomCtx::reject_reconnection)" (Colyseus
/// `allowReconnection(client, 20)` / `"manual"`).
///
/// # Examples
///
/// ```
/// use roomcast::ReconnectionWindow;
/// use std::time::Duration;
///
/// assert_eq!(20.window(), Some(Duration::from_secs(20)));
/// assert_eq!(2.5.window(), Some(Duration::from_millis(2500)));
/// assert_eq!((-3).window(), Some(Duration::ZERO));
/// assert_eq!(f64::NAN.window(), Some(Duration::ZERO));
/// assert_eq!(None::<Duration>.window(), None);
/// ```
pub trait ReconnectionWindow {
    /// The window; `None` has no end.
    fn window(self) -> Option<Duration>;
}

impl ReconnectionWindow for Duration {
    fn window(self) -> Option<Duration> {
        Some(self)
    }
}

impl ReconnectionWindow for Option<Duration> {
    fn window(self) -> Option<Duration> {
        self
    }
}

/// Seconds; negative ones are none.
impl ReconnectionWindow for i32 {
    fn window(self) -> Option<Duration> {
        Some(Duration::from_secs(u64::try_from(self).unwrap_or(0)))
    }
}

/// Seconds.
impl ReconnectionWindow for u64 {
    fn window(self) -> Option<Duration> {
        Some(Duration::from_secs(self))
    }
}

/// Seconds; negative ones and NaN are none, beyond what a [`Duration`]
/// holds is no end.
impl ReconnectionWindow for f64 {
    fn window(self) -> Option<Duration> {
        if self.is_nan() || self <= 0.0 {
            return Some(Duration::ZERO);
        }
        Duration::try_from_secs_f64(self).ok()
    }
}

/// Where a room is in its life, in order: created, open, disconnecting
/// (optional), disposing, disposed. It never goes back.
///
/// One state for what were four flags (`creating`, `disconnecting`,
/// `disposing`, `disposed`) tracking this one sequence. Locking, privacy,
/// listing and `auto_dispose` stay flags: they change both ways, whatever
/// the lifecycle.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Lifecycle {
    /// `on_create` is running (the room id may still change).
    Creating {
        /// [`RoomCtx::disconnect`] was called from `on_create`: the room
        /// is disconnecting once created.
        disconnect: bool,
    },
    /// Created: clients join and leave; the room goes when empty if
    /// `auto_dispose` is set.
    Open,
    /// [`RoomCtx::disconnect`] was called: no reconnection is allowed and
    /// the room goes once empty, whatever `auto_dispose` says.
    Disconnecting,
    /// Empty and going: `on_dispose` is queued or running; no seat is
    /// reserved any more.
    Disposing,
    /// `on_dispose` ran: the room is gone.
    Disposed,
}

impl Lifecycle {
    /// Whether the room is going or gone (it reserves no seat).
    pub(crate) fn is_disposing(self) -> bool {
        matches!(self, Self::Disposing | Self::Disposed)
    }

    /// Whether [`RoomCtx::disconnect`] was called or the room is going
    /// (it allows no reconnection).
    pub(crate) fn is_disconnecting(self) -> bool {
        !matches!(self, Self::Creating { disconnect: false } | Self::Open)
    }
}

/// The room as its hooks see it: state, clients, messaging, settings,
/// clock and presence (Colyseus' `this` inside a `Room`).
pub struct RoomCtx<R: Room> {
    pub(crate) now: Instant,
    pub(crate) room_id: String,
    pub(crate) room_name: Arc<str>,
    pub(crate) lifecycle: Lifecycle,
    pub(crate) state: Option<R::State>,
    /// What [`RoomCtx::auth`] gives for a client no longer in the room.
    pub(crate) no_auth: R::Auth,
    pub(crate) slots: BTreeMap<ClientId, Slot<R>>,
    pub(crate) sessions: HashMap<Arc<str>, ClientId>,
    pub(crate) conns: HashMap<ConnId, ClientId>,
    pub(crate) next_client: u32,
    pub(crate) max_clients: Option<usize>,
    pub(crate) locked_explicit: bool,
    pub(crate) locked_full: bool,
    pub(crate) private: bool,
    pub(crate) unlisted: bool,
    pub(crate) metadata: serde_json::Value,
    pub(crate) auto_dispose: bool,
    /// When an empty room goes if it never had a client (`None` once
    /// passed).
    pub(crate) first_client_by: Option<Instant>,
    pub(crate) seat_reservation_time: Duration,
    pub(crate) patch_rate: Option<Duration>,
    pub(crate) next_patch: Option<Instant>,
    pub(crate) simulation: Option<Simulation<R>>,
    pub(crate) clock: Clock<R>,
    pub(crate) handlers: HashMap<MessageType, Handler<R>>,
    pub(crate) any_handler: Option<AnyHandler<R>>,
    pub(crate) calls: HashMap<String, CallHandler<R>>,
    pub(crate) outbox: VecDeque<Transmit>,
    /// Clients whose full state goes out with the next transmits.
    pub(crate) syncing: Vec<ClientId>,
    pub(crate) after_patch: Vec<(Bytes, Vec<ClientId>)>,
    pub(crate) events: VecDeque<Event>,
    pub(crate) spawned: Vec<Spawned<R>>,
    pub(crate) listing_changed: bool,
    pub(crate) presence: Arc<dyn Presence>,
    pub(crate) store: Arc<dyn ListingStore>,
    #[cfg(feature = "server")]
    pub(crate) matchmaker: crate::Matchmaker,
    pub(crate) limits: Limits,
    /// What tasks ask to run with the room ([`RoomCtx::spawn_task`]).
    pub(crate) mailbox: super::task::Mailbox<R>,
}

impl<R: Room> fmt::Debug for RoomCtx<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RoomCtx")
            .field("room_id", &self.room_id)
            .field("room_name", &self.room_name)
            .field("clients", &self.slots.len())
            .field("locked", &self.locked())
            .finish_non_exhaustive()
    }
}

/// The state's data, for a room whose state is an `Encoder` (any
/// [`StateAccess`]).
impl<R: Room> RoomCtx<R>
where
    R::State: StateAccess,
{
    /// The state: the `#[derive(Schema)]` data of the room's `Encoder`.
    ///
    /// # Examples
    ///
    /// ```
    /// use roomcast::schema::Encoder;
    /// use roomcast::{Room, RoomCtx, Schema};
    ///
    /// #[derive(Schema, Default)]
    /// struct Score {
    ///     points: u32,
    /// }
    ///
    /// fn score(ctx: &mut RoomCtx<impl Room<State = Encoder<Score>>>) {
    ///     let points = ctx.state().points;
    ///     ctx.state_mut().set_points(points + 1);
    /// }
    /// ```
    ///
    /// # Panics
    ///
    /// When the room has no state: [`set_state`](Self::set_state) was
    /// never called and it did not start with one
    /// ([`Room::initial_state`]).
    #[must_use]
    pub fn state(&self) -> &<R::State as StateAccess>::Data {
        self.state
            .as_ref()
            .expect("the room has no state: set_state was never called")
            .state()
    }

    /// The state for changes: the derive's view, whose setters record every
    /// change for the next patch (see [`state`](Self::state)).
    ///
    /// # Panics
    ///
    /// When the room has no state: [`set_state`](Self::set_state) was
    /// never called and it did not start with one
    /// ([`Room::initial_state`]).
    pub fn state_mut(&mut self) -> <R::State as StateAccess>::Mut<'_> {
        self.state
            .as_mut()
            .expect("the room has no state: set_state was never called")
            .state_mut()
    }
}

impl<R: Room> RoomCtx<R> {
    // ----- identity -----------------------------------------------------

    /// The room's unique id.
    #[must_use]
    pub fn room_id(&self) -> &str {
        &self.room_id
    }

    /// Replaces the generated room id; only during `on_create` (Colyseus
    /// `this.roomId = …`).
    ///
    /// # Errors
    ///
    /// `APPLICATION_ERROR` (526) when called after `on_create`, or when
    /// `id` is empty or has characters outside `[A-Za-z0-9_-]` (the SDKs'
    /// URL pattern); the id is then left as it was. Returned from
    /// `on_create` with `?`, it fails the creation.
    ///
    /// # Examples
    ///
    /// ```
    /// # use roomcast::{Options, Room, RoomCtx, ServerError};
    /// async fn on_create<R: Room>(ctx: &mut RoomCtx<R>, options: &Options) -> Result<(), ServerError> {
    ///     if let Some(code) = options["code"].as_str() {
    ///         ctx.set_room_id(code)?;
    ///     }
    ///     Ok(())
    /// }
    /// ```
    pub fn set_room_id(&mut self, id: impl Into<String>) -> Result<(), ServerError> {
        let id = id.into();
        if !matches!(self.lifecycle, Lifecycle::Creating { .. }) {
            return Err(ServerError::application(
                "the room id can only be set in on_create",
            ));
        }
        if id.is_empty()
            || !id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        {
            return Err(ServerError::application(format!(
                "room id {id:?} is not [A-Za-z0-9_-]+"
            )));
        }
        self.room_id = id;
        Ok(())
    }

    /// The name the room was defined under.
    #[must_use]
    pub fn room_name(&self) -> &str {
        &self.room_name
    }

    /// The time of the event being processed.
    #[must_use]
    pub fn now(&self) -> Instant {
        self.now
    }

    // ----- state --------------------------------------------------------

    /// Sets the synchronized state; its full encoding goes to every client
    /// that joins, and its patches to every client. Takes the state, or
    /// for an `Encoder<T>` state its data `T` ([`IntoState`]).
    pub fn set_state(&mut self, state: impl IntoState<R::State>) {
        self.state = Some(state.into_state());
    }

    /// The synchronized state itself (the encoder), if set: for what
    /// [`state`](Self::state) does not reach (views, a custom
    /// [`SyncState`](crate::SyncState)).
    #[must_use]
    pub fn sync_state(&self) -> Option<&R::State> {
        self.state.as_ref()
    }

    /// The synchronized state itself (the encoder), for changes.
    ///
    /// # Panics
    ///
    /// When the room has no state: [`set_state`](Self::set_state) was
    /// never called and it did not start with one
    /// ([`Room::initial_state`]).
    pub fn sync_state_mut(&mut self) -> &mut R::State {
        self.state
            .as_mut()
            .expect("the room has no state: set_state was never called")
    }

    // ----- clients ------------------------------------------------------

    /// The room's clients (joining or joined), in join order.
    pub fn clients(&self) -> impl Iterator<Item = Client> + '_ {
        self.slots
            .iter()
            .filter(|(_, s)| s.is_client())
            .map(|(id, s)| Client {
                id: *id,
                session_id: s.session_id.clone(),
            })
    }

    /// How many clients the room has (see [`clients`](Self::clients)).
    #[must_use]
    pub fn client_count(&self) -> usize {
        self.slots.values().filter(|s| s.is_client()).count()
    }

    /// The client with this session id, if it is in the room.
    #[must_use]
    pub fn client(&self, session_id: &str) -> Option<Client> {
        let id = *self.sessions.get(session_id)?;
        self.client_handle(id)
    }

    /// A client's server-only data.
    #[must_use]
    pub fn user_data(&self, client: &Client) -> Option<&R::UserData> {
        self.slots.get(&client.id).map(|s| &s.user_data)
    }

    /// A client's server-only data, for changes.
    pub fn user_data_mut(&mut self, client: &Client) -> Option<&mut R::UserData> {
        self.slots.get_mut(&client.id).map(|s| &mut s.user_data)
    }

    /// What `on_auth` returned for a client (Colyseus `client.auth`);
    /// `Auth::default()` for a client no longer in the room, as before
    /// `on_auth` returned.
    ///
    /// # Examples
    ///
    /// ```
    /// # use roomcast::{Client, Room, RoomCtx};
    /// fn greet<R: Room<Auth = String>>(ctx: &mut RoomCtx<R>, client: &Client) {
    ///     let name = ctx.auth(client).clone();
    ///     ctx.broadcast("hello", &name, ());
    /// }
    /// ```
    #[must_use]
    pub fn auth(&self, client: &Client) -> &R::Auth {
        self.slots
            .get(&client.id)
            .map_or(&self.no_auth, |s| &s.auth)
    }

    /// Gives `client` its own view of the state's `#[schema(view)]` fields
    /// (Colyseus's `client.view = new StateView()`), replacing the one it
    /// had; `None` when the room has no state, the state has no views, or
    /// the client is not in the room.
    ///
    /// Show instances to it with [`ViewTarget`](roomcast_schema::ViewTarget)
    /// (`show_to(view)` is `client.view.add(instance)`). From then on the
    /// client receives the shared patches followed by its view's part, and
    /// a full state (on join or reconnection) followed by its view's full
    /// part. The view is dropped when the client is gone for good (not
    /// while a reconnection is awaited). A view belongs to one client: what
    /// it holds is what that client holds.
    ///
    /// # Examples
    ///
    /// ```
    /// use roomcast::schema::{Encoder, MapSchema, ViewTarget};
    /// use roomcast::{Client, Options, Room, RoomCtx, Schema, ServerError};
    ///
    /// #[derive(Schema, Default)]
    /// struct Seat {
    ///     name: String,
    ///     #[schema(view)]
    ///     hand: u8, // only the seat's owner sees it
    /// }
    ///
    /// #[derive(Schema, Default)]
    /// struct Table {
    ///     seats: MapSchema<Seat>,
    /// }
    ///
    /// #[derive(Default)]
    /// struct Cards;
    ///
    /// impl Room for Cards {
    ///     type State = Encoder<Table>;
    ///     type UserData = ();
    ///     type Auth = ();
    ///
    ///     async fn on_create(&mut self, ctx: &mut RoomCtx<Self>, _: &Options) -> Result<(), ServerError> {
    ///         ctx.set_state(Encoder::new(Table::default()));
    ///         Ok(())
    ///     }
    ///
    ///     async fn on_join(&mut self, ctx: &mut RoomCtx<Self>, client: &Client, _: &Options) -> Result<(), ServerError> {
    ///         let seat = Seat { name: client.session_id().into(), hand: 7 };
    ///         let view = ctx.create_view(client).expect("the state has views");
    ///         let mut table = ctx.state_mut();
    ///         let mut seats = table.seats_mut();
    ///         seats.insert(client.session_id(), seat);
    ///         seats.get_mut(client.session_id()).expect("inserted").show_to(view);
    ///         Ok(())
    ///     }
    /// }
    /// ```
    pub fn create_view(&mut self, client: &Client) -> Option<ViewId> {
        let state = self.state.as_mut()?;
        let slot = self.slots.get_mut(&client.id)?;
        let view = state.create_view()?;
        if let Some(old) = slot.view.replace(view) {
            state.drop_view(old);
        }
        Some(view)
    }

    /// The view of `client` (see [`create_view`](Self::create_view)).
    #[must_use]
    pub fn view(&self, client: &Client) -> Option<ViewId> {
        self.slots.get(&client.id)?.view
    }

    // ----- messages -----------------------------------------------------

    /// Registers a typed handler for messages of type `ty` (a name or a
    /// number). The handler's return value ([`Reply`]) answers requests.
    ///
    /// The payload type says how strict the handler is:
    /// - a strict type (`Move`, `String`, `i32`, …): a payload that does
    ///   not deserialize into it is an error for that client (ERROR 4217
    ///   and close 4002), like a failed validation in Colyseus;
    /// - a lenient one, which reads an absent payload (`Option<T>`, `()`):
    ///   a payload it cannot read is read as absent (`None`) and the client
    ///   stays, as a Node room that checks `message?.x` would;
    /// - any value ([`Value`], `serde_json::Value`): whatever was sent, an
    ///   absent payload as [`Value::Undefined`] (`null`).
    ///
    /// # Examples
    ///
    /// ```
    /// # use roomcast::{Room, RoomCtx};
    /// # use roomcast::msgpack::Value;
    /// #[derive(serde::Deserialize)]
    /// struct Move { x: f32, y: f32 }
    ///
    /// fn register<R: Room>(ctx: &mut RoomCtx<R>) {
    ///     // Strict: `{ x, y }` or the client is closed with 4002.
    ///     ctx.on_message("move", |_, _ctx, _client, m: Move| {
    ///         let _ = (m.x, m.y);
    ///     });
    ///     // Lenient: `send("ready")`, `send("ready", true)` or garbage.
    ///     ctx.on_message("ready", |_, _ctx, _client, ready: Option<bool>| {
    ///         let _ = ready.unwrap_or(true);
    ///     });
    ///     // Anything, as sent.
    ///     ctx.on_message("emote", |_, ctx, client, any: Value| {
    ///         ctx.broadcast("emote", &(client.session_id(), any), ());
    ///     });
    /// }
    /// ```
    pub fn on_message<T, F, O>(&mut self, ty: impl Into<MessageType>, handler: F)
    where
        T: DeserializeOwned,
        F: Fn(&mut R, &mut Self, &Client, T) -> O + Send + Sync + 'static,
        O: Reply,
    {
        let handler: Handler<R> = Arc::new(move |room, ctx, client, payload| {
            let message = match msgpack::from_value::<T>(payload) {
                Ok(message) => message,
                // A type that reads an absent payload (`Option<T>`, `()`)
                // reads an unreadable one as absent too.
                Err(e) => msgpack::from_value::<T>(&Value::Undefined).map_err(|_| e)?,
            };
            Ok(handler(room, ctx, client, message).into_outcome())
        });
        self.handlers.insert(ty.into(), handler);
    }

    /// Registers the handler of the room call `name`: what
    /// [`Server::call`](crate::Server::call) runs, from any process of the
    /// cluster, with JSON arguments (Colyseus `matchMaker.remoteRoomCall`
    /// of a room method). Its `Ok` value is the call's answer.
    ///
    /// # Examples
    ///
    /// ```
    /// # use roomcast::{Room, RoomCtx, ServerError};
    /// fn register<R: Room>(ctx: &mut RoomCtx<R>) {
    ///     ctx.on_call("announce", |_room: &mut R, ctx, text: String| {
    ///         ctx.broadcast("announcement", &text, ());
    ///         Ok::<_, ServerError>(ctx.client_count())
    ///     });
    /// }
    /// ```
    pub fn on_call<T, O, F>(&mut self, name: &str, handler: F)
    where
        T: DeserializeOwned,
        O: Serialize,
        F: Fn(&mut R, &mut Self, T) -> Result<O, ServerError> + Send + Sync + 'static,
    {
        let handler: CallHandler<R> = Arc::new(move |room, ctx, args| {
            let args = serde_json::from_value::<T>(args).map_err(|e| {
                ServerError::new(
                    crate::protocol::error_code::INVALID_PAYLOAD,
                    format!("bad call arguments: {e}"),
                )
            })?;
            let value = handler(room, ctx, args)?;
            serde_json::to_value(value).map_err(|e| ServerError::application(e.to_string()))
        });
        self.calls.insert(name.to_owned(), handler);
    }

    /// Registers the `"*"` handler: it receives every message without a
    /// handler of its own, with its type and undecoded [`Value`].
    pub fn on_any_message<F>(&mut self, handler: F)
    where
        F: Fn(&mut R, &mut Self, &Client, &MessageType, &Value) + Send + Sync + 'static,
    {
        self.any_handler = Some(Arc::new(handler));
    }

    /// Sends a message to one client (Colyseus `client.send`);
    /// [`Value::Undefined`] sends it without a payload (`client.send(type)`).
    pub fn send<T: Serialize + ?Sized>(
        &mut self,
        client: &Client,
        ty: impl Into<MessageType>,
        message: &T,
    ) {
        if let Some(frame) = message_frame(&ty.into(), message) {
            self.enqueue(client.id, frame);
        }
    }

    /// Sends raw bytes to one client (ROOM_DATA_BYTES).
    pub fn send_bytes(&mut self, client: &Client, ty: impl Into<MessageType>, bytes: &[u8]) {
        let frame = protocol::encode_room_data_bytes(&ty.into(), bytes);
        self.enqueue(client.id, frame);
    }

    /// Sends an ERROR frame to one client; it stays connected
    /// (Colyseus `client.error`).
    pub fn error(&mut self, client: &Client, code: u16, message: &str) {
        self.enqueue(client.id, protocol::encode_error(code, message));
    }

    /// Refuses a message's payload: ERROR 4217
    /// ([`INVALID_PAYLOAD`](crate::protocol::error_code::INVALID_PAYLOAD),
    /// what Colyseus sends for a message that fails its validation) with
    /// `message`; the client stays connected. A strict typed handler sends
    /// the same error for a payload it cannot read, and closes the client.
    ///
    /// # Examples
    ///
    /// ```
    /// # use roomcast::{Room, RoomCtx};
    /// # use roomcast::msgpack::Value;
    /// fn register<R: Room>(ctx: &mut RoomCtx<R>) {
    ///     ctx.on_message("aim", |_, ctx, client, m: Value| {
    ///         let Some(angle) = m["angle"].as_finite() else {
    ///             return ctx.invalid_payload(client, "aim: angle must be a finite number");
    ///         };
    ///         ctx.broadcast("aimed", &angle, ());
    ///     });
    /// }
    /// ```
    pub fn invalid_payload(&mut self, client: &Client, message: &str) {
        self.error(client, protocol::error_code::INVALID_PAYLOAD, message);
    }

    /// Closes a client's connection with `code` (Colyseus
    /// `client.leave(code)`; use 4000–4999). 4000 is a consented leave:
    /// `on_leave` follows. Any other code is a drop, as in Colyseus:
    /// `on_drop` runs (where [`allow_reconnection`](Self::allow_reconnection)
    /// may hold the seat for the client to come back with its token), then
    /// `on_leave` unless it reconnects. The SDKs reconnect by themselves
    /// after 4010 (`MAY_TRY_RECONNECT`).
    pub fn leave(&mut self, client: &Client, code: u16) {
        self.kick(client.id, code, code == protocol::close_code::CONSENTED);
    }

    /// Sends a message to every client (see [`BroadcastOptions`]; `()`
    /// for none, as when Colyseus' `broadcast(type, message)` leaves them
    /// out); [`Value::Undefined`] sends it without a payload.
    pub fn broadcast<T: Serialize + ?Sized>(
        &mut self,
        ty: impl Into<MessageType>,
        message: &T,
        options: impl Into<BroadcastOptions>,
    ) {
        if let Some(frame) = message_frame(&ty.into(), message) {
            self.broadcast_frame(frame, options.into());
        }
    }

    /// Sends raw bytes to every client (ROOM_DATA_BYTES).
    pub fn broadcast_bytes(
        &mut self,
        ty: impl Into<MessageType>,
        bytes: &[u8],
        options: BroadcastOptions,
    ) {
        let frame = protocol::encode_room_data_bytes(&ty.into(), bytes);
        self.broadcast_frame(frame, options);
    }

    pub(super) fn broadcast_frame(&mut self, frame: Bytes, options: BroadcastOptions) {
        if options.after_next_patch {
            self.after_patch.push((frame, options.except));
            return;
        }
        self.send_to_clients(&frame, &options.except);
    }

    fn send_to_clients(&mut self, frame: &Bytes, except: &[ClientId]) {
        let ids: Vec<ClientId> = self
            .slots
            .iter()
            .filter(|(id, s)| s.is_client() && !except.contains(id))
            .map(|(id, _)| *id)
            .collect();
        for id in ids {
            self.enqueue(id, frame.clone());
        }
    }

    // ----- simulation and patches ----------------------------------------

    /// Calls `callback` every `interval` with the time since the previous
    /// call (Colyseus `setSimulationInterval`; its default interval is
    /// [`DEFAULT_SIMULATION_INTERVAL`]); `None` stops it.
    pub fn set_simulation_interval(
        &mut self,
        interval: Option<Duration>,
        callback: impl FnMut(&mut R, &mut Self, Duration) + Send + 'static,
    ) {
        self.simulation = interval.map(|interval| {
            let interval = interval.max(Duration::from_millis(1));
            Simulation {
                interval,
                next: self.now + interval,
                last: self.now,
                callback: Some(Box::new(callback)),
            }
        });
    }

    /// Sets how often patches are sent (default 50 ms); `None` disables
    /// automatic patches ([`broadcast_patch`](Self::broadcast_patch) still
    /// works).
    pub fn set_patch_rate(&mut self, rate: Option<Duration>) {
        self.patch_rate = rate.map(|r| r.max(Duration::from_millis(1)));
        self.next_patch = self.patch_rate.map(|r| self.now + r);
    }

    /// The patch rate.
    #[must_use]
    pub fn patch_rate(&self) -> Option<Duration> {
        self.patch_rate
    }

    /// Sends the pending changes now, then the messages broadcast with
    /// `after_next_patch`. Returns whether a patch was sent.
    pub fn broadcast_patch(&mut self) -> bool {
        let mut want = DialectSet::EMPTY;
        for slot in self.slots.values() {
            if slot.status == Status::Joined && !slot.syncing {
                want.insert(slot.dialect);
            }
        }
        let mut sent = false;
        if let Some(state) = self.state.as_mut() {
            let bodies = state.encode_patch(want);
            let modern = bodies
                .modern
                .as_ref()
                .map(|b| protocol::encode_state(false, b));
            let legacy = bodies
                .legacy
                .as_ref()
                .map(|b| protocol::encode_state(false, b));
            for slot in self.slots.values() {
                let (Status::Joined, false, Some(conn)) = (slot.status, slot.syncing, slot.conn)
                else {
                    continue;
                };
                let (frame, body) = match slot.dialect {
                    Dialect::Modern => (&modern, &bodies.modern),
                    Dialect::Legacy => (&legacy, &bodies.legacy),
                };
                // A client with a view gets its own frame: shared bytes,
                // then its view's part.
                let own = slot
                    .view
                    .map(|v| state.view_patch(v, slot.dialect))
                    .unwrap_or_default();
                let frame = if own.is_empty() {
                    frame.clone()
                } else {
                    Some(protocol::encode_state_parts(
                        false,
                        body.as_deref().unwrap_or_default(),
                        own,
                    ))
                };
                if let Some(frame) = frame {
                    sent = true;
                    self.outbox.push_back(Transmit {
                        conn,
                        kind: TransmitKind::Frame(frame),
                    });
                }
            }
        }
        for (frame, except) in std::mem::take(&mut self.after_patch) {
            self.send_to_clients(&frame, &except);
        }
        sent
    }

    // ----- listing and seats ---------------------------------------------

    /// Hides the room from `joinOrCreate`/`join` and listings (it can still
    /// be joined by id).
    pub fn set_private(&mut self, private: bool) {
        self.private = private;
        self.listing_changed = true;
    }

    /// Whether the room is private.
    #[must_use]
    pub fn private(&self) -> bool {
        self.private
    }

    /// Hides the room from listings (`GET /matchmake/<name>`, lobbies)
    /// while matchmaking still offers it (Colyseus `listing.unlisted`).
    pub fn set_unlisted(&mut self, unlisted: bool) {
        self.unlisted = unlisted;
        self.listing_changed = true;
    }

    /// Whether the room is unlisted.
    #[must_use]
    pub fn unlisted(&self) -> bool {
        self.unlisted
    }

    /// Replaces the listing metadata (as the 0.18 reference does).
    pub fn set_metadata(&mut self, metadata: serde_json::Value) {
        self.metadata = metadata;
        self.listing_changed = true;
    }

    /// The listing metadata.
    #[must_use]
    pub fn metadata(&self) -> &serde_json::Value {
        &self.metadata
    }

    /// How long a seat reservation stays valid (default 15 s, or the
    /// `COLYSEUS_SEAT_RESERVATION_TIME` environment variable).
    pub fn set_seat_reservation_time(&mut self, time: Duration) {
        self.seat_reservation_time = time;
    }

    /// Caps the number of clients (seats reserved included); the room locks
    /// itself while full. A number, or `None` for no cap (the default;
    /// Colyseus `this.maxClients = 4`).
    ///
    /// # Examples
    ///
    /// ```
    /// # use roomcast::{Room, RoomCtx};
    /// fn setup<R: Room>(ctx: &mut RoomCtx<R>) {
    ///     ctx.set_max_clients(4);
    ///     assert_eq!(ctx.max_clients(), Some(4));
    ///     ctx.set_max_clients(None);
    ///     assert_eq!(ctx.max_clients(), None);
    /// }
    /// ```
    pub fn set_max_clients(&mut self, max: impl Into<Option<usize>>) {
        self.max_clients = max.into();
        self.update_full_lock();
    }

    /// The client cap.
    #[must_use]
    pub fn max_clients(&self) -> Option<usize> {
        self.max_clients
    }

    /// Stops matchmaking from adding clients (joinById too).
    pub fn lock(&mut self) {
        self.locked_explicit = true;
        self.listing_changed = true;
    }

    /// Undoes [`lock`](Self::lock); a full room stays locked until a seat
    /// frees.
    pub fn unlock(&mut self) {
        self.locked_explicit = false;
        self.listing_changed = true;
    }

    /// Whether the room is locked (by hand, or because it is full).
    #[must_use]
    pub fn locked(&self) -> bool {
        self.locked_explicit || self.locked_full
    }

    /// Whether the room disposes itself when its last client leaves
    /// (default true).
    pub fn set_auto_dispose(&mut self, auto_dispose: bool) {
        self.auto_dispose = auto_dispose;
        self.check_dispose();
    }

    /// Whether the room disposes itself when empty.
    #[must_use]
    pub fn auto_dispose(&self) -> bool {
        self.auto_dispose
    }

    /// Makes every client leave with `code` (default 4000) and disposes the
    /// room. With another code, `on_drop` runs for each client before
    /// `on_leave` (as for [`leave`](Self::leave)), but no reconnection is
    /// allowed.
    pub fn disconnect(&mut self, code: Option<u16>) {
        let code = code.unwrap_or(protocol::close_code::CONSENTED);
        self.lifecycle = match self.lifecycle {
            Lifecycle::Creating { .. } => Lifecycle::Creating { disconnect: true },
            Lifecycle::Open => Lifecycle::Disconnecting,
            going => going,
        };
        self.locked_explicit = true;
        let ids: Vec<ClientId> = self.slots.keys().copied().collect();
        for id in ids {
            let Some(slot) = self.slots.get(&id) else {
                continue;
            };
            match slot.status {
                Status::Reserved => self.remove_slot(id),
                Status::Reconnecting => self.fail_reconnection(id, ReconnectionError::Disposed),
                _ => self.kick(id, code, code == protocol::close_code::CONSENTED),
            }
        }
        self.check_dispose();
    }

    // ----- reconnection ---------------------------------------------------

    /// Holds a dropped client's seat for `window` (seconds, a [`Duration`],
    /// or `None`: until [`reject_reconnection`](Self::reject_reconnection));
    /// `on_reconnect` follows if the client comes back in time, `on_leave`
    /// otherwise. Call it from `on_drop` (or `on_leave` after a drop).
    ///
    /// The returned [`Reconnection`] may be dropped; hand it to
    /// [`spawn`](Self::spawn) to act on the outcome here.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # use roomcast::{Client, Room, RoomCtx};
    /// fn on_drop<R: Room>(ctx: &mut RoomCtx<R>, client: &Client) {
    ///     ctx.allow_reconnection(client, 20);
    /// }
    ///
    /// fn on_drop_with_outcome<R: Room>(ctx: &mut RoomCtx<R>, client: &Client) {
    ///     let reconnection = ctx.allow_reconnection(client, 20);
    ///     ctx.spawn(reconnection, |_room, _ctx, outcome| match outcome {
    ///         Ok(client) => println!("{} is back", client.session_id()),
    ///         Err(e) => println!("gone: {e}"),
    ///     });
    /// }
    /// ```
    pub fn allow_reconnection(
        &mut self,
        client: &Client,
        window: impl ReconnectionWindow,
    ) -> Reconnection {
        let timeout = window.window();
        let now = self.now;
        let Some(slot) = self.slots.get_mut(&client.id) else {
            return Reconnection {
                rx: None,
                error: ReconnectionError::NotDropped,
            };
        };
        let allowed = match slot.status {
            Status::Dropping => true,
            Status::Leaving => !slot.consented,
            _ => false,
        };
        if !allowed || self.lifecycle.is_disconnecting() {
            return Reconnection {
                rx: None,
                error: ReconnectionError::NotDropped,
            };
        }
        let (tx, rx) = oneshot::channel();
        slot.leave_on_failure = slot.status == Status::Dropping;
        slot.status = Status::Reconnecting;
        slot.expires = timeout.map(|t| now + t);
        slot.waiter = Some(tx);
        self.update_full_lock();
        Reconnection {
            rx: Some(rx),
            error: ReconnectionError::Disposed,
        }
    }

    /// Rejects a pending reconnection by hand; the client is gone for good
    /// (its [`Reconnection`] fails with [`ReconnectionError::Rejected`]).
    /// Returns whether `client` was awaiting a reconnection.
    ///
    /// # Examples
    ///
    /// ```
    /// # use roomcast::{Room, RoomCtx};
    /// fn register<R: Room>(ctx: &mut RoomCtx<R>) {
    ///     // A ban: a dropped player may not come back, a present one leaves.
    ///     ctx.on_message("ban", |_room: &mut R, ctx, _client, session: String| {
    ///         if let Some(client) = ctx.client(&session) {
    ///             if !ctx.reject_reconnection(&client) {
    ///                 ctx.leave(&client, 4000);
    ///             }
    ///         }
    ///     });
    /// }
    /// ```
    pub fn reject_reconnection(&mut self, client: &Client) -> bool {
        let pending = self
            .slots
            .get(&client.id)
            .is_some_and(|s| s.status == Status::Reconnecting);
        if pending {
            self.fail_reconnection(client.id, ReconnectionError::Rejected);
        }
        pending
    }

    // ----- clock, presence, tasks -----------------------------------------

    /// The room's clock.
    #[must_use]
    pub fn clock(&self) -> &Clock<R> {
        &self.clock
    }

    /// The room's clock, to set or clear timers.
    pub fn clock_mut(&mut self) -> &mut Clock<R> {
        &mut self.clock
    }

    /// The server's presence.
    #[must_use]
    pub fn presence(&self) -> &Arc<dyn Presence> {
        &self.presence
    }

    /// The listing store of the server (of the cluster, with a shared
    /// one): what `matchMaker.query` reads in Colyseus.
    #[must_use]
    pub fn store(&self) -> &Arc<dyn ListingStore> {
        &self.store
    }

    /// The server's matchmaker (Colyseus' `matchMaker` module inside a
    /// room): query listings, create rooms, reserve seats for clients,
    /// anywhere in the cluster. Its futures own what they need: hand one to
    /// [`spawn`](Self::spawn), or await it in a hook when it does not want
    /// a seat in this very room (which runs nothing else meanwhile).
    ///
    /// # Examples
    ///
    /// ```
    /// use roomcast::{NoState, Options, Room, RoomCtx, ServerError};
    /// use serde_json::json;
    ///
    /// #[derive(Default)]
    /// struct Hub;
    ///
    /// impl Room for Hub {
    ///     type State = NoState;
    ///     type UserData = ();
    ///     type Auth = ();
    ///
    ///     async fn on_create(&mut self, ctx: &mut RoomCtx<Self>, _: &Options) -> Result<(), ServerError> {
    ///         // A seat in a "battle" room, sent to the client, which calls
    ///         // `client.consumeSeatReservation(seat)`.
    ///         ctx.on_message("play", |_, ctx, client, ()| {
    ///             let (seat, client) = (ctx.matchmaker().join_or_create("battle", json!({})), client.clone());
    ///             ctx.spawn(seat, move |_, ctx, seat| match seat {
    ///                 Ok(seat) => ctx.send(&client, "seat", &seat),
    ///                 Err(e) => ctx.error(&client, e.code, &e.message),
    ///             });
    ///         });
    ///         Ok(())
    ///     }
    /// }
    /// ```
    #[cfg(feature = "server")]
    #[must_use]
    pub fn matchmaker(&self) -> crate::Matchmaker {
        self.matchmaker.clone()
    }

    /// Runs `future` alongside the room; when it completes, `then` runs
    /// with the room, like any other event. This is how a hook waits for
    /// something (a [`Reconnection`], a database) without stalling the
    /// room. Futures still pending when the room is disposed are dropped.
    pub fn spawn<F, T>(
        &mut self,
        future: F,
        then: impl FnOnce(&mut R, &mut Self, T) + Send + 'static,
    ) where
        F: Future<Output = T> + Send + 'static,
        T: Send + 'static,
    {
        self.spawned.push(Box::pin(async move {
            let output = future.await;
            Box::new(move |room: &mut R, ctx: &mut Self| then(room, ctx, output)) as Continuation<R>
        }));
    }

    // ----- internals --------------------------------------------------------

    pub(crate) fn client_handle(&self, id: ClientId) -> Option<Client> {
        self.slots.get(&id).map(|s| Client {
            id,
            session_id: s.session_id.clone(),
        })
    }

    /// Queues a frame for a client: now if joined, after its JOIN ack if
    /// joining, nowhere otherwise.
    pub(crate) fn enqueue(&mut self, id: ClientId, frame: Bytes) {
        let Some(slot) = self.slots.get_mut(&id) else {
            return;
        };
        match (slot.status, slot.conn) {
            (Status::Joined, Some(conn)) if !slot.syncing => self.outbox.push_back(Transmit {
                conn,
                kind: TransmitKind::Frame(frame),
            }),
            (Status::Authenticating | Status::Joining | Status::AwaitingAck, _)
            | (Status::Joined, Some(_)) => {
                slot.pending.push(frame);
            }
            _ => {}
        }
    }

    pub(crate) fn transmit(&mut self, conn: ConnId, kind: TransmitKind) {
        self.outbox.push_back(Transmit { conn, kind });
    }

    /// Closes a client's connection; `on_leave` follows for a consented
    /// leave, `on_drop` then `on_leave` otherwise.
    pub(crate) fn kick(&mut self, id: ClientId, code: u16, consented: bool) {
        let Some(slot) = self.slots.get_mut(&id) else {
            return;
        };
        if let Some(conn) = slot.conn.take() {
            // 0.16 has no 4001: its shutdown code is 4000.
            let code = match (code, slot.dialect) {
                (protocol::close_code::SERVER_SHUTDOWN, Dialect::Legacy) => {
                    protocol::close_code::CONSENTED
                }
                _ => code,
            };
            self.conns.remove(&conn);
            self.outbox.push_back(Transmit {
                conn,
                kind: TransmitKind::Close(code),
            });
        }
        match slot.status {
            Status::AwaitingAck | Status::Joined => {
                slot.consented = consented;
                slot.close_code = code;
                if consented {
                    slot.status = Status::Leaving;
                    self.events.push_back(Event::Leave { client: id, code });
                } else {
                    slot.status = Status::Dropping;
                    self.events.push_back(Event::Drop { client: id, code });
                }
                self.update_full_lock();
            }
            // `on_join` never completed: nothing to leave.
            Status::Reserved | Status::Authenticating | Status::Joining => self.remove_slot(id),
            Status::Dropping | Status::Reconnecting | Status::Leaving => {}
        }
    }

    pub(crate) fn fail_reconnection(&mut self, id: ClientId, error: ReconnectionError) {
        let Some(slot) = self.slots.get_mut(&id) else {
            return;
        };
        if let Some(waiter) = slot.waiter.take() {
            let _ = waiter.send(Err(error));
        }
        if slot.leave_on_failure {
            slot.leave_on_failure = false;
            slot.status = Status::Leaving;
            self.events.push_back(Event::Leave {
                client: id,
                code: slot.close_code,
            });
            self.update_full_lock();
        } else {
            self.remove_slot(id);
        }
    }

    pub(crate) fn remove_slot(&mut self, id: ClientId) {
        if let Some(slot) = self.slots.remove(&id) {
            self.sessions.remove(&slot.session_id);
            if let Some(conn) = slot.conn {
                self.conns.remove(&conn);
            }
            if let (Some(view), Some(state)) = (slot.view, self.state.as_mut()) {
                state.drop_view(view);
            }
        }
        self.update_full_lock();
        self.check_dispose();
    }

    pub(crate) fn seats_taken(&self) -> usize {
        self.slots.values().filter(|s| s.takes_seat()).count()
    }

    pub(crate) fn update_full_lock(&mut self) {
        let full = self
            .max_clients
            .is_some_and(|max| self.seats_taken() >= max);
        if full != self.locked_full {
            self.locked_full = full;
        }
        self.listing_changed = true;
    }

    pub(crate) fn check_dispose(&mut self) {
        let goes_when_empty = match self.lifecycle {
            Lifecycle::Open => self.auto_dispose,
            Lifecycle::Disconnecting => true,
            Lifecycle::Creating { .. } | Lifecycle::Disposing | Lifecycle::Disposed => false,
        };
        if goes_when_empty && self.slots.is_empty() {
            self.lifecycle = Lifecycle::Disposing;
            self.events.push_back(Event::Dispose);
        }
    }
}

/// ROOM_DATA for `message`; a message that is `undefined` (a
/// [`Value::Undefined`]) goes without a payload, as the reference sends
/// `client.send(type)` (room-protocol.md §5.5).
pub(super) fn message_frame<T: Serialize + ?Sized>(ty: &MessageType, message: &T) -> Option<Bytes> {
    match msgpack::to_vec(message) {
        Ok(payload) if payload == [0xd4, 0x00, 0x00] => Some(protocol::encode_room_data(ty, &[])),
        Ok(payload) => Some(protocol::encode_room_data(ty, &payload)),
        Err(e) => {
            tracing::error!("message {ty} could not be serialized: {e}");
            None
        }
    }
}
