//! The traits that tie user types to the encoder.
//!
//! [`Schema`] is implemented by `#[derive(Schema)]` for structs; [`Field`] is
//! implemented by everything that can be a field or a collection element:
//! primitives, `Option<T>`, Schema structs and the four collections. Their
//! `__`-prefixed methods are the encoder's plumbing, hidden from the docs and
//! not meant to be called or implemented by hand.

use crate::encoder::{FullWriter, PatchWriter};
use crate::moved::Moved;
use crate::tracked::{StructTrack, Tick, TrackState};
use crate::types::{NamedFieldType, NamedType, Primitive};
use crate::wire;

/// Collects the type descriptions of a state's types (for Reflection and
/// the [`TypeRegistry`](crate::types::TypeRegistry)).
#[doc(hidden)]
#[derive(Debug, Default)]
pub struct Describer {
    pub(crate) types: Vec<NamedType>,
    /// The Rust type behind each described name.
    pub(crate) rust_types: Vec<(std::any::TypeId, String)>,
}

impl Describer {
    /// Describes `T` (once) and returns its name.
    pub fn schema<T: Schema>(&mut self) -> String {
        let name = T::type_name();
        if !self.types.iter().any(|t| t.name == name) {
            // Reserve the slot first so recursive types terminate.
            self.rust_types
                .push((std::any::TypeId::of::<T>(), name.clone()));
            self.types.push(NamedType {
                name: name.clone(),
                extends: None,
                fields: Vec::new(),
            });
            let described = T::__describe(self);
            let slot = self
                .types
                .iter_mut()
                .find(|t| t.name == name)
                .expect("reserved above");
            *slot = described;
        }
        name
    }
}

/// A Schema struct: a fixed set of fields, synchronized to clients.
///
/// Implement it with `#[derive(Schema)]`; the derive also generates the
/// type's mutable view (reachable as [`Schema::Mut`]), the only way to
/// change an instance that an [`Encoder`](crate::Encoder) tracks.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a Schema type",
    label = "not a schema field or state type",
    note = "fields may be String, bool, i8..i64, u8..u64, f32, f64, Option<T>, a #[derive(Schema)] struct or enum, MapSchema, ArraySchema, SetSchema or CollectionSchema"
)]
pub trait Schema: Sized + 'static {
    /// Tracks of the child fields (generated).
    #[doc(hidden)]
    type Children: Default + Send;

    /// The view through which a tracked instance is changed.
    type Mut<'a>;

    /// Number of fields, inherited ones included.
    #[doc(hidden)]
    const FIELD_COUNT: u32;

    /// The type's name in type descriptions.
    fn type_name() -> String {
        std::any::type_name::<Self>().to_owned()
    }

    /// Describes the type's own fields.
    #[doc(hidden)]
    fn __describe(d: &mut Describer) -> NamedType;

    /// Bit mask of the fields that currently hold a value.
    #[doc(hidden)]
    fn __present(&self) -> u64;

    /// Writes the ops of the fields in `dirty`, in index order: ADD (or
    /// DELETE_AND_ADD for the fields in `replaced`) with the value, or
    /// DELETE for an absent field.
    #[doc(hidden)]
    fn __write_changed(
        &self,
        children: &Self::Children,
        dirty: u64,
        replaced: u64,
        out: &mut Vec<u8>,
    );

    /// Writes an ADD with the value of every present field, in index order.
    #[doc(hidden)]
    fn __write_present(&self, children: &Self::Children, out: &mut Vec<u8>);

    /// Bit mask of the fields that hold refs (structs or collections).
    #[doc(hidden)]
    fn __ref_fields(&self) -> u64;

    /// Attaches every child of a newly attached instance.
    #[doc(hidden)]
    fn __attach_children(&mut self, children: &mut Self::Children, tick: &mut Tick);

    /// Detaches every child of a removed instance.
    #[doc(hidden)]
    fn __detach_children(&mut self, children: &mut Self::Children, tick: &mut Tick);

    /// Encodes the pending changes of the children in `mask`.
    #[doc(hidden)]
    fn __patch_children(
        &mut self,
        children: &mut Self::Children,
        mask: u64,
        w: &mut PatchWriter<'_>,
    );

    /// Encodes the full content of every child.
    #[doc(hidden)]
    fn __full_children(&self, children: &Self::Children, w: &mut FullWriter<'_>);

    /// Bit mask of the view fields (`#[schema(view)]`), inherited ones
    /// included.
    #[doc(hidden)]
    const VIEW_FIELDS: u64 = 0;

    /// The view tag of field `index` (`None` for a shared field).
    #[doc(hidden)]
    fn __field_tag(_index: u32) -> Option<i64> {
        None
    }

    /// Every present field for the view walk: `(index, encoded value,
    /// child refId)`.
    #[doc(hidden)]
    fn __view_entries(
        &self,
        _children: &Self::Children,
        _scratch: &mut Vec<u8>,
        _f: &mut EntrySink<'_>,
    ) {
    }

    /// Every child ref for the view walk.
    #[doc(hidden)]
    fn __view_children(
        &self,
        _children: &Self::Children,
        _f: &mut dyn FnMut(u32, &dyn crate::view::Node),
    ) {
    }

    /// Builds the mutable view of a tracked instance.
    #[doc(hidden)]
    fn __view<'a>(
        &'a mut self,
        state: &'a mut TrackState,
        children: &'a mut Self::Children,
        tick: &'a mut Tick,
    ) -> Self::Mut<'a>;
}

