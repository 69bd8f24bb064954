// policy(wiki state, config) → desired Matrix state, rule by rule, with an injected clock.
import assert from 'node:assert/strict';
import { describe, it } from '@jest/globals';
import { moderationConfigSchema, type ModerationConfigInput } from '../../src/moderation/config.ts';
import { banReason, policy, policyRuleStateKey, unbanReason } from '../../src/moderation/policy.ts';
import type { DesiredState, WikiCause, WikiUserState } from '../../src/moderation/types.ts';
import type { GlobalBlock, WikiBlock } from '../../src/wiki/action-api-results.ts';

const NOW = new Date('2030-06-01T12:00:00Z');
const WIKI = 'meta.wikimedia.org';
const SERVER = 'wikimedia.org';
const ROOM = '!main:wikimedia.org';
const GLOBAL_ROOM = '!global:wikimedia.org';
const hours = (n: number) => new Date(NOW.getTime() + n * 3600_000);

function block(fields: Partial<WikiBlock> = {}): WikiBlock {
  return {
    id: 1,
    user: 'Alice',
    userId: 11,
    by: 'Admin',
    timestamp: hours(-24),
    expiry: hours(24),
    reason: 'Vandalism',
    sitewide: true,
    restrictions: { pages: [], namespaces: [], actions: [] },
    anonOnly: false,
    noCreate: true,
    autoblock: true,
    noEmail: false,
    allowUserTalk: true,
    hidden: false,
    ...fields,
  };
}

function globalBlock(fields: Partial<GlobalBlock> = {}): GlobalBlock {
  return { id: 7, target: 'Alice', anonOnly: false, by: 'Steward', byWiki: 'metawiki', timestamp: hours(-2), expiry: hours(48), reason: 'Cross-wiki spam', ...fields };
}

function user(name: string, fields: Partial<WikiUserState> = {}): WikiUserState {
  return {
    account: { wiki: WIKI, centralId: String(name.length), username: name, localpart: name.toLowerCase() },
    blocks: [],
    globalBlocks: [],
    lock: null,
    groups: [],
    globalGroups: [],
    ...fields,
  };
}

const mxid = (name: string) => `@${name.toLowerCase()}:${SERVER}`;

function run(users: WikiUserState[], config: ModerationConfigInput = {}, options: { complete?: boolean; now?: Date } = {}): DesiredState {
  const parsed = moderationConfigSchema.parse({ rooms: [{ room_id: ROOM }, { room_id: GLOBAL_ROOM, bans: 'global' }], ...config });
  return policy({ wiki: WIKI, users, complete: options.complete ?? true }, parsed, { now: options.now ?? NOW, serverName: SERVER });
}

function room(desired: DesiredState, roomId = ROOM) {
  const found = desired.rooms.find((r) => r.roomId === roomId);
  assert.ok(found, `no desired state for ${roomId}`);
  return found;
}

const bannedIn = (desired: DesiredState, roomId = ROOM) => [...(room(desired, roomId).bans?.keys() ?? [])];
const banOf = (desired: DesiredState, name: string, roomId = ROOM) => room(desired, roomId).bans?.get(mxid(name));

