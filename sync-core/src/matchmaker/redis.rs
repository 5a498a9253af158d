//! [`RedisStore`]: the listings and seats of a cluster, in Redis.
//!
//! Every step that reads and writes seats is one Lua script, so it is
//! atomic across processes. Keys (all under a prefix, `roomcast:` by
//! default):
//!
//! | key | type | what |
//! | --- | --- | --- |
//! | `room:<id>` | hash | a room: listing fields, `held`/`applied` (written by its holder), `taken`/`pending` (by the scripts), `seq`, `idx` |
//! | `free:<lock key>` | sorted set | rooms with a free seat, per room name and subset of filter values, by creation order |
//! | `name:<name>`, `all` | sorted set | every room of a name, and every room, by creation order |
//! | `rooms:<processId>` | set | the rooms a process holds |
//! | `lock:<lock key>` | string | a creation lock (token, with an expiry) |
//! | `seat:<id>:<sessionId>` | string | a pending seat's join options (with the seat's expiry) |
//! | `pending` | sorted set | pending seats by expiry, for the sweep |
//! | `p:<processId>`, `changed` | channels | seat notices to a room's holder; news for requests that wait |
//!
//! A room is in the `free:` set of every subset of its filter values, so a
//! request reads exactly the rooms that match it and have a seat: the cost
//! of a claim does not grow with rooms of other names, other filter values
//! or no free seat. Sorting (`sort_by`) reads the candidates' fields.
//!
//! Standalone Redis (5 or later) only: the scripts compute key names, which
//! Redis Cluster does not allow.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use redis::aio::ConnectionManager;
use redis::{RedisError, Script};
use tokio::runtime::Handle;
use tokio::sync::Notify;

use super::{
    index_keys, now_millis, Claim, ClaimInError, Claimed, CreateLock, ListingStore, Order,
    ProcessInfo, ProcessLoad, RoomListing, RoomQuery, RoomUpdate, SeatRequest, StoreError,
    StoreFuture, CREATE_LOCK_TTL, PROCESS_TTL,
};
use crate::presence::{Presence, RedisPresence, Subscription};
use crate::room::Options;

/// The format of a room's hash; other values are skipped with a warning.
const FORMAT: &str = "1";

/// How often the sweep gives back the seats nobody took in time.
const SWEEP_PERIOD: Duration = Duration::from_secs(1);

/// Shared by the scripts: `P` is the key prefix (`ARGV[1]`).
const PRELUDE: &str = r"
local P = ARGV[1]
-- A room's seats and flags; nil for a room that is gone or was not
-- written by this format (another version, garbage): never offered.
local function state(id)
  local f = redis.call('HMGET', P..'room:'..id, 'max', 'locked', 'private', 'held', 'applied', 'taken', 'pending', 'seq', 'idx', 'v')
  if f[10] ~= '1' or not f[8] then return nil end
  local held, applied, taken, pending = tonumber(f[4]), tonumber(f[5]), tonumber(f[6]), tonumber(f[7])
  local max = tonumber(f[1])
  if not (held and applied and taken and pending) or (f[1] ~= '' and not max) then return nil end
  local ok, idx = pcall(cjson.decode, f[9] or '')
  if not ok or type(idx) ~= 'table' then return nil end
  local occ = held + pending + taken - applied
  local full = max ~= nil and occ >= max
  return { free = f[2] == '0' and f[3] == '0' and not full, locked = f[2] == '1' or full, full = full, occ = occ, seq = f[8], idx = idx, max = f[1] }
end
local function refresh(id)
  local s = state(id)
  if not s then return false end
  for _, key in ipairs(s.idx) do
    if s.free then
      redis.call('ZADD', P..'free:'..key, s.seq, id)
    else
      redis.call('ZREM', P..'free:'..key, id)
    end
  end
  return s.free
end
local function remove_room(id)
  local rk = P..'room:'..id
  local f = redis.call('HMGET', rk, 'name', 'pid', 'idx')
  if not f[1] then return 0 end
  local ok, idx = pcall(cjson.decode, f[3] or '[]')
  if ok and type(idx) == 'table' then
    for _, key in ipairs(idx) do redis.call('ZREM', P..'free:'..key, id) end
  end
  redis.call('ZREM', P..'name:'..f[1], id)
  redis.call('ZREM', P..'all', id)
  if f[2] then redis.call('SREM', P..'rooms:'..f[2], id) end
  redis.call('DEL', rk)
  return 1
