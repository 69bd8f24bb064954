// The worker's part that does not mirror moderation: leadership and the privacy work (retention
// purge, finishing forgets). A module of its own so that `serve` on the embedded database, which
// always runs it, does not load matrix-js-sdk when mirroring is off.
import type { Database } from '../db/index.ts';
import { lead } from '../db/leader.ts';
import type { Logger } from '../log.ts';
import type { ModerationWorker } from '../moderation/worker.ts';
import { WORKER_LOCK } from '../moderation/worker-lock.ts';
import type { PrivacyHousekeeping } from '../privacy/housekeeping.ts';

export interface Worker {
  /** Resolves once this process is the leader. */
  leading: Promise<void>;
  /** The moderation loop, when `sync.enabled`. */
  moderation: ModerationWorker | undefined;
  stop(): Promise<void>;
}

/** How often a leader that does not mirror moderation runs the privacy work. */
const IDLE_HOUSEKEEPING_MS = 60_000;

export function startIdle(log: Logger, db: Database, privacy: PrivacyHousekeeping): Worker {
  const leadership = lead(db, WORKER_LOCK);
  log.info('waiting to become the leader (another worker may hold the lock)');
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let turn: Promise<void> = Promise.resolve();
  const housekeeping = () => {
    if (stopped) return;
    turn = privacy.run().catch((error) => log.warn({ err: error }, 'housekeeping failed; it is tried again shortly')).then(() => {
      if (!stopped) (timer = setTimeout(housekeeping, IDLE_HOUSEKEEPING_MS)).unref();
    });
  };
  const leading = leadership.acquired.then(() => {
    log.info('leader: moderation mirroring is off (sync.enabled is false); only the retention purge runs');
    housekeeping();
  });
  leading.catch(() => {});
  void leadership.lost.then((error) => {
    stopped = true;
    clearTimeout(timer);
    log.error({ err: error }, 'lost leadership: the database connection ended');
  });
  return {
    leading,
    moderation: undefined,
    async stop() {
      stopped = true;
      clearTimeout(timer);
      await turn;
      await leadership.stop();
    },
  };
}
