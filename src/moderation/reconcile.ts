// reconcile(desired, actual, records) → actions. Pure, and computed from snapshots in memory: it
// looks only at users the desired state or the records mention (so an event-driven pass for a few
// users costs a few actions, not a sweep), and emits nothing that would not change something.
//
// Ownership rules (the records say what the service did):
// - A ban is lifted only when the service placed it (recorded) and the ban in the room is still
//   the bot's. A ban a person placed is never lifted; a person lifting a ban while the wiki
//   sanction lasts does not stop it, since the wiki is authoritative for what is mirrored.
// - A power level is changed or removed only while it is still the level the service set. A level
//   set by hand is left alone and reported; levels of creators (room v12) are never touched.
// - Levels at or above the bot's own are never granted: nobody but the creators could take them back.
// - Gated rooms: people are invited once; those the service invited are removed when they leave
//   the group. Someone who leaves is not invited again, and someone invited by hand stays.
// - Policy rules and suspensions follow the same pattern as bans.
// - The bots that read the policy list are invited to its room on full passes while they are not in
//   it; one someone banned from it is reported, never invited over the ban.
import { kickReason, unbanReason } from './policy.ts';
import {
  POLICY_RULE_USER,
  type Action,
  type ActualState,
  type BanRecord,
  type DesiredBan,
  type DesiredLevel,
  type DesiredRoom,
  type DesiredRule,
  type DesiredState,
  type InviteRecord,
  type LevelChange,
  type LevelRecord,
  type Membership,
  type OwnershipRecords,
  type PolicyRuleContent,
  type PolicyRuleRecord,
  type PowerLevelsContent,
  type RecordRef,
  type Report,
  type RoomSnapshot,
  type SessionEndRecord,
  type SuspensionRecord,
  type WikiCause,
} from './types.ts';

export interface ReconcileContext {
  now: Date;
}

type Wanted = NonNullable<Report['wanted']>;

// ---------------------------------------------------------------------------------------------
// Records, indexed for lookups

interface RoomRecords {
  bans: Map<string, BanRecord>;
  levels: Map<string, LevelRecord>;
  invites: Map<string, InviteRecord>;
  policyRules: Map<string, PolicyRuleRecord>;
}

class RecordIndex {
  readonly #rooms = new Map<string, RoomRecords>();
  readonly suspensions: Map<string, SuspensionRecord>;
  readonly sessionEnds: Map<string, SessionEndRecord>;
  static readonly #empty: RoomRecords = { bans: new Map(), levels: new Map(), invites: new Map(), policyRules: new Map() };

  constructor(records: OwnershipRecords) {
    for (const r of records.bans) this.#room(r.roomId).bans.set(r.userId, r);
    for (const r of records.levels) this.#room(r.roomId).levels.set(r.userId, r);
    for (const r of records.invites) this.#room(r.roomId).invites.set(r.userId, r);
    for (const r of records.policyRules) this.#room(r.roomId).policyRules.set(r.stateKey, r);
    this.suspensions = new Map(records.suspensions.map((r) => [r.userId, r]));
    this.sessionEnds = new Map(records.sessionEnds.map((r) => [r.userId, r]));
  }

  of(roomId: string): RoomRecords {
    return this.#rooms.get(roomId) ?? RecordIndex.#empty;
  }

  #room(roomId: string): RoomRecords {
    let room = this.#rooms.get(roomId);
    if (!room) this.#rooms.set(roomId, (room = { bans: new Map(), levels: new Map(), invites: new Map(), policyRules: new Map() }));
    return room;
  }
}

// ---------------------------------------------------------------------------------------------
// Power

/** Room versions before 10 allow levels as strings ("50"); anything else unusable takes the default. */
function levelValue(value: unknown, fallback: number): number {
  if (typeof value === 'number' && Number.isFinite(value)) return Math.trunc(value);
  if (typeof value === 'string' && /^\s*[+-]?\d+\s*$/.test(value)) return Number(value);
  return fallback;
}

