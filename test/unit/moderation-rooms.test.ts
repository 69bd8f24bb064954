// Rooms named by alias or as every room of a space: the configuration accepts exactly one way of
// naming each room, resolveRooms turns them into room ids once per pass (one request per alias
// or space), explicit entries win over spaces, and what cannot be resolved is reported and left
// alone, never a crash and never an undoing.
import assert from 'node:assert/strict';
import { afterAll, afterEach, beforeEach, describe, it, test } from '@jest/globals';
import pino from 'pino';
import { MatrixError } from '../../src/matrix/index.ts';
import { moderationConfigSchema, type ModerationConfigInput } from '../../src/moderation/config.ts';
import { ModerationExecutor } from '../../src/moderation/executor.ts';
import { policy } from '../../src/moderation/policy.ts';
import { ModerationAuditLog, ModerationRecordStore } from '../../src/moderation/records.ts';
import { resolveRooms } from '../../src/moderation/rooms.ts';
import type { WikiState, WikiUserState } from '../../src/moderation/types.ts';
import { backends, type TestDatabase } from '../support/backends.ts';
import { FakeMatrix } from '../support/fake-matrix.ts';

const SERVER = 'example.org';
const BOT = `@bot:${SERVER}`;
const NOW = new Date('2030-06-01T12:00:00Z');
const [A, B, C, D] = ['!a:example.org', '!b:example.org', '!c:example.org', '!d:example.org'];
const SPACE = '!space:example.org';
const SPACE_ALIAS = '#space:example.org';
const mxid = (localpart: string) => `@${localpart}:${SERVER}`;
const parse = (input: ModerationConfigInput) => moderationConfigSchema.parse(input);

function vandal(blocked = true): WikiUserState {
  const block = {
    id: 9, user: 'Vandal', userId: 5, by: 'Admin', timestamp: new Date('2030-06-01T11:00:00Z'), expiry: null,
    reason: 'Spam', sitewide: true, restrictions: { pages: [], namespaces: [], actions: [] },
    anonOnly: false, noCreate: true, autoblock: true, noEmail: false, allowUserTalk: true, hidden: false,
  };
  return {
    account: { wiki: 'wiki.example', centralId: '5', username: 'Vandal', localpart: 'vandal' },
    blocks: blocked ? [block] : [], globalBlocks: [], lock: null, groups: [], globalGroups: [],
  };
}

const wiki = (users: WikiUserState[]): WikiState => ({ wiki: 'wiki.example', users, complete: true });

