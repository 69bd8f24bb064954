// The database fails under two workers, the real `worker` command each, on a PostgreSQL server of
// the test's own. The leader's lock connection goes half-open (a NAT forgets it: the leader's
// bytes stop, its sockets stay open) while the server ends the session holding the lock: the
// standby takes over and acts, and at no time do both act — one applied ban per room, user and
// cause in the audit, one ban event per room, one notice — neither while the old leader is cut off
// nor once its connection comes back. PostgreSQL restarted three times while a standby waits
// kills no worker: when the leader is killed afterwards, the other takes over and bans. And a
// restart in the middle of a transaction fails that transaction without ending the process.
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, test } from '@jest/globals';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import YAML from 'yaml';
import { openDatabase } from '../../src/db/index.ts';
import { ModerationAuditLog } from '../../src/moderation/records.ts';
import { start, type Running } from '../support/cli.ts';
import { mediawikiAvailable } from '../support/mediawiki.ts';
import { eventually, startMirrorStack, type MirrorStack } from '../support/mirror-stack.ts';
import { postgresServerAvailable, startPgServer, type PgServer } from '../support/pg-server.ts';
import { skipUnless } from '../support/real-parts.ts';
import { synapseAvailable } from '../support/synapse.ts';
import { startTcpProxy, type TcpProxy } from '../support/tcp-proxy.ts';
import { skippable } from '../support/suites.ts';

const unavailable = mediawikiAvailable() ?? synapseAvailable() ?? postgresServerAvailable();
const HALF_OPEN = 'Behind A Silent Connection';
const RESTARTS = 'Banned After Restarts';
const LEADS = /leader: moderation mirroring is running/;
const PASS_DONE = /moderation pass done/;
const WAITS = /waiting to become the leader/;
/** A change to Matrix (logged at debug level by the executor, after the change). */
const ACTS = /"msg":"moderation action"/;
/** A standby tries the lock every 5 s (the worker's default); a takeover takes that, a pass and a slow machine. */
const TAKEOVER_MS = 30_000;

