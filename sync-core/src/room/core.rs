//! [`RoomCore`]: the room as a sans-IO state machine.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::ctx::{Event, Lifecycle, Limits, ReconnectionError, RoomCtx, Slot, Status};
use super::io::{ConnId, Transmit, TransmitKind};
use super::{AuthRequest, Client, ClientId, Options, Room};
use crate::clock::Clock;
use crate::error::ServerError;
use crate::matchmaker::{generate_id, RoomListing};
use crate::msgpack::{self, Value};
use crate::presence::Presence;
use crate::protocol::{self, close_code, error_code, ClientFrame, Dialect, FrameError};
use crate::state::SyncState;

/// A client's WebSocket arrived for a room (room-protocol.md §3).
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct ConnectRequest {
    /// `sessionId` from the URL.
    pub session_id: String,
    /// `reconnectionToken` from the URL (the part after `roomId:`).
    pub reconnection_token: Option<String>,
    /// Whether the URL has `skipHandshake`.
    pub skip_handshake: bool,
    /// The dialect of the endpoint the client used.
    pub dialect: Dialect,
    /// What `on_auth` gets to see.
    pub auth: super::AuthRequest,
}

impl ConnectRequest {
    /// A request for `session_id` with everything else defaulted.
    #[must_use]
    pub fn new(session_id: impl Into<String>) -> Self {
        Self {
            session_id: session_id.into(),
            ..Self::default()
        }
    }
}

/// Why a seat could not be reserved.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SeatError {
    /// The room is locked or full.
    #[error("room is locked")]
    Locked,
    /// The room is being disposed.
    #[error("room is disposing")]
    Disposing,
    /// No dropped client holds this reconnection token.
    #[error("reconnection token is invalid or expired")]
    InvalidToken,
}

/// The room state machine, fed with events by a shell.
///
/// It owns the room's clients, seats, settings and state encoder, never
/// touches a socket or the system clock, and queues what it wants done.
/// Call order: [`handle_reserve_seat`](Self::handle_reserve_seat) (HTTP
/// matchmaking), then [`handle_connect`](Self::handle_connect) when the
/// WebSocket arrives, [`handle_frame`](Self::handle_frame) per frame,
/// [`handle_disconnect`](Self::handle_disconnect) when it closes, and
/// [`handle_timeout`](Self::handle_timeout) whenever
/// [`poll_timeout`](Self::poll_timeout) is reached. After each call, the
/// shell runs the user hooks the core asks for (the crate's driver does
/// this) and drains [`poll_transmit`](Self::poll_transmit) and
/// [`poll_listing`](Self::poll_listing).
pub struct RoomCore<R: Room> {
    pub(crate) ctx: RoomCtx<R>,
}

impl<R: Room> std::fmt::Debug for RoomCore<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RoomCore").field("ctx", &self.ctx).finish()
    }
}

/// The default seat reservation time: `COLYSEUS_SEAT_RESERVATION_TIME`
/// seconds, or 15.
pub(crate) fn default_seat_reservation_time() -> Duration {
    seat_reservation_time(
        std::env::var("COLYSEUS_SEAT_RESERVATION_TIME")
            .ok()
            .as_deref(),
    )
}

fn seat_reservation_time(env: Option<&str>) -> Duration {
    env.and_then(|v| v.trim().parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s > 0.0 && *s < 1e9)
        .map_or(Duration::from_secs(15), Duration::from_secs_f64)
}

impl<R: Room> RoomCore<R> {
    /// A new room named `room_name` (by its definition), with a fresh id.
    pub fn new(now: Instant, room_name: &str, presence: Arc<dyn Presence>) -> Self {
        Self {
            ctx: RoomCtx {
                now,
                room_id: generate_id(9),
                room_name: room_name.into(),
                lifecycle: Lifecycle::Creating { disconnect: false },
                state: R::initial_state(),
                no_auth: R::Auth::default(),
                slots: BTreeMap::new(),
                sessions: HashMap::new(),
                conns: HashMap::new(),
                next_client: 0,
                max_clients: None,
                locked_explicit: false,
                locked_full: false,
                private: false,
                unlisted: false,
                metadata: serde_json::Value::Null,
                auto_dispose: true,
                first_client_by: None,
                seat_reservation_time: default_seat_reservation_time(),
                patch_rate: Some(Duration::from_millis(50)),
                next_patch: Some(now + Duration::from_millis(50)),
                simulation: None,
                clock: Clock::new(now),
                handlers: HashMap::new(),
                calls: HashMap::new(),
                any_handler: None,
                outbox: VecDeque::new(),
                syncing: Vec::new(),
                after_patch: Vec::new(),
                events: VecDeque::new(),
                spawned: Vec::new(),
                listing_changed: true,
                presence,
                store: Arc::new(crate::matchmaker::LocalStore::default()),
                #[cfg(feature = "server")]
                matchmaker: crate::Matchmaker::default(),
                limits: Limits::default(),
                mailbox: super::task::Mailbox::default(),
            },
        }
    }