describe('moderation config: naming rooms', () => {
  it('takes a room id, an alias or a space (by id or alias)', () => {
    const config = parse({
      rooms: [{ room_id: A }, { alias: '#chat:example.org', bans: 'global' }, { space: SPACE }, { space: SPACE_ALIAS, power_levels: false }],
      gated_rooms: [{ alias: '#sysops:example.org', groups: ['sysop'] }],
      policy_list: { alias: '#bans:example.org' },
    });
    assert.deepEqual(config.rooms[1], { alias: '#chat:example.org', bans: 'global', power_levels: true });
    assert.deepEqual(config.rooms[3], { space: SPACE_ALIAS, bans: 'all', power_levels: false });
    assert.equal(config.gated_rooms[0]!.alias, '#sysops:example.org');
    assert.deepEqual(config.policy_list, { alias: '#bans:example.org', bans: 'all' });
  });

  const invalid: [string, unknown, RegExp][] = [
    ['a room named no way', { rooms: [{ bans: 'all' }] }, /exactly one of `room_id`, `alias` or `space`/],
    ['a room named two ways', { rooms: [{ room_id: A, alias: '#a:example.org' }] }, /exactly one of/],
    ['an alias without a server name', { rooms: [{ alias: '#chat' }] }, /room alias/],
    ['a room id as an alias', { rooms: [{ alias: A }] }, /room alias/],
    ['a space named by neither id nor alias', { rooms: [{ space: 'space:example.org' }] }, /space id .* or alias/],
    ['an alias listed twice', { rooms: [{ alias: '#a:example.org' }, { alias: '#a:example.org', bans: 'none' }] }, /#a:example.org is listed twice/],
    ['a space listed twice', { rooms: [{ space: SPACE }, { space: SPACE }] }, /listed twice/],
    ['a gated room named two ways', { gated_rooms: [{ room_id: A, alias: '#a:example.org', groups: ['sysop'] }] }, /exactly one of `room_id` or `alias`/],
    ['a space as a gated room', { gated_rooms: [{ space: SPACE, groups: ['sysop'] }] }, /Unrecognized key/],
    ['a policy list named no way', { policy_list: { bans: 'all' } }, /exactly one of `room_id` or `alias`/],
  ];
  for (const [what, input, message] of invalid) {
    it(`rejects ${what}`, () => {
      const result = moderationConfigSchema.safeParse(input);
      assert.equal(result.success, false);
      assert.match(JSON.stringify(result.error!.issues), message);
    });
  }
});

describe('resolveRooms', () => {
  let matrix: FakeMatrix;
  beforeEach(() => {
    matrix = new FakeMatrix(BOT);
    for (const room of [A, B, C, D]) matrix.addRoom(room);
    matrix.addSpace(SPACE, [B, C]);
    matrix.aliases.set(SPACE_ALIAS, SPACE);
    matrix.aliases.set('#a:example.org', A);
  });

  const ids = (rooms: { room_id: string }[]) => rooms.map((r) => r.room_id);

  it('asks nothing when every room is named by id', async () => {
    const config = parse({ rooms: [{ room_id: A }, { room_id: B, bans: 'none' }], policy_list: { room_id: D } });
    const { config: resolved, problems } = await resolveRooms(config, matrix);
    assert.deepEqual(resolved, config);
    assert.deepEqual(problems, []);
    assert.equal(matrix.requestCount, 0);
  });

  it('an alias becomes its room id, with the entry settings', async () => {
    const { config } = await resolveRooms(parse({ rooms: [{ alias: '#a:example.org', bans: 'global', power_levels: false }] }), matrix);
    assert.deepEqual(config.rooms, [{ room_id: A, bans: 'global', power_levels: false }]);
    assert.equal(matrix.requestCount, 1);
  });

  it('a space becomes its child rooms, not itself; by alias it costs one request more', async () => {
    const byId = await resolveRooms(parse({ rooms: [{ space: SPACE, bans: 'global' }] }), matrix);
    assert.deepEqual(byId.config.rooms, [{ room_id: B, bans: 'global', power_levels: true }, { room_id: C, bans: 'global', power_levels: true }]);
    assert.equal(matrix.requestCount, 1);
    const byAlias = await resolveRooms(parse({ rooms: [{ space: SPACE_ALIAS }] }), matrix);
    assert.deepEqual(ids(byAlias.config.rooms), [B, C]);
    assert.equal(matrix.requestCount, 3);
  });

  it('a room named directly keeps its own settings, whichever entry comes first', async () => {
    const { config, duplicates } = await resolveRooms(parse({ rooms: [{ space: SPACE, bans: 'global' }, { room_id: C, bans: 'none', power_levels: false }] }), matrix);
    assert.deepEqual(config.rooms, [{ room_id: C, bans: 'none', power_levels: false }, { room_id: B, bans: 'global', power_levels: true }]);
    assert.deepEqual(duplicates, []);
  });

  it('rooms in two spaces take the first space settings, quietly', async () => {
    matrix.addSpace('!other:example.org', [C, D]);
    const { config, duplicates } = await resolveRooms(parse({ rooms: [{ space: SPACE, bans: 'global' }, { space: '!other:example.org', bans: 'none' }] }), matrix);
    assert.deepEqual(config.rooms.map((r) => `${r.room_id} ${r.bans}`), [`${B} global`, `${C} global`, `${D} none`]);
    assert.deepEqual(duplicates, []);
  });

  it('an alias naming a room also listed by id: the first entry applies, and it is said', async () => {
    const { config, duplicates } = await resolveRooms(parse({ rooms: [{ room_id: A, bans: 'none' }, { alias: '#a:example.org' }] }), matrix);
    assert.deepEqual(config.rooms, [{ room_id: A, bans: 'none', power_levels: true }]);
    assert.deepEqual(duplicates, [`${A} is named twice (${A} and #a:example.org): the entry for ${A} applies`]);
  });

  it('an alias naming no room and a space the bot cannot read are reported; the other rooms go ahead', async () => {
    const { config, problems } = await resolveRooms(parse({ rooms: [{ alias: '#gone:example.org' }, { space: '!stranger:example.org' }, { room_id: D }] }), matrix);
    assert.deepEqual(ids(config.rooms), [D]);
    assert.deepEqual(problems.map((p) => [p.kind, p.problem, p.roomId, p.userIds]), [
      ['report', 'room_unavailable', null, []],
      ['report', 'room_unavailable', '!stranger:example.org', []],
    ]);
    assert.match(problems[0]!.message, /#gone:example\.org names no room/);
    assert.match(problems[1]!.message, /Cannot read the space !stranger:example\.org.*the bot must be in the space.*M_FORBIDDEN/);
  });

  it('a homeserver that does not answer is reported; a bug is not swallowed', async () => {
    matrix.failReads = () => new MatrixError('resolve_alias', { errcode: 'WMS_NETWORK_ERROR', status: 0, retryable: true, detail: 'no answer' });
    const { problems } = await resolveRooms(parse({ rooms: [{ space: SPACE_ALIAS }] }), matrix);
    assert.equal(problems.length, 1);
    assert.match(problems[0]!.message, /Cannot resolve #space:example\.org.*no answer/);

    matrix.failReads = () => new TypeError('a bug');
    await assert.rejects(resolveRooms(parse({ rooms: [{ alias: '#a:example.org' }] }), matrix), TypeError);
  });

  it('one request per alias, however many lists name it; gated rooms and the policy list by alias', async () => {
    matrix.aliases.set('#bans:example.org', D);
    const { config, problems } = await resolveRooms(parse({
      rooms: [{ alias: '#a:example.org' }],
      gated_rooms: [{ alias: '#a:example.org', groups: ['sysop'] }, { room_id: A, groups: ['steward'] }],
      policy_list: { alias: '#bans:example.org', bans: 'global' },
    }), matrix);
    assert.deepEqual(problems, []);
    assert.equal(matrix.requestCount, 2);
    assert.deepEqual(config.gated_rooms, [{ room_id: A, groups: ['sysop'], global_groups: [] }]);
    assert.deepEqual(config.policy_list, { room_id: D, bans: 'global' });
  });

  it('a policy list alias naming no room: no policy list this pass, reported', async () => {
    const { config, problems } = await resolveRooms(parse({ policy_list: { alias: '#nope:example.org' } }), matrix);
    assert.equal(config.policy_list, undefined);
    assert.equal(problems.length, 1);
  });

  it('policy() takes the resolved configuration, and refuses an unresolved one', async () => {
    const config = parse({ rooms: [{ space: SPACE }] });
    const desired = policy(wiki([vandal()]), (await resolveRooms(config, matrix)).config, { now: NOW, serverName: SERVER });
    assert.deepEqual(desired.rooms.map((r) => [r.roomId, [...r.bans!.keys()]]), [[B, [mxid('vandal')]], [C, [mxid('vandal')]]]);
    assert.throws(() => policy(wiki([vandal()]), config, { now: NOW, serverName: SERVER }), /resolveRooms/);
  });
});

describe('moderation executor: rooms of a space', () => {
  const silent = pino({ level: 'silent' });
  const backend = backends()[0]!;
  let db: TestDatabase;
  let matrix: FakeMatrix;
  const opened: TestDatabase[] = [];

  beforeEach(async () => {
    db = await backend.open();
    opened.push(db);
    matrix = new FakeMatrix(BOT);
    for (const room of [B, C]) matrix.addRoom(room, { members: [mxid('vandal')] });
    matrix.addSpace(SPACE, [B, C]);
    matrix.aliases.set(SPACE_ALIAS, SPACE);
  });
  afterEach(() => db.dispose());
  afterAll(() => Promise.all(opened.map((d) => d.dispose())));

  const executor = (rooms: ModerationConfigInput['rooms']) =>
    new ModerationExecutor({ db, gateway: matrix, log: silent, moderation: parse({ rooms }), serverName: SERVER, clock: () => NOW });

  test('a block bans in every room of the space, not in the space; the next pass asks the space again and does nothing', async () => {
    const result = await executor([{ space: SPACE_ALIAS }]).run(wiki([vandal()]));
    assert.deepEqual(matrix.writes('ban').map((c) => 'roomId' in c && c.roomId), [B, C]);
    assert.equal(result.counts.applied, 2);

    const before = matrix.requestCount;
    const again = await executor([{ space: SPACE_ALIAS }]).run(wiki([vandal()]));
    assert.deepEqual(again.results, []);
    assert.equal(matrix.requestCount - before, 4, 'the alias, the space, one snapshot per room');
  });

  test('what cannot be resolved is audited as room_unavailable; a room gone from the space keeps its ban and records', async () => {
    await executor([{ space: SPACE }]).run(wiki([vandal()]));
    matrix.spaces.set(SPACE, [B]);
    const result = await executor([{ space: SPACE }, { alias: '#gone:example.org' }]).run(wiki([vandal(false)]));
    assert.deepEqual(result.results.map((r) => `${r.action.kind}:${r.outcome}`), ['report:reported', 'unban:applied']);
    assert.equal(matrix.rooms.get(C)!.bans.has(mxid('vandal')), true, 'out of the pass, nothing is undone');
    assert.deepEqual((await new ModerationRecordStore(db).load()).bans.map((r) => r.roomId), [C]);
    const reports = (await new ModerationAuditLog(db).list({ kind: 'report' })).entries;
    assert.equal(reports.length, 1);
    assert.equal(reports[0]!.detail.problem, 'room_unavailable');
  });

  test('a space the bot has left: reported, its rooms left alone', async () => {
    matrix.rooms.delete(SPACE);
    const result = await executor([{ space: SPACE }]).run(wiki([vandal()]));
    assert.deepEqual(result.results.map((r) => `${r.action.kind}:${r.outcome}:${r.action.kind === 'report' ? r.action.roomId : ''}`), [`report:reported:${SPACE}`]);
    assert.equal(matrix.writes('ban').length, 0);
  });
});
