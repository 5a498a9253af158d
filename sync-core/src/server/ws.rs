//! The WebSocket transport (room-protocol.md §3): HTTP/1.1 on hyper with
//! the axum router, and WebSocket connections whose frames the room's task
//! writes straight to the socket.
//!
//! # Why the write side is ours
//!
//! A patch goes to every client of a room, so its cost per client is what
//! decides how many clients a core serves. A WebSocket crate owns its
//! socket: every frame is handed to a task per connection (a wakeup, often
//! on the other core) and copied into that connection's write buffer. Here
//! the room's task writes the frame header and the shared patch bytes with
//! one vectored, non-blocking `write` per client ([`WsLink`]); only what
//! the socket cannot take at once is queued, and the connection's own task
//! finishes it when the socket is writable. Reading, masking, control
//! frames, fragmentation and limits stay with `tungstenite`, which reads
//! the socket and writes its few replies (pong, close) through the same
//! queue, so frames never interleave.

use std::collections::VecDeque;
use std::io::{self, IoSlice};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use axum::extract::connect_info::ConnectInfo;
use axum::extract::Request;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use bytes::{Buf, Bytes};
use futures_util::{SinkExt, StreamExt};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpStream;
use tokio::sync::Notify;
use tokio_tungstenite::tungstenite::error::CapacityError;
use tokio_tungstenite::tungstenite::handshake::server::create_response_with_body;
use tokio_tungstenite::tungstenite::protocol::{
    CloseFrame, Role, WebSocketConfig, WebSocketContext,
};
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::WebSocketStream;

use super::Server;
use crate::protocol::{self, close_code, Dialect};
use crate::room::{AuthRequest, ConnectRequest};
use crate::transport::{Link, LinkClosed, Outgoing, Transport};

/// The WebSocket + HTTP transport the SDKs speak, on a TCP listener.
#[derive(Debug)]
pub struct WebSocketTransport {
    listener: tokio::net::TcpListener,
}

/// Connections a listener of [`WebSocketTransport::bind`] queues before it
/// accepts them: a burst of joins opens as many connections at once (the
/// standard library's 128 overflowed in a burst of 600 joins: clients then
/// wait a second for the kernel to retry; Node's default is 511).
const LISTEN_BACKLOG: u32 = 1024;

impl WebSocketTransport {
    /// Binds `addr` (the first address it resolves to) with a listen
    /// backlog of 1024.
    ///
    /// # Errors
    ///
    /// When the address does not resolve or cannot be bound.
    pub async fn bind(addr: impl tokio::net::ToSocketAddrs) -> std::io::Result<Self> {
        let addr = tokio::net::lookup_host(addr)
            .await?
            .next()
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no address to bind"))?;
        let socket = if addr.is_ipv4() {
            tokio::net::TcpSocket::new_v4()?
        } else {
            tokio::net::TcpSocket::new_v6()?
        };
        socket.set_reuseaddr(true)?;
        socket.bind(addr)?;
        Ok(Self::new(socket.listen(LISTEN_BACKLOG)?))
    }

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
        let router = Router::new()
            .fallback(super::http::entry)
            .with_state(server);
        loop {
            let (tcp, remote) = match self.listener.accept().await {
                Ok(accepted) => accepted,
                // The peer gave up before we took it: nothing to do.
                Err(e) if is_connection_error(&e) => continue,
                Err(e) => {
                    // Out of descriptors, say: wait instead of spinning.
                    tracing::error!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            // Small frames must leave at once (the reference's `ws` does the same).
            let _ = tcp.set_nodelay(true);
            let router = router.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(
                    move |mut request: hyper::Request<hyper::body::Incoming>| {
                        request.extensions_mut().insert(ConnectInfo(remote));
                        let mut router = router.clone();
                        async move {
                            tower_service::Service::call(
                                &mut router,
                                request.map(axum::body::Body::new),
                            )
                            .await
                        }
                    },
                );
                // The plain TCP stream under hyper, so that an upgraded
                // connection can be taken back as one (see `upgrade`).
                let connection = hyper::server::conn::http1::Builder::new()
                    // A peer that opens a connection and sends no request
                    // does not hold it for ever.
                    .timer(TokioTimer::new())
                    .header_read_timeout(HEADER_READ_TIMEOUT)
                    .serve_connection(TokioIo::new(tcp), service)
                    .with_upgrades();
                if let Err(e) = connection.await {
                    tracing::debug!("HTTP connection ended: {e}");
                }
            });
        }
    }
}

