//! The room layer: the [`Room`] trait users implement, the sans-IO
//! [`RoomCore`] that runs it and the [`RoomDriver`] that calls its hooks.
//! Nothing here names a runtime: connections are [`ConnId`]s, output is
//! [`Transmit`]s, time is an input, and what a room awaits (a
//! [`Reconnection`], a [`Presence`](crate::Presence) channel) is a plain
//! future any executor polls.

mod core;
mod ctx;
pub(crate) mod driver;
#[doc(hidden)]
pub(crate) mod initial;
mod io;
mod sender;
mod task;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

#[cfg(feature = "server")]
pub(crate) use self::core::{default_seat_reservation_time, refuse_seat};
pub use self::core::{ConnectRequest, RoomCore, SeatError};
pub use self::ctx::{
    BroadcastOptions, Continuation, Reconnection, ReconnectionError, ReconnectionWindow, Reply,
    RoomCtx, DEFAULT_SIMULATION_INTERVAL,
};
pub use self::driver::RoomDriver;
pub use self::io::{ConnId, Transmit, TransmitKind};
pub use self::sender::Sender;
pub use self::task::RoomHandle;

use crate::error::ServerError;
use crate::state::SyncState;

/// Join options (JSON): as the client sent them for `on_auth` and
/// `on_join`; for `on_create`, with the room definition's options on top
/// ([`ServerBuilder::define_with_options`](crate::ServerBuilder::define_with_options)).
pub type Options = serde_json::Value;

