//! The first of the decoder's two passes: parse and validate a whole
//! message, writing the primitive fields of existing structs on the way.
//!
//! [`Parser::parse`] walks the structure blocks of a message body (spec
//! `schema-wire.md` §1, §3), checks every byte and every reference against
//! the current state plus what the message itself creates, and records the
//! structural operations as [`Step`]s with their values decoded and their
//! child references resolved. Only when the whole message is valid does the
//! decoder apply the steps, and applying them cannot fail.
//!
//! Primitive field writes (ADD, REPLACE, DELETE of a primitive field) to a
//! struct the state already holds are the bulk of a patch: with
//! [`Parser::eager`] they are written while parsing, logging the old values
//! ([`UndoLog`]); a rejected message replays the log, so either way a
//! rejected message leaves the state exactly as it was. A field is either
//! primitive or holds children, so these writes never interleave with the
//! staged steps on one slot. Structures the message creates are made in the
//! state as soon as they are referenced (empty and unattached: the applier
//! attaches them), so that their fields are written the same way, without
//! logging; a rejected message removes them.
//!
//! What is checked (the reference decoder, spec §13, logs and skips most of
//! these): truncation and malformed primitives; `ff refId` and child refIds
//! that name nothing (a child refId can only be new on an ADD-type
//! operation); field indexes the type does not define; operation bytes that
//! the structure does not support; child references to a structure of
//! another kind or type than the slot declares; `TYPE_ID`s that are unknown
//! or not a subtype of the declared type; a map `REPLACE` of an index the
//! map does not hold. Deleting an index or a refId that is not there is
//! accepted and ignored, as in the reference (an encoder does send it, §16).

use std::collections::HashMap;

use crate::decoder::base::reference_tracker::{RefId, RefIdHasherBuilder, RefMap};
use crate::decoder::base::undo::UndoLog;
use crate::decoder::base::value::Value;
use crate::quantize::Quantize;
use crate::types::{
    CollectionKind, ElementType, FieldDef, FieldType, Primitive, TypeId, TypeRegistry,
};
use crate::wire::spec::{
    ADD, ADD_BY_REFID, CLEAR, DELETE, DELETE_AND_ADD, DELETE_AND_MOVE, DELETE_BY_REFID, MOVE,
    MOVE_AND_ADD, REPLACE, REVERSE, SWITCH_TO_STRUCTURE, TYPE_ID,
};
use crate::wire::{DecodeError, DecodeErrorKind, Reader};

/// What a structure is, as far as parsing is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Shape {
    /// A Schema struct instance of this (concrete) type.
    Struct(TypeId),
    /// A collection.
    Collection(CollectionKind, ElementType),
}

/// What a slot (a field or a collection element) declares.
#[derive(Debug, Clone, Copy)]
enum SlotType {
    Primitive(Primitive),
    /// A float sent as an unsigned integer.
    Quantized(Quantize),
    Struct(TypeId),
    Collection(CollectionKind, ElementType),
}

impl From<FieldType> for SlotType {
    #[inline]
    fn from(ty: FieldType) -> Self {
        match ty {
            FieldType::Primitive(p) => Self::Primitive(p),
            FieldType::Quantized(q) => Self::Quantized(q),
            FieldType::Schema(t) => Self::Struct(t),
            FieldType::Collection(k, e) => Self::Collection(k, e),
        }
    }
}

impl From<ElementType> for SlotType {
    #[inline]
    fn from(ty: ElementType) -> Self {
        match ty {
            ElementType::Primitive(p) => Self::Primitive(p),
            ElementType::Schema(t) => Self::Struct(t),
        }
    }
}

