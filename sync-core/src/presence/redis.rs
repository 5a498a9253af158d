//! [`RedisPresence`]: the presence of a cluster, shared through Redis
//! (Colyseus' `@colyseus/redis-presence`).
//!
//! Two connections per presence: one for commands (RESP2, shared with the
//! rest of the crate through [`RedisPresence::connection`]) and one in RESP3
//! for publish/subscribe, whose push messages are fanned out to per-channel
//! broadcast senders. Both are [`ConnectionManager`]s: they reconnect by
//! themselves, and the pub/sub one subscribes its channels again after a
//! reconnect. A small task of our own (the "watchdog") pings both while
//! Redis is away, because a `ConnectionManager` whose reconnect attempts ran
//! out only tries again when it is next used.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{Client, FromRedisValue, ProtocolVersion, PushInfo, PushKind, RedisError, Value};
use tokio::runtime::Handle;
use tokio::sync::{broadcast, Notify};
use tokio::task::JoinHandle;

use super::{Presence, PresenceError, PresenceFuture, Subscription, SUBSCRIPTION_BUFFER};

/// Each attempt to open a connection gives up after this long: a Redis that
/// is down answers at once (connection refused), so this only bounds an
/// unreachable host (packets dropped).
const CONNECTION_TIMEOUT: Duration = Duration::from_secs(1);
/// A command whose reply has not come after this long fails with
/// [`PresenceError::Unavailable`]. Presence commands are O(1) or O(size of
/// one key) and answer in well under a millisecond; two seconds only
/// happen when Redis is stuck or the network is.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(2);
/// Attempts a reconnect makes after the first one fails. Calls made while a
/// reconnect is under way wait for it, so few and short retries keep a call
/// made while Redis is down short (a refused connection: ~0.1-0.2 s; an
/// unreachable host: at most 2 × [`CONNECTION_TIMEOUT`] + the delay); the
/// watchdog goes on trying afterwards.
const RECONNECT_RETRIES: usize = 1;
/// Delay before the retry of a reconnect.
const RECONNECT_DELAY: Duration = Duration::from_millis(100);
/// The watchdog's first and longest delay between two pings while Redis is
/// away: once it is back, connections (and subscriptions) are restored
/// within about this long, without waiting for a call to notice.
const WATCHDOG_FIRST_DELAY: Duration = Duration::from_millis(50);
const WATCHDOG_MAX_DELAY: Duration = Duration::from_millis(500);
/// Delay between two attempts to unsubscribe a channel nobody reads any
/// more while Redis is away.
const UNSUBSCRIBE_RETRY_DELAY: Duration = Duration::from_millis(500);

type Channels = Mutex<HashMap<String, broadcast::Sender<String>>>;

/// The [`Presence`] of a cluster: every process that connects to the same
/// Redis shares keys, sets, hashes, lists, counters and publish/subscribe
/// with the others. Each call is one Redis command of the same name, so
/// the semantics are Redis' own (and [`LocalPresence`](super::LocalPresence)
/// mirrors them); `setex` and `expire` take milliseconds (`PSETEX`,
/// `PEXPIRE`).
///
/// Errors: a Redis that cannot be reached, or does not answer within two
/// seconds, gives [`PresenceError::Unavailable`] (calls made while it is
/// down fail within a few hundred milliseconds instead of waiting; the
/// connections come back by themselves once it is up again, subscriptions
/// included); `WRONGTYPE` gives [`PresenceError::WrongType`]; a counter that
/// is not an integer, or would overflow, [`PresenceError::NotAnInteger`];
/// anything else [`PresenceError::Backend`].
///
/// Values are strings: a value or message that another Redis client wrote
/// as bytes that are not UTF-8 is read with invalid sequences replaced by
/// `U+FFFD` (lossy).
///
/// [`publish`](Presence::publish) returns Redis' count, which is the number
/// of subscribed *connections*: one per `RedisPresence` that has at least
/// one subscription to the channel, however many local subscriptions it
/// holds.
///
/// The tokio runtime on which [`connect`](Self::connect) ran drives the
/// connections (every command is run there, whichever runtime or thread
/// calls), so it must outlive the presence; a room thread's runtime calling
/// it is fine. Cloning gives another handle on the same connections.
///
/// # Examples
///
/// ```no_run
/// use std::sync::Arc;
/// use roomcast::{Presence, RedisPresence, Server};
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let presence = RedisPresence::connect("redis://127.0.0.1:6379").await?;
/// presence.hset("servers", "a", "10.0.0.1:2567").await?;
/// let server = Server::builder().presence(Arc::new(presence)).build();
/// # let _ = server;
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct RedisPresence {
    shared: Arc<Shared>,
}

