// The Action API client against a real MediaWiki 1.39: an admin arranges blocks and group changes
// through the API, and the client reads them back as typed values.
import assert from 'node:assert/strict';
import { afterAll, beforeAll, describe, it } from '@jest/globals';
import { ActionApiClient, logCursorOf, type WikiLogEvent } from '../../src/wiki/action-api.ts';
import { mediawikiAvailable, startWiki, type TestWiki } from '../support/mediawiki.ts';
import { skipUnless } from '../support/real-parts.ts';
import { skippable } from '../support/suites.ts';

const unavailable = mediawikiAvailable();

async function collect<T>(events: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const e of events) out.push(e);
  return out;
}

skippable(describe, skipUnless(unavailable))('Action API client on a real MediaWiki', () => {
  let wiki: TestWiki;
  let api: ActionApiClient;
  let requests: URL[];
  let sitewideId: number;
  let partialId: number;
  const start = new Date(Date.now() - 60_000);

  beforeAll(async () => {
    wiki = await startWiki();
    requests = [];
    api = new ActionApiClient({
      apiUrl: wiki.apiUrl,
      userAgent: 'wiki-matrix-sso-tests/0 (test suite)',
      fetch: (input, init) => {
        requests.push(new URL(String(input)));
        return fetch(input, init);
      },
    });
    await wiki.createUser('Alice', 'alice-password-1');
    await wiki.createUser('Carol', 'carol-password-1');
    await wiki.createUser('Moderator', 'moderator-password-1', { sysop: true });
    await wiki.createUser('Plain', 'plain-password-1');

    sitewideId = (await wiki.block('Alice', { reason: 'spam', expiry: 'infinite' })).id;
    const reblocked = await wiki.block('Alice', { reason: 'spam, again', expiry: '1 week', reblock: true });
    assert.equal(reblocked.id, sitewideId, 'a reblock keeps the block id');
    partialId = (await wiki.block('Carol', { reason: 'edit war', partial: true, pages: ['Main Page'] })).id;
    await wiki.userrights('Carol', { add: ['bot', 'interface-admin'] });
    await wiki.userrights('Carol', { remove: ['bot'] });
  });

  afterAll(async () => {
    await wiki?.stop();
  });

  it('sends format=json, formatversion=2 and maxlag on every request', async () => {
    await api.getUsers(['Plain']);
    const last = requests.at(-1)!;
    assert.equal(last.searchParams.get('format'), 'json');
    assert.equal(last.searchParams.get('formatversion'), '2');
    assert.equal(last.searchParams.get('maxlag'), '5');
  });

  it('reads a sitewide block with a finite expiry, and a partial one with its pages', async () => {
    const blocks = await api.getBlocks(['Alice', 'Carol', 'Plain', 'Nobody at all']);
    assert.equal(blocks.length, 2);
    const alice = blocks.find((b) => b.user === 'Alice')!;
    assert.equal(alice.id, sitewideId);
    assert.equal(alice.sitewide, true);
    assert.equal(alice.reason, 'spam, again');
    assert.equal(alice.by, wiki.adminName);
    assert.ok(alice.expiry instanceof Date);
    const week = 7 * 24 * 3600_000;
    assert.ok(Math.abs(alice.expiry.getTime() - alice.timestamp.getTime() - week) < 5_000, 'expires a week after it was placed');
    assert.deepEqual(alice.restrictions, { pages: [], namespaces: [], actions: [] });
    assert.equal(alice.allowUserTalk, false);

    const carol = blocks.find((b) => b.user === 'Carol')!;
    assert.equal(carol.id, partialId);
    assert.equal(carol.sitewide, false);
    assert.equal(carol.expiry, null, 'infinity means it never expires');
    assert.equal(carol.allowUserTalk, true);
    assert.deepEqual(carol.restrictions.pages.map((p) => p.title), ['Main Page']);
    assert.ok(carol.userId > 0);
  });

  it('pages through list=blocks with a small limit', async () => {
    const before = requests.length;
    const blocks = await api.getBlocks(['Alice', 'Carol'], { pageSize: 1 });
    assert.deepEqual(blocks.map((b) => b.user).sort(), ['Alice', 'Carol']);
    assert.equal(requests.length - before, 2, 'one request per page');
  });

  it('reads users with explicit groups only, their block, and missing or invalid names', async () => {
    const users = await api.getUsers(['Alice', 'Carol', 'Moderator', 'Plain', 'Nobody at all', 'Bad<name']);
    const byName = new Map(users.map((u) => [u.name, u]));
    const moderator = byName.get('Moderator');
    assert.ok(moderator?.exists);
    assert.deepEqual(moderator.groups, ['sysop']);
    assert.equal(moderator.block, null);

    const carol = byName.get('Carol');
    assert.ok(carol?.exists);
    assert.deepEqual(carol.groups, ['interface-admin']);
    assert.equal(carol.block?.id, partialId);
    assert.equal(carol.block?.sitewide, false);
    assert.equal(carol.block?.expiry, null, '"infinite" in blockinfo also means never');

    const alice = byName.get('Alice');
    assert.ok(alice?.exists);
    assert.deepEqual(alice.groups, []);
    assert.equal(alice.block?.sitewide, true);
    assert.ok(alice.block?.expiry instanceof Date);

    assert.deepEqual(byName.get('Nobody at all'), { name: 'Nobody at all', exists: false, invalid: false });
    assert.deepEqual(byName.get('Bad<name'), { name: 'Bad<name', exists: false, invalid: true });
  });

  it('reads the block log: block, reblock, partial block, unblock', async () => {
    await wiki.createUser('Dave', 'dave-password-12');
    await wiki.block('Dave', { reason: 'short', expiry: '2 hours' });
    await wiki.unblock('Dave');

    const events = await collect(api.logEvents('block', { since: start }));
    const summary = events.map((e) => `${e.action} ${e.target}`);
    assert.deepEqual(summary, ['block Alice', 'reblock Alice', 'block Carol', 'block Dave', 'unblock Dave']);

    const [first, reblock, partial, dave, unblock] = events as [WikiLogEvent, WikiLogEvent, WikiLogEvent, WikiLogEvent, WikiLogEvent];
    assert.equal(first.performer, wiki.adminName);
    assert.equal(first.comment, 'spam');
    assert.deepEqual(first.details, {
      kind: 'block',
      duration: 'infinity',
      expiry: null,
      flags: ['noautoblock', 'nousertalk'],
      sitewide: true,
      restrictions: { pages: [], namespaces: [], actions: [] },
    });
    assert.equal(reblock.details.kind, 'block');
    assert.ok(reblock.details.kind === 'block' && reblock.details.expiry instanceof Date);
    assert.equal(reblock.details.duration, '1 week');
    assert.deepEqual(partial.details.kind === 'block' && partial.details.restrictions, {
      pages: [{ ns: 0, title: 'Main Page' }],
      namespaces: [],
      actions: [],
    });
    assert.equal(partial.details.kind === 'block' && partial.details.sitewide, false);
    assert.ok(dave.details.kind === 'block' && dave.details.expiry instanceof Date);
    assert.deepEqual(unblock.details, { kind: 'unblock' });
  });

  it('resumes the log after a cursor, and pages with a small limit', async () => {
    const all = await collect(api.logEvents('block', { since: start, pageSize: 2 }));
    assert.equal(all.length, 5);
    const cursor = logCursorOf(all[2]!);
    const rest = await collect(api.logEvents('block', { after: cursor, pageSize: 1 }));
    assert.deepEqual(rest.map((e) => e.logId), all.slice(3).map((e) => e.logId));
  });

  it('reads the rights log: old and new groups', async () => {
    const events = await collect(api.logEvents('rights', { since: start }));
    const carol = events.filter((e) => e.target === 'Carol');
    assert.deepEqual(
      carol.map((e) => e.details),
      [
        { kind: 'rights', oldGroups: [], newGroups: ['bot', 'interface-admin'], newExpiries: { bot: null, 'interface-admin': null } },
        { kind: 'rights', oldGroups: ['bot', 'interface-admin'], newGroups: ['interface-admin'], newExpiries: { 'interface-admin': null } },
      ],
    );
    const moderator = events.find((e) => e.target === 'Moderator');
    assert.deepEqual(moderator?.details.kind === 'rights' && moderator.details.newGroups, ['sysop']);
  });

  it('surfaces API errors with their code', async () => {
    await assert.rejects(
      api.request('list=blocks', { action: 'query', list: 'blocks', bklimit: 'lots' }),
      (err: any) => err.name === 'WikiApiError' && err.kind === 'api' && err.apiCode === 'badinteger' && /list=blocks/.test(err.message),
    );
  });

  it('leaves out an invalid name instead of losing the whole batch', async () => {
    const blocks = await api.getBlocks(['Bad<name', 'Alice', 'Carol']);
    assert.deepEqual(blocks.map((b) => b.user).sort(), ['Alice', 'Carol']);
  });

  it('has no block left after unblock', async () => {
    await wiki.unblock('Alice');
    const blocks = await api.getBlocks(['Alice']);
    assert.deepEqual(blocks, []);
    const [alice] = await api.getUsers(['Alice']);
    assert.ok(alice?.exists);
    assert.equal(alice.block, null);
  });
});
