//! The typed decoder (messages written straight into `T`) against the
//! dynamic decoder, which shares none of its code but the parse pass, and
//! against our encoder's state, over random mutation sequences: maps,
//! sets, collections and arrays of structs and primitives, nested structs,
//! instances replaced, released and cleared, array elements added,
//! inserted, removed (by index and by refId), replaced, sorted and
//! reversed (children re-added at other positions by refId: moves). The
//! dynamic tree built from `T` on demand must equal the dynamic decoder's;
//! hand-made messages of either dialect check the callbacks too.

use std::sync::{Arc, Mutex};

use proptest::prelude::*;
use roomcast_schema::decoder::{At, Cx, Decoder, DynamicDecoder, RefId, Value};
use roomcast_schema::{
    registry_of, ArraySchema, CollectionSchema, Dialect, Encoder, MapSchema, Schema, SetSchema,
};

/// A state as JSON, in the shape of the client's `toJSON()` (the
/// `Serialize` of schema types), to compare decoded and encoded states.
trait ToJson {
    fn to_json(&self) -> serde_json::Value;
}

impl<T: serde::Serialize> ToJson for T {
    fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).expect("JSON")
    }
}

#[derive(Schema, Default, Debug)]
#[schema(decode)]
struct Pos {
    #[schema(number)]
    x: Option<f64>,
    #[schema(number)]
    y: Option<f64>,
}

#[derive(Schema, Default, Debug)]
#[schema(decode)]
struct Item {
    name: String,
    count: u8,
}

#[derive(Schema, Default, Debug)]
#[schema(decode)]
struct Unit {
    name: Option<String>,
    hp: u8,
    pos: Option<Pos>,
    bag: Option<MapSchema<Item>>,
}

#[derive(Schema, Default, Debug)]
#[schema(decode)]
struct World {
    units: Option<MapSchema<Unit>>,
    tags: Option<SetSchema<String>>,
    marks: Option<CollectionSchema<u8>>,
    boss: Option<Unit>,
    turn: u8,
    title: String,
    queue: Option<ArraySchema<u8>>,
    squad: Option<ArraySchema<Item>>,
}

#[derive(Debug, Clone)]
enum Op {
    AddUnit(u8, u8, bool, Vec<(u8, u8)>),
    RemoveUnit(u8),
    Hp(u8, u8),
    Name(u8, Option<u8>),
    Move(u8, i16, i16),
    DropPos(u8),
    Put(u8, u8, u8),
    Take(u8, u8),
    EmptyBag(u8),
    Tag(u8, bool),
    Mark(u8, bool),
    Boss(Option<u8>),
    /// The unit under a key becomes the boss, the boss takes its key (both
    /// moved with their refIds: a move between parents each way).
    Promote(u8),
    BossHp(u8),
    Turn(u8),
    Title(u8),
    ClearUnits,
    ClearTags,
    ClearMarks,
    Units(bool),
    /// An operation on the array of primitives `queue`.
    Queue(ArrayOp),
    /// An operation on the array of structs `squad`.
    Squad(ArrayOp),
}

#[derive(Debug, Clone)]
enum ArrayOp {
    Push(u8),
    Pop,
    Shift,
    Unshift(u8),
    Insert(u8, u8),
    Remove(u8),
    Set(u8, u8),
    /// `squad`: an element's field (`queue`: a set).
    Count(u8, u8),
    Reverse,
    Sort,
    Clear,
    Present(bool),
}

fn array_op() -> impl Strategy<Value = ArrayOp> {
    prop_oneof![
        3 => any::<u8>().prop_map(ArrayOp::Push),
        1 => Just(ArrayOp::Pop),
        1 => Just(ArrayOp::Shift),
        1 => any::<u8>().prop_map(ArrayOp::Unshift),
        1 => (0u8..6, any::<u8>()).prop_map(|(i, v)| ArrayOp::Insert(i, v)),
        1 => (0u8..6).prop_map(ArrayOp::Remove),
        1 => (0u8..6, any::<u8>()).prop_map(|(i, v)| ArrayOp::Set(i, v)),
        2 => (0u8..6, any::<u8>()).prop_map(|(i, v)| ArrayOp::Count(i, v)),
        1 => Just(ArrayOp::Reverse),
        1 => Just(ArrayOp::Sort),
        1 => Just(ArrayOp::Clear),
        1 => any::<bool>().prop_map(ArrayOp::Present),
    ]
}

fn key(k: u8) -> String {
    format!("u{}", k % 6)
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        1 => (
            0u8..6,
            any::<u8>(),
            any::<bool>(),
            proptest::collection::vec((0u8..4, any::<u8>()), 0..3)
        )
            .prop_map(|(k, hp, pos, bag)| Op::AddUnit(k, hp, pos, bag)),
        1 => (0u8..6).prop_map(Op::RemoveUnit),
        1 => (0u8..6, any::<u8>()).prop_map(|(k, hp)| Op::Hp(k, hp)),
        1 => (0u8..6, proptest::option::of(0u8..40)).prop_map(|(k, n)| Op::Name(k, n)),
        1 => (0u8..6, any::<i16>(), any::<i16>()).prop_map(|(k, x, y)| Op::Move(k, x, y)),
        1 => (0u8..6).prop_map(Op::DropPos),
        1 => (0u8..6, 0u8..4, any::<u8>()).prop_map(|(k, i, c)| Op::Put(k, i, c)),
        1 => (0u8..6, 0u8..4).prop_map(|(k, i)| Op::Take(k, i)),
        1 => (0u8..6).prop_map(Op::EmptyBag),
        1 => (0u8..5, any::<bool>()).prop_map(|(t, add)| Op::Tag(t, add)),
        1 => (0u8..5, any::<bool>()).prop_map(|(m, add)| Op::Mark(m, add)),
        1 => proptest::option::of(any::<u8>()).prop_map(Op::Boss),
        1 => (0u8..6).prop_map(Op::Promote),
        1 => any::<u8>().prop_map(Op::BossHp),
        1 => any::<u8>().prop_map(Op::Turn),
        1 => (0u8..40).prop_map(Op::Title),
        1 => Just(Op::ClearUnits),
        1 => Just(Op::ClearTags),
        1 => Just(Op::ClearMarks),
        1 => any::<bool>().prop_map(Op::Units),
        3 => array_op().prop_map(Op::Queue),
        3 => array_op().prop_map(Op::Squad),
    ]
}

