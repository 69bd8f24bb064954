// `dev` claims the embedded database directory and starts creating it before the service's modules
// load (src/db/pglite.ts, prepareEmbeddedDatabase); openPglite then takes the claim over.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { openPglite, prepareEmbeddedDatabase } from '../../src/db/pglite.ts';
import { DatabaseError } from '../../src/db/types.ts';

describe('preparing the embedded database ahead of opening it', () => {
  const root = mkdtempSync(join(tmpdir(), 'wms-prepare-'));
  after(() => rmSync(root, { recursive: true, force: true }));

  it('creates a fresh directory, which openPglite then opens, holding the claim until it closes', async () => {
    const dir = join(root, 'données', 'пглайт');
    prepareEmbeddedDatabase(dir);
    const lock = join(dir, 'wiki-matrix-sso.pid');
    assert.ok(existsSync(lock), 'claimed at once, before initdb is done');
    const db = await openPglite(dir);
    try {
      assert.ok(existsSync(join(dir, 'PG_VERSION')));
      assert.deepEqual((await db.query<{ n: number }>('SELECT 1 + 1 AS n')).rows, [{ n: 2 }]);
      // Another process's start finds the directory in use.
      await assert.rejects(openPglite(dir), (error: DatabaseError) => error.code === 'in_use');
    } finally {
      await db.close();
    }
    assert.ok(!existsSync(lock), 'released on close');
  });

  it('reports a directory in use by a live process when it is opened, not when prepared', async () => {
    const dir = join(root, 'in-use');
    mkdirSync(dir, { recursive: true });
    // This test process itself is the live owner.
    writeFileSync(join(dir, 'wiki-matrix-sso.pid'), String(process.pid));
    assert.doesNotThrow(() => prepareEmbeddedDatabase(dir));
    await assert.rejects(openPglite(dir), (error: DatabaseError) => error instanceof DatabaseError && error.code === 'in_use' && /in use by process \d+/.test(error.message));
    assert.ok(!existsSync(join(dir, 'PG_VERSION')), 'nothing was created in a directory that is not ours');
  });
});
