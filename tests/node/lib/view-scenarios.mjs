// The StateView and join scenarios of the side-by-side benchmark (V1, V2,
// J1), shared by bench-schema.mjs (timing) and dump-s1.mjs (bytes), so both
// run exactly the same ticks. Keep them in step with
// benches/src/scenario.rs.

import * as S5 from "@colyseus/schema";

// Entity plus one @view() field, in a class built like @type()/@view()
// decorators would.
export class ViewEntity extends S5.Schema {}
for (const [name, ty] of [["x", "float32"], ["y", "float32"], ["angle", "float32"], ["hp", "uint8"], ["name", "string"], ["secret", "uint32"]]) {
  S5.type(ty)(ViewEntity.prototype, name);
  if (name === "secret") S5.view()(ViewEntity.prototype, name);
}
export class ViewState extends S5.Schema {}
S5.type({ map: ViewEntity })(ViewState.prototype, "entities");

/** `n` view entities "e0".. with secret = i, and an encoder past its first patch. */
export function buildViewState(n) {
  const state = new ViewState();
  state.entities = new S5.MapSchema();
  const list = [];
  for (let i = 0; i < n; i++) {
    const e = new ViewEntity();
    e.x = i;
    e.y = i * 0.5;
    e.angle = 0;
    e.hp = 100;
    e.name = `e${i}`;
    e.secret = i;
    state.entities.set(`e${i}`, e);
    list.push(e);
  }
  const encoder = new S5.Encoder(state);
  encoder.encode();
  encoder.discardChanges();
  return { state, list, encoder };
}

/**
 * One patch: encode() then every view's encodeView(); returns the shared
 * bytes and each view's part (copies when `copy`), or only their sizes.
 */
export function encodeWithViews(encoder, views, copy) {
  const it = { offset: 0 };
  const shared = encoder.encode(it);
  const sharedLen = it.offset;
  const result = { shared: copy ? shared.slice() : null, bytes: shared.length, parts: [] };
  for (const v of views) {
    const start = it.offset;
    encoder.encodeView(v, sharedLen, it);
    result.bytes += it.offset - start;
    if (copy) result.parts.push(encoder.sharedBuffer.slice(start, it.offset));
  }
  encoder.discardChanges();
  return result;
}

/** V1: 100 clients, each seeing its own entity and the last 10. */
export const V1_CLIENTS = 100;
export const V1_SHARED = 10;

/** V1 views over `list` (n entities). */
export function v1Views(list) {
  const n = list.length;
  const views = [];
  for (let c = 0; c < V1_CLIENTS; c++) {
    const view = new S5.StateView();
    view.add(list[c % n]);
    for (let s = 0; s < V1_SHARED; s++) view.add(list[n - 1 - s]);
    views.push(view);
  }
  return views;
}

/** V1 tick `t`'s mutations: every entity moves, every 10th (rotating) changes its secret. */
export function v1Mutate(list, t) {
  for (const e of list) {
    e.x += 1;
    e.y += 0.5;
  }
  for (let i = t % 10; i < list.length; i += 10) list[i].secret += 1;
}

/**
 * V2 (room scale): 500 clients over n = 10,000 entities. Client c sees 50
 * entities of its own, (c * 50 + k) mod (n - 50) for k < 50 (a window
 * wrapping over the first n - 50), and the last 50, shared by all.
 */
export const V2_CLIENTS = 500;
export const V2_OWN = 50;
export const V2_SHARED = 50;

export function v2Views(list) {
  const n = list.length;
  const own = n - V2_SHARED;
  const views = [];
  for (let c = 0; c < V2_CLIENTS; c++) {
    const view = new S5.StateView();
    for (let k = 0; k < V2_OWN; k++) view.add(list[(c * V2_OWN + k) % own]);
    for (let s = 0; s < V2_SHARED; s++) view.add(list[n - 1 - s]);
    views.push(view);
  }
  return views;
}

/** V2 tick `t`'s mutations: 10% of the entities (every 10th, rotating) move and change their secret. */
export function v2Mutate(list, t) {
  for (let i = t % 10; i < list.length; i += 10) {
    const e = list[i];
    e.x += 1;
    e.y += 0.5;
    e.secret += 1;
  }
}

/** J1: per tick, n / 100 map entries replaced (oldest removed, new added). */
export function j1Churn(state, newEntity, counters) {
  const per = Math.max(1, Math.floor(counters.n / 100));
  for (let k = 0; k < per; k++) {
    state.entities.delete(`e${counters.oldest++}`);
    state.entities.set(`e${counters.next}`, newEntity(counters.next++));
  }
}
