//! Malformed, hostile and out-of-order input for the dynamic decoder: every
//! error names its byte offset and kind, a rejected message leaves the state
//! unchanged (atomic application), and pathological but well-formed states
//! (cycles, deep chains, far gap writes) stay bounded.

use proptest::prelude::*;
use roomcast_schema::decoder::{DynamicDecoder, RefId};
use roomcast_schema::types::{
    CollectionKind, NamedField, NamedFieldType, NamedType, Primitive, TypeRegistry,
};
use roomcast_schema::wire::{self, DecodeErrorKind};

fn field(name: &str, ty: NamedFieldType) -> NamedField {
    NamedField {
        name: name.into(),
        ty,
    }
}

/// `State { n: number, s: string, child: Child, items: map<Child>,
/// list: array<uint8>, kids: array<Child>, tags: set<string>, me: State,
/// other: State }` (recursive), `Child { x: uint8 }`.
fn types() -> TypeRegistry {
    use NamedFieldType::*;
    TypeRegistry::from_named(
        "State",
        &[
            NamedType {
                name: "State".into(),
                extends: None,
                fields: vec![
                    field("n", Primitive(self::Primitive::Number)),
                    field("s", Primitive(self::Primitive::String)),
                    field("child", Schema("Child".into())),
                    field(
                        "items",
                        SchemaCollection(CollectionKind::Map, "Child".into()),
                    ),
                    field(
                        "list",
                        PrimitiveCollection(CollectionKind::Array, self::Primitive::Uint8),
                    ),
                    field(
                        "kids",
                        SchemaCollection(CollectionKind::Array, "Child".into()),
                    ),
                    field(
                        "tags",
                        PrimitiveCollection(CollectionKind::Set, self::Primitive::String),
                    ),
                    field("me", Schema("State".into())),
                    field("other", Schema("State".into())),
                ],
            },
            NamedType {
                name: "Child".into(),
                extends: None,
                fields: vec![field("x", Primitive(self::Primitive::Uint8))],
            },
        ],
    )
    .expect("types")
}

/// A message builder over the wire writers.
#[derive(Default)]
struct Msg(Vec<u8>);

impl Msg {
    fn op(mut self, byte: u8) -> Self {
        self.0.push(byte);
        self
    }
    fn varint(mut self, v: u32) -> Self {
        wire::encode_varint(&mut self.0, v);
        self
    }
    fn str(mut self, s: &str) -> Self {
        wire::encode_str(&mut self.0, s);
        self
    }
    fn switch(self, id: u32) -> Self {
        self.op(0xff).varint(id)
    }
    fn bytes(&self) -> &[u8] {
        &self.0
    }
}

/// n = 1, s = "a", child = #1 {x: 7}, items = #2 {"k": #3 {x: 1}},
/// list = #4 [1, 2, 3], kids = #5 [#6 {x: 2}], tags = #7 {"t"}.
fn full_state() -> Msg {
    Msg::default()
        .op(0x80)
        .varint(1)
        .op(0x81)
        .str("a")
        .op(0x82)
        .varint(1)
        .op(0x83)
        .varint(2)
        .op(0x84)
        .varint(4)
        .op(0x85)
        .varint(5)
        .op(0x86)
        .varint(7)
        .switch(1)
        .op(0x80)
        .op(7)
        .switch(2)
        .op(0x80)
        .varint(0)
        .str("k")
        .varint(3)
        .switch(3)
        .op(0x80)
        .op(1)
        .switch(4)
        .op(0x80)
        .varint(0)
        .op(1)
        .op(0x80)
        .varint(1)
        .op(2)
        .op(0x80)
        .varint(2)
        .op(3)
        .switch(5)
        .op(0x80)
        .varint(0)
        .varint(6)
        .switch(6)
        .op(0x80)
        .op(2)
        .switch(7)
        .op(0x80)
        .varint(0)
        .str("t")
}

const FULL_JSON: &str = r#"{"child":{"x":7},"items":{"k":{"x":1}},"kids":[{"x":2}],"list":[1,2,3],"n":1,"s":"a","tags":["t"]}"#;

fn decoder() -> DynamicDecoder {
    let mut d = DynamicDecoder::new(types());
    d.decode(full_state().bytes()).expect("full state");
    assert_eq!(d.to_json(), FULL_JSON);
    d
}

