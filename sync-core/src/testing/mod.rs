//! A deterministic harness for testing rooms: a fake clock and in-memory
//! connections, no sockets, no real time.
//!
//! # Examples
//!
//! ```
//! use std::time::Duration;
//! use roomcast::testing::{Received, RoomHarness};
//! use roomcast::{NoState, Options, Room, RoomCtx, ServerError};
//!
//! #[derive(Default)]
//! struct Echo;
//!
//! impl Room for Echo {
//!     type State = NoState;
//!     type UserData = ();
//!     type Auth = ();
//!     async fn on_create(&mut self, ctx: &mut RoomCtx<Self>, _: &Options) -> Result<(), ServerError> {
//!         ctx.on_message("echo", |_room, ctx, client, n: i32| ctx.send(client, "echo", &n));
//!         Ok(())
//!     }
//! }
//!
//! let mut h = RoomHarness::new(Echo, &serde_json::json!({})).unwrap();
//! let alice = h.join(serde_json::json!({})).unwrap();
//! h.send(alice, &[0x0d, 0xa4, b'e', b'c', b'h', b'o', 0x05]);
//! assert_eq!(h.messages(alice), vec![("echo".into(), roomcast::msgpack::Value::Int(5))]);
//! h.advance(Duration::from_millis(50));
//! ```

/// A real `redis-server` child process for tests of the Redis backends.
#[cfg(feature = "server")]
pub mod redis;

use std::collections::HashMap;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::error::ServerError;
use crate::msgpack::{self, Value};
use crate::presence::{LocalPresence, Presence};
use crate::protocol::{self, MessageType};
use crate::room::{
    ConnId, ConnectRequest, Options, Room, RoomCore, RoomCtx, RoomDriver, SeatError, TransmitKind,
};

/// What a connection received, decoded just enough for assertions.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum Received {
    /// JOIN_ROOM with its reconnection token and serializer id.
    JoinRoom {
        /// The reconnection token (without `roomId:`).
        token: String,
        /// The serializer id.
        serializer: String,
    },
    /// ERROR.
    Error {
        /// The code.
        code: i64,
        /// The message.
        message: String,
    },
    /// ROOM_STATE with its body.
    State(Bytes),
    /// ROOM_STATE_PATCH with its body.
    Patch(Bytes),
    /// ROOM_DATA, payload decoded (`Undefined` when absent).
    Message(MessageType, Value),
    /// ROOM_DATA_BYTES.
    Bytes(MessageType, Vec<u8>),
    /// Any other frame, raw.
    Other(Bytes),
    /// The connection was closed with this code.
    Closed(u16),
}

/// Drives one room with a fake clock (see the module docs).
pub struct RoomHarness<R: Room> {
    driver: RoomDriver<R>,
    executor: Executor,
    now: Instant,
    next_conn: u64,
    inbox: HashMap<ConnId, Vec<Received>>,
}

impl<R: Room> std::fmt::Debug for RoomHarness<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RoomHarness").finish_non_exhaustive()
    }
}

impl<R: Room> RoomHarness<R> {
    /// Creates the room (runs `on_create`) at a fake time zero, with the
    /// in-process presence.
    ///
    /// # Errors
    ///
    /// What `on_create` returned.
    pub fn new(room: R, options: &Options) -> Result<Self, ServerError> {
        Self::with_core(room, options, |_| {})
    }

    /// Like [`new`](Self::new), configuring the core first (limits).
    ///
    /// # Errors
    ///
    /// What `on_create` returned.
    pub fn with_core(
        room: R,
        options: &Options,
        configure: impl FnOnce(&mut RoomCore<R>),
    ) -> Result<Self, ServerError> {
        let executor = Executor::new()?;
        let now = Instant::now();
        let presence: Arc<dyn Presence> = Arc::new(LocalPresence::default());
        let mut core = RoomCore::new(now, "test", presence);
        configure(&mut core);
        let driver = executor.block_on(RoomDriver::create(room, core, options))?;
        let mut harness = Self {
            driver,
            executor,
            now,
            next_conn: 0,
            inbox: HashMap::new(),
        };
        harness.pump();
        Ok(harness)
    }

    /// The fake current time.
    #[must_use]
    pub fn now(&self) -> Instant {
        self.now
    }

    /// The room.
    pub fn room(&mut self) -> &mut R {
        &mut self.driver.room
    }

    /// The room's context.
    #[must_use]
    pub fn ctx(&self) -> &RoomCtx<R> {
        &self.driver.core.ctx
    }

    /// The core.
    #[must_use]
    pub fn core(&self) -> &RoomCore<R> {
        &self.driver.core
    }