/// A primitive field write of the parse pass into a typed value.
#[derive(Debug, Clone, Copy)]
pub(crate) enum FieldWrite<'a> {
    /// A primitive value.
    Primitive(&'a Value),
    /// A string value (read from the message).
    Str(&'a str),
    /// DELETE: the field becomes unset.
    Delete,
}

/// A typed value whose primitive fields the parse pass writes in place
/// (the typed decoder implements it for its values: the core knows nothing
/// else of them).
pub(crate) trait TypedFields {
    /// Writes field `index`; `false` when the value does not fit the
    /// field's type.
    fn write_field(&mut self, index: u8, w: FieldWrite<'_>) -> bool;
    /// [`write_field`](Self::write_field), returning also the value the
    /// field held before, as a value of wire type `p` (for the undo log).
    fn write_field_logged(
        &mut self,
        index: u8,
        w: FieldWrite<'_>,
        p: Primitive,
    ) -> (bool, Option<Value>);
}

/// No typed values (a dynamic state, a listing).
pub(crate) enum NoTyped {}

impl TypedFields for NoTyped {
    fn write_field(&mut self, _: u8, _: FieldWrite<'_>) -> bool {
        match *self {}
    }

    fn write_field_logged(
        &mut self,
        _: u8,
        _: FieldWrite<'_>,
        _: Primitive,
    ) -> (bool, Option<Value>) {
        match *self {}
    }
}

/// The state as the parser sees it.
pub(crate) trait ShapeSource {
    /// The typed values of the state ([`typed_node`](Self::typed_node)).
    type Typed: TypedFields + ?Sized;
    /// The shape of a structure the decoder holds.
    fn shape_of(&self, id: RefId) -> Option<Shape>;
    /// Whether a map holds wire index `index`.
    fn map_has_index(&self, map: RefId, index: u32) -> bool;
    /// The field values of struct `id`, for the parse pass to write
    /// primitive fields in place (`None`: not available, the writes are
    /// staged as steps).
    fn struct_slots(&mut self, id: RefId) -> Option<&mut [Option<Value>]> {
        let _ = id;
        None
    }
    /// The typed value of struct `id`, for the parse pass to write
    /// primitive fields into, like [`struct_slots`](Self::struct_slots)
    /// (`None`: not available).
    fn typed_node(&mut self, id: RefId) -> Option<&mut Self::Typed> {
        let _ = id;
        None
    }
    /// Creates an empty structure `id` of this shape, which the state does
    /// not hold, so that the parse pass can write its fields (`false`: not
    /// supported). The applier adopts it at the step that references it;
    /// [`remove_created`](Self::remove_created) takes it back if the message
    /// is rejected. `rest` is the number of bytes of the message after the
    /// reference, to size the storage once for a message that creates many
    /// structures (see [`size_hint`]).
    fn create(&mut self, id: RefId, shape: Shape, types: &TypeRegistry, rest: usize) -> bool {
        let _ = (id, shape, types, rest);
        false
    }
    /// Removes a structure made by [`create`](Self::create).
    fn remove_created(&mut self, id: RefId) {
        let _ = id;
    }
}

/// A state the parse pass only reads (listings).
pub(crate) struct ReadOnly<'a, S>(pub(crate) &'a S);

impl<S: ShapeSource> ShapeSource for ReadOnly<'_, S> {
    type Typed = NoTyped;

    fn shape_of(&self, id: RefId) -> Option<Shape> {
        self.0.shape_of(id)
    }
    fn map_has_index(&self, map: RefId, index: u32) -> bool {
        self.0.map_has_index(map, index)
    }
}

/// A decoded value, ready to be stored.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Scalar {
    /// No value (DELETE, CLEAR, …).
    None,
    /// `boolean`.
    Bool(bool),
    /// `int8` … `int64`, `uint8` … `uint32`.
    Int(i64),
    /// `uint64`.
    Uint(u64),
    /// `number`, `float32`, `float64`.
    Number(f64),
    /// `bigint64`.
    BigInt(i64),
    /// `biguint64`.
    BigUint(u64),
    /// A string: byte range of its (valid UTF-8) bytes in the message.
    Str { start: u32, len: u32 },
    /// A child reference. `create` is set on the first reference to a refId
    /// the decoder does not hold yet: the applier creates a structure of
    /// the shape recorded in [`Parser::created`].
    Child { id: RefId, create: bool },
}

impl Scalar {
    /// The string of a [`Scalar::Str`] read from `message` (empty if the
    /// range is not valid UTF-8 there, which the parser already checked).
    #[inline]
    pub(crate) fn str_in<'m>(&self, message: &'m [u8]) -> Option<&'m str> {
        let Self::Str { start, len } = *self else {
            return None;
        };
        Some(
            message
                .get(start as usize..(start + len) as usize)
                .and_then(|b| std::str::from_utf8(b).ok())
                .unwrap_or_default(),
        )
    }

    /// The value of a primitive scalar, its string (if any) made by
    /// `string`; `None` for no value or a child.
    #[inline]
    pub(crate) fn primitive_value(
        self,
        message: &[u8],
        string: impl FnOnce(&str) -> Value,
    ) -> Option<Value> {
        Some(match self {
            Self::Bool(b) => Value::Bool(b),
            Self::Int(v) => Value::Int(v),
            Self::Uint(v) => Value::Uint(v),
            Self::Number(v) => Value::Number(v),
            Self::BigInt(v) => Value::BigInt(v),
            Self::BigUint(v) => Value::BigUint(v),
            Self::Str { .. } => string(self.str_in(message)?),
            Self::None | Self::Child { .. } => return None,
        })
    }
}

