// The moderation loop. While this process holds the leader lock it runs a full pass at start and
// every `fullPassIntervalMs` (level-triggered: it repairs whatever the triggers missed), and in
// between targeted passes for the users that log polling or EventStreams name. One pass at a
// time; stopping lets the action under way finish. A failed pass is logged and tried again on a
// later tick; a poll whose pass failed is not committed, so its users come back next time.
// A block that expires writes no log entry, so the loop also wakes at the earliest expiry among
// the recorded causes and reconciles the users it concerns.
import { hostname } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Database } from '../db/index.ts';
import { lead, NotLeaderError, type Leadership } from '../db/leader.ts';
import type { Logger } from '../log.ts';
import type { MatrixGateway } from '../matrix/index.ts';
import type { ModerationConfig } from './config.ts';
import { ModerationExecutor, type ExecutorOptions, type PassResult, type Plan } from './executor.ts';
import { ModerationRecordStore } from './records.ts';
import { ModerationRequestStore, summarizePass, summarizePlan, type ModerationRequest, type RequestPayloads } from './requests.ts';
import { WorkerStatusStore, type WorkerReport } from './status.ts';
import type { WikiState } from './types.ts';
import { report, topics } from '../observe.ts';
import { WORKER_LOCK } from './worker-lock.ts';

/** Where wiki state comes from (WikiSource). */
export interface StateSource {
  /** Every mapped account (`complete: true`). */
  fullPass(): Promise<WikiState>;
  /** The mapped accounts among these wiki usernames (`complete: false`). */
  targeted(usernames: Iterable<string>): Promise<WikiState>;
  /**
   * The mapped accounts with these Matrix IDs (`complete: false`), for passes no log entry asks
   * for (an expiry). Without it, such a pass is a full pass.
   */
  byUserIds?(userIds: Iterable<string>): Promise<WikiState>;
}

/** Polled for whom to reconcile now (LogPoller). */
export interface Trigger {
  poll(): Promise<{ usernames: string[]; commit(): Promise<void> }>;
}

/** Pushes whom to reconcile now (EventStreamTrigger). */
export interface PushTrigger {
  start(onUser: (username: string) => void | Promise<void>): Promise<void>;
  stop(): Promise<void>;
  /** Whether the push connection is open now. */
  readonly connected?: boolean;
}

export interface ModerationWorkerOptions {
  db: Database;
  log: Logger;
  gateway: MatrixGateway;
  source: StateSource;
  trigger?: Trigger | undefined;
  events?: PushTrigger | undefined;
  moderation: ModerationConfig;
  serverName: string;
  /** `sync.moderation_room`. */
  noticeRoom?: string | undefined;
  /** The admin page of a person, linked from the notices. */
  personUrl?: ((userId: string) => string) | undefined;
  /** `sync.dry_run`; default: whether the gateway is a DryRunGateway. */
  dryRun?: boolean;
  fullPassIntervalMs: number;
  pollIntervalMs: number;
  /** Name of the leader lock; one leader per name. */
  lockName: string;
  /** How often a standby tries to take over. Default 5 s. */
  leaderRetryMs?: number;
  /** How long the first username pushed by EventStreams waits for others. Default 1 s. */
  eventBatchMs?: number;
  /** Pause after a failed pass before the next try. Default: the poll interval. */
  retryMs?: number;
  /** Revokes what the provider issued to an account, when a sanction ends its sessions. */
  revokeAccount?: ExecutorOptions['revokeAccount'];
  /** Run after each pass (following renames); a failure is logged and never fails the pass. */
  afterPass?: (pass: PassResult) => Promise<void>;
  /**
   * Run by the leader every few seconds, pass or not: work with its own retry schedule (relying
   * parties' back-channel logouts). A failure is logged and tried again at the next turn.
   */
  housekeeping?: () => Promise<void>;
  /** Default 10 s: the shortest wait before a back-channel logout is tried again. */
  housekeepingIntervalMs?: number;
  /** How often the leader looks for admins' requests (moderation_requests). Default 2 s. */
  requestIntervalMs?: number;
  clock?: () => Date;
}

export interface WorkerStatus {
  leading: boolean;
  lastFullPass: { at: Date; result: PassResult } | undefined;
  lastError: { at: Date; message: string } | undefined;
}

export interface ModerationWorker {
  /** Resolves the first time this process becomes the leader. */
  readonly leading: Promise<void>;
  readonly status: WorkerStatus;
  /** Runs a full pass as soon as the pass under way ends; resolves with its result. */
  fullPass(): Promise<PassResult>;
  /** Finishes the action under way, then stops; no half-done writes. */
  stop(): Promise<void>;
}

