//! The typed decoder's fast path: the common messages decoded in one pass,
//! by code compiled for the state's own types.
//!
//! A typed decoder gives every message here first. Each
//! structure's block is read by code generated for its Rust type
//! (`#[derive(Schema)]` implements [`FastNode`], this module
//! [`FastField`] for primitives, `Option` and the collections): a field
//! operation is a `match` on the field index that reads the value straight
//! into the Rust field, a map `ADD` inserts into the `MapSchema` at once,
//! and consecutive blocks of one collection's elements are reached without
//! walking from the root again. Nothing goes through a dynamic value or a
//! trait object.
//!
//! It covers what servers send most: primitive field changes, new
//! structures in fields, new map entries. On anything else — a deletion, a
//! replaced child, a set, collection or array element operation, a moved or
//! shared structure, a value the Rust type cannot hold, malformed bytes —
//! it puts back what it wrote (an undo record per change to a structure
//! that existed before the message; structures the message made are
//! removed) and leaves the message to the general path (`direct.rs`),
//! which validates it, reports its errors and applies it. So the fast path
//! never decides what a message means: it only applies the messages the
//! general path would apply the same way.

use std::any::TypeId as RustTypeId;

use crate::collections::MapSchema;
use crate::decoder::base::parse::{read_primitive, size_hint, Shape, STRUCT_BYTES};
use crate::decoder::base::reference_tracker::{RefId, RefMap};
use crate::decoder::base::undo::UndoLog;
use crate::decoder::direct::{descend, path_to, steps_up, Lean, LeanData, Lookup, Place};
use crate::decoder::typed::{DecodeField, DecodeNode, FieldInput};
use crate::decoder::{Str, Value};
use crate::schema::Field;
use crate::types::{ElementType, FieldType, Primitive, TypeId, TypeRegistry};
use crate::wire::spec::{ADD, DELETE, SWITCH_TO_STRUCTURE, TYPE_ID};
use crate::wire::Reader;

/// The fast path does not take the message (the general path will).
#[doc(hidden)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bail;

impl From<crate::wire::DecodeError> for Bail {
    #[inline]
    fn from(_: crate::wire::DecodeError) -> Self {
        Self
    }
}

/// One change of the fast path, to put back if it bails.
#[derive(Debug)]
pub(crate) enum Undo {
    /// Struct `parent` got the new child `id` in field `index`.
    Child { parent: RefId, index: u8, id: RefId },
    /// Map `map` got wire index `index`, an entry at `handle` (holding the
    /// new child `child`, if any).
    MapAdd {
        map: RefId,
        index: u32,
        handle: u32,
        child: Option<RefId>,
    },
}

/// The fast path's state while it reads a message.
#[doc(hidden)]
pub struct FastCx<'a> {
    r: Reader<'a>,
    types: &'a TypeRegistry,
    rust_types: &'a [Option<RustTypeId>],
    nodes: &'a mut RefMap<Lean>,
    log: &'a mut Vec<Undo>,
    /// The old values of the fields written (structures that existed
    /// before the message), as the parse pass logs its own writes.
    undo: &'a mut UndoLog,
    /// This message's number (see [`Lean::born`]).
    seq: u64,
    /// The structure of the current block.
    current: RefId,
    /// Whether the current block's struct existed before the message (its
    /// changes get undo records).
    logged: bool,
    /// Whether the state was the initial one before the message (a
    /// message that bails then resets it: no undo records at all).
    pristine: bool,
    /// The end of the message was reached.
    done: bool,
}

/// A struct or enum the fast path decodes into. Implemented by
/// `#[derive(Schema)]`; not meant to be implemented or called by hand.
#[doc(hidden)]
pub trait FastNode: crate::decoder::DecodeStruct {
    /// Runs the block of the structure at the end of `path` (each step
    /// with the refId it reaches), `me` being this value's refId.
    fn __fast_at(
        &mut self,
        me: RefId,
        path: &[(Place, RefId)],
        cx: &mut FastCx<'_>,
    ) -> Result<(), Bail>;

