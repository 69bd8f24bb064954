import type { Logger } from '../log.ts';
import type { MatrixGateway, PowerLevelsContent, RoomSnapshot, UserStatus, WriteOutcome } from './gateway.ts';

/** A write the dry run did not send. */
export type PlannedWrite =
  | { action: 'ban' | 'kick'; roomId: string; userId: string; reason: string }
  | { action: 'unban' | 'invite'; roomId: string; userId: string; reason?: string }
  | { action: 'set_power_levels'; roomId: string; content: PowerLevelsContent }
  | { action: 'send_state_event'; roomId: string; type: string; stateKey: string; content: Record<string, unknown> }
  | { action: 'send_notice'; roomId: string; text: string; html?: string }
  | { action: 'suspend'; userId: string; suspended: boolean }
  | { action: 'lock'; userId: string; locked: boolean }
  | { action: 'logout_devices'; userId: string }
  | { action: 'set_displayname'; userId: string; displayName: string };

/**
 * Reads go to the homeserver; writes are logged and kept in `planned`, and answer `dry_run`.
 * What the real run would do is what the reconciler planned from the same reads.
 */
export class DryRunGateway implements MatrixGateway {
  readonly #inner: MatrixGateway;
  readonly #log: Logger;
  readonly planned: PlannedWrite[] = [];

  constructor(inner: MatrixGateway, log: Logger) {
    this.#inner = inner;
    this.#log = log.child({ component: 'matrix', dryRun: true });
  }

  get requestCount(): number {
    return this.#inner.requestCount;
  }

  /** The writes planned since the last call, oldest first, and forgets them. */
  takePlanned(): PlannedWrite[] {
    return this.planned.splice(0);
  }

  whoami(): Promise<string> {
    return this.#inner.whoami();
  }

  roomSnapshot(roomId: string): Promise<RoomSnapshot> {
    return this.#inner.roomSnapshot(roomId);
  }

  resolveAlias(alias: string): Promise<string | undefined> {
    return this.#inner.resolveAlias(alias);
  }

  spaceChildren(spaceId: string): Promise<string[]> {
    return this.#inner.spaceChildren(spaceId);
  }

  userStatus(userId: string): Promise<UserStatus | undefined> {
    return this.#inner.userStatus(userId);
  }

  userIdForExternalId(authProvider: string, externalId: string): Promise<string | undefined> {
    return this.#inner.userIdForExternalId(authProvider, externalId);
  }

  setDisplayName(userId: string, displayName: string): Promise<WriteOutcome> {
    return this.#plan({ action: 'set_displayname', userId, displayName });
  }

  ban(roomId: string, userId: string, reason: string): Promise<WriteOutcome> {
    return this.#plan({ action: 'ban', roomId, userId, reason });
  }

  unban(roomId: string, userId: string, reason?: string): Promise<WriteOutcome> {
    return this.#plan(reason === undefined ? { action: 'unban', roomId, userId } : { action: 'unban', roomId, userId, reason });
  }

  invite(roomId: string, userId: string, reason?: string): Promise<WriteOutcome> {
    return this.#plan(reason === undefined ? { action: 'invite', roomId, userId } : { action: 'invite', roomId, userId, reason });
  }

  kick(roomId: string, userId: string, reason: string): Promise<WriteOutcome> {
    return this.#plan({ action: 'kick', roomId, userId, reason });
  }

  setPowerLevels(roomId: string, content: PowerLevelsContent): Promise<WriteOutcome> {
    return this.#plan({ action: 'set_power_levels', roomId, content });
  }

  sendStateEvent(roomId: string, type: string, stateKey: string, content: Record<string, unknown>): Promise<WriteOutcome> {
    return this.#plan({ action: 'send_state_event', roomId, type, stateKey, content });
  }

  sendNotice(roomId: string, text: string, html?: string): Promise<WriteOutcome> {
    return this.#plan(html === undefined ? { action: 'send_notice', roomId, text } : { action: 'send_notice', roomId, text, html });
  }

  logoutDevices(userId: string): Promise<WriteOutcome> {
    return this.#plan({ action: 'logout_devices', userId });
  }

  setLocked(userId: string, locked: boolean): Promise<WriteOutcome> {
    return this.#plan({ action: 'lock', userId, locked });
  }

  suspend(userId: string, suspended: boolean): Promise<WriteOutcome> {
    return this.#plan({ action: 'suspend', userId, suspended });
  }

  async #plan(write: PlannedWrite): Promise<WriteOutcome> {
    this.planned.push(write);
    this.#log.info(summary(write), 'dry run: not sent');
    return 'dry_run';
  }
}

/** Log fields without bulky contents (a power levels event can list thousands of users). */
function summary(write: PlannedWrite): Record<string, unknown> {
  switch (write.action) {
    case 'set_power_levels':
      return { action: write.action, roomId: write.roomId, users: Object.keys(write.content.users ?? {}).length };
    case 'send_notice':
      return { action: write.action, roomId: write.roomId, length: write.text.length };
    default:
      return { ...write };
  }
}
