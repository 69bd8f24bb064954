// policy(wiki state, config) → desired Matrix state. Pure: the clock comes in as `now`.
//
// Decisions worth knowing:
// - A user with several active sanctions is banned while any lasts. The ban carries the cause
//   that lasts longest (never-expiring first), then the most recent, then the most severe (lock,
//   global block, block): the ban lasts exactly as long as that cause, so its reason and expiry
//   stay true for the ban's whole life instead of naming a block that ends first.
// - A sanctioned user (any cause that bans under this config) gets no mirrored privileges: no
//   group power levels and no gated-room invitations anywhere, until the sanction ends.
// - Suppressed (hidden) blocks and locks say only that a sanction exists: no blocker, no reason.
// - Rooms are named by id: resolveRooms (rooms.ts) turns aliases and spaces into ids first.
import type { ModerationConfig } from './config.ts';
import {
  POLICY_RULE_USER,
  type DesiredBan,
  type DesiredLevel,
  type DesiredRoom,
  type DesiredRule,
  type DesiredState,
  type WikiCause,
  type WikiState,
  type WikiUserState,
} from './types.ts';

export interface PolicyContext {
  now: Date;
  /** The homeserver's server name: Matrix IDs are `@<localpart>:<serverName>` unless the homeserver said otherwise. */
  serverName: string;
}

/** Room members see ban reasons; a wiki reason can be long, so it is cut to this many characters. */
const MAX_WIKI_REASON = 400;

const SEVERITY: Record<WikiCause['kind'], number> = {
  global_lock: 4,
  global_block: 3,
  block: 2,
  partial_block: 1,
  global_group: 0,
  group: 0,
};

type GroupLevels = ModerationConfig['group_levels'];

export function policyRuleStateKey(userId: string): string {
  return `rule:${userId}`;
}

export function policy(state: WikiState, config: ModerationConfig, context: PolicyContext): DesiredState {
  const bans = { all: new Map<string, DesiredBan>(), global: new Map<string, DesiredBan>() };
  const suspensions = new Map<string, WikiCause>();
  const sessionEnds = new Map<string, { centralId: string; cause: WikiCause }>();
  // Rooms sharing one group-level table share one map (the default table is shared by most).
  const levelTables = new Map<GroupLevels, Map<string, DesiredLevel>>();
  const tableFor = (table: GroupLevels) => {
    let levels = levelTables.get(table);
    if (!levels) levelTables.set(table, (levels = new Map()));
    return levels;
  };
  for (const room of config.rooms) if (room.power_levels) tableFor(room.group_levels ?? config.group_levels);
  const gated = new Map(config.gated_rooms.map((room) => [idOf(room), new Map<string, WikiCause>()]));
  const scope = new Set<string>();

  for (const user of state.users) {
    const userId = user.account.matrixUserId ?? `@${user.account.localpart}:${context.serverName}`;
    scope.add(userId);
    const sanctions = banCauses(user, state.wiki, config, context.now);
    const all = primary(sanctions);
    const global = primary(sanctions.filter(isGlobal));
    if (all) bans.all.set(userId, { reason: banReason(all), cause: all });
    if (global) bans.global.set(userId, { reason: banReason(global), cause: global });
    const suspension = primary(suspensionCauses(user, state.wiki, config, context.now));
    if (suspension) suspensions.set(userId, suspension);
    const ending = primary(sessionEndCauses(user, state.wiki, config, context.now));
    if (ending) sessionEnds.set(userId, { centralId: user.account.centralId, cause: ending });
    if (all) continue;

    for (const [table, levels] of levelTables) {
      const level = groupLevel(user, state.wiki, table);
      if (level) levels.set(userId, level);
    }
    for (const room of config.gated_rooms) {
      const cause = gateCause(user, state.wiki, room);
      if (cause) gated.get(idOf(room))!.set(userId, cause);
    }
  }

  const rooms: DesiredRoom[] = config.rooms.map((room) => ({
    roomId: idOf(room),
    bans: room.bans === 'none' ? undefined : bans[room.bans],
    levels: room.power_levels ? tableFor(room.group_levels ?? config.group_levels) : undefined,
    members: gated.get(idOf(room)),
  }));
  const managed = new Set(config.rooms.map(idOf));
  for (const room of config.gated_rooms) {
    const roomId = idOf(room);
    if (!managed.has(roomId)) rooms.push({ roomId, bans: undefined, levels: undefined, members: gated.get(roomId) });
  }

  return {
    scope: state.complete ? 'all' : scope,
    rooms,
    suspensions,
    suspendMeasure: config.suspend.measure,
    sessionEnds,
    policyList: config.policy_list && { roomId: idOf(config.policy_list), rules: policyRules(bans[config.policy_list.bans]), subscribers: config.policy_list.subscribers ?? [] },
  };
}

