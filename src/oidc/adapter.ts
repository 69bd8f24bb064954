// oidc-provider's storage: every model (sessions, grants, interactions, codes, tokens…) as one
// jsonb row in `oidc_payloads`, keyed by (model, id). Serve processes share nothing else, so any
// of them can continue a flow another one started.
import type { Adapter, AdapterConstructor, AdapterPayload } from 'oidc-provider';
import type { Database, Queryable } from '../db/index.ts';
import type { Logger } from '../log.ts';

type Clock = () => Date;

const epochSeconds = (date: Date) => Math.floor(date.getTime() / 1000);

/** A row reads as absent from the moment it expires, whether or not the purge has run yet. */
const LIVE = '(expires_at IS NULL OR expires_at > $3)';

async function findOne(db: Queryable, where: string, params: [string, string, Date]): Promise<AdapterPayload | undefined> {
  const { rows } = await db.query<{ payload: AdapterPayload }>(`SELECT payload FROM oidc_payloads WHERE ${where} AND ${LIVE}`, params);
  return rows[0]?.payload;
}

/**
 * The `adapter` option of oidc-provider: a class constructed once per model name. `clock`
 * decides expiry and consumption times (tests move it; oidc-provider itself uses Date.now()).
 */
export function adapterFactory(db: Database, clock: Clock = () => new Date()): AdapterConstructor {
  return class PostgresAdapter implements Adapter {
    readonly model: string;

    constructor(model: string) {
      this.model = model;
    }

    async upsert(id: string, payload: AdapterPayload, expiresIn?: number): Promise<void> {
      const now = clock();
      const expiresAt = typeof expiresIn === 'number' ? new Date(now.getTime() + expiresIn * 1000) : null;
      const consumedAt = typeof payload.consumed === 'number' ? new Date(payload.consumed * 1000) : null;
      await db.query(
        `INSERT INTO oidc_payloads (model, id, payload, grant_id, user_code, uid, expires_at, consumed_at)
         VALUES ($1, $2, $3::jsonb, $4, $5, $6, $7, $8)
         ON CONFLICT (model, id) DO UPDATE SET
           payload = excluded.payload, grant_id = excluded.grant_id, user_code = excluded.user_code,
           uid = excluded.uid, expires_at = excluded.expires_at, consumed_at = excluded.consumed_at`,
        [this.model, id, JSON.stringify(payload), payload.grantId ?? null, payload.userCode ?? null, payload.uid ?? null, expiresAt, consumedAt],
      );
    }

    find(id: string): Promise<AdapterPayload | undefined> {
      return findOne(db, 'model = $1 AND id = $2', [this.model, id, clock()]);
    }

    findByUid(uid: string): Promise<AdapterPayload | undefined> {
      return findOne(db, 'model = $1 AND uid = $2', [this.model, uid, clock()]);
    }

    findByUserCode(userCode: string): Promise<AdapterPayload | undefined> {
      return findOne(db, 'model = $1 AND user_code = $2', [this.model, userCode, clock()]);
    }

    /** oidc-provider detects replays (a code or refresh token used twice) by `payload.consumed`. */
    async consume(id: string): Promise<void> {
      const now = clock();
      await db.query(
        `UPDATE oidc_payloads SET consumed_at = $3, payload = payload || jsonb_build_object('consumed', $4::bigint)
         WHERE model = $1 AND id = $2`,
        [this.model, id, now, epochSeconds(now)],
      );
    }

    async destroy(id: string): Promise<void> {
      await db.query('DELETE FROM oidc_payloads WHERE model = $1 AND id = $2', [this.model, id]);
    }

    /** Every model: a revoked grant takes its codes, tokens and pending interactions with it. */
    async revokeByGrantId(grantId: string): Promise<void> {
      await db.query('DELETE FROM oidc_payloads WHERE grant_id = $1', [grantId]);
    }
  };
}

/** Deletes expired rows; returns how many. Expired rows are already invisible, so this only reclaims space. */
/** Deletes everything issued to an account (sessions, grants, codes, tokens); says how many. */
export async function revokeAccount(db: Queryable, accountId: string): Promise<number> {
  const { rowCount } = await db.query("DELETE FROM oidc_payloads WHERE payload->>'accountId' = $1", [accountId]);
  return rowCount;
}

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
