// Storage for moderation mirroring: the ownership records (what the service did in Matrix, so it
// only ever undoes its own doing) and the audit log (every action with its wiki cause and
// outcome). The executor writes an action's audit entry and its record change in one
// transaction, right after the action, so a pass that stops half way leaves records that match
// what was really done, and the next pass plans the rest.
import type { Database, Queryable } from '../db/index.ts';
import { recordsAfter } from './reconcile.ts';
import type { Action, ActionKind, LevelChange, OwnershipRecords, RecordRef, WikiCause } from './types.ts';

// ---------------------------------------------------------------------------------------------
// Causes as JSON

/** A cause as stored (jsonb): dates as ISO strings. */
export interface StoredCause {
  kind: WikiCause['kind'];
  wiki: string;
  blockId: number | null;
  logId: number | null;
  by: string | null;
  reason: string;
  timestamp: string | null;
  expiry: string | null;
  group: string | null;
  hidden: boolean;
}

export function causeToJson(cause: WikiCause): StoredCause {
  return { ...cause, timestamp: cause.timestamp?.toISOString() ?? null, expiry: cause.expiry?.toISOString() ?? null };
}

const dateOrNull = (value: unknown) => (typeof value === 'string' ? new Date(value) : null);
const numberOrNull = (value: unknown) => (typeof value === 'number' ? value : null);
const stringOrNull = (value: unknown) => (typeof value === 'string' ? value : null);

export function causeFromJson(json: unknown): WikiCause {
  const c = (json ?? {}) as Record<string, unknown>;
  return {
    kind: c.kind as WikiCause['kind'],
    wiki: String(c.wiki ?? ''),
    blockId: numberOrNull(c.blockId),
    logId: numberOrNull(c.logId),
    by: stringOrNull(c.by),
    reason: String(c.reason ?? ''),
    timestamp: dateOrNull(c.timestamp),
    expiry: dateOrNull(c.expiry),
    group: stringOrNull(c.group),
    hidden: c.hidden === true,
  };
}

// ---------------------------------------------------------------------------------------------
// Ownership records

/** A lock is a suspension made with `moderation.suspend.measure: lock`, kept apart to be lifted as it was made. */
type RecordKind = RecordRef['type'] | 'lock';

/** One row of `moderation_records`: every record kind in one shape. */
interface RecordRow {
  kind: RecordKind;
  /** '' for suspensions, locks and session ends. */
  roomId: string;
  /** The user id, or the state key of a policy rule. */
  key: string;
  userId: string;
  level: number | null;
  cause: WikiCause;
}

export interface RecordChanges {
  upserts: RecordRow[];
  deletes: { kind: RecordKind; roomId: string; key: string }[];
}

function rowsOf(records: OwnershipRecords): RecordRow[] {
  const row = (kind: RecordKind, roomId: string, key: string, userId: string, cause: WikiCause, level: number | null = null): RecordRow =>
    ({ kind, roomId, key, userId, level, cause });
  return [
    ...records.bans.map((r) => row('ban', r.roomId, r.userId, r.userId, r.cause)),
    ...records.levels.map((r) => row('level', r.roomId, r.userId, r.userId, r.cause, r.level)),
    ...records.invites.map((r) => row('invite', r.roomId, r.userId, r.userId, r.cause)),
    ...records.policyRules.map((r) => row('policy_rule', r.roomId, r.stateKey, r.entity, r.cause)),
    ...records.suspensions.map((r) => row(r.measure ?? 'suspension', '', r.userId, r.userId, r.cause)),
    ...records.sessionEnds.map((r) => row('session_end', '', r.userId, r.userId, r.cause)),
  ];
}

const rowKey = (r: { kind: string; roomId: string; key: string }) => `${r.kind}\u0000${r.roomId}\u0000${r.key}`;
const sameRow = (a: RecordRow, b: RecordRow) => a.userId === b.userId && a.level === b.level && JSON.stringify(causeToJson(a.cause)) === JSON.stringify(causeToJson(b.cause));

/** The writes that turn `before` into `after`. */
export function recordChanges(before: OwnershipRecords, after: OwnershipRecords): RecordChanges {
  const old = new Map(rowsOf(before).map((r) => [rowKey(r), r]));
  const upserts: RecordRow[] = [];
  for (const row of rowsOf(after)) {
    const previous = old.get(rowKey(row));
    old.delete(rowKey(row));
    if (!previous || !sameRow(previous, row)) upserts.push(row);
  }
  return { upserts, deletes: [...old.values()].map(({ kind, roomId, key }) => ({ kind, roomId, key })) };
}

