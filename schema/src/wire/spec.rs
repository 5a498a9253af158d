//! Operation codes and markers of the wire format (spec `schema-wire.md` §3).

/// Overwrite the value at an existing collection index.
pub const REPLACE: u8 = 0x00;
/// Remove a field or collection entry.
pub const DELETE: u8 = 0x40;
/// Add a field or collection entry.
pub const ADD: u8 = 0x80;
/// Replace a child reference, or delete and re-add a key within one tick.
pub const DELETE_AND_ADD: u8 = 0xc0;
/// Remove every entry of a collection.
pub const CLEAR: u8 = 0x0a;
/// Reverse an `ArraySchema` in place.
pub const REVERSE: u8 = 0x0f;
/// Array move (decoded, never emitted by the reference).
pub const MOVE: u8 = 0x20;
/// Remove the array element holding a refId.
pub const DELETE_BY_REFID: u8 = 0x21;
/// Array delete-and-move (decoded, never emitted by the reference).
pub const DELETE_AND_MOVE: u8 = 0x60;
/// Add an array element positioned by refId.
pub const ADD_BY_REFID: u8 = 0x81;
/// Array move-and-add (decoded, never emitted by the reference).
pub const MOVE_AND_ADD: u8 = 0xa0;
/// Switch the current structure: `ff | varint refId`.
pub const SWITCH_TO_STRUCTURE: u8 = 0xff;
/// Concrete type of a child, after its refId: `d5 | varint typeId`.
pub const TYPE_ID: u8 = 0xd5;

/// Largest number of fields a Schema type may have (indexes 0..=62): index 63
/// would make `DELETE_AND_ADD | 63` collide with [`SWITCH_TO_STRUCTURE`].
pub const MAX_FIELDS: usize = 63;
