//! Reflection bytes from the network (JOIN_ROOM handshake).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| roomcast_fuzz::reflection(data));