    /// Uses `store` for [`RoomCtx::store`] (default: an empty in-process
    /// one).
    pub fn set_store(&mut self, store: Arc<dyn crate::ListingStore>) {
        self.ctx.store = store;
    }

    /// Uses `matchmaker` for [`RoomCtx::matchmaker`] (default: one of no
    /// server, whose calls fail). The server sets its own.
    #[cfg(feature = "server")]
    pub fn set_matchmaker(&mut self, matchmaker: crate::Matchmaker) {
        self.ctx.matchmaker = matchmaker;
    }

    /// Sets how long a client may take to acknowledge JOIN_ROOM (default
    /// 10 s). One that does not is closed with ERROR
    /// [`JOIN_NOT_ACKNOWLEDGED`](crate::protocol::error_code::JOIN_NOT_ACKNOWLEDGED)
    /// and 4002: an SDK of the other protocol generation cannot decode
    /// the JOIN_ROOM of this endpoint's dialect, and the error says so.
    pub fn set_join_ack_timeout(&mut self, timeout: Duration) {
        self.ctx.limits.join_ack_timeout = timeout;
    }

    /// Sets the largest client frame accepted (default 64 KiB).
    pub fn set_max_frame_bytes(&mut self, max: usize) {
        self.ctx.limits.max_frame_bytes = max;
    }

    /// Sets how many frames per second a client may send (default
    /// unlimited); beyond it the client gets an error and is closed (4002).
    pub fn set_max_messages_per_second(&mut self, max: Option<u32>) {
        self.ctx.limits.max_messages_per_second = max;
    }

    /// The room's context, as hooks see it.
    #[must_use]
    pub fn ctx(&self) -> &RoomCtx<R> {
        &self.ctx
    }

    /// The room's context, for changes.
    pub fn ctx_mut(&mut self) -> &mut RoomCtx<R> {
        &mut self.ctx
    }

    /// Whether the room is gone (after `on_dispose`).
    #[must_use]
    pub fn is_disposed(&self) -> bool {
        self.ctx.lifecycle == Lifecycle::Disposed
    }

    fn set_now(&mut self, now: Instant) {
        self.ctx.now = self.ctx.now.max(now);
        self.ctx.clock.set_now(now);
    }

    /// Reserves a seat for a new client with its join options; returns its
    /// session id.
    ///
    /// # Errors
    ///
    /// [`SeatError::Locked`] when locked or full, [`SeatError::Disposing`]
    /// when the room is going away.
    pub fn handle_reserve_seat(
        &mut self,
        now: Instant,
        options: Options,
    ) -> Result<String, SeatError> {
        self.set_now(now);
        if self.ctx.locked() && !self.ctx.lifecycle.is_disposing() {
            return Err(SeatError::Locked);
        }
        let session_id = generate_id(9);
        self.handle_seat_taken(now, &session_id, options)?;
        Ok(session_id)
    }

    /// Reserves the seat `session_id` that matchmaking already counted in
    /// the listing store: the store checked that the room had a free seat,
    /// so only a room going away refuses it.
    ///
    /// # Errors
    ///
    /// [`SeatError::Disposing`] when the room is going away.
    pub fn handle_seat_taken(
        &mut self,
        now: Instant,
        session_id: &str,
        options: Options,
    ) -> Result<(), SeatError> {
        self.set_now(now);
        if self.ctx.lifecycle.is_disposing() {
            return Err(SeatError::Disposing);
        }
        let session_id: Arc<str> = session_id.into();
        if self.ctx.sessions.contains_key(&session_id) {
            return Ok(());
        }
        let id = ClientId(self.ctx.next_client);
        self.ctx.next_client += 1;
        self.ctx.slots.insert(
            id,
            Slot {
                session_id: session_id.clone(),
                status: Status::Reserved,
                conn: None,
                dialect: Dialect::Modern,
                expires: Some(now + self.ctx.seat_reservation_time),
                options,
                token: String::new(),
                user_data: R::UserData::default(),
                auth: R::Auth::default(),
                pending: Vec::new(),
                syncing: false,
                rate: (now, 0),
                skip_handshake: false,
                waiter: None,
                leave_on_failure: false,
                consented: false,
                close_code: 0,
                auth_request: None,
                view: None,
            },
        );
        self.ctx.sessions.insert(session_id, id);
        self.ctx.update_full_lock();
        Ok(())
    }

