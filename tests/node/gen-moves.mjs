#!/usr/bin/env node
// Writes ../fixtures/moves.json: what @colyseus/schema 5.0.34 sends when an
// instance is removed from one place of the state and the same object is
// put in another (in the same tick or a later one). Each scenario is a list
// of ticks; per tick the patch and the full state after it, as hex.
// `schema/tests/moves.rs` replays the same scenarios with `Moved` values
// and compares bytes. The state (keep in step with moves.rs):
//
//   Item  { x: uint8, tags: array<uint8> }
//   State { a: map<Item>, b: map<Item>, arr: array<Item>, f: Item }
//
// Tick 0 of every scenario ("seed") fills it: a.k1 = Item(1, [1]),
// a.k2 = Item(2, [2]), arr = [Item(3, [3])], f = Item(4, [4]).
//
//   node gen-moves.mjs            # rewrites ../fixtures/moves.json

import { writeFileSync } from "node:fs";
import * as S5 from "@colyseus/schema";

const { schema, t, Encoder } = S5;
const Item = schema({ x: t.uint8(), tags: t.array("uint8") }, "Item");
const State = schema({ a: t.map(Item), b: t.map(Item), arr: t.array(Item), f: Item }, "State");

const item = (x) => {
  const i = new Item();
  i.x = x;
  i.tags.push(x);
  return i;
};
const seed = (s) => {
  s.a.set("k1", item(1));
  s.a.set("k2", item(2));
  s.arr.push(item(3));
  s.f = item(4);
};

const scenarios = {
  map_to_map_same_tick: [(s) => { const v = s.a.get("k1"); s.a.delete("k1"); s.b.set("z", v); }, () => {}],
  map_to_map_next_tick: [(s, c) => { c.v = s.a.get("k1"); s.a.delete("k1"); }, (s, c) => { s.b.set("z", c.v); }, () => {}],
  map_to_map_two_ticks_later: [(s, c) => { c.v = s.a.get("k1"); s.a.delete("k1"); }, () => {}, (s, c) => { s.b.set("z", c.v); }],
  key_to_key_same_map: [(s) => { const v = s.a.get("k1"); s.a.delete("k1"); s.a.set("k9", v); }],
  changed_then_moved: [(s) => { const v = s.a.get("k1"); v.x = 7; s.a.delete("k1"); s.b.set("z", v); }],
  array_changed_then_moved: [(s) => { const v = s.a.get("k1"); v.tags.push(8); s.a.delete("k1"); s.b.set("z", v); }],
  array_to_map: [(s) => { const v = s.arr.pop(); s.b.set("z", v); }],
  map_to_array: [(s) => { const v = s.a.get("k2"); s.a.delete("k2"); s.arr.push(v); }],
  field_to_map: [(s) => { const v = s.f; s.f = undefined; s.b.set("z", v); }],
  map_to_field: [(s) => { const v = s.a.get("k2"); s.a.delete("k2"); s.f = v; }],
  field_to_map_next_tick: [(s, c) => { c.v = s.f; s.f = undefined; }, (s, c) => { s.b.set("z", c.v); }],
};

// A second state, for collections that move with a change of the tick:
//   Bag  { s: collection<uint8>, m: map<uint8> }
//   Bags { a: map<Bag>, b: map<Bag> }
// seeded with a.k = Bag([1, 2, 3], { x: 1, y: 2 }).
const Bag = schema({ s: t.collection("uint8"), m: t.map("uint8") }, "Bag");
const Bags = schema({ a: t.map(Bag), b: t.map(Bag) }, "Bags");
const bagSeed = (s) => {
  const bag = new Bag();
  bag.s.add(1); bag.s.add(2); bag.s.add(3);
  bag.m.set("x", 1); bag.m.set("y", 2);
  s.a.set("k", bag);
};
const bagScenarios = {
  bag_changed_then_moved: [(s) => { const v = s.a.get("k"); v.s.delete(2); v.s.add(4); v.m.delete("x"); v.m.set("z", 3); s.a.delete("k"); s.b.set("z", v); }, () => {}],
  bag_changed_then_moved_next_tick: [(s, c) => { c.v = s.a.get("k"); c.v.s.delete(2); c.v.m.delete("x"); s.a.delete("k"); }, (s, c) => { s.b.set("z", c.v); }],
};

const hex = (b) => Buffer.from(b).toString("hex");
const out = {};
/** Runs every scenario of `scenarios` on a new `Root` after `first`. */
function record(Root, first, scenarios) {
  for (const [name, ticks] of Object.entries(scenarios)) {
    const s = new Root();
    const enc = new Encoder(s);
    const c = {};
    const steps = [];
    for (const tick of [first, ...ticks]) {
      tick(s, c);
      const patch = hex(enc.encode());
      enc.discardChanges();
      steps.push({ patch, full: hex(enc.encodeAll()) });
    }
    out[name] = steps;
  }
}
record(State, seed, scenarios);
record(Bags, bagSeed, bagScenarios);
const file = new URL("../fixtures/moves.json", import.meta.url);
writeFileSync(file, JSON.stringify({ generator: "tests/node/gen-moves.mjs", schema: "5.0.34", scenarios: out }, null, 1) + "\n");
console.log(`wrote ${Object.keys(out).length} scenarios to ${file.pathname}`);
