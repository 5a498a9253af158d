//! Rust-side states in the JSON conventions of the Node decoder harness
//! (`tests/node/lib/json-state.mjs`), so a test can compare what the real
//! `@colyseus/schema` decoder holds with what the server holds.
//!
//! Conventions: a struct is an object of its *present* fields (a `None`
//! field is absent), a `MapSchema` an object keyed by its keys, an
//! `ArraySchema` / `SetSchema` / `CollectionSchema` an array in iteration
//! order; object keys are sorted (`serde_json`'s default map). Primitives are
//! the value a client *decodes* from the wire type (spec `schema-wire.md`
//! §2): `number` is lossy (float32 when within 1e-4, NaN → 0, ±Infinity →
//! ±`MAX_SAFE_INTEGER`, integers of int32 range exact), `float32` is the
//! float32 widened, the fixed-width integers wrap like the wire does,
//! `int64`/`uint64` are JavaScript numbers (doubles), `bigint64`/`biguint64`
//! are `{"$bigint": "<decimal>"}`, and NaN / ±Infinity / -0 are
//! `{"$num": "NaN" | "Infinity" | "-Infinity" | "-0"}`.
//!
//! Numbers are compared as doubles: [`canon`] rewrites every JSON number of a
//! decoded state as a float so that `1` (as JavaScript prints it) equals the
//! `1.0` built here.
//!
//! Derived structs get their JSON from [`StateJson`], implemented with the
//! [`state_json!`](crate::state_json!) macro (the field list is checked
//! against the type's registry by [`check_state_json`]); dynamic states
//! ([`DynStruct`]) from the registry, with [`dyn_state_json`].
//!
//! [`Follower`] and [`Harness`] drive an encoder against the real decoder:
//! after every patch, a client following the patch stream and a client
//! decoding a fresh full state must both hold exactly the server state, and
//! the decoder must print no warning.

use roomcast_schema::dynamic::{DynStruct, DynValue, PrimValue};
use roomcast_schema::types::{CollectionKind, ElementType, FieldType, Primitive, TypeRegistry};
use roomcast_schema::{
    encode_reflection, registry_of, ArraySchema, CollectionSchema, Dialect, Encoder, MapSchema,
    Schema, SetSchema,
};
use serde_json::{json, Map, Value};

use crate::node::{to_hex, Decoded, NodeDecoder, SchemaVersion, Session};

#[doc(hidden)]
pub mod __private {
    pub use serde_json::{Map, Value};
}

/// `Number.MAX_SAFE_INTEGER`.
pub const MAX_SAFE_INTEGER: f64 = 9_007_199_254_740_991.0;

/// The value a client decodes for a `number` holding `v` (spec §2.2).
#[must_use]
pub fn client_number(v: f64) -> f64 {
    let v = if v.is_nan() {
        return 0.0;
    } else if v == f64::INFINITY {
        MAX_SAFE_INTEGER
    } else if v == f64::NEG_INFINITY {
        -MAX_SAFE_INTEGER
    } else {
        v
    };
    // Integer path: `v === (v | 0)`; -0 is sent as `00`.
    if v.fract() == 0.0 && v >= f64::from(i32::MIN) && v <= f64::from(i32::MAX) {
        return if v == 0.0 { 0.0 } else { v };
    }
    let f = v as f32;
    if v.abs() <= f64::from(f32::MAX) && (f64::from(f) - v).abs() < 1e-4 {
        f64::from(f)
    } else {
        v
    }
}

/// A double in the harness JSON: a number, or a `$num` escape for NaN,
/// ±Infinity and -0.
#[must_use]
pub fn num(v: f64) -> Value {
    if v.is_nan() {
        json!({"$num": "NaN"})
    } else if v == f64::INFINITY {
        json!({"$num": "Infinity"})
    } else if v == f64::NEG_INFINITY {
        json!({"$num": "-Infinity"})
    } else if v == 0.0 && v.is_sign_negative() {
        json!({"$num": "-0"})
    } else {
        Value::from(v)
    }
}

/// `value` with every JSON number rewritten as a double (see the module
/// docs), for comparing a decoded state with one built by this module.
#[must_use]
pub fn canon(value: &Value) -> Value {
    match value {
        Value::Number(n) => n.as_f64().map_or_else(|| value.clone(), Value::from),
        Value::Array(a) => Value::Array(a.iter().map(canon).collect()),
        Value::Object(o) => Value::Object(o.iter().map(|(k, v)| (k.clone(), canon(v))).collect()),
        _ => value.clone(),
    }
}

