// The moderation sources against a real MediaWiki 1.39 (no CentralAuth there): the wiki state of
// mapped accounts (sitewide and partial blocks, groups, an unblock), full and targeted passes over
// the account store, and log polling with its cursor kept in sync_cursors on every backend.
import assert from 'node:assert/strict';
import { afterAll, beforeAll, describe, it } from '@jest/globals';
import { PostgresAccountRepository } from '../../src/identity/accounts.ts';
import { LocalpartPolicy } from '../../src/identity/localpart.ts';
import { PostgresSyncCursorStore } from '../../src/moderation/sources/cursors.ts';
import { LogPoller, logCursorName } from '../../src/moderation/sources/log-poller.ts';
import { WikiSource, fetchWikiState } from '../../src/moderation/sources/wiki-state.ts';
import type { MappedAccount } from '../../src/moderation/types.ts';
import { ActionApiClient } from '../../src/wiki/action-api.ts';
import { backends, type TestDatabase } from '../support/backends.ts';
import { mediawikiAvailable, startWiki, type TestWiki } from '../support/mediawiki.ts';
import { MemoryCursors } from '../support/memory-cursors.ts';
import { skipUnless } from '../support/real-parts.ts';
import { skippable } from '../support/suites.ts';

const WIKI = '127.0.0.1';
const localparts = new LocalpartPolicy({ serverName: 'example.org', reservedNames: [], reservedPrefixes: [] });

const mapped = (username: string, centralId: string): MappedAccount => ({ wiki: WIKI, centralId, username, localpart: username.toLowerCase() });
/** Without CentralAuth the `sub` is the local user id: the ids the real wiki gave. */
const ids = new Map<string, number>();
const own = (username: string) => mapped(username, String(ids.get(username)));

