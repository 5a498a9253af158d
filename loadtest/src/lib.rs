//! Load tests for Colyseus servers (the role of `@colyseus/loadtest`), on
//! [`roomcast_client`]: N clients join a room at a given rate, each runs a
//! script (a Rust closure) for the test's duration, and the run ends with a
//! [`Summary`]: joins, join and round-trip latency percentiles
//! (`hdrhistogram`), messages and bytes in and out, errors grouped by code,
//! and the server's CPU and memory when its process id is given.
//!
//! The `roomcast-loadtest` binary runs [`LoadTest`] with the
//! [`DefaultScript`] (send a message every N ms, ping every second).
//!
//! # Examples
//!
//! ```no_run
//! use std::time::Duration;
//! use roomcast_loadtest::LoadTest;
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let summary = LoadTest::new("http://127.0.0.1:2567", "world")
//!     .options(serde_json::json!({ "name": "bot" }))
//!     .clients(100)
//!     .join_rate(20.0)
//!     .duration(Duration::from_secs(30))
//!     .script(|ctx, mut room| async move {
//!         let mut tick = tokio::time::interval(Duration::from_millis(100));
//!         while ctx.is_running() {
//!             tokio::select! {
//!                 _ = tick.tick() => ctx.send(&room, "move", &(ctx.index(), 1.0))?,
//!                 event = ctx.recv(&mut room) => if event.is_none() { return Ok(()) },
//!                 () = ctx.stopped() => break,
//!             }
//!         }
//!         ctx.leave(&mut room, true).await;
//!         Ok(())
//!     })
//!     .run()
//!     .await?;
//! println!("{}", serde_json::to_string_pretty(&summary)?);
//! # Ok(())
//! # }
//! ```

mod server;
mod stats;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use roomcast_client::{
    Client, Dynamic, EndpointError, JoinError, MessageType, Room, RoomEvent, RoomState, SendError,
};
use serde::Serialize;
use tokio::task::JoinSet;
use tokio::time::Instant;

/// The client the load test runs on (its [`Room`], [`RoomEvent`], …).
pub use roomcast_client;

pub use crate::server::ServerUsage;
use crate::stats::Shared;
pub use crate::stats::{ErrorGroup, Latency};

/// What a script may fail with.
pub type ScriptError = Box<dyn std::error::Error + Send + Sync>;

type ScriptFuture = Pin<Box<dyn Future<Output = Result<(), ScriptError>> + Send>>;
type Script<S> = Arc<dyn Fn(ClientCtx, Room<S>) -> ScriptFuture + Send + Sync>;

/// How long scripts may run past the test's duration (to leave their
/// rooms) before they are stopped and counted as errors.
const GRACE: Duration = Duration::from_secs(5);

/// A load test: its settings and its per-client script. Build one with
/// [`LoadTest::new`] (dynamic state) or [`LoadTest::typed`], then
/// [`run`](Self::run) it.
pub struct LoadTest<S: RoomState = Dynamic> {
    endpoint: String,
    room: String,
    options: serde_json::Value,
    clients: usize,
    join_rate: f64,
    duration: Duration,
    join_timeout: Duration,
    pid: Option<u32>,
    progress: bool,
    script: Script<S>,
}

impl<S: RoomState> std::fmt::Debug for LoadTest<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadTest")
            .field("endpoint", &self.endpoint)
            .field("room", &self.room)
            .field("options", &self.options)
            .field("clients", &self.clients)
            .field("join_rate", &self.join_rate)
            .field("duration", &self.duration)
            .field("pid", &self.pid)
            .finish_non_exhaustive()
    }
}

impl LoadTest<Dynamic> {
    /// A load test of the room `room` at `endpoint` (`http://host:port`),
    /// the clients decoding the state dynamically (from the server's
    /// Reflection). Defaults: 10 clients, all at once, 10 s, options `{}`,
    /// the [`DefaultScript`], no progress line.
    #[must_use]
    pub fn new(endpoint: &str, room: &str) -> Self {
        Self::typed(endpoint, room)
    }
}

