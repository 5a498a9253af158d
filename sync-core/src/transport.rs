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

use bytes::Bytes;

/// The room side of a connection (defined with the server, which owns the
/// room tasks it talks to).
pub use crate::server::Session;

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
