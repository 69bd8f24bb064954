// `npm test`: every test tier, in order. A tier whose real parts (PostgreSQL, MediaWiki, Synapse)
// are missing on this machine is reported and left out; under CI (CI=true) a missing part fails.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Tally } from './test-tally.ts';

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
  // Real parts made to fail (a homeserver stopped, a database restarted, a network gone quiet).
  { name: 'faults', dir: 'test/faults', missing: () => undefined },
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
const scratch = mkdtempSync(join(tmpdir(), 'wms-test-'));
const tallyFile = join(scratch, 'tally.json');
const result = spawnSync(
  process.execPath,
  ['--test', '--test-reporter=spec', '--test-reporter-destination=stdout', `--test-reporter=${join(root, 'scripts/test-tally.ts')}`, `--test-reporter-destination=${tallyFile}`, ...selected],
  { cwd: root, stdio: 'inherit' },
);
let tally: Tally | undefined;
try {
  tally = JSON.parse(readFileSync(tallyFile, 'utf8')) as Tally;
} catch {
  process.stderr.write('npm test: the test run ended without a tally (did it crash?)\n');
}
rmSync(scratch, { recursive: true, force: true });

let skippedUnderCi = false;
if (tally) {
  for (const suite of tally.skippedSuites) {
    process.stdout.write(`skipped suite: ${suite.name}${suite.file ? ` (${suite.file.replace(root, '')})` : ''}: ${suite.reason}\n`);
  }
  const suites = tally.skippedSuites.length;
  if (suites > 0) process.stdout.write(`${suites} whole suites skipped (counted once each; their tests never ran)\n`);
  // Under CI nothing may be skipped: a skip there means an install step is missing.
  skippedUnderCi = Boolean(process.env.CI) && suites + tally.skipped > 0;
  if (skippedUnderCi) process.stderr.write('npm test: tests were skipped under CI (see above)\n');
  process.stdout.write(`tests: ${tally.passed} passed, ${tally.failed} failed, ${tally.skipped + suites} skipped\n`);
}
if (incomplete) process.stderr.write('npm test: some tiers could not run under CI (see above)\n');
process.exit(result.status !== 0 || incomplete || !tally || skippedUnderCi ? 1 : 0);
