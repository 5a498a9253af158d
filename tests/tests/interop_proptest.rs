//! Random mutation sequences on every collection kind (map / array / set /
//! collection, of primitives and of structs, nested through structs),
//! several ticks of several ops each. After every tick, the real
//! `@colyseus/schema` 5.0.34 decoder following the patch stream and a fresh
//! one decoding `encode_all()` hold exactly the Rust state without a
//! warning, and so does a client that joined with a full state at a random
//! tick and follows the patches since; so do 3.0.76 clients fed the legacy
//! patches of the same ticks (`encode_patch_both`).
//!
//! Each property runs on its own Node process (tests run in parallel);
//! `PROPTEST_CASES` replaces every property's case count (default: 5,500
//! interop sequences in all, plus 1,000 pure-Rust ones). The encoder bugs
//! these properties found have regression tests in interop_typed.rs and
//! legacy_dialect.rs.
//!
//! A pure-Rust property (no Node) checks that `encode_patch_both` writes
//! what `encode_patch` / `encode_patch_as` write, that full states agree,
//! and that Roomcast's own decoder follows the modern patches.

use std::cell::RefCell;
use std::cmp::Ordering;
use std::fmt::Debug;

use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use roomcast_schema::decoder::{Decoder, DynamicDecoder};
use roomcast_schema::{
    ArrayMut, ArraySchema, CollectionMut, CollectionSchema, Dialect, Encoder, Field, MapMut,
    MapSchema, Schema, SetMut, SetSchema,
};
use roomcast_tests::node::{NodeDecoder, SchemaVersion};
use roomcast_tests::state_json;
use roomcast_tests::state_json::{canon, check_state_json, Harness, StateJson};

// ----- the state -----------------------------------------------------------------

#[derive(Schema, Default, Debug, Clone, PartialEq)]
#[schema(decode)]
struct Leaf {
    v: i8,
    w: bool,
}
state_json!(Leaf { v, w });

#[derive(Schema, Default, Debug, Clone)]
#[schema(decode)]
struct Item {
    id: u8,
    tags: ArraySchema<u8>,
    names: SetSchema<String>,
    leaf: Option<Leaf>,
}
state_json!(Item {
    id,
    tags,
    names,
    leaf
});

#[derive(Schema, Default, Debug, Clone)]
#[schema(decode)]
struct Bag {
    nums: ArraySchema<u8>,
    items: ArraySchema<Item>,
    by_key: MapSchema<Item>,
    bag: CollectionSchema<Item>,
}
state_json!(Bag {
    nums,
    items,
    by_key,
    bag
});

#[derive(Schema, Default, Debug, Clone)]
#[schema(decode)]
struct Base {
    x: i8,
    label: String,
}
state_json!(Base { x, label });

#[derive(Schema, Default, Debug, Clone)]
#[schema(decode)]
struct Sub1 {
    #[schema(extends)]
    base: Base,
    k: u8,
    leaf: Option<Leaf>,
}
state_json!(Sub1 { ..base, k, leaf });

#[derive(Schema, Default, Debug, Clone)]
#[schema(decode)]
struct Sub2 {
    #[schema(extends)]
    base: Base,
    nums: ArraySchema<u8>,
    z: bool,
}
state_json!(Sub2 { ..base, nums, z });

/// Polymorphic children (TYPE_ID when not the declared `Base`).
// The derive takes the struct types themselves as variants; boxing one
// would change what the test models.
#[allow(clippy::large_enum_variant)]
#[derive(Schema, Debug, Clone)]
#[schema(decode)]
enum Poly {
    Base(Base),
    Sub1(Sub1),
    Sub2(Sub2),
}
roomcast_tests::state_json_enum!(Poly { Base, Sub1, Sub2 });

#[derive(Schema, Default, Debug)]
#[schema(decode)]
struct State {
    mp: MapSchema<u8>,
    ms: MapSchema<Item>,
    ap: ArraySchema<u8>,
    ab: ArraySchema<bool>,
    af: ArraySchema<f32>,
    mf: MapSchema<f64>,
    sf: SetSchema<f64>,
    astr: ArraySchema<String>,
    as_: ArraySchema<Item>,
    sp: SetSchema<u8>,
    ss: SetSchema<Item>,
    cp: CollectionSchema<String>,
    cs: CollectionSchema<Item>,
    bags: MapSchema<Bag>,
    bag: Option<Bag>,
    n: u8,
    poly_map: MapSchema<Poly>,
    poly_arr: ArraySchema<Poly>,
    poly: Option<Poly>,
}
state_json!(State {
    mp,
    ms,
    ap,
    ab,
    af,
    mf,
    sf,
    astr,
    as_,
    sp,
    ss,
    cp,
    cs,
    bags,
    bag,
    n,
    poly_map,
    poly_arr,
    poly
});

// ----- values ----------------------------------------------------------------------

