import assert from 'node:assert/strict';
import { afterAll, beforeAll, beforeEach, describe, it } from '@jest/globals';
import fc from 'fast-check';
import {
  AccountNotFoundError,
  InvalidIdentityError,
  InvalidLocalpartError,
  LocalpartTakenError,
  PostgresAccountRepository,
  type LoginIdentity,
} from '../../src/identity/accounts.ts';
import { LocalpartPolicy } from '../../src/identity/localpart.ts';
import { backends, type TestDatabase } from '../support/backends.ts';

const WIKI = 'meta.wikimedia.org';
const START = new Date('2026-11-27T12:00:00Z');
const localparts = new LocalpartPolicy({ serverName: 'wikimedia.org', reservedNames: ['wikibot'], reservedPrefixes: ['irc_'] });

const login = (centralId: string, username: string, extra: Partial<LoginIdentity> = {}): LoginIdentity => ({ wiki: WIKI, centralId, username, ...extra });

for (const backend of backends()) {
  describe(`accounts on ${backend.name}`, () => {
    let db: TestDatabase;
    let now: Date;
    let repo: PostgresAccountRepository;
    const later = (seconds: number) => (now = new Date(now.getTime() + seconds * 1000));

    beforeAll(async () => {
      db = await backend.open();
    });
    afterAll(() => db.dispose());
    beforeEach(async () => {
      await db.query('DELETE FROM accounts');
      now = START;
      repo = new PostgresAccountRepository(db, { clock: () => now, localparts });
    });

    it('creates the account and assigns the derived localpart at first login', async () => {
      const account = await repo.upsertOnLogin(login('12', 'Jimbo Wales'));
      assert.deepEqual(account, {
        wiki: WIKI,
        centralId: '12',
        username: 'Jimbo Wales',
        displayName: 'Jimbo Wales',
        localpart: 'jimbo_wales',
        localpartOverride: undefined,
        createdAt: START,
        updatedAt: START,
        lastLoginAt: START,
        matrixUserId: undefined,
        matrixUserIdCheckedAt: undefined,
        renamedFrom: undefined,
      });
      assert.deepEqual(await repo.findByCentralId(WIKI, '12'), account);
      assert.deepEqual(await repo.findByLocalpart('jimbo_wales'), account);
      assert.deepEqual(await repo.findByUsername(WIKI, 'jimbo_Wales'), account);
      assert.equal(await repo.findByCentralId(WIKI, '13'), undefined);
      assert.equal(await repo.findByCentralId('other.wiki', '12'), undefined);
      assert.equal(await repo.findByLocalpart('nobody'), undefined);
    });

    it('follows a rename but keeps the localpart', async () => {
      await repo.upsertOnLogin(login('12', 'Jimbo Wales'));
      later(60);
      const same = await repo.upsertOnLogin(login('12', 'Jimbo_Wales'));
      assert.deepEqual([same.updatedAt, same.lastLoginAt], [START, now], 'an unchanged profile is not an update');
      later(60);
      const renamed = await repo.upsertOnLogin(login('12', 'Jimmy', { displayName: 'Jimmy W.' }));
      assert.equal(renamed.localpart, 'jimbo_wales');
      assert.equal(renamed.username, 'Jimmy');
      assert.equal(renamed.displayName, 'Jimmy W.');
      assert.deepEqual([renamed.createdAt, renamed.updatedAt, renamed.lastLoginAt], [START, now, now]);
      assert.equal(await repo.findByUsername(WIKI, 'Jimbo Wales'), undefined);
      assert.equal((await repo.findByUsername(WIKI, 'jimmy'))?.centralId, '12');
    });

    it('gives colliding names distinct localparts, in a deterministic order', async () => {
      const names: [string, string, string][] = [
        ['1', 'ABC', 'abc'],
        ['2', 'Abc', 'abc_2'],
        ['3', 'Abc 2', 'abc_2_2'], // its own derived name was taken by a suffix
        ['4', 'AbC', 'abc_3'],
      ];
      for (const [id, name, expected] of names) assert.equal((await repo.upsertOnLogin(login(id, name))).localpart, expected, name);
      assert.equal((await repo.upsertOnLogin(login('2', 'Abc'))).localpart, 'abc_2');
    });

    it('keeps wikis apart but shares the localpart namespace', async () => {
      const here = await repo.upsertOnLogin(login('7', 'Example'));
      const there = await repo.upsertOnLogin(login('7', 'Example', { wiki: 'other.example' }));
      assert.deepEqual([here.localpart, there.localpart], ['example', 'example_2']);
    });

    it('gives concurrent first logins of different users distinct localparts', async () => {
      const accounts = await Promise.all(Array.from({ length: 12 }, (_, i) => repo.upsertOnLogin(login(String(100 + i), i % 2 ? 'Sam' : 'SAM'))));
      const assigned = accounts.map((a) => a.localpart).sort();
      assert.deepEqual(assigned, ['sam', ...Array.from({ length: 11 }, (_, i) => `sam_${i + 2}`)].sort());
    });

    it('creates one account for concurrent first logins of the same user', async () => {
      const accounts = await Promise.all(Array.from({ length: 6 }, () => repo.upsertOnLogin(login('42', 'Racer'))));
      assert.deepEqual(new Set(accounts.map((a) => a.localpart)), new Set(['racer']));
      assert.equal((await repo.list()).accounts.length, 1);
    });

    it('never hands out reserved names', async () => {
      const table: [string, string][] = [
        ['Admin', 'admin_wiki'],
        ['Mjolnir', 'mjolnir_wiki'],
        ['Wikibot', 'wikibot_wiki'],
        ['Irc fan', 'wiki-irc_fan'],
        ['12345', '12345_wiki'],
        ['_Bridge user', 'bridge_user'],
      ];
      for (const [i, [name, expected]] of table.entries()) assert.equal((await repo.upsertOnLogin(login(String(i + 1), name))).localpart, expected, name);
    });

    it('gives localparts stored with escapes a new one the homeserver keeps, and leaves the others alone', async () => {
      await repo.upsertOnLogin(login('1', 'Aenglisc'));
      // As versions before 0.2 stored them: `=xx` escapes, an escaped first letter, a leading "_".
      for (const [id, name, localpart] of [['2', 'Ænglisc', '=c3=86nglisc'], ['3', 'Admin', '=61dmin'], ['4', 'Мария', '=d0=9c=d0=b0=d1=80=d0=b8=d1=8f'], ['5', '_x', '_x']]) {
        await db.query(
          `INSERT INTO accounts (wiki, central_id, username, display_name, localpart, created_at, updated_at, last_login_at) VALUES ($1, $2, $3, $3, $4, $5, $5, $5)`,
          [WIKI, id, name, localpart, now],
        );
      }
      later(5);
      const changes = await repo.rederiveUnstableLocalparts();
      assert.deepEqual(
        changes.map((c) => [c.centralId, c.from, c.to]),
        [['2', '=c3=86nglisc', 'aenglisc_2'], ['3', '=61dmin', 'admin_wiki'], ['4', '=d0=9c=d0=b0=d1=80=d0=b8=d1=8f', 'mariya'], ['5', '_x', 'x']],
      );
      assert.equal((await repo.findByCentralId(WIKI, '1'))!.localpart, 'aenglisc');
      assert.deepEqual((await repo.findByCentralId(WIKI, '4'))!.updatedAt, now);
      assert.deepEqual(await repo.rederiveUnstableLocalparts(), []);
    });

    it('follows a rename seen on the wiki without a sign-in; the display name follows only when it was the old name', async () => {
      await repo.upsertOnLogin(login('21', 'Old Name'));
      await repo.upsertOnLogin({ ...login('22', 'Other Name'), displayName: 'Chosen Display' });
      later(5);
      const renamed = await repo.recordRename(WIKI, '21', 'Новое имя');
      assert.equal(renamed?.before.username, 'Old Name');
      assert.equal(renamed?.after.username, 'Новое имя');
      assert.equal(renamed?.after.displayName, 'Новое имя');
      assert.equal(renamed?.after.localpart, 'old_name', 'the Matrix ID never follows a rename');
      assert.deepEqual((await repo.findByUsername(WIKI, 'Новое имя'))?.centralId, '21');
      assert.equal(await repo.findByUsername(WIKI, 'Old Name'), undefined);
      const other = await repo.recordRename(WIKI, '22', 'other_renamed');
      assert.equal(other?.after.username, 'Other renamed');
      assert.equal(other?.after.displayName, 'Chosen Display');
      assert.equal(await repo.recordRename(WIKI, '999', 'Nobody'), undefined);
    });

    it('keeps the Matrix ID the homeserver reports, and asks again for the unresolved ones oldest first', async () => {
      for (const [id, name] of [['31', 'First'], ['32', 'Second'], ['33', 'Third']] as const) await repo.upsertOnLogin(login(id, name));
      later(5);
      await repo.recordMatrixUserId(WIKI, '31', '@=3dfirst:wikimedia.org');
      await repo.recordMatrixUserId(WIKI, '32', undefined);
      assert.equal((await repo.findByCentralId(WIKI, '31'))?.matrixUserId, '@=3dfirst:wikimedia.org');
      assert.equal((await repo.findByMatrixUserId('@=3dfirst:wikimedia.org'))?.centralId, '31');
      later(5);
      const unresolved = await repo.unresolvedMatrixIds(WIKI, { limit: 10, checkedBefore: now });
      assert.deepEqual(unresolved.map((a) => a.centralId), ['33', '32'], 'never checked first, then the longest unchecked');
    });

    it('lets an admin override the localpart, and keeps it on later logins', async () => {
      await repo.upsertOnLogin(login('1', 'First'));
      await repo.upsertOnLogin(login('2', 'Second'));
      later(5);
      const overridden = await repo.setLocalpart(WIKI, '2', 'second.person', 'Admin User');
      assert.equal(overridden.localpart, 'second.person');
      assert.deepEqual(overridden.localpartOverride, { actor: 'Admin User', at: now });
      assert.deepEqual(overridden.updatedAt, now);
      later(5);
      assert.equal((await repo.upsertOnLogin(login('2', 'Second renamed'))).localpart, 'second.person');
      // The old localpart is free again.
      assert.equal((await repo.upsertOnLogin(login('3', 'Second'))).localpart, 'second');
    });

    it('refuses bad overrides with clear errors', async () => {
      await repo.upsertOnLogin(login('1', 'First'));
      await repo.upsertOnLogin(login('2', 'Second'));
      await assert.rejects(repo.setLocalpart(WIKI, '2', 'first', 'Admin'), (e: Error) => e instanceof LocalpartTakenError && /@first:wikimedia.org is already taken by the account of First \(central user id 1/.test(e.message));
      await assert.rejects(repo.setLocalpart(WIKI, '2', 'Second', 'Admin'), InvalidLocalpartError);
      await assert.rejects(repo.setLocalpart(WIKI, '2', '2024', 'Admin'), /all digits/);
      await assert.rejects(repo.setLocalpart(WIKI, '2', 'admin', 'Admin'), /reserved/);
      await assert.rejects(repo.setLocalpart(WIKI, '2', '_bridge', 'Admin'), /cannot start with "_"/);
      await assert.rejects(repo.setLocalpart(WIKI, '2', '=c3=86nglisc', 'Admin'), /Synapse would escape/);
      await assert.rejects(repo.setLocalpart(WIKI, '2', 'x'.repeat(241), 'Admin'), /at most 240/);
      await assert.rejects(repo.setLocalpart(WIKI, '2', 'fine', ' '), /actor/);
      await assert.rejects(repo.setLocalpart(WIKI, '99', 'fine', 'Admin'), AccountNotFoundError);
      assert.equal((await repo.findByCentralId(WIKI, '2'))?.localpart, 'second');
    });

    it('refuses identities that cannot be accounts', async () => {
      await assert.rejects(repo.upsertOnLogin(login('0', 'Unattached')), (e: Error) => e instanceof InvalidIdentityError && /not attached/.test(e.message));
      await assert.rejects(repo.upsertOnLogin(login('abc', 'Odd')), InvalidIdentityError);
      await assert.rejects(repo.upsertOnLogin(login('5', ' _ ')), /no username/);
      await assert.rejects(repo.upsertOnLogin(login('5', 'Someone', { wiki: '' })), InvalidIdentityError);
    });

    it('finds the most recent holder of a username', async () => {
      await repo.upsertOnLogin(login('1', 'Shared name'));
      later(60);
      await repo.upsertOnLogin(login('2', 'Shared name')); // 1 was renamed on the wiki but has not logged in since
      assert.equal((await repo.findByUsername(WIKI, 'shared_name'))?.centralId, '2');
    });

    it('lists accounts page by page', async () => {
      for (const [i, name] of ['Delta', 'Alpha', 'Charlie', 'Bravo', 'Echo'].entries()) await repo.upsertOnLogin(login(String(i + 1), name));
      const first = await repo.list({ limit: 2 });
      assert.deepEqual(first.accounts.map((a) => a.localpart), ['alpha', 'bravo']);
      const second = await repo.list({ limit: 2, after: first.next! });
      assert.deepEqual(second.accounts.map((a) => a.localpart), ['charlie', 'delta']);
      const last = await repo.list({ limit: 2, after: second.next! });
      assert.deepEqual([last.accounts.map((a) => a.localpart), last.next], [['echo'], undefined]);
      await assert.rejects(repo.list({ limit: 0 }), RangeError);
    });

    it('enforces the localpart rules in the schema too', async () => {
      const insert = (localpart: string) =>
        db.query(`INSERT INTO accounts (wiki, central_id, username, display_name, localpart, created_at, updated_at) VALUES ('w', '1', 'U', 'U', $1, now(), now())`, [localpart]);
      await assert.rejects(insert('Upper'), /accounts_localpart_grammar/);
      await assert.rejects(insert('123'), /accounts_localpart_grammar/);
    });

    it('gives distinct central ids distinct localparts, always (property)', async () => {
      const names = fc.string({ unit: fc.constantFrom('a', 'A', ' ', '_', '1', 'é'), minLength: 1, maxLength: 3 }).filter((s) => /[^ _]/.test(s));
      const users = fc.uniqueArray(fc.record({ centralId: fc.integer({ min: 1, max: 1_000_000 }).map(String), username: names }), { minLength: 1, maxLength: 8, selector: (u) => u.centralId });
      let run = 0;
      await fc.assert(
        fc.asyncProperty(users, async (batch) => {
          const wiki = `wiki-${run++}`; // the localpart namespace is shared, so earlier runs add collisions
          const first = await Promise.all(batch.map((u) => repo.upsertOnLogin({ wiki, ...u })));
          assert.equal(new Set(first.map((a) => a.localpart)).size, batch.length);
          const again = await Promise.all(batch.map((u) => repo.upsertOnLogin({ wiki, ...u, username: `${u.username} renamed` })));
          assert.deepEqual(again.map((a) => a.localpart), first.map((a) => a.localpart));
        }),
        { numRuns: 30 },
      );
    });
  });
}
