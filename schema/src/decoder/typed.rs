//! Typed decoding into Rust types (`#[derive(Schema)]` structs and enums,
//! `Option`, primitives and the four collections).
//!
//! A [`Decoder<T>`] writes messages straight into `T` (`direct.rs`),
//! beside which it keeps only a lean refId table (each structure's shape,
//! place in `T`, children and reference count). Its fast path (`fast.rs`)
//! reads the common messages — field changes, new structures, new map
//! entries — in one pass of code generated for `T`'s types; the others go
//! through the parse pass every decoder shares (`base/parse.rs`), then are
//! applied to `T` with the wire semantics of either dialect, recording the
//! changes for the callbacks as they are written. A message is applied
//! entirely or not at all, exactly as with the dynamic decoder, which
//! shares nothing else with it: the differential tests check one against
//! the other. [`Decoder::to_dynamic`] builds a dynamic value tree from `T`
//! and the table on demand.
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
//! The fast path: one pass over the message, one walk from the root per
//! run of sibling blocks (a patch moving every entity of a map walks to
//! the map once), an undo record per field a patch changes (kept in reused
//! buffers: no allocation), none for a full state into a fresh decoder.
//! The general path: the same walks, a map or set entry written in place,
//! an array block run on a model of its elements then the array in `T`
//! set once (an edit in place for pushes and removals).

use std::any::{Any, TypeId as RustTypeId};
use std::fmt;

use crate::collections::{ArrayMut, ArraySchema, CollectionSchema, MapSchema, SetSchema};
use crate::decoder::base::array_items::ArrayItems;
use crate::decoder::base::parse::{FieldWrite, Shape, TypedFields};
use crate::decoder::base::reference_tracker::RefId;
use crate::decoder::callbacks::Tree;
use crate::decoder::direct::{value_of, Direct, LeanData, NO_HANDLE};
use crate::decoder::dynamic::NodeData;
use crate::decoder::{Cx, DynamicDecoder, Str, Value};
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

/// One element of an array set by
/// [`DecodeNode::__decode_set_elements`].
#[doc(hidden)]
pub enum Planned<'a> {
    /// A primitive element.
    Primitive(&'a Value),
    /// A new child element (concrete Rust type of a struct / enum).
    New(Option<RustTypeId>),
    /// A child element moved from elsewhere.
    Moved(Box<dyn DecodeNode>),
    /// The elements at positions `start..start + len` before, in order.
    Keeps(usize, usize),
}

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

/// Builds an array element from a plan entry (`None`: it does not fit;
/// [`Planned::Keeps`] is the array's).
#[inline]
fn planned<V: DecodeField>(entry: Planned<'_>) -> Option<V> {
    match entry {
        Planned::Primitive(v) => V::__decode_primitive(v),
        Planned::New(ty) => V::__decode_new(ty),
        Planned::Moved(node) => V::__decode_unbox(node),
        Planned::Keeps(..) => None,
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
        // A client-side array is never attached to an encoder: the view's
        // bookkeeping goes to a throwaway tick.
        let mut tick = Tick::default();
        let mut view = ArrayMut::__new(self, &mut tick);
        if let Some(node) = view
            .element_mut(handle as usize)
            .and_then(|(v, _, _)| v.__decode_node())
        {
            f(node);
        }
    }

    fn __decode_handle_value(&mut self, handle: u32, p: Primitive) -> Option<Value> {
        self.get(handle as usize)?.__decode_value(p)
    }

    fn __decode_take_handle(&mut self, handle: u32) -> Option<Box<dyn DecodeNode>> {
        let mut tick = Tick::default();
        let mut view = ArrayMut::__new(self, &mut tick);
        view.element_mut(handle as usize)?.0.__decode_take()
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
                let v = planned::<V>(entry);
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
            let v = planned::<V>(entry);
            fitted.push(v.is_some());
            values.extend(v);
        }
        self.splice_untracked(0..0, values);
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
    /// The wire bookkeeping beside `T`.
    direct: Box<Direct>,
}

