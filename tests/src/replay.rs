//! Replays the vectors' scenarios (schema, `initial` values, `ops`) on
//! Roomcast's dynamic state, so any vector set in the same format can be
//! checked against our encoder.
//!
//! Rust ownership gives every instance one parent: a `$path` or `$stash`
//! value that the reference *shares* is a copy here (see
//! [`Replay::uses_shared_instance`]).

use std::collections::HashMap;

use roomcast_schema::dynamic::{empty_value, DynMut, DynStruct, DynValue, DynValueMut, PrimValue};
use roomcast_schema::types::{
    CollectionKind, ElementType, FieldType, NamedField, NamedFieldType, NamedType, Primitive,
    TypeId, TypeRegistry,
};
use roomcast_schema::{ArraySchema, Encoder, EncoderOptions, ViewId, ViewTarget, DEFAULT_VIEW_TAG};
use serde_json::Value;

/// Parses the vectors' `schema` section into a registry.
///
/// # Panics
///
/// On a malformed section (test fixtures).
pub fn registry(schema: &Value) -> TypeRegistry {
    let named: Vec<NamedType> = schema["types"]
        .as_array()
        .expect("types")
        .iter()
        .map(|t| NamedType {
            name: t["name"].as_str().expect("name").to_owned(),
            extends: t["extends"].as_str().map(str::to_owned),
            fields: t["fields"]
                .as_array()
                .expect("fields")
                .iter()
                .map(|f| NamedField {
                    name: f["name"].as_str().expect("field name").to_owned(),
                    ty: field_type(&f["type"]),
                })
                .collect(),
        })
        .collect();
    let mut reg = TypeRegistry::from_named(schema["root"].as_str().expect("root"), &named)
        .expect("valid schema");
    // `"view": true` (default tag) or `"view": TAG` on a field.
    for t in schema["types"].as_array().expect("types") {
        let Some(id) = reg.by_name(t["name"].as_str().expect("name")) else {
            continue;
        };
        for f in t["fields"].as_array().expect("fields") {
            let tag = match &f["view"] {
                Value::Bool(true) => Some(DEFAULT_VIEW_TAG),
                Value::Number(n) => n.as_i64(),
                _ => None,
            };
            if tag.is_some() {
                let name = f["name"].as_str().expect("field name");
                let index = reg
                    .fields(id)
                    .iter()
                    .position(|d| d.name == name)
                    .expect("field");
                reg.set_view_tag(id, index, tag);
            }
        }
    }
    reg
}

fn field_type(v: &Value) -> NamedFieldType {
    if let Some(name) = v.as_str() {
        return match Primitive::from_name(name) {
            Some(p) => NamedFieldType::Primitive(p),
            None => NamedFieldType::Schema(name.to_owned()),
        };
    }
    let (kind, inner) = v
        .as_object()
        .and_then(|o| o.iter().next())
        .expect("collection type");
    let kind = CollectionKind::from_name(kind).expect("collection kind");
    let inner = inner.as_str().expect("element type");
    match Primitive::from_name(inner) {
        Some(p) => NamedFieldType::PrimitiveCollection(kind, p),
        None => NamedFieldType::SchemaCollection(kind, inner.to_owned()),
    }
}

/// A scenario being replayed.
#[derive(Debug)]
pub struct Replay {
    /// The scenario's types.
    pub types: TypeRegistry,
    /// The encoder holding the replayed state.
    pub encoder: Encoder<DynStruct>,
    stash: HashMap<String, DynValue>,
    /// The scenario's views (`views`), by name.
    pub views: Vec<(String, ViewId)>,
}

