//! Cluster matchmaking benchmark: a server-agnostic load generator that
//! only speaks the Colyseus HTTP matchmaking routes and the WebSocket
//! protocol (`shared/spec/room-protocol.md` §1-§3), pointed at one or more
//! endpoints of a cluster (`benches/cluster.sh` starts a 3-process
//! `@colyseus/core` 0.18.17 cluster on Redis and runs every scenario).
//!
//! ```text
//! clusterbench burst --endpoints http://127.0.0.1:A,http://127.0.0.1:B,http://127.0.0.1:C [--n 600]
//! clusterbench ramp  --endpoints … [--rates 50,100,200,400,800,1600,3200] [--step-seconds 3]
//! clusterbench query --endpoints … --rooms 100 [--joins 200]
//! clusterbench ports <n>             # n free loopback ports, for scripts
//! ```
//!
//! A join is what `client.joinOrCreate("battle", options)` of the 0.18 SDK
//! does: `POST /matchmake/joinOrCreate/battle` → seat reservation JSON →
//! WebSocket to `ws://<publicAddress | endpoint host[path]>/<processId>/<roomId>?sessionId=<id>`
//! → JOIN_ROOM (`0a`) → the 1-byte ack `0a` → ROOM_STATE (`0e`), decoded
//! (typed decoder, `{players: map<Player{name}>}`) and checked to list the
//! client under its name (else the join fails as `state`). Its latency
//! runs from the moment the join was due to the ROOM_STATE frame.
//! A leave sends LEAVE_ROOM (`0c`) and waits for the server's close.
//!
//! Scenarios (request `i` goes to endpoint `i % endpoints`, with the options
//! `{"mode": "m" + i % 3, "name": …}`; with 3 endpoints that sends each mode
//! to one endpoint only, `--spread-modes` takes `(i / endpoints) % 3`
//! instead so that every mode reaches every endpoint):
//!
//! * `burst`: `--n` joins at once; every client stays until all have
//!   joined (or failed), then leaves. Reports rooms per mode against
//!   `ceil(n_mode / 10)` (`battle` holds 10), duplicates (rooms beyond that),
//!   rooms that got clients of two modes (`filterBy(["mode"])` broken), the
//!   most seats reserved in one room (and the most players a joiner's full
//!   state listed), failures, and join latency.
//! * `ramp`: open-loop joins at each rate of `--rates` for `--step-seconds`;
//!   each client leaves as soon as it has joined. Stops after the first step
//!   whose p99 exceeds `--p99-ms` (100) or that has errors (`--keep-going`
//!   runs every rate anyway); the result is the highest rate below the
//!   first step over the limit. Achieved joins/s counts the joins that
//!   completed while the step was sending.
//! * `query`: creates `--rooms` rooms of `filler` (`POST /matchmake/create/filler`,
//!   never joined: the seat expires, the room stays) over the endpoints,
//!   then times `--joins` sequential join + leave of `battle` with
//!   `{"mode": "q"}`: the cost of finding a room among K listed ones.
//!   `--rooms 100,10000` tops up to each count in turn; each measurement
//!   starts `--settle-seconds` (16) after the last create, once the
//!   fillers' seat reservations (15 s) have expired.
//!
//! Every measurement also reports the load generator's own CPU and the
//! kernel's listen-queue overflows (`TcpExt ListenOverflows`, machine-wide):
//! a connect dropped by a full accept queue is retried after 1 s, which
//! shows up as a 1 s tail. `--pids` (comma-separated) adds the CPU the
//! listed server processes used. `--label` tags the results;
//! `--join-timeout-ms` (10,000) gives up on a join. The output is a table
//! plus one JSON line (starting with `{`) per result on stdout; progress
//! goes to stderr.
//!
//! The HTTP requests use a fresh connection each (`Connection: close`),
//! the WebSockets have Nagle off; everything runs on one multi-threaded
//! tokio runtime (a thread per core), on the same machine as the servers.

#![allow(
    clippy::int_plus_one,
    reason = "emitted by #[derive(Schema)] for a struct with one field"
)]

#[allow(
    dead_code,
    reason = "clusterbench uses only the flags and the CPU reading"
)]
mod support;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use roomcast::schema::decoder::Decoder;
use roomcast::schema::{MapSchema, Schema};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

// ----- the state a joiner decodes ------------------------------------------------

/// A player of `battle` (the demo's and the Node cluster's).
#[derive(Schema, Default)]
#[schema(crate = "roomcast::schema", decode)]
struct Player {
    name: String,
}

/// The state of `battle`.
#[derive(Schema, Default)]
#[schema(crate = "roomcast::schema", decode)]
struct BattleState {
    players: MapSchema<Player>,
}

// ----- the client ------------------------------------------------------------

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// An HTTP endpoint of the cluster: `http://host:port[/path]`.
#[derive(Clone, Debug)]
struct Endpoint {
    /// `host:port`, for the TCP connection and the `Host` header.
    authority: String,
    /// The path prefix (`""` or `/path`), before `/matchmake` and the
    /// WebSocket path.
    path: String,
}

