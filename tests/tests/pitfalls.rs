//! One test per row of `reference-pitfalls.md` (where `@colyseus/schema`
//! 5.0.34 itself ends with the wrong client state): each sequence runs in
//! one tick on Roomcast's encoder and the real 5.0.34 decoder, following
//! the patches and decoding a fresh full state, ends in the server's state
//! without a warning. A 3.0.76 client fed the legacy patches of the same
//! ticks must end there too.

use roomcast_schema::{encode_reflection, ArraySchema, Dialect, MapSchema, Schema, SetSchema};
use roomcast_tests::node::{NodeDecoder, SchemaVersion};
use roomcast_tests::state_json;
use roomcast_tests::state_json::{check_state_json, Follower, Harness};

/// Every scenario runs with a 5.0.34 client (modern patches) and a 3.0.76
/// client (legacy patches) on the same encoder.
const BOTH: &[SchemaVersion] = &[SchemaVersion::V5, SchemaVersion::V3];

fn ok<T>(r: Result<T, String>) -> T {
    r.unwrap_or_else(|e| panic!("{e}"))
}

#[derive(Schema, Default, Debug, Clone)]
struct Item {
    id: u16,
    v: ArraySchema<u8>,
}
state_json!(Item { id, v });

#[derive(Schema, Default, Debug)]
struct State {
    bools: ArraySchema<bool>,
    nums: ArraySchema<u8>,
    strs: ArraySchema<String>,
    items: ArraySchema<Item>,
    by_key: MapSchema<Item>,
    set: SetSchema<Item>,
    holder: Option<Item>,
}
state_json!(State {
    bools,
    nums,
    strs,
    items,
    by_key,
    set,
    holder
});

fn item(id: u16, v: &[u8]) -> Item {
    Item {
        id,
        v: v.iter().copied().collect(),
    }
}

fn items(ids: &[u16]) -> ArraySchema<Item> {
    ids.iter().map(|&id| item(id, &[])).collect()
}

fn strs(v: &[&str]) -> ArraySchema<String> {
    v.iter().map(|&s| s.to_owned()).collect()
}

