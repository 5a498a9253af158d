//! Client side, side by side: N clients of one room decoding the same
//! patches with state callbacks on, in one process per side — Rust
//! (`roomcast-client`, typed state) and Node (`@colyseus/sdk` 0.18.4,
//! `tests/node/clientbench.mjs`) — against one Roomcast server, one side
//! after the other, repeated; CPU and memory per client of each client
//! process, and the ratios.
//!
//! ```text
//! (cd tests/node && npm ci)
//! cargo run --release -p roomcast-client --example clientbench -- --clients 100,500 --seconds 10 --rounds 2
//! ```
//!
//! The room (`clientbench`, served by this executable as
//! `clientbench serve <port>`): a `MapSchema<Entity{x, y, angle: f32, hp:
//! u8, name: String}>` of [`ENTITIES`] entities that all move every 50 ms
//! (a patch every 50 ms), and one entity replaced every 500 ms (a removal
//! and an addition). The clients change nothing: every client of a run
//! decodes the same patches.
//!
//! Each client, on both sides: `on_add` / `on_remove` on the map, and on
//! every entity added `listen` on `x` and `y`; every callback and every
//! state change counted. A client process (`clientbench rust <port> <n>
//! <seconds>`, or the Node script) reads its RSS before its first client
//! (the baseline), joins its N clients, lets 1 s pass, then measures a
//! window: its CPU (utime + stime of `/proc/self/stat`) and the events of
//! the window; and its RSS at the end. It prints one JSON line.
//!
//! Per client: CPU µs per second of the window / N, and (RSS − baseline)
//! / N. The events per client per second of both sides are printed next
//! to each other: they must agree (same patches, same callbacks).

#![allow(
    clippy::int_plus_one,
    reason = "emitted by #[derive(Schema)] for a struct with one field"
)]

use std::collections::VecDeque;
use std::io::BufRead as _;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;

use roomcast::schema::{Encoder, MapSchema, Schema};
use roomcast::{Options, Room, RoomCtx, Server, ServerError};
use roomcast_client::{Client, Room as ClientRoom, RoomEvent};
use roomcast_schema::decoder::{At, RefId};

/// Entities in the room, all moving.
const ENTITIES: u32 = 50;

#[derive(Schema, Default)]
#[schema(crate = "roomcast::schema", decode)]
struct Entity {
    x: f32,
    y: f32,
    angle: f32,
    hp: u8,
    name: String,
}

#[derive(Schema, Default)]
#[schema(crate = "roomcast::schema", decode)]
struct BenchState {
    entities: MapSchema<Entity>,
}

// ----- the server --------------------------------------------------------------

#[derive(Default)]
struct BenchRoom {
    step: u64,
    next_id: u64,
    /// Keys in insertion order: the oldest is replaced.
    keys: VecDeque<String>,
}

impl BenchRoom {
    fn entity(&mut self) -> (String, Entity) {
        let id = self.next_id;
        self.next_id += 1;
        let entity = Entity {
            x: (id * 16 % 800) as f32,
            y: (id * 12 % 600) as f32,
            angle: id as f32 * 0.1,
            hp: 100,
            name: format!("entity {id}"),
        };
        let key = format!("e{id}");
        self.keys.push_back(key.clone());
        (key, entity)
    }
}

impl Room for BenchRoom {
    type State = Encoder<BenchState>;
    type UserData = ();
    type Auth = ();

    async fn on_create(&mut self, ctx: &mut RoomCtx<Self>, _: &Options) -> Result<(), ServerError> {
        let mut state = BenchState::default();
        for _ in 0..ENTITIES {
            let (key, entity) = self.entity();
            state.entities.insert(key, entity);
        }
        ctx.set_state(Encoder::new(state));
        ctx.set_max_clients(Some(100_000));
        ctx.set_patch_rate(Some(Duration::from_millis(50)));
        ctx.set_simulation_interval(Some(Duration::from_millis(50)), |room, ctx, _dt| {
            room.step += 1;
            let step = room.step;
            let replaced = if step % 10 == 0 {
                let old = room.keys.pop_front();
                Some((old, room.entity()))
            } else {
                None
            };
            let mut state = ctx.state_mut();
            let mut entities = state.entities_mut();
            entities.for_each_mut(|_, mut e| {
                let angle = (e.angle + 0.05) % std::f32::consts::TAU;
                e.set_angle(angle);
                e.set_x((e.x + angle.cos() * 3.0).rem_euclid(800.0));
                e.set_y((e.y + angle.sin() * 3.0).rem_euclid(600.0));
            });
            if let Some((old, (key, entity))) = replaced {
                if let Some(old) = old {
                    entities.remove(&old);
                }
                entities.insert(key, entity);
            }
        });
        Ok(())
    }
}

