//! Typed decoding into Rust types (`#[derive(Schema)]` structs and enums,
//! `Option`, primitives and the four collections).
//!
//! A [`Decoder<T>`] has two modes, with the same results:
//!
//! - The direct mode (`direct.rs`), where it starts: messages go straight
//!   into `T`, beside which it keeps only a lean refId table (each
//!   structure's shape, place in `T` and children). Its fast path
//!   (`fast.rs`) reads the common messages — field changes, new
//!   structures, new map entries — in one pass of code generated for `T`'s
//!   types; the others go through the parse pass that every decoder shares,
//!   then are applied to `T`.
//! - The shadow mode (this module), entered for good on the first message
//!   the direct mode does not cover: a [`DynamicDecoder`] built from `T`'s
//!   types (the "shadow", which owns the wire semantics: validation,
//!   refIds, reference counts, garbage collection, array holes) plus a
//!   mirror that writes every change into `T` as it is applied. Both are
//!   updated by the same pass, so the typed state never disagrees with the
//!   wire semantics.
//!
//! In both, a message is applied entirely or not at all, exactly as with
//! the dynamic decoder.
//!
//! The Rust side is reached through the hidden traits [`DecodeField`] (a
//! field or element type) and [`DecodeNode`] (a struct, enum or collection
//! value holding fields or elements); `#[derive(Schema)]` implements them
//! when the type is marked `#[schema(decode)]` (it must also implement
//! `Default`), this module implements them for primitives, `Option` and
//! the collections.
//!
//! # Shared instances
//!
//! Rust values have one owner, a refId on the wire may be held by two
//! parents (a Node.js server can assign one instance to two fields; a
//! Roomcast server never does). While an instance is shared, the typed
//! state keeps it in one of its slots and the others hold a default value
//! ([`Decoder::unrepresentable`] counts these situations); once only one
//! slot holds it again, it is there with every change. Moving an instance
//! between parents within one patch, the common case, is exact.
//!
//! # Cost
//!
//! Direct mode, fast path: one pass over the message, one walk from the
//! root per run of sibling blocks (a patch moving every entity of a map
//! walks to the map once), an undo record per field a patch changes (kept
//! in reused buffers: no allocation), none for a full state into a fresh
//! decoder. Shadow mode: field updates are written in one pass per message
//! with the same walks; a collection whose entries changed is rebuilt once
//! per message from the shadow (its element values are moved, not copied):
//! O(length of the collection).

use std::any::{Any, TypeId as RustTypeId};
use std::collections::HashMap;
use std::fmt;

use crate::collections::{ArrayMut, ArraySchema, CollectionSchema, MapSchema, SetSchema};
use crate::decoder::base::array_items::ArrayItems;
use crate::decoder::base::parse::{FieldWrite, Shape, TypedFields};
use crate::decoder::base::reference_tracker::{RefId, RefIdHasherBuilder, RefMap};
use crate::decoder::callbacks::Tree;
use crate::decoder::direct::{descend, path_to, Direct, LeanData, Place, NO_HANDLE};
use crate::decoder::dynamic::{Mirror, NodeData, Nodes};
use crate::decoder::{Cx, DynamicDecoder, Str, Value, MAX_DEPTH};
use crate::schema::Field;
use crate::tracked::Tick;
use crate::types::{ElementType, FieldType, Primitive, TypeError, TypeRegistry};
use crate::wire::DecodeError;

/// What [`DecodeNode::__decode_each`] reports of each element: its entry
/// handle, its key (maps) and its primitive value.
#[doc(hidden)]
pub type EachElement<'a> = dyn FnMut(u32, Option<&str>, Option<Value>) + 'a;

/// What the typed decoder writes into a struct field.
#[doc(hidden)]
pub enum FieldInput<'a> {
    /// A primitive value.
    Primitive(&'a Value),
    /// A string value (read from the message: no intermediate [`Value`]).
    Str(&'a str),
    /// A new child: a struct or enum of this concrete Rust type, or a
    /// collection (`None`).
    New(Option<RustTypeId>),
    /// A child that already existed elsewhere (moved here).
    Moved(Box<dyn DecodeNode>),
    /// DELETE: the field becomes unset (`None`, or the default value).
    Delete,
}

impl fmt::Debug for FieldInput<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Primitive(v) => f.debug_tuple("Primitive").field(v).finish(),
            Self::Str(v) => f.debug_tuple("Str").field(v).finish(),
            Self::New(t) => f.debug_tuple("New").field(t).finish(),
            Self::Moved(_) => f.write_str("Moved"),
            Self::Delete => f.write_str("Delete"),
        }
    }
}

