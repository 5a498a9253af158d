//! Room listings, and the store that keeps them and counts seats
//! (Colyseus' "driver").
//!
//! Matchmaking runs on a [`ListingStore`]: one atomic step finds the best
//! room with a free seat for a request and takes the seat there, or else
//! hands the request the creation lock of its room name and filter values,
//! so that concurrent requests never create two rooms where one would do.
//! A seat taken in the store is *pending* until the process that holds the
//! room takes it ([`ListingStore::take_seat`]), either because it was told
//! or because the client's WebSocket arrived; the room's own count of seats
//! reaches the store with [`ListingStore::sync`]. The store counts a room's
//! occupancy as `held + pending + (taken - applied)`: seats the room
//! reported, seats not yet taken, and seats taken that the room has not
//! reported yet, so no write ever hides a seat and no room is offered
//! beyond its `maxClients`.

mod local;
#[cfg(feature = "server")]
mod redis;

use std::cmp::Ordering;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use rand::Rng;
use serde::{Deserialize, Serialize};

pub use self::local::LocalStore;
#[cfg(feature = "server")]
pub use self::redis::RedisStore;
use crate::presence::Subscription;
use crate::room::Options;

/// What matchmaking knows about a room (Colyseus `RoomListing` /
/// `IRoomCache`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct RoomListing {
    /// The room's id.
    pub room_id: String,
    /// The name the room was defined under.
    pub name: String,
    /// The process that holds the room.
    pub process_id: String,
    /// Where clients reach that process (`host[:port][/path]`), if set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub public_address: Option<String>,
    /// Clients plus reserved seats.
    pub clients: usize,
    /// The client cap, if any.
    pub max_clients: Option<usize>,
    /// Locked by hand or full.
    pub locked: bool,
    /// Hidden from matchmaking and listings (still joinable by id).
    pub private: bool,
    /// Hidden from listings (lobby, `GET /matchmake/<name>`), still offered
    /// by matchmaking.
    pub unlisted: bool,
    /// Free-form listing metadata.
    pub metadata: serde_json::Value,
    /// When the room was created, in milliseconds since the Unix epoch.
    pub created_at: u64,
    /// The values of the definition's `filter_by` fields the room was
    /// created with.
    #[serde(default)]
    pub filters: serde_json::Map<String, serde_json::Value>,
}

impl RoomListing {
    /// A listing of a room with no clients, no cap, unlocked and public;
    /// the other fields are set by hand (stores and their tests).
    #[must_use]
    pub fn new(room_id: impl Into<String>, name: impl Into<String>) -> Self {
        Self {
            room_id: room_id.into(),
            name: name.into(),
            process_id: String::new(),
            public_address: None,
            clients: 0,
            max_clients: None,
            locked: false,
            private: false,
            unlisted: false,
            metadata: serde_json::Value::Null,
            created_at: 0,
            filters: serde_json::Map::new(),
        }
    }

    /// Whether `joinOrCreate`/`join` may offer the room (a free seat is
    /// checked apart).
    #[must_use]
    pub fn is_available(&self) -> bool {
        !self.locked && !self.private
    }

    /// Whether listings show the room.
    #[must_use]
    pub fn is_listed(&self) -> bool {
        !self.private && !self.unlisted
    }

    /// The value a sort key reads: a listing field (`clients`,
    /// `maxClients`, `createdAt`, `roomId`, `name`), else a filter value,
    /// else a metadata field (`field` or `metadata.field`).
    fn sort_value(&self, key: &str) -> Option<serde_json::Value> {
        use serde_json::Value;
        Some(match key {
            "clients" => Value::from(self.clients),
            // No cap sorts as the largest, like the reference's Infinity.
            "maxClients" => Value::from(self.max_clients.map_or(f64::INFINITY, |m| m as f64)),
            "createdAt" => Value::from(self.created_at),
            "roomId" => Value::from(self.room_id.as_str()),
            "name" => Value::from(self.name.as_str()),
            _ => {
                if let Some(v) = self.filters.get(key) {
                    return Some(v.clone());
                }
                let field = key.strip_prefix("metadata.").unwrap_or(key);
                return self.metadata.get(field).cloned();
            }
        })
    }
}

/// A sort direction of [`ServerBuilder::sort_by`](crate::ServerBuilder::sort_by).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Order {
    /// Smallest first (Colyseus `1`, `"asc"`).
    Asc,
    /// Largest first (Colyseus `-1`, `"desc"`).
    Desc,
}

/// How matchmaking picks among matching rooms: keys in priority order.
/// Empty: the oldest room first (the reference's default).
pub type SortKeys = Vec<(String, Order)>;

