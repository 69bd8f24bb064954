// A closed-loop load: N virtual browsers, each starting its next sign-in when the last one ends,
// for a warm-up (not counted) and then a measured window. Work still in flight when the window
// closes is let finish and counted, over the time it took, so nothing is cut off or left out.
// Between the phases the load pauses briefly, so that PostgreSQL has published its counters.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { ms, percentile } from '../sync/common.ts';
import type { Outcome } from './flow.ts';
import { analyse, describeBreakdown, type CpuProfile } from './profile.ts';
import { pgDelta, type BenchStack } from './stack.ts';

export interface LoadOptions {
  concurrency: number;
  warmupMs: number;
  durationMs: number;
  /** One unit of work (a sign-in, a code exchange); undefined when there is no more to do. */
  work: () => Promise<Outcome> | undefined;
  stack: BenchStack;
  say: (line: string) => void;
}

export interface LoadResult {
  concurrency: number;
  wallSeconds: number;
  ok: number;
  errors: Map<string, { count: number; detail: string }>;
  totals: number[];
  steps: Map<string, number[]>;
  serviceRequests: number;
  wikiRequests: number;
  cpuSeconds: number;
  writeCalls: number;
  driverCpuSeconds: number;
  wikiCpuSeconds: number;
  peakRssBytes: number;
  pg: ReturnType<typeof pgDelta> | undefined;
  /** Statements sent during the measured window (`--trace-sql`). */
  sql: Map<string, number> | undefined;
  /** The measured window on the monotonic clock, in µs (a CPU profile's timeline). */
  window: { from: number; to: number };
  /** Stopped early: the work ran out. */
  exhausted: boolean;
}

const PUBLISH_PAUSE_MS = 1200;

async function phase(options: LoadOptions, durationMs: number, record: ((outcome: Outcome) => void) | undefined): Promise<{ wallMs: number; exhausted: boolean }> {
  const started = performance.now();
  const endAt = started + durationMs;
  let exhausted = false;
  const browser = async () => {
    while (performance.now() < endAt) {
      const next = options.work();
      if (!next) {
        exhausted = true;
        return;
      }
      record?.(await next);
    }
  };
  await Promise.all(Array.from({ length: options.concurrency }, browser));
  return { wallMs: performance.now() - started, exhausted };
}

export async function runLoad(options: LoadOptions): Promise<LoadResult> {
  const { stack, say } = options;
  let peakRssBytes = 0;
  const sampler = setInterval(() => (peakRssBytes = Math.max(peakRssBytes, stack.sampleService().rssBytes)), 100);
  try {
    if (options.warmupMs > 0) {
      let warm = 0;
      await phase(options, options.warmupMs, (o) => void (o.ok && warm++));
      say(`  warm-up: ${warm} done in ${ms(options.warmupMs)}`);
      await sleep(PUBLISH_PAUSE_MS);
    }
    const result: LoadResult = {
      concurrency: options.concurrency,
      wallSeconds: 0,
      ok: 0,
      errors: new Map(),
      totals: [],
      steps: new Map(),
      serviceRequests: 0,
      wikiRequests: 0,
      cpuSeconds: 0,
      writeCalls: 0,
      driverCpuSeconds: 0,
      wikiCpuSeconds: 0,
      peakRssBytes: 0,
      pg: undefined,
      sql: undefined,
      window: { from: 0, to: 0 },
      exhausted: false,
    };
    await stack.takeSqlCounts?.();
    const { cpuSeconds: cpuBefore, writeCalls: writesBefore } = stack.sampleService();
    const restBefore = stack.sampleRest();
    const pgBefore = await stack.samplePostgres();
    const monotonicMicros = () => Number(process.hrtime.bigint() / 1000n);
    result.window.from = monotonicMicros();
    const { wallMs, exhausted } = await phase(options, options.durationMs, (outcome) => {
      if (!outcome.ok) {
        const seen = result.errors.get(outcome.error);
        if (seen) seen.count++;
        else result.errors.set(outcome.error, { count: 1, detail: outcome.detail });
        return;
      }
      result.ok++;
      result.totals.push(outcome.ms);
      result.serviceRequests += outcome.serviceRequests;
      result.wikiRequests += outcome.wikiRequests;
      for (const [step, duration] of outcome.steps) {
        const list = result.steps.get(step) ?? [];
        list.push(duration);
        result.steps.set(step, list);
      }
    });
    result.window.to = monotonicMicros();
    result.wallSeconds = wallMs / 1000;
    result.exhausted = exhausted;
    const serviceAfter = stack.sampleService();
    result.cpuSeconds = serviceAfter.cpuSeconds - cpuBefore;
    result.writeCalls = serviceAfter.writeCalls - writesBefore;
    const restAfter = stack.sampleRest();
    result.driverCpuSeconds = restAfter.driverCpuSeconds - restBefore.driverCpuSeconds;
    result.wikiCpuSeconds = restAfter.wikiCpuSeconds - restBefore.wikiCpuSeconds;
    result.sql = await stack.takeSqlCounts?.();
    await sleep(PUBLISH_PAUSE_MS);
    const pgAfter = await stack.samplePostgres();
    if (pgBefore && pgAfter) result.pg = pgDelta(pgBefore, pgAfter);
    result.peakRssBytes = Math.max(peakRssBytes, stack.sampleService().rssBytes);
    return result;
  } finally {
    clearInterval(sampler);
  }
}

