// colyseus.js 0.16 on the legacy endpoint: matchmaking, state, messages,
// errors, auth rejection, reconnection.
import { assert, legacy, modern, next, until, steps, rejection, left } from "./lib.mjs";

await steps([
  ["joinOrCreate, state and patches", async () => {
    const room = await legacy().joinOrCreate("counter", { name: "old" });
    assert.equal(room.sessionId.length, 9);
    await until(() => room.state && room.state.n === 0, "initial state");
    room.send("inc", 3);
    await until(() => room.state.n === 3, "patch");
    const echo = next(room, 7);
    room.send(7, { nested: [1, "two"] });
    assert.deepEqual(await echo, { nested: [1, "two"] });
    const code = left(room);
    await room.leave();
    assert.equal(await code, 4000);
  }],
  ["legacy and modern clients share a room", async () => {
    const old = await legacy().create("counter");
    const young = await modern().joinById(old.roomId);
    await until(() => young.state && young.state.n === 0, "modern state");
    young.send("inc", 11);
    await until(() => old.state.n === 11, "legacy sees the modern client's change");
    old.send("inc", 1);
    await until(() => young.state.n === 12, "modern sees the legacy client's change");
    await Promise.all([old.leave(), young.leave()]);
  }],
  ["matchmaking errors use the 0.16 codes", async () => {
    assert.equal((await rejection(legacy().join("fixed"))).code, 4211);
    assert.equal((await rejection(legacy().joinOrCreate("nope"))).code, 4210);
    assert.equal((await rejection(legacy().joinById("missing1"))).code, 4212);
  }],
  ["on_auth rejection", async () => {
    const err = await rejection(legacy().joinOrCreate("counter", { password: "wrong" }));
    assert.equal(err.code, 4401);
    assert.equal(err.message, "bad password");
  }],
  ["manual reconnection (0.16 has no automatic one)", async () => {
    const room = await legacy().create("counter", { reconnect: 10 });
    const other = await legacy().joinById(room.roomId);
    const token = room.reconnectionToken;
    const dropped = next(other, "dropped");
    room.connection.transport.ws.terminate();
    await dropped;
    other.send("set", 5);
    const back = await legacy().reconnect(token);
    assert.equal(back.sessionId, room.sessionId);
    await until(() => back.state && back.state.n === 5, "state after reconnection");
    await Promise.all([back.leave(), other.leave()]);
  }],
]);