/// Anything that can be a field of a Schema struct or an element of a
/// collection. Implemented for primitives, `Option<T>`, Schema structs and
/// collections; sealed in practice by its hidden methods.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be a schema field",
    label = "unsupported field type",
    note = "fields may be String, bool, i8..i64, u8..u64, f32, f64, Option<T>, a #[derive(Schema)] struct, MapSchema, ArraySchema, SetSchema or CollectionSchema"
)]
pub trait Field: Sized {
    /// Per-instance tracking state kept beside the value.
    #[doc(hidden)]
    type Track: Default + Send;

    /// Wire type of a primitive when no attribute chooses another; `None`
    /// for refs.
    #[doc(hidden)]
    const DEFAULT_WIRE: Option<Primitive>;

    /// Bit set of the primitive wire types this Rust type can be sent as
    /// (bit = position in [`Primitive::ALL`]).
    #[doc(hidden)]
    const ACCEPTS: u32 = 0;

    /// Describes the field's type.
    #[doc(hidden)]
    fn __describe(d: &mut Describer, wire: Option<Primitive>) -> NamedFieldType;

    /// Whether this value is a ref (a struct or collection) rather than a
    /// primitive.
    #[doc(hidden)]
    #[inline]
    fn __is_ref(&self) -> bool {
        Self::DEFAULT_WIRE.is_none()
    }

    /// Whether the field holds a value (`None` is sent as DELETE).
    #[doc(hidden)]
    #[inline]
    fn __present(&self) -> bool {
        true
    }

    /// Whether assigning `other` would change nothing on the client
    /// (JavaScript `===` for primitives; never for refs).
    #[doc(hidden)]
    fn __same(&self, other: &Self) -> bool;

    /// Whether `other` is the very same value, bit for bit (unlike `===`,
    /// tells `-0` from `0`).
    #[doc(hidden)]
    #[inline]
    fn __identical(&self, other: &Self) -> bool {
        self.__same(other)
    }

    /// Whether the value is a float zero (`0` or `-0`), which `===` cannot
    /// tell apart.
    #[doc(hidden)]
    #[inline]
    fn __is_zero(&self) -> bool {
        false
    }

    /// Writes the value: primitives inline as `wire`, refs as their refId.
    #[doc(hidden)]
    fn __encode(&self, track: &Self::Track, wire: Option<Primitive>, out: &mut Vec<u8>);

    /// The refId of a ref (`None` for primitives).
    #[doc(hidden)]
    #[inline]
    fn __ref_id(&self, _track: &Self::Track) -> Option<u32> {
        None
    }

    /// Type ids of the Rust types of a state rooted at this type (for
    /// TYPE_ID of polymorphic children); empty for non-Schema types.
    #[doc(hidden)]
    fn __type_ids() -> Vec<(std::any::TypeId, u32)> {
        Vec::new()
    }

