// Issue 9: the provider tried as a hostile client would, over HTTP, with openid-client and raw requests.
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, test } from '@jest/globals';
import * as client from 'openid-client';
import supertest from 'supertest';
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

async function tokenRequest(stack: Pick<Stack, 'http'>, form: Record<string, string>, basic?: { id: string; secret: string }) {
  const req = stack.http.post('/token').type('form').send(new URLSearchParams(form).toString());
  if (basic) req.set('authorization', `Basic ${Buffer.from(`${encodeURIComponent(basic.id)}:${encodeURIComponent(basic.secret)}`).toString('base64')}`);
  const res = await req;
  return { status: res.status, body: res.body as Record<string, string> };
}

describe('hostile clients', () => {
  let stack: Stack;
  let rp: RelyingParty;
  beforeAll(async () => {
    stack = await startStack({
      clients: [
        { ...HOMESERVER, client_name: 'Example Homeserver', redirect_uris: [RP_CALLBACK], skip_consent: true, scopes: ['openid', 'profile', 'email', 'wiki', 'offline_access'] },
        { ...POST_CLIENT, token_endpoint_auth_method: 'client_secret_post', redirect_uris: [RP_CALLBACK], skip_consent: true, scopes: ['openid', 'profile'] },
      ],
    });
    rp = await RelyingParty.discover(stack.issuer);
  });
  afterAll(() => stack.stop());

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
      const res = await stack.http.options(path).set({ origin: 'https://evil.example', 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization' });
      assert.equal(res.headers['access-control-allow-origin'], undefined, `${path} reflects the origin`);
      assert.equal(res.headers['access-control-allow-methods'], undefined, path);
      assert.equal(res.headers['access-control-allow-headers'], undefined, path);
    }
    const discovery = await stack.http.get('/.well-known/openid-configuration').set('origin', 'https://app.example');
    assert.equal(discovery.headers['access-control-allow-origin'], 'https://app.example', 'discovery stays readable from browsers');
  });

  test('item 5: POST to the authorization endpoint (form-encoded) works like GET', async () => {
    stack.wiki.login = { user: editor({ centralId: 9905, username: 'Poster' }) };
    const request = await rp.authorizationRequest();
    const browser = new Browser();
    const form = Object.fromEntries(request.url.searchParams);
    const first = await browser.request(new URL(request.url.pathname, request.url), { form });
    assert.equal(first.status, 303, `POST /auth answered ${first.status}: ${first.body.slice(0, 200)}`);
    const back = await continueToWiki(browser, await browser.follow(first.location!, { stopAt: (u) => u.href.startsWith(RP_CALLBACK) }), RP_CALLBACK);
    assert.ok(back.location?.href.startsWith(RP_CALLBACK));
    const tokens = await rp.exchange(back.location!, request);
    assert.ok(tokens.access_token);
  });
});

