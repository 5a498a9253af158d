// The matchmaker from Rust: seats reserved by application code (passed as
// arguments) and by a room (the "hub" room's ctx.matchmaker()), consumed
// by both SDKs with client.consumeSeatReservation.
import { assert, legacy, modern, next, until, steps, rejection } from "./lib.mjs";

const [fromApp, fromAppToo, intoLocked] = process.argv.slice(3).map((s) => JSON.parse(s));

async function consumed(client, reservation) {
  const room = await client.consumeSeatReservation(reservation);
  assert.equal(room.roomId, reservation.roomId);
  assert.equal(room.sessionId, reservation.sessionId);
  await until(() => room.state && room.state.n === 0, "the state of the reserved room");
  return room;
}

await steps([
  ["seats reserved by application code (create_room, reserve_seat_for, join_or_create)", async () => {
    assert.equal(fromApp.roomId, fromAppToo.roomId);
    const a = await consumed(modern(), fromApp);
    const b = await consumed(legacy(), fromAppToo);
    a.send("inc", 2);
    await until(() => b.state.n === 2, "both clients in one room");
    await Promise.all([a.leave(), b.leave()]);
  }],
  ["a seat reserved by application code in a room locked by hand", async () => {
    const room = await consumed(modern(), intoLocked);
    await room.leave();
  }],
  ["a seat reserved from inside a room (modern)", async () => {
    const hub = await modern().joinOrCreate("hub");
    const seat = next(hub, "seat");
    hub.send("seat", "counter");
    const room = await consumed(modern(), await seat);
    const whoami = next(room, "whoami");
    room.send("whoami");
    // The options given to reserve_seat_for reach on_join.
    assert.equal((await whoami).options.join.name, "from hub");
    await Promise.all([room.leave(), hub.leave()]);
  }],
  ["a seat reserved from inside a room (legacy)", async () => {
    const hub = await legacy().joinOrCreate("hub");
    const seat = next(hub, "seat");
    hub.send("seat", "counter");
    const room = await consumed(legacy(), await seat);
    await Promise.all([room.leave(), hub.leave()]);
  }],
  ["join_or_create and query from inside a room", async () => {
    const hub = await modern().joinOrCreate("hub");
    let seat = next(hub, "seat");
    hub.send("join", "fixed");
    const first = await consumed(modern(), await seat);
    seat = next(hub, "seat");
    hub.send("join", "fixed");
    const second = await consumed(modern(), await seat);
    assert.equal(first.roomId, second.roomId);
    const count = next(hub, "count");
    hub.send("count", "fixed");
    assert.equal(await count, 1);
    // "fixed" holds two: the third seat is in a new room.
    seat = next(hub, "seat");
    hub.send("join", "fixed");
    const third = await consumed(modern(), await seat);
    assert.notEqual(third.roomId, first.roomId);
    const errored = new Promise((resolve) => hub.onError((code, message) => resolve([code, message])));
    hub.send("join", "nope");
    assert.equal((await errored)[0], 520);
    await Promise.all([first.leave(), second.leave(), third.leave(), hub.leave()]);
  }],
  ["a used reservation is refused", async () => {
    await rejection(modern().consumeSeatReservation(fromApp));
  }],
]);
