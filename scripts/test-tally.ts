// A node:test reporter that counts what the spec reporter's summary leaves out: a suite skipped
// as a whole (its real part is missing) is "skipped 0" there, because its tests never register.
// It writes one JSON object to its destination; scripts/test.ts reads it for the closing line.
interface TestEventData {
  name: string;
  file?: string;
  skip?: string | boolean;
  todo?: string | boolean;
  details: { type?: 'suite' | 'test'; error?: { failureType?: string } };
}

type TestEvent = { type: string; data: TestEventData };

export interface Tally {
  passed: number;
  failed: number;
  skipped: number;
  todo: number;
  /** Suites skipped whole: their tests are not counted anywhere else. */
  skippedSuites: Array<{ name: string; file: string | undefined; reason: string }>;
}

export default async function* tally(source: AsyncIterable<TestEvent>): AsyncGenerator<string> {
  const t: Tally = { passed: 0, failed: 0, skipped: 0, todo: 0, skippedSuites: [] };
  for await (const { type, data } of source) {
    if (type !== 'test:pass' && type !== 'test:fail') continue;
    const suite = data.details.type === 'suite';
    if (data.skip !== undefined && data.skip !== false) {
      if (suite) t.skippedSuites.push({ name: data.name, file: data.file, reason: typeof data.skip === 'string' ? data.skip : 'skipped' });
      else t.skipped += 1;
    } else if (data.todo !== undefined && data.todo !== false) t.todo += 1;
    else if (type === 'test:pass') t.passed += suite ? 0 : 1;
    // A suite fails on its own only when a hook or its body failed, not because a test in it did.
    else if (!suite || data.details.error?.failureType !== 'subtestsFailed') t.failed += 1;
  }
  yield `${JSON.stringify(t)}\n`;
}
