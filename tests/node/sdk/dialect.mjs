// A client on the endpoint of the other protocol generation cannot decode
// JOIN_ROOM (its SDK throws a decoder error and never acknowledges): the
// server then rejects its join with an error that says what is wrong.
import { spawnSync } from "node:child_process";

// Both SDKs use the global WebSocket when there is one (browsers, Node
// 22+), else the `ws` package, whose receiver stops delivering frames
// once a message listener threw: behind the SDK's decoder error, the
// server's explanation would never surface. Run as a browser would.
if (!globalThis.WebSocket) {
  const args = ["--experimental-websocket", "--no-warnings", ...process.argv.slice(1)];
  const { status } = spawnSync(process.execPath, args, { stdio: "inherit" });
  process.exit(status ?? 1);
}

const legacySdk = await import("colyseus.js");
const { Client: ModernClient } = await import("@colyseus/sdk");
const { assert, endpoint, steps, rejection } = await import("./lib.mjs");

// The SDKs throw their decoder error from the WebSocket's message
// handler, out of reach of any promise: Node would exit on it (a browser
// only logs it).
const decoderErrors = [];
process.on("uncaughtException", (e) => decoderErrors.push(e));

await steps([
  ["colyseus.js 0.16 on the 0.18 endpoint: told to use the 0.16 endpoint", async () => {
    const client = new legacySdk.Client(endpoint);
    const err = await rejection(client.joinOrCreate("counter"));
    assert.equal(err.code, 4218);
    assert.match(err.message, /0\.18 protocol.*colyseus\.js 0\.16.*0\.16 endpoint/);
  }],
  ["@colyseus/sdk 0.18 on the 0.16 endpoint: told to use the 0.18 endpoint", async () => {
    const client = new ModernClient(`${endpoint}/legacy`);
    const err = await rejection(client.joinOrCreate("counter"));
    assert.equal(err.code, 4218);
    assert.match(err.message, /0\.16 protocol.*@colyseus\/sdk.*0\.18 endpoint/);
  }],
  ["each SDK did fail to decode (the errors the server's message explains)", async () => {
    assert.ok(decoderErrors.length >= 2, `decoder errors: ${decoderErrors.map(String)}`);
  }],
]);
