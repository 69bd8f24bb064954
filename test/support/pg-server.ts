// A PostgreSQL server of a test's own, which the test may restart or stop: a data directory in a
// temporary folder, listening on 127.0.0.1 on a free port (trust authentication) and on a unix
// socket in that folder. initdb refuses to run as root, so as root the server runs as the
// `postgres` OS user.
import { execFile, execFileSync } from 'node:child_process';
import { appendFileSync, chownSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { freePort } from './ports.ts';

const run = promisify(execFile);

/** Where the PostgreSQL 15 programs are; WMS_PG_BIN overrides. */
export function postgresBin(): string {
  return process.env.WMS_PG_BIN || '/usr/lib/postgresql/15/bin';
}

/** Why no private PostgreSQL server can be started here, or undefined when one can. */
export function postgresServerAvailable(): string | undefined {
  for (const program of ['initdb', 'pg_ctl', 'postgres']) {
    if (!existsSync(join(postgresBin(), program))) return `no ${program} in ${postgresBin()} (set WMS_PG_BIN)`;
  }
  if (process.getuid?.() === 0 && !existsSync('/usr/sbin/runuser') && !existsSync('/sbin/runuser')) return 'running as root, but there is no runuser to start PostgreSQL as the postgres user';
  return undefined;
}

export interface PgServer {
  readonly port: number;
  /** A connection URL for a database on this server, as the superuser `postgres`. */
  url(database?: string): string;
  createDatabase(name: string): Promise<string>;
  /** `pg_ctl restart -m fast`: every session ends, the server is back when this resolves. */
  restart(): Promise<void>;
  /** The server's log, for failure messages. */
  log(): string;
  /** Stops the server and deletes its files. */
  stop(): Promise<void>;
}


/** As root: the uid and gid of the `postgres` OS user, who owns and runs the server. */
async function postgresUser(): Promise<{ uid: number; gid: number } | undefined> {
  if (process.getuid?.() !== 0) return undefined;
  const [uid, gid] = await Promise.all([run('id', ['-u', 'postgres']), run('id', ['-g', 'postgres'])]);
  return { uid: Number(uid.stdout.trim()), gid: Number(gid.stdout.trim()) };
}

export async function startPgServer(): Promise<PgServer> {
  const unavailable = postgresServerAvailable();
  if (unavailable) throw new Error(unavailable);
  const dir = mkdtempSync(join(tmpdir(), 'wms-pg-'));
  const data = join(dir, 'data');
  const logPath = join(dir, 'server.log');
  const owner = await postgresUser();
  if (owner) chownSync(dir, owner.uid, owner.gid);
  const command = (name: string, args: string[]): [string, string[]] => {
    const path = join(postgresBin(), name);
    return owner ? ['runuser', ['-u', 'postgres', '--', path, ...args]] : [path, args];
  };
  const program = (name: string, args: string[]) => run(...command(name, args));
  const ctlArgs = (...args: string[]) => ['-D', data, '-l', logPath, '-w', '-t', '60', ...args];
  const ctl = (...args: string[]) => program('pg_ctl', ctlArgs(...args));
  const port = await freePort();
  const url = (database = 'postgres') => `postgres://postgres@127.0.0.1:${port}/${database}`;
  const log = () => (existsSync(logPath) ? readFileSync(logPath, 'utf8') : '');

  let started = false;
  // A test process that dies (an uncaught error) leaves no server behind.
  const stopNow = () => {
    try {
      execFileSync(...command('pg_ctl', ctlArgs('stop', '-m', 'immediate')), { stdio: 'ignore' });
    } catch {}
    rmSync(dir, { recursive: true, force: true });
  };
  process.once('exit', stopNow);
  const stop = async () => {
    process.removeListener('exit', stopNow);
    if (started) await ctl('stop', '-m', 'immediate').catch(() => {});
    started = false;
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    await program('initdb', ['-D', data, '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--no-sync', '--no-instructions']);
    // Durability is not what is tested: a restart is a clean shutdown, so nothing is lost anyway.
    appendFileSync(data + '/postgresql.conf', [
      `listen_addresses = '127.0.0.1'`,
      `port = ${port}`,
      `unix_socket_directories = '${dir}'`,
      'fsync = off',
      'synchronous_commit = off',
      'full_page_writes = off',
      'max_connections = 50',
      '',
    ].join('\n'));
    await ctl('start');
    started = true;
  } catch (error) {
    const tail = log().slice(-2000);
    await stop();
    throw new Error(`cannot start PostgreSQL: ${(error as Error).message}${tail ? `\n${tail}` : ''}`, { cause: error });
  }

  return {
    port,
    url,
    async createDatabase(name) {
      const admin = new pg.Client({ connectionString: url() });
      await admin.connect();
      try {
        await admin.query(`CREATE DATABASE ${pg.escapeIdentifier(name)}`);
      } finally {
        await admin.end();
      }
      return url(name);
    },
    async restart() {
      await ctl('restart', '-m', 'fast');
    },
    log,
    stop,
  };
}
