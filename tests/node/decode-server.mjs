#!/usr/bin/env node
// Line-oriented JSON protocol on stdin/stdout that lets Rust tests drive the
// real @colyseus/schema decoders (5.0.34, or 3.0.76 = what colyseus.js 0.16
// uses) built from Reflection bytes only.
//
// One JSON request per line, one JSON reply per line; `id` is echoed.
//   {"cmd":"open","id":1,"session":"s1","reflection":"<hex>","schema":"5"|"3"}
//       -> {"id":1,"ok":true,"warnings":[...]}
//   {"cmd":"decode","id":2,"session":"s1","bytes":"<hex>"}
//       -> {"id":2,"state":<json>,"warnings":[...]}
//   {"cmd":"state","id":3,"session":"s1"}          (current state, no decode)
//       -> {"id":3,"state":<json>}
//   {"cmd":"close","id":4,"session":"s1"}          -> {"id":4,"ok":true}
//   {"cmd":"ping","id":5}                          -> {"id":5,"ok":true,"versions":{...}}
// Any failure -> {"id":N,"error":"..."}; the process keeps running.
// `state` follows the vectors' JSON conventions (sorted keys, $num, $bigint;
// maps as objects, arrays/sets/collections as arrays). `warnings` is what the
// decoder printed through console.warn / console.error during the call.
// Anything printed through console.log/info/debug goes to stderr so stdout
// only carries replies.

import readline from "node:readline";
import util from "node:util";
import * as S5 from "@colyseus/schema";
import * as S3 from "schema3";
import { toJsonState, fromHex } from "./lib/json-state.mjs";
import { packageVersion } from "./lib/pkg-version.mjs";

const MODULES = { 5: S5, 3: S3 };
const VERSIONS = {
  "5": packageVersion("@colyseus/schema"),
  "3": packageVersion("schema3"),
};

// --- console capture -------------------------------------------------------
let captured = null;
const toStderr = (...args) => process.stderr.write(util.format(...args) + "\n");
const MAX_WARNING_CHARS = 4000;
const capture = (...args) => {
  let text = util.format(...args);
  if (text.length > MAX_WARNING_CHARS) text = text.slice(0, MAX_WARNING_CHARS) + "…";
  if (captured) captured.push(text);
  else process.stderr.write(text + "\n");
};
console.log = toStderr;
console.info = toStderr;
console.debug = toStderr;
console.warn = capture;
console.error = capture;

function withWarnings(fn) {
  captured = [];
  try {
    const result = fn();
    return { result, warnings: captured };
  } finally {
    captured = null;
  }
}

// --- sessions ----------------------------------------------------------------
const sessions = new Map();

function getSession(req) {
  const s = sessions.get(req.session);
  if (!s) throw new Error(`unknown session ${JSON.stringify(req.session)}`);
  return s;
}

function handle(req) {
  switch (req.cmd) {
    case "open": {
      const version = String(req.schema ?? "5");
      const mod = MODULES[version];
      if (!mod) throw new Error(`unknown schema version ${JSON.stringify(req.schema)} (use "5" or "3")`);
      if (typeof req.session !== "string") throw new Error("open: missing session");
      const bytes = fromHex(req.reflection ?? "");
      const { result, warnings } = withWarnings(() => mod.Reflection.decode(bytes));
      sessions.set(req.session, { mod, decoder: result, version });
      return { ok: true, warnings };
    }
    case "decode": {
      const s = getSession(req);
      const bytes = fromHex(req.bytes ?? "");
      const { warnings } = withWarnings(() => s.decoder.decode(bytes));
      return { state: toJsonState(s.mod, s.decoder.state), warnings };
    }
    case "state": {
      const s = getSession(req);
      return { state: toJsonState(s.mod, s.decoder.state) };
    }
    case "close": {
      sessions.delete(req.session);
      return { ok: true };
    }
    case "ping":
      return { ok: true, versions: VERSIONS };
    default:
      throw new Error(`unknown cmd ${JSON.stringify(req.cmd)}`);
  }
}

function errorText(e) {
  if (e instanceof Error) return `${e.name}: ${e.message}`;
  return String(e);
}

function onLine(line) {
  if (line.trim() === "") return;
  let req;
  try {
    req = JSON.parse(line);
  } catch (e) {
    process.stdout.write(JSON.stringify({ id: null, error: `bad request JSON: ${errorText(e)}` }) + "\n");
    return;
  }
  const id = req && typeof req.id === "number" ? req.id : null;
  let reply;
  try {
    reply = { id, ...handle(req) };
  } catch (e) {
    captured = null;
    reply = { id, error: errorText(e) };
  }
  let text;
  try {
    text = JSON.stringify(reply);
  } catch (e) {
    text = JSON.stringify({ id, error: `reply not serializable: ${errorText(e)}` });
  }
  process.stdout.write(text + "\n");
}

const rl = readline.createInterface({ input: process.stdin, crlfDelay: Infinity });
rl.on("line", onLine);
// When stdin closes the process ends by itself once pending stdout writes
// are flushed (process.exit() here could truncate large replies).
rl.on("close", () => sessions.clear());
process.on("uncaughtException", (e) => {
  process.stderr.write(`decode-server: uncaught ${e?.stack ?? e}\n`);
});
