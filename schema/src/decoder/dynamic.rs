//! Reflection-driven decoding into a dynamic value tree.
//!
//! A [`DynamicDecoder`] needs no Rust types: it is built from a
//! [`TypeRegistry`] (typically decoded from the Reflection bytes of the
//! JOIN_ROOM handshake, [`DynamicDecoder::from_reflection`]) and holds every
//! structure the server sent, by refId. Read it through [`NodeRef`]s or as
//! JSON ([`DynamicDecoder::to_json`]).

use std::fmt;
use std::sync::Arc;

use crate::decoder::base::value::{KeyBytes, Str};

use crate::decoder::base::array_items::ArrayItems;
use crate::decoder::base::ordered_map::OrderedMap;
use crate::decoder::base::parse::{
    key_at, key_bytes_at, read_primitive, size_hint, NoTyped, Parser, Scalar, Shape, ShapeSource,
    Step, NO_KEY, STRUCT_BYTES,
};
use crate::decoder::base::reference_tracker::{
    GarbageList, RefCount, RefId, RefIdHasherBuilder, RefMap,
};
use crate::decoder::base::value::{js_key_order, write_json_str, write_primitive_json, Value};
use crate::decoder::callbacks::{Callbacks, Cx, Key, Recorded, Tree};
use crate::decoder::reflection::{decode_reflection, ReflectionDialect};
use crate::decoder::MAX_DEPTH;
use crate::types::{CollectionKind, ElementType, FieldType, Primitive, TypeId, TypeRegistry};
use crate::wire::spec::{ADD, ADD_BY_REFID, DELETE, DELETE_AND_MOVE};
use crate::wire::{DecodeError, Reader};

/// Map entries: key → value in insertion order.
type MapEntries = OrderedMap<Str, Value, foldhash::fast::RandomState>;
/// Set / collection entries: wire index → value in insertion order.
type IndexedEntries = OrderedMap<u32, Value, RefIdHasherBuilder>;

#[derive(Debug, Clone)]
pub(crate) enum NodeData {
    /// Field values by field index: a run of [`Nodes::fields`].
    Struct(Span),
    Map(Box<MapData>),
    Array(Box<ArrayItems<Value>>),
    /// `SetSchema` and `CollectionSchema`.
    Indexed(Box<IndexedEntries>),
}

/// The entries of a map (boxed: keeps [`Node`] small for cache density).
#[derive(Debug, Default, Clone)]
pub(crate) struct MapData {
    pub(crate) entries: MapEntries,
    /// Wire index → key (several indexes may name the same key). Indexes
    /// are handed out from 0 by the encoder: mostly a vector lookup. Keys
    /// are [`Str`]s: a short key is copied, not allocated.
    pub(crate) indexes: RefMap<Str>,
}

#[derive(Debug, Clone)]
pub(crate) struct Node {
    pub(crate) rc: RefCount,
    pub(crate) shape: Shape,
    /// The struct field that last attached this collection (callbacks
    /// registered on a field follow the collection it holds).
    pub(crate) owner: Option<(RefId, u8)>,
    pub(crate) data: NodeData,
}

/// Where the field values of a struct are in [`Nodes::fields`]: one slot
/// per field of its type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Span {
    start: u32,
    len: u32,
}

impl Span {
    #[inline(always)]
    fn range(self) -> std::ops::Range<usize> {
        self.start as usize..self.start as usize + self.len as usize
    }
}

impl Node {
    fn new(shape: Shape, fields: &mut FieldArena, types: &TypeRegistry, rest: usize) -> Self {
        let data = match shape {
            // Every field at once, in the shared arena: no allocation per
            // instance.
            Shape::Struct(t) => {
                let n = types.fields(t).len();
                // Room for as many more structs of this type as the rest
                // of the message may create (at most a slot per 2 bytes:
                // the arena's capacity stays within 8 times the message).
                let extra = (size_hint(rest, STRUCT_BYTES) * n).min(rest / 2);
                NodeData::Struct(fields.alloc(n, extra))
            }
            Shape::Collection(CollectionKind::Map, _) => NodeData::Map(Box::default()),
            Shape::Collection(CollectionKind::Array, _) => NodeData::Array(Box::default()),
            Shape::Collection(CollectionKind::Set | CollectionKind::Collection, _) => {
                NodeData::Indexed(Box::default())
            }
        };
        Self {
            rc: RefCount::default(),
            shape,
            owner: None,
            data,
        }
    }

    /// Every child reference this structure holds.
    fn for_each_child(&self, fields: &FieldArena, mut f: impl FnMut(RefId)) {
        let mut visit = |v: &Value| {
            if let Value::Ref(id) = *v {
                f(id);
            }
        };
        match &self.data {
            NodeData::Struct(span) => fields.get(*span).iter().flatten().for_each(&mut visit),
            NodeData::Map(m) => m.entries.values().for_each(&mut visit),
            NodeData::Array(items) => items.iter().for_each(&mut visit),
            NodeData::Indexed(entries) => entries.values().for_each(&mut visit),
        }
    }
}

/// The field values of every struct a decoder holds, each struct a run of
/// consecutive slots ([`Span`]): one growing vector instead of an
/// allocation per instance. The runs of collected structs are reused for
/// new structs of the same field count, so the arena never holds more
/// slots than the most the structs alive at once needed.
#[derive(Debug, Default, Clone)]
pub(crate) struct FieldArena {
    slots: Vec<Option<Value>>,
    /// Starts of free runs, by length.
    free: Vec<Vec<u32>>,
}

impl FieldArena {
    /// A run of `len` empty slots; `extra` more are expected (room is made
    /// for them when the vector is full).
    #[inline]
    fn alloc(&mut self, len: usize, extra: usize) -> Span {
        if let Some(start) = self.free.get_mut(len).and_then(Vec::pop) {
            return Span {
                start,
                len: len as u32,
            };
        }
        let start = self.slots.len();
        if self.slots.capacity() - start < len {
            self.slots.reserve(extra.max(start).max(len));
        }
        // (An exact-size extend: one capacity check, not one per slot.)
        self.slots.extend((0..len).map(|_| None));
        Span {
            start: start as u32,
            len: len as u32,
        }
    }

