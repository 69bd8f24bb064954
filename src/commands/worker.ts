import type { Config } from '../config/load.ts';
import { lead } from '../db/leader.ts';
import type { Logger } from '../log.ts';
import { openMigratedDatabase } from './common.ts';

export const WORKER_LOCK = 'wiki-matrix-sso:worker';

export interface Worker {
  /** Resolves once this process is the leader. */
  leading: Promise<void>;
  stop(): Promise<void>;
}

export async function startWorker(config: Config, log: Logger): Promise<Worker> {
  const db = await openMigratedDatabase(config, log);
  const leadership = lead(db, WORKER_LOCK);
  log.info('waiting to become the leader (another worker may hold the lock)');
  const leading = leadership.acquired.then(() => {
    log.info('leader: no moderation sources are configured yet, so there is nothing to do');
  });
  leading.catch(() => {});
  void leadership.lost.then((error) => log.error({ err: error }, 'lost leadership: the database connection ended'));
  return {
    leading,
    async stop() {
      await leadership.stop();
      await db.close();
      log.info('stopped');
    },
  };
}
