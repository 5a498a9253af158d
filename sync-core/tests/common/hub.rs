//! A room that uses the matchmaker from inside (Colyseus' `matchMaker`
//! in a room): creates rooms, reserves seats and queries listings for its
//! clients.

use roomcast::{NoState, Options, Room, RoomCtx, ServerError};
use serde_json::json;

/// Answers "seat" (a seat in a new room of the given name, made with
/// `create_room` + `reserve_seat_for`), "join" (a seat through
/// `join_or_create`) and "count" (how many rooms of a name `query` finds).
#[derive(Default)]
pub struct HubRoom;

impl Room for HubRoom {
    type State = NoState;
    type UserData = ();
    type Auth = ();

    async fn on_create(&mut self, ctx: &mut RoomCtx<Self>, _: &Options) -> Result<(), ServerError> {
        ctx.on_message("seat", |_, ctx, client, name: String| {
            let (mm, client) = (ctx.matchmaker(), client.clone());
            let seat = async move {
                let room = mm.create_room(&name, json!({})).await?;
                mm.reserve_seat_for(&room, json!({ "name": "from hub" }))
                    .await
            };
            ctx.spawn(seat, move |_, ctx, seat| match seat {
                Ok(seat) => ctx.send(&client, "seat", &seat),
                Err(e) => ctx.error(&client, e.code, &e.message),
            });
        });
        ctx.on_message("join", |_, ctx, client, name: String| {
            let (seat, client) = (
                ctx.matchmaker().join_or_create(&name, json!({})),
                client.clone(),
            );
            ctx.spawn(seat, move |_, ctx, seat| match seat {
                Ok(seat) => ctx.send(&client, "seat", &seat),
                Err(e) => ctx.error(&client, e.code, &e.message),
            });
        });
        ctx.on_message("count", |_, ctx, client, name: String| {
            let (rooms, client) = (
                ctx.matchmaker().query(json!({ "name": name })),
                client.clone(),
            );
            ctx.spawn(rooms, move |_, ctx, rooms| {
                ctx.send(&client, "count", &rooms.map_or(-1, |r| r.len() as i64));
            });
        });
        Ok(())
    }
}
