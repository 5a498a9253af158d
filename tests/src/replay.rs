//! Replays the vectors' scenarios (schema, `initial` values, `ops`) on
//! Roomcast's dynamic state, so any vector set in the same format can be
//! checked against our encoder ([`check_vector`]).
//!
//! What the reference did is modelled first, with JavaScript semantics, in a
//! small object graph where an instance has one identity however many slots
//! hold it ([`Replay`]'s model): `$path` / `$stash` values are the instance
//! itself, `set.delete` finds an instance by identity, `map.set` / `set.add` /
//! field assignments of the instance already there are no-ops, splice
//! arguments are clamped, sorts compare like JavaScript's `<`. Every op then
//! changes Roomcast's state the same way through its API, at every path that
//! reaches the changed instance: Rust ownership gives each instance one
//! parent, so an instance the reference shares is one copy per parent here,
//! each kept equal to the reference's instance. Values placed in the state
//! are built from the model, with the TYPE_ID their slot needs.
//!
//! An instance the reference removed and places again once it is out of
//! the tree (a stash detached and re-attached, in the same step or later) is
//! moved here too: what Roomcast's state gave back when it was removed is
//! kept as a [`Moved`] value and placed again with its refIds. Steps where
//! the reference holds one instance under two parents, or places an instance
//! that is still in the tree (a `$path` move places before it removes; a
//! share), cannot give the reference's bytes: the copies have their own
//! refIds, and later refIds are offset. [`Replay::end_step`] finds them from
//! the ops (see [`OneParent`]); they are checked by decoded state only.
//!
//! Vector files are read with [`load_vectors`], which keeps the key order of
//! the objects of `ops` and `initial` (`$map` entries, `$new` fields, initial
//! values are assigned in JavaScript's `Object.keys` order): `serde_json`'s
//! map sorts keys, so the order is recorded under [`KEY_ORDER`].

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::path::Path;

use roomcast_schema::dynamic::{empty_value, DynStruct, DynValue, DynValueMut, PrimValue};
use roomcast_schema::types::{
    CollectionKind, ElementType, FieldType, NamedField, NamedFieldType, NamedType, Primitive,
    TypeId, TypeRegistry,
};
use roomcast_schema::wire::{encode_varint, spec::SWITCH_TO_STRUCTURE};
use roomcast_schema::{
    encode_reflection, Dialect, Encoder, EncoderOptions, Field, Moved, ViewId, ViewTarget,
    DEFAULT_VIEW_TAG,
};
use serde_json::{Map, Value};

use crate::node::{to_hex, NodeDecoder, SchemaVersion, VECTORS_ENV};
use crate::state_json::{
    canon, dyn_server_json, dyn_server_value_json, dyn_state_json, dyn_value_json,
};

/// Parses the vectors' `schema` section into a registry.
///
/// # Panics
///
/// On a malformed section (test fixtures).
pub fn registry(schema: &Value) -> TypeRegistry {
    try_registry(schema).unwrap_or_else(|e| panic!("{e}"))
}

/// [`registry`], with an error instead of a panic.
///
/// # Errors
///
/// A malformed or invalid `schema` section.
pub fn try_registry(schema: &Value) -> Result<TypeRegistry, String> {
    let types = schema["types"].as_array().ok_or("schema: no `types`")?;
    let mut named = Vec::with_capacity(types.len());
    for t in types {
        let name = t["name"].as_str().ok_or("schema: a type without `name`")?;
        let mut fields = Vec::new();
        for f in t["fields"]
            .as_array()
            .ok_or("schema: a type without `fields`")?
        {
            fields.push(NamedField {
                name: f["name"]
                    .as_str()
                    .ok_or_else(|| format!("schema: a field of {name} without `name`"))?
                    .to_owned(),
                ty: field_type(&f["type"])?,
            });
        }
        named.push(NamedType {
            name: name.to_owned(),
            extends: t["extends"].as_str().map(str::to_owned),
            fields,
        });
    }
    let root = schema["root"].as_str().ok_or("schema: no `root`")?;
    let mut reg =
        TypeRegistry::from_named(root, &named).map_err(|e| format!("schema refused: {e}"))?;
    // `"view": true` (default tag) or `"view": TAG` on a field.
    for t in types {
        let Some(id) = t["name"].as_str().and_then(|n| reg.by_name(n)) else {
            continue;
        };
        for f in t["fields"].as_array().into_iter().flatten() {
            let tag = match &f["view"] {
                Value::Bool(true) => Some(DEFAULT_VIEW_TAG),
                Value::Number(n) => n.as_i64(),
                _ => None,
            };
            if tag.is_some() {
                let name = f["name"].as_str().unwrap_or_default();
                let index = reg
                    .fields(id)
                    .iter()
                    .position(|d| d.name == name)
                    .ok_or_else(|| format!("schema: no field {name}"))?;
                reg.set_view_tag(id, index, tag);
            }
        }
    }
    Ok(reg)
}

fn field_type(v: &Value) -> Result<NamedFieldType, String> {
    if let Some(name) = v.as_str() {
        return Ok(match Primitive::from_name(name) {
            Some(p) => NamedFieldType::Primitive(p),
            None => NamedFieldType::Schema(name.to_owned()),
        });
    }
    let (kind, inner) = v
        .as_object()
        .and_then(|o| o.iter().next())
        .ok_or_else(|| format!("schema: bad field type {v}"))?;
    let kind = CollectionKind::from_name(kind)
        .ok_or_else(|| format!("schema: bad collection kind {kind}"))?;
    let inner = inner
        .as_str()
        .ok_or_else(|| format!("schema: bad element type {inner}"))?;
    Ok(match Primitive::from_name(inner) {
        Some(p) => NamedFieldType::PrimitiveCollection(kind, p),
        None => NamedFieldType::SchemaCollection(kind, inner.to_owned()),
    })
}

// --- vector files with their key order ---------------------------------------

/// Key under which [`parse_vector`] records, in an object of `ops` or
/// `initial` whose JavaScript key order is not the sorted order, that order
/// (an array of the keys).
pub const KEY_ORDER: &str = "$keyOrder";

/// The keys of an object of `ops` / `initial` in JavaScript's order: the
/// recorded [`KEY_ORDER`], else sorted (what `serde_json` keeps).
#[must_use]
pub fn keys_in_order(obj: &Map<String, Value>) -> Vec<&str> {
    if let Some(order) = obj.get(KEY_ORDER).and_then(Value::as_array) {
        return order.iter().filter_map(Value::as_str).collect();
    }
    obj.keys()
        .map(String::as_str)
        .filter(|k| *k != KEY_ORDER)
        .collect()
}

/// `v` without the [`KEY_ORDER`] records (for messages).
#[must_use]
pub fn strip_key_order(v: &Value) -> Value {
    match v {
        Value::Array(a) => Value::Array(a.iter().map(strip_key_order).collect()),
        Value::Object(o) => Value::Object(
            o.iter()
                .filter(|(k, _)| *k != KEY_ORDER)
                .map(|(k, v)| (k.clone(), strip_key_order(v)))
                .collect(),
        ),
        _ => v.clone(),
    }
}

/// Parses a vector file like `serde_json::from_str`, recording the key order
/// of the objects inside `ops` and `initial` ([`KEY_ORDER`]).
///
/// # Errors
///
/// Invalid JSON.
pub fn parse_vector(text: &str) -> Result<Value, String> {
    let mut p = JsonParser {
        text,
        bytes: text.as_bytes(),
        at: 0,
    };
    p.ws();
    let v = p.value(false)?;
    p.ws();
    if p.at != p.bytes.len() {
        return Err(p.error("trailing characters"));
    }
    Ok(v)
}

/// Loads every `*.json` vector file, sorted by file name, as `(file stem,
/// JSON)` with the key order of `ops` / `initial` recorded
/// ([`parse_vector`]). The directory is `dir` when given, else
/// `ROOMCAST_VECTORS` when set, else `tests/fixtures/vectors`.
///
/// # Panics
///
/// On I/O or JSON errors (test fixtures).
#[must_use]
pub fn load_vectors(dir: Option<&Path>) -> Vec<(String, Value)> {
    crate::node::load_vectors_with(dir, parse_vector)
}

/// Whether the vectors come from `tests/fixtures/vectors` (neither `dir` nor
/// `ROOMCAST_VECTORS` given).
#[must_use]
pub fn is_fixture_set(dir: Option<&Path>) -> bool {
    dir.is_none() && std::env::var_os(VECTORS_ENV).is_none()
}

struct JsonParser<'a> {
    text: &'a str,
    bytes: &'a [u8],
    at: usize,
}

