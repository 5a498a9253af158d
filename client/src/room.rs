//! A joined room (`Room.ts`): its state, events, handlers and sends.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use roomcast_schema::decoder::{Cx, DecodeState, Decoder, DynamicDecoder, NodeRef};
use roomcast_schema::wire::DecodeError;
use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::sync::{mpsc, oneshot};

use crate::connection::{Command, Incoming};
use crate::error::{ErrorCode, MessageError, ReplyError, SendError};
use crate::protocol::{self, close_code, MessageType, ServerFrame};
use crate::state::{Dynamic, RoomState};

/// Something that happened to a room, as [`Room::recv`] returns it.
///
/// The SDK's signals map to these: `onStateChange` →
/// [`StateChange`](Self::StateChange), `onMessage` →
/// [`Message`](Self::Message), `onError` → [`Error`](Self::Error),
/// `onDrop` → [`Drop`](Self::Drop), `onReconnect` →
/// [`Reconnect`](Self::Reconnect), `onLeave` → [`Leave`](Self::Leave).
#[derive(Debug)]
#[non_exhaustive]
pub enum RoomEvent {
    /// A ROOM_STATE (`full`) or ROOM_STATE_PATCH was applied to the state;
    /// the state's change callbacks have run.
    StateChange {
        /// A full state (after the join, and again after a reconnection).
        full: bool,
    },
    /// A message from the room (after its handlers, if any, ran).
    Message(Message),
    /// The room sent an ERROR (`client.error(code, message)` on the
    /// server), or refused a reconnection.
    Error {
        /// The error code.
        code: ErrorCode,
        /// The room's message.
        message: String,
    },
    /// The connection dropped (close code 1001, 1005, 1006 or 4010):
    /// automatic reconnection follows unless disabled (then
    /// [`Leave`](Self::Leave)).
    Drop {
        /// The close code.
        code: u16,
        /// The close reason.
        reason: String,
    },
    /// Reconnection attempt `attempt` starts after `delay` (not an SDK
    /// signal: it only logs this).
    Reconnecting {
        /// The attempt, from 1.
        attempt: u32,
        /// The wait before it.
        delay: Duration,
    },
    /// The room accepted the reconnection; the messages sent meanwhile have
    /// been sent, and a full state follows.
    Reconnect,
    /// The room answered [`Room::ping`]: the round-trip time.
    Pong(Duration),
    /// A frame the client could not read (malformed state bytes, an
    /// unknown frame layout): it was ignored, the state is unchanged.
    InvalidFrame(DecodeError),
    /// The room is over: `code` 4000 after a consented leave, 4003 when
    /// reconnection gave up, the server's close code otherwise. The last
    /// event: [`Room::recv`] returns `None` afterwards.
    Leave {
        /// The close code.
        code: u16,
        /// The close reason.
        reason: String,
    },
}

/// A message from the room: ROOM_DATA (MessagePack payload) or
/// ROOM_DATA_BYTES (raw bytes).
#[derive(Clone, PartialEq, Eq)]
pub struct Message {
    ty: MessageType,
    data: Bytes,
    raw: bool,
}

impl fmt::Debug for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Message")
            .field("ty", &self.ty)
            .field("bytes", &self.data.len())
            .field("raw", &self.raw)
            .finish()
    }
}

impl Message {
    /// A message (for tests of handlers): `data` is MessagePack unless
    /// `raw`.
    ///
    /// # Examples
    ///
    /// ```
    /// use roomcast_client::Message;
    /// let m = Message::new("score", vec![0x2a], false);
    /// assert_eq!(m.decode::<u32>()?, 42);
    /// # Ok::<(), roomcast_client::MessageError>(())
    /// ```
    #[must_use]
    pub fn new(ty: impl Into<MessageType>, data: impl Into<Bytes>, raw: bool) -> Self {
        Self {
            ty: ty.into(),
            data: data.into(),
            raw,
        }
    }

    /// The message's type.
    #[must_use]
    pub fn ty(&self) -> &MessageType {
        &self.ty
    }

    /// Whether it is a ROOM_DATA_BYTES message (raw bytes).
    #[must_use]
    pub fn is_bytes(&self) -> bool {
        self.raw
    }

    /// The payload: MessagePack, or the raw bytes of a ROOM_DATA_BYTES
    /// message. Empty when the room sent no payload.
    #[must_use]
    pub fn bytes(&self) -> &[u8] {
        &self.data
    }

