//! The monitor (the role of `@colyseus/monitor`) and the `/metrics` route.
//!
//! The monitor is a page ([`PAGE`], plain HTML and a small script, served
//! from the binary) over the JSON endpoints below, all under
//! [`MonitorConfig::path`] (`/monitor` by default) and all behind its
//! [`MonitorAuth`]: a request without the token or the basic credentials
//! gets 401 and no data.
//!
//! | request | answer |
//! | --- | --- |
//! | `GET <path>/` | the page |
//! | `GET <path>/api/rooms` | `{ processId, now, rooms: [listing…] }`: every room of the listing store (every process of a cluster), each with `roomId`, `name`, `processId`, `clients`, `maxClients`, `locked`, `private`, `unlisted`, `metadata`, `createdAt`, `elapsedMs`, `local`, and for rooms of this process `patchesPerSecond` and `bytesPerSecond` (sent to clients) |
//! | `GET <path>/api/rooms/<roomId>` | the listing plus `clientDetails: [{ sessionId, userData, joinedAt, elapsedMs }]`, `state` (the room's full state decoded with its own Reflection by [`DynamicDecoder`](roomcast_schema::decoder::DynamicDecoder), as JSON; `null` without a schema state), `stateBytes`; when the process holding the room does not answer, the listing and a `note` saying so |
//! | `POST <path>/api/rooms/<roomId>/dispose` | disconnects the room's clients and disposes of it ([`Server::disconnect_room`]) |
//! | `POST <path>/api/rooms/<roomId>/clients/<sessionId>/disconnect` | closes the client with 4000 (`on_leave` follows) |
//! | `POST <path>/api/rooms/<roomId>/send` with `{ "type": "…", "message": any, "sessionId"?: "…" }` | sends the message to that client, or broadcasts it to the room |
//!
//! Actions are `POST`s with `Content-Type: application/json` (else 415:
//! a cross-site form cannot send that, so a page of another site cannot
//! act with the basic credentials a browser sends by itself). They answer
//! `{ "ok": true }`, or `{ "error": "…" }` with 404 (no such room or
//! client), 400 (a bad body) or 502 (the room's process failed to
//! answer).
//!
//! In a cluster, a room of another process is asked through the cluster's
//! requests (kind `monitor`, the same ones as [`Server::call`]): the
//! process holding it answers what its own monitor would, so any process's
//! monitor shows and acts on every room; rates are those of the holder.
//!
//! `userData` is what the room's
//! [`RoomCtx::monitor_user_data`](crate::RoomCtx::monitor_user_data)
//! summary returns for the client (`null` without one).
//!
//! Rooms are reached through their tasks: a [`MonitorRequest`] in the
//! room's command queue, answered between two messages of the room, so
//! nothing of the room is shared with the HTTP side. The state is encoded
//! by the room (a full state does not discard pending changes) and decoded
//! here, off the room's task.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::body::to_bytes;
use axum::extract::Request;
use axum::http::{header, HeaderValue, Method as HttpMethod, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde_json::{json, Value};
use tokio::sync::oneshot;

use super::{Command, Server};
use crate::matchmaker::{now_millis, RoomListing};
use crate::protocol::{close_code, Dialect};
use crate::room::driver::Driver;
use crate::room::{Room, RoomCtx};
use crate::state::SyncState;

/// The monitor page: plain HTML and a script, no build step.
const PAGE: &str = include_str!("monitor.html");

/// The room call that answers a client's user data summary (see
/// [`RoomCtx::monitor_user_data`]).
const USER_DATA_CALL: &str = "__roomcast_monitor_user_data";

/// How long the monitor waits for a room's task.
const ROOM_TIMEOUT: Duration = Duration::from_secs(5);

/// Largest body of a monitor action.
const MAX_BODY: usize = 64 * 1024;

/// Where the monitor is served and who may use it
/// ([`ServerBuilder::monitor`](crate::ServerBuilder::monitor)).
///
/// # Examples
///
/// ```
/// use roomcast::{MonitorConfig, Server};
///
/// let server = Server::builder()
///     .monitor(MonitorConfig::token("s3cret").path("/admin/monitor"))
///     .metrics("/metrics")
///     .build();
/// // The page: http://127.0.0.1:2567/admin/monitor/?token=s3cret
/// # drop(server);
/// ```
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct MonitorConfig {
    /// The path the monitor is served under (default `/monitor`).
    pub path: String,
    /// What a request must carry.
    pub auth: MonitorAuth,
}

/// The credentials the monitor asks for.
#[derive(Clone)]
#[non_exhaustive]
pub enum MonitorAuth {
    /// `Authorization: Bearer <token>`, or `?token=<token>` in the URL
    /// (how the page is opened; its script sends the header).
    Token(String),
    /// HTTP basic authentication (the browser asks for them).
    Basic {
        /// The user name.
        user: String,
        /// The password.
        password: String,
    },
}

impl std::fmt::Debug for MonitorAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Secrets stay out of logs.
        match self {
            Self::Token(_) => f.write_str("Token(..)"),
            Self::Basic { user, .. } => f.debug_struct("Basic").field("user", user).finish(),
        }
    }
}

