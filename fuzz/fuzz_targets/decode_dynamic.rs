//! State messages for the reflection-driven dynamic decoder.
#![no_main]

use std::sync::OnceLock;

use roomcast_schema::types::TypeRegistry;

static SCHEMAS: OnceLock<Vec<TypeRegistry>> = OnceLock::new();

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let schemas = SCHEMAS.get_or_init(roomcast_fuzz::schemas);
    roomcast_fuzz::dynamic(data, schemas);
});
