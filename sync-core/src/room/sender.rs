//! [`RoomCtx::with_state`]: the state view and a sender at once.

use bytes::Bytes;
use serde::Serialize;

use super::ctx::message_frame;
use super::{BroadcastOptions, Client, ClientId, Room, RoomCtx};
use crate::protocol::{self, MessageType};
use crate::state::StateAccess;

/// Sends queued while the state is borrowed ([`RoomCtx::with_state`]);
/// they go out, in order, when the closure returns. The same calls as on
/// [`RoomCtx`].
#[derive(Debug, Default)]
pub struct Sender {
    queued: Vec<(Option<ClientId>, Bytes, BroadcastOptions)>,
}

impl Sender {
    /// [`RoomCtx::send`].
    pub fn send<T: Serialize + ?Sized>(
        &mut self,
        client: &Client,
        ty: impl Into<MessageType>,
        message: &T,
    ) {
        if let Some(frame) = message_frame(&ty.into(), message) {
            self.queued
                .push((Some(client.id), frame, BroadcastOptions::default()));
        }
    }

    /// [`RoomCtx::error`].
    pub fn error(&mut self, client: &Client, code: u16, message: &str) {
        let frame = protocol::encode_error(code, message);
        self.queued
            .push((Some(client.id), frame, BroadcastOptions::default()));
    }

    /// [`RoomCtx::invalid_payload`].
    pub fn invalid_payload(&mut self, client: &Client, message: &str) {
        self.error(client, protocol::error_code::INVALID_PAYLOAD, message);
    }

    /// [`RoomCtx::broadcast`].
    pub fn broadcast<T: Serialize + ?Sized>(
        &mut self,
        ty: impl Into<MessageType>,
        message: &T,
        options: impl Into<BroadcastOptions>,
    ) {
        if let Some(frame) = message_frame(&ty.into(), message) {
            self.queued.push((None, frame, options.into()));
        }
    }
}

impl<R: Room> RoomCtx<R>
where
    R::State: StateAccess,
{
    /// Runs `f` with the state view and a [`Sender`] apart, so one handler
    /// reads and writes the state and sends messages without letting go of
    /// the view in between; what it sends goes out when `f` returns.
    ///
    /// # Panics
    ///
    /// When the room has no state: [`set_state`](Self::set_state) was
    /// never called and it did not start with one
    /// ([`Room::initial_state`]).
    ///
    /// # Examples
    ///
    /// ```
    /// use roomcast::schema::{ArraySchema, Encoder};
    /// use roomcast::{Options, Room, RoomCtx, Schema};
    ///
    /// #[derive(Schema, Default)]
    /// struct Chat {
    ///     lines: ArraySchema<String>,
    /// }
    ///
    /// #[derive(Default)]
    /// struct ChatRoom;
    ///
    /// #[roomcast::room]
    /// impl Room for ChatRoom {
    ///     type State = Encoder<Chat>;
    ///
    ///     async fn on_create(&mut self, ctx: &mut RoomCtx<Self>, _: &Options) -> roomcast::Result {
    ///         ctx.set_state(Encoder::new(Chat::default()));
    ///         ctx.on_message("say", |_, ctx, client, text: String| {
    ///             ctx.with_state(|mut chat, out| {
    ///                 chat.lines_mut().push(text.clone());
    ///                 out.broadcast("said", &(chat.lines.len(), &text), ());
    ///                 out.send(client, "ok", &());
    ///             });
    ///         });
    ///         Ok(())
    ///     }
    /// }
    /// ```
    pub fn with_state<T>(
        &mut self,
        f: impl FnOnce(<R::State as StateAccess>::Mut<'_>, &mut Sender) -> T,
    ) -> T {
        let mut sender = Sender::default();
        let out = f(self.state_mut(), &mut sender);
        for (client, frame, options) in sender.queued {
            match client {
                Some(id) => self.enqueue(id, frame),
                None => self.broadcast_frame(frame, options),
            }
        }
        out
    }
}
