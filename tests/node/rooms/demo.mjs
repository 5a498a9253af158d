// The demo room (players moving on a map, and a chat) on @colyseus/core
// 0.18: the Node twin of sync-core/src/bin/roomcast-demo/room.rs.
import { Room, ServerError } from "@colyseus/core";
import { schema, t } from "@colyseus/schema";

const WIDTH = 800;
const HEIGHT = 600;
const CHAT_LINES = 10;

const Player = schema({ name: t.string(), x: t.float32(), y: t.float32() });
const World = schema({ players: t.map(Player), chat: t.array("string"), width: t.uint16(), height: t.uint16() });

export class DemoRoom extends Room {
  onCreate(options) {
    this.state = new World({ width: WIDTH, height: HEIGHT });
    this.maxClients = options.maxClients ?? 50;
    this.onMessage("move", (client, m) => {
      // Refuse NaN and infinities, or every client would get them.
      if (!(Number.isFinite(m?.x) && Number.isFinite(m?.y))) {
        return client.error(4217, "move: x and y must be finite numbers");
      }
      const player = this.state.players.get(client.sessionId);
      if (player) {
        player.x = Math.min(Math.max(m.x, 0), WIDTH);
        player.y = Math.min(Math.max(m.y, 0), HEIGHT);
      }
    });
    this.onMessage("chat", (client, message) => {
      const text = [...String(message)].slice(0, 200).join("");
      const name = client.auth;
      this.state.chat.push(`${name}: ${text}`);
      if (this.state.chat.length > CHAT_LINES) this.state.chat.shift();
      this.broadcast("chat", { from: client.sessionId, name, text });
    });
    this.onMessage("snapshot", (client) => client.send("snapshot", this.state.toJSON()));
  }

  onAuth(client, options) {
    const name = String(options.name ?? "").trim();
    if ([...name].length > 24) throw new ServerError(4400, "name too long");
    return name || `player-${client.sessionId.slice(0, 4)}`;
  }

  onJoin(client) {
    // A spot derived from the session id: random enough, reproducible.
    let seed = 7;
    for (const b of Buffer.from(client.sessionId)) seed = (Math.imul(seed, 31) + b) >>> 0;
    const x = (seed % 780) + 10;
    const y = (Math.floor(seed / 780) % 580) + 10;
    this.state.players.set(client.sessionId, new Player({ name: client.auth, x, y }));
  }

  onDrop(client) {
    // Keep the player for 10 s; onLeave removes it if it does not return.
    this.allowReconnection(client, 10);
  }

  onLeave(client) {
    this.state.players.delete(client.sessionId);
  }
}
