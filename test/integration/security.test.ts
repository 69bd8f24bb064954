// Issue 9: the provider tried as a hostile client would, over HTTP, with openid-client and raw requests.
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import * as client from 'openid-client';
import YAML from 'yaml';
import { run, start } from '../support/cli.ts';
import { Browser } from '../support/browser.ts';
import { HOMESERVER, RP_CALLBACK, RelyingParty, continueToWiki, editor, freePort, startStack, trustTestCa, type Stack } from '../support/login-stack.ts';
import { makeTestCa, type TestCa } from '../support/tls.ts';
import { WikiOAuthDouble } from '../support/wiki-oauth-double.ts';

const POST_CLIENT = { client_id: 'post-client', client_secret: 'post-client-secret' };

async function signedIn(stack: Stack, rp: RelyingParty, centralId: number) {
  stack.wiki.login = { user: editor({ centralId, username: `Hostile ${centralId}` }) };
  const { request, back } = await rp.signIn(new Browser());
  return rp.exchange(back.location!, request);
}

async function tokenRequest(stack: Pick<Stack, 'issuer'>, form: Record<string, string>, basic?: { id: string; secret: string }) {
  const headers: Record<string, string> = { 'content-type': 'application/x-www-form-urlencoded' };
  if (basic) headers.authorization = `Basic ${Buffer.from(`${encodeURIComponent(basic.id)}:${encodeURIComponent(basic.secret)}`).toString('base64')}`;
  const res = await fetch(`${stack.issuer}/token`, { method: 'POST', headers, body: new URLSearchParams(form) });
  return { status: res.status, body: (await res.json()) as Record<string, string> };
}

