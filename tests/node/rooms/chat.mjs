// The chat room of the Colyseus examples on @colyseus/core 0.18: the Node
// twin of sync-core/examples/rooms/chat.rs.
import { Room } from "@colyseus/core";

export class ChatRoom extends Room {
  maxClients = 4;

  onCreate() {
    this.onMessage("message", (client, message) => {
      this.broadcast("messages", `(${client.sessionId}) ${message}`);
    });
  }

  onJoin(client) {
    this.broadcast("messages", `${client.sessionId} joined.`);
  }

  onLeave(client) {
    this.broadcast("messages", `${client.sessionId} left.`);
  }
}
