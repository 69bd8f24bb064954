// Ownership records and the moderation audit log on every storage backend: records survive a
// round trip (causes with dates, levels, policy rules, suspensions), targeted loads, deltas from
// actions written in one transaction with their audit entries, and audit paging newest first.
import assert from 'node:assert/strict';
import { afterAll, beforeAll, describe, test } from '@jest/globals';
import { ModerationAuditLog, ModerationRecordStore, emptyRecords, recordChanges, type AuditEntry } from '../../src/moderation/records.ts';
import { recordsAfter } from '../../src/moderation/reconcile.ts';
import type { Action, OwnershipRecords, WikiCause } from '../../src/moderation/types.ts';
import { backends, type TestDatabase } from '../support/backends.ts';

const NOW = new Date('2030-06-01T12:00:00Z');
const ROOM = '!main:example.org';
const OTHER = '!other:example.org';
const POLICY = '!policy:example.org';
const ALICE = '@alice:example.org';
const BOB = '@bob:example.org';

function cause(fields: Partial<WikiCause> = {}): WikiCause {
  return {
    kind: 'block', wiki: 'wiki.example', blockId: 7, logId: 99, by: 'Admin', reason: 'Vandalism ✓ «quoted»',
    timestamp: new Date('2030-06-01T11:00:00Z'), expiry: new Date('2030-06-02T12:00:00Z'), group: null, hidden: false, ...fields,
  };
}
const SYSOP = cause({ kind: 'group', blockId: null, logId: null, by: null, reason: '', timestamp: null, expiry: null, group: 'sysop' });

const sample: OwnershipRecords = {
  bans: [{ roomId: ROOM, userId: ALICE, cause: cause() }, { roomId: OTHER, userId: ALICE, cause: cause() }],
  levels: [{ roomId: ROOM, userId: BOB, level: 50, cause: SYSOP }],
  invites: [{ roomId: OTHER, userId: BOB, cause: SYSOP }],
  policyRules: [{ roomId: POLICY, stateKey: `rule:${ALICE}`, entity: ALICE, cause: cause() }],
  suspensions: [{ userId: ALICE, cause: cause({ kind: 'global_lock', blockId: null, expiry: null }) }],
  sessionEnds: [{ userId: ALICE, cause: cause({ kind: 'global_lock', blockId: null, expiry: null }) }],
};

const sorted = (r: OwnershipRecords): OwnershipRecords => {
  const by = <T>(key: (x: T) => string) => (a: T, b: T) => key(a).localeCompare(key(b));
  return {
    bans: [...r.bans].sort(by((x) => x.roomId + x.userId)),
    levels: [...r.levels].sort(by((x) => x.roomId + x.userId)),
    invites: [...r.invites].sort(by((x) => x.roomId + x.userId)),
    policyRules: [...r.policyRules].sort(by((x) => x.roomId + x.stateKey)),
    suspensions: [...r.suspensions].sort(by((x) => x.userId)),
    sessionEnds: [...r.sessionEnds].sort(by((x) => x.userId)),
  };
};

function entry(fields: Partial<AuditEntry> = {}): AuditEntry {
  return { at: NOW, passId: 'p1', dryRun: false, kind: 'ban', roomId: ROOM, userId: ALICE, cause: cause(), outcome: 'applied', error: null, detail: { reason: 'r' }, ...fields };
}

test('recordChanges: only what differs is written', () => {
  assert.deepEqual(recordChanges(sample, sample), { upserts: [], deletes: [] });
  const after = recordsAfter(sample, [
    { kind: 'unban', roomId: ROOM, userId: ALICE, reason: 'expired', cause: cause() },
    { kind: 'set_power_levels', roomId: ROOM, content: {}, changes: [{ userId: BOB, from: 50, to: 90, cause: SYSOP }] },
  ]);
  const changes = recordChanges(sample, after);
  assert.deepEqual(changes.deletes, [{ kind: 'ban', roomId: ROOM, key: ALICE }]);
  assert.deepEqual(changes.upserts.map((u) => [u.kind, u.key, u.level]), [['level', BOB, 90]]);
});

