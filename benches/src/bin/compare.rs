//! Side-by-side comparison with `@colyseus/schema` 5.0.34, in one run.
//!
//! ```sh
//! cargo run --release -p roomcast-benches --bin compare -- [--quick] [--only S1,S4]
//!     [--no-reference] [--no-bytes] [--no-memory]
//! ```
//!
//! (or `benches/compare.sh`, which does the same). For each scenario (S1–S5,
//! V1, V2, J1) and size N it times Roomcast's encoder here (`roomcast_benches::measure`,
//! the same warm-up, batches and median as the reference's harness) and then
//! runs `tests/node/bench-schema.mjs` on the same scenario; it prints a
//! markdown table with the ratio. It also checks that our S1 patches (and
//! S3 full states, S4 patches with the reference's refId numbering, V1 and V2
//! shared patches and every view's part, J1 patches and full states) equal
//! the reference's byte for byte (`tests/node/dump-s1.mjs`), and measures
//! growth under churn on both sides (`tests/node/memory-churn.mjs`).
//! With S2 it also times [`MoveSomeFloor`], the same work and bytes as S2
//! written by hand without the encoder: the bound on S2 for this machine.
//! Progress goes to stderr, the report to stdout.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};

use roomcast_benches::scenario::ready_encoder;
use roomcast_benches::{
    measure, Churn, EncodeAll, Idle, JoinChurn, Measurement, MoveAll, MoveSome, MoveSomeFloor,
    Scenario, ScenarioId, State, Timing, ViewMoveAll, ViewRoom,
};
use roomcast_schema::EncoderOptions;

/// Command-line options.
#[derive(Debug)]
struct Args {
    quick: bool,
    only: Option<Vec<ScenarioId>>,
    reference: bool,
    bytes: bool,
    memory: bool,
}

const USAGE: &str =
    "usage: compare [--quick] [--only S1,S2,...] [--no-reference] [--no-bytes] [--no-memory]";

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        quick: false,
        only: None,
        reference: true,
        bytes: true,
        memory: true,
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--quick" => args.quick = true,
            "--no-reference" => args.reference = false,
            "--no-bytes" => args.bytes = false,
            "--no-memory" => args.memory = false,
            "--only" => {
                let list = it.next().ok_or("--only needs a list")?;
                let ids = list
                    .split(',')
                    .map(|s| ScenarioId::parse(s).ok_or(format!("unknown scenario {s}")))
                    .collect::<Result<Vec<_>, _>>()?;
                args.only = Some(ids);
            }
            "-h" | "--help" => return Err(USAGE.into()),
            other => return Err(format!("unknown argument {other}\n{USAGE}")),
        }
    }
    Ok(args)
}

/// `tests/node`, beside this crate.
fn node_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/node")
}

/// Installs the pinned npm packages unless they are there.
fn ensure_node_packages(dir: &Path) -> Result<(), String> {
    if dir
        .join("node_modules/@colyseus/schema/package.json")
        .exists()
    {
        return Ok(());
    }
    eprintln!("compare: npm ci in {}", dir.display());
    let status = Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
        .current_dir(dir)
        .status()
        .map_err(|e| format!("npm: {e} (Node.js 20+ and npm are needed)"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("npm ci failed: {status}"))
    }
}

/// Runs a Node script in `tests/node`; returns its stdout lines as JSON.
fn node_json(dir: &Path, args: &[&str]) -> Result<Vec<serde_json::Value>, String> {
    let mut child = Command::new("node")
        .args(args)
        .current_dir(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| format!("node: {e}"))?;
    let stdout = child.stdout.take().expect("piped");
    let mut values = Vec::new();
    for line in BufReader::new(stdout).lines() {
        let line = line.map_err(|e| format!("node output: {e}"))?;
        if line.trim().is_empty() {
            continue;
        }
        values.push(serde_json::from_str(&line).map_err(|e| format!("{line}: {e}"))?);
    }
    let status = child.wait().map_err(|e| format!("node: {e}"))?;
    if !status.success() {
        return Err(format!("node {args:?} failed: {status}"));
    }
    Ok(values)
}

fn f64_of(v: &serde_json::Value, key: &str) -> Result<f64, String> {
    v.get(key)
        .and_then(serde_json::Value::as_f64)
        .ok_or_else(|| format!("no number {key} in {v}"))
}