#[track_caller]
fn rejects(msg: &Msg, kind: DecodeErrorKind, offset: usize) {
    let mut d = decoder();
    let refs = d.ref_count();
    let err = d.decode(msg.bytes()).expect_err("must be rejected");
    assert_eq!((err.kind(), err.offset()), (kind, offset), "{err}");
    // Atomic: nothing of the message was applied.
    assert_eq!(d.to_json(), FULL_JSON);
    assert_eq!(d.ref_count(), refs);
    // And the decoder still works.
    d.decode(Msg::default().op(0x80).varint(9).bytes())
        .expect("valid patch after an error");
    assert!(d.to_json().contains(r#""n":9"#));
}

#[test]
fn malformed_primitives() {
    use DecodeErrorKind::*;
    rejects(&Msg::default().op(0x80), UnexpectedEof, 1);
    rejects(&Msg::default().op(0x80).op(0xcd).op(1), UnexpectedEof, 1);
    rejects(&Msg::default().op(0x80).op(0xc1), InvalidNumber(0xc1), 1);
    rejects(
        &Msg::default().op(0x81).op(0x05),
        InvalidStringHeader(0x05),
        1,
    );
    rejects(&Msg::default().op(0x81).op(0xa3).op(b'a'), UnexpectedEof, 1);
    rejects(
        &Msg::default().op(0x81).op(0xa2).op(0xc3).op(0x28),
        InvalidUtf8,
        1,
    );
    rejects(
        &Msg::default()
            .op(0x81)
            .op(0xdb)
            .op(0xff)
            .op(0xff)
            .op(0xff)
            .op(0x7f),
        UnexpectedEof,
        1,
    );
    // A valid prefix does not get applied when a later byte is bad.
    rejects(
        &Msg::default().op(0x80).varint(5).switch(1).op(0x80),
        UnexpectedEof,
        5,
    );
}

#[test]
fn bad_structure() {
    use DecodeErrorKind::*;
    // Undefined field index, unknown refId, SWITCH to a collected ref.
    rejects(&Msg::default().op(0x89).op(0x01), UnknownField(9), 0);
    rejects(&Msg::default().op(0xbf), UnknownField(63), 0);
    rejects(&Msg::default().switch(1).op(0x81), UnknownField(1), 2);
    rejects(
        &Msg::default().switch(99).op(0x80).op(1),
        UnknownRefId(99),
        0,
    );
    rejects(&Msg::default().op(0xff).op(0xc1), InvalidNumber(0xc1), 1);
    rejects(&Msg::default().op(0xff).op(0xff), InvalidIndex, 1);
    // Invalid ops for the structure.
    rejects(
        &Msg::default().switch(2).op(0x0f),
        InvalidOperation(0x0f),
        2,
    );
    rejects(
        &Msg::default().switch(2).op(0x21).varint(3),
        InvalidOperation(0x21),
        2,
    );
    rejects(
        &Msg::default().switch(7).op(0x20).varint(0),
        InvalidOperation(0x20),
        2,
    );
    // A map REPLACE of an index the map never held.
    rejects(
        &Msg::default().switch(2).op(0x00).varint(5).varint(3),
        UnknownMapIndex(5),
        2,
    );
    // ... or deleted earlier in the same message.
    rejects(
        &Msg::default()
            .switch(2)
            .op(0x40)
            .varint(0)
            .op(0x00)
            .varint(0)
            .varint(3),
        UnknownMapIndex(0),
        4,
    );
    // ... or cleared.
    rejects(
        &Msg::default()
            .switch(2)
            .op(0x0a)
            .op(0x00)
            .varint(0)
            .varint(3),
        UnknownMapIndex(0),
        3,
    );
}

#[test]
fn bad_references() {
    use DecodeErrorKind::*;
    // A collection field pointing at the root (crashes the reference).
    rejects(&Msg::default().op(0x83).varint(0), TypeMismatch, 1);
    // A struct field pointing at a collection, a collection field at a
    // struct, a map<Child> field at a set<string>.
    rejects(&Msg::default().op(0x82).varint(2), TypeMismatch, 1);
    rejects(&Msg::default().op(0x84).varint(1), TypeMismatch, 1);
    rejects(&Msg::default().op(0x83).varint(7), TypeMismatch, 1);
    // An array<Child> element pointing at the root State.
    rejects(
        &Msg::default().switch(5).op(0x80).varint(1).varint(0),
        TypeMismatch,
        4,
    );
    // A new child needs an ADD-type operation.
    rejects(&Msg::default().op(0x02).varint(50), UnknownRefId(50), 1);
    rejects(
        &Msg::default().switch(5).op(0x00).varint(0).varint(50),
        UnknownRefId(50),
        4,
    );
    // TYPE_ID: unknown type, unrelated type, or not the type of a known ref.
    rejects(
        &Msg::default().op(0x82).varint(50).op(0xd5).varint(9),
        InvalidTypeId(9),
        2,
    );
    rejects(
        &Msg::default().op(0x82).varint(50).op(0xd5).varint(0),
        InvalidTypeId(0),
        2,
    );
    rejects(
        &Msg::default().op(0xc2).varint(6).op(0xd5).varint(0),
        InvalidTypeId(0),
        2,
    );
}

#[test]
fn tolerated_like_the_reference() {
    let mut d = decoder();
    // DELETE of an index or refId that is not there: ignored (an encoder
    // sends it for a key added and removed in one tick, spec §16).
    d.decode(
        Msg::default()
            .switch(2)
            .op(0x40)
            .varint(42)
            .switch(5)
            .op(0x21)
            .varint(3)
            .bytes(),
    )
    .expect("tolerated");
    assert_eq!(d.to_json(), FULL_JSON);
    // Empty message: no-op.
    d.decode(&[]).expect("empty");
    assert_eq!(d.to_json(), FULL_JSON);
}

#[test]
fn garbage_collection_once_per_message() {
    let mut d = decoder();
    // Move child #3 from items["k"] to the `child` field: DELETE first, then
    // ADD, in one message: it survives.
    d.decode(
        Msg::default()
            .switch(2)
            .op(0x40)
            .varint(0)
            .switch(0)
            .op(0xc2)
            .varint(3)
            .bytes(),
    )
    .expect("move");
    assert_eq!(
        d.to_json(),
        r#"{"child":{"x":1},"items":{},"kids":[{"x":2}],"list":[1,2,3],"n":1,"s":"a","tags":["t"]}"#
    );
    // The replaced child #1 was collected; #3 is alive and addressable.
    assert!(d.node(RefId(1)).is_none());
    d.decode(Msg::default().switch(3).op(0x80).op(5).bytes())
        .expect("update moved child");
    assert!(d.to_json().contains(r#""child":{"x":5}"#));
    let err = d
        .decode(Msg::default().switch(1).op(0x80).op(5).bytes())
        .expect_err("collected");
    assert_eq!(err.kind(), DecodeErrorKind::UnknownRefId(1));
    // Clearing the map of its only (re-added) entry, and removing the field
    // holding the map, cascades.
    let before = d.ref_count();
    d.decode(Msg::default().op(0x43).bytes())
        .expect("delete items");
    assert_eq!(d.ref_count(), before - 1);
    // A child created but never attached is collected at the end of the
    // message... unless it is attached later in the same message.
    let before = d.ref_count();
    d.decode(
        Msg::default()
            .op(0xc2)
            .varint(60)
            .op(0xc2)
            .varint(3)
            .bytes(),
    )
    .expect("transient child");
    assert_eq!(d.ref_count(), before);
    assert!(d.node(RefId(60)).is_none());
}

#[test]
fn array_holes_and_gap_writes() {
    let mut d = decoder();
    // list = [1, 2, 3]: DELETE 0, ADD at 1 (occupied: insert), gap write far
    // past the end, then compaction at the end of the block.
    d.decode(
        Msg::default()
            .switch(4)
            .op(0x40)
            .varint(0)
            .op(0x80)
            .varint(1)
            .op(9)
            .op(0x80)
            .varint(u32::MAX)
            .op(4)
            .op(0x80)
            .varint(4_000_000_000)
            .op(5)
            .bytes(),
    )
    .expect("holes");
    assert!(
        d.to_json().contains(r#""list":[9,2,3,5,4]"#),
        "{}",
        d.to_json()
    );
    d.decode(Msg::default().switch(4).op(0x0f).bytes())
        .expect("reverse");
    assert!(d.to_json().contains(r#""list":[4,5,3,2,9]"#));
}

#[test]
fn cycles_and_deep_chains_stay_bounded() {
    let mut d = decoder();
    // root.me = root: a cycle. Decoding accepts it (a ref is a ref), JSON
    // output stops at the depth limit.
    d.decode(Msg::default().op(0x87).varint(0).bytes())
        .expect("cycle");
    let json = d.to_json();
    assert!(json.contains(r#"{"$ref":0}"#), "{json}");
    // A chain of 10 000 nested States built by one message.
    let mut d = decoder();
    let mut m = Msg::default().op(0x87).varint(100);
    for i in 100..10_100 {
        m = m.switch(i).op(0x87).varint(i + 1);
    }
    d.decode(m.bytes()).expect("chain");
    assert_eq!(d.ref_count(), 8 + 10_001);
    assert!(d.to_json().len() < 10_000);
    // Dropping the head collects the whole chain in one pass.
    d.decode(Msg::default().op(0x47).bytes())
        .expect("drop chain");
    assert_eq!(d.ref_count(), 8);
}

#[test]
fn exponential_sharing_prints_in_bounded_time() {
    // 60 States, each holding the next one in both `me` and `other`: 2^60
    // paths from the root. The JSON budget stops the expansion.
    let mut d = decoder();
    let mut m = Msg::default().op(0x87).varint(200);
    for i in 200..260 {
        m = m.switch(i).op(0x87).varint(i + 1).op(0x88).varint(i + 1);
    }
    d.decode(m.bytes()).expect("diamonds");
    let started = std::time::Instant::now();
    let json = d.to_json();
    assert!(started.elapsed().as_secs() < 5);
    assert!(json.contains(r#"{"$ref":"#));
}

fn vector_patches() -> Vec<(TypeRegistry, Vec<Vec<u8>>)> {
    let dir =
        std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/vectors");
    let mut out = Vec::new();
    for name in [
        "map_of_schemas_with_collections",
        "array_of_schemas",
        "array_mixed_ops_one_tick",
        "polymorphic_children",
        "move_child_between_maps",
        "all_primitives",
    ] {
        let text = std::fs::read_to_string(dir.join(format!("{name}.json"))).expect("vector");
        let v: serde_json::Value = serde_json::from_str(&text).expect("json");
        let hex = |s: &str| -> Vec<u8> {
            (0..s.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
                .collect()
        };
        let types = roomcast_schema::decoder::decode_reflection(
            &hex(v["reflection"].as_str().expect("reflection")),
            roomcast_schema::decoder::ReflectionDialect::Auto,
        )
        .expect("reflection");
        let patches = v["steps"]
            .as_array()
            .expect("steps")
            .iter()
            .map(|s| hex(s["patch"].as_str().expect("patch")))
            .collect();
        out.push((types, patches));
    }
    out
}

#[derive(Debug, Clone)]
enum Mutation {
    Flip(usize, u8),
    Truncate(usize),
    Insert(usize, u8),
    Remove(usize),
}

fn mutate(bytes: &mut Vec<u8>, m: &Mutation) {
    let at = |i: usize, len: usize| if len == 0 { 0 } else { i % len };
    match *m {
        Mutation::Flip(i, x) => {
            if !bytes.is_empty() {
                let i = at(i, bytes.len());
                bytes[i] ^= x.max(1);
            }
        }
        Mutation::Truncate(i) => bytes.truncate(at(i, bytes.len())),
        Mutation::Insert(i, b) => bytes.insert(at(i, bytes.len() + 1), b),
        Mutation::Remove(i) => {
            if !bytes.is_empty() {
                let i = at(i, bytes.len());
                bytes.remove(i);
            }
        }
    }
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(i, x)| Mutation::Flip(i, x)),
        any::<usize>().prop_map(Mutation::Truncate),
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Mutation::Insert(i, b)),
        any::<usize>().prop_map(Mutation::Remove),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// Mutated vector patches: never a panic; on `Err` the state is exactly
    /// the one before the message, and the next valid patch still applies.
    #[test]
    fn mutated_patches_are_atomic(
        which in 0usize..6,
        step in 0usize..16,
        mutations in proptest::collection::vec(mutation(), 1..4),
    ) {
        let all = vector_patches();
        let (types, patches) = &all[which];
        let step = step % patches.len();
        let mut d = DynamicDecoder::new(types.clone());
        for p in &patches[..step] {
            d.decode(p).expect("valid prefix");
        }
        let mut bad = patches[step].clone();
        for m in &mutations {
            mutate(&mut bad, m);
        }
        let before = d.to_json();
        let refs = d.ref_count();
        match d.decode(&bad) {
            Ok(()) => {}
            Err(e) => {
                prop_assert!(e.offset() <= bad.len());
                prop_assert_eq!(d.to_json(), before);
                prop_assert_eq!(d.ref_count(), refs);
                // The genuine patch still applies after a rejected one.
                d.decode(&patches[step]).expect("genuine patch after a rejected one");
            }
        }
    }
}

#[test]
fn legacy_array_semantics() {
    // list = [1, 2, 3]; ADD at occupied index 1, then at occupied index 0.
    let patch = Msg::default()
        .switch(4)
        .op(0x80)
        .varint(1)
        .op(9)
        .op(0x80)
        .varint(0)
        .op(8);
    let mut modern = decoder();
    modern.decode(patch.bytes()).expect("modern");
    assert!(
        modern.to_json().contains(r#""list":[8,1,9,2,3]"#),
        "{}",
        modern.to_json()
    );
    let mut legacy = decoder();
    legacy.set_dialect(roomcast_schema::Dialect::Legacy);
    legacy.decode(patch.bytes()).expect("legacy");
    // 3.x / 4.x: overwrite at 1, insert only at 0.
    assert!(
        legacy.to_json().contains(r#""list":[8,1,9,3]"#),
        "{}",
        legacy.to_json()
    );
}

/// Primitive fields of existing structures are written while the message
/// is parsed: an error after some of them puts every old value back
/// (numbers, strings, deletes, a field written twice, several structs),
/// and callbacks registered later see the old values as the previous ones.
#[test]
fn field_writes_before_an_error_are_undone() {
    use std::sync::{Arc, Mutex};
    use DecodeErrorKind::*;
    let writes = || {
        Msg::default()
            .op(0x80)
            .varint(5) // n = 5
            .op(0x81)
            .str("zz") // s = "zz"
            .op(0x80)
            .varint(6) // n = 6 (twice)
            .op(0x41) // DELETE s
            .switch(1)
            .op(0x80)
            .op(9) // child.x = 9
            .switch(3)
            .op(0x80)
            .op(4) // items["k"].x = 4
            .switch(0)
            .op(0x81)
            .str("a longer string") // s again
    };
    // Failing at the end, in the middle of a block, and on a bad value.
    let bad = writes().switch(99);
    let offset = bad.bytes().len() - 2;
    rejects(&bad, UnknownRefId(99), offset);
    let bad = writes().op(0x80);
    let offset = bad.bytes().len();
    rejects(&bad, UnexpectedEof, offset);
    let bad = writes().switch(1).op(0x80).op(1).op(0x85);
    let offset = bad.bytes().len() - 1;
    rejects(&bad, UnknownField(5), offset);

    // Structures the message creates (made while parsing, fields written)
    // are gone again: `other` = new State #20 with n = 3 and a new map #21
    // with an entry #22, then an unknown refId.
    let bad = writes()
        .op(0x88)
        .varint(20)
        .switch(20)
        .op(0x80)
        .varint(3)
        .op(0x83)
        .varint(21)
        .switch(21)
        .op(0x80)
        .varint(0)
        .str("new")
        .varint(22)
        .switch(22)
        .op(0x80)
        .op(5)
        .switch(99);
    let offset = bad.bytes().len() - 2;
    rejects(&bad, UnknownRefId(99), offset);

    // Callbacks: none fire for the rejected message; a later one sees the
    // values from before it as previous values.
    let mut d = decoder();
    d.decode(writes().switch(99).bytes()).expect_err("rejected");
    assert_eq!(d.to_json(), FULL_JSON);
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&seen);
    d.callbacks()
        .listen(RefId(1), "x", move |_cx, v, previous| {
            let f = |v: Option<&roomcast_schema::decoder::Value>| v.and_then(|v| v.as_f64());
            sink.lock().unwrap().push((f(v), f(previous)));
        })
        .expect("listen");
    // With callbacks registered, a rejected message fires nothing.
    d.decode(writes().switch(99).bytes()).expect_err("rejected");
    assert_eq!(d.to_json(), FULL_JSON);
    assert!(seen.lock().unwrap().is_empty());
    d.decode(Msg::default().switch(1).op(0x80).op(8).bytes())
        .expect("valid");
    assert_eq!(*seen.lock().unwrap(), vec![(Some(8.0), Some(7.0))]);
}
