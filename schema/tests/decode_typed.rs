//! Typed decoding: `#[derive(Schema)]` types decoded with [`Decoder<T>`]
//! over the reference vectors (every patch chain and every full state),
//! compared field by field with the states the real decoder holds.
//!
//! The decode side of each type is written by hand here with the
//! `decode_impls!` macro, which spells out what `#[derive(Schema)]`
//! generates once it calls `schema-derive/src/decode.rs` (then the macro
//! invocations go away).

use std::any::TypeId as RustTypeId;

use roomcast_schema::decoder::{
    decode_set, DecodeField, DecodeNode, DecodeState, DecodeStruct, Decoder, FieldInput,
};
use roomcast_schema::types::{TypeError, TypeRegistry};
use roomcast_schema::{
    registry_of, ArraySchema, CollectionSchema, Field, MapSchema, Schema, SetSchema,
};
use serde_json::{json, Map, Value as Json};

/// The decode impls `#[derive(Schema)]` generates for a struct.
macro_rules! decode_impls {
    ($ty:ident $(extends $base:ident : $bty:ty)? { $($i:literal => $f:ident),* $(,)? }) => {
        impl DecodeNode for $ty {
            fn __decode_field(&mut self, index: u8, input: FieldInput<'_>) -> bool {
                $(
                    let n = <$bty as Schema>::FIELD_COUNT as u8;
                    if index < n {
                        return self.$base.__decode_field(index, input);
                    }
                    let index = index - n;
                )?
                match index {
                    $($i => decode_set(&mut self.$f, input),)*
                    _ => false,
                }
            }
            fn __decode_visit_child(&mut self, index: u8, f: &mut dyn FnMut(&mut dyn DecodeNode)) {
                $(
                    let n = <$bty as Schema>::FIELD_COUNT as u8;
                    if index < n {
                        return self.$base.__decode_visit_child(index, f);
                    }
                    let index = index - n;
                )?
                let node = match index {
                    $($i => DecodeField::__decode_node(&mut self.$f),)*
                    _ => None,
                };
                if let Some(node) = node {
                    f(node);
                }
            }
            fn __decode_take_child(&mut self, index: u8) -> Option<Box<dyn DecodeNode>> {
                $(
                    let n = <$bty as Schema>::FIELD_COUNT as u8;
                    if index < n {
                        return self.$base.__decode_take_child(index);
                    }
                    let index = index - n;
                )?
                match index {
                    $($i => DecodeField::__decode_take(&mut self.$f),)*
                    _ => None,
                }
            }
            fn __decode_into_any(self: Box<Self>) -> Box<dyn std::any::Any> {
                self
            }
        }
        impl DecodeStruct for $ty {
            fn __decode_new_struct(ty: RustTypeId) -> Option<Self> {
                (ty == RustTypeId::of::<Self>()).then(Self::default)
            }
            fn __decode_placeholder() -> Self {
                Self::default()
            }
        }
        impl DecodeState for $ty {
            fn __decode_types() -> Result<(TypeRegistry, Vec<(RustTypeId, u32)>), TypeError> {
                Ok((registry_of::<Self>()?, <Self as Field>::__type_ids()))
            }
        }
    };
}

/// The decode impls `#[derive(Schema)]` generates for an enum.
macro_rules! decode_enum_impls {
    ($ty:ident { $($v:ident($vty:ty)),* $(,)? }) => {
        impl DecodeNode for $ty {
            fn __decode_field(&mut self, index: u8, input: FieldInput<'_>) -> bool {
                match self {
                    $(Self::$v(x) => x.__decode_field(index, input),)*
                }
            }
            fn __decode_visit_child(&mut self, index: u8, f: &mut dyn FnMut(&mut dyn DecodeNode)) {
                match self {
                    $(Self::$v(x) => x.__decode_visit_child(index, f),)*
                }
            }
            fn __decode_take_child(&mut self, index: u8) -> Option<Box<dyn DecodeNode>> {
                match self {
                    $(Self::$v(x) => x.__decode_take_child(index),)*
                }
            }
            fn __decode_into_any(self: Box<Self>) -> Box<dyn std::any::Any> {
                self
            }
        }
        impl DecodeStruct for $ty {
            fn __decode_new_struct(ty: RustTypeId) -> Option<Self> {
                $(if let Some(x) = <$vty as DecodeStruct>::__decode_new_struct(ty) {
                    return Some(Self::$v(x));
                })*
                None
            }
            fn __decode_placeholder() -> Self {
                decode_enum_impls!(@first $ty $($v($vty)),*)
            }
        }
    };
    (@first $ty:ident $v:ident($vty:ty) $(, $rest:ident($rty:ty))*) => {
        $ty::$v(<$vty as DecodeStruct>::__decode_placeholder())
    };
}