    /// Empties a run and keeps it for reuse.
    fn free(&mut self, span: Span) {
        for slot in &mut self.slots[span.range()] {
            *slot = None;
        }
        let len = span.len as usize;
        if self.free.len() <= len {
            self.free.resize_with(len + 1, Vec::new);
        }
        self.free[len].push(span.start);
    }

    /// The values of a run.
    #[inline(always)]
    pub(crate) fn get(&self, span: Span) -> &[Option<Value>] {
        self.slots.get(span.range()).unwrap_or_default()
    }

    /// The values of a run, to write.
    #[inline(always)]
    pub(crate) fn get_mut(&mut self, span: Span) -> &mut [Option<Value>] {
        self.slots.get_mut(span.range()).unwrap_or_default()
    }
}

/// The structures held by a decoder, by refId.
#[derive(Debug, Default, Clone)]
pub(crate) struct Nodes {
    pub(crate) map: RefMap<Node>,
    /// The field values of the structs.
    pub(crate) fields: FieldArena,
}

impl Nodes {
    /// Makes structure `id` (empty) of this shape; `rest` bytes of the
    /// message follow its reference.
    pub(crate) fn insert_new(
        &mut self,
        id: RefId,
        shape: Shape,
        types: &TypeRegistry,
        rest: usize,
    ) {
        if id.0 as usize >= self.map.dense_len() {
            self.map.reserve_dense(size_hint(rest, STRUCT_BYTES));
        }
        let node = Node::new(shape, &mut self.fields, types, rest);
        if let Some(old) = self.map.insert_replacing(id, node) {
            self.release(&old);
        }
    }

    /// Removes structure `id`, giving its field values back to the arena.
    fn remove(&mut self, id: RefId) -> Option<Node> {
        let node = self.map.remove(id)?;
        Some(node)
    }

    /// Gives the field values of a removed struct back to the arena.
    fn release(&mut self, node: &Node) {
        if let NodeData::Struct(span) = node.data {
            self.fields.free(span);
        }
    }
}

impl ShapeSource for Nodes {
    type Typed = NoTyped;

    #[inline(always)]
    fn shape_of(&self, id: RefId) -> Option<Shape> {
        self.map.get(id).map(|n| n.shape)
    }

    fn map_has_index(&self, map: RefId, index: u32) -> bool {
        matches!(
            self.map.get(map).map(|n| &n.data),
            Some(NodeData::Map(m)) if m.indexes.contains(RefId(index))
        )
    }

    #[inline(always)]
    fn struct_slots(&mut self, id: RefId) -> Option<&mut [Option<Value>]> {
        match self.map.get(id) {
            Some(Node {
                data: NodeData::Struct(span),
                ..
            }) => Some(self.fields.get_mut(*span)),
            _ => None,
        }
    }

    fn create(&mut self, id: RefId, shape: Shape, types: &TypeRegistry, rest: usize) -> bool {
        self.insert_new(id, shape, types, rest);
        true
    }

    fn remove_created(&mut self, id: RefId) {
        if let Some(node) = self.remove(id) {
            self.release(&node);
        }
    }
}

/// Decodes Colyseus state bytes of any schema into a dynamic value tree.
///
/// Call [`decode`](Self::decode) with the body of every `ROOM_STATE` (full
/// state) and `ROOM_STATE_PATCH` message, in the order they arrive, without
/// the leading protocol byte. Each call applies one whole message and then
/// garbage-collects the structures no longer referenced (spec
/// `schema-wire.md` §9).
///
/// **A message is applied entirely or not at all.** The bytes are first
/// parsed and checked against the current state (primitive fields are
/// written on the way and restored if the message is rejected); only a
/// valid message is applied, and applying cannot fail. On `Err` the state
/// is unchanged, no change callback fires, and
/// the decoder stays usable (whether the *stream* can continue after a bad
/// message is another matter: the server assumes it was applied).
///
/// Malformed input is an error naming the byte offset: see
/// [`DecodeErrorKind`](crate::wire::DecodeErrorKind). Decoding never
/// panics, never loops (every step consumes input) and allocates at most in
/// proportion to the input.
///
/// # Examples
///
/// ```
/// use roomcast_schema::decoder::{DynamicDecoder, ReflectionDialect};
/// // Reflection of `State { n: number }`, then a full state with n = 5.
/// let reflection = [
///     0x80, 0x01, 0xff, 0x01, 0x80, 0x00, 0x02, 0xff, 0x02, 0x80, 0x00, 0x82, 0x03, 0xff, 0x03,
///     0x80, 0x00, 0x04, 0xff, 0x04, 0x80, 0xa1, b'n', 0x81, 0xa6, b'n', b'u', b'm', b'b', b'e',
///     b'r',
/// ];
/// let mut decoder = DynamicDecoder::from_reflection(&reflection, ReflectionDialect::Auto)?;
/// decoder.decode(&[0x80, 0x05])?;
/// assert_eq!(decoder.to_json(), r#"{"n":5}"#);
/// # Ok::<(), roomcast_schema::wire::DecodeError>(())
/// ```
pub struct DynamicDecoder {
    types: TypeRegistry,
    nodes: Nodes,
    garbage: GarbageList,
    parser: Parser,
    callbacks: Callbacks,
    /// Reused buffer of the changes of one message (only while someone
    /// listens).
    recorded: Vec<Recorded>,
    /// Array semantics of `@colyseus/schema` 3.x / 4.x.
    legacy: bool,
}

impl fmt::Debug for DynamicDecoder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DynamicDecoder")
            .field("refs", &self.nodes.map.len())
            .finish_non_exhaustive()
    }
}

