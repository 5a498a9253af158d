// LobbyRoom with @colyseus/sdk: the listing on join, then "+" [roomId,
// listing] as rooms appear or change and "-" roomId when they go; private
// and unlisted rooms never show.
import { assert, modern, next, steps, until } from "./lib.mjs";

await steps([
  ["rooms on join, + and - as rooms come and go, private and unlisted rooms hidden", async () => {
    const before = await modern().create("counter", { mode: "before" });
    const lobby = await modern().joinOrCreate("lobby");
    const rooms = await next(lobby, "rooms");
    assert.deepEqual(rooms.map((r) => r.roomId), [before.roomId]);
    assert.equal(rooms[0].metadata.mode, "before");
    const added = [];
    lobby.onMessage("+", (message) => added.push(message));
    const hidden = await modern().create("counter", { private: true });
    const unlisted = await modern().create("counter", { unlisted: true });
    const shown = await modern().create("counter", { mode: "shown" });
    await until(() => added.some(([id]) => id === shown.roomId), "the new room announced");
    const [, listing] = added.find(([id]) => id === shown.roomId);
    assert.equal(listing.name, "counter");
    assert.equal(listing.metadata.mode, "shown");
    // The private and unlisted rooms made before it never are.
    const ids = added.map(([id]) => id);
    assert.ok(!ids.includes(hidden.roomId), "the private room is not announced");
    assert.ok(!ids.includes(unlisted.roomId), "the unlisted room is not announced");
    const removed = next(lobby, "-");
    await shown.leave();
    assert.equal(await removed, shown.roomId);
    const filtered = next(lobby, "rooms");
    lobby.send("filter", { name: "counter", metadata: { mode: "before" } });
    assert.deepEqual((await filtered).map((r) => r.roomId), [before.roomId]);
    await Promise.all([before.leave(), hidden.leave(), unlisted.leave(), lobby.leave()]);
  }],
]);
