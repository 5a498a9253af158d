//! Derived structs of every field kind (plus inheritance, polymorphic enums
//! and a dynamic state), mutated through scripted scenarios:
//! after each patch the real `@colyseus/schema` 5.0.34 decoder (built from
//! our Reflection) following the patch stream, and a fresh one decoding
//! `encode_all()`, hold exactly the Rust state, without any warning; so
//! does a 3.0.76 client fed the legacy patches of the same ticks.

use roomcast_schema::dynamic::{DynStruct, DynValue, DynValueMut, PrimValue};
use roomcast_schema::types::{
    CollectionKind, NamedField, NamedFieldType, NamedType, Primitive, TypeRegistry,
};
use roomcast_schema::{
    encode_reflection, ArraySchema, CollectionSchema, Dialect, Encoder, MapSchema, Schema,
    SetSchema,
};
use roomcast_tests::node::{NodeDecoder, SchemaVersion};
use roomcast_tests::state_json;
use roomcast_tests::state_json::{canon, check_state_json, dyn_state_json, Follower, Harness};

/// Every scenario runs with a 5.0.34 client (modern patches) and a 3.0.76
/// client (legacy patches) on the same encoder.
const BOTH: &[SchemaVersion] = &[SchemaVersion::V5, SchemaVersion::V3];

fn ok<T>(r: Result<T, String>) -> T {
    r.unwrap_or_else(|e| panic!("{e}"))
}

// ----- primitives ------------------------------------------------------------

#[derive(Schema, Default, Debug)]
struct Prims {
    s: String,
    b: bool,
    i8v: i8,
    u8v: u8,
    i16v: i16,
    u16v: u16,
    i32v: i32,
    u32v: u32,
    i64v: i64,
    u64v: u64,
    f32v: f32,
    f64v: f64,
    #[schema(number)]
    n_f64: f64,
    #[schema(number)]
    n_i32: i32,
    #[schema(number)]
    n_f32: f32,
    #[schema(number)]
    n_u64: u64,
    #[schema(float32)]
    f32_of_f64: f64,
    #[schema(float64)]
    f64_of_f32: f32,
    #[schema(int64)]
    i64_of_i32: i32,
    #[schema(uint8)]
    u8_of_u32: u32,
    #[schema(int16)]
    i16_of_f64: f64,
    #[schema(uint32)]
    u32_of_u8: u8,
    #[schema(bigint64)]
    big: i64,
    #[schema(biguint64)]
    ubig: u64,
    #[schema(rename = "renamed")]
    original: u16,
}

state_json!(Prims {
    s,
    b,
    i8v,
    u8v,
    i16v,
    u16v,
    i32v,
    u32v,
    i64v,
    u64v,
    f32v,
    f64v,
    n_f64: Number,
    n_i32: Number,
    n_f32: Number,
    n_u64: Number,
    f32_of_f64: Float32,
    f64_of_f32: Float64,
    i64_of_i32: Int64,
    u8_of_u32: Uint8,
    i16_of_f64: Int16,
    u32_of_u8: Uint32,
    big: BigInt64,
    ubig: BigUint64,
    original as "renamed",
});

#[test]
fn every_primitive_with_default_and_attribute_wire_types() {
    check_state_json::<Prims>();
    let mut node = NodeDecoder::shared();
    let mut h = ok(Harness::with_clients(&mut node, Prims::default(), BOTH));
    ok(h.tick(&mut node, "extremes", |mut s| {
        s.set_s("héllo 😀👍🏽".into());
        s.set_b(true);
        s.set_i8v(i8::MIN);
        s.set_u8v(u8::MAX);
        s.set_i16v(i16::MIN);
        s.set_u16v(u16::MAX);
        s.set_i32v(i32::MIN);
        s.set_u32v(u32::MAX);
        s.set_i64v(-(1 << 53) + 1);
        s.set_u64v((1 << 53) - 1);
        s.set_f32v(0.1);
        s.set_f64v(-2.25);
        s.set_n_f64(1.1);
        s.set_n_i32(-129);
        s.set_n_f32(0.5);
        s.set_n_u64(4_294_967_296);
        s.set_f32_of_f64(0.1);
        s.set_f64_of_f32(1.5);
        s.set_i64_of_i32(-64);
        s.set_u8_of_u32(300);
        s.set_i16_of_f64(-16.7);
        s.set_u32_of_u8(200);
        s.set_big(i64::MIN);
        s.set_ubig(u64::MAX);
        s.set_original(7);
    }));
    ok(h.tick(&mut node, "non-finite and signed zeros", |mut s| {
        s.set_f32v(f32::NAN);
        s.set_f64v(-0.0);
        s.set_n_f64(f64::NAN);
        s.set_n_f32(f32::INFINITY);
        s.set_f32_of_f64(f64::NEG_INFINITY);
        s.set_f64_of_f32(-0.0);
        s.set_u64v(1 << 60);
        s.set_i64v(i64::MIN);
        s.set_n_i32(i32::MIN);
    }));
    ok(h.tick(&mut node, "number float paths", |mut s| {
        s.set_n_f64(1e40);
        s.set_n_u64(2_147_483_648);
        s.set_n_i32(i32::MAX);
        s.set_n_f32(-1.0e-7);
        s.set_s(String::new());
        s.set_f32v(f32::MIN_POSITIVE);
        s.set_f64v(f64::MAX);
    }));
    ok(h.tick(&mut node, "long strings", |mut s| {
        s.set_s("x".repeat(32));
        s.set_s("é".repeat(150));
    }));
    let before = h.expected();
    let patch = ok(h.tick(&mut node, "same values again", |mut s| {
        s.set_b(true);
        s.set_i8v(i8::MIN);
        s.set_original(7);
    }));
    assert!(
        patch.is_empty(),
        "re-assigning equal values sent {patch:x?}"
    );
    assert_eq!(before, h.expected());
    ok(h.tick(&mut node, "back to defaults", |mut s| {
        s.set_s(String::new());
        s.set_b(false);
        s.set_i8v(0);
        s.set_u64v(0);
        s.set_f32v(0.0);
        s.set_n_f64(0.0);
        s.set_big(0);
        s.set_ubig(0);
        s.set_original(0);
    }));
    h.close(&mut node);
}