fn is_connection_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}

/// How long a connection may take to send its request headers.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// Protocol-level ping period; two unanswered pings end the connection.
const KEEP_ALIVE: Duration = Duration::from_secs(3);

/// Bytes a connection may have waiting for its socket before its client
/// counts as not keeping up (one frame of any size is always accepted).
const MAX_QUEUED_BYTES: usize = 4 * 1024 * 1024;

/// How long a closing connection waits for the client to close its side,
/// discarding what it still sends; and how long the room has to answer an
/// oversized frame. Closing a socket with unread bytes sends a reset, and
/// a reset makes the client drop what it has not read yet: the ERROR and
/// the close frame (it would see 1006).
const LINGER: Duration = Duration::from_secs(2);

/// The `101 Switching Protocols` answer to a valid RFC 6455 opening
/// handshake (tungstenite's checks: GET, HTTP/1.1, `Connection: upgrade`,
/// `Upgrade: websocket`, version 13, a key); `None` for anything else.
fn switching_protocols<B>(request: &axum::http::Request<B>) -> Option<Response> {
    create_response_with_body(request, axum::body::Body::empty).ok()
}

pub(super) async fn upgrade(
    server: Server,
    dialect: Dialect,
    mut request: Request,
    path: &str,
) -> Response {
    let Some(response) = switching_protocols(&request) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let on_upgrade = hyper::upgrade::on(&mut request);
    let (parts, _body) = request.into_parts();
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
    let limit = server.config().max_frame_bytes;
    let limit = limit.saturating_mul(2).max(limit + 4096);
    // Small read buffer: most frames are tens of bytes, and a server holds
    // thousands of connections (tungstenite's default is 128 KiB). Nothing
    // is buffered on the way out: writes go to the connection's queue.
    let config = WebSocketConfig::default()
        .max_message_size(Some(limit))
        .max_frame_size(Some(limit))
        .read_buffer_size(4 * 1024)
        .write_buffer_size(0);
    let session_id = param("sessionId");
    // roomId = last path segment (`/<processId>/<roomId>`).
    let room_id = path
        .rsplit('/')
        .next()
        .filter(|s| super::valid_name(s))
        .map(str::to_owned);
    let connect = match (session_id, room_id) {
        (Some(session_id), Some(room_id)) => {
            let headers: Vec<(String, String)> = parts
                .headers
                .iter()
                .filter_map(|(k, v)| Some((k.as_str().to_owned(), v.to_str().ok()?.to_owned())))
                .collect();
            let token = param("_authToken").or_else(|| {
                parts
                    .headers
                    .get(header::AUTHORIZATION)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.strip_prefix("Bearer "))
                    .map(str::to_owned)
            });
            let mut request = ConnectRequest::new(session_id);
            request.reconnection_token = param("reconnectionToken")
                .map(|t| t.rsplit(':').next().unwrap_or_default().to_owned());
            request.skip_handshake = param("skipHandshake").is_some();
            request.dialect = dialect;
            request.auth = AuthRequest {
                headers,
                remote_addr,
                token,
            };
            Some((room_id, request))
        }
        // 0.18 `getLatency()`: a connection without room or session.
        _ => None,
    };
    // The connection runs on its room's thread, if rooms have threads.
    let runtime = connect
        .as_ref()
        .and_then(|(room_id, _)| server.runtime_of(room_id));
    let connection = async move {
        let upgraded = match on_upgrade.await {
            Ok(upgraded) => upgraded,
            Err(e) => {
                tracing::debug!("WebSocket upgrade failed: {e}");
                return;
            }
        };
        let Ok(parts) = upgraded.downcast::<TokioIo<TcpStream>>() else {
            tracing::error!("WebSocket upgrade: not a TCP connection");
            return;
        };
        // Registered again with this runtime's reactor: its readiness
        // wakes this thread, not the one that accepted it.
        let tcp = match parts
            .io
            .into_inner()
            .into_std()
            .and_then(TcpStream::from_std)
        {
            Ok(tcp) => tcp,
            Err(e) => {
                tracing::warn!("WebSocket connection lost at the upgrade: {e}");
                return;
            }
        };
        let leftover = parts.read_buf;
        match connect {
            Some((room_id, request)) => pump(server, room_id, request, tcp, leftover, config).await,
            None => {
                let socket = WebSocketStream::from_partially_read(
                    tcp,
                    leftover.to_vec(),
                    Role::Server,
                    Some(config),
                )
                .await;
                latency_probe(socket).await;
            }
        }
    };
    match runtime {
        Some(runtime) => drop(runtime.spawn(connection)),
        None => drop(tokio::spawn(connection)),
    }
    response
}

