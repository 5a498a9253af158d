//! Steady-state decoding allocates nothing: an S1 patch (every entity of a
//! `MapSchema<Entity>` moved, strings included) applied by the typed and the
//! dynamic decoder, counted with a counting global allocator (process-wide,
//! so this binary holds a single test). Also: a typed full-state decode
//! allocates nothing for short map keys.

use std::alloc::System;

use roomcast_schema::decoder::{Decoder, DynamicDecoder};
use roomcast_schema::{registry_of, Encoder, MapSchema, Schema};
use stats_alloc::{StatsAlloc, INSTRUMENTED_SYSTEM};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// Allocations and reallocations so far (process-wide: this binary holds a
/// single test).
fn allocations() -> usize {
    let s = GLOBAL.stats();
    s.allocations + s.reallocations
}

#[derive(Schema, Default, Debug)]
#[schema(decode)]
struct Entity {
    x: f32,
    y: f32,
    angle: f32,
    hp: u8,
    name: String,
}

#[derive(Schema, Default, Debug)]
#[schema(decode)]
struct State {
    entities: MapSchema<Entity>,
}

// What `#[derive(Schema)]` generates once it calls
// `schema-derive/src/decode.rs` (then these impls go away).

/// A full state and `ticks` S1 patches (x, y and the name of every entity
/// change), from our encoder.
fn stream(n: u32, ticks: u32) -> (Vec<u8>, Vec<Vec<u8>>) {
    let mut state = State::default();
    for i in 0..n {
        state.entities.insert(
            format!("e{i}"),
            Entity {
                x: i as f32,
                name: format!("e{i}"),
                ..Entity::default()
            },
        );
    }
    let mut enc = Encoder::new(state);
    let full = enc.encode_all().to_vec();
    enc.encode_patch();
    let mut patches = Vec::new();
    for t in 0..ticks {
        let mut s = enc.state_mut();
        let mut entities = s.entities_mut();
        for i in 0..n {
            if let Some(mut e) = entities.get_mut(&format!("e{i}")) {
                e.set_x((i + t) as f32);
                e.set_y(t as f32 * 0.5);
                e.set_name(format!("e{i}-{}", t % 2));
            }
        }
        patches.push(enc.encode_patch().to_vec());
    }
    (full, patches)
}

#[test]
fn steady_state_patches_allocate_nothing() {
    let (full, patches) = stream(500, 6);
    let mut typed = Decoder::<State>::new().expect("types");
    let mut dynamic = DynamicDecoder::new(registry_of::<State>().expect("types"));
    // The full state: one allocation per entity, its name; the short map
    // keys are held inline (a `Box<str>` each made this 1051).
    let before = allocations();
    typed.decode(&full).expect("full");
    let full_allocs = allocations() - before;
    assert!(
        full_allocs < 500 + 100,
        "{full_allocs} allocations for a full state of 500 entities"
    );
    dynamic.decode(&full).expect("full");
    // Warm-up: buffers reach their steady capacity.
    for p in &patches[..3] {
        typed.decode(p).expect("patch");
        dynamic.decode(p).expect("patch");
    }
    for p in &patches[3..] {
        let before = allocations();
        typed.decode(p).expect("patch");
        let typed_allocs = allocations() - before;
        let before = allocations();
        dynamic.decode(p).expect("patch");
        let dynamic_allocs = allocations() - before;
        assert_eq!(
            (typed_allocs, dynamic_allocs),
            (0, 0),
            "allocations per patch (typed, dynamic)"
        );
    }
    // (That every message went through the direct mode's fast path is
    // checked in the crate: `decoder/typed_tests.rs`.)
    let e = typed.state().entities.get("e7").expect("e7");
    assert_eq!((e.x, e.y, e.name.as_str()), (12.0, 2.5, "e7-1"));
}
