// The Matrix gateway against a real Synapse: room snapshots in one request, bans, unbans, kicks,
// invites and their "already done" answers, power levels, policy rules, notices, suspension
// through the admin API, a real rate limit, M_FORBIDDEN, and a dry run that changes nothing.
import assert from 'node:assert/strict';
import { afterAll, beforeAll, describe, jest, test } from '@jest/globals';
import pino from 'pino';
import { DryRunGateway, MatrixError, SdkMatrixGateway, userPowerLevel, type RoomSnapshot } from '../../src/matrix/index.ts';
import { installedRoomVersions, startSynapse, synapseAvailable, type RegisteredUser, type Synapse } from '../support/synapse.ts';
import { skippable } from '../support/suites.ts';

const unavailable = synapseAvailable();
// Under CI a missing Synapse is a failure, not a skip: scripts/setup-synapse.sh must have run.
const skip = process.env.CI ? false : unavailable;
// Known before the tests are registered: jest cannot skip a test once it runs.
const withoutV12 = !unavailable && !installedRoomVersions().includes('12') ? 'this Synapse has no room version 12' : false;

const silent = pino({ level: 'silent' });
const fastRetry = { maxAttempts: 5, baseDelayMs: 50, maxDelayMs: 500, maxRateLimitWaitMs: 5_000 };

jest.setTimeout(180_000);

