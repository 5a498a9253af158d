//! Shared helpers for roomcast integration and interop tests.

pub mod node;
pub mod replay;
pub mod state_json;