/// Our side of one scenario.
fn ours(id: ScenarioId, n: u32, timing: Timing) -> Measurement {
    let o = EncoderOptions::default();
    match id {
        ScenarioId::S1 => measure(|| MoveAll::new(n, o), timing),
        ScenarioId::S2 => measure(|| MoveSome::new(n, o), timing),
        ScenarioId::S3 => measure(|| EncodeAll::new(n, o), timing),
        ScenarioId::S4 => measure(|| Churn::new(n, 10, o), timing),
        ScenarioId::S5 => measure(|| Idle::new(n, o), timing),
        ScenarioId::V1 => measure(|| ViewMoveAll::new(n, o), timing),
        ScenarioId::V2 => measure(|| ViewRoom::new(n, o), timing),
        ScenarioId::J1 => measure(|| JoinChurn::new(n, o), timing),
    }
}

/// The reference's side of one scenario.
fn reference(dir: &Path, id: ScenarioId, n: u32, quick: bool) -> Result<Measurement, String> {
    let n_arg = n.to_string();
    let mut args = vec!["bench-schema.mjs", "--scenario", id.name(), "--n", &n_arg];
    if quick {
        args.push("--quick");
    }
    let lines = node_json(dir, &args)?;
    let line = lines.first().ok_or("bench-schema.mjs printed nothing")?;
    Ok(Measurement {
        ns_per_tick: f64_of(line, "ns_per_tick")?,
        bytes_per_tick: f64_of(line, "bytes_per_tick")?,
        ticks: 0,
    })
}

fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        write!(s, "{b:02x}").expect("writing to a String cannot fail");
    }
    s
}

/// Our bytes of ticks 1..=`ticks` of a view scenario: per tick, the shared
/// patch and every view's part.
type ViewDumps = Vec<(Vec<u8>, Vec<Vec<u8>>)>;

fn our_view_dumps(scenario: &str, ticks: u32, options: EncoderOptions) -> Option<ViewDumps> {
    fn run<S>(
        s: &mut S,
        ticks: u32,
        mutate: fn(&mut S),
        parts: fn(
            &mut S,
        ) -> (
            &mut roomcast_schema::Encoder<roomcast_benches::ViewState>,
            &[roomcast_schema::ViewId],
        ),
    ) -> ViewDumps {
        (0..ticks)
            .map(|_| {
                mutate(s);
                let (enc, views) = parts(s);
                let shared = enc.encode_patch().to_vec();
                let mine = views.iter().map(|&v| enc.view_patch(v).to_vec()).collect();
                (shared, mine)
            })
            .collect()
    }
    match scenario {
        "V1" => Some(run(
            &mut ViewMoveAll::new(1_000, options),
            ticks,
            ViewMoveAll::mutate,
            ViewMoveAll::parts,
        )),
        "V2" => Some(run(
            &mut ViewRoom::new(10_000, options),
            ticks,
            ViewRoom::mutate,
            ViewRoom::parts,
        )),
        _ => None,
    }
}

/// Our bytes for one dump line of `dump-s1.mjs` (`part`: J1's "patch" or
/// "full").
fn our_dump(
    scenario: &str,
    n: u32,
    tick: u32,
    part: Option<&str>,
    options: EncoderOptions,
) -> Option<Vec<u8>> {
    match scenario {
        "J1" => {
            let mut s = JoinChurn::new(n, options);
            for _ in 1..tick {
                s.tick();
            }
            let patch = s.churn().to_vec();
            if part == Some("full") {
                Some(s.join().to_vec())
            } else {
                Some(patch)
            }
        }
        "S1" => {
            let mut s = MoveAll::new(n, options);
            for _ in 1..tick {
                s.tick();
            }
            s.mutate();
            Some(s.encode().to_vec())
        }
        "S3" => Some(
            ready_encoder(State::build(n, 0), options)
                .encode_all()
                .to_vec(),
        ),
        "S4" => {
            let mut s = Churn::new(n, 10, options);
            for _ in 1..tick {
                s.tick();
            }
            Some(s.tick_bytes().to_vec())
        }
        _ => None,
    }
}