/// An element type of the generated collections.
trait Val: Field + Clone + Debug + 'static {
    fn order(a: &Self, b: &Self) -> Ordering;
    fn same(a: &Self, b: &Self) -> bool;
    fn strategy() -> BoxedStrategy<Self>;
}

impl Val for u8 {
    fn order(a: &Self, b: &Self) -> Ordering {
        a.cmp(b)
    }
    fn same(a: &Self, b: &Self) -> bool {
        a == b
    }
    fn strategy() -> BoxedStrategy<Self> {
        // Small values collide often (equal neighbours, falsy zeros).
        prop_oneof![4 => 0u8..4, 1 => any::<Self>()].boxed()
    }
}

/// Floats with the values JavaScript compares oddly (NaN, -0 `===` 0).
fn odd_float() -> impl Strategy<Value = f64> {
    prop::sample::select(vec![0.0, -0.0, f64::NAN, 1.5, f64::INFINITY, 0.1])
}

impl Val for f32 {
    fn order(a: &Self, b: &Self) -> Ordering {
        a.total_cmp(b)
    }
    fn same(a: &Self, b: &Self) -> bool {
        a.to_bits() == b.to_bits()
    }
    fn strategy() -> BoxedStrategy<Self> {
        // Only used in an array.
        odd_float().prop_map(|v| v as Self).boxed()
    }
}

impl Val for f64 {
    fn order(a: &Self, b: &Self) -> Ordering {
        a.total_cmp(b)
    }
    fn same(a: &Self, b: &Self) -> bool {
        a.to_bits() == b.to_bits()
    }
    fn strategy() -> BoxedStrategy<Self> {
        // Only used in a map and a set.
        odd_float().boxed()
    }
}

impl Val for bool {
    fn order(a: &Self, b: &Self) -> Ordering {
        a.cmp(b)
    }
    fn same(a: &Self, b: &Self) -> bool {
        a == b
    }
    fn strategy() -> BoxedStrategy<Self> {
        any::<Self>().boxed()
    }
}

impl Val for String {
    fn order(a: &Self, b: &Self) -> Ordering {
        a.cmp(b)
    }
    fn same(a: &Self, b: &Self) -> bool {
        a == b
    }
    fn strategy() -> BoxedStrategy<Self> {
        prop::sample::select(vec!["", "a", "b", "é🙂"])
            .prop_map(str::to_owned)
            .boxed()
    }
}

impl Val for Item {
    fn order(a: &Self, b: &Self) -> Ordering {
        a.id.cmp(&b.id)
    }
    fn same(a: &Self, b: &Self) -> bool {
        a.id == b.id
    }
    fn strategy() -> BoxedStrategy<Self> {
        (
            0u8..6,
            prop::collection::vec(0u8..3, 0..3),
            prop::collection::vec(String::strategy(), 0..3),
            prop::option::of((any::<i8>(), any::<bool>())),
        )
            .prop_map(|(id, tags, names, leaf)| Self {
                id,
                tags: tags.into_iter().collect(),
                names: names.into_iter().collect(),
                leaf: leaf.map(|(v, w)| Leaf { v, w }),
            })
            .boxed()
    }
}

impl Val for Bag {
    fn order(_: &Self, _: &Self) -> Ordering {
        Ordering::Equal
    }
    fn same(_: &Self, _: &Self) -> bool {
        false
    }
    fn strategy() -> BoxedStrategy<Self> {
        (
            prop::collection::vec(u8::strategy(), 0..3),
            prop::collection::vec(Item::strategy(), 0..3),
            prop::collection::vec((key(), Item::strategy()), 0..3),
            prop::collection::vec(Item::strategy(), 0..2),
        )
            .prop_map(|(nums, items, by_key, bag)| Self {
                nums: nums.into_iter().collect(),
                items: items.into_iter().collect(),
                by_key: by_key.into_iter().collect(),
                bag: bag.into_iter().collect(),
            })
            .boxed()
    }
}

impl Val for Poly {
    fn order(a: &Self, b: &Self) -> Ordering {
        let rank = |p: &Self| match p {
            Self::Base(_) => 0,
            Self::Sub1(_) => 1,
            Self::Sub2(_) => 2,
        };
        rank(a).cmp(&rank(b))
    }
    fn same(_: &Self, _: &Self) -> bool {
        false
    }
    fn strategy() -> BoxedStrategy<Self> {
        let base = (any::<i8>(), String::strategy()).prop_map(|(x, label)| Base { x, label });
        prop_oneof![
            base.clone().prop_map(Self::Base),
            (base.clone(), 0u8..3, prop::option::of(any::<i8>())).prop_map(|(base, k, l)| {
                Self::Sub1(Sub1 {
                    base,
                    k,
                    leaf: l.map(|v| Leaf { v, w: true }),
                })
            }),
            (base, prop::collection::vec(0u8..3, 0..3), any::<bool>()).prop_map(
                |(base, nums, z)| {
                    Self::Sub2(Sub2 {
                        base,
                        nums: nums.into_iter().collect(),
                        z,
                    })
                }
            ),
        ]
        .boxed()
    }
}