/// What waits for a connection's socket.
#[derive(Debug, Default)]
struct Outbox {
    /// Chunks in order; the front one may be partly written already
    /// (it is advanced past what went out).
    queue: VecDeque<Bytes>,
    queued: usize,
    /// A close frame is queued: nothing more goes after it.
    closing: bool,
    /// The socket failed or the client did not keep up.
    failed: bool,
    /// The room let go of this connection.
    released: bool,
    /// Since when queued bytes wait without any going out (reset by each
    /// write that makes progress): the write timeout's clock. `Some`
    /// exactly while `queue` is not empty.
    stalled_since: Option<Instant>,
}

impl Outbox {
    fn push(&mut self, chunk: Bytes) {
        if !chunk.is_empty() {
            self.queued += chunk.len();
            self.queue.push_back(chunk);
        }
    }

    /// Drops the first `n` queued bytes (they were written).
    fn consume(&mut self, mut n: usize) {
        self.queued -= n;
        while n > 0 {
            let Some(front) = self.queue.front_mut() else {
                return;
            };
            if front.len() <= n {
                n -= front.len();
                self.queue.pop_front();
            } else {
                front.advance(n);
                n = 0;
            }
        }
    }
}

/// One WebSocket connection's way out: the room's task writes into the
/// socket directly when nothing is waiting, else queues behind what is.
#[derive(Debug)]
struct WsLink {
    tcp: TcpStream,
    out: Mutex<Outbox>,
    /// Tells the connection's task that the queue has work (or news).
    wake: Notify,
}

impl WsLink {
    fn lock(&self) -> MutexGuard<'_, Outbox> {
        self.out.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Writes `header` then `payload`, or queues what the socket does not
    /// take now.
    fn write(&self, header: &[u8], payload: Bytes) -> Result<(), LinkClosed> {
        let mut out = self.lock();
        if out.failed || out.closing {
            return Err(LinkClosed);
        }
        let was_empty = out.queue.is_empty();
        let mut written = 0;
        if was_empty {
            match write_frame(&self.tcp, header, &payload) {
                Ok(n) => written = n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(_) => {
                    out.failed = true;
                    self.wake.notify_one();
                    return Err(LinkClosed);
                }
            }
            if written == header.len() + payload.len() {
                return Ok(());
            }
        }
        if written < header.len() {
            out.push(Bytes::copy_from_slice(&header[written..]));
            out.push(payload);
        } else {
            out.push(payload.slice(written - header.len()..));
        }
        if out.stalled_since.is_none() {
            out.stalled_since = Some(Instant::now());
        }
        if !was_empty && out.queued > MAX_QUEUED_BYTES {
            out.failed = true;
            self.wake.notify_one();
            return Err(LinkClosed);
        }
        self.wake.notify_one();
        Ok(())
    }

