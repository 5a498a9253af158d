// A burst of concurrent joinOrCreate("battle", { mode }) spread over the
// processes of a cluster (argument 3: how many, default 600; modes m0, m1,
// m2 in turn, every mode through every process). `battle` holds 10 and
// filters by mode: exactly ceil(n_mode / 10) rooms per mode, none over 10,
// no room with two modes, and every client's state lists exactly the
// clients that got its room.
import {
  assert, steps, until, ports, processIds, modernAt, wsPort, playerIds, listing, eventually, extraArgs,
} from "./cluster-lib.mjs";

const N = Number(extraArgs[0] ?? 600);
const MODES = 3;
const PER_ROOM = 10;
const results = [];
const rooms = new Map(); // roomId -> { mode, members: [result], holder }

const percentile = (sorted, p) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];

await steps([
  [`${N} concurrent joinOrCreate over ${ports.length} processes`, async () => {
    const start = performance.now();
    const joins = Array.from({ length: N }, async (_, i) => {
      const mode = `m${i % MODES}`;
      const via = Math.floor(i / MODES) % ports.length;
      const t0 = performance.now();
      try {
        const room = await modernAt(via).joinOrCreate("battle", { mode, name: `c${i}` });
        return { i, mode, via, room, ms: performance.now() - t0 };
      } catch (error) {
        return { i, mode, via, error, ms: performance.now() - t0 };
      }
    });
    results.push(...(await Promise.all(joins)));
    const wall = performance.now() - start;
    const failed = results.filter((r) => r.error);
    assert.equal(failed.length, 0, `${failed.length} joins failed, e.g. ${failed.slice(0, 5)
      .map((r) => `#${r.i} via ${r.via}: ${r.error?.code} ${r.error?.message}`).join("; ")}`);
    for (const r of results) {
      const entry = rooms.get(r.room.roomId) ?? { mode: r.mode, members: [], holder: new Set() };
      entry.members.push(r);
      entry.holder.add(wsPort(r.room));
      rooms.set(r.room.roomId, entry);
    }
    const ms = results.map((r) => r.ms).sort((a, b) => a - b);
    console.log(`# ${N} joins in ${wall.toFixed(0)} ms; join latency p50 ${percentile(ms, 50).toFixed(0)} ms, `
      + `p99 ${percentile(ms, 99).toFixed(0)} ms, max ${ms[ms.length - 1].toFixed(0)} ms`);
  }],
  ["rooms per mode: ceil(n_mode / 10), none over 10, one mode each, one holder each", async () => {
    const summary = [];
    for (let m = 0; m < MODES; m++) {
      const mode = `m${m}`;
      const nMode = results.filter((r) => r.mode === mode).length;
      const ofMode = [...rooms.values()].filter((e) => e.mode === mode);
      const sizes = ofMode.map((e) => e.members.length).sort((a, b) => b - a);
      summary.push(`# mode ${mode}: ${nMode} clients, ${ofMode.length} rooms, sizes ${sizes.join(",")}`);
      assert.equal(ofMode.length, Math.ceil(nMode / PER_ROOM), `rooms of ${mode} (sizes ${sizes.join(",")})`);
      assert.ok(sizes[0] <= PER_ROOM, `a room of ${mode} got ${sizes[0]} clients`);
    }
    for (const [roomId, e] of rooms) {
      assert.ok(e.members.every((r) => r.mode === e.mode), `room ${roomId} has two modes`);
      assert.equal(e.holder.size, 1, `clients of ${roomId} connected to ${[...e.holder].join(",")}`);
    }
    const perProcess = ports.map((p) => [...rooms.values()].filter((e) => e.holder.has(p)).length);
    const crossed = results.filter((r) => wsPort(r.room) !== ports[r.via]).length;
    summary.push(`# rooms per process: ${perProcess.join(", ")}; `
      + `${crossed} of ${N} clients matchmade through one process and joined a room of another`);
    console.log(summary.join("\n"));
    assert.ok(crossed > 0, "some seats crossed processes");
  }],
  ["every client's state lists exactly its room's clients", async () => {
    const expected = new Map();
    for (const [roomId, e] of rooms) expected.set(roomId, e.members.map((r) => r.room.sessionId).sort().join());
    const wrong = () => results.filter((r) => playerIds(r.room).join() !== expected.get(r.room.roomId));
    await until(() => wrong().length === 0, "every state to converge", 60000).catch((e) => {
      const w = wrong();
      const r = w[0];
      e.message += `: ${w.length} clients disagree, e.g. #${r.i} in ${r.room.roomId} sees ${playerIds(r.room).length} `
        + `players, expected ${rooms.get(r.room.roomId).members.length}`;
      throw e;
    });
    for (const r of results) {
      for (const other of rooms.get(r.room.roomId).members) {
        assert.equal(r.room.state.players.get(other.room.sessionId).name, `c${other.i}`);
      }
    }
  }],
  ["full rooms are not listed; the listing is the same on every process", async () => {
    const open = [...rooms].filter(([, e]) => e.members.length < PER_ROOM).map(([id]) => id).sort();
    await eventually(async () => {
      for (let i = 0; i < ports.length; i++) {
        const listed = await listing(i, "battle");
        assert.deepEqual(listed.map((r) => r.roomId).sort(), open, `GET /matchmake/battle on process ${i}`);
        for (const room of listed) {
          const holder = ports.indexOf([...rooms.get(room.roomId).holder][0]);
          assert.equal(room.processId, processIds[holder]);
        }
      }
    }, "listings");
  }],
  ["everybody leaves; no battle room stays listed", async () => {
    await Promise.all(results.map((r) => r.room.leave()));
    await eventually(async () => {
      for (let i = 0; i < ports.length; i++) assert.deepEqual(await listing(i, "battle"), []);
    }, "empty listings", 20000);
  }],
]);