impl DynamicDecoder {
    /// A decoder for states described by `types`, holding an empty root.
    #[must_use]
    pub fn new(types: TypeRegistry) -> Self {
        let mut nodes = Nodes::default();
        let mut root = Node::new(Shape::Struct(types.root()), &mut nodes.fields, &types, 0);
        // The root is held by the decoder itself and never collected.
        root.rc.count = 1;
        nodes.map.insert(RefId::ROOT, root);
        Self {
            types,
            nodes,
            garbage: GarbageList::default(),
            parser: Parser::default(),
            callbacks: Callbacks::default(),
            recorded: Vec::new(),
            legacy: false,
        }
    }

    /// The structures, for a typed decoder building a snapshot of its
    /// state.
    pub(crate) fn nodes_mut(&mut self) -> &mut Nodes {
        &mut self.nodes
    }

    /// Decodes like the decoder of `@colyseus/schema` `dialect`: 5.x
    /// ([`Dialect::Modern`](crate::Dialect), the default) or 3.x / 4.x
    /// (colyseus 0.16 / 0.17 servers), whose decoder inserts on an ADD at an
    /// occupied array index only at index 0 (elsewhere it overwrites, spec
    /// `schema-wire.md` §14). A decoder built from legacy-form Reflection
    /// starts in the legacy dialect.
    pub fn set_dialect(&mut self, dialect: crate::Dialect) {
        self.legacy = dialect == crate::Dialect::Legacy;
    }

    /// A decoder for the types described by Reflection bytes (the handshake
    /// of JOIN_ROOM, spec §10).
    ///
    /// # Errors
    ///
    /// As [`decode_reflection`].
    pub fn from_reflection(bytes: &[u8], dialect: ReflectionDialect) -> Result<Self, DecodeError> {
        let mut decoder = Self::new(decode_reflection(bytes, dialect)?);
        if dialect == ReflectionDialect::Legacy {
            decoder.set_dialect(crate::Dialect::Legacy);
        }
        Ok(decoder)
    }

    /// The types this decoder decodes.
    #[must_use]
    pub fn types(&self) -> &TypeRegistry {
        &self.types
    }

    /// Number of structures held (the root included).
    #[must_use]
    pub fn ref_count(&self) -> usize {
        self.nodes.map.len()
    }

    /// Applies one message body (full state or patch).
    ///
    /// # Errors
    ///
    /// A [`DecodeError`] naming the first problem and its byte offset; the
    /// state is then unchanged.
    pub fn decode(&mut self, bytes: &[u8]) -> Result<(), DecodeError> {
        self.callbacks.merge();
        let recording = self.callbacks.is_active();
        // Primitive writes are made while parsing unless callbacks need
        // every change in message order.
        self.parser.eager = !recording;
        self.parser.parse(bytes, &self.types, &mut self.nodes)?;
        let mut apply = Apply {
            bytes,
            nodes: &mut self.nodes,
            garbage: &mut self.garbage,
            types: &self.types,
            created: &self.parser.created,
            map_sizes: &self.parser.map_sizes,
            recorded: recording.then_some(&mut self.recorded),
            compact: false,
            legacy: self.legacy,
        };
        apply.run(&self.parser.steps);
        if recording && !self.recorded.is_empty() {
            let recorded = std::mem::take(&mut self.recorded);
            let tree = Tree::dynamic(&self.nodes);
            self.callbacks.dispatch(&self.types, tree, &recorded);
            let mut recorded = recorded;
            recorded.clear();
            self.recorded = recorded;
        }
        collect_garbage(&mut self.nodes, &mut self.garbage, &mut self.callbacks);
        Ok(())
    }

    /// Lists the operations of a message body as they would apply to the
    /// current state, one line each (byte offset, refId, type, field name or
    /// key, operation, value), without applying anything; an invalid
    /// message lists the operations before the problem, then the error.
    ///
    /// # Errors
    ///
    /// As [`decode`](Self::decode) (the listing is written either way).
    ///
    /// # Examples
    ///
    /// ```
    /// use roomcast_schema::decoder::DynamicDecoder;
    /// use roomcast_schema::types::*;
    /// let types = TypeRegistry::new(
    ///     vec![TypeDef {
    ///         name: "State".into(),
    ///         extends: None,
    ///         fields: vec![FieldDef { name: "hp".into(), ty: FieldType::Primitive(Primitive::Uint8) }],
    ///     }],
    ///     TypeId(0),
    /// )?;
    /// let decoder = DynamicDecoder::new(types);
    /// let mut listing = String::new();
    /// decoder.explain(&[0x80, 42], &mut listing)?;
    /// assert_eq!(listing, "000000    #0 State.hp (field 0) ADD = 42\n");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn explain(&self, bytes: &[u8], out: &mut String) -> Result<(), DecodeError> {
        crate::decoder::explain::explain(&self.types, &self.nodes, bytes, out)
    }

    /// The root state.
    #[must_use]
    pub fn root(&self) -> NodeRef<'_> {
        self.node(RefId::ROOT)
            .unwrap_or_else(|| unreachable!("the root is never collected"))
    }

    /// The structure with this refId, if the decoder holds it.
    #[must_use]
    pub fn node(&self, id: RefId) -> Option<NodeRef<'_>> {
        NodeRef::new(&self.types, &self.nodes, id)
    }

    /// Registers change callbacks (see [`callbacks`](crate::decoder::callbacks)):
    /// `decoder.callbacks().listen(RefId::ROOT, "hp", |cx, hp, previous| …)`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::{Arc, Mutex};
    /// use roomcast_schema::decoder::{DynamicDecoder, RefId};
    /// use roomcast_schema::types::*;
    /// let types = TypeRegistry::new(
    ///     vec![TypeDef {
    ///         name: "State".into(),
    ///         extends: None,
    ///         fields: vec![FieldDef { name: "hp".into(), ty: FieldType::Primitive(Primitive::Uint8) }],
    ///     }],
    ///     TypeId(0),
    /// )?;
    /// let mut decoder = DynamicDecoder::new(types);
    /// let seen = Arc::new(Mutex::new(0.0));
    /// let sink = Arc::clone(&seen);
    /// decoder.callbacks().listen(RefId::ROOT, "hp", move |_cx, hp, _previous| {
    ///     *sink.lock().unwrap() = hp.and_then(|v| v.as_f64()).unwrap_or(0.0);
    /// })?;
    /// decoder.decode(&[0x80, 42])?;
    /// assert_eq!(*seen.lock().unwrap(), 42.0);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn callbacks(&mut self) -> Cx<'_> {
        Cx::new(
            &self.types,
            Tree::dynamic(&self.nodes),
            self.callbacks.staging(),
        )
    }

    /// The state as JSON, in the conventions of the test vectors: Schema
    /// instances and maps as objects with sorted keys (unset fields
    /// omitted), arrays, sets and collections as arrays, `$num` / `$bigint`
    /// escapes.
    ///
    /// A reference nested deeper than [`MAX_DEPTH`], or past a budget that
    /// only a state full of shared references reaches, prints as
    /// `{"$ref": refId}` (so a cyclic or exponentially shared state from a
    /// hostile server still prints in bounded time).
    #[must_use]
    pub fn to_json(&self) -> String {
        self.root().to_json()
    }
}

