//! [`LocalPresence`]: the in-process presence, the default of a server.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::{Duration, Instant};

use tokio::sync::broadcast;

use super::{Presence, PresenceError, PresenceFuture, Subscription, SUBSCRIPTION_BUFFER};

/// The in-process [`Presence`]: the rooms of one server share it. Expiry,
/// counters and `WRONGTYPE` errors behave as on Redis.
#[derive(Debug, Default)]
pub struct LocalPresence {
    inner: Arc<Mutex<Inner>>,
}

#[derive(Debug, Default)]
struct Inner {
    keys: HashMap<String, Entry>,
    channels: HashMap<String, broadcast::Sender<String>>,
}

#[derive(Debug)]
struct Entry {
    value: Value,
    expires: Option<Instant>,
}

#[derive(Debug)]
enum Value {
    Str(String),
    Set(HashSet<String>),
    Hash(HashMap<String, String>),
    List(VecDeque<String>),
}

type Result<T> = std::result::Result<T, PresenceError>;

impl Inner {
    /// The live entry at `key` (an expired one is removed first).
    fn live(&mut self, key: &str) -> Option<&mut Entry> {
        let expired = self
            .keys
            .get(key)
            .is_some_and(|e| e.expires.is_some_and(|at| at <= Instant::now()));
        if expired {
            self.keys.remove(key);
        }
        self.keys.get_mut(key)
    }

    /// The entry at `key`, created with `empty` when absent; an error when
    /// it holds another kind.
    fn entry(
        &mut self,
        key: &str,
        empty: fn() -> Value,
        is_kind: fn(&Value) -> bool,
    ) -> Result<&mut Value> {
        if self.live(key).is_none() {
            self.keys.insert(
                key.to_owned(),
                Entry {
                    value: empty(),
                    expires: None,
                },
            );
        }
        let entry = self.keys.get_mut(key).expect("inserted above");
        if is_kind(&entry.value) {
            Ok(&mut entry.value)
        } else {
            Err(PresenceError::WrongType(key.to_owned()))
        }
    }

    /// Removes `key` if its collection became empty (as Redis does).
    fn drop_if_empty(&mut self, key: &str) {
        let empty = self.keys.get(key).is_some_and(|e| match &e.value {
            Value::Str(_) => false,
            Value::Set(s) => s.is_empty(),
            Value::Hash(h) => h.is_empty(),
            Value::List(l) => l.is_empty(),
        });
        if empty {
            self.keys.remove(key);
        }
    }
}

macro_rules! kind {
    ($inner:expr, $key:expr, $variant:ident) => {
        match $inner.entry(
            $key,
            || Value::$variant(Default::default()),
            |v| matches!(v, Value::$variant(_)),
        )? {
            Value::$variant(inner) => inner,
            _ => unreachable!("checked by entry"),
        }
    };
}

/// Reads a collection without creating it.
macro_rules! peek {
    ($inner:expr, $key:expr, $variant:ident) => {
        match $inner.live($key).map(|e| &mut e.value) {
            None => None,
            Some(Value::$variant(inner)) => Some(inner),
            Some(_) => return Err(PresenceError::WrongType($key.to_owned())),
        }
    };
}

impl LocalPresence {
    fn with<T>(&self, f: impl FnOnce(&mut Inner) -> T) -> T {
        // A panic while holding the lock leaves plain maps behind: still usable.
        f(&mut self.inner.lock().unwrap_or_else(PoisonError::into_inner))
    }

    fn now<'a, T: Send + 'a>(
        &self,
        f: impl FnOnce(&mut Inner) -> Result<T>,
    ) -> PresenceFuture<'a, T> {
        let result = self.with(f);
        Box::pin(std::future::ready(result))
    }
}

/// An integer as Redis reads one: an optional `-`, then digits without a
/// leading zero (`+5`, `007` and `-0` are not integers to Redis).
fn parse_int(key: &str, value: Option<&String>) -> Result<i64> {
    let Some(v) = value else {
        return Ok(0);
    };
    let digits = v.strip_prefix('-').unwrap_or(v);
    let canonical = !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit())
        && (digits == "0" && !v.starts_with('-') || !digits.starts_with('0'));
    canonical
        .then(|| v.parse().ok())
        .flatten()
        .ok_or_else(|| PresenceError::NotAnInteger(key.to_owned()))
}

