// Runs before each test file. node:test gave a test as long as it took; jest's default of 5 s is
// too short for PGlite's first start on a busy machine, let alone Synapse. A file that needs more
// says so with jest.setTimeout, as the e2e and faults files do.
import { expect, jest } from '@jest/globals';

const TIMEOUT_MS: Record<string, number> = { unit: 60_000, integration: 120_000, e2e: 240_000, faults: 600_000 };

const tier = /\/test\/([^/]+)\//.exec(expect.getState().testPath ?? '')?.[1] ?? '';
jest.setTimeout(TIMEOUT_MS[tier] ?? 60_000);
