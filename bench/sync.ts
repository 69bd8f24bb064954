// `npm run bench:sync`: what moderation mirroring costs, measured (not asserted).
//  (a) block → ban latency with a real MediaWiki, a real Synapse and the worker loop;
//  (b) Matrix requests of a full pass with nothing to do: 10 000 users × 100 rooms on an
//      in-memory homeserver, and a smaller size on the real Synapse.
// Loopback only; every process it starts is stopped, also on Ctrl-C and when time runs out.
// Sizes: BENCH_BLOCKS, BENCH_ROOMS, BENCH_POLL_S (a); BENCH_USERS, BENCH_STEADY_ROOMS (b, in memory);
// BENCH_REAL_USERS, BENCH_REAL_ROOMS (b, Synapse).
import { blockToBanLatency, type LatencyResult } from './sync/block-latency.ts';
import { checkDeadline, Cleanups, mib, ms, percentile } from './sync/common.ts';
import { steadyPassInMemory, steadyPassOnSynapse, type SteadyResult } from './sync/steady-pass.ts';
import { mediawikiAvailable } from '../test/support/mediawiki.ts';
import { startSynapse, synapseAvailable, type Synapse } from '../test/support/synapse.ts';

const int = (name: string, fallback: number) => {
  const value = Number(process.env[name] ?? fallback);
  if (!Number.isInteger(value) || value < 1) throw new Error(`${name} must be a positive integer, not ${process.env[name]}`);
  return value;
};

const sizes = {
  blocks: int('BENCH_BLOCKS', 20),
  rooms: int('BENCH_ROOMS', 50),
  pollIntervalS: int('BENCH_POLL_S', 1),
  users: int('BENCH_USERS', 10_000),
  steadyRooms: int('BENCH_STEADY_ROOMS', 100),
  realUsers: int('BENCH_REAL_USERS', 100),
  realRooms: int('BENCH_REAL_ROOMS', 10),
};
/** The whole run stays under five minutes; a step still running then is abandoned. */
const BUDGET_MS = 270_000;
const deadline = Date.now() + BUDGET_MS;
const started = performance.now();

const say = (line: string) => process.stderr.write(`[${((performance.now() - started) / 1000).toFixed(1).padStart(5)} s] ${line}\n`);

const cleanups = new Cleanups(say);
const cleanUp = () => cleanups.run();
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    say(`${signal}: stopping`);
    void cleanUp().finally(() => process.exit(130));
  });
}
// Past the budget (plus time to clean up), whatever is still running is abandoned.
setTimeout(() => {
  say('out of time: stopping');
  void cleanUp().finally(() => process.exit(2));
}, BUDGET_MS + 20_000).unref();

function steadyRows(r: SteadyResult): string[][] {
  return [
    [`(b) no-change full pass, ${r.gateway}`, `${r.users} users × ${r.rooms} rooms`, `${r.requests} Matrix requests (${(r.requests / r.rooms).toFixed(2)} per room), ${r.actions} actions`],
    ['    wall time', '', `${ms(r.planMs + r.applyMs)} (plan ${ms(r.planMs)}, apply ${ms(r.applyMs)})`],
    ['    memory', '', `heap ${mib(r.heapBefore)} at start, peak ${mib(r.heapPeak)}; RSS peak ${mib(r.rssPeak)}`],
    ['    first pass (sets bans and levels)', '', `${r.setup.requests} requests for ${r.setup.actions} actions, ${ms(r.setup.wallMs)}`],
  ];
}

