import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, test } from '@jest/globals';
import * as jose from 'jose';
import * as client from 'openid-client';
import { emptyRecords, ModerationRecordStore } from '../../src/moderation/records.ts';
import { createLogger } from '../../src/log.ts';
import { deliverPendingLogouts, endAccountSessions } from '../../src/oidc/logout.ts';
import { Browser } from '../support/browser.ts';
import { HOMESERVER, RP_CALLBACK, RP_LOGGED_OUT, RelyingParty, continueToWiki, editor, startStack, type Stack } from '../support/login-stack.ts';
import { backends } from '../support/backends.ts';
import { mediawikiAvailable, startWiki, type TestWiki } from '../support/mediawiki.ts';
import { skipUnless } from '../support/real-parts.ts';
import { skippable } from '../support/suites.ts';

async function accountCount(stack: Stack): Promise<number> {
  const { rows } = await stack.service.db.query<{ n: number }>('SELECT count(*)::int AS n FROM accounts');
  return rows[0]!.n;
}

for (const backend of backends()) {
  describe(`sign-in through the provider on ${backend.name}`, () => {
    let stack: Stack;
    let rp: RelyingParty;
    let disposeDb: (() => Promise<void>) | undefined;

    beforeAll(async () => {
      let databaseUrl: string | undefined;
      if (backend.name === 'postgres') {
        const db = await backend.open({ migrated: false });
        databaseUrl = db.url;
        await db.close();
        disposeDb = () => db.dispose();
      }
      stack = await startStack({ ...(databaseUrl && { databaseUrl }) });
      rp = await RelyingParty.discover(stack.issuer);
    });
    afterAll(async () => {
      await stack.stop();
      await disposeDb?.();
    });

    test('the full flow: PKCE to the wiki, id token on the JWKS, userinfo, refresh, revocation, logout', async () => {
      stack.wiki.login = { user: editor() };
      const browser = new Browser();
      const { request, back } = await rp.signIn(browser);
      assert.ok(back.location?.href.startsWith(RP_CALLBACK), `expected the relying party's callback, got ${back.location}`);

      const authorize = stack.wiki.requestsTo('authorize').at(-1)!;
      assert.equal(authorize.query.code_challenge_method, 'S256');
      assert.match(authorize.query.code_challenge!, /^[A-Za-z0-9_-]{43}$/);
      assert.equal(authorize.query.redirect_uri, `${stack.issuer}/wiki/callback`);
      assert.match(String(stack.wiki.requestsTo('token').at(-1)!.headers['user-agent']), /^wiki-matrix-sso\/\S+ \(tests@example\.org\)/);

      const tokens = await rp.exchange(back.location!, request);
      const jwks = jose.createRemoteJWKSet(new URL(rp.config.serverMetadata().jwks_uri!));
      const { payload, protectedHeader } = await jose.jwtVerify(tokens.id_token!, jwks, { issuer: stack.issuer, audience: HOMESERVER.client_id });
      assert.equal(protectedHeader.alg, 'RS256');
      assert.equal(payload.sub, '4242');
      assert.equal(payload.nonce, request.nonce);
      assert.equal(typeof payload.sid, 'string');
      assert.equal(payload.name, undefined, 'profile claims come from userinfo, not the id token');

      const userinfo = await client.fetchUserInfo(rp.config, tokens.access_token, '4242');
      assert.deepEqual(userinfo, {
        sub: '4242',
        name: 'Jimbo Wales',
        preferred_username: 'jimbo_wales',
        email: 'jimbo@example.org',
        email_verified: true,
        wiki_username: 'Jimbo Wales',
        groups: ['sysop'],
        editcount: 1200,
        registered: '2004-01-01T00:00:00.000Z',
      });

      assert.ok(tokens.refresh_token, 'a refresh token is issued');
      const refreshed = await client.refreshTokenGrant(rp.config, tokens.refresh_token!);
      assert.notEqual(refreshed.access_token, tokens.access_token);
      assert.equal((await client.fetchUserInfo(rp.config, refreshed.access_token, '4242')).sub, '4242');

      await client.tokenRevocation(rp.config, refreshed.access_token);
      await assert.rejects(client.fetchUserInfo(rp.config, refreshed.access_token, '4242'), /WWW-Authenticate|invalid_token/);

      const logoutUrl = client.buildEndSessionUrl(rp.config, { id_token_hint: tokens.id_token!, post_logout_redirect_uri: RP_LOGGED_OUT, state: 'bye' });
      const confirm = await browser.follow(logoutUrl);
      assert.equal(confirm.status, 200);
      assert.match(confirm.body, /Sign out/);
      assert.match(confirm.headers.get('content-security-policy')!, /default-src 'none'/);
      const done = await browser.submit(confirm, /^Yes/, { stopAt: (u) => u.href.startsWith(RP_LOGGED_OUT) });
      assert.equal(done.location?.searchParams.get('state'), 'bye');

      // Back-channel logout: the homeserver is told which session ended (Synapse needs `sid`).
      const logoutToken = stack.backchannel.tokens.at(-1);
      assert.ok(logoutToken, 'a logout token was sent to the back-channel logout URI');
      const logout = await jose.jwtVerify(logoutToken, jwks, { issuer: stack.issuer, audience: HOMESERVER.client_id });
      assert.equal(logout.payload.sid, payload.sid);
      assert.equal(logout.payload.sub, '4242');
      assert.ok((logout.payload.events as Record<string, unknown>)['http://schemas.openid.net/event/backchannel-logout']);
      assert.equal(await accountCount(stack), 1);
    });

    test('a sanction that ended the person\'s sessions: no refresh, no userinfo while it stands; ending them revokes every grant and tells the homeserver by back-channel logout', async () => {
      stack.wiki.login = { user: editor({ centralId: 5151, username: 'Gesperrter Nutzer' }) };
      const { request, back } = await rp.signIn(new Browser());
      const tokens = await rp.exchange(back.location!, request);
      const userId = '@gesperrter_nutzer:example.org';
      const records = new ModerationRecordStore(stack.service.db);
      const lock = { kind: 'global_lock' as const, wiki: 'meta.wikimedia.org', blockId: null, logId: 9, by: 'Steward', reason: 'LTA', timestamp: null, expiry: null, group: null, hidden: false };
      const ended = await records.apply(emptyRecords(), [{ kind: 'end_sessions', userId, centralId: '5151', cause: lock }]);

      await assert.rejects(client.refreshTokenGrant(rp.config, tokens.refresh_token!), (error: { error?: string }) => error.error === 'invalid_grant');
      await assert.rejects(client.fetchUserInfo(rp.config, tokens.access_token, '5151'), /WWW-Authenticate|invalid_token/);
      // Nor a new sign-in, even where the wiki lets the account through: a clear page, access_denied.
      const browser = new Browser();
      const again = await rp.signIn(browser);
      assert.equal(again.back.status, 403, again.back.body.slice(0, 300));
      assert.match(again.back.body, /Your account is under a sanction/);
      assert.match(again.back.body, /cannot sign in again while it lasts/);
      const returned = await browser.submit(again.back, /^Return to Example Homeserver/, { stopAt: (u) => u.href.startsWith(RP_CALLBACK) });
      assert.equal(returned.location?.searchParams.get('error'), 'access_denied');

      // The record gone (the lock lifted), the old refresh token works again unless it was revoked.
      await records.apply(ended, [{ kind: 'forget', record: { type: 'session_end', userId }, why: 'unlocked' }]);
      const refreshed = await client.refreshTokenGrant(rp.config, tokens.refresh_token!);
      assert.equal((await client.fetchUserInfo(rp.config, refreshed.access_token, '5151')).sub, '5151');
      const sent = stack.backchannel.tokens.length;
      const revocation = await endAccountSessions({ db: stack.service.db, config: stack.config, log: createLogger('silent') }, '5151');
      assert.ok(revocation.revoked >= 2, 'the session, grant and tokens');
      assert.deepEqual(revocation.notified, [{ clientId: HOMESERVER.client_id, delivered: true }]);
      assert.deepEqual(await deliverPendingLogouts({ db: stack.service.db, config: stack.config, log: createLogger('silent') }), { delivered: 0, pending: 0, dropped: 0, settled: [] });
      // The homeserver is told which session ended, by the sid its ID token carried.
      const jwks = jose.createRemoteJWKSet(new URL(rp.config.serverMetadata().jwks_uri!));
      const { payload: idToken } = await jose.jwtVerify(tokens.id_token!, jwks, { issuer: stack.issuer, audience: HOMESERVER.client_id });
      const logout = await jose.jwtVerify(stack.backchannel.tokens[sent]!, jwks, { issuer: stack.issuer, audience: HOMESERVER.client_id, typ: 'logout+jwt' });
      assert.equal(logout.payload.sub, '5151');
      assert.equal(logout.payload.sid, idToken.sid);
      assert.deepEqual(logout.payload.events, { 'http://schemas.openid.net/event/backchannel-logout': {} });
      await assert.rejects(client.refreshTokenGrant(rp.config, refreshed.refresh_token!), (error: { error?: string }) => error.error === 'invalid_grant');
      await assert.rejects(client.fetchUserInfo(rp.config, refreshed.access_token, '5151'), /WWW-Authenticate|invalid_token/);
    });

    test('a relying party down during a sanction\'s logout gets it later, with back-off; one that never comes back is given up', async () => {
      stack.wiki.login = { user: editor({ centralId: 5252, username: 'Zweimal Gesperrt' }) };
      const { request, back } = await rp.signIn(new Browser());
      const tokens = await rp.exchange(back.location!, request);
      const log = createLogger('silent');
      const db = stack.service.db;
      const down = { ...stack.config, oidc: { ...stack.config.oidc, clients: stack.config.oidc.clients.map((c) => ({ ...c, backchannel_logout_uri: 'http://127.0.0.1:9/unreachable' })) } };
      const start = Date.now();
      const revocation = await endAccountSessions({ db, config: down, log }, '5252');
      assert.deepEqual(revocation.notified, [{ clientId: HOMESERVER.client_id, delivered: false }]);
      await assert.rejects(client.refreshTokenGrant(rp.config, tokens.refresh_token!), (error: { error?: string }) => error.error === 'invalid_grant', 'revoked all the same');

      const at = (ms: number) => () => new Date(start + ms);
      assert.deepEqual(await deliverPendingLogouts({ db, config: down, log, clock: at(1_000) }), { delivered: 0, pending: 0, dropped: 0, settled: [] }, 'not due yet');
      assert.deepEqual(await deliverPendingLogouts({ db, config: down, log, clock: at(11_000) }), { delivered: 0, pending: 1, dropped: 0, settled: [] }, 'still down');
      assert.deepEqual(await deliverPendingLogouts({ db, config: stack.config, log, clock: at(20_000) }), { delivered: 0, pending: 0, dropped: 0, settled: [] }, 'backed off: 20 s after the second try');
      const sent = stack.backchannel.tokens.length;
      assert.deepEqual(await deliverPendingLogouts({ db, config: stack.config, log, clock: at(40_000) }), { delivered: 1, pending: 0, dropped: 0, settled: [{ clientId: HOMESERVER.client_id, accountId: '5252', outcome: 'delivered', tries: 3 }] }, 'back up: delivered on the third try');
      const jwks = jose.createRemoteJWKSet(new URL(rp.config.serverMetadata().jwks_uri!));
      const logout = await jose.jwtVerify(stack.backchannel.tokens[sent]!, jwks, { issuer: stack.issuer, audience: HOMESERVER.client_id, typ: 'logout+jwt' });
      assert.equal(logout.payload.sub, '5252');

      // Another that never comes back: dropped once its session would have ended anyway.
      stack.wiki.login = { user: editor({ centralId: 5253, username: 'Nie Erreicht' }) };
      const again = await rp.signIn(new Browser());
      await rp.exchange(again.back.location!, again.request);
      await endAccountSessions({ db, config: down, log }, '5253');
      const afterSession = stack.config.oidc.ttl.session * 1000 + 60_000;
      assert.deepEqual(await deliverPendingLogouts({ db, config: down, log, clock: () => new Date(Date.now() + afterSession) }), {
        delivered: 0, pending: 0, dropped: 1, settled: [{ clientId: HOMESERVER.client_id, accountId: '5253', outcome: 'dropped', tries: 1 }],
      });
    });

    test('a second sign-in after a wiki rename keeps the Matrix localpart and updates the name', async () => {
      stack.wiki.login = { user: editor({ username: 'Jimbo Wales II' }) };
      const { request, back } = await rp.signIn(new Browser());
      const tokens = await rp.exchange(back.location!, request);
      const userinfo = await client.fetchUserInfo(rp.config, tokens.access_token, '4242');
      assert.equal(userinfo.name, 'Jimbo Wales II');
      assert.equal(userinfo.preferred_username, 'jimbo_wales');
    });

    test('two people whose names map to the same localpart get distinct ones', async () => {
      stack.wiki.login = { user: editor({ centralId: 5001, username: 'Same Name' }) };
      const first = await rp.signIn(new Browser());
      const a = await client.fetchUserInfo(rp.config, (await rp.exchange(first.back.location!, first.request)).access_token, '5001');
      stack.wiki.login = { user: editor({ centralId: 5002, username: 'Same name' }) };
      const second = await rp.signIn(new Browser());
      const b = await client.fetchUserInfo(rp.config, (await rp.exchange(second.back.location!, second.request)).access_token, '5002');
      assert.equal(a.preferred_username, 'same_name');
      assert.equal(b.preferred_username, 'same_name_2');
    });
  });
}

