import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { accountRepository } from '../compose.ts';
import type { Config } from '../config/load.ts';
import { openDatabase, type Database } from '../db/index.ts';
import { migrate, migrationStatus, readMigrations } from '../db/migrate.ts';
import { DEFAULT_TEMPLATE_DIR, findTemplate } from '../db/pglite-template.ts';
import type { Logger } from '../log.ts';

/** What a command is doing while it starts, for a person watching (`dev` prints it). */
export type Progress = (step: string) => void;

export interface OpenOptions {
  progress?: Progress;
  /** Where a new embedded database's template is (pglite-template.ts); false: always initdb. */
  templateDir?: string | false;
}

export async function openMigratedDatabase(config: Config, log: Logger, options: OpenOptions = {}): Promise<Database> {
  const { progress = () => {}, templateDir = DEFAULT_TEMPLATE_DIR } = options;
  const embedded = !config.database.url;
  const migrations = readMigrations();
  let template: string | undefined;
  if (embedded) {
    const fresh = !existsSync(join(config.database.data_dir, 'PG_VERSION'));
    if (fresh && templateDir) {
      const found = findTemplate(templateDir, migrations);
      if (found.found) template = found.archive;
      else log.info({ reason: found.reason }, 'creating the embedded database from nothing (initdb): no template to copy');
    }
    progress(
      !fresh
        ? `opening the embedded database in ${config.database.data_dir}`
        : `creating the embedded database in ${config.database.data_dir} (first start only)${template ? ', from the template made at install' : ''}`,
    );
  } else {
    progress('connecting to PostgreSQL');
  }
  const db = await openDatabase({
    url: config.database.url,
    dataDir: config.database.data_dir,
    poolMax: config.database.pool_max,
    connectTimeoutSeconds: config.database.connect_timeout,
    template,
  });
  try {
    const { pending } = await migrationStatus(db, migrations);
    if (pending.length > 0) progress(`applying ${pending.length} database migration${pending.length === 1 ? '' : 's'}`);
    const { applied, unknown } = await migrate(db, migrations);
    if (applied.length > 0) log.info({ migrations: applied.map((m) => `${m.version}_${m.name}`) }, 'applied migrations');
    if (unknown.length > 0) log.warn({ migrations: unknown }, 'the database has migrations this version does not know; is an older version running against a newer database?');
    // Localparts stored by earlier versions with `=xx` escapes are ones Synapse would escape again.
    const changes = await accountRepository(db, config).rederiveUnstableLocalparts();
    for (const change of changes) log.warn(change, 'gave an account a localpart the homeserver keeps as it is (the old one had escapes Synapse would change)');
  } catch (error) {
    await db.close();
    throw error;
  }
  log.info({ database: db.description }, 'database ready');
  return db;
}

/** Resolves on the first SIGTERM or SIGINT; a second one exits at once. */
export function shutdownSignal(log: Logger): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    const onSignal = (signal: NodeJS.Signals) => {
      log.info({ signal }, 'shutting down');
      process.off('SIGTERM', onSignal).off('SIGINT', onSignal);
      process.once('SIGTERM', () => process.exit(130)).once('SIGINT', () => process.exit(130));
      resolve(signal);
    };
    process.on('SIGTERM', onSignal).on('SIGINT', onSignal);
  });
}