impl Endpoint {
    fn parse(url: &str) -> Result<Self, String> {
        let rest = url
            .strip_prefix("http://")
            .ok_or_else(|| format!("{url}: only http:// endpoints are supported"))?;
        let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
        let path = path.trim_end_matches('/');
        let authority = if authority.contains(':') {
            authority.to_owned()
        } else {
            format!("{authority}:80")
        };
        Ok(Self {
            authority,
            path: if path.is_empty() {
                String::new()
            } else {
                format!("/{path}")
            },
        })
    }
}

/// Why a join (or a create) failed; `kind` groups the failures in the
/// report (`http 522`, `ws error 524`, `timeout`, …).
#[derive(Debug)]
struct Failure {
    kind: String,
    detail: String,
}

impl Failure {
    fn new(kind: impl Into<String>, detail: impl std::fmt::Display) -> Self {
        Self {
            kind: kind.into(),
            detail: detail.to_string(),
        }
    }
}

/// The fields of a seat reservation a client uses.
#[derive(Clone, Debug)]
struct Seat {
    room_id: String,
    session_id: String,
    process_id: String,
    public_address: Option<String>,
}

impl Seat {
    fn from_json(value: &Value) -> Result<Self, Failure> {
        let field = |name: &str| {
            value[name]
                .as_str()
                .map(str::to_owned)
                .ok_or_else(|| Failure::new("bad reservation", format!("no {name} in {value}")))
        };
        Ok(Self {
            room_id: field("roomId")?,
            session_id: field("sessionId")?,
            process_id: field("processId")?,
            public_address: value["publicAddress"].as_str().map(str::to_owned),
        })
    }

    /// The URL `@colyseus/sdk` 0.18 opens for this reservation.
    fn ws_url(&self, endpoint: &Endpoint) -> String {
        let base = match &self.public_address {
            Some(address) => address.trim_end_matches('/').to_owned(),
            None => format!("{}{}", endpoint.authority, endpoint.path),
        };
        format!(
            "ws://{base}/{}/{}?sessionId={}",
            self.process_id, self.room_id, self.session_id
        )
    }
}

/// `POST <path>/matchmake/<method>/<room>` with a JSON body over a fresh
/// HTTP/1.1 connection (`Connection: close`); the seat reservation.
async fn matchmake(
    endpoint: &Endpoint,
    method: &str,
    room: &str,
    options: &Value,
) -> Result<Seat, Failure> {
    let body = options.to_string();
    let mut stream = TcpStream::connect(&endpoint.authority)
        .await
        .map_err(|e| Failure::new("http connect", e))?;
    let _ = stream.set_nodelay(true);
    let request = format!(
        "POST {}/matchmake/{method}/{room} HTTP/1.1\r\nHost: {}\r\n\
         Content-Type: application/json\r\nAccept: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        endpoint.path,
        endpoint.authority,
        body.len()
    );
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(|e| Failure::new("http write", e))?;
    let mut response = Vec::with_capacity(1024);
    stream
        .read_to_end(&mut response)
        .await
        .map_err(|e| Failure::new("http read", e))?;
    let text = String::from_utf8_lossy(&response);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| Failure::new("http read", "no HTTP body"))?;
    let status = head.split_whitespace().nth(1).unwrap_or("?");
    // Chunked bodies (Node) put the JSON between size lines.
    let json = body
        .find('{')
        .and_then(|start| body.rfind('}').map(|end| &body[start..=end]))
        .unwrap_or("");
    if status != "200" {
        return Err(Failure::new(format!("http {status}"), json));
    }
    let value: Value =
        serde_json::from_str(json).map_err(|e| Failure::new("bad reservation", e))?;
    if value.get("error").is_some() {
        // A 0.16-style error (HTTP 200 + {code, error}).
        return Err(Failure::new(
            format!("http 200 code {}", value["code"]),
            json,
        ));
    }
    Seat::from_json(&value)
}

/// A schema `number` as the ERROR frame carries its code.
fn read_number(bytes: &[u8]) -> Option<(u64, &[u8])> {
    let (&first, rest) = bytes.split_first()?;
    let le = |n: usize| -> Option<(u64, &[u8])> {
        let value = rest
            .get(..n)?
            .iter()
            .rev()
            .fold(0u64, |acc, b| (acc << 8) | u64::from(*b));
        Some((value, &rest[n..]))
    };
    match first {
        0..=0x7f => Some((u64::from(first), rest)),
        0xcc => le(1),
        0xcd => le(2),
        0xce => le(4),
        _ => None,
    }
}

/// `0b | number code | str message`.
fn parse_error_frame(frame: &[u8]) -> Failure {
    let Some((code, rest)) = read_number(frame.get(1..).unwrap_or_default()) else {
        return Failure::new("ws error", "unreadable ERROR frame");
    };
    let message = match rest.split_first() {
        Some((&h, s)) if (0xa0..=0xbf).contains(&h) => s.get(..usize::from(h & 0x1f)),
        Some((0xd9, s)) => s.split_first().and_then(|(&n, s)| s.get(..usize::from(n))),
        _ => None,
    }
    .map(String::from_utf8_lossy)
    .unwrap_or_default();
    Failure::new(format!("ws error {code}"), message)
}

