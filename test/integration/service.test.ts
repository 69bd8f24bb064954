import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, test } from '@jest/globals';
import pg from 'pg';
import request from 'supertest';
import { adminApiRoutes } from '../../src/admin/api.ts';
import { parseConfig } from '../../src/config/load.ts';
import { createApp } from '../../src/http/app.ts';
import { listen } from '../../src/http/server.ts';
import { openDatabase } from '../../src/db/index.ts';
import { migrate } from '../../src/db/migrate.ts';
import { PostgresAccountRepository } from '../../src/identity/accounts.ts';
import { LocalpartPolicy } from '../../src/identity/localpart.ts';
import { createLogger } from '../../src/log.ts';
import { backends, serverUrl } from '../support/backends.ts';
import { run, start, writeConfig } from '../support/cli.ts';
import { freePort } from '../support/login-stack.ts';
import { skippable } from '../support/suites.ts';

const log = createLogger('silent');

for (const backend of backends()) {
  describe(`readiness on ${backend.name}`, () => {
    test('/ready is 200 with the database up and migrated, 503 once it is gone; /health stays 200', async () => {
      const db = await backend.open();
      const http = request(createApp({ db, log }).callback());
      try {
        const ready = await http.get('/ready');
        assert.equal(ready.status, 200);
        assert.deepEqual(ready.body, { ready: true, database: 'ok', migrations: 'ok' });

        if (db.url) {
          const admin = new pg.Client({ connectionString: serverUrl });
          await admin.connect();
          await admin.query(`DROP DATABASE ${new URL(db.url).pathname.slice(1)} WITH (FORCE)`);
          await admin.end();
        } else {
          await db.close();
        }
        const gone = await http.get('/ready');
        assert.equal(gone.status, 503);
        const body = gone.body as { ready: boolean; database: string };
        assert.equal(body.ready, false);
        assert.equal(body.database, 'unreachable');
        assert.equal((await http.get('/health')).status, 200);
      } finally {
        await db.dispose().catch(() => {});
      }
    });

    test('/ready is 503 while migrations are pending', async () => {
      const db = await backend.open({ migrated: false });
      try {
        const res = await request(createApp({ db, log }).callback()).get('/ready');
        assert.equal(res.status, 503);
        assert.equal((res.body as { migrations: string }).migrations, 'pending');
      } finally {
        await db.dispose();
      }
    });
  });
}

describe('HTTP server', () => {
  test('graceful shutdown finishes an in-flight request and refuses new ones', async () => {
    const db = await backends()[0]!.open();
    let entered!: () => void;
    const inside = new Promise<void>((resolve) => (entered = resolve));
    const app = createApp({
      db,
      log,
      routes: (router) => {
        router.get('/slow', async (ctx) => {
          entered();
          await new Promise((resolve) => setTimeout(resolve, 400));
          ctx.body = 'finished';
        });
      },
    });
    const server = await listen(app, '127.0.0.1', 0);
    const inFlight = fetch(`${server.url}/slow`);
    await inside;
    const closed = server.close(5000);
    const res = await inFlight;
    assert.equal(res.status, 200);
    assert.equal(await res.text(), 'finished');
    await closed;
    await assert.rejects(fetch(`${server.url}/health`));
    await db.dispose();
  });

  test('every response has a request id, and a well-formed incoming one is kept', async () => {
    const db = await backends()[0]!.open();
    const http = request(createApp({ db, log }).callback());
    try {
      const fresh = await http.get('/health');
      assert.match(fresh.headers['x-request-id']!, /^[0-9a-f-]{36}$/);
      const kept = await http.get('/health').set('x-request-id', 'lb-1234');
      assert.equal(kept.headers['x-request-id'], 'lb-1234');
      const hostile = await http.get('/health').set('x-request-id', 'a b<script>');
      assert.notEqual(hostile.headers['x-request-id'], 'a b<script>');
      assert.equal((await http.get('/nope')).status, 404);
    } finally {
      await db.dispose();
    }
  });
});

