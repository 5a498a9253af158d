// Per-client views (`#[schema(view)]` fields, `RoomCtx::create_view`: the
// server side of Colyseus's `@view()` + `client.view`), decoded by the real
// @colyseus/sdk 0.18: every client holds its own seat's hand, cards and purse,
// and another seat's only while that seat is revealed to it. Cards are an
// ArraySchema in a view field, dealt with push, shift and (every third round)
// an insert in the middle. `views_legacy.mjs`
// runs the same steps with colyseus.js 0.16 (schema 3).
import { assert, modern, next, until, steps, sleep } from "./lib.mjs";

const connect = globalThis.connectForViews ?? modern;

let a, b, c;
const same = async (room, what) => {
  await sleep(120); // two patch ticks
  const server = next(room, "snapshot");
  room.send("snapshot");
  assert.deepEqual(room.state.toJSON(), await server, what);
};

await steps([
  ["two players join: each sees its own hand only", async () => {
    a = await connect().joinOrCreate("cards", { name: "ana" });
    b = await connect().joinById(a.roomId, { name: "bo" });
    await until(() => a.state.seats && a.state.seats.size === 2, "two seats on a");
    await until(() => b.state.seats && b.state.seats.size === 2, "two seats on b");
    await same(a, "a after joins");
    await same(b, "b after joins");
    assert.equal(typeof a.state.seats.get(a.sessionId).hand, "number");
    assert.equal(a.state.seats.get(b.sessionId).hand, undefined, "b's hand hidden from a");
    assert.equal(b.state.seats.get(a.sessionId).purse, undefined, "a's purse hidden from b");
  }],
  ["b reveals its seat to a, then cards are dealt", async () => {
    b.send("reveal", a.sessionId);
    await until(() => a.state.seats.get(b.sessionId).hand !== undefined, "b's hand on a");
    a.send("deal");
    b.send("deal");
    await same(a, "a after deals");
    await same(b, "b after deals");
    a.send("deal"); // round 3: an insert in the middle of every seat's cards
    await same(a, "a after the insert");
    await same(b, "b after the insert");
    assert.deepEqual(a.state.seats.get(b.sessionId).cards.toJSON(), b.state.seats.get(b.sessionId).cards.toJSON());
    assert.equal(a.state.seats.get(b.sessionId).cards.length, 4);
    assert.equal(a.state.seats.get(b.sessionId).purse.gold, b.state.seats.get(b.sessionId).purse.gold);
  }],
  ["a third player joins mid-game with its own view", async () => {
    c = await connect().joinById(a.roomId, { name: "cy" });
    await until(() => c.state.seats && c.state.seats.size === 3, "three seats on c");
    await same(c, "c after join");
    assert.equal(c.state.seats.get(b.sessionId).hand, undefined, "b's hand hidden from c");
    assert.equal(c.state.seats.get(b.sessionId).cards, undefined, "b's cards hidden from c");
    await same(a, "a after c joined");
  }],
  ["b conceals its seat from a again", async () => {
    b.send("conceal", a.sessionId);
    await until(() => a.state.seats.get(b.sessionId).hand === undefined, "b's hand gone from a");
    a.send("deal");
    a.send("deal");
    await same(a, "a after conceal and deal");
    await same(b, "b after conceal and deal");
    await same(c, "c after conceal and deal");
  }],
  ["a leaving player's seat goes everywhere", async () => {
    await b.leave();
    await until(() => a.state.seats.size === 2 && c.state.seats.size === 2, "two seats");
    await same(a, "a after leave");
    await same(c, "c after leave");
    await Promise.all([a.leave(), c.leave()]);
  }],
]);
