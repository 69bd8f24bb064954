// The admin JSON API in-process (supertest against the service's own handler), on each storage
// backend: every answer is checked against openapi.yaml, and every documented operation is called.
// Tokens: none, a wrong one, a read-only one trying to act. People signed in with names of several
// scripts; a page of actions 250 long; a suppressed cause; localparts chosen before a first sign-in.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import request from 'supertest';
import { ModerationAuditLog, type AuditEntry } from '../../src/moderation/records.ts';
import type { WikiCause } from '../../src/moderation/types.ts';
import { backends, type TestDatabase } from '../support/backends.ts';
import { Browser } from '../support/browser.ts';
import { RelyingParty, editor, startStack, type Stack } from '../support/login-stack.ts';
import { loadOpenApi } from '../support/openapi.ts';

const READER = 'wms-read-7f3a9c1e5b2d4086a1c3e5f70918b2d4';
const WRITER = 'wms-write-0c4e8a2f6b1d3957e0a2c4f68193d5b7';
const hex = (token: string) => createHash('sha256').update(token, 'utf8').digest('hex');
const API = '/admin/api/v1';
const spec = loadOpenApi();

const PEOPLE = [
  { centralId: 8101, username: 'Марина Блокова' },
  { centralId: 8102, username: 'דוד הסוקר' },
  { centralId: 8103, username: '山田太郎' },
  { centralId: 8104, username: 'Ωmega_User' },
];

const cause = (over: Partial<WikiCause> = {}): WikiCause => ({
  kind: 'block',
  wiki: 'wiki.example.org',
  blockId: 4242,
  logId: 9001,
  by: 'Админ',
  reason: 'Вандализм',
  timestamp: new Date('2026-11-30T10:00:00Z'),
  expiry: null,
  group: null,
  hidden: false,
  ...over,
});

test('openapi.yaml names a scope and documents 401 for every operation', () => {
  assert.ok(spec.operations.length >= 10);
  for (const op of spec.operations) {
    assert.match(op.scope ?? '', /^(read|write)$/, `${op.method} ${op.path}`);
    const responses = Object.keys(op.operation.responses as object);
    assert.ok(responses.includes('401'), `${op.method} ${op.path} documents 401`);
    if (op.scope === 'write') assert.ok(responses.includes('403'), `${op.method} ${op.path} documents 403`);
  }
});