/// One operation of a message, validated.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Step {
    /// `ff refId`: the following steps apply to this structure.
    Switch(RefId),
    /// A Schema field operation (`op` is ADD, DELETE, DELETE_AND_ADD or
    /// REPLACE).
    Field { op: u8, index: u8, value: Scalar },
    /// A run of primitive writes to fields of the current struct (ADD,
    /// REPLACE or DELETE_AND_ADD of primitive fields): the operations are
    /// the validated bytes `start..end` of the message, read again by the
    /// applier.
    Fields { start: u32, end: u32 },
    /// A collection operation with a wire index (every op but CLEAR,
    /// REVERSE and the by-refId ones); `key` is the offset of the string
    /// header of an ADD-type map operation's key ([`NO_KEY`] otherwise).
    Entry {
        op: u8,
        index: u32,
        key: u32,
        value: Scalar,
    },
    /// `0a`.
    Clear,
    /// `0f`.
    Reverse,
    /// `21 refId`.
    DeleteByRefId(RefId),
    /// `81 refId value`.
    AddByRefId(RefId, Scalar),
}

/// Bytes of a message per structure it creates, in the estimate that sizes
/// the decoder's tables when a message creates many ([`size_hint`]): an
/// entity of a few fields added to a map takes 30 to 40.
pub(crate) const STRUCT_BYTES: usize = 24;

/// How many more elements to make room for when a table that a message
/// fills runs out, given `rest` bytes of the message left and `per` bytes
/// of message per element: the estimate `rest / per` (so a full state
/// sizes its tables once instead of copying them at each doubling),
/// bounded by the input like every allocation of the decoder.
#[inline]
pub(crate) fn size_hint(rest: usize, per: usize) -> usize {
    rest / per
}

/// [`Step::Entry::key`] of an operation without a key.
pub(crate) const NO_KEY: u32 = u32::MAX;

/// Reads the map key whose string header is at `at` (validated by the
/// parse pass).
#[inline]
pub(crate) fn key_at(bytes: &[u8], at: u32) -> &str {
    std::str::from_utf8(key_bytes_at(bytes, at)).unwrap_or_default()
}

/// The bytes of the map key whose string header is at `at` (validated by
/// the parse pass).
#[inline]
pub(crate) fn key_bytes_at(bytes: &[u8], at: u32) -> &[u8] {
    let at = at as usize;
    if let Some(&header) = bytes.get(at) {
        if header & 0xe0 == 0xa0 {
            // A short string (fixstr header).
            let len = usize::from(header & 0x1f);
            if let Some(b) = bytes.get(at + 1..at + 1 + len) {
                return b;
            }
        }
    }
    key_at_slow(bytes, at).as_bytes()
}

#[inline(never)]
fn key_at_slow(bytes: &[u8], at: usize) -> &str {
    let mut r = Reader::new(bytes);
    r.seek(at.min(bytes.len()));
    r.decode_str().unwrap_or_default()
}

/// The parse pass, with its scratch state reused between messages.
#[derive(Debug, Default)]
pub(crate) struct Parser {
    /// Map indexes added (`true`) or deleted (`false`) by the current
    /// message, by `(map refId, index)`, with the step number of the
    /// operation.
    map_indexes: HashMap<(u32, u32), (bool, u32), RefIdHasherBuilder>,
    /// Maps cleared by the current message, with the step number of the
    /// last CLEAR: indexes recorded before it are gone.
    cleared_maps: HashMap<u32, u32, RefIdHasherBuilder>,
    /// Structures created by the current message, with their shape.
    pub(crate) created: RefMap<Shape>,
    /// Maps created by the current message, with the number of entries
    /// its ADD operations give them at most (to size them once).
    pub(crate) map_sizes: RefMap<u32>,
    /// The steps of the last parsed message.
    pub(crate) steps: Vec<Step>,
    /// The offset of each step's first byte, when `record_offsets` is set.
    pub(crate) offsets: Vec<u32>,
    /// Whether to fill `offsets` (for listings).
    pub(crate) record_offsets: bool,
    /// Whether primitive field writes to structures the state already
    /// holds are made while parsing (undone if the message is rejected)
    /// instead of being staged as steps. Off while change callbacks
    /// record (they need every change in message order) and for listings.
    pub(crate) eager: bool,
    /// The values replaced by the writes made while parsing.
    undo: UndoLog,
    /// With `eager`: the structures the message creates, made in the state
    /// while parsing (their fields are written like the others', without
    /// logging: a rejected message removes them).
    new_nodes: Vec<RefId>,
    /// Primitive writes into typed values ([`ShapeSource::typed_node`])
    /// that did not fit the Rust type, in the last parsed message.
    pub(crate) typed_failed: u64,
}

