// The MediaWiki Action API client the worker and the login policy read the wiki with.
//
// Etiquette (Wikimedia API:Etiquette, User-Agent policy): one request in flight per client,
// `maxlag` on every request with a back-off when the wiki says it is lagged or that we are rate
// limited, a descriptive User-Agent with contact details, `continue` pagination. Every answer is
// `format=json&formatversion=2` (real booleans) and is parsed strictly: a malformed answer is a
// WikiApiError naming the module and the field, never a half-read value.
import { z } from 'zod';
import { AppError } from '../http/errors.ts';
import { createLogger, type Logger } from '../log.ts';
import { report, topics } from '../observe.ts';
import {
  blocksAnswer,
  globalBlocksAnswer,
  globalUserInfoAnswer,
  logDetails,
  logEventsAnswer,
  targetOfLogTitle,
  toGlobalBlocks,
  toGlobalUserInfo,
  toWikiBlocks,
  toWikiUsers,
  usersAnswer,
  type GlobalBlock,
  type GlobalUserInfo,
  type LogType,
  type RawLogEntry,
  type WikiBlock,
  type WikiLogEvent,
  type WikiUser,
} from './action-api-results.ts';

export * from './action-api-results.ts';

export type WikiApiErrorKind = 'api' | 'malformed' | 'http' | 'network' | 'timeout';

/** A request to the wiki failed, or its answer could not be read. */
export class WikiApiError extends AppError {
  readonly kind: WikiApiErrorKind;
  /** The module asked, e.g. `list=blocks`. */
  readonly module: string;
  /** The API's error code (`kind: 'api'`), e.g. `maxlag`, `ratelimited`, `baduser_bkusers`. */
  readonly apiCode: string | undefined;
  /** The offending field of a malformed answer, as a path (`query.blocks[0].expiry`). */
  readonly field: string | undefined;
  readonly httpStatus: number | undefined;
  /** The message without the module prefix. */
  readonly detail: string;

  constructor(
    kind: WikiApiErrorKind,
    module: string,
    detail: string,
    extra: { apiCode?: string; field?: string; httpStatus?: number; cause?: unknown } = {},
  ) {
    super(502, `wiki_${kind}`, `Wiki API ${module}: ${detail}`, { expose: false, cause: extra.cause });
    this.name = 'WikiApiError';
    this.kind = kind;
    this.module = module;
    this.apiCode = extra.apiCode;
    this.field = extra.field;
    this.httpStatus = extra.httpStatus;
    this.detail = detail;
  }
}

/**
 * A User-Agent per the Wikimedia policy: our name and version, how to reach the operator, and the
 * runtime. Requests without a way to contact the operator may be blocked, hence the refusal.
 */
export function buildUserAgent(contact: string, version: string): string {
  const trimmed = contact.trim();
  if (!trimmed) {
    throw new Error('wiki.contact is empty: the Wikimedia User-Agent policy requires a contact (an email address or a wiki user page)');
  }
  return `wiki-matrix-sso/${version} (${trimmed}) node/${process.versions.node}`;
}

export type ParamValue = string | number | boolean | readonly string[] | undefined;
export type ApiParams = Record<string, ParamValue>;

export interface ActionApiClientOptions {
  /** The wiki's api.php, e.g. https://meta.wikimedia.org/w/api.php */
  apiUrl: string;
  userAgent: string;
  /** Per attempt. Default 10 s. */
  timeoutMs?: number;
  /** Seconds of replication lag above which the wiki should refuse us. Default 5. */
  maxlag?: number;
  /** Attempts after the first one for lag, rate limits and transient failures. Default 5. */
  maxRetries?: number;
  /** Longest single wait between attempts. Default 60 s. */
  maxBackoffMs?: number;
  /** Upper bound on pages one `continue` walk may fetch. Default 1000. */
  maxPages?: number;
  /**
   * A bot password (Special:BotPasswords) to sign in with: a private wiki answers nothing
   * anonymously, and only an account with `hideuser` sees blocks that hide the name.
   */
  login?: BotPassword;
  fetch?: typeof globalThis.fetch;
  sleep?: (ms: number) => Promise<void>;
  logger?: Logger;
}

/** Special:BotPasswords credentials: the name is `User@botname`. */
export interface BotPassword {
  username: string;
  password: string;
}

