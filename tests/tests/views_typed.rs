//! StateView with `#[derive(Schema)]` types: the `stateview_basic` vector
//! replayed with typed state (`#[schema(view)]`), per-client bytes compared
//! with the reference's, and the known difference checked by state.

use roomcast_schema::decoder::DynamicDecoder;
use roomcast_schema::{
    registry_of, Encoder, EncoderOptions, MapSchema, Schema, ViewId, ViewTarget,
};
use roomcast_tests::node::{load_vectors, to_hex};

#[derive(Schema, Default)]
struct Secret {
    code: String,
}

#[derive(Schema, Default)]
struct Player {
    name: String,
    #[schema(view)]
    hand: u8,
}

#[derive(Schema, Default)]
struct State {
    players: MapSchema<Player>,
    #[schema(view)]
    secret: Option<Secret>,
    round: u8,
}

#[test]
fn typed_state_matches_stateview_basic() {
    let v = load_vectors(None)
        .into_iter()
        .find(|(n, _)| n == "stateview_basic")
        .expect("vector")
        .1;
    let steps = v["steps"].as_array().expect("steps");
    let mut state = State {
        round: 1,
        ..State::default()
    };
    state.players.insert(
        "a",
        Player {
            name: "Alice".into(),
            hand: 7,
        },
    );
    state.players.insert(
        "b",
        Player {
            name: "Bob".into(),
            hand: 9,
        },
    );
    state.secret = Some(Secret { code: "xyz".into() });
    let mut enc = Encoder::with_options(state, EncoderOptions::default().reuse_ref_ids(false));
    let (alice, bob) = (enc.create_view(), enc.create_view());
    let check = |enc: &mut Encoder<State>, i: usize, compare_patch: bool| {
        let shared = enc.encode_patch().to_vec();
        let pa = [shared.as_slice(), enc.view_patch(alice)].concat();
        let pb = [shared.as_slice(), enc.view_patch(bob)].concat();
        let full = enc.encode_all().to_vec();
        let fa = [full.as_slice(), enc.encode_all_view(alice)].concat();
        let fb = [full.as_slice(), enc.encode_all_view(bob)].concat();
        let s = &steps[i];
        assert_eq!(to_hex(&shared), s["patch"], "step {i} shared");
        if compare_patch {
            assert_eq!(to_hex(&pa), s["viewPatches"]["alice"], "step {i} alice");
            assert_eq!(to_hex(&pb), s["viewPatches"]["bob"], "step {i} bob");
        }
        assert_eq!(to_hex(&fa), s["viewFulls"]["alice"], "step {i} alice full");
        assert_eq!(to_hex(&fb), s["viewFulls"]["bob"], "step {i} bob full");
    };
    check(&mut enc, 0, true);
    {
        let mut st = enc.state_mut();
        let mut players = st.players_mut();
        players.get_mut("a").expect("a").show_to(alice);
        players.get_mut("b").expect("b").show_to(bob);
    }
    // Step 1 differs on purpose (known gap `stateview_basic 1 state`).
    check(&mut enc, 1, false);
    enc.state_mut().secret_mut().expect("secret").show_to(alice);
    check(&mut enc, 2, true);
    {
        let mut st = enc.state_mut();
        st.players_mut().get_mut("a").expect("a").set_hand(8);
        st.players_mut().get_mut("b").expect("b").set_hand(10);
        st.set_round(2);
    }
    check(&mut enc, 3, true);
    enc.state_mut()
        .secret_mut()
        .expect("secret")
        .hide_from(alice);
    check(&mut enc, 4, false);
    // Roomcast empties the hidden secret on Alice's client (ff04 40), which
    // the reference does not (view-differences.md V2).
}

#[derive(Schema, Default)]
struct Ent {
    x: u32,
}

#[derive(Schema, Default)]
struct Scored {
    entities: MapSchema<Ent>,
    #[schema(view)]
    score: u32,
    round: u32,
}

