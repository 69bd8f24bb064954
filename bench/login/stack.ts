// What the login benchmarks run against, each part a process of its own on loopback: the wiki
// double (bench/login/wiki.ts), and the service as an operator runs it (`serve --config …`, on a
// PostgreSQL database of its own or on PGlite in a temporary directory), with its accounts stored
// beforehand. And what is measured from outside: the service's CPU time and memory (from /proc, its
// cluster workers included), and PostgreSQL's transactions, tuples and backend CPU for its database.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import YAML from 'yaml';
import { openDatabase, type Database } from '../../src/db/index.ts';
import { migrate } from '../../src/db/migrate.ts';
import { LocalpartPolicy } from '../../src/identity/localpart.ts';
import { freePort } from '../../test/support/ports.ts';
import type { Cleanups } from '../sync/common.ts';
import { BENCH_CONSUMER, benchUsername, benchWikiUser } from './users.ts';

const ROOT = new URL('../../', import.meta.url).pathname;
export const BENCH_WIKI_ID = 'wiki.bench.example';
export const BENCH_CLIENT = { clientId: 'bench-homeserver', clientSecret: 'bench-homeserver-secret', redirectUri: 'http://127.0.0.1:9/_synapse/client/oidc/callback' };
const CLOCK_TICKS = 100;

export interface StackOptions {
  /** A PostgreSQL server URL (the benchmark creates and drops a database of its own); PGlite otherwise. */
  databaseUrl: string | undefined;
  /** Accounts stored before the service starts (central ids 1…accounts). */
  accounts: number;
  /** Editors the wiki signs in (central ids 1…users). */
  users: number;
  /** `serve --workers N` when above 1. */
  workers: number;
  poolMax: number;
  logLevel: string;
  /** Run the service under `node --cpu-prof`, profiles written here when it stops. */
  cpuProfileDir: string | undefined;
  /** Node.js options for the service's processes. */
  nodeFlags?: string[];
  /** The checkout whose `src/cli.ts` runs; this one by default. */
  serviceRoot: string | undefined;
  /** Count the service's statements (bench/login/trace-sql.ts). */
  traceSql: boolean;
  /** Sample where the service's memory is (bench/login/memory.ts). */
  memory?: boolean;
  cleanups: Cleanups;
  say: (line: string) => void;
}

/** One line of bench/login/memory.ts (MiB; `at` in ms since the epoch). */
export interface MemorySample {
  at: number;
  rss: number;
  heapUsed: number;
  heapTotal: number;
  oldSpace: number;
  newSpace: number;
  codeSpace: number;
  largeObjects: number;
  external: number;
  arrayBuffers: number;
  /** Resident pages mapped from files (the node binary); absent in samples of earlier runs. */
  files?: number;
}

export interface ProcessSample {
  /** CPU seconds (user + system) of the service's processes. */
  cpuSeconds: number;
  rssBytes: number;
  /** Write system calls made so far (sockets and files; /proc/<pid>/io). */
  writeCalls: number;
}

export interface PgSample {
  transactions: number;
  tuplesReturned: number;
  tuplesFetched: number;
  tuplesWritten: number;
  blocksRead: number;
  /** CPU seconds of each backend serving the service's database, by pid. */
  backendCpu: Map<number, number>;
  /** Rows read by sequential scans, by table. */
  seqTuples: Map<string, number>;
  /** Index entries read by index scans of each table's indexes, by table. */
  indexTuples: Map<string, number>;
}

/** What happened between two samples; a backend seen only in the second started in between. */
export function pgDelta(before: PgSample, after: PgSample) {
  let backendCpuSeconds = 0;
  for (const [pid, seconds] of after.backendCpu) backendCpuSeconds += seconds - (before.backendCpu.get(pid) ?? 0);
  const seqTuples = new Map<string, number>();
  for (const [table, rows] of after.seqTuples) {
    const read = rows - (before.seqTuples.get(table) ?? 0);
    if (read > 0) seqTuples.set(table, read);
  }
  const indexTuples = new Map<string, number>();
  for (const [table, entries] of after.indexTuples) {
    const read = entries - (before.indexTuples.get(table) ?? 0);
    if (read > 0) indexTuples.set(table, read);
  }
  return {
    seqTuples,
    indexTuples,
    transactions: after.transactions - before.transactions,
    tuplesReturned: after.tuplesReturned - before.tuplesReturned,
    tuplesFetched: after.tuplesFetched - before.tuplesFetched,
    tuplesWritten: after.tuplesWritten - before.tuplesWritten,
    blocksRead: after.blocksRead - before.blocksRead,
    backendCpuSeconds,
  };
}

