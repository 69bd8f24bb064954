// Forgetting a person (a right-to-erasure request, or an operator's decision): everything the
// service keeps about them goes, in one transaction, except what moderation still needs, which
// keeps no name.
//
// - Erased: the account (username, display name, former name, localpart, Matrix ID), the cached
//   wiki profile (edit count, groups, registration date, email), sign-ins, the provider's
//   sessions, grants, codes and tokens, back-channel logouts still to send, and the record that a
//   sanction ended their sessions (the tokens it guarded are gone with the rest).
// - Kept, under an opaque id (`forgotten-…`): their audit entries, so counts of actions stay
//   right; names, Matrix IDs, email and central id in those entries' text are replaced by the
//   opaque id too, and so are mentions of the person in other entries and records (a block
//   reason naming them, a cause saying they blocked someone).
// - Sanctions in force stay in Matrix: bans, published policy rules and suspensions the service
//   placed on their Matrix ID are handed over to the room's moderators (the service's records of
//   them go, so no later pass lifts them because the account is no longer known). A person who
//   signs in again while the wiki sanction lasts gets a new account, and the service recognises
//   its own bans by their reason and takes them back.
// - Privileges the service granted (power levels from wiki groups, gated-room invitations) are
//   taken back by the next full pass, as for any Matrix ID no account maps to: their records keep
//   only the Matrix ID until then (`forgotten_matrix_ids`), and the entries that pass writes are
//   re-keyed to the opaque id afterwards (see forgotten.ts).
import { randomBytes } from 'node:crypto';
import { wikiIdOf } from '../compose.ts';
import type { Config } from '../config/load.ts';
import type { Database, Queryable } from '../db/index.ts';
import { AppError } from '../http/errors.ts';
import { matrixIdsOf } from '../identity/accounts.ts';
import { ModerationAuditLog } from '../moderation/records.ts';
import { findPerson, type Person } from './people.ts';
import { Scrubber } from './scrub.ts';

export interface ForgetDeps {
  db: Database;
  config: Config;
  clock?: () => Date;
}

export interface ForgetOptions {
  /** Who asked for it (an admin's name, the admin API's caller): kept in the forget's audit entry. */
  performedBy: string;
  /** Work everything out and change nothing. */
  dryRun?: boolean;
}

/** A sanction the service placed that stays in Matrix, no longer the service's to lift. */
export interface HandedOver {
  kind: 'ban' | 'policy_rule' | 'suspension' | 'lock';
  /** null for suspensions, which are homeserver-wide. */
  roomId: string | null;
  userId: string;
  /** What the wiki said: the sanction's kind, block id and expiry, so a moderator knows when it ends. */
  cause: { kind: string; blockId: number | null; expiry: string | null };
}

/** A privilege the service granted, which the next full pass takes back. */
export interface TakenBack {
  kind: 'level' | 'invite';
  roomId: string;
  userId: string;
  level: number | null;
}

export interface ForgetResult {
  dryRun: boolean;
  /** Who was forgotten, as they were known; for the caller's eyes only, never stored. */
  person: { wiki: string; centralId: string; username: string; displayName: string; matrixIds: string[] };
  /** What the person's audit entries are kept under from now on. */
  opaqueId: string;
  erased: {
    accounts: number;
    wikiProfiles: number;
    signIns: number;
    /** Sessions, grants, codes and tokens. */
    providerRecords: number;
    pendingLogouts: number;
    sessionEnds: number;
  };
  audit: {
    /** The person's own entries, now under the opaque id. */
    reKeyed: number;
    /** Other entries, records and accounts whose text named the person. */
    mentionsRemoved: number;
  };
  handedOver: HandedOver[];
  takenBack: TakenBack[];
}

export class ForgetRefusedError extends AppError {
  constructor(message: string) {
    super(400, 'forget_refused', message);
  }
}

/** Rolls a dry run's transaction back, carrying what it would have done. */
class DryRun extends Error {
  readonly result: ForgetResult;
  constructor(result: ForgetResult) {
    super('dry run');
    this.result = result;
  }
}

const SANCTIONS = new Set(['ban', 'policy_rule', 'suspension', 'lock']);
const PRIVILEGES = new Set(['level', 'invite']);

/**
 * Forgets the person `who` names (a wiki username in any spelling MediaWiki accepts, a Matrix ID,
 * a localpart or a central user id); undefined when nobody matches. See the top of this file for
 * what goes and what stays.
 */
export async function forgetPerson(deps: ForgetDeps, who: string, options: ForgetOptions): Promise<ForgetResult | undefined> {
  const person = await findPerson(deps.db, deps.config, who);
  return person && forgetAccount(deps, person, options);
}

