//! The chat room of the Colyseus examples: every message goes to everyone,
//! with who sent it, and joins and leaves are announced. Its Node twin is
//! `tests/node/rooms/chat.mjs`.

use roomcast::prelude::*;

pub(crate) struct ChatRoom;

#[roomcast::room]
impl Room for ChatRoom {
    async fn on_create(&mut self, ctx: &mut RoomCtx<Self>) {
        ctx.set_max_clients(4);
        ctx.on_message("message", |_, ctx, client, text: String| {
            ctx.broadcast("messages", &format!("({}) {text}", client.session_id()), ());
        });
    }

    async fn on_join(&mut self, ctx: &mut RoomCtx<Self>, client: &Client) {
        ctx.broadcast("messages", &format!("{} joined.", client.session_id()), ());
    }

    async fn on_leave(&mut self, ctx: &mut RoomCtx<Self>, client: &Client) {
        ctx.broadcast("messages", &format!("{} left.", client.session_id()), ());
    }
}
