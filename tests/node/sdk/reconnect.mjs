// allow_reconnection: manual reconnect, timeout, manual reject, and the 0.18
// SDK's automatic reconnection; state after a reconnection is exact.
import { assert, modern, next, until, steps, rejection, left, sleep } from "./lib.mjs";

// Drops the socket without a close frame (the client sees 1006).
const drop = (room) => room.connection.transport.ws.terminate();

// A room created with `options` and a second client; the first drops
// (without the SDK's automatic reconnection) and the second has seen it.
async function dropOne(options) {
  const room = await modern().create("counter", options);
  room.reconnection.enabled = false;
  const other = await modern().joinById(room.roomId);
  const token = room.reconnectionToken;
  const dropped = next(other, "dropped");
  drop(room);
  await dropped;
  return { room, other, token };
}

await steps([
  ["manual client.reconnect(token) with exact state", async () => {
    const first = modern();
    const room = await first.create("counter", { reconnect: 10, name: "ann" });
    room.reconnection.enabled = false;
    const other = await modern().joinById(room.roomId);
    const token = room.reconnectionToken;
    const dropped = next(other, "dropped");
    room.connection.close(); // 1005/1000 from the client: not a consented leave
    const info = await dropped;
    assert.equal(info.sessionId, room.sessionId);
    other.send("set", 1234);
    const back = await modern().reconnect(token);
    assert.equal(back.sessionId, room.sessionId);
    assert.notEqual(back.reconnectionToken, token, "a fresh token per join");
    await until(() => back.state && back.state.n === 1234, "state after reconnection");
    const who = next(back, "whoami");
    back.send("whoami");
    assert.equal((await who).auth, "ann", "auth kept");
    await Promise.all([back.leave(), other.leave()]);
  }],
  ["a task awaits the reconnection (spawn_task) while the room serves the others", async () => {
    const { room, other, token } = await dropOne({ reconnect: 10, awaitReconnection: true });
    // The task waits; the room handles the other client meanwhile.
    other.send("set", 42);
    await until(() => other.state.n === 42, "a message while the task waits");
    const outcome = next(other, "reconnection");
    const back = await modern().reconnect(token);
    assert.equal(back.sessionId, room.sessionId);
    assert.equal(await next(back, "resumed"), 42, "the task came back to the room");
    assert.deepEqual(await outcome, { sessionId: room.sessionId, ok: true, n: 42 });
    await Promise.all([back.leave(), other.leave()]);
  }],
  ["a task whose client does not come back resumes with the timeout", async () => {
    const room = await modern().create("counter", { reconnect: 0.3, awaitReconnection: true });
    room.reconnection.enabled = false;
    const other = await modern().joinById(room.roomId);
    const outcome = next(other, "reconnection");
    const leftMsg = next(other, "left");
    drop(room);
    assert.deepEqual(await outcome, { sessionId: room.sessionId, ok: false, n: 0 });
    assert.deepEqual(await leftMsg, { sessionId: room.sessionId, code: 1006 });
    await other.leave();
  }],
  ["allow_reconnection timeout", async () => {
    const room = await modern().create("counter", { reconnect: 0.3 });
    room.reconnection.enabled = false;
    const other = await modern().joinById(room.roomId);
    const token = room.reconnectionToken;
    const outcome = next(other, "reconnection");
    const leftMsg = next(other, "left");
    drop(room);
    assert.deepEqual(await outcome, { sessionId: room.sessionId, ok: false });
    assert.deepEqual(await leftMsg, { sessionId: room.sessionId, code: 1006 });
    const err = await rejection(modern().reconnect(token));
    assert.equal(err.code, 524);
    await other.leave();
  }],
  ["allow_reconnection rejected by hand", async () => {
    const { room, other, token } = await dropOne({ reconnect: "manual" });
    const outcome = next(other, "reconnection");
    other.send("reject", room.sessionId);
    assert.deepEqual(await outcome, { sessionId: room.sessionId, ok: false });
    assert.equal((await rejection(modern().reconnect(token))).code, 524);
    await other.leave();
  }],
  ["a server-side client.leave(4010) is a drop: the SDK reconnects within the room's window", async () => {
    const room = await modern().create("counter", { reconnect: 10 });
    room.reconnection.minUptime = 100;
    room.reconnection.minDelay = 50;
    room.reconnection.delay = 50;
    const other = await modern().joinById(room.roomId);
    await sleep(200);
    const dropped = next(other, "dropped");
    const outcome = next(other, "reconnection");
    const dropCode = new Promise((resolve) => room.onDrop((code) => resolve(code)));
    const reconnected = new Promise((resolve) => room.onReconnect(resolve));
    room.send("kick", 4010);
    assert.equal(await dropCode, 4010);
    assert.deepEqual(await dropped, { sessionId: room.sessionId, code: 4010 });
    await reconnected;
    assert.deepEqual(await outcome, { sessionId: room.sessionId, ok: true });
    room.send("inc", 5);
    await until(() => other.state.n === 5, "the reconnected client's message");
    await Promise.all([room.leave(), other.leave()]);
  }],
  ["an error close (4002) is a drop: the seat waits for client.reconnect(token)", async () => {
    const room = await modern().create("counter", { reconnect: 10, name: "eve" });
    room.reconnection.enabled = false;
    const other = await modern().joinById(room.roomId);
    const dropped = next(other, "dropped");
    const code = left(room);
    // ROOM_DATA "inc" with a truncated uint16.
    room.connection.send(Uint8Array.of(0x0d, 0xa3, 0x69, 0x6e, 0x63, 0xcd, 0x01));
    assert.equal(await code, 4002);
    assert.deepEqual(await dropped, { sessionId: room.sessionId, code: 4002 });
    const back = await modern().reconnect(room.reconnectionToken);
    assert.equal(back.sessionId, room.sessionId);
    const who = next(back, "whoami");
    back.send("whoami");
    assert.equal((await who).auth, "eve", "the same client");
    // Gone for good: on_leave gets the code it dropped with.
    const leftMsg = next(other, "left");
    back.send("kick", 4005);
    assert.deepEqual(await next(other, "dropped"), { sessionId: room.sessionId, code: 4005 });
    other.send("reject", room.sessionId);
    assert.deepEqual(await leftMsg, { sessionId: room.sessionId, code: 4005 });
    await other.leave();
  }],
  ["0.18 automatic reconnection after an abnormal close", async () => {
    const room = await modern().create("counter", { reconnect: 10 });
    room.reconnection.minUptime = 100;
    room.reconnection.minDelay = 50;
    room.reconnection.delay = 50;
    const other = await modern().joinById(room.roomId);
    await sleep(200);
    const reconnected = new Promise((resolve) => room.onReconnect(resolve));
    const dropCode = new Promise((resolve) => room.onDrop((code) => resolve(code)));
    drop(room);
    assert.equal(await dropCode, 1006);
    other.send("set", 99);
    await reconnected;
    await until(() => room.state.n === 99, "state after automatic reconnection");
    // Messages flow again both ways.
    room.send("inc", 1);
    await until(() => other.state.n === 100, "the reconnected client's message");
    const code = left(room);
    await room.leave();
    assert.equal(await code, 4000);
    await other.leave();
  }],
]);