describe('TLS terminated by the service', () => {
  let ca: TestCa;
  let stack: Stack;
  beforeAll(async () => {
    ca = await makeTestCa({ name: 'wiki-matrix-sso security test CA' });
    trustTestCa(ca.caCert);
    stack = await startStack({ tls: { certFile: ca.certPath, keyFile: ca.keyPath } });
  });
  afterAll(async () => {
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
      const res = await stack.http.get('/health').set('x-forwarded-proto', 'https');
      assert.equal(res.status, 200);
      assert.equal(res.headers['strict-transport-security'], undefined);
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
      await tokenRequest({ http: supertest(issuer) }, { grant_type: 'authorization_code', code, redirect_uri: RP_CALLBACK }, { id: 'homeserver', secret: secrets.client });
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

describe('what already holds and must keep holding', () => {
  let stack: Stack;
  let rp: RelyingParty;
  beforeAll(async () => {
    stack = await startStack();
    rp = await RelyingParty.discover(stack.issuer);
  });
  afterAll(() => stack.stop());

  const refusedAt = async (params: Record<string, string>, options: { pkce?: boolean } = {}) => {
    const { url } = await rp.authorizationRequest(params, options);
    return new Browser().request(url);
  };

  test('redirect_uri must match exactly: 21 variants are refused on a page, never redirected to', async () => {
    const base = new URL(RP_CALLBACK);
    const variants = [
      'http://127.0.0.1:9/evil', `${RP_CALLBACK}/`, `${RP_CALLBACK}/../evil`, `${RP_CALLBACK}x`, `${RP_CALLBACK}?next=x`, `${RP_CALLBACK}#frag`,
      `${RP_CALLBACK}%2F..`, RP_CALLBACK.toUpperCase(), `https://127.0.0.1:9${base.pathname}`, `http://127.0.0.1:10${base.pathname}`, `http://localhost:9${base.pathname}`,
      `http://127.0.0.1${base.pathname}`, `http://127.0.0.1:9/RP/callback`, `http://user@127.0.0.1:9${base.pathname}`, `http://127.0.0.1:9@evil.example${base.pathname}`,
      `http://evil.example/?${RP_CALLBACK}`, `//evil.example${base.pathname}`, `javascript:alert(1)//${RP_CALLBACK}`, ` ${RP_CALLBACK}`, `${RP_CALLBACK}%00`, `http://[::1]:9${base.pathname}`,
    ];
    assert.equal(variants.length, 21);
    for (const redirect of variants) {
      const page = await refusedAt({ redirect_uri: redirect });
      assert.equal(page.status, 400, redirect);
      assert.equal(page.location, undefined, redirect);
    }
  });

  test('only the code response type; implicit and hybrid are refused', async () => {
    for (const responseType of ['token', 'id_token', 'code id_token', 'code token', 'id_token token', 'none']) {
      const page = await refusedAt({ response_type: responseType });
      // Errors for token-bearing response types go in the fragment, as OAuth 2 defines for them.
      const answer = new URLSearchParams(page.location?.hash.slice(1) || page.location?.search || '');
      const error = answer.get('error') ?? (page.status === 400 ? 'page' : undefined);
      assert.ok(error === 'unsupported_response_type' || error === 'invalid_request' || error === 'page', `${responseType}: ${page.status} ${page.location}`);
      assert.equal(answer.get('access_token'), null);
      assert.equal(answer.get('id_token'), null);
      assert.equal(answer.get('code'), null);
    }
  });

  test('PKCE: plain is refused, and for a confidential client a wrong or missing verifier fails the exchange', async () => {
    const plain = await refusedAt({ code_challenge: 'a'.repeat(43), code_challenge_method: 'plain' });
    assert.equal(plain.location?.searchParams.get('error'), 'invalid_request');

    stack.wiki.login = { user: editor({ centralId: 9960, username: 'Pkce Tester' }) };
    const { request, back } = await rp.signIn(new Browser());
    const code = back.location!.searchParams.get('code')!;
    const basic = { id: HOMESERVER.client_id, secret: HOMESERVER.client_secret };
    const missing = await tokenRequest(stack, { grant_type: 'authorization_code', code, redirect_uri: RP_CALLBACK }, basic);
    assert.equal(missing.body.error, 'invalid_grant');
    const wrong = await tokenRequest(stack, { grant_type: 'authorization_code', code, redirect_uri: RP_CALLBACK, code_verifier: `${request.verifier.slice(0, -1)}${request.verifier.endsWith('A') ? 'B' : 'A'}` }, basic);
    assert.equal(wrong.body.error, 'invalid_grant');
  });

  test('a replayed authorization code fails and revokes the tokens issued for it', async () => {
    stack.wiki.login = { user: editor({ centralId: 9961, username: 'Code Replayer' }) };
    const { request, back } = await rp.signIn(new Browser());
    const tokens = await rp.exchange(back.location!, request);
    await assert.rejects(rp.exchange(back.location!, request), (error: { error?: string }) => error.error === 'invalid_grant');
    await assert.rejects(client.fetchUserInfo(rp.config, tokens.access_token, '9961'), /invalid_token|WWW-Authenticate/);
    await assert.rejects(client.refreshTokenGrant(rp.config, tokens.refresh_token!), (error: { error?: string }) => error.error === 'invalid_grant');
  });

  test('the authorization response carries iss (RFC 9207), and discovery says so', async () => {
    stack.wiki.login = { user: editor({ centralId: 9962, username: 'Mix Up' }) };
    const { back } = await rp.signIn(new Browser());
    assert.equal(back.location!.searchParams.get('iss'), stack.issuer);
    assert.equal(rp.config.serverMetadata().authorization_response_iss_parameter_supported, true);
    const error = await refusedAt({ prompt: 'none' });
    assert.equal(error.location?.searchParams.get('error'), 'login_required');
    assert.equal(error.location?.searchParams.get('iss'), stack.issuer, 'error responses too');
  });

  test('request objects and request_uri are refused', async () => {
    const unsigned = `${Buffer.from('{"alg":"none"}').toString('base64url')}.${Buffer.from(JSON.stringify({ redirect_uri: 'http://127.0.0.1:9/evil' })).toString('base64url')}.`;
    for (const params of [{ request: unsigned }, { request_uri: 'https://evil.example/request.jwt' }] as Record<string, string>[]) {
      const page = await refusedAt(params);
      const error = page.location?.searchParams.get('error');
      assert.ok(page.status === 400 || (error && /not_supported|invalid_request/.test(error)), `${JSON.stringify(params)}: ${page.status} ${page.location}`);
      assert.ok(!page.location?.href.startsWith('http://127.0.0.1:9/evil'));
    }
  });

  test('oversized input is refused, never a crash', async () => {
    const long = await refusedAt({ state: 'x'.repeat(100_000) });
    assert.ok(long.status === 400 || long.status === 414 || long.status === 431 || long.status === 303, `${long.status}`);
    const body = await stack.http.post('/token').type('form').send(`grant_type=refresh_token&refresh_token=${'x'.repeat(200_000)}`);
    assert.ok(body.status === 413 || body.status === 400, `${body.status}`);
    assert.equal((await stack.http.get('/health')).status, 200);
  });

  test('logout redirects only to a registered post_logout_redirect_uri, with an id_token_hint', async () => {
    stack.wiki.login = { user: editor({ centralId: 9963, username: 'Leaver' }) };
    const browser = new Browser();
    const { request, back } = await rp.signIn(browser);
    const tokens = await rp.exchange(back.location!, request);
    const evil = client.buildEndSessionUrl(rp.config, { id_token_hint: tokens.id_token!, post_logout_redirect_uri: 'http://127.0.0.1:9/evil' });
    const refused = await browser.request(evil);
    assert.equal(refused.status, 400);
    assert.equal(refused.location, undefined);
    const noHint = await browser.request(`${stack.issuer}/session/end?post_logout_redirect_uri=${encodeURIComponent('http://127.0.0.1:9/rp/logged-out')}`);
    assert.equal(noHint.location, undefined, 'no redirect without id_token_hint or client_id');
  });

  test('cookies are HttpOnly and SameSite=Lax; pages have CSP frame-ancestors none, nosniff, no-referrer, no-store', async () => {
    const browser = new Browser();
    const { url } = await rp.authorizationRequest();
    const first = await browser.request(url);
    const cookies = first.headers.getSetCookie();
    assert.ok(cookies.length > 0);
    for (const cookie of cookies) {
      assert.match(cookie, /httponly/i, cookie);
      assert.match(cookie, /samesite=lax/i, cookie);
    }
    // The homeserver signs in with one click (no page of ours on the way), so the page is an error page.
    const page = await browser.request(`${stack.issuer}/wiki/callback?state=forged&code=x`);
    assert.equal(page.status, 400);
    assert.match(page.headers.get('content-type')!, /text\/html/);
    assert.match(page.headers.get('content-security-policy')!, /frame-ancestors 'none'/);
    assert.match(page.headers.get('content-security-policy')!, /default-src 'none'/);
    assert.equal(page.headers.get('x-content-type-options'), 'nosniff');
    assert.equal(page.headers.get('referrer-policy'), 'no-referrer');
    assert.match(page.headers.get('cache-control') ?? '', /no-store/);
    const token = await tokenRequest(stack, { grant_type: 'refresh_token', refresh_token: 'x' }, { id: HOMESERVER.client_id, secret: HOMESERVER.client_secret });
    assert.equal(token.status, 400);
  });

  test('token and userinfo answers are not cacheable', async () => {
    stack.wiki.login = { user: editor({ centralId: 9964, username: 'Cache Tester' }) };
    const { request, back } = await rp.signIn(new Browser());
    const code = back.location!.searchParams.get('code')!;
    const res = await stack.http
      .post('/token')
      .auth(HOMESERVER.client_id, HOMESERVER.client_secret)
      .type('form')
      .send(new URLSearchParams({ grant_type: 'authorization_code', code, redirect_uri: RP_CALLBACK, code_verifier: request.verifier }).toString());
    assert.equal(res.status, 200);
    assert.match(res.headers['cache-control'] ?? '', /no-store/);
    const { access_token } = res.body as { access_token: string };
    const me = await stack.http.get('/me').set('authorization', `Bearer ${access_token}`);
    assert.equal(me.status, 200);
    assert.match(me.headers['cache-control'] ?? '', /no-store/);
  });
});
