//! trybuild UI tests: one file per rule of `#[derive(Schema)]`'s checks
//! (and of `#[roomcast::room]`'s, `room_*.rs`), each with the exact
//! compiler error users see.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/*.rs");
}
