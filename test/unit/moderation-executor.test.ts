// The executor over an in-memory homeserver and an embedded database: one power levels write per
// room per pass, refusals audited as lacks_power, retryable failures leave records for the next
// pass, a pass cut short by a crash is finished by the next without duplicates, dry runs change
// nothing, and one notice per pass.
import assert from 'node:assert/strict';
import { afterAll, afterEach, beforeEach, describe, test } from '@jest/globals';
import pino from 'pino';
import { DryRunGateway, MatrixError, NETWORK_ERROR } from '../../src/matrix/index.ts';
import { moderationConfigSchema, type ModerationConfigInput } from '../../src/moderation/config.ts';
import { ModerationExecutor, noticeText } from '../../src/moderation/executor.ts';
import { ModerationAuditLog, ModerationRecordStore } from '../../src/moderation/records.ts';
import type { WikiState, WikiUserState } from '../../src/moderation/types.ts';
import type { WikiBlock } from '../../src/wiki/action-api-results.ts';
import { backends, type TestDatabase } from '../support/backends.ts';
import { FakeMatrix, forbidden, rateLimited, type FakeCall } from '../support/fake-matrix.ts';

const silent = pino({ level: 'silent' });
const NOW = new Date('2030-06-01T12:00:00Z');
const SERVER = 'example.org';
const BOT = `@bot:${SERVER}`;
const MOD = `@mod:${SERVER}`;
const ROOMS = ['!a:example.org', '!b:example.org', '!c:example.org'];
const NOTICES = '!notices:example.org';
const mxid = (localpart: string) => `@${localpart}:${SERVER}`;

function block(fields: Partial<WikiBlock> = {}): WikiBlock {
  return {
    id: 123, user: 'Vandal', userId: 5, by: 'Admin', timestamp: new Date('2030-06-01T11:00:00Z'), expiry: new Date('2030-06-08T11:00:00Z'),
    reason: 'Vandalism', sitewide: true, restrictions: { pages: [], namespaces: [], actions: [] },
    anonOnly: false, noCreate: true, autoblock: true, noEmail: false, allowUserTalk: true, hidden: false, ...fields,
  };
}

function user(localpart: string, fields: Partial<Omit<WikiUserState, 'account'>> = {}): WikiUserState {
  return {
    account: { wiki: 'wiki.example', centralId: String(localpart.length), username: localpart, localpart },
    blocks: [], globalBlocks: [], lock: null, groups: [], globalGroups: [], ...fields,
  };
}

const wiki = (users: WikiUserState[], complete = true): WikiState => ({ wiki: 'wiki.example', users, complete });
const config = (input: ModerationConfigInput = {}) => moderationConfigSchema.parse({ rooms: ROOMS.map((room_id) => ({ room_id })), ...input });

/** Every write's identity; a duplicate means the same thing was done twice. */
const writeKey = (c: FakeCall) => ('userId' in c ? `${c.method} ${'roomId' in c ? c.roomId : ''} ${c.userId}` : `${c.method} ${'roomId' in c ? c.roomId : ''}`);

const backend = backends()[0]!;