/// An edit of a polymorphic child through its variant's view.
#[derive(Debug, Clone)]
enum PolyEdit {
    X(i8),
    K(u8),
    Nums(ArrOp<u8>),
}

fn poly_edit() -> impl Strategy<Value = PolyEdit> {
    prop_oneof![
        any::<i8>().prop_map(PolyEdit::X),
        (0u8..3).prop_map(PolyEdit::K),
        arr_op::<u8>(false).prop_map(PolyEdit::Nums),
    ]
}

fn apply_poly(p: PolyMut<'_>, e: &PolyEdit) {
    match (p, e) {
        (PolyMut::Base(mut b), PolyEdit::X(x)) => b.set_x(*x),
        (PolyMut::Sub1(mut s), PolyEdit::X(x)) => s.base_mut().set_x(*x),
        (PolyMut::Sub2(mut s), PolyEdit::X(x)) => s.base_mut().set_x(*x),
        (PolyMut::Sub1(mut s), PolyEdit::K(k)) => s.set_k(*k),
        (PolyMut::Sub2(mut s), PolyEdit::Nums(op)) => apply_arr(s.nums_mut(), op, |_, _| {}),
        _ => {}
    }
}

fn key() -> impl Strategy<Value = String> {
    prop::sample::select(vec!["a", "b", "c", "", "ü"]).prop_map(str::to_owned)
}

/// The value assigned to an `Option<struct>` field.
fn assignment<T: Debug + Clone + 'static>(
    s: impl Strategy<Value = T> + 'static,
) -> BoxedStrategy<Option<T>> {
    prop::option::of(s).boxed()
}

/// A position chosen relative to a length at apply time.
type Pos = u16;

fn at(p: Pos, len: usize) -> usize {
    usize::from(p) % len.max(1)
}

// ----- ops -------------------------------------------------------------------------

/// An edit of an `Item` in place (through its view).
#[derive(Debug, Clone)]
enum ItemEdit {
    Id(u8),
    Tags(ArrOp<u8>),
    Names(SetOp<String>),
    Leaf(Option<Leaf>),
    LeafV(i8),
}

fn item_edit() -> impl Strategy<Value = ItemEdit> {
    prop_oneof![
        (0u8..6).prop_map(ItemEdit::Id),
        arr_op::<u8>(false).prop_map(ItemEdit::Tags),
        set_op::<String>(false).prop_map(ItemEdit::Names),
        assignment((any::<i8>(), any::<bool>()))
            .prop_map(|l| ItemEdit::Leaf(l.map(|(v, w)| Leaf { v, w }))),
        any::<i8>().prop_map(ItemEdit::LeafV),
    ]
}

fn apply_item(mut it: ItemMut<'_>, e: &ItemEdit) {
    match e {
        ItemEdit::Id(v) => it.set_id(*v),
        ItemEdit::Tags(op) => apply_arr(it.tags_mut(), op, |_, _| {}),
        ItemEdit::Names(op) => apply_set(it.names_mut(), op, |_, _| {}),
        ItemEdit::Leaf(l) => it.set_leaf(l.clone()),
        ItemEdit::LeafV(v) => {
            if let Some(mut l) = it.leaf_mut() {
                l.set_v(*v);
            }
        }
    }
}

/// An edit of a `Bag` in place.
#[derive(Debug, Clone)]
enum BagEdit {
    Nums(ArrOp<u8>),
    Items(ArrOp<Item>),
    ByKey(MapOp<Item>),
    Bag(SetOp<Item>),
}

fn bag_edit() -> impl Strategy<Value = BagEdit> {
    prop_oneof![
        arr_op::<u8>(false).prop_map(BagEdit::Nums),
        arr_op::<Item>(true).prop_map(BagEdit::Items),
        map_op::<Item>(true).prop_map(BagEdit::ByKey),
        set_op::<Item>(true).prop_map(BagEdit::Bag),
    ]
}

fn apply_bag(mut b: BagMut<'_>, e: &BagEdit) {
    match e {
        BagEdit::Nums(op) => apply_arr(b.nums_mut(), op, |_, _| {}),
        BagEdit::Items(op) => apply_arr(b.items_mut(), op, edit_items),
        BagEdit::ByKey(op) => apply_map(b.by_key_mut(), op, edit_map_items),
        BagEdit::Bag(op) => apply_coll(b.bag_mut(), op, edit_coll_items),
    }
}

#[derive(Debug, Clone)]
enum ArrOp<V> {
    Push(V),
    Pop,
    Shift,
    Unshift(V),
    Insert(Pos, V),
    Remove(Pos),
    Splice(Pos, u8, Vec<V>),
    Set(Pos, V),
    Clear,
    Reverse,
    Sort(bool),
    Move(Pos, Pos),
    Edit(Pos, Box<ItemEdit>),
}