// ----- quantized (5.x) ---------------------------------------------------------

#[derive(Schema, Default, Debug)]
struct Aim {
    #[schema(quantized(min = 0.0, max = std::f64::consts::TAU, wrap))]
    yaw: f64,
    #[schema(quantized(min = -1.0, max = 1.0, bits = 8))]
    axis: f64,
    #[schema(quantized(min = 0, max = 1000, bits = 32))]
    fine: f64,
    #[schema(quantized(min = -100, max = 100))]
    small: f64,
    hp: u8,
}

state_json!(Aim {
    yaw: Float64,
    axis: Float64,
    fine: Float64,
    small: Float64,
    hp,
});

/// The 5.x decoder, built from our Reflection, reads the floats the server
/// holds (the setters snap them); schema 3 has no quantized type.
#[test]
fn quantized_fields_decode_to_the_servers_floats() {
    check_state_json::<Aim>();
    let mut node = NodeDecoder::shared();
    let mut h = ok(Harness::with_clients(
        &mut node,
        Aim::default(),
        &[SchemaVersion::V5],
    ));
    ok(h.tick(&mut node, "in range", |mut s| {
        s.set_yaw(1.0);
        s.set_axis(0.0);
        s.set_fine(333.333);
        s.set_small(-12.5);
        s.set_hp(1);
    }));
    ok(h.tick(&mut node, "wrapping, clamping, NaN", |mut s| {
        s.set_yaw(-100.0);
        s.set_axis(7.0);
        s.set_fine(f64::NAN);
        s.set_small(f64::INFINITY);
    }));
    let patch = ok(h.tick(&mut node, "the same steps again", |mut s| {
        s.set_yaw(-100.0);
        s.set_axis(2.0);
    }));
    assert!(patch.is_empty(), "values on the same step sent {patch:x?}");
    ok(h.tick(&mut node, "back to zero", |mut s| {
        s.set_yaw(0.0);
        s.set_axis(-0.0);
        s.set_fine(0.0);
        s.set_small(0.0);
    }));
    h.close(&mut node);
}

// ----- options -----------------------------------------------------------------

#[derive(Schema, Default, Debug)]
struct Leaf {
    #[schema(number)]
    value: f64,
    label: String,
}
state_json!(Leaf {
    value: Number,
    label
});

#[derive(Schema, Default, Debug)]
struct Opts {
    os: Option<String>,
    ob: Option<bool>,
    #[schema(number)]
    on: Option<f64>,
    of32: Option<f32>,
    oi64: Option<i64>,
    #[schema(uint8)]
    ou8: Option<u32>,
    leaf: Option<Leaf>,
    tail: u8,
}
state_json!(Opts {
    os,
    ob,
    on: Number,
    of32,
    oi64,
    ou8: Uint8,
    leaf,
    tail
});

fn leaf(value: f64, label: &str) -> Leaf {
    Leaf {
        value,
        label: label.into(),
    }
}

#[test]
fn option_fields_none_is_delete() {
    check_state_json::<Opts>();
    check_state_json::<Leaf>();
    let mut node = NodeDecoder::shared();
    let mut h = ok(Harness::with_clients(&mut node, Opts::default(), BOTH));
    ok(h.tick(&mut node, "all some", |mut s| {
        s.set_os(Some(String::new()));
        s.set_ob(Some(false));
        s.set_on(Some(2.5));
        s.set_of32(Some(-0.0));
        s.set_oi64(Some(-1));
        s.set_ou8(Some(511));
        s.set_leaf(Some(leaf(1.0, "a")));
    }));
    ok(h.tick(&mut node, "some to none", |mut s| {
        s.set_os(None);
        s.set_ob(None);
        s.set_on(Some(3.0));
        s.set_leaf(None);
        s.set_tail(1);
    }));
    ok(h.tick(
        &mut node,
        "none then some, some then none in one tick",
        |mut s| {
            s.set_os(Some("x".into()));
            s.set_os(None);
            s.set_os(Some("y".into()));
            s.set_on(None);
            s.set_on(Some(4.0));
            s.set_on(None);
            s.set_ob(Some(true));
            s.set_ob(None);
        },
    ));
    ok(h.tick(&mut node, "child struct option", |mut s| {
        s.set_leaf(Some(leaf(0.1, "first")));
        s.leaf_mut().expect("some").set_label("edited".into());
    }));
    ok(h.tick(&mut node, "edit child", |mut s| {
        let mut l = s.leaf_mut().expect("some");
        l.set_value(f64::INFINITY);
        l.set_label(String::new());
    }));
    ok(h.tick(&mut node, "replace child", |mut s| {
        s.set_leaf(Some(leaf(-5.0, "second")));
    }));
    ok(
        h.tick(&mut node, "replace child twice, then edit", |mut s| {
            s.set_leaf(Some(leaf(6.0, "third")));
            s.set_leaf(Some(leaf(7.0, "fourth")));
            s.leaf_mut().expect("some").set_value(8.0);
        }),
    );
    ok(h.tick(&mut node, "drop child then add a new one", |mut s| {
        s.set_leaf(None);
        s.set_leaf(Some(leaf(9.0, "fifth")));
    }));
    ok(h.tick(&mut node, "add then drop", |mut s| {
        s.set_leaf(None);
    }));
    ok(h.tick(&mut node, "set and unset in one tick", |mut s| {
        s.set_leaf(Some(leaf(10.0, "ghost")));
        s.set_leaf(None);
        s.set_oi64(None);
        s.set_of32(Some(f32::NAN));
    }));
    h.close(&mut node);
}

