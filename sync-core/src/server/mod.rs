//! The tokio shell: room definitions, matchmaking, one task per room.

mod cluster;
mod http;
mod matchmaker;
mod monitor;
mod session;
mod task;
mod ws;

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde_json::json;
use tokio::sync::{mpsc, oneshot};

pub use self::matchmaker::Matchmaker;
pub use self::monitor::{MonitorAuth, MonitorConfig};
use self::session::ChannelLink;
pub use self::session::Session;
pub(crate) use self::session::SharedLink;
pub use self::ws::WebSocketTransport;
use crate::error::ServerError;
use crate::matchmaker::{
    generate_id, now_millis, Claim, ClaimInError, CreateLock, ListingStore, LocalStore, Order,
    RoomListing, RoomQuery, SeatRequest, SortKeys, StoreError,
};
use crate::presence::{LocalPresence, Presence};
use crate::protocol::{error_code, Dialect};
use crate::room::driver::Driver;
use crate::room::{ConnId, ConnectRequest, Options, Room, RoomCore, SeatError, TransmitKind};
use crate::transport::{Link, Outgoing};

/// What a room task is asked to do.
#[derive(Debug)]
pub(crate) enum Command {
    /// Take the seat `session_id` matchmaking counted in the store.
    TakeSeat {
        session_id: String,
        reply: Option<oneshot::Sender<Result<(), SeatError>>>,
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
    /// A frame of `len` bytes the transport did not read (over its limit).
    Oversized {
        conn: ConnId,
        len: usize,
    },
    /// List the room again (its process was lost by the store).
    Relist,
    /// Disconnect every client and dispose of the room.
    Disconnect,
    /// Run the room's `on_call` handler `name`.
    Call {
        name: String,
        args: serde_json::Value,
        reply: oneshot::Sender<Result<serde_json::Value, ServerError>>,
    },
    /// What the monitor asks of the room (see [`monitor::MonitorRequest`]).
    Monitor(monitor::MonitorRequest),
    Shutdown,
}

type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Why a room could not be created.
enum CreateError {
    /// What the room (or matchmaking) answers the client.
    Server(ServerError),
    /// The creation lock expired or was released meanwhile: claim again.
    LockLost,
    /// The process asked to create the room did not answer (or is gone).
    Unreachable(ServerError),
}

impl From<ServerError> for CreateError {
    fn from(e: ServerError) -> Self {
        Self::Server(e)
    }
}

/// A room kind registered with [`ServerBuilder::define`], type-erased.
trait Definition: Send + Sync {
    /// `options` are the client's join options; `on_create` gets them
    /// with `defaults` on top.
    #[allow(
        clippy::too_many_arguments,
        reason = "one call site, each argument a different part of the creation"
    )]
    fn create(
        &self,
        inner: Arc<Inner>,
        name: &str,
        options: Options,
        defaults: &Options,
        filters: serde_json::Map<String, serde_json::Value>,
        lock: Option<CreateLock>,
        realtime: bool,
        seat: bool,
    ) -> BoxFuture<'static, Result<(RoomListing, Option<String>), CreateError>>;
}

struct TypedDefinition<R, F> {
    factory: F,
    _room: std::marker::PhantomData<fn() -> R>,
}

/// A defined room name: how to make its rooms and how matchmaking picks
/// among them.
struct Handler {
    definition: Box<dyn Definition>,
    defaults: Options,
    filter_by: Vec<String>,
    sort_by: SortKeys,
    /// Lobbies hear of its rooms' changes.
    realtime: bool,
}

impl Handler {
    /// The request's values of the `filter_by` fields (absent ones left
    /// out: they match any room).
    fn filters(&self, options: &Options) -> serde_json::Map<String, serde_json::Value> {
        self.filter_by
            .iter()
            .filter_map(|field| Some((field.clone(), options.get(field)?.clone())))
            .collect()
    }
}

