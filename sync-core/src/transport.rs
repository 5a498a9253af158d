//! The transport seam: what a transport (WebSocket, or one of your own)
//! does with a [`Server`](crate::Server).
//!
//! A transport accepts client connections, opens a [`Session`] for each with
//! [`Server::open_session`](crate::Server::open_session), and then only moves
//! bytes: frames from the client into [`Session::deliver`], and what
//! [`Session::next`] yields back to the client, until one side closes.
//!
//! A transport that can write without waiting (a socket with a
//! non-blocking write and a queue behind it, as the WebSocket transport
//! does) opens the session with
//! [`Server::open_session_with`](crate::Server::open_session_with) and its
//! own [`Link`] instead: the room's task then hands each frame straight to
//! the link, with no task switch per client. A broadcast patch is one
//! shared [`Bytes`] for every client.

use std::fmt;
use std::future::Future;
use std::io;
use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::mpsc;

use crate::room::ConnId;
use crate::server::Command;

/// A transport serving a [`Server`](crate::Server).
pub trait Transport: Send + 'static {
    /// Accepts connections and pumps their sessions until the transport
    /// stops.
    fn serve(self, server: crate::Server) -> impl Future<Output = io::Result<()>> + Send;
}

/// What to do on a client connection.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Outgoing {
    /// Send one binary frame.
    Frame(Bytes),
    /// Close the connection with this code.
    Close(u16),
}

/// The way out to one client connection, called from the room's task.
///
/// `send` must not wait: write now if the connection can take it, queue
/// otherwise. A client that cannot keep up gets [`LinkClosed`] and the room
/// drops it, so nothing is queued without bound.
pub trait Link: Send + Sync + 'static {
    /// Sends (or queues) `out`, in order after everything sent before.
    ///
    /// # Errors
    ///
    /// [`LinkClosed`] when the connection is gone or its queue is full.
    fn send(&self, out: Outgoing) -> Result<(), LinkClosed>;
}

impl fmt::Debug for dyn Link {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Link")
    }
}

/// A [`Link`] that cannot take more: the connection is gone or its client
/// does not read what it is sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LinkClosed;

impl fmt::Display for LinkClosed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the connection is closed or does not keep up")
    }
}

impl std::error::Error for LinkClosed {}

/// The link of [`Server::open_session`](crate::Server::open_session): a
/// bounded queue that [`Session::next`] reads.
#[derive(Debug)]
pub(crate) struct ChannelLink(pub(crate) mpsc::Sender<Outgoing>);

impl Link for ChannelLink {
    fn send(&self, out: Outgoing) -> Result<(), LinkClosed> {
        self.0.try_send(out).map_err(|_| LinkClosed)
    }
}

pub(crate) type SharedLink = Arc<dyn Link>;

/// One client connection, as the room sees it.
#[derive(Debug)]
pub struct Session {
    pub(crate) conn: ConnId,
    pub(crate) room: Option<mpsc::Sender<Command>>,
    /// `None` when the session was opened with a [`Link`] of its own.
    pub(crate) outgoing: Option<mpsc::Receiver<Outgoing>>,
}

impl Session {
    /// Hands a frame the client sent to its room. Waits while the room is
    /// busy, which slows a flooding client down.
    pub async fn deliver(&self, frame: Bytes) {
        if let Some(room) = &self.room {
            let _ = room
                .send(Command::Frame {
                    conn: self.conn,
                    frame,
                })
                .await;
        }
    }

    /// The client sent a frame of `len` bytes that was not read (over the
    /// transport's limit): the room refuses it as any frame over its limit
    /// (ERROR 4217 and a close with 4002).
    pub(crate) async fn refuse_oversized(&self, len: usize) {
        if let Some(room) = &self.room {
            let _ = room
                .send(Command::Oversized {
                    conn: self.conn,
                    len,
                })
                .await;
        }
    }

    /// The next thing to do on the connection; `None` once the room is done
    /// with it (after a [`Outgoing::Close`], or when the room went away).
    /// A session opened with its own [`Link`] gets everything through the
    /// link: here it yields `None` at once.
    pub async fn next(&mut self) -> Option<Outgoing> {
        self.outgoing.as_mut()?.recv().await
    }

    /// The next thing to do if one is ready now, without waiting (to batch
    /// frames into one write).
    pub fn try_next(&mut self) -> Option<Outgoing> {
        self.outgoing.as_mut()?.try_recv().ok()
    }

    /// The client closed the connection (`code` from its close frame).
    pub async fn closed(self, code: Option<u16>) {
        if let Some(room) = &self.room {
            let _ = room
                .send(Command::Closed {
                    conn: self.conn,
                    code,
                })
                .await;
        }
    }
}
