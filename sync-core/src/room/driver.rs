//! Runs user hooks for the events a [`RoomCore`] asks for. Runtime-agnostic:
//! the tokio shell, the test harness and any shell of your own drive rooms
//! through it.

use std::any::Any;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_util::stream::FuturesUnordered;
use futures_util::{FutureExt, Stream};

use super::ctx::{Continuation, Event, ReplyOutcome, Spawned};
use super::{Options, Room, RoomCore};
use crate::error::ServerError;
use crate::msgpack::{self, Value};
use crate::protocol::{self, error_code, MessageType, ResponseStatus};

/// A room and its [`RoomCore`], with the hooks run for what the core asks:
/// the half of the sans-IO core that calls your code (as quinn-proto's
/// `Connection` is driven by quinn's endpoint task).
///
/// A shell owns one per room and loops:
///
/// 1. feed the core what happened ([`core_mut`](Self::core_mut):
///    [`RoomCore::handle_reserve_seat`], [`handle_connect`](RoomCore::handle_connect),
///    [`handle_frame`](RoomCore::handle_frame),
///    [`handle_disconnect`](RoomCore::handle_disconnect),
///    [`handle_timeout`](RoomCore::handle_timeout) at
///    [`poll_timeout`](RoomCore::poll_timeout));
/// 2. [`run_events`](Self::run_events): the hooks and handlers that caused;
/// 3. when [`has_spawned`](Self::has_spawned), wait on
///    [`poll_spawned`](Self::poll_spawned) alongside its input and hand
///    what it yields to [`run_continuation`](Self::run_continuation)
///    (futures of [`RoomCtx::spawn`](crate::RoomCtx::spawn), what tasks of
///    [`RoomCtx::spawn_task`](crate::RoomCtx::spawn_task) ask of the room);
/// 4. send what [`RoomCore::poll_transmit`] yields to its connection.
///
/// Nothing here names a runtime: any executor polls its futures. A hook
/// that awaits something of a runtime (a tokio timer, a socket) needs that
/// runtime around the shell, as it would anywhere. The server's room task
/// and [`RoomHarness`](crate::testing::RoomHarness) are two such shells.
///
/// # Examples
///
/// A room run by hand, with no server and no runtime: every future of a
/// room that awaits nothing outside completes at its first poll.
///
/// ```
/// use std::future::Future;
/// use std::sync::Arc;
/// use std::task::{Context, Poll, Waker};
/// use std::time::Instant;
/// use roomcast::{ConnId, ConnectRequest, LocalPresence, Options, Room, RoomCore, RoomCtx, RoomDriver, TransmitKind};
///
/// #[derive(Default)]
/// struct Echo;
///
/// #[roomcast::room]
/// impl Room for Echo {
///     async fn on_create(&mut self, ctx: &mut RoomCtx<Self>, _: &Options) -> roomcast::Result {
///         ctx.on_message("echo", |_, ctx, client, n: i32| ctx.send(client, "echo", &n));
///         Ok(())
///     }
/// }
///
/// fn now<T>(future: impl Future<Output = T>) -> T {
///     match std::pin::pin!(future).poll(&mut Context::from_waker(Waker::noop())) {
///         Poll::Ready(out) => out,
///         Poll::Pending => unreachable!("nothing outside to wait for"),
///     }
/// }
///
/// let start = Instant::now();
/// let core = RoomCore::new(start, "echo", Arc::new(LocalPresence::default()));
/// let mut driver = now(RoomDriver::create(Echo, core, &Options::Null))?;
/// let session = driver.core_mut().handle_reserve_seat(start, Options::Null).unwrap();
/// driver.core_mut().handle_connect(start, ConnId(1), ConnectRequest::new(session));
/// now(driver.run_events());
/// driver.core_mut().handle_frame(start, ConnId(1), &[10]); // JOIN_ROOM acknowledged
/// driver.core_mut().handle_frame(start, ConnId(1), &[0x0d, 0xa4, b'e', b'c', b'h', b'o', 0x07]);
/// now(driver.run_events());
/// let frames: Vec<_> = std::iter::from_fn(|| driver.core_mut().poll_transmit())
///     .filter_map(|t| match t.kind { TransmitKind::Frame(f) => Some(f), _ => None })
///     .collect();
/// assert_eq!(frames.last().unwrap()[..], [0x0d, 0xa4, b'e', b'c', b'h', b'o', 0x07]);
/// # Ok::<(), roomcast::ServerError>(())
/// ```
pub struct RoomDriver<R: Room> {
    pub(crate) room: R,
    pub(crate) core: RoomCore<R>,
    spawned: FuturesUnordered<Spawned<R>>,
    /// Joins, leaves, reconnections and patch times (the server's `/metrics`).
    pub(crate) metrics: crate::metrics::RoomMetrics,
}

