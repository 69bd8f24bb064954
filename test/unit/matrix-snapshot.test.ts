import assert from 'node:assert/strict';
import { describe, test } from '@jest/globals';
import { MatrixError } from '../../src/matrix/errors.ts';
import { retryDelay, defaultRetryOptions } from '../../src/matrix/retry.ts';
import {
  creatorsArePrivileged,
  requiredEventLevel,
  requiredPowerLevel,
  spaceChildrenOf,
  stateEvents,
  toRoomSnapshot,
  userPowerLevel,
} from '../../src/matrix/snapshot.ts';

const BOT = '@bot:example.org';

function event(type: string, stateKey: string, content: Record<string, unknown>, sender = BOT) {
  return { type, state_key: stateKey, sender, content, event_id: `$${type}${stateKey}`, origin_server_ts: 1 };
}

const member = (userId: string, membership: string, extra: Record<string, unknown> = {}, sender = userId) =>
  event('m.room.member', userId, { membership, ...extra }, sender);

function snapshotOf(events: unknown[], roomId = '!r:example.org') {
  const parsed = stateEvents(events);
  assert.ok(parsed);
  return toRoomSnapshot(roomId, BOT, parsed);
}

describe('room snapshot from full state', () => {
  test('members in every state, bans with reason and sender, power levels as sent', () => {
    const powerLevels = { users: { [BOT]: 100, '@mod:example.org': 50 }, ban: 50, kick: 50, users_default: 0 };
    const snapshot = snapshotOf([
      event('m.room.create', '', { room_version: '10', creator: BOT }),
      event('m.room.power_levels', '', powerLevels),
      member(BOT, 'join'),
      member('@a:example.org', 'join'),
      member('@b:example.org', 'invite', {}, BOT),
      member('@c:example.org', 'leave'),
      member('@d:example.org', 'ban', { reason: 'Wiki block #12: vandalism' }, BOT),
      member('@e:example.org', 'ban', {}, '@mod:example.org'),
      member('@f:example.org', 'knock'),
    ]);
    assert.equal(snapshot.roomId, '!r:example.org');
    assert.equal(snapshot.botUserId, BOT);
    assert.equal(snapshot.roomVersion, '10');
    assert.equal(snapshot.creators, undefined);
    assert.deepEqual(snapshot.powerLevels, powerLevels);
    assert.deepEqual(
      [...snapshot.members],
      [
        [BOT, 'join'],
        ['@a:example.org', 'join'],
        ['@b:example.org', 'invite'],
        ['@c:example.org', 'leave'],
        ['@d:example.org', 'ban'],
        ['@e:example.org', 'ban'],
        ['@f:example.org', 'knock'],
      ],
    );
    assert.deepEqual(snapshot.bans.get('@d:example.org'), { reason: 'Wiki block #12: vandalism', sender: BOT });
    assert.deepEqual(snapshot.bans.get('@e:example.org'), { sender: '@mod:example.org' });
    assert.equal(snapshot.bans.size, 2);
  });

  test('room v12: the create sender and additional creators are the creators', () => {
    const snapshot = snapshotOf([
      event('m.room.create', '', { room_version: '12', additional_creators: ['@co:example.org', 7, BOT] }),
      event('m.room.power_levels', '', { users: { '@mod:example.org': 50 } }),
    ]);
    assert.deepEqual(snapshot.creators, [BOT, '@co:example.org']);
    assert.equal(userPowerLevel(snapshot, BOT), Infinity);
    assert.equal(userPowerLevel(snapshot, '@co:example.org'), Infinity);
    assert.equal(userPowerLevel(snapshot, '@mod:example.org'), 50);
    assert.equal(userPowerLevel(snapshot, '@nobody:example.org'), 0);
  });

  test('privileged creators: 12 and later, and the hydra preview versions', () => {
    for (const v of ['12', '13', 'org.matrix.hydra.11']) assert.equal(creatorsArePrivileged(v), true, v);
    for (const v of ['1', '9', '11', 'org.matrix.msc3757.11', 'x12']) assert.equal(creatorsArePrivileged(v), false, v);
  });

  test('no room_version means version 1; no power levels event means {}', () => {
    const snapshot = snapshotOf([event('m.room.create', '', { creator: BOT })]);
    assert.equal(snapshot.roomVersion, '1');
    assert.deepEqual(snapshot.powerLevels, {});
  });

  test('malformed events are skipped, not fatal; a non-list answer is refused', () => {
    const parsed = stateEvents([
      null,
      { type: 'm.room.member', state_key: 5, sender: BOT, content: { membership: 'join' } },
      { type: 'm.room.member', state_key: '@x:example.org', sender: BOT },
      member('@odd:example.org', 'dancing'),
      member('@ok:example.org', 'join'),
    ]);
    assert.ok(parsed);
    const snapshot = toRoomSnapshot('!r:example.org', BOT, parsed);
    assert.deepEqual([...snapshot.members], [['@ok:example.org', 'join']]);
    assert.equal(stateEvents({ errcode: 'M_UNKNOWN' }), undefined);
  });

  test('power level rules with the spec defaults', () => {
    const bare = snapshotOf([]);
    assert.equal(requiredPowerLevel(bare, 'ban'), 50);
    assert.equal(requiredPowerLevel(bare, 'kick'), 50);
    assert.equal(requiredPowerLevel(bare, 'invite'), 0);
    assert.equal(requiredEventLevel(bare, 'm.policy.rule.user', true), 0);
    assert.equal(requiredEventLevel(bare, 'm.room.message', false), 0);

    const set = snapshotOf([
      event('m.room.power_levels', '', { ban: 60, users_default: 10, state_default: 70, events: { 'm.room.power_levels': 100 } }),
    ]);
    assert.equal(requiredPowerLevel(set, 'ban'), 60);
    assert.equal(requiredPowerLevel(set, 'kick'), 50);
    assert.equal(requiredEventLevel(set, 'm.room.power_levels', true), 100);
    assert.equal(requiredEventLevel(set, 'm.policy.rule.user', true), 70);
    assert.equal(userPowerLevel(set, '@anyone:example.org'), 10);

    const implicitState = snapshotOf([event('m.room.power_levels', '', { users: {} })]);
    assert.equal(requiredEventLevel(implicitState, 'm.policy.rule.user', true), 50);
  });

  test('policy rules: m.policy.rule.user by state key, a withdrawn rule as {}, other rule types left out', () => {
    const live = { entity: '@vandal:example.org', recommendation: 'm.ban', reason: 'Blocked on the wiki' };
    const snapshot = snapshotOf([
      event('m.policy.rule.user', 'rule:@vandal:example.org', live),
      event('m.policy.rule.user', 'rule:@gone:example.org', {}, '@mod:example.org'),
      event('m.policy.rule.room', 'rule:!r:example.org', { entity: '!r:example.org', recommendation: 'm.ban', reason: 'x' }),
      event('org.matrix.mjolnir.rule.user', 'rule:@old:example.org', { entity: '@old:example.org', recommendation: 'm.ban', reason: 'x' }),
      member('@vandal:example.org', 'join'),
    ]);
    assert.deepEqual([...snapshot.policyRules!], [
      ['rule:@vandal:example.org', live],
      ['rule:@gone:example.org', {}],
    ]);
    assert.deepEqual([...snapshot.members], [['@vandal:example.org', 'join']]);
  });

  test('a room without policy rules reads as an empty list, not an unknown one', () => {
    // An empty map tells the executor the room holds no rules; undefined would make it trust its records.
    assert.deepEqual(snapshotOf([event('m.room.create', '', { room_version: '11' })]).policyRules, new Map());
  });

  test('space children: m.space.child with a non-empty via', () => {
    const parsed = stateEvents([
      event('m.space.child', '!a:example.org', { via: ['example.org'] }),
      event('m.space.child', '!gone:example.org', {}),
      event('m.space.child', '!empty:example.org', { via: [] }),
      event('m.space.parent', '!p:example.org', { via: ['example.org'] }),
      event('m.space.child', '!b:example.org', { via: ['example.org'], order: 'b' }),
    ]);
    assert.ok(parsed);
    assert.deepEqual(spaceChildrenOf(parsed), ['!a:example.org', '!b:example.org']);
  });
});

