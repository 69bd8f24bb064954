// Small helpers the sync benchmarks share: statistics, memory sampling, bounded concurrency, the
// homeserver calls that arrange rooms, and synthetic wiki users.
import type { WikiBlock } from '../../src/wiki/action-api-results.ts';
import type { WikiUserState } from '../../src/moderation/types.ts';
import type { Synapse } from '../../test/support/synapse.ts';

/** Nearest-rank percentile (p in 0..100) of a non-empty list. */
export function percentile(values: readonly number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.max(1, Math.ceil((p / 100) * sorted.length));
  return sorted[Math.min(rank, sorted.length) - 1]!;
}

export const ms = (n: number) => `${Math.round(n)} ms`;
export const mib = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(0)} MiB`;

/** The highest heap and RSS seen while `work` runs, sampled every 20 ms (between its awaits). */
export async function withMemoryPeak<T>(work: () => Promise<T>): Promise<{ value: T; heapBefore: number; heapPeak: number; rssPeak: number }> {
  const heapBefore = process.memoryUsage().heapUsed;
  let heapPeak = 0;
  let rssPeak = 0;
  const sample = () => {
    const { heapUsed, rss } = process.memoryUsage();
    heapPeak = Math.max(heapPeak, heapUsed);
    rssPeak = Math.max(rssPeak, rss);
  };
  sample();
  const timer = setInterval(sample, 20);
  try {
    const value = await work();
    sample();
    return { value, heapBefore, heapPeak, rssPeak };
  } finally {
    clearInterval(timer);
  }
}

export async function eachBounded<T>(items: readonly T[], limit: number, work: (item: T, index: number) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      await work(items[i]!, i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

/**
 * What to undo, newest first. A part of the run takes a child scope, undone when the part ends,
 * and also by its parent when the whole run is stopped midway (Ctrl-C, out of time): the wiki's
 * PHP server runs in its own process group and would otherwise outlive us.
 */
export class Cleanups {
  readonly #list: (() => Promise<void>)[] = [];
  readonly #report: (line: string) => void;
  #done: Promise<void> = Promise.resolve();

  constructor(report: (line: string) => void) {
    this.#report = report;
  }

  add(cleanup: () => Promise<void>): void {
    this.#list.push(cleanup);
  }

  child(): Cleanups {
    const child = new Cleanups(this.#report);
    this.add(() => child.run());
    return child;
  }

  /** Runs each cleanup once. A second call (Ctrl-C during the first) resolves when both are done. */
  run(): Promise<void> {
    const list = this.#list.splice(0).reverse();
    this.#done = this.#done.then(async () => {
      for (const cleanup of list) await cleanup().catch((error) => this.#report(`cleanup failed: ${error}`));
    });
    return this.#done;
  }
}

/** Throws when the benchmark's time is up, so a stuck step ends the run instead of hanging it. */
export function checkDeadline(deadline: number, what: string): void {
  if (Date.now() > deadline) throw new Error(`out of time while ${what}`);
}

// ---------------------------------------------------------------------------------------------
// Arranging a real homeserver (test-only calls, made with the admin's or a user's token)

export async function matrixCall(synapse: Synapse, token: string, method: string, path: string, body?: unknown): Promise<any> {
  const response = await fetch(`${synapse.baseUrl}/_matrix/client/v3${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(30_000),
  });
  const text = await response.text();
  if (!response.ok) throw new Error(`${method} ${path} → ${response.status}: ${text.slice(0, 300)}`);
  return text ? JSON.parse(text) : {};
}

/** Public rooms made by the admin (the bot), each with these users joined. */
export async function createRoomsWithMembers(synapse: Synapse, count: number, members: readonly { accessToken: string }[], name: string): Promise<string[]> {
  const rooms: string[] = [];
  await eachBounded(Array.from({ length: count }, (_, i) => i), 4, async (i) => {
    const { room_id } = await matrixCall(synapse, synapse.adminToken, 'POST', '/createRoom', { preset: 'public_chat', room_version: '11', name: `${name} ${i}` });
    rooms[i] = room_id;
  });
  const joins = rooms.flatMap((roomId) => members.map((m) => ({ roomId, token: m.accessToken })));
  await eachBounded(joins, 16, ({ roomId, token }) => matrixCall(synapse, token, 'POST', `/join/${encodeURIComponent(roomId)}`, {}));
  return rooms;
}

// ---------------------------------------------------------------------------------------------
// Synthetic wiki state

export function blockOf(username: string, id: number): WikiBlock {
  return {
    id, user: username, userId: id, by: 'Admin', timestamp: new Date('2030-01-01T00:00:00Z'), expiry: null, reason: 'Benchmark block',
    sitewide: true, restrictions: { pages: [], namespaces: [], actions: [] },
    anonOnly: false, noCreate: false, autoblock: false, noEmail: false, allowUserTalk: true, hidden: false,
  };
}

/** `count` users named `<prefix>NNNNN`; the first `sysops` are sysops, the next `blocked` are blocked. */
export function syntheticUsers(wiki: string, prefix: string, count: number, sysops: number, blocked: number): WikiUserState[] {
  return Array.from({ length: count }, (_, i) => {
    const username = `${prefix}${String(i).padStart(5, '0')}`;
    return {
      account: { wiki, centralId: String(i + 1), username, localpart: username.toLowerCase() },
      blocks: i >= sysops && i < sysops + blocked ? [blockOf(username, i + 1)] : [],
      globalBlocks: [],
      lock: null,
      groups: i < sysops ? ['sysop'] : [],
      globalGroups: [],
    };
  });
}
