// The Action API client against a scripted fake wiki: back-off and retries, the serial queue,
// strict parsing, and the CentralAuth / GlobalBlocking answers (fixtures in their documented
// format, since those extensions cannot run here).
import assert from 'node:assert/strict';
import { describe, it } from '@jest/globals';
import { ActionApiClient, WikiApiError, buildUserAgent, encodeParams, type WikiLogEvent } from '../../src/wiki/action-api.ts';

type Reply = { json?: unknown; body?: string; status?: number; headers?: Record<string, string> } | Error;

interface FakeWiki {
  client: ActionApiClient;
  /** Parameters of every request, GET or POST. */
  calls: URLSearchParams[];
  methods: string[];
  sleeps: number[];
}

/** A client whose wiki answers with `reply(params, n)`; sleeping is recorded, not waited. */
function fakeWiki(reply: (params: URLSearchParams, n: number) => Reply | Promise<Reply>, options: { maxRetries?: number } = {}): FakeWiki {
  const calls: URLSearchParams[] = [];
  const methods: string[] = [];
  const sleeps: number[] = [];
  const fetch = async (input: string | URL | Request, init?: RequestInit): Promise<Response> => {
    const url = new URL(String(input));
    const params = init?.method === 'POST' ? new URLSearchParams(String(init.body)) : url.searchParams;
    calls.push(params);
    methods.push(init?.method ?? 'GET');
    assert.equal(new Headers(init?.headers).get('user-agent'), 'test-agent/1 (tests@example.org)');
    const r = await reply(params, calls.length - 1);
    if (r instanceof Error) throw r;
    const body = r.body ?? JSON.stringify(r.json);
    return new Response(body, { status: r.status ?? 200, headers: { 'content-type': 'application/json', ...r.headers } });
  };
  const client = new ActionApiClient({
    apiUrl: 'https://wiki.example/w/api.php',
    userAgent: 'test-agent/1 (tests@example.org)',
    fetch: fetch as typeof globalThis.fetch,
    sleep: async (ms) => {
      sleeps.push(ms);
    },
    maxRetries: options.maxRetries ?? 3,
  });
  return { client, calls, methods, sleeps };
}

const ok = (json: unknown): Reply => ({ json });
const apiError = (code: string, info = code, headers: Record<string, string> = {}): Reply => ({
  json: { error: { code, info, docref: 'See api.php' } },
  headers,
});
const noBlocks = ok({ batchcomplete: true, query: { blocks: [] } });

async function collect<T>(events: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const e of events) out.push(e);
  return out;
}

async function rejectsWith(promise: Promise<unknown>, check: (err: WikiApiError) => void): Promise<void> {
  await assert.rejects(promise, (err: unknown) => {
    assert.ok(err instanceof WikiApiError, `expected a WikiApiError, got ${String(err)}`);
    check(err);
    return true;
  });
}

const aliceBlock = {
  id: 7,
  user: 'Alice',
  userid: 3,
  by: 'Admin',
  timestamp: '2024-05-01T10:00:00Z',
  expiry: 'infinity',
  reason: 'spam',
  automatic: false,
  anononly: false,
  nocreate: true,
  autoblock: true,
  noemail: false,
  hidden: false,
  allowusertalk: false,
  partial: false,
  restrictions: [],
};