    /// Writes what the socket takes now, without waiting: `Ok(true)` once
    /// a close frame is out and nothing is left, `Ok(false)` while the
    /// connection is open (bytes may still wait for the socket).
    ///
    /// # Errors
    ///
    /// When the socket failed, or the room gave the connection up.
    fn flush(&self) -> io::Result<bool> {
        let mut out = self.lock();
        loop {
            if out.failed {
                return Err(io::ErrorKind::BrokenPipe.into());
            }
            while !out.queue.is_empty() {
                let mut slices = [IoSlice::new(&[]); 16];
                let mut count = 0;
                for (slot, chunk) in slices.iter_mut().zip(&out.queue) {
                    *slot = IoSlice::new(chunk);
                    count += 1;
                }
                match self.tcp.try_write_vectored(&slices[..count]) {
                    Ok(n) => {
                        out.consume(n);
                        out.stalled_since = Some(Instant::now());
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                    Err(e) => {
                        out.failed = true;
                        return Err(e);
                    }
                }
            }
            out.stalled_since = None;
            if !out.closing && out.released {
                // The room went away without closing: say so.
                out.closing = true;
                out.push(Bytes::from_static(&[0x88, 0x00]));
                continue;
            }
            return Ok(out.closing);
        }
    }

    /// Whether bytes wait for the socket.
    fn has_queued(&self) -> bool {
        !self.lock().queue.is_empty()
    }

    /// When the queued bytes will have waited `timeout` without progress;
    /// `None` when nothing is queued.
    fn stall_deadline(&self, timeout: Duration) -> Option<tokio::time::Instant> {
        let since = self.lock().stalled_since?;
        Some(tokio::time::Instant::from_std(since + timeout))
    }

    /// Writes what is queued until it is all out or `within` passed
    /// (`Ok(true)` if a close frame was among it).
    async fn drain(&self, within: Duration) -> io::Result<bool> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let closed = self.flush()?;
            if !self.has_queued() {
                return Ok(closed);
            }
            match tokio::time::timeout_at(deadline, self.tcp.writable()).await {
                Ok(ready) => ready?,
                Err(_) => return Err(io::ErrorKind::TimedOut.into()),
            }
        }
    }

    /// Queues ERROR(4217, `message`) and a close with 4002, unless a close
    /// is already queued.
    fn fail(&self, message: &str) {
        let frame = protocol::encode_error(protocol::error_code::INVALID_PAYLOAD, message);
        let (header, used) = binary_header(frame.len());
        let _ = self.write(&header[..used], frame);
        let [hi, lo] = close_code::WITH_ERROR.to_be_bytes();
        let _ = self.write(&[0x88, 0x02, hi, lo], Bytes::new());
        self.lock().closing = true;
    }

    /// The end of a connection whose close frame is out (or that the
    /// client closed): sends FIN, then reads and discards until the client
    /// closes its side or [`LINGER`] passed, so the socket is not closed
    /// with unread bytes (a reset that could cost the client its last
    /// frames).
    async fn linger(&self) {
        shutdown_write(&self.tcp);
        let deadline = tokio::time::Instant::now() + LINGER;
        let mut scratch = [0u8; 4096];
        loop {
            match tokio::time::timeout_at(deadline, self.tcp.readable()).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) | Err(_) => return,
            }
            match self.tcp.try_read(&mut scratch) {
                Ok(0) => return,
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(_) => return,
            }
        }
    }

    /// Gives the connection up at once: the socket is reset when it is
    /// dropped, so the kernel frees its buffers now, not after trying to
    /// deliver them to a client that does not read.
    fn abort(&self) {
        let _ = self.tcp.set_zero_linger();
        let mut out = self.lock();
        out.failed = true;
        out.queue.clear();
        out.queued = 0;
        out.stalled_since = None;
    }
}

/// Frames up to this size (header included) are copied behind their
/// header and written with one `send`; larger ones with a `writev`.
const COPY_UP_TO: usize = 8 * 1024;