/// One element of a rebuilt collection.
#[doc(hidden)]
pub enum Planned<'a> {
    /// The element at this position of the collection before the rebuild.
    Keep(usize),
    /// A primitive element.
    Primitive(&'a Value),
    /// A new child element (concrete Rust type of a struct / enum).
    New(Option<RustTypeId>),
    /// A new struct element (concrete Rust type) with the primitive fields
    /// of `mask` written from the shadow's values: built whole in one step
    /// (a full state creates most of its values this way).
    Filled(RustTypeId, &'a [Option<Value>], u64),
    /// A child element moved from elsewhere.
    Moved(Box<dyn DecodeNode>),
    /// Arrays ([`DecodeNode::__decode_set_elements`]): the elements at
    /// positions `start..start + len` before, in order.
    Keeps(usize, usize),
}

/// Elements displaced by a rebuild: their position before it, and the value.
#[doc(hidden)]
pub type Displaced = Vec<(usize, Box<dyn DecodeNode>)>;

/// A Rust value holding fields (a struct or enum) or elements (a
/// collection). Implemented by `#[derive(Schema)]` and for the collections;
/// not meant to be implemented or called by hand.
#[doc(hidden)]
pub trait DecodeNode: Any + Send {
    /// Struct: writes field `index`; `false` when the input does not fit
    /// the field's Rust type.
    fn __decode_field(&mut self, index: u8, input: FieldInput<'_>) -> bool {
        let _ = (index, input);
        false
    }

    /// Struct: writes the primitive fields whose bits are set in `mask`
    /// from `values` (the shadow's field values; unset: the field is
    /// cleared). Returns the number of fields that did not fit.
    fn __decode_primitives(&mut self, values: &[Option<Value>], mask: u64) -> u32 {
        let mut failed = 0;
        let mut bits = mask;
        while bits != 0 {
            let index = bits.trailing_zeros() as u8;
            bits &= bits - 1;
            let input = match values.get(usize::from(index)).and_then(Option::as_ref) {
                Some(v) => FieldInput::Primitive(v),
                None => FieldInput::Delete,
            };
            if !self.__decode_field(index, input) {
                failed += 1;
            }
        }
        failed
    }

    /// Struct: calls `f` with the child held by field `index`.
    fn __decode_visit_child(&mut self, index: u8, f: &mut dyn FnMut(&mut dyn DecodeNode)) {
        let _ = (index, f);
    }

    /// Struct: moves the child of field `index` out, leaving the field
    /// unset.
    fn __decode_take_child(&mut self, index: u8) -> Option<Box<dyn DecodeNode>> {
        let _ = index;
        None
    }

    /// Collection: calls `f` with the child at position `pos`.
    fn __decode_visit_element(&mut self, pos: usize, f: &mut dyn FnMut(&mut dyn DecodeNode)) {
        let _ = (pos, f);
    }

    /// Collection: [`__decode_primitives`](Self::__decode_primitives) on
    /// the element at position `pos`; `None` when there is no such
    /// element (or it holds no fields).
    fn __decode_element_primitives(
        &mut self,
        pos: usize,
        values: &[Option<Value>],
        mask: u64,
    ) -> Option<u32> {
        let mut failed = None;
        self.__decode_visit_element(pos, &mut |n| {
            failed = Some(n.__decode_primitives(values, mask));
        });
        failed
    }

    /// Collection: moves the child at position `pos` out, leaving a
    /// placeholder.
    fn __decode_take_element(&mut self, pos: usize) -> Option<Box<dyn DecodeNode>> {
        let _ = pos;
        None
    }

    /// Collection: replaces the content by `plan` (keys for maps); the
    /// previous child elements not kept go to `displaced`. Returns the
    /// number of planned elements that did not fit the element type.
    fn __decode_rebuild(
        &mut self,
        plan: Vec<(Option<&str>, Planned<'_>)>,
        displaced: &mut Displaced,
    ) -> usize {
        let _ = displaced;
        plan.len()
    }

    /// Struct: [`__decode_field`](Self::__decode_field), returning also the
    /// value the field held before, as a decoded value of wire type `p`
    /// (for the undo log of a message written while it is parsed).
    fn __decode_field_logged(
        &mut self,
        index: u8,
        input: FieldInput<'_>,
        p: Primitive,
    ) -> (bool, Option<Value>) {
        let old = self.__decode_read_field(index, p);
        (self.__decode_field(index, input), old)
    }

    /// Struct: field `index` as a decoded value of wire type `p` (`None`:
    /// unset, or a child).
    fn __decode_read_field(&mut self, index: u8, p: Primitive) -> Option<Value> {
        let _ = (index, p);
        None
    }

    /// Struct: the child held by field `index`.
    fn __decode_child_mut(&mut self, index: u8) -> Option<&mut dyn DecodeNode> {
        let _ = index;
        None
    }

    /// Collection: the child at entry handle `handle` (a handle-table
    /// place).
    fn __decode_handle_mut(&mut self, handle: u32) -> Option<&mut dyn DecodeNode> {
        let _ = handle;
        None
    }

    /// Collection: calls `f` with the child at entry handle `handle` (a
    /// handle-table place, stable while the entry lives).
    fn __decode_visit_handle(&mut self, handle: u32, f: &mut dyn FnMut(&mut dyn DecodeNode)) {
        let _ = (handle, f);
    }

    /// Collection: the element at entry handle `handle` as a decoded value
    /// of wire type `p` (`None`: no such element, or a child).
    fn __decode_handle_value(&mut self, handle: u32, p: Primitive) -> Option<Value> {
        let _ = (handle, p);
        None
    }

    /// Map: the element under `key` as a decoded value of wire type `p`
    /// (`None`: no such key, or a child).
    fn __decode_map_value(&mut self, key: &str, p: Primitive) -> Option<Value> {
        let _ = (key, p);
        None
    }

    /// Collection: room for `n` more elements.
    fn __decode_reserve(&mut self, n: usize) {
        let _ = n;
    }

    /// Map: sets `key` to the element `input` describes. Returns the entry
    /// handle the key had before (if any) and the one it has now (`None`:
    /// the element does not fit the element type, the key is then absent).
    fn __decode_map_set(&mut self, key: &str, input: FieldInput<'_>) -> (Option<u32>, Option<u32>) {
        let _ = (key, input);
        (None, None)
    }

    /// Map: removes `key`; the entry handle it had.
    fn __decode_map_remove(&mut self, key: &str) -> Option<u32> {
        let _ = key;
        None
    }

    /// Set / collection: appends the element `input` describes; its entry
    /// handle (`None`: it does not fit the element type).
    fn __decode_push(&mut self, input: FieldInput<'_>) -> Option<u32> {
        let _ = input;
        None
    }

    /// Set / collection: removes the entry at handle `handle`.
    fn __decode_remove_handle(&mut self, handle: u32) {
        let _ = handle;
    }

    /// Collection: removes every element.
    fn __decode_clear_all(&mut self) {}

    /// Collection: moves the child at entry handle `handle` out, leaving a
    /// placeholder.
    fn __decode_take_handle(&mut self, handle: u32) -> Option<Box<dyn DecodeNode>> {
        let _ = handle;
        None
    }

    /// Collection: puts a moved child at entry handle `handle` (in place
    /// of a placeholder); `false` if there is no such entry or the child
    /// does not fit.
    fn __decode_put_handle(&mut self, handle: u32, node: Box<dyn DecodeNode>) -> bool {
        let _ = (handle, node);
        false
    }

    /// Map: the entry handle of `key`.
    fn __decode_map_handle(&mut self, key: &str) -> Option<u32> {
        let _ = key;
        None
    }

    /// Array: replaces the elements by `plan`, in order; `fitted` gets,
    /// for each element planned (a run of kept ones counting its length),
    /// whether it fits the element type (those that do not are left out).
    /// The previous elements not kept are dropped.
    fn __decode_set_elements(&mut self, plan: Vec<Planned<'_>>, fitted: &mut Vec<bool>) {
        let _ = plan;
        fitted.clear();
    }

    /// Array: a new element value of concrete Rust type `ty` (`None`: a
    /// collection), boxed, outside the array (a child the decoder keeps
    /// while no slot holds it); `None` if the element type holds no such
    /// child.
    fn __decode_make(&self, ty: Option<RustTypeId>) -> Option<Box<dyn DecodeNode>> {
        let _ = ty;
        None
    }

    /// Collection: drops the positions of removed entries, then calls `f`
    /// with each element in order: its entry handle, its key (maps) and,
    /// for an element of primitive wire type `p`, its value.
    fn __decode_each(&mut self, p: Option<Primitive>, f: &mut EachElement<'_>) {
        let _ = (p, f);
    }

    /// For downcasting a boxed node.
    fn __decode_into_any(self: Box<Self>) -> Box<dyn Any + Send>;
}

/// A type that can be a field or a collection element of a typed state.
/// Implemented for primitives, `Option<T>`, `#[derive(Schema)]` types and
/// collections; not meant to be implemented or called by hand.
#[doc(hidden)]
pub trait DecodeField: Sized + Send + 'static {
    /// A value from a decoded primitive (`None` for refs or a mismatch).
    fn __decode_primitive(v: &Value) -> Option<Self> {
        let _ = v;
        None
    }

    /// Assigns a decoded primitive in place (reusing buffers).
    fn __decode_assign(&mut self, v: &Value) -> bool {
        match Self::__decode_primitive(v) {
            Some(x) => {
                *self = x;
                true
            }
            None => false,
        }
    }

    /// Assigns a decoded string in place.
    fn __decode_assign_str(&mut self, s: &str) -> bool {
        self.__decode_assign(&Value::String(Str::from(s)))
    }

    /// The value as a decoded primitive of wire type `p` (`None`: a child,
    /// unset, or not a value of that type).
    fn __decode_value(&self, p: Primitive) -> Option<Value> {
        let _ = p;
        None
    }

    /// A new child of concrete Rust type `ty` (`None`: a collection).
    fn __decode_new(ty: Option<RustTypeId>) -> Option<Self> {
        let _ = ty;
        None
    }

    /// Unboxes a moved child.
    fn __decode_unbox(node: Box<dyn DecodeNode>) -> Option<Self> {
        let _ = node;
        None
    }

    /// The child as a node (refs only).
    fn __decode_node(&mut self) -> Option<&mut dyn DecodeNode> {
        None
    }

    /// Moves the child out, leaving a placeholder (refs only).
    fn __decode_take(&mut self) -> Option<Box<dyn DecodeNode>> {
        None
    }

    /// [`DecodeNode::__decode_primitives`] on the child (`None`: not a
    /// child): statically dispatched for a struct, so that a collection
    /// writing its elements makes no virtual call per element.
    #[inline]
    fn __decode_fields(&mut self, values: &[Option<Value>], mask: u64) -> Option<u32> {
        Some(self.__decode_node()?.__decode_primitives(values, mask))
    }

    /// Boxes the value if it is a child (refs only).
    fn __decode_boxed(self) -> Option<Box<dyn DecodeNode>> {
        None
    }

    /// DELETE: unset (`None`, or the default value).
    fn __decode_clear(&mut self);
}

impl<'a> From<FieldWrite<'a>> for FieldInput<'a> {
    fn from(w: FieldWrite<'a>) -> Self {
        match w {
            FieldWrite::Primitive(v) => Self::Primitive(v),
            FieldWrite::Str(s) => Self::Str(s),
            FieldWrite::Delete => Self::Delete,
        }
    }
}

// The parse pass writes the primitive fields of typed values through the
// core's view of them.
impl TypedFields for dyn DecodeNode {
    #[inline]
    fn write_field(&mut self, index: u8, w: FieldWrite<'_>) -> bool {
        self.__decode_field(index, w.into())
    }

    #[inline]
    fn write_field_logged(
        &mut self,
        index: u8,
        w: FieldWrite<'_>,
        p: Primitive,
    ) -> (bool, Option<Value>) {
        self.__decode_field_logged(index, w.into(), p)
    }
}

/// Writes one field from a [`FieldInput`] (used by generated code).
#[doc(hidden)]
#[inline]
pub fn decode_set<F: DecodeField>(slot: &mut F, input: FieldInput<'_>) -> bool {
    match input {
        FieldInput::Primitive(v) => slot.__decode_assign(v),
        FieldInput::Str(v) => slot.__decode_assign_str(v),
        FieldInput::New(ty) => match F::__decode_new(ty) {
            Some(v) => {
                *slot = v;
                true
            }
            None => false,
        },
        FieldInput::Moved(node) => match F::__decode_unbox(node) {
            Some(v) => {
                *slot = v;
                true
            }
            None => false,
        },
        FieldInput::Delete => {
            slot.__decode_clear();
            true
        }
    }
}

/// Writes one primitive field from the shadow's value (`None`: unset),
/// used by generated code.
#[doc(hidden)]
#[inline]
pub fn decode_set_value<F: DecodeField>(slot: &mut F, value: Option<&Value>) -> bool {
    match value {
        Some(v) => slot.__decode_assign(v),
        None => {
            slot.__decode_clear();
            true
        }
    }
}

/// A `#[derive(Schema)]` struct or enum, as a child value. Implemented by
/// the derive.
#[doc(hidden)]
pub trait DecodeStruct: DecodeNode + Sized {
    /// A new instance when `ty` is this type (struct) or one of its
    /// variants' types (enum).
    fn __decode_new_struct(ty: RustTypeId) -> Option<Self>;

    /// The value left behind when an instance is moved out.
    fn __decode_placeholder() -> Self;
}

/// A type that can be the root of a typed state. Implemented by the derive.
#[doc(hidden)]
pub trait DecodeState: DecodeStruct + crate::decoder::fast::FastNode {
    /// The registry of the state's types, and the wire type id of each Rust
    /// type.
    ///
    /// # Errors
    ///
    /// The types do not make a valid registry.
    fn __decode_types() -> Result<(TypeRegistry, Vec<(RustTypeId, u32)>), TypeError>;
}

impl<T: DecodeStruct> DecodeField for T {
    #[inline]
    fn __decode_new(ty: Option<RustTypeId>) -> Option<Self> {
        T::__decode_new_struct(ty?)
    }

    fn __decode_unbox(node: Box<dyn DecodeNode>) -> Option<Self> {
        node.__decode_into_any().downcast::<T>().ok().map(|b| *b)
    }

    #[inline]
    fn __decode_node(&mut self) -> Option<&mut dyn DecodeNode> {
        Some(self)
    }

    #[inline]
    fn __decode_fields(&mut self, values: &[Option<Value>], mask: u64) -> Option<u32> {
        Some(DecodeNode::__decode_primitives(self, values, mask))
    }

    fn __decode_take(&mut self) -> Option<Box<dyn DecodeNode>> {
        Some(Box::new(std::mem::replace(self, T::__decode_placeholder())))
    }

    fn __decode_boxed(self) -> Option<Box<dyn DecodeNode>> {
        Some(Box::new(self))
    }

    fn __decode_clear(&mut self) {
        *self = T::__decode_placeholder();
    }
}

impl<T: DecodeField> DecodeField for Option<T> {
    fn __decode_primitive(v: &Value) -> Option<Self> {
        T::__decode_primitive(v).map(Some)
    }

    fn __decode_assign_str(&mut self, s: &str) -> bool {
        match self {
            Some(x) => x.__decode_assign_str(s),
            None => self.__decode_assign(&Value::String(Str::from(s))),
        }
    }

    fn __decode_value(&self, p: Primitive) -> Option<Value> {
        self.as_ref()?.__decode_value(p)
    }

    #[inline]
    fn __decode_assign(&mut self, v: &Value) -> bool {
        match self {
            Some(x) => x.__decode_assign(v),
            None => match T::__decode_primitive(v) {
                Some(x) => {
                    *self = Some(x);
                    true
                }
                None => false,
            },
        }
    }