describe('ActionApiClient transport', () => {
  it('sends format=json, formatversion=2, maxlag=5 and the User-Agent on every request', async () => {
    const wiki = fakeWiki(() => noBlocks);
    await wiki.client.getBlocks(['Alice']);
    const [params] = wiki.calls;
    assert.equal(params?.get('format'), 'json');
    assert.equal(params?.get('formatversion'), '2');
    assert.equal(params?.get('maxlag'), '5');
    assert.equal(params?.get('bkusers'), 'Alice');
  });

  it('waits as long as Retry-After says when the wiki is lagged, then retries', async () => {
    const wiki = fakeWiki((_, n) => (n === 0 ? apiError('maxlag', 'Waiting for db1: 7 seconds lagged.', { 'retry-after': '7' }) : noBlocks));
    assert.deepEqual(await wiki.client.getBlocks(['Alice']), []);
    assert.equal(wiki.calls.length, 2);
    assert.deepEqual(wiki.sleeps, [7000]);
  });

  it('waits 5 s on maxlag without Retry-After', async () => {
    const wiki = fakeWiki((_, n) => (n === 0 ? apiError('maxlag') : noBlocks));
    await wiki.client.getBlocks(['Alice']);
    assert.deepEqual(wiki.sleeps, [5000]);
  });

  it('gives up after the bounded number of retries, naming the code', async () => {
    const wiki = fakeWiki(() => apiError('maxlag', 'lagged', { 'retry-after': '1' }), { maxRetries: 2 });
    await rejectsWith(wiki.client.getBlocks(['Alice']), (err) => {
      assert.equal(err.kind, 'api');
      assert.equal(err.apiCode, 'maxlag');
      assert.match(err.message, /list=blocks: gave up after 3 attempts: maxlag/);
    });
    assert.equal(wiki.calls.length, 3);
    assert.deepEqual(wiki.sleeps, [1000, 1000]);
  });

  it('backs off on ratelimited, at least 5 s and growing', async () => {
    const wiki = fakeWiki((_, n) => (n < 3 ? apiError('ratelimited', 'You have exceeded your rate limit.') : noBlocks));
    await wiki.client.getBlocks(['Alice']);
    assert.deepEqual(wiki.sleeps, [5000, 10000, 20000]);
  });

  it('retries transient HTTP and network failures, but not other HTTP errors', async () => {
    const flaky = fakeWiki((_, n) =>
      n === 0 ? { status: 503, body: 'busy', headers: { 'retry-after': '2' } } : n === 1 ? new TypeError('fetch failed') : noBlocks,
    );
    await flaky.client.getBlocks(['Alice']);
    assert.equal(flaky.calls.length, 3);
    assert.equal(flaky.sleeps[0], 2000);

    const broken = fakeWiki(() => ({ status: 403, body: 'Forbidden' }));
    await rejectsWith(broken.client.getBlocks(['Alice']), (err) => {
      assert.equal(err.kind, 'http');
      assert.equal(err.httpStatus, 403);
    });
    assert.equal(broken.calls.length, 1);
  });

  it('surfaces other API errors at once, with their code', async () => {
    const wiki = fakeWiki(() => apiError('readapidenied', 'You need read permission to use this module.'));
    await rejectsWith(wiki.client.getUsers(['Alice']), (err) => {
      assert.equal(err.apiCode, 'readapidenied');
      assert.equal(err.module, 'list=users');
      assert.equal(err.code, 'wiki_api');
      assert.equal(err.status, 502);
    });
    assert.equal(wiki.calls.length, 1);
  });

  it('keeps one request in flight at a time', async () => {
    let inFlight = 0;
    let most = 0;
    const wiki = fakeWiki(async () => {
      inFlight++;
      most = Math.max(most, inFlight);
      await new Promise((resolve) => setTimeout(resolve, 5));
      inFlight--;
      return noBlocks;
    });
    await Promise.all([wiki.client.getBlocks(['A']), wiki.client.getBlocks(['B']), wiki.client.getUsers(['C']).catch(() => {})]);
    assert.equal(most, 1);
    assert.equal(wiki.calls.length, 3);
  });

  it('a failed request does not stall the queue', async () => {
    const wiki = fakeWiki((_, n) => (n === 0 ? apiError('internal_api_error_DBQueryError') : noBlocks));
    const [first, second] = await Promise.allSettled([wiki.client.getBlocks(['A']), wiki.client.getBlocks(['B'])]);
    assert.equal(first.status, 'rejected');
    assert.equal(second.status, 'fulfilled');
  });

  it('asks in batches of 50 distinct names', async () => {
    const wiki = fakeWiki(() => noBlocks);
    const names = Array.from({ length: 120 }, (_, i) => `User ${i}`);
    await wiki.client.getBlocks([...names, 'User 0']);
    assert.deepEqual(wiki.calls.map((p) => p.get('bkusers')!.split('|').length), [50, 50, 20]);
  });

  it('sends long queries as POST', async () => {
    const wiki = fakeWiki(() => noBlocks);
    await wiki.client.getBlocks(Array.from({ length: 50 }, (_, i) => `${'Ŋ'.repeat(40)} ${i}`));
    assert.deepEqual(wiki.methods, ['POST']);
    assert.equal(wiki.calls[0]?.get('maxlag'), '5');
  });

  it('follows continue until the wiki has no more, and refuses a continuation loop', async () => {
    const wiki = fakeWiki((params) => {
      const from = Number(params.get('bkcontinue') ?? 0);
      const next = from + 1;
      return ok({
        ...(next < 3 ? { continue: { bkcontinue: String(next), continue: '-||' } } : {}),
        query: { blocks: [{ ...aliceBlock, id: from + 1 }] },
      });
    });
    const blocks = await wiki.client.getBlocks(['Alice'], { pageSize: 1 });
    assert.deepEqual(blocks.map((b) => b.id), [1, 2, 3]);
    assert.equal(wiki.calls[0]?.get('continue'), '');
    assert.equal(wiki.calls[1]?.get('continue'), '-||');

    const looping = fakeWiki(() => ok({ continue: { bkcontinue: '1', continue: '-||' }, query: { blocks: [] } }));
    await rejectsWith(looping.client.getBlocks(['Alice']), (err) => assert.match(err.message, /same continuation twice/));
  });

  it('joins values holding "|" with U+001F', () => {
    assert.equal(encodeParams({ a: ['x', 'y'], b: true, c: false, d: undefined, e: 3 }), 'a=x%7Cy&b=1&e=3');
    assert.equal(new URLSearchParams(encodeParams({ titles: ['a|b', 'c'] })).get('titles'), '\u001fa|b\u001fc');
  });
});

