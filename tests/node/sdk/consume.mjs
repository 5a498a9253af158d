// Consumes the seat reservations given as arguments (JSON) with
// @colyseus/sdk 0.18: each joins the room it names, on the process its
// publicAddress names, and gets the room's state.
import { assert, modern, until, steps } from "./lib.mjs";

const reservations = process.argv.slice(3).map((s) => JSON.parse(s));

await steps(reservations.map((reservation, i) => [`reservation ${i} in ${reservation.roomId} at ${reservation.publicAddress}`, async () => {
  const room = await modern().consumeSeatReservation(reservation);
  assert.equal(room.roomId, reservation.roomId);
  assert.equal(room.sessionId, reservation.sessionId);
  await until(() => room.state && room.state.n === 0, "the state of the reserved room");
  await room.leave();
}]));