struct Shared {
    url: String,
    /// The runtime `connect` ran on: commands and the unsubscribe tasks
    /// run there.
    runtime: Handle,
    commands: ConnectionManager,
    pubsub: ConnectionManager,
    /// A sender per channel this process is subscribed to in Redis (or is
    /// about to unsubscribe from: a sender with no receiver left). The push
    /// handler holds a `Weak` of it, so the senders go with the presence
    /// and subscriptions then end.
    channels: Arc<Channels>,
    /// Orders SUBSCRIBE and UNSUBSCRIBE commands with the checks that
    /// decide them: a subscribe that follows the last unsubscribe of a
    /// channel must reach Redis after it.
    subscribing: tokio::sync::Mutex<()>,
    /// Wakes the watchdog: a connection was lost or a call found Redis
    /// unreachable.
    trouble: Arc<Notify>,
    watchdog: JoinHandle<()>,
}

impl Drop for Shared {
    fn drop(&mut self) {
        self.watchdog.abort();
    }
}

impl std::fmt::Debug for RedisPresence {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisPresence")
            .field("url", &redacted(&self.shared.url))
            .finish_non_exhaustive()
    }
}

/// `url` without its password (for `Debug`, which ends up in logs).
fn redacted(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => match rest[..at].split_once(':') {
            Some((user, _password)) => format!("{scheme}://{user}:***{}", &rest[at..]),
            None => url.to_owned(),
        },
        None => url.to_owned(),
    }
}

type Result<T> = std::result::Result<T, PresenceError>;

impl RedisPresence {
    /// Connects to the Redis at `url` (`redis://[user:password@]host[:port][/db]`;
    /// see the `redis` crate for the other forms). Fails with
    /// [`PresenceError::Unavailable`] when Redis cannot be reached and
    /// [`PresenceError::Backend`] for a malformed URL.
    ///
    /// Needs Redis 6 or later (publish/subscribe uses RESP3). Must be
    /// called within a tokio runtime, which then drives the connections
    /// (redis-rs panics outside one).
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use roomcast::{Presence, RedisPresence};
    ///
    /// # async fn run() -> Result<(), roomcast::PresenceError> {
    /// let presence = RedisPresence::connect("redis://127.0.0.1:6379/0").await?;
    /// let mut news = presence.subscribe("news").await?;
    /// // Any process connected to the same Redis reaches this subscription.
    /// presence.publish("news", "hello").await?;
    /// assert_eq!(news.recv().await.as_deref(), Some("hello"));
    /// # Ok(())
    /// # }
    /// ```
    pub async fn connect(url: &str) -> Result<Self> {
        let client = Client::open(url).map_err(|e| PresenceError::Backend(e.to_string()))?;
        let commands = ConnectionManager::new_with_config(client.clone(), manager_config())
            .await
            .map_err(|e| map_error("", &e))?;

        // Publish/subscribe: RESP3, whose push messages arrive on the
        // connection that also takes commands.
        let info = client.get_connection_info().clone();
        let redis_settings = info
            .redis_settings()
            .clone()
            .set_protocol(ProtocolVersion::RESP3);
        let pubsub_client = Client::open(info.set_redis_settings(redis_settings))
            .map_err(|e| PresenceError::Backend(e.to_string()))?;
        let channels: Arc<Channels> = Arc::default();
        let trouble = Arc::new(Notify::new());
        let on_push = {
            let channels = Arc::downgrade(&channels);
            let trouble = Arc::clone(&trouble);
            move |push: PushInfo| -> std::result::Result<(), Infallible> {
                on_push(&channels, &trouble, push);
                Ok(())
            }
        };
        let config = manager_config()
            .set_push_sender(on_push)
            .set_automatic_resubscription();
        let pubsub = ConnectionManager::new_with_config(pubsub_client, config)
            .await
            .map_err(|e| map_error("", &e))?;

        let runtime = Handle::current();
        let watchdog = runtime.spawn(watchdog(
            commands.clone(),
            pubsub.clone(),
            Arc::clone(&trouble),
        ));
        Ok(Self {
            shared: Arc::new(Shared {
                url: url.to_owned(),
                runtime,
                commands,
                pubsub,
                channels,
                subscribing: tokio::sync::Mutex::new(()),
                trouble,
                watchdog,
            }),
        })
    }

