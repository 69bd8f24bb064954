// Operational data about people is kept `retention.days` (180 by default, the project's standard)
// and then purged by the worker's leader. What goes, and why the rest stays, is in the README
// (Privacy and retention); in short:
// - sign-ins at the wiki, and the provider's sessions, grants, codes and tokens, issued longer ago
//   than that (most have long expired; an expired one is deleted whatever its age);
// - cached wiki profiles (edit count, groups, registration, email) not refreshed by a sign-in since;
// - the details of older audit entries: who (the Matrix ID), why (the wiki cause, with the
//   blocker's name and the reason), the error and the detail. What was done, where, when and
//   with what outcome stays, so counts of actions stay right.
// Accounts are not purged: a Matrix ID must keep meaning the same wiki account for as long as
// the homeserver knows it. Moderation records stay while their sanction or privilege lasts.
import type { Queryable } from '../db/index.ts';

export interface RetentionResult {
  signIns: number;
  providerRecords: number;
  wikiProfiles: number;
  /** Audit entries whose details were removed. */
  auditEntries: number;
}

/** Audit entries are stripped this many at a time, so no statement holds locks for long. */
const AUDIT_BATCH = 1000;

const DAY_MS = 86_400_000;

/** Purges what is older than `days` at `now`; says how much went. */
export async function purgeExpiredPersonalData(db: Queryable, options: { days: number; now: Date }): Promise<RetentionResult> {
  if (!Number.isInteger(options.days) || options.days < 1) throw new RangeError(`retention is a whole number of days, at least 1, not ${options.days}`);
  const { now } = options;
  const cutoff = new Date(now.getTime() - options.days * DAY_MS);
  // A sign-in expires minutes after it starts, so one that expired before the cutoff began before it.
  const signIns = (await db.query('DELETE FROM wiki_logins WHERE expires_at < $1', [cutoff])).rowCount;
  const providerRecords = (await db.query(
    `DELETE FROM oidc_payloads WHERE expires_at <= $1
       OR CASE WHEN jsonb_typeof(payload->'iat') = 'number' THEN (payload->>'iat')::numeric < $2 ELSE false END`,
    [now, Math.floor(cutoff.getTime() / 1000)],
  )).rowCount;
  const wikiProfiles = (await db.query('DELETE FROM wiki_profiles WHERE fetched_at < $1', [cutoff])).rowCount;
  let auditEntries = 0;
  for (;;) {
    // The predicate is the partial index's (moderation_audit_detailed_at): stripped entries leave it.
    const { rowCount } = await db.query(
      `UPDATE moderation_audit SET user_id = NULL, cause = NULL, error = NULL, detail = '{}'::jsonb
       WHERE id IN (SELECT id FROM moderation_audit
                    WHERE at < $1 AND (user_id IS NOT NULL OR cause IS NOT NULL OR error IS NOT NULL OR detail <> '{}'::jsonb)
                    ORDER BY at LIMIT $2)`,
      [cutoff, AUDIT_BATCH],
    );
    auditEntries += rowCount;
    if (rowCount < AUDIT_BATCH) break;
  }
  return { signIns, providerRecords, wikiProfiles, auditEntries };
}
