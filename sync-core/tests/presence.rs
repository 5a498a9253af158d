//! The presence backends: one conformance suite run against
//! `LocalPresence` and against `RedisPresence` on a real `redis-server`
//! (each test starts its own, on a free port), plus what only Redis does:
//! several processes, Redis-side subscriptions, Redis going away and
//! coming back.

use std::collections::HashMap;
use std::future::Future;
use std::time::{Duration, Instant};

use roomcast::testing::redis::RedisServer;
use roomcast::{LocalPresence, Presence, PresenceError, RedisPresence, Subscription};

/// How long something that should happen "soon" may take before the test
/// fails (polled, so a fast machine does not wait for it).
const SOON: Duration = Duration::from_secs(10);
/// The bound on a call made while Redis is down.
const FAIL_FAST: Duration = Duration::from_secs(3);

fn wrong(key: &str) -> PresenceError {
    PresenceError::WrongType(key.to_owned())
}

fn not_int(key: &str) -> PresenceError {
    PresenceError::NotAnInteger(key.to_owned())
}

/// The next message of `s`, which must come within [`SOON`].
async fn recv(s: &mut Subscription) -> Option<String> {
    tokio::time::timeout(SOON, s.recv())
        .await
        .expect("a message (or the end of the subscription) within 10 s")
}

