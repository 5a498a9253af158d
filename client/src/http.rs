//! HTTP matchmaking (spec `room-protocol.md` §2): one HTTP/1.1 connection
//! per call, JSON in and out.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::header::{HeaderValue, ACCEPT, AUTHORIZATION, CONTENT_TYPE, HOST};
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use serde::{Deserialize, Serialize};
use tokio::net::TcpStream;

use crate::error::{EndpointError, ErrorCode, RequestError};

/// Largest response body read.
const MAX_BODY: usize = 1 << 20;

/// Where the server is, as [`Client::new`](crate::Client::new) parsed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Endpoint {
    pub(crate) hostname: String,
    pub(crate) port: u16,
    /// Path prefix without a trailing `/` (`""` for none).
    pub(crate) pathname: String,
    /// Query string appended to every URL (without `?`).
    pub(crate) search_params: Option<String>,
}

impl Endpoint {
    /// Parses `http://host[:port][/path][?query]` (`ws://` too).
    pub(crate) fn parse(endpoint: &str) -> Result<Self, EndpointError> {
        let invalid = || EndpointError::Invalid(endpoint.to_owned());
        let (scheme, rest) = endpoint.split_once("://").ok_or_else(invalid)?;
        match scheme.to_ascii_lowercase().as_str() {
            "http" | "ws" => {}
            "https" | "wss" => return Err(EndpointError::TlsUnsupported),
            _ => return Err(invalid()),
        }
        let rest = rest.split('#').next().unwrap_or_default();
        let (rest, query) = match rest.split_once('?') {
            Some((r, q)) => (r, (!q.is_empty()).then(|| q.to_owned())),
            None => (rest, None),
        };
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        if authority.is_empty() || authority.contains('@') {
            return Err(invalid());
        }
        let (hostname, port) = if let Some(v6) = authority.strip_prefix('[') {
            let (host, after) = v6.split_once(']').ok_or_else(invalid)?;
            let port = match after.strip_prefix(':') {
                Some(p) => p.parse().map_err(|_| invalid())?,
                None if after.is_empty() => 80,
                None => return Err(invalid()),
            };
            (format!("[{host}]"), port)
        } else {
            match authority.rsplit_once(':') {
                Some((host, port)) => (host.to_owned(), port.parse().map_err(|_| invalid())?),
                None => (authority.to_owned(), 80),
            }
        };
        if hostname.is_empty() {
            return Err(invalid());
        }
        Ok(Self {
            hostname,
            port,
            pathname: path.trim_end_matches('/').to_owned(),
            search_params: query,
        })
    }

    /// `host:port`.
    pub(crate) fn authority(&self) -> String {
        format!("{}:{}", self.hostname, self.port)
    }

    /// The address to connect to (brackets of an IPv6 literal removed).
    fn connect_host(&self) -> &str {
        self.hostname.trim_start_matches('[').trim_end_matches(']')
    }

    /// The path and query of an HTTP request to `path` (which starts with
    /// `/`).
    fn request_path(&self, path: &str) -> String {
        match &self.search_params {
            Some(q) => format!("{}{path}?{q}", self.pathname),
            None => format!("{}{path}", self.pathname),
        }
    }
}

/// A seat reservation: the answer of a matchmaking call (spec §2.2),
/// consumed by [`Client::consume_seat_reservation`](crate::Client::consume_seat_reservation).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct SeatReservation {
    /// The room's type name.
    pub name: String,
    /// The client's session id in the room.
    pub session_id: String,
    /// The room's id.
    pub room_id: String,
    /// The first segment of the WebSocket path.
    #[serde(default)]
    pub process_id: String,
    /// `host[:port][/path]` to connect to instead of the client's endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_address: Option<String>,
    /// Whether the server runs in development mode.
    #[serde(default)]
    pub dev_mode: bool,
    /// The raw reconnection token (only for a reconnection; the server
    /// never sends it, the client copies its own in).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reconnection_token: Option<String>,
}

/// A room as a listing describes it (`GET /matchmake/<roomName>`, which
/// Roomcast serves; the 0.18 reference server has no such route).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct RoomAvailable {
    /// The room's id.
    pub room_id: String,
    /// The room's type name.
    #[serde(default)]
    pub name: String,
    /// Clients in the room.
    #[serde(default)]
    pub clients: u32,
    /// Seats of the room (`None`: unlimited).
    #[serde(default)]
    pub max_clients: Option<u32>,
    /// The room's metadata.
    #[serde(default)]
    pub metadata: serde_json::Value,
}

