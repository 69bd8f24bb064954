// A fresh embedded database, made once and copied for each new data directory: creating one from
// nothing (initdb in WebAssembly, then the migrations) takes 4–6 s of a first start, loading a copy
// about one. `npm install` in a checkout makes it (the `prepare` script); without it, or when it
// is of another version, the first start creates the database from nothing as before.
//
// The migrations stay authoritative: the template is a database the migrations of its build were
// applied to, and it records which (with their checksums). It is used only when each of those is
// one this build has, unchanged; the migrations newer than the template are then applied to the
// copy as to any database. A template of another PGlite (another data directory format) is ignored.
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Migration } from './migrate.ts';

/** Where `npm install` leaves the template: the package's own cache directory (npm's convention). */
export const DEFAULT_TEMPLATE_DIR = fileURLToPath(new URL('../../node_modules/.cache/wiki-matrix-sso/', import.meta.url));

// Not compressed: 41 MB instead of 4.7, but unpacked in 0.8 s instead of 2.2 (gunzip in JavaScript).
const ARCHIVE = 'pglite-template.tar';
const MANIFEST = 'pglite-template.json';
/** Changes when what a template is changes. */
const FORMAT = 2;

interface Manifest {
  format: number;
  /** The @electric-sql/pglite version that wrote the data directory. */
  pglite: string;
  /** The migrations applied to it, in order. */
  migrations: { version: string; name: string; checksum: string }[];
}

export function pgliteVersion(): string {
  const entry = fileURLToPath(import.meta.resolve('@electric-sql/pglite'));
  const manifest = join(entry, '..', '..', 'package.json');
  return (JSON.parse(readFileSync(manifest, 'utf8')) as { version: string }).version;
}

export type TemplateLookup =
  | { found: true; archive: string; migrations: number }
  | { found: false; reason: string };

/** The template in `dir`, if there is one this build may start a database from. */
export function findTemplate(dir: string, migrations: Migration[]): TemplateLookup {
  const manifestPath = join(dir, MANIFEST);
  if (!existsSync(manifestPath)) return { found: false, reason: `no template in ${dir}` };
  let manifest: Manifest;
  try {
    manifest = JSON.parse(readFileSync(manifestPath, 'utf8')) as Manifest;
  } catch (error) {
    return { found: false, reason: `the template's manifest cannot be read: ${(error as Error).message}` };
  }
  if (manifest.format !== FORMAT) return { found: false, reason: `the template is of format ${manifest.format}, not ${FORMAT}` };
  const pglite = pgliteVersion();
  if (manifest.pglite !== pglite) return { found: false, reason: `the template was made by PGlite ${manifest.pglite}, this is ${pglite}` };
  const known = new Map(migrations.map((m) => [m.version, m]));
  for (const m of manifest.migrations) {
    if (known.get(m.version)?.checksum !== m.checksum) return { found: false, reason: `the template holds migration ${m.version}_${m.name}, which this version does not have as it is` };
  }
  const archive = join(dir, ARCHIVE);
  if (!existsSync(archive)) return { found: false, reason: `the template's archive ${archive} is missing` };
  return { found: true, archive, migrations: manifest.migrations.length };
}

/**
 * Makes the template in `dir`: a database in memory, the migrations applied, dumped. The manifest
 * is written last and both files are renamed into place, so a template half written is never found.
 */
export async function makeTemplate(dir: string, migrations: Migration[]): Promise<{ bytes: number }> {
  // Imported here: the service that only reads a template needs neither.
  const [{ openPglite }, { migrate }] = await Promise.all([import('./pglite.ts'), import('./migrate.ts')]);
  const db = await openPglite('memory://');
  let archive: Blob;
  try {
    await migrate(db, migrations);
    archive = await db.dump('none');
  } finally {
    await db.close();
  }
  mkdirSync(dir, { recursive: true });
  const manifest: Manifest = { format: FORMAT, pglite: pgliteVersion(), migrations: migrations.map(({ version, name, checksum }) => ({ version, name, checksum })) };
  const temporary = `.${process.pid}`;
  rmSync(join(dir, MANIFEST), { force: true });
  writeFileSync(join(dir, ARCHIVE + temporary), Buffer.from(await archive.arrayBuffer()));
  writeFileSync(join(dir, MANIFEST + temporary), `${JSON.stringify(manifest, null, 2)}\n`);
  renameSync(join(dir, ARCHIVE + temporary), join(dir, ARCHIVE));
  renameSync(join(dir, MANIFEST + temporary), join(dir, MANIFEST));
  return { bytes: archive.size };
}
