// A real Synapse that signs people in through the service, configured with exactly the snippets
// the README shows (config/synapse/*.yaml, placeholders filled with this run's ports, URLs and
// secret): Synapse discovers the service over TLS it verifies against a test CA, and every step of
// a sign-in goes through Synapse's own client API with a cookie-keeping browser.
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Browser, type Hop } from './browser.ts';
import { freePort, readSnippet, startStack, trustTestCa, type Stack, type StackOptions } from './login-stack.ts';
import { startSynapse, type Synapse } from './synapse.ts';
import { makeTestCa } from './tls.ts';
import type { WikiUser } from './wiki-oauth-double.ts';

export const IDP = 'oidc-wikimedia';
export const SERVER_NAME = 'example.org';
/** A client Synapse hands login tokens to directly (sso.client_whitelist, as for Element Web). */
export const ELEMENT = 'http://127.0.0.1:9/element/';

export interface MatrixLogin {
  userId: string;
  accessToken: string;
  deviceId: string;
  browser: Browser;
  /** Whether Synapse showed its "Continue to your account" page before handing over the token. */
  confirmed: boolean;
}

export interface ClientAnswer {
  status: number;
  json: any;
}

export interface SsoStack {
  synapse: Synapse;
  /** The service and the wiki's OAuth double. */
  stack: Stack;
  clientApi(path: string, init?: { token?: string; method?: string; body?: unknown }): Promise<ClientAnswer>;
  whoami(token: string): Promise<ClientAnswer>;
  /** From "Sign in with Wikimedia" in a Matrix client to the page or redirect Synapse ends on. */
  ssoRedirect(browser: Browser, user: WikiUser, redirectUrl: string): Promise<Hop>;
  /** A whole sign-in, as the wiki user, to a Matrix access token. */
  signIn(user: WikiUser, redirectUrl?: string, browser?: Browser): Promise<MatrixLogin>;
  stop(): Promise<void>;
}

export interface SsoStackOptions {
  /** The service's configuration, merged over the login stack's. */
  config?: StackOptions['config'];
  databaseUrl?: string;
}

export async function startSsoStack(options: SsoStackOptions = {}): Promise<SsoStack> {
  const ca = await makeTestCa({ name: 'wiki-matrix-sso e2e CA' });
  trustTestCa(ca.caCert);
  const secretsDir = await mkdtemp(join(tmpdir(), 'wms-synapse-sso-'));
  let synapse: Synapse | undefined;
  let stack: Stack | undefined;
  const stop = async () => {
    await stack?.stop();
    await synapse?.stop();
    await ca.dispose();
    await rm(secretsDir, { recursive: true, force: true });
  };
  try {
    const secretFile = join(secretsDir, 'synapse-client-secret');
    await writeFile(secretFile, 'synapse-client-secret-0123456789\n', { mode: 0o600 });
    const port = await freePort();
    const issuer = `https://127.0.0.1:${port}`;
    synapse = await startSynapse({
      serverName: SERVER_NAME,
      trustedCaFile: ca.caCertPath,
      config: readSnippet('config/synapse/oidc-provider.yaml', { ISSUER: issuer, CLIENT_SECRET_FILE: secretFile, ELEMENT_URL: ELEMENT }),
    });
    const client = readSnippet('config/synapse/client.yaml', { HOMESERVER_URL: synapse.baseUrl, CLIENT_SECRET_FILE: secretFile });
    const config = options.config ?? {};
    stack = await startStack({
      port,
      tls: { certFile: ca.certPath, keyFile: ca.keyPath },
      clients: client.oidc.clients,
      ...(options.databaseUrl && { databaseUrl: options.databaseUrl }),
      config: { ...config, login: { blocked: 'any', ...config.login }, matrix: { server_name: SERVER_NAME, ...config.matrix } },
    });
    assert.equal(stack.issuer, issuer);
  } catch (error) {
    await stop();
    throw error;
  }
  const homeserver = synapse;
  const service = stack;

  async function clientApi(path: string, init: { token?: string; method?: string; body?: unknown } = {}): Promise<ClientAnswer> {
    const headers: Record<string, string> = {};
    if (init.token) headers.authorization = `Bearer ${init.token}`;
    if (init.body) headers['content-type'] = 'application/json';
    const response = await fetch(`${homeserver.baseUrl}${path}`, {
      method: init.method ?? (init.body ? 'POST' : 'GET'),
      headers,
      ...(init.body ? { body: JSON.stringify(init.body) } : {}),
      signal: AbortSignal.timeout(15_000),
    });
    const text = await response.text();
    return { status: response.status, json: text ? JSON.parse(text) : {} };
  }

  async function ssoRedirect(browser: Browser, user: WikiUser, redirectUrl: string): Promise<Hop> {
    service.wiki.login = { user };
    const start = `${homeserver.baseUrl}/_matrix/client/v3/login/sso/redirect/${IDP}?redirectUrl=${encodeURIComponent(redirectUrl)}`;
    const atClient = (u: URL) => u.href.startsWith(redirectUrl);
    // One click: Synapse's "Sign in with Wikimedia" leads through the service straight to the wiki.
    const wikiOrigin = new URL(service.wiki.baseUrl).origin;
    const toWiki = await browser.follow(start, { stopAt: (u) => u.origin === wikiOrigin || atClient(u) });
    assert.equal(toWiki.url.origin, service.issuer, `Synapse should send the browser to the service, ended at ${toWiki.url}`);
    assert.equal(toWiki.location?.origin, wikiOrigin, `the service should send the browser on to the wiki without a page of its own, got ${toWiki.status} at ${toWiki.url}`);
    return browser.follow(toWiki.location!, { stopAt: atClient });
  }

  /** Synapse's login token, from the redirect to the client or, as a person would, through its "Continue" page. */
  function loginToken(end: Hop, redirectUrl: string): { token: string; confirmed: boolean } {
    let target = end.location;
    const confirmed = !target;
    if (!target) {
      assert.equal(end.status, 200, end.body.slice(0, 500));
      assert.match(end.body, /Continue to your account/);
      const link = /<a href="([^"]+)" class="primary-button">/.exec(end.body)?.[1];
      assert.ok(link, 'Synapse\'s confirmation page links to the client');
      target = new URL(link.replace(/&amp;/g, '&'));
    }
    assert.ok(target.href.startsWith(redirectUrl), `expected a redirect to ${redirectUrl}, got ${target}`);
    const token = target.searchParams.get('loginToken');
    assert.ok(token, `no loginToken in ${target}`);
    return { token, confirmed };
  }

  return {
    synapse: homeserver,
    stack: service,
    clientApi,
    whoami: (token) => clientApi('/_matrix/client/v3/account/whoami', { token }),
    ssoRedirect,
    async signIn(user, redirectUrl = ELEMENT, browser = new Browser()) {
      const end = await ssoRedirect(browser, user, redirectUrl);
      const { token, confirmed } = loginToken(end, redirectUrl);
      const login = await clientApi('/_matrix/client/v3/login', { body: { type: 'm.login.token', token } });
      assert.equal(login.status, 200, JSON.stringify(login.json));
      return { userId: login.json.user_id, accessToken: login.json.access_token, deviceId: login.json.device_id, browser, confirmed };
    },
    stop,
  };
}
