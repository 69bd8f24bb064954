// `serve --workers N`: N processes sharing the port and the database, run as an operator would.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, test } from '@jest/globals';
import * as client from 'openid-client';
import YAML from 'yaml';
import { backends, type TestDatabase } from '../support/backends.ts';
import { Browser } from '../support/browser.ts';
import { run, start, type Running } from '../support/cli.ts';
import { HOMESERVER, RP_CALLBACK, RelyingParty, WIKI_CONSUMER, editor, freePort } from '../support/login-stack.ts';
import { skipUnless } from '../support/real-parts.ts';
import { WikiOAuthDouble } from '../support/wiki-oauth-double.ts';
import { skippable } from '../support/suites.ts';

const postgres = backends().find((b) => b.name === 'postgres');

function writeConfig(sections: Record<string, unknown>): string {
  const path = join(mkdtempSync(join(tmpdir(), 'wms-workers-')), 'config.yaml');
  writeFileSync(path, YAML.stringify(sections), { mode: 0o600 });
  return path;
}

const base = (port: number, wikiUrl: string, database: Record<string, unknown>, metricsPort?: number) => ({
  http: { host: '127.0.0.1', port, public_url: `http://127.0.0.1:${port}`, shutdown_grace: 2 },
  database,
  oidc: {
    cookie_keys: ['workers-cookie-key-0123456789-0123456789'],
    key_encryption_secret: 'workers-key-encryption-secret',
    clients: [{ ...HOMESERVER, redirect_uris: [RP_CALLBACK], skip_consent: true, scopes: ['openid', 'profile', 'email', 'wiki', 'offline_access'] }],
  },
  wiki: { base_url: wikiUrl, client_id: WIKI_CONSUMER.key, client_secret: WIKI_CONSUMER.secret, contact: 'tests@example.org', timeout: 5, max_retries: 0 },
  matrix: { server_name: 'example.org' },
  logging: { level: 'info' },
  ...(metricsPort !== undefined && { metrics: { port: metricsPort } }),
});

test('serve --workers on the embedded database is refused, saying why', async () => {
  const config = writeConfig(base(0, 'http://127.0.0.1:9/w', { data_dir: join(mkdtempSync(join(tmpdir(), 'wms-workers-')), 'pglite') }));
  const { code, stderr } = await run(['serve', '--workers', '2', '--config', config]);
  assert.equal(code, 2);
  assert.match(stderr, /--workers needs PostgreSQL/);
  assert.equal((await run(['serve', '--workers', 'many', '--config', config])).code, 2);
});

skippable(describe, skipUnless(postgres ? undefined : 'TEST_DATABASE_URL is not set'))('serve --workers 2 on PostgreSQL', () => {
  let db: TestDatabase;
  let wiki: WikiOAuthDouble;
  let serve: Running;
  let issuer: string;
  let metricsUrl: string;

  beforeAll(async () => {
    db = await postgres!.open({ migrated: false });
    await db.close();
    const port = await freePort();
    const metricsPort = await freePort();
    issuer = `http://127.0.0.1:${port}`;
    metricsUrl = `http://127.0.0.1:${metricsPort}/metrics`;
    wiki = await WikiOAuthDouble.start({
      consumers: [{ clientId: WIKI_CONSUMER.key, clientSecret: WIKI_CONSUMER.secret, confidential: true, redirectUri: `${issuer}/wiki/callback`, grants: ['mwoauth-authonly'] }],
    });
    serve = start(['serve', '--workers', '2', '--config', writeConfig(base(port, wiki.baseUrl, { url: db.url }, metricsPort))]);
    await serve.waitFor(/"workers":2,"msg":"serving"/, 60_000);
  });
  afterAll(async () => {
    if (serve.child.exitCode === null) serve.child.kill('SIGKILL');
    await wiki.close();
    await db.dispose();
  });

  test('sign-ins hop between the workers and succeed; the metrics add both up; a worker that dies is replaced', async () => {
    const rp = await RelyingParty.discover(issuer);
    const names = ['Ярослава', 'נועה', '小明', 'Zoë', 'Ådne', 'Мирон', 'שירה', '美咲'];
    const signIn = async (i: number) => {
      wiki.nextLogin({ user: editor({ centralId: 9300 + i, username: names[i % names.length]! }) });
      const { request, back } = await rp.signIn(new Browser());
      const tokens = await rp.exchange(back.location!, request);
      // Two at once: the wiki double hands its scripted logins out in the order authorizations arrive.
      return (await client.fetchUserInfo(rp.config, tokens.access_token, client.skipSubjectCheck)).sub;
    };
    const subs: string[] = [];
    for (let batch = 0; batch < 4; batch++) subs.push(...(await Promise.all([0, 1].map((j) => signIn(batch * 2 + j)))));
    assert.deepEqual(subs.sort(), names.map((_, i) => String(9300 + i)).sort());

    const answered = new Set([...serve.output().matchAll(/"worker":(\d+),[^\n]*"msg":"request"/g)].map((m) => m[1]));
    assert.deepEqual([...answered].sort(), ['1', '2'], 'both workers answered requests');

    const metrics = await (await fetch(metricsUrl)).text();
    assert.match(metrics, /wms_tokens_issued_total\{grant_type="authorization_code"\} 8\b/);

    const children = (pid: number) => readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(' ').map(Number);
    const [victim] = children(serve.child.pid!);
    const mark = serve.mark();
    process.kill(victim!, 'SIGKILL');
    await serve.waitFor(/a serve worker exited; starting another/, 10_000, mark);
    await serve.waitFor(/"worker":3,[^\n]*"msg":"serving"/, 30_000, mark);
    assert.equal(await signIn(4), '9304');
  });

  test('SIGTERM stops every worker gracefully, then the primary', async () => {
    serve.child.kill('SIGTERM');
    const { code, stdout } = await serve.exited;
    assert.equal(code, 0);
    assert.equal([...stdout.matchAll(/"worker":\d+,[^\n]*"msg":"stopped"/g)].length, 2);
    assert.match(stdout.trim().split('\n').at(-1)!, /"msg":"stopped"/);
  });
});
