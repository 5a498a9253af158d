#!/usr/bin/env node
// Vector generator: replays scenario files with the real @colyseus/schema
// (5.x) encoder and records what it emits and what its decoders hold.
//
//   node gen-vectors.mjs <inDir> <outDir> [--only name[,name...]] [--keep-going]
//
// Inputs read from each <inDir>/*.json: name, description, schema, views,
// steps[].name, steps[].ops, steps[0].initial and the steps[].fullBeforePatch
// flag. Every other field is (re)computed. inDir may equal outDir.
// Format and cross-checks: tests/fixtures/vectors/README.md.

import fs from "node:fs";
import path from "node:path";
import util from "node:util";
import * as S5 from "@colyseus/schema";
import { buildClasses, applyInitial, applyOp, collectRefIds } from "./lib/scenario.mjs";
import { toJsonState, jsonEqual, canonical, toHex, fromHex } from "./lib/json-state.mjs";
import { packageVersion } from "./lib/pkg-version.mjs";

const SCHEMA_VERSION = packageVersion("@colyseus/schema");

class CheckError extends Error {}

/** Run fn while capturing console.warn / console.error output. */
function captureWarnings(fn) {
  const warnings = [];
  const saved = { warn: console.warn, error: console.error };
  console.warn = (...args) => warnings.push(util.format(...args));
  console.error = (...args) => warnings.push(util.format(...args));
  try {
    const result = fn();
    return { result, warnings };
  } finally {
    console.warn = saved.warn;
    console.error = saved.error;
  }
}

/**
 * A client: a Decoder plus a label. Decoding an empty body is skipped (the
 * server never sends an empty patch). Warnings are collected as notes.
 */
class Client {
  constructor(label, decoder, notes) {
    this.label = label;
    this.decoder = decoder;
    this.notes = notes;
  }
  feed(hex, what) {
    if (hex === "") return;
    const { warnings } = captureWarnings(() => this.decoder.decode(fromHex(hex)));
    for (const w of warnings) this.notes.push(`client ${this.label} decoding ${what}: ${w}`);
  }
  json() {
    return toJsonState(S5, this.decoder.state);
  }
}

function newClassClient(label, schema, notes) {
  const classes = buildClasses(S5, schema);
  const Root = classes.get(schema.root);
  return new Client(label, new S5.Decoder(new Root()), notes);
}

function newReflectionClient(label, reflectionHex, notes) {
  const { result, warnings } = captureWarnings(() => S5.Reflection.decode(fromHex(reflectionHex)));
  for (const w of warnings) notes.push(`client ${label} decoding reflection: ${w}`);
  return new Client(label, result, notes);
}

function describeDiff(a, b) {
  return `\n      ${canonical(a)}\n   vs ${canonical(b)}`;
}

