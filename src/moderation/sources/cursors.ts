// Named positions of the moderation sources (a log reader's last entry, the EventStreams
// Last-Event-ID), stored as jsonb so each source keeps whatever shape its position has.
import type { Database, Queryable } from '../../db/index.ts';

export interface SyncCursorStore {
  get(name: string): Promise<unknown>;
  /** Writes several cursors at once: either all move or none does. */
  set(values: ReadonlyMap<string, unknown> | Record<string, unknown>): Promise<void>;
}

export class PostgresSyncCursorStore implements SyncCursorStore {
  readonly #db: Database;
  readonly #clock: () => Date;

  constructor(db: Database, options: { clock?: () => Date } = {}) {
    this.#db = db;
    this.#clock = options.clock ?? (() => new Date());
  }

  /** The stored value, or undefined when the cursor was never written. */
  async get(name: string): Promise<unknown> {
    const { rows } = await this.#db.query<{ value: unknown }>('SELECT value FROM sync_cursors WHERE name = $1', [name]);
    return rows[0]?.value;
  }

  async set(values: ReadonlyMap<string, unknown> | Record<string, unknown>): Promise<void> {
    const entries = values instanceof Map ? [...values] : Object.entries(values);
    if (entries.length === 0) return;
    const now = this.#clock();
    await this.#db.transaction(async (tx) => {
      for (const [name, value] of entries) await upsert(tx, name, value, now);
    });
  }
}

function upsert(db: Queryable, name: string, value: unknown, now: Date) {
  if (value === undefined) throw new TypeError(`cursor ${name}: undefined cannot be stored (use null)`);
  return db.query(
    `INSERT INTO sync_cursors (name, value, updated_at) VALUES ($1, $2::jsonb, $3)
     ON CONFLICT (name) DO UPDATE SET value = EXCLUDED.value, updated_at = EXCLUDED.updated_at`,
    [name, JSON.stringify(value), now],
  );
}
