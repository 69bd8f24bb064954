// The rest of a forget, done by the worker's leader, on both backends: entries written about a
// forgotten Matrix ID after the forget (the pass taking a power level back) are re-keyed to the
// opaque id; the ID stays pending while a record of the service's is left on it; and when the
// person signs in again and gets the ID back, only what happened before is re-keyed.
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { parseConfig } from '../../src/config/load.ts';
import { PostgresAccountRepository } from '../../src/identity/accounts.ts';
import { LocalpartPolicy } from '../../src/identity/localpart.ts';
import { ModerationAuditLog, type AuditEntry } from '../../src/moderation/records.ts';
import { settleForgotten } from '../../src/privacy/forgotten.ts';
import { backends, type TestDatabase } from '../support/backends.ts';
import { findText } from '../support/personal-data.ts';

const config = parseConfig('oidc:\n  cookie_keys: [aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa]\n  key_encryption_secret: s\nmatrix:\n  server_name: example.org\n', 'test.yaml');
const MXID = '@leyla_aliyeva:example.org';
const OPAQUE = 'forgotten-00112233aabbccdd';
const FORGOT = new Date('2031-01-01T00:00:00Z');

const entry = (at: Date, fields: Partial<AuditEntry> = {}): AuditEntry => ({
  at, passId: 'p', dryRun: false, kind: 'set_power_levels', roomId: '!a:example.org', userId: MXID, cause: null, outcome: 'applied', error: null, detail: { from: 50, to: null }, ...fields,
});

for (const backend of backends()) {
  describe(`finishing a forget on ${backend.name}`, () => {
    const opened: TestDatabase[] = [];
    after(() => Promise.all(opened.map((db) => db.dispose())));
    const fresh = async () => {
      const db = await backend.open();
      opened.push(db);
      await db.query('INSERT INTO forgotten_matrix_ids (user_id, opaque_id, forgotten_at) VALUES ($1, $2, $3)', [MXID, OPAQUE, FORGOT]);
      return db;
    };
    const audit = (db: TestDatabase) => new ModerationAuditLog(db);

    test('re-keys what the pass wrote, and stays pending while a record is left', async () => {
      const db = await fresh();
      await db.query(
        "INSERT INTO moderation_records (kind, room_id, key, user_id, level, cause, updated_at) VALUES ('level', '!b:example.org', $1, $1, 50, '{}', now())",
        [MXID],
      );
      await audit(db).append([
        entry(new Date(FORGOT.getTime() + 60_000)),
        entry(new Date(FORGOT.getTime() + 60_000), { kind: 'report', userId: null, detail: { message: `${MXID} has power level 90 in !c, set by hand`, userIds: [MXID, '@x:example.org'] } }),
      ]);
      const first = await settleForgotten(db, config);
      assert.deepEqual(first, { reKeyed: 2, settled: [], reclaimed: [] });
      assert.deepEqual(new Set((await findText(db, [MXID])).map((f) => f.table)), new Set(['moderation_records', 'forgotten_matrix_ids']));
      assert.equal((await audit(db).list({ userId: OPAQUE })).entries.length, 1);

      await db.query('DELETE FROM moderation_records');
      await audit(db).append([entry(new Date(FORGOT.getTime() + 120_000), { roomId: '!b:example.org' })]);
      assert.deepEqual(await settleForgotten(db, config), { reKeyed: 1, settled: [MXID], reclaimed: [] });
      assert.deepEqual(await findText(db, [MXID]), []);
      assert.deepEqual(await settleForgotten(db, config), { reKeyed: 0, settled: [], reclaimed: [] });
    });

    test('a person who signs in again gets the Matrix ID back: later entries are theirs', async () => {
      const db = await fresh();
      await audit(db).append([entry(new Date(FORGOT.getTime() + 60_000))]);
      const signedIn = new Date(FORGOT.getTime() + 3_600_000);
      const accounts = new PostgresAccountRepository(db, { clock: () => signedIn, localparts: new LocalpartPolicy({ serverName: 'example.org' }) });
      await accounts.upsertOnLogin({ wiki: 'wiki.example', centralId: '99', username: 'Leyla Aliyeva' });
      await audit(db).append([entry(new Date(signedIn.getTime() + 60_000), { kind: 'ban', detail: { reason: 'Blocked again' } })]);
      assert.deepEqual(await settleForgotten(db, config), { reKeyed: 1, settled: [], reclaimed: [MXID] });
      assert.deepEqual((await audit(db).list({ userId: MXID })).entries.map((e) => e.kind), ['ban']);
      assert.deepEqual((await audit(db).list({ userId: OPAQUE })).entries.map((e) => e.kind), ['set_power_levels']);
      assert.equal((await db.query('SELECT 1 FROM forgotten_matrix_ids')).rows.length, 0);
    });
  });
}