/// Short strings, and some longer than a string kept inline.
fn text(n: u8) -> String {
    if n.is_multiple_of(3) {
        format!("a name long enough to be on the heap #{n}")
    } else {
        format!("n{n}")
    }
}

fn unit(hp: u8, pos: bool, bag: &[(u8, u8)]) -> Unit {
    Unit {
        name: Some(text(hp)),
        hp,
        pos: pos.then(|| Pos {
            x: Some(f64::from(hp)),
            y: Some(-1.5),
        }),
        bag: Some(
            bag.iter()
                .map(|&(i, c)| {
                    (
                        format!("i{i}"),
                        Item {
                            name: text(c),
                            count: c,
                        },
                    )
                })
                .collect(),
        ),
    }
}

fn apply(enc: &mut Encoder<World>, op: &Op) {
    let mut s = enc.state_mut();
    match op.clone() {
        Op::AddUnit(k, hp, pos, bag) => {
            if let Some(mut units) = s.units_mut() {
                units.insert(key(k), unit(hp, pos, &bag));
            }
        }
        Op::RemoveUnit(k) => {
            if let Some(mut units) = s.units_mut() {
                units.remove(&key(k));
            }
        }
        Op::Promote(k) => {
            let taken = s.units_mut().and_then(|mut m| m.take(&key(k)));
            if let Some(unit) = taken {
                let old = s.replace_boss(unit.some()).transpose();
                if let (Some(old), Some(mut units)) = (old, s.units_mut()) {
                    units.insert_moved(key(k), old);
                }
            }
        }
        Op::ClearUnits => {
            if let Some(mut units) = s.units_mut() {
                units.clear();
            }
        }
        Op::Units(present) => s.set_units(present.then(MapSchema::new)),
        Op::Tag(t, add) => {
            if let Some(mut tags) = s.tags_mut() {
                let tag = text(t);
                if add {
                    tags.add(tag);
                } else {
                    tags.remove(&tag);
                }
            }
        }
        Op::ClearTags => {
            if let Some(mut tags) = s.tags_mut() {
                tags.clear();
            }
        }
        Op::Mark(m, add) => {
            if let Some(mut marks) = s.marks_mut() {
                if add {
                    marks.add(m);
                } else {
                    marks.remove_where(|&x| x == m);
                }
            }
        }
        Op::ClearMarks => {
            if let Some(mut marks) = s.marks_mut() {
                marks.clear();
            }
        }
        Op::Boss(hp) => s.set_boss(hp.map(|hp| unit(hp, true, &[(0, hp)]))),
        Op::BossHp(hp) => {
            if let Some(mut b) = s.boss_mut() {
                b.set_hp(hp);
            }
        }
        Op::Queue(a) => match a {
            ArrayOp::Present(on) => s.set_queue(on.then(ArraySchema::new)),
            a => {
                if let Some(mut q) = s.queue_mut() {
                    let len = q.len();
                    match a {
                        ArrayOp::Push(v) => q.push(v),
                        ArrayOp::Pop => drop(q.pop()),
                        ArrayOp::Shift => drop(q.shift()),
                        ArrayOp::Unshift(v) => q.unshift(v),
                        ArrayOp::Insert(i, v) => q.insert(usize::from(i).min(len), v),
                        ArrayOp::Remove(i) if usize::from(i) < len => drop(q.remove(i.into())),
                        ArrayOp::Set(i, v) | ArrayOp::Count(i, v) if usize::from(i) < len => {
                            q.set(i.into(), v);
                        }
                        ArrayOp::Reverse => q.reverse(),
                        ArrayOp::Sort => q.sort_by(Ord::cmp),
                        ArrayOp::Clear => q.clear(),
                        _ => {}
                    }
                }
            }
        },
        Op::Squad(a) => match a {
            ArrayOp::Present(on) => s.set_squad(on.then(ArraySchema::new)),
            a => {
                if let Some(mut q) = s.squad_mut() {
                    let len = q.len();
                    let item = |c: u8| Item {
                        name: text(c),
                        count: c,
                    };
                    match a {
                        ArrayOp::Push(c) => q.push(item(c)),
                        ArrayOp::Pop => drop(q.pop()),
                        ArrayOp::Shift => drop(q.shift()),
                        ArrayOp::Unshift(c) => q.unshift(item(c)),
                        ArrayOp::Insert(i, c) => q.insert(usize::from(i).min(len), item(c)),
                        ArrayOp::Remove(i) if usize::from(i) < len => drop(q.remove(i.into())),
                        ArrayOp::Set(i, c) if usize::from(i) < len => {
                            drop(q.set(i.into(), item(c)));
                        }
                        ArrayOp::Count(i, c) => {
                            if let Some(mut it) = q.get_mut(i.into()) {
                                it.set_count(c);
                            }
                        }
                        ArrayOp::Reverse => q.reverse(),
                        ArrayOp::Sort => q.sort_by(|a, b| a.count.cmp(&b.count)),
                        ArrayOp::Clear => q.clear(),
                        _ => {}
                    }
                }
            }
        },
        Op::Turn(t) => s.set_turn(t),
        Op::Title(t) => s.set_title(text(t)),
        Op::Hp(..)
        | Op::Name(..)
        | Op::Move(..)
        | Op::DropPos(_)
        | Op::Put(..)
        | Op::Take(..)
        | Op::EmptyBag(_) => {
            let k = match op {
                Op::Hp(k, _)
                | Op::Name(k, _)
                | Op::Move(k, ..)
                | Op::DropPos(k)
                | Op::Put(k, ..)
                | Op::Take(k, _)
                | Op::EmptyBag(k) => *k,
                _ => return,
            };
            let Some(mut units) = s.units_mut() else {
                return;
            };
            let Some(mut u) = units.get_mut(&key(k)) else {
                return;
            };
            match op.clone() {
                Op::Hp(_, hp) => u.set_hp(hp),
                Op::Name(_, n) => u.set_name(n.map(text)),
                Op::Move(_, x, y) => match u.pos_mut() {
                    Some(mut p) => {
                        p.set_x(Some(f64::from(x)));
                        p.set_y(Some(f64::from(y) / 4.0));
                    }
                    None => u.set_pos(Some(Pos {
                        x: Some(f64::from(x)),
                        y: None,
                    })),
                },
                Op::DropPos(_) => u.set_pos(None),
                Op::Put(_, i, c) => {
                    if let Some(mut bag) = u.bag_mut() {
                        bag.insert(
                            format!("i{i}"),
                            Item {
                                name: text(c),
                                count: c,
                            },
                        );
                    }
                }
                Op::Take(_, i) => {
                    if let Some(mut bag) = u.bag_mut() {
                        bag.remove(&format!("i{i}"));
                    }
                }
                Op::EmptyBag(_) => {
                    if let Some(mut bag) = u.bag_mut() {
                        bag.clear();
                    }
                }
                _ => {}
            }
        }
    }
}

