//! Replays every vector (schema, initial values, ops) on Roomcast's dynamic
//! state and compares the encoder's `patch`, `full` and `reflection` bytes
//! with the reference's; reads `ROOMCAST_VECTORS` when set.
//!
//! Steps listed in `tests/fixtures/encoder-known-gaps.txt` (instances shared
//! by two parents, which Rust ownership turns into copies; StateView) are
//! not compared byte for byte; every step's decoded state is compared instead,
//! with the real `@colyseus/schema` decoder.

use std::collections::BTreeMap;
use std::path::Path;

use roomcast_schema::{encode_reflection, Dialect};
use roomcast_tests::node::{from_hex, load_vectors, to_hex, NodeDecoder, SchemaVersion};
use roomcast_tests::replay::Replay;
use serde_json::Value;

/// How a known-gap step is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Gap {
    Bytes,
    Shared,
    /// View steps where the reference's patch stream disagrees with its own
    /// full state: checked by state (stream = fresh full, real decoder).
    State,
}

fn known_gaps() -> BTreeMap<(String, usize), Gap> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/encoder-known-gaps.txt");
    let text = std::fs::read_to_string(path).expect("known gaps file");
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            let mut parts = l.split_whitespace();
            let file = parts.next().expect("file").to_owned();
            let step = parts.next().expect("step").parse().expect("step number");
            let kind = match parts.next() {
                Some("bytes") => Gap::Bytes,
                Some("shared") => Gap::Shared,
                Some("state") => Gap::State,
                other => panic!("bad gap kind {other:?}"),
            };
            ((file, step), kind)
        })
        .collect()
}

