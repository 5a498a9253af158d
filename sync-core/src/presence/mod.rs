//! Presence: data shared by every room of a server and, with a networked
//! implementation, by every process of a cluster (Colyseus' `Presence`).
//!
//! Every call is asynchronous, because a networked presence answers over
//! the network: `ctx.presence().get("key").await` in an `async` hook, or
//! through [`RoomCtx::spawn`](crate::RoomCtx::spawn) from a message
//! handler. The in-process [`LocalPresence`] is the default and answers at
//! once; [`RedisPresence`] shares the presence between the processes of a
//! cluster through Redis.

mod local;
#[cfg(feature = "server")]
mod redis;

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use futures_util::{Stream, StreamExt};
use tokio::sync::broadcast;

pub use self::local::LocalPresence;
#[cfg(feature = "server")]
pub use self::redis::RedisPresence;

/// What every [`Presence`] call returns.
pub type PresenceFuture<'a, T> =
    Pin<Box<dyn Future<Output = Result<T, PresenceError>> + Send + 'a>>;

/// Why a [`Presence`] call failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PresenceError {
    /// The backend cannot be reached (connection lost, timeout); the call
    /// may be retried later.
    #[error("presence unavailable: {0}")]
    Unavailable(String),
    /// The key holds another kind of value (a set where a string was
    /// expected, say), like Redis' `WRONGTYPE`.
    #[error("key {0:?} holds another kind of value")]
    WrongType(String),
    /// A counter operation on a value that is not an integer.
    #[error("the value of {0:?} is not an integer")]
    NotAnInteger(String),
    /// Anything else the backend reported.
    #[error("presence error: {0}")]
    Backend(String),
}

/// Shared key/value with expiry, sets, hashes, lists, counters and
/// publish/subscribe, with the semantics of the Redis commands of the same
/// names (Colyseus' `Presence` interface).
///
/// Implementations: [`LocalPresence`] (one process) and [`RedisPresence`]
/// (a cluster, through Redis). Rooms reach it through
/// [`RoomCtx::presence`](crate::RoomCtx::presence).
///
/// # Examples
///
/// ```
/// use roomcast::{LocalPresence, Presence};
///
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let presence = LocalPresence::default();
/// let mut news = presence.subscribe("news").await?;
/// presence.sadd("players", "alice").await?;
/// assert_eq!(presence.smembers("players").await?, ["alice"]);
/// assert_eq!(presence.incr("visits").await?, 1);
/// assert_eq!(presence.publish("news", "hello").await?, 1);
/// assert_eq!(news.recv().await.as_deref(), Some("hello"));
/// # Ok::<(), roomcast::PresenceError>(())
/// # }).unwrap();
/// ```
pub trait Presence: Send + Sync + 'static {
    /// Sets `key` to `value` (and clears any expiry).
    fn set<'a>(&'a self, key: &'a str, value: &'a str) -> PresenceFuture<'a, ()>;
    /// Sets `key` to `value`, removed after `ttl` (`setex`).
    fn setex<'a>(&'a self, key: &'a str, value: &'a str, ttl: Duration) -> PresenceFuture<'a, ()>;
    /// The string value of `key`.
    fn get<'a>(&'a self, key: &'a str) -> PresenceFuture<'a, Option<String>>;
    /// Removes `key`, whatever it holds; returns whether it existed.
    fn del<'a>(&'a self, key: &'a str) -> PresenceFuture<'a, bool>;
    /// Whether `key` exists.
    fn exists<'a>(&'a self, key: &'a str) -> PresenceFuture<'a, bool>;
    /// Removes `key` after `ttl`; returns whether it exists.
    fn expire<'a>(&'a self, key: &'a str, ttl: Duration) -> PresenceFuture<'a, bool>;
    /// Adds `by` to the integer at `key` (0 when absent); returns the new
    /// value (`incrby`; `incr`/`decr` are shorthands).
    fn incrby<'a>(&'a self, key: &'a str, by: i64) -> PresenceFuture<'a, i64>;
    /// Adds 1 to the integer at `key`.
    fn incr<'a>(&'a self, key: &'a str) -> PresenceFuture<'a, i64> {
        self.incrby(key, 1)
    }
    /// Subtracts 1 from the integer at `key`.
    fn decr<'a>(&'a self, key: &'a str) -> PresenceFuture<'a, i64> {
        self.incrby(key, -1)
    }

    /// Adds `member` to the set `key`; returns whether it was new.
    fn sadd<'a>(&'a self, key: &'a str, member: &'a str) -> PresenceFuture<'a, bool>;
    /// Removes `member` from the set `key`; returns whether it was there.
    fn srem<'a>(&'a self, key: &'a str, member: &'a str) -> PresenceFuture<'a, bool>;
    /// Members of the set `key`, in no particular order.
    fn smembers<'a>(&'a self, key: &'a str) -> PresenceFuture<'a, Vec<String>>;
    /// Whether `member` is in the set `key`.
    fn sismember<'a>(&'a self, key: &'a str, member: &'a str) -> PresenceFuture<'a, bool>;
    /// Number of members of the set `key`.
    fn scard<'a>(&'a self, key: &'a str) -> PresenceFuture<'a, usize>;

    /// Sets `field` of the hash `key`; returns whether the field was new.
    fn hset<'a>(&'a self, key: &'a str, field: &'a str, value: &'a str)
        -> PresenceFuture<'a, bool>;
    /// Adds `by` to the integer in `field` of the hash `key`; returns the
    /// new value.
    fn hincrby<'a>(&'a self, key: &'a str, field: &'a str, by: i64) -> PresenceFuture<'a, i64>;
    /// A field of the hash `key`.
    fn hget<'a>(&'a self, key: &'a str, field: &'a str) -> PresenceFuture<'a, Option<String>>;
    /// Every field of the hash `key`.
    fn hgetall<'a>(&'a self, key: &'a str) -> PresenceFuture<'a, HashMap<String, String>>;
    /// Removes `field` from the hash `key`; returns whether it existed.
    fn hdel<'a>(&'a self, key: &'a str, field: &'a str) -> PresenceFuture<'a, bool>;
    /// Number of fields of the hash `key`.
    fn hlen<'a>(&'a self, key: &'a str) -> PresenceFuture<'a, usize>;

    /// Appends `value` to the list `key`; returns its new length.
    fn rpush<'a>(&'a self, key: &'a str, value: &'a str) -> PresenceFuture<'a, usize>;
    /// Prepends `value` to the list `key`; returns its new length.
    fn lpush<'a>(&'a self, key: &'a str, value: &'a str) -> PresenceFuture<'a, usize>;
    /// Takes the last value of the list `key`.
    fn rpop<'a>(&'a self, key: &'a str) -> PresenceFuture<'a, Option<String>>;
    /// Takes the first value of the list `key`.
    fn lpop<'a>(&'a self, key: &'a str) -> PresenceFuture<'a, Option<String>>;
    /// Length of the list `key`.
    fn llen<'a>(&'a self, key: &'a str) -> PresenceFuture<'a, usize>;

    /// Publishes `message` on `channel`; returns how many subscriptions got
    /// it (for Redis: subscribed connections, one per process).
    fn publish<'a>(&'a self, channel: &'a str, message: &'a str) -> PresenceFuture<'a, usize>;
    /// Subscribes to `channel`; dropping the [`Subscription`] unsubscribes.
    fn subscribe<'a>(&'a self, channel: &'a str) -> PresenceFuture<'a, Subscription>;
}

