// The query interface both backends implement, apart from opening one (index.ts), so that the
// backends depend on it and nothing depends back.

export type Row = Record<string, unknown>;

export interface QueryResult<R extends Row = Row> {
  rows: R[];
  rowCount: number;
}

export interface Queryable {
  query<R extends Row = Row>(sql: string, params?: readonly unknown[]): Promise<QueryResult<R>>;
  /** Runs a script of several statements without parameters (migrations). */
  exec(sql: string): Promise<void>;
}

/** A lock that at most one process holds at a time; the holder is the leader. */
export interface LeaderLock {
  tryAcquire(): Promise<boolean>;
  /** A round trip on the connection holding the lock; rejects when it fails or takes longer than `timeoutMs`. */
  ping(timeoutMs: number): Promise<void>;
  /** Resolves when leadership is lost without release() (e.g. the connection died). */
  readonly lost: Promise<Error>;
  release(): Promise<void>;
}

export interface Database extends Queryable {
  readonly kind: 'postgres' | 'pglite';
  /** Human-readable location (no credentials) for logs and errors. */
  readonly description: string;
  transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T>;
  /**
   * A statement whose answer the caller does not need (an insert, an upsert, a delete). Inside a
   * step's unit of work on PostgreSQL it resolves once queued, and goes to the server in the same
   * socket write as the step's next statement or its commit; if it fails, the commit fails and the
   * whole step rolls back (`onFailure` is told first). Elsewhere it is `query`, awaited.
   */
  write(sql: string, params: readonly unknown[], onFailure?: (error: unknown) => void): Promise<void>;
  leaderLock(name: string): LeaderLock;
  close(): Promise<void>;
}

export class DatabaseError extends Error {
  /** `in_use`: the embedded database belongs to another running process. */
  readonly code: 'in_use' | undefined;
  constructor(message: string, options?: { cause?: unknown; code?: 'in_use' }) {
    super(message, options);
    this.name = 'DatabaseError';
    this.code = options?.code;
  }
}

export interface DatabaseOptions {
  url?: string | undefined;
  dataDir: string;
  poolMax: number;
  connectTimeoutSeconds: number;
  /** PGlite: a new data directory starts from this archive of a migrated database (pglite-template.ts). */
  template?: string | undefined;
}

/** A stable 64-bit advisory lock key for a name, computed by the database itself. */
export const ADVISORY_KEY_SQL = `('x' || substr(md5($1), 1, 16))::bit(64)::bigint`;
