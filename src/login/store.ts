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
   * browser, be unexpired and not have been used by an earlier callback.
   */
  async claimCallback(state: string, browserKey: string | undefined): Promise<CallbackClaim> {
    const now = this.#clock();
    const { rows } = await this.#db.query<{ interaction_uid: string; code_verifier: string; browser_hash: string; expires_at: Date; callback_at: Date | null }>(
      'SELECT interaction_uid, code_verifier, browser_hash, expires_at, callback_at FROM wiki_logins WHERE state = $1',
      [state],
    );
    const row = rows[0];
    if (!row) return { ok: false, reason: 'unknown' };
    if (!browserKey || row.browser_hash !== hashBrowserKey(browserKey)) return { ok: false, reason: 'other_browser' };
    if (row.expires_at <= now) return { ok: false, reason: 'expired' };
    const claimed = await this.#db.query('UPDATE wiki_logins SET callback_at = $2 WHERE state = $1 AND callback_at IS NULL', [state, now]);
    if (claimed.rowCount !== 1) return { ok: false, reason: 'replayed' };
    return { ok: true, login: { state, interactionUid: row.interaction_uid, codeVerifier: row.code_verifier } };
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

  async recordAccount(state: string, account: { wiki: string; centralId: string }): Promise<void> {
    await this.#db.query('UPDATE wiki_logins SET account_wiki = $2, account_central_id = $3 WHERE state = $1', [state, account.wiki, account.centralId]);
  }

  /** The account that signed in for this interaction, handed out once. */
  async takeAccount(interactionUid: string): Promise<{ wiki: string; centralId: string } | undefined> {
    const { rows } = await this.#db.query<{ account_wiki: string; account_central_id: string }>(
      `UPDATE wiki_logins SET completed_at = $2
       WHERE state = (SELECT state FROM wiki_logins WHERE interaction_uid = $1 AND account_central_id IS NOT NULL AND completed_at IS NULL
                      ORDER BY created_at DESC LIMIT 1)
         AND completed_at IS NULL
       RETURNING account_wiki, account_central_id`,
      [interactionUid, this.#clock()],
    );
    const row = rows[0];
    return row ? { wiki: row.account_wiki, centralId: row.account_central_id } : undefined;
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

/**
 * Whose sessions moderation ended (`moderation.sessions`: a `session_end` record, kept while the
 * wiki sanction lasts): such a person gets no token from a refresh, userinfo or code exchange.
 */
export class EndedSessionStore {
  readonly #db: Queryable;

  constructor(db: Queryable) {
    this.#db = db;
  }

  async ended(userIds: readonly string[]): Promise<boolean> {
    if (userIds.length === 0) return false;
    const { rows } = await this.#db.query("SELECT 1 FROM moderation_records WHERE kind = 'session_end' AND room_id = '' AND key = ANY($1) LIMIT 1", [userIds]);
    return rows.length > 0;
  }
}
