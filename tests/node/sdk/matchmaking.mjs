// joinOrCreate / create / join / joinById with @colyseus/sdk 0.18, state
// decoding, messages both ways.
import { assert, modern, next, until, steps, rejection, endpoint } from "./lib.mjs";

const a = modern();
const b = modern();
let roomA, roomB;

await steps([
  ["joinOrCreate creates a room and decodes the state", async () => {
    roomA = await a.joinOrCreate("counter", { name: "alice" });
    assert.equal(roomA.name, "counter");
    assert.equal(roomA.sessionId.length, 9);
    assert.match(roomA.reconnectionToken, new RegExp(`^${roomA.roomId}:.{9}$`));
    await until(() => roomA.state && roomA.state.n === 0, "initial state");
  }],
  ["messages queued in on_join arrive after the state", async () => {
    const who = next(roomA, "whoami");
    roomA.send("whoami");
    const me = await who;
    assert.equal(me.sessionId, roomA.sessionId);
    assert.equal(me.auth, "alice");
    assert.equal(me.roomId, roomA.roomId);
    // on_auth saw the connection: remote address and upgrade headers.
    assert.deepEqual(me.remote, { ip: "127.0.0.1", host: endpoint.slice("http://".length) });
  }],
  ["joinOrCreate joins the same room", async () => {
    const joined = next(roomA, "joined");
    roomB = await b.joinOrCreate("counter", { name: "bob" });
    assert.equal(roomB.roomId, roomA.roomId);
    assert.equal(await joined, roomB.sessionId);
  }],
  ["patches reach every client", async () => {
    roomA.send("inc", 5);
    await until(() => roomA.state.n === 5 && roomB.state.n === 5, "n = 5 on both");
    roomB.send("inc", -7);
    await until(() => roomA.state.n === -2 && roomB.state.n === -2, "n = -2 on both");
  }],
  ["number message types and the wildcard", async () => {
    const echo = next(roomA, 7);
    roomA.send(7, [1, 2, { x: 1.5 }]);
    assert.deepEqual(await echo, [1, 2, { x: 1.5 }]);
    const any = next(roomA, "any");
    roomA.send("mystery", { a: 1, b: "x", c: [true, null] });
    assert.deepEqual(await any, { type: "mystery", payload: { a: 1, b: "x", c: [true, null] } });
    const anyNumber = next(roomA, "any");
    roomA.send(42);
    assert.deepEqual(await anyNumber, { type: 42, payload: null });
  }],
  ["wildcard on the client side", async () => {
    const got = new Promise((resolve) => roomB.onMessage("*", (type, message) => resolve([type, message])));
    roomA.send("chat", "hello");
    assert.deepEqual(await got, ["chat", { from: roomA.sessionId, text: "hello" }]);
  }],
  ["requests are answered by the handler's return value", async () => {
    assert.equal(await roomA.request("double", 21), 42);
    const err = await rejection(roomA.request("double", 2 ** 40));
    assert.equal(err.code, 4409);
    assert.equal(err.message, "too large");
    const invalid = await rejection(roomA.request("double", "x"));
    assert.equal(invalid.name, "invalid_payload", "a bad request payload is answered, not fatal");
    const none = await rejection(roomA.request("nobody-handles-this"));
    assert.equal(none.name, "no_handler");
    const viaCallback = await new Promise((resolve) => roomA.send("double", 5, (response, error) => resolve([response, error])));
    assert.deepEqual(viaCallback, [10, undefined]);
  }],
  ["PING and the latency probe", async () => {
    const rtt = await new Promise((resolve) => roomA.ping(resolve));
    assert.ok(rtt >= 0 && rtt < 1000, `rtt ${rtt}`);
    const latency = await modern().getLatency();
    assert.ok(latency >= 0 && latency < 1000, `latency ${latency}`);
  }],
  ["create makes a new room, joinById and join find it", async () => {
    const c = modern();
    const created = await c.create("counter", { name: "carol" });
    assert.notEqual(created.roomId, roomA.roomId);
    const d = modern();
    const byId = await d.joinById(created.roomId, { name: "dave" });
    assert.equal(byId.roomId, created.roomId);
    const e = modern();
    const joined = await e.join("counter");
    assert.ok([roomA.roomId, created.roomId].includes(joined.roomId));
    await Promise.all([created.leave(), byId.leave(), joined.leave()]);
  }],
  ["join without rooms fails with 521, unknown room names with 520", async () => {
    const err = await rejection(modern().join("fixed"));
    assert.equal(err.code, 521);
    const err2 = await rejection(modern().joinOrCreate("nope"));
    assert.equal(err2.code, 520);
    const err3 = await rejection(modern().joinById("doesNotExist"));
    assert.equal(err3.code, 522);
  }],
  ["listing route shows the public rooms", async () => {
    const rooms = await (await fetch(`${endpoint}/matchmake/counter`)).json();
    const mine = rooms.find((r) => r.roomId === roomA.roomId);
    assert.equal(mine.clients, 2);
    assert.deepEqual(mine.metadata, { mode: "classic" });
  }],
  ["consented leave closes with 4000 and others learn it", async () => {
    const left = next(roomB, "left");
    const code = await roomA.leave();
    assert.equal(code, 4000);
    assert.deepEqual(await left, { sessionId: roomA.sessionId, code: 4000 });
    await roomB.leave();
  }],
]);