impl<R: Room, F: Fn() -> R + Send + Sync> Definition for TypedDefinition<R, F> {
    /// Runs `on_create` (with the definition's options over the client's,
    /// as the reference does), reserves the first seat if `seat` (with the
    /// client's own options, for `on_auth` and `on_join`), lists the room
    /// (with the creation lock, if any), then starts the task.
    fn create(
        &self,
        inner: Arc<Inner>,
        name: &str,
        options: Options,
        defaults: &Options,
        filters: serde_json::Map<String, serde_json::Value>,
        lock: Option<CreateLock>,
        realtime: bool,
        seat: bool,
    ) -> BoxFuture<'static, Result<(RoomListing, Option<String>), CreateError>> {
        let create_options = merge_options(options.clone(), defaults);
        let room = (self.factory)();
        let mut core = RoomCore::<R>::new(Instant::now(), name, inner.presence.clone());
        core.set_store(inner.store.clone());
        core.set_max_frame_bytes(inner.config.max_frame_bytes);
        core.set_max_messages_per_second(inner.config.max_messages_per_second);
        core.set_join_ack_timeout(inner.config.join_ack_timeout);
        core.set_matchmaker(Matchmaker {
            inner: Arc::downgrade(&inner),
        });
        Box::pin(async move {
            let mut driver = Driver::create(room, core, &create_options).await?;
            driver.metrics = inner.metrics.room(driver.core.ctx().room_name());
            let session = if seat {
                Some(
                    driver
                        .core
                        .handle_reserve_seat(Instant::now(), options)
                        .map_err(|e| {
                            ServerError::new(error_code::MATCHMAKE_UNHANDLED, e.to_string())
                        })?,
                )
            } else {
                None
            };
            let room_id = driver.core.ctx().room_id().to_owned();
            let (tx, rx) = mpsc::channel(4096);
            let runtime = inner.room_runtime();
            let counts = driver.metrics.local.clone();
            if !inner.register(&room_id, tx, runtime.clone(), counts) {
                // `on_create` chose the id of a live room.
                return Err(ServerError::new(
                    error_code::MATCHMAKE_UNHANDLED,
                    format!("room id \"{room_id}\" is already in use"),
                )
                .into());
            }
            let mut listing = driver.core.listing();
            listing.process_id.clone_from(&inner.config.process_id);
            listing
                .public_address
                .clone_from(&inner.config.public_address);
            listing.locked = driver.core.ctx().locked_explicit;
            listing.created_at = now_millis();
            listing.filters = filters;
            // Commands for the room wait in its queue until it is listed
            // and its task runs.
            if let Err(e) = inner.store.register(&listing, lock.as_ref()).await {
                inner.forget(&room_id);
                return Err(match e {
                    StoreError::LockLost => CreateError::LockLost,
                    e => store_error(&e).into(),
                });
            }
            if realtime {
                crate::lobby::announce(&*inner.presence, &room_id, false).await;
            }
            // Everything the room logs carries its name and id.
            let span = tracing::info_span!("room", room = %listing.name, room_id = %room_id);
            let task = task::run(driver, rx, inner, listing.clone(), realtime);
            let task = tracing::Instrument::instrument(task, span);
            match runtime {
                Some(runtime) => drop(runtime.spawn(task)),
                None => drop(tokio::spawn(task)),
            }
            Ok((listing, session))
        })
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
    /// How long a client may take to acknowledge JOIN_ROOM (default 10 s).
    /// One that does not gets an ERROR
    /// ([`JOIN_NOT_ACKNOWLEDGED`](crate::protocol::error_code::JOIN_NOT_ACKNOWLEDGED))
    /// saying that it is likely on the endpoint of the other protocol
    /// generation (colyseus.js 0.16 on a 0.18 endpoint, or the reverse:
    /// their SDKs cannot decode each other's JOIN_ROOM), which rejects its
    /// join, then a close with 4002.
    pub join_ack_timeout: Duration,
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
    /// How long a request to another process of a cluster (create a room
    /// there, reconnect, a room call) may take (default 5 s). A creation
    /// that times out is given up for good: its lock is released, so the
    /// other process cannot list the room late, and the request tries
    /// again elsewhere.
    pub remote_timeout: Duration,
    /// How long bytes for a client may wait for its socket without any
    /// going out (default 10 s): a client that stops reading is then
    /// disconnected (`on_drop` with 1006) and its socket reset, so its
    /// buffers are freed. Clients also answer a ping every 3 s.
    pub write_timeout: Duration,
    /// Serves the server's Prometheus metrics at this path (e.g.
    /// `"/metrics"`; see [`ServerBuilder::metrics`]). Default: `None`,
    /// not served (they are counted all the same).
    pub metrics: Option<String>,
    /// The monitor (see [`ServerBuilder::monitor`]). Default: `None`,
    /// not served.
    pub monitor: Option<MonitorConfig>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            process_id: generate_id(9),
            public_address: None,
            dev_mode: false,
            max_frame_bytes: 64 * 1024,
            max_messages_per_second: None,
            join_ack_timeout: Duration::from_secs(10),
            endpoints: vec![(String::new(), Dialect::Modern)],
            room_threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
            remote_timeout: Duration::from_secs(5),
            write_timeout: Duration::from_secs(10),
            metrics: None,
            monitor: None,
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
    handlers: HashMap<String, Handler>,
    rooms: Mutex<HashMap<String, RoomEntry>>,
    room_threads: std::sync::OnceLock<Option<RoomThreads>>,
    pub(crate) store: Arc<dyn ListingStore>,
    pub(crate) presence: Arc<dyn Presence>,
    pub(crate) config: ServerConfig,
    next_conn: AtomicU64,
    shutting_down: AtomicBool,
    /// The cluster task (heartbeat, seat notices) runs.
    cluster: std::sync::OnceLock<()>,
    /// Requests to other processes waiting for replies.
    requests: cluster::Requests,
    /// This run of the process, for the store's heartbeat.
    incarnation: String,
    /// Counted always; served on [`ServerConfig::metrics`].
    pub(crate) metrics: crate::metrics::Metrics,
    /// The monitor's last samples of its rooms' counts.
    pub(crate) monitor: monitor::Samples,
}

