//! The four Colyseus collections, each with its tracked view.

pub(crate) mod array;
pub(crate) mod indexed;
mod json;
pub(crate) mod map;
pub(crate) mod map_key;
pub(crate) mod set;

pub use array::{ArrayMut, ArraySchema};
pub use indexed::EntryHandle;
pub use map::{MapMut, MapSchema};
pub use set::{CollectionMut, CollectionSchema, SetMut, SetSchema};
