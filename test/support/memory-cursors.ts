// Sync cursors in memory, for tests about reading the wiki rather than storing where it stopped.
import type { SyncCursorStore } from '../../src/moderation/sources/cursors.ts';

export class MemoryCursors implements SyncCursorStore {
  readonly values = new Map<string, unknown>();
  async get(name: string) {
    return structuredClone(this.values.get(name));
  }
  async set(values: ReadonlyMap<string, unknown> | Record<string, unknown>) {
    for (const [k, v] of values instanceof Map ? values : Object.entries(values)) this.values.set(k, structuredClone(v));
  }
}
