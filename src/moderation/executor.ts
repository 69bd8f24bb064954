// The executor carries out a pass: rooms named by alias or space → room ids (rooms.ts); wiki
// state → policy → desired; room snapshots (one request a room, a few rooms at a time) and
// ownership records → reconcile → actions; then each action through the gateway, in order.
// Every action leaves an audit entry; an action that succeeded also updates the ownership
// records, in the same transaction, right away. So a pass cut short (crash, shutdown, rate limit)
// leaves records that say exactly what was done, and the next pass plans the rest: nothing
// twice, nothing missed. Between a change and its record a crash can still fall: room state tells
// who placed a ban (and with which reason), so reconcile adopts such a ban, but a power levels
// event does not say which of its entries are the service's. So a power levels change is written
// down first (an intent); the next pass reads the room and records the change if it is there.
import { randomUUID } from 'node:crypto';
import type { Database, Queryable } from '../db/index.ts';
import type { Logger } from '../log.ts';
import { DryRunGateway, MatrixError, NETWORK_ERROR, ABORTED, type MatrixGateway, type WriteOutcome } from '../matrix/index.ts';
import type { ModerationConfig } from './config.ts';
import { banReason, describeCause, policy } from './policy.ts';
import { reconcile } from './reconcile.ts';
import { resolveRooms } from './rooms.ts';
import { ModerationAuditLog, ModerationRecordStore, type AuditEntry, type AuditOutcome } from './records.ts';
import type { Action, ActualState, DesiredState, OwnershipRecords, RoomSnapshot, WikiState } from './types.ts';

export interface ExecutorOptions {
  db: Database;
  gateway: MatrixGateway;
  log: Logger;
  moderation: ModerationConfig;
  /** The homeserver's server name (`matrix.server_name`). */
  serverName: string;
  /** Where one notice per pass with changes is posted (`sync.moderation_room`); none when unset. */
  noticeRoom?: string | undefined;
  /** The admin page of a person, linked from each line of the notice about them. */
  personUrl?: ((userId: string) => string) | undefined;
  /** Plan and audit only; default: whether the gateway is a DryRunGateway. */
  dryRun?: boolean;
  clock?: () => Date;
  /** Room snapshots read at the same time; default 4. */
  concurrency?: number;
  /** Checked in the transaction of every record: refuses a deposed leader's (Leadership.fence). */
  fence?: (tx: Queryable) => Promise<void>;
  /** Checked before each change to Matrix: throws when this process is no longer the leader (Leadership.verify). */
  verify?: () => Promise<void>;
  /**
   * Revokes everything the provider issued to this account (sessions, grants, tokens) and sends
   * the relying parties their back-channel logouts; for `end_sessions`.
   */
  revokeAccount?: (accountId: string) => Promise<ProviderSessionsEnded>;
  passId?: () => string;
}

/** What ending an account's sessions at the provider did (`endAccountSessions`). */
export interface ProviderSessionsEnded {
  /** Sessions, grants, codes and tokens deleted. */
  revoked: number;
  /** Each back-channel logout sent; one not delivered is kept and tried again after later passes. */
  notified: { clientId: string; delivered: boolean }[];
}

export interface Plan {
  passId: string;
  /** A full pass (the wiki state lists every mapped account). */
  full: boolean;
  at: Date;
  desired: DesiredState;
  records: OwnershipRecords;
  actions: Action[];
  /**
   * Rooms whose state the homeserver could not give this time (down, overloaded, rate limiting):
   * what they need is not known yet, so the pass is not done for them. A room the bot cannot read
   * at all (not in it) is a report, not this: retrying would not change it.
   */
  unreachableRooms: string[];
}

export interface ActionResult {
  action: Action;
  outcome: AuditOutcome;
  error?: string;
  /** Figures of what was done, added to the audit entry's detail (ended sessions, logouts sent). */
  detail?: Record<string, unknown>;
}