fn world() -> World {
    World {
        units: Some(MapSchema::new()),
        tags: Some(SetSchema::new()),
        marks: Some(CollectionSchema::new()),
        boss: None,
        turn: 0,
        title: String::new(),
        queue: Some(ArraySchema::new()),
        squad: Some(ArraySchema::new()),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn typed_decoder_agrees_with_the_dynamic_decoder_and_the_encoder(
        ticks in proptest::collection::vec(proptest::collection::vec(op(), 1..6), 2..10),
    ) {
        let mut enc = Encoder::new(world());
        let mut typed = Decoder::<World>::new().expect("types");
        let mut dynamic = DynamicDecoder::new(registry_of::<World>().expect("types"));
        let first = enc.encode_patch().to_vec();
        typed.decode(&first).expect("initial patch");
        dynamic.decode(&first).expect("initial patch");
        for (t, ops) in ticks.iter().enumerate() {
            for op in ops {
                apply(&mut enc, op);
            }
            let patch = enc.encode_patch().to_vec();
            typed.decode(&patch).unwrap_or_else(|e| panic!("tick {t}: {e}"));
            dynamic.decode(&patch).unwrap_or_else(|e| panic!("tick {t}: {e}"));
            let want = enc.state().to_json();
            prop_assert_eq!(typed.unrepresentable(), 0);
            prop_assert_eq!(typed.state().to_json(), want.clone(), "tick {} ops {:?}", t, ops);
            // (A copy built from `T` and the refId table: every refId, with
            // its reference count, as the dynamic decoder holds it.)
            prop_assert_eq!(typed.to_dynamic().to_json(), dynamic.to_json(), "tick {}", t);
            prop_assert_eq!(typed.to_dynamic().ref_count(), dynamic.ref_count(), "tick {}", t);
            let mut fresh = Decoder::<World>::new().expect("types");
            fresh.decode(enc.encode_all()).expect("full state");
            prop_assert_eq!(fresh.state().to_json(), want, "full state at tick {}", t);
        }
    }
}

/// Decodes `bytes` into both decoders: they must accept or reject it
/// alike, with the same state after, and a rejected message must leave
/// the typed state as it was.
fn both_alike(
    typed: &mut Decoder<World>,
    dynamic: &mut DynamicDecoder,
    bytes: &[u8],
) -> Result<bool, TestCaseError> {
    let before = typed.state().to_json();
    let a = typed.decode(bytes);
    let b = dynamic.decode(bytes);
    prop_assert_eq!(&a, &b);
    let (t, d): (serde_json::Value, serde_json::Value) = (
        serde_json::from_str(&typed.to_dynamic().to_json()).expect("JSON"),
        serde_json::from_str(&dynamic.to_json()).expect("JSON"),
    );
    prop_assert!(same_but_defaults(&t, &d), "typed {}\ndynamic {}", t, d);
    if a.is_err() {
        prop_assert_eq!(typed.state().to_json(), before);
    }
    Ok(a.is_ok())
}

/// Whether a typed state's JSON `t` equals a dynamic decoder's `d` but for
/// the fields `d` has no value for, which are default values in `t` (a
/// Rust field that is not an `Option` always has one).
fn same_but_defaults(t: &serde_json::Value, d: &serde_json::Value) -> bool {
    use serde_json::Value as J;
    match (t, d) {
        (J::Object(t), J::Object(d)) => {
            d.keys().all(|k| t.contains_key(k))
                && t.iter().all(|(k, v)| match d.get(k) {
                    Some(w) => same_but_defaults(v, w),
                    None => {
                        matches!(v, J::Bool(false) | J::Null)
                            || v.as_f64() == Some(0.0)
                            || v.as_str() == Some("")
                    }
                })
        }
        (J::Array(t), J::Array(d)) => {
            t.len() == d.len() && t.iter().zip(d).all(|(v, w)| same_but_defaults(v, w))
        }
        _ => t == d,
    }
}

fn world_dynamic() -> DynamicDecoder {
    DynamicDecoder::new(registry_of::<World>().expect("types"))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// The first bytes of a message (a full state into a fresh decoder,
    /// then a patch): the typed decoder's fast path, which writes as it
    /// reads, must end like the dynamic decoder, which validates first —
    /// the same error, or the same state.
    #[test]
    fn a_cut_message_is_applied_or_rejected_as_by_the_dynamic_decoder(
        ticks in proptest::collection::vec(proptest::collection::vec(op(), 1..6), 1..6),
        cut_full in any::<proptest::sample::Index>(),
        cut_patch in any::<proptest::sample::Index>(),
    ) {
        let mut enc = Encoder::new(world());
        enc.encode_patch();
        let (last, first) = ticks.split_last().expect("a tick");
        for ops in first {
            for op in ops {
                apply(&mut enc, op);
            }
            enc.encode_patch();
        }
        let full = enc.encode_all().to_vec();
        let mut typed = Decoder::<World>::new().expect("types");
        let mut dynamic = world_dynamic();
        let cut = &full[..cut_full.index(full.len() + 1)];
        if !both_alike(&mut typed, &mut dynamic, cut)? || cut.len() < full.len() {
            // (Rejected, or a shorter state applied: the whole state
            // starts again from what the decoders hold.)
            typed = Decoder::<World>::new().expect("types");
            dynamic = world_dynamic();
            prop_assert!(both_alike(&mut typed, &mut dynamic, &full)?);
        }
        for op in last {
            apply(&mut enc, op);
        }
        let patch = enc.encode_patch().to_vec();
        let cut = &patch[..cut_patch.index(patch.len() + 1)];
        if !both_alike(&mut typed, &mut dynamic, cut)? {
            prop_assert!(both_alike(&mut typed, &mut dynamic, &patch)?);
            prop_assert_eq!(typed.state().to_json(), enc.state().to_json());
        }
    }
}

/// Which messages the fast path takes, and that the others still apply.
#[test]
fn the_fast_path_takes_new_entries_and_field_changes() {
    let mut enc = Encoder::new(world());
    let mut d = Decoder::<World>::new().expect("types");
    let step = |enc: &mut Encoder<World>, ops: &[Op], d: &mut Decoder<World>| {
        for op in ops {
            apply(enc, op);
        }
        d.decode(enc.encode_patch()).expect("patch");
        assert_eq!(d.state().to_json(), enc.state().to_json(), "{ops:?}");
        d.fast_applied()
    };
    // The first state, new units (with their nested structs and maps), a
    // boss: new structures only.
    assert_eq!(step(&mut enc, &[], &mut d), 1);
    let adds = [
        Op::AddUnit(0, 7, true, vec![(1, 2)]),
        Op::AddUnit(1, 8, false, vec![]),
    ];
    assert_eq!(step(&mut enc, &adds, &mut d), 2);
    assert_eq!(step(&mut enc, &[Op::Boss(Some(3))], &mut d), 3);
    // Field changes of structures the state holds.
    let moves = [Op::Move(0, 5, -5), Op::Hp(1, 9), Op::Turn(4), Op::Title(3)];
    assert_eq!(step(&mut enc, &moves, &mut d), 4);
    // A deletion is left to the general path, after the fast path put back
    // the changes before it in the message.
    let mixed = [Op::Hp(0, 1), Op::Put(1, 2, 2), Op::RemoveUnit(0)];
    assert_eq!(step(&mut enc, &mixed, &mut d), 4);
    assert_eq!(step(&mut enc, &[Op::Hp(1, 10)], &mut d), 5);
}

#[derive(Schema, Default, Debug)]
#[schema(decode)]
struct Inner {
    #[schema(number)]
    x: Option<f64>,
    n: u8,
    s: String,
}

#[derive(Schema, Default, Debug)]
#[schema(decode)]
struct Outer {
    inner: Option<Inner>,
    m: MapSchema<Inner>,
}

/// A message that writes fields twice, adds a map entry, then fails: the
/// fast path puts back each field's first value (an `Option` that was
/// `None` too) and removes the entry; the next message applies on that.
#[test]
fn a_rejected_message_gets_each_field_its_first_value_back() {
    let mut d = Decoder::<Outer>::new().expect("types");
    // Root: `inner` = new refId 1, `m` = new refId 2; inner.s = "a".
    d.decode(&[0x80, 0x01, 0x81, 0x02, 0xff, 0x01, 0x82, 0xa1, b'a'])
        .expect("first state");
    assert_eq!(d.fast_applied(), 1);
    let before = d.state().to_json();
    let bad = [
        0xff, 0x01, 0x80, 0x05, 0x81, 0x07, 0x82, 0xa1, b'b', // x, n, s
        0xff, 0x02, 0x80, 0x00, 0xa1, b'k', 0x03, // m["k"] = new refId 3
        0xff, 0x01, 0x80, 0x06, 0x81, 0x08, 0x82, 0xa1, b'c', // again
        0x3f, // field 63: unknown
    ];
    let err = d.decode(&bad).expect_err("unknown field");
    assert_eq!(err.offset(), bad.len() - 1);
    assert_eq!(d.state().to_json(), before);
    assert!(d.state().inner.as_ref().is_some_and(|i| i.x.is_none()));
    // The same entry, then its fields: applied on the state put back.
    d.decode(&[
        0xff, 0x02, 0x80, 0x00, 0xa1, b'k', 0x03, 0xff, 0x03, 0x81, 0x09,
    ])
    .expect("entry");
    assert_eq!(d.fast_applied(), 2);
    assert_eq!(d.state().m.get("k").map(|i| i.n), Some(9));
    assert_eq!(d.state().inner.as_ref().map(|i| i.s.as_str()), Some("a"));
}

/// A callback log line's value: numbers as numbers whatever their wire
/// type, children by refId.
fn show(v: Option<&Value>) -> String {
    match v {
        None => "-".into(),
        Some(v) => match (v.as_ref_id(), v.as_f64(), v.as_str(), v.as_bool()) {
            (Some(r), ..) => format!("#{}", r.0),
            (_, Some(n), ..) => format!("{n}"),
            (_, _, Some(s), _) => format!("{s:?}"),
            (_, _, _, Some(b)) => format!("{b}"),
            _ => format!("{v:?}"),
        },
    }
}

type Log = Arc<Mutex<Vec<String>>>;

fn push(log: &Log, line: String) {
    log.lock().expect("log").push(line);
}

/// Entry callbacks (add, remove, change) on the collection in field
/// `field` of `at`, logged with `name`; `nested` is called with each added
/// child.
fn on_entries(
    cx: &mut Cx<'_>,
    at: RefId,
    field: &'static str,
    log: &Log,
    nested: fn(&mut Cx<'_>, RefId, &Log),
) {
    let l = Arc::clone(log);
    cx.on_add(At::Field(at, field), move |cx, k, v| {
        push(&l, format!("{}.{field} add {k} {}", at.0, show(Some(v))));
        if let Some(id) = v.as_ref_id() {
            nested(cx, id, &l);
        }
    })
    .expect("on_add");
    let l = Arc::clone(log);
    cx.on_remove(At::Field(at, field), move |_, k, v| {
        push(&l, format!("{}.{field} remove {k} {}", at.0, show(Some(v))));
    })
    .expect("on_remove");
    let l = Arc::clone(log);
    cx.on_change(At::Field(at, field), move |_, c| {
        let (k, v) = c.expect("an entry change");
        push(&l, format!("{}.{field} change {k} {}", at.0, show(v)));
    })
    .expect("on_change");
}

/// `listen` on fields of instance `at`.
fn listen(cx: &mut Cx<'_>, at: RefId, fields: &[&'static str], log: &Log) {
    for &f in fields {
        let l = Arc::clone(log);
        cx.listen(at, f, move |_, now, before| {
            push(
                &l,
                format!("{}.{f} = {} was {}", at.0, show(now), show(before)),
            );
        })
        .expect("listen");
    }
}

/// A unit's callbacks: its fields, its instance changes, its bag.
fn unit_callbacks(cx: &mut Cx<'_>, id: RefId, log: &Log) {
    listen(cx, id, &["name", "hp", "pos", "bag"], log);
    let l = Arc::clone(log);
    cx.on_change(At::Ref(id), move |_, _| {
        push(&l, format!("{} changed", id.0));
    })
    .expect("on_change");
    on_entries(cx, id, "bag", log, |cx, item, log| {
        listen(cx, item, &["name", "count"], log);
    });
}

/// A typed and a dynamic decoder of `World`, each with
/// [`root_callbacks`] writing to its own log.
fn logged_decoders() -> (Decoder<World>, DynamicDecoder, Log, Log) {
    let mut typed = Decoder::<World>::new().expect("types");
    let mut dynamic = DynamicDecoder::new(registry_of::<World>().expect("types"));
    let (typed_log, dynamic_log): (Log, Log) = Default::default();
    root_callbacks(typed.callbacks(), &typed_log);
    root_callbacks(dynamic.callbacks(), &dynamic_log);
    (typed, dynamic, typed_log, dynamic_log)
}

/// The callbacks a client registers on the root, nested ones registered
/// from inside the callbacks.
fn root_callbacks(mut cx: Cx<'_>, log: &Log) {
    listen(
        &mut cx,
        RefId::ROOT,
        &["units", "tags", "marks", "turn", "title", "queue", "squad"],
        log,
    );
    let l = Arc::clone(log);
    cx.listen(RefId::ROOT, "boss", move |cx, now, before| {
        push(&l, format!("boss = {} was {}", show(now), show(before)));
        if let Some(id) = now.and_then(Value::as_ref_id) {
            unit_callbacks(cx, id, &l);
        }
    })
    .expect("listen boss");
    let l = Arc::clone(log);
    cx.on_change(At::Ref(RefId::ROOT), move |_, _| {
        push(&l, "root changed".into());
    })
    .expect("on_change");
    on_entries(&mut cx, RefId::ROOT, "units", log, unit_callbacks);
    on_entries(&mut cx, RefId::ROOT, "tags", log, |_, _, _| {});
    on_entries(&mut cx, RefId::ROOT, "marks", log, |_, _, _| {});
    on_entries(&mut cx, RefId::ROOT, "queue", log, |_, _, _| {});
    on_entries(&mut cx, RefId::ROOT, "squad", log, |cx, item, log| {
        listen(cx, item, &["name", "count"], log);
    });
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// The typed decoder's callbacks (run from its general path, on the
    /// changes it writes into `T`) against the dynamic decoder's on the
    /// same stream: the same calls, in the same order, with the same
    /// values; nested registrations included.
    #[test]
    fn typed_callbacks_agree_with_the_dynamic_decoder(
        ticks in proptest::collection::vec(proptest::collection::vec(op(), 1..6), 1..10),
    ) {
        let mut enc = Encoder::new(world());
        let (mut typed, mut dynamic, typed_log, dynamic_log) = logged_decoders();
        let first = enc.encode_patch().to_vec();
        typed.decode(&first).expect("initial patch");
        dynamic.decode(&first).expect("initial patch");
        for (t, ops) in ticks.iter().enumerate() {
            for op in ops {
                apply(&mut enc, op);
            }
            let patch = enc.encode_patch().to_vec();
            typed.decode(&patch).unwrap_or_else(|e| panic!("tick {t}: {e}"));
            dynamic.decode(&patch).unwrap_or_else(|e| panic!("tick {t}: {e}"));
            prop_assert_eq!(typed.state().to_json(), enc.state().to_json());
            prop_assert_eq!(
                &*typed_log.lock().expect("log"),
                &*dynamic_log.lock().expect("log"),
                "tick {} ops {:?}", t, ops
            );
        }
    }
}

/// A typed decoder's callbacks read the typed state (`Cx::state`), not a
/// dynamic tree.
#[test]
fn typed_callbacks_read_the_typed_state() {
    let mut enc = Encoder::new(world());
    let mut d = Decoder::<World>::new().expect("types");
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&seen);
    d.callbacks()
        .on_add(At::Field(RefId::ROOT, "units"), move |cx, key, _| {
            assert!(cx.node(RefId::ROOT).is_none(), "no dynamic tree");
            let world = cx.state::<World>().expect("the typed state");
            let hp = world
                .units
                .as_ref()
                .and_then(|u| u.get(&key.to_string()))
                .map(|u| u.hp);
            sink.lock().expect("log").push((key.to_string(), hp));
        })
        .expect("on_add");
    d.decode(enc.encode_patch()).expect("initial patch");
    apply(&mut enc, &Op::AddUnit(1, 42, true, vec![(0, 3)]));
    d.decode(enc.encode_patch()).expect("patch");
    assert_eq!(*seen.lock().expect("log"), [("u1".to_owned(), Some(42))]);
}

