//! The tokio shell: room definitions, matchmaking, one task per room.

mod http;
mod task;
mod ws;

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use bytes::Bytes;
use serde_json::json;
use tokio::sync::{mpsc, oneshot};

pub use self::ws::WebSocketTransport;
use crate::error::ServerError;
use crate::matchmaker::{generate_id, Listings, RoomListing};
use crate::presence::{LocalPresence, Presence};
use crate::protocol::{error_code, Dialect};
use crate::room::driver::Driver;
use crate::room::{ConnId, ConnectRequest, Options, Room, RoomCore, SeatError, TransmitKind};
use crate::transport::{ChannelLink, Link, Outgoing, Session, SharedLink};

/// What a room task is asked to do.
#[derive(Debug)]
pub(crate) enum Command {
    ReserveSeat {
        options: Options,
        reply: oneshot::Sender<Result<String, SeatError>>,
    },
    Reconnect {
        token: String,
        reply: oneshot::Sender<Result<String, SeatError>>,
    },
    Connect {
        conn: ConnId,
        request: ConnectRequest,
        outgoing: SharedLink,
    },
    Frame {
        conn: ConnId,
        frame: Bytes,
    },
    Closed {
        conn: ConnId,
        code: Option<u16>,
    },
    Shutdown,
}

type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A room kind registered with [`ServerBuilder::define`], type-erased.
trait Definition: Send + Sync {
    fn create(
        &self,
        inner: Arc<Inner>,
        name: &str,
        options: Options,
    ) -> BoxFuture<'static, Result<(String, String), ServerError>>;
    fn default_options(&self) -> &Options;
}

struct TypedDefinition<R, F> {
    factory: F,
    defaults: Options,
    _room: std::marker::PhantomData<fn() -> R>,
}

impl<R: Room, F: Fn() -> R + Send + Sync> Definition for TypedDefinition<R, F> {
    /// Runs `on_create`, reserves the first seat, then starts the task.
    fn create(
        &self,
        inner: Arc<Inner>,
        name: &str,
        options: Options,
    ) -> BoxFuture<'static, Result<(String, String), ServerError>> {
        let room = (self.factory)();
        let mut core = RoomCore::<R>::new(Instant::now(), name, inner.presence.clone());
        core.set_max_frame_bytes(inner.config.max_frame_bytes);
        core.set_max_messages_per_second(inner.config.max_messages_per_second);
        Box::pin(async move {
            let mut driver = Driver::create(room, core, &options).await?;
            let session = driver
                .core
                .handle_reserve_seat(Instant::now(), options)
                .map_err(|e| ServerError::new(error_code::MATCHMAKE_UNHANDLED, e.to_string()))?;
            let room_id = driver.core.ctx().room_id().to_owned();
            if inner.room(&room_id).is_some() {
                // `on_create` chose the id of a live room.
                return Err(ServerError::new(
                    error_code::MATCHMAKE_UNHANDLED,
                    format!("room id \"{room_id}\" is already in use"),
                ));
            }
            let (tx, rx) = mpsc::channel(4096);
            let runtime = inner.room_runtime();
            inner.register(&room_id, tx, runtime.clone());
            inner.listings.update(driver.core.listing());
            let task = task::run(driver, rx, inner);
            match runtime {
                Some(runtime) => drop(runtime.spawn(task)),
                None => drop(tokio::spawn(task)),
            }
            Ok((room_id, session))
        })
    }

    fn default_options(&self) -> &Options {
        &self.defaults
    }
}

/// Server settings; [`Default`] gives the reference's defaults.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ServerConfig {
    /// `processId` in seat reservations (random by default).
    pub process_id: String,
    /// `publicAddress` in seat reservations: `host[:port][/path]` the
    /// clients should connect their WebSocket to.
    pub public_address: Option<String>,
    /// `devMode` in seat reservations.
    pub dev_mode: bool,
    /// The largest client frame a room accepts (default 64 KiB).
    pub max_frame_bytes: usize,
    /// Frames per second a client may send (default unlimited).
    pub max_messages_per_second: Option<u32>,
    /// Path prefixes and the client generation each serves. Default: the
    /// modern dialect at the root.
    pub endpoints: Vec<(String, Dialect)>,
    /// Threads that run the rooms, each a single-threaded tokio runtime
    /// that also runs the connections of its rooms: a room, its timers and
    /// its clients' sockets stay on one core, so a patch or a message
    /// never wakes another thread. Rooms are spread over them as they are
    /// created. Default: one per core. `0` runs rooms and connections on
    /// the runtime that serves the server (as tasks of their own).
    pub room_threads: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            process_id: generate_id(9),
            public_address: None,
            dev_mode: false,
            max_frame_bytes: 64 * 1024,
            max_messages_per_second: None,
            endpoints: vec![(String::new(), Dialect::Modern)],
            room_threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
        }
    }
}

