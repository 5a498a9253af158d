//! Property: whatever frames a client sends, the room never panics, the
//! other clients keep their seats, and the state only changes through
//! well-formed messages.

mod common;

use common::room::E2eRoom;
use proptest::prelude::*;
use roomcast::msgpack::Value;
use roomcast::testing::{Received, RoomHarness};
use serde_json::json;

fn frame() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        // Anything at all.
        proptest::collection::vec(any::<u8>(), 0..48),
        // A protocol code, then anything.
        (
            prop_oneof![
                Just(0x0au8),
                Just(0x0c),
                Just(0x0d),
                Just(0x11),
                Just(0x12),
                Just(0x15)
            ],
            proptest::collection::vec(any::<u8>(), 0..48)
        )
            .prop_map(|(code, rest)| [vec![code], rest].concat()),
        // ROOM_DATA with a known type and a random payload.
        (
            prop_oneof![
                Just(&b"\xa3inc"[..]),
                Just(&b"\xa4chat"[..]),
                Just(&b"\x07"[..])
            ],
            proptest::collection::vec(any::<u8>(), 0..32)
        )
            .prop_map(|(ty, rest)| [vec![0x0d], ty.to_vec(), rest].concat()),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn garbage_never_hurts_the_room(frames in proptest::collection::vec(frame(), 1..12)) {
        let mut h = RoomHarness::new(E2eRoom::default(), &json!({})).unwrap();
        let good = h.join(json!({})).unwrap();
        let bad = h.join(json!({})).unwrap();
        h.send_message(good, "set", &Value::Int(7));
        let before = h.ctx().state().n;
        for frame in &frames {
            h.send(bad, frame);
        }
        h.advance(std::time::Duration::from_millis(100));
        // The good client is still in and can still change the state.
        prop_assert!(h.ctx().client_count() >= 1);
        h.received(good);
        h.send_message(good, "set", &Value::Int(before as i64 + 1));
        h.advance(std::time::Duration::from_millis(50));
        let n = h.ctx().state().n;
        prop_assert_eq!(n, before + 1.0);
        prop_assert!(h.received(good).iter().any(|r| matches!(r, Received::Patch(_))));
    }
}