skippable(describe, skip)('Matrix gateway on a real Synapse', () => {
  let synapse: Synapse;
  let bot: SdkMatrixGateway;
  let alice: RegisteredUser;
  let bob: RegisteredUser;
  let carol: RegisteredUser;
  let mallory: RegisteredUser;
  let room: string;
  let v12Room: string;
  let space: string;
  let supportsV12 = false;

  /** A plain client-server call, for setting the scene and checking it from outside the gateway. */
  async function cs(token: string, method: string, path: string, body?: unknown): Promise<{ status: number; json: any }> {
    const response = await fetch(`${synapse.baseUrl}${path.startsWith('/_') ? '' : '/_matrix/client/v3'}${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(15_000),
    });
    const text = await response.text();
    return { status: response.status, json: text ? JSON.parse(text) : {} };
  }

  async function ok(token: string, method: string, path: string, body?: unknown): Promise<any> {
    const { status, json } = await cs(token, method, path, body);
    assert.equal(status, 200, `${method} ${path}: ${JSON.stringify(json)}`);
    return json;
  }

  const enc = encodeURIComponent;
  const join = (user: RegisteredUser, roomId: string) => ok(user.accessToken, 'POST', `/join/${enc(roomId)}`, {});
  const gatewayFor = (accessToken: string, retry = fastRetry) =>
    new SdkMatrixGateway({ baseUrl: synapse.baseUrl, accessToken, logger: silent, retry, requestTimeoutMs: 15_000 });

  /** Runs `work` and says how many requests the gateway sent for it. */
  async function counted<T>(gateway: { requestCount: number }, work: () => Promise<T>): Promise<[T, number]> {
    const before = gateway.requestCount;
    const result = await work();
    return [result, gateway.requestCount - before];
  }

  beforeAll(async () => {
    if (unavailable) throw new Error(unavailable);
    synapse = await startSynapse();
    bot = gatewayFor(synapse.adminToken);
    const register = (name: string) => synapse.registerUser(name, `${name}-password-123`);
    [alice, bob, carol, mallory] = [await register('alice'), await register('bob'), await register('carol'), await register('mallory')];
    const capabilities = await ok(synapse.adminToken, 'GET', '/capabilities');
    supportsV12 = capabilities.capabilities['m.room_versions']?.available?.['12'] !== undefined;

    room = (await ok(synapse.adminToken, 'POST', '/createRoom', { preset: 'public_chat', room_version: '11', name: 'Main' })).room_id;
    for (const user of [alice, bob, mallory]) await join(user, room);
    await ok(synapse.adminToken, 'PUT', `/directory/room/${enc(`#main:${synapse.serverName}`)}`, { room_id: room });

    if (supportsV12) {
      v12Room = (await ok(synapse.adminToken, 'POST', '/createRoom', {
        preset: 'public_chat',
        room_version: '12',
        creation_content: { additional_creators: [carol.userId] },
      })).room_id;
    }
    space = (await ok(synapse.adminToken, 'POST', '/createRoom', { creation_content: { type: 'm.space' }, name: 'Space' })).room_id;
    for (const child of [room, v12Room].filter(Boolean)) {
      await ok(synapse.adminToken, 'PUT', `/rooms/${enc(space)}/state/m.space.child/${enc(child)}`, { via: [synapse.serverName] });
    }
    // A child that was removed: Synapse keeps the state event with empty content.
    await ok(synapse.adminToken, 'PUT', `/rooms/${enc(space)}/state/m.space.child/${enc('!gone:localhost')}`, {});
  });

  afterAll(async () => {
    await synapse?.stop();
  });

  test('whoami names the bot', async () => {
    console.info(`Synapse ${synapse.version}; room version 12 ${supportsV12 ? 'supported' : 'not supported'}`);
    assert.equal(await bot.whoami(), synapse.adminUserId);
  });

  test('a snapshot is one request: members, power levels, version', async () => {
    const [snapshot, requests] = await counted(bot, () => bot.roomSnapshot(room));
    assert.equal(requests, 1);
    assert.equal(snapshot.roomId, room);
    assert.equal(snapshot.botUserId, synapse.adminUserId);
    assert.equal(snapshot.roomVersion, '11');
    assert.equal(snapshot.creators, undefined);
    assert.deepEqual(
      new Map([...snapshot.members].sort()),
      new Map([synapse.adminUserId, alice.userId, bob.userId, mallory.userId].sort().map((id) => [id, 'join'])),
    );
    assert.equal(snapshot.bans.size, 0);
    assert.equal(snapshot.powerLevels.users?.[synapse.adminUserId], 100);
    assert.equal(snapshot.powerLevels.ban, 50);
  });

  skippable(test, withoutV12)('room v12: creators from the create event, absent from the power levels', async () => {
    assert.ok(supportsV12, 'its room_versions.py has room version 12, but Synapse does not offer it');
    const [snapshot, requests] = await counted(bot, () => bot.roomSnapshot(v12Room));
    assert.equal(requests, 1);
    assert.equal(snapshot.roomVersion, '12');
    assert.deepEqual(snapshot.creators, [synapse.adminUserId, carol.userId]);
    assert.equal(snapshot.powerLevels.users?.[synapse.adminUserId], undefined);
    assert.equal(userPowerLevel(snapshot, carol.userId), Infinity);
  });

  skippable(test, withoutV12)('a v12 creator listed in the power levels users is refused, not retried', async () => {
    assert.ok(supportsV12, 'its room_versions.py has room version 12, but Synapse does not offer it');
    const { powerLevels } = await bot.roomSnapshot(v12Room);
    const [error, requests] = await counted(bot, () =>
      bot.setPowerLevels(v12Room, { ...powerLevels, users: { ...powerLevels.users, [carol.userId]: 100 } }).catch((e: unknown) => e),
    );
    assert.ok(error instanceof MatrixError, String(error));
    assert.equal(error.retryable, false);
    assert.equal(requests, 1);
    console.info(`Synapse answered ${error.status} ${error.errcode}`);
  });

  test('a full pass reads each room with one request', async () => {
    const rooms = [room, space, ...(supportsV12 ? [v12Room] : [])];
    const [, requests] = await counted(bot, () => Promise.all(rooms.map((id) => bot.roomSnapshot(id))));
    assert.equal(requests, rooms.length);
  });

  test('aliases and space children', async () => {
    assert.equal(await bot.resolveAlias(`#main:${synapse.serverName}`), room);
    assert.equal(await bot.resolveAlias(`#nowhere:${synapse.serverName}`), undefined);
    const [children, requests] = await counted(bot, () => bot.spaceChildren(space));
    assert.deepEqual(children.sort(), [room, ...(supportsV12 ? [v12Room] : [])].sort());
    assert.equal(requests, 1);
  });

  test('ban with a reason shows in the snapshot; banning again is accepted', async () => {
    assert.equal(await bot.ban(room, alice.userId, 'Wiki block #42: spam'), 'applied');
    const snapshot = await bot.roomSnapshot(room);
    assert.equal(snapshot.members.get(alice.userId), 'ban');
    assert.deepEqual(snapshot.bans.get(alice.userId), { reason: 'Wiki block #42: spam', sender: synapse.adminUserId });
    // Synapse answers 200 to a ban of a banned user, so no "unchanged" detection is needed.
    const [outcome, requests] = await counted(bot, () => bot.ban(room, alice.userId, 'Wiki block #42: spam'));
    assert.equal(outcome, 'applied');
    assert.equal(requests, 1);
    assert.deepEqual((await bot.roomSnapshot(room)).bans.get(alice.userId), { reason: 'Wiki block #42: spam', sender: synapse.adminUserId });
  });

  test('unban, then unban again is "unchanged"', async () => {
    assert.equal(await bot.unban(room, alice.userId, 'block expired'), 'applied');
    const snapshot = await bot.roomSnapshot(room);
    assert.equal(snapshot.members.get(alice.userId), 'leave');
    assert.equal(snapshot.bans.has(alice.userId), false);
    // Synapse: 403 M_BAD_STATE "Cannot unban user who was not banned"; one membership read settles it.
    const [outcome, requests] = await counted(bot, () => bot.unban(room, alice.userId));
    assert.equal(outcome, 'unchanged');
    assert.equal(requests, 2);
  });

  test('kick, kick again, invite, invite a member', async () => {
    assert.equal(await bot.kick(room, bob.userId, 'mirrored wiki block'), 'applied');
    assert.equal((await bot.roomSnapshot(room)).members.get(bob.userId), 'leave');
    assert.equal(await bot.kick(room, bob.userId, 'mirrored wiki block'), 'unchanged');

    assert.equal(await bot.invite(room, bob.userId), 'applied');
    assert.equal((await bot.roomSnapshot(room)).members.get(bob.userId), 'invite');
    assert.equal(await bot.invite(room, bob.userId), 'applied'); // Synapse accepts a repeated invite
    await join(bob, room);
    assert.equal(await bot.invite(room, bob.userId), 'unchanged'); // 403 "already in the room"
  });

  test('kicking or inviting a banned user: kick is "unchanged", invite is refused', async () => {
    await bot.ban(room, carol.userId, 'never joined');
    assert.equal(await bot.kick(room, carol.userId, 'x'), 'unchanged');
    const error = await bot.invite(room, carol.userId).catch((e: unknown) => e);
    assert.ok(error instanceof MatrixError);
    assert.equal(error.status, 403);
    assert.equal(error.retryable, false);
    await bot.unban(room, carol.userId);
  });

  test('power levels are one state event, read back whole', async () => {
    const { powerLevels } = await bot.roomSnapshot(room);
    const wanted = { ...powerLevels, users: { ...powerLevels.users, [bob.userId]: 50, [alice.userId]: 90 } };
    const [outcome, requests] = await counted(bot, () => bot.setPowerLevels(room, wanted));
    assert.equal(outcome, 'applied');
    assert.equal(requests, 1);
    const after = await bot.roomSnapshot(room);
    assert.deepEqual(after.powerLevels, wanted);
    assert.equal(userPowerLevel(after, bob.userId), 50);
  });

  test('a policy rule is set, then removed with {}', async () => {
    const stateKey = `rule:${mallory.userId}`;
    const path = `/rooms/${enc(room)}/state/m.policy.rule.user/${enc(stateKey)}`;
    const rule = { entity: mallory.userId, recommendation: 'm.ban', reason: 'globally locked' };
    assert.equal(await bot.sendStateEvent(room, 'm.policy.rule.user', stateKey, rule), 'applied');
    assert.deepEqual(await ok(synapse.adminToken, 'GET', path), rule);
    assert.equal(await bot.sendStateEvent(room, 'm.policy.rule.user', stateKey, {}), 'applied');
    assert.deepEqual(await ok(synapse.adminToken, 'GET', path), {});
    assert.equal(await bot.sendStateEvent(room, 'm.policy.rule.user', stateKey, {}), 'applied');
  });

  test('a notice is posted once', async () => {
    assert.equal(await bot.sendNotice(room, 'Banned @x: wiki block', '<b>Banned</b> @x: wiki block'), 'applied');
    const { chunk } = await ok(synapse.adminToken, 'GET', `/rooms/${enc(room)}/messages?dir=b&limit=20`);
    const notices = chunk.filter((e: any) => e.type === 'm.room.message' && e.content.msgtype === 'm.notice');
    assert.equal(notices.length, 1);
    assert.deepEqual(notices[0].content, {
      msgtype: 'm.notice',
      body: 'Banned @x: wiki block',
      format: 'org.matrix.custom.html',
      formatted_body: '<b>Banned</b> @x: wiki block',
    });
  });

  test('a display name set through the admin API is the profile\'s', async () => {
    assert.equal(await bot.setDisplayName(alice.userId, 'Алиса Ω'), 'applied');
    assert.equal((await bot.userStatus(alice.userId))?.displayName, 'Алиса Ω');
    const profile = await cs(alice.accessToken, 'GET', `/profile/${enc(alice.userId)}/displayname`);
    assert.equal(profile.json.displayname, 'Алиса Ω');
  });

  test('every device logged out through the admin API: the access tokens stop working', async () => {
    const dora = await synapse.registerUser('dora_devices', 'dora-password-1');
    const second = await synapse.login('dora_devices', 'dora-password-1');
    assert.equal((await cs(dora.accessToken, 'GET', '/account/whoami')).status, 200);
    assert.equal(await bot.logoutDevices(dora.userId), 'applied');
    for (const token of [dora.accessToken, second]) {
      const refused = await cs(token, 'GET', '/account/whoami');
      assert.equal(refused.status, 401);
      assert.equal(refused.json.errcode, 'M_UNKNOWN_TOKEN');
    }
    assert.equal(await bot.logoutDevices(dora.userId), 'unchanged', 'no device left');
    assert.equal(await bot.logoutDevices(`@nobody_here:${synapse.serverName}`), 'unchanged');
  });

  test('suspend and unsuspend through the admin API', async () => {
    const say = (body: string) => cs(alice.accessToken, 'PUT', `/rooms/${enc(room)}/send/m.room.message/t${Date.now()}${body.length}`, { msgtype: 'm.text', body });
    await join(alice, room);
    assert.equal((await bot.userStatus(alice.userId))?.suspended, false);

    assert.equal(await bot.suspend(alice.userId, true), 'applied');
    const { displayName, ...status } = (await bot.userStatus(alice.userId))!;
    assert.deepEqual(status, { userId: alice.userId, admin: false, suspended: true, locked: false, deactivated: false });
    assert.equal(typeof displayName === 'string' || displayName === null, true);
    const refused = await say('while suspended');
    assert.equal(refused.status, 403);
    assert.equal(refused.json.errcode, 'M_USER_SUSPENDED');
    assert.equal(await bot.suspend(alice.userId, true), 'applied');

    assert.equal(await bot.suspend(alice.userId, false), 'applied');
    assert.equal((await bot.userStatus(alice.userId))?.suspended, false);
    assert.equal((await say('free again')).status, 200);

    assert.equal(await bot.userStatus(`@ghost:${synapse.serverName}`), undefined);
    const missing = await bot.suspend(`@ghost:${synapse.serverName}`, true).catch((e: unknown) => e);
    assert.ok(missing instanceof MatrixError);
    assert.equal(missing.errcode, 'M_NOT_FOUND');
  });

  test('lock and unlock through the admin API: a locked account gets M_USER_LOCKED for everything; no account is created for a stranger', async () => {
    const ilse = await synapse.registerUser('ilse_locked', 'ilse-password-1');
    assert.equal(await bot.setLocked(ilse.userId, true), 'applied');
    assert.equal((await bot.userStatus(ilse.userId))?.locked, true);
    const refused = await cs(ilse.accessToken, 'GET', '/account/whoami');
    assert.equal(refused.status, 401);
    assert.equal(refused.json.errcode, 'M_USER_LOCKED');
    assert.equal(await bot.setLocked(ilse.userId, true), 'unchanged', 'already locked');

    assert.equal(await bot.setLocked(ilse.userId, false), 'applied');
    assert.equal((await cs(ilse.accessToken, 'GET', '/account/whoami')).status, 200, 'the same token works again');

    const stranger = `@nobody_locked:${synapse.serverName}`;
    assert.equal(await bot.setLocked(stranger, true), 'unchanged');
    assert.equal(await bot.userStatus(stranger), undefined, 'locking a stranger did not create them');
  });

  test('M_FORBIDDEN when lacking power is a non-retryable error', async () => {
    const weak = gatewayFor(mallory.accessToken);
    const [error, requests] = await counted(weak, () => weak.ban(room, bob.userId, 'no power').catch((e: unknown) => e));
    assert.ok(error instanceof MatrixError);
    assert.equal(error.errcode, 'M_FORBIDDEN');
    assert.equal(error.status, 403);
    assert.equal(error.retryable, false);
    assert.equal(requests, 2, 'the ban and one membership read, no retries');
    assert.equal((await bot.roomSnapshot(room)).members.get(bob.userId), 'join');

    const notAdmin = await weak.suspend(bob.userId, true).catch((e: unknown) => e);
    assert.ok(notAdmin instanceof MatrixError);
    assert.equal(notAdmin.errcode, 'M_FORBIDDEN');
    assert.equal(notAdmin.retryable, false);
  });

  test('a real rate limit: M_LIMIT_EXCEEDED is waited out and the notices all arrive once', async () => {
    // One message per second, burst of one, for mallory only (the rest of the server is relaxed).
    await ok(synapse.adminToken, 'POST', `/_synapse/admin/v1/users/${enc(mallory.userId)}/override_ratelimit`, {
      messages_per_second: 1,
      burst_count: 1,
    });
    const limited = gatewayFor(mallory.accessToken);
    const started = Date.now();
    for (let i = 0; i < 3; i++) assert.equal(await limited.sendNotice(room, `limited ${i}`), 'applied');
    const elapsed = Date.now() - started;
    console.info(`3 notices in ${elapsed} ms, ${limited.requestCount} requests, ${limited.retryCount} rate-limit waits`);
    assert.ok(limited.retryCount >= 1, 'Synapse should have rate-limited at least once');
    assert.ok(elapsed >= 1_000, `waited only ${elapsed} ms`);
    assert.equal(limited.requestCount, 3 + limited.retryCount);
    const { chunk } = await ok(synapse.adminToken, 'GET', `/rooms/${enc(room)}/messages?dir=b&limit=50`);
    const bodies = chunk.filter((e: any) => e.sender === mallory.userId && e.type === 'm.room.message').map((e: any) => e.content.body);
    assert.deepEqual(bodies.sort(), ['limited 0', 'limited 1', 'limited 2']);
  });

  test('dry run: reads go through, writes are recorded, nothing changes', async () => {
    const comparable = (s: RoomSnapshot) => ({ members: [...s.members].sort(), bans: [...s.bans].sort(), powerLevels: s.powerLevels });
    const before = comparable(await bot.roomSnapshot(room));
    const dry = new DryRunGateway(gatewayFor(synapse.adminToken), silent);

    assert.equal((await dry.roomSnapshot(room)).roomId, room);
    const readRequests = dry.requestCount;
    const outcomes = await Promise.all([
      dry.ban(room, bob.userId, 'dry'),
      dry.unban(room, alice.userId),
      dry.kick(room, bob.userId, 'dry'),
      dry.invite(room, carol.userId),
      dry.setPowerLevels(room, { users: {} }),
      dry.sendStateEvent(room, 'm.policy.rule.user', 'rule:dry', { entity: bob.userId, recommendation: 'm.ban', reason: 'dry' }),
      dry.sendNotice(room, 'dry'),
      dry.suspend(bob.userId, true),
    ]);
    assert.deepEqual(new Set(outcomes), new Set(['dry_run']));
    assert.equal(dry.requestCount, readRequests, 'no write reached the homeserver');
    assert.deepEqual(dry.planned.map((w) => w.action), ['ban', 'unban', 'kick', 'invite', 'set_power_levels', 'send_state_event', 'send_notice', 'suspend']);
    assert.deepEqual(dry.planned[0], { action: 'ban', roomId: room, userId: bob.userId, reason: 'dry' });

    assert.deepEqual(comparable(await bot.roomSnapshot(room)), before);
    assert.equal((await bot.userStatus(bob.userId))?.suspended, false);
    const rule = await cs(synapse.adminToken, 'GET', `/rooms/${enc(room)}/state/m.policy.rule.user/rule%3Adry`);
    assert.equal(rule.status, 404);
    assert.equal(dry.takePlanned().length, 8);
    assert.equal(dry.planned.length, 0);
  });
});
