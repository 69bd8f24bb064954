// The CentralAuth side of the moderation sources, against a scripted wiki answering in the
// documented formats (CentralAuth and GlobalBlocking cannot run here): renamed, locked, hidden and
// vanished global accounts, global blocks and groups, the global logs; and which recentchange
// events name a user.
import assert from 'node:assert/strict';
import { describe, it } from '@jest/globals';
import { moderationChange } from '../../src/moderation/sources/event-streams.ts';
import { LogPoller, logCursorName } from '../../src/moderation/sources/log-poller.ts';
import { WikiStateError, fetchWikiState, nameKey } from '../../src/moderation/sources/wiki-state.ts';
import type { MappedAccount } from '../../src/moderation/types.ts';
import { ActionApiClient } from '../../src/wiki/action-api.ts';
import {
  DEWIKI,
  ENWIKI,
  META,
  blockEvent,
  canaryEvent,
  editEvent,
  globalBlockEvent,
  globalRightsEvent,
  lockEvent,
  rightsEvent,
} from '../support/eventstreams-double.ts';
import { MemoryCursors } from '../support/memory-cursors.ts';

const WIKI = 'meta.wikimedia.org';
const mapped = (username: string, centralId: string): MappedAccount => ({ wiki: WIKI, centralId, username, localpart: username.toLowerCase().replace(/ /g, '_') });

/** A client whose wiki answers `reply(params)`; every request's parameters are recorded. */
function scriptedWiki(reply: (params: URLSearchParams) => unknown) {
  const calls: URLSearchParams[] = [];
  const api = new ActionApiClient({
    apiUrl: 'https://meta.example/w/api.php',
    userAgent: 'tests/0 (tests@example.org)',
    maxRetries: 0,
    fetch: (async (input: string | URL | Request, init?: RequestInit) => {
      const params = init?.method === 'POST' ? new URLSearchParams(String(init.body)) : new URL(String(input)).searchParams;
      calls.push(params);
      return new Response(JSON.stringify(reply(params)), { headers: { 'content-type': 'application/json' } });
    }) as typeof fetch,
  });
  return { api, calls };
}

// meta=globaluserinfo&guiprop=groups|merged (formatversion=2), as ApiQueryGlobalUserInfo answers.
const globalAccount = (id: number, name: string, extra: Record<string, unknown> = {}) => ({
  batchcomplete: true,
  query: { globaluserinfo: { home: 'metawiki', id, registration: '2015-01-01T00:00:00Z', name, merged: [], ...extra } },
});
const missing = { batchcomplete: true, query: { globaluserinfo: { missing: true } } };

const GLOBAL_ACCOUNTS: Record<string, unknown> = {
  'id:201': globalAccount(201, 'New name', { groups: ['global-rollbacker'] }),
  'id:202': globalAccount(202, 'Locked', { locked: true }),
  'id:203': globalAccount(203, 'Suppressed', { locked: true, hidden: true }),
  'id:204': missing,
  'name:Vanished': missing,
  'id:205': missing,
  'name:Reused': globalAccount(999, 'Reused'),
  'id:206': globalAccount(206, 'Plain'),
};

// list=logevents&letype=globalauth&letitle=User:Locked@global (newest first).
const LOCK_LOG = {
  batchcomplete: true,
  query: {
    logevents: [
      { logid: 7002, ns: 2, title: 'User:Locked@global', pageid: 0, logpage: 0, params: { added: ['locked'], removed: [] }, type: 'globalauth', action: 'setstatus', user: 'Steward', timestamp: '2024-05-02T10:00:00Z', comment: 'Long-term abuse' },
      { logid: 7001, ns: 2, title: 'User:Locked@global', pageid: 0, logpage: 0, params: { added: [], removed: ['locked'] }, type: 'globalauth', action: 'setstatus', user: 'Steward', timestamp: '2024-05-01T10:00:00Z', comment: 'Appeal' },
    ],
  },
};

const GLOBAL_BLOCK = { id: '55', target: 'Locked', by: 'Steward', bywiki: 'metawiki', timestamp: '2024-05-01T10:00:00Z', expiry: 'infinity', reason: 'Cross-wiki abuse' };
const LOCAL_BLOCK = {
  id: 12, user: 'New name', userid: 42, by: 'Admin', timestamp: '2024-04-01T00:00:00Z', expiry: 'infinity', reason: 'Vandalism',
  automatic: false, anononly: false, nocreate: true, autoblock: true, noemail: false, hidden: false, allowusertalk: false, partial: false, restrictions: [],
};