/// The server's name for it (its room task predates the public driver).
#[cfg(feature = "server")]
pub(crate) type Driver<R> = RoomDriver<R>;

impl<R: Room> std::fmt::Debug for RoomDriver<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RoomDriver")
            .field("core", &self.core)
            .field("spawned", &self.spawned.len())
            .finish_non_exhaustive()
    }
}

pub(crate) fn panic_message(panic: &(dyn Any + Send)) -> &str {
    panic
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("non-string panic payload")
}

/// Runs a hook, turning a panic into `None` (logged).
async fn guarded<T>(room_id: &str, hook: &str, future: impl Future<Output = T>) -> Option<T> {
    match AssertUnwindSafe(future).catch_unwind().await {
        Ok(value) => Some(value),
        Err(panic) => {
            crate::metrics::panic_caught();
            tracing::error!(
                room = room_id,
                "{hook} panicked: {}",
                panic_message(&*panic)
            );
            None
        }
    }
}

fn guarded_sync<T>(room_id: &str, what: &str, f: impl FnOnce() -> T) -> Option<T> {
    match std::panic::catch_unwind(AssertUnwindSafe(f)) {
        Ok(value) => Some(value),
        Err(panic) => {
            crate::metrics::panic_caught();
            tracing::error!(
                room = room_id,
                "{what} panicked: {}",
                panic_message(&*panic)
            );
            None
        }
    }
}

impl<R: Room> RoomDriver<R> {
    /// Runs `on_create` on `room` with `core` (configured beforehand:
    /// [`RoomCore::set_store`], limits), then the events it caused; the
    /// room exists only if it succeeds.
    ///
    /// # Errors
    ///
    /// What `on_create` returned, or an application error if it panicked.
    pub async fn create(
        mut room: R,
        mut core: RoomCore<R>,
        options: &Options,
    ) -> Result<Self, ServerError> {
        let room_id = core.ctx.room_id.clone();
        match guarded(
            &room_id,
            "on_create",
            room.on_create(&mut core.ctx, options),
        )
        .await
        {
            Some(Ok(())) => {}
            Some(Err(e)) => return Err(e),
            None => return Err(ServerError::application("on_create panicked")),
        }
        core.finish_create();
        let mut driver = Self {
            room,
            core,
            spawned: FuturesUnordered::new(),
            metrics: crate::metrics::RoomMetrics::default(),
        };
        driver.collect_spawned();
        driver.run_events().await;
        Ok(driver)
    }

    fn collect_spawned(&mut self) {
        for future in self.core.ctx.spawned.drain(..) {
            self.spawned.push(future);
        }
    }

    /// The room.
    #[must_use]
    pub fn room(&self) -> &R {
        &self.room
    }

    /// The room, to change it from outside its hooks.
    pub fn room_mut(&mut self) -> &mut R {
        &mut self.room
    }

    /// The core: what the shell feeds, and what it sends.
    #[must_use]
    pub fn core(&self) -> &RoomCore<R> {
        &self.core
    }

    /// The core, to feed it input and take its output.
    pub fn core_mut(&mut self) -> &mut RoomCore<R> {
        &mut self.core
    }

    /// Runs hooks and handlers until the core has no event left: after
    /// every input the shell hands the core.
    pub async fn run_events(&mut self) {
        while let Some(event) = self.core.poll_event() {
            self.run_event(event).await;
            self.collect_spawned();
        }
    }

    /// Whether futures passed to [`RoomCtx::spawn`](crate::RoomCtx::spawn)
    /// or [`spawn_task`](crate::RoomCtx::spawn_task) are pending, or a
    /// [`RoomHandle`](crate::RoomHandle) is alive (the shell then polls
    /// [`poll_spawned`](Self::poll_spawned)).
    #[must_use]
    pub fn has_spawned(&self) -> bool {
        !self.spawned.is_empty() || self.core.ctx.mailbox.has_handles()
    }

    /// Polls the spawned futures for one that finished, and the room's
    /// [`RoomHandle`](crate::RoomHandle)s for what a task asked to run with
    /// the room: either is for [`run_continuation`](Self::run_continuation).
    /// `None` when nothing is pending.
    pub fn poll_spawned(&mut self, cx: &mut Context<'_>) -> Poll<Option<Continuation<R>>> {
        // What a task asks of the room first: the task waits for it.
        if let Poll::Ready(Some(then)) = self.core.ctx.mailbox.poll_next(cx) {
            return Poll::Ready(Some(then));
        }
        match Pin::new(&mut self.spawned).poll_next(cx) {
            // A handle outside any spawned future may still ask.
            Poll::Ready(None) if self.core.ctx.mailbox.has_handles() => Poll::Pending,
            other => other,
        }
    }