describe('hostile clients', () => {
  let stack: Stack;
  let rp: RelyingParty;
  before(async () => {
    stack = await startStack({
      clients: [
        { ...HOMESERVER, client_name: 'Example Homeserver', redirect_uris: [RP_CALLBACK], skip_consent: true, scopes: ['openid', 'profile', 'email', 'wiki', 'offline_access'] },
        { ...POST_CLIENT, token_endpoint_auth_method: 'client_secret_post', redirect_uris: [RP_CALLBACK], skip_consent: true, scopes: ['openid', 'profile'] },
      ],
    });
    rp = await RelyingParty.discover(stack.issuer);
  });
  after(() => stack.stop());

  test('item 1: a confidential client\'s refresh token rotates, and reusing the old one revokes the whole grant', async () => {
    const tokens = await signedIn(stack, rp, 9901);
    const first = await client.refreshTokenGrant(rp.config, tokens.refresh_token!);
    assert.ok(first.refresh_token);
    assert.notEqual(first.refresh_token, tokens.refresh_token, 'the refresh token rotates');
    const reuse = await tokenRequest(stack, { grant_type: 'refresh_token', refresh_token: tokens.refresh_token! }, { id: HOMESERVER.client_id, secret: HOMESERVER.client_secret });
    assert.equal(reuse.status, 400);
    assert.equal(reuse.body.error, 'invalid_grant');
    // Reuse detection: the rotated token and the access tokens of the grant die with it.
    await assert.rejects(client.refreshTokenGrant(rp.config, first.refresh_token!), (error: { error?: string }) => error.error === 'invalid_grant');
    await assert.rejects(client.fetchUserInfo(rp.config, first.access_token, '9901'), /invalid_token|WWW-Authenticate/);
  });

  test('item 2: the registered client authentication method is the only one accepted', async () => {
    const tokens = await signedIn(stack, rp, 9902);
    const refresh = { grant_type: 'refresh_token', refresh_token: tokens.refresh_token! };
    const post = await tokenRequest(stack, { ...refresh, client_id: HOMESERVER.client_id, client_secret: HOMESERVER.client_secret });
    assert.equal(post.status, 401, 'client_secret_basic client refused with client_secret_post');
    assert.equal(post.body.error, 'invalid_client');
    const basic = await tokenRequest(stack, refresh, { id: HOMESERVER.client_id, secret: HOMESERVER.client_secret });
    assert.equal(basic.status, 200, 'the registered method still works');

    const wrongWay = await tokenRequest(stack, { grant_type: 'refresh_token', refresh_token: 'x' }, { id: POST_CLIENT.client_id, secret: POST_CLIENT.client_secret });
    assert.equal(wrongWay.status, 401, 'client_secret_post client refused with client_secret_basic');
    assert.equal(wrongWay.body.error, 'invalid_client');
    const none = await tokenRequest(stack, { grant_type: 'refresh_token', refresh_token: 'x', client_id: POST_CLIENT.client_id });
    assert.equal(none.status, 401, 'no secret: refused');
  });

  test('item 4: CORS preflight on /token and /me advertises nothing to a browser origin', async () => {
    for (const path of ['/token', '/me', '/token/revocation', '/token/introspection']) {
      const res = await fetch(`${stack.issuer}${path}`, { method: 'OPTIONS', headers: { origin: 'https://evil.example', 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization' } });
      assert.equal(res.headers.get('access-control-allow-origin'), null, `${path} reflects the origin`);
      assert.equal(res.headers.get('access-control-allow-methods'), null, path);
      assert.equal(res.headers.get('access-control-allow-headers'), null, path);
    }
    const discovery = await fetch(`${stack.issuer}/.well-known/openid-configuration`, { headers: { origin: 'https://app.example' } });
    assert.equal(discovery.headers.get('access-control-allow-origin'), 'https://app.example', 'discovery stays readable from browsers');
  });

  test('item 5: POST to the authorization endpoint (form-encoded) works like GET', async () => {
    stack.wiki.login = { user: editor({ centralId: 9905, username: 'Poster' }) };
    const request = await rp.authorizationRequest();
    const browser = new Browser();
    const form = Object.fromEntries(request.url.searchParams);
    const first = await browser.request(new URL(request.url.pathname, request.url), { form });
    assert.equal(first.status, 303, `POST /auth answered ${first.status}: ${first.body.slice(0, 200)}`);
    const page = await browser.follow(first.location!);
    const back = await continueToWiki(browser, page, RP_CALLBACK);
    assert.ok(back.location?.href.startsWith(RP_CALLBACK));
    const tokens = await rp.exchange(back.location!, request);
    assert.ok(tokens.access_token);
  });
});

describe('TLS terminated by the service', () => {
  let ca: TestCa;
  let stack: Stack;
  before(async () => {
    ca = await makeTestCa({ name: 'wiki-matrix-sso security test CA' });
    trustTestCa(ca.caCert);
    stack = await startStack({ tls: { certFile: ca.certPath, keyFile: ca.keyPath } });
  });
  after(async () => {
    await stack?.stop();
    await ca?.dispose();
  });

  test('item 3: every HTTPS response carries Strict-Transport-Security', async () => {
    for (const path of ['/health', '/.well-known/openid-configuration', '/nope']) {
      const res = await fetch(`${stack.issuer}${path}`);
      assert.match(res.headers.get('strict-transport-security') ?? '', /^max-age=\d{7,}/, path);
    }
  });
});

describe('plain HTTP behind a proxy', () => {
  test('item 3: no Strict-Transport-Security over plain HTTP (the proxy sets it)', async () => {
    const stack = await startStack({ config: { http: { trust_proxy: true } } });
    try {
      const res = await fetch(`${stack.issuer}/health`, { headers: { 'x-forwarded-proto': 'https' } });
      assert.equal(res.headers.get('strict-transport-security'), null);
    } finally {
      await stack.stop();
    }
  });
});

describe('secrets stay out of logs and config show', () => {
  test('a full sign-in through the real executable logs no secret, token or code, at debug level', async () => {
    const port = await freePort();
    const issuer = `http://127.0.0.1:${port}`;
    const secrets = {
      cookie: 'cookie-key-s3cr3t-0123456789-abcdefghij',
      kek: 'key-encryption-s3cr3t-0123456789',
      client: 'homeserver-client-s3cr3t-0123456789',
      consumer: 'wiki-consumer-s3cr3t-0123456789',
    };
    const wiki = await WikiOAuthDouble.start({
      consumers: [{ clientId: 'wms-consumer', clientSecret: secrets.consumer, confidential: true, redirectUri: `${issuer}/wiki/callback`, grants: ['mwoauth-authonlyprivate'] }],
    });
    const dir = mkdtempSync(join(tmpdir(), 'wms-secrets-'));
    const config = join(dir, 'config.yaml');
    writeFileSync(
      config,
      YAML.stringify({
        http: { host: '127.0.0.1', port, public_url: issuer },
        database: { data_dir: join(dir, 'data') },
        oidc: {
          cookie_keys: [secrets.cookie],
          key_encryption_secret: secrets.kek,
          clients: [{ client_id: 'homeserver', client_secret: secrets.client, redirect_uris: [RP_CALLBACK], skip_consent: true, scopes: ['openid', 'profile', 'email', 'wiki', 'offline_access'] }],
        },
        wiki: { base_url: wiki.baseUrl, client_id: 'wms-consumer', client_secret: secrets.consumer, contact: 'tests@example.org', scopes: ['mwoauth-authonlyprivate'], max_retries: 0 },
        matrix: { server_name: 'example.org' },
        logging: { level: 'debug' },
      }),
    );
    const serve = start(['serve', '--config', config]);
    try {
      await serve.waitFor(/"listening"/);
      const rp = await RelyingParty.discover(issuer, 'homeserver', secrets.client);
      wiki.login = { user: editor({ centralId: 9950, username: 'Secret Keeper' }) };
      const browser = new Browser();
      const { request, back } = await rp.signIn(browser);
      const code = back.location!.searchParams.get('code')!;
      const tokens = await rp.exchange(back.location!, request);
      const refreshed = await client.refreshTokenGrant(rp.config, tokens.refresh_token!);
      await client.fetchUserInfo(rp.config, refreshed.access_token, '9950');
      // A refused request too: error paths log more.
      await tokenRequest({ issuer }, { grant_type: 'authorization_code', code, redirect_uri: RP_CALLBACK }, { id: 'homeserver', secret: secrets.client });
      const shown = await run(['config', 'show', '--config', config]);
      assert.equal(shown.code, 0, shown.stderr);
      serve.child.kill('SIGTERM');
      await serve.exited;
      const output = serve.output() + shown.stdout + shown.stderr;
      assert.match(serve.output(), /"msg":"request"/, 'the log was captured');
      const values = { ...secrets, code, access: tokens.access_token, refresh: tokens.refresh_token!, idToken: tokens.id_token!, refreshedAccess: refreshed.access_token, refreshedRefresh: refreshed.refresh_token! };
      for (const [name, value] of Object.entries(values)) assert.ok(!output.includes(value), `${name} appears in the log or config show`);
    } finally {
      serve.child.kill('SIGKILL');
      await wiki.close();
    }
  });
});