describe('admin API', () => {
  const TOKEN = 'admin-token-for-tests-0123456789';
  const config = parseConfig(
    `matrix:\n  server_name: localhost\noidc:\n  cookie_keys: [${'k'.repeat(32)}]\n  key_encryption_secret: s3cret\nadmin:\n  token: ${TOKEN}\n`,
    'admin test',
  );

  test('whois answers the admin token only, never from a cache, and says what is wrong with a request', async () => {
    const db = await backends()[0]!.open();
    try {
      await new PostgresAccountRepository(db, { clock: () => new Date(), localparts: new LocalpartPolicy({ serverName: 'localhost' }) }).upsertOnLogin({
        wiki: 'meta.wikimedia.org', centralId: '778', username: 'Գևորգ Մարզպետունի',
      });
      const http = request(createApp({ db, log, routes: adminApiRoutes({ config, db }) }).callback());
      const bearer = `Bearer ${TOKEN}`;

      const found = await http.get('/admin/api/v1/whois').query({ q: 'Գևորգ Մարզպետունի' }).set('authorization', bearer);
      assert.equal(found.status, 200, found.text);
      assert.equal(found.headers['cache-control'], 'no-store');
      assert.equal(found.body.central_id, '778');
      assert.equal(found.body.username, 'Գևորգ Մարզպետունի');
      assert.match(found.body.matrix_id, /^@[a-z0-9._=/+-]+:localhost$/);
      assert.deepEqual((await http.get('/admin/api/v1/whois?q=778').set('authorization', bearer)).body, found.body, 'found by central id too');

      for (const authorization of [undefined, 'Bearer wrong', `Basic ${Buffer.from(`admin:${TOKEN}`).toString('base64')}`, `Bearer ${TOKEN} extra`]) {
        const refused = http.get('/admin/api/v1/whois?q=778');
        if (authorization) refused.set('authorization', authorization);
        const res = await refused;
        assert.equal(res.status, 401, String(authorization));
        assert.equal(res.headers['cache-control'], 'no-store');
        assert.match(res.headers['www-authenticate'] ?? '', /^Bearer realm=/);
        assert.equal(res.body.error, 'unauthorized');
        assert.doesNotMatch(res.text, /778|Մարզպետունի/, 'nothing about the account');
      }

      const nobody = await http.get('/admin/api/v1/whois').query({ q: 'Никто' }).set('authorization', bearer);
      assert.equal(nobody.status, 404);
      assert.equal(nobody.body.error, 'not_found');
      const empty = await http.get('/admin/api/v1/whois?q=%20').set('authorization', bearer);
      assert.equal(empty.status, 400);
      assert.equal(empty.body.error, 'invalid_request');
    } finally {
      await db.dispose();
    }
  });

  test('without admin.token there is no admin API', async () => {
    const db = await backends()[0]!.open();
    try {
      const bare = parseConfig(`matrix:\n  server_name: localhost\noidc:\n  cookie_keys: [${'k'.repeat(32)}]\n  key_encryption_secret: s3cret\n`, 'admin test');
      assert.equal(adminApiRoutes({ config: bare, db }), undefined);
      const http = request(createApp({ db, log, routes: adminApiRoutes({ config: bare, db }) }).callback());
      assert.equal((await http.get('/admin/api/v1/whois?q=778').set('authorization', `Bearer ${TOKEN}`)).status, 404);
    } finally {
      await db.dispose();
    }
  });
});

