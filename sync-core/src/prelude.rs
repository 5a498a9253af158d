//! What a room file needs, in one import: `use roomcast::prelude::*;`.
//!
//! The room trait and its context, the types of hook signatures, the
//! state's derive and collections, the payload type of lenient handlers
//! ([`Value`], indexed like a JS object), the protocol's error and close
//! codes, and `serde_json`'s [`json!`] for messages and metadata. Names
//! a room file is unlikely to define itself; everything else stays at
//! `roomcast::…`.
//!
//! # Examples
//!
//! ```
//! use roomcast::prelude::*;
//!
//! #[derive(Schema, Default)]
//! struct Board {
//!     cells: ArraySchema<u8>,
//! }
//!
//! #[derive(Default)]
//! struct Game;
//!
//! #[roomcast::room]
//! impl Room for Game {
//!     type State = Encoder<Board>;
//!
//!     async fn on_create(&mut self, ctx: &mut RoomCtx<Self>, options: &Options) {
//!         ctx.set_state(Encoder::new(Board::default()));
//!         ctx.set_max_clients(options["seats"].as_u64().unwrap_or(2) as usize);
//!         ctx.on_message("mark", |_, ctx, client, m: Value| {
//!             let Some(cell) = m["cell"].as_finite() else {
//!                 return ctx.error(client, error_code::INVALID_PAYLOAD, "mark: no cell");
//!             };
//!             ctx.broadcast("marked", &json!({ "cell": cell }), ());
//!         });
//!     }
//! }
//! ```

pub use crate::msgpack::Value;
pub use crate::protocol::{close_code, error_code};
pub use crate::schema::{ArraySchema, Encoder, MapSchema};
pub use crate::{
    AuthRequest, BroadcastOptions, Client, Options, Result, Room, RoomCtx, Schema, ServerError,
    TimerId,
};
pub use serde_json::json;
