// Shared helpers of the cluster scripts (sync-core/tests/cluster_e2e.rs).
// Arguments: `<port,port,…> <processId,processId,…>`, one per process of
// the cluster (demo binaries sharing one Redis). A script asks the test for
// things it cannot do itself (kill a process, stop Redis) with `harness()`.
import { createInterface } from "node:readline";
import { Client as ModernClient } from "@colyseus/sdk";
import * as legacySdk from "colyseus.js";
import { assert, sleep } from "./lib.mjs";

export { assert, sleep, next, until, left, rejection, steps } from "./lib.mjs";

export const ports = (process.argv[2] ?? "").split(",").map(Number);
export const processIds = (process.argv[3] ?? "").split(",");
export const extraArgs = process.argv.slice(4);
assert.ok(ports.length >= 1 && ports.every((p) => p > 0), `ports: ${process.argv[2]}`);
assert.equal(processIds.length, ports.length, "one process id per port");

export const endpoints = ports.map((p) => `http://127.0.0.1:${p}`);

/** A @colyseus/sdk 0.18 client of process `i`. */
export const modernAt = (i) => new ModernClient(endpoints[i]);

/** A colyseus.js 0.16 client of process `i` (its legacy endpoint). */
export const legacyAt = (i) => new legacySdk.Client(`${endpoints[i]}/legacy`);

/** The index of the process with this id. */
export const processIndex = (id) => processIds.indexOf(id);

/** The URL of the WebSocket a @colyseus/sdk 0.18 room connected to. */
export const wsUrl = (room) => room.connection.transport.ws.url;

/** The port of the WebSocket of a room (either SDK). */
export const wsPort = (room) => Number(new URL(room.connection.transport.ws.url).port);

/** Drops a room's socket without a close frame (the server sees 1006). */
export const drop = (room) => room.connection.transport.ws.terminate();

/** `fetch` that gives up after `ms`. */
export async function fetchWithin(url, init = {}, ms = 10000) {
  return fetch(url, { ...init, signal: AbortSignal.timeout(ms) });
}

/** `GET /matchmake/<name>` on process `i`: the room listing. */
export async function listing(i, name) {
  const response = await fetchWithin(`${endpoints[i]}/matchmake/${name}`);
  assert.equal(response.status, 200, `GET /matchmake/${name} on process ${i}`);
  return response.json();
}

/** The sorted room ids of `GET /matchmake/<name>` on process `i`. */
export async function listedIds(i, name) {
  return (await listing(i, name)).map((r) => r.roomId).sort();
}

/**
 * `POST <prefix>/matchmake/<method>/<target>` on process `i` without
 * consuming the reservation: `{ status, body }`.
 */
export async function matchmake(i, method, target, options = {}, ms = 10000, prefix = "") {
  const response = await fetchWithin(
    `${endpoints[i]}${prefix}/matchmake/${method}/${target}`,
    {
      method: "POST",
      headers: { "Content-Type": "application/json", Accept: "application/json" },
      body: JSON.stringify(options),
    },
    ms,
  );
  const text = await response.text();
  let body;
  try {
    body = JSON.parse(text);
  } catch {
    body = text;
  }
  return { status: response.status, body };
}

/** The session ids of a room's state `players` map, sorted. */
export const playerIds = (room) => (room.state?.players ? [...room.state.players.keys()].sort() : []);

/** Retries `fn` until it returns without throwing, or rethrows its last error after `ms`. */
export async function eventually(fn, what, ms = 10000, every = 100) {
  const start = Date.now();
  for (;;) {
    try {
      return await fn();
    } catch (e) {
      if (Date.now() - start > ms) {
        e.message = `${what}: still failing after ${ms} ms: ${e.message}`;
        throw e;
      }
      await sleep(every);
    }
  }
}

let stdinLines;

/**
 * Asks the Rust test for something (`kill <i>`, `redis stop`,
 * `redis start`, `alive <i>`) and resolves with its answer.
 */
export async function harness(request) {
  stdinLines ??= createInterface({ input: process.stdin })[Symbol.asyncIterator]();
  console.log(`@${request}`);
  const { value, done } = await stdinLines.next();
  if (done) throw new Error(`no answer to "${request}"`);
  if (!value.startsWith("ok")) throw new Error(`"${request}": ${value}`);
  return value.slice(3);
}

/** `promise`, or a rejection naming `what` when it takes longer than `ms`. */
export function within(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** Waits until `check()` (sync or async) is truthy; `detail()` goes into the error. */
export async function untilAsync(check, what, ms = 10000, detail = () => "") {
  const start = Date.now();
  while (!(await check())) {
    if (Date.now() - start > ms) throw new Error(`timed out after ${ms} ms waiting for ${what} ${await detail()}`);
    await sleep(50);
  }
}

/** The index of the process a room's WebSocket went to (either SDK). */
export function holderOf(room) {
  const i = ports.indexOf(wsPort(room));
  assert.ok(i >= 0, `${room.roomId}: WebSocket to ${room.connection.transport.ws.url}, no process of the cluster`);
  return i;
}

/** The processes other than `i`, in order. */
export const othersThan = (i) => ports.map((_, j) => j).filter((j) => j !== i);