impl MonitorConfig {
    /// A monitor at `/monitor` for requests carrying `token`.
    ///
    /// # Panics
    ///
    /// When `token` is empty.
    #[must_use]
    pub fn token(token: impl Into<String>) -> Self {
        let token = token.into();
        assert!(!token.is_empty(), "the monitor token must not be empty");
        Self {
            path: "/monitor".to_owned(),
            auth: MonitorAuth::Token(token),
        }
    }

    /// A monitor at `/monitor` behind HTTP basic authentication.
    ///
    /// # Panics
    ///
    /// When `password` is empty.
    #[must_use]
    pub fn basic(user: impl Into<String>, password: impl Into<String>) -> Self {
        let password = password.into();
        assert!(
            !password.is_empty(),
            "the monitor password must not be empty"
        );
        Self {
            path: "/monitor".to_owned(),
            auth: MonitorAuth::Basic {
                user: user.into(),
                password,
            },
        }
    }

    /// Serves the monitor under `path` instead.
    ///
    /// # Panics
    ///
    /// When `path` does not start with `/` or is `/` alone.
    #[must_use]
    pub fn path(mut self, path: &str) -> Self {
        let path = path.trim_end_matches('/');
        assert!(
            path.starts_with('/'),
            "the monitor path starts with / and is not the root"
        );
        path.clone_into(&mut self.path);
        self
    }
}

/// What the monitor asks of a room's task: the internal request type
/// behind its endpoints, carried by the room's command queue.
#[derive(Debug)]
pub(crate) enum MonitorRequest {
    /// The room's clients and its state's bytes.
    Inspect { reply: oneshot::Sender<Inspection> },
    /// Close a client with 4000; `false` if it is not in the room.
    DisconnectClient {
        session_id: String,
        reply: oneshot::Sender<bool>,
    },
    /// Send a message to one client, or to all (`session_id` `None`);
    /// `false` if the client is not in the room.
    Send {
        session_id: Option<String>,
        ty: String,
        message: Value,
        reply: oneshot::Sender<bool>,
    },
}

/// A room as its task sees it.
#[derive(Debug)]
pub(crate) struct Inspection {
    clients: Vec<ClientInfo>,
    /// The Reflection handshake and the full state (modern dialect), for a
    /// schema state.
    state: Option<(Bytes, Bytes)>,
}

#[derive(Debug)]
struct ClientInfo {
    session_id: String,
    user_data: Value,
    joined_at: Option<SystemTime>,
}

