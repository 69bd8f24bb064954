// Matrix Authentication Service's admin API, for homeservers whose accounts MAS holds (MSC3861).
// There Synapse's own device and suspension calls do not reach the sessions that matter: MAS
// issues the access tokens and syncs devices to Synapse from its sessions. So on such a homeserver
// the two account-wide writes of the gateway go to MAS instead:
// - `logoutDevices` finishes every active session of the person at MAS — compatibility sessions
//   (legacy Matrix logins), OAuth 2.0 sessions (Matrix clients), browser sessions — and revokes
//   their personal access tokens; MAS then syncs the devices away from the homeserver;
// - `suspend` and `setLocked` lock the MAS user (no action at all, every token inactive) and
//   unlock it: MAS has no suspension of its own; `userStatus` reports that lock.
// The person is found by their username, which on MAS is the Matrix localpart. The service signs
// in to MAS as a client listed in `policy.data.admin_clients` (client credentials, scope
// `urn:mas:admin`), keeping the token until shortly before it expires. Written against MAS's
// OpenAPI description of `/api/admin/v1` (MAS 1.6 and later: earlier versions lack the finish
// calls).
import { setTimeout as sleepFor } from 'node:timers/promises';
import { z } from 'zod';
import type { Logger } from '../log.ts';
import { ABORTED, badResponse, MatrixError, NETWORK_ERROR } from './errors.ts';
import type { MatrixGateway, UserStatus, WriteOutcome } from './gateway.ts';
import { defaultRetryOptions, retryDelay, type RetryOptions } from './retry.ts';

export interface MasAdminOptions {
  /** Where MAS serves its admin API and token endpoint, e.g. `https://auth.example.org`. */
  baseUrl: string;
  clientId: string;
  clientSecret: string;
  logger: Logger;
  /** Per try; default 30 s. */
  requestTimeoutMs?: number;
  retry?: Partial<RetryOptions>;
  signal?: AbortSignal;
  /** For tests. */
  fetch?: typeof globalThis.fetch;
  random?: () => number;
  clock?: () => number;
}

/** The kinds of session a MAS user has, with the call that ends one and its answer when it already ended. */
const SESSION_KINDS = [
  { list: 'compat-sessions', user: 'filter[user]', end: 'finish', ended: 400 },
  { list: 'oauth2-sessions', user: 'filter[user]', end: 'finish', ended: 400 },
  { list: 'user-sessions', user: 'filter[user]', end: 'finish', ended: 400 },
  // Personal access tokens, by the user they act as; MAS before 1.7 has no such list (404).
  { list: 'personal-sessions', user: 'filter[actor_user]', end: 'revoke', ended: 409, optional: true },
] as const;

const PAGE_SIZE = 100;
/** A token is renewed this long before MAS says it expires. */
const TOKEN_MARGIN_MS = 30_000;

const tokenAnswer = z.object({ access_token: z.string().min(1), expires_in: z.number().positive().optional() });
const userAnswer = z.object({ data: z.object({ id: z.string(), attributes: z.object({ username: z.string(), locked_at: z.string().nullable().optional() }) }) });
const pageAnswer = z.object({
  data: z.array(z.object({ id: z.string() })).nullish(),
  links: z.object({ next: z.string().nullish() }).passthrough(),
});
const errorAnswer = z.object({ errors: z.array(z.object({ title: z.string() })).min(1) });
const oauthErrorAnswer = z.object({ error: z.string(), error_description: z.string().optional() });

interface HttpAnswer {
  status: number;
  body: unknown;
}

export class MasAdminClient {
  readonly #options: MasAdminOptions;
  readonly #log: Logger;
  readonly #retry: RetryOptions;
  readonly #fetch: typeof globalThis.fetch;
  readonly #clock: () => number;
  #token: Promise<{ value: string; until: number }> | undefined;
  #requests = 0;

  constructor(options: MasAdminOptions) {
    this.#options = options;
    this.#log = options.logger.child({ component: 'mas' });
    this.#retry = { ...defaultRetryOptions, ...options.retry };
    this.#fetch = options.fetch ?? globalThis.fetch;
    this.#clock = options.clock ?? Date.now;
  }

  get requestCount(): number {
    return this.#requests;
  }

  /** The MAS user with this username (the Matrix localpart), or undefined when MAS has none. */
  async user(username: string): Promise<{ id: string; locked: boolean } | undefined> {
    const answer = await this.#admin('mas_user', 'GET', `/users/by-username/${encodeURIComponent(username)}`, [404]);
    if (answer.status === 404) return undefined;
    const { data } = parse('mas_user', userAnswer, answer.body);
    return { id: data.id, locked: Boolean(data.attributes.locked_at) };
  }

