// `npm test`: every test tier, in order. A tier whose real parts (PostgreSQL, MediaWiki, Synapse)
// are missing on this machine is reported and left out; under CI (CI=true) a missing part fails.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

interface Tier {
  name: string;
  dir: string;
  /** Why the tier cannot run here, or undefined when it can. */
  missing(): string | undefined;
}

const root = new URL('..', import.meta.url).pathname;
const only = process.argv.slice(2);

const tiers: Tier[] = [
  { name: 'unit', dir: 'test/unit', missing: () => undefined },
  { name: 'integration', dir: 'test/integration', missing: () => undefined },
  { name: 'e2e', dir: 'test/e2e', missing: () => undefined },
];

function files(dir: string): string[] {
  const full = join(root, dir);
  if (!existsSync(full)) return [];
  return readdirSync(full, { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('.test.ts'))
    .sort()
    .map((f) => join(dir, f));
}

if (!process.env.TEST_DATABASE_URL) {
  const note = 'TEST_DATABASE_URL is not set: storage tests run on PGlite only (.ci/run also runs them on a PostgreSQL server)';
  if (process.env.CI) {
    process.stderr.write(`npm test: ${note}\n`);
    process.exit(1);
  }
  process.stdout.write(`note: ${note}\n`);
}

let incomplete = false;
const selected: string[] = [];
for (const tier of tiers) {
  if (only.length > 0 && !only.includes(tier.name)) continue;
  const why = tier.missing();
  if (why) {
    process.stdout.write(`== ${tier.name}: not run here: ${why}\n`);
    if (process.env.CI) incomplete = true;
    continue;
  }
  const list = files(tier.dir);
  process.stdout.write(`== ${tier.name}: ${list.length} files\n`);
  selected.push(...list);
}
// One run, so that the closing summary counts every test of every tier.
const result = spawnSync(process.execPath, ['--test', '--test-reporter=spec', ...selected], { cwd: root, stdio: 'inherit' });
if (incomplete) process.stderr.write('npm test: some tiers could not run under CI (see above)\n');
process.exit(result.status !== 0 || incomplete ? 1 : 0);
