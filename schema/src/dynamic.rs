//! State whose types are described at run time.
//!
//! [`DynStruct`] and [`DynValue`] are the untyped twin of `#[derive(Schema)]`
//! structs: the same encoder tracks and encodes them, so a server can run
//! data-driven game modes (types loaded from a file) and the test suite can
//! replay vectors generically. Field indexes and types come from a
//! [`crate::types::TypeRegistry`].

use crate::collections::{
    ArrayMut, ArraySchema, CollectionMut, CollectionSchema, MapMut, MapSchema, SetMut, SetSchema,
};
use crate::encoder::{Encoder, FullWriter, PatchWriter};
use crate::moved::Moved;
use crate::quantize::Quantize;
use crate::schema::{
    set_primitive, set_ref, set_ref_moved, write_full_block, write_patch_block, Describer, Field,
};
use crate::tracked::{Tick, TrackState};
use crate::types::{CollectionKind, FieldType, NamedFieldType, Primitive, TypeId, TypeRegistry};
use crate::wire::{self, spec};

/// A primitive value of a dynamic state.
#[derive(Debug, Clone, PartialEq)]
pub enum PrimValue {
    /// A string.
    Str(String),
    /// A JavaScript number (also used for every integer type up to 2^53).
    Num(f64),
    /// A boolean.
    Bool(bool),
    /// A signed 64-bit integer (`bigint64`, or exact `int64`).
    I64(i64),
    /// An unsigned 64-bit integer (`biguint64`, or exact `uint64`).
    U64(u64),
}

impl PrimValue {
    fn as_f64(&self) -> f64 {
        match self {
            Self::Str(_) => 0.0,
            Self::Num(n) => *n,
            Self::Bool(b) => f64::from(u8::from(*b)),
            Self::I64(i) => *i as f64,
            Self::U64(u) => *u as f64,
        }
    }

    fn as_i64(&self) -> i64 {
        match self {
            // JavaScript ToInt32-style truncation; NaN and ±Infinity become 0.
            Self::Num(n) if n.is_finite() => *n as i64,
            Self::Str(_) | Self::Num(_) => 0,
            Self::Bool(b) => i64::from(*b),
            Self::I64(i) => *i,
            Self::U64(u) => *u as i64,
        }
    }

    /// Writes the value as `wire`.
    pub fn encode(&self, wire: Primitive, out: &mut Vec<u8>) {
        match (wire, self) {
            (Primitive::String, Self::Str(s)) => wire::encode_str(out, s),
            (Primitive::String, _) => wire::encode_str(out, ""),
            (Primitive::Boolean, v) => {
                wire::encode_bool(out, v.as_f64() != 0.0 && !v.as_f64().is_nan());
            }
            (Primitive::Number, v) => wire::encode_number(out, v.as_f64()),
            (Primitive::Int8 | Primitive::Uint8, v) => wire::encode_u8(out, v.as_i64() as u8),
            (Primitive::Int16 | Primitive::Uint16, v) => wire::encode_u16(out, v.as_i64() as u16),
            (Primitive::Int32 | Primitive::Uint32, v) => wire::encode_u32(out, v.as_i64() as u32),
            (
                Primitive::Int64 | Primitive::Uint64 | Primitive::BigInt64 | Primitive::BigUint64,
                v,
            ) => {
                wire::encode_u64(out, v.as_i64() as u64);
            }
            (Primitive::Float32, v) => wire::encode_f32(out, v.as_f64() as f32),
            (Primitive::Float64, v) => wire::encode_f64(out, v.as_f64()),
        }
    }
}

/// A value of a dynamic state: a primitive, a struct or a collection.
/// Cloning gives an untracked copy.
#[derive(Debug, Clone)]
pub enum DynValue {
    /// A primitive with its wire type.
    Prim(Primitive, PrimValue),
    /// A quantized float, already snapped to a step (build it with
    /// [`DynValue::quantized`]).
    Quantized(Quantize, f64),
    /// A struct instance.
    Struct(Box<DynStruct>),
    /// A `MapSchema`.
    Map(MapSchema<Self>),
    /// An `ArraySchema`.
    Array(ArraySchema<Self>),
    /// A `SetSchema`.
    Set(SetSchema<Self>),
    /// A `CollectionSchema`.
    Collection(CollectionSchema<Self>),
}

impl DynValue {
    /// A quantized float: `value` snapped to a step of `q`, as clients will
    /// see it.
    #[must_use]
    pub fn quantized(q: Quantize, value: f64) -> Self {
        Self::Quantized(q, q.snap(value))
    }
}

