//! [`LocalStore`]: the listings of one process, in memory.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

use super::{
    compare, generate_id, index_keys, Claim, ClaimInError, Claimed, CreateLock, ListingStore,
    RoomListing, RoomQuery, RoomUpdate, SeatRequest, StoreError, StoreFuture, CREATE_LOCK_TTL,
};
use crate::room::Options;

/// The in-process [`ListingStore`], the default of a server. Like the
/// Redis store, it keeps the rooms with a free seat per room name and
/// subset of filter values, so a claim reads only rooms that match it and
/// have a seat; listings read the rooms of one name.
#[derive(Debug, Default)]
pub struct LocalStore {
    inner: Mutex<Inner>,
    changed: Notify,
}

#[derive(Debug, Default)]
struct Inner {
    rooms: HashMap<String, Entry>,
    /// Room ids per name, by creation sequence.
    by_name: HashMap<String, BTreeMap<u64, String>>,
    /// Rooms with a free seat per lock key (see `index_keys`), by creation
    /// sequence.
    free: HashMap<String, BTreeMap<u64, String>>,
    /// Creation locks: key → (token, expiry).
    locks: HashMap<String, (String, Instant)>,
    /// Pending seats by expiry: (expiry, room, session).
    expiries: BTreeSet<(Instant, String, String)>,
    next_seq: u64,
}

#[derive(Debug)]
struct Entry {
    /// `clients` and `locked` here are the holder's (held seats, locked by
    /// hand); [`Entry::listing`] adds the store's part.
    listing: RoomListing,
    seq: u64,
    /// The `free` keys the room belongs to.
    index: Vec<String>,
    held: usize,
    applied: u64,
    taken: u64,
    pending: HashMap<String, (Options, Instant)>,
}

impl Entry {
    fn occupancy(&self) -> usize {
        let unapplied =
            usize::try_from(self.taken.saturating_sub(self.applied)).unwrap_or(usize::MAX);
        self.held
            .saturating_add(self.pending.len())
            .saturating_add(unapplied)
    }

    fn full(&self) -> bool {
        self.listing
            .max_clients
            .is_some_and(|max| self.occupancy() >= max)
    }

    /// The listing as matchmaking shows it.
    fn listing(&self) -> RoomListing {
        let mut listing = self.listing.clone();
        listing.clients = self.occupancy();
        listing.locked = listing.locked || self.full();
        listing
    }

    fn has_free_seat(&self) -> bool {
        self.listing.is_available() && !self.full()
    }
}

impl Inner {
    /// Puts a room in or out of the free sets; whether it has a free seat.
    fn refresh(&mut self, room_id: &str) -> bool {
        let Some(entry) = self.rooms.get(room_id) else {
            return false;
        };
        let free = entry.has_free_seat();
        for key in &entry.index {
            if free {
                self.free
                    .entry(key.clone())
                    .or_default()
                    .insert(entry.seq, room_id.to_owned());
            } else if let Some(set) = self.free.get_mut(key) {
                set.remove(&entry.seq);
                if set.is_empty() {
                    self.free.remove(key);
                }
            }
        }
        free
    }

    /// Drops the pending seats whose time ran out; whether any did.
    fn expire(&mut self, now: Instant) -> bool {
        let mut freed = false;
        while let Some(first) = self.expiries.first() {
            if first.0 > now {
                break;
            }
            let (expires, room_id, session) = self.expiries.pop_first().expect("checked");
            let Some(entry) = self.rooms.get_mut(&room_id) else {
                continue;
            };
            if entry
                .pending
                .get(&session)
                .is_some_and(|(_, e)| *e == expires)
            {
                entry.pending.remove(&session);
                freed |= self.refresh(&room_id);
            }
        }
        freed
    }

    fn add_pending(&mut self, room_id: &str, seat: &SeatRequest, now: Instant) -> Claimed {
        let expires = now + seat.ttl;
        let entry = self.rooms.get_mut(room_id).expect("a listed room");
        if let Some((_, old)) = entry
            .pending
            .insert(seat.session_id.clone(), (seat.options.clone(), expires))
        {
            self.expiries
                .remove(&(old, room_id.to_owned(), seat.session_id.clone()));
        }
        self.expiries
            .insert((expires, room_id.to_owned(), seat.session_id.clone()));
        self.refresh(room_id);
        Claimed {
            listing: self.rooms[room_id].listing(),
        }
    }