fn arr_op<V: Val>(structs: bool) -> BoxedStrategy<ArrOp<V>> {
    let v = V::strategy;
    let ops = prop_oneof![
        4 => v().prop_map(ArrOp::Push),
        2 => Just(ArrOp::Pop),
        2 => Just(ArrOp::Shift),
        3 => v().prop_map(ArrOp::Unshift),
        3 => (any::<Pos>(), v()).prop_map(|(p, v)| ArrOp::Insert(p, v)),
        2 => any::<Pos>().prop_map(ArrOp::Remove),
        3 => (any::<Pos>(), 0u8..3, prop::collection::vec(v(), 0..3))
            .prop_map(|(p, n, vs)| ArrOp::Splice(p, n, vs)),
        3 => (any::<Pos>(), v()).prop_map(|(p, v)| ArrOp::Set(p, v)),
        1 => Just(ArrOp::Clear),
        2 => Just(ArrOp::Reverse),
        1 => any::<bool>().prop_map(ArrOp::Sort),
        2 => (any::<Pos>(), any::<Pos>()).prop_map(|(a, b)| ArrOp::Move(a, b)),
    ];
    if structs {
        prop_oneof![
            4 => ops,
            2 => (any::<Pos>(), item_edit()).prop_map(|(p, e)| ArrOp::Edit(p, Box::new(e))),
        ]
        .boxed()
    } else {
        ops.boxed()
    }
}

