// Random scenarios in the input format of gen-vectors.mjs: a random schema
// (primitives of every kind, nested structs, subclasses, maps / arrays /
// sets / collections of primitives and of structs, `@view` fields) and
// random steps over the whole op vocabulary of
// tests/fixtures/vectors/README.md.
//
// Ops are chosen against a live @colyseus/schema 5.x state (a planning
// copy: its own root and Encoder, every op applied as soon as it is chosen),
// so every path and value is valid when the op runs; the same ops then go
// through the vector pipeline (gen-vectors.mjs `generate`) unchanged.

import * as S5 from "@colyseus/schema";
import { buildClasses, applyInitial, applyOp, PRIMITIVES } from "./scenario.mjs";
import { kindOf, collectionEntries } from "./json-state.mjs";

const PRIM_NAMES = [...PRIMITIVES];
const COLLECTION_KINDS = ["map", "array", "set", "collection"];
const MAP_KEYS = ["a", "b", "c", "d", "e", "k1", "k2", "0", "1", "2", "10", "x y", "é", "Z"];
const MAX_SAFE = Number.MAX_SAFE_INTEGER;

// --- primitive values ------------------------------------------------------

const INT_RANGES = {
  int8: [-128, 127],
  uint8: [0, 255],
  int16: [-32768, 32767],
  uint16: [0, 65535],
  int32: [-2147483648, 2147483647],
  uint32: [0, 4294967295],
  // int64 / uint64 are JavaScript numbers: exact up to 2^53 (a client
  // decodes high * 2^32 + low, so larger values do not round-trip).
  int64: [-MAX_SAFE, MAX_SAFE],
  uint64: [0, MAX_SAFE],
};

/** A JSON value (vector escapes) for a JS primitive. */
export function primJson(v) {
  if (typeof v === "bigint") return { $bigint: v.toString() };
  if (typeof v === "number") {
    if (Number.isNaN(v)) return { $num: "NaN" };
    if (v === Infinity) return { $num: "Infinity" };
    if (v === -Infinity) return { $num: "-Infinity" };
    if (v === 0 && 1 / v < 0) return { $num: "-0" };
    return v;
  }
  if (typeof v === "string" && v.length > 40) {
    // Long strings of one repeated unit stay small in the files.
    const unit = v.slice(0, 1);
    if (unit.repeat(v.length) === v) return { $repeat: unit, times: v.length };
  }
  return v;
}

function intValue(rng, type) {
  const [lo, hi] = INT_RANGES[type];
  const wide = hi - lo > 2 ** 33;
  return rng.weighted([
    [3, () => lo],
    [3, () => hi],
    [2, () => 0],
    [1, () => (lo < 0 ? -1 : 1)],
    [4, () => rng.range(0, Math.min(hi, 300))],
    [2, () => (wide ? Math.floor(rng.float() * hi) : rng.range(lo, hi))],
    [1, () => (wide ? -Math.floor(rng.float() * -lo) : lo + rng.int(8))],
    [1, () => hi - rng.int(8)],
    // Past the width: the wire keeps the low bits (8/16/32-bit types only;
    // 64-bit types are checked as exact by the reference's own decoder).
    [wide ? 0 : 2, () => hi + 1 + rng.int(3)],
    [wide ? 0 : 2, () => lo - 1 - rng.int(3)],
    [wide ? 0 : 1, () => (hi + 1) * 2 + rng.int(5)],
    [wide ? 0 : 1, () => rng.range(-3, 3) + 0.5],
    [wide ? 1 : 0, () => 2 ** 32 + rng.range(-2, 2)],
    [wide && lo < 0 ? 1 : 0, () => -(2 ** 32) + rng.range(-2, 2)],
    [wide ? 1 : 0, () => 2 ** 31 + rng.range(-1, 1)],
  ])();
}

function numberValue(rng) {
  return rng.weighted([
    [4, () => rng.range(-5, 300)],
    [2, () => Math.round(rng.float() * 1e6) / 100],
    [1, () => 0.1],
    [1, () => 1 / 3],
    [1, () => NaN],
    [1, () => Infinity],
    [1, () => -Infinity],
    [1, () => -0],
    [1, () => 2147483647],
    [1, () => 2147483648],
    [1, () => -2147483648],
    [1, () => -2147483649],
    [1, () => 4294967296],
    [1, () => MAX_SAFE],
    [1, () => -MAX_SAFE],
    [1, () => 1e300],
    [1, () => 1e-300],
    [1, () => 3.4028234663852886e38],
    [1, () => 1.5e-45],
    [1, () => 16777217],
    [1, () => 0.5 - rng.range(0, 3)],
  ])();
}

