// Statements sent to a PostgreSQL server are prepared once per connection (src/db/postgres.ts).
import assert from 'node:assert/strict';
import { afterAll, beforeAll, describe, it } from '@jest/globals';
import { onStatement } from '../../src/db/statements.ts';
import { backends, type TestDatabase } from '../support/backends.ts';
import { skipUnless } from '../support/real-parts.ts';
import { skippable } from '../support/suites.ts';

const postgres = backends().find((b) => b.name === 'postgres');

skippable(describe, skipUnless(postgres ? undefined : 'TEST_DATABASE_URL is not set'))('prepared statements on PostgreSQL', () => {
  let db: TestDatabase;
  beforeAll(async () => {
    db = await postgres!.open({ migrated: false });
    await db.exec("CREATE TABLE names (id int PRIMARY KEY, name text NOT NULL); INSERT INTO names VALUES (1, 'Ярослава'), (2, 'נועה')");
  });
  afterAll(() => db.dispose());

  it('are prepared once and answer as before, parameters and all', async () => {
    for (let i = 0; i < 3; i++) assert.deepEqual((await db.query('SELECT name FROM names WHERE id = $1', [2])).rows, [{ name: 'נועה' }]);
    const { rows } = await db.query<{ n: number }>("SELECT count(*)::int AS n FROM pg_prepared_statements WHERE statement LIKE 'SELECT name FROM names%'");
    assert.ok(rows[0]!.n <= 1, 'one prepared statement on this connection, at most');
  });

  it('survive a migration that changes the columns of a prepared SELECT *', async () => {
    const sent: string[] = [];
    const stop = onStatement(({ sql }) => void sent.push(sql));
    try {
      assert.deepEqual((await db.query('SELECT * FROM names WHERE id = $1', [1])).rows, [{ id: 1, name: 'Ярослава' }]);
      // A newer version of the service migrating while this one runs.
      await db.exec("ALTER TABLE names ADD COLUMN script text NOT NULL DEFAULT 'Cyrl'");
      for (let i = 0; i < 12; i++) assert.deepEqual((await db.query('SELECT * FROM names WHERE id = $1', [1])).rows, [{ id: 1, name: 'Ярослава', script: 'Cyrl' }]);
    } finally {
      stop();
    }
    assert.ok(sent.length >= 13);
  });
});
