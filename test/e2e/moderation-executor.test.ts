// The moderation executor against a real Synapse, from a static wiki state: a sitewide block bans
// in every managed room with the block's reason, a sysop gets level 50 in one power levels event
// per room, and when the block and the group end the bans are lifted and the levels removed, while
// a ban a moderator placed by hand stays. One notice per pass in the moderation room. A policy
// rule withdrawn by hand is seen in the room state: republished while the block lasts, and only
// forgotten (not withdrawn twice) once it ends. Rooms named as every room of a space (by the
// space's alias) are resolved at each pass: a block bans in the space's rooms, not in the space.
import assert from 'node:assert/strict';
import { afterAll, beforeAll, describe, jest, test } from '@jest/globals';
import pino from 'pino';
import { SdkMatrixGateway } from '../../src/matrix/index.ts';
import { moderationConfigSchema } from '../../src/moderation/config.ts';
import { ModerationExecutor } from '../../src/moderation/executor.ts';
import { ModerationAuditLog, ModerationRecordStore } from '../../src/moderation/records.ts';
import type { WikiState, WikiUserState } from '../../src/moderation/types.ts';
import { backends, type TestDatabase } from '../support/backends.ts';
import { skipUnless } from '../support/real-parts.ts';
import { startSynapse, synapseAvailable, type RegisteredUser, type Synapse, clientApi } from '../support/synapse.ts';
import { skippable } from '../support/suites.ts';

const unavailable = synapseAvailable();
const silent = pino({ level: 'silent' });

function wikiUser(username: string, fields: Partial<Omit<WikiUserState, 'account'>> = {}): WikiUserState {
  return {
    account: { wiki: 'wiki.example', centralId: String(username.length * 7), username, localpart: username.toLowerCase() },
    blocks: [], globalBlocks: [], lock: null, groups: [], globalGroups: [], ...fields,
  };
}

const BLOCK = {
  id: 4242, user: 'Vandal', userId: 9, by: 'Admin', timestamp: new Date('2030-01-01T00:00:00Z'), expiry: new Date('2099-01-01T00:00:00Z'),
  reason: 'Cross-wiki spam', sitewide: true, restrictions: { pages: [], namespaces: [], actions: [] },
  anonOnly: false, noCreate: true, autoblock: true, noEmail: false, allowUserTalk: true, hidden: false,
};

jest.setTimeout(240_000);

