// The command line both login benchmarks share, and the harness around a run: progress on stderr,
// every process started is stopped (also on Ctrl-C and when the time budget runs out), loopback only.
import { parseArgs } from 'node:util';
import { Cleanups } from '../sync/common.ts';

export interface BenchOptions {
  concurrency: number[];
  durationS: number;
  warmupS: number;
  accounts: number;
  users: number;
  databaseUrl: string | undefined;
  workers: number;
  poolMax: number;
  logLevel: string;
  cpuProfileDir: string | undefined;
  json: string | undefined;
  timeoutS: number;
  /** The checkout whose service is measured (another one measures an earlier version with this driver). */
  serviceRoot: string | undefined;
  traceSql: boolean;
  /** Sample where the service's memory is (bench/login/memory.ts). */
  memory: boolean;
  /** Node.js options for the service's processes (e.g. V8 heap sizes), as `node` takes them. */
  nodeFlags: string[];
}

const LIMITS = { concurrency: 512, durationS: 600, warmupS: 120, accounts: 1_000_000, workers: 16, poolMax: 100, timeoutS: 60 };

export const USAGE = `Options (every one bounded; the run is loopback only):
  --concurrency N[,N…]  virtual browsers at once; a list runs each level in turn (default 32, at most ${LIMITS.concurrency})
  --duration S          measured seconds per level (default 60, at most ${LIMITS.durationS})
  --warmup S            unmeasured seconds before each level (default 10)
  --accounts N          accounts stored before the run, central ids 1…N (default 0, at most ${LIMITS.accounts.toLocaleString('en')})
  --users N             editors the wiki signs in, central ids 1…N, picked at random (default max(accounts, 1000));
                        those above --accounts sign in for the first time during the run
  --database-url URL    PostgreSQL server (default $TEST_DATABASE_URL); the run creates and drops a database of its own
  --pglite              the embedded database, even when $TEST_DATABASE_URL is set
  --workers N           serve --workers N (default 1)
  --pool-max N          database.pool_max of each serve process (default 10, as configured by default)
  --log-level LEVEL     the service's logging.level (default info, as configured by default)
  --cpu-prof DIR        run the service under node --cpu-prof; its profile is written to DIR when it stops
  --json PATH           also write the figures as JSON
  --timeout S           per-request timeout (default 10)
  --trace-sql           count the service's statements per unit of work, by statement (node --import bench/login/trace-sql.ts)
  --memory             report where the service's memory is, idle after start and at the peak: V8 heap,
                        code, external and array buffers, WebAssembly (node --import bench/login/memory.ts)
  --service-root DIR    measure the service of another checkout (e.g. an earlier commit) with this driver
  --node-flags=FLAGS    node options for the service, not the driver (e.g. --node-flags="--max-semi-space-size=2")`;

function integer(name: string, raw: string | undefined, fallback: number, min: number, max: number): number {
  if (raw === undefined) return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min || value > max) throw new Error(`--${name} must be an integer from ${min} to ${max}, not ${raw}`);
  return value;
}

function nodeFlags(raw: string | undefined): string[] {
  const flags = (raw ?? '').split(/\s+/).filter(Boolean);
  for (const flag of flags) if (!/^--[a-z0-9-]+(=[\w.,-]+)?$/.test(flag)) throw new Error(`--node-flags takes node options such as --max-semi-space-size=1, not ${flag}`);
  return flags;
}

export function parseOptions(argv: string[]): BenchOptions {
  const { values } = parseArgs({
    args: argv,
    options: {
      concurrency: { type: 'string' },
      duration: { type: 'string' },
      warmup: { type: 'string' },
      accounts: { type: 'string' },
      users: { type: 'string' },
      'database-url': { type: 'string' },
      pglite: { type: 'boolean' },
      workers: { type: 'string' },
      'pool-max': { type: 'string' },
      'log-level': { type: 'string' },
      'cpu-prof': { type: 'string' },
      json: { type: 'string' },
      timeout: { type: 'string' },
      'service-root': { type: 'string' },
      'trace-sql': { type: 'boolean' },
      memory: { type: 'boolean' },
      'node-flags': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    process.exit(0);
  }
  const concurrency = (values.concurrency ?? '32').split(',').map((c) => integer('concurrency', c.trim(), 32, 1, LIMITS.concurrency));
  const accounts = integer('accounts', values.accounts, 0, 0, LIMITS.accounts);
  const databaseUrl = values.pglite ? undefined : (values['database-url'] ?? (process.env.TEST_DATABASE_URL || undefined));
  if (databaseUrl) {
    const host = new URL(databaseUrl).hostname;
    if (!['127.0.0.1', 'localhost', '::1', '[::1]', ''].includes(host)) throw new Error(`--database-url must be on loopback (the benchmark only runs locally), not ${host}`);
  }
  const workers = integer('workers', values.workers, 1, 1, LIMITS.workers);
  if (workers > 1 && !databaseUrl) throw new Error('--workers needs PostgreSQL: the embedded database belongs to one process');
  return {
    concurrency,
    durationS: integer('duration', values.duration, 60, 1, LIMITS.durationS),
    warmupS: integer('warmup', values.warmup, 10, 0, LIMITS.warmupS),
    accounts,
    users: integer('users', values.users, Math.max(accounts, 1000), 1, LIMITS.accounts),
    databaseUrl,
    workers,
    poolMax: integer('pool-max', values['pool-max'], 10, 1, LIMITS.poolMax),
    logLevel: values['log-level'] ?? 'info',
    cpuProfileDir: values['cpu-prof'],
    json: values.json,
    timeoutS: integer('timeout', values.timeout, 10, 1, LIMITS.timeoutS),
    serviceRoot: values['service-root'],
    traceSql: Boolean(values['trace-sql']),
    memory: Boolean(values.memory),
    nodeFlags: nodeFlags(values['node-flags']),
  };
}

export interface Harness {
  cleanups: Cleanups;
  say: (line: string) => void;
}

/**
 * Runs `main` with progress on stderr and a time budget; whatever `main` started is stopped when
 * it ends, fails, is interrupted or runs out of time.
 */
export function runBenchmark(budgetMs: number, main: (harness: Harness) => Promise<number>): void {
  const started = performance.now();
  const say = (line: string) => process.stderr.write(`[${((performance.now() - started) / 1000).toFixed(1).padStart(6)} s] ${line}\n`);
  const cleanups = new Cleanups(say);
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      say(`${signal}: stopping`);
      void cleanups.run().finally(() => process.exit(130));
    });
  }
  setTimeout(() => {
    say(`out of time (${Math.round(budgetMs / 1000)} s): stopping`);
    void cleanups.run().finally(() => process.exit(2));
  }, budgetMs).unref();
  main({ cleanups, say }).then(
    async (code) => {
      await cleanups.run();
      process.exit(code);
    },
    async (error) => {
      say(`failed: ${error instanceof Error ? error.stack : String(error)}`);
      await cleanups.run();
      process.exit(1);
    },
  );
}