/// Applies validated steps; cannot fail.
struct Apply<'a, 'b> {
    bytes: &'a [u8],
    nodes: &'b mut Nodes,
    garbage: &'b mut GarbageList,
    types: &'b TypeRegistry,
    /// Shapes of the structures the message creates.
    created: &'b RefMap<Shape>,
    /// Entries the message gives the maps it creates, at most.
    map_sizes: &'b RefMap<u32>,
    recorded: Option<&'b mut Vec<Recorded>>,
    /// The current block may have left array holes.
    compact: bool,
    /// 3.x / 4.x array semantics.
    legacy: bool,
}

impl Apply<'_, '_> {
    fn run(&mut self, steps: &[Step]) {
        let mut current = RefId::ROOT;
        for &step in steps {
            match step {
                Step::Switch(id) => {
                    self.leave(current);
                    current = id;
                }
                Step::Field { op, index, value } => self.field(current, op, index, value),
                Step::Fields { start, end } => self.field_run(current, start, end),
                _ => {
                    self.compact = true;
                    self.collection_step(current, step);
                }
            }
        }
        self.leave(current);
    }

    fn collection_step(&mut self, current: RefId, step: Step) {
        {
            match step {
                Step::Switch(_) | Step::Field { .. } | Step::Fields { .. } => {}
                Step::Entry {
                    op,
                    index,
                    key,
                    value,
                } => self.entry(current, op, index, key, value),
                Step::Clear => self.clear(current),
                Step::Reverse => {
                    if let Some(NodeData::Array(items)) = self.data(current) {
                        items.reverse();
                    }
                }
                Step::DeleteByRefId(id) => self.delete_by_ref_id(current, id),
                Step::AddByRefId(id, value) => self.add_by_ref_id(current, id, value),
            }
        }
    }

    #[inline]
    fn data(&mut self, id: RefId) -> Option<&mut NodeData> {
        self.nodes.map.get_mut(id).map(|n| &mut n.data)
    }

    /// End of a structure's block: arrays drop their holes.
    #[inline]
    fn leave(&mut self, id: RefId) {
        if std::mem::take(&mut self.compact) {
            if let Some(NodeData::Array(items)) = self.data(id) {
                items.compact();
            }
        }
    }

    /// Turns a scalar into a value, creating the child structure on its
    /// first reference.
    fn value(&mut self, scalar: Scalar) -> Option<Value> {
        Some(match scalar {
            Scalar::Child { id, create } => {
                if create {
                    // Made by the parse pass (eager), or made here.
                    if self.nodes.map.get(id).is_none() {
                        if let Some(&shape) = self.created.get(id) {
                            self.nodes
                                .insert_new(id, shape, self.types, self.bytes.len());
                        }
                    }
                    if let Some(node) = self.nodes.map.get_mut(id) {
                        if let (NodeData::Map(m), Some(&n)) =
                            (&mut node.data, self.map_sizes.get(id))
                        {
                            m.entries.reserve(n as usize);
                        }
                        // Unreferenced until a slot takes it: collected at
                        // the end of the message unless one does.
                        self.garbage.track_new(id, &mut node.rc);
                    }
                }
                Value::Ref(id)
            }
            primitive => primitive.primitive_value(self.bytes, |s| Value::String(s.into()))?,
        })
    }

    /// Reference counting for a slot going from `prev` to `new`.
    #[inline]
    fn account(&mut self, prev: Option<&Value>, new: Option<&Value>) {
        self.account_ids(
            prev.and_then(Value::as_ref_id),
            new.and_then(Value::as_ref_id),
        );
    }

    /// Reference counting for a slot going from child `prev_ref` to child
    /// `new_ref`.
    fn account_ids(&mut self, prev_ref: Option<RefId>, new_ref: Option<RefId>) {
        if prev_ref == new_ref {
            return;
        }
        if let Some(p) = prev_ref {
            if let Some(node) = self.nodes.map.get_mut(p) {
                self.garbage.remove_ref(p, &mut node.rc);
            }
        }
        if let Some(n) = new_ref {
            if let Some(node) = self.nodes.map.get_mut(n) {
                GarbageList::add_ref(&mut node.rc);
            }
        }
    }

    fn record(&mut self, change: Recorded) {
        if let Some(rec) = self.recorded.as_deref_mut() {
            rec.push(change);
        }
    }

    #[inline]
    fn recording(&self) -> bool {
        self.recorded.is_some()
    }

