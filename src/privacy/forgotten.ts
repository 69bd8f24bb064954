// The rest of a forget, done by the worker's leader after the passes: a forgotten person's Matrix
// ID that still held privileges the service granted stays in `forgotten_matrix_ids` until the
// next full pass has taken them back (the account no longer maps to the ID, so the pass undoes
// what the service did for it). The audit entries that pass writes name the Matrix ID; here they
// are re-keyed to the person's opaque id, and the row goes once no record or change in flight
// mentions the ID any more.
import type { Config } from '../config/load.ts';
import type { Database } from '../db/index.ts';
import { Scrubber } from './scrub.ts';

export interface SettleResult {
  /** Audit entries re-keyed (or whose text was scrubbed) on this call. */
  reKeyed: number;
  /** Matrix IDs whose forget is complete: nothing of the service's is left on them. */
  settled: string[];
  /** Matrix IDs that someone signed in with again: theirs now, not forgotten any more. */
  reclaimed: string[];
}

export async function settleForgotten(db: Database, config: Config): Promise<SettleResult> {
  const result: SettleResult = { reKeyed: 0, settled: [], reclaimed: [] };
  const { rows } = await db.query<{ user_id: string; opaque_id: string; forgotten_at: Date }>('SELECT user_id, opaque_id, forgotten_at FROM forgotten_matrix_ids ORDER BY forgotten_at, user_id');
  for (const row of rows) {
    await db.transaction(async (tx) => {
      // A person who signed in again and got this Matrix ID back (Synapse knows them by `sub`):
      // what happens to it from then on is their new account's.
      const { rows: mapped } = await tx.query<{ created_at: Date }>(
        "SELECT min(created_at) AS created_at FROM accounts WHERE matrix_user_id = $1 OR '@' || localpart || ':' || $2 = $1",
        [row.user_id, config.matrix.server_name],
      );
      const reclaimedAt = mapped[0]?.created_at ?? null;
      const scrubber = new Scrubber({ names: [], matrixIds: [row.user_id] }, row.opaque_id);
      // Entries since the forget, through the index of entries that still hold details.
      const { rows: entries } = await tx.query<{ id: string; user_id: string | null; cause: unknown; detail: unknown; error: string | null }>(
        `SELECT id::text AS id, user_id, cause, detail, error FROM moderation_audit
         WHERE at >= $3 AND ($4::timestamptz IS NULL OR at < $4)
           AND (user_id IS NOT NULL OR cause IS NOT NULL OR error IS NOT NULL OR detail <> '{}'::jsonb)
           AND (user_id = $1 OR detail::text LIKE ANY($2) OR error LIKE ANY($2))`,
        [row.user_id, scrubber.likePatterns, row.forgotten_at, reclaimedAt],
      );
      for (const entry of entries) {
        const cause = scrubber.json(entry.cause);
        const detail = scrubber.json(entry.detail);
        const error = entry.error === null ? null : scrubber.text(entry.error);
        const userId = entry.user_id === row.user_id ? row.opaque_id : entry.user_id;
        if (userId === entry.user_id && !cause.changed && !detail.changed && error === entry.error) continue;
        await tx.query('UPDATE moderation_audit SET user_id = $2, cause = $3, detail = $4, error = $5 WHERE id = $1::bigint', [
          entry.id, userId, cause.value === null ? null : JSON.stringify(cause.value), JSON.stringify(detail.value), error,
        ]);
        result.reKeyed += 1;
      }
      if (reclaimedAt !== null) {
        await tx.query('DELETE FROM forgotten_matrix_ids WHERE user_id = $1', [row.user_id]);
        result.reclaimed.push(row.user_id);
        return;
      }
      const { rows: left } = await tx.query(
        `SELECT 1 FROM moderation_records WHERE user_id = $1
         UNION ALL SELECT 1 FROM moderation_intents WHERE action::text LIKE ANY($2) LIMIT 1`,
        [row.user_id, scrubber.likePatterns],
      );
      if (left.length === 0) {
        await tx.query('DELETE FROM forgotten_matrix_ids WHERE user_id = $1', [row.user_id]);
        result.settled.push(row.user_id);
      }
    });
  }
  return result;
}