/// V9: `view.add(x)` then `x` removed in the same tick. The reference made
/// `x`'s parent chain visible when `add` was called, up to the root, so the
/// root's `@view` fields go to that view from then on. Bytes from
/// `@colyseus/schema` 5.0.34 (the same calls, `encodeView` per view).
#[test]
fn show_then_remove_in_one_tick_keeps_the_parent_chain_visible() {
    let mut state = Scored {
        score: 7,
        round: 1,
        ..Scored::default()
    };
    state.entities.insert("a", Ent { x: 1 });
    state.entities.insert("d", Ent { x: 2 });
    let mut enc = Encoder::new(state);
    let (v0, v1) = (enc.create_view(), enc.create_view());
    let tick = |enc: &mut Encoder<Scored>| {
        let shared = to_hex(enc.encode_patch());
        (
            shared,
            to_hex(enc.view_patch(v0)),
            to_hex(enc.view_patch(v1)),
        )
    };
    let first = tick(&mut enc);
    assert_eq!(
        first.0,
        "80018201000000ff018000a161028001a16403ff028001000000ff038002000000"
    );
    {
        let mut st = enc.state_mut();
        let mut entities = st.entities_mut();
        entities.get_mut("d").expect("d").show_to(v1);
        entities.remove("d");
    }
    // The reference's patch is `ff008001` only: it leaves out `score`,
    // which its own full state for v1 has (`ff008107000000`), so a client
    // of its patches never learns 7. Roomcast's patch gives v1 what its
    // full state says (patch-differences are counted against full states;
    // see tests/fixtures/view-differences.md, V9).
    assert_eq!(
        tick(&mut enc),
        (
            "ff014001".into(),
            String::new(),
            "ff008001ff008107000000".into()
        )
    );
    enc.state_mut().set_score(4);
    assert_eq!(
        tick(&mut enc),
        (String::new(), String::new(), "ff008104000000".into())
    );
    let full = to_hex(enc.encode_all());
    assert_eq!(full, "80018201000000ff018000a16102ff028001000000");
    assert_eq!(to_hex(enc.encode_all_view(v0)), "");
    assert_eq!(to_hex(enc.encode_all_view(v1)), "ff008104000000");
}

#[derive(Schema, Default)]
struct Leaf {
    v: u32,
}

#[derive(Schema, Default)]
struct Holder {
    n: u32,
    inner: Option<Leaf>,
}

#[derive(Schema, Default)]
struct Held {
    #[schema(view)]
    holder: Option<Holder>,
}

/// V9 below a view field: `view.add(holder.inner)`, then `holder.inner`
/// replaced in the same tick. `holder` becomes the view's (the chain), and
/// the new `inner` is sent with its content: the reference's patch is
/// `ff008001 ff018103 ff01c103 ff038027000000` (`@colyseus/schema` 5.0.34);
/// it leaves out `holder.n`, which its full state for the view has
/// (`ff0180050000008103`), and Roomcast sends it (the rule of V1), with
/// `inner`'s DELETE_AND_ADD as recorded.
#[test]
fn show_then_replace_sends_the_new_child_content() {
    let state = Held {
        holder: Some(Holder {
            n: 5,
            inner: Some(Leaf { v: 1 }),
        }),
    };
    let mut enc = Encoder::new(state);
    let v0 = enc.create_view();
    assert_eq!(to_hex(enc.encode_patch()), "");
    assert_eq!(to_hex(enc.view_patch(v0)), "");
    {
        let mut st = enc.state_mut();
        let mut holder = st.holder_mut().expect("holder");
        holder.inner_mut().expect("inner").show_to(v0);
        holder.set_inner(Some(Leaf { v: 39 }));
    }
    assert_eq!(to_hex(enc.encode_patch()), "");
    assert_eq!(
        to_hex(enc.view_patch(v0)),
        "ff008001ff018103ff018005000000c103ff038027000000"
    );
    assert_eq!(to_hex(enc.encode_all()), "");
    assert_eq!(
        to_hex(enc.encode_all_view(v0)),
        "ff008001ff0180050000008103ff038027000000"
    );
}

/// A client of one view, following its patches with Roomcast's dynamic
/// decoder: each tick it must hold what a client joining then gets.
struct Follower {
    types: roomcast_schema::types::TypeRegistry,
    decoder: DynamicDecoder,
}

impl Follower {
    fn new<T: Schema>() -> Self {
        let types = registry_of::<T>().expect("types");
        Self {
            decoder: DynamicDecoder::new(types.clone()),
            types,
        }
    }

    /// Encodes a patch, applies it, compares with a fresh client's state;
    /// returns the view's part of the patch, its part of the full state
    /// (hex) and the state (JSON).
    fn tick<T: Schema>(&mut self, enc: &mut Encoder<T>, v: ViewId) -> (String, String, String) {
        let shared = enc.encode_patch().to_vec();
        let part = to_hex(enc.view_patch(v));
        let patch = [shared, enc.view_patch(v).to_vec()].concat();
        if !patch.is_empty() {
            self.decoder.decode(&patch).expect("patch");
        }
        let mut fresh = DynamicDecoder::new(self.types.clone());
        let full_view = enc.encode_all_view(v).to_vec();
        let full = [enc.encode_all().to_vec(), full_view.clone()].concat();
        fresh.decode(&full).expect("full");
        assert_eq!(self.decoder.to_json(), fresh.to_json(), "after {part}");
        (part, to_hex(&full_view), fresh.to_json())
    }
}