/** The leader lock of moderation mirroring: one worker (or `sync`) at a time acts. */
export { WORKER_LOCK };

/** Usernames pushed by EventStreams wait at most this long, so a burst becomes one pass. */
const EVENT_BATCH_MS = 1_000;

/** How long after an expiry its pass runs, so that the wiki agrees the block has ended. */
const EXPIRY_GRACE_MS = 1_000;

/** Retries of unfinished work back off to at most this many poll intervals, and at most 5 minutes. */
const MAX_BACKOFF_POLLS = 10;
const MAX_BACKOFF_MS = 5 * 60_000;

type Waiter = { resolve: (result: PassResult) => void; reject: (error: unknown) => void };

export function startModerationWorker(options: ModerationWorkerOptions): ModerationWorker {
  const log = options.log.child({ component: 'moderation-worker' });
  const clock = options.clock ?? (() => new Date());
  const executor = new ModerationExecutor({
    db: options.db,
    gateway: options.gateway,
    log: options.log,
    moderation: options.moderation,
    serverName: options.serverName,
    noticeRoom: options.noticeRoom,
    personUrl: options.personUrl,
    dryRun: options.dryRun,
    clock,
    // Whatever term is current: a record or a change by a deposed leader is refused.
    fence: (tx) => (leadership ? leadership.fence(tx) : Promise.reject(new NotLeaderError('not the leader'))),
    verify: () => (leadership ? leadership.verify() : Promise.reject(new NotLeaderError('not the leader'))),
    ...(options.revokeAccount && { revokeAccount: options.revokeAccount }),
  });
  const records = new ModerationRecordStore(options.db, { clock });
  const requests = new ModerationRequestStore(options.db, { clock });
  const statusStore = new WorkerStatusStore(options.db, options.lockName);
  const holder = `${hostname()}:${process.pid}`;
  const requestIntervalMs = options.requestIntervalMs ?? 2_000;
  const retryMs = options.retryMs ?? options.pollIntervalMs;
  const eventBatchMs = options.eventBatchMs ?? EVENT_BATCH_MS;

  let stopped = false;
  const stopAbort = new AbortController();
  /** Aborted on stop or lost leadership: the pass under way ends after its current action. */
  let passAbort = new AbortController();
  /** Aborted to cut a sleep short (new work, stop). */
  let wakeAbort = new AbortController();
  let leadership: Leadership | undefined;
  const queued = new Set<string>();
  let waiters: Waiter[] = [];
  let fullRequested = false;
  const status: WorkerStatus = { leading: false, lastFullPass: undefined, lastError: undefined };
  /** The next recorded expiry (plus grace) and the Matrix IDs whose records it ends. */
  let expiring: { at: number; userIds: string[] } | undefined;
  let firstLead: () => void = () => {};
  const leading = new Promise<void>((resolve) => (firstLead = resolve));

  const wake = () => wakeAbort.abort();
  let nextQueued = 0;
  const onUser = (username: string) => {
    // The first name of a burst waits a moment for the others, so the burst is one pass.
    if (queued.size === 0) nextQueued = Math.max(nextQueued, clock().getTime() + eventBatchMs);
    queued.add(username);
    wake();
  };
  const failed = (what: string, error: unknown) => {
    status.lastError = { at: clock(), message: error instanceof Error ? error.message : String(error) };
    log.error({ err: error }, `${what} failed; trying again later`);
    void publishStatus();
  };

  // What the admin pages show of this leader; written at each change and each housekeeping turn.
  let published: WorkerReport | undefined;
  let nextFullAt: Date | undefined;
  let lastPollAt: Date | undefined;
  async function publishStatus(): Promise<void> {
    if (!published || !status.leading) return;
    const last = status.lastFullPass;
    published = {
      ...published,
      eventStreams: options.events ? (options.events.connected ? 'connected' : 'disconnected') : 'off',
      ...(last && { lastFullPass: { at: last.at.toISOString(), ...summarizePass(last.result) } }),
      ...(nextFullAt && { nextFullPassAt: nextFullAt.toISOString() }),
      ...(lastPollAt && { lastPollAt: lastPollAt.toISOString() }),
      ...(status.lastError && { lastError: { at: status.lastError.at.toISOString(), message: status.lastError.message } }),
    };
    await statusStore.write(holder, published, clock()).catch((error) => log.warn({ err: error }, 'writing the worker status failed'));
  }

  /** Whether a pass left actions undone (stopped, rate limited): its users need another pass soon. */
  const unfinished = (result: PassResult | undefined) => result !== undefined && result.deferred > 0;

  // Unfinished or failed work is tried again after retryMs, then twice as long each time (the
  // homeserver or the wiki may be down for a while), up to ten poll intervals; one pass that
  // finishes resets it.
  let setbacks = 0;
  const backoff = () => {
    const cap = Math.max(retryMs, Math.min(MAX_BACKOFF_POLLS * options.pollIntervalMs, MAX_BACKOFF_MS));
    return Math.min(retryMs * 2 ** Math.min(setbacks++, 20), cap);
  };

  /** Passes change the records, so each one is followed by a look at the next expiry. */
  async function runPass(state: WikiState, planned?: Plan): Promise<PassResult> {
    // Leadership is checked before each pass, and again by the executor before each change.
    await leadership!.verify();
    const started = performance.now();
    const result = planned ? await executor.apply(planned, { signal: passAbort.signal }) : await executor.run(state, { signal: passAbort.signal });
    report(topics.pass, () => ({ full: state.complete, seconds: (performance.now() - started) / 1000, actions: result.results.map((r) => ({ kind: r.action.kind, outcome: r.outcome })) }));
    const next = await records.nextExpiry(clock());
    expiring = next && { at: next.at.getTime() + EXPIRY_GRACE_MS, userIds: next.userIds };
    await options.afterPass?.(result).catch((error) => log.warn({ err: error }, 'the work after a pass failed; it is tried again after the next one'));
    return result;
  }

  async function runFull(): Promise<PassResult> {
    const mine = waiters;
    waiters = [];
    fullRequested = false;
    try {
      const state = await options.source.fullPass();
      const result = await runPass(state);
      status.lastFullPass = { at: clock(), result };
      await publishStatus();
      for (const w of mine) w.resolve(result);
      return result;
    } catch (error) {
      for (const w of mine) w.reject(error);
      throw error;
    }
  }

  async function runTargeted(usernames: string[]): Promise<PassResult | undefined> {
    if (usernames.length === 0) return undefined;
    const state = await options.source.targeted(usernames);
    return state.users.length > 0 ? runPass(state) : undefined;
  }

  async function runExpired(): Promise<void> {
    const due = expiring!;
    const source = options.source;
    try {
      const result = source.byUserIds ? await runPass(await source.byUserIds(due.userIds)) : await runFull();
      if (unfinished(result)) expiring = { ...due, at: clock().getTime() + retryMs };
    } catch (error) {
      expiring = { ...due, at: clock().getTime() + retryMs };
      throw error;
    }
  }

  /** Whether the poll's users were all reconciled (and the cursor moved past them). */
  async function runPoll(): Promise<boolean> {
    const poll = await options.trigger!.poll();
    const result = await runTargeted(poll.usernames);
    // A pass left half done must see these users again: the cursor stays.
    if (unfinished(result) || passAbort.signal.aborted) return false;
    await poll.commit();
    lastPollAt = clock();
    await publishStatus();
    return true;
  }

  /** One admin request, run like any pass of this leader; its answer is stored for the asker. */
  async function runRequest(request: ModerationRequest): Promise<void> {
    const asked = { id: request.id, kind: request.kind, by: request.requestedBy };
    log.info(asked, 'running an admin request');
    try {
      if (request.kind === 'plan') {
        const state = await options.source.fullPass();
        await requests.finish(request.id, 'done', summarizePlan(await executor.plan(state), state.users.length));
      } else if (request.kind === 'apply') {
        const state = await options.source.fullPass();
        const plan = await executor.plan(state);
        const summary = summarizePlan(plan, state.users.length);
        if (summary.digest !== (request.payload as RequestPayloads['apply']).digest) {
          await requests.finish(request.id, 'refused', { reason: 'the wiki or the rooms changed since the preview, so its plan is not what a pass would do now: preview again', digest: summary.digest });
          return;
        }
        const result = await runPass(state, plan);
        status.lastFullPass = { at: clock(), result };
        await requests.finish(request.id, 'done', summarizePass(result));
        await publishStatus();
      } else {
        const { userId } = request.payload as RequestPayloads['retry'];
        const state = options.source.byUserIds ? await options.source.byUserIds([userId]) : await options.source.fullPass();
        await requests.finish(request.id, 'done', summarizePass(await runPass(state)));
      }
      log.info(asked, 'admin request done');
    } catch (error) {
      await requests.finish(request.id, 'failed', { reason: error instanceof Error ? error.message : String(error) });
      throw error;
    }
  }

  async function runQueued(): Promise<void> {
    const usernames = [...queued];
    queued.clear();
    const again = () => {
      for (const name of usernames) queued.add(name);
      nextQueued = clock().getTime() + retryMs;
    };
    try {
      if (unfinished(await runTargeted(usernames))) again();
    } catch (error) {
      again();
      throw error;
    }
  }

  /** One leader term: passes until stopped or the lock is lost. */
  async function loop(lost: Promise<unknown>): Promise<void> {
    let leaderLost = false;
    void lost.then(() => {
      leaderLost = true;
      passAbort.abort();
      wake();
    });
    const now = () => clock().getTime();
    let nextFull = now();
    let nextPoll = now();
    let nextHousekeeping = now();
    let nextRequests = now();
    while (!stopped && !leaderLost) {
      try {
        if (fullRequested || now() >= nextFull) {
          nextFull = now() + options.fullPassIntervalMs;
          nextFullAt = new Date(nextFull);
          const result = await runFull().catch((error) => {
            nextFull = now() + retryMs;
            throw error;
          });
          if (unfinished(result)) nextFull = now() + retryMs;
        } else if (expiring && now() >= expiring.at) {
          await runExpired();
        } else if (queued.size > 0 && now() >= nextQueued) {
          await runQueued();
        } else if (options.trigger && now() >= nextPoll) {
          nextPoll = now() + options.pollIntervalMs;
          const done = await runPoll().catch((error) => {
            nextPoll = now() + backoff();
            throw error;
          });
          if (done) setbacks = 0;
          else nextPoll = now() + backoff();
        } else if (now() >= nextRequests) {
          const request = await requests.take();
          // One after the other while they wait, then a look every requestIntervalMs.
          nextRequests = request ? now() : now() + requestIntervalMs;
          if (request) await runRequest(request);
        } else if (now() >= nextHousekeeping) {
          nextHousekeeping = now() + (options.housekeepingIntervalMs ?? 10_000);
          await publishStatus();
          await options.housekeeping?.().catch((error) => log.warn({ err: error }, 'housekeeping failed; it is tried again shortly'));
        } else {
          const until = Math.min(
            nextFull,
            options.trigger ? nextPoll : Infinity,
            queued.size > 0 ? nextQueued : Infinity,
            expiring?.at ?? Infinity,
            nextHousekeeping,
            nextRequests,
          );
          wakeAbort = new AbortController();
          await sleep(Math.max(0, until - now()), undefined, { signal: wakeAbort.signal }).catch(() => {});
        }
      } catch (error) {
        if (stopped || leaderLost) break;
        if (error instanceof NotLeaderError) {
          log.error({ err: error }, 'no longer the leader: stopping moderation mirroring and waiting as a standby');
          break;
        }
        failed('moderation pass', error);
      }
    }
  }

  async function term(): Promise<void> {
    const current = (leadership = lead(options.db, options.lockName, { retryMs: options.leaderRetryMs ?? 5_000 }));
    log.info('waiting to become the leader (another worker may hold the lock)');
    try {
      if (!(await current.acquired.then(() => true, () => false)) || stopped) return;
      status.leading = true;
      report(topics.leader, () => ({ leading: true }));
      const abandoned = await requests.abandonRunning();
      if (abandoned > 0) log.warn({ abandoned }, 'admin requests a previous leader left running were failed; they can be asked again');
      published = { leadingSince: clock().toISOString(), dryRun: executor.dryRun, eventStreams: options.events ? 'disconnected' : 'off' };
      await publishStatus();
      passAbort = new AbortController();
      log.info({ dryRun: executor.dryRun }, 'leader: moderation mirroring is running');
      firstLead();
      await options.events?.start(onUser).catch((error) => failed('starting EventStreams', error));
      await publishStatus();
      await loop(current.lost.then((error) => log.error({ err: error }, 'lost leadership: the database connection ended')));
    } finally {
      if (status.leading) report(topics.leader, () => ({ leading: false }));
      status.leading = false;
      await options.events?.stop().catch((error) => log.warn({ err: error }, 'stopping EventStreams failed'));
      await current.stop();
    }
  }

  const running = (async () => {
    while (!stopped) {
      await term().catch((error) => failed('the moderation worker', error));
      if (!stopped) await sleep(options.leaderRetryMs ?? 5_000, undefined, { signal: stopAbort.signal }).catch(() => {});
    }
  })();

  return {
    leading,
    status,
    fullPass() {
      if (stopped) return Promise.reject(new Error('the moderation worker is stopped'));
      return new Promise<PassResult>((resolve, reject) => {
        waiters.push({ resolve, reject });
        fullRequested = true;
        wake();
      });
    },
    async stop() {
      if (stopped) return running;
      stopped = true;
      stopAbort.abort();
      passAbort.abort();
      wake();
      // While waiting for the lock, this ends the wait; a leader lets go once its loop has ended.
      if (!status.leading) await leadership?.stop();
      await running;
      for (const w of waiters.splice(0)) w.reject(new Error('the moderation worker stopped'));
      log.info('moderation worker stopped');
    },
  };
}
