#!/usr/bin/env node
// JavaScript side of the side-by-side benchmark: @colyseus/schema 5.0.34
// Encoder/Decoder under Node on the same scenarios the Rust benches run.
//
//   node bench-schema.mjs [--scenario S1[,S2...]] [--n 1000] [--quick]
//
// Prints one JSON line per (scenario, n) on stdout:
//   {"scenario":"S1","n":1000,"ns_per_tick":12345.6,"bytes_per_tick":9003}
// Progress / environment details go to stderr.
//
// Schema: Entity {x,y,angle: float32, hp: uint8, name: string},
//         State {entities: MapSchema<Entity>, items: ArraySchema<uint16>},
// keys "e0".."e{N-1}".
//
// S1  every entity moves (x += 1, y += 0.5), then encode() + discardChanges()
// S2  N=10000, 1% of the entities move per tick (rotating window)
// S3  encodeAll() of the whole state
// S4  churn: map of 1000, per tick 10 removes (oldest) + 10 adds, and
//     items.push() + items.shift() on an ArraySchema<uint16> of 1000
// S5  idle tick: encode() + discardChanges() with nothing changed, N=10000
// D1  decode S1 patches (pre-recorded ring) with a Reflection-built Decoder
// D3  decode S3 full states into fresh Reflection-built Decoders
// V1  N=1000 entities with a @view() field, 100 StateViews (own + 10 shared)
// V2  N=10000, 500 StateViews (own 50 + 50 shared), 10% move per tick
// J1  N=10000, 1% of the map replaced per tick, then encodeAll() (a join)
//     (V1, V2, J1: lib/view-scenarios.mjs)
//
// A "tick" is everything that scenario does once (mutations included for the
// encode scenarios). Timing: warm-up, then several batches of >= 1 s in total
// (process.hrtime.bigint); ns_per_tick is the median batch's average.
// bytes_per_tick is the average output size over the first 100 ticks of a
// fresh instance, so it does not depend on how many ticks were timed (S4's
// keys and refIds grow over time).

import * as S5 from "@colyseus/schema";
import { packageVersion } from "./lib/pkg-version.mjs";
import {
  buildViewState,
  encodeWithViews,
  j1Churn,
  v1Mutate,
  v1Views,
  v2Mutate,
  v2Views,
} from "./lib/view-scenarios.mjs";

const { schema, t, Encoder, Reflection } = S5;

// Large enough for encodeAll() of 10k entities without the resize path.
Encoder.BUFFER_SIZE = 8 * 1024 * 1024;

const Entity = schema(
  {
    x: t.float32(),
    y: t.float32(),
    angle: t.float32(),
    hp: t.uint8(),
    name: t.string(),
  },
  "Entity",
);

const State = schema(
  {
    entities: t.map(Entity),
    items: t.array("uint16"),
  },
  "State",
);

// --- options ---------------------------------------------------------------

function parseArgs(argv) {
  const opts = { scenarios: null, n: null, quick: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === "--scenario" || a === "-s") opts.scenarios = new Set(argv[++i].split(",").map((s) => s.toUpperCase()));
    else if (a.startsWith("--scenario=")) opts.scenarios = new Set(a.slice(11).split(",").map((s) => s.toUpperCase()));
    else if (a === "--n") opts.n = new Set(argv[++i].split(",").map(Number));
    else if (a.startsWith("--n=")) opts.n = new Set(a.slice(4).split(",").map(Number));
    else if (a === "--quick") opts.quick = true;
    else if (a === "-h" || a === "--help") {
      process.stderr.write("usage: node bench-schema.mjs [--scenario S1,S2,S3,S4,S5,D1,D3,V1,V2,J1] [--n 1000] [--quick]\n");
      process.exit(0);
    } else {
      process.stderr.write(`unknown argument ${a}\n`);
      process.exit(2);
    }
  }
  return opts;
}

const OPTS = parseArgs(process.argv.slice(2));
const TIMING = OPTS.quick
  ? { warmupNs: 50e6, batches: 3, batchNs: 40e6 }
  : { warmupNs: 300e6, batches: 7, batchNs: 160e6 }; // 7 x 160 ms >= 1 s

// --- helpers -----------------------------------------------------------------

function newEntity(i) {
  const e = new Entity();
  e.x = i;
  e.y = i * 0.5;
  e.angle = 0;
  e.hp = 100;
  e.name = `e${i}`;
  return e;
}

