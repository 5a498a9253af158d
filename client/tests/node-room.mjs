// The client tests' room on the Node reference server (@colyseus/core
// 0.18.17), the same as TestRoom of tests/common/mod.rs. Evaluated with
// `node --input-type=module -e` in tests/node (where its imports resolve);
// listens on $PORT and prints "listening" once ready.
import { WebSocket } from "ws";
// @colyseus/core reads a global WebSocket that Node 20 lacks (spec
// room-protocol.md §12): reconnection fails without it.
globalThis.WebSocket ??= WebSocket;
const { Server, Room, ServerError } = await import("@colyseus/core");
const { WebSocketTransport } = await import("@colyseus/ws-transport");
const { Schema, MapSchema, ArraySchema, defineTypes } = await import("@colyseus/schema");

class Player extends Schema {
  constructor() {
    super();
    this.name = "";
    this.x = 0;
  }
}
defineTypes(Player, { name: "string", x: "float32" });

class World extends Schema {
  constructor() {
    super();
    this.players = new MapSchema();
    this.counter = 0;
    this.log = new ArraySchema();
  }
}
defineTypes(World, { players: { map: Player }, counter: "uint32", log: ["string"] });

class TestRoom extends Room {
  onCreate() {
    this.setState(new World());
    this.onMessage("echo", (client, m) => client.send("echo", m));
    this.onMessage(7, (client, m) => client.send(7, m));
    this.onMessage("log", (client, text) => {
      this.state.log.push(text);
      this.state.counter++;
    });
    this.onMessage("kick", (client, code) => client.leave(code));
    this.onMessage("fail", (client) => client.error(4321, "failed on purpose"));
    this.onMessage("ask", (client, m) => ({ got: m }));
    this.onMessage("ask-fail", () => {
      throw new ServerError(4444, "no");
    });
    this.onMessageBytes("bin", (client, bytes) => client.sendBytes("bin", bytes));
  }

  onAuth(client, options) {
    if (options.password === "wrong") {
      throw new ServerError(4401, "bad password");
    }
    return true;
  }

  onJoin(client, options) {
    const player = new Player();
    player.name = options.name ?? "";
    client.userData = { hold: options.hold !== false };
    this.state.players.set(client.sessionId, player);
  }

  onDrop(client) {
    if (!client.userData?.hold) {
      return;
    }
    this.allowReconnection(client, 10);
  }

  onLeave(client) {
    this.state.players.delete(client.sessionId);
  }
}

const server = new Server({ transport: new WebSocketTransport(), greet: false });
server.define("test", TestRoom);
await server.listen(Number(process.env.PORT), "127.0.0.1");
console.log("listening");
