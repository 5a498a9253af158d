//! StateView under random mutation sequences: map insert / remove /
//! replace of structs with view fields (shared map and a map behind a view
//! field), primitive changes, a nested child behind a view field, arrays
//! and sets of primitives behind view fields, an array, a collection and a
//! set of structs behind view fields (elements shown one by one), interleaved
//! with `show` / `hide` (default tag and a custom tag) on several views.
//!
//! After every patch, for every view, Roomcast's `DynamicDecoder` following
//! the shared patches plus that view's parts holds exactly what a fresh
//! decoder holds after `encode_all()` + `encode_all_view(view)` (which then
//! becomes what that view's client holds, like a join), and exactly the
//! server state projected by the test's own model of what the view sees.
//!
//! A smaller run (`node_decoder_follows_view_patches`) feeds the same kind
//! of sequences to the real `@colyseus/schema` 5.0.34 decoder, and
//! `legacy_decoder_follows_view_patches` the legacy bytes to the real
//! 3.0.76 decoder, with ops weighted towards what 3.x decodes differently.
//!
//! Element order in filtered collections of structs is not synchronized
//! (a client appends what it is shown, spec §11): those are compared as
//! multisets ([`norm`]).
//!
//! `PROPTEST_CASES` replaces the case counts.

use std::collections::BTreeMap;

use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestRng, TestRunner};
use roomcast_schema::decoder::DynamicDecoder;
use roomcast_schema::{
    encode_reflection, registry_of, ArraySchema, CollectionSchema, Dialect, Encoder,
    EncoderOptions, MapSchema, Schema, SetSchema, ViewId, ViewTarget,
};
use roomcast_tests::node::{NodeDecoder, SchemaVersion};
use roomcast_tests::state_json::canon;
use serde_json::{json, Map, Value};

#[derive(Schema, Default, Debug, Clone)]
struct Inv {
    a: u8,
}

#[derive(Schema, Default, Debug, Clone)]
struct Ent {
    x: u8,
    #[schema(view)]
    secret: u16,
    #[schema(view = 1)]
    tagged: u8,
    #[schema(view)]
    inv: Option<Inv>,
    #[schema(view)]
    nums: ArraySchema<u8>,
    #[schema(view)]
    flags: SetSchema<u8>,
}

/// An element of the filtered collections of structs (`extra`: a child
/// a reused refId could leave stale on a client).
#[derive(Schema, Default, Debug, Clone)]
struct Card {
    n: u8,
    extra: Option<Inv>,
}

#[derive(Schema, Default, Debug)]
struct State {
    ents: MapSchema<Ent>,
    #[schema(view)]
    hidden: MapSchema<Ent>,
    round: u8,
    #[schema(view)]
    pile: ArraySchema<Card>,
    #[schema(view)]
    bag: CollectionSchema<Card>,
    #[schema(view)]
    deck: SetSchema<Card>,
}

/// The filtered collections of structs, by `c` in the ops.
const PILES: [&str; 3] = ["pile", "bag", "deck"];

const VIEWS: usize = 3;
const KEYS: u8 = 4;

#[derive(Debug, Clone)]
enum Op {
    /// Insert or replace `ents[k]` (`hidden[k]` when `h`).
    Put {
        h: bool,
        k: u8,
        x: u8,
        secret: u16,
    },
    Remove {
        h: bool,
        k: u8,
    },
    SetX {
        h: bool,
        k: u8,
        x: u8,
    },
    SetSecret {
        h: bool,
        k: u8,
        v: u16,
    },
    SetTagged {
        h: bool,
        k: u8,
        v: u8,
    },
    SetInv {
        h: bool,
        k: u8,
        v: Option<u8>,
    },
    InvA {
        h: bool,
        k: u8,
        v: u8,
    },
    Push {
        h: bool,
        k: u8,
        v: u8,
    },
    Pop {
        h: bool,
        k: u8,
    },
    SetNum {
        h: bool,
        k: u8,
        v: u8,
    },
    Shift {
        h: bool,
        k: u8,
    },
    Unshift {
        h: bool,
        k: u8,
        v: u8,
    },
    /// Insert in the middle (a splice-insert; a push when shorter than 2).
    InsertMid {
        h: bool,
        k: u8,
        v: u8,
    },
    Flag {
        h: bool,
        k: u8,
        v: u8,
        add: bool,
    },
    Round(u8),
    Show {
        view: usize,
        h: bool,
        k: u8,
        tag: bool,
    },
    Hide {
        view: usize,
        h: bool,
        k: u8,
        tag: bool,
    },
    /// `show` of the nested child.
    ShowInv {
        view: usize,
        h: bool,
        k: u8,
    },
    /// A card added to `PILES[c]` (the pile: pushed, or inserted in the
    /// middle when `mid`).
    CAdd {
        c: usize,
        n: u8,
        extra: bool,
        mid: bool,
    },
    /// The `at`-th card (modulo the length) removed.
    CRemove {
        c: usize,
        at: u8,
    },
    CSetN {
        c: usize,
        at: u8,
        n: u8,
    },
    CExtra {
        c: usize,
        at: u8,
        v: Option<u8>,
    },
    CShow {
        view: usize,
        c: usize,
        at: u8,
    },
    CHide {
        view: usize,
        c: usize,
        at: u8,
    },
}