const fixed = (n: number, digits = 1) => n.toLocaleString('en', { minimumFractionDigits: digits, maximumFractionDigits: digits });
const spread = (values: number[]) =>
  values.length === 0 ? '-' : `p50 ${ms(percentile(values, 50)).padStart(8)}  p95 ${ms(percentile(values, 95)).padStart(8)}  p99 ${ms(percentile(values, 99)).padStart(8)}  max ${ms(Math.max(...values)).padStart(8)}`;

/** The figures of one load, as the issue asks for them. `unit` is what one piece of work is (login, exchange). */
export function describeLoad(result: LoadResult, unit: string): string {
  const n = result.ok;
  const per = (value: number, digits = 1) => (n ? fixed(value / n, digits) : '-');
  const errors = [...result.errors].reduce((sum, [, e]) => sum + e.count, 0);
  const lines = [
    `concurrency ${result.concurrency}: ${n.toLocaleString('en')} ${unit}s in ${fixed(result.wallSeconds)} s = ${fixed(n / result.wallSeconds)} ${unit}s/s, ${errors} errors${result.exhausted ? ' (ran out of work before the end)' : ''}`,
    `  ${`whole ${unit}`.padEnd(34)} ${spread(result.totals)}`,
    ...[...result.steps].map(([step, values]) => `    ${step.padEnd(32)} ${spread(values)}${values.length !== n ? `  (${fixed(values.length / n, 2)} per ${unit})` : ''}`),
  ];
  if (unit === 'login') lines.push(`  browser requests per login: ${per(result.serviceRequests + result.wikiRequests)} (service ${per(result.serviceRequests)}, wiki ${per(result.wikiRequests)}; code exchange and userinfo included)`);
  for (const [kind, { count, detail }] of result.errors) lines.push(`  error ${kind}: ${count}× (${detail.replace(/\s+/g, ' ').slice(0, 160)})`);
  lines.push(`  service: ${per(result.cpuSeconds * 1000)} ms CPU per ${unit} (${fixed(result.cpuSeconds / result.wallSeconds, 2)} cores busy), ${per(result.writeCalls)} write system calls, peak RSS ${(result.peakRssBytes / 1024 / 1024).toFixed(0)} MiB`);
  lines.push(`  beside it on the machine: the load driver ${per(result.driverCpuSeconds * 1000)} ms CPU per ${unit}, the wiki double ${per(result.wikiCpuSeconds * 1000)} ms`);
  if (result.pg) {
    const pg = result.pg;
    if (pg.indexTuples.size > 0) lines.push(`  PostgreSQL index entries read per ${unit}: ${[...pg.indexTuples].map(([table, rows]) => `${table} ${per(rows)}`).join(', ')}`);
    if (pg.seqTuples.size > 0) lines.push(`  PostgreSQL rows read by sequential scans per ${unit}: ${[...pg.seqTuples].map(([table, rows]) => `${table} ${per(rows)}`).join(', ')}`);
    lines.push(
      `  PostgreSQL per ${unit}: ${per(pg.transactions)} transactions, ${per(pg.tuplesReturned)} tuples returned + ${per(pg.tuplesFetched)} fetched (read), ${per(pg.tuplesWritten)} written, ${per(pg.blocksRead, 2)} blocks from disk; backends ${per(pg.backendCpuSeconds * 1000)} ms CPU`,
    );
  }
  if (result.sql) {
    const sorted = [...result.sql].sort((a, b) => b[1] - a[1]);
    const all = sorted.reduce((sum, [, count]) => sum + count, 0);
    lines.push(`  statements per ${unit}: ${per(all)}`);
    for (const [statement, count] of sorted) lines.push(`    ${per(count, 2).padStart(6)}  ${statement}`);
  }
  return lines.join('\n');
}

