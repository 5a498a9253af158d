//! A room with per-client views (`#[schema(view)]`, Colyseus's `@view()` +
//! `client.view`): every seat's hand, cards and purse are seen by its owner
//! only, until the owner reveals its seat to someone.

use std::collections::BTreeSet;

use roomcast::schema::{ArraySchema, Encoder, MapSchema, Schema, ViewTarget};
use roomcast::{Client, Options, Room, RoomCtx, ServerError};
use serde::de::IgnoredAny;
use serde_json::json;

/// What a seat keeps for its owner (a filtered child).
#[derive(Schema, Default, Debug, Clone, PartialEq)]
#[schema(crate = "roomcast::schema", decode)]
pub struct Purse {
    pub gold: u32,
}

/// A player at the table.
#[derive(Schema, Default, Debug, Clone)]
#[schema(crate = "roomcast::schema", decode)]
pub struct Seat {
    pub name: String,
    #[schema(view)]
    pub hand: u8,
    #[schema(view)]
    pub purse: Option<Purse>,
    /// An array in a view field: dealt with push, shift and inserts in the
    /// middle (which colyseus.js 0.16 clients get as CLEAR + re-ADD).
    #[schema(view)]
    pub cards: ArraySchema<u8>,
}

/// The synchronized state.
#[derive(Schema, Default, Debug)]
#[schema(crate = "roomcast::schema", decode)]
pub struct Table {
    pub seats: MapSchema<Seat>,
    pub round: u8,
}

/// Per client: the seats revealed to it (besides its own).
pub type Revealed = BTreeSet<String>;

/// The room.
#[derive(Default)]
pub struct CardsRoom;

impl CardsRoom {
    /// The table as `client` should see it (what its `room.state.toJSON()`
    /// must show): every name, the hand, cards and purse of its own seat and
    /// of the seats revealed to it.
    pub fn projection(table: &Table, me: &str, revealed: &Revealed) -> serde_json::Value {
        let seats: serde_json::Map<String, serde_json::Value> = table
            .seats
            .iter()
            .map(|(id, seat)| {
                let mut v = json!({ "name": seat.name });
                if id == me || revealed.contains(id) {
                    v["hand"] = json!(seat.hand);
                    v["cards"] = json!(seat.cards.iter().collect::<Vec<_>>());
                    if let Some(purse) = &seat.purse {
                        v["purse"] = json!({ "gold": purse.gold });
                    }
                }
                (id.to_owned(), v)
            })
            .collect();
        json!({ "seats": seats, "round": table.round })
    }

    /// Shows (`true`) or hides the seat of `owner` to the client with
    /// session id `to`, and records it in `to`'s revealed set.
    fn reveal(ctx: &mut RoomCtx<Self>, owner: &Client, to: &str, shown: bool) {
        let Some(other) = ctx.client(to) else { return };
        let Some(view) = ctx.view(&other) else { return };
        if let Some(revealed) = ctx.user_data_mut(&other) {
            if shown {
                revealed.insert(owner.session_id().to_owned());
            } else {
                revealed.remove(owner.session_id());
            }
        }
        let mut table = ctx.state_mut();
        let mut seats = table.seats_mut();
        if let Some(mut seat) = seats.get_mut(owner.session_id()) {
            if shown {
                seat.show_to(view);
            } else {
                seat.hide_from(view);
            }
        }
    }

    fn deal(table: &mut <Table as Schema>::Mut<'_>) {
        let round = table.round.wrapping_add(1);
        table.set_round(round);
        let mut seats = table.seats_mut();
        seats.for_each_mut(|_, mut seat| {
            let hand = seat.hand.wrapping_mul(7).wrapping_add(round) % 53;
            seat.set_hand(hand);
            if let Some(mut purse) = seat.purse_mut() {
                let gold = purse.gold + u32::from(round);
                purse.set_gold(gold);
            }
            let mut cards = seat.cards_mut();
            cards.push(hand);
            if round.is_multiple_of(3) {
                // Into the middle of what the client holds.
                let at = cards.len() / 2;
                cards.insert(at, round % 53);
            }
            while cards.len() > 4 {
                cards.shift();
            }
        });
    }
}

impl Room for CardsRoom {
    type State = Encoder<Table>;
    type UserData = Revealed;
    type Auth = ();

    async fn on_create(&mut self, ctx: &mut RoomCtx<Self>, _: &Options) -> Result<(), ServerError> {
        ctx.set_state(Encoder::new(Table::default()));
        // Shows the sender's seat to the client `to` (a session id).
        ctx.on_message("reveal", |_room, ctx, client, to: String| {
            Self::reveal(ctx, client, &to, true);
        });
        // Hides the sender's seat from `from` again.
        ctx.on_message("conceal", |_room, ctx, client, from: String| {
            Self::reveal(ctx, client, &from, false);
        });
        ctx.on_message("deal", |_room, ctx, _client, _: IgnoredAny| {
            Self::deal(&mut ctx.state_mut());
        });
        // The table as the sender should see it.
        ctx.on_message("snapshot", |_room, ctx, client, _: IgnoredAny| {
            let revealed = ctx.user_data(client).cloned().unwrap_or_default();
            let snapshot = Self::projection(ctx.state(), client.session_id(), &revealed);
            ctx.send(client, "snapshot", &snapshot);
        });
        Ok(())
    }

    async fn on_join(
        &mut self,
        ctx: &mut RoomCtx<Self>,
        client: &Client,
        options: &Options,
    ) -> Result<(), ServerError> {
        let name = options["name"].as_str().unwrap_or("anonymous").to_owned();
        let hand = (client.session_id().len() % 53) as u8;
        let view = ctx
            .create_view(client)
            .ok_or_else(|| ServerError::new(4500, "no view"))?;
        let mut table = ctx.state_mut();
        let mut seats = table.seats_mut();
        seats.insert(
            client.session_id(),
            Seat {
                name,
                hand,
                purse: Some(Purse { gold: 100 }),
                cards: [hand, hand / 2].into_iter().collect(),
            },
        );
        if let Some(mut seat) = seats.get_mut(client.session_id()) {
            seat.show_to(view);
        }
        Ok(())
    }

    async fn on_drop(&mut self, ctx: &mut RoomCtx<Self>, client: &Client, _code: u16) {
        let reconnection = ctx.allow_reconnection(client, 10);
        ctx.spawn(reconnection, |_room, _ctx, _outcome| {});
    }

    async fn on_leave(&mut self, ctx: &mut RoomCtx<Self>, client: &Client, _code: u16) {
        let me = client.session_id().to_owned();
        let others: Vec<Client> = ctx.clients().collect();
        for other in &others {
            if let Some(revealed) = ctx.user_data_mut(other) {
                revealed.remove(&me);
            }
        }
        ctx.state_mut().seats_mut().remove(&me);
    }
}
