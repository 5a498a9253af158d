//! Differential test against the real `@colyseus/schema` 5.0.34: random
//! mutation sequences (maps, arrays, sets and collections of structs and
//! primitives, moves and shared instances, field deletes) are run through
//! the real npm encoder by `tests/node/gen-vectors.mjs`, which records the
//! patches, the full states and what the real decoder holds after each
//! step; the dynamic decoder must hold the same after every step, and the
//! typed decoder after every step where no instance is shared by two
//! parents (Rust values have one owner).
//!
//! The same streams also go to the real 3.0.76 decoder (what `colyseus.js`
//! 0.16 uses, through `tests/node/decode-server.mjs`), built from the
//! legacy form of the Reflection, against this decoder in the legacy
//! dialect: both must hold the same state (they misread the 5.x array
//! inserts the same way).
//!
//! Needs Node.js and the harness's packages (`tests/node`, `npm ci`); the
//! test says so and passes without them. `ROOMCAST_DIFF_SCENARIOS` sets
//! the number of random scenarios (default 40), `ROOMCAST_DIFF_SEED` the
//! seed.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

use roomcast_schema::decoder::{decode_reflection, Decoder, DynamicDecoder, ReflectionDialect};
use roomcast_schema::{ArraySchema, CollectionSchema, MapSchema, Schema, SetSchema};
use serde_json::{json, Value as Json};

#[macro_use]
mod common;
use common::ToJson;

/// The random scenarios' types, for the typed decoder.
#[derive(Schema, Default, Debug)]
#[schema(decode)]
struct Card {
    suit: Option<String>,
    rank: Option<u8>,
}

#[derive(Schema, Default, Debug)]
#[schema(decode)]
struct Player {
    name: Option<String>,
    #[schema(number)]
    hp: Option<f64>,
    hand: Option<ArraySchema<Card>>,
    tags: Option<SetSchema<String>>,
    stats: Option<MapSchema<u8>>,
}

#[derive(Schema, Default, Debug)]
#[schema(decode)]
struct State {
    players: Option<MapSchema<Player>>,
    deck: Option<ArraySchema<Card>>,
    nums: Option<ArraySchema<u16>>,
    log: Option<CollectionSchema<String>>,
    best: Option<Card>,
    round: Option<u16>,
}

// The typed states as JSON, to compare with the dynamic decoder's.
struct_json!(Card { suit, rank });
struct_json!(Player {
    name,
    hp,
    hand,
    tags,
    stats
});
struct_json!(State {
    players,
    deck,
    nums,
    log,
    best,
    round
});

/// Whether two paths of a step's `refIds` name the same instance.
fn shares_instances(step: &Json) -> bool {
    let ids: Vec<&Json> = step["refIds"]
        .as_object()
        .map(|m| m.values().collect())
        .unwrap_or_default();
    ids.iter().enumerate().any(|(i, a)| ids[..i].contains(a))
}

/// xorshift64*: deterministic, dependency-free.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
}

fn schema() -> Json {
    json!({
        "root": "State",
        "types": [
            { "name": "Card", "fields": [ { "name": "suit", "type": "string" }, { "name": "rank", "type": "uint8" } ] },
            { "name": "Player", "fields": [
                { "name": "name", "type": "string" },
                { "name": "hp", "type": "number" },
                { "name": "hand", "type": { "array": "Card" } },
                { "name": "tags", "type": { "set": "string" } },
                { "name": "stats", "type": { "map": "uint8" } }
            ] },
            { "name": "State", "fields": [
                { "name": "players", "type": { "map": "Player" } },
                { "name": "deck", "type": { "array": "Card" } },
                { "name": "nums", "type": { "array": "uint16" } },
                { "name": "log", "type": { "collection": "string" } },
                { "name": "best", "type": "Card" },
                { "name": "round", "type": "uint16" }
            ] }
        ]
    })
}

/// The generator's model of the state: enough to address existing objects.
#[derive(Default)]
struct Model {
    players: Vec<(String, usize)>,
    deck: usize,
    nums: usize,
    log: usize,
    has_best: bool,
    next_key: u32,
}

