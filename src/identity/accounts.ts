// Accounts: a wiki account (keyed by its central user id, which survives renames) and the Matrix
// localpart it was given at first login. The localpart never follows a rename: the homeserver
// already knows the user by it, so only an admin override changes it. The localpart is only what
// we proposed: Synapse may have given the account another Matrix ID (it re-escapes localparts and
// suffixes taken ones), so the ID it reports for the account's `sub` is stored beside it.
import type { Queryable } from '../db/index.ts';
import { AppError } from '../http/errors.ts';
import { canonicalUsername, isHomeserverStable, type LocalpartPolicy } from './localpart.ts';

export interface Account {
  /** Which wiki (family) the central id belongs to, e.g. the OAuth wiki's host name. */
  wiki: string;
  centralId: string;
  username: string;
  displayName: string;
  localpart: string;
  /** Set when an admin chose the localpart instead of the mapping. */
  localpartOverride: { actor: string; at: Date } | undefined;
  createdAt: Date;
  /** When the username, display name or localpart last changed. */
  updatedAt: Date;
  lastLoginAt: Date | undefined;
  /** The Matrix ID the homeserver reports for this account; undefined until it has been read. */
  matrixUserId: string | undefined;
  /** When the homeserver was last asked for `matrixUserId`; undefined: never (or since the last login). */
  matrixUserIdCheckedAt: Date | undefined;
  /** The name before a wiki rename the homeserver's display name has not followed yet. */
  renamedFrom: string | undefined;
}

/** The Matrix IDs an account goes by: the one the homeserver reports, and the one the service proposes. */
export function matrixIdsOf(account: Pick<Account, 'matrixUserId' | 'localpart'>, serverName: string): string[] {
  const proposed = `@${account.localpart}:${serverName}`;
  return account.matrixUserId === undefined || account.matrixUserId === proposed ? [proposed] : [account.matrixUserId, proposed];
}

/** A localpart an admin chose for a wiki account before its first sign-in. */
export interface LocalpartOverride {
  wiki: string;
  username: string;
  localpart: string;
  setBy: string;
  setAt: Date;
}

/** Who just logged in, as the wiki's OAuth profile says. */
export interface LoginIdentity {
  wiki: string;
  /** The profile's `sub`: the central user id, a positive integer as a string. */
  centralId: string;
  username: string;
  /** Defaults to the username. */
  displayName?: string | undefined;
}

export interface AccountPage {
  accounts: Account[];
  /** Pass as `after` for the next page; undefined on the last one. */
  next: string | undefined;
}

