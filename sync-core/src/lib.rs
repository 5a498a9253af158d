//! Colyseus-compatible room server (work in progress: see the room-layer issue).
