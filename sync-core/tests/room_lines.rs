//! "A lighter hand" (issue 17): a room is at most 1.5 times the lines of its
//! Node twin on @colyseus/core 0.18. Counts the non-blank lines that are
//! not comments of each Rust room and its twin, prints the ratios (`cargo
//! test -p roomcast --test room_lines -- --nocapture`) and fails past the
//! bound. Both sides are formatted as their projects format code (rustfmt
//! here, the twins by hand in the style of the Colyseus examples).

use std::path::Path;

/// The most lines a Rust room may have per line of its Node twin.
const BOUND: f64 = 1.5;

/// Lines that are neither blank nor comments (`//…`, `/* … */` blocks
/// starting a line), the same rule for Rust and JavaScript.
fn code_lines(source: &str) -> usize {
    let mut in_block = false;
    source
        .lines()
        .map(str::trim)
        .filter(|line| {
            if in_block {
                in_block = !line.contains("*/");
                return false;
            }
            if line.starts_with("/*") {
                in_block = !line.contains("*/");
                return false;
            }
            !line.is_empty() && !line.starts_with("//")
        })
        .count()
}

fn lines_of(path: &str) -> usize {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(path);
    let source = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    code_lines(&source)
}

/// Prints and returns the ratio of a pair.
fn ratio(name: &str, rust: &str, node: &str) -> f64 {
    let (r, n) = (lines_of(rust), lines_of(node));
    let ratio = r as f64 / n as f64;
    println!("{name}: Rust {r} lines, Node {n} lines, {ratio:.2}x");
    ratio
}

#[test]
fn the_counting_skips_blank_lines_and_comments() {
    let source = "// a\n\nfn f() {\n    /* b\n c */\n    g(); // h\n}\n/// doc\n";
    assert_eq!(code_lines(source), 3);
}

#[test]
fn the_tictactoe_example_is_at_most_one_and_a_half_times_its_node_twin() {
    let r = ratio(
        "tic-tac-toe",
        "examples/rooms/tictactoe.rs",
        "../tests/node/rooms/tictactoe.mjs",
    );
    assert!(r <= BOUND, "tic-tac-toe: {r:.2}x");
}

#[test]
fn the_chat_example_is_at_most_one_and_a_half_times_its_node_twin() {
    let r = ratio(
        "chat",
        "examples/rooms/chat.rs",
        "../tests/node/rooms/chat.mjs",
    );
    assert!(r <= BOUND, "chat: {r:.2}x");
}

#[test]
fn the_demo_room_is_at_most_one_and_a_half_times_its_node_twin() {
    let r = ratio(
        "demo",
        "src/bin/roomcast-demo/room.rs",
        "../tests/node/rooms/demo.mjs",
    );
    assert!(r <= BOUND, "demo: {r:.2}x");
}