    /// Whether a seat (reserved, joined or awaiting reconnection) has this
    /// session id.
    #[must_use]
    pub fn has_session(&self, session_id: &str) -> bool {
        self.ctx.sessions.contains_key(session_id)
    }

    /// `POST /matchmake/reconnect`: returns the session id holding
    /// `token`, if it may reconnect.
    ///
    /// # Errors
    ///
    /// [`SeatError::InvalidToken`] when no client holds that token.
    pub fn handle_reconnect_request(
        &mut self,
        now: Instant,
        token: &str,
    ) -> Result<String, SeatError> {
        self.set_now(now);
        self.ctx
            .slots
            .values()
            .find(|s| {
                !s.token.is_empty()
                    && s.token == token
                    && matches!(
                        s.status,
                        Status::Reconnecting | Status::AwaitingAck | Status::Joined
                    )
            })
            .map(|s| s.session_id.to_string())
            .ok_or(SeatError::InvalidToken)
    }

    /// A connection arrived for a reserved seat.
    pub fn handle_connect(&mut self, now: Instant, conn: ConnId, request: ConnectRequest) {
        self.set_now(now);
        let id = self.ctx.sessions.get(request.session_id.as_str()).copied();
        let accepted = id.and_then(|id| {
            let slot = self.ctx.slots.get(&id)?;
            let token_matches = request
                .reconnection_token
                .as_deref()
                .is_some_and(|t| !slot.token.is_empty() && t == slot.token);
            let ok = match slot.status {
                Status::Reserved => slot.expires.is_none_or(|e| e > now),
                // Joined/AwaitingAck: a stale socket the server has not
                // noticed closing yet.
                Status::Reconnecting | Status::AwaitingAck | Status::Joined => token_matches,
                _ => false,
            };
            ok.then_some((id, slot.status))
        });
        let Some((id, status)) = accepted else {
            tracing::debug!(
                room = %self.ctx.room_id,
                session = %request.session_id,
                known = id.is_some(),
                "connection refused: no valid seat"
            );
            let [error, close] = refuse_seat(request.dialect, request.reconnection_token.is_some());
            self.ctx.transmit(conn, error);
            self.ctx.transmit(conn, close);
            return;
        };
        let slot = self.ctx.slots.get_mut(&id).expect("checked above");
        if let Some(old) = slot.conn.replace(conn) {
            // Take over from the stale socket, silently.
            self.ctx.conns.remove(&old);
            self.ctx.outbox.push_back(Transmit {
                conn: old,
                kind: TransmitKind::Close(close_code::WITH_ERROR),
            });
        }
        slot.dialect = request.dialect;
        slot.skip_handshake = request.skip_handshake;
        slot.rate = (now, 0);
        self.ctx.conns.insert(conn, id);
        match status {
            Status::Reserved => {
                slot.status = Status::Authenticating;
                slot.expires = None;
                slot.auth_request = Some(request.auth);
                self.ctx.events.push_back(Event::Auth(id));
            }
            _ => {
                let waiter = slot.waiter.take();
                slot.expires = None;
                slot.pending.clear();
                self.send_join_room(id);
                if let (Some(waiter), Some(client)) = (waiter, self.ctx.client_handle(id)) {
                    let _ = waiter.send(Ok(client));
                }
                self.ctx.events.push_back(Event::Reconnect(id));
                self.ctx.update_full_lock();
            }
        }
    }

    fn reject_conn(&mut self, conn: ConnId, dialect: Dialect, error: &ServerError, close: u16) {
        self.ctx.transmit(conn, error_frame(dialect, error));
        self.ctx.transmit(conn, TransmitKind::Close(close));
    }

