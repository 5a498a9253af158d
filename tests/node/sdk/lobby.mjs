// LobbyRoom with @colyseus/sdk: the listing on join, then "+" [roomId,
// listing] as rooms appear or change and "-" roomId when they go; private
// rooms never show.
import { assert, modern, next, steps } from "./lib.mjs";

await steps([
  ["rooms on join, + and - as rooms come and go, private rooms hidden", async () => {
    const before = await modern().create("counter", { mode: "before" });
    const lobby = await modern().joinOrCreate("lobby");
    const rooms = await next(lobby, "rooms");
    assert.deepEqual(rooms.map((r) => r.roomId), [before.roomId]);
    assert.equal(rooms[0].metadata.mode, "before");
    const hidden = await modern().create("counter", { private: true });
    const added = next(lobby, "+");
    const shown = await modern().create("counter", { mode: "shown" });
    const [roomId, listing] = await added;
    assert.equal(roomId, shown.roomId, "the private room was not announced");
    assert.equal(listing.name, "counter");
    assert.equal(listing.metadata.mode, "shown");
    const removed = next(lobby, "-");
    await shown.leave();
    assert.equal(await removed, shown.roomId);
    const filtered = next(lobby, "rooms");
    lobby.send("filter", { name: "counter", metadata: { mode: "before" } });
    assert.deepEqual((await filtered).map((r) => r.roomId), [before.roomId]);
    await Promise.all([before.leave(), hidden.leave(), lobby.leave()]);
  }],
]);
