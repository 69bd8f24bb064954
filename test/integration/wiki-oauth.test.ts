// The wiki OAuth 2 client against the Extension:OAuth double, over loopback.
import assert from 'node:assert/strict';
import { afterAll, beforeAll, beforeEach, describe, it } from '@jest/globals';
import { WikiOAuthClient, WikiOAuthError, type VisibleWikiProfile, type WikiOAuthClientOptions } from '../../src/wiki/oauth.ts';
import { WikiOAuthDouble, type DoubleConsumer, type WikiUser } from '../support/wiki-oauth-double.ts';

const REDIRECT = 'https://sso.example.org/wiki/callback';
const UA = 'wiki-matrix-sso-test/0.1 (ops@example.org)';

const confidential: DoubleConsumer = {
  clientId: 'conf-key',
  clientSecret: 'conf-secret',
  confidential: true,
  redirectUri: REDIRECT,
  grants: ['mwoauth-authonly'],
};
const publicConsumer: DoubleConsumer = {
  clientId: 'public-key',
  clientSecret: 'public-secret',
  confidential: false,
  redirectUri: REDIRECT,
  grants: ['mwoauth-authonly', 'mwoauth-authonlyprivate'],
};

function ada(overrides: Partial<WikiUser> = {}): WikiUser {
  return {
    centralId: 4242,
    username: 'Ada Lovelace',
    editCount: 1815,
    emailConfirmed: true,
    email: 'ada@example.org',
    realName: 'Augusta Ada King',
    groups: ['sysop'],
    registered: '20150101120000',
    ...overrides,
  };
}

let wiki: WikiOAuthDouble;

function client(overrides: Partial<WikiOAuthClientOptions> = {}): WikiOAuthClient {
  return new WikiOAuthClient({
    baseUrl: wiki.baseUrl,
    clientId: confidential.clientId,
    clientSecret: confidential.clientSecret,
    scopes: ['mwoauth-authonly'],
    userAgent: UA,
    timeoutMs: 2000,
    ...overrides,
  });
}

/** Plays the browser: opens the authorization URL and returns where the wiki redirects it. */
async function visit(url: string): Promise<string> {
  const response = await fetch(url, { redirect: 'manual', signal: AbortSignal.timeout(2000) });
  const location = response.headers.get('location');
  assert.equal(response.status, 302, `authorize answered ${response.status}: ${await response.text()}`);
  assert.ok(location);
  return location;
}

/** A whole sign-in; returns the profile, or throws what `finish` threw. */
async function signIn(c = client(), state = 'interaction-uid-1') {
  const { url, codeVerifier } = await c.start({ redirectUri: REDIRECT, state });
  const callbackUrl = await visit(url);
  return c.finish({ callbackUrl, expectedState: state, codeVerifier, redirectUri: REDIRECT });
}

async function rejectsWith(promise: Promise<unknown>, code: string, check: (e: WikiOAuthError) => void = () => {}) {
  await assert.rejects(promise, (error: unknown) => {
    assert.ok(error instanceof WikiOAuthError, `expected WikiOAuthError, got ${String(error)}`);
    assert.equal(error.code, code, `${error.code}: ${error.upstreamDescription ?? ''}`);
    check(error);
    return true;
  });
}

beforeAll(async () => {
  wiki = await WikiOAuthDouble.start({ consumers: [confidential, publicConsumer] });
});
afterAll(async () => {
  await wiki.close();
});
beforeEach(() => {
  wiki.requests.length = 0;
  wiki.style = 'current';
  wiki.login = { user: ada(), approve: true };
});