// ----- nesting -----------------------------------------------------------------

#[derive(Schema, Default, Debug)]
struct Middle {
    leaf: Leaf,
    m: u8,
    leaves: ArraySchema<Leaf>,
}
state_json!(Middle { leaf, m, leaves });

#[derive(Schema, Default, Debug)]
struct Top {
    middle: Middle,
    opt: Option<Middle>,
}
state_json!(Top { middle, opt });

#[derive(Schema, Default, Debug)]
struct Nested {
    top: Top,
    name: String,
    spare: Option<Top>,
}
state_json!(Nested { top, name, spare });

fn middle(m: u8, leaves: &[(f64, &str)]) -> Middle {
    Middle {
        leaf: leaf(f64::from(m), "leaf"),
        m,
        leaves: leaves.iter().map(|&(v, l)| leaf(v, l)).collect(),
    }
}

#[test]
fn nested_structs_three_deep() {
    for check in [
        check_state_json::<Nested>,
        check_state_json::<Top>,
        check_state_json::<Middle>,
    ] {
        check();
    }
    let mut node = NodeDecoder::shared();
    let mut h = ok(Harness::new(
        &mut node,
        Nested::default(),
        SchemaVersion::V5,
    ));
    ok(h.tick(&mut node, "deep edit", |mut s| {
        let mut top = s.top_mut();
        let mut mid = top.middle_mut();
        mid.leaf_mut().set_value(10.0);
        mid.leaf_mut().set_label("deep".into());
        mid.set_m(1);
        s.set_name("root".into());
    }));
    ok(h.tick(&mut node, "leaves", |mut s| {
        let mut top = s.top_mut();
        let mut mid = top.middle_mut();
        let mut leaves = mid.leaves_mut();
        leaves.push(leaf(1.0, "a"));
        leaves.push(leaf(2.0, "b"));
        leaves.get_mut(0).expect("a").set_label("A".into());
    }));
    ok(h.tick(&mut node, "replace the middle", |mut s| {
        s.top_mut().set_middle(middle(2, &[(3.0, "c")]));
    }));
    ok(
        h.tick(&mut node, "replace and edit the new middle", |mut s| {
            let mut top = s.top_mut();
            top.set_middle(middle(3, &[(4.0, "d"), (5.0, "e")]));
            top.middle_mut().leaves_mut().shift();
            top.middle_mut().leaf_mut().set_label("fresh".into());
        }),
    );
    ok(h.tick(&mut node, "optional middle", |mut s| {
        let mut top = s.top_mut();
        top.set_opt(Some(middle(4, &[(6.0, "f")])));
        top.opt_mut()
            .expect("some")
            .leaves_mut()
            .push(leaf(7.0, "g"));
    }));
    ok(h.tick(&mut node, "edit optional middle", |mut s| {
        let mut top = s.top_mut();
        let mut opt = top.opt_mut().expect("some");
        opt.leaves_mut().get_mut(1).expect("g").set_value(0.3);
        opt.leaf_mut().set_value(-1.5);
    }));
    ok(h.tick(&mut node, "spare top with everything", |mut s| {
        s.set_spare(Some(Top {
            middle: middle(5, &[(8.0, "h")]),
            opt: Some(middle(6, &[])),
        }));
    }));
    ok(h.tick(&mut node, "replace the top", |mut s| {
        s.set_top(Top {
            middle: middle(7, &[(9.0, "i"), (10.0, "j")]),
            opt: None,
        });
    }));
    ok(h.tick(&mut node, "drop spare and opt", |mut s| {
        s.set_spare(None);
        s.top_mut().set_opt(None);
        s.top_mut().middle_mut().set_m(8);
    }));
    h.close(&mut node);
}

// ----- collections -------------------------------------------------------------

#[derive(Schema, Default, Debug)]
struct Item {
    id: u16,
    name: String,
    tags: SetSchema<String>,
    inv: ArraySchema<u16>,
    child: Option<Leaf>,
}
state_json!(Item {
    id,
    name,
    tags,
    inv,
    child
});

#[derive(Schema, Default, Debug)]
struct Colls {
    map_p: MapSchema<i32>,
    map_str: MapSchema<String>,
    map_s: MapSchema<Item>,
    arr_p: ArraySchema<String>,
    arr_f: ArraySchema<f64>,
    arr_b: ArraySchema<bool>,
    arr_s: ArraySchema<Item>,
    set_p: SetSchema<u16>,
    set_s: SetSchema<Item>,
    coll_p: CollectionSchema<f32>,
    coll_s: CollectionSchema<Item>,
    coll_big: CollectionSchema<i64>,
}
state_json!(Colls {
    map_p,
    map_str,
    map_s,
    arr_p,
    arr_f,
    arr_b,
    arr_s,
    set_p,
    set_s,
    coll_p,
    coll_s,
    coll_big
});

fn item(id: u16, name: &str) -> Item {
    Item {
        id,
        name: name.into(),
        tags: [format!("t{id}")].into_iter().collect(),
        inv: [id, id + 1].into_iter().collect(),
        child: id.is_multiple_of(2).then(|| leaf(f64::from(id), "kid")),
    }
}

