//! Shared code of the roomcast benchmarks: the scenarios S1–S5 and the
//! timing loop of the side-by-side comparison with `@colyseus/schema`.
//!
//! The scenarios mirror `tests/node/bench-schema.mjs` exactly (same types,
//! field order, keys `"e0"`…, initial values and per-tick work), so bytes per
//! tick can be compared and S1 patches are identical byte for byte. The
//! criterion benches (`benches/encode.rs`) and the comparison binary
//! (`src/bin/compare.rs`) both run them.

pub mod floor;
pub mod measure;
pub mod scenario;

pub use floor::{decode_s3_floor, MoveSomeFloor};
pub use measure::{measure, Measurement, Timing};
pub use scenario::{
    Churn, EncodeAll, Entity, Idle, JoinChurn, MoveAll, MoveSome, Scenario, ScenarioId, State,
    ViewEntity, ViewMoveAll, ViewRoom, ViewState,
};
