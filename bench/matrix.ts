// The figures BENCHMARKS.md tabulates, in one run: bench:login on PostgreSQL and PGlite with 0 and
// 100,000 accounts stored, at concurrency 1, 8, 32 and 64, and bench:token on both backends, each
// run writing its JSON to --out; then the tables, as Markdown, on stdout. Every run is bounded
// (its own time budget); the whole takes about (warm-up + duration) × 20 plus start-ups.
//
//   node bench/matrix.ts --out DIR [--duration S] [--warmup S] [--service-root DIR] [--only login|token] [-- extra bench options]
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

const { values, positionals } = parseArgs({
  options: { out: { type: 'string' }, duration: { type: 'string', default: '30' }, warmup: { type: 'string', default: '5' }, 'service-root': { type: 'string' }, only: { type: 'string' }, tables: { type: 'boolean' } },
  allowPositionals: true,
});
if (!values.out) {
  process.stderr.write('usage: node bench/matrix.ts --out DIR [--duration S] [--warmup S] [--service-root DIR] [--only login|token] [--tables]\n');
  process.exit(2);
}
const out = values.out;
mkdirSync(out, { recursive: true });
const root = new URL('..', import.meta.url).pathname;
const databaseUrl = process.env.TEST_DATABASE_URL;
const backends = [...(databaseUrl ? [['postgres', ['--database-url', databaseUrl]] as const] : []), ['pglite', ['--pglite']] as const];
const common = ['--duration', values.duration!, '--warmup', values.warmup!, ...(values['service-root'] ? ['--service-root', values['service-root']] : []), ...positionals];

function run(script: string, args: string[], json: string): void {
  if (values.tables) return;
  process.stderr.write(`\n== ${script} ${args.join(' ')}\n`);
  const result = spawnSync(process.execPath, [join(root, script), ...args, ...common, '--json', json], { stdio: ['ignore', 'inherit', 'inherit'] });
  if (result.status !== 0) process.stderr.write(`(${script} exited with ${result.status})\n`);
}

for (const [name, args] of backends) {
  for (const accounts of [0, 100_000]) {
    if (values.only !== 'token') run('bench/login.ts', [...args, '--accounts', String(accounts), '--concurrency', '1,8,32,64'], join(out, `login-${name}-${accounts}.json`));
  }
  if (values.only !== 'login') run('bench/token.ts', [...args, '--accounts', '100000', '--concurrency', '8,32'], join(out, `token-${name}.json`));
}

interface Summary {
  concurrency: number;
  perSecond: number;
  p50: number | null;
  p95: number | null;
  p99: number | null;
  errors: Record<string, number>;
  requestsPerUnit: number;
  cpuMsPerUnit: number;
  peakRssMiB: number;
  pg?: { transactions: number; tuplesRead: number; backendCpuMs: number };
}

const int = (n: number | null | undefined) => (n === null || n === undefined ? '-' : Math.round(n).toLocaleString('en'));
const one = (n: number | null | undefined) => (n === null || n === undefined ? '-' : n.toFixed(1));
const lines = [
  '| benchmark | backend | accounts | concurrency | per second | p50 ms | p95 ms | p99 ms | errors | requests | service CPU ms | peak RSS MiB | PG transactions | PG tuples read | PG CPU ms |',
  '|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|',
];
for (const [name] of backends) {
  for (const [file, label, accounts] of [[`login-${name}-0.json`, 'login', '0'], [`login-${name}-100000.json`, 'login', '100k'], [`token-${name}.json`, 'token', '100k']] as const) {
    const path = join(out, file);
    if (!existsSync(path)) continue;
    const data = JSON.parse(readFileSync(path, 'utf8')) as { results: Summary[] };
    for (const r of data.results) {
      const errors = Object.values(r.errors).reduce((a, b) => a + b, 0);
      lines.push(
        `| ${label} | ${name === 'postgres' ? 'PostgreSQL' : 'PGlite'} | ${accounts} | ${r.concurrency} | ${one(r.perSecond)} | ${int(r.p50)} | ${int(r.p95)} | ${int(r.p99)} | ${errors} | ${one(r.requestsPerUnit)} | ${one(r.cpuMsPerUnit)} | ${int(r.peakRssMiB)} | ${one(r.pg?.transactions)} | ${int(r.pg?.tuplesRead)} | ${one(r.pg?.backendCpuMs)} |`,
      );
    }
  }
}
process.stdout.write(`${lines.join('\n')}\n`);