    fn send_join_room(&mut self, id: ClientId) {
        let token = generate_id(9);
        let state = self.ctx.state.as_ref();
        let Some(slot) = self.ctx.slots.get_mut(&id) else {
            return;
        };
        let Some(conn) = slot.conn else {
            return;
        };
        slot.token = token;
        slot.status = Status::AwaitingAck;
        slot.syncing = false;
        slot.expires = Some(self.ctx.now + self.ctx.limits.join_ack_timeout);
        let serializer = state.map_or("none", SyncState::serializer_id);
        let handshake = match state {
            Some(state) if !slot.skip_handshake => Some(state.handshake(slot.dialect)),
            _ => None,
        };
        let frame =
            protocol::encode_join_room(slot.dialect, &slot.token, serializer, handshake.as_deref());
        self.ctx.transmit(conn, TransmitKind::Frame(frame));
    }

    /// One frame from a connection.
    pub fn handle_frame(&mut self, now: Instant, conn: ConnId, frame: &[u8]) {
        self.set_now(now);
        let Some(&id) = self.ctx.conns.get(&conn) else {
            return;
        };
        let Some(slot) = self.ctx.slots.get_mut(&id) else {
            return;
        };
        let status = slot.status;
        if frame.len() > self.ctx.limits.max_frame_bytes {
            self.refuse_oversized(id, frame.len());
            return;
        }
        if let Some(max) = self.ctx.limits.max_messages_per_second {
            if now.saturating_duration_since(slot.rate.0) >= Duration::from_secs(1) {
                slot.rate = (now, 0);
            }
            slot.rate.1 += 1;
            if slot.rate.1 > max {
                self.fail_client(id, &format!("more than {max} messages per second"));
                return;
            }
        }
        let parsed = match protocol::parse_client_frame(frame) {
            Ok(parsed) => parsed,
            Err(FrameError::UnknownCode(code)) => {
                // The reference ignores unknown codes; say so, keep the client.
                tracing::warn!(room = %self.ctx.room_id, "client sent unknown protocol code {code:#04x}");
                self.ctx.transmit(
                    conn,
                    TransmitKind::Frame(protocol::encode_error(
                        error_code::INVALID_PAYLOAD,
                        &format!("unknown protocol code 0x{code:02x}"),
                    )),
                );
                return;
            }
            Err(e) => {
                self.fail_client(id, &e.to_string());
                return;
            }
        };
        match parsed {
            ClientFrame::JoinAck => {
                if status == Status::AwaitingAck {
                    self.complete_join(id);
                }
            }
            ClientFrame::Leave => {
                if matches!(status, Status::AwaitingAck | Status::Joined) {
                    self.ctx.kick(id, close_code::CONSENTED, true);
                }
            }
            ClientFrame::Ping => self
                .ctx
                .transmit(conn, TransmitKind::Frame(protocol::encode_ping())),
            ClientFrame::Data { ty, payload } => self.queue_message(id, status, ty, payload, None),
            ClientFrame::Request {
                id: request,
                ty,
                payload,
            } => {
                self.queue_message(id, status, ty, payload, Some(request));
            }
            ClientFrame::DataBytes { ty, payload } => {
                if status != Status::Joined {
                    self.fail_client(id, "message sent before the JOIN_ROOM acknowledgement");
                    return;
                }
                self.ctx.events.push_back(Event::Message {
                    client: id,
                    ty,
                    payload: Value::Bin(payload.to_vec()),
                    request: None,
                });
            }
        }
    }

    /// A frame of `len` bytes the shell did not read (over its own limit,
    /// twice the room's): refused as any frame over the room's limit
    /// (ERROR 4217, then a close with 4002).
    pub fn handle_oversized_frame(&mut self, now: Instant, conn: ConnId, len: usize) {
        self.set_now(now);
        if let Some(&id) = self.ctx.conns.get(&conn) {
            self.refuse_oversized(id, len);
        }
    }

    fn refuse_oversized(&mut self, id: ClientId, len: usize) {
        let message = format!(
            "frame of {len} bytes exceeds the limit of {} bytes",
            self.ctx.limits.max_frame_bytes
        );
        self.fail_client(id, &message);
    }

    fn queue_message(
        &mut self,
        id: ClientId,
        status: Status,
        ty: protocol::MessageType,
        payload: &[u8],
        request: Option<u32>,
    ) {
        if status != Status::Joined {
            self.fail_client(id, "message sent before the JOIN_ROOM acknowledgement");
            return;
        }
        let payload = if payload.is_empty() {
            Value::Undefined
        } else {
            match msgpack::decode(payload) {
                Ok(v) => v,
                Err(e) => {
                    let message = format!("message {ty}: {e}");
                    match request {
                        // A request's bad payload is answered, like the reference does.
                        Some(request) => {
                            let body = serde_json::json!({ "name": "invalid_payload", "message": message });
                            let payload = msgpack::to_vec(&body).unwrap_or_default();
                            let frame = protocol::encode_response(
                                request,
                                protocol::ResponseStatus::Error,
                                &payload,
                            );
                            self.ctx.enqueue(id, frame);
                        }
                        None => self.fail_client(id, &message),
                    }
                    return;
                }
            }
        };
        self.ctx.events.push_back(Event::Message {
            client: id,
            ty,
            payload,
            request,
        });
    }