    /// The URL this presence connected to, as given (password included;
    /// the `Debug` output hides it).
    pub fn url(&self) -> &str {
        &self.shared.url
    }

    /// The command connection (a clone: every clone uses the same
    /// multiplexed connection), for the parts of the crate that keep their
    /// own data in the same Redis.
    pub(crate) fn connection(&self) -> ConnectionManager {
        self.shared.commands.clone()
    }

    /// Runs `cmd` on the command connection, on the presence's runtime;
    /// errors name `key`.
    fn query<'a, T>(&'a self, key: &'a str, cmd: redis::Cmd) -> PresenceFuture<'a, T>
    where
        T: FromRedisValue + Send + 'static,
    {
        let mut conn = self.shared.commands.clone();
        let task = self
            .shared
            .runtime
            .spawn(async move { cmd.query_async::<T>(&mut conn).await });
        Box::pin(async move {
            let result = outcome(key, task.await);
            if matches!(result, Err(PresenceError::Unavailable(_))) {
                self.shared.trouble.notify_one();
            }
            result
        })
    }

    /// [`query`](Self::query), then `f` on the reply.
    fn query_map<'a, T, U>(
        &'a self,
        key: &'a str,
        cmd: redis::Cmd,
        f: impl FnOnce(T) -> U + Send + 'a,
    ) -> PresenceFuture<'a, U>
    where
        T: FromRedisValue + Send + 'static,
        U: Send + 'a,
    {
        let reply = self.query::<T>(key, cmd);
        Box::pin(async move { reply.await.map(f) })
    }

    async fn subscribe_inner(&self, channel: &str) -> Result<Subscription> {
        let shared = &self.shared;
        let _order = shared.subscribing.lock().await;
        let (rx, first) = {
            let mut channels = lock(&shared.channels);
            match channels.get(channel) {
                // A sender with no receiver left is still subscribed in
                // Redis: its unsubscribe task will see this receiver and
                // leave it.
                Some(tx) => (tx.subscribe(), false),
                None => {
                    let (tx, rx) = broadcast::channel(SUBSCRIPTION_BUFFER);
                    channels.insert(channel.to_owned(), tx);
                    (rx, true)
                }
            }
        };
        if first {
            let mut pubsub = shared.pubsub.clone();
            let subscribed = shared
                .runtime
                .spawn({
                    let channel = channel.to_owned();
                    async move { pubsub.subscribe(channel).await }
                })
                .await;
            if let Err(e) = outcome(channel, subscribed) {
                drop(rx);
                let mut channels = lock(&shared.channels);
                if channels
                    .get(channel)
                    .is_some_and(|tx| tx.receiver_count() == 0)
                {
                    channels.remove(channel);
                }
                if matches!(e, PresenceError::Unavailable(_)) {
                    shared.trouble.notify_one();
                }
                return Err(e);
            }
        }
        let weak = Arc::downgrade(&self.shared);
        let channel = channel.to_owned();
        // Runs after the subscription's receiver is dropped.
        let on_drop = move || {
            if let Some(shared) = weak.upgrade() {
                let runtime = shared.runtime.clone();
                drop(shared);
                // A runtime that is gone drops the task: the channel then
                // stays subscribed in Redis until the connection closes,
                // and its messages are dropped here.
                runtime.spawn(unsubscribe_if_unused(weak, channel));
            }
        };
        Ok(Subscription::new(
            super::broadcast_messages(rx),
            Some(Box::new(on_drop)),
        ))
    }
}

/// The result of a command run as a task of the presence's runtime.
fn outcome<T>(
    key: &str,
    joined: std::result::Result<redis::RedisResult<T>, tokio::task::JoinError>,
) -> Result<T> {
    match joined {
        Ok(result) => result.map_err(|e| map_error(key, &e)),
        Err(e) if e.is_cancelled() => Err(PresenceError::Unavailable(
            "the runtime that drives the Redis connections is shut down".to_owned(),
        )),
        Err(e) => Err(PresenceError::Backend(format!("Redis command task: {e}"))),
    }
}

