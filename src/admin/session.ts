// Signing admins in to the admin pages. The pages are a relying party of this service's own
// provider: `/admin/login` sends the browser through the ordinary authorization code flow (PKCE,
// state, nonce, `prompt=login`, so the wiki is always asked and the groups read are fresh), and
// `/admin/callback` redeems the code in-process, with the checks the token endpoint would make,
// instead of calling the service over the network (which, behind a proxy, may not even reach it).
// Who is an admin comes from config: wiki usernames and wiki groups. The session is a signed,
// HttpOnly, SameSite=Lax cookie scoped to /admin that ends after `admin.session_lifetime`; it
// carries the CSRF token every form posts back.
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Context } from 'koa';
import type Provider from 'oidc-provider';
import { errors } from 'oidc-provider';
import type { Config } from '../config/load.ts';
import { accountRepository, wikiIdOf } from '../compose.ts';
import type { Database } from '../db/index.ts';
import { canonicalUsername } from '../identity/localpart.ts';
import { WikiProfileStore } from '../login/store.ts';
import { explicitGroups } from '../wiki/action-api-results.ts';
import { personHref } from './views.ts';

export const ADMIN_CLIENT_ID = 'wiki-matrix-sso-admin';
export const ADMIN_CALLBACK = '/admin/callback';
const SESSION_COOKIE = 'wms_admin';
const FLOW_COOKIE = 'wms_admin_flow';
const FLOW_SECONDS = 15 * 60;

type ClientConfig = Config['oidc']['clients'][number];

/** Whether anyone may use the admin pages (`admin.users` or `admin.groups`). */
export const adminPagesEnabled = (config: Config): boolean => config.admin.users.length > 0 || config.admin.groups.length > 0;

/** The admin page of a person, for links from moderation-room notices; undefined without admin pages. */
export function personUrlFor(config: Config): ((userId: string) => string) | undefined {
  return adminPagesEnabled(config) ? (userId) => new URL(personHref(userId), config.http.public_url).href : undefined;
}

/** The provider's client for the admin pages: public (PKCE), first-party, openid only. */
export function adminClient(config: Config): ClientConfig {
  return {
    client_id: ADMIN_CLIENT_ID,
    client_name: `${config.pages.service_name} admin`,
    token_endpoint_auth_method: 'none',
    redirect_uris: [new URL(ADMIN_CALLBACK, config.http.public_url).href],
    post_logout_redirect_uris: [],
    skip_consent: true,
    scopes: ['openid'],
  };
}

/** The configuration with the admin pages' client added, when the pages are on. */
export function withAdminClient(config: Config): Config {
  if (!adminPagesEnabled(config)) return config;
  if (config.oidc.clients.some((c) => c.client_id === ADMIN_CLIENT_ID)) {
    throw new Error(`oidc.clients: the client id "${ADMIN_CLIENT_ID}" belongs to the admin pages; give the client another id`);
  }
  return { ...config, oidc: { ...config.oidc, clients: [...config.oidc.clients, adminClient(config)] } };
}

export interface AdminSession {
  /** The central user id. */
  sub: string;
  username: string;
  /** Why they are an admin: listed by name, or a member of one of these groups. */
  via: 'user' | 'group';
  csrf: string;
  /** Expiry, in seconds since the epoch. */
  exp: number;
}

interface Flow {
  state: string;
  nonce: string;
  verifier: string;
  returnTo: string;
  startedAt: number;
}

const cookieOptions = (config: Config, maxAgeMs: number) => ({
  httpOnly: true,
  sameSite: 'lax' as const,
  path: '/admin',
  signed: true,
  overwrite: true,
  secure: new URL(config.http.public_url).protocol === 'https:',
  maxAge: maxAgeMs,
});

const encode = (value: unknown) => Buffer.from(JSON.stringify(value), 'utf8').toString('base64url');
function decode<T>(value: string | undefined): T | undefined {
  if (!value) return undefined;
  try {
    return JSON.parse(Buffer.from(value, 'base64url').toString('utf8')) as T;
  } catch {
    return undefined;
  }
}

function setCookie(ctx: Context, config: Config, name: string, value: string | null, maxAgeMs: number): void {
  // Behind a TLS-terminating proxy without trust_proxy the request looks like plain HTTP; the
  // browser still sees https, so the cookie stays Secure.
  const options = cookieOptions(config, maxAgeMs);
  if (options.secure) (ctx.cookies as { secure: boolean }).secure = true;
  ctx.cookies.set(name, value, options);
}