    /// Applies one operation on field `index` (renumbered past inherited
    /// fields; `wire` is the index on the wire), whose byte was read.
    fn __fast_field(
        &mut self,
        wire: u8,
        index: u8,
        op: u8,
        ty: FieldType,
        cx: &mut FastCx<'_>,
    ) -> Result<(), Bail>;
}

/// A field or element type the fast path decodes into. Implemented for
/// primitives, `Option`, the collections and (through [`FastNode`])
/// `#[derive(Schema)]` types; not meant to be implemented or called by
/// hand.
#[doc(hidden)]
pub trait FastField: DecodeField {
    /// Reads a value of wire type `p` into `self`.
    #[inline]
    fn __fast_read(&mut self, r: &mut Reader<'_>, p: Primitive) -> Result<(), Bail> {
        let v = read_value(r, p)?;
        if self.__decode_assign(&v) {
            Ok(())
        } else {
            Err(Bail)
        }
    }

    /// Records that field `index` of the current struct holds this value,
    /// of wire type `p` (to put it back if the message is rejected).
    #[inline]
    fn __fast_log(&self, cx: &mut FastCx<'_>, index: u8, p: Primitive) {
        cx.undo.push(cx.current, index, self.__decode_value(p));
    }

    /// A new value read as wire type `p` (a collection element).
    #[inline]
    fn __fast_new(r: &mut Reader<'_>, p: Primitive) -> Result<Self, Bail> {
        Self::__decode_primitive(&read_value(r, p)?).ok_or(Bail)
    }

    /// [`FastNode::__fast_at`] on the structure this value holds.
    #[inline]
    fn __fast_at(
        &mut self,
        me: RefId,
        path: &[(Place, RefId)],
        cx: &mut FastCx<'_>,
    ) -> Result<(), Bail> {
        let _ = (me, path, cx);
        Err(Bail)
    }
}

/// A primitive of wire type `p` as a decoded value.
fn read_value(r: &mut Reader<'_>, p: Primitive) -> Result<Value, Bail> {
    let s = read_primitive(r, p)?;
    s.primitive_value(r.buffer(), |s| Value::String(Str::from(s)))
        .ok_or(Bail)
}

impl<T: FastNode> FastField for T {
    #[inline]
    fn __fast_at(
        &mut self,
        me: RefId,
        path: &[(Place, RefId)],
        cx: &mut FastCx<'_>,
    ) -> Result<(), Bail> {
        FastNode::__fast_at(self, me, path, cx)
    }
}

impl<T: FastField> FastField for Option<T> {
    #[inline]
    fn __fast_read(&mut self, r: &mut Reader<'_>, p: Primitive) -> Result<(), Bail> {
        match self {
            Some(v) => v.__fast_read(r, p),
            None => {
                *self = Some(T::__fast_new(r, p)?);
                Ok(())
            }
        }
    }

    #[inline]
    fn __fast_new(r: &mut Reader<'_>, p: Primitive) -> Result<Self, Bail> {
        T::__fast_new(r, p).map(Some)
    }

    #[inline]
    fn __fast_log(&self, cx: &mut FastCx<'_>, index: u8, p: Primitive) {
        match self {
            Some(v) => v.__fast_log(cx, index, p),
            None => cx.undo.push(cx.current, index, None),
        }
    }

    #[inline]
    fn __fast_at(
        &mut self,
        me: RefId,
        path: &[(Place, RefId)],
        cx: &mut FastCx<'_>,
    ) -> Result<(), Bail> {
        self.as_mut().ok_or(Bail)?.__fast_at(me, path, cx)
    }
}

/// Numbers: their own wire type read straight in, others through a value;
/// the old value logged as the value kind that holds it exactly (a
/// patch moving every entity logs two per entity: no match on the wire
/// type).
macro_rules! fast_numbers {
    ($($t:ty => $p:ident, $read:ident, $old:expr;)*) => {$(
        impl FastField for $t {
            #[inline]
            fn __fast_log(&self, cx: &mut FastCx<'_>, index: u8, _: Primitive) {
                let old: fn($t) -> Value = $old;
                cx.undo.push(cx.current, index, Some(old(*self)));
            }

            #[inline]
            fn __fast_read(&mut self, r: &mut Reader<'_>, p: Primitive) -> Result<(), Bail> {
                *self = Self::__fast_new(r, p)?;
                Ok(())
            }

            #[inline]
            fn __fast_new(r: &mut Reader<'_>, p: Primitive) -> Result<Self, Bail> {
                if p == Primitive::$p {
                    Ok(r.$read()?)
                } else {
                    Self::__decode_primitive(&read_value(r, p)?).ok_or(Bail)
                }
            }
        }
    )*};
}

