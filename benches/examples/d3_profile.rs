//! A driver for profiling D3 (and D1) outside criterion:
//! `cargo run --release -p roomcast-benches --example d3_profile -- <mode> (see the last match arm; `-cb`: with callbacks) <n> <rounds> <batch>`.
//!
//! D3: each round builds `batch` fresh decoders, decodes the S3 full state
//! into each (kept alive, as the benches do), then drops them. D1: applies
//! `rounds` S1 patches to one decoder. Prints the time per decode (D3: the
//! decodes only, not building and dropping the decoders).

use std::time::{Duration, Instant};

use roomcast_benches::{decode_s3_floor, EncodeAll, Entity, MoveAll, State};
use roomcast_schema::decoder::{At, Cx, Decoder, DynamicDecoder, RefId, ReflectionDialect};
use roomcast_schema::{encode_reflection, Dialect, Encoder, EncoderOptions};

/// Minor page faults of this process so far (Linux, with `D3_FAULTS` set;
/// 0 otherwise: reading them costs a system call per decode).
fn minor_faults() -> u64 {
    if std::env::var_os("D3_FAULTS").is_none() {
        return 0;
    }
    std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|s| {
            let after = s.rsplit_once(')')?.1.to_owned();
            after.split_whitespace().nth(7)?.parse().ok()
        })
        .unwrap_or(0)
}

/// The callbacks a client registers (`-cb` modes): entities added and
/// removed, the root's changes.
fn register(mut cx: Cx<'_>) {
    cx.on_add(At::Field(RefId::ROOT, "entities"), |_, k, _| {
        std::hint::black_box(k);
    })
    .expect("on_add");
    cx.on_remove(At::Field(RefId::ROOT, "entities"), |_, k, _| {
        std::hint::black_box(k);
    })
    .expect("on_remove");
    cx.on_change(At::Ref(RefId::ROOT), |_, c| {
        std::hint::black_box(c);
    })
    .expect("on_change");
}

/// What a mode measured: time, minor page faults, decodes.
type Measured = (Duration, u64, usize);

/// `rounds` batches like the bench's D3 loop: each decode into a decoder
/// made just before (outside the timed part), the batch kept alive, then
/// dropped (outside the timed part).
fn d3_rounds<D>(
    rounds: usize,
    batch: usize,
    mut make: impl FnMut() -> D,
    mut run: impl FnMut(&mut D),
) -> Measured {
    let (mut timed, mut faults) = (Duration::ZERO, 0);
    for _ in 0..rounds {
        let mut keep = Vec::with_capacity(batch);
        for _ in 0..batch {
            let mut d = make();
            let f = minor_faults();
            let t = Instant::now();
            run(&mut d);
            timed += t.elapsed();
            faults += minor_faults() - f;
            keep.push(d);
        }
        drop(keep);
    }
    (timed, faults, rounds * batch)
}