describe('wiki OAuth 2 sign-in', () => {
  it('happy path: PKCE S256 verified by the wiki, profile read', async () => {
    const profile = (await signIn()) as VisibleWikiProfile;
    assert.equal(profile.hidden, false);
    assert.equal(profile.centralId, '4242');
    assert.equal(profile.attached, true);
    assert.equal(profile.username, 'Ada Lovelace');
    assert.equal(profile.editCount, 1815);
    assert.deepEqual(profile.groups, ['sysop', '*', 'user', 'autoconfirmed']);
    assert.deepEqual(profile.grants, ['mwoauth-authonly']);
    assert.deepEqual(profile.registered, new Date(Date.UTC(2015, 0, 1, 12, 0, 0)));
    assert.equal(profile.email, undefined, 'no email without the private scope');

    const [authorize] = wiki.requestsTo('authorize');
    assert.equal(authorize?.query.response_type, 'code');
    assert.equal(authorize?.query.client_id, 'conf-key');
    assert.equal(authorize?.query.redirect_uri, REDIRECT);
    assert.equal(authorize?.query.scope, 'mwoauth-authonly');
    assert.equal(authorize?.query.state, 'interaction-uid-1');
    assert.equal(authorize?.query.code_challenge_method, 'S256');
    assert.match(authorize?.query.code_challenge ?? '', /^[A-Za-z0-9_-]{43}$/);
    assert.equal(authorize?.query.nonce, undefined, 'plain OAuth 2: no nonce');

    const [tokenRequest] = wiki.requestsTo('token');
    assert.equal(tokenRequest?.form?.grant_type, 'authorization_code');
    assert.equal(tokenRequest?.form?.client_id, 'conf-key');
    assert.equal(tokenRequest?.form?.client_secret, 'conf-secret');
    assert.equal(tokenRequest?.form?.redirect_uri, REDIRECT);
    assert.match(tokenRequest?.form?.code_verifier ?? '', /^[A-Za-z0-9_-]{43,128}$/);
    assert.equal(tokenRequest?.headers.authorization, undefined, 'secret travels in the body only');

    const [profileRequest] = wiki.requestsTo('profile');
    assert.match(String(profileRequest?.headers.authorization), /^Bearer \S+$/);

    // The authorize request came from the "browser" (this test); everything the client sent carries the User-Agent.
    for (const request of [...wiki.requestsTo('token'), ...wiki.requestsTo('profile')]) {
      assert.equal(request.headers['user-agent'], UA);
    }
  }, 30_000);

  it('a public (non-confidential) consumer signs in with PKCE, and the wiki refuses it without', async () => {
    const c = client({ clientId: publicConsumer.clientId, clientSecret: publicConsumer.clientSecret, scopes: ['mwoauth-authonlyprivate'] });
    const profile = (await signIn(c)) as VisibleWikiProfile;
    assert.equal(profile.email, 'ada@example.org');
    assert.equal(profile.realName, 'Augusta Ada King');

    const noPkce = new URL(`${wiki.baseUrl}/rest.php/oauth2/authorize`);
    noPkce.search = new URLSearchParams({ response_type: 'code', client_id: publicConsumer.clientId, redirect_uri: REDIRECT, state: 's' }).toString();
    const response = await fetch(noPkce, { redirect: 'manual' });
    assert.equal(response.status, 400);
    assert.match(await response.text(), /Code challenge must be provided for public clients/);
  }, 30_000);

  it('refuses a callback whose state does not match, without calling the token endpoint', async () => {
    const c = client();
    const { url, codeVerifier } = await c.start({ redirectUri: REDIRECT, state: 'interaction-A' });
    const callbackUrl = await visit(url);
    await rejectsWith(c.finish({ callbackUrl, expectedState: 'interaction-B', codeVerifier, redirectUri: REDIRECT }), 'state_mismatch', (e) => {
      assert.equal(e.oauthError, 'access_denied');
    });
    const stripped = new URL(callbackUrl);
    stripped.searchParams.delete('state');
    await rejectsWith(c.finish({ callbackUrl: stripped, expectedState: 'interaction-A', codeVerifier, redirectUri: REDIRECT }), 'state_mismatch');
    assert.equal(wiki.requestsTo('token').length, 0);
  }, 30_000);

  it('reports a cancelled approval (the wiki redirects with unauthorized_client and no state)', async () => {
    wiki.nextLogin({ user: ada(), approve: false });
    const c = client();
    const { url, codeVerifier } = await c.start({ redirectUri: REDIRECT, state: 'uid' });
    const callbackUrl = await visit(url);
    assert.equal(new URL(callbackUrl).searchParams.get('error'), 'unauthorized_client');
    assert.equal(new URL(callbackUrl).searchParams.get('state'), null);
    await rejectsWith(c.finish({ callbackUrl, expectedState: 'uid', codeVerifier, redirectUri: REDIRECT }), 'access_denied', (e) => {
      assert.equal(e.oauthError, 'access_denied');
      assert.equal(e.upstreamError, 'unauthorized_client');
      assert.equal(e.expose, true);
    });
  }, 30_000);

  it('treats a standard error=access_denied the same way', async () => {
    const callbackUrl = `${REDIRECT}?error=access_denied&state=uid`;
    await rejectsWith(client().finish({ callbackUrl, expectedState: 'uid', codeVerifier: 'x'.repeat(43), redirectUri: REDIRECT }), 'access_denied');
  }, 30_000);

  it('cannot redeem a code twice', async () => {
    const c = client();
    const { url, codeVerifier } = await c.start({ redirectUri: REDIRECT, state: 'uid' });
    const callbackUrl = await visit(url);
    await c.finish({ callbackUrl, expectedState: 'uid', codeVerifier, redirectUri: REDIRECT });
    await rejectsWith(c.finish({ callbackUrl, expectedState: 'uid', codeVerifier, redirectUri: REDIRECT }), 'upstream_error', (e) => {
      assert.equal(e.upstreamError, 'invalid_grant');
      assert.equal(e.oauthError, 'server_error');
    });
  }, 30_000);

  it('is refused with the wrong code verifier (and the code survives, as in league/oauth2-server)', async () => {
    const c = client();
    const { url, codeVerifier } = await c.start({ redirectUri: REDIRECT, state: 'uid' });
    const callbackUrl = await visit(url);
    const other = (await c.start({ redirectUri: REDIRECT, state: 'other' })).codeVerifier;
    await rejectsWith(c.finish({ callbackUrl, expectedState: 'uid', codeVerifier: other, redirectUri: REDIRECT }), 'upstream_error', (e) => {
      assert.equal(e.upstreamError, 'invalid_grant');
    });
    const profile = await c.finish({ callbackUrl, expectedState: 'uid', codeVerifier, redirectUri: REDIRECT });
    assert.equal(profile.centralId, '4242');
  }, 30_000);

  it('is refused with a wrong client secret', async () => {
    await rejectsWith(signIn(client({ clientSecret: 'wrong' })), 'upstream_error', (e) => assert.equal(e.upstreamError, 'invalid_client'));
  }, 30_000);

  it('times out on a slow token endpoint', async () => {
    wiki.fault('token', { kind: 'delay', ms: 1500 });
    const started = Date.now();
    await rejectsWith(signIn(client({ timeoutMs: 150 })), 'upstream_unavailable', (e) => {
      assert.equal(e.oauthError, 'temporarily_unavailable');
      assert.match(e.upstreamDescription ?? '', /150 ms/);
    });
    assert.ok(Date.now() - started < 1200, 'gave up at the timeout, not when the wiki answered');
  }, 30_000);

  it('times out on a slow profile endpoint', async () => {
    wiki.fault('profile', { kind: 'delay', ms: 1500 });
    await rejectsWith(signIn(client({ timeoutMs: 150 })), 'upstream_unavailable');
  }, 30_000);

  it('reports a 500 from the token endpoint (HTML or JSON) as unavailable', async () => {
    wiki.fault('token', { kind: 'status', status: 500 });
    await rejectsWith(signIn(), 'upstream_unavailable');
    wiki.fault('token', { kind: 'status', status: 500, contentType: 'application/json', body: '{"error":"server_error","error_description":"boom"}' });
    await rejectsWith(signIn(), 'upstream_unavailable');
  }, 30_000);

  it('times out on a profile answer that stops midway', async () => {
    wiki.fault('profile', { kind: 'stall' });
    await rejectsWith(signIn(client({ timeoutMs: 200 })), 'upstream_unavailable');
  }, 30_000);

  it('reports a 503 from the profile endpoint as unavailable', async () => {
    wiki.fault('profile', { kind: 'status', status: 503 });
    await rejectsWith(signIn(), 'upstream_unavailable');
  }, 30_000);

  it('reports a dropped connection and a closed port as unavailable', async () => {
    wiki.fault('token', { kind: 'reset' });
    await rejectsWith(signIn(), 'upstream_unavailable');
    const nowhere = await WikiOAuthDouble.start({ consumers: [confidential] });
    const deadBase = nowhere.baseUrl;
    await nowhere.close();
    const c = client({ baseUrl: deadBase });
    const { codeVerifier } = await c.start({ redirectUri: REDIRECT, state: 'uid' });
    await rejectsWith(c.finish({ callbackUrl: `${REDIRECT}?code=abc&state=uid`, expectedState: 'uid', codeVerifier, redirectUri: REDIRECT }), 'upstream_unavailable');
  }, 30_000);

  it('refuses a token answer with an unknown token type', async () => {
    wiki.fault('token', { kind: 'token_type', tokenType: 'mac' });
    await rejectsWith(signIn(), 'upstream_error');
    assert.equal(wiki.requestsTo('profile').length, 0);
  }, 30_000);

  it('refuses a token answer that is not JSON', async () => {
    wiki.fault('token', { kind: 'body', body: '<html>maintenance</html>', contentType: 'text/html' });
    await rejectsWith(signIn(), 'upstream_error');
  }, 30_000);

  it('refuses a malformed profile, naming the field', async () => {
    wiki.fault('profile', { kind: 'body', body: JSON.stringify({ sub: '1', username: 5, blocked: false }) });
    await rejectsWith(signIn(), 'invalid_profile', (e) => {
      assert.equal(e.field, 'username');
      assert.equal(e.oauthError, 'server_error');
    });
    wiki.fault('profile', { kind: 'body', body: '{"sub": "1", "username": ' });
    await rejectsWith(signIn(), 'invalid_profile', (e) => assert.equal(e.field, '(body)'));
  }, 30_000);

  it('reports a rejected access token at the profile endpoint as an upstream error', async () => {
    wiki.fault('profile', { kind: 'status', status: 401, contentType: 'application/json', body: JSON.stringify({ error: 'access_denied', hint: 'Access token has been revoked' }) });
    await rejectsWith(signIn(), 'upstream_error', (e) => {
      assert.equal(e.upstreamError, 'access_denied');
      assert.match(e.upstreamDescription ?? '', /revoked/);
    });
  }, 30_000);

  it('returns a hidden (suppressed) user as such', async () => {
    wiki.nextLogin({ user: ada({ hidden: true }) });
    assert.deepEqual(await signIn(), { hidden: true, blocked: true, centralId: '4242', attached: true });
  }, 30_000);

  it('returns an unattached account with attached=false', async () => {
    wiki.nextLogin({ user: ada({ centralId: 0 }) });
    const profile = await signIn();
    assert.equal(profile.attached, false);
    assert.equal(profile.centralId, '0');
  }, 30_000);

  it('reads a MediaWiki 1.39 profile: numeric sub, no email_verified, unconfirmed email dropped', async () => {
    wiki.style = '1.39';
    wiki.nextLogin({ user: ada({ emailConfirmed: false, email: 'unverified@example.org' }) });
    const c = client({ clientId: publicConsumer.clientId, clientSecret: publicConsumer.clientSecret, scopes: ['mwoauth-authonlyprivate'] });
    const profile = (await signIn(c)) as VisibleWikiProfile;
    assert.equal(profile.centralId, '4242');
    assert.equal(profile.emailVerified, false);
    assert.equal(profile.email, undefined);
  }, 30_000);

  it('reports the blocked flag and a null registration date', async () => {
    wiki.nextLogin({ user: ada({ blocked: true, registered: null }) });
    const profile = (await signIn()) as VisibleWikiProfile;
    assert.equal(profile.blocked, true);
    assert.equal(profile.registered, null);
  }, 30_000);
});