/// A struct instance of a runtime-described type.
#[derive(Debug)]
pub struct DynStruct {
    ty: TypeId,
    /// Type id sent after the refId when the instance's type is not the
    /// declared type of the slot holding it (TYPE_ID, spec §7).
    tag: Option<u32>,
    fields: Vec<Option<DynValue>>,
    track: TrackState,
    /// View fields and their tags (from the registry).
    views: Option<std::sync::Arc<[Option<i64>]>>,
    view_mask: u64,
}

/// Cloning gives an untracked copy: same fields, no identity.
impl Clone for DynStruct {
    fn clone(&self) -> Self {
        Self {
            ty: self.ty,
            tag: self.tag,
            fields: self.fields.clone(),
            track: TrackState::default(),
            views: self.views.clone(),
            view_mask: self.view_mask,
        }
    }
}

impl DynStruct {
    /// An instance of `ty` with every field unset.
    #[must_use]
    pub fn new(types: &TypeRegistry, ty: TypeId) -> Self {
        let mut fields = Vec::new();
        let n = types.fields(ty).len();
        fields.resize_with(n, || None);
        let tags: Vec<Option<i64>> = (0..n).map(|i| types.view_tag(ty, i)).collect();
        let view_mask = tags
            .iter()
            .enumerate()
            .filter(|(_, t)| t.is_some())
            .fold(0u64, |m, (i, _)| m | 1 << i);
        Self {
            ty,
            tag: None,
            fields,
            track: TrackState::default(),
            views: (view_mask != 0).then(|| tags.into()),
            view_mask,
        }
    }

    /// The instance's type.
    #[must_use]
    pub fn type_id(&self) -> TypeId {
        self.ty
    }

    /// Sets the TYPE_ID sent with this instance (when it sits in a slot
    /// declared with another type). [`DynMut::set`] and the collection
    /// helpers do this from the registry; building by hand, call it.
    pub fn set_type_tag(&mut self, tag: Option<u32>) {
        self.tag = tag;
    }

    /// The value of field `index`.
    #[must_use]
    pub fn get(&self, index: usize) -> Option<&DynValue> {
        self.fields.get(index)?.as_ref()
    }

    /// Sets field `index` while building an untracked instance.
    ///
    /// # Panics
    ///
    /// If `index` is not a field of the type.
    pub fn set(&mut self, index: usize, value: Option<DynValue>) {
        self.fields[index] = value;
    }

    fn present(&self) -> u64 {
        self.fields
            .iter()
            .enumerate()
            .filter(|(_, f)| f.as_ref().is_some_and(Field::__present))
            .fold(0, |m, (i, _)| m | 1 << i)
    }

    fn refs(&self) -> u64 {
        self.fields
            .iter()
            .enumerate()
            .filter(|(_, f)| f.as_ref().is_some_and(Field::__is_ref))
            .fold(0, |m, (i, _)| m | 1 << i)
    }

    fn encode_field(fields: &[Option<DynValue>], i: u32, out: &mut Vec<u8>) {
        if let Some(v) = &fields[i as usize] {
            v.__encode(&(), None, out);
        }
    }
}

impl Field for DynStruct {
    type Track = ();
    const DEFAULT_WIRE: Option<Primitive> = None;

    fn __describe(_: &mut Describer, _: Option<Primitive>) -> NamedFieldType {
        // Dynamic types are described by their registry, not by Rust types.
        NamedFieldType::Schema(String::new())
    }

    fn __same(&self, _: &Self) -> bool {
        false
    }

    fn __encode(&self, _: &(), _: Option<Primitive>, out: &mut Vec<u8>) {
        wire::encode_varint(out, self.track.meta.id());
        if let Some(tag) = self.tag {
            out.push(spec::TYPE_ID);
            wire::encode_varint(out, tag);
        }
    }

    fn __ref_id(&self, _: &()) -> Option<u32> {
        Some(self.track.meta.id())
    }

    fn __attach(&mut self, _: &mut (), tick: &mut Tick) {
        if self.track.meta.attach(tick) == crate::tracked::Back::New {
            // (Taking back its refId, or refreshed, its changes still go
            // out.)
            self.track.dirty = 0;
            self.track.replaced = 0;
        }
        self.track.child_dirty = self.refs();
        for f in self.fields.iter_mut().flatten() {
            f.__attach(&mut (), tick);
        }
    }