/// Ops with the default weights, or (`legacy`) weighted towards what 3.x
/// decodes differently: inserts in the middle of an array, removals from
/// sets (before and after a `show`), collections of structs behind view
/// fields with elements shown, hidden and removed; two keys only, so the
/// ops meet on the same entities.
fn op(legacy: bool) -> BoxedStrategy<Op> {
    let keys = if legacy { 2 } else { KEYS };
    let hk = (any::<bool>(), 0..keys);
    // (default weight, legacy weight)
    let w = |d: u32, l: u32| if legacy { l } else { d };
    // The pile (array of structs) twice as often in legacy runs.
    let c = if legacy {
        prop_oneof![2 => Just(0), 1 => Just(1), 1 => Just(2)].boxed()
    } else {
        (0..PILES.len()).boxed()
    };
    prop_oneof![
        w(3, 3) => (hk.clone(), 0..4u8, 0..3u16).prop_map(|((h, k), x, secret)| Op::Put { h, k, x, secret }),
        1 => hk.clone().prop_map(|(h, k)| Op::Remove { h, k }),
        w(3, 1) => (hk.clone(), 0..4u8).prop_map(|((h, k), x)| Op::SetX { h, k, x }),
        w(2, 1) => (hk.clone(), 0..4u16).prop_map(|((h, k), v)| Op::SetSecret { h, k, v }),
        1 => (hk.clone(), 0..3u8).prop_map(|((h, k), v)| Op::SetTagged { h, k, v }),
        1 => (hk.clone(), proptest::option::of(0..3u8)).prop_map(|((h, k), v)| Op::SetInv { h, k, v }),
        1 => (hk.clone(), 0..3u8).prop_map(|((h, k), v)| Op::InvA { h, k, v }),
        w(1, 2) => (hk.clone(), 0..5u8).prop_map(|((h, k), v)| Op::Push { h, k, v }),
        1 => hk.clone().prop_map(|(h, k)| Op::Pop { h, k }),
        1 => (hk.clone(), 0..5u8).prop_map(|((h, k), v)| Op::SetNum { h, k, v }),
        1 => hk.clone().prop_map(|(h, k)| Op::Shift { h, k }),
        w(1, 2) => (hk.clone(), 0..5u8).prop_map(|((h, k), v)| Op::Unshift { h, k, v }),
        w(1, 4) => (hk.clone(), 0..5u8).prop_map(|((h, k), v)| Op::InsertMid { h, k, v }),
        w(1, 5) => (hk.clone(), 0..4u8, any::<bool>()).prop_map(|((h, k), v, add)| Op::Flag { h, k, v, add }),
        1 => (0..3u8).prop_map(Op::Round),
        w(3, 4) => (0..VIEWS, hk.clone(), any::<bool>()).prop_map(|(view, (h, k), tag)| Op::Show { view, h, k, tag }),
        w(2, 2) => (0..VIEWS, hk.clone(), any::<bool>()).prop_map(|(view, (h, k), tag)| Op::Hide { view, h, k, tag }),
        1 => (0..VIEWS, hk).prop_map(|(view, (h, k))| Op::ShowInv { view, h, k }),
        w(2, 5) => (c.clone(), 0..4u8, any::<bool>(), any::<bool>()).prop_map(|(c, n, extra, mid)| Op::CAdd { c, n, extra, mid }),
        w(1, 5) => (c.clone(), 0..4u8).prop_map(|(c, at)| Op::CRemove { c, at }),
        1 => (c.clone(), 0..4u8, 0..4u8).prop_map(|(c, at, n)| Op::CSetN { c, at, n }),
        1 => (c.clone(), 0..4u8, proptest::option::of(0..3u8)).prop_map(|(c, at, v)| Op::CExtra { c, at, v }),
        w(2, 7) => (0..VIEWS, c.clone(), 0..4u8).prop_map(|(view, c, at)| Op::CShow { view, c, at }),
        w(1, 4) => (0..VIEWS, c, 0..4u8).prop_map(|(view, c, at)| Op::CHide { view, c, at }),
    ]
    .boxed()
}

