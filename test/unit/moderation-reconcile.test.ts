// reconcile(desired, actual room state, ownership records) → actions: table tests for every rule,
// and a property over random wiki and room states: the actions are legal under the Matrix
// authorization rules, change something, and once applied leave nothing more to do.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { moderationConfigSchema, type ModerationConfigInput } from '../../src/moderation/config.ts';
import { banReason, policy, policyRuleStateKey } from '../../src/moderation/policy.ts';
import { isMatrixChange, reconcile, recordsAfter } from '../../src/moderation/reconcile.ts';
import type {
  Action,
  ActualState,
  DesiredRoom,
  DesiredState,
  Membership,
  OwnershipRecords,
  PowerLevelsContent,
  RoomSnapshot,
  WikiCause,
  WikiUserState,
} from '../../src/moderation/types.ts';

const NOW = new Date('2030-06-01T12:00:00Z');
const hours = (n: number) => new Date(NOW.getTime() + n * 3600_000);
const SERVER = 'example.org';
const BOT = `@bot:${SERVER}`;
const MOD = `@mod:${SERVER}`;
const ALICE = `@alice:${SERVER}`;
const BOB = `@bob:${SERVER}`;
const ROOM = `!main:${SERVER}`;
const POLICY = `!policy:${SERVER}`;
const ctx = { now: NOW };

function cause(fields: Partial<WikiCause> = {}): WikiCause {
  return { kind: 'block', wiki: 'wiki.example', blockId: 1, logId: null, by: 'Admin', reason: 'Vandalism', timestamp: hours(-1), expiry: hours(24), group: null, hidden: false, ...fields };
}
const BLOCK = cause();
const REASON = banReason(BLOCK);
const SYSOP = cause({ kind: 'group', blockId: null, by: null, reason: '', expiry: null, group: 'sysop' });

interface SnapshotFields {
  roomId?: string;
  members?: Record<string, Membership>;
  bans?: Record<string, { reason?: string; sender: string }>;
  users?: Record<string, number | string>;
  powerLevels?: Partial<PowerLevelsContent>;
  creators?: string[];
  policyRules?: Record<string, Record<string, unknown>>;
}

function snapshot(fields: SnapshotFields = {}): RoomSnapshot {
  const members = new Map(Object.entries(fields.members ?? {}));
  for (const userId of Object.keys(fields.bans ?? {})) members.set(userId, 'ban');
  return {
    roomId: fields.roomId ?? ROOM,
    members,
    bans: new Map(Object.entries(fields.bans ?? {})),
    powerLevels: {
      users: { [BOT]: 100, ...fields.users } as Record<string, number>,
      users_default: 0,
      ban: 50,
      kick: 50,
      invite: 0,
      state_default: 50,
      events: { 'm.room.name': 50 },
      historical: 100,
      ...fields.powerLevels,
    },
    creators: fields.creators,
    botUserId: BOT,
    policyRules: fields.policyRules ? new Map(Object.entries(fields.policyRules)) : undefined,
  };
}

interface DesiredFields {
  bans?: Record<string, WikiCause>;
  levels?: Record<string, [number, WikiCause]>;
  members?: Record<string, WikiCause>;
  manage?: ('bans' | 'levels' | 'members')[];
  suspensions?: Record<string, WikiCause>;
  sessionEnds?: Record<string, WikiCause>;
  rules?: Record<string, WikiCause>;
  scope?: string[];
}

function desired(fields: DesiredFields = {}): DesiredState {
  const manage = new Set(fields.manage ?? ['bans', 'levels']);
  const room: DesiredRoom = {
    roomId: ROOM,
    bans: manage.has('bans') ? new Map(Object.entries(fields.bans ?? {}).map(([u, c]) => [u, { reason: banReason(c), cause: c }])) : undefined,
    levels: manage.has('levels') ? new Map(Object.entries(fields.levels ?? {}).map(([u, [level, c]]) => [u, { level, cause: c }])) : undefined,
    members: manage.has('members') || fields.members ? new Map(Object.entries(fields.members ?? {})) : undefined,
  };
  return {
    scope: fields.scope ? new Set(fields.scope) : 'all',
    rooms: [room],
    suspensions: new Map(Object.entries(fields.suspensions ?? {})),
    sessionEnds: new Map(Object.entries(fields.sessionEnds ?? {}).map(([u, c]) => [u, { centralId: '1', cause: c }])),
    policyList: fields.rules && {
      roomId: POLICY,
      rules: new Map(Object.entries(fields.rules).map(([u, c]) => [policyRuleStateKey(u), { entity: u, content: { entity: u, recommendation: 'm.ban' as const, reason: banReason(c) }, cause: c }])),
    },
  };
}

const NONE: OwnershipRecords = { bans: [], levels: [], invites: [], policyRules: [], suspensions: [], sessionEnds: [] };
const records = (fields: Partial<OwnershipRecords>): OwnershipRecords => ({ ...NONE, ...fields });
const actualOf = (...rooms: RoomSnapshot[]): ActualState => ({ rooms: new Map(rooms.map((r) => [r.roomId, r])) });

function plan(d: DesiredState, rooms: RoomSnapshot | RoomSnapshot[], r: OwnershipRecords = NONE, suspended?: string[]): Action[] {
  const actual = actualOf(...(Array.isArray(rooms) ? rooms : [rooms]));
  return reconcile(d, suspended ? { ...actual, suspended: new Set(suspended) } : actual, r, ctx);
}

