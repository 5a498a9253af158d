//! Colyseus-compatible room server (work in progress: see the room-layer issue).

pub mod msgpack;
pub mod protocol;
