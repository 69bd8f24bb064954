// `/metrics` (`metrics.port`) scraped the way Prometheus would, around real sign-ins through the
// provider and the wiki's OAuth double: the counters move by exactly what happened (a sign-in, a
// rule's refusal, a wiki outage, a refresh), and Node's process metrics are there.
import assert from 'node:assert/strict';
import { afterAll, beforeAll, describe, test } from '@jest/globals';
import * as client from 'openid-client';
import { Browser } from '../support/browser.ts';
import { RelyingParty, editor, startStack, type Stack } from '../support/login-stack.ts';
import { metricSample as sample } from '../support/metrics.ts';

describe('metrics', () => {
  let stack: Stack;
  let rp: RelyingParty;
  let url: string;
  const scrape = async () => {
    const response = await fetch(url);
    assert.equal(response.status, 200);
    assert.match(response.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
    return response.text();
  };

  beforeAll(async () => {
    stack = await startStack({ config: { metrics: { port: 0 }, login: { forbidden_groups: ['bot'] } } });
    rp = await RelyingParty.discover(stack.issuer);
    url = stack.service.metricsUrl!;
  });
  afterAll(async () => {
    await stack.stop();
  });

  test('served on loopback at /metrics only, with the process metrics', async () => {
    assert.match(url, /^http:\/\/127\.0\.0\.1:\d+\/metrics$/);
    const text = await scrape();
    for (const name of ['process_cpu_user_seconds_total', 'process_resident_memory_bytes', 'nodejs_heap_size_used_bytes', 'wms_worker_leader']) {
      assert.ok(text.includes(`\n${name}`) || text.startsWith(name), `${name} is exported`);
    }
    assert.equal((await fetch(new URL('/', url))).status, 404);
    assert.equal((await fetch(url, { method: 'POST' })).status, 404);
  });

  test('a sign-in, a refusal, a wiki outage and a refresh move exactly their counters', async () => {
    const before = await scrape();
    const count = (text: string, name: string, labels: Record<string, string>) => sample(text, name, labels) - sample(before, name, labels);

    stack.wiki.login = { user: editor({ centralId: 9301, username: 'Метрика Ок' }) };
    const { request, back } = await rp.signIn(new Browser());
    const tokens = await rp.exchange(back.location!, request);
    await client.refreshTokenGrant(rp.config, tokens.refresh_token!);

    stack.wiki.login = { user: editor({ centralId: 9302, username: 'בוט', groups: ['bot'] }) };
    { const refused = (await rp.signIn(new Browser())).back; assert.equal(refused.status, 403, refused.body.slice(0, 2000)); }

    stack.wiki.login = { user: editor({ centralId: 9303, username: '障害' }) };
    stack.wiki.fault('token', { kind: 'status', status: 503, body: 'down' }, 1);
    assert.equal((await rp.signIn(new Browser())).back.status, 502);

    const after = await scrape();
    assert.equal(count(after, 'wms_sign_ins_total', { outcome: 'signed_in', reason: '' }), 1);
    assert.equal(count(after, 'wms_sign_ins_total', { outcome: 'refused', reason: 'forbidden_group' }), 1);
    assert.equal(count(after, 'wms_sign_ins_total', { outcome: 'failed', reason: 'wiki_unavailable' }), 1);
    assert.equal(count(after, 'wms_tokens_issued_total', { grant_type: 'authorization_code' }), 1);
    assert.equal(count(after, 'wms_tokens_issued_total', { grant_type: 'refresh_token' }), 1);
    assert.equal(count(after, 'wms_wiki_request_duration_seconds_count', { api: 'oauth', endpoint: 'token' }), 3);
    assert.equal(count(after, 'wms_wiki_request_duration_seconds_count', { api: 'oauth', endpoint: 'profile' }), 2);
    assert.equal(count(after, 'wms_wiki_request_errors_total', { api: 'oauth', endpoint: 'token', error: 'upstream_unavailable' }), 1);
  });
});
