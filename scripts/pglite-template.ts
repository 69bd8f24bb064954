// `npm install` (the `prepare` script): makes the template a new embedded database is copied from
// (src/db/pglite-template.ts), so that a first `npm start` does not run initdb and every
// migration. Never fails the install: without a template the first start creates the database
// from nothing, as it always could.
//
//   node scripts/pglite-template.ts [dir]   (default: node_modules/.cache/wiki-matrix-sso)
import { readMigrations } from '../src/db/migrate.ts';
import { DEFAULT_TEMPLATE_DIR, makeTemplate } from '../src/db/pglite-template.ts';

const dir = process.argv[2] ?? DEFAULT_TEMPLATE_DIR;
const started = performance.now();
try {
  const migrations = readMigrations();
  const { bytes } = await makeTemplate(dir, migrations);
  process.stdout.write(
    `wiki-matrix-sso: made the embedded database's template (${migrations.length} migrations, ${(bytes / 1e6).toFixed(1)} MB) in ${dir} in ${((performance.now() - started) / 1000).toFixed(1)} s\n`,
  );
} catch (error) {
  process.stderr.write(`wiki-matrix-sso: could not make the embedded database's template (a first start will create the database from nothing): ${(error as Error).message}\n`);
}