function floatValue(rng, type) {
  return rng.weighted([
    [4, () => rng.range(-100, 100) / 4],
    [2, () => rng.float() * 1000],
    [1, () => NaN],
    [1, () => Infinity],
    [1, () => -Infinity],
    [1, () => -0],
    [1, () => 0],
    [1, () => 3.4028234663852886e38],
    [1, () => -3.4028234663852886e38],
    [type === "float64" ? 1 : 0, () => 1.7976931348623157e308],
    [1, () => 5e-324],
    [1, () => 1.401298464324817e-45],
    [1, () => 16777217],
    [1, () => 0.1],
    [1, () => 2 ** 53 + 2],
  ])();
}

function bigintValue(rng, type) {
  const signed = type === "bigint64";
  const lo = signed ? -(2n ** 63n) : 0n;
  const hi = signed ? 2n ** 63n - 1n : 2n ** 64n - 1n;
  return rng.weighted([
    [3, () => lo],
    [3, () => hi],
    [2, () => 0n],
    [signed ? 1 : 0, () => -1n],
    [3, () => BigInt(rng.range(0, 1000))],
    [2, () => {
      const bits = (BigInt(rng.u32()) << 32n) | BigInt(rng.u32());
      return signed ? BigInt.asIntN(64, bits) : bits;
    }],
    [1, () => 2n ** 53n + 1n],
    [1, () => 2n ** 32n],
    [signed ? 1 : 0, () => -(2n ** 53n) - 1n],
  ])();
}

function stringValue(rng) {
  return rng.weighted([
    [3, () => ""],
    [8, () => rng.pick(["a", "b", "hero", "x", "Zelda", "n" + rng.int(100)])],
    [2, () => rng.pick(["é", "日本語", "😀", "a😀b", "\u0000", "\uffff", "ÿ"])],
    [1, () => "s".repeat(31)],
    [1, () => "s".repeat(32)],
    [1, () => "t".repeat(255)],
    [1, () => "t".repeat(256)],
    [0.05, () => "u".repeat(65535)],
    [0.01, () => "v".repeat(65536)],
    [1, () => "é".repeat(16)],
  ])();
}

/** A random JS primitive for a field / element of primitive `type`. */
export function randomPrimitive(rng, type) {
  switch (type) {
    case "string": return stringValue(rng);
    case "boolean": return rng.chance(0.5);
    case "number": return numberValue(rng);
    case "float32":
    case "float64": return floatValue(rng, type);
    case "bigint64":
    case "biguint64": return bigintValue(rng, type);
    default: return intValue(rng, type);
  }
}

// --- schema ----------------------------------------------------------------

/**
 * A random `schema` section: root `State` (sometimes extending
 * `StateBase`), 1-3 base types `T1..`, some with subclasses (`T1a`, `T1b`,
 * a subclass of a subclass `T1ax`), occasionally a wide type (up to 63
 * fields); `views` adds `@view` fields (default tag, sometimes tag 1 or 2).
 * Only types the reference's TypeContext discovers from the root are kept.
 */