    fn __detach(&mut self, _: &mut (), tick: &mut Tick) {
        // Its changes not sent yet are kept (for a `Moved` value).
        self.track.meta.detach(tick);
        self.track.child_dirty = 0;
        for f in self.fields.iter_mut().flatten() {
            f.__detach(&mut (), tick);
        }
    }

    fn __encode_patch(&mut self, _: &mut (), w: &mut PatchWriter<'_>) {
        // View fields are not part of the shared encoding.
        let shared = !self.view_mask;
        let present = self.present() & shared;
        self.track.dirty &= shared;
        let fields = &self.fields;
        write_patch_block(&mut self.track, present, w, |i, out| {
            Self::encode_field(fields, i, out);
        });
        let mut mask = std::mem::take(&mut self.track.child_dirty);
        while mask != 0 {
            let i = mask.trailing_zeros() as usize;
            mask &= mask - 1;
            if let Some(v) = &mut self.fields[i] {
                if shared & (1 << i) == 0 {
                    w.discard(|w| v.__encode_patch(&mut (), w));
                } else {
                    v.__encode_patch(&mut (), w);
                }
            }
        }
    }

    fn __encode_full(&self, _: &(), w: &mut FullWriter<'_>) {
        let fields = &self.fields;
        let shared = !self.view_mask;
        write_full_block(&self.track, self.present() & shared, w, |i, out| {
            Self::encode_field(fields, i, out);
        });
        for (i, v) in self.fields.iter().enumerate() {
            if let Some(v) = v {
                if shared & (1 << i) != 0 {
                    v.__encode_full(&(), w);
                }
            }
        }
    }

    fn __with_node(&self, _: &(), f: &mut dyn FnMut(&dyn crate::view::Node)) {
        f(self);
    }
}

impl crate::view::Node for DynStruct {
    fn meta(&self) -> &crate::tracked::RefMeta {
        &self.track.meta
    }
    fn kind(&self) -> crate::view::NodeKind {
        crate::view::NodeKind::Struct
    }
    fn field_tag(&self, index: u32) -> Option<i64> {
        self.views.as_ref()?.get(index as usize).copied().flatten()
    }
    fn has_view_fields(&self) -> bool {
        self.view_mask != 0
    }
    fn entries(&self, scratch: &mut Vec<u8>, f: &mut dyn FnMut(crate::view::Entry<'_>)) {
        let dirty = if self.track.meta.fresh {
            u64::MAX
        } else {
            self.track.dirty
        };
        for (i, v) in self.fields.iter().enumerate() {
            if let Some(v) = v.as_ref().filter(|v| v.__present()) {
                scratch.clear();
                v.__encode(&(), None, scratch);
                f(crate::view::Entry {
                    index: i as u32,
                    key: None,
                    value: scratch,
                    child: v.__ref_id(&()),
                    dirty: dirty & (1 << i) != 0,
                });
            }
        }
    }
    fn children(&self, f: &mut dyn FnMut(u32, &dyn crate::view::Node)) {
        for (i, v) in self.fields.iter().enumerate() {
            if let Some(v) = v {
                v.__with_node(&(), &mut |n| f(i as u32, n));
            }
        }
    }
    fn changed_children(&self, f: &mut dyn FnMut(u32, &dyn crate::view::Node)) {
        let mask = self.track.child_dirty;
        for (i, v) in self.fields.iter().enumerate() {
            if let Some(v) = v.as_ref().filter(|_| mask & (1 << i) != 0) {
                v.__with_node(&(), &mut |n| f(i as u32, n));
            }
        }
    }
    fn unset_this_tick(&self) -> u64 {
        self.track.dirty & !self.present()
    }
    fn replaced_this_tick(&self) -> u64 {
        self.track.replaced
    }
    fn view_dirty(&self) -> bool {
        self.view_mask != 0 && (self.track.meta.fresh || self.track.dirty & self.view_mask != 0)
    }
}

impl crate::schema::TrackedMut for DynMut<'_> {
    fn __target(&mut self) -> (u32, &mut Tick) {
        (self.s.track.meta.id(), self.tick)
    }
}

macro_rules! dispatch {
    ($self:expr, $v:ident => $e:expr, prim => $p:expr) => {
        match $self {
            DynValue::Prim(..) | DynValue::Quantized(..) => $p,
            DynValue::Struct($v) => $e,
            DynValue::Map($v) => $e,
            DynValue::Array($v) => $e,
            DynValue::Set($v) => $e,
            DynValue::Collection($v) => $e,
        }
    };
}

impl Field for DynValue {
    type Track = ();
    const DEFAULT_WIRE: Option<Primitive> = None;

