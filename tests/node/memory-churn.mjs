#!/usr/bin/env node
// Memory growth of @colyseus/schema 5.0.34 under churn: a map held at `live`
// entities while `created` entities in total are created and removed
// (`perTick` removes of the oldest + `perTick` adds, then encode() +
// discardChanges() every tick), as tests/tests/memory.rs does on Roomcast.
//
//   node --expose-gc memory-churn.mjs [--live 1000] [--per-tick 100] [--created 1000000] [--samples 10]
//
// One JSON line per sample on stdout (the heap is measured after a full GC):
//   {"created":100000,"heap_used":12345678,"next_ref_id":100002,"ref_count_entries":100002}
// and a last summary line:
//   {"summary":true,"bytes_per_created_entity":43.1,"next_ref_id":1000002,"live":1000}
// bytes_per_created_entity is the slope of heap_used between the first and
// the last sample. The reference never reuses refIds (Root.nextUniqueId) and
// keeps a refCount entry per refId ever handed out.

import * as S5 from "@colyseus/schema";

const { schema, t, Encoder } = S5;
Encoder.BUFFER_SIZE = 8 * 1024 * 1024;

const Entity = schema(
  { x: t.float32(), y: t.float32(), angle: t.float32(), hp: t.uint8(), name: t.string() },
  "Entity",
);
const State = schema({ entities: t.map(Entity), items: t.array("uint16") }, "State");

function parseArgs(argv) {
  const o = { live: 1000, perTick: 100, created: 1_000_000, samples: 10 };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const v = Number(argv[++i]);
    if (a === "--live") o.live = v;
    else if (a === "--per-tick") o.perTick = v;
    else if (a === "--created") o.created = v;
    else if (a === "--samples") o.samples = v;
    else {
      process.stderr.write("usage: node --expose-gc memory-churn.mjs [--live N] [--per-tick N] [--created N] [--samples N]\n");
      process.exit(2);
    }
  }
  return o;
}

if (typeof global.gc !== "function") {
  process.stderr.write("memory-churn.mjs needs node --expose-gc\n");
  process.exit(2);
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

const O = parseArgs(process.argv.slice(2));
const state = new State();
for (let i = 0; i < O.live; i++) state.entities.set(`e${i}`, newEntity(i));
const encoder = new Encoder(state);
encoder.encode();
encoder.discardChanges();

const root = encoder.root;
function sample(created) {
  global.gc();
  global.gc();
  const s = {
    created,
    heap_used: process.memoryUsage().heapUsed,
    next_ref_id: root.nextUniqueId,
    ref_count_entries: Object.keys(root.refCount).length,
  };
  process.stdout.write(JSON.stringify(s) + "\n");
  return s;
}

let oldest = 0;
let next = O.live;
const every = Math.max(O.perTick, Math.floor(O.created / O.samples));
let nextSample = every;
const samples = [];
while (next < O.created) {
  for (let k = 0; k < O.perTick; k++) {
    state.entities.delete(`e${oldest++}`);
    state.entities.set(`e${next}`, newEntity(next++));
  }
  encoder.encode();
  encoder.discardChanges();
  if (next >= nextSample) {
    samples.push(sample(next));
    nextSample += every;
  }
}
const first = samples[0];
const last = samples[samples.length - 1];
const slope = last.created > first.created ? (last.heap_used - first.heap_used) / (last.created - first.created) : 0;
process.stdout.write(
  JSON.stringify({
    summary: true,
    bytes_per_created_entity: Math.round(slope * 10) / 10,
    next_ref_id: root.nextUniqueId,
    live: state.entities.size,
  }) + "\n",
);