export function randomSchema(rng, { views = false } = {}) {
  const bases = [];
  const nBase = rng.range(1, 3);
  for (let i = 0; i < nBase; i++) bases.push({ name: `T${i + 1}`, fields: [] });
  const subs = [];
  for (const b of bases) {
    const n = rng.weighted([[5, 0], [3, 1], [1, 2]]);
    for (let j = 0; j < n; j++) subs.push({ name: `${b.name}${"ab"[j]}`, extends: b.name, fields: [] });
  }
  if (subs.length > 0 && rng.chance(0.2)) {
    const p = rng.pick(subs);
    subs.push({ name: `${p.name}x`, extends: p.name, fields: [] });
  }
  const rootBase = rng.chance(0.1) ? { name: "StateBase", fields: [] } : null;
  const root = { name: "State", fields: [] };
  if (rootBase) root.extends = rootBase.name;
  const structNames = [...bases, ...subs].map((t) => t.name);

  let fieldNo = 0;
  const addField = (holder, type) => {
    const f = { name: `f${fieldNo++}`, type };
    if (views && rng.chance(0.3)) f.view = rng.chance(0.2) ? rng.pick([1, 2]) : true;
    holder.fields.push(f);
  };
  const randomType = () => {
    const k = rng.weighted([[45, "prim"], [14, "ref"], [16, "pcoll"], [25, "scoll"]]);
    if (k === "prim") return rng.pick(PRIM_NAMES);
    if (k === "ref") return rng.pick(structNames);
    const kind = rng.weighted([[3, "map"], [3, "array"], [2, "set"], [2, "collection"]]);
    return { [kind]: k === "pcoll" ? rng.pick(PRIM_NAMES) : rng.pick(structNames) };
  };
  const wide = rng.chance(0.05) ? rng.pick(bases) : null;
  for (const t of bases) {
    if (t === wide) {
      const n = rng.range(20, 60);
      for (let i = 0; i < n; i++) addField(t, rng.pick(PRIM_NAMES));
    } else {
      const n = rng.range(1, 5);
      for (let i = 0; i < n; i++) addField(t, randomType());
    }
  }
  // Subclasses need at least one own field: the reference registers a
  // class (and discovers it as a subtype) only through its `@type` fields.
  for (const t of subs) {
    const n = rng.range(1, 3);
    for (let i = 0; i < n; i++) addField(t, randomType());
  }
  if (rootBase) {
    const n = rng.range(1, 3);
    for (let i = 0; i < n; i++) addField(rootBase, randomType());
  }
  // The root always holds a few collections of structs and refs, so ops
  // have something to work on.
  const nRoot = rng.range(3, 7);
  for (let i = 0; i < nRoot; i++) {
    if (i === 0) {
      const kind = rng.pick(COLLECTION_KINDS);
      addField(root, { [kind]: rng.pick(structNames) });
    } else {
      addField(root, randomType());
    }
  }

  // Keep what the reference discovers from the root (fields, subclasses of
  // discovered types, their parents).
  const all = [...(rootBase ? [rootBase] : []), ...bases, ...subs, root];
  const byName = new Map(all.map((t) => [t.name, t]));
  const reach = new Set();
  const visit = (name) => {
    if (reach.has(name) || !byName.has(name)) return;
    reach.add(name);
    const t = byName.get(name);
    for (const c of all) if (c.extends === name) visit(c.name);
    if (t.extends) visit(t.extends);
    for (const f of t.fields) {
      const ref = typeof f.type === "string" ? f.type : Object.values(f.type)[0];
      if (!PRIMITIVES.has(ref)) visit(ref);
    }
  };
  visit(root.name);
  return { root: root.name, types: all.filter((t) => reach.has(t.name)) };
}

// --- the live planning state -----------------------------------------------

class SchemaInfo {
  constructor(schema) {
    this.schema = schema;
    this.byName = new Map(schema.types.map((t) => [t.name, t]));
    this.fieldCache = new Map();
  }
  /** Every field of a type, inherited ones first. */
  fieldsOf(name) {
    let fields = this.fieldCache.get(name);
    if (!fields) {
      const t = this.byName.get(name);
      fields = [...(t.extends ? this.fieldsOf(t.extends) : []), ...t.fields];
      this.fieldCache.set(name, fields);
    }
    return fields;
  }
  /** `name` and every type extending it (transitively). */
  descendants(name) {
    const out = [name];
    for (const t of this.schema.types) if (t.extends === name) out.push(...this.descendants(t.name));
    return out;
  }
  isSubtype(name, of) {
    for (let n = name; n !== undefined; n = this.byName.get(n)?.extends) if (n === of) return true;
    return false;
  }
  tags() {
    const tags = new Set();
    for (const t of this.schema.types) for (const f of t.fields) if (typeof f.view === "number") tags.add(f.view);
    return [...tags];
  }
  hasViewFields() {
    return this.schema.types.some((t) => t.fields.some((f) => f.view !== undefined && f.view !== false));
  }
}

const isPrim = (t) => typeof t === "string" && PRIMITIVES.has(t);

