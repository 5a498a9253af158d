//! The load test against the Node reference server, `@colyseus/core`
//! 0.18.17 (`tests/node-echo-room.mjs`), started on a free loopback port.
//! It needs Node.js 20+ and the npm packages of `tests/node`, installed by
//! `ensure_npm_install` as for every interop test (`.ci/run` runs `npm ci`
//! first).

use std::time::Duration;

use roomcast_loadtest::{DefaultScript, LoadTest};
use roomcast_tests::node::NodeServer;

fn start_node() -> NodeServer {
    NodeServer::start(include_str!("node-echo-room.mjs"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn against_the_node_reference_server() {
    let node = tokio::task::block_in_place(start_node);
    let endpoint = format!("http://127.0.0.1:{}", node.port);
    let summary = LoadTest::new(&endpoint, "echo")
        .clients(3)
        .duration(Duration::from_secs(2))
        .default_script(DefaultScript {
            message_type: "echo".into(),
            payload: serde_json::json!({ "n": 1 }),
            send_interval: Some(Duration::from_millis(100)),
            ping_interval: Some(Duration::from_millis(200)),
        })
        .server_pid(Some(node.pid()))
        .run()
        .await
        .unwrap();
    let json = serde_json::to_string_pretty(&summary).unwrap();
    assert_eq!(summary.joins.succeeded, 3, "{json}");
    assert!(summary.traffic.messages_sent > 0, "{json}");
    assert!(summary.traffic.messages_received > 0, "{json}");
    assert_eq!(summary.error_count, 0, "{json}");
    assert!(
        summary.server.as_ref().is_some_and(|s| s.error.is_none()),
        "{json}"
    );

    let wrong = LoadTest::new(&endpoint, "no-such-room")
        .clients(2)
        .duration(Duration::from_secs(1))
        .run()
        .await
        .unwrap();
    let json = serde_json::to_string_pretty(&wrong).unwrap();
    assert_eq!(wrong.joins.failed, 2, "{json}");
    assert_eq!(wrong.errors.len(), 1, "{json}");
    assert_eq!(wrong.errors[0].phase, "join", "{json}");
    // The reference answers an unknown room name with 520 as well.
    assert_eq!(wrong.errors[0].code, "520", "{json}");
}