fn ticks(max_ticks: usize, legacy: bool) -> impl Strategy<Value = Vec<Vec<Op>>> {
    proptest::collection::vec(proptest::collection::vec(op(legacy), 1..6), 1..max_ticks)
}

fn key(k: u8) -> String {
    format!("k{k}")
}

/// The test's model of what each view was shown: `(hidden?, key) → tag
/// shown with` (`false` default tag only, `true` tag 1 too).
type Shown = Vec<BTreeMap<(bool, u8), bool>>;

/// A tick's effects on what views were shown, resolved at the patch (a
/// `show` of an instance detached later in the tick shows its parent chain
/// only: the entity of a nested child, V9).
#[derive(Debug, Clone, Copy)]
enum Ev {
    Show {
        view: usize,
        key: (bool, u8),
        tag: bool,
    },
    /// `tag`: a tagged remove leaves the view whole, as an untagged one.
    Hide { view: usize, key: (bool, u8) },
    /// The entity (or, `inv_only`, its nested child) was detached.
    Gone { key: (bool, u8), inv_only: bool },
}

fn resolve(shown: &mut Shown, evs: &[Ev]) {
    for (i, ev) in evs.iter().enumerate() {
        // The entity itself is detached later in the tick.
        let detached_later = |key: (bool, u8)| {
            evs[i + 1..]
                .iter()
                .any(|e| matches!(*e, Ev::Gone { key: k, inv_only: false } if k == key))
        };
        match *ev {
            Ev::Show { view, key, tag } => {
                // The entity is shown, or is the parent of the shown
                // child: visible unless it goes itself.
                if !detached_later(key) {
                    let t = shown[view].entry(key).or_insert(false);
                    *t |= tag;
                }
            }
            Ev::Hide { view, key } => {
                // A tagged remove unmarks the instance too (V11): it leaves
                // the view whole, as an untagged one.
                if !detached_later(key) {
                    shown[view].remove(&key);
                }
            }
            Ev::Gone { key, inv_only } => {
                if !inv_only {
                    for s in shown.iter_mut() {
                        s.remove(&key);
                    }
                }
            }
        }
    }
}