    fn __decode_new(ty: Option<RustTypeId>) -> Option<Self> {
        T::__decode_new(ty).map(Some)
    }

    fn __decode_unbox(node: Box<dyn DecodeNode>) -> Option<Self> {
        T::__decode_unbox(node).map(Some)
    }

    #[inline]
    fn __decode_node(&mut self) -> Option<&mut dyn DecodeNode> {
        self.as_mut()?.__decode_node()
    }

    #[inline]
    fn __decode_fields(&mut self, values: &[Option<Value>], mask: u64) -> Option<u32> {
        self.as_mut()?.__decode_fields(values, mask)
    }

    fn __decode_take(&mut self) -> Option<Box<dyn DecodeNode>> {
        self.take()?.__decode_boxed()
    }

    fn __decode_boxed(self) -> Option<Box<dyn DecodeNode>> {
        self?.__decode_boxed()
    }

    fn __decode_clear(&mut self) {
        *self = None;
    }
}

macro_rules! numeric_decode {
    ($($t:ty),*) => {$(
        impl DecodeField for $t {
            #[inline]
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss, clippy::cast_lossless, reason = "wire values wrap like the reference")]
            fn __decode_primitive(v: &Value) -> Option<Self> {
                Some(match *v {
                    Value::Int(i) | Value::BigInt(i) => i as $t,
                    Value::Uint(u) | Value::BigUint(u) => u as $t,
                    Value::Number(n) => n as $t,
                    Value::Bool(_) | Value::String(_) | Value::Ref(_) => return None,
                })
            }

            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss, clippy::cast_lossless, clippy::cast_precision_loss, reason = "the value as its wire type holds it")]
            fn __decode_value(&self, p: Primitive) -> Option<Value> {
                number_value(p, *self as i64, *self as u64, *self as f64)
            }

            fn __decode_clear(&mut self) {
                *self = 0 as $t;
            }
        }
    )*};
}

/// A number as the decoded value of wire type `p` (`i`, `u`, `f`: the
/// number as each kind).
fn number_value(p: Primitive, i: i64, u: u64, f: f64) -> Option<Value> {
    Some(match p {
        Primitive::Int8
        | Primitive::Uint8
        | Primitive::Int16
        | Primitive::Uint16
        | Primitive::Int32
        | Primitive::Uint32
        | Primitive::Int64 => Value::Int(i),
        Primitive::Uint64 => Value::Uint(u),
        Primitive::Number | Primitive::Float32 | Primitive::Float64 => Value::Number(f),
        Primitive::BigInt64 => Value::BigInt(i),
        Primitive::BigUint64 => Value::BigUint(u),
        _ => return None,
    })
}

numeric_decode!(i8, u8, i16, u16, i32, u32, i64, u64, f32, f64);

impl DecodeField for bool {
    fn __decode_primitive(v: &Value) -> Option<Self> {
        v.as_bool()
    }

    fn __decode_value(&self, p: Primitive) -> Option<Value> {
        (p == Primitive::Boolean).then_some(Value::Bool(*self))
    }

    fn __decode_clear(&mut self) {
        *self = false;
    }
}

/// The first write of a string value (out of line: keeps the callers, the
/// generated field writers, light).
#[inline(never)]
fn assign_new_string(slot: &mut String, s: &str) {
    *slot = s.to_owned();
}

impl DecodeField for String {
    fn __decode_primitive(v: &Value) -> Option<Self> {
        v.as_str().map(str::to_owned)
    }

    #[inline]
    fn __decode_assign(&mut self, v: &Value) -> bool {
        match v.as_str() {
            // An exact allocation, not the growth path, when the buffer is
            // too small (the first write of a new value).
            Some(s) if self.capacity() < s.len() => {
                assign_new_string(self, s);
                true
            }
            Some(s) => {
                self.clear();
                self.push_str(s);
                true
            }
            None => false,
        }
    }

    #[inline]
    fn __decode_assign_str(&mut self, s: &str) -> bool {
        if self.capacity() < s.len() {
            assign_new_string(self, s);
        } else {
            self.clear();
            self.push_str(s);
        }
        true
    }

    fn __decode_value(&self, p: Primitive) -> Option<Value> {
        (p == Primitive::String).then(|| Value::String(Str::from(self.as_str())))
    }

    fn __decode_clear(&mut self) {
        self.clear();
    }
}

/// Builds a collection element from a plan entry; fields of a
/// [`Planned::Filled`] element that do not fit are counted in `failed`.
#[inline]
fn planned<V: DecodeField>(
    entry: Planned<'_>,
    old: &mut [Option<V>],
    failed: &mut usize,
) -> Option<V> {
    match entry {
        Planned::Keep(p) => old.get_mut(p)?.take(),
        Planned::Primitive(v) => V::__decode_primitive(v),
        Planned::New(ty) => V::__decode_new(ty),
        Planned::Filled(ty, values, mask) => {
            let mut v = V::__decode_new(Some(ty))?;
            *failed += v.__decode_fields(values, mask).unwrap_or(mask.count_ones()) as usize;
            Some(v)
        }
        Planned::Moved(node) => V::__decode_unbox(node),
        // (Arrays only, handled there.)
        Planned::Keeps(..) => None,
    }
}

/// The old elements not kept by a rebuild.
fn displace<V: DecodeField>(old: Vec<Option<V>>, displaced: &mut Displaced) {
    for (p, v) in old.into_iter().enumerate() {
        if let Some(node) = v.and_then(V::__decode_boxed) {
            displaced.push((p, node));
        }
    }
}

macro_rules! collection_field {
    ($($c:ident),*) => {$(
        impl<V: DecodeField + Field> DecodeField for $c<V> {
            fn __decode_new(ty: Option<RustTypeId>) -> Option<Self> {
                ty.is_none().then(Self::default)
            }

            fn __decode_unbox(node: Box<dyn DecodeNode>) -> Option<Self> {
                node.__decode_into_any().downcast::<Self>().ok().map(|b| *b)
            }

            #[inline]
            fn __decode_node(&mut self) -> Option<&mut dyn DecodeNode> {
                Some(self)
            }

            fn __decode_take(&mut self) -> Option<Box<dyn DecodeNode>> {
                Some(Box::new(std::mem::take(self)))
            }

            fn __decode_boxed(self) -> Option<Box<dyn DecodeNode>> {
                Some(Box::new(self))
            }

            fn __decode_clear(&mut self) {
                *self = Self::default();
            }
        }
    )*};
}

collection_field!(MapSchema, ArraySchema, SetSchema, CollectionSchema);

/// The element accessors of a collection kept in an `Indexed` (`inner`):
/// maps, sets and collections.
macro_rules! indexed_elements {
    () => {
        fn __decode_visit_element(&mut self, pos: usize, f: &mut dyn FnMut(&mut dyn DecodeNode)) {
            if let Some(node) = self.inner.value_mut(pos).and_then(V::__decode_node) {
                f(node);
            }
        }

        fn __decode_element_primitives(
            &mut self,
            pos: usize,
            values: &[Option<Value>],
            mask: u64,
        ) -> Option<u32> {
            self.inner.value_mut(pos)?.__decode_fields(values, mask)
        }

        fn __decode_take_element(&mut self, pos: usize) -> Option<Box<dyn DecodeNode>> {
            self.inner.value_mut(pos)?.__decode_take()
        }

        fn __decode_handle_mut(&mut self, handle: u32) -> Option<&mut dyn DecodeNode> {
            self.inner.value_at_place(handle)?.__decode_node()
        }

        fn __decode_visit_handle(&mut self, handle: u32, f: &mut dyn FnMut(&mut dyn DecodeNode)) {
            if let Some(node) = self.inner.value_at_place(handle).and_then(V::__decode_node) {
                f(node);
            }
        }

        fn __decode_handle_value(&mut self, handle: u32, p: Primitive) -> Option<Value> {
            self.inner.value_at_place(handle)?.__decode_value(p)
        }

        fn __decode_take_handle(&mut self, handle: u32) -> Option<Box<dyn DecodeNode>> {
            self.inner.value_at_place(handle)?.__decode_take()
        }

        fn __decode_put_handle(&mut self, handle: u32, node: Box<dyn DecodeNode>) -> bool {
            match (self.inner.value_at_place(handle), V::__decode_unbox(node)) {
                (Some(slot), Some(v)) => {
                    *slot = v;
                    true
                }
                _ => false,
            }
        }

        fn __decode_each(&mut self, p: Option<Primitive>, f: &mut EachElement<'_>) {
            self.inner.compact_all();
            for slot in self.inner.slots.iter().flatten() {
                let value = p.and_then(|p| slot.value.__decode_value(p));
                f(slot.loc, slot.key.as_key(), value);
            }
        }
    };
}

/// The key of a collection entry, as the typed decoder reports it.
trait AsKey {
    fn as_key(&self) -> Option<&str>;
}

impl AsKey for () {
    fn as_key(&self) -> Option<&str> {
        None
    }
}

impl AsKey for crate::collections::map_key::MapKey {
    fn as_key(&self) -> Option<&str> {
        Some(self.as_str())
    }
}

/// A collection element from a [`FieldInput`] (`None`: it does not fit).
fn element<V: DecodeField>(input: FieldInput<'_>) -> Option<V> {
    match input {
        FieldInput::Primitive(v) => V::__decode_primitive(v),
        FieldInput::Str(s) => V::__decode_primitive(&Value::String(Str::from(s))),
        FieldInput::New(ty) => V::__decode_new(ty),
        FieldInput::Moved(node) => V::__decode_unbox(node),
        FieldInput::Delete => None,
    }
}

impl<V: DecodeField + Field> DecodeNode for MapSchema<V> {
    indexed_elements!();

    fn __decode_reserve(&mut self, n: usize) {
        self.reserve(n);
    }

    fn __decode_map_set(&mut self, key: &str, input: FieldInput<'_>) -> (Option<u32>, Option<u32>) {
        // (One hash of the key: the entry is found once, then written at
        // its place or added.)
        let before = self.place(key);
        match (element::<V>(input), before) {
            (Some(v), Some(h)) => {
                if let Some(slot) = self.inner.value_at_place(h) {
                    *slot = v;
                }
                (before, before)
            }
            (Some(v), None) => (None, self.insert_absent(key, v)),
            (None, Some(_)) => {
                self.remove_untracked(key);
                (before, None)
            }
            (None, None) => (None, None),
        }
    }

