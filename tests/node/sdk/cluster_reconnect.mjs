// Reconnection in a cluster of 3 demo processes (@colyseus/sdk 0.18): a
// client matchmade through A into a `world` room held by B (which holds a
// dropped player for 10 s) comes back after a drop: automatically (the SDK
// reopens its WebSocket to B), by `client.reconnect(token)` through B, and
// by `client.reconnect(token)` through C, which does not hold the room,
// and through A.
import {
  assert, steps, until, ports, modernAt, wsPort, playerIds, drop, eventually, holderOf, othersThan,
} from "./cluster-lib.mjs";

assert.equal(ports.length, 3, "three processes");

let owner, A, B, C;

/** A guest of `owner`'s room, matchmade through A, that does not reconnect by itself. */
async function guest(name) {
  const room = await modernAt(A).joinById(owner.roomId, { name });
  assert.equal(wsPort(room), ports[B]);
  room.reconnection.enabled = false;
  await until(() => playerIds(owner).includes(room.sessionId), `${name} in the owner's state`);
  return room;
}

/**
 * Drops `room`'s socket; then `client.reconnect(token)` through process
 * `via` must seat the same session in the same room, on B, with its state.
 */
async function manualReconnect(via, name) {
  const room = await guest(name);
  const token = room.reconnectionToken;
  drop(room);
  // The room holds the player while it may come back.
  owner.send("move", { x: 12, y: 34 });
  await until(() => owner.state.players.get(owner.sessionId).x === 12, "the owner's move");
  // Until the holder has seen the drop, the token is still the live
  // client's: retry for a while.
  const back = await eventually(() => modernAt(via).reconnect(token), `reconnect through ${via}`, 10000, 200);
  assert.equal(back.roomId, owner.roomId);
  assert.equal(back.sessionId, room.sessionId);
  assert.equal(wsPort(back), ports[B], "the WebSocket went to the holder");
  await until(() => back.state?.players?.get(owner.sessionId)?.x === 12, "state after the reconnection");
  assert.equal(back.state.players.get(back.sessionId).name, name, "the player was kept");
  back.send("move", { x: 56, y: 78 });
  await until(() => owner.state.players.get(back.sessionId)?.x === 56, "the reconnected client's move");
  await back.leave();
}

await steps([
  ["setup: a world room held by B", async () => {
    owner = await modernAt(1).create("world", { name: "owner" });
    B = holderOf(owner);
    [A, C] = othersThan(B);
  }],
  ["automatic reconnection: the SDK reopens its WebSocket to B", async () => {
    const room = await modernAt(A).joinById(owner.roomId, { name: "auto" });
    room.reconnection.minUptime = 100;
    room.reconnection.minDelay = 50;
    room.reconnection.delay = 50;
    await until(() => playerIds(owner).includes(room.sessionId), "auto in the owner's state");
    await new Promise((r) => setTimeout(r, 200)); // minUptime
    const reconnected = new Promise((resolve) => room.onReconnect(resolve));
    drop(room);
    await reconnected;
    assert.equal(wsPort(room), ports[B]);
    room.send("move", { x: 1, y: 2 });
    await until(() => owner.state.players.get(room.sessionId)?.x === 1, "a move after the reconnection");
    await room.leave();
  }],
  ["client.reconnect(token) through B, the holder", async () => {
    await manualReconnect(B, "via-holder");
  }],
  ["client.reconnect(token) through C, which does not hold the room", async () => {
    await manualReconnect(C, "via-other");
  }],
  ["client.reconnect(token) through A, where the client matchmade", async () => {
    await manualReconnect(A, "via-first");
    await owner.leave();
  }],
]);