end
-- `claimer`: the process that asked (it tells its own rooms itself);
-- `reply`: empty, or `<process>\n<request id>` to answer once taken.
local function seat(id, session, options, ttl, now, claimer, reply)
  local rk = P..'room:'..id
  redis.call('HINCRBY', rk, 'pending', 1)
  redis.call('SET', P..'seat:'..id..':'..session, options, 'PX', ttl)
  redis.call('ZADD', P..'pending', tonumber(now) + tonumber(ttl), id..'\n'..session)
  refresh(id)
  local pid = redis.call('HGET', rk, 'pid')
  if pid ~= claimer then
    local notice = 'seat\n'..id..'\n'..session
    if reply ~= '' then notice = notice..'\n'..reply end
    redis.call('PUBLISH', P..'p:'..pid, notice)
  end
  return { 'seat', id, redis.call('HGETALL', rk) }
end
";

/// `ARGV`: prefix, lock key, session, options, ttl ms, now ms, may create
/// (`1`), lock token, lock ttl ms, sort (JSON `[[key, "asc"|"desc"]]` or
/// empty), claimer, reply address (see `seat`).
const CLAIM: &str = r"
local free = P..'free:'..ARGV[2]
local best
if ARGV[10] == '' then
  while true do
    local first = redis.call('ZRANGE', free, 0, 0)[1]
    if not first then break end
    if refresh(first) then best = first break end
    -- Not free any more, or gone: out of this set at least.
    redis.call('ZREM', free, first)
  end
else
  local sort = cjson.decode(ARGV[10])
  local function value(id, key)
    local rk = P..'room:'..id
    if key == 'clients' then return state(id).occ end
    if key == 'maxClients' then
      local m = redis.call('HGET', rk, 'max')
      if m == '' then return math.huge end
      return tonumber(m)
    end
    if key == 'createdAt' then return tonumber(redis.call('HGET', rk, 'created')) end
    if key == 'roomId' then return id end
    if key == 'name' then return redis.call('HGET', rk, 'name') end
    local ok, filters = pcall(cjson.decode, redis.call('HGET', rk, 'filters') or '')
    if ok and type(filters) == 'table' and filters[key] ~= nil then return filters[key] end
    local ok_meta, meta = pcall(cjson.decode, redis.call('HGET', rk, 'meta') or '')
    if not ok_meta or type(meta) ~= 'table' then return nil end
    local field = key
    if string.sub(key, 1, 9) == 'metadata.' then field = string.sub(key, 10) end
    return meta[field]
  end
  local function comparable(x)
    local t = type(x)
    if t == 'boolean' then if x then return 1 end return 0 end
    if t == 'number' or t == 'string' then return x end
    return nil
  end
  local best_values
  for _, id in ipairs(redis.call('ZRANGE', free, 0, -1)) do
    if not refresh(id) then
      redis.call('ZREM', free, id)
    else
    local values = {}
    for i, k in ipairs(sort) do values[i] = comparable(value(id, k[1])) end
    local better = best == nil
    if not better then
      for i, k in ipairs(sort) do
        local x, y = values[i], best_values[i]
        if x ~= nil and y ~= nil and type(x) == type(y) and x ~= y then
          if k[2] == 'asc' then better = x < y else better = x > y end
          break
        end
      end
    end
    if better then best, best_values = id, values end
    end
  end
end
if best then return seat(best, ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[11], ARGV[12]) end
if ARGV[7] == '1' then
  if redis.call('SET', P..'lock:'..ARGV[2], ARGV[8], 'NX', 'PX', ARGV[9]) then return { 'create' } end
  return { 'wait' }
end
return { 'none' }
";

/// `ARGV`: prefix, room id, session, options, ttl ms, now ms, claimer,
/// reply address.
const CLAIM_IN: &str = r"
local s = state(ARGV[2])
if not s then return { 'notfound' } end
if s.full or (s.locked and ARGV[9] ~= '1') then return { 'locked' } end
return seat(ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7], ARGV[8])
";

