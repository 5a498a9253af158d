//! The timing loop of `bench-schema.mjs`'s `measure`, in Rust: warm-up,
//! batches of at least a fixed time, the median batch's average per tick.

use std::hint::black_box;
use std::time::{Duration, Instant};

use crate::scenario::Scenario;

/// Ticks of a fresh instance over which bytes per tick are averaged (the
/// reference's `PROBE_TICKS`).
pub const PROBE_TICKS: u32 = 100;

/// How long to warm up and measure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    /// Minimum warm-up time (at least 3 ticks).
    pub warmup: Duration,
    /// Number of timed batches; the median is reported.
    pub batches: u32,
    /// Target duration of one batch (its tick count comes from the
    /// warm-up's estimate).
    pub batch: Duration,
}

impl Timing {
    /// The reference's default: 300 ms warm-up, 7 batches of 160 ms
    /// (≥ 1 s measured).
    pub const FULL: Self = Self {
        warmup: Duration::from_millis(300),
        batches: 7,
        batch: Duration::from_millis(160),
    };

    /// The reference's `--quick`: 50 ms warm-up, 3 batches of 40 ms.
    pub const QUICK: Self = Self {
        warmup: Duration::from_millis(50),
        batches: 3,
        batch: Duration::from_millis(40),
    };
}

/// The result of [`measure`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Measurement {
    /// The median batch's average time per tick.
    pub ns_per_tick: f64,
    /// Average output per tick over the first [`PROBE_TICKS`] ticks of a
    /// fresh instance.
    pub bytes_per_tick: f64,
    /// Ticks timed (warm-up excluded).
    pub ticks: u64,
}

/// Measures a scenario like the reference does: bytes per tick from a fresh
/// instance, time per tick from a second fresh instance (warm-up, then
/// `timing.batches` batches; the median batch's average).
pub fn measure<S: Scenario>(mut make: impl FnMut() -> S, timing: Timing) -> Measurement {
    let bytes: usize = {
        let mut probe = make();
        (0..PROBE_TICKS).map(|_| probe.tick()).sum()
    };

    let mut s = make();
    let start = Instant::now();
    let mut ticks = 0u64;
    let warm = loop {
        black_box(s.tick());
        ticks += 1;
        let elapsed = start.elapsed();
        if elapsed >= timing.warmup && ticks >= 3 {
            break elapsed;
        }
    };
    let per_tick = warm.as_nanos() as f64 / ticks as f64;
    let batch = ((timing.batch.as_nanos() as f64 / per_tick).ceil() as u64).max(1);

    let mut samples = Vec::with_capacity(timing.batches as usize);
    for _ in 0..timing.batches {
        let t0 = Instant::now();
        for _ in 0..batch {
            black_box(s.tick());
        }
        samples.push(t0.elapsed().as_nanos() as f64 / batch as f64);
    }
    samples.sort_by(f64::total_cmp);
    Measurement {
        ns_per_tick: samples[samples.len() / 2],
        bytes_per_tick: bytes as f64 / f64::from(PROBE_TICKS),
        ticks: batch * u64::from(timing.batches),
    }
}