/// A live room: its command queue and the runtime its task runs on.
struct RoomEntry {
    commands: mpsc::Sender<Command>,
    runtime: Option<tokio::runtime::Handle>,
    /// Patches and bytes sent, for the monitor's rates.
    counts: Arc<crate::metrics::RoomCounts>,
}

impl Inner {
    /// Adds a live room; `false` if the id is taken.
    fn register(
        &self,
        room_id: &str,
        commands: mpsc::Sender<Command>,
        runtime: Option<tokio::runtime::Handle>,
        counts: Arc<crate::metrics::RoomCounts>,
    ) -> bool {
        let mut rooms = self.rooms.lock().unwrap_or_else(PoisonError::into_inner);
        if rooms.contains_key(room_id) {
            return false;
        }
        let entry = RoomEntry {
            commands,
            runtime,
            counts,
        };
        rooms.insert(room_id.to_owned(), entry);
        true
    }

    /// Drops a room that never started.
    fn forget(&self, room_id: &str) {
        self.rooms
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(room_id);
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

    /// A room's task ended: it is unlisted.
    pub(crate) async fn unregister(&self, room_id: &str) {
        self.forget(room_id);
        if let Err(e) = self.store.remove(room_id).await {
            tracing::warn!(room = room_id, "could not unlist the room: {e}");
        }
    }

    /// The command queues of every live room.
    fn room_senders(&self) -> Vec<mpsc::Sender<Command>> {
        self.rooms
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .map(|entry| entry.commands.clone())
            .collect()
    }

    /// The monitor's counts of a live room of this process.
    pub(crate) fn room_counts(&self, room_id: &str) -> Option<Arc<crate::metrics::RoomCounts>> {
        self.rooms
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(room_id)
            .map(|entry| entry.counts.clone())
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
/// use roomcast::{NoState, Options, Order, Room, RoomCtx, Server, ServerError};
///
/// #[derive(Default)]
/// struct Battle;
/// impl Room for Battle {
///     type State = NoState;
///     type UserData = ();
///     type Auth = ();
///     async fn on_create(&mut self, _: &mut RoomCtx<Self>, _: &Options) -> Result<(), ServerError> {
///         Ok(())
///     }
/// }
///
/// // Colyseus: define("battle", Battle).filterBy(["mode"]).sortBy({ clients: -1 })
/// let server = Server::builder()
///     .define("battle", Battle::default)
///     .filter_by(["mode"])
///     .sort_by([("clients", Order::Desc)])
///     .build();
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// assert!(server.available_rooms("battle").await.unwrap().is_empty());
/// # });
/// ```
#[must_use]
pub struct ServerBuilder {
    handlers: HashMap<String, Handler>,
    /// The room name `filter_by`/`sort_by` apply to.
    last: Option<String>,
    presence: Option<Arc<dyn Presence>>,
    store: Option<Arc<dyn ListingStore>>,
    config: ServerConfig,
}

impl std::fmt::Debug for ServerBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerBuilder")
            .field("rooms", &self.handlers.keys().collect::<Vec<_>>())
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
    /// client's join options in `on_create` (Colyseus `define(name, Room,
    /// defaults)`); `on_auth`, `on_join` and the `filter_by` values get the
    /// client's own options, as in Colyseus.
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
        self.handlers.insert(
            name.to_owned(),
            Handler {
                definition: Box::new(TypedDefinition {
                    factory,
                    _room: std::marker::PhantomData,
                }),
                defaults,
                filter_by: Vec::new(),
                sort_by: Vec::new(),
                realtime: false,
            },
        );
        self.last = Some(name.to_owned());
        self
    }

    fn last_handler(&mut self, what: &str) -> &mut Handler {
        let name = self
            .last
            .as_ref()
            .unwrap_or_else(|| panic!("{what} follows a define"));
        self.handlers.get_mut(name).expect("defined")
    }

    /// Matchmaking offers a request only rooms created with the same
    /// values of these join options (Colyseus `filterBy`); applies to the
    /// room defined last. A field the request leaves out matches any room.
    ///
    /// # Panics
    ///
    /// When no room was defined before.
    pub fn filter_by<'a>(mut self, fields: impl IntoIterator<Item = &'a str>) -> Self {
        self.last_handler("filter_by").filter_by = fields.into_iter().map(str::to_owned).collect();
        self
    }