fast_numbers! {
    i8 => Int8, decode_i8, |v| Value::Int(v.into());
    u8 => Uint8, decode_u8, |v| Value::Int(v.into());
    i16 => Int16, decode_i16, |v| Value::Int(v.into());
    u16 => Uint16, decode_u16, |v| Value::Int(v.into());
    i32 => Int32, decode_i32, |v| Value::Int(v.into());
    u32 => Uint32, decode_u32, |v| Value::Int(v.into());
    i64 => Int64, decode_i64, Value::Int;
    u64 => Uint64, decode_u64, Value::Uint;
    f32 => Float32, decode_f32, |v| Value::Number(v.into());
    f64 => Float64, decode_f64, Value::Number;
}

impl FastField for bool {
    #[inline]
    fn __fast_new(r: &mut Reader<'_>, p: Primitive) -> Result<Self, Bail> {
        if p == Primitive::Boolean {
            Ok(r.decode_bool()?)
        } else {
            Err(Bail)
        }
    }
}

impl FastField for String {
    #[inline]
    fn __fast_read(&mut self, r: &mut Reader<'_>, p: Primitive) -> Result<(), Bail> {
        if p != Primitive::String {
            return Err(Bail);
        }
        let s = r.decode_str()?;
        self.clear();
        self.push_str(s);
        Ok(())
    }

    #[inline]
    fn __fast_new(r: &mut Reader<'_>, p: Primitive) -> Result<Self, Bail> {
        if p == Primitive::String {
            Ok(r.decode_str()?.to_owned())
        } else {
            Err(Bail)
        }
    }
}

impl<V: FastField + Field> FastField for MapSchema<V> {
    #[inline]
    fn __fast_at(
        &mut self,
        me: RefId,
        path: &[(Place, RefId)],
        cx: &mut FastCx<'_>,
    ) -> Result<(), Bail> {
        match path.split_first() {
            None => map_block(self, me, cx)?,
            Some((&(Place::Entry(h), id), rest)) => {
                self.inner
                    .value_at_place(h)
                    .ok_or(Bail)?
                    .__fast_at(id, rest, cx)?;
            }
            Some(_) => return Err(Bail),
        }
        // The blocks of this map's elements that follow: no walk from the
        // root (a patch changing every entity of a map).
        while !cx.done {
            let id = cx.current;
            let Some(&Lean {
                parent,
                place: Place::Entry(h),
                ..
            }) = cx.nodes.get(id)
            else {
                break;
            };
            if parent != me {
                break;
            }
            self.inner
                .value_at_place(h)
                .ok_or(Bail)?
                .__fast_at(id, &[], cx)?;
        }
        Ok(())
    }
}

macro_rules! fast_other_collections {
    ($($c:ident),*) => {$(
        /// Only their creation (their element operations bail).
        impl<V: FastField + Field> FastField for crate::collections::$c<V> {
            #[inline]
            fn __fast_at(
                &mut self,
                _me: RefId,
                path: &[(Place, RefId)],
                cx: &mut FastCx<'_>,
            ) -> Result<(), Bail> {
                if path.is_empty() {
                    cx.empty_block()
                } else {
                    Err(Bail)
                }
            }
        }
    )*};
}

fast_other_collections!(ArraySchema, SetSchema, CollectionSchema);