/** A compact view of actions for table assertions. */
function brief(actions: Action[]): string[] {
  return actions.map((a) => {
    switch (a.kind) {
      case 'ban':
      case 'unban':
      case 'invite':
      case 'invite_subscriber':
      case 'kick':
        return `${a.kind} ${a.userId}`;
      case 'set_power_levels':
        return `set_power_levels ${a.changes.map((c) => `${c.userId}:${c.from}→${c.to}`).join(' ')}`;
      case 'suspend':
      case 'unsuspend':
      case 'end_sessions':
        return `${a.kind} ${a.userId}`;
      case 'publish_policy':
      case 'retract_policy':
        return `${a.kind} ${a.stateKey}`;
      case 'forget':
        return `forget ${a.record.type} ${'userId' in a.record ? a.record.userId : a.record.stateKey}`;
      case 'report':
        return `report ${a.problem}${a.wanted ? `/${a.wanted}` : ''} ${a.userIds.join(',')}`.trimEnd();
    }
  });
}

// ---------------------------------------------------------------------------------------------

describe('reconcile: bans', () => {
  const banRecord = (userId = ALICE, c = BLOCK) => ({ roomId: ROOM, userId, cause: c });
  const cases: { name: string; desired: DesiredFields; room: SnapshotFields; records?: Partial<OwnershipRecords>; want: string[] }[] = [
    { name: 'bans a blocked user', desired: { bans: { [ALICE]: BLOCK } }, room: { members: { [ALICE]: 'join' } }, want: [`ban ${ALICE}`] },
    { name: 'bans a blocked user who never joined', desired: { bans: { [ALICE]: BLOCK } }, room: {}, want: [`ban ${ALICE}`] },
    { name: 'does nothing when our ban is in place', desired: { bans: { [ALICE]: BLOCK } }, room: { bans: { [ALICE]: { sender: BOT, reason: REASON } } }, records: { bans: [banRecord()] }, want: [] },
    { name: 'does nothing when a person already banned them', desired: { bans: { [ALICE]: BLOCK } }, room: { bans: { [ALICE]: { sender: MOD, reason: 'spam' } } }, want: [] },
    {
      name: 'refreshes the reason of its own ban when the governing block changed',
      desired: { bans: { [ALICE]: cause({ blockId: 2, expiry: null }) } },
      room: { bans: { [ALICE]: { sender: BOT, reason: REASON } } },
      records: { bans: [banRecord()] },
      want: [`ban ${ALICE}`],
    },
    { name: 'records its own ban that a killed pass placed without a record (same reason)', desired: { bans: { [ALICE]: BLOCK } }, room: { bans: { [ALICE]: { sender: BOT, reason: REASON } } }, want: [`ban ${ALICE}`] },
    { name: 'does not rewrite a ban it has no record of', desired: { bans: { [ALICE]: cause({ blockId: 2 }) } }, room: { bans: { [ALICE]: { sender: BOT, reason: REASON } } }, want: [] },
    { name: 're-bans when a person lifted the ban while the block lasts', desired: { bans: { [ALICE]: BLOCK } }, room: { members: { [ALICE]: 'leave' } }, records: { bans: [banRecord()] }, want: [`ban ${ALICE}`] },
    { name: 'lifts its own ban when the block ended', desired: {}, room: { bans: { [ALICE]: { sender: BOT, reason: REASON } } }, records: { bans: [banRecord()] }, want: [`unban ${ALICE}`] },
    { name: 'never lifts a ban without a record, even one the bot sent', desired: {}, room: { bans: { [ALICE]: { sender: BOT, reason: REASON } } }, want: [] },
    { name: 'never lifts a ban a person placed', desired: {}, room: { bans: { [ALICE]: { sender: MOD, reason: 'spam' } } }, want: [] },
    {
      name: 'reports and forgets when a person replaced its ban',
      desired: {},
      room: { bans: { [ALICE]: { sender: MOD, reason: 'spam' } } },
      records: { bans: [banRecord()] },
      want: [`forget ban ${ALICE}`, `report hand_set_ban ${ALICE}`],
    },
    { name: 'forgets a ban already lifted by someone', desired: {}, room: { members: { [ALICE]: 'join' } }, records: { bans: [banRecord()] }, want: [`forget ban ${ALICE}`] },
    { name: 'a membership "ban" without sender is not ours', desired: {}, room: { members: { [ALICE]: 'ban' } }, records: { bans: [banRecord()] }, want: [`forget ban ${ALICE}`, `report hand_set_ban ${ALICE}`] },
    { name: 'does not unban users who are not banned', desired: {}, room: { members: { [BOB]: 'join' } }, want: [] },
    { name: 'reports when the bot lacks the power to ban', desired: { bans: { [ALICE]: BLOCK } }, room: { users: { [BOT]: 40 } }, want: [`report lacks_power/ban ${ALICE}`, 'report lacks_power/unban', 'report lacks_power/set_power_levels'] },
    { name: 'a full pass reports missing power before anything needs it', desired: {}, room: { users: { [BOT]: 40 } }, want: ['report lacks_power/ban', 'report lacks_power/unban', 'report lacks_power/set_power_levels'] },
    { name: 'a partial pass reports only what it could not do', desired: { scope: [ALICE] }, room: { users: { [BOT]: 40 } }, want: [] },
    { name: 'reports when the target is as powerful as the bot', desired: { bans: { [ALICE]: BLOCK } }, room: { users: { [ALICE]: 100 } }, want: [`report lacks_power/ban ${ALICE}`] },
    { name: 'reports when the target is a room creator', desired: { bans: { [ALICE]: BLOCK } }, room: { creators: [ALICE] }, want: [`report lacks_power/ban ${ALICE}`] },
    {
      name: 'reports when the bot lacks the power to unban',
      desired: {},
      room: { bans: { [ALICE]: { sender: BOT, reason: REASON } }, powerLevels: { ban: 100 }, users: { [BOT]: 60 } },
      records: { bans: [banRecord()] },
      want: ['report lacks_power/ban', `report lacks_power/unban ${ALICE}`],
    },
    { name: 'a bot that is a v12 creator may ban anyone else', desired: { bans: { [ALICE]: BLOCK } }, room: { users: { [BOT]: 0, [ALICE]: 100 }, creators: [BOT] }, want: [`ban ${ALICE}`] },
    { name: 'never bans itself', desired: { bans: { [BOT]: BLOCK } }, room: {}, want: [] },
    { name: 'ignores records of other users outside a partial pass', desired: { scope: [BOB] }, room: { bans: { [ALICE]: { sender: BOT, reason: REASON } } }, records: { bans: [banRecord()] }, want: [] },
    { name: 'does undo records of users inside a partial pass', desired: { scope: [ALICE] }, room: { bans: { [ALICE]: { sender: BOT, reason: REASON } } }, records: { bans: [banRecord()] }, want: [`unban ${ALICE}`] },
  ];
  for (const c of cases) {
    it(c.name, () => assert.deepEqual(brief(plan(desired(c.desired), snapshot(c.room), records(c.records ?? {}))), c.want));
  }

  it('carries the reason and the wiki cause', () => {
    const [ban] = plan(desired({ bans: { [ALICE]: BLOCK } }), snapshot());
    assert.deepEqual(ban, { kind: 'ban', roomId: ROOM, userId: ALICE, reason: REASON, cause: BLOCK });
    const [unban] = plan(desired(), snapshot({ bans: { [ALICE]: { sender: BOT, reason: REASON } } }), records({ bans: [banRecord()] }));
    assert.deepEqual(unban, { kind: 'unban', roomId: ROOM, userId: ALICE, reason: 'Block #1 on wiki.example is no longer in force', cause: BLOCK });
  });

  it('follows a block through its expiry with an injected clock', () => {
    const config = moderationConfigSchema.parse({ rooms: [{ room_id: ROOM }] });
    const alice: WikiUserState = {
      account: { wiki: 'wiki.example', centralId: '1', username: 'Alice', localpart: 'alice' },
      blocks: [
        { id: 5, user: 'Alice', userId: 1, by: 'Admin', timestamp: hours(-1), expiry: hours(2), reason: 'Edit warring', sitewide: true, restrictions: { pages: [], namespaces: [], actions: [] }, anonOnly: false, noCreate: false, autoblock: false, noEmail: false, allowUserTalk: true, hidden: false },
      ],
      globalBlocks: [],
      lock: null,
      groups: [],
      globalGroups: [],
    };
    let room = snapshot({ members: { [ALICE]: 'join' } });
    let recs = NONE;
    const pass = (now: Date) => {
      const d = policy({ wiki: 'wiki.example', users: [alice], complete: true }, config, { now, serverName: SERVER });
      const actions = reconcile(d, actualOf(room), recs, { now });
      room = applyActions(actualOf(room), actions).rooms.get(ROOM)!;
      recs = recordsAfter(recs, actions);
      return actions;
    };
    assert.deepEqual(brief(pass(hours(0))), [`ban ${ALICE}`]);
    assert.deepEqual(brief(pass(hours(1))), []);
    const lifted = pass(hours(3));
    assert.deepEqual(brief(lifted), [`unban ${ALICE}`]);
    assert.equal((lifted[0] as { reason: string }).reason, 'Block #5 on wiki.example expired');
    assert.deepEqual(brief(pass(hours(4))), []);
    assert.deepEqual(recs, NONE);
  });
});

