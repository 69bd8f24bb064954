// The MediaWiki OAuth 2 client (Extension:OAuth, `<script path>/rest.php/oauth2/…`).
//
// MediaWiki is plain OAuth 2, not OpenID Connect: no discovery, no id_token, no JWKS. So the
// openid-client Configuration is built by hand, `openid` is never requested and no nonce is
// expected (which keeps openid-client on its OAuth 2 code path: an id_token is neither required
// nor sent). Identity comes from `oauth2/resource/profile`.
//
// Facts about the wiki's answers that shape this code:
// - The token endpoint takes a form POST; the client authenticates with `client_id` and
//   `client_secret` in the body (league/oauth2-server would also read HTTP Basic, but the body is
//   what MediaWiki documents and what survives PHP setups that drop the Authorization header).
//   The extension checks the secret for every consumer, confidential or not.
// - Errors are league/oauth2-server JSON: `{error, error_description, message, hint?}`.
// - When the user presses "Cancel" on Special:OAuth/approve, the wiki redirects back with
//   `error=unauthorized_client` (ClientApprovalDenyException) and **without `state`**; the standard
//   `error=access_denied` is handled the same way.
import { timingSafeEqual } from 'node:crypto';
import * as oidc from 'openid-client';
import { AppError } from '../http/errors.ts';
import { parseWikiProfile, ProfileFormatError, type WikiProfile } from './profile.ts';
import { report, topics } from '../observe.ts';

export type { WikiProfile, VisibleWikiProfile, HiddenWikiProfile } from './profile.ts';

export interface WikiOAuthClientOptions {
  /** Script path of the wiki, the directory holding rest.php (e.g. `https://meta.wikimedia.org/w`). */
  baseUrl: string;
  /** Consumer key from Special:OAuthConsumerRegistration. */
  clientId: string;
  /** Consumer secret. MediaWiki checks it for every consumer, so give it. */
  clientSecret?: string;
  scopes: readonly string[];
  /** Sent on every request (Wikimedia User-Agent policy: name/version and contact). */
  userAgent: string;
  /** Budget for each request to the wiki. */
  timeoutMs: number;
  /**
   * Plain-HTTP wiki URLs are refused unless this is true; the default allows them only for
   * loopback hosts (tests, a wiki on the same machine).
   */
  allowInsecureHttp?: boolean;
  fetch?: typeof globalThis.fetch;
}

export type WikiOAuthErrorCode =
  | 'state_mismatch'
  | 'access_denied'
  | 'upstream_error'
  | 'upstream_unavailable'
  | 'invalid_profile';

/** What the relying party (the homeserver) should be told when this login fails. */
export type RelyingPartyError = 'access_denied' | 'server_error' | 'temporarily_unavailable';

const ERRORS: Record<WikiOAuthErrorCode, { status: number; oauthError: RelyingPartyError; message: string }> = {
  state_mismatch: {
    status: 400,
    oauthError: 'access_denied',
    message: 'This sign-in link has expired or was not started here. Please start signing in again.',
  },
  access_denied: {
    status: 403,
    oauthError: 'access_denied',
    message: 'You cancelled signing in on the wiki, so you have not been signed in.',
  },
  upstream_error: {
    status: 502,
    oauthError: 'server_error',
    message: 'The wiki refused to complete your sign-in. Please try again; if it keeps happening, tell the administrators.',
  },
  upstream_unavailable: {
    status: 503,
    oauthError: 'temporarily_unavailable',
    message: 'The wiki is not answering right now. Please try again in a few minutes.',
  },
  invalid_profile: {
    status: 502,
    oauthError: 'server_error',
    message: 'The wiki sent back account details we could not read. Please tell the administrators.',
  },
};

export interface WikiOAuthErrorDetails {
  /** The OAuth `error` the wiki answered, when it answered one (for logs, never for people). */
  upstreamError?: string;
  upstreamDescription?: string;
  /** For `invalid_profile`: the first field that did not have the expected shape. */
  field?: string;
  cause?: unknown;
}

/** A failed wiki sign-in. `message` is fit to show to the person; the details are for logs. */
export class WikiOAuthError extends AppError {
  declare readonly code: WikiOAuthErrorCode;
  readonly oauthError: RelyingPartyError;
  readonly upstreamError: string | undefined;
  readonly upstreamDescription: string | undefined;
  readonly field: string | undefined;
  constructor(code: WikiOAuthErrorCode, details: WikiOAuthErrorDetails = {}) {
    const { status, oauthError, message } = ERRORS[code];
    super(status, code, message, { expose: true, cause: details.cause });
    this.name = 'WikiOAuthError';
    this.oauthError = oauthError;
    this.upstreamError = details.upstreamError;
    this.upstreamDescription = details.upstreamDescription;
    this.field = details.field;
  }
}