#[test]
fn reflection_bytes_match_every_vector() {
    for (name, v) in load_vectors(None) {
        let types = roomcast_tests::replay::registry(&v["schema"]);
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

#[test]
fn patches_and_full_states_match_every_vector() {
    let gaps = known_gaps();
    let mut node = NodeDecoder::shared();
    let mut mismatches = Vec::new();
    let mut compared = 0;
    for (name, v) in load_vectors(None) {
        if v.get("views").is_some() {
            // Checked by `view_patches_and_full_states_match_every_view_vector`.
            continue;
        }
        let reflection = from_hex(v["reflection"].as_str().expect("reflection")).expect("hex");
        let stream = node.open(&reflection, SchemaVersion::V5);
        let mut replay = Replay::new(&v);
        for (i, step) in v["steps"].as_array().expect("steps").iter().enumerate() {
            for op in step["ops"].as_array().expect("ops") {
                replay.apply(op);
            }
            let before = step
                .get("fullBeforePatch")
                .and_then(Value::as_str)
                .map(|_| to_hex(replay.encoder.encode_all()));
            let patch = replay.encoder.encode_patch().to_vec();
            let full = replay.encoder.encode_all().to_vec();
            let gap = gaps.get(&(name.clone(), i)).copied();
            if gap.is_none() {
                compared += 1;
                let want = |k: &str| step[k].as_str().unwrap_or_default().to_owned();
                if to_hex(&patch) != want("patch") {
                    mismatches.push(format!(
                        "{name}[{i}] {}: patch {} want {}",
                        step["name"],
                        to_hex(&patch),
                        want("patch")
                    ));
                }
                if to_hex(&full) != want("full") {
                    mismatches.push(format!(
                        "{name}[{i}] {}: full {} want {}",
                        step["name"],
                        to_hex(&full),
                        want("full")
                    ));
                }
                if let Some(before) = before {
                    if before != want("fullBeforePatch") {
                        mismatches.push(format!("{name}[{i}]: fullBeforePatch {before}"));
                    }
                }
            }
            // The state a client following our patches holds, and the one a
            // client joining now gets, per the real decoder.
            let joiner = node.open(&reflection, SchemaVersion::V5);
            let joined = node.decode(&joiner, &full).expect("full decodes");
            node.close(joiner);
            let expected = if gap == Some(Gap::Shared) {
                // Unreachable with one parent per instance: hold our own
                // stream to our own full state instead.
                joined.state.clone()
            } else if step.get("divergent").and_then(Value::as_bool) == Some(true) {
                step["fullState"].clone()
            } else {
                step["state"].clone()
            };
            if !patch.is_empty() {
                let got = node.decode(&stream, &patch).expect("patch decodes");
                if got.state != expected || !got.warnings.is_empty() {
                    mismatches.push(format!(
                        "{name}[{i}]: patch stream state {} warnings {:?}",
                        got.state, got.warnings
                    ));
                }
            }
            if joined.state != expected || !joined.warnings.is_empty() {
                mismatches.push(format!("{name}[{i}]: full state {}", joined.state));
            }
        }
        node.close(stream);
    }
    assert!(
        compared > 150,
        "only {compared} steps compared byte for byte"
    );
    assert!(
        mismatches.is_empty(),
        "{} mismatches:\n{}",
        mismatches.len(),
        mismatches.join("\n")
    );
}

/// Per-client bytes of the StateView vectors: shared patch + view part,
/// full + view part. Known-gap steps (kind `state`) are checked by state:
/// a client following our view patches holds what a fresh client decoding
/// our view full holds (real decoder).
#[test]
fn view_patches_and_full_states_match_every_view_vector() {
    let gaps = known_gaps();
    let mut node = NodeDecoder::shared();
    let mut mismatches = Vec::new();
    let mut compared = 0;
    for (name, v) in load_vectors(None) {
        let Some(names) = v.get("views").and_then(Value::as_array) else {
            continue;
        };
        let reflection = from_hex(v["reflection"].as_str().expect("reflection")).expect("hex");
        let mut replay = Replay::new(&v);
        let streams: Vec<_> = names
            .iter()
            .map(|_| node.open(&reflection, SchemaVersion::V5))
            .collect();
        for (i, step) in v["steps"].as_array().expect("steps").iter().enumerate() {
            for op in step["ops"].as_array().expect("ops") {
                replay.apply(op);
            }
            let shared = replay.encoder.encode_patch().to_vec();
            let patches: Vec<Vec<u8>> = replay
                .views
                .iter()
                .map(|(_, id)| [shared.as_slice(), replay.encoder.view_patch(*id)].concat())
                .collect();
            let full = replay.encoder.encode_all().to_vec();
            let views: Vec<_> = replay.views.iter().map(|(_, id)| *id).collect();
            let fulls: Vec<Vec<u8>> = views
                .iter()
                .map(|id| [full.as_slice(), replay.encoder.encode_all_view(*id)].concat())
                .collect();
            let gap = gaps.get(&(name.clone(), i)).copied();
            if to_hex(&shared) != step["patch"].as_str().unwrap_or_default()
                || to_hex(&full) != step["full"].as_str().unwrap_or_default()
            {
                mismatches.push(format!(
                    "{name}[{i}]: shared {} / {}",
                    to_hex(&shared),
                    to_hex(&full)
                ));
            }
            for (k, view) in names.iter().enumerate() {
                let view = view.as_str().expect("view name");
                let want_patch = step["viewPatches"][view].as_str().unwrap_or_default();
                let want_full = step["viewFulls"][view].as_str().unwrap_or_default();
                if gap == Some(Gap::Bytes) && to_hex(&fulls[k]) != want_full {
                    // Only the patch differs there.
                    mismatches.push(format!(
                        "{name}[{i}] {view}: full {} want {want_full}",
                        to_hex(&fulls[k])
                    ));
                }
                if gap.is_none() {
                    compared += 1;
                    if to_hex(&patches[k]) != want_patch {
                        mismatches.push(format!(
                            "{name}[{i}] {view}: patch {} want {want_patch}",
                            to_hex(&patches[k])
                        ));
                    }
                    if to_hex(&fulls[k]) != want_full {
                        mismatches.push(format!(
                            "{name}[{i}] {view}: full {} want {want_full}",
                            to_hex(&fulls[k])
                        ));
                    }
                }
                let joiner = node.open(&reflection, SchemaVersion::V5);
                let joined = node.decode(&joiner, &fulls[k]).expect("full decodes");
                node.close(joiner);
                let streamed = if patches[k].is_empty() {
                    None
                } else {
                    Some(
                        node.decode(&streams[k], &patches[k])
                            .expect("patch decodes"),
                    )
                };
                if let Some(s) = &streamed {
                    if !s.warnings.is_empty() {
                        mismatches.push(format!("{name}[{i}] {view}: warnings {:?}", s.warnings));
                    }
                }
                let state = match streamed {
                    Some(s) => s.state,
                    None => node.state(&streams[k]).expect("state"),
                };
                if state != joined.state || !joined.warnings.is_empty() {
                    mismatches.push(format!(
                        "{name}[{i}] {view}: stream {state} != full {}",
                        joined.state
                    ));
                }
                if gap != Some(Gap::State) && joined.state != step["viewStates"][view] {
                    mismatches.push(format!("{name}[{i}] {view}: full state {}", joined.state));
                }
            }
        }
        for s in streams {
            node.close(s);
        }
    }
    assert!(
        compared > 40,
        "only {compared} view steps compared byte for byte"
    );
    assert!(
        mismatches.is_empty(),
        "{} mismatches:\n{}",
        mismatches.len(),
        mismatches.join("\n")
    );
}