/// `ARGV`: prefix, room id, session.
const TAKE: &str = r"
local sk = P..'seat:'..ARGV[2]..':'..ARGV[3]
local options = redis.call('GET', sk)
if not options then return false end
redis.call('DEL', sk)
redis.call('ZREM', P..'pending', ARGV[2]..'\n'..ARGV[3])
local rk = P..'room:'..ARGV[2]
if redis.call('EXISTS', rk) == 1 then
  -- A seat claimed before the room was listed again is not in `pending`.
  if (tonumber(redis.call('HGET', rk, 'pending')) or 0) > 0 then redis.call('HINCRBY', rk, 'pending', -1) end
  redis.call('HINCRBY', rk, 'taken', 1)
end
return options
";

/// `ARGV`: prefix, room id, held, applied, max, locked, private,
/// unlisted, metadata.
const SYNC: &str = r"
local rk = P..'room:'..ARGV[2]
local before = state(ARGV[2])
if not before then return 0 end
local was_free = before.free
redis.call('HSET', rk, 'held', ARGV[3], 'applied', ARGV[4], 'max', ARGV[5], 'locked', ARGV[6], 'private', ARGV[7], 'unlisted', ARGV[8], 'meta', ARGV[9])
if refresh(ARGV[2]) and not was_free then redis.call('PUBLISH', P..'changed', ARGV[2]) end
return 1
";

/// `ARGV`: prefix, room id, lock key, lock token (empty: none), then the
/// fields: name, process id, address, created, filters, max, locked,
/// private, unlisted, metadata, held, index keys; then the process ttl ms.
const REGISTER: &str = r"
if ARGV[4] ~= '' then
  if redis.call('GET', P..'lock:'..ARGV[3]) ~= ARGV[4] then return 'lost' end
  redis.call('DEL', P..'lock:'..ARGV[3])
end
local id = ARGV[2]
local rk = P..'room:'..id
local seq = redis.call('INCR', P..'seq')
-- Listed again (after its process was lost): seats still pending stay.
redis.call('HSETNX', rk, 'pending', '0')
redis.call('HSET', rk, 'v', '1', 'name', ARGV[5], 'pid', ARGV[6], 'addr', ARGV[7], 'created', ARGV[8],
  'filters', ARGV[9], 'max', ARGV[10], 'locked', ARGV[11], 'private', ARGV[12], 'unlisted', ARGV[13],
  'meta', ARGV[14], 'held', ARGV[15], 'applied', '0', 'taken', '0', 'seq', seq, 'idx', ARGV[16])
-- A process is registered with its first room, so that it is swept if
-- it dies before its first heartbeat (which still finds it unknown: see
-- HEARTBEAT).
redis.call('SET', P..'alive:'..ARGV[6], ARGV[7], 'PX', ARGV[17], 'NX')
redis.call('SADD', P..'procs', ARGV[6])
redis.call('ZADD', P..'name:'..ARGV[5], seq, id)
redis.call('ZADD', P..'all', seq, id)
redis.call('SADD', P..'rooms:'..ARGV[6], id)
refresh(id)
redis.call('PUBLISH', P..'changed', id)
return 'ok'
";

/// `ARGV`: prefix, room id.
const REMOVE: &str = "return remove_room(ARGV[2])";

/// `ARGV`: prefix, process id, ttl ms, public address, incarnation.
/// Returns 1 when the store knew this run of the process.
const HEARTBEAT: &str = r"
local token = P..'token:'..ARGV[2]
local known = redis.call('GET', token) == ARGV[5]
redis.call('SET', P..'alive:'..ARGV[2], ARGV[4], 'PX', ARGV[3])
redis.call('SADD', P..'procs', ARGV[2])
if known then return 1 end
redis.call('SET', token, ARGV[5])
return 0
";