describe('reconcile: power levels', () => {
  const level = (userId: string, value: number) => ({ roomId: ROOM, userId, level: value, cause: SYSOP });
  const cases: { name: string; desired: DesiredFields; room: SnapshotFields; records?: Partial<OwnershipRecords>; want: string[] }[] = [
    { name: 'grants a group level', desired: { levels: { [ALICE]: [50, SYSOP] } }, room: {}, want: [`set_power_levels ${ALICE}:null→50`] },
    { name: 'batches every change of a room into one write', desired: { levels: { [ALICE]: [50, SYSOP], [BOB]: [90, SYSOP] } }, room: {}, want: [`set_power_levels ${ALICE}:null→50 ${BOB}:null→90`] },
    { name: 'writes nothing when levels are as desired', desired: { levels: { [ALICE]: [50, SYSOP] } }, room: { users: { [ALICE]: 50 } }, records: { levels: [level(ALICE, 50)] }, want: [] },
    { name: 'writes nothing when users_default already gives the level', desired: { levels: { [ALICE]: [50, SYSOP] } }, room: { powerLevels: { users_default: 50 } }, want: [] },
    { name: 'raises a level it set', desired: { levels: { [ALICE]: [90, SYSOP] } }, room: { users: { [ALICE]: 50 } }, records: { levels: [level(ALICE, 50)] }, want: [`set_power_levels ${ALICE}:50→90`] },
    { name: 'removes a level it set when the group is gone', desired: {}, room: { users: { [ALICE]: 50 } }, records: { levels: [level(ALICE, 50)] }, want: [`set_power_levels ${ALICE}:50→null`] },
    { name: 'never removes a level it did not set', desired: {}, room: { users: { [ALICE]: 50 } }, want: [] },
    { name: 'leaves a hand-set level alone and reports it', desired: { levels: { [ALICE]: [50, SYSOP] } }, room: { users: { [ALICE]: 20 } }, want: [`report hand_set_level ${ALICE}`] },
    { name: 'does not report a hand-set level that matches', desired: { levels: { [ALICE]: [50, SYSOP] } }, room: { users: { [ALICE]: 50 } }, want: [] },
    {
      name: 'forgets and reports a level a person changed after the service set it',
      desired: {},
      room: { users: { [ALICE]: 75 } },
      records: { levels: [level(ALICE, 50)] },
      want: [`forget level ${ALICE}`, `report hand_set_level ${ALICE}`],
    },
    { name: 'restores a level a person removed while the group lasts', desired: { levels: { [ALICE]: [50, SYSOP] } }, room: {}, records: { levels: [level(ALICE, 50)] }, want: [`set_power_levels ${ALICE}:null→50`] },
    { name: 'forgets a level a person removed once the group is gone', desired: {}, room: {}, records: { levels: [level(ALICE, 50)] }, want: [`forget level ${ALICE}`] },
    { name: 'never touches creators', desired: { levels: { [ALICE]: [50, SYSOP] } }, room: { creators: [ALICE] }, records: { levels: [level(ALICE, 50)] }, want: [`forget level ${ALICE}`] },
    { name: 'never grants a level equal to its own', desired: { levels: { [ALICE]: [100, SYSOP] } }, room: {}, want: [`report lacks_power/set_power_levels ${ALICE}`] },
    {
      name: 'grants what it can and reports the rest',
      desired: { levels: { [ALICE]: [90, SYSOP], [BOB]: [50, SYSOP] } },
      room: { users: { [BOT]: 90 } },
      want: [`set_power_levels ${BOB}:null→50`, `report lacks_power/set_power_levels ${ALICE}`],
    },
    { name: 'a v12 creator bot may grant 100', desired: { levels: { [ALICE]: [100, SYSOP] } }, room: { creators: [BOT], users: {} }, want: [`set_power_levels ${ALICE}:null→100`] },
    { name: 'reports when it cannot send power levels at all', desired: { levels: { [ALICE]: [50, SYSOP] } }, room: { users: { [BOT]: 60 }, powerLevels: { events: { 'm.room.power_levels': 100 } } }, want: [`report lacks_power/set_power_levels ${ALICE}`] },
    { name: 'reads levels given as strings by old rooms', desired: { levels: { [ALICE]: [50, SYSOP] } }, room: { users: { [ALICE]: '50' } }, records: { levels: [level(ALICE, 50)] }, want: [] },
    { name: 'never changes its own level', desired: { levels: { [BOT]: [50, SYSOP] } }, room: {}, want: [] },
  ];
  for (const c of cases) {
    it(c.name, () => assert.deepEqual(brief(plan(desired(c.desired), snapshot(c.room), records(c.records ?? {}))), c.want));
  }

  it('writes the whole content, keeping what it does not change', () => {
    const room = snapshot({ users: { [MOD]: 90, [BOB]: 50 } });
    const [write] = plan(desired({ levels: { [ALICE]: [50, SYSOP] } }), room, records({ levels: [level(BOB, 50)] }));
    assert.equal(write?.kind, 'set_power_levels');
    assert.deepEqual(write.content, { ...room.powerLevels, users: { [BOT]: 100, [MOD]: 90, [ALICE]: 50 } });
    assert.deepEqual(write.changes, [
      { userId: ALICE, from: null, to: 50, cause: SYSOP },
      { userId: BOB, from: 50, to: null, cause: SYSOP },
    ]);
    assert.equal(room.powerLevels.users![ALICE], undefined, 'the snapshot is not modified');
  });
});

