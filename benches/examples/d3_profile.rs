//! A driver for profiling D3 (and D1) outside criterion:
//! `cargo run --release -p roomcast-benches --example d3_profile -- <dynamic|typed|floor|d1-dynamic|d1-typed> <n> <rounds> <batch>`.
//!
//! D3: each round builds `batch` fresh decoders, decodes the S3 full state
//! into each (kept alive, as the benches do), then drops them. D1: applies
//! `rounds` S1 patches to one decoder. Prints the time per decode (D3: the
//! decodes only, not building and dropping the decoders).

use std::time::Instant;

use roomcast_benches::{decode_s3_floor, EncodeAll, MoveAll, State};
use roomcast_schema::decoder::{Decoder, DynamicDecoder, ReflectionDialect};
use roomcast_schema::{encode_reflection, Dialect, EncoderOptions};

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

/// `rounds` batches like the bench's D3 loop: each decode into a decoder
/// made just before (outside the timed part), the batch kept alive, then
/// dropped (outside the timed part).
fn d3_rounds<D>(
    rounds: usize,
    batch: usize,
    mut make: impl FnMut() -> D,
    mut run: impl FnMut(&mut D),
    timed: &mut std::time::Duration,
    faults: &mut u64,
) {
    for _ in 0..rounds {
        let mut keep = Vec::with_capacity(batch);
        for _ in 0..batch {
            let mut d = make();
            let f = minor_faults();
            let t = Instant::now();
            run(&mut d);
            *timed += t.elapsed();
            *faults += minor_faults() - f;
            keep.push(d);
        }
        drop(keep);
    }
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
    let t0 = Instant::now();
    let mut timed = std::time::Duration::ZERO;
    let mut faults = 0u64;
    let mut decodes = 0usize;
    match mode {
        "dynamic" => {
            let make = || {
                DynamicDecoder::from_reflection(&reflection, ReflectionDialect::V5)
                    .expect("reflection")
            };
            d3_rounds(
                rounds,
                batch,
                make,
                |d| d.decode(&full).expect("full"),
                &mut timed,
                &mut faults,
            );
            decodes = rounds * batch;
        }
        "typed" => {
            let make = || Decoder::<State>::new().expect("types");
            d3_rounds(
                rounds,
                batch,
                make,
                |d| d.decode(&full).expect("full"),
                &mut timed,
                &mut faults,
            );
            decodes = rounds * batch;
        }
        "floor" => {
            // The hand-written D3 (`decode_s3_floor`), its state kept alive
            // like the decoders.
            d3_rounds(
                rounds,
                batch,
                || None,
                |d| *d = Some(decode_s3_floor(&full).expect("floor")),
                &mut timed,
                &mut faults,
            );
            decodes = rounds * batch;
        }
        "d1-dynamic" => {
            let mut d = DynamicDecoder::from_reflection(&reflection, ReflectionDialect::V5)
                .expect("reflection");
            d.decode(&start).expect("start");
            for i in 0..rounds {
                d.decode(&patches[i % 16]).expect("patch");
                decodes += 1;
            }
        }
        "d1-typed" => {
            let mut d = Decoder::<State>::new().expect("types");
            d.decode(&start).expect("start");
            for i in 0..rounds {
                d.decode(&patches[i % 16]).expect("patch");
                decodes += 1;
            }
        }
        "s1" => {
            // The encoder's S1 tick, for A/B checks of shared code.
            let mut s = roomcast_benches::MoveAll::new(n, opts);
            for _ in 0..rounds {
                std::hint::black_box(roomcast_benches::Scenario::tick(&mut s));
                decodes += 1;
            }
        }
        _ => panic!("mode: dynamic | typed | floor | d1-dynamic | d1-typed | s1"),
    }
    let el = if mode.starts_with("d1") || mode == "s1" {
        t0.elapsed()
    } else {
        timed
    };
    println!(
        "{mode} n={n}: {:.0} ns per decode ({decodes} decodes, {:.1} page faults per decode)",
        el.as_nanos() as f64 / decodes as f64,
        faults as f64 / decodes as f64
    );
}
