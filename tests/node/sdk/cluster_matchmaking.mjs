// A cluster of 3 demo processes on one Redis, with @colyseus/sdk 0.18:
// matchmaking through one process lands in a room of another (the seat
// reservation names the holder, the WebSocket goes straight to it), and
// every process lists every public room.
//
// Where a room is made is the cluster's choice: the scripts find its
// holder from the WebSocket (`holderOf`) and then matchmake through the
// other processes.
import {
  assert, steps, next, until, rejection, ports, processIds, modernAt, matchmake, processIndex,
  listing, listedIds, wsUrl, wsPort, playerIds, eventually, holderOf, othersThan,
} from "./cluster-lib.mjs";

assert.equal(ports.length, 3, "three processes");
const ALL = [0, 1, 2];
const address = (i) => `127.0.0.1:${ports[i]}`;
const wsPrefix = (i, roomId) => `ws://${address(i)}/${processIds[i]}/${roomId}?`;

let host, guest, third, B;
const worlds = [];
const fillers = [];

await steps([
  ["joinOrCreate through A lands in the room B holds", async () => {
    host = await modernAt(1).create("battle", { mode: "cross", name: "host" });
    B = holderOf(host);
    assert.ok(wsUrl(host).startsWith(wsPrefix(B, host.roomId)), wsUrl(host));
    const [A] = othersThan(B);
    guest = await modernAt(A).joinOrCreate("battle", { mode: "cross", name: "guest" });
    assert.equal(guest.roomId, host.roomId);
    assert.ok(wsUrl(guest).startsWith(wsPrefix(B, host.roomId)), `the guest's WebSocket went to B: ${wsUrl(guest)}`);
    const both = [host.sessionId, guest.sessionId].sort();
    await until(() => playerIds(host).join() === both.join() && playerIds(guest).join() === both.join(),
      "both players in both states");
    assert.equal(guest.state.players.get(host.sessionId).name, "host");
    assert.equal(host.state.players.get(guest.sessionId).name, "guest");
  }],
  ["a seat reservation from C names B (processId, publicAddress)", async () => {
    const C = othersThan(B)[1];
    const { status, body } = await matchmake(C, "joinById", host.roomId, { name: "third" });
    assert.equal(status, 200, JSON.stringify(body));
    assert.equal(body.roomId, host.roomId);
    assert.equal(body.name, "battle");
    assert.equal(body.processId, processIds[B]);
    assert.equal(body.publicAddress, address(B));
    third = await modernAt(C).consumeSeatReservation(body);
    assert.equal(third.sessionId, body.sessionId);
    assert.equal(wsPort(third), ports[B]);
    const all = [host.sessionId, guest.sessionId, third.sessionId].sort().join();
    await until(() => [host, guest, third].every((r) => playerIds(r).join() === all), "three players everywhere");
  }],
  ["joinById through every other process, messages between clients of different endpoints", async () => {
    for (const via of ALL) {
      const owner = await modernAt(via).create("world", { name: `owner${via}` });
      const holder = holderOf(owner);
      assert.ok(wsUrl(owner).startsWith(wsPrefix(holder, owner.roomId)), wsUrl(owner));
      const joined = [owner];
      for (const other of othersThan(holder)) {
        const room = await modernAt(other).joinById(owner.roomId, { name: `via${other}` });
        assert.equal(room.roomId, owner.roomId);
        assert.equal(wsPort(room), ports[holder], `joinById through ${other} connects to ${holder}`);
        joined.push(room);
      }
      const ids = joined.map((r) => r.sessionId).sort().join();
      await until(() => joined.every((r) => playerIds(r).join() === ids), `three players in ${owner.roomId}`);
      const heard = next(joined[0], "chat");
      joined[2].send("chat", "hello from afar");
      assert.equal((await heard).text, "hello from afar");
      worlds.push({ holder, rooms: joined });
    }
  }],
  ["every process lists every public room, with its holder", async () => {
    const holders = new Map([[host.roomId, B], ...worlds.map((w) => [w.rooms[0].roomId, w.holder])]);
    for (const i of ALL) {
      const { status, body } = await matchmake(i, "create", "filler");
      assert.equal(status, 200, JSON.stringify(body));
      assert.ok(processIndex(body.processId) >= 0, `filler held by ${body.processId}`);
      fillers.push(body.roomId);
      holders.set(body.roomId, processIndex(body.processId));
    }
    console.log(`# holders of the rooms made through processes 0, 1, 2: world ${worlds.map((w) => w.holder)}, `
      + `filler ${fillers.map((id) => holders.get(id))}`);
    const expected = {
      battle: [host.roomId],
      world: worlds.map((w) => w.rooms[0].roomId).sort(),
      filler: [...fillers].sort(),
    };
    for (const [name, ids] of Object.entries(expected)) {
      for (const i of ALL) {
        const rooms = await listing(i, name);
        assert.deepEqual(rooms.map((r) => r.roomId).sort(), ids, `GET /matchmake/${name} on process ${i}`);
        for (const room of rooms) {
          assert.equal(room.name, name);
          assert.equal(room.processId, processIds[holders.get(room.roomId)], `holder of ${room.roomId}`);
        }
      }
    }
    // Client counts reach every process too.
    await eventually(async () => {
      for (const i of ALL) {
        const [battle] = await listing(i, "battle");
        assert.equal(battle.clients, 3, `clients of the battle room, listed by ${i}`);
        assert.equal(battle.maxClients, 10);
      }
    }, "client counts in every listing");
  }],
  ["matchmaking errors are the same through every process", async () => {
    for (const i of ALL) {
      assert.equal((await rejection(modernAt(i).joinById("nosuchroom"))).code, 522);
      assert.equal((await rejection(modernAt(i).join("battle", { mode: "nobody" }))).code, 521);
      assert.equal((await rejection(modernAt(i).joinOrCreate("nosuchname"))).code, 520);
    }
  }],
  ["rooms left by everyone leave every listing; filler rooms stay", async () => {
    await Promise.all([host, guest, third, ...worlds.flatMap((w) => w.rooms)].map((r) => r.leave()));
    await eventually(async () => {
      for (const i of ALL) {
        assert.deepEqual(await listedIds(i, "battle"), [], `battle on ${i}`);
        assert.deepEqual(await listedIds(i, "world"), [], `world on ${i}`);
        assert.deepEqual(await listedIds(i, "filler"), [...fillers].sort(), `filler on ${i}`);
      }
    }, "listings after the rooms disposed");
  }],
]);
