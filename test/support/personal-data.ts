// Looks for a person in the whole database: every column of every table that can hold text
// (text, varchar, char, json, jsonb and arrays of them), searched for each string as text. A test
// that says "nothing personal remains" asks this, so a table added later is searched too.
import type { Queryable } from '../../src/db/index.ts';

export interface Found {
  table: string;
  column: string;
  needle: string;
  rows: number;
}

const TEXT_TYPES = ['text', 'character varying', 'character', 'json', 'jsonb', 'ARRAY'];

/** Every table and column (in the public schema) that can hold text. */
export async function textColumns(db: Queryable): Promise<{ table: string; column: string }[]> {
  const { rows } = await db.query<{ table_name: string; column_name: string }>(
    `SELECT table_name, column_name FROM information_schema.columns
     WHERE table_schema = 'public' AND data_type = ANY($1) ORDER BY table_name, column_name`,
    [TEXT_TYPES],
  );
  return rows.map((r) => ({ table: r.table_name, column: r.column_name }));
}

/** Where each needle occurs (as a substring of the column's text), with how many rows. */
export async function findText(db: Queryable, needles: readonly string[]): Promise<Found[]> {
  const found: Found[] = [];
  for (const { table, column } of await textColumns(db)) {
    for (const needle of needles) {
      const { rows } = await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM "${table}" WHERE strpos("${column}"::text, $1) > 0`, [needle]);
      if (rows[0]!.n > 0) found.push({ table, column, needle, rows: rows[0]!.n });
    }
  }
  return found;
}