/// Result of the byte-identity checks, one row per (scenario, N, options).
fn check_bytes(dir: &Path) -> Result<Vec<String>, String> {
    let sizes = ScenarioId::ALL[0].1;
    let list = sizes
        .iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(",");
    let dumps = node_json(
        dir,
        &[
            "dump-s1.mjs",
            "--n",
            &list,
            "--ticks",
            "3",
            "--full",
            "--churn",
            "--views",
            "--join",
        ],
    )?;
    // Our view scenarios' bytes, computed once per (scenario, options).
    let mut view_cache: BTreeMap<(String, &str), Option<ViewDumps>> = BTreeMap::new();
    // (scenario, n, options) -> (equal ticks, total ticks, bytes of the first)
    let mut results: BTreeMap<(String, u32, &str), (u32, u32, usize)> = BTreeMap::new();
    for d in &dumps {
        let scenario = d["scenario"].as_str().ok_or("dump without scenario")?;
        let n = f64_of(d, "n")? as u32;
        let tick = f64_of(d, "tick")? as u32;
        let theirs = d["hex"].as_str().ok_or("dump without hex")?;
        let variants: &[(&str, EncoderOptions)] = if scenario == "S4" || scenario == "J1" {
            // Churn: refIds differ by design unless numbered like the
            // reference.
            &[(
                "reuse_ref_ids(false)",
                EncoderOptions::default().reuse_ref_ids(false),
            )]
        } else {
            &[
                ("default", EncoderOptions::default()),
                (
                    "reuse_ref_ids(false)",
                    EncoderOptions::default().reuse_ref_ids(false),
                ),
            ]
        };
        let view = d.get("view").and_then(serde_json::Value::as_i64);
        let part = d.get("part").and_then(serde_json::Value::as_str);
        for &(name, options) in variants {
            let mine = match view {
                Some(v) => {
                    let dumps = view_cache
                        .entry((scenario.to_owned(), name))
                        .or_insert_with(|| our_view_dumps(scenario, 3, options));
                    dumps.as_ref().and_then(|t| {
                        let (shared, parts) = t.get(tick as usize - 1)?;
                        if v < 0 {
                            Some(shared.clone())
                        } else {
                            parts.get(v as usize).cloned()
                        }
                    })
                }
                None => our_dump(scenario, n, tick, part, options),
            };
            let Some(mine) = mine else {
                continue;
            };
            let r =
                results
                    .entry((scenario.to_owned(), n, name))
                    .or_insert((0, 0, theirs.len() / 2));
            r.1 += 1;
            if hex(&mine) == theirs {
                r.0 += 1;
            } else {
                let which = match (view, part) {
                    (Some(v), _) if v < 0 => " shared".to_owned(),
                    (Some(v), _) => format!(" view {v}"),
                    (None, Some(p)) => format!(" {p}"),
                    (None, None) => String::new(),
                };
                eprintln!(
                    "compare: {scenario} N={n} tick {tick}{which} ({name}) differs: ours {} B, reference {} B",
                    mine.len(),
                    theirs.len() / 2
                );
            }
        }
    }
    Ok(results
        .into_iter()
        .map(|((scenario, n, options), (equal, total, bytes))| {
            let what = if scenario == "S3" {
                "encode_all".to_owned()
            } else if scenario.starts_with('V') {
                format!("shared patches and view parts of ticks 1–3 ({total} in all)")
            } else if scenario == "J1" {
                format!("patches and full states of ticks 1–3 ({total} in all)")
            } else {
                format!("patches of ticks 1–{total}")
            };
            let verdict = if equal == total {
                "identical"
            } else {
                "DIFFERENT"
            };
            format!("| {scenario} | {n} | {options} | {what} ({bytes} B first) | {verdict} |")
        })
        .collect())
}

/// Resident set size of this process, from `/proc/self/statm` (Linux).
fn rss_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

/// Our side of the churn memory comparison: samples of (created, refId
/// high-water mark, RSS).
fn our_churn(options: EncoderOptions, created: u64, samples: u64) -> Vec<(u64, u32, Option<u64>)> {
    let mut s = Churn::new(1_000, 100, options);
    let every = created / samples;
    let mut next_sample = every;
    let mut out = Vec::new();
    while s.created() < created {
        s.tick();
        if s.created() >= next_sample {
            out.push((
                s.created(),
                s.encoder().tick_stats().id_high_water(),
                rss_bytes(),
            ));
            next_sample += every;
        }
    }
    out
}

fn mib(b: Option<u64>) -> String {
    b.map_or_else(
        || "?".into(),
        |b| format!("{:.1} MiB", b as f64 / 1048576.0),
    )
}

