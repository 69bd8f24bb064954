// An in-memory homeserver behind the MatrixGateway interface, for executor and worker tests:
// rooms with members, bans (with their sender) and power levels, aliases and spaces; every write
// logged; any write can be made to fail, and any read (`failReads`).
import type { BanInfo, Membership, MatrixGateway, PowerLevelsContent, RoomSnapshot, UserStatus, WriteOutcome } from '../../src/matrix/index.ts';
import { MatrixError } from '../../src/matrix/index.ts';

export interface FakeRoom {
  members: Map<string, Membership>;
  bans: Map<string, BanInfo>;
  powerLevels: PowerLevelsContent;
  state: Map<string, Record<string, unknown>>;
}

export type FakeCall =
  | { method: 'ban' | 'unban' | 'kick' | 'invite'; roomId: string; userId: string; reason?: string | undefined }
  | { method: 'setPowerLevels'; roomId: string; content: PowerLevelsContent }
  | { method: 'sendStateEvent'; roomId: string; type: string; stateKey: string; content: Record<string, unknown> }
  | { method: 'sendNotice'; roomId: string; text: string }
  | { method: 'suspend'; userId: string; suspended: boolean }
  | { method: 'setLocked'; userId: string; locked: boolean }
  | { method: 'logoutDevices'; userId: string }
  | { method: 'setDisplayName'; userId: string; displayName: string };

export function forbidden(endpoint = 'ban'): MatrixError {
  return new MatrixError(endpoint, { errcode: 'M_FORBIDDEN', status: 403, retryable: false, detail: 'You do not have permission' });
}

export function rateLimited(endpoint = 'ban'): MatrixError {
  return new MatrixError(endpoint, { errcode: 'M_LIMIT_EXCEEDED', status: 429, retryable: true, retryAfterMs: 120_000, detail: 'Too many requests' });
}

export class FakeMatrix implements MatrixGateway {
  readonly bot: string;
  readonly rooms = new Map<string, FakeRoom>();
  readonly suspended = new Set<string>();
  readonly locked = new Set<string>();
  /** Each user's devices (their access tokens), as the admin API lists them. */
  readonly devices = new Map<string, string[]>();
  /** Successful writes, in order. */
  readonly calls: FakeCall[] = [];
  /** Decides whether a write fails (return an error to throw it). */
  fail: (call: FakeCall) => Error | undefined = () => undefined;
  /** Alias → room id. */
  readonly aliases = new Map<string, string>();
  /** Space id → its child rooms (the space must also be a room, for the bot to read it). */
  readonly spaces = new Map<string, string[]>();
  /** Decides whether reading a room's state fails (the homeserver down, or the bot not in the room). */
  failSnapshot: (roomId: string) => Error | undefined = () => undefined;
  /** Decides whether a read of an alias or a space fails, like `fail` for writes. */
  failReads: (endpoint: 'resolve_alias' | 'space_state', target: string) => Error | undefined = () => undefined;
  /** Awaited before each write is carried out, to hold it in flight. */
  hold: ((call: FakeCall) => Promise<void>) | undefined;
  requestCount = 0;
  /**
   * What Synapse's `user_external_ids` holds: `<auth provider> <external id>` → Matrix ID. A
   * lookup of anything else answers as Synapse's 404 M_NOT_FOUND does (undefined).
   */
  readonly externalIds = new Map<string, string>();
  /** Decides whether an external id lookup fails (a 5xx, the network), like `failReads`. */
  failLookup: (authProvider: string, externalId: string) => Error | undefined = () => undefined;
  readonly lookups: { authProvider: string; externalId: string }[] = [];
  readonly displayNames = new Map<string, string>();

  constructor(bot: string) {
    this.bot = bot;
  }

  addRoom(roomId: string, options: { members?: string[]; users?: Record<string, number> } = {}): FakeRoom {
    const room: FakeRoom = {
      members: new Map([this.bot, ...(options.members ?? [])].map((id) => [id, 'join' as Membership])),
      bans: new Map(),
      powerLevels: { users: { [this.bot]: 100, ...options.users }, users_default: 0, ban: 50, kick: 50, invite: 0, state_default: 50, events: {} },
      state: new Map(),
    };
    this.rooms.set(roomId, room);
    return room;
  }

  /** Calls of one method. */
  writes(method: FakeCall['method']): FakeCall[] {
    return this.calls.filter((c) => c.method === method);
  }

  async whoami(): Promise<string> {
    return this.bot;
  }

  async roomSnapshot(roomId: string): Promise<RoomSnapshot> {
    this.requestCount += 1;
    const error = this.failSnapshot(roomId);
    if (error) throw error;
    const room = this.#room(roomId, 'room_state');
    return {
      roomId,
      members: new Map(room.members),
      bans: new Map(room.bans),
      powerLevels: structuredClone(room.powerLevels),
      roomVersion: '11',
      botUserId: this.bot,
    };
  }

  /** A space the bot is in, listing these rooms as its children. */
  addSpace(spaceId: string, children: string[]): FakeRoom {
    this.spaces.set(spaceId, children);
    return this.addRoom(spaceId);
  }