fn lock(
    channels: &Channels,
) -> std::sync::MutexGuard<'_, HashMap<String, broadcast::Sender<String>>> {
    // A panic while holding the lock leaves a plain map behind: still usable.
    channels.lock().unwrap_or_else(PoisonError::into_inner)
}

fn manager_config() -> ConnectionManagerConfig {
    ConnectionManagerConfig::new()
        .set_connection_timeout(Some(CONNECTION_TIMEOUT))
        .set_response_timeout(Some(RESPONSE_TIMEOUT))
        .set_number_of_retries(RECONNECT_RETRIES)
        .set_min_delay(RECONNECT_DELAY)
        .set_max_delay(RECONNECT_DELAY * 4)
}

/// Hands a message of the pub/sub connection to its channel's
/// subscribers; a lost connection wakes the watchdog.
fn on_push(channels: &Weak<Channels>, trouble: &Notify, push: PushInfo) {
    match push.kind {
        PushKind::Message => {
            let Ok([channel, message]) = <[Value; 2]>::try_from(push.data) else {
                return;
            };
            let (Some(channel), Some(message)) = (text(channel), text(message)) else {
                return;
            };
            if let Some(channels) = channels.upgrade() {
                if let Some(tx) = lock(&channels).get(&channel) {
                    // No receiver: the channel is being unsubscribed.
                    let _ = tx.send(message);
                }
            }
        }
        PushKind::Disconnection => trouble.notify_one(),
        _ => {}
    }
}

/// A string from a reply: lossy UTF-8 for bytes that are not.
fn text(value: Value) -> Option<String> {
    match value {
        Value::BulkString(bytes) => Some(lossy(bytes)),
        Value::SimpleString(s) | Value::VerbatimString { text: s, .. } => Some(s),
        Value::Int(n) => Some(n.to_string()),
        _ => None,
    }
}

