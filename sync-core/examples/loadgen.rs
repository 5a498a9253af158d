//! Load generator: C clients speak the Colyseus protocol over loopback to a
//! Roomcast server and to the reference Node server (`@colyseus/core`
//! 0.18.17 + `@colyseus/ws-transport` 0.18.4, `tests/node/sdk/reference-server.mjs`)
//! in the same run, with the same room: rooms of 50, each room's state a
//! `MapSchema<Entity{x, y, angle: f32, hp: u8, name: String}>` with one
//! entity per client plus 50 NPCs, a 60 Hz simulation that turns every
//! entity and walks every NPC, 20 Hz patches, and every client sending a
//! small `move` (its entity's new position) 10 times a second and
//! decoding the state (Roomcast's typed decoder) to find its own entity.
//!
//! ```text
//! cargo run --release -p roomcast --example loadgen -- --clients 500 --seconds 10
//! cargo run --release -p roomcast --example loadgen -- --clients 2000 --servers rust
//! cargo run --release -p roomcast --example loadgen -- --room view --clients 500
//! cargo run --release -p roomcast --example loadgen -- --room big --clients 500
//! cargo run --release -p roomcast --example loadgen -- --clients 1000,2000,3000 --server-cpus 1
//! ```
//!
//! `--room` picks the room the clients join (the same three in the Node
//! server):
//! - `bench` (default): rooms of 50 clients, every client gets the whole
//!   state (a broadcast);
//! - `view`: the same with the entities behind a `#[schema(view)]` field
//!   (Colyseus `@view()`): each client has a view showing its own entity
//!   and every entity, player or NPC, whose number (players in join order,
//!   NPCs by index) has the parity of its own: half of the others;
//! - `big`: one room of up to 500 clients + 50 NPCs.
//!
//! `--clients` takes a list: each count runs against every server in turn
//! (servers alternate within a count), for a search of the largest count
//! served within a p99. `--server-cpus 1` starts the servers under
//! `taskset -c 1` (run the load generator itself under `taskset -c 0` to
//! split the cores).
//!
//! The clients are `roomcast-loadtest`'s ([`LoadTest`] with a script of
//! this file), on `roomcast-client`, typed state (`Room<BenchState>`).
//!
//! Reported per server: CPU of the server process (whole run window),
//! the mean time per patch broadcast (Roomcast: the tick, encoding and the
//! writes to every socket, `roomcast_patch_broadcast_seconds` of its
//! `/metrics`; Node: its rooms' `broadcastPatch`, printed by the server),
//! CPU per client, RSS at the end, bytes sent to the clients per client per
//! second (Node: what the process wrote in the window, `wchar` of
//! `/proc/<pid>/io`; Roomcast, whose `send`s `wchar` does not count: the
//! messages' bytes, `roomcast_sent_bytes_total`, without their 2–4 byte
//! WebSocket headers; roomcast-client does not count its socket's bytes),
//! and the move→seen latency (from sending a `move` to decoding the patch
//! after which the client's own entity shows it, or a later move). Each server runs
//! as its own process, so its CPU and memory are read from `/proc`.
//!
//! The server side of Roomcast is this same executable, started as
//! `loadgen serve <port>`.

#![allow(
    clippy::int_plus_one,
    reason = "emitted by #[derive(Schema)] for a struct with one field"
)]

mod support;

use std::collections::{HashMap, VecDeque};
use std::io::{BufRead, Read, Write};
use std::marker::PhantomData;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use roomcast::schema::{Encoder, MapMut, MapSchema, Schema, ViewTarget};
use roomcast::{Client, Options, Room, RoomCtx, Server, ServerConfig, ServerError};
use roomcast_loadtest::roomcast_client::{Room as ClientRoom, RoomEvent};
use roomcast_loadtest::{ClientCtx, LoadTest, ScriptError, Summary};

// ----- the Roomcast side ---------------------------------------------------

/// The issue's entity: one per client plus [`NPCS`] per room.
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

/// The `view` room's state: the same map, behind a view field (the
/// clients decode it as a [`BenchState`]: the wire is the same).
#[derive(Schema, Default)]
#[schema(crate = "roomcast::schema")]
struct ViewBenchState {
    #[schema(view)]
    entities: MapSchema<Entity>,
}

/// What the bench room needs of its state: the entity map.
trait BenchData: Schema + Default + Send + Sync + 'static {
    /// The entities are behind a view field.
    const VIEWS: bool;
    /// The map, before the state goes to the encoder.
    fn entities(&mut self) -> &mut MapSchema<Entity>;
    /// The map, for tracked changes.
    fn entities_mut<'a>(state: &'a mut Self::Mut<'_>) -> MapMut<'a, Entity>;
}