fn apply_arr<V: Val>(
    mut a: ArrayMut<'_, V>,
    op: &ArrOp<V>,
    edit: impl FnOnce(&mut ArrayMut<'_, V>, (usize, &ItemEdit)),
) {
    let len = a.len();
    match op {
        ArrOp::Push(v) => a.push(v.clone()),
        ArrOp::Pop => {
            let _ = a.pop();
        }
        ArrOp::Shift => {
            let _ = a.shift();
        }
        ArrOp::Unshift(v) => a.unshift(v.clone()),
        ArrOp::Insert(p, v) => a.insert(usize::from(*p) % (len + 1), v.clone()),
        ArrOp::Remove(p) if len > 0 => {
            let _ = a.remove(at(*p, len));
        }
        ArrOp::Splice(p, n, vs) => {
            a.splice(usize::from(*p) % (len + 1), usize::from(*n), vs.clone());
        }
        ArrOp::Set(p, v) if len > 0 => {
            let _ = a.set(at(*p, len), v.clone());
        }
        ArrOp::Clear => a.clear(),
        ArrOp::Reverse => a.reverse(),
        ArrOp::Sort(desc) => a.sort_by(|x, y| {
            let o = V::order(x, y);
            if *desc {
                o.reverse()
            } else {
                o
            }
        }),
        ArrOp::Move(from, to) if len > 0 => {
            let x = a.remove(at(*from, len));
            a.insert(usize::from(*to) % len, x);
        }
        ArrOp::Edit(p, e) if len > 0 => edit(&mut a, (at(*p, len), e)),
        ArrOp::Remove(_) | ArrOp::Set(..) | ArrOp::Move(..) | ArrOp::Edit(..) => {}
    }
}

fn edit_items(a: &mut ArrayMut<'_, Item>, (i, e): (usize, &ItemEdit)) {
    if let Some(it) = a.get_mut(i) {
        apply_item(it, e);
    }
}

#[derive(Debug, Clone)]
enum MapOp<V> {
    Insert(String, V),
    Remove(String),
    Clear,
    Retain(u8),
    MoveKey(String, String),
    Edit(String, Box<ItemEdit>),
}

fn map_op<V: Val>(structs: bool) -> BoxedStrategy<MapOp<V>> {
    let ops = prop_oneof![
        5 => (key(), V::strategy()).prop_map(|(k, v)| MapOp::Insert(k, v)),
        3 => key().prop_map(MapOp::Remove),
        1 => Just(MapOp::Clear),
        1 => (1u8..4).prop_map(MapOp::Retain),
        2 => (key(), key()).prop_map(|(a, b)| MapOp::MoveKey(a, b)),
    ];
    if structs {
        prop_oneof![
            4 => ops,
            3 => (key(), item_edit()).prop_map(|(k, e)| MapOp::Edit(k, Box::new(e))),
        ]
        .boxed()
    } else {
        ops.boxed()
    }
}

fn apply_map<V: Val>(
    mut m: MapMut<'_, V>,
    op: &MapOp<V>,
    edit: impl FnOnce(&mut MapMut<'_, V>, (&str, &ItemEdit)),
) {
    match op {
        MapOp::Insert(k, v) => {
            let _ = m.insert(k, v.clone());
        }
        MapOp::Remove(k) => {
            let _ = m.remove(k);
        }
        MapOp::Clear => m.clear(),
        MapOp::Retain(modulo) => {
            let mut n = 0u8;
            m.retain(|_, _| {
                n = n.wrapping_add(1);
                !n.is_multiple_of(*modulo)
            });
        }
        MapOp::MoveKey(from, to) => {
            if let Some(v) = m.remove(from) {
                m.insert(to, v);
            }
        }
        MapOp::Edit(k, e) => edit(&mut m, (k, e)),
    }
}

fn edit_map_items(m: &mut MapMut<'_, Item>, (k, e): (&str, &ItemEdit)) {
    if let Some(it) = m.get_mut(k) {
        apply_item(it, e);
    }
}

#[derive(Debug, Clone)]
enum SetOp<V> {
    Add(V),
    Remove(V),
    RemoveNth(Pos),
    Clear,
    Edit(Pos, Box<ItemEdit>),
}

fn set_op<V: Val>(structs: bool) -> BoxedStrategy<SetOp<V>> {
    let ops = prop_oneof![
        5 => V::strategy().prop_map(SetOp::Add),
        2 => V::strategy().prop_map(SetOp::Remove),
        2 => any::<Pos>().prop_map(SetOp::RemoveNth),
        1 => Just(SetOp::Clear),
    ];
    if structs {
        prop_oneof![
            4 => ops,
            3 => (any::<Pos>(), item_edit()).prop_map(|(p, e)| SetOp::Edit(p, Box::new(e))),
        ]
        .boxed()
    } else {
        ops.boxed()
    }
}

macro_rules! apply_indexed {
    ($name:ident, $view:ident, $edit:ident) => {
        fn $name<V: Val>(
            mut s: $view<'_, V>,
            op: &SetOp<V>,
            edit: impl FnOnce(&mut $view<'_, V>, (usize, &ItemEdit)),
        ) {
            let len = s.len();
            match op {
                SetOp::Add(v) => {
                    let _ = s.add(v.clone());
                }
                SetOp::Remove(v) => {
                    let _ = s.remove_where(|x| V::same(x, v));
                }
                SetOp::RemoveNth(p) if len > 0 => {
                    let target = at(*p, len);
                    let mut n = 0;
                    s.remove_where(|_| {
                        n += 1;
                        n - 1 == target
                    });
                }
                SetOp::Clear => s.clear(),
                SetOp::Edit(p, e) if len > 0 => edit(&mut s, (at(*p, len), e)),
                SetOp::RemoveNth(_) | SetOp::Edit(..) => {}
            }
        }

        fn $edit(s: &mut $view<'_, Item>, (i, e): (usize, &ItemEdit)) {
            let mut n = 0;
            s.for_each_mut(|it| {
                if n == i {
                    apply_item(it, e);
                }
                n += 1;
            });
        }
    };
}

apply_indexed!(apply_set, SetMut, edit_set_items);
apply_indexed!(apply_coll, CollectionMut, edit_coll_items);

/// One mutation of the root state.
#[derive(Debug, Clone)]
enum Op {
    Mp(MapOp<u8>),
    Ms(MapOp<Item>),
    Ap(ArrOp<u8>),
    Ab(ArrOp<bool>),
    Af(ArrOp<f32>),
    Mf(MapOp<f64>),
    Sf(SetOp<f64>),
    Astr(ArrOp<String>),
    As(ArrOp<Item>),
    Sp(SetOp<u8>),
    Ss(SetOp<Item>),
    Cp(SetOp<String>),
    Cs(SetOp<Item>),
    Bags(MapOp<Bag>),
    BagsEdit(String, BagEdit),
    SetBag(Option<Bag>),
    BagEdit(BagEdit),
    N(u8),
    PolyMap(MapOp<Poly>),
    PolyMapEdit(String, PolyEdit),
    PolyArr(ArrOp<Poly>),
    PolyArrEdit(Pos, PolyEdit),
    SetPoly(Option<Poly>),
    PolyEdit(PolyEdit),
    /// Moves a polymorphic child from the array to the map.
    PolyArrToMap(Pos, String),
    /// Moves an Item between collections: array → map.
    ArrToMap(Pos, String),
    /// map → set.
    MapToSet(String),
    /// set → array front.
    SetToArr(Pos),
    /// array → a nested bag's collection.
    ArrToBag(Pos),
}

fn apply(s: &mut StateMut<'_>, op: &Op) {
    match op {
        Op::Mp(o) => apply_map(s.mp_mut(), o, |_, _| {}),
        Op::Ms(o) => apply_map(s.ms_mut(), o, edit_map_items),
        Op::Ap(o) => apply_arr(s.ap_mut(), o, |_, _| {}),
        Op::Ab(o) => apply_arr(s.ab_mut(), o, |_, _| {}),
        Op::Af(o) => apply_arr(s.af_mut(), o, |_, _| {}),
        Op::Mf(o) => apply_map(s.mf_mut(), o, |_, _| {}),
        Op::Sf(o) => apply_set(s.sf_mut(), o, |_, _| {}),
        Op::Astr(o) => apply_arr(s.astr_mut(), o, |_, _| {}),
        Op::As(o) => apply_arr(s.as__mut(), o, edit_items),
        Op::Sp(o) => apply_set(s.sp_mut(), o, |_, _| {}),
        Op::Ss(o) => apply_set(s.ss_mut(), o, edit_set_items),
        Op::Cp(o) => apply_coll(s.cp_mut(), o, |_, _| {}),
        Op::Cs(o) => apply_coll(s.cs_mut(), o, edit_coll_items),
        Op::Bags(o) => apply_map(s.bags_mut(), o, |_, _| {}),
        Op::BagsEdit(k, e) => {
            if let Some(b) = s.bags_mut().get_mut(k) {
                apply_bag(b, e);
            }
        }
        Op::SetBag(b) => s.set_bag(b.clone()),
        Op::BagEdit(e) => {
            if let Some(b) = s.bag_mut() {
                apply_bag(b, e);
            }
        }
        Op::N(v) => s.set_n(*v),
        Op::PolyMap(o) => apply_map(s.poly_map_mut(), o, |_, _| {}),
        Op::PolyMapEdit(k, e) => {
            if let Some(p) = s.poly_map_mut().get_mut(k) {
                apply_poly(p, e);
            }
        }
        Op::PolyArr(o) => apply_arr(s.poly_arr_mut(), o, |_, _| {}),
        Op::PolyArrEdit(i, e) => {
            let len = s.poly_arr.len();
            if let Some(p) = s.poly_arr_mut().get_mut(at(*i, len)) {
                apply_poly(p, e);
            }
        }
        Op::SetPoly(p) => s.set_poly(p.clone()),
        Op::PolyEdit(e) => {
            if let Some(p) = s.poly_mut() {
                apply_poly(p, e);
            }
        }
        Op::PolyArrToMap(i, k) => {
            let len = s.poly_arr.len();
            if len > 0 {
                let x = s.poly_arr_mut().remove(at(*i, len));
                s.poly_map_mut().insert(k, x);
            }
        }
        Op::ArrToMap(p, k) => {
            let len = s.as_.len();
            if len > 0 {
                let x = s.as__mut().remove(at(*p, len));
                s.ms_mut().insert(k, x);
            }
        }
        Op::MapToSet(k) => {
            if let Some(x) = s.ms_mut().remove(k) {
                s.ss_mut().add(x);
            }
        }
        Op::SetToArr(p) => {
            let len = s.ss.len();
            if len > 0 {
                let target = at(*p, len);
                let mut n = 0;
                let x = s.ss_mut().remove_where(|_| {
                    n += 1;
                    n - 1 == target
                });
                if let Some(x) = x {
                    s.as__mut().unshift(x);
                }
            }
        }
        Op::ArrToBag(p) => {
            let len = s.as_.len();
            if len > 0 && s.bag.is_some() {
                let x = s.as__mut().remove(at(*p, len));
                if let Some(mut b) = s.bag_mut() {
                    b.bag_mut().add(x);
                }
            }
        }
    }
}

/// Ops on arrays of primitives.
fn prim_array_op() -> BoxedStrategy<Op> {
    prop_oneof![
        arr_op::<u8>(false).prop_map(Op::Ap),
        arr_op::<bool>(false).prop_map(Op::Ab),
        arr_op::<f32>(false).prop_map(Op::Af),
        arr_op::<String>(false).prop_map(Op::Astr),
    ]
    .boxed()
}

/// Ops on the array of structs (and edits inside its elements).
fn struct_array_op() -> BoxedStrategy<Op> {
    arr_op::<Item>(true).prop_map(Op::As).boxed()
}

/// Ops on maps, of primitives and of structs.
fn map_ops() -> BoxedStrategy<Op> {
    prop_oneof![
        map_op::<u8>(false).prop_map(Op::Mp),
        map_op::<Item>(true).prop_map(Op::Ms),
        map_op::<f64>(false).prop_map(Op::Mf),
    ]
    .boxed()
}

/// Ops on sets and collections, of primitives and of structs.
fn set_ops() -> BoxedStrategy<Op> {
    prop_oneof![
        set_op::<u8>(false).prop_map(Op::Sp),
        set_op::<Item>(true).prop_map(Op::Ss),
        set_op::<String>(false).prop_map(Op::Cp),
        set_op::<Item>(true).prop_map(Op::Cs),
        set_op::<f64>(false).prop_map(Op::Sf),
    ]
    .boxed()
}

/// Everything: nested bags, moves between collections, root fields.
fn any_op() -> BoxedStrategy<Op> {
    prop_oneof![
        2 => prim_array_op(),
        3 => struct_array_op(),
        2 => map_ops(),
        2 => set_ops(),
        1 => map_op::<Bag>(false).prop_map(Op::Bags),
        3 => (key(), bag_edit()).prop_map(|(k, e)| Op::BagsEdit(k, e)),
        1 => assignment(Bag::strategy()).prop_map(Op::SetBag),
        3 => bag_edit().prop_map(Op::BagEdit),
        1 => any::<u8>().prop_map(Op::N),
        1 => (any::<Pos>(), key()).prop_map(|(p, k)| Op::ArrToMap(p, k)),
        1 => key().prop_map(Op::MapToSet),
        1 => any::<Pos>().prop_map(Op::SetToArr),
        1 => any::<Pos>().prop_map(Op::ArrToBag),
        3 => poly_ops(),
    ]
    .boxed()
}

/// Ops on polymorphic children (map, array, optional field).
fn poly_ops() -> BoxedStrategy<Op> {
    prop_oneof![
        3 => map_op::<Poly>(false).prop_map(Op::PolyMap),
        2 => (key(), poly_edit()).prop_map(|(k, e)| Op::PolyMapEdit(k, e)),
        3 => arr_op::<Poly>(false).prop_map(Op::PolyArr),
        2 => (any::<Pos>(), poly_edit()).prop_map(|(i, e)| Op::PolyArrEdit(i, e)),
        1 => assignment(Poly::strategy()).prop_map(Op::SetPoly),
        1 => poly_edit().prop_map(Op::PolyEdit),
        1 => (any::<Pos>(), key()).prop_map(|(i, k)| Op::PolyArrToMap(i, k)),
    ]
    .boxed()
}

/// An initial state (built before the encoder exists).
fn initial() -> impl Strategy<Value = Initial> {
    (
        prop::collection::vec(u8::strategy(), 0..4),
        prop::collection::vec(String::strategy(), 0..3),
        prop::collection::vec(Item::strategy(), 0..4),
        prop::collection::vec((key(), Item::strategy()), 0..3),
        prop::collection::vec(Item::strategy(), 0..3),
        prop::option::of(Bag::strategy()),
    )
        .prop_map(|(ap, astr, as_, ms, ss, bag)| Initial {
            ap,
            astr,
            as_,
            ms,
            ss,
            bag,
        })
}

#[derive(Debug, Clone)]
struct Initial {
    ap: Vec<u8>,
    astr: Vec<String>,
    as_: Vec<Item>,
    ms: Vec<(String, Item)>,
    ss: Vec<Item>,
    bag: Option<Bag>,
}

impl Initial {
    fn build(&self) -> State {
        State {
            ap: self.ap.iter().copied().collect(),
            astr: self.astr.iter().cloned().collect(),
            as_: self.as_.iter().cloned().collect(),
            ms: self.ms.iter().cloned().collect(),
            ss: self.ss.iter().cloned().collect(),
            bag: self.bag.clone(),
            ..State::default()
        }
    }
}

type Ticks = Vec<Vec<Op>>;

/// An initial state, ticks of ops, and the tick before which a late client
/// joins (modulo the tick count).
fn sequence(op: BoxedStrategy<Op>) -> impl Strategy<Value = (Initial, Ticks, usize)> {
    (
        initial(),
        prop::collection::vec(prop::collection::vec(op, 1..7), 1..6),
        any::<usize>(),
    )
}

const V5: &[SchemaVersion] = &[SchemaVersion::V5];
const BOTH: &[SchemaVersion] = &[SchemaVersion::V5, SchemaVersion::V3];
// ----- runners ---------------------------------------------------------------------

fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn runner(default_cases: u32) -> TestRunner {
    TestRunner::new(Config {
        cases: cases(default_cases),
        // Every case talks to Node; shrinking still gets a minimal sequence.
        max_shrink_iters: 2048,
        failure_persistence: None,
        ..Config::default()
    })
}

/// Runs a sequence: after every tick, 5.x and 3.x stream clients and fresh
/// joiners must hold the server state.
fn run_case(
    node: &mut NodeDecoder,
    versions: &[SchemaVersion],
    late: &[SchemaVersion],
    initial: &Initial,
    ticks: &Ticks,
    join: usize,
) -> Result<(), String> {
    let mut h = Harness::with_clients(node, initial.build(), versions)?;
    for (i, ops) in ticks.iter().enumerate() {
        if i == join % ticks.len() {
            h.join_late(node, late)?;
        }
        h.tick(node, &format!("ops {i}"), |mut s| {
            for op in ops {
                apply(&mut s, op);
            }
        })?;
    }
    h.close(node);
    Ok(())
}

fn interop_property(
    default_cases: u32,
    versions: &[SchemaVersion],
    late: &[SchemaVersion],
    ops: fn() -> BoxedStrategy<Op>,
) {
    check_state_json::<State>();
    check_state_json::<Bag>();
    check_state_json::<Item>();
    check_state_json::<Leaf>();
    check_state_json::<Base>();
    check_state_json::<Sub1>();
    check_state_json::<Sub2>();
    let node = RefCell::new(NodeDecoder::new());
    let result = runner(default_cases).run(&sequence(ops()), |(initial, ticks, join)| {
        run_case(
            &mut node.borrow_mut(),
            versions,
            late,
            &initial,
            &ticks,
            join,
        )
        .map_err(TestCaseError::fail)
    });
    if let Err(e) = result {
        panic!("{e}");
    }
}

#[test]
fn arrays_of_primitives_follow_the_server() {
    interop_property(1000, V5, V5, prim_array_op);
}

#[test]
fn arrays_of_structs_follow_the_server() {
    interop_property(1000, V5, V5, struct_array_op);
}

#[test]
fn maps_follow_the_server() {
    interop_property(500, V5, V5, map_ops);
}

#[test]
fn sets_and_collections_follow_the_server() {
    interop_property(500, V5, V5, set_ops);
}

#[test]
fn polymorphic_children_follow_the_server() {
    interop_property(500, V5, V5, poly_ops);
}

#[test]
fn nested_mixed_collections_follow_the_server() {
    interop_property(1000, V5, V5, any_op);
}

/// Everything, with 3.0.76 clients fed the legacy patches beside the
/// 5.0.34 ones (the late joiner is a 5.x client).
#[test]
fn legacy_clients_follow_the_server() {
    interop_property(1000, BOTH, V5, any_op);
}

/// 3.0.76 clients that join late and follow the legacy patches.
#[test]
fn late_legacy_clients_follow_the_server() {
    interop_property(1000, BOTH, BOTH, any_op);
}

// ----- pure Rust ---------------------------------------------------------------------

/// Three encoders run the same sequence: `encode_patch` (modern),
/// `encode_patch_as(Legacy)` and `encode_patch_both` must agree byte for
/// byte, every full state is the same, and Roomcast's decoders following
/// the patches of their dialect (dynamic and typed, 5.x and 3.x / 4.x;
/// and one decoding each full state) hold the state.
#[test]
fn patch_dialects_agree_and_rust_decoder_follows() {
    let types = roomcast_schema::registry_of::<State>().expect("types");
    let result = runner(1000).run(&sequence(any_op()), |(initial, ticks, _)| {
        let mut modern = Encoder::new(initial.build());
        let mut legacy = Encoder::new(initial.build());
        let mut both = Encoder::new(initial.build());
        let mut decoder = DynamicDecoder::new(types.clone());
        // Typed decoders following each dialect's patches, and a dynamic
        // one following the legacy patches.
        let mut typed = Decoder::<State>::new().expect("types");
        let mut typed_legacy = Decoder::<State>::new().expect("types");
        typed_legacy.set_dialect(Dialect::Legacy);
        let mut dynamic_legacy = DynamicDecoder::new(types.clone());
        dynamic_legacy.set_dialect(Dialect::Legacy);
        let empty: Vec<Op> = Vec::new();
        for (i, ops) in std::iter::once(&empty).chain(&ticks).enumerate() {
            for enc in [&mut modern, &mut legacy, &mut both] {
                let mut s = enc.state_mut();
                for op in ops {
                    apply(&mut s, op);
                }
            }
            let m = modern.encode_patch().to_vec();
            let l = legacy.encode_patch_as(Dialect::Legacy).to_vec();
            let (bm, bl) = both.encode_patch_both();
            prop_assert_eq!(&m, bm, "tick {}: modern patch", i);
            prop_assert_eq!(&l, bl, "tick {}: legacy patch", i);
            let full = modern.encode_all().to_vec();
            prop_assert_eq!(&full, legacy.encode_all(), "tick {}: full", i);
            prop_assert_eq!(&full, both.encode_all(), "tick {}: full", i);

            let expected = canon(&modern.state().state_json());
            for (d, patch, what) in [
                (&mut decoder, &m, "patch"),
                (&mut dynamic_legacy, &l, "legacy patch"),
            ] {
                d.decode(patch)
                    .map_err(|e| TestCaseError::fail(format!("tick {i}: {what}: {e}")))?;
                let got: serde_json::Value =
                    serde_json::from_str(&d.to_json()).expect("decoder JSON");
                prop_assert_eq!(&canon(&got), &expected, "tick {}: {} stream", i, what);
            }
            for (d, patch, what) in [
                (&mut typed, &m, "typed"),
                (&mut typed_legacy, &l, "typed legacy"),
            ] {
                d.decode(patch)
                    .map_err(|e| TestCaseError::fail(format!("tick {i}: {what} patch: {e}")))?;
                prop_assert_eq!(d.unrepresentable(), 0, "tick {}: {}", i, what);
                let got = canon(&d.state().state_json());
                prop_assert_eq!(&got, &expected, "tick {}: {} patch stream", i, what);
            }
            let mut fresh = DynamicDecoder::new(types.clone());
            fresh
                .decode(&full)
                .map_err(|e| TestCaseError::fail(format!("tick {i}: full: {e}")))?;
            let got: serde_json::Value =
                serde_json::from_str(&fresh.to_json()).expect("decoder JSON");
            prop_assert_eq!(&canon(&got), &expected, "tick {}: full state", i);
        }
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
}