/** The machine-readable figures (`--json`), for BENCHMARKS.md's tables. */
export function loadSummary(result: LoadResult) {
  const n = result.ok || 1;
  const stepSummary = Object.fromEntries([...result.steps].map(([step, values]) => [step, { p50: percentile(values, 50), p95: percentile(values, 95), p99: percentile(values, 99), perUnit: values.length / n }]));
  return {
    concurrency: result.concurrency,
    ok: result.ok,
    perSecond: result.ok / result.wallSeconds,
    errors: Object.fromEntries([...result.errors].map(([kind, e]) => [kind, e.count])),
    p50: result.totals.length ? percentile(result.totals, 50) : null,
    p95: result.totals.length ? percentile(result.totals, 95) : null,
    p99: result.totals.length ? percentile(result.totals, 99) : null,
    steps: stepSummary,
    requestsPerUnit: (result.serviceRequests + result.wikiRequests) / n,
    cpuMsPerUnit: (result.cpuSeconds * 1000) / n,
    writeCallsPerUnit: result.writeCalls / n,
    driverCpuMsPerUnit: (result.driverCpuSeconds * 1000) / n,
    wikiCpuMsPerUnit: (result.wikiCpuSeconds * 1000) / n,
    peakRssMiB: result.peakRssBytes / 1024 / 1024,
    statements: result.sql && Object.fromEntries([...result.sql].map(([statement, count]) => [statement, count / n])),
    pg: result.pg && {
      transactions: result.pg.transactions / n,
      tuplesRead: (result.pg.tuplesReturned + result.pg.tuplesFetched) / n,
      tuplesReturned: result.pg.tuplesReturned / n,
      tuplesFetched: result.pg.tuplesFetched / n,
      backendCpuMs: (result.pg.backendCpuSeconds * 1000) / n,
      seqScanRows: Object.fromEntries([...result.pg.seqTuples].map(([table, rows]) => [table, rows / n])),
    },
  };
}

/**
 * With `--cpu-prof`: stops the service so that it writes its profile, and says where the CPU time
 * of each measured window went.
 */
export async function describeProfiles(stack: BenchStack, dir: string, results: LoadResult[], unit: string): Promise<string> {
  await stack.stopService();
  const newest = readdirSync(dir)
    .filter((f) => f.endsWith('.cpuprofile'))
    .map((f) => ({ f, at: statSync(join(dir, f)).mtimeMs }))
    .sort((a, b) => b.at - a.at)[0];
  if (!newest) return `no CPU profile was written to ${dir}`;
  const profile = JSON.parse(readFileSync(join(dir, newest.f), 'utf8')) as CpuProfile;
  return results
    .map((r) => `CPU profile of the service (${join(dir, newest.f)}), concurrency ${r.concurrency}:\n${describeBreakdown(analyse(profile, r.window), r.ok, unit)}`)
    .join('\n\n');
}