/// Both states have the same `entities` field, with or without views.
macro_rules! bench_data {
    ($state:ty, $views:expr) => {
        impl BenchData for $state {
            const VIEWS: bool = $views;
            fn entities(&mut self) -> &mut MapSchema<Entity> {
                &mut self.entities
            }
            fn entities_mut<'a>(state: &'a mut Self::Mut<'_>) -> MapMut<'a, Entity> {
                state.entities_mut()
            }
        }
    };
}

bench_data!(BenchState, false);
bench_data!(ViewBenchState, true);

/// Non-player entities per room, moved by the simulation.
const NPCS: u32 = 50;

/// A client's input: where its entity is now. `x` carries a sequence
/// number (exact in an f32 below 2^24) so that the client can recognise
/// its own move in the decoded state.
#[derive(serde::Deserialize)]
struct Move {
    x: f32,
    y: f32,
}

struct BenchRoom<S> {
    steps: u64,
    max_clients: usize,
    /// Each entity's number (its parity says which views show it).
    numbers: HashMap<String, u32>,
    joined: u32,
    state: PhantomData<fn() -> S>,
}

impl<S> BenchRoom<S> {
    fn new(max_clients: usize) -> Self {
        Self {
            steps: 0,
            max_clients,
            numbers: HashMap::new(),
            joined: 0,
            state: PhantomData,
        }
    }
}

/// One simulation step (60 Hz): every NPC walks along its heading and
/// turns a little; every player's entity turns (its position is the
/// client's input).
fn simulate(mut entities: MapMut<'_, Entity>, step: u64, dt: f32) {
    entities.for_each_mut(|key, mut entity| {
        let turn = 0.01 + (step % 7) as f32 * 0.001;
        let angle = (entity.angle + turn) % std::f32::consts::TAU;
        entity.set_angle(angle);
        if key.starts_with("npc") {
            let speed = 60.0 * dt;
            entity.set_x((entity.x + angle.cos() * speed).rem_euclid(800.0));
            entity.set_y((entity.y + angle.sin() * speed).rem_euclid(600.0));
        }
    });
}

impl<S: BenchData> Room for BenchRoom<S> {
    type State = Encoder<S>;
    type UserData = ();
    type Auth = ();

    async fn on_create(&mut self, ctx: &mut RoomCtx<Self>, _: &Options) -> Result<(), ServerError> {
        let mut state = S::default();
        for i in 0..NPCS {
            self.numbers.insert(format!("npc{i}"), i);
            state.entities().insert(
                format!("npc{i}"),
                Entity {
                    x: (i * 16) as f32,
                    y: (i * 12) as f32,
                    angle: i as f32 * 0.1,
                    hp: 100,
                    name: format!("npc {i}"),
                },
            );
        }
        ctx.set_state(Encoder::new(state));
        ctx.set_max_clients(Some(self.max_clients));
        ctx.set_simulation_interval(Some(Duration::from_micros(16_667)), |room, ctx, dt| {
            room.steps += 1;
            let mut state = ctx.state_mut();
            simulate(S::entities_mut(&mut state), room.steps, dt.as_secs_f32());
        });
        ctx.set_patch_rate(Some(Duration::from_millis(50)));
        ctx.on_message("move", |_room, ctx, client, m: Move| {
            let mut state = ctx.state_mut();
            let mut entities = S::entities_mut(&mut state);
            if let Some(mut entity) = entities.get_mut(client.session_id()) {
                entity.set_x(m.x);
                entity.set_y(m.y);
            }
        });
        Ok(())
    }

    async fn on_join(
        &mut self,
        ctx: &mut RoomCtx<Self>,
        client: &Client,
        _: &Options,
    ) -> Result<(), ServerError> {
        let number = self.joined;
        self.joined += 1;
        self.numbers.insert(client.session_id().to_owned(), number);
        let parity = |key: &str| self.numbers.get(key).map(|n| n % 2);
        // The views of the other clients that see this one.
        let peers: Vec<_> = if S::VIEWS {
            ctx.clients()
                .filter(|peer| {
                    peer.session_id() != client.session_id()
                        && parity(peer.session_id()) == Some(number % 2)
                })
                .filter_map(|peer| ctx.view(&peer))
                .collect()
        } else {
            Vec::new()
        };
        let own = if S::VIEWS {
            ctx.create_view(client)
        } else {
            None
        };
        let mut state = ctx.state_mut();
        let mut entities = S::entities_mut(&mut state);
        entities.insert(
            client.session_id(),
            Entity {
                hp: 100,
                name: format!("player {}", client.session_id()),
                ..Entity::default()
            },
        );
        if let Some(own) = own {
            entities.for_each_mut(|key, mut entity| {
                if key == client.session_id() {
                    entity.show_to(own);
                    for &peer in &peers {
                        entity.show_to(peer);
                    }
                } else if parity(key) == Some(number % 2) {
                    entity.show_to(own);
                }
            });
        }
        Ok(())
    }

