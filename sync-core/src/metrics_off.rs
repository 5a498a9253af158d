//! Without the server there is no `/metrics` to count for: the driver's
//! counting calls do nothing (the log lines remain).

use std::time::Instant;

/// Counts nothing (see [`crate::metrics`] with the `server` feature).
#[derive(Debug, Default)]
pub(crate) struct RoomMetrics {}

impl RoomMetrics {
    pub(crate) fn joined(&mut self, _session_id: &str) {}

    pub(crate) fn left(&mut self, _session_id: &str) {}

    pub(crate) fn reconnected(&self) {}

    pub(crate) fn patch_encoded(&self, _started: Instant) {}
}

pub(crate) fn panic_caught() {}
