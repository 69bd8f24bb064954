// The moderation loop: a full pass when it becomes the leader, targeted passes for polled and
// pushed users (the poll committed only after its pass), failures retried on a later tick, full
// passes on demand, one leader at a time, and a stop that lets the action under way finish.
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, beforeEach, describe, test } from 'node:test';
import pino from 'pino';
import { moderationConfigSchema } from '../../src/moderation/config.ts';
import { ModerationRecordStore } from '../../src/moderation/records.ts';
import { ModerationRequestStore, type PlanSummary } from '../../src/moderation/requests.ts';
import { WorkerStatusStore } from '../../src/moderation/status.ts';
import type { WikiState, WikiUserState } from '../../src/moderation/types.ts';
import { startModerationWorker, type ModerationWorkerOptions, type PushTrigger, type StateSource, type Trigger } from '../../src/moderation/worker.ts';
import { backends, type TestDatabase } from '../support/backends.ts';
import { FakeMatrix } from '../support/fake-matrix.ts';

const silent = pino({ level: 'silent' });
const SERVER = 'example.org';
const BOT = `@bot:${SERVER}`;
const ROOM = '!a:example.org';
const mxid = (localpart: string) => `@${localpart}:${SERVER}`;
const FAR = new Date('2099-01-01T00:00:00Z');

function user(name: string, blocked: boolean): WikiUserState {
  return {
    account: { wiki: 'wiki.example', centralId: String(name.length), username: name, localpart: name.toLowerCase() },
    blocks: blocked
      ? [{ id: 1, user: name, userId: 1, by: 'Admin', timestamp: new Date('2030-01-01T00:00:00Z'), expiry: FAR, reason: 'Spam', sitewide: true, restrictions: { pages: [], namespaces: [], actions: [] }, anonOnly: false, noCreate: false, autoblock: false, noEmail: false, allowUserTalk: true, hidden: false }]
      : [],
    globalBlocks: [], lock: null, groups: [], globalGroups: [],
  };
}

/** A wiki whose blocks the test changes; full and targeted reads counted. */
class StaticWiki implements StateSource {
  blocked = new Set<string>();
  names = ['Alice', 'Bob'];
  full = 0;
  targetedCalls: string[][] = [];
  failTargeted = 0;
  state(names: string[], complete: boolean): WikiState {
    return { wiki: 'wiki.example', users: names.map((n) => user(n, this.blocked.has(n))), complete };
  }
  async fullPass() {
    this.full += 1;
    return this.state(this.names, true);
  }
  async targeted(usernames: Iterable<string>) {
    const names = [...usernames];
    this.targetedCalls.push(names);
    if (this.failTargeted > 0) {
      this.failTargeted -= 1;
      throw new Error('wiki unreachable');
    }
    return this.state(names.filter((n) => this.names.includes(n)), false);
  }
}

class QueueTrigger implements Trigger {
  pending: string[] = [];
  commits = 0;
  async poll() {
    const usernames = [...this.pending];
    return { usernames, commit: async () => {
      this.commits += 1;
      this.pending = this.pending.filter((n) => !usernames.includes(n));
    } };
  }
}

class Pusher implements PushTrigger {
  onUser: ((username: string) => void | Promise<void>) | undefined;
  async start(onUser: (username: string) => void | Promise<void>) {
    this.onUser = onUser;
  }
  async stop() {
    this.onUser = undefined;
  }
}

