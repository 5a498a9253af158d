// The tic-tac-toe example room (sync-core/examples/rooms/tictactoe.rs), and
// its Node twin (tests/node/rooms/tictactoe.mjs): the same script passes
// against both.
import { assert, modern, until, steps } from "./lib.mjs";

const board = (room) => Array.from(room.state.board);
const act = (room, x, y) => room.send("action", { x, y });

await steps([
  ["two players take turns; a column wins; a move out of turn is ignored", async () => {
    const a = await modern().create("tictactoe");
    const b = await modern().joinById(a.roomId);
    // The second player starts; the first in the room plays 1, the other 2.
    await until(() => a.state.currentTurn === b.sessionId, "b's turn");
    assert.deepEqual(board(a), [0, 0, 0, 0, 0, 0, 0, 0, 0]);
    act(a, 2, 2); // not a's turn: ignored
    act(b, 0, 0);
    await until(() => a.state.currentTurn === a.sessionId, "a's turn");
    act(a, 1, 0);
    await until(() => b.state.currentTurn === b.sessionId, "b's turn again");
    act(b, 0, 1);
    act(b, 2, 1); // twice in a row: ignored
    await until(() => a.state.currentTurn === a.sessionId, "a's turn again");
    act(a, 0, 1); // a taken cell: ignored
    act(a, 1, 1);
    await until(() => b.state.currentTurn === b.sessionId, "b's third turn");
    act(b, 0, 2);
    await until(() => a.state.winner === b.sessionId, "b wins");
    assert.deepEqual(board(a), [2, 1, 0, 2, 1, 0, 2, 0, 0]);
    assert.deepEqual(board(b), board(a));
    assert.ok(!a.state.draw, "no draw");
    // The game is over: nothing moves any more.
    act(a, 2, 2);
    act(a, 2, 0);
    await until(() => a.state.players.size === 2, "state still there");
    await Promise.all([a.leave(), b.leave()]);
  }],
  ["a full room is locked; the one who stays wins when the other leaves", async () => {
    const a = await modern().create("tictactoe");
    const b = await modern().joinById(a.roomId);
    const c = await modern().joinOrCreate("tictactoe");
    assert.notEqual(c.roomId, a.roomId, "a third player gets another room");
    await until(() => a.state.players.size === 2, "both players");
    await b.leave();
    await until(() => a.state.winner === a.sessionId, "a wins by forfeit");
    assert.equal(a.state.players.size, 1);
    await Promise.all([a.leave(), c.leave()]);
  }],
]);
