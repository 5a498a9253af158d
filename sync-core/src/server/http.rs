//! HTTP matchmaking routes (room-protocol.md §2) and the entry point of
//! every request: endpoint prefix → dialect, then matchmaking or WebSocket.

use axum::body::{to_bytes, Body};
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method as HttpMethod, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::{valid_name, Method, SeatReservation, Server};
use crate::error::ServerError;
use crate::protocol::{error_code, Dialect};

/// Largest matchmaking body accepted.
const MAX_BODY: usize = 64 * 1024;

pub(super) async fn entry(State(server): State<Server>, request: Request) -> Response {
    // The monitor and `/metrics`, when the server serves them.
    let request = match super::monitor::route(&server, request).await {
        Ok(response) => return response,
        Err(request) => request,
    };
    let path = request.uri().path().to_owned();
    let Some((prefix_len, dialect)) = server
        .config()
        .endpoints
        .iter()
        .find(|(prefix, _)| {
            path.strip_prefix(prefix.as_str())
                .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
        })
        .map(|(prefix, dialect)| (prefix.len(), *dialect))
    else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let rest = &path[prefix_len..];
    if let Some(matchmake) = rest.strip_prefix("/matchmake") {
        if matchmake.is_empty() || matchmake.starts_with('/') {
            let matchmake = matchmake.to_owned();
            let prefix = path[..prefix_len].to_owned();
            return handle_matchmake(&server, dialect, &prefix, request, &matchmake).await;
        }
    }
    let rest = rest.to_owned();
    super::ws::upgrade(server, dialect, request, &rest).await
}

async fn handle_matchmake(
    server: &Server,
    dialect: Dialect,
    prefix: &str,
    request: Request,
    path: &str,
) -> Response {
    let origin = request.headers().get(header::ORIGIN).cloned();
    let mut response = match *request.method() {
        HttpMethod::OPTIONS => StatusCode::NO_CONTENT.into_response(),
        HttpMethod::GET => list(server, dialect, path).await,
        HttpMethod::POST => post(server, dialect, prefix, request, path).await,
        _ => StatusCode::METHOD_NOT_ALLOWED.into_response(),
    };
    cors(response.headers_mut(), origin);
    response
}

fn cors(headers: &mut HeaderMap, origin: Option<HeaderValue>) {
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        origin.unwrap_or(HeaderValue::from_static("*")),
    );
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
        HeaderValue::from_static("true"),
    );
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static("Origin, X-Requested-With, Content-Type, Accept, Authorization"),
    );
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static("GET,HEAD,PUT,PATCH,POST,DELETE"),
    );
    headers.insert(
        header::ACCESS_CONTROL_MAX_AGE,
        HeaderValue::from_static("2592000"),
    );
}

/// `GET /matchmake/<roomName>`: the listing of SDKs that had
/// `getAvailableRooms` (not routed by the 0.16/0.18 reference servers).
async fn list(server: &Server, dialect: Dialect, path: &str) -> Response {
    let name = path.trim_start_matches('/');
    if !valid_name(name) {
        return StatusCode::NOT_FOUND.into_response();
    }
    let rooms = match server.available_rooms(name).await {
        Ok(rooms) => rooms,
        Err(e) => return error(dialect, &e),
    };
    let rooms: Vec<_> = rooms
        .into_iter()
        .map(|r| {
            json!({
                "roomId": r.room_id,
                "name": r.name,
                "clients": r.clients,
                "maxClients": r.max_clients,
                "metadata": r.metadata,
                "processId": r.process_id,
            })
        })
        .collect();
    axum::Json(rooms).into_response()
}

async fn post(
    server: &Server,
    dialect: Dialect,
    prefix: &str,
    request: Request,
    path: &str,
) -> Response {
    let mut segments = path.trim_start_matches('/').splitn(2, '/');
    let (method, target) = (segments.next().unwrap_or(""), segments.next().unwrap_or(""));
    let Some(method) = Method::parse(method) else {
        return error(
            dialect,
            &ServerError::new(
                error_code::MATCHMAKE_NO_HANDLER,
                format!("invalid method \"{method}\""),
            ),
        );
    };
    if !valid_name(target) {
        return error(
            dialect,
            &ServerError::new(
                error_code::MATCHMAKE_NO_HANDLER,
                format!("invalid room name \"{target}\""),
            ),
        );
    }
    let options = match read_json(request.into_body()).await {
        Ok(options) => options,
        Err(message) => return bad_request(&message),
    };
    let started = std::time::Instant::now();
    let result = server.matchmake(method, target, options).await;
    server.inner.metrics.matchmake(method, started.elapsed());
    match result {
        Ok(reservation) => {
            axum::Json(reservation_json(server, prefix, &reservation)).into_response()
        }
        Err(e) => error(dialect, &e),
    }
}

async fn read_json(body: Body) -> Result<serde_json::Value, String> {
    let bytes = to_bytes(body, MAX_BODY)
        .await
        .map_err(|_| format!("request body larger than {MAX_BODY} bytes"))?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(json!({}));
    }
    match serde_json::from_slice::<serde_json::Value>(&bytes) {
        Ok(value @ serde_json::Value::Object(_)) => Ok(value),
        Ok(_) => Err("the request body must be a JSON object".to_owned()),
        Err(e) => Err(format!("invalid JSON body: {e}")),
    }
}

fn bad_request(message: &str) -> Response {
    (
        StatusCode::BAD_REQUEST,
        axum::Json(json!({ "code": 400, "error": message })),
    )
        .into_response()
}

/// The union of the 0.18 flat and 0.16 nested layouts (room-protocol.md
/// §2.2), naming the process that holds the room. A client that asked
/// through an endpoint prefix (`/legacy`) gets it after the room's public
/// address: both SDKs build the WebSocket URL from `publicAddress` alone
/// (the processes of a cluster serve the same endpoints).
fn reservation_json(
    server: &Server,
    prefix: &str,
    reservation: &SeatReservation,
) -> serde_json::Value {
    let mut body = serde_json::to_value(reservation).unwrap_or_default();
    if let Some(address) = &reservation.room.public_address {
        let address = format!("{}{prefix}", address.trim_end_matches('/'));
        body["publicAddress"] = json!(address);
        body["room"]["publicAddress"] = json!(address);
    }
    if server.config().dev_mode {
        body["devMode"] = json!(true);
    }
    body
}

/// 0.18: HTTP status = code; 0.16: HTTP 200 with the 42xx code.
fn error(dialect: Dialect, error: &ServerError) -> Response {
    if error.code == 503 {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(json!({ "code": 503, "error": error.message })),
        )
            .into_response();
    }
    match dialect {
        Dialect::Modern => {
            let status = if (400..600).contains(&error.code) {
                error.code
            } else {
                // Codes beyond HTTP statuses: an exception in the room.
                error_code::MATCHMAKE_UNHANDLED
            };
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            (
                status,
                axum::Json(json!({ "code": error.code, "error": error.message })),
            )
                .into_response()
        }
        Dialect::Legacy => axum::Json(json!({
            "code": error_code::legacy(error.code),
            "error": error.message,
        }))
        .into_response(),
    }
}
