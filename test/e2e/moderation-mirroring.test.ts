// Moderation mirroring end to end: a real MediaWiki, a real Synapse and the real `worker` command
// as a child process. Blocks, unblocks, expiries and group changes made through the wiki's API
// show up in every managed room within seconds; a ban a room moderator placed survives an unblock;
// a partial block bans nobody; a worker killed with SIGKILL mid-pass and restarted leaves exactly
// one ban per room; `sync --dry-run` changes nothing. Runs on the embedded PGlite (the worker's
// data directory, read by the test only while no worker runs) and, when TEST_DATABASE_URL is set,
// on PostgreSQL.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, jest, test } from '@jest/globals';
import { setTimeout as sleep } from 'node:timers/promises';
import YAML from 'yaml';
import { openDatabase, type Database } from '../../src/db/index.ts';
import { migrate } from '../../src/db/migrate.ts';
import { PostgresAccountRepository } from '../../src/identity/accounts.ts';
import { LocalpartPolicy } from '../../src/identity/localpart.ts';
import { ModerationAuditLog, ModerationRecordStore, emptyRecords } from '../../src/moderation/records.ts';
import { backends, type TestDatabase } from '../support/backends.ts';
import { run, start, type Running } from '../support/cli.ts';
import { mediawikiAvailable, startWiki, type TestWiki } from '../support/mediawiki.ts';
import { IDP, WIKI_ID, eventually } from '../support/mirror-stack.ts';
import { skipUnless } from '../support/real-parts.ts';
import { startSynapse, synapseAvailable, type RegisteredUser, type Synapse, clientApi } from '../support/synapse.ts';
import { skippable } from '../support/suites.ts';

const unavailable = mediawikiAvailable() ?? synapseAvailable();
const enc = encodeURIComponent;

jest.setTimeout(150_000);