impl FastCx<'_> {
    /// The end of a block: the end of the message, or a switch (read, the
    /// new current structure set).
    #[inline]
    fn end_or_switch(&mut self) -> Result<(), Bail> {
        match self.r.peek() {
            None => {
                self.done = true;
                Ok(())
            }
            Some(SWITCH_TO_STRUCTURE) => {
                self.r.skip(1);
                let id = RefId(self.r.decode_varint()?);
                let node = self.nodes.get(id).ok_or(Bail)?;
                self.logged = !self.pristine && node.born != self.seq;
                self.current = id;
                Ok(())
            }
            Some(_) => Err(Bail),
        }
    }

    /// A block that must hold no operation.
    fn empty_block(&mut self) -> Result<(), Bail> {
        self.end_or_switch()
    }

    /// Reads the refId (and type id) of a new child of declared type `ty`
    /// after operation `op`: its shape (`Err` if it is not new, or not of
    /// that type).
    #[inline]
    fn new_child(&mut self, op: u8, ty: FieldType) -> Result<(RefId, Shape), Bail> {
        if op & ADD != ADD {
            return Err(Bail);
        }
        let id = RefId(self.r.decode_varint()?);
        let type_id = if let FieldType::Schema(_) = ty {
            if self.r.peek() == Some(TYPE_ID) {
                self.r.skip(1);
                Some(self.r.decode_varint()?)
            } else {
                None
            }
        } else {
            None
        };
        if self.nodes.contains(id) {
            // A move, or a structure shared by two.
            return Err(Bail);
        }
        let shape = match ty {
            FieldType::Schema(base) => {
                let t = match type_id {
                    Some(tid) => TypeId(tid),
                    None => base,
                };
                if (t.0 as usize) >= self.types.len() || !self.types.is_a(t, base) {
                    return Err(Bail);
                }
                Shape::Struct(t)
            }
            FieldType::Collection(kind, elem) => Shape::Collection(kind, elem),
            FieldType::Primitive(_) | FieldType::Quantized(_) => return Err(Bail),
        };
        Ok((id, shape))
    }

    /// The Rust value of a new structure of this shape.
    #[inline]
    fn new_value<F: DecodeField>(&self, shape: Shape) -> Result<F, Bail> {
        let rust = match shape {
            Shape::Struct(t) => Some(
                self.rust_types
                    .get(t.0 as usize)
                    .copied()
                    .flatten()
                    .ok_or(Bail)?,
            ),
            Shape::Collection(..) => None,
        };
        F::__decode_new(rust).ok_or(Bail)
    }

    /// Records new structure `id`.
    #[inline]
    fn made(&mut self, id: RefId, shape: Shape, parent: RefId, place: Place) {
        let mut node = Lean::new(shape, parent, place);
        node.born = self.seq;
        if id.0 as usize >= self.nodes.dense_len() {
            self.nodes
                .reserve_dense(size_hint(self.r.remaining(), STRUCT_BYTES));
        }
        self.nodes.insert(id, node);
    }

    /// One operation on field `wire` of the current struct, held by
    /// `slot`, of declared type `ty` (the operation byte read).
    #[inline]
    pub fn field<F: FastField>(
        &mut self,
        slot: &mut F,
        wire: u8,
        op: u8,
        ty: FieldType,
    ) -> Result<(), Bail> {
        if op == DELETE {
            return Err(Bail);
        }
        if let FieldType::Primitive(p) = ty {
            if self.logged {
                slot.__fast_log(self, wire, p);
            }
            return slot.__fast_read(&mut self.r, p);
        }
        let (id, shape) = self.new_child(op, ty)?;
        let parent = self.current;
        let node = self.nodes.get(parent).ok_or(Bail)?;
        if node.children().iter().any(|c| c.0 == wire) {
            // A child replaced (released with its subtree).
            return Err(Bail);
        }
        *slot = self.new_value(shape)?;
        self.nodes
            .get_mut(parent)
            .and_then(Lean::children_mut)
            .ok_or(Bail)?
            .push((wire, id));
        if !self.pristine {
            self.log.push(Undo::Child {
                parent,
                index: wire,
                id,
            });
        }
        self.made(id, shape, parent, Place::Field(wire));
        Ok(())
    }
}

