// The jest environment of every tier: jest's Node environment, with the values Node's own globals
// hand to a test made in the test's realm, as they are under plain Node.
//
// Jest runs each test file in a fresh vm context, whose Object, Array, Error and JSON are not the
// ones Node's globals (fetch, Response, structuredClone) were made with. Without this, a fetched
// JSON body or a structured clone fails node:assert's deepStrictEqual against a literal (another
// prototype), and code under test misreads the errors fetch throws (`error instanceof Error` is
// false for a fetch timeout): the service would behave differently under jest than in production.
// Node's core modules hand out their values too (readdirSync's array, a child's output), so
// node:assert's deep comparisons bring both sides into the test's realm before comparing, as if
// there were one realm, as under plain Node.
import assert from 'node:assert';
import { runInContext, type Context } from 'node:vm';
import { TestEnvironment } from 'jest-environment-node';

/** Copies what a structured clone can hold into the realm it is compiled in (see below). */
const REALM_COPY = String.raw`(function realmCopy(value, seen = new Map()) {
  if (value === null || typeof value !== 'object') return value;
  if (seen.has(value)) return seen.get(value);
  const tag = Object.prototype.toString.call(value);
  const proto = Object.getPrototypeOf(value);
  let copy;
  if (tag === '[object Array]') {
    copy = new Array(value.length);
    seen.set(value, copy);
    for (const key of Object.keys(value)) copy[key] = realmCopy(value[key], seen);
  } else if (tag === '[object Date]') {
    copy = new Date(value.getTime());
  } else if (tag === '[object RegExp]') {
    copy = new RegExp(value.source, value.flags);
  } else if (tag === '[object Map]') {
    copy = new Map();
    seen.set(value, copy);
    for (const [k, v] of value) copy.set(realmCopy(k, seen), realmCopy(v, seen));
  } else if (tag === '[object Set]') {
    copy = new Set();
    seen.set(value, copy);
    for (const v of value) copy.add(realmCopy(v, seen));
  } else if (tag === '[object Error]' || tag === '[object DOMException]') {
    const Kind = typeof globalThis[value.name] === 'function' && globalThis[value.name].prototype instanceof Error ? globalThis[value.name] : Error;
    copy = new Kind(value.message);
    seen.set(value, copy);
    for (const key of Object.getOwnPropertyNames(value)) {
      if (key === 'message') continue;
      const d = Object.getOwnPropertyDescriptor(value, key);
      if ('value' in d) d.value = realmCopy(d.value, seen);
      Object.defineProperty(copy, key, d);
    }
    if (copy.name !== value.name) Object.defineProperty(copy, 'name', { value: value.name, configurable: true, writable: true });
    if (value.code !== undefined && copy.code === undefined) copy.code = value.code;
    return copy;
  } else if (tag === '[object Object]' && (proto === null || (proto !== Object.prototype && proto.constructor?.name === 'Object' && Object.getPrototypeOf(proto) === null))) {
    copy = proto === null ? Object.create(null) : {};
    seen.set(value, copy);
    for (const key of Object.keys(value)) copy[key] = realmCopy(value[key], seen);
  } else {
    return value;
  }
  seen.set(value, copy);
  return copy;
})`;

/** node:assert's deep comparisons, which check prototypes (`assert.strict` has its own names). */
const DEEP_COMPARISONS: Array<[object, string[]]> = [
  [assert, ['deepStrictEqual', 'notDeepStrictEqual', 'partialDeepStrictEqual']],
  [assert.strict, ['deepEqual', 'notDeepEqual', 'deepStrictEqual', 'notDeepStrictEqual', 'partialDeepStrictEqual']],
];

type Comparison = (actual: unknown, expected: unknown, message?: string | Error) => void;

type Body = { prototype: { json(): Promise<unknown>; text(): Promise<string> } };

export default class NodeRealmEnvironment extends TestEnvironment {
  #restore: Array<() => void> = [];

  override async setup(): Promise<void> {
    await super.setup();
    const context = this.getVmContext() as Context;
    const realmCopy = runInContext(REALM_COPY, context) as <T>(value: T) => T;
    const parse = runInContext('JSON.parse', context) as typeof JSON.parse;
    const global = this.global as unknown as typeof globalThis;

    const clone = globalThis.structuredClone;
    global.structuredClone = ((value: unknown, options?: Parameters<typeof structuredClone>[1]) => realmCopy(clone(value, options))) as typeof structuredClone;

    const fetch = globalThis.fetch;
    global.fetch = ((...args: Parameters<typeof globalThis.fetch>) =>
      fetch(...args).catch((error: unknown) => {
        throw realmCopy(error);
      })) as typeof globalThis.fetch;

    // fetch's dispatcher lives on the global under undici's registered symbols, which jest does not
    // carry over; oidc-provider looks for it there to keep its outgoing requests off special-use
    // addresses (SSRF), and warns and goes without that check when it is missing.
    for (const name of ['undici.globalDispatcher.1', 'undici.globalDispatcher.2']) {
      const key = Symbol.for(name);
      const host = globalThis as unknown as Record<symbol, unknown>;
      Object.defineProperty(global, key, { configurable: true, get: () => host[key], set: (value: unknown) => void (host[key] = value) });
    }

    // Response and Request are Node's own classes, shared by every test file of this worker; one
    // file runs at a time in it, so their json() parses into that file's realm while it runs.
    for (const Kind of [globalThis.Response, globalThis.Request] as unknown as Body[]) {
      const original = Kind.prototype.json;
      Kind.prototype.json = async function json(this: { text(): Promise<string> }) {
        return parse(await this.text());
      };
      this.#restore.push(() => (Kind.prototype.json = original));
    }

    // node:assert is shared by the worker in the same way.
    for (const [owner, names] of DEEP_COMPARISONS) {
      const functions = owner as Record<string, Comparison | undefined>;
      for (const name of names) {
        const original = functions[name];
        if (!original) continue;
        const comparison: Comparison = function (actual, expected, message) {
          try {
            original(realmCopy(actual), realmCopy(expected), message);
          } catch (error) {
            // The failure points at the test's line, not at this wrapper.
            if (error instanceof Error) Error.captureStackTrace(error, comparison);
            throw error;
          }
        };
        functions[name] = comparison;
        this.#restore.push(() => (functions[name] = original));
      }
    }
  }

  override async teardown(): Promise<void> {
    for (const restore of this.#restore.splice(0)) restore();
    await super.teardown();
  }
}