/// A primitive as the encoder sees it: its double, its integer truncation
/// (what the fixed-width wire types mask), or a string / boolean.
#[derive(Debug, Clone, Copy)]
pub enum Prim<'a> {
    /// A numeric value: `(as f64, as i64)`.
    Num(f64, i64),
    /// A string.
    Str(&'a str),
    /// A boolean.
    Bool(bool),
}

/// What a client decodes for `value` sent as `wire`.
#[must_use]
pub fn prim_json(wire: Primitive, value: Prim<'_>) -> Value {
    let (f, i) = match value {
        Prim::Str(s) => {
            return match wire {
                Primitive::String => Value::from(s),
                // The encoder writes a string's numeric value as 0.
                _ => prim_json(wire, Prim::Num(0.0, 0)),
            };
        }
        Prim::Bool(b) if wire == Primitive::Boolean => return Value::from(b),
        Prim::Bool(b) => (f64::from(u8::from(b)), i64::from(b)),
        Prim::Num(f, i) => (f, i),
    };
    match wire {
        Primitive::String => Value::from(""),
        Primitive::Boolean => Value::from(f != 0.0 && !f.is_nan()),
        Primitive::Number => num(client_number(f)),
        Primitive::Int8 => num(f64::from(i as i8)),
        Primitive::Uint8 => num(f64::from(i as u8)),
        Primitive::Int16 => num(f64::from(i as i16)),
        Primitive::Uint16 => num(f64::from(i as u16)),
        Primitive::Int32 => num(f64::from(i as i32)),
        Primitive::Uint32 => num(f64::from(i as u32)),
        // `high * 2^32 + low` in doubles: one rounding of the exact value.
        Primitive::Int64 => num(i as f64),
        Primitive::Uint64 => num(i as u64 as f64),
        Primitive::Float32 => num(f64::from(f as f32)),
        Primitive::Float64 => num(f),
        Primitive::BigInt64 => json!({"$bigint": i.to_string()}),
        Primitive::BigUint64 => json!({"$bigint": (i as u64).to_string()}),
        _ => panic!("unknown wire type {wire}"),
    }
}

/// The declared shape of a field, for checking a [`StateJson`] listing
/// against the type registry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// A primitive sent as this wire type.
    Prim(Primitive),
    /// A child struct.
    Struct,
    /// A collection of primitives (`Some(wire)`) or of structs (`None`).
    Collection(CollectionKind, Option<Primitive>),
}

impl Shape {
    /// The shape of a registry field type.
    #[must_use]
    pub fn of(ty: FieldType) -> Self {
        match ty {
            FieldType::Primitive(p) => Self::Prim(p),
            // Clients hold the float.
            FieldType::Quantized(_) => Self::Prim(Primitive::Float64),
            FieldType::Schema(_) => Self::Struct,
            FieldType::Collection(k, ElementType::Primitive(p)) => Self::Collection(k, Some(p)),
            FieldType::Collection(k, ElementType::Schema(_)) => Self::Collection(k, None),
        }
    }
}

/// A value that can be a field or collection element, in harness JSON.
pub trait FieldJson {
    /// The field's shape with its default wire type.
    const SHAPE: Shape;

    /// The JSON of the value sent as `wire` (`None`: the type's default);
    /// `None` when the field is absent on the client.
    fn field_json(&self, wire: Option<Primitive>) -> Option<Value>;
}

/// A derived Schema struct, in harness JSON. Implement it with
/// [`state_json!`](crate::state_json!).
pub trait StateJson {
    /// The client's view of this instance.
    fn state_json(&self) -> Value;

    /// `(client name, shape)` of every field in index order, as listed in
    /// the [`state_json!`](crate::state_json!) invocation.
    fn field_shapes(&self) -> Vec<(&'static str, Shape)>;
}

impl<T: StateJson> FieldJson for T {
    const SHAPE: Shape = Shape::Struct;