/// The operations of a struct block, into `n`.
#[inline]
pub fn struct_block<N: FastNode>(n: &mut N, cx: &mut FastCx<'_>) -> Result<(), Bail> {
    let types = cx.types;
    let Some(&Lean {
        shape: Shape::Struct(ty),
        ..
    }) = cx.nodes.get(cx.current)
    else {
        return Err(Bail);
    };
    let defs = types.fields(ty);
    loop {
        match cx.r.peek() {
            None | Some(SWITCH_TO_STRUCTURE) => return cx.end_or_switch(),
            Some(byte) => {
                cx.r.skip(1);
                let index = byte & 0x3f;
                let def = defs.get(usize::from(index)).ok_or(Bail)?;
                n.__fast_field(index, index, byte & 0xc0, def.ty, cx)?;
            }
        }
    }
}

/// The operations of a map block: new entries only.
fn map_block<V: FastField + Field>(
    map: &mut MapSchema<V>,
    me: RefId,
    cx: &mut FastCx<'_>,
) -> Result<(), Bail> {
    let Some(&Lean {
        shape: Shape::Collection(_, elem),
        ..
    }) = cx.nodes.get(me)
    else {
        return Err(Bail);
    };
    loop {
        let op = match cx.r.peek() {
            None | Some(SWITCH_TO_STRUCTURE) => return cx.end_or_switch(),
            Some(op) => op,
        };
        if op != ADD {
            return Err(Bail);
        }
        cx.r.skip(1);
        let index = cx.r.decode_varint()?;
        let key = cx.r.decode_str()?;
        let remaining = cx.r.remaining();
        let Some(LeanData::Map(m)) = cx.nodes.get_mut(me).and_then(Lean::data_mut) else {
            return Err(Bail);
        };
        // (An index already there: a replaced entry.)
        if m.indexes.contains(RefId(index)) || !m.orphans.is_empty() {
            return Err(Bail);
        }
        if map.is_empty() && m.indexes.len() == 0 {
            // A map the message fills: room for its entries at once.
            let per = match elem {
                ElementType::Primitive(_) => 4,
                ElementType::Schema(_) => STRUCT_BYTES,
            };
            let n = size_hint(remaining, per);
            map.reserve(n);
            m.indexes.reserve_dense(n);
        }
        let (value, child) = match elem {
            ElementType::Primitive(p) => (V::__fast_new(&mut cx.r, p)?, None),
            ElementType::Schema(base) => {
                let (id, shape) = cx.new_child(op, FieldType::Schema(base))?;
                (cx.new_value::<V>(shape)?, Some((id, shape)))
            }
        };
        // (A key already there: a replaced entry.)
        let handle = map.insert_absent(key, value).ok_or(Bail)?;
        let Some(LeanData::Map(m)) = cx.nodes.get_mut(me).and_then(Lean::data_mut) else {
            return Err(Bail);
        };
        m.indexes
            .insert(RefId(index), Str::from_checked(key.as_bytes()));
        if let Some((id, _)) = child {
            if handle as usize >= m.children.dense_len() {
                m.children
                    .reserve_dense(size_hint(cx.r.remaining(), STRUCT_BYTES));
            }
            m.children.insert(RefId(handle), id);
        }
        if !cx.pristine {
            cx.log.push(Undo::MapAdd {
                map: me,
                index,
                handle,
                child: child.map(|c| c.0),
            });
        }
        if let Some((id, shape)) = child {
            cx.made(id, shape, me, Place::Entry(handle));
        }
    }
}

/// The steps from the root down to `id`, each with the refId it reaches;
/// `false` when `T` does not hold `id` (or it is deeper than
/// [`MAX_DEPTH`](crate::decoder::MAX_DEPTH)).
fn path_with_ids(nodes: &RefMap<Lean>, id: RefId, path: &mut Vec<(Place, RefId)>) -> bool {
    path.clear();
    let found = steps_up(nodes, id, |p, id| path.push((p, id)));
    path.reverse();
    found
}

/// The fast path's own state, kept by the typed decoder.
#[derive(Debug)]
pub(crate) struct Fast {
    /// No message has changed the state yet (see [`FastCx::pristine`]);
    /// the decoder clears it when the general path applies one.
    pub(crate) pristine: bool,
    /// Messages applied (tests).
    pub(crate) applied: u64,
    seq: u64,
    log: Vec<Undo>,
    undo: UndoLog,
    path: Vec<(Place, RefId)>,
    places: Vec<Place>,
}