/// What a completed join measured.
struct Joined {
    seat: Seat,
    /// From the due time to the seat reservation.
    reserve: Duration,
    /// From the due time to ROOM_STATE.
    total: Duration,
    /// Players in the ROOM_STATE this client received (itself included).
    players_in_state: usize,
    ws: Ws,
}

/// The steps of a `joinOrCreate`: reservation, WebSocket, JOIN_ROOM, ack,
/// ROOM_STATE. `seat` receives the reservation as soon as there is one
/// (for the per-room counts, whatever happens next).
async fn join_steps(
    endpoint: &Endpoint,
    room: &str,
    options: &Value,
    due: Instant,
    seat_out: &mut Option<Seat>,
) -> Result<Joined, Failure> {
    let seat = matchmake(endpoint, "joinOrCreate", room, options).await?;
    let reserve = due.elapsed();
    *seat_out = Some(seat.clone());
    let (mut ws, _) =
        tokio_tungstenite::connect_async_with_config(seat.ws_url(endpoint), None, true)
            .await
            .map_err(|e| Failure::new("ws connect", e))?;
    let players_in_state = loop {
        let message = match ws.next().await {
            Some(Ok(message)) => message,
            Some(Err(e)) => return Err(Failure::new("ws read", e)),
            None => return Err(Failure::new("ws closed", "before ROOM_STATE")),
        };
        let frame = match message {
            Message::Binary(frame) => frame,
            Message::Close(close) => {
                let code = close.map_or(0, |c| u16::from(c.code));
                return Err(Failure::new(
                    format!("ws close {code}"),
                    "before ROOM_STATE",
                ));
            }
            _ => continue,
        };
        match frame.first() {
            Some(0x0a) => ws
                .send(Message::Binary(vec![0x0a].into()))
                .await
                .map_err(|e| Failure::new("ws write", e))?,
            Some(0x0e) => {
                // The full state must list this client under its name.
                let mut decoder =
                    Decoder::<BattleState>::new().map_err(|e| Failure::new("state", e))?;
                decoder
                    .decode(&frame[1..])
                    .map_err(|e| Failure::new("state", e))?;
                let players = decoder.state().players.len();
                let own = decoder.state().players.get(&seat.session_id);
                let expected = options["name"].as_str().unwrap_or(&seat.session_id);
                if own.map(|p| p.name.as_str()) != Some(expected) {
                    return Err(Failure::new(
                        "state",
                        format!("ROOM_STATE does not list {} as {expected}", seat.session_id),
                    ));
                }
                break players;
            }
            Some(0x0b) => return Err(parse_error_frame(&frame)),
            _ => {}
        }
    };
    Ok(Joined {
        seat,
        reserve,
        total: due.elapsed(),
        players_in_state,
        ws,
    })
}

/// A join of `battle` through endpoint `i % endpoints`, given up after the
/// join timeout: the reservation (if one was made) and the result.
async fn join(
    ctx: &Context,
    i: usize,
    options: &Value,
    due: Instant,
) -> (Option<Seat>, Result<Joined, Failure>) {
    let mut seat = None;
    let result = tokio::time::timeout(
        ctx.join_timeout,
        join_steps(ctx.endpoint(i), "battle", options, due, &mut seat),
    )
    .await
    .unwrap_or_else(|_| {
        let stage = if seat.is_some() {
            "timeout after the reservation"
        } else {
            "timeout waiting for the reservation"
        };
        Err(Failure::new(stage, "join timed out"))
    });
    (seat, result)
}

/// LEAVE_ROOM, then wait (at most 2 s) for the server to close.
async fn leave(mut ws: Ws) {
    if ws.send(Message::Binary(vec![0x0c].into())).await.is_err() {
        return;
    }
    let _ = tokio::time::timeout(Duration::from_secs(2), async {
        while let Some(Ok(_)) = ws.next().await {}
    })
    .await;
}

fn battle_options(mode: usize, i: usize) -> Value {
    json!({ "mode": format!("m{mode}"), "name": format!("p{i}") })
}

// ----- statistics ----------------------------------------------------------------

/// Nearest-rank percentile of sorted milliseconds (NaN when empty).
fn percentile(sorted_ms: &[f64], p: f64) -> f64 {
    if sorted_ms.is_empty() {
        return f64::NAN;
    }
    let rank = (p * sorted_ms.len() as f64).ceil() as usize;
    sorted_ms[rank.clamp(1, sorted_ms.len()) - 1]
}

fn sorted_ms(durations: &[Duration]) -> Vec<f64> {
    let mut ms: Vec<f64> = durations.iter().map(|d| d.as_secs_f64() * 1e3).collect();
    ms.sort_by(f64::total_cmp);
    ms
}

/// Failures grouped by kind, with one example detail each.
#[derive(Default)]
struct Failures {
    by_kind: BTreeMap<String, (usize, String)>,
}

impl Failures {
    fn add(&mut self, failure: Failure) {
        let entry = self
            .by_kind
            .entry(failure.kind)
            .or_insert_with(|| (0, failure.detail));
        entry.0 += 1;
    }

