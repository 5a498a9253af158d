//! Decoder benches: D1 (apply one S1 patch: every entity of
//! `MapSchema<Entity>` moved) and D3 (decode one S3 full state into a fresh
//! decoder), for the typed `Decoder<T>` and the Reflection-built
//! `DynamicDecoder`, with 1 000 and 10 000 entities; D3 also for the
//! hand-written floor (`decode_s3_floor`: the same Rust values built with no
//! decoder's generality).
//!
//! Each also runs with change callbacks registered (`*_callbacks`: `on_add`
//! and `on_remove` on the entity map, `on_change` on the root, as a client
//! does), and D4 (map churn: 10 entities removed and 10 added per patch,
//! no array) measures the patch a lobby or a spawner sends; D5 is S4's
//! patch (D4's churn plus a push and a shift on an array of 1 000 items).
//!
//! The input bytes come from Roomcast's encoder on the scenarios of
//! `roomcast_benches` (byte-identical to the reference's for S1). Under
//! `cargo bench`, the same scenarios first run through the real JS decoder
//! (`tests/node/bench-schema.mjs`, D1 and D3) and a table of ratios is
//! printed (skipped when Node.js is missing or `ROOMCAST_BENCH_NO_JS` is
//! set); then criterion runs.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use criterion::{BatchSize, BenchmarkId, Criterion, Throughput};
use roomcast_benches::{
    decode_s3_floor, measure, Churn, EncodeAll, Entity, MoveAll, Scenario, State, Timing,
};
use roomcast_schema::decoder::{At, Cx, Decoder, DynamicDecoder, RefId, ReflectionDialect};
use roomcast_schema::{encode_reflection, Dialect, Encoder, EncoderOptions};

const SIZES: [u32; 2] = [1_000, 10_000];
/// Patches recorded per size (decoded in a ring).
const RING: usize = 16;

/// The inputs of one size: Reflection, the full state before the patches,
/// a ring of consecutive S1 patches, and an S3 full state.
struct Inputs {
    reflection: Vec<u8>,
    start: Vec<u8>,
    patches: Vec<Vec<u8>>,
    full: Vec<u8>,
}

fn inputs(n: u32) -> Inputs {
    let opts = EncoderOptions::default();
    let mut s1 = MoveAll::new(n, opts);
    let types = s1.encoder().types().expect("types");
    let reflection = encode_reflection(&types, Dialect::Modern);
    let start = s1.encoder().encode_all().to_vec();
    let patches = (0..RING)
        .map(|_| {
            s1.mutate();
            s1.encode().to_vec()
        })
        .collect();
    let full = EncodeAll::new(n, opts).encode().to_vec();
    Inputs {
        reflection,
        start,
        patches,
        full,
    }
}

/// D4's inputs: the full state of `n` entities, then [`CHURN`] patches
/// each removing the 10 oldest entities and adding 10 new ones.
fn churn_inputs(n: u32) -> (Vec<u8>, Vec<Vec<u8>>) {
    let mut enc = Encoder::new(State::build(n, 0));
    let start = enc.encode_all().to_vec();
    enc.encode_patch();
    let (mut oldest, mut next) = (0, n);
    let patches = (0..CHURN)
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
}

/// D4 patches recorded per size (applied in order; the decoder is rebuilt,
/// untimed, when they run out).
const CHURN: usize = 64;

/// The callbacks a client registers: entities added and removed, and the
/// root's changes.
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

/// A dynamic decoder (Reflection of `reflection`) with or without
/// callbacks, after `start`.
fn dynamic_at(reflection: &[u8], start: &[u8], callbacks: bool) -> DynamicDecoder {
    let mut d =
        DynamicDecoder::from_reflection(reflection, ReflectionDialect::V5).expect("reflection");
    if callbacks {
        register(d.callbacks());
    }
    if !start.is_empty() {
        d.decode(start).expect("start");
    }
    d
}

/// A typed decoder with or without callbacks, after `start`.
fn typed_at(start: &[u8], callbacks: bool) -> Decoder<State> {
    let mut d = Decoder::<State>::new().expect("types");
    if callbacks {
        register(d.callbacks());
    }
    if !start.is_empty() {
        d.decode(start).expect("start");
    }
    d
}