fn apply(enc: &mut Encoder<State>, views: &[ViewId], evs: &mut Vec<Ev>, op: &Op) {
    let lens = {
        let s = enc.state();
        [s.pile.len(), s.bag.len(), s.deck.len()]
    };
    let mut st = enc.state_mut();
    // The `at`-th card of `PILES[c]`, if any.
    macro_rules! with_card {
        ($c:expr, $at:expr, |$e:ident| $body:expr) => {{
            let len = lens[$c];
            if len > 0 {
                let at = usize::from($at) % len;
                match $c {
                    0 => {
                        if let Some(mut $e) = st.pile_mut().get_mut(at) {
                            $body;
                        }
                    }
                    1 => {
                        let mut i = 0;
                        st.bag_mut().for_each_mut(|mut $e| {
                            if i == at {
                                $body;
                            }
                            i += 1;
                        });
                    }
                    _ => {
                        let mut i = 0;
                        st.deck_mut().for_each_mut(|mut $e| {
                            if i == at {
                                $body;
                            }
                            i += 1;
                        });
                    }
                }
            }
        }};
    }
    macro_rules! with_ent {
        ($h:expr, $k:expr, |$e:ident| $body:expr) => {{
            let k = key($k);
            if $h {
                let mut m = st.hidden_mut();
                if let Some(mut $e) = m.get_mut(&k) {
                    $body;
                }
            } else {
                let mut m = st.ents_mut();
                if let Some(mut $e) = m.get_mut(&k) {
                    $body;
                }
            }
        }};
    }
    match *op {
        Op::Put { h, k, x, secret } => {
            let e = Ent {
                x,
                secret,
                tagged: x,
                inv: (secret % 2 == 0).then_some(Inv { a: x }),
                nums: (0..x).collect(),
                flags: SetSchema::new(),
            };
            let replaced = if h {
                st.hidden_mut().insert(key(k), e).is_some()
            } else {
                st.ents_mut().insert(key(k), e).is_some()
            };
            if replaced {
                // A new instance: the views saw the old one only.
                evs.push(Ev::Gone {
                    key: (h, k),
                    inv_only: false,
                });
            }
        }
        Op::Remove { h, k } => {
            if h {
                st.hidden_mut().remove(&key(k));
            } else {
                st.ents_mut().remove(&key(k));
            }
            evs.push(Ev::Gone {
                key: (h, k),
                inv_only: false,
            });
        }
        Op::SetX { h, k, x } => with_ent!(h, k, |e| e.set_x(x)),
        Op::SetSecret { h, k, v } => with_ent!(h, k, |e| e.set_secret(v)),
        Op::SetTagged { h, k, v } => with_ent!(h, k, |e| e.set_tagged(v)),
        Op::SetInv { h, k, v } => {
            let mut had = false;
            with_ent!(h, k, |e| {
                had = e.inv.is_some();
                e.set_inv(v.map(|a| Inv { a }));
            });
            if had {
                evs.push(Ev::Gone {
                    key: (h, k),
                    inv_only: true,
                });
            }
        }
        Op::InvA { h, k, v } => with_ent!(h, k, |e| {
            if let Some(mut i) = e.inv_mut() {
                i.set_a(v);
            }
        }),
        Op::Push { h, k, v } => with_ent!(h, k, |e| {
            e.nums_mut().push(v);
        }),
        Op::Pop { h, k } => with_ent!(h, k, |e| {
            e.nums_mut().pop();
        }),
        Op::SetNum { h, k, v } => with_ent!(h, k, |e| {
            let mut n = e.nums_mut();
            if !n.is_empty() {
                n.set(0, v);
            }
        }),
        Op::Shift { h, k } => with_ent!(h, k, |e| {
            e.nums_mut().shift();
        }),
        Op::Unshift { h, k, v } => with_ent!(h, k, |e| {
            e.nums_mut().unshift(v);
        }),
        Op::InsertMid { h, k, v } => with_ent!(h, k, |e| {
            let mut n = e.nums_mut();
            let at = n.len() / 2;
            n.insert(at, v);
        }),
        Op::Flag { h, k, v, add } => with_ent!(h, k, |e| {
            let mut f = e.flags_mut();
            if add {
                f.add(v);
            } else {
                f.remove(&v);
            }
        }),
        Op::Round(r) => st.set_round(r),
        Op::Show { view, h, k, tag } => {
            let mut found = false;
            with_ent!(h, k, |e| {
                found = true;
                if tag {
                    e.show_to_tagged(views[view], 1);
                } else {
                    e.show_to(views[view]);
                }
            });
            if found {
                evs.push(Ev::Show {
                    view,
                    key: (h, k),
                    tag,
                });
            }
        }
        Op::Hide { view, h, k, tag } => {
            let mut found = false;
            with_ent!(h, k, |e| {
                found = true;
                if tag {
                    e.hide_from_tagged(views[view], 1);
                } else {
                    e.hide_from(views[view]);
                }
            });
            if found {
                evs.push(Ev::Hide { view, key: (h, k) });
            }
        }
        Op::CAdd { c, n, extra, mid } => {
            let card = Card {
                n,
                extra: extra.then_some(Inv { a: n }),
            };
            match c {
                0 => {
                    let mut p = st.pile_mut();
                    if mid {
                        let at = p.len() / 2;
                        p.insert(at, card);
                    } else {
                        p.push(card);
                    }
                }
                1 => {
                    st.bag_mut().add(card);
                }
                _ => {
                    st.deck_mut().add(card);
                }
            }
        }
        Op::CRemove { c, at } => {
            let len = lens[c];
            if len > 0 {
                let at = usize::from(at) % len;
                let mut i = 0;
                let mut nth = |_: &Card| {
                    i += 1;
                    i - 1 == at
                };
                match c {
                    0 => {
                        st.pile_mut().remove(at);
                    }
                    1 => {
                        st.bag_mut().remove_where(&mut nth);
                    }
                    _ => {
                        st.deck_mut().remove_where(&mut nth);
                    }
                }
            }
        }
        Op::CSetN { c, at, n } => with_card!(c, at, |e| e.set_n(n)),
        Op::CExtra { c, at, v } => with_card!(c, at, |e| e.set_extra(v.map(|a| Inv { a }))),
        Op::CShow { view, c, at } => with_card!(c, at, |e| e.show_to(views[view])),
        Op::CHide { view, c, at } => with_card!(c, at, |e| e.hide_from(views[view])),
        Op::ShowInv { view, h, k } => {
            let mut found = false;
            with_ent!(h, k, |e| {
                if let Some(mut i) = e.inv_mut() {
                    found = true;
                    i.show_to(views[view]);
                }
            });
            if found {
                // Its parent chain becomes visible too.
                evs.push(Ev::Show {
                    view,
                    key: (h, k),
                    tag: false,
                });
            }
        }
    }
}