export interface PassResult {
  passId: string;
  full: boolean;
  dryRun: boolean;
  results: ActionResult[];
  counts: Record<AuditOutcome, number>;
  /**
   * What the pass left undone, to be tried again: planned actions not attempted (the pass was
   * stopped, or the homeserver asked us to slow down or did not answer), actions that failed, and
   * rooms that could not be read. Zero only when everything the wiki asked for is in Matrix, was
   * found unnecessary, or was deliberately refused.
   */
  deferred: number;
  /** Rooms where the bot lacks the power for something it should do. */
  lacksPower: string[];
  /** The notice posted to the moderation room, if any. */
  notice: string | undefined;
}

export interface RunOptions {
  /** Stops the pass between two actions: the action under way finishes (and is recorded). */
  signal?: AbortSignal;
  /** Called after each action with how many of the plan's actions are done (a command's progress). */
  onAction?: (done: number, total: number) => void;
}

const DEFAULT_CONCURRENCY = 4;
/** Shown with the invitation, so that whoever runs the invited bot knows why it came. */
const SUBSCRIBER_INVITE_REASON = 'Reads the policy list published here (moderation.policy_list.subscribers)';
const NOTICE_MAX_LINES = 20;

/** Writes pending after their Matrix change succeeded but the database refused the record. */
interface PendingCommit {
  actions: Action[];
  audit: AuditEntry[];
  settles: string[];
}

export class ModerationExecutor {
  readonly #gateway: MatrixGateway;
  readonly #store: ModerationRecordStore;
  readonly #audit: ModerationAuditLog;
  readonly #log: Logger;
  readonly #moderation: ModerationConfig;
  readonly #serverName: string;
  readonly #noticeRoom: string | undefined;
  readonly #personUrl: ((userId: string) => string) | undefined;
  readonly #dryRun: boolean;
  readonly #clock: () => Date;
  readonly #concurrency: number;
  readonly #passId: () => string;
  readonly #fence: ((tx: Queryable) => Promise<void>) | undefined;
  readonly #verify: (() => Promise<void>) | undefined;
  readonly #revokeAccount: ((accountId: string) => Promise<ProviderSessionsEnded>) | undefined;
  #pending: PendingCommit[] = [];

  constructor(options: ExecutorOptions) {
    this.#gateway = options.gateway;
    this.#clock = options.clock ?? (() => new Date());
    this.#store = new ModerationRecordStore(options.db, { clock: this.#clock });
    this.#audit = new ModerationAuditLog(options.db);
    this.#log = options.log.child({ component: 'moderation' });
    this.#moderation = options.moderation;
    this.#serverName = options.serverName;
    this.#noticeRoom = options.noticeRoom;
    this.#personUrl = options.personUrl;
    this.#dryRun = options.dryRun ?? options.gateway instanceof DryRunGateway;
    this.#concurrency = options.concurrency ?? DEFAULT_CONCURRENCY;
    this.#passId = options.passId ?? randomUUID;
    this.#fence = options.fence;
    this.#verify = options.verify;
    this.#revokeAccount = options.revokeAccount;
  }

  get dryRun(): boolean {
    return this.#dryRun;
  }

