//! StateView under random mutation sequences: map insert / remove /
//! replace of structs with view fields (shared map and a map behind a view
//! field), primitive changes, a nested child behind a view field, arrays
//! and sets of primitives behind view fields, interleaved with `show` /
//! `hide` (default tag and a custom tag) on several views.
//!
//! After every patch, for every view, Roomcast's `DynamicDecoder` following
//! the shared patches plus that view's parts holds exactly what a fresh
//! decoder holds after `encode_all()` + `encode_all_view(view)` (which then
//! becomes what that view's client holds, like a join), and exactly the
//! server state projected by the test's own model of what the view sees.
//!
//! A smaller run (`node_decoder_follows_view_patches`) feeds the same kind
//! of sequences to the real `@colyseus/schema` 5.0.34 decoder.
//!
//! `PROPTEST_CASES` replaces the case counts.

use std::collections::BTreeMap;

use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestRng, TestRunner};
use roomcast_schema::decoder::DynamicDecoder;
use roomcast_schema::{
    encode_reflection, registry_of, ArraySchema, Dialect, Encoder, EncoderOptions, MapSchema,
    Schema, SetSchema, ViewId, ViewTarget,
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

#[derive(Schema, Default, Debug)]
struct State {
    ents: MapSchema<Ent>,
    #[schema(view)]
    hidden: MapSchema<Ent>,
    round: u8,
}

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
}

fn op() -> impl Strategy<Value = Op> {
    let hk = (any::<bool>(), 0..KEYS);
    prop_oneof![
        3 => (hk.clone(), 0..4u8, 0..3u16).prop_map(|((h, k), x, secret)| Op::Put { h, k, x, secret }),
        1 => hk.clone().prop_map(|(h, k)| Op::Remove { h, k }),
        3 => (hk.clone(), 0..4u8).prop_map(|((h, k), x)| Op::SetX { h, k, x }),
        2 => (hk.clone(), 0..4u16).prop_map(|((h, k), v)| Op::SetSecret { h, k, v }),
        1 => (hk.clone(), 0..3u8).prop_map(|((h, k), v)| Op::SetTagged { h, k, v }),
        1 => (hk.clone(), proptest::option::of(0..3u8)).prop_map(|((h, k), v)| Op::SetInv { h, k, v }),
        1 => (hk.clone(), 0..3u8).prop_map(|((h, k), v)| Op::InvA { h, k, v }),
        1 => (hk.clone(), 0..5u8).prop_map(|((h, k), v)| Op::Push { h, k, v }),
        1 => hk.clone().prop_map(|(h, k)| Op::Pop { h, k }),
        1 => (hk.clone(), 0..5u8).prop_map(|((h, k), v)| Op::SetNum { h, k, v }),
        1 => hk.clone().prop_map(|(h, k)| Op::Shift { h, k }),
        1 => (hk.clone(), 0..5u8).prop_map(|((h, k), v)| Op::Unshift { h, k, v }),
        1 => (hk.clone(), 0..5u8).prop_map(|((h, k), v)| Op::InsertMid { h, k, v }),
        1 => (hk.clone(), 0..4u8, any::<bool>()).prop_map(|((h, k), v, add)| Op::Flag { h, k, v, add }),
        1 => (0..3u8).prop_map(Op::Round),
        3 => (0..VIEWS, hk.clone(), any::<bool>()).prop_map(|(view, (h, k), tag)| Op::Show { view, h, k, tag }),
        2 => (0..VIEWS, hk.clone(), any::<bool>()).prop_map(|(view, (h, k), tag)| Op::Hide { view, h, k, tag }),
        1 => (0..VIEWS, hk).prop_map(|(view, (h, k))| Op::ShowInv { view, h, k }),
    ]
}

fn ticks(max_ticks: usize) -> impl Strategy<Value = Vec<Vec<Op>>> {
    proptest::collection::vec(proptest::collection::vec(op(), 1..6), 1..max_ticks)
}

fn key(k: u8) -> String {
    format!("k{k}")
}

/// The test's model of what each view was shown: `(hidden?, key) → tag
/// shown with` (`false` default tag only, `true` tag 1 too).
type Shown = Vec<BTreeMap<(bool, u8), bool>>;

/// A tick's effects on what views were shown, resolved at the patch (a
/// `show` of an instance detached later in the tick never happens).
#[derive(Debug, Clone, Copy)]
enum Ev {
    Show {
        view: usize,
        key: (bool, u8),
        tag: bool,
        inv: bool,
    },
    Hide {
        view: usize,
        key: (bool, u8),
        tag: bool,
    },
    /// The entity (or, `inv_only`, its nested child) was detached.
    Gone { key: (bool, u8), inv_only: bool },
}

fn resolve(shown: &mut Shown, evs: &[Ev]) {
    for (i, ev) in evs.iter().enumerate() {
        let detached_later = |key: (bool, u8), inv: bool| {
            evs[i + 1..].iter().any(
                |e| matches!(*e, Ev::Gone { key: k, inv_only } if k == key && (inv || !inv_only)),
            )
        };
        match *ev {
            Ev::Show {
                view,
                key,
                tag,
                inv,
            } => {
                if !detached_later(key, inv) {
                    let t = shown[view].entry(key).or_insert(false);
                    *t |= tag;
                }
            }
            Ev::Hide { view, key, tag } => {
                if !detached_later(key, false) {
                    if tag {
                        if let Some(t) = shown[view].get_mut(&key) {
                            *t = false;
                        }
                    } else {
                        shown[view].remove(&key);
                    }
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
    let mut st = enc.state_mut();
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
                    inv: false,
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
                evs.push(Ev::Hide {
                    view,
                    key: (h, k),
                    tag,
                });
            }
        }
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
                    inv: true,
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
    s
}

fn json_of(d: &DynamicDecoder) -> Value {
    canon(&serde_json::from_str(&d.to_json()).expect("decoder JSON"))
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
    let result = runner.run(&(ticks(12), any::<bool>()), |(t, reuse)| {
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
    npm_decoder_follows(SchemaVersion::V3, cases(200));
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
    let result = runner.run(&ticks(8), |t| {
        let mut node = node.borrow_mut();
        let sessions: Vec<_> = (0..VIEWS)
            .map(|_| node.open(&reflection, version))
            .collect();
        let r = run(&t, false, legacy, |i, o| {
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
                    canon(&got),
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
    let mut node = NodeDecoder::new();
    let types = registry_of::<State>().expect("types");
    let reflection = encode_reflection(&types, Dialect::Legacy);
    let s = node.open(&reflection, SchemaVersion::V3);
    let mut last = (Vec::new(), Vec::new());
    run(t, false, true, |i, o| {
        if !o.legacy[0].is_empty() {
            let d = node.decode(&s, &o.legacy[0]).map_err(TestCaseError::fail)?;
            prop_assert_eq!(canon(&d.state), o.followers[0].clone(), "tick {}", i);
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
