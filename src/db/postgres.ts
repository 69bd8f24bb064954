import { createHash } from 'node:crypto';
import pg from 'pg';
import { publishStatement } from './statements.ts';
import { ADVISORY_KEY_SQL, DatabaseError, type Database, type DatabaseOptions, type LeaderLock, type Queryable, type Row } from './types.ts';
import { currentUnitOfWork, type UnitSession } from './unit-of-work.ts';

const INT8 = 20;
// Ids and counters fit in a double; returning numbers keeps both backends alike (PGlite does the same).
const types = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
    oid === INT8 ? (value: string) => Number(value) : pg.types.getTypeParser(oid, format as 'text')) as typeof pg.types.getTypeParser,
};

export function describeUrl(url: string): string {
  try {
    const u = new URL(url);
    return `PostgreSQL at ${u.hostname || 'local socket'}${u.port ? `:${u.port}` : ''}${u.pathname}`;
  } catch {
    return 'PostgreSQL (unparseable URL)';
  }
}

/**
 * Parameterised statements are prepared once per connection, under a name derived from their
 * text: PostgreSQL then skips parsing and planning them again, and each one is a shorter message.
 * The service has a few dozen distinct statements; past MAX_PREPARED (SQL built at run time would
 * be the cause) statements are sent unnamed.
 */
const MAX_PREPARED = 500;
const prepared = new Map<string, string | null>();
/** A prepared statement whose result columns changed under it (a migration by a newer process): 0A000. */
const CACHED_PLAN_CHANGED = '0A000';

function statementName(sql: string): string | undefined {
  let name = prepared.get(sql);
  if (name === undefined) {
    if (prepared.size >= MAX_PREPARED) return undefined;
    name = `wms_${createHash('sha1').update(sql).digest('hex').slice(0, 24)}`;
    prepared.set(sql, name);
  }
  return name ?? undefined;
}

async function run<R extends Row>(client: pg.Pool | pg.PoolClient, sql: string, params: readonly unknown[] | undefined, inTransaction: boolean) {
  publishStatement('postgres', sql, params);
  const values = params as unknown[] | undefined;
  const name = values && values.length > 0 ? statementName(sql) : undefined;
  try {
    return await client.query<R>(name ? { name, text: sql, values } : { text: sql, values });
  } catch (error) {
    // `SELECT *` prepared before a migration added a column: never prepare it again, and retry
    // once unnamed where that is possible (not inside a transaction, which the error aborted).
    if (!name || (error as { code?: string }).code !== CACHED_PLAN_CHANGED) throw error;
    prepared.set(sql, null);
    if (inTransaction) throw error;
    return client.query<R>({ text: sql, values });
  }
}

function wrap(client: pg.Pool | pg.PoolClient, inTransaction: boolean): Queryable {
  return {
    async query<R extends Row>(sql: string, params?: readonly unknown[]) {
      const result = await run<R>(client, sql, params, inTransaction);
      return { rows: result.rows, rowCount: result.rowCount ?? 0 };
    },
    async exec(sql: string) {
      publishStatement('postgres', sql, undefined);
      await client.query(sql);
    },
  };
}

interface PooledSession extends UnitSession {
  tx: Queryable;
  /** Queues a statement whose answer is not needed: see `Database.write`. */
  later(sql: string, params: readonly unknown[], onFailure?: (error: unknown) => void): void;
  savepoints: number;
  /** Savepoints open now: while one is, nothing is queued (a rollback to it could hide a queued failure). */
  openSavepoints: number;
}

/**
 * A transaction on a connection of its own. A checked-out client has no listener of the pool's:
 * losing the connection mid-transaction (the server restarting) would be an unhandled 'error'
 * event, ending the process. Here the transaction fails instead, and the broken client is dropped,
 * not handed out again.
 *
 * The connection is in pg's pipeline mode: a statement goes out without waiting for the answer to
 * the one before, in order, and PostgreSQL runs them in that order. Statements sent while the
 * socket is corked leave in one write system call (each write costs ~45 µs in this kind of VM,
 * the largest single cost of a step): BEGIN with the first statement, and statements queued with
 * `later` with whatever comes next (another statement, or COMMIT).
 */
