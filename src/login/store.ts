// Storage for the sign-in flow: sign-ins in progress at the wiki, and the wiki profile behind claims.
import { createHash } from 'node:crypto';
import type { Queryable } from '../db/index.ts';
import type { VisibleWikiProfile } from '../wiki/profile.ts';

export const hashBrowserKey = (key: string): string => createHash('sha256').update(key).digest('base64url');

export interface PendingLogin {
  state: string;
  interactionUid: string;
  codeVerifier: string;
}

export interface StartedLogin extends PendingLogin {
  browserKey: string;
  expiresAt: Date;
}

export type CallbackClaim =
  | { ok: true; login: PendingLogin }
  | { ok: false; reason: 'unknown' | 'other_browser' | 'expired' | 'replayed' };

export class WikiLoginStore {
  readonly #db: Queryable;
  readonly #clock: () => Date;

  constructor(db: Queryable, clock: () => Date) {
    this.#db = db;
    this.#clock = clock;
  }

  async start(login: StartedLogin): Promise<void> {
    await this.#db.query(
      `INSERT INTO wiki_logins (state, interaction_uid, browser_hash, code_verifier, created_at, expires_at)
       VALUES ($1, $2, $3, $4, $5, $6)`,
      [login.state, login.interactionUid, hashBrowserKey(login.browserKey), login.codeVerifier, this.#clock(), login.expiresAt],
    );
  }

  /**
   * Claims the sign-in a wiki callback is about, once: the state must exist, belong to this
   * browser, be unexpired and not have been used by an earlier callback. One statement when it
   * succeeds; only a refused claim reads the row again, to say why.
   */
  async claimCallback(state: string, browserKey: string | undefined): Promise<CallbackClaim> {
    const now = this.#clock();
    const browserHash = browserKey ? hashBrowserKey(browserKey) : '';
    const { rows } = await this.#db.query<{ interaction_uid: string; code_verifier: string }>(
      `UPDATE wiki_logins SET callback_at = $3
       WHERE state = $1 AND browser_hash = $2 AND expires_at > $3 AND callback_at IS NULL
       RETURNING interaction_uid, code_verifier`,
      [state, browserHash, now],
    );
    const claimed = rows[0];
    if (claimed) return { ok: true, login: { state, interactionUid: claimed.interaction_uid, codeVerifier: claimed.code_verifier } };
    const { rows: found } = await this.#db.query<{ browser_hash: string; expires_at: Date }>('SELECT browser_hash, expires_at FROM wiki_logins WHERE state = $1', [state]);
    const row = found[0];
    if (!row) return { ok: false, reason: 'unknown' };
    if (!browserKey || row.browser_hash !== browserHash) return { ok: false, reason: 'other_browser' };
    if (row.expires_at <= now) return { ok: false, reason: 'expired' };
    return { ok: false, reason: 'replayed' };
  }

  /** Who signed in with this state: `forget` erases a person's sign-ins by it. */
  async recordAccount(state: string, account: { wiki: string; centralId: string }): Promise<void> {
    await this.#db.query('UPDATE wiki_logins SET account_wiki = $2, account_central_id = $3 WHERE state = $1', [state, account.wiki, account.centralId]);
  }

  /** The interaction of this browser's most recent unexpired sign-in (a cancel on the wiki comes back without state). */
  async latestInteractionOf(browserKey: string | undefined): Promise<string | undefined> {
    if (!browserKey) return undefined;
    const { rows } = await this.#db.query<{ interaction_uid: string }>(
      `SELECT interaction_uid FROM wiki_logins WHERE browser_hash = $1 AND expires_at > $2 AND callback_at IS NULL
       ORDER BY created_at DESC LIMIT 1`,
      [hashBrowserKey(browserKey), this.#clock()],
    );
    return rows[0]?.interaction_uid;
  }

  async purgeExpired(): Promise<number> {
    const { rowCount } = await this.#db.query('DELETE FROM wiki_logins WHERE expires_at <= $1', [this.#clock()]);
    return rowCount;
  }
}

export interface StoredProfile {
  editCount: number;
  registered: Date | null;
  groups: string[];
  email: string | undefined;
  fetchedAt: Date;
}

