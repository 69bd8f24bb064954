// A new embedded database copied from the template `npm install` makes (src/db/pglite-template.ts):
// the migrations newer than the template are applied to the copy, and a template that is not of
// this build (another PGlite, a migration changed) is ignored for initdb.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, expect, test } from '@jest/globals';
import { openMigratedDatabase } from '../../src/commands/common.ts';
import { parseConfig } from '../../src/config/load.ts';
import { renderSample } from '../../src/config/generate.ts';
import { readMigrations } from '../../src/db/migrate.ts';
import { findTemplate, makeTemplate } from '../../src/db/pglite-template.ts';
import { createLogger } from '../../src/log.ts';

const migrations = readMigrations();
const log = createLogger('silent');
let templateDir: string;

beforeAll(async () => {
  templateDir = mkdtempSync(join(tmpdir(), 'wms-template-'));
  // A template one migration behind this build, as after an upgrade that added one.
  await makeTemplate(templateDir, migrations.slice(0, -1));
}, 60_000);

function configIn(dir: string) {
  const config = parseConfig(renderSample(), 'sample');
  return { ...config, database: { ...config.database, url: undefined, data_dir: join(dir, 'pglite') } };
}

test('a new database starts from the template, gets the newer migrations, and is opened as it is the next time', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'wms-from-template-'));
  const steps: string[] = [];
  const db = await openMigratedDatabase(configIn(dir), log, { templateDir, progress: (step) => steps.push(step) });
  try {
    const applied = await db.query<{ version: string }>('SELECT version FROM schema_migrations ORDER BY version');
    assert.deepEqual(applied.rows.map((r) => r.version), migrations.map((m) => m.version));
  } finally {
    await db.close();
  }
  expect(steps[0]).toMatch(/creating the embedded database in .* \(first start only\), from the template made at install/);
  assert.deepEqual(steps.slice(1), ['applying 1 database migration']);

  const again: string[] = [];
  const reopened = await openMigratedDatabase(configIn(dir), log, { templateDir, progress: (step) => again.push(step) });
  await reopened.close();
  assert.deepEqual(again, [`opening the embedded database in ${join(dir, 'pglite')}`]);
}, 60_000);

test('a template of another PGlite, or holding a migration this build has otherwise, is not used', () => {
  assert.equal(findTemplate(templateDir, migrations).found, true);
  const manifestPath = join(templateDir, 'pglite-template.json');
  const manifest = JSON.parse(readFileSync(manifestPath, 'utf8'));
  const elsewhere = mkdtempSync(join(tmpdir(), 'wms-template-other-'));
  const copy = (changed: object) => writeFileSync(join(elsewhere, 'pglite-template.json'), JSON.stringify({ ...manifest, ...changed }));

  copy({ pglite: '0.0.1' });
  expect(findTemplate(elsewhere, migrations)).toEqual({ found: false, reason: expect.stringMatching(/made by PGlite 0\.0\.1/) });
  copy({ migrations: [{ ...manifest.migrations[0], checksum: 'changed' }] });
  expect(findTemplate(elsewhere, migrations)).toEqual({ found: false, reason: expect.stringMatching(/does not have as it is/) });
  // A build that lacks a migration the template holds (an older one) does not use it either.
  expect(findTemplate(templateDir, migrations.slice(0, 2))).toMatchObject({ found: false });
  expect(findTemplate(join(elsewhere, 'nothing'), migrations)).toMatchObject({ found: false, reason: expect.stringMatching(/no template/) });
});

test('a database from nothing when there is no template', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'wms-no-template-'));
  const steps: string[] = [];
  const db = await openMigratedDatabase(configIn(dir), log, { templateDir: join(dir, 'none'), progress: (step) => steps.push(step) });
  await db.close();
  assert.deepEqual(steps, [`creating the embedded database in ${join(dir, 'pglite')} (first start only)`, `applying ${migrations.length} database migrations`]);
}, 60_000);

