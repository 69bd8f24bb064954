import type { Config } from '../config/load.ts';
import type { Database } from '../db/index.ts';
import type { Logger } from '../log.ts';
import { createMatrixGateway, type MatrixGateway } from '../matrix/index.ts';
import { EventStreamTrigger, LogPoller, PostgresSyncCursorStore, WikiSource } from '../moderation/sources/index.ts';
import { startModerationWorker, WORKER_LOCK, type PushTrigger, type StateSource, type Trigger } from '../moderation/worker.ts';
import { accountRepository, actionApiClient, wikiIdOf, wikiUserAgent } from '../compose.ts';
import { followRenames } from '../moderation/display-names.ts';
import { deliverPendingLogouts, endAccountSessions } from '../oidc/logout.ts';
import { withHomeserverIds } from '../moderation/matrix-ids.ts';
import { ModerationAuditLog, type AuditEntry } from '../moderation/records.ts';
import type { AccountRepository } from '../identity/accounts.ts';
import { listenForMetrics, metricsRegistry } from '../metrics/index.ts';
import { personUrlFor } from '../admin/session.ts';
import { privacyHousekeeping, type PrivacyHousekeeping } from '../privacy/housekeeping.ts';
import { startIdle, type Worker } from './idle-worker.ts';
import { openMigratedDatabase } from './common.ts';

export { WORKER_LOCK };

export type { Worker };

export interface ModerationSources {
  source: StateSource;
  trigger?: Trigger | undefined;
  events?: PushTrigger | undefined;
}

export interface SourceContext {
  config: Config;
  db: Database;
  log: Logger;
}

export type SourcesFactory = (context: SourceContext) => ModerationSources;

export interface WorkerDeps {
  /** Where wiki state and triggers come from; default: the wiki's Action API, its logs and EventStreams. */
  sources?: SourcesFactory;
  /** Default: the homeserver from `matrix.*`, read-only when `sync.dry_run`. */
  gateway?: (context: SourceContext) => MatrixGateway;
}

/** The Matrix gateway from `matrix.*`, wrapped read-only when `sync.dry_run` (or `dryRun`) says so. */
export function matrixGatewayFrom(config: Config, log: Logger, options: { dryRun?: boolean } = {}): MatrixGateway {
  const m = config.matrix;
  const missing = [m.homeserver_url ? undefined : 'matrix.homeserver_url', m.access_token ? undefined : 'matrix.access_token (or access_token_file)'].filter(Boolean);
  if (missing.length > 0) throw new Error(`moderation mirroring needs ${missing.join(' and ')}: the bot reaches the homeserver with them`);
  return createMatrixGateway({
    baseUrl: m.homeserver_url!,
    accessToken: m.access_token!,
    logger: log,
    ...(m.user_id ? { userId: m.user_id } : {}),
    requestTimeoutMs: m.request_timeout * 1000,
    retry: { maxAttempts: m.max_attempts, maxRateLimitWaitMs: m.max_rate_limit_wait * 1000 },
    dryRun: options.dryRun ?? config.sync.dry_run,
    ...(m.mas && {
      mas: {
        baseUrl: m.mas.base_url,
        clientId: m.mas.client_id,
        clientSecret: m.mas.client_secret!,
        requestTimeoutMs: m.request_timeout * 1000,
        retry: { maxAttempts: m.max_attempts, maxRateLimitWaitMs: m.max_rate_limit_wait * 1000 },
      },
    }),
  });
}

/** The real sources: the wiki's Action API (state and logs) and, when enabled, EventStreams. */
export const wikiSources: SourcesFactory = ({ config, db, log }) => {
  const w = config.wiki;
  const api = actionApiClient(config, log);
  const accounts = accountRepository(db, config);
  const cursors = new PostgresSyncCursorStore(db);
  const es = config.sync.event_streams;
  return {
    source: new WikiSource({ api, wiki: wikiIdOf(config), centralAuth: w.central_auth, logger: log, accounts }),
    trigger: new LogPoller({ api, cursors, centralAuth: w.central_auth, logger: log }),
    events: es.enabled ? new EventStreamTrigger({ url: es.url, userAgent: wikiUserAgent(config), cursors, wiki: es.wiki, centralAuth: w.central_auth, logger: log }) : undefined,
  };
};