/// Answers a [`MonitorRequest`] in the room's task.
pub(crate) fn handle<R: Room>(driver: &mut Driver<R>, request: MonitorRequest) {
    match request {
        MonitorRequest::Inspect { reply } => {
            let summarized = driver.core.ctx().calls.contains_key(USER_DATA_CALL);
            let clients: Vec<_> = driver
                .core
                .ctx()
                .clients()
                .map(|client| client.session_id().to_owned())
                .collect();
            let clients = clients
                .into_iter()
                .map(|session_id| ClientInfo {
                    user_data: if summarized {
                        driver
                            .call(USER_DATA_CALL, json!(session_id))
                            .unwrap_or(Value::Null)
                    } else {
                        Value::Null
                    },
                    joined_at: driver.metrics.joined_at.get(session_id.as_str()).copied(),
                    session_id,
                })
                .collect();
            let state = driver.core.ctx_mut().state.as_mut().and_then(|state| {
                (state.serializer_id() == "schema").then(|| {
                    (
                        state.handshake(Dialect::Modern),
                        state.encode_full(Dialect::Modern),
                    )
                })
            });
            let _ = reply.send(Inspection { clients, state });
        }
        MonitorRequest::DisconnectClient { session_id, reply } => {
            let ctx = driver.core.ctx_mut();
            let client = ctx.client(&session_id);
            if let Some(client) = &client {
                ctx.leave(client, close_code::CONSENTED);
            }
            let _ = reply.send(client.is_some());
        }
        MonitorRequest::Send {
            session_id,
            ty,
            message,
            reply,
        } => {
            let ctx = driver.core.ctx_mut();
            let sent = match session_id {
                Some(session_id) => match ctx.client(&session_id) {
                    Some(client) => {
                        ctx.send(&client, ty, &message);
                        true
                    }
                    None => false,
                },
                None => {
                    ctx.broadcast(ty, &message, crate::BroadcastOptions::default());
                    true
                }
            };
            let _ = reply.send(sent);
        }
    }
}

impl<R: Room> RoomCtx<R> {
    /// What the monitor shows as a client's `userData`
    /// ([`ServerBuilder::monitor`](crate::ServerBuilder::monitor)): without
    /// it, nothing (user data has no bound that could print it). Call it in
    /// `on_create`. It uses the room call `__roomcast_monitor_user_data`.
    ///
    /// # Examples
    ///
    /// ```
    /// # use roomcast::{Room, RoomCtx};
    /// #[derive(Default)]
    /// struct Player { name: String, score: u32 }
    ///
    /// fn register<R: Room<UserData = Player>>(ctx: &mut RoomCtx<R>) {
    ///     ctx.monitor_user_data(|player| {
    ///         serde_json::json!({ "name": player.name, "score": player.score })
    ///     });
    /// }
    /// ```
    pub fn monitor_user_data<F>(&mut self, summary: F)
    where
        F: Fn(&R::UserData) -> Value + Send + Sync + 'static,
    {
        self.on_call(
            USER_DATA_CALL,
            move |_room: &mut R, ctx, session: String| {
                let summary = ctx
                    .client(&session)
                    .and_then(|client| ctx.user_data(&client).map(&summary));
                Ok::<_, crate::ServerError>(summary.unwrap_or(Value::Null))
            },
        );
    }
}

/// The monitor's last sample of each room's counts, for its rates.
#[derive(Debug, Default)]
pub(crate) struct Samples {
    rooms: Mutex<HashMap<String, Sample>>,
}

#[derive(Clone, Copy, Debug)]
struct Sample {
    at: Instant,
    patches: u64,
    bytes: u64,
    patches_per_second: f64,
    bytes_per_second: f64,
}

/// Samples older than this give new rates.
const SAMPLE_PERIOD: Duration = Duration::from_millis(900);

impl Samples {
    /// `(patches/s, bytes/s)` of a room of this process: since the last
    /// sample, or (first look) since the room was created.
    fn rates(&self, server: &Server, listing: &RoomListing) -> Option<(f64, f64)> {
        let counts = server.inner.room_counts(&listing.room_id)?;
        let (patches, bytes) = (
            counts.patches.load(Ordering::Relaxed),
            counts.bytes_out.load(Ordering::Relaxed),
        );
        let now = Instant::now();
        let mut rooms = self.rooms.lock().unwrap_or_else(PoisonError::into_inner);
        let sample = match rooms.get(&listing.room_id) {
            Some(last) if now.duration_since(last.at) < SAMPLE_PERIOD => *last,
            Some(last) => {
                let seconds = now.duration_since(last.at).as_secs_f64();
                Sample {
                    at: now,
                    patches,
                    bytes,
                    patches_per_second: patches.saturating_sub(last.patches) as f64 / seconds,
                    bytes_per_second: bytes.saturating_sub(last.bytes) as f64 / seconds,
                }
            }
            None => {
                let age = now_millis().saturating_sub(listing.created_at).max(1);
                let seconds = age as f64 / 1000.0;
                Sample {
                    at: now,
                    patches,
                    bytes,
                    patches_per_second: patches as f64 / seconds,
                    bytes_per_second: bytes as f64 / seconds,
                }
            }
        };
        rooms.insert(listing.room_id.clone(), sample);
        Some((sample.patches_per_second, sample.bytes_per_second))
    }

