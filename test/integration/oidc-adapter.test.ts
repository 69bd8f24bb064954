import assert from 'node:assert/strict';
import { afterAll, beforeAll, beforeEach, describe, it } from '@jest/globals';
import Provider, { type Adapter, type AdapterConstructor } from 'oidc-provider';
import { onStatement } from '../../src/db/statements.ts';
import { adapterFactory, purgeExpired, startPurgeJob } from '../../src/oidc/adapter.ts';
import { backends, type TestDatabase } from '../support/backends.ts';

const START = new Date('2026-11-27T12:00:00Z');
const epoch = (date: Date) => Math.floor(date.getTime() / 1000);

for (const backend of backends()) {
  describe(`oidc-provider adapter on ${backend.name}`, () => {
    let db: TestDatabase;
    let now: Date;
    let Adapter: AdapterConstructor;
    const later = (seconds: number) => (now = new Date(now.getTime() + seconds * 1000));
    const model = (name: string): Adapter => new Adapter(name);

    beforeAll(async () => {
      db = await backend.open();
    });
    afterAll(() => db.dispose());
    beforeEach(async () => {
      await db.query('DELETE FROM oidc_payloads');
      now = START;
      Adapter = adapterFactory(db, () => now);
    });

    it('stores and finds a payload, replacing it on upsert', async () => {
      const sessions = model('Session');
      assert.equal(await sessions.find('s1'), undefined);
      await sessions.upsert('s1', { jti: 's1', uid: 'u1', accountId: 'a' }, 60);
      assert.deepEqual(await sessions.find('s1'), { jti: 's1', uid: 'u1', accountId: 'a' });
      await sessions.upsert('s1', { jti: 's1', uid: 'u2', accountId: 'b' }, 60);
      assert.deepEqual(await sessions.find('s1'), { jti: 's1', uid: 'u2', accountId: 'b' });
      assert.equal(await sessions.findByUid('u1'), undefined);
      assert.deepEqual(await sessions.findByUid('u2'), { jti: 's1', uid: 'u2', accountId: 'b' });
    });

    it('keeps models apart', async () => {
      await model('AccessToken').upsert('same', { jti: 'same', kind: 'AccessToken' }, 60);
      await model('RefreshToken').upsert('same', { jti: 'same', kind: 'RefreshToken' }, 60);
      assert.equal((await model('AccessToken').find('same'))?.kind, 'AccessToken');
      assert.equal((await model('RefreshToken').find('same'))?.kind, 'RefreshToken');
      assert.equal(await model('Session').find('same'), undefined);
      await model('AccessToken').upsert('t', { jti: 't', uid: 'shared' }, 60);
      assert.equal(await model('Session').findByUid('shared'), undefined);
    });

    it('fills the indexed columns from the payload', async () => {
      await model('DeviceCode').upsert('d1', { jti: 'd1', grantId: 'g1', userCode: 'ABCD-EFGH' }, 120);
      await model('Grant').upsert('g2', { jti: 'g2' });
      const { rows } = await db.query('SELECT model, id, grant_id, user_code, uid, expires_at, consumed_at FROM oidc_payloads ORDER BY id');
      assert.deepEqual(rows, [
        { model: 'DeviceCode', id: 'd1', grant_id: 'g1', user_code: 'ABCD-EFGH', uid: null, expires_at: new Date(START.getTime() + 120_000), consumed_at: null },
        { model: 'Grant', id: 'g2', grant_id: null, user_code: null, uid: null, expires_at: null, consumed_at: null },
      ]);
    });

    it('finds by user code', async () => {
      await model('DeviceCode').upsert('d1', { jti: 'd1', userCode: 'ABCD-EFGH' }, 120);
      assert.equal((await model('DeviceCode').findByUserCode('ABCD-EFGH'))?.jti, 'd1');
      assert.equal(await model('DeviceCode').findByUserCode('ZZZZ-ZZZZ'), undefined);
    });

    it('reads an expired row as not found before it is purged, by every lookup', async () => {
      await model('Session').upsert('s1', { jti: 's1', uid: 'u1' }, 10);
      await model('DeviceCode').upsert('d1', { jti: 'd1', userCode: 'CODE' }, 10);
      later(9);
      assert.ok(await model('Session').find('s1'));
      later(1);
      assert.equal(await model('Session').find('s1'), undefined);
      assert.equal(await model('Session').findByUid('u1'), undefined);
      assert.equal(await model('DeviceCode').findByUserCode('CODE'), undefined);
      assert.equal((await db.query('SELECT 1 FROM oidc_payloads')).rows.length, 2);
    });

    it('never expires a payload stored without expiresIn', async () => {
      await model('Client').upsert('c1', { client_id: 'c1' });
      later(10 * 365 * 86400);
      assert.deepEqual(await model('Client').find('c1'), { client_id: 'c1' });
    });

    it('consume records the time in the payload, where oidc-provider looks for replays', async () => {
      await model('AuthorizationCode').upsert('code', { jti: 'code', grantId: 'g' }, 60);
      later(5);
      await model('AuthorizationCode').consume('code');
      assert.deepEqual(await model('AuthorizationCode').find('code'), { jti: 'code', grantId: 'g', consumed: epoch(now) });
      const { rows } = await db.query('SELECT consumed_at FROM oidc_payloads');
      assert.deepEqual(rows, [{ consumed_at: now }]);
    });

    it('consumes once: a second consume, or of a code revoked meanwhile, is refused as invalid_grant', async () => {
      await model('AuthorizationCode').upsert('code', { jti: 'code', grantId: 'g' }, 60);
      // Two exchanges of one code at once both find it unconsumed; only the first may use it.
      const results = await Promise.allSettled([model('AuthorizationCode').consume('code'), model('AuthorizationCode').consume('code')]);
      assert.deepEqual(results.map((r) => r.status).sort(), ['fulfilled', 'rejected']);
      const refused = results.find((r) => r.status === 'rejected') as PromiseRejectedResult;
      assert.equal(refused.reason.error, 'invalid_grant');
      await assert.rejects(model('AuthorizationCode').consume('missing'), (error: { error?: string }) => error.error === 'invalid_grant');
    });

    it('does not write a session again that is saved unchanged right after being read, and never brings back one deleted meanwhile', async () => {
      const sessions = model('Session');
      await sessions.upsert('s1', { jti: 's1', uid: 'u1', accountId: 'Ёжик', exp: epoch(now) + 600 }, 600);
      const writes: string[] = [];
      const stop = onStatement(({ sql }) => void (/^\s*(INSERT|UPDATE|DELETE)/.test(sql) && writes.push(sql)));
      try {
        // oidc-provider reads the session at the start of a request and saves it at the end, its
        // rolling expiry a moment later: nothing to write.
        const read = await sessions.find('s1');
        later(1);
        await sessions.upsert('s1', { ...read, exp: epoch(now) + 600 }, 600);
        assert.deepEqual(writes, []);
        // Changed: written.
        await sessions.upsert('s1', { ...read, accountId: 'שלום', exp: epoch(now) + 600 }, 600);
        assert.equal(writes.length, 1);
        assert.equal((await sessions.find('s1'))?.accountId, 'שלום');
        // Ended by another process after this one read it: saving what was read does not revive it.
        const again = await sessions.find('s1');
        await db.query("DELETE FROM oidc_payloads WHERE model = 'Session' AND id = 's1'");
        await sessions.upsert('s1', { ...again }, 600);
        assert.equal(await sessions.find('s1'), undefined);
        // Not read since: written as it is.
        await sessions.upsert('s1', { ...again }, 600);
        assert.equal((await sessions.find('s1'))?.accountId, 'שלום');
        // Tokens are never saved twice; each upsert is written.
        const before = writes.length;
        await model('AccessToken').upsert('t1', { jti: 't1' }, 60);
        await model('AccessToken').find('t1');
        await model('AccessToken').upsert('t1', { jti: 't1' }, 60);
        assert.equal(writes.length, before + 2);
      } finally {
        stop();
      }
    });

    it('keeps the consumed mark when the payload is written again', async () => {
      await model('RefreshToken').upsert('rt', { jti: 'rt' }, 60);
      await model('RefreshToken').consume('rt');
      const stored = await model('RefreshToken').find('rt');
      await model('RefreshToken').upsert('rt', { ...stored }, 60);
      assert.equal((await model('RefreshToken').find('rt'))?.consumed, epoch(now));
      assert.deepEqual((await db.query('SELECT consumed_at FROM oidc_payloads')).rows, [{ consumed_at: now }]);
    });

    it('destroys one row of one model', async () => {
      await model('AccessToken').upsert('t', { jti: 't' }, 60);
      await model('RefreshToken').upsert('t', { jti: 't' }, 60);
      await model('AccessToken').destroy('t');
      await model('AccessToken').destroy('never-existed');
      assert.equal(await model('AccessToken').find('t'), undefined);
      assert.ok(await model('RefreshToken').find('t'));
    });

    it('revokeByGrantId deletes that grant’s rows in every model and nothing else', async () => {
      for (const name of ['AccessToken', 'RefreshToken', 'AuthorizationCode', 'DeviceCode', 'Interaction']) {
        await model(name).upsert(`${name}-1`, { jti: `${name}-1`, grantId: 'g1' }, 60);
        await model(name).upsert(`${name}-2`, { jti: `${name}-2`, grantId: 'g2' }, 60);
      }
      await model('Grant').upsert('g1', { jti: 'g1' }, 60);
      await model('RefreshToken').revokeByGrantId('g1');
      const { rows } = await db.query<{ model: string; id: string }>('SELECT model, id FROM oidc_payloads ORDER BY model, id');
      assert.deepEqual(
        rows.map((r) => r.id),
        ['AccessToken-2', 'AuthorizationCode-2', 'DeviceCode-2', 'g1', 'Interaction-2', 'RefreshToken-2'],
      );
    });

    it('purgeExpired deletes exactly the expired rows', async () => {
      await model('Session').upsert('short', { jti: 'short' }, 10);
      await model('Session').upsert('long', { jti: 'long' }, 100);
      await model('Client').upsert('forever', { client_id: 'forever' });
      assert.equal(await purgeExpired(db, () => now), 0);
      later(10);
      assert.equal(await purgeExpired(db, () => now), 1);
      later(1000);
      assert.equal(await purgeExpired(db, () => now), 1);
      assert.deepEqual((await db.query('SELECT id FROM oidc_payloads')).rows, [{ id: 'forever' }]);
    });

    it('the purge job runs periodically, logs failures instead of throwing, and stops', async () => {
      await model('Session').upsert('old', { jti: 'old' }, 1);
      later(2);
      const errors: { err: Error }[] = [];
      const debug: unknown[] = [];
      const log = { debug: (o: unknown) => debug.push(o), error: (o: { err: Error }) => errors.push(o) } as unknown as Parameters<typeof startPurgeJob>[1]['log'];
      const job = startPurgeJob(db, { intervalMs: 5, log, clock: () => now });
      for (let i = 0; i < 200 && debug.length === 0; i++) await new Promise((r) => setTimeout(r, 5));
      await job.stop();
      assert.deepEqual(debug, [{ deleted: 1 }]);
      assert.equal(errors.length, 0);

      const broken = { query: async () => Promise.reject(new Error('connection lost')), exec: async () => {} };
      const failing = startPurgeJob(broken, { intervalMs: 5, log });
      for (let i = 0; i < 200 && errors.length < 2; i++) await new Promise((r) => setTimeout(r, 5));
      await failing.stop();
      assert.ok(errors.length >= 2, 'keeps running after a failure');
      assert.equal(errors[0]?.err.message, 'connection lost');
    });

    it('is accepted by oidc-provider, which reads and writes through it', async () => {
      Adapter = adapterFactory(db);
      // A Grant lifetime as the service sets one (oidc-provider otherwise notices its default on the console).
      const ttl = { Grant: 600 };
      const provider = new Provider('http://127.0.0.1/', { adapter: Adapter, jwks: { keys: [] }, ttl, features: { devInteractions: { enabled: false } } });
      assert.equal(await provider.Session.find('nonexistent'), undefined);
      const grant = new provider.Grant({ accountId: 'acct', clientId: 'client' });
      grant.addOIDCScope('openid');
      const grantId = await grant.save();
      const found = await provider.Grant.find(grantId);
      assert.equal(found?.accountId, 'acct');
      assert.deepEqual(found?.getOIDCScope(), 'openid');
      await found?.destroy();
      assert.equal(await provider.Grant.find(grantId), undefined);
    });
  });
}