    /// The order in which matchmaking considers matching rooms (Colyseus
    /// `sortBy`), by listing fields (`clients`, `maxClients`,
    /// `createdAt`), filter values or metadata fields; applies to the room
    /// defined last. Without it, the oldest room comes first.
    ///
    /// # Panics
    ///
    /// When no room was defined before.
    pub fn sort_by<'a>(mut self, keys: impl IntoIterator<Item = (&'a str, Order)>) -> Self {
        self.last_handler("sort_by").sort_by = keys
            .into_iter()
            .map(|(key, order)| (key.to_owned(), order))
            .collect();
        self
    }

    /// Tells [`LobbyRoom`](crate::LobbyRoom)s of every change of the
    /// listings of the room defined last (Colyseus
    /// `enableRealtimeListing()`), on every process of a cluster.
    ///
    /// # Panics
    ///
    /// When no room was defined before.
    pub fn realtime_listing(mut self) -> Self {
        self.last_handler("realtime_listing").realtime = true;
        self
    }

    /// Keeps listings and counts seats in `store` instead of the
    /// in-process [`LocalStore`].
    pub fn store(mut self, store: Arc<dyn ListingStore>) -> Self {
        self.store = Some(store);
        self
    }

    /// Uses `presence` instead of the in-process [`LocalPresence`].
    pub fn presence(mut self, presence: Arc<dyn Presence>) -> Self {
        self.presence = Some(presence);
        self
    }

    /// Replaces the configuration (a monitor or metrics path set before
    /// stays unless `config` sets its own).
    pub fn config(mut self, mut config: ServerConfig) -> Self {
        config.metrics = config.metrics.or(self.config.metrics.take());
        config.monitor = config.monitor.or(self.config.monitor.take());
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

    /// Serves the Prometheus metrics at `path` (e.g. `"/metrics"`), in the
    /// text exposition format, without authentication: rooms and clients
    /// by room name, joins, leaves, reconnections, messages and bytes in
    /// and out, dropped slow clients, matchmaking latency and patch encode
    /// time histograms, panics caught. See `README.md`, "Observing a
    /// server".
    ///
    /// # Panics
    ///
    /// When `path` does not start with `/` or is `/` alone.
    pub fn metrics(mut self, path: &str) -> Self {
        let path = path.trim_end_matches('/');
        assert!(
            path.starts_with('/'),
            "the metrics path starts with / and is not the root"
        );
        self.config.metrics = Some(path.to_owned());
        self
    }

    /// Serves the monitor (the role of `@colyseus/monitor`): a page at
    /// [`MonitorConfig::path`] listing the rooms, showing a room's clients
    /// and state, and disconnecting clients, disposing rooms and sending
    /// messages; behind the token or HTTP basic auth of `monitor`.
    pub fn monitor(mut self, monitor: MonitorConfig) -> Self {
        self.config.monitor = Some(monitor);
        self
    }

    /// The server.
    pub fn build(mut self) -> Server {
        // Longest prefix first, so `/legacy` wins over the root.
        self.config
            .endpoints
            .sort_by_key(|(p, _)| std::cmp::Reverse(p.len()));
        let server = Server {
            inner: Arc::new(Inner {
                handlers: self.handlers,
                rooms: Mutex::new(HashMap::new()),
                room_threads: std::sync::OnceLock::new(),
                store: self
                    .store
                    .unwrap_or_else(|| Arc::new(LocalStore::default())),
                presence: self
                    .presence
                    .unwrap_or_else(|| Arc::new(LocalPresence::default())),
                config: self.config,
                next_conn: AtomicU64::new(0),
                shutting_down: AtomicBool::new(false),
                cluster: std::sync::OnceLock::new(),
                requests: cluster::Requests::default(),
                incarnation: generate_id(12),
                metrics: crate::metrics::Metrics::default(),
                monitor: monitor::Samples::default(),
            }),
        };
        // A server built on a runtime joins its cluster now.
        server.start_cluster();
        server
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
            handlers: HashMap::new(),
            last: None,
            presence: None,
            store: None,
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

    /// Starts the process's cluster task once, if its store is shared
    /// (see [`cluster::run`]); called by everything that serves.
    pub(crate) fn start_cluster(&self) {
        if self.inner.cluster.get().is_some() {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        if self.inner.cluster.set(()).is_ok() {
            runtime.spawn(cluster::run(Arc::downgrade(&self.inner)));
        }
    }

    /// The store that keeps listings and counts seats.
    #[must_use]
    pub fn store(&self) -> &Arc<dyn ListingStore> {
        &self.inner.store
    }

    /// Public, unlocked rooms named `name`, in the definition's sort order
    /// (`getAvailableRooms(roomName)`).
    ///
    /// # Errors
    ///
    /// When the listing store is unavailable.
    pub async fn available_rooms(&self, name: &str) -> Result<Vec<RoomListing>, ServerError> {
        let sort = self
            .inner
            .handlers
            .get(name)
            .map_or(&[][..], |h| &h.sort_by[..]);
        let filters = serde_json::Map::new();
        let query = RoomQuery {
            name,
            filters: &filters,
            sort,
        };
        let rooms = self
            .inner
            .store
            .query(&query)
            .await
            .map_err(|e| store_error(&e))?;
        Ok(rooms.into_iter().filter(|r| !r.locked).collect())
    }

    /// Every listed room, private ones too (in a cluster: of every
    /// process).
    ///
    /// # Errors
    ///
    /// When the listing store is unavailable.
    pub async fn rooms(&self) -> Result<Vec<RoomListing>, ServerError> {
        self.inner.store.all().await.map_err(|e| store_error(&e))
    }

    /// Whether a room with this id is live in this process.
    #[must_use]
    pub fn has_room(&self, room_id: &str) -> bool {
        self.inner.room(room_id).is_some()
    }

    /// The listing of room `room_id`, anywhere in the cluster (522 when
    /// there is none).
    async fn listing(&self, room_id: &str) -> Result<RoomListing, ServerError> {
        self.inner
            .store
            .get(room_id)
            .await
            .map_err(|e| store_error(&e))?
            .ok_or_else(|| not_found(room_id))
    }

    fn handler(&self, name: &str) -> Result<&Handler, ServerError> {
        self.inner.handlers.get(name).ok_or_else(|| {
            ServerError::new(
                error_code::MATCHMAKE_NO_HANDLER,
                format!("no available handler for \"{name}\""),
            )
        })
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
        self.start_cluster();
        if self.inner.shutting_down.load(Ordering::Relaxed) {
            return Err(ServerError::new(503, "server is shutting down"));
        }
        match method {
            Method::Create => {
                match self.create_seated(target, options, None).await {
                    Ok(reservation) => Ok(reservation),
                    Err(CreateError::Server(e) | CreateError::Unreachable(e)) => Err(e),
                    // Only a creation under a lock can lose it.
                    Err(CreateError::LockLost) => Err(ServerError::new(
                        error_code::MATCHMAKE_UNHANDLED,
                        "the room could not be listed",
                    )),
                }
            }
            Method::JoinOrCreate | Method::Join => self.join(method, target, options).await,
            Method::JoinById => self.reserve_in(target, options, false).await,
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
                let room = self
                    .inner
                    .store
                    .get(target)
                    .await
                    .map_err(|e| store_error(&e))?;
                let session_id = match &room {
                    Some(room) if room.process_id != self.inner.config.process_id => {
                        let payload = json!({ "roomId": target, "token": token });
                        let reply = self
                            .remote(&room.process_id, "reconnect", &payload, target)
                            .await?;
                        reply["ok"]
                            .as_str()
                            .ok_or_else(|| not_found(target))?
                            .to_owned()
                    }
                    _ => self.reconnect_here(target, &token).await?,
                };
                let room = room.ok_or_else(|| not_found(target))?;
                Ok(SeatReservation { room, session_id })
            }
        }
    }

    /// A seat in room `room_id` (`joinById`; `reserveSeatFor` with
    /// `past_lock`, which a room locked by hand takes too), wherever it is
    /// in the cluster.
    async fn reserve_in(
        &self,
        room_id: &str,
        options: Options,
        past_lock: bool,
    ) -> Result<SeatReservation, ServerError> {
        // 522 for a room that is not listed anywhere.
        self.listing(room_id).await?;
        for _ in 0..MAX_SEAT_ATTEMPTS {
            let (mut seat, reply) = self.seat_request(options.clone());
            seat.past_lock = past_lock;
            let claimed = self
                .inner
                .store
                .claim_in(room_id, &seat)
                .await
                .map_err(|e| store_error(&e))?
                .map_err(|e| match e {
                    ClaimInError::Locked => ServerError::new(
                        error_code::MATCHMAKE_INVALID_ROOM_ID,
                        format!("room \"{room_id}\" is locked"),
                    ),
                    ClaimInError::NotFound => not_found(room_id),
                })?;
            if let Some(reservation) = self.deliver(claimed.listing, seat, reply).await {
                return Ok(reservation);
            }
        }
        Err(not_found(room_id))
    }

    /// A reconnection to a room of this process: the session id holding
    /// `token`.
    async fn reconnect_here(&self, room_id: &str, token: &str) -> Result<String, ServerError> {
        let room = self.inner.room(room_id).ok_or_else(|| not_found(room_id))?;
        let (reply, rx) = oneshot::channel();
        let _ = room
            .send(Command::Reconnect {
                token: token.to_owned(),
                reply,
            })
            .await;
        rx.await.map_err(|_| not_found(room_id))?.map_err(|_| {
            ServerError::new(
                error_code::MATCHMAKE_EXPIRED,
                "reconnection token invalid or expired.",
            )
        })
    }

    /// Asks `process` for `kind` about room `room_id`; its error, a
    /// timeout or a gone process become the client's error.
    async fn remote(
        &self,
        process: &str,
        kind: &str,
        payload: &serde_json::Value,
        room_id: &str,
    ) -> Result<serde_json::Value, ServerError> {
        let reply = self
            .inner
            .request(process, kind, payload, self.inner.config.remote_timeout)
            .await
            .map_err(|e| match e {
                cluster::RequestError::Gone(_) => not_found(room_id),
                e => ServerError::new(error_code::MATCHMAKE_UNHANDLED, e.to_string()),
            })?;
        match cluster::reply_error(&reply) {
            Some(e) => Err(e),
            None => Ok(reply),
        }
    }

    /// Runs the `on_call` handler `name` of room `room_id`, wherever it is
    /// in the cluster, with `args`; returns what it returned (Colyseus
    /// `matchMaker.remoteRoomCall`).
    ///
    /// # Errors
    ///
    /// 522 when the room does not exist (or its process is gone), the
    /// handler's error, or 523 when the room's process does not answer
    /// within [`ServerConfig::remote_timeout`].
    pub async fn call(
        &self,
        room_id: &str,
        name: &str,
        args: serde_json::Value,
    ) -> Result<serde_json::Value, ServerError> {
        if self.inner.room(room_id).is_some() {
            return self.call_here(room_id, name, args).await;
        }
        let room = self.listing(room_id).await?;
        let payload = json!({ "roomId": room_id, "name": name, "args": args });
        let reply = self
            .remote(&room.process_id, "call", &payload, room_id)
            .await?;
        Ok(reply["ok"].clone())
    }

    async fn call_here(
        &self,
        room_id: &str,
        name: &str,
        args: serde_json::Value,
    ) -> Result<serde_json::Value, ServerError> {
        let room = self.inner.room(room_id).ok_or_else(|| not_found(room_id))?;
        let (reply, rx) = oneshot::channel();
        room.send(Command::Call {
            name: name.to_owned(),
            args,
            reply,
        })
        .await
        .map_err(|_| not_found(room_id))?;
        rx.await.map_err(|_| not_found(room_id))?
    }

    /// Disconnects room `room_id` wherever it is in the cluster (its
    /// clients are closed with 4000 and the room is disposed).
    ///
    /// # Errors
    ///
    /// As for [`call`](Self::call).
    pub async fn disconnect_room(&self, room_id: &str) -> Result<(), ServerError> {
        if self.inner.room(room_id).is_some() {
            return self.disconnect_here(room_id).await;
        }
        let room = self.listing(room_id).await?;
        let payload = json!({ "roomId": room_id });
        self.remote(&room.process_id, "disconnect", &payload, room_id)
            .await
            .map(drop)
    }

    async fn disconnect_here(&self, room_id: &str) -> Result<(), ServerError> {
        let room = self.inner.room(room_id).ok_or_else(|| not_found(room_id))?;
        room.send(Command::Disconnect)
            .await
            .map_err(|_| not_found(room_id))
    }

    /// `joinOrCreate` and `join`: a seat in the best matching room with a
    /// free one, else (`joinOrCreate`) a new room, created by one request
    /// at a time per room name and filter values.
    async fn join(
        &self,
        method: Method,
        target: &str,
        options: Options,
    ) -> Result<SeatReservation, ServerError> {
        let handler = self.handler(target)?;
        let filters = handler.filters(&options);
        let query = RoomQuery {
            name: target,
            filters: &filters,
            sort: &handler.sort_by,
        };
        let may_create = method == Method::JoinOrCreate;
        let deadline = Instant::now() + MATCHMAKE_DEADLINE;
        // Processes that failed to create a room for this request.
        let mut skip: Vec<String> = Vec::new();
        let mut attempts = 0;
        loop {
            if Instant::now() > deadline || attempts == MAX_SEAT_ATTEMPTS {
                return Err(ServerError::new(
                    error_code::MATCHMAKE_UNHANDLED,
                    format!("no seat found in \"{target}\" in time"),
                ));
            }
            let (seat, reply) = self.seat_request(options.clone());
            let claim = self
                .inner
                .store
                .claim(&query, &seat, may_create)
                .await
                .map_err(|e| store_error(&e))?;
            match claim {
                Claim::Seat(claimed) => {
                    if let Some(reservation) = self.deliver(claimed.listing, seat, reply).await {
                        return Ok(reservation);
                    }
                    // The room went away meanwhile: look again.
                    attempts += 1;
                }
                Claim::Create(lock) => {
                    let guard = LockGuard {
                        store: self.inner.store.clone(),
                        lock: Some(lock.clone()),
                    };
                    let process = self.placement(&skip).await;
                    let created = match process {
                        Some(process) => {
                            let created = self
                                .create_remote(&process, target, &options, Some(&lock), true)
                                .await
                                .map(|(room, session_id)| SeatReservation {
                                    room,
                                    session_id: session_id.unwrap_or_default(),
                                });
                            if matches!(created, Err(CreateError::Unreachable(_))) {
                                // Not answering, or gone: not asked again
                                // by this request.
                                skip.push(process);
                            }
                            created
                        }
                        None => {
                            self.create_seated(target, options.clone(), Some(lock))
                                .await
                        }
                    };
                    match created {
                        Ok(reservation) => {
                            guard.disarm();
                            return Ok(reservation);
                        }
                        Err(CreateError::LockLost) => {
                            guard.disarm();
                            attempts += 1;
                        }
                        Err(CreateError::Server(e)) => return Err(e),
                        Err(CreateError::Unreachable(e)) => {
                            // Another process failed to create: give the
                            // lock back (so a late creation there is not
                            // listed) and try again, here or elsewhere.
                            tracing::warn!("remote room creation failed: {e}");
                            drop(guard);
                            attempts += 1;
                        }
                    }
                }
                Claim::Wait => self.inner.store.changed(WAIT_POLL).await,
                Claim::NoRoom => {
                    return Err(ServerError::new(
                        error_code::MATCHMAKE_INVALID_CRITERIA,
                        "no rooms found with provided criteria",
                    ))
                }
            }
        }
    }

    /// A new seat for `options`; in a cluster, with the id of the reply
    /// the room's holder sends once it took the seat.
    fn seat_request(&self, options: Options) -> (SeatRequest, Option<cluster::Expected>) {
        let mut seat = seat_request(options);
        if self.inner.cluster.get().is_none() || !self.inner.store.is_shared() {
            return (seat, None);
        }
        let reply = self.inner.expect_reply();
        seat.reply_to = Some((self.inner.config.process_id.clone(), reply.id));
        (seat, Some(reply))
    }

    /// Hands a seat the store counted to the room that holds it (`None`:
    /// the room is going away, claim again). A room of this process takes
    /// it now; one of another process was told by the store and answers
    /// (if it does not within [`SEAT_CONFIRMATION`], the client goes on:
    /// the room takes the seat when the client arrives).
    async fn deliver(
        &self,
        room: RoomListing,
        seat: SeatRequest,
        reply: Option<cluster::Expected>,
    ) -> Option<SeatReservation> {
        if let Some(commands) = self.inner.room(&room.room_id) {
            let (reply, rx) = oneshot::channel();
            commands
                .send(Command::TakeSeat {
                    session_id: seat.session_id.clone(),
                    reply: Some(reply),
                })
                .await
                .ok()?;
            rx.await.ok()?.ok()?;
        } else if room.process_id == self.inner.config.process_id {
            // A room of this process that is gone but still listed.
            return None;
        } else if let Some(reply) = reply {
            let answer = reply.wait(SEAT_CONFIRMATION).await;
            if answer.is_some_and(|a| a["taken"] == false) {
                return None;
            }
        }
        Some(SeatReservation {
            room,
            session_id: seat.session_id,
        })
    }

    /// Where a new room goes: the live process holding the fewest rooms
    /// (Colyseus' rule), this one on a tie or when it is the least loaded;
    /// `None` for this process. Processes in `skip` are left out.
    async fn placement(&self, skip: &[String]) -> Option<String> {
        let me = &self.inner.config.process_id;
        let loads = match self.inner.store.processes().await {
            Ok(loads) => loads,
            Err(e) => {
                tracing::debug!("process loads unavailable, creating here: {e}");
                return None;
            }
        };
        let mine = loads.iter().find(|p| &p.process_id == me).map(|p| p.rooms);
        let best = loads
            .into_iter()
            .find(|p| &p.process_id != me && !skip.contains(&p.process_id))?;
        (mine.is_some_and(|mine| best.rooms < mine)).then_some(best.process_id)
    }

    /// Asks `process` to create a room (under `lock`, with its first seat
    /// if `seat`).
    async fn create_remote(
        &self,
        process: &str,
        name: &str,
        options: &Options,
        lock: Option<&CreateLock>,
        seat: bool,
    ) -> Result<(RoomListing, Option<String>), CreateError> {
        let payload = json!({ "name": name, "options": options, "lock": lock, "seat": seat });
        let reply = self
            .inner
            .request(
                process,
                "create",
                &payload,
                self.inner.config.remote_timeout,
            )
            .await
            .map_err(|e| {
                CreateError::Unreachable(ServerError::new(
                    error_code::MATCHMAKE_UNHANDLED,
                    e.to_string(),
                ))
            })?;
        if reply["lost"] == true {
            return Err(CreateError::LockLost);
        }
        if let Some(e) = cluster::reply_error(&reply) {
            return Err(CreateError::Server(e));
        }
        let ok = &reply["ok"];
        let room: RoomListing = serde_json::from_value(ok["room"].clone()).map_err(|e| {
            ServerError::new(
                error_code::MATCHMAKE_UNHANDLED,
                format!("bad create reply: {e}"),
            )
        })?;
        let session_id = ok["sessionId"].as_str().map(str::to_owned);
        Ok((room, session_id))
    }

    /// Creates a room of this process; with its first seat if `seat`.
    async fn create_room(
        &self,
        name: &str,
        options: Options,
        lock: Option<CreateLock>,
        seat: bool,
    ) -> Result<(RoomListing, Option<String>), CreateError> {
        let handler = self.handler(name)?;
        let filters = handler.filters(&options);
        handler
            .definition
            .create(
                self.inner.clone(),
                name,
                options,
                &handler.defaults,
                filters,
                lock,
                handler.realtime,
                seat,
            )
            .await
    }

    /// Creates a room with its first seat, on this process.
    async fn create_seated(
        &self,
        name: &str,
        options: Options,
        lock: Option<CreateLock>,
    ) -> Result<SeatReservation, CreateError> {
        let (room, session_id) = self.create_room(name, options, lock, true).await?;
        Ok(SeatReservation {
            room,
            session_id: session_id.unwrap_or_default(),
        })
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
        self.start_cluster();
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
        tracing::debug!(room = room_id, "connection refused: no such room here");
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
        let transport = WebSocketTransport::bind(addr).await?;
        crate::transport::Transport::serve(transport, self).await
    }
}

/// How long a request waits for the holder of a room of another process
/// to say it took a seat.
const SEAT_CONFIRMATION: Duration = Duration::from_secs(1);

/// Seats a request tries before it gives up (rooms going away between
/// the claim and the seat, creation locks lost).
const MAX_SEAT_ATTEMPTS: usize = 8;

/// How long a `joinOrCreate`/`join` may wait for other requests' rooms.
const MATCHMAKE_DEADLINE: Duration = Duration::from_secs(10);

/// A waiting request claims again at least this often.
const WAIT_POLL: Duration = Duration::from_millis(50);

/// A new seat for `options`, with the default reservation time (a room
/// applies its own from when it takes the seat).
fn seat_request(options: Options) -> SeatRequest {
    SeatRequest::new(
        generate_id(9),
        options,
        crate::room::default_seat_reservation_time(),
    )
}

/// Gives a creation lock back if the request ends without registering a
/// room (an error, or the client went away and the request was dropped).
struct LockGuard {
    store: Arc<dyn ListingStore>,
    lock: Option<CreateLock>,
}

impl LockGuard {
    fn disarm(mut self) {
        self.lock = None;
    }
}

impl Drop for LockGuard {
    fn drop(&mut self) {
        let Some(lock) = self.lock.take() else {
            return;
        };
        let store = self.store.clone();
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                if let Err(e) = store.release(&lock).await {
                    tracing::warn!("could not release a creation lock: {e}");
                }
            });
        }
    }
}

/// What a client sees when the listing store fails.
fn store_error(e: &StoreError) -> ServerError {
    ServerError::new(
        error_code::MATCHMAKE_UNHANDLED,
        format!("matchmaking unavailable: {e}"),
    )
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

/// The client's options with the definition's defaults on top: what
/// `on_create` gets (the reference's `merge({}, clientOptions,
/// handler.options)`); `on_auth`, `on_join` and the filters see the
/// client's own.
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
