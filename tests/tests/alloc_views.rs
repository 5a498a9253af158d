//! Warm ticks with views allocate nothing: the V1 bench state (1,000
//! entities with a view field, 100 views each shown its own entity and 10
//! shared ones), every entity moving and a tenth changing its view field,
//! `encode_patch` plus every view's part; and idle ticks. Counted by a
//! global allocator installed in this test binary only (one `#[test]`, see
//! `alloc.rs`).

use std::alloc::System;

use roomcast_benches::{Scenario, ViewMoveAll};
use roomcast_schema::EncoderOptions;
use stats_alloc::{Region, StatsAlloc, INSTRUMENTED_SYSTEM};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

#[test]
fn warm_view_ticks_allocate_nothing() {
    let mut s = ViewMoveAll::new(1_000, EncoderOptions::default());
    // Warm-up: every phase of the rotating view-field changes, twice.
    for _ in 0..20 {
        s.tick();
    }
    let region = Region::new(GLOBAL);
    let mut bytes = 0;
    for _ in 0..200 {
        bytes += s.tick();
    }
    let stats = region.change();
    assert!(bytes > 0);
    assert_eq!(
        (stats.allocations, stats.reallocations, stats.deallocations),
        (0, 0, 0),
        "moving ticks with 100 views touched the allocator: {stats:?}"
    );

    let region = Region::new(GLOBAL);
    for _ in 0..200 {
        s.encode();
    }
    let stats = region.change();
    assert_eq!(
        (stats.allocations, stats.reallocations, stats.deallocations),
        (0, 0, 0),
        "idle ticks with 100 views touched the allocator: {stats:?}"
    );
}