    /// Writes an op byte and then the value (one write for fixed-size
    /// values: the hot path of a patch).
    #[doc(hidden)]
    #[inline]
    fn __encode_op(&self, track: &Self::Track, wire: Option<Primitive>, op: u8, out: &mut Vec<u8>) {
        out.push(op);
        self.__encode(track, wire, out);
    }

    /// Gives a newly attached value (and its subtree) refIds.
    #[doc(hidden)]
    #[inline]
    fn __attach(&mut self, _track: &mut Self::Track, _tick: &mut Tick) {}

    /// Releases the refIds of a removed value's subtree.
    #[doc(hidden)]
    #[inline]
    fn __detach(&mut self, _track: &mut Self::Track, _tick: &mut Tick) {}

    /// Encodes this ref's pending changes and its changed children.
    #[doc(hidden)]
    #[inline]
    fn __encode_patch(&mut self, _track: &mut Self::Track, _w: &mut PatchWriter<'_>) {}

    /// Encodes this ref's full content and its children.
    #[doc(hidden)]
    #[inline]
    fn __encode_full(&self, _track: &Self::Track, _w: &mut FullWriter<'_>) {}

    /// Calls `f` with this ref as a view-walk node (nothing for primitives).
    #[doc(hidden)]
    #[inline]
    fn __with_node(&self, _track: &Self::Track, _f: &mut dyn FnMut(&dyn crate::view::Node)) {}
}

/// Receives the fields of the view walk ([`Schema::__view_entries`]).
#[doc(hidden)]
pub type EntrySink<'a> = dyn FieldSink + 'a;

/// The receiver behind [`EntrySink`].
#[doc(hidden)]
pub trait FieldSink {
    /// Whether field `index` is wanted: a field that is not is neither
    /// encoded nor passed on (the walk reads only the view fields of most
    /// structs, and encoding the others reads their strings from memory).
    fn wants(&self, index: u32) -> bool;
    /// One present field: `(index, encoded value, child refId)`.
    fn field(&mut self, index: u32, value: &[u8], child: Option<u32>);
}

/// A [`FieldSink`] over a closure, keeping the fields of `mask`.
struct MaskSink<F> {
    mask: u64,
    f: F,
}

impl<F: FnMut(u32, &[u8], Option<u32>)> FieldSink for MaskSink<F> {
    #[inline]
    fn wants(&self, index: u32) -> bool {
        self.mask & (1 << index) != 0
    }
    #[inline]
    fn field(&mut self, index: u32, value: &[u8], child: Option<u32>) {
        (self.f)(index, value, child);
    }
}

/// The mutable view of a tracked instance: its refId and the tick (to
/// register `show`/`hide` calls). Implemented by the derive's `…Mut` views,
/// the collection views and `DynMut`.
#[doc(hidden)]
pub trait TrackedMut {
    /// The instance's refId and the encoder's tick.
    fn __target(&mut self) -> (u32, &mut Tick);
}

/// A struct as a view-walk node.
struct StructNode<'a, T: Schema> {
    value: &'a T,
    track: &'a StructTrack<T::Children>,
}

impl<T: Schema> StructNode<'_, T> {
    /// The present fields of `mask`, in index order.
    fn entries_of(
        &self,
        mask: u64,
        scratch: &mut Vec<u8>,
        f: &mut dyn FnMut(crate::view::Entry<'_>),
    ) {
        let st = &self.track.state;
        let dirty = if st.meta.fresh { u64::MAX } else { st.dirty };
        let mut sink = MaskSink {
            mask,
            f: |index, value: &[u8], child| {
                f(crate::view::Entry {
                    index,
                    key: None,
                    value,
                    child,
                    dirty: dirty & (1 << index) != 0,
                });
            },
        };
        self.value
            .__view_entries(&self.track.children, scratch, &mut sink);
    }
}

impl<T: Schema> crate::view::Node for StructNode<'_, T> {
    fn meta(&self) -> &crate::tracked::RefMeta {
        &self.track.state.meta
    }
    fn kind(&self) -> crate::view::NodeKind {
        crate::view::NodeKind::Struct
    }
    fn field_tag(&self, index: u32) -> Option<i64> {
        T::__field_tag(index)
    }
    fn has_view_fields(&self) -> bool {
        T::VIEW_FIELDS != 0
    }
    fn entries(&self, scratch: &mut Vec<u8>, f: &mut dyn FnMut(crate::view::Entry<'_>)) {
        self.entries_of(u64::MAX, scratch, f);
    }
    fn view_field_entries(&self, scratch: &mut Vec<u8>, f: &mut dyn FnMut(crate::view::Entry<'_>)) {
        self.entries_of(T::VIEW_FIELDS, scratch, f);
    }
    fn children(&self, f: &mut dyn FnMut(u32, &dyn crate::view::Node)) {
        self.value.__view_children(&self.track.children, f);
    }
    fn changed_children(&self, f: &mut dyn FnMut(u32, &dyn crate::view::Node)) {
        let mask = self.track.state.child_dirty;
        if mask != 0 {
            self.value
                .__view_children(&self.track.children, &mut |i, n| {
                    if mask & (1 << i) != 0 {
                        f(i, n);
                    }
                });
        }
    }
    fn unset_this_tick(&self) -> u64 {
        self.track.state.dirty & !Schema::__present(self.value)
    }
    fn replaced_this_tick(&self) -> u64 {
        self.track.state.replaced
    }
    fn view_dirty(&self) -> bool {
        let st = &self.track.state;
        T::VIEW_FIELDS != 0 && (st.meta.fresh || st.dirty & T::VIEW_FIELDS != 0)
    }
    fn may_have_changed_children(&self) -> bool {
        self.track.state.child_dirty != 0
    }
}

/// Encodes one field for the view walk.
#[doc(hidden)]
#[inline]
pub fn view_entry<F: Field>(
    value: &F,
    track: &F::Track,
    wire: Option<Primitive>,
    index: u32,
    scratch: &mut Vec<u8>,
    f: &mut EntrySink<'_>,
) {
    if f.wants(index) && value.__present() {
        scratch.clear();
        value.__encode(track, wire, scratch);
        f.field(index, scratch, value.__ref_id(track));
    }
}

/// The wire type a field with no attribute uses.
#[doc(hidden)]
#[must_use]
pub const fn accepts(accepts: u32, wire: Primitive) -> bool {
    accepts & (1 << wire as u32) != 0
}

const fn bits(list: &[Primitive]) -> u32 {
    let mut b = 0;
    let mut i = 0;
    while i < list.len() {
        b |= 1 << list[i] as u32;
        i += 1;
    }
    b
}

const NUMERIC: u32 = bits(&[
    Primitive::Number,
    Primitive::Int8,
    Primitive::Uint8,
    Primitive::Int16,
    Primitive::Uint16,
    Primitive::Int32,
    Primitive::Uint32,
    Primitive::Int64,
    Primitive::Uint64,
    Primitive::Float32,
    Primitive::Float64,
    Primitive::BigInt64,
    Primitive::BigUint64,
]);

/// Writes a numeric value as any numeric wire type, with the reference's
/// wrapping for out-of-range values (`value & mask` after truncation).
#[inline]
fn encode_numeric(out: &mut Vec<u8>, wire: Primitive, as_f64: f64, as_i64: i64) {
    match wire {
        // String and Boolean are not reachable: the derive refuses
        // non-numeric wire types for numeric fields at compile time.
        Primitive::Number | Primitive::String | Primitive::Boolean => {
            wire::encode_number(out, as_f64);
        }
        Primitive::Int8 | Primitive::Uint8 => wire::encode_u8(out, as_i64 as u8),
        Primitive::Int16 | Primitive::Uint16 => wire::encode_u16(out, as_i64 as u16),
        Primitive::Int32 | Primitive::Uint32 => wire::encode_u32(out, as_i64 as u32),
        Primitive::Int64 | Primitive::Uint64 | Primitive::BigInt64 | Primitive::BigUint64 => {
            wire::encode_u64(out, as_i64 as u64);
        }
        Primitive::Float32 => wire::encode_f32(out, as_f64 as f32),
        Primitive::Float64 => wire::encode_f64(out, as_f64),
    }
}

macro_rules! numeric_field {
    ($($t:ty => $wire:ident, $f:ident, $i:ident;)*) => {$(
        impl Field for $t {
            type Track = ();
            const DEFAULT_WIRE: Option<Primitive> = Some(Primitive::$wire);
            const ACCEPTS: u32 = NUMERIC;

            fn __describe(_: &mut Describer, wire: Option<Primitive>) -> NamedFieldType {
                NamedFieldType::Primitive(wire.unwrap_or(Primitive::$wire))
            }

            #[inline]
            #[allow(clippy::float_cmp, reason = "JavaScript `===` semantics: NaN differs, -0 equals 0")]
            fn __same(&self, other: &Self) -> bool {
                self == other
            }

            #[inline]
            fn __identical(&self, other: &Self) -> bool {
                Bits::identical(*self, *other)
            }

            #[inline]
            fn __is_zero(&self) -> bool {
                Bits::is_zero(*self)
            }

            #[inline]
            fn __encode(&self, _: &(), wire: Option<Primitive>, out: &mut Vec<u8>) {
                let v = *self;
                match wire {
                    None | Some(Primitive::$wire) => wire::$f(out, v as _),
                    Some(w) => encode_numeric(out, w, v as f64, $i(v)),
                }
            }

            #[inline]
            fn __encode_op(&self, track: &(), wire: Option<Primitive>, op: u8, out: &mut Vec<u8>) {
                match wire {
                    None | Some(Primitive::$wire) => {
                        // One capacity check; the value goes from a
                        // register (a stack buffer built byte by byte and
                        // read back whole stalled the full state on a
                        // failed store forward at every `u8` field).
                        let b = self.to_le_bytes();
                        out.reserve(1 + b.len());
                        out.push(op);
                        out.extend_from_slice(&b);
                    }
                    Some(_) => {
                        out.push(op);
                        self.__encode(track, wire, out);
                    }
                }
            }
        }
    )*};
}

#[inline]
fn int<T: Into<i64>>(v: T) -> i64 {
    v.into()
}
#[inline]
fn uint64(v: u64) -> i64 {
    v as i64
}
/// JavaScript's ToInt32-style truncation for the integer wire types:
/// NaN and ±Infinity become 0.
#[inline]
fn float32(v: f32) -> i64 {
    float64(f64::from(v))
}
#[inline]
fn float64(v: f64) -> i64 {
    if v.is_finite() {
        v as i64
    } else {
        0
    }
}

/// Bit-level identity and zero tests for the numeric field types.
trait Bits: Copy + PartialEq {
    fn identical(self, other: Self) -> bool {
        self == other
    }
    fn is_zero(self) -> bool {
        false
    }
}

impl Bits for i8 {}
impl Bits for u8 {}
impl Bits for i16 {}
impl Bits for u16 {}
impl Bits for i32 {}
impl Bits for u32 {}
impl Bits for i64 {}
impl Bits for u64 {}
impl Bits for f32 {
    fn identical(self, other: Self) -> bool {
        self.to_bits() == other.to_bits()
    }
    fn is_zero(self) -> bool {
        self == 0.0
    }
}
impl Bits for f64 {
    fn identical(self, other: Self) -> bool {
        self.to_bits() == other.to_bits()
    }
    fn is_zero(self) -> bool {
        self == 0.0
    }
}

numeric_field! {
    i8 => Int8, encode_u8, int;
    u8 => Uint8, encode_u8, int;
    i16 => Int16, encode_u16, int;
    u16 => Uint16, encode_u16, int;
    i32 => Int32, encode_u32, int;
    u32 => Uint32, encode_u32, int;
    i64 => Int64, encode_u64, int;
    u64 => Uint64, encode_u64, uint64;
    f32 => Float32, encode_f32, float32;
    f64 => Float64, encode_f64, float64;
}

impl Field for bool {
    type Track = ();
    const DEFAULT_WIRE: Option<Primitive> = Some(Primitive::Boolean);
    const ACCEPTS: u32 = bits(&[Primitive::Boolean]);

    fn __describe(_: &mut Describer, _: Option<Primitive>) -> NamedFieldType {
        NamedFieldType::Primitive(Primitive::Boolean)
    }

    #[inline]
    fn __same(&self, other: &Self) -> bool {
        self == other
    }

    #[inline]
    fn __encode(&self, _: &(), _: Option<Primitive>, out: &mut Vec<u8>) {
        wire::encode_bool(out, *self);
    }
}

impl Field for String {
    type Track = ();
    const DEFAULT_WIRE: Option<Primitive> = Some(Primitive::String);
    const ACCEPTS: u32 = bits(&[Primitive::String]);

    fn __describe(_: &mut Describer, _: Option<Primitive>) -> NamedFieldType {
        NamedFieldType::Primitive(Primitive::String)
    }

    #[inline]
    fn __same(&self, other: &Self) -> bool {
        self == other
    }

    #[inline]
    fn __encode(&self, _: &(), _: Option<Primitive>, out: &mut Vec<u8>) {
        wire::encode_str(out, self);
    }
}

impl<T: Field> Field for Option<T> {
    type Track = T::Track;
    const DEFAULT_WIRE: Option<Primitive> = T::DEFAULT_WIRE;
    const ACCEPTS: u32 = T::ACCEPTS;

    fn __describe(d: &mut Describer, wire: Option<Primitive>) -> NamedFieldType {
        T::__describe(d, wire)
    }

    #[inline]
    fn __present(&self) -> bool {
        self.as_ref().is_some_and(Field::__present)
    }

    #[inline]
    fn __same(&self, other: &Self) -> bool {
        match (self, other) {
            (Some(a), Some(b)) => a.__same(b),
            (None, None) => true,
            _ => false,
        }
    }

    #[inline]
    fn __identical(&self, other: &Self) -> bool {
        match (self, other) {
            (Some(a), Some(b)) => a.__identical(b),
            (None, None) => true,
            _ => false,
        }
    }

    #[inline]
    fn __is_zero(&self) -> bool {
        self.as_ref().is_some_and(Field::__is_zero)
    }

    #[inline]
    fn __encode(&self, track: &Self::Track, wire: Option<Primitive>, out: &mut Vec<u8>) {
        if let Some(v) = self {
            v.__encode(track, wire, out);
        }
    }

    #[inline]
    fn __encode_op(&self, track: &Self::Track, wire: Option<Primitive>, op: u8, out: &mut Vec<u8>) {
        if let Some(v) = self {
            v.__encode_op(track, wire, op, out);
        }
    }

    #[inline]
    fn __ref_id(&self, track: &Self::Track) -> Option<u32> {
        self.as_ref().and_then(|v| v.__ref_id(track))
    }

    #[inline]
    fn __attach(&mut self, track: &mut Self::Track, tick: &mut Tick) {
        if let Some(v) = self {
            v.__attach(track, tick);
        }
    }

    #[inline]
    fn __detach(&mut self, track: &mut Self::Track, tick: &mut Tick) {
        if let Some(v) = self {
            v.__detach(track, tick);
        }
    }

    #[inline]
    fn __encode_patch(&mut self, track: &mut Self::Track, w: &mut PatchWriter<'_>) {
        if let Some(v) = self {
            v.__encode_patch(track, w);
        }
    }

    #[inline]
    fn __encode_full(&self, track: &Self::Track, w: &mut FullWriter<'_>) {
        if let Some(v) = self {
            v.__encode_full(track, w);
        }
    }

    #[inline]
    fn __with_node(&self, track: &Self::Track, f: &mut dyn FnMut(&dyn crate::view::Node)) {
        if let Some(v) = self {
            v.__with_node(track, f);
        }
    }
}

impl<T: Schema> Field for T {
    type Track = StructTrack<T::Children>;
    const DEFAULT_WIRE: Option<Primitive> = None;

    fn __describe(d: &mut Describer, _: Option<Primitive>) -> NamedFieldType {
        NamedFieldType::Schema(d.schema::<T>())
    }

    fn __type_ids() -> Vec<(std::any::TypeId, u32)> {
        let mut d = Describer::default();
        let root = d.schema::<T>();
        let Ok(reg) = crate::types::TypeRegistry::from_named(&root, &d.types) else {
            return Vec::new();
        };
        d.rust_types
            .iter()
            .filter_map(|(rust, name)| Some((*rust, reg.by_name(name)?.0)))
            .collect()
    }

    #[inline]
    fn __same(&self, _: &Self) -> bool {
        false
    }

    #[inline]
    fn __ref_id(&self, track: &Self::Track) -> Option<u32> {
        Some(track.state.meta.id())
    }

    #[inline]
    fn __encode(&self, track: &Self::Track, _: Option<Primitive>, out: &mut Vec<u8>) {
        wire::encode_varint(out, track.state.meta.id());
    }

    fn __attach(&mut self, track: &mut Self::Track, tick: &mut Tick) {
        // The identity stays: kept by `Tick::refresh`, or taken back by a
        // `Moved` value (`RefMeta::attach`).
        let old = std::mem::take(&mut track.state);
        track.state.meta = old.meta;
        if track.state.meta.attach(tick) != crate::tracked::Back::New {
            // Its fields' changes of the tick it left (or of this tick,
            // refreshed) still go out.
            track.state.dirty = old.dirty;
            track.state.replaced = old.replaced;
        }
        track.state.child_dirty = self.__ref_fields() & self.__present();
        self.__attach_children(&mut track.children, tick);
    }

    fn __detach(&mut self, track: &mut Self::Track, tick: &mut Tick) {
        // Its changes not sent yet are kept (for a `Moved` value).
        let id = track.state.meta.id();
        track.state.meta.detach(tick);
        track.state.child_dirty = 0;
        if tick.views.departed.noting() {
            let owner = tick.views.departed.enter_struct(id, T::__field_tag);
            self.__detach_children(&mut track.children, tick);
            tick.views.departed.leave_struct(owner);
        } else {
            self.__detach_children(&mut track.children, tick);
        }
    }

    // Always inlined into the collection loops that call it: the call
    // overhead was ~10% of the S1 bench (callgrind).
    #[inline(always)]
    fn __encode_patch(&mut self, track: &mut Self::Track, w: &mut PatchWriter<'_>) {
        let st = &mut track.state;
        if st.meta.seq != crate::tracked::NO_SEQ {
            let block = w.begin(&st.meta);
            // A new instance: every present field, with the ops of those
            // changed since it was attached (see `write_patch_block`).
            let mask = if st.meta.fresh {
                st.dirty | Schema::__present(self)
            } else {
                st.dirty
            };
            self.__write_changed(&track.children, mask, st.replaced, &mut w.out);
            w.end(block);
            st.meta.settle();
            st.dirty = 0;
            st.replaced = 0;
        }
        if st.child_dirty != 0 {
            let mask = std::mem::take(&mut st.child_dirty);
            self.__patch_children(&mut track.children, mask, w);
        }
    }

    fn __encode_full(&self, track: &Self::Track, w: &mut FullWriter<'_>) {
        let block = w.begin(track.state.meta.id());
        self.__write_present(&track.children, &mut w.out);
        w.end(block);
        self.__full_children(&track.children, w);
    }

    fn __with_node(&self, track: &Self::Track, f: &mut dyn FnMut(&dyn crate::view::Node)) {
        f(&StructNode { value: self, track });
    }
}

/// Writes a struct's block for a patch: every present field as ADD for a
/// fresh ref, else the dirty fields in index order (ADD, DELETE or
/// DELETE_AND_ADD). Settles the track's own state (not `child_dirty`).
#[inline]
pub(crate) fn write_patch_block(
    track: &mut TrackState,
    present: u64,
    w: &mut PatchWriter<'_>,
    mut field: impl FnMut(u32, &mut Vec<u8>),
) {
    if track.meta.seq == crate::tracked::NO_SEQ {
        return;
    }
    let block = w.begin(&track.meta);
    let out = &mut w.out;
    {
        // A new instance sends every present field, with the ops of the
        // fields changed since it was attached (a DELETE for one set and
        // unset, a DELETE_AND_ADD for one replaced), as the reference
        // records every assignment of a new instance.
        let mut mask = if track.meta.fresh {
            present | track.dirty
        } else {
            track.dirty
        };
        while mask != 0 {
            let i = mask.trailing_zeros();
            mask &= mask - 1;
            let bit = 1u64 << i;
            if present & bit == 0 {
                out.push(wire::spec::DELETE | i as u8);
            } else {
                let op = if track.replaced & bit != 0 {
                    wire::spec::DELETE_AND_ADD
                } else {
                    wire::spec::ADD
                };
                out.push(op | i as u8);
                field(i, out);
            }
        }
    }
    w.end(block);
    track.meta.settle();
    track.dirty = 0;
    track.replaced = 0;
}

/// Writes a struct's block for a full state: every present field as ADD.
#[inline]
pub(crate) fn write_full_block(
    track: &TrackState,
    present: u64,
    w: &mut FullWriter<'_>,
    mut field: impl FnMut(u32, &mut Vec<u8>),
) {
    let block = w.begin(track.meta.id());
    let mut mask = present;
    while mask != 0 {
        let i = mask.trailing_zeros();
        mask &= mask - 1;
        w.out.push(wire::spec::ADD | i as u8);
        field(i, &mut w.out);
    }
    w.end(block);
}

/// How a field's view is obtained (for the derive's `<field>_mut()`).
#[doc(hidden)]
pub trait FieldView: Field {
    /// The view type.
    type View<'a>
    where
        Self: 'a;

    /// Builds the view of a tracked value.
    fn __view_of<'a>(
        value: &'a mut Self,
        track: &'a mut Self::Track,
        tick: &'a mut Tick,
    ) -> Self::View<'a>;
}

impl<T: Schema> FieldView for T {
    type View<'a> = T::Mut<'a>;