    fn __describe(_: &mut Describer, _: Option<Primitive>) -> NamedFieldType {
        NamedFieldType::Schema(String::new())
    }

    fn __is_ref(&self) -> bool {
        !matches!(self, Self::Prim(..) | Self::Quantized(..))
    }

    fn __same(&self, other: &Self) -> bool {
        match (self, other) {
            (Self::Prim(wa, a), Self::Prim(wb, b)) => wa == wb && a == b,
            #[allow(clippy::float_cmp, reason = "JavaScript `===` semantics")]
            (Self::Quantized(qa, a), Self::Quantized(qb, b)) => qa == qb && a == b,
            _ => false,
        }
    }

    fn __identical(&self, other: &Self) -> bool {
        match (self, other) {
            (Self::Prim(wa, PrimValue::Num(a)), Self::Prim(wb, PrimValue::Num(b))) => {
                wa == wb && a.to_bits() == b.to_bits()
            }
            (Self::Quantized(qa, a), Self::Quantized(qb, b)) => {
                qa == qb && a.to_bits() == b.to_bits()
            }
            _ => self.__same(other),
        }
    }

    fn __is_zero(&self) -> bool {
        matches!(self, Self::Prim(_, PrimValue::Num(n)) | Self::Quantized(_, n) if *n == 0.0)
    }

    fn __encode(&self, _: &(), _: Option<Primitive>, out: &mut Vec<u8>) {
        match self {
            Self::Prim(wire, v) => v.encode(*wire, out),
            Self::Quantized(q, v) => q.encode(*v, out),
            Self::Struct(s) => s.__encode(&(), None, out),
            Self::Map(m) => m.__encode(&(), None, out),
            Self::Array(a) => a.__encode(&(), None, out),
            Self::Set(s) => s.__encode(&(), None, out),
            Self::Collection(c) => c.__encode(&(), None, out),
        }
    }

    fn __ref_id(&self, _: &()) -> Option<u32> {
        dispatch!(self, v => v.__ref_id(&()), prim => None)
    }

    fn __attach(&mut self, _: &mut (), tick: &mut Tick) {
        dispatch!(self, v => v.__attach(&mut (), tick), prim => ());
    }

    fn __detach(&mut self, _: &mut (), tick: &mut Tick) {
        dispatch!(self, v => v.__detach(&mut (), tick), prim => ());
    }

    fn __encode_patch(&mut self, _: &mut (), w: &mut PatchWriter<'_>) {
        dispatch!(self, v => v.__encode_patch(&mut (), w), prim => ());
    }

    fn __encode_full(&self, _: &(), w: &mut FullWriter<'_>) {
        dispatch!(self, v => v.__encode_full(&(), w), prim => ());
    }

    fn __with_node(&self, _: &(), f: &mut dyn FnMut(&dyn crate::view::Node)) {
        dispatch!(self, v => v.__with_node(&(), f), prim => ());
    }
}

impl Moved<DynValue> {
    /// Sets the TYPE_ID sent with a moved struct (see
    /// [`DynStruct::set_type_tag`]) for the slot it goes to; nothing for
    /// other values.
    pub fn set_type_tag(&mut self, tag: Option<u32>) {
        if let DynValue::Struct(s) = &mut self.value {
            s.tag = tag;
        }
    }
}

/// The view of a tracked [`DynStruct`]: every change is recorded.
#[derive(Debug)]
pub struct DynMut<'a> {
    s: &'a mut DynStruct,
    tick: &'a mut Tick,
}