    fn unindex(&mut self, entry: &Entry) {
        let id = &entry.listing.room_id;
        for key in &entry.index {
            if let Some(set) = self.free.get_mut(key) {
                if set.get(&entry.seq) == Some(id) {
                    set.remove(&entry.seq);
                }
                if set.is_empty() {
                    self.free.remove(key);
                }
            }
        }
        if let Some(ids) = self.by_name.get_mut(&entry.listing.name) {
            ids.remove(&entry.seq);
            if ids.is_empty() {
                self.by_name.remove(&entry.listing.name);
            }
        }
    }
}

impl LocalStore {
    fn with<T>(&self, f: impl FnOnce(&mut Inner) -> T) -> T {
        f(&mut self.inner.lock().unwrap_or_else(PoisonError::into_inner))
    }

    fn now<'a, T: Send + 'a>(
        &self,
        f: impl FnOnce(&mut Inner) -> Result<T, StoreError>,
    ) -> StoreFuture<'a, T> {
        let result = self.with(f);
        Box::pin(std::future::ready(result))
    }
}

impl ListingStore for LocalStore {
    fn claim<'a>(
        &'a self,
        query: &'a RoomQuery<'a>,
        seat: &'a SeatRequest,
        may_create: bool,
    ) -> StoreFuture<'a, Claim> {
        let now = Instant::now();
        let key = query.lock_key();
        let (claim, freed) = self.with(|inner| {
            let freed = inner.expire(now);
            let candidates = inner
                .free
                .get(&key)
                .into_iter()
                .flat_map(|set| set.values());
            let best = if query.sort.is_empty() {
                candidates.into_iter().next().cloned()
            } else {
                candidates
                    .filter_map(|id| inner.rooms.get(id))
                    .map(Entry::listing)
                    .reduce(|best, l| {
                        if compare(&l, &best, query.sort).is_lt() {
                            l
                        } else {
                            best
                        }
                    })
                    .map(|l| l.room_id)
            };
            if let Some(room_id) = best {
                return (Claim::Seat(inner.add_pending(&room_id, seat, now)), freed);
            }
            if !may_create {
                return (Claim::NoRoom, freed);
            }
            if inner
                .locks
                .get(&key)
                .is_some_and(|(_, expires)| *expires > now)
            {
                return (Claim::Wait, freed);
            }
            let token = generate_id(12);
            inner
                .locks
                .insert(key.clone(), (token.clone(), now + CREATE_LOCK_TTL));
            (Claim::Create(CreateLock { key, token }), freed)
        });
        if freed {
            self.changed.notify_waiters();
        }
        Box::pin(std::future::ready(Ok(claim)))
    }

    fn claim_in<'a>(
        &'a self,
        room_id: &'a str,
        seat: &'a SeatRequest,
    ) -> StoreFuture<'a, Result<Claimed, ClaimInError>> {
        let now = Instant::now();
        self.now(|inner| {
            inner.expire(now);
            let Some(entry) = inner.rooms.get(room_id) else {
                return Ok(Err(ClaimInError::NotFound));
            };
            if (entry.listing.locked && !seat.past_lock) || entry.full() {
                return Ok(Err(ClaimInError::Locked));
            }
            Ok(Ok(inner.add_pending(room_id, seat, now)))
        })
    }

    fn release<'a>(&'a self, lock: &'a CreateLock) -> StoreFuture<'a, ()> {
        self.with(|inner| {
            if inner
                .locks
                .get(&lock.key)
                .is_some_and(|(token, _)| *token == lock.token)
            {
                inner.locks.remove(&lock.key);
            }
        });
        self.changed.notify_waiters();
        Box::pin(std::future::ready(Ok(())))
    }

    fn register<'a>(
        &'a self,
        listing: &'a RoomListing,
        lock: Option<&'a CreateLock>,
    ) -> StoreFuture<'a, ()> {
        let now = Instant::now();
        let result = self.with(|inner| {
            if let Some(lock) = lock {
                let held = inner
                    .locks
                    .get(&lock.key)
                    .is_some_and(|(token, expires)| *token == lock.token && *expires > now);
                if !held {
                    return Err(StoreError::LockLost);
                }
                inner.locks.remove(&lock.key);
            }
            let seq = inner.next_seq;
            inner.next_seq += 1;
            let entry = Entry {
                listing: listing.clone(),
                seq,
                index: index_keys(&listing.name, &listing.filters),
                held: listing.clients,
                applied: 0,
                taken: 0,
                pending: HashMap::new(),
            };
            if let Some(old) = inner.rooms.insert(listing.room_id.clone(), entry) {
                inner.unindex(&old);
            }
            inner
                .by_name
                .entry(listing.name.clone())
                .or_default()
                .insert(seq, listing.room_id.clone());
            inner.refresh(&listing.room_id);
            Ok(())
        });
        self.changed.notify_waiters();
        Box::pin(std::future::ready(result))
    }

    fn take_seat<'a>(
        &'a self,
        room_id: &'a str,
        session_id: &'a str,
    ) -> StoreFuture<'a, Option<Options>> {
        let now = Instant::now();
        self.now(|inner| {
            let Some(entry) = inner.rooms.get_mut(room_id) else {
                return Ok(None);
            };
            let Some((options, expires)) = entry.pending.remove(session_id) else {
                return Ok(None);
            };
            inner
                .expiries
                .remove(&(expires, room_id.to_owned(), session_id.to_owned()));
            if expires <= now {
                inner.refresh(room_id);
                return Ok(None);
            }
            // Pending → taken: the room's occupancy does not change.
            entry.taken += 1;
            Ok(Some(options))
        })
    }

    fn sync<'a>(&'a self, room_id: &'a str, update: &'a RoomUpdate) -> StoreFuture<'a, ()> {
        let freed = self.with(|inner| {
            let Some(entry) = inner.rooms.get_mut(room_id) else {
                return false;
            };
            let was_free = entry.has_free_seat();
            entry.held = update.held;
            entry.applied = update.applied;
            entry.listing.max_clients = update.max_clients;
            entry.listing.locked = update.locked;
            entry.listing.private = update.private;
            entry.listing.unlisted = update.unlisted;
            entry.listing.metadata.clone_from(&update.metadata);
            inner.refresh(room_id) && !was_free
        });
        if freed {
            self.changed.notify_waiters();
        }
        Box::pin(std::future::ready(Ok(())))
    }

    fn remove<'a>(&'a self, room_id: &'a str) -> StoreFuture<'a, ()> {
        self.now(|inner| {
            if let Some(entry) = inner.rooms.remove(room_id) {
                inner.unindex(&entry);
            }
            Ok(())
        })
    }

    fn get<'a>(&'a self, room_id: &'a str) -> StoreFuture<'a, Option<RoomListing>> {
        let now = Instant::now();
        self.now(|inner| {
            inner.expire(now);
            Ok(inner.rooms.get(room_id).map(Entry::listing))
        })
    }

    fn query<'a>(&'a self, query: &'a RoomQuery<'a>) -> StoreFuture<'a, Vec<RoomListing>> {
        let now = Instant::now();
        self.now(|inner| {
            inner.expire(now);
            let ids = inner
                .by_name
                .get(query.name)
                .into_iter()
                .flat_map(BTreeMap::values);
            let mut listings: Vec<RoomListing> = ids
                .filter_map(|id| inner.rooms.get(id))
                .filter(|e| e.listing.is_listed() && query.matches(&e.listing))
                .map(Entry::listing)
                .collect();
            listings.sort_by(|a, b| compare(a, b, query.sort));
            Ok(listings)
        })
    }

    fn all(&self) -> StoreFuture<'_, Vec<RoomListing>> {
        let now = Instant::now();
        self.now(|inner| {
            inner.expire(now);
            let mut rooms: Vec<&Entry> = inner.rooms.values().collect();
            rooms.sort_by_key(|e| e.seq);
            Ok(rooms.into_iter().map(Entry::listing).collect())
        })
    }

    fn changed(&self, timeout: Duration) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        Box::pin(async move {
            let _ = tokio::time::timeout(timeout, self.changed.notified()).await;
        })
    }
}

