// The privacy work of the worker's leader, one turn at a time: the rest of every forget (cheap:
// usually nothing is pending) at each turn, and the retention purge once an hour. The leader runs
// a turn every few seconds while it mirrors moderation, and every minute when mirroring is off;
// on the embedded database `serve` runs the worker, so the purge runs there too.
import type { Config } from '../config/load.ts';
import type { Database } from '../db/index.ts';
import type { Logger } from '../log.ts';
import { settleForgotten } from './forgotten.ts';
import { purgeExpiredPersonalData } from './retention.ts';

/** How often the retention purge runs; the first turn of a leader term runs it at once. */
export const RETENTION_PURGE_INTERVAL_MS = 60 * 60_000;

const RETRY_MS = 60_000;

export interface PrivacyHousekeeping {
  /** One turn: throws when a step failed (the next turn tries again). */
  run(): Promise<void>;
}

export function privacyHousekeeping(deps: { db: Database; config: Config; log: Logger; clock?: () => Date; purgeIntervalMs?: number }): PrivacyHousekeeping {
  const log = deps.log.child({ component: 'privacy' });
  const clock = deps.clock ?? (() => new Date());
  const interval = deps.purgeIntervalMs ?? RETENTION_PURGE_INTERVAL_MS;
  let nextPurge = 0;
  return {
    async run() {
      const settled = await settleForgotten(deps.db, deps.config);
      if (settled.reKeyed > 0 || settled.settled.length > 0 || settled.reclaimed.length > 0) {
        // Counts only: the Matrix IDs are what is being forgotten.
        log.info({ reKeyed: settled.reKeyed, settled: settled.settled.length, reclaimed: settled.reclaimed.length }, 'finished forgetting: privileges taken back, their audit entries re-keyed');
      }
      const now = clock();
      if (now.getTime() < nextPurge) return;
      // A purge that fails (the database away) is tried again a minute later, not at every turn.
      nextPurge = now.getTime() + Math.min(interval, RETRY_MS);
      const purged = await purgeExpiredPersonalData(deps.db, { days: deps.config.retention.days, now });
      nextPurge = now.getTime() + interval;
      log.info({ ...purged, days: deps.config.retention.days }, 'retention purge: removed personal data older than retention.days');
    },
  };
}