export interface AccountRepository {
  /**
   * Records a login: the first one creates the account and assigns its localpart; later ones
   * follow a rename (username, display name) and never change the localpart.
   */
  upsertOnLogin(identity: LoginIdentity): Promise<Account>;
  findByCentralId(wiki: string, centralId: string): Promise<Account | undefined>;
  findByLocalpart(localpart: string): Promise<Account | undefined>;
  /** Accepts any spelling MediaWiki accepts (`jimbo_Wales`); the account most recently logged in wins. */
  findByUsername(wiki: string, username: string): Promise<Account | undefined>;
  /**
   * An admin override of the stored localpart. It changes this record, not Matrix: the homeserver
   * matches returning users by `sub` and uses the localpart only when it creates the Matrix user.
   * So use it before that, or to record what the homeserver really assigned (Synapse adds its own
   * suffix when a localpart is taken by a user this service does not know). The old localpart
   * becomes free for the next first login.
   */
  setLocalpart(wiki: string, centralId: string, localpart: string, actor: string): Promise<Account>;
  /**
   * Chooses the localpart a wiki account gets at its first sign-in, before it has one: kept until
   * that sign-in takes it, and given to no one else meanwhile. Refused for an account that exists
   * (the homeserver may already know it by its localpart: use setLocalpart knowingly).
   */
  overrideLocalpart(wiki: string, username: string, localpart: string, actor: string): Promise<LocalpartOverride>;
  /** Withdraws an override not yet taken; whether there was one. */
  dropOverride(wiki: string, username: string): Promise<LocalpartOverride | undefined>;
  /** Overrides not yet taken, by username. */
  overrides(wiki: string): Promise<LocalpartOverride[]>;
  /** Accounts in localpart order. */
  list(options?: { limit?: number; after?: string }): Promise<AccountPage>;
  findByMatrixUserId(userId: string): Promise<Account | undefined>;
  /**
   * What the homeserver answered for this account: its Matrix ID, or undefined when it has none
   * yet (the person never signed in there). Either way the check's time is kept, so unresolved
   * accounts are asked again oldest first.
   */
  recordMatrixUserId(wiki: string, centralId: string, userId: string | undefined): Promise<Account>;
  /** Accounts of a wiki without a known Matrix ID, never checked first, then the longest unchecked. */
  unresolvedMatrixIds(wiki: string, options: { limit: number; checkedBefore: Date }): Promise<Account[]>;
  /**
   * The wiki says the account now has this name (a rename seen in the logs or in the account's own
   * record): the stored username follows without waiting for a sign-in, and so does the display
   * name when it was the old username. Undefined when there is no such account.
   */
  recordRename(wiki: string, centralId: string, newName: string): Promise<{ before: Account; after: Account } | undefined>;
  /** Renamed accounts of a wiki whose Matrix display name has not followed yet, oldest change first. */
  renamesToFollow(wiki: string, options: { limit: number }): Promise<Account[]>;
  /** The homeserver's display name has followed the rename to `username` (a later rename keeps it pending). */
  followedRename(wiki: string, centralId: string, username: string): Promise<void>;
  /**
   * Gives every stored localpart the homeserver would not keep as it is (the `=xx` escapes of
   * versions before 0.2, a leading `_`) a new one from today's mapping, and says what changed.
   */
  rederiveUnstableLocalparts(): Promise<LocalpartChange[]>;
}

export interface LocalpartChange {
  wiki: string;
  centralId: string;
  username: string;
  from: string;
  to: string;
}

export class InvalidIdentityError extends AppError {
  constructor(message: string) {
    super(400, 'invalid_identity', message);
  }
}

export class InvalidLocalpartError extends AppError {
  constructor(message: string) {
    super(400, 'invalid_localpart', message);
  }
}

export class LocalpartTakenError extends AppError {
  constructor(message: string) {
    super(409, 'localpart_taken', message);
  }
}

export class AccountNotFoundError extends AppError {
  constructor(wiki: string, centralId: string) {
    super(404, 'account_not_found', `no account with central user id ${centralId} on ${wiki} has logged in yet`);
  }
}

export interface AccountRepositoryOptions {
  clock: () => Date;
  localparts: LocalpartPolicy;
}

interface AccountRow {
  [column: string]: unknown;
  wiki: string;
  central_id: string;
  username: string;
  display_name: string;
  localpart: string;
  localpart_set_by: string | null;
  localpart_set_at: Date | null;
  created_at: Date;
  updated_at: Date;
  last_login_at: Date | null;
  matrix_user_id: string | null;
  matrix_user_id_checked_at: Date | null;
  renamed_from: string | null;
}

const CENTRAL_ID = /^[1-9][0-9]{0,19}$/;
/** Candidates looked up per round trip while looking for a free localpart. */
const CANDIDATE_BATCH = 10;
/** `name_2` … `name_1000`: past that, something is wrong and a person should look. */
const MAX_SUFFIX = 1000;
const DEFAULT_PAGE = 100;
const MAX_PAGE = 1000;
const UNIQUE_VIOLATION = '23505';

function toAccount(row: AccountRow): Account {
  return {
    wiki: row.wiki,
    centralId: row.central_id,
    username: row.username,
    displayName: row.display_name,
    localpart: row.localpart,
    localpartOverride: row.localpart_set_by !== null && row.localpart_set_at !== null ? { actor: row.localpart_set_by, at: row.localpart_set_at } : undefined,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
    lastLoginAt: row.last_login_at ?? undefined,
    matrixUserId: row.matrix_user_id ?? undefined,
    matrixUserIdCheckedAt: row.matrix_user_id_checked_at ?? undefined,
    renamedFrom: row.renamed_from ?? undefined,
  };
}

