// A test double of MediaWiki's OAuth 2 endpoints (Extension:OAuth on league/oauth2-server), served
// over loopback. It mirrors the extension's wire behaviour as read from its source:
//
// - GET  <base>/rest.php/oauth2/authorize: not logged in → 302 to Special:UserLogin; unknown
//   client, wrong redirect_uri or missing PKCE for a non-confidential consumer → an HTML error page
//   (no redirect); the user's "Cancel" → 302 to redirect_uri with `error=unauthorized_client` and
//   no state (ClientApprovalDenyException); approval → 302 with `code` and `state`.
// - POST <base>/rest.php/oauth2/access_token: form body only; client auth by `client_id` +
//   `client_secret` (body, or HTTP Basic as league falls back to it); the secret is checked for
//   every consumer; an unknown client is a 500 `server_error` (the repository throws); codes are
//   single-use and live 10 minutes; a wrong `code_verifier` does not burn the code.
// - GET  <base>/rest.php/oauth2/resource/profile: Bearer token → UserStatementProvider's JSON.
//
// Tests script who is logged in and whether they approve (`login`, `nextLogin`), inject faults
// per endpoint (`fault`), and read `requests` to assert what the client sent.
import { createHash, randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

export interface DoubleConsumer {
  clientId: string;
  /** MediaWiki issues a secret to every OAuth 2 consumer and checks it at the token endpoint. */
  clientSecret: string;
  confidential: boolean;
  /** The registered callback; compared exactly unless `callbackIsPrefix`. */
  redirectUri: string;
  callbackIsPrefix?: boolean;
  /** Grants (scopes) the consumer was approved for. */
  grants: string[];
}

/** A wiki account as the double renders it into profile JSON. Mutate it to change the next profile. */
export interface WikiUser {
  /** 0 renders the unattached case (`sub: "0"`). */
  centralId: number;
  username: string;
  editCount?: number;
  emailConfirmed?: boolean;
  email?: string;
  realName?: string;
  blocked?: boolean;
  /** MediaWiki timestamp (`YYYYMMDDHHMMSS`) or null for very old accounts. */
  registered?: string | null;
  /** Explicit groups; the implicit `*`, `user`, `autoconfirmed` are appended as MediaWiki does. */
  groups?: string[];
  rights?: string[];
  /** Suppressed user: the profile is only `{sub, blocked: true}`. */
  hidden?: boolean;
  /**
   * Globally locked (CentralAuth): the wiki ends the account's sessions and refuses its logins, so
   * it cannot authorize at all; the browser lands on the wiki's login page as for nobody.
   */
  locked?: boolean;
}

/** `current` = today's extension; `1.39` = numeric `sub`, no `email_verified`, unconfirmed email sent. */
export type ProfileStyle = 'current' | '1.39';

export interface LoginScript {
  /** Who is logged in on the wiki; null = nobody (the wiki sends the browser to its login page). */
  user: WikiUser | null;
  /** Whether they press "Allow" (default) or "Cancel" on Special:OAuth/approve. */
  approve?: boolean;
}

export type Endpoint = 'authorize' | 'token' | 'profile';

export type Fault =
  /** Answer normally, but only after `ms`. */
  | { kind: 'delay'; ms: number }
  /** Answer with this status (and body) instead. */
  | { kind: 'status'; status: number; body?: string; contentType?: string }
  /** Answer 200 with this body instead. */
  | { kind: 'body'; body: string; contentType?: string }
  /** Token endpoint only: a successful answer with this `token_type`. */
  | { kind: 'token_type'; tokenType: string }
  /** Drop the connection without answering. */
  | { kind: 'reset' }
  /** Send 200 headers and the start of a body, then nothing more. */
  | { kind: 'stall'; partial?: string };

export interface RecordedRequest {
  method: string;
  path: string;
  query: Record<string, string>;
  headers: Record<string, string | string[] | undefined>;
  /** Parsed form body of POSTs. */
  form?: Record<string, string>;
}

export interface DoubleOptions {
  consumers: DoubleConsumer[];
  style?: ProfileStyle;
  /** Script path under the server root; default `/w`. */
  scriptPath?: string;
  /** Seconds; MediaWiki's default $wgOAuth2GrantExpirationInterval is PT4H. */
  accessTokenTtl?: number;
}

interface CodeRecord {
  clientId: string;
  redirectUri: string | null;
  scopes: string[];
  user: WikiUser;
  challenge: { value: string; method: string } | null;
  expiresAt: number;
  revoked: boolean;
}

interface TokenRecord {
  clientId: string;
  scopes: string[];
  user: WikiUser;
  expiresAt: number;
  revoked: boolean;
  /** The access token a refresh token was issued with (revoked when refreshed). */
  accessToken?: string;
}

const CODE_TTL_MS = 10 * 60 * 1000;
const PKCE_VALUE = /^[A-Za-z0-9\-._~]{43,128}$/;
const KNOWN_SCOPES = new Set(['mwoauth-authonly', 'mwoauth-authonlyprivate', 'basic', 'editpage', 'highvolume']);
const DEFAULT_RIGHTS = ['read', 'edit', 'createpage', 'createtalk', 'writeapi', 'viewmyprivateinfo', 'editmyprivateinfo'];

// league/oauth2-server's standard messages.
const MSG = {
  invalidRequest: 'The request is missing a required parameter, includes an invalid parameter value, includes a parameter more than once, or is otherwise malformed.',
  invalidClient: 'Client authentication failed',
  invalidGrant:
    'The provided authorization grant (e.g., authorization code, resource owner credentials) or refresh token is invalid, expired, revoked, does not match the redirection URI used in the authorization request, or was issued to another client.',
  invalidScope: 'The requested scope is invalid, unknown, or malformed',
  accessDenied: 'The resource owner or authorization server denied the request.',
  serverError: 'The authorization server encountered an unexpected condition which prevented it from fulfilling the request: ',
  approvalDenied: 'User has not approved the application',
};

class OAuthFailure extends Error {
  readonly error: string;
  readonly status: number;
  readonly hint: string | undefined;
  /** When set, the error travels back to the client by redirect instead of as a page/JSON. */
  readonly redirectUri: string | undefined;
  constructor(error: string, status: number, message: string, hint?: string, redirectUri?: string) {
    super(message);
    this.error = error;
    this.status = status;
    this.hint = hint;
    this.redirectUri = redirectUri;
  }
  payload(): Record<string, string> {
    // league v8 adds the deprecated `message` beside `error_description`.
    const body: Record<string, string> = { error: this.error, error_description: this.message };
    if (this.hint !== undefined) body.hint = this.hint;
    body.message = this.message;
    return body;
  }
}

const invalidRequest = (param: string, hint?: string) => new OAuthFailure('invalid_request', 400, MSG.invalidRequest, hint ?? `Check the \`${param}\` parameter`);
const invalidClient = () => new OAuthFailure('invalid_client', 401, MSG.invalidClient);
const invalidGrant = (hint: string) => new OAuthFailure('invalid_grant', 400, MSG.invalidGrant, hint);
const accessDenied = (hint: string) => new OAuthFailure('access_denied', 401, MSG.accessDenied, hint);
const serverError = (hint: string) => new OAuthFailure('server_error', 500, MSG.serverError + hint, hint);

export class WikiOAuthDouble {
  readonly requests: RecordedRequest[] = [];
  /** The default session, used when no `nextLogin` is queued. */
  login: LoginScript = { user: null };
  style: ProfileStyle;
  readonly #server: Server;
  readonly #scriptPath: string;
  readonly #consumers: Map<string, DoubleConsumer>;
  readonly #accessTokenTtl: number;
  readonly #logins: LoginScript[] = [];
  readonly #faults = new Map<Endpoint, Array<{ fault: Fault; times: number }>>();
  readonly #codes = new Map<string, CodeRecord>();
  readonly #accessTokens = new Map<string, TokenRecord>();
  readonly #refreshTokens = new Map<string, TokenRecord>();
  readonly #sockets = new Set<Socket>();
  readonly #timers = new Set<NodeJS.Timeout>();
  #port = 0;

  private constructor(options: DoubleOptions) {
    this.style = options.style ?? 'current';
    this.#scriptPath = options.scriptPath ?? '/w';
    this.#consumers = new Map(options.consumers.map((c) => [c.clientId, c]));
    this.#accessTokenTtl = options.accessTokenTtl ?? 14400;
    this.#server = createServer((req, res) => void this.#handle(req, res));
    this.#server.on('connection', (socket) => {
      this.#sockets.add(socket);
      socket.on('close', () => this.#sockets.delete(socket));
    });
  }

  static async start(options: DoubleOptions): Promise<WikiOAuthDouble> {
    const double = new WikiOAuthDouble(options);
    await new Promise<void>((resolve, reject) => {
      double.#server.once('error', reject);
      double.#server.listen(0, '127.0.0.1', () => resolve());
    });
    double.#port = (double.#server.address() as AddressInfo).port;
    return double;
  }

  /** The wiki's script path, what the service's `wiki.base_url` would be. */
  get baseUrl(): string {
    return `http://127.0.0.1:${this.#port}${this.#scriptPath}`;
  }

  /** Scripts the next authorization only (then the default `login` applies again). */
  nextLogin(script: LoginScript): void {
    this.#logins.push(script);
  }

  /** The next `times` requests to `endpoint` meet `fault`. */
  fault(endpoint: Endpoint, fault: Fault, times = 1): void {
    const list = this.#faults.get(endpoint) ?? [];
    list.push({ fault, times });
    this.#faults.set(endpoint, list);
  }

  requestsTo(endpoint: Endpoint): RecordedRequest[] {
    const suffix = { authorize: '/authorize', token: '/access_token', profile: '/resource/profile' }[endpoint];
    return this.requests.filter((r) => r.path.endsWith(`/oauth2${suffix}`));
  }

  /** The profile JSON exactly as the extension would emit it for `user` with `grants`. */
  renderProfile(user: WikiUser, grants: string[]): Record<string, unknown> {
    const legacy = this.style === '1.39';
    const sub = legacy ? user.centralId : String(user.centralId);
    if (user.hidden) return { sub, blocked: true };
    const confirmed = user.emailConfirmed ?? false;
    const profile: Record<string, unknown> = {
      sub,
      username: user.username,
      editcount: user.editCount ?? 0,
      confirmed_email: confirmed,
    };
    if (!legacy) profile.email_verified = confirmed;
    Object.assign(profile, {
      blocked: user.blocked ?? false,
      registered: user.registered === undefined ? '20240101000000' : user.registered,
      groups: [...(user.groups ?? []), '*', 'user', 'autoconfirmed'],
      rights: user.rights ?? DEFAULT_RIGHTS,
      grants,
    });
    if (grants.includes('mwoauth-authonlyprivate')) {
      profile.realname = user.realName ?? '';
      profile.email = legacy || confirmed ? (user.email ?? '') : '';
    }
    return profile;
  }

  async close(): Promise<void> {
    for (const timer of this.#timers) clearTimeout(timer);
    this.#timers.clear();
    for (const socket of this.#sockets) socket.destroy();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', this.baseUrl);
    const body = await readBody(req);
    const recorded: RecordedRequest = {
      method: req.method ?? 'GET',
      path: url.pathname,
      query: Object.fromEntries(url.searchParams),
      headers: { ...req.headers },
    };
    if (req.method === 'POST' && isForm(req)) recorded.form = Object.fromEntries(new URLSearchParams(body));
    this.requests.push(recorded);

    const endpoint = this.#endpoint(url.pathname);
    if (!endpoint) return send(res, 404, 'application/json', JSON.stringify({ httpCode: 404, httpReason: 'Not Found' }));
    const fault = this.#takeFault(endpoint);
    if (fault?.kind === 'reset') return void req.socket.destroy();
    if (fault?.kind === 'status') return send(res, fault.status, fault.contentType ?? 'text/html', fault.body ?? '<!DOCTYPE html><title>Error</title>');
    if (fault?.kind === 'body') return send(res, 200, fault.contentType ?? 'application/json', fault.body);
    if (fault?.kind === 'stall') {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.write(fault.partial ?? '{"sub": ');
      return;
    }
    if (fault?.kind === 'delay') await this.#sleep(fault.ms);
    if (res.destroyed) return;

    if (endpoint === 'authorize') return this.#authorize(url, res);
    if (endpoint === 'token') return this.#token(req, body, res, fault?.kind === 'token_type' ? fault.tokenType : 'Bearer');
    return this.#profile(req, res);
  }

  #endpoint(path: string): Endpoint | undefined {
    const prefix = `${this.#scriptPath}/rest.php/oauth2`;
    if (path === `${prefix}/authorize`) return 'authorize';
    if (path === `${prefix}/access_token`) return 'token';
    if (path === `${prefix}/resource/profile`) return 'profile';
    return undefined;
  }

  #takeFault(endpoint: Endpoint): Fault | undefined {
    const list = this.#faults.get(endpoint);
    const head = list?.[0];
    if (!list || !head) return undefined;
    if (--head.times <= 0) list.shift();
    return head.fault;
  }

  #sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.#timers.delete(timer);
        resolve();
      }, ms);
      this.#timers.add(timer);
    });
  }

  // --- oauth2/authorize ----------------------------------------------------------------------

  #authorize(url: URL, res: ServerResponse): void {
    const q = url.searchParams;
    try {
      // MediaWiki's parameter validation runs first; its errors are queued and shown as a page.
      if (q.get('response_type') !== 'code') throw invalidRequest('response_type');
      const clientId = q.get('client_id');
      if (!clientId) throw invalidRequest('client_id');
      const script = this.#logins.shift() ?? this.login;
      if (!script.user || script.user.locked) return redirect(res, this.#loginPage(url));

      const consumer = this.#consumers.get(clientId);
      if (!consumer) throw invalidClient();
      const redirectUri = q.get('redirect_uri');
      if (redirectUri !== null && !redirectMatches(consumer, redirectUri)) throw invalidClient();
      const target = redirectUri ?? consumer.redirectUri;
      const state = q.get('state');
      const scopes = this.#scopes(q.get('scope'), consumer, target);
      const challenge = pkceChallenge(q, consumer);

      if (script.approve === false) {
        // ClientApprovalDenyException: redirect without state.
        throw new OAuthFailure('unauthorized_client', 400, MSG.approvalDenied, undefined, redirectUri ?? undefined);
      }
      const code = token();
      this.#codes.set(code, { clientId, redirectUri, scopes, user: script.user, challenge, expiresAt: Date.now() + CODE_TTL_MS, revoked: false });
      const location = new URL(target);
      location.searchParams.set('code', code);
      if (state !== null) location.searchParams.set('state', state);
      redirect(res, location.href);
    } catch (error) {
      if (!(error instanceof OAuthFailure)) throw error;
      if (error.redirectUri) {
        const location = new URL(error.redirectUri);
        for (const [k, v] of Object.entries(error.payload())) location.searchParams.set(k, v);
        return redirect(res, location.href);
      }
      // A GET without a redirect target gets MediaWiki's HTML error page.
      send(res, error.status, 'text/html; charset=UTF-8', `<!DOCTYPE html><html><body><h1>OAuth error</h1><p>${escapeHtml(error.message)} ${escapeHtml(error.hint ?? '')}</p></body></html>`);
    }
  }

  #loginPage(url: URL): string {
    const login = new URL(`${this.baseUrl}/index.php`);
    login.searchParams.set('title', 'Special:UserLogin');
    login.searchParams.set('returnto', 'Special:OAuth/rest_redirect');
    login.searchParams.set('returntoquery', new URLSearchParams({ rest_url: url.href }).toString());
    return login.href;
  }

  /** Unknown scopes are an error; known ones the consumer lacks are trimmed (Authorize::setValidScopes). */
  #scopes(raw: string | null, consumer: DoubleConsumer, redirectUri: string): string[] {
    if (!raw) return [...consumer.grants];
    const requested = raw.split(' ').filter(Boolean);
    const unknown = requested.find((s) => !KNOWN_SCOPES.has(s));
    if (unknown) throw new OAuthFailure('invalid_scope', 400, MSG.invalidScope, `Check the \`${unknown}\` scope`, redirectUri);
    return requested.filter((s) => consumer.grants.includes(s));
  }

  // --- oauth2/access_token -------------------------------------------------------------------

  #token(req: IncomingMessage, body: string, res: ServerResponse, tokenType: string): void {
    try {
      if (!isForm(req)) {
        return send(res, 415, 'application/json', JSON.stringify({ message: 'Unsupported Content-Type', httpCode: 415, httpReason: 'Unsupported Media Type' }));
      }
      const form = new URLSearchParams(body);
      const grantType = form.get('grant_type');
      if (grantType !== 'authorization_code' && grantType !== 'refresh_token' && grantType !== 'client_credentials') {
        throw invalidRequest('grant_type');
      }
      const consumer = this.#authenticate(req, form, grantType);
      const issued = grantType === 'authorization_code' ? this.#redeemCode(form, consumer) : this.#redeemRefresh(form, consumer);
      sendJson(res, 200, this.#issue(consumer, issued.user, issued.scopes, tokenType));
    } catch (error) {
      if (!(error instanceof OAuthFailure)) throw error;
      const headers: Record<string, string> = {};
      if (error.error === 'invalid_client' && req.headers.authorization) headers['www-authenticate'] = 'Basic realm="OAuth"';
      sendJson(res, error.status, error.payload(), headers);
    }
  }

  #authenticate(req: IncomingMessage, form: URLSearchParams, grantType: string): DoubleConsumer {
    const basic = basicCredentials(req.headers.authorization);
    const clientId = form.get('client_id') ?? basic?.id;
    const secret = form.get('client_secret') ?? basic?.secret;
    if (!clientId) throw invalidRequest('client_id');
    const consumer = this.#consumers.get(clientId);
    // The extension's repository throws for an unknown client; the handler turns that into a 500.
    if (!consumer) throw serverError(`Client with identifier '${clientId}' does not exist!`);
    if (secret !== consumer.clientSecret) throw invalidClient();
    if (grantType === 'client_credentials') throw invalidClient();
    return consumer;
  }

  #redeemCode(form: URLSearchParams, consumer: DoubleConsumer): { user: WikiUser; scopes: string[] } {
    const code = form.get('code');
    if (!code) throw invalidRequest('code');
    const record = this.#codes.get(code);
    if (!record) throw invalidRequest('code', 'Cannot decrypt the authorization code');
    if (Date.now() > record.expiresAt) throw invalidGrant('Authorization code has expired');
    if (record.revoked) throw invalidGrant('Authorization code has been revoked');
    if (record.clientId !== consumer.clientId) throw invalidGrant('Authorization code was not issued to this client');
    const redirectUri = form.get('redirect_uri');
    if (record.redirectUri !== null && redirectUri === null) throw invalidRequest('redirect_uri');
    if (redirectUri !== null && record.redirectUri !== redirectUri) throw invalidRequest('redirect_uri', 'Invalid redirect URI');
    if (record.challenge) verifyPkce(record.challenge, form.get('code_verifier'));
    record.revoked = true;
    return record;
  }

  #redeemRefresh(form: URLSearchParams, consumer: DoubleConsumer): { user: WikiUser; scopes: string[] } {
    const refreshToken = form.get('refresh_token');
    if (!refreshToken) throw invalidRequest('refresh_token');
    const record = this.#refreshTokens.get(refreshToken);
    if (!record) throw invalidRequest('refresh_token', 'Cannot decrypt the refresh token');
    if (record.clientId !== consumer.clientId) throw invalidRequest('refresh_token', 'Token is not linked to client');
    if (Date.now() > record.expiresAt) throw invalidRequest('refresh_token', 'Token has expired');
    if (record.revoked) throw invalidRequest('refresh_token', 'Token has been revoked');
    record.revoked = true;
    const old = record.accessToken ? this.#accessTokens.get(record.accessToken) : undefined;
    if (old) old.revoked = true;
    return record;
  }

  #issue(consumer: DoubleConsumer, user: WikiUser, scopes: string[], tokenType: string): Record<string, unknown> {
    const accessToken = token();
    const refreshToken = token();
    const expiresAt = Date.now() + this.#accessTokenTtl * 1000;
    this.#accessTokens.set(accessToken, { clientId: consumer.clientId, scopes, user, expiresAt, revoked: false });
    this.#refreshTokens.set(refreshToken, {
      clientId: consumer.clientId,
      scopes,
      user,
      expiresAt: Date.now() + 365 * 86400 * 1000,
      revoked: false,
      accessToken,
    });
    return { token_type: tokenType, expires_in: this.#accessTokenTtl, access_token: accessToken, refresh_token: refreshToken };
  }

  // --- oauth2/resource/profile ---------------------------------------------------------------

  #profile(req: IncomingMessage, res: ServerResponse): void {
    try {
      const header = req.headers.authorization;
      if (!header) throw accessDenied('Missing "Authorization" header');
      const match = /^Bearer\s+(\S+)$/i.exec(header);
      const record = match ? this.#accessTokens.get(match[1]!) : undefined;
      if (!record) throw accessDenied('Access token could not be verified');
      if (record.revoked) throw accessDenied('Access token has been revoked');
      if (Date.now() > record.expiresAt) throw accessDenied('Access token is invalid');
      sendJson(res, 200, this.renderProfile(record.user, record.scopes));
    } catch (error) {
      if (!(error instanceof OAuthFailure)) throw error;
      sendJson(res, error.status, error.payload());
    }
  }
}

