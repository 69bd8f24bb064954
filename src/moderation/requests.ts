// What admins ask of moderation mirroring, kept in the database so that any `serve` replica can ask
// and only the leading worker acts (it is the one process that changes Matrix, under its lock):
// - `plan`: a dry-run plan of a full pass, with a digest of its actions;
// - `apply`: run a full pass if its plan is still the one previewed (the same digest), else refuse;
// - `retry`: reconcile one person again now (after a failed action, say): a targeted pass.
import { createHash } from 'node:crypto';
import type { Queryable } from '../db/index.ts';
import { describeAction } from './describe.ts';
import type { Plan, PassResult } from './executor.ts';
import { causeToJson, type AuditOutcome, type StoredCause } from './records.ts';

export const REQUEST_KINDS = ['plan', 'apply', 'retry'] as const;
export type RequestKind = (typeof REQUEST_KINDS)[number];
export const REQUEST_STATES = ['pending', 'running', 'done', 'refused', 'failed'] as const;
export type RequestState = (typeof REQUEST_STATES)[number];

export interface RequestPayloads {
  plan: Record<string, never>;
  /** The digest of the previewed plan (`PlanSummary.digest`). */
  apply: { digest: string };
  /** Whose actions to try again: their Matrix ID. */
  retry: { userId: string };
}

/** One planned action, as the preview shows it. */
export interface PlannedAction {
  kind: string;
  roomId: string | null;
  userId: string | null;
  cause: StoredCause | null;
  description: string;
}

/** A plan as stored and shown: its actions and a digest that names exactly them. */
export interface PlanSummary {
  digest: string;
  users: number;
  actions: PlannedAction[];
  unreachableRooms: string[];
}

/** A pass as stored and shown, after `apply` or `retry`. */
export interface PassSummary {
  passId: string;
  counts: Record<AuditOutcome, number>;
  deferred: number;
  lacksPower: string[];
}

export interface RequestResults {
  plan: PlanSummary;
  apply: PassSummary | { reason: string; digest: string };
  retry: PassSummary | { reason: string };
}

export interface ModerationRequest<K extends RequestKind = RequestKind> {
  id: string;
  kind: K;
  requestedBy: string;
  requestedAt: Date;
  payload: RequestPayloads[K];
  state: RequestState;
  result: RequestResults[K] | null;
  finishedAt: Date | null;
}

/** The actions of a plan, without the pass's id or time: the same wiki and rooms give the same digest. */
export function summarizePlan(plan: Plan, users: number): PlanSummary {
  const actions = plan.actions.map((action) => ({
    kind: action.kind,
    roomId: 'roomId' in action ? action.roomId : null,
    userId: 'userId' in action ? action.userId : null,
    cause: 'cause' in action && action.cause ? causeToJson(action.cause) : null,
    description: describeAction(action),
  }));
  const digest = createHash('sha256').update(JSON.stringify(plan.actions)).digest('base64url').slice(0, 22);
  return { digest, users, actions, unreachableRooms: plan.unreachableRooms };
}

export function summarizePass(result: PassResult): PassSummary {
  return { passId: result.passId, counts: result.counts, deferred: result.deferred, lacksPower: result.lacksPower };
}

interface RequestRow {
  [column: string]: unknown;
  id: string;
  kind: RequestKind;
  requested_by: string;
  requested_at: Date;
  payload: never;
  state: RequestState;
  result: never;
  finished_at: Date | null;
}

// `id` is read as text (a 64-bit integer); order by the column, not by that text.
const COLUMNS = 'id::text AS id, kind, requested_by, requested_at, payload, state, result, finished_at';

const toRequest = (row: RequestRow): ModerationRequest => ({
  id: row.id,
  kind: row.kind,
  requestedBy: row.requested_by,
  requestedAt: new Date(row.requested_at),
  payload: row.payload,
  state: row.state,
  result: row.result,
  finishedAt: row.finished_at && new Date(row.finished_at),
});

export class ModerationRequestStore {
  readonly #db: Queryable;
  readonly #clock: () => Date;

  constructor(db: Queryable, options: { clock?: () => Date } = {}) {
    this.#db = db;
    this.#clock = options.clock ?? (() => new Date());
  }

  async create<K extends RequestKind>(kind: K, requestedBy: string, payload: RequestPayloads[K]): Promise<ModerationRequest<K>> {
    const { rows } = await this.#db.query<RequestRow>(
      `INSERT INTO moderation_requests (kind, requested_by, requested_at, payload) VALUES ($1, $2, $3, $4) RETURNING ${COLUMNS}`,
      [kind, requestedBy, this.#clock(), JSON.stringify(payload)],
    );
    return toRequest(rows[0]!) as ModerationRequest<K>;
  }

  async get(id: string): Promise<ModerationRequest | undefined> {
    if (!/^\d{1,19}$/.test(id)) return undefined;
    const { rows } = await this.#db.query<RequestRow>(`SELECT ${COLUMNS} FROM moderation_requests WHERE id = $1`, [id]);
    return rows[0] && toRequest(rows[0]);
  }

  /** The newest requests first, of one kind or all. */
  async recent(options: { kind?: RequestKind; limit?: number } = {}): Promise<ModerationRequest[]> {
    const { rows } = await this.#db.query<RequestRow>(
      `SELECT ${COLUMNS} FROM moderation_requests WHERE ($1::text IS NULL OR kind = $1) ORDER BY moderation_requests.id DESC LIMIT $2`,
      [options.kind ?? null, options.limit ?? 20],
    );
    return rows.map(toRequest);
  }

  /** Claims the oldest pending request for the caller (the leader), or undefined when none waits. */
  async take(): Promise<ModerationRequest | undefined> {
    const { rows } = await this.#db.query<RequestRow>(
      `UPDATE moderation_requests SET state = 'running'
       WHERE id = (SELECT id FROM moderation_requests WHERE state = 'pending' ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED)
       RETURNING ${COLUMNS}`,
    );
    return rows[0] && toRequest(rows[0]);
  }

  async finish<K extends RequestKind>(id: string, state: 'done' | 'refused' | 'failed', result: RequestResults[K] | { reason: string }): Promise<void> {
    await this.#db.query('UPDATE moderation_requests SET state = $2, result = $3, finished_at = $4 WHERE id = $1', [id, state, JSON.stringify(result), this.#clock()]);
  }

  /**
   * Requests a leader was running when it stopped (crashed, deposed) are failed, not run twice:
   * the admin asks again. Called when a new term begins.
   */
  async abandonRunning(): Promise<number> {
    const { rowCount } = await this.#db.query(
      `UPDATE moderation_requests SET state = 'failed', result = $1, finished_at = $2 WHERE state = 'running'`,
      [JSON.stringify({ reason: 'the worker running it stopped before it finished; ask again' }), this.#clock()],
    );
    return rowCount;
  }
}
