// Joins the demo room `world` of a Roomcast server with @colyseus/sdk 0.18
// using the classes roomcast-codegen wrote (compiled by tsc) as the state
// type, and checks that the state decodes into them.
// argv: <port> <directory of the compiled World.js and Player.js>.
import assert from "node:assert/strict";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { Client } from "@colyseus/sdk";

const [port, dir] = process.argv.slice(2);
const { World } = await import(pathToFileURL(join(dir, "World.js")).href);
const { Player } = await import(pathToFileURL(join(dir, "Player.js")).href);

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
async function until(check, what, ms = 10000) {
  const start = Date.now();
  while (!check()) {
    if (Date.now() - start > ms) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

const client = new Client(`http://127.0.0.1:${port}`);
const room = await client.joinOrCreate("world", { name: "ana" }, World);
await until(() => room.state.players && room.state.players.size === 1, "the player");
assert.ok(room.state instanceof World, "the state is a World");
const me = room.state.players.get(room.sessionId);
assert.ok(me instanceof Player, "players are Player instances");
assert.equal(me.name, "ana");
assert.equal(room.state.width, 800);
assert.equal(room.state.height, 600);

room.send("move", { x: 120, y: 80 });
room.send("chat", "hello");
await until(() => me.x === 120 && me.y === 80, "the move");
await until(() => room.state.chat.length === 1, "the chat line");
assert.equal(room.state.chat.at(0), "ana: hello");

// The server's own view of its state equals what the client decoded.
const snapshot = new Promise((resolve) => room.onMessage("snapshot", resolve));
room.send("snapshot");
assert.deepEqual(room.state.toJSON(), await snapshot);
console.log(JSON.stringify(room.state.toJSON()));
await room.leave();
process.exit(0);