describe('command line', () => {
  const tmp = () => mkdtempSync(join(tmpdir(), 'wms-cli-'));

  test('a missing configuration file is one clear line and exit code 2', async () => {
    const { code, stderr } = await run(['serve', '--config', '/nonexistent/wms.yaml']);
    assert.equal(code, 2);
    assert.match(stderr, /\/nonexistent\/wms\.yaml: invalid configuration\n {2}- cannot read the configuration file: file not found/);
    assert.doesNotMatch(stderr, /\n\s+at /, 'no stack trace');
  });

  test('an unreachable database is a clear error', async () => {
    const config = writeConfig('database:\n  url: postgres://nobody:pw@127.0.0.1:9/nowhere\n  connect_timeout: 2\n');
    const { code, stderr } = await run(['migrate', '--config', config]);
    assert.equal(code, 1);
    assert.match(stderr, /^wiki-matrix-sso migrate: cannot connect to PostgreSQL at 127\.0\.0\.1:9\/nowhere: .*ECONNREFUSED/);
    assert.doesNotMatch(stderr, /pw@|\n\s+at /);
  });

  test('a port in use is a clear error', async () => {
    const blocker = createServer().listen(0, '127.0.0.1');
    await new Promise((resolve) => blocker.once('listening', resolve));
    const port = (blocker.address() as { port: number }).port;
    try {
      const config = writeConfig(`http:\n  port: ${port}\ndatabase:\n  data_dir: ${tmp()}\n`);
      const { code, stderr } = await run(['serve', '--config', config]);
      assert.equal(code, 1);
      assert.match(stderr, new RegExp(`^wiki-matrix-sso serve: port ${port} on 127\\.0\\.0\\.1 is already in use`));
    } finally {
      blocker.close();
    }
  });

  test('config generate writes a file that config check accepts; --help works on every command', async () => {
    const path = join(tmp(), 'generated.yaml');
    assert.equal((await run(['config', 'generate', '--output', path])).code, 0);
    const check = await run(['config', 'check', path]);
    assert.equal(check.code, 0, check.stderr);
    assert.match(check.stdout, /configuration is valid/);
    assert.equal((await run(['config', 'generate', '--output', path])).code, 2, 'refuses to overwrite');
    for (const command of [['serve'], ['worker'], ['migrate'], ['dev'], ['config', 'check'], ['config', 'generate'], ['config', 'show']]) {
      const help = await run([...command, '--help']);
      assert.equal(help.code, 0, command.join(' '));
      assert.match(help.stdout, /Usage: wiki-matrix-sso/);
    }
    const unknown = await run(['frobnicate']);
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /unknown command "frobnicate"/);
  });

  test('keys rotate adds signing keys and keeps the old ones listed until they retire', async () => {
    const config = writeConfig(`database:\n  data_dir: ${tmp()}\n`);
    const before = await run(['keys', 'list', '--config', config]);
    assert.equal(before.code, 0, before.stderr);
    assert.deepEqual(before.stdout.trim().split('\n').map((line) => line.split(/\s+/)[1]), ['RS256', 'ES256']);
    const rotated = await run(['keys', 'rotate', '--config', config]);
    assert.equal(rotated.code, 0, rotated.stderr);
    assert.match(rotated.stdout, /^added: {3}\S+, \S+\nretired: \S+, \S+\n/);
    const after = (await run(['keys', 'list', '--config', config])).stdout.trim().split('\n');
    assert.equal(after.length, 4);
    assert.match(after[0]!, /RS256 .* signing$/);
    assert.match(after[3]!, /retired, published until \d{4}-/);
  });

  test('whois finds an account by username, Matrix ID, localpart or central id, and reports the homeserver\'s Matrix ID', async () => {
    const dataDir = tmp();
    const config = writeConfig(`database:\n  data_dir: ${dataDir}\n`);
    const db = await openDatabase({ dataDir, poolMax: 1, connectTimeoutSeconds: 5 });
    await migrate(db);
    const accounts = new PostgresAccountRepository(db, { clock: () => new Date('2026-01-02T03:04:05Z'), localparts: new LocalpartPolicy({ serverName: 'localhost' }) });
    await accounts.upsertOnLogin({ wiki: 'meta.wikimedia.org', centralId: '4242', username: 'Jimbo Wales' });
    // Synapse suffixed this one (its localpart was taken by a user the service does not know).
    await accounts.upsertOnLogin({ wiki: 'meta.wikimedia.org', centralId: '4343', username: 'Taken' });
    await accounts.recordMatrixUserId('meta.wikimedia.org', '4343', '@taken1:localhost');
    await db.close();
    for (const query of ['Jimbo Wales', 'jimbo_Wales', '@jimbo_wales:localhost', 'jimbo_wales', '4242']) {
      const found = await run(['whois', query, '--config', config]);
      assert.equal(found.code, 0, `${query}: ${found.stderr}`);
      assert.match(found.stdout, /^matrix_id: "@jimbo_wales:localhost"\n/);
      assert.match(found.stdout, /central_id: "4242"/);
    }
    for (const query of ['Taken', '@taken1:localhost', '4343']) {
      const found = await run(['whois', query, '--config', config]);
      assert.equal(found.code, 0, `${query}: ${found.stderr}`);
      assert.match(found.stdout, /^matrix_id: "@taken1:localhost"\nproposed_matrix_id: "@taken:localhost"\n/, 'the homeserver\'s ID, not the proposed one');
    }
    const missing = await run(['whois', '@jimbo_wales:elsewhere.org', '--config', config]);
    assert.equal(missing.code, 1);
    assert.match(missing.stdout, /no account matches/);
  });

  test('on PGlite, serve also runs moderation mirroring when it is enabled; missing Matrix settings are a clear error', async () => {
    const incomplete = writeConfig(`http:\n  port: 0\ndatabase:\n  data_dir: ${tmp()}\nsync:\n  enabled: true\n`);
    const refused = await run(['serve', '--config', incomplete]);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /moderation mirroring needs matrix\.homeserver_url and matrix\.access_token/);

    const config = writeConfig(
      `http:\n  port: 0\ndatabase:\n  data_dir: ${tmp()}\nsync:\n  enabled: true\nwiki:\n  contact: tests@example.org\n  base_url: http://127.0.0.1:9/w\n  max_retries: 0\n`,
      { homeserver_url: 'http://127.0.0.1:9', access_token: 't', user_id: '@bot:localhost' },
    );
    const serve = start(['serve', '--config', config]);
    try {
      await serve.waitFor(/moderation mirroring runs in this process/);
      await serve.waitFor(/"listening"/);
      serve.child.kill('SIGTERM');
      assert.equal((await serve.exited).code, 0);
    } finally {
      serve.child.kill('SIGKILL');
    }
  });

  test('whois while serve holds the embedded database: it asks the running service through the admin API', async () => {
    const dataDir = tmp();
    const port = await freePort();
    const db = await openDatabase({ dataDir, poolMax: 1, connectTimeoutSeconds: 5 });
    await migrate(db);
    await new PostgresAccountRepository(db, { clock: () => new Date(), localparts: new LocalpartPolicy({ serverName: 'localhost' }) }).upsertOnLogin({
      wiki: 'meta.wikimedia.org', centralId: '777', username: 'Зоя Космодемьянская',
    });
    await db.close();
    const withoutToken = writeConfig(`http:\n  port: ${port}\ndatabase:\n  data_dir: ${dataDir}\n`);
    const config = writeConfig(`http:\n  port: ${port}\ndatabase:\n  data_dir: ${dataDir}\nadmin:\n  token: admin-token-for-tests-0123456789\n`);
    const serve = start(['serve', '--config', config]);
    try {
      await serve.waitFor(/"listening"/);
      const found = await run(['whois', 'Зоя Космодемьянская', '--config', config]);
      assert.equal(found.code, 0, found.stderr);
      assert.match(found.stdout, /^matrix_id: "@zoya_kosmodemyanskaya:localhost"\n/);
      assert.match(found.stdout, /central_id: "777"/);
      const missing = await run(['whois', 'Nobody', '--config', config]);
      assert.equal(missing.code, 1);
      assert.match(missing.stdout, /no account matches "Nobody"/);

      const refused = await fetch(`http://127.0.0.1:${port}/admin/api/v1/whois?q=777`, { headers: { authorization: 'Bearer wrong' } });
      assert.equal(refused.status, 401);
      assert.equal(refused.headers.get('cache-control'), 'no-store');
      assert.equal((await fetch(`http://127.0.0.1:${port}/admin/api/v1/whois?q=777`)).status, 401);

      const told = await run(['whois', '777', '--config', withoutToken]);
      assert.equal(told.code, 1);
      assert.match(told.stderr, /in use by process \d+.*set admin\.token/s);
    } finally {
      serve.child.kill('SIGTERM');
      await serve.exited;
    }
    assert.doesNotMatch(serve.output(), /admin-token-for-tests/, 'the token is never logged');
  });

  test('serve on PGlite answers /ready, stops cleanly on SIGTERM, and a second process is refused the data directory', async () => {
    const dataDir = tmp();
    const config = writeConfig(`http:\n  port: 0\ndatabase:\n  data_dir: ${dataDir}\n`);
    const serve = start(['serve', '--config', config]);
    try {
      const line = await serve.waitFor(/"listening":"http:\/\/127\.0\.0\.1:\d+"/);
      const url = /"listening":"([^"]+)"/.exec(line)![1]!;
      assert.equal((await fetch(`${url}/ready`)).status, 200);

      const second = await run(['migrate', '--config', config]);
      assert.equal(second.code, 1);
      assert.match(second.stderr, /is in use by process \d+; PGlite allows one process/);

      serve.child.kill('SIGTERM');
      const { code } = await serve.exited;
      assert.equal(code, 0);
      assert.match(serve.output(), /"msg":"stopped"/);
      assert.doesNotMatch(serve.output(), /test-secret|kkkkkkkkkkkkkkkkkkkk/, 'no secrets in logs');
    } finally {
      serve.child.kill('SIGKILL');
    }
  });
});