impl Parser {
    /// Parses and validates `bytes` against `state`, leaving the steps in
    /// `self.steps`.
    ///
    /// With [`eager`](Self::eager), primitive fields of structures the
    /// state holds are written on the way; on `Err` they are restored, so
    /// the state is unchanged either way.
    pub(crate) fn parse<S: ShapeSource>(
        &mut self,
        bytes: &[u8],
        types: &TypeRegistry,
        state: &mut S,
    ) -> Result<(), DecodeError> {
        self.undo.commit();
        self.new_nodes.clear();
        self.typed_failed = 0;
        let result = self.parse_inner(bytes, types, state);
        if result.is_err() {
            self.undo(state);
        }
        result
    }

    /// Puts back what the last (accepted) parse wrote while parsing: for a
    /// message its decoder then hands to another.
    pub(crate) fn undo<S: ShapeSource>(&mut self, state: &mut S) {
        self.undo.rollback(state);
        for &id in self.new_nodes.iter().rev() {
            state.remove_created(id);
        }
        self.new_nodes.clear();
    }

    fn parse_inner<S: ShapeSource>(
        &mut self,
        bytes: &[u8],
        types: &TypeRegistry,
        state: &mut S,
    ) -> Result<(), DecodeError> {
        self.created.clear();
        self.map_sizes.clear();
        self.map_indexes.clear();
        self.cleared_maps.clear();
        self.steps.clear();
        self.offsets.clear();
        if u32::try_from(bytes.len()).is_err() {
            return Err(DecodeError::new(
                DecodeErrorKind::LimitExceeded("message longer than 4 GiB"),
                0,
            ));
        }
        let mut cx = Cx {
            r: Reader::new(bytes),
            types,
            state,
            created: &mut self.created,
            map_sizes: &mut self.map_sizes,
            map_adds: 0,
            map_indexes: &mut self.map_indexes,
            cleared_maps: &mut self.cleared_maps,
            steps: &mut self.steps,
            overlay: false,
            eager: self.eager && !self.record_offsets,
            undo: &mut self.undo,
            new_nodes: &mut self.new_nodes,
            typed_failed: &mut self.typed_failed,
            block_is_new: false,
            current: RefId::ROOT,
            switched: RefId::ROOT,
            eager_block: self.eager && !self.record_offsets,
        };
        let mut shape = Shape::Struct(types.root());
        // The fields of the current struct (looked up once per block).
        let mut fields: &[FieldDef] = types.fields(types.root());
        while let Some(first) = cx.r.peek() {
            let at = cx.r.offset();
            let step = if first == SWITCH_TO_STRUCTURE {
                cx.r.skip(1);
                cx.end_block();
                let id = RefId(cx.r.decode_varint()?);
                shape = cx
                    .shape_of(id)
                    .ok_or_else(|| err(at, DecodeErrorKind::UnknownRefId(id.0)))?;
                if let Shape::Struct(t) = shape {
                    fields = types.fields(t);
                }
                cx.current = id;
                if cx.eager {
                    cx.block_is_new = cx.created.len() != 0 && cx.created.contains(id);
                    // The `Switch` step is pushed with the first staged
                    // step of the block, if any.
                    cx.eager_block =
                        matches!(shape, Shape::Struct(_)) && cx.write_primitives(fields)?;
                    continue;
                }
                cx.switched = id;
                Step::Switch(id)
            } else {
                match shape {
                    Shape::Struct(_) => {
                        // The whole run of field operations of this block.
                        cx.struct_ops(fields, self.record_offsets.then_some(&mut self.offsets))?;
                        continue;
                    }
                    Shape::Collection(kind, elem) => {
                        cx.r.skip(1);
                        cx.sync_switch();
                        cx.collection_op(at, first, cx.current, kind, elem)?
                    }
                }
            };
            cx.steps.push(step);
            if self.record_offsets {
                self.offsets.push(at as u32);
            }
        }
        cx.end_block();
        Ok(())
    }
}

#[cold]
#[inline(never)]
fn err(at: usize, kind: DecodeErrorKind) -> DecodeError {
    DecodeError::new(kind, at)
}

/// The width of a fixed-width primitive whose every bit pattern is valid
/// (0 for the others).
#[inline(always)]
pub(crate) fn fixed_size(p: Primitive) -> usize {
    match p {
        Primitive::Int8 | Primitive::Uint8 => 1,
        Primitive::Int16 | Primitive::Uint16 => 2,
        Primitive::Int32 | Primitive::Uint32 | Primitive::Float32 => 4,
        Primitive::Int64
        | Primitive::Uint64
        | Primitive::Float64
        | Primitive::BigInt64
        | Primitive::BigUint64 => 8,
        _ => 0,
    }
}

/// Reads a quantized field's integer; the float it stands for.
pub(crate) fn read_quantized(r: &mut Reader<'_>, q: Quantize) -> Result<f64, DecodeError> {
    let n = match q.bits() {
        8 => u32::from(r.decode_u8()?),
        16 => u32::from(r.decode_u16()?),
        _ => r.decode_u32()?,
    };
    Ok(q.dequantize(n))
}