describe('refusals', () => {
  let stack: Stack;
  let rp: RelyingParty;
  beforeAll(async () => {
    stack = await startStack({
      config: { login: { blocked: 'any', min_edit_count: 10, min_account_age_days: 30, forbidden_groups: ['bot'], required_groups: [] } },
      clients: [
        { ...HOMESERVER, client_name: 'Example Homeserver', redirect_uris: [RP_CALLBACK], skip_consent: true, scopes: ['openid', 'profile', 'email', 'wiki'] },
        { client_id: 'public-app', token_endpoint_auth_method: 'none', redirect_uris: [RP_CALLBACK], scopes: ['openid', 'profile'] },
        { client_id: 'tool', client_name: 'Third-party tool', client_secret: 'tool-secret', redirect_uris: [RP_CALLBACK], scopes: ['openid', 'profile', 'wiki'] },
      ],
    });
    rp = await RelyingParty.discover(stack.issuer);
  });
  afterAll(() => stack.stop());

  const denied: Array<[string, Partial<Parameters<typeof editor>[0]> | null, RegExp, number]> = [
    ['an unattached account', { centralId: 0 }, /not attached|global account/i, 403],
    ['a hidden account', { hidden: true }, /hidden/i, 403],
    ['a blocked account', { blocked: true }, /blocked/i, 403],
    ['too few edits', { editCount: 3 }, /10 edits/, 403],
    ['an account too new', { registered: new Date(Date.now() - 86_400_000).toISOString().replace(/\D/g, '').slice(0, 14) }, /30 days/, 403],
    ['a forbidden group', { groups: ['bot'] }, /bot/, 403],
  ];
  for (const [name, overrides, message, status] of denied) {
    test(`refuses ${name}: a clear page, access_denied for the app, and no account`, async () => {
      const before = await accountCount(stack);
      stack.wiki.login = { user: editor({ centralId: 7000 + before, username: `Refused ${name}`, ...overrides }) };
      const browser = new Browser();
      const { request, back } = await rp.signIn(browser);
      assert.equal(back.status, status, back.body.slice(0, 300));
      assert.match(back.body, message);
      const returned = await browser.submit(back, /^Return to Example Homeserver/, { stopAt: (u) => u.href.startsWith(RP_CALLBACK) });
      assert.equal(returned.location?.searchParams.get('error'), 'access_denied');
      assert.equal(returned.location?.searchParams.get('state'), request.state);
      assert.equal(await accountCount(stack), before);
    });
  }

  for (const [what, username] of [['a NUL byte', 'Nul\u0000Name'], ['an unpaired surrogate', 'Half\uD800Name'], ['a control character', 'Bell\u0007Name']]) {
    test(`refuses a wiki username with ${what}: a clear page, access_denied, and no account`, async () => {
      const before = await accountCount(stack);
      stack.wiki.login = { user: editor({ centralId: 7600 + before, username }) };
      const browser = new Browser();
      const { request, back } = await rp.signIn(browser);
      assert.equal(back.status, 403, back.body.slice(0, 300));
      assert.match(back.body, /This account name cannot be used/);
      const returned = await browser.submit(back, /^Return to Example Homeserver/, { stopAt: (u) => u.href.startsWith(RP_CALLBACK) });
      assert.equal(returned.location?.searchParams.get('error'), 'access_denied');
      assert.equal(returned.location?.searchParams.get('state'), request.state);
      assert.equal(await accountCount(stack), before);
    });
  }

  test('pages follow ui_locales, then Accept-Language', async () => {
    stack.wiki.login = { user: editor({ centralId: 7900, username: 'Rtl Reader', blocked: true }) };
    const browser = new Browser({ acceptLanguage: 'de-DE,de;q=0.9' });
    // The third-party tool, since a first-party app goes to the wiki without the sign-in page.
    const tool = await RelyingParty.discover(stack.issuer, 'tool', 'tool-secret');
    const request = await tool.authorizationRequest({ ui_locales: 'he', scope: 'openid profile wiki' });
    const login = await browser.follow(request.url);
    assert.match(login.body, /<html lang="he" dir="rtl">/);
    const refused = await continueToWiki(browser, login, RP_CALLBACK);
    assert.match(refused.body, /<html lang="he" dir="rtl">/);
    const direct = await rp.signIn(new Browser(), { ui_locales: 'fr' });
    assert.match(direct.back.body, /<html lang="fr" dir="ltr">/, 'the refusal after a one-click start speaks the language asked for');
    const german = await new Browser({ acceptLanguage: 'de-DE,de;q=0.9' }).follow((await tool.authorizationRequest({ scope: 'openid profile wiki' })).url);
    assert.match(german.body, /<html lang="de" dir="ltr">/);
  });

  test('cancelling on the wiki returns access_denied', async () => {
    stack.wiki.login = { user: editor(), approve: false };
    const browser = new Browser();
    const { back } = await rp.signIn(browser);
    assert.match(back.body, /cancel/i);
    const returned = await browser.submit(back, /^Return to/, { stopAt: (u) => u.href.startsWith(RP_CALLBACK) });
    assert.equal(returned.location?.searchParams.get('error'), 'access_denied');
  });

  test('a wrong or prefix-extended redirect_uri is refused on a page, never redirected to', async () => {
    for (const redirect of ['http://127.0.0.1:9/evil', `${RP_CALLBACK}/../evil`, `${RP_CALLBACK}x`, `${RP_CALLBACK}?next=x`]) {
      const { url } = await rp.authorizationRequest({ redirect_uri: redirect });
      const page = await new Browser().request(url);
      assert.equal(page.status, 400, redirect);
      assert.equal(page.location, undefined);
      assert.match(page.body, /<html/);
    }
  });

  test('a public client must use PKCE', async () => {
    const pub = await RelyingParty.discover(stack.issuer, 'public-app', undefined);
    const { url } = await pub.authorizationRequest({ scope: 'openid' }, { pkce: false });
    const hop = await new Browser().request(url);
    assert.equal(hop.location?.searchParams.get('error'), 'invalid_request');
    assert.match(hop.location!.searchParams.get('error_description')!, /PKCE/);
  });

  test('a forged wiki state, a replayed wiki callback and a replayed code are refused', async () => {
    stack.wiki.login = { user: editor({ centralId: 8001, username: 'Replay Tester' }) };
    const browser = new Browser();
    const request = await rp.authorizationRequest();
    const toWiki = await browser.follow(request.url, { stopAt: (u) => u.pathname.endsWith('/wiki/callback') });
    const callback = toWiki.location!;

    const forged = new URL(callback);
    forged.searchParams.set('state', 'forged-state');
    const forgedHop = await browser.request(forged);
    assert.equal(forgedHop.status, 400);
    assert.match(forgedHop.body, /expired or was already used/);

    const first = await browser.follow(callback, { stopAt: (u) => u.href.startsWith(RP_CALLBACK) });
    assert.ok(first.location?.href.startsWith(RP_CALLBACK));
    const replay = await browser.request(callback);
    assert.equal(replay.status, 400);

    await rp.exchange(first.location!, request);
    await assert.rejects(rp.exchange(first.location!, request), (error: { error?: string }) => error.error === 'invalid_grant');
  });

  test('a wiki callback in another browser (no binding cookie) is refused', async () => {
    stack.wiki.login = { user: editor({ centralId: 8002, username: 'Cross Browser' }) };
    const browser = new Browser();
    const toWiki = await browser.follow((await rp.authorizationRequest()).url, { stopAt: (u) => u.pathname.endsWith('/wiki/callback') });
    const other = await new Browser().request(toWiki.location!);
    assert.equal(other.status, 400);
  });

  test('the callback sends the browser straight back to the authorization, which only the browser that started it can resume', async () => {
    stack.wiki.login = { user: editor({ centralId: 8003, username: 'Возобновление' }) };
    const browser = new Browser();
    const request = await rp.authorizationRequest();
    const toWiki = await browser.follow(request.url, { stopAt: (u) => u.pathname.endsWith('/wiki/callback') });
    const back = await browser.request(toWiki.location!);
    assert.equal(back.status, 303);
    assert.match(back.location!.pathname, /^\/auth\/[^/]+$/);
    // Another browser given the resume URL has no resume cookie: no code for it.
    const elsewhere = await new Browser().follow(back.location!, { stopAt: (u) => u.href.startsWith(RP_CALLBACK) });
    assert.equal(elsewhere.status, 400);
    assert.ok(!elsewhere.location?.href.startsWith(RP_CALLBACK));
    const resumed = await browser.follow(back.location!, { stopAt: (u) => u.href.startsWith(RP_CALLBACK) });
    assert.ok(resumed.location?.searchParams.get('code'));
    assert.equal((await rp.exchange(resumed.location!, request)).claims()?.sub, '8003');
  });

  test('a tampered interaction cookie ends in a clear page', async () => {
    const browser = new Browser();
    const tool = await RelyingParty.discover(stack.issuer, 'tool', 'tool-secret');
    const page = await browser.follow((await tool.authorizationRequest({ scope: 'openid profile wiki' })).url);
    for (const cookie of browser.cookies) cookie.value = `${cookie.value.slice(0, -2)}xx`;
    const hop = await browser.request(page.url);
    assert.equal(hop.status, 400);
    assert.match(hop.body, /expired or was already used/);
  });

  test('one click for a first-party app: straight from the authorization request to the wiki; a third-party one sees the page', async () => {
    stack.wiki.login = { user: editor({ centralId: 8050, username: 'One Click' }) };
    const wikiOrigin = new URL(stack.wiki.baseUrl).origin;
    const browser = new Browser();
    const request = await rp.authorizationRequest();
    const atWiki = await browser.follow(request.url, { stopAt: (u) => u.origin === wikiOrigin });
    assert.match(atWiki.url.pathname, /^\/interaction\/[^/]+$/);
    assert.equal(atWiki.status, 303);
    assert.equal(atWiki.location?.searchParams.get('code_challenge_method'), 'S256');
    const back = await browser.follow(atWiki.location!, { stopAt: (u) => u.href.startsWith(RP_CALLBACK) });
    await rp.exchange(back.location!, request);

    const tool = await RelyingParty.discover(stack.issuer, 'tool', 'tool-secret');
    const page = await new Browser().follow((await tool.authorizationRequest({ scope: 'openid profile wiki' })).url, { stopAt: (u) => u.origin === wikiOrigin });
    assert.equal(page.status, 200);
    assert.match(page.body, /Continue with/);
  });

  test('a third-party client shows the consent page; allowing it completes the sign-in', async () => {
    stack.wiki.login = { user: editor({ centralId: 8100, username: 'Consenting Adult' }) };
    const tool = await RelyingParty.discover(stack.issuer, 'tool', 'tool-secret');
    const browser = new Browser();
    const request = await tool.authorizationRequest({ scope: 'openid profile wiki' });
    const consent = await continueToWiki(browser, await browser.follow(request.url), RP_CALLBACK);
    assert.equal(consent.status, 200);
    assert.match(consent.body, /Third-party tool/);
    const back = await browser.submit(consent, /^Allow/, { stopAt: (u) => u.href.startsWith(RP_CALLBACK) });
    const tokens = await tool.exchange(back.location!, request);
    const info = await client.fetchUserInfo(tool.config, tokens.access_token, '8100');
    assert.equal(info.wiki_username, 'Consenting Adult');
    assert.equal(info.email, undefined, 'no email scope, no email');
  });

  test('the wiki being down gives a page and temporarily_unavailable for the app', async () => {
    stack.wiki.login = { user: editor({ centralId: 8200, username: 'Unlucky' }) };
    stack.wiki.fault('token', { kind: 'status', status: 503, body: 'down' }, 1);
    const browser = new Browser();
    const { back } = await rp.signIn(browser);
    assert.equal(back.status, 502);
    const returned = await browser.submit(back, /^Return to/, { stopAt: (u) => u.href.startsWith(RP_CALLBACK) });
    assert.equal(returned.location?.searchParams.get('error'), 'temporarily_unavailable');
  });
});