/// One kind of room, like a Colyseus `Room` subclass.
///
/// Every hook gets the room's [`RoomCtx`], through which it reads and
/// changes the room (state, clients, broadcast, clock, …). Hooks may be
/// `async`, but the room processes nothing else while a hook runs: to wait
/// for something long (a reconnection, a database) without stalling the
/// room, hand the future to [`RoomCtx::spawn`], or run a task
/// ([`RoomCtx::spawn_task`]) that comes back to the room between its
/// waits.
///
/// Order of calls: `on_create` once; per client `on_auth` then `on_join`;
/// when it leaves, `on_leave(4000)` for a consented leave (the client's
/// `room.leave()`, or [`RoomCtx::leave`] with 4000), otherwise `on_drop`
/// with the close code (the connection dropped, the client closed it with
/// another code, or the server closed it: [`RoomCtx::leave`] with another
/// code, an invalid message) — which may call
/// [`RoomCtx::allow_reconnection`] — and then `on_leave` with the same code
/// unless the client reconnects, in which case `on_reconnect`;
/// `on_dispose` once at the end (Colyseus 0.18 `onDrop`/`onLeave(client,
/// code)`).
///
/// A panic in a hook or handler is caught: the room logs it and carries on
/// (see the crate documentation, "Panics in user code").
///
/// # Leaving out what a room does not use: `#[roomcast::room]`
///
/// Most rooms keep nothing per client ([`UserData`](Self::UserData) and
/// [`Auth`](Self::Auth) are `()`), and some have no state
/// ([`NoState`](crate::NoState)), but the trait cannot say so: a default
/// for an associated type (`type Auth = ();` in the trait) is unstable
/// Rust. Put `#[roomcast::room]` on the impl instead; it writes what the
/// impl leaves out and changes nothing it wrote (an impl without it is
/// written in full, as any Rust trait impl would be):
///
/// - the associated types: no state, `()` per client, and `Auth` is what
///   `on_auth` returns (`-> Result<String>` makes it `String`);
/// - the parameters a hook does not use, as Colyseus' `onJoin(client)`:
///   each one is known by how its type is written (`&mut RoomCtx<Self>`,
///   `&Client`, `&Options`, `&AuthRequest`, `u16` for the close code), and
///   those it names come in the trait's order; a hook with all of them is
///   left as written, whatever names its types go by;
/// - `-> Result` of an `on_create` or `on_join` that cannot fail (its body
///   ends, or returns, with `()`);
/// - [`initial_state`](Self::initial_state): the state is there from the
///   start, its data's `Default`, when it is an `Encoder<T>` of a
///   `T: Default` (Colyseus 0.18's `state = new MyState()`), so
///   `on_create` changes it through [`RoomCtx::state_mut`] instead of
///   building it for [`RoomCtx::set_state`].
///
/// It names the crate `::roomcast`.
///
/// # Examples
///
/// ```
/// use roomcast::prelude::*;
///
/// #[derive(Schema, Default)]
/// struct Scores {
///     points: MapSchema<u32>,
/// }
///
/// struct Lobby;
///
/// #[roomcast::room] // UserData = (), Auth = String (from on_auth)
/// impl Room for Lobby {
///     type State = Encoder<Scores>; // starts as Scores::default()
///
///     async fn on_create(&mut self, ctx: &mut RoomCtx<Self>) {
///         ctx.on_message("chat", |_room, ctx, client, text: String| {
///             let name = ctx.auth(client).clone();
///             ctx.broadcast("chat", &(name, text), ());
///         });
///     }
///
///     async fn on_auth(&mut self, options: &Options) -> Result<String> {
///         let name = options["name"].as_str().unwrap_or("anonymous");
///         Ok(name.to_owned())
///     }
///
///     async fn on_join(&mut self, ctx: &mut RoomCtx<Self>, client: &Client) {
///         ctx.state_mut().points_mut().insert(client.session_id(), 0);
///     }
///
///     async fn on_leave(&mut self, ctx: &mut RoomCtx<Self>, client: &Client) {
///         ctx.state_mut().points_mut().remove(client.session_id());
///     }
/// }
/// ```
///
/// The same room without the attribute names everything:
///
/// ```
/// use roomcast::schema::{Encoder, MapSchema};
/// use roomcast::{AuthRequest, Client, Options, Room, RoomCtx, Schema, ServerError};
///
/// #[derive(Schema, Default)]
/// struct Scores {
///     points: MapSchema<u32>,
/// }
///
/// struct Lobby;
///
/// impl Room for Lobby {
///     type State = Encoder<Scores>;
///     type UserData = ();
///     type Auth = String;
///
///     async fn on_create(&mut self, ctx: &mut RoomCtx<Self>, _: &Options) -> Result<(), ServerError> {
///         ctx.set_state(Encoder::new(Scores::default()));
///         ctx.on_message("chat", |_room, ctx, client, text: String| {
///             let name = ctx.auth(client).clone();
///             ctx.broadcast("chat", &(name, text), ());
///         });
///         Ok(())
///     }
///
///     async fn on_auth(
///         &mut self,
///         _: &mut RoomCtx<Self>,
///         _: &Client,
///         options: &Options,
///         _: &AuthRequest,
///     ) -> Result<String, ServerError> {
///         let name = options["name"].as_str().unwrap_or("anonymous");
///         Ok(name.to_owned())
///     }
///
///     async fn on_join(&mut self, ctx: &mut RoomCtx<Self>, client: &Client, _: &Options) -> Result<(), ServerError> {
///         ctx.state_mut().points_mut().insert(client.session_id(), 0);
///         Ok(())
///     }
///
///     async fn on_leave(&mut self, ctx: &mut RoomCtx<Self>, client: &Client, _: u16) {
///         ctx.state_mut().points_mut().remove(client.session_id());
///     }
/// }
/// ```
pub trait Room: Sized + Send + 'static {
    /// The synchronized state ([`NoState`](crate::NoState) for none).
    type State: SyncState;
    /// Server-only data kept per client (Colyseus `client.userData`).
    type UserData: Default + Send + 'static;
    /// What `on_auth` returns (Colyseus `client.auth`).
    type Auth: Default + Send + Sync + 'static;

    /// The state the room starts with, before `on_create`; `None` (the
    /// default) until [`RoomCtx::set_state`].
    ///
    /// `#[roomcast::room]` writes it when the impl leaves it out: an
    /// `Encoder<T>` state whose `T` is `Default` starts as `T::default()`
    /// (Colyseus 0.18's `state = new MyState()`), so `on_create` changes
    /// it through [`RoomCtx::state_mut`] without building it first; any
    /// other state starts as `None`.
    #[must_use]
    fn initial_state() -> Option<Self::State> {
        None
    }

    /// The room was created; register message handlers, set the state.
    ///
    /// # Errors
    ///
    /// An error aborts the creation; the client that asked gets it.
    fn on_create(
        &mut self,
        ctx: &mut RoomCtx<Self>,
        options: &Options,
    ) -> impl Future<Output = Result<(), ServerError>> + Send;

    /// Decides whether a client may join; runs when its WebSocket connects.
    /// The default lets everyone in with `Auth::default()`.
    ///
    /// # Errors
    ///
    /// An error refuses the client; it receives the error's code and
    /// message and its join promise rejects.
    fn on_auth(
        &mut self,
        ctx: &mut RoomCtx<Self>,
        client: &Client,
        options: &Options,
        request: &AuthRequest,
    ) -> impl Future<Output = Result<Self::Auth, ServerError>> + Send {
        let _ = (ctx, client, options, request);
        async { Ok(Self::Auth::default()) }
    }

    /// A client joined (its auth data is in [`RoomCtx::auth`]).
    ///
    /// # Errors
    ///
    /// An error makes the join fail for that client.
    fn on_join(
        &mut self,
        ctx: &mut RoomCtx<Self>,
        client: &Client,
        options: &Options,
    ) -> impl Future<Output = Result<(), ServerError>> + Send {
        let _ = (ctx, client, options);
        async { Ok(()) }
    }

    /// A client left for good. `code` is the close code: 4000
    /// ([`close_code::CONSENTED`](crate::protocol::close_code::CONSENTED))
    /// when it asked to leave, otherwise the code it dropped with (see
    /// [`on_drop`](Self::on_drop)).
    fn on_leave(
        &mut self,
        ctx: &mut RoomCtx<Self>,
        client: &Client,
        code: u16,
    ) -> impl Future<Output = ()> + Send {
        let _ = (ctx, client, code);
        async {}
    }

    /// A client's connection ended without a consented leave: `code` is
    /// the close code, 1006 when there was none, or the code the server
    /// closed it with ([`RoomCtx::leave`] with a code other than 4000;
    /// 4002 for an invalid message). Call [`RoomCtx::allow_reconnection`]
    /// here to hold its seat.
    fn on_drop(
        &mut self,
        ctx: &mut RoomCtx<Self>,
        client: &Client,
        code: u16,
    ) -> impl Future<Output = ()> + Send {
        let _ = (ctx, client, code);
        async {}
    }

    /// A dropped client came back through its reconnection token.
    fn on_reconnect(
        &mut self,
        ctx: &mut RoomCtx<Self>,
        client: &Client,
    ) -> impl Future<Output = ()> + Send {
        let _ = (ctx, client);
        async {}
    }

    /// The room is being disposed.
    fn on_dispose(&mut self, ctx: &mut RoomCtx<Self>) -> impl Future<Output = ()> + Send {
        let _ = ctx;
        async {}
    }
}