/// What every request carries.
#[derive(Debug, Clone, Default)]
pub(crate) struct RequestSettings {
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) auth_token: Option<String>,
    pub(crate) timeout: Option<Duration>,
}

/// One request; the status and body of the answer.
async fn exchange(
    endpoint: &Endpoint,
    settings: &RequestSettings,
    method: Method,
    path: &str,
    body: Option<Vec<u8>>,
) -> Result<(StatusCode, Bytes), RequestError> {
    let work = async {
        let stream = TcpStream::connect((endpoint.connect_host(), endpoint.port))
            .await
            .map_err(|e| RequestError::Http(Box::new(e)))?;
        let _ = stream.set_nodelay(true);
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| RequestError::Http(Box::new(e)))?;
        // Drives the connection until the exchange ends.
        let driver = tokio::spawn(connection);
        let mut request = Request::builder()
            .method(method)
            .uri(endpoint.request_path(path))
            .header(HOST, endpoint.authority())
            .header(ACCEPT, "application/json");
        if body.is_some() {
            request = request.header(CONTENT_TYPE, "application/json");
        }
        if let Some(token) = &settings.auth_token {
            request = request.header(AUTHORIZATION, format!("Bearer {token}"));
        }
        for (name, value) in &settings.headers {
            request = request.header(name.as_str(), value.as_str());
        }
        let request = request
            .body(Full::new(Bytes::from(body.unwrap_or_default())))
            .map_err(|e| RequestError::Http(Box::new(e)))?;
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| RequestError::Http(Box::new(e)))?;
        let status = response.status();
        let body = Limited::new(response.into_body(), MAX_BODY)
            .collect()
            .await
            .map_err(|e| RequestError::InvalidResponse(e.to_string()))?
            .to_bytes();
        driver.abort();
        Ok((status, body))
    };
    match settings.timeout {
        Some(limit) => tokio::time::timeout(limit, work)
            .await
            .map_err(|_| RequestError::Timeout)?,
        None => work.await,
    }
}

/// The error a non-2xx answer, or a 2xx `{code, error}` body, carries.
fn server_error(status: StatusCode, body: &[u8]) -> Option<RequestError> {
    #[derive(Deserialize)]
    struct ErrorBody {
        code: Option<u32>,
        error: Option<String>,
        message: Option<String>,
    }
    let parsed: Option<ErrorBody> = serde_json::from_slice(body).ok();
    if status.is_success() {
        // 0.16 style: HTTP 200 with `{code, error}`.
        let e = parsed?;
        let message = e.error?;
        return Some(RequestError::Server {
            code: ErrorCode::from_code(e.code.unwrap_or(0)),
            message,
        });
    }
    let message = parsed
        .and_then(|e| e.message.or(e.error))
        .unwrap_or_else(|| status.canonical_reason().unwrap_or("").to_owned());
    Some(RequestError::Server {
        code: ErrorCode::from_code(u32::from(status.as_u16())),
        message,
    })
}

/// `POST /matchmake/<method>/<target>` with `options` as the body.
pub(crate) async fn matchmake(
    endpoint: &Endpoint,
    settings: &RequestSettings,
    method: &str,
    target: &str,
    options: Vec<u8>,
) -> Result<SeatReservation, RequestError> {
    let path = format!("/matchmake/{method}/{target}");
    let (status, body) = exchange(endpoint, settings, Method::POST, &path, Some(options)).await?;
    if let Some(e) = server_error(status, &body) {
        return Err(e);
    }
    parse_reservation(&body)
}

