// Matrix Authentication Service (which Element X needs) as a relying party of this service,
// configured with exactly the snippets the README shows (config/mas/*.yaml). MAS is not run here;
// instead its strict discovery (`discovery_mode: oidc`) is reproduced from its source:
// mas-oidc-client `discover()` fetches `<issuer>/.well-known/openid-configuration` and
// oauth2-types `ProviderMetadata::validate(issuer)` checks it; then a sign-in is made the way the
// snippet tells MAS to (client_secret_basic, PKCE S256, userinfo, claims_imports templates).
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, test } from '@jest/globals';
import * as client from 'openid-client';
import { Browser } from '../support/browser.ts';
import { continueToWiki, editor, freePort, readSnippet, startStack, trustTestCa, type Stack } from '../support/login-stack.ts';
import { makeTestCa, type TestCa } from '../support/tls.ts';

type Metadata = Record<string, unknown>;

const MAS_URL = 'https://auth.example.org';
const CLIENT_SECRET = 'mas-client-secret-0123456789';
/** MAS refuses other localparts, and adds no suffix of its own on a clash. */
const MAS_LOCALPART = /^[a-z0-9.=_/+-]+$/;
const ULID = /^[0-7][0-9A-HJKMNP-TV-Z]{25}$/;

/**
 * What MAS's strict discovery refuses, as messages (empty when it accepts), mirroring
 * `ProviderMetadata::validate` in crates/oauth2-types/src/oidc.rs: the required fields, an issuer
 * equal character for character to the configured one, https without query or fragment, https
 * endpoints (no fragment for authorization and token), `openid` among the scopes if listed, and
 * no `none` signing algorithm (plus algorithms whenever a JWT client authentication is offered).
 */
function masDiscoveryProblems(metadata: Metadata, issuer: string): string[] {
  const problems: string[] = [];
  const required = ['issuer', 'authorization_endpoint', 'token_endpoint', 'jwks_uri', 'response_types_supported', 'subject_types_supported', 'id_token_signing_alg_values_supported'];
  for (const field of required) if (metadata[field] === undefined) problems.push(`${field} is missing`);
  if (problems.length > 0) return problems;

  if (metadata.issuer !== issuer) problems.push(`issuer ${String(metadata.issuer)} is not exactly ${issuer}`);
  const url = (field: string, rule: 'none' | 'no-fragment' | 'no-query-or-fragment') => {
    const value = metadata[field];
    if (value === undefined) return;
    if (typeof value !== 'string' || !URL.canParse(value)) return problems.push(`${field} is not a URL`);
    const parsed = new URL(value);
    if (parsed.protocol !== 'https:') problems.push(`${field} does not use https: ${value}`);
    if (rule === 'no-query-or-fragment' && value.includes('?')) problems.push(`${field} has a query: ${value}`);
    if (rule !== 'none' && value.includes('#')) problems.push(`${field} has a fragment: ${value}`);
  };
  url('issuer', 'no-query-or-fragment');
  url('authorization_endpoint', 'no-fragment');
  url('token_endpoint', 'no-fragment');
  url('jwks_uri', 'none');
  url('registration_endpoint', 'none');
  url('revocation_endpoint', 'no-fragment');
  url('introspection_endpoint', 'none');
  url('userinfo_endpoint', 'none');
  url('pushed_authorization_request_endpoint', 'none');
  url('end_session_endpoint', 'none');

  const scopes = metadata.scopes_supported as string[] | undefined;
  if (scopes && !scopes.includes('openid')) problems.push('scopes_supported lacks openid');

  for (const endpoint of ['token_endpoint', 'revocation_endpoint', 'introspection_endpoint']) {
    const algs = (metadata[`${endpoint}_auth_signing_alg_values_supported`] as string[] | undefined) ?? [];
    const methods = (metadata[`${endpoint}_auth_methods_supported`] as string[] | undefined) ?? [];
    if (algs.includes('none')) problems.push(`${endpoint} signing algorithms contain none`);
    if (algs.length === 0 && methods.some((m) => m === 'client_secret_jwt' || m === 'private_key_jwt')) {
      problems.push(`${endpoint} offers JWT client authentication without signing algorithms`);
    }
  }
  return problems;
}

