// The reference server for the load generator (sync-core/examples/loadgen.rs):
// @colyseus/core 0.18.17 + @colyseus/ws-transport 0.18.4 with the same
// "bench" room as the Rust side: entities {x, y, angle, hp, name}, one per
// client plus 50 NPCs, a 60 Hz simulation that turns every entity and walks
// the NPCs, 20 Hz patches, and a "move" message that places the client's
// entity. Usage: node reference-server.mjs <port>
import { Server, Room } from "@colyseus/core";
import { WebSocketTransport } from "@colyseus/ws-transport";
import { Schema, MapSchema, defineTypes } from "@colyseus/schema";

class Entity extends Schema {
  constructor() {
    super();
    this.x = 0;
    this.y = 0;
    this.angle = 0;
    this.hp = 100;
    this.name = "";
  }
}
defineTypes(Entity, { x: "float32", y: "float32", angle: "float32", hp: "uint8", name: "string" });

class BenchState extends Schema {
  constructor() {
    super();
    this.entities = new MapSchema();
  }
}
defineTypes(BenchState, { entities: { map: Entity } });

const NPCS = 50;
const TAU = Math.PI * 2;
const wrap = (v, max) => ((v % max) + max) % max;

class BenchRoom extends Room {
  maxClients = 50;

  onCreate() {
    this.setState(new BenchState());
    for (let i = 0; i < NPCS; i++) {
      const npc = new Entity();
      npc.x = i * 16;
      npc.y = i * 12;
      npc.angle = i * 0.1;
      npc.name = `npc ${i}`;
      this.state.entities.set(`npc${i}`, npc);
    }
    this.steps = 0;
    this.setSimulationInterval((deltaTime) => {
      this.steps++;
      const dt = deltaTime / 1000;
      const turn = 0.01 + (this.steps % 7) * 0.001;
      this.state.entities.forEach((entity, key) => {
        const angle = (entity.angle + turn) % TAU;
        entity.angle = angle;
        if (key.startsWith("npc")) {
          const speed = 60 * dt;
          entity.x = wrap(entity.x + Math.cos(angle) * speed, 800);
          entity.y = wrap(entity.y + Math.sin(angle) * speed, 600);
        }
      });
    }, 1000 / 60);
    this.setPatchRate(50);
    this.onMessage("move", (client, move) => {
      const entity = this.state.entities.get(client.sessionId);
      if (entity) {
        entity.x = move.x;
        entity.y = move.y;
      }
    });
  }

  onJoin(client) {
    const entity = new Entity();
    entity.name = `player ${client.sessionId}`;
    this.state.entities.set(client.sessionId, entity);
  }

  onLeave(client) {
    this.state.entities.delete(client.sessionId);
  }
}

const port = Number(process.argv[2] ?? 2568);
const server = new Server({ transport: new WebSocketTransport(), greet: false });
server.define("bench", BenchRoom);
await server.listen(port, "127.0.0.1");
console.log(`reference server listening on ${port}`);
