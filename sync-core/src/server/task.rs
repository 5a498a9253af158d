//! One tokio task per room: it owns the room, feeds its core with commands
//! and the clock, and moves its transmits to the connections.

use std::collections::HashMap;
use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::stream::FuturesUnordered;
use futures_util::StreamExt;
use tokio::sync::{mpsc, oneshot, watch};

use super::{Command, Inner, SharedLink};
use crate::matchmaker::{ListingStore, RoomListing, RoomUpdate, StoreError};
use crate::presence::Presence;
use crate::protocol::close_code;
use crate::room::driver::Driver;
use crate::room::{ConnId, ConnectRequest, Options, Room, SeatError, TransmitKind};
use crate::transport::Outgoing;

/// Commands handled between two flushes, so a busy room still lets the
/// runtime schedule other tasks.
const MAX_COMMANDS_PER_FLUSH: usize = 64;

enum Step<R: Room> {
    Command(Option<Command>),
    Timeout,
    Spawned(Option<crate::room::Continuation<R>>),
    Taken(Option<Taken>),
}

/// A seat taken from the listing store (or not), with the listing epoch
/// the take started in.
type Taken = (String, u64, Result<Option<Options>, StoreError>);

/// What waits for a seat being taken from the store: matchmaking's
/// replies, and connections that arrived first.
#[derive(Default)]
struct SeatWaiters {
    replies: Vec<oneshot::Sender<Result<(), SeatError>>>,
    parked: Vec<(ConnId, ConnectRequest)>,
}

/// The room task's side of the listing store: seats being taken, and the
/// listing writer.
struct StoreLink {
    store: Arc<dyn ListingStore>,
    room_id: Arc<str>,
    takes: FuturesUnordered<Pin<Box<dyn Future<Output = Taken> + Send>>>,
    waiting: HashMap<String, SeatWaiters>,
    /// Seats taken from the store that the room's count includes.
    applied: u64,
    /// Bumped each time the room is listed again (its process was lost
    /// by the store, which then counts seats afresh).
    epoch: u64,
    listing: watch::Sender<Option<(RoomUpdate, u64)>>,
}

impl StoreLink {
    /// Takes the seat `session_id` from the store unless that is under way.
    fn take(&mut self, session_id: String) -> &mut SeatWaiters {
        if !self.waiting.contains_key(&session_id) {
            let (store, room_id, session, epoch) = (
                self.store.clone(),
                self.room_id.clone(),
                session_id.clone(),
                self.epoch,
            );
            self.takes.push(Box::pin(async move {
                let result = store.take_seat(&room_id, &session).await;
                (session, epoch, result)
            }));
        }
        self.waiting.entry(session_id).or_default()
    }
}