    /// Sends ERROR(4217, message) and closes the client with 4002.
    pub(crate) fn fail_client(&mut self, id: ClientId, message: &str) {
        tracing::warn!(room = %self.ctx.room_id, "closing client: {message}");
        if let Some(conn) = self.ctx.slots.get(&id).and_then(|s| s.conn) {
            self.ctx.transmit(
                conn,
                TransmitKind::Frame(protocol::encode_error(error_code::INVALID_PAYLOAD, message)),
            );
        }
        self.ctx.kick(id, close_code::WITH_ERROR, false);
    }

    /// A client that did not acknowledge JOIN_ROOM in time: most likely an
    /// SDK of the other protocol generation, which could not decode it
    /// (and only logged a decoder error). It gets an ERROR saying so, which
    /// rejects its join, and a close with 4002.
    fn fail_unacknowledged(&mut self, id: ClientId) {
        let Some(slot) = self.ctx.slots.get(&id) else {
            return;
        };
        let waited = self.ctx.limits.join_ack_timeout;
        let message = match slot.dialect {
            Dialect::Modern => format!(
                "the client did not acknowledge joining within {waited:?}: this endpoint speaks \
                 the Colyseus 0.18 protocol (@colyseus/sdk 0.17/0.18), which a colyseus.js 0.16 \
                 client cannot decode; connect 0.16 clients to the server's 0.16 endpoint"
            ),
            Dialect::Legacy => format!(
                "the client did not acknowledge joining within {waited:?}: this endpoint speaks \
                 the Colyseus 0.16 protocol (colyseus.js 0.16), which an @colyseus/sdk 0.17/0.18 \
                 client cannot decode; connect 0.18 clients to the server's 0.18 endpoint"
            ),
        };
        tracing::warn!(room = %self.ctx.room_id, session = %slot.session_id, "closing client: {message}");
        if let Some(conn) = slot.conn {
            let error = ServerError::new(error_code::JOIN_NOT_ACKNOWLEDGED, message);
            self.ctx.transmit(conn, error_frame(slot.dialect, &error));
        }
        self.ctx.kick(id, close_code::WITH_ERROR, false);
    }

    /// The client acknowledged JOIN_ROOM: it is joined, and its full state
    /// goes out with the next transmits ([`finish_joins`](Self::finish_joins)).
    fn complete_join(&mut self, id: ClientId) {
        let Some(slot) = self.ctx.slots.get_mut(&id) else {
            return;
        };
        slot.status = Status::Joined;
        slot.expires = None;
        slot.syncing = true;
        self.ctx.syncing.push(id);
    }

    /// Sends the clients that acknowledged JOIN_ROOM since the last call
    /// their full state, then what was queued for them. The full state is
    /// taken at a patch boundary (schema-wire.md §15.1: pending changes go
    /// to the others first), and encoded once per dialect for all of them.
    fn finish_joins(&mut self) {
        let joiners = std::mem::take(&mut self.ctx.syncing);
        if self.ctx.state.is_some() {
            self.ctx.broadcast_patch();
        }
        // Per dialect: the shared full state's body and frame.
        let mut full: [Option<(Bytes, Bytes)>; 2] = [None, None];
        for id in joiners {
            let Some(slot) = self.ctx.slots.get_mut(&id) else {
                continue;
            };
            if !std::mem::take(&mut slot.syncing) {
                continue;
            }
            let pending = std::mem::take(&mut slot.pending);
            let (Status::Joined, Some(conn)) = (slot.status, slot.conn) else {
                continue;
            };
            let (dialect, view) = (slot.dialect, slot.view);
            if let Some(state) = self.ctx.state.as_mut() {
                let (body, frame) = full[dialect as usize].get_or_insert_with(|| {
                    let body = state.encode_full(dialect);
                    let frame = protocol::encode_state(true, &body);
                    (body, frame)
                });
                // A client with a view: the shared full state, then its
                // view's full part.
                let own = view.map(|v| state.encode_full_view(v)).unwrap_or_default();
                let frame = if own.is_empty() {
                    frame.clone()
                } else {
                    protocol::encode_state_parts(true, body, &own)
                };
                self.ctx.transmit(conn, TransmitKind::Frame(frame));
            }
            for frame in pending {
                self.ctx.transmit(conn, TransmitKind::Frame(frame));
            }
        }
    }