#[cfg(test)]
mod tests {
    use futures_util::FutureExt;
    use serde_json::json;

    use super::super::Order;
    use super::*;

    fn now<T>(f: impl Future<Output = Result<T, StoreError>>) -> T {
        f.now_or_never().expect("ready").expect("ok")
    }

    fn listing(id: &str, mode: &str, held: usize, max: usize) -> RoomListing {
        RoomListing {
            room_id: id.into(),
            name: "battle".into(),
            process_id: "p".into(),
            public_address: None,
            clients: held,
            max_clients: Some(max),
            locked: false,
            private: false,
            unlisted: false,
            metadata: serde_json::Value::Null,
            created_at: 0,
            filters: json!({ "mode": mode }).as_object().unwrap().clone(),
        }
    }

    fn seat(session: &str, ttl: Duration) -> SeatRequest {
        SeatRequest::new(session, json!({ "who": session }), ttl)
    }

    fn filters(mode: Option<&str>) -> serde_json::Map<String, serde_json::Value> {
        mode.map(|m| json!({ "mode": m }).as_object().unwrap().clone())
            .unwrap_or_default()
    }

    fn claimed_room(claim: Claim) -> String {
        match claim {
            Claim::Seat(c) => c.listing.room_id,
            other => panic!("no seat: {other:?}"),
        }
    }