describe('reconcile: gated rooms', () => {
  const invite = (userId = ALICE) => ({ roomId: ROOM, userId, cause: SYSOP });
  const cases: { name: string; desired: DesiredFields; room: SnapshotFields; records?: Partial<OwnershipRecords>; want: string[] }[] = [
    { name: 'invites group members', desired: { members: { [ALICE]: SYSOP } }, room: {}, want: [`invite ${ALICE}`] },
    { name: 'lets a knocking member in', desired: { members: { [ALICE]: SYSOP } }, room: { members: { [ALICE]: 'knock' } }, want: [`invite ${ALICE}`] },
    { name: 'does not invite members already there', desired: { members: { [ALICE]: SYSOP, [BOB]: SYSOP } }, room: { members: { [ALICE]: 'join', [BOB]: 'invite' } }, want: [] },
    { name: 'does not invite someone banned', desired: { members: { [ALICE]: SYSOP } }, room: { bans: { [ALICE]: { sender: MOD } } }, want: [] },
    { name: 'does not invite again someone who left', desired: { members: { [ALICE]: SYSOP } }, room: { members: { [ALICE]: 'leave' } }, records: { invites: [invite()] }, want: [] },
    { name: 'removes those it invited when they leave the group', desired: {}, room: { members: { [ALICE]: 'join' } }, records: { invites: [invite()] }, want: [`kick ${ALICE}`] },
    { name: 'withdraws a pending invitation', desired: {}, room: { members: { [ALICE]: 'invite' } }, records: { invites: [invite()] }, want: [`kick ${ALICE}`] },
    { name: 'never removes people invited by hand', desired: {}, room: { members: { [ALICE]: 'join' } }, want: [] },
    { name: 'forgets the invitation of someone who already left', desired: {}, room: { members: { [ALICE]: 'leave' } }, records: { invites: [invite()] }, want: [`forget invite ${ALICE}`] },
    { name: 'reports when it cannot invite', desired: { members: { [ALICE]: SYSOP } }, room: { powerLevels: { invite: 100 }, users: { [BOT]: 50 } }, want: [`report lacks_power/invite ${ALICE}`] },
    { name: 'reports when it cannot remove', desired: {}, room: { members: { [ALICE]: 'join' }, users: { [ALICE]: 100 } }, records: { invites: [invite()] }, want: [`report lacks_power/kick ${ALICE}`] },
    {
      name: 'a member banned in this pass is not also removed',
      desired: { bans: { [ALICE]: BLOCK }, manage: ['bans', 'members'] },
      room: { members: { [ALICE]: 'join' } },
      records: { invites: [invite()] },
      want: [`ban ${ALICE}`, `forget invite ${ALICE}`],
    },
  ];
  for (const c of cases) {
    it(c.name, () => assert.deepEqual(brief(plan(desired({ manage: ['members'], ...c.desired }), snapshot(c.room), records(c.records ?? {}))), c.want));
  }
});