    /// A connection closed (`code` from the client's close frame, if any).
    pub fn handle_disconnect(&mut self, now: Instant, conn: ConnId, code: Option<u16>) {
        self.set_now(now);
        let Some(id) = self.ctx.conns.remove(&conn) else {
            return;
        };
        let Some(slot) = self.ctx.slots.get_mut(&id) else {
            return;
        };
        slot.conn = None;
        match slot.status {
            Status::Authenticating | Status::Joining => self.ctx.remove_slot(id),
            Status::AwaitingAck | Status::Joined => {
                let code = code.unwrap_or(1006);
                slot.close_code = code;
                if code == close_code::CONSENTED {
                    slot.status = Status::Leaving;
                    slot.consented = true;
                    self.ctx.events.push_back(Event::Leave { client: id, code });
                } else {
                    slot.status = Status::Dropping;
                    self.ctx.events.push_back(Event::Drop { client: id, code });
                }
                self.ctx.update_full_lock();
            }
            _ => {}
        }
    }

    /// Fires what is due at `now`: seat expiries, timers, the simulation
    /// tick and the patch tick.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.set_now(now);
        let expired: Vec<(ClientId, Status)> = self
            .ctx
            .slots
            .iter()
            .filter(|(_, s)| s.expires.is_some_and(|e| e <= now))
            .map(|(id, s)| (*id, s.status))
            .collect();
        for (id, status) in expired {
            match status {
                Status::Reserved => self.ctx.remove_slot(id),
                Status::Reconnecting => self.ctx.fail_reconnection(id, ReconnectionError::Timeout),
                Status::AwaitingAck => self.fail_unacknowledged(id),
                _ => {}
            }
        }
        if self.ctx.first_client_by.is_some_and(|by| by <= now) {
            self.ctx.first_client_by = None;
            self.ctx.check_dispose();
        }
        for timer in self.ctx.clock.due(now) {
            self.ctx.events.push_back(Event::Timer(timer));
        }
        if let Some(sim) = self.ctx.simulation.as_mut() {
            if sim.next <= now {
                let delta = now.saturating_duration_since(sim.last);
                sim.last = now;
                sim.next += sim.interval;
                if sim.next <= now {
                    sim.next = now + sim.interval;
                }
                self.ctx.events.push_back(Event::Simulation(delta));
            }
        }
        if let (Some(next), Some(rate)) = (self.ctx.next_patch, self.ctx.patch_rate) {
            if next <= now {
                let mut next = next + rate;
                if next <= now {
                    next = now + rate;
                }
                self.ctx.next_patch = Some(next);
                self.ctx.events.push_back(Event::Patch);
            }
        }
    }

    /// When [`handle_timeout`](Self::handle_timeout) must next be called.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.ctx.lifecycle == Lifecycle::Disposed {
            return None;
        }
        let expiries = self.ctx.slots.values().filter_map(|s| s.expires);
        let sim = self.ctx.simulation.as_ref().map(|s| s.next);
        expiries
            .chain(self.ctx.first_client_by)
            .chain(self.ctx.clock.next_due())
            .chain(sim)
            .chain(
                self.ctx
                    .next_patch
                    .filter(|_| self.ctx.patch_rate.is_some()),
            )
            .min()
    }

    /// The next thing to do on a connection.
    #[must_use]
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        if !self.ctx.syncing.is_empty() {
            self.finish_joins();
        }
        self.ctx.outbox.pop_front()
    }

    /// The room's listing, when it changed since the last call.
    #[must_use]
    pub fn poll_listing(&mut self) -> Option<RoomListing> {
        if !std::mem::take(&mut self.ctx.listing_changed) {
            return None;
        }
        Some(self.listing())
    }

    /// The room's current listing, as the room sees it (the shell fills
    /// in the process, the creation time and the filter values).
    #[must_use]
    pub fn listing(&self) -> RoomListing {
        RoomListing {
            room_id: self.ctx.room_id.clone(),
            name: self.ctx.room_name.to_string(),
            process_id: String::new(),
            public_address: None,
            clients: self.ctx.seats_taken(),
            max_clients: self.ctx.max_clients,
            locked: self.ctx.locked(),
            private: self.ctx.private,
            unlisted: self.ctx.unlisted,
            metadata: self.ctx.metadata.clone(),
            created_at: 0,
            filters: serde_json::Map::new(),
        }
    }

    // ----- driver interface -----------------------------------------------

    pub(crate) fn poll_event(&mut self) -> Option<Event> {
        self.ctx.events.pop_front()
    }

    pub(crate) fn finish_create(&mut self) {
        if let Lifecycle::Creating { disconnect } = self.ctx.lifecycle {
            self.ctx.lifecycle = if disconnect {
                Lifecycle::Disconnecting
            } else {
                Lifecycle::Open
            };
        }
        self.ctx.listing_changed = true;
        // A room nobody joins goes after the seat reservation time, as in
        // Colyseus (a room made by `Matchmaker::create_room` and never
        // joined, or whose first seat was never used).
        self.ctx.first_client_by = Some(self.ctx.now + self.ctx.seat_reservation_time);
    }

    pub(crate) fn auth_input(&mut self, id: ClientId) -> Option<(Client, Options, AuthRequest)> {
        let client = self.ctx.client_handle(id)?;
        let slot = self.ctx.slots.get_mut(&id)?;
        if slot.status != Status::Authenticating || slot.conn.is_none() {
            return None;
        }
        let request = slot.auth_request.take().unwrap_or_default();
        Some((client, slot.options.clone(), request))
    }

    pub(crate) fn finish_auth(&mut self, id: ClientId, result: Result<R::Auth, ServerError>) {
        let Some(slot) = self.ctx.slots.get_mut(&id) else {
            return;
        };
        if slot.status != Status::Authenticating {
            return;
        }
        match result {
            Ok(auth) => {
                slot.auth = auth;
                slot.status = Status::Joining;
                self.ctx.events.push_back(Event::Join(id));
            }
            Err(error) => self.refuse(id, &error),
        }
    }

    pub(crate) fn join_input(&self, id: ClientId) -> Option<(Client, Options)> {
        let slot = self.ctx.slots.get(&id)?;
        if slot.status != Status::Joining {
            return None;
        }
        Some((self.ctx.client_handle(id)?, slot.options.clone()))
    }

    pub(crate) fn finish_join(&mut self, id: ClientId, result: Result<(), ServerError>) {
        let Some(slot) = self.ctx.slots.get_mut(&id) else {
            return;
        };
        if slot.status != Status::Joining {
            return;
        }
        match result {
            Ok(()) if slot.conn.is_some() => {
                slot.options = Options::Null;
                self.send_join_room(id);
            }
            Ok(()) => {
                // Dropped while `on_join` ran: it joined, so it must leave.
                slot.status = Status::Dropping;
                slot.close_code = 1006;
                self.ctx.events.push_back(Event::Drop {
                    client: id,
                    code: 1006,
                });
            }
            Err(error) => self.refuse(id, &error),
        }
    }

    fn refuse(&mut self, id: ClientId, error: &ServerError) {
        if let Some((conn, dialect)) = self
            .ctx
            .slots
            .get(&id)
            .and_then(|s| Some((s.conn?, s.dialect)))
        {
            self.reject_conn(conn, dialect, error, close_code::WITH_ERROR);
        }
        self.ctx.remove_slot(id);
    }

    pub(crate) fn finish_drop(&mut self, id: ClientId) {
        let Some(slot) = self.ctx.slots.get_mut(&id) else {
            return;
        };
        if slot.status == Status::Dropping {
            slot.status = Status::Leaving;
            self.ctx.events.push_back(Event::Leave {
                client: id,
                code: slot.close_code,
            });
        }
    }

    pub(crate) fn finish_leave(&mut self, id: ClientId) {
        let Some(slot) = self.ctx.slots.get(&id) else {
            return;
        };
        if slot.status == Status::Leaving {
            self.ctx.remove_slot(id);
        }
    }

    pub(crate) fn finish_dispose(&mut self) {
        self.ctx.lifecycle = Lifecycle::Disposed;
        self.ctx.clock.clear_all();
        self.ctx.simulation = None;
        let ids: Vec<ClientId> = self.ctx.slots.keys().copied().collect();
        for id in ids {
            if let Some(waiter) = self.ctx.slots.get_mut(&id).and_then(|s| s.waiter.take()) {
                let _ = waiter.send(Err(ReconnectionError::Disposed));
            }
            if let Some(conn) = self.ctx.slots.get(&id).and_then(|s| s.conn) {
                self.ctx
                    .transmit(conn, TransmitKind::Close(close_code::CONSENTED));
            }
        }
        self.ctx.slots.clear();
        self.ctx.sessions.clear();
        self.ctx.conns.clear();
    }
}

