//! Roomcast demo server (work in progress).

fn main() {}