describe('moderation config', () => {
  it('has cautious defaults', () => {
    const config = moderationConfigSchema.parse({});
    assert.equal(config.partial_blocks, 'ignore');
    assert.deepEqual(config.suspend, { global_lock: false, global_block: false, measure: 'suspend' });
    assert.deepEqual(config.group_levels, { local: { sysop: 50, bureaucrat: 90 }, global: { steward: 90 } });
    assert.deepEqual(config.rooms, []);
    assert.equal(config.policy_list, undefined);
    const managed = moderationConfigSchema.parse({ rooms: [{ room_id: ROOM }] }).rooms[0]!;
    assert.deepEqual(managed, { room_id: ROOM, bans: 'all', power_levels: true });
  });

  const invalid: [string, unknown, RegExp][] = [
    ['unknown keys', { partial_block: 'ban' }, /Unrecognized key/],
    ['aliases instead of room ids', { rooms: [{ room_id: '#chat:example.org' }] }, /room id/],
    ['gated rooms without groups', { gated_rooms: [{ room_id: ROOM }] }, /at least one group/],
    ['a room listed twice', { rooms: [{ room_id: ROOM }, { room_id: ROOM, bans: 'none' }] }, /listed twice/],
    ['levels that are not positive integers', { group_levels: { local: { sysop: 0 } } }, /too_small|>=1/],
    ['unknown ban modes', { rooms: [{ room_id: ROOM, bans: 'local' }] }, /expected one of/i],
  ];
  for (const [what, input, message] of invalid) {
    it(`rejects ${what}`, () => {
      const result = moderationConfigSchema.safeParse(input);
      assert.equal(result.success, false);
      assert.match(JSON.stringify(result.error!.issues), message);
    });
  }

  it('describes every field', () => {
    const json = JSON.stringify(moderationConfigSchema.toJSONSchema({ io: 'input' }));
    const undescribed: string[] = [];
    const walk = (node: unknown, path: string) => {
      if (!node || typeof node !== 'object') return;
      const n = node as { properties?: Record<string, { description?: string }> };
      for (const [key, child] of Object.entries(n.properties ?? {})) {
        if (!child.description) undescribed.push(`${path}.${key}`);
      }
      for (const [key, child] of Object.entries(node)) walk(child, `${path}.${key}`);
    };
    walk(JSON.parse(json), '');
    assert.deepEqual(undescribed, []);
  });
});

describe('policy: blocks', () => {
  const cases: { name: string; users: WikiUserState[]; config?: ModerationConfigInput; main: string[]; global: string[] }[] = [
    { name: 'a sitewide block bans in rooms that take local sanctions', users: [user('Alice', { blocks: [block()] })], main: ['Alice'], global: [] },
    { name: 'a partial block is ignored by default', users: [user('Alice', { blocks: [block({ sitewide: false })] })], main: [], global: [] },
    { name: 'a partial block bans when configured to', users: [user('Alice', { blocks: [block({ sitewide: false })] })], config: { partial_blocks: 'ban' }, main: ['Alice'], global: [] },
    { name: 'an expired block is ignored', users: [user('Alice', { blocks: [block({ expiry: hours(-1) })] })], main: [], global: [] },
    { name: 'a block expiring right now has ended', users: [user('Alice', { blocks: [block({ expiry: NOW })] })], main: [], global: [] },
    { name: 'an indefinite block bans', users: [user('Alice', { blocks: [block({ expiry: null })] })], main: ['Alice'], global: [] },
    { name: 'a global block bans everywhere', users: [user('Alice', { globalBlocks: [globalBlock()] })], main: ['Alice'], global: ['Alice'] },
    { name: 'an anon-only global block spares accounts', users: [user('Alice', { globalBlocks: [globalBlock({ anonOnly: true })] })], main: [], global: [] },
    { name: 'an expired global block is ignored', users: [user('Alice', { globalBlocks: [globalBlock({ expiry: hours(-1) })] })], main: [], global: [] },
    { name: 'global blocks can be ignored', users: [user('Alice', { globalBlocks: [globalBlock()] })], config: { global_blocks: false }, main: [], global: [] },
    { name: 'a global lock bans everywhere', users: [user('Alice', { lock: { logId: 5, by: 'Steward', reason: 'LTA', timestamp: hours(-1), hidden: false } })], main: ['Alice'], global: ['Alice'] },
    { name: 'global locks can be ignored', users: [user('Alice', { lock: { logId: 5, by: 'Steward', reason: 'LTA', timestamp: null, hidden: false } })], config: { global_locks: false }, main: [], global: [] },
    { name: 'unsanctioned users are not banned', users: [user('Bob', { groups: ['sysop'] })], main: [], global: [] },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const desired = run(c.users, c.config);
      assert.deepEqual(bannedIn(desired), c.main.map(mxid));
      assert.deepEqual(bannedIn(desired, GLOBAL_ROOM), c.global.map(mxid));
    });
  }

  it('puts wiki, block id, blocker, expiry and the block reason in the ban reason', () => {
    const ban = banOf(run([user('Alice', { blocks: [block({ id: 42, by: 'Admin', reason: 'Vandalism', expiry: new Date('2030-06-02T08:30:00Z') })] })]), 'Alice');
    assert.equal(ban?.reason, 'Blocked on meta.wikimedia.org (block #42 by Admin, until 2030-06-02 08:30 UTC): Vandalism');
    assert.equal(ban?.cause.kind, 'block');
    assert.equal(ban?.cause.blockId, 42);
    assert.equal(ban?.cause.wiki, WIKI);
  });

  it('words global blocks and locks', () => {
    const desired = run([
      user('Alice', { globalBlocks: [globalBlock({ id: 7, expiry: null })] }),
      user('Bob', { lock: { logId: 9, by: 'Steward', reason: 'Long-term abuse', timestamp: null, hidden: false } }),
      user('Carol', { lock: { logId: null, by: null, reason: '', timestamp: null, hidden: false } }),
    ]);
    assert.equal(banOf(desired, 'Alice')?.reason, 'Globally blocked on meta.wikimedia.org (global block #7 by Steward, indefinitely): Cross-wiki spam');
    assert.equal(banOf(desired, 'Bob')?.reason, 'Global account locked on meta.wikimedia.org (log #9 by Steward, indefinitely): Long-term abuse');
    assert.equal(banOf(desired, 'Carol')?.reason, 'Global account locked on meta.wikimedia.org (indefinitely)');
  });

  it('withholds who and why for suppressed blocks and hidden locks', () => {
    const desired = run([
      user('Alice', { blocks: [block({ hidden: true, by: 'Oversighter', reason: 'private details' })] }),
      user('Bob', { lock: { logId: 9, by: 'Steward', reason: 'private details', timestamp: null, hidden: true } }),
    ]);
    for (const name of ['Alice', 'Bob']) {
      const ban = banOf(desired, name)!;
      assert.doesNotMatch(ban.reason, /Oversighter|Steward|private/);
      assert.match(ban.reason, /details hidden/);
      assert.equal(ban.cause.by, null);
      assert.equal(ban.cause.reason, '');
    }
  });

  it('cuts very long wiki reasons', () => {
    const ban = banOf(run([user('Alice', { blocks: [block({ reason: '😀'.repeat(1000) })] })]), 'Alice')!;
    assert.ok(Array.from(ban.reason).length < 500);
    assert.ok(ban.reason.endsWith('…'));
    assert.doesNotMatch(ban.reason, /\uFFFD/);
    assert.equal(Array.from(ban.reason).filter((ch) => ch.length === 1 && /[\uD800-\uDFFF]/.test(ch)).length, 0);
  });
});

