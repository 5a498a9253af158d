//! One test per difference of `schema-wire.md` §14 that changes bytes, run
//! through the real `@colyseus/schema` 3.0.76 decoder (what `colyseus.js`
//! 0.16 uses): legacy Reflection of primitive collections, array inserts at
//! occupied indexes, positional removal of struct elements, and reverse with
//! other ops. Every scenario feeds `encode_patch_as(Dialect::Legacy)`
//! patches (or the legacy half of `encode_patch_both`) to a 3.x client and
//! ends in the Rust state; a fresh 3.x client decoding `encode_all()` too.

use roomcast_schema::{
    encode_reflection, ArraySchema, CollectionSchema, Dialect, Encoder, MapSchema, Schema,
    SetSchema,
};
use roomcast_tests::node::{from_hex, to_hex, NodeDecoder, SchemaVersion};
use roomcast_tests::state_json;
use roomcast_tests::state_json::{check_state_json, Follower, Harness};

const V3: SchemaVersion = SchemaVersion::V3;
const V5: SchemaVersion = SchemaVersion::V5;

fn ok<T>(r: Result<T, String>) -> T {
    r.unwrap_or_else(|e| panic!("{e}"))
}

#[derive(Schema, Default, Debug)]
struct Item {
    id: u16,
    name: String,
}
state_json!(Item { id, name });

fn item(id: u16) -> Item {
    Item {
        id,
        name: format!("i{id}"),
    }
}

// ----- Reflection ----------------------------------------------------------------

#[derive(Schema, Default, Debug)]
struct Tags {
    tags: SetSchema<String>,
}
state_json!(Tags { tags });

#[derive(Schema, Default, Debug)]
struct Prims {
    scores: MapSchema<i32>,
    names: ArraySchema<String>,
    ids: SetSchema<u16>,
    weights: CollectionSchema<f32>,
    flags: ArraySchema<bool>,
    big: MapSchema<u64>,
    items: MapSchema<Item>,
    n: u8,
}
state_json!(Prims {
    scores,
    names,
    ids,
    weights,
    flags,
    big,
    items,
    n
});

/// The ReflectionField of `tags: {set: "string"}` (spec §10 and §14).
#[test]
fn reflection_of_primitive_collections_uses_the_colon_form() {
    let types = Encoder::new(Tags::default()).types().expect("types");
    let modern = to_hex(&encode_reflection(&types, Dialect::Modern));
    let legacy = to_hex(&encode_reflection(&types, Dialect::Legacy));
    // name "tags", type, referencedType -1; 3.x writes them in assignment
    // order, we in index order (decoders don't care). Spec §14 prints the
    // type as `ab …` but "set:string" is 10 bytes: `aa`.
    let modern_field = "80a474616773|81a3736574|82ff|83a6737472696e67".replace('|', "");
    let legacy_field = "80a474616773|81aa7365743a737472696e67|82ff".replace('|', "");
    assert!(modern.contains(&modern_field), "modern {modern}");
    assert!(legacy.contains(&legacy_field), "legacy {legacy}");

    // Each decoder generation accepts its own form only.
    let mut node = NodeDecoder::shared();
    let modern = from_hex(&modern).expect("hex");
    let legacy = from_hex(&legacy).expect("hex");
    for (bytes, version, accepted) in [
        (&legacy, V3, true),
        (&modern, V5, true),
        (&modern, V3, false),
        (&legacy, V5, false),
    ] {
        let r = node.try_open(bytes, version).and_then(|s| {
            let full = {
                let mut enc = Encoder::new(Tags::default());
                enc.state_mut().tags_mut().add("red".into());
                enc.encode_all().to_vec()
            };
            let got = node.decode(&s, &full);
            node.close(s);
            let got = got?;
            if got.state == serde_json::json!({"tags": ["red"]}) && got.warnings.is_empty() {
                Ok(())
            } else {
                Err(format!("{} {:?}", got.state, got.warnings))
            }
        });
        assert_eq!(
            r.is_ok(),
            accepted,
            "{version:?} on {}: {r:?}",
            to_hex(bytes)
        );
    }
}

/// Without collections of primitives both forms are the same bytes, and
/// either decoder takes them.
#[test]
fn reflection_without_primitive_collections_is_the_same() {
    #[derive(Schema, Default, Debug)]
    struct Plain {
        items: MapSchema<Item>,
        list: ArraySchema<Item>,
        n: f64,
    }
    let types = Encoder::new(Plain::default()).types().expect("types");
    let modern = encode_reflection(&types, Dialect::Modern);
    let legacy = encode_reflection(&types, Dialect::Legacy);
    let mut node = NodeDecoder::shared();
    for bytes in [&modern, &legacy] {
        for version in [V3, V5] {
            let s = ok(node.try_open(bytes, version));
            node.close(s);
        }
    }
}