/** Local accounts by user id, for a wiki without CentralAuth (207 is hidden: missing by id). */
const LOCAL_ACCOUNTS: Record<string, string> = { '206': 'Plain', '208': 'New name' };

function centralAuthWiki(overrides: (params: URLSearchParams) => unknown = () => undefined) {
  return scriptedWiki((params) => {
    const override = overrides(params);
    if (override !== undefined) return override;
    if (params.get('meta') === 'globaluserinfo') {
      const key = params.has('guiid') ? `id:${params.get('guiid')}` : `name:${params.get('guiuser')}`;
      return GLOBAL_ACCOUNTS[key] ?? missing;
    }
    const names = (key: string) => params.get(key)!.split('|');
    switch (params.get('list')) {
      case 'users':
        if (params.has('ususerids')) {
          // As MediaWiki answers by id: a hidden (suppressed) account is `{userid, missing}`, no name.
          return {
            query: {
              users: names('ususerids').map((id) =>
                LOCAL_ACCOUNTS[id] === undefined ? { userid: Number(id), missing: true } : { userid: Number(id), name: LOCAL_ACCOUNTS[id], groups: LOCAL_ACCOUNTS[id] === 'Plain' ? ['*', 'user', 'sysop'] : ['*', 'user'], implicitgroups: ['*', 'user'] },
              ),
            },
          };
        }
        return { query: { users: names('ususers').map((name, i) => ({ userid: 40 + i, name, groups: name === 'Plain' ? ['*', 'user', 'sysop'] : ['*', 'user'], implicitgroups: ['*', 'user'] })) } };
      case 'blocks':
        return { query: { blocks: names('bkusers').includes('New name') ? [LOCAL_BLOCK] : [] } };
      case 'globalblocks':
        return { query: { globalblocks: names('bgtargets').includes('Locked') ? [GLOBAL_BLOCK] : [] } };
      case 'logevents':
        return params.get('letitle') === 'User:Locked@global' ? LOCK_LOG : { query: { logevents: [] } };
    }
    return { error: { code: 'unexpected', info: `the script has no answer for ${params}` } };
  });
}

