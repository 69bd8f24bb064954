// Real-time triggers from Wikimedia EventStreams (the `recentchange` stream, Server-Sent Events):
// block, rights and lock log events name a user to reconcile now. Only a trigger: log polling
// and the full pass keep working without it, and repair whatever it misses.
//
// Facts this relies on (EventStreams, MediaWiki's MachineReadableRCFeedFormatter, CentralAuth):
// - Each SSE message is `event: message`, `id: <JSON array of {topic, partition, offset|timestamp}>`
//   and `data: <one recentchange event>`. The id is opaque to us: it is stored verbatim and sent
//   back as `Last-Event-ID` to resume where we stopped.
// - Log entries arrive as `type: "log"` with `log_type`, `log_action`, `log_params` (prefixes
//   like `5::` stripped; `[]` when empty) and `title`, the target's user page in the wiki's own
//   language (`User:Name`, `Benutzer:Name`), namespace 2. A global lock's title is
//   `User:Name@global`; global blocks and global rights name `User:Name`. A local rename names
//   the old `User:Name`; a global rename (`gblrename/rename`) names `Special:CentralAuth/<new name>`,
//   with the old one in `log_params.olduser`.
// - `meta.domain` is `canary` for EventStreams' own monitoring events.
// - The server drops connections from time to time; a resume id too old to honour is refused.
import { EventSource } from 'eventsource';
import { createLogger, type Logger } from '../../log.ts';
import { CENTRALAUTH_LOG_TYPES, LOCAL_LOG_TYPES, targetOfLogTitle } from '../../wiki/action-api.ts';
import type { SyncCursorStore } from './cursors.ts';

const LOCAL = new Set<string>(LOCAL_LOG_TYPES);
const GLOBAL = new Set<string>(CENTRALAUTH_LOG_TYPES);
const USER_NAMESPACE = 2;

export interface RecentChangeFilter {
  /** Local logs (block, rights) of this wiki only (`wiki` field, e.g. `metawiki`); all wikis when unset. */
  wiki?: string | undefined;
  /**
   * Also global logs (globalauth, gblblock, gblrights). They are accepted from any wiki: they are
   * written on the central wiki (Meta on Wikimedia), whichever wiki the service mirrors.
   */
  centralAuth: boolean;
}

/** The user a recentchange event is about, when it is a moderation log event we mirror. */
export interface ModerationChange {
  username: string;
  wiki: string;
  logType: string;
  logAction: string;
  logId: number | null;
}

/** The moderation change in a recentchange event, or undefined for anything else (edits, other logs, canaries). */
export function moderationChange(event: unknown, filter: RecentChangeFilter): ModerationChange | undefined {
  if (typeof event !== 'object' || event === null) return undefined;
  const e = event as Record<string, unknown>;
  const meta = e.meta as Record<string, unknown> | undefined;
  if (e.type !== 'log' || meta?.domain === 'canary') return undefined;
  const { log_type: logType, log_action: logAction, wiki, title, namespace } = e;
  if (typeof logType !== 'string' || typeof logAction !== 'string' || typeof wiki !== 'string' || typeof title !== 'string') return undefined;
  const local = LOCAL.has(logType);
  if (!local && !(filter.centralAuth && GLOBAL.has(logType))) return undefined;
  if (local && filter.wiki !== undefined && wiki !== filter.wiki) return undefined;
  // A global rename names Special:CentralAuth/<new name>; the account is stored under the old one.
  const params = e.log_params as Record<string, unknown> | undefined;
  const renamedFrom = logType === 'gblrename' && typeof params?.olduser === 'string' ? params.olduser : undefined;
  // Global blocks by id and suppressed targets are not user pages: nothing to reconcile by name.
  if (namespace !== USER_NAMESPACE && renamedFrom === undefined) return undefined;
  const username = (renamedFrom ?? targetOfLogTitle(USER_NAMESPACE, title)).trim();
  if (!username || username.startsWith('#') || username.includes('/')) return undefined;
  return { username, wiki, logType, logAction, logId: typeof e.log_id === 'number' ? e.log_id : null };
}

/**
 * Told of each user to reconcile. Events wait for it one at a time, so it should hand the name
 * over (e.g. to the next targeted pass) rather than reconcile in place; a failure is logged and
 * left to log polling.
 */
export type OnUser = (username: string, change: ModerationChange) => void | Promise<void>;

export interface EventStreamTriggerOptions extends RecentChangeFilter {
  /** The recentchange stream (`sync.event_streams.url`). */
  url: string;
  /** Wikimedia's User-Agent policy applies to EventStreams too. */
  userAgent: string;
  cursors: SyncCursorStore;
  /** Where the Last-Event-ID is stored. Default `eventstreams:recentchange`. */
  cursorName?: string;
  /** First wait after a failed or dropped connection; doubled each time up to `maxBackoffMs`. Default 1 s. */
  minBackoffMs?: number;
  /** Default 60 s. */
  maxBackoffMs?: number;
  /** The position is written at most this often (the stream carries every edit of every wiki). Default 5 s. */
  persistIntervalMs?: number;
  /** Told of every reconnection, after how long and why (for metrics and tests). */
  onReconnect?: (delayMs: number, reason: string) => void;
  fetch?: typeof globalThis.fetch;
  logger?: Logger;
}

type Timer = ReturnType<typeof setTimeout>;

