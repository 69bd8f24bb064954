// `sync`: one full moderation pass from the command line. With --dry-run (or `sync.dry_run`) it
// prints what a pass would do and changes nothing, not even the audit log; otherwise it takes the
// worker's leader lock (so it never races a running worker), runs the pass and prints the outcome.
// Reading every account from the wiki and applying the plan can take minutes on a large wiki, so
// both show their progress (progress.ts), on stderr.
import { accountRepository, wikiIdOf } from '../compose.ts';
import type { Config } from '../config/load.ts';
import { DatabaseError, type Database } from '../db/index.ts';
import type { Logger } from '../log.ts';
import { ModerationExecutor, type PassResult, type Plan } from '../moderation/executor.ts';
import { describeAction } from '../moderation/describe.ts';
import { resolveIds } from '../moderation/matrix-ids.ts';
import { WikiSource } from '../moderation/sources/index.ts';
import type { WikiState, WikiUserState } from '../moderation/types.ts';
import type { StateSource } from '../moderation/worker.ts';
import { endAccountSessions } from '../oidc/logout.ts';
import { personUrlFor } from '../admin/session.ts';
import { openMigratedDatabase } from './common.ts';
import { noProgress, type Progress } from './progress.ts';
import { AdminApiClient, syncThroughService } from './remote.ts';
import { matrixGatewayFrom, wikiSources, WORKER_LOCK, type WorkerDeps } from './worker.ts';

export interface SyncOptions {
  config: Config;
  log: Logger;
  /** Plan only. A pass is a dry run also when `sync.dry_run` is on. */
  dryRun: boolean;
  deps?: WorkerDeps;
  out?: NodeJS.WritableStream;
  /** Where reading the wiki and applying the plan report how far they are; default none. */
  progress?: Progress;
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
  const progress = options.progress ?? noProgress;
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
      personUrl: personUrlFor(config),
      dryRun,
      revokeAccount: (accountId) => endAccountSessions({ db, config, log }, accountId),
    });
    const read = await readWiki(source, db, wikiIdOf(config), progress);
    // As the worker does: on Synapse, act on the Matrix IDs the homeserver reports.
    const idp = config.matrix.synapse_idp_id;
    const state = idp ? await resolveIds(read, { gateway, accounts: accountRepository(db, config), authProvider: idp, serverName: config.matrix.server_name, log }) : read;
    const plan = await executor.plan(state);
    if (dryRun) {
      out.write(formatPlan(plan, state.users.length));
      return 0;
    }
    progress.start('applying the pass', plan.actions.length, 'actions');
    const result = await executor.apply(plan, { onAction: (done) => progress.update(done) }).finally(() => progress.stop());
    out.write(formatResult(result, state.users.length));
    return result.counts.failed + result.counts.lacks_power > 0 ? 1 : 0;
  } finally {
    await lock?.release();
    await db.close();
  }
}

/**
 * Every mapped account's wiki state, as `source.fullPass()` reads it, batch by batch so that the
 * accounts read so far can be shown. A source that does not read in batches is read in one go.
 */
async function readWiki(source: StateSource, db: Database, wiki: string, progress: Progress): Promise<WikiState> {
  if (!(source instanceof WikiSource)) return source.fullPass();
  const { rows } = await db.query<{ n: number }>('SELECT count(*)::int AS n FROM accounts WHERE wiki = $1', [wiki]);
  progress.start('reading the wiki', rows[0]?.n ?? 0, 'accounts');
  const users: WikiUserState[] = [];
  try {
    for await (const batch of source.batches()) {
      users.push(...batch.users);
      progress.update(users.length);
    }
  } finally {
    progress.stop();
  }
  return { wiki: source.wiki, users, complete: true };
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
