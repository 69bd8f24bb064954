// `sync`: one full moderation pass from the command line. With --dry-run (or `sync.dry_run`) it
// prints what a pass would do and changes nothing, not even the audit log; otherwise it takes the
// worker's leader lock (so it never races a running worker), runs the pass and prints the outcome.
import type { Config } from '../config/load.ts';
import type { Logger } from '../log.ts';
import { ModerationExecutor, type PassResult, type Plan } from '../moderation/executor.ts';
import { describeAction } from '../moderation/describe.ts';
import { endAccountSessions } from '../oidc/logout.ts';
import { DatabaseError } from '../db/index.ts';
import { openMigratedDatabase } from './common.ts';
import { AdminApiClient, syncThroughService } from './remote.ts';
import { matrixGatewayFrom, wikiSources, WORKER_LOCK, type WorkerDeps } from './worker.ts';

export interface SyncOptions {
  config: Config;
  log: Logger;
  /** Plan only. A pass is a dry run also when `sync.dry_run` is on. */
  dryRun: boolean;
  deps?: WorkerDeps;
  out?: NodeJS.WritableStream;
}

export class WorkerRunningError extends Error {
  constructor() {
    super('a worker holds the leader lock and runs passes itself: stop it first, use --dry-run, or set admin.token so that sync asks the running service to run the pass');
    this.name = 'WorkerRunningError';
  }
}

/** Runs one full pass; returns the exit code (0: done, 1: some actions failed or were refused). */
export async function runSync(options: SyncOptions): Promise<number> {
  const { config, log } = options;
  const out = options.out ?? process.stdout;
  const dryRun = options.dryRun || config.sync.dry_run;
  // A running serve holds the embedded database: its worker makes (and applies) the plan.
  const db = await openMigratedDatabase(config, log).catch((error: unknown) => {
    if (error instanceof DatabaseError && error.code === 'in_use' && !options.deps) return new AdminApiClient(config, error.message);
    throw error;
  });
  if (db instanceof AdminApiClient) return syncThroughService(db, dryRun, out);
  const lock = dryRun ? undefined : db.leaderLock(WORKER_LOCK);
  try {
    if (lock && !(await lock.tryAcquire())) {
      // A worker leads: with a token it is asked to run the pass, otherwise it has to be stopped.
      if (!config.admin.token || options.deps) throw new WorkerRunningError();
      return await syncThroughService(new AdminApiClient(config, 'a worker holds the leader lock'), dryRun, out);
    }
    const context = { config, db, log };
    const gateway = (options.deps?.gateway ?? ((c) => matrixGatewayFrom(c.config, c.log, { dryRun })))(context);
    const { source } = (options.deps?.sources ?? wikiSources)(context);
    const executor = new ModerationExecutor({
      db,
      gateway,
      log,
      moderation: config.moderation,
      serverName: config.matrix.server_name,
      noticeRoom: config.sync.moderation_room,
      dryRun,
      revokeAccount: (accountId) => endAccountSessions({ db, config, log }, accountId),
    });
    const state = await source.fullPass();
    const plan = await executor.plan(state);
    if (dryRun) {
      out.write(formatPlan(plan, state.users.length));
      return 0;
    }
    const result = await executor.apply(plan);
    out.write(formatResult(result, state.users.length));
    return result.counts.failed + result.counts.lacks_power > 0 ? 1 : 0;
  } finally {
    await lock?.release();
    await db.close();
  }
}

export { describeAction };

export function formatPlan(plan: Plan, users: number): string {
  const changes = plan.actions.filter((a) => a.kind !== 'report' && a.kind !== 'forget').length;
  return [
    `Dry run: ${users} mapped account${users === 1 ? '' : 's'} read; ${changes} change${changes === 1 ? '' : 's'} would be made. Nothing was changed.`,
    ...plan.actions.map(describeAction),
    '',
  ].join('\n');
}

export function formatResult(result: PassResult, users: number): string {
  const counts = Object.entries(result.counts).filter(([, n]) => n > 0).map(([outcome, n]) => `${outcome} ${n}`).join(', ') || 'nothing to do';
  return [
    `Pass ${result.passId}: ${users} mapped account${users === 1 ? '' : 's'} read; ${counts}${result.deferred ? `; ${result.deferred} left for the next pass` : ''}.`,
    ...result.results.filter((r) => r.outcome !== 'unchanged').map((r) => `${r.outcome.padEnd(11)} ${describeAction(r.action)}${r.error ? ` (${r.error})` : ''}`),
    ...(result.lacksPower.length ? [`The bot lacks power in: ${result.lacksPower.join(', ')}`] : []),
    '',
  ].join('\n');
}