/// The part of the state the model can project exactly: the shared fields,
/// which entries of `hidden` a view holds, and the primitive view fields of
/// what it was shown (nested children and collections behind view fields
/// follow visibility rules the model leaves to the full-state comparison).
fn projection(state: &State, shown: &BTreeMap<(bool, u8), bool>) -> Value {
    let ent = |h: bool, k: &str, e: &Ent| -> Option<Value> {
        let kn: u8 = k[1..].parse().expect("key");
        let seen = shown.get(&(h, kn));
        if h && seen.is_none() {
            return None;
        }
        let mut o = Map::new();
        if !h {
            o.insert("x".into(), json!(e.x));
        }
        if let Some(&tag) = seen {
            if h {
                o.insert("x".into(), json!(e.x));
            }
            o.insert("secret".into(), json!(e.secret));
            if tag {
                o.insert("tagged".into(), json!(e.tagged));
            }
        }
        Some(Value::Object(o))
    };
    let ents: Map<String, Value> = state
        .ents
        .iter()
        .filter_map(|(k, e)| Some((k.to_owned(), ent(false, k, e)?)))
        .collect();
    let hidden: Map<String, Value> = state
        .hidden
        .iter()
        .filter_map(|(k, e)| Some((k.to_owned(), ent(true, k, e)?)))
        .collect();
    json!({ "ents": ents, "hidden": hidden, "round": state.round })
}

/// The decoded state cut down to what [`projection`] describes.
fn cut(decoded: &Value) -> Value {
    let ents = |v: &Value| -> Value {
        let Some(m) = v.as_object() else {
            return json!({});
        };
        Value::Object(
            m.iter()
                .map(|(k, e)| {
                    let mut o = Map::new();
                    for f in ["x", "secret", "tagged"] {
                        if let Some(x) = e.get(f) {
                            o.insert(f.into(), x.clone());
                        }
                    }
                    (k.clone(), Value::Object(o))
                })
                .collect(),
        )
    };
    json!({
        "ents": ents(&decoded["ents"]),
        "hidden": ents(&decoded["hidden"]),
        "round": decoded.get("round").cloned().unwrap_or(json!(0)),
    })
}

fn initial() -> State {
    let mut s = State::default();
    s.ents.insert(
        key(0),
        Ent {
            x: 1,
            secret: 2,
            inv: Some(Inv { a: 1 }),
            nums: [1, 2].into_iter().collect(),
            ..Ent::default()
        },
    );
    s.hidden.insert(
        key(1),
        Ent {
            x: 2,
            secret: 4,
            ..Ent::default()
        },
    );
    let card = |n: u8| Card {
        n,
        extra: (n % 2 == 1).then_some(Inv { a: n }),
    };
    s.pile = (1..3).map(card).collect();
    s.bag = (1..4).map(card).collect();
    s.deck = (1..3).map(card).collect();
    s
}

/// `canon`, with the filtered collections of structs sorted (their order
/// is not synchronized).
fn norm(v: &Value) -> Value {
    let mut v = canon(v);
    if let Some(o) = v.as_object_mut() {
        for k in PILES {
            if let Some(Value::Array(a)) = o.get_mut(k) {
                a.sort_by_key(ToString::to_string);
            }
        }
    }
    v
}

fn json_of(d: &DynamicDecoder) -> Value {
    norm(&serde_json::from_str(&d.to_json()).expect("decoder JSON"))
}

/// What a tick sends, per view: the shared patch, the view parts, the
/// view full states, what Roomcast's followers hold, and (`legacy` runs)
/// each view's whole legacy message (shared + view part).
struct TickOut<'a> {
    shared: &'a [u8],
    parts: &'a [Vec<u8>],
    fulls: &'a [Vec<u8>],
    followers: &'a [Value],
    legacy: &'a [Vec<u8>],
}