describe('reconcile: suspensions', () => {
  const LOCK = cause({ kind: 'global_lock', blockId: null, expiry: null });
  const suspension = (userId = ALICE) => ({ userId, cause: LOCK });
  const cases: { name: string; desired: DesiredFields; suspended?: string[]; records?: Partial<OwnershipRecords>; want: string[] }[] = [
    { name: 'suspends a locked account', desired: { suspensions: { [ALICE]: LOCK } }, want: [`suspend ${ALICE}`] },
    { name: 'does not suspend again (records as truth)', desired: { suspensions: { [ALICE]: LOCK } }, records: { suspensions: [suspension()] }, want: [] },
    { name: 'does not suspend again (homeserver as truth)', desired: { suspensions: { [ALICE]: LOCK } }, suspended: [ALICE], want: [] },
    { name: 'suspends again when someone lifted it while the lock lasts', desired: { suspensions: { [ALICE]: LOCK } }, suspended: [], records: { suspensions: [suspension()] }, want: [`suspend ${ALICE}`] },
    { name: 'lifts its own suspension', desired: {}, records: { suspensions: [suspension()] }, want: [`unsuspend ${ALICE}`] },
    { name: 'never lifts a suspension an admin made', desired: {}, suspended: [ALICE], want: [] },
    { name: 'forgets a suspension already lifted', desired: {}, suspended: [], records: { suspensions: [suspension()] }, want: [`forget suspension ${ALICE}`] },
  ];
  for (const c of cases) {
    it(c.name, () => assert.deepEqual(brief(plan(desired(c.desired), snapshot(), records(c.records ?? {}), c.suspended)), c.want));
  }
});

describe('reconcile: policy list', () => {
  const key = policyRuleStateKey(ALICE);
  const rule = { entity: ALICE, recommendation: 'm.ban', reason: REASON };
  const record = { roomId: POLICY, stateKey: key, entity: ALICE, cause: BLOCK };
  const policyRoom = (rules: Record<string, Record<string, unknown>> = {}, extra: SnapshotFields = {}) => snapshot({ roomId: POLICY, policyRules: rules, ...extra });
  const cases: { name: string; desired: DesiredFields; room: ReturnType<typeof policyRoom>; records?: Partial<OwnershipRecords>; want: string[] }[] = [
    { name: 'publishes a rule for a banned user', desired: { rules: { [ALICE]: BLOCK } }, room: policyRoom(), want: [`publish_policy ${key}`] },
    { name: 'does not publish an identical rule again', desired: { rules: { [ALICE]: BLOCK } }, room: policyRoom({ [key]: rule }), records: { policyRules: [record] }, want: [] },
    { name: 'republishes when the reason changed', desired: { rules: { [ALICE]: cause({ blockId: 9 }) } }, room: policyRoom({ [key]: rule }), records: { policyRules: [record] }, want: [`publish_policy ${key}`] },
    { name: 'publishes again over a withdrawn rule', desired: { rules: { [ALICE]: BLOCK } }, room: policyRoom({ [key]: {} }), want: [`publish_policy ${key}`] },
    { name: 'withdraws its rule when the ban ends', desired: { rules: {} }, room: policyRoom({ [key]: rule }), records: { policyRules: [record] }, want: [`retract_policy ${key}`] },
    { name: 'never withdraws a rule it did not publish', desired: { rules: {} }, room: policyRoom({ [key]: rule }), want: [] },
    { name: 'forgets a rule already withdrawn', desired: { rules: {} }, room: policyRoom({ [key]: {} }), records: { policyRules: [record] }, want: [`forget policy_rule ${key}`] },
    { name: 'reports when it cannot publish', desired: { rules: { [ALICE]: BLOCK } }, room: policyRoom({}, { users: { [BOT]: 50 }, powerLevels: { events: { 'm.policy.rule.user': 100 } } }), want: [`report lacks_power/publish_policy ${ALICE}`] },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const d = desired(c.desired);
      const actions = plan(d, [snapshot(), c.room], records(c.records ?? {}));
      assert.deepEqual(brief(actions), c.want);
    });
  }

  it('sends the MSC2313 content', () => {
    const [publish] = plan(desired({ rules: { [ALICE]: BLOCK } }), [snapshot(), policyRoom()]);
    assert.deepEqual(publish, { kind: 'publish_policy', roomId: POLICY, eventType: 'm.policy.rule.user', stateKey: key, content: rule, cause: BLOCK });
  });
});

describe('reconcile: rooms', () => {
  it('reports rooms it has no state for, and acts elsewhere', () => {
    const d = desired({ bans: { [ALICE]: BLOCK }, rules: { [ALICE]: BLOCK } });
    assert.deepEqual(brief(plan(d, [])), ['report room_unavailable', 'report room_unavailable']);
    assert.deepEqual(brief(plan(d, [snapshot()])), [`ban ${ALICE}`, 'report room_unavailable']);
  });

  it('emits nothing when everything is in place', () => {
    const d = desired({ bans: { [ALICE]: BLOCK }, levels: { [BOB]: [50, SYSOP] } });
    const room = snapshot({ bans: { [ALICE]: { sender: BOT, reason: REASON } }, users: { [BOB]: 50 } });
    assert.deepEqual(plan(d, room, records({ bans: [{ roomId: ROOM, userId: ALICE, cause: BLOCK }], levels: [{ roomId: ROOM, userId: BOB, level: 50, cause: SYSOP }] })), []);
  });

  it('looks only at the users of a partial pass, however many records there are', () => {
    const many = Array.from({ length: 5000 }, (_, i) => `@u${i}:${SERVER}`);
    const bans = Object.fromEntries(many.map((u) => [u, { sender: BOT, reason: REASON }]));
    const recs = records({ bans: many.map((userId) => ({ roomId: ROOM, userId, cause: BLOCK })) });
    const actions = plan(desired({ scope: [many[7]!, ALICE], bans: { [ALICE]: BLOCK } }), snapshot({ bans }), recs);
    assert.deepEqual(brief(actions), [`ban ${ALICE}`, `unban ${many[7]}`]);
  });
});