export interface StartResult {
  /** Where to send the person's browser. */
  url: string;
  /** Keep it server-side with the interaction; `finish` needs it. Never put it in the URL. */
  codeVerifier: string;
}

export interface FinishParams {
  /** The URL the wiki redirected the browser to; only its query is read. */
  callbackUrl: string | URL;
  expectedState: string;
  codeVerifier: string;
  /** Exactly the redirect URI given to `start`. */
  redirectUri: string;
}

const CANCELLED = new Set(['access_denied', 'unauthorized_client']);

export class WikiOAuthClient {
  readonly #config: oidc.Configuration;
  readonly #profileUrl: URL;
  readonly #scopes: string;

  constructor(options: WikiOAuthClientOptions) {
    const base = options.baseUrl.replace(/\/+$/, '');
    const oauth2 = `${base}/rest.php/oauth2`;
    this.#profileUrl = new URL(`${oauth2}/resource/profile`);
    this.#scopes = options.scopes.join(' ');
    const server: oidc.ServerMetadata = {
      issuer: base,
      authorization_endpoint: `${oauth2}/authorize`,
      token_endpoint: `${oauth2}/access_token`,
      code_challenge_methods_supported: ['S256'],
    };
    const auth = options.clientSecret ? oidc.ClientSecretPost(options.clientSecret) : oidc.None();
    this.#config = new oidc.Configuration(server, options.clientId, undefined, auth);
    this.#config[oidc.customFetch] = wikiFetch(options.fetch ?? globalThis.fetch, options.userAgent, options.timeoutMs);
    const baseUrl = new URL(base);
    if (baseUrl.protocol !== 'https:') {
      // Refused here rather than at the first sign-in, where it would look like a wiki failure.
      if (!(options.allowInsecureHttp ?? isLoopback(baseUrl))) throw new TypeError(`The wiki URL ${base} must use https.`);
      oidc.allowInsecureRequests(this.#config);
    }
  }

  /** Builds the authorization URL. PKCE S256 always; `state` comes from the caller (the interaction). */
  async start({ redirectUri, state }: { redirectUri: string; state: string }): Promise<StartResult> {
    assertPlainRedirectUri(redirectUri);
    const codeVerifier = oidc.randomPKCECodeVerifier();
    const url = oidc.buildAuthorizationUrl(this.#config, {
      redirect_uri: redirectUri,
      scope: this.#scopes,
      state,
      code_challenge: await oidc.calculatePKCECodeChallenge(codeVerifier),
      code_challenge_method: 'S256',
    });
    return { url: url.href, codeVerifier };
  }

  /** Completes the sign-in from the wiki's redirect: checks, exchanges the code, reads the profile. */
  async finish(params: FinishParams): Promise<WikiProfile> {
    assertPlainRedirectUri(params.redirectUri);
    const query = new URL(params.callbackUrl).searchParams;
    // An error answer is read before the state check: the wiki's cancel redirect carries no state,
    // and an error cannot sign anyone in, so honouring a forged one only fails a login.
    throwIfErrorAnswer(query);
    if (!sameSecret(query.get('state'), params.expectedState)) throw new WikiOAuthError('state_mismatch');
    // openid-client derives the token request's redirect_uri from this URL, so it is built on the
    // registered URI rather than on whatever host/scheme the callback arrived through.
    const current = new URL(params.redirectUri);
    current.search = query.toString();
    const accessToken = await timed('token', () => this.#exchange(current, params));
    return timed('profile', () => this.#profile(accessToken));
  }

  async #exchange(current: URL, params: FinishParams): Promise<string> {
    try {
      const tokens = await oidc.authorizationCodeGrant(this.#config, current, {
        expectedState: params.expectedState,
        pkceCodeVerifier: params.codeVerifier,
      });
      return tokens.access_token;
    } catch (error) {
      throw translate(error);
    }
  }

  async #profile(accessToken: string): Promise<WikiProfile> {
    let response: Response;
    try {
      response = await oidc.fetchProtectedResource(this.#config, accessToken, this.#profileUrl, 'GET', undefined, new Headers({ accept: 'application/json' }));
    } catch (error) {
      throw translate(error);
    }
    if (response.status !== 200) throw byStatus(response.status, await describeErrorBody(response, 'profile'));
    const text = await readBody(response);
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch (cause) {
      throw new WikiOAuthError('invalid_profile', { field: '(body)', cause });
    }
    try {
      return parseWikiProfile(json);
    } catch (error) {
      if (error instanceof ProfileFormatError) throw new WikiOAuthError('invalid_profile', { field: error.field, cause: error });
      throw error;
    }
  }
}