fn card(rng: &mut Rng) -> Json {
    let suit = ["h", "d", "c", "s"][rng.below(4)];
    json!({ "$new": "Card", "fields": { "suit": suit, "rank": rng.below(14) } })
}

fn player(rng: &mut Rng, hand: usize) -> Json {
    let cards: Vec<Json> = (0..hand).map(|_| card(rng)).collect();
    json!({ "$new": "Player", "fields": {
        "name": format!("n{}", rng.below(100)),
        "hp": rng.below(200) as f64 / 2.0,
        "hand": { "$array": cards },
        "tags": { "$set": [] },
        "stats": { "$map": {} }
    } })
}

/// A random valid op on the modelled state.
fn op(rng: &mut Rng, m: &mut Model) -> Json {
    loop {
        match rng.below(20) {
            0 => return json!({ "op": "set", "field": "round", "value": rng.below(1000) }),
            1 => {
                m.has_best = true;
                return json!({ "op": "set", "field": "best", "value": card(rng) });
            }
            2 if m.has_best => {
                m.has_best = false;
                return json!({ "op": "set", "field": "best", "value": null });
            }
            3 if m.deck > 0 => {
                // Share a deck card as `best` (one instance, two parents).
                m.has_best = true;
                return json!({ "op": "set", "field": "best", "value": { "$path": ["deck", rng.below(m.deck)] } });
            }
            4 | 5 => {
                let key = format!("p{}", m.next_key % 6);
                m.next_key += 1;
                let hand = rng.below(3);
                match m.players.iter_mut().find(|(k, _)| *k == key) {
                    Some(p) => p.1 = hand,
                    None => m.players.push((key.clone(), hand)),
                }
                return json!({ "op": "map.set", "path": ["players"], "key": key, "value": player(rng, hand) });
            }
            6 if !m.players.is_empty() => {
                let (key, _) = m.players.remove(rng.below(m.players.len()));
                return json!({ "op": "map.delete", "path": ["players"], "key": key });
            }
            7 if !m.players.is_empty() => {
                let (key, _) = &m.players[rng.below(m.players.len())];
                return json!({ "op": "set", "path": ["players", key], "field": "hp", "value": rng.below(500) as f64 / 4.0 });
            }
            8 if !m.players.is_empty() => {
                let i = rng.below(m.players.len());
                let key = m.players[i].0.clone();
                m.players[i].1 += 1;
                return json!({ "op": "array.push", "path": ["players", key, "hand"], "values": [card(rng)] });
            }
            9 if m.players.iter().any(|p| p.1 > 0) => {
                let i = rng.below(m.players.len());
                if m.players[i].1 == 0 {
                    continue;
                }
                m.players[i].1 -= 1;
                let key = m.players[i].0.clone();
                let op = if rng.chance(50) {
                    "array.shift"
                } else {
                    "array.pop"
                };
                return json!({ "op": op, "path": ["players", key, "hand"] });
            }
            10 if !m.players.is_empty() => {
                let (key, _) = &m.players[rng.below(m.players.len())];
                let tag = format!("t{}", rng.below(4));
                let op = if rng.chance(60) {
                    "set.add"
                } else {
                    "set.delete"
                };
                return json!({ "op": op, "path": ["players", key, "tags"], "value": tag });
            }
            11 if !m.players.is_empty() => {
                let (key, _) = &m.players[rng.below(m.players.len())];
                let stat = format!("s{}", rng.below(3));
                return if rng.chance(70) {
                    json!({ "op": "map.set", "path": ["players", key, "stats"], "key": stat, "value": rng.below(100) })
                } else {
                    json!({ "op": "map.delete", "path": ["players", key, "stats"], "key": stat })
                };
            }
            12 => {
                m.deck += 1;
                return if rng.chance(50) {
                    json!({ "op": "array.push", "path": ["deck"], "values": [card(rng)] })
                } else {
                    json!({ "op": "array.unshift", "path": ["deck"], "values": [card(rng)] })
                };
            }
            13 if m.deck > 0 => {
                m.deck -= 1;
                let op = if rng.chance(50) {
                    "array.pop"
                } else {
                    "array.shift"
                };
                return json!({ "op": op, "path": ["deck"] });
            }
            14 if m.deck > 0 => {
                let i = rng.below(m.deck);
                return if rng.chance(50) {
                    json!({ "op": "set", "path": ["deck", i], "field": "rank", "value": rng.below(14) })
                } else {
                    json!({ "op": "array.set", "path": ["deck"], "index": i, "value": card(rng) })
                };
            }
            15 => {
                let n = rng.below(3);
                let values: Vec<usize> = (0..n).map(|_| rng.below(50)).collect();
                let start = rng.below(m.nums + 1);
                let delete = rng.below(m.nums - start + 1);
                m.nums = m.nums - delete + n;
                return json!({ "op": "array.splice", "path": ["nums"], "start": start, "deleteCount": delete, "values": values });
            }
            16 => {
                m.nums += 1;
                return json!({ "op": "array.push", "path": ["nums"], "values": [rng.below(50)] });
            }
            17 if m.nums > 0 => {
                return match rng.below(3) {
                    0 => {
                        json!({ "op": "array.sort", "path": ["nums"], "descending": rng.chance(50) })
                    }
                    1 => {
                        json!({ "op": "array.set", "path": ["nums"], "index": rng.below(m.nums), "value": rng.below(50) })
                    }
                    _ => json!({ "op": "array.reverse", "path": ["nums"] }),
                };
            }
            18 => {
                m.log += 1;
                return json!({ "op": "collection.add", "path": ["log"], "value": format!("e{}", rng.below(5)) });
            }
            19 if m.log > 0 && rng.chance(30) => {
                m.log = 0;
                return json!({ "op": "collection.clear", "path": ["log"] });
            }
            _ => {}
        }
    }
}

