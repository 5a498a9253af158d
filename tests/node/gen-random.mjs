#!/usr/bin/env node
// Random vector generator: seeded random scenarios (schema + steps over the
// whole op vocabulary of tests/fixtures/vectors/README.md) run through the
// same pipeline as gen-vectors.mjs (@colyseus/schema 5.0.34 encoder, decoders
// A-E cross-checking every step), written as complete vectors.
//
//   node gen-random.mjs --seed N --scenarios K --steps S --out DIR [--views P]
//
// Scenario k of seed N is the same on every run (its own PRNG seeded from
// "N/k"), whatever K is. Each has S steps after `initial` (fewer when the
// reference fails, see below). --views P: share of scenarios with `@view`
// fields and views (default 0.25).
//
// A scenario the reference cannot replay or cross-check (an op throws, its
// decoders disagree with each other or with the server state) is cut before
// the failing step, with a note on stderr; one that fails at its initial step
// is dropped. Steps whose patch stream does not reproduce the state are
// marked `divergent` as in gen-vectors.mjs.
//
// stdout: one JSON line with counts (scenarios, steps, truncations, op and
// value coverage, milliseconds).

import fs from "node:fs";
import path from "node:path";
import { generate } from "./gen-vectors.mjs";
import { Rng, hashSeed } from "./lib/prng.mjs";
import { randomSchema, ScenarioPlanner } from "./lib/random-scenario.mjs";
import { PRIMITIVES } from "./lib/scenario.mjs";

const USAGE = "usage: node gen-random.mjs --seed N --scenarios K --steps S --out DIR [--views P] [--quiet]";

function parseArgs(argv) {
  const args = { seed: null, scenarios: null, steps: null, out: null, views: 0.25, quiet: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const next = () => {
      if (i + 1 >= argv.length) throw new Error(`${a} needs a value`);
      return argv[++i];
    };
    switch (a) {
      case "--seed": args.seed = next(); break;
      case "--scenarios": args.scenarios = Number(next()); break;
      case "--steps": args.steps = Number(next()); break;
      case "--out": args.out = next(); break;
      case "--views": args.views = Number(next()); break;
      case "--quiet": args.quiet = true; break;
      case "-h":
      case "--help": args.help = true; break;
      default: throw new Error(`unknown argument ${a}`);
    }
  }
  return args;
}

/** Plans scenario `k` of `seed`: the input of gen-vectors.mjs's `generate`. */
export function planScenario(seed, k, steps, viewShare = 0.25) {
  const rng = new Rng(hashSeed(`${seed}/${k}`));
  const wantViews = rng.chance(viewShare);
  const schema = randomSchema(rng, { views: wantViews });
  const hasViewFields = schema.types.some((t) => t.fields.some((f) => f.view !== undefined));
  const viewNames = wantViews && hasViewFields ? ["v0", "v1", "v2"].slice(0, rng.range(1, 3)) : [];
  const name = `random_${seed}_${k}`;
  const notes = [];
  // Half the scenarios never place an existing instance again, so that
  // their steps are all compared byte for byte by Roomcast's tests.
  const reuse = rng.chance(0.5);
  const planner = new ScenarioPlanner(rng, schema, viewNames, { reuse });
  let initial;
  try {
    initial = planner.planInitial();
  } catch (e) {
    notes.push(`initial values rejected by the reference: ${e.message}`);
    return { input: null, notes };
  }
  const out = [{ name: "initial", ops: [], initial }];
  for (let s = 1; s <= steps; s++) {
    let ops;
    try {
      ops = planner.planStep();
      planner.endStep();
    } catch (e) {
      notes.push(`planning stopped at step ${s}: the reference threw: ${e.message.split("\n")[0]}`);
      break;
    }
    out.push({ name: `step ${s}`, ops });
  }
  const input = {
    name,
    description: `random scenario ${k} of seed ${seed} (tests/node/gen-random.mjs)`,
    schema,
  };
  if (viewNames.length > 0) input.views = viewNames;
  input.steps = out;
  return { input, notes };
}

/**
 * `generate` with failing steps cut off: the step a check or op names, or
 * (an exception without a step) the longest prefix that passes.
 */
function generateCut(input) {
  const attempt = (n) => {
    try {
      return generate({ ...input, steps: input.steps.slice(0, n) });
    } catch (e) {
      return { error: e };
    }
  };
  const full = attempt(input.steps.length);
  if (!full.error) return { ...full, cutAt: null };
  const reason = String(full.error.message ?? full.error).split("\n")[0];
  const m = /^step (\d+) /.exec(reason);
  let n;
  if (m) {
    n = Number(m[1]);
  } else {
    // Longest passing prefix (a failure at n steps means one at more too).
    let lo = 0;
    let hi = input.steps.length;
    while (hi - lo > 1) {
      const mid = (lo + hi) >> 1;
      if (attempt(mid).error) hi = mid;
      else lo = mid;
    }
    n = lo;
  }
  if (n < 1) return { error: reason };
  const cut = attempt(n);
  if (cut.error) return { error: reason };
  return { ...cut, cutAt: n, reason };
}

// --- coverage ----------------------------------------------------------------