impl JsonParser<'_> {
    fn error(&self, what: &str) -> String {
        format!("{what} at byte {}", self.at)
    }

    fn ws(&mut self) {
        while self
            .bytes
            .get(self.at)
            .is_some_and(|b| matches!(b, b' ' | b'\n' | b'\r' | b'\t'))
        {
            self.at += 1;
        }
    }

    fn expect(&mut self, b: u8) -> Result<(), String> {
        if self.bytes.get(self.at) == Some(&b) {
            self.at += 1;
            Ok(())
        } else {
            Err(self.error(&format!("expected `{}`", char::from(b))))
        }
    }

    fn value(&mut self, ordered: bool) -> Result<Value, String> {
        match self.bytes.get(self.at) {
            Some(b'{') => self.object(ordered),
            Some(b'[') => self.array(ordered),
            Some(b'"') => self.string().map(Value::String),
            Some(b't') => self.literal("true", Value::Bool(true)),
            Some(b'f') => self.literal("false", Value::Bool(false)),
            Some(b'n') => self.literal("null", Value::Null),
            Some(_) => self.number(),
            None => Err(self.error("unexpected end")),
        }
    }

    fn literal(&mut self, word: &str, v: Value) -> Result<Value, String> {
        if self.text[self.at..].starts_with(word) {
            self.at += word.len();
            Ok(v)
        } else {
            Err(self.error("bad literal"))
        }
    }

    fn number(&mut self) -> Result<Value, String> {
        let start = self.at;
        while self
            .bytes
            .get(self.at)
            .is_some_and(|b| matches!(b, b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9'))
        {
            self.at += 1;
        }
        serde_json::from_str(&self.text[start..self.at]).map_err(|e| self.error(&e.to_string()))
    }

    fn string(&mut self) -> Result<String, String> {
        self.expect(b'"')?;
        let mut out = String::new();
        loop {
            let start = self.at;
            while self
                .bytes
                .get(self.at)
                .is_some_and(|b| *b != b'"' && *b != b'\\')
            {
                self.at += 1;
            }
            out.push_str(&self.text[start..self.at]);
            match self.bytes.get(self.at) {
                Some(b'"') => {
                    self.at += 1;
                    return Ok(out);
                }
                Some(b'\\') => {
                    self.at += 1;
                    let c = *self.bytes.get(self.at).ok_or("unterminated escape")?;
                    self.at += 1;
                    match c {
                        b'"' => out.push('"'),
                        b'\\' => out.push('\\'),
                        b'/' => out.push('/'),
                        b'b' => out.push('\u{8}'),
                        b'f' => out.push('\u{c}'),
                        b'n' => out.push('\n'),
                        b'r' => out.push('\r'),
                        b't' => out.push('\t'),
                        b'u' => {
                            let hi = self.hex4()?;
                            let code = if (0xd800..0xdc00).contains(&hi)
                                && self.text[self.at..].starts_with("\\u")
                            {
                                let save = self.at;
                                self.at += 2;
                                let lo = self.hex4()?;
                                if (0xdc00..0xe000).contains(&lo) {
                                    0x10000 + ((hi - 0xd800) << 10) + (lo - 0xdc00)
                                } else {
                                    self.at = save;
                                    hi
                                }
                            } else {
                                hi
                            };
                            // A lone surrogate cannot be a Rust char.
                            out.push(char::from_u32(code).unwrap_or('\u{fffd}'));
                        }
                        _ => return Err(self.error("bad escape")),
                    }
                }
                _ => return Err(self.error("unterminated string")),
            }
        }
    }

    fn hex4(&mut self) -> Result<u32, String> {
        let s = self
            .text
            .get(self.at..self.at + 4)
            .ok_or_else(|| self.error("short \\u escape"))?;
        self.at += 4;
        u32::from_str_radix(s, 16).map_err(|_| self.error("bad \\u escape"))
    }

    fn array(&mut self, ordered: bool) -> Result<Value, String> {
        self.expect(b'[')?;
        let mut out = Vec::new();
        self.ws();
        if self.bytes.get(self.at) == Some(&b']') {
            self.at += 1;
            return Ok(Value::Array(out));
        }
        loop {
            self.ws();
            out.push(self.value(ordered)?);
            self.ws();
            match self.bytes.get(self.at) {
                Some(b',') => self.at += 1,
                Some(b']') => {
                    self.at += 1;
                    return Ok(Value::Array(out));
                }
                _ => return Err(self.error("expected `,` or `]`")),
            }
        }
    }

    fn object(&mut self, ordered: bool) -> Result<Value, String> {
        self.expect(b'{')?;
        let mut map = Map::new();
        let mut keys: Vec<String> = Vec::new();
        self.ws();
        if self.bytes.get(self.at) == Some(&b'}') {
            self.at += 1;
            return Ok(Value::Object(map));
        }
        loop {
            self.ws();
            let key = self.string()?;
            self.ws();
            self.expect(b':')?;
            self.ws();
            let inner = ordered || key == "ops" || key == "initial";
            let v = self.value(inner)?;
            if map.insert(key.clone(), v).is_none() {
                keys.push(key);
            }
            self.ws();
            match self.bytes.get(self.at) {
                Some(b',') => self.at += 1,
                Some(b'}') => {
                    self.at += 1;
                    break;
                }
                _ => return Err(self.error("expected `,` or `}`")),
            }
        }
        if ordered && keys.len() > 1 {
            let order = js_key_order(keys);
            if !order.windows(2).all(|w| w[0] <= w[1]) {
                map.insert(
                    KEY_ORDER.to_owned(),
                    Value::Array(order.into_iter().map(Value::String).collect()),
                );
            }
        }
        Ok(Value::Object(map))
    }
}

/// `Object.keys` order: array-index keys ascending, then the others in
/// insertion order.
fn js_key_order(keys: Vec<String>) -> Vec<String> {
    let index = |k: &str| -> Option<u32> {
        if k == "0" {
            return Some(0);
        }
        if k.starts_with('0') || k.is_empty() || !k.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        k.parse::<u32>().ok().filter(|&n| n != u32::MAX)
    };
    let (mut ints, rest): (Vec<String>, Vec<String>) =
        keys.into_iter().partition(|k| index(k).is_some());
    ints.sort_by_key(|k| index(k));
    ints.extend(rest);
    ints
}

// --- the JavaScript-side model --------------------------------------------------

type NodeId = usize;

/// A value in the model: a primitive, or an instance (by identity).
#[derive(Debug, Clone)]
enum MVal {
    Prim(PrimValue),
    Ref(NodeId),
}

/// Roomcast's value for a model value being placed (see
/// [`Replay::placing`]): the instance itself for the first slot, copies
/// for any other.
struct Placing {
    copy: DynValue,
    moved: Option<Moved<DynValue>>,
}

impl Placing {
    fn next(&mut self) -> Moved<DynValue> {
        self.moved
            .take()
            .unwrap_or_else(|| Moved::new(self.copy.clone()))
    }
}

/// An instance of the model (what the reference holds).
#[derive(Debug, Clone)]
enum MNode {
    Struct {
        ty: TypeId,
        fields: Vec<Option<MVal>>,
    },
    Map {
        elem: ElementType,
        entries: Vec<(String, MVal)>,
    },
    List {
        kind: CollectionKind,
        elem: ElementType,
        items: Vec<MVal>,
    },
}

/// One step of a path through Roomcast's state.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Seg {
    Field(usize),
    Key(String),
    Pos(usize),
}

/// JavaScript `===` on model values.
fn strict_eq(a: Option<&MVal>, b: Option<&MVal>) -> bool {
    match (a, b) {
        (None, None) => true,
        (Some(MVal::Ref(x)), Some(MVal::Ref(y))) => x == y,
        (Some(MVal::Prim(x)), Some(MVal::Prim(y))) => x == y,
        _ => false,
    }
}

/// JavaScript's `a < b` on two primitives of one declared type.
fn js_less(a: &MVal, b: &MVal) -> bool {
    match (a, b) {
        (MVal::Prim(x), MVal::Prim(y)) => match (x, y) {
            (PrimValue::Str(x), PrimValue::Str(y)) => x.encode_utf16().lt(y.encode_utf16()),
            (PrimValue::I64(x), PrimValue::I64(y)) => x < y,
            (PrimValue::U64(x), PrimValue::U64(y)) => x < y,
            (PrimValue::Bool(x), PrimValue::Bool(y)) => !x & y,
            (PrimValue::Num(x), PrimValue::Num(y)) => x < y,
            _ => false,
        },
        // Schema instances: both sides are "[object Object]".
        _ => false,
    }
}

/// The test scenario's comparators: `ascending(a, b) = a < b ? -1 : a > b ? 1 : 0`.
fn js_compare(a: &MVal, b: &MVal, descending: bool) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    let o = if js_less(a, b) {
        Ordering::Less
    } else if js_less(b, a) {
        Ordering::Greater
    } else {
        Ordering::Equal
    };
    if descending {
        o.reverse()
    } else {
        o
    }
}

/// V8's `Array.prototype.sort` (TimSort) of `items` with `cmp`: for fewer
/// than 64 elements one run (a leading strictly descending run reversed,
/// then binary insertion), which gives V8's exact order even when `cmp` is
/// not consistent; longer arrays get a stable merge sort (the same order
/// for consistent comparators; halves shorter than 64 are sorted like V8
/// sorts short runs).
fn v8_sort<T: Clone>(items: &mut [T], cmp: &dyn Fn(&T, &T) -> std::cmp::Ordering) {
    use std::cmp::Ordering;
    let n = items.len();
    if n < 2 {
        return;
    }
    if n >= 64 {
        // A stable merge sort of our own (Rust's may panic on a comparator
        // that is not a total order, e.g. with NaN).
        let mid = n / 2;
        v8_sort(&mut items[..mid], cmp);
        v8_sort(&mut items[mid..], cmp);
        let mut merged = Vec::with_capacity(n);
        let (mut i, mut j) = (0, mid);
        while i < mid && j < n {
            if cmp(&items[j], &items[i]) == Ordering::Less {
                merged.push(items[j].clone());
                j += 1;
            } else {
                merged.push(items[i].clone());
                i += 1;
            }
        }
        merged.extend_from_slice(&items[i..mid]);
        merged.extend_from_slice(&items[j..]);
        items.clone_from_slice(&merged);
        return;
    }
    // CountAndMakeRun.
    let mut run = 2;
    let descending = cmp(&items[1], &items[0]) == Ordering::Less;
    while run < n {
        let o = cmp(&items[run], &items[run - 1]);
        if (descending && o != Ordering::Less) || (!descending && o == Ordering::Less) {
            break;
        }
        run += 1;
    }
    if descending {
        items[..run].reverse();
    }
    // BinaryInsertionSort(low = 0, start = run, high = n).
    for start in run..n {
        let pivot = items[start].clone();
        let (mut left, mut right) = (0, start);
        while left < right {
            let mid = left + ((right - left) >> 1);
            if cmp(&pivot, &items[mid]) == Ordering::Less {
                right = mid;
            } else {
                left = mid + 1;
            }
        }
        items[left..=start].rotate_right(1);
    }
}

/// Why a step's bytes cannot be the reference's (Rust gives every instance
/// one parent). Such steps are checked by decoded state only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OneParent {
    /// An op placed an instance that already existed and was still in the
    /// tree, or held below one that is (`$path` / `$stash`: a move that
    /// places before it removes, a share): Roomcast places a copy with new
    /// refIds where the reference keeps the instance's refId.
    Reused,
    /// During the step an instance was held by two slots (one parent per
    /// copy here: changes are sent once per copy).
    Shared,
    /// The refIds differ from the vector's after an earlier step placed a
    /// copy (the copies' refIds offset every later one).
    Offset,
}

impl OneParent {
    /// A short description.
    #[must_use]
    pub fn describe(self) -> &'static str {
        match self {
            Self::Reused => "an instance in the tree placed again ($path/$stash): a copy here",
            Self::Shared => "an instance held by two slots",
            Self::Offset => "refIds offset by an earlier copy",
        }
    }
}

#[derive(Debug, Default, Clone, Copy)]
struct StepFlags {
    /// Existing instances placed as a copy.
    reused: usize,
    shared: bool,
}

/// A scenario being replayed.
#[derive(Debug)]
pub struct Replay {
    /// The scenario's types.
    pub types: TypeRegistry,
    /// The encoder holding the replayed state.
    pub encoder: Encoder<DynStruct>,
    /// The scenario's views (`views`), by name.
    pub views: Vec<(String, ViewId)>,
    nodes: Vec<MNode>,
    root: NodeId,
    stash: HashMap<String, MVal>,
    /// Stashed instances out of the model's tree, as Roomcast's state gave
    /// them back when they were removed: placed again, they move there
    /// with their refIds, as the reference's do.
    graveyard: HashMap<NodeId, (Moved<DynValue>, usize)>,
    /// Stashes the vector places more than once: copied, not moved (see
    /// `bury`). Moving them, with copies for the later places of the same
    /// instance, left the real decoder in another state on one vector of
    /// the default random set (seed 1, `random_1_260`, steps 23 to 25), a
    /// case not understood yet.
    placed_often: Vec<String>,
    /// Steps begun.
    step_no: usize,
    step: StepFlags,
    copied: bool,
    /// The refIds differed from the vector's at the end of the last step.
    offset: bool,
}

impl Replay {
    /// Builds the initial state of a vector (`steps[0].initial`) and its
    /// encoder; refIds are numbered like the reference (never reused).
    ///
    /// # Panics
    ///
    /// On a malformed vector ([`Replay::try_new`] returns the error).
    #[must_use]
    pub fn new(vector: &Value) -> Self {
        Self::try_new(vector).unwrap_or_else(|e| panic!("{e}"))
    }

