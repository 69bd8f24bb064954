// Reading a room from its full state (`GET /rooms/{id}/state`), and the power-level rules the
// reconciler needs to judge it. Pure functions, so room fixtures test them without a homeserver.
import { z } from 'zod';
import type { BanInfo, Membership, PowerLevelsContent, RoomSnapshot } from './gateway.ts';

const stateEvent = z.object({
  type: z.string(),
  state_key: z.string(),
  sender: z.string(),
  content: z.record(z.string(), z.unknown()),
});
type StateEvent = z.infer<typeof stateEvent>;

const POLICY_RULE_USER = 'm.policy.rule.user';

const MEMBERSHIPS: ReadonlySet<string> = new Set<Membership>(['join', 'invite', 'leave', 'ban', 'knock']);

/**
 * The state events of an answer. One malformed event is skipped rather than failing the room: a
 * reconciler that cannot read one member would otherwise leave the whole room unmanaged.
 */
export function stateEvents(answer: unknown): StateEvent[] | undefined {
  if (!Array.isArray(answer)) return undefined;
  const events: StateEvent[] = [];
  for (const raw of answer) {
    const parsed = stateEvent.safeParse(raw);
    if (parsed.success) events.push(parsed.data);
  }
  return events;
}

/**
 * Room versions whose creators have infinite power (MSC4289): 12 and later, and the
 * `org.matrix.hydra.*` versions that previewed it.
 */
export function creatorsArePrivileged(roomVersion: string): boolean {
  if (/^\d+$/.test(roomVersion)) return Number(roomVersion) >= 12;
  return roomVersion.startsWith('org.matrix.hydra.');
}

function creatorsOf(create: StateEvent): string[] {
  const additional = create.content.additional_creators;
  const extra = Array.isArray(additional) ? additional.filter((id): id is string => typeof id === 'string') : [];
  return [...new Set([create.sender, ...extra])];
}

export function toRoomSnapshot(roomId: string, botUserId: string, events: StateEvent[]): RoomSnapshot {
  const members = new Map<string, Membership>();
  const bans = new Map<string, BanInfo>();
  let powerLevels: PowerLevelsContent = {};
  let create: StateEvent | undefined;
  const policyRules = new Map<string, Record<string, unknown>>();
  for (const event of events) {
    if (event.type === 'm.room.member') {
      const membership = event.content.membership;
      if (typeof membership !== 'string' || !MEMBERSHIPS.has(membership)) continue;
      members.set(event.state_key, membership as Membership);
      if (membership === 'ban') {
        const reason = event.content.reason;
        bans.set(event.state_key, typeof reason === 'string' ? { reason, sender: event.sender } : { sender: event.sender });
      }
    } else if (event.state_key === '' && event.type === 'm.room.power_levels') {
      powerLevels = event.content as PowerLevelsContent;
    } else if (event.state_key === '' && event.type === 'm.room.create') {
      create = event;
    } else if (event.type === POLICY_RULE_USER) {
      policyRules.set(event.state_key, event.content);
    }
  }
  // Room version 1 rooms may omit it: the spec says an absent room_version means "1".
  const version = create?.content.room_version;
  const roomVersion = typeof version === 'string' ? version : '1';
  const snapshot: RoomSnapshot = { roomId, members, bans, powerLevels, roomVersion, botUserId, policyRules };
  if (create && creatorsArePrivileged(roomVersion)) snapshot.creators = creatorsOf(create);
  return snapshot;
}

/** The direct children of a space: `m.space.child` events whose `via` is a non-empty list. */
export function spaceChildrenOf(events: StateEvent[]): string[] {
  return events
    .filter((e) => e.type === 'm.space.child' && Array.isArray(e.content.via) && e.content.via.length > 0)
    .map((e) => e.state_key);
}

function level(value: unknown, fallback: number): number {
  return typeof value === 'number' && Number.isFinite(value) ? value : fallback;
}

/** A user's power level; `Infinity` for the creators of a v12 room. */
export function userPowerLevel(snapshot: RoomSnapshot, userId: string): number {
  if (snapshot.creators?.includes(userId)) return Infinity;
  const { users, users_default } = snapshot.powerLevels;
  return level(users?.[userId], level(users_default, 0));
}

/** The level a membership action needs, with the spec's defaults for absent keys. */
export function requiredPowerLevel(snapshot: RoomSnapshot, action: 'ban' | 'kick' | 'invite' | 'redact'): number {
  const defaults = { ban: 50, kick: 50, invite: 0, redact: 50 };
  return level(snapshot.powerLevels[action], defaults[action]);
}

/** The level needed to send an event of this type (state events: `m.room.power_levels`, policy rules…). */
export function requiredEventLevel(snapshot: RoomSnapshot, type: string, isState: boolean): number {
  const pl = snapshot.powerLevels;
  const explicit = pl.events?.[type];
  if (typeof explicit === 'number') return explicit;
  // With no power levels event at all, the spec's state_default is 0, not 50.
  const noEvent = Object.keys(pl).length === 0;
  return isState ? level(pl.state_default, noEvent ? 0 : 50) : level(pl.events_default, 0);
}