/** A path inside the admin pages, or the activity page: never a way off the site. */
export function safeReturnTo(path: unknown): string {
  return typeof path === 'string' && /^\/admin(?:[/?#]|$)/.test(path) && !path.includes('\\') && !/^\/admin\/(?:login|callback|logout)/.test(path) ? path : '/admin';
}

/** The session in the request's cookie, unless it expired, was tampered with, or its admin was removed from config. */
export function readSession(ctx: Context, config: Config, now = Date.now()): AdminSession | undefined {
  const session = decode<AdminSession>(ctx.cookies.get(SESSION_COOKIE, { signed: true }));
  if (!session || typeof session.exp !== 'number' || session.exp * 1000 <= now || typeof session.csrf !== 'string') return undefined;
  if (session.via === 'user' && !isListed(config, session.username)) return undefined;
  if (session.via === 'group' && config.admin.groups.length === 0) return undefined;
  return session;
}

export function endSession(ctx: Context, config: Config): void {
  setCookie(ctx, config, SESSION_COOKIE, null, 0);
}

/** Whether the form's token is this session's (constant time). */
export function checkCsrf(session: AdminSession, presented: string | null): boolean {
  if (!presented) return false;
  const a = createHash('sha256').update(session.csrf).digest();
  const b = createHash('sha256').update(presented).digest();
  return timingSafeEqual(a, b);
}

const isListed = (config: Config, username: string) => config.admin.users.some((u) => canonicalUsername(u) === canonicalUsername(username));

const s256 = (verifier: string) => createHash('sha256').update(verifier).digest('base64url');

/** Where the browser goes to sign in: the provider's authorization endpoint, for the admin client. */
export function startSignIn(ctx: Context, config: Config, returnTo: string): string {
  const flow: Flow = {
    state: randomBytes(24).toString('base64url'),
    nonce: randomBytes(24).toString('base64url'),
    verifier: randomBytes(32).toString('base64url'),
    returnTo: safeReturnTo(returnTo),
    startedAt: Date.now(),
  };
  setCookie(ctx, config, FLOW_COOKIE, encode(flow), FLOW_SECONDS * 1000);
  const url = new URL('/auth', config.http.public_url);
  url.search = new URLSearchParams({
    client_id: ADMIN_CLIENT_ID,
    redirect_uri: adminClient(config).redirect_uris[0]!,
    response_type: 'code',
    scope: 'openid',
    state: flow.state,
    nonce: flow.nonce,
    code_challenge: s256(flow.verifier),
    code_challenge_method: 'S256',
    prompt: 'login',
  }).toString();
  return url.href;
}

export type SignInOutcome =
  | { kind: 'signed_in'; session: AdminSession; returnTo: string }
  /** Signed in at the wiki, but not an admin here. */
  | { kind: 'not_admin'; username: string }
  /** The sign-in did not finish: expired, cancelled, refused by the wiki or a rule, or not this browser's. */
  | { kind: 'failed'; reason: 'expired' | 'cancelled' | 'refused' | 'invalid' };

export interface SignInDeps {
  config: Config;
  db: Database;
  provider: Provider;
}

/** Completes `/admin/callback`: checks the flow, redeems the code once, and decides who this is. */
export async function finishSignIn(ctx: Context, deps: SignInDeps): Promise<SignInOutcome> {
  const { config, db, provider } = deps;
  const flow = decode<Flow>(ctx.cookies.get(FLOW_COOKIE, { signed: true }));
  setCookie(ctx, config, FLOW_COOKIE, null, 0);
  const state = ctx.query.state;
  if (!flow || Date.now() - flow.startedAt > FLOW_SECONDS * 1000) return { kind: 'failed', reason: 'expired' };
  if (typeof state !== 'string' || state !== flow.state) return { kind: 'failed', reason: 'invalid' };
  if (typeof ctx.query.error === 'string') return { kind: 'failed', reason: ctx.query.error === 'access_denied' ? 'refused' : 'cancelled' };
  const codeValue = ctx.query.code;
  if (typeof codeValue !== 'string' || !codeValue) return { kind: 'failed', reason: 'invalid' };

  const code = await provider.AuthorizationCode.find(codeValue);
  const valid =
    code &&
    // Consumed codes are kept until they expire, marked (`consumed`), so a replay is seen.
    !(code as { consumed?: unknown }).consumed &&
    code.clientId === ADMIN_CLIENT_ID &&
    code.redirectUri === adminClient(config).redirect_uris[0] &&
    code.nonce === flow.nonce &&
    code.codeChallengeMethod === 'S256' &&
    code.codeChallenge === s256(flow.verifier);
  if (!code || !valid || !code.accountId) return { kind: 'failed', reason: 'invalid' };
  try {
    await code.consume();
  } catch (error) {
    // The same code presented twice at once: the adapter lets only one of them consume it.
    if (error instanceof errors.InvalidGrant) return { kind: 'failed', reason: 'invalid' };
    throw error;
  }
  // The pages keep their own session; the grant made for this code is not needed again.
  if (code.grantId) await (await provider.Grant.find(code.grantId))?.destroy();

  const wiki = wikiIdOf(config);
  const account = await accountRepository(db, config).findByCentralId(wiki, code.accountId);
  if (!account) return { kind: 'failed', reason: 'invalid' };
  // prompt=login sent this sign-in through the wiki just now, which saved the profile it read.
  const profile = await new WikiProfileStore(db).find(wiki, account.centralId);
  const freshGroups = profile && profile.fetchedAt.getTime() >= flow.startedAt - 1000 ? explicitGroups(profile.groups) : [];
  const via = isListed(config, account.username) ? 'user' : freshGroups.some((g) => config.admin.groups.includes(g)) ? 'group' : undefined;
  if (!via) return { kind: 'not_admin', username: account.username };
  const session: AdminSession = {
    sub: account.centralId,
    username: account.username,
    via,
    csrf: randomBytes(24).toString('base64url'),
    exp: Math.floor(Date.now() / 1000) + config.admin.session_lifetime,
  };
  setCookie(ctx, config, SESSION_COOKIE, encode(session), config.admin.session_lifetime * 1000);
  return { kind: 'signed_in', session, returnTo: flow.returnTo };
}