/// Identifies a client (a seat) within its room; stable across
/// reconnections.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClientId(pub(crate) u32);

/// A client of a room, as hooks and handlers see it.
///
/// Cheap to clone. Its per-client data lives in the room:
/// [`RoomCtx::user_data`], [`RoomCtx::auth`]; sending goes through the
/// context too ([`RoomCtx::send`], [`RoomCtx::leave`], [`RoomCtx::error`]).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Client {
    pub(crate) id: ClientId,
    pub(crate) session_id: Arc<str>,
}

impl Client {
    /// The client's session id (Colyseus `client.sessionId`).
    #[must_use]
    pub fn session_id(&self) -> &str {
        &self.session_id
    }

    /// The client's id within the room.
    #[must_use]
    pub fn id(&self) -> ClientId {
        self.id
    }
}

/// What `on_auth` knows about the connection.
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct AuthRequest {
    /// HTTP headers of the WebSocket upgrade, names lower-case.
    pub headers: Vec<(String, String)>,
    /// The peer's address, when the transport knows it.
    pub remote_addr: Option<SocketAddr>,
    /// The client's auth token (`_authToken` query parameter or
    /// `Authorization: Bearer` header).
    pub token: Option<String>,
}

impl AuthRequest {
    /// The first header named `name` (case-insensitive).
    #[must_use]
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}