/// Messages of one channel, from [`Presence::subscribe`]. Dropping it
/// unsubscribes.
///
/// The channel is any [`Stream`] of messages: the room core names no
/// runtime, and a [`Presence`] of your own hands its channel over in
/// whatever form it has ([`Subscription::new`]).
pub struct Subscription {
    // Fields drop in order: the messages are gone when `_on_drop` runs.
    messages: Pin<Box<dyn Stream<Item = String> + Send>>,
    _on_drop: Option<OnDrop>,
}

struct OnDrop(Option<Box<dyn FnOnce() + Send + Sync>>);

impl Drop for OnDrop {
    fn drop(&mut self) {
        if let Some(f) = self.0.take() {
            f();
        }
    }
}

impl std::fmt::Debug for Subscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscription").finish_non_exhaustive()
    }
}

impl Subscription {
    /// A subscription reading `messages` (ending when the presence is
    /// gone); `on_drop` runs when it is dropped, after `messages` (a
    /// [`Presence`] implementation unsubscribes there).
    pub fn new(
        messages: impl Stream<Item = String> + Send + 'static,
        on_drop: Option<Box<dyn FnOnce() + Send + Sync>>,
    ) -> Self {
        Self {
            messages: Box::pin(messages),
            _on_drop: on_drop.map(|f| OnDrop(Some(f))),
        }
    }

    /// The next message; `None` once the presence is gone. A subscriber
    /// of the built-in presences that falls more than the channel's buffer
    /// behind loses the oldest messages (logged), like a slow Redis
    /// subscriber would.
    pub async fn recv(&mut self) -> Option<String> {
        self.messages.next().await
    }

    /// The next message if one is waiting.
    pub fn try_recv(&mut self) -> Option<String> {
        let mut cx = Context::from_waker(Waker::noop());
        match self.messages.as_mut().poll_next(&mut cx) {
            Poll::Ready(message) => message,
            Poll::Pending => None,
        }
    }
}

/// The messages of a broadcast channel (the built-in presences' channels),
/// skipping over what a lagging receiver lost.
pub(crate) fn broadcast_messages(
    rx: broadcast::Receiver<String>,
) -> impl Stream<Item = String> + Send {
    futures_util::stream::unfold(rx, |mut rx| async move {
        loop {
            match rx.recv().await {
                Ok(message) => return Some((message, rx)),
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    tracing::warn!("presence subscriber fell behind: {n} messages lost");
                }
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    })
}

/// Messages a subscription may fall behind before it loses the oldest.
pub(crate) const SUBSCRIPTION_BUFFER: usize = 1024;
