// The retention purge, on both backends: what is older than `retention.days` goes (sign-ins, the
// provider's records, cached wiki profiles, the details of audit entries), what is younger stays,
// accounts and moderation records stay, and the audit still counts every action by kind, room
// and outcome. Then the schedule (once an hour, a failure retried), and the purge run by the real
// processes: `serve` on the embedded database (which runs the worker in-process) and `worker` on
// PostgreSQL.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import pino from 'pino';
import { parseConfig } from '../../src/config/load.ts';
import type { Queryable } from '../../src/db/index.ts';
import { migrate } from '../../src/db/migrate.ts';
import { openPglite } from '../../src/db/pglite.ts';
import { privacyHousekeeping } from '../../src/privacy/housekeeping.ts';
import { purgeExpiredPersonalData } from '../../src/privacy/retention.ts';
import { backends, serverUrl, type TestDatabase } from '../support/backends.ts';
import { start, writeConfig } from '../support/cli.ts';
import { findText } from '../support/personal-data.ts';

const DAY = 86_400_000;
const NOW = new Date('2031-06-01T12:00:00Z');
const daysAgo = (n: number, from = NOW) => new Date(from.getTime() - n * DAY);
const silent = pino({ level: 'silent' });

/** Someone who signed in long ago, and someone who signed in yesterday, with their traces. */
const OLD = { centralId: '5550101', username: 'Ξενοφών Παπαδόπουλος', mxid: '@xenofon_papadopoulos:example.org', email: 'xenofon@example.org' };
const NEW = { centralId: '5550202', username: '山田太郎', mxid: '@shan_tian_tai_lang:example.org', email: 'taro@example.org' };

async function plant(db: Queryable, now: Date): Promise<void> {
  for (const [who, age] of [[OLD, 200], [NEW, 1]] as const) {
    const at = daysAgo(age, now);
    await db.query(
      `INSERT INTO accounts (wiki, central_id, username, display_name, localpart, created_at, updated_at, last_login_at)
       VALUES ('wiki.example', $1, $2, $2, $3, $4, $4, $4)`,
      [who.centralId, who.username, who.mxid.slice(1, who.mxid.indexOf(':')), at],
    );
    await db.query("INSERT INTO wiki_profiles (wiki, central_id, edit_count, groups, email, fetched_at) VALUES ('wiki.example', $1, 10, '{sysop}', $2, $3)", [who.centralId, who.email, at]);
    await db.query(
      `INSERT INTO wiki_logins (state, interaction_uid, browser_hash, code_verifier, created_at, expires_at, account_wiki, account_central_id)
       VALUES ($1, $1, 'hash', 'verifier', $2, $3, 'wiki.example', $4)`,
      [`state-${who.centralId}`, at, new Date(at.getTime() + 600_000), who.centralId],
    );
    // A grant issued then, still unexpired (as a long-lived one might be), and an expired token.
    await db.query("INSERT INTO oidc_payloads (model, id, payload, expires_at) VALUES ('Grant', $1, $2, $3)", [
      `grant-${who.centralId}`, JSON.stringify({ accountId: who.centralId, iat: Math.floor(at.getTime() / 1000) }), new Date(now.getTime() + DAY),
    ]);
    await db.query("INSERT INTO oidc_payloads (model, id, payload, expires_at) VALUES ('AccessToken', $1, $2, $3)", [
      `token-${who.centralId}`, JSON.stringify({ accountId: who.centralId, iat: Math.floor(at.getTime() / 1000) }), age > 1 ? at : new Date(now.getTime() + 3600_000),
    ]);
    const cause = { kind: 'block', wiki: 'wiki.example', blockId: 7, logId: null, by: 'Some Admin', reason: `Vandalism by ${who.username}`, timestamp: at.toISOString(), expiry: null, group: null, hidden: false };
    for (const [kind, room, outcome] of [['ban', '!a:example.org', 'applied'], ['ban', '!b:example.org', 'failed'], ['set_power_levels', '!a:example.org', 'applied']]) {
      await db.query(
        `INSERT INTO moderation_audit (at, pass_id, dry_run, kind, room_id, user_id, cause, outcome, error, detail)
         VALUES ($1, 'pass', false, $2, $3, $4, $5, $6, $7, $8)`,
        [at, kind, room, who.mxid, JSON.stringify(cause), outcome, outcome === 'failed' ? `could not ban ${who.mxid}` : null, JSON.stringify({ reason: `Blocked: ${who.username}` })],
      );
    }
    await db.query("INSERT INTO moderation_records (kind, room_id, key, user_id, cause, updated_at) VALUES ('ban', '!a:example.org', $1, $1, $2, $3)", [who.mxid, JSON.stringify(cause), at]);
  }
}

