//! `ArraySchema` patches follow the recording model of `@colyseus/schema`
//! 5.0.34 (its `tmpItems`, `deletedIndexes` and per-index op record): the
//! op chosen and the order of ops within one tick, and the CLEAR + re-ADD
//! fallback kept for sequences its own decoder misapplies.

use roomcast_schema::{ArraySchema, Encoder, Schema};

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[derive(Schema, Default)]
struct Item {
    id: u8,
}

fn item(id: u8) -> Item {
    Item { id }
}

#[derive(Schema, Default)]
struct State {
    nums: ArraySchema<u8>,
    items: ArraySchema<Item>,
}

/// An encoder whose client holds `nums` and `items` (refIds 1 and 2; the
/// items are refIds 3, 4, …).
fn encoder(nums: &[u8], ids: &[u8]) -> Encoder<State> {
    let mut enc = Encoder::new(State {
        nums: nums.iter().copied().collect(),
        items: ids.iter().map(|&i| item(i)).collect(),
    });
    enc.encode_patch();
    enc
}

#[test]
fn sort_rewrites_every_index() {
    let mut enc = encoder(&[3, 1, 2], &[]);
    enc.state_mut().nums_mut().sort_by(Ord::cmp);
    assert_eq!(hex(enc.encode_patch()), "ff01000001000102000203");

    // A push after the sort comes after the REPLACEs; an index pushed
    // before it keeps its ADD, in first-touch order.
    enc.state_mut().nums_mut().sort_by(|a, b| b.cmp(a));
    enc.state_mut().nums_mut().push(0);
    assert_eq!(hex(enc.encode_patch()), "ff01000003000102000201800300");
    enc.state_mut().nums_mut().push(9);
    enc.state_mut().nums_mut().sort_by(Ord::cmp);
    assert_eq!(
        hex(enc.encode_patch()),
        "ff01800409000000000101000202000303"
    );
}

#[test]
fn reverse_is_one_op_unless_other_ops_came_first() {
    let mut enc = encoder(&[], &[]);
    enc.state_mut().nums_mut().reverse();
    assert_eq!(hex(enc.encode_patch()), "ff010f");

    let mut enc = encoder(&[1, 2], &[]);
    enc.state_mut().nums_mut().push(3);
    enc.state_mut().nums_mut().reverse();
    assert_eq!(hex(enc.encode_patch()), "ff010a800003800102800201");

    // Ops after a REVERSE address the reversed array.
    let mut enc = encoder(&[1, 2], &[]);
    enc.state_mut().nums_mut().reverse();
    enc.state_mut().nums_mut().set(0, 9);
    enc.state_mut().nums_mut().push(4);
    assert_eq!(hex(enc.encode_patch()), "ff010f000009800204");
}

#[test]
fn mixed_positional_ops_keep_their_positional_form() {
    // splice-insert then pop: the insert shifts the pending op up.
    let mut enc = encoder(&[1, 2, 3], &[]);
    enc.state_mut().nums_mut().splice(1, 0, [7]);
    enc.state_mut().nums_mut().pop();
    assert_eq!(hex(enc.encode_patch()), "ff018001074003");

    // splice(0, 2) then unshift.
    let mut enc = encoder(&[1, 2, 3], &[]);
    enc.state_mut().nums_mut().splice(0, 2, []);
    enc.state_mut().nums_mut().unshift(9);
    assert_eq!(hex(enc.encode_patch()), "ff0180000940014002");
}

#[test]
fn removed_structs_go_by_refid_in_record_order() {
    // `[A, B]` (refIds 3, 4): pop, then an insert at the end takes the
    // popped slot's index first and the removal moves up.
    let mut enc = encoder(&[], &[1, 2]);
    enc.state_mut().items_mut().pop();
    enc.state_mut().items_mut().splice(1, 0, [item(5)]);
    assert_eq!(hex(enc.encode_patch()), "ff028001052104ff058005");
}

#[test]
fn a_push_and_pop_of_a_struct_in_one_tick_sends_nothing() {
    let mut enc = encoder(&[], &[1]);
    enc.state_mut().items_mut().push(item(2));
    enc.state_mut().items_mut().pop();
    assert_eq!(hex(enc.encode_patch()), "");

    // Primitives keep both ops (the client ignores the DELETE).
    let mut enc = encoder(&[1], &[]);
    enc.state_mut().nums_mut().push(2);
    enc.state_mut().nums_mut().pop();
    assert_eq!(hex(enc.encode_patch()), "ff014001");
}

#[test]
fn an_insert_the_decoder_would_drop_is_sent_as_clear_and_readd() {
    // `[1]`, `unshift(1)`: the decoder skips an ADD of the value already
    // at an occupied index (reference pitfall 1).
    let mut enc = encoder(&[1], &[]);
    enc.state_mut().nums_mut().unshift(1);
    assert_eq!(hex(enc.encode_patch()), "ff010a800001800101");
}

#[test]
fn a_reverse_after_other_changes_resends_the_held_elements_in_full() {
    // items 2 holds 3 (id 1) and 4 (id 2); push 5 (id 9), then reverse:
    // CLEAR + ADD of every element, the new element's block, then each
    // element the client held again in full, same refIds, new order.
    let mut enc = encoder(&[], &[1, 2]);
    let mut s = enc.state_mut();
    s.items_mut().push(item(9));
    s.items_mut().reverse();
    assert_eq!(
        hex(enc.encode_patch()),
        "ff020a800005800104800203ff058009ff048002ff038001"
    );
    // Settled: the refreshed elements change as before.
    enc.state_mut().items_mut().get_mut(1).unwrap().set_id(7);
    assert_eq!(hex(enc.encode_patch()), "ff048007");
}

#[derive(Schema, Default)]
struct Leaf {
    v: u8,
}

#[derive(Schema, Default)]
struct Holder {
    leaf: Option<Leaf>,
}

#[derive(Schema, Default)]
struct Holders {
    hs: ArraySchema<Holder>,
}

#[test]
fn a_reverse_keeps_the_changes_of_an_element_changed_in_the_tick() {
    // hs 1 holds 2 (leaf 3) and 4. Unsetting 2's leaf, then push + reverse:
    // CLEAR and re-ADD, then each element re-sent in full in the new order
    // with the ops it recorded: 2 keeps the leaf's DELETE (without it the
    // client would keep the leaf: found by interop_proptest); 4 and the
    // new 5 have nothing to send. The bytes of @colyseus/schema 5.0.34.
    let mut enc = Encoder::new(Holders {
        hs: [
            Holder {
                leaf: Some(Leaf { v: 1 }),
            },
            Holder { leaf: None },
        ]
        .into_iter()
        .collect(),
    });
    enc.encode_patch();
    let mut s = enc.state_mut();
    s.hs_mut().get_mut(0).unwrap().set_leaf(None);
    s.hs_mut().push(Holder { leaf: None });
    s.hs_mut().reverse();
    assert_eq!(hex(enc.encode_patch()), "ff010a800005800104800202ff0240");
}
