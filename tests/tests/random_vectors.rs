//! Random vectors: `tests/node/gen-random.mjs` writes a seeded random set
//! (random schemas, random steps over the whole op vocabulary, bytes and
//! states of the real `@colyseus/schema` 5.0.34) and every step is replayed
//! with Roomcast's encoder (`replay::check_vector`, as
//! `tests/encode_vectors.rs` does for our own vectors).
//!
//! Environment:
//!
//! - `ROOMCAST_RANDOM_SEED` (default `1`) and `ROOMCAST_RANDOM_STEPS`
//!   (default 20,000: steps in all, after each scenario's initial step);
//!   `ROOMCAST_RANDOM_SCENARIO_STEPS` (default 25) steps per scenario;
//!   `ROOMCAST_RANDOM_VIEWS` (default 0.25) the share of scenarios with
//!   StateView fields and views.
//! - `ROOMCAST_RANDOM_DIR`: replay that set instead of generating one.
//! - `ROOMCAST_RANDOM_KEEP=1`: keep the generated set (it is kept anyway
//!   when the test fails); its directory is printed.
//! - `ROOMCAST_RANDOM_STRICT=1`: byte differences fail the test too.
//! - `ROOMCAST_RANDOM_MAX_STATES`: how many decoded-state mismatches are
//!   tolerated (see below).
//!
//! `.ci/run` runs the default set (seed 1, 20,000 steps). Its remaining
//! decoded-state mismatches and byte differences (issue 15: the reference's
//! equal-value array insert, StateView cases listed in the report) are
//! budgets, [`DEFAULT_SET_BUDGET`], that fail the test when exceeded and
//! are lowered as the encoder gets them right; any other set tolerates no
//! mismatch unless `ROOMCAST_RANDOM_MAX_STATES` says so.
//!
//! It prints a summary (also written to `<target>/tmp/`): steps replayed with
//! identical bytes, the steps whose bytes differ grouped by part (patch,
//! full, view patch, view full) and by the op kinds present in the step,
//! with the smallest example of each group (its ops and the first differing
//! byte). The test fails on harness errors (a step that cannot be replayed,
//! a panic), on decoded-state mismatches (a real decoder holding another
//! state after Roomcast's bytes than after the reference's, or a view's
//! patch stream disagreeing with its full state), which are correctness
//! bugs, and on byte differences, beyond the budgets below.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use roomcast_tests::node::{ensure_npm_install, node_dir, NodeDecoder};
use roomcast_tests::replay::{
    check_vector, describe_ops, known_gaps, load_vectors, ByteDiff, StepReport, VectorReport,
};
use serde_json::json;

fn env_number(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(v) => v
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{name}={v:?} is not a number")),
        Err(_) => default,
    }
}

fn env_flag(name: &str) -> bool {
    std::env::var(name).is_ok_and(|v| v == "1" || v.eq_ignore_ascii_case("true"))
}

/// Runs `gen-random.mjs`; returns its summary line and the time it took.
fn generate(seed: &str, scenarios: u64, steps: u64, views: &str, out: &Path) -> (String, f64) {
    ensure_npm_install();
    let start = Instant::now();
    let output = Command::new("node")
        .arg("gen-random.mjs")
        .args(["--seed", seed])
        .args(["--scenarios", &scenarios.to_string()])
        .args(["--steps", &steps.to_string()])
        .args(["--views", views])
        .arg("--out")
        .arg(out)
        .arg("--quiet")
        .current_dir(node_dir())
        .output()
        .unwrap_or_else(|e| panic!("cannot run node gen-random.mjs: {e}"));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "gen-random.mjs failed ({}):\n{stderr}",
        output.status
    );
    let cut = stderr.lines().filter(|l| l.starts_with("cut ")).count();
    let dropped = stderr.lines().filter(|l| l.starts_with("dropped ")).count();
    if cut + dropped > 0 {
        eprintln!(
            "gen-random.mjs: {cut} scenarios cut before a step the reference fails itself, {dropped} dropped"
        );
    }
    (
        String::from_utf8_lossy(&output.stdout).trim().to_owned(),
        start.elapsed().as_secs_f64(),
    )
}

/// A group of steps with byte differences.
#[derive(Default)]
struct Category {
    steps: usize,
    /// (number of ops, ops text length, vector, step, diff, ops text)
    example: Option<(usize, usize, String, usize, ByteDiff, String)>,
}

