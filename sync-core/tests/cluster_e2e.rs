//! End-to-end tests of a cluster: 3 processes of the demo binary
//! (`roomcast-demo` with `ROOMCAST_REDIS`) sharing one real `redis-server`,
//! driven by the real `@colyseus/sdk` 0.18.4 and `colyseus.js` 0.16.22
//! through the scripts `tests/node/sdk/cluster*.mjs`. Each test starts its
//! own Redis and processes on free ports and stops them.

mod common;

use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use common::cluster::Cluster;

/// Generous: a debug build on a shared 2-core machine.
const TIMEOUT: Duration = Duration::from_secs(240);

/// One cluster at a time: each test runs 3 servers, a Redis and up to
/// 600 clients, and the machine has 2 cores.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn run(script: &str, extra: &[&str]) {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(PoisonError::into_inner);
    let mut cluster = Cluster::start(3);
    cluster.run_script(script, extra, TIMEOUT);
}

/// A client matchmaking through process A lands in a room held by process
/// B (`joinOrCreate` and `joinById`; B is wherever the cluster made the
/// room, A and C the others): same room id, both players in every
/// client's state, the seat reservation names B (`processId`,
/// `publicAddress` = B's address) and the WebSocket goes to B; every
/// process lists every public room (`GET /matchmake/<name>`) with its
/// holder and client count; errors are the same through every process.
#[test]
fn matchmaking_across_processes() {
    run("cluster_matchmaking.mjs", &[]);
}

/// `colyseus.js` 0.16 through the legacy endpoint (`/legacy`) of process A
/// joins (`joinById`, `joinOrCreate`) rooms held by process B, beside 0.18
/// clients: state, messages both ways, the 0.16 error codes through every
/// process. (colyseus.js 0.16 connects to `ws://<publicAddress>/<processId>/<roomId>`
/// and adds no endpoint path to a publicAddress.)
#[test]
fn legacy_client_across_processes() {
    run("cluster_legacy.mjs", &[]);
}

/// 600 concurrent `joinOrCreate("battle", {mode: "m" + i % 3})`, each mode
/// through every process: exactly ceil(200 / 10) = 20 rooms per mode, none
/// over 10 clients, one mode and one holder per room, some seats crossing
/// processes, every client's state listing exactly the session ids that
/// got its room, and the listings of every process agreeing. Prints a
/// summary (rooms per mode and process, join latency).
#[test]
fn burst_of_600_joins_over_three_processes() {
    run("cluster_burst.mjs", &["600"]);
}

/// A client matchmade through A into a `world` room held by B (which keeps
/// a dropped player for 10 s) comes back after its socket dropped: by the
/// 0.18 SDK's automatic reconnection (straight to B), and by
/// `client.reconnect(token)` through B, through C (which does not hold the
/// room) and through A: same session, same room, on B, with its state.
#[test]
fn reconnection_across_processes() {
    run("cluster_reconnect.mjs", &[]);
}

/// `kill -9` of one process mid-run (the holder of one of three `world`
/// rooms made through the three processes): its clients see their room
/// end; the other processes' rooms and clients carry on (one client had
/// matchmade through the dead process); matchmaking through the survivors
/// works and never sends a client to the dead process; the dead process's
/// rooms (`world` with clients, `filler` without) leave the survivors'
/// listings within 10 s of the kill, and `joinById` into one answers 522.
#[test]
fn killed_process_leaves_the_cluster() {
    run("cluster_kill.mjs", &[]);
}

/// A Redis restart (stopped, then an empty one on the same port): running
/// rooms keep syncing and relaying messages; while Redis is down,
/// `joinOrCreate` and `GET /matchmake/<name>` answer an error (status ≥
/// 500) within 10 s on every process; once it is back, matchmaking works
/// through every process within 20 s, the listings come back with the
/// rooms of before (client counts included), and those rooms can be
/// joined by id again.
#[test]
fn redis_restart() {
    run("cluster_redis_restart.mjs", &[]);
}
