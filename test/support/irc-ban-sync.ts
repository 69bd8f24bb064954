// The part of matrix-appservice-irc that reads ban lists (its `MatrixBanSync`, `ircService.banLists`),
// for tests on a real Synapse where the bridge itself cannot be installed. It is an application
// service like the bridge: Synapse pushes it transactions (`PUT /_matrix/app/v1/transactions/{txnId}`
// with the hs_token) and it calls the client-server API with its as_token, as its bot. What it does
// follows the bridge: at start it joins each ban list room (by id or alias) and reads the room's
// state; from then on every `m.policy.rule.user` state event pushed to it updates its rules (a rule
// whose content has no `entity` is withdrawn); `m.ban` rules match Matrix IDs by glob.
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { AppserviceRegistration } from './synapse.ts';

interface Rule {
  matcher: RegExp;
  reason: string;
}

export interface IrcBanSync {
  /** The registration to give Synapse (`startSynapse({ appservices: [...] })`). */
  registration: AppserviceRegistration;
  /** The bridge's bot, once the server name is known. */
  botUserId(serverName: string): string;
  /** What the bridge does at start: joins each room and reads its rules. Throws like the bridge logs. */
  syncRules(homeserverUrl: string, rooms: string[]): Promise<void>;
  /** The ban reason if a rule bans this user, false otherwise (the bridge's `isUserBanned`). */
  isUserBanned(userId: string): string | false;
  /** Every event Synapse pushed, in order. */
  readonly events: Array<{ type: string; room_id: string; state_key?: string; sender: string; content: Record<string, unknown> }>;
  stop(): Promise<void>;
}

/** MatrixGlob: `*` any run of characters, `?` one character, everything else literal. */
function glob(pattern: string): RegExp {
  const escaped = pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.');
  return new RegExp(`^${escaped}$`);
}

async function body(request: IncomingMessage): Promise<string> {
  let text = '';
  for await (const chunk of request) text += chunk;
  return text;
}

export async function startIrcBanSync(options: { senderLocalpart?: string; userPrefix?: string } = {}): Promise<IrcBanSync> {
  const sender = options.senderLocalpart ?? 'ircbridge';
  const hsToken = randomBytes(24).toString('hex');
  const asToken = randomBytes(24).toString('hex');
  const rules = new Map<string, Rule>();
  const tracked = new Set<string>();
  const events: IrcBanSync['events'] = [];

  const handleState = (event: { type: string; room_id: string; state_key?: string; content: Record<string, unknown> }) => {
    if (event.type !== 'm.policy.rule.user' || event.state_key === undefined || !tracked.has(event.room_id)) return;
    const key = `${event.room_id}:${event.state_key}`;
    const content = event.content;
    if (content.entity === undefined) {
      rules.delete(key);
      return;
    }
    if (content.recommendation !== 'm.ban' && content.recommendation !== 'org.matrix.mjolnir.ban') return;
    if (typeof content.entity !== 'string' || content.entity === '') throw new Error('`entity` key is not valid, must be a non-empty string');
    rules.set(key, { matcher: glob(content.entity), reason: typeof content.reason === 'string' && content.reason ? content.reason : 'No reason given' });
  };

  const server: Server = createServer(async (request, response) => {
    const url = new URL(request.url ?? '/', 'http://appservice');
    const authorized = request.headers.authorization === `Bearer ${hsToken}` || url.searchParams.get('access_token') === hsToken;
    const answer = (status: number, json: unknown) => {
      response.writeHead(status, { 'content-type': 'application/json' });
      response.end(JSON.stringify(json));
    };
    if (!authorized) return answer(403, { errcode: 'M_FORBIDDEN', error: 'bad hs_token' });
    if (request.method === 'PUT' && /^\/_matrix\/app\/v1\/transactions\/[^/]+$/.test(url.pathname)) {
      const txn = JSON.parse(await body(request)) as { events?: IrcBanSync['events'] };
      for (const event of txn.events ?? []) {
        events.push(event);
        if (event.state_key !== undefined) handleState(event);
      }
      return answer(200, {});
    }
    return answer(404, { errcode: 'M_NOT_FOUND', error: 'not handled by this appservice' });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;

  const client = async (homeserverUrl: string, method: string, path: string, json?: unknown) => {
    const response = await fetch(`${homeserverUrl}/_matrix/client/v3${path}`, {
      method,
      headers: { authorization: `Bearer ${asToken}`, 'content-type': 'application/json' },
      ...(json === undefined ? {} : { body: JSON.stringify(json) }),
      signal: AbortSignal.timeout(15_000),
    });
    const text = await response.text();
    if (!response.ok) throw new Error(`${method} ${path}: ${response.status} ${text}`);
    return JSON.parse(text);
  };

  return {
    registration: {
      id: 'irc',
      url: `http://127.0.0.1:${port}`,
      as_token: asToken,
      hs_token: hsToken,
      sender_localpart: sender,
      namespaces: { users: [{ exclusive: true, regex: `@${options.userPrefix ?? 'irc_'}.*` }], aliases: [], rooms: [] },
      rate_limited: false,
    },
    botUserId: (serverName) => `@${sender}:${serverName}`,
    async syncRules(homeserverUrl, rooms) {
      rules.clear();
      tracked.clear();
      for (const roomIdOrAlias of rooms) {
        const { room_id: roomId } = await client(homeserverUrl, 'POST', `/join/${encodeURIComponent(roomIdOrAlias)}`, {});
        tracked.add(roomId);
        const state = (await client(homeserverUrl, 'GET', `/rooms/${encodeURIComponent(roomId)}/state`)) as IrcBanSync['events'];
        for (const event of state) handleState({ ...event, room_id: roomId });
      }
    },
    isUserBanned(userId) {
      for (const rule of rules.values()) if (rule.matcher.test(userId)) return rule.reason;
      return false;
    },
    events,
    stop: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
