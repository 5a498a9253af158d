//! Presence: data shared by every room of a server (and, with a networked
//! implementation, of several servers), like Colyseus' `Presence`.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use tokio::sync::broadcast;

/// Shared key/value, sets, hashes and publish/subscribe.
///
/// Methods are synchronous: the in-process [`LocalPresence`] answers at once.
/// A networked implementation (Redis) would answer from a local cache and
/// write through in the background.
pub trait Presence: Send + Sync + 'static {
    /// Sets `key` to `value`.
    fn set(&self, key: &str, value: &str);
    /// The value of `key`.
    fn get(&self, key: &str) -> Option<String>;
    /// Removes `key` (a value, set or hash); returns whether it existed.
    fn del(&self, key: &str) -> bool;
    /// Adds `member` to the set `key`; returns whether it was new.
    fn sadd(&self, key: &str, member: &str) -> bool;
    /// Removes `member` from the set `key`; returns whether it was there.
    fn srem(&self, key: &str, member: &str) -> bool;
    /// Members of the set `key`, in no particular order.
    fn smembers(&self, key: &str) -> Vec<String>;
    /// Sets `field` of the hash `key`.
    fn hset(&self, key: &str, field: &str, value: &str);
    /// A field of the hash `key`.
    fn hget(&self, key: &str, field: &str) -> Option<String>;
    /// Removes `field` from the hash `key`; returns whether it existed.
    fn hdel(&self, key: &str, field: &str) -> bool;
    /// Publishes `message` on `channel`; returns how many subscribers got it.
    fn publish(&self, channel: &str, message: &str) -> usize;
    /// Subscribes to `channel`.
    fn subscribe(&self, channel: &str) -> broadcast::Receiver<String>;
}

/// The in-process [`Presence`], the default of a server.
///
/// # Examples
///
/// ```
/// use roomcast::{LocalPresence, Presence};
///
/// let presence = LocalPresence::default();
/// let mut rx = presence.subscribe("news");
/// presence.sadd("players", "alice");
/// assert_eq!(presence.smembers("players"), ["alice"]);
/// assert_eq!(presence.publish("news", "hello"), 1);
/// assert_eq!(rx.try_recv().unwrap(), "hello");
/// ```
#[derive(Debug, Default)]
pub struct LocalPresence {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    values: HashMap<String, String>,
    sets: HashMap<String, HashSet<String>>,
    hashes: HashMap<String, HashMap<String, String>>,
    channels: HashMap<String, broadcast::Sender<String>>,
}

impl LocalPresence {
    fn with<T>(&self, f: impl FnOnce(&mut Inner) -> T) -> T {
        // A panic while holding the lock leaves plain maps behind: still usable.
        let mut inner = self
            .inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        f(&mut inner)
    }
}

impl Presence for LocalPresence {
    fn set(&self, key: &str, value: &str) {
        self.with(|i| i.values.insert(key.to_owned(), value.to_owned()));
    }

    fn get(&self, key: &str) -> Option<String> {
        self.with(|i| i.values.get(key).cloned())
    }

    fn del(&self, key: &str) -> bool {
        self.with(|i| {
            let a = i.values.remove(key).is_some();
            let b = i.sets.remove(key).is_some();
            let c = i.hashes.remove(key).is_some();
            a || b || c
        })
    }

    fn sadd(&self, key: &str, member: &str) -> bool {
        self.with(|i| {
            i.sets
                .entry(key.to_owned())
                .or_default()
                .insert(member.to_owned())
        })
    }

    fn srem(&self, key: &str, member: &str) -> bool {
        self.with(|i| i.sets.get_mut(key).is_some_and(|s| s.remove(member)))
    }

    fn smembers(&self, key: &str) -> Vec<String> {
        self.with(|i| {
            i.sets
                .get(key)
                .map(|s| s.iter().cloned().collect())
                .unwrap_or_default()
        })
    }

    fn hset(&self, key: &str, field: &str, value: &str) {
        self.with(|i| {
            i.hashes
                .entry(key.to_owned())
                .or_default()
                .insert(field.to_owned(), value.to_owned())
        });
    }

    fn hget(&self, key: &str, field: &str) -> Option<String> {
        self.with(|i| i.hashes.get(key).and_then(|h| h.get(field)).cloned())
    }

    fn hdel(&self, key: &str, field: &str) -> bool {
        self.with(|i| {
            i.hashes
                .get_mut(key)
                .is_some_and(|h| h.remove(field).is_some())
        })
    }

    fn publish(&self, channel: &str, message: &str) -> usize {
        self.with(|i| {
            i.channels
                .get(channel)
                .map_or(0, |tx| tx.send(message.to_owned()).unwrap_or(0))
        })
    }

    fn subscribe(&self, channel: &str) -> broadcast::Receiver<String> {
        self.with(|i| {
            i.channels
                .entry(channel.to_owned())
                .or_insert_with(|| broadcast::channel(256).0)
                .subscribe()
        })
    }
}