#[test]
fn maps_of_primitives_and_structs() {
    check_state_json::<Colls>();
    check_state_json::<Item>();
    let mut node = NodeDecoder::shared();
    let mut h = ok(Harness::with_clients(&mut node, Colls::default(), BOTH));
    ok(h.tick(&mut node, "fill", |mut s| {
        let mut m = s.map_p_mut();
        m.insert("alice", 1);
        m.insert("bob", 2);
        m.insert("", -1);
        m.insert("ü-🙂", 300);
        let mut m = s.map_str_mut();
        m.insert("k", "v".into());
        m.insert("empty", String::new());
        let mut m = s.map_s_mut();
        m.insert("p1", item(1, "one"));
        m.insert("p2", item(2, "two"));
    }));
    ok(h.tick(&mut node, "replace, delete, add", |mut s| {
        let mut m = s.map_p_mut();
        m.insert("alice", 10);
        m.remove("bob");
        m.insert("carol", 3);
        m.insert("carol", 4);
        let mut m = s.map_s_mut();
        m.insert("p2", item(3, "three"));
        m.get_mut("p1").expect("p1").set_name("ONE".into());
        m.get_mut("p1").expect("p1").inv_mut().unshift(0);
        m.get_mut("p1").expect("p1").tags_mut().add("new".into());
    }));
    ok(h.tick(&mut node, "delete and re-add in one tick", |mut s| {
        let mut m = s.map_p_mut();
        m.remove("alice");
        m.insert("alice", 7);
        m.insert("bob", 5);
        m.remove("bob");
        let mut m = s.map_s_mut();
        let p1 = m.remove("p1").expect("p1");
        m.insert("p4", p1);
        m.remove("p2");
        m.insert("p2", item(5, "five"));
    }));
    ok(h.tick(&mut node, "re-add later keeps working", |mut s| {
        s.map_p_mut().insert("bob", 6);
        s.map_s_mut().insert("p1", item(6, "six"));
        s.map_s_mut().for_each_mut(|_, mut p| {
            let id = p.id;
            p.set_id(id + 100);
        });
    }));
    ok(h.tick(&mut node, "retain", |mut s| {
        s.map_p_mut().retain(|k, v| k.len() < 4 && *v > 0);
        s.map_s_mut().retain(|k, _| k != "p4");
    }));
    ok(h.tick(&mut node, "clear and refill", |mut s| {
        let mut m = s.map_p_mut();
        m.clear();
        m.insert("dave", 4);
        let mut m = s.map_s_mut();
        m.clear();
        m.insert("q", item(8, "eight"));
        s.map_str_mut().clear();
    }));
    ok(h.tick(&mut node, "clear only", |mut s| {
        s.map_s_mut().clear();
        s.map_p_mut().insert("e", 5);
    }));
    h.close(&mut node);
}

#[test]
fn arrays_of_primitives_and_structs() {
    let mut node = NodeDecoder::shared();
    let mut h = ok(Harness::with_clients(&mut node, Colls::default(), BOTH));
    ok(h.tick(&mut node, "fill", |mut s| {
        let mut a = s.arr_p_mut();
        for v in ["a", "b", "c", "d"] {
            a.push(v.into());
        }
        let mut a = s.arr_f_mut();
        a.push(1.0);
        a.push(f64::NAN);
        a.push(-0.0);
        s.arr_b_mut().push(true);
        let mut a = s.arr_s_mut();
        for i in 0..4 {
            a.push(item(i, "it"));
        }
    }));
    ok(h.tick(&mut node, "shift+push", |mut s| {
        s.arr_p_mut().shift();
        s.arr_p_mut().push("e".into());
        s.arr_s_mut().shift();
        s.arr_s_mut().push(item(10, "ten"));
    }));
    ok(h.tick(&mut node, "pop+unshift", |mut s| {
        s.arr_p_mut().pop();
        s.arr_p_mut().unshift("z".into());
        s.arr_s_mut().pop();
        s.arr_s_mut().unshift(item(11, "eleven"));
        s.arr_b_mut().unshift(true);
    }));
    ok(h.tick(&mut node, "set and splice", |mut s| {
        let mut a = s.arr_p_mut();
        a.set(0, "Z".into());
        a.splice(1, 1, ["x".into(), "y".into()]);
        let mut a = s.arr_s_mut();
        a.set(1, item(12, "twelve"));
        a.splice(0, 1, [item(13, "thirteen")]);
        a.get_mut(2).expect("2").inv_mut().push(99);
    }));
    ok(h.tick(&mut node, "insert/remove in the middle", |mut s| {
        let mut a = s.arr_p_mut();
        a.insert(2, "mid".into());
        a.remove(0);
        let mut a = s.arr_s_mut();
        a.insert(1, item(14, "fourteen"));
        a.remove(3);
    }));
    ok(h.tick(&mut node, "reverse alone", |mut s| {
        s.arr_p_mut().reverse();
        s.arr_s_mut().reverse();
        s.arr_f_mut().reverse();
    }));
    ok(h.tick(&mut node, "reverse with other ops", |mut s| {
        s.arr_p_mut().push("q".into());
        s.arr_p_mut().reverse();
        s.arr_s_mut().reverse();
        s.arr_s_mut()
            .get_mut(0)
            .expect("0")
            .set_name("first".into());
    }));
    ok(h.tick(&mut node, "sort", |mut s| {
        s.arr_p_mut().sort_by(|a, b| b.cmp(a));
        s.arr_s_mut().sort_by(|a, b| a.id.cmp(&b.id));
        s.arr_f_mut().sort_by(f64::total_cmp);
    }));
    ok(h.tick(&mut node, "move an element", |mut s| {
        let mut a = s.arr_s_mut();
        let x = a.remove(0);
        a.push(x);
        let mut a = s.arr_p_mut();
        let x = a.remove(1);
        a.unshift(x);
    }));
    ok(h.tick(&mut node, "edit every struct", |mut s| {
        s.arr_s_mut().for_each_mut(|mut it| {
            let id = it.id;
            it.set_id(id * 2);
            it.set_child(Some(leaf(f64::from(id), "c")));
        });
    }));
    ok(h.tick(&mut node, "clear then push", |mut s| {
        s.arr_p_mut().clear();
        s.arr_p_mut().push("n1".into());
        s.arr_p_mut().push("n2".into());
        s.arr_s_mut().clear();
        s.arr_s_mut().push(item(20, "twenty"));
        s.arr_f_mut().clear();
    }));
    ok(h.tick(&mut node, "empty everything", |mut s| {
        s.arr_p_mut().clear();
        s.arr_s_mut().pop();
        s.arr_b_mut().clear();
    }));
    h.close(&mut node);
}