/**
 * Plans one scenario: builds the schema's classes, a root and an Encoder,
 * and chooses ops that are valid against that live state.
 */
export class ScenarioPlanner {
  /**
   * `reuse`: whether ops may place existing instances again ($path /
   * $stash values: moves, shares, re-attached stashes). Roomcast checks
   * those steps (and the later ones whose refIds they offset) by state
   * only, so only some scenarios do it.
   */
  constructor(rng, schema, viewNames, { reuse = true } = {}) {
    this.rng = rng;
    this.reuse = reuse;
    this.info = new SchemaInfo(schema);
    this.schema = schema;
    this.classes = buildClasses(S5, schema);
    this.nameOf = new Map([...this.classes].map(([n, k]) => [k, n]));
    this.viewNames = viewNames;
    this.tags = this.info.tags();
    this.stashNo = 0;
    this.stashed = []; // names
    this.stashElem = new Map(); // name -> element type of a stashed collection
    this.applied = 0;
    const Root = this.classes.get(schema.root);
    this.ctx = { mod: S5, classes: this.classes, root: new Root(), stash: new Map(), views: {} };
  }

  /** The `initial` values of the root (applied before the Encoder exists). */
  planInitial() {
    const initial = {};
    for (const f of this.info.fieldsOf(this.schema.root)) {
      if (!isPrim(f.type) || this.rng.chance(0.6)) {
        if (this.rng.chance(0.8)) initial[f.name] = this.newValue(f.type, 0);
      }
    }
    applyInitial(this.ctx, initial);
    this.encoder = new S5.Encoder(this.ctx.root);
    for (const v of this.viewNames) this.ctx.views[v] = new S5.StateView();
    return initial;
  }

  /** Ends a step on the planning state (patch, discard), as the pipeline does. */
  endStep() {
    const it = { offset: 0 };
    this.encoder.encode(it);
    for (const v of this.viewNames) this.encoder.encodeView(this.ctx.views[v], it.offset, { ...it });
    this.encoder.discardChanges();
  }

  // --- walking the state ---------------------------------------------------

  /**
   * Every Schema instance and collection reachable from the root, once per
   * path (a shared instance appears under each): { obj, path, kind, cls |
   * elem, parent, slot }.
   */
  nodes() {
    const out = [];
    const seen = new Map();
    const onStack = new Set();
    const visit = (obj, path, decl, parent, slot) => {
      const kind = kindOf(S5, obj);
      if (kind === null) return;
      const n = (seen.get(obj) ?? 0) + 1;
      seen.set(obj, n);
      const rec = { obj, path, kind, parent, slot };
      if (kind === "schema") rec.cls = this.nameOf.get(obj.constructor);
      else rec.elem = Object.values(decl)[0];
      out.push(rec);
      if (onStack.has(obj) || n > 3 || out.length > 400) return;
      onStack.add(obj);
      if (kind === "schema") {
        for (const f of this.info.fieldsOf(rec.cls)) {
          const v = obj[f.name];
          if (v === undefined || v === null || isPrim(f.type)) continue;
          visit(v, [...path, f.name], f.type, rec, f.name);
        }
      } else if (!isPrim(rec.elem)) {
        for (const [k, v] of collectionEntries(kind, obj)) visit(v, [...path, k], rec.elem, rec, k);
      }
      onStack.delete(obj);
    };
    visit(this.ctx.root, [], this.schema.root, null, null);
    return out;
  }

  /** Whether `target` is reachable from `from` (so `from` cannot go inside `target`). */
  reaches(from, target) {
    const seen = new Set();
    const stack = [from];
    while (stack.length > 0) {
      const obj = stack.pop();
      if (obj === target) return true;
      if (seen.has(obj)) continue;
      seen.add(obj);
      const kind = kindOf(S5, obj);
      if (kind === "schema") {
        for (const f of this.info.fieldsOf(this.nameOf.get(obj.constructor))) {
          const v = obj[f.name];
          if (kindOf(S5, v) !== null) stack.push(v);
        }
      } else if (kind !== null) {
        for (const [, v] of collectionEntries(kind, obj)) if (kindOf(S5, v) !== null) stack.push(v);
      }
    }
    return false;
  }

  // --- values ----------------------------------------------------------------

