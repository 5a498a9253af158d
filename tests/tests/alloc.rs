//! Ticks allocate nothing once warm: moving every entity of a 1000-entity
//! map and encoding the patch, moving a few through `get_mut`, and idle
//! ticks, all counted by a global allocator installed in this test binary
//! only.
//!
//! The counter is process-wide, so this binary holds a single `#[test]`:
//! another test running in parallel (or the harness reporting it) would
//! show up in the counts.

use std::alloc::System;

use roomcast_benches::scenario::State;
use roomcast_schema::Encoder;
use stats_alloc::{Region, Stats, StatsAlloc, INSTRUMENTED_SYSTEM};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

const ENTITIES: u32 = 1_000;
const WARM_UP_TICKS: usize = 10;
const MEASURED_TICKS: usize = 1_000;

fn encoder() -> Encoder<State> {
    let mut enc = Encoder::new(State::build(ENTITIES, 0));
    assert!(!enc.encode_patch().is_empty());
    enc
}

/// Every entity moves (`x += 1`, `y += 0.5`); returns the patch length.
fn move_all(enc: &mut Encoder<State>) -> usize {
    enc.state_mut().entities_mut().for_each_mut(|_, mut e| {
        let (x, y) = (e.x, e.y);
        e.set_x(x + 1.0);
        e.set_y(y + 0.5);
    });
    enc.encode_patch().len()
}

/// A window of `keys` moves through `get_mut`; returns the patch length.
fn move_some(enc: &mut Encoder<State>, keys: &[String], start: usize) -> usize {
    let mut state = enc.state_mut();
    let mut entities = state.entities_mut();
    for key in keys.iter().cycle().skip(start).take(keys.len() / 10) {
        let mut e = entities.get_mut(key).expect("live key");
        let x = e.x;
        e.set_x(x - 1.0);
    }
    enc.encode_patch().len()
}

/// Runs `tick` `MEASURED_TICKS` times after `WARM_UP_TICKS` unmeasured
/// ones; returns the allocator's counts over the measured ticks and the
/// bytes the ticks produced.
fn measure(mut tick: impl FnMut(usize) -> usize) -> (Stats, usize) {
    for i in 0..WARM_UP_TICKS {
        tick(i);
    }
    let region = Region::new(GLOBAL);
    let mut bytes = 0;
    for i in WARM_UP_TICKS..WARM_UP_TICKS + MEASURED_TICKS {
        bytes += tick(i);
    }
    (region.change(), bytes)
}

fn assert_no_alloc(what: &str, (stats, bytes): (Stats, usize)) {
    assert_eq!(
        (stats.allocations, stats.reallocations, stats.deallocations),
        (0, 0, 0),
        "{what}: {MEASURED_TICKS} warm ticks ({bytes} bytes of patches) touched the allocator: {stats:?}"
    );
}

#[test]
fn warm_ticks_allocate_nothing() {
    let mut enc = encoder();

    // Same entity set, x and y of every entity change: every patch has the
    // same size (`ff <refId> 80 <x> 81 <y>` per entity).
    let per_tick = move_all(&mut enc);
    assert!(per_tick >= ENTITIES as usize * 12);
    let moved = measure(|_| move_all(&mut enc));
    assert_eq!(moved.1, MEASURED_TICKS * per_tick);
    assert_no_alloc("move all (for_each_mut + encode_patch)", moved);

    // A rotating tenth of the entities, looked up by key.
    let keys: Vec<String> = (0..ENTITIES).map(|i| format!("e{i}")).collect();
    let some = measure(|i| move_some(&mut enc, &keys, i * 7));
    assert!(some.1 > 0);
    assert_no_alloc("move some (get_mut + encode_patch)", some);

    // Idle: nothing changed, empty patches.
    let idle = measure(|_| enc.encode_patch().len());
    assert_eq!(idle.1, 0);
    assert_no_alloc("idle (encode_patch)", idle);

    // Moving again after idling still needs nothing new.
    assert_no_alloc("move all after idle", measure(|_| move_all(&mut enc)));
}
