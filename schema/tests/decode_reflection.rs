//! Reflection decoding beyond the vectors: the legacy 3.x/4.x form
//! (`"set:string"`), dialect checks, and hostile descriptions.

use roomcast_schema::decoder::{decode_reflection, ReflectionDialect};
use roomcast_schema::types::{CollectionKind, ElementType, FieldType, Primitive, TypeId};
use roomcast_schema::wire::{self, DecodeErrorKind};

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

// `State { tags: {set: "string"}, nums: ["number"], items: {map: Item},
// main: Base, hero: Hero }`, `Item { id: uint16 }`, `Base { x: number }`,
// `Hero extends Base { name: string }`, encoded by `Reflection.encode` of
// @colyseus/schema 3.0.76 and 5.0.34 respectively.
const LEGACY: &str = "8001ff0180000280010980020c80030fff0282038000ff03800004800105800206800307800408ff0480a47461677382ff81aa7365743a737472696e67ff0580a46e756d7382ff81ac61727261793a6e756d626572ff0680a56974656d73820181a36d6170ff0780a46d61696e820281a3726566ff0880a46865726f820381a3726566ff09820a8001ff0a80000bff0b80a2696481a675696e743136ff0c820d8002ff0d80000eff0e80a17881a66e756d626572ff0f821080038102ff10800011ff1180a46e616d6581a6737472696e67";
const MODERN: &str = "8001ff0180000280010980020c80030fff0280008203ff03800004800105800206800307800408ff0480a47461677381a373657482ff83a6737472696e67ff0580a46e756d7381a5617272617982ff83a66e756d626572ff0680a56974656d7381a36d61708201ff0780a46d61696e81a37265668202ff0880a46865726f81a37265668203ff098001820aff0a80000bff0b80a2696481a675696e743136ff0c8002820dff0d80000eff0e80a17881a66e756d626572ff0f800381028210ff10800011ff1180a46e616d6581a6737472696e67";

#[test]
fn legacy_and_modern_forms_describe_the_same_types() {
    let legacy = decode_reflection(&hex(LEGACY), ReflectionDialect::Legacy).expect("legacy");
    let auto = decode_reflection(&hex(LEGACY), ReflectionDialect::Auto).expect("legacy, auto");
    let modern = decode_reflection(&hex(MODERN), ReflectionDialect::V5).expect("modern");
    assert_eq!(legacy, modern);
    assert_eq!(auto, modern);
    let root = modern.fields(TypeId(0));
    assert_eq!(
        root[0].ty,
        FieldType::Collection(
            CollectionKind::Set,
            ElementType::Primitive(Primitive::String)
        )
    );
    assert_eq!(
        root[1].ty,
        FieldType::Collection(
            CollectionKind::Array,
            ElementType::Primitive(Primitive::Number)
        )
    );
    // Hero (type 3) extends Base (type 2): inherited `x` first.
    assert_eq!(modern.get(TypeId(3)).extends, Some(TypeId(2)));
    let hero: Vec<&str> = modern
        .fields(TypeId(3))
        .iter()
        .map(|f| f.name.as_str())
        .collect();
    assert_eq!(hero, ["x", "name"]);
}

#[test]
fn dialects_refuse_each_other_where_the_reference_does() {
    // A 5.x client crashes on the colon form; a 3.x client on field 3.
    let err = decode_reflection(&hex(LEGACY), ReflectionDialect::V5).expect_err("colon form");
    assert!(matches!(err.kind(), DecodeErrorKind::Malformed(_)), "{err}");
    let err =
        decode_reflection(&hex(MODERN), ReflectionDialect::Legacy).expect_err("childPrimitive");
    assert_eq!(err.kind(), DecodeErrorKind::UnknownField(3));
}

