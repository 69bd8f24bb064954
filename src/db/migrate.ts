import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { ADVISORY_KEY_SQL, DatabaseError, type Database, type Queryable } from './types.ts';

export const MIGRATIONS_DIR = fileURLToPath(new URL('../../migrations/', import.meta.url));
const FILE_NAME = /^(\d{14})_([a-z0-9_]+)\.sql$/;

export interface Migration {
  version: string;
  name: string;
  sql: string;
  checksum: string;
}

export function readMigrations(dir = MIGRATIONS_DIR): Migration[] {
  return readdirSync(dir)
    .filter((file) => file.endsWith('.sql'))
    .sort()
    .map((file) => {
      const match = FILE_NAME.exec(file);
      if (!match) throw new DatabaseError(`migration file ${file} is not named YYYYMMDDHHMMSS_name.sql`);
      const sql = readFileSync(`${dir}/${file}`, 'utf8');
      return { version: match[1]!, name: match[2]!, sql, checksum: createHash('sha256').update(sql).digest('hex') };
    });
}

const TABLE = `CREATE TABLE IF NOT EXISTS schema_migrations (
  version text PRIMARY KEY,
  name text NOT NULL,
  checksum text NOT NULL,
  applied_at timestamptz NOT NULL DEFAULT now()
)`;

export interface MigrationStatus {
  applied: string[];
  pending: Migration[];
  /** Applied versions this build does not know: the database is newer than the code. */
  unknown: string[];
}

async function status(q: Queryable, migrations: Migration[]): Promise<MigrationStatus> {
  const exists = await q.query<{ t: string | null }>(`SELECT to_regclass('schema_migrations')::text AS t`);
  const rows = exists.rows[0]?.t
    ? (await q.query<{ version: string; name: string; checksum: string }>('SELECT version, name, checksum FROM schema_migrations ORDER BY version')).rows
    : [];
  const known = new Map(migrations.map((m) => [m.version, m]));
  for (const row of rows) {
    const m = known.get(row.version);
    if (m && m.checksum !== row.checksum) {
      throw new DatabaseError(
        `migration ${row.version}_${row.name}.sql was changed after it was applied; migrations are forward-only — restore the file and add a new migration instead`,
      );
    }
  }
  const applied = new Set(rows.map((r) => r.version));
  return {
    applied: [...applied],
    pending: migrations.filter((m) => !applied.has(m.version)),
    unknown: rows.filter((r) => !known.has(r.version)).map((r) => `${r.version}_${r.name}`),
  };
}

export function migrationStatus(db: Database, migrations = readMigrations()): Promise<MigrationStatus> {
  return status(db, migrations);
}

/**
 * Applies pending migrations in one transaction, serialised across processes by an advisory
 * lock, so that two processes starting at once apply each migration exactly once.
 */
export async function migrate(db: Database, migrations = readMigrations()): Promise<{ applied: Migration[]; unknown: string[] }> {
  return db.transaction(async (tx) => {
    await tx.query(`SELECT pg_advisory_xact_lock(${ADVISORY_KEY_SQL})`, ['wiki-matrix-sso:migrations']);
    await tx.exec(TABLE);
    const { pending, unknown } = await status(tx, migrations);
    for (const m of pending) {
      try {
        await tx.exec(m.sql);
      } catch (error) {
        throw new DatabaseError(`migration ${m.version}_${m.name}.sql failed: ${(error as Error).message}`, { cause: error });
      }
      await tx.query('INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)', [m.version, m.name, m.checksum]);
    }
    return { applied: pending, unknown };
  });
}
