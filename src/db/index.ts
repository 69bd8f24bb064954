// One small query interface with two implementations: a PostgreSQL server (pg Pool) and the
// embedded PGlite. Both speak the same SQL and run the same migrations.

export * from './types.ts';
import type { Database, DatabaseOptions } from './types.ts';

export async function openDatabase(options: DatabaseOptions): Promise<Database> {
  if (options.url) {
    const { openPostgres } = await import('./postgres.ts');
    return openPostgres(options.url, options);
  }
  const { openPglite } = await import('./pglite.ts');
  return openPglite(options.dataDir, { ...(options.template && { template: options.template }) });
}