/// The room threads of [`ServerConfig::room_threads`], started with the
/// first room. They stop when the server and all its rooms are gone.
struct RoomThreads {
    runtimes: Vec<tokio::runtime::Handle>,
    next: AtomicUsize,
    _stop: Vec<oneshot::Sender<()>>,
}

impl RoomThreads {
    fn start(count: usize) -> std::io::Result<Self> {
        let mut runtimes = Vec::with_capacity(count);
        let mut stop = Vec::with_capacity(count);
        for i in 0..count {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            let (tx, rx) = oneshot::channel::<()>();
            runtimes.push(runtime.handle().clone());
            stop.push(tx);
            std::thread::Builder::new()
                .name(format!("roomcast-rooms-{i}"))
                .spawn(move || {
                    let _ = runtime.block_on(rx);
                })?;
        }
        Ok(Self {
            runtimes,
            next: AtomicUsize::new(0),
            _stop: stop,
        })
    }
}

pub(crate) struct Inner {
    definitions: HashMap<String, Box<dyn Definition>>,
    /// Serializes `joinOrCreate` per room name, so concurrent requests fill
    /// one new room instead of each creating its own.
    creating: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    rooms: Mutex<HashMap<String, RoomEntry>>,
    room_threads: std::sync::OnceLock<Option<RoomThreads>>,
    pub(crate) listings: Listings,
    pub(crate) presence: Arc<dyn Presence>,
    pub(crate) config: ServerConfig,
    next_conn: AtomicU64,
    shutting_down: AtomicBool,
}

/// A live room: its command queue and the runtime its task runs on.
struct RoomEntry {
    commands: mpsc::Sender<Command>,
    runtime: Option<tokio::runtime::Handle>,
}

impl Inner {
    fn register(
        &self,
        room_id: &str,
        commands: mpsc::Sender<Command>,
        runtime: Option<tokio::runtime::Handle>,
    ) {
        self.rooms
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(room_id.to_owned(), RoomEntry { commands, runtime });
    }

    /// The room thread for a new room (`None`: the current runtime).
    fn room_runtime(&self) -> Option<tokio::runtime::Handle> {
        let threads = self.room_threads.get_or_init(|| {
            let count = self.config.room_threads;
            (count > 0)
                .then(|| RoomThreads::start(count))
                .and_then(|started| {
                    started
                        .map_err(|e| tracing::error!("room threads failed to start: {e}"))
                        .ok()
                })
        });
        let threads = threads.as_ref()?;
        let i = threads.next.fetch_add(1, Ordering::Relaxed) % threads.runtimes.len();
        Some(threads.runtimes[i].clone())
    }

    /// The runtime that runs `room_id` (`None`: unknown room, or rooms run
    /// on the serving runtime).
    pub(crate) fn runtime_of(&self, room_id: &str) -> Option<tokio::runtime::Handle> {
        self.rooms
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(room_id)
            .and_then(|entry| entry.runtime.clone())
    }

    pub(crate) fn unregister(&self, room_id: &str) {
        self.rooms
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(room_id);
        self.listings.remove(room_id);
    }

    fn room(&self, room_id: &str) -> Option<mpsc::Sender<Command>> {
        self.rooms
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(room_id)
            .map(|entry| entry.commands.clone())
    }
}

/// Builds a [`Server`].
///
/// # Examples
///
/// ```
/// use roomcast::{NoState, Options, Room, RoomCtx, Server, ServerError};
///
/// #[derive(Default)]
/// struct Lobby;
/// impl Room for Lobby {
///     type State = NoState;
///     type UserData = ();
///     type Auth = ();
///     async fn on_create(&mut self, _: &mut RoomCtx<Self>, _: &Options) -> Result<(), ServerError> {
///         Ok(())
///     }
/// }
///
/// let server = Server::builder().define("lobby", Lobby::default).build();
/// assert!(server.available_rooms("lobby").is_empty());
/// ```
#[must_use]
pub struct ServerBuilder {
    definitions: HashMap<String, Box<dyn Definition>>,
    presence: Option<Arc<dyn Presence>>,
    config: ServerConfig,
}