    fn __decode_map_remove(&mut self, key: &str) -> Option<u32> {
        self.remove_untracked(key)
    }

    fn __decode_map_handle(&mut self, key: &str) -> Option<u32> {
        self.place(key)
    }

    fn __decode_map_value(&mut self, key: &str, p: Primitive) -> Option<Value> {
        let h = self.place(key)?;
        self.inner.value_at_place(h)?.__decode_value(p)
    }

    fn __decode_clear_all(&mut self) {
        self.clear_untracked();
    }

    fn __decode_rebuild(
        &mut self,
        plan: Vec<(Option<&str>, Planned<'_>)>,
        displaced: &mut Displaced,
    ) -> usize {
        let old = std::mem::take(self);
        let mut old: Vec<Option<V>> = old
            .inner
            .slots
            .into_iter()
            .flatten()
            .map(|s| Some(s.value))
            .collect();
        self.reserve(plan.len());
        let mut failed = 0;
        for (key, entry) in plan {
            let key = key.unwrap_or_default();
            if let Planned::Filled(ty, values, mask) = entry {
                // Inserted empty, then filled in its slot: a value filled
                // on the stack and then moved into the map was read back
                // while its field writes were still in flight (a
                // store-forwarding stall per entry).
                let Some(v) = V::__decode_new(Some(ty)) else {
                    failed += 1;
                    continue;
                };
                let pos = match self.insert_str(key, v) {
                    None => Some(self.inner.slots.len() - 1),
                    Some(_) => self.pos(key).map(|p| p as usize),
                };
                let filled = pos
                    .and_then(|p| self.inner.value_mut(p))
                    .and_then(|v| v.__decode_fields(values, mask));
                failed += filled.unwrap_or(mask.count_ones()) as usize;
                continue;
            }
            match planned(entry, &mut old, &mut failed) {
                Some(v) => {
                    self.insert_str(key, v);
                }
                None => failed += 1,
            }
        }
        displace(old, displaced);
        failed
    }

    fn __decode_into_any(self: Box<Self>) -> Box<dyn Any + Send> {
        self
    }
}

macro_rules! indexed_node {
    ($($c:ident),*) => {$(
        impl<V: DecodeField + Field> DecodeNode for $c<V> {
            indexed_elements!();

            fn __decode_reserve(&mut self, n: usize) {
                self.inner.reserve(n);
            }

            fn __decode_push(&mut self, input: FieldInput<'_>) -> Option<u32> {
                let pos = self.inner.push_untracked((), element::<V>(input)?);
                Some(self.inner.loc_of(pos))
            }

            fn __decode_remove_handle(&mut self, handle: u32) {
                self.inner.remove_untracked(handle);
            }

            fn __decode_clear_all(&mut self) {
                self.inner.clear_untracked();
            }

            fn __decode_rebuild(&mut self, plan: Vec<(Option<&str>, Planned<'_>)>, displaced: &mut Displaced) -> usize {
                let old = std::mem::take(self);
                let mut old: Vec<Option<V>> =
                    old.inner.slots.into_iter().flatten().map(|s| Some(s.value)).collect();
                let mut failed = 0;
                for (_, entry) in plan {
                    match planned(entry, &mut old, &mut failed) {
                        Some(v) => {
                            self.inner.push_untracked((), v);
                        }
                        None => failed += 1,
                    }
                }
                displace(old, displaced);
                failed
            }

            fn __decode_into_any(self: Box<Self>) -> Box<dyn Any + Send> {
                self
            }
        }
    )*};
}

indexed_node!(SetSchema, CollectionSchema);

impl<V: DecodeField + Field> DecodeNode for ArraySchema<V> {
    // (An element's entry handle is its position.)
    fn __decode_visit_handle(&mut self, handle: u32, f: &mut dyn FnMut(&mut dyn DecodeNode)) {
        self.__decode_visit_element(handle as usize, f);
    }

    fn __decode_handle_value(&mut self, handle: u32, p: Primitive) -> Option<Value> {
        self.get(handle as usize)?.__decode_value(p)
    }

    fn __decode_take_handle(&mut self, handle: u32) -> Option<Box<dyn DecodeNode>> {
        self.__decode_take_element(handle as usize)
    }

    fn __decode_make(&self, ty: Option<RustTypeId>) -> Option<Box<dyn DecodeNode>> {
        V::__decode_new(ty)?.__decode_boxed()
    }

    fn __decode_put_handle(&mut self, handle: u32, node: Box<dyn DecodeNode>) -> bool {
        let mut tick = Tick::default();
        let mut view = ArrayMut::__new(self, &mut tick);
        match (view.element_mut(handle as usize), V::__decode_unbox(node)) {
            (Some((slot, _, _)), Some(v)) => {
                *slot = v;
                true
            }
            _ => false,
        }
    }

    fn __decode_set_elements(&mut self, plan: Vec<Planned<'_>>, fitted: &mut Vec<bool>) {
        fitted.clear();
        let n = self.len();
        // The elements kept, in their order: the others are removed and
        // the new ones inserted in place when they are few (a push, a
        // shift), else the array is rebuilt.
        let (mut kept, mut added, mut next) = (0, 0, 0);
        let mut in_order = true;
        for entry in &plan {
            match *entry {
                Planned::Keeps(start, len) => {
                    in_order &= start >= next && start + len <= n;
                    next = start + len;
                    kept += len;
                }
                _ => added += 1,
            }
        }
        let mut failed = 0;
        if in_order && ((n - kept) + added) * 8 <= n + 64 {
            // Removals from the end, then insertions from the start.
            let mut end = n;
            for entry in plan.iter().rev() {
                if let Planned::Keeps(start, len) = *entry {
                    if start + len < end {
                        self.splice_untracked(start + len..end, std::iter::empty());
                    }
                    end = start;
                }
            }
            if end > 0 {
                self.splice_untracked(0..end, std::iter::empty());
            }
            let mut at = 0;
            for entry in plan {
                if let Planned::Keeps(_, len) = entry {
                    at += len;
                    fitted.extend(std::iter::repeat_n(true, len));
                    continue;
                }
                let v = planned(entry, &mut [], &mut failed);
                fitted.push(v.is_some());
                if let Some(v) = v {
                    self.splice_untracked(at..at, std::iter::once(v));
                    at += 1;
                }
            }
            return;
        }
        let mut old = take_elements(self);
        let mut values = Vec::with_capacity(plan.len());
        for entry in plan {
            if let Planned::Keeps(start, len) = entry {
                for k in start..start + len {
                    let v = old.get_mut(k).and_then(Option::take);
                    fitted.push(v.is_some());
                    values.extend(v);
                }
                continue;
            }
            let v = planned(entry, &mut old, &mut failed);
            fitted.push(v.is_some());
            values.extend(v);
        }
        self.splice_untracked(0..0, values);
    }

    fn __decode_visit_element(&mut self, pos: usize, f: &mut dyn FnMut(&mut dyn DecodeNode)) {
        // A client-side array is never attached to an encoder: the view's
        // bookkeeping goes to a throwaway tick.
        let mut tick = Tick::default();
        let mut view = ArrayMut::__new(self, &mut tick);
        if let Some(node) = view
            .element_mut(pos)
            .and_then(|(v, _, _)| v.__decode_node())
        {
            f(node);
        }
    }

    fn __decode_take_element(&mut self, pos: usize) -> Option<Box<dyn DecodeNode>> {
        let mut tick = Tick::default();
        let mut view = ArrayMut::__new(self, &mut tick);
        view.element_mut(pos)?.0.__decode_take()
    }

    fn __decode_rebuild(
        &mut self,
        plan: Vec<(Option<&str>, Planned<'_>)>,
        displaced: &mut Displaced,
    ) -> usize {
        let mut old = take_elements(self);
        let mut failed = 0;
        for (_, entry) in plan {
            match planned(entry, &mut old, &mut failed) {
                Some(v) => self.push(v),
                None => failed += 1,
            }
        }
        displace(old, displaced);
        failed
    }

    fn __decode_into_any(self: Box<Self>) -> Box<dyn Any + Send> {
        self
    }
}

/// The elements of `array` taken out in order (the array is left as a new
/// one).
fn take_elements<V: DecodeField + Field>(array: &mut ArraySchema<V>) -> Vec<Option<V>> {
    let mut old = std::mem::take(array);
    let n = old.len();
    old.splice_untracked(0..n, std::iter::empty())
        .into_iter()
        .map(Some)
        .collect()
}

/// A set of refIds: a bit vector while the largest is within a small
/// multiple of the number of entries (so its size stays proportional to
/// them), a hash set otherwise.
enum RefSet {
    Bits(Vec<u64>),
    Hash(std::collections::HashSet<RefId, RefIdHasherBuilder>),
}

impl RefSet {
    /// A set for up to `n` refIds, the largest `max`.
    fn new(n: usize, max: u32) -> Self {
        let words = max as usize / 64 + 1;
        if words <= n + 64 {
            Self::Bits(vec![0; words])
        } else {
            Self::Hash(std::collections::HashSet::with_capacity_and_hasher(
                n,
                RefIdHasherBuilder::default(),
            ))
        }
    }

    /// Adds `r`; `false` if it was there.
    #[inline]
    fn insert(&mut self, r: RefId) -> bool {
        match self {
            Self::Bits(words) => {
                let (w, bit) = (r.0 as usize / 64, 1u64 << (r.0 % 64));
                match words.get_mut(w) {
                    Some(word) => {
                        let new = *word & bit == 0;
                        *word |= bit;
                        new
                    }
                    None => {
                        // (Not reached: `max` bounds the refIds.)
                        let mut set = std::collections::HashSet::default();
                        for (i, &word) in words.iter().enumerate() {
                            for b in 0..64 {
                                if word & (1 << b) != 0 {
                                    set.insert(RefId((i * 64 + b) as u32));
                                }
                            }
                        }
                        *self = Self::Hash(set);
                        self.insert(r)
                    }
                }
            }
            Self::Hash(set) => set.insert(r),
        }
    }
}

/// Where a child lives in the typed state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Slot {
    Field(u8),
    Pos(u32),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Loc {
    parent: RefId,
    slot: Slot,
}

/// The mirror: locations of the typed children, and children in transit.
#[derive(Default)]
struct Typed {
    /// Where each child instance or collection lives (not the root).
    loc: RefMap<Loc>,
    /// Child refIds of each collection, by typed position.
    elems: RefMap<Vec<Option<RefId>>>,
    /// Children detached during the current message, until they are
    /// re-attached or collected.
    limbo: HashMap<RefId, Box<dyn DecodeNode>, RefIdHasherBuilder>,
    /// Rust type of each wire type id.
    rust_types: Vec<Option<RustTypeId>>,
    /// Changes the Rust types could not hold.
    unrepresentable: u64,
    /// Children moved out of a live slot during the current message.
    moved: Vec<RefId>,
    /// Where those children were taken from, to put them back if that slot
    /// still holds them at the end of the message (an instance shared by
    /// two parents and released by the second).
    origins: Vec<(RefId, Loc)>,
    /// Collections rebuilt while no slot held them: rebuilt again at the
    /// end of the message if one holds them then.
    unheld: Vec<RefId>,
    /// Structs whose child fields changed while no slot held them:
    /// re-synced at the end of the message if one holds them then.
    unheld_structs: Vec<RefId>,
    /// Nesting of [`Typed::fill`] (bounded: the shadow may hold cycles).
    filling: usize,
    /// Primitive fields changed by the message, written in one pass before
    /// the next structural change (one walk per run of siblings).
    pending: Vec<(RefId, u64)>,
    /// Collections whose content changed: rebuilt together before the next
    /// walk that needs them (once per message in the common case).
    dirty: Vec<RefId>,
}

/// Number of field changes in queued primitive writes.
fn changes(pending: &[(RefId, u64)]) -> u64 {
    pending.iter().map(|p| u64::from(p.1.count_ones())).sum()
}

/// Calls `f` with the typed node of `id`.
fn visit(
    loc: &RefMap<Loc>,
    root: &mut dyn DecodeNode,
    limbo: &mut HashMap<RefId, Box<dyn DecodeNode>, RefIdHasherBuilder>,
    id: RefId,
    depth: usize,
    f: &mut dyn FnMut(&mut dyn DecodeNode),
) -> bool {
    if id == RefId::ROOT {
        f(root);
        return true;
    }
    if let Some(node) = limbo.get_mut(&id) {
        f(node.as_mut());
        return true;
    }
    if depth > MAX_DEPTH {
        return false;
    }
    let Some(&Loc { parent, slot }) = loc.get(id) else {
        return false;
    };
    let mut found = false;
    visit(
        loc,
        root,
        limbo,
        parent,
        depth + 1,
        &mut |p: &mut dyn DecodeNode| {
            let mut inner = |n: &mut dyn DecodeNode| {
                found = true;
                f(n);
            };
            match slot {
                Slot::Field(i) => p.__decode_visit_child(i, &mut inner),
                Slot::Pos(pos) => p.__decode_visit_element(pos as usize, &mut inner),
            }
        },
    );
    found
}

impl Typed {
    /// Records the children of collection `at`, by position in its typed
    /// value (`None`: a primitive element).
    fn place_elements(&mut self, at: RefId, ids: Vec<Option<RefId>>) {
        for (p, c) in ids.iter().enumerate() {
            if let Some(c) = *c {
                self.loc.insert(
                    c,
                    Loc {
                        parent: at,
                        slot: Slot::Pos(p as u32),
                    },
                );
            }
        }
        self.elems.insert(at, ids);
    }

    fn rust_type(&self, nodes: &Nodes, id: RefId) -> Option<RustTypeId> {
        match nodes.map.get(id)?.shape {
            Shape::Struct(t) => self.rust_types.get(t.0 as usize).copied().flatten(),
            Shape::Collection(..) => None,
        }
    }

    /// Whether `id` is in the typed state (its parents lead to the root),
    /// rather than detached (in the limbo, or inside something that is).
    fn reachable(&self, mut id: RefId) -> bool {
        for _ in 0..=MAX_DEPTH {
            if id == RefId::ROOT {
                return true;
            }
            match self.loc.get(id) {
                Some(l) => id = l.parent,
                None => return false,
            }
        }
        false
    }

    /// Whether `id` has a typed value: in the state, or detached in the
    /// limbo (directly or inside something that is).
    fn exists(&self, mut id: RefId) -> bool {
        for _ in 0..=MAX_DEPTH {
            if id == RefId::ROOT || self.limbo.contains_key(&id) {
                return true;
            }
            match self.loc.get(id) {
                Some(l) => id = l.parent,
                None => return false,
            }
        }
        false
    }

    /// Gives a typed value created for an existing structure the content
    /// the shadow holds for it (a structure is created empty when the
    /// message creates it, but later when it was missing from the typed
    /// state, e.g. held only by something that was being collected).
    fn fill(&mut self, root: &mut dyn DecodeNode, nodes: &Nodes, id: RefId) {
        self.fill_as(root, nodes, id, true);
    }

    /// [`fill`](Self::fill); the primitive fields only with `primitives`
    /// (a value built [`Planned::Filled`] has them already).
    fn fill_as(&mut self, root: &mut dyn DecodeNode, nodes: &Nodes, id: RefId, primitives: bool) {
        if self.filling > MAX_DEPTH {
            return;
        }
        self.filling += 1;
        match nodes.map.get(id).map(|n| (&n.data, nodes.fields_of(n))) {
            Some((NodeData::Struct(_), Some(fields))) => {
                for (i, v) in fields.iter().enumerate() {
                    let i = i as u8;
                    match v {
                        Some(Value::Ref(c)) => {
                            let here = Loc {
                                parent: id,
                                slot: Slot::Field(i),
                            };
                            if self.loc.get(*c) != Some(&here) {
                                self.field(root, nodes, id, i, None);
                            }
                        }
                        Some(_) if primitives => self.pending.push((id, 1 << i)),
                        Some(_) | None => {}
                    }
                }
            }
            Some(_) if self.dirty.last() != Some(&id) => self.dirty.push(id),
            Some(_) | None => {}
        }
        self.filling -= 1;
    }

    /// Moves child `id` out of where it lives now into the limbo.
    fn detach(&mut self, root: &mut dyn DecodeNode, id: RefId) {
        if self.limbo.contains_key(&id) {
            return;
        }
        let Some(Loc { parent, slot }) = self.loc.remove(id) else {
            return;
        };
        self.moved.push(id);
        self.origins.push((id, Loc { parent, slot }));
        let mut taken = None;
        visit(&self.loc, root, &mut self.limbo, parent, 0, &mut |p| {
            taken = match slot {
                Slot::Field(i) => p.__decode_take_child(i),
                Slot::Pos(pos) => p.__decode_take_element(pos as usize),
            };
        });
        match taken {
            Some(node) => {
                self.limbo.insert(id, node);
            }
            None => self.unrepresentable += 1,
        }
    }

    /// Puts back the children that were moved out of a slot which still
    /// holds them on the wire while their typed value is outside the state
    /// (an instance shared by two parents, released by the one that
    /// received it last, or left in a subtree being collected; in this
    /// message or a later one). Origins of instances that are still shared
    /// are kept for later messages.
    fn restore(&mut self, root: &mut dyn DecodeNode, nodes: &Nodes) {
        if self.origins.is_empty() {
            return;
        }
        let mut origins = std::mem::take(&mut self.origins);
        let mut keep = Vec::new();
        let mut seen: std::collections::HashSet<(RefId, Loc), RefIdHasherBuilder> =
            std::collections::HashSet::default();
        for &(id, origin) in origins.iter().rev() {
            let alive = nodes.map.get(id).is_some_and(|n| n.rc.count > 0);
            let held = Value::Ref(id);
            let holds = match nodes.map.get(origin.parent).map(|n| (&n.data, origin.slot)) {
                Some((NodeData::Struct(span), Slot::Field(i))) => {
                    nodes
                        .fields
                        .get(*span)
                        .get(usize::from(i))
                        .and_then(Option::as_ref)
                        == Some(&held)
                }
                Some((NodeData::Map(m), Slot::Pos(_))) => m.entries.values().any(|v| *v == held),
                Some((NodeData::Array(items), Slot::Pos(_))) => items.iter().any(|v| *v == held),
                Some((NodeData::Indexed(entries), Slot::Pos(_))) => {
                    entries.values().any(|v| *v == held)
                }
                _ => false,
            };
            if !alive || !holds || !seen.insert((id, origin)) {
                continue;
            }
            if self.reachable(id) || !self.reachable(origin.parent) {
                // Still shared: the instance lives in its other slot.
                keep.push((id, origin));
                continue;
            }
            // The instance is outside the state (in the limbo, or in a
            // subtree about to be collected) while this slot holds it.
            self.detach(root, id);
            if !self.limbo.contains_key(&id) {
                continue;
            }
            match origin.slot {
                Slot::Field(i) => {
                    let mut input = self.limbo.remove(&id).map(FieldInput::Moved);
                    let mut ok = false;
                    visit(
                        &self.loc,
                        root,
                        &mut self.limbo,
                        origin.parent,
                        0,
                        &mut |n| {
                            if let Some(input) = input.take() {
                                ok = n.__decode_field(i, input);
                            }
                        },
                    );
                    if ok {
                        self.loc.insert(id, origin);
                    } else {
                        self.unrepresentable += 1;
                    }
                }
                Slot::Pos(_) => {
                    // The collection's rebuild takes it from the limbo.
                    if self.dirty.last() != Some(&origin.parent) {
                        self.dirty.push(origin.parent);
                    }
                }
            }
        }
        origins.clear();
        origins.extend(keep);
        self.origins = origins;
        if !self.dirty.is_empty() {
            self.flush(root, nodes);
        }
    }

    /// The input that puts child `id` into a new slot.
    fn obtain(
        &mut self,
        root: &mut dyn DecodeNode,
        nodes: &Nodes,
        id: RefId,
    ) -> FieldInput<'static> {
        self.detach(root, id);
        match self.limbo.remove(&id) {
            Some(node) => FieldInput::Moved(node),
            None => FieldInput::New(self.rust_type(nodes, id)),
        }
    }

    /// Applies the queued collection rebuilds and primitive writes.
    fn flush(&mut self, root: &mut dyn DecodeNode, nodes: &Nodes) {
        // Rebuilds and writes may queue more of both (new values filled
        // from the shadow): until both queues are empty.
        loop {
            if !self.dirty.is_empty() {
                let dirty = std::mem::take(&mut self.dirty);
                for &at in &dirty {
                    self.collection(root, nodes, at);
                }
                continue;
            }
            if self.pending.is_empty() {
                break;
            }
            self.write_pending(root, nodes);
        }
    }

    /// Writes the queued primitive fields: one walk from the root per run
    /// of siblings of one collection (or per struct elsewhere).
    fn write_pending(&mut self, root: &mut dyn DecodeNode, nodes: &Nodes) {
        let pending = std::mem::take(&mut self.pending);
        let mut failed = 0u64;
        // Writes the fields of one struct; returns the number that did not
        // fit.
        let write = |n: &mut dyn DecodeNode, at: RefId, mask: u64| -> u64 {
            match nodes.struct_fields(at) {
                Some(fields) => u64::from(n.__decode_primitives(fields, mask)),
                None => u64::from(mask.count_ones()),
            }
        };
        let mut i = 0;
        while i < pending.len() {
            let (id, first_mask) = pending[i];
            let loc = &self.loc;
            if let Some(&Loc {
                parent,
                slot: Slot::Pos(_),
            }) = loc.get(id)
            {
                // A run of elements of one collection: one walk to it, then
                // each element by position.
                let mut end = i;
                let reached = visit(loc, root, &mut self.limbo, parent, 0, &mut |p| {
                    while let Some(&(at, mut mask)) = pending.get(end) {
                        let Some(&Loc {
                            parent: q,
                            slot: Slot::Pos(pos),
                        }) = loc.get(at)
                        else {
                            break;
                        };
                        if q != parent {
                            break;
                        }
                        end += 1;
                        // The struct's consecutive entries at once.
                        while let Some(&(next, m)) = pending.get(end) {
                            if next != at {
                                break;
                            }
                            mask |= m;
                            end += 1;
                        }
                        let done = match nodes.struct_fields(at) {
                            Some(fields) => {
                                p.__decode_element_primitives(pos as usize, fields, mask)
                            }
                            None => None,
                        };
                        failed += u64::from(done.unwrap_or(mask.count_ones()));
                    }
                });
                if end == i {
                    // Not reached: the run, for the count of what is lost.
                    end = i + 1;
                    while end < pending.len()
                        && matches!(loc.get(pending[end].0), Some(&Loc { parent: q, slot: Slot::Pos(_) }) if q == parent)
                    {
                        end += 1;
                    }
                }
                if !reached && self.exists(parent) {
                    failed += changes(&pending[i..end]);
                }
                i = end;
            } else {
                // A struct elsewhere (or the root): its consecutive entries
                // at once.
                let mut end = i + 1;
                let mut mask = first_mask;
                while let Some(&(at, m)) = pending.get(end) {
                    if at != id {
                        break;
                    }
                    mask |= m;
                    end += 1;
                }
                let reached = visit(loc, root, &mut self.limbo, id, 0, &mut |n| {
                    failed += write(n, id, mask);
                });
                if !reached && self.exists(id) {
                    failed += changes(&pending[i..end]);
                }
                i = end;
            }
        }
        self.unrepresentable += failed;
        self.pending = pending;
        self.pending.clear();
    }

    fn field(
        &mut self,
        root: &mut dyn DecodeNode,
        nodes: &Nodes,
        at: RefId,
        index: u8,
        displaced: Option<RefId>,
    ) {
        // A primitive change is queued: the fields of one block are written
        // with a single walk from the root.
        let holds_child = matches!(
            nodes.struct_fields(at),
            Some(fields)
                if matches!(fields.get(usize::from(index)), Some(Some(Value::Ref(_))))
        );
        if displaced.is_none() && !holds_child {
            self.pending.push((at, 1 << index));
            return;
        }
        self.flush(root, nodes);
        if let Some(old) = displaced {
            if self.loc.get(old)
                == Some(&Loc {
                    parent: at,
                    slot: Slot::Field(index),
                })
            {
                self.detach(root, old);
            }
        }
        let value = match nodes.struct_fields(at) {
            Some(fields) => fields.get(usize::from(index)).and_then(Option::as_ref),
            None => return,
        };
        let mut fresh = None;
        let mut placed = None;
        let input = match value {
            None => FieldInput::Delete,
            Some(&Value::Ref(child)) => {
                let here = Loc {
                    parent: at,
                    slot: Slot::Field(index),
                };
                if self.loc.get(child) == Some(&here) {
                    return;
                }
                let may_take =
                    nodes.map.get(at).is_some_and(|n| n.rc.count > 0) && self.reachable(at);
                let elsewhere = self.loc.get(child).is_some() || self.limbo.contains_key(&child);
                if !may_take && elsewhere {
                    // A struct no slot holds, or outside the state (collected
                    // at the end of the message unless re-attached), does
                    // not take children from elsewhere; re-synced if it is
                    // re-attached.
                    self.unheld_structs.push(at);
                    FieldInput::New(self.rust_type(nodes, child))
                } else {
                    let input = self.obtain(root, nodes, child);
                    placed = Some(child);
                    if matches!(input, FieldInput::New(_)) {
                        fresh = Some(child);
                    }
                    input
                }
            }
            Some(v) => FieldInput::Primitive(v),
        };
        let mut ok = false;
        let mut input = Some(input);
        visit(&self.loc, root, &mut self.limbo, at, 0, &mut |n| {
            if let Some(input) = input.take() {
                ok = n.__decode_field(index, input);
            }
        });
        if let Some(child) = placed {
            if ok {
                self.loc.insert(
                    child,
                    Loc {
                        parent: at,
                        slot: Slot::Field(index),
                    },
                );
            } else if let Some(FieldInput::Moved(node)) = input {
                // The parent has no typed value (yet): the child waits.
                self.limbo.insert(child, node);
            }
        }
        if !ok && self.exists(at) {
            self.unrepresentable += 1;
        }
        if let (true, Some(child)) = (ok, fresh) {
            self.fill(root, nodes, child);
        }
    }

    /// The plan of a new element for structure `id`: a struct with
    /// primitive values is built with them. The second value tells what
    /// [`fill`](Self::fill) is left to do: 0 nothing (a struct without
    /// children), 1 everything, 2 all but the primitive fields.
    fn new_element<'n>(&self, nodes: &'n Nodes, id: RefId) -> (Planned<'n>, u8) {
        let Some(node) = nodes.map.get(id) else {
            return (Planned::New(None), 1);
        };
        let ty = match node.shape {
            Shape::Struct(t) => self.rust_types.get(t.0 as usize).copied().flatten(),
            Shape::Collection(..) => None,
        };
        if let (Some(ty), Some(fields)) = (ty, nodes.fields_of(node)) {
            let (mut mask, mut children) = (0u64, false);
            for (i, v) in fields.iter().enumerate().take(64) {
                match v {
                    Some(Value::Ref(_)) => children = true,
                    Some(_) => mask |= 1 << i,
                    None => {}
                }
            }
            let fill = u8::from(children) * 2;
            if mask != 0 {
                return (Planned::Filled(ty, fields, mask), fill);
            }
            return (Planned::New(Some(ty)), fill);
        }
        (Planned::New(ty), 1)
    }

    fn collection(&mut self, root: &mut dyn DecodeNode, nodes: &Nodes, at: RefId) {
        let Some(node) = nodes.map.get(at) else {
            return;
        };
        let mut entries: Vec<(Option<&str>, &Value)> = Vec::new();
        match &node.data {
            NodeData::Map(m) => {
                entries.reserve_exact(m.entries.len());
                entries.extend(m.entries.iter().map(|(k, v)| (Some(k.as_str()), v)));
            }
            NodeData::Array(items) => entries.extend(items.iter().map(|v| (None, v))),
            NodeData::Indexed(e) => {
                entries.reserve_exact(e.len());
                entries.extend(e.values().map(|v| (None, v)));
            }
            NodeData::Struct(_) => return,
        }
        // Children moving in from elsewhere come out of their old slot
        // first; a collection no slot holds, or outside the state (collected
        // at the end of the message unless re-attached), does not take
        // children that live elsewhere.
        let held = node.rc.count > 0 && self.reachable(at);
        if !held {
            self.unheld.push(at);
        }
        for (_, v) in &entries {
            if let Value::Ref(r) = **v {
                // (A child no slot holds in the typed state has nothing to
                // detach.)
                if held && self.loc.get(r).is_some_and(|l| l.parent != at) {
                    self.detach(root, r);
                }
            }
        }
        let mut plan = Vec::with_capacity(entries.len());
        // Which entries hold their instance (the others are placeholders for
        // an instance that lives elsewhere).
        let mut owns = Vec::with_capacity(entries.len());
        // New values: 0 nothing to fill, 1 to fill, 2 to fill but for their
        // primitive fields (built filled).
        let mut fresh: Vec<u8> = Vec::with_capacity(entries.len());
        let max_ref = entries
            .iter()
            .filter_map(|(_, v)| v.as_ref_id())
            .map(|r| r.0)
            .max()
            .unwrap_or(0);
        let mut planned_refs = RefSet::new(entries.len(), max_ref);
        for &(key, v) in &entries {
            // What `fill` has to do for a new element this slot owns.
            let mut fill = 1;
            let (entry, own) = match *v {
                // One instance twice in the collection: the Rust value can
                // be in one place only; the other gets a default value.
                Value::Ref(r) if !planned_refs.insert(r) => {
                    self.unrepresentable += 1;
                    (Planned::New(self.rust_type(nodes, r)), false)
                }
                Value::Ref(r) => match self.loc.get(r) {
                    Some(&Loc {
                        parent,
                        slot: Slot::Pos(p),
                    }) if parent == at => (Planned::Keep(p as usize), true),
                    Some(_) if !held => (Planned::New(self.rust_type(nodes, r)), false),
                    _ if self.limbo.is_empty() => {
                        let (planned, f) = self.new_element(nodes, r);
                        fill = f;
                        (planned, true)
                    }
                    _ => match self.limbo.remove(&r) {
                        Some(node) if held => (Planned::Moved(node), true),
                        Some(node) => {
                            self.limbo.insert(r, node);
                            (Planned::New(self.rust_type(nodes, r)), false)
                        }
                        None => {
                            let (planned, f) = self.new_element(nodes, r);
                            fill = f;
                            (planned, true)
                        }
                    },
                },
                ref v => (Planned::Primitive(v), false),
            };
            fresh.push(match entry {
                Planned::New(_) | Planned::Filled(..) if own => fill,
                _ => 0,
            });
            plan.push((key, entry));
            owns.push(own);
        }
        let mut displaced = Vec::new();
        let mut failed = 0;
        let mut plan = Some(plan);
        let reached = visit(&self.loc, root, &mut self.limbo, at, 0, &mut |n| {
            if let Some(plan) = plan.take() {
                failed = n.__decode_rebuild(plan, &mut displaced);
            }
        });
        if !reached && self.exists(at) {
            self.unrepresentable += 1;
        }
        self.unrepresentable += failed as u64;
        // Old positions → refIds, then the new layout.
        let mut ids = self.elems.remove(at).unwrap_or_default();
        for (p, node) in displaced {
            // Only an element that really lived here goes to the limbo (a
            // placeholder left by a move is dropped).
            if let Some(&Some(r)) = ids.get(p) {
                if self.loc.get(r)
                    == Some(&Loc {
                        parent: at,
                        slot: Slot::Pos(p as u32),
                    })
                {
                    self.loc.remove(r);
                    self.limbo.insert(r, node);
                }
            }
        }
        ids.clear();
        ids.reserve(entries.len());
        // (The locations table is filled once, not copied at each doubling,
        // when a full state brings the collection's elements.)
        self.loc.reserve_dense(entries.len());
        for (p, (_, v)) in entries.iter().enumerate() {
            let id = v.as_ref_id().filter(|_| reached && owns[p]);
            if let Some(r) = id {
                self.loc.insert(
                    r,
                    Loc {
                        parent: at,
                        slot: Slot::Pos(p as u32),
                    },
                );
            }
            ids.push(id);
        }
        self.elems.insert(at, ids);
        // New values get the content the shadow already holds for them.
        if reached {
            for (p, (_, v)) in entries.iter().enumerate() {
                if let (Value::Ref(r), f @ 1..) = (v, fresh.get(p).copied().unwrap_or(0)) {
                    self.fill_as(root, nodes, *r, f == 1);
                }
            }
        }
    }
}

/// A [`Typed`] bound to the state it mirrors into, for one message.
struct Bound<'a> {
    typed: &'a mut Typed,
    root: &'a mut dyn DecodeNode,
}

