// Loaded into the service by `--trace-sql` (node --import): counts the statements the service
// sends to its database, by statement, from the channel the database layer publishes them on
// (src/db/statements.ts). On SIGUSR2 it writes the counts since the last signal to
// $WMS_BENCH_SQL_TRACE (one JSON object per process, appended) and starts again, so the benchmark
// can take the counts of its measured window alone.
import { appendFileSync } from 'node:fs';
import { subscribe } from 'node:diagnostics_channel';

const STATEMENT_CHANNEL = 'wiki-matrix-sso:db-statement';
const out = process.env.WMS_BENCH_SQL_TRACE;
const counts = new Map<string, number>();

/** The statement on one line, and for the provider's table the model it is about. */
function shape({ sql, params }: { sql: string; params: readonly unknown[] }): string {
  const line = sql.replace(/\s+/g, ' ').trim().slice(0, 150);
  return /oidc_payloads/.test(sql) && typeof params[0] === 'string' ? `${line} [${params[0]}]` : line;
}

subscribe(STATEMENT_CHANNEL, (message) => {
  const key = shape(message as { sql: string; params: readonly unknown[] });
  counts.set(key, (counts.get(key) ?? 0) + 1);
});

process.on('SIGUSR2', () => {
  if (out) appendFileSync(out, `${JSON.stringify({ pid: process.pid, counts: Object.fromEntries(counts) })}\n`);
  counts.clear();
});
