//! Applying Colyseus state bytes to a local state (work in progress).