function latencyRows(r: LatencyResult): string[][] {
  const of = (pick: (s: LatencyResult['samples'][number]) => number) => r.samples.map(pick);
  const latency = of((s) => s.latencyMs);
  const requests = of((s) => s.requests);
  const spread = (values: number[]) => `p50 ${ms(percentile(values, 50))}, p99 ${ms(percentile(values, 99))}, max ${ms(Math.max(...values))}`;
  const size = `n=${r.samples.length} blocks, ${r.rooms} rooms, poll ${r.pollIntervalS} s`;
  return [
    ['(a) block → ban in every room', size, `${spread(latency)}${r.samples.length < 100 ? ' (under 100 blocks, p99 is the slowest)' : ''}`],
    ['    of which: block → pass starts', '', spread(of((s) => s.detectMs))],
    ['    of which: pass (snapshots + bans)', '', spread(of((s) => s.applyMs))],
    ['    Matrix requests per block', '', `min ${Math.min(...requests)}, max ${Math.max(...requests)} (${r.rooms} snapshots + ${r.rooms} bans expected)`],
    ['    rooms holding every ban at the end', '', `${r.roomsVerified} of ${r.rooms}`],
  ];
}

function table(rows: string[][]): string {
  const widths = [0, 1].map((c) => Math.max(...rows.map((row) => row[c]!.length)));
  return rows.map((row) => row.map((cell, c) => (c < 2 ? cell.padEnd(widths[c]!) : cell)).join('  ')).join('\n');
}

/** Runs one part; a part that fails leaves a row saying so, and the others still run. */
async function part(rows: string[][], name: string, run: () => Promise<string[][]>): Promise<void> {
  try {
    rows.push(...(await run()));
  } catch (error) {
    say(`${name} failed: ${error instanceof Error ? error.stack : String(error)}`);
    rows.push([name, '', `FAILED: ${error instanceof Error ? error.message : String(error)}`]);
  }
}

async function main(): Promise<number> {
  const inMemory: string[][] = [];
  const real: string[][] = [];
  const latency: string[][] = [];
  // The in-memory pass first, so its memory figures are not those of the rest of the run.
  await part(inMemory, '(b) no-change full pass, in-memory', async () => {
    say(`(b) in-memory homeserver: ${sizes.users} users × ${sizes.steadyRooms} rooms (a first pass sets bans and levels, the second is measured)`);
    return steadyRows(await steadyPassInMemory({ users: sizes.users, rooms: sizes.steadyRooms, sysops: 5, blocked: 5 }));
  });

  const missing = synapseAvailable() ?? mediawikiAvailable();
  if (missing) {
    latency.push(['(a) and (b) on Synapse', '', `skipped: ${missing}`]);
  } else {
    say('starting Synapse');
    const synapse: Synapse = await startSynapse();
    cleanups.add(() => synapse.stop());
    say(`Synapse ${synapse.version} at ${synapse.baseUrl}`);

    await part(latency, '(a) block → ban', async () => {
      say(`(a) block → ban: ${sizes.blocks} blocks, ${sizes.rooms} rooms, poll every ${sizes.pollIntervalS} s`);
      const result = await blockToBanLatency({ synapse, rooms: sizes.rooms, blocks: sizes.blocks, pollIntervalS: sizes.pollIntervalS, deadline, cleanups, progress: say });
      say(`(a) setup took ${ms(result.setupMs)}`);
      return latencyRows(result);
    });
    await part(real, '(b) no-change full pass, Synapse', async () => {
      checkDeadline(deadline, 'starting (b) on Synapse');
      say(`(b) Synapse: ${sizes.realUsers} users × ${sizes.realRooms} rooms`);
      return steadyRows(await steadyPassOnSynapse(synapse, { users: sizes.realUsers, rooms: sizes.realRooms, sysops: 3, blocked: 3 }));
    });
  }

  await cleanUp();
  const rows = [...latency, ...inMemory, ...real];
  process.stdout.write(`\nSync benchmark (${((performance.now() - started) / 1000).toFixed(0)} s, Node ${process.version})\n\n${table(rows)}\n`);
  return rows.some((row) => row[2]!.startsWith('FAILED')) ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  async (error) => {
    say(`failed: ${error instanceof Error ? error.stack : String(error)}`);
    await cleanUp();
    process.exit(1);
  },
);