skippable(describe, serverUrl ? false : 'needs a PostgreSQL server (TEST_DATABASE_URL)')('worker leadership', () => {
  const backend = backends().find((b) => b.name === 'postgres');
  const opened: Array<{ dispose(): Promise<void> }> = [];
  afterAll(() => Promise.all(opened.map((db) => db.dispose())));

  test('one worker leads, a second waits, and takes over when the first stops', async () => {
    const db = await backend!.open();
    opened.push(db);
    const config = writeConfig(`database:\n  url: ${db.url}\n`);
    const workers = [start(['worker', '--config', config]), start(['worker', '--config', config])];
    try {
      // Either may win the race to the lock; the other must wait.
      const leader = await Promise.any(workers.map(async (w) => (await w.waitFor(/"msg":"leader:/), w)));
      const standby = workers.find((w) => w !== leader)!;
      await standby.waitFor(/waiting to become the leader/);
      await new Promise((resolve) => setTimeout(resolve, 500));
      assert.doesNotMatch(standby.output(), /"msg":"leader:/);
      leader.child.kill('SIGTERM');
      assert.equal((await leader.exited).code, 0);
      await standby.waitFor(/"msg":"leader:/, 15_000);
      standby.child.kill('SIGTERM');
      assert.equal((await standby.exited).code, 0);
    } finally {
      for (const w of workers) w.child.kill('SIGKILL');
    }
  });
});
