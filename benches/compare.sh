#!/usr/bin/env bash
# Side-by-side comparison of Roomcast's encoder with @colyseus/schema 5.0.34
# (scenarios S1-S5, V1, V2, J1, byte identity, memory under churn), in one run.
# Options are those of benches/src/bin/compare.rs:
#   benches/compare.sh [--quick] [--only S1,S4] [--no-reference] [--no-bytes] [--no-memory]
# Needs Node.js 20+ and npm (tests/node is installed with `npm ci` if needed).
set -euo pipefail
cd "$(dirname "$0")/.."
exec cargo run --release --quiet -p roomcast-benches --bin compare -- "$@"
