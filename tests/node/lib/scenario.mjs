// Runtime construction of Schema classes from a vector's `schema` section and
// replay of `initial` values and `ops` (see tests/fixtures/vectors/README.md).

import { kindOf, collectionEntries, jsonToPrimitive } from "./json-state.mjs";

export const PRIMITIVES = new Set([
  "string", "number", "boolean", "int8", "uint8", "int16", "uint16", "int32",
  "uint32", "int64", "uint64", "float32", "float64", "bigint64", "biguint64",
]);

const COLLECTION_KINDS = ["map", "array", "set", "collection"];

function resolveTypeRef(name, classes, where) {
  if (PRIMITIVES.has(name)) return name;
  const klass = classes.get(name);
  if (!klass) throw new Error(`${where}: unknown type ${JSON.stringify(name)}`);
  return klass;
}

/** Convert a vector field type into a @colyseus/schema type definition. */
export function toTypeDefinition(fieldType, classes, where) {
  if (typeof fieldType === "string") return resolveTypeRef(fieldType, classes, where);
  if (fieldType && typeof fieldType === "object") {
    const keys = Object.keys(fieldType);
    if (keys.length === 1 && COLLECTION_KINDS.includes(keys[0])) {
      return { [keys[0]]: resolveTypeRef(fieldType[keys[0]], classes, where) };
    }
  }
  throw new Error(`${where}: unsupported field type ${JSON.stringify(fieldType)}`);
}

/**
 * Build one Schema class per TypeDef, with the given schema module (5.x API).
 * All classes are created first (so fields may reference types listed later),
 * then fields are declared in list order exactly like `@type()` / `@view()`
 * decorators would (type first, then view).
 * Returns Map<name, class>.
 */
export function buildClasses(mod, schemaDef) {
  const classes = new Map();
  for (const t of schemaDef.types) {
    if (classes.has(t.name)) throw new Error(`duplicate type ${t.name}`);
    let Parent = mod.Schema;
    if (t.extends !== undefined) {
      Parent = classes.get(t.extends);
      if (!Parent) throw new Error(`type ${t.name} extends unknown (or later-listed) type ${t.extends}`);
    }
    // Give the class its TypeDef name (helps debugging output of the library).
    const holder = { [t.name]: class extends Parent {} };
    classes.set(t.name, holder[t.name]);
  }
  for (const t of schemaDef.types) {
    const klass = classes.get(t.name);
    for (const f of t.fields ?? []) {
      const where = `${t.name}.${f.name}`;
      mod.type(toTypeDefinition(f.type, classes, where))(klass.prototype, f.name);
      if (f.view !== undefined && f.view !== false) {
        const decorate = typeof f.view === "number" ? mod.view(f.view) : mod.view();
        decorate(klass.prototype, f.name);
      }
    }
  }
  if (!classes.has(schemaDef.root)) throw new Error(`root type ${schemaDef.root} not defined`);
  return classes;
}

/** Walks a path (field names / map keys / positions) from `root`. */
export function resolvePath(mod, root, path = []) {
  let obj = root;
  const walked = [];
  for (const seg of path) {
    walked.push(seg);
    const kind = kindOf(mod, obj);
    let next;
    switch (kind) {
      case "schema": next = obj[seg]; break;
      case "map": next = obj.get(String(seg)); break;
      case "array": next = obj.at(Number(seg)); break;
      case "set":
      case "collection": {
        const entry = collectionEntries(kind, obj)[Number(seg)];
        next = entry ? entry[1] : undefined;
        break;
      }
      default:
        throw new Error(`path ${JSON.stringify(walked)}: cannot descend into a non-Schema value`);
    }
    if (next === undefined) throw new Error(`path ${JSON.stringify(walked)}: nothing there`);
    obj = next;
  }
  return obj;
}

/**
 * Replay context: { mod, classes, root, stash: Map, views: {name: StateView} }.
 * Materializes a vector value description into a JS value.
 */
