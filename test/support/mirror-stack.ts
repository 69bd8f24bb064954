// What a moderation-mirroring test stands on: a real MediaWiki, a real Synapse, wiki users who
// signed in to Matrix (as the README's oidc_providers snippet leaves them: known to Synapse by
// the wiki's `sub`, with the wiki name as display name), managed rooms they joined, a moderation
// room, and the `worker` command as child processes reading a config file written here.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import YAML from 'yaml';
import { openDatabase, type Database } from '../../src/db/index.ts';
import { migrate } from '../../src/db/migrate.ts';
import { PostgresAccountRepository } from '../../src/identity/accounts.ts';
import { LocalpartPolicy } from '../../src/identity/localpart.ts';
import { backends, type TestDatabase } from './backends.ts';
import { start, type Running } from './cli.ts';
import { startWiki, type TestWiki } from './mediawiki.ts';
import { clientApi, startSynapse, type RegisteredUser, type Synapse, type SynapseOptions } from './synapse.ts';

export const WIKI_ID = 'test.wiki';
export const IDP = 'oidc-wikimedia';
const enc = encodeURIComponent;

/** Polls `check` until it returns a value other than undefined, for at most `timeoutMs`. */
export async function eventually<T>(what: string, check: () => Promise<T | undefined>, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const value = await check();
      if (value !== undefined) return value;
    } catch (error) {
      last = error;
    }
    await sleep(250);
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${String(last)}` : ''}`);
}

export interface MirrorStackOptions {
  /** Wiki usernames, each with a Matrix account. */
  names: string[];
  /** Managed rooms. Default 3. */
  rooms?: number;
  /** The worker's database: a PostgreSQL URL, or else PGlite in the stack's folder. */
  databaseUrl?: string | undefined;
  /**
   * A database of the stack's own on the test PostgreSQL server when there is one (so that a test
   * can read it while workers run; `MirrorStack.db`), PGlite otherwise.
   */
  ownPostgres?: boolean;
  synapse?: SynapseOptions;
  /** Merged over the generated service config's sections (`sync`, `matrix`, `logging`…). */
  config?: Record<string, Record<string, unknown>>;
}

export interface MirrorStack {
  wiki: TestWiki;
  synapse: Synapse;
  rooms: string[];
  notices: string;
  /** Matrix users by wiki username. */
  users: Map<string, RegisteredUser>;
  configPath: string;
  dir: string;
  /** The stack's own PostgreSQL database (`ownPostgres`), open for the test to read. */
  db: TestDatabase | undefined;
  /** Rewrites the config with these sections merged over the generated ones. */
  writeConfig(overrides?: Record<string, Record<string, unknown>>): void;
  startWorker(): Running;
  /** Each managed room's membership of this wiki user. */
  memberships(name: string): Promise<string[]>;
  /** Waits until every managed room shows `membership` for this user. */
  eventuallyAll(name: string, membership: string, timeoutMs?: number): Promise<void>;
  /** The ban events of this user in a room's timeline. */
  banEvents(roomId: string, name: string): Promise<any[]>;
  noticeTexts(): Promise<string[]>;
  /** The worker's database, opened while no worker runs when it is PGlite (one process at a time). */
  withDatabase<T>(work: (db: Database) => Promise<T>): Promise<T>;
  stop(): Promise<void>;
}