describe('recordsAfter', () => {
  it('records what was done and drops what was undone or forgotten', () => {
    const before = records({
      bans: [{ roomId: ROOM, userId: BOB, cause: BLOCK }],
      levels: [{ roomId: ROOM, userId: BOB, level: 50, cause: SYSOP }],
      invites: [{ roomId: ROOM, userId: BOB, cause: SYSOP }],
    });
    const after = recordsAfter(before, [
      { kind: 'ban', roomId: ROOM, userId: ALICE, reason: REASON, cause: BLOCK },
      { kind: 'unban', roomId: ROOM, userId: BOB, reason: 'x', cause: BLOCK },
      { kind: 'set_power_levels', roomId: ROOM, content: {}, changes: [{ userId: ALICE, from: null, to: 90, cause: SYSOP }, { userId: BOB, from: 50, to: null, cause: SYSOP }] },
      { kind: 'forget', record: { type: 'invite', roomId: ROOM, userId: BOB }, why: 'x' },
      { kind: 'suspend', userId: ALICE, cause: BLOCK },
      { kind: 'publish_policy', roomId: POLICY, eventType: 'm.policy.rule.user', stateKey: 'k', content: { entity: ALICE, recommendation: 'm.ban', reason: 'r' }, cause: BLOCK },
      { kind: 'report', problem: 'lacks_power', roomId: ROOM, userIds: [], message: 'x' },
    ]);
    assert.deepEqual(after, {
      bans: [{ roomId: ROOM, userId: ALICE, cause: BLOCK }],
      levels: [{ roomId: ROOM, userId: ALICE, level: 90, cause: SYSOP }],
      invites: [],
      policyRules: [{ roomId: POLICY, stateKey: 'k', entity: ALICE, cause: BLOCK }],
      suspensions: [{ userId: ALICE, cause: BLOCK }],
      sessionEnds: [],
    });
  });
});

// ---------------------------------------------------------------------------------------------
// A tiny homeserver: applies actions to snapshots, refusing what the Matrix authorization rules
// refuse and anything that would change nothing.

function levelIn(room: RoomSnapshot, userId: string): number {
  if (room.creators?.includes(userId)) return Infinity;
  const users = room.powerLevels.users ?? {};
  return Object.hasOwn(users, userId) ? Number(users[userId]) : Number(room.powerLevels.users_default ?? 0);
}

function needed(room: RoomSnapshot, what: 'ban' | 'kick' | 'invite' | string): number {
  const pl = room.powerLevels;
  if (what === 'ban' || what === 'kick') return Number(pl[what] ?? 50);
  if (what === 'invite') return Number(pl.invite ?? 0);
  return Number(pl.events?.[what] ?? pl.state_default ?? 50);
}

function applyActions(actual: ActualState, actions: readonly Action[]): ActualState {
  const rooms = new Map([...actual.rooms].map(([id, r]) => [id, { ...r, members: new Map(r.members), bans: new Map(r.bans), policyRules: r.policyRules && new Map(r.policyRules) }]));
  const suspended = actual.suspended && new Set(actual.suspended);
  for (const a of actions) {
    if (a.kind === 'report' || a.kind === 'forget' || a.kind === 'end_sessions') continue;
    if (a.kind === 'suspend' || a.kind === 'unsuspend') {
      if (!suspended) continue;
      assert.equal(suspended.has(a.userId), a.kind === 'unsuspend', `${a.kind} changes nothing`);
      if (a.kind === 'suspend') suspended.add(a.userId);
      else suspended.delete(a.userId);
      continue;
    }
    const room = rooms.get(a.roomId);
    assert.ok(room, `action in a room without state: ${a.roomId}`);
    const bot = levelIn(room, BOT);
    switch (a.kind) {
      case 'ban': {
        assert.ok(bot >= needed(room, 'ban') && levelIn(room, a.userId) < bot, `ban ${a.userId} not allowed`);
        const prior = room.bans.get(a.userId);
        assert.ok(!prior || (prior.sender === BOT && prior.reason !== a.reason), `ban of ${a.userId} changes nothing or overrides a person's ban`);
        room.members.set(a.userId, 'ban');
        room.bans.set(a.userId, { reason: a.reason, sender: BOT });
        break;
      }
      case 'unban':
        assert.ok(bot >= needed(room, 'ban'), 'unban not allowed');
        assert.equal(room.bans.get(a.userId)?.sender, BOT, `unban of ${a.userId}: not our ban`);
        room.members.set(a.userId, 'leave');
        room.bans.delete(a.userId);
        break;
      case 'set_power_levels': {
        assert.ok(bot >= needed(room, 'm.room.power_levels'), 'power levels write not allowed');
        assert.ok(a.changes.length > 0, 'a write without changes');
        const { users: before = {}, ...restBefore } = room.powerLevels;
        const { users: after = {}, ...restAfter } = a.content;
        assert.deepEqual(restAfter, restBefore, 'only users may change');
        const changed = new Set([...Object.keys(before), ...Object.keys(after)].filter((u) => before[u] !== after[u]));
        assert.deepEqual(changed, new Set(a.changes.map((c) => c.userId)), 'changes describe the write');
        for (const u of changed) {
          assert.ok(u !== BOT && !room.creators?.includes(u), `touches ${u}`);
          if (Object.hasOwn(before, u)) assert.ok(Number(before[u]) < bot, `changes ${u} at or above the bot's level`);
          if (Object.hasOwn(after, u)) assert.ok(after[u]! < bot, `grants ${u} a level not below the bot's`);
        }
        room.powerLevels = a.content;
        break;
      }
      case 'invite':
      case 'invite_subscriber': {
        assert.ok(bot >= needed(room, 'invite'), 'invite not allowed');
        const m = room.members.get(a.userId);
        assert.ok(m !== 'join' && m !== 'invite' && m !== 'ban', `invite of ${a.userId} (${m})`);
        room.members.set(a.userId, 'invite');
        break;
      }
      case 'kick': {
        assert.ok(bot >= needed(room, 'kick') && levelIn(room, a.userId) < bot, 'kick not allowed');
        const m = room.members.get(a.userId);
        assert.ok(m === 'join' || m === 'invite', `kick of ${a.userId} (${m})`);
        room.members.set(a.userId, 'leave');
        break;
      }
      case 'publish_policy':
      case 'retract_policy': {
        assert.ok(bot >= needed(room, a.eventType), `${a.kind} not allowed`);
        const rules = (room.policyRules ??= new Map());
        const current = rules.get(a.stateKey);
        if (a.kind === 'publish_policy') {
          assert.notDeepEqual(current, a.content, 'publishes the same rule');
          rules.set(a.stateKey, a.content as unknown as Record<string, unknown>);
        } else {
          assert.ok(current && Object.keys(current).length > 0, 'withdraws a rule that is not there');
          rules.set(a.stateKey, {});
        }
        break;
      }
    }
  }
  return { rooms, suspended };
}

