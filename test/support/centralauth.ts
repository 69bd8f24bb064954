// CentralAuth and GlobalBlocking in front of a real MediaWiki. Debian's MediaWiki has neither, so
// this layer answers exactly their Action API modules, as Wikimedia's central wiki does
// (formatversion=2): `meta=globaluserinfo`, `list=globalblocks`, and the log types `globalauth`,
// `gblblock`, `gblrights` and `gblrename` of `list=logevents`. Everything else (`list=users`, `list=blocks`, the
// local logs, `action=login`…) goes to the real wiki unchanged, so local facts stay real.
//
// Global accounts are made with `register`: the real wiki gets the local account and the layer the
// global one, whose id is the central id the OAuth profile's `sub` carries. A lock (`lock`,
// `unlock`) is what a steward's Special:CentralAuth does: the account's `locked` flag and a
// `globalauth/setstatus` log entry on `User:<name>@global` with `{added, removed}`.
import { createServer, request as httpRequest, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

interface GlobalAccount {
  id: number;
  name: string;
  /** The attached account's user id on the real wiki. */
  localId: number;
  registration: string;
  locked: boolean;
  hidden: boolean;
  groups: string[];
}

interface LogEntry {
  logid: number;
  ns: number;
  title: string;
  pageid: number;
  logpage: number;
  params: Record<string, unknown>;
  type: 'globalauth' | 'gblblock' | 'gblrights' | 'gblrename';
  action: string;
  user: string;
  timestamp: string;
  comment: string;
}

const CENTRAL_LOG_TYPES = new Set(['globalauth', 'gblblock', 'gblrights', 'gblrename']);
/** The database names of the central wiki (`home`) and of the real wiki (`merged[].wiki`). */
const HOME = 'metawiki';
const LOCAL = 'testwiki';

const isoSeconds = (date: Date) => date.toISOString().replace(/\.\d{3}Z$/, 'Z');

export class CentralAuthLayer {
  /** The requests the layer answered itself, for tests that check what was asked. */
  readonly answered: URLSearchParams[] = [];
  readonly #server: Server;
  readonly #wikiApi: URL;
  readonly #accounts = new Map<number, GlobalAccount>();
  readonly #log: LogEntry[] = [];
  readonly #sockets = new Set<Socket>();
  #nextId = 90_001;
  #nextLogId = 500_001;
  #port = 0;

  private constructor(wikiApiUrl: string) {
    this.#wikiApi = new URL(wikiApiUrl);
    this.#server = createServer((req, res) => void this.#handle(req, res).catch((error: unknown) => {
      res.writeHead(500, { 'content-type': 'text/plain' }).end(String(error));
    }));
    this.#server.on('connection', (socket) => {
      this.#sockets.add(socket);
      socket.on('close', () => this.#sockets.delete(socket));
    });
  }

  /** A layer over the real wiki whose `api.php` is `wikiApiUrl`. */
  static async start(wikiApiUrl: string): Promise<CentralAuthLayer> {
    const layer = new CentralAuthLayer(wikiApiUrl);
    await new Promise<void>((resolve) => layer.#server.listen(0, '127.0.0.1', resolve));
    layer.#port = (layer.#server.address() as AddressInfo).port;
    return layer;
  }

  /** What `wiki.api_url` names: the layer's api.php. */
  get apiUrl(): string {
    return `http://127.0.0.1:${this.#port}/api.php`;
  }

  /** The global account of the real wiki's user `localId` (`createUser`); says its central id. */
  register(name: string, localId: number): number {
    const id = this.#nextId++;
    this.#accounts.set(id, { id, name, localId, registration: isoSeconds(new Date()), locked: false, hidden: false, groups: [] });
    return id;
  }

  /** A steward locks the global account (Special:CentralAuth). */
  lock(name: string, options: { by?: string; reason?: string } = {}): number {
    return this.#setStatus(name, { added: ['locked'], removed: [] }, options);
  }

  unlock(name: string, options: { by?: string; reason?: string } = {}): number {
    return this.#setStatus(name, { added: [], removed: ['locked'] }, options);
  }

  #setStatus(name: string, change: { added: string[]; removed: string[] }, options: { by?: string; reason?: string }): number {
    const account = this.#byName(name);
    if (!account) throw new Error(`no global account named ${name}`);
    account.locked = change.added.includes('locked');
    const logid = this.#nextLogId++;
    this.#log.push({
      logid,
      ns: 2,
      title: `User:${account.name}@global`,
      pageid: 0,
      logpage: 0,
      params: change,
      type: 'globalauth',
      action: 'setstatus',
      user: options.by ?? 'Steward',
      timestamp: isoSeconds(new Date()),
      comment: options.reason ?? '',
    });
    return logid;
  }

  #byName(name: string): GlobalAccount | undefined {
    const key = name.replace(/_/g, ' ');
    return [...this.#accounts.values()].find((a) => a.name === key);
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const body = await readBody(req);
    const url = new URL(req.url ?? '/', 'http://layer');
    const params = new URLSearchParams(url.search);
    if (req.method === 'POST' && /x-www-form-urlencoded/.test(req.headers['content-type'] ?? '')) {
      for (const [k, v] of new URLSearchParams(body.toString('utf8'))) params.append(k, v);
    }
    const answer = this.#answer(params);
    if (answer === undefined) return this.#forward(req, res, url, body);
    this.answered.push(params);
    res.writeHead(200, { 'content-type': 'application/json; charset=utf-8' }).end(JSON.stringify(answer));
  }

  /** The central modules' answer, or undefined for a request the real wiki answers. */
  #answer(params: URLSearchParams): Record<string, unknown> | undefined {
    if (params.get('action') !== 'query') return undefined;
    const lists = (params.get('list') ?? '').split('|').filter(Boolean);
    const metas = (params.get('meta') ?? '').split('|').filter(Boolean);
    const central = metas.includes('globaluserinfo') || lists.includes('globalblocks') || (lists.includes('logevents') && CENTRAL_LOG_TYPES.has(params.get('letype') ?? ''));
    if (!central) return undefined;
    if (lists.length + metas.length > 1) {
      return { error: { code: 'unsupported', info: 'this test layer answers one central module per request' } };
    }
    if (metas.includes('globaluserinfo')) return { batchcomplete: true, query: { globaluserinfo: this.#globalUserInfo(params) } };
    if (lists.includes('globalblocks')) return this.#globalBlocks(params);
    return { batchcomplete: true, query: { logevents: this.#logEvents(params) } };
  }

  /** ApiQueryGlobalUserInfo: `locked` and `hidden` only when set; `groups` and `merged` with guiprop. */
  #globalUserInfo(params: URLSearchParams): Record<string, unknown> {
    const account = params.has('guiid') ? this.#accounts.get(Number(params.get('guiid'))) : this.#byName(params.get('guiuser') ?? '');
    if (!account) return { missing: true };
    const props = (params.get('guiprop') ?? '').split('|');
    return {
      home: HOME,
      id: account.id,
      registration: account.registration,
      name: account.name,
      ...(account.locked && { locked: true }),
      ...(account.hidden && { hidden: true }),
      ...(props.includes('groups') && { groups: account.groups }),
      ...(props.includes('merged') && { merged: [{ wiki: LOCAL, url: this.#wikiApi.origin, id: account.localId, timestamp: account.registration, method: 'new', editcount: 0, registration: account.registration }] }),
    };
  }

  /** GlobalBlocking: no global blocks here; a name without a global account is `nosuchuser`, as the real module answers. */
  #globalBlocks(params: URLSearchParams): Record<string, unknown> {
    for (const target of (params.get('bgtargets') ?? '').split('|')) {
      if (!this.#byName(target)) return { error: { code: 'nosuchuser', info: `The user "${target}" does not exist.` } };
    }
    return { batchcomplete: true, query: { globalblocks: [] } };
  }

  /** One log type, filtered by `letitle` and `lestart`/`ledir` (newest first unless `ledir=newer`). */
  #logEvents(params: URLSearchParams): LogEntry[] {
    const type = params.get('letype');
    const title = params.get('letitle')?.replace(/_/g, ' ');
    const newer = params.get('ledir') === 'newer';
    const start = params.get('lestart');
    const limit = params.get('lelimit') === 'max' || !params.get('lelimit') ? 500 : Number(params.get('lelimit'));
    return this.#log
      .filter((e) => e.type === type && (title === undefined || e.title === title))
      .filter((e) => start === null || (newer ? e.timestamp >= start : e.timestamp <= start))
      .sort((a, b) => (newer ? 1 : -1) * (a.timestamp.localeCompare(b.timestamp) || a.logid - b.logid))
      .slice(0, limit);
  }

  #forward(req: IncomingMessage, res: ServerResponse, url: URL, body: Buffer): void {
    const target = new URL(url.pathname.replace(/^\/api\.php/, this.#wikiApi.pathname) + url.search, this.#wikiApi);
    const headers = { ...req.headers, host: target.host };
    const upstream = httpRequest(target, { method: req.method, headers }, (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(res);
    });
    upstream.on('error', (error) => res.writeHead(502, { 'content-type': 'text/plain' }).end(String(error)));
    upstream.end(body);
  }

  async close(): Promise<void> {
    for (const socket of this.#sockets) socket.destroy();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }
}

async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}
