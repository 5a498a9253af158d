// Turns decoded (or server-side) Schema trees into plain JSON using the
// conventions of the test vectors (see tests/fixtures/vectors/README.md):
//
// * Schema instance  -> object with its set fields (undefined/null omitted)
// * MapSchema        -> object keyed by the map keys
// * ArraySchema, SetSchema, CollectionSchema -> array (iteration order)
// * NaN / +-Infinity / -0 -> {"$num": "NaN" | "Infinity" | "-Infinity" | "-0"}
// * bigint           -> {"$bigint": "<decimal>"}
// * object keys are emitted sorted.
//
// The functions take the schema *module* (5.x or the 3.x alias) so that the
// collection classes are matched against the right package copy.

/** Encode one primitive JS value with the vector escapes. */
export function primitiveToJson(value) {
  if (typeof value === "number") {
    if (Number.isNaN(value)) return { $num: "NaN" };
    if (value === Infinity) return { $num: "Infinity" };
    if (value === -Infinity) return { $num: "-Infinity" };
    if (value === 0 && 1 / value < 0) return { $num: "-0" };
    return value;
  }
  if (typeof value === "bigint") return { $bigint: value.toString() };
  return value;
}

/** Inverse of primitiveToJson for `$num` / `$bigint` escapes (no other escapes). */
export function jsonToPrimitive(value) {
  if (value !== null && typeof value === "object") {
    if ("$num" in value) {
      switch (value.$num) {
        case "NaN": return NaN;
        case "Infinity": return Infinity;
        case "-Infinity": return -Infinity;
        case "-0": return -0;
        default: throw new Error(`bad $num ${JSON.stringify(value.$num)}`);
      }
    }
    if ("$bigint" in value) return BigInt(value.$bigint);
  }
  return value;
}

function sortedObject(entries) {
  entries.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  const out = {};
  for (const [k, v] of entries) out[k] = v;
  return out;
}

/** Iterate the field descriptors (index order) of a Schema instance or class. */
export function schemaFields(klassOrInstance) {
  const klass = typeof klassOrInstance === "function" ? klassOrInstance : klassOrInstance.constructor;
  const md = klass[Symbol.metadata];
  const fields = [];
  if (!md) return fields;
  // Field indexes are dense 0..n-1 (inherited ones first); at most 64.
  for (let i = 0; i < 64; i++) {
    const f = md[i];
    if (f === undefined) continue;
    fields.push(f);
  }
  return fields;
}

/**
 * Classify a value as "schema", "map", "array", "set", "collection" or null
 * (primitive / unknown).
 */
export function kindOf(mod, value) {
  if (value === null || typeof value !== "object") return null;
  if (value instanceof mod.MapSchema) return "map";
  if (value instanceof mod.ArraySchema) return "array";
  if (value instanceof mod.SetSchema) return "set";
  if (value instanceof mod.CollectionSchema) return "collection";
  if (value instanceof mod.Schema) return "schema";
  return null;
}

/** Entries of a collection as [key, value] pairs (positions for non-maps). */
export function collectionEntries(kind, coll) {
  const out = [];
  if (kind === "map") {
    coll.forEach((v, k) => out.push([k, v]));
  } else if (kind === "array") {
    for (let i = 0; i < coll.length; i++) out.push([i, coll.at(i)]);
  } else {
    let i = 0;
    for (const v of coll.values()) out.push([i++, v]);
  }
  return out;
}

// --- lossy transforms: what a client decodes for a server-side value ---------

const F32_MAX = 3.4028234663852886e38;

/** The value a client decodes for a `number` field holding `v` (see schema-wire.md 2.2). */
export function lossyNumber(v) {
  if (typeof v !== "number") return v;
  if (Number.isNaN(v)) return 0;
  if (v === Infinity) v = Number.MAX_SAFE_INTEGER;
  else if (v === -Infinity) v = -Number.MAX_SAFE_INTEGER;
  if (v === (v | 0)) return v === 0 ? 0 : v; // integer path, -0 -> 0
  if (Math.abs(v) <= F32_MAX && Math.abs(Math.fround(v) - v) < 1e-4) return Math.fround(v);
  return v;
}

/** The value a client decodes for a primitive of declared `type` holding `v`. */
export function lossyPrimitive(type, v) {
  if (v === undefined || v === null) return v;
  switch (type) {
    case "number": return lossyNumber(v);
    case "float32": return Math.fround(v);
    case "int8": return (v << 24) >> 24;
    case "uint8": return v & 0xff;
    case "int16": return (v << 16) >> 16;
    case "uint16": return v & 0xffff;
    case "int32": return v | 0;
    case "uint32": return v >>> 0;
    case "boolean": return !!v;
    default: return v;
  }
}

function childPrimitiveType(fieldType) {
  if (typeof fieldType === "string") return fieldType;
  if (fieldType && typeof fieldType === "object") {
    for (const k of ["map", "array", "set", "collection"]) {
      if (k in fieldType && typeof fieldType[k] === "string") return fieldType[k];
    }
  }
  return undefined;
}

/**
 * Convert a Schema tree to vector-style JSON.
 * opts.lossy: apply the wire's lossy transforms to primitives according to
 * their declared types (predicts what a client decodes from server values).
 */
export function toJsonState(mod, value, opts = {}, primType = undefined) {
  const kind = kindOf(mod, value);
  if (kind === null) {
    const v = opts.lossy ? lossyPrimitive(primType, value) : value;
    return primitiveToJson(v);
  }
  if (kind === "schema") {
    const entries = [];
    for (const f of schemaFields(value)) {
      const v = value[f.name];
      if (v === undefined || v === null) continue;
      entries.push([f.name, toJsonState(mod, v, opts, childPrimitiveType(f.type))]);
    }
    return sortedObject(entries);
  }
  const entries = collectionEntries(kind, value).map(([k, v]) => [k, toJsonState(mod, v, opts, primType)]);
  if (kind === "map") return sortedObject(entries.map(([k, v]) => [String(k), v]));
  return entries.map(([, v]) => v);
}

/** Deterministic JSON text (object keys sorted at every level) for comparisons. */
export function canonical(value) {
  if (Array.isArray(value)) return "[" + value.map(canonical).join(",") + "]";
  if (value !== null && typeof value === "object") {
    const keys = Object.keys(value).sort();
    return "{" + keys.map((k) => JSON.stringify(k) + ":" + canonical(value[k])).join(",") + "}";
  }
  return JSON.stringify(value);
}

/** Structural JSON equality (key order ignored). */
export function jsonEqual(a, b) {
  return canonical(a) === canonical(b);
}

/** Hex helpers. */
export function toHex(bytes) {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("hex");
}
export function fromHex(hex) {
  if (typeof hex !== "string" || hex.length % 2 !== 0 || /[^0-9a-fA-F]/.test(hex)) {
    throw new Error("invalid hex string");
  }
  return new Uint8Array(Buffer.from(hex, "hex"));
}