    fn field_json(&self, _: Option<Primitive>) -> Option<Value> {
        Some(self.state_json())
    }
}

macro_rules! numeric_json {
    ($($t:ty => $wire:ident, $i:expr;)*) => {$(
        impl FieldJson for $t {
            const SHAPE: Shape = Shape::Prim(Primitive::$wire);

            #[allow(clippy::redundant_closure_call, reason = "per-type conversion")]
            fn field_json(&self, wire: Option<Primitive>) -> Option<Value> {
                let v = *self;
                Some(prim_json(wire.unwrap_or(Primitive::$wire), Prim::Num(v as f64, ($i)(v))))
            }
        }
    )*};
}

numeric_json! {
    i8 => Int8, i64::from;
    u8 => Uint8, i64::from;
    i16 => Int16, i64::from;
    u16 => Uint16, i64::from;
    i32 => Int32, i64::from;
    u32 => Uint32, i64::from;
    i64 => Int64, |v: i64| v;
    u64 => Uint64, |v: u64| v as i64;
    f32 => Float32, |v: f32| v as i64;
    f64 => Float64, |v: f64| v as i64;
}

impl FieldJson for bool {
    const SHAPE: Shape = Shape::Prim(Primitive::Boolean);

    fn field_json(&self, wire: Option<Primitive>) -> Option<Value> {
        Some(prim_json(
            wire.unwrap_or(Primitive::Boolean),
            Prim::Bool(*self),
        ))
    }
}

impl FieldJson for String {
    const SHAPE: Shape = Shape::Prim(Primitive::String);

    fn field_json(&self, wire: Option<Primitive>) -> Option<Value> {
        Some(prim_json(
            wire.unwrap_or(Primitive::String),
            Prim::Str(self),
        ))
    }
}

impl<T: FieldJson> FieldJson for Option<T> {
    const SHAPE: Shape = T::SHAPE;

    fn field_json(&self, wire: Option<Primitive>) -> Option<Value> {
        self.as_ref().and_then(|v| v.field_json(wire))
    }
}

const fn element_wire(shape: Shape) -> Option<Primitive> {
    match shape {
        Shape::Prim(p) => Some(p),
        Shape::Struct | Shape::Collection(..) => None,
    }
}

fn elements<'a, T: FieldJson + 'a>(items: impl Iterator<Item = &'a T>) -> Value {
    Value::Array(
        items
            .map(|v| v.field_json(None).unwrap_or(Value::Null))
            .collect(),
    )
}

impl<T: FieldJson + roomcast_schema::Field> FieldJson for MapSchema<T> {
    const SHAPE: Shape = Shape::Collection(CollectionKind::Map, element_wire(T::SHAPE));