/// JSON in the vectors' conventions.
trait ToJson {
    fn to_json(&self) -> Option<Json>;
}

impl ToJson for String {
    fn to_json(&self) -> Option<Json> {
        Some(json!(self))
    }
}

impl ToJson for u8 {
    fn to_json(&self) -> Option<Json> {
        Some(json!(self))
    }
}

impl ToJson for u16 {
    fn to_json(&self) -> Option<Json> {
        Some(json!(self))
    }
}

impl ToJson for f64 {
    fn to_json(&self) -> Option<Json> {
        if self.fract() == 0.0 && self.abs() < 9e15 {
            Some(json!(*self as i64))
        } else {
            Some(json!(self))
        }
    }
}

impl<T: ToJson> ToJson for Option<T> {
    fn to_json(&self) -> Option<Json> {
        self.as_ref()?.to_json()
    }
}

impl<V: ToJson + Field> ToJson for MapSchema<V> {
    fn to_json(&self) -> Option<Json> {
        Some(Json::Object(
            self.iter()
                .map(|(k, v)| (k.to_owned(), v.to_json().unwrap_or(Json::Null)))
                .collect(),
        ))
    }
}

macro_rules! list_json {
    ($($c:ident),*) => {$(
        impl<V: ToJson + Field> ToJson for $c<V> {
            fn to_json(&self) -> Option<Json> {
                Some(Json::Array(self.iter().map(|v| v.to_json().unwrap_or(Json::Null)).collect()))
            }
        }
    )*};
}
list_json!(ArraySchema, SetSchema, CollectionSchema);

