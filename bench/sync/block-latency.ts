// (a) How long a wiki block takes to become a ban in every managed room, end to end: a real
// MediaWiki, a real Synapse, and the worker as `worker` runs it (leader lock, log polling, the
// wiki's Action API, the executor, the SDK gateway), in this process. Each block is timed from
// the moment the block API call returns to the moment the last of the rooms' ban requests has
// returned (the ban is then in the room's state), as seen by a gateway wrapper that adds no
// requests. Blocks are placed one at a time, each after a random pause within the poll interval,
// so they land at random points of the polling cycle.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import YAML from 'yaml';
import { matrixGatewayFrom, startWorker, type Worker } from '../../src/commands/worker.ts';
import { parseConfig, type Config } from '../../src/config/load.ts';
import { migrate } from '../../src/db/migrate.ts';
import { openPglite } from '../../src/db/pglite.ts';
import { PostgresAccountRepository } from '../../src/identity/accounts.ts';
import { LocalpartPolicy } from '../../src/identity/localpart.ts';
import { createLogger } from '../../src/log.ts';
import { startWiki, type TestWiki } from '../../test/support/mediawiki.ts';
import type { RegisteredUser, Synapse } from '../../test/support/synapse.ts';
import { checkDeadline, createRoomsWithMembers, eachBounded, matrixCall, type Cleanups } from './common.ts';
import { WatchedGateway } from './watched-gateway.ts';

export interface LatencyOptions {
  synapse: Synapse;
  rooms: number;
  blocks: number;
  pollIntervalS: number;
  /** Epoch ms after which the run gives up. */
  deadline: number;
  /** Where this part registers what must be undone, so a run stopped midway undoes it too. */
  cleanups: Cleanups;
  progress: (line: string) => void;
}

export interface BlockSample {
  user: string;
  /** Block API call returned → last ban returned. */
  latencyMs: number;
  /** Block returned → first room snapshot of the pass that bans (poll wait, log and wiki reads). */
  detectMs: number;
  /** First snapshot → last ban (the executor's Matrix work). */
  applyMs: number;
  /** Matrix requests between the block and its last ban. */
  requests: number;
}

export interface LatencyResult {
  rooms: number;
  pollIntervalS: number;
  samples: BlockSample[];
  /** Rooms whose state, read at the end, holds a ban of every blocked user. */
  roomsVerified: number;
  setupMs: number;
}

const PER_BLOCK_TIMEOUT_MS = 30_000;

interface Mapped {
  username: string;
  userId: string;
  matrix: RegisteredUser;
}

export async function blockToBanLatency(options: LatencyOptions): Promise<LatencyResult> {
  const { synapse, progress } = options;
  const setupStart = performance.now();
  const cleanups = options.cleanups.child();
  try {
    const wiki = await startWiki();
    cleanups.add(() => wiki.stop());
    const dir = mkdtempSync(join(tmpdir(), 'wms-bench-'));
    cleanups.add(async () => rmSync(dir, { recursive: true, force: true }));
    const wikiId = new URL(wiki.baseUrl).hostname;

    progress(`creating ${options.blocks} wiki accounts and their Matrix users`);
    const mapped = await mapUsers(wiki, synapse, join(dir, 'data'), wikiId, options.blocks);
    checkDeadline(options.deadline, 'creating users');
    progress(`creating ${options.rooms} rooms with ${mapped.length} members each`);
    const roomIds = await createRoomsWithMembers(synapse, options.rooms, mapped.map((m) => m.matrix), 'managed');
    checkDeadline(options.deadline, 'creating rooms');

    const config = workerConfig(synapse, wiki, join(dir, 'data'), roomIds, options.pollIntervalS);
    let gateway: WatchedGateway | undefined;
    const log = createLogger('error', process.stderr);
    const worker: Worker = await startWorker(config, log, { gateway: (c) => (gateway = new WatchedGateway(matrixGatewayFrom(c.config, c.log))) });
    cleanups.add(() => worker.stop());
    await worker.leading;
    await until(() => worker.moderation?.status.lastFullPass !== undefined, 60_000, 'the first full pass');
    const setupMs = performance.now() - setupStart;

    const samples: BlockSample[] = [];
    for (const user of mapped) {
      checkDeadline(options.deadline, 'timing blocks');
      await sleep(Math.random() * options.pollIntervalS * 1000);
      samples.push(await timeOneBlock(wiki, gateway!, user, roomIds.length));
      progress(`block ${samples.length}/${mapped.length}: ${Math.round(samples.at(-1)!.latencyMs)} ms`);
    }
    return { rooms: roomIds.length, pollIntervalS: options.pollIntervalS, samples, roomsVerified: await roomsWithAllBans(synapse, roomIds, mapped), setupMs };
  } finally {
    await cleanups.run();
  }
}

