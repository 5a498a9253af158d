// The Node side of `cargo run --release -p roomcast-client --example
// clientbench`: N @colyseus/sdk 0.18 clients in this one process join the
// `clientbench` room, with the same callbacks as the Rust side (onAdd /
// onRemove on the map, listen on x and y of every entity added, through
// getStateCallbacks' $ proxy), and every callback and state change
// counted. Reads its RSS before the first client (the baseline), lets 1 s
// pass after the joins, measures a window (CPU: utime + stime of
// /proc/self/stat), prints one JSON line (the same fields as the Rust
// side), leaves.
//
//   node clientbench.mjs <port> <clients> <seconds>
import { readFileSync } from "node:fs";
import { Client, getStateCallbacks } from "@colyseus/sdk";

const [port, clients, seconds] = process.argv.slice(2).map(Number);
if (!port || !clients || !seconds) {
  console.error("usage: node clientbench.mjs <port> <clients> <seconds>");
  process.exit(2);
}

/** utime + stime of this process, in seconds (USER_HZ is 100 on Linux). */
function cpuSeconds() {
  const stat = readFileSync("/proc/self/stat", "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 1).trim().split(/\s+/);
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

/** The resident set size of this process, in bytes. */
function rssBytes() {
  const line = readFileSync("/proc/self/status", "utf8")
    .split("\n")
    .find((l) => l.startsWith("VmRSS:"));
  return Number(line.replace(/[^0-9]/g, "")) * 1024;
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const baseline = rssBytes();
const counts = { patches: 0, adds: 0, removes: 0, listens: 0 };
const client = new Client(`http://127.0.0.1:${port}`);
const rooms = [];
for (let i = 0; i < clients; i++) {
  const room = await client.joinOrCreate("clientbench");
  const $ = getStateCallbacks(room);
  $(room.state).entities.onAdd((entity) => {
    counts.adds++;
    $(entity).listen("x", () => counts.listens++);
    $(entity).listen("y", () => counts.listens++);
  });
  $(room.state).entities.onRemove(() => counts.removes++);
  room.onStateChange(() => counts.patches++);
  rooms.push(room);
}

await sleep(1000);
const cpu0 = cpuSeconds();
const events0 = { ...counts };
const t0 = performance.now();
await sleep(seconds * 1000);
const cpu1 = cpuSeconds();
const window = (performance.now() - t0) / 1000;
const rss = rssBytes();
const delta = (k) => counts[k] - events0[k];
console.log(JSON.stringify({
  clients, window, cpu: cpu1 - cpu0, baseline, rss,
  patches: delta("patches"), adds: delta("adds"), removes: delta("removes"), listens: delta("listens"),
}));
await Promise.all(rooms.map((room) => room.leave(true)));
process.exit(0);
