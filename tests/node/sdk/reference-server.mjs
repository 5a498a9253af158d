// The reference server for the load generator (sync-core/examples/loadgen.rs):
// @colyseus/core 0.18.17 + @colyseus/ws-transport 0.18.4 with the same
// "bench" room as the Rust side: entities {x, y, angle, hp, name}, one per
// client plus 50 NPCs, a 60 Hz simulation that turns every entity and walks
// the NPCs, 20 Hz patches, and a "move" message that places the client's
// entity. Usage: node reference-server.mjs <port>
//
// Three rooms, as in loadgen's `--room`:
// - "bench": rooms of 50 clients (+ 50 NPCs each);
// - "view": the same, with the entities behind a @view() field: each client
//   has a StateView showing its own entity and every entity (player or
//   NPC) whose number has the parity of its own (half of the others);
// - "big": one room of 500 clients + 50 NPCs.
// Every room times its patch broadcasts (encode + the writes to every
// client, `broadcastPatch`) and prints the totals since the start four
// times a second: `patch-stats <patches> <seconds>` (process.hrtime).
import { Server, Room } from "@colyseus/core";
import { WebSocketTransport } from "@colyseus/ws-transport";
import { Schema, MapSchema, StateView, defineTypes, view } from "@colyseus/schema";

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

// The "view" room's state: the same map behind a @view() field.
class ViewBenchState extends Schema {
  constructor() {
    super();
    this.entities = new MapSchema();
  }
}
defineTypes(ViewBenchState, { entities: { map: Entity } });
view()(ViewBenchState.prototype, "entities");

const patchStats = { patches: 0, seconds: 0 };

const NPCS = 50;
const TAU = Math.PI * 2;
const wrap = (v, max) => ((v % max) + max) % max;

class BenchRoom extends Room {
  maxClients = 50;
  withViews = false;

  onCreate() {
    this.setState(this.withViews ? new ViewBenchState() : new BenchState());
    // The number of each entity, by key (its parity decides who sees it).
    this.numbers = new Map();
    this.joined = 0;
    for (let i = 0; i < NPCS; i++) {
      const npc = new Entity();
      npc.x = i * 16;
      npc.y = i * 12;
      npc.angle = i * 0.1;
      npc.name = `npc ${i}`;
      this.state.entities.set(`npc${i}`, npc);
      this.numbers.set(`npc${i}`, i);
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

  broadcastPatch() {
    const started = process.hrtime.bigint();
    const sent = super.broadcastPatch();
    patchStats.patches += 1;
    patchStats.seconds += Number(process.hrtime.bigint() - started) / 1e9;
    return sent;
  }

  onJoin(client) {
    const entity = new Entity();
    entity.name = `player ${client.sessionId}`;
    this.state.entities.set(client.sessionId, entity);
    const number = this.joined++;
    this.numbers.set(client.sessionId, number);
    if (this.withViews) {
      client.view = new StateView();
      client.view.add(entity);
      this.state.entities.forEach((other, key) => {
        if (key !== client.sessionId && this.numbers.get(key) % 2 === number % 2) {
          client.view.add(other);
        }
      });
      for (const peer of this.clients) {
        if (peer !== client && peer.view && this.numbers.get(peer.sessionId) % 2 === number % 2) {
          peer.view.add(entity);
        }
      }
    }
  }

  onLeave(client) {
    this.state.entities.delete(client.sessionId);
    this.numbers.delete(client.sessionId);
  }
}

class ViewRoom extends BenchRoom {
  withViews = true;
}

class BigRoom extends BenchRoom {
  maxClients = 500;
}

const port = Number(process.argv[2] ?? 2568);
const server = new Server({ transport: new WebSocketTransport(), greet: false });
server.define("bench", BenchRoom);
server.define("view", ViewRoom);
server.define("big", BigRoom);
await server.listen(port, "127.0.0.1");
// The patch broadcasts so far, for loadgen (it keeps the last line).
setInterval(() => console.log(`patch-stats ${patchStats.patches} ${patchStats.seconds}`), 250);
console.log(`reference server listening on ${port}`);
