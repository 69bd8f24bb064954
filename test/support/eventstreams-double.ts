// A loopback stand-in for Wikimedia EventStreams' recentchange stream, speaking its format:
//
//   event: message
//   id: [{"topic":"eqiad.mediawiki.recentchange","partition":0,"offset":N},{"topic":"codfw.mediawiki.recentchange","partition":0,"offset":-1}]
//   data: {"$schema":"/mediawiki/recentchange/1.0.0","meta":{…},"type":"log",…}
//
// Events carry the fields of the mediawiki/recentchange schema as MediaWiki's
// MachineReadableRCFeedFormatter fills them (log params with their `5::` prefixes stripped, `[]`
// when a log entry has none). A reconnect with `Last-Event-ID` resumes after the offset it names.
// The double can drop connections mid-stream and refuse connections with an HTTP status.
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

const TOPIC = 'eqiad.mediawiki.recentchange';
const OTHER_TOPIC = 'codfw.mediawiki.recentchange';

export type RecentChange = Record<string, unknown> & { meta: Record<string, unknown> };

export interface WikiSite {
  /** Database name, e.g. `metawiki`. */
  wiki: string;
  /** Host, e.g. `meta.wikimedia.org`. */
  domain: string;
  /** The user namespace's local name (`User`, `Benutzer`…). */
  userNamespace?: string;
}

export const META: WikiSite = { wiki: 'metawiki', domain: 'meta.wikimedia.org' };
export const ENWIKI: WikiSite = { wiki: 'enwiki', domain: 'en.wikipedia.org' };
export const DEWIKI: WikiSite = { wiki: 'dewiki', domain: 'de.wikipedia.org', userNamespace: 'Benutzer' };

let rcid = 1_700_000_000;
let logId = 160_000_000;

function base(site: WikiSite, fields: { namespace: number; title: string; user: string; comment: string; type: string }): RecentChange {
  const now = new Date();
  const titleUrl = `https://${site.domain}/wiki/${encodeURIComponent(fields.title.replace(/ /g, '_')).replace(/%3A/g, ':')}`;
  return {
    $schema: '/mediawiki/recentchange/1.0.0',
    meta: {
      uri: titleUrl,
      request_id: randomUUID(),
      id: randomUUID(),
      dt: now.toISOString(),
      domain: site.domain,
      stream: 'mediawiki.recentchange',
      topic: TOPIC,
      partition: 0,
      offset: -1, // set when published
    },
    id: ++rcid,
    type: fields.type,
    namespace: fields.namespace,
    title: fields.title,
    title_url: titleUrl,
    comment: fields.comment,
    timestamp: Math.floor(now.getTime() / 1000),
    user: fields.user,
    bot: false,
    server_url: `https://${site.domain}`,
    server_name: site.domain,
    server_script_path: '/w',
    wiki: site.wiki,
    parsedcomment: fields.comment,
  };
}

function logEvent(
  site: WikiSite,
  f: { target: string; user: string; comment: string; logType: string; logAction: string; params: unknown; actionComment: string; namespace?: number },
): RecentChange {
  const title = `${site.userNamespace ?? 'User'}:${f.target}`;
  return {
    ...base(site, { namespace: f.namespace ?? 2, title, user: f.user, comment: f.comment, type: 'log' }),
    log_id: ++logId,
    log_type: f.logType,
    log_action: f.logAction,
    log_params: f.params,
    log_action_comment: f.actionComment,
  };
}

/** `block/block` (or `reblock`): params `{duration, flags, sitewide}`; flags as the comma list the log row stores. */
export function blockEvent(site: WikiSite, target: string, o: { by?: string; reason?: string; duration?: string; partial?: boolean; action?: 'block' | 'reblock' } = {}): RecentChange {
  const duration = o.duration ?? 'infinity';
  return logEvent(site, {
    target,
    user: o.by ?? 'Admin',
    comment: o.reason ?? 'Vandalism',
    logType: 'block',
    logAction: o.action ?? 'block',
    params: { duration, flags: 'nocreate', sitewide: !o.partial },
    actionComment: `blocked [[${site.userNamespace ?? 'User'}:${target}]] with an expiration time of ${duration} (account creation disabled): ${o.reason ?? 'Vandalism'}`,
  });
}