    fn total(&self) -> usize {
        self.by_kind.values().map(|(n, _)| n).sum()
    }

    fn json(&self) -> Value {
        self.by_kind
            .iter()
            .map(|(kind, (n, _))| (kind.clone(), json!(n)))
            .collect::<serde_json::Map<_, _>>()
            .into()
    }

    fn print(&self) {
        for (kind, (n, example)) in &self.by_kind {
            let example: String = example.chars().take(160).collect();
            println!("    {n} × {kind}: {example}");
        }
    }
}

/// CPU seconds used so far by the listed processes (user + system).
fn cpu_of(pids: &[u32]) -> f64 {
    pids.iter()
        .map(|pid| {
            let (user, system) = support::cpu_split(*pid);
            user + system
        })
        .sum()
}

/// CPU seconds this load generator used so far.
fn own_cpu() -> f64 {
    cpu_of(&[std::process::id()])
}

/// The kernel's count of connections dropped because a listen queue was
/// full (`TcpExt ListenOverflows`): a burst of connects beyond a server's
/// accept backlog shows up as 1 s SYN retransmissions in the latencies.
fn listen_overflows() -> u64 {
    let netstat = std::fs::read_to_string("/proc/net/netstat").unwrap_or_default();
    let mut tcp_ext = netstat.lines().filter(|l| l.starts_with("TcpExt:"));
    let (Some(names), Some(values)) = (tcp_ext.next(), tcp_ext.next()) else {
        return 0;
    };
    names
        .split_whitespace()
        .zip(values.split_whitespace())
        .find(|(name, _)| *name == "ListenOverflows")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0)
}

/// Server CPU, load generator CPU and listen overflows since `start`.
#[derive(Clone, Copy)]
struct Usage {
    server_cpu: f64,
    client_cpu: f64,
    overflows: u64,
}

impl Usage {
    fn now(ctx: &Context) -> Self {
        Self {
            server_cpu: cpu_of(&ctx.pids),
            client_cpu: own_cpu(),
            overflows: listen_overflows(),
        }
    }

    fn since(self, ctx: &Context) -> Self {
        let now = Self::now(ctx);
        Self {
            server_cpu: now.server_cpu - self.server_cpu,
            client_cpu: now.client_cpu - self.client_cpu,
            overflows: now.overflows.saturating_sub(self.overflows),
        }
    }
}

fn round(x: f64, digits: i32) -> Value {
    if x.is_finite() {
        let f = 10f64.powi(digits);
        json!((x * f).round() / f)
    } else {
        Value::Null
    }
}

struct Context {
    endpoints: Vec<Endpoint>,
    label: String,
    pids: Vec<u32>,
    join_timeout: Duration,
    spread_modes: bool,
}

impl Context {
    fn endpoint(&self, i: usize) -> &Endpoint {
        &self.endpoints[i % self.endpoints.len()]
    }

    /// The mode of request `i`: `i % 3`, or with `--spread-modes`
    /// `(i / endpoints) % 3`, which sends every mode to every endpoint
    /// (with 3 endpoints, `i % 3` sends all of a mode to one endpoint).
    fn mode(&self, i: usize) -> usize {
        if self.spread_modes {
            (i / self.endpoints.len()) % 3
        } else {
            i % 3
        }
    }
}

// ----- burst -------------------------------------------------------------------

struct Outcome {
    mode: usize,
    seat: Option<Seat>,
    /// Reservation time, join time, players in the received full state.
    result: Result<(Duration, Duration, usize), Failure>,
}

