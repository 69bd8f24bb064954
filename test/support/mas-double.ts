// Matrix Authentication Service's admin API as MAS documents it (its OpenAPI description of
// `/api/admin/v1`, MAS 1.6 and later), on loopback: MAS is a Rust service that cannot be built or
// fetched here. What the real one does and this double does too:
// - admin tokens only by the client credentials grant of a client in `policy.data.admin_clients`,
//   HTTP Basic with form-encoded id and secret, scope `urn:mas:admin`; they expire (`expires_in`)
//   and MAS may forget one earlier (401 "Unknown access token"); a missing header is 400;
// - users by username (the Matrix localpart), 404 `User with username "…" not found`;
// - lock and unlock answer 200 with the user whether or not it already was; a locked user's
//   sessions stay unfinished but none of its tokens is active;
// - session lists filtered by user and status, oldest first, paged by cursor (`page[first]`,
//   `page[after]`), `links.next` only when there is more, the server's own page limit; an unknown
//   user in `filter[user]` is 404, not an empty list;
// - finishing a finished session is 400 "… is already finished"; revoking a revoked personal
//   token is 409; MAS before personal tokens answers their routes 404 with no body;
// - errors are `{"errors": [{"title": …}]}`.
// Tests script outages (`down`), 5xx answers (`failNext`) and sessions ending on their own.
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export type SessionKind = 'compat-sessions' | 'oauth2-sessions' | 'user-sessions' | 'personal-sessions';

export interface MasSession {
  id: string;
  kind: SessionKind;
  userId: string;
  finishedAt: string | null;
}

export interface MasUser {
  id: string;
  username: string;
  lockedAt: string | null;
}

export interface MasDoubleOptions {
  clientId: string;
  clientSecret: string;
  /** Seconds an admin token lasts; MAS's default is 300. */
  tokenTtl?: number;
  /** The most items MAS returns per page, whatever `page[first]` asks. */
  maxPage?: number;
  /** MAS without personal access tokens (before their admin API). */
  personalSessions?: boolean;
}

const CROCKFORD = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';
let counter = 0;
/** ULIDs that sort in creation order, as MAS's do. */
export function ulid(): string {
  counter += 1;
  let n = BigInt(Date.now()) * 2n ** 40n + BigInt(counter);
  let out = '';
  for (let i = 0; i < 26; i++) {
    out = CROCKFORD[Number(n % 32n)] + out;
    n /= 32n;
  }
  return out;
}

const SESSION_TYPE: Record<SessionKind, string> = {
  'compat-sessions': 'compat-session',
  'oauth2-sessions': 'oauth2-session',
  'user-sessions': 'user-session',
  'personal-sessions': 'personal-session',
};
const SESSION_NAME: Record<SessionKind, string> = {
  'compat-sessions': 'Compatibility session',
  'oauth2-sessions': 'OAuth 2.0 session',
  'user-sessions': 'User session',
  'personal-sessions': 'Personal session',
};

export class MasDouble {
  readonly users = new Map<string, MasUser>();
  readonly sessions = new Map<string, MasSession>();
  /** Every request, as `METHOD path` (query included). */
  readonly requests: string[] = [];
  readonly tokensIssued: string[] = [];
  /** Called once, right after the next session list is answered (the person logs out meanwhile). */
  afterNextList: (() => void) | undefined;
  #tokens = new Map<string, number>();
  #failures: number[] = [];
  #down = false;
  #server = createServer((req, res) => this.#handle(req, res));
  readonly #options: Required<MasDoubleOptions>;
  url = '';

  constructor(options: MasDoubleOptions) {
    this.#options = { tokenTtl: 300, maxPage: 50, personalSessions: true, ...options };
  }