    async fn on_leave(&mut self, ctx: &mut RoomCtx<Self>, client: &Client, _: u16) {
        let mut state = ctx.state_mut();
        S::entities_mut(&mut state).remove(client.session_id());
        self.numbers.remove(client.session_id());
    }
}

fn serve(port: u16) -> std::io::Result<()> {
    // HTTP and accepting on one thread; rooms and their connections on the
    // room threads (ROOMCAST_THREADS of them; default one per core).
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let mut config = ServerConfig::default();
    // For the patch broadcast time (`roomcast_patch_broadcast_seconds`).
    config.metrics = Some("/metrics".into());
    if let Some(threads) = std::env::var("ROOMCAST_THREADS")
        .ok()
        .and_then(|t| t.parse().ok())
    {
        config.room_threads = threads;
    }
    runtime.block_on(async {
        Server::builder()
            .config(config)
            .define("bench", || BenchRoom::<BenchState>::new(50))
            .define("view", || BenchRoom::<ViewBenchState>::new(50))
            .define("big", || BenchRoom::<BenchState>::new(500))
            .build()
            .listen(("127.0.0.1", port))
            .await
    })
}

// ----- the client side: roomcast-loadtest ------------------------------------

/// What the clients' scripts measure (in the window after the ramp).
#[derive(Default)]
struct Totals {
    moves: AtomicU64,
    seen: AtomicU64,
    latencies_us: Mutex<Vec<u64>>,
}

/// A client's input, as the room reads it (a MessagePack map of float32s).
#[derive(serde::Serialize)]
struct MoveOut {
    x: f32,
    y: f32,
}

/// One client: a `move` every 100 ms until `until` (then a consented
/// leave); after each decoded state, the moves its own entity shows.
async fn bench_script(
    ctx: ClientCtx,
    mut room: ClientRoom<BenchState>,
    until: Instant,
    measure_from: Instant,
    totals: Arc<Totals>,
) -> Result<(), ScriptError> {
    let index = ctx.index() as u32;
    // Spread the clients' sends over the interval, so that moves arrive
    // at every phase of the server's patch tick.
    let phase = Duration::from_micros(u64::from(index).wrapping_mul(7919) % 100_000);
    let mut ticker = tokio::time::interval_at(
        tokio::time::Instant::now() + phase,
        Duration::from_millis(100),
    );
    let session_id = room.session_id().to_owned();
    let mut counter = 0u32;
    let mut pending: VecDeque<(u32, Instant)> = VecDeque::new();
    loop {
        tokio::select! {
            _ = ticker.tick() => {
                if Instant::now() >= until {
                    ctx.leave(&mut room, true).await;
                    return Ok(());
                }
                counter += 1;
                // Exact in an f32 (below 2^24).
                ctx.send(&room, "move", &MoveOut { x: counter as f32, y: (index % 600) as f32 })?;
                pending.push_back((counter, Instant::now()));
                if pending.len() > 64 {
                    pending.pop_front();
                }
                if Instant::now() >= measure_from {
                    totals.moves.fetch_add(1, Ordering::Relaxed);
                }
            }
            event = ctx.recv(&mut room) => {
                match event {
                    None => return Err("connection closed".into()),
                    Some(RoomEvent::StateChange { .. }) => {}
                    Some(_) => continue,
                }
                let now = Instant::now();
                // The move this client's entity shows now.
                let Some(own) = room.state().entities.get(&session_id) else { continue };
                let shown = own.x as u32;
                if let Some(found) = pending.iter().position(|(seq, _)| *seq == shown) {
                    for (_, sent) in pending.drain(..=found) {
                        if sent >= measure_from {
                            totals.seen.fetch_add(1, Ordering::Relaxed);
                            let us = now.duration_since(sent).as_micros() as u64;
                            totals.latencies_us.lock().unwrap().push(us);
                        }
                    }
                }
            }
        }
    }
}

// ----- measurement -------------------------------------------------------------