  /** What a pass over `state` would do, from the rooms as they are now; changes nothing, records nothing. */
  async plan(state: WikiState): Promise<Plan> {
    await this.#flushPending();
    const at = this.#clock();
    const rooms = await this.#resolveRooms();
    const desired = policy(state, rooms.config, { now: at, serverName: this.#serverName });
    const load = () => (desired.scope === 'all' ? this.#store.load() : this.#store.load({ userIds: desired.scope }));
    const records = await load();
    const { actual, unreachableRooms } = await this.#actual(desired, records);
    const passId = this.#passId();
    const settled = !this.#dryRun && (await this.#settleIntents(actual, desired, passId)) ? await load() : records;
    const actions = [...rooms.problems, ...reconcile(desired, actual, settled, { now: at })];
    return { passId, full: desired.scope === 'all', at, desired, records: settled, actions, unreachableRooms };
  }

  /** Plans and carries out a pass. */
  async run(state: WikiState, options: RunOptions = {}): Promise<PassResult> {
    const plan = await this.plan(state);
    const result = await this.apply(plan, options);
    this.#log.info(
      { passId: plan.passId, full: plan.full, dryRun: this.#dryRun, users: state.users.length, ...result.counts, deferred: result.deferred, lacksPower: result.lacksPower },
      'moderation pass done',
    );
    return result;
  }

  /** Carries out a plan's actions in order, auditing each; posts one notice for the lot. */
  async apply(plan: Plan, options: RunOptions = {}): Promise<PassResult> {
    let records = plan.records;
    const results: ActionResult[] = [];
    let deferred = 0;
    let stoppedBy: ActionResult | undefined;
    for (const [i, action] of plan.actions.entries()) {
      if (options.signal?.aborted) {
        deferred = plan.actions.length - i;
        this.#log.info({ passId: plan.passId, deferred }, 'stopping: the rest of the pass is left for the next one');
        break;
      }
      // A deposed leader stops here, before touching Matrix (the error ends the pass).
      if (action.kind !== 'report' && !this.#dryRun) await this.#verify?.();
      const intent = action.kind === 'set_power_levels' && !this.#dryRun ? await this.#store.intend(plan.passId, action, this.#fence) : undefined;
      const { result, commit, stopPass } = await this.#execute(action);
      const audit = auditEntries(action, result, { passId: plan.passId, at: this.#clock(), dryRun: this.#dryRun, records });
      if (commit) records = await this.#commit(records, action, audit, intent);
      else {
        await this.#audit.append(audit);
        // Refused, the change is not in the room; unanswered, it may be: the next pass reads the room.
        if (intent !== undefined && !stopPass) await this.#store.dropIntent(intent);
      }
      results.push(result);
      options.onAction?.(i + 1, plan.actions.length);
      if (stopPass) {
        // The action that hit the limit or the outage is undone too.
        deferred = plan.actions.length - i;
        stoppedBy = result;
        this.#log.warn({ passId: plan.passId, deferred, err: result.error }, 'the homeserver is rate limiting or not answering: the rest of the pass is left for the next one');
        break;
      }
    }
    // A failure that did not stop the pass (a 500 for one room) is undone all the same; the one
    // that stopped it is already among the deferred.
    deferred += results.filter((r) => r.outcome === 'failed' && r !== stoppedBy).length + plan.unreachableRooms.length;
    const notice = await this.#notify(results);
    return {
      passId: plan.passId,
      full: plan.full,
      dryRun: this.#dryRun,
      results,
      counts: countOutcomes(results),
      deferred,
      lacksPower: lacksPowerRooms(results),
      notice,
    };
  }

  // -------------------------------------------------------------------------------------------

  /** Aliases and spaces to room ids, for this pass. */
  async #resolveRooms() {
    const resolution = await resolveRooms(this.#moderation, this.#gateway);
    for (const problem of resolution.problems) this.#log.warn({ roomId: problem.roomId }, problem.message);
    for (const duplicate of resolution.duplicates) this.#log.warn(duplicate);
    return resolution;
  }

  async #actual(desired: DesiredState, records: OwnershipRecords): Promise<{ actual: ActualState; unreachableRooms: string[] }> {
    const roomIds = [...new Set([...desired.rooms.map((r) => r.roomId), ...(desired.policyList ? [desired.policyList.roomId] : [])])];
    const rooms = new Map<string, RoomSnapshot>();
    const unreachableRooms: string[] = [];
    await eachBounded(roomIds, this.#concurrency, async (roomId) => {
      try {
        rooms.set(roomId, await this.#gateway.roomSnapshot(roomId));
      } catch (error) {
        // Reconcile reports the room as unavailable; the other rooms go ahead.
        if (isTransient(error)) unreachableRooms.push(roomId);
        this.#log.warn({ roomId, err: error, retried: isTransient(error) }, 'cannot read the room');
      }
    });
    const policyRoom = desired.policyList?.roomId;
    const policySnapshot = policyRoom === undefined ? undefined : rooms.get(policyRoom);
    if (policySnapshot && policySnapshot.policyRules === undefined) rooms.set(policyRoom!, withRecordedRules(policySnapshot, records));
    const suspended = await this.#suspended(desired, records);
    return { actual: { rooms, ...(suspended && { suspended }) }, unreachableRooms: unreachableRooms.sort() };
  }

  /**
   * Who of the people to suspend or to lift is suspended (or locked, by the measure their record
   * or the configuration says) on the homeserver now: one admin read each. Someone a moderator
   * already suspended is left alone, and their suspension stays theirs, never lifted by the
   * service. Undefined when a read fails: the records are then taken as the truth.
   */
  async #suspended(desired: DesiredState, records: OwnershipRecords): Promise<Set<string> | undefined> {
    const inScope = (userId: string) => desired.scope === 'all' || desired.scope.has(userId);
    const recorded = new Map(records.suspensions.map((r) => [r.userId, r]));
    const people = [...new Set([...desired.suspensions.keys(), ...recorded.keys()])].filter(inScope);
    if (people.length === 0) return undefined;
    const suspended = new Set<string>();
    try {
      await eachBounded(people, this.#concurrency, async (userId) => {
        const status = await this.#gateway.userStatus(userId);
        const measure = recorded.has(userId) ? recorded.get(userId)!.measure ?? 'suspend' : desired.suspendMeasure ?? 'suspend';
        if (status && (measure === 'lock' ? status.locked : status.suspended)) suspended.add(userId);
      });
    } catch (error) {
      if (!(error instanceof MatrixError)) throw error;
      this.#log.warn({ err: error }, 'cannot read who is suspended: the records are taken as the truth');
      return undefined;
    }
    return suspended;
  }

  async #execute(action: Action): Promise<{ result: ActionResult; commit: boolean; stopPass: boolean }> {
    if (action.kind === 'report') {
      return { result: { action, outcome: action.problem === 'lacks_power' ? 'lacks_power' : 'reported' }, commit: false, stopPass: false };
    }
    if (action.kind === 'forget') {
      return this.#dryRun ? { result: { action, outcome: 'dry_run' }, commit: false, stopPass: false } : { result: { action, outcome: 'applied' }, commit: true, stopPass: false };
    }
    try {
      const { outcome, detail } = action.kind === 'end_sessions' ? await this.#endSessions(action) : { outcome: await this.#write(action), detail: undefined };
      this.#log.debug({ kind: action.kind, roomId: 'roomId' in action ? action.roomId : undefined, outcome }, 'moderation action');
      return { result: { action, outcome, ...(detail && { detail }) }, commit: outcome !== 'dry_run' && !this.#dryRun, stopPass: false };
    } catch (error) {
      // Anything but a MatrixError is a bug, not a homeserver answer: the pass ends here.
      if (!(error instanceof MatrixError)) throw error;
      const forbidden = error.errcode === 'M_FORBIDDEN';
      const outcome: AuditOutcome = forbidden ? 'lacks_power' : 'failed';
      (forbidden ? this.#log.warn : this.#log.error).call(this.#log, { kind: action.kind, err: error }, forbidden ? 'the homeserver refused: the bot lacks power' : 'moderation action failed');
      const stopPass = error.rateLimited || error.errcode === NETWORK_ERROR || error.errcode === ABORTED;
      return { result: { action, outcome, error: error.message }, commit: false, stopPass };
    }
  }

  #write(action: Exclude<Action, { kind: 'report' | 'forget' | 'end_sessions' }>): Promise<WriteOutcome> {
    const g = this.#gateway;
    switch (action.kind) {
      case 'ban':
        return g.ban(action.roomId, action.userId, action.reason);
      case 'unban':
        return g.unban(action.roomId, action.userId, action.reason);
      case 'set_power_levels':
        return g.setPowerLevels(action.roomId, action.content);
      case 'invite':
        return g.invite(action.roomId, action.userId);
      case 'invite_subscriber':
        return g.invite(action.roomId, action.userId, SUBSCRIBER_INVITE_REASON);
      case 'kick':
        return g.kick(action.roomId, action.userId, action.reason);
      case 'suspend':
      case 'unsuspend':
        return action.measure === 'lock' ? g.setLocked(action.userId, action.kind === 'suspend') : g.suspend(action.userId, action.kind === 'suspend');
      case 'publish_policy':
        return g.sendStateEvent(action.roomId, action.eventType, action.stateKey, { ...action.content });
      case 'retract_policy':
        return g.sendStateEvent(action.roomId, action.eventType, action.stateKey, {});
    }
  }

  /** The provider's grants first (no new tokens), then every device on the homeserver. */
  async #endSessions(action: Extract<Action, { kind: 'end_sessions' }>): Promise<{ outcome: WriteOutcome; detail: Record<string, unknown> | undefined }> {
    const ended = this.#dryRun || !this.#revokeAccount ? undefined : await this.#revokeAccount(action.centralId);
    const devices = await this.#gateway.logoutDevices(action.userId);
    const outcome = ended && (ended.revoked > 0 || ended.notified.length > 0) && devices !== 'dry_run' ? 'applied' : devices;
    return { outcome, detail: ended && { revoked: ended.revoked, logouts: ended.notified.map((n) => ({ client: n.clientId, delivered: n.delivered })) } };
  }

  /**
   * Records a change that Matrix already holds. If the database refuses, the change is kept and
   * written before anything else is planned: without its record, the service would not know it
   * placed that ban or level and would never lift it.
   */
  async #commit(records: OwnershipRecords, action: Action, audit: AuditEntry[], intent: string | undefined): Promise<OwnershipRecords> {
    const settles = intent === undefined ? [] : [intent];
    try {
      return await this.#store.apply(records, [action], audit, this.#fence, settles);
    } catch (error) {
      this.#pending.push({ actions: [action], audit, settles });
      throw error;
    }
  }

  async #flushPending(): Promise<void> {
    while (this.#pending.length > 0) {
      const next = this.#pending[0]!;
      await this.#store.apply(await this.#store.load(), next.actions, next.audit, this.#fence, next.settles);
      this.#pending.shift();
    }
  }