#[test]
fn primitive_collections_through_the_3x_decoder() {
    check_state_json::<Prims>();
    check_state_json::<Item>();
    let mut node = NodeDecoder::shared();
    let mut h = ok(Harness::new(&mut node, Prims::default(), V3));
    ok(h.tick(&mut node, "fill", |mut s| {
        let mut m = s.scores_mut();
        m.insert("a", 1);
        m.insert("b", -2);
        let mut a = s.names_mut();
        a.push("x".into());
        a.push("y".into());
        s.ids_mut().add(7);
        s.ids_mut().add(8);
        s.weights_mut().add(0.5);
        s.weights_mut().add(0.5);
        s.flags_mut().push(false);
        s.big_mut().insert("max", (1 << 53) - 1);
        s.items_mut().insert("i", item(1));
        s.set_n(1);
    }));
    ok(h.tick(&mut node, "replace, delete, add", |mut s| {
        s.scores_mut().insert("a", 10);
        s.scores_mut().remove("b");
        s.scores_mut().insert("c", 3);
        s.names_mut().set(1, "Y".into());
        s.ids_mut().remove(&7);
        s.weights_mut().remove(&0.5);
        s.flags_mut().push(true);
        s.items_mut().get_mut("i").expect("i").set_name("I".into());
    }));
    ok(h.tick(&mut node, "clear and refill", |mut s| {
        s.scores_mut().clear();
        s.scores_mut().insert("d", 4);
        s.names_mut().clear();
        s.ids_mut().clear();
        s.ids_mut().add(9);
        s.weights_mut().clear();
        s.items_mut().clear();
    }));
    h.close(&mut node);
}

// ----- arrays ----------------------------------------------------------------------

#[derive(Schema, Default, Debug)]
struct Arrays {
    nums: ArraySchema<u8>,
    items: ArraySchema<Item>,
}
state_json!(Arrays { nums, items });

fn arrays(nums: &[u8], ids: &[u16]) -> Arrays {
    Arrays {
        nums: nums.iter().copied().collect(),
        items: ids.iter().map(|&i| item(i)).collect(),
    }
}

