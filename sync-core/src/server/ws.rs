//! The WebSocket transport (room-protocol.md §3), on axum.

use std::net::SocketAddr;
use std::time::Duration;

use axum::extract::connect_info::ConnectInfo;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{FromRequestParts, Request};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::serve::ListenerExt;
use axum::Router;
use futures_util::{SinkExt, StreamExt};

use super::Server;
use crate::protocol::{self, close_code, Dialect};
use crate::room::{AuthRequest, ConnectRequest};
use crate::transport::{Outgoing, Transport};

/// The WebSocket + HTTP transport the SDKs speak, on a TCP listener.
#[derive(Debug)]
pub struct WebSocketTransport {
    listener: tokio::net::TcpListener,
}

impl WebSocketTransport {
    /// Serves on `listener`.
    #[must_use]
    pub fn new(listener: tokio::net::TcpListener) -> Self {
        Self { listener }
    }

    /// The address clients reach.
    ///
    /// # Errors
    ///
    /// What the listener reports.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }
}

impl Transport for WebSocketTransport {
    async fn serve(self, server: Server) -> std::io::Result<()> {
        let app = Router::new()
            .fallback(super::http::entry)
            .with_state(server);
        // Small frames must leave at once (the reference's `ws` does the same).
        let listener = self.listener.tap_io(|tcp| {
            let _ = tcp.set_nodelay(true);
        });
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
    }
}

/// Protocol-level ping period; two unanswered pings end the connection.
const KEEP_ALIVE: Duration = Duration::from_secs(3);

pub(super) async fn upgrade(
    server: Server,
    dialect: Dialect,
    request: Request,
    path: &str,
) -> Response {
    let (mut parts, _body) = request.into_parts();
    let Ok(ws) = WebSocketUpgrade::from_request_parts(&mut parts, &()).await else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let remote_addr = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0);
    let query = parts.uri.query().unwrap_or("");
    let param = |name: &str| {
        query.split('&').find_map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (k == name).then(|| percent_decode(v))
        })
    };
    let session_id = param("sessionId");
    // roomId = last path segment (`/<processId>/<roomId>`).
    let room_id = path
        .rsplit('/')
        .next()
        .filter(|s| super::valid_name(s))
        .map(str::to_owned);
    let limit = server.config().max_frame_bytes;
    // Small buffers: most frames are tens of bytes, and a server holds
    // thousands of connections (tungstenite's default is 128 KiB each way).
    let ws = ws
        .max_message_size(limit.saturating_mul(2).max(limit + 4096))
        .max_frame_size(limit.saturating_mul(2).max(limit + 4096))
        .read_buffer_size(4 * 1024)
        .write_buffer_size(4 * 1024);
    let (Some(session_id), Some(room_id)) = (session_id, room_id) else {
        // 0.18 `getLatency()`: a connection without room or session.
        return ws.on_upgrade(latency_probe);
    };
    let headers: Vec<(String, String)> = parts
        .headers
        .iter()
        .filter_map(|(k, v)| Some((k.as_str().to_owned(), v.to_str().ok()?.to_owned())))
        .collect();
    let token = param("_authToken").or_else(|| {
        parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::to_owned)
    });
    let mut request = ConnectRequest::new(session_id);
    request.reconnection_token =
        param("reconnectionToken").map(|t| t.rsplit(':').next().unwrap_or_default().to_owned());
    request.skip_handshake = param("skipHandshake").is_some();
    request.dialect = dialect;
    request.auth = AuthRequest {
        headers,
        remote_addr,
        token,
    };
    ws.on_upgrade(move |socket| pump(server, room_id, request, socket))
}

async fn pump(server: Server, room_id: String, request: ConnectRequest, socket: WebSocket) {
    let mut session = server.open_session(&room_id, request).await;
    let (mut sink, mut stream) = socket.split();
    let mut keep_alive = tokio::time::interval(KEEP_ALIVE);
    keep_alive.tick().await;
    let mut unanswered = 0u8;
    let close_code = loop {
        tokio::select! {
            outgoing = session.next() => {
                let Some(first) = outgoing else {
                    // The room went away.
                    let _ = sink.send(Message::Close(None)).await;
                    return;
                };
                // Write everything already queued, then flush once.
                let mut item = Some(first);
                let mut close = None;
                while let Some(current) = item.take() {
                    match current {
                        Outgoing::Frame(frame) => {
                            if sink.feed(Message::Binary(frame)).await.is_err() {
                                break;
                            }
                        }
                        Outgoing::Close(code) => {
                            close = Some(code);
                            break;
                        }
                    }
                    item = session.try_next();
                }
                if sink.flush().await.is_err() {
                    break None;
                }
                if let Some(code) = close {
                    let _ = sink
                        .send(Message::Close(Some(CloseFrame { code, reason: "".into() })))
                        .await;
                    // The room is done with this client.
                    return;
                }
            },
            incoming = stream.next() => match incoming {
                Some(Ok(Message::Binary(frame))) => session.deliver(frame).await,
                Some(Ok(Message::Text(text))) => {
                    session.deliver(axum::body::Bytes::copy_from_slice(text.as_bytes())).await;
                }
                Some(Ok(Message::Pong(_))) => unanswered = 0,
                Some(Ok(Message::Ping(_))) => {}
                Some(Ok(Message::Close(frame))) => break Some(frame.map_or(1005, |f| f.code)),
                Some(Err(_)) | None => break None,
            },
            _ = keep_alive.tick() => {
                // Two pings without a pong: the peer is gone (client sees 1006).
                if unanswered >= 2 || sink.send(Message::Ping(Default::default())).await.is_err() {
                    break None;
                }
                unanswered += 1;
            }
        }
    };
    session.closed(close_code).await;
}

/// Answers every message with PING and closes with 1000 after a second.
async fn latency_probe(mut socket: WebSocket) {
    let deadline = tokio::time::sleep(Duration::from_secs(1));
    tokio::pin!(deadline);
    loop {
        tokio::select! {
            () = &mut deadline => break,
            incoming = socket.recv() => match incoming {
                Some(Ok(Message::Binary(_) | Message::Text(_))) => {
                    if socket.send(Message::Binary(protocol::encode_ping())).await.is_err() {
                        return;
                    }
                }
                Some(Ok(_)) => {}
                Some(Err(_)) | None => return,
            },
        }
    }
    let _ = socket
        .send(Message::Close(Some(CloseFrame {
            code: close_code::NORMAL,
            reason: "".into(),
        })))
        .await;
}

fn percent_decode(value: &str) -> String {
    let hex = |b: u8| char::from(b).to_digit(16);
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let decoded = match (bytes[i], bytes.get(i + 1), bytes.get(i + 2)) {
            (b'%', Some(&hi), Some(&lo)) => hex(hi).zip(hex(lo)).map(|(h, l)| (h * 16 + l) as u8),
            _ => None,
        };
        match decoded {
            Some(b) => {
                out.push(b);
                i += 3;
            }
            None => {
                out.push(if bytes[i] == b'+' { b' ' } else { bytes[i] });
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}
