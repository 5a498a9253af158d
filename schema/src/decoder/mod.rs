//! Applying Colyseus state bytes to a local state: the client side of the
//! wire format (spec `schema-wire.md`).
//!
//! * [`Decoder<T>`]: decodes into a `#[derive(Schema)]` type `T`.
//! * [`DynamicDecoder`]: no Rust types needed; built from Reflection bytes
//!   ([`decode_reflection`]) or a [`TypeRegistry`](crate::types::TypeRegistry),
//!   it follows any room into a dynamic value tree ([`NodeRef`], [`Value`],
//!   JSON). Change callbacks: [`callbacks`].
//!
//! Both decoders check a whole message before applying it: a message is
//! applied entirely or not at all, and malformed input is an error naming
//! the byte offset (see [`DecodeError`](crate::wire::DecodeError)).

mod array_items;
pub mod callbacks;
mod dynamic;
mod explain;
mod ordered_map;
mod parse;
mod reference_tracker;
mod reflection;
mod typed;
mod value;

pub use callbacks::{At, CallbackError, CallbackHandle, Cx, Key};
pub use dynamic::{DynamicDecoder, NodeKind, NodeRef, ValueRef};
pub use reference_tracker::RefId;
pub use reflection::{decode_reflection, ReflectionDialect, MAX_INHERITANCE_DEPTH, MAX_TYPES};
pub use typed::Decoder;
#[doc(hidden)]
pub use typed::{
    decode_set, DecodeField, DecodeNode, DecodeState, DecodeStruct, Displaced, FieldInput, Planned,
};
pub use value::Value;

/// Deepest nesting of structures that [`DynamicDecoder::to_json`] expands
/// (deeper references print as `{"$ref": refId}`).
pub const MAX_DEPTH: usize = 64;