for (const backend of backends()) {
  describe(`moderation records on ${backend.name}`, () => {
    let db: TestDatabase;
    let store: ModerationRecordStore;
    let audit: ModerationAuditLog;

    beforeAll(async () => {
      db = await backend.open();
      store = new ModerationRecordStore(db, { clock: () => NOW });
      audit = new ModerationAuditLog(db);
    });
    afterAll(() => db.dispose());

    test('empty at first; every kind of record round-trips', async () => {
      assert.deepEqual(await store.load(), emptyRecords());
      const actions: Action[] = [
        ...sample.bans.map((b) => ({ kind: 'ban' as const, roomId: b.roomId, userId: b.userId, reason: 'r', cause: b.cause })),
        { kind: 'set_power_levels', roomId: ROOM, content: {}, changes: [{ userId: BOB, from: null, to: 50, cause: SYSOP }] },
        { kind: 'invite', roomId: OTHER, userId: BOB, cause: SYSOP },
        { kind: 'publish_policy', roomId: POLICY, eventType: 'm.policy.rule.user', stateKey: `rule:${ALICE}`, content: { entity: ALICE, recommendation: 'm.ban', reason: 'r' }, cause: cause() },
        { kind: 'suspend', userId: ALICE, cause: sample.suspensions[0]!.cause },
        { kind: 'end_sessions', userId: ALICE, centralId: '1', cause: sample.sessionEnds[0]!.cause },
      ];
      const after = await store.apply(emptyRecords(), actions);
      assert.deepEqual(sorted(after), sorted(sample));
      assert.deepEqual(sorted(await store.load()), sorted(sample));
    });

    test('targeted loads by user and by room', async () => {
      const bob = await store.load({ userIds: [BOB] });
      assert.deepEqual(bob.bans, []);
      assert.equal(bob.levels.length, 1);
      assert.equal(bob.invites.length, 1);
      const alice = await store.load({ userIds: [ALICE] });
      assert.equal(alice.bans.length, 2);
      assert.equal(alice.policyRules.length, 1, 'a policy rule is found by its entity');
      assert.equal(alice.suspensions.length, 1);
      const room = await store.load({ roomIds: [ROOM] });
      assert.deepEqual([room.bans.length, room.levels.length, room.invites.length, room.suspensions.length], [1, 1, 0, 0]);
      assert.deepEqual(await store.load({ userIds: [] }), emptyRecords());
      assert.equal((await store.load({ userIds: [ALICE], roomIds: [OTHER] })).bans.length, 1);
    });

    test('nextExpiry: the earliest recorded expiry after a time, and whose records it ends', async () => {
      const expiry = cause().expiry!;
      assert.deepEqual(await store.nextExpiry(NOW), { at: expiry, userIds: [ALICE] });
      assert.equal(await store.nextExpiry(expiry), undefined, 'strictly after; causes without expiry never end');
    });

    test('apply writes deltas and audit entries together; a failure writes neither', async () => {
      const current = await store.load();
      const unban: Action = { kind: 'unban', roomId: OTHER, userId: ALICE, reason: 'lifted', cause: cause() };
      const forget: Action = { kind: 'forget', record: { type: 'level', roomId: ROOM, userId: BOB }, why: 'changed by hand' };
      const bad = entry({ outcome: 'nonsense' as never });
      await assert.rejects(store.apply(current, [unban], [entry({ kind: 'unban', roomId: OTHER }), bad]));
      assert.deepEqual(sorted(await store.load()), sorted(current), 'rolled back');
      assert.equal((await audit.list()).entries.length, 0);

      const after = await store.apply(current, [unban, forget], [entry({ kind: 'unban', roomId: OTHER })]);
      assert.deepEqual(sorted(await store.load()), sorted(after));
      assert.deepEqual((await store.load()).bans.map((b) => b.roomId), [ROOM]);
      assert.deepEqual((await store.load()).levels, []);
      assert.equal((await audit.list()).entries.length, 1);
    });

    test('audit: newest first, filters, paging, causes with dates', async () => {
      await audit.append([
        entry({ passId: 'p2', kind: 'ban', roomId: ROOM, userId: BOB }),
        entry({ passId: 'p2', kind: 'set_power_levels', roomId: OTHER, userId: BOB, outcome: 'lacks_power', error: 'M_FORBIDDEN', detail: { from: null, to: 50 } }),
        entry({ passId: 'p2', kind: 'report', roomId: null, userId: null, cause: null, outcome: 'reported', detail: { message: 'hello' } }),
        entry({ passId: 'p3', kind: 'ban', roomId: ROOM, userId: ALICE, dryRun: true, outcome: 'dry_run' }),
      ]);
      const all = (await audit.list()).entries;
      assert.equal(all.length, 5);
      assert.deepEqual(all.map((e) => e.passId), ['p3', 'p2', 'p2', 'p2', 'p1']);
      assert.ok(all.every((e, i) => i === 0 || BigInt(all[i - 1]!.id) > BigInt(e.id)));
      assert.deepEqual(all[0]!.cause, cause());
      assert.equal(all[0]!.at.getTime(), NOW.getTime());
      assert.equal(all[0]!.dryRun, true);
      assert.equal(all[1]!.cause, null);
      assert.deepEqual(all[2]!.detail, { from: null, to: 50 });

      assert.deepEqual((await audit.list({ userId: BOB })).entries.map((e) => e.kind), ['set_power_levels', 'ban']);
      assert.equal((await audit.list({ roomId: OTHER })).entries.length, 2);
      assert.equal((await audit.list({ kind: 'ban' })).entries.length, 2);
      assert.equal((await audit.list({ outcome: 'lacks_power' })).entries[0]!.error, 'M_FORBIDDEN');
      assert.equal((await audit.list({ passId: 'p2' })).entries.length, 3);

      const first = await audit.list({ limit: 2 });
      assert.equal(first.entries.length, 2);
      const second = await audit.list({ limit: 2, before: first.next! });
      const third = await audit.list({ limit: 2, before: second.next! });
      assert.equal(third.next, undefined);
      assert.deepEqual([...first.entries, ...second.entries, ...third.entries].map((e) => e.id), all.map((e) => e.id));
      await assert.rejects(audit.list({ limit: 0 }), RangeError);
      await assert.rejects(audit.list({ before: 'x; DROP TABLE' }), RangeError);
    });
  });
}
