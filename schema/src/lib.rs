//! roomcast-schema