#[derive(Schema, Default, Debug)]
#[schema(decode)]
struct Piece {
    name: Option<String>,
    count: Option<u8>,
}

#[derive(Schema, Default, Debug)]
#[schema(decode)]
struct Lists {
    nums: ArraySchema<u8>,
    items: ArraySchema<Piece>,
}

/// An operation of a hand-made array block (what no encoder of ours
/// sends: gap writes, ADD at an occupied index, DELETE_AND_MOVE, MOVE_AND_ADD,
/// ADD_BY_REFID, a refId given twice).
#[derive(Debug, Clone)]
enum RawOp {
    /// On `nums`: an op with a wire index and (but for DELETE) a value.
    Num(u8, u32, u8),
    /// On `items`: an op with a wire index and a child (`None`: a new one).
    Item(u8, u32, Option<u8>),
    NumsClear,
    NumsReverse,
    ItemsReverse,
    /// DELETE_BY_REFID of the n-th child made so far.
    DeleteByRefId(u8),
    /// ADD_BY_REFID of the n-th child made so far, with a new child.
    AddByRefId(u8),
}

const ARRAY_OPS: [u8; 7] = [0x00, 0x40, 0x80, 0xc0, 0x20, 0x60, 0xa0];

fn raw_index() -> impl Strategy<Value = u32> {
    prop_oneof![8 => 0u32..6, 1 => 1500u32..1510]
}