/** Where a log reader stopped: entries at or before it are not returned again. */
export interface LogCursor {
  timestamp: Date;
  logId: number;
}

export function logCursorOf(event: WikiLogEvent): LogCursor {
  return { timestamp: event.timestamp, logId: event.logId };
}

/** Users per request: the API's limit for multi-value parameters without apihighlimits. */
const BATCH = 50;
/** Beyond this a GET URL risks proxies' length limits; long user lists go as POST. */
const MAX_GET_QUERY = 2000;

interface Attempt {
  answer?: Record<string, unknown>;
  /** Set when the attempt may be retried after waiting this long. */
  retryAfterMs?: number;
  error?: WikiApiError;
}

export class ActionApiClient {
  readonly #apiUrl: string;
  readonly #userAgent: string;
  readonly #timeoutMs: number;
  readonly #maxlag: number;
  readonly #maxRetries: number;
  readonly #maxBackoffMs: number;
  readonly #maxPages: number;
  readonly #fetch: typeof globalThis.fetch;
  readonly #sleep: (ms: number) => Promise<void>;
  readonly #log: Logger;
  readonly #warned = new Set<string>();
  readonly #login: BotPassword | undefined;
  /** The session cookies the wiki set (only kept when signing in). */
  readonly #cookies = new Map<string, string>();
  #signedIn = false;
  #tail: Promise<unknown> = Promise.resolve();

  constructor(options: ActionApiClientOptions) {
    if (!options.userAgent.trim()) throw new Error('ActionApiClient needs a User-Agent');
    this.#apiUrl = options.apiUrl;
    this.#userAgent = options.userAgent;
    this.#timeoutMs = options.timeoutMs ?? 10_000;
    this.#maxlag = options.maxlag ?? 5;
    this.#maxRetries = options.maxRetries ?? 5;
    this.#maxBackoffMs = options.maxBackoffMs ?? 60_000;
    this.#maxPages = options.maxPages ?? 1000;
    this.#fetch = options.fetch ?? globalThis.fetch;
    this.#sleep = options.sleep ?? ((ms) => new Promise((resolve) => setTimeout(resolve, ms)));
    this.#log = (options.logger ?? createLogger('silent')).child({ component: 'action-api' });
    this.#login = options.login;
  }

  // --- modules ---------------------------------------------------------------------------------