    /// [`Replay::new`], with an error instead of a panic.
    ///
    /// # Errors
    ///
    /// A malformed schema, or `initial` values that cannot be built.
    pub fn try_new(vector: &Value) -> Result<Self, String> {
        let types = try_registry(&vector["schema"])?;
        let root_ty = types.root();
        let n = types.fields(root_ty).len();
        // Replaced below, once `initial` is built.
        let placeholder = Encoder::with_options(
            DynStruct::new(&types, root_ty),
            EncoderOptions::default().reuse_ref_ids(false),
        );
        let mut this = Self {
            types,
            encoder: placeholder,
            views: Vec::new(),
            nodes: vec![MNode::Struct {
                ty: root_ty,
                fields: vec![None; n],
            }],
            root: 0,
            stash: HashMap::new(),
            graveyard: HashMap::new(),
            placed_often: stashes_placed_often(vector),
            step_no: 0,
            step: StepFlags::default(),
            copied: false,
            offset: false,
        };
        if let Some(init) = vector["steps"][0]["initial"].as_object() {
            for name in keys_in_order(init) {
                let (i, ty) = this.field_of(root_ty, name)?;
                let v = this
                    .materialize(&init[name], ty)
                    .map_err(|e| format!("initial.{name}: {e}"))?;
                if let MNode::Struct { fields, .. } = &mut this.nodes[0] {
                    fields[i] = v.map(|(v, _)| v);
                }
            }
        }
        let mut root = DynStruct::new(&this.types, root_ty);
        for (i, f) in this.types.fields(root_ty).iter().enumerate() {
            let v = this.struct_field(0, i).cloned();
            root.set(i, v.map(|v| this.to_dyn(&v, f.ty)));
        }
        this.encoder = Encoder::with_options(root, EncoderOptions::default().reuse_ref_ids(false));
        this.views = vector["views"]
            .as_array()
            .map(|names| {
                names
                    .iter()
                    .map(|n| {
                        (
                            n.as_str().unwrap_or_default().to_owned(),
                            this.encoder.create_view(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        Ok(this)
    }

    /// The view named `name` in the vector.
    #[must_use]
    pub fn view(&self, name: &str) -> Option<ViewId> {
        self.views.iter().find(|(n, _)| n == name).map(|(_, v)| *v)
    }

    /// Starts a step (see [`Replay::end_step`]).
    pub fn begin_step(&mut self) {
        self.step_no += 1;
        self.step = StepFlags {
            reused: 0,
            shared: self.has_shared(),
        };
    }

    /// Ends a step (call it after encoding): whether the step is one whose
    /// bytes cannot be the reference's, and why. `ref_ids` is the vector's
    /// `refIds` of the step.
    pub fn end_step(&mut self, ref_ids: Option<&Value>) -> Option<OneParent> {
        let flags = self.step;
        self.copied |= flags.reused > 0;
        // Offset now, or at the end of the previous step: a ref removed in
        // this step (a DELETE_BY_REFID, a cleared child) was numbered there.
        let was_offset = self.offset;
        self.offset = self.copied && ref_ids.is_some_and(|want| !self.ref_ids_equal(want));
        if flags.reused > 0 {
            Some(OneParent::Reused)
        } else if flags.shared {
            Some(OneParent::Shared)
        } else if self.offset || was_offset {
            Some(OneParent::Offset)
        } else {
            None
        }
    }

    /// `{path: refId}` of every struct and collection of Roomcast's state
    /// (the vectors' `refIds` format).
    #[must_use]
    pub fn ref_ids(&self) -> BTreeMap<String, u32> {
        let mut out = BTreeMap::new();
        out.insert(
            String::new(),
            self.encoder.state().__ref_id(&()).unwrap_or(0),
        );
        walk_ref_ids(&self.types, self.encoder.state(), "", &mut out);
        out
    }

    fn ref_ids_equal(&self, want: &Value) -> bool {
        let Some(want) = want.as_object() else {
            return true;
        };
        let ours = self.ref_ids();
        ours.len() == want.len()
            && ours
                .iter()
                .all(|(k, v)| want.get(k).and_then(Value::as_u64) == Some(u64::from(*v)))
    }

    /// What a client decodes from the model (the reference's state).
    #[must_use]
    pub fn model_state(&self, lossy: bool) -> Value {
        self.node_json(self.root, lossy, 0)
    }

    fn node_json(&self, id: NodeId, lossy: bool, depth: usize) -> Value {
        let each = |v: &MVal, wire: Option<Primitive>| match v {
            MVal::Ref(id) if depth < 64 => self.node_json(*id, lossy, depth + 1),
            MVal::Ref(_) => Value::Null,
            MVal::Prim(p) => {
                let prim = DynValue::Prim(wire.unwrap_or(Primitive::String), p.clone());
                let json = if lossy {
                    dyn_value_json(&self.types, &prim)
                } else {
                    dyn_server_value_json(&self.types, &prim)
                };
                json.unwrap_or(Value::Null)
            }
        };
        match &self.nodes[id] {
            MNode::Struct { ty, fields } => Value::Object(
                self.types
                    .fields(*ty)
                    .iter()
                    .zip(fields)
                    .filter_map(|(f, v)| {
                        let wire = match f.ty {
                            FieldType::Primitive(p) => Some(p),
                            _ => None,
                        };
                        v.as_ref().map(|v| (f.name.clone(), each(v, wire)))
                    })
                    .collect(),
            ),
            MNode::Map { elem, entries } => Value::Object(
                entries
                    .iter()
                    .map(|(k, v)| (k.clone(), each(v, elem_wire(*elem))))
                    .collect(),
            ),
            MNode::List { elem, items, .. } => {
                Value::Array(items.iter().map(|v| each(v, elem_wire(*elem))).collect())
            }
        }
    }

    /// Applies one op of a step.
    ///
    /// # Panics
    ///
    /// Where [`Replay::try_apply`] returns an error.
    pub fn apply(&mut self, op: &Value) {
        if let Err(e) = self.try_apply(op) {
            panic!("{e}: op {}", strip_key_order(op));
        }
    }

    /// Applies one op of a step to the model and to Roomcast's state.
    ///
    /// # Errors
    ///
    /// A malformed op, a path that leads nowhere, an op this replay does
    /// not support (holes in arrays, a sort it cannot reproduce), or a
    /// Roomcast state that does not follow the model.
    pub fn try_apply(&mut self, op: &Value) -> Result<(), String> {
        let kind = op["op"].as_str().ok_or("op without `op`")?;
        let path: Vec<Value> = match op.get("path") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(a)) => a.clone(),
            Some(other) => return Err(format!("bad path {other}")),
        };
        if kind == "stash" {
            let v = self.resolve(&path)?;
            let name = op["as"].as_str().ok_or("stash without `as`")?;
            self.stash.insert(name.to_owned(), v);
            return Ok(());
        }
        let target = match self.resolve(&path)? {
            MVal::Ref(id) => id,
            MVal::Prim(_) => {
                return Err(format!(
                    "path {}: a primitive, not an instance",
                    Value::Array(path)
                ))
            }
        };
        self.apply_on(kind, target, op)?;
        if !self.graveyard.is_empty() {
            // An instance placed again as a copy (or one below it) is
            // changed through that copy from now on: what the graveyard
            // holds of it is stale.
            let live: Vec<NodeId> = self
                .graveyard
                .keys()
                .copied()
                .filter(|&id| self.subtree_reachable(id, None))
                .collect();
            for id in live {
                self.graveyard.remove(&id);
            }
        }
        if !self.step.shared && self.has_shared() {
            self.step.shared = true;
        }
        Ok(())
    }

    #[allow(clippy::too_many_lines, reason = "one arm per op")]
    fn apply_on(&mut self, kind: &str, target: NodeId, op: &Value) -> Result<(), String> {
        match kind {
            "view.add" | "view.remove" => {
                let name = op["view"].as_str().ok_or("view op without `view`")?;
                let view = self
                    .view(name)
                    .ok_or_else(|| format!("unknown view {name}"))?;
                let tag = op["tag"].as_i64().unwrap_or(DEFAULT_VIEW_TAG);
                let show = kind == "view.add";
                self.each_copy(target, |v| {
                    match v {
                        DynValueMut::Struct(mut s) => apply_view(&mut s, view, show, tag),
                        DynValueMut::Map(mut m) => apply_view(&mut m, view, show, tag),
                        DynValueMut::Array(mut a) => apply_view(&mut a, view, show, tag),
                        DynValueMut::Set(mut x) => apply_view(&mut x, view, show, tag),
                        DynValueMut::Collection(mut x) => apply_view(&mut x, view, show, tag),
                        _ => return Err("not an instance".to_owned()),
                    }
                    Ok(())
                })
            }
            "set" => {
                let MNode::Struct { ty, .. } = self.nodes[target] else {
                    return Err("set on a collection".into());
                };
                let field = op["field"].as_str().ok_or("set without `field`")?;
                let (i, fty) = self.field_of(ty, field)?;
                let new = self.materialize(op.get("value").unwrap_or(&Value::Null), fty)?;
                // `value === previousValue`: a no-op for the reference. The
                // instance already there is skipped (a copy would replace
                // it here); a primitive still goes through Roomcast's setter,
                // which must find it unchanged itself.
                let same = strict_eq(self.struct_field(target, i), new.as_ref().map(|v| &v.0));
                if same && matches!(new, Some((MVal::Ref(_), _))) {
                    return Ok(());
                }
                let new = self.placed(new);
                let old = self.struct_field(target, i).cloned();
                if !same {
                    if let MNode::Struct { fields, .. } = &mut self.nodes[target] {
                        fields[i].clone_from(&new);
                    }
                }
                let mut placing = new.map(|v| self.placing(&v, fty));
                let mut taken = Vec::new();
                let result = self.each_copy(target, |v| match v {
                    DynValueMut::Struct(mut s) => {
                        let value = match &mut placing {
                            Some(p) => p.next().some(),
                            None => Moved::new(None),
                        };
                        taken.extend(s.replace(i, value).transpose());
                        Ok(())
                    }
                    _ => Err("not a struct".into()),
                });
                if !same {
                    self.bury(old.as_slice(), taken);
                }
                result
            }
            "map.set" => {
                let MNode::Map { elem, .. } = self.nodes[target] else {
                    return Err("map.set on a non-map".into());
                };
                let key = key_string(&op["key"])?;
                let ety = element_field_type(elem);
                let new = self
                    .materialize(op.get("value").unwrap_or(&Value::Null), ety)?
                    .ok_or("map.set with a null value (the reference throws)")?;
                let MNode::Map { entries, .. } = &self.nodes[target] else {
                    unreachable!()
                };
                let pos = entries.iter().position(|(k, _)| *k == key);
                // The value already there: a no-op for the reference (see `set`).
                let same = pos.is_some_and(|p| strict_eq(Some(&entries[p].1), Some(&new.0)));
                if same && matches!(new.0, MVal::Ref(_)) {
                    return Ok(());
                }
                let new = self.placed(Some(new)).expect("a value");
                let mut old = None;
                if let MNode::Map { entries, .. } = &mut self.nodes[target] {
                    match pos {
                        Some(_) if same => {}
                        Some(p) => old = Some(std::mem::replace(&mut entries[p].1, new.clone())),
                        None => entries.push((key.clone(), new.clone())),
                    }
                }
                let mut placing = self.placing(&new, ety);
                let mut taken = Vec::new();
                let result = self.each_copy(target, |v| match v {
                    DynValueMut::Map(mut m) => {
                        taken.extend(m.insert_moved(&key, placing.next()));
                        Ok(())
                    }
                    _ => Err("not a map".into()),
                });
                self.bury(old.as_slice(), taken);
                result
            }
            "map.delete" => {
                let key = key_string(&op["key"])?;
                let MNode::Map { entries, .. } = &mut self.nodes[target] else {
                    return Err("map.delete on a non-map".into());
                };
                let old: Vec<MVal> = entries
                    .iter()
                    .filter(|(k, _)| *k == key)
                    .map(|(_, v)| v.clone())
                    .collect();
                entries.retain(|(k, _)| *k != key);
                let mut taken = Vec::new();
                let result = self.each_copy(target, |v| match v {
                    DynValueMut::Map(mut m) => {
                        taken.extend(m.take(&key));
                        Ok(())
                    }
                    _ => Err("not a map".into()),
                });
                self.bury(&old, taken);
                result
            }
            "map.clear" | "array.clear" | "set.clear" | "collection.clear" => {
                match &mut self.nodes[target] {
                    MNode::Map { entries, .. } => entries.clear(),
                    MNode::List { items, .. } => items.clear(),
                    MNode::Struct { .. } => return Err(format!("{kind} on a struct")),
                }
                self.each_copy(target, |v| {
                    match v {
                        DynValueMut::Map(mut m) => m.clear(),
                        DynValueMut::Array(mut a) => a.clear(),
                        DynValueMut::Set(mut s) => s.clear(),
                        DynValueMut::Collection(mut c) => c.clear(),
                        _ => return Err("not a collection".into()),
                    }
                    Ok(())
                })
            }
            "array.push" | "array.unshift" | "array.splice" | "array.set" | "array.pop"
            | "array.shift" | "array.reverse" | "array.sort" => self.apply_array(kind, target, op),
            "set.add" | "collection.add" => {
                let MNode::List { elem, kind: ck, .. } = self.nodes[target] else {
                    return Err(format!("{kind} on a non-collection"));
                };
                let ety = element_field_type(elem);
                let new = self
                    .materialize(op.get("value").unwrap_or(&Value::Null), ety)?
                    .ok_or_else(|| format!("{kind} with a null value (the reference throws)"))?;
                if ck == CollectionKind::Set && self.list_position(target, &new.0).is_some() {
                    // SetSchema.add of a value (`===`) it holds: no-op. Roomcast's
                    // set finds equal primitives itself; an instance has no
                    // identity there.
                    if matches!(new.0, MVal::Ref(_)) {
                        return Ok(());
                    }
                } else if let MNode::List { items, .. } = &mut self.nodes[target] {
                    items.push(new.0.clone());
                }
                let new = self.placed(Some(new)).expect("a value");
                let mut placing = self.placing(&new, ety);
                self.each_copy(target, |v| {
                    match v {
                        DynValueMut::Set(mut s) => {
                            s.add_moved(placing.next());
                        }
                        DynValueMut::Collection(mut c) => {
                            c.add_moved(placing.next());
                        }
                        _ => return Err("not a set/collection".into()),
                    }
                    Ok(())
                })
            }
            "set.delete" | "collection.delete" => {
                let MNode::List { elem, .. } = self.nodes[target] else {
                    return Err(format!("{kind} on a non-collection"));
                };
                let probe = self.materialize(
                    op.get("value").unwrap_or(&Value::Null),
                    element_field_type(elem),
                )?;
                // By `===`: a primitive by value, an instance by identity.
                let Some(pos) = probe.and_then(|(p, _)| self.list_position(target, &p)) else {
                    return Ok(());
                };
                let mut old = Vec::new();
                if let MNode::List { items, .. } = &mut self.nodes[target] {
                    old.push(items.remove(pos));
                }
                let mut taken = Vec::new();
                let result = self.each_copy(target, |v| {
                    let mut n = 0usize;
                    let mut at = |_: &DynValue| {
                        n += 1;
                        n == pos + 1
                    };
                    let removed = match v {
                        DynValueMut::Set(mut s) => s.take_where(&mut at),
                        DynValueMut::Collection(mut c) => c.take_where(&mut at),
                        _ => return Err("not a set/collection".into()),
                    };
                    match removed {
                        Some(m) => {
                            taken.push(m);
                            Ok(())
                        }
                        None => Err(format!("no element at position {pos}")),
                    }
                });
                self.bury(&old, taken);
                result
            }
            other => Err(format!("unsupported op {other}")),
        }
    }

    #[allow(clippy::too_many_lines, reason = "one arm per array method")]
    fn apply_array(&mut self, kind: &str, target: NodeId, op: &Value) -> Result<(), String> {
        let MNode::List {
            kind: CollectionKind::Array,
            elem,
            ref items,
        } = self.nodes[target]
        else {
            return Err(format!("{kind} on a non-array"));
        };
        let len = items.len();
        let ety = element_field_type(elem);
        // Values are materialized before the call (spread arguments).
        let mut values = Vec::new();
        for v in op["values"].as_array().into_iter().flatten() {
            values.push(self.materialize(v, ety)?);
        }
        match kind {
            "array.push" => {
                // ArraySchema.push stops at the first null / undefined.
                let values: Vec<_> = values.into_iter().map_while(|v| v).collect();
                let placed: Vec<MVal> = values
                    .into_iter()
                    .filter_map(|v| self.placed(Some(v)))
                    .collect();
                self.list_mut(target).extend(placed.iter().cloned());
                let mut dynv: Vec<Placing> = placed.iter().map(|v| self.placing(v, ety)).collect();
                self.each_copy(target, |v| match v {
                    DynValueMut::Array(mut a) => {
                        dynv.iter_mut().for_each(|x| a.push_moved(x.next()));
                        Ok(())
                    }
                    _ => Err("not an array".into()),
                })
            }
            "array.unshift" | "array.splice" => {
                let mut placed = Vec::new();
                for v in values {
                    let v = v.ok_or_else(|| {
                        format!("{kind} with a null value (holes are not replayed)")
                    })?;
                    placed.extend(self.placed(Some(v)));
                }
                let (start, count) = if kind == "array.unshift" {
                    (0, 0)
                } else {
                    splice_args(op, len)?
                };
                let old: Vec<MVal> = self
                    .list_mut(target)
                    .splice(start..start + count, placed.iter().cloned())
                    .collect();
                let mut dynv: Vec<Placing> = placed.iter().map(|v| self.placing(v, ety)).collect();
                let mut taken = Vec::new();
                let result = self.each_copy(target, |v| match v {
                    DynValueMut::Array(mut a) if kind == "array.unshift" => {
                        for (i, x) in dynv.iter_mut().enumerate() {
                            a.insert_moved(i, x.next());
                        }
                        Ok(())
                    }
                    DynValueMut::Array(mut a) if start <= a.len() => {
                        let values: Vec<Moved<DynValue>> =
                            dynv.iter_mut().map(Placing::next).collect();
                        taken.extend(a.splice_moved(start, count, values));
                        Ok(())
                    }
                    _ => Err("not an array of that length".into()),
                });
                self.bury(&old, taken);
                result
            }
            "array.set" => {
                let index = op["index"]
                    .as_u64()
                    .ok_or("array.set: `index` is not a non-negative integer")?
                    as usize;
                let new = self
                    .materialize(op.get("value").unwrap_or(&Value::Null), ety)?
                    .ok_or("array.set with a null value (not replayed)")?;
                if index > len {
                    return Err(format!(
                        "array.set at {index} past the end ({len}): holes are not replayed"
                    ));
                }
                let same = index < len && strict_eq(self.list_mut(target).get(index), Some(&new.0));
                if same && matches!(new.0, MVal::Ref(_)) {
                    return Ok(());
                }
                let new = self.placed(Some(new)).expect("a value");
                let mut old = Vec::new();
                if index == len {
                    self.list_mut(target).push(new.clone());
                } else {
                    old.push(std::mem::replace(
                        &mut self.list_mut(target)[index],
                        new.clone(),
                    ));
                }
                let mut placing = self.placing(&new, ety);
                let mut taken = Vec::new();
                let result = self.each_copy(target, |v| match v {
                    DynValueMut::Array(mut a) if index == a.len() => {
                        a.push_moved(placing.next());
                        Ok(())
                    }
                    DynValueMut::Array(mut a) if index < a.len() => {
                        taken.push(a.set_moved(index, placing.next()));
                        Ok(())
                    }
                    _ => Err("not an array of that length".into()),
                });
                if !same {
                    self.bury(&old, taken);
                }
                result
            }
            "array.pop" | "array.shift" => {
                let items = self.list_mut(target);
                let old: Vec<MVal> = if items.is_empty() {
                    Vec::new()
                } else if kind == "array.pop" {
                    items.pop().into_iter().collect()
                } else {
                    vec![items.remove(0)]
                };
                let mut taken = Vec::new();
                let result = self.each_copy(target, |v| match v {
                    DynValueMut::Array(mut a) => {
                        taken.extend(if kind == "array.pop" {
                            a.take_last()
                        } else {
                            a.take_first()
                        });
                        Ok(())
                    }
                    _ => Err("not an array".into()),
                });
                self.bury(&old, taken);
                result
            }
            "array.reverse" => {
                self.list_mut(target).reverse();
                self.each_copy(target, |v| match v {
                    DynValueMut::Array(mut a) => {
                        a.reverse();
                        Ok(())
                    }
                    _ => Err("not an array".into()),
                })
            }
            _ => {
                // array.sort
                let desc = op["descending"].as_bool().unwrap_or(false);
                let items = self.list_mut(target);
                v8_sort(items, &|a, b| js_compare(a, b, desc));
                let want: Vec<MVal> = items.clone();
                let prim_of = |v: &DynValue| match v {
                    DynValue::Prim(_, p) => MVal::Prim(p.clone()),
                    _ => MVal::Ref(usize::MAX),
                };
                let sorted = self.each_copy(target, |v| match v {
                    DynValueMut::Array(mut a) => {
                        // A total order for Rust's sort (NaN last): the same
                        // result as the comparator whenever that one is
                        // consistent; checked against V8's below.
                        a.sort_by(|x, y| {
                            let (x, y) = (prim_of(x), prim_of(y));
                            let nan = |v: &MVal| matches!(v, MVal::Prim(PrimValue::Num(n)) if n.is_nan());
                            match (nan(&x), nan(&y)) {
                                (false, false) => js_compare(&x, &y, desc),
                                (a, b) => a.cmp(&b),
                            }
                        });
                        let got: Vec<MVal> = a.iter().map(prim_of).collect();
                        let same = got.len() == want.len()
                            && got.iter().zip(&want).all(|(g, w)| match (g, w) {
                                (MVal::Prim(g), MVal::Prim(w)) => {
                                    g == w || matches!((g, w), (PrimValue::Num(a), PrimValue::Num(b)) if a.is_nan() && b.is_nan())
                                }
                                _ => true,
                            });
                        if same {
                            Ok(())
                        } else {
                            Err("array.sort: V8's order (NaN in the array?) is not reproduced".into())
                        }
                    }
                    _ => Err("not an array".into()),
                });
                sorted
            }
        }
    }

    // --- model helpers ------------------------------------------------------

    fn field_of(&self, ty: TypeId, name: &str) -> Result<(usize, FieldType), String> {
        self.types
            .fields(ty)
            .iter()
            .enumerate()
            .find(|(_, f)| f.name == name)
            .map(|(i, f)| (i, f.ty))
            .ok_or_else(|| format!("no field {name:?} in type {}", self.types.get(ty).name))
    }

    fn struct_field(&self, id: NodeId, i: usize) -> Option<&MVal> {
        match &self.nodes[id] {
            MNode::Struct { fields, .. } => fields.get(i)?.as_ref(),
            _ => None,
        }
    }

    fn list_mut(&mut self, id: NodeId) -> &mut Vec<MVal> {
        match &mut self.nodes[id] {
            MNode::List { items, .. } => items,
            _ => unreachable!("a list"),
        }
    }

    fn list_position(&self, id: NodeId, v: &MVal) -> Option<usize> {
        match &self.nodes[id] {
            MNode::List { items, .. } => items.iter().position(|x| strict_eq(Some(x), Some(v))),
            _ => None,
        }
    }

    /// A materialized value being placed: notes an existing instance.
    fn placed(&mut self, v: Option<(MVal, bool)>) -> Option<MVal> {
        let (v, existing) = v?;
        if existing {
            self.step.reused += 1;
        }
        Some(v)
    }

    /// Roomcast's value for model value `v`, just placed in a slot declared
    /// `ty`: the instance itself with its refIds if it waits in the
    /// graveyard and this is now its only place (a move, not a copy), else
    /// a copy.
    fn placing(&mut self, v: &MVal, ty: FieldType) -> Placing {
        let copy = self.to_dyn(v, ty);
        let mut moved = None;
        if let MVal::Ref(id) = v {
            // Views forget a detached instance at the end of the tick (the
            // reference's keep it visible): back a step later in a view
            // scenario, it is a copy.
            let in_time = |step: usize| self.views.is_empty() || step == self.step_no;
            if self
                .graveyard
                .get(id)
                .is_some_and(|(_, step)| in_time(*step))
                && self.paths_to(*id).len() == 1
                && !self.subtree_reachable(*id, Some(*id))
            {
                let (mut m, _) = self.graveyard.remove(id).expect("checked above");
                if let MNode::Struct { ty: actual, .. } = &self.nodes[*id] {
                    m.set_type_tag((FieldType::Schema(*actual) != ty).then_some(actual.0));
                }
                moved = Some(m);
                // Counted as a copy by `placed`: it is not one.
                self.step.reused = self.step.reused.saturating_sub(1);
            }
        }
        Placing { copy, moved }
    }

    /// Keeps what Roomcast's state gave back for the model values an op
    /// removed (`removed`, in the same order as `taken`), for those that are
    /// stashed instances now out of the model's tree (see `graveyard`).
    fn bury(&mut self, removed: &[MVal], taken: Vec<Moved<DynValue>>) {
        if removed.len() != taken.len() {
            // An instance with several copies: not a move.
            return;
        }
        for (v, m) in removed.iter().zip(taken) {
            if let MVal::Ref(id) = v {
                let stashed = self.stash.iter().any(|(name, s)| {
                    matches!(s, MVal::Ref(x) if x == id) && !self.placed_often.contains(name)
                });
                if stashed && self.paths_to(*id).is_empty() {
                    self.graveyard.insert(*id, (m, self.step_no));
                }
            }
        }
    }

    /// Walks a vector path through the model (JavaScript's `resolvePath`).
    fn resolve(&self, path: &[Value]) -> Result<MVal, String> {
        let mut cur = MVal::Ref(self.root);
        for (n, seg) in path.iter().enumerate() {
            let walked = || Value::Array(path[..=n].to_vec());
            let MVal::Ref(id) = cur else {
                return Err(format!(
                    "path {}: cannot descend into a primitive",
                    walked()
                ));
            };
            let next = match &self.nodes[id] {
                MNode::Struct { ty, fields } => {
                    let name = key_string(seg)?;
                    let (i, _) = self
                        .field_of(*ty, &name)
                        .map_err(|e| format!("path {}: {e}", walked()))?;
                    fields[i].clone()
                }
                MNode::Map { entries, .. } => {
                    let key = key_string(seg)?;
                    entries
                        .iter()
                        .find(|(k, _)| *k == key)
                        .map(|(_, v)| v.clone())
                }
                MNode::List { kind, items, .. } => {
                    let i = index_of(seg)
                        .ok_or_else(|| format!("path {}: {seg} is not a position", walked()))?;
                    // `ArraySchema.at` counts negative positions from the end.
                    let i = if i < 0 && *kind == CollectionKind::Array {
                        i + items.len() as i64
                    } else {
                        i
                    };
                    let i = usize::try_from(i).unwrap_or(usize::MAX);
                    items.get(i).cloned()
                }
            };
            cur = next.ok_or_else(|| {
                format!(
                    "path {}: nothing there (the replay does not hold what the reference held)",
                    walked()
                )
            })?;
        }
        Ok(cur)
    }

    /// Builds a model value of declared type `ty` from its JSON form; the
    /// flag says whether it is an existing instance (`$path`, `$stash`).
    fn materialize(&mut self, v: &Value, ty: FieldType) -> Result<Option<(MVal, bool)>, String> {
        if v.is_null() {
            return Ok(None);
        }
        if let Some(p) = v.get("$path").and_then(Value::as_array) {
            let found = self.resolve(p)?;
            let existing = matches!(found, MVal::Ref(_));
            return Ok(Some((found, existing)));
        }
        if let Some(name) = v.get("$stash").and_then(Value::as_str) {
            let found = self
                .stash
                .get(name)
                .cloned()
                .ok_or_else(|| format!("unknown stash {name}"))?;
            let existing = matches!(found, MVal::Ref(_));
            return Ok(Some((found, existing)));
        }
        let node = match ty {
            FieldType::Primitive(p) => return Ok(Some((MVal::Prim(prim(p, v)?), false))),
            FieldType::Quantized(_) => {
                let n = v.as_f64().ok_or("a quantized value is a number")?;
                return Ok(Some((MVal::Prim(PrimValue::Num(n)), false)));
            }
            FieldType::Schema(_) => {
                let name = v["$new"]
                    .as_str()
                    .ok_or_else(|| format!("expected {{\"$new\": …}}, got {v}"))?;
                let actual = self
                    .types
                    .by_name(name)
                    .ok_or_else(|| format!("$new of unknown type {name}"))?;
                let n = self.types.fields(actual).len();
                let id = self.push_node(MNode::Struct {
                    ty: actual,
                    fields: vec![None; n],
                });
                if let Some(fields) = v["fields"].as_object() {
                    for fname in keys_in_order(fields) {
                        let (i, fty) = self.field_of(actual, fname)?;
                        let fv = self.materialize(&fields[fname], fty)?;
                        let fv = self.placed(fv);
                        if let MNode::Struct { fields, .. } = &mut self.nodes[id] {
                            fields[i] = fv;
                        }
                    }
                }
                return Ok(Some((MVal::Ref(id), false)));
            }
            FieldType::Collection(kind, elem) => (kind, elem),
        };
        let (kind, elem) = node;
        let ety = element_field_type(elem);
        let id = if kind == CollectionKind::Map {
            let map = v["$map"]
                .as_object()
                .ok_or_else(|| format!("expected {{\"$map\": …}}, got {v}"))?;
            let id = self.push_node(MNode::Map {
                elem,
                entries: Vec::new(),
            });
            for key in keys_in_order(map) {
                let e = self
                    .materialize(&map[key], ety)?
                    .ok_or("a null map entry (the reference throws)")?;
                let e = self.placed(Some(e)).expect("a value");
                if let MNode::Map { entries, .. } = &mut self.nodes[id] {
                    match entries.iter().position(|(k, _)| k == key) {
                        Some(p) => entries[p].1 = e,
                        None => entries.push((key.to_owned(), e)),
                    }
                }
            }
            id
        } else {
            let name = match kind {
                CollectionKind::Array => "$array",
                CollectionKind::Set => "$set",
                _ => "$collection",
            };
            let list = v[name]
                .as_array()
                .ok_or_else(|| format!("expected {{\"{name}\": […]}}, got {v}"))?;
            let id = self.push_node(MNode::List {
                kind,
                elem,
                items: Vec::new(),
            });
            for x in list {
                let e = self.materialize(x, ety)?;
                // `ArraySchema.push(undefined)` skips it; a set or a
                // collection throws.
                let Some(e) = e else {
                    if kind == CollectionKind::Array {
                        continue;
                    }
                    return Err(format!("a null element in {name}"));
                };
                if kind == CollectionKind::Set && self.list_position(id, &e.0).is_some() {
                    continue;
                }
                let e = self.placed(Some(e)).expect("a value");
                if let MNode::List { items, .. } = &mut self.nodes[id] {
                    items.push(e);
                }
            }
            id
        };
        Ok(Some((MVal::Ref(id), false)))
    }

    fn push_node(&mut self, n: MNode) -> NodeId {
        self.nodes.push(n);
        self.nodes.len() - 1
    }

    fn children(&self, id: NodeId) -> Vec<(Seg, &MVal)> {
        match &self.nodes[id] {
            MNode::Struct { fields, .. } => fields
                .iter()
                .enumerate()
                .filter_map(|(i, v)| v.as_ref().map(|v| (Seg::Field(i), v)))
                .collect(),
            MNode::Map { entries, .. } => entries
                .iter()
                .map(|(k, v)| (Seg::Key(k.clone()), v))
                .collect(),
            MNode::List { items, .. } => items
                .iter()
                .enumerate()
                .map(|(i, v)| (Seg::Pos(i), v))
                .collect(),
        }
    }

    /// Whether an instance reachable from the root is held by two slots.
    fn has_shared(&self) -> bool {
        let mut incoming = vec![0u32; self.nodes.len()];
        let mut seen = vec![false; self.nodes.len()];
        let mut stack = vec![self.root];
        seen[self.root] = true;
        while let Some(id) = stack.pop() {
            for (_, v) in self.children(id) {
                if let MVal::Ref(c) = v {
                    incoming[*c] += 1;
                    if incoming[*c] > 1 {
                        return true;
                    }
                    if !seen[*c] {
                        seen[*c] = true;
                        stack.push(*c);
                    }
                }
            }
        }
        false
    }

    /// Whether an instance of the model subtree of `id` (`id` itself but
    /// when it is `skip`) is reachable from the root without going through
    /// `skip`.
    fn subtree_reachable(&self, id: NodeId, skip: Option<NodeId>) -> bool {
        let walk = |from: NodeId, avoid: Option<NodeId>| {
            let mut seen = vec![false; self.nodes.len()];
            let mut stack = vec![from];
            seen[from] = true;
            while let Some(n) = stack.pop() {
                for (_, v) in self.children(n) {
                    if let MVal::Ref(c) = v {
                        if !seen[*c] && Some(*c) != avoid {
                            seen[*c] = true;
                            stack.push(*c);
                        }
                    }
                }
            }
            seen
        };
        let reach = walk(self.root, skip);
        let below = walk(id, None);
        below
            .iter()
            .enumerate()
            .any(|(n, &b)| b && reach[n] && Some(n) != skip)
    }

    /// Every path from the root to `target` (one per copy in Roomcast's
    /// state), at most 256.
    fn paths_to(&self, target: NodeId) -> Vec<Vec<Seg>> {
        let mut out = Vec::new();
        let mut path = Vec::new();
        let mut on_stack = vec![false; self.nodes.len()];
        self.collect_paths(self.root, target, &mut path, &mut on_stack, &mut out);
        out
    }

    fn collect_paths(
        &self,
        id: NodeId,
        target: NodeId,
        path: &mut Vec<Seg>,
        on_stack: &mut [bool],
        out: &mut Vec<Vec<Seg>>,
    ) {
        if out.len() >= 256 {
            return;
        }
        if id == target {
            out.push(path.clone());
            return;
        }
        if on_stack[id] {
            return;
        }
        on_stack[id] = true;
        for (seg, v) in self.children(id) {
            if let MVal::Ref(c) = v {
                path.push(seg);
                self.collect_paths(*c, target, path, on_stack, out);
                path.pop();
            }
        }
        on_stack[id] = false;
    }

    /// Calls `f` on every copy of model instance `target` in Roomcast's state.
    fn each_copy(
        &mut self,
        target: NodeId,
        mut f: impl FnMut(DynValueMut<'_>) -> Result<(), String>,
    ) -> Result<(), String> {
        let paths = self.paths_to(target);
        if paths.is_empty() {
            // A detached instance (a stash): nothing in Roomcast's state.
            return Ok(());
        }
        for p in paths {
            let mut result = Err(format!("path {p:?} not in Roomcast's state"));
            let mut root = DynValueMut::Struct(self.encoder.root_mut());
            if p.is_empty() {
                result = f(root);
            } else {
                walk_mut(&mut root, &p, &mut |v| result = f(v));
            }
            result.map_err(|e| format!("Roomcast's state at {p:?}: {e}"))?;
        }
        Ok(())
    }

    /// Roomcast's value for a model value placed in a slot declared `ty`
    /// (a struct gets the TYPE_ID of its class when that is not `ty`).
    fn to_dyn(&self, v: &MVal, ty: FieldType) -> DynValue {
        match (v, ty) {
            (MVal::Prim(p), FieldType::Primitive(w)) => DynValue::Prim(w, p.clone()),
            (MVal::Prim(p), FieldType::Quantized(q)) => {
                DynValue::quantized(q, if let PrimValue::Num(n) = p { *n } else { 0.0 })
            }
            (MVal::Prim(p), _) => DynValue::Prim(Primitive::String, p.clone()),
            (MVal::Ref(id), _) => match &self.nodes[*id] {
                MNode::Struct { ty: actual, fields } => {
                    let mut s = DynStruct::new(&self.types, *actual);
                    if FieldType::Schema(*actual) != ty {
                        s.set_type_tag(Some(actual.0));
                    }
                    for (i, f) in self.types.fields(*actual).iter().enumerate() {
                        s.set(i, fields[i].as_ref().map(|v| self.to_dyn(v, f.ty)));
                    }
                    DynValue::Struct(Box::new(s))
                }
                MNode::Map { elem, entries } => {
                    let ety = element_field_type(*elem);
                    let mut c = empty_value(FieldType::Collection(CollectionKind::Map, *elem))
                        .expect("a collection");
                    if let DynValue::Map(m) = &mut c {
                        for (k, v) in entries {
                            m.insert(k, self.to_dyn(v, ety));
                        }
                    }
                    c
                }
                MNode::List { kind, elem, items } => {
                    let ety = element_field_type(*elem);
                    let mut c =
                        empty_value(FieldType::Collection(*kind, *elem)).expect("a collection");
                    for v in items {
                        let v = self.to_dyn(v, ety);
                        match &mut c {
                            DynValue::Array(a) => a.push(v),
                            DynValue::Set(s) => {
                                s.add(v);
                            }
                            DynValue::Collection(s) => {
                                s.add(v);
                            }
                            _ => {}
                        }
                    }
                    c
                }
            },
        }
    }
}

/// The stashes that the ops of `vector` place more than once (`$stash`
/// values).
fn stashes_placed_often(vector: &Value) -> Vec<String> {
    fn scan(v: &Value, seen: &mut BTreeMap<String, usize>) {
        match v {
            Value::Object(o) => {
                if let Some(name) = o.get("$stash").and_then(Value::as_str) {
                    *seen.entry(name.to_owned()).or_default() += 1;
                }
                o.values().for_each(|x| scan(x, seen));
            }
            Value::Array(a) => a.iter().for_each(|x| scan(x, seen)),
            _ => {}
        }
    }
    let mut seen = BTreeMap::new();
    for step in vector["steps"].as_array().into_iter().flatten() {
        scan(&step["ops"], &mut seen);
    }
    seen.into_iter()
        .filter(|&(_, n)| n > 1)
        .map(|(name, _)| name)
        .collect()
}

fn elem_wire(e: ElementType) -> Option<Primitive> {
    match e {
        ElementType::Primitive(p) => Some(p),
        ElementType::Schema(_) => None,
    }
}

fn key_string(v: &Value) -> Result<String, String> {
    match v {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) => Ok(n.to_string()),
        other => Err(format!("bad key {other}")),
    }
}

fn index_of(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

/// `start` / `deleteCount` as `ArraySchema.splice` and then JavaScript's
/// `Array.prototype.splice` use them on an array of `len` elements.
fn splice_args(op: &Value, len: usize) -> Result<(usize, usize), String> {
    let start = op["start"]
        .as_f64()
        .ok_or("array.splice without a numeric `start`")?
        .trunc();
    let len_f = len as f64;
    let actual_start = if start < 0.0 {
        (len_f + start).max(0.0)
    } else {
        start.min(len_f)
    } as usize;
    // ArraySchema.splice: no deleteCount -> to the end; nothing to delete
    // when `start` is not before the end.
    let count = if len_f > start {
        op["deleteCount"].as_f64().map_or(len_f - start, f64::trunc)
    } else {
        0.0
    };
    let count = count.clamp(0.0, (len - actual_start) as f64) as usize;
    Ok((actual_start, count))
}

fn walk_mut(v: &mut DynValueMut<'_>, path: &[Seg], f: &mut dyn FnMut(DynValueMut<'_>)) {
    let Some((seg, rest)) = path.split_first() else {
        return;
    };
    let child = match (v, seg) {
        (DynValueMut::Struct(s), Seg::Field(i)) => s.child(*i),
        (DynValueMut::Map(m), Seg::Key(k)) => m.child(k),
        (DynValueMut::Array(a), Seg::Pos(i)) => a.child(*i),
        (DynValueMut::Set(x), Seg::Pos(i)) => x.child(*i),
        (DynValueMut::Collection(x), Seg::Pos(i)) => x.child(*i),
        _ => None,
    };
    let Some(mut child) = child else {
        return;
    };
    if rest.is_empty() {
        f(child);
    } else {
        walk_mut(&mut child, rest, f);
    }
}

fn walk_ref_ids(types: &TypeRegistry, s: &DynStruct, path: &str, out: &mut BTreeMap<String, u32>) {
    for (i, f) in types.fields(s.type_id()).iter().enumerate() {
        if let Some(v) = s.get(i) {
            walk_value_ref_ids(types, v, &join(path, &f.name), out);
        }
    }
}

fn walk_value_ref_ids(
    types: &TypeRegistry,
    v: &DynValue,
    path: &str,
    out: &mut BTreeMap<String, u32>,
) {
    let Some(id) = v.__ref_id(&()) else {
        return;
    };
    out.insert(path.to_owned(), id);
    match v {
        DynValue::Struct(s) => walk_ref_ids(types, s, path, out),
        DynValue::Map(m) => {
            for (k, x) in m.iter() {
                walk_value_ref_ids(types, x, &join(path, k), out);
            }
        }
        DynValue::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                walk_value_ref_ids(types, x, &join(path, &i.to_string()), out);
            }
        }
        DynValue::Set(a) => {
            for (i, x) in a.iter().enumerate() {
                walk_value_ref_ids(types, x, &join(path, &i.to_string()), out);
            }
        }
        DynValue::Collection(a) => {
            for (i, x) in a.iter().enumerate() {
                walk_value_ref_ids(types, x, &join(path, &i.to_string()), out);
            }
        }
        DynValue::Prim(..) | DynValue::Quantized(..) => {}
    }
}

fn join(path: &str, seg: &str) -> String {
    if path.is_empty() {
        seg.to_owned()
    } else {
        format!("{path}/{seg}")
    }
}

fn element_field_type(e: ElementType) -> FieldType {
    match e {
        ElementType::Primitive(p) => FieldType::Primitive(p),
        ElementType::Schema(t) => FieldType::Schema(t),
    }
}

fn prim(p: Primitive, v: &Value) -> Result<PrimValue, String> {
    if let Some(o) = v.as_object() {
        if let Some(n) = o.get("$num").and_then(Value::as_str) {
            return Ok(PrimValue::Num(match n {
                "NaN" => f64::NAN,
                "Infinity" => f64::INFINITY,
                "-Infinity" => f64::NEG_INFINITY,
                "-0" => -0.0,
                other => return Err(format!("bad $num {other}")),
            }));
        }
        if let Some(b) = o.get("$bigint").and_then(Value::as_str) {
            return match p {
                Primitive::BigUint64 => b.parse().map(PrimValue::U64),
                _ => b.parse().map(PrimValue::I64),
            }
            .map_err(|e| format!("bad $bigint {b}: {e}"));
        }
        if let Some(r) = o.get("$repeat").and_then(Value::as_str) {
            let times = o["times"].as_u64().ok_or("$repeat without `times`")? as usize;
            return Ok(PrimValue::Str(r.repeat(times)));
        }
        return Err(format!("bad primitive value {v}"));
    }
    match v {
        Value::String(s) => Ok(PrimValue::Str(s.clone())),
        Value::Bool(b) => Ok(PrimValue::Bool(*b)),
        Value::Number(n) => n
            .as_f64()
            .map(PrimValue::Num)
            .ok_or_else(|| format!("bad number {n}")),
        other => Err(format!("bad primitive value {other}")),
    }
}

fn apply_view(target: &mut dyn ViewTarget, view: ViewId, show: bool, tag: i64) {
    if show {
        target.show_to_tagged(view, tag);
    } else {
        target.hide_from_tagged(view, tag);
    }
}

// --- checking a vector against Roomcast's encoder ------------------------------

/// How a step listed in `tests/fixtures/encoder-known-gaps.txt` is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gap {
    /// Bytes differ on purpose; decoded states are still checked (and, in
    /// StateView vectors, the view full state's bytes).
    Bytes,
    /// StateView steps where the reference's view patches disagree with its
    /// own view full state: checked by state (a client following our view
    /// patches holds what a fresh client decoding our view full holds).
    State,
}

/// The known gaps, by `(vector file stem, step index)`.
///
/// # Panics
///
/// On a malformed gaps file.
#[must_use]
pub fn known_gaps() -> BTreeMap<(String, usize), Gap> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/encoder-known-gaps.txt");
    let text = std::fs::read_to_string(path).expect("known gaps file");
    text.lines()
        .map(|l| l.split('#').next().unwrap_or_default().trim())
        .filter(|l| !l.is_empty())
        .map(|l| {
            let mut parts = l.split_whitespace();
            let file = parts.next().expect("file").to_owned();
            let step = parts.next().expect("step").parse().expect("step number");
            let kind = match parts.next() {
                Some("bytes") => Gap::Bytes,
                Some("state") => Gap::State,
                other => panic!("bad gap kind {other:?}"),
            };
            ((file, step), kind)
        })
        .collect()
}

