// "Sign in with Wikimedia" on a real Synapse, configured with exactly the snippets the README
// shows (config/synapse/*.yaml, placeholders filled with this run's ports, URLs and secret):
// Synapse discovers the service over TLS it verifies against a test CA, signs people in through
// the service and the wiki's OAuth double, and hears of logouts over the back channel. Every
// step goes through Synapse's own client API with a cookie-keeping browser.
import assert from 'node:assert/strict';
import { afterAll, beforeAll, describe, jest, test } from '@jest/globals';
import { Browser } from '../support/browser.ts';
import pino from 'pino';
import { accountRepository, wikiIdOf } from '../../src/compose.ts';
import { SdkMatrixGateway } from '../../src/matrix/index.ts';
import { moderationConfigSchema } from '../../src/moderation/config.ts';
import { ModerationExecutor } from '../../src/moderation/executor.ts';
import { endAccountSessions } from '../../src/oidc/logout.ts';
import { editor, type Stack } from '../support/login-stack.ts';
import { skipUnless } from '../support/real-parts.ts';
import { installedSynapseVersion, synapseAvailable, type Synapse } from '../support/synapse.ts';
import { ELEMENT, IDP, SERVER_NAME, startSsoStack, type MatrixLogin, type SsoStack } from '../support/synapse-sso.ts';
import type { WikiUser } from '../support/wiki-oauth-double.ts';
import { skippable } from '../support/suites.ts';
import type { Account } from '../../src/identity/accounts.ts';

const unavailable = synapseAvailable();
const skip = skipUnless(unavailable);
/** A client that is not whitelisted: Synapse asks the person before handing it a login token. */
const OTHER_CLIENT = 'http://127.0.0.1:9/other-client/';

jest.setTimeout(240_000);