fn scenario(seed: u64, index: usize) -> Json {
    let mut rng = Rng((seed.wrapping_mul(0xd134_2543_de82_ef95)
        ^ (index as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15))
        | 1);
    let mut model = Model::default();
    let mut steps = vec![json!({
        "name": "initial",
        "ops": [],
        "initial": {
            "players": { "$map": {} },
            "deck": { "$array": [] },
            "nums": { "$array": [] },
            "log": { "$collection": [] }
        }
    })];
    for s in 0..(6 + rng.below(8)) {
        let ops: Vec<Json> = (0..(1 + rng.below(5)))
            .map(|_| op(&mut rng, &mut model))
            .collect();
        steps.push(json!({ "name": format!("tick {s}"), "ops": ops }));
    }
    json!({
        "name": format!("random_{index:03}"),
        "description": "random mutation sequence (decode_differential.rs)",
        "schema": schema(),
        "steps": steps
    })
}

fn node_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/node")
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

fn parse(json: &str) -> Json {
    serde_json::from_str(json).expect("decoder JSON")
}

/// What the replays ran into.
#[derive(Debug, Default)]
struct Stats {
    /// Scenarios where the reference encoder broke the patch stream.
    diverged: usize,
    /// ... and where this decoder then rejected a patch the real one
    /// half-applied.
    rejected_after_divergence: usize,
    /// Steps with an instance shared by two parents (typed chain not
    /// compared).
    shared_steps: usize,
}

