import type { Database } from './index.ts';

export interface Leadership {
  /** Resolves when this process becomes the leader; rejects if stopped first. */
  readonly acquired: Promise<void>;
  /** Resolves when leadership, once held, is lost (connection gone). */
  readonly lost: Promise<Error>;
  stop(): Promise<void>;
}

/**
 * Waits to become the leader for `name`, retrying every `retryMs` so standbys take over when
 * the leader's connection ends.
 */
export function lead(db: Database, name: string, options: { retryMs?: number; signal?: AbortSignal } = {}): Leadership {
  const lock = db.leaderLock(name);
  const retryMs = options.retryMs ?? 5000;
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let wake: () => void = () => {};

  const acquired = (async () => {
    while (!stopped) {
      // A database that is down now may be back at the next try; standbys keep trying.
      if (await lock.tryAcquire().catch(() => false)) return;
      await new Promise<void>((resolve) => {
        wake = resolve;
        timer = setTimeout(resolve, retryMs);
      });
    }
    throw new Error('stopped before becoming leader');
  })();
  acquired.catch(() => {});

  return {
    acquired,
    lost: lock.lost,
    async stop() {
      stopped = true;
      clearTimeout(timer);
      wake();
      await acquired.catch(() => {});
      await lock.release();
    },
  };
}
