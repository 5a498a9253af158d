//! A process's part in a cluster: its heartbeat, the sweep of dead
//! processes, and the messages other processes and the store send it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Duration;

use serde_json::{json, Value};
use tokio::sync::mpsc::error::TrySendError;
use tokio::sync::oneshot;

use super::{Command, CreateError, Inner, Server};
use crate::error::ServerError;
use crate::matchmaker::{CreateLock, ProcessInfo, StoreError, HEARTBEAT_PERIOD, PROCESS_TTL};
use crate::presence::Subscription;
use crate::protocol::error_code;

/// Requests this process sent to others, waiting for their replies.
#[derive(Debug, Default)]
pub(super) struct Requests {
    next: AtomicU64,
    waiting: Mutex<HashMap<u64, oneshot::Sender<Value>>>,
}

/// Why a request to another process got no answer.
#[derive(Debug, thiserror::Error)]
pub(crate) enum RequestError {
    /// Nobody listens on the process's channel: it is gone.
    #[error("process {0} is gone")]
    Gone(String),
    /// No reply in time.
    #[error("process {process} did not answer within {timeout:?}")]
    Timeout { process: String, timeout: Duration },
    /// The store could not carry the request.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Requests {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, oneshot::Sender<Value>>> {
        self.waiting.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A reply this process waits for (see [`Inner::expect_reply`]); dropping
/// it forgets the request.
pub(super) struct Expected {
    inner: Arc<Inner>,
    pub(super) id: u64,
    rx: oneshot::Receiver<Value>,
}

impl Expected {
    /// The reply, or `None` after `timeout`.
    pub(super) async fn wait(mut self, timeout: Duration) -> Option<Value> {
        tokio::time::timeout(timeout, &mut self.rx).await.ok()?.ok()
    }
}

impl Drop for Expected {
    fn drop(&mut self) {
        self.inner.requests.lock().remove(&self.id);
    }
}

impl Inner {
    /// A request id whose reply (a `rep` message) this process will wait
    /// for.
    pub(super) fn expect_reply(self: &Arc<Self>) -> Expected {
        let id = self.requests.next.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        self.requests.lock().insert(id, tx);
        Expected {
            inner: self.clone(),
            id,
            rx,
        }
    }