fn memory_report(dir: Option<&Path>) -> Result<String, String> {
    const CREATED: u64 = 1_000_000;
    const SAMPLES: u64 = 5;
    let mut r = String::new();
    let reused = our_churn(EncoderOptions::default(), CREATED, SAMPLES);
    let monotonic = our_churn(
        EncoderOptions::default().reuse_ref_ids(false),
        CREATED,
        SAMPLES,
    );
    let theirs = match dir {
        Some(d) => node_json(
            d,
            &[
                "--expose-gc",
                "memory-churn.mjs",
                "--live",
                "1000",
                "--per-tick",
                "100",
                "--created",
                &CREATED.to_string(),
                "--samples",
                &SAMPLES.to_string(),
            ],
        )?,
        None => Vec::new(),
    };
    writeln!(
        r,
        "Churn: a map held at 1000 entities, 100 removes + 100 adds and a patch per tick.\n\n\
         | created | ours refId high water | ours RSS | ours refId high water, reuse_ref_ids(false) | reference next refId | reference heapUsed (after GC) |\n\
         | ---: | ---: | ---: | ---: | ---: | ---: |"
    )
    .expect("String");
    for (i, (created, hw, rss)) in reused.iter().enumerate() {
        let (ref_id, heap) = theirs
            .iter()
            .filter(|v| v.get("summary").is_none())
            .nth(i)
            .map_or_else(
                || ("–".to_owned(), "–".to_owned()),
                |v| (v["next_ref_id"].to_string(), mib(v["heap_used"].as_u64())),
            );
        writeln!(
            r,
            "| {created} | {hw} | {} | {} | {ref_id} | {heap} |",
            mib(*rss),
            monotonic[i].1
        )
        .expect("String");
    }
    if let Some(s) = theirs.iter().find(|v| v.get("summary").is_some()) {
        writeln!(
            r,
            "\nReference: {} B of heap per entity ever created (slope between the first and last sample).",
            s["bytes_per_created_entity"]
        )
        .expect("String");
    }
    writeln!(
        r,
        "Ours: live bytes are checked by `tests/tests/memory.rs` (counting allocator)."
    )
    .expect("String");
    Ok(r)
}

struct Row {
    id: ScenarioId,
    n: u32,
    ours: Measurement,
    theirs: Option<Measurement>,
    /// S2 only: [`MoveSomeFloor`]'s time.
    floor: Option<Measurement>,
}

fn fmt_ns(ns: f64) -> String {
    if ns >= 100.0 {
        format!("{ns:.0}")
    } else {
        format!("{ns:.1}")
    }
}

fn table(rows: &[Row]) -> String {
    let mut t = String::from(
        "| scenario | N | ours ns/tick | reference ns/tick | speed-up (ratio) | ours bytes/tick | reference bytes/tick |\n\
         | --- | ---: | ---: | ---: | ---: | ---: | ---: |\n",
    );
    for r in rows {
        let (theirs_ns, ratio, theirs_b) = r.theirs.map_or_else(
            || ("–".into(), "–".into(), "–".into()),
            |m| {
                (
                    fmt_ns(m.ns_per_tick),
                    format!("{:.1}×", m.ns_per_tick / r.ours.ns_per_tick),
                    format!("{:.1}", m.bytes_per_tick),
                )
            },
        );
        writeln!(
            t,
            "| {} | {} | {} | {theirs_ns} | {ratio} | {:.1} | {theirs_b} |",
            r.id.name(),
            r.n,
            fmt_ns(r.ours.ns_per_tick),
            r.ours.bytes_per_tick,
        )
        .expect("String");
        if let Some(f) = r.floor {
            let ratio = r.theirs.map_or_else(
                || "–".into(),
                |m| format!("{:.1}×", m.ns_per_tick / f.ns_per_tick),
            );
            writeln!(
                t,
                "| {} floor (hand-written, same bytes) | {} | {} | | {ratio} | {:.1} | |",
                r.id.name(),
                r.n,
                fmt_ns(f.ns_per_tick),
                f.bytes_per_tick,
            )
            .expect("String");
        }
    }
    t
}