/// Compares two listings by `sort`; rooms equal on every key keep their
/// order (creation order in both stores). Values of different kinds, and
/// missing values, compare equal, as in the reference.
pub(crate) fn compare(a: &RoomListing, b: &RoomListing, sort: &[(String, Order)]) -> Ordering {
    for (key, order) in sort {
        let ordering = match (a.sort_value(key), b.sort_value(key)) {
            (Some(x), Some(y)) => compare_values(&x, &y),
            _ => Ordering::Equal,
        };
        let ordering = match order {
            Order::Asc => ordering,
            Order::Desc => ordering.reverse(),
        };
        if ordering != Ordering::Equal {
            return ordering;
        }
    }
    Ordering::Equal
}

fn compare_values(a: &serde_json::Value, b: &serde_json::Value) -> Ordering {
    use serde_json::Value;
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            let (x, y) = (x.as_f64().unwrap_or(0.0), y.as_f64().unwrap_or(0.0));
            x.partial_cmp(&y).unwrap_or(Ordering::Equal)
        }
        (Value::String(x), Value::String(y)) => x.cmp(y),
        (Value::Bool(x), Value::Bool(y)) => x.cmp(y),
        _ => Ordering::Equal,
    }
}

/// The rooms a matchmaking request may join.
#[derive(Clone, Debug)]
pub struct RoomQuery<'a> {
    /// The room name.
    pub name: &'a str,
    /// Filter values the room must have: the request's values of the
    /// definition's `filter_by` fields (a field the request left out
    /// matches any room, as in the reference).
    pub filters: &'a serde_json::Map<String, serde_json::Value>,
    /// The definition's `sort_by`.
    pub sort: &'a [(String, Order)],
}

impl RoomQuery<'_> {
    /// Whether `listing` is named and filtered like the query.
    #[must_use]
    pub fn matches(&self, listing: &RoomListing) -> bool {
        listing.name == self.name
            && self
                .filters
                .iter()
                .all(|(k, v)| listing.filters.get(k) == Some(v))
    }

    /// The key of the creation lock of rooms matching this query: the name
    /// and the filter values, in a canonical form.
    #[must_use]
    pub fn lock_key(&self) -> String {
        let mut fields: Vec<_> = self.filters.iter().collect();
        fields.sort_by(|a, b| a.0.cmp(b.0));
        let mut key = self.name.to_owned();
        for (k, v) in fields {
            key.push('\u{1f}');
            key.push_str(k);
            key.push('=');
            key.push_str(&v.to_string());
        }
        key
    }
}

/// A seat a matchmaking request asks for.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct SeatRequest {
    /// The session id the client will connect with.
    pub session_id: String,
    /// The join options the room's hooks will see.
    pub options: Options,
    /// How long the seat waits for the client.
    pub ttl: Duration,
    /// The process that asks and the id of the request it waits on: the
    /// holder of the room, if another process, answers it once it took
    /// the seat (`None`: nobody waits).
    pub reply_to: Option<(String, u64)>,
    /// Taken in a room locked by hand too (never beyond its
    /// `maxClients`): what `reserveSeatFor` asks, not `joinById`
    /// ([`ListingStore::claim_in`]).
    pub past_lock: bool,
}

impl SeatRequest {
    /// A seat for `session_id` with `options`, waiting `ttl` for its
    /// client; nobody waits for the holder's answer.
    #[must_use]
    pub fn new(session_id: impl Into<String>, options: Options, ttl: Duration) -> Self {
        Self {
            session_id: session_id.into(),
            options,
            ttl,
            reply_to: None,
            past_lock: false,
        }
    }
}

/// A seat taken by [`ListingStore::claim`]: where it is.
#[derive(Clone, Debug)]
pub struct Claimed {
    /// The room, with the seat counted.
    pub listing: RoomListing,
}

/// The outcome of [`ListingStore::claim`].
#[derive(Debug)]
pub enum Claim {
    /// A seat was taken in this room.
    Seat(Claimed),
    /// No room has a free seat; the caller now holds the creation lock of
    /// the query and should create one, then
    /// [`register`](ListingStore::register) it with the lock.
    Create(CreateLock),
    /// No room has a free seat and another request is creating one: wait
    /// ([`ListingStore::changed`]) and claim again.
    Wait,
    /// No room has a free seat (the request may not create one).
    NoRoom,
}

/// Why [`ListingStore::claim_in`] took no seat.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClaimInError {
    /// No such room.
    NotFound,
    /// Locked by hand or full.
    Locked,
}

/// The right to create a room for a query, from [`Claim::Create`]. It
/// expires on its own after [`CREATE_LOCK_TTL`], and is released by
/// [`ListingStore::register`] or [`ListingStore::release`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateLock {
    /// The query's [`lock_key`](RoomQuery::lock_key).
    pub key: String,
    /// This holder's token.
    pub token: String,
}