export async function startMirrorStack(input: MirrorStackOptions): Promise<MirrorStack> {
  const own = input.ownPostgres ? await backends().find((b) => b.name === 'postgres')?.open({ migrated: false }) : undefined;
  const options = own ? { ...input, databaseUrl: own.url } : input;
  const dir = mkdtempSync(join(tmpdir(), 'wms-mirror-'));
  const [wiki, synapse] = await Promise.all([startWiki(), startSynapse(options.synapse)]);
  const workers: Running[] = [];
  const api = clientApi(synapse);
  const stop = async () => {
    for (const w of workers) if (w.child.exitCode === null && w.child.signalCode === null) w.child.kill('SIGKILL');
    await Promise.all(workers.map((w) => w.exited));
    await synapse.stop();
    await wiki.stop();
    await own?.dispose();
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    const withDatabase = async <T>(work: (db: Database) => Promise<T>): Promise<T> => {
      const db = await openDatabase({ url: options.databaseUrl, dataDir: join(dir, 'pglite'), poolMax: 2, connectTimeoutSeconds: 5 });
      try {
        return await work(db);
      } finally {
        await db.close();
      }
    };
    // Everyone is exempt from the homeserver's rate limits, so a test can set tight ones for the bot alone.
    const unlimited = (userId: string) => api.admin('POST', `/_synapse/admin/v1/users/${enc(userId)}/override_ratelimit`, { messages_per_second: 0, burst_count: 0 });
    await unlimited(synapse.adminUserId);
    const users = new Map<string, RegisteredUser>();
    const localparts = new LocalpartPolicy({ serverName: synapse.serverName });
    await withDatabase(async (db) => {
      await migrate(db);
      const accounts = new PostgresAccountRepository(db, { clock: () => new Date(), localparts });
      for (const name of options.names) {
        const { userId } = await wiki.createUser(name, 'wiki-password-of-a-test-user');
        const account = await accounts.upsertOnLogin({ wiki: WIKI_ID, centralId: String(userId), username: name });
        const user = await synapse.registerUser(account.localpart, 'matrix-password-of-a-test-user');
        await api.admin('PUT', `/_synapse/admin/v2/users/${enc(user.userId)}`, { external_ids: [{ auth_provider: IDP, external_id: String(userId) }], displayname: name });
        await unlimited(user.userId);
        users.set(name, user);
      }
    });

    const rooms: string[] = [];
    for (let i = 0; i < (options.rooms ?? 3); i++) {
      const { room_id } = await api.admin('POST', '/createRoom', { preset: 'public_chat', room_version: '11', name: `room ${i + 1}` });
      rooms.push(room_id);
      for (const user of users.values()) await api.call(user.accessToken, 'POST', `/join/${enc(room_id)}`, {});
    }
    const notices = (await api.admin('POST', '/createRoom', { preset: 'private_chat', name: 'moderation' })).room_id as string;

    const configPath = join(dir, 'config.yaml');
    const writeConfig = (overrides: Record<string, Record<string, unknown>> = {}) => {
      const base: Record<string, Record<string, unknown>> = {
        oidc: { cookie_keys: ['k'.repeat(40)], key_encryption_secret: 'test-secret' },
        database: options.databaseUrl ? { url: options.databaseUrl } : { data_dir: join(dir, 'pglite') },
        wiki: { base_url: wiki.baseUrl, contact: 'moderation-tests@example.org', central_auth: false },
        identity: { wiki_id: WIKI_ID },
        matrix: { homeserver_url: synapse.baseUrl, server_name: synapse.serverName, access_token: synapse.adminToken, user_id: synapse.adminUserId, request_timeout: 5, synapse_idp_id: IDP },
        sync: { enabled: true, dry_run: false, poll_interval: 1, full_pass_interval: 3600, moderation_room: notices },
        moderation: { rooms: rooms.map((room_id) => ({ room_id })) },
        logging: { level: 'debug' },
      };
      const merged = { ...base };
      for (const source of [options.config ?? {}, overrides]) {
        for (const [section, values] of Object.entries(source)) merged[section] = { ...merged[section], ...values };
      }
      writeFileSync(configPath, YAML.stringify(merged));
    };
    writeConfig();

    const member = async (roomId: string, name: string) => (await api.state(roomId, 'm.room.member', users.get(name)!.userId)) as { membership: string };
    const memberships = (name: string) => Promise.all(rooms.map(async (room) => (await member(room, name)).membership));
    const timeline = async (roomId: string, type: string): Promise<any[]> => {
      const filter = enc(JSON.stringify({ types: [type] }));
      const page = await api.admin('GET', `/rooms/${enc(roomId)}/messages?dir=b&limit=500&filter=${filter}`);
      return page.chunk.reverse();
    };
    return {
      wiki,
      synapse,
      rooms,
      notices,
      users,
      configPath,
      dir,
      db: own,
      writeConfig,
      startWorker() {
        const worker = start(['worker', '--config', configPath]);
        workers.push(worker);
        return worker;
      },
      memberships,
      async eventuallyAll(name, membership, timeoutMs = 20_000) {
        await eventually(`${name} ${membership} in every room`, async () => ((await memberships(name)).every((m) => m === membership) ? true : undefined), timeoutMs);
      },
      banEvents: async (roomId, name) => (await timeline(roomId, 'm.room.member')).filter((e) => e.state_key === users.get(name)!.userId && e.content.membership === 'ban'),
      noticeTexts: async () => (await timeline(notices, 'm.room.message')).filter((e) => e.content.msgtype === 'm.notice').map((e) => e.content.body as string),
      withDatabase,
      stop,
    };
  } catch (error) {
    await stop();
    throw error;
  }
}