export function emptyRecords(): OwnershipRecords {
  return { bans: [], levels: [], invites: [], policyRules: [], suspensions: [], sessionEnds: [] };
}

function toRecords(rows: { kind: RecordKind; room_id: string; key: string; user_id: string; level: unknown; cause: unknown }[]): OwnershipRecords {
  const records = { bans: [], levels: [], invites: [], policyRules: [], suspensions: [], sessionEnds: [] } as {
    [K in keyof OwnershipRecords]: OwnershipRecords[K][number][];
  };
  for (const row of rows) {
    const cause = causeFromJson(row.cause);
    const inRoom = { roomId: row.room_id, userId: row.key, cause };
    switch (row.kind) {
      case 'ban':
        records.bans.push(inRoom);
        break;
      case 'level':
        records.levels.push({ ...inRoom, level: Number(row.level) });
        break;
      case 'invite':
        records.invites.push(inRoom);
        break;
      case 'policy_rule':
        records.policyRules.push({ roomId: row.room_id, stateKey: row.key, entity: row.user_id, cause });
        break;
      case 'suspension':
        records.suspensions.push({ userId: row.key, cause });
        break;
      case 'lock':
        records.suspensions.push({ userId: row.key, cause, measure: 'lock' });
        break;
      case 'session_end':
        records.sessionEnds.push({ userId: row.key, cause });
        break;
    }
  }
  return records;
}

export type LevelsAction = Extract<Action, { kind: 'set_power_levels' }>;

/** A power levels change written down before it was made (`moderation_intents`). */
export interface Intent {
  id: string;
  passId: string;
  action: LevelsAction;
}

export interface RecordFilter {
  /** Only records about these Matrix IDs (the entity, for policy rules). */
  userIds?: Iterable<string>;
  /** Only records in these rooms (suspensions have no room and are left out). */
  roomIds?: Iterable<string>;
}

export class ModerationRecordStore {
  readonly #db: Database;
  readonly #clock: () => Date;

  constructor(db: Database, options: { clock?: () => Date } = {}) {
    this.#db = db;
    this.#clock = options.clock ?? (() => new Date());
  }

