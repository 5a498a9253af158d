//! Room listings and the queries matchmaking runs on them.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use rand::Rng;
use serde::Serialize;

/// What matchmaking knows about a room (Colyseus `RoomListing`).
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct RoomListing {
    /// The room's id.
    pub room_id: String,
    /// The name the room was defined under.
    pub name: String,
    /// Clients plus reserved seats.
    pub clients: usize,
    /// The client cap, if any.
    pub max_clients: Option<usize>,
    /// Locked by hand or full.
    pub locked: bool,
    /// Hidden from matchmaking and listings.
    pub private: bool,
    /// Free-form listing metadata.
    pub metadata: serde_json::Value,
}

impl RoomListing {
    /// Whether `joinOrCreate`/`join` and listings may offer the room.
    #[must_use]
    pub fn is_available(&self) -> bool {
        !self.locked && !self.private
    }
}

/// The listings of every live room of a server.
#[derive(Debug, Default)]
pub(crate) struct Listings {
    rooms: Mutex<HashMap<String, RoomListing>>,
}

impl Listings {
    fn with<T>(&self, f: impl FnOnce(&mut HashMap<String, RoomListing>) -> T) -> T {
        f(&mut self.rooms.lock().unwrap_or_else(PoisonError::into_inner))
    }

    pub(crate) fn update(&self, listing: RoomListing) {
        self.with(|rooms| rooms.insert(listing.room_id.clone(), listing));
    }

    pub(crate) fn remove(&self, room_id: &str) {
        self.with(|rooms| rooms.remove(room_id));
    }

    pub(crate) fn get(&self, room_id: &str) -> Option<RoomListing> {
        self.with(|rooms| rooms.get(room_id).cloned())
    }

    /// Available rooms named `name`, the fullest first (so rooms fill up
    /// before new ones are used), then by id for a stable order.
    pub(crate) fn available(&self, name: &str) -> Vec<RoomListing> {
        let mut rooms: Vec<RoomListing> = self.with(|rooms| {
            rooms
                .values()
                .filter(|r| r.name == name && r.is_available())
                .cloned()
                .collect()
        });
        rooms.sort_by(|a, b| b.clients.cmp(&a.clients).then(a.room_id.cmp(&b.room_id)));
        rooms
    }

    pub(crate) fn all(&self) -> Vec<RoomListing> {
        self.with(|rooms| rooms.values().cloned().collect())
    }
}

/// A random id of `len` characters from `[A-Za-z0-9_-]` (like nanoid).
pub(crate) fn generate_id(len: usize) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-";
    let mut rng = rand::rng();
    (0..len)
        .map(|_| char::from(ALPHABET[rng.random_range(0..64)]))
        .collect()
}
