//! The checks behind the fuzz targets, shared with the seed-corpus test
//! (`cargo test --manifest-path fuzz/Cargo.toml`), which runs them on
//! stable without libFuzzer.
//!
//! * [`reflection`]: Reflection bytes: never a panic; a decoded registry
//!   re-encodes (with the crate's Reflection encoder) to bytes that decode
//!   to the same registry (in the legacy form a quantized field comes back
//!   as its wire integer: schema 3 has no quantized type).
//! * [`dynamic`]: a schema chosen by the first byte, then length-prefixed
//!   messages fed to one [`DynamicDecoder`]: never a panic; a rejected
//!   message leaves the state unchanged; the state after every message
//!   re-encodes as a full state that a fresh decoder reads back to the same
//!   JSON.
//! * [`typed::typed`]: length-prefixed messages fed to a typed
//!   `Decoder<Table>`, in each dialect: never a panic; a rejected message
//!   leaves the typed state unchanged; an accepted one leaves it equal to
//!   a dynamic decoder's.

pub mod typed;

use roomcast_schema::decoder::{
    decode_reflection, DynamicDecoder, NodeKind, NodeRef, ReflectionDialect, Value, ValueRef,
};
use roomcast_schema::types::{ElementType, FieldType, Primitive, TypeId, TypeRegistry};
use roomcast_schema::wire;
use roomcast_schema::{encode_reflection, Dialect};

macro_rules! vector_texts {
    ($($name:literal),* $(,)?) => {
        &[$(($name, include_str!(concat!("../../tests/fixtures/vectors/", $name, ".json")))),*]
    };
}

/// `(name, JSON text)` of the vectors whose schemas the dynamic target
/// decodes with (its first input byte picks one), and the seeds.
pub const VECTOR_TEXTS: &[(&str, &str)] = vector_texts!(
    "map_of_schemas_with_collections",
    "polymorphic_children",
    "array_of_schemas",
    "all_primitives",
    "nested_3_deep",
    "collection_of_schemas",
    "set_of_schemas",
    "array_of_primitives",
    "map_of_primitives",
    "inherited_root",
    "max_fields_63",
    "reflection_primitive_collections",
);

/// Decodes hex digits.
pub fn hex(s: &str) -> Vec<u8> {
    (0..s.len() / 2)
        .filter_map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).ok())
        .collect()
}

/// Every `"key": "<hex>"` string value in a vector's JSON text, in order
/// (a tiny scanner: the fuzz crate has no JSON parser).
pub fn hex_fields(text: &str, key: &str) -> Vec<Vec<u8>> {
    let needle = format!("\"{key}\": \"");
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find(&needle) {
        rest = &rest[i + needle.len()..];
        let end = rest.find('"').unwrap_or(rest.len());
        out.push(hex(&rest[..end]));
        rest = &rest[end..];
    }
    out
}

/// The registries the dynamic target can pick from.
pub fn schemas() -> Vec<TypeRegistry> {
    VECTOR_TEXTS
        .iter()
        .map(|(name, text)| {
            let bytes = hex_fields(text, "reflection").remove(0);
            decode_reflection(&bytes, ReflectionDialect::V5)
                .unwrap_or_else(|e| panic!("reflection of {name}: {e}"))
        })
        .collect()
}

/// Fuzz check for Reflection bytes. The first byte picks the dialect.
pub fn reflection(data: &[u8]) {
    let Some((&first, bytes)) = data.split_first() else {
        return;
    };
    let dialect = match first % 3 {
        0 => ReflectionDialect::V5,
        1 => ReflectionDialect::Legacy,
        _ => ReflectionDialect::Auto,
    };
    let Ok(types) = decode_reflection(bytes, dialect) else {
        return;
    };
    // Schema 3 has no quantized type: the legacy form carries the integer.
    let legacy = TypeRegistry::new(
        types
            .types()
            .iter()
            .map(|t| {
                let mut t = t.clone();
                for f in &mut t.fields {
                    if let FieldType::Quantized(q) = f.ty {
                        f.ty = FieldType::Primitive(q.wire());
                    }
                }
                t
            })
            .collect(),
        types.root(),
    )
    .expect("same shape as a valid registry");
    for (out, back, expected) in [
        (Dialect::Modern, ReflectionDialect::V5, &types),
        (Dialect::Legacy, ReflectionDialect::Legacy, &legacy),
    ] {
        let encoded = encode_reflection(&types, out);
        let again = decode_reflection(&encoded, back).expect("re-encoded reflection decodes");
        assert_eq!(&again, expected, "reflection round trip ({out:?})");
    }
    // Decoding with the registry must be safe too.
    let mut d = DynamicDecoder::new(types);
    let _ = d.decode(bytes);
    let _ = d.to_json();
}

