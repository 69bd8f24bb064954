// `npm test`: every test tier (the jest projects of jest.config.js), in one jest run, closing on
// one line `N passed, N failed, N skipped` read from jest's JSON results. `npm test -- unit e2e`
// runs those tiers; any other argument goes to jest (a file, `--coverage`, `-t <name>`…).
// Skipped suites are named with their reason by scripts/jest-summary.ts; under CI (CI=true) a
// skip fails the run, since there it means an install step is missing.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const TIERS = ['unit', 'integration', 'e2e', 'faults'];
const args = process.argv.slice(2);
const only = args.filter((a) => TIERS.includes(a));
const passThrough = args.filter((a) => !TIERS.includes(a));

/** What jest's --json results say, as far as the closing line needs. */
interface JestResults {
  numPassedTests: number;
  numFailedTests: number;
  numPendingTests: number;
  numTodoTests: number;
  /** Files that failed outside any test (an import that threw, a syntax error). */
  numRuntimeErrorTestSuites: number;
}

function files(tier: string): number {
  const full = join(root, 'test', tier);
  if (!existsSync(full)) return 0;
  return readdirSync(full, { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.test.ts')).length;
}

if (!process.env.TEST_DATABASE_URL) {
  const note = 'TEST_DATABASE_URL is not set: storage tests run on PGlite only (.ci/run also runs them on a PostgreSQL server)';
  if (process.env.CI) {
    process.stderr.write(`npm test: ${note}\n`);
    process.exit(1);
  }
  process.stdout.write(`note: ${note}\n`);
}

const selected = only.length > 0 ? only : TIERS;
for (const tier of selected) process.stdout.write(`== ${tier}: ${files(tier)} files\n`);

const scratch = mkdtempSync(join(tmpdir(), 'wms-test-'));
const resultsFile = join(scratch, 'results.json');
const jest = createRequire(import.meta.url).resolve('jest/bin/jest');
// Jest runs the tests as ES modules, which needs vm modules (.npmrc sets them for npm and npx).
const nodeOptions = [process.env.NODE_OPTIONS, '--experimental-vm-modules'].filter(Boolean).join(' ');
const result = spawnSync(
  process.execPath,
  // Under CI, a handle some test left open (jest runs the files in one process here) must not hold
  // the run past its results: --forceExit ends it, and jest still names the leak in its output.
  [jest, '--selectProjects', ...selected, '--json', `--outputFile=${resultsFile}`, ...(process.env.CI ? ['--ci', '--forceExit'] : []), ...passThrough],
  { cwd: root, stdio: 'inherit', env: { ...process.env, NODE_OPTIONS: nodeOptions } },
);
let results: JestResults | undefined;
try {
  results = JSON.parse(readFileSync(resultsFile, 'utf8')) as JestResults;
} catch {
  process.stderr.write('npm test: jest ended without its results (did it crash?)\n');
}
rmSync(scratch, { recursive: true, force: true });

if (results) {
  const failed = results.numFailedTests + results.numRuntimeErrorTestSuites;
  const skipped = results.numPendingTests + results.numTodoTests;
  process.stdout.write(`${results.numPassedTests} passed, ${failed} failed, ${skipped} skipped\n`);
}
process.exit(result.status !== 0 || !results ? 1 : 0);
