//! A driver for profiling the encoder scenarios outside criterion:
//! `cargo run --profile bench -p roomcast-benches --example enc_profile -- <v1|v2|s4|j1> <ticks>`
//! (under `perf record -g`). Prints the time per tick, wall and on CPU.

use std::time::Instant;

use roomcast_benches::{Churn, JoinChurn, Scenario, ViewMoveAll, ViewRoom};
use roomcast_schema::EncoderOptions;

/// Nanoseconds this thread has run on a CPU (`/proc/thread-self/schedstat`,
/// Linux; 0 elsewhere): on a shared machine, wall time also counts the
/// time spent waiting for a core.
fn cpu_ns() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// (wall, on-CPU) nanoseconds per tick.
fn run(mut s: impl Scenario, ticks: u32) -> (f64, f64) {
    let (t0, c0) = (Instant::now(), cpu_ns());
    let mut bytes = 0usize;
    for _ in 0..ticks {
        bytes += s.tick();
    }
    std::hint::black_box(bytes);
    let per = |ns: f64| ns / f64::from(ticks);
    (
        per(t0.elapsed().as_nanos() as f64),
        per((cpu_ns() - c0) as f64),
    )
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let which = args.first().map_or("v2", String::as_str);
    let ticks: u32 = args.get(1).and_then(|t| t.parse().ok()).unwrap_or(100);
    let o = EncoderOptions::default();
    let (wall, cpu) = match which {
        "v1" => run(ViewMoveAll::new(1_000, o), ticks),
        "v2" => run(ViewRoom::new(10_000, o), ticks),
        "s4" => run(Churn::new(1_000, 10, o), ticks),
        "j1" => run(JoinChurn::new(10_000, o), ticks),
        other => {
            eprintln!("unknown scenario {other} (v1, v2, s4, j1)");
            std::process::exit(2);
        }
    };
    println!("{which}: {wall:.0} ns/tick wall, {cpu:.0} ns/tick on CPU, over {ticks} ticks");
}