fn raw_op() -> impl Strategy<Value = RawOp> {
    prop_oneof![
        4 => (0usize..7, raw_index(), any::<u8>())
            .prop_map(|(o, i, v)| RawOp::Num(ARRAY_OPS[o], i, v % 4)),
        4 => (0usize..7, raw_index(), proptest::option::weighted(0.15, any::<u8>()))
            .prop_map(|(o, i, c)| RawOp::Item(ARRAY_OPS[o], i, c)),
        1 => Just(RawOp::NumsClear),
        1 => Just(RawOp::NumsReverse),
        1 => Just(RawOp::ItemsReverse),
        1 => any::<u8>().prop_map(RawOp::DeleteByRefId),
        1 => any::<u8>().prop_map(RawOp::AddByRefId),
    ]
}

fn varint(out: &mut Vec<u8>, v: u32) {
    // (The wire's number encoding of an unsigned integer: one byte below
    // 0x80, 0xcd + u16 below 0x10000, 0xce + u32.)
    match v {
        0..=0x7f => out.push(v as u8),
        0x80..=0xffff => {
            out.push(0xcd);
            out.extend_from_slice(&(v as u16).to_le_bytes());
        }
        _ => {
            out.push(0xce);
            out.extend_from_slice(&v.to_le_bytes());
        }
    }
}