fn serve(port: u16) -> std::io::Result<()> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(
            Server::builder()
                .define("clientbench", BenchRoom::default)
                .build()
                .listen(("127.0.0.1", port)),
        )
}

// ----- measuring a process -------------------------------------------------------

/// utime + stime of a process, in seconds (USER_HZ is 100 on Linux).
fn cpu_seconds(pid: &str) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // The fields after `(comm)` start at field 3; utime and stime are 14, 15.
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after.split_whitespace().collect();
    let field = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok());
    (field(11).unwrap_or(0.0) + field(12).unwrap_or(0.0)) / 100.0
}

/// The resident set size of a process, in bytes.
fn rss_bytes(pid: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kib| kib * 1024)
}

// ----- the Rust client process -----------------------------------------------------

/// What the callbacks of all the clients of the process count.
#[derive(Default)]
struct Counts {
    patches: AtomicU64,
    adds: AtomicU64,
    removes: AtomicU64,
    listens: AtomicU64,
}

impl Counts {
    fn snapshot(&self) -> [u64; 4] {
        [&self.patches, &self.adds, &self.removes, &self.listens].map(|c| c.load(Ordering::Relaxed))
    }
}

fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

/// Joins the bench room with the callbacks every client has, counting
/// into `counts`.
async fn join_counted(
    client: &Client,
    counts: &Arc<Counts>,
) -> Result<ClientRoom<BenchState>, String> {
    let mut room = client
        .join_or_create::<BenchState>("clientbench", &serde_json::json!({}))
        .await
        .map_err(|e| e.to_string())?;
    let mut cx = room.callbacks().ok_or("no callbacks")?;
    let (on_add, on_remove) = (Arc::clone(counts), Arc::clone(counts));
    cx.on_add(
        At::Field(RefId::ROOT, "entities"),
        move |cx, _key, entity| {
            bump(&on_add.adds);
            let Some(id) = entity.as_ref_id() else { return };
            for field in ["x", "y"] {
                let counts = Arc::clone(&on_add);
                let _ = cx.listen(id, field, move |_, _, _| bump(&counts.listens));
            }
        },
    )
    .map_err(|e| e.to_string())?;
    cx.on_remove(At::Field(RefId::ROOT, "entities"), move |_, _, _| {
        bump(&on_remove.removes);
    })
    .map_err(|e| e.to_string())?;
    Ok(room)
}

/// One client's task: counts its state changes until `stop` turns true
/// (or the room ends), then leaves.
///
/// The stop is a watch, not a `Notify`: `notify_waiters` reaches only the
/// tasks waiting at that instant, and a task that had an event ready
/// too could take the event, drop its `Notified` and the notification
/// with it, and wait for ever (the process never ended: ~1 run in 10
/// with 100 clients).
async fn count_until_stopped(
    mut room: ClientRoom<BenchState>,
    counts: Arc<Counts>,
    mut stop: watch::Receiver<bool>,
) {
    // One wait for the whole loop: registered once, not again with every
    // event.
    let stopped = stop.wait_for(|stop| *stop);
    tokio::pin!(stopped);
    loop {
        tokio::select! {
            event = room.recv() => match event {
                Some(RoomEvent::StateChange { .. }) => bump(&counts.patches),
                Some(_) => {}
                None => return,
            },
            _ = &mut stopped => break,
        }
    }
    room.leave(true).await;
}

