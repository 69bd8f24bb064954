// What the admin pages and the admin API show, read from the database in the API's own shape
// (snake_case JSON, ISO dates), so that both render one model: a person and every action taken for
// them, recent activity, and how moderation mirroring is doing.
import type { Config } from '../config/load.ts';
import type { Database } from '../db/index.ts';
import { accountRepository, wikiIdOf } from '../compose.ts';
import { matrixIdsOf, type Account } from '../identity/accounts.ts';
import { WikiProfileStore } from '../login/store.ts';
import { ModerationAuditLog, ModerationRecordStore, causeToJson, type AuditFilter, type AuditRecord, type StoredCause } from '../moderation/records.ts';
import { ModerationRequestStore, type ModerationRequest } from '../moderation/requests.ts';
import type { ForgetResult, HandedOver, TakenBack } from '../privacy/forget.ts';
import { WorkerStatusStore } from '../moderation/status.ts';
import type { WikiCause } from '../moderation/types.ts';
import { explicitGroups } from '../wiki/action-api-results.ts';
import { WORKER_LOCK } from '../moderation/worker-lock.ts';

/** A wiki cause as admins see it: a suppressed one says only that it is hidden. */
export type CauseJson = Omit<StoredCause, 'by' | 'reason'> & { by: string | null; reason: string | null };

export function causeJson(cause: WikiCause | null): CauseJson | null {
  if (!cause) return null;
  const stored = causeToJson(cause);
  return cause.hidden ? { ...stored, by: null, reason: null } : stored;
}

export interface ActionJson {
  id: string;
  at: string;
  pass_id: string;
  dry_run: boolean;
  kind: string;
  room_id: string | null;
  user_id: string | null;
  outcome: string;
  error: string | null;
  cause: CauseJson | null;
  detail: Record<string, unknown>;
}

export const actionJson = (e: AuditRecord): ActionJson => ({
  id: e.id,
  at: e.at.toISOString(),
  pass_id: e.passId,
  dry_run: e.dryRun,
  kind: e.kind,
  room_id: e.roomId,
  user_id: e.userId,
  outcome: e.outcome,
  error: e.error,
  cause: causeJson(e.cause),
  detail: e.detail,
});

export interface SanctionJson {
  kind: 'ban' | 'power_level' | 'invite' | 'policy_rule' | 'suspension' | 'lock' | 'session_end';
  room_id: string | null;
  user_id: string;
  level?: number;
  cause: CauseJson | null;
}

export interface PersonJson {
  matrix_id: string;
  /** Only when the homeserver gave another ID than `@<localpart>:<server>`. */
  proposed_matrix_id?: string;
  /** Whether `matrix_id` is the one the homeserver reported (else the proposed one, unconfirmed). */
  matrix_id_confirmed: boolean;
  wiki: string;
  central_id: string;
  username: string;
  display_name: string;
  localpart: string;
  localpart_set_by?: string;
  renamed_from?: string;
  first_sign_in: string;
  last_sign_in?: string;
  /** The wiki profile as the last sign-in saw it. */
  wiki_profile?: { groups: string[]; edit_count: number; registered: string | null; seen_at: string };
  /** What the service maintains for them now in Matrix, each with its wiki cause. */
  sanctions: SanctionJson[];
  actions: { entries: ActionJson[]; next: string | null };
}

export interface ReadDeps {
  config: Config;
  db: Database;
}

/** Finds an account by wiki username, Matrix ID, localpart or central id. */
export async function findAccount({ config, db }: ReadDeps, query: string): Promise<Account | undefined> {
  const wiki = wikiIdOf(config);
  const serverName = config.matrix.server_name;
  const accounts = accountRepository(db, config);
  const q = query.trim();
  if (!q) return undefined;
  const mxid = /^@([^:]+):(.+)$/.exec(q);
  if (mxid) return (await accounts.findByMatrixUserId(q)) ?? (mxid[2] === serverName ? accounts.findByLocalpart(mxid[1]!) : undefined);
  if (/^[1-9][0-9]*$/.test(q)) return (await accounts.findByCentralId(wiki, q)) ?? accounts.findByUsername(wiki, q);
  return (await accounts.findByUsername(wiki, q)) ?? (/^[a-z0-9._=/+-]+$/.test(q) ? accounts.findByLocalpart(q) : undefined);
}