    /// Runs a finished spawned future's continuation, then the events it
    /// caused.
    pub async fn run_continuation(&mut self, then: Continuation<R>) {
        let room_id = self.core.ctx.room_id.clone();
        let (room, ctx) = (&mut self.room, &mut self.core.ctx);
        guarded_sync(&room_id, "spawned continuation", || then(room, ctx));
        self.collect_spawned();
        self.run_events().await;
    }

    async fn run_event(&mut self, event: Event) {
        let room_id = self.core.ctx.room_id.clone();
        let room_id = room_id.as_str();
        match event {
            Event::Auth(id) => {
                let Some((client, options, request)) = self.core.auth_input(id) else {
                    return;
                };
                let result = guarded(
                    room_id,
                    "on_auth",
                    self.room
                        .on_auth(&mut self.core.ctx, &client, &options, &request),
                )
                .await
                .unwrap_or_else(|| Err(ServerError::application("on_auth panicked")));
                self.core.finish_auth(id, result);
            }
            Event::Join(id) => {
                let Some((client, options)) = self.core.join_input(id) else {
                    return;
                };
                let result = guarded(
                    room_id,
                    "on_join",
                    self.room.on_join(&mut self.core.ctx, &client, &options),
                )
                .await
                .unwrap_or_else(|| Err(ServerError::application("on_join panicked")));
                if result.is_ok() {
                    let (room, session_id) = (self.core.ctx.room_name(), client.session_id());
                    self.metrics.joined(session_id);
                    tracing::info!(target: "roomcast::clients", room, room_id, session_id, "client joined");
                }
                self.core.finish_join(id, result);
            }
            Event::Message {
                client,
                ty,
                payload,
                request,
            } => self.dispatch(client, &ty, &payload, request),
            Event::Simulation(delta) => {
                let ctx = &mut self.core.ctx;
                ctx.clock.set_delta(delta);
                let Some(mut callback) = ctx.simulation.as_mut().and_then(|s| s.callback.take())
                else {
                    return;
                };
                let room = &mut self.room;
                guarded_sync(room_id, "simulation callback", || {
                    callback(room, ctx, delta);
                });
                if let Some(sim) = ctx.simulation.as_mut() {
                    if sim.callback.is_none() {
                        sim.callback = Some(callback);
                    }
                }
            }
            Event::Timer(timer) => {
                let ctx = &mut self.core.ctx;
                let now = ctx.now;
                let Some(mut callback) = ctx.clock.take_due(timer, now) else {
                    return;
                };
                let room = &mut self.room;
                guarded_sync(room_id, "timer callback", || callback(room, ctx));
                ctx.clock.restore(timer, callback);
            }
            Event::Patch => {
                let started = std::time::Instant::now();
                let ctx = &mut self.core.ctx;
                guarded_sync(room_id, "patch encoding", || ctx.broadcast_patch());
                self.metrics.patch_encoded(started);
            }
            Event::Drop { client, code } => {
                if let Some(handle) = self.core.ctx.client_handle(client) {
                    guarded(
                        room_id,
                        "on_drop",
                        self.room.on_drop(&mut self.core.ctx, &handle, code),
                    )
                    .await;
                }
                self.core.finish_drop(client);
            }
            Event::Leave { client, code } => {
                if let Some(handle) = self.core.ctx.client_handle(client) {
                    let (room, session_id) = (self.core.ctx.room_name(), handle.session_id());
                    self.metrics.left(session_id);
                    tracing::info!(target: "roomcast::clients", room, room_id, session_id, code, "client left");
                    guarded(
                        room_id,
                        "on_leave",
                        self.room.on_leave(&mut self.core.ctx, &handle, code),
                    )
                    .await;
                }
                self.core.finish_leave(client);
            }
            Event::Reconnect(client) => {
                if let Some(handle) = self.core.ctx.client_handle(client) {
                    let (room, session_id) = (self.core.ctx.room_name(), handle.session_id());
                    self.metrics.reconnected();
                    tracing::info!(target: "roomcast::clients", room, room_id, session_id, "client reconnected");
                    guarded(
                        room_id,
                        "on_reconnect",
                        self.room.on_reconnect(&mut self.core.ctx, &handle),
                    )
                    .await;
                }
            }
            Event::Dispose => {
                guarded(
                    room_id,
                    "on_dispose",
                    self.room.on_dispose(&mut self.core.ctx),
                )
                .await;
                self.core.finish_dispose();
            }
        }
    }