  /** A new value (no existing instance) of declared type `t`, as JSON. */
  newValue(t, depth) {
    const rng = this.rng;
    if (isPrim(t)) return primJson(randomPrimitive(rng, t));
    if (typeof t === "string") {
      const cls = rng.pick(this.info.descendants(t));
      const fields = {};
      for (const f of this.info.fieldsOf(cls)) {
        if (!rng.chance(isPrim(f.type) ? 0.7 : depth >= 2 ? 0 : 0.45)) continue;
        fields[f.name] = this.newValue(f.type, depth + 1);
      }
      return { $new: cls, fields };
    }
    const [kind, elem] = Object.entries(t)[0];
    const n = depth >= 2 ? 0 : rng.weighted([[2, 0], [3, 1], [3, 2], [1, 3]]);
    if (kind === "map") {
      const entries = {};
      for (let i = 0; i < n; i++) entries[rng.pick(MAP_KEYS)] = this.newValue(elem, depth + 1);
      return { $map: entries };
    }
    const items = [];
    for (let i = 0; i < n; i++) items.push(this.newValue(elem, depth + 1));
    return { [`$${kind}`]: items };
  }

  /** Whether existing `obj` (a collection declared with element `elem`) fits declared type `t`. */
  fits(t, obj, elem) {
    const kind = kindOf(S5, obj);
    if (kind === null || isPrim(t)) return false;
    if (typeof t === "string") return kind === "schema" && this.info.isSubtype(this.nameOf.get(obj.constructor), t);
    const [k, e] = Object.entries(t)[0];
    return kind === k && elem === e;
  }

  /**
   * Existing instances that fit declared type `t` and may be placed inside
   * `container` (no cycle): [{ value: {$path}|{$stash}, obj }].
   */
  existingFor(t, container, nodes) {
    if (isPrim(t)) return [];
    const ok = (obj, elem) => this.fits(t, obj, elem) && !this.reaches(obj, container);
    const out = [];
    for (const n of nodes) if (n.path.length > 0 && ok(n.obj, n.elem)) out.push({ value: { $path: n.path }, obj: n.obj });
    for (const name of this.stashed) {
      const obj = this.ctx.stash.get(name);
      if (ok(obj, this.stashElem.get(name))) out.push({ value: { $stash: name }, obj });
    }
    return out;
  }

  /** A value for declared type `t` placed in `container`: mostly new, sometimes an existing instance. */
  value(t, container, nodes, pExisting = 0.2) {
    if (!isPrim(t) && this.reuse && this.rng.chance(pExisting)) {
      const existing = this.existingFor(t, container, nodes);
      if (existing.length > 0) return this.rng.pick(existing).value;
    }
    return this.newValue(t, 0);
  }

  // --- ops -------------------------------------------------------------------

  /** Chooses the ops of one step and applies them; returns them. Throws when the reference throws. */
  planStep() {
    const rng = this.rng;
    const count = rng.weighted([[3, 0], [40, 1], [25, 2], [15, 3], [10, 4], [7, 6]]);
    const ops = [];
    for (let i = 0; i < count; i++) {
      // Macros (move, stash) apply their ops as they plan them and say so
      // in `this.applied`; the rest is applied here.
      this.applied = 0;
      const planned = this.planOp();
      planned.forEach((op, j) => {
        if (j >= this.applied) applyOp(this.ctx, op);
        ops.push(op);
      });
    }
    return ops;
  }