impl Presence for LocalPresence {
    fn set<'a>(&'a self, key: &'a str, value: &'a str) -> PresenceFuture<'a, ()> {
        self.now(|i| {
            i.keys.insert(
                key.to_owned(),
                Entry {
                    value: Value::Str(value.to_owned()),
                    expires: None,
                },
            );
            Ok(())
        })
    }

    fn setex<'a>(&'a self, key: &'a str, value: &'a str, ttl: Duration) -> PresenceFuture<'a, ()> {
        self.now(|i| {
            i.keys.insert(
                key.to_owned(),
                Entry {
                    value: Value::Str(value.to_owned()),
                    expires: Some(Instant::now() + ttl),
                },
            );
            Ok(())
        })
    }

    fn get<'a>(&'a self, key: &'a str) -> PresenceFuture<'a, Option<String>> {
        self.now(|i| Ok(peek!(i, key, Str).cloned()))
    }

    fn del<'a>(&'a self, key: &'a str) -> PresenceFuture<'a, bool> {
        self.now(|i| Ok(i.live(key).is_some() && i.keys.remove(key).is_some()))
    }

    fn exists<'a>(&'a self, key: &'a str) -> PresenceFuture<'a, bool> {
        self.now(|i| Ok(i.live(key).is_some()))
    }

    fn expire<'a>(&'a self, key: &'a str, ttl: Duration) -> PresenceFuture<'a, bool> {
        self.now(|i| {
            Ok(i.live(key)
                .map(|e| e.expires = Some(Instant::now() + ttl))
                .is_some())
        })
    }

    fn incrby<'a>(&'a self, key: &'a str, by: i64) -> PresenceFuture<'a, i64> {
        self.now(|i| {
            let current = parse_int(key, peek!(i, key, Str).map(|v| &*v))?;
            let n = current
                .checked_add(by)
                .ok_or_else(|| PresenceError::NotAnInteger(key.to_owned()))?;
            // The expiry stays, as with Redis' INCRBY.
            match i.live(key) {
                Some(entry) => entry.value = Value::Str(n.to_string()),
                None => {
                    i.keys.insert(
                        key.to_owned(),
                        Entry {
                            value: Value::Str(n.to_string()),
                            expires: None,
                        },
                    );
                }
            }
            Ok(n)
        })
    }

    fn sadd<'a>(&'a self, key: &'a str, member: &'a str) -> PresenceFuture<'a, bool> {
        self.now(|i| Ok(kind!(i, key, Set).insert(member.to_owned())))
    }

    fn srem<'a>(&'a self, key: &'a str, member: &'a str) -> PresenceFuture<'a, bool> {
        self.now(|i| {
            let removed = peek!(i, key, Set).is_some_and(|s| s.remove(member));
            i.drop_if_empty(key);
            Ok(removed)
        })
    }

    fn smembers<'a>(&'a self, key: &'a str) -> PresenceFuture<'a, Vec<String>> {
        self.now(|i| {
            Ok(peek!(i, key, Set)
                .map(|s| s.iter().cloned().collect())
                .unwrap_or_default())
        })
    }

    fn sismember<'a>(&'a self, key: &'a str, member: &'a str) -> PresenceFuture<'a, bool> {
        self.now(|i| Ok(peek!(i, key, Set).is_some_and(|s| s.contains(member))))
    }

    fn scard<'a>(&'a self, key: &'a str) -> PresenceFuture<'a, usize> {
        self.now(|i| Ok(peek!(i, key, Set).map_or(0, |s| s.len())))
    }

    fn hset<'a>(
        &'a self,
        key: &'a str,
        field: &'a str,
        value: &'a str,
    ) -> PresenceFuture<'a, bool> {
        self.now(|i| {
            Ok(kind!(i, key, Hash)
                .insert(field.to_owned(), value.to_owned())
                .is_none())
        })
    }

    fn hincrby<'a>(&'a self, key: &'a str, field: &'a str, by: i64) -> PresenceFuture<'a, i64> {
        self.now(|i| {
            let hash = kind!(i, key, Hash);
            let n = parse_int(key, hash.get(field))?
                .checked_add(by)
                .ok_or_else(|| PresenceError::NotAnInteger(key.to_owned()))?;
            hash.insert(field.to_owned(), n.to_string());
            Ok(n)
        })
    }

    fn hget<'a>(&'a self, key: &'a str, field: &'a str) -> PresenceFuture<'a, Option<String>> {
        self.now(|i| Ok(peek!(i, key, Hash).and_then(|h| h.get(field).cloned())))
    }

    fn hgetall<'a>(&'a self, key: &'a str) -> PresenceFuture<'a, HashMap<String, String>> {
        self.now(|i| Ok(peek!(i, key, Hash).cloned().unwrap_or_default()))
    }

    fn hdel<'a>(&'a self, key: &'a str, field: &'a str) -> PresenceFuture<'a, bool> {
        self.now(|i| {
            let removed = peek!(i, key, Hash).is_some_and(|h| h.remove(field).is_some());
            i.drop_if_empty(key);
            Ok(removed)
        })
    }

    fn hlen<'a>(&'a self, key: &'a str) -> PresenceFuture<'a, usize> {
        self.now(|i| Ok(peek!(i, key, Hash).map_or(0, |h| h.len())))
    }

    fn rpush<'a>(&'a self, key: &'a str, value: &'a str) -> PresenceFuture<'a, usize> {
        self.now(|i| {
            let list = kind!(i, key, List);
            list.push_back(value.to_owned());
            Ok(list.len())
        })
    }

    fn lpush<'a>(&'a self, key: &'a str, value: &'a str) -> PresenceFuture<'a, usize> {
        self.now(|i| {
            let list = kind!(i, key, List);
            list.push_front(value.to_owned());
            Ok(list.len())
        })
    }

    fn rpop<'a>(&'a self, key: &'a str) -> PresenceFuture<'a, Option<String>> {
        self.now(|i| {
            let value = peek!(i, key, List).and_then(VecDeque::pop_back);
            i.drop_if_empty(key);
            Ok(value)
        })
    }

    fn lpop<'a>(&'a self, key: &'a str) -> PresenceFuture<'a, Option<String>> {
        self.now(|i| {
            let value = peek!(i, key, List).and_then(VecDeque::pop_front);
            i.drop_if_empty(key);
            Ok(value)
        })
    }

    fn llen<'a>(&'a self, key: &'a str) -> PresenceFuture<'a, usize> {
        self.now(|i| Ok(peek!(i, key, List).map_or(0, |l| l.len())))
    }

    fn publish<'a>(&'a self, channel: &'a str, message: &'a str) -> PresenceFuture<'a, usize> {
        self.now(|i| {
            Ok(i.channels
                .get(channel)
                .map_or(0, |tx| tx.send(message.to_owned()).unwrap_or(0)))
        })
    }

    fn subscribe<'a>(&'a self, channel: &'a str) -> PresenceFuture<'a, Subscription> {
        let weak: Weak<Mutex<Inner>> = Arc::downgrade(&self.inner);
        self.now(|i| {
            let rx = i
                .channels
                .entry(channel.to_owned())
                .or_insert_with(|| broadcast::channel(SUBSCRIPTION_BUFFER).0)
                .subscribe();
            let channel = channel.to_owned();
            // The last subscription of a channel takes its sender along
            // (its receiver is dropped before this runs).
            let unsubscribe = move || {
                if let Some(inner) = weak.upgrade() {
                    let mut inner = inner.lock().unwrap_or_else(PoisonError::into_inner);
                    if inner
                        .channels
                        .get(&channel)
                        .is_some_and(|tx| tx.receiver_count() == 0)
                    {
                        inner.channels.remove(&channel);
                    }
                }
            };
            Ok(Subscription::new(
                super::broadcast_messages(rx),
                Some(Box::new(unsubscribe)),
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run<T>(f: impl std::future::Future<Output = T>) -> T {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(f)
    }

    #[test]
    fn values_counters_and_expiry() {
        run(async {
            let p = LocalPresence::default();
            p.set("a", "1").await.unwrap();
            assert_eq!(p.get("a").await.unwrap().as_deref(), Some("1"));
            assert_eq!(p.incr("a").await.unwrap(), 2);
            assert_eq!(p.decr("fresh").await.unwrap(), -1);
            for bad in ["x", "+5", "007", "-0", "", "1.5"] {
                p.set("s", bad).await.unwrap();
                assert_eq!(
                    p.incr("s").await,
                    Err(PresenceError::NotAnInteger("s".into())),
                    "{bad:?}"
                );
            }
            p.set("s", "-7").await.unwrap();
            assert_eq!(p.incr("s").await.unwrap(), -6);
            p.setex("t", "v", Duration::from_millis(20)).await.unwrap();
            assert!(p.exists("t").await.unwrap());
            std::thread::sleep(Duration::from_millis(30));
            assert!(!p.exists("t").await.unwrap());
            assert_eq!(p.get("t").await.unwrap(), None);
            assert!(p.expire("a", Duration::from_millis(10)).await.unwrap());
            assert!(!p.expire("none", Duration::from_millis(10)).await.unwrap());
            std::thread::sleep(Duration::from_millis(20));
            assert!(!p.del("a").await.unwrap());
        });
    }

    #[test]
    fn sets_hashes_lists_and_wrong_types() {
        run(async {
            let p = LocalPresence::default();
            assert!(p.sadd("s", "a").await.unwrap());
            assert!(!p.sadd("s", "a").await.unwrap());
            assert!(p.sismember("s", "a").await.unwrap());
            assert_eq!(p.scard("s").await.unwrap(), 1);
            assert!(p.srem("s", "a").await.unwrap());
            assert!(!p.exists("s").await.unwrap(), "an empty set is removed");
            assert!(p.hset("h", "f", "1").await.unwrap());
            assert!(!p.hset("h", "f", "2").await.unwrap());
            assert_eq!(p.hincrby("h", "f", 5).await.unwrap(), 7);
            assert_eq!(p.hlen("h").await.unwrap(), 1);
            assert_eq!(p.hgetall("h").await.unwrap()["f"], "7");
            assert!(p.hdel("h", "f").await.unwrap());
            assert_eq!(p.rpush("l", "b").await.unwrap(), 1);
            assert_eq!(p.lpush("l", "a").await.unwrap(), 2);
            assert_eq!(p.llen("l").await.unwrap(), 2);
            assert_eq!(p.rpop("l").await.unwrap().as_deref(), Some("b"));
            assert_eq!(p.lpop("l").await.unwrap().as_deref(), Some("a"));
            assert_eq!(p.lpop("l").await.unwrap(), None);
            p.set("str", "v").await.unwrap();
            let wrong = Err(PresenceError::WrongType("str".into()));
            assert_eq!(p.sadd("str", "m").await, wrong.clone().map(|()| true));
            assert_eq!(p.hget("str", "f").await, wrong.clone().map(|()| None));
            assert_eq!(p.llen("str").await, wrong.map(|()| 0));
            p.sadd("set", "m").await.unwrap();
            assert!(p.get("set").await.is_err());
            assert!(p.del("set").await.unwrap());
        });
    }

    #[test]
    fn publish_reaches_subscribers_until_dropped() {
        run(async {
            let p = LocalPresence::default();
            assert_eq!(p.publish("c", "nobody").await.unwrap(), 0);
            let mut a = p.subscribe("c").await.unwrap();
            let b = p.subscribe("c").await.unwrap();
            assert_eq!(p.publish("c", "hi").await.unwrap(), 2);
            assert_eq!(a.recv().await.as_deref(), Some("hi"));
            drop(b);
            assert_eq!(p.publish("c", "again").await.unwrap(), 1);
            assert_eq!(a.try_recv().as_deref(), Some("again"));
            drop(a);
            assert_eq!(p.publish("c", "gone").await.unwrap(), 0);
            assert!(p.with(|i| i.channels.is_empty()));
        });
    }
}