fn lossy(bytes: Vec<u8>) -> String {
    String::from_utf8(bytes).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// Unsubscribes `channel` in Redis unless a subscription came back
/// meanwhile; while Redis is away, tries again until it is back or the
/// presence is gone (otherwise the channel would be subscribed again on the
/// reconnect, for nobody).
async fn unsubscribe_if_unused(shared: Weak<Shared>, channel: String) {
    loop {
        let Some(shared) = shared.upgrade() else {
            return;
        };
        let order = shared.subscribing.lock().await;
        {
            let mut channels = lock(&shared.channels);
            if channels
                .get(&channel)
                .is_some_and(|tx| tx.receiver_count() > 0)
            {
                return;
            }
            channels.remove(&channel);
        }
        match shared.pubsub.clone().unsubscribe(&channel).await {
            Ok(()) => return,
            Err(e) => {
                tracing::debug!("presence: unsubscribing {channel:?} failed, will retry: {e}");
                shared.trouble.notify_one();
            }
        }
        drop(order);
        drop(shared);
        tokio::time::sleep(UNSUBSCRIBE_RETRY_DELAY).await;
    }
}

/// Woken when a connection was lost or a call found Redis unreachable:
/// pings both connections, with a growing delay, until both answer. A
/// `ConnectionManager` only reconnects when it is used (or, for RESP3, when
/// it sees its connection close), and gives up after its few retries; these
/// pings keep it trying, so that once Redis is back the subscriptions are
/// restored and calls succeed without first failing on a stale error.
async fn watchdog(
    mut commands: ConnectionManager,
    mut pubsub: ConnectionManager,
    trouble: Arc<Notify>,
) {
    let ping = redis::cmd("PING");
    loop {
        trouble.notified().await;
        let mut delay = WATCHDOG_FIRST_DELAY;
        loop {
            tokio::time::sleep(delay).await;
            let commands_ok = ping.query_async::<Value>(&mut commands).await.is_ok();
            let pubsub_ok = ping.query_async::<Value>(&mut pubsub).await.is_ok();
            if commands_ok && pubsub_ok {
                break;
            }
            delay = (delay * 2).min(WATCHDOG_MAX_DELAY);
        }
    }
}

/// The [`PresenceError`] for a Redis error of a command on `key`.
fn map_error(key: &str, e: &RedisError) -> PresenceError {
    use redis::{ErrorKind, ServerErrorKind};

    let unavailable = e.is_io_error()
        || e.is_timeout()
        || e.is_connection_dropped()
        || e.is_connection_refusal()
        || matches!(
            e.kind(),
            ErrorKind::ClusterConnectionNotFound
                | ErrorKind::Server(
                    ServerErrorKind::BusyLoading
                        | ServerErrorKind::TryAgain
                        | ServerErrorKind::ClusterDown
                        | ServerErrorKind::MasterDown
                )
        );
    if unavailable {
        return PresenceError::Unavailable(e.to_string());
    }
    if e.code() == Some("WRONGTYPE") {
        return PresenceError::WrongType(key.to_owned());
    }
    let detail = e.detail().unwrap_or_default();
    if detail.contains("not an integer") || detail.contains("overflow") {
        return PresenceError::NotAnInteger(key.to_owned());
    }
    PresenceError::Backend(e.to_string())
}

/// Milliseconds for `PSETEX`/`PEXPIRE`: rounded up (a TTL never ends
/// early), and bounded far beyond any useful TTL so that Redis never sees
/// an expiry time that overflows.
fn millis(ttl: Duration) -> u64 {
    const MAX: u128 = 1 << 52; // ~142,000 years
    let ms = ttl.as_nanos().div_ceil(1_000_000);
    u64::try_from(ms.min(MAX)).unwrap_or(u64::MAX)
}

fn cmd(name: &str) -> redis::Cmd {
    redis::cmd(name)
}

impl Presence for RedisPresence {
    fn set<'a>(&'a self, key: &'a str, value: &'a str) -> PresenceFuture<'a, ()> {
        self.query_map(key, cmd("SET").arg(key).arg(value).take(), |_: Value| ())
    }

    fn setex<'a>(&'a self, key: &'a str, value: &'a str, ttl: Duration) -> PresenceFuture<'a, ()> {
        match millis(ttl) {
            // Set and gone at once (as `LocalPresence` does): Redis refuses
            // a zero TTL.
            0 => self.query_map(key, cmd("DEL").arg(key).take(), |_: Value| ()),
            ms => self.query_map(
                key,
                cmd("PSETEX").arg(key).arg(ms).arg(value).take(),
                |_: Value| (),
            ),
        }
    }

    fn get<'a>(&'a self, key: &'a str) -> PresenceFuture<'a, Option<String>> {
        self.query_map(key, cmd("GET").arg(key).take(), |v: Option<Vec<u8>>| {
            v.map(lossy)
        })
    }

    fn del<'a>(&'a self, key: &'a str) -> PresenceFuture<'a, bool> {
        self.query_map(key, cmd("DEL").arg(key).take(), |n: i64| n > 0)
    }

    fn exists<'a>(&'a self, key: &'a str) -> PresenceFuture<'a, bool> {
        self.query_map(key, cmd("EXISTS").arg(key).take(), |n: i64| n > 0)
    }

    fn expire<'a>(&'a self, key: &'a str, ttl: Duration) -> PresenceFuture<'a, bool> {
        // PEXPIRE 0 removes the key at once and says whether it existed.
        self.query_map(
            key,
            cmd("PEXPIRE").arg(key).arg(millis(ttl)).take(),
            |n: i64| n > 0,
        )
    }

    fn incrby<'a>(&'a self, key: &'a str, by: i64) -> PresenceFuture<'a, i64> {
        self.query(key, cmd("INCRBY").arg(key).arg(by).take())
    }

    fn sadd<'a>(&'a self, key: &'a str, member: &'a str) -> PresenceFuture<'a, bool> {
        self.query_map(key, cmd("SADD").arg(key).arg(member).take(), |n: i64| n > 0)
    }

    fn srem<'a>(&'a self, key: &'a str, member: &'a str) -> PresenceFuture<'a, bool> {
        self.query_map(key, cmd("SREM").arg(key).arg(member).take(), |n: i64| n > 0)
    }

    fn smembers<'a>(&'a self, key: &'a str) -> PresenceFuture<'a, Vec<String>> {
        self.query_map(key, cmd("SMEMBERS").arg(key).take(), |v: Vec<Vec<u8>>| {
            v.into_iter().map(lossy).collect()
        })
    }

    fn sismember<'a>(&'a self, key: &'a str, member: &'a str) -> PresenceFuture<'a, bool> {
        self.query_map(
            key,
            cmd("SISMEMBER").arg(key).arg(member).take(),
            |n: i64| n > 0,
        )
    }

    fn scard<'a>(&'a self, key: &'a str) -> PresenceFuture<'a, usize> {
        self.query(key, cmd("SCARD").arg(key).take())
    }

    fn hset<'a>(
        &'a self,
        key: &'a str,
        field: &'a str,
        value: &'a str,
    ) -> PresenceFuture<'a, bool> {
        self.query_map(
            key,
            cmd("HSET").arg(key).arg(field).arg(value).take(),
            |n: i64| n > 0,
        )
    }

    fn hincrby<'a>(&'a self, key: &'a str, field: &'a str, by: i64) -> PresenceFuture<'a, i64> {
        self.query(key, cmd("HINCRBY").arg(key).arg(field).arg(by).take())
    }

    fn hget<'a>(&'a self, key: &'a str, field: &'a str) -> PresenceFuture<'a, Option<String>> {
        self.query_map(
            key,
            cmd("HGET").arg(key).arg(field).take(),
            |v: Option<Vec<u8>>| v.map(lossy),
        )
    }

    fn hgetall<'a>(&'a self, key: &'a str) -> PresenceFuture<'a, HashMap<String, String>> {
        self.query_map(
            key,
            cmd("HGETALL").arg(key).take(),
            |v: HashMap<Vec<u8>, Vec<u8>>| {
                v.into_iter()
                    .map(|(field, value)| (lossy(field), lossy(value)))
                    .collect()
            },
        )
    }

    fn hdel<'a>(&'a self, key: &'a str, field: &'a str) -> PresenceFuture<'a, bool> {
        self.query_map(key, cmd("HDEL").arg(key).arg(field).take(), |n: i64| n > 0)
    }

    fn hlen<'a>(&'a self, key: &'a str) -> PresenceFuture<'a, usize> {
        self.query(key, cmd("HLEN").arg(key).take())
    }

    fn rpush<'a>(&'a self, key: &'a str, value: &'a str) -> PresenceFuture<'a, usize> {
        self.query(key, cmd("RPUSH").arg(key).arg(value).take())
    }

    fn lpush<'a>(&'a self, key: &'a str, value: &'a str) -> PresenceFuture<'a, usize> {
        self.query(key, cmd("LPUSH").arg(key).arg(value).take())
    }

    fn rpop<'a>(&'a self, key: &'a str) -> PresenceFuture<'a, Option<String>> {
        self.query_map(key, cmd("RPOP").arg(key).take(), |v: Option<Vec<u8>>| {
            v.map(lossy)
        })
    }

    fn lpop<'a>(&'a self, key: &'a str) -> PresenceFuture<'a, Option<String>> {
        self.query_map(key, cmd("LPOP").arg(key).take(), |v: Option<Vec<u8>>| {
            v.map(lossy)
        })
    }

    fn llen<'a>(&'a self, key: &'a str) -> PresenceFuture<'a, usize> {
        self.query(key, cmd("LLEN").arg(key).take())
    }

    fn publish<'a>(&'a self, channel: &'a str, message: &'a str) -> PresenceFuture<'a, usize> {
        self.query(channel, cmd("PUBLISH").arg(channel).arg(message).take())
    }

    fn subscribe<'a>(&'a self, channel: &'a str) -> PresenceFuture<'a, Subscription> {
        Box::pin(self.subscribe_inner(channel))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttls_round_up_to_milliseconds() {
        assert_eq!(millis(Duration::ZERO), 0);
        assert_eq!(millis(Duration::from_nanos(1)), 1);
        assert_eq!(millis(Duration::from_millis(1500)), 1500);
        assert_eq!(millis(Duration::from_micros(1500)), 2);
        assert_eq!(millis(Duration::MAX), 1 << 52);
    }

    #[test]
    fn debug_hides_the_password() {
        assert_eq!(
            redacted("redis://127.0.0.1:6379/0"),
            "redis://127.0.0.1:6379/0"
        );
        assert_eq!(
            redacted("redis://user:p@ss:w@rd@host:6379/1"),
            "redis://user:***@host:6379/1"
        );
        assert_eq!(redacted("redis://:secret@host"), "redis://:***@host");
        assert_eq!(redacted("redis://user@host"), "redis://user@host");
        assert_eq!(redacted("not a url"), "not a url");
    }

    #[test]
    fn lossy_utf8() {
        assert_eq!(lossy(b"caf\xc3\xa9".to_vec()), "café");
        assert_eq!(lossy(b"a\xffb".to_vec()), "a\u{fffd}b");
    }
}
