// What the wiki says about mapped accounts, read into `WikiState` for the pure policy.
//
// Facts this relies on:
// - With CentralAuth the account's central id (the OAuth `sub`) finds the global account even
//   after a rename (`meta=globaluserinfo&guiid=`), so the current username is asked first and the
//   local lookups use it. Without CentralAuth the `sub` is the local user id, and
//   `list=users&ususerids=` gives the current name the same way: a remembered name is never used.
// - MediaWiki does not delete accounts: an id that no visible account has is hidden (suppressed,
//   `hidename`) from us, as anonymous `list=users` answers `{userid, missing}` for it and
//   `list=blocks` leaves its block out. It reads as a hidden sanction (so it is banned), never as
//   nothing; with a bot that has `hideuser`, the wiki shows the account and its block instead.
// - `meta=globaluserinfo` answers `missing` both for an account that no longer exists and for one
//   suppressed (hidden) from us. A suppressed account is always locked. So an id that had an
//   account when its owner signed in, and now has none while its stored name has none either,
//   reads as a hidden lock. When the stored name now belongs to a different global account, the
//   owner was renamed and then vanished from our view: nothing is known, and nothing is claimed
//   (an absence of data must never ban anyone).
// - The lock's reason, performer and log id are only in the `globalauth/setstatus` log, whose
//   title is `User:<name>@global` and params `{added: [...], removed: [...]}`.
// - Requests are serial (the client queues them); a batch that fails throws, and the caller's
//   next pass asks again: no state is half-read.
import { AppError } from '../../http/errors.ts';
import type { AccountRepository } from '../../identity/accounts.ts';
import { canonicalUsername } from '../../identity/localpart.ts';
import { createLogger, type Logger } from '../../log.ts';
import {
  logDetails,
  logEventsAnswer,
  type ActionApiClient,
  type GlobalBlock,
  type GlobalUserInfo,
  type WikiBlock,
  type WikiUser,
} from '../../wiki/action-api.ts';
import type { GlobalLock, MappedAccount, WikiState, WikiUserState } from '../types.ts';

export type WikiReader = Pick<ActionApiClient, 'getBlocks' | 'getUsers' | 'getUsersById' | 'getGlobalUserInfo' | 'getGlobalBlocks' | 'request'>;

export interface WikiStateDeps {
  api: WikiReader;
  /** The wiki's name in WikiState (the identity wiki id, e.g. `meta.wikimedia.org`). */
  wiki: string;
  /** The wiki has CentralAuth and GlobalBlocking (`wiki.central_auth`). */
  centralAuth: boolean;
  logger?: Logger;
}

/** Reading the state of a batch of accounts failed; nothing of the batch is returned. */
export class WikiStateError extends AppError {
  readonly accounts: string[];

  constructor(accounts: readonly MappedAccount[], cause: unknown) {
    const names = accounts.slice(0, 3).map((a) => a.username);
    const more = accounts.length > names.length ? ` and ${accounts.length - names.length} more` : '';
    const why = cause instanceof Error ? cause.message : String(cause);
    super(502, 'wiki_state_unreadable', `could not read the wiki state of ${names.join(', ')}${more}: ${why}; the next pass asks again`, { expose: false, cause });
    this.name = 'WikiStateError';
    this.accounts = accounts.map((a) => a.username);
  }
}

/** MediaWiki's spelling of a name for comparisons: spaces, first letter uppercase. */
export function nameKey(name: string): string {
  return canonicalUsername(name);
}

/** What the wiki says of an account (its global account with CentralAuth, its local one without), or that nothing can be said. */
type AccountFacts =
  | { kind: 'known'; name: string; info?: Extract<GlobalUserInfo, { exists: true }>; user?: Extract<WikiUser, { exists: true }> }
  | { kind: 'vanished' }
  | { kind: 'unknown' };

