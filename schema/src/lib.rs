//! roomcast-schema
pub mod decoder;
pub mod types;
pub mod wire;
