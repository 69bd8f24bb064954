// The sign-in stack for tests: the service (on PGlite in memory, or a PostgreSQL database), the
// wiki's OAuth 2 double, and openid-client as the relying party.
import { readFileSync } from 'node:fs';
import { createServer as createHttpServer } from 'node:http';
import tls from 'node:tls';
import * as client from 'openid-client';
import supertest from 'supertest';
import YAML from 'yaml';
import { parseConfig, type Config } from '../../src/config/load.ts';
import { startService, type Service } from '../../src/commands/serve.ts';
import { createLogger } from '../../src/log.ts';
import { Browser, type Hop } from './browser.ts';
import { WikiOAuthDouble, type ProfileStyle, type WikiUser } from './wiki-oauth-double.ts';
import { freePort } from './ports.ts';

export const RP_CALLBACK = 'http://127.0.0.1:9/rp/callback';
export const RP_LOGGED_OUT = 'http://127.0.0.1:9/rp/logged-out';
export const WIKI_CONSUMER = { key: 'wms-consumer', secret: 'wms-consumer-secret' };

export { freePort };

export interface StackOptions {
  /** Extra configuration, merged over the defaults section by section. */
  config?: Record<string, Record<string, unknown>>;
  clients?: Array<Record<string, unknown>>;
  databaseUrl?: string;
  style?: ProfileStyle;
  /** Serve HTTPS with this certificate (the issuer becomes https://127.0.0.1:<port>). */
  tls?: { certFile: string; keyFile: string };
  /** The service's port, for relying parties configured before it starts; default a free one. */
  port?: number;
}

/** Records the logout tokens a relying party's back-channel logout endpoint receives. */
export interface BackchannelRecorder {
  url: string;
  tokens: string[];
  close(): Promise<void>;
}

