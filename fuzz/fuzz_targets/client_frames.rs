//! Frames from a server into `roomcast-client`'s parser (the client's
//! untrusted input): no panic. Input: a sequence of `len: u8, frame`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    roomcast_fuzz::client_frames(data);
});