    /// A run of primitive field writes (bytes validated by the parse
    /// pass, read again here).
    fn field_run(&mut self, current: RefId, start: u32, end: u32) {
        let bytes = self.bytes;
        let Some(head) = bytes.get(..end as usize) else {
            return;
        };
        // A reader over the message up to the end of the run, so that
        // string ranges are offsets in the message.
        let mut r = Reader::new(head);
        r.set_offset(start as usize);
        let Some(Shape::Struct(ty)) = self.nodes.map.get(current).map(|n| n.shape) else {
            return;
        };
        let defs = self.types.fields(ty);
        if self.recording() {
            while let Some(byte) = r.peek() {
                r.skip(1);
                let index = byte & 0x3f;
                let Some(FieldType::Primitive(p)) = defs.get(usize::from(index)).map(|f| f.ty)
                else {
                    return;
                };
                let Ok(value) = read_primitive(&mut r, p) else {
                    return;
                };
                self.field(current, byte & 0xc0, index, value);
            }
            return;
        }
        let Some(slots) = self.nodes.struct_slots(current) else {
            return;
        };
        let mut pos = start as usize;
        let end = end as usize;
        while pos < end {
            let byte = head[pos];
            let index = byte & 0x3f;
            let i = usize::from(index);
            let (Some(FieldType::Primitive(p)), Some(slot)) =
                (defs.get(i).map(|f| f.ty), slots.get_mut(i))
            else {
                return;
            };
            let value = match (p, head.get(pos + 1..pos + 5)) {
                // The common case, inline.
                (Primitive::Float32, Some(&[a, b, c, d])) => {
                    pos += 5;
                    Value::Number(f32::from_le_bytes([a, b, c, d]).into())
                }
                _ => {
                    r.set_offset(pos + 1);
                    let Ok(value) = read_primitive(&mut r, p) else {
                        return;
                    };
                    pos = r.offset();
                    if let (Some(s), Some(Value::String(buf))) = (value.str_in(bytes), &mut *slot) {
                        // Reuses the buffer of the previous value.
                        buf.set(s);
                        continue;
                    }
                    let Some(value) = value.primitive_value(bytes, |s| Value::String(s.into()))
                    else {
                        return;
                    };
                    value
                }
            };
            *slot = Some(value);
        }
    }

    fn field(&mut self, current: RefId, op: u8, index: u8, scalar: Scalar) {
        let i = usize::from(index);
        // Fast path: a number or boolean (its field holds no child, so no
        // reference counting).
        if !self.recording() && op != DELETE {
            let v = match scalar {
                Scalar::Bool(b) => Some(Value::Bool(b)),
                Scalar::Int(v) => Some(Value::Int(v)),
                Scalar::Uint(v) => Some(Value::Uint(v)),
                Scalar::Number(v) => Some(Value::Number(v)),
                Scalar::BigInt(v) => Some(Value::BigInt(v)),
                Scalar::BigUint(v) => Some(Value::BigUint(v)),
                Scalar::None | Scalar::Str { .. } | Scalar::Child { .. } => None,
            };
            if let Some(v) = v {
                if let Some(slot) = self
                    .nodes
                    .struct_slots(current)
                    .and_then(|fields| fields.get_mut(i))
                {
                    *slot = Some(v);
                }
                return;
            }
        }
        // Fast path: a primitive string reusing the buffer of the previous
        // value (no allocation in steady state).
        if let (Scalar::Str { start, len }, false) = (scalar, self.recording()) {
            let bytes = self.bytes;
            if let Some(fields) = self.nodes.struct_slots(current) {
                if let Some(Some(Value::String(s))) = fields.get_mut(i) {
                    let new = std::str::from_utf8(&bytes[start as usize..(start + len) as usize])
                        .unwrap_or_default();
                    s.set(new);
                    return;
                }
            }
        }
        let new = self.value(scalar);
        if let Some(Value::Ref(child)) = new {
            if let Some(node) = self.nodes.map.get_mut(child) {
                if matches!(node.shape, Shape::Collection(..)) {
                    node.owner = Some((current, index));
                }
            }
        }
        let recorded_new = if self.recorded.is_some() && op != DELETE {
            new.clone()
        } else {
            None
        };
        let Some(slot) = self
            .nodes
            .struct_slots(current)
            .and_then(|fields| fields.get_mut(i))
        else {
            return;
        };
        let new_ref = if op == DELETE {
            None
        } else {
            new.as_ref().and_then(Value::as_ref_id)
        };
        let prev = if op == DELETE {
            slot.take()
        } else {
            match new {
                Some(v) => slot.replace(v),
                None => slot.take(),
            }
        };
        let prev_ref = prev.as_ref().and_then(Value::as_ref_id);
        self.account_ids(prev_ref, new_ref);
        if self.recording() {
            let changed = match (&prev, &recorded_new) {
                (Some(p), Some(n)) => !p.js_same(n),
                (None, None) => false,
                _ => true,
            };
            // A collection replaced by another: its entries are removed.
            if let (Some(p), Some(n)) = (prev_ref, new_ref) {
                if p != n {
                    self.record_removal_of_all(p);
                }
            }
            if changed {
                self.record(Recorded::Field {
                    instance: current,
                    index,
                    value: recorded_new,
                    previous: prev,
                });
            }
        }
    }

    /// Records a removal for every entry of a collection (CLEAR, or the
    /// collection replaced in its field).
    fn record_removal_of_all(&mut self, collection: RefId) {
        let Some(rec) = self.recorded.as_deref_mut() else {
            return;
        };
        let Some(node) = self.nodes.map.get(collection) else {
            return;
        };
        match &node.data {
            NodeData::Struct(_) => {}
            NodeData::Map(m) => {
                for (k, v) in m.entries.iter() {
                    rec.push(Recorded::Removed {
                        collection,
                        key: Key::Str(Arc::from(k)),
                        value: v.clone(),
                    });
                }
            }
            NodeData::Array(items) => {
                for (i, v) in items.iter().enumerate() {
                    rec.push(Recorded::Removed {
                        collection,
                        key: Key::Index(i as u64),
                        value: v.clone(),
                    });
                }
            }
            NodeData::Indexed(entries) => {
                for (&i, v) in entries.iter() {
                    rec.push(Recorded::Removed {
                        collection,
                        key: Key::Index(u64::from(i)),
                        value: v.clone(),
                    });
                }
            }
        }
    }

