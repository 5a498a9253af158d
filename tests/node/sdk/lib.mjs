// Shared helpers of the end-to-end scripts: each script gets the server's
// port as its first argument and exits non-zero on the first failed check.
import assert from "node:assert/strict";
import { Client as ModernClient } from "@colyseus/sdk";
import * as legacySdk from "colyseus.js";

export { assert };
export const port = Number(process.argv[2]);
export const endpoint = `http://127.0.0.1:${port}`;

/** A @colyseus/sdk 0.18 client. */
export const modern = () => new ModernClient(endpoint);

/** A colyseus.js 0.16 client, served by the legacy endpoint. */
export const legacy = () => new legacySdk.Client(`${endpoint}/legacy`);

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Resolves with the next message of `type` on `room`. */
export function next(room, type, ms = 10000) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no "${type}" message within ${ms} ms`)), ms);
    const off = room.onMessage(type, (message) => {
      clearTimeout(timer);
      if (typeof off === "function") off();
      resolve(message);
    });
  });
}

/** Waits until `check()` is truthy. */
export async function until(check, what, ms = 10000) {
  const start = Date.now();
  while (!check()) {
    if (Date.now() - start > ms) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

/** Resolves with the close code passed to `room.onLeave`. */
export function left(room, ms = 10000) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`room not left within ${ms} ms`)), ms);
    room.onLeave((code) => {
      clearTimeout(timer);
      resolve(code);
    });
  });
}

/** The rejection of `promise` (fails if it resolves). */
export async function rejection(promise) {
  try {
    await promise;
  } catch (e) {
    return e;
  }
  throw new Error("expected a rejection");
}

/** Runs the named steps in order, printing each. */
export async function steps(list) {
  for (const [name, fn] of list) {
    await fn();
    console.log(`ok - ${name}`);
  }
  process.exit(0);
}

process.on("unhandledRejection", (e) => {
  console.error("unhandled rejection:", e);
  process.exit(1);
});