// ---------------------------------------------------------------------------------------------
// The property

const NAMES = ['Alice', 'Bob', 'Carol', 'Dave', 'Erin'];
const mxidOf = (name: string) => `@${name.toLowerCase()}:${SERVER}`;
const USERS = NAMES.map(mxidOf);
const GATED = `!gated:${SERVER}`;
const SECOND = `!second:${SERVER}`;
const ROOMS = [ROOM, SECOND, GATED, POLICY];

const offset = fc.integer({ min: -6, max: 6 });
const blockArb = fc.record({ id: fc.integer({ min: 1, max: 4 }), sitewide: fc.boolean(), expiry: fc.option(offset), at: fc.integer({ min: -12, max: 0 }), hidden: fc.boolean(), reason: fc.constantFrom('spam', 'vandalism') });
const userArb = (name: string) =>
  fc.record({
    blocks: fc.array(blockArb, { maxLength: 2 }),
    globalBlocks: fc.array(fc.record({ id: fc.integer({ min: 1, max: 3 }), anonOnly: fc.boolean(), expiry: fc.option(offset) }), { maxLength: 1 }),
    locked: fc.boolean(),
    groups: fc.subarray(['sysop', 'bureaucrat', 'rollbacker']),
    globalGroups: fc.subarray(['steward']),
  }).map((u): WikiUserState => ({
    account: { wiki: 'wiki.example', centralId: String(NAMES.indexOf(name) + 1), username: name, localpart: name.toLowerCase() },
    blocks: u.blocks.map((b) => ({
      id: b.id, user: name, userId: 1, by: 'Admin', timestamp: hours(b.at), expiry: b.expiry === null ? null : hours(b.expiry), reason: b.reason, sitewide: b.sitewide,
      restrictions: { pages: [], namespaces: [], actions: [] }, anonOnly: false, noCreate: false, autoblock: false, noEmail: false, allowUserTalk: true, hidden: b.hidden,
    })),
    globalBlocks: u.globalBlocks.map((g) => ({ id: g.id, target: name, anonOnly: g.anonOnly, by: 'Steward', byWiki: 'metawiki', timestamp: hours(-1), expiry: g.expiry === null ? null : hours(g.expiry), reason: 'cross-wiki' })),
    lock: u.locked ? { logId: 3, by: 'Steward', reason: 'LTA', timestamp: hours(-2), hidden: false } : null,
    groups: u.groups,
    globalGroups: u.globalGroups,
  }));

const configArb = fc
  .record({
    partial: fc.constantFrom('ignore', 'ban'),
    suspendLock: fc.boolean(),
    suspendBlock: fc.boolean(),
    bans: fc.tuple(fc.constantFrom('all', 'global', 'none'), fc.constantFrom('all', 'global', 'none')),
    levels: fc.tuple(fc.boolean(), fc.boolean()),
    override: fc.boolean(),
    gateSecond: fc.boolean(),
    policyList: fc.option(fc.constantFrom('all', 'global')),
    steward: fc.constantFrom(90, 100),
  })
  .map((c): ModerationConfigInput => ({
    partial_blocks: c.partial as 'ignore' | 'ban',
    suspend: { global_lock: c.suspendLock, global_block: c.suspendBlock },
    group_levels: { local: { sysop: 50, bureaucrat: 90 }, global: { steward: c.steward } },
    rooms: [
      { room_id: ROOM, bans: c.bans[0] as 'all', power_levels: c.levels[0] },
      { room_id: SECOND, bans: c.bans[1] as 'all', power_levels: c.levels[1], ...(c.override ? { group_levels: { local: { sysop: 40 }, global: {} } } : {}) },
    ],
    gated_rooms: [{ room_id: c.gateSecond ? SECOND : GATED, groups: ['sysop'], global_groups: ['steward'] }],
    // MOD as a subscriber meets every membership the rooms are drawn with, a ban included.
    ...(c.policyList ? { policy_list: { room_id: POLICY, bans: c.policyList as 'all', subscribers: [MOD, `@ircbridge:${SERVER}`] } } : {}),
  }));

const wikiArb = fc.record({ users: fc.tuple(...NAMES.map(userArb)), included: fc.subarray(NAMES, { minLength: 1 }), complete: fc.boolean() });

