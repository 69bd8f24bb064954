// A gateway that passes everything to another and tells the benchmark when a ban has landed and
// when a room was read, so latency is measured where the worker's work ends, without adding
// requests of our own to the homeserver it is timing.
import type { MatrixGateway, PowerLevelsContent, RoomSnapshot, UserStatus, WriteOutcome } from '../../src/matrix/index.ts';

export interface GatewayWatcher {
  /** A ban request for this user returned (the ban is in the room's state). */
  banned?(roomId: string, userId: string, at: number): void;
  /** A room snapshot was asked for. */
  snapshot?(roomId: string, at: number): void;
}

export class WatchedGateway implements MatrixGateway {
  readonly #inner: MatrixGateway;
  watcher: GatewayWatcher = {};

  constructor(inner: MatrixGateway) {
    this.#inner = inner;
  }

  get requestCount(): number {
    return this.#inner.requestCount;
  }

  whoami(): Promise<string> {
    return this.#inner.whoami();
  }

  roomSnapshot(roomId: string): Promise<RoomSnapshot> {
    this.watcher.snapshot?.(roomId, performance.now());
    return this.#inner.roomSnapshot(roomId);
  }

  resolveAlias(alias: string): Promise<string | undefined> {
    return this.#inner.resolveAlias(alias);
  }

  spaceChildren(spaceId: string): Promise<string[]> {
    return this.#inner.spaceChildren(spaceId);
  }

  async ban(roomId: string, userId: string, reason: string): Promise<WriteOutcome> {
    const outcome = await this.#inner.ban(roomId, userId, reason);
    this.watcher.banned?.(roomId, userId, performance.now());
    return outcome;
  }

  userIdForExternalId(authProvider: string, externalId: string): Promise<string | undefined> {
    return this.#inner.userIdForExternalId(authProvider, externalId);
  }

  setDisplayName(userId: string, displayName: string): Promise<WriteOutcome> {
    return this.#inner.setDisplayName(userId, displayName);
  }

  unban(roomId: string, userId: string, reason?: string): Promise<WriteOutcome> {
    return this.#inner.unban(roomId, userId, reason);
  }

  invite(roomId: string, userId: string, reason?: string): Promise<WriteOutcome> {
    return this.#inner.invite(roomId, userId, reason);
  }

  kick(roomId: string, userId: string, reason: string): Promise<WriteOutcome> {
    return this.#inner.kick(roomId, userId, reason);
  }

  setPowerLevels(roomId: string, content: PowerLevelsContent): Promise<WriteOutcome> {
    return this.#inner.setPowerLevels(roomId, content);
  }

  sendStateEvent(roomId: string, type: string, stateKey: string, content: Record<string, unknown>): Promise<WriteOutcome> {
    return this.#inner.sendStateEvent(roomId, type, stateKey, content);
  }

  sendNotice(roomId: string, text: string, html?: string): Promise<WriteOutcome> {
    return this.#inner.sendNotice(roomId, text, html);
  }

  logoutDevices(userId: string): Promise<WriteOutcome> {
    return this.#inner.logoutDevices(userId);
  }

  setLocked(userId: string, locked: boolean): Promise<WriteOutcome> {
    return this.#inner.setLocked(userId, locked);
  }

  suspend(userId: string, suspended: boolean): Promise<WriteOutcome> {
    return this.#inner.suspend(userId, suspended);
  }

  userStatus(userId: string): Promise<UserStatus | undefined> {
    return this.#inner.userStatus(userId);
  }
}