impl std::fmt::Debug for ServerBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerBuilder")
            .field("rooms", &self.definitions.keys().collect::<Vec<_>>())
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl ServerBuilder {
    /// Registers a room kind under `name`; `factory` makes one per room.
    pub fn define<R: Room>(
        self,
        name: &str,
        factory: impl Fn() -> R + Send + Sync + 'static,
    ) -> Self {
        self.define_with_options(name, json!({}), factory)
    }

    /// Like [`define`](Self::define), with options that override the
    /// client's join options (Colyseus `define(name, Room, defaults)`).
    ///
    /// # Panics
    ///
    /// When `name` is not `[A-Za-z0-9_-]+` (the SDKs' URL pattern).
    pub fn define_with_options<R: Room>(
        mut self,
        name: &str,
        defaults: Options,
        factory: impl Fn() -> R + Send + Sync + 'static,
    ) -> Self {
        assert!(valid_name(name), "room names use [A-Za-z0-9_-]+");
        self.definitions.insert(
            name.to_owned(),
            Box::new(TypedDefinition {
                factory,
                defaults,
                _room: std::marker::PhantomData,
            }),
        );
        self
    }

    /// Uses `presence` instead of the in-process [`LocalPresence`].
    pub fn presence(mut self, presence: Arc<dyn Presence>) -> Self {
        self.presence = Some(presence);
        self
    }

    /// Replaces the configuration.
    pub fn config(mut self, config: ServerConfig) -> Self {
        self.config = config;
        self
    }

    /// Serves `dialect` clients under the path `prefix` (e.g. `"/legacy"`,
    /// which 0.16 clients reach by setting their endpoint's pathname).
    ///
    /// # Panics
    ///
    /// When `prefix` is not empty and does not start with `/`.
    pub fn endpoint(mut self, prefix: &str, dialect: Dialect) -> Self {
        let prefix = prefix.trim_end_matches('/');
        assert!(
            prefix.is_empty() || prefix.starts_with('/'),
            "prefixes start with /"
        );
        self.config.endpoints.retain(|(p, _)| p != prefix);
        self.config.endpoints.push((prefix.to_owned(), dialect));
        self
    }

    /// The server.
    pub fn build(mut self) -> Server {
        // Longest prefix first, so `/legacy` wins over the root.
        self.config
            .endpoints
            .sort_by_key(|(p, _)| std::cmp::Reverse(p.len()));
        Server {
            inner: Arc::new(Inner {
                definitions: self.definitions,
                creating: Mutex::new(HashMap::new()),
                rooms: Mutex::new(HashMap::new()),
                room_threads: std::sync::OnceLock::new(),
                listings: Listings::default(),
                presence: self
                    .presence
                    .unwrap_or_else(|| Arc::new(LocalPresence::default())),
                config: self.config,
                next_conn: AtomicU64::new(0),
                shutting_down: AtomicBool::new(false),
            }),
        }
    }
}

pub(crate) fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// A matchmaking method of `POST /matchmake/<method>/<target>`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Method {
    /// Join an available room named `target`, or create one.
    JoinOrCreate,
    /// Create a room named `target`.
    Create,
    /// Join an available room named `target`.
    Join,
    /// Join the room whose id is `target`.
    JoinById,
    /// Resume a dropped seat in room `target`.
    Reconnect,
}

impl Method {
    /// Parses the method segment of the URL.
    #[must_use]
    pub fn parse(method: &str) -> Option<Self> {
        Some(match method {
            "joinOrCreate" => Self::JoinOrCreate,
            "create" => Self::Create,
            "join" => Self::Join,
            "joinById" => Self::JoinById,
            "reconnect" => Self::Reconnect,
            _ => return None,
        })
    }
}

/// A seat reservation: what the client needs to open its WebSocket.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct SeatReservation {
    /// The room's listing right after the reservation.
    pub room: RoomListing,
    /// The client's session id.
    pub session_id: String,
}

/// A Roomcast server: room definitions, live rooms, matchmaking.
///
/// Cheap to clone; all clones are the same server.
#[derive(Clone)]
pub struct Server {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("process_id", &self.inner.config.process_id)
            .finish_non_exhaustive()
    }
}

impl Server {
    /// A builder.
    pub fn builder() -> ServerBuilder {
        ServerBuilder {
            definitions: HashMap::new(),
            presence: None,
            config: ServerConfig::default(),
        }
    }

    /// The configuration.
    #[must_use]
    pub fn config(&self) -> &ServerConfig {
        &self.inner.config
    }

    /// The presence shared by the server's rooms.
    #[must_use]
    pub fn presence(&self) -> &Arc<dyn Presence> {
        &self.inner.presence
    }

