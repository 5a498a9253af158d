#!/usr/bin/env node
// Dumps the bytes of the side-by-side benchmark's scenarios as produced by
// @colyseus/schema 5.0.34, so the Rust side (benches/src/bin/compare.rs) can
// check that its output is identical byte for byte.
//
//   node dump-s1.mjs [--n 1000[,10000]] [--ticks 3] [--full] [--churn]
//
// One JSON line per dump on stdout:
//   {"scenario":"S1","n":1000,"tick":1,"hex":"ff03800000803f..."}
// S1: the patches of ticks 1..ticks (every entity x += 1, y += 0.5) after the
// initial encode() + discardChanges(), exactly as bench-schema.mjs runs them.
// --full: also the S3 full state (encodeAll) of the fresh state ("tick":0).
// --churn: also the first `ticks` S4 patches (10 removes of the oldest + 10
// adds, items.push(next & 0xffff) + items.shift() on 1000 uint16s); refIds
// are never reused by the reference.
// --views: the V1 (N=1000) and V2 (N=10000) patches of ticks 1..ticks, shared
// part ("view":-1) and each view's part ("view":c), after the views' adds
// are settled (lib/view-scenarios.mjs). Independent of --n.
// --join: J1 (N=10000): per tick the churn patch ("part":"patch") and the
// full state after it ("part":"full"). Independent of --n.
// Keep the classes and values in step with bench-schema.mjs.

import * as S5 from "@colyseus/schema";
import {
  buildViewState,
  encodeWithViews,
  j1Churn,
  v1Mutate,
  v1Views,
  v2Mutate,
  v2Views,
} from "./lib/view-scenarios.mjs";

const { schema, t, Encoder } = S5;
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

function parseArgs(argv) {
  const opts = { n: [1000], ticks: 3, full: false, churn: false, views: false, join: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === "--n") opts.n = argv[++i].split(",").map(Number);
    else if (a === "--ticks") opts.ticks = Number(argv[++i]);
    else if (a === "--full") opts.full = true;
    else if (a === "--churn") opts.churn = true;
    else if (a === "--views") opts.views = true;
    else if (a === "--join") opts.join = true;
    else {
      process.stderr.write(`usage: node dump-s1.mjs [--n 1000[,10000]] [--ticks 3] [--full] [--churn] [--views] [--join]\n`);
      process.exit(2);
    }
  }
  return opts;
}

function newEntity(i) {
  const e = new Entity();
  e.x = i;
  e.y = i * 0.5;
  e.angle = 0;
  e.hp = 100;
  e.name = `e${i}`;
  return e;
}

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

function readyEncoder(state) {
  const encoder = new Encoder(state);
  encoder.encode();
  encoder.discardChanges();
  return encoder;
}

const hex = (bytes) => Buffer.from(bytes).toString("hex");
const emit = (o) => process.stdout.write(JSON.stringify(o) + "\n");

const OPTS = parseArgs(process.argv.slice(2));
for (const n of OPTS.n) {
  const { state, list } = buildState(n);
  const encoder = readyEncoder(state);
  if (OPTS.full) emit({ scenario: "S3", n, tick: 0, hex: hex(encoder.encodeAll()) });
  for (let tick = 1; tick <= OPTS.ticks; tick++) {
    for (const e of list) {
      e.x += 1;
      e.y += 0.5;
    }
    emit({ scenario: "S1", n, tick, hex: hex(encoder.encode()) });
    encoder.discardChanges();
  }
  if (OPTS.churn) {
    const { state } = buildState(n, 1000);
    const encoder = readyEncoder(state);
    let oldest = 0;
    let next = n;
    for (let tick = 1; tick <= OPTS.ticks; tick++) {
      for (let k = 0; k < 10; k++) {
        state.entities.delete(`e${oldest++}`);
        state.entities.set(`e${next}`, newEntity(next++));
      }
      state.items.push(next & 0xffff);
      state.items.shift();
      emit({ scenario: "S4", n, tick, hex: hex(encoder.encode()) });
      encoder.discardChanges();
    }
  }
}

function dumpViews(scenario, n, makeViews, mutate) {
  const { list, encoder } = buildViewState(n);
  const views = makeViews(list);
  encodeWithViews(encoder, views, false);
  for (let tick = 1; tick <= OPTS.ticks; tick++) {
    mutate(list, tick - 1);
    const r = encodeWithViews(encoder, views, true);
    emit({ scenario, n, tick, view: -1, hex: hex(r.shared) });
    r.parts.forEach((p, c) => emit({ scenario, n, tick, view: c, hex: hex(p) }));
  }
}

if (OPTS.views) {
  dumpViews("V1", 1000, v1Views, v1Mutate);
  dumpViews("V2", 10000, v2Views, v2Mutate);
}

if (OPTS.join) {
  const n = 10000;
  const { state } = buildState(n);
  const encoder = readyEncoder(state);
  const counters = { n, oldest: 0, next: n };
  for (let tick = 1; tick <= OPTS.ticks; tick++) {
    j1Churn(state, newEntity, counters);
    emit({ scenario: "J1", n, tick, part: "patch", hex: hex(encoder.encode()) });
    encoder.discardChanges();
    emit({ scenario: "J1", n, tick, part: "full", hex: hex(encoder.encodeAll()) });
  }
}