impl<S: RoomState> LoadTest<S> {
    /// [`LoadTest::new`] with clients of state type `S` (a
    /// `#[derive(Schema)]` type with `decode`, or [`Dynamic`]).
    ///
    /// # Examples
    ///
    /// ```
    /// use roomcast::schema::Schema;
    /// use roomcast_loadtest::LoadTest;
    ///
    /// #[derive(Schema, Default)]
    /// #[schema(crate = "roomcast::schema", decode)]
    /// struct World {
    ///     tick: u32,
    ///     name: String,
    /// }
    ///
    /// let test = LoadTest::<World>::typed("http://127.0.0.1:2567", "world").script(
    ///     |ctx, mut room| async move {
    ///         let mut last = 0;
    ///         loop {
    ///             tokio::select! {
    ///                 event = ctx.recv(&mut room) => if event.is_none() { return Ok(()) },
    ///                 () = ctx.stopped() => break,
    ///             }
    ///             last = room.state().tick;
    ///         }
    ///         ctx.leave(&mut room, true).await;
    ///         println!("client {} saw tick {last}", ctx.index());
    ///         Ok(())
    ///     },
    /// );
    /// # drop(test);
    /// ```
    #[must_use]
    pub fn typed(endpoint: &str, room: &str) -> Self {
        Self {
            endpoint: endpoint.to_owned(),
            room: room.to_owned(),
            options: serde_json::Value::Object(serde_json::Map::new()),
            clients: 10,
            join_rate: 0.0,
            duration: Duration::from_secs(10),
            join_timeout: Duration::from_secs(10),
            pid: None,
            progress: false,
            script: Self::script_of(DefaultScript::default()),
        }
    }

    fn script_of(script: DefaultScript) -> Script<S> {
        Arc::new(move |ctx, room| Box::pin(script.clone().run(ctx, room)))
    }

    /// The join options (sent as JSON).
    #[must_use]
    pub fn options(mut self, options: serde_json::Value) -> Self {
        self.options = options;
        self
    }

    /// The number of clients.
    #[must_use]
    pub fn clients(mut self, clients: usize) -> Self {
        self.clients = clients;
        self
    }

    /// Clients started per second (`0` or less: all at once). Clients not
    /// started when the duration is over are not started (see
    /// [`Joins::not_started`]).
    #[must_use]
    pub fn join_rate(mut self, per_second: f64) -> Self {
        self.join_rate = per_second;
        self
    }

    /// How long the test runs, from the first join.
    #[must_use]
    pub fn duration(mut self, duration: Duration) -> Self {
        self.duration = duration;
        self
    }

    /// The longest a join (matchmaking and handshake) may take before it
    /// counts as an error `join`/`timeout` (default 10 s).
    #[must_use]
    pub fn join_timeout(mut self, limit: Duration) -> Self {
        self.join_timeout = limit;
        self
    }

    /// Samples the CPU and memory of the server process `pid` from `/proc`
    /// (Linux) about once a second.
    #[must_use]
    pub fn server_pid(mut self, pid: Option<u32>) -> Self {
        self.pid = pid;
        self
    }

    /// Writes a progress line to stderr every second.
    #[must_use]
    pub fn progress(mut self, on: bool) -> Self {
        self.progress = on;
        self
    }

    /// The script each client runs once joined, with its [`ClientCtx`] and
    /// its room. It should end soon after [`ClientCtx::stopped`] (leaving
    /// the room); one still running 5 s after the duration is stopped
    /// and counted as an error. Use [`ClientCtx::recv`] and
    /// [`ClientCtx::send`] so that events and messages are counted.
    #[must_use]
    pub fn script<F, Fut>(mut self, script: F) -> Self
    where
        F: Fn(ClientCtx, Room<S>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), ScriptError>> + Send + 'static,
    {
        self.script = Arc::new(move |ctx, room| Box::pin(script(ctx, room)));
        self
    }

    /// The [`DefaultScript`] with these settings as the script.
    #[must_use]
    pub fn default_script(mut self, script: DefaultScript) -> Self {
        self.script = Self::script_of(script);
        self
    }

