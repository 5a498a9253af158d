//! The entry point (`Client.ts`): matchmaking, then the room's WebSocket.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use serde::Serialize;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message as WsMessage;

use crate::connection::{self, Driver, JoinFailure, EVENT_CAPACITY};
use crate::error::{EndpointError, ErrorCode, JoinError, LatencyError, RequestError};
use crate::http::{self, Endpoint, RequestSettings, RoomAvailable, SeatReservation};
use crate::protocol::{self, ServerFrame};
use crate::reconnection::ReconnectionConfig;
use crate::room::{Joined, Room};
use crate::state::RoomState;

#[derive(Debug, Clone)]
struct Settings {
    endpoint: Endpoint,
    request: RequestSettings,
    reconnection: ReconnectionConfig,
    join_timeout: Option<Duration>,
}

/// A client of one Colyseus server (`new Client(endpoint)` of the SDK).
/// Cheap to clone; needs a tokio runtime (with the `time` and `net`
/// drivers) for its calls.
///
/// Each join method makes the matchmaking call (spec `room-protocol.md`
/// §2), opens the room's WebSocket and returns once the room's JOIN_ROOM
/// handshake arrived (and was acknowledged), as the SDK's promise
/// resolves: the state arrives with the first [`Room::recv`] calls.
///
/// # Examples
///
/// ```no_run
/// use roomcast_client::{Client, ErrorCode, JoinError};
/// use roomcast_schema::{MapSchema, Schema};
///
/// #[derive(Schema, Default, Debug)]
/// #[schema(decode)]
/// struct Player { name: String, x: f32, y: f32 }
///
/// #[derive(Schema, Default, Debug)]
/// #[schema(decode)]
/// struct World { players: MapSchema<Player>, chat: roomcast_schema::ArraySchema<String>, width: u16, height: u16 }
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let client = Client::new("http://127.0.0.1:2567")?;
/// match client.join::<World>("world", &serde_json::json!({ "name": "ana" })).await {
///     Ok(mut room) => {
///         room.recv().await; // the full state
///         println!("{} players", room.state().players.len());
///     }
///     Err(e) if e.code() == Some(ErrorCode::InvalidCriteria) => println!("no room to join"),
///     Err(e) => return Err(e.into()),
/// }
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct Client {
    settings: Arc<Settings>,
}

impl Client {
    /// A client of the server at `endpoint`: `http://host[:port][/path][?query]`
    /// (or `ws://…`; port 80 by default). The path prefixes every URL, the
    /// query is appended to every URL (the SDK's `searchParams`).
    ///
    /// # Errors
    ///
    /// The endpoint is malformed, or uses TLS (`https`, `wss`), which this
    /// client does not have.
    ///
    /// # Examples
    ///
    /// ```
    /// let client = roomcast_client::Client::new("http://127.0.0.1:2567")?;
    /// assert!(roomcast_client::Client::new("https://example.com").is_err());
    /// # Ok::<(), roomcast_client::EndpointError>(())
    /// ```
    pub fn new(endpoint: &str) -> Result<Self, EndpointError> {
        Ok(Self {
            settings: Arc::new(Settings {
                endpoint: Endpoint::parse(endpoint)?,
                request: RequestSettings {
                    timeout: Some(Duration::from_secs(30)),
                    ..RequestSettings::default()
                },
                reconnection: ReconnectionConfig::default(),
                join_timeout: Some(Duration::from_secs(30)),
            }),
        })
    }

    /// Sends `token` with every call: `Authorization: Bearer <token>` on
    /// matchmaking calls, `_authToken=<token>` on the WebSocket URL (the
    /// SDK's `client.auth.token`).
    #[must_use]
    pub fn with_auth_token(mut self, token: impl Into<String>) -> Self {
        Arc::make_mut(&mut self.settings).request.auth_token = Some(token.into());
        self
    }

    /// Adds a header to every matchmaking call and WebSocket request (the
    /// SDK's `headers` option).
    ///
    /// # Panics
    ///
    /// `name` or `value` is not a valid HTTP header name / value.
    #[must_use]
    pub fn with_header(mut self, name: &str, value: &str) -> Self {
        assert!(
            http::valid_header(name, value),
            "invalid header {name:?}: {value:?}"
        );
        Arc::make_mut(&mut self.settings)
            .request
            .headers
            .push((name.to_owned(), value.to_owned()));
        self
    }

    /// How the rooms joined from now on reconnect by themselves.
    #[must_use]
    pub fn with_reconnection(mut self, config: ReconnectionConfig) -> Self {
        Arc::make_mut(&mut self.settings).reconnection = config;
        self
    }

    /// Limits each matchmaking call and each join handshake to `limit`
    /// (`None`: no limit; default 30 s).
    #[must_use]
    pub fn with_timeout(mut self, limit: Option<Duration>) -> Self {
        let settings = Arc::make_mut(&mut self.settings);
        settings.request.timeout = limit;
        settings.join_timeout = limit;
        self
    }

