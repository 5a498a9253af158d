//! `clear()` after changes below the cleared entries, in one tick: the
//! reference's `SetSchema.clear()` leaves the entries' changes queued, so
//! their blocks still go out (before the CLEAR, in first-change order);
//! `MapSchema` and `CollectionSchema` drop them. Found by the random
//! vectors (issue 15: `random_1_335`, `random_1_468`); bytes checked here
//! against the reference's behaviour on the same sequence.

use roomcast_schema::{CollectionSchema, Encoder, EncoderOptions, MapSchema, Schema, SetSchema};

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[derive(Schema, Default, PartialEq)]
struct Item {
    hp: u8,
}

#[derive(Schema, Default)]
struct State {
    set: SetSchema<Item>,
    map: MapSchema<Item>,
    coll: CollectionSchema<Item>,
}

fn encoder() -> Encoder<State> {
    let mut enc = Encoder::with_options(
        State::default(),
        EncoderOptions::default().reuse_ref_ids(false),
    );
    {
        let mut s = enc.state_mut();
        s.set_mut().add(Item { hp: 1 });
        s.map_mut().insert("a", Item { hp: 1 });
        s.coll_mut().add(Item { hp: 1 });
    }
    enc.encode_patch();
    enc
}

#[test]
fn a_set_clear_still_sends_the_changes_of_entries_the_client_holds() {
    let mut enc = encoder();
    // refIds: set 1, map 2, collection 3, the set's item 4.
    let mut s = enc.state_mut();
    s.set_mut().for_each_mut(|mut item| item.set_hp(9));
    s.set_mut().clear();
    // The item's block (ff04: hp = 9), then the set's CLEAR (ff01 0a).
    assert_eq!(hex(enc.encode_patch()), "ff048009ff010a");
    assert!(enc.encode_patch().is_empty());
}

#[test]
fn map_and_collection_clears_drop_the_entries_changes() {
    let mut enc = encoder();
    let mut s = enc.state_mut();
    s.map_mut().get_mut("a").unwrap().set_hp(9);
    s.map_mut().clear();
    s.coll_mut().for_each_mut(|mut item| item.set_hp(9));
    s.coll_mut().clear();
    assert_eq!(hex(enc.encode_patch()), "ff020aff030a");
}

#[test]
fn entries_added_and_cleared_in_one_tick_send_nothing() {
    // The reference also sends the new entry's block, for a refId no
    // client has heard of (its decoder skips it with a warning, other
    // decoders fail): Roomcast does not.
    let mut enc = encoder();
    let mut s = enc.state_mut();
    s.set_mut().add(Item { hp: 7 });
    s.set_mut().clear();
    assert_eq!(hex(enc.encode_patch()), "ff010a");
}