/** Runs one request to the wiki's OAuth endpoints and reports how long it took and how it failed. */
async function timed<T>(endpoint: 'token' | 'profile', request: () => Promise<T>): Promise<T> {
  const started = performance.now();
  const done = (error?: string) => report(topics.wikiRequest, () => ({ api: 'oauth' as const, endpoint, seconds: (performance.now() - started) / 1000, ...(error && { error }) }));
  try {
    const value = await request();
    done();
    return value;
  } catch (error) {
    done(error instanceof WikiOAuthError ? error.code : 'error');
    throw error;
  }
}

function throwIfErrorAnswer(query: URLSearchParams): void {
  const error = query.get('error');
  if (error === null) return;
  const details = { upstreamError: error, upstreamDescription: query.get('error_description') ?? query.get('message') ?? undefined };
  if (CANCELLED.has(error)) throw new WikiOAuthError('access_denied', details);
  if (error === 'temporarily_unavailable') throw new WikiOAuthError('upstream_unavailable', details);
  throw new WikiOAuthError('upstream_error', details);
}

/** Maps whatever openid-client threw into one of our errors. */
function translate(error: unknown): WikiOAuthError {
  const own = ownError(error);
  if (own) return own;
  if (error instanceof oidc.ResponseBodyError) {
    return byStatus(error.status, { upstreamError: error.error, upstreamDescription: error.error_description, cause: error });
  }
  if (error instanceof oidc.WWWAuthenticateChallengeError) {
    return byStatus(error.status, { upstreamDescription: `HTTP ${error.status} with an authentication challenge`, cause: error });
  }
  if (error instanceof oidc.ClientError && error.cause instanceof Response) {
    return byStatus(error.cause.status, { upstreamDescription: `HTTP ${error.cause.status}`, cause: error });
  }
  if (error instanceof oidc.ClientError) {
    // Unparseable JSON, wrong content type, unsupported token_type, missing access_token…
    return new WikiOAuthError('upstream_error', { upstreamDescription: error.message, cause: error });
  }
  throw error;
}

function byStatus(status: number, details: WikiOAuthErrorDetails): WikiOAuthError {
  return new WikiOAuthError(status >= 500 ? 'upstream_unavailable' : 'upstream_error', details);
}

/** openid-client wraps what our fetch threw; dig it out. */
function ownError(error: unknown): WikiOAuthError | undefined {
  for (let e = error, depth = 0; typeof e === 'object' && e !== null && depth < 5; e = (e as Error).cause, depth++) {
    if (e instanceof WikiOAuthError) return e;
  }
  return undefined;
}

/** The body, read under the same timeout as the request: a wiki that stalls mid-answer is unavailable. */
async function readBody(response: Response): Promise<string> {
  try {
    return await response.text();
  } catch (cause) {
    throw new WikiOAuthError('upstream_unavailable', { upstreamDescription: 'the answer stopped midway', cause });
  }
}

async function describeErrorBody(response: Response, endpoint: string): Promise<WikiOAuthErrorDetails> {
  const text = await readBody(response).catch(() => '');
  try {
    const body = JSON.parse(text) as { error?: unknown; error_description?: unknown; hint?: unknown; message?: unknown };
    const description = [body.error_description ?? body.message, body.hint].filter((x) => typeof x === 'string').join(' ');
    return {
      upstreamError: typeof body.error === 'string' ? body.error : undefined,
      upstreamDescription: `${endpoint}: HTTP ${response.status} ${description}`.trim(),
    };
  } catch {
    return { upstreamDescription: `${endpoint}: HTTP ${response.status}` };
  }
}

/**
 * Every request to the wiki carries our User-Agent and its own timeout; a transport failure
 * (refused, reset, timed out) becomes `upstream_unavailable` here, where it is still recognisable.
 */
function wikiFetch(fetchImpl: typeof globalThis.fetch, userAgent: string, timeoutMs: number): oidc.CustomFetch {
  return async (url, options) => {
    const headers = new Headers(options.headers);
    headers.set('user-agent', userAgent);
    const timeout = AbortSignal.timeout(timeoutMs);
    const signal = options.signal ? AbortSignal.any([options.signal, timeout]) : timeout;
    try {
      return await fetchImpl(url, { ...options, headers, signal });
    } catch (cause) {
      const timedOut = timeout.aborted;
      throw new WikiOAuthError('upstream_unavailable', {
        upstreamDescription: timedOut ? `no answer within ${timeoutMs} ms` : 'connection failed',
        cause,
      });
    }
  };
}

function sameSecret(actual: string | null, expected: string): boolean {
  if (actual === null || expected === '') return false;
  const a = Buffer.from(actual);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}

function assertPlainRedirectUri(redirectUri: string): void {
  const url = new URL(redirectUri);
  if (url.search !== '' || url.hash !== '') {
    throw new TypeError('The wiki redirect URI must not carry a query or fragment.');
  }
}

function isLoopback(url: URL): boolean {
  return url.hostname === 'localhost' || url.hostname === '[::1]' || /^127\.\d+\.\d+\.\d+$/.test(url.hostname);
}