    /// The MessagePack payload as a `T` (`serde_json::Value` reads any);
    /// a message without payload reads as MessagePack `nil` (so into an
    /// `Option`, `()` or a JSON `null`).
    ///
    /// # Errors
    ///
    /// The payload is not a `T`, or the message carries raw bytes.
    pub fn decode<T: DeserializeOwned>(&self) -> Result<T, MessageError> {
        if self.raw {
            return Err(MessageError::RawBytes);
        }
        let bytes: &[u8] = if self.data.is_empty() {
            &[0xc0]
        } else {
            &self.data
        };
        Ok(rmp_serde::from_slice(bytes)?)
    }
}

/// Sends to a room from anywhere: a cheap, cloneable handle (from
/// [`Room::sender`]) that other tasks can own. Sends are queued: while the
/// room is reconnecting they are kept (see
/// [`ReconnectionConfig::max_enqueued_messages`](crate::ReconnectionConfig::max_enqueued_messages))
/// and sent once it is back.
#[derive(Debug, Clone)]
pub struct RoomSender {
    commands: mpsc::UnboundedSender<Command>,
    next_request: Arc<AtomicU32>,
}

impl RoomSender {
    /// Sends a ROOM_DATA message with a MessagePack payload (structs as
    /// maps with their field names, as the room expects).
    ///
    /// # Errors
    ///
    /// The payload cannot be encoded, or the room was left.
    pub fn send<T: Serialize + ?Sized>(
        &self,
        ty: impl Into<MessageType>,
        payload: &T,
    ) -> Result<(), SendError> {
        let mut frame = Vec::with_capacity(32);
        protocol::header(&mut frame, protocol::ROOM_DATA, &ty.into());
        rmp_serde::encode::write_named(&mut frame, payload)?;
        self.push(frame)
    }

    /// Sends a ROOM_DATA message without payload (`room.send("ping")`).
    ///
    /// # Errors
    ///
    /// The room was left.
    pub fn send_empty(&self, ty: impl Into<MessageType>) -> Result<(), SendError> {
        let mut frame = Vec::with_capacity(16);
        protocol::header(&mut frame, protocol::ROOM_DATA, &ty.into());
        self.push(frame)
    }

    /// Sends a ROOM_DATA_BYTES message: raw bytes.
    ///
    /// # Errors
    ///
    /// The room was left.
    pub fn send_bytes(&self, ty: impl Into<MessageType>, bytes: &[u8]) -> Result<(), SendError> {
        let mut frame = Vec::with_capacity(16 + bytes.len());
        protocol::header(&mut frame, protocol::ROOM_DATA_BYTES, &ty.into());
        frame.extend_from_slice(bytes);
        self.push(frame)
    }

    /// Sends a request (0.18 ROOM_REQUEST: `room.request(type, payload)`
    /// of the SDK) and waits up to `timeout` for the room's answer: what
    /// its handler for `ty` returned, as an `R` (`serde_json::Value` reads
    /// any; `Option<_>` or `()` for a handler that returns nothing).
    /// Answers go straight to the waiting request: no
    /// [`Room::recv`] needed.
    ///
    /// # Errors
    ///
    /// See [`ReplyError`]: the room rejected or failed the request, no
    /// answer in time, the connection closed or was not open (while
    /// reconnecting), or a payload could not be encoded / decoded.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn run(room: roomcast_client::Room) -> Result<(), roomcast_client::ReplyError> {
    /// use std::time::Duration;
    /// let profile: serde_json::Value = room
    ///     .sender()
    ///     .request("get-profile", &serde_json::json!({ "id": 42 }), Duration::from_secs(10))
    ///     .await?;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn request<T: Serialize + ?Sized, R: DeserializeOwned>(
        &self,
        ty: impl Into<MessageType>,
        payload: &T,
        timeout: Duration,
    ) -> Result<R, ReplyError> {
        let id = self.next_request.fetch_add(1, Ordering::Relaxed);
        let mut frame = Vec::with_capacity(32);
        protocol::request_header(&mut frame, id, &ty.into());
        rmp_serde::encode::write_named(&mut frame, payload)?;
        let (reply, answer) = oneshot::channel();
        self.commands
            .send(Command::Request {
                id,
                frame: Bytes::from(frame),
                reply,
            })
            .map_err(|_| ReplyError::Closed)?;
        let answer = tokio::time::timeout(timeout, answer)
            .await
            .map_err(|_| ReplyError::Timeout)?
            .map_err(|_| ReplyError::Closed)?;
        let payload: &[u8] = if answer.payload.is_empty() {
            &[0xc0]
        } else {
            &answer.payload
        };
        match answer.status {
            protocol::STATUS_OK => Ok(rmp_serde::from_slice(payload)?),
            protocol::STATUS_REJECTED => Err(ReplyError::Rejected {
                reason: rmp_serde::from_slice(payload).unwrap_or(serde_json::Value::Null),
            }),
            _ => {
                let error: serde_json::Value =
                    rmp_serde::from_slice(payload).unwrap_or(serde_json::Value::Null);
                Err(ReplyError::Failed {
                    name: error["name"].as_str().map(str::to_owned),
                    message: error["message"]
                        .as_str()
                        .unwrap_or("request failed")
                        .to_owned(),
                    code: error["code"].as_u64().and_then(|c| u32::try_from(c).ok()),
                })
            }
        }
    }

    fn push(&self, frame: Vec<u8>) -> Result<(), SendError> {
        self.commands
            .send(Command::Frame(Bytes::from(frame)))
            .map_err(|_| SendError::Closed)
    }
}