describe('ActionApiClient parsing', () => {
  it('names the module and the field of a malformed answer', async () => {
    const cases: [unknown, RegExp][] = [
      [{ query: { blocks: [{ ...aliceBlock, expiry: 'soon' }] } }, /list=blocks: malformed answer: query\.blocks\[0\]\.expiry: expected a timestamp or "infinity"/],
      // formatversion=1 encodes true as "".
      [{ query: { blocks: [{ ...aliceBlock, partial: '' }] } }, /query\.blocks\[0\]\.partial/],
      [{ query: { blocks: [{ ...aliceBlock, restrictions: 'all' }] } }, /query\.blocks\[0\]\.restrictions/],
      [{ batchcomplete: true }, /query/],
      [{ query: { blocks: [{ ...aliceBlock, id: '7' }] } }, /query\.blocks\[0\]\.id/],
    ];
    for (const [answer, message] of cases) {
      const wiki = fakeWiki(() => ok(answer));
      await rejectsWith(wiki.client.getBlocks(['Alice']), (err) => {
        assert.equal(err.kind, 'malformed');
        assert.match(err.message, message);
      });
    }
    const html = fakeWiki(() => ({ body: '<html>Wikimedia Error</html>' }));
    await rejectsWith(html.client.getBlocks(['Alice']), (err) => assert.match(err.message, /not JSON/));
  });

  it('reads sitewide and partial blocks; autoblocks are left out', async () => {
    const partial = {
      ...aliceBlock,
      id: 8,
      user: 'Carol',
      expiry: '2024-06-01T00:00:00Z',
      partial: true,
      allowusertalk: true,
      restrictions: { pages: [{ id: 1, ns: 0, title: 'Main Page' }], namespaces: [4] },
    };
    const autoblock = { ...aliceBlock, id: 9, user: undefined, userid: undefined, automatic: true };
    const wiki = fakeWiki(() => ok({ query: { blocks: [aliceBlock, partial, autoblock] } }));
    const [alice, carol, ...rest] = await wiki.client.getBlocks(['Alice', 'Carol']);
    assert.equal(rest.length, 0);
    assert.deepEqual(alice, {
      id: 7,
      user: 'Alice',
      userId: 3,
      by: 'Admin',
      timestamp: new Date('2024-05-01T10:00:00Z'),
      expiry: null,
      reason: 'spam',
      sitewide: true,
      restrictions: { pages: [], namespaces: [], actions: [] },
      anonOnly: false,
      noCreate: true,
      autoblock: true,
      noEmail: false,
      allowUserTalk: false,
      hidden: false,
    });
    assert.equal(carol?.sitewide, false);
    assert.deepEqual(carol?.expiry, new Date('2024-06-01T00:00:00Z'));
    assert.deepEqual(carol?.restrictions, { pages: [{ id: 1, ns: 0, title: 'Main Page' }], namespaces: [4], actions: [] });
  });

  it('strips implicit groups, including ones the wiki reports as implicit', async () => {
    const wiki = fakeWiki(() =>
      ok({
        query: {
          users: [
            {
              userid: 4,
              name: 'Bob',
              groups: ['sysop', '*', 'user', 'autoconfirmed', 'emailconfirmed'],
              implicitgroups: ['*', 'user', 'autoconfirmed', 'emailconfirmed'],
              blockid: 3,
              blockedby: 'Admin',
              blockreason: 'x',
              blockedtimestamp: '2024-05-01T10:00:00Z',
              blockexpiry: 'infinite',
              blockpartial: true,
            },
            { name: 'Nobody', missing: true },
          ],
        },
      }),
    );
    const [bob, nobody] = await wiki.client.getUsers(['Bob', 'Nobody']);
    assert.ok(bob?.exists);
    assert.deepEqual(bob.groups, ['sysop']);
    assert.deepEqual(bob.block, {
      id: 3,
      by: 'Admin',
      reason: 'x',
      timestamp: new Date('2024-05-01T10:00:00Z'),
      expiry: null,
      sitewide: false,
      noCreate: false,
      anonOnly: false,
    });
    assert.deepEqual(nobody, { name: 'Nobody', exists: false, invalid: false });
    assert.equal(wiki.calls[0]?.get('usprop'), 'blockinfo|groups|implicitgroups');
  });
});