/// Starts a state (its first patch and full state are checked), runs `ops`
/// in one tick and checks again; returns the patch of that tick.
fn one_tick(initial: State, what: &str, ops: impl FnOnce(StateMut<'_>)) -> Vec<u8> {
    check_state_json::<State>();
    check_state_json::<Item>();
    let mut node = NodeDecoder::shared();
    let mut h = ok(Harness::with_clients(&mut node, initial, BOTH));
    let patch = ok(h.tick(&mut node, what, ops));
    h.close(&mut node);
    patch
}

fn ids(s: &State) -> Vec<u16> {
    s.items.iter().map(|i| i.id).collect()
}

#[test]
fn row1_insert_equal_primitive_at_its_index() {
    let state = |b: &[bool], n: &[u8], s: &[&str]| State {
        bools: b.iter().copied().collect(),
        nums: n.iter().copied().collect(),
        strs: strs(s),
        ..State::default()
    };
    one_tick(state(&[true], &[7], &[""]), "unshift equal", |mut s| {
        s.bools_mut().unshift(true);
        s.nums_mut().unshift(7);
        s.strs_mut().unshift(String::new());
    });
    one_tick(
        state(&[true], &[1, 2], &["a", "b"]),
        "splice-insert equal",
        |mut s| {
            s.bools_mut().splice(0, 0, [true]);
            s.nums_mut().insert(1, 2);
            s.strs_mut().splice(1, 0, ["b".to_owned(), "b".to_owned()]);
        },
    );
    one_tick(
        state(&[false, false], &[0], &[""]),
        "equal falsy values",
        |mut s| {
            s.bools_mut().unshift(false);
            s.bools_mut().insert(2, false);
            s.nums_mut().unshift(0);
            s.nums_mut().unshift(0);
        },
    );
}

#[test]
fn row2_falsy_value_written_after_a_removal() {
    let state = |b: &[bool], n: &[u8], s: &[&str]| State {
        bools: b.iter().copied().collect(),
        nums: n.iter().copied().collect(),
        strs: strs(s),
        ..State::default()
    };
    one_tick(
        state(&[true, true], &[5, 6], &["a", "b"]),
        "pop, push falsy",
        |mut s| {
            s.nums_mut().pop();
            s.nums_mut().push(0);
            s.nums_mut().push(3);
            s.bools_mut().shift();
            s.bools_mut().push(false);
            s.bools_mut().push(true);
            s.strs_mut().splice(0, 1, []);
            s.strs_mut().push(String::new());
            s.strs_mut().push("c".into());
        },
    );
    one_tick(
        state(&[true, true], &[5, 6, 7], &["a", "b"]),
        "set falsy",
        |mut s| {
            s.nums_mut().pop();
            s.nums_mut().set(0, 0);
            s.nums_mut().push(3);
            s.bools_mut().shift();
            s.bools_mut().set(0, false);
            s.bools_mut().push(true);
            s.strs_mut().pop();
            s.strs_mut().set(0, String::new());
            s.strs_mut().push("z".into());
        },
    );
}

#[test]
fn row3_removal_then_sort() {
    let state = |n: &[u8], s: &[&str]| State {
        nums: n.iter().copied().collect(),
        strs: strs(s),
        ..State::default()
    };
    one_tick(
        state(&[1, 5], &["a", "c"]),
        "pop, sort descending",
        |mut s| {
            s.nums_mut().pop();
            s.nums_mut().sort_by(|a, b| b.cmp(a));
            s.strs_mut().pop();
            s.strs_mut().sort_by(|a, b| b.cmp(a));
        },
    );
    one_tick(
        state(&[3, 1, 5], &["c", "a", "b"]),
        "shift, push, sort",
        |mut s| {
            s.nums_mut().shift();
            s.nums_mut().push(0);
            s.nums_mut().sort_by(Ord::cmp);
            s.strs_mut().remove(1);
            s.strs_mut().sort_by(Ord::cmp);
        },
    );
    let mut st = state(&[], &[]);
    st.items = items(&[3, 1, 2]);
    one_tick(st, "struct array: remove, sort", |mut s| {
        s.items_mut().pop();
        s.items_mut().sort_by(|a, b| a.id.cmp(&b.id));
    });
}

#[test]
fn row4_front_insert_with_other_positional_changes() {
    let state = |s: &[&str]| State {
        strs: strs(s),
        ..State::default()
    };
    one_tick(state(&["Z"]), "unshift then splice(0,1,x)", |mut s| {
        s.strs_mut().unshift("a".into());
        s.strs_mut().splice(0, 1, ["x".into()]);
    });
    one_tick(
        state(&["a", "b", "c"]),
        "splice-insert then shift",
        |mut s| {
            s.strs_mut().splice(1, 0, ["n".into()]);
            s.strs_mut().shift();
        },
    );
    one_tick(state(&["a", "b", "c"]), "two splices", |mut s| {
        s.strs_mut().splice(1, 1, ["x".into(), "y".into()]);
        s.strs_mut().splice(0, 2, ["z".into()]);
    });
    one_tick(
        state(&["a", "b"]),
        "unshift twice, remove the middle",
        |mut s| {
            s.strs_mut().unshift("p".into());
            s.strs_mut().unshift("q".into());
            s.strs_mut().remove(2);
            s.strs_mut().insert(1, "r".into());
        },
    );
    let mut st = state(&[]);
    st.items = items(&[1]);
    one_tick(st, "struct array: unshift then splice(0,1,x)", |mut s| {
        s.items_mut().unshift(item(2, &[]));
        s.items_mut().splice(0, 1, [item(3, &[])]);
        s.items_mut().splice(1, 0, [item(4, &[])]);
        s.items_mut().shift();
    });
}

#[test]
fn row5_several_positional_changes_on_an_array_of_structs() {
    let st = State {
        items: items(&[1, 2, 3]),
        ..State::default()
    };
    one_tick(st, "splice(1,2,N), pop", |mut s| {
        s.items_mut().splice(1, 2, [item(9, &[])]);
        s.items_mut().pop();
    });
    let st = State {
        items: items(&[1, 2, 3, 4]),
        ..State::default()
    };
    one_tick(st, "splice, shift, set, pop", |mut s| {
        let mut a = s.items_mut();
        a.splice(1, 1, [item(7, &[]), item(8, &[])]);
        a.shift();
        a.set(1, item(9, &[1]));
        a.pop();
        a.remove(0);
    });
}

#[test]
fn row6_instance_removed_and_reattached_with_an_inner_change() {
    // The reference re-sends the instance as ADDs although the client kept
    // it: `v = [5]` became `[6, 5]`.
    let st = State {
        items: [item(1, &[5])].into_iter().collect(),
        by_key: [("a".to_owned(), item(2, &[5]))].into_iter().collect(),
        holder: Some(item(3, &[5])),
        ..State::default()
    };
    one_tick(st, "edit, remove, re-attach", |mut s| {
        let mut a = s.items_mut();
        a.get_mut(0).expect("0").v_mut().unshift(6);
        let x = a.pop().expect("x");
        a.push(x);
        let mut m = s.by_key_mut();
        m.get_mut("a").expect("a").v_mut().unshift(6);
        let x = m.remove("a").expect("a");
        m.insert("a", x);
        let mut h = s.holder_mut().expect("holder");
        h.v_mut().unshift(6);
        let x = s.holder.clone();
        s.set_holder(None);
        s.set_holder(x);
    });
    let st = State {
        items: [item(1, &[5])].into_iter().collect(),
        by_key: [("a".to_owned(), item(2, &[5]))].into_iter().collect(),
        ..State::default()
    };
    one_tick(st, "remove, edit detached, re-attach elsewhere", |mut s| {
        let mut x = s.items_mut().shift().expect("x");
        x.v.push(6);
        let mut y = s.by_key_mut().remove("a").expect("a");
        y.v.push(7);
        s.by_key_mut().insert("b", x);
        s.items_mut().push(y);
        s.by_key_mut().get_mut("b").expect("b").v_mut().unshift(4);
    });
}

#[test]
fn row7_set_add_new_instance_then_clear() {
    let st = State {
        set: [item(1, &[1])].into_iter().collect(),
        ..State::default()
    };
    one_tick(st, "add then clear", |mut s| {
        s.set_mut().add(item(2, &[2]));
        s.set_mut().clear();
    });
    one_tick(State::default(), "add, clear, add", |mut s| {
        s.set_mut().add(item(3, &[3]));
        s.set_mut().clear();
        s.set_mut().add(item(4, &[4]));
    });
    one_tick(State::default(), "array and map too", |mut s| {
        s.items_mut().push(item(5, &[5]));
        s.items_mut().clear();
        s.by_key_mut().insert("k", item(6, &[6]));
        s.by_key_mut().clear();
    });
}

#[test]
fn row8_instance_moved_within_the_same_array() {
    let st = || State {
        items: items(&[1, 2, 3]),
        ..State::default()
    };
    // The vector's `unshift(a[1]); splice(2, 1)`.
    let mut after = Vec::new();
    {
        let mut node = NodeDecoder::shared();
        let mut h = ok(Harness::with_clients(&mut node, st(), BOTH));
        ok(h.tick(&mut node, "move a[1] to the front", |mut s| {
            let x = s.items_mut().remove(1);
            s.items_mut().unshift(x);
        }));
        after.push(ids(h.enc.state()));
        ok(h.tick(&mut node, "move the front to the end", |mut s| {
            let x = s.items_mut().shift().expect("x");
            s.items_mut().push(x);
        }));
        after.push(ids(h.enc.state()));
        ok(h.tick(&mut node, "swap two, edit one", |mut s| {
            let mut a = s.items_mut();
            let x = a.remove(0);
            a.insert(1, x);
            a.get_mut(1).expect("1").v_mut().push(1);
        }));
        after.push(ids(h.enc.state()));
        h.close(&mut node);
    }
    assert_eq!(after, [vec![2, 1, 3], vec![1, 3, 2], vec![3, 1, 2]]);
    one_tick(st(), "move to other array and back", |mut s| {
        let x = s.items_mut().remove(2);
        s.set_holder(Some(x));
        let y = s.items_mut().remove(0);
        s.items_mut().insert(1, y);
    });
}

/// A named tick.
type Step = (&'static str, fn(StateMut<'_>));