/** The wiki state of these accounts (`complete: false`): blocks, groups, and where enabled, global locks, blocks and groups. */
export async function fetchWikiState(accounts: readonly MappedAccount[], deps: WikiStateDeps): Promise<WikiState> {
  if (accounts.length === 0) return { wiki: deps.wiki, users: [], complete: false };
  try {
    return { wiki: deps.wiki, users: await readUsers(accounts, deps), complete: false };
  } catch (err) {
    throw new WikiStateError(accounts, err);
  }
}

async function readUsers(accounts: readonly MappedAccount[], deps: WikiStateDeps): Promise<WikiUserState[]> {
  const log = (deps.logger ?? createLogger('silent')).child({ component: 'wiki-source' });
  const facts = new Map<MappedAccount, AccountFacts>();
  if (deps.centralAuth) {
    for (const account of accounts) facts.set(account, await globalFacts(account, deps.api, log));
  } else {
    for (const [account, local] of await localFacts(accounts, deps.api)) facts.set(account, local);
  }
  // The name to ask the local wiki about; none when the account cannot be identified any more.
  const nameOf = (account: MappedAccount): string | undefined => {
    const f = facts.get(account)!;
    if (f.kind === 'known') return f.name;
    // A global account gone from view may still have a local one under the old name; a local
    // account gone from view has no name we may trust.
    return f.kind === 'vanished' && deps.centralAuth ? account.username : undefined;
  };
  const names = [...new Set(accounts.map(nameOf).filter((n): n is string => n !== undefined))];
  // Without CentralAuth the id lookup already brought each user's groups.
  const users = deps.centralAuth ? byName(await deps.api.getUsers(names), (u) => u.name) : undefined;
  const blocks = groupByName(await deps.api.getBlocks(names), (b) => b.user);
  const globalBlocks = deps.centralAuth ? groupByName(await deps.api.getGlobalBlocks(names), (b) => b.target) : new Map<string, GlobalBlock[]>();

  const states: WikiUserState[] = [];
  for (const account of accounts) {
    const name = nameOf(account);
    const f = facts.get(account)!;
    const key = name === undefined ? undefined : nameKey(name);
    const user: WikiUser | undefined = f.kind === 'known' && f.user ? f.user : key === undefined ? undefined : users?.get(key);
    if (f.kind === 'vanished') {
      log.warn(
        { centralId: account.centralId, username: account.username, centralAuth: deps.centralAuth },
        'the wiki shows no account with this id any more: it is hidden (suppressed) from this reader, so it is treated as sanctioned and banned, with its details hidden',
      );
    }
    states.push({
      account: {
        wiki: account.wiki,
        centralId: account.centralId,
        username: name ?? account.username,
        localpart: account.localpart,
        ...(account.matrixUserId && { matrixUserId: account.matrixUserId }),
      },
      blocks: key === undefined ? [] : (blocks.get(key) ?? []),
      globalBlocks: key === undefined ? [] : (globalBlocks.get(key) ?? []),
      lock: await lockOf(f, deps.api),
      groups: user?.exists ? user.groups : [],
      globalGroups: f.kind === 'known' && f.info ? f.info.globalGroups : [],
    });
  }
  return states;
}

/** Without CentralAuth: each account by its local user id, which is its `sub`. */
async function localFacts(accounts: readonly MappedAccount[], api: WikiReader): Promise<Map<MappedAccount, AccountFacts>> {
  const ids = accounts.map((account) => {
    const id = Number(account.centralId);
    if (!Number.isSafeInteger(id) || id <= 0) throw new Error(`${account.username} has user id "${account.centralId}", which is not one MediaWiki can have`);
    return id;
  });
  const byId = new Map<number, WikiUser>();
  for (const user of await api.getUsersById(ids)) if (user.userId !== undefined) byId.set(user.userId, user);
  const out = new Map<MappedAccount, AccountFacts>();
  for (const [i, account] of accounts.entries()) {
    const user = byId.get(ids[i]!);
    if (user === undefined) throw new Error(`list=users: no answer for user id ${ids[i]} (${account.username})`);
    out.set(account, user.exists ? { kind: 'known', name: user.name, user } : { kind: 'vanished' });
  }
  return out;
}

