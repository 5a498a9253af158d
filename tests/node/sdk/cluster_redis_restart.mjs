// A Redis restart under a cluster of 3 demo processes (the new Redis is
// empty): running rooms keep running, matchmaking answers errors (quickly,
// not a hang) while Redis is down and works again once it is back, and the
// listings come back, rooms of before included.
import {
  assert, steps, next, until, ports, modernAt, matchmake, listing, listedIds, wsPort,
  playerIds, harness, eventually, fetchWithin, endpoints, holderOf,
} from "./cluster-lib.mjs";

assert.equal(ports.length, 3, "three processes");
const ALL = [0, 1, 2];

const worlds = [];
const fillers = [];
let tick = 0;

/** Every world room still syncs moves and relays chat both ways. */
async function roomsRun(what) {
  for (const { holder, owner, guest } of worlds) {
    const x = 200 + ++tick;
    owner.send("move", { x, y: 1 });
    await until(() => guest.state.players.get(owner.sessionId).x === x, `${what}: a move in the room of ${holder}`);
    const heard = next(owner, "chat");
    guest.send("chat", `${what} ${tick}`);
    assert.equal((await heard).text, `${what} ${tick}`);
  }
}

await steps([
  ["setup: world and filler rooms made through every process, listed by all", async () => {
    for (const i of ALL) {
      const owner = await modernAt(i).create("world", { name: `owner${i}` });
      const holder = holderOf(owner);
      const guest = await modernAt((holder + 1) % 3).joinById(owner.roomId, { name: `guest${holder}` });
      assert.equal(wsPort(guest), ports[holder]);
      const both = [owner.sessionId, guest.sessionId].sort().join();
      await until(() => playerIds(owner).join() === both && playerIds(guest).join() === both, "both players");
      worlds.push({ holder, owner, guest });
      const { status, body } = await matchmake(i, "create", "filler");
      assert.equal(status, 200, JSON.stringify(body));
      fillers.push(body.roomId);
    }
    for (const i of ALL) {
      assert.deepEqual(await listedIds(i, "world"), worlds.map((w) => w.owner.roomId).sort());
      assert.deepEqual(await listedIds(i, "filler"), [...fillers].sort());
    }
  }],
  ["Redis stops: running rooms keep running", async () => {
    assert.equal(await harness("redis stop"), "stopped");
    await roomsRun("redis down");
  }],
  ["while Redis is down, matchmaking and listings answer errors within 10 s", async () => {
    for (const i of ALL) {
      const started = Date.now();
      const { status, body } = await matchmake(i, "joinOrCreate", "battle", { mode: "down" }, 10000)
        .catch((e) => { throw new Error(`joinOrCreate through ${i}: no answer (${e.name}: ${e.message})`); });
      assert.ok(status >= 500, `joinOrCreate through ${i}: ${status} ${JSON.stringify(body)}`);
      const list = await fetchWithin(`${endpoints[i]}/matchmake/world`, {}, 10000)
        .catch((e) => { throw new Error(`GET /matchmake/world through ${i}: no answer (${e.name}: ${e.message})`); });
      assert.ok(list.status >= 500, `GET /matchmake/world through ${i}: ${list.status} ${await list.text()}`);
      console.log(`# process ${i}: joinOrCreate ${status} ${JSON.stringify(body)} in ${Date.now() - started} ms`);
    }
  }],
  ["Redis is back (empty): matchmaking works again through every process", async () => {
    assert.equal(await harness("redis start"), "started");
    const back = Date.now();
    for (const i of ALL) {
      const room = await eventually(
        () => modernAt(i).joinOrCreate("battle", { mode: `back${i}` }),
        `joinOrCreate through ${i}`, 20000, 250);
      await until(() => playerIds(room).includes(room.sessionId), "the new room's state");
      await room.leave();
    }
    console.log(`# matchmaking back ${Date.now() - back} ms after Redis`);
    await roomsRun("redis back");
  }],
  ["the listings come back, the rooms of before included", async () => {
    const back = Date.now();
    await eventually(async () => {
      for (const i of ALL) {
        assert.deepEqual(await listedIds(i, "world"), worlds.map((w) => w.owner.roomId).sort(), `world on ${i}`);
        assert.deepEqual(await listedIds(i, "filler"), [...fillers].sort(), `filler on ${i}`);
        for (const room of await listing(i, "world")) assert.equal(room.clients, 2, `clients of ${room.roomId}`);
      }
    }, "listings after the restart", 20000);
    console.log(`# listings back ${Date.now() - back} ms later`);
  }],
  ["the rooms of before are joinable by id through every process again", async () => {
    for (const { holder, owner } of worlds) {
      const via = (holder + 2) % 3;
      const late = await modernAt(via).joinById(owner.roomId, { name: "late" });
      assert.equal(wsPort(late), ports[holder]);
      await until(() => playerIds(owner).includes(late.sessionId), "the late joiner");
      await late.leave();
    }
  }],
  ["leave", async () => {
    await Promise.all(worlds.flatMap((w) => [w.owner.leave(), w.guest.leave()]));
  }],
]);
