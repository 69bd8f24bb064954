// What the leading worker says about itself, written to the database at each change so that the
// admin pages of every `serve` replica can show it: who leads, the last and next full pass, the
// last poll of the wiki's logs, EventStreams, the last error.
import type { Queryable } from '../db/index.ts';
import type { AuditOutcome } from './records.ts';

export interface WorkerReport {
  /** When this leader's term began. */
  leadingSince: string;
  dryRun: boolean;
  lastFullPass?: { at: string; passId: string; counts: Record<AuditOutcome, number>; deferred: number; lacksPower: string[] };
  nextFullPassAt?: string;
  /** When every wiki log was last read to its end. */
  lastPollAt?: string;
  /** Off when EventStreams is not configured. */
  eventStreams: 'connected' | 'disconnected' | 'off';
  lastError?: { at: string; message: string };
}

export interface WorkerStatusRecord {
  holder: string;
  report: WorkerReport;
  updatedAt: Date;
}

export class WorkerStatusStore {
  readonly #db: Queryable;
  readonly #name: string;

  constructor(db: Queryable, name: string) {
    this.#db = db;
    this.#name = name;
  }

  async write(holder: string, report: WorkerReport, at: Date): Promise<void> {
    await this.#db.query(
      `INSERT INTO worker_status (name, holder, value, updated_at) VALUES ($1, $2, $3, $4)
       ON CONFLICT (name) DO UPDATE SET holder = EXCLUDED.holder, value = EXCLUDED.value, updated_at = EXCLUDED.updated_at`,
      [this.#name, holder, JSON.stringify(report), at],
    );
  }

  async read(): Promise<WorkerStatusRecord | undefined> {
    const { rows } = await this.#db.query<{ holder: string; value: WorkerReport; updated_at: Date }>('SELECT holder, value, updated_at FROM worker_status WHERE name = $1', [this.#name]);
    const row = rows[0];
    return row && { holder: row.holder, report: row.value, updatedAt: new Date(row.updated_at) };
  }
}