async function globalFacts(account: MappedAccount, api: WikiReader, log: Logger): Promise<AccountFacts> {
  const id = Number(account.centralId);
  if (!Number.isSafeInteger(id) || id <= 0) {
    throw new Error(`${account.username} has central id "${account.centralId}", which is not one CentralAuth can have`);
  }
  const byId = await api.getGlobalUserInfo({ id });
  if (byId.exists) {
    if (byId.id !== id) throw new Error(`meta=globaluserinfo: asked for central id ${id}, the wiki answered for ${byId.id} (${byId.name})`);
    return { kind: 'known', name: byId.name, info: byId };
  }
  const byName = await api.getGlobalUserInfo(account.username);
  if (!byName.exists) return { kind: 'vanished' };
  log.warn(
    { centralId: account.centralId, username: account.username, nameNowHeldBy: byName.id },
    'the global account of this Matrix user is gone and its old name belongs to another account; nothing is mirrored for it until it signs in again',
  );
  return { kind: 'unknown' };
}

async function lockOf(facts: AccountFacts, api: WikiReader): Promise<GlobalLock | null> {
  if (facts.kind === 'vanished') return { logId: null, by: null, reason: '', timestamp: null, hidden: true };
  if (facts.kind !== 'known' || !facts.info?.locked) return null;
  const lock: GlobalLock = { logId: null, by: null, reason: '', timestamp: null, hidden: facts.info.hidden };
  // A hidden lock is published without details, so they are not even read.
  if (lock.hidden) return lock;
  return { ...lock, ...(await lockLogEntry(facts.name, api)) };
}

/** The newest `globalauth/setstatus` entry that added `locked` for this account. */
export async function lockLogEntry(name: string, api: Pick<WikiReader, 'request'>): Promise<Partial<GlobalLock>> {
  const module = 'list=logevents (globalauth)';
  const answer = await api.request(module, {
    action: 'query',
    list: 'logevents',
    letype: 'globalauth',
    letitle: `User:${name}@global`,
    leprop: ['ids', 'title', 'type', 'user', 'timestamp', 'comment', 'details'],
    ledir: 'older',
    lelimit: 20,
  });
  const parsed = logEventsAnswer.safeParse(answer);
  if (!parsed.success) throw new Error(`${module}: malformed answer: ${parsed.error.issues[0]?.message ?? 'invalid'}`);
  for (const entry of parsed.data.query.logevents) {
    if (entry.action !== 'setstatus' || entry.actionhidden || entry.params === undefined) continue;
    const result = logDetails(entry.type, entry.action, entry.params);
    if (!('details' in result) || result.details.kind !== 'global-status' || !result.details.added.includes('locked')) continue;
    return { logId: entry.logid, by: entry.user ?? null, reason: entry.comment ?? '', timestamp: entry.timestamp };
  }
  return {};
}

function byName<T>(items: readonly T[], name: (item: T) => string): Map<string, T> {
  return new Map(items.map((item) => [nameKey(name(item)), item]));
}