/// Which bytes of a step differ.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Part {
    /// `Reflection.encode` (the handshake).
    Reflection,
    /// The shared patch (`encode()`).
    Patch,
    /// The full state (`encodeAll()`).
    Full,
    /// `encodeAll()` taken before the step's patch.
    FullBeforePatch,
    /// One view's patch (shared part included).
    ViewPatch(String),
    /// One view's full state (shared part included).
    ViewFull(String),
}

impl Part {
    /// The part without the view's name.
    #[must_use]
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Reflection => "reflection",
            Self::Patch => "patch",
            Self::Full => "full",
            Self::FullBeforePatch => "fullBeforePatch",
            Self::ViewPatch(_) => "view patch",
            Self::ViewFull(_) => "view full",
        }
    }
}

/// A byte difference.
#[derive(Debug, Clone)]
pub struct ByteDiff {
    /// Which bytes.
    pub part: Part,
    /// Roomcast's bytes, hex.
    pub ours: String,
    /// The reference's, hex.
    pub want: String,
    /// Offset of the first differing byte.
    pub offset: usize,
}

impl ByteDiff {
    fn new(part: Part, ours: &[u8], want: &str) -> Option<Self> {
        let ours = to_hex(ours);
        if ours == want {
            return None;
        }
        let offset = ours
            .as_bytes()
            .chunks(2)
            .zip(want.as_bytes().chunks(2))
            .position(|(a, b)| a != b)
            .unwrap_or(ours.len().min(want.len()) / 2);
        Some(Self {
            part,
            ours,
            want: want.to_owned(),
            offset,
        })
    }
}

