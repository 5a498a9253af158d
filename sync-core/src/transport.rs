//! The transport seam: what a transport (WebSocket, or one of your own)
//! does with a [`Server`](crate::Server).
//!
//! A transport accepts client connections, opens a [`Session`] for each with
//! [`Server::open_session`](crate::Server::open_session), and then only moves
//! bytes: frames from the client into [`Session::deliver`], and what
//! [`Session::next`] yields back to the client, until one side closes.

use std::future::Future;
use std::io;

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

/// One client connection, as the room sees it.
#[derive(Debug)]
pub struct Session {
    pub(crate) conn: ConnId,
    pub(crate) room: Option<mpsc::Sender<Command>>,
    pub(crate) outgoing: mpsc::Receiver<Outgoing>,
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

    /// The next thing to do on the connection; `None` once the room is done
    /// with it (after a [`Outgoing::Close`], or when the room went away).
    pub async fn next(&mut self) -> Option<Outgoing> {
        self.outgoing.recv().await
    }

    /// The next thing to do if one is ready now, without waiting (to batch
    /// frames into one write).
    pub fn try_next(&mut self) -> Option<Outgoing> {
        self.outgoing.try_recv().ok()
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
