import assert from 'node:assert/strict';
import { afterAll, beforeAll, describe, it } from '@jest/globals';
import { PostgresAccountRepository } from '../../src/identity/accounts.ts';
import { LocalpartPolicy } from '../../src/identity/localpart.ts';
import { AccountClaimsStore, WikiLoginStore, WikiProfileStore } from '../../src/login/store.ts';
import { emptyRecords, ModerationRecordStore } from '../../src/moderation/records.ts';
import { backends, type TestDatabase } from '../support/backends.ts';

const WIKI = 'wiki.example';
const NOW = new Date('2030-01-01T00:00:00Z');
const lock = { kind: 'global_lock' as const, wiki: 'meta.wikimedia.org', blockId: null, logId: 1, by: 'Steward', reason: 'LTA', timestamp: null, expiry: null, group: null, hidden: false };

for (const backend of backends()) {
  describe(`sign-in storage on ${backend.name}`, () => {
    let db: TestDatabase;
    let now = NOW;
    const clock = () => now;

    beforeAll(async () => {
      db = await backend.open();
    });
    afterAll(() => db.dispose());

    it('claims a wiki callback once, in the browser that started it, before it expires, and says why not', async () => {
      const logins = new WikiLoginStore(db, clock);
      await logins.start({ state: 's-ok', interactionUid: 'i-1', browserKey: 'браузер', codeVerifier: 'v'.repeat(43), expiresAt: new Date(NOW.getTime() + 600_000) });
      await logins.start({ state: 's-old', interactionUid: 'i-2', browserKey: 'браузер', codeVerifier: 'w'.repeat(43), expiresAt: new Date(NOW.getTime() + 1000) });

      assert.deepEqual(await logins.claimCallback('s-unknown', 'браузер'), { ok: false, reason: 'unknown' });
      assert.deepEqual(await logins.claimCallback('s-ok', 'another browser'), { ok: false, reason: 'other_browser' });
      assert.deepEqual(await logins.claimCallback('s-ok', undefined), { ok: false, reason: 'other_browser' });
      assert.deepEqual(await logins.claimCallback('s-ok', 'браузер'), { ok: true, login: { state: 's-ok', interactionUid: 'i-1', codeVerifier: 'v'.repeat(43) } });
      assert.deepEqual(await logins.claimCallback('s-ok', 'браузер'), { ok: false, reason: 'replayed' });
      now = new Date(NOW.getTime() + 2000);
      assert.deepEqual(await logins.claimCallback('s-old', 'браузер'), { ok: false, reason: 'expired' });
      now = NOW;
    });

    it('reads an account with its wiki profile and whether its sessions were ended, in one statement', async () => {
      const accounts = new PostgresAccountRepository(db, { clock, localparts: new LocalpartPolicy({ serverName: 'example.org' }) });
      const claims = new AccountClaimsStore(db, 'example.org');
      assert.equal(await claims.find(WIKI, '1'), undefined);

      const yael = await accounts.upsertOnLogin({ wiki: WIKI, centralId: '1', username: 'יעל' });
      assert.deepEqual(await claims.find(WIKI, '1'), { username: 'יעל', localpart: yael.localpart, profile: undefined, sessionsEnded: false });
      await new WikiProfileStore(db).save(WIKI, { centralId: '1', username: 'יעל', editCount: 42, registered: new Date('2010-05-05T00:00:00Z'), groups: ['sysop'], blocked: false, emailVerified: true, email: 'yael@example.org' } as never, NOW, { keepEmail: true });
      assert.deepEqual((await claims.find(WIKI, '1'))?.profile, { editCount: 42, registered: new Date('2010-05-05T00:00:00Z'), groups: ['sysop'], email: 'yael@example.org', fetchedAt: NOW });

      // Ended under the Matrix ID the service proposed, or under the one the homeserver reported.
      const records = new ModerationRecordStore(db);
      const ended = await records.apply(emptyRecords(), [{ kind: 'end_sessions', userId: `@${yael.localpart}:example.org`, centralId: '1', cause: lock }]);
      assert.equal((await claims.find(WIKI, '1'))?.sessionsEnded, true);
      await records.apply(ended, [{ kind: 'forget', record: { type: 'session_end', userId: `@${yael.localpart}:example.org` }, why: 'unlocked' }]);
      assert.equal((await claims.find(WIKI, '1'))?.sessionsEnded, false);

      await accounts.upsertOnLogin({ wiki: WIKI, centralId: '2', username: '王小明' });
      await accounts.recordMatrixUserId(WIKI, '2', '@wang_xiaoming_2:example.org');
      await records.apply(emptyRecords(), [{ kind: 'end_sessions', userId: '@wang_xiaoming_2:example.org', centralId: '2', cause: lock }]);
      assert.equal((await claims.find(WIKI, '2'))?.sessionsEnded, true);
      assert.equal((await claims.find(WIKI, '1'))?.sessionsEnded, false, 'another person is not concerned');
    });
  });
}