/// ERROR for a client of `dialect` (0.16 numbers its matchmaking codes 42xx).
fn error_frame(dialect: Dialect, error: &ServerError) -> TransmitKind {
    let code = match dialect {
        Dialect::Modern => error.code,
        Dialect::Legacy => error_code::legacy(error.code),
    };
    TransmitKind::Frame(protocol::encode_error(code, &error.message))
}

/// What a connection without a valid seat gets: ERROR 524, then a close
/// with 4002, or 4003 for a 0.18 client that was reconnecting
/// (room-protocol.md §3, §7).
pub(crate) fn refuse_seat(dialect: Dialect, reconnecting: bool) -> [TransmitKind; 2] {
    let close = if reconnecting && dialect == Dialect::Modern {
        close_code::FAILED_TO_RECONNECT
    } else {
        close_code::WITH_ERROR
    };
    [
        error_frame(dialect, &ServerError::expired()),
        TransmitKind::Close(close),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `disconnect` from `on_create` leaves the room disconnecting once
    /// created: no reconnection, gone once empty even without
    /// `auto_dispose`, then no seat and no timeout.
    #[test]
    fn lifecycle_of_a_room_disconnected_in_on_create() {
        let now = Instant::now();
        let presence = Arc::new(crate::LocalPresence::default());
        let mut core = RoomCore::<crate::RelayRoom>::new(now, "relay", presence);
        assert_eq!(
            core.ctx.lifecycle,
            Lifecycle::Creating { disconnect: false }
        );
        assert!(core.ctx.set_room_id("named").is_ok());
        core.ctx.set_auto_dispose(false);
        core.ctx.disconnect(None);
        assert_eq!(core.ctx.lifecycle, Lifecycle::Creating { disconnect: true });
        assert!(core.ctx.lifecycle.is_disconnecting());
        // Not disposed while creating, though empty.
        assert!(core.ctx.events.is_empty());
        core.finish_create();
        assert_eq!(core.ctx.lifecycle, Lifecycle::Disconnecting);
        assert!(core.ctx.set_room_id("late").is_err());
        core.ctx.check_dispose();
        assert_eq!(core.ctx.lifecycle, Lifecycle::Disposing);
        assert!(matches!(core.ctx.events.pop_front(), Some(Event::Dispose)));
        assert!(matches!(
            core.handle_seat_taken(now, "s", Options::Null),
            Err(SeatError::Disposing)
        ));
        assert!(!core.is_disposed());
        core.finish_dispose();
        assert!(core.is_disposed());
        assert_eq!(core.poll_timeout(), None);
        // A late disconnect does not bring the room back.
        core.ctx.disconnect(None);
        assert_eq!(core.ctx.lifecycle, Lifecycle::Disposed);
    }

    /// An open room goes when empty only with `auto_dispose`.
    #[test]
    fn an_open_room_goes_when_empty_with_auto_dispose() {
        let now = Instant::now();
        let presence = Arc::new(crate::LocalPresence::default());
        let mut core = RoomCore::<crate::RelayRoom>::new(now, "relay", presence);
        core.finish_create();
        assert_eq!(core.ctx.lifecycle, Lifecycle::Open);
        assert!(!core.ctx.lifecycle.is_disconnecting());
        core.ctx.set_auto_dispose(false);
        assert_eq!(core.ctx.lifecycle, Lifecycle::Open);
        core.ctx.set_auto_dispose(true);
        assert_eq!(core.ctx.lifecycle, Lifecycle::Disposing);
    }

    #[test]
    fn seat_reservation_time_from_the_environment() {
        assert_eq!(seat_reservation_time(None), Duration::from_secs(15));
        assert_eq!(seat_reservation_time(Some("30")), Duration::from_secs(30));
        assert_eq!(
            seat_reservation_time(Some(" 0.5 ")),
            Duration::from_millis(500)
        );
        for bad in ["", "x", "-1", "0", "NaN", "inf"] {
            assert_eq!(
                seat_reservation_time(Some(bad)),
                Duration::from_secs(15),
                "{bad}"
            );
        }
    }
}