    fn field_json(&self, _: Option<Primitive>) -> Option<Value> {
        Some(Value::Object(
            self.iter()
                .map(|(k, v)| (k.to_owned(), v.field_json(None).unwrap_or(Value::Null)))
                .collect(),
        ))
    }
}

macro_rules! list_json {
    ($($c:ident => $kind:ident;)*) => {$(
        impl<T: FieldJson + roomcast_schema::Field> FieldJson for $c<T> {
            const SHAPE: Shape = Shape::Collection(CollectionKind::$kind, element_wire(T::SHAPE));

            fn field_json(&self, _: Option<Primitive>) -> Option<Value> {
                Some(elements(self.iter()))
            }
        }
    )*};
}

list_json! {
    ArraySchema => Array;
    SetSchema => Set;
    CollectionSchema => Collection;
}

/// Implements [`StateJson`] for a derived struct by listing its fields in
/// declaration order; a field sent with another wire type than its Rust
/// type's default names it (`hp: Number`), a renamed one its client name
/// (`hp as "health"`), and an `#[schema(extends)]` field comes first as
/// `..base` (its type implements [`StateJson`] too).
///
/// ```ignore
/// state_json!(Player { name, x, hp: Number, inv, tags });
/// state_json!(Hero { ..base, name });
/// ```
#[macro_export]
macro_rules! state_json {
    ($ty:ident { ..$base:ident $(, $($rest:tt)*)? }) => {
        $crate::state_json!(@impl $ty [$base] { $($($rest)*)? });
    };
    ($ty:ident { $($rest:tt)* }) => {
        $crate::state_json!(@impl $ty [] { $($rest)* });
    };
    (@impl $ty:ident [$($base:ident)?] {
        $($field:ident $(as $client:literal)? $(: $wire:ident)?),* $(,)?
    }) => {
        impl $crate::state_json::StateJson for $ty {
            fn state_json(&self) -> $crate::state_json::__private::Value {
                #[allow(unused_mut)]
                let mut m = $crate::state_json::__private::Map::new();
                $(
                    if let $crate::state_json::__private::Value::Object(inherited) =
                        $crate::state_json::StateJson::state_json(&self.$base)
                    {
                        m = inherited;
                    }
                )?
                $(
                    let wire: ::core::option::Option<::roomcast_schema::types::Primitive> =
                        $crate::state_json!(@wire $($wire)?);
                    if let ::core::option::Option::Some(v) =
                        $crate::state_json::FieldJson::field_json(&self.$field, wire)
                    {
                        m.insert(
                            ::std::string::String::from($crate::state_json!(@name $field $($client)?)),
                            v,
                        );
                    }
                )*
                $crate::state_json::__private::Value::Object(m)
            }

            fn field_shapes(&self) -> ::std::vec::Vec<(&'static str, $crate::state_json::Shape)> {
                #[allow(unused_mut)]
                let mut shapes = ::std::vec::Vec::new();
                $(
                    shapes.extend($crate::state_json::StateJson::field_shapes(&self.$base));
                )?
                $(
                    shapes.push((
                        $crate::state_json!(@name $field $($client)?),
                        $crate::state_json::shape_of(&self.$field, $crate::state_json!(@wire $($wire)?)),
                    ));
                )*
                shapes
            }
        }
    };
    (@wire) => { ::core::option::Option::None };
    (@wire $wire:ident) => { ::core::option::Option::Some(::roomcast_schema::types::Primitive::$wire) };
    (@name $field:ident) => { ::core::stringify!($field) };
    (@name $field:ident $client:literal) => { $client };
}

/// Implements [`StateJson`] for a derived polymorphic enum (one newtype
/// variant per concrete type) by delegating to the variant's struct.
///
/// ```ignore
/// state_json_enum!(AnyEntity { Entity, Hero, Monster });
/// ```
#[macro_export]
macro_rules! state_json_enum {
    ($ty:ident { $($variant:ident),+ $(,)? }) => {
        impl $crate::state_json::StateJson for $ty {
            fn state_json(&self) -> $crate::state_json::__private::Value {
                match self {
                    $(Self::$variant(v) => $crate::state_json::StateJson::state_json(v),)+
                }
            }

            fn field_shapes(&self) -> ::std::vec::Vec<(&'static str, $crate::state_json::Shape)> {
                match self {
                    $(Self::$variant(v) => $crate::state_json::StateJson::field_shapes(v),)+
                }
            }
        }
    };
}

/// The shape of a field whose wire type may be chosen by attribute.
#[must_use]
pub fn shape_of<T: FieldJson>(_: &T, wire: Option<Primitive>) -> Shape {
    match (T::SHAPE, wire) {
        (Shape::Prim(_), Some(w)) => Shape::Prim(w),
        (shape, _) => shape,
    }
}

/// Checks that `T`'s [`StateJson`] lists exactly the fields its derive
/// describes (names, order, wire types, collection kinds).
///
/// # Panics
///
/// On any difference.
pub fn check_state_json<T: Schema + StateJson + Default>() {
    let types = registry_of::<T>().expect("valid schema");
    let id = types
        .by_name(&T::type_name())
        .expect("type in its own registry");
    let want: Vec<(String, Shape)> = types
        .fields(id)
        .iter()
        .map(|f| (f.name.clone(), Shape::of(f.ty)))
        .collect();
    let got: Vec<(String, Shape)> = T::default()
        .field_shapes()
        .into_iter()
        .map(|(n, s)| (n.to_owned(), s))
        .collect();
    assert_eq!(
        got,
        want,
        "state_json! listing of {} differs from its derive",
        T::type_name()
    );
}

/// The client's view of a dynamic state, driven by its registry.
#[must_use]
pub fn dyn_state_json(types: &TypeRegistry, s: &DynStruct) -> Value {
    let mut m = Map::new();
    for (i, f) in types.fields(s.type_id()).iter().enumerate() {
        if let Some(v) = s.get(i).and_then(|v| dyn_value_json(types, v)) {
            m.insert(f.name.clone(), v);
        }
    }
    Value::Object(m)
}

/// The client's view of one dynamic value (`None`: absent).
#[must_use]
pub fn dyn_value_json(types: &TypeRegistry, v: &DynValue) -> Option<Value> {
    let each = |v: &DynValue| dyn_value_json(types, v).unwrap_or(Value::Null);
    Some(match v {
        DynValue::Prim(wire, p) => prim_json(*wire, dyn_prim(p)),
        DynValue::Quantized(_, v) => prim_json(Primitive::Float64, Prim::Num(*v, *v as i64)),
        DynValue::Struct(s) => dyn_state_json(types, s),
        DynValue::Map(m) => Value::Object(m.iter().map(|(k, v)| (k.to_owned(), each(v))).collect()),
        DynValue::Array(a) => Value::Array(a.iter().map(each).collect()),
        DynValue::Set(s) => Value::Array(s.iter().map(each).collect()),
        DynValue::Collection(c) => Value::Array(c.iter().map(each).collect()),
    })
}

/// The server's view of a dynamic state: what `toJsonState` gives for the
/// reference's server-side instance (the vectors' `serverState`, and `state`
/// in StateView vectors): primitives as held, not as decoded (`number` is
/// not rounded to float32, fixed-width integers are not wrapped), bigints
/// as `{"$bigint": …}`.
#[must_use]
pub fn dyn_server_json(types: &TypeRegistry, s: &DynStruct) -> Value {
    let mut m = Map::new();
    for (i, f) in types.fields(s.type_id()).iter().enumerate() {
        if let Some(v) = s.get(i).and_then(|v| dyn_server_value_json(types, v)) {
            m.insert(f.name.clone(), v);
        }
    }
    Value::Object(m)
}

/// The server's view of one dynamic value (`None`: absent); see
/// [`dyn_server_json`].
#[must_use]
pub fn dyn_server_value_json(types: &TypeRegistry, v: &DynValue) -> Option<Value> {
    let each = |v: &DynValue| dyn_server_value_json(types, v).unwrap_or(Value::Null);
    Some(match v {
        DynValue::Prim(_, p) => match p {
            PrimValue::Str(s) => Value::from(s.as_str()),
            PrimValue::Num(n) => num(*n),
            PrimValue::Bool(b) => Value::from(*b),
            PrimValue::I64(i) => json!({"$bigint": i.to_string()}),
            PrimValue::U64(u) => json!({"$bigint": u.to_string()}),
        },
        DynValue::Quantized(_, v) => num(*v),
        DynValue::Struct(s) => dyn_server_json(types, s),
        DynValue::Map(m) => Value::Object(m.iter().map(|(k, v)| (k.to_owned(), each(v))).collect()),
        DynValue::Array(a) => Value::Array(a.iter().map(each).collect()),
        DynValue::Set(s) => Value::Array(s.iter().map(each).collect()),
        DynValue::Collection(c) => Value::Array(c.iter().map(each).collect()),
    })
}

/// The integer JavaScript's bit operators see in a number (`ToInt32` and
/// friends take its low bits): `n` truncated, modulo 2^64, as an `i64`;
/// NaN and ±Infinity are 0.
#[must_use]
pub fn js_int_bits(n: f64) -> i64 {
    const TWO_63: f64 = 9_223_372_036_854_775_808.0;
    const TWO_64: f64 = 18_446_744_073_709_551_616.0;
    if !n.is_finite() {
        return 0;
    }
    let t = n.trunc();
    if t.abs() < TWO_63 {
        return t as i64;
    }
    // Exact: `%` of doubles is exact, and so is moving the remainder into
    // [-2^63, 2^63) (a multiple of 2^11 at that magnitude).
    let mut r = t % TWO_64;
    if r >= TWO_63 {
        r -= TWO_64;
    } else if r < -TWO_63 {
        r += TWO_64;
    }
    r as i64
}

fn dyn_prim(p: &PrimValue) -> Prim<'_> {
    match p {
        PrimValue::Str(s) => Prim::Str(s),
        // JavaScript's bit operators: the low bits of the truncated value;
        // NaN and ±Infinity become 0.
        PrimValue::Num(n) => Prim::Num(*n, js_int_bits(*n)),
        PrimValue::Bool(b) => Prim::Bool(*b),
        PrimValue::I64(i) => Prim::Num(*i as f64, *i),
        PrimValue::U64(u) => Prim::Num(*u as f64, *u as i64),
    }
}

