//! Encoder benches S1–S5, V1, V2 and J1 (`roomcast_benches::scenario`), as
//! functions of N for S1–S5,
//! plus S1 split into its mutations alone and its `encode_patch` alone.
//!
//! Deterministic states (no randomness: the scenarios' values are fixed),
//! one encoder and its output buffer reused across iterations. The side by
//! side ratios against `@colyseus/schema` come from `benches/compare.sh`.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput};
use roomcast_benches::{
    Churn, EncodeAll, Idle, JoinChurn, MoveAll, MoveSome, MoveSomeFloor, Scenario, ViewMoveAll,
    ViewRoom,
};
use roomcast_schema::EncoderOptions;

const S1_SIZES: [u32; 3] = [100, 1_000, 10_000];

/// Output bytes of one tick of a fresh scenario (constant per tick for S1,
/// S2, S3; S4's vary a little).
fn bytes_of_one_tick(mut s: impl Scenario) -> u64 {
    s.tick() as u64
}

/// V1: S1 with one view field and 100 views (own entity + 10 shared each):
/// the tick, and `encode_patch` plus every `view_patch` alone.
/// `iters` ticks of `s`, timing only `encode` (after an untimed `mutate`).
fn time_encode<S, R>(
    iters: u64,
    s: &mut S,
    mutate: fn(&mut S),
    encode: fn(&mut S) -> R,
) -> Duration {
    let mut timed = Duration::ZERO;
    for _ in 0..iters {
        mutate(s);
        let t0 = Instant::now();
        black_box(encode(s));
        timed += t0.elapsed();
    }
    timed
}

fn v1_views(c: &mut Criterion) {
    let opts = EncoderOptions::default();
    let mut g = c.benchmark_group("v1_views");
    let n = 1_000;
    g.bench_with_input(BenchmarkId::new("tick", n), &n, |b, &n| {
        let mut s = ViewMoveAll::new(n, opts);
        b.iter(|| black_box(s.tick()));
    });
    g.bench_with_input(BenchmarkId::new("encode_only", n), &n, |b, &n| {
        let mut s = ViewMoveAll::new(n, opts);
        b.iter_custom(|iters| time_encode(iters, &mut s, ViewMoveAll::mutate, ViewMoveAll::encode));
    });
    g.finish();
}

/// V2: 500 views over 10,000 entities (own 50 + 50 shared each), 10 %
/// moving: the tick, and `encode_patch` plus every `view_patch` alone.
fn v2_view_room(c: &mut Criterion) {
    let opts = EncoderOptions::default();
    let mut g = c.benchmark_group("v2_view_room");
    g.sample_size(20);
    let n = 10_000;
    g.bench_with_input(BenchmarkId::new("tick", n), &n, |b, &n| {
        let mut s = ViewRoom::new(n, opts);
        b.iter(|| black_box(s.tick()));
    });
    g.bench_with_input(BenchmarkId::new("encode_only", n), &n, |b, &n| {
        let mut s = ViewRoom::new(n, opts);
        b.iter_custom(|iters| time_encode(iters, &mut s, ViewRoom::mutate, ViewRoom::encode));
    });
    g.finish();
}

/// J1: 1 % of 10,000 entries replaced per tick, then a full state: the
/// tick, and the full state alone.
fn j1_join_under_churn(c: &mut Criterion) {
    let opts = EncoderOptions::default();
    let mut g = c.benchmark_group("j1_join_churn");
    g.sample_size(20);
    let n = 10_000;
    g.bench_with_input(BenchmarkId::new("tick", n), &n, |b, &n| {
        let mut s = JoinChurn::new(n, opts);
        b.iter(|| black_box(s.tick()));
    });
    g.bench_with_input(BenchmarkId::new("full_state_only", n), &n, |b, &n| {
        let mut s = JoinChurn::new(n, opts);
        b.iter_custom(|iters| {
            time_encode(
                iters,
                &mut s,
                |s| {
                    s.churn();
                },
                |s| s.join().len(),
            )
        });
    });
    g.finish();
}

