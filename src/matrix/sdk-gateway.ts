// The real gateway, over matrix-js-sdk. We use the sdk's client for what it does well (URL and
// auth header building, Matrix error parsing including `retry_after_ms` and Retry-After) but
// never start it: no /sync loop, no stores, no crypto. Its own retrying lives in the scheduler of
// its event-sending pipeline, so this class adds the one retry policy every request shares, and
// counts requests through the fetch function it hands the sdk.
import { randomUUID } from 'node:crypto';
import { setTimeout as sleepFor } from 'node:timers/promises';
import { createClient, Method, type MatrixClient } from 'matrix-js-sdk';
import { z } from 'zod';
import type { Logger } from '../log.ts';
import { ABORTED, badResponse, MatrixError, toMatrixError } from './errors.ts';
import type { Membership, MatrixGateway, PowerLevelsContent, RoomSnapshot, UserStatus, WriteOutcome } from './gateway.ts';
import { defaultRetryOptions, retryDelay, type RetryOptions } from './retry.ts';
import { spaceChildrenOf, stateEvents, toRoomSnapshot } from './snapshot.ts';
import { report, topics } from '../observe.ts';

export interface SdkGatewayOptions {
  /** Client-server API base URL, e.g. `https://matrix.example.org`. */
  baseUrl: string;
  accessToken: string;
  logger: Logger;
  /** Skips the whoami request when the bot's user id is already known. */
  userId?: string;
  /** Per try; default 30 s. */
  requestTimeoutMs?: number;
  retry?: Partial<RetryOptions>;
  /** Aborting it ends requests and waits in progress (shutdown). */
  signal?: AbortSignal;
  /** For tests. */
  fetch?: typeof globalThis.fetch;
  random?: () => number;
}

const SYNAPSE_ADMIN_V1 = '/_synapse/admin/v1';
const SYNAPSE_ADMIN_V2 = '/_synapse/admin/v2';

type MembershipAction = 'ban' | 'unban' | 'invite' | 'kick';

/** When a refused membership action is refused because its target is already where we want it. */
const ALREADY: Record<MembershipAction, (m: Membership) => boolean> = {
  ban: (m) => m === 'ban',
  unban: (m) => m !== 'ban',
  invite: (m) => m === 'join' || m === 'invite',
  kick: (m) => m === 'leave' || m === 'ban',
};

const whoamiAnswer = z.object({ user_id: z.string() });
const aliasAnswer = z.object({ room_id: z.string() });
const memberAnswer = z.object({ membership: z.string() });
// Older Synapse versions answer 0/1 for booleans, and lack `suspended` and `locked`.
const flag = z.union([z.boolean(), z.number()]).optional().transform(Boolean);
const externalIdAnswer = z.object({ user_id: z.string().regex(/^@[^:]+:.+$/, 'a Matrix ID') });
const adminUserAnswer = z.object({ name: z.string(), admin: flag, suspended: flag, locked: flag, deactivated: flag, displayname: z.string().nullish() });

const devicesAnswer = z.object({ devices: z.array(z.object({ device_id: z.string() })) });

const enc = encodeURIComponent;

function sdkLogger(log: Logger) {
  // The sdk logs every request at debug; ours are enough, so its chatter goes to trace.
  const at = (level: 'trace' | 'warn' | 'error') => (...msg: unknown[]) => {
    if (log.isLevelEnabled(level)) log[level](msg.map(String).join(' '));
  };
  const logger = { trace: at('trace'), debug: at('trace'), info: at('trace'), warn: at('warn'), error: at('error'), getChild: () => logger };
  return logger;
}

export class SdkMatrixGateway implements MatrixGateway {
  readonly #client: MatrixClient;
  readonly #log: Logger;
  readonly #retry: RetryOptions;
  readonly #timeoutMs: number;
  readonly #signal: AbortSignal | undefined;
  readonly #random: () => number;
  #requests = 0;
  #retries = 0;
  #userId: Promise<string> | undefined;