    /// Calls `f` with the room and its context as a hook would, then runs
    /// whatever it caused.
    pub fn with<T>(&mut self, f: impl FnOnce(&mut R, &mut RoomCtx<R>) -> T) -> T {
        let out = f(&mut self.driver.room, &mut self.driver.core.ctx);
        self.pump();
        out
    }

    /// Moves the fake clock forward, firing everything due on the way.
    pub fn advance(&mut self, by: Duration) {
        let target = self.now + by;
        for _ in 0..1_000_000 {
            match self.driver.core.poll_timeout() {
                Some(at) if at <= target => {
                    self.now = self.now.max(at);
                    self.driver.core.handle_timeout(self.now);
                    self.pump();
                }
                _ => break,
            }
        }
        self.now = target;
        self.driver.core.handle_timeout(target);
        self.pump();
    }

    /// Reserves a seat as the HTTP matchmaker would.
    ///
    /// # Errors
    ///
    /// See [`RoomCore::handle_reserve_seat`].
    pub fn reserve_seat(&mut self, options: Options) -> Result<String, SeatError> {
        let result = self.driver.core.handle_reserve_seat(self.now, options);
        self.pump();
        result
    }

    /// `POST /matchmake/reconnect` with a token: the session it may resume.
    ///
    /// # Errors
    ///
    /// See [`RoomCore::handle_reconnect_request`].
    pub fn reconnect_request(&mut self, token: &str) -> Result<String, SeatError> {
        let result = self.driver.core.handle_reconnect_request(self.now, token);
        self.pump();
        result
    }

    /// Opens a connection for a seat.
    pub fn connect(&mut self, request: ConnectRequest) -> ConnId {
        let conn = ConnId(self.next_conn);
        self.next_conn += 1;
        self.inbox.insert(conn, Vec::new());
        self.driver.core.handle_connect(self.now, conn, request);
        self.pump();
        conn
    }

    /// Reserves, connects and acknowledges JOIN_ROOM: a joined client.
    ///
    /// # Errors
    ///
    /// When the room refuses the seat or the join (the client's ERROR).
    pub fn join(&mut self, options: Options) -> Result<ConnId, ServerError> {
        let session = self.reserve_seat(options).map_err(|e| {
            ServerError::new(
                protocol::error_code::MATCHMAKE_INVALID_ROOM_ID,
                e.to_string(),
            )
        })?;
        let conn = self.connect(ConnectRequest::new(session));
        let received = self.inbox.get(&conn).cloned().unwrap_or_default();
        if let Some(Received::Error { code, message }) = received
            .iter()
            .find(|r| matches!(r, Received::Error { .. }))
        {
            return Err(ServerError::new(
                u16::try_from(*code).unwrap_or(0),
                message.clone(),
            ));
        }
        self.send(conn, &[10]);
        Ok(conn)
    }

    /// Delivers a frame from a connection.
    pub fn send(&mut self, conn: ConnId, frame: &[u8]) {
        self.driver.core.handle_frame(self.now, conn, frame);
        self.pump();
    }

    /// Delivers several frames as one batch, the way the room task takes
    /// the commands already queued before it sends anything.
    pub fn send_batch(&mut self, frames: &[(ConnId, &[u8])]) {
        for (conn, frame) in frames {
            self.driver.core.handle_frame(self.now, *conn, frame);
        }
        self.pump();
    }

    /// Sends `0d type payload` with a msgpack payload.
    pub fn send_message(&mut self, conn: ConnId, ty: impl Into<MessageType>, payload: &Value) {
        let mut bytes = Vec::new();
        msgpack::encode(payload, &mut bytes);
        let frame = protocol::encode_room_data(&ty.into(), &bytes);
        self.send(conn, &frame);
    }

    /// The connection closes from the client side.
    pub fn disconnect(&mut self, conn: ConnId, code: Option<u16>) {
        self.driver.core.handle_disconnect(self.now, conn, code);
        self.pump();
    }

    /// Everything a connection received since the last call.
    pub fn received(&mut self, conn: ConnId) -> Vec<Received> {
        self.inbox
            .get_mut(&conn)
            .map(std::mem::take)
            .unwrap_or_default()
    }

    /// The ROOM_DATA messages a connection received since the last call
    /// (other frames are dropped).
    pub fn messages(&mut self, conn: ConnId) -> Vec<(MessageType, Value)> {
        self.received(conn)
            .into_iter()
            .filter_map(|r| match r {
                Received::Message(ty, v) => Some((ty, v)),
                _ => None,
            })
            .collect()
    }

    /// Whether the room was disposed.
    #[must_use]
    pub fn is_disposed(&self) -> bool {
        self.driver.core.is_disposed()
    }