thread_local! {
    /// Where a small frame is put together for its `send`.
    static SCRATCH: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Writes what the socket takes now of `header` then `payload`.
///
/// A patch goes to every client, so this is the server's most frequent
/// system call. In the kernel a `writev` costs more than a `send` of the
/// same bytes (the descriptor's position lock, importing the vector:
/// ~4% of a loadgen server's CPU, measured with `perf`), more than copying
/// a frame of a few kB in user space, so small frames go out in one piece.
fn write_frame(tcp: &TcpStream, header: &[u8], payload: &[u8]) -> io::Result<usize> {
    if header.is_empty() {
        return tcp.try_write(payload);
    }
    if header.len() + payload.len() > COPY_UP_TO {
        return tcp.try_write_vectored(&[IoSlice::new(header), IoSlice::new(payload)]);
    }
    SCRATCH.with_borrow_mut(|frame| {
        frame.clear();
        frame.extend_from_slice(header);
        frame.extend_from_slice(payload);
        tcp.try_write(frame)
    })
}

/// Sends FIN on a socket others hold too (tokio's shutdown needs it
/// exclusively): through a duplicate of its descriptor, as `shutdown`
/// acts on the socket, not the descriptor.
#[cfg(unix)]
fn shutdown_write(tcp: &TcpStream) {
    use std::os::fd::AsFd;
    if let Ok(fd) = tcp.as_fd().try_clone_to_owned() {
        let _ = std::net::TcpStream::from(fd).shutdown(std::net::Shutdown::Write);
    }
}

#[cfg(not(unix))]
fn shutdown_write(_: &TcpStream) {}

/// WebSocket frame header of a final binary frame of `len` bytes (server
/// frames are not masked).
fn binary_header(len: usize) -> ([u8; 10], usize) {
    let mut header = [0u8; 10];
    header[0] = 0x82;
    let used = if len < 126 {
        header[1] = len as u8;
        2
    } else if let Ok(len) = u16::try_from(len) {
        header[1] = 126;
        header[2..4].copy_from_slice(&len.to_be_bytes());
        4
    } else {
        header[1] = 127;
        header[2..10].copy_from_slice(&(len as u64).to_be_bytes());
        10
    };
    (header, used)
}

/// What the room holds of a connection; dropping it tells the connection.
#[derive(Debug)]
struct RoomSide(Arc<WsLink>);

impl Link for RoomSide {
    fn send(&self, out: Outgoing) -> Result<(), LinkClosed> {
        match out {
            Outgoing::Frame(frame) => {
                let (header, used) = binary_header(frame.len());
                self.0.write(&header[..used], frame)
            }
            Outgoing::Close(code) => {
                let [hi, lo] = code.to_be_bytes();
                let result = self.0.write(&[0x88, 0x02, hi, lo], Bytes::new());
                self.0.lock().closing = true;
                self.0.wake.notify_one();
                result
            }
        }
    }
}

impl Drop for RoomSide {
    fn drop(&mut self) {
        self.0.lock().released = true;
        self.0.wake.notify_one();
    }
}

/// The socket as `tungstenite` sees it: non-blocking reads from the
/// socket (`WouldBlock` when it has nothing), writes (pongs, close
/// replies) through the connection's queue.
///
/// The connection drives tungstenite's [`WebSocketContext`] itself: with
/// tokio-tungstenite's stream every readiness event went through its
/// waker proxies (an `AtomicWaker` registered and woken per read, per
/// message: ~3% of a loadgen server's CPU in `perf`).
struct ConnIo<'a>(&'a WsLink);

impl io::Read for ConnIo<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let tcp = &self.0.tcp;
        let room = buf.len();
        let mut got = None;
        // A read that leaves room in the buffer emptied the socket: its
        // readiness is cleared now (by answering `WouldBlock` to
        // `try_io`), so the next read waits for the next edge instead of
        // making a `recvfrom` that can only fail (tokio's own `poll_read`
        // does the same). One `recvfrom` per message instead of two.
        let read = tcp.try_io(tokio::io::Interest::READABLE, || {
            let n = tcp.try_read(buf)?;
            got = Some(n);
            if n > 0 && n < room {
                Err(io::ErrorKind::WouldBlock.into())
            } else {
                Ok(())
            }
        });
        match (got, read) {
            (Some(n), _) => Ok(n),
            (None, Err(e)) => Err(e),
            (None, Ok(())) => Err(io::ErrorKind::WouldBlock.into()),
        }
    }
}