  /**
   * Power levels changes written down by a pass that was cut short: each is recorded when the
   * room shows every entry it set (the change was made), and dropped when it does not (it never
   * reached the homeserver; this pass plans it again) or when the room is no longer managed. A
   * room that could not be read keeps its intents for a later pass.
   */
  async #settleIntents(actual: ActualState, desired: DesiredState, passId: string): Promise<boolean> {
    const managed = new Set(desired.rooms.map((r) => r.roomId));
    let recorded = false;
    for (const intent of await this.#store.intents()) {
      const { action } = intent;
      const snapshot = actual.rooms.get(action.roomId);
      if (managed.has(action.roomId) && snapshot === undefined) continue;
      const users = snapshot?.powerLevels.users ?? {};
      const made = snapshot !== undefined && action.changes.every((c) => (users[c.userId] ?? null) === c.to);
      if (!made) {
        await this.#store.dropIntent(intent.id);
        this.#log.info({ passId, roomId: action.roomId, interruptedPass: intent.passId }, 'a power levels change of an interrupted pass is not in the room: planned again');
        continue;
      }
      // The records the change touches, whatever this pass's scope.
      const before = await this.#store.load({ userIds: action.changes.map((c) => c.userId), roomIds: [action.roomId] });
      const audit = auditEntries(action, { action, outcome: 'applied' }, { passId, at: this.#clock(), dryRun: false, records: before }).map((e) => ({
        ...e,
        detail: { ...e.detail, confirmed: `found in the room after pass ${intent.passId} was cut short` },
      }));
      await this.#store.apply(before, [action], audit, this.#fence, [intent.id]);
      recorded = true;
      this.#log.info({ passId, roomId: action.roomId, interruptedPass: intent.passId }, 'a power levels change of an interrupted pass is in the room: recorded');
    }
    return recorded;
  }

  async #notify(results: ActionResult[]): Promise<string | undefined> {
    if (this.#dryRun || !this.#noticeRoom) return undefined;
    const text = noticeText(results, this.#personUrl);
    if (!text) return undefined;
    try {
      await this.#gateway.sendNotice(this.#noticeRoom, text);
      return text;
    } catch (error) {
      this.#log.warn({ roomId: this.#noticeRoom, err: error }, 'cannot post the moderation notice');
      return undefined;
    }
  }
}