/// Times `iters` patches of `patches`, in order, on decoders made by
/// `make` (a new one, untimed, whenever the patches run out).
fn time_patches<D>(
    iters: u64,
    patches: &[Vec<u8>],
    mut make: impl FnMut() -> D,
    mut apply: impl FnMut(&mut D, &[u8]),
) -> Duration {
    let mut total = Duration::ZERO;
    let mut d = make();
    let mut i = 0;
    for _ in 0..iters {
        if i == patches.len() {
            d = make();
            i = 0;
        }
        let t0 = Instant::now();
        apply(&mut d, &patches[i]);
        total += t0.elapsed();
        i += 1;
    }
    total
}

fn dynamic(inp: &Inputs) -> DynamicDecoder {
    let mut d = DynamicDecoder::from_reflection(&inp.reflection, ReflectionDialect::V5)
        .expect("reflection");
    d.decode(&inp.start).expect("start");
    d
}

fn typed(inp: &Inputs) -> Decoder<State> {
    let mut d = Decoder::<State>::new().expect("types");
    d.decode(&inp.start).expect("start");
    d
}

/// D1 as a scenario for the comparison loop: the next patch of the ring.
struct D1<D> {
    decoder: D,
    patches: Vec<Vec<u8>>,
    next: usize,
    apply: fn(&mut D, &[u8]),
}

impl<D> Scenario for D1<D> {
    fn tick(&mut self) -> usize {
        let p = &self.patches[self.next % RING];
        self.next += 1;
        (self.apply)(&mut self.decoder, p);
        p.len()
    }
}

/// D3 timing like the reference's: a fresh decoder per tick built outside
/// the timed part (and dropped outside it too); warm-up, 7 batches of at
/// least 160 ms, the median batch's average.
fn measure_d3<D>(mut make: impl FnMut() -> D, mut run: impl FnMut(&mut D)) -> f64 {
    let mut one = || {
        let mut d = make();
        let t0 = Instant::now();
        run(&mut d);
        (t0.elapsed(), d)
    };
    let mut warm = Duration::ZERO;
    for _ in 0..3 {
        warm += one().0;
    }
    let per = warm / 3;
    let batch = (Duration::from_millis(160).as_nanos() / per.as_nanos().max(1)).max(1) as usize;
    let mut averages = Vec::new();
    for _ in 0..7 {
        let mut total = Duration::ZERO;
        let mut keep = Vec::with_capacity(batch);
        for _ in 0..batch {
            let (t, d) = one();
            total += t;
            keep.push(d);
        }
        drop(keep);
        averages.push(total.as_nanos() as f64 / batch as f64);
    }
    averages.sort_by(f64::total_cmp);
    averages[averages.len() / 2]
}

fn apply_dynamic(d: &mut DynamicDecoder, p: &[u8]) {
    d.decode(p).expect("patch");
}

fn apply_typed(d: &mut Decoder<State>, p: &[u8]) {
    d.decode(p).expect("patch");
}

/// The JS decoder's `ns_per_tick` for D1 and D3 with `n` entities.
fn js_figures(n: u32) -> Option<Vec<(String, u32, f64)>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/node");
    let mut out = Vec::new();
    {
        let output = Command::new("node")
            .args([
                "bench-schema.mjs",
                "--scenario",
                "D1,D3",
                "--n",
                &n.to_string(),
            ])
            .current_dir(&dir)
            .stderr(Stdio::null())
            .output()
            .ok()?;
        for line in String::from_utf8_lossy(&output.stdout).lines() {
            let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else {
                continue;
            };
            if let (Some(s), Some(ns)) = (v["scenario"].as_str(), v["ns_per_tick"].as_f64()) {
                out.push((s.to_owned(), n, ns));
            }
        }
    }
    Some(out)
}