    /// Joins a room named `room_name` that has a free seat and whose
    /// filters match, or creates one. `options` is serialized to JSON (`()`
    /// sends `{}`).
    ///
    /// # Errors
    ///
    /// See [`JoinError`]; e.g. [`ErrorCode::NoHandler`] for a room name the
    /// server does not define.
    pub async fn join_or_create<S: RoomState>(
        &self,
        room_name: &str,
        options: &(impl Serialize + ?Sized),
    ) -> Result<Room<S>, JoinError> {
        self.matchmake("joinOrCreate", room_name, options).await
    }

    /// Creates a room named `room_name` and joins it.
    ///
    /// # Errors
    ///
    /// See [`JoinError`].
    pub async fn create<S: RoomState>(
        &self,
        room_name: &str,
        options: &(impl Serialize + ?Sized),
    ) -> Result<Room<S>, JoinError> {
        self.matchmake("create", room_name, options).await
    }

    /// Joins an existing room named `room_name`.
    ///
    /// # Errors
    ///
    /// See [`JoinError`]; [`ErrorCode::InvalidCriteria`] when no room can
    /// be joined.
    pub async fn join<S: RoomState>(
        &self,
        room_name: &str,
        options: &(impl Serialize + ?Sized),
    ) -> Result<Room<S>, JoinError> {
        self.matchmake("join", room_name, options).await
    }

    /// Joins the room with id `room_id`.
    ///
    /// # Errors
    ///
    /// See [`JoinError`]; [`ErrorCode::InvalidRoomId`] for an unknown,
    /// locked or disposed room.
    pub async fn join_by_id<S: RoomState>(
        &self,
        room_id: &str,
        options: &(impl Serialize + ?Sized),
    ) -> Result<Room<S>, JoinError> {
        self.matchmake("joinById", room_id, options).await
    }

    /// Rejoins a room with a [`Room::reconnection_token`] (`roomId:token`),
    /// within the time the room holds the seat after a drop.
    ///
    /// # Errors
    ///
    /// See [`JoinError`]: [`JoinError::InvalidToken`] for a token not of
    /// that form, [`ErrorCode::InvalidRoomId`] for an unknown room,
    /// [`ErrorCode::Expired`] for an unknown or expired token.
    pub async fn reconnect<S: RoomState>(
        &self,
        reconnection_token: &str,
    ) -> Result<Room<S>, JoinError> {
        let (room_id, token) = reconnection_token
            .split_once(':')
            .ok_or(JoinError::InvalidToken)?;
        if room_id.is_empty() || token.is_empty() {
            return Err(JoinError::InvalidToken);
        }
        let options = serde_json::json!({ "reconnectionToken": token });
        let mut reservation = self.reserve("reconnect", room_id, &options).await?;
        reservation.reconnection_token = Some(token.to_owned());
        self.consume_seat_reservation(reservation).await
    }

    /// The rooms named `room_name` that have a free seat
    /// (`GET /matchmake/<roomName>`: Roomcast serves it; the 0.18 reference
    /// server answers 404, [`ErrorCode::Other`]).
    ///
    /// # Errors
    ///
    /// See [`RequestError`].
    pub async fn get_available_rooms(
        &self,
        room_name: &str,
    ) -> Result<Vec<RoomAvailable>, RequestError> {
        http::available_rooms(&self.settings.endpoint, &self.settings.request, room_name).await
    }

    /// The round-trip time to the server, averaged over `ping_count`
    /// PINGs (at least one) on a WebSocket that joins no room (the SDK's
    /// `client.getLatency()`; the server answers each and closes after a
    /// second, so keep `ping_count` small).
    ///
    /// # Errors
    ///
    /// See [`LatencyError`]; it gives up after 1.5 s, as the SDK.
    pub async fn get_latency(&self, ping_count: u32) -> Result<Duration, LatencyError> {
        let endpoint = &self.settings.endpoint;
        let search = endpoint
            .search_params
            .as_deref()
            .map(|q| format!("?{q}"))
            .unwrap_or_default();
        let url = format!(
            "ws://{}{}/{search}",
            endpoint.authority(),
            endpoint.pathname
        );
        let probe = async {
            let mut request = url
                .as_str()
                .into_client_request()
                .map_err(|e| LatencyError::WebSocket(Box::new(e)))?;
            for (name, value) in &self.settings.request.headers {
                if let (Ok(name), Ok(value)) = (
                    hyper::header::HeaderName::from_bytes(name.as_bytes()),
                    hyper::header::HeaderValue::from_str(value),
                ) {
                    request.headers_mut().append(name, value);
                }
            }
            let (mut ws, _) = tokio_tungstenite::connect_async(request)
                .await
                .map_err(|e| LatencyError::WebSocket(Box::new(e)))?;
            let mut total = Duration::ZERO;
            let count = ping_count.max(1);
            for _ in 0..count {
                let start = Instant::now();
                ws.send(WsMessage::Binary(Bytes::from_static(&[protocol::PING])))
                    .await
                    .map_err(|_| LatencyError::Closed)?;
                loop {
                    match ws.next().await {
                        Some(Ok(WsMessage::Binary(_) | WsMessage::Text(_))) => break,
                        Some(Ok(_)) => {}
                        Some(Err(_)) | None => return Err(LatencyError::Closed),
                    }
                }
                total += start.elapsed();
            }
            let _ = ws.close(None).await;
            Ok(total / count)
        };
        tokio::time::timeout(Duration::from_millis(1500), probe)
            .await
            .map_err(|_| LatencyError::Timeout)?
    }