/** The stored spelling: MediaWiki's spaces, and the first letter uppercase as MediaWiki shows it. */
function checkIdentity(identity: LoginIdentity): { wiki: string; centralId: string; username: string; displayName: string } {
  if (!identity.wiki) throw new InvalidIdentityError('the wiki of an account cannot be empty');
  if (!CENTRAL_ID.test(identity.centralId)) {
    throw new InvalidIdentityError(
      identity.centralId === '0'
        ? `the account "${identity.username}" is not attached to a global (central) account on ${identity.wiki}, so it cannot be used to sign in`
        : `"${identity.centralId}" is not a central user id (a positive integer)`,
    );
  }
  const username = canonicalUsername(identity.username);
  if (!username) throw new InvalidIdentityError(`the wiki returned no username for central user id ${identity.centralId}`);
  return { wiki: identity.wiki, centralId: identity.centralId, username, displayName: identity.displayName?.trim() || username };
}

function isUniqueViolation(error: unknown): boolean {
  return (error as { code?: unknown } | null)?.code === UNIQUE_VIOLATION;
}

/** The localparts to try, in order: the derived one, then `_2`, `_3`, … in batches. */
function* candidateBatches(policy: LocalpartPolicy, base: string): Generator<string[]> {
  let batch = [base];
  for (let n = 2; n <= MAX_SUFFIX; n++) {
    if (batch.length === CANDIDATE_BATCH) {
      yield batch;
      batch = [];
    }
    const candidate = policy.withSuffix(base, n);
    if (policy.problem(candidate) === undefined) batch.push(candidate);
  }
  yield batch;
}

export class PostgresAccountRepository implements AccountRepository {
  readonly #db: Queryable;
  readonly #clock: () => Date;
  readonly #policy: LocalpartPolicy;

  constructor(db: Queryable, options: AccountRepositoryOptions) {
    this.#db = db;
    this.#clock = options.clock;
    this.#policy = options.localparts;
  }

  async upsertOnLogin(input: LoginIdentity): Promise<Account> {
    const identity = checkIdentity(input);
    const now = this.#clock();
    return (await this.#recordLogin(identity, now)) ?? this.#create(identity, now);
  }

  async findByCentralId(wiki: string, centralId: string): Promise<Account | undefined> {
    return this.#one('SELECT * FROM accounts WHERE wiki = $1 AND central_id = $2', [wiki, centralId]);
  }

  async findByLocalpart(localpart: string): Promise<Account | undefined> {
    return this.#one('SELECT * FROM accounts WHERE localpart = $1', [localpart]);
  }

  async findByUsername(wiki: string, username: string): Promise<Account | undefined> {
    return this.#one(
      `SELECT * FROM accounts WHERE wiki = $1 AND username = $2
       ORDER BY last_login_at DESC NULLS LAST, updated_at DESC LIMIT 1`,
      [wiki, canonicalUsername(username)],
    );
  }

  async setLocalpart(wiki: string, centralId: string, localpart: string, actor: string): Promise<Account> {
    if (!actor.trim()) throw new InvalidIdentityError('say who is overriding the localpart: the actor cannot be empty');
    const problem = this.#policy.problem(localpart);
    if (problem) throw new InvalidLocalpartError(`cannot use "${localpart}" as a localpart: ${problem}`);
    let updated: Account | undefined;
    try {
      updated = await this.#one(
        `UPDATE accounts SET localpart = $3, localpart_set_by = $4, localpart_set_at = $5, updated_at = $5
         WHERE wiki = $1 AND central_id = $2 RETURNING *`,
        [wiki, centralId, localpart, actor, this.#clock()],
      );
    } catch (error) {
      if (!isUniqueViolation(error)) throw error;
      const holder = await this.findByLocalpart(localpart);
      const whose = holder ? ` the account of ${holder.username} (central user id ${holder.centralId} on ${holder.wiki})` : ' another account';
      throw new LocalpartTakenError(`${this.#policy.mxid(localpart)} is already taken by${whose}; choose another localpart`);
    }
    if (!updated) throw new AccountNotFoundError(wiki, centralId);
    return updated;
  }

