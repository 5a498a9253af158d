//! The task that owns a room's WebSocket (`Connection.ts` and the
//! reconnection half of `Room.ts`): it forwards server frames to the
//! [`Room`](crate::Room), writes what the room sends, answers the
//! server's LEAVE_ROOM, and on a drop reconnects with the room's token,
//! keeping the messages sent meanwhile.
//!
//! Order of a session: [`join`] opens the socket and waits for JOIN_ROOM
//! (or an ERROR / close); the caller acks it and hands the socket to
//! [`Driver::run`], which serves it until the room ends, reconnecting
//! on the way as [`ReconnectionConfig`] says. Every outcome reaches the
//! room as an [`Incoming`], the last one always [`Incoming::Left`] (unless
//! the room itself is gone).

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use tokio::time::{sleep_until, timeout, Instant};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::{HeaderName, HeaderValue};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, WebSocketConfig};
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::protocol::{self, close_code, ServerFrame};
use crate::reconnection::ReconnectionConfig;

pub(crate) type WsStream = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// How long a leave waits for the server to close the socket.
const LEAVE_TIMEOUT: Duration = Duration::from_secs(5);

/// Frames the connection task buffers for the room before it stops
/// reading the socket.
pub const EVENT_CAPACITY: usize = 1024;

/// The WebSocket read buffer of a connection (see [`join`]): what one
/// read takes at most, zero-filled before each read; a state frame is
/// mostly under 1 KiB.
const READ_BUFFER_SIZE: usize = 4 * 1024;

/// From the room (and its senders) to the connection task.
#[derive(Debug)]
pub(crate) enum Command {
    /// A frame to send (kept while disconnected).
    Frame(Bytes),
    /// Leave the room: with LEAVE_ROOM (`consented`) or by closing.
    Leave { consented: bool },
    /// A ROOM_REQUEST frame and where its answer goes (dropped unanswered
    /// when the connection is not open or closes first).
    Request {
        id: u32,
        frame: Bytes,
        reply: oneshot::Sender<Answer>,
    },
}

/// A ROOM_RESPONSE: its status and MessagePack payload.
#[derive(Debug)]
pub(crate) struct Answer {
    pub(crate) status: u8,
    pub(crate) payload: Bytes,
}

/// From the connection task to the room.
#[derive(Debug)]
pub(crate) enum Incoming {
    /// A server frame received after the join.
    Frame(Bytes),
    /// The connection dropped; the task is about to reconnect (or give up).
    Dropped { code: u16, reason: String },
    /// The task waits `delay`, then makes attempt `attempt`.
    Reconnecting { attempt: u32, delay: Duration },
    /// The room accepted the reconnection; its new raw token.
    Reconnected { token: String },
    /// The room refused a reconnection attempt with an ERROR frame.
    Refused { code: u32, message: String },
    /// The room is over.
    Left { code: u16, reason: String },
}

/// Why [`join`] did not get a JOIN_ROOM.
#[derive(Debug)]
pub(crate) enum JoinFailure {
    /// The room sent ERROR.
    Refused { code: u32, message: String },
    /// The socket closed first.
    Closed { code: u16, reason: String },
    /// The socket could not be opened.
    Connect(tokio_tungstenite::tungstenite::Error),
    /// A JOIN_ROOM frame that does not parse.
    Handshake(roomcast_schema::wire::DecodeError),
}

/// Opens the socket at `url` and waits for the room's JOIN_ROOM frame,
/// returned whole (not yet acked).
pub(crate) async fn join(
    url: &str,
    headers: &[(String, String)],
) -> Result<(WsStream, Bytes), JoinFailure> {
    let mut request = url.into_client_request().map_err(JoinFailure::Connect)?;
    for (name, value) in headers {
        // (Checked when configured: `Client::with_header`.)
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) {
            request.headers_mut().append(name, value);
        }
    }
    // A socket's read buffer is zero-filled up to its size before every
    // read: tungstenite's default (128 KiB) made each client's resident
    // memory ~200 KiB, where state frames are mostly under 1 KiB. Larger
    // frames still arrive whole: the buffer grows while one is read.
    let config = WebSocketConfig::default().read_buffer_size(READ_BUFFER_SIZE);
    let (mut ws, _) = tokio_tungstenite::connect_async_with_config(request, Some(config), false)
        .await
        .map_err(JoinFailure::Connect)?;
    if let MaybeTlsStream::Plain(tcp) = ws.get_ref() {
        let _ = tcp.set_nodelay(true);
    }
    let mut closed: Option<(u16, String)> = None;
    while let Some(message) = ws.next().await {
        match message {
            Ok(WsMessage::Binary(frame)) => match protocol::parse(&frame) {
                Ok(ServerFrame::Join(_)) => return Ok((ws, frame)),
                Ok(ServerFrame::Error { code, message }) => {
                    return Err(JoinFailure::Refused { code, message })
                }
                Err(e)
                    if frame.first().map(|b| b & protocol::CODE_MASK)
                        == Some(protocol::JOIN_ROOM) =>
                {
                    return Err(JoinFailure::Handshake(e))
                }
                // Anything else before the handshake is ignored (as the SDK
                // would find no serializer for it).
                _ => {}
            },
            Ok(WsMessage::Close(frame)) => closed = Some(close_of(frame)),
            Ok(_) => {}
            Err(_) => break,
        }
    }
    let (code, reason) = closed.unwrap_or((close_code::ABNORMAL_CLOSURE, String::new()));
    Err(JoinFailure::Closed { code, reason })
}

