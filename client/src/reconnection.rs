//! Automatic reconnection settings, as `Reconnection.ts` of `@colyseus/sdk`
//! 0.18 defines them.

use std::time::Duration;

/// How a room reconnects by itself after its connection drops (spec
/// `room-protocol.md` §8): after a close with 1001, 1005, 1006 or 4010, once
/// the room has been joined for at least [`min_uptime`](Self::min_uptime),
/// the client re-opens the WebSocket with its reconnection token, up to
/// [`max_retries`](Self::max_retries) times, waiting
/// `clamp(backoff(attempt, delay), min_delay, max_delay)` before each
/// attempt. Messages sent meanwhile are kept (the last
/// [`max_enqueued_messages`](Self::max_enqueued_messages)) and sent once the
/// room is back. The defaults are the SDK's.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use roomcast_client::{Client, ReconnectionConfig};
///
/// let mut reconnection = ReconnectionConfig::default();
/// reconnection.max_retries = 3;
/// reconnection.min_uptime = Duration::ZERO;
/// let client = Client::new("http://127.0.0.1:2567")?.with_reconnection(reconnection);
/// # Ok::<(), roomcast_client::EndpointError>(())
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ReconnectionConfig {
    /// Whether the room reconnects by itself (default `true`); when not, a
    /// drop ends the room with its close code.
    pub enabled: bool,
    /// Attempts before giving up with close code 4003 (default 15).
    pub max_retries: u32,
    /// The base delay given to [`backoff`](Self::backoff) (default 100 ms).
    pub delay: Duration,
    /// The shortest wait before an attempt (default 100 ms).
    pub min_delay: Duration,
    /// The longest wait before an attempt (default 5 s).
    pub max_delay: Duration,
    /// How long the room must have been joined before a drop is
    /// reconnected (default 5 s); a drop before ends the room with 1006.
    pub min_uptime: Duration,
    /// Messages kept while disconnected; past it the oldest are dropped
    /// (default 10).
    pub max_enqueued_messages: usize,
    /// The wait before attempt `n` (from 1) given the base delay, before
    /// clamping (default [`exponential_backoff`]: `2^n × delay`).
    pub backoff: fn(u32, Duration) -> Duration,
    /// How long one attempt may take to connect and receive the room's
    /// handshake before it counts as failed (default 10 s; the SDK leaves
    /// this to the platform).
    pub attempt_timeout: Duration,
}

impl Default for ReconnectionConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            max_retries: 15,
            delay: Duration::from_millis(100),
            min_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(5),
            min_uptime: Duration::from_secs(5),
            max_enqueued_messages: 10,
            backoff: exponential_backoff,
            attempt_timeout: Duration::from_secs(10),
        }
    }
}

impl ReconnectionConfig {
    /// The wait before attempt `attempt` (from 1).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// let config = roomcast_client::ReconnectionConfig::default();
    /// assert_eq!(config.delay_before(1), Duration::from_millis(200));
    /// assert_eq!(config.delay_before(10), Duration::from_secs(5));
    /// ```
    #[must_use]
    pub fn delay_before(&self, attempt: u32) -> Duration {
        (self.backoff)(attempt, self.delay)
            .max(self.min_delay)
            .min(self.max_delay.max(self.min_delay))
    }
}

/// `2^attempt × delay` (saturating): the SDK's `exponentialBackoff`.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use roomcast_client::exponential_backoff;
/// assert_eq!(exponential_backoff(3, Duration::from_millis(100)), Duration::from_millis(800));
/// ```
#[must_use]
pub fn exponential_backoff(attempt: u32, delay: Duration) -> Duration {
    delay.saturating_mul(2u32.saturating_pow(attempt))
}