    /// Forgets rooms that are no longer listed.
    fn retain(&self, listed: &[RoomListing]) {
        let mut rooms = self.rooms.lock().unwrap_or_else(PoisonError::into_inner);
        rooms.retain(|id, _| listed.iter().any(|r| &r.room_id == id));
    }
}

/// Answers `/metrics` and the monitor's requests; hands any other request
/// back.
pub(super) async fn route(server: &Server, request: Request) -> Result<Response, Request> {
    let config = server.config();
    let path = request.uri().path();
    if config.metrics.as_deref() == Some(path) && !path.is_empty() {
        if request.method() != HttpMethod::GET {
            return Ok(StatusCode::METHOD_NOT_ALLOWED.into_response());
        }
        let mut response = server.inner.metrics.render().into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"),
        );
        return Ok(response);
    }
    let Some(monitor) = &config.monitor else {
        return Err(request);
    };
    let Some(rest) = path.strip_prefix(monitor.path.as_str()) else {
        return Err(request);
    };
    if !(rest.is_empty() || rest.starts_with('/')) {
        return Err(request);
    }
    if !authorized(&monitor.auth, &request) {
        return Ok(unauthorized(&monitor.auth));
    }
    let rest = rest.to_owned();
    let mut response = serve(server, &rest, request).await;
    // Nothing the monitor answers is for a cache.
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

async fn serve(server: &Server, rest: &str, request: Request) -> Response {
    let method = request.method().clone();
    if method == HttpMethod::POST && !is_json(&request) {
        // A cross-site form cannot send JSON without a preflight, which the
        // monitor does not allow: with basic credentials, which browsers
        // send by themselves, another site's page cannot dispose of rooms.
        return failure(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "monitor actions take Content-Type: application/json",
        );
    }
    let segments: Vec<&str> = rest.split('/').filter(|s| !s.is_empty()).collect();
    match (&method, segments.as_slice()) {
        (&HttpMethod::GET, []) => {
            if rest.is_empty() {
                // Relative URLs of the page resolve under the path.
                let location = format!(
                    "{}/{}",
                    request.uri().path(),
                    request
                        .uri()
                        .query()
                        .map(|q| format!("?{q}"))
                        .unwrap_or_default()
                );
                return (
                    StatusCode::TEMPORARY_REDIRECT,
                    [(header::LOCATION, location)],
                )
                    .into_response();
            }
            ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], PAGE).into_response()
        }
        (&HttpMethod::GET, ["api", "rooms"]) => rooms(server).await,
        (&HttpMethod::GET, ["api", "rooms", room_id]) => {
            respond(act(server, room_id, Action::Inspect).await)
        }
        (&HttpMethod::POST, ["api", "rooms", room_id, "dispose"]) => {
            match server.disconnect_room(room_id).await {
                Ok(()) => ok(),
                Err(e) => failure(StatusCode::NOT_FOUND, &e.message),
            }
        }
        (&HttpMethod::POST, ["api", "rooms", room_id, "clients", session_id, "disconnect"]) => {
            let session_id = (*session_id).to_owned();
            respond(act(server, room_id, Action::Disconnect { session_id }).await)
        }
        (&HttpMethod::POST, ["api", "rooms", room_id, "send"]) => {
            let room_id = (*room_id).to_owned();
            let Ok(body) = to_bytes(request.into_body(), MAX_BODY).await else {
                return failure(StatusCode::BAD_REQUEST, "body too large");
            };
            let body: Value = match serde_json::from_slice(&body) {
                Ok(body) => body,
                Err(e) => return failure(StatusCode::BAD_REQUEST, &format!("invalid JSON: {e}")),
            };
            let Some(ty) = body["type"].as_str().filter(|t| !t.is_empty()) else {
                return failure(
                    StatusCode::BAD_REQUEST,
                    "\"type\" must be a non-empty string",
                );
            };
            let (ty, message) = (ty.to_owned(), body["message"].clone());
            let session_id = body["sessionId"]
                .as_str()
                .filter(|s| !s.is_empty())
                .map(str::to_owned);
            let action = Action::Send {
                session_id,
                ty,
                message,
            };
            respond(act(server, &room_id, action).await)
        }
        (_, ["api", ..]) => failure(StatusCode::NOT_FOUND, "no such monitor endpoint"),
        _ => StatusCode::NOT_FOUND.into_response(),
    }
}