/// The bytes of a tick of raw operations (`next`: the next free refId,
/// `made`: the children made so far).
fn raw_message(ops: &[RawOp], next: &mut u32, made: &mut Vec<u32>) -> Vec<u8> {
    let mut out = Vec::new();
    let mut children = Vec::new();
    let mut new_child = |out: &mut Vec<u8>, next: &mut u32, made: &mut Vec<u32>| {
        let id = *next;
        *next += 1;
        made.push(id);
        children.push(id);
        varint(out, id);
    };
    for op in ops {
        match *op {
            RawOp::Num(o, i, v) => {
                out.extend_from_slice(&[0xff, 0x01, o]);
                varint(&mut out, i);
                if o != 0x40 {
                    out.push(v);
                }
            }
            RawOp::Item(o, i, c) => {
                out.extend_from_slice(&[0xff, 0x02, o]);
                varint(&mut out, i);
                if o != 0x40 {
                    match c.and_then(|c| made.get(usize::from(c) % made.len().max(1))) {
                        Some(&old) => varint(&mut out, old),
                        None => new_child(&mut out, next, made),
                    }
                }
            }
            RawOp::NumsClear => out.extend_from_slice(&[0xff, 0x01, 0x0a]),
            RawOp::NumsReverse => out.extend_from_slice(&[0xff, 0x01, 0x0f]),
            RawOp::ItemsReverse => out.extend_from_slice(&[0xff, 0x02, 0x0f]),
            RawOp::DeleteByRefId(n) | RawOp::AddByRefId(n) => {
                let Some(&id) = made.get(usize::from(n) % made.len().max(1)) else {
                    continue;
                };
                let by = if matches!(op, RawOp::AddByRefId(_)) {
                    0x81
                } else {
                    0x21
                };
                out.extend_from_slice(&[0xff, 0x02, by]);
                varint(&mut out, id);
                if by == 0x81 {
                    new_child(&mut out, next, made);
                }
            }
        }
    }
    // The new children's fields.
    for id in children {
        out.push(0xff);
        varint(&mut out, id);
        out.extend_from_slice(&[0x80, 0xa2, b'i', b'0' + (id % 10) as u8, 0x81, id as u8]);
    }
    out
}

