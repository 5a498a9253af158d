// The demo room (real roomcast-schema encoder): a map of players and a chat
// array, joined by @colyseus/sdk 0.18 and colyseus.js 0.16 at once; the
// state each SDK decodes equals the server's.
import { assert, modern, legacy, next, until, steps, sleep } from "./lib.mjs";

let a, b, c;
const snapshot = async (room) => {
  const got = next(room, "snapshot");
  room.send("snapshot");
  return got;
};
const same = async (room, what) => {
  await sleep(120); // two patch ticks
  const server = await snapshot(room);
  assert.deepEqual(room.state.toJSON(), server, what);
};

await steps([
  ["both generations join the same room", async () => {
    a = await modern().joinOrCreate("world", { name: "ana" });
    b = await legacy().joinOrCreate("world", { name: "bo" });
    assert.equal(a.roomId, b.roomId);
    c = await modern().joinById(a.roomId);
    await until(() => a.state.players && a.state.players.size === 3, "three players on a");
    await until(() => b.state.players && b.state.players.size === 3, "three players on b");
  }],
  ["initial state equal on every client", async () => {
    await same(a, "modern");
    await same(b, "legacy");
    await same(c, "modern (default name)");
    assert.equal(a.state.players.get(a.sessionId).name, "ana");
    assert.match(c.state.players.get(c.sessionId).name, /^player-/);
  }],
  ["moves and chat", async () => {
    a.send("move", { x: 10.5, y: 20 });
    b.send("move", { x: 9999, y: -5 }); // clamped
    for (let i = 0; i < 13; i++) (i % 2 ? a : b).send("chat", `line ${i}`);
    a.onMessage("chat", () => {});
    b.onMessage("chat", () => {});
    const chat = new Promise((resolve) => c.onMessage("chat", (m) => m.text === "hello" && resolve(m)));
    c.send("chat", "hello");
    assert.deepEqual(await chat, { from: c.sessionId, name: c.state.players.get(c.sessionId).name, text: "hello" });
    await until(() => a.state.players.get(b.sessionId).x === 800, "clamped move on a");
    await until(() => b.state.chat.length === 10, "chat capped on b");
    await same(a, "modern after moves");
    await same(b, "legacy after moves and shifts");
    // Lines of different clients interleave in any order; the server's
    // order is the truth, and every client has it.
    assert.equal(b.state.chat.length, 10);
  }],
  ["non-finite moves are refused with an error and reach no one", async () => {
    const before = a.state.players.get(c.sessionId);
    const [x, y] = [before.x, before.y];
    const errors = [];
    c.onError((code, message) => errors.push([code, message]));
    c.send("move", { x: NaN, y: 5 });
    c.send("move", { x: 5, y: Infinity });
    c.send("move", { x: -Infinity, y: 5 });
    await until(() => errors.length === 3, "three errors");
    for (const [code, message] of errors) {
      assert.equal(code, 4217);
      assert.match(message, /finite/);
    }
    await same(a, "modern after refused moves");
    await same(b, "legacy after refused moves");
    assert.equal(a.state.players.get(c.sessionId).x, x);
    assert.equal(b.state.players.get(c.sessionId).y, y);
    // c is still in the room.
    c.send("move", { x: 1, y: 1 });
    await until(() => a.state.players.get(c.sessionId).x === 1, "c moves again");
  }],
  ["state is exact after an automatic reconnection that missed deletions", async () => {
    const d = await modern().joinById(a.roomId, { name: "dee" });
    d.reconnection.minUptime = 100;
    d.reconnection.delay = 200; // first retry after ~400 ms
    const e = await modern().joinById(a.roomId, { name: "eve" });
    await until(() => d.state.players && d.state.players.size === 5, "five players on d");
    await sleep(150);
    const back = new Promise((resolve) => d.onReconnect(resolve));
    d.connection.transport.ws.terminate();
    // While d is away: a player leaves, chat lines shift out, someone moves.
    await e.leave();
    for (let i = 0; i < 4; i++) a.send("chat", `away ${i}`);
    b.send("move", { x: 1, y: 2 });
    await back;
    await same(d, "modern after reconnection");
    assert.equal(d.state.players.has(e.sessionId), false, "the deletion reached d");
    await d.leave();
  }],
  ["a leaving player disappears everywhere", async () => {
    await c.leave();
    await until(() => a.state.players.size === 2 && b.state.players.size === 2, "two players");
    await same(a, "modern after leave");
    await same(b, "legacy after leave");
    await Promise.all([a.leave(), b.leave()]);
  }],
]);