function pkceChallenge(q: URLSearchParams, consumer: DoubleConsumer): CodeRecord['challenge'] {
  const value = q.get('code_challenge');
  if (value === null) {
    if (!consumer.confidential) throw invalidRequest('code_challenge', 'Code challenge must be provided for public clients');
    return null;
  }
  const method = q.get('code_challenge_method') ?? 'plain';
  if (method !== 'plain' && method !== 'S256') throw invalidRequest('code_challenge_method', 'Code challenge method must be one of `plain`, `S256`');
  if (!PKCE_VALUE.test(value)) throw invalidRequest('code_challenge', 'Code challenge must follow the specifications of RFC-7636.');
  return { value, method };
}

function verifyPkce(challenge: { value: string; method: string }, verifier: string | null): void {
  if (verifier === null) throw invalidRequest('code_verifier');
  if (!PKCE_VALUE.test(verifier)) throw invalidRequest('code_verifier', 'Code Verifier must follow the specifications of RFC-7636.');
  const computed = challenge.method === 'S256' ? createHash('sha256').update(verifier).digest('base64url') : verifier;
  if (computed !== challenge.value) throw invalidGrant('Failed to verify `code_verifier`.');
}

function redirectMatches(consumer: DoubleConsumer, redirectUri: string): boolean {
  return consumer.callbackIsPrefix ? redirectUri.startsWith(consumer.redirectUri) : redirectUri === consumer.redirectUri;
}

function basicCredentials(header: string | undefined): { id: string; secret: string } | undefined {
  const match = header ? /^Basic\s+(\S+)$/i.exec(header) : null;
  if (!match) return undefined;
  const decoded = Buffer.from(match[1]!, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon < 0) return undefined;
  return { id: decodeURIComponent(decoded.slice(0, colon)), secret: decodeURIComponent(decoded.slice(colon + 1)) };
}

function isForm(req: IncomingMessage): boolean {
  return (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase() === 'application/x-www-form-urlencoded';
}

function token(): string {
  return randomBytes(32).toString('base64url');
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

function send(res: ServerResponse, status: number, contentType: string, body: string, headers: Record<string, string> = {}): void {
  if (res.destroyed) return;
  res.writeHead(status, { 'content-type': contentType, 'cache-control': 'no-store', ...headers });
  res.end(body);
}

function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  send(res, status, 'application/json; charset=UTF-8', JSON.stringify(body), headers);
}

function redirect(res: ServerResponse, location: string): void {
  if (res.destroyed) return;
  res.writeHead(302, { location });
  res.end();
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}
