// The Node twins of the Rust example rooms (tests/node/rooms/) on
// @colyseus/core 0.18, so the same SDK scripts run against both servers.
// Usage: node twins-server.mjs <port>; prints "listening" once it listens.
import { Server } from "@colyseus/core";
import { WebSocketTransport } from "@colyseus/ws-transport";
import { TicTacToe } from "../rooms/tictactoe.mjs";
import { ChatRoom } from "../rooms/chat.mjs";
import { DemoRoom } from "../rooms/demo.mjs";

const port = Number(process.argv[2] ?? process.env.PORT);
const server = new Server({ transport: new WebSocketTransport(), greet: false });
server.define("tictactoe", TicTacToe);
server.define("chat", ChatRoom);
server.define("world", DemoRoom);
await server.listen(port, "127.0.0.1");
console.log("listening");