/**
 * Follows the stream and calls `onUser` for each moderation log event, one at a time and in order.
 * Reconnects with a bounded exponential back-off and resumes with the stored Last-Event-ID.
 */
export class EventStreamTrigger {
  readonly #options: EventStreamTriggerOptions;
  readonly #cursorName: string;
  readonly #log: Logger;
  #onUser: OnUser | undefined;
  #source: EventSource | undefined;
  #lastEventId: string | undefined;
  #persisted: string | undefined;
  #failures = 0;
  #reconnectTimer: Timer | undefined;
  #persistTimer: ReturnType<typeof setInterval> | undefined;
  #queue: Promise<void> = Promise.resolve();
  #running = false;

  constructor(options: EventStreamTriggerOptions) {
    this.#options = options;
    this.#cursorName = options.cursorName ?? 'eventstreams:recentchange';
    this.#log = (options.logger ?? createLogger('silent')).child({ component: 'event-streams' });
  }

  /** The id of the last event handled, as the server sent it. */
  get lastEventId(): string | undefined {
    return this.#lastEventId;
  }

  get running(): boolean {
    return this.#running;
  }

  /** Whether a connection to the stream is open right now (for the admin pages' sync status). */
  get connected(): boolean {
    return this.#source?.readyState === EventSource.OPEN;
  }

  /** Loads the stored position and connects; resolves once the first connection is under way. */
  async start(onUser: OnUser): Promise<void> {
    if (this.#running) throw new Error('the EventStreams trigger is already running');
    const stored = await this.#options.cursors.get(this.#cursorName);
    this.#lastEventId = typeof stored === 'string' && stored ? stored : undefined;
    this.#persisted = this.#lastEventId;
    this.#onUser = onUser;
    this.#running = true;
    this.#failures = 0;
    this.#persistTimer = setInterval(() => void this.#persist(), this.#options.persistIntervalMs ?? 5_000);
    this.#connect();
    this.#log.info({ resuming: this.#lastEventId !== undefined }, 'following EventStreams');
  }

  /** Disconnects, lets the event in hand finish, and stores the position. */
  async stop(): Promise<void> {
    if (!this.#running) return;
    this.#running = false;
    clearTimeout(this.#reconnectTimer);
    clearInterval(this.#persistTimer);
    this.#source?.close();
    this.#source = undefined;
    await this.#queue;
    await this.#persist();
    this.#log.info('stopped following EventStreams');
  }

  #connect(): void {
    const resumeFrom = this.#lastEventId;
    const baseFetch = this.#options.fetch ?? globalThis.fetch;
    let received = false;
    const source = new EventSource(this.#options.url, {
      fetch: (input, init) => {
        const headers = new Headers(init?.headers);
        headers.set('user-agent', this.#options.userAgent);
        if (resumeFrom) headers.set('last-event-id', resumeFrom);
        return baseFetch(input, { ...init, headers });
      },
    });
    this.#source = source;
    source.addEventListener('message', (message) => {
      if (!received) {
        received = true;
        this.#failures = 0;
      }
      const { data, lastEventId } = message;
      this.#queue = this.#queue.then(() => this.#handle(data, lastEventId));
    });
    source.addEventListener('error', (error) => {
      // EventSource would retry on its own, at a fixed interval and without our resume id after
      // a refusal; we close it and decide ourselves.
      source.close();
      if (this.#source !== source || !this.#running) return;
      this.#source = undefined;
      const status = error.code;
      if (status === 400 && resumeFrom !== undefined) {
        this.#log.warn({ status }, 'EventStreams refused to resume from the stored position (too old?); starting from now, polling covers the gap');
        this.#lastEventId = undefined;
        void this.#persist(null);
      }
      this.#scheduleReconnect(error.message ?? (status ? `HTTP ${status}` : 'connection lost'));
    });
  }

  #scheduleReconnect(reason: string): void {
    const min = this.#options.minBackoffMs ?? 1_000;
    const max = this.#options.maxBackoffMs ?? 60_000;
    const delay = Math.min(min * 2 ** Math.min(this.#failures, 30), max);
    this.#failures++;
    this.#log.warn({ reason, delayMs: delay, failures: this.#failures }, 'EventStreams connection ended; reconnecting');
    this.#options.onReconnect?.(delay, reason);
    this.#reconnectTimer = setTimeout(() => {
      if (this.#running) this.#connect();
    }, delay);
  }

  async #handle(data: string, id: string): Promise<void> {
    let event: unknown;
    try {
      event = JSON.parse(data);
    } catch {
      this.#log.warn({ id }, 'EventStreams sent an event that is not JSON; skipped');
    }
    const change = moderationChange(event, this.#options);
    if (change && this.#onUser) {
      try {
        await this.#onUser(change.username, change);
      } catch (err) {
        // Polling reads the same log entry soon; the stream must not stall on one user.
        this.#log.warn({ err, logType: change.logType, logId: change.logId }, 'reconcile trigger failed; log polling will retry');
      }
    }
    if (id) this.#lastEventId = id;
  }

  async #persist(value: string | null | undefined = this.#lastEventId): Promise<void> {
    if (value === undefined || value === this.#persisted) return;
    try {
      await this.#options.cursors.set({ [this.#cursorName]: value });
      this.#persisted = value ?? undefined;
    } catch (err) {
      this.#log.warn({ err }, 'could not store the EventStreams position; trying again later');
    }
  }
}