function groupByName<T extends WikiBlock | GlobalBlock>(items: readonly T[], name: (item: T) => string): Map<string, T[]> {
  const out = new Map<string, T[]>();
  for (const item of items) {
    const key = nameKey(name(item));
    out.set(key, [...(out.get(key) ?? []), item]);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------

export interface WikiSourceOptions extends WikiStateDeps {
  accounts: Pick<AccountRepository, 'list' | 'findByUsername' | 'findByLocalpart' | 'findByMatrixUserId' | 'recordRename'>;
  /** Accounts per batch; 50 is the API's limit for a multi-value parameter. */
  batchSize?: number;
  /** Upper bound on batches one full pass reads. Default 100 000 (5 million accounts). */
  maxBatches?: number;
}

/** Where the worker gets `WikiState` from: every mapped account, or those some log or event named. */
export class WikiSource {
  readonly #options: WikiSourceOptions;
  readonly #batchSize: number;
  readonly #maxBatches: number;

  constructor(options: WikiSourceOptions) {
    this.#options = options;
    this.#batchSize = options.batchSize ?? 50;
    this.#maxBatches = options.maxBatches ?? 100_000;
    if (!Number.isInteger(this.#batchSize) || this.#batchSize < 1 || this.#batchSize > 50) {
      throw new RangeError(`a batch holds 1 to 50 accounts, not ${this.#batchSize}`);
    }
  }

  get wiki(): string {
    return this.#options.wiki;
  }

  /**
   * The state of these accounts (`complete: false`). A name the wiki now gives an account (a
   * rename) is stored at once, so that log entries under the new name find it.
   */
  async fetch(accounts: readonly MappedAccount[]): Promise<WikiState> {
    const state = await fetchWikiState(accounts, this.#options);
    for (const [i, user] of state.users.entries()) {
      const before = accounts[i]!;
      if (user.account.username === before.username) continue;
      await this.#options.accounts.recordRename(before.wiki, before.centralId, user.account.username);
      this.#options.logger?.info({ centralId: before.centralId, from: before.username, to: user.account.username }, 'the wiki renamed this account: the stored name follows');
    }
    return state;
  }

  /**
   * Every mapped account of this wiki, batch by batch, each batch a `complete: false` state. A batch
   * that cannot be read throws; the batches before it stay valid.
   */
  async *batches(): AsyncGenerator<WikiState> {
    let after: string | undefined;
    for (let n = 0; n < this.#maxBatches; n++) {
      const page = await this.#options.accounts.list({ limit: this.#batchSize, after });
      const mine = page.accounts.filter((a) => a.wiki === this.#options.wiki);
      if (mine.length > 0) yield await this.fetch(mine);
      if (page.next === undefined) return;
      after = page.next;
    }
    throw new Error(`more than ${this.#maxBatches} batches of accounts; giving up rather than reading forever`);
  }

  /** Every mapped account in one state, `complete: true`; throws when any batch cannot be read. */
  async fullPass(): Promise<WikiState> {
    const users: WikiUserState[] = [];
    for await (const batch of this.batches()) users.push(...batch.users);
    return { wiki: this.#options.wiki, users, complete: true };
  }

  /**
   * The state of the mapped accounts among these usernames (log or event targets), `complete:
   * false`. Names without an account here are left out: most blocked users never used Matrix.
   */
  async targeted(usernames: Iterable<string>): Promise<WikiState> {
    const accounts = new Map<string, MappedAccount>();
    for (const name of new Set([...usernames].map(nameKey))) {
      if (!name || name.startsWith('#')) continue;
      const account = await this.#options.accounts.findByUsername(this.#options.wiki, name);
      if (account) accounts.set(`${account.wiki}\u0000${account.centralId}`, account);
    }
    return this.#fetchInBatches([...accounts.values()]);
  }

  /**
   * The state of the mapped accounts of this wiki with these Matrix IDs, `complete: false`: for
   * passes no log entry asks for, such as when a block expires. An ID is the one the homeserver
   * reported for the account, or else `@<localpart>:…`.
   */
  async byUserIds(userIds: Iterable<string>): Promise<WikiState> {
    const accounts: MappedAccount[] = [];
    for (const userId of new Set(userIds)) {
      const account = (await this.#options.accounts.findByMatrixUserId(userId)) ?? (await this.#options.accounts.findByLocalpart(userId.slice(1, userId.indexOf(':'))));
      if (account?.wiki === this.#options.wiki) accounts.push(account);
    }
    return this.#fetchInBatches(accounts);
  }

  async #fetchInBatches(list: readonly MappedAccount[]): Promise<WikiState> {
    const users: WikiUserState[] = [];
    for (let i = 0; i < list.length; i += this.#batchSize) {
      users.push(...(await this.fetch(list.slice(i, i + this.#batchSize))).users);
    }
    return { wiki: this.#options.wiki, users, complete: false };
  }
}