function idOf(room: { room_id?: string | undefined; alias?: string | undefined; space?: string | undefined }): string {
  if (room.room_id === undefined) throw new Error(`${room.alias ?? room.space} is not resolved to room ids: call resolveRooms before policy`);
  return room.room_id;
}

function isGlobal(cause: WikiCause): boolean {
  return cause.kind === 'global_block' || cause.kind === 'global_lock';
}

const isActive = (expiry: Date | null, now: Date) => expiry === null || expiry.getTime() > now.getTime();

function cause(fields: Partial<WikiCause> & Pick<WikiCause, 'kind' | 'wiki'>): WikiCause {
  return { blockId: null, logId: null, by: null, reason: '', timestamp: null, expiry: null, group: null, hidden: false, ...fields };
}

function lockCause(user: WikiUserState, wiki: string): WikiCause | undefined {
  const lock = user.lock;
  if (!lock) return undefined;
  return cause({ kind: 'global_lock', wiki, logId: lock.logId, by: lock.hidden ? null : lock.by, reason: lock.hidden ? '' : lock.reason, timestamp: lock.timestamp, hidden: lock.hidden });
}

function globalBlockCauses(user: WikiUserState, wiki: string, now: Date): WikiCause[] {
  return user.globalBlocks
    // An anon-only global block spares logged-in users, so it never concerns an account.
    .filter((b) => !b.anonOnly && isActive(b.expiry, now))
    .map((b) => cause({ kind: 'global_block', wiki, blockId: b.id, by: b.by, reason: b.reason, timestamp: b.timestamp, expiry: b.expiry }));
}

function banCauses(user: WikiUserState, wiki: string, config: ModerationConfig, now: Date): WikiCause[] {
  const causes: WikiCause[] = [];
  for (const b of user.blocks) {
    if (!isActive(b.expiry, now) || (!b.sitewide && config.partial_blocks === 'ignore')) continue;
    causes.push(cause({
      kind: b.sitewide ? 'block' : 'partial_block',
      wiki,
      blockId: b.id,
      by: b.hidden ? null : b.by,
      reason: b.hidden ? '' : b.reason,
      timestamp: b.timestamp,
      expiry: b.expiry,
      hidden: b.hidden,
    }));
  }
  if (config.global_blocks) causes.push(...globalBlockCauses(user, wiki, now));
  const lock = config.global_locks ? lockCause(user, wiki) : undefined;
  if (lock) causes.push(lock);
  return causes;
}

function suspensionCauses(user: WikiUserState, wiki: string, config: ModerationConfig, now: Date): WikiCause[] {
  const causes = config.suspend.global_block ? globalBlockCauses(user, wiki, now) : [];
  const lock = config.suspend.global_lock ? lockCause(user, wiki) : undefined;
  return lock ? [...causes, lock] : causes;
}

function sessionEndCauses(user: WikiUserState, wiki: string, config: ModerationConfig, now: Date): WikiCause[] {
  const { global_lock: onLock, global_block: onGlobalBlock, sitewide_block: onBlock } = config.sessions;
  const causes = onGlobalBlock ? globalBlockCauses(user, wiki, now) : [];
  // Sitewide local blocks only (a partial block never ends sessions, whatever it does to bans).
  if (onBlock) causes.push(...banCauses(user, wiki, config, now).filter((c) => c.kind === 'block'));
  const lock = onLock ? lockCause(user, wiki) : undefined;
  return lock ? [...causes, lock] : causes;
}

/** Longest-lasting first, then most recent, then most severe, then the highest id. */
function compareCauses(a: WikiCause, b: WikiCause): number {
  const end = (c: WikiCause) => c.expiry?.getTime() ?? Infinity;
  const start = (c: WikiCause) => c.timestamp?.getTime() ?? -Infinity;
  return (
    Math.sign(end(b) - end(a)) ||
    Math.sign(start(b) - start(a)) ||
    SEVERITY[b.kind] - SEVERITY[a.kind] ||
    (b.blockId ?? b.logId ?? 0) - (a.blockId ?? a.logId ?? 0)
  );
}

