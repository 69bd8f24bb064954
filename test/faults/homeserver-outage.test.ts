// The homeserver fails under the worker: stopped for a minute while a block arrives, stopped in
// the middle of a pass, rate limiting the bot for longer than it may wait. Each time, once the
// homeserver answers again, every managed room holds exactly one ban — without a worker restart
// and without a full pass (`full_pass_interval` is an hour here): what could not be done stayed
// unacknowledged and was tried again.
import assert from 'node:assert/strict';
import { afterAll, beforeAll, describe, jest, test } from '@jest/globals';
import { setTimeout as sleep } from 'node:timers/promises';
import { ModerationAuditLog } from '../../src/moderation/records.ts';
import type { TestDatabase } from '../support/backends.ts';
import type { Running } from '../support/cli.ts';
import { mediawikiAvailable } from '../support/mediawiki.ts';
import { eventually, startMirrorStack, type MirrorStack } from '../support/mirror-stack.ts';
import { skipUnless } from '../support/real-parts.ts';
import { clientApi, synapseAvailable } from '../support/synapse.ts';
import { skippable } from '../support/suites.ts';

const unavailable = mediawikiAvailable() ?? synapseAvailable();
const OUTAGE_MS = 60_000;
const POLL_S = 1;
/** Two polls, the worker's back-off (at most ten poll intervals) and the Matrix client's retries in a pass, with room for a slow machine. */
const RECOVERY_MS = (2 + 10) * POLL_S * 1000 + 20_000;
const enc = encodeURIComponent;

jest.setTimeout(600_000);

