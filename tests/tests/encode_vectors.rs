//! Replays every vector (schema, initial values, ops) on Roomcast's dynamic
//! state and compares the encoder's `patch`, `full` and `reflection` bytes
//! with the reference's; reads `ROOMCAST_VECTORS` when set (any set in the
//! vectors' format: ours, a generated one, another).
//!
//! Not compared byte for byte, but checked by decoded state (the real
//! `@colyseus/schema` decoder, patch stream and full state): steps where the
//! reference holds one instance under two parents or places an existing
//! instance again, found from the ops (`replay::OneParent`), and the steps
//! of `tests/fixtures/encoder-known-gaps.txt` (StateView steps where the
//! reference's own patches and full state disagree, a few byte differences
//! on purpose).

use std::collections::BTreeMap;

use roomcast_schema::{encode_reflection, Dialect};
use roomcast_tests::node::{to_hex, NodeDecoder};
use roomcast_tests::replay::{
    check_vector, describe_ops, is_fixture_set, known_gaps, load_vectors, registry, VectorReport,
};
use serde_json::Value;

#[test]
fn reflection_bytes_match_every_vector() {
    for (name, v) in load_vectors(None) {
        let types = registry(&v["schema"]);
        for (ty, id) in v["typeIds"].as_object().expect("typeIds") {
            assert_eq!(
                types.by_name(ty).map(|t| u64::from(t.0)),
                id.as_u64(),
                "{name}: type id of {ty}"
            );
        }
        let ours = to_hex(&encode_reflection(&types, Dialect::Modern));
        assert_eq!(
            ours,
            v["reflection"].as_str().expect("reflection"),
            "{name}: reflection"
        );
    }
}

/// Every problem of a report: harness errors, byte differences outside the
/// excused steps, decoded-state mismatches.
fn problems(r: &VectorReport, out: &mut Vec<String>) {
    let name = &r.name;
    if let Some(e) = &r.harness_error {
        out.push(format!("{name}: cannot be replayed: {e}"));
    }
    for s in &r.steps {
        let i = s.step;
        for d in &s.diffs {
            out.push(format!(
                "{name}[{i}] {:?} ({}): {:?} differs at byte {}: ours {} want {}",
                s.name,
                describe_ops(&s.ops),
                d.part,
                d.offset,
                d.ours,
                d.want
            ));
        }
        for e in &s.state_errors {
            out.push(format!("{name}[{i}] {:?}: {e}", s.name));
        }
    }
}

fn check_all(views: bool) -> (usize, usize, Vec<String>) {
    let gaps = known_gaps();
    let mut node = NodeDecoder::shared();
    let mut problems_found = Vec::new();
    let (mut vectors, mut compared) = (0, 0);
    for (name, v) in load_vectors(None) {
        let is_view = v
            .get("views")
            .and_then(Value::as_array)
            .is_some_and(|a| !a.is_empty());
        if is_view != views {
            continue;
        }
        vectors += 1;
        let report = check_vector(&mut node, &name, &v, &gaps);
        compared += report
            .steps
            .iter()
            .filter(|s| s.one_parent.is_none() && s.gap.is_none())
            .map(|s| if views { s.compared / 2 } else { 1 })
            .sum::<usize>();
        problems(&report, &mut problems_found);
    }
    (vectors, compared, problems_found)
}

#[test]
fn patches_and_full_states_match_every_vector() {
    let (vectors, compared, problems) = check_all(false);
    if is_fixture_set(None) {
        assert!(
            compared > 150,
            "only {compared} steps compared byte for byte"
        );
    }
    eprintln!("{vectors} vectors, {compared} steps compared byte for byte");
    assert!(
        problems.is_empty(),
        "{} mismatches:\n{}",
        problems.len(),
        problems.join("\n")
    );
}

/// Per-client bytes of the StateView vectors: shared patch + view part,
/// full + view part, and the state each view's client decodes. A set
/// without StateView vectors has nothing to check here.
#[test]
fn view_patches_and_full_states_match_every_view_vector() {
    let (vectors, compared, problems) = check_all(true);
    if vectors == 0 {
        eprintln!("no StateView vector in this set: nothing to check");
        return;
    }
    if is_fixture_set(None) {
        assert!(
            compared > 40,
            "only {compared} view steps compared byte for byte"
        );
    }
    eprintln!("{vectors} StateView vectors, {compared} view steps compared byte for byte");
    assert!(
        problems.is_empty(),
        "{} mismatches:\n{}",
        problems.len(),
        problems.join("\n")
    );
}

/// The one-parent rule is found from the ops: in our vectors, the steps
/// that place an existing instance again or hold one under two parents.
#[test]
fn one_parent_steps_are_found_from_the_ops() {
    if !is_fixture_set(None) {
        return;
    }
    let gaps = known_gaps();
    let mut node = NodeDecoder::shared();
    let mut found: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for (name, v) in load_vectors(None) {
        let report = check_vector(&mut node, &name, &v, &gaps);
        for s in report.steps.iter().filter(|s| s.one_parent.is_some()) {
            found.entry(name.clone()).or_default().push(s.step);
        }
    }
    for (name, steps) in [
        ("move_child_between_maps", &[1, 2, 3, 4][..]),
        ("child_replace_and_readd", &[2, 3, 4, 6, 8][..]),
        ("map_of_schemas", &[5][..]),
        ("array_move_schema_between_arrays", &[1, 2, 3][..]),
    ] {
        let got = found.get(name).cloned().unwrap_or_default();
        for s in steps {
            assert!(got.contains(s), "{name} step {s} not found: {got:?}");
        }
    }
}