/// Polls `check` until it returns true; panics with `what` after `within`.
async fn eventually<F, Fut>(what: &str, within: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + within;
    while !check().await {
        assert!(Instant::now() < deadline, "{what}: not within {within:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

// ---------------------------------------------------------------------------
// The conformance suite: every method, results and errors.

async fn conformance(p: &dyn Presence) {
    strings(p).await;
    expiry(p).await;
    counters(p).await;
    sets(p).await;
    hashes(p).await;
    lists(p).await;
    wrong_types(p).await;
    publish_subscribe(p).await;
}

async fn strings(p: &dyn Presence) {
    assert_eq!(p.get("s:missing").await, Ok(None));
    assert_eq!(p.exists("s:missing").await, Ok(false));
    assert_eq!(p.del("s:missing").await, Ok(false));
    p.set("s:a", "1").await.unwrap();
    assert_eq!(p.get("s:a").await.unwrap().as_deref(), Some("1"));
    assert_eq!(p.exists("s:a").await, Ok(true));
    p.set("s:a", "2").await.unwrap();
    assert_eq!(p.get("s:a").await.unwrap().as_deref(), Some("2"));
    p.set("s:empty", "").await.unwrap();
    assert_eq!(p.get("s:empty").await.unwrap().as_deref(), Some(""));
    assert_eq!(p.exists("s:empty").await, Ok(true));
    p.set("s:ключ 🎲", "välue\n\"x\" \u{0}").await.unwrap();
    assert_eq!(
        p.get("s:ключ 🎲").await.unwrap().as_deref(),
        Some("välue\n\"x\" \u{0}")
    );
    assert_eq!(p.del("s:a").await, Ok(true));
    assert_eq!(p.del("s:a").await, Ok(false));
    assert_eq!(p.get("s:a").await, Ok(None));
}

async fn expiry(p: &dyn Presence) {
    let ttl = Duration::from_secs(1);
    p.setex("e:ttl", "v", ttl).await.unwrap();
    p.set("e:later", "v").await.unwrap();
    assert_eq!(p.expire("e:later", ttl).await, Ok(true));
    // `set` clears an expiry.
    p.setex("e:cleared", "v", ttl).await.unwrap();
    p.set("e:cleared", "plain").await.unwrap();
    // A counter keeps its expiry (INCRBY).
    p.setex("e:counter", "5", ttl).await.unwrap();
    assert_eq!(p.incr("e:counter").await, Ok(6));
    // Collections expire too.
    p.sadd("e:set", "m").await.unwrap();
    assert_eq!(p.expire("e:set", ttl).await, Ok(true));
    assert_eq!(p.expire("e:missing", ttl).await, Ok(false));
    // Zero: set and gone at once (replacing what was there); expire(0)
    // removes a key at once and says that it existed.
    p.set("e:zero", "old").await.unwrap();
    p.setex("e:zero", "v", Duration::ZERO).await.unwrap();
    assert_eq!(p.exists("e:zero").await, Ok(false));
    assert_eq!(p.get("e:zero").await, Ok(None));
    p.set("e:now", "v").await.unwrap();
    assert_eq!(p.expire("e:now", Duration::ZERO).await, Ok(true));
    assert_eq!(p.exists("e:now").await, Ok(false));
    assert_eq!(p.expire("e:now", Duration::ZERO).await, Ok(false));
    // Less than a millisecond is not forever.
    p.setex("e:tiny", "v", Duration::from_micros(1))
        .await
        .unwrap();

    for key in ["e:ttl", "e:later", "e:cleared", "e:counter", "e:set"] {
        assert_eq!(p.exists(key).await, Ok(true), "{key} before its TTL");
    }
    assert_eq!(p.get("e:ttl").await.unwrap().as_deref(), Some("v"));
    eventually("every key with a TTL expires", SOON, || async {
        let mut gone = true;
        for key in ["e:ttl", "e:later", "e:counter", "e:set", "e:tiny"] {
            gone &= !p.exists(key).await.unwrap();
        }
        gone
    })
    .await;
    assert_eq!(p.get("e:ttl").await, Ok(None));
    assert_eq!(p.get("e:counter").await, Ok(None));
    assert_eq!(p.smembers("e:set").await, Ok(vec![]));
    assert_eq!(p.del("e:ttl").await, Ok(false));
    assert_eq!(p.expire("e:ttl", ttl).await, Ok(false));
    assert_eq!(p.get("e:cleared").await.unwrap().as_deref(), Some("plain"));
}

async fn counters(p: &dyn Presence) {
    assert_eq!(p.incr("c:a").await, Ok(1));
    assert_eq!(p.incrby("c:a", 10).await, Ok(11));
    assert_eq!(p.incrby("c:a", -20).await, Ok(-9));
    assert_eq!(p.decr("c:a").await, Ok(-10));
    assert_eq!(p.get("c:a").await.unwrap().as_deref(), Some("-10"));
    assert_eq!(p.decr("c:fresh").await, Ok(-1));
    assert_eq!(p.incrby("c:zero", 0).await, Ok(0));
    assert_eq!(p.exists("c:zero").await, Ok(true));
    p.set("c:numeric", "41").await.unwrap();
    assert_eq!(p.incr("c:numeric").await, Ok(42));

    p.set("c:text", "x").await.unwrap();
    assert_eq!(p.incr("c:text").await, Err(not_int("c:text")));
    p.set("c:float", "1.5").await.unwrap();
    assert_eq!(p.incrby("c:float", 1).await, Err(not_int("c:float")));
    p.set("c:max", &i64::MAX.to_string()).await.unwrap();
    assert_eq!(p.incr("c:max").await, Err(not_int("c:max")));
    assert_eq!(
        p.get("c:max").await.unwrap(),
        Some(i64::MAX.to_string()),
        "a failed increment leaves the value"
    );
    p.set("c:min", &i64::MIN.to_string()).await.unwrap();
    assert_eq!(p.decr("c:min").await, Err(not_int("c:min")));
    assert_eq!(p.incrby("c:min", i64::MAX).await, Ok(-1));
}

async fn sets(p: &dyn Presence) {
    assert_eq!(p.smembers("set:a").await, Ok(vec![]));
    assert_eq!(p.scard("set:a").await, Ok(0));
    assert_eq!(p.sismember("set:a", "x").await, Ok(false));
    assert_eq!(p.srem("set:a", "x").await, Ok(false));
    assert_eq!(p.sadd("set:a", "x").await, Ok(true));
    assert_eq!(p.sadd("set:a", "x").await, Ok(false));
    assert_eq!(p.sadd("set:a", "y").await, Ok(true));
    assert_eq!(p.sadd("set:a", "").await, Ok(true));
    assert_eq!(
        sorted(p.smembers("set:a").await.unwrap()),
        ["", "x", "y"].map(String::from)
    );
    assert_eq!(p.scard("set:a").await, Ok(3));
    assert_eq!(p.sismember("set:a", "x").await, Ok(true));
    assert_eq!(p.sismember("set:a", "z").await, Ok(false));
    assert_eq!(p.srem("set:a", "x").await, Ok(true));
    assert_eq!(p.srem("set:a", "x").await, Ok(false));
    assert_eq!(p.srem("set:a", "y").await, Ok(true));
    assert_eq!(p.srem("set:a", "").await, Ok(true));
    assert_eq!(
        p.exists("set:a").await,
        Ok(false),
        "an empty set is removed"
    );
    assert_eq!(p.sadd("set:b", "m").await, Ok(true));
    assert_eq!(p.del("set:b").await, Ok(true));
    assert_eq!(p.scard("set:b").await, Ok(0));
}

async fn hashes(p: &dyn Presence) {
    assert_eq!(p.hget("h:a", "f").await, Ok(None));
    assert_eq!(p.hgetall("h:a").await, Ok(HashMap::new()));
    assert_eq!(p.hlen("h:a").await, Ok(0));
    assert_eq!(p.hdel("h:a", "f").await, Ok(false));
    assert_eq!(p.hset("h:a", "f", "1").await, Ok(true));
    assert_eq!(p.hset("h:a", "f", "2").await, Ok(false));
    assert_eq!(p.hget("h:a", "f").await.unwrap().as_deref(), Some("2"));
    assert_eq!(p.hget("h:a", "other").await, Ok(None));
    assert_eq!(p.hincrby("h:a", "f", 5).await, Ok(7));
    assert_eq!(p.hincrby("h:a", "n", -3).await, Ok(-3));
    assert_eq!(p.hset("h:a", "text", "x").await, Ok(true));
    assert_eq!(p.hincrby("h:a", "text", 1).await, Err(not_int("h:a")));
    assert_eq!(p.hset("h:a", "max", &i64::MAX.to_string()).await, Ok(true));
    assert_eq!(p.hincrby("h:a", "max", 1).await, Err(not_int("h:a")));
    assert_eq!(p.hlen("h:a").await, Ok(4));
    let expected: HashMap<String, String> = [
        ("f", "7".to_owned()),
        ("n", "-3".to_owned()),
        ("text", "x".to_owned()),
        ("max", i64::MAX.to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    assert_eq!(p.hgetall("h:a").await, Ok(expected));
    for field in ["f", "n", "text"] {
        assert_eq!(p.hdel("h:a", field).await, Ok(true));
    }
    assert_eq!(p.hdel("h:a", "f").await, Ok(false));
    assert_eq!(p.exists("h:a").await, Ok(true));
    assert_eq!(p.hdel("h:a", "max").await, Ok(true));
    assert_eq!(p.exists("h:a").await, Ok(false), "an empty hash is removed");
    // HINCRBY creates the hash.
    assert_eq!(p.hincrby("h:b", "f", 2).await, Ok(2));
    assert_eq!(p.hget("h:b", "f").await.unwrap().as_deref(), Some("2"));
}

async fn lists(p: &dyn Presence) {
    assert_eq!(p.llen("l:a").await, Ok(0));
    assert_eq!(p.lpop("l:a").await, Ok(None));
    assert_eq!(p.rpop("l:a").await, Ok(None));
    assert_eq!(p.rpush("l:a", "b").await, Ok(1));
    assert_eq!(p.rpush("l:a", "c").await, Ok(2));
    assert_eq!(p.lpush("l:a", "a").await, Ok(3));
    assert_eq!(p.llen("l:a").await, Ok(3));
    assert_eq!(p.lpop("l:a").await.unwrap().as_deref(), Some("a"));
    assert_eq!(p.rpop("l:a").await.unwrap().as_deref(), Some("c"));
    assert_eq!(p.llen("l:a").await, Ok(1));
    assert_eq!(p.rpush("l:a", "b").await, Ok(2), "duplicates are kept");
    assert_eq!(p.rpop("l:a").await.unwrap().as_deref(), Some("b"));
    assert_eq!(p.lpop("l:a").await.unwrap().as_deref(), Some("b"));
    assert_eq!(p.lpop("l:a").await, Ok(None));
    assert_eq!(p.exists("l:a").await, Ok(false), "an empty list is removed");
}

async fn wrong_types(p: &dyn Presence) {
    p.set("w:str", "v").await.unwrap();
    p.sadd("w:set", "m").await.unwrap();
    p.hset("w:hash", "f", "1").await.unwrap();
    p.rpush("w:list", "x").await.unwrap();

    let k = "w:str";
    assert_eq!(p.sadd(k, "m").await, Err(wrong(k)));
    assert_eq!(p.srem(k, "m").await, Err(wrong(k)));
    assert_eq!(p.smembers(k).await, Err(wrong(k)));
    assert_eq!(p.sismember(k, "m").await, Err(wrong(k)));
    assert_eq!(p.scard(k).await, Err(wrong(k)));
    assert_eq!(p.hset(k, "f", "v").await, Err(wrong(k)));
    assert_eq!(p.hincrby(k, "f", 1).await, Err(wrong(k)));
    assert_eq!(p.hget(k, "f").await, Err(wrong(k)));
    assert_eq!(p.hgetall(k).await, Err(wrong(k)));
    assert_eq!(p.hdel(k, "f").await, Err(wrong(k)));
    assert_eq!(p.hlen(k).await, Err(wrong(k)));
    assert_eq!(p.rpush(k, "x").await, Err(wrong(k)));
    assert_eq!(p.lpush(k, "x").await, Err(wrong(k)));
    assert_eq!(p.rpop(k).await, Err(wrong(k)));
    assert_eq!(p.lpop(k).await, Err(wrong(k)));
    assert_eq!(p.llen(k).await, Err(wrong(k)));
    assert_eq!(p.get(k).await.unwrap().as_deref(), Some("v"), "unchanged");

    for k in ["w:set", "w:hash", "w:list"] {
        assert_eq!(p.get(k).await, Err(wrong(k)));
        assert_eq!(p.incr(k).await, Err(wrong(k)));
        assert_eq!(p.incrby(k, 2).await, Err(wrong(k)));
        assert_eq!(p.decr(k).await, Err(wrong(k)));
        assert_eq!(p.exists(k).await, Ok(true));
    }
    assert_eq!(p.llen("w:set").await, Err(wrong("w:set")));
    assert_eq!(p.hget("w:list", "f").await, Err(wrong("w:list")));
    assert_eq!(p.smembers("w:hash").await, Err(wrong("w:hash")));
    assert_eq!(p.scard("w:list").await, Err(wrong("w:list")));
    assert_eq!(p.sadd("w:hash", "m").await, Err(wrong("w:hash")));
    assert_eq!(p.rpush("w:set", "m").await, Err(wrong("w:set")));
    assert_eq!(p.hset("w:list", "f", "v").await, Err(wrong("w:list")));
    assert_eq!(p.sismember("w:set", "m").await, Ok(true), "unchanged");

    // `set` replaces whatever the key holds; `del` removes any kind.
    p.set("w:set", "now a string").await.unwrap();
    assert_eq!(
        p.get("w:set").await.unwrap().as_deref(),
        Some("now a string")
    );
    assert_eq!(p.del("w:hash").await, Ok(true));
    assert_eq!(p.del("w:list").await, Ok(true));
    assert_eq!(p.exists("w:list").await, Ok(false));
    assert_eq!(
        p.sadd("w:list", "m").await,
        Ok(true),
        "a new kind once gone"
    );
}

async fn publish_subscribe(p: &dyn Presence) {
    assert_eq!(p.publish("ps:a", "nobody").await, Ok(0));
    let mut a = p.subscribe("ps:a").await.unwrap();
    assert_eq!(p.publish("ps:a", "one").await, Ok(1));
    assert_eq!(recv(&mut a).await.as_deref(), Some("one"));

    // Messages come in order; another channel's do not come here.
    let mut other = p.subscribe("ps:other").await.unwrap();
    p.publish("ps:other", "not for a").await.unwrap();
    for m in ["1", "2", "3", "ünï 🎲", ""] {
        assert_eq!(p.publish("ps:a", m).await, Ok(1));
    }
    for m in ["1", "2", "3", "ünï 🎲", ""] {
        assert_eq!(recv(&mut a).await.as_deref(), Some(m));
    }
    assert_eq!(recv(&mut other).await.as_deref(), Some("not for a"));
    drop(other);

    // Two subscriptions of one presence: both get every message (the count
    // is per subscription locally, per connection on Redis).
    let mut b = p.subscribe("ps:a").await.unwrap();
    assert!(p.publish("ps:a", "two").await.unwrap() >= 1);
    assert_eq!(recv(&mut a).await.as_deref(), Some("two"));
    assert_eq!(recv(&mut b).await.as_deref(), Some("two"));
    assert_eq!(b.try_recv(), None);

    // Dropping one leaves the other subscribed.
    drop(b);
    assert_eq!(p.publish("ps:a", "three").await, Ok(1));
    assert_eq!(recv(&mut a).await.as_deref(), Some("three"));

    // Dropping the last one unsubscribes (on Redis, shortly after).
    drop(a);
    eventually(
        "nobody subscribed once the last subscription is dropped",
        SOON,
        || async { p.publish("ps:a", "gone").await.unwrap() == 0 },
    )
    .await;

    // And subscribing again works.
    let mut again = p.subscribe("ps:a").await.unwrap();
    assert_eq!(p.publish("ps:a", "back").await, Ok(1));
    assert_eq!(recv(&mut again).await.as_deref(), Some("back"));
    assert_eq!(again.try_recv(), None);
}

#[tokio::test]
async fn local_conformance() {
    conformance(&LocalPresence::default()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_conformance() {
    let redis = RedisServer::start();
    let p = RedisPresence::connect(&redis.url()).await.unwrap();
    assert_eq!(p.url(), redis.url());
    conformance(&p).await;
}

// ---------------------------------------------------------------------------
// Redis only.

async fn raw(url: &str) -> redis::aio::MultiplexedConnection {
    redis::Client::open(url)
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

/// Redis' count of connections subscribed to `channel`.
async fn numsub(url: &str, channel: &str) -> usize {
    let counts: Vec<(String, usize)> = redis::cmd("PUBSUB")
        .arg("NUMSUB")
        .arg(channel)
        .query_async(&mut raw(url).await)
        .await
        .unwrap();
    counts[0].1
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_two_processes_share_keys_and_messages() {
    let redis = RedisServer::start();
    let p1 = RedisPresence::connect(&redis.url()).await.unwrap();
    let p2 = RedisPresence::connect(&redis.url()).await.unwrap();

    p1.set("k", "from 1").await.unwrap();
    assert_eq!(p2.get("k").await.unwrap().as_deref(), Some("from 1"));
    assert_eq!(p2.sadd("players", "alice").await, Ok(true));
    assert_eq!(p1.sadd("players", "alice").await, Ok(false));
    assert_eq!(p1.smembers("players").await.unwrap(), ["alice"]);
    assert_eq!(p1.incr("n").await, Ok(1));
    assert_eq!(p2.incr("n").await, Ok(2));
    assert_eq!(p2.hset("h", "f", "v").await, Ok(true));
    assert_eq!(p1.hgetall("h").await.unwrap()["f"], "v");

    let mut s1 = p1.subscribe("c").await.unwrap();
    let mut s2 = p2.subscribe("c").await.unwrap();
    let mut s2b = p2.subscribe("c").await.unwrap();
    // Two subscribed connections (one per process), three subscriptions.
    assert_eq!(p1.publish("c", "hello").await, Ok(2));
    assert_eq!(p2.publish("c", "hi").await, Ok(2));
    for s in [&mut s1, &mut s2, &mut s2b] {
        assert_eq!(recv(s).await.as_deref(), Some("hello"));
        assert_eq!(recv(s).await.as_deref(), Some("hi"));
    }
    assert_eq!(numsub(&redis.url(), "c").await, 2);

    // Bytes that are not UTF-8, written by another Redis client: lossy.
    let mut raw = raw(&redis.url()).await;
    let _: () = redis::cmd("SET")
        .arg("bytes")
        .arg(&b"a\xffb"[..])
        .query_async(&mut raw)
        .await
        .unwrap();
    assert_eq!(
        p1.get("bytes").await.unwrap().as_deref(),
        Some("a\u{fffd}b")
    );
    let _: usize = redis::cmd("PUBLISH")
        .arg("c")
        .arg(&b"\xc3\xa9\xff"[..])
        .query_async(&mut raw)
        .await
        .unwrap();
    for s in [&mut s1, &mut s2, &mut s2b] {
        assert_eq!(recv(s).await.as_deref(), Some("é\u{fffd}"));
    }

    // One process' subscriptions end with it; the other's go on.
    drop(p2);
    assert_eq!(recv(&mut s2).await, None);
    assert_eq!(recv(&mut s2b).await, None);
    eventually("p2's connection gone from the channel", SOON, || async {
        numsub(&redis.url(), "c").await == 1
    })
    .await;
    assert_eq!(p1.publish("c", "still").await, Ok(1));
    assert_eq!(recv(&mut s1).await.as_deref(), Some("still"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_subscriptions_unsubscribe_when_the_last_is_dropped() {
    let redis = RedisServer::start();
    let url = redis.url();
    let p = RedisPresence::connect(&url).await.unwrap();
    assert_eq!(numsub(&url, "c").await, 0);

    let s1 = p.subscribe("c").await.unwrap();
    let mut s2 = p.subscribe("c").await.unwrap();
    assert_eq!(numsub(&url, "c").await, 1, "one SUBSCRIBE per process");

    // Not the last one: the channel stays subscribed. (Waiting cannot make
    // this fail spuriously: nothing may unsubscribe it.)
    drop(s1);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(numsub(&url, "c").await, 1);
    assert_eq!(p.publish("c", "kept").await, Ok(1));
    assert_eq!(recv(&mut s2).await.as_deref(), Some("kept"));

    // The last one: unsubscribed in Redis.
    drop(s2);
    eventually("UNSUBSCRIBE after the last subscription", SOON, || async {
        numsub(&url, "c").await == 0
    })
    .await;
    assert_eq!(p.publish("c", "nobody").await, Ok(0));

    // Drop the last subscription and subscribe again at once, many times:
    // the new subscription must never be undone by the old one's
    // unsubscribe.
    let mut s = p.subscribe("c").await.unwrap();
    for i in 0..30 {
        drop(s);
        s = p.subscribe("c").await.unwrap();
        let message = format!("m{i}");
        assert_eq!(p.publish("c", &message).await, Ok(1), "round {i}");
        assert_eq!(recv(&mut s).await, Some(message));
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(numsub(&url, "c").await, 1);
    assert_eq!(p.publish("c", "last").await, Ok(1));
    assert_eq!(recv(&mut s).await.as_deref(), Some("last"));

    // A subscription ends when its presence is dropped.
    drop(p);
    assert_eq!(recv(&mut s).await, None);
    eventually("the connection closed with the presence", SOON, || async {
        numsub(&url, "c").await == 0
    })
    .await;
}

/// Runs `call`, which must fail with `Unavailable` within [`FAIL_FAST`].
async fn unavailable<T: std::fmt::Debug>(
    what: &str,
    call: impl Future<Output = Result<T, PresenceError>>,
) {
    let started = Instant::now();
    let result = tokio::time::timeout(FAIL_FAST, call)
        .await
        .unwrap_or_else(|_| panic!("{what}: no answer within {FAIL_FAST:?} while Redis is down"));
    assert!(
        matches!(result, Err(PresenceError::Unavailable(_))),
        "{what} while Redis is down: {result:?}"
    );
    assert!(started.elapsed() < FAIL_FAST);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_down_fails_fast_and_recovers_with_subscriptions() {
    let mut redis = RedisServer::start();
    let p = RedisPresence::connect(&redis.url()).await.unwrap();
    let other = RedisPresence::connect(&redis.url()).await.unwrap();
    let mut s = p.subscribe("c").await.unwrap();
    let mut s_other = other.subscribe("c").await.unwrap();
    let doomed = p.subscribe("doomed").await.unwrap();
    p.set("k", "v").await.unwrap();

    redis.stop();
    // The last subscription of a channel goes while Redis is down: the
    // UNSUBSCRIBE cannot be sent (for the two seconds of calls below).
    drop(doomed);
    // Every kind of call, twice: the first one finds the connection gone,
    // the next ones find the reconnect failing.
    for _ in 0..2 {
        unavailable("get", p.get("k")).await;
        unavailable("set", p.set("k", "w")).await;
        unavailable("incr", p.incr("n")).await;
        unavailable("sadd", p.sadd("s", "m")).await;
        unavailable("hgetall", p.hgetall("h")).await;
        unavailable("publish", p.publish("c", "lost")).await;
        unavailable("subscribe", p.subscribe("new")).await;
        unavailable("other.get", other.get("k")).await;
    }
    // A channel that already has a local subscriber needs no Redis.
    let s2 = p.subscribe("c").await.unwrap();
    drop(s2);

    redis.restart();
    eventually("calls succeed again after the restart", SOON, || async {
        p.get("k").await.is_ok()
    })
    .await;
    assert_eq!(p.get("k").await, Ok(None), "the new server is empty");
    eventually("both subscriptions restored", SOON, || async {
        other.publish("c", "back").await == Ok(2)
    })
    .await;
    assert_eq!(recv(&mut s).await.as_deref(), Some("back"));
    assert_eq!(recv(&mut s_other).await.as_deref(), Some("back"));
    // Only messages published after the restored subscription arrive.
    while let Some(m) = s.try_recv() {
        assert_eq!(m, "back");
    }
    // The channel dropped during the outage was subscribed again with the
    // others on the reconnect, and is then unsubscribed.
    let url = redis.url();
    eventually(
        "the channel dropped while down is unsubscribed",
        SOON,
        || async { numsub(&url, "doomed").await == 0 },
    )
    .await;
    assert_eq!(numsub(&url, "c").await, 2);

    // New subscriptions and every other call work as before.
    let mut fresh = p.subscribe("new").await.unwrap();
    assert_eq!(other.publish("new", "hello").await, Ok(1));
    assert_eq!(recv(&mut fresh).await.as_deref(), Some("hello"));
    assert_eq!(other.incr("n").await, Ok(1));
    assert_eq!(p.incr("n").await, Ok(2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_connect_to_nothing_is_unavailable() {
    // A port nobody listens on (bound, read, released).
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("redis://127.0.0.1:{port}");
    unavailable("connect", RedisPresence::connect(&url)).await;
    assert!(matches!(
        RedisPresence::connect("not a url").await,
        Err(PresenceError::Backend(_))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_stuck_times_out_then_answers_in_order() {
    let redis = RedisServer::start();
    let p = RedisPresence::connect(&redis.url()).await.unwrap();
    p.set("k", "v").await.unwrap();
    // Redis holds every client's commands for 3 s: a stuck server.
    let _: () = redis::cmd("CLIENT")
        .arg("PAUSE")
        .arg(3000)
        .arg("ALL")
        .query_async(&mut raw(&redis.url()).await)
        .await
        .unwrap();
    let (get, incr) = tokio::join!(
        unavailable("get while Redis is stuck", p.get("k")),
        unavailable("incr while Redis is stuck", p.incr("n")),
    );
    let ((), ()) = (get, incr);
    eventually("Redis answers again", SOON, || async {
        p.exists("k").await.is_ok()
    })
    .await;
    // The late replies of the timed-out calls went nowhere: every call gets
    // its own reply. (The timed-out INCR ran when Redis woke up: a timeout
    // does not say that a command was not executed.)
    assert_eq!(p.get("k").await.unwrap().as_deref(), Some("v"));
    assert_eq!(p.incr("n").await, Ok(2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_works_from_other_runtimes_and_threads() {
    let redis = RedisServer::start();
    let url = redis.url();
    let p = RedisPresence::connect(&url).await.unwrap();

    // A room thread: its own single-threaded runtime.
    let room_thread = {
        let p = p.clone();
        std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
                .block_on(async {
                    p.set("from", "room thread").await.unwrap();
                    let mut s = p.subscribe("c").await.unwrap();
                    assert_eq!(p.publish("c", "hi").await, Ok(1));
                    assert_eq!(recv(&mut s).await.as_deref(), Some("hi"));
                    s
                })
        })
    };
    let s = tokio::task::spawn_blocking(move || room_thread.join().unwrap())
        .await
        .unwrap();
    assert_eq!(p.get("from").await.unwrap().as_deref(), Some("room thread"));
    assert_eq!(numsub(&url, "c").await, 1);

    // Dropped on a thread without any runtime: still unsubscribed.
    std::thread::spawn(move || drop(s)).join().unwrap();
    eventually(
        "unsubscribed after a drop outside any runtime",
        SOON,
        || async { numsub(&url, "c").await == 0 },
    )
    .await;
}