describe('ActionApiClient logevents', () => {
  const entry = (logid: number, timestamp: string, fields: Record<string, unknown>) => ({
    logid,
    ns: 2,
    title: 'User:Alice',
    pageid: 0,
    logpage: 0,
    user: 'Steward',
    timestamp,
    comment: 'because',
    ...fields,
  });

  it('skips entries at or before the cursor, starting at its timestamp, oldest first', async () => {
    const wiki = fakeWiki(() =>
      ok({
        query: {
          logevents: [
            entry(10, '2024-05-01T10:00:00Z', { type: 'block', action: 'unblock', params: {} }),
            entry(11, '2024-05-01T10:00:00Z', { type: 'block', action: 'unblock', params: {} }),
            entry(12, '2024-05-01T10:00:01Z', { type: 'block', action: 'unblock', params: {} }),
          ],
        },
      }),
    );
    const events = await collect(wiki.client.logEvents('block', { after: { timestamp: new Date('2024-05-01T10:00:00Z'), logId: 10 } }));
    assert.deepEqual(events.map((e) => e.logId), [11, 12]);
    const params = wiki.calls[0]!;
    assert.equal(params.get('lestart'), '2024-05-01T10:00:00Z');
    assert.equal(params.get('ledir'), 'newer');
    assert.equal(params.get('letype'), 'block');
  });

  it('reads CentralAuth and GlobalBlocking log entries; legacy params stay as they are', async () => {
    const wiki = fakeWiki(() =>
      ok({
        query: {
          logevents: [
            entry(1, '2024-05-01T10:00:00Z', { type: 'globalauth', action: 'setstatus', title: 'User:Alice@global', params: { added: ['locked'], removed: [] } }),
            entry(2, '2024-05-01T10:00:01Z', { type: 'globalauth', action: 'setstatus', title: 'User:Alice@global', params: { 0: 'locked', 1: '(none)' } }),
            entry(3, '2024-05-01T10:00:02Z', { type: 'gblblock', action: 'gblock', params: { expiry: '2024-06-01T00:00:00Z', flags: ['anon-only'] } }),
            entry(4, '2024-05-01T10:00:03Z', { type: 'gblblock', action: 'gunblock', params: {} }),
            entry(5, '2024-05-01T10:00:04Z', { type: 'gblrights', action: 'usergroups', params: { oldGroups: [], newGroups: ['steward'] } }),
            entry(6, '2024-05-01T10:00:05Z', { type: 'globalauth', action: 'delete', params: {} }),
            { logid: 7, ns: 2, type: 'globalauth', action: 'setstatus', timestamp: '2024-05-01T10:00:06Z', actionhidden: true, userhidden: true },
          ],
        },
      }),
    );
    const events = await collect(wiki.client.logEvents('globalauth'));
    const details = events.map((e: WikiLogEvent) => e.details);
    assert.deepEqual(details, [
      { kind: 'global-status', added: ['locked'], removed: [] },
      { kind: 'other', params: { 0: 'locked', 1: '(none)' } },
      { kind: 'global-block', expiry: new Date('2024-06-01T00:00:00Z'), flags: ['anon-only'] },
      { kind: 'global-unblock' },
      { kind: 'global-rights', oldGroups: [], newGroups: ['steward'] },
      { kind: 'other', params: {} },
      { kind: 'hidden' },
    ]);
    assert.equal(events[0]?.target, 'Alice', 'the @global suffix is not part of the name');
    assert.equal(events[6]?.target, null);
    assert.equal(events[6]?.performer, null);
  });

  it('a local block entry with unexpected params is an error, not a guess', async () => {
    const wiki = fakeWiki(() =>
      ok({ query: { logevents: [entry(1, '2024-05-01T10:00:00Z', { type: 'block', action: 'block', params: { duration: 'infinity', flags: 'nocreate' } })] } }),
    );
    await rejectsWith(collect(wiki.client.logEvents('block')), (err) => {
      assert.equal(err.kind, 'malformed');
      assert.equal(err.field, 'query.logevents[0].params.flags');
    });
  });
});