/// Compares a decode result with the expected state: same JSON (numbers as
/// doubles) and no decoder warning.
///
/// # Errors
///
/// A readable description of the difference.
pub fn compare(what: &str, got: &Decoded, expected: &Value) -> Result<(), String> {
    let state = canon(&got.state);
    let expected = canon(expected);
    if state != expected {
        return Err(format!(
            "{what}: decoder state differs\n  decoded:  {state}\n  expected: {expected}"
        ));
    }
    if !got.warnings.is_empty() {
        return Err(format!("{what}: decoder warnings {:?}", got.warnings));
    }
    Ok(())
}

/// A client that follows the patch stream from its first patch on, plus
/// fresh joiners decoding full states, on one decoder version.
#[derive(Debug)]
pub struct Follower {
    reflection: Vec<u8>,
    version: SchemaVersion,
    stream: Session,
}

impl Follower {
    /// Opens the stream client from Reflection bytes.
    ///
    /// # Errors
    ///
    /// The decoder refused the Reflection.
    pub fn open(
        node: &mut NodeDecoder,
        reflection: Vec<u8>,
        version: SchemaVersion,
    ) -> Result<Self, String> {
        let stream = node.try_open(&reflection, version)?;
        Ok(Self {
            reflection,
            version,
            stream,
        })
    }