/// What [`check_vector`] found at one step.
#[derive(Debug, Clone)]
pub struct StepReport {
    /// Step index.
    pub step: usize,
    /// Step name.
    pub name: String,
    /// The step's ops (without [`KEY_ORDER`] records).
    pub ops: Vec<Value>,
    /// Why the step's bytes cannot be the reference's (checked by state).
    pub one_parent: Option<OneParent>,
    /// The known gap of the step.
    pub gap: Option<Gap>,
    /// Where the reference disagrees with itself at this step: its patch
    /// stream does not reproduce its full state (`divergent`; in StateView
    /// vectors, the views whose client following the reference's view
    /// patches does not hold what the reference's view full state gives).
    /// Roomcast's client ends where a fresh client would, so those bytes are
    /// not compared (as with [`Gap::State`]).
    pub reference_inconsistent: Vec<String>,
    /// Byte strings compared (not excused by `one_parent` or `gap`).
    pub compared: usize,
    /// Differences among the compared byte strings.
    pub diffs: Vec<ByteDiff>,
    /// Differences in excused byte strings (for information).
    pub excused: Vec<ByteDiff>,
    /// Decoded-state mismatches: what a real decoder holds after our bytes
    /// is not what it holds after the reference's (or our patch stream and
    /// our full state disagree), a decoder warned or threw.
    pub state_errors: Vec<String>,
    /// Mismatches between a view's patch stream and its full state where
    /// the reference's client is in the very same state (its follower holds
    /// what ours holds, its full state is ours): the reference's own
    /// inconsistency, which no byte-identical stream can avoid (e.g. its
    /// decoder comparing `-0 === 0`). Reported, not counted.
    pub inherited: Vec<String>,
    /// Differences that are exactly the documented V8 (view patches,
    /// `tests/fixtures/view-differences.md`) or P1 (the shared patch,
    /// `patch-differences.md`): the reference's bytes hold blocks for
    /// refIds its own client does not know (its decoder warns and skips
    /// them), and without those blocks they are ours. Compared, reported
    /// apart, not counted as differences.
    pub documented: Vec<ByteDiff>,
}

