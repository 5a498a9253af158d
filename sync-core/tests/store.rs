//! The listing stores: one suite run on the in-process `LocalStore` and on
//! `RedisStore` over a real `redis-server`; then two servers (two
//! processes of a cluster) sharing one Redis.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use roomcast::testing::redis::RedisServer;
use roomcast::testing::{next_received, Received};
use roomcast::transport::Session;
use roomcast::{
    Claim, ClaimInError, ConnectRequest, ListingStore, LocalStore, Method, NoState, Options, Order,
    RedisPresence, RedisStore, Room, RoomCtx, RoomQuery, RoomUpdate, SeatRequest, Server,
    ServerConfig, ServerError,
};
use serde_json::{json, Map, Value};

fn filters(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

fn seat(session: &str, ttl: Duration) -> SeatRequest {
    SeatRequest::new(session, json!({ "who": session }), ttl)
}

async fn room_of(store: &dyn ListingStore, query: &RoomQuery<'_>, session: &str) -> Option<String> {
    match store
        .claim(query, &seat(session, Duration::from_secs(60)), false)
        .await
        .unwrap()
    {
        Claim::Seat(claimed) => Some(claimed.listing.room_id),
        Claim::NoRoom => None,
        other => panic!("{other:?}"),
    }
}

/// Registers a room the way a server does: through a creation lock.
async fn create(store: &dyn ListingStore, name: &str, mode: &str, max: usize) -> String {
    let f = filters(json!({ "mode": mode }));
    let query = RoomQuery {
        name,
        filters: &f,
        sort: &[],
    };
    let Claim::Create(lock) = store
        .claim(
            &query,
            &seat("creator-probe", Duration::from_secs(60)),
            true,
        )
        .await
        .unwrap()
    else {
        panic!("expected the creation lock")
    };
    let id = format!("{name}-{mode}-{}", rand_suffix());
    let mut listing = roomcast::RoomListing::new(&id, name);
    listing.clients = 1;
    listing.max_clients = Some(max);
    listing.filters = f.clone();
    listing.process_id = "p1".into();
    store.register(&listing, Some(&lock)).await.unwrap();
    id
}

fn rand_suffix() -> u32 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

async fn suite(store: &dyn ListingStore) {
    let a = create(store, "battle", "a", 3).await;
    let b = create(store, "battle", "b", 3).await;
    let fa = filters(json!({ "mode": "a" }));
    let qa = RoomQuery {
        name: "battle",
        filters: &fa,
        sort: &[],
    };
    // Two free seats in "a": the third claim finds none.
    assert_eq!(room_of(store, &qa, "s1").await.as_deref(), Some(&*a));
    assert_eq!(room_of(store, &qa, "s2").await.as_deref(), Some(&*a));
    assert_eq!(room_of(store, &qa, "s3").await, None);
    let listing = store.get(&a).await.unwrap().unwrap();
    assert_eq!((listing.clients, listing.locked), (3, true));
    // Creation is one request's at a time per filter.
    let lock = match store
        .claim(&qa, &seat("s4", Duration::from_secs(60)), true)
        .await
        .unwrap()
    {
        Claim::Create(lock) => lock,
        other => panic!("{other:?}"),
    };
    assert!(matches!(
        store
            .claim(&qa, &seat("s5", Duration::from_secs(60)), true)
            .await
            .unwrap(),
        Claim::Wait
    ));
    store.release(&lock).await.unwrap();
    // A request without the filter field: any room of the name.
    let none = Map::new();
    let any = RoomQuery {
        name: "battle",
        filters: &none,
        sort: &[],
    };
    assert_eq!(room_of(store, &any, "s6").await.as_deref(), Some(&*b));
    // Seats are taken once; a taken seat stays counted until the room
    // reports it.
    assert_eq!(
        store.take_seat(&a, "s1").await.unwrap(),
        Some(json!({ "who": "s1" }))
    );
    assert_eq!(store.take_seat(&a, "s1").await.unwrap(), None);
    assert_eq!(store.get(&a).await.unwrap().unwrap().clients, 3);
    let update = |held, applied| RoomUpdate {
        held,
        applied,
        max_clients: Some(3),
        locked: false,
        private: false,
        unlisted: false,
        metadata: json!({ "map": "docks" }),
    };
    // The creator left, s1 arrived: one held, one taken and applied.
    store.sync(&a, &update(1, 1)).await.unwrap();
    let listing = store.get(&a).await.unwrap().unwrap();
    assert_eq!((listing.clients, listing.locked), (2, false));
    assert_eq!(listing.metadata, json!({ "map": "docks" }));
    assert_eq!(room_of(store, &qa, "s7").await.as_deref(), Some(&*a));
    // joinById: full now.
    assert_eq!(
        store
            .claim_in(&a, &seat("s8", Duration::from_secs(60)))
            .await
            .unwrap()
            .unwrap_err(),
        ClaimInError::Locked
    );
    assert_eq!(
        store
            .claim_in("missing", &seat("s9", Duration::from_secs(60)))
            .await
            .unwrap()
            .unwrap_err(),
        ClaimInError::NotFound
    );
    // An untaken seat expires and its place comes back.
    let b_query = RoomQuery {
        name: "battle",
        filters: &filters(json!({ "mode": "b" })),
        sort: &[],
    };
    let short = seat("brief", Duration::from_millis(50));
    assert!(matches!(
        store.claim(&b_query, &short, false).await.unwrap(),
        Claim::Seat(_)
    ));
    assert_eq!(store.get(&b).await.unwrap().unwrap().clients, 3);
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        // The local store frees it on the next read, Redis' sweep within a second.
        let _ = store.query(&any).await.unwrap();
        if store.get(&b).await.unwrap().unwrap().clients == 2 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the seat never expired"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(store.take_seat(&b, "brief").await.unwrap(), None);
    // Sorting: the fullest room of "ranked" first.
    let r1 = create(store, "ranked", "x", 10).await;
    let r2 = create(store, "ranked", "y", 10).await;
    let mut claims = 0;
    for i in 0..3 {
        let only_y = RoomQuery {
            name: "ranked",
            filters: &filters(json!({ "mode": "y" })),
            sort: &[],
        };
        room_of(store, &only_y, &format!("y{i}")).await.unwrap();
        claims += 1;
    }
    assert_eq!(claims, 3);
    let sort = [("clients".to_owned(), Order::Desc)];
    let fullest = RoomQuery {
        name: "ranked",
        filters: &none,
        sort: &sort,
    };
    assert_eq!(room_of(store, &fullest, "z").await.as_deref(), Some(&*r2));
    let listed: Vec<_> = store
        .query(&fullest)
        .await
        .unwrap()
        .into_iter()
        .map(|l| l.room_id)
        .collect();
    assert_eq!(listed, [r2.clone(), r1.clone()]);
    store.remove(&r1).await.unwrap();
    store.remove(&r2).await.unwrap();
    assert!(store.query(&fullest).await.unwrap().is_empty());
    assert_eq!(store.all().await.unwrap().len(), 2);
    // reserveSeatFor (`past_lock`): a room locked by hand takes it, unlike
    // joinById; a full one does not.
    let invite = |session: &str| {
        let mut seat = seat(session, Duration::from_secs(60));
        seat.past_lock = true;
        seat
    };
    assert_eq!(
        store
            .claim_in(&a, &invite("i1"))
            .await
            .unwrap()
            .unwrap_err(),
        ClaimInError::Locked
    );
    let mut locked = update(1, 0);
    locked.locked = true;
    store.sync(&b, &locked).await.unwrap();
    assert_eq!(
        store
            .claim_in(&b, &seat("i2", Duration::from_secs(60)))
            .await
            .unwrap()
            .unwrap_err(),
        ClaimInError::Locked
    );
    let claimed = store.claim_in(&b, &invite("i3")).await.unwrap().unwrap();
    assert_eq!(claimed.listing.room_id, b);
}

#[tokio::test]
async fn local_store() {
    suite(&LocalStore::default()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_store() {
    let redis = RedisServer::start();
    let presence = RedisPresence::connect(&redis.url()).await.unwrap();
    let store = RedisStore::connect(&presence, "test:").await.unwrap();
    suite(&store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_in_redis_is_skipped() {
    let redis = RedisServer::start();
    let presence = RedisPresence::connect(&redis.url()).await.unwrap();
    let store = RedisStore::connect(&presence, "g:").await.unwrap();
    let id = create(&store, "battle", "a", 10).await;
    // Another version's listing, and garbage, under the same name.
    use roomcast::Presence;
    presence.hset("g:room:alien", "v", "99").await.unwrap();
    presence.hset("g:room:junk", "v", "1").await.unwrap();
    presence.hset("g:room:junk", "max", "many").await.unwrap();
    let mut conn = redis::Client::open(redis.url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let _: () = redis::cmd("ZADD")
        .arg("g:name:battle")
        .arg(0)
        .arg("alien")
        .arg(1)
        .arg("junk")
        .query_async(&mut conn)
        .await
        .unwrap();
    let none = Map::new();
    let q = RoomQuery {
        name: "battle",
        filters: &none,
        sort: &[],
    };
    let listed: Vec<_> = store
        .query(&q)
        .await
        .unwrap()
        .into_iter()
        .map(|l| l.room_id)
        .collect();
    assert_eq!(listed, std::slice::from_ref(&id));
    assert!(store.get("junk").await.unwrap().is_none());
    // Garbage in the free sets too: claims (sorted or not) skip it.
    for free in ["g:free:battle\u{1f}mode=\"a\"", "g:free:battle"] {
        let _: () = redis::cmd("ZADD")
            .arg(free)
            .arg(-2)
            .arg("alien")
            .arg(-1)
            .arg("junk")
            .query_async(&mut conn)
            .await
            .unwrap();
    }
    presence.hset("g:room:junk", "held", "x").await.unwrap();
    let fa = filters(json!({ "mode": "a" }));
    let sort = [("clients".to_owned(), Order::Desc)];
    for sort in [&[][..], &sort[..]] {
        let query = RoomQuery {
            name: "battle",
            filters: &fa,
            sort,
        };
        let claimed = store
            .claim(
                &query,
                &seat(&format!("s{}", sort.len()), Duration::from_secs(60)),
                false,
            )
            .await
            .unwrap();
        assert!(matches!(claimed, Claim::Seat(c) if c.listing.room_id == id));
    }
    let none = Map::new();
    let any = RoomQuery {
        name: "battle",
        filters: &none,
        sort: &sort,
    };
    assert!(matches!(
        store.claim(&any, &seat("s9", Duration::from_secs(60)), false).await.unwrap(),
        Claim::Seat(c) if c.listing.room_id == id
    ));
    assert!(store
        .sync(
            "junk",
            &RoomUpdate {
                held: 1,
                applied: 0,
                max_clients: None,
                locked: false,
                private: false,
                unlisted: false,
                metadata: json!(null),
            }
        )
        .await
        .is_ok());
    assert_eq!(store.take_seat("junk", "nobody").await.unwrap(), None);
}

/// A room of ten, per mode.
#[derive(Default)]
struct Battle;

impl Room for Battle {
    type State = NoState;
    type UserData = ();
    type Auth = ();

    async fn on_create(
        &mut self,
        ctx: &mut RoomCtx<Self>,
        options: &Options,
    ) -> Result<(), ServerError> {
        ctx.set_max_clients(Some(10));
        if let Some(ms) = options["slowCreate"].as_u64() {
            tokio::time::sleep(Duration::from_millis(ms)).await;
        }
        ctx.on_call("info", |_room, ctx, greeting: String| {
            Ok::<_, ServerError>(json!({ "room": ctx.room_id(), "greeting": greeting }))
        });
        tokio::time::sleep(Duration::from_millis(5)).await;
        Ok(())
    }
}

async fn process(redis: &RedisServer, id: &str) -> Server {
    process_with(redis, id, |_| {}).await
}

async fn process_with(
    redis: &RedisServer,
    id: &str,
    configure: impl FnOnce(&mut ServerConfig),
) -> Server {
    let presence = RedisPresence::connect(&redis.url()).await.unwrap();
    let store = RedisStore::connect(&presence, "c:").await.unwrap();
    let mut config = ServerConfig::default();
    configure(&mut config);
    config.process_id = id.into();
    config.public_address = Some(format!("{id}.example:2567"));
    config.room_threads = 0;
    Server::builder()
        .define("battle", Battle::default)
        .filter_by(["mode"])
        .realtime_listing()
        .define("lobby", roomcast::LobbyRoom::default)
        .presence(Arc::new(presence))
        .store(Arc::new(store))
        .config(config)
        .build()
}

async fn next(session: &mut Session) -> Received {
    next_received(session, Duration::from_secs(5)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_share_rooms_and_seats_through_redis() {
    let redis = RedisServer::start();
    let servers = [process(&redis, "pa").await, process(&redis, "pb").await];
    let joins = (0..120).map(|i| {
        let server = servers[i % 2].clone();
        tokio::spawn(async move {
            let mode = format!("m{}", i % 3);
            let seat = server
                .matchmake(Method::JoinOrCreate, "battle", json!({ "mode": mode }))
                .await
                .unwrap();
            (mode, seat)
        })
    });
    let mut rooms: HashMap<String, (String, usize, String)> = HashMap::new();
    let mut seats = Vec::new();
    for join in joins {
        let (mode, seat) = join.await.unwrap();
        let entry = rooms.entry(seat.room.room_id.clone()).or_insert((
            mode.clone(),
            0,
            seat.room.process_id.clone(),
        ));
        assert_eq!(entry.0, mode);
        entry.1 += 1;
        assert_eq!(
            seat.room.public_address.as_deref(),
            Some(&*format!("{}.example:2567", seat.room.process_id))
        );
        seats.push(seat);
    }
    let mut per_mode: HashMap<&str, Vec<usize>> = HashMap::new();
    for (mode, count, _) in rooms.values() {
        per_mode.entry(mode).or_default().push(*count);
    }
    for (mode, mut counts) in per_mode {
        counts.sort_unstable();
        assert_eq!(
            counts,
            [10, 10, 10, 10],
            "mode {mode}: 40 joins, rooms of 10"
        );
    }
    // Seats claimed by one process in the other's rooms: the client
    // connects to the holder, which takes the seat from Redis.
    let mut crossed = 0;
    for seat in seats.iter().step_by(3) {
        let holder = servers
            .iter()
            .find(|s| s.config().process_id == seat.room.process_id)
            .unwrap();
        let mut session = holder
            .open_session(
                &seat.room.room_id,
                ConnectRequest::new(seat.session_id.clone()),
            )
            .await;
        assert!(
            matches!(next(&mut session).await, Received::JoinRoom { .. }),
            "seat {} in {}",
            seat.session_id,
            seat.room.room_id
        );
        crossed += 1;
    }
    assert!(crossed > 0);
    // Both processes list every room.
    for server in &servers {
        assert_eq!(server.rooms().await.unwrap().len(), 12);
    }
}

async fn hget(redis: &RedisServer, key: &str, field: &str) -> Option<String> {
    let mut conn = redis::Client::open(redis.url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    redis::cmd("HGET")
        .arg(key)
        .arg(field)
        .query_async(&mut conn)
        .await
        .unwrap()
}

/// Polls `check` every 50 ms until it holds or `within` passes.
async fn eventually<F, Fut>(within: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = std::time::Instant::now() + within;
    while !check().await {
        assert!(
            std::time::Instant::now() < deadline,
            "{what} within {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_holder_takes_a_seat_when_told() {
    let redis = RedisServer::start();
    let a = process(&redis, "na").await;
    let b = process(&redis, "nb").await;
    let seat = b
        .matchmake(Method::Create, "battle", json!({ "mode": "x" }))
        .await
        .unwrap();
    let room = seat.room.room_id;
    let claimed = a
        .matchmake(Method::JoinById, &room, json!({}))
        .await
        .unwrap();
    assert_eq!(claimed.room.process_id, "nb");
    // No client connects: the notice alone moves the seat into the room.
    eventually(Duration::from_secs(5), "the seat taken", || async {
        hget(&redis, &format!("c:room:{room}"), "taken")
            .await
            .as_deref()
            == Some("1")
    })
    .await;
    assert_eq!(
        hget(&redis, &format!("c:room:{room}"), "pending")
            .await
            .as_deref(),
        Some("0")
    );
    let mut session = b
        .open_session(&room, ConnectRequest::new(claimed.session_id))
        .await;
    assert!(matches!(
        next(&mut session).await,
        Received::JoinRoom { .. }
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_process_is_swept_with_its_rooms() {
    let redis = RedisServer::start();
    let presence = RedisPresence::connect(&redis.url()).await.unwrap();
    let store = RedisStore::connect(&presence, "d:").await.unwrap();
    let gone = roomcast::ProcessInfo {
        process_id: "gone".into(),
        public_address: None,
        incarnation: "g1".into(),
    };
    let alive = roomcast::ProcessInfo {
        process_id: "alive".into(),
        public_address: None,
        incarnation: "a1".into(),
    };
    assert!(!store
        .heartbeat(&gone, Duration::from_millis(300))
        .await
        .unwrap());
    assert!(store
        .heartbeat(&gone, Duration::from_millis(300))
        .await
        .unwrap());
    assert!(!store
        .heartbeat(&alive, Duration::from_secs(60))
        .await
        .unwrap());
    let mut listing = roomcast::RoomListing::new("r1", "battle");
    listing.process_id = "gone".into();
    store.register(&listing, None).await.unwrap();
    let mut kept = roomcast::RoomListing::new("r2", "battle");
    kept.process_id = "alive".into();
    store.register(&kept, None).await.unwrap();
    let loads: Vec<_> = store
        .processes()
        .await
        .unwrap()
        .into_iter()
        .map(|p| (p.process_id, p.rooms))
        .collect();
    assert_eq!(loads, [("alive".into(), 1), ("gone".into(), 1)]);
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(store.sweep_processes().await.unwrap(), ["gone"]);
    let left: Vec<_> = store
        .all()
        .await
        .unwrap()
        .into_iter()
        .map(|l| l.room_id)
        .collect();
    assert_eq!(left, ["r2"]);
    assert!(
        !store
            .heartbeat(&gone, Duration::from_secs(1))
            .await
            .unwrap(),
        "forgotten"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rooms_survive_redis_going_away_and_are_listed_again() {
    let mut redis = RedisServer::start();
    let server = process(&redis, "rl").await;
    let seat = server
        .matchmake(Method::Create, "battle", json!({ "mode": "x" }))
        .await
        .unwrap();
    let mut session = server
        .open_session(&seat.room.room_id, ConnectRequest::new(seat.session_id))
        .await;
    assert!(matches!(
        next(&mut session).await,
        Received::JoinRoom { .. }
    ));
    session.deliver(vec![0x0a].into()).await;
    // Redis goes away: matchmaking answers a clear error, soon; the room
    // goes on.
    redis.stop();
    let started = std::time::Instant::now();
    let err = server
        .matchmake(Method::JoinOrCreate, "battle", json!({ "mode": "x" }))
        .await
        .unwrap_err();
    assert_eq!(err.code, 523, "{err}");
    assert!(err.message.contains("unavailable"), "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(server.has_room(&seat.room.room_id));
    // Back, empty: the heartbeat finds the process lost and its room is
    // listed again, even when a new room was listed first.
    redis.restart();
    eventually(Duration::from_secs(10), "matchmaking back", || async {
        server
            .matchmake(Method::Create, "battle", json!({ "mode": "other" }))
            .await
            .is_ok()
    })
    .await;
    eventually(Duration::from_secs(15), "the room listed again", || async {
        server.rooms().await.is_ok_and(|rooms| {
            rooms
                .iter()
                .any(|r| r.room_id == seat.room.room_id && r.clients == 1)
        })
    })
    .await;
    let joined = server
        .matchmake(Method::JoinOrCreate, "battle", json!({ "mode": "x" }))
        .await
        .unwrap();
    assert_eq!(joined.room.room_id, seat.room.room_id);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_rooms_go_to_the_process_with_the_fewest() {
    let redis = RedisServer::start();
    let a = process(&redis, "busy").await;
    for mode in ["x", "y"] {
        a.matchmake(Method::Create, "battle", json!({ "mode": mode }))
            .await
            .unwrap();
    }
    let b = process(&redis, "idle").await;
    // Both have sent a heartbeat.
    eventually(
        Duration::from_secs(5),
        "two processes registered",
        || async { b.store().processes().await.unwrap().len() == 2 },
    )
    .await;
    let seat = a
        .matchmake(Method::JoinOrCreate, "battle", json!({ "mode": "z" }))
        .await
        .unwrap();
    assert_eq!(seat.room.process_id, "idle", "created by the idle process");
    assert_eq!(seat.room.clients, 1);
    // The idle process holds it: its client joins there.
    let mut session = b
        .open_session(&seat.room.room_id, ConnectRequest::new(seat.session_id))
        .await;
    assert!(matches!(
        next(&mut session).await,
        Received::JoinRoom { .. }
    ));
    // Another request for the same mode joins that room.
    let again = a
        .matchmake(Method::JoinOrCreate, "battle", json!({ "mode": "z" }))
        .await
        .unwrap();
    assert_eq!(again.room.room_id, seat.room.room_id);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_and_disconnects_reach_rooms_of_other_processes() {
    let redis = RedisServer::start();
    let a = process(&redis, "ca").await;
    let b = process(&redis, "cb").await;
    let seat = b
        .matchmake(Method::Create, "battle", json!({ "mode": "x" }))
        .await
        .unwrap();
    let room = seat.room.room_id;
    let answer = a.call(&room, "info", json!("hi")).await.unwrap();
    assert_eq!(answer, json!({ "room": room, "greeting": "hi" }));
    let local = b.call(&room, "info", json!("there")).await.unwrap();
    assert_eq!(local["greeting"], "there");
    let err = a.call(&room, "nope", json!(null)).await.unwrap_err();
    assert!(err.message.contains("no call"), "{err}");
    let err = a.call(&room, "info", json!(42)).await.unwrap_err();
    assert_eq!(err.code, 4217, "{err}");
    assert_eq!(
        a.call("missing", "info", json!("x"))
            .await
            .unwrap_err()
            .code,
        522
    );
    a.disconnect_room(&room).await.unwrap();
    eventually(Duration::from_secs(5), "the room gone", || async {
        a.rooms().await.unwrap().is_empty() && !b.has_room(&room)
    })
    .await;
    assert_eq!(a.disconnect_room(&room).await.unwrap_err().code, 522);
}

/// Colyseus issue 978: a `joinOrCreate` whose inter-process call times out
/// creates a second room. Here the process asked to create is slower than
/// the timeout: its room is refused when it finally lists it, and the
/// requests end up in exactly as many rooms as needed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_remote_creation_that_times_out_makes_no_duplicate() {
    let redis = RedisServer::start();
    let fast = process_with(&redis, "asker", |c| {
        c.remote_timeout = Duration::from_millis(100);
    })
    .await;
    for mode in ["x", "y"] {
        fast.matchmake(Method::Create, "battle", json!({ "mode": mode }))
            .await
            .unwrap();
    }
    let slow = process(&redis, "slow").await;
    eventually(
        Duration::from_secs(5),
        "two processes registered",
        || async { slow.store().processes().await.unwrap().len() == 2 },
    )
    .await;
    let joins = (0..20).map(|_| {
        let server = fast.clone();
        tokio::spawn(async move {
            server
                .matchmake(
                    Method::JoinOrCreate,
                    "battle",
                    json!({ "mode": "s", "slowCreate": 400 }),
                )
                .await
                .unwrap()
        })
    });
    let mut rooms: HashMap<String, usize> = HashMap::new();
    for join in joins {
        *rooms.entry(join.await.unwrap().room.room_id).or_default() += 1;
    }
    let mut counts: Vec<usize> = rooms.values().copied().collect();
    counts.sort_unstable();
    assert_eq!(counts, [10, 10], "20 joins, rooms of 10: {rooms:?}");
    // The slow process's late rooms were never listed.
    tokio::time::sleep(Duration::from_millis(800)).await;
    let listed: Vec<_> = fast
        .rooms()
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.filters.get("mode") == Some(&json!("s")))
        .map(|r| (r.room_id, r.process_id))
        .collect();
    assert_eq!(listed.len(), 2, "{listed:?}");
    assert!(
        listed.iter().all(|(_, process)| process == "asker"),
        "the slow process timed out every time: {listed:?}"
    );
}

/// The next ROOM_DATA message, skipping other frames.
async fn message(session: &mut Session) -> (String, roomcast::msgpack::Value) {
    loop {
        match next(session).await {
            Received::Message(roomcast::MessageType::Name(ty), value) => return (ty, value),
            Received::Closed(code) => panic!("closed with {code}"),
            _ => {}
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lobby_lists_the_rooms_of_every_process_as_they_change() {
    use roomcast::msgpack::Value as M;
    let redis = RedisServer::start();
    let a = process(&redis, "la").await;
    let b = process(&redis, "lb").await;
    let first = b
        .matchmake(Method::Create, "battle", json!({ "mode": "x" }))
        .await
        .unwrap();
    let seat = a
        .matchmake(Method::JoinOrCreate, "lobby", json!({}))
        .await
        .unwrap();
    assert!(
        !a.available_rooms("lobby")
            .await
            .unwrap()
            .iter()
            .any(|r| r.room_id == seat.room.room_id),
        "unlisted"
    );
    let mut lobby = a
        .open_session(&seat.room.room_id, ConnectRequest::new(seat.session_id))
        .await;
    assert!(matches!(next(&mut lobby).await, Received::JoinRoom { .. }));
    lobby.deliver(vec![0x0a].into()).await;
    let (ty, rooms) = message(&mut lobby).await;
    assert_eq!(ty, "rooms");
    let M::Array(rooms) = rooms else {
        panic!("{rooms:?}")
    };
    let room_id = |v: &M| match v {
        M::Map(fields) => fields.iter().find_map(|(k, v)| match (k, v) {
            (M::Str(k), M::Str(v)) if k == "roomId" => Some(v.clone()),
            _ => None,
        }),
        _ => None,
    };
    let ids: Vec<_> = rooms.iter().filter_map(room_id).collect();
    assert_eq!(ids, std::slice::from_ref(&first.room.room_id));
    // A room created on the other process appears...
    let second = b
        .matchmake(Method::Create, "battle", json!({ "mode": "y" }))
        .await
        .unwrap();
    let added = loop {
        let (ty, value) = message(&mut lobby).await;
        assert_eq!(ty, "+", "{value:?}");
        let M::Array(pair) = value else { panic!() };
        if pair[0] == M::Str(second.room.room_id.clone()) {
            break pair;
        }
    };
    assert_eq!(room_id(&added[1]), Some(second.room.room_id.clone()));
    // ...and goes.
    a.disconnect_room(&second.room.room_id).await.unwrap();
    loop {
        let (ty, value) = message(&mut lobby).await;
        if ty == "-" {
            assert_eq!(value, M::Str(second.room.room_id.clone()));
            break;
        }
    }
}