async fn burst(ctx: Arc<Context>, n: usize) {
    eprintln!(
        "burst: {n} concurrent joinOrCreate(\"battle\") over {} endpoint(s)…",
        ctx.endpoints.len()
    );
    let barrier = Arc::new(tokio::sync::Barrier::new(n));
    let usage = Usage::now(&ctx);
    let start = Instant::now();
    let tasks: Vec<_> = (0..n)
        .map(|i| {
            let ctx = ctx.clone();
            let barrier = barrier.clone();
            tokio::spawn(async move {
                let mode = ctx.mode(i);
                let (seat, result) = join(&ctx, i, &battle_options(mode, i), Instant::now()).await;
                let outcome = match result {
                    Ok(joined) => {
                        let outcome = Outcome {
                            mode,
                            seat: Some(joined.seat),
                            result: Ok((joined.reserve, joined.total, joined.players_in_state)),
                        };
                        // Everyone stays until all have joined.
                        barrier.wait().await;
                        leave(joined.ws).await;
                        outcome
                    }
                    Err(failure) => {
                        barrier.wait().await;
                        Outcome {
                            mode,
                            seat,
                            result: Err(failure),
                        }
                    }
                };
                outcome
            })
        })
        .collect();
    let mut outcomes = Vec::with_capacity(n);
    for task in tasks {
        if let Ok(outcome) = task.await {
            outcomes.push(outcome);
        }
    }
    let wall = start.elapsed();
    let usage = usage.since(&ctx);
    let mut totals = Vec::new();
    let mut reserves = Vec::new();
    let mut failures = Failures::default();
    let mut per_mode_n = [0usize; 3];
    let mut per_mode_rooms: [HashSet<String>; 3] = Default::default();
    let mut seats_per_room: HashMap<String, usize> = HashMap::new();
    let mut modes_per_room: HashMap<String, HashSet<usize>> = HashMap::new();
    let mut max_in_state = 0;
    for outcome in outcomes {
        per_mode_n[outcome.mode] += 1;
        if let Some(seat) = &outcome.seat {
            per_mode_rooms[outcome.mode].insert(seat.room_id.clone());
            *seats_per_room.entry(seat.room_id.clone()).or_default() += 1;
            modes_per_room
                .entry(seat.room_id.clone())
                .or_default()
                .insert(outcome.mode);
        }
        match outcome.result {
            Ok((reserve, total, players)) => {
                reserves.push(reserve);
                totals.push(total);
                max_in_state = max_in_state.max(players);
            }
            Err(failure) => failures.add(failure),
        }
    }
    let expected: Vec<usize> = per_mode_n.iter().map(|n| n.div_ceil(10)).collect();
    let rooms: Vec<usize> = per_mode_rooms.iter().map(HashSet::len).collect();
    let duplicates: usize = rooms
        .iter()
        .zip(&expected)
        .map(|(r, e)| r.saturating_sub(*e))
        .sum();
    let mixed = modes_per_room.values().filter(|m| m.len() > 1).count();
    let max_in_room = seats_per_room.values().copied().max().unwrap_or(0);
    let over_capacity = seats_per_room.values().filter(|n| **n > 10).count();
    let total_ms = sorted_ms(&totals);
    let reserve_ms = sorted_ms(&reserves);
    let slowest = total_ms.last().copied().unwrap_or(f64::NAN);

    println!();
    println!(
        "burst ({}, {n} joins, {} endpoints)",
        ctx.label,
        ctx.endpoints.len()
    );
    println!(
        "  {:<6} {:>7} {:>7} {:>9}",
        "mode", "joins", "rooms", "expected"
    );
    for m in 0..3 {
        println!(
            "  {:<6} {:>7} {:>7} {:>9}",
            format!("m{m}"),
            per_mode_n[m],
            rooms[m],
            expected[m]
        );
    }
    println!(
        "  distinct rooms {}, duplicates {duplicates}, rooms with two modes {mixed}, \
         max seats in a room {max_in_room} (rooms over 10: {over_capacity}), \
         most players in a joiner's full state {max_in_state}, failures {}",
        seats_per_room.len(),
        failures.total()
    );
    println!(
        "  join p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms (reservation p50 {:.1} ms, p99 {:.1} ms); \
         all joined in {:.0} ms, {:.0} joins/s; server CPU {:.2} s, load generator CPU {:.2} s, \
         listen queue overflows {}",
        percentile(&total_ms, 0.5),
        percentile(&total_ms, 0.99),
        slowest,
        percentile(&reserve_ms, 0.5),
        percentile(&reserve_ms, 0.99),
        slowest,
        totals.len() as f64 / (slowest / 1e3),
        usage.server_cpu,
        usage.client_cpu,
        usage.overflows
    );
    failures.print();
    println!(
        "{}",
        json!({
            "scenario": "burst",
            "label": ctx.label,
            "spread_modes": ctx.spread_modes,
            "endpoints": ctx.endpoints.len(),
            "n": n,
            "joined": totals.len(),
            "failures": failures.total(),
            "failure_kinds": failures.json(),
            "rooms_per_mode": rooms,
            "expected_per_mode": expected,
            "distinct_rooms": seats_per_room.len(),
            "duplicates": duplicates,
            "mixed_mode_rooms": mixed,
            "max_seats_in_room": max_in_room,
            "max_players_in_state": max_in_state,
            "rooms_over_capacity": over_capacity,
            "p50_ms": round(percentile(&total_ms, 0.5), 2),
            "p99_ms": round(percentile(&total_ms, 0.99), 2),
            "max_ms": round(slowest, 2),
            "reserve_p50_ms": round(percentile(&reserve_ms, 0.5), 2),
            "reserve_p99_ms": round(percentile(&reserve_ms, 0.99), 2),
            "wall_ms": round(wall.as_secs_f64() * 1e3, 1),
            "server_cpu_s": round(usage.server_cpu, 2),
            "client_cpu_s": round(usage.client_cpu, 2),
            "listen_overflows": usage.overflows,
        })
    );
}

// ----- ramp ----------------------------------------------------------------------

struct Step {
    rate: u32,
    offered: usize,
    ok: usize,
    achieved: f64,
    p50: f64,
    p99: f64,
    max: f64,
    reserve_p99: f64,
    failures: Failures,
    usage: Usage,
    seconds: f64,
}

