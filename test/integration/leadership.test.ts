// Leadership on both backends: one leader per name, each term a new generation; a leader whose
// lock connection dies (the server ended its session: a restart, a NAT or firewall drop) finds out
// at its next check and is fenced off, while a standby whose connection dies keeps waiting.
import assert from 'node:assert/strict';
import { afterAll, beforeAll, describe, test } from '@jest/globals';
import pg from 'pg';
import { lead, NotLeaderError, type Leadership } from '../../src/db/leader.ts';
import { backends, serverUrl, type TestDatabase } from '../support/backends.ts';

const NAME = 'moderation-test';

/** Ends, from the server's side, every session of this database holding an advisory lock. */
async function terminateLockHolders(db: TestDatabase): Promise<number> {
  const admin = new pg.Client({ connectionString: serverUrl });
  await admin.connect();
  try {
    const { rows } = await admin.query<{ pid: number }>(
      `SELECT l.pid FROM pg_locks l JOIN pg_database d ON d.oid = l.database
       WHERE l.locktype = 'advisory' AND l.granted AND d.datname = $1`,
      [new URL(db.url!).pathname.slice(1)],
    );
    for (const { pid } of rows) await admin.query('SELECT pg_terminate_backend($1)', [pid]);
    return rows.length;
  } finally {
    await admin.end();
  }
}

/** Runs a records-like write in a transaction behind the fence. */
async function fencedWrite(db: TestDatabase, leadership: Leadership, what: string): Promise<void> {
  await db.transaction(async (tx) => {
    await leadership.fence(tx);
    await tx.query('INSERT INTO fenced_writes (what) VALUES ($1)', [what]);
  });
}

for (const backend of backends()) {
  describe(`leadership on ${backend.name}`, () => {
    let db: TestDatabase;
    beforeAll(async () => {
      db = await backend.open();
      await db.exec('CREATE TABLE fenced_writes (what text NOT NULL)');
    });
    afterAll(() => db.dispose());

    test('one leader per name; each term has a later generation; the fence lets only the current term write', async () => {
      const first = lead(db, NAME, { retryMs: 50 });
      await first.acquired;
      const second = lead(db, NAME, { retryMs: 50 });
      const raced = await Promise.race([second.acquired.then(() => 'acquired'), new Promise((r) => setTimeout(() => r('waiting'), 300))]);
      assert.equal(raced, 'waiting', 'a second contender waits while the first leads');
      await first.verify();
      await fencedWrite(db, first, 'first term');
      const firstGeneration = first.generation!;
      await first.stop();
      await second.acquired;
      assert.ok(second.generation! > firstGeneration, `${second.generation} > ${firstGeneration}`);
      await assert.rejects(fencedWrite(db, first, 'deposed'), NotLeaderError);
      await assert.rejects(first.verify(), NotLeaderError);
      await fencedWrite(db, second, 'second term');
      const { rows } = await db.query<{ what: string }>('SELECT what FROM fenced_writes ORDER BY what');
      assert.deepEqual(rows.map((r) => r.what), ['first term', 'second term']);
      await second.stop();
    });

    if (backend.name === 'postgres') {
      test('every session asks the server to probe a silent client and to end one left idle in a transaction', async () => {
        // Several pool connections: each new one is set up the same way.
        const settings = await Promise.all(
          [1, 2, 3].map(() => db.transaction(async (tx) => (await tx.query<{ idle: string; keepalive: string; abandoned: string }>(
            `SELECT current_setting('tcp_keepalives_idle') AS idle, current_setting('tcp_keepalives_count') AS keepalive,
                    current_setting('idle_in_transaction_session_timeout') AS abandoned`,
          )).rows[0]!)),
        );
        for (const s of settings) assert.deepEqual(s, { idle: '30', keepalive: '3', abandoned: '1min' });
      });

      test('the server ends the leader\'s session: the standby takes over, the old leader\'s check fails and its fence refuses', async () => {
        const leader = lead(db, NAME, { retryMs: 50, verifyTimeoutMs: 2_000 });
        await leader.acquired;
        const standby = lead(db, NAME, { retryMs: 50 });
        assert.equal(await terminateLockHolders(db), 1);
        await standby.acquired;
        await assert.rejects(leader.verify(), NotLeaderError);
        await assert.rejects(fencedWrite(db, leader, 'split brain'), NotLeaderError);
        await standby.verify();
        await fencedWrite(db, standby, 'taken over');
        await Promise.all([leader.stop(), standby.stop()]);
      });

      test('a standby whose connection the server ends keeps waiting, and leads once the leader goes', async () => {
        const leader = lead(db, NAME, { retryMs: 50 });
        await leader.acquired;
        const standby = lead(db, NAME, { retryMs: 50 });
        await new Promise((r) => setTimeout(r, 200));
        // Every session of this database but the leader's lock, the standby's try included, ends.
        const admin = new pg.Client({ connectionString: serverUrl });
        await admin.connect();
        for (let i = 0; i < 3; i++) {
          await admin.query(
            `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
             WHERE datname = $1 AND pid <> pg_backend_pid() AND pid NOT IN (SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted)`,
            [new URL(db.url!).pathname.slice(1)],
          );
          await new Promise((r) => setTimeout(r, 150));
        }
        await admin.end();
        await leader.stop();
        await standby.acquired;
        await standby.verify();
        await standby.stop();
      });
    }
  });
}