describe('moderation executor', () => {
  let db: TestDatabase;
  let matrix: FakeMatrix;
  const opened: TestDatabase[] = [];

  beforeEach(async () => {
    db = await backend.open();
    opened.push(db);
    matrix = new FakeMatrix(BOT);
    for (const roomId of ROOMS) matrix.addRoom(roomId, { members: [mxid('vandal'), mxid('sysop'), MOD], users: { [MOD]: 50 } });
    matrix.addRoom(NOTICES);
  });
  afterEach(() => db.dispose());
  afterAll(() => Promise.all(opened.map((d) => d.dispose())));

  const executor = (fields: Partial<ConstructorParameters<typeof ModerationExecutor>[0]> = {}) =>
    new ModerationExecutor({ db, gateway: matrix, log: silent, moderation: config(), serverName: SERVER, noticeRoom: NOTICES, clock: () => NOW, ...fields });
  const records = () => new ModerationRecordStore(db).load();
  const audit = async () => (await new ModerationAuditLog(db).list({ limit: 1000 })).entries;

  const blocked = user('vandal', { blocks: [block()] });
  const sysop = user('sysop', { groups: ['sysop'] });

  test('a block bans in every room and a group sets levels in one write per room; one notice; the next pass does nothing', async () => {
    const result = await executor().run(wiki([blocked, sysop]));
    assert.equal(matrix.writes('ban').length, 3);
    assert.equal(matrix.writes('setPowerLevels').length, 3);
    assert.deepEqual(new Set(matrix.writes('setPowerLevels').map((c) => (c as { roomId: string }).roomId)), new Set(ROOMS));
    for (const roomId of ROOMS) {
      const room = matrix.rooms.get(roomId)!;
      assert.equal(room.bans.get(mxid('vandal'))?.sender, BOT);
      assert.match(room.bans.get(mxid('vandal'))!.reason!, /block #123 by Admin.*Vandalism/);
      assert.equal(room.powerLevels.users?.[mxid('sysop')], 50);
      assert.equal(room.powerLevels.users?.[MOD], 50, 'other entries kept');
    }
    assert.equal(result.counts.applied, 6);
    const stored = await records();
    assert.equal(stored.bans.length, 3);
    assert.equal(stored.levels.length, 3);
    const entries = await audit();
    assert.equal(entries.length, 6);
    assert.ok(entries.every((e) => e.outcome === 'applied' && e.passId === result.passId && !e.dryRun));
    assert.equal(entries.find((e) => e.kind === 'ban')!.cause?.blockId, 123);
    assert.deepEqual(entries.find((e) => e.kind === 'set_power_levels')!.detail, { from: null, to: 50 });

    const notices = matrix.writes('sendNotice') as { text: string }[];
    assert.equal(notices.length, 1);
    assert.match(notices[0]!.text, /^Banned @vandal:example\.org in 3 rooms — Blocked on wiki\.example \(block #123 by Admin, until 2030-06-08 11:00 UTC\): Vandalism$/m);
    assert.match(notices[0]!.text, /Power level of @sysop:example\.org default → 50 in 3 rooms/);

    const before = matrix.calls.length;
    const again = await executor().run(wiki([blocked, sysop]));
    assert.equal(matrix.calls.length, before, 'nothing to do, no notice');
    assert.equal(again.results.filter((r) => r.action.kind !== 'report').length, 0);
  });

  test('the block ends: our bans are lifted, a hand-placed ban stays; the group ends: levels go back', async () => {
    await executor().run(wiki([blocked, sysop]));
    const other = mxid('other');
    matrix.rooms.get(ROOMS[0]!)!.bans.set(other, { reason: 'spam', sender: MOD });
    matrix.rooms.get(ROOMS[0]!)!.members.set(other, 'ban');
    const result = await executor().run(wiki([user('vandal'), user('sysop'), user('other')]));
    assert.equal(matrix.writes('unban').length, 3);
    assert.equal(matrix.rooms.get(ROOMS[0]!)!.bans.get(other)?.sender, MOD);
    for (const roomId of ROOMS) {
      assert.equal(matrix.rooms.get(roomId)!.bans.has(mxid('vandal')), false);
      assert.equal(matrix.rooms.get(roomId)!.powerLevels.users?.[mxid('sysop')], undefined);
    }
    assert.equal(matrix.writes('setPowerLevels').length, 6, 'one more write per room');
    assert.equal(result.counts.applied, 6);
    const stored = await records();
    assert.deepEqual([stored.bans.length, stored.levels.length], [0, 0]);
  });

  test('M_FORBIDDEN: audited as lacks_power, no record, the room reported', async () => {
    matrix.fail = (call) => (call.method === 'ban' && call.roomId === ROOMS[1] ? forbidden() : undefined);
    const result = await executor().run(wiki([blocked]));
    assert.deepEqual(result.lacksPower, [ROOMS[1]]);
    assert.equal(result.counts.applied, 2);
    assert.equal(result.counts.lacks_power, 1);
    assert.deepEqual((await records()).bans.map((b) => b.roomId).sort(), [ROOMS[0], ROOMS[2]]);
    const refused = (await audit()).filter((e) => e.outcome === 'lacks_power');
    assert.equal(refused.length, 1);
    assert.equal(refused[0]!.roomId, ROOMS[1]);
    assert.match(refused[0]!.error!, /M_FORBIDDEN/);
    assert.match(result.notice!, /Refused \(ban in !b:example\.org\)/);
  });

  test('a final retryable failure leaves the record alone and the rest of the pass for the next one', async () => {
    let limited = true;
    matrix.fail = (call) => (limited && call.method === 'ban' && call.roomId === ROOMS[1] ? rateLimited() : undefined);
    const first = await executor().run(wiki([blocked]));
    assert.equal(first.counts.failed, 1);
    assert.equal(first.deferred, 2, 'the rate-limited room and the third room wait: the one that hit the limit is not done either');
    assert.deepEqual((await records()).bans.map((b) => b.roomId), [ROOMS[0]]);
    assert.match(first.notice!, /1 action failed/);
    limited = false;
    const second = await executor().run(wiki([blocked]));
    assert.equal(second.counts.applied, 2);
    assert.equal(matrix.writes('ban').length, 3);
    assert.equal((await records()).bans.length, 3);
  });

  test('with a single managed room, a rate limit on its ban leaves the pass unfinished, so the ban is tried again', async () => {
    let limited = true;
    matrix.fail = (call) => (limited && call.method === 'ban' ? rateLimited() : undefined);
    const one = () =>
      new ModerationExecutor({ db, gateway: matrix, log: silent, moderation: moderationConfigSchema.parse({ rooms: [{ room_id: ROOMS[0] }] }), serverName: SERVER, dryRun: false });
    const first = await one().run(wiki([blocked]));
    assert.equal(first.counts.failed, 1);
    assert.equal(first.deferred, 1, 'the only action failed: nothing is done');
    limited = false;
    const second = await one().run(wiki([blocked]));
    assert.equal(second.counts.applied, 1);
    assert.equal(second.deferred, 0);
  });

  test('a plain failure that does not stop the pass (a 500 for one room) is still left undone', async () => {
    matrix.fail = (call) => (call.method === 'ban' && call.roomId === ROOMS[1] ? new MatrixError('ban', { errcode: 'M_UNKNOWN', status: 400, retryable: false, detail: 'odd' }) : undefined);
    const result = await executor().run(wiki([blocked]));
    assert.equal(result.counts.applied, 2);
    assert.equal(result.counts.failed, 1);
    assert.equal(result.deferred, 1);
  });

  test('a room the homeserver cannot give now (down) leaves the pass unfinished; a room the bot is not in does not', async () => {
    matrix.failSnapshot = (roomId) => (roomId === ROOMS[2] ? new MatrixError('room_state', { errcode: NETWORK_ERROR, status: 0, retryable: true, detail: 'connection refused' }) : undefined);
    const down = await executor().run(wiki([blocked]));
    assert.equal(down.counts.applied, 2);
    assert.equal(down.deferred, 1, 'the unreachable room is not done');
    matrix.failSnapshot = (roomId) => (roomId === ROOMS[2] ? new MatrixError('room_state', { errcode: 'M_FORBIDDEN', status: 403, retryable: false, detail: 'not in room' }) : undefined);
    const notIn = await executor().run(wiki([blocked]));
    assert.equal(notIn.deferred, 0, 'retrying cannot change that the bot is not in the room: it is reported');
    assert.equal(notIn.counts.reported, 1);
  });

  test('a crash mid-pass: the next pass does the rest, nothing twice, nothing missed', async () => {
    const users = [blocked, sysop, user('vandal2', { blocks: [block({ id: 124 })] })];
    let writes = 0;
    matrix.fail = (call) => (call.method !== 'sendNotice' && ++writes > 4 ? new Error('process killed') : undefined);
    await assert.rejects(executor().run(wiki(users)), /process killed/);
    assert.equal(matrix.calls.length, 4);
    assert.equal((await audit()).length, 4, 'the four writes that happened, each recorded');
    assert.equal((await records()).bans.length + (await records()).levels.length, 4);
    matrix.fail = () => undefined;
    await executor().run(wiki(users));
    const done = matrix.calls.filter((c) => c.method !== 'sendNotice');
    const keys = done.map(writeKey);
    assert.equal(new Set(keys).size, keys.length, `no duplicate: ${keys.join(', ')}`);
    assert.equal(matrix.writes('ban').length, 6);
    assert.equal(matrix.writes('setPowerLevels').length, 3);
    const stored = await records();
    assert.deepEqual([stored.bans.length, stored.levels.length], [6, 3]);
    // A third pass: nothing left.
    const third = await executor().run(wiki(users));
    assert.equal(third.results.length, 0);
  });

  test('killed between a power levels change and its record: the next pass finds it in the room and records it, so the level is taken back later', async () => {
    let fences = 0;
    // The first fence guards the intent, the second the record: the process dies in between.
    const dying = executor({
      fence: async () => {
        fences += 1;
        if (fences === 2) throw new Error('process killed');
      },
    });
    await assert.rejects(dying.run(wiki([sysop])), /process killed/);
    assert.equal(matrix.writes('setPowerLevels').length, 1, 'the change reached the room');
    assert.equal((await records()).levels.length, 0, 'but not its record');

    const next = await executor().run(wiki([sysop]));
    assert.equal(matrix.writes('setPowerLevels').length, 3, 'the other two rooms, not the first again');
    assert.equal((await records()).levels.length, 3);
    const confirmed = (await audit()).filter((e) => e.detail.confirmed !== undefined);
    assert.deepEqual(confirmed.map((e) => [e.kind, e.outcome, e.userId]), [['set_power_levels', 'applied', mxid('sysop')]]);
    assert.equal(next.deferred, 0);

    await executor().run(wiki([user('sysop')]));
    for (const roomId of ROOMS) assert.equal(matrix.rooms.get(roomId)!.powerLevels.users?.[mxid('sysop')], undefined, `level taken back in ${roomId}`);
  });

  test('killed after writing down a power levels change, before making it: the next pass makes it', async () => {
    matrix.fail = (call) => (call.method === 'setPowerLevels' ? new Error('process killed') : undefined);
    await assert.rejects(executor().run(wiki([sysop])), /process killed/);
    assert.equal(matrix.writes('setPowerLevels').length, 0);
    matrix.fail = () => undefined;
    await executor().run(wiki([sysop]));
    assert.equal(matrix.writes('setPowerLevels').length, 3);
    assert.equal((await records()).levels.length, 3);
    assert.equal((await audit()).filter((e) => e.detail.confirmed !== undefined).length, 0, 'nothing is taken as made that was not');
    const { rows } = await db.query('SELECT 1 FROM moderation_intents');
    assert.equal(rows.length, 0, 'no intent is left behind');
  });

  test('a global lock ends the sessions once: the provider\'s grants revoked, every device logged out, a record; the unlock forgets it', async () => {
    const revoked: string[] = [];
    const run = (state: WikiState, fields: Partial<ConstructorParameters<typeof ModerationExecutor>[0]> = {}) =>
      executor({
        revokeAccount: async (accountId) => (revoked.push(accountId), { revoked: 3, notified: [{ clientId: 'homeserver', delivered: true }, { clientId: 'mas', delivered: false }] }),
        ...fields,
      }).run(state);
    const lock = { logId: 77, by: 'Steward', reason: 'cross-wiki abuse', timestamp: new Date('2030-06-01T10:00:00Z'), hidden: false };
    const locked = user('vandal', { lock });
    matrix.devices.set(mxid('vandal'), ['PHONE', 'LAPTOP']);

    const dry = await run(wiki([locked]), { dryRun: true, gateway: new DryRunGateway(matrix, silent) });
    assert.deepEqual(dry.results.filter((r) => r.action.kind === 'end_sessions').map((r) => r.outcome), ['dry_run']);
    assert.deepEqual(revoked, [], 'a dry run revokes nothing');
    assert.deepEqual(matrix.devices.get(mxid('vandal')), ['PHONE', 'LAPTOP']);

    const first = await run(wiki([locked]));
    assert.deepEqual(first.results.filter((r) => r.action.kind === 'end_sessions').map((r) => r.outcome), ['applied']);
    assert.deepEqual(revoked, [locked.account.centralId]);
    assert.equal(matrix.devices.has(mxid('vandal')), false, 'every device logged out');
    assert.deepEqual((await records()).sessionEnds.map((r) => [r.userId, r.cause.logId]), [[mxid('vandal'), 77]]);
    assert.match(first.notice ?? '', /Ended the sessions of @vandal:example\.org/);
    const ended = (await audit()).filter((e) => e.kind === 'end_sessions' && !e.dryRun);
    assert.deepEqual(
      ended.map((e) => e.detail),
      [{ centralId: locked.account.centralId, revoked: 3, logouts: [{ client: 'homeserver', delivered: true }, { client: 'mas', delivered: false }] }],
      'the audit says what was revoked and which relying party took its logout',
    );

    // Signed in again somewhere meanwhile? Not while locked (the login rules refuse): nothing more.
    const second = await run(wiki([locked]));
    assert.equal(second.results.filter((r) => r.action.kind === 'end_sessions').length, 0);
    assert.equal(revoked.length, 1);

    await run(wiki([user('vandal')]));
    assert.deepEqual((await records()).sessionEnds, [], 'unlocked: the record goes, the person may sign in again');
  });

  test('suspend.measure lock: the account is locked, not suspended; a lock is lifted as a lock even after the setting changed', async () => {
    const lock = { logId: 78, by: 'Steward', reason: 'spambot', timestamp: new Date('2030-06-01T10:00:00Z'), hidden: false };
    const locked = user('vandal', { lock });
    const withMeasure = (measure: 'suspend' | 'lock') => config({ sessions: { global_lock: false }, suspend: { global_lock: true, measure } });
    const accountWide = (results: { action: { kind: string }; outcome: string }[]) => results.filter((r) => r.action.kind === 'suspend' || r.action.kind === 'unsuspend').map((r) => [r.action.kind, r.outcome]);

    const dry = new DryRunGateway(matrix, silent);
    const planned = await executor({ gateway: dry, dryRun: true, moderation: withMeasure('lock') }).run(wiki([locked]));
    assert.deepEqual(accountWide(planned.results), [['suspend', 'dry_run']]);
    assert.deepEqual(dry.planned.filter((p) => p.action !== 'ban').map((p) => p.action), ['lock']);
    assert.equal(matrix.locked.size, 0);

    const first = await executor({ moderation: withMeasure('lock') }).run(wiki([locked]));
    assert.deepEqual([...matrix.locked], [mxid('vandal')]);
    assert.equal(matrix.suspended.size, 0, 'locked, not suspended');
    assert.match(first.notice ?? '', /^Locked @vandal:example\.org — /m);
    assert.deepEqual((await records()).suspensions.map((r) => [r.userId, r.measure, r.cause.logId]), [[mxid('vandal'), 'lock', 78]]);
    assert.deepEqual((await audit()).filter((e) => !e.dryRun && e.kind === 'suspend').map((e) => e.detail), [{ measure: 'lock' }]);

    // The operator switches to suspensions while the lock lasts: nothing changes for this person.
    assert.deepEqual(accountWide((await executor({ moderation: withMeasure('suspend') }).run(wiki([locked]))).results), []);
    const lifted = await executor({ moderation: withMeasure('suspend') }).run(wiki([user('vandal')]));
    assert.deepEqual(accountWide(lifted.results), [['unsuspend', 'applied']]);
    assert.equal(matrix.locked.size, 0, 'the lock it made is lifted');
    assert.equal(matrix.writes('suspend').length, 0, 'and no suspension was lifted that it never made');
    assert.match(lifted.notice ?? '', /^Unlocked @vandal:example\.org — /m);
    assert.deepEqual((await records()).suspensions, []);
  });

  test('an account a moderator already suspended or locked stays theirs: not recorded, never lifted by the service; lifted by hand meanwhile, it is suspended', async () => {
    const lock = { logId: 79, by: 'Steward', reason: 'spambot', timestamp: new Date('2030-06-01T10:00:00Z'), hidden: false };
    for (const measure of ['suspend', 'lock'] as const) {
      const moderation = config({ sessions: { global_lock: false }, suspend: { global_lock: true, measure } });
      const held = measure === 'lock' ? matrix.locked : matrix.suspended;
      const name = `held_${measure}`;
      held.add(mxid(name));
      const during = await executor({ moderation }).run(wiki([user(name, { lock })]));
      assert.deepEqual(during.results.filter((r) => r.action.kind === 'suspend'), [], `${measure}: nothing to do`);
      assert.deepEqual((await records()).suspensions, []);
      const after = await executor({ moderation }).run(wiki([user(name)]));
      assert.deepEqual(after.results.filter((r) => r.action.kind === 'unsuspend'), []);
      assert.ok(held.has(mxid(name)), `${measure}: the moderator's measure stays`);
    }

    const moderation = config({ sessions: { global_lock: false }, suspend: { global_lock: true } });
    await executor({ moderation }).run(wiki([user('vandal', { lock })]));
    assert.ok(matrix.suspended.has(mxid('vandal')));
    matrix.suspended.delete(mxid('vandal'));
    const again = await executor({ moderation }).run(wiki([user('vandal', { lock })]));
    assert.deepEqual(again.results.filter((r) => r.action.kind === 'suspend').map((r) => r.outcome), ['applied'], 'lifted by someone while the lock lasts: suspended again');
  });

  test('dry run: changes nothing, records nothing, audits dry_run, posts nothing', async () => {
    const dry = new DryRunGateway(matrix, silent);
    const result = await executor({ gateway: dry }).run(wiki([blocked, sysop]));
    assert.equal(result.dryRun, true);
    assert.equal(matrix.calls.length, 0);
    assert.equal(dry.planned.filter((p) => p.action === 'send_notice').length, 0);
    assert.equal(dry.planned.length, 6);
    assert.equal(result.counts.dry_run, 6);
    assert.deepEqual(await records(), { bans: [], levels: [], invites: [], policyRules: [], suspensions: [], sessionEnds: [] });
    const entries = await audit();
    assert.equal(entries.length, 6);
    assert.ok(entries.every((e) => e.outcome === 'dry_run' && e.dryRun));
  });

  test('plan: the actions, nothing written, nothing audited', async () => {
    const plan = await executor().plan(wiki([blocked, sysop]));
    assert.equal(plan.full, true);
    assert.deepEqual(plan.actions.map((a) => a.kind).sort(), ['ban', 'ban', 'ban', 'set_power_levels', 'set_power_levels', 'set_power_levels']);
    assert.equal(matrix.calls.length, 0);
    assert.equal((await audit()).length, 0);
    assert.equal(matrix.requestCount, 3, 'one snapshot per room');
  });

  test('a targeted pass touches only the named users', async () => {
    await executor().run(wiki([blocked, sysop]));
    const before = matrix.calls.length;
    // vandal alone, still blocked; sysop not mentioned: left as is, though the state does not list them.
    const result = await executor().run(wiki([blocked], false));
    assert.equal(matrix.calls.length, before);
    assert.equal(result.full, false);
    await executor().run(wiki([user('sysop')], false));
    assert.equal(matrix.writes('setPowerLevels').length, 6);
    assert.equal(matrix.writes('unban').length, 0);
  });

  test('stopping: the action under way finishes, the rest waits', async () => {
    const controller = new AbortController();
    matrix.fail = (call) => {
      if (call.method === 'ban') controller.abort();
      return undefined;
    };
    const result = await executor().run(wiki([blocked]), { signal: controller.signal });
    assert.equal(matrix.writes('ban').length, 1);
    assert.equal(result.deferred, 2);
    assert.equal((await records()).bans.length, 1);
  });

  test('an unreadable room is reported and the others go ahead', async () => {
    matrix.rooms.delete(ROOMS[2]!);
    const result = await executor().run(wiki([blocked]));
    assert.equal(matrix.writes('ban').length, 2);
    const report = result.results.find((r) => r.action.kind === 'report');
    assert.equal(report?.outcome, 'reported');
    assert.equal((await audit()).filter((e) => e.kind === 'report' && e.roomId === ROOMS[2]).length, 1);
  });

  test('a policy list: rules published once, withdrawn when the ban ends', async () => {
    const policyRoom = '!policy:example.org';
    matrix.addRoom(policyRoom);
    const moderation = config({ policy_list: { room_id: policyRoom } });
    await executor({ moderation }).run(wiki([blocked]));
    await executor({ moderation }).run(wiki([blocked]));
    const published = matrix.writes('sendStateEvent') as { content: Record<string, unknown>; stateKey: string }[];
    assert.equal(published.length, 1);
    assert.equal(published[0]!.content.entity, mxid('vandal'));
    await executor({ moderation }).run(wiki([user('vandal')]));
    const all = matrix.writes('sendStateEvent') as { content: Record<string, unknown> }[];
    assert.equal(all.length, 2);
    assert.deepEqual(all[1]!.content, {});
    assert.equal((await audit()).find((e) => e.kind === 'retract_policy')?.userId, mxid('vandal'));
  });
});

test('noticeText: nothing to say gives no notice; long lists are cut', () => {
  assert.equal(noticeText([]), undefined);
  const cause = { kind: 'block' as const, wiki: 'w', blockId: 1, logId: null, by: 'A', reason: 'r', timestamp: null, expiry: null, group: null, hidden: false };
  const results = Array.from({ length: 30 }, (_, i) => ({ action: { kind: 'ban' as const, roomId: '!r:x', userId: `@u${i}:x`, reason: 'why', cause }, outcome: 'applied' as const }));
  const text = noticeText(results)!;
  assert.equal(text.split('\n').length, 21);
  assert.match(text, /… and 10 more/);
});

test('noticeText links each line about a person to their admin page, when the pages are on', () => {
  const cause = { kind: 'global_lock' as const, wiki: 'w', blockId: null, logId: 5, by: 'Steward', reason: 'Abuse', timestamp: null, expiry: null, group: null, hidden: false };
  const results = [
    { action: { kind: 'ban' as const, roomId: '!r:x', userId: '@марина:x', reason: 'Locked', cause }, outcome: 'applied' as const },
    { action: { kind: 'ban' as const, roomId: '!s:x', userId: '@марина:x', reason: 'Locked', cause }, outcome: 'applied' as const },
    { action: { kind: 'suspend' as const, userId: '@марина:x', cause }, outcome: 'applied' as const },
  ];
  const url = (userId: string) => `https://sso.example/admin/people?q=${encodeURIComponent(userId)}`;
  const lines = noticeText(results, url)!.split('\n');
  assert.equal(lines.length, 2);
  assert.ok(lines.every((l) => l.endsWith(` (${url('@марина:x')})`)), lines.join('\n'));
  assert.doesNotMatch(noticeText(results)!, /https:/, 'no link without admin pages');
});