skippable(describe, skipUnless(unavailable))('the database failing under two workers', () => {
  let server: PgServer;
  let databaseUrl: string;
  let stack: MirrorStack;
  /** The workers the current test started; killed after it. */
  let workers: Running[] = [];

  beforeAll(async () => {
    if (unavailable) throw new Error(unavailable);
    server = await startPgServer();
    databaseUrl = await server.createDatabase('wms');
    stack = await startMirrorStack({ names: [HALF_OPEN, RESTARTS], rooms: 3, databaseUrl });
  }, 360_000);
  afterEach(async () => {
    for (const w of workers) if (w.child.exitCode === null && w.child.signalCode === null) w.child.kill('SIGKILL');
    await Promise.all(workers.map((w) => w.exited));
    workers = [];
  }, 360_000);
  afterAll(async () => {
    await stack?.stop();
    await server?.stop();
  }, 360_000);

  /** Starts the worker on the stack's config file, or on a copy whose database URL is `url`. */
  function startWorker(url?: string): Running {
    let worker: Running;
    if (url === undefined) {
      worker = stack.startWorker();
    } else {
      const config = YAML.parse(readFileSync(stack.configPath, 'utf8'));
      config.database = { ...config.database, url };
      const path = join(stack.dir, `config-${workers.length}.yaml`);
      writeFileSync(path, YAML.stringify(config));
      worker = start(['worker', '--config', path]);
    }
    workers.push(worker);
    return worker;
  }

  /** Runs one statement on the server as its superuser, from a connection of its own. */
  async function asAdmin<R extends pg.QueryResultRow>(sql: string, params: unknown[] = []): Promise<R[]> {
    const admin = new pg.Client({ connectionString: server.url() });
    await admin.connect();
    try {
      return (await admin.query<R>(sql, params)).rows;
    } finally {
      await admin.end();
    }
  }

  /** The session holding the worker lock (an advisory lock in the workers' database), with its client port. */
  async function lockHolder(): Promise<{ pid: number; port: number }> {
    const rows = await asAdmin<{ pid: number; port: number }>(
      `SELECT l.pid, a.client_port AS port FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
       WHERE l.locktype = 'advisory' AND l.granted AND a.datname = 'wms'`,
    );
    assert.equal(rows.length, 1, `one session holds the worker lock: ${JSON.stringify(rows)}`);
    return rows[0]!;
  }

  async function terminateBackend(pid: number): Promise<void> {
    const [row] = await asAdmin<{ ended: boolean }>('SELECT pg_terminate_backend($1, 5000) AS ended', [pid]);
    assert.equal(row?.ended, true, `session ${pid} ended`);
  }

  /**
   * Waits until the standby has tried the lock and waits on a connection of its own: a session of
   * the workers' database whose last statement tried the lock, and which does not hold it.
   */
  async function standbyWaiting(): Promise<void> {
    await eventually('the standby waiting for the lock on a connection of its own', async () => {
      const [row] = await asAdmin<{ n: number }>(
        `SELECT count(*)::int AS n FROM pg_stat_activity a
         WHERE a.datname = 'wms' AND a.state = 'idle' AND a.query LIKE '%pg_try_advisory_lock%'
           AND NOT EXISTS (SELECT 1 FROM pg_locks l WHERE l.pid = a.pid AND l.locktype = 'advisory' AND l.granted)`,
      );
      return row?.n === 1 ? true : undefined;
    }, TAKEOVER_MS);
  }

  /** Every managed room holds one ban event of `name`, the audit one applied ban per room and cause, the moderation room one notice. */
  async function actedOnce(name: string, when: string): Promise<void> {
    const userId = stack.users.get(name)!.userId;
    for (const room of stack.rooms) assert.equal((await stack.banEvents(room, name)).length, 1, `${when}: one ban event of ${name} in ${room}`);
    const applied = await stack.withDatabase(async (db) => (await new ModerationAuditLog(db).list({ userId, kind: 'ban', outcome: 'applied', limit: 100 })).entries);
    const perRoomAndCause = new Map<string, number>();
    for (const e of applied) {
      const key = `${e.roomId} ${JSON.stringify(e.cause)}`;
      perRoomAndCause.set(key, (perRoomAndCause.get(key) ?? 0) + 1);
    }
    assert.deepEqual([...perRoomAndCause.values()], stack.rooms.map(() => 1), `${when}: one applied ban per (room, user, cause) in the audit: ${JSON.stringify([...perRoomAndCause])}`);
    assert.deepEqual(new Set(applied.map((e) => e.roomId)), new Set(stack.rooms), `${when}: a ban audited in every room`);
    const notices = (await stack.noticeTexts()).filter((t) => t.includes(userId));
    assert.equal(notices.length, 1, `${when}: one notice about ${userId}:\n${notices.join('\n---\n')}`);
  }

  const alive = (w: Running) => w.child.exitCode === null && w.child.signalCode === null;

  test("the leader's lock connection goes half-open and the server ends its lock session: the standby takes over, and at no time do both act", async () => {
    const proxy: TcpProxy = await startTcpProxy({ host: '127.0.0.1', port: server.port });
    try {
      // The leader reaches the database through the proxy, the standby directly.
      const leader = startWorker(proxy.via(databaseUrl));
      await leader.waitFor(LEADS, 30_000);
      await leader.waitFor(PASS_DONE, 30_000);
      const standby = startWorker();
      await standby.waitFor(WAITS, 30_000);
      await standbyWaiting();

      // A NAT forgets the leader's connections; the server ends the session holding the lock.
      const holder = await lockHolder();
      assert.ok(proxy.upstreamPorts().includes(holder.port), 'the lock is held through the proxy, by the leader');
      const cutOff = leader.mark();
      proxy.freeze();
      await terminateBackend(holder.pid);

      const takeover = standby.mark();
      await standby.waitFor(LEADS, TAKEOVER_MS, takeover);
      await standby.waitFor(PASS_DONE, TAKEOVER_MS, takeover);
      await stack.wiki.block(HALF_OPEN, { reason: 'vandalism behind a silent connection' });
      await stack.eventuallyAll(HALF_OPEN, 'ban', 30_000);
      const userId = stack.users.get(HALF_OPEN)!.userId;
      await eventually('the notice', async () => ((await stack.noticeTexts()).some((t) => t.includes(userId)) ? true : undefined));
      await sleep(2_000); // a few more polls
      await actedOnce(HALF_OPEN, 'while the old leader is cut off');
      assert.doesNotMatch(leader.output().slice(cutOff), ACTS, 'the cut-off leader changed nothing in Matrix');
      assert.doesNotMatch(leader.output().slice(cutOff), /lost leadership/, "the connection is half-open: the cut-off leader heard nothing of its lock session's end");

      // Its connections come back: the old leader finds it no longer leads, and waits as a standby.
      const thawed = leader.mark();
      proxy.unfreeze();
      await leader.waitFor(/no longer the leader|lost leadership/, 15_000, thawed);
      await leader.waitFor(WAITS, 20_000, thawed);
      await sleep(3_000);
      await actedOnce(HALF_OPEN, 'once the old leader is back');
      assert.doesNotMatch(leader.output().slice(cutOff), ACTS, 'the old leader changed nothing in Matrix');
      assert.doesNotMatch(leader.output().slice(thawed), LEADS, 'the old leader did not lead again');
      assert.ok(alive(leader) && alive(standby), 'both workers are still running');
    } finally {
      await proxy.close();
    }
  }, 360_000);

  test('PostgreSQL restarted three times while a standby waits: no worker dies, and when the leader is killed the other takes over and bans', async () => {
    const first = startWorker();
    await first.waitFor(LEADS, 30_000);
    await first.waitFor(PASS_DONE, 30_000);
    const second = startWorker();
    await second.waitFor(WAITS, 30_000);
    const both = [first, second];

    let leader = first;
    for (let restart = 1; restart <= 3; restart++) {
      await standbyWaiting();
      const marks = both.map((w) => w.mark());
      await server.restart();
      // One of them leads again: the one that tries the lock first once the server is back.
      leader = await Promise.any(both.map((w, i) => w.waitFor(LEADS, TAKEOVER_MS, marks[i]).then(() => w)));
      await leader.waitFor(PASS_DONE, TAKEOVER_MS, marks[both.indexOf(leader)]);
      for (const [i, w] of both.entries()) assert.ok(alive(w), `worker ${i + 1} is still running after restart ${restart}:\n${w.output().slice(-3000)}`);
    }

    await standbyWaiting();
    const standby = both.find((w) => w !== leader)!;
    const takeover = standby.mark();
    leader.child.kill('SIGKILL');
    await leader.exited;
    await stack.wiki.block(RESTARTS, { reason: 'block after three restarts' });
    await standby.waitFor(LEADS, TAKEOVER_MS, takeover);
    await stack.eventuallyAll(RESTARTS, 'ban', 30_000);
    await sleep(2_000);
    await actedOnce(RESTARTS, 'after the takeover');
    assert.ok(alive(standby), 'the new leader is still running');
  }, 360_000);
});

skippable(describe, skipUnless(postgresServerAvailable()))('PostgreSQL restarted while a transaction is open', () => {
  test('the transaction fails, the process lives on, and the next transaction goes through', async () => {
    const server = await startPgServer();
    const db = await openDatabase({ url: server.url(), dataDir: '', poolMax: 2, connectTimeoutSeconds: 5 });
    try {
      // A record being written when the server goes: its connection ends between two statements.
      const cutShort = db.transaction(async (tx) => {
        await tx.query('SELECT 1');
        await server.restart();
        await tx.query('SELECT 2');
      });
      await assert.rejects(cutShort, 'the transaction the restart cut short fails');
      const { rows } = await db.transaction((tx) => tx.query<{ n: number }>('SELECT 3 AS n'));
      assert.deepEqual(rows, [{ n: 3 }], 'the next transaction goes through on a new connection');
    } finally {
      await db.close();
      await server.stop();
    }
  }, 60_000);
});