function primary(causes: WikiCause[]): WikiCause | undefined {
  return causes.length === 0 ? undefined : causes.reduce((best, c) => (compareCauses(c, best) < 0 ? c : best));
}

function groupLevel(user: WikiUserState, wiki: string, table: GroupLevels): DesiredLevel | undefined {
  const candidates = [
    ...user.groups.map((group) => ({ group, level: table.local[group], kind: 'group' as const })),
    ...user.globalGroups.map((group) => ({ group, level: table.global[group], kind: 'global_group' as const })),
  ];
  let best: DesiredLevel | undefined;
  for (const { group, level, kind } of candidates) {
    if (level === undefined || (best && best.level >= level)) continue;
    best = { level, cause: cause({ kind, wiki, group }) };
  }
  return best;
}

function gateCause(user: WikiUserState, wiki: string, room: ModerationConfig['gated_rooms'][number]): WikiCause | undefined {
  const local = room.groups.find((g) => user.groups.includes(g));
  if (local) return cause({ kind: 'group', wiki, group: local });
  const global = room.global_groups.find((g) => user.globalGroups.includes(g));
  return global ? cause({ kind: 'global_group', wiki, group: global }) : undefined;
}

function policyRules(bans: ReadonlyMap<string, DesiredBan>): Map<string, DesiredRule> {
  const rules = new Map<string, DesiredRule>();
  for (const [userId, ban] of bans) {
    rules.set(policyRuleStateKey(userId), {
      entity: userId,
      content: { entity: userId, recommendation: 'm.ban', reason: ban.reason },
      cause: ban.cause,
    });
  }
  return rules;
}

// ---------------------------------------------------------------------------------------------
// Wording: reasons shown in Matrix (ban, unban, kick reasons and policy rules).

const HEADS: Record<WikiCause['kind'], string> = {
  block: 'Blocked',
  partial_block: 'Partially blocked',
  global_block: 'Globally blocked',
  global_lock: 'Global account locked',
  group: 'Member of',
  global_group: 'Global member of',
};

function formatTime(date: Date): string {
  return `${date.toISOString().slice(0, 16).replace('T', ' ')} UTC`;
}

function truncate(text: string, max: number): string {
  const chars = Array.from(text.trim());
  return chars.length <= max ? chars.join('') : `${chars.slice(0, max - 1).join('')}…`;
}

/** What the sanction is, e.g. `block #12 on en.wikipedia.org`. */
export function describeCause(cause: WikiCause): string {
  const where = `on ${cause.wiki}`;
  switch (cause.kind) {
    case 'block':
    case 'partial_block':
      return `${cause.kind === 'block' ? 'block' : 'partial block'} #${cause.blockId} ${where}`;
    case 'global_block':
      return `global block #${cause.blockId} ${where}`;
    case 'global_lock':
      return `global lock ${where}`;
    case 'group':
      return `group ${cause.group} ${where}`;
    case 'global_group':
      return `global group ${cause.group} ${where}`;
  }
}

/** The reason of a mirrored ban, e.g. `Blocked on en.wikipedia.org (block #12 by Admin, until 2030-01-01 00:00 UTC): Vandalism`. */
export function banReason(cause: WikiCause): string {
  const head = `${HEADS[cause.kind]} on ${cause.wiki}`;
  const until = cause.expiry ? `until ${formatTime(cause.expiry)}` : 'indefinitely';
  if (cause.hidden) return `${head} (${until}; details hidden)`;
  const ref = cause.blockId !== null ? `${cause.kind === 'global_block' ? 'global block' : 'block'} #${cause.blockId}` : cause.logId !== null ? `log #${cause.logId}` : undefined;
  const details = [ref, cause.by ? `by ${cause.by}` : undefined].filter(Boolean).join(' ');
  const reason = truncate(cause.reason, MAX_WIKI_REASON);
  return `${head} (${details ? `${details}, ` : ''}${until})${reason ? `: ${reason}` : ''}`;
}

/** Why a ban this service placed is lifted. */
export function unbanReason(cause: WikiCause, now: Date): string {
  const what = cause.hidden ? `A sanction on ${cause.wiki}` : capitalize(describeCause(cause));
  return cause.expiry !== null && cause.expiry.getTime() <= now.getTime() ? `${what} expired` : `${what} is no longer in force`;
}

export function kickReason(cause: WikiCause): string {
  return `No longer in ${describeCause(cause)}`;
}

function capitalize(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1);
}