impl Fast {
    /// Applies `bytes` to `root` and `nodes` if the fast path covers the
    /// message; otherwise changes nothing and returns `Err(Bail)`.
    pub(crate) fn decode<T: FastNode>(
        &mut self,
        bytes: &[u8],
        root: &mut T,
        nodes: &mut RefMap<Lean>,
        types: &TypeRegistry,
        rust_types: &[Option<RustTypeId>],
    ) -> Result<(), Bail> {
        if u32::try_from(bytes.len()).is_err() {
            return Err(Bail);
        }
        self.seq += 1;
        self.log.clear();
        self.undo.commit();
        let result = self.run(bytes, root, nodes, types, rust_types);
        match result {
            Ok(()) => {
                self.pristine = false;
                self.applied += 1;
            }
            Err(Bail) if self.pristine => {
                // Back to the initial state.
                *root = T::__decode_placeholder();
                let kept = nodes.remove(RefId::ROOT);
                nodes.clear();
                if let Some(mut r) = kept {
                    r.data = None;
                    nodes.insert(RefId::ROOT, r);
                }
            }
            Err(Bail) => self.rollback(root, nodes),
        }
        result
    }

    fn run<T: FastNode>(
        &mut self,
        bytes: &[u8],
        root: &mut T,
        nodes: &mut RefMap<Lean>,
        types: &TypeRegistry,
        rust_types: &[Option<RustTypeId>],
    ) -> Result<(), Bail> {
        let mut cx = FastCx {
            r: Reader::new(bytes),
            types,
            rust_types,
            nodes,
            log: &mut self.log,
            undo: &mut self.undo,
            seq: self.seq,
            current: RefId::ROOT,
            logged: !self.pristine,
            pristine: self.pristine,
            done: false,
        };
        if cx.r.peek() == Some(SWITCH_TO_STRUCTURE) {
            cx.end_or_switch()?;
        }
        while !cx.done {
            if !path_with_ids(cx.nodes, cx.current, &mut self.path) {
                return Err(Bail);
            }
            root.__fast_at(RefId::ROOT, &self.path, &mut cx)?;
        }
        Ok(())
    }

    /// Puts back what the message changed, last change first.
    fn rollback(&mut self, root: &mut dyn DecodeNode, nodes: &mut RefMap<Lean>) {
        while let Some(u) = self.log.pop() {
            match u {
                Undo::Child { parent, index, id } => {
                    nodes.remove(id);
                    if let Some(children) = nodes.get_mut(parent).and_then(Lean::children_mut) {
                        children.retain(|c| c.1 != id);
                    }
                    if path_to(nodes, parent, &mut self.places) {
                        descend(root, &self.places, &mut |n| {
                            n.__decode_field(index, FieldInput::Delete);
                        });
                    }
                }
                Undo::MapAdd {
                    map,
                    index,
                    handle,
                    child,
                } => {
                    if let Some(c) = child {
                        nodes.remove(c);
                    }
                    let Some(LeanData::Map(m)) = nodes.get_mut(map).and_then(Lean::data_mut) else {
                        continue;
                    };
                    m.children.remove(RefId(handle));
                    let Some(key) = m.indexes.remove(RefId(index)) else {
                        continue;
                    };
                    if path_to(nodes, map, &mut self.places) {
                        descend(root, &self.places, &mut |n| {
                            n.__decode_map_remove(key.as_str());
                        });
                    }
                }
            }
        }
        // Then the fields of the structures the state held before the
        // message (still there), like the parse pass puts back its own.
        self.undo
            .rollback(&mut Lookup::new(nodes, root, &mut self.places));
    }
}

impl Default for Fast {
    fn default() -> Self {
        Self {
            pristine: true,
            applied: 0,
            seq: 0,
            log: Vec::new(),
            undo: UndoLog::default(),
            path: Vec::new(),
            places: Vec::new(),
        }
    }
}
