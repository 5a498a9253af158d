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
