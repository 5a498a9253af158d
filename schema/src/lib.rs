#![doc = include_str!("../README.md")]
// (In-crate tests derive `Schema`, whose code names this crate by its name.)
#[cfg(all(test, feature = "derive"))]
extern crate self as roomcast_schema;
mod collections;
pub mod decoder;
pub mod dynamic;
mod encoder;
mod macros;
mod moved;
pub mod quantize;
mod reflection;
mod schema;
mod tracked;
pub mod types;
mod view;
pub mod wire;

pub use collections::{
    ArrayMut, ArraySchema, CollectionMut, CollectionSchema, EntryHandle, MapMut, MapSchema, SetMut,
    SetSchema,
};
pub use encoder::{registry_of, Dialect, Encoder, EncoderOptions};
pub use moved::Moved;
pub use reflection::encode_reflection;
pub use schema::{Field, Schema};
pub use tracked::Tick;
pub use view::{ViewId, ViewTarget, DEFAULT_VIEW_TAG};

#[cfg(feature = "derive")]
pub use roomcast_schema_derive::Schema;

#[doc(hidden)]
pub mod __private {
    pub use crate::encoder::{ArrayScratch, FullWriter, PatchWriter};
    pub use crate::moved::Moved;
    pub use crate::quantize::{
        encode_op as quantized_op, snap as quantized_snap, Quantizable, Quantize,
    };
    pub use crate::schema::{
        accepts, encode_type_tag, set_primitive, set_ref, set_ref_moved, view_entry, Describer,
        EntrySink, Field, FieldSink, FieldView, Schema, TrackedMut,
    };
    pub use crate::tracked::{StructTrack, Tick, TrackState};
    pub use crate::types::{NamedField, NamedFieldType, NamedType, Primitive};
    pub use crate::view::Node;
    pub use crate::wire::spec;
    pub use serde;
}