/// Reads a primitive value (a string as its byte range in the message).
#[inline(always)]
pub(crate) fn read_primitive(r: &mut Reader<'_>, p: Primitive) -> Result<Scalar, DecodeError> {
    Ok(match p {
        Primitive::Float32 => Scalar::Number(r.decode_f32()?.into()),
        Primitive::Number => Scalar::Number(r.decode_number()?),
        Primitive::String => {
            let (start, len) = r.skip_str()?;
            Scalar::Str {
                start: start as u32,
                len: len as u32,
            }
        }
        Primitive::Boolean => Scalar::Bool(r.decode_bool()?),
        Primitive::Int8 => Scalar::Int(r.decode_i8()?.into()),
        Primitive::Uint8 => Scalar::Int(r.decode_u8()?.into()),
        Primitive::Int16 => Scalar::Int(r.decode_i16()?.into()),
        Primitive::Uint16 => Scalar::Int(r.decode_u16()?.into()),
        Primitive::Int32 => Scalar::Int(r.decode_i32()?.into()),
        Primitive::Uint32 => Scalar::Int(r.decode_u32()?.into()),
        Primitive::Int64 => Scalar::Int(r.decode_i64()?),
        Primitive::Uint64 => Scalar::Uint(r.decode_u64()?),
        Primitive::Float64 => Scalar::Number(r.decode_f64()?),
        Primitive::BigInt64 => Scalar::BigInt(r.decode_i64()?),
        Primitive::BigUint64 => Scalar::BigUint(r.decode_u64()?),
        #[allow(unreachable_patterns, reason = "Primitive is non_exhaustive")]
        _ => {
            return Err(err(
                r.offset(),
                DecodeErrorKind::Unsupported("primitive type"),
            ))
        }
    })
}

struct Cx<'a, 'b, S> {
    r: Reader<'a>,
    types: &'b TypeRegistry,
    state: &'b mut S,
    created: &'b mut RefMap<Shape>,
    map_sizes: &'b mut RefMap<u32>,
    /// ADD operations of the current map block.
    map_adds: u32,
    map_indexes: &'b mut HashMap<(u32, u32), (bool, u32), RefIdHasherBuilder>,
    cleared_maps: &'b mut HashMap<u32, u32, RefIdHasherBuilder>,
    /// The steps so far.
    steps: &'b mut Vec<Step>,
    /// Whether `map_indexes` / `cleared_maps` are maintained: only from the
    /// first map REPLACE of the message on (they are built from the steps
    /// then), since only a REPLACE needs them.
    overlay: bool,
    /// [`Parser::eager`] (never for listings).
    eager: bool,
    undo: &'b mut UndoLog,
    new_nodes: &'b mut Vec<RefId>,
    typed_failed: &'b mut u64,
    /// With `eager`: the current structure is one of `new_nodes`.
    block_is_new: bool,
    /// The structure the current block applies to.
    current: RefId,
    /// The structure of the last `Switch` step (with `eager`, a block
    /// whose operations were all applied while parsing gets none).
    switched: RefId,
    /// With `eager`: the current structure is a struct the state holds.
    eager_block: bool,
}

impl<S: ShapeSource> Cx<'_, '_, S> {
    /// Records structure `id`, new in this message (made in the state
    /// right away with `eager`).
    #[inline]
    fn create(&mut self, id: RefId, shape: Shape) {
        let rest = self.r.remaining();
        if id.0 as usize >= self.created.dense_len() {
            self.created.reserve_dense(size_hint(rest, STRUCT_BYTES));
        }
        self.created.insert(id, shape);
        if self.eager && self.state.create(id, shape, self.types, rest) {
            if self.new_nodes.len() == self.new_nodes.capacity() {
                self.new_nodes.reserve(size_hint(rest, STRUCT_BYTES));
            }
            self.new_nodes.push(id);
        }
    }

    /// End of the current block: a map the message creates records its
    /// entries.
    #[inline(always)]
    fn end_block(&mut self) {
        if self.map_adds != 0 {
            self.end_map_block();
        }
    }

    #[inline(never)]
    fn end_map_block(&mut self) {
        let adds = std::mem::take(&mut self.map_adds);
        if self.created.contains(self.current) {
            let n = self.map_sizes.get(self.current).copied().unwrap_or(0);
            self.map_sizes.insert(self.current, n.saturating_add(adds));
        }
    }

    /// Pushes the `Switch` step to the current structure if the steps do
    /// not end in its block.
    #[inline(always)]
    fn sync_switch(&mut self) {
        if self.switched != self.current {
            self.switched = self.current;
            self.steps.push(Step::Switch(self.current));
        }
    }