    /// Runs the test: starts the clients, waits for the duration and for
    /// the scripts to end, and sums up.
    ///
    /// # Errors
    ///
    /// The endpoint is not a valid `http://` or `ws://` address. Failures
    /// of clients are not errors of the run: they are in
    /// [`Summary::errors`].
    pub async fn run(self) -> Result<Summary, EndpointError> {
        let client = Client::new(&self.endpoint)?.with_timeout(Some(self.join_timeout));
        let shared = Arc::new(Shared::new());
        let start = Instant::now();
        let deadline = start + self.duration;
        let options = Arc::new(self.options.clone());
        let room_name: Arc<str> = Arc::from(self.room.as_str());

        let (stop_monitor, mut stop) = tokio::sync::oneshot::channel::<()>();
        let monitor = {
            let shared = Arc::clone(&shared);
            let progress = self.progress;
            let clients = self.clients;
            let mut sampler = self.pid.map(server::Sampler::new);
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(Duration::from_secs(1));
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                tick.reset();
                let mut last = None;
                loop {
                    tokio::select! {
                        _ = tick.tick() => {}
                        _ = &mut stop => break,
                    }
                    if let Some(s) = sampler.as_mut() {
                        last = s.sample();
                    }
                    if progress {
                        let line = progress_line(&shared, clients, start, last);
                        show_progress(&line, false);
                    }
                }
                sampler
            })
        };

        let mut tasks = JoinSet::new();
        let mut not_started = 0u64;
        for index in 0..self.clients {
            if self.join_rate > 0.0 {
                let at = start + Duration::from_secs_f64(index as f64 / self.join_rate);
                tokio::time::sleep_until(at).await;
            }
            if Instant::now() >= deadline {
                not_started = (self.clients - index) as u64;
                break;
            }
            let ctx = ClientCtx {
                index,
                deadline,
                shared: Arc::clone(&shared),
            };
            let client = client.clone();
            let options = Arc::clone(&options);
            let room_name = Arc::clone(&room_name);
            let script = Arc::clone(&self.script);
            tasks.spawn(run_client(ctx, client, room_name, options, script));
        }
        while let Some(result) = tasks.join_next().await {
            if let Err(e) = result {
                let code = if e.is_panic() { "panic" } else { "cancelled" };
                shared.record_error("script", code.to_owned(), &e.to_string());
            }
        }
        let _ = stop_monitor.send(());
        let server = monitor.await.ok().flatten().map(server::Sampler::finish);
        if self.progress {
            let line = progress_line(&shared, self.clients, start, None);
            show_progress(&line, true);
        }
        let elapsed = start.elapsed();
        let (join_latency, round_trip) = shared.latencies();
        Ok(Summary {
            endpoint: self.endpoint,
            room: self.room,
            clients: self.clients as u64,
            join_rate: self.join_rate,
            duration_seconds: self.duration.as_secs_f64(),
            elapsed_seconds: elapsed.as_secs_f64(),
            joins: Joins {
                attempted: Shared::get(&shared.attempted),
                succeeded: Shared::get(&shared.joined),
                failed: Shared::get(&shared.join_failed),
                not_started,
            },
            join_latency,
            round_trip,
            traffic: Traffic {
                messages_sent: Shared::get(&shared.messages_sent),
                messages_received: Shared::get(&shared.messages_received),
                bytes_sent: Shared::get(&shared.bytes_sent),
                bytes_received: Shared::get(&shared.bytes_received),
                state_changes: Shared::get(&shared.state_changes),
                bytes_measured: BYTES_MEASURED,
            },
            connections: Connections {
                drops: Shared::get(&shared.drops),
                reconnects: Shared::get(&shared.reconnects),
                leave_codes: shared.leaves(),
            },
            error_count: Shared::get(&shared.error_count),
            errors: shared.errors(),
            server,
        })
    }
}

const BYTES_MEASURED: &str = "message payloads only (MessagePack or raw bytes, as sent with \
     ClientCtx::send and received as messages); state patches, frame headers and WebSocket \
     framing are not counted (roomcast-client does not expose its socket's byte counts); with a \
     server pid, server.io_read_bytes / io_written_bytes are the server process's own I/O, \
     sockets included";