/// `(name, type, referencedType, childPrimitive)` of a reflection field.
type FieldSpec<'a> = (&'a str, &'a str, Option<i32>, Option<&'a str>);
/// `(id, extends, fields)` of a reflection type.
type TypeSpec<'a> = (u32, Option<i32>, &'a [FieldSpec<'a>]);

/// Reflection bytes for hand-written type descriptions.
fn reflection(types: &[TypeSpec<'_>], root: Option<u32>) -> Vec<u8> {
    let mut out = Vec::new();
    let mut next = 2u32;
    wire::encode_u8(&mut out, 0x80);
    wire::encode_varint(&mut out, 1);
    if let Some(r) = root {
        wire::encode_u8(&mut out, 0x81);
        wire::encode_int(&mut out, r as i32);
    }
    // types array #1
    let mut blocks = Vec::new();
    let mut array = vec![0xff, 0x01];
    for (i, &(id, extends, fields)) in types.iter().enumerate() {
        let tref = next;
        let fref = next + 1;
        next += 2;
        array.push(0x80);
        wire::encode_varint(&mut array, i as u32);
        wire::encode_varint(&mut array, tref);
        let mut t = vec![0xff];
        wire::encode_varint(&mut t, tref);
        t.push(0x80);
        wire::encode_int(&mut t, id as i32);
        if let Some(e) = extends {
            t.push(0x81);
            wire::encode_int(&mut t, e);
        }
        t.push(0x82);
        wire::encode_varint(&mut t, fref);
        blocks.push(t);
        let mut fl = vec![0xff];
        wire::encode_varint(&mut fl, fref);
        let mut field_blocks = Vec::new();
        for (j, &(name, ty, referenced, child)) in fields.iter().enumerate() {
            let r = next;
            next += 1;
            fl.push(0x80);
            wire::encode_varint(&mut fl, j as u32);
            wire::encode_varint(&mut fl, r);
            let mut f = vec![0xff];
            wire::encode_varint(&mut f, r);
            f.push(0x80);
            wire::encode_str(&mut f, name);
            f.push(0x81);
            wire::encode_str(&mut f, ty);
            if let Some(rt) = referenced {
                f.push(0x82);
                wire::encode_int(&mut f, rt);
            }
            if let Some(c) = child {
                f.push(0x83);
                wire::encode_str(&mut f, c);
            }
            field_blocks.push(f);
        }
        blocks.push(fl);
        blocks.extend(field_blocks);
    }
    out.extend(array);
    for b in blocks {
        out.extend(b);
    }
    out
}

#[track_caller]
fn refused(bytes: &[u8], kind: DecodeErrorKind) {
    let err = decode_reflection(bytes, ReflectionDialect::Auto).expect_err("must be refused");
    assert_eq!(err.kind(), kind, "{err}");
}

#[test]
fn hand_built_reflection_round_trip() {
    let bytes = reflection(
        &[
            (
                0,
                None,
                &[("n", "number", None, None), ("kids", "map", Some(1), None)],
            ),
            (1, None, &[("tags", "array", Some(-1), Some("string"))]),
        ],
        None,
    );
    let types = decode_reflection(&bytes, ReflectionDialect::V5).expect("valid");
    assert_eq!(types.len(), 2);
    assert_eq!(
        types.fields(TypeId(0))[1].ty,
        FieldType::Collection(CollectionKind::Map, ElementType::Schema(TypeId(1)))
    );
}

#[test]
fn hostile_descriptions() {
    use DecodeErrorKind::*;
    let m = |what: &'static str| Malformed(what);
    refused(&[], m("reflection describes no type"));
    refused(&reflection(&[(1, None, &[])], None), InvalidTypeId(1));
    refused(
        &reflection(&[(0, None, &[]), (0, None, &[])], None),
        m("reflection type id defined twice"),
    );
    refused(
        &reflection(&[(0, Some(1), &[]), (1, None, &[])], None),
        m("reflection type listed before its parent"),
    );
    refused(
        &reflection(&[(0, Some(0), &[])], None),
        m("reflection type listed before its parent"),
    );
    refused(
        &reflection(&[(0, None, &[("a", "ref", Some(7), None)])], None),
        InvalidTypeId(7),
    );
    refused(
        &reflection(&[(0, None, &[("a", "ref", None, None)])], None),
        m("`ref` field without referenced type"),
    );
    refused(
        &reflection(&[(0, None, &[("a", "int128", None, None)])], None),
        m("unknown primitive type name"),
    );
    refused(
        &reflection(&[(0, None, &[("a", "number", Some(0), None)])], None),
        m("primitive field with a referenced type"),
    );
    refused(
        &reflection(&[(0, None, &[("a", "map", Some(-1), None)])], None),
        m("collection of primitives without childPrimitive"),
    );
    refused(
        &reflection(
            &[(
                0,
                None,
                &[("a", "number", None, None), ("a", "string", None, None)],
            )],
            None,
        ),
        m("duplicate field name in a reflection type"),
    );
    refused(&reflection(&[(0, None, &[])], Some(3)), InvalidTypeId(3));
    refused(
        &reflection(&[(0, None, &[("a", "quantized", None, None)])], None),
        m("quantized field without its descriptor"),
    );
    // 64 fields.
    let names: Vec<String> = (0..64).map(|i| format!("f{i}")).collect();
    let fields: Vec<FieldSpec<'_>> = names
        .iter()
        .map(|n| (n.as_str(), "number", None, None))
        .collect();
    refused(
        &reflection(&[(0, None, &fields)], None),
        LimitExceeded("more than 63 fields in a type"),
    );
    // A 100-deep inheritance chain.
    let chain: Vec<TypeSpec<'_>> = (0..100)
        .map(|i| (i, if i == 0 { None } else { Some(i as i32 - 1) }, &[][..]))
        .collect();
    refused(
        &reflection(&chain, None),
        LimitExceeded("inheritance deeper than 64"),
    );
}

/// Reflection and full state of @colyseus/schema 5.0.34 for
/// `schema({ yaw: t.quantized({min: 0, max: 2π, mode: "wrap"}),
/// pitch: t.quantized({min: -1.5, max: 1.5}), throttle:
/// t.quantized({min: 0, max: 1, bits: 8}), hp: t.uint8() })` with
/// `yaw = 7, pitch = 0.3, throttle = 0.5, hp = 3`.
#[test]
fn quantized_fields_of_a_node_server() {
    use roomcast_schema::decoder::DynamicDecoder;
    let types = decode_reflection(
        &hex("8001ff01800002ff0280008203ff0380000480010680020880030aff0480a379617781a97175616e74697a65648405ff0580000000000000000081182d4454fb21194082108301ff0680a5706974636881a97175616e74697a65648407ff0780000000000000f8bf81000000000000f83f82108300ff0880a87468726f74746c6581a97175616e74697a65648409ff0980000000000000000081000000000000f03f82088300ff0a80a2687081a575696e7438"),
        ReflectionDialect::V5,
    )
    .expect("quantized reflection");
    let fields = types.fields(types.root());
    let FieldType::Quantized(yaw) = fields[0].ty else {
        panic!("{:?}", fields[0].ty)
    };
    assert!(yaw.wraps() && yaw.bits() == 16 && yaw.max() == std::f64::consts::TAU);
    let FieldType::Quantized(throttle) = fields[2].ty else {
        panic!("{:?}", fields[2].ty)
    };
    assert!(!throttle.wraps() && throttle.bits() == 8);
    let mut decoder = DynamicDecoder::new(types);
    decoder
        .decode(&hex("80351d81989982808303"))
        .expect("full state");
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&decoder.to_json()).unwrap(),
        serde_json::json!({
            "yaw": 0.716_848_396_938_808_6,
            "pitch": 0.299_981_688_894_314_54,
            "throttle": 0.501_960_784_313_725_5,
            "hp": 3
        })
    );
}
