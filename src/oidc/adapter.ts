// oidc-provider's storage: every model (sessions, grants, interactions, codes, tokens…) as one
// jsonb row in `oidc_payloads`, keyed by (model, id). Serve processes share nothing else, so any
// of them can continue a flow another one started.
import { errors, type Adapter, type AdapterConstructor, type AdapterPayload } from 'oidc-provider';
import type { Database, Queryable } from '../db/index.ts';
import type { Logger } from '../log.ts';

type Clock = () => Date;

const epochSeconds = (date: Date) => Math.floor(date.getTime() / 1000);

const BY_ID = 'model = $1 AND id = $2';
/** A row reads as absent from the moment it expires, whether or not the purge has run yet. */
const LIVE = '(expires_at IS NULL OR expires_at > $3)';

async function findOne(db: Queryable, where: string, params: [string, string, Date]): Promise<{ id: string; payload: AdapterPayload; expiresAt: Date | null } | undefined> {
  const { rows } = await db.query<{ id: string; payload: AdapterPayload; expires_at: Date | null }>(`SELECT id, payload, expires_at FROM oidc_payloads WHERE ${where} AND ${LIVE}`, params);
  const row = rows[0];
  return row && { id: row.id, payload: row.payload, expiresAt: row.expires_at };
}

/** Models oidc-provider saves again as they are: a session at every request that carries it, a grant, an interaction. */
const RESAVED = new Set(['Session', 'Grant', 'Interaction']);
const RECENT_ENTRIES = 1000;
/** A remembered payload is trusted this long: oidc-provider reads a session and saves it within one request. */
const RECENT_MS = 30_000;

/** Whether two JSON values are the same, whatever the order of their keys (jsonb reorders them). */
function sameJson(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  const keysA = Object.keys(a).filter((k) => (a as Record<string, unknown>)[k] !== undefined);
  const keysB = Object.keys(b).filter((k) => (b as Record<string, unknown>)[k] !== undefined);
  if (keysA.length !== keysB.length) return false;
  return keysA.every((k) => sameJson((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]));
}

/**
 * What this process last read or wrote of the models saved again unchanged, so that such a save
 * can be skipped. Skipping is safe against other processes: the write being skipped would only
 * repeat what this process read moments ago, so it is as though it had happened then, before
 * whatever another process wrote (or deleted) since. A rolling expiry moved by at most a minute
 * (and 1 % of the lifetime) counts as unchanged: the row then lapses that much earlier.
 */
class RecentPayloads {
  readonly #entries = new Map<string, { payload: AdapterPayload; expiresAt: number | null; at: number }>();

