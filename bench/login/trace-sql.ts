// Loaded into the service by `--trace-sql` (node --import): counts the statements the service
// sends to PostgreSQL, by statement, without changing what it sends. On SIGUSR2 it writes the
// counts since the last signal to $WMS_BENCH_SQL_TRACE (one JSON object per process, appended)
// and starts again, so the benchmark can take the counts of its measured window alone.
import { appendFileSync } from 'node:fs';
import pg from 'pg';

const out = process.env.WMS_BENCH_SQL_TRACE;
const counts = new Map<string, number>();

/** The statement without its literal whitespace, so one statement is one line however it was written. */
const shape = (text: string) => text.replace(/\s+/g, ' ').trim().slice(0, 160);

const original = pg.Client.prototype.query as (this: pg.Client, ...args: unknown[]) => unknown;
pg.Client.prototype.query = function traced(this: pg.Client, ...args: unknown[]) {
  const first = args[0] as string | { text?: string; name?: string } | undefined;
  const text = typeof first === 'string' ? first : (first?.text ?? first?.name ?? '?');
  const key = shape(text);
  counts.set(key, (counts.get(key) ?? 0) + 1);
  return original.apply(this, args);
} as typeof pg.Client.prototype.query;

process.on('SIGUSR2', () => {
  if (out) appendFileSync(out, `${JSON.stringify({ pid: process.pid, counts: Object.fromEntries(counts) })}\n`);
  counts.clear();
});
