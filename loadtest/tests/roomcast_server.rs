//! The load test against a Roomcast server served in-process on a free
//! loopback port: a few clients for a couple of seconds. No assertion on
//! timings: only on the summary's structure and on what must have happened.

use std::time::{Duration, Instant};

use roomcast::schema::{Encoder, Schema};
use roomcast::transport::Transport;
use roomcast::{Client, Options, Room, RoomCtx, Server, ServerError, WebSocketTransport};
use roomcast_client::RoomEvent;
use roomcast_loadtest::{DefaultScript, LoadTest, Summary};
use tokio::task::JoinHandle;

/// The room's state: how many `echo` messages it received.
#[derive(Schema, Default, Debug)]
#[schema(crate = "roomcast::schema")]
struct Counter {
    echoes: u32,
}

/// `echo` sends the payload back and counts it in the state.
#[derive(Default)]
struct EchoRoom;

impl Room for EchoRoom {
    type State = Encoder<Counter>;
    type UserData = ();
    type Auth = ();

    async fn on_create(&mut self, ctx: &mut RoomCtx<Self>, _: &Options) -> Result<(), ServerError> {
        ctx.set_state(Encoder::new(Counter::default()));
        ctx.set_patch_rate(Some(Duration::from_millis(50)));
        ctx.on_message("echo", |_, ctx, client, v: serde_json::Value| {
            ctx.send(client, "echo", &v);
            let mut state = ctx.state_mut();
            let n = state.echoes + 1;
            state.set_echoes(n);
        });
        Ok(())
    }

    async fn on_join(
        &mut self,
        _: &mut RoomCtx<Self>,
        _: &Client,
        _: &Options,
    ) -> Result<(), ServerError> {
        Ok(())
    }
}

/// A server serving until dropped.
struct Served {
    endpoint: String,
    task: JoinHandle<()>,
}

