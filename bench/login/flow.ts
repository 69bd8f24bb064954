// One virtual browser's sign-in, as a homeserver and a fresh browser do it: the relying party
// builds an authorization request (PKCE S256, state, nonce), the browser follows every redirect
// through the provider's pages and the wiki with its own cookies, the relying party checks the
// answer (state, iss), exchanges the code (client_secret_basic), verifies the ID token (signature on
// the published JWKS, issuer, audience, nonce) and reads userinfo. Every hop is timed on its own.
import { createHash, randomBytes } from 'node:crypto';
import * as jose from 'jose';
import { CookieJar, HttpError, type Http, type Reply } from './http.ts';
import { BENCH_CLIENT } from './stack.ts';

export interface Provider {
  http: Http;
  issuer: string;
  authorizationEndpoint: URL;
  tokenEndpoint: URL;
  userinfoEndpoint: URL;
  jwks: jose.JWTVerifyGetKey;
  timeoutMs: number;
}

export type Outcome =
  | { ok: true; ms: number; steps: Array<[string, number]>; serviceRequests: number; wikiRequests: number }
  | { ok: false; ms: number; error: string; detail: string };

/** A failure of the flow, named by where it happened (the step) and how. */
class FlowError extends Error {
  readonly kind: string;
  constructor(kind: string, detail: string) {
    super(detail);
    this.kind = kind;
  }
}

const MAX_HOPS = 15;

export async function discover(http: Http, issuer: string, timeoutMs: number): Promise<Provider> {
  const metadata = JSON.parse((await http.request(new URL(`${issuer}/.well-known/openid-configuration`), { timeoutMs })).body) as Record<string, string>;
  const keys = JSON.parse((await http.request(new URL(metadata.jwks_uri!), { timeoutMs })).body) as jose.JSONWebKeySet;
  return {
    http,
    issuer: metadata.issuer!,
    authorizationEndpoint: new URL(metadata.authorization_endpoint!),
    tokenEndpoint: new URL(metadata.token_endpoint!),
    userinfoEndpoint: new URL(metadata.userinfo_endpoint!),
    jwks: jose.createLocalJWKSet(keys),
    timeoutMs,
  };
}

/** The name a hop is reported under: the route, not the URL (uids and codes vary). */
function stepOf(url: URL, issuer: URL): string {
  if (url.host !== issuer.host) return `wiki ${url.pathname.replace(/^.*\/rest\.php\//, '')}`;
  const path = url.pathname;
  if (/^\/auth\/[^/]+$/.test(path)) return 'GET /auth/:uid (resume)';
  if (/^\/interaction\/[^/]+$/.test(path)) return 'GET /interaction/:uid';
  if (/^\/interaction\/[^/]+\/[a-z]+$/.test(path)) return `GET /interaction/:uid/${path.split('/').at(-1)}`;
  return `GET ${path}`;
}

const base64url = (bytes: Buffer) => bytes.toString('base64url');

export interface AuthorizationRequest {
  url: URL;
  state: string;
  nonce: string;
  verifier: string;
}

export function authorizationRequest(provider: Provider, scope = 'openid profile email'): AuthorizationRequest {
  const verifier = base64url(randomBytes(32));
  const state = base64url(randomBytes(16));
  const nonce = base64url(randomBytes(16));
  const url = new URL(provider.authorizationEndpoint);
  url.search = new URLSearchParams({
    client_id: BENCH_CLIENT.clientId,
    redirect_uri: BENCH_CLIENT.redirectUri,
    response_type: 'code',
    scope,
    state,
    nonce,
    code_challenge: base64url(createHash('sha256').update(verifier).digest()),
    code_challenge_method: 'S256',
  }).toString();
  return { url, state, nonce, verifier };
}

async function timed<T>(steps: Array<[string, number]>, name: string, work: () => Promise<T>): Promise<T> {
  const started = performance.now();
  try {
    return await work();
  } catch (error) {
    if (error instanceof FlowError) throw error;
    if (error instanceof HttpError) throw new FlowError(`${name}: ${error.kind}`, error.message);
    throw new FlowError(`${name}: ${(error as { code?: string }).code ?? 'error'}`, (error as Error).message);
  } finally {
    const repeated = steps.filter(([step]) => step === name || step.startsWith(`${name} #`)).length;
    steps.push([repeated ? `${name} #${repeated + 1}` : name, performance.now() - started]);
  }
}