impl Replay {
    /// Builds the initial state of a vector (`steps[0].initial`) and its
    /// encoder; refIds are numbered like the reference (never reused).
    ///
    /// # Panics
    ///
    /// On a malformed vector.
    pub fn new(vector: &Value) -> Self {
        let types = registry(&vector["schema"]);
        let mut root = DynStruct::new(&types, types.root());
        let stash = HashMap::new();
        if let Some(init) = vector["steps"][0]["initial"].as_object() {
            for (name, v) in init {
                let (i, ty) = field_of(&types, types.root(), name);
                let value = build(&types, ty, v, &stash, None);
                root.set(i, value);
            }
        }
        let mut encoder =
            Encoder::with_options(root, EncoderOptions::default().reuse_ref_ids(false));
        let views = vector["views"]
            .as_array()
            .map(|names| {
                names
                    .iter()
                    .map(|n| {
                        (
                            n.as_str().expect("view name").to_owned(),
                            encoder.create_view(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        Self {
            types,
            encoder,
            stash,
            views,
        }
    }

    /// Whether an op refers to an existing instance as a value (`$path`,
    /// `$stash`): the reference shares that instance, Roomcast copies it.
    pub fn uses_shared_instance(op: &Value) -> bool {
        let s = op.to_string();
        (s.contains("\"$path\"") && !op["op"].as_str().is_some_and(|o| o.ends_with(".delete")))
            || s.contains("\"$stash\"")
    }

    /// Applies one op of a step.
    ///
    /// # Panics
    ///
    /// On a malformed op or an op this replay does not support.
    pub fn apply(&mut self, op: &Value) {
        let kind = op["op"].as_str().expect("op");
        let path: Vec<Value> = op["path"].as_array().cloned().unwrap_or_default();
        if kind == "view.add" || kind == "view.remove" {
            let name = op["view"].as_str().expect("view");
            let view = self.view(name).expect("known view");
            let tag = op["tag"].as_i64().unwrap_or(DEFAULT_VIEW_TAG);
            let show = kind == "view.add";
            self.with_value(&path, |v| match v {
                DynValueMut::Struct(mut s) => apply_view(&mut s, view, show, tag),
                DynValueMut::Map(mut m) => apply_view(&mut m, view, show, tag),
                DynValueMut::Array(mut a) => apply_view(&mut a, view, show, tag),
                DynValueMut::Set(mut x) => apply_view(&mut x, view, show, tag),
                DynValueMut::Collection(mut x) => apply_view(&mut x, view, show, tag),
                _ => panic!("{kind}: not a ref"),
            });
            return;
        }
        if kind == "stash" {
            let v = self.value_at(&path).expect("stash path").clone();
            self.stash
                .insert(op["as"].as_str().expect("as").to_owned(), v);
            return;
        }
        let (decl, value) = (self.declared_at(&path), op.get("value"));
        let built = |this: &Self, ty: FieldType, v: &Value| -> Option<DynValue> {
            build(&this.types, ty, v, &this.stash, Some(this))
        };
        match kind {
            "set" => {
                let DeclaredAt::Struct(ty) = decl else {
                    panic!("set on a non-struct")
                };
                let (i, fty) = field_of(&self.types, ty, op["field"].as_str().expect("field"));
                let v = built(self, fty, value.expect("value"));
                self.with_struct(&path, |s| s.set(i, v));
            }
            "map.set" | "array.push" | "array.unshift" | "array.splice" | "array.set"
            | "set.add" | "collection.add" => {
                let DeclaredAt::Collection(kind_c, elem) = decl else {
                    panic!("{kind} on a non-collection")
                };
                let ety = element_field_type(elem);
                let values: Vec<DynValue> = match kind {
                    "array.push" | "array.unshift" | "array.splice" => op["values"]
                        .as_array()
                        .map(|vs| vs.iter().filter_map(|v| built(self, ety, v)).collect())
                        .unwrap_or_default(),
                    _ => built(self, ety, value.expect("value"))
                        .into_iter()
                        .collect(),
                };
                let _ = kind_c;
                self.with_value(&path, |v| match (kind, v) {
                    ("map.set", DynValueMut::Map(mut m)) => {
                        let key = op["key"].as_str().expect("key");
                        m.insert(key, values.into_iter().next().expect("value"));
                    }
                    ("array.push", DynValueMut::Array(mut a)) => {
                        values.into_iter().for_each(|v| a.push(v));
                    }
                    ("array.unshift", DynValueMut::Array(mut a)) => {
                        for (i, v) in values.into_iter().enumerate() {
                            a.insert(i, v);
                        }
                    }
                    ("array.splice", DynValueMut::Array(mut a)) => {
                        let start = op["start"].as_u64().expect("start") as usize;
                        let count = op["deleteCount"].as_u64().expect("deleteCount") as usize;
                        a.splice(start, count, values);
                    }
                    ("array.set", DynValueMut::Array(mut a)) => {
                        let index = op["index"].as_u64().expect("index") as usize;
                        a.set(index, values.into_iter().next().expect("value"));
                    }
                    ("set.add", DynValueMut::Set(mut s)) => {
                        s.add(values.into_iter().next().expect("value"));
                    }
                    ("collection.add", DynValueMut::Collection(mut c)) => {
                        c.add(values.into_iter().next().expect("value"));
                    }
                    _ => panic!("{kind}: wrong target"),
                });
            }
            "map.delete" => self.with_value(&path, |v| {
                let DynValueMut::Map(mut m) = v else {
                    panic!("map.delete")
                };
                m.remove(op["key"].as_str().expect("key"));
            }),
            "set.delete" | "collection.delete" => {
                let value = value.expect("value");
                // By identity (`$path` to an element) or by value.
                let position = value
                    .get("$path")
                    .and_then(Value::as_array)
                    .and_then(|p| p.last())
                    .and_then(Value::as_u64)
                    .map(|p| p as usize);
                let DeclaredAt::Collection(_, elem) = decl else {
                    panic!("{kind}")
                };
                let probe = if position.is_none() {
                    built(self, element_field_type(elem), value)
                } else {
                    None
                };
                self.with_value(&path, |v| {
                    let mut n = 0usize;
                    let mut matches = |x: &DynValue| {
                        let hit = match (position, &probe) {
                            (Some(p), _) => n == p,
                            (None, Some(DynValue::Prim(_, want))) => {
                                matches!(x, DynValue::Prim(_, got) if got == want)
                            }
                            _ => false,
                        };
                        n += 1;
                        hit
                    };
                    match v {
                        DynValueMut::Set(mut s) => {
                            s.remove_where(&mut matches);
                        }
                        DynValueMut::Collection(mut c) => {
                            c.remove_where(&mut matches);
                        }
                        _ => panic!("{kind}: wrong target"),
                    }
                });
            }
            "map.clear" | "set.clear" | "collection.clear" | "array.clear" => {
                self.with_value(&path, |v| match v {
                    DynValueMut::Map(mut m) => m.clear(),
                    DynValueMut::Array(mut a) => a.clear(),
                    DynValueMut::Set(mut s) => s.clear(),
                    DynValueMut::Collection(mut c) => c.clear(),
                    _ => panic!("clear: wrong target"),
                });
            }
            "array.pop" | "array.shift" | "array.reverse" | "array.sort" => {
                self.with_value(&path, |v| {
                    let DynValueMut::Array(mut a) = v else {
                        panic!("{kind}")
                    };
                    match kind {
                        "array.pop" => {
                            a.pop();
                        }
                        "array.shift" => {
                            a.shift();
                        }
                        "array.reverse" => a.reverse(),
                        _ => {
                            let desc = op["descending"].as_bool().unwrap_or(false);
                            a.sort_by(|x, y| {
                                let o = compare(x, y);
                                if desc {
                                    o.reverse()
                                } else {
                                    o
                                }
                            });
                        }
                    }
                });
            }
            other => panic!("unsupported op {other}"),
        }
    }

    /// The view named `name` in the vector.
    pub fn view(&self, name: &str) -> Option<ViewId> {
        self.views.iter().find(|(n, _)| n == name).map(|(_, v)| *v)
    }

    /// The value at a path of the current state.
    pub fn value_at(&self, path: &[Value]) -> Option<&DynValue> {
        let mut cur: Option<&DynValue> = None;
        let mut s: &DynStruct = self.encoder.state();
        for seg in path {
            let next = match cur {
                None => {
                    let (i, _) = field_of(&self.types, s.type_id(), seg.as_str()?);
                    s.get(i)
                }
                Some(DynValue::Struct(st)) => {
                    let (i, _) = field_of(&self.types, st.type_id(), seg.as_str()?);
                    st.get(i)
                }
                Some(DynValue::Map(m)) => m.get(seg.as_str()?),
                Some(DynValue::Array(a)) => a.get(seg.as_u64()? as usize),
                Some(DynValue::Set(x)) => x.iter().nth(seg.as_u64()? as usize),
                Some(DynValue::Collection(x)) => x.iter().nth(seg.as_u64()? as usize),
                Some(DynValue::Prim(..) | DynValue::Quantized(..)) => None,
            };
            cur = next;
            if let Some(DynValue::Struct(st)) = cur {
                s = st;
            }
        }
        cur
    }

    /// What the op at `path` works on: a struct (its concrete type) or a
    /// collection (the element type its field declares).
    fn declared_at(&self, path: &[Value]) -> DeclaredAt {
        let Some((last, parent)) = path.split_last() else {
            return DeclaredAt::Struct(self.types.root());
        };
        match self.value_at(path) {
            Some(DynValue::Struct(s)) => DeclaredAt::Struct(s.type_id()),
            Some(DynValue::Prim(..) | DynValue::Quantized(..)) | None => DeclaredAt::Primitive,
            Some(_) => {
                let owner = if parent.is_empty() {
                    self.types.root()
                } else {
                    match self.value_at(parent) {
                        Some(DynValue::Struct(s)) => s.type_id(),
                        _ => panic!("collections are struct fields"),
                    }
                };
                match field_of(&self.types, owner, last.as_str().expect("field")).1 {
                    FieldType::Collection(k, e) => DeclaredAt::Collection(k, e),
                    _ => DeclaredAt::Primitive,
                }
            }
        }
    }

    fn with_value(&mut self, path: &[Value], f: impl FnOnce(DynValueMut<'_>)) {
        let types = self.types.clone();
        let mut f = Some(f);
        let mut call = |v: DynValueMut<'_>| (f.take().expect("called once"))(v);
        let mut root = DynValueMut::Struct(self.encoder.root_mut());
        if path.is_empty() {
            call(root);
        } else {
            walk(&types, &mut root, path, &mut call);
        }
    }

    fn with_struct(&mut self, path: &[Value], f: impl FnOnce(&mut DynMut<'_>)) {
        self.with_value(path, |v| match v {
            DynValueMut::Struct(mut s) => f(&mut s),
            _ => panic!("not a struct"),
        });
    }
}

fn walk(
    types: &TypeRegistry,
    v: &mut DynValueMut<'_>,
    path: &[Value],
    f: &mut dyn FnMut(DynValueMut<'_>),
) {
    let (seg, rest) = path.split_first().expect("non-empty path");
    let child = match v {
        DynValueMut::Struct(s) => {
            let (i, _) = field_of(types, s.type_id(), seg.as_str().expect("field name"));
            s.child(i)
        }
        DynValueMut::Map(m) => m.child(seg.as_str().expect("map key")),
        DynValueMut::Array(a) => a.child(seg.as_u64().expect("array index") as usize),
        DynValueMut::Set(x) => x.child(seg.as_u64().expect("set position") as usize),
        DynValueMut::Collection(x) => x.child(seg.as_u64().expect("collection position") as usize),
        _ => None,
    };
    let mut child = child.expect("path exists");
    if rest.is_empty() {
        f(child);
    } else {
        walk(types, &mut child, rest, f);
    }
}

#[derive(Debug, Clone, Copy)]
enum DeclaredAt {
    Struct(TypeId),
    Collection(CollectionKind, ElementType),
    Primitive,
}

fn element_field_type(e: ElementType) -> FieldType {
    match e {
        ElementType::Primitive(p) => FieldType::Primitive(p),
        ElementType::Schema(t) => FieldType::Schema(t),
    }
}

fn field_of(types: &TypeRegistry, ty: TypeId, name: &str) -> (usize, FieldType) {
    types
        .fields(ty)
        .iter()
        .enumerate()
        .find(|(_, f)| f.name == name)
        .map(|(i, f)| (i, f.ty))
        .unwrap_or_else(|| panic!("no field {name} in type {}", types.get(ty).name))
}

fn compare(a: &DynValue, b: &DynValue) -> std::cmp::Ordering {
    match (a, b) {
        (DynValue::Prim(_, PrimValue::Num(x)), DynValue::Prim(_, PrimValue::Num(y))) => {
            x.partial_cmp(y).unwrap_or(std::cmp::Ordering::Equal)
        }
        (DynValue::Prim(_, PrimValue::Str(x)), DynValue::Prim(_, PrimValue::Str(y))) => x.cmp(y),
        _ => std::cmp::Ordering::Equal,
    }
}

fn prim(p: Primitive, v: &Value) -> PrimValue {
    if let Some(o) = v.as_object() {
        if let Some(n) = o.get("$num").and_then(Value::as_str) {
            return PrimValue::Num(match n {
                "NaN" => f64::NAN,
                "Infinity" => f64::INFINITY,
                "-Infinity" => f64::NEG_INFINITY,
                "-0" => -0.0,
                other => panic!("bad $num {other}"),
            });
        }
        if let Some(b) = o.get("$bigint").and_then(Value::as_str) {
            return match p {
                Primitive::BigUint64 => PrimValue::U64(b.parse().expect("biguint")),
                _ => PrimValue::I64(b.parse().expect("bigint")),
            };
        }
        if let Some(r) = o.get("$repeat").and_then(Value::as_str) {
            let times = o["times"].as_u64().expect("times") as usize;
            return PrimValue::Str(r.repeat(times));
        }
        panic!("bad primitive value {v}");
    }
    match v {
        Value::String(s) => PrimValue::Str(s.clone()),
        Value::Bool(b) => PrimValue::Bool(*b),
        Value::Number(n) => PrimValue::Num(n.as_f64().expect("number")),
        other => panic!("bad primitive value {other}"),
    }
}

/// Builds an untracked value of declared type `ty` from its JSON form.
fn build(
    types: &TypeRegistry,
    ty: FieldType,
    v: &Value,
    stash: &HashMap<String, DynValue>,
    state: Option<&Replay>,
) -> Option<DynValue> {
    if v.is_null() {
        return None;
    }
    if let Some(p) = v.get("$path").and_then(Value::as_array) {
        let found = state.and_then(|r| r.value_at(p)).expect("$path target");
        return Some(found.clone());
    }
    if let Some(name) = v.get("$stash").and_then(Value::as_str) {
        return Some(stash.get(name).expect("stashed").clone());
    }
    Some(match ty {
        FieldType::Primitive(p) => DynValue::Prim(p, prim(p, v)),
        FieldType::Quantized(q) => DynValue::quantized(q, v.as_f64().expect("a number")),
        FieldType::Schema(declared) => {
            let name = v["$new"].as_str().expect("$new");
            let actual = types.by_name(name).expect("known type");
            let mut s = DynStruct::new(types, actual);
            if actual != declared {
                s.set_type_tag(Some(actual.0));
            }
            if let Some(fields) = v["fields"].as_object() {
                for (fname, fv) in fields {
                    let (i, fty) = field_of(types, actual, fname);
                    s.set(i, build(types, fty, fv, stash, state));
                }
            }
            DynValue::Struct(Box::new(s))
        }
        FieldType::Collection(kind, elem) => {
            let ety = element_field_type(elem);
            let mut c = empty_value(ty).expect("collection");
            match (&mut c, kind) {
                (DynValue::Map(m), CollectionKind::Map) => {
                    for (k, ev) in v["$map"].as_object().expect("$map") {
                        if let Some(e) = build(types, ety, ev, stash, state) {
                            m.insert(k.clone(), e);
                        }
                    }
                }
                (DynValue::Array(a), _) => {
                    fill(a, &v["$array"], |x| build(types, ety, x, stash, state));
                }
                (DynValue::Set(s), _) => {
                    for x in v["$set"].as_array().expect("$set") {
                        if let Some(e) = build(types, ety, x, stash, state) {
                            s.add(e);
                        }
                    }
                }
                (DynValue::Collection(s), _) => {
                    for x in v["$collection"].as_array().expect("$collection") {
                        if let Some(e) = build(types, ety, x, stash, state) {
                            s.add(e);
                        }
                    }
                }
                _ => panic!("collection kind mismatch"),
            }
            c
        }
    })
}

fn fill(a: &mut ArraySchema<DynValue>, v: &Value, mut f: impl FnMut(&Value) -> Option<DynValue>) {
    for x in v.as_array().expect("$array") {
        if let Some(e) = f(x) {
            a.push(e);
        }
    }
}

fn apply_view(target: &mut dyn ViewTarget, view: ViewId, show: bool, tag: i64) {
    if show {
        target.show_to_tagged(view, tag);
    } else {
        target.hide_from_tagged(view, tag);
    }
}
