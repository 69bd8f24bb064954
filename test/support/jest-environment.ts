// The jest environment of every tier: jest's Node environment, with the values Node's own globals
// hand to a test made in the test's realm, as they are under plain Node.
//
// Jest runs each test file in a fresh vm context, whose Object, Array, Error and JSON are not the
// ones Node's globals (fetch, Response, structuredClone) were made with. Without this, a fetched
// JSON body or a structured clone fails node:assert's deepStrictEqual against a literal (another
// prototype), and code under test misreads the errors fetch throws (`error instanceof Error` is
// false for a fetch timeout): the service would behave differently under jest than in production.
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

    // Response and Request are Node's own classes, shared by every test file of this worker; one
    // file runs at a time in it, so their json() parses into that file's realm while it runs.
    for (const Kind of [globalThis.Response, globalThis.Request] as unknown as Body[]) {
      const original = Kind.prototype.json;
      Kind.prototype.json = async function json(this: { text(): Promise<string> }) {
        return parse(await this.text());
      };
      this.#restore.push(() => (Kind.prototype.json = original));
    }
  }

  override async teardown(): Promise<void> {
    for (const restore of this.#restore.splice(0)) restore();
    await super.teardown();
  }
}