    /// Runs the room call `name` (see [`RoomCtx::on_call`](crate::RoomCtx::on_call)).
    ///
    /// # Errors
    ///
    /// What the call returned; an error when the room has no such call or
    /// it panicked.
    pub fn call(
        &mut self,
        name: &str,
        args: serde_json::Value,
    ) -> Result<serde_json::Value, ServerError> {
        let Some(handler) = self.core.ctx.calls.get(name).cloned() else {
            return Err(ServerError::new(
                error_code::APPLICATION_ERROR,
                format!(
                    "room \"{}\" has no call \"{name}\"",
                    self.core.ctx.room_name()
                ),
            ));
        };
        let room_id = self.core.ctx.room_id.clone();
        let (room, ctx) = (&mut self.room, &mut self.core.ctx);
        guarded_sync(&room_id, "call handler", || handler(room, ctx, args)).unwrap_or_else(|| {
            Err(ServerError::application(format!(
                "call \"{name}\" panicked"
            )))
        })
    }

    fn dispatch(
        &mut self,
        id: super::ClientId,
        ty: &MessageType,
        payload: &Value,
        request: Option<u32>,
    ) {
        let Some(client) = self.core.ctx.client_handle(id) else {
            return;
        };
        let room_id = self.core.ctx.room_id.clone();
        let ctx = &mut self.core.ctx;
        let room = &mut self.room;
        let outcome = if let Some(handler) = ctx.handlers.get(ty).cloned() {
            match guarded_sync(&room_id, "message handler", || {
                handler(room, ctx, &client, payload)
            }) {
                Some(Ok(reply)) => Outcome::Handled(reply),
                Some(Err(e)) if request.is_none() => {
                    self.core.fail_client(id, &format!("message {ty}: {e}"));
                    return;
                }
                // A request's bad payload is answered, like the reference does.
                Some(Err(e)) => Outcome::Invalid(format!("message {ty}: {e}")),
                None => Outcome::Panicked(format!("handler of message {ty} panicked")),
            }
        } else if let Some(handler) = ctx.any_handler.clone().filter(|_| request.is_none()) {
            // Requests need a handler of their own (as in the reference).
            guarded_sync(&room_id, "\"*\" message handler", || {
                handler(room, ctx, &client, ty, payload);
            })
            .map_or_else(
                || Outcome::Panicked(format!("\"*\" handler panicked on message {ty}")),
                |()| Outcome::Handled(ReplyOutcome::Empty),
            )
        } else {
            tracing::warn!(room = %room_id, "no handler for message {ty}");
            Outcome::Unhandled(format!(
                "room \"{}\" has no handler for message {ty}",
                self.core.ctx.room_name()
            ))
        };
        let response = |status, body: &serde_json::Value| {
            let payload = msgpack::to_vec(body).unwrap_or_default();
            (status, payload)
        };
        let (status, payload) = match (request, outcome) {
            (None, Outcome::Panicked(message)) => {
                self.core
                    .ctx
                    .error(&client, error_code::APPLICATION_ERROR, &message);
                return;
            }
            (None, Outcome::Handled(ReplyOutcome::Error(e))) => {
                tracing::warn!(room = %room_id, "handler of message {ty} failed: {e}");
                return;
            }
            (None, Outcome::Handled(_) | Outcome::Unhandled(_) | Outcome::Invalid(_)) => return,
            (Some(_), Outcome::Handled(ReplyOutcome::Empty)) => (ResponseStatus::Ok, Vec::new()),
            (Some(_), Outcome::Handled(ReplyOutcome::Value(bytes))) => (ResponseStatus::Ok, bytes),
            (Some(_), Outcome::Handled(ReplyOutcome::Error(e))) => response(
                ResponseStatus::Error,
                &serde_json::json!({ "name": "ServerError", "message": e.message, "code": e.code }),
            ),
            (Some(_), Outcome::Invalid(message)) => response(
                ResponseStatus::Error,
                &serde_json::json!({ "name": "invalid_payload", "message": message }),
            ),
            (Some(_), Outcome::Unhandled(message)) => response(
                ResponseStatus::Error,
                &serde_json::json!({ "name": "no_handler", "message": message }),
            ),
            (Some(_), Outcome::Panicked(message)) => response(
                ResponseStatus::Error,
                &serde_json::json!({ "name": "Error", "message": message }),
            ),
        };
        if let Some(request) = request {
            let frame = protocol::encode_response(request, status, &payload);
            self.core.ctx.enqueue(id, frame);
        }
    }
}

enum Outcome {
    Handled(ReplyOutcome),
    Invalid(String),
    Unhandled(String),
    Panicked(String),
}