describe('policy: overlapping sanctions', () => {
  const cases: { name: string; state: Partial<WikiUserState>; want: Partial<WikiCause> }[] = [
    {
      name: 'the longest-lasting block governs',
      state: { blocks: [block({ id: 1, expiry: hours(10), timestamp: hours(-1) }), block({ id: 2, expiry: hours(100), timestamp: hours(-50) })] },
      want: { kind: 'block', blockId: 2 },
    },
    {
      name: 'an indefinite block outlasts any finite one',
      state: { blocks: [block({ id: 1, expiry: hours(10_000) }), block({ id: 2, expiry: null })] },
      want: { blockId: 2 },
    },
    {
      name: 'with equal expiry, the most recent governs',
      state: { blocks: [block({ id: 1, timestamp: hours(-1) }), block({ id: 2, timestamp: hours(-5) })] },
      want: { blockId: 1 },
    },
    {
      name: 'a global lock outlasts a finite block',
      state: { blocks: [block({ expiry: hours(1) })], lock: { logId: 3, by: 'S', reason: 'x', timestamp: hours(-100), hidden: false } },
      want: { kind: 'global_lock', logId: 3 },
    },
    {
      name: 'with equal expiry and time, the more severe governs',
      state: { blocks: [block({ id: 1, expiry: null, timestamp: hours(-1) })], globalBlocks: [globalBlock({ id: 1, expiry: null, timestamp: hours(-1) })] },
      want: { kind: 'global_block' },
    },
    {
      name: 'an expired block does not govern even if it was longer',
      state: { blocks: [block({ id: 1, expiry: hours(-1), timestamp: hours(-100) }), block({ id: 2, expiry: hours(2) })] },
      want: { blockId: 2 },
    },
    {
      name: 'an ignored partial block does not govern',
      state: { blocks: [block({ id: 1, sitewide: false, expiry: null }), block({ id: 2, expiry: hours(2) })] },
      want: { blockId: 2, kind: 'block' },
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const cause = banOf(run([user('Alice', c.state)]), 'Alice')?.cause;
      assert.ok(cause);
      for (const [key, value] of Object.entries(c.want)) assert.equal(cause[key as keyof WikiCause], value, key);
    });
  }

  it('bans while any block lasts, and not after the last one ends', () => {
    const alice = user('Alice', { blocks: [block({ id: 1, expiry: hours(1) }), block({ id: 2, expiry: hours(3) })] });
    assert.equal(banOf(run([alice], {}, { now: hours(0) }), 'Alice')?.cause.blockId, 2);
    assert.equal(banOf(run([alice], {}, { now: hours(2) }), 'Alice')?.cause.blockId, 2);
    assert.equal(banOf(run([alice], {}, { now: hours(3) }), 'Alice'), undefined);
  });

  it('in rooms taking only global sanctions, a global cause governs even when a local block lasts longer', () => {
    const desired = run([user('Alice', { blocks: [block({ expiry: null })], globalBlocks: [globalBlock({ id: 9 })] })]);
    assert.equal(banOf(desired, 'Alice')?.cause.kind, 'block');
    assert.equal(banOf(desired, 'Alice', GLOBAL_ROOM)?.cause.blockId, 9);
  });
});