  /**
   * Active blocks of these users (a user may have several), in batches of 50. The wiki refuses
   * a whole batch over one invalid name (`baduser`); such names are left out.
   */
  async getBlocks(users: readonly string[], options: { pageSize?: number } = {}): Promise<WikiBlock[]> {
    return this.#batched(users, isBadUser, async (batch) => {
      const params = {
        action: 'query',
        list: 'blocks',
        bkusers: batch,
        bkprop: ['id', 'user', 'userid', 'by', 'timestamp', 'expiry', 'reason', 'flags', 'restrictions'],
        bklimit: options.pageSize ?? 'max',
      };
      const blocks: WikiBlock[] = [];
      for await (const page of this.paginate('list=blocks', params)) {
        blocks.push(...toWikiBlocks(parse('list=blocks', blocksAnswer, page).query.blocks));
      }
      return blocks;
    });
  }

  /** Accounts with their explicit groups and (one) block, in batches of 50. */
  async getUsers(names: readonly string[]): Promise<WikiUser[]> {
    return this.#users('ususers', names);
  }

  /**
   * Users by local user id, which survives renames (without CentralAuth the OAuth `sub` is this
   * id). An id no visible account has comes back `exists: false` with its `userId`: the account is
   * hidden (suppressed) from this reader, since MediaWiki does not delete accounts.
   */
  async getUsersById(ids: readonly number[]): Promise<WikiUser[]> {
    return this.#users('ususerids', ids.map(String));
  }

  async #users(by: 'ususers' | 'ususerids', keys: readonly string[]): Promise<WikiUser[]> {
    const users: WikiUser[] = [];
    for (const batch of batches(keys)) {
      const params = { action: 'query', list: 'users', [by]: batch, usprop: ['blockinfo', 'groups', 'implicitgroups'] };
      for await (const page of this.paginate('list=users', params)) {
        users.push(...toWikiUsers(parse('list=users', usersAnswer, page).query.users));
      }
    }
    return users;
  }

  /**
   * Log entries of one type in the order they happened (oldest first), after `after` when given.
   * The wiki orders entries by (timestamp, log id); the cursor is that pair, so entries sharing
   * the cursor's second are re-read and skipped rather than missed.
   */
  async *logEvents(type: LogType, options: { after?: LogCursor; since?: Date; pageSize?: number } = {}): AsyncGenerator<WikiLogEvent> {
    const start = options.after?.timestamp ?? options.since;
    const params = {
      action: 'query',
      list: 'logevents',
      letype: type,
      leprop: ['ids', 'title', 'type', 'user', 'timestamp', 'comment', 'details'],
      ledir: 'newer',
      lestart: start ? isoSeconds(start) : undefined,
      lelimit: options.pageSize ?? 'max',
    };
    const module = `list=logevents (${type})`;
    for await (const page of this.paginate(module, params)) {
      const entries = parse(module, logEventsAnswer, page).query.logevents;
      for (const [index, entry] of entries.entries()) {
        if (options.after && !isAfter(entry, options.after)) continue;
        yield toLogEvent(module, entry, index);
      }
    }
  }

  /** CentralAuth: the global account (lock, hidden, global groups, attached accounts). */
  async getGlobalUserInfo(user: string | { id: number }): Promise<GlobalUserInfo> {
    const module = 'meta=globaluserinfo';
    const answer = await this.request(module, {
      action: 'query',
      meta: 'globaluserinfo',
      ...(typeof user === 'string' ? { guiuser: user } : { guiid: user.id }),
      guiprop: ['groups', 'merged'],
    });
    const info = toGlobalUserInfo(parse(module, globalUserInfoAnswer, answer).query.globaluserinfo);
    if (info instanceof z.ZodError) throw malformed(module, info);
    return info;
  }

  /**
   * GlobalBlocking: active global blocks on these usernames or IPs. The wiki refuses a whole
   * batch when one name has no global account (`nosuchuser`); such a batch is asked again name
   * by name, and names without a global account are left out (they cannot be globally blocked).
   */
  async getGlobalBlocks(targets: readonly string[]): Promise<GlobalBlock[]> {
    return this.#batched(targets, isNoSuchUser, (batch) => this.#globalBlocks(batch));
  }

  /**
   * Runs `read` over batches of 50 names. A batch the wiki refuses because of one name
   * (`skippable`) is asked again name by name, leaving out the names it refuses.
   */
  async #batched<T>(names: readonly string[], skippable: (err: unknown) => boolean, read: (batch: string[]) => Promise<T[]>): Promise<T[]> {
    const out: T[] = [];
    for (const batch of batches(names)) {
      try {
        out.push(...(await read(batch)));
        continue;
      } catch (err) {
        if (!skippable(err)) throw err;
      }
      if (batch.length === 1) continue;
      for (const name of batch) {
        try {
          out.push(...(await read([name])));
        } catch (err) {
          if (!skippable(err)) throw err;
        }
      }
    }
    return out;
  }

  async #globalBlocks(targets: string[]): Promise<GlobalBlock[]> {
    const module = 'list=globalblocks';
    const blocks: GlobalBlock[] = [];
    const params = {
      action: 'query',
      list: 'globalblocks',
      bgtargets: targets,
      bgprop: ['id', 'target', 'by', 'timestamp', 'expiry', 'reason'],
      bglimit: 'max',
    };
    for await (const page of this.paginate(module, params)) {
      const parsed = toGlobalBlocks(parse(module, globalBlocksAnswer, page).query.globalblocks);
      if (parsed instanceof z.ZodError) throw malformed(module, parsed);
      blocks.push(...parsed);
    }
    return blocks;
  }

  // --- transport -------------------------------------------------------------------------------

  /** Follows `continue` until the wiki has nothing more, yielding each raw answer. */
  async *paginate(module: string, params: ApiParams): AsyncGenerator<Record<string, unknown>> {
    let cont: Record<string, string> = { continue: '' };
    let previous = '';
    for (let page = 0; page < this.#maxPages; page++) {
      const answer = await this.request(module, { ...params, ...cont });
      yield answer;
      if (answer.continue === undefined) return;
      const next = z.record(z.string(), z.string()).safeParse(answer.continue);
      if (!next.success) throw malformed(module, next.error, ['continue']);
      const key = JSON.stringify(next.data);
      if (key === previous) throw new WikiApiError('malformed', module, `the wiki returned the same continuation twice (${key})`);
      previous = key;
      cont = next.data;
    }
    throw new WikiApiError('malformed', module, `more than ${this.#maxPages} pages; giving up rather than reading forever`);
  }

  /**
   * One API call through the client's queue, with back-off and bounded retries. Resolves with
   * the answer's JSON object once it carries no error.
   */
  request(module: string, params: ApiParams): Promise<Record<string, unknown>> {
    const run = this.#tail.then(() => this.#call(module, params));
    this.#tail = run.catch(() => undefined);
    return run;
  }

  /**
   * With a bot password every request asserts that it is signed in (`assert=user`), so a session
   * the wiki forgot is noticed rather than read as an anonymous answer; it is then signed in
   * again, once per request.
   */
  async #call(module: string, params: ApiParams): Promise<Record<string, unknown>> {
    if (!this.#login) return this.#withRetries(module, params);
    if (!this.#signedIn) await this.#signIn(this.#login);
    try {
      return await this.#withRetries(module, { ...params, assert: 'user' });
    } catch (err) {
      if (!isSessionLost(err)) throw err;
      this.#log.info({ module, code: (err as WikiApiError).apiCode }, 'the wiki session ended; signing in again');
      this.#signedIn = false;
      this.#cookies.clear();
      await this.#signIn(this.#login);
      return this.#withRetries(module, { ...params, assert: 'user' });
    }
  }

  /** `action=login` with a login token, as bot passwords sign in (API:Login). */
  async #signIn(login: BotPassword): Promise<void> {
    const tokens = parse('meta=tokens', loginTokenAnswer, await this.#withRetries('meta=tokens', { action: 'query', meta: 'tokens', type: 'login' }));
    const answer = await this.#withRetries('action=login', { action: 'login', lgname: login.username, lgpassword: login.password, lgtoken: tokens.query.tokens.logintoken }, { post: true });
    const result = parse('action=login', loginAnswer, answer).login;
    if (result.result !== 'Success') {
      throw new WikiApiError('api', 'action=login', `signing in as ${login.username} failed (${result.result})${result.reason ? `: ${reasonText(result.reason)}` : ''}`, {
        apiCode: `login-${result.result.toLowerCase()}`,
      });
    }
    this.#signedIn = true;
    this.#log.info({ user: result.lgusername ?? login.username }, 'signed in to the wiki with a bot password');
  }

  async #withRetries(module: string, params: ApiParams, options: { post?: boolean } = {}): Promise<Record<string, unknown>> {
    for (let attempt = 0; ; attempt++) {
      const started = performance.now();
      const result = await this.#attempt(module, params, attempt, options.post ?? false);
      report(topics.wikiRequest, () => ({ api: 'action' as const, endpoint: moduleName(module), seconds: (performance.now() - started) / 1000, ...(result.error && { error: result.error.kind }) }));
      if (result.answer) return result.answer;
      const error = result.error!;
      if (result.retryAfterMs === undefined) throw error;
      if (attempt >= this.#maxRetries) {
        throw new WikiApiError(error.kind, module, `gave up after ${attempt + 1} attempts: ${error.detail}`, {
          apiCode: error.apiCode,
          httpStatus: error.httpStatus,
          cause: error,
        });
      }
      const wait = Math.min(result.retryAfterMs, this.#maxBackoffMs);
      this.#log.warn({ module, code: error.apiCode ?? error.kind, attempt: attempt + 1, waitMs: wait }, 'wiki asked us to back off; retrying');
      await this.#sleep(wait);
    }
  }

  async #attempt(module: string, params: ApiParams, attempt: number, post: boolean): Promise<Attempt> {
    const backoff = this.#backoff(1_000, attempt);
    let response: Response;
    try {
      response = await this.#send(params, post);
    } catch (err) {
      const timedOut = err instanceof Error && (err.name === 'TimeoutError' || err.name === 'AbortError');
      const error = timedOut
        ? new WikiApiError('timeout', module, `no answer within ${this.#timeoutMs} ms`, { cause: err })
        : new WikiApiError('network', module, `request failed: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
      return { error, retryAfterMs: backoff };
    }
    if (this.#login) this.#keepCookies(response);
    const retryAfter = retryAfterMs(response.headers.get('retry-after'));
    if (!response.ok) {
      await response.body?.cancel().catch(() => {});
      const error = new WikiApiError('http', module, `HTTP ${response.status}`, { httpStatus: response.status });
      const transient = [429, 502, 503, 504].includes(response.status);
      return { error, retryAfterMs: transient ? (retryAfter ?? backoff) : undefined };
    }
    let body: unknown;
    try {
      body = await response.json();
    } catch (err) {
      return { error: new WikiApiError('malformed', module, 'the answer is not JSON', { cause: err }) };
    }
    if (typeof body !== 'object' || body === null || Array.isArray(body)) {
      return { error: new WikiApiError('malformed', module, 'the answer is not a JSON object') };
    }
    const answer = body as Record<string, unknown>;
    this.#noteWarnings(module, answer.warnings);
    if (answer.error === undefined) return { answer };
    return this.#apiError(module, answer.error, retryAfter, attempt);
  }

  /** Exponential: base, 2×base, 4×base… capped. */
  #backoff(baseMs: number, attempt: number): number {
    return Math.min(baseMs * 2 ** attempt, this.#maxBackoffMs);
  }

  #apiError(module: string, raw: unknown, retryAfter: number | undefined, attempt: number): Attempt {
    const parsed = z.object({ code: z.string(), info: z.string().default('') }).safeParse(raw);
    if (!parsed.success) return { error: malformed(module, parsed.error, ['error']) };
    const { code, info } = parsed.data;
    const error = new WikiApiError('api', module, `${code}: ${info}`, { apiCode: code });
    switch (code) {
      case 'maxlag':
        // The wiki sends Retry-After with its lag answer; 5 s is its usual value.
        return { error, retryAfterMs: retryAfter ?? 5_000 };
      case 'ratelimited':
        // Rate limits are counted over minutes; short waits would only spend the next allowance.
        return { error, retryAfterMs: retryAfter ?? this.#backoff(5_000, attempt) };
      default:
        return { error };
    }
  }

  #send(params: ApiParams, post: boolean): Promise<Response> {
    const query = encodeParams({ ...params, format: 'json', formatversion: '2', maxlag: this.#maxlag });
    const headers: Record<string, string> = { 'user-agent': this.#userAgent, accept: 'application/json' };
    if (this.#cookies.size > 0) headers.cookie = [...this.#cookies].map(([name, value]) => `${name}=${value}`).join('; ');
    const signal = AbortSignal.timeout(this.#timeoutMs);
    if (!post && query.length <= MAX_GET_QUERY) {
      return this.#fetch(`${this.#apiUrl}?${query}`, { headers, signal });
    }
    return this.#fetch(this.#apiUrl, {
      method: 'POST',
      headers: { ...headers, 'content-type': 'application/x-www-form-urlencoded' },
      body: query,
      signal,
    });
  }

  /** A minimal cookie jar for the one wiki we talk to: name=value pairs, deleted when expired. */
  #keepCookies(response: Response): void {
    for (const line of response.headers.getSetCookie?.() ?? []) {
      const [pair = '', ...attributes] = line.split(';');
      const eq = pair.indexOf('=');
      if (eq <= 0) continue;
      const name = pair.slice(0, eq).trim();
      const value = pair.slice(eq + 1).trim();
      const expired = attributes.some((a) => {
        const [key = '', v = ''] = a.split('=').map((part) => part.trim());
        return (key.toLowerCase() === 'max-age' && Number(v) <= 0) || (key.toLowerCase() === 'expires' && Date.parse(v) < Date.now());
      });
      if (expired || value === '' || value === 'deleted') this.#cookies.delete(name);
      else this.#cookies.set(name, value);
    }
  }

  /** Warnings (deprecations, unknown parameters) are logged once each, not on every poll. */
  #noteWarnings(module: string, warnings: unknown): void {
    if (warnings === undefined) return;
    const key = `${module} ${JSON.stringify(warnings)}`;
    if (this.#warned.has(key)) return;
    this.#warned.add(key);
    this.#log.warn({ module, warnings }, 'the wiki warned about our request');
  }
}

