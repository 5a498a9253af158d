//! End-to-end tests: the real `@colyseus/sdk` 0.18.4 and `colyseus.js`
//! 0.16.22 (from `tests/node/node_modules`) against a Roomcast server on
//! 127.0.0.1. Each test runs one script of `tests/node/sdk/`.

mod common;

use std::time::Duration;

use common::e2e::run_script;

const TIMEOUT: Duration = Duration::from_secs(60);

#[test]
fn matchmaking_and_state_modern() {
    run_script("matchmaking.mjs", TIMEOUT);
}