/** `block/unblock`: no params, which the feed sends as `[]`. */
export function unblockEvent(site: WikiSite, target: string, o: { by?: string } = {}): RecentChange {
  return logEvent(site, { target, user: o.by ?? 'Admin', comment: '', logType: 'block', logAction: 'unblock', params: [], actionComment: `unblocked [[User:${target}]]` });
}

/** `rights/rights`: `{oldgroups, newgroups, oldmetadata, newmetadata}`. */
export function rightsEvent(site: WikiSite, target: string, o: { from?: string[]; to: string[]; by?: string }): RecentChange {
  const from = o.from ?? [];
  return logEvent(site, {
    target,
    user: o.by ?? 'Bureaucrat',
    comment: '',
    logType: 'rights',
    logAction: 'rights',
    params: { oldgroups: from, newgroups: o.to, oldmetadata: from.map(() => ({ expiry: null })), newmetadata: o.to.map(() => ({ expiry: null })) },
    actionComment: `changed group membership for [[User:${target}]] from ${from.join(', ') || '(none)'} to ${o.to.join(', ') || '(none)'}`,
  });
}

/** CentralAuth `globalauth/setstatus` on the central wiki: title `User:Name@global`, `{added, removed}`. */
export function lockEvent(target: string, o: { unlock?: boolean; by?: string; reason?: string } = {}): RecentChange {
  const added = o.unlock ? [] : ['locked'];
  const removed = o.unlock ? ['locked'] : [];
  return logEvent(META, {
    target: `${target}@global`,
    user: o.by ?? 'Steward',
    comment: o.reason ?? 'Long-term abuse',
    logType: 'globalauth',
    logAction: 'setstatus',
    params: { added, removed },
    actionComment: `changed status for global account "[[User:${target}@global]]": set ${added.join(', ') || '(none)'}; unset ${removed.join(', ') || '(none)'}`,
  });
}

/** GlobalBlocking `gblblock/gblock`: title `User:Name`, `{expiry, flags}`. */
export function globalBlockEvent(target: string, o: { by?: string; reason?: string } = {}): RecentChange {
  return logEvent(META, {
    target,
    user: o.by ?? 'Steward',
    comment: o.reason ?? 'Cross-wiki abuse',
    logType: 'gblblock',
    logAction: 'gblock',
    params: { expiry: 'infinity', flags: [] },
    actionComment: `globally blocked [[User:${target}]] (expiration infinite)`,
  });
}

/** CentralAuth `gblrights/usergroups`: title `User:Name`, `{oldGroups, newGroups, oldMetadata, newMetadata}`. */
export function globalRightsEvent(target: string, o: { from?: string[]; to: string[] }): RecentChange {
  const from = o.from ?? [];
  return logEvent(META, {
    target,
    user: 'Steward',
    comment: '',
    logType: 'gblrights',
    logAction: 'usergroups',
    params: { oldGroups: from, newGroups: o.to, oldMetadata: from.map(() => ({ expiry: null })), newMetadata: o.to.map(() => ({ expiry: null })) },
    actionComment: `changed global group membership for [[User:${target}]]`,
  });
}

/** A log event of another type (e.g. `delete/delete` on an article). */
export function otherLogEvent(site: WikiSite, title: string, logType: string, logAction: string): RecentChange {
  return {
    ...base(site, { namespace: 0, title, user: 'Admin', comment: 'cleanup', type: 'log' }),
    log_id: ++logId,
    log_type: logType,
    log_action: logAction,
    log_params: [],
    log_action_comment: `deleted "[[${title}]]"`,
  };
}

/** An edit: no log fields, `length` and `revision` instead. */
export function editEvent(site: WikiSite, title: string, o: { user?: string; namespace?: number } = {}): RecentChange {
  const revision = Math.floor(Math.random() * 1e9);
  return {
    ...base(site, { namespace: o.namespace ?? 0, title, user: o.user ?? 'Editor', comment: 'copyedit', type: 'edit' }),
    minor: false,
    patrolled: true,
    length: { old: 1200, new: 1234 },
    revision: { old: revision, new: revision + 1 },
    notify_url: `https://${site.domain}/w/index.php?diff=${revision + 1}&oldid=${revision}`,
  };
}

