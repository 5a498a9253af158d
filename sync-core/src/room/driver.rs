//! Runs user hooks for the events a [`RoomCore`] asks for. Runtime-agnostic:
//! the tokio shell and the test harness both drive rooms through it.

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

pub(crate) struct Driver<R: Room> {
    pub(crate) room: R,
    pub(crate) core: RoomCore<R>,
    spawned: FuturesUnordered<Spawned<R>>,
    /// Joins, leaves, reconnections and patch times (the server's `/metrics`).
    pub(crate) metrics: crate::metrics::RoomMetrics,
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

impl<R: Room> Driver<R> {
    /// Runs `on_create`; the room exists only if it succeeds.
    pub(crate) async fn create(
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

    /// Runs hooks until the core has no event left.
    pub(crate) async fn run_events(&mut self) {
        while let Some(event) = self.core.poll_event() {
            self.run_event(event).await;
            self.collect_spawned();
        }
    }

    /// Whether futures passed to `spawn` are pending.
    pub(crate) fn has_spawned(&self) -> bool {
        !self.spawned.is_empty()
    }

    /// Polls the spawned futures for one that finished.
    pub(crate) fn poll_spawned(&mut self, cx: &mut Context<'_>) -> Poll<Option<Continuation<R>>> {
        Pin::new(&mut self.spawned).poll_next(cx)
    }

    /// Runs a finished spawned future's continuation, then the events it
    /// caused.
    pub(crate) async fn run_continuation(&mut self, then: Continuation<R>) {
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
                    let name = self.core.ctx.room_name();
                    self.metrics.joined(name, room_id, client.session_id());
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
                    let name = self.core.ctx.room_name();
                    self.metrics.left(name, room_id, handle.session_id(), code);
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
                    let name = self.core.ctx.room_name();
                    self.metrics.reconnected(name, room_id, handle.session_id());
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

    /// Runs the room call `name` (see `RoomCtx::on_call`).
    pub(crate) fn call(
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