    fn clear(&mut self, current: RefId) {
        self.record_removal_of_all(current);
        let removed: Vec<Value> = match self.data(current) {
            Some(NodeData::Map(m)) => {
                m.indexes.clear();
                m.entries.drain_values()
            }
            Some(NodeData::Array(items)) => items.take_all(),
            Some(NodeData::Indexed(entries)) => entries.drain_values(),
            Some(NodeData::Struct(_)) | None => Vec::new(),
        };
        for v in &removed {
            self.account(Some(v), None);
        }
    }

    fn entry(&mut self, current: RefId, op: u8, index: u32, key: u32, scalar: Scalar) {
        let new = self.value(scalar);
        let bytes = self.bytes;
        let new_ref = new.as_ref().and_then(Value::as_ref_id);
        let recording = self.recording();
        let Some(node) = self.nodes.map.get_mut(current) else {
            return;
        };
        if matches!(node.data, NodeData::Array(_)) {
            self.array_positional(current, op, u64::from(index), new);
            return;
        }
        let recorded_new = if recording { new.clone() } else { None };
        let (key, prev, stored) = match &mut node.data {
            NodeData::Map(m) => {
                let MapData { entries, indexes } = &mut **m;
                if op & ADD == ADD && key != NO_KEY {
                    // (Checked by the parse pass.) Each table builds its
                    // own copy of the key from the message (no allocation
                    // for a short key), and the map hashes the message's
                    // bytes: a key built once and then copied or hashed
                    // is read back before its bytes are written.
                    let kb = key_bytes_at(bytes, key);
                    let same = indexes
                        .get(RefId(index))
                        .is_some_and(|old| old.as_bytes() == kb);
                    if !same {
                        indexes.insert(RefId(index), Str::from_checked(kb));
                    }
                    let Some(v) = new else {
                        // (The parse pass gives every ADD a value.)
                        return;
                    };
                    let key = recording.then(|| Key::Str(Arc::from(key_at(bytes, key))));
                    let prev = entries.insert_with(
                        &KeyBytes(kb),
                        |k| k.as_bytes() == kb,
                        || Str::from_checked(kb),
                        v,
                    );
                    (key, prev, new_ref)
                } else if op == DELETE {
                    let Some(k) = indexes.remove(RefId(index)) else {
                        return;
                    };
                    let prev = entries.remove(&k);
                    (recording.then(|| Key::Str(Arc::from(&k))), prev, None)
                } else {
                    // REPLACE of an index the parse pass found.
                    let (Some(k), Some(v)) = (indexes.get(RefId(index)), new) else {
                        return;
                    };
                    let prev = match entries.get_mut(k) {
                        Some(slot) => Some(std::mem::replace(slot, v)),
                        None => entries.insert(k.clone(), v),
                    };
                    (recording.then(|| Key::Str(Arc::from(k))), prev, new_ref)
                }
            }
            NodeData::Indexed(entries) => {
                if op == DELETE {
                    let prev = entries.remove(&index);
                    (Some(Key::Index(u64::from(index))), prev, None)
                } else if entries.get(&index).is_some() {
                    // An index already present keeps its value (reference).
                    return;
                } else {
                    let Some(v) = new else { return };
                    entries.insert(index, v);
                    (Some(Key::Index(u64::from(index))), None, new_ref)
                }
            }
            NodeData::Array(_) | NodeData::Struct(_) => return,
        };
        self.account_ids(prev.as_ref().and_then(Value::as_ref_id), stored);
        if let (true, Some(key)) = (recording, key) {
            let new = if stored.is_some() || op != DELETE {
                recorded_new
            } else {
                None
            };
            self.record_entry(current, op, key, prev.as_ref(), new);
        }
    }

    /// Array operations with a wire index (spec §5.1).
    fn array_positional(&mut self, current: RefId, op: u8, i: u64, new: Option<Value>) {
        let legacy = self.legacy;
        let Some(NodeData::Array(items)) = self.data(current) else {
            return;
        };
        let prev = items.get(i).cloned();
        match op {
            DELETE => {
                let removed = items.delete(i);
                self.account(removed.as_ref(), None);
                self.record_entry(current, op, Key::Index(i), removed.as_ref(), None);
            }
            DELETE_AND_MOVE => {
                // Hole at `i`, then splice it out and overwrite what slid in.
                let removed = items.delete(i);
                let mut shifted = None;
                if let Some(v) = &new {
                    if !prev.as_ref().is_some_and(|p| p.js_same(v)) {
                        items.remove(i);
                        shifted = items.set(i, v.clone());
                    }
                }
                self.account(removed.as_ref(), None);
                self.account(shifted.as_ref(), None);
                if !prev
                    .as_ref()
                    .zip(new.as_ref())
                    .is_some_and(|(p, v)| p.js_same(v))
                {
                    self.account(None, new.as_ref());
                }
                self.record_entry(current, op, Key::Index(i), removed.as_ref(), new);
            }
            _ => {
                let Some(v) = new else { return };
                if prev.as_ref().is_some_and(|p| p.js_same(&v)) {
                    // The very value already there: nothing happens.
                    return;
                }
                if op == ADD && prev.is_some() && (i == 0 || !legacy) {
                    // ADD at an occupied index inserts (3.x / 4.x: only at
                    // index 0).
                    items.insert(i, v.clone());
                    self.account(None, Some(&v));
                    self.record_entry(current, op, Key::Index(i), None, Some(v));
                } else {
                    let old = items.set(i, v.clone());
                    // 3.x / 4.x do not release what an ADD overwrites.
                    let released = if legacy && op == ADD {
                        None
                    } else {
                        old.as_ref()
                    };
                    self.account(released, Some(&v));
                    self.record_entry(current, op, Key::Index(i), old.as_ref(), Some(v));
                }
            }
        }
    }

    fn delete_by_ref_id(&mut self, current: RefId, id: RefId) {
        let Some(NodeData::Array(items)) = self.data(current) else {
            return;
        };
        let Some(i) = items.position(|v| *v == Value::Ref(id)) else {
            return;
        };
        let removed = items.delete(i);
        // 3.x / 4.x keep the reference (a leak the next messages of such a
        // server may rely on: they can still address the refId).
        if !self.legacy {
            self.account(removed.as_ref(), None);
        }
        self.record_entry(current, DELETE, Key::Index(i), removed.as_ref(), None);
    }