fn lists_callbacks(mut cx: Cx<'_>, log: &Log) {
    listen(&mut cx, RefId::ROOT, &["nums", "items"], log);
    on_entries(&mut cx, RefId::ROOT, "nums", log, |_, _, _| {});
    on_entries(&mut cx, RefId::ROOT, "items", log, |cx, item, log| {
        listen(cx, item, &["name", "count"], log);
    });
}

/// Hand-made array blocks, the array semantics of `dialect` at their
/// edges: the typed decoder with callbacks and the dynamic decoder accept
/// or reject each message alike, and agree on the state and on the
/// callback log.
fn raw_array_blocks_agree(ticks: &[Vec<RawOp>], dialect: Dialect) -> Result<(), TestCaseError> {
    let mut typed = Decoder::<Lists>::new().expect("types");
    let mut dynamic = DynamicDecoder::new(registry_of::<Lists>().expect("types"));
    typed.set_dialect(dialect);
    dynamic.set_dialect(dialect);
    let (typed_log, dynamic_log): (Log, Log) = Default::default();
    lists_callbacks(typed.callbacks(), &typed_log);
    lists_callbacks(dynamic.callbacks(), &dynamic_log);
    let first = [0x80, 0x01, 0x81, 0x02];
    typed.decode(&first).expect("first state");
    dynamic.decode(&first).expect("first state");
    let (mut next, mut made) = (3, Vec::new());
    for (t, ops) in ticks.iter().enumerate() {
        let (next_before, made_before) = (next, made.len());
        let bytes = raw_message(ops, &mut next, &mut made);
        let a = typed.decode(&bytes);
        let b = dynamic.decode(&bytes);
        prop_assert_eq!(&a, &b, "tick {} ops {:?}", t, ops);
        if a.is_err() {
            // (The children it made do not exist.)
            next = next_before;
            made.truncate(made_before);
        }
        let want: serde_json::Value = serde_json::from_str(&dynamic.to_json()).expect("JSON");
        // (An instance held by two slots is kept in one of them:
        // counted, and the states differ from then on.)
        if typed.unrepresentable() == 0 {
            prop_assert_eq!(typed.state().to_json(), want, "tick {} ops {:?}", t, ops);
        }
        prop_assert_eq!(
            &*typed_log.lock().expect("log"),
            &*dynamic_log.lock().expect("log"),
            "tick {} ops {:?}",
            t,
            ops
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// The 5.x array semantics (see [`raw_array_blocks_agree`]).
    #[test]
    fn raw_array_blocks_agree_with_the_dynamic_decoder(
        ticks in proptest::collection::vec(proptest::collection::vec(raw_op(), 1..8), 1..8),
    ) {
        raw_array_blocks_agree(&ticks, Dialect::Modern)?;
    }

    /// The 3.x / 4.x array semantics: an ADD at an occupied index but 0
    /// overwrites, and it and DELETE_BY_REFID keep the reference of the
    /// child they remove (which later messages may still address).
    #[test]
    fn legacy_raw_array_blocks_agree_with_the_dynamic_decoder(
        ticks in proptest::collection::vec(proptest::collection::vec(raw_op(), 1..8), 1..8),
    ) {
        raw_array_blocks_agree(&ticks, Dialect::Legacy)?;
    }
}

/// A unit moved from the map to the boss field while the boss moves into
/// the map (refIds kept, so the patch references structures the state
/// holds), then the same again: the typed decoder holds the moved values
/// with everything under them, and its callbacks equal the dynamic
/// decoder's.
#[test]
fn moves_between_parents_agree_with_the_dynamic_decoder() {
    let mut enc = Encoder::new(world());
    let (mut typed, mut dynamic, typed_log, dynamic_log) = logged_decoders();
    let ticks: &[&[Op]] = &[
        &[
            Op::AddUnit(1, 7, true, vec![(0, 3), (1, 4)]),
            Op::AddUnit(2, 9, false, vec![(2, 5)]),
            Op::Boss(Some(4)),
        ],
        &[Op::Promote(1)],
        &[Op::Promote(1), Op::Hp(1, 8)],
        &[Op::Promote(2), Op::BossHp(1), Op::Put(2, 3, 6)],
        &[Op::RemoveUnit(1), Op::RemoveUnit(2), Op::Boss(None)],
    ];
    for (t, ops) in ticks.iter().enumerate() {
        for op in ops.iter() {
            apply(&mut enc, op);
        }
        let patch = enc.encode_patch().to_vec();
        if t > 0 && t < 4 {
            // (The patch moves: the boss field references a unit the
            // state already holds.)
            let mut listing = String::new();
            dynamic.explain(&patch, &mut listing).expect("explain");
            assert!(
                listing
                    .lines()
                    .any(|l| l.contains(".boss") && !l.contains("(new)")),
                "tick {t}: no move in\n{listing}"
            );
        }
        typed
            .decode(&patch)
            .unwrap_or_else(|e| panic!("tick {t}: {e}"));
        dynamic
            .decode(&patch)
            .unwrap_or_else(|e| panic!("tick {t}: {e}"));
        assert_eq!(typed.unrepresentable(), 0, "tick {t}");
        assert_eq!(typed.state().to_json(), enc.state().to_json(), "tick {t}");
        assert_eq!(
            *typed_log.lock().expect("log"),
            *dynamic_log.lock().expect("log"),
            "tick {t}"
        );
    }
    assert!(typed_log.lock().expect("log").len() > 20);
}

/// 3.x / 4.x: children an ADD overwrites or DELETE_BY_REFID removes keep
/// their reference; later messages change them and add them back (one
/// made and overwritten in the same block too). The typed decoder holds
/// them meanwhile and ends with the dynamic decoder's state, exactly.
#[test]
fn legacy_leaked_children_live_on_in_the_typed_state() {
    let mut typed = Decoder::<Lists>::new().expect("types");
    let mut dynamic = DynamicDecoder::new(registry_of::<Lists>().expect("types"));
    typed.set_dialect(Dialect::Legacy);
    dynamic.set_dialect(Dialect::Legacy);
    let fields = |id: u8, count: u8| [0xff, id, 0x80, 0xa2, b'i', b'0' + id, 0x81, count];
    let mut messages: Vec<Vec<u8>> = Vec::new();
    // items = [3, 4]
    let mut m = vec![
        0x80, 0x01, 0x81, 0x02, 0xff, 0x02, 0x80, 0x00, 0x03, 0x80, 0x01, 0x04,
    ];
    m.extend(fields(3, 3));
    m.extend(fields(4, 4));
    messages.push(m);
    // ADD at occupied index 1 overwrites 4, which keeps its reference.
    let mut m = vec![0xff, 0x02, 0x80, 0x01, 0x05];
    m.extend(fields(5, 5));
    messages.push(m);
    // 4 changes while no slot holds it, then comes back at index 2.
    messages.push(vec![0xff, 0x04, 0x81, 0x09]);
    messages.push(vec![0xff, 0x02, 0x80, 0x02, 0x04]);
    // DELETE_BY_REFID of 5 keeps its reference; 5 changes, comes back.
    messages.push(vec![0xff, 0x02, 0x21, 0x05, 0xff, 0x05, 0x81, 0x08]);
    messages.push(vec![0xff, 0x02, 0x80, 0x03, 0x05]);
    // 6 made and overwritten by 7 in one block; 6 comes back later.
    let mut m = vec![0xff, 0x02, 0x80, 0x04, 0x06, 0x80, 0x04, 0x07];
    m.extend(fields(6, 6));
    m.extend(fields(7, 7));
    messages.push(m);
    messages.push(vec![0xff, 0x02, 0x80, 0x05, 0x06]);
    for (t, m) in messages.iter().enumerate() {
        dynamic
            .decode(m)
            .unwrap_or_else(|e| panic!("dynamic, message {t}: {e}"));
        typed
            .decode(m)
            .unwrap_or_else(|e| panic!("typed, message {t}: {e}"));
        let want: serde_json::Value = serde_json::from_str(&dynamic.to_json()).expect("JSON");
        assert_eq!(typed.state().to_json(), want, "message {t}");
        assert_eq!(typed.unrepresentable(), 0, "message {t}");
    }
    let counts: Vec<Option<u8>> = typed.state().items.iter().map(|p| p.count).collect();
    assert_eq!(counts, [Some(3), Some(9), Some(8), Some(7), Some(6)]);
    // (In the 5.x dialect that ADD inserts.)
    let mut modern = Decoder::<Lists>::new().expect("types");
    modern.decode(&messages[0]).expect("first");
    modern.decode(&messages[1]).expect("second");
    assert_eq!(modern.state().items.len(), 3);
}