/// How long a process's registration lasts without a heartbeat: a process
/// that stops (killed, frozen, cut off from Redis) is taken for dead this
/// long after its last heartbeat, and its rooms are unlisted by the next
/// sweep of a live process.
pub const PROCESS_TTL: Duration = Duration::from_secs(5);

/// How often a process renews its registration and sweeps dead ones.
pub const HEARTBEAT_PERIOD: Duration = Duration::from_secs(1);

/// How long a creation lock lasts if its holder neither registers a room
/// nor releases it (a process that died while creating).
pub const CREATE_LOCK_TTL: Duration = Duration::from_secs(10);

/// What a room's holder reports of it ([`ListingStore::sync`]).
#[derive(Clone, Debug, PartialEq)]
pub struct RoomUpdate {
    /// Seats the room holds (clients, reservations it took, clients it
    /// waits for to reconnect).
    pub held: usize,
    /// How many seats taken through [`ListingStore::take_seat`] `held`
    /// already counts.
    pub applied: u64,
    /// The client cap.
    pub max_clients: Option<usize>,
    /// Locked by hand (a full room is locked by the store).
    pub locked: bool,
    /// Hidden from matchmaking and listings.
    pub private: bool,
    /// Hidden from listings.
    pub unlisted: bool,
    /// The listing metadata.
    pub metadata: serde_json::Value,
}

/// Why a [`ListingStore`] call failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The store cannot be reached (Redis down); matchmaking answers with
    /// an error until it is back.
    #[error("the listing store is unavailable: {0}")]
    Unavailable(String),
    /// [`ListingStore::register`] with a creation lock that expired or was
    /// released: another request may have created a room meanwhile.
    #[error("the creation lock was lost")]
    LockLost,
    /// Anything else.
    #[error("listing store error: {0}")]
    Backend(String),
}

/// What every [`ListingStore`] call returns.
pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'a>>;

/// Where room listings live and seats are counted: [`LocalStore`] for one
/// process; a cluster shares one through Redis.
///
/// Seats: [`claim`](Self::claim) and [`claim_in`](Self::claim_in) take a
/// seat atomically (a room never gets more than its `maxClients`); the
/// seat is pending until the room's holder [takes](Self::take_seat) it or
/// its time runs out.
pub trait ListingStore: Send + Sync + 'static {
    /// Takes a seat in the best room matching `query` that has one (by its
    /// sort, then the oldest first); else, when `may_create`, takes the
    /// query's creation lock if it is free ([`Claim::Create`]) or says to
    /// wait ([`Claim::Wait`]).
    fn claim<'a>(
        &'a self,
        query: &'a RoomQuery<'a>,
        seat: &'a SeatRequest,
        may_create: bool,
    ) -> StoreFuture<'a, Claim>;

    /// Takes a seat in the room `room_id` (`joinById`): it may be private,
    /// not locked or full; with [`SeatRequest::past_lock`]
    /// (`reserveSeatFor`), locked by hand but not full.
    fn claim_in<'a>(
        &'a self,
        room_id: &'a str,
        seat: &'a SeatRequest,
    ) -> StoreFuture<'a, Result<Claimed, ClaimInError>>;

    /// Gives a creation lock back without a room (the creation failed).
    fn release<'a>(&'a self, lock: &'a CreateLock) -> StoreFuture<'a, ()>;

    /// Lists a new room holding `held` seats (its creator's). With `lock`,
    /// only while that lock is held ([`StoreError::LockLost`] otherwise),
    /// and the lock is released.
    fn register<'a>(
        &'a self,
        listing: &'a RoomListing,
        lock: Option<&'a CreateLock>,
    ) -> StoreFuture<'a, ()>;

    /// The holder of `room_id` takes a pending seat: its join options, or
    /// `None` if there is no such seat (never claimed, expired, or taken).
    fn take_seat<'a>(
        &'a self,
        room_id: &'a str,
        session_id: &'a str,
    ) -> StoreFuture<'a, Option<Options>>;

    /// The holder's report of a room.
    fn sync<'a>(&'a self, room_id: &'a str, update: &'a RoomUpdate) -> StoreFuture<'a, ()>;

    /// Unlists a room and drops its pending seats.
    fn remove<'a>(&'a self, room_id: &'a str) -> StoreFuture<'a, ()>;

    /// One room's listing.
    fn get<'a>(&'a self, room_id: &'a str) -> StoreFuture<'a, Option<RoomListing>>;

    /// Listed rooms (not private, not unlisted) matching `query`, in its
    /// sort order; locked and full ones included (a lobby shows them).
    fn query<'a>(&'a self, query: &'a RoomQuery<'a>) -> StoreFuture<'a, Vec<RoomListing>>;

    /// Every room of the store, private and unlisted ones too.
    fn all(&self) -> StoreFuture<'_, Vec<RoomListing>>;

    /// Resolves when a claim that had to wait may now succeed (a room was
    /// registered, a lock released, a seat freed), or after `timeout`.
    fn changed(&self, timeout: Duration) -> Pin<Box<dyn Future<Output = ()> + Send + '_>>;

    // ----- the processes of a cluster (no-ops for one process) ---------

    /// Whether several processes share this store (then rooms are told of
    /// their seats through [`listen`](Self::listen)).
    fn is_shared(&self) -> bool {
        false
    }

    /// Subscribes to the messages for `process_id`: seat notices from the
    /// store (`seat\n<roomId>\n<sessionId>` when a seat is claimed in one
    /// of its rooms) and what other processes [send](Self::send_to) it.
    /// `None` for a store of one process.
    fn listen<'a>(&'a self, process_id: &'a str) -> Option<StoreFuture<'a, Subscription>> {
        let _ = process_id;
        None
    }

    /// Sends `message` to the process `process_id`; returns how many
    /// listeners got it (0: the process is gone).
    fn send_to<'a>(&'a self, process_id: &'a str, message: &'a str) -> StoreFuture<'a, usize> {
        let _ = (process_id, message);
        Box::pin(std::future::ready(Ok(0)))
    }

    /// Registers `process` as alive for `ttl`. `Ok(false)` when the store
    /// did not know it (its first call, or it was lost: Redis restarted,
    /// or the process was taken for dead): its rooms must be
    /// [registered](Self::register) again.
    fn heartbeat<'a>(&'a self, process: &'a ProcessInfo, ttl: Duration) -> StoreFuture<'a, bool> {
        let _ = (process, ttl);
        Box::pin(std::future::ready(Ok(true)))
    }

    /// Unlists the rooms and seats of every process whose registration
    /// expired; returns their ids.
    fn sweep_processes(&self) -> StoreFuture<'_, Vec<String>> {
        Box::pin(std::future::ready(Ok(Vec::new())))
    }

    /// The live processes and how many rooms each holds, fewest first;
    /// empty for a store of one process.
    fn processes(&self) -> StoreFuture<'_, Vec<ProcessLoad>> {
        Box::pin(std::future::ready(Ok(Vec::new())))
    }
}