/// Identifies a handler registered on a room, to remove it with
/// [`Room::remove_handler`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct HandlerId(u64);

type MessageFn = Box<dyn FnMut(&Message) + Send>;
type CodeFn = Box<dyn FnMut(u16, &str) + Send>;
type ErrorFn = Box<dyn FnMut(ErrorCode, &str) + Send>;
type UnitFn = Box<dyn FnMut() + Send>;

#[derive(Default)]
struct Handlers {
    next: u64,
    messages: HashMap<MessageType, Vec<(u64, MessageFn)>>,
    any: Vec<(u64, MessageFn)>,
    leave: Vec<(u64, CodeFn)>,
    drop: Vec<(u64, CodeFn)>,
    error: Vec<(u64, ErrorFn)>,
    reconnect: Vec<(u64, UnitFn)>,
}

impl Handlers {
    fn id(&mut self) -> u64 {
        self.next += 1;
        self.next
    }

    fn remove(&mut self, id: u64) {
        for list in self.messages.values_mut() {
            list.retain(|(i, _)| *i != id);
        }
        self.messages.retain(|_, list| !list.is_empty());
        self.any.retain(|(i, _)| *i != id);
        self.leave.retain(|(i, _)| *i != id);
        self.drop.retain(|(i, _)| *i != id);
        self.error.retain(|(i, _)| *i != id);
        self.reconnect.retain(|(i, _)| *i != id);
    }
}

/// What the client knew of the room at the join.
pub(crate) struct Joined<S: RoomState> {
    pub(crate) name: String,
    pub(crate) room_id: String,
    pub(crate) session_id: String,
    pub(crate) token: String,
    pub(crate) decoder: S::Decoder,
    pub(crate) events: mpsc::Receiver<Incoming>,
    pub(crate) commands: mpsc::UnboundedSender<Command>,
}

/// A joined room.
///
/// A background task owns the connection (it acks, answers, reconnects);
/// the room applies what it receives when you ask for the next event with
/// [`recv`](Self::recv): decoding state frames into the state (running its
/// change callbacks), dispatching messages to the handlers registered with
/// [`on_message`](Self::on_message), and calling the `on_*` handlers.
/// Keep calling `recv` (in a loop, or in a `tokio::select!`; it is
/// cancel-safe) for the state to move: the task stops reading the socket
/// when [`EVENT_CAPACITY`](crate::EVENT_CAPACITY) frames wait.
///
/// Dropping a room closes its connection without a leave (the server
/// sees a drop, and may hold the seat for [`Client::reconnect`](crate::Client::reconnect)):
/// call [`leave`](Self::leave) to leave.
///
/// `S` is the state: a `#[derive(Schema)]` type (marked
/// `#[schema(decode)]`, read with [`state`](Room::state) as `&S`), or
/// [`Dynamic`] (read as a [`NodeRef`]).
///
/// # Examples
///
/// ```no_run
/// use roomcast_client::{Client, Dynamic, RoomEvent};
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let client = Client::new("http://127.0.0.1:2567")?;
/// let mut room = client
///     .join_or_create::<Dynamic>("world", &serde_json::json!({ "name": "ana" }))
///     .await?;
/// room.on_message("chat", |m| println!("chat: {:?}", m.decode::<serde_json::Value>()));
/// room.send("chat", "hello")?;
/// while let Some(event) = room.recv().await {
///     match event {
///         RoomEvent::StateChange { .. } => {
///             println!("{}", room.state().map(|s| s.to_json()).unwrap_or_default());
///         }
///         RoomEvent::Leave { code, .. } => println!("left with {code}"),
///         _ => {}
///     }
/// }
/// # Ok(())
/// # }
/// ```
pub struct Room<S: RoomState = Dynamic> {
    name: String,
    room_id: String,
    session_id: String,
    token: String,
    decoder: S::Decoder,
    events: mpsc::Receiver<Incoming>,
    sender: RoomSender,
    handlers: Handlers,
    /// The close code, once left.
    left: Option<u16>,
    /// When the pending [`ping`](Self::ping) was sent.
    ping_sent: Option<Instant>,
}