// --- helpers ---------------------------------------------------------------------------------

const loginTokenAnswer = z.object({ query: z.object({ tokens: z.object({ logintoken: z.string().min(1) }) }) });
const loginAnswer = z.object({
  login: z.object({
    result: z.string(),
    lgusername: z.string().optional(),
    reason: z.union([z.string(), z.object({ text: z.string().optional(), code: z.string().optional() }).passthrough()]).optional(),
  }),
});

function reasonText(reason: string | { text?: string | undefined; code?: string | undefined }): string {
  return typeof reason === 'string' ? reason : (reason.text ?? reason.code ?? '');
}

/**
 * The wiki no longer knows our session: the assertion failed, or (a private wiki checking read
 * rights first) it reads us as anonymous.
 */
function isSessionLost(err: unknown): boolean {
  return err instanceof WikiApiError && ['assertuserfailed', 'assertbotfailed', 'readapidenied'].includes(err.apiCode ?? '');
}

/** A module name for metrics: `list=logevents (block)` counts as `list=logevents`. */
function moduleName(module: string): string {
  return module.replace(/ \(.*\)$/, '');
}

function isNoSuchUser(err: unknown): boolean {
  return err instanceof WikiApiError && err.apiCode === 'nosuchuser';
}

/** `baduser`, or `baduser_bkusers` on older versions. */
function isBadUser(err: unknown): boolean {
  return err instanceof WikiApiError && (err.apiCode?.startsWith('baduser') ?? false);
}