/// Splits fuzz input into messages: `u16` little-endian length, then bytes.
pub fn messages(mut data: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    while data.len() >= 2 {
        let len = usize::from(u16::from_le_bytes([data[0], data[1]]));
        data = &data[2..];
        let take = len.min(data.len());
        out.push(&data[..take]);
        data = &data[take..];
    }
    out
}

/// Builds fuzz input for [`dynamic`].
pub fn frame(schema: u8, msgs: &[&[u8]]) -> Vec<u8> {
    let mut out = vec![schema];
    for m in msgs {
        out.extend_from_slice(&(m.len() as u16).to_le_bytes());
        out.extend_from_slice(m);
    }
    out
}

/// Fuzz check for the dynamic decoder.
pub fn dynamic(data: &[u8], schemas: &[TypeRegistry]) {
    let Some((&first, rest)) = data.split_first() else {
        return;
    };
    let types = &schemas[usize::from(first) % schemas.len()];
    let mut d = DynamicDecoder::new(types.clone());
    for msg in messages(rest) {
        let before = d.to_json();
        let refs = d.ref_count();
        match d.decode(msg) {
            Err(e) => {
                assert!(
                    e.offset() <= msg.len(),
                    "offset {} past the end",
                    e.offset()
                );
                assert_eq!(d.to_json(), before, "a rejected message changed the state");
                assert_eq!(d.ref_count(), refs, "a rejected message changed the refs");
            }
            Ok(()) => check_round_trip(&d),
        }
    }
}

/// The state re-encoded as a full state decodes to the same JSON.
fn check_round_trip(d: &DynamicDecoder) {
    let json = d.to_json();
    if json.contains("{\"$ref\":") {
        // Cyclic or too deep to print: nothing to compare.
        return;
    }
    let full = encode_full(d);
    let mut fresh = DynamicDecoder::new(d.types().clone());
    fresh
        .decode(&full)
        .unwrap_or_else(|e| panic!("re-encoded full state rejected: {e}\n{json}"));
    assert_eq!(fresh.to_json(), json, "full-state round trip");
}

/// Encodes the decoder's state as a full state (DFS pre-order, each ref
/// once), using only the public read API.
pub fn encode_full(d: &DynamicDecoder) -> Vec<u8> {
    let mut out = Vec::new();
    let mut done = std::collections::HashSet::new();
    let mut stack = vec![d.root()];
    let mut first = true;
    while let Some(node) = stack.pop() {
        if !done.insert(node.id()) {
            continue;
        }
        let mut block = Vec::new();
        let mut children = Vec::new();
        encode_node(d.types(), node, &mut block, &mut children);
        if !block.is_empty() {
            if !first || node.id().0 != 0 {
                out.push(0xff);
                wire::encode_varint(&mut out, node.id().0);
            }
            out.extend_from_slice(&block);
            first = false;
        }
        stack.extend(children.into_iter().rev());
    }
    out
}

fn encode_node<'a>(
    types: &TypeRegistry,
    node: NodeRef<'a>,
    out: &mut Vec<u8>,
    children: &mut Vec<NodeRef<'a>>,
) {
    match node.kind() {
        NodeKind::Struct(t) => {
            for (i, f) in types.fields(t).iter().enumerate() {
                let Some(v) = node.field_at(i) else { continue };
                out.push(0x80 | i as u8);
                if let (FieldType::Quantized(q), ValueRef::Primitive(Value::Number(n))) = (f.ty, v)
                {
                    q.encode(*n, out);
                    continue;
                }
                let (declared, prim) = match f.ty {
                    FieldType::Primitive(p) => (None, Some(p)),
                    FieldType::Quantized(q) => (None, Some(q.wire())),
                    FieldType::Schema(t) => (Some(t), None),
                    FieldType::Collection(..) => (None, None),
                };
                encode_value(types, v, declared, prim, out, children);
            }
        }
        kind => {
            let (declared, prim) = match node.element_type() {
                Some(ElementType::Primitive(p)) => (None, Some(p)),
                Some(ElementType::Schema(t)) => (Some(t), None),
                None => (None, None),
            };
            for (i, (key, v)) in node.entries().enumerate() {
                out.push(0x80);
                wire::encode_varint(out, i as u32);
                if kind == NodeKind::Map {
                    wire::encode_str(out, &key.to_string());
                }
                encode_value(types, v, declared, prim, out, children);
            }
        }
    }
}