/** EventStreams' own monitoring events: `meta.domain` is `canary`. */
export function canaryEvent(): RecentChange {
  const event = blockEvent(META, 'Canary');
  event.meta.domain = 'canary';
  return event;
}

export interface ConnectionRecord {
  lastEventId: string | null;
  userAgent: string | null;
  at: number;
}

export interface EventStreamsDouble {
  url: string;
  /** Every connection attempt, in order. */
  connections: ConnectionRecord[];
  /** Appends events to the stream (offsets 0, 1, 2…) and sends them to the open connections. */
  publish(...events: RecentChange[]): void;
  /** The SSE id of the event at this offset. */
  idOf(offset: number): string;
  /** Ends every open connection, as the real server does now and then. */
  dropConnections(): void;
  /** The next connection is dropped after sending this many events. */
  dropNextAfter(events: number): void;
  /** The next `count` connections are answered with this HTTP status. */
  refuseNext(count: number, status: number): void;
  close(): Promise<void>;
}

export function sseId(offset: number): string {
  return JSON.stringify([
    { topic: TOPIC, partition: 0, offset },
    { topic: OTHER_TOPIC, partition: 0, offset: -1 },
  ]);
}

/** The offset of our topic in a Last-Event-ID, or undefined when it names none. */
function resumeOffset(header: string | undefined): number | undefined {
  if (!header) return undefined;
  try {
    const parts = JSON.parse(header) as { topic?: string; partition?: number; offset?: number }[];
    const mine = parts.find((p) => p.topic === TOPIC && p.partition === 0);
    return typeof mine?.offset === 'number' ? mine.offset : undefined;
  } catch {
    return undefined;
  }
}

export async function startEventStreamsDouble(): Promise<EventStreamsDouble> {
  const log: RecentChange[] = [];
  const open = new Set<{ res: ServerResponse; budget: number }>();
  const connections: ConnectionRecord[] = [];
  let dropAfter: number | undefined;
  let refusals: { count: number; status: number } | undefined;

  const frame = (offset: number) => `event: message\nid: ${sseId(offset)}\ndata: ${JSON.stringify(log[offset])}\n\n`;

  const send = (conn: { res: ServerResponse; budget: number }, offset: number) => {
    if (conn.budget <= 0) return;
    conn.res.write(frame(offset));
    conn.budget--;
    if (conn.budget === 0) {
      open.delete(conn);
      conn.res.end();
    }
  };

  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    if (!req.url?.startsWith('/v2/stream/recentchange')) {
      res.writeHead(404).end();
      return;
    }
    const lastEventId = typeof req.headers['last-event-id'] === 'string' ? req.headers['last-event-id'] : null;
    connections.push({ lastEventId, userAgent: req.headers['user-agent'] ?? null, at: Date.now() });
    if (refusals && refusals.count > 0) {
      refusals.count--;
      res.writeHead(refusals.status, { 'content-type': 'application/json' }).end(JSON.stringify({ status: refusals.status, message: 'refused by the test double' }));
      return;
    }
    if (lastEventId !== null && resumeOffset(lastEventId) === undefined) {
      res.writeHead(400, { 'content-type': 'application/json' }).end(JSON.stringify({ status: 400, message: 'Invalid Last-Event-ID' }));
      return;
    }
    res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache', connection: 'keep-alive' });
    res.flushHeaders();
    const conn = { res, budget: dropAfter ?? Number.POSITIVE_INFINITY };
    dropAfter = undefined;
    open.add(conn);
    req.on('close', () => open.delete(conn));
    const from = (resumeOffset(lastEventId ?? undefined) ?? -1) + 1;
    for (let offset = from; offset < log.length && open.has(conn); offset++) send(conn, offset);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}/v2/stream/recentchange`,
    connections,
    publish(...events) {
      for (const event of events) {
        const offset = log.length;
        event.meta.offset = offset;
        log.push(event);
        for (const conn of [...open]) send(conn, offset);
      }
    },
    idOf: sseId,
    dropConnections() {
      for (const conn of open) conn.res.end();
      open.clear();
    },
    dropNextAfter(events) {
      dropAfter = events;
    },
    refuseNext(count, status) {
      refusals = { count, status };
    },
    async close() {
      for (const conn of open) conn.res.destroy();
      open.clear();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
