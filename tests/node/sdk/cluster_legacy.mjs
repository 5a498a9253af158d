// colyseus.js 0.16 in a cluster of 3 demo processes: matchmaking through
// the legacy endpoint (`/legacy`) of one process into a room held by
// another, beside 0.18 clients.
//
// colyseus.js 0.16 builds its WebSocket URL as
// `ws://<publicAddress>/<processId>/<roomId>?…` when the reservation has a
// publicAddress, and `ws://<host:port><pathname>/<processId>/<roomId>?…`
// only without one: the endpoint's pathname (`/legacy`) is not added to a
// publicAddress (colyseus.js build/cjs/Client.js, buildEndpoint). So the
// reservation a legacy endpoint hands out must carry the path itself
// (`127.0.0.1:<port>/legacy`) for the socket to reach the legacy endpoint
// of the holder.
import {
  assert, steps, next, until, rejection, ports, processIds, modernAt, legacyAt,
  matchmake, wsPort, playerIds, within, holderOf, othersThan,
} from "./cluster-lib.mjs";

assert.equal(ports.length, 3, "three processes");

// The 0.16 client's MapSchema has keys() too.
const ids = (room) => playerIds(room).join();

let owner, old;
// What the join in progress is about, for a crash inside the SDK (an
// exception in its socket's message handler is uncaught).
let context = "";
process.on("uncaughtException", (e) => {
  console.error(`uncaught exception: ${e.stack}\n${context}`);
  process.exit(1);
});

await steps([
  ["joinById through A's legacy endpoint into B's room, beside a 0.18 client", async () => {
    owner = await modernAt(1).create("world", { name: "owner" });
    const B = holderOf(owner);
    const [A] = othersThan(B);
    // What colyseus.js will do with the reservation A's legacy endpoint gives.
    const { status, body } = await matchmake(A, "joinById", owner.roomId, {}, 10000, "/legacy");
    assert.equal(status, 200, JSON.stringify(body));
    assert.equal(body.room.roomId, owner.roomId);
    assert.equal(body.room.processId, processIds[B]);
    const url = body.room.publicAddress
      ? `ws://${body.room.publicAddress}/${body.room.processId}/${body.room.roomId}`
      : `ws://127.0.0.1:${ports[A]}/legacy/${body.room.processId}/${body.room.roomId}`;
    context = `legacy joinById through A: the reservation had publicAddress `
      + `${JSON.stringify(body.room.publicAddress)}, so colyseus.js 0.16 connects to ${url}?…`;
    try {
      old = await within(legacyAt(A).joinById(owner.roomId, { name: "old" }), 15000, "legacy joinById");
    } catch (e) {
      e.message = `${e.message} (${context})`;
      throw e;
    }
    context = "";
    assert.equal(old.roomId, owner.roomId);
    assert.equal(wsPort(old), ports[B], "the WebSocket went to B");
    const both = [owner.sessionId, old.sessionId].sort().join();
    await until(() => ids(owner) === both && ids(old) === both, "both players in both states");
    assert.equal(old.state.players.get(owner.sessionId).name, "owner");
    // The demo's chat goes to everyone, the sender too.
    const heard = next(owner, "chat");
    const heardSelf = next(old, "chat");
    old.send("chat", "from 0.16");
    assert.equal((await heard).text, "from 0.16");
    assert.equal((await heardSelf).text, "from 0.16");
    const heardOld = next(old, "chat");
    owner.send("chat", "from 0.18");
    assert.equal((await heardOld).text, "from 0.18");
  }],
  ["joinOrCreate through C's legacy endpoint finds B's battle room", async () => {
    const battle = await modernAt(1).create("battle", { mode: "old-and-new" });
    const B = holderOf(battle);
    const C = othersThan(B)[1];
    const room = await within(legacyAt(C).joinOrCreate("battle", { mode: "old-and-new", name: "legacy-c" }),
      15000, "legacy joinOrCreate");
    assert.equal(room.roomId, battle.roomId);
    assert.equal(wsPort(room), ports[B]);
    const both = [battle.sessionId, room.sessionId].sort().join();
    await until(() => ids(battle) === both && ids(room) === both, "both players in both states");
    await Promise.all([battle.leave(), room.leave()]);
  }],
  ["0.16 error codes through every process", async () => {
    for (const i of [0, 1, 2]) {
      assert.equal((await rejection(legacyAt(i).joinById("nosuchroom"))).code, 4212);
      assert.equal((await rejection(legacyAt(i).join("battle", { mode: "nobody" }))).code, 4211);
    }
  }],
  ["leave", async () => {
    await Promise.all([owner.leave(), old.leave()]);
  }],
]);