/** From the authorization request to the relying party's redirect_uri: the code, checked. */
export async function browse(provider: Provider, request: AuthorizationRequest, steps: Array<[string, number]>): Promise<{ code: string; serviceRequests: number; wikiRequests: number }> {
  const jar = new CookieJar();
  const issuer = new URL(provider.issuer);
  let url = request.url;
  let serviceRequests = 0;
  let wikiRequests = 0;
  for (let hop = 0; hop < MAX_HOPS; hop++) {
    const step = stepOf(url, issuer);
    if (url.host === issuer.host) serviceRequests++;
    else wikiRequests++;
    const reply: Reply = await timed(steps, step, () => provider.http.request(url, { jar, timeoutMs: provider.timeoutMs }));
    if (reply.status < 300 || reply.status >= 400 || !reply.location) {
      const title = /<title>([^<]*)<\/title>/.exec(reply.body)?.[1]?.trim();
      throw new FlowError(`${step}: HTTP ${reply.status}`, title ?? reply.body.slice(0, 200));
    }
    url = reply.location;
    if (url.href.startsWith(BENCH_CLIENT.redirectUri)) {
      const answer = url.searchParams;
      if (answer.get('error')) throw new FlowError(`authorization error ${answer.get('error')}`, answer.get('error_description') ?? '');
      if (answer.get('state') !== request.state) throw new FlowError('state mismatch', `sent ${request.state}, got ${answer.get('state')}`);
      if (answer.has('iss') && answer.get('iss') !== provider.issuer) throw new FlowError('iss mismatch', String(answer.get('iss')));
      const code = answer.get('code');
      if (!code) throw new FlowError('no code', url.search);
      return { code, serviceRequests, wikiRequests };
    }
  }
  throw new FlowError('too many redirects', `still redirected after ${MAX_HOPS} hops, at ${url.pathname}`);
}

const basicAuth = `Basic ${Buffer.from(`${encodeURIComponent(BENCH_CLIENT.clientId)}:${encodeURIComponent(BENCH_CLIENT.clientSecret)}`).toString('base64')}`;

/** The code exchange and the ID token's checks, as a relying party makes them. */
export async function exchange(provider: Provider, code: string, verifier: string, nonce: string | undefined, steps: Array<[string, number]>): Promise<{ accessToken: string; sub: string }> {
  const reply = await timed(steps, 'POST /token', () =>
    provider.http.request(provider.tokenEndpoint, {
      headers: { authorization: basicAuth, accept: 'application/json' },
      form: { grant_type: 'authorization_code', code, redirect_uri: BENCH_CLIENT.redirectUri, code_verifier: verifier },
      timeoutMs: provider.timeoutMs,
    }),
  );
  if (reply.status !== 200) throw new FlowError(`POST /token: HTTP ${reply.status}`, reply.body.slice(0, 200));
  const tokens = JSON.parse(reply.body) as { access_token?: string; id_token?: string; token_type?: string };
  if (!tokens.access_token || !tokens.id_token || tokens.token_type?.toLowerCase() !== 'bearer') throw new FlowError('POST /token: incomplete answer', Object.keys(tokens).join(', '));
  const { payload } = await timed(steps, 'verify id_token', async () => {
    try {
      return await jose.jwtVerify(tokens.id_token!, provider.jwks, { issuer: provider.issuer, audience: BENCH_CLIENT.clientId, algorithms: ['RS256'] });
    } catch (error) {
      throw new FlowError(`id_token: ${(error as { code?: string }).code ?? 'invalid'}`, (error as Error).message);
    }
  });
  if (nonce !== undefined && payload.nonce !== nonce) throw new FlowError('id_token: nonce mismatch', String(payload.nonce));
  if (!payload.sub) throw new FlowError('id_token: no sub', '');
  return { accessToken: tokens.access_token, sub: payload.sub };
}

async function userinfo(provider: Provider, accessToken: string, sub: string, steps: Array<[string, number]>): Promise<void> {
  const reply = await timed(steps, 'GET /me (userinfo)', () =>
    provider.http.request(provider.userinfoEndpoint, { headers: { authorization: `Bearer ${accessToken}`, accept: 'application/json' }, timeoutMs: provider.timeoutMs }),
  );
  if (reply.status !== 200) throw new FlowError(`GET /me (userinfo): HTTP ${reply.status}`, reply.body.slice(0, 200));
  const claims = JSON.parse(reply.body) as { sub?: string; preferred_username?: string };
  if (claims.sub !== sub) throw new FlowError('userinfo: sub mismatch', `${claims.sub} ≠ ${sub}`);
  if (!claims.preferred_username) throw new FlowError('userinfo: no preferred_username', reply.body.slice(0, 200));
}

/** The whole sign-in of one fresh browser. */
export async function signIn(provider: Provider): Promise<Outcome> {
  const started = performance.now();
  const steps: Array<[string, number]> = [];
  try {
    const request = authorizationRequest(provider);
    const { code, serviceRequests, wikiRequests } = await browse(provider, request, steps);
    const { accessToken, sub } = await exchange(provider, code, request.verifier, request.nonce, steps);
    await userinfo(provider, accessToken, sub, steps);
    return { ok: true, ms: performance.now() - started, steps, serviceRequests: serviceRequests + 2, wikiRequests };
  } catch (error) {
    const failure = error instanceof FlowError ? error : new FlowError('unexpected', (error as Error).stack ?? String(error));
    return { ok: false, ms: performance.now() - started, error: failure.kind, detail: failure.message };
  }
}

/** Code exchange alone (bench:token): a code, its verifier, and the nonce its request carried. */
export async function exchangeOnly(provider: Provider, code: string, verifier: string, nonce: string | undefined): Promise<Outcome> {
  const started = performance.now();
  const steps: Array<[string, number]> = [];
  try {
    await exchange(provider, code, verifier, nonce, steps);
    return { ok: true, ms: performance.now() - started, steps, serviceRequests: 1, wikiRequests: 0 };
  } catch (error) {
    const failure = error instanceof FlowError ? error : new FlowError('unexpected', (error as Error).stack ?? String(error));
    return { ok: false, ms: performance.now() - started, error: failure.kind, detail: failure.message };
  }
}