async function until(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 5_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

const backend = backends()[0]!;

describe('moderation worker', () => {
  let db: TestDatabase;
  let matrix: FakeMatrix;
  let wiki: StaticWiki;
  const opened: TestDatabase[] = [];
  const stops: (() => Promise<void>)[] = [];

  beforeEach(async () => {
    db = await backend.open();
    opened.push(db);
    matrix = new FakeMatrix(BOT);
    matrix.addRoom(ROOM, { members: [mxid('alice'), mxid('bob')] });
    wiki = new StaticWiki();
  });
  after(async () => {
    for (const stop of stops) await stop().catch(() => {});
    await Promise.all(opened.map((d) => d.dispose()));
  });

  function start(fields: Partial<ModerationWorkerOptions> = {}) {
    const worker = startModerationWorker({
      db, log: silent, gateway: matrix, source: wiki,
      moderation: moderationConfigSchema.parse({ rooms: [{ room_id: ROOM }] }),
      serverName: SERVER, dryRun: false,
      fullPassIntervalMs: 60_000, pollIntervalMs: 20, retryMs: 20, eventBatchMs: 10, leaderRetryMs: 20,
      lockName: `test-${Math.random()}`, ...fields,
    });
    stops.push(() => worker.stop());
    return worker;
  }
  const banned = (name: string) => matrix.rooms.get(ROOM)!.bans.has(mxid(name));

  test('a full pass at start, then polled users get a targeted pass and the poll is committed after it', async () => {
    wiki.blocked.add('Alice');
    const trigger = new QueueTrigger();
    const worker = start({ trigger });
    await worker.leading;
    await until('the first full pass', () => banned('alice'));
    assert.equal(wiki.full, 1);

    wiki.blocked.add('Bob');
    trigger.pending.push('Bob', 'Nobody');
    await until('the targeted pass', () => banned('bob'));
    await until('the commit', () => trigger.commits > 0 && trigger.pending.length === 0);
    assert.ok(wiki.targetedCalls.some((names) => names.includes('Bob')));
    assert.equal(wiki.full, 1, 'no second full pass before the interval');
    await worker.stop();
  });

  test('a failed targeted pass is not committed and is tried again', async () => {
    const trigger = new QueueTrigger();
    const worker = start({ trigger });
    await until('the first full pass', () => wiki.full === 1);
    wiki.failTargeted = 2;
    wiki.blocked.add('Bob');
    trigger.pending.push('Bob');
    await until('the pass that works', () => banned('bob'));
    assert.ok(wiki.targetedCalls.filter((names) => names.includes('Bob')).length >= 3);
    await until('the commit', () => trigger.pending.length === 0);
    assert.equal(worker.status.lastError?.message, 'wiki unreachable');
    await worker.stop();
  });

  test('work that keeps failing is retried less and less often, up to ten poll intervals; success resets it', async () => {
    const trigger = new QueueTrigger();
    const worker = start({ trigger });
    await until('the first full pass', () => wiki.full === 1);
    const attempts: number[] = [];
    const targeted = wiki.targeted.bind(wiki);
    wiki.targeted = async (usernames) => {
      attempts.push(Date.now());
      return targeted(usernames);
    };
    wiki.failTargeted = 7;
    wiki.blocked.add('Bob');
    trigger.pending.push('Bob');
    await until('the pass that works', () => banned('bob'), 10_000);
    // Waits of 20, 40, 80, 160, 200, 200, 200 ms: a poll every 20 ms would have made ~45 attempts.
    const gaps = attempts.slice(1).map((t, i) => t - attempts[i]!);
    assert.equal(attempts.length, 8, `attempts: ${gaps.join(', ')} ms apart`);
    assert.ok(gaps[3]! >= 150 && gaps.slice(4).every((g) => g >= 180 && g < 1_000), `backed off, capped: ${gaps.join(', ')} ms`);
    await until('the commit', () => trigger.pending.length === 0);

    // Reset: the next failure is retried after one interval again.
    attempts.length = 0;
    wiki.failTargeted = 1;
    wiki.blocked.add('Alice');
    trigger.pending.push('Alice');
    await until('Alice banned', () => banned('alice'));
    assert.equal(attempts.length, 2);
    assert.ok(attempts[1]! - attempts[0]! < 150, `retried after ${attempts[1]! - attempts[0]!} ms`);
    await worker.stop();
  });

  test('housekeeping runs every interval, pass or not; one that fails is tried again and stops nothing', async () => {
    let turns = 0;
    const trigger = new QueueTrigger();
    const worker = start({
      trigger,
      housekeepingIntervalMs: 20,
      housekeeping: async () => {
        turns += 1;
        if (turns === 2) throw new Error('the relying party is down');
      },
    });
    await worker.leading;
    await until('several turns without a pass', () => turns >= 4);
    assert.equal(wiki.full, 1, 'only the first full pass');
    wiki.blocked.add('Bob');
    trigger.pending.push('Bob');
    await until('polls still run', () => banned('bob'));
    await worker.stop();
  });

  test("admins' requests: a plan changes nothing, its application runs exactly it or is refused when the wiki moved, a retry reconciles one person", async () => {
    const lockName = `test-${Math.random()}`;
    const requests = new ModerationRequestStore(db);
    const worker = start({ lockName, requestIntervalMs: 20 });
    await until('the first full pass', () => wiki.full === 1);
    const settled = async (id: string) => {
      let request = await requests.get(id);
      await until(`request ${id}`, async () => {
        request = await requests.get(id);
        return request!.state !== 'pending' && request!.state !== 'running';
      });
      return request!;
    };

    wiki.blocked.add('Alice');
    const plan = await settled((await requests.create('plan', 'Админ', {})).id);
    assert.equal(plan.state, 'done');
    const summary = plan.result as PlanSummary;
    assert.deepEqual(summary.actions.map((a) => [a.kind, a.userId]), [['ban', mxid('alice')]]);
    assert.equal(summary.actions[0]!.cause?.kind, 'block');
    assert.equal(banned('alice'), false, 'a plan changes nothing');

    // The wiki moves on before the admin applies: the plan is no longer what a pass would do.
    wiki.blocked.add('Bob');
    const stale = await settled((await requests.create('apply', 'Админ', { digest: summary.digest })).id);
    assert.equal(stale.state, 'refused');
    assert.match((stale.result as { reason: string }).reason, /changed since the preview/);
    assert.equal(banned('alice'), false);

    const fresh = await settled((await requests.create('plan', 'Админ', {})).id);
    const applied = await settled((await requests.create('apply', 'Админ', { digest: (fresh.result as PlanSummary).digest })).id);
    assert.equal(applied.state, 'done');
    assert.equal((applied.result as { counts: { applied: number } }).counts.applied, 2);
    assert.ok(banned('alice') && banned('bob'));

    wiki.blocked.delete('Bob');
    const retry = await settled((await requests.create('retry', 'api:ops', { userId: mxid('bob') })).id);
    assert.equal(retry.state, 'done');
    assert.equal(banned('bob'), false, 'the retry reconciled Bob (a source without byUserIds reads everyone)');

    const status = await new WorkerStatusStore(db, lockName).read();
    assert.ok(status, 'the leader reports itself');
    assert.match(status.holder, /:\d+$/);
    assert.equal(status.report.eventStreams, 'off');
    assert.ok(status.report.lastFullPass && status.report.nextFullPassAt);
    await worker.stop();
  });

  test('a request a deposed leader left running is failed, not run twice', async () => {
    const requests = new ModerationRequestStore(db);
    const left = await requests.create('plan', 'Админ', {});
    await requests.take();
    const worker = start({ requestIntervalMs: 20 });
    await worker.leading;
    await until('the abandoned request failed', async () => (await requests.get(left.id))!.state === 'failed');
    assert.match(((await requests.get(left.id))!.result as { reason: string }).reason, /stopped before it finished/);
    await worker.stop();
  });

  test('pushed users are batched into one targeted pass', async () => {
    const events = new Pusher();
    const worker = start({ events });
    await until('the first full pass', () => wiki.full === 1 && events.onUser !== undefined);
    wiki.blocked.add('Alice').add('Bob');
    void events.onUser!('Alice');
    void events.onUser!('Bob');
    await until('both banned', () => banned('alice') && banned('bob'));
    assert.deepEqual(wiki.targetedCalls, [['Alice', 'Bob']]);
    await worker.stop();
    assert.equal(events.onUser, undefined, 'the stream is stopped with the worker');
  });

  test('a full pass on demand', async () => {
    const worker = start();
    await until('the first full pass', () => wiki.full === 1);
    wiki.blocked.add('Alice');
    const result = await worker.fullPass();
    assert.equal(result.full, true);
    assert.equal(result.counts.applied, 1);
    assert.ok(banned('alice'));
    assert.equal(worker.status.lastFullPass?.result.passId, result.passId);
    await worker.stop();
  });

  test('a block that expires is lifted at its expiry, though no log entry or event names the user', async () => {
    const expiry = new Date(Date.now() + 500);
    const looked: string[][] = [];
    // Like list=blocks, the wiki stops listing a block once it has expired.
    const expiring = Object.assign(wiki, {
      state(names: string[], complete: boolean): WikiState {
        const active = Date.now() < expiry.getTime();
        const users = names.map((n) => user(n, n === 'Alice' && active)).map((u) => (u.blocks[0] ? { ...u, blocks: [{ ...u.blocks[0], expiry }] } : u));
        return { wiki: 'wiki.example', users, complete };
      },
      async byUserIds(userIds: Iterable<string>) {
        looked.push([...userIds].map((id) => id.slice(1, id.indexOf(':'))));
        return expiring.state(expiring.names.filter((n) => looked.at(-1)!.includes(n.toLowerCase())), false);
      },
    });
    const worker = start({ source: expiring, trigger: new QueueTrigger() });
    await until('the ban', () => banned('alice'));
    await until('the unban at the expiry', () => !banned('alice'), 5_000);
    assert.deepEqual(looked, [['alice']]);
    assert.equal(wiki.full, 1, 'no full pass needed');
    await worker.stop();
  });

  test('one leader at a time; the standby takes over when the leader stops', async () => {
    const lockName = `shared-${Math.random()}`;
    const first = start({ lockName });
    await first.leading;
    const second = start({ lockName });
    await sleep(100);
    assert.equal(first.status.leading, true);
    assert.equal(second.status.leading, false);
    assert.equal(wiki.full, 1);
    await first.stop();
    await second.leading;
    await until('the standby full pass', () => wiki.full === 2);
    await second.stop();
  });

  test('stopping lets the action under way finish and records it; the rest waits', async () => {
    matrix.addRoom('!b:example.org');
    matrix.addRoom('!c:example.org');
    let release: () => void = () => {};
    let started = 0;
    matrix.hold = async (call) => {
      if (call.method !== 'ban') return;
      started += 1;
      await new Promise<void>((resolve) => (release = resolve));
    };
    wiki.blocked.add('Alice');
    const worker = start({ moderation: moderationConfigSchema.parse({ rooms: ['!a:example.org', '!b:example.org', '!c:example.org'].map((room_id) => ({ room_id })) }) });
    await until('the first ban under way', () => started === 1);
    const stopping = worker.stop();
    release();
    await stopping;
    assert.equal(started, 1, 'no second ban started');
    assert.equal(matrix.writes('ban').length, 1);
    const records = await new ModerationRecordStore(db).load();
    assert.equal(records.bans.length, 1, 'the finished ban is recorded');
  });
});