fn is_json(request: &Request) -> bool {
    request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"))
}

/// Whether `request` carries the monitor's credentials.
fn authorized(auth: &MonitorAuth, request: &Request) -> bool {
    let header = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    match auth {
        MonitorAuth::Token(token) => {
            let bearer = header
                .strip_prefix("Bearer ")
                .is_some_and(|given| same(given.trim().as_bytes(), token.as_bytes()));
            bearer
                || request.uri().query().is_some_and(|query| {
                    form_urlencoded::parse(query.as_bytes()).any(|(key, given)| {
                        key == "token" && same(given.as_bytes(), token.as_bytes())
                    })
                })
        }
        MonitorAuth::Basic { user, password } => {
            let expected = data_encoding::BASE64.encode(format!("{user}:{password}").as_bytes());
            header
                .strip_prefix("Basic ")
                .is_some_and(|given| same(given.trim().as_bytes(), expected.as_bytes()))
        }
    }
}

fn unauthorized(auth: &MonitorAuth) -> Response {
    let challenge = match auth {
        MonitorAuth::Token(_) => "Bearer realm=\"roomcast monitor\"",
        MonitorAuth::Basic { .. } => "Basic realm=\"roomcast monitor\", charset=\"UTF-8\"",
    };
    (
        StatusCode::UNAUTHORIZED,
        [
            (header::WWW_AUTHENTICATE, challenge),
            (header::CACHE_CONTROL, "no-store"),
        ],
        axum::Json(json!({ "error": "unauthorized" })),
    )
        .into_response()
}