  /** Ends every active session and personal token of the user; how many it ended. */
  async endSessions(userId: string): Promise<number> {
    let ended = 0;
    for (const kind of SESSION_KINDS) {
      const ids = await this.#activeIds(kind.list, kind.user, userId, 'optional' in kind);
      for (const id of ids) {
        // One that ended between the list and now (the person logged out) is as good as ended by us.
        const answer = await this.#admin(`mas_${kind.end}`, 'POST', `/${kind.list}/${encodeURIComponent(id)}/${kind.end}`, [kind.ended]);
        if (answer.status !== kind.ended) ended += 1;
      }
    }
    return ended;
  }

  /** Locks or unlocks the user; MAS answers the same whether or not it already was. */
  async setLocked(userId: string, locked: boolean): Promise<void> {
    await this.#admin(locked ? 'mas_lock' : 'mas_unlock', 'POST', `/users/${encodeURIComponent(userId)}/${locked ? 'lock' : 'unlock'}`);
  }

  async #activeIds(list: string, userFilter: string, userId: string, optional: boolean): Promise<string[]> {
    const ids: string[] = [];
    let after: string | undefined;
    for (;;) {
      const query = new URLSearchParams({ [userFilter]: userId, 'filter[status]': 'active', 'page[first]': String(PAGE_SIZE), count: 'false' });
      if (after) query.set('page[after]', after);
      const answer = await this.#admin(`mas_list_${list}`, 'GET', `/${list}?${query}`, optional ? [404] : []);
      if (answer.status === 404) return ids;
      const page = parse(`mas_list_${list}`, pageAnswer, answer.body);
      const items = page.data ?? [];
      ids.push(...items.map((item) => item.id));
      if (!page.links.next || items.length === 0) return ids;
      after = items.at(-1)!.id;
    }
  }

  /** An admin API call; the statuses in `expected` are answers, not errors. A refused token is renewed once. */
  async #admin(endpoint: string, method: 'GET' | 'POST', path: string, expected: readonly number[] = []): Promise<HttpAnswer> {
    for (let renewed = false; ; renewed = true) {
      const token = await this.#accessToken();
      const answer = await this.#send(endpoint, `/api/admin/v1${path}`, { method, headers: { authorization: `Bearer ${token}`, accept: 'application/json' } });
      if (answer.status === 401 && !renewed) {
        this.#token = undefined;
        continue;
      }
      if ((answer.status >= 200 && answer.status < 300) || expected.includes(answer.status)) return answer;
      throw refusal(endpoint, answer);
    }
  }

  #accessToken(): Promise<string> {
    const now = this.#clock();
    const current = this.#token;
    if (current) {
      return current.then(
        (t) => (t.until > now ? t.value : this.#renew()),
        () => this.#renew(),
      );
    }
    return this.#renew();
  }

  #renew(): Promise<string> {
    const asked = this.#clock();
    const { clientId, clientSecret } = this.#options;
    // RFC 6749 §2.3.1: the client id and secret are form-encoded before they are joined.
    const basic = Buffer.from(`${encodeURIComponent(clientId)}:${encodeURIComponent(clientSecret)}`).toString('base64');
    const token = this.#send('mas_token', '/oauth2/token', {
      method: 'POST',
      headers: { authorization: `Basic ${basic}`, 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
      body: new URLSearchParams({ grant_type: 'client_credentials', scope: 'urn:mas:admin' }).toString(),
    }).then((answer) => {
      if (answer.status !== 200) throw refusal('mas_token', answer, 'MAS refused the service\'s admin client (is it in policy.data.admin_clients, with this secret?)');
      const { access_token, expires_in } = parse('mas_token', tokenAnswer, answer.body);
      return { value: access_token, until: asked + (expires_in ?? 300) * 1000 - TOKEN_MARGIN_MS };
    });
    this.#token = token;
    return token.then((t) => t.value);
  }

  /** One request, tried again on network failures, 429 and 5xx as the homeserver's are. */
  async #send(endpoint: string, path: string, init: RequestInit): Promise<HttpAnswer> {
    const url = new URL(path, `${this.#options.baseUrl.replace(/\/+$/, '')}/`).toString();
    for (let attempt = 1; ; attempt++) {
      let error: MatrixError;
      try {
        this.#requests += 1;
        const response = await this.#fetch(url, { ...init, signal: this.#signal() });
        const text = await response.text();
        let body: unknown;
        try {
          body = text ? JSON.parse(text) : undefined;
        } catch {
          body = undefined;
        }
        const answer: HttpAnswer = { status: response.status, body };
        if (response.status !== 429 && response.status < 500) return answer;
        error = refusal(endpoint, answer);
      } catch (raw) {
        if (raw instanceof MatrixError) throw raw;
        if (this.#options.signal?.aborted) throw new MatrixError(endpoint, { errcode: ABORTED, status: 0, retryable: false, detail: 'stopped before MAS answered', cause: raw });
        error = new MatrixError(endpoint, { errcode: NETWORK_ERROR, status: 0, retryable: true, detail: `MAS did not answer: ${(raw as Error).message}`, cause: raw });
      }
      const delayMs = retryDelay(error, attempt, this.#retry, this.#options.random);
      if (delayMs === undefined) throw error;
      this.#log.warn({ endpoint, status: error.status, attempt, delayMs }, 'MAS request failed: trying again');
      try {
        await sleepFor(delayMs, undefined, { signal: this.#options.signal });
      } catch (cause) {
        throw new MatrixError(endpoint, { errcode: ABORTED, status: 0, retryable: false, detail: 'stopped while waiting to retry', cause });
      }
    }
  }

  #signal(): AbortSignal {
    const timeout = AbortSignal.timeout(this.#options.requestTimeoutMs ?? 30_000);
    return this.#options.signal ? AbortSignal.any([timeout, this.#options.signal]) : timeout;
  }
}

function parse<T>(endpoint: string, schema: z.ZodType<T>, body: unknown): T {
  const parsed = schema.safeParse(body);
  if (!parsed.success) throw badResponse(endpoint, `unexpected answer from MAS (${z.prettifyError(parsed.error)})`);
  return parsed.data;
}

/**
 * A MAS answer that is not what was asked, as the gateway's error: MAS's own error title when it
 * gave one. A refused token or a missing admin scope is `M_FORBIDDEN`, as a homeserver refusing
 * the bot would be: the service lacks the power, and the next pass tries again.
 */
function refusal(endpoint: string, answer: HttpAnswer, note?: string): MatrixError {
  const { status } = answer;
  const titled = errorAnswer.safeParse(answer.body);
  const oauth = oauthErrorAnswer.safeParse(answer.body);
  const said = titled.success ? titled.data.errors.map((e) => e.title).join('; ') : oauth.success ? [oauth.data.error, oauth.data.error_description].filter(Boolean).join(': ') : `HTTP ${status}`;
  const forbidden = status === 401 || status === 403;
  return new MatrixError(endpoint, {
    errcode: forbidden ? 'M_FORBIDDEN' : status === 429 ? 'M_LIMIT_EXCEEDED' : 'M_UNKNOWN',
    status,
    retryable: status === 429 || status >= 500,
    detail: note ? `${note}: ${said}` : said,
  });
}

/**
 * The gateway with its account-wide writes sent to MAS: `logoutDevices` ends the person's MAS
 * sessions and `suspend` locks them at MAS; everything else goes to the homeserver as before.
 */
export function withMasAccounts(homeserver: MatrixGateway, mas: MasAdminClient): MatrixGateway {
  const localpart = (userId: string) => userId.slice(1, userId.indexOf(':'));
  const accounts = {
    async logoutDevices(userId: string): Promise<WriteOutcome> {
      const user = await mas.user(localpart(userId));
      if (!user) return 'unchanged';
      return (await mas.endSessions(user.id)) > 0 ? 'applied' : 'unchanged';
    },
    async suspend(userId: string, suspended: boolean): Promise<WriteOutcome> {
      const user = await mas.user(localpart(userId));
      if (!user || user.locked === suspended) return 'unchanged';
      await mas.setLocked(user.id, suspended);
      return 'applied';
    },
    // MAS has one measure: a lock.
    setLocked: (userId: string, locked: boolean): Promise<WriteOutcome> => accounts.suspend(userId, locked),
    /** The homeserver's view of the user, suspended and locked as MAS has them. */
    async userStatus(userId: string): Promise<UserStatus | undefined> {
      const [status, user] = await Promise.all([homeserver.userStatus(userId), mas.user(localpart(userId))]);
      if (!user) return status;
      const base = status ?? { userId, admin: false, deactivated: false, displayName: null };
      return { ...base, suspended: user.locked, locked: user.locked };
    },
  };
  return new Proxy(homeserver, {
    get(target, property) {
      if (property === 'logoutDevices' || property === 'suspend' || property === 'setLocked' || property === 'userStatus') return accounts[property];
      if (property === 'requestCount') return target.requestCount + mas.requestCount;
      const value: unknown = Reflect.get(target, property, target);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}
