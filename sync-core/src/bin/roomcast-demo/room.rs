//! The demo room: players moving on a map, and a chat.

use roomcast::prelude::*;

/// Map size.
pub(crate) const WIDTH: f32 = 800.0;
/// Map size.
pub(crate) const HEIGHT: f32 = 600.0;
/// Chat lines kept in the state.
pub(crate) const CHAT_LINES: usize = 10;

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

/// The demo room.
pub(crate) struct DemoRoom;

#[roomcast::room]
impl Room for DemoRoom {
    type State = Encoder<World>;

    async fn on_create(&mut self, ctx: &mut RoomCtx<Self>, options: &Options) {
        let mut world = ctx.state_mut();
        world.set_width(WIDTH as u16);
        world.set_height(HEIGHT as u16);
        ctx.set_max_clients(options["maxClients"].as_u64().unwrap_or(50) as usize);
        ctx.on_message("move", |_, ctx, client, m: Value| {
            // Refuse what is not a finite number, NaN and infinities too
            // (msgpack carries them, and `clamp` lets NaN through), or
            // every client would get them; the client stays, as in Node.
            let (Some(x), Some(y)) = (m["x"].as_finite(), m["y"].as_finite()) else {
                return ctx.invalid_payload(client, "move: x and y must be finite numbers");
            };
            if let Some(mut player) = ctx.state_mut().players_mut().get_mut(client.session_id()) {
                player.set_x((x as f32).clamp(0.0, WIDTH));
                player.set_y((y as f32).clamp(0.0, HEIGHT));
            }
        });
        ctx.on_message("chat", |_, ctx, client, text: String| {
            let text: String = text.chars().take(200).collect();
            let name = ctx.auth(client).clone();
            ctx.state_mut().chat_mut().push(format!("{name}: {text}"));
            if ctx.state().chat.len() > CHAT_LINES {
                ctx.state_mut().chat_mut().shift();
            }
            let message = json!({ "from": client.session_id(), "name": name, "text": text });
            ctx.broadcast("chat", &message, ());
        });
        // The state serializes as a client's `room.state.toJSON()`.
        ctx.on_message("snapshot", |_, ctx, client, _: Value| {
            ctx.send(client, "snapshot", &json!(ctx.state()));
        });
    }

    async fn on_auth(&mut self, client: &Client, options: &Options) -> Result<String> {
        match options["name"].as_str().unwrap_or_default().trim() {
            "" => Ok(format!("player-{}", &client.session_id()[..4])),
            name if name.chars().count() > 24 => Err(ServerError::new(4400, "name too long")),
            name => Ok(name.to_owned()),
        }
    }

    async fn on_join(&mut self, ctx: &mut RoomCtx<Self>, client: &Client) {
        let id = client.session_id();
        let name = ctx.auth(client).clone();
        // A spot derived from the session id: random enough, reproducible.
        let seed = id
            .bytes()
            .fold(7u32, |h, b| h.wrapping_mul(31).wrapping_add(u32::from(b)));
        let (x, y) = ((seed % 780 + 10) as f32, (seed / 780 % 580 + 10) as f32);
        let player = Player { name, x, y };
        ctx.state_mut().players_mut().insert(id, player);
    }

    async fn on_drop(&mut self, ctx: &mut RoomCtx<Self>, client: &Client) {
        // Keep the player for 10 s; on_leave removes it if it does not return.
        ctx.allow_reconnection(client, 10);
    }

    async fn on_leave(&mut self, ctx: &mut RoomCtx<Self>, client: &Client) {
        ctx.state_mut().players_mut().remove(client.session_id());
    }
}