/** Generate one vector object from a scenario (input fields only are read). */
export function generate(input) {
  const notes = [];
  const { schema } = input;
  const viewNames = Array.isArray(input.views) && input.views.length > 0 ? input.views : null;
  const steps = input.steps ?? [];
  if (steps.length === 0) throw new CheckError("scenario has no steps");

  // --- server -------------------------------------------------------------
  const classes = buildClasses(S5, schema);
  const Root = classes.get(schema.root);
  const root = new Root();
  const ctx = { mod: S5, classes, root, stash: new Map(), views: {} };
  applyInitial(ctx, steps[0].initial ?? {});
  const encoder = new S5.Encoder(root);
  const reflection = toHex(S5.Reflection.encode(encoder));
  if (viewNames) for (const v of viewNames) ctx.views[v] = new S5.StateView();

  const nameOf = new Map([...classes].map(([n, k]) => [k, n]));
  const typeIds = {};
  for (const [klass, id] of [...encoder.context.schemas].sort((a, b) => a[1] - b[1])) {
    if (nameOf.has(klass)) typeIds[nameOf.get(klass)] = id;
  }

  // --- clients (README "Checks") ------------------------------------------
  const A = newClassClient("A", schema, notes); // every patch
  const B = newClassClient("B", schema, notes); // step-0 full, then patches
  const E = newReflectionClient("E", reflection, notes); // reflection, every patch
  const viewStreams = {};
  if (viewNames) for (const v of viewNames) viewStreams[v] = newClassClient(`view:${v}`, schema, notes);

  const outSteps = [];
  steps.forEach((inStep, i) => {
    const where = `step ${i} (${inStep.name})`;
    const ops = inStep.ops ?? [];
    for (const op of ops) {
      try {
        applyOp(ctx, op);
      } catch (e) {
        throw new CheckError(`${where}: op ${JSON.stringify(op)} failed: ${e.message}`);
      }
    }

    const wantFbp = !!inStep.fullBeforePatch;
    const fullBeforePatch = wantFbp ? toHex(encoder.encodeAll()) : undefined;

    let patch;
    let viewPatches;
    if (viewNames) {
      const it = { offset: 0 };
      patch = toHex(encoder.encode(it));
      const sharedOffset = it.offset;
      viewPatches = {};
      for (const v of viewNames) viewPatches[v] = toHex(encoder.encodeView(ctx.views[v], sharedOffset, it));
    } else {
      patch = toHex(encoder.encode());
    }
    encoder.discardChanges();

    let full;
    let viewFulls;
    if (viewNames) {
      const it = { offset: 0 };
      full = toHex(encoder.encodeAll(it));
      const sharedOffset = it.offset;
      viewFulls = {};
      for (const v of viewNames) {
        viewFulls[v] = toHex(encoder.encodeAllView(ctx.views[v], sharedOffset, { ...it }));
      }
    } else {
      full = toHex(encoder.encodeAll());
    }

    const refIds = collectRefIds(S5, root, (obj) => obj[S5.$refId]);
    const serverJson = toJsonState(S5, root);
    const expectedClient = toJsonState(S5, root, { lossy: true });

    // Clients.
    A.feed(patch, `${where} patch`);
    B.feed(i === 0 ? full : patch, `${where} ${i === 0 ? "full" : "patch"}`);
    E.feed(patch, `${where} patch`);
    const C = newClassClient("C", schema, notes);
    C.feed(full, `${where} full`);
    const D = newReflectionClient("D", reflection, notes);
    D.feed(full, `${where} full`);

    const out = { name: inStep.name, ops };
    if (i === 0) out.initial = inStep.initial ?? {};
    if (wantFbp) out.fullBeforePatch = fullBeforePatch;
    out.patch = patch;
    if (viewNames) out.viewPatches = viewPatches;
    out.full = full;
    if (viewNames) out.viewFulls = viewFulls;
    out.refIds = refIds;

    if (viewNames) {
      // StateView scenarios: `state` is the server state; per-view states are
      // what a fresh client decodes from its full sync.
      out.state = serverJson;
      out.viewStates = {};
      for (const v of viewNames) {
        const fresh = newClassClient(`viewFull:${v}`, schema, notes);
        fresh.feed(viewFulls[v], `${where} viewFull`);
        out.viewStates[v] = fresh.json();
        viewStreams[v].feed(viewPatches[v], `${where} viewPatch`);
        const streamed = viewStreams[v].json();
        if (!jsonEqual(streamed, out.viewStates[v])) {
          notes.push(`${where}: view "${v}" patch stream differs from its full sync:` +
            describeDiff(streamed, out.viewStates[v]));
        }
      }
      outSteps.push(out);
      return;
    }

    const a = A.json();
    const b = B.json();
    const e = E.json();
    const c = C.json();
    const d = D.json();
    if (!jsonEqual(a, b)) throw new CheckError(`${where}: clients A and B differ:${describeDiff(a, b)}`);
    if (!jsonEqual(a, e)) throw new CheckError(`${where}: clients A and E differ:${describeDiff(a, e)}`);
    if (!jsonEqual(c, d)) throw new CheckError(`${where}: clients C and D differ:${describeDiff(c, d)}`);
    if (!jsonEqual(c, expectedClient)) {
      throw new CheckError(`${where}: full-state client does not match the server state:${describeDiff(c, expectedClient)}`);
    }
    out.state = a;
    const divergent = !jsonEqual(a, c);
    if (!divergent && !jsonEqual(serverJson, a)) out.serverState = serverJson;
    if (wantFbp) {
      const F = newClassClient("F", schema, notes);
      F.feed(fullBeforePatch, `${where} fullBeforePatch`);
      F.feed(patch, `${where} patch after fullBeforePatch`);
      out.stateAfterFullBeforePatchThenPatch = F.json();
    }
    if (divergent) {
      notes.push(`${where}: DIVERGENT — the patch stream does not reproduce the server state:${describeDiff(a, c)}`);
      out.divergent = true;
      out.fullState = c;
    }
    outSteps.push(out);
  });

  const vector = {
    name: input.name,
    description: input.description,
    generator: { package: "@colyseus/schema", version: SCHEMA_VERSION },
    schema,
    typeIds,
    reflection,
  };
  if (input.views !== undefined) vector.views = input.views;
  vector.steps = outSteps;
  return { vector, notes };
}

function main(argv) {
  const positional = [];
  let only = null;
  let keepGoing = false;
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === "--only") only = new Set(argv[++i].split(","));
    else if (argv[i] === "--keep-going") keepGoing = true;
    else if (argv[i] === "-h" || argv[i] === "--help") {
      console.log("usage: node gen-vectors.mjs <inDir> <outDir> [--only a,b] [--keep-going]");
      return 0;
    } else positional.push(argv[i]);
  }
  if (positional.length !== 2) {
    console.error("usage: node gen-vectors.mjs <inDir> <outDir> [--only a,b] [--keep-going]");
    return 2;
  }
  const [inDir, outDir] = positional;
  fs.mkdirSync(outDir, { recursive: true });
  const files = fs.readdirSync(inDir).filter((f) => f.endsWith(".json")).sort();
  let failures = 0;
  let written = 0;
  for (const file of files) {
    const input = JSON.parse(fs.readFileSync(path.join(inDir, file), "utf8"));
    if (only && !only.has(input.name) && !only.has(file.replace(/\.json$/, ""))) continue;
    let result;
    try {
      result = generate(input);
    } catch (e) {
      failures++;
      const msg = e instanceof CheckError ? e.message : (e.stack ?? String(e));
      console.error(`FAIL ${file}: ${msg}`);
      if (!keepGoing) continue;
      continue;
    }
    for (const n of result.notes) console.error(`note ${file}: ${n}`);
    fs.writeFileSync(path.join(outDir, file), JSON.stringify(result.vector, null, 2) + "\n");
    written++;
  }
  console.error(`gen-vectors: ${written} written, ${failures} failed (@colyseus/schema ${SCHEMA_VERSION})`);
  return failures === 0 ? 0 : 1;
}

if (import.meta.url === `file://${process.argv[1]}` || process.argv[1]?.endsWith("gen-vectors.mjs")) {
  process.exitCode = main(process.argv.slice(2));
}
