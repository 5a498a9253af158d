// The chat example room (sync-core/examples/rooms/chat.rs), and its Node twin
// (tests/node/rooms/chat.mjs): the same script passes against both.
import { assert, modern, until, steps } from "./lib.mjs";

const listen = (room) => {
  const seen = [];
  room.onMessage("messages", (m) => seen.push(m));
  return seen;
};

await steps([
  ["joins, messages and leaves reach everyone", async () => {
    const a = await modern().create("chat");
    const seenA = listen(a);
    const b = await modern().joinById(a.roomId);
    const seenB = listen(b);
    await until(() => seenA.includes(`${b.sessionId} joined.`), "b's join, seen by a");
    b.send("message", "hello");
    const line = `(${b.sessionId}) hello`;
    await until(() => seenA.includes(line) && seenB.includes(line), "the message, seen by both");
    await b.leave();
    await until(() => seenA.includes(`${b.sessionId} left.`), "b's leave, seen by a");
    assert.equal(seenA.filter((m) => m === line).length, 1, "once");
    await a.leave();
  }],
  ["four at most", async () => {
    const a = await modern().create("chat");
    const others = [];
    for (let i = 0; i < 3; i++) others.push(await modern().joinById(a.roomId));
    const fifth = await modern().joinOrCreate("chat");
    assert.notEqual(fifth.roomId, a.roomId, "a full room takes no fifth");
    await Promise.all([a, ...others, fifth].map((r) => r.leave()));
  }],
]);
