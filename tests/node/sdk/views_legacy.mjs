// The steps of views.mjs with colyseus.js 0.16 clients (schema 3 decoder),
// served by the legacy endpoint.
import { legacy } from "./lib.mjs";

globalThis.connectForViews = legacy;
await import("./views.mjs");