async function begin(pool: pg.Pool): Promise<PooledSession> {
  const client = await pool.connect();
  let lost: Error | undefined;
  const onError = (error: Error) => void (lost ??= error);
  client.on('error', onError);
  pipelined(client, true);
  const socket = (client as unknown as { connection: { stream: NodeJS.WritableStream & { cork(): void; uncork(): void } } }).connection.stream;
  let corked = false;
  const hold = () => {
    if (!corked) socket.cork();
    corked = true;
  };
  const flush = () => {
    if (corked) socket.uncork();
    corked = false;
  };
  const release = () => {
    flush();
    client.removeListener('error', onError);
    pipelined(client, false);
    client.release(lost);
  };
  const inner = wrap(client, true);
  let began: Promise<unknown> | undefined;
  const beginOnce = () => {
    if (began) return;
    publishStatement('postgres', 'BEGIN', undefined);
    began = client.query('BEGIN');
    // Its failure (the connection lost) is the failure of the statements behind it, seen there.
    began.catch((error: unknown) => void (lost ??= error as Error));
  };
  /** Queued statements, each with the error it failed with, once it has. */
  const queued: Array<{ done: Promise<unknown>; failure?: { error: unknown } }> = [];
  const queuedFailure = async () => {
    await Promise.allSettled(queued.map((q) => q.done));
    return queued.find((q) => q.failure)?.failure;
  };
  const send = async <T>(statement: () => Promise<T>): Promise<T> => {
    hold();
    let result: Promise<T>;
    try {
      beginOnce();
      result = statement();
    } finally {
      flush();
    }
    const [beginning, answer] = await Promise.allSettled([began, result]);
    if (beginning.status === 'rejected') throw beginning.reason;
    if (answer.status === 'rejected') {
      // A statement behind a failed queued one fails as "transaction aborted": report the cause.
      const failure = queued.find((q) => q.failure)?.failure;
      throw failure ? failure.error : answer.reason;
    }
    return answer.value;
  };
  const session: PooledSession = {
    tx: {
      query: (sql, params) => send(() => inner.query(sql, params)),
      exec: (sql) => send(() => inner.exec(sql)),
    },
    later(sql, params, onFailure) {
      hold();
      beginOnce();
      const entry: (typeof queued)[number] = { done: Promise.resolve() };
      entry.done = inner.query(sql, params).catch((error: unknown) => {
        entry.failure = { error };
        onFailure?.(error);
      });
      queued.push(entry);
    },
    savepoints: 0,
    openSavepoints: 0,
    async commit() {
      try {
        if (!began) return;
        hold();
        publishStatement('postgres', 'COMMIT', undefined);
        const committing = client.query('COMMIT');
        flush();
        const [beginning, commit] = await Promise.allSettled([began, committing]);
        if (beginning.status === 'rejected') throw beginning.reason;
        if (commit.status === 'rejected') throw commit.reason;
        // PostgreSQL answers COMMIT of a transaction a statement aborted with ROLLBACK, not an error.
        const failure = await queuedFailure();
        if (failure) throw failure.error;
      } catch (error) {
        if (!(await queuedFailure())) lost ??= error as Error;
        throw error;
      } finally {
        release();
      }
    },
    async rollback() {
      try {
        if (!began) return;
        hold();
        const rollingBack = client.query('ROLLBACK');
        flush();
        await rollingBack;
      } catch (error) {
        lost ??= error as Error;
      } finally {
        release();
      }
    },
  };
  return session;
}

/** pg's pipeline mode (a client property since pg 8.21), on for a transaction's connection only. */
function pipelined(client: pg.PoolClient, on: boolean): void {
  (client as unknown as { pipeline: boolean }).pipeline = on;
}

const IDLE_IN_TRANSACTION_MS = 60_000;
/** Idle 30 s, then a probe every 10 s; 3 unanswered probes end the session (ignored over unix sockets). */
const SERVER_KEEPALIVES = '-c tcp_keepalives_idle=30 -c tcp_keepalives_interval=10 -c tcp_keepalives_count=3';

