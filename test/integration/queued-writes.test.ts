// Statements whose answer nobody reads (`Database.write`) leave, within a step's unit of work on
// PostgreSQL, with the step's next statement or its commit; their failure fails the whole step.
import assert from 'node:assert/strict';
import { afterAll, beforeAll, beforeEach, describe, it } from '@jest/globals';
import { withUnitOfWork } from '../../src/db/unit-of-work.ts';
import { backends, type TestDatabase } from '../support/backends.ts';
import { skipUnless } from '../support/real-parts.ts';
import { skippable } from '../support/suites.ts';

const postgres = backends().find((b) => b.name === 'postgres');
const INSERT = 'INSERT INTO names (id, name) VALUES ($1, $2)';

skippable(describe, skipUnless(postgres ? undefined : 'TEST_DATABASE_URL is not set'))('queued writes on PostgreSQL', () => {
  let db: TestDatabase;
  beforeAll(async () => {
    db = await postgres!.open({ migrated: false });
    await db.exec('CREATE TABLE names (id int PRIMARY KEY, name text NOT NULL)');
  });
  beforeEach(() => db.exec("TRUNCATE names; INSERT INTO names VALUES (1, 'Ярослава')"));
  afterAll(() => db.dispose());

  const names = async () => (await db.query<{ id: number; name: string }>('SELECT id, name FROM names ORDER BY id')).rows;

  it('are seen by the statements after them in the step, and committed with it', async () => {
    const seen = await withUnitOfWork(async () => {
      await db.write(INSERT, [2, 'נועה']);
      await db.write(INSERT, [3, '王秀英']);
      return (await db.query<{ name: string }>('SELECT name FROM names WHERE id = $1', [3])).rows;
    });
    assert.deepEqual(seen, [{ name: '王秀英' }]);
    assert.deepEqual(await names(), [
      { id: 1, name: 'Ярослава' },
      { id: 2, name: 'נועה' },
      { id: 3, name: '王秀英' },
    ]);
  });

  it('fail the commit when one fails, and the whole step rolls back', async () => {
    const failures: unknown[] = [];
    await assert.rejects(
      withUnitOfWork(async (unit) => {
        await db.write(INSERT, [2, 'Zoë']);
        await db.write(INSERT, [1, 'twice'], (error) => failures.push(error));
        await db.write(INSERT, [3, 'Þóra']);
        await unit.commit();
      }),
      (error: { code?: string }) => error.code === '23505',
    );
    assert.equal(failures.length, 1);
    assert.deepEqual(await names(), [{ id: 1, name: 'Ярослава' }]);
  });

  it('make the next statement of the step fail with their error, not "transaction aborted"', async () => {
    await assert.rejects(
      withUnitOfWork(async () => {
        await db.write(INSERT, [1, 'twice']);
        await db.query('SELECT 1');
      }),
      (error: { code?: string }) => error.code === '23505',
    );
    assert.deepEqual(await names(), [{ id: 1, name: 'Ярослава' }]);
  });

  it('are not queued inside a savepoint, which a rollback to could hide a failure behind', async () => {
    await withUnitOfWork(async () => {
      await db.write(INSERT, [2, 'Ngozi']);
      await assert.rejects(
        db.transaction(async () => db.write(INSERT, [1, 'twice'])),
        (error: { code?: string }) => error.code === '23505',
      );
      await db.write(INSERT, [3, 'Ana María']);
    });
    assert.deepEqual((await names()).map((r) => r.id), [1, 2, 3]);
  });

  it('outside a step are awaited, and reject there', async () => {
    await assert.rejects(db.write(INSERT, [1, 'twice']), (error: { code?: string }) => error.code === '23505');
    await db.write(INSERT, [2, 'Kwame']);
    assert.deepEqual((await names()).map((r) => r.id), [1, 2]);
  });
});