export interface BenchStack {
  issuer: string;
  wikiBaseUrl: string;
  backend: string;
  /** The service's processes (its primary and workers) now. */
  sampleService(): ProcessSample;
  /** CPU seconds of the load driver (this process) and of the wiki double, which share the machine with the service. */
  sampleRest(): { driverCpuSeconds: number; wikiCpuSeconds: number };
  /** PostgreSQL's counters for the service's database; undefined on PGlite. */
  samplePostgres(): Promise<PgSample | undefined>;
  /** Stops the service (and starts it again with `restart`), keeping the database. */
  stopService(): Promise<void>;
  startService(): Promise<void>;
  /** The database, for seeding between a stop and a start. */
  withDatabase<T>(fn: (db: Database) => Promise<T>): Promise<T>;
  /** With `traceSql`: the statements sent since the last call, by statement. */
  takeSqlCounts: (() => Promise<Map<string, number>>) | undefined;
  /** With `memory`: the service's memory, one sample a second since it started (MiB). */
  memorySamples(): MemorySample[];
  /** What the service logged at warn or above (and anything not JSON), up to 1000 lines. */
  warnings: string[];
}

/** Stores `count` accounts (and their wiki profiles) as earlier sign-ins would have, in batches. */
async function seedAccounts(db: Database, count: number): Promise<void> {
  const policy = new LocalpartPolicy({ serverName: 'bench.example' });
  const taken = new Set<string>();
  const BATCH = 5000;
  for (let from = 1; from <= count; from += BATCH) {
    const ids: string[] = [];
    const names: string[] = [];
    const localparts: string[] = [];
    const edits: number[] = [];
    for (let id = from; id < Math.min(from + BATCH, count + 1); id++) {
      const name = benchUsername(id);
      let localpart = policy.derive(name);
      for (let n = 2; taken.has(localpart); n++) localpart = policy.withSuffix(policy.derive(name), n);
      taken.add(localpart);
      ids.push(String(id));
      names.push(name);
      localparts.push(localpart);
      edits.push(benchWikiUser(id).editCount ?? 0);
    }
    await db.query(
      `INSERT INTO accounts (wiki, central_id, username, display_name, localpart, created_at, updated_at, last_login_at)
       SELECT $1, id, name, name, localpart, now(), now(), now() FROM unnest($2::text[], $3::text[], $4::text[]) AS t(id, name, localpart)`,
      [BENCH_WIKI_ID, ids, names, localparts],
    );
    await db.query(
      `INSERT INTO wiki_profiles (wiki, central_id, edit_count, registered, groups, email, fetched_at)
       SELECT $1, id, edits, '2020-01-01T00:00:00Z', '{}', 'editor' || id || '@example.org', now() FROM unnest($2::text[], $3::int[]) AS t(id, edits)`,
      [BENCH_WIKI_ID, ids, edits],
    );
  }
  await db.query('ANALYZE accounts');
  await db.query('ANALYZE wiki_profiles');
}

async function startWikiProcess(redirectUri: string, users: number, cleanups: Cleanups): Promise<{ baseUrl: string; pid: number }> {
  const child = spawn(process.execPath, [join(ROOT, 'bench/login/wiki.ts'), redirectUri, String(users)], { stdio: ['pipe', 'pipe', 'inherit'] });
  cleanups.add(() => stopChild(child, 5000));
  const line = await new Promise<string>((resolve, reject) => {
    const lines = createInterface({ input: child.stdout! });
    lines.once('line', resolve);
    child.once('exit', (code) => reject(new Error(`the wiki double exited (${code}) before listening`)));
  });
  return { baseUrl: (JSON.parse(line) as { baseUrl: string }).baseUrl, pid: child.pid! };
}

function stopChild(child: ChildProcess, graceMs: number): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill('SIGTERM');
  });
}

/** utime + stime of a process, in seconds; 0 once it has gone. */
function cpuOf(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
  } catch {
    return 0;
  }
}