impl Drop for Served {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve() -> Served {
    let server = Server::builder().define("echo", EchoRoom::default).build();
    let transport = WebSocketTransport::bind("127.0.0.1:0")
        .await
        .expect("a free port");
    let port = transport.local_addr().unwrap().port();
    let task = tokio::spawn(async move {
        let _ = transport.serve(server).await;
    });
    Served {
        endpoint: format!("http://127.0.0.1:{port}"),
        task,
    }
}

fn echo_script() -> DefaultScript {
    DefaultScript {
        message_type: "echo".into(),
        payload: serde_json::json!({ "hello": "world" }),
        send_interval: Some(Duration::from_millis(100)),
        ping_interval: Some(Duration::from_millis(200)),
    }
}

/// Every key of the JSON summary.
fn assert_structure(summary: &Summary) -> serde_json::Value {
    let json = serde_json::to_value(summary).unwrap();
    for key in [
        "endpoint",
        "room",
        "clients",
        "join_rate",
        "duration_seconds",
        "elapsed_seconds",
        "joins",
        "join_latency",
        "round_trip",
        "traffic",
        "connections",
        "error_count",
        "errors",
        "server",
    ] {
        assert!(json.get(key).is_some(), "no {key} in {json:#}");
    }
    for key in ["attempted", "succeeded", "failed", "not_started"] {
        assert!(json["joins"][key].is_u64(), "joins.{key} in {json:#}");
    }
    for latency in ["join_latency", "round_trip"] {
        for key in [
            "count", "min_ms", "mean_ms", "p50_ms", "p90_ms", "p99_ms", "max_ms",
        ] {
            assert!(
                json[latency].get(key).is_some(),
                "{latency}.{key} in {json:#}"
            );
        }
    }
    for key in [
        "messages_sent",
        "messages_received",
        "bytes_sent",
        "bytes_received",
        "state_changes",
    ] {
        assert!(json["traffic"][key].is_u64(), "traffic.{key} in {json:#}");
    }
    assert!(json["errors"].is_array());
    json
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_join_and_messages_flow() {
    let served = serve().await;
    let summary = LoadTest::new(&served.endpoint, "echo")
        .clients(4)
        .join_rate(20.0)
        .duration(Duration::from_secs(3))
        .default_script(echo_script())
        .server_pid(Some(std::process::id()))
        .run()
        .await
        .unwrap();
    let json = assert_structure(&summary);
    assert_eq!(summary.joins.attempted, 4, "{json:#}");
    assert_eq!(summary.joins.succeeded, 4, "{json:#}");
    assert_eq!(summary.joins.failed, 0, "{json:#}");
    assert_eq!(summary.join_latency.count, 4, "{json:#}");
    assert!(summary.join_latency.p50_ms.is_some(), "{json:#}");
    assert!(summary.traffic.messages_sent > 0, "{json:#}");
    assert!(summary.traffic.messages_received > 0, "{json:#}");
    assert!(summary.traffic.bytes_sent > 0, "{json:#}");
    assert!(summary.traffic.bytes_received > 0, "{json:#}");
    // At least the full state after each join.
    assert!(summary.traffic.state_changes >= 4, "{json:#}");
    assert_eq!(summary.error_count, 0, "{json:#}");
    assert!(summary.errors.is_empty(), "{json:#}");
    // Every client left, consented.
    assert_eq!(
        summary.connections.leave_codes.get("4000"),
        Some(&4),
        "{json:#}"
    );
    // The server is this process.
    let server = summary.server.as_ref().expect("a pid was given");
    assert_eq!(server.error, None, "{json:#}");
    assert!(server.samples >= 2 && server.rss_bytes_max > 0, "{json:#}");
    // The server wrote at least the messages the clients received.
    assert!(
        server.io_written_bytes.unwrap() >= summary.traffic.bytes_received,
        "{json:#}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_script_of_its_own_measures_round_trips() {
    let served = serve().await;
    let summary = LoadTest::new(&served.endpoint, "echo")
        .clients(3)
        .duration(Duration::from_secs(1))
        .script(|ctx, mut room| async move {
            // One echo at a time, at least one, until the test is over.
            loop {
                let sent = Instant::now();
                ctx.send(&room, "echo", &ctx.index())?;
                loop {
                    match ctx.recv(&mut room).await {
                        Some(RoomEvent::Message(m)) if m.decode::<usize>()? == ctx.index() => {
                            ctx.record_round_trip(sent.elapsed());
                            break;
                        }
                        Some(_) => {}
                        None => return Err("the room closed".into()),
                    }
                }
                if !ctx.is_running() {
                    break;
                }
            }
            ctx.leave(&mut room, true).await;
            Ok(())
        })
        .run()
        .await
        .unwrap();
    let json = assert_structure(&summary);
    assert_eq!(summary.joins.succeeded, 3, "{json:#}");
    assert!(summary.round_trip.count >= 3, "{json:#}");
    assert_eq!(
        summary.round_trip.count, summary.traffic.messages_received,
        "{json:#}"
    );
    assert!(summary.server.is_none());
    assert_eq!(summary.error_count, 0, "{json:#}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_room_name_gives_errors_by_code() {
    let served = serve().await;
    let summary = LoadTest::new(&served.endpoint, "no-such-room")
        .clients(3)
        .duration(Duration::from_secs(1))
        .run()
        .await
        .unwrap();
    let json = assert_structure(&summary);
    assert_eq!(summary.joins.attempted, 3, "{json:#}");
    assert_eq!(summary.joins.succeeded, 0, "{json:#}");
    assert_eq!(summary.joins.failed, 3, "{json:#}");
    assert_eq!(summary.join_latency.count, 0, "{json:#}");
    assert_eq!(summary.join_latency.p50_ms, None, "{json:#}");
    assert_eq!(summary.error_count, 3, "{json:#}");
    assert_eq!(summary.errors.len(), 1, "{json:#}");
    let group = &summary.errors[0];
    assert_eq!(
        (group.phase.as_str(), group.code.as_str(), group.count),
        ("join", "520", 3),
        "{json:#}"
    );
    assert_eq!(json["errors"][0]["code"], "520");
}

#[tokio::test]
async fn an_invalid_endpoint_is_an_error_of_the_run() {
    assert!(LoadTest::new("ftp://x", "echo").run().await.is_err());
}