/// Runs one sequence; `sink` sees every tick's bytes. With `legacy`, the
/// patches are encoded for both dialects (`encode_patch_both`).
fn run(
    ticks: &[Vec<Op>],
    reuse: bool,
    legacy: bool,
    mut sink: impl FnMut(usize, &TickOut<'_>) -> Result<(), TestCaseError>,
) -> Result<(), TestCaseError> {
    let types = registry_of::<State>().expect("types");
    let mut enc = Encoder::with_options(initial(), EncoderOptions::default().reuse_ref_ids(reuse));
    let views: Vec<ViewId> = (0..VIEWS).map(|_| enc.create_view()).collect();
    // The same ops through the walk that visits everything for every view:
    // the incremental walk must write the same bytes.
    let mut slow = Encoder::with_options(initial(), EncoderOptions::default().reuse_ref_ids(reuse));
    slow.__exhaustive_view_walk(true);
    let slow_views: Vec<ViewId> = (0..VIEWS).map(|_| slow.create_view()).collect();
    let mut slow_evs = Vec::new();
    let mut shown: Shown = vec![BTreeMap::new(); VIEWS];
    let mut clients: Vec<DynamicDecoder> = (0..VIEWS)
        .map(|_| DynamicDecoder::new(types.clone()))
        .collect();
    let empty = Vec::new();
    for (i, ops) in std::iter::once(&empty).chain(ticks).enumerate() {
        let mut evs = Vec::new();
        for op in ops {
            apply(&mut enc, &views, &mut evs, op);
            apply(&mut slow, &slow_views, &mut slow_evs, op);
        }
        slow_evs.clear();
        resolve(&mut shown, &evs);
        let (shared, legacy_shared) = if legacy {
            let (m, l) = enc.encode_patch_both();
            (m.to_vec(), l.to_vec())
        } else {
            (enc.encode_patch().to_vec(), Vec::new())
        };
        let parts: Vec<Vec<u8>> = views.iter().map(|&v| enc.view_patch(v).to_vec()).collect();
        let legacy_msgs: Vec<Vec<u8>> = if legacy {
            views
                .iter()
                .map(|&v| {
                    [
                        legacy_shared.as_slice(),
                        enc.view_patch_as(v, Dialect::Legacy),
                    ]
                    .concat()
                })
                .collect()
        } else {
            Vec::new()
        };
        let slow_shared = if legacy {
            slow.encode_patch_both().0
        } else {
            slow.encode_patch()
        };
        prop_assert_eq!(&shared, slow_shared, "tick {}: shared patch", i);
        for (n, (&a, &b)) in views.iter().zip(&slow_views).enumerate() {
            prop_assert_eq!(
                enc.view_patch(a),
                slow.view_patch(b),
                "tick {} view {}: incremental vs exhaustive walk",
                i,
                n
            );
            prop_assert_eq!(
                enc.view_patch_as(a, Dialect::Legacy),
                slow.view_patch_as(b, Dialect::Legacy),
                "tick {} view {}: incremental vs exhaustive walk (legacy)",
                i,
                n
            );
        }
        let full = enc.encode_all().to_vec();
        // A view joining now (every other tick, the first view rejoins).
        let mut fulls = Vec::new();
        let mut followers = Vec::new();
        for (n, &v) in views.iter().enumerate() {
            let part = &parts[n];
            let client = &mut clients[n];
            for bytes in [&shared, part] {
                if !bytes.is_empty() {
                    client.decode(bytes).map_err(|e| {
                        TestCaseError::fail(format!(
                            "tick {i} view {n}: {e} (shared {shared:02x?}, part {part:02x?})"
                        ))
                    })?;
                }
            }
            let follower = json_of(client);
            followers.push(follower.clone());
            let full_view = enc.encode_all_view(v).to_vec();
            let mut fresh = DynamicDecoder::new(types.clone());
            fresh
                .decode(&full)
                .and_then(|()| fresh.decode(&full_view))
                .map_err(|e| TestCaseError::fail(format!("tick {i} view {n}: full: {e}")))?;
            let fresh_json = json_of(&fresh);
            prop_assert_eq!(
                &follower,
                &fresh_json,
                "tick {} view {}: follower vs fresh (shared {:02x?}, part {:02x?})",
                i,
                n,
                shared,
                part
            );
            let expected = canon(&projection(enc.state(), &shown[n]));
            prop_assert_eq!(
                cut(&follower),
                expected,
                "tick {} view {}: follower vs model",
                i,
                n
            );
            prop_assert_eq!(&full_view, slow.encode_all_view(slow_views[n]), "full view");
            if n == 0 && i % 2 == 1 {
                // Rejoin: the full state becomes what this client holds.
                clients[n] = fresh;
            }
            fulls.push(full_view);
        }
        sink(
            i,
            &TickOut {
                shared: &shared,
                parts: &parts,
                fulls: &fulls,
                followers: &followers,
                legacy: &legacy_msgs,
            },
        )?;
    }
    Ok(())
}

fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

#[test]
fn view_followers_match_full_views_and_the_model() {
    let config = Config {
        cases: cases(600),
        failure_persistence: None,
        ..Config::default()
    };
    let mut runner =
        TestRunner::new_with_rng(config, TestRng::deterministic_rng(RngAlgorithm::ChaCha));
    // VIEWS_DUMP=<file>: every tick's bytes, to compare two builds.
    let dump = std::env::var("VIEWS_DUMP").ok();
    let out = std::cell::RefCell::new(String::new());
    let result = runner.run(&(ticks(12, false), any::<bool>()), |(t, reuse)| {
        run(&t, reuse, false, |i, o| {
            if dump.is_some() {
                let (shared, parts, fulls) = (o.shared, o.parts, o.fulls);
                let mut o = out.borrow_mut();
                o.push_str(&format!("{i} {shared:02x?} {parts:02x?} {fulls:02x?}\n"));
            }
            Ok(())
        })
    });
    if let Some(path) = dump {
        std::fs::write(path, out.into_inner()).expect("dump");
    }
    if let Err(e) = result {
        panic!("{e}");
    }
}

#[test]
fn node_decoder_follows_view_patches() {
    npm_decoder_follows(SchemaVersion::V5, cases(200));
}

/// colyseus.js 0.16 clients: the legacy patches (`encode_patch_both`) plus
/// the legacy view parts, fed to the real `@colyseus/schema` 3.0.76
/// decoder, hold what Roomcast's (modern) followers hold.
#[test]
fn legacy_decoder_follows_view_patches() {
    // Enough cases to meet each case 3.x decodes differently: with any of
    // the legacy forms turned off, this fails (checked for each).
    npm_decoder_follows(SchemaVersion::V3, cases(1000));
}

fn npm_decoder_follows(version: SchemaVersion, cases: u32) {
    let node = std::cell::RefCell::new(NodeDecoder::new());
    let types = registry_of::<State>().expect("types");
    let legacy = version == SchemaVersion::V3;
    let dialect = if legacy {
        Dialect::Legacy
    } else {
        Dialect::Modern
    };
    let reflection = encode_reflection(&types, dialect);
    let config = Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    };
    let mut runner =
        TestRunner::new_with_rng(config, TestRng::deterministic_rng(RngAlgorithm::ChaCha));
    // Reused refIds matter to 3.x (a refId it still counts maps to a stale
    // instance): mostly reused in legacy runs.
    let reuse = proptest::bool::weighted(if legacy { 0.8 } else { 0.5 });
    let result = runner.run(&(ticks(8, legacy), reuse), |(t, reuse)| {
        let mut node = node.borrow_mut();
        let sessions: Vec<_> = (0..VIEWS)
            .map(|_| node.open(&reflection, version))
            .collect();
        let r = run(&t, reuse, legacy, |i, o| {
            for (n, s) in sessions.iter().enumerate() {
                let bytes = if legacy {
                    o.legacy[n].clone()
                } else {
                    [o.shared, o.parts[n].as_slice()].concat()
                };
                let got = if bytes.is_empty() {
                    node.state(s).map_err(TestCaseError::fail)?
                } else {
                    let d = node
                        .decode(s, &bytes)
                        .map_err(|e| TestCaseError::fail(format!("tick {i} view {n}: {e}")))?;
                    prop_assert!(
                        d.warnings.is_empty(),
                        "tick {}: warnings {:?}",
                        i,
                        d.warnings
                    );
                    d.state
                };
                // Roomcast's follower of the modern bytes (checked against
                // the full view state and the model by `run`).
                prop_assert_eq!(
                    norm(&got),
                    o.followers[n].clone(),
                    "tick {} view {}: npm decoder vs Roomcast follower ({:02x?})",
                    i,
                    n,
                    bytes
                );
            }
            Ok(())
        });
        for s in sessions {
            node.close(s);
        }
        r
    });
    if let Err(e) = result {
        panic!("{e}");
    }
}

