import assert from 'node:assert/strict';
import { afterAll, beforeAll, beforeEach, describe, it } from '@jest/globals';
import { calculateJwkThumbprint, CompactSign, compactVerify, createLocalJWKSet, importJWK, type JWK } from 'jose';
import Provider from 'oidc-provider';
import { openDatabase, type Database } from '../../src/db/index.ts';
import { adapterFactory } from '../../src/oidc/adapter.ts';
import { MissingSigningKeyError, SigningKeyDecryptionError, SigningKeyStore, type SigningJwk } from '../../src/oidc/keys.ts';
import { backends, type TestDatabase } from '../support/backends.ts';

const START = new Date('2026-11-27T12:00:00Z');
const SECRET = 'correct horse battery staple, but longer';
const DAY = 86400;
const PRIVATE = ['d', 'p', 'q', 'dp', 'dq', 'qi'];

const publicOf = (jwk: JWK): JWK => Object.fromEntries(Object.entries(jwk).filter(([name]) => !PRIVATE.includes(name)));
const summary = (keys: SigningJwk[]) => keys.map((key) => `${key.alg}:${key.kid}`);

async function sign(jwk: SigningJwk, payload: string): Promise<string> {
  return new CompactSign(new TextEncoder().encode(payload)).setProtectedHeader({ alg: jwk.alg, kid: jwk.kid }).sign(await importJWK(jwk, jwk.alg));
}

