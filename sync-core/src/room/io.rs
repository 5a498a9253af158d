//! What a [`RoomCore`](super::RoomCore) and its [`RoomCtx`](super::RoomCtx)
//! exchange with the shell: connection ids and what to do on a connection.

use bytes::Bytes;

/// Identifies one transport connection (a WebSocket) of a room. A client
/// that reconnects gets a new one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId(pub u64);

/// Something to do on a connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transmit {
    /// The connection.
    pub conn: ConnId,
    /// What to do.
    pub kind: TransmitKind,
}

/// What a [`Transmit`] does.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum TransmitKind {
    /// Send one binary frame. Broadcast frames are shared, never copied.
    Frame(Bytes),
    /// Close the connection with this code (after the frames before it).
    Close(u16),
}