#[test]
fn sets_and_collections_of_primitives_and_structs() {
    let mut node = NodeDecoder::shared();
    let mut h = ok(Harness::with_clients(&mut node, Colls::default(), BOTH));
    ok(h.tick(&mut node, "fill", |mut s| {
        let mut x = s.set_p_mut();
        x.add(1);
        x.add(2);
        x.add(1);
        let mut x = s.set_s_mut();
        x.add(item(1, "one"));
        x.add(item(2, "two"));
        let mut x = s.coll_p_mut();
        x.add(5.0);
        x.add(5.0);
        x.add(0.1);
        let mut x = s.coll_s_mut();
        x.add(item(3, "three"));
        let mut x = s.coll_big_mut();
        x.add(i64::MIN + 1);
        x.add(1 << 40);
    }));
    ok(h.tick(&mut node, "remove and add", |mut s| {
        s.set_p_mut().remove(&1);
        s.set_p_mut().add(3);
        s.set_s_mut().remove_where(|it| it.id == 1);
        s.set_s_mut().add(item(4, "four"));
        s.coll_p_mut().remove(&5.0);
        s.coll_p_mut().add(f32::NEG_INFINITY);
        s.coll_s_mut().add(item(5, "five"));
    }));
    ok(
        h.tick(&mut node, "remove and re-add the same value", |mut s| {
            s.set_p_mut().remove(&2);
            s.set_p_mut().add(2);
            s.coll_p_mut().remove(&0.1);
            s.coll_p_mut().add(0.1);
        }),
    );
    ok(h.tick(&mut node, "edit struct elements", |mut s| {
        s.set_s_mut().for_each_mut(|mut it| {
            it.inv_mut().reverse();
            it.tags_mut().add("edited".into());
        });
        s.coll_s_mut().for_each_mut(|mut it| {
            let n = format!("{}!", it.name);
            it.set_name(n);
        });
    }));
    ok(h.tick(
        &mut node,
        "move struct between set and collection",
        |mut s| {
            let it = s.set_s_mut().remove_where(|it| it.id == 2).expect("2");
            s.coll_s_mut().add(it);
        },
    ));
    ok(h.tick(&mut node, "clear then add", |mut s| {
        s.set_p_mut().clear();
        s.set_p_mut().add(9);
        s.coll_s_mut().clear();
        s.coll_s_mut().add(item(6, "six"));
        s.set_s_mut().add(item(7, "seven"));
        s.set_s_mut().clear();
    }));
    ok(h.tick(&mut node, "clear only", |mut s| {
        s.coll_p_mut().clear();
        s.coll_big_mut().clear();
    }));
    h.close(&mut node);
}

// ----- dynamic state: inheritance, polymorphism, `number` collections ---------

fn prim(name: &str, p: Primitive) -> NamedField {
    NamedField {
        name: name.into(),
        ty: NamedFieldType::Primitive(p),
    }
}

fn dyn_types() -> TypeRegistry {
    let ty = |name: &str, extends: Option<&str>, fields: Vec<NamedField>| NamedType {
        name: name.into(),
        extends: extends.map(Into::into),
        fields,
    };
    let field = |name: &str, ty: NamedFieldType| NamedField {
        name: name.into(),
        ty,
    };
    TypeRegistry::from_named(
        "State",
        &[
            ty(
                "State",
                None,
                vec![
                    field("main", NamedFieldType::Schema("Entity".into())),
                    field(
                        "all",
                        NamedFieldType::SchemaCollection(CollectionKind::Map, "Entity".into()),
                    ),
                    field(
                        "list",
                        NamedFieldType::SchemaCollection(CollectionKind::Array, "Entity".into()),
                    ),
                    field(
                        "nums",
                        NamedFieldType::PrimitiveCollection(CollectionKind::Map, Primitive::Number),
                    ),
                    field(
                        "floats",
                        NamedFieldType::PrimitiveCollection(
                            CollectionKind::Array,
                            Primitive::Float32,
                        ),
                    ),
                    prim("n", Primitive::Number),
                ],
            ),
            ty("Entity", None, vec![prim("x", Primitive::Number)]),
            ty(
                "Hero",
                Some("Entity"),
                vec![prim("name", Primitive::String)],
            ),
            ty(
                "Monster",
                Some("Entity"),
                vec![prim("hp", Primitive::Uint8)],
            ),
        ],
    )
    .expect("valid types")
}

