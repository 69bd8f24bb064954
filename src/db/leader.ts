import { hostname } from 'node:os';
import type { Database, Queryable } from './types.ts';

/** This process is not (or no longer) the leader: whatever it was about to record must not be. */
export class NotLeaderError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'NotLeaderError';
  }
}

export interface Leadership {
  /** Resolves when this process becomes the leader; rejects if stopped first. */
  readonly acquired: Promise<void>;
  /** Resolves when leadership, once held, is lost (connection gone). */
  readonly lost: Promise<Error>;
  /** This term's generation, once leader. */
  readonly generation: number | undefined;
  /**
   * Throws NotLeaderError unless this process still holds the lock (a round trip on the lock's
   * own connection, bounded in time, so a connection that went silent counts as lost) and no
   * later term has begun.
   */
  verify(): Promise<void>;
  /**
   * Inside the transaction that records an action: throws NotLeaderError when a later term has
   * begun. It holds a share lock on the term's row until the transaction ends, and a new leader
   * bumps that row before acting, so a takeover waits for a record being written, and a deposed
   * leader's next record is refused.
   */
  fence(tx: Queryable): Promise<void>;
  stop(): Promise<void>;
}

const VERIFY_TIMEOUT_MS = 5_000;

/**
 * Waits to become the leader for `name`, retrying every `retryMs` so standbys take over when
 * the leader's connection ends.
 */
export function lead(db: Database, name: string, options: { retryMs?: number; verifyTimeoutMs?: number } = {}): Leadership {
  const lock = db.leaderLock(name);
  const retryMs = options.retryMs ?? 5000;
  const verifyTimeoutMs = options.verifyTimeoutMs ?? VERIFY_TIMEOUT_MS;
  const holder = `${hostname()}:${process.pid}`;
  let stopped = false;
  let generation: number | undefined;
  let timer: NodeJS.Timeout | undefined;
  let wake: () => void = () => {};

  const acquired = (async () => {
    while (!stopped) {
      // A database that is down now may be back at the next try; standbys keep trying.
      if (await lock.tryAcquire().catch(() => false)) {
        try {
          generation = await beginTerm(db, name, holder);
          return;
        } catch {
          await lock.release().catch(() => {});
        }
      }
      await new Promise<void>((resolve) => {
        wake = resolve;
        timer = setTimeout(resolve, retryMs);
      });
    }
    throw new Error('stopped before becoming leader');
  })();
  acquired.catch(() => {});

  async function current(q: Queryable, lockRow: boolean): Promise<number | undefined> {
    const { rows } = await q.query<{ generation: number }>(`SELECT generation FROM leader_terms WHERE name = $1${lockRow ? ' FOR SHARE' : ''}`, [name]);
    return rows[0]?.generation;
  }

  return {
    acquired,
    lost: lock.lost,
    get generation() {
      return generation;
    },
    async verify() {
      if (generation === undefined) throw new NotLeaderError(`not the leader for ${name}`);
      try {
        await lock.ping(verifyTimeoutMs);
      } catch (error) {
        throw new NotLeaderError(`the connection holding the leader lock for ${name} did not answer: ${(error as Error).message}`, { cause: error });
      }
      const now = await current(db, false);
      if (now !== generation) throw new NotLeaderError(`another worker leads ${name} now (term ${now}, ours was ${generation})`);
    },
    async fence(tx) {
      const now = generation === undefined ? undefined : await current(tx, true);
      if (now === undefined || now !== generation) throw new NotLeaderError(`another worker leads ${name} now (term ${now}, ours was ${generation}): not recording`);
    },
    async stop() {
      stopped = true;
      clearTimeout(timer);
      wake();
      await acquired.catch(() => {});
      await lock.release();
    },
  };
}

/** Starts a new term: its generation is one more than the last. */
async function beginTerm(db: Queryable, name: string, holder: string): Promise<number> {
  const { rows } = await db.query<{ generation: number }>(
    `INSERT INTO leader_terms (name, generation, holder, acquired_at) VALUES ($1, 1, $2, now())
     ON CONFLICT (name) DO UPDATE SET generation = leader_terms.generation + 1, holder = $2, acquired_at = now()
     RETURNING generation`,
    [name, holder],
  );
  return rows[0]!.generation;
}