impl Mirror for Bound<'_> {
    fn state(&self) -> Option<&(dyn Any + Send)> {
        let root: &dyn DecodeNode = &*self.root;
        Some(root)
    }

    fn field(&mut self, nodes: &Nodes, at: RefId, index: u8, displaced: Option<RefId>) {
        self.typed.field(self.root, nodes, at, index, displaced);
    }

    fn collection(&mut self, _nodes: &Nodes, at: RefId) {
        if self.typed.dirty.last() != Some(&at) {
            self.typed.dirty.push(at);
        }
    }

    fn primitive(&mut self, _nodes: &Nodes, at: RefId, index: u8) {
        self.typed.pending.push((at, 1 << index));
    }

    fn primitives(&mut self, _nodes: &Nodes, at: RefId, mask: u64) {
        self.typed.pending.push((at, mask));
    }

    fn primitives_written(&mut self, _nodes: &Nodes, written: &mut Vec<(RefId, u64)>) {
        if self.typed.pending.is_empty() {
            std::mem::swap(&mut self.typed.pending, written);
        } else {
            self.typed.pending.append(written);
        }
    }

    fn applied(&mut self, nodes: &Nodes) {
        self.typed.flush(self.root, nodes);
        self.typed.restore(self.root, nodes);
        if !self.typed.unheld.is_empty() {
            let unheld = std::mem::take(&mut self.typed.unheld);
            for &at in &unheld {
                if nodes.map.get(at).is_some_and(|n| n.rc.count > 0) && self.typed.reachable(at) {
                    self.typed.dirty.push(at);
                }
            }
            self.typed.unheld = unheld;
            self.typed.unheld.clear();
            self.typed.flush(self.root, nodes);
        }
        if !self.typed.unheld_structs.is_empty() {
            let structs = std::mem::take(&mut self.typed.unheld_structs);
            for &at in &structs {
                let Some(node) = nodes.map.get(at).filter(|n| n.rc.count > 0) else {
                    continue;
                };
                if !self.typed.reachable(at) {
                    continue;
                }
                let Some(fields) = nodes.fields_of(node) else {
                    continue;
                };
                for (i, v) in fields.iter().enumerate() {
                    if let Some(Value::Ref(child)) = v {
                        let here = Loc {
                            parent: at,
                            slot: Slot::Field(i as u8),
                        };
                        if self.typed.loc.get(*child) != Some(&here) {
                            self.typed.field(self.root, nodes, at, i as u8, None);
                        }
                    }
                }
            }
            self.typed.unheld_structs = structs;
            self.typed.unheld_structs.clear();
        }
        // Values created by the re-syncs above are filled through the queues.
        self.typed.flush(self.root, nodes);
    }

    fn collected(&mut self, id: RefId) {
        self.typed.loc.remove(id);
        self.typed.elems.remove(id);
        self.typed.limbo.remove(&id);
    }

    fn finished(&mut self, nodes: &Nodes) {
        // A child moved out of a slot that still holds it on the wire: an
        // instance shared by two parents.
        for id in self.typed.moved.drain(..) {
            if nodes.map.get(id).is_some_and(|n| n.rc.count > 1) {
                self.typed.unrepresentable += 1;
            }
        }
    }
}