describe('policy: suspension', () => {
  const lock = { logId: 5, by: 'Steward', reason: 'LTA', timestamp: null, hidden: false };
  const cases: { name: string; state: Partial<WikiUserState>; config: ModerationConfigInput; suspended: boolean }[] = [
    { name: 'off by default', state: { lock }, config: {}, suspended: false },
    { name: 'a lock suspends when configured', state: { lock }, config: { suspend: { global_lock: true } }, suspended: true },
    { name: 'a global block suspends when configured', state: { globalBlocks: [globalBlock()] }, config: { suspend: { global_block: true } }, suspended: true },
    { name: 'a global block does not suspend under global_lock only', state: { globalBlocks: [globalBlock()] }, config: { suspend: { global_lock: true } }, suspended: false },
    { name: 'a local block never suspends', state: { blocks: [block({ expiry: null })] }, config: { suspend: { global_lock: true, global_block: true } }, suspended: false },
    { name: 'an expired global block does not suspend', state: { globalBlocks: [globalBlock({ expiry: hours(-1) })] }, config: { suspend: { global_block: true } }, suspended: false },
  ];
  for (const c of cases) {
    it(c.name, () => {
      assert.equal(run([user('Alice', c.state)], c.config).suspensions.has(mxid('Alice')), c.suspended);
    });
  }
});

describe('policy: group power levels', () => {
  const cases: { name: string; state: Partial<WikiUserState>; level: number | undefined; group?: string }[] = [
    { name: 'sysop → 50', state: { groups: ['sysop'] }, level: 50, group: 'sysop' },
    { name: 'the highest group wins', state: { groups: ['sysop', 'bureaucrat'] }, level: 90, group: 'bureaucrat' },
    { name: 'global groups count', state: { globalGroups: ['steward'], groups: ['sysop'] }, level: 90, group: 'steward' },
    { name: 'unmapped groups give nothing', state: { groups: ['rollbacker', 'autopatrolled'] }, level: undefined },
    { name: 'a blocked sysop gets no level', state: { groups: ['sysop'], blocks: [block()] }, level: undefined },
    { name: 'a partially blocked sysop keeps the level while partial blocks are ignored', state: { groups: ['sysop'], blocks: [block({ sitewide: false })] }, level: 50 },
    { name: 'a locked steward gets no level', state: { globalGroups: ['steward'], lock: { logId: null, by: null, reason: '', timestamp: null, hidden: false } }, level: undefined },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const level = room(run([user('Alice', c.state)])).levels?.get(mxid('Alice'));
      assert.equal(level?.level, c.level);
      if (c.group) assert.equal(level?.cause.group, c.group);
    });
  }

  it('takes per-room level tables, and leaves rooms without mirrored levels alone', () => {
    const desired = run([user('Alice', { groups: ['sysop'] })], {
      rooms: [
        { room_id: ROOM },
        { room_id: GLOBAL_ROOM, group_levels: { local: { sysop: 75 }, global: {} } },
        { room_id: '!quiet:wikimedia.org', power_levels: false, bans: 'none' },
      ],
    });
    assert.equal(room(desired).levels?.get(mxid('Alice'))?.level, 50);
    assert.equal(room(desired, GLOBAL_ROOM).levels?.get(mxid('Alice'))?.level, 75);
    assert.equal(room(desired, '!quiet:wikimedia.org').levels, undefined);
    assert.equal(room(desired, '!quiet:wikimedia.org').bans, undefined);
  });
});