impl Category {
    fn add(&mut self, vector: &str, s: &StepReport, d: &ByteDiff) {
        self.steps += 1;
        let ops = describe_ops(&s.ops);
        let key = (s.ops.len(), ops.len() + d.want.len());
        if self
            .example
            .as_ref()
            .is_none_or(|e| key < (e.0, e.1 + e.4.want.len()))
        {
            self.example = Some((
                s.ops.len(),
                ops.len(),
                vector.to_owned(),
                s.step,
                d.clone(),
                ops,
            ));
        }
    }
}

fn excerpt(hex: &str, offset: usize) -> String {
    let from = offset.saturating_sub(8) * 2;
    let to = (offset + 16) * 2;
    let body = hex.get(from..to.min(hex.len())).unwrap_or_default();
    format!(
        "{}{body}{}",
        if from > 0 { "…" } else { "" },
        if to < hex.len() { "…" } else { "" }
    )
}

#[derive(Default)]
struct Totals {
    vectors: usize,
    steps: usize,
    identical: usize,
    compared: usize,
    compared_identical: usize,
    one_parent: BTreeMap<&'static str, (usize, usize)>,
    gap: usize,
    reference_inconsistent: usize,
    by_part: BTreeMap<String, usize>,
    by_category: BTreeMap<(String, String), Category>,
    /// By part and the first differing byte (ours, the reference's).
    by_byte: BTreeMap<(String, String), Category>,
    by_op: BTreeMap<String, (usize, usize)>,
    reflection: Vec<String>,
    harness: Vec<String>,
    states: Vec<(String, usize, String, String)>,
    /// State mismatches the reference's client has too (`inherited`).
    inherited: usize,
    /// Steps that differ only by the documented V8 / P1 blocks.
    documented: usize,
    /// Every finding, one JSON object per line.
    findings: String,
}

impl Totals {
    fn add(&mut self, r: &VectorReport) {
        self.vectors += 1;
        self.record(r);
        if !r.reflection.is_empty() {
            self.reflection
                .push(format!("{}: {}", r.name, r.reflection.join("; ")));
        }
        if let Some(e) = &r.harness_error {
            self.harness.push(format!("{}: {e}", r.name));
        }
        for s in &r.steps {
            if s.step == 0 {
                // The initial step has no ops: counted apart from the random steps.
                self.add_state_errors(r, s);
                continue;
            }
            self.steps += 1;
            if s.diffs.is_empty() && s.excused.is_empty() && s.documented.is_empty() {
                self.identical += 1;
            }
            if let Some(why) = s.one_parent {
                let e = self.one_parent.entry(why.describe()).or_default();
                e.0 += 1;
                e.1 += usize::from(s.excused.is_empty());
            } else if s.gap.is_some() {
                self.gap += 1;
            } else {
                self.reference_inconsistent += usize::from(!s.reference_inconsistent.is_empty());
                if s.compared > 0 {
                    self.compared += 1;
                    let clean = s.diffs.is_empty();
                    self.compared_identical += usize::from(clean && s.documented.is_empty());
                    self.documented += usize::from(clean && !s.documented.is_empty());
                }
            }
            for kind in s.op_kinds() {
                let e = self.by_op.entry(kind).or_default();
                e.0 += 1;
                e.1 += usize::from(!s.diffs.is_empty());
            }
            let mut parts_seen = Vec::new();
            for d in &s.diffs {
                let part = d.part.kind().to_owned();
                if parts_seen.contains(&part) {
                    continue;
                }
                parts_seen.push(part.clone());
                *self.by_part.entry(part.clone()).or_default() += 1;
                let ops = if s.ops.is_empty() {
                    "(no op)".to_owned()
                } else {
                    s.op_kinds().join(" + ")
                };
                self.by_category
                    .entry((part.clone(), ops))
                    .or_default()
                    .add(&r.name, s, d);
                let byte = |hex: &str| {
                    hex.get(d.offset * 2..d.offset * 2 + 2)
                        .unwrap_or("(end)")
                        .to_owned()
                };
                self.by_byte
                    .entry((
                        part,
                        format!("ours {} want {}", byte(&d.ours), byte(&d.want)),
                    ))
                    .or_default()
                    .add(&r.name, s, d);
            }
            self.add_state_errors(r, s);
        }
    }

