//! Client payloads (msgpackr records, undefined, any key types): the decoder
//! never panics, and what it accepts re-encodes to bytes it decodes back to
//! the same encoding.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Ok(value) = roomcast::msgpack::decode(data) else {
        return;
    };
    let mut once = Vec::new();
    roomcast::msgpack::encode(&value, &mut once);
    let again = roomcast::msgpack::decode(&once).expect("re-encoded value decodes");
    let mut twice = Vec::new();
    roomcast::msgpack::encode(&again, &mut twice);
    assert_eq!(once, twice);
});
