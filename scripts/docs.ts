// `npm run docs`: regenerates what is derived from the configuration schema — the JSON Schema in
// config/ and the reference table in the README. A unit test fails when either is stale.
import { readFileSync, writeFileSync } from 'node:fs';
import { configJsonSchema, withReference } from '../src/config/generate.ts';
import { SCHEMA_PATH } from '../src/config/paths.ts';

const README = new URL('../README.md', import.meta.url);
writeFileSync(SCHEMA_PATH, `${JSON.stringify(configJsonSchema(), null, 2)}\n`);
writeFileSync(README, withReference(readFileSync(README, 'utf8')));
process.stdout.write(`updated ${SCHEMA_PATH} and README.md\n`);