async fn ramp_step(ctx: &Arc<Context>, rate: u32, seconds: f64, first_index: usize) -> Step {
    let count = (f64::from(rate) * seconds).round().max(1.0) as usize;
    let interval = Duration::from_secs_f64(1.0 / f64::from(rate));
    let usage = Usage::now(ctx);
    let start = Instant::now() + Duration::from_millis(20);
    let mut tasks = Vec::with_capacity(count);
    for k in 0..count {
        // Open loop: join k is due at a fixed time whatever the server does,
        // and its latency counts from then (a late load generator is
        // charged to the result, never hidden).
        let due = start + interval * k as u32;
        tokio::time::sleep_until(due.into()).await;
        let ctx = ctx.clone();
        let i = first_index + k;
        tasks.push(tokio::spawn(async move {
            let (_, result) = join(&ctx, i, &battle_options(ctx.mode(i), i), due).await;
            let done = Instant::now();
            match result {
                Ok(joined) => {
                    tokio::spawn(leave(joined.ws));
                    (Ok((joined.reserve, joined.total)), done)
                }
                Err(failure) => (Err(failure), done),
            }
        }));
    }
    let mut totals = Vec::with_capacity(count);
    let mut reserves = Vec::with_capacity(count);
    let mut failures = Failures::default();
    let mut last = start;
    // Joins completed while the step was sending: its throughput.
    let window = interval * count as u32;
    let mut in_window = 0;
    for task in tasks {
        let Ok((result, done)) = task.await else {
            continue;
        };
        last = last.max(done);
        match result {
            Ok((reserve, total)) => {
                reserves.push(reserve);
                totals.push(total);
                if done <= start + window {
                    in_window += 1;
                }
            }
            Err(failure) => failures.add(failure),
        }
    }
    let usage = usage.since(ctx);
    let elapsed = last.saturating_duration_since(start).as_secs_f64();
    let total_ms = sorted_ms(&totals);
    let reserve_ms = sorted_ms(&reserves);
    Step {
        rate,
        offered: count,
        ok: totals.len(),
        achieved: f64::from(in_window) / window.as_secs_f64().max(1e-9),
        p50: percentile(&total_ms, 0.5),
        p99: percentile(&total_ms, 0.99),
        max: total_ms.last().copied().unwrap_or(f64::NAN),
        reserve_p99: percentile(&reserve_ms, 0.99),
        failures,
        usage,
        seconds: elapsed,
    }
}

