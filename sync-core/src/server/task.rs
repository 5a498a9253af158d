//! One tokio task per room: it owns the room, feeds its core with commands
//! and the clock, and moves its transmits to the connections.

use std::collections::HashMap;
use std::future::poll_fn;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use super::{Command, Inner};
use crate::protocol::close_code;
use crate::room::driver::Driver;
use crate::room::{ConnId, Room, TransmitKind};
use crate::transport::{Outgoing, SharedLink};

/// Commands handled between two flushes, so a busy room still lets the
/// runtime schedule other tasks.
const MAX_COMMANDS_PER_FLUSH: usize = 64;

enum Step<R: Room> {
    Command(Option<Command>),
    Timeout,
    Spawned(Option<crate::room::Continuation<R>>),
}

pub(super) async fn run<R: Room>(
    mut driver: Driver<R>,
    mut commands: mpsc::Receiver<Command>,
    inner: Arc<Inner>,
) {
    let room_id = driver.core.ctx().room_id().to_owned();
    let mut conns: HashMap<ConnId, SharedLink> = HashMap::new();
    // One timer, moved to each new deadline.
    let timer = tokio::time::sleep(Duration::from_secs(3600));
    tokio::pin!(timer);
    loop {
        flush(&mut driver, &mut conns, &inner).await;
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
        let step = tokio::select! {
            command = commands.recv() => Step::Command(command),
            () = &mut timer, if deadline.is_some() => Step::Timeout,
            then = poll_fn(|cx| driver.poll_spawned(cx)), if has_spawned => Step::Spawned(then),
        };
        match step {
            Step::Command(None) => break,
            Step::Command(Some(command)) => {
                handle(&mut driver, &mut conns, command);
                driver.run_events().await;
                // Take a few more already queued before flushing; the hooks
                // of each run before the next is handled, so a message that
                // locks the room is seen by a seat request behind it.
                for _ in 0..MAX_COMMANDS_PER_FLUSH {
                    let Ok(command) = commands.try_recv() else {
                        break;
                    };
                    handle(&mut driver, &mut conns, command);
                    driver.run_events().await;
                }
            }
            Step::Timeout => driver.core.handle_timeout(Instant::now()),
            Step::Spawned(Some(then)) => driver.run_continuation(then).await,
            Step::Spawned(None) => {}
        }
        driver.run_events().await;
    }
    flush(&mut driver, &mut conns, &inner).await;
    inner.unregister(&room_id);
}

fn handle<R: Room>(
    driver: &mut Driver<R>,
    conns: &mut HashMap<ConnId, SharedLink>,
    command: Command,
) {
    let now = Instant::now();
    let core = &mut driver.core;
    match command {
        Command::ReserveSeat { options, reply } => {
            let _ = reply.send(core.handle_reserve_seat(now, options));
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
            core.handle_connect(now, conn, request);
        }
        Command::Frame { conn, frame } => core.handle_frame(now, conn, &frame),
        Command::Closed { conn, code } => {
            conns.remove(&conn);
            core.handle_disconnect(now, conn, code);
        }
        Command::Shutdown => core.ctx_mut().disconnect(Some(close_code::SERVER_SHUTDOWN)),
    }
}

/// Moves transmits to their connections and the listing to the server.
async fn flush<R: Room>(
    driver: &mut Driver<R>,
    conns: &mut HashMap<ConnId, SharedLink>,
    inner: &Inner,
) {
    loop {
        let mut slow = Vec::new();
        while let Some(transmit) = driver.core.poll_transmit() {
            let Some(tx) = conns.get(&transmit.conn) else {
                continue;
            };
            let (outgoing, last) = match transmit.kind {
                TransmitKind::Frame(frame) => (Outgoing::Frame(frame), false),
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
                inner.listings.update(listing);
            }
        }
        if slow.is_empty() {
            break;
        }
        for conn in slow {
            tracing::warn!("dropping a client that does not read its frames");
            conns.remove(&conn);
            driver.core.handle_disconnect(Instant::now(), conn, None);
        }
        driver.run_events().await;
    }
}
