// Tic-tac-toe, the room of the Colyseus tutorial (tutorial-tic-tac-toe) on
// @colyseus/core 0.18: the Node twin of sync-core/examples/rooms/tictactoe.rs.
import { Room } from "@colyseus/core";
import { schema, t, ArraySchema } from "@colyseus/schema";

const TURN_TIMEOUT = 10;
const WIDTH = 3;

const State = schema({
  currentTurn: t.string(),
  players: t.map("boolean"),
  board: t.array("uint8"),
  winner: t.string(),
  draw: t.boolean(),
});

export class TicTacToe extends Room {
  maxClients = 2;

  onCreate() {
    this.state = new State();
    this.state.board = new ArraySchema(...Array(WIDTH * WIDTH).fill(0));
    this.onMessage("action", (client, message) => this.play(client.sessionId, message.x, message.y));
  }

  onJoin(client) {
    this.state.players.set(client.sessionId, true);
    if (this.state.players.size === 2) {
      this.state.currentTurn = client.sessionId;
      this.setAutoMoveTimeout();
      this.lock();
    }
  }

  onLeave(client) {
    this.state.players.delete(client.sessionId);
    const remaining = Array.from(this.state.players.keys());
    if (remaining.length > 0 && !this.state.winner && !this.state.draw) {
      this.state.winner = remaining[0];
    }
    this.autoMove?.clear();
  }

  play(sessionId, x, y) {
    const index = x + WIDTH * y;
    const over = this.state.winner || this.state.draw;
    if (over || sessionId !== this.state.currentTurn || this.state.board[index] !== 0) {
      return;
    }
    const ids = Array.from(this.state.players.keys());
    const mark = sessionId === ids[0] ? 1 : 2;
    this.state.board[index] = mark;
    if (wins(this.state.board, x, y, mark)) {
      this.state.winner = sessionId;
    } else if (this.state.board.every((cell) => cell !== 0)) {
      this.state.draw = true;
    } else {
      this.state.currentTurn = sessionId === ids[0] ? ids[1] : ids[0];
      this.setAutoMoveTimeout();
    }
  }

  setAutoMoveTimeout() {
    this.autoMove?.clear();
    this.autoMove = this.clock.setTimeout(() => {
      // The first free cell, column by column.
      for (let x = 0; x < WIDTH; x++) {
        for (let y = 0; y < WIDTH; y++) {
          if (this.state.board[x + WIDTH * y] === 0) {
            return this.play(this.state.currentTurn, x, y);
          }
        }
      }
    }, TURN_TIMEOUT * 1000);
  }
}

// Whether `mark` at (x, y) completes its column, its row or a diagonal.
function wins(board, x, y, mark) {
  const full = (cell) => [0, 1, 2].every((i) => board[cell(i)] === mark);
  return full((i) => x + WIDTH * i)
    || full((i) => i + WIDTH * y)
    || (x === y && full((i) => i + WIDTH * i))
    || full((i) => i + WIDTH * (WIDTH - 1 - i));
}
