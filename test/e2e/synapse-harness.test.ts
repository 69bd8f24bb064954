// Proves the real-Synapse harness: users and password login work, and Synapse, as an OIDC
// relying party with metadata verification on, fetches a provider's discovery document over
// HTTPS from 127.0.0.1 when (and only when) it trusts the provider's CA through SSL_CERT_FILE.
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, jest, test } from '@jest/globals';
import { startSynapse, synapseAvailable, type Synapse } from '../support/synapse.ts';
import { makeTestCa, type TestCa } from '../support/tls.ts';
import { skipUnless } from '../support/real-parts.ts';
import { skippable } from '../support/suites.ts';

const unavailable = synapseAvailable();
const skip = skipUnless(unavailable);

interface FakeProvider {
  issuer: string;
  authorizationEndpoint: string;
  /** Requests that completed a TLS handshake: `METHOD path user-agent`. */
  requests: string[];
  /** Handshakes the client aborted, e.g. because it did not trust our certificate. */
  tlsErrors: string[];
  close(): Promise<void>;
}

/** Serves only a discovery document (and an empty JWKS): enough for Synapse to validate it. */
async function fakeProvider(ca: TestCa): Promise<FakeProvider> {
  let issuer = '';
  const requests: string[] = [];
  const tlsErrors: string[] = [];
  const server: Server = createServer({ cert: ca.cert, key: ca.key }, (req, res) => {
    requests.push(`${req.method} ${req.url} ${req.headers['user-agent'] ?? ''}`);
    const send = (body: unknown) => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(body));
    if (req.url === '/.well-known/openid-configuration') {
      send({
        issuer,
        authorization_endpoint: `${issuer}/authorize`,
        token_endpoint: `${issuer}/token`,
        userinfo_endpoint: `${issuer}/me`,
        jwks_uri: `${issuer}/jwks`,
        response_types_supported: ['code'],
        subject_types_supported: ['public'],
        id_token_signing_alg_values_supported: ['RS256'],
        token_endpoint_auth_methods_supported: ['client_secret_basic'],
        code_challenge_methods_supported: ['S256'],
      });
    } else if (req.url === '/jwks') {
      send({ keys: [] });
    } else {
      res.writeHead(404).end();
    }
  });
  server.on('tlsClientError', (error) => tlsErrors.push(error.message));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  issuer = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    issuer,
    authorizationEndpoint: `${issuer}/authorize`,
    requests,
    tlsErrors,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

function oidcProvider(idpId: string, issuer: string) {
  return {
    idp_id: idpId,
    idp_name: `Test ${idpId}`,
    issuer,
    discover: true,
    client_id: 'synapse',
    client_secret: 'not-a-real-secret',
    scopes: ['openid'],
    user_profile_method: 'userinfo_endpoint',
    user_mapping_provider: { config: { localpart_template: '{{ user.preferred_username }}' } },
  };
}

jest.setTimeout(120_000);

skippable(describe, skip)('Synapse harness', () => {
  let trustedCa: TestCa;
  let strangerCa: TestCa;
  let trusted: FakeProvider;
  let stranger: FakeProvider;
  let synapse: Synapse;

  beforeAll(async () => {
    if (unavailable) throw new Error(unavailable);
    trustedCa = await makeTestCa({ name: 'trusted test CA' });
    strangerCa = await makeTestCa({ name: 'untrusted test CA' });
    trusted = await fakeProvider(trustedCa);
    stranger = await fakeProvider(strangerCa);
    synapse = await startSynapse({
      trustedCaFile: trustedCa.caCertPath,
      config: { oidc_providers: [oidcProvider('trusted', trusted.issuer), oidcProvider('stranger', stranger.issuer)] },
    });
  });

  afterAll(async () => {
    await synapse?.stop();
    await Promise.all([trusted?.close(), stranger?.close()]);
    await Promise.all([trustedCa?.dispose(), strangerCa?.dispose()]);
  });

  const clientApi = async (path: string, init: RequestInit = {}) =>
    fetch(`${synapse.baseUrl}/_matrix/client/v3${path}`, { redirect: 'manual', signal: AbortSignal.timeout(15_000), ...init });

  test('reports its version', () => {
    console.info(`Synapse ${synapse.version} at ${synapse.baseUrl} (server name ${synapse.serverName})`);
    assert.match(synapse.version, /^\d+\.\d+\.\d+/);
  });

  test('a registered user logs in with a password and whoami names them', async () => {
    const { userId } = await synapse.registerUser('alice', 'correct horse battery');
    assert.equal(userId, `@alice:${synapse.serverName}`);
    const token = await synapse.login('alice', 'correct horse battery');
    const whoami = await clientApi('/account/whoami', { headers: { authorization: `Bearer ${token}` } });
    assert.equal(whoami.status, 200);
    assert.equal(((await whoami.json()) as { user_id: string }).user_id, userId);
  });

  test('the login flows offer SSO with both providers', async () => {
    type Flow = { type: string; identity_providers?: { id: string }[] };
    const { flows } = (await (await clientApi('/login')).json()) as { flows: Flow[] };
    const sso = flows.find((f) => f.type === 'm.login.sso');
    assert.ok(sso, `no m.login.sso flow in ${JSON.stringify(flows)}`);
    assert.deepEqual(sso.identity_providers?.map((p) => p.id).sort(), ['oidc-stranger', 'oidc-trusted']);
  });

  test('Synapse fetches the discovery document over TLS from a CA it trusts', async () => {
    const redirectUrl = encodeURIComponent('http://127.0.0.1/after-login');
    const response = await clientApi(`/login/sso/redirect/oidc-trusted?redirectUrl=${redirectUrl}`);
    assert.equal(response.status, 302, await response.text());
    const location = new URL(response.headers.get('location') ?? '');
    assert.equal(`${location.origin}${location.pathname}`, trusted.authorizationEndpoint);
    assert.equal(location.searchParams.get('client_id'), 'synapse');
    assert.equal(location.searchParams.get('redirect_uri'), `${synapse.baseUrl}/_synapse/client/oidc/callback`);
    assert.equal(location.searchParams.get('code_challenge_method'), 'S256');
    const discovery = trusted.requests.find((r) => r.startsWith('GET /.well-known/openid-configuration '));
    assert.ok(discovery, `no discovery request reached the provider: ${JSON.stringify(trusted.requests)}`);
    assert.match(discovery, /Synapse\//);
    assert.deepEqual(trusted.tlsErrors, []);
    console.info(`provider saw: ${trusted.requests.join('; ')}`);
  });

  test('Synapse refuses a provider whose CA it does not trust', async () => {
    const response = await clientApi('/login/sso/redirect/oidc-stranger?redirectUrl=http%3A%2F%2F127.0.0.1%2F');
    assert.notEqual(response.status, 302);
    await response.body?.cancel();
    assert.deepEqual(stranger.requests, [], 'no HTTP request may pass an untrusted handshake');
    assert.ok(stranger.tlsErrors.length > 0, 'Synapse should have aborted the TLS handshake');
    console.info(`redirect answered ${response.status}; provider saw TLS errors: ${[...new Set(stranger.tlsErrors)].join('; ')}`);
  });
});
