// broadcast with except, and after_next_patch ordering, with @colyseus/sdk 0.18.
import { assert, modern, until, steps } from "./lib.mjs";

const a = await modern().joinOrCreate("counter");
const b = await modern().joinById(a.roomId);
await until(() => b.state && b.state.n === 0, "b has the state");

await steps([
  ["except skips the sender", async () => {
    const seenByA = [];
    a.onMessage("chat", (m) => seenByA.push(m));
    const got = new Promise((resolve) => b.onMessage("chat", resolve));
    a.send("chat", "hi");
    assert.deepEqual(await got, { from: a.sessionId, text: "hi" });
    await new Promise((r) => setTimeout(r, 100));
    assert.deepEqual(seenByA, []);
  }],
  ["after_next_patch arrives after the patch, plain broadcasts before", async () => {
    const events = [];
    b.onMessage("now", (n) => events.push(["now", n, b.state.n]));
    b.onMessage("after", (n) => events.push(["after", n, b.state.n]));
    b.onStateChange((state) => events.push(["state", state.n]));
    a.send("after", 77);
    await until(() => events.some((e) => e[0] === "after"), "after message");
    const now = events.findIndex((e) => e[0] === "now");
    const patch = events.findIndex((e) => e[0] === "state" && e[1] === 77);
    const after = events.findIndex((e) => e[0] === "after");
    assert.ok(now < patch && patch < after, JSON.stringify(events));
    assert.deepEqual(events[now], ["now", 77, 0]);
    assert.deepEqual(events[after], ["after", 77, 77]);
  }],
]);
