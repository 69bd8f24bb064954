// `forget` as an operator runs it, through the real executable, on the embedded database and on
// PostgreSQL: without --yes it shows what would go and changes nothing; with --yes it forgets and
// says what it did (and which sanctions stay in Matrix); unknown people and missing arguments are
// clear errors, and so is the embedded database being held by a running serve.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { openDatabase, type Database } from '../../src/db/index.ts';
import { migrate } from '../../src/db/migrate.ts';
import { PostgresAccountRepository } from '../../src/identity/accounts.ts';
import { LocalpartPolicy } from '../../src/identity/localpart.ts';
import { ModerationAuditLog } from '../../src/moderation/records.ts';
import { backends } from '../support/backends.ts';
import { run, start, writeConfig } from '../support/cli.ts';
import { findText } from '../support/personal-data.ts';

const WIKI = 'meta.wikimedia.org';
const PERSON = { centralId: '31415926', username: 'אברהם בן-דוד', email: 'avraham@example.org' };
const MXID = '@vrhm_vn-dvd:localhost';

async function plant(db: Database): Promise<void> {
  const accounts = new PostgresAccountRepository(db, { clock: () => new Date(), localparts: new LocalpartPolicy({ serverName: 'localhost' }) });
  const account = await accounts.upsertOnLogin({ wiki: WIKI, centralId: PERSON.centralId, username: PERSON.username });
  assert.equal(`@${account.localpart}:localhost`, MXID);
  await db.query("INSERT INTO wiki_profiles (wiki, central_id, edit_count, groups, email, fetched_at) VALUES ($1, $2, 3, '{}', $3, now())", [WIKI, PERSON.centralId, PERSON.email]);
  const cause = { kind: 'block', wiki: WIKI, blockId: 5, logId: null, by: 'Admin', reason: `Spam by ${PERSON.username}`, timestamp: null, expiry: null, group: null, hidden: false };
  await db.query("INSERT INTO moderation_records (kind, room_id, key, user_id, cause, updated_at) VALUES ('ban', '!lobby:localhost', $1, $1, $2, now())", [MXID, JSON.stringify(cause)]);
  await new ModerationAuditLog(db).append([{
    at: new Date(), passId: 'p1', dryRun: false, kind: 'ban', roomId: '!lobby:localhost', userId: MXID, cause: { ...cause, kind: 'block', timestamp: null, expiry: null },
    outcome: 'applied', error: null, detail: { reason: `Blocked on ${WIKI} (block #5 by Admin, indefinitely): Spam by ${PERSON.username}` },
  }]);
}

for (const backend of backends()) {
  describe(`forget from the command line on ${backend.name}`, () => {
    const dirs: string[] = [];
    const cleanups: (() => Promise<void>)[] = [];
    after(async () => {
      for (const c of cleanups) await c();
      for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
    });

    /** A database with the person in it, and a configuration naming it. */
    async function setUp(extra = ''): Promise<{ config: string; open: () => Promise<Database> }> {
      if (backend.name === 'postgres') {
        const db = await backend.open();
        cleanups.push(() => db.dispose());
        await plant(db);
        return { config: writeConfig(`database:\n  url: "${db.url}"\n${extra}`), open: async () => db };
      }
      const dataDir = mkdtempSync(join(tmpdir(), 'wms-forget-'));
      dirs.push(dataDir);
      const open = () => openDatabase({ dataDir, poolMax: 1, connectTimeoutSeconds: 5 });
      const db = await open();
      await migrate(db);
      await plant(db);
      await db.close();
      return { config: writeConfig(`database:\n  data_dir: ${dataDir}\n${extra}`), open };
    }
    async function look<T>(open: () => Promise<Database>, fn: (db: Database) => Promise<T>): Promise<T> {
      const db = await open();
      try {
        return await fn(db);
      } finally {
        if (backend.name === 'pglite') await db.close();
      }
    }

    test('a dry run by default, then --yes; clear output and errors', { timeout: 120_000 }, async () => {
      const { config, open } = await setUp();

      const nobody = await run(['forget', '--config', config]);
      assert.equal(nobody.code, 2);
      assert.match(nobody.stderr, /forget: say whom to forget\nUsage: wiki-matrix-sso forget </);

      const unknown = await run(['forget', 'Someone Else', '--config', config]);
      assert.equal(unknown.code, 1);
      assert.equal(unknown.stdout, 'no account matches "Someone Else"\n');

      const dry = await run(['forget', PERSON.username, '--config', config]);
      assert.equal(dry.code, 0, dry.stderr);
      assert.match(dry.stdout, new RegExp(`^Dry run: forgetting ${PERSON.username} \\(central user id ${PERSON.centralId} on ${WIKI}; ${MXID}\\) would:\n`));
      assert.match(dry.stdout, /^ {2}erase {7}the account .*1 cached wiki profile/m);
      assert.match(dry.stdout, /^ {2}keep {8}1 audit entry under a new opaque id, names removed/m);
      assert.match(dry.stdout, /^ {2}hand over {3}sanctions that stay in Matrix.*\n {14}ban of @vrhm_vn-dvd:localhost in !lobby:localhost \(block, block #5, indefinite\)$/m);
      assert.match(dry.stdout, new RegExp(`\nNothing was changed\\. Run again with --yes to forget ${PERSON.username}; it cannot be undone\\.\n$`));
      assert.equal(await look(open, async (db) => (await findText(db, [PERSON.email])).length), 1, 'the dry run changed nothing');

      const done = await run(['forget', MXID, '--yes', '--by', 'Ops Team', '--config', config]);
      assert.equal(done.code, 0, done.stderr);
      assert.match(done.stdout, new RegExp(`^Forgot ${PERSON.username} \\(central user id ${PERSON.centralId}`));
      assert.match(done.stdout, /^ {2}kept {8}1 audit entry under forgotten-[0-9a-f]{16}, names removed/m);
      assert.doesNotMatch(done.stdout, /Nothing was changed/);
      await look(open, async (db) => {
        assert.deepEqual(await findText(db, [PERSON.username, PERSON.email, PERSON.centralId, MXID]), []);
        const [entry] = (await new ModerationAuditLog(db).list({ kind: 'forget_account' })).entries;
        assert.equal(entry?.detail.by, 'Ops Team');
        assert.equal((await new ModerationAuditLog(db).list({ userId: entry!.userId!, kind: 'ban' })).entries.length, 1, 'the ban is still counted, under the opaque id');
      });

      const again = await run(['forget', PERSON.username, '--yes', '--config', config]);
      assert.equal(again.code, 1);
      assert.match(again.stdout, /no account matches/);
    });

    if (backend.name === 'pglite') {
      test('while serve holds the embedded database, it says so and changes nothing', { timeout: 120_000 }, async () => {
        const { config, open } = await setUp('http:\n  port: 0\n');
        const serve = start(['serve', '--config', config]);
        try {
          await serve.waitFor(/"listening"/);
          const refused = await run(['forget', PERSON.username, '--yes', '--config', config]);
          assert.equal(refused.code, 1);
          assert.match(refused.stderr, /^wiki-matrix-sso forget: the embedded database in .* is in use by process \d+; PGlite allows one process — stop it, or configure database\.url for PostgreSQL\n$/);
          serve.child.kill('SIGTERM');
          assert.equal((await serve.exited).code, 0);
        } finally {
          serve.child.kill('SIGKILL');
        }
        assert.equal(await look(open, async (db) => (await findText(db, [PERSON.email])).length), 1);
      });
    }
  });
}