/// Runs `t` with the legacy bytes fed to the 3.x decoder (view 0);
/// returns the last tick's modern and legacy view parts.
fn legacy_run(t: &[Vec<Op>]) -> (Vec<u8>, Vec<u8>) {
    legacy_run_with(t, false)
}

/// [`legacy_run`], refIds reused or not.
fn legacy_run_with(t: &[Vec<Op>], reuse: bool) -> (Vec<u8>, Vec<u8>) {
    let mut node = NodeDecoder::new();
    let types = registry_of::<State>().expect("types");
    let reflection = encode_reflection(&types, Dialect::Legacy);
    let s = node.open(&reflection, SchemaVersion::V3);
    let mut last = (Vec::new(), Vec::new());
    run(t, reuse, true, |i, o| {
        if !o.legacy[0].is_empty() {
            let d = node.decode(&s, &o.legacy[0]).map_err(TestCaseError::fail)?;
            prop_assert_eq!(norm(&d.state), o.followers[0].clone(), "tick {}", i);
        }
        last = (o.parts[0].clone(), o.legacy[0].clone());
        Ok(())
    })
    .expect("run");
    node.close(s);
    last
}

const SHOW_K0: Op = Op::Show {
    view: 0,
    h: false,
    k: 0,
    tag: false,
};

