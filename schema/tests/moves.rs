//! Moving an instance with [`Moved`]: taken out of one place of the state
//! and put in another, in the same tick or a later one, it keeps its refId
//! (and so do the refs below it), as `@colyseus/schema` 5.0.34 keeps them
//! for a JavaScript object removed and placed again. The bytes are the
//! reference's, from `tests/fixtures/moves.json` (written by
//! `tests/node/gen-moves.mjs`, whose scenarios these mirror).

use roomcast_schema::{ArraySchema, Encoder, EncoderOptions, MapSchema, Moved, Schema};
use serde_json::Value;

#[derive(Schema, Default)]
struct Item {
    x: u8,
    tags: ArraySchema<u8>,
}

#[derive(Schema)]
struct State {
    a: MapSchema<Item>,
    b: MapSchema<Item>,
    arr: ArraySchema<Item>,
    f: Option<Item>,
}

fn item(x: u8) -> Item {
    Item {
        x,
        tags: [x].into_iter().collect(),
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// The reference's ticks of scenario `name`: (patch, full state) as hex.
fn reference(name: &str) -> Vec<(String, String)> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/fixtures/moves.json");
    let text = std::fs::read_to_string(path).expect("tests/fixtures/moves.json");
    let all: Value = serde_json::from_str(&text).expect("moves.json is JSON");
    all["scenarios"][name]
        .as_array()
        .unwrap_or_else(|| panic!("no scenario {name} in moves.json"))
        .iter()
        .map(|t| {
            (
                t["patch"].as_str().unwrap_or_default().to_owned(),
                t["full"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

/// Where a value waits between ticks.
#[derive(Default)]
struct Hand(Option<Moved<Item>>);

/// The scenarios' state on the reference's numbering (refIds never
/// reused). `@colyseus/schema` gives `f` a default Item (refIds 4 and 5).
fn encoder() -> Encoder<State> {
    Encoder::with_options(
        State {
            a: MapSchema::new(),
            b: MapSchema::new(),
            arr: ArraySchema::new(),
            f: Some(Item::default()),
        },
        EncoderOptions::default().reuse_ref_ids(false),
    )
}

/// The first tick of every scenario.
fn seed(enc: &mut Encoder<State>, _: &mut Hand) {
    let mut s = enc.state_mut();
    s.a_mut().insert("k1", item(1));
    s.a_mut().insert("k2", item(2));
    s.arr_mut().push(item(3));
    s.set_f(Some(item(4)));
}

/// One tick's changes.
type Tick<'a> = &'a dyn Fn(&mut Encoder<State>, &mut Hand);

/// Runs the seed tick and then `ticks`, comparing every patch and full
/// state with scenario `name`.
fn check(name: &str, ticks: &[Tick<'_>]) {
    let mut enc = encoder();
    let want = reference(name);
    assert_eq!(want.len(), ticks.len() + 1, "{name}: ticks");
    let mut hand = Hand::default();
    for (i, (tick, (patch, full))) in std::iter::once(&seed as Tick<'_>)
        .chain(ticks.iter().copied())
        .zip(&want)
        .enumerate()
    {
        tick(&mut enc, &mut hand);
        assert_eq!(&hex(enc.encode_patch()), patch, "{name}: patch of tick {i}");
        assert_eq!(
            &hex(enc.encode_all()),
            full,
            "{name}: full state after tick {i}"
        );
    }
}

fn nothing(_: &mut Encoder<State>, _: &mut Hand) {}

fn take_k1(enc: &mut Encoder<State>, hand: &mut Hand) {
    hand.0 = enc.state_mut().a_mut().take("k1");
}

fn put_z(enc: &mut Encoder<State>, hand: &mut Hand) {
    let moved = hand.0.take().expect("a value in hand");
    enc.state_mut().b_mut().insert_moved("z", moved);
}

#[test]
fn a_map_entry_moved_to_another_map_in_the_same_tick_keeps_its_ref_ids() {
    check(
        "map_to_map_same_tick",
        &[
            &|enc, hand| {
                take_k1(enc, hand);
                put_z(enc, hand);
            },
            &nothing,
        ],
    );
}

#[test]
fn a_map_entry_put_back_a_tick_later_keeps_its_ref_ids() {
    check("map_to_map_next_tick", &[&take_k1, &put_z, &nothing]);
    check("map_to_map_two_ticks_later", &[&take_k1, &nothing, &put_z]);
}

#[test]
fn a_key_moved_within_its_map_keeps_its_ref_ids() {
    check(
        "key_to_key_same_map",
        &[&|enc, _| {
            let mut s = enc.state_mut();
            let mut a = s.a_mut();
            let v = a.take("k1").expect("k1");
            a.insert_moved("k9", v);
        }],
    );
}

#[test]
fn an_instance_changed_then_moved_is_sent_whole_with_its_changes() {
    check(
        "changed_then_moved",
        &[&|enc, hand| {
            {
                let mut s = enc.state_mut();
                let mut a = s.a_mut();
                a.get_mut("k1").expect("k1").set_x(7);
            }
            take_k1(enc, hand);
            put_z(enc, hand);
        }],
    );
}

/// An array changed in the tick it moves: the reference sends its ops of
/// the tick and then an ADD of every other element; Roomcast sends the
/// array whole after a CLEAR (every client, holding the array or not,
/// ends with the same elements). Full states are the reference's.
#[test]
fn an_array_changed_then_moved_is_sent_whole_after_a_clear() {
    let want = reference("array_changed_then_moved");
    let mut enc = encoder();
    seed(&mut enc, &mut Hand::default());
    assert_eq!(hex(enc.encode_patch()), want[0].0);
    {
        let mut s = enc.state_mut();
        s.a_mut().get_mut("k1").expect("k1").tags_mut().push(8);
        let v = s.a_mut().take("k1").expect("k1");
        s.b_mut().insert_moved("z", v);
    }
    // The reference: …ff07 800108 800001 (the push, then the rest).
    assert_eq!(
        hex(enc.encode_patch()),
        "ff014000ff028000a17a06ff0680018107ff070a800001800108"
    );
    assert_eq!(hex(enc.encode_all()), want[1].1);
}

#[test]
fn moves_between_an_array_and_a_map() {
    check(
        "array_to_map",
        &[&|enc, _| {
            let mut s = enc.state_mut();
            let v = s.arr_mut().take_last().expect("an element");
            s.b_mut().insert_moved("z", v);
        }],
    );
    check(
        "map_to_array",
        &[&|enc, _| {
            let mut s = enc.state_mut();
            let v = s.a_mut().take("k2").expect("k2");
            s.arr_mut().push_moved(v);
        }],
    );
}

#[test]
fn moves_between_a_struct_field_and_a_map() {
    let take_f = |enc: &mut Encoder<State>, hand: &mut Hand| {
        hand.0 = enc.state_mut().replace_f(Moved::new(None)).transpose();
    };
    check(
        "field_to_map",
        &[&|enc, hand| {
            take_f(enc, hand);
            put_z(enc, hand);
        }],
    );
    check("field_to_map_next_tick", &[&take_f, &put_z]);
    check(
        "map_to_field",
        &[&|enc, _| {
            let mut s = enc.state_mut();
            let v = s.a_mut().take("k2").expect("k2");
            let old = s.replace_f(v.some());
            assert_eq!(old.get().as_ref().map(|i| i.x), Some(4));
        }],
    );
}

/// With refIds reused (the default), a refId freed by a patch may go to a
/// new instance before the moved one comes back: that one then gets a new
/// refId, and every client still ends with the right state.
#[test]
fn a_ref_id_reused_meanwhile_is_not_taken_back() {
    let mut enc = Encoder::new(State {
        a: [("k1".to_owned(), item(1))].into_iter().collect(),
        b: MapSchema::new(),
        arr: ArraySchema::new(),
        f: None,
    });
    enc.encode_patch();
    // root 0, a 1, k1 2 (tags 3), b 4, arr 5.
    let moved = enc.state_mut().a_mut().take("k1").expect("k1");
    assert_eq!(hex(enc.encode_patch()), "ff014000");
    // 2 and 3 are free again: the new item takes them.
    enc.state_mut().a_mut().insert("k2", item(2));
    assert_eq!(
        hex(enc.encode_patch()),
        "ff018001a26b3202ff0280028103ff03800002"
    );
    enc.state_mut().b_mut().insert_moved("z", moved);
    assert_eq!(
        hex(enc.encode_patch()),
        "ff048000a17a06ff0680018107ff07800001"
    );
    // Placed in the tick it left, it keeps them, whatever the option.
    let moved = enc.state_mut().b_mut().take("z").expect("z");
    enc.state_mut().arr_mut().push_moved(moved);
    assert_eq!(
        hex(enc.encode_patch()),
        "ff044000ff05800006ff0680018107ff07800001"
    );
}

/// A `Moved` placed in another encoder is a new instance there.
#[test]
fn a_value_moved_to_another_encoder_gets_new_ref_ids() {
    let state = || State {
        a: [("k1".to_owned(), item(1))].into_iter().collect(),
        b: MapSchema::new(),
        arr: ArraySchema::new(),
        f: None,
    };
    let mut one = Encoder::new(state());
    let mut two = Encoder::new(State {
        a: [("k1".to_owned(), item(1)), ("k2".to_owned(), item(2))]
            .into_iter()
            .collect(),
        ..state()
    });
    one.encode_patch();
    two.encode_patch();
    // `one`: root 0, a 1, k1 2 (tags 3); `two` holds its own 2 and 3 (k1).
    let moved = one.state_mut().a_mut().take("k1").expect("k1");
    two.state_mut().b_mut().insert_moved("z", moved);
    // b is 6 in `two`: the moved item gets 8 (tags 9), not 2 and 3.
    assert_eq!(
        hex(two.encode_patch()),
        "ff068000a17a08ff0880018109ff09800001"
    );
}

#[derive(Schema, Default)]
struct Leaf {
    v: u8,
    m: MapSchema<u8>,
}

#[derive(Schema, Default)]
struct Holder {
    c: Option<Leaf>,
    n: u8,
}

#[derive(Schema, Default)]
struct Tree {
    holder: MapSchema<Holder>,
    spot: MapSchema<Leaf>,
}

/// A child moved out of an instance that is removed in the same tick: the
/// removed instance's own change (its field emptied) is not sent, and the
/// client, dropping it, must keep the moved child. Bytes of
/// `@colyseus/schema` 5.0.34 for the same steps (x.c = undefined;
/// spot.set("k", c); holder.delete("x"); then c.v = 9, c.m.set("a", 5)).
#[test]
fn a_child_moved_out_of_an_instance_removed_in_the_same_tick() {
    // root 0, holder 1, spot 2; then x 3, c 4, c.m 5, as the reference.
    let mut enc = Encoder::with_options(
        Tree::default(),
        EncoderOptions::default().reuse_ref_ids(false),
    );
    enc.state_mut().holder_mut().insert(
        "x",
        Holder {
            c: Some(Leaf {
                v: 1,
                m: MapSchema::new(),
            }),
            n: 1,
        },
    );
    enc.encode_patch();
    {
        let mut s = enc.state_mut();
        let c = s
            .holder_mut()
            .get_mut("x")
            .expect("x")
            .replace_c(Moved::new(None))
            .transpose()
            .expect("c");
        s.spot_mut().insert_moved("k", c);
        s.holder_mut().remove("x");
    }
    assert_eq!(
        hex(enc.encode_patch()),
        "ff028000a16b04ff0480018105ff014000"
    );
    {
        let mut s = enc.state_mut();
        let mut spot = s.spot_mut();
        let mut k = spot.get_mut("k").expect("k");
        k.set_v(9);
        k.m_mut().insert("a", 5);
    }
    assert_eq!(hex(enc.encode_patch()), "ff048009ff058000a16105");
}

#[derive(Schema, Default)]
struct Bag {
    s: roomcast_schema::CollectionSchema<u8>,
    m: MapSchema<u8>,
}

#[derive(Schema, Default)]
struct Bags {
    a: MapSchema<Bag>,
    b: MapSchema<Bag>,
}

/// The `Bags` state after the reference's seed tick (`a.k` = a bag of
/// [1, 2, 3] and {x: 1, y: 2}); its patch checked against `want`.
fn bags(want: &str) -> Encoder<Bags> {
    let mut enc = Encoder::with_options(
        Bags::default(),
        EncoderOptions::default().reuse_ref_ids(false),
    );
    {
        let mut s = enc.state_mut();
        let mut a = s.a_mut();
        a.insert("k", Bag::default());
        let mut bag = a.get_mut("k").expect("k");
        for v in [1, 2, 3] {
            bag.s_mut().add(v);
        }
        bag.m_mut().insert("x", 1);
        bag.m_mut().insert("y", 2);
    }
    assert_eq!(hex(enc.encode_patch()), want);
    enc
}

/// Collections changed in the tick they move: clients still hold them, so
/// the ops of the tick go out (a DELETE the client must apply), then an
/// ADD of every other entry, as the reference sends them.
#[test]
fn collections_changed_then_moved_in_the_same_tick_send_their_ops() {
    let want = reference("bag_changed_then_moved");
    let mut enc = bags(&want[0].0);
    {
        let mut s = enc.state_mut();
        {
            let mut a = s.a_mut();
            let mut bag = a.get_mut("k").expect("k");
            bag.s_mut().remove(&2);
            bag.s_mut().add(4);
            bag.m_mut().remove("x");
            bag.m_mut().insert("z", 3);
        }
        let bag = s.a_mut().take("k").expect("k");
        s.b_mut().insert_moved("z", bag);
    }
    assert_eq!(hex(enc.encode_patch()), want[1].0);
    assert_eq!(hex(enc.encode_all()), want[1].1);
    assert_eq!(hex(enc.encode_patch()), want[2].0);
}

/// Back a tick later, clients have dropped the collections: Roomcast sends
/// them as new ones, where the reference also sends the ops it recorded in
/// the tick they left (a DELETE of an entry no client has).
#[test]
fn collections_changed_then_moved_a_tick_later_are_sent_as_new() {
    let want = reference("bag_changed_then_moved_next_tick");
    let mut enc = bags(&want[0].0);
    let bag = {
        let mut s = enc.state_mut();
        {
            let mut a = s.a_mut();
            let mut bag = a.get_mut("k").expect("k");
            bag.s_mut().remove(&2);
            bag.m_mut().remove("x");
        }
        s.a_mut().take("k").expect("k")
    };
    assert_eq!(hex(enc.encode_patch()), want[1].0);
    enc.state_mut().b_mut().insert_moved("z", bag);
    // The reference: …ff04 4001 800001 800203 ff05 4000 8001a17902.
    assert_eq!(
        hex(enc.encode_patch()),
        "ff028000a17a03ff0380048105ff04800001800203ff058001a17902"
    );
    assert_eq!(hex(enc.encode_all()), want[2].1);
}

#[derive(Schema, Default)]
struct Secret {
    x: u8,
    #[schema(view)]
    secret: u8,
}

#[derive(Schema, Default)]
struct Rooms {
    #[schema(view)]
    a: MapSchema<Secret>,
    #[schema(view)]
    b: MapSchema<Secret>,
}

/// A view keeps seeing an instance moved in the tick: its part of the
/// patch is the reference's (`@colyseus/schema` 5.0.34, a StateView that
/// added `a`, `b` and the instance: `ff014000ff028000a17a03ff0380018107`).
/// (Placed back a tick later, the reference's view still sees it; views
/// here forget a refId at the end of the tick it left, so they do not.)
#[test]
fn a_view_keeps_an_instance_moved_in_the_same_tick() {
    use roomcast_schema::ViewTarget;
    let mut enc = Encoder::with_options(
        Rooms::default(),
        EncoderOptions::default().reuse_ref_ids(false),
    );
    let view = enc.create_view();
    {
        let mut s = enc.state_mut();
        s.a_mut().insert("k", Secret { x: 1, secret: 7 });
        s.a_mut().show_to(view);
        s.b_mut().show_to(view);
        s.a_mut().get_mut("k").expect("k").show_to(view);
    }
    enc.encode_patch();
    {
        let mut s = enc.state_mut();
        let k = s.a_mut().take("k").expect("k");
        s.b_mut().insert_moved("z", k);
    }
    assert_eq!(hex(enc.encode_patch()), "");
    assert_eq!(
        hex(enc.view_patch(view)),
        "ff014000ff028000a17a03ff0380018107"
    );
    assert_eq!(hex(enc.encode_patch()), "");
    assert_eq!(hex(enc.view_patch(view)), "");
}