    /// Sends `kind` with `payload` to `process` and waits for its reply.
    pub(super) async fn request(
        self: &Arc<Self>,
        process: &str,
        kind: &str,
        payload: &Value,
        timeout: Duration,
    ) -> Result<Value, RequestError> {
        let reply = self.expect_reply();
        let message = format!(
            "req\n{}\n{}\n{kind}\n{payload}",
            reply.id, self.config.process_id
        );
        if self.store.send_to(process, &message).await? == 0 {
            return Err(RequestError::Gone(process.to_owned()));
        }
        reply
            .wait(timeout)
            .await
            .ok_or_else(|| RequestError::Timeout {
                process: process.to_owned(),
                timeout,
            })
    }
}

/// Runs while the server lives, if its store is shared: renews the
/// process's registration every [`HEARTBEAT_PERIOD`] (lists its rooms again
/// when the store lost it), unlists the rooms of dead processes, and hands
/// seat notices to rooms.
pub(super) async fn run(inner: Weak<Inner>) {
    let mut messages: Option<Subscription> = None;
    let mut beat = tokio::time::interval(HEARTBEAT_PERIOD);
    beat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut healthy = true;
    loop {
        let message = async {
            match messages.as_mut() {
                Some(subscription) => subscription.recv().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = beat.tick() => {
                let Some(inner) = inner.upgrade() else { return };
                if messages.is_none() {
                    match inner.store.listen(&inner.config.process_id) {
                        // One process: nothing to do, ever.
                        None => return,
                        Some(subscribing) => match subscribing.await {
                            Ok(subscription) => messages = Some(subscription),
                            Err(e) => tracing::warn!("cannot listen for seat notices: {e}"),
                        },
                    }
                }
                healthy = heartbeat(&inner, healthy).await;
            }
            message = message => {
                let Some(inner) = inner.upgrade() else { return };
                match message {
                    Some(message) => handle(&inner, &message),
                    // The presence went away: listen again.
                    None => messages = None,
                }
            }
        }
    }
}

/// One heartbeat and sweep; returns whether the store answered.
async fn heartbeat(inner: &Arc<Inner>, was_healthy: bool) -> bool {
    let process = ProcessInfo {
        process_id: inner.config.process_id.clone(),
        public_address: inner.config.public_address.clone(),
        incarnation: inner.incarnation.clone(),
    };
    match inner.store.heartbeat(&process, PROCESS_TTL).await {
        Ok(true) => {}
        Ok(false) => {
            let rooms = inner.room_senders();
            if !rooms.is_empty() {
                tracing::warn!(
                    "the listing store had lost this process: listing its {} rooms again",
                    rooms.len()
                );
            }
            for room in rooms {
                let _ = room.try_send(Command::Relist);
            }
        }
        Err(e) => {
            if was_healthy {
                tracing::error!(
                    "listing store unreachable, matchmaking fails until it is back: {e}"
                );
            }
            return false;
        }
    }
    if !was_healthy {
        tracing::info!("listing store reachable again");
    }
    match inner.store.sweep_processes().await {
        Ok(dead) if !dead.is_empty() => {
            tracing::warn!("processes {dead:?} stopped: their rooms were unlisted");
        }
        Ok(_) => {}
        Err(e) => tracing::debug!("sweep of dead processes failed: {e}"),
    }
    true
}

/// A message on the process's channel.
fn handle(inner: &Arc<Inner>, message: &str) {
    if let Some(request) = message.strip_prefix("req\n") {
        let mut parts = request.splitn(4, '\n');
        if let (Some(id), Some(from), Some(kind), Some(payload)) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        {
            let payload = serde_json::from_str(payload).unwrap_or(Value::Null);
            let (inner, id, from, kind) = (
                inner.clone(),
                id.to_owned(),
                from.to_owned(),
                kind.to_owned(),
            );
            tokio::spawn(async move {
                let reply = answer(&inner, &kind, payload).await;
                let message = format!("rep\n{id}\n{reply}");
                if let Err(e) = inner.store.send_to(&from, &message).await {
                    tracing::warn!("could not answer process {from}: {e}");
                }
            });
        }
        return;
    }
    if let Some(reply) = message.strip_prefix("rep\n") {
        if let Some((id, payload)) = reply.split_once('\n') {
            let waiting = id
                .parse()
                .ok()
                .and_then(|id: u64| inner.requests.lock().remove(&id));
            if let Some(waiting) = waiting {
                let _ = waiting.send(serde_json::from_str(payload).unwrap_or(Value::Null));
            }
        }
        return;
    }
    let mut parts = message.split('\n');
    match (parts.next(), parts.next(), parts.next()) {
        (Some("seat"), Some(room_id), Some(session_id)) => {
            let reply_to = parts.next().zip(parts.next());
            let room = inner.room(room_id);
            let Some((from, id)) = reply_to else {
                let Some(room) = room else {
                    return;
                };
                let command = Command::TakeSeat {
                    session_id: session_id.to_owned(),
                    reply: None,
                };
                if let Err(TrySendError::Full(_)) = room.try_send(command) {
                    // The client's connection will take the seat.
                    tracing::debug!(room = room_id, "room busy: seat notice dropped");
                }
                return;
            };
            // The asking process waits: tell it whether the room took it.
            let (inner, from, id) = (inner.clone(), from.to_owned(), id.to_owned());
            let session_id = session_id.to_owned();
            tokio::spawn(async move {
                let taken = match room {
                    Some(room) => {
                        let (reply, rx) = oneshot::channel();
                        let command = Command::TakeSeat {
                            session_id,
                            reply: Some(reply),
                        };
                        room.send(command).await.is_ok() && matches!(rx.await, Ok(Ok(())))
                    }
                    None => false,
                };
                let message = format!("rep\n{id}\n{}", json!({ "taken": taken }));
                if let Err(e) = inner.store.send_to(&from, &message).await {
                    tracing::debug!("could not answer a seat notice: {e}");
                }
            });
        }
        _ => tracing::debug!("unknown cluster message: {message:?}"),
    }
}

/// A reply to another process: `{"ok": ..}` or `{"err": {code, message}}`
/// (`{"lost": true}` for a creation whose lock was lost).
fn error_reply(e: &ServerError) -> Value {
    json!({ "err": { "code": e.code, "message": e.message } })
}

/// Reads a reply's error back.
pub(super) fn reply_error(reply: &Value) -> Option<ServerError> {
    let err = reply.get("err")?;
    let code = err["code"]
        .as_u64()
        .and_then(|c| u16::try_from(c).ok())
        .unwrap_or(error_code::MATCHMAKE_UNHANDLED);
    let message = err["message"].as_str().unwrap_or("remote error").to_owned();
    Some(ServerError::new(code, message))
}

/// Runs what another process asked of this one.
async fn answer(inner: &Arc<Inner>, kind: &str, payload: Value) -> Value {
    let server = Server {
        inner: inner.clone(),
    };
    match kind {
        "create" => {
            let (Some(name), Ok(lock)) = (
                payload["name"].as_str(),
                serde_json::from_value::<Option<CreateLock>>(payload["lock"].clone()),
            ) else {
                return error_reply(&ServerError::application("malformed create request"));
            };
            // Without "seat": a request of a process from before seatless
            // creations, which always wanted the first seat.
            let seat = payload["seat"].as_bool().unwrap_or(true);
            let options = payload["options"].clone();
            match server.create_room(name, options, lock, seat).await {
                Ok((room, session_id)) => json!({ "ok": {
                    "room": room,
                    "sessionId": session_id,
                } }),
                Err(CreateError::LockLost) => json!({ "lost": true }),
                Err(CreateError::Server(e) | CreateError::Unreachable(e)) => error_reply(&e),
            }
        }
        "reconnect" => {
            let (Some(room_id), Some(token)) =
                (payload["roomId"].as_str(), payload["token"].as_str())
            else {
                return error_reply(&ServerError::application("malformed reconnect request"));
            };
            match server.reconnect_here(room_id, token).await {
                Ok(session_id) => json!({ "ok": session_id }),
                Err(e) => error_reply(&e),
            }
        }
        "call" => {
            let Some(room_id) = payload["roomId"].as_str() else {
                return error_reply(&ServerError::application("malformed call"));
            };
            let name = payload["name"].as_str().unwrap_or_default();
            match server
                .call_here(room_id, name, payload["args"].clone())
                .await
            {
                Ok(value) => json!({ "ok": value }),
                Err(e) => error_reply(&e),
            }
        }
        "disconnect" => {
            let Some(room_id) = payload["roomId"].as_str() else {
                return error_reply(&ServerError::application("malformed disconnect"));
            };
            match server.disconnect_here(room_id).await {
                Ok(()) => json!({ "ok": true }),
                Err(e) => error_reply(&e),
            }
        }
        "monitor" => super::monitor::answer_remote(&server, payload).await,
        _ => error_reply(&ServerError::application(format!(
            "unknown request {kind:?}"
        ))),
    }
}