    /// The decoder version.
    #[must_use]
    pub fn version(&self) -> SchemaVersion {
        self.version
    }

    /// Applies a patch (an empty one is not sent) to the stream client and
    /// compares its state with `expected`.
    ///
    /// # Errors
    ///
    /// The decoder threw, warned, or holds another state.
    pub fn patch(
        &self,
        node: &mut NodeDecoder,
        what: &str,
        patch: &[u8],
        expected: &Value,
    ) -> Result<(), String> {
        let got = if patch.is_empty() {
            Decoded {
                state: node.state(&self.stream)?,
                warnings: Vec::new(),
            }
        } else {
            node.decode(&self.stream, patch)
                .map_err(|e| format!("{what}: patch {} threw: {e}", to_hex(patch)))?
        };
        compare(&format!("{what}: patch {}", to_hex(patch)), &got, expected)
    }

    /// Decodes a full state with a fresh client and compares its state with
    /// `expected`.
    ///
    /// # Errors
    ///
    /// The decoder threw, warned, or holds another state.
    pub fn joiner(
        &self,
        node: &mut NodeDecoder,
        what: &str,
        full: &[u8],
        expected: &Value,
    ) -> Result<(), String> {
        let joiner = node.try_open(&self.reflection, self.version)?;
        let got = node.decode(&joiner, full);
        node.close(joiner);
        let got = got.map_err(|e| format!("{what}: full state {} threw: {e}", to_hex(full)))?;
        compare(
            &format!("{what}: full state {}", to_hex(full)),
            &got,
            expected,
        )
    }

    /// Drops the stream client.
    pub fn close(self, node: &mut NodeDecoder) {
        node.close(self.stream);
    }
}

/// The dialect an encoder uses for a decoder version.
#[must_use]
pub fn dialect_for(version: SchemaVersion) -> Dialect {
    match version {
        SchemaVersion::V5 => Dialect::Modern,
        SchemaVersion::V3 => Dialect::Legacy,
    }
}

/// An encoder of a derived state checked against real decoders after every
/// tick: a 5.x client, a 3.x client, or both at once (then each gets its
/// dialect's patch from one [`Encoder::encode_patch_both`]).
#[derive(Debug)]
pub struct Harness<T: Schema> {
    /// The encoder.
    pub enc: Encoder<T>,
    clients: Vec<Follower>,
    /// Clients that joined with a full state after the start.
    late: Vec<Follower>,
    ticks: usize,
    last: Vec<(Dialect, Vec<u8>)>,
}

impl<T: Schema + StateJson + std::fmt::Debug> Harness<T> {
    /// Starts tracking `state`, opens a client of `version` with the
    /// matching Reflection and checks the first patch (the whole state) and
    /// the first full state.
    ///
    /// # Errors
    ///
    /// As [`Harness::tick`].
    pub fn new(node: &mut NodeDecoder, state: T, version: SchemaVersion) -> Result<Self, String> {
        Self::with_clients(node, state, &[version])
    }