fn rss_mib(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

/// The bytes a process wrote (`wchar` of `/proc/<pid>/io`: its sockets).
fn written_bytes(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/io"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("wchar:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

/// Where a server's patch broadcast totals (and Roomcast's bytes sent) are read.
enum PatchSource {
    /// Roomcast's `/metrics` on this port.
    Metrics(u16),
    /// The last `patch-stats <count> <seconds>` line the Node server printed.
    Lines(Arc<Mutex<(u64, f64)>>),
}

impl PatchSource {
    /// Patch broadcasts so far: how many, and their total time in
    /// seconds; and the bytes of the messages sent, if the server says.
    fn read(&self) -> (u64, f64, Option<u64>) {
        match self {
            Self::Lines(last) => {
                let (count, seconds) = *last.lock().unwrap();
                (count, seconds, None)
            }
            Self::Metrics(port) => {
                let mut page = String::new();
                if let Ok(mut tcp) = std::net::TcpStream::connect(("127.0.0.1", *port)) {
                    let _ = tcp.write_all(b"GET /metrics HTTP/1.0\r\nHost: loadgen\r\n\r\n");
                    let _ = tcp.read_to_string(&mut page);
                }
                let total = |series: &str| -> f64 {
                    page.lines()
                        .filter(|l| l.starts_with(series))
                        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
                        .sum()
                };
                (
                    total("roomcast_patch_broadcast_seconds_count") as u64,
                    total("roomcast_patch_broadcast_seconds_sum"),
                    Some(total("roomcast_sent_bytes_total") as u64),
                )
            }
        }
    }
}

/// Keeps the last `patch-stats` line of the Node server's stdout.
fn follow_patch_stats(server: &mut Child) -> Arc<Mutex<(u64, f64)>> {
    let last = Arc::new(Mutex::new((0, 0.0)));
    if let Some(stdout) = server.stdout.take() {
        let last = last.clone();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                let mut words = line.split(' ');
                if words.next() != Some("patch-stats") {
                    continue;
                }
                if let (Some(Ok(count)), Some(Ok(seconds))) = (
                    words.next().map(str::parse::<u64>),
                    words.next().map(str::parse::<f64>),
                ) {
                    *last.lock().unwrap() = (count, seconds);
                }
            }
        });
    }
    last
}

struct Report {
    name: &'static str,
    clients: u32,
    patch_ms: f64,
    cpu_percent: f64,
    cpu_us_per_client_s: f64,
    rss: f64,
    bytes_per_client_s: f64,
    p50_ms: f64,
    p99_ms: f64,
    moves: u64,
    seen: u64,
    errors: u64,
}