  async resolveAlias(alias: string): Promise<string | undefined> {
    this.#read('resolve_alias', alias);
    return this.aliases.get(alias);
  }

  async spaceChildren(spaceId: string): Promise<string[]> {
    this.#read('space_state', spaceId);
    this.#room(spaceId, 'space_state');
    return [...(this.spaces.get(spaceId) ?? [])];
  }

  ban(roomId: string, userId: string, reason: string): Promise<WriteOutcome> {
    return this.#write({ method: 'ban', roomId, userId, reason }, (room) => {
      room.members.set(userId, 'ban');
      room.bans.set(userId, { reason, sender: this.bot });
    });
  }

  unban(roomId: string, userId: string, reason?: string): Promise<WriteOutcome> {
    return this.#write({ method: 'unban', roomId, userId, reason }, (room) => {
      if (!room.bans.delete(userId)) return 'unchanged';
      room.members.set(userId, 'leave');
    });
  }

  invite(roomId: string, userId: string, reason?: string): Promise<WriteOutcome> {
    return this.#write({ method: 'invite', roomId, userId, ...(reason !== undefined && { reason }) }, (room) => void room.members.set(userId, 'invite'));
  }

  kick(roomId: string, userId: string, reason: string): Promise<WriteOutcome> {
    return this.#write({ method: 'kick', roomId, userId, reason }, (room) => void room.members.set(userId, 'leave'));
  }

  setPowerLevels(roomId: string, content: PowerLevelsContent): Promise<WriteOutcome> {
    return this.#write({ method: 'setPowerLevels', roomId, content: structuredClone(content) }, (room) => {
      room.powerLevels = structuredClone(content);
    });
  }

  sendStateEvent(roomId: string, type: string, stateKey: string, content: Record<string, unknown>): Promise<WriteOutcome> {
    return this.#write({ method: 'sendStateEvent', roomId, type, stateKey, content }, (room) => void room.state.set(`${type}\u0000${stateKey}`, content));
  }

  sendNotice(roomId: string, text: string): Promise<WriteOutcome> {
    return this.#write({ method: 'sendNotice', roomId, text }, () => undefined);
  }

  async suspend(userId: string, suspended: boolean): Promise<WriteOutcome> {
    const call: FakeCall = { method: 'suspend', userId, suspended };
    this.#check(call);
    if (suspended) this.suspended.add(userId);
    else this.suspended.delete(userId);
    this.calls.push(call);
    return 'applied';
  }

  async setLocked(userId: string, locked: boolean): Promise<WriteOutcome> {
    const call: FakeCall = { method: 'setLocked', userId, locked };
    this.#check(call);
    if (locked) this.locked.add(userId);
    else this.locked.delete(userId);
    this.calls.push(call);
    return 'applied';
  }

  async logoutDevices(userId: string): Promise<WriteOutcome> {
    const call: FakeCall = { method: 'logoutDevices', userId };
    this.#check(call);
    const had = this.devices.get(userId) ?? [];
    this.devices.delete(userId);
    this.calls.push(call);
    return had.length > 0 ? 'applied' : 'unchanged';
  }

  async userStatus(userId: string): Promise<UserStatus | undefined> {
    return { userId, admin: false, suspended: this.suspended.has(userId), locked: this.locked.has(userId), deactivated: false, displayName: this.displayNames.get(userId) ?? null };
  }

  /** Synapse gives the user who signs in with this `sub` this Matrix ID. */
  signIn(authProvider: string, externalId: string, userId: string): void {
    this.externalIds.set(`${authProvider} ${externalId}`, userId);
  }

  async userIdForExternalId(authProvider: string, externalId: string): Promise<string | undefined> {
    this.requestCount += 1;
    this.lookups.push({ authProvider, externalId });
    const error = this.failLookup(authProvider, externalId);
    if (error) throw error;
    return this.externalIds.get(`${authProvider} ${externalId}`);
  }

  async setDisplayName(userId: string, displayName: string): Promise<WriteOutcome> {
    const call: FakeCall = { method: 'setDisplayName', userId, displayName };
    this.#check(call);
    this.displayNames.set(userId, displayName);
    this.calls.push(call);
    return 'applied';
  }

  #room(roomId: string, endpoint: string): FakeRoom {
    const room = this.rooms.get(roomId);
    if (!room) throw new MatrixError(endpoint, { errcode: 'M_FORBIDDEN', status: 403, retryable: false, detail: 'not in room' });
    return room;
  }

  #read(endpoint: 'resolve_alias' | 'space_state', target: string): void {
    this.requestCount += 1;
    const error = this.failReads(endpoint, target);
    if (error) throw error;
  }

  #check(call: FakeCall): void {
    this.requestCount += 1;
    const error = this.fail(call);
    if (error) throw error;
  }

  async #write(call: FakeCall & { roomId: string }, change: (room: FakeRoom) => void | 'unchanged'): Promise<WriteOutcome> {
    await this.hold?.(call);
    this.#check(call);
    const room = call.method === 'sendNotice' ? undefined : this.#room(call.roomId, call.method);
    const result = room ? change(room) : undefined;
    this.calls.push(call);
    return result === 'unchanged' ? 'unchanged' : 'applied';
  }
}