#[derive(Schema, Default)]
struct Tip {
    n: u8,
}

#[derive(Schema, Default)]
struct Deep {
    x: u8,
    #[schema(view)]
    tip: Option<Tip>,
}

#[derive(Schema, Default)]
struct Hidden {
    #[schema(view)]
    deep: Option<Deep>,
}

#[derive(Schema, Default)]
struct Inner {
    hidden: Option<Hidden>,
}

#[derive(Schema, Default)]
struct Outer {
    #[schema(view)]
    inner: Option<Inner>,
}

#[derive(Schema, Default)]
struct Nest {
    outer: Option<Outer>,
}

/// `view.remove(hidden)` where `hidden` is still seen through its parent
/// (a public field of a shown struct) and its `@view` field holds the chain
/// to an instance shown earlier: the field stays the view's, its content
/// leaves. The reference sends a DELETE of the field, which its own full
/// state still has (random_2_499 15); sent with the chain's ADD in one
/// patch, the decoder would keep the child with its old content. A client
/// following the view's patches holds what a joining client gets.
#[test]
fn hiding_a_struct_seen_through_its_parent_keeps_the_client_in_step() {
    let state = Nest {
        outer: Some(Outer {
            inner: Some(Inner {
                hidden: Some(Hidden {
                    deep: Some(Deep {
                        x: 3,
                        tip: Some(Tip { n: 9 }),
                    }),
                }),
            }),
        }),
    };
    let mut enc = Encoder::new(state);
    let v = enc.create_view();
    let mut client = Follower::new::<Nest>();
    let mut check = |enc: &mut Encoder<Nest>| client.tick(enc, v).2;
    check(&mut enc);
    {
        let mut st = enc.state_mut();
        let mut outer = st.outer_mut().expect("outer");
        let mut inner = outer.inner_mut().expect("inner");
        let mut hidden = inner.hidden_mut().expect("hidden");
        let mut deep = hidden.deep_mut().expect("deep");
        deep.tip_mut().expect("tip").show_to(v);
    }
    let shown = check(&mut enc);
    assert!(shown.contains("\"n\":9"), "{shown}");
    {
        let mut st = enc.state_mut();
        let mut outer = st.outer_mut().expect("outer");
        let mut inner = outer.inner_mut().expect("inner");
        inner.hidden_mut().expect("hidden").hide_from(v);
    }
    let hidden = check(&mut enc);
    assert!(!hidden.contains("\"n\":9"), "{hidden}");
}

#[derive(Schema, Default)]
struct TagItem {
    a: u8,
    #[schema(view = 2)]
    t: u8,
    #[schema(view)]
    d: u8,
}

#[derive(Schema, Default)]
struct TagState {
    items: MapSchema<TagItem>,
}

/// `view.remove(x, tag)` unmarks `x` as the reference's does: its
/// default-tag view fields leave the view with the tag's. The reference
/// (5.0.34) sends `ff0241` for `remove(x, 2)` after `add(x)`, and its own
/// full state then lacks `d`, which its client keeps; Roomcast also deletes
/// `d` (`ff024142`), so a following client holds what a joining one gets.
/// For `add(x, 2)` then `remove(x, 2)` in one tick the reference sends
/// `ff024180018203` (`d` to a client whose full state has nothing of `x`);
/// Roomcast sends the same without `d`.
#[test]
fn removing_a_tag_unmarks_the_instance() {
    let mut state = TagState::default();
    state.items.insert("x", TagItem { a: 1, t: 2, d: 3 });
    let mut enc = Encoder::new(state);
    let v = enc.create_view();
    let mut client = Follower::new::<TagState>();
    let mut tick = |enc: &mut Encoder<TagState>| {
        let (part, full_view, _) = client.tick(enc, v);
        (part, full_view)
    };
    tick(&mut enc);
    {
        let mut st = enc.state_mut();
        let mut items = st.items_mut();
        let mut x = items.get_mut("x").expect("x");
        x.show_to_tagged(v, 2);
        x.hide_from_tagged(v, 2);
    }
    assert_eq!(tick(&mut enc), ("ff02418001".into(), String::new()));
    enc.state_mut()
        .items_mut()
        .get_mut("x")
        .expect("x")
        .show_to(v);
    // The reference's bytes.
    assert_eq!(tick(&mut enc), ("ff0280018203".into(), "ff028203".into()));
    enc.state_mut()
        .items_mut()
        .get_mut("x")
        .expect("x")
        .hide_from_tagged(v, 2);
    assert_eq!(tick(&mut enc), ("ff024142".into(), String::new()));
}
