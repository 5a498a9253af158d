// The reference server for the load generator (sync-core/examples/loadgen.rs):
// @colyseus/core 0.18.17 + @colyseus/ws-transport 0.18.4 with the same
// "bench" room as the Rust side. Usage: node reference-server.mjs <port>
import { Server, Room } from "@colyseus/core";
import { WebSocketTransport } from "@colyseus/ws-transport";
import { Schema, MapSchema, defineTypes } from "@colyseus/schema";

class Player extends Schema {
  constructor() {
    super();
    this.x = 0;
    this.y = 0;
    this.seq = 0;
  }
}
defineTypes(Player, { x: "number", y: "number", seq: "uint32" });

class BenchState extends Schema {
  constructor() {
    super();
    this.players = new MapSchema();
  }
}
defineTypes(BenchState, { players: { map: Player } });

class BenchRoom extends Room {
  maxClients = 50;

  onCreate() {
    this.setState(new BenchState());
    this.steps = 0;
    this.setSimulationInterval(() => { this.steps++; }, 1000 / 60);
    this.setPatchRate(50);
    this.onMessage("move", (client, move) => {
      const player = this.state.players.get(client.sessionId);
      if (player) {
        player.x = move.x;
        player.y = move.y;
        player.seq = move.seq;
      }
    });
  }

  onJoin(client) {
    this.state.players.set(client.sessionId, new Player());
  }

  onLeave(client) {
    this.state.players.delete(client.sessionId);
  }
}

const port = Number(process.argv[2] ?? 2568);
const server = new Server({ transport: new WebSocketTransport(), greet: false });
server.define("bench", BenchRoom);
await server.listen(port, "127.0.0.1");
console.log(`reference server listening on ${port}`);
