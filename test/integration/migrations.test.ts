import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, test } from '@jest/globals';
import { openDatabase, type Database } from '../../src/db/index.ts';
import { migrate, migrationStatus, readMigrations } from '../../src/db/migrate.ts';
import { backends, type TestDatabase } from '../support/backends.ts';

function migrationsDir(files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), 'wms-migrations-'));
  for (const [name, sql] of Object.entries(files)) writeFileSync(join(dir, name), sql);
  return dir;
}

const twoMigrations = {
  '20260101000000_first.sql': '-- a table\nCREATE TABLE first (id int PRIMARY KEY);\n',
  '20260102000000_second.sql': '-- a row counter\nCREATE TABLE second (id int PRIMARY KEY);\nINSERT INTO first VALUES (1);\n',
};

for (const backend of backends()) {
  describe(`migrations on ${backend.name}`, () => {
    const opened: TestDatabase[] = [];
    const fresh = async () => {
      const db = await backend.open({ migrated: false });
      opened.push(db);
      return db;
    };
    afterAll(() => Promise.all(opened.map((db) => db.dispose())));

    test('apply once, then nothing is pending; a second run applies nothing', async () => {
      const db = await fresh();
      const first = await migrate(db);
      assert.deepEqual(first.applied.map((m) => m.version), readMigrations().map((m) => m.version));
      assert.equal((await migrate(db)).applied.length, 0);
      assert.equal((await migrationStatus(db)).pending.length, 0);
    });

    test('concurrent runs apply each migration exactly once', async () => {
      const db = await fresh();
      const migrations = readMigrations(migrationsDir(twoMigrations));
      // On PostgreSQL the second run uses its own pool, as a second process would.
      const other: Database = db.url ? await openDatabase({ url: db.url, dataDir: '', poolMax: 2, connectTimeoutSeconds: 5 }) : db;
      try {
        const runs = await Promise.all([migrate(db, migrations), migrate(other, migrations), migrate(db, migrations)]);
        assert.equal(runs.reduce((n, r) => n + r.applied.length, 0), 2);
        const rows = await db.query<{ n: number }>('SELECT count(*)::int AS n FROM first');
        assert.equal(rows.rows[0]!.n, 1);
      } finally {
        if (other !== db) await other.close();
      }
    });

    test('a changed applied migration fails loudly', async () => {
      const db = await fresh();
      await migrate(db, readMigrations(migrationsDir(twoMigrations)));
      const changed = readMigrations(migrationsDir({ ...twoMigrations, '20260101000000_first.sql': 'CREATE TABLE first (id bigint);\n' }));
      await assert.rejects(migrate(db, changed), /20260101000000_first\.sql was changed after it was applied/);
    });

    test('a failing migration rolls back the whole run and names the file', async () => {
      const db = await fresh();
      const broken = readMigrations(migrationsDir({ ...twoMigrations, '20260103000000_broken.sql': 'CREATE TABLE nope (;\n' }));
      await assert.rejects(migrate(db, broken), /migration 20260103000000_broken\.sql failed/);
      assert.equal((await migrationStatus(db, broken)).pending.length, 3);
    });
  });
}

test('a badly named migration file is refused', () => {
  assert.throws(() => readMigrations(migrationsDir({ 'add_things.sql': 'SELECT 1;' })), /not named YYYYMMDDHHMMSS_name\.sql/);
});
