// The load tests' echo room on the Node reference server (@colyseus/core
// 0.18.17), as EchoRoom of tests/roomcast_server.rs. Evaluated with
// `node --input-type=module -e` in tests/node (where its imports resolve);
// listens on $PORT and prints "listening" once ready.
const { Server, Room } = await import("@colyseus/core");
const { WebSocketTransport } = await import("@colyseus/ws-transport");
const { Schema, defineTypes } = await import("@colyseus/schema");

class Counter extends Schema {
  constructor() {
    super();
    this.echoes = 0;
  }
}
defineTypes(Counter, { echoes: "uint32" });

class EchoRoom extends Room {
  onCreate() {
    this.setState(new Counter());
    this.setPatchRate(50);
    this.onMessage("echo", (client, m) => {
      client.send("echo", m);
      this.state.echoes++;
    });
  }
}

const server = new Server({ transport: new WebSocketTransport(), greet: false });
server.define("echo", EchoRoom);
await server.listen(Number(process.env.PORT), "127.0.0.1");
console.log("listening");