/// Joins `clients` clients on one thread (as Node's one), counts their
/// events for `seconds` after a second of settling, prints the JSON line.
async fn rust_clients(port: u16, clients: usize, seconds: f64) -> Result<(), String> {
    let baseline = rss_bytes("self");
    let counts = Arc::new(Counts::default());
    let client = Client::new(&format!("http://127.0.0.1:{port}"))
        .map_err(|e| e.to_string())?
        // A join that does not complete fails the run instead of stalling it.
        .with_timeout(Some(Duration::from_secs(20)));
    let mut tasks = tokio::task::JoinSet::new();
    let (stop, stopped) = watch::channel(false);
    for i in 0..clients {
        let room = join_counted(&client, &counts)
            .await
            .map_err(|e| format!("join {i}: {e}"))?;
        // Each client applies its frames from its join on, as the SDK's
        // do: a room nobody polls would queue every patch of the joins
        // that follow.
        tasks.spawn_local(count_until_stopped(
            room,
            Arc::clone(&counts),
            stopped.clone(),
        ));
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (cpu0, events0, t0) = (cpu_seconds("self"), counts.snapshot(), Instant::now());
    tokio::time::sleep(Duration::from_secs_f64(seconds)).await;
    let (cpu1, events1, window) = (cpu_seconds("self"), counts.snapshot(), t0.elapsed());
    let rss = rss_bytes("self");
    let [patches, adds, removes, listens] =
        std::array::from_fn(|i| events1[i].saturating_sub(events0[i]));
    println!(
        "{}",
        serde_json::json!({
            "clients": clients, "window": window.as_secs_f64(), "cpu": cpu1 - cpu0,
            "baseline": baseline, "rss": rss,
            "patches": patches, "adds": adds, "removes": removes, "listens": listens,
        })
    );
    let _ = stop.send(true);
    while tasks.join_next().await.is_some() {}
    Ok(())
}

// ----- the comparison ------------------------------------------------------------------

/// One client process's line.
#[derive(serde::Deserialize)]
struct Run {
    clients: f64,
    window: f64,
    cpu: f64,
    baseline: f64,
    rss: f64,
    patches: f64,
    adds: f64,
    removes: f64,
    listens: f64,
}

impl Run {
    /// CPU µs per client per second of the window.
    fn cpu_per_client(&self) -> f64 {
        self.cpu * 1e6 / self.window / self.clients
    }

    /// CPU µs per patch applied by one client (the patch rate falls when
    /// the server is short of CPU: this compares the sides at equal work).
    fn cpu_per_patch(&self) -> f64 {
        self.cpu * 1e6 / self.patches.max(1.0)
    }

    /// (RSS − baseline) per client, in KiB.
    fn rss_per_client(&self) -> f64 {
        (self.rss - self.baseline) / 1024.0 / self.clients
    }

    /// Events (patches, adds, removes, listens) per client per second.
    fn rates(&self) -> [f64; 4] {
        [self.patches, self.adds, self.removes, self.listens]
            .map(|n| n / self.clients / self.window)
    }
}

fn run_side(mut command: Command, what: &str) -> Run {
    let output = command
        .stderr(Stdio::inherit())
        .output()
        .unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(output.status.success(), "{what} failed");
    let line = output
        .stdout
        .lines()
        .map_while(Result::ok)
        .find(|l| l.starts_with('{'))
        .unwrap_or_else(|| panic!("{what}: no result line"));
    serde_json::from_str(&line).unwrap_or_else(|e| panic!("{what}: {e}: {line}"))
}

fn flag(args: &[String], name: &str) -> Option<String> {
    let at = args.iter().position(|a| a == name)?;
    args.get(at + 1).cloned()
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let arg = |i: usize| args.get(i).and_then(|a| a.parse::<f64>().ok());
    match args.get(1).map(String::as_str) {
        Some("serve") => {
            serve(arg(2).map_or(2567, |p| p as u16)).expect("server");
            return;
        }
        Some("rust") => {
            let (port, clients, seconds) = (arg(2), arg(3), arg(4));
            let (Some(port), Some(clients), Some(seconds)) = (port, clients, seconds) else {
                panic!("clientbench rust <port> <clients> <seconds>");
            };
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime");
            let local = tokio::task::LocalSet::new();
            local
                .block_on(
                    &runtime,
                    rust_clients(port as u16, clients as usize, seconds),
                )
                .expect("the Rust clients");
            return;
        }
        _ => {}
    }
    let counts = flag(&args, "--clients").unwrap_or_else(|| "100,500".into());
    let seconds = flag(&args, "--seconds").unwrap_or_else(|| "10".into());
    let rounds: u32 = flag(&args, "--rounds").map_or(2, |r| r.parse().expect("--rounds"));
    let node_dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/node");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port");
    let exe = std::env::current_exe().expect("this executable");
    let mut server = Command::new(&exe)
        .args(["serve", &port.to_string()])
        .stdout(Stdio::null())
        .spawn()
        .expect("the server");
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        std::thread::sleep(Duration::from_millis(50));
    }
    println!(
        "{:<6} {:>7} {:>5} {:>11} {:>11} {:>9} {:>9} {:>12} {:>9} {:>9} {:>9} {:>9}",
        "side",
        "clients",
        "round",
        "cpu µs/cl/s",
        "µs/cl/patch",
        "base MiB",
        "RSS MiB",
        "KiB/client",
        "patch/s",
        "add/s",
        "remove/s",
        "listen/s"
    );
    for count in counts.split(',') {
        let n = count.trim();
        // Per side: CPU per client per second, per client-patch, memory per client.
        let mut totals = [(0.0, 0.0, 0.0); 2];
        for round in 1..=rounds {
            let mut rust = Command::new(&exe);
            rust.args(["rust", &port.to_string(), n, &seconds]);
            let mut node = Command::new("node");
            node.args(["clientbench.mjs", &port.to_string(), n, &seconds])
                .current_dir(&node_dir);
            // Alternate which side goes first, round by round.
            let mut sides = [("rust", rust), ("node", node)];
            if round % 2 == 0 {
                sides.reverse();
            }
            for (name, command) in sides {
                let run = run_side(command, name);
                let [p, a, r, l] = run.rates();
                println!(
                    "{name:<6} {n:>7} {round:>5} {:>11.1} {:>11.2} {:>9.1} {:>9.1} {:>12.1} {p:>9.2} {a:>9.2} {r:>9.2} {l:>9.1}",
                    run.cpu_per_client(),
                    run.cpu_per_patch(),
                    run.baseline / 1048576.0,
                    run.rss / 1048576.0,
                    run.rss_per_client(),
                );
                let slot = &mut totals[usize::from(name == "node")];
                slot.0 += run.cpu_per_client();
                slot.1 += run.cpu_per_patch();
                slot.2 += run.rss_per_client();
            }
        }
        let [(rust_cpu, rust_patch, rust_rss), (node_cpu, node_patch, node_rss)] = totals;
        println!(
            "{n} clients, {rounds} rounds: node / rust: CPU per client {:.1}x \
             (per client-patch {:.1}x), memory per client {:.1}x",
            node_cpu / rust_cpu,
            node_patch / rust_patch,
            node_rss / rust_rss
        );
    }
    let _ = server.kill();
    let _ = server.wait();
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The stop reaches every client task, also those it finds with a
    /// patch ready: the test stops them as its own client takes a patch
    /// that went to all of them at once (their tasks are then woken by
    /// that patch, not yet run). With a `Notify` and `notify_waiters`,
    /// about half of them took the patch, lost the stop and never ended
    /// (this test failed 5 runs of 5).
    #[test]
    fn stop_reaches_every_client_task() {
        const CLIENTS: usize = 40;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        let local = tokio::task::LocalSet::new();
        local.block_on(&runtime, async {
            let transport = roomcast::WebSocketTransport::bind("127.0.0.1:0")
                .await
                .expect("a free port");
            let port = transport.local_addr().expect("an address").port();
            let server = Server::builder()
                .define("clientbench", BenchRoom::default)
                .build();
            let served = tokio::spawn(roomcast::transport::Transport::serve(transport, server));
            let client = Client::new(&format!("http://127.0.0.1:{port}")).expect("an endpoint");
            let counts = Arc::new(Counts::default());
            let (stop, stopped) = watch::channel(false);
            let mut tasks = tokio::task::JoinSet::new();
            for _ in 1..CLIENTS {
                let room = join_counted(&client, &counts).await.expect("a join");
                tasks.spawn_local(count_until_stopped(
                    room,
                    Arc::clone(&counts),
                    stopped.clone(),
                ));
            }
            // The client that stops the others, on its first patch: the
            // last one the server writes a patch to.
            let mut trigger = join_counted(&client, &counts).await.expect("a join");
            // What the trigger has received so far is taken; then its
            // next patch, which the others receive at the same time.
            tokio::time::sleep(Duration::from_millis(200)).await;
            while let Ok(Some(_)) = tokio::time::timeout(Duration::ZERO, trigger.recv()).await {}
            while !matches!(trigger.recv().await, Some(RoomEvent::StateChange { .. })) {}
            let _ = stop.send(true);
            let ended = tokio::time::timeout(Duration::from_secs(20), async {
                while tasks.join_next().await.is_some() {}
            })
            .await;
            assert!(
                ended.is_ok(),
                "{} of {} client tasks did not see the stop",
                tasks.len(),
                CLIENTS - 1
            );
            trigger.leave(true).await;
            served.abort();
        });
    }
}
