// The bots that read the policy list (`moderation.policy_list.subscribers`, e.g. the IRC bridge's
// bot, which joins the rooms of its `banLists` itself): reconcile invites each one not in the room
// on full passes, never on targeted ones, never over a ban, and reports missing power; the
// executor sends the invitation, audits it like any action, shows it in dry runs and the notice.
import assert from 'node:assert/strict';
import { after, afterEach, beforeEach, describe, test } from 'node:test';
import pino from 'pino';
import { describeAction } from '../../src/commands/sync.ts';
import { DryRunGateway } from '../../src/matrix/index.ts';
import { moderationConfigSchema } from '../../src/moderation/config.ts';
import { ModerationExecutor } from '../../src/moderation/executor.ts';
import { policy } from '../../src/moderation/policy.ts';
import { reconcile } from '../../src/moderation/reconcile.ts';
import { ModerationAuditLog } from '../../src/moderation/records.ts';
import type { Action, Membership, OwnershipRecords, RoomSnapshot, WikiState } from '../../src/moderation/types.ts';
import { backends, type TestDatabase } from '../support/backends.ts';
import { FakeMatrix } from '../support/fake-matrix.ts';

const SERVER = 'example.org';
const BOT = `@bot:${SERVER}`;
const POLICY = `!policy:${SERVER}`;
const IRC = `@ircbridge:${SERVER}`;
const DRAUPNIR = `@draupnir:elsewhere.example`;
const NOW = new Date('2030-06-01T12:00:00Z');
const NONE: OwnershipRecords = { bans: [], levels: [], invites: [], policyRules: [], suspensions: [], sessionEnds: [] };
const silent = pino({ level: 'silent' });

const config = (subscribers: string[] | undefined) =>
  moderationConfigSchema.parse({ policy_list: { room_id: POLICY, ...(subscribers ? { subscribers } : {}) } });

function snapshot(members: Record<string, Membership>, fields: Partial<RoomSnapshot> = {}): RoomSnapshot {
  return {
    roomId: POLICY,
    members: new Map(Object.entries({ [BOT]: 'join' as Membership, ...members })),
    bans: new Map(),
    powerLevels: { users: { [BOT]: 100 }, users_default: 0, invite: 0, state_default: 50, events: {} },
    botUserId: BOT,
    policyRules: new Map(),
    ...fields,
  };
}

function plan(subscribers: string[] | undefined, room: RoomSnapshot, complete = true): Action[] {
  const wiki: WikiState = { wiki: 'wiki.example', users: [], complete };
  const desired = policy(wiki, config(subscribers), { now: NOW, serverName: SERVER });
  return reconcile(desired, { rooms: new Map([[POLICY, room]]) }, NONE, { now: NOW });
}

const brief = (actions: Action[]) =>
  actions.map((a) => (a.kind === 'report' ? `report ${a.problem}${a.wanted ? `/${a.wanted}` : ''} ${a.userIds.join(',')}` : `${a.kind} ${'userId' in a ? a.userId : ''}`));

describe('policy list subscribers: config', () => {
  test('a list of Matrix IDs; anything else is refused by name', () => {
    assert.deepEqual(config([IRC, DRAUPNIR]).policy_list?.subscribers, [IRC, DRAUPNIR]);
    assert.equal(config(undefined).policy_list?.subscribers, undefined);
    const bad = moderationConfigSchema.safeParse({ policy_list: { room_id: POLICY, subscribers: ['ircbridge'] } });
    assert.equal(bad.success, false);
    assert.match(JSON.stringify(bad.error?.issues), /expected a Matrix ID such as @ircbridge:example\.org/);
  });
});