for (const backend of backends()) {
  describe(`admin API on ${backend.name}`, () => {
    let db: TestDatabase | undefined;
    let stack: Stack;
    let agent: ReturnType<typeof request>;
    const matrixIds: string[] = [];

    /** Calls the API and checks the answer against openapi.yaml. */
    async function call(method: 'GET' | 'POST' | 'PUT' | 'DELETE', path: string, options: { token?: string | null; body?: unknown } = {}) {
      const token = options.token === undefined ? WRITER : options.token;
      let req = agent[method.toLowerCase() as 'get'](`${API}${path}`);
      if (token !== null) req = req.set('authorization', `Bearer ${token}`);
      const res = options.body === undefined ? await req : await req.send(options.body as object);
      spec.check(method, path, res.status, res.status === 204 ? undefined : res.body);
      return res;
    }

    before(async () => {
      db = backend.name === 'postgres' ? await backend.open() : undefined;
      stack = await startStack({
        ...(db && { databaseUrl: db.url! }),
        config: {
          admin: {
            api_tokens: [
              { name: 'reader', sha256: hex(READER), scopes: ['read'] },
              { name: 'writer', sha256: hex(WRITER), scopes: ['read', 'write'] },
            ],
          },
        },
      });
      agent = request(stack.service.handler);
      const rp = await RelyingParty.discover(stack.issuer);
      for (const person of PEOPLE) {
        stack.wiki.login = { user: editor(person) };
        const { request: req, back } = await rp.signIn(new Browser());
        await rp.exchange(back.location!, req);
      }
      const { rows } = await stack.service.db.query<{ localpart: string }>('SELECT localpart FROM accounts ORDER BY central_id');
      matrixIds.push(...rows.map((r) => `@${r.localpart}:example.org`));

      // 250 actions for the first person across two rooms, a failure among them, and a suppressed cause.
      const entries: AuditEntry[] = [];
      for (let i = 0; i < 250; i++) {
        entries.push({
          at: new Date(Date.UTC(2026, 10, 1) + i * 60_000),
          passId: `pass-${Math.floor(i / 10)}`,
          dryRun: false,
          kind: i % 2 ? 'ban' : 'unban',
          roomId: i % 3 ? '!village:example.org' : '!help:example.org',
          userId: matrixIds[0]!,
          cause: cause({ hidden: i === 249 }),
          outcome: i === 248 ? 'failed' : 'applied',
          error: i === 248 ? 'M_FORBIDDEN: You don\u2019t have permission to ban' : null,
          detail: { reason: 'Вандализм' },
        });
      }
      entries.push({ at: new Date(Date.UTC(2026, 10, 2)), passId: 'pass-x', dryRun: false, kind: 'report', roomId: null, userId: null, cause: null, outcome: 'reported', error: null, detail: { message: 'the bot lacks power' } });
      await new ModerationAuditLog(stack.service.db).append(entries);
    });

    after(async () => {
      await stack?.stop();
      await db?.dispose();
    });

    test('without a token, with a wrong one, or with a read-only one acting: refused, and said why', async () => {
      const none = await call('GET', '/sync', { token: null });
      assert.equal(none.status, 401);
      assert.equal(none.headers['www-authenticate'], 'Bearer realm="wiki-matrix-sso admin"');
      const wrong = await call('GET', '/sync', { token: 'not-a-token' });
      assert.equal(wrong.status, 401);
      assert.match(wrong.headers['www-authenticate']!, /error="invalid_token"/);
      for (const [method, path] of [['POST', '/plans'], ['PUT', '/overrides/Someone'], ['DELETE', '/overrides/Someone'], ['POST', '/actions/1/retry'], ['POST', '/plans/1/apply']] as const) {
        const refused = await call(method, path, { token: READER, ...(method === 'PUT' && { body: { localpart: 'someone' } }) });
        assert.equal(refused.status, 403, `${method} ${path}`);
        assert.equal(refused.body.error, 'insufficient_scope');
        assert.match(refused.headers['www-authenticate']!, /error="insufficient_scope", scope="write"/);
      }
      assert.equal((await call('GET', '/sync', { token: READER })).status, 200, 'reading is allowed');
      assert.equal(none.headers['cache-control'], 'no-store');
    });

    test('a person is found by username, Matrix ID, localpart and central id, with every action and its wiki cause', async () => {
      const [first] = matrixIds;
      const localpart = first!.slice(1, first!.indexOf(':'));
      for (const q of ['Марина Блокова', 'марина_Блокова', first!, localpart, '8101']) {
        const res = await call('GET', `/people?q=${encodeURIComponent(q)}`, { token: READER });
        assert.equal(res.status, 200, q);
        assert.equal(res.body.username, 'Марина Блокова');
        assert.equal(res.body.central_id, '8101');
      }
      const person = (await call('GET', `/people?q=8101`)).body;
      assert.equal(person.actions.entries.length, 50);
      assert.equal(person.actions.entries[0].outcome, 'applied');
      assert.equal(person.actions.entries[0].cause.hidden, true);
      assert.equal(person.actions.entries[0].cause.reason, null, 'a suppressed cause says nothing of why');
      assert.equal(person.actions.entries[0].cause.by, null);
      assert.deepEqual(person.actions.entries[1].cause, { kind: 'block', wiki: 'wiki.example.org', blockId: 4242, logId: 9001, by: 'Админ', reason: 'Вандализм', timestamp: '2026-11-30T10:00:00.000Z', expiry: null, group: null, hidden: false });
      assert.equal(person.actions.entries[1].outcome, 'failed');
      assert.ok(person.first_sign_in <= person.last_sign_in);
      assert.ok(Array.isArray(person.wiki_profile.groups));
      assert.equal(person.wiki_profile.edit_count, editor().editCount);
      for (const q of ['Nobody Here', '@nobody:example.org', '99999']) assert.equal((await call('GET', `/people?q=${encodeURIComponent(q)}`)).status, 404, q);
      assert.equal((await call('GET', '/people?q=%20')).status, 400);
      const whois = await call('GET', `/whois?q=${encodeURIComponent('山田太郎')}`);
      assert.equal(whois.body.matrix_id, matrixIds[2]);
    });

    test('actions page through 250 entries without a gap or a repeat, and filter by user, room, outcome and time', async () => {
      const ids: string[] = [];
      let before: string | null = null;
      let pages = 0;
      do {
        const res = await call('GET', `/actions?user=${encodeURIComponent(matrixIds[0]!)}&limit=100${before ? `&before=${before}` : ''}`, { token: READER });
        assert.equal(res.status, 200);
        ids.push(...res.body.entries.map((e: { id: string }) => e.id));
        before = res.body.next;
        pages++;
      } while (before);
      assert.equal(pages, 3);
      assert.equal(ids.length, 250);
      assert.equal(new Set(ids).size, 250);
      assert.deepEqual(ids, [...ids].sort((a, b) => Number(b) - Number(a)), 'newest first');

      const failed = await call('GET', '/actions?outcome=failed');
      assert.deepEqual(failed.body.entries.map((e: { error: string }) => e.error), ['M_FORBIDDEN: You don\u2019t have permission to ban']);
      const help = await call('GET', `/actions?room=${encodeURIComponent('!help:example.org')}&limit=1000`);
      assert.equal(help.body.entries.length, 84);
      const window = await call('GET', `/actions?since=${encodeURIComponent('2026-11-01T01:00:00Z')}&until=${encodeURIComponent('2026-11-01T02:00:00+00:00')}&limit=1000`);
      assert.equal(window.body.entries.length, 60, 'one per minute for an hour');
      const reports = await call('GET', '/actions?kind=report');
      assert.equal(reports.body.entries.length, 1);
      assert.equal(reports.body.next, null);
      for (const bad of ['limit=0', 'limit=1001', 'before=abc', 'since=yesterday', 'outcome=maybe', 'colour=red']) {
        const res = await call('GET', `/actions?${bad}`);
        assert.equal(res.status, 400, bad);
        assert.match(res.body.message, /\S/);
      }
    });

    test('a retry, a plan and its application are requests for the leader, and say so', async () => {
      const failed = (await call('GET', '/actions?outcome=failed')).body.entries[0];
      const retry = await call('POST', `/actions/${failed.id}/retry`);
      assert.equal(retry.status, 202);
      assert.equal(retry.body.kind, 'retry');
      assert.equal(retry.body.state, 'pending');
      assert.equal(retry.body.requested_by, 'api:writer');
      assert.deepEqual(retry.body.payload, { userId: matrixIds[0] });
      const fetched = await call('GET', `/requests/${retry.body.id}`, { token: READER });
      assert.deepEqual(fetched.body, retry.body);
      assert.equal((await call('POST', '/actions/99999999/retry')).status, 404);
      const report = (await call('GET', '/actions?kind=report')).body.entries[0];
      assert.equal((await call('POST', `/actions/${report.id}/retry`)).status, 409, 'a report is about no one person');
      assert.equal((await call('GET', '/requests/99999999')).status, 404);

      const plan = await call('POST', '/plans');
      assert.equal(plan.status, 202);
      const early = await call('POST', `/plans/${plan.body.id}/apply`);
      assert.equal(early.status, 409, 'a plan not yet made cannot be applied');
      assert.equal(early.body.error, 'plan_not_ready');
      assert.equal((await call('POST', `/plans/${retry.body.id}/apply`)).status, 404, 'a retry is not a plan');
    });

    test('sync status before any worker has led', async () => {
      const sync = await call('GET', '/sync');
      assert.equal(sync.body.leader, null);
      assert.equal(sync.body.enabled, false);
      assert.deepEqual(sync.body.rooms_lacking_power, []);
    });

    test('a localpart chosen before the first sign-in: audited, kept from others, taken by that sign-in', async () => {
      const set = await call('PUT', `/overrides/${encodeURIComponent('новичок_Будущий')}`, { body: { localpart: 'novichok' } });
      assert.equal(set.status, 200);
      assert.equal(set.body.username, 'Новичок Будущий', 'the canonical wiki spelling');
      assert.equal(set.body.set_by, 'api:writer');
      assert.equal((await call('GET', '/overrides', { token: READER })).body.overrides.length, 1);
      const again = await call('PUT', `/overrides/${encodeURIComponent('Другой Человек')}`, { body: { localpart: 'novichok' } });
      assert.equal(again.status, 409, 'chosen for someone else');
      const existing = await call('PUT', `/overrides/${encodeURIComponent('דוד הסוקר')}`, { body: { localpart: 'david' } });
      assert.equal(existing.status, 409, 'signed in already');
      assert.equal(existing.body.error, 'account_exists');
      for (const localpart of ['Capital', '123', '_hidden', 'a:b', 'admin']) {
        assert.equal((await call('PUT', `/overrides/Someone`, { body: { localpart } })).status, 400, localpart);
      }
      assert.equal((await call('PUT', `/overrides/Someone`, { body: { localpart: 'x', extra: 1 } })).status, 400);
      const taken = await call('PUT', `/overrides/Someone`, { body: { localpart: matrixIds[1]!.slice(1, matrixIds[1]!.indexOf(':')) } });
      assert.equal(taken.status, 409, 'another account has it');

      const audited = (await call('GET', '/actions?kind=localpart_override')).body.entries;
      assert.equal(audited.length, 1);
      assert.deepEqual(audited[0].detail, { wiki: stack.config.wiki.base_url.replace(/^https?:\/\//, '').replace(/[:/].*$/, ''), username: 'Новичок Будущий', localpart: 'novichok', by: 'api:writer' });

      // Another first sign-in whose derived localpart would be the chosen one gets another.
      const rp = await RelyingParty.discover(stack.issuer);
      stack.wiki.login = { user: editor({ centralId: 8110, username: 'Novichok' }) };
      const other = await rp.signIn(new Browser());
      await rp.exchange(other.back.location!, other.request);
      stack.wiki.login = { user: editor({ centralId: 8111, username: 'Новичок Будущий' }) };
      const chosen = await rp.signIn(new Browser());
      await rp.exchange(chosen.back.location!, chosen.request);
      const person = (await call('GET', '/people?q=8111')).body;
      assert.equal(person.localpart, 'novichok');
      assert.equal(person.localpart_set_by, 'api:writer');
      assert.notEqual((await call('GET', '/people?q=8110')).body.localpart, 'novichok');
      assert.deepEqual((await call('GET', '/overrides')).body.overrides, [], 'the sign-in took it');

      await call('PUT', '/overrides/Later%20Person', { body: { localpart: 'later' } });
      assert.equal((await call('DELETE', '/overrides/Later_Person')).status, 204);
      assert.equal((await call('DELETE', '/overrides/Later_Person')).status, 404);
      assert.equal((await call('GET', '/actions?kind=localpart_override')).body.entries[0].detail.was, 'later');
    });

    test('every documented operation was called', () => {
      for (const op of spec.operations) assert.ok([...spec.seen].some((s) => s.startsWith(`${op.method} ${op.path} `)), `${op.method} ${op.path}`);
    });
  });
}