pub(super) async fn run<R: Room>(
    mut driver: Driver<R>,
    mut commands: mpsc::Receiver<Command>,
    inner: Arc<Inner>,
    registered: RoomListing,
    realtime: bool,
) {
    let room_id = driver.core.ctx().room_id().to_owned();
    let mut conns: HashMap<ConnId, SharedLink> = HashMap::new();
    let (listing, listing_rx) = watch::channel(None);
    let lobby = realtime.then(|| inner.presence.clone());
    let writer = tokio::spawn(write_listing(
        inner.store.clone(),
        registered,
        listing_rx,
        lobby.clone(),
    ));
    let mut seats = StoreLink {
        store: inner.store.clone(),
        room_id: room_id.as_str().into(),
        takes: FuturesUnordered::new(),
        waiting: HashMap::new(),
        applied: 0,
        epoch: 0,
        listing,
    };
    // One timer, moved to each new deadline.
    let timer = tokio::time::sleep(Duration::from_secs(3600));
    tokio::pin!(timer);
    loop {
        flush(&mut driver, &mut conns, &mut seats).await;
        if driver.core.is_disposed() {
            break;
        }
        let deadline = driver.core.poll_timeout();
        if let Some(at) = deadline {
            let at = tokio::time::Instant::from_std(at);
            if timer.deadline() != at {
                timer.as_mut().reset(at);
            }
        }
        let has_spawned = driver.has_spawned();
        let taking = !seats.takes.is_empty();
        let step = tokio::select! {
            command = commands.recv() => Step::Command(command),
            () = &mut timer, if deadline.is_some() => Step::Timeout,
            then = poll_fn(|cx| driver.poll_spawned(cx)), if has_spawned => Step::Spawned(then),
            taken = seats.takes.next(), if taking => Step::Taken(taken),
        };
        match step {
            Step::Command(None) => break,
            Step::Command(Some(command)) => {
                handle(&mut driver, &mut conns, &mut seats, command);
                driver.run_events().await;
                // Take a few more already queued before flushing; the hooks
                // of each run before the next is handled, so a message that
                // locks the room is seen by a seat request behind it.
                for _ in 0..MAX_COMMANDS_PER_FLUSH {
                    let Ok(command) = commands.try_recv() else {
                        break;
                    };
                    handle(&mut driver, &mut conns, &mut seats, command);
                    driver.run_events().await;
                }
            }
            Step::Timeout => {
                let started = Instant::now();
                let patches = driver.metrics.local.patches.load(Ordering::Relaxed);
                // One span per tick (simulation, timers, patch), inside the
                // room's span (see `Definition::create`).
                let tick = tracing::debug_span!(
                    "tick",
                    room = driver.core.ctx().room_name(),
                    room_id = %room_id,
                );
                tick.in_scope(|| driver.core.handle_timeout(started));
                tracing::Instrument::instrument(driver.run_events(), tick).await;
                if driver.metrics.local.patches.load(Ordering::Relaxed) != patches {
                    // The patch's frames go to the sockets now, to time
                    // the whole broadcast.
                    flush(&mut driver, &mut conns, &mut seats).await;
                    driver.metrics.patch_broadcast(started);
                }
            }
            Step::Spawned(Some(then)) => driver.run_continuation(then).await,
            Step::Taken(Some((session_id, epoch, result))) => {
                seat_taken(&mut driver, &mut seats, &session_id, epoch, result);
            }
            Step::Spawned(None) | Step::Taken(None) => {}
        }
        driver.run_events().await;
    }
    flush(&mut driver, &mut conns, &mut seats).await;
    tracing::debug!(room = %room_id, "room disposed");
    drop(seats);
    // The last listing write lands before the room is unlisted.
    let _ = writer.await;
    inner.unregister(&room_id).await;
    if let Some(presence) = lobby {
        crate::lobby::announce(&*presence, &room_id, true).await;
    }
}

/// A seat taken from the store reaches the room; the connections that
/// waited for it go on.
fn seat_taken<R: Room>(
    driver: &mut Driver<R>,
    seats: &mut StoreLink,
    session_id: &str,
    epoch: u64,
    result: Result<Option<Options>, StoreError>,
) {
    let now = Instant::now();
    let waiters = seats.waiting.remove(session_id).unwrap_or_default();
    let outcome = match result {
        Ok(Some(options)) => {
            // Counted whether or not the room keeps it: the store's count
            // of taken seats moved either way. A take from before the room
            // was listed again may have been counted before the store
            // started afresh: leaving it out can only overcount.
            if epoch == seats.epoch {
                seats.applied += 1;
            }
            driver.core.handle_seat_taken(now, session_id, options)
        }
        Ok(None) => Err(SeatError::InvalidToken),
        Err(e) => {
            tracing::warn!(room = %seats.room_id, "could not take a seat from the store: {e}");
            Err(SeatError::Disposing)
        }
    };
    for reply in waiters.replies {
        let _ = reply.send(outcome);
    }
    // Without a seat, the core refuses them (ERROR 524).
    for (conn, request) in waiters.parked {
        driver.core.handle_connect(now, conn, request);
    }
}

fn handle<R: Room>(
    driver: &mut Driver<R>,
    conns: &mut HashMap<ConnId, SharedLink>,
    seats: &mut StoreLink,
    command: Command,
) {
    let now = Instant::now();
    let core = &mut driver.core;
    match command {
        Command::TakeSeat { session_id, reply } => {
            if core.has_session(&session_id) {
                if let Some(reply) = reply {
                    let _ = reply.send(Ok(()));
                }
            } else {
                let waiters = seats.take(session_id);
                waiters.replies.extend(reply);
            }
        }
        Command::Reconnect { token, reply } => {
            let _ = reply.send(core.handle_reconnect_request(now, &token));
        }
        Command::Connect {
            conn,
            request,
            outgoing,
        } => {
            conns.insert(conn, outgoing);
            if core.has_session(&request.session_id) {
                core.handle_connect(now, conn, request);
            } else {
                // A seat matchmaking counted but the room has not taken
                // yet (told later, or held by this process for another).
                let waiters = seats.take(request.session_id.clone());
                waiters.parked.push((conn, request));
            }
        }
        Command::Frame { conn, frame } => {
            driver.metrics.received(frame.len());
            core.handle_frame(now, conn, &frame);
        }
        Command::Oversized { conn, len } => core.handle_oversized_frame(now, conn, len),
        Command::Closed { conn, code } => {
            conns.remove(&conn);
            for waiters in seats.waiting.values_mut() {
                waiters.parked.retain(|(parked, _)| *parked != conn);
            }
            core.handle_disconnect(now, conn, code);
        }
        Command::Call { name, args, reply } => {
            let _ = reply.send(driver.call(&name, args));
        }
        Command::Monitor(request) => super::monitor::handle(driver, request),
        Command::Disconnect => driver.core.ctx_mut().disconnect(None),
        Command::Relist => {
            seats.epoch += 1;
            seats.applied = 0;
            // The next flush sends the listing, registered anew.
            core.ctx_mut().listing_changed = true;
        }
        Command::Shutdown => core.ctx_mut().disconnect(Some(close_code::SERVER_SHUTDOWN)),
    }
}