describe('ActionApiClient CentralAuth and GlobalBlocking', () => {
  // meta=globaluserinfo&guiprop=groups|merged, formatversion=2, as ApiQueryGlobalUserInfo builds it.
  const lockedUser = {
    batchcomplete: true,
    query: {
      globaluserinfo: {
        home: 'enwiki',
        id: 123456,
        registration: '2010-03-04T05:06:07Z',
        name: 'Example',
        locked: true,
        groups: ['global-rollbacker'],
        merged: [
          {
            wiki: 'enwiki',
            url: 'https://en.wikipedia.org',
            id: 42,
            timestamp: '2010-03-04T05:06:07Z',
            method: 'primary',
            editcount: 1500,
            registration: '2010-03-04T05:06:07Z',
            groups: ['sysop', 'rollbacker'],
          },
          {
            wiki: 'dewiki',
            url: 'https://de.wikipedia.org',
            id: 99,
            timestamp: '2012-01-01T00:00:00Z',
            method: 'login',
            editcount: 3,
            registration: '2012-01-01T00:00:00Z',
            blocked: { expiry: 'infinity', reason: 'Vandalism' },
          },
          {
            wiki: 'frwiki',
            url: 'https://fr.wikipedia.org',
            id: 7,
            timestamp: '2013-01-01T00:00:00Z',
            method: 'login',
            editcount: 0,
            registration: '2013-01-01T00:00:00Z',
            blocked: { expiry: '2030-01-01T00:00:00Z', reason: 'Edit warring' },
          },
        ],
      },
    },
  };

  it('reads a locked global account with its attached accounts', async () => {
    const wiki = fakeWiki(() => ok(lockedUser));
    const info = await wiki.client.getGlobalUserInfo('Example');
    assert.deepEqual(info, {
      exists: true,
      id: 123456,
      name: 'Example',
      homeWiki: 'enwiki',
      registration: new Date('2010-03-04T05:06:07Z'),
      locked: true,
      hidden: false,
      globalGroups: ['global-rollbacker'],
      accounts: [
        { wiki: 'enwiki', url: 'https://en.wikipedia.org', localId: 42, groups: ['sysop', 'rollbacker'], blocked: null },
        { wiki: 'dewiki', url: 'https://de.wikipedia.org', localId: 99, groups: [], blocked: { expiry: null, reason: 'Vandalism' } },
        { wiki: 'frwiki', url: 'https://fr.wikipedia.org', localId: 7, groups: [], blocked: { expiry: new Date('2030-01-01T00:00:00Z'), reason: 'Edit warring' } },
      ],
    });
    assert.equal(wiki.calls[0]?.get('guiuser'), 'Example');
    assert.equal(wiki.calls[0]?.get('guiprop'), 'groups|merged');
  });

  it('reads a hidden account, a missing one, and asks by central id', async () => {
    const hidden = structuredClone(lockedUser);
    Object.assign(hidden.query.globaluserinfo, { hidden: true, merged: [], groups: undefined });
    const wiki = fakeWiki((_, n) => (n === 0 ? ok(hidden) : ok({ query: { globaluserinfo: { missing: true } } })));
    const info = await wiki.client.getGlobalUserInfo({ id: 123456 });
    assert.ok(info.exists);
    assert.equal(info.hidden, true);
    assert.equal(info.locked, true);
    assert.deepEqual(info.globalGroups, []);
    assert.equal(wiki.calls[0]?.get('guiid'), '123456');
    assert.deepEqual(await wiki.client.getGlobalUserInfo('Nobody'), { exists: false });
  });

  it('refuses a globaluserinfo answer in the formatversion=1 encoding', async () => {
    const fv1 = structuredClone(lockedUser) as any;
    fv1.query.globaluserinfo.locked = '';
    const wiki = fakeWiki(() => ok(fv1));
    await rejectsWith(wiki.client.getGlobalUserInfo('Example'), (err) => {
      assert.equal(err.module, 'meta=globaluserinfo');
      assert.equal(err.field, 'query.globaluserinfo.locked');
    });
  });

  it('reads global blocks, and leaves out names without a global account', async () => {
    const block = {
      id: '55',
      target: 'Example',
      by: 'Steward',
      bywiki: 'metawiki',
      timestamp: '2024-05-01T10:00:00Z',
      expiry: 'infinity',
      reason: 'Cross-wiki abuse',
    };
    const wiki = fakeWiki((params) => {
      const targets = params.get('bgtargets')!.split('|');
      if (targets.includes('Ghost')) return apiError('nosuchuser', 'The target "Ghost" is not a valid username.');
      if (targets.includes('192.0.2.1')) return ok({ query: { globalblocks: [{ ...block, id: 56, target: undefined, address: '192.0.2.1', anononly: '' }] } });
      return ok({ query: { globalblocks: targets.includes('Example') ? [block] : [] } });
    });
    const blocks = await wiki.client.getGlobalBlocks(['Example', 'Ghost', '192.0.2.1']);
    assert.deepEqual(blocks, [
      { id: 55, target: 'Example', anonOnly: false, by: 'Steward', byWiki: 'metawiki', timestamp: new Date('2024-05-01T10:00:00Z'), expiry: null, reason: 'Cross-wiki abuse' },
      { id: 56, target: '192.0.2.1', anonOnly: true, by: 'Steward', byWiki: 'metawiki', timestamp: new Date('2024-05-01T10:00:00Z'), expiry: null, reason: 'Cross-wiki abuse' },
    ]);
    assert.deepEqual(wiki.calls.map((p) => p.get('bgtargets')), ['Example|Ghost|192.0.2.1', 'Example', 'Ghost', '192.0.2.1']);
  });
});

