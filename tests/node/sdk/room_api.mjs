// on_auth rejection, max_clients and lock, seat reservation expiry, leave
// codes, client.error, disconnect and auto_dispose, bad input, with
// @colyseus/sdk 0.18.
import { assert, modern, next, until, steps, rejection, left, sleep, endpoint } from "./lib.mjs";
import WebSocket from "ws";

const listing = async (name) => (await fetch(`${endpoint}/matchmake/${name}`)).json();

await steps([
  ["on_auth rejection reaches the promise with code and message", async () => {
    const err = await rejection(modern().joinOrCreate("counter", { password: "wrong" }));
    assert.equal(err.code, 4401);
    assert.equal(err.message, "bad password");
  }],
  ["the auth token reaches on_auth", async () => {
    const client = modern();
    client.auth.token = "token-123";
    const room = await client.joinOrCreate("counter", { private: true });
    const who = next(room, "whoami");
    room.send("whoami");
    assert.equal((await who).auth, "token-123");
    await room.leave();
  }],
  ["max_clients from the definition's default options locks a full room", async () => {
    const a = await modern().joinOrCreate("fixed", { maxClients: 50 });
    const b = await modern().joinOrCreate("fixed");
    assert.equal(a.roomId, b.roomId);
    assert.deepEqual((await listing("fixed")).length, 0, "full rooms are not listed");
    const err = await rejection(modern().joinById(a.roomId));
    assert.equal(err.code, 522);
    const c = await modern().joinOrCreate("fixed");
    assert.notEqual(c.roomId, a.roomId, "a full room is skipped");
    // A seat frees: the room unlocks.
    await b.leave();
    const d = await modern().joinById(a.roomId);
    assert.equal(d.roomId, a.roomId);
    await Promise.all([a.leave(), c.leave(), d.leave()]);
  }],
  ["on_create gets the definition's options over the client's; on_auth and on_join the client's own", async () => {
    const a = await modern().joinOrCreate("fixed", { maxClients: 50, name: "ann" });
    const who = next(a, "whoami");
    a.send("whoami");
    const { options } = await who;
    assert.deepEqual(options.create, { maxClients: 2, name: "ann" });
    assert.deepEqual(options.auth, { maxClients: 50, name: "ann" });
    assert.deepEqual(options.join, { maxClients: 50, name: "ann" });
    // A second client: its own options, by joinById too.
    const b = await modern().joinById(a.roomId, { name: "bo" });
    const whoB = next(b, "whoami");
    b.send("whoami");
    const second = (await whoB).options;
    assert.deepEqual(second.auth, { name: "bo" });
    assert.deepEqual(second.join, { name: "bo" });
    await Promise.all([a.leave(), b.leave()]);
  }],
  ["a message sent without a payload reaches its handler as no payload", async () => {
    const room = await modern().joinOrCreate("counter");
    // The room's handler of 7 echoes what it got.
    let echo = next(room, 7);
    room.send(7);
    assert.equal(await echo, undefined);
    echo = next(room, 7);
    room.send(7, null);
    assert.equal(await echo, null);
    await room.leave();
  }],
  ["lock and unlock by hand", async () => {
    const a = await modern().create("counter", { private: true });
    a.send("lock");
    await sleep(50);
    assert.equal((await rejection(modern().joinById(a.roomId))).code, 522);
    a.send("unlock");
    await sleep(50);
    const b = await modern().joinById(a.roomId);
    assert.equal(b.roomId, a.roomId);
    await Promise.all([a.leave(), b.leave()]);
  }],
  ["an expired seat reservation fails with 524", async () => {
    const response = await fetch(`${endpoint}/matchmake/create/counter`, {
      method: "POST",
      headers: { "Content-Type": "application/json", Accept: "application/json" },
      body: JSON.stringify({ seatTime: 0.3 }),
    });
    const reservation = await response.json();
    assert.equal(reservation.name, "counter");
    assert.equal(reservation.room.roomId, reservation.roomId, "0.16 nested layout too");
    await sleep(600);
    const err = await rejection(modern().consumeSeatReservation(reservation));
    assert.equal(err.code, 524);
    assert.equal(err.message, "seat reservation expired.");
  }],
  ["client.leave(code) reaches onLeave", async () => {
    const room = await modern().joinOrCreate("counter");
    const code = left(room);
    room.send("kick", 4005);
    assert.equal(await code, 4005);
  }],
  ["client.error reaches onError and the client stays", async () => {
    const room = await modern().joinOrCreate("counter");
    const error = new Promise((resolve) => room.onError((code, message) => resolve([code, message])));
    room.send("err");
    assert.deepEqual(await error, [4321, "nope"]);
    const who = next(room, "whoami");
    room.send("whoami");
    await who;
    await room.leave();
  }],
  ["disconnect closes everyone with 4000 and disposes the room", async () => {
    const a = await modern().create("counter", { mode: "gone" });
    const b = await modern().joinById(a.roomId);
    const codes = Promise.all([left(a), left(b)]);
    a.send("disconnect");
    assert.deepEqual(await codes, [4000, 4000]);
    await sleep(50);
    assert.equal((await listing("counter")).filter((r) => r.roomId === a.roomId).length, 0);
    assert.equal((await rejection(modern().joinById(a.roomId))).code, 522);
  }],
  ["auto_dispose removes a room when its last client leaves", async () => {
    const a = await modern().create("counter", { mode: "auto" });
    assert.equal((await listing("counter")).filter((r) => r.roomId === a.roomId).length, 1);
    await a.leave();
    await sleep(50);
    assert.equal((await listing("counter")).filter((r) => r.roomId === a.roomId).length, 0);
  }],
  ["a lenient handler (Option<i32>) reads an absent or unreadable payload as None; a strict one closes with 4002", async () => {
    const room = await modern().create("counter");
    for (const [sent, got] of [[5, 5], [undefined, null], ["garbage", null], [{ x: 1 }, null]]) {
      const reply = next(room, "maybe");
      if (sent === undefined) room.send("maybe"); else room.send("maybe", sent);
      assert.equal(await reply, got);
    }
    const error = new Promise((resolve) => room.onError((code, message) => resolve([code, message])));
    const code = left(room);
    room.send("inc", "garbage");
    assert.equal((await error)[0], 4217);
    assert.equal(await code, 4002);
  }],
  ["garbage from a raw client: error and close 4002; the room carries on", async () => {
    const good = await modern().create("counter");
    const reservation = await (await fetch(`${endpoint}/matchmake/joinById/${good.roomId}`, {
      method: "POST", body: "{}", headers: { "Content-Type": "application/json" },
    })).json();
    const ws = new WebSocket(`ws://127.0.0.1:${reservation.port ?? endpoint.split(":")[2]}/${reservation.processId}/${reservation.roomId}?sessionId=${reservation.sessionId}`);
    ws.binaryType = "arraybuffer";
    const frames = [];
    const closed = new Promise((resolve) => ws.on("close", (code) => resolve(code)));
    ws.on("message", (data) => {
      const bytes = new Uint8Array(data);
      frames.push(bytes);
      if (bytes[0] === 10) {
        ws.send(Uint8Array.of(10));
        // ROOM_DATA "inc" with a truncated uint16.
        setTimeout(() => ws.send(Uint8Array.of(0x0d, 0xa3, 0x69, 0x6e, 0x63, 0xcd, 0x01)), 50);
      }
    });
    assert.equal(await closed, 4002);
    const error = frames.find((f) => f[0] === 11);
    assert.ok(error, "an ERROR frame came before the close");
    assert.match(Buffer.from(error).toString("latin1"), /inc/);
    good.send("inc", 3);
    await until(() => good.state.n === 3, "the room carries on");
    await good.leave();
  }],
  ["an oversized frame: error and close 4002", async () => {
    const reservation = await (await fetch(`${endpoint}/matchmake/create/counter`, {
      method: "POST", body: "{}", headers: { "Content-Type": "application/json" },
    })).json();
    const ws = new WebSocket(`ws://127.0.0.1:${endpoint.split(":")[2]}/${reservation.processId}/${reservation.roomId}?sessionId=${reservation.sessionId}`);
    const frames = [];
    const closed = new Promise((resolve) => ws.on("close", (code) => resolve(code)));
    ws.on("message", (data) => {
      const bytes = new Uint8Array(data);
      frames.push(bytes);
      if (bytes[0] === 10) {
        ws.send(Uint8Array.of(10));
        const big = new Uint8Array(100 * 1024);
        big.set([0x0d, 0xa3, 0x69, 0x6e, 0x63]);
        setTimeout(() => ws.send(big), 50);
      }
    });
    assert.equal(await closed, 4002);
    const error = frames.find((f) => f[0] === 11);
    assert.match(Buffer.from(error).toString("latin1"), /exceeds the limit/);
  }],
  ["a frame over twice the limit, then a flood: error and close 4002, no reset", async () => {
    const reservation = await (await fetch(`${endpoint}/matchmake/create/counter`, {
      method: "POST", body: "{}", headers: { "Content-Type": "application/json" },
    })).json();
    const ws = new WebSocket(`ws://127.0.0.1:${endpoint.split(":")[2]}/${reservation.processId}/${reservation.roomId}?sessionId=${reservation.sessionId}`);
    const frames = [];
    const closed = new Promise((resolve) => ws.on("close", (code) => resolve(code)));
    ws.on("error", () => {});
    ws.on("message", (data) => {
      const bytes = new Uint8Array(data);
      frames.push(bytes);
      if (bytes[0] === 10) {
        ws.send(Uint8Array.of(10));
        const big = new Uint8Array(1024 * 1024);
        big.set([0x0d, 0xa3, 0x69, 0x6e, 0x63]);
        ws.send(big);
        for (let i = 0; i < 2000; i++) ws.send(Uint8Array.of(0x0d, 0xa3, 0x69, 0x6e, 0x63, 0x01));
      }
    });
    assert.equal(await closed, 4002);
    const error = frames.find((f) => f[0] === 11);
    assert.match(Buffer.from(error).toString("latin1"), /exceeds the limit/);
  }],
  ["malformed HTTP bodies get a 4xx with an error JSON", async () => {
    const response = await fetch(`${endpoint}/matchmake/joinOrCreate/counter`, {
      method: "POST", body: "{not json", headers: { "Content-Type": "application/json" },
    });
    assert.equal(response.status, 400);
    assert.match((await response.json()).error, /JSON/);
    const unknown = await fetch(`${endpoint}/matchmake/teleport/counter`, { method: "POST", body: "{}" });
    assert.equal(unknown.status, 520);
    assert.deepEqual(await unknown.json(), { code: 520, error: 'invalid method "teleport"' });
  }],
  ["CORS echoes the Origin", async () => {
    const response = await fetch(`${endpoint}/matchmake/joinOrCreate/counter`, {
      method: "OPTIONS", headers: { Origin: "http://game.example" },
    });
    assert.equal(response.status, 204);
    assert.equal(response.headers.get("access-control-allow-origin"), "http://game.example");
    assert.equal(response.headers.get("access-control-allow-credentials"), "true");
  }],
]);