for (const backend of backends()) skippable(describe, skipUnless(unavailable))(`moderation mirroring end to end (${backend.name})`, () => {
  let wiki: TestWiki;
  let synapse: Synapse;
  let db: TestDatabase | undefined;
  let dir: string;
  let configPath: string;
  let rooms: string[];
  let notices: string;
  let mod: RegisteredUser;
  let worker: Running | undefined;
  /** Matrix users by wiki username. */
  const users = new Map<string, RegisteredUser>();
  const NAMES = ['Vandal', 'Hand', 'Partial', 'Sysop', 'Expiring', 'Crash', 'Promoted', 'Quiet', 'Renamed'];

  const call: ReturnType<typeof clientApi>['call'] = (...args) => clientApi(synapse).call(...args);
  const admin: ReturnType<typeof clientApi>['admin'] = (...args) => clientApi(synapse).admin(...args);
  const state: ReturnType<typeof clientApi>['state'] = (...args) => clientApi(synapse).state(...args);
  const member = async (roomId: string, name: string) => (await state(roomId, 'm.room.member', users.get(name)!.userId)) as { membership: string; reason?: string };
  const memberships = (name: string) => Promise.all(rooms.map((room) => member(room, name)));
  const levels = (name: string) => Promise.all(rooms.map(async (room) => (await state(room, 'm.room.power_levels')).users?.[users.get(name)!.userId] as number | undefined));

  /** The room's timeline events of one type, oldest first. */
  async function timeline(roomId: string, type: string): Promise<any[]> {
    const filter = enc(JSON.stringify({ types: [type] }));
    const page = await admin('GET', `/rooms/${enc(roomId)}/messages?dir=b&limit=500&filter=${filter}`);
    return page.chunk.reverse();
  }
  const banEvents = async (roomId: string, name: string) =>
    (await timeline(roomId, 'm.room.member')).filter((e) => e.state_key === users.get(name)!.userId && e.content.membership === 'ban');
  const noticeTexts = async () => (await timeline(notices, 'm.room.message')).filter((e) => e.content.msgtype === 'm.notice').map((e) => e.content.body as string);

  /** Waits until every room shows `membership` for this user; returns the member events. */
  const eventuallyAll = (name: string, membership: string) =>
    eventually(`${name} ${membership} in every room`, async () => {
      const all = await memberships(name);
      return all.every((m) => m.membership === membership) ? all : undefined;
    });

  function startWorker(): Running {
    worker = start(['worker', '--config', configPath]);
    return worker;
  }
  async function stopWorker(): Promise<void> {
    if (!worker) return;
    const w = worker;
    worker = undefined;
    if (w.child.exitCode !== null || w.child.signalCode !== null) return;
    w.child.kill('SIGTERM');
    const finished = await w.exited;
    assert.equal(finished.code, 0, `the worker exits cleanly on SIGTERM:\n${finished.stdout}${finished.stderr}`);
  }
  /** The worker's database, opened while no worker runs (PGlite admits one process at a time). */
  async function withDatabase<T>(work: (db: Database) => Promise<T>): Promise<T> {
    if (db) return work(db);
    const local = await openDatabase({ url: undefined, dataDir: join(dir, 'pglite'), poolMax: 2, connectTimeoutSeconds: 5 });
    try {
      return await work(local);
    } finally {
      await local.close();
    }
  }

  beforeAll(async () => {
    if (unavailable) throw new Error(unavailable);
    dir = mkdtempSync(join(tmpdir(), 'wms-mirror-'));
    [wiki, synapse] = await Promise.all([startWiki(), startSynapse()]);
    if (backend.name === 'postgres') db = await backend.open();

    mod = await synapse.registerUser('roommod', 'roommod-password-1');
    const localparts = new LocalpartPolicy({ serverName: synapse.serverName, reservedNames: [], reservedPrefixes: [] });
    await withDatabase(async (database) => {
      await migrate(database);
      const accounts = new PostgresAccountRepository(database, { clock: () => new Date(), localparts });
      for (const name of NAMES) {
        const { userId } = await wiki.createUser(name, `${name.toLowerCase()}-password-1`);
        const account = await accounts.upsertOnLogin({ wiki: WIKI_ID, centralId: String(userId), username: name });
        const user = await synapse.registerUser(account.localpart, `${name.toLowerCase()}-password-1`);
        users.set(name, user);
        // As a sign-in through the README's oidc_providers snippet leaves the user: known by the
        // wiki's `sub` to the auth provider, with the wiki name as display name.
        await admin('PUT', `/_synapse/admin/v2/users/${enc(user.userId)}`, { external_ids: [{ auth_provider: IDP, external_id: String(userId) }], displayname: name });
      }
    });

    rooms = [];
    for (const name of ['one', 'two', 'three']) {
      const { room_id } = await admin('POST', '/createRoom', {
        preset: 'public_chat',
        room_version: '11',
        name,
        power_level_content_override: { users: { [synapse.adminUserId]: 100, [mod.userId]: 50 } },
      });
      rooms.push(room_id);
      for (const user of [mod, ...users.values()]) await call(user.accessToken, 'POST', `/join/${enc(room_id)}`, {});
    }
    notices = (await admin('POST', '/createRoom', { preset: 'private_chat', name: 'moderation' })).room_id;

    configPath = join(dir, 'config.yaml');
    writeFileSync(configPath, YAML.stringify({
      oidc: { cookie_keys: ['k'.repeat(40)], key_encryption_secret: 'test-secret' },
      database: db ? { url: db.url } : { data_dir: join(dir, 'pglite') },
      wiki: { base_url: wiki.baseUrl, contact: 'moderation-e2e@example.org', central_auth: false },
      identity: { wiki_id: WIKI_ID },
      matrix: { homeserver_url: synapse.baseUrl, server_name: synapse.serverName, access_token: synapse.adminToken, user_id: synapse.adminUserId, request_timeout: 10, synapse_idp_id: IDP },
      sync: { enabled: true, dry_run: false, poll_interval: 1, full_pass_interval: 3600, moderation_room: notices },
      moderation: { rooms: rooms.map((room_id) => ({ room_id })) },
      logging: { level: 'debug' },
    }));
  });

  afterAll(async () => {
    if (worker) {
      worker.child.kill('SIGKILL');
      await worker.exited;
    }
    await db?.dispose();
    await synapse?.stop();
    await wiki?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('the worker starts, leads and runs a full pass', async () => {
    const w = startWorker();
    await w.waitFor(/leader: moderation mirroring is running/, 30_000);
    await w.waitFor(/moderation pass done/, 30_000);
  });

  test('a sitewide block bans in every room with the wiki reason; a partial block bans nobody', async () => {
    await wiki.block('Partial', { reason: 'edit war', partial: true, pages: ['Main Page'] });
    // A ban a room moderator placed by hand, before the wiki blocks the same user.
    await call(mod.accessToken, 'POST', `/rooms/${enc(rooms[0]!)}/ban`, { user_id: users.get('Hand')!.userId, reason: 'by hand' });
    const started = Date.now();
    const { id } = await wiki.block('Vandal', { reason: 'spam' });
    await wiki.block('Hand', { reason: 'socks' });

    const bans = await eventuallyAll('Vandal', 'ban');
    const elapsed = Date.now() - started;
    for (const ban of bans) assert.equal(ban.reason, `Blocked on ${WIKI_ID} (block #${id} by Admin, indefinitely): spam`);
    await eventuallyAll('Hand', 'ban');
    assert.equal((await member(rooms[0]!, 'Hand')).reason, 'by hand', 'the hand-placed ban is left as it was');
    assert.ok(elapsed < 20_000, `mirrored in ${elapsed} ms`);
    assert.deepEqual((await memberships('Partial')).map((m) => m.membership), ['join', 'join', 'join']);

    const texts = await eventually('a notice', async () => ((await noticeTexts()).some((t) => t.includes(users.get('Vandal')!.userId)) ? noticeTexts() : undefined));
    assert.ok(texts.some((t) => t.includes(`Banned ${users.get('Vandal')!.userId} in 3 rooms — Blocked on ${WIKI_ID} (block #${id} by Admin, indefinitely): spam`)), texts.join('\n---\n'));
  });

  test('an unblock lifts the bans the service placed and leaves the hand-placed one', async () => {
    await wiki.unblock('Vandal');
    await wiki.unblock('Hand');
    await eventuallyAll('Vandal', 'leave');
    await eventually('Hand unbanned in the rooms the service banned', async () => {
      const all = await memberships('Hand');
      return all[1]!.membership === 'leave' && all[2]!.membership === 'leave' ? all : undefined;
    });
    const hand = await member(rooms[0]!, 'Hand');
    assert.equal(hand.membership, 'ban');
    assert.equal(hand.reason, 'by hand');
  });

  test('sysop gives level 50 in every room with one power levels event per room; removing it takes the level back', async () => {
    const plEvents = () => Promise.all(rooms.map(async (room) => (await timeline(room, 'm.room.power_levels')).length));
    const before = await plEvents();
    await wiki.userrights('Sysop', { add: ['sysop'] });
    await eventually('level 50 everywhere', async () => ((await levels('Sysop')).every((l) => l === 50) ? true : undefined));
    await sleep(1_500); // a poll or two more: still one event
    assert.deepEqual(await plEvents(), before.map((n) => n + 1));

    await wiki.userrights('Sysop', { remove: ['sysop'] });
    await eventually('level removed everywhere', async () => ((await levels('Sysop')).every((l) => l === undefined) ? true : undefined));
    assert.deepEqual(await plEvents(), before.map((n) => n + 2));
    for (const room of rooms) assert.equal((await state(room, 'm.room.power_levels')).users[mod.userId], 50, 'levels set by hand stay');
  });

  test('a renamed, blocked user stays banned; the Matrix display name follows the new wiki name', async () => {
    const { id } = await wiki.block('Renamed', { reason: 'sock puppetry' });
    await eventuallyAll('Renamed', 'ban');
    const seen = worker!.output().length;
    await wiki.renameUser('Renamed', 'Переименованный участник');
    const userId = users.get('Renamed')!.userId;
    await eventually('the display name', async () => {
      const profile = await call(users.get('Renamed')!.accessToken, 'GET', `/profile/${enc(userId)}/displayname`);
      return profile.displayname === 'Переименованный участник' ? true : undefined;
    });
    const bans = await memberships('Renamed');
    assert.ok(bans.every((m) => m.membership === 'ban' && m.reason?.includes(`block #${id}`)), `still banned for block #${id}: ${JSON.stringify(bans)}`);
    assert.doesNotMatch(worker!.output().slice(seen), /"kind":"unban"/, 'the rename planned no unban');

    // The account is found under its new name: the unblock lifts the bans.
    await wiki.unblock('Переименованный участник');
    await eventuallyAll('Renamed', 'leave');
  });

  test('a block that expires is lifted within seconds, though expiry writes no log entry', async () => {
    const { id } = await wiki.block('Expiring', { reason: 'cool down', expiry: '8 seconds' });
    const bans = await eventuallyAll('Expiring', 'ban');
    assert.match(bans[0]!.reason!, new RegExp(`^Blocked on test\\.wiki \\(block #${id} by Admin, until \\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d UTC\\): cool down$`));
    const lifted = await eventuallyAll('Expiring', 'leave');
    assert.ok(lifted.every((m) => m.reason === `Block #${id} on ${WIKI_ID} expired`), JSON.stringify(lifted));
  });

  test('a worker killed mid-pass and restarted leaves exactly one ban per room, each recorded', async () => {
    const w = worker!;
    const seen = w.output().length;
    const crash = users.get('Crash')!.userId;
    await wiki.block('Crash', { reason: 'crash test' });
    // The first ban of the pass: kill the worker there, without letting it finish.
    await eventually('the first ban', async () => (/"kind":"ban"/.test(w.output().slice(seen)) ? true : undefined));
    w.child.kill('SIGKILL');
    await w.exited;
    worker = undefined;

    const atKill = await memberships('Crash');
    const bannedAtKill = rooms.filter((_, i) => atKill[i]!.membership === 'ban');
    assert.ok(bannedAtKill.length >= 1, 'the kill came after a ban');
    await withDatabase(async (database) => {
      const recorded = new Set((await new ModerationRecordStore(database).load({ userIds: [crash] })).bans.map((r) => r.roomId));
      // The worst moment to die is between a ban and its record. When the kill did not land
      // there, make it so: the ban stays in the room, its record goes.
      if (bannedAtKill.every((room) => recorded.has(room))) {
        await database.query('DELETE FROM moderation_records WHERE kind = $1 AND room_id = $2 AND key = $3', ['ban', bannedAtKill[0], crash]);
      }
    });

    const restarted = startWorker();
    await restarted.waitFor(/moderation pass done/, 30_000);
    await eventuallyAll('Crash', 'ban');
    await sleep(1_500); // a few more polls: nothing more happens
    for (const room of rooms) assert.equal((await banEvents(room, 'Crash')).length, 1, `one ban event in ${room}`);

    // Every ban has its record again: the unblock lifts all three.
    await wiki.unblock('Crash');
    await eventuallyAll('Crash', 'leave');
    await stopWorker();
    await withDatabase(async (database) => {
      const applied = (await new ModerationAuditLog(database).list({ userId: crash, kind: 'ban', outcome: 'applied' })).entries;
      assert.deepEqual(new Set(applied.map((e) => e.roomId)), new Set(rooms), 'a ban audited in every room');
      assert.deepEqual((await new ModerationRecordStore(database).load({ userIds: [crash] })).bans, []);
    });
  });

  test('a worker killed while setting power levels and restarted leaves one change per room, each recorded', async () => {
    const plEvents = () => Promise.all(rooms.map(async (room) => (await timeline(room, 'm.room.power_levels')).length));
    const before = await plEvents();
    const w = startWorker();
    await w.waitFor(/moderation pass done/, 30_000);
    const mark = w.mark();
    await wiki.userrights('Promoted', { add: ['sysop'] });
    await w.waitFor(/"kind":"set_power_levels"/, 20_000, mark);
    w.child.kill('SIGKILL');
    await w.exited;
    worker = undefined;

    const restarted = startWorker();
    await restarted.waitFor(/moderation pass done/, 30_000);
    await eventually('level 50 everywhere', async () => ((await levels('Promoted')).every((l) => l === 50) ? true : undefined));
    await sleep(1_500); // a few more polls: nothing more happens
    assert.deepEqual(await plEvents(), before.map((n) => n + 1), 'one power levels event per room');

    // Each change has its record (or was found in the room and given one): removing the group takes the level back.
    await wiki.userrights('Promoted', { remove: ['sysop'] });
    await eventually('level removed everywhere', async () => ((await levels('Promoted')).every((l) => l === undefined) ? true : undefined));
    assert.deepEqual(await plEvents(), before.map((n) => n + 2));
    await stopWorker();
  });

  test('sync --dry-run plans the ban and changes nothing', async () => {
    await wiki.block('Quiet', { reason: 'dry' });
    const auditBefore = await withDatabase(async (database) => (await new ModerationAuditLog(database).list({ limit: 1000 })).entries.length);
    const noticesBefore = (await noticeTexts()).length;
    const result = await run(['sync', '--dry-run', '--config', configPath]);
    assert.equal(result.code, 0, result.stdout + result.stderr);
    assert.match(result.stdout, new RegExp(`ban +${users.get('Quiet')!.userId.replace(/[.]/g, '\\.')} in !`));
    assert.match(result.stdout, /Nothing was changed\./);
    assert.deepEqual((await memberships('Quiet')).map((m) => m.membership), ['join', 'join', 'join']);
    assert.equal((await noticeTexts()).length, noticesBefore);
    assert.equal(await withDatabase(async (database) => (await new ModerationAuditLog(database).list({ limit: 1000 })).entries.length), auditBefore);
  });

  test('the records match the rooms in the end', async () => {
    await withDatabase(async (database) => {
      // Every ban lifted, every level taken back: nothing left that the service owns.
      assert.deepEqual(await new ModerationRecordStore(database).load(), emptyRecords());
    });
  });
});