    #[inline]
    fn __view_of<'a>(
        value: &'a mut Self,
        track: &'a mut Self::Track,
        tick: &'a mut Tick,
    ) -> T::Mut<'a> {
        value.__view(&mut track.state, &mut track.children, tick)
    }
}

impl<T: FieldView> FieldView for Option<T> {
    type View<'a>
        = Option<T::View<'a>>
    where
        T: 'a;

    #[inline]
    fn __view_of<'a>(
        value: &'a mut Self,
        track: &'a mut Self::Track,
        tick: &'a mut Tick,
    ) -> Self::View<'a> {
        value.as_mut().map(|v| T::__view_of(v, track, tick))
    }
}

/// Setter of a primitive field: records a change unless the value is the
/// same (JavaScript `===`).
#[doc(hidden)]
#[inline]
pub fn set_primitive<T: Field>(
    slot: &mut T,
    value: T,
    index: u32,
    track: &mut TrackState,
    tick: &mut Tick,
) {
    if !slot.__same(&value) {
        let was_present = slot.__present();
        *slot = value;
        track.mark_set(index, was_present, tick);
    }
}

/// Setter of a ref field: the old instance is detached, the new one attached
/// (after the parent's op, so its block follows).
#[doc(hidden)]
pub fn set_ref<T: Field>(
    slot: &mut T,
    value: T,
    index: u32,
    track: &mut TrackState,
    child_track: &mut T::Track,
    tick: &mut Tick,
) {
    set_ref_moved(slot, Moved::new(value), index, track, child_track, tick);
}

