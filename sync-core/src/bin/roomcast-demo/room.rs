//! The demo room: players moving on a map, and a chat.

use roomcast::protocol::error_code::INVALID_PAYLOAD;
use roomcast::schema::{ArraySchema, Encoder, MapSchema};
use roomcast::{AuthRequest, Client, Options, Result, Room, RoomCtx, Schema, ServerError};
use serde::Deserialize;
use serde_json::json;

/// Map size.
pub(crate) const WIDTH: f32 = 800.0;
/// Map size.
pub(crate) const HEIGHT: f32 = 600.0;
/// Chat lines kept in the state.
pub(crate) const CHAT_LINES: usize = 10;
/// The error of a `move` to NaN or an infinity.
const NOT_FINITE: &str = "move: x and y must be finite numbers";

/// A player on the map.
#[derive(Schema, Default, Debug)]
pub(crate) struct Player {
    /// Display name.
    pub(crate) name: String,
    /// Position.
    pub(crate) x: f32,
    /// Position.
    pub(crate) y: f32,
}

/// The synchronized state.
#[derive(Schema, Default, Debug)]
pub(crate) struct World {
    /// Players by session id.
    pub(crate) players: MapSchema<Player>,
    /// The last chat lines, `"name: text"`.
    pub(crate) chat: ArraySchema<String>,
    /// Map size.
    pub(crate) width: u16,
    /// Map size.
    pub(crate) height: u16,
}

/// A `move` message: where the player wants to be.
#[derive(Deserialize)]
struct Move {
    x: f32,
    y: f32,
}

/// The demo room.
#[derive(Default)]
pub(crate) struct DemoRoom;

#[roomcast::room]
impl Room for DemoRoom {
    type State = Encoder<World>;
    type Auth = String;

    async fn on_create(&mut self, ctx: &mut RoomCtx<Self>, options: &Options) -> Result {
        ctx.set_state(Encoder::new(World {
            width: WIDTH as u16,
            height: HEIGHT as u16,
            ..World::default()
        }));
        ctx.set_max_clients(Some(options["maxClients"].as_u64().unwrap_or(50) as usize));
        ctx.on_message("move", |_, ctx, client, m: Move| {
            // msgpack carries NaN and infinities, and `clamp` lets NaN
            // through: refuse them, or every client would get them.
            if !(m.x.is_finite() && m.y.is_finite()) {
                return ctx.error(client, INVALID_PAYLOAD, NOT_FINITE);
            }
            let mut world = ctx.state_mut();
            if let Some(mut player) = world.players_mut().get_mut(client.session_id()) {
                player.set_x(m.x.clamp(0.0, WIDTH));
                player.set_y(m.y.clamp(0.0, HEIGHT));
            }
        });
        ctx.on_message("chat", |_, ctx, client, text: String| {
            let text: String = text.chars().take(200).collect();
            let name = ctx.auth(client).cloned().unwrap_or_default();
            let mut world = ctx.state_mut();
            let mut chat = world.chat_mut();
            chat.push(format!("{name}: {text}"));
            if chat.len() > CHAT_LINES {
                chat.shift();
            }
            let message = json!({ "from": client.session_id(), "name": name, "text": text });
            ctx.broadcast("chat", &message, ());
        });
        ctx.on_message("snapshot", |_, ctx, client, _: serde::de::IgnoredAny| {
            // The state serializes as a client's `room.state.toJSON()`.
            let snapshot = serde_json::to_value(ctx.state()).unwrap_or_default();
            ctx.send(client, "snapshot", &snapshot);
        });
        Ok(())
    }

    async fn on_auth(
        &mut self,
        _: &mut RoomCtx<Self>,
        client: &Client,
        options: &Options,
        _: &AuthRequest,
    ) -> Result<String> {
        let name = options["name"].as_str().unwrap_or_default().trim();
        if name.chars().count() > 24 {
            return Err(ServerError::new(4400, "name too long"));
        }
        Ok(if name.is_empty() {
            format!("player-{}", &client.session_id()[..4])
        } else {
            name.to_owned()
        })
    }

    async fn on_join(&mut self, ctx: &mut RoomCtx<Self>, client: &Client, _: &Options) -> Result {
        let name = ctx.auth(client).cloned().unwrap_or_default();
        // A spot derived from the session id: random enough, reproducible.
        let seed = client
            .session_id()
            .bytes()
            .fold(7u32, |h, b| h.wrapping_mul(31).wrapping_add(u32::from(b)));
        let (x, y) = ((seed % 780 + 10) as f32, (seed / 780 % 580 + 10) as f32);
        let mut world = ctx.state_mut();
        world
            .players_mut()
            .insert(client.session_id(), Player { name, x, y });
        Ok(())
    }

    async fn on_drop(&mut self, ctx: &mut RoomCtx<Self>, client: &Client, _code: u16) {
        // Keep the player for 10 s; on_leave removes it if it does not return.
        ctx.allow_reconnection(client, 10);
    }

    async fn on_leave(&mut self, ctx: &mut RoomCtx<Self>, client: &Client, _code: u16) {
        ctx.state_mut().players_mut().remove(client.session_id());
    }
}