/// D1: `decoder` holding `start`, then `rounds` patches of the ring.
fn d1_rounds<D>(
    mut decoder: D,
    mut decode: impl FnMut(&mut D, &[u8]),
    start: &[u8],
    patches: &[Vec<u8>],
    rounds: usize,
) -> Measured {
    decode(&mut decoder, start);
    let t0 = Instant::now();
    for i in 0..rounds {
        decode(&mut decoder, &patches[i % patches.len()]);
    }
    (t0.elapsed(), 0, rounds)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let mode = args.get(1).map_or("dynamic", String::as_str);
    let n: u32 = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(10_000);
    let rounds: usize = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(20);
    let batch: usize = args.get(4).and_then(|s| s.parse().ok()).unwrap_or(10);
    let opts = EncoderOptions::default();
    let mut s1 = MoveAll::new(n, opts);
    let types = s1.encoder().types().expect("types");
    let reflection = encode_reflection(&types, Dialect::Modern);
    let start = s1.encoder().encode_all().to_vec();
    let patches: Vec<Vec<u8>> = (0..16)
        .map(|_| {
            s1.mutate();
            s1.encode().to_vec()
        })
        .collect();
    let full = EncodeAll::new(n, opts).encode().to_vec();
    // D4 (map churn, no array): 10 oldest entities removed, 10 added.
    let (churn_start, churn) = {
        let mut enc = Encoder::new(State::build(n, 0));
        let start = enc.encode_all().to_vec();
        enc.encode_patch();
        let (mut oldest, mut next) = (0, n);
        let patches: Vec<Vec<u8>> = (0..rounds.max(64))
            .map(|_| {
                let mut s = enc.state_mut();
                let mut entities = s.entities_mut();
                for _ in 0..10 {
                    entities.remove(&format!("e{oldest}"));
                    oldest += 1;
                    entities.insert(format!("e{next}"), Entity::new(next));
                    next += 1;
                }
                enc.encode_patch().to_vec()
            })
            .collect();
        (start, patches)
    };
    let (el, faults, decodes) = match mode {
        "dynamic" => d3_rounds(
            rounds,
            batch,
            || {
                DynamicDecoder::from_reflection(&reflection, ReflectionDialect::V5)
                    .expect("reflection")
            },
            |d| d.decode(&full).expect("full"),
        ),
        "typed" => d3_rounds(
            rounds,
            batch,
            || Decoder::<State>::new().expect("types"),
            |d| d.decode(&full).expect("full"),
        ),
        // The hand-written D3 (`decode_s3_floor`), its state kept alive like
        // the decoders.
        "floor" => d3_rounds(
            rounds,
            batch,
            || None,
            |d| *d = Some(decode_s3_floor(&full).expect("floor")),
        ),
        "d1-dynamic" => d1_rounds(
            DynamicDecoder::from_reflection(&reflection, ReflectionDialect::V5)
                .expect("reflection"),
            |d, b| d.decode(b).expect("decode"),
            &start,
            &patches,
            rounds,
        ),
        "d1-typed" => d1_rounds(
            Decoder::<State>::new().expect("types"),
            |d, b| d.decode(b).expect("decode"),
            &start,
            &patches,
            rounds,
        ),
        "d4-dynamic" => d1_rounds(
            DynamicDecoder::from_reflection(&reflection, ReflectionDialect::V5)
                .expect("reflection"),
            |d, b| d.decode(b).expect("decode"),
            &churn_start,
            &churn[..rounds.min(churn.len())],
            rounds,
        ),
        "d1-dynamic-cb" => d1_rounds(
            {
                let mut d = DynamicDecoder::from_reflection(&reflection, ReflectionDialect::V5)
                    .expect("reflection");
                register(d.callbacks());
                d
            },
            |d, b| d.decode(b).expect("decode"),
            &start,
            &patches,
            rounds,
        ),
        "d1-typed-cb" => d1_rounds(
            {
                let mut d = Decoder::<State>::new().expect("types");
                register(d.callbacks());
                d
            },
            |d, b| d.decode(b).expect("decode"),
            &start,
            &patches,
            rounds,
        ),
        "dynamic-cb" => d3_rounds(
            rounds,
            batch,
            || {
                let mut d = DynamicDecoder::from_reflection(&reflection, ReflectionDialect::V5)
                    .expect("reflection");
                register(d.callbacks());
                d
            },
            |d| d.decode(&full).expect("full"),
        ),
        "typed-cb" => d3_rounds(
            rounds,
            batch,
            || {
                let mut d = Decoder::<State>::new().expect("types");
                register(d.callbacks());
                d
            },
            |d| d.decode(&full).expect("full"),
        ),
        "d4-dynamic-cb" => d1_rounds(
            {
                let mut d = DynamicDecoder::from_reflection(&reflection, ReflectionDialect::V5)
                    .expect("reflection");
                register(d.callbacks());
                d
            },
            |d, b| d.decode(b).expect("decode"),
            &churn_start,
            &churn[..rounds.min(churn.len())],
            rounds,
        ),
        "d4-typed-cb" => d1_rounds(
            {
                let mut d = Decoder::<State>::new().expect("types");
                register(d.callbacks());
                d
            },
            |d, b| d.decode(b).expect("decode"),
            &churn_start,
            &churn[..rounds.min(churn.len())],
            rounds,
        ),
        "d4-typed" => d1_rounds(
            Decoder::<State>::new().expect("types"),
            |d, b| d.decode(b).expect("decode"),
            &churn_start,
            &churn[..rounds.min(churn.len())],
            rounds,
        ),
        "s1" => {
            // The encoder's S1 tick, for A/B checks of shared code.
            let mut s = roomcast_benches::MoveAll::new(n, opts);
            let t0 = Instant::now();
            for _ in 0..rounds {
                std::hint::black_box(roomcast_benches::Scenario::tick(&mut s));
            }
            (t0.elapsed(), 0, rounds)
        }
        _ => panic!(
            "mode: dynamic | typed | floor | d1-dynamic | d1-typed | d4-dynamic | d4-typed | d4-dynamic-cb | d4-typed-cb | d1-dynamic-cb | d1-typed-cb | dynamic-cb | typed-cb | s1"
        ),
    };
    println!(
        "{mode} n={n}: {:.0} ns per decode ({decodes} decodes, {:.1} page faults per decode)",
        el.as_nanos() as f64 / decodes as f64,
        faults as f64 / decodes as f64
    );
}