impl<S: RoomState> fmt::Debug for Room<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Room")
            .field("name", &self.name)
            .field("room_id", &self.room_id)
            .field("session_id", &self.session_id)
            .field("left", &self.left)
            .finish_non_exhaustive()
    }
}

impl<S: RoomState> Room<S> {
    pub(crate) fn new(joined: Joined<S>) -> Self {
        Self {
            name: joined.name,
            room_id: joined.room_id,
            session_id: joined.session_id,
            token: joined.token,
            decoder: joined.decoder,
            events: joined.events,
            sender: RoomSender {
                commands: joined.commands,
                next_request: Arc::default(),
            },
            handlers: Handlers::default(),
            left: None,
            ping_sent: None,
        }
    }

    /// The room's type name.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The room's id.
    #[must_use]
    pub fn room_id(&self) -> &str {
        &self.room_id
    }

    /// This client's session id in the room (kept across reconnections).
    #[must_use]
    pub fn session_id(&self) -> &str {
        &self.session_id
    }

    /// `roomId:token`, for [`Client::reconnect`](crate::Client::reconnect)
    /// (a new token after each reconnection).
    #[must_use]
    pub fn reconnection_token(&self) -> String {
        format!("{}:{}", self.room_id, self.token)
    }

    /// Whether the room is over (its [`RoomEvent::Leave`] was returned);
    /// the close code.
    #[must_use]
    pub fn left(&self) -> Option<u16> {
        self.left
    }

    /// A handle to send from other tasks.
    #[must_use]
    pub fn sender(&self) -> RoomSender {
        self.sender.clone()
    }

    /// [`RoomSender::send`].
    ///
    /// # Errors
    ///
    /// The payload cannot be encoded, or the room was left.
    pub fn send<T: Serialize + ?Sized>(
        &self,
        ty: impl Into<MessageType>,
        payload: &T,
    ) -> Result<(), SendError> {
        self.sender.send(ty, payload)
    }

    /// [`RoomSender::send_empty`].
    ///
    /// # Errors
    ///
    /// The room was left.
    pub fn send_empty(&self, ty: impl Into<MessageType>) -> Result<(), SendError> {
        self.sender.send_empty(ty)
    }

    /// [`RoomSender::send_bytes`].
    ///
    /// # Errors
    ///
    /// The room was left.
    pub fn send_bytes(&self, ty: impl Into<MessageType>, bytes: &[u8]) -> Result<(), SendError> {
        self.sender.send_bytes(ty, bytes)
    }

    /// Measures the round-trip time to the room (0.18 PING): a
    /// [`RoomEvent::Pong`] follows. A ping sent while the room is
    /// reconnecting is sent once it is back.
    ///
    /// # Errors
    ///
    /// The room was left.
    pub fn ping(&mut self) -> Result<(), SendError> {
        self.sender
            .commands
            .send(Command::Frame(Bytes::from_static(&[protocol::PING])))
            .map_err(|_| SendError::Closed)?;
        self.ping_sent = Some(Instant::now());
        Ok(())
    }

    /// Calls `f` with every message of type `ty` (inside [`recv`](Self::recv),
    /// which still returns the message). Handlers of one type run in
    /// registration order.
    pub fn on_message(
        &mut self,
        ty: impl Into<MessageType>,
        f: impl FnMut(&Message) + Send + 'static,
    ) -> HandlerId {
        let id = self.handlers.id();
        self.handlers
            .messages
            .entry(ty.into())
            .or_default()
            .push((id, Box::new(f)));
        HandlerId(id)
    }

    /// The SDK's `onMessage("*", …)`: calls `f` with every message of a
    /// type that has no handler of its own.
    pub fn on_any_message(&mut self, f: impl FnMut(&Message) + Send + 'static) -> HandlerId {
        let id = self.handlers.id();
        self.handlers.any.push((id, Box::new(f)));
        HandlerId(id)
    }