/** What a token or the userinfo endpoint needs to know about an account, read in one statement. */
export interface AccountClaims {
  username: string;
  localpart: string;
  /** Undefined when the account has no stored wiki profile (an account older than profiles). */
  profile: StoredProfile | undefined;
  /**
   * Whether moderation ended this person's sessions (`moderation.sessions`: a `session_end` record,
   * kept while the wiki sanction lasts): such a person gets no token and may not sign in again.
   */
  sessionsEnded: boolean;
}

/**
 * The account, its wiki profile and whether its sessions were ended, in one round trip: the
 * provider asks for an account at the authorization, the code exchange and userinfo, and for its
 * claims at the last two.
 */
export class AccountClaimsStore {
  readonly #db: Queryable;
  readonly #serverName: string;

  /** `serverName`: the homeserver's, for the Matrix ID the service proposed (`matrixIdsOf`). */
  constructor(db: Queryable, serverName: string) {
    this.#db = db;
    this.#serverName = serverName;
  }

  async find(wiki: string, centralId: string): Promise<AccountClaims | undefined> {
    const { rows } = await this.#db.query<{
      username: string;
      localpart: string;
      edit_count: number | null;
      registered: Date | null;
      groups: string[] | null;
      email: string | null;
      fetched_at: Date | null;
      sessions_ended: boolean;
    }>(
      // The Matrix IDs are matrixIdsOf's: the one the homeserver reported, and the proposed one.
      `SELECT a.username, a.localpart, p.edit_count, p.registered, p.groups, p.email, p.fetched_at,
         EXISTS (SELECT 1 FROM moderation_records m WHERE m.kind = 'session_end' AND m.room_id = ''
                 AND m.key IN (a.matrix_user_id, '@' || a.localpart || ':' || $3)) AS sessions_ended
       FROM accounts a LEFT JOIN wiki_profiles p ON p.wiki = a.wiki AND p.central_id = a.central_id
       WHERE a.wiki = $1 AND a.central_id = $2`,
      [wiki, centralId, this.#serverName],
    );
    const row = rows[0];
    if (!row) return undefined;
    const profile =
      row.fetched_at === null
        ? undefined
        : { editCount: row.edit_count!, registered: row.registered, groups: row.groups!, email: row.email ?? undefined, fetchedAt: row.fetched_at };
    return { username: row.username, localpart: row.localpart, profile, sessionsEnded: row.sessions_ended };
  }
}

export class WikiProfileStore {
  readonly #db: Queryable;

  constructor(db: Queryable) {
    this.#db = db;
  }

  /**
   * What the wiki said at sign-in. The email address is kept only when `keepEmail` says the
   * relying party asked for it (the `email` scope); otherwise a stored one is dropped.
   */
  async save(wiki: string, profile: VisibleWikiProfile, at: Date, options: { keepEmail?: boolean } = {}): Promise<void> {
    const email = options.keepEmail && profile.emailVerified ? (profile.email ?? null) : null;
    await this.#db.query(
      `INSERT INTO wiki_profiles (wiki, central_id, edit_count, registered, groups, email, fetched_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7)
       ON CONFLICT (wiki, central_id) DO UPDATE SET edit_count = EXCLUDED.edit_count, registered = EXCLUDED.registered,
         groups = EXCLUDED.groups, email = EXCLUDED.email, fetched_at = EXCLUDED.fetched_at`,
      [wiki, profile.centralId, profile.editCount, profile.registered, profile.groups, email, at],
    );
  }

  async find(wiki: string, centralId: string): Promise<StoredProfile | undefined> {
    const { rows } = await this.#db.query<{ edit_count: number; registered: Date | null; groups: string[]; email: string | null; fetched_at: Date }>(
      'SELECT edit_count, registered, groups, email, fetched_at FROM wiki_profiles WHERE wiki = $1 AND central_id = $2',
      [wiki, centralId],
    );
    const row = rows[0];
    return row && { editCount: row.edit_count, registered: row.registered, groups: row.groups, email: row.email ?? undefined, fetchedAt: row.fetched_at };
  }
}