    /// Writes the primitive field operations at the reader's position into
    /// the current struct, up to the first other operation, the next `ff`
    /// or the end; `Ok(false)` when the struct is not in the state (then
    /// nothing was read).
    #[inline(always)]
    fn write_primitives(&mut self, fields: &[FieldDef]) -> Result<bool, DecodeError> {
        if self.block_is_new {
            self.write_primitives_as::<false>(fields)
        } else {
            self.write_primitives_as::<true>(fields)
        }
    }

    /// [`write_primitives`](Self::write_primitives), logging the old
    /// values (`LOG`) or not (a structure made by this message).
    #[inline(always)]
    fn write_primitives_as<const LOG: bool>(
        &mut self,
        fields: &[FieldDef],
    ) -> Result<bool, DecodeError> {
        let bytes = self.r.buffer();
        let current = self.current;
        let log = LOG;
        let Some(slots) = self.state.struct_slots(current) else {
            return self.write_typed_primitives::<LOG>(fields);
        };
        let mut at = self.r.offset();
        loop {
            let byte = match bytes.get(at) {
                Some(&b) if b != SWITCH_TO_STRUCTURE => b,
                _ => break,
            };
            let index = byte & 0x3f;
            let i = usize::from(index);
            let Some(field) = fields.get(i) else {
                return Err(err(at, DecodeErrorKind::UnknownField(index)));
            };
            let FieldType::Primitive(p) = field.ty else {
                break;
            };
            let Some(slot) = slots.get_mut(i) else {
                break;
            };
            let new = if byte & 0xc0 == DELETE {
                at += 1;
                None
            } else if let (Primitive::Float32, Some(&[a, b, c, d])) = (p, bytes.get(at + 1..at + 5))
            {
                // The common case, inline.
                at += 5;
                let v = f64::from(f32::from_le_bytes([a, b, c, d]));
                if let Some(Value::Number(n)) = slot {
                    if log {
                        self.undo.push_number(current, index, *n);
                    }
                    *n = v;
                    continue;
                }
                Some(Value::Number(v))
            } else {
                self.r.set_offset(at + 1);
                let value = read_primitive(&mut self.r, p)?;
                at = self.r.offset();
                let undo = &mut self.undo;
                let value = match value {
                    // (Checked by `read_primitive`.)
                    Scalar::Str { start, len } => bytes
                        .get(start as usize..(start + len) as usize)
                        .map(|b| Value::String(undo.string_checked(b))),
                    v => v.primitive_value(bytes, |s| Value::String(undo.string(s))),
                };
                match value {
                    Some(v) => Some(v),
                    None => return Err(err(at, DecodeErrorKind::Unsupported("primitive type"))),
                }
            };
            let old = std::mem::replace(slot, new);
            if log {
                self.undo.push(current, index, old);
            }
        }
        self.r.set_offset(at);
        Ok(true)
    }

    /// [`write_primitives_as`](Self::write_primitives_as) into the typed
    /// value of the current struct ([`ShapeSource::typed_node`]); the
    /// values replaced are logged the same way.
    fn write_typed_primitives<const LOG: bool>(
        &mut self,
        fields: &[FieldDef],
    ) -> Result<bool, DecodeError> {
        let bytes = self.r.buffer();
        let current = self.current;
        let Some(node) = self.state.typed_node(current) else {
            return Ok(false);
        };
        let mut at = self.r.offset();
        loop {
            let byte = match bytes.get(at) {
                Some(&b) if b != SWITCH_TO_STRUCTURE => b,
                _ => break,
            };
            let index = byte & 0x3f;
            let Some(field) = fields.get(usize::from(index)) else {
                return Err(err(at, DecodeErrorKind::UnknownField(index)));
            };
            let FieldType::Primitive(p) = field.ty else {
                break;
            };
            let number;
            let input = if byte & 0xc0 == DELETE {
                at += 1;
                FieldWrite::Delete
            } else if let (Primitive::Float32, Some(&[a, b, c, d])) = (p, bytes.get(at + 1..at + 5))
            {
                // The common case, inline.
                at += 5;
                number = Value::Number(f32::from_le_bytes([a, b, c, d]).into());
                FieldWrite::Primitive(&number)
            } else {
                self.r.set_offset(at + 1);
                let value = read_primitive(&mut self.r, p)?;
                at = self.r.offset();
                match value.str_in(bytes) {
                    Some(s) => FieldWrite::Str(s),
                    None => match value.primitive_value(bytes, |_| Value::Bool(false)) {
                        Some(v) => {
                            number = v;
                            FieldWrite::Primitive(&number)
                        }
                        None => {
                            return Err(err(at, DecodeErrorKind::Unsupported("primitive type")))
                        }
                    },
                }
            };
            let ok = if LOG {
                let (ok, old) = node.write_field_logged(index, input, p);
                self.undo.push(current, index, old);
                ok
            } else {
                node.write_field(index, input)
            };
            if !ok {
                *self.typed_failed += 1;
            }
        }
        self.r.set_offset(at);
        Ok(true)
    }

