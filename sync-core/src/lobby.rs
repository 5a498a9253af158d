//! [`LobbyRoom`]: the list of rooms, kept up to date for its clients
//! (Colyseus `LobbyRoom`), across every process of a cluster.

use std::collections::HashMap;

use serde::Deserialize;
use serde_json::Value;

use crate::matchmaker::RoomListing;
#[cfg(feature = "server")]
use crate::presence::Presence;
use crate::presence::Subscription;
use crate::room::{Client, Options, Room, RoomCtx};
use crate::state::NoState;
use crate::ServerError;

/// The presence channel on which rooms of definitions with
/// [`realtime_listing`](crate::ServerBuilder::realtime_listing) announce
/// their listing changes: `<roomId>,0` (changed) or `<roomId>,1` (gone), as
/// in Colyseus.
pub const LOBBY_CHANNEL: &str = "$lobby";

/// Tells lobbies that a room's listing changed or (`removed`) is gone.
#[cfg(feature = "server")]
pub(crate) async fn announce(presence: &dyn Presence, room_id: &str, removed: bool) {
    let message = format!("{room_id},{}", if removed { 1 } else { 0 });
    if let Err(e) = presence.publish(LOBBY_CHANNEL, &message).await {
        tracing::debug!("lobby announcement lost: {e}");
    }
}

/// What a lobby client may ask for: rooms of one name, with some metadata
/// values.
#[derive(Clone, Debug, Default, Deserialize)]
struct Filter {
    name: Option<String>,
    #[serde(default)]
    metadata: serde_json::Map<String, Value>,
}

impl Filter {
    fn allows(&self, room: &RoomListing) -> bool {
        self.name.as_ref().is_none_or(|name| *name == room.name)
            && self
                .metadata
                .iter()
                .all(|(k, v)| room.metadata.get(k) == Some(v))
    }
}

/// A ready-made room listing the rooms of the server (of the cluster, with
/// a shared store) for its clients, as Colyseus' `LobbyRoom` does: on join
/// a `"rooms"` message with every listed room (or those of the client's
/// `filter` option: `{ name, metadata }`), then `"+"` `[roomId, listing]`
/// when a room appears or changes and `"-"` `roomId` when it goes; a
/// `"filter"` message changes the client's filter. Rooms are announced by
/// definitions with
/// [`realtime_listing`](crate::ServerBuilder::realtime_listing). The lobby
/// itself is unlisted.
///
/// # Examples
///
/// ```
/// use roomcast::{LobbyRoom, Server};
/// # use roomcast::{NoState, Options, Room, RoomCtx, ServerError};
/// # #[derive(Default)]
/// # struct Battle;
/// # impl Room for Battle {
/// #     type State = NoState;
/// #     type UserData = ();
/// #     type Auth = ();
/// #     async fn on_create(&mut self, _: &mut RoomCtx<Self>, _: &Options) -> Result<(), ServerError> { Ok(()) }
/// # }
///
/// let server = Server::builder()
///     .define("lobby", LobbyRoom::default)
///     .define("battle", Battle::default)
///     .realtime_listing()
///     .build();
/// # let _ = server;
/// ```
#[derive(Debug, Default)]
pub struct LobbyRoom {
    rooms: Vec<RoomListing>,
    filters: HashMap<String, Filter>,
}

impl LobbyRoom {
    fn visible<'a>(&'a self, filter: &'a Filter) -> impl Iterator<Item = &'a RoomListing> {
        self.rooms.iter().filter(move |r| filter.allows(r))
    }

    /// A room changed (`Some`) or went away (`None`).
    fn update(&mut self, ctx: &mut RoomCtx<Self>, room_id: &str, listing: Option<RoomListing>) {
        let listing = listing.filter(RoomListing::is_listed);
        let index = self.rooms.iter().position(|r| r.room_id == room_id);
        let before = index.map(|i| match &listing {
            Some(now) => std::mem::replace(&mut self.rooms[i], now.clone()),
            None => self.rooms.remove(i),
        });
        if index.is_none() {
            if let Some(now) = &listing {
                self.rooms.push(now.clone());
            }
        }
        let clients: Vec<Client> = ctx.clients().collect();
        for client in clients {
            let Some(filter) = self.filters.get(client.session_id()) else {
                continue;
            };
            let had = before.as_ref().is_some_and(|r| filter.allows(r));
            match &listing {
                Some(now) if filter.allows(now) => {
                    ctx.send(&client, "+", &(room_id, now));
                }
                _ if had => ctx.send(&client, "-", room_id),
                _ => {}
            }
        }
    }
}

/// Reads the next lobby announcement, then hands the subscription back.
fn listen(ctx: &mut RoomCtx<LobbyRoom>, mut subscription: Subscription) {
    ctx.spawn(
        async move {
            let message = subscription.recv().await;
            (subscription, message)
        },
        |_room, ctx, (subscription, message)| {
            let Some(message) = message else {
                return;
            };
            if let Some((room_id, _)) = message.split_once(',') {
                let (store, room_id) = (ctx.store().clone(), room_id.to_owned());
                // The listing as it is now: announcements only say which
                // room to read, so late or repeated ones do no harm.
                ctx.spawn(
                    async move {
                        let listing = store.get(&room_id).await;
                        (room_id, listing)
                    },
                    |room: &mut LobbyRoom, ctx, (room_id, listing)| match listing {
                        Ok(listing) => room.update(ctx, &room_id, listing),
                        Err(e) => tracing::warn!("lobby: cannot read room {room_id}: {e}"),
                    },
                );
            }
            listen(ctx, subscription);
        },
    );
}

#[crate::room]
impl Room for LobbyRoom {
    type State = NoState;

    async fn on_create(&mut self, ctx: &mut RoomCtx<Self>, _: &Options) -> Result<(), ServerError> {
        ctx.set_unlisted(true);
        let subscription = ctx
            .presence()
            .subscribe(LOBBY_CHANNEL)
            .await
            .map_err(|e| ServerError::application(e.to_string()))?;
        self.rooms = ctx
            .store()
            .all()
            .await
            .map_err(|e| ServerError::application(e.to_string()))?
            .into_iter()
            .filter(RoomListing::is_listed)
            .collect();
        listen(ctx, subscription);
        ctx.on_message("filter", |room, ctx, client, filter: Option<Filter>| {
            let filter = filter.unwrap_or_default();
            let rooms: Vec<&RoomListing> = room.visible(&filter).collect();
            ctx.send(client, "rooms", &rooms);
            room.filters.insert(client.session_id().to_owned(), filter);
        });
        Ok(())
    }

    async fn on_join(
        &mut self,
        ctx: &mut RoomCtx<Self>,
        client: &Client,
        options: &Options,
    ) -> Result<(), ServerError> {
        let filter: Filter = serde_json::from_value(options["filter"].clone()).unwrap_or_default();
        let rooms: Vec<&RoomListing> = self.visible(&filter).collect();
        ctx.send(client, "rooms", &rooms);
        self.filters.insert(client.session_id().to_owned(), filter);
        Ok(())
    }

    async fn on_leave(&mut self, _: &mut RoomCtx<Self>, client: &Client, _: u16) {
        self.filters.remove(client.session_id());
    }
}