    fn add_by_ref_id(&mut self, current: RefId, id: RefId, scalar: Scalar) {
        let new = self.value(scalar);
        let Some(NodeData::Array(items)) = self.data(current) else {
            return;
        };
        let i = items
            .position(|v| *v == Value::Ref(id))
            .unwrap_or_else(|| items.len());
        // ADD_BY_REFID overwrites the position it resolves to.
        self.array_positional(current, ADD_BY_REFID, i, new);
    }

    /// Records a collection entry change (see [`callbacks::record_entry`](crate::decoder::callbacks)).
    fn record_entry(
        &mut self,
        collection: RefId,
        op: u8,
        key: Key,
        prev: Option<&Value>,
        new: Option<Value>,
    ) {
        if let Some(rec) = self.recorded.as_deref_mut() {
            crate::decoder::callbacks::record_entry(rec, collection, op, key, prev, new);
        }
    }
}

/// Forgets the structures whose count is still zero at the end of the
/// message, cascading to their children.
pub(crate) fn collect_garbage(
    nodes: &mut Nodes,
    garbage: &mut GarbageList,
    callbacks: &mut Callbacks,
) {
    if garbage.is_empty() {
        return;
    }
    let mut i = 0;
    while let Some(id) = garbage.get(i) {
        i += 1;
        if id == RefId::ROOT {
            continue;
        }
        let collect = nodes
            .map
            .get(id)
            .is_some_and(|n| n.rc.pending && n.rc.count == 0);
        if !collect {
            continue;
        }
        let Some(node) = nodes.remove(id) else {
            continue;
        };
        node.for_each_child(&nodes.fields, |child| {
            if let Some(c) = nodes.map.get_mut(child) {
                garbage.remove_ref(child, &mut c.rc);
            }
        });
        nodes.release(&node);
        callbacks.forget(id);
    }
    garbage.clear();
}

/// What a structure is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum NodeKind {
    /// A Schema struct instance of this type.
    Struct(TypeId),
    /// A `MapSchema`.
    Map,
    /// An `ArraySchema`.
    Array,
    /// A `SetSchema`.
    Set,
    /// A `CollectionSchema`.
    Collection,
}

/// A borrowed view of one structure of a [`DynamicDecoder`].
#[derive(Clone, Copy)]
pub struct NodeRef<'a> {
    types: &'a TypeRegistry,
    nodes: &'a Nodes,
    id: RefId,
    node: &'a Node,
}

impl fmt::Debug for NodeRef<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NodeRef")
            .field("id", &self.id)
            .field("kind", &self.kind())
            .finish()
    }
}

/// A value read through a [`NodeRef`]: a primitive, or a child structure.
#[derive(Debug, Clone, Copy)]
pub enum ValueRef<'a> {
    /// A primitive value.
    Primitive(&'a Value),
    /// A child struct instance or collection.
    Node(NodeRef<'a>),
}

impl<'a> ValueRef<'a> {
    /// The primitive, if this is one.
    #[must_use]
    pub fn primitive(self) -> Option<&'a Value> {
        match self {
            Self::Primitive(v) => Some(v),
            Self::Node(_) => None,
        }
    }

    /// The child structure, if this is one.
    #[must_use]
    pub fn node(self) -> Option<NodeRef<'a>> {
        match self {
            Self::Node(n) => Some(n),
            Self::Primitive(_) => None,
        }
    }
}

impl<'a> NodeRef<'a> {
    pub(crate) fn new(types: &'a TypeRegistry, nodes: &'a Nodes, id: RefId) -> Option<Self> {
        let node = nodes.map.get(id)?;
        Some(Self {
            types,
            nodes,
            id,
            node,
        })
    }

    fn resolve(&self, v: &'a Value) -> Option<ValueRef<'a>> {
        match *v {
            Value::Ref(id) => Self::new(self.types, self.nodes, id).map(ValueRef::Node),
            ref v => Some(ValueRef::Primitive(v)),
        }
    }

    /// The structure's refId.
    #[must_use]
    pub fn id(&self) -> RefId {
        self.id
    }

    /// What the structure is.
    #[must_use]
    pub fn kind(&self) -> NodeKind {
        match self.node.shape {
            Shape::Struct(t) => NodeKind::Struct(t),
            Shape::Collection(CollectionKind::Map, _) => NodeKind::Map,
            Shape::Collection(CollectionKind::Array, _) => NodeKind::Array,
            Shape::Collection(CollectionKind::Set, _) => NodeKind::Set,
            Shape::Collection(CollectionKind::Collection, _) => NodeKind::Collection,
        }
    }

    /// The element type of a collection.
    #[must_use]
    pub fn element_type(&self) -> Option<ElementType> {
        match self.node.shape {
            Shape::Collection(_, e) => Some(e),
            Shape::Struct(_) => None,
        }
    }

    /// Number of set fields (struct) or entries (collection).
    #[must_use]
    pub fn len(&self) -> usize {
        match &self.node.data {
            NodeData::Struct(span) => self.nodes.fields.get(*span).iter().flatten().count(),
            NodeData::Map(m) => m.entries.len(),
            NodeData::Array(items) => items.count(),
            NodeData::Indexed(entries) => entries.len(),
        }
    }

    /// Whether no field is set / the collection is empty.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A struct field by name (`None` when unset or not a struct).
    #[must_use]
    pub fn field(&self, name: &str) -> Option<ValueRef<'a>> {
        let Shape::Struct(t) = self.node.shape else {
            return None;
        };
        let index = self.types.fields(t).iter().position(|f| f.name == name)?;
        self.field_at(index)
    }

