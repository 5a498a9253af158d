//! Derived structs produce the reference's bytes: inheritance
//! (`#[schema(extends)]`), polymorphic children (a derived enum, TYPE_ID),
//! wire types by attribute and optional fields (vectors
//! `polymorphic_children`, `inherited_root`, `nested_3_deep`, `empty_and_noop`).

use roomcast_schema::{
    encode_reflection, ArraySchema, Dialect, Encoder, EncoderOptions, MapSchema, Schema,
};

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[derive(Schema, Default)]
struct Entity {
    #[schema(number)]
    x: f64,
}

#[derive(Schema, Default)]
struct Hero {
    #[schema(extends)]
    base: Entity,
    name: String,
}

#[derive(Schema, Default)]
struct Monster {
    #[schema(extends)]
    base: Entity,
    hp: u8,
}

#[derive(Schema)]
enum AnyEntity {
    Entity(Entity),
    Hero(Hero),
    Monster(Monster),
}

#[derive(Schema, Default)]
struct PolyState {
    main: Option<AnyEntity>,
    all: MapSchema<AnyEntity>,
    list: ArraySchema<AnyEntity>,
}

fn reference_numbering<T: Schema>(state: T) -> Encoder<T> {
    Encoder::with_options(state, EncoderOptions::default().reuse_ref_ids(false))
}

#[test]
fn polymorphic_children_match_the_reference() {
    let mut enc = reference_numbering(PolyState::default());
    let types = enc.types().unwrap();
    let vector: serde_json::Value = serde_json::from_str(include_str!(
        "../../tests/fixtures/vectors/polymorphic_children.json"
    ))
    .unwrap();
    assert_eq!(
        hex(&encode_reflection(&types, Dialect::Modern)),
        vector["reflection"].as_str().unwrap(),
        "reflection"
    );
    assert_eq!(hex(enc.encode_patch()), "81018202");

    enc.state_mut().set_main(Some(AnyEntity::Hero(Hero {
        base: Entity { x: 1.0 },
        name: "Link".into(),
    })));
    assert_eq!(hex(enc.encode_patch()), "8003d502ff03800181a44c696e6b");

    enc.state_mut()
        .set_main(Some(AnyEntity::Entity(Entity { x: 2.0 })));
    assert_eq!(hex(enc.encode_patch()), "c004ff048002");

    let mut s = enc.state_mut();
    let mut all = s.all_mut();
    all.insert(
        "m",
        AnyEntity::Monster(Monster {
            base: Entity { x: 3.0 },
            hp: 100,
        }),
    );
    all.insert(
        "h",
        AnyEntity::Hero(Hero {
            base: Entity { x: 4.0 },
            name: "Zelda".into(),
        }),
    );
    assert_eq!(
        hex(enc.encode_patch()),
        "ff018000a16d05d5038001a16806d502ff0580038164ff06800481a55a656c6461"
    );

    enc.state_mut().list_mut().push(AnyEntity::Monster(Monster {
        base: Entity { x: 5.0 },
        hp: 7,
    }));
    assert_eq!(hex(enc.encode_patch()), "ff02800007d503ff0780058107");

    if let Some(AnyEntityMut::Monster(mut m)) = enc.state_mut().all_mut().get_mut("m") {
        m.set_hp(99);
    } else {
        panic!("m is a monster");
    }
    assert_eq!(hex(enc.encode_patch()), "ff058163");
    assert_eq!(
        hex(enc.encode_all()),
        "800481018202ff048002ff018000a16d05d5038001a16806d502ff0580038163ff06800481a55a656c6461ff02800007d503ff0780058107"
    );
}

#[derive(Schema, Default)]
struct BaseState {
    #[schema(number)]
    turn: f64,
}

#[derive(Schema, Default)]
struct GameState {
    #[schema(extends)]
    base: BaseState,
    phase: String,
}

#[test]
fn inherited_fields_come_first_and_share_the_ref() {
    let mut enc = reference_numbering(GameState::default());
    let mut s = enc.state_mut();
    s.base_mut().set_turn(3.0);
    s.set_phase("play".into());
    assert_eq!(hex(enc.encode_patch()), "800381a4706c6179");
    let types = enc.types().unwrap();
    assert_eq!(types.get(types.root()).extends.map(|t| t.0), Some(1));
}

#[derive(Schema, Default)]
struct Noop {
    #[schema(number)]
    a: Option<f64>,
    b: Option<String>,
}

#[test]
fn optional_fields_delete_even_if_never_sent() {
    let mut enc = reference_numbering(Noop::default());
    assert_eq!(hex(enc.encode_patch()), "");
    enc.state_mut().set_a(Some(1.0));
    assert_eq!(hex(enc.encode_patch()), "8001");
    enc.state_mut().set_a(Some(1.0));
    assert_eq!(hex(enc.encode_patch()), "");
    let mut s = enc.state_mut();
    s.set_b(Some("tmp".into()));
    s.set_b(None);
    assert_eq!(hex(enc.encode_patch()), "41");
    assert_eq!(hex(enc.encode_all()), "8001");
}