async fn ramp(ctx: Arc<Context>, rates: Vec<u32>, seconds: f64, p99_limit: f64, keep_going: bool) {
    println!();
    println!(
        "ramp ({}, {} endpoints, {seconds} s per step, join + leave, limit p99 {p99_limit} ms)",
        ctx.label,
        ctx.endpoints.len()
    );
    println!(
        "  {:>7} {:>8} {:>8} {:>10} {:>8} {:>8} {:>8} {:>11} {:>7} {:>12} {:>9} {:>9}",
        "rate/s",
        "offered",
        "joined",
        "achieved/s",
        "p50 ms",
        "p99 ms",
        "max ms",
        "resv p99 ms",
        "errors",
        "server cpu %",
        "gen cpu %",
        "overflows"
    );
    let mut best: Option<(u32, f64, f64, f64)> = None;
    // After the first step over the limit, later steps no longer count.
    let mut stopped = false;
    let mut index = 0;
    for rate in rates {
        eprintln!("ramp: {rate} joins/s for {seconds} s…");
        let step = ramp_step(&ctx, rate, seconds, index).await;
        index += step.offered;
        let errors = step.failures.total();
        println!(
            "  {:>7} {:>8} {:>8} {:>10.0} {:>8.1} {:>8.1} {:>8.1} {:>11.1} {:>7} {:>12.0} {:>9.0} {:>9}",
            step.rate,
            step.offered,
            step.ok,
            step.achieved,
            step.p50,
            step.p99,
            step.max,
            step.reserve_p99,
            errors,
            step.usage.server_cpu / step.seconds.max(1e-9) * 100.0,
            step.usage.client_cpu / step.seconds.max(1e-9) * 100.0,
            step.usage.overflows
        );
        step.failures.print();
        let within = errors == 0 && step.p99 <= p99_limit;
        println!(
            "{}",
            json!({
                "scenario": "ramp_step",
                "label": ctx.label,
                "spread_modes": ctx.spread_modes,
                "endpoints": ctx.endpoints.len(),
                "rate": step.rate,
                "offered": step.offered,
                "joined": step.ok,
                "achieved_per_s": round(step.achieved, 1),
                "p50_ms": round(step.p50, 2),
                "p99_ms": round(step.p99, 2),
                "max_ms": round(step.max, 2),
                "reserve_p99_ms": round(step.reserve_p99, 2),
                "errors": errors,
                "failure_kinds": step.failures.json(),
                "seconds": round(step.seconds, 3),
                "server_cpu_s": round(step.usage.server_cpu, 2),
                "client_cpu_s": round(step.usage.client_cpu, 2),
                "listen_overflows": step.usage.overflows,
                "within_limit": within,
            })
        );
        if within && best.is_none_or(|b| b.0 < step.rate) && !stopped {
            best = Some((step.rate, step.achieved, step.p50, step.p99));
        }
        if !within {
            stopped = true;
            if !keep_going {
                break;
            }
        }
        // Let the leaves of this step finish and the rooms dispose.
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    match best {
        Some((rate, achieved, p50, p99)) => println!(
            "  highest rate within p99 ≤ {p99_limit} ms and no errors: {rate}/s \
             (achieved {achieved:.0}/s, p50 {p50:.1} ms, p99 {p99:.1} ms)"
        ),
        None => println!("  no rate stayed within p99 ≤ {p99_limit} ms without errors"),
    }
    println!(
        "{}",
        json!({
            "scenario": "ramp",
            "label": ctx.label,
            "spread_modes": ctx.spread_modes,
            "endpoints": ctx.endpoints.len(),
            "p99_limit_ms": p99_limit,
            "max_rate": best.map(|b| b.0),
            "achieved_per_s": best.map(|b| round(b.1, 1)),
            "p50_ms": best.map(|b| round(b.2, 2)),
            "p99_ms": best.map(|b| round(b.3, 2)),
        })
    );
}

// ----- query ---------------------------------------------------------------------

/// Creates `count` filler rooms, `concurrency` requests at a time.
async fn create_fillers(
    ctx: &Arc<Context>,
    first: usize,
    count: usize,
    concurrency: usize,
) -> (Duration, Failures) {
    let start = Instant::now();
    let semaphore = Arc::new(tokio::sync::Semaphore::new(concurrency.max(1)));
    let mut tasks = Vec::with_capacity(count);
    for i in first..first + count {
        let permit = semaphore
            .clone()
            .acquire_owned()
            .await
            .expect("the semaphore stays open");
        let ctx = ctx.clone();
        tasks.push(tokio::spawn(async move {
            let _permit = permit;
            let created = tokio::time::timeout(
                ctx.join_timeout,
                matchmake(ctx.endpoint(i), "create", "filler", &json!({})),
            )
            .await
            .unwrap_or_else(|_| Err(Failure::new("timeout", "create timed out")));
            created.err()
        }));
    }
    let mut failures = Failures::default();
    for task in tasks {
        if let Ok(Some(failure)) = task.await {
            failures.add(failure);
        }
    }
    (start.elapsed(), failures)
}

/// One K of the query scenario.
struct QueryResult {
    rooms: usize,
    create_seconds: f64,
    create_failures: Failures,
    total_ms: Vec<f64>,
    reserve_ms: Vec<f64>,
    failures: Failures,
    usage: Usage,
    seconds: f64,
}

async fn query(
    ctx: Arc<Context>,
    room_counts: Vec<usize>,
    joins: usize,
    concurrency: usize,
    settle: Duration,
) {
    let mut created = 0;
    let mut results = Vec::new();
    for target in room_counts {
        let missing = target.saturating_sub(created);
        eprintln!("query: creating {missing} filler rooms (to {target})…");
        let (took, create_failures) = create_fillers(&ctx, created, missing, concurrency).await;
        created += missing;
        eprintln!(
            "  created in {:.1} s ({:.0}/s), {} failed; waiting {:.0} s for their seats to expire…",
            took.as_secs_f64(),
            missing as f64 / took.as_secs_f64().max(1e-9),
            create_failures.total(),
            settle.as_secs_f64()
        );
        // The fillers' seat reservations expire unused (15 s by default);
        // measure once the listing is in its steady state.
        tokio::time::sleep(settle).await;
        eprintln!(
            "query: {joins} sequential join + leave of battle {{mode: \"q\"}} with {target} filler rooms…"
        );
        let usage = Usage::now(&ctx);
        let measure = Instant::now();
        let mut totals = Vec::with_capacity(joins);
        let mut reserves = Vec::with_capacity(joins);
        let mut failures = Failures::default();
        for i in 0..joins {
            let options = json!({ "mode": "q", "name": format!("q{i}") });
            let (_, result) = join(&ctx, i, &options, Instant::now()).await;
            match result {
                Ok(joined) => {
                    totals.push(joined.total);
                    reserves.push(joined.reserve);
                    leave(joined.ws).await;
                }
                Err(failure) => failures.add(failure),
            }
        }
        results.push(QueryResult {
            rooms: target,
            create_seconds: took.as_secs_f64(),
            create_failures,
            total_ms: sorted_ms(&totals),
            reserve_ms: sorted_ms(&reserves),
            failures,
            usage: usage.since(&ctx),
            seconds: measure.elapsed().as_secs_f64(),
        });
    }
    println!();
    println!(
        "query ({}, {} endpoints, {joins} sequential join + leave of battle among K filler rooms)",
        ctx.label,
        ctx.endpoints.len()
    );
    println!(
        "  {:>7} {:>10} {:>8} {:>8} {:>12} {:>12} {:>7} {:>17}",
        "K rooms",
        "create/s",
        "p50 ms",
        "p99 ms",
        "resv p50 ms",
        "resv p99 ms",
        "errors",
        "server cpu ms/join"
    );
    for r in results {
        let joined = r.total_ms.len();
        let cpu_per_join = r.usage.server_cpu * 1e3 / joined.max(1) as f64;
        println!(
            "  {:>7} {:>10.0} {:>8.2} {:>8.2} {:>12.2} {:>12.2} {:>7} {:>17.2}",
            r.rooms,
            r.rooms as f64 / r.create_seconds.max(1e-9),
            percentile(&r.total_ms, 0.5),
            percentile(&r.total_ms, 0.99),
            percentile(&r.reserve_ms, 0.5),
            percentile(&r.reserve_ms, 0.99),
            r.failures.total(),
            cpu_per_join
        );
        r.create_failures.print();
        r.failures.print();
        println!(
            "{}",
            json!({
                "scenario": "query",
                "label": ctx.label,
                "endpoints": ctx.endpoints.len(),
                "rooms": r.rooms,
                "create_seconds": round(r.create_seconds, 2),
                "create_failures": r.create_failures.total(),
                "joins": joins,
                "joined": joined,
                "errors": r.failures.total(),
                "failure_kinds": r.failures.json(),
                "p50_ms": round(percentile(&r.total_ms, 0.5), 3),
                "p99_ms": round(percentile(&r.total_ms, 0.99), 3),
                "reserve_p50_ms": round(percentile(&r.reserve_ms, 0.5), 3),
                "reserve_p99_ms": round(percentile(&r.reserve_ms, 0.99), 3),
                "server_cpu_ms_per_join": round(cpu_per_join, 3),
                "client_cpu_ms_per_join": round(r.usage.client_cpu * 1e3 / joined.max(1) as f64, 3),
                "joins_per_s": round(joined as f64 / r.seconds.max(1e-9), 1),
            })
        );
    }
}

// ----- main ----------------------------------------------------------------------

fn list<T: std::str::FromStr>(args: &[String], name: &str) -> Option<Vec<T>> {
    let raw: String = support::flag(args, name)?;
    raw.split(',')
        .filter(|s| !s.trim().is_empty())
        .map(|s| s.trim().parse().ok())
        .collect()
}

fn usage() -> ! {
    eprintln!(
        "usage: clusterbench burst|ramp|query --endpoints http://127.0.0.1:A,… [options]\n\
         \x20      clusterbench serve <port>\n\
         \x20      clusterbench ports <n>\n\
         burst: --n 600\n\
         ramp:  --rates 50,100,200,400,800,1600,3200,6400 --step-seconds 3 --p99-ms 100 [--keep-going]\n\
         query: --rooms 100[,10000] --joins 200 --create-concurrency 32 --settle-seconds 16\n\
         all:   --label NAME --pids PID,… --join-timeout-ms 10000 [--spread-modes]"
    );
    std::process::exit(2)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let Some(scenario) = args.get(1).cloned() else {
        usage()
    };
    if scenario == "ports" {
        // `ports <n>`: n distinct free loopback ports (all bound at once,
        // so none repeats), one per line, for scripts.
        let n: usize = args.get(2).and_then(|n| n.parse().ok()).unwrap_or(1);
        let listeners: Vec<_> = (0..n)
            .map(|_| std::net::TcpListener::bind("127.0.0.1:0").expect("a free port"))
            .collect();
        for listener in &listeners {
            println!("{}", listener.local_addr().expect("a bound address").port());
        }
        return;
    }
    let endpoints: Vec<Endpoint> = match list::<String>(&args, "--endpoints") {
        Some(urls) if !urls.is_empty() => urls
            .iter()
            .map(|u| Endpoint::parse(u))
            .collect::<Result<_, _>>()
            .unwrap_or_else(|e| {
                eprintln!("{e}");
                usage()
            }),
        _ => usage(),
    };
    let ctx = Arc::new(Context {
        endpoints,
        label: support::flag(&args, "--label").unwrap_or_else(|| "server".to_owned()),
        pids: list(&args, "--pids").unwrap_or_default(),
        spread_modes: args.iter().any(|a| a == "--spread-modes"),
        join_timeout: Duration::from_millis(
            support::flag(&args, "--join-timeout-ms").unwrap_or(10_000),
        ),
    });
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(async move {
        match scenario.as_str() {
            "burst" => burst(ctx, support::flag(&args, "--n").unwrap_or(600)).await,
            "ramp" => {
                let rates = list(&args, "--rates")
                    .unwrap_or_else(|| vec![50, 100, 200, 400, 800, 1600, 3200, 6400]);
                let seconds = support::flag(&args, "--step-seconds").unwrap_or(3.0);
                let limit = support::flag(&args, "--p99-ms").unwrap_or(100.0);
                let keep_going = args.iter().any(|a| a == "--keep-going");
                ramp(ctx, rates, seconds, limit, keep_going).await;
            }
            "query" => {
                let rooms = list(&args, "--rooms").unwrap_or_else(|| vec![100]);
                let joins = support::flag(&args, "--joins").unwrap_or(200);
                let concurrency = support::flag(&args, "--create-concurrency").unwrap_or(32);
                let settle = support::flag(&args, "--settle-seconds").unwrap_or(16.0);
                query(
                    ctx,
                    rooms,
                    joins,
                    concurrency,
                    Duration::from_secs_f64(settle),
                )
                .await;
            }
            _ => usage(),
        }
    });
}