/// The issue's targets, checked against the measured rows.
fn targets(rows: &[Row]) -> String {
    let mut t = String::new();
    let ratio = |r: &Row| r.theirs.map(|m| m.ns_per_tick / r.ours.ns_per_tick);
    let verdict = |ok: bool| if ok { "met" } else { "MISSED" };
    for r in rows {
        let line = match (r.id, r.n) {
            (ScenarioId::S1, 1_000 | 10_000) => {
                let per = r.ours.ns_per_tick / f64::from(r.n);
                let x = ratio(r).map_or("–".into(), |x| format!("{x:.1}×"));
                let ok = ratio(r).is_none_or(|x| x >= 20.0);
                format!(
                    "S1 N={}: {x} (target ≥ 20×) {}; {per:.2} ns per moving entity (target ≈ 8) {}",
                    r.n,
                    verdict(ok),
                    verdict(per <= 8.0)
                )
            }
            (ScenarioId::S2, _) => {
                let x = ratio(r).map_or("–".into(), |x| format!("{x:.1}×"));
                let floor = match (r.floor, r.theirs) {
                    (Some(f), Some(m)) => format!(
                        "; the hand-written floor reaches {:.1}×, ours is {:.2}× the floor's time",
                        m.ns_per_tick / f.ns_per_tick,
                        r.ours.ns_per_tick / f.ns_per_tick
                    ),
                    _ => String::new(),
                };
                format!(
                    "S2 N={}: {x} (target ≥ 20×) {}{floor}",
                    r.n,
                    verdict(ratio(r).is_none_or(|x| x >= 20.0))
                )
            }
            (ScenarioId::S3, _) => {
                let x = ratio(r).map_or("–".into(), |x| format!("{x:.1}×"));
                format!(
                    "S3 N={}: {x} (target ≥ 10×) {}",
                    r.n,
                    verdict(ratio(r).is_none_or(|x| x >= 10.0))
                )
            }
            (ScenarioId::S4 | ScenarioId::V1 | ScenarioId::V2 | ScenarioId::J1, _) => {
                let x = ratio(r).map_or("–".into(), |x| format!("{x:.1}×"));
                format!(
                    "{} N={}: {x} (target ≥ 20×) {}",
                    r.id.name(),
                    r.n,
                    verdict(ratio(r).is_none_or(|x| x >= 20.0))
                )
            }
            (ScenarioId::S5, _) => format!(
                "S5 N={}: {} ns (target < 200 ns) {}",
                r.n,
                fmt_ns(r.ours.ns_per_tick),
                verdict(r.ours.ns_per_tick < 200.0)
            ),
            _ => continue,
        };
        writeln!(t, "- {line}").expect("String");
    }
    t
}

fn run(args: &Args) -> Result<(), String> {
    let dir = node_dir();
    let use_node = args.reference || args.bytes || args.memory;
    if use_node {
        ensure_node_packages(&dir)?;
    }
    let timing = if args.quick {
        Timing::QUICK
    } else {
        Timing::FULL
    };

    let mut rows = Vec::new();
    for (id, sizes) in ScenarioId::ALL {
        if args.only.as_ref().is_some_and(|o| !o.contains(&id)) {
            continue;
        }
        for &n in sizes {
            let ours = ours(id, n, timing);
            eprintln!(
                "compare: {} N={n}: ours {} ns/tick, {:.1} B/tick ({} ticks)",
                id.name(),
                fmt_ns(ours.ns_per_tick),
                ours.bytes_per_tick,
                ours.ticks
            );
            let floor = (id == ScenarioId::S2).then(|| {
                let f = measure(|| MoveSomeFloor::new(n), timing);
                eprintln!("compare: S2 floor N={n}: {} ns/tick", fmt_ns(f.ns_per_tick));
                f
            });
            let theirs = if args.reference {
                Some(reference(&dir, id, n, args.quick)?)
            } else {
                None
            };
            rows.push(Row {
                id,
                n,
                ours,
                theirs,
                floor,
            });
        }
    }

    let mut out = String::new();
    writeln!(
        out,
        "Roomcast (release) vs @colyseus/schema 5.0.34 on Node {}; timing: {} ms warm-up, {} batches of {} ms, median.\n",
        node_version().unwrap_or_else(|| "?".into()),
        timing.warmup.as_millis(),
        timing.batches,
        timing.batch.as_millis()
    )
    .expect("String");
    out.push_str(&table(&rows));
    out.push('\n');
    out.push_str(&targets(&rows));
    if args.bytes {
        out.push_str(
            "\nByte identity with the reference (`tests/node/dump-s1.mjs`):\n\n\
             | scenario | N | our options | compared | result |\n| --- | ---: | --- | --- | --- |\n",
        );
        for line in check_bytes(&dir)? {
            writeln!(out, "{line}").expect("String");
        }
    }
    if args.memory {
        out.push('\n');
        out.push_str(&memory_report(Some(&dir))?);
    }
    print!("{out}");
    Ok(())
}

fn node_version() -> Option<String> {
    let out = Command::new("node").arg("--version").output().ok()?;
    Some(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("compare: {e}");
            ExitCode::FAILURE
        }
    }
}