/// Writes a room's listing to the store: the latest report only, one at
/// a time, so the room never waits for the store. A report of a new epoch
/// registers the room again (with `registered`'s fixed fields).
async fn write_listing(
    store: Arc<dyn ListingStore>,
    registered: RoomListing,
    mut updates: watch::Receiver<Option<(RoomUpdate, u64)>>,
    lobby: Option<Arc<dyn Presence>>,
) {
    let room_id = registered.room_id.clone();
    let mut epoch = 0;
    while updates.changed().await.is_ok() {
        let Some((update, wanted)) = updates.borrow_and_update().clone() else {
            continue;
        };
        loop {
            let written = if wanted == epoch {
                store.sync(&room_id, &update).await
            } else {
                let mut listing = registered.clone();
                listing.clients = update.held;
                listing.max_clients = update.max_clients;
                listing.locked = update.locked;
                listing.private = update.private;
                listing.unlisted = update.unlisted;
                listing.metadata.clone_from(&update.metadata);
                let written = store.register(&listing, None).await;
                if written.is_ok() {
                    epoch = wanted;
                }
                written
            };
            let Err(e) = written else {
                if let Some(presence) = &lobby {
                    crate::lobby::announce(&**presence, &room_id, false).await;
                }
                break;
            };
            tracing::warn!(room = %room_id, "could not update the room's listing: {e}");
            tokio::time::sleep(Duration::from_secs(1)).await;
            if updates.has_changed().unwrap_or(true) {
                break;
            }
        }
    }
}

/// Moves transmits to their connections and the listing to the store.
async fn flush<R: Room>(
    driver: &mut Driver<R>,
    conns: &mut HashMap<ConnId, SharedLink>,
    seats: &mut StoreLink,
) {
    loop {
        let mut slow = Vec::new();
        while let Some(transmit) = driver.core.poll_transmit() {
            let Some(tx) = conns.get(&transmit.conn) else {
                continue;
            };
            let (outgoing, last) = match transmit.kind {
                TransmitKind::Frame(frame) => {
                    driver.metrics.sent(frame.len());
                    (Outgoing::Frame(frame), false)
                }
                TransmitKind::Close(code) => (Outgoing::Close(code), true),
            };
            // A client that cannot keep up is dropped rather than
            // buffered without bound.
            if tx.send(outgoing).is_err() {
                slow.push(transmit.conn);
            }
            if last {
                conns.remove(&transmit.conn);
            }
        }
        if let Some(listing) = driver.core.poll_listing() {
            if !driver.core.is_disposed() {
                let ctx = driver.core.ctx();
                let update = RoomUpdate {
                    held: listing.clients,
                    applied: seats.applied,
                    max_clients: listing.max_clients,
                    locked: ctx.locked_explicit,
                    private: listing.private,
                    unlisted: listing.unlisted,
                    metadata: listing.metadata,
                };
                let update = (update, seats.epoch);
                seats.listing.send_if_modified(|last| {
                    let changed = last.as_ref() != Some(&update);
                    *last = Some(update);
                    changed
                });
            }
        }
        driver.metrics.publish();
        if slow.is_empty() {
            break;
        }
        for conn in slow {
            tracing::warn!("dropping a client that does not read its frames");
            driver.metrics.dropped_slow();
            conns.remove(&conn);
            driver.core.handle_disconnect(Instant::now(), conn, None);
        }
        driver.run_events().await;
    }
}