/// Runs `ops` in one tick on `initial` with a 5.x and a 3.x client (each
/// fed its dialect's patch) and returns `(modern, legacy)` patches.
fn both(initial: Arrays, what: &str, ops: impl FnOnce(ArraysMut<'_>)) -> (Vec<u8>, Vec<u8>) {
    check_state_json::<Arrays>();
    let mut node = NodeDecoder::shared();
    let mut h = ok(Harness::with_clients(&mut node, initial, &[V5, V3]));
    ok(h.tick(&mut node, what, ops));
    let patches = (
        h.patch(Dialect::Modern).expect("modern").to_vec(),
        h.patch(Dialect::Legacy).expect("legacy").to_vec(),
    );
    h.close(&mut node);
    patches
}

/// The refId of `Arrays.nums` / `Arrays.items` is 1 / 2 (the root is 0).
fn hex(bytes: &[u8]) -> String {
    to_hex(bytes)
}

#[test]
fn inserts_at_occupied_indexes() {
    // unshift of one value: index 0, which 3.x inserts at too.
    let (modern, legacy) = both(arrays(&[1, 2, 3], &[]), "unshift(0)", |mut s| {
        s.nums_mut().unshift(0);
    });
    assert_eq!(hex(&modern), "ff01800000");
    assert_eq!(hex(&legacy), hex(&modern));

    // splice-insert at 1: 5.x inserts at any occupied index, 3.x would
    // overwrite: the legacy patch starts over.
    let (modern, legacy) = both(arrays(&[1, 2, 3], &[]), "splice(1, 0, 7, 8)", |mut s| {
        s.nums_mut().splice(1, 0, [7, 8]);
    });
    assert_eq!(hex(&modern), "ff01800107800208");
    assert_eq!(hex(&legacy), "ff010a800001800107800208800302800403");

    // Multi-element unshift: the second ADD lands on an occupied index 1.
    let (modern, legacy) = both(arrays(&[1, 2, 3], &[]), "unshift(-2, -1)", |mut s| {
        s.nums_mut().unshift(9);
        s.nums_mut().unshift(8);
    });
    assert_eq!(hex(&modern), "ff01800008800109");
    assert!(hex(&legacy).starts_with("ff010a"), "{}", hex(&legacy));

    both(
        arrays(&[1, 2], &[1, 2, 3]),
        "inserts in the middle",
        |mut s| {
            s.nums_mut().insert(1, 5);
            s.nums_mut().insert(3, 6);
            s.items_mut().insert(1, item(4));
            s.items_mut().insert(2, item(5));
        },
    );
    both(
        arrays(&[], &[1, 2]),
        "splice with more inserts than deletes",
        |mut s| {
            s.items_mut().splice(0, 1, [item(3), item(4), item(5)]);
            s.nums_mut().splice(0, 0, [1, 2, 3]);
        },
    );
    both(
        arrays(&[1, 2, 3], &[1, 2]),
        "unshift with other ops",
        |mut s| {
            s.nums_mut().unshift(0);
            s.nums_mut().pop();
            s.nums_mut().set(1, 9);
            s.items_mut().unshift(item(3));
            s.items_mut().remove(1);
        },
    );
}

#[test]
fn removing_structs_from_arrays_is_positional() {
    // `[A, B, C]`: elements are refIds 3, 4, 5.
    let (modern, legacy) = both(arrays(&[], &[1, 2, 3]), "pop", |mut s| {
        s.items_mut().pop();
    });
    assert_eq!(hex(&modern), "ff022105");
    assert_eq!(hex(&legacy), "ff024002");
    let (modern, legacy) = both(arrays(&[], &[1, 2, 3]), "shift", |mut s| {
        s.items_mut().shift();
    });
    assert_eq!(hex(&modern), "ff022103");
    assert_eq!(hex(&legacy), "ff024000");
    let (_, legacy) = both(arrays(&[], &[1, 2, 3]), "splice(1, 1)", |mut s| {
        s.items_mut().splice(1, 1, []);
    });
    assert_eq!(hex(&legacy), "ff024001");
    both(arrays(&[], &[1, 2, 3, 4]), "several removals", |mut s| {
        s.items_mut().remove(2);
        s.items_mut().shift();
        s.items_mut().pop();
    });

    // After positional deletes the 3.x client drops the instances (refcount
    // to 0): a later full re-send of other instances, and removals of the
    // survivors, keep working across ticks.
    check_state_json::<Arrays>();
    let mut node = NodeDecoder::shared();
    let mut h = ok(Harness::with_clients(
        &mut node,
        arrays(&[], &[1, 2, 3]),
        &[V3],
    ));
    ok(h.tick(&mut node, "remove two", |mut s| {
        s.items_mut().remove(0);
        s.items_mut().remove(1);
    }));
    ok(h.tick(&mut node, "edit the survivor, add two", |mut s| {
        s.items_mut().get_mut(0).expect("0").set_name("kept".into());
        s.items_mut().push(item(4));
        s.items_mut().push(item(5));
    }));
    ok(h.tick(&mut node, "move one to the front", |mut s| {
        let x = s.items_mut().pop().expect("x");
        s.items_mut().unshift(x);
    }));
    ok(h.tick(&mut node, "remove all one by one", |mut s| {
        while !s.items.is_empty() {
            s.items_mut().pop();
        }
    }));
    h.close(&mut node);
}

#[test]
fn reverse_alone_and_with_other_ops() {
    let (modern, legacy) = both(arrays(&[1, 2, 3], &[1, 2]), "reverse alone", |mut s| {
        s.nums_mut().reverse();
        s.items_mut().reverse();
    });
    assert_eq!(hex(&modern), "ff010fff020f");
    assert_eq!(hex(&legacy), hex(&modern));
    both(arrays(&[1, 2, 3], &[1, 2]), "push then reverse", |mut s| {
        s.nums_mut().push(4);
        s.nums_mut().reverse();
        s.items_mut().push(item(3));
        s.items_mut().reverse();
    });
    both(
        arrays(&[1, 2, 3], &[1, 2, 3]),
        "reverse then pop, set",
        |mut s| {
            s.nums_mut().reverse();
            s.nums_mut().pop();
            s.nums_mut().set(0, 7);
            s.items_mut().reverse();
            s.items_mut().shift();
            s.items_mut().get_mut(0).expect("0").set_id(9);
        },
    );
    both(
        arrays(&[1, 2, 3], &[1, 2, 3]),
        "reverse twice around an unshift",
        |mut s| {
            s.nums_mut().reverse();
            s.nums_mut().unshift(0);
            s.nums_mut().reverse();
            s.items_mut().reverse();
            s.items_mut().reverse();
        },
    );
    both(arrays(&[1, 2, 3], &[1, 2]), "sort then reverse", |mut s| {
        s.nums_mut().sort_by(|a, b| b.cmp(a));
        s.nums_mut().reverse();
        s.items_mut().splice(1, 0, [item(7)]);
        s.items_mut().reverse();
    });
}

// ----- regressions: encoder bugs found by interop_proptest (since fixed) ---------

/// A 3.x client applies a positional op after an insert at index 0 to the
/// shifted array but reads the element it releases from its pre-tick copy
/// (`tmpItems[i]`): `[A, B, C]`, `unshift(N); remove(1)` once sent as
/// `80 00 N | 40 01` removes A from the array but releases B, which the
/// client then garbage-collects although it still shows it; the next edit
/// of B fails with `"refId" not found`.
#[test]
fn unshift_then_positional_delete_of_structs() {
    let mut node = NodeDecoder::shared();
    let mut h = ok(Harness::with_clients(
        &mut node,
        arrays(&[], &[1, 2, 3]),
        &[V3],
    ));
    ok(h.tick(&mut node, "unshift, remove the old front", |mut s| {
        s.items_mut().unshift(item(9));
        s.items_mut().remove(1);
    }));
    ok(h.tick(&mut node, "edit the survivor", |mut s| {
        s.items_mut().get_mut(1).expect("1").set_id(7);
    }));
    ok(h.tick(&mut node, "unshift, replace", |mut s| {
        s.items_mut().unshift(item(10));
        s.items_mut().set(2, item(11));
    }));
    ok(h.tick(&mut node, "edit every element", |mut s| {
        s.items_mut().for_each_mut(|mut it| {
            let id = it.id;
            it.set_id(id + 1);
        });
    }));
    ok(h.tick(
        &mut node,
        "push, remove the front, re-insert it",
        |mut s| {
            s.items_mut().push(item(3));
            s.items_mut().remove(0);
            let b = s.items_mut().remove(0);
            s.items_mut().insert(0, b);
        },
    ));
    h.close(&mut node);
}

#[derive(Schema, Default, Debug)]
struct Indexed {
    set: SetSchema<u8>,
    coll: CollectionSchema<u8>,
    structs: SetSchema<Item>,
}
state_json!(Indexed { set, coll, structs });

/// A 3.x client ignores the wire index of a Set/Collection ADD and numbers
/// entries with its own counter (one per applied ADD), then resolves
/// DELETEs through that numbering. A server index that never reached the
/// client as an ADD (a value added and removed in one tick) shifts every
/// later index: `add(5); remove(5)` (once sent as `40 00`), then `add(6)` (`80 01
/// 06`, client index 0), then `remove(6)` (`40 01`): the client keeps 6.
#[test]
fn set_and_collection_indexes_stay_in_step() {
    check_state_json::<Indexed>();
    let mut node = NodeDecoder::shared();
    let mut h = ok(Harness::with_clients(
        &mut node,
        Indexed::default(),
        &[V5, V3],
    ));
    ok(h.tick(&mut node, "add and remove in one tick", |mut s| {
        s.set_mut().add(5);
        s.set_mut().remove(&5);
        s.coll_mut().add(5);
        s.coll_mut().remove(&5);
        s.structs_mut().add(item(5));
        s.structs_mut().remove_where(|_| true);
    }));
    ok(h.tick(&mut node, "add", |mut s| {
        s.set_mut().add(6);
        s.coll_mut().add(6);
        s.structs_mut().add(item(6));
    }));
    ok(h.tick(&mut node, "remove", |mut s| {
        s.set_mut().remove(&6);
        s.coll_mut().remove(&6);
        s.structs_mut().remove_where(|_| true);
    }));
    ok(
        h.tick(&mut node, "remove and re-add the same value", |mut s| {
            s.set_mut().add(1);
            s.set_mut().remove(&1);
            s.set_mut().add(1);
        }),
    );
    ok(h.tick(&mut node, "remove it", |mut s| {
        s.set_mut().remove(&1);
    }));
    h.close(&mut node);
}

/// A 3.x client skips a positional write whose value equals its pre-tick
/// element at that index (`tmpItems[i]`), even after an unshift shifted the
/// array: `[0, 14, 1]`, `sort(); unshift(1)` once sent as `80 00 01 | 00 01 00 |
/// 00 02 01 | 00 03 0e` ends as `[1, 0, 14, 14]` instead of `[1, 0, 1, 14]`.
#[test]
fn unshift_then_positional_writes_of_primitives() {
    let mut node = NodeDecoder::shared();
    let mut h = ok(Harness::with_clients(
        &mut node,
        arrays(&[0, 14, 1], &[]),
        &[V3],
    ));
    ok(h.tick(&mut node, "sort, unshift", |mut s| {
        s.nums_mut().sort_by(Ord::cmp);
        s.nums_mut().unshift(1);
    }));
    ok(h.tick(&mut node, "unshift, set", |mut s| {
        s.nums_mut().unshift(0);
        s.nums_mut().set(2, 1);
    }));
    h.close(&mut node);
}

#[derive(Schema, Default, Debug)]
struct Tagged {
    id: u8,
    tags: ArraySchema<u8>,
}
state_json!(Tagged { id, tags });

#[derive(Schema, Default, Debug)]
struct TaggedList {
    list: ArraySchema<Tagged>,
    n: u8,
}
state_json!(TaggedList { list, n });

fn tagged(id: u8, tags: &[u8]) -> Tagged {
    Tagged {
        id,
        tags: tags.iter().copied().collect(),
    }
}

/// A 3.x client inserts only at index 0: an ADD at an occupied index 1
/// overwrites the element there *without releasing it*. `[A, B]`,
/// `insert(1, N); remove(2)` once sent as `80 01 N | 40 02` shows `[A, N]` but
/// B (and its `tags`) stays referenced on the client forever; once B's
/// refIds are reused, a new element resolves to B's stale instances (a
/// pushed `{tags: []}` shows `tags: [0]`).
#[test]
fn insert_then_remove_in_a_struct_array_releases_the_removed() {
    check_state_json::<TaggedList>();
    let mut node = NodeDecoder::shared();
    let initial = TaggedList {
        list: [tagged(1, &[]), tagged(2, &[0])].into_iter().collect(),
        n: 0,
    };
    let mut h = ok(Harness::with_clients(&mut node, initial, &[V3]));
    ok(
        h.tick(&mut node, "insert(1, N), remove the old 1", |mut s| {
            s.list_mut().insert(1, tagged(3, &[]));
            s.list_mut().remove(2);
        }),
    );
    ok(
        h.tick(&mut node, "new elements reuse the freed refIds", |mut s| {
            s.list_mut().push(tagged(4, &[]));
            s.list_mut().push(tagged(5, &[]));
        }),
    );
    h.close(&mut node);
}

/// A named tick.
type Step = (&'static str, fn(IndexedMut<'_>));

