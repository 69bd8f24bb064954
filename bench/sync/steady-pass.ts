// (b) What a full pass costs when nothing has changed: the real executor (policy, records,
// snapshots, reconcile, apply) over every mapped user and every managed room, after a first pass
// has put the rooms in the state the wiki asks for. The claim under test: one request per room
// (its state snapshot), whatever the number of users; O(rooms + changes), never O(users × rooms).
import pino from 'pino';
import { migrate } from '../../src/db/migrate.ts';
import { openPglite } from '../../src/db/pglite.ts';
import { SdkMatrixGateway, type MatrixGateway } from '../../src/matrix/index.ts';
import { moderationConfigSchema } from '../../src/moderation/config.ts';
import { ModerationExecutor } from '../../src/moderation/executor.ts';
import type { WikiState } from '../../src/moderation/types.ts';
import { FakeMatrix } from '../../test/support/fake-matrix.ts';
import type { Synapse } from '../../test/support/synapse.ts';
import { createRoomsWithMembers, eachBounded, syntheticUsers, withMemoryPeak } from './common.ts';

const silent = pino({ level: 'silent' });
const WIKI = 'wiki.example';

export interface SteadyResult {
  gateway: 'in-memory' | 'Synapse';
  users: number;
  rooms: number;
  /** The first pass, which brings the rooms to the desired state. */
  setup: { requests: number; actions: number; wallMs: number };
  /** The measured pass: nothing to do. */
  requests: number;
  actions: number;
  planMs: number;
  applyMs: number;
  /** Heap in use when the measured pass started (the rooms' state included), and its peak during it. */
  heapBefore: number;
  heapPeak: number;
  rssPeak: number;
}

interface Shape {
  users: number;
  sysops: number;
  blocked: number;
}

async function twoPasses(gateway: MatrixGateway, kind: SteadyResult['gateway'], serverName: string, roomIds: string[], state: WikiState): Promise<SteadyResult> {
  const db = await openPglite('memory://');
  try {
    await migrate(db);
    const executor = new ModerationExecutor({
      db,
      gateway,
      log: silent,
      moderation: moderationConfigSchema.parse({ rooms: roomIds.map((room_id) => ({ room_id })) }),
      serverName,
      dryRun: false,
    });
    let before = gateway.requestCount;
    let start = performance.now();
    const first = await executor.run(state);
    if (first.counts.failed + first.counts.lacks_power > 0) throw new Error(`the setup pass failed: ${JSON.stringify(first.counts)}`);
    const setup = { requests: gateway.requestCount - before, actions: first.results.length, wallMs: performance.now() - start };

    before = gateway.requestCount;
    start = performance.now();
    const { value, heapBefore, heapPeak, rssPeak } = await withMemoryPeak(async () => {
      const plan = await executor.plan(state);
      const planned = performance.now();
      const result = await executor.apply(plan);
      return { actions: result.results.length, planMs: planned - start, applyMs: performance.now() - planned };
    });
    return { gateway: kind, users: state.users.length, rooms: roomIds.length, setup, requests: gateway.requestCount - before, ...value, heapBefore, heapPeak, rssPeak };
  } finally {
    await db.close();
  }
}

/** An in-memory homeserver (snapshots count one request each, as the real gateway's do). */
export async function steadyPassInMemory(shape: Shape & { rooms: number }): Promise<SteadyResult> {
  const serverName = 'example.org';
  const matrix = new FakeMatrix(`@bot:${serverName}`);
  const users = syntheticUsers(WIKI, 'User', shape.users, shape.sysops, shape.blocked);
  const members = users.map((u) => `@${u.account.localpart}:${serverName}`);
  const roomIds = Array.from({ length: shape.rooms }, (_, i) => `!room${i}:${serverName}`);
  for (const roomId of roomIds) matrix.addRoom(roomId, { members });
  return twoPasses(matrix, 'in-memory', serverName, roomIds, { wiki: WIKI, users, complete: true });
}

/** A real Synapse: the users are registered and have joined every room. */
export async function steadyPassOnSynapse(synapse: Synapse, shape: Shape & { rooms: number }): Promise<SteadyResult> {
  const users = syntheticUsers(WIKI, 'Member', shape.users, shape.sysops, shape.blocked);
  const registered: { accessToken: string }[] = [];
  await eachBounded(users, 8, async (u, i) => {
    registered[i] = await synapse.registerUser(u.account.localpart, `${u.account.localpart}-password`);
  });
  const roomIds = await createRoomsWithMembers(synapse, shape.rooms, registered, 'steady');
  const gateway = new SdkMatrixGateway({ baseUrl: synapse.baseUrl, accessToken: synapse.adminToken, logger: silent, userId: synapse.adminUserId, requestTimeoutMs: 30_000 });
  return twoPasses(gateway, 'Synapse', synapse.serverName, roomIds, { wiki: WIKI, users, complete: true });
}
