//! Replays every reference vector through the decoders: Reflection bytes
//! against the `schema`/`typeIds` sections, every `full` into a fresh
//! decoder, the chain of `patch`es, and `fullBeforePatch` + `patch`, each
//! compared with the JSON state the real `@colyseus/schema` decoder holds.
//!
//! Reads the directory named by `ROOMCAST_VECTORS`, else
//! `tests/fixtures/vectors` at the workspace root.

use std::fs;
use std::path::PathBuf;

use roomcast_schema::decoder::{decode_reflection, DynamicDecoder, ReflectionDialect};
use roomcast_schema::types::{
    CollectionKind, NamedField, NamedFieldType, NamedType, Primitive, TypeId, TypeRegistry,
};
use serde_json::Value as Json;

fn vector_dir() -> PathBuf {
    match std::env::var_os("ROOMCAST_VECTORS") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/vectors"),
    }
}

fn vectors() -> Vec<(String, Json)> {
    let dir = vector_dir();
    let mut files: Vec<PathBuf> = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no vectors in {}", dir.display());
    files
        .into_iter()
        .map(|p| {
            let name = p
                .file_stem()
                .expect("file name")
                .to_string_lossy()
                .into_owned();
            let text = fs::read_to_string(&p).expect("read vector");
            (name, serde_json::from_str(&text).expect("vector JSON"))
        })
        .collect()
}

fn hex(s: &str) -> Vec<u8> {
    assert!(s.len().is_multiple_of(2), "odd hex length");
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

fn field_type(ty: &Json) -> NamedFieldType {
    match ty {
        Json::String(s) => match Primitive::from_name(s) {
            Some(p) => NamedFieldType::Primitive(p),
            None => NamedFieldType::Schema(s.clone()),
        },
        Json::Object(o) => {
            let (kind, elem) = o.iter().next().expect("collection type");
            let kind = CollectionKind::from_name(kind).expect("collection kind");
            let elem = elem.as_str().expect("element type");
            match Primitive::from_name(elem) {
                Some(p) => NamedFieldType::PrimitiveCollection(kind, p),
                None => NamedFieldType::SchemaCollection(kind, elem.to_owned()),
            }
        }
        other => panic!("bad field type {other}"),
    }
}

/// The vector's `schema` section as a registry, checked against `typeIds`.
fn expected_types(v: &Json) -> TypeRegistry {
    let schema = &v["schema"];
    let types: Vec<NamedType> = schema["types"]
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
    let reg = TypeRegistry::from_named(schema["root"].as_str().expect("root"), &types)
        .expect("vector schema");
    for (name, id) in v["typeIds"].as_object().expect("typeIds") {
        assert_eq!(
            reg.by_name(name),
            Some(TypeId(id.as_u64().expect("id") as u32)),
            "type id of {name}"
        );
    }
    reg
}

fn assert_same_types(got: &TypeRegistry, want: &TypeRegistry, ctx: &str) {
    assert_eq!(got.len(), want.len(), "{ctx}: number of types");
    assert_eq!(got.root(), want.root(), "{ctx}: root type");
    for i in 0..want.len() as u32 {
        let (g, w) = (got.get(TypeId(i)), want.get(TypeId(i)));
        assert_eq!(g.extends, w.extends, "{ctx}: type {i} ({}) extends", w.name);
        assert_eq!(g.fields, w.fields, "{ctx}: type {i} ({}) fields", w.name);
    }
}

fn json_of(decoder: &DynamicDecoder) -> Json {
    let text = decoder.to_json();
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("our JSON does not parse ({e}): {text}"))
}

fn decode_fresh(types: &TypeRegistry, bytes: &[u8], ctx: &str) -> DynamicDecoder {
    let mut d = DynamicDecoder::new(types.clone());
    d.decode(bytes).unwrap_or_else(|e| panic!("{ctx}: {e}"));
    d
}

#[test]
fn reflection_of_every_vector() {
    for (name, v) in vectors() {
        let want = expected_types(&v);
        let bytes = hex(v["reflection"].as_str().expect("reflection"));
        for dialect in [ReflectionDialect::V5, ReflectionDialect::Auto] {
            let got = decode_reflection(&bytes, dialect).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_same_types(&got, &want, &name);
        }
    }
}

#[test]
fn full_states_patches_and_joins() {
    let mut checked = 0;
    for (name, v) in vectors() {
        let types = decode_reflection(
            &hex(v["reflection"].as_str().expect("reflection")),
            ReflectionDialect::V5,
        )
        .expect("reflection");
        let steps = v["steps"].as_array().expect("steps");
        if let Some(views) = v.get("views") {
            check_views(&name, &types, views, steps);
            continue;
        }
        let mut chain = DynamicDecoder::new(types.clone());
        for (i, step) in steps.iter().enumerate() {
            let ctx = format!("{name} step {i} ({})", step["name"]);
            let divergent = step["divergent"].as_bool().unwrap_or(false);

            let full = hex(step["full"].as_str().expect("full"));
            let fresh = decode_fresh(&types, &full, &format!("{ctx} full"));
            let want_full = if divergent {
                &step["fullState"]
            } else {
                &step["state"]
            };
            assert_eq!(json_of(&fresh), *want_full, "{ctx}: full");

            let patch = hex(step["patch"].as_str().expect("patch"));
            chain
                .decode(&patch)
                .unwrap_or_else(|e| panic!("{ctx} patch: {e}"));
            assert_eq!(json_of(&chain), step["state"], "{ctx}: patch chain");

            if let Some(fbp) = step.get("fullBeforePatch").and_then(Json::as_str) {
                let mut join = decode_fresh(&types, &hex(fbp), &format!("{ctx} fullBeforePatch"));
                join.decode(&patch)
                    .unwrap_or_else(|e| panic!("{ctx} patch after join: {e}"));
                assert_eq!(
                    json_of(&join),
                    step["stateAfterFullBeforePatchThenPatch"],
                    "{ctx}: fullBeforePatch then patch"
                );
            }
            checked += 1;
        }
    }
    assert!(checked > 100, "only {checked} steps checked");
}

/// StateView scenarios: each view's full state. `viewStates` is what a
/// fresh client decodes from `viewFulls`; a client following `viewPatches`
/// may hold less (the view part is not re-sent), so the chain is only
/// required to decode.
fn check_views(name: &str, types: &TypeRegistry, views: &Json, steps: &[Json]) {
    for view in views.as_array().expect("views") {
        let view = view.as_str().expect("view name");
        let mut chain = DynamicDecoder::new(types.clone());
        for (i, step) in steps.iter().enumerate() {
            let ctx = format!("{name} view {view} step {i} ({})", step["name"]);
            let want = &step["viewStates"][view];
            let full = hex(step["viewFulls"][view].as_str().expect("viewFulls"));
            let fresh = decode_fresh(types, &full, &format!("{ctx} full"));
            assert_eq!(json_of(&fresh), *want, "{ctx}: view full");
            let patch = hex(step["viewPatches"][view].as_str().expect("viewPatches"));
            chain
                .decode(&patch)
                .unwrap_or_else(|e| panic!("{ctx} patch: {e}"));
        }
    }
}