    #[inline(always)]
    fn shape_of(&self, id: RefId) -> Option<Shape> {
        if self.created.len() != 0 {
            if let Some(&s) = self.created.get(id) {
                return Some(s);
            }
        }
        self.state.shape_of(id)
    }

    /// Builds the map overlay from the steps parsed so far.
    fn build_overlay(&mut self) {
        self.overlay = true;
        let mut current = RefId::ROOT;
        let mut is_map = false;
        for (seq, step) in self.steps.iter().enumerate() {
            match *step {
                Step::Switch(id) => {
                    current = id;
                    let shape = self
                        .created
                        .get(id)
                        .copied()
                        .or_else(|| self.state.shape_of(id));
                    is_map = matches!(shape, Some(Shape::Collection(CollectionKind::Map, _)));
                }
                Step::Clear if is_map => {
                    self.cleared_maps.insert(current.0, seq as u32);
                }
                Step::Entry { op, index, .. } if is_map && op != REPLACE => {
                    self.map_indexes
                        .insert((current.0, index), (op != DELETE, seq as u32));
                }
                _ => {}
            }
        }
    }

    fn map_has_index(&self, map: RefId, index: u32) -> bool {
        let cleared_at = self.cleared_maps.get(&map.0).copied();
        if let Some(&(present, at)) = self.map_indexes.get(&(map.0, index)) {
            return present && cleared_at.is_none_or(|c| at > c);
        }
        cleared_at.is_none() && !self.created.contains(map) && self.state.map_has_index(map, index)
    }

    /// Parses the field operations of a struct block up to the next
    /// `ff` or the end of the message. Runs of primitive writes become one
    /// [`Step::Fields`] (unless offsets are recorded, for listings).
    fn struct_ops(
        &mut self,
        fields: &[FieldDef],
        mut offsets: Option<&mut Vec<u32>>,
    ) -> Result<(), DecodeError> {
        let bytes = self.r.buffer();
        let runs = offsets.is_none();
        let mut run_start = None;
        let mut eager = self.eager_block;
        loop {
            if eager {
                eager = self.write_primitives(fields)?;
            }
            let at = self.r.offset();
            let byte = match bytes.get(at) {
                Some(&b) if b != SWITCH_TO_STRUCTURE => b,
                _ => break,
            };
            let op = byte & 0xc0;
            let index = byte & 0x3f;
            let Some(field) = fields.get(usize::from(index)) else {
                return Err(err(at, DecodeErrorKind::UnknownField(index)));
            };
            if let (FieldType::Primitive(p), true) = (field.ty, runs && op != DELETE) {
                let size = fixed_size(p);
                if size != 0 && at + 1 + size <= bytes.len() {
                    // Fixed-width value: nothing to check but its length.
                    self.r.set_offset(at + 1 + size);
                } else {
                    self.r.set_offset(at + 1);
                    read_primitive(&mut self.r, p)?;
                }
                run_start.get_or_insert(at as u32);
                continue;
            }
            self.r.set_offset(at + 1);
            self.sync_switch();
            if let Some(start) = run_start.take() {
                self.steps.push(Step::Fields {
                    start,
                    end: at as u32,
                });
            }
            let value = match field.ty {
                _ if op == DELETE => Scalar::None,
                FieldType::Primitive(p) => read_primitive(&mut self.r, p)?,
                ty => self.value(op, ty.into())?,
            };
            self.steps.push(Step::Field { op, index, value });
            if let Some(o) = offsets.as_deref_mut() {
                o.push(at as u32);
            }
        }
        if let Some(start) = run_start {
            self.sync_switch();
            self.steps.push(Step::Fields {
                start,
                end: self.r.offset() as u32,
            });
        }
        Ok(())
    }