/** Forgets the account of `centralId` on the configured wiki. */
export async function forgetAccount(deps: ForgetDeps, person: Pick<Person, 'centralId'>, options: ForgetOptions): Promise<ForgetResult> {
  const performedBy = options.performedBy.trim();
  if (!performedBy) throw new ForgetRefusedError('say who is forgetting this person: performedBy cannot be empty (it is kept in the audit)');
  const { db, config } = deps;
  const now = (deps.clock ?? (() => new Date()))();
  try {
    return await db.transaction(async (tx) => {
      const result = await forgetIn(tx, config, wikiIdOf(config), person.centralId, performedBy, now);
      if (options.dryRun) throw new DryRun({ ...result, dryRun: true });
      return result;
    });
  } catch (error) {
    if (error instanceof DryRun) return error.result;
    throw error;
  }
}

interface AccountRow {
  [column: string]: unknown;
  username: string;
  display_name: string;
  renamed_from: string | null;
  localpart: string;
  matrix_user_id: string | null;
}

interface RecordRow {
  [column: string]: unknown;
  kind: string;
  room_id: string;
  key: string;
  user_id: string;
  level: string | number | null;
  cause: { kind?: string; blockId?: number | null; expiry?: string | null } | null;
}

async function forgetIn(tx: Queryable, config: Config, wiki: string, centralId: string, performedBy: string, now: Date): Promise<ForgetResult> {
  const { rows: accounts } = await tx.query<AccountRow>('SELECT * FROM accounts WHERE wiki = $1 AND central_id = $2 FOR UPDATE', [wiki, centralId]);
  const account = accounts[0];
  if (!account) throw new AppError(404, 'account_not_found', `no account with central user id ${centralId} on ${wiki}`);
  const { rows: profiles } = await tx.query<{ email: string | null }>('SELECT email FROM wiki_profiles WHERE wiki = $1 AND central_id = $2', [wiki, centralId]);
  const matrixIds = matrixIdsOf({ matrixUserId: account.matrix_user_id ?? undefined, localpart: account.localpart }, config.matrix.server_name);
  const opaqueId = `forgotten-${randomBytes(8).toString('hex')}`;
  const names = [account.username, account.display_name, ...(account.renamed_from ? [account.renamed_from] : [])];
  const email = profiles[0]?.email ?? undefined;
  // In the person's own entries a bare central id is theirs; elsewhere the same digits may well
  // be a block or log id, so only names, Matrix IDs and the email are looked for there.
  const own = new Scrubber({ names, matrixIds, email, centralId }, opaqueId);
  const elsewhere = new Scrubber({ names, matrixIds, email }, opaqueId);
  // Intents are changes in flight: the Matrix ID in them is what the change is made to.
  const inIntents = new Scrubber({ names, matrixIds: [], email }, opaqueId);

  // What the service did in Matrix for this person.
  const { rows: records } = await tx.query<RecordRow>('SELECT kind, room_id, key, user_id, level, cause FROM moderation_records WHERE user_id = ANY($1) ORDER BY kind, room_id, key', [matrixIds]);
  const handedOver: HandedOver[] = [];
  const takenBack: TakenBack[] = [];
  let sessionEnds = 0;
  for (const r of records) {
    if (PRIVILEGES.has(r.kind)) {
      takenBack.push({ kind: r.kind as TakenBack['kind'], roomId: r.room_id, userId: r.user_id, level: r.level === null ? null : Number(r.level) });
      continue;
    }
    await tx.query('DELETE FROM moderation_records WHERE kind = $1 AND room_id = $2 AND key = $3', [r.kind, r.room_id, r.key]);
    if (SANCTIONS.has(r.kind)) {
      handedOver.push({
        kind: r.kind as HandedOver['kind'],
        roomId: r.room_id === '' ? null : r.room_id,
        userId: r.user_id,
        cause: { kind: r.cause?.kind ?? 'unknown', blockId: r.cause?.blockId ?? null, expiry: r.cause?.expiry ?? null },
      });
    } else sessionEnds += 1;
  }
  const { rows: intents } = await tx.query<{ action: unknown }>('SELECT action FROM moderation_intents WHERE action::text LIKE ANY($1)', [matrixIds.map((m) => `%${likeEscape(m)}%`)]);
  const pending = new Set(takenBack.map((t) => t.userId));
  for (const intent of intents) for (const id of matrixIds) if (JSON.stringify(intent.action).includes(JSON.stringify(id))) pending.add(id);
  for (const userId of pending) {
    await tx.query(
      `INSERT INTO forgotten_matrix_ids (user_id, opaque_id, forgotten_at) VALUES ($1, $2, $3)
       ON CONFLICT (user_id) DO UPDATE SET opaque_id = EXCLUDED.opaque_id, forgotten_at = EXCLUDED.forgotten_at`,
      [userId, opaqueId, now],
    );
  }

  // The audit: the person's entries under the opaque id, their text and everyone else's scrubbed.
  const reKeyed = (await tx.query(
    "UPDATE moderation_audit SET user_id = $1 WHERE user_id = ANY($2) OR detail->>'centralId' = $3",
    [opaqueId, matrixIds, centralId],
  )).rowCount;
  let mentionsRemoved = 0;
  const { rows: entries } = await tx.query<{ id: string; user_id: string | null; cause: unknown; detail: unknown; error: string | null }>(
    `SELECT id::text AS id, user_id, cause, detail, error FROM moderation_audit
     WHERE user_id = $1 OR cause::text ILIKE ANY($2) OR detail::text ILIKE ANY($2) OR error ILIKE ANY($2)`,
    [opaqueId, own.likePatterns],
  );
  for (const entry of entries) {
    const scrubber = entry.user_id === opaqueId ? own : elsewhere;
    const cause = scrubber.json(entry.cause);
    const detail = scrubber.json(entry.detail);
    const error = entry.error === null ? null : scrubber.text(entry.error);
    if (!cause.changed && !detail.changed && error === entry.error) continue;
    await tx.query('UPDATE moderation_audit SET cause = $2, detail = $3, error = $4 WHERE id = $1::bigint', [
      entry.id, cause.value === null ? null : JSON.stringify(cause.value), JSON.stringify(detail.value), error,
    ]);
    if (entry.user_id !== opaqueId) mentionsRemoved += 1;
  }
  const { rows: mentioningRecords } = await tx.query<{ kind: string; room_id: string; key: string; cause: unknown }>(
    'SELECT kind, room_id, key, cause FROM moderation_records WHERE cause::text ILIKE ANY($1)',
    [elsewhere.likePatterns],
  );
  for (const r of mentioningRecords) {
    const cause = elsewhere.json(r.cause);
    if (!cause.changed) continue;
    await tx.query('UPDATE moderation_records SET cause = $4 WHERE kind = $1 AND room_id = $2 AND key = $3', [r.kind, r.room_id, r.key, JSON.stringify(cause.value)]);
    mentionsRemoved += 1;
  }
  const { rows: mentioningIntents } = await tx.query<{ id: string; action: unknown }>('SELECT id::text AS id, action FROM moderation_intents WHERE action::text ILIKE ANY($1)', [inIntents.likePatterns]);
  for (const intent of mentioningIntents) {
    const action = inIntents.json(intent.action);
    if (!action.changed) continue;
    await tx.query('UPDATE moderation_intents SET action = $2 WHERE id = $1::bigint', [intent.id, JSON.stringify(action.value)]);
    mentionsRemoved += 1;
  }
  // An admin override of someone else's localpart records who made it, by name.
  const { rows: overrides } = await tx.query<{ wiki: string; central_id: string; localpart_set_by: string }>(
    'SELECT wiki, central_id, localpart_set_by FROM accounts WHERE localpart_set_by ILIKE ANY($1) AND NOT (wiki = $2 AND central_id = $3)',
    [elsewhere.likePatterns, wiki, centralId],
  );
  for (const o of overrides) {
    const actor = elsewhere.text(o.localpart_set_by);
    if (actor === o.localpart_set_by) continue;
    await tx.query('UPDATE accounts SET localpart_set_by = $3 WHERE wiki = $1 AND central_id = $2', [o.wiki, o.central_id, actor]);
    mentionsRemoved += 1;
  }

  // Everything else about the person.
  const signIns = (await tx.query('DELETE FROM wiki_logins WHERE account_wiki = $1 AND account_central_id = $2', [wiki, centralId])).rowCount;
  // Every provider record naming the account, at any depth (an interaction keeps it in `result` and `session`).
  const providerRecords = (await tx.query(
    "DELETE FROM oidc_payloads WHERE jsonb_path_exists(payload, 'lax $.**.accountId ? (@ == $sub)', jsonb_build_object('sub', $1::text))",
    [centralId],
  )).rowCount;
  const pendingLogouts = (await tx.query('DELETE FROM backchannel_logouts WHERE sub = $1', [centralId])).rowCount;
  const wikiProfiles = (await tx.query('DELETE FROM wiki_profiles WHERE wiki = $1 AND central_id = $2', [wiki, centralId])).rowCount;
  const erasedAccounts = (await tx.query('DELETE FROM accounts WHERE wiki = $1 AND central_id = $2', [wiki, centralId])).rowCount;

  const erased = { accounts: erasedAccounts, wikiProfiles, signIns, providerRecords, pendingLogouts, sessionEnds };
  const audit = { reKeyed, mentionsRemoved };
  await new ModerationAuditLog(tx).append([{
    at: now,
    passId: `forget-${now.toISOString()}`,
    dryRun: false,
    kind: 'forget_account',
    roomId: null,
    userId: opaqueId,
    cause: null,
    outcome: 'applied',
    error: null,
    detail: { by: performedBy, erased, audit, handedOver: countBy(handedOver), takenBack: countBy(takenBack) },
  }]);
  return {
    dryRun: false,
    person: { wiki, centralId, username: account.username, displayName: account.display_name, matrixIds },
    opaqueId,
    erased,
    audit,
    handedOver,
    takenBack,
  };
}

function countBy(items: readonly { kind: string }[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const item of items) counts[item.kind] = (counts[item.kind] ?? 0) + 1;
  return counts;
}

const likeEscape = (text: string) => text.replace(/\\/g, '\\\\').replace(/%/g, '\\%').replace(/_/g, '\\_');
