// Polls the wiki's block and rights logs (and, with CentralAuth, the global lock, global block
// and global rights logs) after a stored cursor, and says whom to reconcile now.
//
// The cursor moves only when the caller says the reconcile of those users succeeded
// (`commit()`): a crash in between re-reads the same entries on the next poll, and since
// reconciling is idempotent, reading an entry twice is harmless while missing one is not.
import { z } from 'zod';
import { createLogger, type Logger } from '../../log.ts';
import {
  CENTRALAUTH_LOG_TYPES,
  LOCAL_LOG_TYPES,
  logCursorOf,
  type ActionApiClient,
  type LogCursor,
  type LogType,
  type WikiLogEvent,
} from '../../wiki/action-api.ts';
import type { SyncCursorStore } from './cursors.ts';
import { report, topics } from '../../observe.ts';

export interface LogPollerOptions {
  api: Pick<ActionApiClient, 'logEvents'>;
  cursors: SyncCursorStore;
  /** Also read `globalauth`, `gblblock` and `gblrights` (`wiki.central_auth`). */
  centralAuth: boolean;
  clock?: () => Date;
  /**
   * Where a log without a stored cursor starts: this long before now. The full pass covers what
   * happened before; a little overlap absorbs clock skew between us and the wiki. Default 5 min.
   */
  initialLookbackMs?: number;
  /** Entries read per log type and poll; the rest waits for the next poll. Default 5000. */
  maxEntriesPerLog?: number;
  logger?: Logger;
}

export interface LogPoll {
  /** Targets of the new entries (usernames; IP targets too, which match no account), without duplicates. */
  usernames: string[];
  /** The entries themselves, oldest first per log type, for audit and causes. */
  events: WikiLogEvent[];
  /** Moves the stored cursors past these entries. Call after the reconcile of `usernames` succeeded. */
  commit(): Promise<void>;
}

const storedCursor = z.object({
  timestamp: z.iso.datetime().transform((s) => new Date(s)),
  logId: z.number().int().nonnegative(),
});

export function logCursorName(type: LogType): string {
  return `wiki-log:${type}`;
}

export class LogPoller {
  readonly types: readonly LogType[];
  readonly #options: LogPollerOptions;
  readonly #clock: () => Date;
  readonly #log: Logger;
  /** What this poller last committed, so an older poll's late commit never moves a cursor back. */
  readonly #committed = new Map<LogType, LogCursor>();

  constructor(options: LogPollerOptions) {
    this.#options = options;
    this.#clock = options.clock ?? (() => new Date());
    this.#log = (options.logger ?? createLogger('silent')).child({ component: 'log-poller' });
    this.types = options.centralAuth ? [...LOCAL_LOG_TYPES, ...CENTRALAUTH_LOG_TYPES] : [...LOCAL_LOG_TYPES];
  }

  /** New entries of every log after its stored cursor. Throws when a log cannot be read; no cursor moves then. */
  async poll(): Promise<LogPoll> {
    const events: WikiLogEvent[] = [];
    const next = new Map<LogType, LogCursor>();
    const reached: { log: string; timestamp: Date }[] = [];
    for (const type of this.types) {
      const { cursor, stored } = await this.#start(type);
      const read = await this.#read(type, cursor);
      events.push(...read);
      const last = read.at(-1);
      if (last) next.set(type, logCursorOf(last));
      else if (!stored) next.set(type, cursor); // pins where this log starts
      reached.push({ log: type, timestamp: (last ? logCursorOf(last) : cursor).timestamp });
    }
    report(topics.poll, () => ({ at: new Date(), cursors: reached }));
    return { usernames: targets(events), events, commit: () => this.#commit(next) };
  }

  async #start(type: LogType): Promise<{ cursor: LogCursor; stored: boolean }> {
    const name = logCursorName(type);
    const raw = await this.#options.cursors.get(name);
    if (raw === undefined || raw === null) {
      // Whole seconds, as the log's timestamps are: an entry in the same second still comes after.
      const since = Math.floor((this.#clock().getTime() - (this.#options.initialLookbackMs ?? 5 * 60_000)) / 1000) * 1000;
      return { cursor: { timestamp: new Date(since), logId: 0 }, stored: false };
    }
    const parsed = storedCursor.safeParse(raw);
    if (!parsed.success) {
      throw new Error(`the stored cursor ${name} is not {timestamp, logId}: ${JSON.stringify(raw).slice(0, 200)}; delete the row to start from now`);
    }
    return { cursor: parsed.data, stored: true };
  }

  async #read(type: LogType, after: LogCursor): Promise<WikiLogEvent[]> {
    const max = this.#options.maxEntriesPerLog ?? 5000;
    const out: WikiLogEvent[] = [];
    for await (const event of this.#options.api.logEvents(type, { after })) {
      out.push(event);
      if (out.length >= max) {
        this.#log.info({ type, max }, 'many new log entries; the rest is read by the next poll');
        break;
      }
    }
    return out;
  }

  async #commit(next: ReadonlyMap<LogType, LogCursor>): Promise<void> {
    const values = new Map<string, unknown>();
    for (const [type, cursor] of next) {
      const committed = this.#committed.get(type);
      if (committed && !isAfter(cursor, committed)) continue;
      values.set(logCursorName(type), { timestamp: cursor.timestamp.toISOString(), logId: cursor.logId });
    }
    await this.#options.cursors.set(values);
    for (const [type, cursor] of next) {
      const committed = this.#committed.get(type);
      if (!committed || isAfter(cursor, committed)) this.#committed.set(type, cursor);
    }
  }
}

function isAfter(a: LogCursor, b: LogCursor): boolean {
  const d = a.timestamp.getTime() - b.timestamp.getTime();
  return d > 0 || (d === 0 && a.logId > b.logId);
}

/** Log targets worth reconciling: known (not hidden), and not autoblocks (`#1234`). */
function targets(events: readonly WikiLogEvent[]): string[] {
  const names = new Set<string>();
  for (const event of events) {
    if (event.target && !event.target.startsWith('#')) names.add(event.target);
    // The account is stored under the old name until the rename is seen; its new name is read by id.
    if (event.details.kind === 'rename') names.add(event.details.oldName).add(event.details.newName);
  }
  return [...names];
}