/// Replays one generated vector; returns the number of steps checked.
///
/// After a `divergent` step (the reference encoder sent a patch that does
/// not reproduce its state, `reference-pitfalls.md`), the patch chain is
/// broken: the real decoder later skips blocks of refIds it dropped, where
/// this decoder rejects the message. The chain is then followed only while
/// it decodes, and the typed chain not at all; full states are always
/// checked.
fn replay(v: &Json, file: &Path, stats: &mut Stats) -> usize {
    let name = v["name"].as_str().unwrap_or("?");
    let types = decode_reflection(
        &hex(v["reflection"].as_str().expect("reflection")),
        ReflectionDialect::V5,
    )
    .expect("reflection");
    let mut chain = Some(DynamicDecoder::new(types.clone()));
    let mut typed = Some(Decoder::<State>::new().expect("typed"));
    let mut diverged = false;
    let mut checked = 0;
    for (i, step) in v["steps"].as_array().expect("steps").iter().enumerate() {
        let ctx = format!(
            "{name} step {i} ({}), file {}",
            step["name"],
            file.display()
        );
        if step["divergent"].as_bool() == Some(true) && !diverged {
            diverged = true;
            stats.diverged += 1;
        }
        let patch = hex(step["patch"].as_str().expect("patch"));
        let full = hex(step["full"].as_str().expect("full"));
        let want_full = if step["divergent"].as_bool() == Some(true) {
            &step["fullState"]
        } else {
            &step["state"]
        };
        let sharing = shares_instances(step);
        if let Some(d) = chain.as_mut() {
            let mut listing = String::new();
            let _ = d.explain(&patch, &mut listing);
            match d.decode(&patch) {
                Ok(()) => assert_eq!(
                    parse(&d.to_json()),
                    step["state"],
                    "{ctx}: patch chain\nops {}\n{listing}",
                    step["ops"]
                ),
                Err(_) if diverged => {
                    stats.rejected_after_divergence += 1;
                    chain = None;
                }
                Err(e) => panic!("{ctx}: {e}\n{listing}"),
            }
        }
        if diverged {
            typed = None;
        }
        if let Some(t) = typed.as_mut() {
            t.decode(&patch)
                .unwrap_or_else(|e| panic!("{ctx} typed: {e}"));
            if sharing {
                stats.shared_steps += 1;
            } else {
                assert_eq!(
                    t.state().to_json().expect("typed JSON"),
                    step["state"],
                    "{ctx}: typed patch chain\nops {}",
                    step["ops"]
                );
            }
        }
        let mut fresh = DynamicDecoder::new(types.clone());
        fresh
            .decode(&full)
            .unwrap_or_else(|e| panic!("{ctx} full: {e}"));
        assert_eq!(parse(&fresh.to_json()), *want_full, "{ctx}: full state");
        if !sharing {
            let mut fresh = Decoder::<State>::new().expect("typed");
            fresh
                .decode(&full)
                .unwrap_or_else(|e| panic!("{ctx} typed full: {e}"));
            assert_eq!(
                fresh.state().to_json().expect("typed JSON"),
                *want_full,
                "{ctx}: typed full state"
            );
        }
        checked += 1;
    }
    checked
}

/// The real decoders in a Node process (`decode-server.mjs`).
struct DecodeServer {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    next: u64,
}

impl DecodeServer {
    fn start() -> Option<Self> {
        let mut child = Command::new("node")
            .arg("decode-server.mjs")
            .current_dir(node_dir())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .ok()?;
        let stdin = child.stdin.take()?;
        let stdout = BufReader::new(child.stdout.take()?);
        Some(Self {
            child,
            stdin,
            stdout,
            next: 0,
        })
    }

    fn request(&mut self, mut req: Json) -> Json {
        self.next += 1;
        req["id"] = json!(self.next);
        writeln!(self.stdin, "{req}").expect("decode-server stdin");
        let mut line = String::new();
        self.stdout
            .read_line(&mut line)
            .expect("decode-server stdout");
        serde_json::from_str(&line).expect("decode-server JSON")
    }
}

impl Drop for DecodeServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// How the legacy dialect compared with the real 3.0.76 decoder.
#[derive(Debug, Default)]
struct LegacyStats {
    /// Steps where 3.x holds the server's state, and so does this decoder.
    equal: usize,
    /// First steps where 3.x misreads the 5.x stream, misread the same way.
    same_misreading: usize,
    /// First steps where 3.x loses the state through one of its own
    /// reference-counting quirks that the legacy dialect does not copy.
    quirk_not_copied: usize,
}