/// The view of a tracked dynamic value.
#[derive(Debug)]
#[non_exhaustive]
pub enum DynValueMut<'a> {
    /// A struct.
    Struct(DynMut<'a>),
    /// A map.
    Map(MapMut<'a, DynValue>),
    /// An array.
    Array(ArrayMut<'a, DynValue>),
    /// A set.
    Set(SetMut<'a, DynValue>),
    /// A collection.
    Collection(CollectionMut<'a, DynValue>),
    /// A primitive (change it through its parent).
    Prim,
}

impl<'a> DynValueMut<'a> {
    fn of(v: &'a mut DynValue, tick: &'a mut Tick) -> Self {
        match v {
            DynValue::Prim(..) | DynValue::Quantized(..) => Self::Prim,
            DynValue::Struct(s) => Self::Struct(DynMut { s, tick }),
            DynValue::Map(m) => Self::Map(MapMut::__new(m, tick)),
            DynValue::Array(a) => Self::Array(ArrayMut::__new(a, tick)),
            DynValue::Set(s) => Self::Set(SetMut::__new(s, tick)),
            DynValue::Collection(c) => Self::Collection(CollectionMut::__new(c, tick)),
        }
    }
}

impl std::ops::Deref for DynMut<'_> {
    type Target = DynStruct;

    fn deref(&self) -> &DynStruct {
        self.s
    }
}

impl DynMut<'_> {
    /// Sets field `index` (`None` deletes it). A struct placed in a field
    /// declared with another type should carry its TYPE_ID
    /// ([`DynStruct::set_type_tag`]).
    ///
    /// # Panics
    ///
    /// If `index` is not a field of the type.
    pub fn set(&mut self, index: usize, value: Option<DynValue>) {
        let i = index as u32;
        let slot = &mut self.s.fields[index];
        // The same setters as derived structs: a ref field (old or new value)
        // is attached/detached and may become DELETE_AND_ADD.
        if slot.as_ref().is_some_and(Field::__is_ref) || value.as_ref().is_some_and(Field::__is_ref)
        {
            set_ref(slot, value, i, &mut self.s.track, &mut (), self.tick);
        } else {
            set_primitive(slot, value, i, &mut self.s.track, self.tick);
        }
    }

    /// [`set`](Self::set) of a value that may keep its identity (see
    /// [`Moved`]); returns the previous value with its own.
    ///
    /// # Panics
    ///
    /// If `index` is not a field of the type.
    pub fn replace(
        &mut self,
        index: usize,
        value: Moved<Option<DynValue>>,
    ) -> Moved<Option<DynValue>> {
        let i = index as u32;
        let slot = &mut self.s.fields[index];
        if slot.as_ref().is_some_and(Field::__is_ref)
            || value.get().as_ref().is_some_and(Field::__is_ref)
        {
            set_ref_moved(slot, value, i, &mut self.s.track, &mut (), self.tick)
        } else {
            let old = slot.clone();
            set_primitive(slot, value.into_inner(), i, &mut self.s.track, self.tick);
            Moved::new(old)
        }
    }

    /// The view of the ref in field `index`.
    pub fn child(&mut self, index: usize) -> Option<DynValueMut<'_>> {
        let v = self.s.fields.get_mut(index)?.as_mut()?;
        if v.__is_ref() {
            self.s.track.mark_child(index as u32);
        }
        Some(DynValueMut::of(v, self.tick))
    }
}

impl MapMut<'_, DynValue> {
    /// The view of the ref under `key`.
    pub fn child(&mut self, key: &str) -> Option<DynValueMut<'_>> {
        let pos = self.map.pos(key)?;
        let slot = self.map.inner.queue(pos);
        Some(DynValueMut::of(&mut slot.value, self.tick))
    }
}

impl ArrayMut<'_, DynValue> {
    /// The view of the ref at `index`.
    pub fn child(&mut self, index: usize) -> Option<DynValueMut<'_>> {
        let (v, (), tick) = self.element_mut(index)?;
        Some(DynValueMut::of(v, tick))
    }
}

macro_rules! indexed_child {
    ($view:ident) => {
        impl $view<'_, DynValue> {
            /// The view of the ref at position `index` (insertion order).
            pub fn child(&mut self, index: usize) -> Option<DynValueMut<'_>> {
                let pos = self.coll.inner.nth_pos(index)?;
                let slot = self.coll.inner.queue(pos);
                Some(DynValueMut::of(&mut slot.value, self.tick))
            }
        }
    };
}
indexed_child!(SetMut);
indexed_child!(CollectionMut);

impl Encoder<DynStruct> {
    /// The view through which a dynamic state is changed.
    pub fn root_mut(&mut self) -> DynMut<'_> {
        let (s, (), tick) = self.parts_mut();
        DynMut { s, tick }
    }
}

/// The empty value of a field type: an empty collection, or `None` for
/// primitives and structs.
#[must_use]
pub fn empty_value(ty: FieldType) -> Option<DynValue> {
    match ty {
        FieldType::Collection(CollectionKind::Map, _) => Some(DynValue::Map(MapSchema::new())),
        FieldType::Collection(CollectionKind::Array, _) => {
            Some(DynValue::Array(ArraySchema::new()))
        }
        FieldType::Collection(CollectionKind::Set, _) => Some(DynValue::Set(SetSchema::new())),
        FieldType::Collection(CollectionKind::Collection, _) => {
            Some(DynValue::Collection(CollectionSchema::new()))
        }
        FieldType::Primitive(_) | FieldType::Quantized(_) | FieldType::Schema(_) => None,
    }
}