/// `ARGV`: prefix. Unlists the rooms of processes whose registration
/// expired; returns their ids.
const SWEEP_PROCESSES: &str = r"
local dead = {}
for _, pid in ipairs(redis.call('SMEMBERS', P..'procs')) do
  if redis.call('EXISTS', P..'alive:'..pid) == 0 then
    for _, id in ipairs(redis.call('SMEMBERS', P..'rooms:'..pid)) do remove_room(id) end
    redis.call('DEL', P..'rooms:'..pid, P..'token:'..pid)
    redis.call('SREM', P..'procs', pid)
    table.insert(dead, pid)
  end
end
if #dead > 0 then redis.call('PUBLISH', P..'changed', '') end
return dead
";

/// `ARGV`: prefix. Live processes and their room counts.
const PROCESSES: &str = r"
local out = {}
for _, pid in ipairs(redis.call('SMEMBERS', P..'procs')) do
  if redis.call('EXISTS', P..'alive:'..pid) == 1 then
    table.insert(out, { pid, redis.call('SCARD', P..'rooms:'..pid) })
  end
end
return out
";

/// `ARGV`: prefix, lock key, token.
const RELEASE: &str = r"
if redis.call('GET', P..'lock:'..ARGV[2]) == ARGV[3] then
  redis.call('DEL', P..'lock:'..ARGV[2])
  redis.call('PUBLISH', P..'changed', '')
end
return 1
";

/// `ARGV`: prefix, now ms.
const SWEEP: &str = r"
local due = redis.call('ZRANGEBYSCORE', P..'pending', '-inf', ARGV[2], 'LIMIT', 0, 512)
for _, member in ipairs(due) do
  redis.call('ZREM', P..'pending', member)
  local nl = string.find(member, '\n', 1, true)
  if nl then
    local id, session = string.sub(member, 1, nl - 1), string.sub(member, nl + 1)
    redis.call('DEL', P..'seat:'..id..':'..session)
    local rk = P..'room:'..id
    if redis.call('EXISTS', rk) == 1 and (tonumber(redis.call('HGET', rk, 'pending')) or 0) > 0 then
      redis.call('HINCRBY', rk, 'pending', -1)
      if refresh(id) then redis.call('PUBLISH', P..'changed', id) end
    end
  end
end
return #due
";

struct Scripts {
    claim: Script,
    claim_in: Script,
    take: Script,
    sync: Script,
    register: Script,
    remove: Script,
    release: Script,
    sweep: Script,
    heartbeat: Script,
    sweep_processes: Script,
    processes: Script,
}

impl Scripts {
    fn new() -> Self {
        let script = |body: &str| Script::new(&format!("{PRELUDE}{body}"));
        Self {
            claim: script(CLAIM),
            claim_in: script(CLAIM_IN),
            take: script(TAKE),
            sync: script(SYNC),
            register: script(REGISTER),
            remove: script(REMOVE),
            release: script(RELEASE),
            sweep: script(SWEEP),
            heartbeat: script(HEARTBEAT),
            sweep_processes: script(SWEEP_PROCESSES),
            processes: script(PROCESSES),
        }
    }
}

/// The [`ListingStore`] of a cluster: every process connected to the same
/// Redis (with the same prefix) shares listings and seats.
///
/// Seats are data, not calls: a claim takes a seat in Redis in one atomic
/// script and tells the room's holder on its channel, so no request waits
/// for another process to answer, and a room never gets more seats than
/// its `maxClients`. Creation takes a lock per room name and filter
/// values in the same script when no matching room has a free seat, so
/// concurrent `joinOrCreate` calls from any process never create two rooms
/// where one has room.
///
/// # Examples
///
/// ```no_run
/// use std::sync::Arc;
/// use roomcast::{RedisPresence, RedisStore, Server};
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let presence = RedisPresence::connect("redis://127.0.0.1:6379").await?;
/// let store = RedisStore::connect(&presence, "roomcast:").await?;
/// let server = Server::builder()
///     .presence(Arc::new(presence))
///     .store(Arc::new(store))
///     .build();
/// # let _ = server;
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct RedisStore {
    shared: Arc<Shared>,
}

struct Shared {
    prefix: String,
    presence: RedisPresence,
    conn: ConnectionManager,
    /// Where commands run (the presence's runtime drives the connection).
    runtime: Handle,
    scripts: Scripts,
    changed: Arc<Notify>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for Shared {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("prefix", &self.shared.prefix)
            .finish_non_exhaustive()
    }
}