fn close_of(frame: Option<CloseFrame>) -> (u16, String) {
    match frame {
        Some(f) => (u16::from(f.code), f.reason.as_str().to_owned()),
        None => (close_code::NO_STATUS_RECEIVED, String::new()),
    }
}

/// The one-byte JOIN_ROOM ack.
pub(crate) fn ack() -> WsMessage {
    WsMessage::Binary(Bytes::from_static(&[protocol::JOIN_ROOM]))
}

/// How [`Driver::serve`] ended.
enum End {
    /// The socket closed: its code, reason, and whether this client asked.
    Closed {
        code: u16,
        reason: String,
        local: bool,
    },
    /// The room and every sender are gone.
    Gone,
}

/// The connection task of one room.
pub(crate) struct Driver {
    pub(crate) commands: mpsc::UnboundedReceiver<Command>,
    pub(crate) events: mpsc::Sender<Incoming>,
    pub(crate) config: ReconnectionConfig,
    /// `ws://host[:port][/path]/<processId>/<roomId>`.
    pub(crate) base_url: String,
    /// The client's own search params (raw), put first.
    pub(crate) search_params: Option<String>,
    /// Query parameters of the join, in order.
    pub(crate) query: Vec<(String, String)>,
    /// The current raw reconnection token.
    pub(crate) token: String,
    /// When the room was first joined.
    pub(crate) joined_at: Instant,
    /// Frames sent while disconnected.
    pub(crate) buffer: VecDeque<Bytes>,
    /// Headers of the WebSocket request.
    pub(crate) headers: Vec<(String, String)>,
    /// Requests waiting for their answer.
    pub(crate) pending: HashMap<u32, oneshot::Sender<Answer>>,
}

/// The URL of a WebSocket: `base?search&k=v&…` (values as the SDK puts
/// them: not encoded).
pub(crate) fn url(base: &str, search: Option<&str>, query: &[(String, String)]) -> String {
    let mut url = format!("{base}?");
    let mut first = true;
    for part in search.into_iter().filter(|s| !s.is_empty()) {
        url.push_str(part);
        first = false;
    }
    for (k, v) in query {
        if !first {
            url.push('&');
        }
        first = false;
        url.push_str(k);
        url.push('=');
        url.push_str(v);
    }
    url
}

impl Driver {
    /// Serves `ws` (already acked) until the room ends.
    pub(crate) async fn run(mut self, mut ws: WsStream) {
        loop {
            let end = self.serve(&mut ws).await;
            // Unanswered requests fail with the connection.
            self.pending.clear();
            let (code, reason, local) = match end {
                End::Gone => return,
                End::Closed {
                    code,
                    reason,
                    local,
                } => (code, reason, local),
            };
            if local || !close_code::is_drop(code) {
                self.finish(Incoming::Left { code, reason }).await;
                return;
            }
            if !self
                .emit(Incoming::Dropped {
                    code,
                    reason: reason.clone(),
                })
                .await
            {
                return;
            }
            if !self.config.enabled {
                self.finish(Incoming::Left { code, reason }).await;
                return;
            }
            if self.joined_at.elapsed() < self.config.min_uptime {
                self.finish(Incoming::Left {
                    code: close_code::ABNORMAL_CLOSURE,
                    reason: "Room uptime too short for reconnection.".into(),
                })
                .await;
                return;
            }
            // The old socket goes now: a server that has not seen it end
            // would wait for it before taking the reconnection.
            drop(ws);
            match self.reconnect().await {
                Some(new) => ws = new,
                None => return,
            }
        }
    }

