// A jest reporter for what jest's own summary leaves out: which suites were skipped and why (a
// real part is missing here), and, under CI (CI=true), that anything skipped fails the run, since
// there a skip means an install step is missing. test/support/suites.ts writes the skipped suites
// to the file this reporter names in the environment, which the test workers inherit.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const SKIPPED_SUITES_ENV = 'WMS_SKIPPED_SUITES_FILE';

interface SkippedSuite {
  name: string;
  reason: string;
  file: string;
}

interface Results {
  numPendingTests: number;
  numTodoTests: number;
}

export default class JestSummary {
  #error: Error | undefined;
  #scratch: string | undefined;
  readonly #file: string;

  constructor() {
    const given = process.env[SKIPPED_SUITES_ENV];
    if (given) this.#file = given;
    else {
      this.#scratch = mkdtempSync(join(tmpdir(), 'wms-jest-'));
      this.#file = join(this.#scratch, 'skipped-suites.jsonl');
      process.env[SKIPPED_SUITES_ENV] = this.#file;
    }
  }

  onRunComplete(_contexts: unknown, results: Results): void {
    const suites = readSkipped(this.#file);
    if (this.#scratch) rmSync(this.#scratch, { recursive: true, force: true });
    for (const suite of suites) process.stderr.write(`skipped suite: ${suite.name} (${suite.file}): ${suite.reason}\n`);
    const skipped = results.numPendingTests + results.numTodoTests;
    if (process.env.CI && (skipped > 0 || suites.length > 0)) {
      this.#error = new Error(`under CI nothing may be skipped, and ${skipped} ${skipped === 1 ? 'test was' : 'tests were'} (see above)`);
      process.stderr.write(`${this.#error.message}\n`);
    }
  }

  getLastError(): Error | undefined {
    return this.#error;
  }
}

function readSkipped(file: string): SkippedSuite[] {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return [];
  }
  return text.split('\n').filter(Boolean).map((line) => JSON.parse(line) as SkippedSuite);
}