describe('fetchWikiState with CentralAuth', () => {
  const accounts = [mapped('Old name', '201'), mapped('Locked', '202'), mapped('Suppressed', '203'), mapped('Vanished', '204'), mapped('Reused', '205'), mapped('Plain', '206')];

  it('reads global accounts by central id, then the local wiki under their current names', async () => {
    const { api, calls } = centralAuthWiki();
    const state = await fetchWikiState(accounts, { api, wiki: WIKI, centralAuth: true });
    assert.equal(state.complete, false);
    const [renamed, locked, suppressed, vanished, reused, plain] = state.users;

    assert.equal(renamed!.account.username, 'New name', 'a rename is followed through the central id');
    assert.equal(renamed!.account.localpart, 'old_name', 'the Matrix ID never follows a rename');
    assert.deepEqual(renamed!.blocks.map((b) => b.id), [12]);
    assert.deepEqual(renamed!.globalGroups, ['global-rollbacker']);
    assert.equal(renamed!.lock, null);

    assert.deepEqual(locked!.lock, { logId: 7002, by: 'Steward', reason: 'Long-term abuse', timestamp: new Date('2024-05-02T10:00:00Z'), hidden: false });
    assert.deepEqual(locked!.globalBlocks.map((b) => [b.id, b.reason]), [[55, 'Cross-wiki abuse']]);

    assert.deepEqual(suppressed!.lock, { logId: null, by: null, reason: '', timestamp: null, hidden: true });
    assert.deepEqual(vanished!.lock, { logId: null, by: null, reason: '', timestamp: null, hidden: true }, 'gone by id and by name: suppressed');
    assert.deepEqual(reused, { account: mapped('Reused', '205'), blocks: [], globalBlocks: [], lock: null, groups: [], globalGroups: [] }, 'the name is someone else\'s now: nothing is claimed');
    assert.deepEqual(plain!.groups, ['sysop']);

    const asked = (pred: (p: URLSearchParams) => boolean) => calls.filter(pred);
    assert.deepEqual(asked((p) => p.get('meta') === 'globaluserinfo').map((p) => p.get('guiid') ?? `name:${p.get('guiuser')}`), ['201', '202', '203', '204', 'name:Vanished', '205', 'name:Reused', '206']);
    const localNames = asked((p) => p.get('list') === 'users')[0]!.get('ususers')!.split('|');
    assert.deepEqual(localNames, ['New name', 'Locked', 'Suppressed', 'Vanished', 'Plain'], 'the reused name is not asked about');
    assert.deepEqual(asked((p) => p.get('list') === 'logevents').map((p) => p.get('letitle')), ['User:Locked@global'], 'no details are read for a hidden lock');
    assert.equal(asked((p) => p.get('list') === 'globalblocks').length, 1);
  });

  it('reads nothing global without CentralAuth', async () => {
    const { api, calls } = centralAuthWiki();
    const state = await fetchWikiState([mapped('Plain', '206')], { api, wiki: WIKI, centralAuth: false });
    assert.deepEqual(state.users[0]!.groups, ['sysop']);
    assert.deepEqual(calls.map((p) => p.get('list') ?? p.get('meta')), ['users', 'blocks']);
    assert.equal(calls[0]!.get('ususerids'), '206', 'by user id, never by a remembered name');
  });

  it('without CentralAuth follows a renamed account by its id, and reads one hidden from us as a hidden sanction', async () => {
    const { api, calls } = centralAuthWiki();
    const state = await fetchWikiState([mapped('Old name', '208'), mapped('Hidden', '207')], { api, wiki: WIKI, centralAuth: false });
    const [renamed, hidden] = state.users;
    assert.equal(renamed!.account.username, 'New name');
    assert.equal(renamed!.blocks.length, 1);
    assert.equal(renamed!.blocks[0]!.id, LOCAL_BLOCK.id, 'the block is read under the new name');
    assert.equal(renamed!.lock, null);
    assert.equal(hidden!.account.username, 'Hidden');
    assert.deepEqual(hidden!.lock, { logId: null, by: null, reason: '', timestamp: null, hidden: true }, 'hidden from us: sanctioned, never nothing');
    assert.deepEqual(hidden!.blocks, []);
    assert.deepEqual(calls.find((p) => p.get('list') === 'blocks')!.get('bkusers'), 'New name', 'no name is asked about for the hidden account');
  });

  it('fails the whole batch on a malformed answer, naming the accounts and the field', async () => {
    const { api } = centralAuthWiki((p) => (p.get('guiid') === '202' ? { query: { globaluserinfo: { id: 202, name: 'Locked', locked: '' } } } : undefined));
    await assert.rejects(fetchWikiState(accounts, { api, wiki: WIKI, centralAuth: true }), (err: unknown) => {
      assert.ok(err instanceof WikiStateError);
      assert.match(err.message, /^could not read the wiki state of Old name, Locked, Suppressed and 3 more: Wiki API meta=globaluserinfo: malformed answer: query\.globaluserinfo\.locked/);
      assert.deepEqual(err.accounts, accounts.map((a) => a.username));
      return true;
    });
  });

  it('refuses an answer about another central id', async () => {
    const { api } = centralAuthWiki((p) => (p.get('guiid') === '206' ? globalAccount(207, 'Plain') : undefined));
    await assert.rejects(fetchWikiState([mapped('Plain', '206')], { api, wiki: WIKI, centralAuth: true }), /asked for central id 206, the wiki answered for 207/);
  });

  it('spells names as MediaWiki does when matching answers to accounts', () => {
    assert.equal(nameKey('jimbo_Wales'), 'Jimbo Wales');
    assert.equal(nameKey('éva'), 'Éva');
  });
});