skippable(describe, skip)(`Sign in with Wikimedia on Synapse ${installedSynapseVersion() ?? '(not installed)'}`, () => {
  let sso: SsoStack;
  let synapse: Synapse;
  let stack: Stack;

  beforeAll(async () => {
    if (unavailable) throw new Error(unavailable);
    sso = await startSsoStack();
    ({ synapse, stack } = sso);
  });

  afterAll(async () => {
    await sso?.stop();
  });

  const clientApi: SsoStack['clientApi'] = (path, init) => sso.clientApi(path, init);
  const admin = (path: string) => clientApi(path, { token: synapse.adminToken });

  async function userIds(): Promise<string[]> {
    const { json } = await admin('/_synapse/admin/v2/users?limit=1000&guests=false');
    return (json.users as Array<{ name: string }>).map((u) => u.name).sort();
  }

  const ssoRedirect: SsoStack['ssoRedirect'] = (browser, user, redirectUrl) => sso.ssoRedirect(browser, user, redirectUrl);
  const signIn = (user: WikiUser, redirectUrl = ELEMENT, browser = new Browser()): Promise<MatrixLogin> => sso.signIn(user, redirectUrl, browser);

  const whoami = (token: string) => clientApi('/_matrix/client/v3/account/whoami', { token });
  const displayName = async (userId: string) => (await clientApi(`/_matrix/client/v3/profile/${encodeURIComponent(userId)}/displayname`)).json.displayname;

  let first: MatrixLogin;

  test('runs against a real Synapse', () => {
    console.info(`Synapse ${synapse.version} at ${synapse.baseUrl}; provider ${stack.issuer} (TLS, test CA)`);
    assert.equal(synapse.version.split(' ')[0], installedSynapseVersion());
  });

  test('the login flows offer SSO with Wikimedia', async () => {
    const { json } = await clientApi('/_matrix/client/v3/login');
    const sso = (json.flows as Array<{ type: string; identity_providers?: Array<{ id: string; name: string }> }>).find((f) => f.type === 'm.login.sso');
    assert.ok(sso, `no m.login.sso flow in ${JSON.stringify(json.flows)}`);
    assert.deepEqual(sso.identity_providers?.map(({ id, name }) => ({ id, name })), [{ id: IDP, name: 'Wikimedia' }]);
  });

  test('a full sign-in: the service, the wiki, back to Synapse, a login token, the expected Matrix ID and name', async () => {
    first = await signIn(editor());
    assert.equal(first.confirmed, false, 'the whitelisted client gets the token without a confirmation page');
    assert.equal(first.userId, `@jimbo_wales:${SERVER_NAME}`);
    const me = await whoami(first.accessToken);
    assert.equal(me.status, 200);
    assert.equal(me.json.user_id, first.userId);
    assert.equal(me.json.device_id, first.deviceId);
    assert.equal(await displayName(first.userId), 'Jimbo Wales');

    const authorize = stack.wiki.requestsTo('authorize').at(-1)!;
    assert.equal(authorize.query.redirect_uri, `${stack.issuer}/wiki/callback`);
    assert.equal(authorize.query.code_challenge_method, 'S256');
  });

  test('after a wiki rename the same person keeps their Matrix ID and gets the new display name', async () => {
    const again = await signIn(editor({ username: 'Jimbo Wales II' }), OTHER_CLIENT);
    assert.equal(again.confirmed, true, 'a client outside sso.client_whitelist goes through Synapse\'s confirmation page');
    assert.equal(again.userId, first.userId);
    assert.equal(await displayName(again.userId), 'Jimbo Wales II');
    assert.equal((await whoami(again.accessToken)).json.user_id, first.userId);
  });

  test('two people whose names map to the same localpart get two Matrix IDs', async () => {
    const a = await signIn(editor({ centralId: 5001, username: 'Same Name' }));
    const b = await signIn(editor({ centralId: 5002, username: 'Same name' }));
    assert.equal(a.userId, `@same_name:${SERVER_NAME}`);
    assert.equal(b.userId, `@same_name_2:${SERVER_NAME}`);
    assert.equal(await displayName(a.userId), 'Same Name');
    assert.equal(await displayName(b.userId), 'Same name');
  });

  // Names from every script and every awkward corner (some of them, like `=` or `/`, are no longer
  // allowed in new MediaWiki usernames, but old accounts have them). Each must get from Synapse
  // exactly the Matrix ID the service records for it.
  const CORPUS = [
    'Ævar Arnfjörð Bjarmason', 'Łukasz Żółć', 'Đặng Thị Ngọc', 'Straße', 'İstanbul Fan', 'e\u0301cole',
    'Мария Иванова', 'Ёжик', 'Ελληνικά', 'Σωκράτης', 'محمد', 'عبد الله', 'ערן', 'דוד בן-גוריון',
    'देवनागरी', 'अमित', 'தமிழ்', '北京', '東京都', '한국어', 'さくら', 'ภาษาไทย', 'ქართული', 'Հայերեն', 'አማርኛ',
    '😀', '👩‍👩‍👧 Family', "O'Brien", 'D’Artagnan', 'A=B', 'AC/DC', 'C++ Fan', '_Underscore', 'Dot.Name',
    'Hyphen-Name', '12345', '0042', 'Admin', 'Mjolnir', 'Room', 'Ж'.repeat(85), `Long ${'x'.repeat(80)}`,
    'Casey Jones', 'CASEY JONES', 'Spaced Name', 'Spaced_Name', 'Left\u200Eto right', '!!!', '???', 'Anna-Мария 北',
  ];

  const corpusLogins = new Map<string, { login: MatrixLogin; account: Account }>();

  test(`${CORPUS.length} usernames of every script: Synapse creates exactly the Matrix ID the service records`, async () => {
    const accounts = accountRepository(stack.service.db, stack.config);
    const mismatches: string[] = [];
    corpusLogins.clear();
    for (const [i, username] of CORPUS.entries()) {
      const centralId = 7000 + i;
      const login = await signIn(editor({ centralId, username }));
      const me = await whoami(login.accessToken);
      assert.equal(me.status, 200);
      const stored = await accounts.findByCentralId(wikiIdOf(stack.config), String(centralId));
      assert.ok(stored, `no account recorded for ${username}`);
      const recorded = `@${stored.localpart}:${SERVER_NAME}`;
      corpusLogins.set(username, { login, account: stored });
      if (me.json.user_id !== recorded) mismatches.push(`${JSON.stringify(username)}: Synapse ${me.json.user_id}, recorded ${recorded}`);
      console.info(`${JSON.stringify(username)} → ${me.json.user_id}`);
    }
    assert.deepEqual(mismatches, [], `${mismatches.length} of ${CORPUS.length} names got another Matrix ID than recorded`);
  }, 180_000);

  test('a wiki block of one person of each script bans exactly that Matrix user, through the executor', async () => {
    const blocked = ['Ævar Arnfjörð Bjarmason', 'Мария Иванова', 'Σωκράτης', 'محمد', 'דוד בן-גוריון', 'देवनागरी', '北京', '한국어', 'ภาษาไทย', 'ქართული', '😀', '12345', '!!!'];
    const bystander = corpusLogins.get('Casey Jones')!;
    const { room_id: roomId } = (await clientApi('/_matrix/client/v3/createRoom', { token: synapse.adminToken, body: { preset: 'public_chat', room_version: '11' } })).json;
    for (const { login } of corpusLogins.values()) assert.equal((await clientApi(`/_matrix/client/v3/join/${encodeURIComponent(roomId)}`, { token: login.accessToken, body: {} })).status, 200);
    const block = (i: number, username: string) => ({
      id: 9000 + i, user: username, userId: i + 1, by: 'Steward', timestamp: new Date('2030-01-01T00:00:00Z'), expiry: null,
      reason: `Vandalism (${username})`, sitewide: true, restrictions: { pages: [], namespaces: [], actions: [] },
      anonOnly: false, noCreate: true, autoblock: true, noEmail: false, allowUserTalk: true, hidden: false,
    });
    const users = [...blocked, 'Casey Jones'].map((username, i) => {
      const { account } = corpusLogins.get(username)!;
      return { account, blocks: username === 'Casey Jones' ? [] : [block(i, username)], globalBlocks: [], lock: null, groups: [], globalGroups: [] };
    });
    const silent = pino({ level: 'silent' });
    const executor = new ModerationExecutor({
      db: stack.service.db,
      gateway: new SdkMatrixGateway({ baseUrl: synapse.baseUrl, accessToken: synapse.adminToken, logger: silent, requestTimeoutMs: 15_000 }),
      log: silent,
      moderation: moderationConfigSchema.parse({ rooms: [{ room_id: roomId }] }),
      serverName: SERVER_NAME,
      dryRun: false,
    });
    const result = await executor.run({ wiki: wikiIdOf(stack.config), users, complete: false });
    assert.equal(result.counts.applied, blocked.length, JSON.stringify(result.results.map((r) => [r.action.kind, r.outcome, r.error])));
    const member = async (userId: string) => (await clientApi(`/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/state/m.room.member/${encodeURIComponent(userId)}`, { token: synapse.adminToken })).json;
    for (const username of blocked) {
      const { login } = corpusLogins.get(username)!;
      const state = await member((await whoami(login.accessToken)).json.user_id);
      assert.equal(state.membership, 'ban', username);
      assert.match(state.reason, new RegExp(`Vandalism \\(${username.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\)$`));
    }
    assert.equal((await member(bystander.login.userId)).membership, 'join');
  });

  const refused: Array<[string, Partial<WikiUser>, string]> = [
    ['a blocked account', { centralId: 6001, username: 'Blocked Editor', blocked: true }, 'blocked_editor'],
    ['an unattached account', { centralId: 0, username: 'Local Only' }, 'local_only'],
    ['a hidden account', { centralId: 6003, username: 'Hidden Editor', hidden: true }, 'hidden_editor'],
  ];
  for (const [name, overrides, localpart] of refused) {
    test(`${name} is refused: the service says why, Synapse shows an error, and no Matrix account exists`, async () => {
      const before = await userIds();
      const browser = new Browser();
      const page = await ssoRedirect(browser, editor(overrides), ELEMENT);
      assert.equal(page.status, 403, page.body.slice(0, 300));
      const back = await browser.submit(page, /^Return to Matrix/, { stopAt: (u) => u.href.startsWith(ELEMENT) });
      assert.equal(back.location, undefined, `no redirect to the client may follow a refusal, got ${back.location}`);
      assert.equal(back.url.origin, synapse.baseUrl);
      assert.equal(back.url.pathname, '/_synapse/client/oidc/callback');
      assert.equal(back.url.searchParams.get('error'), 'access_denied');
      assert.ok(back.status >= 400, `Synapse should answer with an error page, got ${back.status}`);
      assert.match(back.body, /access_denied/);
      assert.deepEqual(await userIds(), before);
      assert.equal((await admin(`/_synapse/admin/v2/users/${encodeURIComponent(`@${localpart}:${SERVER_NAME}`)}`)).status, 404);
    });
  }

  test('ending the session at the service logs out the Matrix device it started, and only that one', async () => {
    const other = await signIn(editor({ centralId: 7001, username: 'Other Editor' }));
    assert.equal((await whoami(first.accessToken)).status, 200);

    const confirm = await first.browser.follow(`${stack.issuer}/session/end`);
    assert.equal(confirm.status, 200, confirm.body.slice(0, 300));
    const done = await first.browser.submit(confirm, /^Yes/);
    assert.equal(done.status, 200, done.body.slice(0, 300));

    const gone = await whoami(first.accessToken);
    assert.equal(gone.status, 401, JSON.stringify(gone.json));
    assert.equal(gone.json.errcode, 'M_UNKNOWN_TOKEN');
    assert.equal((await whoami(other.accessToken)).status, 200, 'another person\'s device stays signed in');
  });

  test('a wiki sanction that ends the person\'s sessions: Synapse takes the service\'s own back-channel logout token', async () => {
    const sanctioned = await signIn(editor({ centralId: 7101, username: 'Gesperrt' }));
    const bystander = await signIn(editor({ centralId: 7102, username: 'Unbeteiligt' }));
    assert.equal((await whoami(sanctioned.accessToken)).status, 200);
    // What the worker runs for an end_sessions action (before it also logs the devices out through the admin API).
    const ended = await endAccountSessions({ db: stack.service.db, config: stack.config, log: pino({ level: 'silent' }) }, '7101');
    assert.deepEqual(ended.notified, [{ clientId: 'synapse', delivered: true }]);
    const gone = await whoami(sanctioned.accessToken);
    assert.equal(gone.status, 401, JSON.stringify(gone.json));
    assert.equal(gone.json.errcode, 'M_UNKNOWN_TOKEN');
    assert.equal((await whoami(bystander.accessToken)).status, 200);
  });
});
