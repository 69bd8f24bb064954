import { fileURLToPath } from 'node:url';

/** The generated JSON Schema, kept in sync with the zod schema by a test. */
export const SCHEMA_PATH = fileURLToPath(new URL('../../config/config.schema.json', import.meta.url));