describe('LogPoller with CentralAuth', () => {
  // list=logevents entries as the API gives them for each log type (formatversion=2).
  const entries: Record<string, unknown[]> = {
    block: [{ logid: 1, ns: 2, title: 'User:Vandal', params: { duration: 'infinity', flags: ['nocreate'], sitewide: true }, type: 'block', action: 'block', user: 'Admin', timestamp: '2026-11-27T12:00:01Z', comment: 'spam' }],
    rights: [],
    renameuser: [{ logid: 6, ns: 2, title: 'User:Before', params: { olduser: 'Before', newuser: 'After', edits: 3 }, type: 'renameuser', action: 'renameuser', user: 'Bureaucrat', timestamp: '2026-11-27T12:00:01Z', comment: 'request' }],
    globalauth: [{ logid: 2, ns: 2, title: 'User:Locked@global', params: { added: ['locked'], removed: [] }, type: 'globalauth', action: 'setstatus', user: 'Steward', timestamp: '2026-11-27T12:00:02Z', comment: 'LTA' }],
    gblblock: [
      { logid: 3, ns: 2, title: 'User:Vandal', params: { expiry: 'infinity', flags: [] }, type: 'gblblock', action: 'gblock', user: 'Steward', timestamp: '2026-11-27T12:00:03Z', comment: 'x-wiki' },
      { logid: 4, ns: 2, title: 'User:#12', params: {}, type: 'gblblock', action: 'gunblock', user: 'Steward', timestamp: '2026-11-27T12:00:04Z', comment: '' },
    ],
    gblrename: [
      { logid: 7, ns: -1, title: 'Special:CentralAuth/Новое имя', params: { olduser: 'Old name', newuser: 'Новое имя', movepages: true, suppressredirects: false }, type: 'gblrename', action: 'rename', user: 'Renamer', timestamp: '2026-11-27T12:00:06Z', comment: 'per request' },
    ],
    gblrights: [{ logid: 5, ns: 2, title: 'User:New steward', params: { oldGroups: [], newGroups: ['steward'], oldMetadata: [], newMetadata: [{ expiry: null }] }, type: 'gblrights', action: 'usergroups', user: 'Steward', timestamp: '2026-11-27T12:00:05Z', comment: '' }],
  };

  it('reads the global logs too, names their targets, and commits a cursor per log', async () => {
    const { api, calls } = scriptedWiki((p) => ({ query: { logevents: entries[p.get('letype')!] } }));
    const cursors = new MemoryCursors();
    const poller = new LogPoller({ api, cursors, centralAuth: true, clock: () => new Date('2026-11-27T12:00:00.500Z'), initialLookbackMs: 0 });
    assert.deepEqual(poller.types, ['block', 'rights', 'renameuser', 'globalauth', 'gblblock', 'gblrights', 'gblrename']);
    const poll = await poller.poll();
    assert.deepEqual(
      poll.usernames,
      ['Vandal', 'Before', 'After', 'Locked', 'New steward', 'Новое имя', 'Old name'],
      'lock titles lose @global; autoblock ids are no users; a rename names both names (the account is stored under the old one)',
    );
    assert.deepEqual(poll.events.find((e) => e.type === 'gblrename')!.details, { kind: 'rename', oldName: 'Old name', newName: 'Новое имя' });
    assert.deepEqual(calls.map((p) => [p.get('letype'), p.get('lestart')]), [
      ['block', '2026-11-27T12:00:00Z'],
      ['rights', '2026-11-27T12:00:00Z'],
      ['renameuser', '2026-11-27T12:00:00Z'],
      ['globalauth', '2026-11-27T12:00:00Z'],
      ['gblblock', '2026-11-27T12:00:00Z'],
      ['gblrights', '2026-11-27T12:00:00Z'],
      ['gblrename', '2026-11-27T12:00:00Z'],
    ]);
    assert.equal(cursors.values.size, 0, 'nothing is stored before the commit');
    await poll.commit();
    assert.deepEqual(cursors.values.get(logCursorName('gblblock')), { timestamp: '2026-11-27T12:00:04.000Z', logId: 4 });
    assert.deepEqual(cursors.values.get(logCursorName('rights')), { timestamp: '2026-11-27T12:00:00.000Z', logId: 0 }, 'an empty log is pinned where it started');
  });

  it('local logs only without CentralAuth', () => {
    const poller = new LogPoller({ api: scriptedWiki(() => ({})).api, cursors: new MemoryCursors(), centralAuth: false });
    assert.deepEqual(poller.types, ['block', 'rights', 'renameuser']);
  });

  it('refuses a stored cursor it cannot read, saying how to recover', async () => {
    const cursors = new MemoryCursors();
    cursors.values.set(logCursorName('block'), { when: 'yesterday' });
    const poller = new LogPoller({ api: scriptedWiki(() => ({ query: { logevents: [] } })).api, cursors, centralAuth: false });
    await assert.rejects(poller.poll(), /the stored cursor wiki-log:block is not \{timestamp, logId\}.*delete the row/);
  });

  it('leaves the rest of a long log to the next poll', async () => {
    const many = Array.from({ length: 5 }, (_, i) => ({ logid: 10 + i, ns: 2, title: `User:U${i}`, params: {}, type: 'block', action: 'unblock', user: 'Admin', timestamp: `2026-11-27T12:00:0${i}Z`, comment: '' }));
    const { api } = scriptedWiki((p) => ({ query: { logevents: p.get('letype') === 'block' ? many : [] } }));
    const cursors = new MemoryCursors();
    const poller = new LogPoller({ api, cursors, centralAuth: false, maxEntriesPerLog: 3, clock: () => new Date('2026-11-27T12:00:00Z'), initialLookbackMs: 0 });
    const first = await poller.poll();
    assert.deepEqual(first.usernames, ['U0', 'U1', 'U2']);
    await first.commit();
    assert.deepEqual((await poller.poll()).usernames, ['U3', 'U4']);
  });
});