fn entity(types: &TypeRegistry, kind: &str, x: f64) -> DynValue {
    let id = types.by_name(kind).expect("type");
    let mut s = DynStruct::new(types, id);
    s.set(
        0,
        Some(DynValue::Prim(Primitive::Number, PrimValue::Num(x))),
    );
    match kind {
        "Hero" => s.set(
            1,
            Some(DynValue::Prim(
                Primitive::String,
                PrimValue::Str(format!("hero{x}")),
            )),
        ),
        "Monster" => s.set(
            1,
            Some(DynValue::Prim(Primitive::Uint8, PrimValue::Num(x * 10.0))),
        ),
        _ => {}
    }
    if kind != "Entity" {
        s.set_type_tag(Some(id.0));
    }
    DynValue::Struct(Box::new(s))
}

fn number(v: f64) -> DynValue {
    DynValue::Prim(Primitive::Number, PrimValue::Num(v))
}

#[test]
fn dynamic_state_with_subtypes_and_number_collections() {
    let types = dyn_types();
    let mut node = NodeDecoder::shared();
    let mut root = DynStruct::new(&types, types.root());
    for (i, f) in types.fields(types.root()).iter().enumerate() {
        root.set(i, roomcast_schema::dynamic::empty_value(f.ty));
    }
    let mut enc = Encoder::new(root);
    let reflection = encode_reflection(&types, Dialect::Modern);
    let follower = ok(Follower::open(&mut node, reflection, SchemaVersion::V5));
    let mut check = |enc: &mut Encoder<DynStruct>, what: &str| {
        let patch = enc.encode_patch().to_vec();
        let expected = dyn_state_json(&types, enc.state());
        ok(follower.patch(&mut node, what, &patch, &expected));
        let full = enc.encode_all().to_vec();
        ok(follower.joiner(&mut node, what, &full, &expected));
    };
    check(&mut enc, "initial");
    {
        let mut r = enc.root_mut();
        r.set(0, Some(entity(&types, "Hero", 1.0)));
        r.set(5, Some(number(1.1)));
        if let Some(DynValueMut::Map(mut m)) = r.child(1) {
            m.insert("h", entity(&types, "Hero", 2.0));
            m.insert("m", entity(&types, "Monster", 3.0));
            m.insert("e", entity(&types, "Entity", 4.0));
        }
        if let Some(DynValueMut::Array(mut a)) = r.child(2) {
            a.push(entity(&types, "Monster", 5.0));
            a.push(entity(&types, "Entity", 6.0));
        }
        if let Some(DynValueMut::Map(mut m)) = r.child(3) {
            m.insert("nan", number(f64::NAN));
            m.insert("inf", number(f64::INFINITY));
            m.insert("lossy", number(0.1));
            m.insert("big", number(4_294_967_295.0));
            m.insert("neg", number(-2_147_483_649.0));
        }
        if let Some(DynValueMut::Array(mut a)) = r.child(4) {
            a.push(DynValue::Prim(Primitive::Float32, PrimValue::Num(0.1)));
            a.push(DynValue::Prim(Primitive::Float32, PrimValue::Num(1e39)));
        }
    }
    check(&mut enc, "subtypes and lossy numbers");
    {
        let mut r = enc.root_mut();
        r.set(0, Some(entity(&types, "Monster", 7.0)));
        if let Some(DynValueMut::Map(mut m)) = r.child(1) {
            m.insert("h", entity(&types, "Entity", 8.0));
            if let Some(DynValueMut::Struct(mut s)) = m.child("m") {
                s.set(
                    1,
                    Some(DynValue::Prim(Primitive::Uint8, PrimValue::Num(257.0))),
                );
            }
        }
        if let Some(DynValueMut::Array(mut a)) = r.child(2) {
            a.unshift(entity(&types, "Hero", 9.0));
            a.set(2, entity(&types, "Hero", 10.0));
        }
        if let Some(DynValueMut::Map(mut m)) = r.child(3) {
            m.insert("nan", number(-0.0));
            m.remove("inf");
        }
    }
    check(&mut enc, "replace with other subtypes");
    {
        let mut r = enc.root_mut();
        r.set(0, None);
        r.set(5, None);
        if let Some(DynValueMut::Array(mut a)) = r.child(2) {
            a.reverse();
        }
    }
    check(&mut enc, "delete root fields");
    follower.close(&mut node);
}

#[test]
fn the_comparison_is_strict() {
    let mut node = NodeDecoder::shared();
    let mut enc = Encoder::new(Opts::default());
    let types = enc.types().expect("types");
    let follower = ok(Follower::open(
        &mut node,
        encode_reflection(&types, Dialect::Modern),
        SchemaVersion::V5,
    ));
    enc.state_mut().set_of32(Some(0.1));
    enc.state_mut().set_leaf(Some(leaf(1.0, "a")));
    let patch = enc.encode_patch().to_vec();
    let right = serde_json::json!({
        "of32": f64::from(0.1f32),
        "leaf": {"value": 1, "label": "a"},
        "tail": 0,
    });
    assert_eq!(
        canon(&right),
        canon(&roomcast_tests::state_json::StateJson::state_json(
            enc.state()
        ))
    );
    let wrong = [
        serde_json::json!({"of32": 0.1, "leaf": {"value": 1, "label": "a"}, "tail": 0}),
        serde_json::json!({"of32": f64::from(0.1f32), "leaf": {"value": 1}, "tail": 0}),
        serde_json::json!({"of32": f64::from(0.1f32), "leaf": {"value": 1, "label": "a"}, "tail": 0, "os": ""}),
        serde_json::json!({"of32": f64::from(0.1f32), "leaf": {"value": 1, "label": "a"}, "tail": 1}),
    ];
    let full = enc.encode_all().to_vec();
    for w in &wrong {
        assert!(
            follower.joiner(&mut node, "wrong", &full, w).is_err(),
            "{w} accepted"
        );
    }
    ok(follower.patch(&mut node, "right", &patch, &right));
    ok(follower.joiner(&mut node, "right", &full, &right));
    follower.close(&mut node);
}