/// The `join_mid_tick` vector's scenario: a client that joins at a patch
/// boundary (full state taken right after `encode_patch`) and then follows
/// the later patches holds the server state.
#[test]
fn row9_join_at_a_patch_boundary() {
    let st = State {
        items: [item(1, &[1]), item(2, &[1])].into_iter().collect(),
        nums: [1].into_iter().collect(),
        ..State::default()
    };
    let mut node = NodeDecoder::shared();
    let mut h = ok(Harness::with_clients(&mut node, st, BOTH));
    let types = h.enc.types().expect("types");
    let reflection = encode_reflection(&types, Dialect::Modern);
    // The tick of the vector: push + shift + another ref's change pending
    // when the client joins; the server flushes the patch first.
    {
        let mut s = h.enc.state_mut();
        s.items_mut().push(item(3, &[1]));
        s.items_mut().shift();
        s.nums_mut().push(2);
        s.strs_mut().push("n".into());
    }
    ok(h.check(&mut node, "pending push+shift, patch flushed"));
    let joiner = ok(Follower::open(&mut node, reflection, SchemaVersion::V5));
    let full = h.enc.encode_all().to_vec();
    ok(joiner.patch(&mut node, "join", &full, &h.expected()));
    assert_eq!(ids(h.enc.state()), [2, 3]);
    let ticks: [Step; 3] = [
        ("deletes", |mut s| {
            s.nums_mut().shift();
            s.items_mut().pop();
        }),
        ("inserts", |mut s| {
            s.items_mut().unshift(item(4, &[]));
            s.items_mut().push(item(5, &[2]));
            s.strs_mut().unshift("m".into());
        }),
        ("edits", |mut s| {
            s.items_mut().for_each_mut(|mut it| it.v_mut().push(9));
            s.items_mut().reverse();
        }),
    ];
    for (what, f) in ticks {
        let patch = ok(h.tick(&mut node, what, f));
        ok(joiner.patch(&mut node, what, &patch, &h.expected()));
    }
    joiner.close(&mut node);
    h.close(&mut node);
}