  /** One op, or a short sequence (move, stash + detach). */
  planOp() {
    for (let attempt = 0; attempt < 20; attempt++) {
      const nodes = this.nodes();
      const byKind = { schema: [], map: [], array: [], set: [], collection: [] };
      for (const n of nodes) byKind[n.kind].push(n);
      const big = nodes.length > 60;
      const views = this.viewNames.length > 0;
      const kind = this.rng.weighted([
        [byKind.schema.length > 0 ? 30 : 0, "set"],
        [byKind.map.length > 0 ? 16 : 0, "map"],
        [byKind.array.length > 0 ? 22 : 0, "array"],
        [byKind.set.length > 0 ? 10 : 0, "set."],
        [byKind.collection.length > 0 ? 10 : 0, "collection"],
        [this.reuse && nodes.length > 1 ? 6 : 0, "move"],
        [this.reuse && nodes.length > 1 ? 4 : 0, "stash"],
        [this.reuse && this.stashed.length > 0 ? 4 : 0, "reattach"],
        [views ? 14 : 0, "view"],
      ]);
      let ops = null;
      switch (kind) {
        case "set": ops = this.planSet(this.rng.pick(byKind.schema), nodes, big); break;
        case "map": ops = this.planMap(this.rng.pick(byKind.map), nodes, big); break;
        case "array": ops = this.planArray(this.rng.pick(byKind.array), nodes, big); break;
        case "set.": ops = this.planSetLike("set", this.rng.pick(byKind.set), nodes, big); break;
        case "collection": ops = this.planSetLike("collection", this.rng.pick(byKind.collection), nodes, big); break;
        case "move": ops = this.planMove(nodes); break;
        case "stash": ops = this.planStash(nodes); break;
        case "reattach": ops = this.planReattach(nodes); break;
        case "view": ops = this.planView(nodes); break;
        default: break;
      }
      if (ops && ops.length > 0) return ops;
    }
    return [];
  }

  planSet(node, nodes, big) {
    const rng = this.rng;
    const fields = this.info.fieldsOf(node.cls);
    if (fields.length === 0) return null;
    const f = rng.pick(fields);
    const cur = node.obj[f.name];
    const op = { op: "set", field: f.name };
    if (node.path.length > 0) op.path = node.path;
    if (rng.chance(big ? 0.3 : 0.1)) op.value = null;
    else if (isPrim(f.type) && cur !== undefined && rng.chance(0.1)) op.value = primJson(cur); // same value
    else op.value = this.value(f.type, node.obj, nodes);
    return [op];
  }

  planMap(node, nodes, big) {
    const rng = this.rng;
    const keys = [...node.obj.keys()];
    const what = rng.weighted([
      [big ? 3 : 8, "set"],
      [keys.length > 0 ? (big ? 6 : 3) : 0, "delete"],
      [0.3, "deleteMissing"],
      [big ? 1 : 0.5, "clear"],
    ]);
    const op = { op: `map.${what === "deleteMissing" ? "delete" : what}`, path: node.path };
    if (what === "set") {
      const key = keys.length > 0 && rng.chance(0.4) ? rng.pick(keys) : rng.pick(MAP_KEYS);
      op.key = key;
      const cur = node.obj.get(key);
      op.value = isPrim(node.elem) && cur !== undefined && rng.chance(0.15)
        ? primJson(cur)
        : this.value(node.elem, node.obj, nodes);
    } else if (what === "delete") {
      op.key = rng.pick(keys);
    } else if (what === "deleteMissing") {
      op.key = rng.pick(MAP_KEYS.filter((k) => !keys.includes(k)).concat(["missing"]));
    }
    return [op];
  }

  planArray(node, nodes, big) {
    const rng = this.rng;
    const arr = node.obj;
    const len = arr.length;
    const prim = isPrim(node.elem);
    const hasNaN = prim && Array.from({ length: len }, (_, i) => arr.at(i)).some((v) => Number.isNaN(v));
    const what = rng.weighted([
      [big ? 2 : 8, "push"],
      [big ? 1 : 4, "unshift"],
      [len > 0 ? 3 : 0.3, "pop"],
      [len > 0 ? 3 : 0.3, "shift"],
      [big ? 1 : 0.5, "clear"],
      [len > 1 ? 2 : 0.2, "reverse"],
      [6, "splice"],
      [len > 0 ? 5 : 0, "set"],
      [hasNaN ? 0 : len > 1 ? (prim ? 3 : 0.5) : 0, "sort"],
    ]);
    const op = { op: `array.${what}`, path: node.path };
    const vals = (n) => Array.from({ length: n }, () => this.value(node.elem, arr, nodes));
    switch (what) {
      case "push":
      case "unshift":
        op.values = vals(rng.weighted([[6, 1], [3, 2], [1, 3]]));
        break;
      case "splice": {
        // Mostly in range; sometimes a start past the end or a count past
        // the end (JS clamps both).
        op.start = rng.chance(0.05) ? len + rng.range(1, 2) : rng.range(0, len);
        const rest = Math.max(0, len - op.start);
        op.deleteCount = rng.chance(0.05) ? rest + rng.range(1, 2) : rng.range(0, Math.min(rest, 3));
        const n = rng.weighted([[4, 0], [4, 1], [2, 2]]);
        if (n > 0 || rng.chance(0.3)) op.values = vals(n);
        break;
      }
      case "set": {
        op.index = rng.chance(0.08) ? len : rng.int(len);
        const cur = arr.at(op.index);
        if (prim && cur !== undefined && rng.chance(0.15)) op.value = primJson(cur);
        else {
          // Not the instance already in that slot (the reference drops its
          // root reference then keeps it: undefined behaviour).
          let v = this.value(node.elem, arr, nodes);
          if (v.$path || v.$stash) {
            const obj = v.$path ? this.resolve(v.$path) : this.ctx.stash.get(v.$stash);
            if (obj === cur) v = this.newValue(node.elem, 0);
          }
          op.value = v;
        }
        break;
      }
      case "sort":
        op.descending = rng.chance(0.5);
        break;
      default:
        break;
    }
    return [op];
  }