    /// Public, unlocked rooms named `name`, the fullest first
    /// (`getAvailableRooms(roomName)`).
    #[must_use]
    pub fn available_rooms(&self, name: &str) -> Vec<RoomListing> {
        self.inner.listings.available(name)
    }

    /// Every live room.
    #[must_use]
    pub fn rooms(&self) -> Vec<RoomListing> {
        self.inner.listings.all()
    }

    /// Whether a room with this id is live.
    #[must_use]
    pub fn has_room(&self, room_id: &str) -> bool {
        self.inner.room(room_id).is_some()
    }

    /// Runs a matchmaking request (what `POST /matchmake/<method>/<target>`
    /// does).
    ///
    /// # Errors
    ///
    /// The matchmaking errors of room-protocol.md §2.3 (codes 520–526), or
    /// what `on_create` returned.
    pub async fn matchmake(
        &self,
        method: Method,
        target: &str,
        options: Options,
    ) -> Result<SeatReservation, ServerError> {
        if self.inner.shutting_down.load(Ordering::Relaxed) {
            return Err(ServerError::new(503, "server is shutting down"));
        }
        match method {
            Method::JoinOrCreate | Method::Create | Method::Join => {
                let definition = self.inner.definitions.get(target).ok_or_else(|| {
                    ServerError::new(
                        error_code::MATCHMAKE_NO_HANDLER,
                        format!("no available handler for \"{target}\""),
                    )
                })?;
                let options = merge_options(options, definition.default_options());
                let creation = (method == Method::JoinOrCreate).then(|| {
                    self.inner
                        .creating
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .entry(target.to_owned())
                        .or_default()
                        .clone()
                });
                let _creating = match &creation {
                    Some(lock) => Some(lock.lock().await),
                    None => None,
                };
                if method != Method::Create {
                    // Rooms can fill up between the lookup and the
                    // reservation: retry like the reference does.
                    for _ in 0..5 {
                        let rooms = self.inner.listings.available(target);
                        if rooms.is_empty() {
                            break;
                        }
                        for room in rooms {
                            if let Ok(reservation) =
                                self.reserve(&room.room_id, options.clone()).await
                            {
                                return Ok(reservation);
                            }
                        }
                    }
                    if method == Method::Join {
                        return Err(ServerError::new(
                            error_code::MATCHMAKE_INVALID_CRITERIA,
                            "no rooms found with provided criteria",
                        ));
                    }
                }
                self.create_room(target, options).await
            }
            Method::JoinById => {
                let options = match self.inner.listings.get(target) {
                    Some(listing) => match self.inner.definitions.get(&listing.name) {
                        Some(d) => merge_options(options, d.default_options()),
                        None => options,
                    },
                    None => options,
                };
                self.reserve(target, options).await.map_err(|e| match e {
                    SeatError::Locked => ServerError::new(
                        error_code::MATCHMAKE_INVALID_ROOM_ID,
                        format!("room \"{target}\" is locked"),
                    ),
                    _ => ServerError::new(
                        error_code::MATCHMAKE_INVALID_ROOM_ID,
                        format!("room \"{target}\" not found"),
                    ),
                })
            }
            Method::Reconnect => {
                let token = options["reconnectionToken"]
                    .as_str()
                    .map(|t| t.rsplit(':').next().unwrap_or(t).to_owned())
                    .ok_or_else(|| {
                        ServerError::new(
                            error_code::MATCHMAKE_UNHANDLED,
                            "reconnectionToken must be provided",
                        )
                    })?;
                let room = self.inner.room(target).ok_or_else(|| {
                    ServerError::new(
                        error_code::MATCHMAKE_INVALID_ROOM_ID,
                        format!("room \"{target}\" not found"),
                    )
                })?;
                let (reply, rx) = oneshot::channel();
                let _ = room.send(Command::Reconnect { token, reply }).await;
                let session_id = rx.await.map_err(|_| not_found(target))?.map_err(|_| {
                    ServerError::new(
                        error_code::MATCHMAKE_EXPIRED,
                        "reconnection token invalid or expired.",
                    )
                })?;
                let room = self
                    .inner
                    .listings
                    .get(target)
                    .ok_or_else(|| not_found(target))?;
                Ok(SeatReservation { room, session_id })
            }
        }
    }