describe('policy: gated rooms', () => {
  const GATED = '!admins:wikimedia.org';
  const config: ModerationConfigInput = { gated_rooms: [{ room_id: GATED, groups: ['sysop'], global_groups: ['steward'] }, { room_id: ROOM, groups: ['bureaucrat'] }] };

  it('invites members of local or global groups, but not sanctioned ones', () => {
    const desired = run([
      user('Alice', { groups: ['sysop'] }),
      user('Bob', { globalGroups: ['steward'] }),
      user('Carol', { groups: ['rollbacker'] }),
      user('Dave', { groups: ['sysop'], blocks: [block()] }),
    ], config);
    const members = room(desired, GATED).members!;
    assert.deepEqual([...members.keys()], [mxid('Alice'), mxid('Bob')]);
    assert.equal(members.get(mxid('Alice'))?.group, 'sysop');
    assert.equal(members.get(mxid('Bob'))?.kind, 'global_group');
    assert.equal(room(desired, GATED).bans, undefined, 'a gated room not listed in rooms takes no bans');
  });

  it('a managed room can be gated too', () => {
    const desired = run([user('Alice', { groups: ['bureaucrat'] })], config);
    assert.deepEqual([...room(desired).members!.keys()], [mxid('Alice')]);
    assert.ok(room(desired).bans);
  });
});

describe('policy: policy list and scope', () => {
  const POLICY = '!policy:wikimedia.org';
  const users = [user('Alice', { blocks: [block()] }), user('Bob', { globalBlocks: [globalBlock()] }), user('Carol')];

  it('publishes a rule for every banned Matrix ID', () => {
    const rules = run(users, { policy_list: { room_id: POLICY } }).policyList!;
    assert.equal(rules.roomId, POLICY);
    assert.deepEqual([...rules.rules.keys()], [policyRuleStateKey(mxid('Alice')), policyRuleStateKey(mxid('Bob'))]);
    const alice = rules.rules.get(policyRuleStateKey(mxid('Alice')))!;
    assert.deepEqual(alice.content, { entity: mxid('Alice'), recommendation: 'm.ban', reason: banOf(run(users), 'Alice')!.reason });
  });

  it('can publish global sanctions only', () => {
    const rules = run(users, { policy_list: { room_id: POLICY, bans: 'global' } }).policyList!;
    assert.deepEqual([...rules.rules.values()].map((r) => r.entity), [mxid('Bob')]);
  });

  it('has no policy list unless configured', () => {
    assert.equal(run(users).policyList, undefined);
  });

  it('covers everyone on a full pass, and only the given users otherwise', () => {
    assert.equal(run(users).scope, 'all');
    assert.deepEqual(run(users, {}, { complete: false }).scope, new Set(users.map((u) => mxid(u.account.username))));
  });
});

describe('reasons', () => {
  const cause: WikiCause = { kind: 'block', wiki: WIKI, blockId: 3, logId: null, by: 'Admin', reason: '', timestamp: null, expiry: hours(1), group: null, hidden: false };

  const cases: [string, WikiCause, Date, string][] = [
    ['an expired block', cause, hours(2), 'Block #3 on meta.wikimedia.org expired'],
    ['a lifted block', cause, hours(0), 'Block #3 on meta.wikimedia.org is no longer in force'],
    ['a lifted lock', { ...cause, kind: 'global_lock', blockId: null, expiry: null }, hours(0), 'Global lock on meta.wikimedia.org is no longer in force'],
    ['a hidden block', { ...cause, hidden: true }, hours(2), 'A sanction on meta.wikimedia.org expired'],
  ];
  for (const [what, c, now, text] of cases) {
    it(`says why a ban is lifted: ${what}`, () => assert.equal(unbanReason(c, now), text));
  }

  it('says "indefinitely" for blocks without expiry and omits an empty reason', () => {
    assert.equal(banReason({ ...cause, expiry: null }), 'Blocked on meta.wikimedia.org (block #3 by Admin, indefinitely)');
  });
});