skippable(describe, skipUnless(mediawikiAvailable()))('moderation sources on a real MediaWiki', () => {
  let wiki: TestWiki;
  let api: ActionApiClient;
  let requests: URLSearchParams[];
  let aliceBlock: number;

  beforeAll(async () => {
    // The bot of the hidden-user test has hideuser; anonymous readers do not.
    wiki = await startWiki({ settings: "$wgGroupPermissions['sysop']['hideuser'] = true;" });
    requests = [];
    api = new ActionApiClient({
      apiUrl: wiki.apiUrl,
      userAgent: 'wiki-matrix-sso-tests/0 (test suite)',
      fetch: (input, init) => {
        requests.push(init?.method === 'POST' ? new URLSearchParams(String(init.body)) : new URL(String(input)).searchParams);
        return fetch(input, init);
      },
    });
    for (const name of ['Alice', 'Carol', 'Dora', 'Plain', 'Stranger']) ids.set(name, (await wiki.createUser(name, `${name.toLowerCase()}-password-1`)).userId);
    ids.set('Moderator', (await wiki.createUser('Moderator', 'moderator-password-1', { sysop: true })).userId);
    aliceBlock = (await wiki.block('Alice', { reason: 'spam' })).id;
    await wiki.block('Carol', { reason: 'edit war', partial: true, pages: ['Main Page'] });
    await wiki.block('Stranger', { reason: 'not on Matrix' });
  });
  afterAll(async () => {
    await wiki?.stop();
  });

  it('reads a sitewide block, a partial block and groups; an unblock clears the block', async () => {
    const deps = { api, wiki: WIKI, centralAuth: false };
    const accounts = ['Alice', 'Carol', 'Moderator', 'Plain', 'Dora'].map(own);
    await wiki.block('Dora', { reason: 'briefly', expiry: '1 day' });
    const state = await fetchWikiState(accounts, deps);
    assert.equal(state.wiki, WIKI);
    assert.equal(state.complete, false);
    const user = (name: string) => state.users.find((u) => u.account.username === name)!;
    assert.deepEqual(state.users.map((u) => u.account.username), ['Alice', 'Carol', 'Moderator', 'Plain', 'Dora']);

    assert.equal(user('Alice').blocks.length, 1);
    assert.equal(user('Alice').blocks[0]!.id, aliceBlock);
    assert.equal(user('Alice').blocks[0]!.sitewide, true);
    assert.equal(user('Alice').blocks[0]!.reason, 'spam');
    assert.equal(user('Carol').blocks[0]!.sitewide, false);
    assert.deepEqual(user('Carol').blocks[0]!.restrictions.pages.map((p) => p.title), ['Main Page']);
    assert.deepEqual(user('Moderator').groups, ['sysop']);
    assert.deepEqual(user('Plain'), { account: own('Plain'), blocks: [], globalBlocks: [], lock: null, groups: [], globalGroups: [] });
    assert.ok(user('Dora').blocks[0]!.expiry instanceof Date);

    await wiki.unblock('Dora');
    const afterUnblock = await fetchWikiState([own('Dora')], deps);
    assert.deepEqual(afterUnblock.users[0]!.blocks, []);

    assert.ok(!requests.some((p) => p.get('meta') === 'globaluserinfo' || p.get('list') === 'globalblocks'));
  });

  it('asks about 50 accounts per request, by user id', async () => {
    const many = Array.from({ length: 120 }, (_, i) => (i < 3 ? own(['Alice', 'Carol', 'Plain'][i]!) : mapped(`Nobody ${i}`, String(1000 + i))));
    const before = requests.length;
    const state = await fetchWikiState(many, { api, wiki: WIKI, centralAuth: false });
    assert.equal(state.users.length, 120);
    const asked = requests.slice(before);
    assert.deepEqual(asked.map((p) => p.get('list')), ['users', 'users', 'users', 'blocks']);
    assert.deepEqual(asked.filter((p) => p.get('list') === 'users').map((p) => p.get('ususerids')!.split('|').length), [50, 50, 20]);
    assert.equal(asked.at(-1)!.get('bkusers'), 'Alice|Carol|Plain', 'only names the wiki gave are asked about');
    // Ids no visible account has are hidden from us (MediaWiki does not delete accounts): sanctioned.
    assert.ok(state.users.slice(3).every((u) => u.lock?.hidden === true));
  });

  it('follows a renamed, blocked account by its id: the block stays, the new name is read', async () => {
    const { userId } = await wiki.createUser('Before Rename', 'before-rename-password-1');
    const { id } = await wiki.block('Before Rename', { reason: 'sock puppetry' });
    await wiki.renameUser('Before Rename', 'После переименования');
    const state = await fetchWikiState([mapped('Before Rename', String(userId))], { api, wiki: WIKI, centralAuth: false });
    const [user] = state.users;
    assert.equal(user!.account.username, 'После переименования');
    assert.deepEqual(user!.blocks.map((b) => [b.id, b.reason]), [[id, 'sock puppetry']], 'a rename must not lift the ban');
    assert.equal(user!.lock, null);
  });

  it('a block that hides the name: anonymously the account reads as hidden (banned); a bot with hideuser sees the block', async () => {
    const { userId } = await wiki.createUser('Suppressed Vandal', 'suppressed-password-1');
    await wiki.adminRequest({ action: 'block', user: 'Suppressed Vandal', expiry: 'infinite', reason: 'private', hidename: '1' }, { token: 'csrf' });
    const anonymous = await fetchWikiState([mapped('Suppressed Vandal', String(userId))], { api, wiki: WIKI, centralAuth: false });
    assert.deepEqual(anonymous.users[0]!.lock, { logId: null, by: null, reason: '', timestamp: null, hidden: true });
    assert.deepEqual(anonymous.users[0]!.blocks, []);

    await wiki.createUser('Mirror bot', 'mirror-bot-password-1', { sysop: true });
    const login = await wiki.createBotPassword('Mirror bot', { appId: 'mirror', grants: ['basic', 'oversight'] });
    const sent: URLSearchParams[] = [];
    const bot = new ActionApiClient({
      apiUrl: wiki.apiUrl,
      userAgent: 'wiki-matrix-sso-tests/0 (test suite)',
      login,
      fetch: (input, init) => {
        sent.push(init?.method === 'POST' ? new URLSearchParams(String(init.body)) : new URL(String(input)).searchParams);
        return fetch(input, init);
      },
    });
    const seen = await fetchWikiState([mapped('Suppressed Vandal', String(userId))], { api: bot, wiki: WIKI, centralAuth: false });
    const [user] = seen.users;
    assert.equal(user!.account.username, 'Suppressed Vandal');
    assert.equal(user!.lock, null, 'seen by the bot, the account is there: no hidden lock is assumed');
    assert.deepEqual(user!.blocks.map((b) => [b.reason, b.hidden]), [['private', true]]);
    const loginRequest = sent.find((p) => p.get('action') === 'login')!;
    assert.equal(loginRequest.get('lgname'), login.username);
    assert.ok(sent.filter((p) => p.get('action') === 'query' && p.get('meta') !== 'tokens').every((p) => p.get('assert') === 'user'), 'every read asserts the session');
  });

  it('a bot password that the wiki refuses is a clear error, not an anonymous read', async () => {
    const bot = new ActionApiClient({
      apiUrl: wiki.apiUrl,
      userAgent: 'wiki-matrix-sso-tests/0 (test suite)',
      login: { username: 'Mirror bot@nonexistent', password: 'x'.repeat(32) },
    });
    await assert.rejects(bot.getUsers(['Alice']), (err: Error) => {
      assert.match(err.message, /action=login: signing in as Mirror bot@nonexistent failed \(Failed\)/);
      assert.doesNotMatch(err.message, /xxxx/, 'the password is never in the message');
      return true;
    });
  });

  for (const backend of backends()) {
    describe(`with accounts and cursors on ${backend.name}`, () => {
      let db: TestDatabase;
      let accounts: PostgresAccountRepository;
      let cursors: PostgresSyncCursorStore;
      const target = `Target ${backend.name}`;

      beforeAll(async () => {
        db = await backend.open();
        accounts = new PostgresAccountRepository(db, { clock: () => new Date(), localparts });
        cursors = new PostgresSyncCursorStore(db);
        for (const name of ['Alice', 'Carol', 'Moderator', 'Plain', 'Dora']) {
          await accounts.upsertOnLogin({ wiki: WIKI, centralId: String(ids.get(name)), username: name });
        }
        await accounts.upsertOnLogin({ wiki: 'other.example', centralId: '99', username: 'Alice' });
        await wiki.createUser(target, 'target-password-1');
      });
      afterAll(async () => {
        await db?.dispose();
      });

      it('a full pass reads every mapped account of this wiki, batch by batch, as one complete state', async () => {
        const source = new WikiSource({ api, wiki: WIKI, centralAuth: false, accounts, batchSize: 2 });
        const batches = [];
        for await (const batch of source.batches()) batches.push(batch);
        assert.ok(batches.every((b) => b.complete === false));
        assert.deepEqual(batches.map((b) => b.users.length), [1, 2, 2], 'the other wiki\'s account (alice_2) is left out of its batch');

        const state = await source.fullPass();
        assert.equal(state.complete, true);
        assert.deepEqual(state.users.map((u) => u.account.username).sort(), ['Alice', 'Carol', 'Dora', 'Moderator', 'Plain']);
        assert.ok(state.users.every((u) => u.account.wiki === WIKI));
        assert.equal(state.users.find((u) => u.account.username === 'Alice')!.blocks[0]!.id, aliceBlock);
      });

      it('a rename on the wiki is stored at the next read, so log entries under the new name find the account', async () => {
        const before = `Renamee ${backend.name}`;
        const after = `Переименован ${backend.name}`;
        const { userId } = await wiki.createUser(before, 'renamee-password-1');
        await accounts.upsertOnLogin({ wiki: WIKI, centralId: String(userId), username: before });
        await wiki.renameUser(before, after);
        const source = new WikiSource({ api, wiki: WIKI, centralAuth: false, accounts });
        await source.targeted([before]);
        const stored = await accounts.findByCentralId(WIKI, String(userId));
        assert.equal(stored?.username, after);
        assert.equal(stored?.displayName, after);
        assert.equal(stored?.localpart, `renamee_${backend.name}`, 'the Matrix ID never follows a rename');
        assert.deepEqual((await source.targeted([after])).users.map((u) => u.account.centralId), [String(userId)]);
      });

      it('a targeted pass reads only the mapped accounts among the names', async () => {
        const source = new WikiSource({ api, wiki: WIKI, centralAuth: false, accounts });
        const state = await source.targeted(['Stranger', 'carol', 'Alice', 'Alice', '#12', '192.0.2.1']);
        assert.equal(state.complete, false);
        assert.deepEqual(state.users.map((u) => u.account.username), ['Carol', 'Alice']);
        assert.equal(state.users[0]!.account.localpart, 'carol');
      });

      it('polls the logs after a stored cursor; without a commit the same entries come again', async () => {
        const poller = () => new LogPoller({ api, cursors, centralAuth: false, initialLookbackMs: 0 });
        // The wiki logs by the second and a first poll starts at the current second, inclusive:
        // let the second in which the target was created pass, so its creation is not "new".
        await new Promise((resolve) => setTimeout(resolve, 1010 - (Date.now() % 1000)));
        const first = await poller().poll();
        assert.deepEqual(first.usernames.filter((n) => n.startsWith('Target')), []);
        await first.commit();
        assert.ok(await cursors.get(logCursorName('block')), 'the start is pinned');

        await wiki.block(target, { reason: 'socking' });
        await wiki.userrights(target, { add: ['bot'] });
        const polled = await poller().poll();
        assert.deepEqual(polled.usernames, [target]);
        assert.deepEqual(polled.events.map((e) => `${e.type}/${e.action}`), ['block/block', 'rights/rights']);
        assert.equal(polled.events[0]!.details.kind, 'block');

        // A crash before the commit: a new poller (a restarted worker) gets the same entries.
        const again = await poller().poll();
        assert.deepEqual(again.usernames, [target]);
        assert.deepEqual(again.events.map((e) => e.logId), polled.events.map((e) => e.logId));

        await again.commit();
        const stored = (await cursors.get(logCursorName('block'))) as { logId: number };
        assert.equal(stored.logId, polled.events[0]!.logId);
        assert.deepEqual((await poller().poll()).usernames, [], 'nothing new after the commit');

        await wiki.unblock(target);
        const worker = poller();
        const older = await worker.poll();
        const newer = await worker.poll();
        assert.deepEqual(newer.usernames, [target]);
        assert.deepEqual(newer.events.map((e) => `${e.type}/${e.action}`), ['block/unblock']);
        await newer.commit();
        await older.commit(); // late, and no further: the cursor stays
        assert.equal(((await cursors.get(logCursorName('block'))) as { logId: number }).logId, newer.events[0]!.logId);
        await wiki.block(target, { reason: 'again' });
        assert.deepEqual((await worker.poll()).events.map((e) => `${e.type}/${e.action}`), ['block/block']);
      });
    });
  }
});