    fn pump(&mut self) {
        loop {
            self.executor.block_on(self.driver.run_events());
            let mut progressed = false;
            let mut cx = Context::from_waker(Waker::noop());
            while self.driver.has_spawned() {
                match self.driver.poll_spawned(&mut cx) {
                    Poll::Ready(Some(then)) => {
                        self.executor.block_on(self.driver.run_continuation(then));
                        progressed = true;
                    }
                    Poll::Ready(None) | Poll::Pending => break,
                }
            }
            while let Some(transmit) = self.driver.core.poll_transmit() {
                let inbox = self.inbox.entry(transmit.conn).or_default();
                inbox.push(match transmit.kind {
                    TransmitKind::Frame(frame) => decode_frame(frame),
                    TransmitKind::Close(code) => Received::Closed(code),
                });
            }
            let _ = self.driver.core.poll_listing();
            if !progressed {
                break;
            }
        }
    }
}

/// Runs the hooks' futures: on a tokio runtime of its own with the server
/// (whose presences and stores need one), on the calling thread without.
struct Executor {
    #[cfg(feature = "server")]
    runtime: tokio::runtime::Runtime,
}

impl Executor {
    #[cfg(feature = "server")]
    fn new() -> Result<Self, ServerError> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .map_err(|e| ServerError::application(e.to_string()))?;
        Ok(Self { runtime })
    }

    #[cfg(not(feature = "server"))]
    #[expect(
        clippy::unnecessary_wraps,
        reason = "the same signature as with the server, whose runtime may fail to start"
    )]
    fn new() -> Result<Self, ServerError> {
        Ok(Self {})
    }

    #[cfg(feature = "server")]
    fn block_on<F: std::future::Future>(&self, future: F) -> F::Output {
        self.runtime.block_on(future)
    }

    /// Polls `future` on this thread, parking it while the future waits.
    #[cfg(not(feature = "server"))]
    #[expect(clippy::unused_self, reason = "the same signature as with the server")]
    fn block_on<F: std::future::Future>(&self, future: F) -> F::Output {
        struct Unpark(std::thread::Thread);
        impl std::task::Wake for Unpark {
            fn wake(self: Arc<Self>) {
                self.0.unpark();
            }
        }
        let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
        let mut cx = Context::from_waker(&waker);
        let mut future = std::pin::pin!(future);
        loop {
            if let Poll::Ready(out) = future.as_mut().poll(&mut cx) {
                return out;
            }
            std::thread::park();
        }
    }
}

/// What a [`Session`](crate::transport::Session) of
/// [`Server::open_session`](crate::Server::open_session) receives next,
/// decoded ([`Received::Closed`] `(0)` once the room let go of it).
///
/// # Panics
///
/// When nothing comes `within` the time given (a test's deadline), or the
/// session was opened with a link of its own.
#[cfg(feature = "server")]
pub async fn next_received(session: &mut crate::transport::Session, within: Duration) -> Received {
    use crate::transport::Outgoing;
    match tokio::time::timeout(within, session.next()).await {
        Ok(Some(Outgoing::Frame(frame))) => decode_frame(frame),
        Ok(Some(Outgoing::Close(code))) => Received::Closed(code),
        Ok(None) => Received::Closed(0),
        Err(_) => panic!("no output within {within:?}"),
    }
}

/// Decodes a server frame for assertions.
#[must_use]
pub fn decode_frame(frame: Bytes) -> Received {
    let Some(&code) = frame.first() else {
        return Received::Other(frame);
    };
    let mut pos = 1;
    let decoded = match code {
        10 => (|| {
            let len = usize::from(*frame.get(1)?);
            let token = std::str::from_utf8(frame.get(2..2 + len)?).ok()?.to_owned();
            let slen = usize::from(*frame.get(2 + len)?);
            let serializer = std::str::from_utf8(frame.get(3 + len..3 + len + slen)?)
                .ok()?
                .to_owned();
            Some(Received::JoinRoom { token, serializer })
        })(),
        11 => (|| {
            let code = protocol::read_number(&frame, &mut pos)?;
            let message = protocol::read_str(&frame, &mut pos)?;
            Some(Received::Error { code, message })
        })(),
        14 => Some(Received::State(frame.slice(1..))),
        15 => Some(Received::Patch(frame.slice(1..))),
        13 | 17 => (|| {
            let ty = match frame.get(1)? {
                0xa1..=0xbf | 0xd9..=0xdb => {
                    MessageType::Name(protocol::read_str(&frame, &mut pos)?)
                }
                _ => MessageType::Number(protocol::read_number(&frame, &mut pos)?),
            };
            let rest = &frame[pos..];
            Some(if code == 17 {
                Received::Bytes(ty, rest.to_vec())
            } else if rest.is_empty() {
                Received::Message(ty, Value::Undefined)
            } else {
                Received::Message(ty, msgpack::decode(rest).ok()?)
            })
        })(),
        _ => None,
    };
    decoded.unwrap_or(Received::Other(frame))
}