    /// Ends the room with `left` ([`Incoming::Left`]): from now on sends
    /// fail.
    async fn finish(&mut self, left: Incoming) {
        self.commands.close();
        self.emit(left).await;
    }

    /// Sends `event` to the room; `false` when the room is gone.
    async fn emit(&self, event: Incoming) -> bool {
        self.events.send(event).await.is_ok()
    }

    /// Keeps `frame` for the next connection, dropping the oldest past the
    /// cap.
    fn enqueue(&mut self, frame: Bytes) {
        self.buffer.push_back(frame);
        while self.buffer.len() > self.config.max_enqueued_messages {
            self.buffer.pop_front();
        }
    }

    async fn serve(&mut self, ws: &mut WsStream) -> End {
        let lost = |reason: &str| End::Closed {
            code: close_code::ABNORMAL_CLOSURE,
            reason: reason.to_owned(),
            local: false,
        };
        while let Some(frame) = self.buffer.pop_front() {
            if ws.send(WsMessage::Binary(frame.clone())).await.is_err() {
                self.buffer.push_front(frame);
                return lost("send failed");
            }
        }
        let mut closed: Option<(u16, String)> = None;
        // Set once this client asked to leave: then a close is not a drop.
        let mut leaving: Option<Instant> = None;
        loop {
            tokio::select! {
                message = ws.next() => match message {
                    Some(Ok(WsMessage::Binary(frame))) => {
                        if frame.first() == Some(&protocol::LEAVE_ROOM) {
                            // The server asks this client to leave: the
                            // SDK calls `room.leave()`.
                            if leaving.is_none() {
                                let leave = Bytes::from_static(&[protocol::LEAVE_ROOM]);
                                let _ = ws.send(WsMessage::Binary(leave)).await;
                                leaving = Some(Instant::now() + LEAVE_TIMEOUT);
                            }
                            continue;
                        }
                        let code = frame.first().map(|b| b & protocol::CODE_MASK);
                        if code == Some(protocol::ROOM_RESPONSE) {
                            if let Ok(ServerFrame::Response { id, status, payload }) = protocol::parse(&frame) {
                                if let Some(reply) = self.pending.remove(&id) {
                                    let _ = reply.send(Answer { status, payload: frame.slice_ref(payload) });
                                }
                                continue;
                            }
                        }
                        if !self.emit(Incoming::Frame(frame)).await {
                            let _ = ws.close(None).await;
                            return End::Gone;
                        }
                    }
                    Some(Ok(WsMessage::Close(frame))) => closed = Some(close_of(frame)),
                    Some(Ok(_)) => {}
                    Some(Err(_)) | None => {
                        let (code, reason) = closed
                            .take()
                            .unwrap_or((close_code::ABNORMAL_CLOSURE, String::new()));
                        return End::Closed { code, reason, local: leaving.is_some() };
                    }
                },
                // (Once the server closed, sends wait for what follows.)
                command = self.commands.recv(), if leaving.is_none() && closed.is_none() => match command {
                    Some(Command::Frame(frame)) => {
                        if ws.send(WsMessage::Binary(frame.clone())).await.is_err() {
                            self.enqueue(frame);
                            return lost("send failed");
                        }
                    }
                    Some(Command::Request { id, frame, reply }) => {
                        if ws.send(WsMessage::Binary(frame)).await.is_err() {
                            return lost("send failed");
                        }
                        // (Requests that timed out are forgotten here.)
                        self.pending.retain(|_, waiting| !waiting.is_closed());
                        self.pending.insert(id, reply);
                    }
                    Some(Command::Leave { consented: true }) => {
                        let leave = Bytes::from_static(&[protocol::LEAVE_ROOM]);
                        let _ = ws.send(WsMessage::Binary(leave)).await;
                        leaving = Some(Instant::now() + LEAVE_TIMEOUT);
                    }
                    Some(Command::Leave { consented: false }) => {
                        let _ = ws
                            .close(Some(CloseFrame { code: CloseCode::Normal, reason: "".into() }))
                            .await;
                        leaving = Some(Instant::now() + LEAVE_TIMEOUT);
                    }
                    None => {
                        let _ = ws.close(None).await;
                        return End::Gone;
                    }
                },
                () = self.events.closed() => {
                    // The room was dropped.
                    let _ = ws.close(None).await;
                    return End::Gone;
                }
                () = sleep_until(leaving.unwrap_or_else(Instant::now)), if leaving.is_some() => {
                    // The server did not close: end it here.
                    return End::Closed {
                        code: close_code::NORMAL_CLOSURE,
                        reason: "leave timed out".into(),
                        local: true,
                    };
                }
            }
        }
    }