function countValues(v, schemaTypes, into) {
  if (v === null) {
    into.null = (into.null ?? 0) + 1;
    return;
  }
  if (typeof v !== "object") return;
  for (const k of ["$new", "$path", "$stash", "$map", "$array", "$set", "$collection", "$num", "$bigint", "$repeat"]) {
    if (k in v) into[k] = (into[k] ?? 0) + 1;
  }
  if ("$new" in v && schemaTypes.get(v.$new)?.extends) into["$new subclass"] = (into["$new subclass"] ?? 0) + 1;
  for (const inner of [v.fields, v.$map]) if (inner) for (const x of Object.values(inner)) countValues(x, schemaTypes, into);
  for (const inner of [v.$array, v.$set, v.$collection]) if (inner) for (const x of inner) countValues(x, schemaTypes, into);
}

function coverage(vectors) {
  const ops = {};
  const values = {};
  const fieldTypes = {};
  const features = { scenarios: vectors.length, viewScenarios: 0, subclasses: 0, wideTypes: 0, viewFields: 0, taggedViewFields: 0, rootExtends: 0, divergentSteps: 0, emptySteps: 0, maxOpsInStep: 0 };
  for (const v of vectors) {
    const types = new Map(v.schema.types.map((t) => [t.name, t]));
    if (v.views) features.viewScenarios++;
    for (const t of v.schema.types) {
      if (t.extends) features.subclasses++;
      if (t.fields.length >= 20) features.wideTypes++;
      if (t.name === v.schema.root && t.extends) features.rootExtends++;
      for (const f of t.fields) {
        if (f.view !== undefined) features.viewFields++;
        if (typeof f.view === "number") features.taggedViewFields++;
        const key = typeof f.type === "string"
          ? (PRIMITIVES.has(f.type) ? f.type : "struct")
          : `${Object.keys(f.type)[0]}<${PRIMITIVES.has(Object.values(f.type)[0]) ? "primitive" : "struct"}>`;
        fieldTypes[key] = (fieldTypes[key] ?? 0) + 1;
      }
    }
    for (const s of v.steps) {
      if (s.divergent) features.divergentSteps++;
      if (s.name !== "initial" && s.ops.length === 0) features.emptySteps++;
      features.maxOpsInStep = Math.max(features.maxOpsInStep, s.ops.length);
      for (const op of s.ops) {
        ops[op.op] = (ops[op.op] ?? 0) + 1;
        if (op.tag !== undefined) ops[`${op.op} (tag)`] = (ops[`${op.op} (tag)`] ?? 0) + 1;
        const isDelete = op.op.endsWith(".delete");
        for (const val of [op.value, ...(op.values ?? [])]) {
          if (val === undefined) continue;
          if (val && typeof val === "object" && "$path" in val) {
            const k = isDelete ? "$path (delete by identity)" : "$path (move/share)";
            values[k] = (values[k] ?? 0) + 1;
          }
          countValues(val, types, values);
        }
      }
      if (s.initial) for (const val of Object.values(s.initial)) countValues(val, types, values);
    }
  }
  return { ops, values, fieldTypes, features };
}

function main(argv) {
  let args;
  try {
    args = parseArgs(argv);
  } catch (e) {
    console.error(`${e.message}\n${USAGE}`);
    return 2;
  }
  if (args.help) {
    console.log(USAGE);
    return 0;
  }
  if (args.seed === null || !(args.scenarios >= 0) || !(args.steps >= 0) || !args.out) {
    console.error(USAGE);
    return 2;
  }
  const started = Date.now();
  fs.mkdirSync(args.out, { recursive: true });
  const written = [];
  let dropped = 0;
  let cut = 0;
  let steps = 0;
  let notes = 0;
  for (let k = 0; k < args.scenarios; k++) {
    const planned = planScenario(args.seed, k, args.steps, args.views);
    for (const n of planned.notes) if (!args.quiet) console.error(`note random_${args.seed}_${k}: ${n}`);
    if (planned.input === null) {
      dropped++;
      continue;
    }
    const result = generateCut(planned.input);
    if (result.error) {
      dropped++;
      console.error(`dropped ${planned.input.name}: ${result.error}`);
      continue;
    }
    if (result.cutAt !== null) {
      cut++;
      console.error(`cut ${planned.input.name} before step ${result.cutAt} of ${planned.input.steps.length - 1}: ${result.reason}`);
    }
    notes += result.notes.length;
    if (!args.quiet) for (const n of result.notes) console.error(`note ${planned.input.name}: ${n}`);
    const file = path.join(args.out, `${planned.input.name}.json`);
    fs.writeFileSync(file, JSON.stringify(result.vector) + "\n");
    written.push(result.vector);
    steps += result.vector.steps.length - 1;
  }
  const summary = {
    seed: args.seed,
    scenarios: args.scenarios,
    written: written.length,
    dropped,
    cut,
    steps,
    notes,
    ms: Date.now() - started,
    coverage: coverage(written),
  };
  console.log(JSON.stringify(summary));
  return 0;
}

if (process.argv[1]?.endsWith("gen-random.mjs")) {
  process.exitCode = main(process.argv.slice(2));
}