  constructor(options: SdkGatewayOptions) {
    const fetchFn = options.fetch ?? globalThis.fetch;
    this.#log = options.logger.child({ component: 'matrix' });
    this.#retry = { ...defaultRetryOptions, ...options.retry };
    this.#timeoutMs = options.requestTimeoutMs ?? 30_000;
    this.#signal = options.signal;
    this.#random = options.random ?? Math.random;
    if (options.userId) this.#userId = Promise.resolve(options.userId);
    this.#client = createClient({
      baseUrl: options.baseUrl,
      accessToken: options.accessToken,
      useAuthorizationHeader: true,
      logger: sdkLogger(this.#log.child({ component: 'matrix-js-sdk' })),
      fetchFn: (input, init) => {
        this.#requests += 1;
        return fetchFn(input, init);
      },
    });
  }

  get requestCount(): number {
    return this.#requests;
  }

  /** Tries that failed and were tried again (rate limits included). */
  get retryCount(): number {
    return this.#retries;
  }

  whoami(): Promise<string> {
    if (this.#userId) return this.#userId;
    const asked = this.#request('whoami', Method.Get, '/account/whoami').then((answer) => this.#parse('whoami', whoamiAnswer, answer).user_id);
    // A failed whoami is asked again next time rather than remembered.
    asked.catch(() => {
      if (this.#userId === asked) this.#userId = undefined;
    });
    this.#userId = asked;
    return asked;
  }

  async roomSnapshot(roomId: string): Promise<RoomSnapshot> {
    const botUserId = await this.whoami();
    return toRoomSnapshot(roomId, botUserId, await this.#roomState('room_state', roomId));
  }

  async resolveAlias(alias: string): Promise<string | undefined> {
    const answer = await this.#orNotFound(this.#request('resolve_alias', Method.Get, `/directory/room/${enc(alias)}`));
    return answer === undefined ? undefined : this.#parse('resolve_alias', aliasAnswer, answer).room_id;
  }

  async spaceChildren(spaceId: string): Promise<string[]> {
    return spaceChildrenOf(await this.#roomState('space_state', spaceId));
  }

  ban(roomId: string, userId: string, reason: string): Promise<WriteOutcome> {
    return this.#membership('ban', roomId, userId, reason);
  }

  unban(roomId: string, userId: string, reason?: string): Promise<WriteOutcome> {
    return this.#membership('unban', roomId, userId, reason);
  }

  invite(roomId: string, userId: string, reason?: string): Promise<WriteOutcome> {
    return this.#membership('invite', roomId, userId, reason);
  }

  kick(roomId: string, userId: string, reason: string): Promise<WriteOutcome> {
    return this.#membership('kick', roomId, userId, reason);
  }

  setPowerLevels(roomId: string, content: PowerLevelsContent): Promise<WriteOutcome> {
    return this.sendStateEvent(roomId, 'm.room.power_levels', '', content);
  }

  async sendStateEvent(roomId: string, type: string, stateKey: string, content: Record<string, unknown>): Promise<WriteOutcome> {
    const key = stateKey === '' ? '' : `/${enc(stateKey)}`;
    await this.#request(`state:${type}`, Method.Put, `/rooms/${enc(roomId)}/state/${enc(type)}${key}`, content);
    return 'applied';
  }

  async sendNotice(roomId: string, text: string, html?: string): Promise<WriteOutcome> {
    // Chosen once per notice: the homeserver recognises a retry by it and does not post twice.
    const txnId = `wms.${randomUUID()}`;
    const content = html === undefined ? { msgtype: 'm.notice', body: text } : { msgtype: 'm.notice', body: text, format: 'org.matrix.custom.html', formatted_body: html };
    await this.#request('send_notice', Method.Put, `/rooms/${enc(roomId)}/send/m.room.message/${enc(txnId)}`, content);
    return 'applied';
  }

  async suspend(userId: string, suspended: boolean): Promise<WriteOutcome> {
    await this.#request('admin_suspend', Method.Put, `/suspend/${enc(userId)}`, { suspend: suspended }, SYNAPSE_ADMIN_V1);
    return 'applied';
  }

  async setLocked(userId: string, locked: boolean): Promise<WriteOutcome> {
    // Asked first: the same PUT for a user the homeserver does not have would create one.
    const status = await this.userStatus(userId);
    if (!status || status.locked === locked) return 'unchanged';
    await this.#request('admin_lock', Method.Put, `/users/${enc(userId)}`, { locked }, SYNAPSE_ADMIN_V2);
    return 'applied';
  }

  async logoutDevices(userId: string): Promise<WriteOutcome> {
    const path = `/users/${enc(userId)}`;
    const answer = await this.#orNotFound(this.#request('admin_devices', Method.Get, `${path}/devices`, undefined, SYNAPSE_ADMIN_V2));
    if (answer === undefined) return 'unchanged';
    const devices = this.#parse('admin_devices', devicesAnswer, answer).devices.map((d) => d.device_id);
    if (devices.length === 0) return 'unchanged';
    await this.#request('admin_delete_devices', Method.Post, `${path}/delete_devices`, { devices }, SYNAPSE_ADMIN_V2);
    return 'applied';
  }

  async userStatus(userId: string): Promise<UserStatus | undefined> {
    const answer = await this.#orNotFound(this.#request('admin_user', Method.Get, `/users/${enc(userId)}`, undefined, SYNAPSE_ADMIN_V2));
    if (answer === undefined) return undefined;
    const { name, admin, suspended, locked, deactivated, displayname } = this.#parse('admin_user', adminUserAnswer, answer);
    return { userId: name, admin, suspended, locked, deactivated, displayName: displayname ?? null };
  }

  async userIdForExternalId(authProvider: string, externalId: string): Promise<string | undefined> {
    const path = `/auth_providers/${enc(authProvider)}/users/${enc(externalId)}`;
    const answer = await this.#orNotFound(this.#request('admin_external_id', Method.Get, path, undefined, SYNAPSE_ADMIN_V1));
    return answer === undefined ? undefined : this.#parse('admin_external_id', externalIdAnswer, answer).user_id;
  }

  async setDisplayName(userId: string, displayName: string): Promise<WriteOutcome> {
    await this.#request('admin_set_displayname', Method.Put, `/users/${enc(userId)}`, { displayname: displayName }, SYNAPSE_ADMIN_V2);
    return 'applied';
  }

  async #roomState(endpoint: string, roomId: string) {
    const events = stateEvents(await this.#request(endpoint, Method.Get, `/rooms/${enc(roomId)}/state`));
    if (!events) throw badResponse(endpoint, 'the room state is not a list of events');
    return events;
  }

  /**
   * Homeservers refuse some membership changes whose target is already in the desired state
   * (Synapse: unbanning someone not banned is 403 M_BAD_STATE, kicking someone not in the room and
   * inviting a member are 403 M_FORBIDDEN). Those codes also mean "the bot lacks power", so on a
   * 403 we read the target's membership (one extra request, on this path only) and call it
   * `unchanged` only when it already is what the action wanted.
   */
  async #membership(action: MembershipAction, roomId: string, userId: string, reason?: string): Promise<WriteOutcome> {
    const body = reason ? { user_id: userId, reason } : { user_id: userId };
    try {
      await this.#request(action, Method.Post, `/rooms/${enc(roomId)}/${action}`, body);
      return 'applied';
    } catch (error) {
      if (!(error instanceof MatrixError) || error.status !== 403) throw error;
      const current = await this.#membershipOf(roomId, userId).catch(() => undefined);
      if (current !== undefined && ALREADY[action](current)) return 'unchanged';
      throw error;
    }
  }

  async #membershipOf(roomId: string, userId: string): Promise<Membership> {
    const path = `/rooms/${enc(roomId)}/state/m.room.member/${enc(userId)}`;
    const answer = await this.#orNotFound(this.#request('member_state', Method.Get, path));
    // No membership event at all: the user has never been in the room.
    if (answer === undefined) return 'leave';
    return this.#parse('member_state', memberAnswer, answer).membership as Membership;
  }

  async #orNotFound<T>(request: Promise<T>): Promise<T | undefined> {
    try {
      return await request;
    } catch (error) {
      if (error instanceof MatrixError && error.errcode === 'M_NOT_FOUND') return undefined;
      throw error;
    }
  }

  #parse<T>(endpoint: string, schema: z.ZodType<T>, answer: unknown): T {
    const parsed = schema.safeParse(answer);
    if (!parsed.success) throw badResponse(endpoint, `unexpected answer (${z.prettifyError(parsed.error)})`);
    return parsed.data;
  }

  async #request(endpoint: string, method: Method, path: string, body?: Record<string, unknown>, prefix?: string): Promise<unknown> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.#client.http.authedRequest<unknown>(method, path, undefined, body, {
          prefix,
          abortSignal: this.#abortSignal(),
          inhibitLogoutEmit: true,
          // Required by the sdk's type (browser fetch); Node ignores it.
          priority: 'auto',
        });
      } catch (raw) {
        const error = toMatrixError(endpoint, raw, this.#signal?.aborted ?? false);
        const delayMs = retryDelay(error, attempt, this.#retry, this.#random);
        if (delayMs === undefined) throw error;
        this.#retries += 1;
        const fields = { endpoint, errcode: error.errcode, status: error.status, attempt, delayMs };
        this.#log.warn(fields, error.rateLimited ? 'homeserver rate limit: waiting as asked' : 'homeserver request failed: trying again');
        if (error.rateLimited) report(topics.rateLimitWait, () => ({ seconds: delayMs / 1000 }));
        await this.#wait(endpoint, delayMs);
      }
    }
  }

  /**
   * Our own per-try timeout rather than the sdk's `localTimeoutMs`, whose timer is neither
   * cleared nor unref'd and so holds the process open for its whole length after each request.
   */
  #abortSignal(): AbortSignal {
    const timeout = AbortSignal.timeout(this.#timeoutMs);
    return this.#signal ? AbortSignal.any([timeout, this.#signal]) : timeout;
  }

  async #wait(endpoint: string, ms: number): Promise<void> {
    try {
      await sleepFor(ms, undefined, { signal: this.#signal });
    } catch (cause) {
      throw new MatrixError(endpoint, { errcode: ABORTED, status: 0, retryable: false, detail: 'stopped while waiting to retry', cause });
    }
  }
}