  async overrideLocalpart(wiki: string, username: string, localpart: string, actor: string): Promise<LocalpartOverride> {
    if (!actor.trim()) throw new InvalidIdentityError('say who is choosing the localpart: the actor cannot be empty');
    const name = canonicalUsername(username);
    if (!name) throw new InvalidIdentityError('say whose localpart this is: the wiki username cannot be empty');
    const problem = this.#policy.problem(localpart);
    if (problem) throw new InvalidLocalpartError(`cannot use "${localpart}" as a localpart: ${problem}`);
    const existing = await this.findByUsername(wiki, name);
    if (existing) {
      throw new AppError(409, 'account_exists', `${existing.username} has signed in already and has the localpart "${existing.localpart}"; an override is for accounts that have not signed in yet`, { expose: true });
    }
    const holder = await this.findByLocalpart(localpart);
    if (holder) throw new LocalpartTakenError(`${this.#policy.mxid(localpart)} is already taken by the account of ${holder.username}; choose another localpart`);
    try {
      const { rows } = await this.#db.query<OverrideRow>(
        `INSERT INTO localpart_overrides (wiki, username, localpart, set_by, set_at) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (wiki, username) DO UPDATE SET localpart = EXCLUDED.localpart, set_by = EXCLUDED.set_by, set_at = EXCLUDED.set_at
         RETURNING *`,
        [wiki, name, localpart, actor, this.#clock()],
      );
      return toOverride(rows[0]!);
    } catch (error) {
      if (!isUniqueViolation(error)) throw error;
      throw new LocalpartTakenError(`${this.#policy.mxid(localpart)} is already chosen for another wiki account that has not signed in yet; choose another localpart`);
    }
  }

  async dropOverride(wiki: string, username: string): Promise<LocalpartOverride | undefined> {
    const { rows } = await this.#db.query<OverrideRow>('DELETE FROM localpart_overrides WHERE wiki = $1 AND username = $2 RETURNING *', [wiki, canonicalUsername(username)]);
    return rows[0] && toOverride(rows[0]);
  }

  async overrides(wiki: string): Promise<LocalpartOverride[]> {
    const { rows } = await this.#db.query<OverrideRow>('SELECT * FROM localpart_overrides WHERE wiki = $1 ORDER BY username', [wiki]);
    return rows.map(toOverride);
  }

