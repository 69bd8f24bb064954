import { spawn } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PGlite } from '@electric-sql/pglite';
import { publishStatement } from './statements.ts';
import { DatabaseError, type Database, type LeaderLock, type Queryable, type Row } from './types.ts';

// Units of work (unit-of-work.ts) are not taken up here: PGlite is one connection for every
// request, so statements run as they come, each committing on its own.
function wrap(db: Pick<PGlite, 'query' | 'exec'>): Queryable {
  return {
    async query<R extends Row>(sql: string, params?: readonly unknown[]) {
      publishStatement('pglite', sql, params);
      const result = await db.query<R>(sql, params as unknown[] | undefined);
      return { rows: result.rows, rowCount: result.affectedRows ?? result.rows.length };
    },
    async exec(sql: string) {
      publishStatement('pglite', sql, undefined);
      await db.exec(sql);
    },
  };
}

/**
 * PostgreSQL's defaults size its buffers for a server of its own; embedded in the service, 16 MB of
 * shared buffers hold the working set of a small community's sign-ins (the tables are a few MB
 * per ten thousand accounts) and keep about 100 MB out of the process's memory.
 */
const MEMORY = ['-c', 'shared_buffers=16MB', '-c', 'wal_buffers=1MB', '-c', 'temp_buffers=1MB', '-c', 'work_mem=2MB', '-c', 'maintenance_work_mem=16MB'];

/**
 * PGlite is a single-connection, single-process database: two processes opening the same
 * directory would corrupt it, so the directory is claimed with a lock file naming the owner's pid.
 */
function claimDirectory(dir: string): () => void {
  const lockPath = join(dir, 'wiki-matrix-sso.pid');
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(lockPath, 'wx');
      writeSync(fd, String(process.pid));
      closeSync(fd);
      return () => rmSync(lockPath, { force: true });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      const owner = Number(readFileSync(lockPath, 'utf8'));
      if (Number.isInteger(owner) && owner > 0 && isAlive(owner)) {
        throw new DatabaseError(
          `the embedded database in ${dir} is in use by process ${owner}; PGlite allows one process — stop it, or configure database.url for PostgreSQL`,
          { code: 'in_use' },
        );
      }
      rmSync(lockPath, { force: true });
    }
  }
  throw new DatabaseError(`cannot claim the embedded database directory ${dir}`);
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

const INIT_SCRIPT = fileURLToPath(new URL(import.meta.url.endsWith('.ts') ? './pglite-init.ts' : './pglite-init.js', import.meta.url));

/** Creates the database directory, from a template archive if given, in a process of its own (pglite-init.ts says why). */
function initdb(dir: string, template?: string): Promise<void> {
  return new Promise((resolveInit, reject) => {
    const child = spawn(process.execPath, [INIT_SCRIPT, dir, ...(template ? [template] : [])], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (chunk) => (stderr += chunk));
    child.once('error', reject);
    child.once('exit', (code, signal) => {
      if (code === 0) resolveInit();
      else reject(new Error(`initdb ${signal ? `was killed by ${signal}` : `exited with ${code}`}${stderr ? `: ${stderr.trim().split('\n').at(-1)}` : ''}`));
    });
  });
}

export interface PgliteOptions {
  /** Start from this dump of another instance (tests use it: loading a dump is several times faster than initdb). */
  loadDataDir?: Blob;
  /** A new directory starts from this archive (a path) instead of initdb (pglite-template.ts); an existing one ignores it. */
  template?: string;
}

/** Opens PGlite on disk, or in memory when dataDir is `memory://`. */
export async function openPglite(dataDir: string, options: PgliteOptions = {}): Promise<Database & { dump(compression?: 'none' | 'gzip'): Promise<Blob> }> {
  const inMemory = dataDir.startsWith('memory://');
  const dir = inMemory ? dataDir : resolve(dataDir);
  let unclaim = () => {};
  if (!inMemory) {
    try {
      mkdirSync(dir, { recursive: true });
    } catch (error) {
      throw new DatabaseError(`cannot create the embedded database directory ${dir}: ${(error as Error).message}`);
    }
    unclaim = claimDirectory(dir);
  }
  let db: PGlite;
  try {
    if (!inMemory && !options.loadDataDir && !existsSync(join(dir, 'PG_VERSION'))) await initdb(dir, options.template);
    db = await PGlite.create({ ...(inMemory ? {} : { dataDir: dir }), loadDataDir: options.loadDataDir, startParams: [...PGlite.defaultStartParams, ...MEMORY] });
  } catch (error) {
    unclaim();
    throw new DatabaseError(`cannot open the embedded database in ${dir}: ${(error as Error).message}`, { cause: error });
  }

  const base = wrap(db);
  // Within one process there is one connection, so leadership is decided in memory.
  const leaders = new Map<string, symbol>();
  return {
    kind: 'pglite',
    description: inMemory ? 'PGlite in memory' : `PGlite in ${dir}`,
    query: base.query,
    exec: base.exec,
    transaction(fn) {
      return db.transaction((tx) => fn(wrap(tx)));
    },
    async write(sql, params, onFailure) {
      try {
        await base.query(sql, params);
      } catch (error) {
        onFailure?.(error);
        throw error;
      }
    },
    leaderLock(name): LeaderLock {
      const me = Symbol(name);
      return {
        lost: new Promise<Error>(() => {}),
        async tryAcquire() {
          if (!leaders.has(name)) leaders.set(name, me);
          return leaders.get(name) === me;
        },
        async ping() {
          if (leaders.get(name) !== me) throw new Error('the lock is not held');
          await db.query('SELECT 1');
        },
        async release() {
          if (leaders.get(name) === me) leaders.delete(name);
        },
      };
    },
    async dump(compression = 'none') {
      return db.dumpDataDir(compression);
    },
    async close() {
      try {
        if (!db.closed) await db.close();
      } finally {
        unclaim();
      }
    },
  };
}
