// RelayRoom with the real SDKs: players in the state, messages relayed to
// the others with their sender, the reconnection window.
import { assert, legacy, modern, next, until, steps } from "./lib.mjs";

const drop = (room) => room.connection.transport.ws.terminate();

await steps([
  ["players in the state, messages relayed to the others with the sender", async () => {
    const a = await modern().create("relay", { name: "ann", allowReconnectionTime: 10 });
    const b = await modern().joinById(a.roomId, { name: "bob" });
    await until(() => a.state.players && a.state.players.size === 2, "both players");
    const ann = b.state.players.get(a.sessionId);
    assert.deepEqual([ann.name, ann.sessionId, ann.connected], ["ann", a.sessionId, true]);
    const seenByA = [];
    a.onMessage("hi", (m) => seenByA.push(m));
    const hi = next(b, "hi");
    a.send("hi", { x: 1 });
    assert.deepEqual(await hi, [a.sessionId, { x: 1 }]);
    const numbered = next(a, 3);
    b.send(3, "three");
    assert.deepEqual(await numbered, [b.sessionId, "three"]);
    // The sender does not get its own message back (it was sent before b's).
    assert.deepEqual(seenByA, []);
    const bare = next(b, "ping");
    a.send("ping");
    assert.deepEqual(await bare, [a.sessionId, undefined]);
    await Promise.all([a.leave(), b.leave()]);
  }],
  ["a dropped player is shown disconnected and comes back", async () => {
    const a = await modern().create("relay", { name: "ann", allowReconnectionTime: 10 });
    a.reconnection.enabled = false;
    const b = await modern().joinById(a.roomId, { name: "bob" });
    await until(() => b.state.players && b.state.players.size === 2, "both players");
    const token = a.reconnectionToken;
    drop(a);
    await until(() => b.state.players.get(a.sessionId).connected === false, "ann disconnected");
    const back = await modern().reconnect(token);
    assert.equal(back.sessionId, a.sessionId);
    await until(() => b.state.players.get(a.sessionId).connected === true, "ann back");
    await back.leave();
    await until(() => b.state.players.size === 1, "ann removed after a consented leave");
    await b.leave();
  }],
  ["without a reconnection window, a dropped player is removed", async () => {
    const a = await modern().create("relay");
    a.reconnection.enabled = false;
    const b = await modern().joinById(a.roomId);
    await until(() => b.state.players && b.state.players.size === 2, "both players");
    drop(a);
    await until(() => b.state.players.size === 1, "dropped player removed");
    await b.leave();
  }],
  ["colyseus.js 0.16 and @colyseus/sdk 0.18 relay to each other", async () => {
    const young = await modern().create("relay", { name: "young" });
    const old = await legacy().joinById(young.roomId, { name: "old" });
    await until(() => old.state.players && old.state.players.size === 2, "legacy state");
    assert.equal(old.state.players.get(young.sessionId).name, "young");
    const fromOld = next(young, "chat");
    old.send("chat", "hello");
    assert.deepEqual(await fromOld, [old.sessionId, "hello"]);
    const fromYoung = next(old, "chat");
    young.send("chat", "hi");
    assert.deepEqual(await fromYoung, [young.sessionId, "hi"]);
    await Promise.all([old.leave(), young.leave()]);
  }],
]);