const tally = async (db: Queryable) =>
  (await db.query<{ kind: string; room_id: string; outcome: string; n: number }>('SELECT kind, room_id, outcome, count(*)::int AS n FROM moderation_audit GROUP BY 1, 2, 3 ORDER BY 1, 2, 3')).rows;
const count = async (db: Queryable, table: string) => (await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${table}`)).rows[0]!.n;
const traces = (who: typeof OLD) => [who.username, who.email, who.mxid];

async function assertPurged(db: Queryable, counted: Awaited<ReturnType<typeof tally>>): Promise<void> {
  assert.deepEqual(await findText(db, traces(OLD)).then((f) => f.filter((x) => x.table !== 'accounts' && x.table !== 'moderation_records')), [], 'the old traces are gone but for the account and its live record');
  assert.ok((await findText(db, [NEW.email])).some((f) => f.table === 'wiki_profiles'), 'the recent profile stays');
  assert.equal((await findText(db, [NEW.mxid])).find((f) => f.table === 'moderation_audit' && f.column === 'user_id')?.rows, 3, 'recent audit entries keep their details');
  assert.deepEqual(await tally(db), counted, 'every action still counted by kind, room and outcome');
  assert.equal(await count(db, 'accounts'), 2);
  assert.equal(await count(db, 'moderation_records'), 2);
}

for (const backend of backends()) {
  describe(`retention on ${backend.name}`, () => {
    const opened: TestDatabase[] = [];
    const fresh = async () => {
      const db = await backend.open();
      opened.push(db);
      return db;
    };
    after(() => Promise.all(opened.map((db) => db.dispose())));

    test('what is older than retention.days goes, the rest stays, and the audit keeps counting', async () => {
      const db = await fresh();
      await plant(db, NOW);
      const counted = await tally(db);
      const purged = await purgeExpiredPersonalData(db, { days: 180, now: NOW });
      assert.deepEqual(purged, { signIns: 1, providerRecords: 2, wikiProfiles: 1, auditEntries: 3 });
      await assertPurged(db, counted);
      const { rows } = await db.query<{ n: number }>("SELECT count(*)::int AS n FROM moderation_audit WHERE user_id IS NULL AND cause IS NULL AND error IS NULL AND detail = '{}'::jsonb AND at < $1", [daysAgo(180)]);
      assert.equal(rows[0]!.n, 3);
      assert.deepEqual((await db.query<{ id: string }>('SELECT id FROM oidc_payloads ORDER BY id')).rows.map((r) => r.id), [`grant-${NEW.centralId}`, `token-${NEW.centralId}`]);
      assert.deepEqual(await purgeExpiredPersonalData(db, { days: 180, now: NOW }), { signIns: 0, providerRecords: 0, wikiProfiles: 0, auditEntries: 0 }, 'a second run finds nothing');
      // Shorter retention reaches the recent ones too.
      assert.equal((await purgeExpiredPersonalData(db, { days: 1, now: new Date(NOW.getTime() + DAY) })).auditEntries, 3);
      await assert.rejects(purgeExpiredPersonalData(db, { days: 0, now: NOW }), RangeError);
    });

    test('more audit entries than one batch are all stripped', async () => {
      const db = await fresh();
      await db.query(
        `INSERT INTO moderation_audit (at, pass_id, dry_run, kind, room_id, user_id, outcome, detail)
         SELECT $1::timestamptz + i * interval '1 second', 'pass', false, 'ban', '!a:example.org', '@someone:example.org', 'applied', '{"reason": "x"}'
         FROM generate_series(1, 2345) AS i`,
        [daysAgo(400)],
      );
      assert.equal((await purgeExpiredPersonalData(db, { days: 180, now: NOW })).auditEntries, 2345);
      assert.equal(await count(db, 'moderation_audit'), 2345);
      assert.deepEqual(await findText(db, ['@someone:example.org']), []);
    });

    test('the leader purges at its first turn, then once an hour; a failed purge is tried again a minute later', async () => {
      const db = await fresh();
      let now = NOW;
      const config = parseConfig('oidc:\n  cookie_keys: [aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa]\n  key_encryption_secret: s\nmatrix:\n  server_name: example.org\nretention:\n  days: 30\n', 'test.yaml');
      let failNext = false;
      const flaky: typeof db = Object.assign(Object.create(db), {
        query: (sql: string, params?: readonly unknown[]) => {
          if (failNext && sql.startsWith('DELETE FROM wiki_logins')) {
            failNext = false;
            return Promise.reject(new Error('the database went away'));
          }
          return db.query(sql, params);
        },
      });
      const housekeeping = privacyHousekeeping({ db: flaky, config, log: silent, clock: () => now });
      const oldAudit = async () => (await db.query<{ n: number }>('SELECT count(*)::int AS n FROM moderation_audit WHERE user_id IS NOT NULL AND at < $1', [daysAgo(30, now)])).rows[0]!.n;
      await plant(db, NOW);
      await housekeeping.run();
      assert.equal(await oldAudit(), 0, 'purged at the first turn');
      now = new Date(NOW.getTime() + 10 * 60_000);
      await db.query(
        `INSERT INTO moderation_audit (at, pass_id, dry_run, kind, room_id, user_id, outcome)
         SELECT $1, 'pass', false, 'ban', '!a:example.org', '@someone:example.org', 'applied' FROM generate_series(1, 6)`,
        [daysAgo(100)],
      );
      await housekeeping.run();
      assert.equal(await oldAudit(), 6, 'not again within the hour');
      now = new Date(NOW.getTime() + 61 * 60_000);
      failNext = true;
      await assert.rejects(housekeeping.run(), /went away/);
      now = new Date(now.getTime() + 30_000);
      await housekeeping.run();
      assert.equal(await oldAudit(), 6, 'the retry waits a minute');
      now = new Date(now.getTime() + 31_000);
      await housekeeping.run();
      assert.equal(await oldAudit(), 0, 'retried');
    });
  });
}

describe('the purge in the real processes', () => {
  const dirs: string[] = [];
  const tmp = () => {
    const dir = mkdtempSync(join(tmpdir(), 'wms-retention-'));
    dirs.push(dir);
    return dir;
  };
  after(() => dirs.forEach((dir) => rmSync(dir, { recursive: true, force: true })));

  test('serve on the embedded database purges (moderation mirroring off)', { timeout: 120_000 }, async () => {
    const dataDir = tmp();
    const db = await openPglite(dataDir);
    await migrate(db);
    await plant(db, new Date());
    const counted = await tally(db);
    await db.close();
    const serve = start(['serve', '--config', writeConfig(`http:\n  port: 0\ndatabase:\n  data_dir: ${dataDir}\n`)]);
    try {
      await serve.waitFor(/the retention purge runs in this process/);
      await serve.waitFor(/"auditEntries":3,"days":180,"msg":"retention purge/);
      serve.child.kill('SIGTERM');
      assert.equal((await serve.exited).code, 0);
    } finally {
      serve.child.kill('SIGKILL');
    }
    const after = await openPglite(dataDir);
    try {
      await assertPurged(after, counted);
    } finally {
      await after.close();
    }
  });

  test('worker on PostgreSQL purges while it mirrors moderation', { skip: serverUrl ? false : 'needs TEST_DATABASE_URL', timeout: 120_000 }, async () => {
    const db = await backends().find((b) => b.name === 'postgres')!.open();
    try {
      await plant(db, new Date());
      const counted = await tally(db);
      const config = writeConfig(
        `database:\n  url: "${db.url}"\nsync:\n  enabled: true\nwiki:\n  contact: tests@example.org\n  base_url: http://127.0.0.1:9/w\n  max_retries: 0\n`,
        { homeserver_url: 'http://127.0.0.1:9', access_token: 't', user_id: '@bot:localhost' },
      );
      const worker = start(['worker', '--config', config]);
      try {
        await worker.waitFor(/leader: moderation mirroring is running/);
        await worker.waitFor(/"auditEntries":3,"days":180,"msg":"retention purge/, 60_000);
        worker.child.kill('SIGTERM');
        assert.equal((await worker.exited).code, 0);
      } finally {
        worker.child.kill('SIGKILL');
      }
      await assertPurged(db, counted);
    } finally {
      await db.dispose();
    }
  });
});