    /// Calls `f(code, reason)` when the room is over (see
    /// [`RoomEvent::Leave`]).
    pub fn on_leave(&mut self, f: impl FnMut(u16, &str) + Send + 'static) -> HandlerId {
        let id = self.handlers.id();
        self.handlers.leave.push((id, Box::new(f)));
        HandlerId(id)
    }

    /// Calls `f(code, message)` on each [`RoomEvent::Error`].
    pub fn on_error(&mut self, f: impl FnMut(ErrorCode, &str) + Send + 'static) -> HandlerId {
        let id = self.handlers.id();
        self.handlers.error.push((id, Box::new(f)));
        HandlerId(id)
    }

    /// Calls `f(code, reason)` when the connection drops
    /// ([`RoomEvent::Drop`]).
    pub fn on_drop(&mut self, f: impl FnMut(u16, &str) + Send + 'static) -> HandlerId {
        let id = self.handlers.id();
        self.handlers.drop.push((id, Box::new(f)));
        HandlerId(id)
    }

    /// Calls `f` when the room accepted a reconnection
    /// ([`RoomEvent::Reconnect`]).
    pub fn on_reconnect(&mut self, f: impl FnMut() + Send + 'static) -> HandlerId {
        let id = self.handlers.id();
        self.handlers.reconnect.push((id, Box::new(f)));
        HandlerId(id)
    }

    /// Removes a handler.
    pub fn remove_handler(&mut self, id: HandlerId) {
        self.handlers.remove(id.0);
    }

    /// The state decoder's change callbacks (`listen`, `on_add`,
    /// `on_remove`, `on_change`: see
    /// [`roomcast_schema::decoder::callbacks`]); they run inside
    /// [`recv`](Self::recv), once a whole state frame is applied. In a
    /// typed room they read the state through
    /// [`Cx::state`](roomcast_schema::decoder::Cx::state), in a [`Dynamic`]
    /// one through [`Cx::node`](roomcast_schema::decoder::Cx::node). `None`
    /// for a [`Dynamic`] room whose server sent no state types.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use roomcast_client::{Client, Dynamic};
    /// use roomcast_schema::decoder::{At, RefId};
    ///
    /// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
    /// let client = Client::new("http://127.0.0.1:2567")?;
    /// let mut room = client.join_or_create::<Dynamic>("world", &()).await?;
    /// if let Some(mut cx) = room.callbacks() {
    ///     cx.on_add(At::Field(RefId::ROOT, "players"), |_cx, key, _player| {
    ///         println!("{key} joined");
    ///     })?;
    /// }
    /// # Ok(())
    /// # }
    /// ```
    pub fn callbacks(&mut self) -> Option<Cx<'_>> {
        S::__callbacks(&mut self.decoder)
    }

    /// Waits for the next event, having applied it (state decoded,
    /// handlers run). `None` once the room is over and its
    /// [`RoomEvent::Leave`] was returned. Cancel-safe.
    pub async fn recv(&mut self) -> Option<RoomEvent> {
        loop {
            if self.left.is_some() {
                return None;
            }
            let incoming = match self.events.recv().await {
                Some(incoming) => incoming,
                // The task ended without a word: it was aborted.
                None => Incoming::Left {
                    code: close_code::ABNORMAL_CLOSURE,
                    reason: "connection task ended".into(),
                },
            };
            if let Some(event) = self.apply(incoming) {
                return Some(event);
            }
        }
    }

    /// Leaves the room: with LEAVE_ROOM when `consented` (the server
    /// closes with 4000), else by closing the socket (the server sees a
    /// drop and may hold the seat for [`Client::reconnect`](crate::Client::reconnect)).
    /// Applies the events received until the room is over (handlers run)
    /// and returns the close code.
    pub async fn leave(&mut self, consented: bool) -> u16 {
        if let Some(code) = self.left {
            return code;
        }
        let _ = self.sender.commands.send(Command::Leave { consented });
        while let Some(event) = self.recv().await {
            if let RoomEvent::Leave { code, .. } = event {
                return code;
            }
        }
        self.left.unwrap_or(close_code::ABNORMAL_CLOSURE)
    }

    fn apply(&mut self, incoming: Incoming) -> Option<RoomEvent> {
        match incoming {
            Incoming::Frame(frame) => self.frame(&frame),
            Incoming::Dropped { code, reason } => {
                for (_, f) in &mut self.handlers.drop {
                    f(code, &reason);
                }
                Some(RoomEvent::Drop { code, reason })
            }
            Incoming::Reconnecting { attempt, delay } => {
                Some(RoomEvent::Reconnecting { attempt, delay })
            }
            Incoming::Reconnected { token } => {
                self.token = token;
                for (_, f) in &mut self.handlers.reconnect {
                    f();
                }
                Some(RoomEvent::Reconnect)
            }
            Incoming::Refused { code, message } => Some(self.error(code, message)),
            Incoming::Left { code, reason } => {
                self.left = Some(code);
                for (_, f) in &mut self.handlers.leave {
                    f(code, &reason);
                }
                Some(RoomEvent::Leave { code, reason })
            }
        }
    }

    fn error(&mut self, code: u32, message: String) -> RoomEvent {
        let code = ErrorCode::from_code(code);
        for (_, f) in &mut self.handlers.error {
            f(code, &message);
        }
        RoomEvent::Error { code, message }
    }

    fn frame(&mut self, frame: &Bytes) -> Option<RoomEvent> {
        let parsed = match protocol::parse(frame) {
            Ok(parsed) => parsed,
            Err(e) => return Some(RoomEvent::InvalidFrame(e)),
        };
        match parsed {
            ServerFrame::State(body) => Some(match S::__decode(&mut self.decoder, body) {
                Ok(()) => RoomEvent::StateChange { full: true },
                Err(e) => RoomEvent::InvalidFrame(e),
            }),
            ServerFrame::Patch(body) => Some(match S::__decode(&mut self.decoder, body) {
                Ok(()) => RoomEvent::StateChange { full: false },
                Err(e) => RoomEvent::InvalidFrame(e),
            }),
            ServerFrame::Data { ty, payload } => Some(self.message(Message {
                ty,
                data: frame.slice_ref(payload),
                raw: false,
            })),
            ServerFrame::Bytes { ty, bytes } => Some(self.message(Message {
                ty,
                data: frame.slice_ref(bytes),
                raw: true,
            })),
            ServerFrame::Error { code, message } => Some(self.error(code, message)),
            ServerFrame::Ping => self
                .ping_sent
                .take()
                .map(|sent| RoomEvent::Pong(sent.elapsed())),
            // JOIN_ROOM and LEAVE_ROOM are the connection task's; requests'
            // responses have no API here.
            // (and ROOM_RESPONSE, which goes to the waiting request).
            ServerFrame::Join(_)
            | ServerFrame::Leave
            | ServerFrame::Response { .. }
            | ServerFrame::Other => None,
        }
    }

    fn message(&mut self, message: Message) -> RoomEvent {
        match self.handlers.messages.get_mut(&message.ty) {
            Some(list) => {
                for (_, f) in list {
                    f(&message);
                }
            }
            None => {
                for (_, f) in &mut self.handlers.any {
                    f(&message);
                }
            }
        }
        RoomEvent::Message(message)
    }
}