const someone = fc.constantFrom(...USERS, MOD);
const levelValue = fc.constantFrom<number | string>(0, 40, 50, 90, 100, '50');
const roomArb = (roomId: string) =>
  fc
    .record({
      members: fc.dictionary(someone, fc.constantFrom<Membership>('join', 'invite', 'leave', 'knock', 'ban'), { maxKeys: 6 }),
      bans: fc.dictionary(someone, fc.record({ sender: fc.constantFrom(BOT, MOD), reason: fc.constantFrom('old reason', 'spam') }), { maxKeys: 3 }),
      users: fc.dictionary(someone, levelValue, { maxKeys: 4 }),
      bot: fc.constantFrom<number | 'creator'>(100, 100, 90, 50, 'creator'),
      creator: fc.option(fc.constantFrom(...USERS)),
      ban: fc.constantFrom(50, 50, 100),
      kick: fc.constantFrom(50, 50, 100),
      invite: fc.constantFrom(0, 0, 50, 100),
      stateDefault: fc.constantFrom(50, 50, 100),
      usersDefault: fc.constantFrom(0, 0, 50),
      rules: fc.dictionary(fc.constantFrom(...USERS), fc.constantFrom<Record<string, unknown>>({}, { entity: 'x', recommendation: 'm.ban', reason: 'old' }), { maxKeys: 3 }),
    })
    .map((r): RoomSnapshot => {
      const members = new Map(Object.entries(r.members));
      for (const u of Object.keys(r.bans)) members.set(u, 'ban');
      const creators = [...(r.bot === 'creator' ? [BOT] : []), ...(r.creator ? [r.creator] : [])];
      return {
        roomId,
        members,
        bans: new Map(Object.entries(r.bans)),
        powerLevels: {
          users: { ...(r.users as Record<string, number>), ...(r.bot === 'creator' ? {} : { [BOT]: r.bot }) },
          users_default: r.usersDefault,
          ban: r.ban,
          kick: r.kick,
          invite: r.invite,
          state_default: r.stateDefault,
          events: {},
        },
        creators: creators.length ? creators : undefined,
        botUserId: BOT,
        policyRules: roomId === POLICY ? new Map(Object.entries(r.rules).map(([u, c]) => [policyRuleStateKey(u), Object.keys(c).length ? { ...c, entity: u } : c])) : undefined,
      };
    });

const RECORD_CAUSE = cause();
const pairArb = fc.subarray(ROOMS.slice(0, 3).flatMap((roomId) => USERS.map((userId) => ({ roomId, userId }))), { maxLength: 8 });
const recordsArb = fc
  .record({
    bans: pairArb,
    levels: fc.array(fc.record({ pair: fc.constantFrom(...ROOMS.slice(0, 2).flatMap((roomId) => USERS.map((userId) => ({ roomId, userId })))), level: fc.constantFrom(40, 50, 90, 100) }), { maxLength: 5 }),
    invites: pairArb,
    rules: fc.subarray(USERS),
    suspensions: fc.subarray(USERS),
  })
  .map((r): OwnershipRecords => ({
    bans: r.bans.map((p) => ({ ...p, cause: RECORD_CAUSE })),
    // One record per room and user, as the store keeps them.
    levels: [...new Map(r.levels.map((l) => [`${l.pair.roomId} ${l.pair.userId}`, { ...l.pair, level: l.level, cause: SYSOP }])).values()],
    invites: r.invites.map((p) => ({ ...p, cause: SYSOP })),
    policyRules: r.rules.map((u) => ({ roomId: POLICY, stateKey: policyRuleStateKey(u), entity: u, cause: RECORD_CAUSE })),
    suspensions: r.suspensions.map((userId) => ({ userId, cause: RECORD_CAUSE })),
    sessionEnds: [],
  }));

const actualArb = fc.record({
  rooms: fc.tuple(...ROOMS.map(roomArb)),
  missing: fc.option(fc.constantFrom(...ROOMS), { freq: 4 }),
  suspended: fc.option(fc.subarray(USERS)),
});

describe('reconcile: properties', () => {
  it('acts legally, never on no-ops, and has nothing left to do after its actions are applied', () => {
    fc.assert(
      fc.property(wikiArb, configArb, actualArb, recordsArb, (wiki, configInput, actualIn, recs) => {
        const config = moderationConfigSchema.parse(configInput);
        const users = wiki.complete ? wiki.users : wiki.users.filter((u) => wiki.included.includes(u.account.username));
        const d = policy({ wiki: 'wiki.example', users, complete: wiki.complete }, config, { now: NOW, serverName: SERVER });
        const actual: ActualState = {
          rooms: new Map(actualIn.rooms.filter((r) => r.roomId !== actualIn.missing).map((r) => [r.roomId, r])),
          suspended: actualIn.suspended ? new Set(actualIn.suspended) : undefined,
        };

        const first = reconcile(d, actual, recs, ctx);
        const inScope = (u: string) => d.scope === 'all' || d.scope.has(u);
        for (const a of first) {
          if ('userId' in a) assert.ok(inScope(a.userId), `${a.kind} of ${a.userId} outside the pass`);
          if (a.kind === 'unban') assert.ok(recs.bans.some((r) => r.roomId === a.roomId && r.userId === a.userId), 'unban without a record');
          if (a.kind === 'unsuspend') assert.ok(recs.suspensions.some((r) => r.userId === a.userId), 'unsuspend without a record');
          if (a.kind === 'kick') assert.ok(recs.invites.some((r) => r.roomId === a.roomId && r.userId === a.userId), 'kick without a record');
          if (a.kind === 'retract_policy') assert.ok(recs.policyRules.some((r) => r.stateKey === a.stateKey), 'retraction without a record');
          if (a.kind === 'set_power_levels') {
            for (const c of a.changes) {
              if (c.from !== null) assert.ok(recs.levels.some((r) => r.roomId === a.roomId && r.userId === c.userId && r.level === c.from), `changes a level it did not set: ${c.userId}`);
            }
          }
        }
        const writes = first.filter((a) => a.kind === 'set_power_levels').map((a) => a.roomId);
        assert.equal(new Set(writes).size, writes.length, 'one power levels write per room');

        const applied = applyActions(actual, first);
        const second = reconcile(d, applied, recordsAfter(recs, first), ctx);
        assert.deepEqual(brief(second.filter((a) => a.kind !== 'report')), []);
        assert.ok(second.every((a) => !isMatrixChange(a)));
      }),
      { numRuns: 400, seed: 20300601, interruptAfterTimeLimit: 20_000 },
    );
  });
});