    /// Appends the report's findings to `findings` (JSON lines).
    fn record(&mut self, r: &VectorReport) {
        let mut line = |v: serde_json::Value| {
            self.findings.push_str(&v.to_string());
            self.findings.push('\n');
        };
        for e in &r.reflection {
            line(json!({"vector": r.name, "kind": "reflection", "error": e}));
        }
        if let Some(e) = &r.harness_error {
            line(json!({"vector": r.name, "kind": "harness", "error": e}));
        }
        for s in &r.steps {
            let base = json!({
                "vector": r.name,
                "step": s.step,
                "ops": s.ops,
                "view": r.views,
                "oneParent": s.one_parent.map(|o| o.describe()),
                "referenceInconsistent": s.reference_inconsistent,
            });
            let bytes = s.diffs.iter().map(|d| ("bytes", d));
            for (kind, d) in bytes.chain(s.documented.iter().map(|d| ("documented", d))) {
                let mut v = base.clone();
                v["kind"] = json!(kind);
                v["part"] = json!(format!("{:?}", d.part));
                v["offset"] = json!(d.offset);
                v["ours"] = json!(d.ours);
                v["want"] = json!(d.want);
                line(v);
            }
            let states = s.state_errors.iter().map(|e| ("state", e));
            for (kind, e) in states.chain(s.inherited.iter().map(|e| ("inherited", e))) {
                let mut v = base.clone();
                v["kind"] = json!(kind);
                v["error"] = json!(e);
                line(v);
            }
        }
    }

    fn add_state_errors(&mut self, r: &VectorReport, s: &StepReport) {
        self.inherited += s.inherited.len();
        for e in &s.state_errors {
            self.states
                .push((r.name.clone(), s.step, describe_ops(&s.ops), e.clone()));
        }
    }

    fn report(&self, strict: bool) -> String {
        let mut out = String::new();
        let pct = |a: usize, b: usize| {
            if b == 0 {
                0.0
            } else {
                100.0 * a as f64 / b as f64
            }
        };
        let _ = writeln!(
            out,
            "{} vectors, {} random steps: {} ({:.1} %) with every byte identical to the reference's",
            self.vectors,
            self.steps,
            self.identical,
            pct(self.identical, self.steps)
        );
        let _ = writeln!(
            out,
            "  compared byte for byte: {} steps, {} identical ({:.1} %), {} with differences",
            self.compared,
            self.compared_identical,
            pct(self.compared_identical, self.compared),
            self.compared - self.compared_identical - self.documented
        );
        let _ = writeln!(
            out,
            "  and {} steps that differ only by blocks for refIds the reference's own client does not know (its decoder warns and skips them: V8 in view patches, P1 in the shared patch)",
            self.documented
        );
        for (why, (n, same)) in &self.one_parent {
            let _ = writeln!(
                out,
                "  checked by state only ({why}): {n} steps ({same} identical anyway)"
            );
        }
        if self.reference_inconsistent > 0 {
            let _ = writeln!(
                out,
                "  the reference disagrees with itself (`divergent`, or its view patches do not give its view full state): {} steps, those parts not compared",
                self.reference_inconsistent
            );
        }
        if self.gap > 0 {
            let _ = writeln!(out, "  known gaps: {} steps", self.gap);
        }
        let _ = writeln!(out, "\nsteps with byte differences, by part:");
        for (part, n) in &self.by_part {
            let _ = writeln!(out, "  {n:6}  {part}");
        }
        for (title, table) in [
            ("by part and op kinds in the step", &self.by_category),
            ("by part and first differing byte", &self.by_byte),
        ] {
            let _ = writeln!(
                out,
                "\nsteps with byte differences, {title} (smallest example):"
            );
            let mut cats: Vec<_> = table.iter().collect();
            cats.sort_by(|a, b| b.1.steps.cmp(&a.1.steps).then(a.0.cmp(b.0)));
            for ((part, what), c) in cats {
                let _ = writeln!(out, "  {:6}  {part}: {what}", c.steps);
                if let Some((_, _, vector, step, d, text)) = &c.example {
                    let _ = writeln!(out, "          e.g. {vector}[{step}]: {text}");
                    let _ = writeln!(
                        out,
                        "          first difference at byte {}: ours {} want {}",
                        d.offset,
                        excerpt(&d.ours, d.offset),
                        excerpt(&d.want, d.offset)
                    );
                }
            }
        }
        let _ = writeln!(
            out,
            "\nby op kind (steps holding it, of which with byte differences):"
        );
        for (op, (n, bad)) in &self.by_op {
            let _ = writeln!(out, "  {op:22} {n:6} {bad:6} ({:.1} %)", pct(*bad, *n));
        }
        let _ = writeln!(
            out,
            "\nreflection / type id differences: {}",
            self.reflection.len()
        );
        for r in self.reflection.iter().take(5) {
            let _ = writeln!(out, "  {r}");
        }
        let _ = writeln!(out, "\ndecoded-state mismatches: {}", self.states.len());
        if self.inherited > 0 {
            let _ = writeln!(
                out,
                "  and {} where the reference's client is in the same state as ours (its own patches and full state disagree the same way; not counted)",
                self.inherited
            );
        }
        for (v, i, ops, e) in self.states.iter().take(20) {
            let _ = writeln!(out, "  {v}[{i}] ops {ops}\n    {e}");
        }
        let _ = writeln!(out, "\nharness errors: {}", self.harness.len());
        for h in self.harness.iter().take(20) {
            let _ = writeln!(out, "  {h}");
        }
        if !strict {
            let _ = writeln!(
                out,
                "\n(byte differences do not fail this test; ROOMCAST_RANDOM_STRICT=1 makes them)"
            );
        }
        out
    }
}