export async function openPostgres(url: string, options: DatabaseOptions): Promise<Database> {
  const description = describeUrl(url);
  const pool = new pg.Pool({
    connectionString: url,
    max: options.poolMax,
    connectionTimeoutMillis: options.connectTimeoutSeconds * 1000,
    // A connection whose peer went away without a word (a NAT or firewall dropping it) is found
    // dead by the kernel instead of waiting forever; the leader lock's connection above all.
    keepAlive: true,
    keepAliveInitialDelayMillis: 10_000,
    // A session left in a transaction by a client that died ends, and so do its locks.
    idle_in_transaction_session_timeout: IDLE_IN_TRANSACTION_MS,
    // And the server probes its side too, so that the session of a client that went silent ends in
    // about a minute instead of two hours, releasing the advisory lock a deposed leader held.
    // (`options` in the URL, if any, replaces this.)
    options: SERVER_KEEPALIVES,
    types,
  });
  // An idle client's error (e.g. the server restarted) must not crash the process; the pool drops it.
  pool.on('error', () => {});
  try {
    await pool.query('SELECT 1');
  } catch (error) {
    await pool.end().catch(() => {});
    throw new DatabaseError(`cannot connect to ${description}: ${(error as Error).message || (error as NodeJS.ErrnoException).code}`, { cause: error });
  }

  const base = wrap(pool, false);
  // Inside a unit of work (a step of the sign-in flow), statements go to the unit's transaction.
  const unitSession = () => currentUnitOfWork()?.session(() => begin(pool));
  return {
    kind: 'postgres',
    description,
    async query(sql, params) {
      const session = unitSession();
      return session ? (await session).tx.query(sql, params) : base.query(sql, params);
    },
    async exec(sql) {
      const session = unitSession();
      return session ? (await session).tx.exec(sql) : base.exec(sql);
    },
    async transaction(fn) {
      const inUnit = unitSession();
      if (inUnit) {
        // Part of the unit's transaction: a savepoint gives it its own rollback.
        const session = await inUnit;
        const savepoint = `wms_sp_${++session.savepoints}`;
        await session.tx.exec(`SAVEPOINT ${savepoint}`);
        session.openSavepoints++;
        try {
          const result = await fn(session.tx);
          await session.tx.exec(`RELEASE SAVEPOINT ${savepoint}`);
          return result;
        } catch (error) {
          await session.tx.exec(`ROLLBACK TO SAVEPOINT ${savepoint}`).catch(() => {});
          throw error;
        } finally {
          session.openSavepoints--;
        }
      }
      const session = await begin(pool);
      let result;
      try {
        result = await fn(session.tx);
      } catch (error) {
        await session.rollback();
        throw error;
      }
      await session.commit();
      return result;
    },
    async write(sql, params, onFailure) {
      const inUnit = unitSession();
      const session = inUnit && (await inUnit);
      if (session && session.openSavepoints === 0) return session.later(sql, params, onFailure);
      try {
        await (session ? session.tx : base).query(sql, params);
      } catch (error) {
        onFailure?.(error);
        throw error;
      }
    },
    leaderLock(name) {
      return postgresLeaderLock(pool, name);
    },
    async close() {
      await pool.end();
    },
  };
}

/**
 * A session-level advisory lock held on a dedicated connection: it ends when the connection does.
 * The connection has an error listener from the moment it is checked out, so losing it (the
 * server restarting) never crashes a standby; the next try opens a new one.
 */
function postgresLeaderLock(pool: pg.Pool, name: string): LeaderLock {
  let client: pg.PoolClient | undefined;
  let held = false;
  let signalLost: (error: Error) => void = () => {};
  const lost = new Promise<Error>((resolve) => (signalLost = resolve));

  const released = new WeakSet<pg.PoolClient>();
  const drop = (c: pg.PoolClient, error: Error) => {
    if (client === c) client = undefined;
    if (!released.has(c)) {
      released.add(c);
      c.release(error);
    }
    if (held) {
      held = false;
      signalLost(error);
    }
  };

  async function connect(): Promise<pg.PoolClient> {
    const c = await pool.connect();
    c.on('error', (error) => drop(c, error));
    return c;
  }

  return {
    lost,
    async tryAcquire() {
      if (held) return true;
      client ??= await connect();
      const c = client;
      let rows: Array<{ locked: boolean }>;
      try {
        ({ rows } = await c.query<{ locked: boolean }>(`SELECT pg_try_advisory_lock(${ADVISORY_KEY_SQL}) AS locked`, [name]));
      } catch (error) {
        drop(c, error as Error);
        throw error;
      }
      held = rows[0]?.locked === true;
      return held;
    },
    async ping(timeoutMs) {
      const c = client;
      if (!c || !held) throw new Error('the lock is not held');
      let timer: NodeJS.Timeout | undefined;
      try {
        await Promise.race([
          c.query('SELECT 1'),
          new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs))),
        ]);
      } catch (error) {
        // A connection that does not answer is given up: the server may have ended the session and its lock.
        drop(c, error as Error);
        throw error;
      } finally {
        clearTimeout(timer);
      }
    },
    async release() {
      const c = client;
      client = undefined;
      if (!c) return;
      if (released.has(c)) return;
      released.add(c);
      try {
        if (held) await c.query(`SELECT pg_advisory_unlock(${ADVISORY_KEY_SQL})`, [name]);
        c.release();
      } catch (error) {
        c.release(error as Error);
      }
      held = false;
    },
  };
}