impl StepReport {
    /// The op kinds of the step, sorted, without repeats.
    #[must_use]
    pub fn op_kinds(&self) -> Vec<String> {
        let mut kinds: Vec<String> = self
            .ops
            .iter()
            .filter_map(|o| o["op"].as_str().map(str::to_owned))
            .collect();
        kinds.sort();
        kinds.dedup();
        kinds
    }
}

/// What [`check_vector`] found in one vector.
#[derive(Debug, Clone)]
pub struct VectorReport {
    /// File stem.
    pub name: String,
    /// Whether it is a StateView vector.
    pub views: bool,
    /// Reflection bytes or type ids that differ.
    pub reflection: Vec<String>,
    /// One report per replayed step.
    pub steps: Vec<StepReport>,
    /// Why the vector could not be replayed to its end (a malformed or
    /// unsupported op, a replay that does not reach the reference's state,
    /// a panic): a harness error, not an encoder one.
    pub harness_error: Option<String>,
}

/// Replays a vector with Roomcast's encoder and compares, step by step, the
/// bytes (patch, full, view parts; reflection) with the reference's and
/// what the real 5.x decoder (built from Roomcast's Reflection) holds after
/// them with the vector's state. Steps listed in `gaps`, and steps whose
/// bytes cannot be the reference's because Rust gives an instance one
/// parent ([`OneParent`]), are checked by state only.
///
/// Before comparing, the replay itself is checked: Roomcast's server state
/// must equal the model's, and the model's the vector's (`state`,
/// `serverState`, `fullState`), or the step is a harness error.
pub fn check_vector(
    node: &mut NodeDecoder,
    name: &str,
    vector: &Value,
    gaps: &BTreeMap<(String, usize), Gap>,
) -> VectorReport {
    let mut report = VectorReport {
        name: name.to_owned(),
        views: vector["views"].as_array().is_some_and(|a| !a.is_empty()),
        reflection: Vec::new(),
        steps: Vec::new(),
        harness_error: None,
    };
    let mut sessions = Vec::new();
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        check_steps(node, name, vector, gaps, &mut report, &mut sessions)
    }));
    match outcome {
        Ok(Ok(())) => {}
        Ok(Err(e)) => report.harness_error = Some(e),
        Err(panic) => {
            let msg = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                .unwrap_or_default();
            report.harness_error = Some(format!("panic at step {}: {msg}", report.steps.len()));
        }
    }
    for s in sessions {
        node.close(s);
    }
    report
}