/// A seat reservation from a JSON body: the 0.18 flat form, or the 0.16
/// one with the room's fields nested in `room`.
fn parse_reservation(body: &[u8]) -> Result<SeatReservation, RequestError> {
    let mut value: serde_json::Value = serde_json::from_slice(body)
        .map_err(|e| RequestError::InvalidResponse(format!("not JSON: {e}")))?;
    if let Some(obj) = value.as_object_mut() {
        if obj.get("roomId").is_none() {
            if let Some(serde_json::Value::Object(room)) = obj.get("room").cloned() {
                for (k, v) in room {
                    obj.entry(k).or_insert(v);
                }
            }
        }
    }
    let reservation: SeatReservation = serde_json::from_value(value)
        .map_err(|e| RequestError::InvalidResponse(format!("not a seat reservation: {e}")))?;
    let valid = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    };
    if !valid(&reservation.room_id) || !valid(&reservation.session_id) {
        return Err(RequestError::InvalidResponse(
            "room or session id outside [A-Za-z0-9_-]".into(),
        ));
    }
    if reservation.public_address.as_deref().is_some_and(|a| {
        a.bytes()
            .any(|b| b.is_ascii_whitespace() || b == b'?' || b == b'#')
    }) || reservation
        .process_id
        .bytes()
        .any(|b| !(b.is_ascii_alphanumeric() || b == b'_' || b == b'-'))
    {
        return Err(RequestError::InvalidResponse(
            "invalid publicAddress or processId".into(),
        ));
    }
    Ok(reservation)
}

/// `GET /matchmake/<roomName>`.
pub(crate) async fn available_rooms(
    endpoint: &Endpoint,
    settings: &RequestSettings,
    name: &str,
) -> Result<Vec<RoomAvailable>, RequestError> {
    let path = format!("/matchmake/{name}");
    let (status, body) = exchange(endpoint, settings, Method::GET, &path, None).await?;
    if !status.is_success() {
        return Err(server_error(status, &body).unwrap_or(RequestError::Server {
            code: ErrorCode::from_code(u32::from(status.as_u16())),
            message: String::new(),
        }));
    }
    serde_json::from_slice(&body).map_err(|e| RequestError::InvalidResponse(e.to_string()))
}

/// Whether a header value can be sent (checked once, when configured).
pub(crate) fn valid_header(name: &str, value: &str) -> bool {
    hyper::header::HeaderName::from_bytes(name.as_bytes()).is_ok()
        && HeaderValue::from_str(value).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints() {
        let e = Endpoint::parse("http://127.0.0.1:2567").unwrap();
        assert_eq!(
            (e.hostname.as_str(), e.port, e.pathname.as_str()),
            ("127.0.0.1", 2567, "")
        );
        let e = Endpoint::parse("ws://example.com/legacy/?a=1").unwrap();
        assert_eq!((e.port, e.pathname.as_str()), (80, "/legacy"));
        assert_eq!(e.search_params.as_deref(), Some("a=1"));
        assert_eq!(e.request_path("/matchmake/x"), "/legacy/matchmake/x?a=1");
        let e = Endpoint::parse("http://[::1]:9/").unwrap();
        assert_eq!((e.connect_host(), e.port), ("::1", 9));
        assert_eq!(
            Endpoint::parse("https://x"),
            Err(EndpointError::TlsUnsupported)
        );
        for bad in [
            "x",
            "ftp://x",
            "http://",
            "http://:1",
            "http://x:y",
            "http://u@x",
        ] {
            assert!(Endpoint::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn reservations() {
        let r =
            parse_reservation(br#"{"name":"w","sessionId":"s1","roomId":"r1","processId":"p"}"#)
                .unwrap();
        assert_eq!((r.room_id.as_str(), r.session_id.as_str()), ("r1", "s1"));
        let r = parse_reservation(
            br#"{"room":{"name":"w","roomId":"r2","processId":"p"},"sessionId":"s"}"#,
        )
        .unwrap();
        assert_eq!(r.room_id, "r2");
        assert!(parse_reservation(br#"{"name":"w","sessionId":"s/..","roomId":"r"}"#).is_err());
        assert!(parse_reservation(b"[]").is_err());
    }

    #[test]
    fn errors() {
        let e = server_error(
            StatusCode::from_u16(522).unwrap(),
            br#"{"code":522,"error":"gone"}"#,
        )
        .unwrap();
        assert_eq!(e.code(), Some(ErrorCode::InvalidRoomId));
        let e = server_error(StatusCode::OK, br#"{"code":4211,"error":"none"}"#).unwrap();
        assert_eq!(e.code(), Some(ErrorCode::InvalidCriteria));
        assert!(server_error(StatusCode::OK, br#"{"roomId":"x"}"#).is_none());
        let e = server_error(StatusCode::NOT_FOUND, b"").unwrap();
        assert_eq!(e.code(), Some(ErrorCode::Other(404)));
    }
}
