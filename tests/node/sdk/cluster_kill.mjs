// kill -9 of one process of a cluster of 3 demo processes, mid-run: the
// rooms and clients of the other processes carry on (those matchmade
// through the dead process too), matchmaking through the survivors works,
// and the dead process's rooms leave every listing within 10 s.
import {
  assert, steps, next, until, ports, processIds, modernAt, matchmake, listedIds, wsPort,
  playerIds, harness, left, eventually, rejection, holderOf, processIndex,
} from "./cluster-lib.mjs";

assert.equal(ports.length, 3, "three processes");

// A world room made through every process, with its owner and a guest
// that matchmade through the process after its holder; and a filler room
// nobody joined. The victim is the holder of the last world room.
const worlds = [];
const fillers = []; // { roomId, holder }
let victim, survivors, killedAt;
const alive = (rooms) => rooms.filter((r) => r.holder !== victim);

await steps([
  ["setup: world and filler rooms, every one listed by all", async () => {
    for (let i = 0; i < 3; i++) {
      const owner = await modernAt(i).create("world", { name: `owner${i}` });
      const holder = holderOf(owner);
      const via = (holder + 1) % 3;
      const guest = await modernAt(via).joinById(owner.roomId, { name: `guest${i}` });
      assert.equal(wsPort(guest), ports[holder]);
      for (const room of [owner, guest]) room.reconnection.enabled = false;
      const both = [owner.sessionId, guest.sessionId].sort().join();
      await until(() => playerIds(owner).join() === both && playerIds(guest).join() === both, "both players");
      worlds.push({ holder, via, owner, guest, roomId: owner.roomId });
      const { status, body } = await matchmake(i, "create", "filler");
      assert.equal(status, 200, JSON.stringify(body));
      fillers.push({ roomId: body.roomId, holder: processIndex(body.processId) });
    }
    for (let i = 0; i < 3; i++) {
      assert.deepEqual(await listedIds(i, "world"), worlds.map((w) => w.roomId).sort());
      assert.deepEqual(await listedIds(i, "filler"), fillers.map((f) => f.roomId).sort());
    }
    victim = worlds[2].holder;
    survivors = [0, 1, 2].filter((i) => i !== victim);
    assert.ok(alive(worlds).length > 0, `every world room is on process ${victim}`);
    console.log(`# world rooms on processes ${worlds.map((w) => w.holder)}, filler rooms on `
      + `${fillers.map((f) => f.holder)}; killing process ${victim}`);
  }],
  ["kill -9 of a process: its clients see their room end", async () => {
    const closing = worlds.filter((w) => w.holder === victim).flatMap((w) => [left(w.owner), left(w.guest)]);
    assert.equal(await harness(`kill ${victim}`), "killed");
    killedAt = Date.now();
    console.log(`# close codes of the dead process's clients: ${(await Promise.all(closing)).join(", ")}`);
  }],
  ["the other processes' rooms and clients carry on (also clients that matchmade through the dead process)", async () => {
    for (const { holder, owner, guest, via } of alive(worlds)) {
      const x = 100 + holder;
      owner.send("move", { x, y: 10 });
      await until(() => guest.state.players.get(owner.sessionId).x === x, `a move in the room of ${holder}`);
      guest.send("move", { x: x + 1, y: 11 });
      await until(() => owner.state.players.get(guest.sessionId).x === x + 1, `a move of the guest through ${via}`);
      const heard = next(owner, "chat");
      guest.send("chat", "still here");
      assert.equal((await heard).text, "still here");
    }
  }],
  ["matchmaking through the survivors works and never sends a client to the dead process", async () => {
    for (const i of survivors) {
      for (const mode of ["a", "b", "c"]) {
        const room = await modernAt(i).joinOrCreate("battle", { mode: `after-kill-${mode}` });
        assert.notEqual(wsPort(room), ports[victim]);
        await room.leave();
      }
      for (const other of alive(worlds)) {
        const byId = await modernAt(i).joinById(other.roomId, { name: `late${i}` });
        assert.equal(wsPort(byId), ports[other.holder]);
        await until(() => playerIds(other.owner).includes(byId.sessionId), "the late joiner");
        await byId.leave();
      }
    }
  }],
  ["the dead process's rooms leave every listing within 10 s of the kill", async () => {
    const wantWorld = alive(worlds).map((w) => w.roomId).sort();
    const wantFiller = alive(fillers).map((f) => f.roomId).sort();
    const budget = Math.max(1000, 10000 - (Date.now() - killedAt));
    await eventually(async () => {
      for (const i of survivors) {
        assert.deepEqual(await listedIds(i, "world"), wantWorld, `world rooms listed by ${i}`);
        assert.deepEqual(await listedIds(i, "filler"), wantFiller, `filler rooms listed by ${i}`);
      }
    }, `listings without the rooms of ${processIds[victim]}`, budget);
    console.log(`# unlisted ${Date.now() - killedAt} ms after the kill`);
  }],
  ["joinById and reconnect into a dead process's room fail with 522", async () => {
    for (const i of survivors) {
      for (const dead of worlds.filter((w) => w.holder === victim)) {
        const err = await rejection(modernAt(i).joinById(dead.roomId));
        assert.equal(err.code, 522, `${err.code} ${err.message}`);
        const again = await rejection(modernAt(i).reconnect(dead.guest.reconnectionToken));
        assert.equal(again.code, 522, `reconnect: ${again.code} ${again.message}`);
      }
    }
  }],
  ["leave", async () => {
    await Promise.all(alive(worlds).flatMap((w) => [w.owner.leave(), w.guest.leave()]));
  }],
]);