fn check_steps(
    node: &mut NodeDecoder,
    name: &str,
    vector: &Value,
    gaps: &BTreeMap<(String, usize), Gap>,
    report: &mut VectorReport,
    sessions: &mut Vec<crate::node::Session>,
) -> Result<(), String> {
    let mut replay = Replay::try_new(vector)?;
    let reflection = encode_reflection(&replay.types, Dialect::Modern);
    let want = vector["reflection"].as_str().unwrap_or_default();
    if let Some(d) = ByteDiff::new(Part::Reflection, &reflection, want) {
        report.reflection.push(format!(
            "reflection differs at byte {}: ours {} want {}",
            d.offset, d.ours, d.want
        ));
    }
    for (ty, id) in vector["typeIds"].as_object().into_iter().flatten() {
        let ours = replay.types.by_name(ty).map(|t| u64::from(t.0));
        if ours != id.as_u64() {
            report
                .reflection
                .push(format!("type id of {ty}: ours {ours:?} want {id}"));
        }
    }
    let views = replay.views.clone();
    let is_view = !views.is_empty();
    for _ in 0..views.len().max(1) {
        sessions.push(
            node.try_open(&reflection, SchemaVersion::V5)
                .map_err(|e| format!("the 5.x decoder refuses Roomcast's Reflection: {e}"))?,
        );
    }
    // Clients of the reference's own view patches (its Reflection).
    let reference_reflection = crate::node::from_hex(want)?;
    let first_reference = sessions.len();
    // One per view, and one of the shared patches alone.
    for _ in 0..=views.len() {
        sessions.push(
            node.try_open(&reference_reflection, SchemaVersion::V5)
                .map_err(|e| format!("the 5.x decoder refuses the vector's Reflection: {e}"))?,
        );
    }
    let shared_reference = first_reference + views.len();
    let steps = vector["steps"].as_array().ok_or("no steps")?;
    for (i, step) in steps.iter().enumerate() {
        replay.begin_step();
        let ops: Vec<Value> = step["ops"].as_array().cloned().unwrap_or_default();
        for (j, op) in ops.iter().enumerate() {
            replay
                .try_apply(op)
                .map_err(|e| format!("step {i} op {j} {}: {e}", strip_key_order(op)))?;
        }
        let before = step
            .get("fullBeforePatch")
            .and_then(Value::as_str)
            .map(|_| replay.encoder.encode_all().to_vec());
        let patch = replay.encoder.encode_patch().to_vec();
        let view_patches: Vec<Vec<u8>> = views
            .iter()
            .map(|(_, id)| [patch.as_slice(), replay.encoder.view_patch(*id)].concat())
            .collect();
        let full = replay.encoder.encode_all().to_vec();
        let view_fulls: Vec<Vec<u8>> = views
            .iter()
            .map(|(_, id)| [full.as_slice(), replay.encoder.encode_all_view(*id)].concat())
            .collect();
        if std::env::var("ROOMCAST_REPLAY_TRACE").is_ok_and(|t| t == format!("{name}:{i}")) {
            // Our bytes of one step, to compare with the vector's by hand.
            eprintln!("{name}[{i}] patch {}", to_hex(&patch));
            for ((view, _), (vp, vf)) in views.iter().zip(view_patches.iter().zip(&view_fulls)) {
                eprintln!(
                    "  view {view} patch {}\n  view {view} full {}",
                    to_hex(vp),
                    to_hex(vf)
                );
            }
        }
        let one_parent = replay.end_step(step.get("refIds"));
        let gap = gaps.get(&(name.to_owned(), i)).copied();
        self_check(&replay, step, is_view).map_err(|e| format!("step {i}: {e}"))?;

        let mut sr = StepReport {
            step: i,
            name: step["name"].as_str().unwrap_or_default().to_owned(),
            ops: ops.iter().map(strip_key_order).collect(),
            one_parent,
            gap,
            reference_inconsistent: Vec::new(),
            compared: 0,
            diffs: Vec::new(),
            excused: Vec::new(),
            state_errors: Vec::new(),
            inherited: Vec::new(),
            documented: Vec::new(),
        };
        // `consistent`: false where the reference disagrees with itself;
        // there a difference is excused, an equality still counts.
        let compare =
            |sr: &mut StepReport, part: Part, ours: &[u8], want: &Value, counted, consistent| {
                let d = ByteDiff::new(part, ours, want.as_str().unwrap_or_default());
                if counted && (consistent || d.is_none()) {
                    sr.compared += 1;
                    sr.diffs.extend(d);
                } else {
                    sr.excused.extend(d);
                }
            };
        let free = one_parent.is_none();
        // What the reference's client of each view holds where that is not
        // the reference's view full state.
        let mut ref_followers: Vec<Option<Value>> = vec![None; views.len()];
        // The refIds the reference's client of each view did not know in
        // the reference's view patch (its decoder's warnings).
        let mut unknown_to_reference: Vec<Vec<u64>> = vec![Vec::new(); views.len()];
        // The reference's shared patch on a client of its own: the refIds
        // its decoder did not know, and the state it ends in.
        let shared_patch = step["patch"].as_str().unwrap_or_default();
        let (shared_streamed, unknown_shared) = if shared_patch.is_empty() {
            (node.state(&sessions[shared_reference]), Vec::new())
        } else {
            match node.decode(
                &sessions[shared_reference],
                &crate::node::from_hex(shared_patch)?,
            ) {
                Ok(d) => {
                    let unknown = unknown_ref_ids(&d.warnings);
                    (Ok(d.state), unknown)
                }
                Err(e) => (Err(e), Vec::new()),
            }
        };
        if is_view {
            // Does the reference's own view stream hold its view full state?
            for (k, (view, _)) in views.iter().enumerate() {
                let patch = step["viewPatches"][view].as_str().unwrap_or_default();
                let session = &sessions[first_reference + k];
                let streamed = if patch.is_empty() {
                    node.state(session)
                } else {
                    node.decode(session, &crate::node::from_hex(patch)?)
                        .map(|d| {
                            unknown_to_reference[k] = unknown_ref_ids(&d.warnings);
                            d.state
                        })
                };
                let streamed = streamed.ok().map(|s| unordered(&canon(&s)));
                let consistent =
                    streamed.as_ref() == Some(&unordered(&canon(&step["viewStates"][view])));
                if !consistent {
                    sr.reference_inconsistent.push(view.clone());
                    ref_followers[k] = streamed;
                }
            }
            // Does the reference's shared patch stream hold its shared
            // full state? (Where it does not, its decoder dropped what the
            // bytes said: P2 of `patch-differences.md`.)
            let reference_full = crate::node::from_hex(step["full"].as_str().unwrap_or_default())?;
            let joined =
                decode_fresh(node, &reference_reflection, &reference_full).map(|d| d.state);
            let shared_consistent = matches!((&shared_streamed, &joined),
                (Ok(a), Ok(b)) if unordered(&canon(a)) == unordered(&canon(b)));
            if !shared_consistent {
                sr.reference_inconsistent
                    .push("shared patch stream".to_owned());
            }
            compare_or_documented(
                &mut sr,
                Part::Patch,
                (&patch, &step["patch"]),
                (free, shared_consistent),
                &unknown_shared,
            );
            compare(&mut sr, Part::Full, &full, &step["full"], free, true);
            for (k, (view, _)) in views.iter().enumerate() {
                let consistent = !sr.reference_inconsistent.contains(view);
                compare_or_documented(
                    &mut sr,
                    Part::ViewPatch(view.clone()),
                    (&view_patches[k], &step["viewPatches"][view]),
                    (free && gap.is_none(), consistent),
                    &unknown_to_reference[k],
                );
                compare(
                    &mut sr,
                    Part::ViewFull(view.clone()),
                    &view_fulls[k],
                    &step["viewFulls"][view],
                    free && gap != Some(Gap::State),
                    consistent,
                );
            }
        } else {
            if step.get("divergent").and_then(Value::as_bool) == Some(true) {
                sr.reference_inconsistent.push("patch stream".to_owned());
            }
            let counted = free && gap.is_none();
            let consistent = sr.reference_inconsistent.is_empty();
            compare_or_documented(
                &mut sr,
                Part::Patch,
                (&patch, &step["patch"]),
                (counted, consistent),
                &unknown_shared,
            );
            compare(
                &mut sr,
                Part::Full,
                &full,
                &step["full"],
                counted,
                consistent,
            );
            if let Some(before) = &before {
                compare(
                    &mut sr,
                    Part::FullBeforePatch,
                    before,
                    &step["fullBeforePatch"],
                    counted,
                    consistent,
                );
            }
        }

        if is_view {
            for (k, (view, _)) in views.iter().enumerate() {
                // A copy placed for an instance the reference kept is not
                // shown to the views that saw the instance (the reference
                // keeps a view's visibility on the instance itself): in
                // one-parent steps a view's client is held to our own full
                // state only.
                let check_want = gap != Some(Gap::State)
                    && one_parent.is_none()
                    && !sr.reference_inconsistent.contains(view);
                check_view_states(
                    node,
                    &reflection,
                    &sessions[k],
                    (&view_patches[k], &view_fulls[k]),
                    (
                        &step["viewStates"][view],
                        check_want,
                        ref_followers[k].as_ref(),
                    ),
                    &format!("view {view}"),
                    (&mut sr.state_errors, &mut sr.inherited),
                );
            }
        } else {
            let divergent = step.get("divergent").and_then(Value::as_bool) == Some(true);
            let expected = if divergent {
                &step["fullState"]
            } else {
                &step["state"]
            };
            let streamed = if patch.is_empty() {
                node.state(&sessions[0]).map(|state| crate::node::Decoded {
                    state,
                    warnings: Vec::new(),
                })
            } else {
                node.decode(&sessions[0], &patch)
            };
            sr.state_errors
                .extend(state_error("patch stream", &streamed, expected));
            let joined = decode_fresh(node, &reflection, &full);
            sr.state_errors
                .extend(state_error("full state", &joined, expected));
        }
        report.steps.push(sr);
    }
    Ok(())
}