/** State with N entities "e0".."e{N-1}" and `items` holding `items` uint16s. */
function buildState(n, items = 0) {
  const state = new State();
  const list = [];
  for (let i = 0; i < n; i++) {
    const e = newEntity(i);
    state.entities.set(`e${i}`, e);
    list.push(e);
  }
  for (let i = 0; i < items; i++) state.items.push(i);
  return { state, list };
}

/** Encoder past its first (initial) patch. */
function readyEncoder(state) {
  const encoder = new Encoder(state);
  encoder.encode();
  encoder.discardChanges();
  return encoder;
}

const now = () => process.hrtime.bigint();

/** Ticks run on a fresh instance to compute bytes_per_tick deterministically. */
const PROBE_TICKS = 100;

/**
 * `make()` builds a fresh scenario instance `{ tick, setup? }`: `tick(i)` runs
 * one tick and returns the number of bytes it produced; `setup(count)` (if
 * any) runs before each batch, outside the timed region.
 *
 * bytes_per_tick is the average over the first PROBE_TICKS ticks of a fresh
 * instance (independent of how many ticks the timing needed); timing uses a
 * second fresh instance.
 */
function measure(make) {
  const probe = make();
  let probeBytes = 0;
  for (let i = 0; i < PROBE_TICKS; i++) {
    probe.setup?.(1);
    probeBytes += probe.tick(i);
  }

  const { tick, setup } = make();
  // Warm-up, also estimating the cost of one tick.
  let ticks = 0;
  const w0 = now();
  let elapsed = 0n;
  do {
    setup?.(1);
    tick(ticks++);
    elapsed = now() - w0;
  } while (elapsed < BigInt(TIMING.warmupNs) || ticks < 3);
  const perTick = Number(elapsed) / ticks;
  const batchSize = Math.max(1, Math.ceil(TIMING.batchNs / perTick));

  const samples = [];
  let measured = 0;
  for (let b = 0; b < TIMING.batches; b++) {
    setup?.(batchSize);
    const t0 = now();
    for (let i = 0; i < batchSize; i++) tick(ticks++);
    const dt = now() - t0;
    samples.push(Number(dt) / batchSize);
    measured += batchSize;
  }
  samples.sort((a, b) => a - b);
  return {
    nsPerTick: samples[Math.floor(samples.length / 2)],
    bytesPerTick: probeBytes / PROBE_TICKS,
    ticks: measured,
  };
}

function report(scenario, n, result) {
  const line = {
    scenario,
    n,
    ns_per_tick: Math.round(result.nsPerTick * 10) / 10,
    bytes_per_tick: Math.round(result.bytesPerTick * 10) / 10,
  };
  process.stdout.write(JSON.stringify(line) + "\n");
  process.stderr.write(`  ${scenario} n=${n}: ${line.ns_per_tick} ns/tick, ${line.bytes_per_tick} B/tick (${result.ticks} ticks timed)\n`);
}

// --- scenarios ---------------------------------------------------------------

function moveAll(list) {
  for (let i = 0; i < list.length; i++) {
    const e = list[i];
    e.x += 1;
    e.y += 0.5;
  }
}

function s1(n) {
  const { state, list } = buildState(n);
  const encoder = readyEncoder(state);
  return {
    tick() {
      moveAll(list);
      const bytes = encoder.encode().length;
      encoder.discardChanges();
      return bytes;
    },
  };
}

function s2(n) {
  const { state, list } = buildState(n);
  const encoder = readyEncoder(state);
  const perTick = Math.max(1, Math.floor(n / 100));
  let cursor = 0;
  return {
    tick() {
      for (let k = 0; k < perTick; k++) {
        const e = list[cursor];
        e.x += 1;
        e.y += 0.5;
        cursor = cursor + 1 === n ? 0 : cursor + 1;
      }
      const bytes = encoder.encode().length;
      encoder.discardChanges();
      return bytes;
    },
  };
}

function s3(n) {
  const { state } = buildState(n);
  const encoder = readyEncoder(state);
  return { tick: () => encoder.encodeAll().length };
}

function s4(n) {
  const { state } = buildState(n, 1000);
  const encoder = readyEncoder(state);
  const keys = [];
  for (let i = 0; i < n; i++) keys.push(`e${i}`);
  let head = 0; // index of the oldest live key in `keys`
  let next = n;
  return {
    tick() {
      for (let k = 0; k < 10; k++) {
        state.entities.delete(keys[head++]);
        const key = `e${next}`;
        state.entities.set(key, newEntity(next++));
        keys.push(key);
      }
      if (head > 4096) {
        keys.splice(0, head);
        head = 0;
      }
      state.items.push(next & 0xffff);
      state.items.shift();
      const bytes = encoder.encode().length;
      encoder.discardChanges();
      return bytes;
    },
  };
}

