// The storage backends every storage test runs against: embedded PGlite always, and a real
// PostgreSQL server when TEST_DATABASE_URL names one (CI always does). Each opened database is
// fresh (its own PostgreSQL database, or its own in-memory PGlite) and migrated.
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { openDatabase, type Database } from '../../src/db/index.ts';
import { migrate } from '../../src/db/migrate.ts';
import { openPglite } from '../../src/db/pglite.ts';

export interface TestDatabase extends Database {
  /** A connection URL for this database (PostgreSQL only), e.g. for a child process. */
  readonly url: string | undefined;
  /** Closes and deletes the database. */
  dispose(): Promise<void>;
}

export interface Backend {
  name: 'pglite' | 'postgres';
  /** A fresh database; migrated unless `{ migrated: false }`. */
  open(options?: { migrated?: boolean }): Promise<TestDatabase>;
}

export const serverUrl = process.env.TEST_DATABASE_URL || undefined;

// initdb takes seconds in PGlite; every database after the first in a process starts from a dump.
let templates: Promise<{ empty: Blob; migrated: Blob }> | undefined;
function pgliteTemplates() {
  templates ??= (async () => {
    const db = await openPglite('memory://');
    const empty = await db.dump();
    await migrate(db);
    const migrated = await db.dump();
    await db.close();
    return { empty, migrated };
  })();
  return templates;
}

const pgliteBackend: Backend = {
  name: 'pglite',
  async open(options = {}) {
    const { empty, migrated } = await pgliteTemplates();
    const db = await openPglite('memory://', { loadDataDir: options.migrated === false ? empty : migrated });
    return Object.assign(db, { url: undefined, dispose: () => db.close() });
  },
};

function postgresBackend(adminUrl: string): Backend {
  return {
    name: 'postgres',
    async open(options = {}) {
      const name = `wms_test_${randomBytes(6).toString('hex')}`;
      const admin = new pg.Client({ connectionString: adminUrl });
      await admin.connect();
      await admin.query(`CREATE DATABASE ${name}`);
      await admin.end();
      const url = new URL(adminUrl);
      url.pathname = `/${name}`;
      const db = await openDatabase({ url: url.toString(), dataDir: '', poolMax: 10, connectTimeoutSeconds: 5 });
      if (options.migrated !== false) await migrate(db);
      const close = db.close.bind(db);
      return Object.assign(db, {
        url: url.toString(),
        async dispose() {
          await close().catch(() => {});
          await dropDatabase(adminUrl, name);
        },
      });
    },
  };
}

/**
 * Drops a test database, ending whatever still uses it. An autovacuum worker in it is a process of
 * no role, which WITH (FORCE) may not end for a role that is not a superuser (42501, "must be a
 * member of the role whose process is being terminated"); it leaves within moments, so try again.
 */
async function dropDatabase(adminUrl: string, name: string): Promise<void> {
  const c = new pg.Client({ connectionString: adminUrl });
  await c.connect();
  try {
    for (let attempt = 1; ; attempt++) {
      try {
        await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
        return;
      } catch (error) {
        if ((error as { code?: string }).code !== '42501' || attempt === 20) throw error;
        await sleep(250);
      }
    }
  } finally {
    await c.end();
  }
}

export function backends(): Backend[] {
  return serverUrl ? [pgliteBackend, postgresBackend(serverUrl)] : [pgliteBackend];
}