skippable(describe, skipUnless(unavailable))('the homeserver failing under the worker', () => {
  let stack: MirrorStack;
  let worker: Running;
  /** PostgreSQL when there is one (the production case): the audit is read while the worker runs. */
  let db: TestDatabase | undefined;

  beforeAll(async () => {
    if (unavailable) throw new Error(unavailable);
    stack = await startMirrorStack({
      names: ['Arrives During Outage', 'Banned Mid Pass', 'Rate Limited'],
      rooms: 8,
      ownPostgres: true,
      // One event per 10 s for whoever the stack does not exempt; the bot is exempt until a test says otherwise.
      synapse: { config: { rc_message: { per_second: 0.1, burst_count: 1 } } },
    });
    db = stack.db;
    worker = stack.startWorker();
    await worker.waitFor(/leader: moderation mirroring is running/, 30_000);
    await worker.waitFor(/moderation pass done/, 30_000);
  });
  afterAll(async () => {
    await stack?.stop();
  });

  async function exactlyOneBanPerRoom(name: string): Promise<void> {
    for (const room of stack.rooms) assert.equal((await stack.banEvents(room, name)).length, 1, `one ban event of ${name} in ${room}`);
    if (db) {
      const applied = (await new ModerationAuditLog(db).list({ userId: stack.users.get(name)!.userId, kind: 'ban', outcome: 'applied' })).entries;
      assert.deepEqual(applied.map((e) => e.roomId).sort(), [...stack.rooms].sort(), 'one applied ban recorded per room');
    }
  }

  test('stopped for a minute while a block arrives: every room is banned once it is back', async () => {
    await stack.synapse.pause();
    await stack.wiki.block('Arrives During Outage', { reason: 'vandalism during an outage' });
    await sleep(OUTAGE_MS);
    await stack.synapse.resume();
    const back = Date.now();
    await stack.eventuallyAll('Arrives During Outage', 'ban', RECOVERY_MS);
    console.info(`banned in ${stack.rooms.length} rooms ${Date.now() - back} ms after the homeserver came back`);
    await sleep(2 * POLL_S * 1000);
    await exactlyOneBanPerRoom('Arrives During Outage');
    assert.equal(worker.child.exitCode, null, 'the worker kept running');
  });

  test('stopped in the middle of a pass: the rest of the rooms are banned once it is back', async () => {
    const api = clientApi(stack.synapse);
    const limit = `/_synapse/admin/v1/users/${enc(stack.synapse.adminUserId)}/override_ratelimit`;
    // Four actions a second, waited for in place: a pass over the rooms takes two seconds.
    await api.admin('POST', limit, { messages_per_second: 4, burst_count: 1 });
    const mark = worker.mark();
    await stack.wiki.block('Banned Mid Pass', { reason: 'sock puppetry' });
    await worker.waitFor(/"kind":"ban"/, 20_000, mark);
    await stack.synapse.pause({ kill: true });
    await sleep(OUTAGE_MS);
    await stack.synapse.resume();
    const back = Date.now();
    const atReturn = (await stack.memberships('Banned Mid Pass')).filter((m) => m === 'ban').length;
    await stack.eventuallyAll('Banned Mid Pass', 'ban', RECOVERY_MS);
    console.info(`${atReturn} of ${stack.rooms.length} rooms banned when the homeserver came back; all ${Date.now() - back} ms later`);
    assert.ok(atReturn < stack.rooms.length, 'the homeserver stopped before the pass was done');
    await sleep(2 * POLL_S * 1000);
    await exactlyOneBanPerRoom('Banned Mid Pass');
    await api.admin('POST', limit, { messages_per_second: 0, burst_count: 0 });
  });

  test('rate limited for longer than matrix.max_rate_limit_wait, with a single room: the ban lands', async () => {
    const api = clientApi(stack.synapse);
    // The homeserver's limit for the bot (one event per 10 s); the worker waits at most 1 s in place.
    await api.admin('DELETE', `/_synapse/admin/v1/users/${enc(stack.synapse.adminUserId)}/override_ratelimit`);
    worker.child.kill('SIGTERM');
    assert.equal((await worker.exited).code, 0);
    stack.writeConfig({ matrix: { max_rate_limit_wait: 1 }, moderation: { rooms: [{ room_id: stack.rooms[0]! }] }, sync: { moderation_room: undefined } });
    worker = stack.startWorker();
    await worker.waitFor(/moderation pass done/, 30_000);
    // The bot spends its allowance just before the block arrives: messages until the homeserver refuses one.
    const refused = await spendAllowance(api, stack.rooms[0]!);
    assert.ok(refused, 'the homeserver rate limits the bot');
    const mark = worker.mark();
    await stack.wiki.block('Rate Limited', { reason: 'flooding' });
    await eventually('the ban', async () => ((await stack.memberships('Rate Limited'))[0] === 'ban' ? true : undefined), 60_000);
    await worker.waitFor(/M_LIMIT_EXCEEDED|rate limit/i, 1_000, mark);
    assert.equal((await stack.banEvents(stack.rooms[0]!, 'Rate Limited')).length, 1);
  });
});

/**
 * Sends messages as the bot until the homeserver refuses one for long (M_LIMIT_EXCEEDED with a
 * retry_after_ms of 3 s or more: far beyond the worker's allowed wait) right after one it
 * accepted; true when it did. A refusal before any accepted message is waited out: it comes from
 * the limiter's count left over from the faster limits of the test before, which Synapse keeps with
 * that faster rate and so prunes early (its pruning runs every 15 s), emptying the bucket under
 * the worker's ban. The bucket the ban meets must be one filled at this rate.
 */
async function spendAllowance(api: ReturnType<typeof clientApi>, roomId: string): Promise<boolean> {
  let accepted = false;
  for (let i = 0; i < 10; i++) {
    try {
      await api.admin('PUT', `/rooms/${enc(roomId)}/send/m.room.message/spend-${Date.now()}-${i}`, { msgtype: 'm.text', body: 'spending the allowance' });
      accepted = true;
    } catch (error) {
      const message = (error as Error).message;
      if (!message.includes('M_LIMIT_EXCEEDED')) throw error;
      const retryAfter = Number(/"retry_after_ms":(\d+)/.exec(message)?.[1] ?? 0);
      if (accepted && retryAfter >= 3_000) return true;
      await sleep(retryAfter + 50);
    }
  }
  return false;
}
