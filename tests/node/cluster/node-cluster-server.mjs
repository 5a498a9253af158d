// One process of a 3-process Colyseus 0.18 cluster for the cluster
// matchmaking benchmark (sync-core/examples/clusterbench.rs,
// benches/cluster.sh): @colyseus/core 0.18.17 with RedisPresence
// (@colyseus/redis-presence 0.18.5) and RedisDriver
// (@colyseus/redis-driver 0.18.3) on a shared Redis, and
// @colyseus/ws-transport 0.18.4 on its own port. Every process of the
// cluster lists its rooms in Redis, so a joinOrCreate sent to any process
// can land in a room of another one (the seat is reserved over Redis
// pub/sub, and the seat reservation's publicAddress sends the client's
// WebSocket to the right process).
//
// Usage: node node-cluster-server.mjs <port> <redisUrl>
// Prints "processId <id>" and then "READY <port>" once listening.
//
// Rooms (the Roomcast cluster defines the same ones):
//   battle: maxClients 10, filterBy(["mode"]), state { players: map<Player{name}> }
//   filler: autoDispose false, maxClients 1000, no state; fills the listing
import { Server, Room, matchMaker } from "@colyseus/core";
import { WebSocketTransport } from "@colyseus/ws-transport";
import { RedisPresence } from "@colyseus/redis-presence";
import { RedisDriver } from "@colyseus/redis-driver";
import { schema, t } from "@colyseus/schema";

const port = Number(process.argv[2]);
const redisUrl = process.argv[3];
if (!Number.isInteger(port) || port <= 0 || !redisUrl) {
  console.error("usage: node node-cluster-server.mjs <port> <redisUrl>");
  process.exit(2);
}

const Player = schema({ name: t.string() }, "Player");
const BattleState = schema({ players: t.map(Player) }, "BattleState");

class BattleRoom extends Room {
  maxClients = 10;

  onCreate() {
    this.setState(new BattleState());
  }

  onJoin(client, options) {
    const player = new Player();
    player.name = typeof options?.name === "string" ? options.name : client.sessionId;
    this.state.players.set(client.sessionId, player);
  }

  onLeave(client) {
    this.state.players.delete(client.sessionId);
  }
}

class FillerRoom extends Room {
  maxClients = 1000;
  autoDispose = false;

  // Idle listed rooms: no patch timer (as on the Roomcast side), so the
  // query scenario measures matchmaking, not thousands of ticking rooms.
  onCreate() {
    this.setPatchRate(null);
  }
}

const server = new Server({
  transport: new WebSocketTransport(),
  // Both take what ioredis takes: a URL, a port, options, or a client.
  presence: new RedisPresence(redisUrl),
  driver: new RedisDriver(redisUrl),
  publicAddress: `127.0.0.1:${port}`,
  greet: false,
});
server.define("battle", BattleRoom).filterBy(["mode"]);
server.define("filler", FillerRoom);
await server.listen(port, "127.0.0.1");
console.log(`processId ${matchMaker.processId}`);
console.log(`READY ${port}`);