/// The side-by-side table: the same loop as the reference's (warm-up, 7
/// batches, median).
fn compare_with_js() {
    if std::env::var_os("ROOMCAST_BENCH_NO_JS").is_some() {
        return;
    }
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/node");
    if !dir.join("node_modules/@colyseus/schema").exists() {
        eprintln!("decode bench: tests/node is not installed (npm ci); no JS comparison");
        return;
    }
    println!(
        "\nDecoding, Roomcast vs @colyseus/schema 5.0.34 (same run, ns per tick, median batch):"
    );
    println!(
        "{:<4} {:>6} {:>8} {:>14} {:>14} {:>9}",
        "id", "n", "decoder", "roomcast", "js", "speed-up"
    );
    for n in SIZES {
        // JS then Rust for each size, so that both see the same machine
        // load.
        let Some(js) = js_figures(n) else { return };
        let inp = inputs(n);
        let js_of = |s: &str| js.iter().find(|(id, m, _)| id == s && *m == n).map(|t| t.2);
        let rows: [(&str, &str, f64); 5] = [
            (
                "D1",
                "dynamic",
                measure(
                    || D1 {
                        decoder: dynamic(&inp),
                        patches: inp.patches.clone(),
                        next: 0,
                        apply: apply_dynamic,
                    },
                    Timing::FULL,
                )
                .ns_per_tick,
            ),
            (
                "D1",
                "typed",
                measure(
                    || D1 {
                        decoder: typed(&inp),
                        patches: inp.patches.clone(),
                        next: 0,
                        apply: apply_typed,
                    },
                    Timing::FULL,
                )
                .ns_per_tick,
            ),
            (
                "D3",
                "dynamic",
                measure_d3(
                    || {
                        DynamicDecoder::from_reflection(&inp.reflection, ReflectionDialect::V5)
                            .expect("reflection")
                    },
                    |d| d.decode(&inp.full).expect("full"),
                ),
            ),
            (
                "D3",
                "typed",
                measure_d3(
                    || Decoder::<State>::new().expect("types"),
                    |d| d.decode(&inp.full).expect("full"),
                ),
            ),
            (
                // The same Rust values built by hand (`decode_s3_floor`):
                // what any typed decoder of this state costs at least.
                "D3",
                "floor",
                measure_d3(
                    || None,
                    |d| *d = Some(decode_s3_floor(&inp.full).expect("floor")),
                ),
            ),
        ];
        for (id, kind, ns) in rows {
            let (js_ns, ratio) = match js_of(id) {
                Some(j) => (format!("{j:.0}"), format!("{:.1}x", j / ns)),
                None => ("-".into(), "-".into()),
            };
            println!("{id:<4} {n:>6} {kind:>8} {ns:>14.0} {js_ns:>14} {ratio:>9}");
        }
    }
    println!();
}

fn d1(c: &mut Criterion) {
    let mut g = c.benchmark_group("d1_s1_patch");
    for n in SIZES {
        let inp = inputs(n);
        g.throughput(Throughput::Bytes(inp.patches[0].len() as u64));
        g.bench_with_input(BenchmarkId::new("dynamic", n), &inp, |b, inp| {
            let mut d = dynamic(inp);
            let mut i = 0;
            b.iter(|| {
                d.decode(&inp.patches[i % RING]).expect("patch");
                i += 1;
            });
        });
        g.bench_with_input(BenchmarkId::new("typed", n), &inp, |b, inp| {
            let mut d = typed(inp);
            let mut i = 0;
            b.iter(|| {
                d.decode(&inp.patches[i % RING]).expect("patch");
                i += 1;
            });
        });
        g.bench_with_input(BenchmarkId::new("dynamic_callbacks", n), &inp, |b, inp| {
            let mut d = dynamic_at(&inp.reflection, &inp.start, true);
            let mut i = 0;
            b.iter(|| {
                d.decode(&inp.patches[i % RING]).expect("patch");
                i += 1;
            });
        });
        g.bench_with_input(BenchmarkId::new("typed_callbacks", n), &inp, |b, inp| {
            let mut d = typed_at(&inp.start, true);
            let mut i = 0;
            b.iter(|| {
                d.decode(&inp.patches[i % RING]).expect("patch");
                i += 1;
            });
        });
    }
}