    async fn create_room(
        &self,
        name: &str,
        options: Options,
    ) -> Result<SeatReservation, ServerError> {
        let definition = self.inner.definitions.get(name).ok_or_else(|| {
            ServerError::new(
                error_code::MATCHMAKE_NO_HANDLER,
                format!("no available handler for \"{name}\""),
            )
        })?;
        let (room_id, session_id) = definition.create(self.inner.clone(), name, options).await?;
        let room = self
            .inner
            .listings
            .get(&room_id)
            .ok_or_else(|| not_found(&room_id))?;
        Ok(SeatReservation { room, session_id })
    }

    async fn reserve(&self, room_id: &str, options: Options) -> Result<SeatReservation, SeatError> {
        let room = self.inner.room(room_id).ok_or(SeatError::Disposing)?;
        let (reply, rx) = oneshot::channel();
        room.send(Command::ReserveSeat { options, reply })
            .await
            .map_err(|_| SeatError::Disposing)?;
        let session_id = rx.await.map_err(|_| SeatError::Disposing)??;
        let room = self
            .inner
            .listings
            .get(room_id)
            .ok_or(SeatError::Disposing)?;
        Ok(SeatReservation { room, session_id })
    }

    /// Opens the room side of a client connection (the transport seam).
    ///
    /// `room_id` and `request` come from the WebSocket URL
    /// (room-protocol.md §3). For an unknown room the session yields
    /// ERROR 524 and a close, like a refused seat.
    pub async fn open_session(&self, room_id: &str, request: ConnectRequest) -> Session {
        let (tx, rx) = mpsc::channel(1024);
        let mut session = self
            .open_session_with(room_id, request, Arc::new(ChannelLink(tx)))
            .await;
        session.outgoing = Some(rx);
        session
    }

    /// The runtime a room's connections should run on (the room's thread,
    /// see [`ServerConfig::room_threads`]); `None` for the current one.
    pub(crate) fn runtime_of(&self, room_id: &str) -> Option<tokio::runtime::Handle> {
        self.inner.runtime_of(room_id)
    }

    /// Like [`open_session`](Self::open_session), but everything for the
    /// client goes to `link`, called from the room's task
    /// ([`Session::next`] yields nothing).
    pub async fn open_session_with(
        &self,
        room_id: &str,
        request: ConnectRequest,
        link: Arc<dyn Link>,
    ) -> Session {
        let conn = ConnId(self.inner.next_conn.fetch_add(1, Ordering::Relaxed));
        let (dialect, token) = (request.dialect, request.reconnection_token.is_some());
        if let Some(room) = self.inner.room(room_id) {
            if room
                .send(Command::Connect {
                    conn,
                    request,
                    outgoing: link.clone(),
                })
                .await
                .is_ok()
            {
                return Session {
                    conn,
                    room: Some(room),
                    outgoing: None,
                };
            }
        }
        refuse(&*link, dialect, token);
        Session {
            conn,
            room: None,
            outgoing: None,
        }
    }

    /// Stops matchmaking (HTTP 503) and disconnects every room with 4001
    /// (shutdown).
    pub async fn shutdown(&self) {
        self.inner.shutting_down.store(true, Ordering::Relaxed);
        let rooms: Vec<_> = self
            .inner
            .rooms
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .map(|entry| entry.commands.clone())
            .collect();
        for room in rooms {
            let _ = room.send(Command::Shutdown).await;
        }
    }

    /// Serves HTTP matchmaking and WebSockets on `addr` until the process
    /// ends.
    ///
    /// # Errors
    ///
    /// When the address cannot be bound, or the listener fails.
    pub async fn listen(self, addr: impl tokio::net::ToSocketAddrs) -> std::io::Result<()> {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        crate::transport::Transport::serve(WebSocketTransport::new(listener), self).await
    }
}

fn not_found(room_id: &str) -> ServerError {
    ServerError::new(
        error_code::MATCHMAKE_INVALID_ROOM_ID,
        format!("room \"{room_id}\" not found"),
    )
}

fn refuse(link: &dyn Link, dialect: Dialect, reconnecting: bool) {
    for transmit in crate::room::refuse_seat(dialect, reconnecting) {
        let _ = link.send(match transmit {
            TransmitKind::Frame(frame) => Outgoing::Frame(frame),
            TransmitKind::Close(code) => Outgoing::Close(code),
        });
    }
}

/// The client's options with the definition's defaults on top.
fn merge_options(client: Options, defaults: &Options) -> Options {
    let mut merged = match client {
        Options::Object(map) => map,
        _ => serde_json::Map::new(),
    };
    if let Options::Object(defaults) = defaults {
        for (k, v) in defaults {
            merged.insert(k.clone(), v.clone());
        }
    }
    Options::Object(merged)
}