    /// The matchmaking call alone: a seat to consume within the server's
    /// seat reservation time (15 s by default).
    ///
    /// # Errors
    ///
    /// See [`JoinError`].
    pub async fn reserve(
        &self,
        method: &str,
        target: &str,
        options: &(impl Serialize + ?Sized),
    ) -> Result<SeatReservation, JoinError> {
        let mut body = serde_json::to_vec(options).map_err(JoinError::Options)?;
        if body == b"null" {
            body = b"{}".to_vec();
        }
        Ok(http::matchmake(
            &self.settings.endpoint,
            &self.settings.request,
            method,
            target,
            body,
        )
        .await?)
    }

    async fn matchmake<S: RoomState>(
        &self,
        method: &str,
        target: &str,
        options: &(impl Serialize + ?Sized),
    ) -> Result<Room<S>, JoinError> {
        let reservation = self.reserve(method, target, options).await?;
        self.consume_seat_reservation(reservation).await
    }

    /// Opens the room's WebSocket for a seat reservation and waits for the
    /// room's handshake.
    ///
    /// # Errors
    ///
    /// See [`JoinError`]: [`JoinError::Refused`] when the room refuses the
    /// client (its `onAuth`, an expired seat: [`ErrorCode::Expired`]).
    pub async fn consume_seat_reservation<S: RoomState>(
        &self,
        reservation: SeatReservation,
    ) -> Result<Room<S>, JoinError> {
        let settings = &self.settings;
        let mut query = vec![("sessionId".to_owned(), reservation.session_id.clone())];
        if let Some(token) = &reservation.reconnection_token {
            query.push(("reconnectionToken".to_owned(), token.clone()));
        }
        if let Some(token) = &settings.request.auth_token {
            query.push(("_authToken".to_owned(), token.clone()));
        }
        if S::SKIP_HANDSHAKE {
            query.push(("skipHandshake".to_owned(), "1".to_owned()));
        }
        let host = match &reservation.public_address {
            Some(address) => address.trim_end_matches('/').to_owned(),
            None => format!(
                "{}{}",
                settings.endpoint.authority(),
                settings.endpoint.pathname
            ),
        };
        let base_url = format!(
            "ws://{host}/{}/{}",
            reservation.process_id, reservation.room_id
        );
        let search = settings.endpoint.search_params.clone();
        let url = connection::url(&base_url, search.as_deref(), &query);
        let opened = match settings.join_timeout {
            Some(limit) => {
                tokio::time::timeout(limit, connection::join(&url, &settings.request.headers))
                    .await
                    .map_err(|_| JoinError::Timeout)?
            }
            None => connection::join(&url, &settings.request.headers).await,
        };
        let (mut ws, frame) = opened.map_err(|e| match e {
            JoinFailure::Refused { code, message } => JoinError::Refused {
                code: ErrorCode::from_code(code),
                message,
            },
            JoinFailure::Closed { code, reason } => JoinError::Closed { code, reason },
            JoinFailure::Connect(e) => JoinError::WebSocket(Box::new(e)),
            JoinFailure::Handshake(e) => JoinError::Handshake(e),
        })?;
        let ServerFrame::Join(handshake) = protocol::parse(&frame)? else {
            unreachable!("connection::join returns a JOIN_ROOM frame")
        };
        // Serializer "none": a room without state.
        let reflection = if handshake.serializer == "schema" {
            handshake.reflection
        } else {
            &[]
        };
        let decoder = S::__decoder(reflection)?;
        let token = handshake.token.to_owned();
        ws.send(connection::ack())
            .await
            .map_err(|e| JoinError::WebSocket(Box::new(e)))?;
        let (commands_tx, commands) = mpsc::unbounded_channel();
        let (events, events_rx) = mpsc::channel(EVENT_CAPACITY);
        let driver = Driver {
            commands,
            events,
            config: settings.reconnection.clone(),
            base_url,
            search_params: search,
            query,
            token: token.clone(),
            joined_at: Instant::now(),
            buffer: VecDeque::new(),
            headers: settings.request.headers.clone(),
            pending: std::collections::HashMap::new(),
        };
        tokio::spawn(driver.run(ws));
        Ok(Room::new(Joined {
            name: reservation.name,
            room_id: reservation.room_id,
            session_id: reservation.session_id,
            token,
            decoder,
            events: events_rx,
            commands: commands_tx,
        }))
    }
}