/** mas-oidc-client's discovery URL: the issuer with a trailing slash, joined with the well-known path. */
function discoveryUrl(issuer: string): URL {
  const base = new URL(issuer);
  if (!base.pathname.endsWith('/')) base.pathname += '/';
  return new URL('.well-known/openid-configuration', base);
}

/** MAS renders claims_imports with Jinja; the snippet uses only `{{ user.<claim> }}`. */
function render(template: string, user: Record<string, unknown>): string {
  assert.match(template, /^\{\{ user\.[a-z_]+ \}\}$/, `unexpected template ${template}`);
  const claim = /user\.([a-z_]+)/.exec(template)![1]!;
  return String(user[claim] ?? '');
}

describe('Matrix Authentication Service: strict discovery and sign-in with the config/mas snippets', () => {
  let ca: TestCa;
  let secretsDir: string;
  let stack: Stack;
  let provider: Record<string, any>;
  let clientEntry: Record<string, any>;
  let metadata: Metadata;

  beforeAll(async () => {
    ca = await makeTestCa({ name: 'wiki-matrix-sso MAS test CA' });
    trustTestCa(ca.caCert);
    secretsDir = await mkdtemp(join(tmpdir(), 'wms-mas-'));
    const secretFile = join(secretsDir, 'mas-client-secret');
    await writeFile(secretFile, `${CLIENT_SECRET}\n`, { mode: 0o600 });
    const port = await freePort();
    const issuer = `https://127.0.0.1:${port}`;
    provider = readSnippet('config/mas/upstream-provider.yaml', { ISSUER: issuer, CLIENT_SECRET }).upstream_oauth2.providers[0];
    clientEntry = readSnippet('config/mas/client.yaml', { MAS_URL, CLIENT_SECRET_FILE: secretFile }).oidc.clients[0];
    stack = await startStack({ port, tls: { certFile: ca.certPath, keyFile: ca.keyPath }, clients: [clientEntry] });
    const response = await fetch(discoveryUrl(provider.issuer), { signal: AbortSignal.timeout(5000) });
    assert.equal(response.status, 200);
    metadata = (await response.json()) as Metadata;
  });

  afterAll(async () => {
    await stack?.stop();
    await ca?.dispose();
    if (secretsDir) await rm(secretsDir, { recursive: true, force: true });
  });

  test('the two snippets agree: provider id, client id, auth method, scopes, callback and back-channel URIs', () => {
    assert.match(provider.id, ULID);
    assert.equal(provider.client_id, clientEntry.client_id);
    assert.equal(provider.token_endpoint_auth_method, clientEntry.token_endpoint_auth_method);
    assert.equal(provider.discovery_mode, 'oidc', 'strict discovery');
    assert.equal(provider.fetch_userinfo, true, 'claims other than sub are only in userinfo');
    for (const scope of provider.scope.split(' ')) assert.ok(clientEntry.scopes.includes(scope), `the service's client lacks scope ${scope}`);
    assert.deepEqual(clientEntry.redirect_uris, [`${MAS_URL}/upstream/callback/${provider.id}`]);
    assert.equal(clientEntry.backchannel_logout_uri, `${MAS_URL}/upstream/backchannel-logout/${provider.id}`);
  });

  test('the discovery document passes ProviderMetadata::validate against the configured issuer, over TLS', () => {
    assert.equal(new URL(provider.issuer).protocol, 'https:');
    assert.deepEqual(masDiscoveryProblems(metadata, provider.issuer), []);
    assert.equal(metadata.issuer, stack.issuer);
  });

  test('the discovery document offers what the snippet makes MAS use', () => {
    const list = (field: string) => metadata[field] as string[];
    assert.ok(list('response_types_supported').includes('code'));
    assert.ok(list('subject_types_supported').length > 0);
    assert.ok(list('id_token_signing_alg_values_supported').includes('RS256'), 'MAS expects RS256 ID tokens by default');
    assert.ok(list('code_challenge_methods_supported').includes('S256'), 'pkce_method needs S256');
    assert.ok(list('token_endpoint_auth_methods_supported').includes(provider.token_endpoint_auth_method));
    for (const scope of provider.scope.split(' ')) assert.ok(list('scopes_supported').includes(scope), `scopes_supported lacks ${scope}`);
    assert.equal(new URL(metadata.userinfo_endpoint as string).protocol, 'https:', 'fetch_userinfo needs the userinfo endpoint');
  });

  // The validator must be able to fail, or the test above proves nothing.
  const broken: Array<[string, (m: Metadata, issuer: string) => Metadata, RegExp]> = [
    ['a trailing slash on the issuer', (m, i) => ({ ...m, issuer: `${i}/` }), /issuer .* is not exactly/],
    ['an http issuer', (m, i) => ({ ...m, issuer: i.replace('https:', 'http:') }), /not exactly/],
    ['an http token endpoint', (m) => ({ ...m, token_endpoint: String(m.token_endpoint).replace('https:', 'http:') }), /token_endpoint does not use https/],
    ['a missing jwks_uri', ({ jwks_uri: _, ...m }) => m, /jwks_uri is missing/],
    ['scopes without openid', (m) => ({ ...m, scopes_supported: ['profile'] }), /lacks openid/],
    ['a fragment in the authorization endpoint', (m) => ({ ...m, authorization_endpoint: `${String(m.authorization_endpoint)}#x` }), /fragment/],
  ];
  for (const [name, mutate, message] of broken) {
    test(`MAS's checks refuse ${name}`, () => {
      assert.match(masDiscoveryProblems(mutate(metadata, provider.issuer), provider.issuer).join('; '), message);
    });
  }

  test('a sign-in as MAS makes it: the claims_imports give a valid localpart, the wiki name, the email and the linked account name', async () => {
    const config = await client.discovery(new URL(provider.issuer), provider.client_id, provider.client_secret, client.ClientSecretBasic(provider.client_secret));
    const redirectUri = clientEntry.redirect_uris[0] as string;
    const verifier = client.randomPKCECodeVerifier();
    const state = client.randomState();
    const nonce = client.randomNonce();
    const url = client.buildAuthorizationUrl(config, {
      redirect_uri: redirectUri,
      scope: provider.scope,
      state,
      nonce,
      code_challenge: await client.calculatePKCECodeChallenge(verifier),
      code_challenge_method: 'S256',
    });
    stack.wiki.login = { user: editor({ centralId: 90210, username: 'Ünïcode Editör' }) };
    const browser = new Browser();
    const atMas = (u: URL) => u.href.startsWith(redirectUri);
    const page = await browser.follow(url, { stopAt: atMas });
    const back = await continueToWiki(browser, page, redirectUri);
    assert.ok(back.location && atMas(back.location), `expected MAS's callback, got ${back.status} ${back.location}`);

    const tokens = await client.authorizationCodeGrant(config, back.location, { pkceCodeVerifier: verifier, expectedState: state, expectedNonce: nonce });
    const idToken = tokens.claims()!;
    assert.equal(idToken.sub, '90210');
    assert.equal(typeof idToken.sid, 'string', 'MAS matches back-channel logouts by sid');
    const user = await client.fetchUserInfo(config, tokens.access_token, idToken.sub);

    const { claims_imports: imports } = provider;
    assert.equal(render(imports.subject.template, user), '90210');
    const localpart = render(imports.localpart.template, user);
    assert.match(localpart, MAS_LOCALPART);
    assert.doesNotMatch(localpart, /^\d+$/, 'MAS refuses all-digit localparts');
    assert.equal(imports.localpart.action, 'require');
    assert.equal(render(imports.displayname.template, user), 'Ünïcode Editör');
    assert.equal(render(imports.email.template, user), 'jimbo@example.org');
    assert.equal(render(imports.account_name.template, user), 'Ünïcode Editör', 'MAS names the linked account after the wiki user');
  });
});