/// Decodes Colyseus state bytes into a Rust value of type `T` (a
/// `#[derive(Schema, Default)]` struct marked `#[schema(decode)]`).
///
/// Same contract as [`DynamicDecoder`]: call [`decode`](Self::decode) with
/// every `ROOM_STATE` / `ROOM_STATE_PATCH` body in order; a message is
/// applied entirely or not at all; malformed input is an error naming the
/// byte offset. The state is read with [`state`](Self::state); change
/// callbacks are registered through [`callbacks`](Self::callbacks) (they
/// read the typed state through [`Cx::state`]). Steady-state patches that
/// update fields allocate nothing.
///
/// Messages are written straight into `T`, with only the wire bookkeeping
/// beside it (the common ones by code that `#[derive(Schema)]` generates
/// for `T`'s types, in one pass, while no callback is registered).
/// Callbacks run on the changes it writes into `T`, with either dialect's
/// array semantics ([`set_dialect`](Self::set_dialect)). [`to_dynamic`](Self::to_dynamic)
/// copies the state into a dynamic value tree.
pub struct Decoder<T> {
    state: T,
    /// Rust type of each wire type id.
    rust_types: Vec<Option<RustTypeId>>,
    /// The direct mode's state (emptied once the shadow exists).
    direct: Box<Direct>,
    /// The shadow mode's, once entered.
    shadow: Option<Box<Shadowed>>,
}