describe('moderation changes in recentchange events', () => {
  const both = { wiki: 'metawiki', centralAuth: true };
  const nameOf = (event: unknown, filter = both) => moderationChange(event, filter)?.username;

  it('names the target of block, rights and global log events', () => {
    const block = blockEvent(META, 'Vandal');
    assert.deepEqual(moderationChange(block, both), { username: 'Vandal', wiki: 'metawiki', logType: 'block', logAction: 'block', logId: block.log_id });
    assert.equal(nameOf(rightsEvent(META, 'New admin', { to: ['sysop'] })), 'New admin');
    assert.equal(nameOf(lockEvent('Locked user')), 'Locked user', 'User:Name@global');
    assert.equal(nameOf(lockEvent('Locked user', { unlock: true })), 'Locked user');
    assert.equal(nameOf(globalBlockEvent('Blocked everywhere')), 'Blocked everywhere');
    assert.equal(nameOf(globalRightsEvent('New steward', { to: ['steward'] })), 'New steward');
    assert.equal(nameOf(blockEvent(DEWIKI, 'Störer'), { wiki: 'dewiki', centralAuth: false }), 'Störer', 'Benutzer:Name');
  });

  it('ignores edits, canaries, other wikis\' local logs, global logs without CentralAuth, and junk', () => {
    assert.equal(nameOf(editEvent(META, 'User:Someone', { namespace: 2 })), undefined);
    assert.equal(nameOf(canaryEvent()), undefined);
    assert.equal(nameOf(blockEvent(ENWIKI, 'Vandal')), undefined);
    assert.equal(nameOf(lockEvent('Locked'), { wiki: 'metawiki', centralAuth: false }), undefined);
    assert.equal(nameOf({ ...blockEvent(META, 'X'), namespace: -1, title: 'Special:GlobalBlockList/#12' }), undefined);
    assert.equal(nameOf({ ...blockEvent(META, '#12') }), undefined, 'autoblock');
    for (const junk of [null, 'text', 42, {}, { type: 'log' }, { ...blockEvent(META, 'X'), title: 7 }]) assert.equal(nameOf(junk), undefined);
  });

  it('a rename names the old name, under which the account is stored', () => {
    const local = { ...blockEvent(META, 'Before'), log_type: 'renameuser', log_action: 'renameuser', log_params: { olduser: 'Before', newuser: 'After', edits: 0 } };
    assert.equal(nameOf(local), 'Before');
    const global = {
      ...blockEvent(META, 'X'),
      log_type: 'gblrename',
      log_action: 'rename',
      namespace: -1,
      title: 'Special:CentralAuth/Новое имя',
      log_params: { olduser: 'Old name', newuser: 'Новое имя', movepages: true, suppressredirects: false },
    };
    assert.equal(nameOf(global), 'Old name');
    assert.equal(nameOf(global, { wiki: 'metawiki', centralAuth: false }), undefined, 'a global log without CentralAuth');
  });

  it('a global log counts whatever wiki the local filter names', () => {
    assert.equal(nameOf(lockEvent('Locked'), { wiki: 'enwiki', centralAuth: true }), 'Locked');
  });
});