/// A splice-insert into a filtered array of primitives: the modern view
/// part inserts at index 1 (the reference's bytes), which 3.x decodes as an
/// overwrite; the legacy part sends something 3.x applies right.
#[test]
fn legacy_view_part_of_a_splice_insert() {
    let t = vec![
        vec![SHOW_K0],
        vec![Op::InsertMid {
            h: false,
            k: 0,
            v: 9,
        }],
    ];
    let (modern, legacy) = legacy_run(&t);
    assert!(
        modern.windows(3).any(|w| w == [0x80, 0x01, 0x09]),
        "modern part {modern:02x?}"
    );
    assert!(legacy.contains(&0x0a), "legacy part {legacy:02x?}");
}

/// Entries removed from a filtered Set: 3.x numbers entries itself (in
/// the order it received them), so the legacy part re-sends the set.
#[test]
fn legacy_view_part_of_set_removals() {
    let flag = |v, add| Op::Flag {
        h: false,
        k: 0,
        v,
        add,
    };
    // Shown after a removal: the client numbers the entries 0, 1 where
    // the server's indexes are 1, 2.
    let t = vec![
        vec![flag(1, true), flag(2, true), flag(3, true)],
        vec![flag(1, false)],
        vec![SHOW_K0],
        vec![flag(3, false)],
        vec![flag(1, true), flag(2, false)],
    ];
    legacy_run(&t);
}

/// Hiding an element of a filtered Collection / Set of structs: the modern
/// part deletes the server's index; 3.x numbers the entries in the order it
/// received them (here the shown element is its entry 0, the server's 2),
/// so the legacy part re-sends the collection. ADDs of entries the client
/// holds (a second `show`, the re-sent ADD of an entry shown in the tick it
/// is added) are left out of the legacy part: a 3.x Collection would hold
/// the entry twice.
#[test]
fn legacy_view_part_of_hiding_collection_elements() {
    for c in [1, 2] {
        let t = vec![
            vec![Op::CShow { view: 0, c, at: 2 }],
            vec![Op::CShow { view: 0, c, at: 0 }],
            vec![Op::CHide { view: 0, c, at: 2 }],
            // Shown twice: a 3.x Collection would add it twice.
            vec![Op::CShow { view: 0, c, at: 0 }],
            vec![Op::CHide { view: 0, c, at: 0 }],
            // Added and shown in one tick: the modern part re-sends its
            // ADD after the snapshot (the reference's bytes).
            vec![
                Op::CAdd {
                    c,
                    n: 3,
                    extra: false,
                    mid: false,
                },
                Op::CShow {
                    view: 0,
                    c,
                    at: [2, 3, 2][c],
                },
            ],
        ];
        let (modern, legacy) = legacy_run(&t);
        assert!(
            legacy.len() < modern.len(),
            "{modern:02x?} vs {legacy:02x?}"
        );
        // The hides alone.
        let (modern, legacy) = legacy_run(&t[..5]);
        assert!(modern.contains(&0x40), "modern part {modern:02x?}");
        assert!(legacy.contains(&0x0a), "legacy part {legacy:02x?}");
    }
}

/// A filtered array of structs: 3.x applies DELETE_BY_REFID without
/// lowering the element's refcount, so it keeps the instance under its
/// refId; with refIds reused, a new element given that refId would be the
/// stale instance on a 3.x client (its `extra` child left over). The
/// legacy part removes elements with CLEAR + re-ADD instead.
#[test]
fn legacy_view_part_of_array_of_structs_removals() {
    let show0 = Op::CShow {
        view: 0,
        c: 0,
        at: 0,
    };
    for removal in [
        Op::CRemove { c: 0, at: 0 },
        Op::CHide {
            view: 0,
            c: 0,
            at: 0,
        },
    ] {
        let t = vec![
            vec![show0.clone()],
            vec![removal.clone(), Op::CRemove { c: 0, at: 0 }],
            // The pile is empty: the new card takes a freed refId.
            vec![Op::CAdd {
                c: 0,
                n: 2,
                extra: false,
                mid: false,
            }],
            vec![show0.clone()],
        ];
        let (modern, legacy) = legacy_run_with(&t, true);
        assert!(!modern.is_empty() && !legacy.is_empty());
    }
}