impl<T: DecodeState + Send + 'static> Room<T> {
    /// The decoded state (default values until the first full state).
    #[must_use]
    pub fn state(&self) -> &T {
        self.decoder.state()
    }

    /// The state's decoder (its dynamic view, counters).
    pub fn decoder(&mut self) -> &mut Decoder<T> {
        &mut self.decoder
    }
}

impl Room<Dynamic> {
    /// The decoded state's root (`None`: the server sent no state types).
    #[must_use]
    pub fn state(&self) -> Option<NodeRef<'_>> {
        self.decoder.as_ref().map(DynamicDecoder::root)
    }

    /// The state's decoder (`None`: the server sent no state types).
    pub fn decoder(&mut self) -> Option<&mut DynamicDecoder> {
        self.decoder.as_mut()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn send<T: Send>() {}
    fn sync<T: Sync>() {}

    #[test]
    fn handles_move_between_tasks() {
        send::<Room<Dynamic>>();
        send::<RoomSender>();
        sync::<RoomSender>();
        send::<crate::Client>();
        sync::<crate::Client>();
        send::<RoomEvent>();
    }

    #[test]
    fn message_payloads() {
        let m = Message::new("t", Bytes::new(), false);
        assert_eq!(m.decode::<Option<u8>>().unwrap(), None);
        let m = Message::new(3, vec![1, 2], true);
        assert!(matches!(m.decode::<u8>(), Err(MessageError::RawBytes)));
        assert_eq!((m.ty(), m.bytes()), (&MessageType::Number(3), &[1, 2][..]));
        let m = Message::new("t", vec![0xc1], false);
        assert!(m.decode::<serde_json::Value>().is_err());
    }
}
