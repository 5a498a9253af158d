//! A driver for profiling D3 (and D1) outside criterion:
//! `cargo run --release -p roomcast-benches --example d3_profile -- <dynamic|typed|d1-dynamic|d1-typed> <n> <rounds> <batch>`.
//!
//! D3: each round builds `batch` fresh decoders, decodes the S3 full state
//! into each (kept alive, as the benches do), then drops them. D1: applies
//! `rounds` S1 patches to one decoder. Prints the time per decode (D3: the
//! decodes only, not building and dropping the decoders).

use std::time::Instant;

use roomcast_benches::{EncodeAll, MoveAll};
use roomcast_schema::decoder::{Decoder, DynamicDecoder, ReflectionDialect};
use roomcast_schema::{encode_reflection, ArraySchema, Dialect, EncoderOptions, MapSchema, Schema};

/// The decoding side's copy of the scenario types.
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
    items: ArraySchema<u16>,
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
    let mut decodes = 0usize;
    match mode {
        "dynamic" => {
            for _ in 0..rounds {
                let mut keep: Vec<DynamicDecoder> = (0..batch)
                    .map(|_| {
                        DynamicDecoder::from_reflection(&reflection, ReflectionDialect::V5)
                            .expect("reflection")
                    })
                    .collect();
                let t = Instant::now();
                for d in &mut keep {
                    d.decode(&full).expect("full");
                    decodes += 1;
                }
                timed += t.elapsed();
                std::hint::black_box(&keep);
            }
        }
        "typed" => {
            for _ in 0..rounds {
                let mut keep: Vec<Decoder<State>> = (0..batch)
                    .map(|_| Decoder::<State>::new().expect("types"))
                    .collect();
                let t = Instant::now();
                for d in &mut keep {
                    d.decode(&full).expect("full");
                    decodes += 1;
                }
                timed += t.elapsed();
                std::hint::black_box(&keep);
            }
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
        _ => panic!("mode: dynamic | typed | d1-dynamic | d1-typed"),
    }
    let el = if mode.starts_with("d1") {
        t0.elapsed()
    } else {
        timed
    };
    println!(
        "{mode} n={n}: {:.0} ns per decode ({decodes} decodes)",
        el.as_nanos() as f64 / decodes as f64
    );
}