describe('login rules that need more than the profile', () => {
  test('required groups: only members of one of them may sign in', async () => {
    const stack = await startStack({ config: { login: { required_groups: ['steward', 'checkuser'] } } });
    try {
      const rp = await RelyingParty.discover(stack.issuer);
      stack.wiki.login = { user: editor({ centralId: 9001, username: 'Ordinary', groups: [] }) };
      const refused = await rp.signIn(new Browser());
      assert.equal(refused.back.status, 403);
      assert.match(refused.back.body, /<bdi>steward<\/bdi> or <bdi>checkuser<\/bdi>/);
      stack.wiki.login = { user: editor({ centralId: 9002, username: 'Checker', groups: ['checkuser'] }) };
      const allowed = await rp.signIn(new Browser());
      assert.ok(allowed.back.location?.href.startsWith(RP_CALLBACK));
    } finally {
      await stack.stop();
    }
  });

  skippable(describe, skipUnless(mediawikiAvailable()))('blocked: sitewide asks the real wiki whether a block is sitewide', () => {
    let wiki: TestWiki;
    let stack: Stack;
    beforeAll(async () => {
      wiki = await startWiki();
      for (const name of ['Partly Blocked', 'Fully Blocked']) await wiki.createUser(name, 'correct horse battery');
      await wiki.adminRequest({ action: 'edit', title: 'Contested page', text: 'x', summary: 'test page' }, { token: 'csrf' });
      await wiki.block('Partly Blocked', { partial: true, pages: ['Contested page'], reason: 'edit war' });
      await wiki.block('Fully Blocked', { reason: 'vandalism' });
      stack = await startStack({ config: { login: { blocked: 'sitewide' }, wiki: { api_url: wiki.apiUrl } } });
    });
    afterAll(async () => {
      await stack?.stop();
      await wiki?.stop();
    });

    /** The sign-in of a blocked account under `blocked: sitewide`, whose Action API check cannot be answered. */
    async function signInThrough(apiUrl: string, centralId: number) {
      const broken = await startStack({ config: { login: { blocked: 'sitewide' }, wiki: { api_url: apiUrl, max_retries: 0, timeout: 2 } } });
      try {
        const rp = await RelyingParty.discover(broken.issuer);
        broken.wiki.login = { user: editor({ centralId, username: 'Fully Blocked', blocked: true }) };
        const browser = new Browser();
        const { request, back } = await rp.signIn(browser);
        assert.match(back.headers.get('content-type') ?? '', /text\/html/, `a page, not ${back.body.slice(0, 200)}`);
        const returned = await browser.submit(back, /^Return to/, { stopAt: (u) => u.href.startsWith(RP_CALLBACK) });
        assert.equal(returned.location?.searchParams.get('state'), request.state);
        const { rows } = await broken.service.db.query('SELECT 1 FROM accounts');
        assert.equal(rows.length, 0, 'no account for a sign-in that could not be checked');
        return { status: back.status, body: back.body, error: returned.location?.searchParams.get('error') };
      } finally {
        await broken.stop();
      }
    }

    test('a private wiki: anonymously (readapidenied) the error page and server_error for the app; through a bot password the rule holds', async () => {
      const privateWiki = await startWiki({ settings: "$wgGroupPermissions['*']['read'] = false;" });
      try {
        const { status, body, error } = await signInThrough(privateWiki.apiUrl, 9201);
        assert.equal(status, 500);
        assert.match(body, /Something went wrong/);
        assert.equal(error, 'server_error');

        // With a bot password (wiki.api_user) the private wiki answers, and the rule holds.
        for (const name of ['Private Partly', 'Private Fully']) await privateWiki.createUser(name, 'correct horse battery');
        await privateWiki.adminRequest({ action: 'edit', title: 'Private page', text: 'x', summary: 'test page' }, { token: 'csrf' });
        await privateWiki.block('Private Partly', { partial: true, pages: ['Private page'], reason: 'edit war' });
        await privateWiki.block('Private Fully', { reason: 'vandalism' });
        const bot = await privateWiki.createBotPassword(privateWiki.adminName, { appId: 'sso', grants: ['basic'] });
        const signedIn = await startStack({
          config: { login: { blocked: 'sitewide' }, wiki: { api_url: privateWiki.apiUrl, api_user: bot.username, api_password: bot.password } },
        });
        try {
          const rp = await RelyingParty.discover(signedIn.issuer);
          signedIn.wiki.login = { user: editor({ centralId: 9211, username: 'Private Partly', blocked: true }) };
          const partly = await rp.signIn(new Browser());
          assert.ok(partly.back.location?.href.startsWith(RP_CALLBACK), partly.back.body.slice(0, 300));
          signedIn.wiki.login = { user: editor({ centralId: 9212, username: 'Private Fully', blocked: true }) };
          const fully = await rp.signIn(new Browser());
          assert.equal(fully.back.status, 403);
          assert.match(fully.back.body, /blocked/i);
        } finally {
          await signedIn.stop();
        }
      } finally {
        await privateWiki.stop();
      }
    });

    for (const [what, answer, expected] of [
      ['a 503', (res: import('node:http').ServerResponse) => res.writeHead(503, { 'content-type': 'text/html' }).end('<h1>Service Unavailable</h1>'), 'temporarily_unavailable'],
      ['a malformed answer', (res: import('node:http').ServerResponse) => res.writeHead(200, { 'content-type': 'application/json' }).end('{"batchcomplete":true,"query":{"blocks":[{"id":"not a number"}]}}'), 'server_error'],
      ['an HTML page instead of JSON', (res: import('node:http').ServerResponse) => res.writeHead(200, { 'content-type': 'text/html' }).end('<html>maintenance</html>'), 'server_error'],
    ] as const) {
      test(`the Action API answering ${what} during the block check: the error page, and ${expected} for the app`, async () => {
        const server: Server = createServer((_req, res) => answer(res));
        await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
        try {
          const { error } = await signInThrough(`http://127.0.0.1:${(server.address() as AddressInfo).port}/api.php`, 9202);
          assert.equal(error, expected);
        } finally {
          server.closeAllConnections();
          await new Promise((resolve) => server.close(resolve));
        }
      });
    }

    test('the wiki stopping mid-sign-in, before the block check: the error page, and temporarily_unavailable', async () => {
      const server: Server = createServer();
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      const port = (server.address() as AddressInfo).port;
      await new Promise((resolve) => server.close(resolve));
      const { error } = await signInThrough(`http://127.0.0.1:${port}/api.php`, 9203);
      assert.equal(error, 'temporarily_unavailable');
    });

    test('a partially blocked account signs in; a sitewide blocked one is refused', async () => {
      const rp = await RelyingParty.discover(stack.issuer);
      // The OAuth profile says `blocked: true` for both, as MediaWiki does for any block.
      stack.wiki.login = { user: editor({ centralId: 9101, username: 'Partly Blocked', blocked: true }) };
      const partly = await rp.signIn(new Browser());
      assert.ok(partly.back.location?.href.startsWith(RP_CALLBACK), partly.back.body.slice(0, 300));

      stack.wiki.login = { user: editor({ centralId: 9102, username: 'Fully Blocked', blocked: true }) };
      const fully = await rp.signIn(new Browser());
      assert.equal(fully.back.status, 403);
      assert.match(fully.back.body, /blocked/i);
      const { rows } = await stack.service.db.query<{ username: string }>('SELECT username FROM accounts ORDER BY username');
      assert.deepEqual(rows.map((r) => r.username), ['Partly Blocked']);
    });
  });
});