fn s1_move_all(c: &mut Criterion) {
    let opts = EncoderOptions::default();
    let mut g = c.benchmark_group("s1_move_all");
    for n in S1_SIZES {
        g.throughput(Throughput::Bytes(bytes_of_one_tick(MoveAll::new(n, opts))));
        g.bench_with_input(BenchmarkId::new("tick", n), &n, |b, &n| {
            let mut s = MoveAll::new(n, opts);
            b.iter(|| black_box(s.tick()));
        });
    }
    for n in S1_SIZES {
        // Elements: criterion's per-element time is the cost per moving
        // entity.
        g.throughput(Throughput::Elements(u64::from(n)));
        g.bench_with_input(BenchmarkId::new("mutate_only", n), &n, |b, &n| {
            let mut s = MoveAll::new(n, opts);
            b.iter_custom(|iters| {
                let mut timed = Duration::ZERO;
                for _ in 0..iters {
                    let t0 = Instant::now();
                    s.mutate();
                    timed += t0.elapsed();
                    black_box(s.encode());
                }
                timed
            });
        });
        g.bench_with_input(BenchmarkId::new("encode_only", n), &n, |b, &n| {
            let mut s = MoveAll::new(n, opts);
            b.iter_custom(|iters| {
                time_encode(iters, &mut s, MoveAll::mutate, |s| s.encode().len())
            });
        });
    }
    g.finish();
}

fn s2_move_one_percent(c: &mut Criterion) {
    let opts = EncoderOptions::default();
    let mut g = c.benchmark_group("s2_move_1pct");
    let n = 10_000;
    g.throughput(Throughput::Bytes(bytes_of_one_tick(MoveSome::new(n, opts))));
    g.bench_with_input(BenchmarkId::new("tick", n), &n, |b, &n| {
        let mut s = MoveSome::new(n, opts);
        b.iter(|| black_box(s.tick()));
    });
    // The same work and bytes without the encoder (see `MoveSomeFloor`).
    g.bench_with_input(BenchmarkId::new("floor", n), &n, |b, &n| {
        let mut s = MoveSomeFloor::new(n);
        b.iter(|| black_box(s.tick()));
    });
    g.finish();
}

fn s3_encode_all(c: &mut Criterion) {
    let opts = EncoderOptions::default();
    let mut g = c.benchmark_group("s3_encode_all");
    for n in [1_000, 10_000] {
        g.throughput(Throughput::Bytes(bytes_of_one_tick(EncodeAll::new(
            n, opts,
        ))));
        g.bench_with_input(BenchmarkId::new("tick", n), &n, |b, &n| {
            let mut s = EncodeAll::new(n, opts);
            b.iter(|| black_box(s.tick()));
        });
    }
    g.finish();
}

fn s4_churn(c: &mut Criterion) {
    let opts = EncoderOptions::default();
    let mut g = c.benchmark_group("s4_churn");
    let n = 1_000;
    g.throughput(Throughput::Bytes(bytes_of_one_tick(Churn::new(
        n, 10, opts,
    ))));
    g.bench_with_input(BenchmarkId::new("tick", n), &n, |b, &n| {
        let mut s = Churn::new(n, 10, opts);
        b.iter(|| black_box(s.tick()));
    });
    g.finish();
}

fn s5_idle(c: &mut Criterion) {
    let opts = EncoderOptions::default();
    let mut g = c.benchmark_group("s5_idle");
    // S5 is N = 10k; the smaller sizes show the cost does not depend on N.
    for n in [100, 1_000, 10_000] {
        g.bench_with_input(BenchmarkId::new("tick", n), &n, |b, &n| {
            let mut s = Idle::new(n, opts);
            b.iter(|| black_box(s.tick()));
        });
    }
    g.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
}

fn main() {
    // What `criterion_group!` + `criterion_main!` expand to, without their
    // undocumented `pub fn`.
    let mut c = config().configure_from_args();
    s1_move_all(&mut c);
    v1_views(&mut c);
    v2_view_room(&mut c);
    s2_move_one_percent(&mut c);
    s3_encode_all(&mut c);
    s4_churn(&mut c);
    j1_join_under_churn(&mut c);
    s5_idle(&mut c);
    c.final_summary();
}