export async function personJson(deps: ReadDeps, account: Account, options: { before?: string; limit?: number } = {}): Promise<PersonJson> {
  const { config, db } = deps;
  const serverName = config.matrix.server_name;
  const ids = matrixIdsOf(account, serverName);
  const proposed = `@${account.localpart}:${serverName}`;
  const [profile, records, actions] = await Promise.all([
    new WikiProfileStore(db).find(account.wiki, account.centralId),
    new ModerationRecordStore(db).load({ userIds: ids }),
    new ModerationAuditLog(db).list({ userIds: ids, limit: options.limit ?? 50, ...(options.before && { before: options.before }) }),
  ]);
  const sanctions: SanctionJson[] = [
    ...records.bans.map((r) => ({ kind: 'ban' as const, room_id: r.roomId, user_id: r.userId, cause: causeJson(r.cause) })),
    ...records.levels.map((r) => ({ kind: 'power_level' as const, room_id: r.roomId, user_id: r.userId, level: r.level, cause: causeJson(r.cause) })),
    ...records.invites.map((r) => ({ kind: 'invite' as const, room_id: r.roomId, user_id: r.userId, cause: causeJson(r.cause) })),
    ...records.policyRules.filter((r) => ids.includes(r.entity)).map((r) => ({ kind: 'policy_rule' as const, room_id: r.roomId, user_id: r.entity, cause: causeJson(r.cause) })),
    ...records.suspensions.map((r) => ({ kind: r.measure ?? ('suspension' as const), room_id: null, user_id: r.userId, cause: causeJson(r.cause) })),
    ...records.sessionEnds.map((r) => ({ kind: 'session_end' as const, room_id: null, user_id: r.userId, cause: causeJson(r.cause) })),
  ];
  return {
    matrix_id: account.matrixUserId ?? proposed,
    ...(account.matrixUserId && account.matrixUserId !== proposed && { proposed_matrix_id: proposed }),
    matrix_id_confirmed: account.matrixUserId !== undefined,
    wiki: account.wiki,
    central_id: account.centralId,
    username: account.username,
    display_name: account.displayName,
    localpart: account.localpart,
    ...(account.localpartOverride && { localpart_set_by: account.localpartOverride.actor }),
    ...(account.renamedFrom && { renamed_from: account.renamedFrom }),
    first_sign_in: account.createdAt.toISOString(),
    ...(account.lastLoginAt && { last_sign_in: account.lastLoginAt.toISOString() }),
    ...(profile && {
      wiki_profile: { groups: explicitGroups(profile.groups), edit_count: profile.editCount, registered: profile.registered?.toISOString() ?? null, seen_at: profile.fetchedAt.toISOString() },
    }),
    sanctions,
    actions: { entries: actions.entries.map(actionJson), next: actions.next ?? null },
  };
}

export async function activityJson({ db }: ReadDeps, filter: AuditFilter): Promise<{ entries: ActionJson[]; next: string | null }> {
  const page = await new ModerationAuditLog(db).list(filter);
  return { entries: page.entries.map(actionJson), next: page.next ?? null };
}

export interface SyncJson {
  enabled: boolean;
  dry_run: boolean;
  leader: {
    holder: string;
    leading_since: string;
    /** When it last wrote its status; a leader silent for minutes is probably gone. */
    reported_at: string;
    event_streams: 'connected' | 'disconnected' | 'off';
    last_full_pass: { at: string; pass_id: string; counts: Record<string, number>; deferred: number; lacks_power: string[] } | null;
    next_full_pass_at: string | null;
    last_poll_at: string | null;
    /** Seconds since every wiki log was last read to its end. */
    lag_seconds: number | null;
    last_error: { at: string; message: string } | null;
  } | null;
  cursors: { name: string; position: unknown; updated_at: string }[];
  /** Rooms where the last full pass found the bot without the power it needs. */
  rooms_lacking_power: string[];
}