export async function startWorker(config: Config, log: Logger, deps: WorkerDeps = {}): Promise<Worker> {
  const metrics = config.metrics.port === undefined ? undefined : await listenForMetrics(metricsRegistry(), { host: config.metrics.host, port: config.metrics.port }, log);
  const db = await openMigratedDatabase(config, log).catch(async (error: unknown) => {
    await metrics?.close();
    throw error;
  });
  try {
    const worker = startWorkerOn(db, config, log, deps);
    return {
      ...worker,
      async stop() {
        await worker.stop();
        await db.close();
        await metrics?.close();
        log.info('stopped');
      },
    };
  } catch (error) {
    await db.close();
    await metrics?.close();
    throw error;
  }
}

/** The worker on a database someone else opened and closes (the embedded database is one process's). */
export function startWorkerOn(db: Database, config: Config, log: Logger, deps: WorkerDeps = {}): Worker {
  // The retention purge and the rest of each forget are the leader's, mirroring or not.
  const privacy = privacyHousekeeping({ db, config, log });
  return config.sync.enabled ? startMirroring(config, log, db, deps, privacy) : startIdle(log, db, privacy);
}

function startMirroring(config: Config, log: Logger, db: Database, deps: WorkerDeps, privacy: PrivacyHousekeeping): Worker {
  const context = { config, db, log };
  const gateway = (deps.gateway ?? ((c) => matrixGatewayFrom(c.config, c.log)))(context);
  const sources = (deps.sources ?? wikiSources)(context);
  const idp = config.matrix.synapse_idp_id;
  const accounts = accountRepository(db, config);
  const source = idp ? withHomeserverIds(sources.source, { gateway, accounts, authProvider: idp, serverName: config.matrix.server_name, log }) : sources.source;
  // After each pass, through Synapse's admin API (so on Synapse only): display names that follow
  // wiki renames. Every few seconds, pass or not: back-channel logouts a relying party did not take
  // yet, and the privacy work (retention purge, finishing forgets).
  const afterPass = idp ? async () => void (await followRenames({ gateway, accounts, wiki: wikiIdOf(config), log })) : undefined;
  const housekeeping = async () => {
    try {
      await deliverAndAudit({ db, config, log, accounts });
    } finally {
      await privacy.run();
    }
  };
  const moderation = startModerationWorker({
    db,
    log,
    gateway,
    ...sources,
    source,
    moderation: config.moderation,
    serverName: config.matrix.server_name,
    noticeRoom: config.sync.moderation_room,
    personUrl: personUrlFor(config),
    dryRun: config.sync.dry_run,
    fullPassIntervalMs: config.sync.full_pass_interval * 1000,
    pollIntervalMs: config.sync.poll_interval * 1000,
    lockName: WORKER_LOCK,
    revokeAccount: (accountId) => endAccountSessions({ db, config, log }, accountId),
    ...(afterPass && { afterPass }),
    housekeeping,
  });
  return {
    leading: moderation.leading,
    moderation,
    async stop() {
      await moderation.stop();
    },
  };
}

/**
 * Back-channel logouts that were not taken when the sessions ended, tried again; each one that is
 * delivered or given up is audited, beside the `end_sessions` entry that first sent it.
 */
async function deliverAndAudit(deps: { db: Database; config: Config; log: Logger; accounts: AccountRepository }): Promise<void> {
  const { settled } = await deliverPendingLogouts(deps);
  if (settled.length === 0) return;
  const at = new Date();
  // Not part of a pass: the entries share an id of their own, after the time they were made.
  const passId = `logouts-${at.toISOString()}`;
  const entries: AuditEntry[] = [];
  for (const logout of settled) {
    const account = await deps.accounts.findByCentralId(wikiIdOf(deps.config), logout.accountId);
    entries.push({
      at,
      passId,
      dryRun: false,
      kind: 'backchannel_logout',
      roomId: null,
      userId: account ? (account.matrixUserId ?? `@${account.localpart}:${deps.config.matrix.server_name}`) : null,
      cause: null,
      outcome: logout.outcome === 'delivered' ? 'applied' : 'failed',
      error: logout.outcome === 'delivered' ? null : 'the relying party never took it before its session would have ended',
      detail: { client: logout.clientId, centralId: logout.accountId, tries: logout.tries },
    });
  }
  await new ModerationAuditLog(deps.db).append(entries);
}
