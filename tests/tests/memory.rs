//! Churn keeps a flat footprint: a map held at 1000 entities while
//! 1,000,000 entities are created and removed (100 removes of the oldest +
//! 100 adds and a patch per tick) uses no more heap after warm-up, and
//! refIds stay near the live count (default options reuse them).
//!
//! The reference, `@colyseus/schema` 5.0.34, never reuses a refId
//! (`Root.nextUniqueId` only grows) and keeps a `Root.refCount` entry for
//! every refId ever handed out: its heap grows with every entity ever
//! created. The issue quotes ~43 B per entity created; on the same churn
//! `tests/node/memory-churn.mjs` (run by `benches/compare.sh`) measures
//! ~11 B of V8 heap after GC per entity created, and its next refId reaches
//! 1,000,003.
//!
//! The heap is measured by a counting global allocator installed in this
//! binary only (bytes currently allocated); the counter is process-wide,
//! so this binary holds a single `#[test]`.

use std::alloc::System;
use std::fmt::Write as _;

use roomcast_benches::scenario::{Entity, State};
use roomcast_schema::Encoder;
use stats_alloc::{StatsAlloc, INSTRUMENTED_SYSTEM};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

const LIVE: u32 = 1_000;
const PER_TICK: u32 = 100;
const CREATED: u32 = 1_000_000;
/// Entities created before the footprint is taken as warm: past the first
/// compactions of the map, and every live key as long as the later ones
/// (`"e200000"`…`"e999999"`: 7 bytes).
const WARM_UP: u32 = 200_000;
const SAMPLE_EVERY: u32 = 10_000;
/// Allowed growth of the live heap after warm-up, for 800,000 more entities
/// created: ~0.01 B per entity (the reference grows ~11 B per entity).
const MAX_GROWTH: usize = 9_000;

/// Bytes currently allocated by the whole process.
fn live_bytes() -> usize {
    let s = GLOBAL.stats();
    s.bytes_allocated - s.bytes_deallocated
}

#[test]
fn churn_of_a_million_entities_keeps_a_flat_footprint() {
    let mut enc = Encoder::new(State::build(LIVE, 0));
    assert!(!enc.encode_patch().is_empty());

    let mut key = String::new();
    let (mut oldest, mut next) = (0u32, LIVE);
    let mut warm: Option<usize> = None;
    let (mut low, mut high) = (usize::MAX, 0usize);
    let mut max_id = 0;
    let mut patch_bytes = 0usize;
    while next < CREATED {
        {
            let mut state = enc.state_mut();
            let mut entities = state.entities_mut();
            for _ in 0..PER_TICK {
                key.clear();
                write!(key, "e{oldest}").expect("writing to a String cannot fail");
                assert!(entities.remove(&key).is_some(), "{key} is live");
                oldest += 1;
                entities.insert(format!("e{next}"), Entity::new(next));
                next += 1;
            }
        }
        patch_bytes += enc.encode_patch().len();
        max_id = max_id.max(enc.tick_stats().id_high_water());

        if next % SAMPLE_EVERY == 0 {
            let live = live_bytes();
            match warm {
                None if next >= WARM_UP => warm = Some(live),
                None => {}
                Some(_) => {
                    low = low.min(live);
                    high = high.max(live);
                }
            }
        }
    }
    assert_eq!(enc.state().entities.len(), LIVE as usize);

    let warm = warm.expect("warm-up reached");
    let growth = high.saturating_sub(warm);
    eprintln!(
        "memory: {} entities created, {LIVE} live; live heap after warm-up {warm} B, \
         then between {low} and {high} B (growth {growth} B, {:.4} B per entity created); \
         refId high water {max_id}, {} ids free; {patch_bytes} B of patches",
        next,
        growth as f64 / f64::from(next - WARM_UP),
        enc.tick_stats().free_ids(),
    );
    assert!(
        growth <= MAX_GROWTH,
        "the live heap grew by {growth} B after warm-up ({warm} B -> {high} B)"
    );
    // Ids of removed entities come back once their DELETE has gone out, so
    // at most one tick's adds need ids beyond the live ones (+ root, map,
    // array).
    assert!(
        max_id <= LIVE + PER_TICK + 3,
        "refIds reached {max_id} with {LIVE} live entities"
    );
}