  remember(key: string, payload: AdapterPayload, expiresAt: Date | null): void {
    this.#entries.delete(key);
    this.#entries.set(key, { payload, expiresAt: expiresAt?.getTime() ?? null, at: Date.now() });
    if (this.#entries.size > RECENT_ENTRIES) this.#entries.delete(this.#entries.keys().next().value!);
  }

  forget(key: string): void {
    this.#entries.delete(key);
  }

  forgetGrant(grantId: string): void {
    for (const [key, entry] of this.#entries) if (entry.payload.grantId === grantId) this.#entries.delete(key);
  }

  unchanged(key: string, payload: AdapterPayload, expiresAt: Date | null, expiresIn: number | undefined): boolean {
    const entry = this.#entries.get(key);
    if (!entry || Date.now() - entry.at > RECENT_MS) return false;
    if ((entry.expiresAt === null) !== (expiresAt === null)) return false;
    if (expiresAt !== null) {
      const tolerance = Math.min(60_000, (expiresIn ?? 0) * 10);
      if (Math.abs(expiresAt.getTime() - entry.expiresAt!) > tolerance) return false;
    }
    const { exp: _exp, ...rest } = payload;
    const { exp: _stored, ...stored } = entry.payload;
    return sameJson(rest, stored);
  }
}

/**
 * The `adapter` option of oidc-provider: a class constructed once per model name. `clock`
 * decides expiry and consumption times (tests move it; oidc-provider itself uses Date.now()).
 */
export function adapterFactory(db: Database, clock: Clock = () => new Date()): AdapterConstructor {
  const recent = new RecentPayloads();
  return class PostgresAdapter implements Adapter {
    readonly model: string;
    readonly #resaved: boolean;

    constructor(model: string) {
      this.model = model;
      this.#resaved = RESAVED.has(model);
    }

    async upsert(id: string, payload: AdapterPayload, expiresIn?: number): Promise<void> {
      const now = clock();
      const expiresAt = typeof expiresIn === 'number' ? new Date(now.getTime() + expiresIn * 1000) : null;
      const key = `${this.model}:${id}`;
      if (this.#resaved && recent.unchanged(key, payload, expiresAt, expiresIn)) return;
      const consumedAt = typeof payload.consumed === 'number' ? new Date(payload.consumed * 1000) : null;
      // Nothing of oidc-provider reads the answer: within a step this leaves with the step's next
      // statement or its commit, and a failure fails the step.
      const forget = this.#resaved ? () => recent.forget(key) : undefined;
      await db.write(
        `INSERT INTO oidc_payloads (model, id, payload, grant_id, user_code, uid, expires_at, consumed_at)
         VALUES ($1, $2, $3::jsonb, $4, $5, $6, $7, $8)
         ON CONFLICT (model, id) DO UPDATE SET
           payload = excluded.payload, grant_id = excluded.grant_id, user_code = excluded.user_code,
           uid = excluded.uid, expires_at = excluded.expires_at, consumed_at = excluded.consumed_at`,
        [this.model, id, JSON.stringify(payload), payload.grantId ?? null, payload.userCode ?? null, payload.uid ?? null, expiresAt, consumedAt],
        forget,
      );
      if (this.#resaved) recent.remember(key, payload, expiresAt);
    }

    async #find(where: string, value: string): Promise<AdapterPayload | undefined> {
      const found = await findOne(db, where, [this.model, value, clock()]);
      if (this.#resaved) {
        if (found) recent.remember(`${this.model}:${found.id}`, found.payload, found.expiresAt);
        else if (where === BY_ID) recent.forget(`${this.model}:${value}`);
      }
      return found?.payload;
    }

    find(id: string): Promise<AdapterPayload | undefined> {
      return this.#find(BY_ID, id);
    }

    findByUid(uid: string): Promise<AdapterPayload | undefined> {
      return this.#find('model = $1 AND uid = $2', uid);
    }

    findByUserCode(userCode: string): Promise<AdapterPayload | undefined> {
      return this.#find('model = $1 AND user_code = $2', userCode);
    }

    /**
     * oidc-provider detects replays (a code or refresh token used twice) by `payload.consumed`.
     * Two requests presenting the same code at once would both find it unconsumed; the condition
     * here lets only the first consume it, and the other is refused as a replay.
     */
    async consume(id: string): Promise<void> {
      const now = clock();
      const { rowCount } = await db.query(
        `UPDATE oidc_payloads SET consumed_at = $3, payload = payload || jsonb_build_object('consumed', $4::bigint)
         WHERE model = $1 AND id = $2 AND consumed_at IS NULL`,
        [this.model, id, now, epochSeconds(now)],
      );
      if (rowCount === 0) throw new errors.InvalidGrant(`${this.model === 'AuthorizationCode' ? 'authorization code' : 'grant'} already used`);
    }

    async destroy(id: string): Promise<void> {
      if (this.#resaved) recent.forget(`${this.model}:${id}`);
      await db.write('DELETE FROM oidc_payloads WHERE model = $1 AND id = $2', [this.model, id]);
    }

    /** Every model: a revoked grant takes its codes, tokens and pending interactions with it. */
    async revokeByGrantId(grantId: string): Promise<void> {
      recent.forgetGrant(grantId);
      await db.query('DELETE FROM oidc_payloads WHERE grant_id = $1', [grantId]);
    }
  };
}

/** Deletes everything issued to an account (sessions, grants, codes, tokens); says how many. */
export async function revokeAccount(db: Queryable, accountId: string): Promise<number> {
  const { rowCount } = await db.query("DELETE FROM oidc_payloads WHERE payload->>'accountId' = $1", [accountId]);
  return rowCount;
}

/** Deletes expired rows; returns how many. Expired rows are already invisible, so this only reclaims space. */
export async function purgeExpired(db: Queryable, clock: Clock = () => new Date()): Promise<number> {
  const { rowCount } = await db.query('DELETE FROM oidc_payloads WHERE expires_at <= $1', [clock()]);
  return rowCount;
}

export interface PurgeJobOptions {
  intervalMs: number;
  log: Pick<Logger, 'debug' | 'error'>;
  clock?: Clock;
}

export interface PurgeJob {
  /** Stops the timer and waits for a purge in progress. */
  stop(): Promise<void>;
}

/**
 * Purges every `intervalMs` (the first run after one interval). Runs never overlap, a failure is
 * logged and retried at the next interval, and the timer never keeps the process alive.
 */
export function startPurgeJob(db: Queryable, options: PurgeJobOptions): PurgeJob {
  const { intervalMs, log, clock } = options;
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> = Promise.resolve();

  const run = async () => {
    try {
      const deleted = await purgeExpired(db, clock);
      if (deleted > 0) log.debug({ deleted }, 'purged expired OpenID Connect records');
    } catch (error) {
      log.error({ err: error }, 'purging expired OpenID Connect records failed; retrying at the next interval');
    }
  };
  const schedule = () => {
    if (stopped) return;
    timer = setTimeout(() => {
      running = run().then(schedule);
    }, intervalMs);
    timer.unref();
  };
  schedule();

  return {
    async stop() {
      stopped = true;
      clearTimeout(timer);
      await running;
    },
  };
}
