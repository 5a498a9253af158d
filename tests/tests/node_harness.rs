//! Proves the Node.js interop harness itself: the real `@colyseus/schema`
//! decoders, driven through `decode-server.mjs` from Reflection bytes only,
//! reproduce every reference vector's decoded states.

use roomcast_tests::node::{from_hex, load_vectors, Decoded, NodeDecoder, SchemaVersion};
use serde_json::{json, Value};

fn hex_field(v: &Value, key: &str) -> Vec<u8> {
    let s = v[key]
        .as_str()
        .unwrap_or_else(|| panic!("missing hex field {key}"));
    from_hex(s).unwrap_or_else(|e| panic!("bad hex in {key}: {e}"))
}

fn steps(vector: &Value) -> &[Value] {
    vector["steps"].as_array().expect("steps array")
}

fn is_view_scenario(vector: &Value) -> bool {
    vector.get("views").is_some()
}

/// The state a fresh client must hold after decoding a step's `full`.
fn expected_full_state(step: &Value) -> &Value {
    if step["divergent"] == json!(true) {
        &step["fullState"]
    } else {
        &step["state"]
    }
}

fn decode_ok(
    node: &mut NodeDecoder,
    session: &roomcast_tests::node::Session,
    bytes: &[u8],
    what: &str,
) -> Decoded {
    node.decode(session, bytes)
        .unwrap_or_else(|e| panic!("{what}: decoder threw: {e}"))
}

#[test]
fn vectors_are_present() {
    let vectors = load_vectors(None);
    assert_eq!(
        vectors.len(),
        43,
        "expected the 43 vectors (33 + 6 StateView scenarios + 4 of issue 15)"
    );
}

#[test]
fn full_state_of_every_step_decodes_to_state() {
    let mut node = NodeDecoder::shared();
    let mut checked = 0;
    for (name, vector) in load_vectors(None) {
        let reflection = hex_field(&vector, "reflection");
        for (i, step) in steps(&vector).iter().enumerate() {
            let what = format!("{name} step {i} full");
            let session = node.open(&reflection, SchemaVersion::V5);
            if is_view_scenario(&vector) {
                // `state` is the server state there; each view's full sync
                // must decode to its `viewStates` entry.
                node.close(session);
                for (view, bytes) in step["viewFulls"].as_object().expect("viewFulls") {
                    let session = node.open(&reflection, SchemaVersion::V5);
                    let bytes = from_hex(bytes.as_str().expect("hex")).expect("hex");
                    let decoded = decode_ok(&mut node, &session, &bytes, &what);
                    assert_eq!(
                        decoded.state, step["viewStates"][view],
                        "{what} view {view}"
                    );
                    assert!(
                        decoded.warnings.is_empty(),
                        "{what}: {:?}",
                        decoded.warnings
                    );
                    node.close(session);
                    checked += 1;
                }
                continue;
            }
            let decoded = decode_ok(&mut node, &session, &hex_field(step, "full"), &what);
            assert_eq!(&decoded.state, expected_full_state(step), "{what}");
            assert!(
                decoded.warnings.is_empty(),
                "{what}: {:?}",
                decoded.warnings
            );
            node.close(session);
            checked += 1;
        }
    }
    assert!(checked > 100, "only {checked} steps checked");
}

#[test]
fn patch_stream_of_every_vector_decodes_to_state() {
    let mut node = NodeDecoder::shared();
    for (name, vector) in load_vectors(None) {
        if is_view_scenario(&vector) {
            continue;
        }
        let session = node.open(&hex_field(&vector, "reflection"), SchemaVersion::V5);
        for (i, step) in steps(&vector).iter().enumerate() {
            let what = format!("{name} step {i} patch");
            let decoded = decode_ok(&mut node, &session, &hex_field(step, "patch"), &what);
            assert_eq!(decoded.state, step["state"], "{what}");
        }
        node.close(session);
    }
}

#[test]
fn join_mid_tick_reproduces_the_duplicate() {
    let mut node = NodeDecoder::shared();
    let vectors = load_vectors(None);
    let (_, vector) = vectors
        .iter()
        .find(|(n, _)| n == "join_mid_tick")
        .expect("join_mid_tick vector");
    let reflection = hex_field(vector, "reflection");
    for step in steps(vector)
        .iter()
        .filter(|s| s.get("fullBeforePatch").is_some())
    {
        let session = node.open(&reflection, SchemaVersion::V5);
        decode_ok(
            &mut node,
            &session,
            &hex_field(step, "fullBeforePatch"),
            "fullBeforePatch",
        );
        let decoded = decode_ok(&mut node, &session, &hex_field(step, "patch"), "patch");
        assert_eq!(decoded.state, step["stateAfterFullBeforePatchThenPatch"]);
        node.close(session);
    }
}

#[test]
fn schema3_decodes_vectors_without_primitive_collections() {
    let mut node = NodeDecoder::shared();
    let vectors = load_vectors(None);
    let (_, vector) = vectors
        .iter()
        .find(|(n, _)| n == "nested_3_deep")
        .expect("nested_3_deep vector");
    let session = node.open(&hex_field(vector, "reflection"), SchemaVersion::V3);
    for (i, step) in steps(vector).iter().enumerate() {
        let decoded = decode_ok(&mut node, &session, &hex_field(step, "patch"), "v3 patch");
        assert_eq!(
            decoded.state, step["state"],
            "nested_3_deep step {i} (schema 3)"
        );
    }
    node.close(session);
}

#[test]
fn schema3_rejects_5x_reflection_of_primitive_collections() {
    // schema-wire.md §14: a 3.x client cannot decode 5.x Reflection that
    // contains a collection of primitives (ReflectionField 3 is unknown).
    let mut node = NodeDecoder::shared();
    let vectors = load_vectors(None);
    let (_, vector) = vectors
        .iter()
        .find(|(n, _)| n == "set_of_primitives")
        .expect("set_of_primitives vector");
    let reflection = hex_field(vector, "reflection");
    assert!(node.try_open(&reflection, SchemaVersion::V3).is_err());
    let session = node.open(&reflection, SchemaVersion::V5);
    node.close(session);
}

#[test]
fn warnings_and_errors_are_reported() {
    let mut node = NodeDecoder::shared();
    let vectors = load_vectors(None);
    let (_, vector) = vectors
        .iter()
        .find(|(n, _)| n == "prim_number")
        .expect("prim_number vector");
    let session = node.open(&hex_field(vector, "reflection"), SchemaVersion::V5);
    // Switch to an unknown refId: the reference decoder logs and carries on.
    let decoded = decode_ok(&mut node, &session, &[0xff, 0x63], "unknown refId");
    assert_eq!(decoded.state, json!({}));
    assert!(
        decoded.warnings.iter().any(|w| w.contains("refId")),
        "expected a refId warning, got {:?}",
        decoded.warnings
    );
    // The session keeps working afterwards.
    let decoded = decode_ok(&mut node, &session, &[0x80, 0x05], "field 0 = 5");
    assert_eq!(decoded.state, json!({"n": 5}));
    node.close(session);
    // Unknown sessions are errors, and the server survives them.
    let gone = node.open(&hex_field(vector, "reflection"), SchemaVersion::V5);
    let gone_id = gone.id().to_owned();
    node.close(gone);
    let err = node
        .request(json!({"cmd": "decode", "session": gone_id, "bytes": ""}))
        .expect_err("closed session must be unknown");
    assert!(err.contains("unknown session"), "{err}");
    let versions = node.versions().expect("ping");
    assert_eq!(versions, json!({"5": "5.0.34", "3": "3.0.76"}));
}