/// What the default set (seed 1, 20,000 steps of 25 per scenario, views
/// 0.25) still gets wrong: (decoded-state mismatches, compared steps whose
/// bytes differ). Measured with this commit's encoder; lower them when a
/// fix lands, never raise them to make a change pass.
const DEFAULT_SET_BUDGET: (usize, usize) = (15, 26);

#[test]
fn random_vectors_replay() {
    let seed = std::env::var("ROOMCAST_RANDOM_SEED").unwrap_or_else(|_| "1".to_owned());
    let total = env_number("ROOMCAST_RANDOM_STEPS", 20_000);
    let per = env_number("ROOMCAST_RANDOM_SCENARIO_STEPS", 25).max(1);
    let strict = env_flag("ROOMCAST_RANDOM_STRICT");
    let scenarios = total.div_ceil(per);
    let tmp = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));

    let given = std::env::var_os("ROOMCAST_RANDOM_DIR").map(PathBuf::from);
    let dir = given
        .clone()
        .unwrap_or_else(|| tmp.join(format!("random-vectors-{seed}-{scenarios}x{per}")));
    let mut header = String::new();
    if given.is_none() {
        let _ = std::fs::remove_dir_all(&dir);
        let views = std::env::var("ROOMCAST_RANDOM_VIEWS").unwrap_or_else(|_| "0.25".to_owned());
        let (summary, secs) = generate(&seed, scenarios, per, &views, &dir);
        let _ = writeln!(
            header,
            "generated seed {seed}: {scenarios} scenarios x {per} steps in {secs:.1} s ({:.0} ms per 1,000 steps) into {}",
            secs * 1e6 / total as f64,
            dir.display()
        );
        let _ = writeln!(header, "generator: {summary}");
    }

    let start = Instant::now();
    let gaps = known_gaps();
    let mut node = NodeDecoder::shared();
    let mut totals = Totals::default();
    for (name, v) in load_vectors(Some(&dir)) {
        totals.add(&check_vector(&mut node, &name, &v, &gaps));
    }
    let secs = start.elapsed().as_secs_f64();
    let _ = writeln!(
        header,
        "replayed in {secs:.1} s ({:.0} ms per 1,000 steps)",
        secs * 1e6 / totals.steps.max(1) as f64
    );
    let report = format!("{header}\n{}", totals.report(strict));
    eprintln!("{report}");
    let file = tmp.join(format!("random-vectors-{seed}-report.txt"));
    let _ = std::fs::write(&file, &report);
    let findings = tmp.join(format!("random-vectors-{seed}-findings.jsonl"));
    let _ = std::fs::write(&findings, &totals.findings);
    eprintln!(
        "(report written to {}, every finding to {})",
        file.display(),
        findings.display()
    );

    let default_set = given.is_none()
        && seed == "1"
        && total == 20_000
        && per == 25
        && std::env::var_os("ROOMCAST_RANDOM_VIEWS").is_none();
    let (max_states, max_bytes) = if default_set {
        DEFAULT_SET_BUDGET
    } else {
        (0, usize::MAX)
    };
    let max_states = env_number("ROOMCAST_RANDOM_MAX_STATES", max_states as u64) as usize;
    let byte_diffs = totals.compared - totals.compared_identical - totals.documented;
    let byte_failures = (strict && byte_diffs > 0) || byte_diffs > max_bytes;
    let state_failures = totals.states.len() > max_states;
    let failed = !totals.harness.is_empty() || state_failures || byte_failures;
    if given.is_none() && !failed && !env_flag("ROOMCAST_RANDOM_KEEP") {
        let _ = std::fs::remove_dir_all(&dir);
    }
    assert!(
        totals.harness.is_empty(),
        "{} vectors could not be replayed (set kept in {}):\n{}",
        totals.harness.len(),
        dir.display(),
        totals.harness.join("\n")
    );
    assert!(
        !state_failures,
        "{} decoded-state mismatches, {max_states} tolerated (set kept in {})",
        totals.states.len(),
        dir.display()
    );
    assert!(
        !byte_failures,
        "{byte_diffs} steps with byte differences, {} tolerated (set kept in {})",
        if strict { 0 } else { max_bytes },
        dir.display()
    );
}