describe('ActionApiClient with a bot password', () => {
  /**
   * A wiki as MediaWiki's session handling behaves: the login token request sets a session cookie,
   * action=login (POST only) checks token and password, and `assert=user` fails once the session
   * is forgotten (`forget()`, as when the session store is flushed or the session expires).
   */
  function sessionWiki() {
    let sessions = 0;
    let current: string | undefined;
    const seen: { params: URLSearchParams; method: string; cookie: string | null }[] = [];
    const fetch = async (input: string | URL | Request, init?: RequestInit): Promise<Response> => {
      const params = init?.method === 'POST' ? new URLSearchParams(String(init.body)) : new URL(String(input)).searchParams;
      const cookie = new Headers(init?.headers).get('cookie');
      seen.push({ params, method: init?.method ?? 'GET', cookie });
      const session = cookie?.match(/wiki_session=([^;]+)/)?.[1];
      const json = (body: unknown, headers: Record<string, string> = {}) => new Response(JSON.stringify(body), { headers: { 'content-type': 'application/json', ...headers } });
      if (params.get('meta') === 'tokens' && params.get('type') === 'login') {
        const id = `s${++sessions}`;
        return json({ batchcomplete: true, query: { tokens: { logintoken: `token-${id}+\\` } } }, { 'set-cookie': `wiki_session=${id}; path=/; HttpOnly` });
      }
      if (params.get('action') === 'login') {
        if (init?.method !== 'POST') return json({ error: { code: 'mustbeposted', info: 'The "login" module requires a POST request.' } });
        if (params.get('lgtoken') !== `token-${session}+\\`) return json({ login: { result: 'WrongToken' } });
        if (params.get('lgpassword') !== 'p'.repeat(32)) return json({ login: { result: 'Failed', reason: 'Incorrect username or password entered. Please try again.' } });
        current = session;
        return json({ login: { result: 'Success', lguserid: 4, lgusername: 'Mirror bot' } }, { 'set-cookie': `wiki_session=${session}; path=/; HttpOnly` });
      }
      if (params.get('assert') === 'user' && (session === undefined || session !== current)) {
        return json({ error: { code: 'assertuserfailed', info: 'You are no longer logged in, so the action could not be completed.' } });
      }
      return json({ batchcomplete: true, query: { blocks: [] } });
    };
    return {
      seen,
      forget: () => (current = undefined),
      client: (password = 'p'.repeat(32)) =>
        new ActionApiClient({ apiUrl: 'https://wiki.example/w/api.php', userAgent: 'test-agent/1 (tests@example.org)', fetch: fetch as typeof globalThis.fetch, login: { username: 'Mirror bot@mirror', password } }),
    };
  }

  it('signs in once with a login token (password only in a POST body) and asserts the session on every request', async () => {
    const wiki = sessionWiki();
    const client = wiki.client();
    await client.getBlocks(['Alice']);
    await client.getBlocks(['Bob']);
    assert.deepEqual(wiki.seen.map((r) => r.params.get('action') === 'login' ? 'login' : r.params.get('meta') ?? r.params.get('list')), ['tokens', 'login', 'blocks', 'blocks']);
    const login = wiki.seen[1]!;
    assert.equal(login.method, 'POST');
    assert.equal(login.params.get('lgname'), 'Mirror bot@mirror');
    assert.equal(login.cookie, 'wiki_session=s1', 'the login carries the session of its token');
    assert.ok(wiki.seen.slice(0, 1).every((r) => !r.params.has('lgpassword')));
    assert.ok(wiki.seen.slice(2).every((r) => r.params.get('assert') === 'user' && r.cookie === 'wiki_session=s1' && !r.params.has('lgpassword')));
  });

  it('signs in again when the wiki forgot the session, and the request is answered', async () => {
    const wiki = sessionWiki();
    const client = wiki.client();
    await client.getBlocks(['Alice']);
    wiki.forget();
    assert.deepEqual(await client.getBlocks(['Bob']), []);
    const kinds = wiki.seen.map((r) => (r.params.get('action') === 'login' ? 'login' : (r.params.get('meta') ?? r.params.get('list'))));
    assert.deepEqual(kinds, ['tokens', 'login', 'blocks', 'blocks', 'tokens', 'login', 'blocks']);
    assert.equal(wiki.seen.at(-1)!.cookie, 'wiki_session=s2');
  });

  it('a refused password is an error naming the account, without the password, and nothing is read anonymously', async () => {
    const wiki = sessionWiki();
    await rejectsWith(wiki.client('wrong-password-of-32-characters!').getBlocks(['Alice']), (err) => {
      assert.equal(err.module, 'action=login');
      assert.equal(err.apiCode, 'login-failed');
      assert.match(err.message, /signing in as Mirror bot@mirror failed \(Failed\): Incorrect username or password/);
      assert.doesNotMatch(err.message, /wrong-password/);
    });
    assert.ok(wiki.seen.every((r) => r.params.get('list') !== 'blocks'));
  });
});

describe('buildUserAgent', () => {
  it('names the service, its version, the contact and the runtime', () => {
    assert.match(buildUserAgent('ops@example.org', '1.2.3'), /^wiki-matrix-sso\/1\.2\.3 \(ops@example\.org\) node\/\d+/);
  });
  it('refuses an empty contact', () => {
    assert.throws(() => buildUserAgent('  ', '1.2.3'), /User-Agent policy requires a contact/);
  });
});