export async function backchannelRecorder(): Promise<BackchannelRecorder> {
  const tokens: string[] = [];
  const server = createHttpServer((req, res) => {
    let body = '';
    req.on('data', (chunk) => (body += chunk));
    req.on('end', () => {
      const token = new URLSearchParams(body).get('logout_token');
      if (token) tokens.push(token);
      res.writeHead(200).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  return { url: `http://127.0.0.1:${port}/backchannel_logout`, tokens, close: () => new Promise((resolve) => server.close(() => resolve())) };
}

export interface Stack {
  issuer: string;
  backchannel: BackchannelRecorder;
  config: Config;
  /** The configuration's sections as written, e.g. for a `worker` process beside the service. */
  sections: Record<string, Record<string, unknown>>;
  wiki: WikiOAuthDouble;
  service: Service;
  /** Requests to the service's app in this process (supertest), for tests of its HTTP answers. */
  http: ReturnType<typeof supertest>;
  stop(): Promise<void>;
}

export const HOMESERVER = { client_id: 'homeserver', client_secret: 'homeserver-secret' };

export async function startStack(options: StackOptions = {}): Promise<Stack> {
  const port = options.port ?? (await freePort());
  const issuer = `${options.tls ? 'https' : 'http'}://127.0.0.1:${port}`;
  const backchannel = await backchannelRecorder();
  const wiki = await WikiOAuthDouble.start({
    consumers: [
      {
        clientId: WIKI_CONSUMER.key,
        clientSecret: WIKI_CONSUMER.secret,
        confidential: true,
        redirectUri: `${issuer}/wiki/callback`,
        grants: ['mwoauth-authonlyprivate'],
      },
    ],
    ...(options.style && { style: options.style }),
  });
  const sections: Record<string, Record<string, unknown>> = {
    http: {
      host: '127.0.0.1',
      port,
      public_url: issuer,
      shutdown_grace: 1,
      ...(options.tls && { tls: { cert_file: options.tls.certFile, key_file: options.tls.keyFile } }),
    },
    database: options.databaseUrl ? { url: options.databaseUrl } : { data_dir: 'memory://' },
    oidc: {
      cookie_keys: ['test-cookie-key-0123456789-0123456789'],
      key_encryption_secret: 'test-key-encryption-secret',
      clients: options.clients ?? [
        {
          ...HOMESERVER,
          client_name: 'Example Homeserver',
          redirect_uris: [RP_CALLBACK],
          post_logout_redirect_uris: [RP_LOGGED_OUT],
          skip_consent: true,
          backchannel_logout_uri: backchannel.url,
          scopes: ['openid', 'profile', 'email', 'wiki', 'offline_access'],
        },
      ],
    },
    wiki: { base_url: wiki.baseUrl, client_id: WIKI_CONSUMER.key, client_secret: WIKI_CONSUMER.secret, contact: 'tests@example.org', scopes: ['mwoauth-authonlyprivate'], timeout: 2, max_retries: 0 },
    matrix: { server_name: 'example.org' },
    logging: { level: (process.env.WMS_TEST_LOG ?? 'silent') as 'silent' },
  };
  for (const [section, values] of Object.entries(options.config ?? {})) sections[section] = { ...sections[section], ...values };
  const config = parseConfig(YAML.stringify(sections), 'test stack');
  const service = await startService(config, createLogger(process.env.WMS_TEST_LOG ?? 'silent'));
  return {
    issuer,
    backchannel,
    config,
    sections,
    wiki,
    service,
    http: supertest(service.handler),
    async stop() {
      await service.stop();
      await wiki.close();
      await backchannel.close();
    },
  };
}

/**
 * A configuration snippet the README shows operators (`config/synapse/…`, `config/mas/…`), with
 * its `${NAME}` placeholders filled in, parsed. Tests use the shipped files so that the documented
 * configuration is the tested one; a placeholder left unfilled or a value for none is an error.
 */
export function readSnippet(path: string, values: Record<string, string>): Record<string, any> {
  const text = readFileSync(new URL(`../../${path}`, import.meta.url), 'utf8');
  const unused = Object.keys(values).filter((name) => !text.includes(`\${${name}}`));
  if (unused.length > 0) throw new Error(`${path} has no placeholder for ${unused.join(', ')}`);
  const filled = text.replace(/\$\{([A-Z_]+)\}/g, (_, name: string) => {
    if (!(name in values)) throw new Error(`${path}: no value for the placeholder \${${name}}`);
    return values[name]!;
  });
  return YAML.parse(filled) as Record<string, any>;
}

/**
 * Makes this process's HTTPS clients (fetch, openid-client, Browser) trust a test CA besides the
 * system roots, as a homeserver given the CA would. Process-wide: later test files of the same jest
 * worker trust it too, which adds a root and takes none away.
 */
export function trustTestCa(caCert: string): void {
  tls.setDefaultCACertificates([...tls.getCACertificates('default'), caCert]);
}

export const editor = (overrides: Partial<WikiUser> = {}): WikiUser => ({
  centralId: 4242,
  username: 'Jimbo Wales',
  editCount: 1200,
  emailConfirmed: true,
  email: 'jimbo@example.org',
  registered: '20040101000000',
  groups: ['sysop'],
  ...overrides,
});

/** A relying party (openid-client) signing a browser in through the stack. */
export class RelyingParty {
  readonly config: client.Configuration;
  readonly redirectUri: string;

  private constructor(config: client.Configuration, redirectUri: string) {
    this.config = config;
    this.redirectUri = redirectUri;
  }

  static async discover(issuer: string, clientId = HOMESERVER.client_id, secret: string | undefined = HOMESERVER.client_secret, redirectUri = RP_CALLBACK) {
    const auth = secret ? client.ClientSecretBasic(secret) : client.None();
    const config = await client.discovery(new URL(issuer), clientId, secret, auth, { execute: [client.allowInsecureRequests] });
    return new RelyingParty(config, redirectUri);
  }

  async authorizationRequest(params: Record<string, string> = {}, options: { pkce?: boolean } = {}) {
    const verifier = client.randomPKCECodeVerifier();
    const state = client.randomState();
    const nonce = client.randomNonce();
    const url = client.buildAuthorizationUrl(this.config, {
      redirect_uri: this.redirectUri,
      scope: 'openid profile email wiki',
      state,
      nonce,
      ...(options.pkce !== false && { code_challenge: await client.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256' }),
      ...params,
    });
    return { url, verifier, state, nonce };
  }

  /** From the authorization request to the relying party's callback, pressing "Continue" on the way. */
  async signIn(browser: Browser, params: Record<string, string> = {}) {
    const request = await this.authorizationRequest(params);
    const page = await browser.follow(request.url, { stopAt: (u) => u.href.startsWith(this.redirectUri) });
    const back = await continueToWiki(browser, page, this.redirectUri);
    return { request, back };
  }

  async exchange(callback: URL, request: { verifier: string; state: string; nonce: string }) {
    return client.authorizationCodeGrant(this.config, callback, { pkceCodeVerifier: request.verifier, expectedState: request.state, expectedNonce: request.nonce });
  }
}

/** Presses "Continue with <wiki>" on the sign-in page (third-party apps only) and follows until the relying party's callback or a page. */
export async function continueToWiki(browser: Browser, page: Hop, redirectUri: string): Promise<Hop> {
  // A first-party app (skip_consent) goes to the wiki without the page: `page` is already the end.
  if (!page.url.pathname.startsWith('/interaction/')) return page;
  if (page.status !== 200 || !/<form/.test(page.body)) {
    throw new Error(`expected the sign-in page, got ${page.status} at ${page.url} (location ${page.location}):\n${page.body.slice(0, 500)}`);
  }
  return browser.submit(page, /\/interaction\/[^/]+\/wiki$/, { stopAt: (u) => u.href.startsWith(redirectUri) });
}