/// The patch chain through the real 3.0.76 decoder and this decoder in the
/// legacy dialect, up to the first step where 3.x no longer holds the
/// server's state (it was not made for 5.x streams).
fn replay_legacy(v: &Json, server: &mut DecodeServer, session: &str, stats: &mut LegacyStats) {
    let types = decode_reflection(
        &hex(v["reflection"].as_str().expect("reflection")),
        ReflectionDialect::V5,
    )
    .expect("reflection");
    let legacy_reflection =
        roomcast_schema::encode_reflection(&types, roomcast_schema::Dialect::Legacy);
    let opened = server.request(json!({
        "cmd": "open", "session": session, "schema": "3", "reflection": to_hex(&legacy_reflection)
    }));
    assert_eq!(opened["ok"], json!(true), "{opened}");
    let mut ours = DynamicDecoder::from_reflection(&legacy_reflection, ReflectionDialect::Legacy)
        .expect("legacy reflection");
    for (i, step) in v["steps"].as_array().expect("steps").iter().enumerate() {
        if step["divergent"].as_bool() == Some(true) {
            break;
        }
        let patch = step["patch"].as_str().expect("patch");
        let theirs = server.request(json!({ "cmd": "decode", "session": session, "bytes": patch }));
        let decoded = ours.decode(&hex(patch)).map(|()| parse(&ours.to_json()));
        if theirs["state"] == step["state"] {
            let ours = decoded.unwrap_or_else(|e| panic!("{} step {i} (legacy): {e}", v["name"]));
            assert_eq!(
                ours, theirs["state"],
                "{} step {i}: legacy dialect vs 3.0.76",
                v["name"]
            );
            stats.equal += 1;
            continue;
        }
        match decoded {
            Ok(ours) if ours == theirs["state"] => stats.same_misreading += 1,
            _ => stats.quirk_not_copied += 1,
        }
        break;
    }
    server.request(json!({ "cmd": "close", "session": session }));
}

#[test]
fn random_sequences_match_the_real_decoder() {
    let dir = node_dir();
    if !dir.join("node_modules/@colyseus/schema").exists() {
        eprintln!("decode_differential: tests/node is not installed (`npm ci` there); skipped");
        return;
    }
    let count: usize = std::env::var("ROOMCAST_DIFF_SCENARIOS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(40);
    let seed: u64 = std::env::var("ROOMCAST_DIFF_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5eed_1234);
    let work = std::env::temp_dir().join(format!(
        "roomcast-decode-diff-{}-{seed}",
        std::process::id()
    ));
    let (input, output) = (work.join("in"), work.join("out"));
    std::fs::create_dir_all(&input).expect("temp dir");
    std::fs::create_dir_all(&output).expect("temp dir");
    for i in 0..count {
        let s = scenario(seed, i);
        std::fs::write(input.join(format!("random_{i:03}.json")), s.to_string())
            .expect("write scenario");
    }
    let result = Command::new("node")
        .arg("gen-vectors.mjs")
        .arg(&input)
        .arg(&output)
        .arg("--keep-going")
        .current_dir(&dir)
        .output();
    let Ok(result) = result else {
        eprintln!("decode_differential: cannot run node; skipped");
        return;
    };
    let mut files: Vec<PathBuf> = std::fs::read_dir(&output)
        .expect("output dir")
        .map(|e| e.expect("entry").path())
        .collect();
    files.sort();
    // The generator refuses a scenario whose decoders disagree among
    // themselves (a reference bug it cannot describe); the others must be
    // there.
    assert!(
        files.len() * 4 >= count * 3,
        "only {} of {count} scenarios generated:\n{}",
        files.len(),
        String::from_utf8_lossy(&result.stderr)
    );
    let mut steps = 0;
    let mut stats = Stats::default();
    for f in &files {
        let v: Json =
            serde_json::from_str(&std::fs::read_to_string(f).expect("read")).expect("vector JSON");
        steps += replay(&v, f, &mut stats);
    }
    eprintln!(
        "decode_differential: {} scenarios, {steps} steps, seed {seed}, {stats:?}",
        files.len()
    );
    if let Some(mut server) = DecodeServer::start() {
        let mut legacy = LegacyStats::default();
        for (i, f) in files.iter().enumerate() {
            let v: Json = serde_json::from_str(&std::fs::read_to_string(f).expect("read"))
                .expect("vector JSON");
            replay_legacy(&v, &mut server, &format!("s{i}"), &mut legacy);
        }
        eprintln!("decode_differential: legacy dialect vs 3.0.76: {legacy:?}");
    }
    let _ = std::fs::remove_dir_all(&work);
}