function userEntry(content: PowerLevelsContent, userId: string): number | undefined {
  const users = content.users;
  if (!users || !Object.hasOwn(users, userId)) return undefined;
  return levelValue(users[userId], levelValue(content.users_default, 0));
}

class Power {
  readonly bot: number;
  readonly #content: PowerLevelsContent;
  readonly #creators: ReadonlySet<string>;

  constructor(snapshot: RoomSnapshot, content: PowerLevelsContent = snapshot.powerLevels) {
    this.#content = content;
    this.#creators = new Set(snapshot.creators ?? []);
    this.bot = this.of(snapshot.botUserId);
  }

  isCreator(userId: string): boolean {
    return this.#creators.has(userId);
  }

  of(userId: string): number {
    if (this.#creators.has(userId)) return Infinity;
    return userEntry(this.#content, userId) ?? this.usersDefault;
  }

  get usersDefault(): number {
    return levelValue(this.#content.users_default, 0);
  }

  /** The level needed to do `wanted` to anyone (spec defaults when the content says nothing). */
  needed(wanted: Wanted): number {
    const c = this.#content;
    switch (wanted) {
      case 'ban':
      case 'unban':
        return levelValue(c.ban, 50);
      case 'kick':
        return levelValue(c.kick, 50);
      case 'invite':
        return levelValue(c.invite, 0);
      case 'set_power_levels':
        return this.stateLevel('m.room.power_levels');
      case 'publish_policy':
      case 'retract_policy':
        return this.stateLevel(POLICY_RULE_USER);
    }
  }

  stateLevel(eventType: string): number {
    return levelValue(this.#content.events?.[eventType], levelValue(this.#content.state_default, 50));
  }

  /** Why the bot cannot do `wanted` (to `target`, whose level must be below the bot's), or undefined. */
  problem(wanted: Wanted, target?: string): string | undefined {
    const needed = this.needed(wanted);
    if (this.bot < needed) return `the bot's power level ${this.bot} is below the ${needed} needed to ${verb(wanted)}`;
    if (target !== undefined && (wanted === 'ban' || wanted === 'kick') && this.of(target) >= this.bot) {
      return this.isCreator(target) ? `${target} is a room creator` : `${target}'s power level ${this.of(target)} is not below the bot's ${this.bot}`;
    }
    return undefined;
  }
}

function verb(wanted: Wanted): string {
  return {
    ban: 'ban',
    unban: 'unban',
    kick: 'remove members',
    invite: 'invite',
    set_power_levels: 'change power levels',
    publish_policy: 'publish policy rules',
    retract_policy: 'withdraw policy rules',
  }[wanted];
}

/** Collects what the bot could not do in one room, to report once per kind of action. */
class Shortfalls {
  readonly #byWanted = new Map<Wanted, { userIds: string[]; whys: Set<string> }>();

  add(wanted: Wanted, why: string, userId?: string): void {
    let entry = this.#byWanted.get(wanted);
    if (!entry) this.#byWanted.set(wanted, (entry = { userIds: [], whys: new Set() }));
    if (userId !== undefined) entry.userIds.push(userId);
    entry.whys.add(why);
  }

  reports(roomId: string): Report[] {
    return [...this.#byWanted].map(([wanted, { userIds, whys }]) => ({
      kind: 'report',
      problem: 'lacks_power',
      roomId,
      userIds,
      wanted,
      message: `Cannot ${verb(wanted)} in ${roomId}${userIds.length ? ` (${userIds.length} user${userIds.length === 1 ? '' : 's'})` : ''}: ${[...whys].join('; ')}`,
    }));
  }
}

// ---------------------------------------------------------------------------------------------
// reconcile

export function reconcile(desired: DesiredState, actual: ActualState, records: OwnershipRecords, context: ReconcileContext): Action[] {
  const index = new RecordIndex(records);
  const scope = desired.scope;
  const inScope = scope === 'all' ? () => true : (userId: string) => scope.has(userId);
  const actions: Action[] = [];
  for (const room of desired.rooms) {
    const snapshot = actual.rooms.get(room.roomId);
    if (snapshot) actions.push(...reconcileRoom(room, snapshot, index.of(room.roomId), inScope, context, scope === 'all'));
    else actions.push(unavailable(room.roomId));
  }
  actions.push(...reconcileSuspensions(desired, actual, index, inScope));
  actions.push(...reconcileSessionEnds(desired, index, inScope));
  if (desired.policyList) {
    const { roomId, rules, subscribers } = desired.policyList;
    const snapshot = actual.rooms.get(roomId);
    if (snapshot) actions.push(...reconcilePolicyList(rules, subscribers ?? [], snapshot, index.of(roomId).policyRules, inScope, scope === 'all'));
    else actions.push(unavailable(roomId));
  }
  return actions;
}

function unavailable(roomId: string): Report {
  return { kind: 'report', problem: 'room_unavailable', roomId, userIds: [], message: `No state for ${roomId}: the bot is probably not in the room, so nothing was done there` };
}

/** The users to look at: those desired or recorded, within scope, never the bot itself, sorted for stable output. */
function candidates(inScope: (userId: string) => boolean, bot: string, ...keys: Iterable<string>[]): string[] {
  const users = new Set<string>();
  for (const list of keys) for (const userId of list) if (userId !== bot && inScope(userId)) users.add(userId);
  return [...users].sort();
}

function forget(record: RecordRef, why: string): Action {
  return { kind: 'forget', record, why };
}

/** What the bot must be able to do in a room, given what the service manages there. */
function duties(room: DesiredRoom): Wanted[] {
  return [
    ...(room.bans ? (['ban', 'unban'] as const) : []),
    ...(room.levels ? (['set_power_levels'] as const) : []),
    ...(room.members ? (['invite', 'kick'] as const) : []),
  ];
}

/**
 * A full pass also reports missing power that nothing needs yet, so a misconfigured room shows
 * up before the first block that should have been mirrored there.
 */
function checkDuties(power: Power, wanted: readonly Wanted[], shortfalls: Shortfalls): void {
  for (const w of wanted) {
    const problem = power.problem(w);
    if (problem) shortfalls.add(w, problem);
  }
}

function reconcileRoom(room: DesiredRoom, snapshot: RoomSnapshot, records: RoomRecords, inScope: (userId: string) => boolean, context: ReconcileContext, fullPass: boolean): Action[] {
  const shortfalls = new Shortfalls();
  const actions: Action[] = [];
  let power = new Power(snapshot);
  if (fullPass) checkDuties(power, duties(room), shortfalls);
  if (room.levels) {
    const planned = planLevels(room.levels, snapshot, records.levels, power, inScope, shortfalls);
    actions.push(...planned.actions);
    power = planned.power;
  }
  const membership = new Map<string, Membership>();
  if (room.bans) actions.push(...planBans(room.bans, snapshot, records.bans, power, inScope, context, shortfalls, membership));
  if (room.members) actions.push(...planMembers(room.members, snapshot, records.invites, power, inScope, shortfalls, membership));
  return [...actions, ...shortfalls.reports(snapshot.roomId)];
}

// ---------------------------------------------------------------------------------------------
// Power levels: one write per room

function planLevels(
  desired: ReadonlyMap<string, DesiredLevel>,
  snapshot: RoomSnapshot,
  records: ReadonlyMap<string, LevelRecord>,
  power: Power,
  inScope: (userId: string) => boolean,
  shortfalls: Shortfalls,
): { actions: Action[]; power: Power } {
  const { roomId, botUserId } = snapshot;
  const content = snapshot.powerLevels;
  const actions: Action[] = [];
  const changes: LevelChange[] = [];
  const usersDefault = power.usersDefault;

  for (const userId of candidates(inScope, botUserId, desired.keys(), records.keys())) {
    const want = desired.get(userId);
    const record = records.get(userId);
    const entry = userEntry(content, userId);
    if (power.isCreator(userId)) {
      if (record) actions.push(forget({ type: 'level', roomId, userId }, 'room creators have infinite power; their level is never set'));
      continue;
    }
    // Below or at users_default an entry would change nothing (or demote): no entry is wanted.
    const target = want && want.level > usersDefault ? want.level : null;
    const owned = record !== undefined && entry === record.level;

    if (record && !owned) {
      if (entry !== undefined) {
        actions.push(forget({ type: 'level', roomId, userId }, `the level was changed by hand from ${record.level} to ${entry}`));
        if (want?.level !== entry) actions.push(handSetLevel(roomId, userId, entry, want?.level, record.level));
        continue;
      }
      // Removed by hand while still wanted: restored below (the new record replaces this one).
      if (target === null) {
        actions.push(forget({ type: 'level', roomId, userId }, 'the level was removed by hand'));
        continue;
      }
    }
    if (owned || entry === undefined) {
      if (target === (entry ?? null)) continue;
      const change: LevelChange = { userId, from: entry ?? null, to: target, cause: want?.cause ?? record!.cause };
      const why = change.to !== null && change.to >= power.bot
        ? `level ${change.to} is not below the bot's ${power.bot}, so it could never be taken back`
        : change.from !== null && change.from >= power.bot
          ? `${userId}'s level ${change.from} is not below the bot's ${power.bot}`
          : undefined;
      if (why) shortfalls.add('set_power_levels', why, userId);
      else changes.push(change);
    } else if (want && entry !== want.level) {
      actions.push(handSetLevel(roomId, userId, entry, want.level, undefined));
    }
  }

  if (changes.length === 0) return { actions, power };
  const problem = power.problem('set_power_levels');
  if (problem) {
    for (const change of changes) shortfalls.add('set_power_levels', problem, change.userId);
    return { actions, power };
  }
  const users = { ...(content.users ?? {}) };
  for (const { userId, to } of changes) {
    if (to === null) delete users[userId];
    else users[userId] = to;
  }
  const newContent: PowerLevelsContent = { ...content, users };
  return {
    actions: [...actions, { kind: 'set_power_levels', roomId, content: newContent, changes }],
    power: new Power(snapshot, newContent),
  };
}

function handSetLevel(roomId: string, userId: string, entry: number, wanted: number | undefined, ours: number | undefined): Report {
  const was = ours === undefined ? '' : ` (the service had set ${ours})`;
  const wants = wanted === undefined ? 'the wiki groups give none' : `the wiki groups give ${wanted}`;
  return {
    kind: 'report',
    problem: 'hand_set_level',
    roomId,
    userIds: [userId],
    message: `${userId} has power level ${entry} in ${roomId}, set by hand${was}; ${wants}. Left alone.`,
  };
}

// ---------------------------------------------------------------------------------------------
// Bans

function currentBan(snapshot: RoomSnapshot, userId: string): { reason?: string | undefined; sender: string | null } | undefined {
  const ban = snapshot.bans.get(userId);
  if (ban) return ban;
  return snapshot.members.get(userId) === 'ban' ? { sender: null } : undefined;
}

function planBans(
  desired: ReadonlyMap<string, DesiredBan>,
  snapshot: RoomSnapshot,
  records: ReadonlyMap<string, BanRecord>,
  power: Power,
  inScope: (userId: string) => boolean,
  context: ReconcileContext,
  shortfalls: Shortfalls,
  membership: Map<string, Membership>,
): Action[] {
  const { roomId, botUserId } = snapshot;
  const actions: Action[] = [];
  const act = (action: Action & { kind: 'ban' | 'unban' }) => {
    const problem = power.problem(action.kind, action.userId);
    if (problem) return shortfalls.add(action.kind, problem, action.userId);
    actions.push(action);
    membership.set(action.userId, action.kind === 'ban' ? 'ban' : 'leave');
  };

  for (const userId of candidates(inScope, botUserId, desired.keys(), records.keys())) {
    const want = desired.get(userId);
    const record = records.get(userId);
    const ban = currentBan(snapshot, userId);
    const bots = ban?.sender === botUserId;
    const ours = record !== undefined && bots;
    // The bot's ban with exactly the reason the service would write, but no record: a pass placed
    // it and was killed before recording it. Banning again with the same reason is a no-op for the
    // homeserver (Synapse returns the existing event) and gives the ban its record, so it is lifted
    // when the block ends.
    const unrecorded = record === undefined && bots && ban?.reason === want?.reason;
    if (want) {
      // Re-banning our own ban refreshes its reason when the governing block changed.
      if (!ban || (ours && ban.reason !== want.reason) || unrecorded) act({ kind: 'ban', roomId, userId, reason: want.reason, cause: want.cause });
    } else if (record) {
      if (ours) act({ kind: 'unban', roomId, userId, reason: unbanReason(record.cause, context.now), cause: record.cause });
      else if (!ban) actions.push(forget({ type: 'ban', roomId, userId }, 'the ban was already lifted'));
      else {
        actions.push(forget({ type: 'ban', roomId, userId }, 'the ban in the room is no longer the one the service placed'));
        actions.push({
          kind: 'report',
          problem: 'hand_set_ban',
          roomId,
          userIds: [userId],
          message: `${userId} is banned from ${roomId} by ${ban.sender ?? 'someone else'}, not by this service; the wiki sanction ended but that ban stays.`,
        });
      }
    }
  }
  return actions;
}

// ---------------------------------------------------------------------------------------------
// Gated rooms

function planMembers(
  desired: ReadonlyMap<string, WikiCause>,
  snapshot: RoomSnapshot,
  records: ReadonlyMap<string, InviteRecord>,
  power: Power,
  inScope: (userId: string) => boolean,
  shortfalls: Shortfalls,
  afterBans: ReadonlyMap<string, Membership>,
): Action[] {
  const { roomId, botUserId } = snapshot;
  const actions: Action[] = [];
  for (const userId of candidates(inScope, botUserId, desired.keys(), records.keys())) {
    const want = desired.get(userId);
    const record = records.get(userId);
    const membership = afterBans.get(userId) ?? snapshot.members.get(userId) ?? 'leave';
    if (want) {
      if (record || !(membership === 'leave' || membership === 'knock')) continue;
      const problem = power.problem('invite');
      if (problem) shortfalls.add('invite', problem, userId);
      else actions.push({ kind: 'invite', roomId, userId, cause: want });
    } else if (record) {
      if (membership !== 'join' && membership !== 'invite') {
        actions.push(forget({ type: 'invite', roomId, userId }, `no longer in the room (${membership})`));
        continue;
      }
      const problem = power.problem('kick', userId);
      if (problem) shortfalls.add('kick', problem, userId);
      else actions.push({ kind: 'kick', roomId, userId, reason: kickReason(record.cause), cause: record.cause });
    }
  }
  return actions;
}

// ---------------------------------------------------------------------------------------------
// Suspensions and the policy list

function reconcileSuspensions(desired: DesiredState, actual: ActualState, index: RecordIndex, inScope: (userId: string) => boolean): Action[] {
  const actions: Action[] = [];
  const isSuspended = (userId: string) => (actual.suspended ? actual.suspended.has(userId) : index.suspensions.has(userId));
  for (const userId of candidates(inScope, '', desired.suspensions.keys(), index.suspensions.keys())) {
    const want = desired.suspensions.get(userId);
    const record = index.suspensions.get(userId);
    if (want) {
      if (!isSuspended(userId)) actions.push({ kind: 'suspend', userId, cause: want, ...(desired.suspendMeasure === 'lock' && { measure: 'lock' as const }) });
    } else if (record) {
      if (isSuspended(userId)) actions.push({ kind: 'unsuspend', userId, cause: record.cause, ...(record.measure && { measure: record.measure }) });
      else actions.push(forget({ type: 'suspension', userId }, 'the account was already unsuspended'));
    }
  }
  return actions;
}

/**
 * Sessions are ended once per sanction: a record says it was done, and while it stands the
 * provider refuses the person's tokens. When the sanction ends only the record goes (there is
 * nothing in Matrix to undo); the person may then sign in again.
 */
function reconcileSessionEnds(desired: DesiredState, index: RecordIndex, inScope: (userId: string) => boolean): Action[] {
  const actions: Action[] = [];
  for (const userId of candidates(inScope, '', desired.sessionEnds.keys(), index.sessionEnds.keys())) {
    const want = desired.sessionEnds.get(userId);
    if (want && !index.sessionEnds.has(userId)) actions.push({ kind: 'end_sessions', userId, centralId: want.centralId, cause: want.cause });
    else if (!want && index.sessionEnds.has(userId)) actions.push(forget({ type: 'session_end', userId }, 'the sanction ended: the person may sign in again'));
  }
  return actions;
}

function sameRule(current: Record<string, unknown> | undefined, content: PolicyRuleContent): boolean {
  return current?.entity === content.entity && current.recommendation === content.recommendation && current.reason === content.reason;
}

function reconcilePolicyList(
  rules: ReadonlyMap<string, DesiredRule>,
  subscribers: readonly string[],
  snapshot: RoomSnapshot,
  records: ReadonlyMap<string, PolicyRuleRecord>,
  inScope: (userId: string) => boolean,
  fullPass: boolean,
): Action[] {
  const { roomId } = snapshot;
  const power = new Power(snapshot);
  const shortfalls = new Shortfalls();
  if (fullPass) checkDuties(power, ['publish_policy'], shortfalls);
  const actions: Action[] = [];
  const stateKeys = new Set<string>();
  for (const [stateKey, rule] of rules) if (inScope(rule.entity)) stateKeys.add(stateKey);
  for (const [stateKey, record] of records) if (inScope(record.entity)) stateKeys.add(stateKey);

  for (const stateKey of [...stateKeys].sort()) {
    const want = rules.get(stateKey);
    const record = records.get(stateKey);
    const current = snapshot.policyRules?.get(stateKey);
    const live = current !== undefined && Object.keys(current).length > 0;
    if (want) {
      if (sameRule(current, want.content)) continue;
      const problem = power.problem('publish_policy');
      if (problem) shortfalls.add('publish_policy', problem, want.entity);
      else actions.push({ kind: 'publish_policy', roomId, eventType: POLICY_RULE_USER, stateKey, content: want.content, cause: want.cause });
    } else if (record) {
      if (!live) {
        actions.push(forget({ type: 'policy_rule', roomId, stateKey }, 'the rule was already withdrawn'));
        continue;
      }
      const problem = power.problem('retract_policy');
      if (problem) shortfalls.add('retract_policy', problem, record.entity);
      else actions.push({ kind: 'retract_policy', roomId, eventType: POLICY_RULE_USER, stateKey, cause: record.cause });
    }
  }
  if (fullPass) actions.push(...planSubscribers(subscribers, snapshot, power, shortfalls));
  return [...actions, ...shortfalls.reports(roomId)];
}

/**
 * The bots that read the list are nobody's wiki state, so only full passes look at them. Nothing is
 * recorded: the configuration says they belong, so one that left (or declined) is invited again at
 * the next full pass, and one taken out of the configuration is left where it is.
 */
function planSubscribers(subscribers: readonly string[], snapshot: RoomSnapshot, power: Power, shortfalls: Shortfalls): Action[] {
  const { roomId } = snapshot;
  const actions: Action[] = [];
  for (const userId of subscribers) {
    const membership = snapshot.members.get(userId);
    if (membership === 'join' || membership === 'invite') continue;
    if (membership === 'ban') {
      const by = snapshot.bans.get(userId)?.sender ?? 'someone';
      actions.push({
        kind: 'report',
        problem: 'hand_set_ban',
        roomId,
        userIds: [userId],
        message: `${userId} reads the policy list (moderation.policy_list.subscribers) but is banned from ${roomId} by ${by}, so it cannot read the rules; the ban stays.`,
      });
      continue;
    }
    const problem = power.problem('invite');
    if (problem) shortfalls.add('invite', problem, userId);
    else actions.push({ kind: 'invite_subscriber', roomId, userId });
  }
  return actions;
}

// ---------------------------------------------------------------------------------------------
// Record keeping, for the executor and the store

/** Actions that change something in Matrix (everything but reports and forgotten records). */
export function isMatrixChange(action: Action): boolean {
  return action.kind !== 'report' && action.kind !== 'forget';
}

const inRoom = (r: { roomId: string; userId: string }) => `${r.roomId} ${r.userId}`;

function keyed<T>(list: readonly T[], key: (record: T) => string): Map<string, T> {
  return new Map(list.map((record) => [key(record), record]));
}

/**
 * The records after `actions` were carried out: what the store must write once each action has
 * succeeded (an action that failed leaves its record as it was). One record per room and user
 * (per room and state key for policy rules, per user for suspensions); the latest action wins.
 */
export function recordsAfter(records: OwnershipRecords, actions: readonly Action[]): OwnershipRecords {
  const bans = keyed(records.bans, inRoom);
  const levels = keyed(records.levels, inRoom);
  const invites = keyed(records.invites, inRoom);
  const policyRules = keyed(records.policyRules, (r) => `${r.roomId} ${r.stateKey}`);
  const suspensions = keyed(records.suspensions, (r) => r.userId);
  const sessionEnds = keyed(records.sessionEnds, (r) => r.userId);
  for (const a of actions) {
    switch (a.kind) {
      case 'ban':
        bans.set(inRoom(a), { roomId: a.roomId, userId: a.userId, cause: a.cause });
        break;
      case 'unban':
        bans.delete(inRoom(a));
        break;
      case 'set_power_levels':
        for (const { userId, to, cause } of a.changes) {
          const key = inRoom({ roomId: a.roomId, userId });
          if (to === null) levels.delete(key);
          else levels.set(key, { roomId: a.roomId, userId, level: to, cause });
        }
        break;
      case 'invite':
        invites.set(inRoom(a), { roomId: a.roomId, userId: a.userId, cause: a.cause });
        break;
      case 'kick':
        invites.delete(inRoom(a));
        break;
      case 'suspend':
        suspensions.set(a.userId, { userId: a.userId, cause: a.cause, ...(a.measure && { measure: a.measure }) });
        break;
      case 'unsuspend':
        suspensions.delete(a.userId);
        break;
      case 'end_sessions':
        sessionEnds.set(a.userId, { userId: a.userId, cause: a.cause });
        break;
      case 'publish_policy':
        policyRules.set(`${a.roomId} ${a.stateKey}`, { roomId: a.roomId, stateKey: a.stateKey, entity: a.content.entity, cause: a.cause });
        break;
      case 'retract_policy':
        policyRules.delete(`${a.roomId} ${a.stateKey}`);
        break;
      case 'forget': {
        const ref = a.record;
        if (ref.type === 'policy_rule') policyRules.delete(`${ref.roomId} ${ref.stateKey}`);
        else if (ref.type === 'suspension' || ref.type === 'session_end') (ref.type === 'suspension' ? suspensions : sessionEnds).delete(ref.userId);
        else ({ ban: bans, level: levels, invite: invites } as const)[ref.type].delete(inRoom(ref));
        break;
      }
      case 'report':
        break;
    }
  }
  return {
    bans: [...bans.values()],
    levels: [...levels.values()],
    invites: [...invites.values()],
    policyRules: [...policyRules.values()],
    suspensions: [...suspensions.values()],
    sessionEnds: [...sessionEnds.values()],
  };
}