function writeCallsOf(pid: number): number {
  try {
    return Number(/syscw:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/io`, 'utf8'))?.[1] ?? 0);
  } catch {
    return 0;
  }
}

function rssOf(pid: number): number {
  try {
    const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match ? Number(match[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

/** The process and its descendants (cluster workers). */
function treeOf(pid: number): number[] {
  const all = [pid];
  try {
    for (const task of readdirSync(`/proc/${pid}/task`)) {
      const children = readFileSync(`/proc/${pid}/task/${task}/children`, 'utf8').trim();
      for (const child of children ? children.split(' ') : []) all.push(...treeOf(Number(child)));
    }
  } catch {
    // gone meanwhile
  }
  return all;
}

async function waitReady(url: string, child: ChildProcess, log: () => string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`the service exited (${child.exitCode}) while starting; its log:\n${log()}`);
    try {
      const res = await fetch(`${url}/ready`, { signal: AbortSignal.timeout(1000) });
      if (res.ok) return;
    } catch {
      // not listening yet
    }
    await sleep(50);
  }
  throw new Error(`the service was not ready within ${timeoutMs / 1000} s; its log:\n${log()}`);
}

export async function startBenchStack(options: StackOptions): Promise<BenchStack> {
  const { cleanups, say } = options;
  const dir = mkdtempSync(join(tmpdir(), 'wms-bench-'));
  cleanups.add(async () => rmSync(dir, { recursive: true, force: true }));

  let databaseUrl: string | undefined;
  let databaseName: string | undefined;
  let monitor: pg.Client | undefined;
  if (options.databaseUrl) {
    databaseName = `wms_bench_${randomBytes(4).toString('hex')}`;
    monitor = new pg.Client({ connectionString: options.databaseUrl });
    await monitor.connect();
    cleanups.add(async () => {
      await monitor!.query(`DROP DATABASE IF EXISTS ${databaseName} WITH (FORCE)`).catch((error) => say(`could not drop ${databaseName}: ${error}`));
      await monitor!.end();
    });
    await monitor.query(`CREATE DATABASE ${databaseName}`);
    const url = new URL(options.databaseUrl);
    url.pathname = `/${databaseName}`;
    databaseUrl = url.toString();
  }
  const dataDir = join(dir, 'pglite');
  const withDatabase = async <T>(fn: (db: Database) => Promise<T>): Promise<T> => {
    const db = await openDatabase({ url: databaseUrl, dataDir, poolMax: 4, connectTimeoutSeconds: 5 });
    try {
      return await fn(db);
    } finally {
      await db.close();
    }
  };
  if (options.accounts > 0) {
    const started = performance.now();
    await withDatabase(async (db) => {
      await migrate(db);
      await seedAccounts(db, options.accounts);
    });
    say(`stored ${options.accounts.toLocaleString('en')} accounts in ${((performance.now() - started) / 1000).toFixed(1)} s`);
  }

  const port = await freePort();
  const issuer = `http://127.0.0.1:${port}`;
  const { baseUrl: wikiBaseUrl, pid: wikiPid } = await startWikiProcess(`${issuer}/wiki/callback`, options.users, cleanups);

  const configPath = join(dir, 'config.yaml');
  writeFileSync(
    configPath,
    YAML.stringify({
      http: { host: '127.0.0.1', port, public_url: issuer, shutdown_grace: 2 },
      database: databaseUrl ? { url: databaseUrl, pool_max: options.poolMax } : { data_dir: dataDir },
      oidc: {
        cookie_keys: [randomBytes(32).toString('base64url')],
        key_encryption_secret: randomBytes(32).toString('base64url'),
        clients: [
          {
            client_id: BENCH_CLIENT.clientId,
            client_name: 'Benchmark homeserver',
            client_secret: BENCH_CLIENT.clientSecret,
            token_endpoint_auth_method: 'client_secret_basic',
            redirect_uris: [BENCH_CLIENT.redirectUri],
            backchannel_logout_uri: 'http://127.0.0.1:9/_synapse/client/oidc/backchannel_logout',
            skip_consent: true,
            scopes: ['openid', 'profile', 'email'],
          },
        ],
      },
      wiki: { base_url: wikiBaseUrl, client_id: BENCH_CONSUMER.clientId, client_secret: BENCH_CONSUMER.clientSecret, contact: 'bench@example.org', scopes: ['mwoauth-authonlyprivate'] },
      identity: { wiki_id: BENCH_WIKI_ID },
      matrix: { server_name: 'bench.example' },
      logging: { level: options.logLevel },
    }),
    { mode: 0o600 },
  );

  // The service logs to a pipe, as under systemd or a container runtime, read here: the last lines
  // are kept for an error message, the warnings and errors for the report. (A file on this disk
  // would make every request log line a disk write.)
  const recentLines: string[] = [];
  const warnings: string[] = [];
  const readLog = (stream: NodeJS.ReadableStream) =>
    createInterface({ input: stream }).on('line', (line) => {
      recentLines.push(line);
      if (recentLines.length > 200) recentLines.shift();
      const level = /"level":"(warn|error|fatal)"/.exec(line)?.[1];
      if (level && warnings.length < 1000) warnings.push(line);
      else if (!line.startsWith('{') && warnings.length < 1000) warnings.push(line);
    });
  const tracePath = join(dir, 'sql-trace.jsonl');
  let traceRead = 0;
  const takeSqlCounts = async () => {
    for (const pid of child?.pid ? treeOf(child.pid) : []) process.kill(pid, 'SIGUSR2');
    await sleep(300);
    let text = '';
    try {
      text = readFileSync(tracePath, 'utf8');
    } catch {
      // nothing written yet
    }
    const counts = new Map<string, number>();
    for (const line of text.slice(traceRead).split('\n').filter(Boolean)) {
      for (const [statement, n] of Object.entries((JSON.parse(line) as { counts: Record<string, number> }).counts)) counts.set(statement, (counts.get(statement) ?? 0) + n);
    }
    traceRead = text.length;
    return counts;
  };
  const memoryPath = join(dir, 'memory.jsonl');
  let child: ChildProcess | undefined;
  const startService = async () => {
    const args = [
      ...(options.nodeFlags ?? []),
      ...(options.cpuProfileDir ? ['--cpu-prof', '--cpu-prof-dir', options.cpuProfileDir] : []),
      ...(options.traceSql ? ['--import', join(ROOT, 'bench/login/trace-sql.ts')] : []),
      ...(options.memory ? ['--import', join(ROOT, 'bench/login/memory.ts')] : []),
      join(options.serviceRoot ?? ROOT, 'src/cli.ts'),
      'serve',
      '--config',
      configPath,
      ...(options.workers > 1 ? ['--workers', String(options.workers)] : []),
    ];
    const started = performance.now();
    child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NODE_ENV: 'production', WMS_BENCH_SQL_TRACE: tracePath, WMS_BENCH_MEMORY: memoryPath } });
    readLog(child.stdout!);
    readLog(child.stderr!);
    await waitReady(issuer, child, () => recentLines.slice(-40).join('\n'), 120_000);
    say(`service ready in ${((performance.now() - started) / 1000).toFixed(1)} s (pid ${child.pid}${options.workers > 1 ? `, ${options.workers} workers` : ''})`);
  };
  const stopService = async () => {
    if (child) await stopChild(child, 15_000);
    child = undefined;
  };
  cleanups.add(stopService);
  await startService();

  return {
    issuer,
    wikiBaseUrl,
    backend: databaseUrl ? `PostgreSQL (${databaseName})` : 'PGlite',
    warnings,
    sampleService() {
      const pids = child?.pid ? treeOf(child.pid) : [];
      return {
        cpuSeconds: pids.reduce((sum, pid) => sum + cpuOf(pid), 0),
        rssBytes: pids.reduce((sum, pid) => sum + rssOf(pid), 0),
        writeCalls: pids.reduce((sum, pid) => sum + writeCallsOf(pid), 0),
      };
    },
    sampleRest() {
      const { user, system } = process.cpuUsage();
      return { driverCpuSeconds: (user + system) / 1e6, wikiCpuSeconds: cpuOf(wikiPid) };
    },
    async samplePostgres() {
      if (!monitor) return undefined;
      // Backends publish their counters when idle, at most once a second.
      await monitor.query('SELECT pg_stat_clear_snapshot()');
      const { rows } = await monitor.query<Record<string, string>>(
        `SELECT xact_commit + xact_rollback AS transactions, tup_returned, tup_fetched, tup_inserted + tup_updated + tup_deleted AS written, blks_read
         FROM pg_stat_database WHERE datname = $1`,
        [databaseName],
      );
      const backends = await monitor.query<{ pid: number }>('SELECT pid FROM pg_stat_activity WHERE datname = $1', [databaseName]);
      // pg_stat_user_tables is per database: ask the service's own.
      const tables = await withDatabase((db) => db.query<{ relname: string; seq_tup_read: string; idx_tup_read: string }>(
          `SELECT t.relname, t.seq_tup_read, coalesce((SELECT sum(i.idx_tup_read) FROM pg_stat_user_indexes i WHERE i.relid = t.relid), 0) AS idx_tup_read FROM pg_stat_user_tables t`,
        ));
      const row = rows[0]!;
      return {
        transactions: Number(row.transactions),
        tuplesReturned: Number(row.tup_returned),
        tuplesFetched: Number(row.tup_fetched),
        tuplesWritten: Number(row.written),
        blocksRead: Number(row.blks_read),
        backendCpu: new Map(backends.rows.map(({ pid }) => [pid, cpuOf(pid)])),
        seqTuples: new Map(tables.rows.map((t) => [t.relname, Number(t.seq_tup_read)])),
        indexTuples: new Map(tables.rows.map((t) => [t.relname, Number(t.idx_tup_read)])),
      };
    },
    stopService,
    startService,
    withDatabase,
    takeSqlCounts: options.traceSql ? takeSqlCounts : undefined,
    memorySamples() {
      try {
        return readFileSync(memoryPath, 'utf8').split('\n').filter(Boolean).map((line) => JSON.parse(line) as MemorySample);
      } catch {
        return [];
      }
    },
  };
}
