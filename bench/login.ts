// `npm run bench:login`: sign-ins per second, measured (not asserted). N virtual browsers, each a
// fresh browser per sign-in, do the whole authorization code flow with PKCE against a service this
// run starts (`serve`, on PostgreSQL or PGlite) and the wiki's OAuth 2 double: authorize → the
// provider's pages → the wiki → callback → code → token → userinfo, the ID token verified.
// Prints logins/s, p50/p95/p99 of the flow and of each hop, errors by kind, the service's CPU per
// login and peak RSS, and PostgreSQL's transactions and tuples read per login.
// `npm run bench:login -- --help` lists the options (concurrency, duration, warm-up, accounts…).
import { writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { Http } from './login/http.ts';
import { discover, signIn } from './login/flow.ts';
import { describeLoad, describeProfiles, loadSummary, runLoad, type LoadResult } from './login/load.ts';
import { parseOptions, runBenchmark } from './login/options.ts';
import { describeMemory } from './login/memory-report.ts';
import { startBenchStack } from './login/stack.ts';

const options = parseOptions(process.argv.slice(2));
const budgetMs = options.concurrency.length * (options.warmupS + options.durationS + 30) * 1000 + 180_000;

runBenchmark(budgetMs, async ({ cleanups, say }) => {
  say(`login benchmark: ${options.databaseUrl ? 'PostgreSQL' : 'PGlite'}, ${options.accounts.toLocaleString('en')} accounts stored, ${options.users.toLocaleString('en')} editors, ${options.workers} serve process${options.workers > 1 ? 'es' : ''}`);
  const stack = await startBenchStack({ ...options, cleanups, say });
  const http = new Http();
  cleanups.add(async () => http.close());
  const provider = await discover(http, stack.issuer, options.timeoutS * 1000);

  // The service's memory idle after its start is the last sample before the load.
  const loadStartedAt = Date.now();
  const results = [];
  const raw: LoadResult[] = [];
  const text: string[] = [];
  for (const concurrency of options.concurrency) {
    say(`concurrency ${concurrency}: warm-up ${options.warmupS} s, then ${options.durationS} s measured`);
    const result = await runLoad({ concurrency, warmupMs: options.warmupS * 1000, durationMs: options.durationS * 1000, work: () => signIn(provider), stack, say });
    const described = describeLoad(result, 'login');
    text.push(described);
    say(`concurrency ${concurrency}: ${(result.ok / result.wallSeconds).toFixed(1)} logins/s`);
    results.push(loadSummary(result));
    raw.push(result);
  }

  const heading = [
    `Login benchmark: ${stack.backend}, ${options.workers} serve process${options.workers > 1 ? 'es' : ''} (pool_max ${options.poolMax}${options.nodeFlags.length > 0 ? `, node ${options.nodeFlags.join(' ')}` : ''}), ${options.accounts.toLocaleString('en')} accounts stored, ${options.users.toLocaleString('en')} editors, warm-up ${options.warmupS} s`,
    `Node ${process.version}, ${cpus().length} cores, load average ${loadavg().map((l) => l.toFixed(2)).join(' ')} at the end${options.serviceRoot ? `, service from ${options.serviceRoot}` : ''}`,
  ].join('\n');
  if (stack.warnings.length) text.push(`The service logged ${stack.warnings.length} warnings or errors; the first ones:\n${stack.warnings.slice(0, 10).map((l) => `  ${l.slice(0, 400)}`).join('\n')}`);
  if (options.memory) text.push(describeMemory(stack.memorySamples(), loadStartedAt));
  if (options.cpuProfileDir) text.push(await describeProfiles(stack, options.cpuProfileDir, raw, 'login'));
  process.stdout.write(`\n${heading}\n\n${text.join('\n\n')}\n`);
  if (options.json) writeFileSync(options.json, `${JSON.stringify({ benchmark: 'login', backend: stack.backend.split(' ')[0], accounts: options.accounts, workers: options.workers, durationS: options.durationS, loadAverage: loadavg(), results }, null, 2)}\n`);
  return results.some((r) => Object.keys(r.errors).length > 0 || r.ok === 0) ? 1 : 0;
});