fn map_error(e: &RedisError) -> StoreError {
    if e.is_io_error()
        || e.is_timeout()
        || e.is_connection_dropped()
        || e.is_connection_refusal()
        || e.is_unrecoverable_error()
    {
        StoreError::Unavailable(e.to_string())
    } else {
        StoreError::Backend(e.to_string())
    }
}

impl RedisStore {
    /// A store on the Redis `presence` is connected to, under `prefix`
    /// (processes of one cluster use the same). Starts the sweep that
    /// gives back seats nobody took in time.
    ///
    /// # Errors
    ///
    /// When the subscription to the store's channel fails.
    pub async fn connect(presence: &RedisPresence, prefix: &str) -> Result<Self, StoreError> {
        let changed = Arc::new(Notify::new());
        let mut subscription = presence
            .subscribe(&format!("{prefix}changed"))
            .await
            .map_err(|e| StoreError::Unavailable(e.to_string()))?;
        let runtime = Handle::current();
        let notify = changed.clone();
        let listener = runtime.spawn(async move {
            while subscription.recv().await.is_some() {
                notify.notify_waiters();
            }
        });
        let scripts = Scripts::new();
        let sweeper = {
            let (mut conn, sweep, prefix) = (
                presence.connection(),
                scripts.sweep.clone(),
                prefix.to_owned(),
            );
            let notify = changed.clone();
            runtime.spawn(async move {
                let mut every = tokio::time::interval(SWEEP_PERIOD);
                loop {
                    every.tick().await;
                    let swept: Result<usize, _> = sweep
                        .arg(&prefix)
                        .arg(now_millis())
                        .invoke_async(&mut conn)
                        .await;
                    match swept {
                        Ok(0) => {}
                        Ok(_) => notify.notify_waiters(),
                        Err(e) => tracing::debug!("seat sweep failed: {e}"),
                    }
                }
            })
        };
        Ok(Self {
            shared: Arc::new(Shared {
                prefix: prefix.to_owned(),
                presence: presence.clone(),
                conn: presence.connection(),
                runtime,
                scripts,
                changed,
                tasks: vec![listener, sweeper],
            }),
        })
    }

    /// The key prefix.
    #[must_use]
    pub fn prefix(&self) -> &str {
        &self.shared.prefix
    }

    /// Runs a script with `args` (after the prefix) on the store's
    /// runtime: by hash, loading it when Redis does not know it (after a
    /// restart).
    fn run<T>(&self, script: fn(&Scripts) -> &Script, args: Vec<String>) -> StoreFuture<'static, T>
    where
        T: redis::FromRedisValue + Send + 'static,
    {
        let shared = self.shared.clone();
        let task = self.shared.runtime.spawn(async move {
            let mut conn = shared.conn.clone();
            let mut invocation = script(&shared.scripts).prepare_invoke();
            invocation.arg(&shared.prefix);
            for arg in &args {
                invocation.arg(arg);
            }
            invocation.invoke_async::<T>(&mut conn).await
        });
        Box::pin(async move {
            match task.await {
                Ok(result) => result.map_err(|e| map_error(&e)),
                Err(e) => Err(StoreError::Unavailable(e.to_string())),
            }
        })
    }

    fn cmd<T>(&self, cmd: redis::Cmd) -> StoreFuture<'static, T>
    where
        T: redis::FromRedisValue + Send + 'static,
    {
        let mut conn = self.shared.conn.clone();
        let task = self
            .shared
            .runtime
            .spawn(async move { cmd.query_async::<T>(&mut conn).await });
        Box::pin(async move {
            match task.await {
                Ok(result) => result.map_err(|e| map_error(&e)),
                Err(e) => Err(StoreError::Unavailable(e.to_string())),
            }
        })
    }

    /// Listings of these room ids, skipping gone or unreadable ones.
    async fn listings(&self, ids: Vec<String>) -> Result<Vec<RoomListing>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        for id in &ids {
            pipe.hgetall(format!("{}room:{id}", self.shared.prefix));
        }
        let mut conn = self.shared.conn.clone();
        let hashes: Vec<HashMap<String, String>> = self
            .shared
            .runtime
            .spawn(async move { pipe.query_async(&mut conn).await })
            .await
            .map_err(|e| StoreError::Unavailable(e.to_string()))?
            .map_err(|e| map_error(&e))?;
        Ok(ids
            .iter()
            .zip(hashes)
            .filter(|(_, h)| !h.is_empty())
            .filter_map(|(id, h)| parse_listing(id, &h))
            .collect())
    }
}

