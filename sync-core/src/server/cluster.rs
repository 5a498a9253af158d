//! A process's part in a cluster: its heartbeat, the sweep of dead
//! processes, and the messages other processes and the store send it.

use std::sync::{Arc, Weak};

use tokio::sync::mpsc::error::TrySendError;

use super::{Command, Inner};
use crate::matchmaker::{ProcessInfo, HEARTBEAT_PERIOD, PROCESS_TTL};
use crate::presence::Subscription;

/// Runs while the server lives, if its store is shared: renews the
/// process's registration every [`HEARTBEAT_PERIOD`] (lists its rooms again
/// when the store lost it), unlists the rooms of dead processes, and hands
/// seat notices to rooms.
pub(super) async fn run(inner: Weak<Inner>) {
    let mut messages: Option<Subscription> = None;
    let mut beat = tokio::time::interval(HEARTBEAT_PERIOD);
    beat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut healthy = true;
    loop {
        let message = async {
            match messages.as_mut() {
                Some(subscription) => subscription.recv().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = beat.tick() => {
                let Some(inner) = inner.upgrade() else { return };
                if messages.is_none() {
                    match inner.store.listen(&inner.config.process_id) {
                        // One process: nothing to do, ever.
                        None => return,
                        Some(subscribing) => match subscribing.await {
                            Ok(subscription) => messages = Some(subscription),
                            Err(e) => tracing::warn!("cannot listen for seat notices: {e}"),
                        },
                    }
                }
                healthy = heartbeat(&inner, healthy).await;
            }
            message = message => {
                let Some(inner) = inner.upgrade() else { return };
                match message {
                    Some(message) => handle(&inner, &message),
                    // The presence went away: listen again.
                    None => messages = None,
                }
            }
        }
    }
}

/// One heartbeat and sweep; returns whether the store answered.
async fn heartbeat(inner: &Arc<Inner>, was_healthy: bool) -> bool {
    let process = ProcessInfo {
        process_id: inner.config.process_id.clone(),
        public_address: inner.config.public_address.clone(),
    };
    match inner.store.heartbeat(&process, PROCESS_TTL).await {
        Ok(true) => {}
        Ok(false) => {
            let rooms = inner.room_senders();
            if !rooms.is_empty() {
                tracing::warn!(
                    "the listing store had lost this process: listing its {} rooms again",
                    rooms.len()
                );
            }
            for room in rooms {
                let _ = room.try_send(Command::Relist);
            }
        }
        Err(e) => {
            if was_healthy {
                tracing::error!(
                    "listing store unreachable, matchmaking fails until it is back: {e}"
                );
            }
            return false;
        }
    }
    if !was_healthy {
        tracing::info!("listing store reachable again");
    }
    match inner.store.sweep_processes().await {
        Ok(dead) if !dead.is_empty() => {
            tracing::warn!("processes {dead:?} stopped: their rooms were unlisted");
        }
        Ok(_) => {}
        Err(e) => tracing::debug!("sweep of dead processes failed: {e}"),
    }
    true
}

/// A message on the process's channel.
fn handle(inner: &Inner, message: &str) {
    let mut parts = message.split('\n');
    match (parts.next(), parts.next(), parts.next()) {
        (Some("seat"), Some(room_id), Some(session_id)) => {
            let Some(room) = inner.room(room_id) else {
                return;
            };
            let command = Command::TakeSeat {
                session_id: session_id.to_owned(),
                reply: None,
            };
            if let Err(TrySendError::Full(_)) = room.try_send(command) {
                // The client's connection will take the seat.
                tracing::debug!(room = room_id, "room busy: seat notice dropped");
            }
        }
        _ => tracing::debug!("unknown cluster message: {message:?}"),
    }
}