async function timeOneBlock(wiki: TestWiki, gateway: WatchedGateway, user: Mapped, rooms: number): Promise<BlockSample> {
  const banned = new Set<string>();
  let firstSnapshot: number | undefined;
  let done: (at: number) => void = () => {};
  const finished = new Promise<number>((resolve) => (done = resolve));
  await wiki.block(user.username, { reason: 'Benchmark: vandalism' });
  const blocked = performance.now();
  const requestsBefore = gateway.requestCount;
  gateway.watcher = {
    snapshot: (_roomId, at) => (firstSnapshot ??= at),
    banned: (roomId, userId, at) => {
      if (userId !== user.userId) return;
      banned.add(roomId);
      if (banned.size === rooms) done(at);
    },
  };
  const timeout = sleep(PER_BLOCK_TIMEOUT_MS, undefined, { ref: false }).then(() => undefined);
  const at = await Promise.race([finished, timeout]);
  gateway.watcher = {};
  if (at === undefined) throw new Error(`${user.userId} was banned in ${banned.size} of ${rooms} rooms after ${PER_BLOCK_TIMEOUT_MS / 1000} s`);
  const first = firstSnapshot ?? blocked;
  return { user: user.userId, latencyMs: at - blocked, detectMs: first - blocked, applyMs: at - first, requests: gateway.requestCount - requestsBefore };
}

/** Wiki accounts, mapped (as a first sign-in would map them) to Matrix users that exist. */
async function mapUsers(wiki: TestWiki, synapse: Synapse, dataDir: string, wikiId: string, count: number): Promise<Mapped[]> {
  const names = Array.from({ length: count }, (_, i) => `Benchuser${String(i).padStart(3, '0')}`);
  const wikiIds: number[] = [];
  // One at a time: the wiki's PHP server has two workers, and account creation writes to SQLite.
  for (const name of names) wikiIds.push((await wiki.createUser(name, `${name}-password-123`)).userId);

  const db = await openPglite(dataDir);
  const localparts: string[] = [];
  try {
    await migrate(db);
    const accounts = new PostgresAccountRepository(db, { clock: () => new Date(), localparts: new LocalpartPolicy({ serverName: synapse.serverName }) });
    for (const [i, username] of names.entries()) {
      localparts.push((await accounts.upsertOnLogin({ wiki: wikiId, centralId: String(wikiIds[i]), username })).localpart);
    }
  } finally {
    await db.close();
  }
  const mapped: Mapped[] = [];
  await eachBounded(names, 8, async (username, i) => {
    const matrix = await synapse.registerUser(localparts[i]!, `${localparts[i]}-password-123`);
    mapped[i] = { username, userId: matrix.userId, matrix };
  });
  return mapped;
}

function workerConfig(synapse: Synapse, wiki: TestWiki, dataDir: string, roomIds: string[], pollIntervalS: number): Config {
  const yaml = YAML.stringify({
    oidc: { cookie_keys: ['b'.repeat(32)], key_encryption_secret: 'benchmark-only-secret' },
    database: { data_dir: dataDir },
    wiki: { base_url: wiki.baseUrl, contact: 'benchmark@example.org', central_auth: false, timeout: 15 },
    matrix: { homeserver_url: synapse.baseUrl, server_name: synapse.serverName, access_token: synapse.adminToken, user_id: synapse.adminUserId, request_timeout: 15 },
    // A full pass at start, then none during the run: every ban comes from log polling.
    sync: { enabled: true, dry_run: false, poll_interval: pollIntervalS, full_pass_interval: 3600 },
    moderation: { rooms: roomIds.map((room_id) => ({ room_id })) },
  });
  return parseConfig(yaml, 'bench.yaml');
}

async function until(condition: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

/** Reads each room's state once (after the run, so it costs the timing nothing). */
async function roomsWithAllBans(synapse: Synapse, roomIds: string[], mapped: Mapped[]): Promise<number> {
  let verified = 0;
  for (const roomId of roomIds) {
    const events: { type: string; state_key: string; content: { membership?: string } }[] = await matrixCall(synapse, synapse.adminToken, 'GET', `/rooms/${encodeURIComponent(roomId)}/state`);
    const banned = new Set(events.filter((e) => e.type === 'm.room.member' && e.content.membership === 'ban').map((e) => e.state_key));
    if (mapped.every((m) => banned.has(m.userId))) verified += 1;
  }
  return verified;
}