export function materialize(ctx, value) {
  if (value === null) return undefined;
  if (Array.isArray(value)) throw new Error(`bare arrays are not values: ${JSON.stringify(value)}`);
  if (typeof value !== "object") return value;
  if ("$num" in value || "$bigint" in value) return jsonToPrimitive(value);
  if ("$repeat" in value) return String(value.$repeat).repeat(value.times);
  if ("$new" in value) {
    const klass = ctx.classes.get(value.$new);
    if (!klass) throw new Error(`$new of unknown type ${value.$new}`);
    const inst = new klass();
    for (const k of Object.keys(value.fields ?? {})) inst[k] = materialize(ctx, value.fields[k]);
    return inst;
  }
  if ("$map" in value) {
    const m = new ctx.mod.MapSchema();
    for (const k of Object.keys(value.$map)) m.set(k, materialize(ctx, value.$map[k]));
    return m;
  }
  if ("$array" in value) {
    const a = new ctx.mod.ArraySchema();
    for (const v of value.$array) a.push(materialize(ctx, v));
    return a;
  }
  if ("$set" in value) {
    const s = new ctx.mod.SetSchema();
    for (const v of value.$set) s.add(materialize(ctx, v));
    return s;
  }
  if ("$collection" in value) {
    const c = new ctx.mod.CollectionSchema();
    for (const v of value.$collection) c.add(materialize(ctx, v));
    return c;
  }
  if ("$path" in value) return resolvePath(ctx.mod, ctx.root, value.$path);
  if ("$stash" in value) {
    if (!ctx.stash.has(value.$stash)) throw new Error(`unknown stash ${value.$stash}`);
    return ctx.stash.get(value.$stash);
  }
  throw new Error(`unknown value ${JSON.stringify(value)}`);
}

/** Assign `initial` to a fresh root, in object-key order. */
export function applyInitial(ctx, initial = {}) {
  for (const k of Object.keys(initial)) ctx.root[k] = materialize(ctx, initial[k]);
}

function descending(a, b) {
  return a < b ? 1 : a > b ? -1 : 0;
}
function ascending(a, b) {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Apply one op (README "Ops" table). */
export function applyOp(ctx, op) {
  const target = resolvePath(ctx.mod, ctx.root, op.path ?? []);
  const vals = () => (op.values ?? []).map((v) => materialize(ctx, v));
  switch (op.op) {
    case "set": target[op.field] = materialize(ctx, op.value); break;
    case "map.set": target.set(op.key, materialize(ctx, op.value)); break;
    case "map.delete": target.delete(op.key); break;
    case "map.clear": target.clear(); break;
    case "array.push": target.push(...vals()); break;
    case "array.unshift": target.unshift(...vals()); break;
    case "array.pop": target.pop(); break;
    case "array.shift": target.shift(); break;
    case "array.clear": target.clear(); break;
    case "array.reverse": target.reverse(); break;
    case "array.splice": target.splice(op.start, op.deleteCount, ...vals()); break;
    case "array.set": target[op.index] = materialize(ctx, op.value); break;
    case "array.sort": target.sort(op.descending ? descending : ascending); break;
    case "set.add": target.add(materialize(ctx, op.value)); break;
    case "set.delete": target.delete(materialize(ctx, op.value)); break;
    case "set.clear": target.clear(); break;
    case "collection.add": target.add(materialize(ctx, op.value)); break;
    case "collection.delete": target.delete(materialize(ctx, op.value)); break;
    case "collection.clear": target.clear(); break;
    case "stash": ctx.stash.set(op.as, target); break;
    case "view.add":
    case "view.remove": {
      const view = ctx.views?.[op.view];
      if (!view) throw new Error(`${op.op}: unknown view ${op.view}`);
      const method = op.op === "view.add" ? "add" : "remove";
      if (op.tag === undefined) view[method](target);
      else view[method](target, op.tag);
      break;
    }
    default:
      throw new Error(`unknown op ${JSON.stringify(op.op)}`);
  }
}

/**
 * `{path: refId}` for every Schema/collection reachable from root (pre-order;
 * a shared instance appears under every path). `getRefId(obj)` reads the id.
 */
export function collectRefIds(mod, root, getRefId) {
  const out = {};
  const onStack = new Set();
  const walk = (obj, path) => {
    out[path.join("/")] = getRefId(obj);
    if (onStack.has(obj)) return; // cycle guard
    onStack.add(obj);
    const kind = kindOf(mod, obj);
    const children = [];
    if (kind === "schema") {
      const md = obj.constructor[Symbol.metadata];
      for (let i = 0; i < 64; i++) {
        const f = md?.[i];
        if (f === undefined) continue;
        children.push([f.name, obj[f.name]]);
      }
    } else {
      children.push(...collectionEntries(kind, obj));
    }
    for (const [k, v] of children) {
      if (kindOf(mod, v) !== null) walk(v, [...path, String(k)]);
    }
    onStack.delete(obj);
  };
  walk(root, []);
  return out;
}