    #[test]
    fn claims_respect_filters_and_max_clients_counting_pending_seats() {
        let store = LocalStore::default();
        now(store.register(&listing("a", "x", 1, 2), None));
        now(store.register(&listing("b", "y", 0, 2), None));
        let (fx, fy) = (filters(Some("x")), filters(Some("y")));
        let qx = RoomQuery {
            name: "battle",
            filters: &fx,
            sort: &[],
        };
        let qy = RoomQuery {
            filters: &fy,
            ..qx.clone()
        };
        let ttl = Duration::from_secs(60);
        assert_eq!(
            claimed_room(now(store.claim(&qx, &seat("s1", ttl), true))),
            "a"
        );
        // "a" holds one client and one pending seat: full.
        let listing_a = now(store.get("a")).unwrap();
        assert_eq!((listing_a.clients, listing_a.locked), (2, true));
        let lock = match now(store.claim(&qx, &seat("s2", ttl), true)) {
            Claim::Create(lock) => lock,
            other => panic!("{other:?}"),
        };
        assert!(matches!(
            now(store.claim(&qx, &seat("s3", ttl), true)),
            Claim::Wait
        ));
        assert!(matches!(
            now(store.claim(&qx, &seat("s3", ttl), false)),
            Claim::NoRoom
        ));
        // Another filter value has its own rooms and its own lock.
        assert_eq!(
            claimed_room(now(store.claim(&qy, &seat("s4", ttl), true))),
            "b"
        );
        now(store.register(&listing("c", "x", 1, 2), Some(&lock)));
        assert_eq!(
            store
                .register(&listing("d", "x", 1, 2), Some(&lock))
                .now_or_never()
                .unwrap(),
            Err(StoreError::LockLost),
            "a lock registers one room"
        );
        assert_eq!(
            claimed_room(now(store.claim(&qx, &seat("s5", ttl), true))),
            "c"
        );
        // A request without the filter field matches any room of the name.
        let none = filters(None);
        let any = RoomQuery {
            filters: &none,
            ..qx.clone()
        };
        assert_eq!(
            claimed_room(now(store.claim(&any, &seat("s6", ttl), true))),
            "b"
        );
    }

    #[test]
    fn a_lost_lock_refuses_registration() {
        let store = LocalStore::default();
        let f = filters(Some("x"));
        let q = RoomQuery {
            name: "battle",
            filters: &f,
            sort: &[],
        };
        let Claim::Create(lock) = now(store.claim(&q, &seat("s", Duration::from_secs(1)), true))
        else {
            panic!("lock")
        };
        now(store.release(&lock));
        assert_eq!(
            store
                .register(&listing("a", "x", 1, 2), Some(&lock))
                .now_or_never()
                .unwrap(),
            Err(StoreError::LockLost)
        );
        assert!(now(store.get("a")).is_none());
    }