mod reexport {
    pub(crate) use roomcast_schema as inner;
}

#[derive(Schema, Default)]
#[schema(crate = "reexport::inner")]
struct ViaReexport {
    n: u8,
}

#[test]
fn derive_through_a_reexport() {
    let mut enc = Encoder::new(ViaReexport { n: 7 });
    assert_eq!(hex(enc.encode_patch()), "8007");
}

/// `t.quantized` fields: the bytes and the Reflection of
/// @colyseus/schema 5.0.34 for the same state
/// (`schema({ yaw: t.quantized({min: 0, max: 2π, mode: "wrap"}),
/// pitch: t.quantized({min: -1.5, max: 1.5}), throttle:
/// t.quantized({min: 0, max: 1, bits: 8}), hp: t.uint8() })`).
#[derive(Schema, Default, Debug)]
struct Aim {
    #[schema(quantized(min = 0.0, max = std::f64::consts::TAU, wrap))]
    yaw: f32,
    #[schema(quantized(min = -1.5, max = 1.5))]
    pitch: f64,
    #[schema(quantized(min = 0, max = 1, bits = 8))]
    throttle: f64,
    hp: u8,
}

#[test]
fn quantized_fields_match_the_reference() {
    let mut enc = Encoder::new(Aim::default());
    {
        let mut s = enc.state_mut();
        s.set_yaw(7.0);
        s.set_pitch(0.3);
        s.set_throttle(0.5);
        s.set_hp(3);
    }
    // The state holds what clients decode.
    assert_eq!(enc.state().yaw, 0.716_848_4_f32);
    assert_eq!(enc.state().pitch, 0.299_981_688_894_314_54);
    assert_eq!(enc.state().throttle, 0.501_960_784_313_725_5);
    let expected = [0x80, 0x35, 0x1d, 0x81, 0x98, 0x99, 0x82, 0x80, 0x83, 0x03];
    assert_eq!(enc.encode_all(), expected);
    assert_eq!(enc.encode_patch(), expected);
    // A set that lands on the same step sends nothing.
    enc.state_mut().set_throttle(0.5001);
    assert!(enc.encode_patch().is_empty());
    let reflection = encode_reflection(&enc.types().unwrap(), Dialect::Modern);
    let node = "8001ff01800002ff0280008203ff0380000480010680020880030aff0480a379617781a97175616e74697a65648405ff0580000000000000000081182d4454fb21194082108301ff0680a5706974636881a97175616e74697a65648407ff0780000000000000f8bf81000000000000f83f82108300ff0880a87468726f74746c6581a97175616e74697a65648409ff0980000000000000000081000000000000f03f82088300ff0a80a2687081a575696e7438";
    assert_eq!(hex(&reflection), node);
}

/// Our own decoder reads quantized fields back to the server's values.
#[derive(Schema, Default, Debug, PartialEq)]
#[schema(decode)]
struct Gauge {
    #[schema(quantized(min = -1, max = 1, bits = 8))]
    axis: f32,
    #[schema(quantized(min = 0.0, max = 360.0, bits = 32, wrap))]
    heading: f64,
    label: String,
}

#[test]
fn quantized_fields_decode_to_the_servers_values() {
    let mut enc = Encoder::new(Gauge::default());
    let mut dec = roomcast_schema::decoder::Decoder::<Gauge>::new().unwrap();
    dec.decode(enc.encode_all()).unwrap();
    for (axis, heading) in [(0.3, 725.5), (-7.0, -0.25), (0.0, 359.999_999_9)] {
        {
            let mut s = enc.state_mut();
            s.set_axis(axis);
            s.set_heading(heading);
            s.set_label(format!("{axis}"));
        }
        dec.decode(enc.encode_patch()).unwrap();
        assert_eq!(dec.state(), enc.state());
    }
}

/// Schema 3 has no quantized type: the legacy Reflection gives the wire
/// integer, so those clients decode the integer.
#[test]
fn legacy_reflection_gives_quantized_fields_as_integers() {
    use roomcast_schema::decoder::{decode_reflection, ReflectionDialect};
    use roomcast_schema::types::{FieldType, Primitive};
    let enc = Encoder::new(Aim::default());
    let legacy = encode_reflection(&enc.types().unwrap(), Dialect::Legacy);
    let types = decode_reflection(&legacy, ReflectionDialect::Legacy).unwrap();
    let tys: Vec<FieldType> = types.fields(types.root()).iter().map(|f| f.ty).collect();
    assert_eq!(
        tys,
        [
            FieldType::Primitive(Primitive::Uint16),
            FieldType::Primitive(Primitive::Uint16),
            FieldType::Primitive(Primitive::Uint8),
            FieldType::Primitive(Primitive::Uint8),
        ]
    );
}
