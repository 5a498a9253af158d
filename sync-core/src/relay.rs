//! [`RelayRoom`]: a room that relays every message to the other clients
//! (Colyseus `RelayRoom`).

use std::time::Duration;

use roomcast_schema::{Encoder, MapSchema, Schema};

use crate::room::{BroadcastOptions, Client, Options, Room, RoomCtx};
use crate::ServerError;

/// The longest reconnection window a [`RelayRoom`] grants, in seconds (as
/// in Colyseus).
const MAX_RECONNECTION_SECONDS: f64 = 40.0;

/// A client of a [`RelayRoom`], as its clients see it in
/// `state.players`.
#[derive(Schema, Default, Debug)]
pub struct RelayPlayer {
    /// False while the client is away and may still reconnect.
    pub connected: bool,
    /// The `name` join option, if any.
    pub name: String,
    /// The client's session id.
    #[schema(rename = "sessionId")]
    pub session_id: String,
}

/// The state of a [`RelayRoom`]: its clients by session id.
#[derive(Schema, Default, Debug)]
pub struct RelayState {
    /// The clients by session id.
    pub players: MapSchema<RelayPlayer>,
}

/// A ready-made room that relays messages between its clients, as
/// Colyseus' `RelayRoom` does: any message a client sends goes to every
/// other client as `[senderSessionId, message]` under the same type; the
/// state lists the clients in `players` (`sessionId`, `name` from the join
/// options, `connected`).
///
/// Creation options: `maxClients`, `metadata`, and
/// `allowReconnectionTime` (seconds, at most 40): a client that drops
/// (without a consented leave) keeps its place for that long, shown with
/// `connected: false`, and comes back with the SDK's `reconnect`. A client
/// that leaves for good is removed from `players` (with or without a
/// reconnection window; the reference keeps players that leave a room
/// without one).
///
/// # Examples
///
/// ```
/// use roomcast::{RelayRoom, Server};
/// use serde_json::json;
///
/// let server = Server::builder()
///     .define_with_options(
///         "relay",
///         json!({ "maxClients": 4, "allowReconnectionTime": 20 }),
///         RelayRoom::default,
///     )
///     .build();
/// # let _ = server;
/// ```
#[derive(Debug, Default)]
pub struct RelayRoom {
    reconnection: Option<Duration>,
}

#[crate::room]
impl Room for RelayRoom {
    type State = Encoder<RelayState>;

    async fn on_create(
        &mut self,
        ctx: &mut RoomCtx<Self>,
        options: &Options,
    ) -> Result<(), ServerError> {
        ctx.set_state(Encoder::new(RelayState::default()));
        if let Some(max) = options["maxClients"].as_u64().filter(|&max| max > 0) {
            ctx.set_max_clients(usize::try_from(max).ok());
        }
        self.reconnection = options["allowReconnectionTime"]
            .as_f64()
            .filter(|s| s.is_finite() && *s > 0.0)
            .map(|s| Duration::from_secs_f64(s.min(MAX_RECONNECTION_SECONDS)));
        if !options["metadata"].is_null() {
            ctx.set_metadata(options["metadata"].clone());
        }
        ctx.on_any_message(|_, ctx, client, ty, message| {
            let options = BroadcastOptions::default().except(client);
            ctx.broadcast(ty.clone(), &(client.session_id(), message), options);
        });
        Ok(())
    }

    async fn on_join(
        &mut self,
        ctx: &mut RoomCtx<Self>,
        client: &Client,
        options: &Options,
    ) -> Result<(), ServerError> {
        let player = RelayPlayer {
            connected: true,
            name: options["name"].as_str().unwrap_or_default().to_owned(),
            session_id: client.session_id().to_owned(),
        };
        ctx.state_mut()
            .players_mut()
            .insert(client.session_id(), player);
        Ok(())
    }

    async fn on_drop(&mut self, ctx: &mut RoomCtx<Self>, client: &Client, _code: u16) {
        let Some(window) = self.reconnection else {
            return;
        };
        if let Some(mut player) = ctx.state_mut().players_mut().get_mut(client.session_id()) {
            player.set_connected(false);
        }
        ctx.allow_reconnection(client, window);
    }

    async fn on_reconnect(&mut self, ctx: &mut RoomCtx<Self>, client: &Client) {
        if let Some(mut player) = ctx.state_mut().players_mut().get_mut(client.session_id()) {
            player.set_connected(true);
        }
    }

    async fn on_leave(&mut self, ctx: &mut RoomCtx<Self>, client: &Client, _code: u16) {
        ctx.state_mut().players_mut().remove(client.session_id());
    }
}