/// Roomcast's state must follow the model, and the model must be where the
/// reference was.
fn self_check(replay: &Replay, step: &Value, is_view: bool) -> Result<(), String> {
    let state = replay.encoder.state();
    let ours = (
        canon(&dyn_server_json(&replay.types, state)),
        canon(&dyn_state_json(&replay.types, state)),
    );
    let model = (
        canon(&replay.model_state(false)),
        canon(&replay.model_state(true)),
    );
    if ours != model {
        return Err(format!(
            "Roomcast's state does not follow the replayed ops\n  ours:  {}\n  model: {}",
            ours.0, model.0
        ));
    }
    let divergent = step.get("divergent").and_then(Value::as_bool) == Some(true);
    let (got, want) = if is_view {
        (&model.0, &step["state"])
    } else if let Some(server) = step.get("serverState") {
        (&model.0, server)
    } else if divergent {
        (&model.1, &step["fullState"])
    } else {
        (&model.1, &step["state"])
    };
    if *got != canon(want) {
        return Err(format!(
            "the replay does not reach the reference's state\n  replay:    {got}\n  reference: {}",
            canon(want)
        ));
    }
    Ok(())
}

fn decode_fresh(
    node: &mut NodeDecoder,
    reflection: &[u8],
    bytes: &[u8],
) -> Result<crate::node::Decoded, String> {
    let joiner = node.try_open(reflection, SchemaVersion::V5)?;
    let got = node.decode(&joiner, bytes);
    node.close(joiner);
    got
}

fn state_error(
    what: &str,
    got: &Result<crate::node::Decoded, String>,
    expected: &Value,
) -> Option<String> {
    match got {
        Err(e) => Some(format!("{what}: the decoder threw: {e}")),
        Ok(d) if canon(&d.state) != canon(expected) => Some(format!(
            "{what}: decoded {}\n    expected {}",
            canon(&d.state),
            canon(expected)
        )),
        Ok(d) if !d.warnings.is_empty() => {
            Some(format!("{what}: decoder warnings {:?}", d.warnings))
        }
        Ok(_) => None,
    }
}

/// One view's client: the stream (our view patches) must hold what a fresh
/// client decoding our view full holds, and that what the reference's view
/// full gives (`want`, unless excused). Filtered collections of structs are
/// compared as multisets (their order is not synchronized).
fn check_view_states(
    node: &mut NodeDecoder,
    reflection: &[u8],
    stream: &crate::node::Session,
    (patch, full): (&[u8], &[u8]),
    (want, check_want, reference_follower): (&Value, bool, Option<&Value>),
    what: &str,
    (errors, inherited): (&mut Vec<String>, &mut Vec<String>),
) {
    let joined = decode_fresh(node, reflection, full);
    let streamed = if patch.is_empty() {
        node.state(stream).map(|state| crate::node::Decoded {
            state,
            warnings: Vec::new(),
        })
    } else {
        node.decode(stream, patch)
    };
    let joined = match joined {
        Ok(j) => j,
        Err(e) => {
            errors.push(format!("{what} full state: the decoder threw: {e}"));
            return;
        }
    };
    if !joined.warnings.is_empty() {
        errors.push(format!(
            "{what} full state: decoder warnings {:?}",
            joined.warnings
        ));
    }
    let joined = unordered(&canon(&joined.state));
    match streamed {
        Err(e) => errors.push(format!("{what} patch stream: the decoder threw: {e}")),
        Ok(s) => {
            if !s.warnings.is_empty() {
                errors.push(format!(
                    "{what} patch stream: decoder warnings {:?}",
                    s.warnings
                ));
            }
            let s = unordered(&canon(&s.state));
            if s != joined {
                let msg = format!("{what}: patch stream {s}\n    != our full state {joined}");
                // Where the reference's client is: the same follower state
                // and the same full state.
                if reference_follower == Some(&s) && joined == unordered(&canon(want)) {
                    inherited.push(msg);
                } else {
                    errors.push(msg);
                }
            }
        }
    }
    if check_want && joined != unordered(&canon(want)) {
        errors.push(format!(
            "{what}: our full state {joined}\n    != the reference's {}",
            unordered(&canon(want))
        ));
    }
}

/// `v` with every array of objects sorted (multiset comparison).
/// Compares our bytes of `part` with the reference's (`ours`, `want`),
/// as `compare` in `check_steps` does, but a difference that is only
/// blocks for refIds the reference's own client did not know (`unknown`:
/// V8 in a view patch, P1 in the shared patch) is documented, not counted.
fn compare_or_documented(
    sr: &mut StepReport,
    part: Part,
    (ours, want): (&[u8], &Value),
    (counted, consistent): (bool, bool),
    unknown: &[u64],
) {
    let want = want.as_str().unwrap_or_default();
    let Some(d) = ByteDiff::new(part, ours, want) else {
        sr.compared += usize::from(counted);
        return;
    };
    if counted && consistent && only_unknown_blocks_differ(ours, want, unknown) {
        sr.compared += 1;
        sr.documented.push(d);
    } else if counted && consistent {
        sr.compared += 1;
        sr.diffs.push(d);
    } else {
        sr.excused.push(d);
    }
}

/// The refIds a reference decoder reported as unknown (its `"refId" not
/// found: N` errors).
fn unknown_ref_ids(warnings: &[String]) -> Vec<u64> {
    warnings
        .iter()
        .filter_map(|w| {
            let rest = w.split("\"refId\" not found: ").nth(1)?;
            let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
            digits.parse().ok()
        })
        .collect()
}

/// Whether `want` (hex) is `ours` plus blocks addressed to `unknown` refIds
/// and nothing else: each such block is cut where the reference's decoder
/// stops skipping it, at the next SWITCH_TO_STRUCTURE (V8).
fn only_unknown_blocks_differ(ours: &[u8], want: &str, unknown: &[u64]) -> bool {
    let Ok(mut want) = crate::node::from_hex(want) else {
        return false;
    };
    if unknown.is_empty() {
        return false;
    }
    for &id in unknown {
        let mut head = vec![SWITCH_TO_STRUCTURE];
        encode_varint(&mut head, u32::try_from(id).unwrap_or(u32::MAX));
        // (The first such switch; a false match inside a value would have
        // to leave exactly `ours`.)
        let Some(start) = (0..want.len()).find(|&i| want[i..].starts_with(&head)) else {
            continue;
        };
        let end = want[start + 1..]
            .iter()
            .position(|&b| b == SWITCH_TO_STRUCTURE)
            .map_or(want.len(), |p| start + 1 + p);
        want.drain(start..end);
    }
    want == ours
}

fn unordered(v: &Value) -> Value {
    match v {
        Value::Array(a) => {
            let mut items: Vec<Value> = a.iter().map(unordered).collect();
            if items.iter().all(Value::is_object) {
                items.sort_by_cached_key(ToString::to_string);
            }
            Value::Array(items)
        }
        Value::Object(o) => {
            Value::Object(o.iter().map(|(k, v)| (k.clone(), unordered(v))).collect())
        }
        _ => v.clone(),
    }
}

/// A one-line summary of a step's ops (for reports).
#[must_use]
pub fn describe_ops(ops: &[Value]) -> String {
    let mut s = String::new();
    for (i, op) in ops.iter().enumerate() {
        if i > 0 {
            s.push_str(", ");
        }
        let _ = write!(s, "{op}");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_order_of_ops_is_javascripts() {
        let v = parse_vector(
            r#"{"steps": [{"initial": {"b": 1, "a": 2}, "ops": [{"value": {"$map": {"z": 1, "10": 2, "a": 3, "2": 4}}}]}], "state": {"b": 1, "a": 2}}"#,
        )
        .expect("valid");
        let order = |v: &Value| keys_in_order(v.as_object().expect("object")).join(",");
        assert_eq!(order(&v["steps"][0]["initial"]), "b,a");
        assert_eq!(order(&v["steps"][0]["ops"][0]["value"]["$map"]), "2,10,z,a");
        // Outside ops / initial nothing is recorded.
        assert!(v["state"].get(KEY_ORDER).is_none());
        assert_eq!(
            parse_vector(r#"{"s": "a\"\\\u00e9\ud83d\ude00", "n": [1, -2.5e3, 1e300]}"#),
            Ok(serde_json::json!({"s": "a\"\\é😀", "n": [1, -2500.0, 1e300]}))
        );
    }

    #[test]
    fn splice_arguments_are_clamped_like_javascript() {
        let args = |start: f64, count: Option<f64>, len| {
            let mut op = serde_json::json!({ "start": start });
            if let Some(c) = count {
                op["deleteCount"] = c.into();
            }
            splice_args(&op, len).expect("args")
        };
        assert_eq!(args(1.0, Some(1.0), 3), (1, 1));
        assert_eq!(args(2.0, Some(5.0), 3), (2, 1));
        assert_eq!(args(5.0, Some(1.0), 3), (3, 0));
        assert_eq!(args(-1.0, Some(1.0), 3), (2, 1));
        assert_eq!(args(-9.0, Some(1.0), 3), (0, 1));
        assert_eq!(args(1.0, None, 3), (1, 2));
        assert_eq!(args(0.0, Some(-2.0), 3), (0, 0));
    }

    #[test]
    fn sorts_like_v8() {
        let num = |n: f64| MVal::Prim(PrimValue::Num(n));
        let show = |v: &[MVal]| {
            v.iter()
                .map(|m| match m {
                    MVal::Prim(PrimValue::Num(n)) => n.to_string(),
                    MVal::Prim(PrimValue::Str(s)) => s.clone(),
                    _ => String::new(),
                })
                .collect::<Vec<_>>()
                .join(",")
        };
        // Expected orders printed by Node 20 (`arr.sort((a, b) => a < b ?
        // -1 : a > b ? 1 : 0)`): NaN compares equal to everything.
        for (input, want) in [
            (
                &[3.0, f64::NAN, 1.0, 2.0, f64::NAN, 0.0, 5.0, 4.0][..],
                "3,NaN,1,2,NaN,0,4,5",
            ),
            (&[5.0, 4.0, 3.0, f64::NAN, 1.0, 2.0][..], "1,2,3,4,5,NaN"),
        ] {
            let mut v: Vec<MVal> = input.iter().map(|&n| num(n)).collect();
            v8_sort(&mut v, &|a, b| js_compare(a, b, false));
            assert_eq!(show(&v), want);
        }
        // Strings compare as UTF-16 code units.
        let mut v: Vec<MVal> = ["b", "😀", "\u{ffff}", "a"]
            .iter()
            .map(|s| MVal::Prim(PrimValue::Str((*s).to_owned())))
            .collect();
        v8_sort(&mut v, &|a, b| js_compare(a, b, false));
        assert_eq!(show(&v), "a,b,😀,\u{ffff}");
        // Booleans and bigints are ordered (false < true).
        let b = |x: bool| MVal::Prim(PrimValue::Bool(x));
        let mut v = vec![b(true), b(false), b(true)];
        v8_sort(&mut v, &|x, y| js_compare(x, y, false));
        assert!(matches!(v[0], MVal::Prim(PrimValue::Bool(false))));
        let i = |x: i64| MVal::Prim(PrimValue::I64(x));
        let mut v = vec![i(5), i(-9_223_372_036_854_775_808), i(0)];
        v8_sort(&mut v, &|x, y| js_compare(x, y, true));
        assert!(matches!(v[2], MVal::Prim(PrimValue::I64(i64::MIN))));
        // Long arrays: a stable sort.
        let mut v: Vec<MVal> = (0..70).map(|k| num(f64::from((k * 37) % 71))).collect();
        v8_sort(&mut v, &|a, b| js_compare(a, b, false));
        let want: Vec<String> = (0..71)
            .filter(|&k| k != 34)
            .map(|k: i32| k.to_string())
            .collect();
        assert_eq!(show(&v), want.join(","));
    }
}
