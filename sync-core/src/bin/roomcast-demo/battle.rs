//! Two rooms for matchmaking: `battle`, a match that only players of one
//! `mode` share (defined with `filter_by(["mode"])`), and `filler`, an
//! empty room that stays listed (for listing-size tests and benches).

use roomcast::schema::{Encoder, MapSchema};
use roomcast::{Client, NoState, Options, Room, RoomCtx, Schema, ServerError};

/// A player of a match.
#[derive(Schema, Default, Debug)]
pub(crate) struct Player {
    /// The `name` join option, or the session id.
    pub(crate) name: String,
}

/// The state of a match.
#[derive(Schema, Default, Debug)]
pub(crate) struct Match {
    /// Players by session id.
    pub(crate) players: MapSchema<Player>,
}

/// A match of `maxClients` players (option; default 10).
#[derive(Default)]
pub(crate) struct BattleRoom;

#[roomcast::room]
impl Room for BattleRoom {
    type State = Encoder<Match>;

    async fn on_create(
        &mut self,
        ctx: &mut RoomCtx<Self>,
        options: &Options,
    ) -> Result<(), ServerError> {
        ctx.set_state(Encoder::new(Match::default()));
        ctx.set_max_clients(Some(options["maxClients"].as_u64().unwrap_or(10) as usize));
        Ok(())
    }

    async fn on_join(
        &mut self,
        ctx: &mut RoomCtx<Self>,
        client: &Client,
        options: &Options,
    ) -> Result<(), ServerError> {
        let name = options["name"].as_str().unwrap_or(client.session_id());
        ctx.state_mut().players_mut().insert(
            client.session_id(),
            Player {
                name: name.to_owned(),
            },
        );
        Ok(())
    }

    async fn on_leave(&mut self, ctx: &mut RoomCtx<Self>, client: &Client, _code: u16) {
        ctx.state_mut().players_mut().remove(client.session_id());
    }
}

/// An empty room that stays when its last client leaves (or never came).
#[derive(Default)]
pub(crate) struct FillerRoom;

#[roomcast::room]
impl Room for FillerRoom {
    type State = NoState;

    async fn on_create(&mut self, ctx: &mut RoomCtx<Self>, _: &Options) -> Result<(), ServerError> {
        ctx.set_auto_dispose(false);
        ctx.set_max_clients(Some(1000));
        // Nothing to synchronize: no patch timer.
        ctx.set_patch_rate(None);
        Ok(())
    }
}
