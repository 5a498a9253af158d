//! The chat room of the Colyseus examples: every message goes to everyone,
//! with who sent it, and joins and leaves are announced. Its Node twin is
//! `tests/node/rooms/chat.mjs`.

use roomcast::{Client, Options, Result, Room, RoomCtx};

#[derive(Default)]
pub(crate) struct ChatRoom;

#[roomcast::room]
impl Room for ChatRoom {
    async fn on_create(&mut self, ctx: &mut RoomCtx<Self>, _: &Options) -> Result {
        ctx.set_max_clients(Some(4));
        ctx.on_message("message", |_, ctx, client, text: String| {
            ctx.broadcast("messages", &format!("({}) {text}", client.session_id()), ());
        });
        Ok(())
    }

    async fn on_join(&mut self, ctx: &mut RoomCtx<Self>, client: &Client, _: &Options) -> Result {
        ctx.broadcast("messages", &format!("{} joined.", client.session_id()), ());
        Ok(())
    }

    async fn on_leave(&mut self, ctx: &mut RoomCtx<Self>, client: &Client, _: u16) {
        ctx.broadcast("messages", &format!("{} left.", client.session_id()), ());
    }
}