async fn run_client<S: RoomState>(
    ctx: ClientCtx,
    client: Client,
    room_name: Arc<str>,
    options: Arc<serde_json::Value>,
    script: Script<S>,
) {
    let shared = Arc::clone(&ctx.shared);
    Shared::add(&shared.attempted, 1);
    let t0 = Instant::now();
    let room = match client.join_or_create::<S>(&room_name, &*options).await {
        Ok(room) => room,
        Err(e) => {
            Shared::add(&shared.join_failed, 1);
            shared.record_error("join", join_error_code(&e), &e.to_string());
            return;
        }
    };
    shared.record_join(t0.elapsed());
    Shared::add(&shared.joined, 1);
    let _active = Active::enter(&shared);
    let deadline = ctx.deadline;
    match tokio::time::timeout_at(deadline + GRACE, script(ctx, room)).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => shared.record_error("script", "error".to_owned(), &e.to_string()),
        Err(_) => shared.record_error(
            "script",
            "timeout".to_owned(),
            "the script still ran 5 s after the test's duration",
        ),
    }
}

/// Counts a client as active while it lives (also when its script panics).
struct Active<'a>(&'a Shared);

impl<'a> Active<'a> {
    fn enter(shared: &'a Shared) -> Self {
        Shared::add(&shared.active, 1);
        Self(shared)
    }
}

impl Drop for Active<'_> {
    fn drop(&mut self) {
        self.0
            .active
            .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}

/// The code of a failed join: the protocol's error code when there is one.
fn join_error_code(e: &JoinError) -> String {
    if let Some(code) = e.code() {
        return code.code().to_string();
    }
    match e {
        JoinError::Timeout | JoinError::MatchMake(roomcast_client::RequestError::Timeout) => {
            "timeout".to_owned()
        }
        JoinError::WebSocket(_) => "websocket".to_owned(),
        JoinError::Closed { code, .. } => code.to_string(),
        JoinError::MatchMake(_) => "http".to_owned(),
        JoinError::Handshake(_) => "handshake".to_owned(),
        JoinError::StateType(_) => "state-type".to_owned(),
        _ => "other".to_owned(),
    }
}

fn progress_line(
    shared: &Shared,
    clients: usize,
    start: Instant,
    server: Option<(f64, u64)>,
) -> String {
    let mut line = format!(
        "[{:>6.1}s] joined {}/{} (failed {}, active {}) | msgs out {} in {} | state {}",
        start.elapsed().as_secs_f64(),
        Shared::get(&shared.joined),
        clients,
        Shared::get(&shared.join_failed),
        Shared::get(&shared.active),
        Shared::get(&shared.messages_sent),
        Shared::get(&shared.messages_received),
        Shared::get(&shared.state_changes),
    );
    if let Some(p50) = shared.round_trip_p50_ms() {
        let _ = write!(line, " | rtt p50 {p50:.2} ms");
    }
    let _ = write!(line, " | errors {}", Shared::get(&shared.error_count));
    if let Some((cpu, rss)) = server {
        let _ = write!(
            line,
            " | server cpu {cpu:.0}% rss {} MiB",
            rss / (1024 * 1024)
        );
    }
    line
}

/// Writes a progress line to stderr: over the previous one on a terminal,
/// one line each otherwise (a log file gets no control characters).
fn show_progress(line: &str, last: bool) {
    use std::io::IsTerminal as _;
    if std::io::stderr().is_terminal() {
        let end = if last { "\n" } else { "" };
        eprint!("\r{line}\x1b[K{end}");
    } else {
        eprintln!("{line}");
    }
}

/// A client's handle on the test, given to its script: its index, the
/// test's end, and counting helpers.
#[derive(Clone)]
pub struct ClientCtx {
    index: usize,
    deadline: Instant,
    shared: Arc<Shared>,
}

impl std::fmt::Debug for ClientCtx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientCtx")
            .field("index", &self.index)
            .finish_non_exhaustive()
    }
}

impl ClientCtx {
    /// This client's index, from 0, in start order.
    #[must_use]
    pub fn index(&self) -> usize {
        self.index
    }

    /// When the test's duration is over.
    #[must_use]
    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    /// Whether the test's duration is not over.
    #[must_use]
    pub fn is_running(&self) -> bool {
        Instant::now() < self.deadline
    }

    /// Completes when the test's duration is over.
    pub async fn stopped(&self) {
        tokio::time::sleep_until(self.deadline).await;
    }

    /// [`Room::send`], counted: a message and its MessagePack payload's
    /// bytes out.
    ///
    /// # Errors
    ///
    /// See [`Room::send`].
    pub fn send<S: RoomState, T: Serialize + ?Sized>(
        &self,
        room: &Room<S>,
        ty: impl Into<MessageType>,
        payload: &T,
    ) -> Result<(), SendError> {
        room.send(ty, payload)?;
        let bytes = rmp_serde::to_vec_named(payload).map_or(0, |v| v.len());
        Shared::add(&self.shared.messages_sent, 1);
        Shared::add(&self.shared.bytes_sent, bytes as u64);
        Ok(())
    }