skippable(describe, skipUnless(mediawikiAvailable()))('a private wiki, read through a bot password', () => {
  let wiki: TestWiki;
  beforeAll(async () => {
    wiki = await startWiki({ settings: "$wgGroupPermissions['*']['read'] = false;" });
  });
  afterAll(async () => {
    await wiki?.stop();
  });

  it('anonymously nothing can be read; signed in, the state and the logs are', async () => {
    const { userId } = await wiki.createUser('Приватный вандал', 'private-vandal-password-1');
    const account = mapped('Приватный вандал', String(userId));
    const anonymous = new ActionApiClient({ apiUrl: wiki.apiUrl, userAgent: 'wiki-matrix-sso-tests/0 (test suite)' });
    await assert.rejects(fetchWikiState([account], { api: anonymous, wiki: WIKI, centralAuth: false }), /readapidenied/);

    const login = await wiki.createBotPassword(wiki.adminName, { appId: 'mirror', grants: ['basic'] });
    const api = new ActionApiClient({ apiUrl: wiki.apiUrl, userAgent: 'wiki-matrix-sso-tests/0 (test suite)', login });
    const cursors = new MemoryCursors();
    const poller = new LogPoller({ api, cursors, centralAuth: false, initialLookbackMs: 60_000 });
    const { id } = await wiki.block('Приватный вандал', { reason: 'spam' });
    const state = await fetchWikiState([account], { api, wiki: WIKI, centralAuth: false });
    assert.deepEqual(state.users[0]!.blocks.map((b) => b.id), [id]);
    const polled = await poller.poll();
    assert.ok(polled.usernames.includes('Приватный вандал'), polled.usernames.join(', '));
  });
});
