//! State messages for the typed decoder (`Decoder<Table>`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| roomcast_fuzz::typed::typed(data));