    /// [`Room::send_bytes`], counted.
    ///
    /// # Errors
    ///
    /// See [`Room::send_bytes`].
    pub fn send_bytes<S: RoomState>(
        &self,
        room: &Room<S>,
        ty: impl Into<MessageType>,
        bytes: &[u8],
    ) -> Result<(), SendError> {
        room.send_bytes(ty, bytes)?;
        Shared::add(&self.shared.messages_sent, 1);
        Shared::add(&self.shared.bytes_sent, bytes.len() as u64);
        Ok(())
    }

    /// [`Room::recv`], with the event counted (see [`observe`](Self::observe)).
    pub async fn recv<S: RoomState>(&self, room: &mut Room<S>) -> Option<RoomEvent> {
        let event = room.recv().await;
        if let Some(event) = &event {
            self.observe(event);
        }
        event
    }

    /// Counts an event: messages and their bytes in, state changes,
    /// [`RoomEvent::Pong`] round trips, drops and reconnections, errors
    /// (ERROR frames, unreadable frames, leaves with a close code other
    /// than 1000 and 4000), leave codes.
    pub fn observe(&self, event: &RoomEvent) {
        let shared = &self.shared;
        match event {
            RoomEvent::StateChange { .. } => Shared::add(&shared.state_changes, 1),
            RoomEvent::Message(m) => {
                Shared::add(&shared.messages_received, 1);
                Shared::add(&shared.bytes_received, m.bytes().len() as u64);
            }
            RoomEvent::Error { code, message } => {
                shared.record_error("room", code.code().to_string(), message);
            }
            RoomEvent::Drop { .. } => Shared::add(&shared.drops, 1),
            RoomEvent::Reconnect => Shared::add(&shared.reconnects, 1),
            RoomEvent::Pong(rtt) => shared.record_round_trip(*rtt),
            RoomEvent::InvalidFrame(e) => {
                shared.record_error("frame", "invalid".to_owned(), &e.to_string());
            }
            RoomEvent::Leave { code, reason } => {
                shared.record_leave(*code);
                if !matches!(code, 1000 | 4000) {
                    shared.record_error("leave", code.to_string(), reason);
                }
            }
            _ => {}
        }
    }

    /// [`Room::leave`], with the close code counted (unless the room was
    /// over already, its [`RoomEvent::Leave`] counted by
    /// [`recv`](Self::recv)); events received while leaving are not
    /// counted: [`Room::leave`] consumes them.
    pub async fn leave<S: RoomState>(&self, room: &mut Room<S>, consented: bool) -> u16 {
        if let Some(code) = room.left() {
            return code;
        }
        let code = room.leave(consented).await;
        self.observe(&RoomEvent::Leave {
            code,
            reason: String::new(),
        });
        code
    }

    /// Records a round-trip time the script measured itself (e.g. from a
    /// message to its echo).
    pub fn record_round_trip(&self, rtt: Duration) {
        self.shared.record_round_trip(rtt);
    }

    /// Counts an error of the script's own, grouped by `code`.
    pub fn record_error(&self, code: &str, message: &str) {
        self.shared.record_error("script", code.to_owned(), message);
    }
}

/// The binary's script: sends `message_type` with `payload` every
/// `send_interval` and pings the room every `ping_interval`, both at once
/// after the join and then at those intervals (the round trips
/// of [`Summary::round_trip`]), counts every event, and leaves the room
/// (consented) when the test is over.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use roomcast_loadtest::{DefaultScript, LoadTest};
///
/// let test = LoadTest::new("http://127.0.0.1:2567", "world").default_script(DefaultScript {
///     message_type: "move".into(),
///     payload: serde_json::json!({ "x": 1, "y": 2 }),
///     send_interval: Some(Duration::from_millis(50)),
///     ping_interval: None,
/// });
/// # drop(test);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct DefaultScript {
    /// The type of the messages sent.
    pub message_type: String,
    /// Their payload.
    pub payload: serde_json::Value,
    /// How often to send one (`None`: never).
    pub send_interval: Option<Duration>,
    /// How often to ping (`None`: never).
    pub ping_interval: Option<Duration>,
}