  /** Every record, or those matching every given filter. */
  async load(filter: RecordFilter = {}): Promise<OwnershipRecords> {
    const users = filter.userIds === undefined ? null : [...filter.userIds];
    const rooms = filter.roomIds === undefined ? null : [...filter.roomIds];
    const { rows } = await this.#db.query<{ kind: RecordKind; room_id: string; key: string; user_id: string; level: unknown; cause: unknown }>(
      `SELECT kind, room_id, key, user_id, level, cause FROM moderation_records
       WHERE ($1::text[] IS NULL OR user_id = ANY($1)) AND ($2::text[] IS NULL OR room_id = ANY($2))
       ORDER BY kind, room_id, key`,
      [users, rooms],
    );
    return toRecords(rows);
  }

  /**
   * The earliest expiry after `after` among the recorded causes, and whose records it ends. Expiries
   * write no log entry on the wiki, so this is how the worker knows when to look again.
   */
  async nextExpiry(after: Date): Promise<{ at: Date; userIds: string[] } | undefined> {
    const { rows } = await this.#db.query<{ user_id: string; at: Date | string }>(
      `WITH expiring AS (
         SELECT user_id, (cause->>'expiry')::timestamptz AS at FROM moderation_records WHERE cause->>'expiry' IS NOT NULL
       )
       SELECT DISTINCT user_id, at FROM expiring WHERE at = (SELECT min(at) FROM expiring WHERE at > $1) ORDER BY user_id`,
      [after],
    );
    return rows.length === 0 ? undefined : { at: new Date(rows[0]!.at), userIds: rows.map((r) => r.user_id) };
  }

  /**
   * Writes what `actions` (all of them succeeded) change in `before`, and `audit` entries with
   * them, in one transaction, which `fence` may refuse; the intents they settle go with it.
   * Returns the records after.
   */
  async apply(
    before: OwnershipRecords,
    actions: readonly Action[],
    audit: readonly AuditEntry[] = [],
    fence?: (tx: Queryable) => Promise<void>,
    settles: readonly string[] = [],
  ): Promise<OwnershipRecords> {
    const after = recordsAfter(before, actions);
    const changes = recordChanges(before, after);
    await this.#db.transaction(async (tx) => {
      // First, so that a deposed leader writes nothing (see Leadership.fence).
      await fence?.(tx);
      await this.#write(tx, changes);
      await appendAudit(tx, audit);
      if (settles.length > 0) await tx.query('DELETE FROM moderation_intents WHERE id = ANY($1::bigint[])', [settles]);
    });
    return after;
  }

  /** Writes down a power levels change about to be made; returns the intent's id. */
  async intend(passId: string, action: LevelsAction, fence?: (tx: Queryable) => Promise<void>): Promise<string> {
    const stored = { ...action, changes: action.changes.map((c) => ({ ...c, cause: causeToJson(c.cause) })) };
    return this.#db.transaction(async (tx) => {
      await fence?.(tx);
      const { rows } = await tx.query<{ id: string }>('INSERT INTO moderation_intents (pass_id, room_id, action, created_at) VALUES ($1, $2, $3, $4) RETURNING id::text AS id', [
        passId, action.roomId, JSON.stringify(stored), this.#clock(),
      ]);
      return rows[0]!.id;
    });
  }

  /** The changes written down and never settled: a pass that made them (or not) was cut short. */
  async intents(): Promise<Intent[]> {
    const { rows } = await this.#db.query<{ id: string; pass_id: string; action: Record<string, unknown> }>('SELECT id::text AS id, pass_id, action FROM moderation_intents ORDER BY moderation_intents.id');
    return rows.map((row) => {
      const action = row.action as unknown as Omit<LevelsAction, 'changes'> & { changes: (Omit<LevelChange, 'cause'> & { cause: unknown })[] };
      return { id: row.id, passId: row.pass_id, action: { ...action, changes: action.changes.map((c) => ({ ...c, cause: causeFromJson(c.cause) })) } };
    });
  }

  /** An intent whose change never reached the homeserver. */
  async dropIntent(id: string): Promise<void> {
    await this.#db.query('DELETE FROM moderation_intents WHERE id = $1::bigint', [id]);
  }

  async #write(q: Queryable, { upserts, deletes }: RecordChanges): Promise<void> {
    for (const d of deletes) {
      await q.query('DELETE FROM moderation_records WHERE kind = $1 AND room_id = $2 AND key = $3', [d.kind, d.roomId, d.key]);
    }
    const now = this.#clock();
    for (const r of upserts) {
      await q.query(
        `INSERT INTO moderation_records (kind, room_id, key, user_id, level, cause, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7)
         ON CONFLICT (kind, room_id, key) DO UPDATE SET user_id = $4, level = $5, cause = $6, updated_at = $7`,
        [r.kind, r.roomId, r.key, r.userId, r.level, JSON.stringify(causeToJson(r.cause)), now],
      );
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Audit

export const AUDIT_OUTCOMES = ['applied', 'unchanged', 'dry_run', 'failed', 'lacks_power', 'reported'] as const;
export type AuditOutcome = (typeof AUDIT_OUTCOMES)[number];

/**
 * What an audit entry is of: an action of a pass; `backchannel_logout`, a relying party's logout
 * that was delivered (or given up) on a later try after a pass that ended sessions; or
 * `forget_account`, a person forgotten (privacy/forget.ts), whose entries are then kept under an
 * opaque id.
 */
export type AuditKind = ActionKind | 'backchannel_logout' | 'localpart_override' | 'forget_account';

export interface AuditEntry {
  at: Date;
  passId: string;
  dryRun: boolean;
  kind: AuditKind;
  roomId: string | null;
  userId: string | null;
  cause: WikiCause | null;
  outcome: AuditOutcome;
  error: string | null;
  /** The ban reason, a level change (`from`, `to`), a report's message, a forgotten record's `why`… */
  detail: Record<string, unknown>;
}

export interface AuditRecord extends AuditEntry {
  /** Increasing with time; a string because it is a 64-bit integer. */
  id: string;
}

export interface AuditFilter {
  userId?: string;
  /** Entries of any of these users (a person's Matrix IDs: the one the homeserver reports, the proposed one). */
  userIds?: readonly string[];
  roomId?: string;
  kind?: AuditKind;
  outcome?: AuditOutcome;
  passId?: string;
  /** Entries older than this id (the `next` of the previous page). */
  before?: string;
  /** Entries at or after this time. */
  since?: Date;
  /** Entries before this time. */
  until?: Date;
  /** 1 to 1000; default 100. */
  limit?: number;
}

export interface AuditPage {
  entries: AuditRecord[];
  /** Pass as `before` for the next (older) page; undefined on the last one. */
  next: string | undefined;
}

const DEFAULT_PAGE = 100;
const MAX_PAGE = 1000;

async function appendAudit(q: Queryable, entries: readonly AuditEntry[]): Promise<void> {
  for (const e of entries) {
    await q.query(
      `INSERT INTO moderation_audit (at, pass_id, dry_run, kind, room_id, user_id, cause, outcome, error, detail)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
      [e.at, e.passId, e.dryRun, e.kind, e.roomId, e.userId, e.cause && JSON.stringify(causeToJson(e.cause)), e.outcome, e.error, JSON.stringify(e.detail)],
    );
  }
}

interface AuditRow {
  [column: string]: unknown;
  id: string;
  at: Date;
  pass_id: string;
  dry_run: boolean;
  kind: AuditKind;
  room_id: string | null;
  user_id: string | null;
  cause: unknown;
  outcome: AuditOutcome;
  error: string | null;
  detail: Record<string, unknown>;
}

function toAuditRecord(row: AuditRow): AuditRecord {
  return {
    id: row.id,
    at: new Date(row.at),
    passId: row.pass_id,
    dryRun: row.dry_run,
    kind: row.kind,
    roomId: row.room_id,
    userId: row.user_id,
    cause: row.cause === null ? null : causeFromJson(row.cause),
    outcome: row.outcome,
    error: row.error,
    detail: row.detail,
  };
}

export class ModerationAuditLog {
  readonly #db: Queryable;

  constructor(db: Queryable) {
    this.#db = db;
  }

  append(entries: readonly AuditEntry[]): Promise<void> {
    return appendAudit(this.#db, entries);
  }

  async get(id: string): Promise<AuditRecord | undefined> {
    if (!/^\d{1,19}$/.test(id)) return undefined;
    const { rows } = await this.#db.query<AuditRow>(
      'SELECT id::text AS id, at, pass_id, dry_run, kind, room_id, user_id, cause, outcome, error, detail FROM moderation_audit WHERE id = $1',
      [id],
    );
    return rows[0] && toAuditRecord(rows[0]);
  }

  /** Newest first. */
  async list(filter: AuditFilter = {}): Promise<AuditPage> {
    const limit = filter.limit ?? DEFAULT_PAGE;
    if (!Number.isInteger(limit) || limit < 1 || limit > MAX_PAGE) throw new RangeError(`a page holds 1 to ${MAX_PAGE} audit entries, not ${limit}`);
    if (filter.before !== undefined && !/^\d{1,19}$/.test(filter.before)) throw new RangeError(`"${filter.before}" is not an audit entry id`);
    const userIds = filter.userIds ?? (filter.userId === undefined ? null : [filter.userId]);
    const { rows } = await this.#db.query<AuditRow>(
      `SELECT id::text AS id, at, pass_id, dry_run, kind, room_id, user_id, cause, outcome, error, detail
       FROM moderation_audit
       WHERE ($1::text[] IS NULL OR user_id = ANY($1)) AND ($2::text IS NULL OR room_id = $2) AND ($3::text IS NULL OR kind = $3)
         AND ($4::text IS NULL OR outcome = $4) AND ($5::text IS NULL OR pass_id = $5) AND ($6::bigint IS NULL OR id < $6)
         AND ($8::timestamptz IS NULL OR at >= $8) AND ($9::timestamptz IS NULL OR at < $9)
       ORDER BY moderation_audit.id DESC LIMIT $7`,
      [userIds, filter.roomId ?? null, filter.kind ?? null, filter.outcome ?? null, filter.passId ?? null, filter.before ?? null, limit + 1, filter.since ?? null, filter.until ?? null],
    );
    const entries = rows.slice(0, limit).map(toAuditRecord);
    return { entries, next: rows.length > limit ? entries.at(-1)!.id : undefined };
  }
}