for (const backend of backends()) {
  describe(`signing keys on ${backend.name}`, () => {
    let db: TestDatabase;
    let now: Date;
    let store: SigningKeyStore;
    const later = (seconds: number) => (now = new Date(now.getTime() + seconds * 1000));

    beforeAll(async () => {
      db = await backend.open();
    });
    afterAll(() => db.dispose());
    beforeEach(async () => {
      await db.query('DELETE FROM oidc_signing_keys');
      now = START;
      store = new SigningKeyStore(db, { secret: SECRET, clock: () => now });
    });

    it('ensure creates one active RS256 and one ES256 key, once', async () => {
      await store.ensure();
      const first = await store.list();
      assert.deepEqual(first.map((k) => [k.alg, k.createdAt, k.retireAfter]), [
        ['RS256', START, undefined],
        ['ES256', START, undefined],
      ]);
      later(60);
      await store.ensure();
      assert.deepEqual(await store.list(), first);
    });

    it('processes ensuring at once end with one key per algorithm', async () => {
      // On PostgreSQL one store uses its own pool, as another process would.
      const other: Database = db.url ? await openDatabase({ url: db.url, dataDir: '', poolMax: 2, connectTimeoutSeconds: 5 }) : db;
      try {
        const stores = [store, new SigningKeyStore(other, { secret: SECRET }), new SigningKeyStore(db, { secret: SECRET })];
        await Promise.all(stores.map((s) => s.ensure()));
      } finally {
        if (other !== db) await other.close();
      }
      assert.deepEqual((await store.list()).map((k) => k.alg), ['RS256', 'ES256']);
    });

    it('the table refuses a second active key of one algorithm', async () => {
      await store.ensure();
      await assert.rejects(
        db.query(
          `INSERT INTO oidc_signing_keys (kid, alg, public_jwk, private_kdf, private_salt, private_iv, private_tag, private_ciphertext, created_at)
           SELECT 'other', alg, public_jwk, private_kdf, private_salt, private_iv, private_tag, private_ciphertext, created_at
           FROM oidc_signing_keys WHERE alg = 'RS256'`,
        ),
        /oidc_signing_keys_one_active_per_alg/,
      );
    });

    it('load gives private JWKs, RS256 first, with thumbprint kids', async () => {
      await store.ensure();
      const { keys } = await store.load();
      assert.deepEqual(keys.map((k) => [k.alg, k.kty, k.use]), [
        ['RS256', 'RSA', 'sig'],
        ['ES256', 'EC', 'sig'],
      ]);
      for (const key of keys) {
        assert.equal(key.kid, await calculateJwkThumbprint(publicOf(key)));
        assert.ok(key.d, 'has the private exponent');
      }
      assert.equal(BigInt('0x' + Buffer.from(keys[0]!.n!, 'base64url').toString('hex')).toString(2).length, 2048);
      assert.equal(keys[1]!.crv, 'P-256');
    });

    it('load before ensure says what is missing', async () => {
      await assert.rejects(store.load(), MissingSigningKeyError);
    });

    it('a JWS signed with a loaded key verifies with the published keys', async () => {
      await store.ensure();
      const { keys } = await store.load();
      const published = createLocalJWKSet({ keys: keys.map(publicOf) });
      for (const key of keys) {
        const { payload, protectedHeader } = await compactVerify(await sign(key, 'hello'), published);
        assert.equal(new TextDecoder().decode(payload), 'hello');
        assert.equal(protectedHeader.kid, key.kid);
      }
    });

    it('keeps the private members encrypted at rest', async () => {
      await store.ensure();
      const { keys } = await store.load();
      const { rows } = await db.query<{ raw: string; public_jwk: JWK }>(
        `SELECT t::text AS raw, public_jwk FROM oidc_signing_keys t`,
      );
      assert.equal(rows.length, 2);
      const dump = rows.map((row) => row.raw).join('\n');
      for (const key of keys) {
        for (const member of PRIVATE) {
          const value = key[member as keyof JWK] as string | undefined;
          if (value === undefined) continue;
          assert.ok(!dump.includes(value), `${member} of ${key.alg} is not stored in clear`);
          assert.ok(!dump.includes(Buffer.from(value, 'base64url').toString('hex')), `${member} of ${key.alg} is not stored as raw bytes`);
        }
      }
      for (const row of rows) assert.deepEqual(Object.keys(row.public_jwk).filter((m) => PRIVATE.includes(m)), []);
    });

    it('a different secret cannot load the keys, and says so', async () => {
      await store.ensure();
      const wrong = new SigningKeyStore(db, { secret: 'not the secret it was stored with' });
      await assert.rejects(wrong.load(), (error: unknown) => {
        assert.ok(error instanceof SigningKeyDecryptionError);
        assert.equal(error.message, 'the stored signing keys cannot be decrypted with oidc.key_encryption_secret: was it changed?');
        return true;
      });
    });

    it('a ciphertext moved onto another key does not decrypt', async () => {
      await store.ensure();
      await store.rotate({ maxTokenLifetimeSeconds: DAY });
      await db.query(
        `UPDATE oidc_signing_keys t SET private_salt = s.private_salt, private_iv = s.private_iv, private_tag = s.private_tag, private_ciphertext = s.private_ciphertext
         FROM oidc_signing_keys s WHERE t.alg = 'RS256' AND s.alg = 'RS256' AND t.kid <> s.kid AND t.retire_after IS NULL`,
      );
      await assert.rejects(store.load(), SigningKeyDecryptionError);
    });

    it('rotate makes new keys the signers and keeps the old ones published for the token lifetime', async () => {
      await store.ensure();
      const before = (await store.load()).keys;
      const oldToken = await sign(before[0]!, 'signed before the rotation');
      later(60);

      const result = await store.rotate({ maxTokenLifetimeSeconds: DAY });
      const after = (await store.load()).keys;
      assert.deepEqual(result.retired, before.map((k) => k.kid).sort());
      assert.deepEqual(result.pruned, []);
      assert.equal(result.added.length, 2);
      assert.deepEqual(summary(after.slice(2)), summary(before), 'old keys follow, RS256 first');
      assert.deepEqual(after.slice(0, 2).map((k) => k.alg), ['RS256', 'ES256']);
      assert.deepEqual(after.slice(0, 2).map((k) => k.kid).sort(), [...result.added].sort());
      assert.ok(after.slice(0, 2).every((k) => !before.some((b) => b.kid === k.kid)));

      const published = createLocalJWKSet({ keys: after.map(publicOf) });
      await compactVerify(oldToken, published);
      await compactVerify(await sign(after[0]!, 'signed after'), published);

      const listed = await store.list();
      const retireAfter = new Date(START.getTime() + (60 + DAY) * 1000);
      assert.deepEqual(listed.map((k) => k.retireAfter), [undefined, undefined, retireAfter, retireAfter]);
    });

    it('retired keys disappear after the window, and prune deletes them', async () => {
      await store.ensure();
      const first = (await store.load()).keys;
      await store.rotate({ maxTokenLifetimeSeconds: DAY });
      later(DAY - 1);
      assert.equal((await store.load()).keys.length, 4);
      assert.deepEqual(await store.prune(), []);
      later(1);
      assert.equal((await store.load()).keys.length, 2, 'no longer published, even before pruning');
      assert.deepEqual(await store.prune(), first.map((k) => k.kid).sort());
      assert.equal((await store.list()).length, 2);
    });

    it('a later rotation prunes what the earlier one retired', async () => {
      await store.ensure();
      const first = (await store.load()).keys.map((k) => k.kid).sort();
      const second = await store.rotate({ maxTokenLifetimeSeconds: 10 });
      later(11);
      const third = await store.rotate({ maxTokenLifetimeSeconds: 10 });
      assert.deepEqual(third.pruned, first);
      assert.deepEqual(third.retired, [...second.added].sort());
      assert.equal((await store.list()).length, 4);
    });

    it('refuses a negative token lifetime', async () => {
      await assert.rejects(store.rotate({ maxTokenLifetimeSeconds: -1 }), RangeError);
    });

    it('oidc-provider accepts the keys, publishes them in order without private parts, and signs ID tokens with RS256', async () => {
      await store.ensure();
      await store.rotate({ maxTokenLifetimeSeconds: DAY });
      const jwks = await store.load();
      const provider = new Provider('http://127.0.0.1/', {
        jwks,
        adapter: adapterFactory(db),
        ttl: { IdToken: 3600 },
        clients: [{ client_id: 'synapse', client_secret: 'x'.repeat(32), redirect_uris: ['http://127.0.0.1/cb'] }],
        features: { devInteractions: { enabled: false } },
      });
      const response = await fetchFrom(provider, '/jwks');
      const published = (await response.json()) as { keys: JWK[] };
      assert.deepEqual(published.keys.map((k) => k.kid), jwks.keys.map((k) => k.kid));
      assert.ok(published.keys.every((k) => PRIVATE.every((m) => !(m in k))));

      const client = await provider.Client.find('synapse');
      const idToken = new provider.IdToken({ sub: 'someone' }, { client: client! });
      const token = await idToken.issue({ use: 'idtoken' });
      const { protectedHeader } = await compactVerify(token as string, createLocalJWKSet(published));
      assert.deepEqual([protectedHeader.alg, protectedHeader.kid], ['RS256', jwks.keys[0]!.kid]);
    });
  });
}

async function fetchFrom(provider: Provider, path: string): Promise<Response> {
  const { createServer } = await import('node:http');
  const server = createServer(provider.callback());
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  try {
    const { port } = server.address() as { port: number };
    return await fetch(`http://127.0.0.1:${port}${path}`, { signal: AbortSignal.timeout(5000) }).then(async (r) => new Response(await r.text(), r));
  } finally {
    server.close();
  }
}