describe('wiki OAuth 2 double', () => {
  it('sends a logged-out browser to Special:UserLogin', async () => {
    wiki.nextLogin({ user: null });
    const { url } = await client().start({ redirectUri: REDIRECT, state: 'uid' });
    const location = new URL(await visit(url));
    assert.equal(location.searchParams.get('title'), 'Special:UserLogin');
  }, 10_000);

  it('shows an error page (no redirect) for a redirect_uri that is not registered', async () => {
    const { url } = await client().start({ redirectUri: 'https://evil.example/cb', state: 'uid' });
    const response = await fetch(url, { redirect: 'manual' });
    assert.equal(response.status, 401);
    assert.equal(response.headers.get('location'), null);
  }, 10_000);

  it('refreshes tokens once, revoking the old pair', async () => {
    const tokenUrl = `${wiki.baseUrl}/rest.php/oauth2/access_token`;
    // The client does not refresh (it signs in once); redeem a code by hand to get a refresh token.
    const c = client();
    const { url, codeVerifier } = await c.start({ redirectUri: REDIRECT, state: 's' });
    const code = new URL(await visit(url)).searchParams.get('code')!;
    const form = (params: Record<string, string>) => ({
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ client_id: 'conf-key', client_secret: 'conf-secret', ...params }),
    });
    const answer = await fetch(tokenUrl, form({ grant_type: 'authorization_code', code, redirect_uri: REDIRECT, code_verifier: codeVerifier }));
    const first = (await answer.json()) as { token_type: string; expires_in: number; access_token: string; refresh_token: string };
    assert.equal(first.token_type, 'Bearer');
    assert.equal(first.expires_in, 14400);
    const refreshed = await fetch(tokenUrl, form({ grant_type: 'refresh_token', refresh_token: first.refresh_token }));
    assert.equal(refreshed.status, 200);
    const again = await fetch(tokenUrl, form({ grant_type: 'refresh_token', refresh_token: first.refresh_token }));
    assert.equal(again.status, 400);
    assert.equal(((await again.json()) as { error: string }).error, 'invalid_request');
    const old = await fetch(`${wiki.baseUrl}/rest.php/oauth2/resource/profile`, { headers: { authorization: `Bearer ${first.access_token}` } });
    assert.equal(old.status, 401);
  }, 10_000);
});

describe('wiki OAuth 2 client configuration', () => {
  it('refuses a plain-HTTP wiki that is not on loopback', () => {
    assert.throws(() => client({ baseUrl: 'http://wiki.example.org/w' }), /must use https/);
    assert.doesNotThrow(() => client({ baseUrl: 'http://wiki.example.org/w', allowInsecureHttp: true }));
    assert.doesNotThrow(() => client({ baseUrl: 'https://meta.wikimedia.org/w/' }));
  });

  it('builds the endpoints under rest.php of the script path', async () => {
    const c = client({ baseUrl: 'https://meta.wikimedia.org/w/' });
    const { url } = await c.start({ redirectUri: REDIRECT, state: 'uid' });
    assert.equal(new URL(url).origin + new URL(url).pathname, 'https://meta.wikimedia.org/w/rest.php/oauth2/authorize');
  });

  it('refuses a redirect URI with a query (the token request would not repeat it)', async () => {
    await assert.rejects(client().start({ redirectUri: `${REDIRECT}?x=1`, state: 'uid' }), TypeError);
  });
});
