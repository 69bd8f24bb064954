// Two things node's test runner had and jest lacks: a skip that says why, and clean-up registered
// from inside one test.
import { appendFileSync } from 'node:fs';
import { afterEach, expect, type describe, type test } from '@jest/globals';

/** Where `skippable` writes the suites it skipped, one JSON object a line (set by jest.config.js). */
export const SKIPPED_SUITES_ENV = 'WMS_SKIPPED_SUITES_FILE';

export interface SkippedSuite {
  name: string;
  reason: string;
  /** The test file, relative to the repository. */
  file: string;
}

type Skippable = typeof describe | typeof test;

/**
 * `describe` (or `test`) as it is, or its `.skip` when `skip` is a reason (or true). The reason is
 * recorded for the run's summary, which names every skipped suite and why: jest itself only
 * counts skipped tests, and a suite left out because its real part is missing must say so.
 */
export function skippable<T extends Skippable>(fn: T, skip: string | boolean | undefined): T {
  if (!skip) return fn;
  const reason = typeof skip === 'string' ? skip : 'skipped';
  const skipped = ((name: string, body: () => void, timeout?: number) => {
    record({ name, reason, file: testFile() });
    return (fn.skip as (name: string, body: () => void, timeout?: number) => void)(name, body, timeout);
  }) as unknown as T;
  return skipped;
}

function testFile(): string {
  const path = expect.getState().testPath ?? '';
  const root = new URL('../../', import.meta.url).pathname;
  return path.startsWith(root) ? path.slice(root.length) : path;
}

function record(suite: SkippedSuite): void {
  const file = process.env[SKIPPED_SUITES_ENV];
  if (file) appendFileSync(file, `${JSON.stringify(suite)}\n`);
}

const cleanups: Array<() => unknown> = [];

afterEach(async () => {
  const errors: unknown[] = [];
  for (const cleanup of cleanups.splice(0).reverse()) {
    try {
      await cleanup();
    } catch (error) {
      errors.push(error);
    }
  }
  if (errors.length === 1) throw errors[0];
  if (errors.length > 1) throw new AggregateError(errors, `${errors.length} clean-ups failed`);
});

/** Runs `cleanup` when the current test ends, passed or failed (last registered, first run). */
export function afterThisTest(cleanup: () => unknown): void {
  cleanups.push(cleanup);
}