    /// A struct field by wire index.
    #[must_use]
    pub fn field_at(&self, index: usize) -> Option<ValueRef<'a>> {
        match &self.node.data {
            NodeData::Struct(span) => {
                self.resolve(self.nodes.fields.get(*span).get(index)?.as_ref()?)
            }
            _ => None,
        }
    }

    /// A map entry by key.
    #[must_use]
    pub fn get(&self, key: &str) -> Option<ValueRef<'a>> {
        match &self.node.data {
            NodeData::Map(m) => self.resolve(m.entries.get(&Str::from(key))?),
            _ => None,
        }
    }

    /// The `i`-th element (array position, or set / collection iteration
    /// order).
    #[must_use]
    pub fn at(&self, i: usize) -> Option<ValueRef<'a>> {
        match &self.node.data {
            NodeData::Array(items) => self.resolve(items.iter().nth(i)?),
            NodeData::Indexed(entries) => self.resolve(entries.values().nth(i)?),
            _ => None,
        }
    }

    /// Entries in order: `(field name | map key | position, value)`.
    pub fn entries(&self) -> impl Iterator<Item = (Key, ValueRef<'a>)> + 'a {
        let this = *self;
        let fields: Vec<(Key, &'a Value)> = match &self.node.data {
            NodeData::Struct(span) => {
                let Shape::Struct(t) = self.node.shape else {
                    unreachable!()
                };
                let defs = self.types.fields(t);
                self.nodes
                    .fields
                    .get(*span)
                    .iter()
                    .enumerate()
                    .filter_map(|(i, v)| {
                        Some((Key::Str(defs.get(i)?.name.as_str().into()), v.as_ref()?))
                    })
                    .collect()
            }
            NodeData::Map(m) => m
                .entries
                .iter()
                .map(|(k, v)| (Key::Str(Arc::from(k)), v))
                .collect(),
            NodeData::Array(items) => items
                .iter()
                .enumerate()
                .map(|(i, v)| (Key::Index(i as u64), v))
                .collect(),
            NodeData::Indexed(entries) => entries
                .values()
                .enumerate()
                .map(|(i, v)| (Key::Index(i as u64), v))
                .collect(),
        };
        fields
            .into_iter()
            .filter_map(move |(k, v)| Some((k, this.resolve(v)?)))
    }

    /// This structure as JSON (see [`DynamicDecoder::to_json`]).
    #[must_use]
    pub fn to_json(&self) -> String {
        let mut out = String::new();
        let mut budget = 64 * self.nodes.map.len() + 65_536;
        write_node_json(&mut out, self.types, self.nodes, self.id, 0, &mut budget);
        out
    }
}

fn write_value_json(
    out: &mut String,
    types: &TypeRegistry,
    nodes: &Nodes,
    v: &Value,
    depth: usize,
    budget: &mut usize,
) {
    match *v {
        Value::Ref(id) => write_node_json(out, types, nodes, id, depth + 1, budget),
        ref v => write_primitive_json(out, v),
    }
}

fn write_node_json(
    out: &mut String,
    types: &TypeRegistry,
    nodes: &Nodes,
    id: RefId,
    depth: usize,
    budget: &mut usize,
) {
    let Some(node) = nodes.map.get(id) else {
        out.push_str("null");
        return;
    };
    if depth > MAX_DEPTH || *budget == 0 {
        out.push_str(&format!("{{\"$ref\":{}}}", id.0));
        return;
    }
    *budget -= 1;
    match &node.data {
        NodeData::Struct(span) => {
            let Shape::Struct(t) = node.shape else { return };
            let defs = types.fields(t);
            let mut set: Vec<(&str, &Value)> = nodes
                .fields
                .get(*span)
                .iter()
                .enumerate()
                .filter_map(|(i, v)| Some((defs.get(i)?.name.as_str(), v.as_ref()?)))
                .collect();
            set.sort_by(|a, b| js_key_order(a.0, b.0));
            write_object(out, types, nodes, set, depth, budget);
        }
        NodeData::Map(m) => {
            let mut set: Vec<(&str, &Value)> = m.entries.iter().map(|(k, v)| (&**k, v)).collect();
            set.sort_by(|a, b| js_key_order(a.0, b.0));
            write_object(out, types, nodes, set, depth, budget);
        }
        NodeData::Array(items) => write_array(out, types, nodes, items.iter(), depth, budget),
        NodeData::Indexed(entries) => {
            write_array(out, types, nodes, entries.values(), depth, budget);
        }
    }
}

fn write_object(
    out: &mut String,
    types: &TypeRegistry,
    nodes: &Nodes,
    entries: Vec<(&str, &Value)>,
    depth: usize,
    budget: &mut usize,
) {
    out.push('{');
    for (i, (k, v)) in entries.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_json_str(out, k);
        out.push(':');
        write_value_json(out, types, nodes, v, depth, budget);
    }
    out.push('}');
}

fn write_array<'v>(
    out: &mut String,
    types: &TypeRegistry,
    nodes: &Nodes,
    values: impl Iterator<Item = &'v Value>,
    depth: usize,
    budget: &mut usize,
) {
    out.push('[');
    for (i, v) in values.enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_value_json(out, types, nodes, v, depth, budget);
    }
    out.push(']');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arena_runs_are_reused_by_length() {
        let mut arena = FieldArena::default();
        let a = arena.alloc(5, 0);
        let b = arena.alloc(3, 0);
        arena.get_mut(a)[0] = Some(Value::Int(1));
        arena.get_mut(b)[2] = Some(Value::String("x".into()));
        assert_eq!(arena.get(b)[2], Some(Value::String("x".into())));
        arena.free(a);
        // Freed runs come back empty, for a struct of the same length only.
        let c = arena.alloc(3, 0);
        assert_ne!(c, a);
        let d = arena.alloc(5, 0);
        assert_eq!(d, a);
        assert!(arena.get(d).iter().all(Option::is_none));
        assert_eq!(arena.get(b)[2], Some(Value::String("x".into())));
    }

    #[test]
    fn nodes_stay_small() {
        assert!(std::mem::size_of::<Node>() <= 48);
        assert!(std::mem::size_of::<Option<Value>>() <= 16);
    }
}