  planSetLike(kind, node, nodes, big) {
    const rng = this.rng;
    const prim = isPrim(node.elem);
    const entries = collectionEntries(kind, node.obj);
    const what = rng.weighted([
      [big ? 2 : 8, "add"],
      [entries.length > 0 ? (big ? 6 : 3) : 0, "delete"],
      [0.5, "deleteMissing"],
      [entries.length > 0 && (prim || this.reuse) ? 1 : 0, "addExisting"],
      [big ? 1 : 0.5, "clear"],
    ]);
    const op = { op: `${kind}.${what.startsWith("delete") ? "delete" : what.startsWith("add") ? "add" : what}`, path: node.path };
    if (what === "add") op.value = this.value(node.elem, node.obj, nodes);
    else if (what === "addExisting") {
      const [i, v] = rng.pick(entries);
      op.value = prim ? primJson(v) : { $path: [...node.path, i] };
    } else if (what === "delete") {
      const [i, v] = rng.pick(entries);
      if (prim) op.value = primJson(v);
      else {
        // By identity, through any path to that instance (a shared one has several).
        const paths = nodes.filter((n) => n.obj === v).map((n) => n.path);
        op.value = { $path: rng.chance(0.7) || paths.length === 0 ? [...node.path, i] : rng.pick(paths) };
      }
    } else if (what === "deleteMissing") {
      op.value = prim ? primJson(randomPrimitive(rng, node.elem)) : this.newValue(node.elem, 1);
    }
    return [op];
  }

  resolve(path) {
    let obj = this.ctx.root;
    for (const seg of path) {
      const kind = kindOf(S5, obj);
      if (kind === "schema") obj = obj[seg];
      else if (kind === "map") obj = obj.get(String(seg));
      else if (kind === "array") obj = obj.at(Number(seg));
      else obj = collectionEntries(kind, obj)[Number(seg)]?.[1];
    }
    return obj;
  }

  /** Where an existing instance `obj` (described like `rec`) can go: placement ops with `value`. */
  placements(obj, elem, value, nodes) {
    const out = [];
    const kind = kindOf(S5, obj);
    const cls = kind === "schema" ? this.nameOf.get(obj.constructor) : null;
    const fitsType = (t) => this.fits(t, obj, elem);
    for (const n of nodes) {
      if (this.reaches(obj, n.obj)) continue;
      if (n.kind === "schema") {
        for (const f of this.info.fieldsOf(n.cls)) {
          if (!fitsType(f.type)) continue;
          const op = { op: "set", field: f.name, value };
          if (n.path.length > 0) op.path = n.path;
          out.push(op);
        }
      } else if (cls !== null && !isPrim(n.elem) && this.info.isSubtype(cls, n.elem)) {
        const len = n.kind === "array" ? n.obj.length : 0;
        switch (n.kind) {
          case "map": out.push({ op: "map.set", path: n.path, key: this.rng.pick(MAP_KEYS), value }); break;
          case "array":
            out.push(this.rng.pick([
              { op: "array.push", path: n.path, values: [value] },
              { op: "array.unshift", path: n.path, values: [value] },
              { op: "array.splice", path: n.path, start: this.rng.range(0, len), deleteCount: 0, values: [value] },
            ]));
            break;
          case "set": out.push({ op: "set.add", path: n.path, value }); break;
          default: out.push({ op: "collection.add", path: n.path, value }); break;
        }
      }
    }
    return out;
  }