/// A room's listing from its hash; `None` (logged) for a hash of another
/// format or with a field that does not parse.
fn parse_listing(id: &str, h: &HashMap<String, String>) -> Option<RoomListing> {
    let listing = (|| {
        if h.get("v").map(String::as_str) != Some(FORMAT) {
            return None;
        }
        let int = |k: &str| h.get(k)?.parse::<i64>().ok();
        let flag = |k: &str| Some(h.get(k)? == "1");
        let held = int("held")?;
        let occupancy = held + int("pending")? + int("taken")? - int("applied")?;
        let clients = usize::try_from(occupancy.max(0)).ok()?;
        let max_clients = match h.get("max")?.as_str() {
            "" => None,
            m => Some(m.parse::<usize>().ok()?),
        };
        let full = max_clients.is_some_and(|m| clients >= m);
        let serde_json::Value::Object(filters) = serde_json::from_str(h.get("filters")?).ok()?
        else {
            return None;
        };
        Some(RoomListing {
            room_id: id.to_owned(),
            name: h.get("name")?.clone(),
            process_id: h.get("pid")?.clone(),
            public_address: h.get("addr").filter(|a| !a.is_empty()).cloned(),
            clients,
            max_clients,
            locked: flag("locked")? || full,
            private: flag("private")?,
            unlisted: flag("unlisted")?,
            metadata: serde_json::from_str(h.get("meta")?).ok()?,
            created_at: h.get("created")?.parse().ok()?,
            filters,
        })
    })();
    if listing.is_none() {
        tracing::warn!(
            room = id,
            "skipping a room listing this version cannot read"
        );
    }
    listing
}

/// A script's answer: its kind, and for a seat the room's listing.
fn parse_answer(value: &redis::Value) -> Result<(String, Option<Claimed>), StoreError> {
    use redis::FromRedisValue;
    let bad = || StoreError::Backend("unexpected script answer".into());
    let redis::Value::Array(parts) = value else {
        return Err(bad());
    };
    let kind = parts
        .first()
        .and_then(|v| String::from_redis_value_ref(v).ok())
        .ok_or_else(bad)?;
    if kind != "seat" {
        return Ok((kind, None));
    }
    let id = parts
        .get(1)
        .and_then(|v| String::from_redis_value_ref(v).ok())
        .ok_or_else(bad)?;
    let fields = parts
        .get(2)
        .and_then(|v| HashMap::<String, String>::from_redis_value_ref(v).ok())
        .ok_or_else(bad)?;
    let listing = parse_listing(&id, &fields).ok_or_else(bad)?;
    Ok((kind, Some(Claimed { listing })))
}

fn sort_json(sort: &[(String, Order)]) -> String {
    if sort.is_empty() {
        return String::new();
    }
    let keys: Vec<_> = sort
        .iter()
        .map(|(key, order)| {
            serde_json::json!([key, if *order == Order::Asc { "asc" } else { "desc" }])
        })
        .collect();
    serde_json::Value::from(keys).to_string()
}

fn claimer(seat: &SeatRequest) -> String {
    seat.reply_to
        .as_ref()
        .map(|(process, _)| process.clone())
        .unwrap_or_default()
}

fn reply_address(seat: &SeatRequest) -> String {
    seat.reply_to
        .as_ref()
        .map(|(process, id)| format!("{process}\n{id}"))
        .unwrap_or_default()
}

fn flag(b: bool) -> &'static str {
    if b {
        "1"
    } else {
        "0"
    }
}

fn max_arg(max: Option<usize>) -> String {
    max.map(|m| m.to_string()).unwrap_or_default()
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1)
}