/// A 3.x client that joins late (full state) and then follows the patches.
/// It numbers Set/Collection entries by its own count of applied ADDs, so
/// after removals its numbering (0, 1 for the full state's `80 02 | 80 03`)
/// differs from the stream clients' and the server's (2, 3): the later
/// `40 03` removes nothing. (The reference 3.x server has the same flaw.)
#[test]
fn late_3x_joiner_follows_the_patches() {
    check_state_json::<Indexed>();
    let mut node = NodeDecoder::shared();
    let mut h = ok(Harness::with_clients(
        &mut node,
        Indexed::default(),
        &[V5, V3],
    ));
    ok(h.tick(&mut node, "fill", |mut s| {
        for v in 1..=4 {
            s.set_mut().add(v);
            s.coll_mut().add(v);
            s.structs_mut().add(item(u16::from(v)));
        }
    }));
    ok(h.tick(&mut node, "remove the first two", |mut s| {
        for v in 1..=2 {
            s.set_mut().remove(&v);
            s.coll_mut().remove(&v);
        }
        s.structs_mut().remove_where(|it| it.id <= 2);
    }));
    let types = h.enc.types().expect("types");
    let late = ok(Follower::open(
        &mut node,
        encode_reflection(&types, Dialect::Legacy),
        V3,
    ));
    let full = h.enc.encode_all().to_vec();
    ok(late.patch(&mut node, "join", &full, &h.expected()));
    let ticks: [Step; 3] = [
        ("remove the last", |mut s| {
            s.set_mut().remove(&4);
            s.coll_mut().remove(&4);
            s.structs_mut().remove_where(|it| it.id == 4);
        }),
        ("add two", |mut s| {
            s.set_mut().add(5);
            s.set_mut().add(6);
            s.coll_mut().add(5);
            s.structs_mut().add(item(5));
        }),
        ("remove everything one by one", |mut s| {
            for v in [3, 5, 6] {
                s.set_mut().remove(&v);
                s.coll_mut().remove(&v);
            }
            while s.structs_mut().remove_where(|_| true).is_some() {}
        }),
    ];
    for (what, f) in ticks {
        ok(h.tick(&mut node, what, f));
        let patch = h.patch(Dialect::Legacy).expect("legacy").to_vec();
        ok(late.patch(
            &mut node,
            &format!("late joiner: {what}"),
            &patch,
            &h.expected(),
        ));
    }
    late.close(&mut node);
    h.close(&mut node);
}