  /** The op that removes `rec.obj` from its parent slot (found again by identity). */
  detachOp(rec) {
    const parentPath = this.pathOf(rec.parent.obj);
    if (parentPath === null) return null;
    const parent = rec.parent.obj;
    const kind = kindOf(S5, parent);
    const obj = rec.obj;
    if (kind === "schema") {
      if (parent[rec.slot] !== obj) return null;
      const op = { op: "set", field: rec.slot, value: null };
      if (parentPath.length > 0) op.path = parentPath;
      return op;
    }
    if (kind === "map") {
      let key = null;
      parent.forEach((v, k) => { if (key === null && v === obj) key = k; });
      return key === null ? null : { op: "map.delete", path: parentPath, key };
    }
    const entries = collectionEntries(kind, parent);
    const idx = entries.findIndex(([, v]) => v === obj);
    if (idx < 0) return null;
    if (kind === "array") {
      const len = parent.length;
      if (idx === len - 1 && this.rng.chance(0.3)) return { op: "array.pop", path: parentPath };
      if (idx === 0 && this.rng.chance(0.3)) return { op: "array.shift", path: parentPath };
      return { op: "array.splice", path: parentPath, start: idx, deleteCount: 1 };
    }
    return { op: `${kind}.delete`, path: parentPath, value: { $path: [...parentPath, idx] } };
  }

  /** The first path of `obj` from the root, or null. */
  pathOf(obj) {
    const n = this.nodes().find((x) => x.obj === obj);
    return n ? n.path : null;
  }

  /** Place an existing instance elsewhere ($path); mostly then remove it from its old slot (a move), else keep both (shared). */
  planMove(nodes) {
    const candidates = nodes.filter((n) => n.parent !== null);
    if (candidates.length === 0) return null;
    const rec = this.rng.pick(candidates);
    const places = this.placements(rec.obj, rec.elem, { $path: rec.path }, nodes);
    if (places.length === 0) return null;
    const place = this.rng.pick(places);
    applyOp(this.ctx, place);
    return this.withDetach([place], rec, 0.7);
  }

  /** `ops`, then with probability `p` the detach of `rec` in the same step (applied). */
  withDetach(ops, rec, p) {
    if (this.rng.chance(p)) {
      const detach = this.detachOp(rec);
      if (detach) {
        applyOp(this.ctx, detach);
        ops.push(detach);
      }
    }
    this.applied = ops.length;
    return ops;
  }

  /** Remember an instance (`stash`), and usually detach it in the same step. */
  planStash(nodes) {
    const candidates = nodes.filter((n) => n.parent !== null);
    if (candidates.length === 0) return null;
    const rec = this.rng.pick(candidates);
    const name = `s${++this.stashNo}`;
    const stash = { op: "stash", path: rec.path, as: name };
    applyOp(this.ctx, stash);
    this.stashed.push(name);
    this.stashElem.set(name, rec.elem);
    return this.withDetach([stash], rec, 0.75);
  }

  /** Put a stashed instance back somewhere (a later tick than its stash, usually). */
  planReattach(nodes) {
    const name = this.rng.pick(this.stashed);
    const obj = this.ctx.stash.get(name);
    if (kindOf(S5, obj) === null) return null;
    const places = this.placements(obj, this.stashElem.get(name), { $stash: name }, nodes);
    if (places.length === 0) return null;
    return [this.rng.pick(places)];
  }

  planView(nodes) {
    const rng = this.rng;
    const targets = nodes.filter((n) => n.path.length > 0);
    if (targets.length === 0) return null;
    const structs = targets.filter((t) => t.kind === "schema");
    const n = structs.length > 0 && rng.chance(0.85) ? rng.pick(structs) : rng.pick(targets);
    const op = { op: rng.chance(0.7) ? "view.add" : "view.remove", view: rng.pick(this.viewNames), path: n.path };
    if (this.tags.length > 0 && rng.chance(0.3)) op.tag = rng.pick(this.tags);
    return [op];
  }
}