// ----- inheritance and polymorphic children (typed) -----------------------------

#[derive(Schema, Default, Debug)]
struct Entity {
    #[schema(number)]
    x: f64,
    tags: ArraySchema<String>,
}
state_json!(Entity { x: Number, tags });

#[derive(Schema, Default, Debug)]
struct Hero {
    #[schema(extends)]
    base: Entity,
    name: String,
}
state_json!(Hero { ..base, name });

#[derive(Schema, Default, Debug)]
struct Monster {
    #[schema(extends)]
    base: Entity,
    hp: u8,
    loot: Option<Leaf>,
}
state_json!(Monster { ..base, hp, loot });

#[derive(Schema, Debug)]
enum AnyEntity {
    Entity(Entity),
    Hero(Hero),
    Monster(Monster),
}
roomcast_tests::state_json_enum!(AnyEntity {
    Entity,
    Hero,
    Monster
});

#[derive(Schema, Default, Debug)]
struct World {
    #[schema(extends)]
    base: Opts,
    main: Option<AnyEntity>,
    all: MapSchema<AnyEntity>,
    list: ArraySchema<AnyEntity>,
    bag: SetSchema<AnyEntity>,
}
state_json!(World { ..base, main, all, list, bag });

fn hero(x: f64, name: &str) -> AnyEntity {
    AnyEntity::Hero(Hero {
        base: Entity {
            x,
            tags: [name.to_owned()].into_iter().collect(),
        },
        name: name.into(),
    })
}

fn monster(x: f64, hp: u8) -> AnyEntity {
    AnyEntity::Monster(Monster {
        base: Entity {
            x,
            tags: ArraySchema::new(),
        },
        hp,
        loot: (hp > 50).then(|| leaf(f64::from(hp), "gold")),
    })
}

#[test]
fn inherited_and_polymorphic_typed_state() {
    for check in [
        check_state_json::<World>,
        check_state_json::<Hero>,
        check_state_json::<Monster>,
        check_state_json::<Entity>,
    ] {
        check();
    }
    let mut node = NodeDecoder::shared();
    let mut h = ok(Harness::with_clients(&mut node, World::default(), BOTH));
    ok(h.tick(&mut node, "subtypes everywhere", |mut s| {
        s.base_mut().set_tail(3);
        s.base_mut().set_os(Some("inherited".into()));
        s.set_main(Some(hero(1.0, "Link")));
        s.all_mut().insert("m", monster(2.0, 100));
        s.all_mut()
            .insert("e", AnyEntity::Entity(Entity::default()));
        s.list_mut().push(monster(3.0, 7));
        s.list_mut().push(hero(4.0, "Zelda"));
        s.bag_mut().add(monster(5.0, 60));
    }));
    ok(
        h.tick(&mut node, "edit through the variant views", |mut s| {
            if let Some(AnyEntityMut::Monster(mut m)) = s.all_mut().get_mut("m") {
                m.set_hp(99);
                m.base_mut().set_x(2.5);
                m.base_mut().tags_mut().push("boss".into());
                m.set_loot(None);
            }
            if let Some(AnyEntityMut::Hero(mut hr)) = s.list_mut().get_mut(1) {
                hr.set_name("Sheik".into());
            }
        }),
    );
    ok(h.tick(&mut node, "replace with other subtypes", |mut s| {
        s.set_main(Some(AnyEntity::Entity(Entity {
            x: 6.0,
            tags: ArraySchema::new(),
        })));
        s.all_mut().insert("e", hero(7.0, "Impa"));
        s.list_mut().unshift(monster(8.0, 1));
        s.list_mut().remove(2);
        s.bag_mut().clear();
        s.bag_mut().add(hero(9.0, "Navi"));
    }));
    ok(h.tick(&mut node, "move between collections", |mut s| {
        let x = s.all_mut().remove("m").expect("m");
        s.list_mut().push(x);
        s.set_main(None);
    }));
    h.close(&mut node);
}

// ----- regressions: encoder bugs found by interop_proptest (since fixed) ---------

#[derive(Schema, Default, Debug)]
struct Holder {
    items: ArraySchema<Item>,
    bag: Option<Middle>,
}
state_json!(Holder { items, bag });

/// `set_bag(None); set_bag(Some(new))` in one tick must replace the
/// client's instance (DELETE_AND_ADD, or DELETE then ADD): a plain ADD
/// (what was sent) leaves the old instance alive on the client (the 5.x decoder only
/// releases the previous child on DELETE-type ops), and once its refIds
/// are reused a new child resolves to the stale instance.
#[test]
fn option_struct_cleared_and_set_in_one_tick() {
    check_state_json::<Holder>();
    let mut node = NodeDecoder::shared();
    let mut h = ok(Harness::with_clients(&mut node, Holder::default(), BOTH));
    ok(h.tick(&mut node, "attach", |mut s| {
        s.set_bag(Some(middle(1, &[(1.0, "a")])));
    }));
    let patch = ok(h.tick(&mut node, "unset and set again", |mut s| {
        s.set_bag(None);
        s.set_bag(Some(middle(2, &[])));
    }));
    assert_ne!(
        patch[0] & 0x40,
        0,
        "field 1 needs a DELETE-type op (DELETE_AND_ADD): {patch:02x?}"
    );
    ok(
        h.tick(&mut node, "new children reuse the freed refIds", |mut s| {
            s.items_mut().push(item(1, "one"));
            s.items_mut().push(item(2, "two"));
        }),
    );
    h.close(&mut node);
}