export async function syncJson({ config, db }: ReadDeps, now = new Date()): Promise<SyncJson> {
  const [status, cursors] = await Promise.all([
    new WorkerStatusStore(db, WORKER_LOCK).read(),
    db.query<{ name: string; value: unknown; updated_at: Date }>('SELECT name, value, updated_at FROM sync_cursors ORDER BY name'),
  ]);
  const report = status?.report;
  const last = report?.lastFullPass;
  return {
    enabled: config.sync.enabled,
    dry_run: report?.dryRun ?? config.sync.dry_run,
    leader: status
      ? {
          holder: status.holder,
          leading_since: status.report.leadingSince,
          reported_at: status.updatedAt.toISOString(),
          event_streams: status.report.eventStreams,
          last_full_pass: last ? { at: last.at, pass_id: last.passId, counts: last.counts, deferred: last.deferred, lacks_power: last.lacksPower } : null,
          next_full_pass_at: status.report.nextFullPassAt ?? null,
          last_poll_at: status.report.lastPollAt ?? null,
          lag_seconds: status.report.lastPollAt ? Math.max(0, Math.round((now.getTime() - Date.parse(status.report.lastPollAt)) / 1000)) : null,
          last_error: status.report.lastError ?? null,
        }
      : null,
    cursors: cursors.rows.map((r) => ({ name: r.name, position: r.value, updated_at: new Date(r.updated_at).toISOString() })),
    rooms_lacking_power: last?.lacksPower ?? [],
  };
}

export interface RequestJson {
  id: string;
  kind: string;
  requested_by: string;
  requested_at: string;
  state: string;
  payload: unknown;
  result: unknown;
  finished_at: string | null;
}

export const requestJson = (r: ModerationRequest): RequestJson => ({
  id: r.id,
  kind: r.kind,
  requested_by: r.requestedBy,
  requested_at: r.requestedAt.toISOString(),
  state: r.state,
  payload: r.payload,
  result: r.result,
  finished_at: r.finishedAt?.toISOString() ?? null,
});

export const requestStore = (db: Database) => new ModerationRequestStore(db);

/** What `POST /forget` answers: a ForgetResult in the API's spelling. */
export interface ForgetJson {
  dry_run: boolean;
  person: { wiki: string; central_id: string; username: string; display_name: string; matrix_ids: string[] };
  opaque_id: string;
  erased: { accounts: number; wiki_profiles: number; sign_ins: number; provider_records: number; pending_logouts: number; session_ends: number };
  audit: { re_keyed: number; mentions_removed: number };
  handed_over: { kind: HandedOver['kind']; room_id: string | null; user_id: string; cause: { kind: string; block_id: number | null; expiry: string | null } }[];
  taken_back: { kind: TakenBack['kind']; room_id: string; user_id: string; level: number | null }[];
}

export const forgetJson = (r: ForgetResult): ForgetJson => ({
  dry_run: r.dryRun,
  person: { wiki: r.person.wiki, central_id: r.person.centralId, username: r.person.username, display_name: r.person.displayName, matrix_ids: r.person.matrixIds },
  opaque_id: r.opaqueId,
  erased: {
    accounts: r.erased.accounts,
    wiki_profiles: r.erased.wikiProfiles,
    sign_ins: r.erased.signIns,
    provider_records: r.erased.providerRecords,
    pending_logouts: r.erased.pendingLogouts,
    session_ends: r.erased.sessionEnds,
  },
  audit: { re_keyed: r.audit.reKeyed, mentions_removed: r.audit.mentionsRemoved },
  handed_over: r.handedOver.map((h) => ({ kind: h.kind, room_id: h.roomId, user_id: h.userId, cause: { kind: h.cause.kind, block_id: h.cause.blockId, expiry: h.cause.expiry } })),
  taken_back: r.takenBack.map((t) => ({ kind: t.kind, room_id: t.roomId, user_id: t.userId, level: t.level })),
});