    #[test]
    fn seats_are_taken_once_and_expire_untaken() {
        let store = LocalStore::default();
        now(store.register(&listing("a", "x", 0, 2), None));
        let f = filters(Some("x"));
        let q = RoomQuery {
            name: "battle",
            filters: &f,
            sort: &[],
        };
        now(store.claim(&q, &seat("kept", Duration::from_secs(60)), true));
        now(store.claim(&q, &seat("late", Duration::from_millis(10)), true));
        assert_eq!(now(store.get("a")).unwrap().clients, 2);
        assert_eq!(
            now(store.take_seat("a", "kept")),
            Some(json!({ "who": "kept" }))
        );
        assert_eq!(now(store.take_seat("a", "kept")), None, "taken once");
        // Taken but not reported by the room yet: still counted.
        assert_eq!(now(store.get("a")).unwrap().clients, 2);
        std::thread::sleep(Duration::from_millis(20));
        assert_eq!(now(store.take_seat("a", "late")), None, "expired");
        assert_eq!(now(store.all())[0].clients, 1);
        // The room reports the seat it took.
        let update = |held| RoomUpdate {
            held,
            applied: 1,
            max_clients: Some(2),
            locked: false,
            private: false,
            unlisted: false,
            metadata: json!({ "map": "docks" }),
        };
        now(store.sync("a", &update(1)));
        let a = now(store.get("a")).unwrap();
        assert_eq!((a.clients, &a.metadata), (1, &json!({ "map": "docks" })));
        now(store.sync("a", &update(0)));
        assert_eq!(now(store.get("a")).unwrap().clients, 0);
        now(store.remove("a"));
        assert!(now(store.all()).is_empty());
    }

    #[test]
    fn sort_picks_the_best_room_and_ties_keep_creation_order() {
        let store = LocalStore::default();
        now(store.register(&listing("old", "x", 1, 10), None));
        now(store.register(&listing("full", "x", 5, 10), None));
        now(store.register(&listing("new", "x", 5, 10), None));
        let f = filters(None);
        let ttl = Duration::from_secs(60);
        let oldest = RoomQuery {
            name: "battle",
            filters: &f,
            sort: &[],
        };
        assert_eq!(
            claimed_room(now(store.claim(&oldest, &seat("1", ttl), true))),
            "old"
        );
        let sort = [("clients".to_owned(), Order::Desc)];
        let fullest = RoomQuery {
            sort: &sort,
            ..oldest.clone()
        };
        assert_eq!(
            claimed_room(now(store.claim(&fullest, &seat("2", ttl), true))),
            "full"
        );
        // "full" now has 6: still the fullest.
        assert_eq!(
            claimed_room(now(store.claim(&fullest, &seat("3", ttl), true))),
            "full"
        );
        let listed: Vec<_> = now(store.query(&fullest))
            .into_iter()
            .map(|l| (l.room_id, l.clients))
            .collect();
        assert_eq!(
            listed,
            [("full".into(), 7), ("new".into(), 5), ("old".into(), 2)]
        );
        let by_id = [("roomId".to_owned(), Order::Asc)];
        let ids = RoomQuery {
            sort: &by_id,
            ..oldest
        };
        assert_eq!(
            claimed_room(now(store.claim(&ids, &seat("4", ttl), true))),
            "full"
        );
    }

    #[test]
    fn join_by_id_takes_private_rooms_but_not_locked_or_full_ones() {
        let store = LocalStore::default();
        let mut private = listing("p", "x", 0, 1);
        private.private = true;
        now(store.register(&private, None));
        let ttl = Duration::from_secs(60);
        assert!(now(store.claim_in("p", &seat("1", ttl))).is_ok());
        assert_eq!(
            now(store.claim_in("p", &seat("2", ttl))).unwrap_err(),
            ClaimInError::Locked
        );
        assert_eq!(
            now(store.claim_in("nope", &seat("3", ttl))).unwrap_err(),
            ClaimInError::NotFound
        );
        // Private rooms are neither offered nor listed.
        let f = filters(None);
        let q = RoomQuery {
            name: "battle",
            filters: &f,
            sort: &[],
        };
        assert!(now(store.query(&q)).is_empty());
        assert!(!matches!(
            now(store.claim(&q, &seat("4", ttl), true)),
            Claim::Seat(_)
        ));
    }
}