// ---------------------------------------------------------------------------------------------

/** A failure the homeserver may not repeat: it was down, overloaded, slow or rate limiting. */
function isTransient(error: unknown): boolean {
  return error instanceof MatrixError && (error.rateLimited || error.errcode === NETWORK_ERROR || error.errcode === ABORTED || error.status >= 500);
}

async function eachBounded<T>(items: readonly T[], limit: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await work(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

/**
 * For a gateway whose snapshots carry no policy rules: take the recorded ones as published, with
 * the content policy() gives them, so recorded rules are neither republished nor forgotten.
 */
function withRecordedRules(snapshot: RoomSnapshot, records: OwnershipRecords): RoomSnapshot {
  const rules = new Map<string, Record<string, unknown>>();
  for (const r of records.policyRules) {
    if (r.roomId === snapshot.roomId) rules.set(r.stateKey, { entity: r.entity, recommendation: 'm.ban', reason: banReason(r.cause) });
  }
  return { ...snapshot, policyRules: rules };
}

function countOutcomes(results: readonly ActionResult[]): Record<AuditOutcome, number> {
  const counts: Record<AuditOutcome, number> = { applied: 0, unchanged: 0, dry_run: 0, failed: 0, lacks_power: 0, reported: 0 };
  for (const r of results) counts[r.outcome] += 1;
  return counts;
}

function lacksPowerRooms(results: readonly ActionResult[]): string[] {
  const rooms = new Set<string>();
  for (const { action, outcome } of results) {
    if (outcome === 'lacks_power' && 'roomId' in action && action.roomId) rooms.add(action.roomId);
  }
  return [...rooms].sort();
}

// ---------------------------------------------------------------------------------------------
// Audit entries

interface AuditContext {
  passId: string;
  at: Date;
  dryRun: boolean;
  records: OwnershipRecords;
}

/** One entry per action; a power levels write gives one per user it changes. */
export function auditEntries(action: Action, result: ActionResult, context: AuditContext): AuditEntry[] {
  const base = { at: context.at, passId: context.passId, dryRun: context.dryRun, kind: action.kind, outcome: result.outcome, error: result.error ?? null };
  switch (action.kind) {
    case 'ban':
    case 'unban':
    case 'kick':
      return [{ ...base, roomId: action.roomId, userId: action.userId, cause: action.cause, detail: { reason: action.reason } }];
    case 'invite':
      return [{ ...base, roomId: action.roomId, userId: action.userId, cause: action.cause, detail: {} }];
    case 'invite_subscriber':
      return [{ ...base, roomId: action.roomId, userId: action.userId, cause: null, detail: { reason: SUBSCRIBER_INVITE_REASON } }];
    case 'set_power_levels':
      return action.changes.map((c) => ({ ...base, roomId: action.roomId, userId: c.userId, cause: c.cause, detail: { from: c.from, to: c.to } }));
    case 'suspend':
    case 'unsuspend':
      return [{ ...base, roomId: null, userId: action.userId, cause: action.cause, detail: action.measure ? { measure: action.measure } : {} }];
    case 'end_sessions':
      return [{ ...base, roomId: null, userId: action.userId, cause: action.cause, detail: { centralId: action.centralId, ...result.detail } }];
    case 'publish_policy':
      return [{ ...base, roomId: action.roomId, userId: action.content.entity, cause: action.cause, detail: { stateKey: action.stateKey, reason: action.content.reason } }];
    case 'retract_policy': {
      const entity = context.records.policyRules.find((r) => r.roomId === action.roomId && r.stateKey === action.stateKey)?.entity ?? null;
      return [{ ...base, roomId: action.roomId, userId: entity, cause: action.cause, detail: { stateKey: action.stateKey } }];
    }
    case 'forget': {
      const ref = action.record;
      return [{
        ...base,
        roomId: 'roomId' in ref ? ref.roomId : null,
        userId: 'userId' in ref ? ref.userId : null,
        cause: null,
        detail: { record: ref, why: action.why },
      }];
    }
    case 'report':
      return [{
        ...base,
        roomId: action.roomId,
        userId: action.userIds.length === 1 ? action.userIds[0]! : null,
        cause: null,
        detail: { problem: action.problem, message: action.message, userIds: action.userIds, ...(action.wanted ? { wanted: action.wanted } : {}) },
      }];
  }
}

// ---------------------------------------------------------------------------------------------
// The notice: one line per user and kind of change, rooms counted.

const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`;

/** The moderation room notice for a pass's results, or undefined when nothing is worth saying. */
export function noticeText(results: readonly ActionResult[], personUrl?: (userId: string) => string): string | undefined {
  const groups = new Map<string, { head: string; tail: string; rooms: Set<string>; userId: string | undefined }>();
  const add = (head: string, tail: string, roomId: string | null, userId?: string) => {
    const key = `${head}\u0000${tail}`;
    let group = groups.get(key);
    if (!group) groups.set(key, (group = { head, tail, rooms: new Set(), userId }));
    if (roomId) group.rooms.add(roomId);
  };
  const problems: string[] = [];
  let failed = 0;

  for (const { action, outcome, error } of results) {
    if (outcome === 'failed') failed += 1;
    if (outcome === 'lacks_power') {
      if (action.kind === 'report') {
        if (action.userIds.length > 0) problems.push(action.message);
      } else problems.push(`Refused (${action.kind}${'roomId' in action ? ` in ${action.roomId}` : ''}): ${error ?? 'M_FORBIDDEN'}`);
    }
    if (outcome !== 'applied') continue;
    switch (action.kind) {
      case 'ban':
        add(`Banned ${action.userId}`, action.reason, action.roomId, action.userId);
        break;
      case 'unban':
        add(`Unbanned ${action.userId}`, action.reason, action.roomId, action.userId);
        break;
      case 'kick':
        add(`Removed ${action.userId}`, action.reason, action.roomId, action.userId);
        break;
      case 'invite':
        add(`Invited ${action.userId}`, describeCause(action.cause), action.roomId, action.userId);
        break;
      case 'invite_subscriber':
        add(`Invited ${action.userId} to the policy list room`, 'it reads the policy list', null);
        break;
      case 'set_power_levels':
        for (const c of action.changes) add(`Power level of ${c.userId} ${c.from ?? 'default'} → ${c.to ?? 'default'}`, describeCause(c.cause), action.roomId, c.userId);
        break;
      case 'suspend':
      case 'unsuspend':
        add(`${action.kind === 'suspend' ? (action.measure ? 'Locked' : 'Suspended') : action.measure ? 'Unlocked' : 'Unsuspended'} ${action.userId}`, describeCause(action.cause), null, action.userId);
        break;
      case 'end_sessions':
        add(`Ended the sessions of ${action.userId}`, describeCause(action.cause), null, action.userId);
        break;
      case 'publish_policy':
        add(`Published a ban rule for ${action.content.entity}`, action.content.reason, null);
        break;
      case 'retract_policy':
        add(`Withdrew ban rule ${action.stateKey}`, describeCause(action.cause), null);
        break;
      default:
        break;
    }
  }

  const link = (userId: string | undefined) => (userId && personUrl ? ` (${personUrl(userId)})` : '');
  const lines = [...groups.values()].map(({ head, tail, rooms, userId }) => `${head}${rooms.size ? ` in ${plural(rooms.size, 'room')}` : ''} — ${tail}${link(userId)}`);
  lines.push(...problems);
  if (failed > 0) lines.push(`${plural(failed, 'action')} failed; the next pass tries again.`);
  if (lines.length === 0) return undefined;
  const shown = lines.slice(0, NOTICE_MAX_LINES);
  if (lines.length > shown.length) shown.push(`… and ${lines.length - shown.length} more (see the audit log).`);
  return shown.join('\n');
}