/// The shadow mode: the dynamic value tree, and the mirror writing its
/// changes into `T`.
struct Shadowed {
    shadow: DynamicDecoder,
    typed: Typed,
}

impl<T: fmt::Debug> fmt::Debug for Decoder<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Decoder")
            .field("state", &self.state)
            .field("direct", &self.shadow.is_none())
            .finish_non_exhaustive()
    }
}

impl<T: DecodeState> Decoder<T> {
    /// A decoder holding a default `T`.
    ///
    /// # Errors
    ///
    /// `T`'s types do not make a valid registry (more than 63 fields, …).
    pub fn new() -> Result<Self, TypeError> {
        let (types, ids) = T::__decode_types()?;
        let mut rust_types = vec![None; types.len()];
        for (rust, wire) in ids {
            if let Some(slot) = rust_types.get_mut(wire as usize) {
                *slot = Some(rust);
            }
        }
        Ok(Self {
            state: T::__decode_placeholder(),
            rust_types,
            direct: Box::new(Direct::new(types)),
            shadow: None,
        })
    }

    /// Applies one message body (full state or patch).
    ///
    /// # Errors
    ///
    /// A [`DecodeError`] naming the first problem and its byte offset; the
    /// state is then unchanged.
    pub fn decode(&mut self, bytes: &[u8]) -> Result<(), DecodeError> {
        if self.shadow.is_none() {
            let d = &mut *self.direct;
            d.callbacks.merge();
            // (The fast path records no change for callbacks.)
            if !d.callbacks.is_active()
                && d.fast
                    .decode(
                        bytes,
                        &mut self.state,
                        &mut d.nodes,
                        &d.types,
                        &self.rust_types,
                    )
                    .is_ok()
            {
                d.started = true;
                return Ok(());
            }
            // (The general path changes the state unless it fails.)
            d.fast.pristine = false;
            return self.direct.decode(bytes, &mut self.state, &self.rust_types);
        }
        let s = shadowed(
            &mut self.shadow,
            &mut self.direct,
            &mut self.state,
            &self.rust_types,
        );
        let mut bound = Bound {
            typed: &mut s.typed,
            root: &mut self.state,
        };
        s.shadow.decode_with(bytes, Some(&mut bound))
    }

    /// Decodes like the decoder of `@colyseus/schema` `dialect` (see
    /// [`DynamicDecoder::set_dialect`]).
    pub fn set_dialect(&mut self, dialect: crate::Dialect) {
        self.direct.legacy = dialect == crate::Dialect::Legacy;
        if let Some(s) = &mut self.shadow {
            s.shadow.set_dialect(dialect);
        }
    }

    /// The decoded state.
    #[must_use]
    pub fn state(&self) -> &T {
        &self.state
    }

    /// The decoded state, by value.
    #[must_use]
    pub fn into_state(self) -> T {
        self.state
    }

