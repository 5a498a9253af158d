#![doc = include_str!("../README.md")]

mod client;
mod connection;
mod error;
mod http;
mod protocol;
mod reconnection;
mod room;
mod state;

pub use crate::client::Client;
pub use crate::connection::EVENT_CAPACITY;
pub use crate::error::{
    EndpointError, ErrorCode, JoinError, LatencyError, MessageError, ReplyError, RequestError,
    SendError,
};
pub use crate::http::{RoomAvailable, SeatReservation};
pub use crate::protocol::MessageType;
pub use crate::reconnection::{exponential_backoff, ReconnectionConfig};
pub use crate::room::{HandlerId, Message, Room, RoomEvent, RoomSender};
pub use crate::state::{Dynamic, RoomState};

/// Parses one frame from a server and says whether it is well-formed:
/// the entry point of the `client_frames` fuzz target (`fuzz/`), not part
/// of the API. Untrusted bytes give `false`, never a panic.
#[doc(hidden)]
#[must_use]
pub fn __parse_server_frame(frame: &[u8]) -> bool {
    protocol::parse(frame).is_ok()
}