fn encode_value<'a>(
    types: &TypeRegistry,
    v: ValueRef<'a>,
    declared: Option<TypeId>,
    prim: Option<Primitive>,
    out: &mut Vec<u8>,
    children: &mut Vec<NodeRef<'a>>,
) {
    match v {
        ValueRef::Node(n) => {
            wire::encode_varint(out, n.id().0);
            if let (NodeKind::Struct(t), Some(base)) = (n.kind(), declared) {
                if t != base {
                    out.push(0xd5);
                    wire::encode_varint(out, t.0);
                }
            }
            let _ = types;
            children.push(n);
        }
        ValueRef::Primitive(p) => encode_primitive(p, prim.unwrap_or(Primitive::Number), out),
    }
}

fn encode_primitive(v: &Value, p: Primitive, out: &mut Vec<u8>) {
    match (p, v) {
        (Primitive::String, Value::String(s)) => wire::encode_str(out, s),
        (Primitive::Boolean, Value::Bool(b)) => wire::encode_bool(out, *b),
        (Primitive::Number, Value::Number(n)) => {
            // Exact: float64 form.
            out.push(0xcb);
            wire::encode_f64(out, *n);
        }
        (Primitive::Float32, Value::Number(n)) => wire::encode_f32(out, *n as f32),
        (Primitive::Float64, Value::Number(n)) => wire::encode_f64(out, *n),
        (Primitive::Int8 | Primitive::Uint8, Value::Int(i)) => wire::encode_u8(out, *i as u8),
        (Primitive::Int16 | Primitive::Uint16, Value::Int(i)) => wire::encode_u16(out, *i as u16),
        (Primitive::Int32 | Primitive::Uint32, Value::Int(i)) => wire::encode_u32(out, *i as u32),
        (Primitive::Int64, Value::Int(i)) | (Primitive::BigInt64, Value::BigInt(i)) => {
            wire::encode_u64(out, *i as u64)
        }
        (Primitive::Uint64, Value::Uint(u)) | (Primitive::BigUint64, Value::BigUint(u)) => {
            wire::encode_u64(out, *u)
        }
        (p, v) => panic!("value {v:?} does not match its declared type {p}"),
    }
}

/// Seed inputs built from the vectors.
/// The `client_frames` check: every `len: u8, frame` of `data` through
/// `roomcast-client`'s parser of server frames; no panic, whatever the
/// bytes. Returns how many frames parsed.
pub fn client_frames(data: &[u8]) -> usize {
    let mut rest = data;
    let mut ok = 0;
    while let Some((&len, tail)) = rest.split_first() {
        let (frame, tail) = tail.split_at(usize::from(len).min(tail.len()));
        ok += usize::from(roomcast_client::__parse_server_frame(frame));
        rest = tail;
    }
    ok
}

pub mod seeds {
    use super::{frame, hex_fields, VECTOR_TEXTS};