    fn collection_op(
        &mut self,
        at: usize,
        op: u8,
        current: RefId,
        kind: CollectionKind,
        elem: ElementType,
    ) -> Result<Step, DecodeError> {
        let elem = SlotType::from(elem);
        match (kind, op) {
            (_, CLEAR) => {
                if kind == CollectionKind::Map && self.overlay {
                    // Entries recorded before this step no longer count.
                    self.cleared_maps.insert(current.0, self.steps.len() as u32);
                }
                Ok(Step::Clear)
            }
            (CollectionKind::Array, REVERSE) => Ok(Step::Reverse),
            (CollectionKind::Array, DELETE_BY_REFID) => {
                Ok(Step::DeleteByRefId(RefId(self.r.decode_varint()?)))
            }
            (CollectionKind::Array, ADD_BY_REFID) => {
                let id = RefId(self.r.decode_varint()?);
                let value = self.value(op, elem)?;
                Ok(Step::AddByRefId(id, value))
            }
            (
                CollectionKind::Array,
                REPLACE | DELETE | ADD | DELETE_AND_ADD | MOVE | DELETE_AND_MOVE | MOVE_AND_ADD,
            )
            | (
                CollectionKind::Set | CollectionKind::Collection,
                REPLACE | DELETE | ADD | DELETE_AND_ADD,
            ) => {
                let index = self.r.decode_varint()?;
                let value = if op == DELETE {
                    Scalar::None
                } else {
                    self.value(op, elem)?
                };
                Ok(Step::Entry {
                    op,
                    index,
                    key: NO_KEY,
                    value,
                })
            }
            (CollectionKind::Map, REPLACE | DELETE | ADD | DELETE_AND_ADD) => {
                let index = self.r.decode_varint()?;
                let key = if op & ADD == ADD {
                    self.map_adds += 1;
                    let at = self.r.offset() as u32;
                    self.r.skip_str()?;
                    at
                } else {
                    NO_KEY
                };
                let seq = self.steps.len() as u32;
                if op == REPLACE {
                    if !self.overlay {
                        self.build_overlay();
                    }
                    if !self.map_has_index(current, index) {
                        return Err(err(at, DecodeErrorKind::UnknownMapIndex(index)));
                    }
                } else if self.overlay {
                    self.map_indexes
                        .insert((current.0, index), (op != DELETE, seq));
                }
                let value = if op == DELETE {
                    Scalar::None
                } else {
                    self.value(op, elem)?
                };
                Ok(Step::Entry {
                    op,
                    index,
                    key,
                    value,
                })
            }
            _ => Err(err(at, DecodeErrorKind::InvalidOperation(op))),
        }
    }

    /// Reads the value of a slot after operation `op`.
    fn value(&mut self, op: u8, slot: SlotType) -> Result<Scalar, DecodeError> {
        Ok(match slot {
            SlotType::Primitive(p) => read_primitive(&mut self.r, p)?,
            SlotType::Quantized(q) => Scalar::Number(read_quantized(&mut self.r, q)?),
            SlotType::Struct(base) => {
                let r = &mut self.r;
                let at = r.offset();
                let id = RefId(r.decode_varint()?);
                let type_at = r.offset();
                let type_id = if op & ADD == ADD && r.peek() == Some(TYPE_ID) {
                    r.read_u8()?;
                    Some(r.decode_varint()?)
                } else {
                    None
                };
                match self.shape_of(id) {
                    Some(Shape::Struct(t)) => {
                        if !self.types.is_a(t, base) {
                            return Err(err(at, DecodeErrorKind::TypeMismatch));
                        }
                        if let Some(tid) = type_id {
                            if tid != t.0 {
                                return Err(err(type_at, DecodeErrorKind::InvalidTypeId(tid)));
                            }
                        }
                        Scalar::Child { id, create: false }
                    }
                    Some(Shape::Collection(..)) => {
                        return Err(err(at, DecodeErrorKind::TypeMismatch))
                    }
                    None => {
                        if op & ADD != ADD {
                            return Err(err(at, DecodeErrorKind::UnknownRefId(id.0)));
                        }
                        let t = match type_id {
                            Some(tid) => {
                                let t = TypeId(tid);
                                if (tid as usize) >= self.types.len() || !self.types.is_a(t, base) {
                                    return Err(err(type_at, DecodeErrorKind::InvalidTypeId(tid)));
                                }
                                t
                            }
                            None => base,
                        };
                        let shape = Shape::Struct(t);
                        self.create(id, shape);
                        Scalar::Child { id, create: true }
                    }
                }
            }
            SlotType::Collection(kind, elem) => {
                let r = &mut self.r;
                let at = r.offset();
                let id = RefId(r.decode_varint()?);
                let want = Shape::Collection(kind, elem);
                match self.shape_of(id) {
                    Some(s) if s == want => Scalar::Child { id, create: false },
                    Some(_) => return Err(err(at, DecodeErrorKind::TypeMismatch)),
                    None => {
                        if op & ADD != ADD {
                            return Err(err(at, DecodeErrorKind::UnknownRefId(id.0)));
                        }
                        self.create(id, want);
                        Scalar::Child { id, create: true }
                    }
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_stay_small() {
        // Steps of a 10 000-entity patch should stay in cache.
        assert!(
            std::mem::size_of::<Step>() <= 32,
            "{}",
            std::mem::size_of::<Step>()
        );
        assert!(std::mem::size_of::<Scalar>() <= 16);
    }
}