describe('policy list subscribers: reconcile', () => {
  const cases: { name: string; subscribers?: string[]; room: RoomSnapshot; complete?: boolean; want: string[] }[] = [
    { name: 'invites a subscriber never in the room', subscribers: [IRC], room: snapshot({}), want: [`invite_subscriber ${IRC}`] },
    { name: 'invites a subscriber of another server too', subscribers: [DRAUPNIR], room: snapshot({}), want: [`invite_subscriber ${DRAUPNIR}`] },
    { name: 'does nothing while it is in the room', subscribers: [IRC], room: snapshot({ [IRC]: 'join' }), want: [] },
    { name: 'does nothing while its invitation stands', subscribers: [IRC], room: snapshot({ [IRC]: 'invite' }), want: [] },
    { name: 'invites again one that left or declined', subscribers: [IRC], room: snapshot({ [IRC]: 'leave' }), want: [`invite_subscriber ${IRC}`] },
    { name: 'answers a knock with the invitation', subscribers: [IRC], room: snapshot({ [IRC]: 'knock' }), want: [`invite_subscriber ${IRC}`] },
    {
      name: 'never invites over a ban: reports it',
      subscribers: [IRC],
      room: snapshot({ [IRC]: 'ban' }, { bans: new Map([[IRC, { sender: '@mod:example.org', reason: 'spam' }]]) }),
      want: [`report hand_set_ban ${IRC}`],
    },
    {
      name: 'reports missing power to invite instead of trying',
      subscribers: [IRC],
      room: snapshot({}, { powerLevels: { users: { [BOT]: 40 }, invite: 50, state_default: 0 } }),
      want: [`report lacks_power/invite ${IRC}`],
    },
    { name: 'a targeted pass leaves subscribers alone (they are nobody\'s wiki state)', subscribers: [IRC], room: snapshot({}), complete: false, want: [] },
    { name: 'no subscribers, no invitations', room: snapshot({}), want: [] },
  ];
  for (const c of cases) {
    test(c.name, () => {
      assert.deepEqual(brief(plan(c.subscribers, c.room, c.complete ?? true)), c.want);
    });
  }

  test('the reason of the ban report names who banned it', () => {
    const [report] = plan([IRC], snapshot({ [IRC]: 'ban' }, { bans: new Map([[IRC, { sender: '@mod:example.org' }]]) }));
    assert.equal(report?.kind, 'report');
    assert.match((report as Extract<Action, { kind: 'report' }>).message, /banned from !policy:example\.org by @mod:example\.org/);
  });
});

describe('policy list subscribers: executor', () => {
  const backend = backends()[0]!;
  let db: TestDatabase;
  let matrix: FakeMatrix;
  const opened: TestDatabase[] = [];
  beforeEach(async () => {
    db = await backend.open();
    opened.push(db);
    matrix = new FakeMatrix(BOT);
    matrix.addRoom(POLICY);
    matrix.addRoom('!notices:example.org');
  });
  afterEach(() => db.dispose());
  after(() => Promise.all(opened.map((d) => d.dispose())));

  const executor = (gateway = matrix as FakeMatrix | DryRunGateway) =>
    new ModerationExecutor({ db, gateway, log: silent, moderation: config([IRC]), serverName: SERVER, noticeRoom: '!notices:example.org', clock: () => NOW });
  const full: WikiState = { wiki: 'wiki.example', users: [], complete: true };
  const audit = async () => (await new ModerationAuditLog(db).list()).entries;

  test('invites once, audited with no wiki cause, announced; the next full pass does nothing', async () => {
    const first = await executor().run(full);
    assert.deepEqual(matrix.writes('invite'), [
      { method: 'invite', roomId: POLICY, userId: IRC, reason: 'Reads the policy list published here (moderation.policy_list.subscribers)' },
    ]);
    assert.equal(first.counts.applied, 1);
    assert.match(first.notice ?? '', new RegExp(`^Invited ${IRC} to the policy list room — it reads the policy list$`, 'm'));
    const [entry] = await audit();
    assert.deepEqual([entry?.kind, entry?.roomId, entry?.userId, entry?.cause, entry?.outcome], ['invite_subscriber', POLICY, IRC, null, 'applied']);

    const second = await executor().run(full);
    assert.equal(second.results.length, 0);
    assert.equal(matrix.writes('invite').length, 1);
  });

  test('a dry run plans it, sends nothing, and sync --dry-run says what it would do', async () => {
    const dry = executor(new DryRunGateway(matrix, silent));
    const planned = await dry.plan(full);
    assert.deepEqual(planned.actions.map(describeAction), [`invite   ${IRC} to ${POLICY} (reads the policy list)`]);
    const result = await dry.apply(planned);
    assert.equal(result.counts.dry_run, 1);
    assert.equal(matrix.writes('invite').length, 0);
  });
});