impl<T: fmt::Debug> fmt::Debug for Decoder<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Decoder")
            .field("state", &self.state)
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
        })
    }

    /// Applies one message body (full state or patch).
    ///
    /// # Errors
    ///
    /// A [`DecodeError`] naming the first problem and its byte offset; the
    /// state is then unchanged.
    pub fn decode(&mut self, bytes: &[u8]) -> Result<(), DecodeError> {
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
        d.decode(bytes, &mut self.state, &self.rust_types)
    }

    /// Decodes like the decoder of `@colyseus/schema` `dialect` (see
    /// [`DynamicDecoder::set_dialect`]).
    pub fn set_dialect(&mut self, dialect: crate::Dialect) {
        self.direct.legacy = dialect == crate::Dialect::Legacy;
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
        snapshot(&mut self.direct, &mut self.state)
    }

    /// Registers change callbacks (see [`callbacks`](crate::decoder::callbacks)).
    /// They read the typed state through [`Cx::state`]; values they receive
    /// are primitives, or a child's refId ([`Value::Ref`]) to register
    /// callbacks on it.
    pub fn callbacks(&mut self) -> Cx<'_> {
        let typed: &(dyn Any + Send) = &self.state;
        let d = &mut *self.direct;
        Cx::new(
            &d.types,
            Tree::typed(&d.nodes, typed),
            d.callbacks.staging(),
        )
    }

    /// Number of changes the Rust types could not hold: an instance shared
    /// by two parents (kept in one), a polymorphic child whose field type
    /// has no variant for it. Zero for any stream a Roomcast server sends.
    #[must_use]
    pub fn unrepresentable(&self) -> u64 {
        self.direct.unrepresentable
    }

    /// How many messages the fast path applied.
    #[cfg(all(test, feature = "derive"))]
    pub(crate) fn fast_applied(&self) -> u64 {
        self.direct.fast.applied
    }
}

/// The element type of a collection shape, if primitive.
fn element_primitive(shape: Shape) -> Option<Primitive> {
    match shape {
        Shape::Collection(_, ElementType::Primitive(p)) => Some(p),
        Shape::Collection(..) | Shape::Struct(_) => None,
    }
}

/// A dynamic value tree holding the state: every structure of the lean
/// table, with the values `T` (`root`) holds.
fn snapshot(direct: &mut Direct, root: &mut dyn DecodeNode) -> DynamicDecoder {
    let registry = direct.types.clone();
    let mut tree = DynamicDecoder::new(registry.clone());
    if direct.legacy {
        tree.set_dialect(crate::Dialect::Legacy);
    }
    let (lean, limbo) = direct.table_and_limbo();
    let nodes = tree.nodes_mut();
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
        let mut value_of = |f: &mut dyn FnMut(&mut dyn DecodeNode)| {
            value_of(lean, &mut *limbo, &mut *root, id, &mut path, f)
        };
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
                    if let Some(n) = nodes.map.get_mut(c) {
                        if matches!(n.shape, Shape::Collection(..)) {
                            n.owner = Some((id, i));
                        }
                    }
                }
                value_of(&mut |n| {
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
                if let Some(NodeData::Struct(span)) = nodes.map.get(id).map(|n| &n.data) {
                    let span = *span;
                    for (slot, v) in nodes.fields.get_mut(span).iter_mut().zip(values) {
                        *slot = v;
                    }
                }
            }
            Some(LeanData::Map(m)) => {
                let mut entries: Vec<(Str, Value)> = Vec::new();
                value_of(&mut |c| {
                    c.__decode_each(element_primitive(l.shape), &mut |h, key, v| {
                        let child = m.children.get(RefId(h)).copied();
                        if let Some(v) = child.map(Value::Ref).or(v) {
                            entries.push((Str::from(key.unwrap_or_default()), v));
                        }
                    });
                });
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
                value_of(&mut |c| {
                    c.__decode_each(element_primitive(l.shape), &mut |h, _, v| {
                        let index = x.by_handle.get(RefId(h)).copied();
                        let child = index
                            .and_then(|i| x.by_index.get(RefId(i)))
                            .and_then(|e| e.1);
                        if let (Some(i), Some(v)) = (index, child.map(Value::Ref).or(v)) {
                            entries.push((i, v));
                        }
                    });
                });
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
                        q += u32::from(e.held);
                        values.extend(v);
                    }
                };
                if !value_of(&mut |c| read(Some(c))) {
                    read(None);
                }
                if let Some(NodeData::Array(data)) = nodes.map.get_mut(id).map(|n| &mut n.data) {
                    **data = ArrayItems::from_values(values);
                }
            }
        }
    }
    tree
}
