//! Frames from a client into a live room (the room layer's untrusted input):
//! no panic, and the other client keeps its seat. Input: a sequence of
//! `len: u8, frame: [u8; len]`.
#![no_main]

use roomcast::msgpack::Value;
use roomcast::testing::RoomHarness;
use roomcast::{NoState, Options, Room, RoomCtx, ServerError};

#[derive(Default)]
struct Echo;

impl Room for Echo {
    type State = NoState;
    type UserData = ();
    type Auth = ();

    async fn on_create(&mut self, ctx: &mut RoomCtx<Self>, _: &Options) -> Result<(), ServerError> {
        ctx.on_message("n", |_room, ctx, client, n: i64| ctx.send(client, "n", &n));
        ctx.on_message(7, |_room, ctx, client, v: Vec<String>| {
            ctx.send(client, 7, &v)
        });
        ctx.on_any_message(|_room, _ctx, _client, _ty, _value| {});
        Ok(())
    }
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let mut h = RoomHarness::new(Echo, &serde_json::json!({})).expect("room");
    let good = h.join(serde_json::json!({})).expect("join");
    let bad = h.join(serde_json::json!({})).expect("join");
    let mut rest = data;
    while let Some((&len, tail)) = rest.split_first() {
        let (frame, tail) = tail.split_at(usize::from(len).min(tail.len()));
        h.send(bad, frame);
        rest = tail;
    }
    h.advance(std::time::Duration::from_millis(60));
    h.received(good);
    h.send_message(good, "n", &Value::Int(5));
    assert_eq!(h.messages(good), vec![("n".into(), Value::Int(5))]);
});
