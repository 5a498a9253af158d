//! The room side of one client connection: what a [`Transport`](crate::transport::Transport)
//! pumps, over the room task's command queue.

use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::mpsc;

use super::Command;
use crate::room::ConnId;
use crate::transport::{Link, LinkClosed, Outgoing};

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