impl ListingStore for RedisStore {
    fn claim<'a>(
        &'a self,
        query: &'a RoomQuery<'a>,
        seat: &'a SeatRequest,
        may_create: bool,
    ) -> StoreFuture<'a, Claim> {
        let token = super::generate_id(12);
        let lock_key = query.lock_key();
        let answer = self.run::<redis::Value>(
            |s| &s.claim,
            vec![
                lock_key.clone(),
                seat.session_id.clone(),
                seat.options.to_string(),
                millis(seat.ttl).to_string(),
                now_millis().to_string(),
                flag(may_create).to_owned(),
                token.clone(),
                millis(CREATE_LOCK_TTL).to_string(),
                sort_json(query.sort),
                claimer(seat),
                reply_address(seat),
            ],
        );
        Box::pin(async move {
            let (kind, claimed) = parse_answer(&answer.await?)?;
            Ok(match (kind.as_str(), claimed) {
                ("seat", Some(claimed)) => Claim::Seat(claimed),
                ("create", _) => Claim::Create(CreateLock {
                    key: lock_key,
                    token,
                }),
                ("wait", _) => Claim::Wait,
                _ => Claim::NoRoom,
            })
        })
    }

    fn claim_in<'a>(
        &'a self,
        room_id: &'a str,
        seat: &'a SeatRequest,
    ) -> StoreFuture<'a, Result<Claimed, ClaimInError>> {
        let answer = self.run::<redis::Value>(
            |s| &s.claim_in,
            vec![
                room_id.to_owned(),
                seat.session_id.clone(),
                seat.options.to_string(),
                millis(seat.ttl).to_string(),
                now_millis().to_string(),
                claimer(seat),
                reply_address(seat),
                if seat.past_lock { "1" } else { "0" }.to_owned(),
            ],
        );
        Box::pin(async move {
            Ok(match parse_answer(&answer.await?)? {
                (_, Some(claimed)) => Ok(claimed),
                (kind, None) if kind == "locked" => Err(ClaimInError::Locked),
                _ => Err(ClaimInError::NotFound),
            })
        })
    }

    fn release<'a>(&'a self, lock: &'a CreateLock) -> StoreFuture<'a, ()> {
        let done = self.run::<i64>(|s| &s.release, vec![lock.key.clone(), lock.token.clone()]);
        Box::pin(async move { done.await.map(drop) })
    }

    fn register<'a>(
        &'a self,
        listing: &'a RoomListing,
        lock: Option<&'a CreateLock>,
    ) -> StoreFuture<'a, ()> {
        let (key, token) = lock.map_or((String::new(), String::new()), |l| {
            (l.key.clone(), l.token.clone())
        });
        let index = serde_json::Value::from(index_keys(&listing.name, &listing.filters));
        let done = self.run::<String>(
            |s| &s.register,
            vec![
                listing.room_id.clone(),
                key,
                token,
                listing.name.clone(),
                listing.process_id.clone(),
                listing.public_address.clone().unwrap_or_default(),
                listing.created_at.to_string(),
                serde_json::Value::Object(listing.filters.clone()).to_string(),
                max_arg(listing.max_clients),
                flag(listing.locked).to_owned(),
                flag(listing.private).to_owned(),
                flag(listing.unlisted).to_owned(),
                listing.metadata.to_string(),
                listing.clients.to_string(),
                index.to_string(),
                millis(PROCESS_TTL).to_string(),
            ],
        );
        Box::pin(async move {
            match done.await?.as_str() {
                "ok" => Ok(()),
                _ => Err(StoreError::LockLost),
            }
        })
    }

    fn take_seat<'a>(
        &'a self,
        room_id: &'a str,
        session_id: &'a str,
    ) -> StoreFuture<'a, Option<Options>> {
        let taken = self
            .run::<Option<String>>(|s| &s.take, vec![room_id.to_owned(), session_id.to_owned()]);
        Box::pin(async move {
            Ok(taken.await?.map(|options| {
                serde_json::from_str(&options).unwrap_or_else(|e| {
                    tracing::warn!("a seat's options do not parse ({e}): using none");
                    serde_json::json!({})
                })
            }))
        })
    }

    fn sync<'a>(&'a self, room_id: &'a str, update: &'a RoomUpdate) -> StoreFuture<'a, ()> {
        let done = self.run::<i64>(
            |s| &s.sync,
            vec![
                room_id.to_owned(),
                update.held.to_string(),
                update.applied.to_string(),
                max_arg(update.max_clients),
                flag(update.locked).to_owned(),
                flag(update.private).to_owned(),
                flag(update.unlisted).to_owned(),
                update.metadata.to_string(),
            ],
        );
        Box::pin(async move { done.await.map(drop) })
    }

    fn remove<'a>(&'a self, room_id: &'a str) -> StoreFuture<'a, ()> {
        let done = self.run::<i64>(|s| &s.remove, vec![room_id.to_owned()]);
        Box::pin(async move { done.await.map(drop) })
    }

    fn get<'a>(&'a self, room_id: &'a str) -> StoreFuture<'a, Option<RoomListing>> {
        Box::pin(async move {
            Ok(self
                .listings(vec![room_id.to_owned()])
                .await?
                .into_iter()
                .next())
        })
    }

    fn query<'a>(&'a self, query: &'a RoomQuery<'a>) -> StoreFuture<'a, Vec<RoomListing>> {
        let ids = self.cmd::<Vec<String>>(
            redis::cmd("ZRANGE")
                .arg(format!("{}name:{}", self.shared.prefix, query.name))
                .arg(0)
                .arg(-1)
                .to_owned(),
        );
        Box::pin(async move {
            let mut listings: Vec<RoomListing> = self
                .listings(ids.await?)
                .await?
                .into_iter()
                .filter(|l| l.is_listed() && query.matches(l))
                .collect();
            listings.sort_by(|a, b| super::compare(a, b, query.sort));
            Ok(listings)
        })
    }

    fn all(&self) -> StoreFuture<'_, Vec<RoomListing>> {
        let ids = self.cmd::<Vec<String>>(
            redis::cmd("ZRANGE")
                .arg(format!("{}all", self.shared.prefix))
                .arg(0)
                .arg(-1)
                .to_owned(),
        );
        Box::pin(async move { self.listings(ids.await?).await })
    }

    fn changed(&self, timeout: Duration) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        Box::pin(async move {
            let _ = tokio::time::timeout(timeout, self.shared.changed.notified()).await;
        })
    }

    fn is_shared(&self) -> bool {
        true
    }

    fn listen<'a>(&'a self, process_id: &'a str) -> Option<StoreFuture<'a, Subscription>> {
        let channel = format!("{}p:{process_id}", self.shared.prefix);
        Some(Box::pin(async move {
            self.shared
                .presence
                .subscribe(&channel)
                .await
                .map_err(|e| StoreError::Unavailable(e.to_string()))
        }))
    }

    fn send_to<'a>(&'a self, process_id: &'a str, message: &'a str) -> StoreFuture<'a, usize> {
        let channel = format!("{}p:{process_id}", self.shared.prefix);
        Box::pin(async move {
            self.shared
                .presence
                .publish(&channel, message)
                .await
                .map_err(|e| StoreError::Unavailable(e.to_string()))
        })
    }

    fn heartbeat<'a>(&'a self, process: &'a ProcessInfo, ttl: Duration) -> StoreFuture<'a, bool> {
        let known = self.run::<i64>(
            |s| &s.heartbeat,
            vec![
                process.process_id.clone(),
                millis(ttl).to_string(),
                process.public_address.clone().unwrap_or_default(),
                process.incarnation.clone(),
            ],
        );
        Box::pin(async move { Ok(known.await? == 1) })
    }

    fn sweep_processes(&self) -> StoreFuture<'_, Vec<String>> {
        self.run(|s| &s.sweep_processes, Vec::new())
    }

    fn processes(&self) -> StoreFuture<'_, Vec<ProcessLoad>> {
        let flat = self.run::<Vec<(String, usize)>>(|s| &s.processes, Vec::new());
        Box::pin(async move {
            let mut loads: Vec<ProcessLoad> = flat
                .await?
                .into_iter()
                .map(|(process_id, rooms)| ProcessLoad { process_id, rooms })
                .collect();
            loads.sort_by(|a, b| a.rooms.cmp(&b.rooms).then(a.process_id.cmp(&b.process_id)));
            Ok(loads)
        })
    }
}