  async list(options: { limit?: number; after?: string } = {}): Promise<AccountPage> {
    const limit = options.limit ?? DEFAULT_PAGE;
    if (!Number.isInteger(limit) || limit < 1 || limit > MAX_PAGE) throw new RangeError(`a page holds 1 to ${MAX_PAGE} accounts, not ${limit}`);
    const { rows } = await this.#db.query<AccountRow>(
      'SELECT * FROM accounts WHERE $1::text IS NULL OR localpart > $1 ORDER BY localpart LIMIT $2',
      [options.after ?? null, limit + 1],
    );
    const accounts = rows.slice(0, limit).map(toAccount);
    return { accounts, next: rows.length > limit ? accounts.at(-1)!.localpart : undefined };
  }

  async findByMatrixUserId(userId: string): Promise<Account | undefined> {
    return this.#one('SELECT * FROM accounts WHERE matrix_user_id = $1', [userId]);
  }

  async recordMatrixUserId(wiki: string, centralId: string, userId: string | undefined): Promise<Account> {
    const updated = await this.#one(
      `UPDATE accounts SET matrix_user_id = COALESCE($3, matrix_user_id), matrix_user_id_checked_at = $4
       WHERE wiki = $1 AND central_id = $2 RETURNING *`,
      [wiki, centralId, userId ?? null, this.#clock()],
    );
    if (!updated) throw new AccountNotFoundError(wiki, centralId);
    return updated;
  }

  async unresolvedMatrixIds(wiki: string, options: { limit: number; checkedBefore: Date }): Promise<Account[]> {
    if (!Number.isInteger(options.limit) || options.limit < 0 || options.limit > MAX_PAGE) throw new RangeError(`0 to ${MAX_PAGE} accounts, not ${options.limit}`);
    if (options.limit === 0) return [];
    const { rows } = await this.#db.query<AccountRow>(
      `SELECT * FROM accounts WHERE wiki = $1 AND matrix_user_id IS NULL
         AND (matrix_user_id_checked_at IS NULL OR matrix_user_id_checked_at < $2)
       ORDER BY matrix_user_id_checked_at NULLS FIRST, localpart LIMIT $3`,
      [wiki, options.checkedBefore, options.limit],
    );
    return rows.map(toAccount);
  }

  async recordRename(wiki: string, centralId: string, newName: string): Promise<{ before: Account; after: Account } | undefined> {
    const username = canonicalUsername(newName);
    if (!username) throw new InvalidIdentityError(`the wiki renamed central user id ${centralId} to an empty name`);
    const before = await this.findByCentralId(wiki, centralId);
    if (!before) return undefined;
    if (before.username === username) return { before, after: before };
    const after = await this.#one(
      `UPDATE accounts SET username = $3, display_name = CASE WHEN display_name = username THEN $3 ELSE display_name END, updated_at = $4,
         renamed_from = COALESCE(renamed_from, username)
       WHERE wiki = $1 AND central_id = $2 RETURNING *`,
      [wiki, centralId, username, this.#clock()],
    );
    return after && { before, after };
  }

  async renamesToFollow(wiki: string, options: { limit: number }): Promise<Account[]> {
    const { rows } = await this.#db.query<AccountRow>('SELECT * FROM accounts WHERE wiki = $1 AND renamed_from IS NOT NULL ORDER BY updated_at, central_id LIMIT $2', [wiki, options.limit]);
    return rows.map(toAccount);
  }

  async followedRename(wiki: string, centralId: string, username: string): Promise<void> {
    await this.#db.query('UPDATE accounts SET renamed_from = NULL WHERE wiki = $1 AND central_id = $2 AND username = $3', [wiki, centralId, username]);
  }

  /**
   * A later login: follows a rename, never touches the localpart. Undefined when the account is new.
   * An account the homeserver had no Matrix ID for is asked about first on the next pass: it
   * probably has one now.
   */
  #recordLogin(identity: ReturnType<typeof checkIdentity>, now: Date): Promise<Account | undefined> {
    return this.#one(
      `UPDATE accounts SET
         updated_at = CASE WHEN username = $3 AND display_name = $4 THEN updated_at ELSE $5 END,
         renamed_from = CASE WHEN username = $3 THEN renamed_from ELSE COALESCE(renamed_from, username) END,
         username = $3, display_name = $4, last_login_at = $5,
         matrix_user_id_checked_at = CASE WHEN matrix_user_id IS NULL THEN NULL ELSE matrix_user_id_checked_at END
       WHERE wiki = $1 AND central_id = $2 RETURNING *`,
      [identity.wiki, identity.centralId, identity.username, identity.displayName, now],
    );
  }

  async rederiveUnstableLocalparts(): Promise<LocalpartChange[]> {
    // The pattern is isHomeserverStable's; the check below keeps the two honest.
    const { rows } = await this.#db.query<AccountRow>(`SELECT * FROM accounts WHERE localpart !~ '^[a-z0-9._/+-]+$' OR localpart LIKE '\\_%' ORDER BY created_at, central_id`);
    const changes: LocalpartChange[] = [];
    for (const row of rows) {
      if (isHomeserverStable(row.localpart)) continue;
      const moved = await this.#claim(row.username, async (candidate) => {
        try {
          const updated = await this.#one('UPDATE accounts SET localpart = $3, updated_at = $4 WHERE wiki = $1 AND central_id = $2 AND localpart = $5 RETURNING *', [
            row.wiki, row.central_id, candidate, this.#clock(), row.localpart,
          ]);
          // Nothing updated: another process (a second serve starting) moved it already.
          return updated ?? (await this.findByCentralId(row.wiki, row.central_id));
        } catch (error) {
          if (isUniqueViolation(error)) return undefined;
          throw error;
        }
      });
      changes.push({ wiki: row.wiki, centralId: row.central_id, username: row.username, from: row.localpart, to: moved.localpart });
    }
    return changes;
  }

  /**
   * A first login. Candidates are inserted with ON CONFLICT DO NOTHING, so the unique constraint
   * settles races without aborting anything: when a concurrent first login of another user wins
   * a candidate the insert returns nothing and the next candidate is tried; when a concurrent
   * login of the same user wins, the insert returns nothing and that account is used.
   */
  async #create(identity: ReturnType<typeof checkIdentity>, now: Date): Promise<Account> {
    const chosen = await this.#takeOverride(identity, now);
    if (chosen) return chosen;
    return this.#claim(identity.username, async (candidate) => {
      const created = await this.#one(
        `INSERT INTO accounts (wiki, central_id, username, display_name, localpart, created_at, updated_at, last_login_at)
         VALUES ($1, $2, $3, $4, $5, $6, $6, $6) ON CONFLICT DO NOTHING RETURNING *`,
        [identity.wiki, identity.centralId, identity.username, identity.displayName, candidate, now],
      );
      return created ?? this.#recordLogin(identity, now);
    });
  }

  /** The account created with the localpart an admin chose for this username, if one was chosen. */
  async #takeOverride(identity: ReturnType<typeof checkIdentity>, now: Date): Promise<Account | undefined> {
    const { rows } = await this.#db.query<OverrideRow>('SELECT * FROM localpart_overrides WHERE wiki = $1 AND username = $2', [identity.wiki, identity.username]);
    const override = rows[0] && toOverride(rows[0]);
    if (!override) return undefined;
    // Both in one statement: the override is used exactly once, by the account it was meant for.
    const created = await this.#one(
      `WITH taken AS (DELETE FROM localpart_overrides WHERE wiki = $1 AND username = $3 AND localpart = $5 RETURNING localpart)
       INSERT INTO accounts (wiki, central_id, username, display_name, localpart, localpart_set_by, localpart_set_at, created_at, updated_at, last_login_at)
       SELECT $1, $2, $3, $4, localpart, $6, $7, $8, $8, $8 FROM taken ON CONFLICT DO NOTHING RETURNING *`,
      [identity.wiki, identity.centralId, identity.username, identity.displayName, override.localpart, override.setBy, override.setAt, now],
    );
    return created ?? this.#recordLogin(identity, now);
  }

  /**
   * The first free localpart for `username` (the derived one, then its suffixes), taken by `take`,
   * which answers undefined when another account won the candidate first.
   */
  async #claim(username: string, take: (candidate: string) => Promise<Account | undefined>): Promise<Account> {
    const base = this.#policy.derive(username);
    for (const batch of candidateBatches(this.#policy, base)) {
      // Localparts chosen for accounts yet to sign in are taken too.
      const { rows } = await this.#db.query<{ localpart: string }>(
        'SELECT localpart FROM accounts WHERE localpart = ANY($1) UNION ALL SELECT localpart FROM localpart_overrides WHERE localpart = ANY($1)',
        [batch],
      );
      const taken = new Set(rows.map((row) => row.localpart));
      for (const candidate of batch.filter((c) => !taken.has(c))) {
        const account = await take(candidate);
        if (account) return account;
      }
    }
    throw new AppError(500, 'localpart_exhausted', `no free localpart left for "${username}": "${base}" and its suffixes up to _${MAX_SUFFIX} are all taken, which suggests accounts are being created in bulk`);
  }

  async #one(sql: string, params: readonly unknown[]): Promise<Account | undefined> {
    const { rows } = await this.#db.query<AccountRow>(sql, params);
    return rows[0] ? toAccount(rows[0]) : undefined;
  }
}

interface OverrideRow {
  [column: string]: unknown;
  wiki: string;
  username: string;
  localpart: string;
  set_by: string;
  set_at: Date;
}

const toOverride = (row: OverrideRow): LocalpartOverride => ({ wiki: row.wiki, username: row.username, localpart: row.localpart, setBy: row.set_by, setAt: new Date(row.set_at) });