    /// Seeds for the Reflection target: each vector's Reflection, with
    /// every dialect byte.
    pub fn reflection() -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        for (_, text) in VECTOR_TEXTS {
            let bytes = hex_fields(text, "reflection").remove(0);
            for dialect in 0..3u8 {
                let mut seed = vec![dialect];
                seed.extend_from_slice(&bytes);
                out.push(seed);
            }
        }
        out
    }

    /// Seeds for the dynamic target: each vector's patch chain, and each of
    /// its full states alone.
    pub fn dynamic() -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        for (i, (_, text)) in VECTOR_TEXTS.iter().enumerate() {
            let patches = hex_fields(text, "patch");
            let refs: Vec<&[u8]> = patches.iter().map(Vec::as_slice).collect();
            out.push(frame(i as u8, &refs));
            for full in hex_fields(text, "full") {
                out.push(frame(i as u8, &[&full]));
            }
        }
        out
    }

    /// Seeds for the typed target: full states and patches of a `Table`
    /// from the crate's encoder... built by hand with the wire writers.
    pub fn typed() -> Vec<Vec<u8>> {
        use roomcast_schema::wire;
        let mut full = Vec::new();
        // hands #1 {"a": #2 {cards #3 [#4 {suit "h", rank 3, next #5 {n 1.5, big -1}}],
        // tags #6 {"x"}, marks #7 [1, 1], flag true}}, deck #8 [], log #9 ["l"],
        // best #10 {rank 9}, scores #11 {"s": 7}
        for (op, r) in [(0x80u8, 1u32), (0x81, 8), (0x82, 9), (0x83, 10), (0x84, 11)] {
            full.push(op);
            wire::encode_varint(&mut full, r);
        }
        let block = |out: &mut Vec<u8>, id: u32| {
            out.push(0xff);
            wire::encode_varint(out, id);
        };
        block(&mut full, 1);
        full.extend_from_slice(&[0x80, 0x00]);
        wire::encode_str(&mut full, "a");
        full.push(2);
        block(&mut full, 2);
        full.extend_from_slice(&[0x80, 3, 0x81, 6, 0x82, 7, 0x83, 1]);
        block(&mut full, 3);
        full.extend_from_slice(&[0x80, 0, 4]);
        block(&mut full, 4);
        full.push(0x80);
        wire::encode_str(&mut full, "h");
        full.extend_from_slice(&[0x81, 3, 0x82, 5]);
        block(&mut full, 5);
        full.push(0x80);
        wire::encode_number(&mut full, 1.5);
        full.push(0x81);
        wire::encode_u64(&mut full, u64::MAX);
        block(&mut full, 6);
        full.extend_from_slice(&[0x80, 0]);
        wire::encode_str(&mut full, "x");
        block(&mut full, 7);
        full.extend_from_slice(&[0x80, 0, 1, 0x80, 1, 1]);
        block(&mut full, 9);
        full.extend_from_slice(&[0x80, 0]);
        wire::encode_str(&mut full, "l");
        block(&mut full, 10);
        full.extend_from_slice(&[0x81, 9]);
        block(&mut full, 11);
        full.extend_from_slice(&[0x80, 0]);
        wire::encode_str(&mut full, "s");
        full.extend_from_slice(&[7, 0]);
        // A patch moving card #4 from the hand to `best`, and reversing the log.
        let patch = [0xff, 3, 0x21, 4, 0xff, 0, 0xc3, 4, 0xff, 9, 0x0f];
        let mut with_len = Vec::new();
        for m in [&full[..], &patch[..]] {
            with_len.extend_from_slice(&(m.len() as u16).to_le_bytes());
            with_len.extend_from_slice(m);
        }
        vec![with_len]
    }

    /// `client_frames`: one of each frame a 0.18 server sends, each
    /// `len: u8, frame`: JOIN_ROOM (token, serializer), ERROR (code,
    /// message), LEAVE_ROOM, ROOM_STATE (a vector's full state),
    /// ROOM_STATE_PATCH, ROOM_DATA (a string type, msgpack 1), PING.
    pub fn client_frames() -> Vec<Vec<u8>> {
        let full = super::hex_fields(
            include_str!("../../tests/fixtures/vectors/all_primitives.json"),
            "full",
        )
        .into_iter()
        .next()
        .unwrap_or_default();
        let frames: Vec<Vec<u8>> = vec![
            b"\x0a\x03abc\x06schema".to_vec(),
            b"\x0b\x7f\xa2hi".to_vec(),
            vec![12],
            [&[14][..], &full[..full.len().min(200)]].concat(),
            vec![15, 0xff, 0, 0x80, 1],
            b"\x0d\xa1x\x01".to_vec(),
            vec![18],
        ];
        let mut seed = Vec::new();
        for f in &frames {
            seed.push(f.len() as u8);
            seed.extend_from_slice(f);
        }
        vec![seed]
    }

    /// Every target with its seeds.
    pub fn all() -> Vec<(&'static str, Vec<Vec<u8>>)> {
        vec![
            ("decode_reflection", reflection()),
            ("decode_dynamic", dynamic()),
            ("decode_typed", typed()),
            ("client_frames", client_frames()),
        ]
    }
}
