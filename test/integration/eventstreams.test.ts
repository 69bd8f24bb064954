// The EventStreams trigger against a loopback double of the recentchange stream: which events
// name a user, resuming with Last-Event-ID after a dropped connection or a restart (the id kept
// in sync_cursors), a bounded back-off, and a clean stop.
import assert from 'node:assert/strict';
import { afterAll, beforeAll, beforeEach, describe, it } from '@jest/globals';
import { setTimeout as sleep } from 'node:timers/promises';
import { PostgresSyncCursorStore } from '../../src/moderation/sources/cursors.ts';
import { EventStreamTrigger, type EventStreamTriggerOptions } from '../../src/moderation/sources/event-streams.ts';
import { backends, type TestDatabase } from '../support/backends.ts';
import {
  DEWIKI,
  ENWIKI,
  META,
  blockEvent,
  canaryEvent,
  editEvent,
  globalBlockEvent,
  globalRightsEvent,
  lockEvent,
  otherLogEvent,
  rightsEvent,
  startEventStreamsDouble,
  unblockEvent,
  type EventStreamsDouble,
} from '../support/eventstreams-double.ts';

const USER_AGENT = 'wiki-matrix-sso-tests/0 (tests@example.org)';

async function until(what: string, check: () => boolean, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

describe('EventStreams trigger', () => {
  let db: TestDatabase;
  let stream: EventStreamsDouble;
  let cursors: PostgresSyncCursorStore;
  const started: EventStreamTrigger[] = [];

  beforeAll(async () => {
    db = await backends()[0]!.open();
  });
  afterAll(async () => {
    await db?.dispose();
  });
  beforeEach(async () => {
    await Promise.all(started.splice(0).map((t) => t.stop()));
    await stream?.close();
    stream = await startEventStreamsDouble();
    await db.query('DELETE FROM sync_cursors');
    cursors = new PostgresSyncCursorStore(db);
  });
  afterAll(async () => {
    await Promise.all(started.map((t) => t.stop()));
    await stream?.close();
  });

  function trigger(options: Partial<EventStreamTriggerOptions> = {}) {
    const users: string[] = [];
    const t = new EventStreamTrigger({
      url: stream.url,
      userAgent: USER_AGENT,
      cursors,
      centralAuth: true,
      wiki: 'metawiki',
      minBackoffMs: 20,
      maxBackoffMs: 80,
      persistIntervalMs: 50,
      ...options,
    });
    started.push(t);
    return { t, users, onUser: (name: string) => void users.push(name) };
  }

  it('names the targets of block, rights and lock log events, and ignores everything else', async () => {
    const { t, users, onUser } = trigger();
    await t.start(onUser);
    stream.publish(
      editEvent(META, 'Main Page'),
      editEvent(META, 'User:Blocked user', { namespace: 2 }),
      otherLogEvent(META, 'Spam page', 'delete', 'delete'),
      canaryEvent(),
      blockEvent(ENWIKI, 'Enwiki vandal'), // another wiki's local block
      blockEvent(META, 'Blocked user', { reason: 'spam' }),
      unblockEvent(META, 'Unblocked user'),
      rightsEvent(META, 'New admin', { to: ['sysop'] }),
      lockEvent('Locked user'),
      globalBlockEvent('Globally blocked'),
      globalRightsEvent('New steward', { to: ['steward'] }),
    );
    await until('six users', () => users.length >= 6);
    await sleep(50);
    assert.deepEqual(users, ['Blocked user', 'Unblocked user', 'New admin', 'Locked user', 'Globally blocked', 'New steward']);
    assert.equal(stream.connections[0]?.userAgent, USER_AGENT);
    assert.equal(stream.connections[0]?.lastEventId, null, 'a first start has nothing to resume from');
  });

  it('reads every wiki when no wiki is set, whatever the user namespace is called there', async () => {
    const { t, users, onUser } = trigger({ wiki: undefined, centralAuth: false });
    await t.start(onUser);
    stream.publish(blockEvent(DEWIKI, 'Störer'), blockEvent(ENWIKI, 'Vandal'), lockEvent('Ignored without CentralAuth'));
    await until('two users', () => users.length >= 2);
    await sleep(50);
    assert.deepEqual(users, ['Störer', 'Vandal']);
  });

  it('resumes after a dropped connection with Last-Event-ID, losing and repeating nothing', async () => {
    const { t, users, onUser } = trigger();
    stream.publish(blockEvent(META, 'A'), blockEvent(META, 'B'), blockEvent(META, 'C'));
    stream.dropNextAfter(2);
    await t.start(onUser);
    await until('the reconnection', () => stream.connections.length >= 2);
    assert.equal(stream.connections[1]?.lastEventId, stream.idOf(1), 'the verbatim id of the last event handled');
    stream.publish(blockEvent(META, 'D'));
    await until('four users', () => users.length >= 4);
    stream.dropConnections();
    await until('another reconnection', () => stream.connections.length >= 3);
    assert.equal(stream.connections[2]?.lastEventId, stream.idOf(3));
    await sleep(50);
    assert.deepEqual(users, ['A', 'B', 'C', 'D']);
  });

  it('keeps the position in sync_cursors and resumes from it after a restart', async () => {
    const first = trigger();
    stream.publish(blockEvent(META, 'Before restart'), editEvent(META, 'Some page'));
    await first.t.start(first.onUser);
    await until('the first events', () => first.t.lastEventId === stream.idOf(1));
    await first.t.stop();
    assert.equal(await cursors.get('eventstreams:recentchange'), stream.idOf(1), 'stored verbatim');

    stream.publish(blockEvent(META, 'While stopped'));
    const second = trigger();
    await second.t.start(second.onUser);
    await until('the missed event', () => second.users.length >= 1);
    assert.equal(stream.connections.at(-1)?.lastEventId, stream.idOf(1));
    await sleep(50);
    assert.deepEqual(second.users, ['While stopped']);
  });

  it('backs off exponentially up to the bound, and starts over once events flow again', async () => {
    const delays: number[] = [];
    const { t, users, onUser } = trigger({ onReconnect: (ms) => delays.push(ms) });
    stream.refuseNext(5, 503);
    stream.publish(blockEvent(META, 'Patient'));
    await t.start(onUser);
    await until('the event after the refusals', () => users.length >= 1, 5_000);
    assert.deepEqual(delays, [20, 40, 80, 80, 80]);
    assert.equal(stream.connections.length, 6);
    stream.dropConnections();
    await until('the reconnection', () => delays.length >= 6);
    assert.equal(delays[5], 20, 'a connection that delivered events resets the back-off');
  });

  it('starts from now when the server refuses the stored position', async () => {
    await cursors.set({ 'eventstreams:recentchange': 'an id the server no longer understands' });
    const { t, users, onUser } = trigger();
    await t.start(onUser);
    await until('a second connection', () => stream.connections.length >= 2);
    assert.equal(stream.connections[0]?.lastEventId, 'an id the server no longer understands');
    assert.equal(stream.connections[1]?.lastEventId, null);
    stream.publish(blockEvent(META, 'After the refusal'));
    await until('the event', () => users.length >= 1);
  });

  it('stops cleanly: no reconnection, no callback, and a stop while waiting to reconnect', async () => {
    const { t, users, onUser } = trigger({ minBackoffMs: 200, maxBackoffMs: 200 });
    await t.start(onUser);
    await until('the connection', () => stream.connections.length >= 1);
    stream.dropConnections();
    await sleep(30);
    await t.stop(); // during the 200 ms wait
    assert.equal(t.running, false);
    stream.publish(blockEvent(META, 'Too late'));
    await sleep(300);
    assert.equal(stream.connections.length, 1);
    assert.deepEqual(users, []);
    await t.stop(); // twice is fine
  });

  it('keeps going when the callback fails for one user', async () => {
    const users: string[] = [];
    const { t } = trigger();
    await t.start((name) => {
      if (name === 'Bad') throw new Error('reconcile failed');
      users.push(name);
    });
    stream.publish(blockEvent(META, 'Bad'), blockEvent(META, 'Good'));
    await until('the next user', () => users.length >= 1);
    assert.deepEqual(users, ['Good']);
  });
});