impl Default for DefaultScript {
    /// No messages, a ping every second.
    fn default() -> Self {
        Self {
            message_type: "message".to_owned(),
            payload: serde_json::Value::Object(serde_json::Map::new()),
            send_interval: None,
            ping_interval: Some(Duration::from_secs(1)),
        }
    }
}

impl DefaultScript {
    /// Runs the script for one client.
    ///
    /// # Errors
    ///
    /// A send failed other than because the room was left.
    pub async fn run<S: RoomState>(
        self,
        ctx: ClientCtx,
        mut room: Room<S>,
    ) -> Result<(), ScriptError> {
        let far = Duration::from_secs(365 * 24 * 3600);
        let mut send = tokio::time::interval(self.send_interval.unwrap_or(far));
        let mut ping = tokio::time::interval(self.ping_interval.unwrap_or(far));
        send.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // The first tick of an interval completes at once: every client
        // sends and pings as soon as it is in the room.
        loop {
            tokio::select! {
                // Events first: those already received are counted before
                // the end (leaving consumes the rest uncounted); the end
                // last: a client that joined late still sends and pings once.
                biased;
                event = ctx.recv(&mut room) => {
                    if event.is_none() {
                        return Ok(());
                    }
                }
                _ = send.tick(), if self.send_interval.is_some() => {
                    match ctx.send(&room, self.message_type.as_str(), &self.payload) {
                        Ok(()) | Err(SendError::Closed) => {}
                        Err(e) => return Err(e.into()),
                    }
                }
                _ = ping.tick(), if self.ping_interval.is_some() => {
                    let _ = room.ping();
                }
                () = ctx.stopped() => break,
            }
        }
        ctx.leave(&mut room, true).await;
        Ok(())
    }
}

/// The outcome of a run (serializes to the JSON summary).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    /// The endpoint.
    pub endpoint: String,
    /// The room name.
    pub room: String,
    /// The clients asked for.
    pub clients: u64,
    /// Clients started per second (0: all at once).
    pub join_rate: f64,
    /// The test's duration.
    pub duration_seconds: f64,
    /// The run's wall time (the duration, plus the time scripts took to
    /// leave).
    pub elapsed_seconds: f64,
    /// Joins.
    pub joins: Joins,
    /// From the matchmaking request to the room's JOIN_ROOM.
    pub join_latency: Latency,
    /// Round trips: pings ([`RoomEvent::Pong`]) and the scripts' own
    /// ([`ClientCtx::record_round_trip`]).
    pub round_trip: Latency,
    /// Messages and bytes.
    pub traffic: Traffic,
    /// Drops, reconnections, leave codes.
    pub connections: Connections,
    /// The sum of the counts of [`errors`](Self::errors).
    pub error_count: u64,
    /// Errors grouped by phase and code.
    pub errors: Vec<ErrorGroup>,
    /// The server's CPU and memory, when its pid was given.
    pub server: Option<ServerUsage>,
}

/// Join counts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Joins {
    /// Clients that tried to join.
    pub attempted: u64,
    /// Clients in a room.
    pub succeeded: u64,
    /// Clients whose join failed (see the `join` errors).
    pub failed: u64,
    /// Clients not started: the duration was over before their turn.
    pub not_started: u64,
}

/// Messages and bytes, summed over the clients.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Traffic {
    /// Messages sent with [`ClientCtx::send`] / [`ClientCtx::send_bytes`].
    pub messages_sent: u64,
    /// Messages received (through [`ClientCtx::recv`] / [`ClientCtx::observe`]).
    pub messages_received: u64,
    /// Payload bytes sent.
    pub bytes_sent: u64,
    /// Payload bytes received.
    pub bytes_received: u64,
    /// States and patches applied.
    pub state_changes: u64,
    /// What the byte counts cover.
    pub bytes_measured: &'static str,
}

/// Connection events, summed over the clients.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Connections {
    /// Dropped connections.
    pub drops: u64,
    /// Accepted reconnections.
    pub reconnects: u64,
    /// Close codes of the rooms left, and how many.
    pub leave_codes: BTreeMap<String, u64>,
}