    /// The reconnection loop; the new socket (acked), or `None` when the
    /// room ended (the room has then been told).
    async fn reconnect(&mut self) -> Option<WsStream> {
        for attempt in 1..=self.config.max_retries {
            let delay = self.config.delay_before(attempt);
            if !self.emit(Incoming::Reconnecting { attempt, delay }).await {
                return None;
            }
            let deadline = Instant::now() + delay;
            loop {
                tokio::select! {
                    () = sleep_until(deadline) => break,
                    command = self.commands.recv() => match command {
                        Some(Command::Frame(frame)) => self.enqueue(frame),
                        // Not connected: the request fails (as the SDK's).
                        Some(Command::Request { .. }) => {}
                        Some(Command::Leave { consented }) => {
                            let code = if consented {
                                close_code::CONSENTED
                            } else {
                                close_code::NORMAL_CLOSURE
                            };
                            self.finish(Incoming::Left { code, reason: String::new() }).await;
                            return None;
                        }
                        None => return None,
                    },
                }
            }
            let url = self.reconnect_url();
            tracing::debug!(attempt, %url, "reconnecting");
            // Boxed: inline, the handshake's state (~4 KiB) would sit in
            // every connection task's future for the whole session.
            let attempt_join = Box::pin(join(&url, &self.headers));
            match timeout(self.config.attempt_timeout, attempt_join).await {
                Ok(Ok((mut ws, frame))) => {
                    let Ok(ServerFrame::Join(handshake)) = protocol::parse(&frame) else {
                        continue;
                    };
                    let token = handshake.token.to_owned();
                    if ws.send(ack()).await.is_err() {
                        continue;
                    }
                    self.token.clone_from(&token);
                    if !self.emit(Incoming::Reconnected { token }).await {
                        return None;
                    }
                    return Some(ws);
                }
                Ok(Err(JoinFailure::Refused { code, message })) => {
                    self.emit(Incoming::Refused {
                        code,
                        message: message.clone(),
                    })
                    .await;
                    self.finish(Incoming::Left {
                        code: close_code::FAILED_TO_RECONNECT,
                        reason: message,
                    })
                    .await;
                    return None;
                }
                Ok(Err(JoinFailure::Closed { code, reason })) if !close_code::is_drop(code) => {
                    self.finish(Incoming::Left { code, reason }).await;
                    return None;
                }
                Ok(Err(_)) | Err(_) => {}
            }
        }
        self.finish(Incoming::Left {
            code: close_code::FAILED_TO_RECONNECT,
            reason: "No more retries. Reconnection failed.".into(),
        })
        .await;
        None
    }

    /// The join URL with `reconnectionToken` and `skipHandshake` set.
    fn reconnect_url(&self) -> String {
        let mut query = self.query.clone();
        for (key, value) in [
            ("reconnectionToken", self.token.as_str()),
            ("skipHandshake", "true"),
        ] {
            match query.iter_mut().find(|(k, _)| k == key) {
                Some(slot) => value.clone_into(&mut slot.1),
                None => query.push((key.to_owned(), value.to_owned())),
            }
        }
        url(&self.base_url, self.search_params.as_deref(), &query)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let q = vec![("sessionId".to_owned(), "s1".to_owned())];
        assert_eq!(url("ws://h/p/r", None, &q), "ws://h/p/r?sessionId=s1");
        assert_eq!(
            url("ws://h/p/r", Some("a=1"), &q),
            "ws://h/p/r?a=1&sessionId=s1"
        );
        let (_tx, commands) = mpsc::unbounded_channel();
        let (events, _rx) = mpsc::channel(1);
        let driver = Driver {
            commands,
            events,
            config: ReconnectionConfig::default(),
            base_url: "ws://h/p/r".into(),
            search_params: None,
            query: q,
            token: "t2".into(),
            joined_at: Instant::now(),
            buffer: VecDeque::new(),
            headers: Vec::new(),
            pending: HashMap::new(),
        };
        assert_eq!(
            driver.reconnect_url(),
            "ws://h/p/r?sessionId=s1&reconnectionToken=t2&skipHandshake=true"
        );
    }
}