fn d4(c: &mut Criterion) {
    let mut g = c.benchmark_group("d4_map_churn");
    let reflection = inputs_reflection();
    for n in SIZES {
        let (start, patches) = churn_inputs(n);
        patch_benches(&mut g, n, &reflection, &start, &patches);
    }
}

/// D5's inputs: S4's full state of `n` entities and 1 000 items, then
/// [`CHURN`] of its patches.
fn s4_inputs(n: u32) -> (Vec<u8>, Vec<Vec<u8>>) {
    let mut s4 = Churn::new(n, 10, EncoderOptions::default());
    let start = s4.encoder().encode_all().to_vec();
    s4.encoder().encode_patch();
    let patches = (0..CHURN).map(|_| s4.tick_bytes().to_vec()).collect();
    (start, patches)
}

fn d5(c: &mut Criterion) {
    let mut g = c.benchmark_group("d5_s4_patch");
    let (start, patches) = s4_inputs(1_000);
    patch_benches(&mut g, 1_000, &inputs_reflection(), &start, &patches);
}

/// `patches` applied in order after `start` (size `n`), by the dynamic and
/// the typed decoder, without and with callbacks.
fn patch_benches(
    g: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    n: u32,
    reflection: &[u8],
    start: &[u8],
    patches: &[Vec<u8>],
) {
    g.throughput(Throughput::Bytes(patches[0].len() as u64));
    for callbacks in [false, true] {
        let suffix = if callbacks { "_callbacks" } else { "" };
        g.bench_function(BenchmarkId::new(format!("dynamic{suffix}"), n), |b| {
            b.iter_custom(|iters| {
                time_patches(
                    iters,
                    patches,
                    || dynamic_at(reflection, start, callbacks),
                    |d, p| d.decode(p).expect("patch"),
                )
            });
        });
        g.bench_function(BenchmarkId::new(format!("typed{suffix}"), n), |b| {
            b.iter_custom(|iters| {
                time_patches(
                    iters,
                    patches,
                    || typed_at(start, callbacks),
                    |d, p| d.decode(p).expect("patch"),
                )
            });
        });
    }
}

/// The Reflection of the benchmark state.
fn inputs_reflection() -> Vec<u8> {
    let types = Encoder::new(State::default()).types().expect("types");
    encode_reflection(&types, Dialect::Modern)
}

fn d3(c: &mut Criterion) {
    let mut g = c.benchmark_group("d3_s3_full");
    g.sample_size(20);
    for n in SIZES {
        let inp = inputs(n);
        g.throughput(Throughput::Bytes(inp.full.len() as u64));
        g.bench_with_input(BenchmarkId::new("dynamic", n), &inp, |b, inp| {
            b.iter_batched(
                || {
                    DynamicDecoder::from_reflection(&inp.reflection, ReflectionDialect::V5)
                        .expect("reflection")
                },
                |mut d| {
                    d.decode(&inp.full).expect("full");
                    d
                },
                BatchSize::LargeInput,
            );
        });
        g.bench_with_input(BenchmarkId::new("typed", n), &inp, |b, inp| {
            b.iter_batched(
                || Decoder::<State>::new().expect("types"),
                |mut d| {
                    d.decode(&inp.full).expect("full");
                    d
                },
                BatchSize::LargeInput,
            );
        });
        g.bench_with_input(BenchmarkId::new("dynamic_callbacks", n), &inp, |b, inp| {
            b.iter_batched(
                || dynamic_at(&inp.reflection, &[], true),
                |mut d| {
                    d.decode(&inp.full).expect("full");
                    d
                },
                BatchSize::LargeInput,
            );
        });
        g.bench_with_input(BenchmarkId::new("typed_callbacks", n), &inp, |b, inp| {
            b.iter_batched(
                || typed_at(&[], true),
                |mut d| {
                    d.decode(&inp.full).expect("full");
                    d
                },
                BatchSize::LargeInput,
            );
        });
    }
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` does not.
    if std::env::args().any(|a| a == "--bench") {
        compare_with_js();
    }
    let mut c = Criterion::default().configure_from_args();
    d1(&mut c);
    d3(&mut c);
    d4(&mut c);
    d5(&mut c);
    c.final_summary();
}