macro_rules! struct_json {
    ($ty:ident { $($f:ident),* }) => {
        impl ToJson for $ty {
            fn to_json(&self) -> Option<Json> {
                let mut m = Map::new();
                $(if let Some(v) = self.$f.to_json() { m.insert(stringify!($f).to_owned(), v); })*
                Some(Json::Object(m))
            }
        }
    };
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

fn vector(name: &str) -> Json {
    let path = format!(
        "{}/../tests/fixtures/vectors/{name}.json",
        env!("CARGO_MANIFEST_DIR")
    );
    serde_json::from_str(&std::fs::read_to_string(path).expect("vector")).expect("json")
}

/// Whether two paths of a step's `refIds` name the same instance.
fn shares_instances(step: &Json) -> bool {
    let ids: Vec<&Json> = step["refIds"]
        .as_object()
        .expect("refIds")
        .values()
        .collect();
    ids.iter().enumerate().any(|(i, a)| ids[..i].contains(a))
}

/// Replays a vector through `Decoder<T>`: the patch chain against each
/// `state`, each `full` into a fresh decoder. Steps where the server shares
/// one instance between two parents are only checked on the shadow (the
/// typed state keeps such an instance in one place, and says so through
/// `unrepresentable`); returns how many there were.
fn replay<T: DecodeState + ToJson>(name: &str) -> usize {
    let v = vector(name);
    let mut shared = 0;
    let mut chain = Decoder::<T>::new().expect("types");
    for (i, step) in v["steps"].as_array().expect("steps").iter().enumerate() {
        let ctx = format!("{name} step {i} ({})", step["name"]);
        let sharing = shares_instances(step);
        let before = chain.unrepresentable();
        chain
            .decode(&hex(step["patch"].as_str().expect("patch")))
            .unwrap_or_else(|e| panic!("{ctx}: {e}"));
        let shadow: Json = serde_json::from_str(&chain.dynamic().to_json()).expect("shadow JSON");
        assert_eq!(shadow, step["state"], "{ctx}: shadow");
        let mut fresh = Decoder::<T>::new().expect("types");
        fresh
            .decode(&hex(step["full"].as_str().expect("full")))
            .unwrap_or_else(|e| panic!("{ctx} full: {e}"));
        let want = if step["divergent"].as_bool() == Some(true) {
            &step["fullState"]
        } else {
            &step["state"]
        };
        if sharing {
            shared += 1;
            assert!(fresh.unrepresentable() > 0, "{ctx}: sharing not reported");
            continue;
        }
        assert_eq!(chain.unrepresentable(), before, "{ctx}");
        assert_eq!(
            chain.state().to_json().expect("state"),
            step["state"],
            "{ctx}: typed patch chain"
        );
        assert_eq!(fresh.unrepresentable(), 0, "{ctx}");
        assert_eq!(
            fresh.state().to_json().expect("state"),
            *want,
            "{ctx}: typed full"
        );
    }
    shared
}

// nested_3_deep

#[derive(Schema, Default, Debug)]
struct Leaf {
    #[schema(number)]
    value: Option<f64>,
    label: Option<String>,
}

#[derive(Schema, Default, Debug)]
struct Middle {
    leaf: Option<Leaf>,
    m: Option<u8>,
}

#[derive(Schema, Default, Debug)]
struct Top {
    middle: Option<Middle>,
}

#[derive(Schema, Default, Debug)]
struct Nested {
    top: Option<Top>,
    name: Option<String>,
}

decode_impls!(Leaf { 0 => value, 1 => label });
decode_impls!(Middle { 0 => leaf, 1 => m });
decode_impls!(Top { 0 => middle });
decode_impls!(Nested { 0 => top, 1 => name });
struct_json!(Leaf { value, label });
struct_json!(Middle { leaf, m });
struct_json!(Top { middle });
struct_json!(Nested { top, name });

#[test]
fn nested_3_deep() {
    assert_eq!(replay::<Nested>("nested_3_deep"), 0);
}

// map_of_schemas, move_child_between_maps

#[derive(Schema, Default, Debug)]
struct Player {
    name: Option<String>,
    #[schema(number)]
    x: Option<f64>,
    #[schema(number)]
    y: Option<f64>,
}

#[derive(Schema, Default, Debug)]
struct Players {
    players: Option<MapSchema<Player>>,
}

decode_impls!(Player { 0 => name, 1 => x, 2 => y });
decode_impls!(Players { 0 => players });
struct_json!(Player { name, x, y });
struct_json!(Players { players });

#[test]
fn map_of_schemas() {
    assert_eq!(replay::<Players>("map_of_schemas"), 0);
}

#[derive(Schema, Default, Debug)]
struct Named {
    name: Option<String>,
}

#[derive(Schema, Default, Debug)]
struct Lobby {
    lobby: Option<MapSchema<Named>>,
    game: Option<MapSchema<Named>>,
}

decode_impls!(Named { 0 => name });
decode_impls!(Lobby { 0 => lobby, 1 => game });
struct_json!(Named { name });
struct_json!(Lobby { lobby, game });

#[test]
fn move_child_between_maps() {
    // Step 2 puts one instance in both maps: the typed state keeps it in one
    // (and says so); every other step is exact.
    assert_eq!(replay::<Lobby>("move_child_between_maps"), 2);
}

// array / set / collection of schemas

#[derive(Schema, Default, Debug)]
struct Item {
    id: Option<u16>,
    #[schema(number)]
    qty: Option<f64>,
}

#[derive(Schema, Default, Debug)]
struct Items {
    items: Option<ArraySchema<Item>>,
}

#[derive(Schema, Default, Debug)]
struct ItemSet {
    s: Option<SetSchema<Item>>,
}

#[derive(Schema, Default, Debug)]
struct ItemCollection {
    c: Option<CollectionSchema<Item>>,
}

decode_impls!(Item { 0 => id, 1 => qty });
decode_impls!(Items { 0 => items });
decode_impls!(ItemSet { 0 => s });
decode_impls!(ItemCollection { 0 => c });
struct_json!(Item { id, qty });
struct_json!(Items { items });
struct_json!(ItemSet { s });
struct_json!(ItemCollection { c });

#[test]
fn array_of_schemas() {
    assert_eq!(replay::<Items>("array_of_schemas"), 0);
}

#[test]
fn set_of_schemas() {
    assert_eq!(replay::<ItemSet>("set_of_schemas"), 0);
}

#[test]
fn collection_of_schemas() {
    assert_eq!(replay::<ItemCollection>("collection_of_schemas"), 0);
}

// nested collections (collections of `number` cannot be declared with the
// derive yet, so `map_of_schemas_with_collections` and
// `array_of_primitives` are replayed by the dynamic decoder only)

#[derive(Schema, Default, Debug)]
struct Card {
    suit: Option<String>,
    rank: Option<u8>,
}

#[derive(Schema, Default, Debug)]
struct Hand {
    cards: Option<ArraySchema<Card>>,
    tags: Option<SetSchema<String>>,
    marks: Option<CollectionSchema<u8>>,
}

#[derive(Schema, Default, Debug)]
struct Table {
    hands: Option<MapSchema<Hand>>,
    deck: Option<ArraySchema<Card>>,
    log: Option<ArraySchema<String>>,
}

decode_impls!(Card { 0 => suit, 1 => rank });
decode_impls!(Hand { 0 => cards, 1 => tags, 2 => marks });
decode_impls!(Table { 0 => hands, 1 => deck, 2 => log });
struct_json!(Card { suit, rank });
struct_json!(Hand { cards, tags, marks });
struct_json!(Table { hands, deck, log });

// inheritance

#[derive(Schema, Default, Debug)]
struct BaseState {
    tick: Option<u32>,
    mode: Option<String>,
}

#[derive(Schema, Default, Debug)]
struct GameState {
    #[schema(extends)]
    base: BaseState,
    #[schema(number)]
    score: Option<f64>,
}

impl ToJson for u32 {
    fn to_json(&self) -> Option<Json> {
        Some(json!(self))
    }
}

decode_impls!(BaseState { 0 => tick, 1 => mode });
decode_impls!(GameState extends base: BaseState { 0 => score });

impl ToJson for GameState {
    fn to_json(&self) -> Option<Json> {
        let mut m = Map::new();
        if let Some(v) = self.base.tick.to_json() {
            m.insert("tick".into(), v);
        }
        if let Some(v) = self.base.mode.to_json() {
            m.insert("mode".into(), v);
        }
        if let Some(v) = self.score.to_json() {
            m.insert("score".into(), v);
        }
        Some(Json::Object(m))
    }
}

#[test]
fn inherited_root() {
    assert_eq!(replay::<GameState>("inherited_root"), 0);
}

#[test]
fn rejected_patch_leaves_the_typed_state_unchanged() {
    let v = vector("map_of_schemas");
    let steps = v["steps"].as_array().expect("steps");
    let mut d = Decoder::<Players>::new().expect("types");
    d.decode(&hex(steps[0]["patch"].as_str().expect("patch")))
        .expect("initial");
    let before = d.state().to_json();
    // A valid update of player #2 followed by a bad byte: nothing applied.
    let err = d
        .decode(&[0xff, 0x02, 0x81, 0x07, 0x82, 0xc1])
        .expect_err("invalid");
    assert_eq!(err.offset(), 5);
    assert_eq!(d.state().to_json(), before);
    d.decode(&[0xff, 0x02, 0x81, 0x07]).expect("valid");
    assert_eq!(
        d.state()
            .players
            .as_ref()
            .and_then(|p| p.get("p1"))
            .and_then(|p| p.x),
        Some(7.0)
    );
}

// Round trip with our own encoder: random mutation sequences on `Table`,
// one patch per tick; the typed decoder must hold the server's state after
// every patch, and after a full state.

mod round_trip {
    use super::*;
    use proptest::prelude::*;
    use roomcast_schema::Encoder;

    #[derive(Debug, Clone)]
    enum Op {
        InsertHand(u8, Vec<(u8, u8)>),
        RemoveHand(u8),
        Push(Option<u8>, u8, u8),
        Pop(Option<u8>),
        Shift(Option<u8>),
        Unshift(Option<u8>, u8, u8),
        Insert(Option<u8>, u8, u8, u8),
        Remove(Option<u8>, u8),
        SetCard(Option<u8>, u8, u8),
        SetRank(Option<u8>, u8, u8),
        Reverse(Option<u8>),
        Clear(Option<u8>),
        Tag(u8, u8, bool),
        Mark(u8, u8, bool),
        Log(u8, bool),
        Deck(bool),
    }

    fn card(suit: u8, rank: u8) -> Card {
        Card {
            suit: Some(["h", "d", "c", "s"][usize::from(suit % 4)].to_owned()),
            rank: Some(rank),
        }
    }

    fn key(k: u8) -> String {
        format!("p{}", k % 4)
    }

    fn op() -> impl Strategy<Value = Op> {
        let hand = proptest::option::of(0u8..4);
        prop_oneof![
            (0u8..4, proptest::collection::vec((0u8..4, 0u8..13), 0..3))
                .prop_map(|(k, c)| Op::InsertHand(k, c)),
            (0u8..4).prop_map(Op::RemoveHand),
            (hand.clone(), 0u8..4, 0u8..13).prop_map(|(h, s, r)| Op::Push(h, s, r)),
            hand.clone().prop_map(Op::Pop),
            hand.clone().prop_map(Op::Shift),
            (hand.clone(), 0u8..4, 0u8..13).prop_map(|(h, s, r)| Op::Unshift(h, s, r)),
            (hand.clone(), 0u8..6, 0u8..4, 0u8..13).prop_map(|(h, i, s, r)| Op::Insert(h, i, s, r)),
            (hand.clone(), 0u8..6).prop_map(|(h, i)| Op::Remove(h, i)),
            (hand.clone(), 0u8..6, 0u8..4).prop_map(|(h, i, s)| Op::SetCard(h, i, s)),
            (hand.clone(), 0u8..6, 0u8..13).prop_map(|(h, i, r)| Op::SetRank(h, i, r)),
            hand.clone().prop_map(Op::Reverse),
            hand.prop_map(Op::Clear),
            (0u8..4, 0u8..5, any::<bool>()).prop_map(|(k, t, add)| Op::Tag(k, t, add)),
            (0u8..4, 0u8..5, any::<bool>()).prop_map(|(k, m, add)| Op::Mark(k, m, add)),
            (0u8..5, any::<bool>()).prop_map(|(m, add)| Op::Log(m, add)),
            any::<bool>().prop_map(Op::Deck),
        ]
    }

    /// Applies `op` to the array it names (a hand's cards, or the deck).
    fn on_cards(
        enc: &mut Encoder<Table>,
        hand: Option<u8>,
        f: impl FnOnce(&mut roomcast_schema::ArrayMut<'_, Card>),
    ) {
        let mut s = enc.state_mut();
        match hand {
            None => {
                if let Some(mut deck) = s.deck_mut() {
                    f(&mut deck);
                }
            }
            Some(k) => {
                if let Some(mut hands) = s.hands_mut() {
                    if let Some(mut h) = hands.get_mut(&key(k)) {
                        if let Some(mut cards) = h.cards_mut() {
                            f(&mut cards);
                        }
                    }
                }
            }
        }
    }

    fn apply(enc: &mut Encoder<Table>, op: &Op) {
        match op.clone() {
            Op::InsertHand(k, cards) => {
                let hand = Hand {
                    cards: Some(cards.into_iter().map(|(s, r)| card(s, r)).collect()),
                    tags: Some(SetSchema::new()),
                    marks: Some(CollectionSchema::new()),
                };
                if let Some(mut hands) = enc.state_mut().hands_mut() {
                    hands.insert(key(k), hand);
                }
            }
            Op::RemoveHand(k) => {
                if let Some(mut hands) = enc.state_mut().hands_mut() {
                    hands.remove(&key(k));
                }
            }
            Op::Push(h, s, r) => on_cards(enc, h, |a| a.push(card(s, r))),
            Op::Pop(h) => on_cards(enc, h, |a| {
                a.pop();
            }),
            Op::Shift(h) => on_cards(enc, h, |a| {
                a.shift();
            }),
            Op::Unshift(h, s, r) => on_cards(enc, h, |a| a.unshift(card(s, r))),
            Op::Insert(h, i, s, r) => on_cards(enc, h, |a| {
                let i = usize::from(i).min(a.len());
                a.insert(i, card(s, r));
            }),
            Op::Remove(h, i) => on_cards(enc, h, |a| {
                if usize::from(i) < a.len() {
                    a.remove(usize::from(i));
                }
            }),
            Op::SetCard(h, i, s) => on_cards(enc, h, |a| {
                if usize::from(i) < a.len() {
                    a.set(usize::from(i), card(s, 1));
                }
            }),
            Op::SetRank(h, i, r) => on_cards(enc, h, |a| {
                if let Some(mut c) = a.get_mut(usize::from(i)) {
                    c.set_rank(Some(r));
                }
            }),
            Op::Reverse(h) => on_cards(enc, h, |a| a.reverse()),
            Op::Clear(h) => on_cards(enc, h, |a| a.clear()),
            Op::Tag(k, t, add) => {
                if let Some(mut hands) = enc.state_mut().hands_mut() {
                    if let Some(mut h) = hands.get_mut(&key(k)) {
                        if let Some(mut tags) = h.tags_mut() {
                            let tag = format!("t{t}");
                            if add {
                                tags.add(tag);
                            } else {
                                tags.remove(&tag);
                            }
                        }
                    }
                }
            }
            Op::Mark(k, m, add) => {
                if let Some(mut hands) = enc.state_mut().hands_mut() {
                    if let Some(mut h) = hands.get_mut(&key(k)) {
                        if let Some(mut marks) = h.marks_mut() {
                            if add {
                                marks.add(m);
                            } else {
                                marks.remove_where(|&x| x == m);
                            }
                        }
                    }
                }
            }
            Op::Log(m, add) => {
                if let Some(mut log) = enc.state_mut().log_mut() {
                    if add {
                        log.push(format!("event {m}"));
                    } else {
                        log.shift();
                    }
                }
            }
            Op::Deck(present) => {
                let deck = present.then(|| [card(0, 1), card(1, 2)].into_iter().collect());
                enc.state_mut().set_deck(deck);
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]

        #[test]
        fn typed_decoder_follows_our_encoder(ticks in proptest::collection::vec(proptest::collection::vec(op(), 1..6), 1..8)) {
            let state = Table {
                hands: Some(MapSchema::new()),
                deck: Some(ArraySchema::new()),
                log: Some(ArraySchema::new()),
            };
            let mut enc = Encoder::new(state);
            let mut dec = Decoder::<Table>::new().expect("types");
            // The first patch carries the initial state.
            dec.decode(enc.encode_patch()).expect("initial patch");
            for (t, ops) in ticks.iter().enumerate() {
                for op in ops {
                    apply(&mut enc, op);
                }
                let patch = enc.encode_patch().to_vec();
                dec.decode(&patch).unwrap_or_else(|e| panic!("tick {t}: {e}"));
                let want = enc.state().to_json();
                prop_assert_eq!(dec.unrepresentable(), 0);
                prop_assert_eq!(dec.state().to_json(), want.clone(), "tick {} ops {:?}", t, ops);
                let mut fresh = Decoder::<Table>::new().expect("types");
                fresh.decode(enc.encode_all()).expect("full state");
                prop_assert_eq!(fresh.state().to_json(), want, "full state at tick {}", t);
            }
        }
    }
}

// polymorphic children (a derived enum, TYPE_ID) with inheritance

#[derive(Schema, Default, Debug)]
struct Entity {
    #[schema(number)]
    x: Option<f64>,
}

#[derive(Schema, Default, Debug)]
struct Hero {
    #[schema(extends)]
    base: Entity,
    name: Option<String>,
}

#[derive(Schema, Default, Debug)]
struct Monster {
    #[schema(extends)]
    base: Entity,
    hp: Option<u8>,
}

#[derive(Schema, Debug)]
enum AnyEntity {
    Entity(Entity),
    Hero(Hero),
    Monster(Monster),
}

#[derive(Schema, Default, Debug)]
struct PolyState {
    main: Option<AnyEntity>,
    all: Option<MapSchema<AnyEntity>>,
    list: Option<ArraySchema<AnyEntity>>,
}

decode_impls!(Entity { 0 => x });
decode_impls!(Hero extends base: Entity { 0 => name });
decode_impls!(Monster extends base: Entity { 0 => hp });
decode_enum_impls!(AnyEntity { Entity(Entity), Hero(Hero), Monster(Monster) });
decode_impls!(PolyState { 0 => main, 1 => all, 2 => list });

impl ToJson for AnyEntity {
    fn to_json(&self) -> Option<Json> {
        let mut m = Map::new();
        let (x, extra) = match self {
            Self::Entity(e) => (e.x, None),
            Self::Hero(h) => (h.base.x, h.name.as_ref().map(|n| ("name", json!(n)))),
            Self::Monster(mo) => (mo.base.x, mo.hp.map(|hp| ("hp", json!(hp)))),
        };
        if let Some(v) = x.to_json() {
            m.insert("x".into(), v);
        }
        if let Some((k, v)) = extra {
            m.insert(k.into(), v);
        }
        Some(Json::Object(m))
    }
}
struct_json!(PolyState { main, all, list });

#[test]
fn polymorphic_children() {
    assert_eq!(replay::<PolyState>("polymorphic_children"), 0);
}

/// Fuzz regression (`fuzz/regressions/decode_typed/crash-cdc16b0a…`): one
/// instance twice in one array. The typed state keeps it at its first
/// position, with every later change, and reports the duplicate.
#[test]
fn same_instance_twice_in_one_array() {
    let msg = [
        0x80, 0x01, 0x81, 0x0b, 0x82, 0x0c, // hands #1, deck #11, log #12
        0xff, 0x01, 0x80, 0x00, 0xa1, b'a', 0x02, // hands["a"] = #2
        0xff, 0x02, 0x80, 0x03, 0x81, 0x06, 0x82, 0x07, // cards #3, tags #6, marks #7
        0xff, 0x03, 0x80, 0x00, 0x04, // cards[0] = #4
        0xff, 0x04, 0x80, 0xa1, b'h', 0x81, 0x03, // suit "h", rank 3
        0xff, 0x03, 0x80, 0x03, 0x04, // cards[3] = #4 again: [#4, #4]
        0xff, 0x04, 0x81, 0x05, // rank 5
    ];
    let mut d = Decoder::<Table>::new().expect("types");
    d.decode(&msg).expect("valid");
    assert_eq!(
        d.dynamic().to_json(),
        r#"{"deck":[],"hands":{"a":{"cards":[{"rank":5,"suit":"h"},{"rank":5,"suit":"h"}],"marks":[],"tags":[]}},"log":[]}"#
    );
    assert!(d.unrepresentable() > 0);
    let cards: Vec<Option<u8>> = d
        .state()
        .hands
        .as_ref()
        .and_then(|h| h.get("a"))
        .and_then(|h| h.cards.as_ref())
        .map(|c| c.iter().map(|c| c.rank).collect())
        .unwrap_or_default();
    assert_eq!(cards, [Some(5), None]);
}

/// Fuzz regression (`fuzz/regressions/decode_typed/crash-394f1c4c…`): an
/// instance shared by two parents, then released by the one that received
/// it last: the typed value goes back to the first.
#[test]
fn shared_instance_returns_to_its_remaining_parent() {
    let mut d = Decoder::<Table>::new().expect("types");
    d.decode(&[
        0x80, 0x01, 0x81, 0x05, // hands #1, deck #5
        0xff, 0x05, 0x80, 0x00, 0x06, // deck[0] = card #6
        0xff, 0x06, 0x81, 0x07, // rank 7
        0xff, 0x01, 0x80, 0x00, 0xa1, b'a', 0x02, // hands["a"] = #2
        0xff, 0x02, 0x80, 0x05, // its cards: the deck itself
    ])
    .expect("valid");
    assert!(d.unrepresentable() > 0, "sharing is reported");
    // The hand lets go of the deck in a later patch (and, below, in the
    // same one).
    d.decode(&[0xff, 0x02, 0x40]).expect("valid");
    let deck: Vec<Option<u8>> = d
        .state()
        .deck
        .as_ref()
        .map(|c| c.iter().map(|c| c.rank).collect())
        .unwrap_or_default();
    assert_eq!(deck, [Some(7)]);
    let mut same_message = Decoder::<Table>::new().expect("types");
    same_message
        .decode(&[
            0x80, 0x01, 0x81, 0x05, 0xff, 0x05, 0x80, 0x00, 0x06, 0xff, 0x06, 0x81, 0x07, 0xff,
            0x01, 0x80, 0x00, 0xa1, b'a', 0x02, 0xff, 0x02, 0x80, 0x05, 0x40,
        ])
        .expect("valid");
    assert_eq!(
        same_message
            .state()
            .deck
            .as_ref()
            .map(|c| c.iter().map(|c| c.rank).collect::<Vec<_>>()),
        Some(vec![Some(7)])
    );
}

/// Fuzz regression (`fuzz/regressions/decode_typed/crash-990c2ae9…`): a
/// collection about to be garbage-collected (its field got a new one) has
/// another block after one of its children moved to a live slot; the
/// doomed collection must not take the child back.
#[test]
fn doomed_collection_keeps_no_live_child() {
    let mut d = Decoder::<Table>::new().expect("types");
    d.decode(&[
        0x80, 0x01, 0x81, 0x08, 0x82, 0x09, // hands #1, deck #8, log #9
        0xff, 0x01, 0x80, 0x00, 0xa1, b'a', 0x02, // hands["a"] = #2
        0xff, 0x02, 0x80, 0x03, 0x81, 0x06, 0x82, 0x07, // cards #3, tags #6, marks #7
        0xff, 0x03, 0x80, 0x00, 0x04, // cards[0] = card #4
        0xff, 0x04, 0x81, 0x03, // rank 3
        0xff, 0x02, 0xc0, 0x0a, // cards = a new array #10: #3 is garbage
        0xff, 0x08, 0x80, 0x00, 0x04, // deck[0] = card #4
        0xff, 0x03, 0x0f, // and #3 is reversed
    ])
    .expect("valid");
    assert_eq!(
        d.dynamic().to_json(),
        r#"{"deck":[{"rank":3}],"hands":{"a":{"cards":[],"marks":[],"tags":[]}},"log":[]}"#
    );
    let deck: Vec<Option<u8>> = d
        .state()
        .deck
        .as_ref()
        .map(|c| c.iter().map(|c| c.rank).collect())
        .unwrap_or_default();
    assert_eq!(deck, [Some(3)]);
    assert_eq!(d.unrepresentable(), 0);
}

/// Fuzz regression (`fuzz/regressions/decode_typed/crash-648a6063…`): a
/// struct about to be garbage-collected (replaced in its map) gets a child
/// that now lives in its replacement; the doomed struct must not take it.
#[test]
fn doomed_struct_keeps_no_live_child() {
    let mut d = Decoder::<Table>::new().expect("types");
    d.decode(&[
        0x80, 0x01, 0x81, 0x08, 0x82, 0x09, // hands #1, deck #8, log #9
        0xff, 0x01, 0x80, 0x00, 0xa1, b'a', 0x02, // hands["a"] = hand #2
        0xff, 0x02, 0x80, 0x03, 0x81, 0x06, 0x82, 0x07, // cards #3, tags #6, marks #7
        0xff, 0x03, 0x80, 0x00, 0x04, // cards[0] = card #4
        0xff, 0x04, 0x81, 0x07, // rank 7
    ])
    .expect("valid");
    d.decode(&[
        0xff, 0x01, 0xc0, 0x00, 0xa1, b'a',
        0x0a, // hands["a"] = a new hand #10: #2 is garbage
        0xff, 0x0a, 0x80, 0x03, 0x81, 0x06, 0x82, 0x07, // which takes #2's collections
        0xff, 0x02, 0xc0, 0x0b, 0x80, 0x03, // and #2 gets a new array, then #3 back
    ])
    .expect("valid");
    assert_eq!(
        d.dynamic().to_json(),
        r#"{"deck":[],"hands":{"a":{"cards":[{"rank":7}],"marks":[],"tags":[]}},"log":[]}"#
    );
    let cards: Vec<Option<u8>> = d
        .state()
        .hands
        .as_ref()
        .and_then(|h| h.get("a"))
        .and_then(|h| h.cards.as_ref())
        .map(|c| c.iter().map(|c| c.rank).collect())
        .unwrap_or_default();
    assert_eq!(cards, [Some(7)]);
}

/// Fuzz regression (`fuzz/regressions/decode_typed/crash-ba240573…`): a
/// subtree detached from the state (its map was replaced) references a
/// child that lives in the state; it must neither take it nor swallow the
/// child's later changes.
#[test]
fn detached_subtree_keeps_no_live_child() {
    let mut d = Decoder::<Table>::new().expect("types");
    d.decode(&[
        0x80, 0x01, 0x81, 0x08, 0x80, 0x09, // hands #1, deck #8, hands = #9: #1 is garbage
        0xff, 0x08, 0x80, 0x00, 0x04, // deck[0] = card #4
        0xff, 0x04, 0x81, 0x03, // rank 3
        0xff, 0x01, 0x80, 0x00, 0xa1, b'a', 0x02, // the garbage map: "a" = hand #2
        0xff, 0x02, 0x80, 0x03, // its cards #3
        0xff, 0x03, 0x80, 0x00, 0x04, // hold the deck's card
        0xff, 0x04, 0x81, 0x05, // rank 5
    ])
    .expect("valid");
    assert_eq!(d.dynamic().to_json(), r#"{"deck":[{"rank":5}],"hands":{}}"#);
    let deck: Vec<Option<u8>> = d
        .state()
        .deck
        .as_ref()
        .map(|c| c.iter().map(|c| c.rank).collect())
        .unwrap_or_default();
    assert_eq!(deck, [Some(5)]);
    assert_eq!(d.unrepresentable(), 0);
}

/// Fuzz regression (`fuzz/regressions/decode_typed/crash-d113e234…`): a
/// struct out of every slot (its map was cleared) gets a new child, then is
/// put back: the child must be there.
#[test]
fn child_of_a_struct_out_of_every_slot() {
    let mut d = Decoder::<Table>::new().expect("types");
    d.decode(&[
        0x80, 0x01, 0x81, 0x08, 0x82, 0x09, // hands #1, deck #8, log #9
        0xff, 0x01, 0x80, 0x00, 0xa1, b'a', 0x02, 0x0a, // "a" = hand #2, then CLEAR
        0xff, 0x02, 0x80, 0x03, // #2 (in no slot) gets cards #3
        0xff, 0x01, 0x80, 0x00, 0xa1, b'a', 0x02, // and is put back under "a"
    ])
    .expect("valid");
    assert_eq!(
        d.dynamic().to_json(),
        r#"{"deck":[],"hands":{"a":{"cards":[]}},"log":[]}"#
    );
    let hand = d
        .state()
        .hands
        .as_ref()
        .and_then(|h| h.get("a"))
        .expect("hand a");
    assert!(hand.cards.is_some());
    assert_eq!(d.unrepresentable(), 0);
}

/// Fuzz regression (`fuzz/regressions/decode_typed/crash-dd6503fe…`): an
/// instance shared between a live slot and a subtree that is then
/// collected ends up in the live slot, with its later changes.
#[test]
fn shared_instance_outlives_a_collected_holder() {
    let mut d = Decoder::<Table>::new().expect("types");
    d.decode(&[
        0x80, 0x01, 0x81, 0x08, 0x82, 0x09, // hands #1, deck #8, log #9
        0xff, 0x08, 0x80, 0x00, 0x04, // deck[0] = card #4
        0xff, 0x04, 0x81, 0x03, // rank 3
        0xff, 0x01, 0x80, 0x00, 0xa1, b'a', 0x02, // "a" = hand #2
        0xff, 0x02, 0x80, 0x03, // its cards #3
        0xff, 0x03, 0x80, 0x00, 0x04, // hold the deck's card too
        0xff, 0x01, 0xc0, 0x00, 0xa1, b'a', 0x0a, // "a" = a new hand: #2 and #3 are collected
        0xff, 0x04, 0x81, 0x05, // rank 5
    ])
    .expect("valid");
    assert_eq!(
        d.dynamic().to_json(),
        r#"{"deck":[{"rank":5}],"hands":{"a":{}},"log":[]}"#
    );
    let deck: Vec<Option<u8>> = d
        .state()
        .deck
        .as_ref()
        .map(|c| c.iter().map(|c| c.rank).collect())
        .unwrap_or_default();
    assert_eq!(deck, [Some(5)]);
}
