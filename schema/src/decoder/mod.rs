//! Applying Colyseus state bytes to a local state: the client side of the
//! wire format (spec `schema-wire.md`).
//!
//! * [`Decoder<T>`]: decodes into a `#[derive(Schema)]` type `T`.
//! * [`DynamicDecoder`]: no Rust types needed; built from Reflection bytes
//!   ([`decode_reflection`], both the 5.x and the 3.x/4.x form) or a
//!   [`TypeRegistry`](crate::types::TypeRegistry), it follows any room into
//!   a dynamic value tree ([`NodeRef`], [`Value`], JSON), and lists the
//!   operations of a message ([`DynamicDecoder::explain`]).
//! * Change callbacks on either: [`callbacks`].
//!
//! Feed every `ROOM_STATE` and `ROOM_STATE_PATCH` body (without the protocol
//! byte) to `decode`, in order. Each call applies one whole message, then
//! garbage-collects the structures no longer referenced (spec §9).
//!
//! # Bad input
//!
//! Every message is parsed and checked against the current state before
//! any structural change is applied (primitive field writes made on the
//! way are undone if the message is rejected); the typed decoder's fast
//! path, which writes fields, new structures and new map entries as it
//! reads, puts them all back when a message turns out malformed or outside
//! it, which then goes through that check. So **a message is applied
//! entirely or not at all**: on `Err` the state is exactly what it was,
//! and no change callback fires. Errors name the byte offset
//! and the problem ([`DecodeError`](crate::wire::DecodeError)). Decoding
//! never panics and never loops (every step consumes input); lengths are
//! checked before allocating, tables sized ahead for a message that creates
//! many structures get a capacity of at most a few times its length,
//! refIds from the network cannot make the refId
//! table grow beyond the number of structures, array writes far past the
//! end switch to a sparse representation, and printing a state stops at
//! [`MAX_DEPTH`] levels (cycles and exponential sharing included).
//!
//! # Differences from the reference decoder
//!
//! The reference (`@colyseus/schema` 5.0.34, spec §13) logs and carries on
//! where this decoder returns an error: truncated or malformed primitives,
//! a `boolean` byte other than `00`/`01`, unknown refIds and field indexes,
//! operations a structure does not support, child references to a
//! structure of another kind or type, unknown or unrelated `TYPE_ID`s, a
//! map `REPLACE` of an index the map does not hold.
//!
//! Reference counting counts one reference per slot holding a child: a
//! child overwritten by another one (any operation, not only
//! DELETE_AND_ADD) loses its reference, and DELETE_BY_REFID releases one
//! only when the element is present. The reference leaks in the first case
//! and may free a child still in use in the second; states only differ
//! in which refIds a later message may still address.
//!
//! Everything else follows the reference, including its array semantics
//! (ADD at an occupied index inserts, unless the value there is the same
//! one, JavaScript `===`: see `shared/spec/reference-pitfalls.md` #1) and
//! tolerances (DELETE of an unknown index or refId is ignored; a set or
//! collection index that is present keeps its value).

// The core every decoder is built on: parsing and validation
// (`base/parse.rs`), reference tracking, the undo log, values. It imports
// only `wire`, `types` and `quantize`; the typed decoder (`typed.rs`,
// `direct.rs`, `fast.rs`) and the dynamic one (`dynamic.rs`, `explain.rs`,
// `reflection.rs`) are built on it, each on its own, and the callbacks
// (`callbacks.rs`) serve both: they check each other in the differential
// tests instead of sharing their semantics.
mod base;
pub mod callbacks;
mod direct;
mod dynamic;
mod explain;
mod fast;
mod reflection;
mod typed;
#[cfg(all(test, feature = "derive"))]
mod typed_tests;

pub use base::reference_tracker::RefId;
pub use base::value::{Str, Value};
pub use callbacks::{At, CallbackError, CallbackHandle, Cx, Key};
#[doc(hidden)]
pub use direct::Place;
pub use dynamic::{DynamicDecoder, NodeKind, NodeRef, ValueRef};
#[doc(hidden)]
pub use fast::{struct_block as fast_struct_block, Bail, FastCx, FastField, FastNode};
pub use reflection::{decode_reflection, ReflectionDialect, MAX_INHERITANCE_DEPTH, MAX_TYPES};
pub use typed::Decoder;
#[doc(hidden)]
pub use typed::{
    decode_set, DecodeField, DecodeNode, DecodeState, DecodeStruct, EachElement, FieldInput,
    Planned,
};

/// Deepest nesting of structures that [`DynamicDecoder::to_json`] expands
/// (deeper references print as `{"$ref": refId}`), and that the typed
/// decoder follows.
pub const MAX_DEPTH: usize = 64;

#[cfg(test)]
mod layering {
    /// The dynamic decoder (and its listing, Reflection and callbacks,
    /// which both decoders use) imports nothing of the typed decoder: the
    /// two check each other in the differential tests.
    #[test]
    fn the_dynamic_decoder_imports_nothing_of_the_typed_one() {
        let files = [
            ("dynamic", include_str!("dynamic.rs")),
            ("explain", include_str!("explain.rs")),
            ("reflection", include_str!("reflection.rs")),
            ("callbacks", include_str!("callbacks.rs")),
        ];
        for (name, text) in files {
            // (Imports name their module: no group to look into.)
            assert!(!text.contains("use crate::decoder::{"), "{name}.rs");
            for typed in ["typed", "direct", "fast"] {
                for path in ["crate::decoder::", "super::"] {
                    assert!(
                        !text.contains(&format!("use {path}{typed}")),
                        "{name}.rs imports {typed}.rs"
                    );
                }
            }
        }
    }
}
