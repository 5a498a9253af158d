// A small seeded PRNG (mulberry32) with the helpers the random scenario
// generator needs. Same seed, same sequence, on every Node version: nothing
// here uses Math.random.

/** 32-bit FNV-1a of a string, to derive sub-seeds ("seed/scenario"). */
export function hashSeed(text) {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

export class Rng {
  constructor(seed) {
    this.state = seed >>> 0;
  }

  /** Uniform 32-bit unsigned integer (mulberry32). */
  u32() {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  }

  /** Uniform float in [0, 1). */
  float() {
    return this.u32() / 4294967296;
  }

  /** Uniform integer in [0, n). */
  int(n) {
    if (n <= 0) return 0;
    return Math.floor(this.float() * n);
  }

  /** Uniform integer in [lo, hi] (inclusive). */
  range(lo, hi) {
    return lo + this.int(hi - lo + 1);
  }

  chance(p) {
    return this.float() < p;
  }

  pick(items) {
    return items[this.int(items.length)];
  }

  /** `entries`: [[weight, value], ...]; weights <= 0 are never picked. */
  weighted(entries) {
    let total = 0;
    for (const [w] of entries) if (w > 0) total += w;
    if (total <= 0) return undefined;
    let x = this.float() * total;
    for (const [w, v] of entries) {
      if (w <= 0) continue;
      if (x < w) return v;
      x -= w;
    }
    return entries.filter(([w]) => w > 0).at(-1)[1];
  }

  shuffle(items) {
    const a = items.slice();
    for (let i = a.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      [a[i], a[j]] = [a[j], a[i]];
    }
    return a;
  }
}