skippable(describe, skipUnless(unavailable))('moderation executor on a real Synapse', () => {
  let synapse: Synapse;
  let db: TestDatabase;
  let gateway: SdkMatrixGateway;
  let vandal: RegisteredUser;
  let sysop: RegisteredUser;
  let mod: RegisteredUser;
  let other: RegisteredUser;
  let rooms: string[];
  let notices: string;

  const enc = encodeURIComponent;
  const call: ReturnType<typeof clientApi>['call'] = (...args) => clientApi(synapse).call(...args);
  const admin: ReturnType<typeof clientApi>['admin'] = (...args) => clientApi(synapse).admin(...args);
  const state: ReturnType<typeof clientApi>['state'] = (...args) => clientApi(synapse).state(...args);
  const member = async (roomId: string, userId: string) => (await state(roomId, 'm.room.member', userId)) as { membership: string; reason?: string };

  /** The room's `m.room.power_levels` events so far (the timeline, newest first). */
  async function powerLevelEvents(roomId: string): Promise<number> {
    const filter = enc(JSON.stringify({ types: ['m.room.power_levels'] }));
    const page = await admin('GET', `/rooms/${enc(roomId)}/messages?dir=b&limit=100&filter=${filter}`);
    return page.chunk.length;
  }

  async function noticeTexts(): Promise<string[]> {
    const filter = enc(JSON.stringify({ types: ['m.room.message'] }));
    const page = await admin('GET', `/rooms/${enc(notices)}/messages?dir=b&limit=100&filter=${filter}`);
    return page.chunk.filter((e: any) => e.content.msgtype === 'm.notice').map((e: any) => e.content.body as string);
  }

  const wiki = (users: WikiUserState[]): WikiState => ({ wiki: 'wiki.example', users, complete: true });
  const executor = () =>
    new ModerationExecutor({
      db,
      gateway,
      log: silent,
      moderation: moderationConfigSchema.parse({ rooms: rooms.map((room_id) => ({ room_id })) }),
      serverName: synapse.serverName,
      noticeRoom: notices,
      dryRun: false,
    });

  beforeAll(async () => {
    if (unavailable) throw new Error(unavailable);
    synapse = await startSynapse();
    db = await backends()[0]!.open();
    gateway = new SdkMatrixGateway({ baseUrl: synapse.baseUrl, accessToken: synapse.adminToken, logger: silent, requestTimeoutMs: 15_000, retry: { baseDelayMs: 50, maxDelayMs: 500 } });
    const register = (name: string) => synapse.registerUser(name, `${name}-password-123`);
    [vandal, sysop, mod, other] = [await register('vandal'), await register('sysop'), await register('mod'), await register('other')];
    rooms = [];
    for (const name of ['one', 'two', 'three']) {
      const { room_id } = await admin('POST', '/createRoom', {
        preset: 'public_chat',
        room_version: '11',
        name,
        power_level_content_override: { users: { [synapse.adminUserId]: 100, [mod.userId]: 50 } },
      });
      rooms.push(room_id);
      for (const user of [vandal, sysop, mod, other]) await call(user.accessToken, 'POST', `/join/${enc(room_id)}`, {});
    }
    notices = (await admin('POST', '/createRoom', { preset: 'private_chat', name: 'moderation' })).room_id;
  });

  afterAll(async () => {
    await db?.dispose();
    await synapse?.stop();
  });

  test('a sitewide block bans in every room with its reason; a sysop gets 50 in one power levels event per room', async () => {
    // A ban a moderator placed by hand, which the service must never lift.
    await call(mod.accessToken, 'POST', `/rooms/${enc(rooms[0]!)}/ban`, { user_id: other.userId, reason: 'by hand' });
    const plBefore = await Promise.all(rooms.map(powerLevelEvents));

    const result = await executor().run(wiki([wikiUser('Vandal', { blocks: [BLOCK] }), wikiUser('Sysop', { groups: ['sysop'] }), wikiUser('Other')]));
    assert.equal(result.counts.failed, 0);
    assert.equal(result.counts.applied, 6, JSON.stringify(result.results.map((r) => [r.action.kind, r.outcome, r.error])));

    for (const [i, roomId] of rooms.entries()) {
      const ban = await member(roomId, vandal.userId);
      assert.equal(ban.membership, 'ban');
      assert.match(ban.reason!, /^Blocked on wiki\.example \(block #4242 by Admin, until 2099-01-01 00:00 UTC\): Cross-wiki spam$/);
      const levels = await state(roomId, 'm.room.power_levels');
      assert.equal(levels.users[sysop.userId], 50);
      assert.equal(levels.users[mod.userId], 50);
      assert.equal(levels.users[synapse.adminUserId], 100);
      assert.equal((await powerLevelEvents(roomId)) - plBefore[i]!, 1, `one power levels event in ${roomId}`);
    }
    const texts = await noticeTexts();
    assert.equal(texts.length, 1);
    assert.match(texts[0]!, new RegExp(`Banned ${vandal.userId.replace(/[.]/g, '\\.')} in 3 rooms — Blocked on wiki\\.example \\(block #4242`));
    assert.match(texts[0]!, /Power level of @sysop:\S+ default → 50 in 3 rooms/);

    const audit = await new ModerationAuditLog(db).list({ userId: vandal.userId });
    assert.equal(audit.entries.length, 3);
    assert.ok(audit.entries.every((e) => e.outcome === 'applied' && e.cause?.blockId === 4242));
  });

  test('a second pass changes nothing', async () => {
    const before = gateway.requestCount;
    const result = await executor().run(wiki([wikiUser('Vandal', { blocks: [BLOCK] }), wikiUser('Sysop', { groups: ['sysop'] }), wikiUser('Other')]));
    assert.deepEqual(result.results, []);
    assert.equal(gateway.requestCount - before, rooms.length, 'one snapshot per room, nothing else');
    assert.equal((await noticeTexts()).length, 1);
  });

  test('the block and the group end: bans lifted, levels back, the hand-placed ban stays', async () => {
    const plBefore = await Promise.all(rooms.map(powerLevelEvents));
    const result = await executor().run(wiki([wikiUser('Vandal'), wikiUser('Sysop'), wikiUser('Other')]));
    assert.equal(result.counts.applied, 6);
    for (const [i, roomId] of rooms.entries()) {
      assert.equal((await member(roomId, vandal.userId)).membership, 'leave');
      const levels = await state(roomId, 'm.room.power_levels');
      assert.equal(levels.users[sysop.userId], undefined);
      assert.equal(levels.users[mod.userId], 50, 'levels set by hand stay');
      assert.equal((await powerLevelEvents(roomId)) - plBefore[i]!, 1);
    }
    const handBan = await member(rooms[0]!, other.userId);
    assert.equal(handBan.membership, 'ban');
    assert.equal(handBan.reason, 'by hand');
    const records = await new ModerationRecordStore(db).load();
    assert.deepEqual([records.bans.length, records.levels.length], [0, 0]);
    const texts = await noticeTexts();
    assert.equal(texts.length, 2);
    assert.match(texts[0]!, /Unbanned @vandal:\S+ in 3 rooms — Block #4242 on wiki\.example is no longer in force/);
  });

  test('policy list: a rule withdrawn by hand is republished while the block lasts, then forgotten', async () => {
    const { room_id: list } = await admin('POST', '/createRoom', { preset: 'private_chat', room_version: '11', name: 'policy list' });
    const moderation = moderationConfigSchema.parse({ policy_list: { room_id: list } });
    const pass = (users: WikiUserState[]) => new ModerationExecutor({ db, gateway, log: silent, moderation, serverName: synapse.serverName, dryRun: false }).run(wiki(users));
    const key = `rule:${vandal.userId}`;
    const rule = () => state(list, 'm.policy.rule.user', key);
    const kinds = (result: Awaited<ReturnType<typeof pass>>) => result.results.map((r) => `${r.action.kind}:${r.outcome}`);
    const withdrawByHand = () => admin('PUT', `/rooms/${enc(list)}/state/m.policy.rule.user/${enc(key)}`, {});

    assert.deepEqual(kinds(await pass([wikiUser('Vandal', { blocks: [BLOCK] })])), ['publish_policy:applied']);
    assert.equal((await rule()).entity, vandal.userId);

    await withdrawByHand();
    assert.deepEqual(kinds(await pass([wikiUser('Vandal', { blocks: [BLOCK] })])), ['publish_policy:applied'], 'the block still holds: the rule is back');
    assert.equal((await rule()).recommendation, 'm.ban');

    await withdrawByHand();
    assert.deepEqual(kinds(await pass([wikiUser('Vandal')])), ['forget:applied'], 'already withdrawn: nothing is sent');
    assert.deepEqual(await rule(), {});
    assert.equal((await new ModerationRecordStore(db).load()).policyRules.length, 0);
  });

  test('a room where the bot lacks power: refused, audited, reported', async () => {
    const { room_id: weak } = await call(mod.accessToken, 'POST', '/createRoom', { preset: 'public_chat', room_version: '11' });
    await admin('POST', `/join/${enc(weak)}`, {});
    await call(vandal.accessToken, 'POST', `/join/${enc(weak)}`, {});
    const moderation = moderationConfigSchema.parse({ rooms: [{ room_id: weak }] });
    const result = await new ModerationExecutor({ db, gateway, log: silent, moderation, serverName: synapse.serverName, dryRun: false })
      .run(wiki([wikiUser('Vandal', { blocks: [BLOCK] })]));
    assert.deepEqual(result.lacksPower, [weak]);
    assert.equal((await member(weak, vandal.userId)).membership, 'join');
    const entries = (await new ModerationAuditLog(db).list({ roomId: weak })).entries;
    assert.ok(entries.some((e) => e.outcome === 'lacks_power'));
  });

  test('every room of a space, named by the space alias: a block bans in each child room, not in the space', async () => {
    const alias = `#space:${synapse.serverName}`;
    const space = (await admin('POST', '/createRoom', { preset: 'public_chat', room_version: '11', name: 'space', room_alias_name: 'space', creation_content: { type: 'm.space' } })).room_id as string;
    const children: string[] = [];
    for (const name of ['child one', 'child two']) {
      const { room_id } = await admin('POST', '/createRoom', { preset: 'public_chat', room_version: '11', name });
      await admin('PUT', `/rooms/${enc(space)}/state/m.space.child/${enc(room_id)}`, { via: [synapse.serverName] });
      children.push(room_id);
    }
    for (const roomId of [space, ...children]) await call(vandal.accessToken, 'POST', `/join/${enc(roomId)}`, {});

    const moderation = moderationConfigSchema.parse({ rooms: [{ space: alias }] });
    const pass = () => new ModerationExecutor({ db, gateway, log: silent, moderation, serverName: synapse.serverName, dryRun: false }).run(wiki([wikiUser('Vandal', { blocks: [BLOCK] })]));
    const result = await pass();
    assert.deepEqual(result.results.map((r) => `${r.action.kind}:${r.outcome}:${'roomId' in r.action ? r.action.roomId : ''}`).sort(), children.map((id) => `ban:applied:${id}`).sort());
    for (const roomId of children) {
      const ban = await member(roomId, vandal.userId);
      assert.equal(ban.membership, 'ban');
      assert.match(ban.reason!, /block #4242 by Admin/);
    }
    assert.equal((await member(space, vandal.userId)).membership, 'join', 'the space itself is not managed');

    const before = gateway.requestCount;
    assert.deepEqual((await pass()).results, []);
    assert.equal(gateway.requestCount - before, 2 + children.length, 'the alias, the space, one snapshot per room');
  });
});