function* batches(items: readonly string[]): Generator<string[]> {
  const unique = [...new Set(items)];
  for (let i = 0; i < unique.length; i += BATCH) yield unique.slice(i, i + BATCH);
}

/**
 * Multi-value parameters are joined with `|`, or, when a value itself holds a `|`, with U+001F
 * and a leading U+001F (the API's documented alternative separator). Booleans are sent as
 * present (`1`) or absent, as the API reads them.
 */
export function encodeParams(params: ApiParams): string {
  const out = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value === undefined || value === false) continue;
    if (value === true) out.set(key, '1');
    else if (typeof value === 'string' || typeof value === 'number') out.set(key, String(value));
    else out.set(key, value.some((v) => v.includes('|')) ? `\u001f${value.join('\u001f')}` : value.join('|'));
  }
  return out.toString();
}

function retryAfterMs(header: string | null): number | undefined {
  if (header === null) return undefined;
  const seconds = Number(header.trim());
  if (Number.isFinite(seconds) && seconds >= 0) return seconds * 1000;
  const date = Date.parse(header);
  return Number.isNaN(date) ? undefined : Math.max(0, date - Date.now());
}

function isoSeconds(date: Date): string {
  return date.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

function isAfter(entry: RawLogEntry, cursor: LogCursor): boolean {
  const t = entry.timestamp.getTime();
  const c = cursor.timestamp.getTime();
  return t > c || (t === c && entry.logid > cursor.logId);
}

function toLogEvent(module: string, entry: RawLogEntry, index: number): WikiLogEvent {
  const base = {
    logId: entry.logid,
    timestamp: entry.timestamp,
    type: entry.type,
    action: entry.action,
    target: entry.title === undefined ? null : targetOfLogTitle(entry.ns ?? 2, entry.title),
    performer: entry.user ?? null,
    comment: entry.comment ?? null,
  };
  if (entry.actionhidden || entry.params === undefined) return { ...base, details: { kind: 'hidden' } };
  const result = logDetails(entry.type, entry.action, entry.params);
  if ('error' in result) throw malformed(module, result.error, ['query', 'logevents', index, 'params']);
  return { ...base, details: result.details };
}

function parse<T extends z.ZodType>(module: string, schema: T, answer: unknown): z.output<T> {
  const result = schema.safeParse(answer);
  if (!result.success) throw malformed(module, result.error);
  return result.data;
}

function malformed(module: string, error: z.ZodError, prefix: PropertyKey[] = []): WikiApiError {
  const issue = error.issues[0];
  const field = formatPath([...prefix, ...(issue?.path ?? [])]);
  return new WikiApiError('malformed', module, `malformed answer: ${field || '(top level)'}: ${issue?.message ?? 'invalid'}`, {
    field,
    cause: error,
  });
}

function formatPath(path: readonly PropertyKey[]): string {
  return path
    .map((part, i) => (typeof part === 'number' ? `[${part}]` : `${i === 0 ? '' : '.'}${String(part)}`))
    .join('');
}
