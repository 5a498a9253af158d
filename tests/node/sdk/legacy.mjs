// colyseus.js 0.16 on the legacy endpoint: matchmaking, state, messages,
// errors, auth rejection, reconnection.
import { assert, legacy, modern, next, until, steps, rejection, left, sleep, endpoint } from "./lib.mjs";

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
  ["an expired seat reservation fails with 4214", async () => {
    const response = await fetch(`${endpoint}/legacy/matchmake/create/counter`, {
      method: "POST",
      headers: { "Content-Type": "application/json", Accept: "application/json" },
      body: JSON.stringify({ seatTime: 0.3 }),
    });
    const reservation = await response.json();
    await sleep(600);
    const err = await rejection(legacy().consumeSeatReservation(reservation));
    assert.equal(err.code, 4214);
  }],
  ["max_clients locks the room (4212 by id)", async () => {
    const a = await legacy().joinOrCreate("fixed");
    const b = await legacy().joinById(a.roomId);
    assert.equal((await rejection(legacy().joinById(a.roomId))).code, 4212);
    await Promise.all([a.leave(), b.leave()]);
  }],
  ["leave codes and client.error", async () => {
    const room = await legacy().joinOrCreate("counter");
    const error = new Promise((resolve) => room.onError((code, message) => resolve([code, message])));
    room.send("err");
    assert.deepEqual(await error, [4321, "nope"]);
    const code = left(room);
    room.send("kick", 4005);
    assert.equal(await code, 4005);
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