/// The same through a dynamic state: `DynMut::set(i, None)` then
/// `set(i, Some(new struct))` in one tick.
#[test]
fn dynamic_struct_field_cleared_and_set_in_one_tick() {
    let types = dyn_types();
    let mut node = NodeDecoder::shared();
    let mut root = DynStruct::new(&types, types.root());
    for (i, f) in types.fields(types.root()).iter().enumerate() {
        root.set(i, roomcast_schema::dynamic::empty_value(f.ty));
    }
    let mut enc = Encoder::new(root);
    let follower = ok(Follower::open(
        &mut node,
        encode_reflection(&types, Dialect::Modern),
        SchemaVersion::V5,
    ));
    let mut check = |enc: &mut Encoder<DynStruct>, what: &str| {
        let patch = enc.encode_patch().to_vec();
        let expected = dyn_state_json(&types, enc.state());
        ok(follower.patch(&mut node, what, &patch, &expected));
        let full = enc.encode_all().to_vec();
        ok(follower.joiner(&mut node, what, &full, &expected));
        patch
    };
    check(&mut enc, "initial");
    enc.root_mut().set(0, Some(entity(&types, "Hero", 1.0)));
    check(&mut enc, "attach");
    enc.root_mut().set(0, None);
    enc.root_mut().set(0, Some(entity(&types, "Monster", 2.0)));
    let patch = check(&mut enc, "unset and set again");
    assert_ne!(patch[0] & 0x40, 0, "needs a DELETE-type op: {patch:02x?}");
    if let Some(DynValueMut::Array(mut a)) = enc.root_mut().child(2) {
        a.push(entity(&types, "Entity", 3.0));
        a.push(entity(&types, "Entity", 4.0));
    }
    check(&mut enc, "new children reuse the freed refIds");
    follower.close(&mut node);
}

/// A key added, removed, re-added (DELETE_AND_ADD, keeping its index) and
/// then replaced in one tick must still carry its key: the replace turned
/// the op into a REPLACE of an index the client never saw, and the 5.x
/// client stored the value under the key `"undefined"`.
#[test]
fn map_key_readded_then_replaced_in_one_tick() {
    let mut node = NodeDecoder::shared();
    let mut h = ok(Harness::with_clients(&mut node, Colls::default(), BOTH));
    ok(h.tick(&mut node, "add, remove, re-add, replace", |mut s| {
        let mut m = s.map_p_mut();
        m.insert("c", 0);
        m.remove("c");
        m.insert("c", 0);
        m.insert("c", 1);
        let mut m = s.map_s_mut();
        m.insert("p", item(1, "one"));
        let p = m.remove("p").expect("p");
        m.insert("p", p);
        m.insert("p", item(2, "two"));
    }));
    ok(h.tick(&mut node, "a known key, same sequence", |mut s| {
        let mut m = s.map_p_mut();
        m.remove("c");
        m.insert("c", 2);
        m.insert("c", 3);
    }));
    h.close(&mut node);
}

/// Two reverses cancel out, also when an element inserted in between is
/// removed again in the same tick: `[a, b, c]`, `push(x); reverse();
/// reverse(); pop()` must send nothing (or anything equivalent), not a lone
/// REVERSE (`0f`, what was sent) that leaves the client with `[c, b, a]`.
#[test]
fn reverse_twice_around_a_cancelled_insert() {
    let mut node = NodeDecoder::shared();
    let initial = Colls {
        arr_p: ["a", "b", "c"].iter().map(|s| (*s).to_owned()).collect(),
        arr_s: (1..=3).map(|i| item(i, "it")).collect(),
        ..Colls::default()
    };
    let mut h = ok(Harness::with_clients(&mut node, initial, BOTH));
    ok(h.tick(&mut node, "push, reverse, reverse, pop", |mut s| {
        let mut a = s.arr_p_mut();
        a.push("x".into());
        a.reverse();
        a.reverse();
        a.pop();
    }));
    ok(
        h.tick(&mut node, "unshift, reverse, reverse, shift", |mut s| {
            let mut a = s.arr_s_mut();
            a.unshift(item(9, "new"));
            a.reverse();
            a.reverse();
            a.shift();
        }),
    );
    h.close(&mut node);
}

/// JavaScript decoders skip a positional write whose value `===` the one at
/// that index, and `-0 === 0`: when an array of floats swaps a `-0` and a
/// `0` (sort) or refills a `-0` slot with `0` (splice), a REPLACE or
/// DELETE_AND_ADD leaves the client with the other zero (`[0, -0]` sorted
/// is sent as `00 00 <-0> | 00 01 <0>` and stays `[0, -0]`).
#[test]
fn negative_zero_moved_in_a_float_array() {
    let mut node = NodeDecoder::shared();
    let initial = Colls {
        arr_f: [0.0, -0.0, 1.0].into_iter().collect(),
        ..Colls::default()
    };
    let mut h = ok(Harness::with_clients(&mut node, initial, BOTH));
    ok(h.tick(&mut node, "sort", |mut s| {
        s.arr_f_mut().sort_by(f64::total_cmp);
    }));
    ok(h.tick(&mut node, "refill -0 with 0", |mut s| {
        s.arr_f_mut().splice(0, 1, [0.0]);
    }));
    h.close(&mut node);
}