function s5(n) {
  const { state } = buildState(n);
  const encoder = readyEncoder(state);
  return {
    tick() {
      const bytes = encoder.encode().length;
      encoder.discardChanges();
      return bytes;
    },
  };
}

/** A decoder built from Reflection only, holding the full state of `encoder`. */
function reflectionDecoder(reflection, full) {
  const decoder = Reflection.decode(reflection);
  if (full) decoder.decode(full);
  return decoder;
}

function d1(n) {
  const { state, list } = buildState(n);
  const encoder = readyEncoder(state);
  const reflection = Reflection.encode(encoder).slice();
  const full = encoder.encodeAll().slice();
  const RING = 32;
  const patches = [];
  for (let i = 0; i < RING; i++) {
    moveAll(list);
    patches.push(encoder.encode().slice());
    encoder.discardChanges();
  }
  const decoder = reflectionDecoder(reflection, full);
  return {
    tick(i) {
      const patch = patches[i % RING];
      decoder.decode(patch);
      return patch.length;
    },
  };
}

function d3(n) {
  const { state } = buildState(n);
  const encoder = readyEncoder(state);
  const reflection = Reflection.encode(encoder).slice();
  const full = encoder.encodeAll().slice();
  // Fresh decoders are created outside the timed region, one per tick.
  let pool = [];
  let next = 0;
  const setup = (count) => {
    pool = [];
    next = 0;
    for (let i = 0; i < count; i++) pool.push(reflectionDecoder(reflection, null));
  };
  return {
    setup,
    tick() {
      pool[next++].decode(full);
      return full.length;
    },
  };
}

/**
 * V1: n entities with a @view() field, 100 clients each with a StateView
 * seeing its own entity and 10 shared ones; every entity moves and every
 * 10th (rotating) changes its view field; one tick = encode() + every
 * encodeView() + discardChanges().
 */
function viewScenario(n, makeViews, mutate) {
  const { list, encoder } = buildViewState(n);
  const views = makeViews(list);
  encodeWithViews(encoder, views, false); // settles the views' adds
  let t = 0;
  return {
    tick() {
      mutate(list, t++);
      return encodeWithViews(encoder, views, false).bytes;
    },
  };
}

const v1 = (n) => viewScenario(n, v1Views, v1Mutate);

/**
 * V2: room scale, n = 10,000 entities and 500 clients, each seeing 50
 * entities of its own and 50 shared; 10% of the entities (every 10th,
 * rotating) move and change their view field per tick.
 */
const v2 = (n) => viewScenario(n, v2Views, v2Mutate);

/**
 * J1: joins under churn: n = 10,000 entities, 1% of them replaced per tick
 * (patch sent), then a full state for a joining client (encodeAll).
 * bytes = patch + full state.
 */
function j1(n) {
  const { state } = buildState(n);
  const encoder = readyEncoder(state);
  const counters = { n, oldest: 0, next: n };
  return {
    tick() {
      j1Churn(state, newEntity, counters);
      let bytes = encoder.encode().length;
      encoder.discardChanges();
      bytes += encoder.encodeAll().length;
      return bytes;
    },
  };
}

const SCENARIOS = [
  ["S1", [100, 1000, 10000], s1],
  ["S2", [10000], s2],
  ["S3", [1000, 10000], s3],
  ["S4", [1000], s4],
  ["S5", [10000], s5],
  ["D1", [1000, 10000], d1],
  ["D3", [1000, 10000], d3],
  ["V1", [1000], v1],
  ["V2", [10000], v2],
  ["J1", [10000], j1],
];

process.stderr.write(
  `bench-schema: @colyseus/schema ${packageVersion("@colyseus/schema")}, node ${process.version}` +
    `${OPTS.quick ? ", --quick" : ""}\n`,
);
let ran = 0;
for (const [name, sizes, fn] of SCENARIOS) {
  if (OPTS.scenarios && !OPTS.scenarios.has(name)) continue;
  for (const n of sizes) {
    if (OPTS.n && !OPTS.n.has(n)) continue;
    report(name, n, measure(() => fn(n)));
    ran++;
  }
}
if (ran === 0) {
  process.stderr.write("no scenario matched the filters\n");
  process.exitCode = 1;
}