    /// Like [`Harness::new`] with one stream client per version.
    ///
    /// # Errors
    ///
    /// As [`Harness::tick`].
    ///
    /// # Panics
    ///
    /// If `versions` is empty.
    pub fn with_clients(
        node: &mut NodeDecoder,
        state: T,
        versions: &[SchemaVersion],
    ) -> Result<Self, String> {
        assert!(!versions.is_empty(), "at least one client");
        let enc = Encoder::new(state);
        let types = enc.types().map_err(|e| e.to_string())?;
        let clients = versions
            .iter()
            .map(|&v| Follower::open(node, encode_reflection(&types, dialect_for(v)), v))
            .collect::<Result<Vec<_>, _>>()?;
        let mut h = Self {
            enc,
            clients,
            late: Vec::new(),
            ticks: 0,
            last: Vec::new(),
        };
        h.tick(node, "initial", |_| {})?;
        Ok(h)
    }

    /// Applies `f` through the state's view, encodes the patch, and checks
    /// the stream clients and fresh joiners against the server state.
    /// Returns the first client's patch.
    ///
    /// # Errors
    ///
    /// A description of the first mismatch (decoder exception, warning, or
    /// state difference).
    pub fn tick(
        &mut self,
        node: &mut NodeDecoder,
        what: &str,
        f: impl FnOnce(T::Mut<'_>),
    ) -> Result<Vec<u8>, String> {
        f(self.enc.state_mut());
        self.check(node, what)
    }

    /// Encodes the pending changes and checks every client.
    ///
    /// # Errors
    ///
    /// As [`Harness::tick`].
    pub fn check(&mut self, node: &mut NodeDecoder, what: &str) -> Result<Vec<u8>, String> {
        self.ticks += 1;
        let what = format!("tick {} ({what})", self.ticks);
        let dialects: Vec<Dialect> = self
            .clients
            .iter()
            .map(|c| dialect_for(c.version()))
            .collect();
        self.last.clear();
        if dialects.iter().all(|&d| d == dialects[0]) {
            let patch = self.enc.encode_patch_as(dialects[0]).to_vec();
            self.last.push((dialects[0], patch));
        } else {
            let (modern, legacy) = self.enc.encode_patch_both();
            self.last.push((Dialect::Modern, modern.to_vec()));
            self.last.push((Dialect::Legacy, legacy.to_vec()));
        }
        let expected = self.enc.state().state_json();
        let full = self.enc.encode_all().to_vec();
        for (client, dialect) in self.clients.iter().zip(&dialects) {
            let patch = self.patch(*dialect).unwrap_or_default();
            let what = format!("{what} {:?}", client.version());
            client.patch(node, &what, patch, &expected)?;
            client.joiner(node, &what, &full, &expected)?;
        }
        for client in &self.late {
            let patch = self
                .patch(dialect_for(client.version()))
                .unwrap_or_default();
            let what = format!("{what} {:?} late joiner", client.version());
            client.patch(node, &what, patch, &expected)?;
        }
        Ok(self.patch(dialects[0]).unwrap_or_default().to_vec())
    }

    /// Opens one more client per version that joins now, at a patch
    /// boundary, with a full state, and follows the later patches (of its
    /// dialect, which a stream client must use too).
    ///
    /// # Errors
    ///
    /// As [`Harness::tick`].
    pub fn join_late(
        &mut self,
        node: &mut NodeDecoder,
        versions: &[SchemaVersion],
    ) -> Result<(), String> {
        let types = self.enc.types().map_err(|e| e.to_string())?;
        let full = self.enc.encode_all().to_vec();
        let expected = self.expected();
        for &v in versions {
            let late = Follower::open(node, encode_reflection(&types, dialect_for(v)), v)?;
            late.patch(node, &format!("late {v:?} joiner"), &full, &expected)?;
            self.late.push(late);
        }
        Ok(())
    }

    /// The last tick's patch for `dialect` (when a client uses it).
    #[must_use]
    pub fn patch(&self, dialect: Dialect) -> Option<&[u8]> {
        self.last
            .iter()
            .find(|(d, _)| *d == dialect)
            .map(|(_, p)| p.as_slice())
    }

    /// The client's view of the server state.
    #[must_use]
    pub fn expected(&self) -> Value {
        self.enc.state().state_json()
    }

    /// Drops the clients.
    pub fn close(self, node: &mut NodeDecoder) {
        for c in self.clients.into_iter().chain(self.late) {
            c.close(node);
        }
    }
}