  async start(): Promise<string> {
    await new Promise<void>((resolve) => this.#server.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.#server.address() as AddressInfo).port}`;
    return this.url;
  }

  async stop(): Promise<void> {
    this.#server.closeAllConnections();
    await new Promise((resolve) => this.#server.close(resolve));
  }

  addUser(username: string): MasUser {
    const user = { id: ulid(), username, lockedAt: null };
    this.users.set(user.id, user);
    return user;
  }

  addSessions(user: MasUser, kind: SessionKind, count: number): MasSession[] {
    return Array.from({ length: count }, () => {
      const session = { id: ulid(), kind, userId: user.id, finishedAt: null };
      this.sessions.set(session.id, session);
      return session;
    });
  }

  /** The sessions of a user whose tokens MAS would still accept. */
  usable(user: MasUser): MasSession[] {
    return this.users.get(user.id)?.lockedAt ? [] : [...this.sessions.values()].filter((s) => s.userId === user.id && s.finishedAt === null);
  }

  unfinished(user: MasUser): MasSession[] {
    return [...this.sessions.values()].filter((s) => s.userId === user.id && s.finishedAt === null);
  }

  /** MAS forgets every token it issued (a restart with another signing key, a revocation). */
  forgetTokens(): void {
    this.#tokens.clear();
  }

  /** The next `count` requests are answered with this status (e.g. 503 of a proxy). */
  failNext(count: number, status = 503): void {
    this.#failures.push(...Array<number>(count).fill(status));
  }

  /** While down, connections are dropped unanswered. */
  set down(value: boolean) {
    this.#down = value;
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    let text = '';
    for await (const chunk of req) text += chunk;
    if (this.#down) {
      res.socket?.destroy();
      return;
    }
    const url = new URL(req.url ?? '/', 'http://mas');
    this.requests.push(`${req.method} ${url.pathname}${decodeURIComponent(url.search)}`);
    const reply = (status: number, body?: unknown) => {
      res.writeHead(status, body === undefined ? {} : { 'content-type': 'application/json' }).end(body === undefined ? '' : JSON.stringify(body));
    };
    const failure = this.#failures.shift();
    if (failure !== undefined) return reply(failure, { errors: [{ title: 'Service unavailable' }] });

    if (req.method === 'POST' && url.pathname === '/oauth2/token') return this.#token(req, new URLSearchParams(text), reply);
    if (!url.pathname.startsWith('/api/admin/v1/')) return reply(404);
    const auth = req.headers.authorization;
    if (!auth) return reply(400, { errors: [{ title: 'Missing authorization header' }] });
    const expiry = auth.startsWith('Bearer ') ? this.#tokens.get(auth.slice(7)) : undefined;
    if (expiry === undefined) return reply(401, { errors: [{ title: 'Unknown access token' }] });
    if (expiry < Date.now()) return reply(401, { errors: [{ title: 'Access token expired' }] });
    return this.#admin(req.method ?? 'GET', url, reply);
  }

  #token(req: IncomingMessage, form: URLSearchParams, reply: (status: number, body?: unknown) => void): void {
    const basic = req.headers.authorization?.match(/^Basic (.+)$/)?.[1];
    const [id, secret] = basic ? Buffer.from(basic, 'base64').toString().split(':').map(decodeURIComponent) : [];
    if (id !== this.#options.clientId || secret !== this.#options.clientSecret) {
      return reply(401, { error: 'invalid_client', error_description: 'Client authentication failed' });
    }
    if (form.get('grant_type') !== 'client_credentials') return reply(400, { error: 'unsupported_grant_type' });
    if (!(form.get('scope') ?? '').split(' ').includes('urn:mas:admin')) return reply(400, { error: 'invalid_scope' });
    const token = `mat_${randomUUID().replaceAll('-', '')}`;
    this.#tokens.set(token, Date.now() + this.#options.tokenTtl * 1000);
    this.tokensIssued.push(token);
    reply(200, { access_token: token, token_type: 'Bearer', expires_in: this.#options.tokenTtl, scope: 'urn:mas:admin' });
  }

  #admin(method: string, url: URL, reply: (status: number, body?: unknown) => void): void {
    const path = url.pathname.slice('/api/admin/v1'.length);
    let m: RegExpMatchArray | null;
    if (method === 'GET' && (m = path.match(/^\/users\/by-username\/([^/]+)$/))) {
      const username = decodeURIComponent(m[1]!);
      const user = [...this.users.values()].find((u) => u.username === username);
      return user ? reply(200, this.#userBody(user, path)) : reply(404, { errors: [{ title: `User with username "${username}" not found` }] });
    }
    if (method === 'POST' && (m = path.match(/^\/users\/([^/]+)\/(lock|unlock)$/))) {
      const user = this.users.get(m[1]!);
      if (!user) return reply(404, { errors: [{ title: `User ID ${m[1]} not found` }] });
      if (m[2] === 'lock') user.lockedAt ??= new Date().toISOString();
      else user.lockedAt = null;
      return reply(200, this.#userBody(user, path));
    }
    if (method === 'GET' && (m = path.match(/^\/(compat-sessions|oauth2-sessions|user-sessions|personal-sessions)$/))) {
      const kind = m[1] as SessionKind;
      if (kind === 'personal-sessions' && !this.#options.personalSessions) return reply(404);
      return this.#list(kind, url, reply);
    }
    if (method === 'POST' && (m = path.match(/^\/(compat-sessions|oauth2-sessions|user-sessions|personal-sessions)\/([^/]+)\/(finish|revoke)$/))) {
      const kind = m[1] as SessionKind;
      const personal = kind === 'personal-sessions';
      if ((personal && (!this.#options.personalSessions || m[3] !== 'revoke')) || (!personal && m[3] !== 'finish')) return reply(404);
      const session = this.sessions.get(m[2]!);
      if (!session || session.kind !== kind) return reply(404, { errors: [{ title: `${SESSION_NAME[kind]} with ID ${m[2]} not found` }] });
      if (session.finishedAt !== null) {
        return personal
          ? reply(409, { errors: [{ title: `Personal session with ID ${session.id} is already revoked` }] })
          : reply(400, { errors: [{ title: `${SESSION_NAME[kind]} with ID ${session.id} is already finished` }] });
      }
      session.finishedAt = new Date().toISOString();
      return reply(200, { data: this.#sessionItem(session), links: { self: `/api/admin/v1${path}` } });
    }
    reply(404);
  }

  #list(kind: SessionKind, url: URL, reply: (status: number, body?: unknown) => void): void {
    const q = url.searchParams;
    const userFilter = q.get(kind === 'personal-sessions' ? 'filter[actor_user]' : 'filter[user]');
    if (userFilter !== null && !this.users.has(userFilter)) return reply(404, { errors: [{ title: `User ID ${userFilter} not found` }] });
    const status = q.get('filter[status]');
    const matching = [...this.sessions.values()]
      .filter((s) => s.kind === kind && (userFilter === null || s.userId === userFilter))
      .filter((s) => status === null || (status === 'active' ? s.finishedAt === null : s.finishedAt !== null))
      .sort((a, b) => (a.id < b.id ? -1 : 1));
    const after = q.get('page[after]');
    const from = after === null ? matching : matching.filter((s) => s.id > after);
    const first = Math.min(Number(q.get('page[first]') ?? 10), this.#options.maxPage);
    const page = from.slice(0, first);
    const base = `/api/admin/v1/${kind}`;
    const links: Record<string, string> = { self: `${base}${url.search}`, first: `${base}?page[first]=${first}` };
    if (from.length > page.length && page.length > 0) links.next = `${base}?page[after]=${page.at(-1)!.id}&page[first]=${first}`;
    reply(200, {
      ...(q.get('count') === 'false' ? {} : { meta: { count: matching.length } }),
      data: page.map((s) => ({ ...this.#sessionItem(s), meta: { page: { cursor: s.id } } })),
      links,
    });
    const hook = this.afterNextList;
    this.afterNextList = undefined;
    hook?.();
  }

  #sessionItem(session: MasSession) {
    const attributes = session.kind === 'personal-sessions'
      ? { actor_user_id: session.userId, owner_user_id: session.userId, created_at: '2030-01-01T00:00:00Z', revoked_at: session.finishedAt, human_name: 'bot', scope: 'urn:matrix:client:api:*' }
      : { user_id: session.userId, created_at: '2030-01-01T00:00:00Z', finished_at: session.finishedAt, user_agent: null, last_active_at: null, last_active_ip: null };
    return { type: SESSION_TYPE[session.kind], id: session.id, attributes, links: { self: `/api/admin/v1/${session.kind}/${session.id}` } };
  }

  #userBody(user: MasUser, path: string) {
    const data = {
      type: 'user',
      id: user.id,
      attributes: { username: user.username, created_at: '2030-01-01T00:00:00Z', locked_at: user.lockedAt, deactivated_at: null, admin: false, legacy_guest: false },
      links: { self: `/api/admin/v1/users/${user.id}` },
    };
    return { data, links: { self: `/api/admin/v1${path}` } };
  }
}