/// A process of a cluster, as it registers with [`ListingStore::heartbeat`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProcessInfo {
    /// Its `processId`.
    pub process_id: String,
    /// Where clients reach it.
    pub public_address: Option<String>,
    /// A token of this run of the process: a store that does not hold it
    /// (its data lost, or the process taken for dead) answers the
    /// heartbeat with `false`.
    pub incarnation: String,
}

/// A live process and its load ([`ListingStore::processes`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProcessLoad {
    /// Its `processId`.
    pub process_id: String,
    /// Rooms it holds.
    pub rooms: usize,
}

/// Filter fields beyond this many are not indexed one by one: a request
/// must then give all of them or none (the room is indexed under its full
/// set of values and under its name).
const MAX_INDEXED_FILTERS: usize = 4;

/// The lock keys a room is indexed under: every subset of its filter
/// values (its name alone for none).
pub(crate) fn index_keys(
    name: &str,
    filters: &serde_json::Map<String, serde_json::Value>,
) -> Vec<String> {
    let fields: Vec<_> = filters.iter().collect();
    let subsets: Vec<Vec<usize>> = if fields.len() <= MAX_INDEXED_FILTERS {
        (0..1u32 << fields.len())
            .map(|mask| (0..fields.len()).filter(|i| mask & (1 << i) != 0).collect())
            .collect()
    } else {
        vec![Vec::new(), (0..fields.len()).collect()]
    };
    subsets
        .into_iter()
        .map(|subset| {
            let filters: serde_json::Map<_, _> = subset
                .into_iter()
                .map(|i| (fields[i].0.clone(), fields[i].1.clone()))
                .collect();
            RoomQuery {
                name,
                filters: &filters,
                sort: &[],
            }
            .lock_key()
        })
        .collect()
}

/// A random id of `len` characters from `[A-Za-z0-9_-]` (like nanoid).
pub(crate) fn generate_id(len: usize) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-";
    let mut rng = rand::rng();
    (0..len)
        .map(|_| char::from(ALPHABET[rng.random_range(0..64)]))
        .collect()
}

/// Milliseconds since the Unix epoch.
#[cfg(feature = "server")]
pub(crate) fn now_millis() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}