/// Compares secrets in time that depends on their lengths only.
fn same(given: &[u8], expected: &[u8]) -> bool {
    given.len() == expected.len()
        && given
            .iter()
            .zip(expected)
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

fn ok() -> Response {
    axum::Json(json!({ "ok": true })).into_response()
}

fn failure(status: StatusCode, message: &str) -> Response {
    (status, axum::Json(json!({ "error": message }))).into_response()
}

fn millis(at: SystemTime) -> u64 {
    at.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

fn listing_json(server: &Server, listing: &RoomListing, now: u64) -> Value {
    let local = server.has_room(&listing.room_id);
    let mut room = json!({
        "roomId": listing.room_id,
        "name": listing.name,
        "processId": listing.process_id,
        "clients": listing.clients,
        "maxClients": listing.max_clients,
        "locked": listing.locked,
        "private": listing.private,
        "unlisted": listing.unlisted,
        "metadata": listing.metadata,
        "createdAt": listing.created_at,
        "elapsedMs": now.saturating_sub(listing.created_at),
        "local": local,
    });
    if let Some((patches, bytes)) = server.inner.monitor.rates(server, listing) {
        room["patchesPerSecond"] = json!((patches * 10.0).round() / 10.0);
        room["bytesPerSecond"] = json!(bytes.round());
    }
    room
}

/// `GET <path>/api/rooms`.
async fn rooms(server: &Server) -> Response {
    let listings = match server.rooms().await {
        Ok(listings) => listings,
        Err(e) => return failure(StatusCode::SERVICE_UNAVAILABLE, &e.message),
    };
    server.inner.monitor.retain(&listings);
    let now = now_millis();
    let rooms: Vec<Value> = listings
        .iter()
        .map(|listing| listing_json(server, listing, now))
        .collect();
    axum::Json(json!({
        "processId": server.config().process_id,
        "now": now,
        "rooms": rooms,
    }))
    .into_response()
}

/// What the monitor asks of one room, on the process that holds it: the
/// payload of the cluster's `monitor` request when that is another one.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
#[serde(tag = "action", rename_all = "camelCase")]
enum Action {
    /// The listing, clients and state (`GET …/rooms/<roomId>`).
    Inspect,
    /// Close a client with 4000.
    Disconnect {
        #[serde(rename = "sessionId")]
        session_id: String,
    },
    /// Send a message to a client, or to all.
    Send {
        #[serde(rename = "sessionId")]
        session_id: Option<String>,
        #[serde(rename = "type")]
        ty: String,
        message: Value,
    },
}

fn respond((status, body): (StatusCode, Value)) -> Response {
    (status, axum::Json(body)).into_response()
}

fn error_body(status: StatusCode, message: &str) -> (StatusCode, Value) {
    (status, json!({ "error": message }))
}

/// Runs `action` on room `room_id`: here, or through the cluster's
/// requests on the process that holds it.
async fn act(server: &Server, room_id: &str, action: Action) -> (StatusCode, Value) {
    if server.inner.room(room_id).is_some() {
        return act_here(server, room_id, action).await;
    }
    let listing = match server.inner.store.get(room_id).await {
        Ok(Some(listing)) => listing,
        Ok(None) => return error_body(StatusCode::NOT_FOUND, "no such room"),
        Err(e) => return error_body(StatusCode::SERVICE_UNAVAILABLE, &e.to_string()),
    };
    if listing.process_id == server.config().process_id {
        return error_body(StatusCode::NOT_FOUND, "the room is gone");
    }
    let inspect = matches!(action, Action::Inspect);
    let mut payload = serde_json::to_value(&action).unwrap_or_default();
    payload["roomId"] = json!(room_id);
    let reply = server
        .remote(&listing.process_id, "monitor", &payload, room_id)
        .await;
    match reply {
        Ok(reply) => {
            let status = reply["ok"]["status"]
                .as_u64()
                .and_then(|s| StatusCode::from_u16(u16::try_from(s).ok()?).ok())
                .unwrap_or(StatusCode::BAD_GATEWAY);
            let mut body = reply["ok"]["body"].clone();
            if inspect && status == StatusCode::OK {
                // Answered by the holder: not a room of this process.
                body["local"] = json!(false);
            }
            (status, body)
        }
        Err(e) if inspect => {
            // What the store knows, and why there is no more.
            let now = now_millis();
            let mut body = listing_json(server, &listing, now);
            body["now"] = json!(now);
            body["note"] = json!(format!(
                "process {} holds this room and did not answer: {}",
                listing.process_id, e.message
            ));
            (StatusCode::OK, body)
        }
        Err(e) => error_body(StatusCode::BAD_GATEWAY, &e.message),
    }
}

/// Answers the cluster's `monitor` request for a room of this process:
/// `{ ok: { status, body } }`, what the HTTP answer of this process would
/// be.
pub(super) async fn answer_remote(server: &Server, payload: Value) -> Value {
    let room_id = payload["roomId"].as_str().unwrap_or_default().to_owned();
    let (status, body) = match serde_json::from_value::<Action>(payload) {
        Ok(action) => act_here(server, &room_id, action).await,
        Err(e) => error_body(
            StatusCode::BAD_REQUEST,
            &format!("bad monitor request: {e}"),
        ),
    };
    json!({ "ok": { "status": status.as_u16(), "body": body } })
}

/// Runs `action` on a room of this process.
async fn act_here(server: &Server, room_id: &str, action: Action) -> (StatusCode, Value) {
    let Some(commands) = server.inner.room(room_id) else {
        return error_body(StatusCode::NOT_FOUND, "no such room");
    };
    let (request, done) = match action {
        Action::Inspect => return inspect(server, room_id, &commands).await,
        Action::Disconnect { session_id } => {
            let (reply, done) = oneshot::channel();
            let request = MonitorRequest::DisconnectClient { session_id, reply };
            (request, done)
        }
        Action::Send {
            session_id,
            ty,
            message,
        } => {
            let (reply, done) = oneshot::channel();
            let request = MonitorRequest::Send {
                session_id,
                ty,
                message,
                reply,
            };
            (request, done)
        }
    };
    if commands.send(Command::Monitor(request)).await.is_err() {
        return error_body(StatusCode::NOT_FOUND, "the room is gone");
    }
    match tokio::time::timeout(ROOM_TIMEOUT, done).await {
        Ok(Ok(true)) => (StatusCode::OK, json!({ "ok": true })),
        Ok(Ok(false)) => error_body(StatusCode::NOT_FOUND, "no such client in the room"),
        Ok(Err(_)) => error_body(StatusCode::NOT_FOUND, "the room is gone"),
        Err(_) => error_body(StatusCode::GATEWAY_TIMEOUT, "the room did not answer"),
    }
}

/// The listing, clients and decoded state of a room of this process.
async fn inspect(
    server: &Server,
    room_id: &str,
    commands: &tokio::sync::mpsc::Sender<Command>,
) -> (StatusCode, Value) {
    let listing = match server.inner.store.get(room_id).await {
        Ok(Some(listing)) => listing,
        Ok(None) => return error_body(StatusCode::NOT_FOUND, "no such room"),
        Err(e) => return error_body(StatusCode::SERVICE_UNAVAILABLE, &e.to_string()),
    };
    let (reply, answer) = oneshot::channel();
    let asked = commands
        .send(Command::Monitor(MonitorRequest::Inspect { reply }))
        .await
        .is_ok();
    let inspection = match tokio::time::timeout(ROOM_TIMEOUT, answer).await {
        Ok(Ok(inspection)) if asked => inspection,
        Ok(_) => return error_body(StatusCode::NOT_FOUND, "the room is gone"),
        Err(_) => return error_body(StatusCode::GATEWAY_TIMEOUT, "the room did not answer"),
    };
    let now = now_millis();
    let mut body = listing_json(server, &listing, now);
    body["now"] = json!(now);
    body["clientDetails"] = inspection
        .clients
        .iter()
        .map(|client| {
            let joined = client.joined_at.map(millis);
            json!({
                "sessionId": client.session_id,
                "userData": client.user_data,
                "joinedAt": joined,
                "elapsedMs": joined.map(|at| now.saturating_sub(at)),
            })
        })
        .collect();
    match &inspection.state {
        Some((reflection, full)) => {
            body["stateBytes"] = json!(full.len());
            match decode_state(reflection, full) {
                Ok(state) => body["state"] = state,
                Err(e) => {
                    body["state"] = Value::Null;
                    body["stateError"] = json!(e);
                }
            }
        }
        None => body["state"] = Value::Null,
    }
    (StatusCode::OK, body)
}

/// Decodes a full state with the room's own Reflection.
fn decode_state(reflection: &[u8], full: &[u8]) -> Result<Value, String> {
    use roomcast_schema::decoder::{DynamicDecoder, ReflectionDialect};
    let mut decoder = DynamicDecoder::from_reflection(reflection, ReflectionDialect::V5)
        .map_err(|e| e.to_string())?;
    decoder.decode(full).map_err(|e| e.to_string())?;
    serde_json::from_str(&decoder.to_json()).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_come_from_the_header_or_the_query() {
        let request = |uri: &str, auth: Option<&str>| {
            let mut b = Request::builder().uri(uri);
            if let Some(a) = auth {
                b = b.header(header::AUTHORIZATION, a);
            }
            b.body(axum::body::Body::empty()).expect("a request")
        };
        let token = MonitorAuth::Token("a/b c".into());
        assert!(authorized(&token, &request("/m?x=1&token=a%2Fb+c", None)));
        assert!(authorized(&token, &request("/m", Some("Bearer a/b c"))));
        assert!(!authorized(&token, &request("/m?token=a%2Fb", None)));
        assert!(!authorized(&token, &request("/m", None)));
        let basic = MonitorAuth::Basic {
            user: "admin".into(),
            password: "s3cret".into(),
        };
        assert!(authorized(
            &basic,
            &request("/m", Some("Basic YWRtaW46czNjcmV0"))
        ));
        assert!(!authorized(
            &basic,
            &request("/m", Some("Basic YWRtaW46czNjcmV1"))
        ));
        assert!(!authorized(&basic, &request("/m?token=s3cret", None)));
    }

    #[test]
    fn secrets_compare_whole() {
        assert!(same(b"abc", b"abc"));
        assert!(!same(b"abd", b"abc"));
        assert!(!same(b"ab", b"abc"));
    }
}