    /// A copy of the state as a dynamic value tree (JSON, refIds, the
    /// listing of a message with [`DynamicDecoder::explain`]), built on
    /// demand: O(size of the state). The decoder goes on as before (the
    /// copy follows no later message, and has no callbacks).
    ///
    /// ```
    /// use roomcast_schema::decoder::Decoder;
    /// use roomcast_schema::{Encoder, MapSchema, Schema};
    ///
    /// #[derive(Schema, Default, Debug)]
    /// #[schema(decode)]
    /// struct Score {
    ///     points: u32,
    /// }
    ///
    /// #[derive(Schema, Default, Debug)]
    /// #[schema(decode)]
    /// struct Game {
    ///     scores: MapSchema<Score>,
    /// }
    ///
    /// let mut game = Game::default();
    /// game.scores.insert("ana", Score { points: 3 });
    /// let mut encoder = Encoder::new(game);
    /// let mut decoder = Decoder::<Game>::new()?;
    /// decoder.decode(encoder.encode_all())?;
    /// let tree = decoder.to_dynamic();
    /// assert_eq!(tree.to_json(), r#"{"scores":{"ana":{"points":3}}}"#);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn to_dynamic(&mut self) -> DynamicDecoder {
        match &self.shadow {
            Some(s) => s.shadow.snapshot(),
            None => build_shadow(&self.direct, &mut self.state, &self.rust_types).shadow,
        }
    }

    /// Registers change callbacks (see [`callbacks`](crate::decoder::callbacks)).
    /// They read the typed state through [`Cx::state`]; values they receive
    /// are primitives, or a child's refId ([`Value::Ref`]) to register
    /// callbacks on it.
    pub fn callbacks(&mut self) -> Cx<'_> {
        let typed: &(dyn Any + Send) = &self.state;
        match &mut self.shadow {
            Some(s) => s.shadow.callbacks_with(Some(typed)),
            None => {
                let d = &mut *self.direct;
                Cx::new(
                    &d.types,
                    Tree::typed(&d.nodes, typed),
                    d.callbacks.staging(),
                )
            }
        }
    }

    /// Number of changes the Rust types could not hold: an instance shared
    /// by two parents (kept in one), a polymorphic child whose field type
    /// has no variant for it. Zero for any stream a Roomcast server sends.
    #[must_use]
    pub fn unrepresentable(&self) -> u64 {
        match &self.shadow {
            Some(s) => s.typed.unrepresentable,
            None => self.direct.unrepresentable,
        }
    }

    /// Switches to the shadow mode now (tests and fuzzing: the mode that
    /// messages the direct mode does not cover go through).
    #[doc(hidden)]
    pub fn __enter_shadow(&mut self) {
        shadowed(
            &mut self.shadow,
            &mut self.direct,
            &mut self.state,
            &self.rust_types,
        );
    }

    /// Whether the decoder is still in its direct mode.
    #[cfg(all(test, feature = "derive"))]
    pub(crate) fn is_direct(&self) -> bool {
        self.shadow.is_none()
    }

    /// How many messages the direct mode's fast path applied.
    #[cfg(all(test, feature = "derive"))]
    pub(crate) fn fast_applied(&self) -> u64 {
        self.direct.fast.applied
    }
}

/// The shadow mode of a decoder (its fields), entered now if it is still
/// direct.
fn shadowed<'s>(
    shadow: &'s mut Option<Box<Shadowed>>,
    direct: &mut Direct,
    state: &mut dyn DecodeNode,
    rust_types: &[Option<RustTypeId>],
) -> &'s mut Shadowed {
    shadow.get_or_insert_with(|| Box::new(materialize(direct, state, rust_types)))
}

/// The element type of a collection shape, if primitive.
fn element_primitive(shape: Shape) -> Option<Primitive> {
    match shape {
        Shape::Collection(_, ElementType::Primitive(p)) => Some(p),
        Shape::Collection(..) | Shape::Struct(_) => None,
    }
}

/// The shadow mode's state built from the direct mode's (which it takes)
/// and the typed state `root`: every structure of the lean table with the
/// values `T` holds, and the mirror's locations.
fn materialize(
    direct: &mut Direct,
    root: &mut dyn DecodeNode,
    rust_types: &[Option<RustTypeId>],
) -> Shadowed {
    let mut shadowed = build_shadow(direct, root, rust_types);
    direct.nodes = RefMap::default();
    // The callbacks go on in the shadow mode.
    shadowed
        .shadow
        .set_callbacks(std::mem::take(&mut direct.callbacks));
    shadowed
}

/// The shadow mode's state built from the direct mode's and the typed
/// state `root` (see [`materialize`]), leaving the direct mode as it is.
fn build_shadow(
    direct: &Direct,
    root: &mut dyn DecodeNode,
    rust_types: &[Option<RustTypeId>],
) -> Shadowed {
    let lean = &direct.nodes;
    let registry = direct.types.clone();
    let mut shadow = DynamicDecoder::new(direct.types.clone());
    if direct.legacy {
        shadow.set_dialect(crate::Dialect::Legacy);
    }
    let mut typed = Typed {
        rust_types: rust_types.to_vec(),
        unrepresentable: direct.unrepresentable,
        ..Typed::default()
    };
    let nodes = shadow.nodes_mut();
    for (id, l) in lean.iter() {
        if id != RefId::ROOT {
            nodes.insert_new(id, l.shape, &registry, 0);
        }
        if let Some(n) = nodes.map.get_mut(id) {
            n.rc.count = l.rc;
        }
    }
    let mut path = Vec::new();
    for (id, l) in lean.iter() {
        let in_t = path_to(lean, id, &mut path);
        match l.data() {
            None | Some(LeanData::Struct(_)) => {
                let children = l.children();
                let Shape::Struct(ty) = l.shape else {
                    continue;
                };
                let defs = registry.fields(ty);
                let mut values: Vec<Option<Value>> = vec![None; defs.len()];
                for &(i, c) in children {
                    if let Some(v) = values.get_mut(usize::from(i)) {
                        *v = Some(Value::Ref(c));
                    }
                    let child = lean.get(c);
                    if let Some(n) = nodes.map.get_mut(c) {
                        if matches!(n.shape, Shape::Collection(..)) {
                            n.owner = Some((id, i));
                        }
                    }
                    if child.is_some_and(|n| n.place == Place::Field(i)) {
                        typed.loc.insert(
                            c,
                            Loc {
                                parent: id,
                                slot: Slot::Field(i),
                            },
                        );
                    }
                }
                if in_t {
                    descend(root, &path, &mut |n| {
                        for (i, def) in defs.iter().enumerate() {
                            let p = match def.ty {
                                FieldType::Primitive(p) => p,
                                FieldType::Quantized(_) => Primitive::Float64,
                                FieldType::Schema(_) | FieldType::Collection(..) => continue,
                            };
                            if let Some(v) = values.get_mut(i) {
                                *v = n.__decode_read_field(i as u8, p);
                            }
                        }
                    });
                }
                if let Some(NodeData::Struct(span)) = nodes.map.get(id).map(|n| &n.data) {
                    let span = *span;
                    for (slot, v) in nodes.fields.get_mut(span).iter_mut().zip(values) {
                        *slot = v;
                    }
                }
            }
            Some(LeanData::Map(m)) => {
                let mut entries: Vec<(Str, Value)> = Vec::new();
                let mut ids = Vec::new();
                if in_t {
                    descend(root, &path, &mut |c| {
                        c.__decode_each(element_primitive(l.shape), &mut |h, key, v| {
                            let child = m.children.get(RefId(h)).copied();
                            if let Some(v) = child.map(Value::Ref).or(v) {
                                entries.push((Str::from(key.unwrap_or_default()), v));
                            }
                            ids.push(child);
                        });
                    });
                    typed.place_elements(id, ids);
                }
                entries.extend(m.orphans.iter().map(|(k, o)| (k.clone(), Value::Ref(*o))));
                if let Some(NodeData::Map(data)) = nodes.map.get_mut(id).map(|n| &mut n.data) {
                    data.entries.reserve(entries.len());
                    for (k, v) in entries {
                        data.entries.insert(k, v);
                    }
                    for (index, k) in m.indexes.iter() {
                        data.indexes.insert(index, k.clone());
                    }
                }
            }
            Some(LeanData::Indexed(x)) => {
                let mut entries: Vec<(u32, Value)> = Vec::new();
                let mut ids = Vec::new();
                if in_t {
                    descend(root, &path, &mut |c| {
                        c.__decode_each(element_primitive(l.shape), &mut |h, _, v| {
                            let index = x.by_handle.get(RefId(h)).copied();
                            let child = index
                                .and_then(|i| x.by_index.get(RefId(i)))
                                .and_then(|e| e.1);
                            if let (Some(i), Some(v)) = (index, child.map(Value::Ref).or(v)) {
                                entries.push((i, v));
                            }
                            ids.push(child);
                        });
                    });
                    typed.place_elements(id, ids);
                }
                entries.extend(x.by_index.iter().filter_map(|(i, e)| match *e {
                    (NO_HANDLE, Some(c)) => Some((i.0, Value::Ref(c))),
                    _ => None,
                }));
                if let Some(NodeData::Indexed(data)) = nodes.map.get_mut(id).map(|n| &mut n.data) {
                    data.reserve(entries.len());
                    for (i, v) in entries {
                        data.insert(i, v);
                    }
                }
            }
            Some(LeanData::Array(items)) => {
                let mut values = Vec::with_capacity(items.len());
                let mut ids = Vec::new();
                let p = element_primitive(l.shape);
                let mut read = |c: Option<&mut dyn DecodeNode>| {
                    let mut c = c;
                    let mut q = 0;
                    for e in items {
                        let v = match (e.child, p, c.as_deref_mut()) {
                            (Some(child), ..) => Some(Value::Ref(child)),
                            (None, Some(p), Some(c)) if e.held => c.__decode_handle_value(q, p),
                            _ => None,
                        };
                        if e.held {
                            ids.push(e.child);
                            q += 1;
                        }
                        values.extend(v);
                    }
                };
                if in_t {
                    descend(root, &path, &mut |c| read(Some(c)));
                } else {
                    read(None);
                }
                if in_t {
                    typed.place_elements(id, ids);
                }
                if let Some(NodeData::Array(data)) = nodes.map.get_mut(id).map(|n| &mut n.data) {
                    **data = ArrayItems::from_values(values);
                }
            }
        }
    }
    Shadowed { shadow, typed }
}