impl io::Write for ConnIo<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self.0.write(&[], Bytes::copy_from_slice(buf)) {
            Ok(()) => Ok(buf.len()),
            Err(LinkClosed) => Err(io::ErrorKind::BrokenPipe.into()),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Messages read in a row before the connection's loop goes round (writes
/// its queue, checks its timers).
const MESSAGES_PER_TURN: usize = 32;

/// Ready when tungstenite may hold a whole message already (`buffered`),
/// else when the socket is readable.
async fn readable(tcp: &TcpStream, buffered: bool) -> io::Result<()> {
    if buffered {
        Ok(())
    } else {
        tcp.readable().await
    }
}

/// How a connection's pump ended.
enum End {
    /// The client closed (its close code, if it sent one) or its
    /// connection broke.
    Client(Option<u16>),
    /// The close frame is out: the room closed the connection (or went
    /// away), or it was refused for an oversized frame.
    Closed,
    /// The socket failed, the room gave the connection up, or nothing
    /// could be written for the write timeout: reset it.
    Abort,
}

async fn pump(
    server: Server,
    room_id: String,
    request: ConnectRequest,
    tcp: TcpStream,
    leftover: Bytes,
    config: WebSocketConfig,
) {
    let write_timeout = server.config().write_timeout;
    let link = Arc::new(WsLink {
        tcp,
        out: Mutex::default(),
        wake: Notify::new(),
    });
    let session = server
        .open_session_with(&room_id, request, Arc::new(RoomSide(link.clone())))
        .await;
    let mut socket =
        WebSocketContext::from_partially_read(leftover.to_vec(), Role::Server, Some(config));
    // Whether tungstenite may hold a message it has not returned yet (the
    // handshake's leftover, or a turn that stopped at its limit).
    let mut buffered = true;
    let mut keep_alive = tokio::time::interval(KEEP_ALIVE);
    keep_alive.tick().await;
    let mut unanswered = 0u8;
    // Set once a frame over the limit came: reading stops, and the room
    // has until then to send its ERROR and close.
    let mut refused: Option<tokio::time::Instant> = None;
    let end = 'pump: loop {
        match link.flush() {
            Ok(true) => break End::Closed,
            Ok(false) => {}
            Err(_) => break End::Abort,
        }
        let stalled = link.stall_deadline(write_timeout);
        let queued = stalled.is_some();
        // Biased, the socket first: a wakeup for a message polls only
        // the socket (the other branches are not registered again just to
        // be dropped); the wake-up and timer branches run when it has
        // nothing (the loop's top does the writing either way).
        tokio::select! {
            biased;
            ready = readable(&link.tcp, buffered), if refused.is_none() => {
                if ready.is_err() {
                    break End::Client(None);
                }
                buffered = true;
                for _ in 0..MESSAGES_PER_TURN {
                    match socket.read(&mut ConnIo(&link)) {
                        Ok(Message::Binary(frame)) => session.deliver(frame).await,
                        Ok(Message::Text(text)) => {
                            session.deliver(Bytes::copy_from_slice(text.as_bytes())).await;
                        }
                        Ok(Message::Pong(_)) => unanswered = 0,
                        Ok(Message::Ping(_) | Message::Frame(_)) => {}
                        Ok(Message::Close(frame)) => {
                            // tungstenite queued the close reply; this hands
                            // it to the link, the drain after the loop
                            // writes it.
                            let _ = socket.flush(&mut ConnIo(&link));
                            break 'pump End::Client(Some(frame.map_or(1005, |f| u16::from(f.code))));
                        }
                        Err(WsError::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => {
                            buffered = false;
                            break;
                        }
                        Err(WsError::Capacity(CapacityError::MessageTooLong { size, .. })) => {
                            // Over twice the room's limit: tungstenite stops
                            // before reading it. The room answers it as any
                            // frame over its limit (ERROR 4217, close 4002,
                            // `on_drop`).
                            session.refuse_oversized(size).await;
                            refused = Some(tokio::time::Instant::now() + LINGER);
                            break;
                        }
                        Err(_) => break 'pump End::Client(None),
                    }
                }
            }
            () = link.wake.notified() => {}
            ready = link.tcp.writable(), if queued => {
                if ready.is_err() {
                    break End::Abort;
                }
            }
            () = sleep_until(stalled), if stalled.is_some() => {
                if link.stall_deadline(write_timeout).is_some_and(|d| d <= tokio::time::Instant::now()) {
                    tracing::warn!("closing a client that read nothing for {write_timeout:?}");
                    break End::Abort;
                }
            }
            () = sleep_until(refused), if refused.is_some() => {
                // The room did not answer (it does not know the
                // connection): refuse it here.
                link.fail("frame exceeds the size limit");
                refused = None;
            }
            _ = keep_alive.tick() => {
                // Two pings without a pong: the peer is gone (client sees 1006).
                if unanswered >= 2 || link.write(&[0x89, 0x00], Bytes::new()).is_err() {
                    break End::Client(None);
                }
                unanswered += 1;
            }
        }
    };
    drop(socket);
    match end {
        End::Client(code) => {
            // A close reply goes out first, unless the peer does not read
            // it: the room must learn of the close anyway.
            let closed = link.drain(Duration::from_secs(1)).await;
            session.closed(code).await;
            match closed {
                Ok(_) => link.linger().await,
                Err(_) => link.abort(),
            }
        }
        End::Closed => {
            // The room knows (it closed it, or gave it up); one that never
            // heard of it (an oversized frame refused here) forgets it.
            session.closed(Some(close_code::WITH_ERROR)).await;
            link.linger().await;
        }
        End::Abort => {
            link.abort();
            session.closed(None).await;
        }
    }
}

/// Sleeps until `deadline`, or for ever without one (built only when
/// polled: a disabled `select!` branch costs no timer).
async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

/// Answers every message with PING and closes with 1000 after a second.
async fn latency_probe(mut socket: WebSocketStream<TcpStream>) {
    let deadline = tokio::time::sleep(Duration::from_secs(1));
    tokio::pin!(deadline);
    loop {
        tokio::select! {
            () = &mut deadline => break,
            incoming = socket.next() => match incoming {
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
            code: close_code::NORMAL.into(),
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

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::Method;

    #[test]
    fn binary_header_lengths() {
        let (h, n) = binary_header(5);
        assert_eq!(&h[..n], &[0x82, 5]);
        let (h, n) = binary_header(125);
        assert_eq!(&h[..n], &[0x82, 125]);
        let (h, n) = binary_header(126);
        assert_eq!(&h[..n], &[0x82, 126, 0, 126]);
        let (h, n) = binary_header(65_535);
        assert_eq!(&h[..n], &[0x82, 126, 0xff, 0xff]);
        let (h, n) = binary_header(65_536);
        assert_eq!(&h[..n], &[0x82, 127, 0, 0, 0, 0, 0, 1, 0, 0]);
    }

    #[test]
    fn outbox_consumes_across_chunks() {
        let mut out = Outbox::default();
        out.push(Bytes::from_static(b"ab"));
        out.push(Bytes::new());
        out.push(Bytes::from_static(b"cdef"));
        assert_eq!((out.queue.len(), out.queued), (2, 6));
        out.consume(3);
        assert_eq!((out.queue.len(), out.queued), (1, 3));
        assert_eq!(&out.queue[0][..], b"def");
        out.consume(3);
        assert!(out.queue.is_empty());
        assert_eq!(out.queued, 0);
    }

    #[test]
    fn handshake_needs_every_header() {
        let request = |method: Method, version: &'static str, key: Option<&'static str>| {
            let mut r = axum::http::Request::builder()
                .method(method)
                .header(header::CONNECTION, "keep-alive, Upgrade")
                .header(header::UPGRADE, "websocket")
                .header(header::SEC_WEBSOCKET_VERSION, version);
            if let Some(key) = key {
                r = r.header(header::SEC_WEBSOCKET_KEY, key);
            }
            r.body(()).unwrap()
        };
        // RFC 6455 §1.3's example key.
        let key = Some("dGhlIHNhbXBsZSBub25jZQ==");
        assert!(switching_protocols(&request(Method::GET, "13", None)).is_none());
        let ok = switching_protocols(&request(Method::GET, "13", key)).unwrap();
        assert_eq!(ok.status(), StatusCode::SWITCHING_PROTOCOLS);
        assert_eq!(
            ok.headers()[header::SEC_WEBSOCKET_ACCEPT],
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
        assert!(switching_protocols(&request(Method::POST, "13", key)).is_none());
        assert!(switching_protocols(&request(Method::GET, "8", key)).is_none());
    }
}