describe('retry delays', () => {
  const options = { ...defaultRetryOptions, maxAttempts: 4, baseDelayMs: 100, maxDelayMs: 300, maxRateLimitWaitMs: 1000 };
  const error = (fields: { errcode: string; status: number; retryable: boolean; retryAfterMs?: number }) =>
    new MatrixError('test', { ...fields, detail: 'x' });

  test('rate limits wait as asked, up to the cap', () => {
    assert.equal(retryDelay(error({ errcode: 'M_LIMIT_EXCEEDED', status: 429, retryable: true, retryAfterMs: 750 }), 1, options), 750);
    assert.equal(retryDelay(error({ errcode: 'M_LIMIT_EXCEEDED', status: 429, retryable: true, retryAfterMs: 1001 }), 1, options), undefined);
  });

  test('transient failures back off exponentially with jitter, capped, a bounded number of times', () => {
    const transient = error({ errcode: 'M_UNKNOWN', status: 502, retryable: true });
    assert.equal(retryDelay(transient, 1, options, () => 1), 100);
    assert.equal(retryDelay(transient, 2, options, () => 1), 200);
    assert.equal(retryDelay(transient, 3, options, () => 1), 300);
    assert.equal(retryDelay(transient, 3, options, () => 0), 150);
    assert.equal(retryDelay(transient, 4, options, () => 1), undefined);
  });

  test('refusals are not retried', () => {
    assert.equal(retryDelay(error({ errcode: 'M_FORBIDDEN', status: 403, retryable: false }), 1, options), undefined);
  });
});