/// [`set_ref`] of a value that may keep its identity (see [`Moved`]);
/// returns the previous value with its own.
#[doc(hidden)]
pub fn set_ref_moved<T: Field>(
    slot: &mut T,
    value: Moved<T>,
    index: u32,
    track: &mut TrackState,
    child_track: &mut T::Track,
    tick: &mut Tick,
) -> Moved<T> {
    let had = slot.__present();
    if !had && !value.get().__present() {
        return value;
    }
    track.meta.touch(tick);
    let (value, new_track) = value.attach(tick);
    let mut old = std::mem::replace(slot, value);
    let mut old_track = std::mem::replace(child_track, new_track);
    tick.views.departed.from(track.meta.id(), index);
    old.__detach(&mut old_track, tick);
    tick.views.departed.done();
    track.mark_replaced(index, had, tick);
    Moved::taken(old, old_track, tick)
}

/// Writes `d5 | varint typeId` after a child's refId when its concrete type
/// is not the declared one (spec `schema-wire.md` §7).
#[doc(hidden)]
#[inline]
pub fn encode_type_tag(tag: Option<u32>, out: &mut Vec<u8>) {
    if let Some(tag) = tag {
        out.push(wire::spec::TYPE_ID);
        wire::encode_varint(out, tag);
    }
}