fn run_against(
    name: &'static str,
    mut server: Child,
    port: u16,
    room: &str,
    clients: u32,
    seconds: u64,
) -> Report {
    let patches = if name == "roomcast" {
        PatchSource::Metrics(port)
    } else {
        PatchSource::Lines(follow_patch_stats(&mut server))
    };
    let pid = server.id();
    // Wait for the server to accept connections.
    let start = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "{name} server did not start"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let totals = Arc::new(Totals::default());
    // 250 joins a second, as the 25 clients per 100 ms of the private
    // client this example had before.
    let ramp = Duration::from_millis(u64::from(clients) * 4 + 1000);
    let begin = Instant::now();
    let measure_from = begin + ramp + Duration::from_secs(1);
    let until = measure_from + Duration::from_secs(seconds);
    let script_totals = totals.clone();
    let test = LoadTest::<BenchState>::typed(&format!("http://127.0.0.1:{port}"), room)
        .clients(clients as usize)
        .join_rate(250.0)
        // The scripts leave at `until`; the test's end only bounds them.
        .duration(until - begin + Duration::from_secs(1))
        .script(move |ctx, room| {
            bench_script(ctx, room, until, measure_from, script_totals.clone())
        });
    let clients_thread = std::thread::spawn(move || {
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .expect("a runtime")
            .block_on(test.run())
            .expect("a valid endpoint")
    });
    std::thread::sleep(measure_from.saturating_duration_since(Instant::now()));
    let (user_start, system_start) = support::cpu_split(pid);
    let written_start = written_bytes(pid);
    let patches_start = patches.read();
    let window_start = Instant::now();
    std::thread::sleep(until.saturating_duration_since(Instant::now()));
    let (user_end, system_end) = support::cpu_split(pid);
    let patches_end = patches.read();
    let written = match (patches_start.2, patches_end.2) {
        (Some(start), Some(end)) => end.saturating_sub(start),
        _ => written_bytes(pid).saturating_sub(written_start),
    };
    let window = window_start.elapsed().as_secs_f64();
    let rss = rss_mib(pid);
    eprintln!(
        "  server cpu in the window: user {:.2} s, system {:.2} s",
        user_end - user_start,
        system_end - system_start
    );
    let cpu = (user_end - user_start) + (system_end - system_start);
    let summary: Summary = clients_thread.join().expect("the load test");
    for group in summary.errors.iter().take(3) {
        eprintln!(
            "  {} error {} ×{}: {}",
            group.phase, group.code, group.count, group.message
        );
    }
    let _ = server.kill();
    let _ = server.wait();
    let mut latencies = std::mem::take(&mut *totals.latencies_us.lock().unwrap());
    latencies.sort_unstable();
    let pct = |p: f64| {
        latencies
            .get(((latencies.len() as f64 * p) as usize).min(latencies.len().saturating_sub(1)))
            .map_or(f64::NAN, |us| *us as f64 / 1000.0)
    };
    Report {
        name,
        clients,
        patch_ms: (patches_end.1 - patches_start.1) * 1e3
            / patches_end.0.saturating_sub(patches_start.0) as f64,
        cpu_percent: cpu / window * 100.0,
        cpu_us_per_client_s: cpu / window / f64::from(clients) * 1e6,
        rss,
        bytes_per_client_s: written as f64 / window / f64::from(clients),
        p50_ms: pct(0.50),
        p99_ms: pct(0.99),
        moves: totals.moves.load(Ordering::Relaxed),
        seen: totals.seen.load(Ordering::Relaxed),
        errors: summary.error_count,
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("serve") {
        let port = args.get(2).and_then(|p| p.parse().ok()).unwrap_or(2567);
        serve(port).expect("server");
        return;
    }
    let clients: String = support::flag(&args, "--clients").unwrap_or_else(|| "500".into());
    let seconds: u64 = support::flag(&args, "--seconds").unwrap_or(10);
    let servers: String = support::flag(&args, "--servers").unwrap_or_else(|| "rust,node".into());
    let room: String = support::flag(&args, "--room").unwrap_or_else(|| "bench".into());
    let server_cpus: Option<String> = support::flag(&args, "--server-cpus");
    assert!(
        ["bench", "view", "big"].contains(&room.as_str()),
        "--room is bench, view or big"
    );
    let node_dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/node");
    let mut reports = Vec::new();
    for count in clients.split(',') {
        let count: u32 = count
            .trim()
            .parse()
            .expect("--clients: counts separated by commas");
        for server in servers.split(',') {
            let port = support::free_port();
            // `taskset -c CPUS program …`, or the program itself.
            let command = |program: &std::ffi::OsStr| match &server_cpus {
                Some(cpus) => {
                    let mut command = Command::new("taskset");
                    command.args(["-c", cpus]).arg(program);
                    command
                }
                None => Command::new(program),
            };
            let child = match server {
                "rust" => command(std::env::current_exe().unwrap().as_os_str())
                    .args(["serve", &port.to_string()])
                    .stdout(Stdio::null())
                    .spawn()
                    .expect("roomcast server"),
                "node" => command("node".as_ref())
                    .arg("sdk/reference-server.mjs")
                    .arg(port.to_string())
                    .current_dir(&node_dir)
                    .stdout(Stdio::piped())
                    .stderr(Stdio::null())
                    .spawn()
                    .expect("node reference server (npm ci in tests/node first)"),
                other => panic!("unknown server {other}"),
            };
            let name = if server == "rust" {
                "roomcast"
            } else {
                "colyseus 0.18 (node)"
            };
            eprintln!("running {count} clients in `{room}` rooms against {name} for {seconds} s…");
            reports.push(run_against(name, child, port, &room, count, seconds));
        }
    }
    println!(
        "{:<22} {:>7} {:>8} {:>14} {:>10} {:>8} {:>12} {:>8} {:>8} {:>9} {:>9} {:>6}",
        "server",
        "clients",
        "cpu %",
        "cpu µs/cl/s",
        "patch ms",
        "RSS MiB",
        "B/client/s",
        "p50 ms",
        "p99 ms",
        "moves",
        "seen",
        "errors"
    );
    for r in &reports {
        println!(
            "{:<22} {:>7} {:>8.1} {:>14.1} {:>10.3} {:>8.1} {:>12.0} {:>8.1} {:>8.1} {:>9} {:>9} {:>6}",
            r.name,
            r.clients,
            r.cpu_percent,
            r.cpu_us_per_client_s,
            r.patch_ms,
            r.rss,
            r.bytes_per_client_s,
            r.p50_ms,
            r.p99_ms,
            r.moves,
            r.seen,
            r.errors
        );
    }
    if let [rust, node] = &reports[..] {
        println!(
            "CPU per client: node / roomcast = {:.1}x; RSS: node / roomcast = {:.1}x",
            node.cpu_us_per_client_s / rust.cpu_us_per_client_s,
            node.rss / rust.rss
        );
    }
}
