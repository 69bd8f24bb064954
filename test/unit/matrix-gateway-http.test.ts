// The gateway's HTTP behaviour against a scripted homeserver on loopback: rate-limit waits,
// bounded retries, error mapping, "already in the desired state", transaction ids, counting.
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, beforeEach, describe, test } from '@jest/globals';
import pino from 'pino';
import { ABORTED, BAD_RESPONSE, MatrixError, NETWORK_ERROR } from '../../src/matrix/errors.ts';
import { SdkMatrixGateway, type SdkGatewayOptions } from '../../src/matrix/sdk-gateway.ts';

interface Seen {
  method: string;
  path: string;
  body: unknown;
  authorization: string | undefined;
  at: number;
}

type Reply = { status: number; body?: unknown; headers?: Record<string, string>; raw?: string } | 'hang';

/** Answers each request with the next scripted reply, or 200 `{}` when the script is empty. */
function scriptedHomeserver() {
  const script: Reply[] = [];
  const seen: Seen[] = [];
  const hanging: ServerResponse[] = [];
  const server = createServer(async (req: IncomingMessage, res: ServerResponse) => {
    let text = '';
    for await (const chunk of req) text += chunk;
    seen.push({ method: req.method ?? '', path: decodeURIComponent(req.url ?? ''), body: text ? JSON.parse(text) : undefined, authorization: req.headers.authorization, at: Date.now() });
    const reply = script.shift() ?? { status: 200, body: {} };
    if (reply === 'hang') {
      hanging.push(res);
      return;
    }
    const body = reply.raw ?? JSON.stringify(reply.body ?? {});
    res.writeHead(reply.status, { 'content-type': reply.raw ? 'text/html' : 'application/json', ...reply.headers }).end(body);
  });
  return {
    script,
    seen,
    server,
    async start() {
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    },
    async stop() {
      for (const res of hanging) res.destroy();
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

const silent = pino({ level: 'silent' });
const fast = { maxAttempts: 4, baseDelayMs: 10, maxDelayMs: 40, maxRateLimitWaitMs: 2_000 };
const ROOM = '!room:example.org';
const USER = '@user:example.org';

describe('SdkMatrixGateway over HTTP', () => {
  const hs = scriptedHomeserver();
  let baseUrl = '';
  const gateway = (options: Partial<SdkGatewayOptions> = {}) =>
    new SdkMatrixGateway({ baseUrl, accessToken: 'secret-token', logger: silent, retry: fast, ...options });

  beforeAll(async () => {
    baseUrl = await hs.start();
  });
  afterAll(() => hs.stop());
  beforeEach(() => {
    hs.script.length = 0;
    hs.seen.length = 0;
  });

  test('M_LIMIT_EXCEEDED: waits retry_after_ms, then retries with the same transaction id', async () => {
    hs.script.push({ status: 429, body: { errcode: 'M_LIMIT_EXCEEDED', error: 'Too Many Requests', retry_after_ms: 300 } });
    const gw = gateway();
    assert.equal(await gw.sendNotice(ROOM, 'hello', '<b>hello</b>'), 'applied');
    assert.equal(hs.seen.length, 2);
    const [first, second] = hs.seen as [Seen, Seen];
    assert.ok(second.at - first.at >= 290, `waited ${second.at - first.at} ms`);
    assert.equal(first.path, second.path);
    assert.match(first.path, /^\/_matrix\/client\/v3\/rooms\/!room:example.org\/send\/m.room.message\/wms\.[0-9a-f-]{36}$/);
    assert.equal(first.method, 'PUT');
    assert.deepEqual(second.body, { msgtype: 'm.notice', body: 'hello', format: 'org.matrix.custom.html', formatted_body: '<b>hello</b>' });
    assert.equal(first.authorization, 'Bearer secret-token');
    assert.equal(gw.requestCount, 2);
    assert.equal(gw.retryCount, 1);
  });

  test('429 with only a Retry-After header waits that many seconds', async () => {
    hs.script.push({ status: 429, body: { errcode: 'M_LIMIT_EXCEEDED', error: 'slow down' }, headers: { 'retry-after': '1' } });
    await gateway().ban(ROOM, USER, 'r');
    const [first, second] = hs.seen as [Seen, Seen];
    assert.ok(second.at - first.at >= 990, `waited ${second.at - first.at} ms`);
  });

  test('a rate-limit wait longer than allowed fails at once, retryable, with the wait asked', async () => {
    hs.script.push({ status: 429, body: { errcode: 'M_LIMIT_EXCEEDED', error: 'later', retry_after_ms: 120_000 } });
    const error = await gateway().ban(ROOM, USER, 'r').catch((e: unknown) => e);
    assert.ok(error instanceof MatrixError);
    assert.equal(error.errcode, 'M_LIMIT_EXCEEDED');
    assert.equal(error.status, 429);
    assert.equal(error.retryable, true);
    assert.equal(error.retryAfterMs, 120_000);
    assert.equal(hs.seen.length, 1);
  });

  test('5xx (Matrix JSON or a proxy page) is retried with back-off until it works', async () => {
    hs.script.push({ status: 502, raw: '<html>Bad Gateway</html>' }, { status: 503, body: { errcode: 'M_UNKNOWN', error: 'busy' } });
    const gw = gateway();
    assert.equal(await gw.kick(ROOM, USER, 'bye'), 'applied');
    assert.equal(gw.requestCount, 3);
    assert.deepEqual(hs.seen.map((s) => s.path), Array(3).fill(`/_matrix/client/v3/rooms/${ROOM}/kick`));
    assert.deepEqual(hs.seen[2]?.body, { user_id: USER, reason: 'bye' });
  });

  test('persistent 5xx gives up after maxAttempts with a retryable error', async () => {
    hs.script.push(...Array(4).fill({ status: 500, body: { errcode: 'M_UNKNOWN', error: 'boom' } }));
    const error = await gateway().unban(ROOM, USER).catch((e: unknown) => e);
    assert.ok(error instanceof MatrixError);
    assert.equal(error.status, 500);
    assert.equal(error.retryable, true);
    assert.match(error.message, /^Matrix unban: 500 M_UNKNOWN: boom$/);
    assert.equal(hs.seen.length, 4);
  });

  test('M_FORBIDDEN (lacking power) is not retried and is not mistaken for "already done"', async () => {
    hs.script.push(
      { status: 403, body: { errcode: 'M_FORBIDDEN', error: 'You don\'t have permission to ban' } },
      { status: 200, body: { membership: 'join' } },
    );
    const error = await gateway().ban(ROOM, USER, 'r').catch((e: unknown) => e);
    assert.ok(error instanceof MatrixError);
    assert.equal(error.errcode, 'M_FORBIDDEN');
    assert.equal(error.status, 403);
    assert.equal(error.retryable, false);
    assert.deepEqual(hs.seen.map((s) => `${s.method} ${s.path}`), [
      `POST /_matrix/client/v3/rooms/${ROOM}/ban`,
      `GET /_matrix/client/v3/rooms/${ROOM}/state/m.room.member/${USER}`,
    ]);
  });

  test('a refusal because the target is already where we want it is "unchanged"', async () => {
    hs.script.push({ status: 403, body: { errcode: 'M_BAD_STATE', error: 'Cannot unban user who was not banned' } }, { status: 200, body: { membership: 'leave' } });
    assert.equal(await gateway().unban(ROOM, USER), 'unchanged');
    hs.script.push({ status: 403, body: { errcode: 'M_FORBIDDEN', error: 'The target user is not in the room' } }, { status: 404, body: { errcode: 'M_NOT_FOUND', error: 'no event' } });
    assert.equal(await gateway().kick(ROOM, USER, 'r'), 'unchanged');
  });

  test('no answer: network errors and timeouts are retried, then reported as such', async () => {
    const refused = new SdkMatrixGateway({ baseUrl: 'http://127.0.0.1:1', accessToken: 't', logger: silent, retry: fast });
    const error = await refused.whoami().catch((e: unknown) => e);
    assert.ok(error instanceof MatrixError);
    assert.equal(error.errcode, NETWORK_ERROR);
    assert.equal(error.status, 0);
    assert.equal(error.retryable, true);
    assert.equal(refused.requestCount, 4);

    hs.script.push('hang', { status: 200, body: { user_id: '@bot:example.org' } });
    const slow = gateway({ requestTimeoutMs: 200 });
    assert.equal(await slow.whoami(), '@bot:example.org');
    assert.equal(slow.requestCount, 2);
  });

  test('shutting down ends a rate-limit wait at once', async () => {
    hs.script.push({ status: 429, body: { errcode: 'M_LIMIT_EXCEEDED', error: 'wait', retry_after_ms: 1_500 } });
    const controller = new AbortController();
    const started = Date.now();
    const pending = gateway({ signal: controller.signal }).ban(ROOM, USER, 'r').catch((e: unknown) => e);
    setTimeout(() => controller.abort(), 100);
    const error = await pending;
    assert.ok(error instanceof MatrixError);
    assert.equal(error.errcode, ABORTED);
    assert.equal(error.retryable, false);
    assert.ok(Date.now() - started < 1_000);
  });

  test('snapshot: whoami once, then one request per room', async () => {
    hs.script.push({ status: 200, body: { user_id: '@bot:example.org' } });
    const gw = gateway();
    for (let i = 0; i < 3; i++) {
      hs.script.push({
        status: 200,
        body: [
          { type: 'm.room.create', state_key: '', sender: '@bot:example.org', content: { room_version: '11' } },
          { type: 'm.room.member', state_key: USER, sender: '@bot:example.org', content: { membership: 'ban', reason: 'spam' } },
        ],
      });
      const snapshot = await gw.roomSnapshot(`!r${i}:example.org`);
      assert.equal(snapshot.botUserId, '@bot:example.org');
      assert.deepEqual(snapshot.bans.get(USER), { reason: 'spam', sender: '@bot:example.org' });
    }
    assert.equal(gw.requestCount, 4);
    assert.deepEqual(hs.seen.map((s) => s.path), [
      '/_matrix/client/v3/account/whoami',
      '/_matrix/client/v3/rooms/!r0:example.org/state',
      '/_matrix/client/v3/rooms/!r1:example.org/state',
      '/_matrix/client/v3/rooms/!r2:example.org/state',
    ]);
  });

  test('a bad token is not retried, and a failed whoami is asked again next time', async () => {
    hs.script.push({ status: 401, body: { errcode: 'M_UNKNOWN_TOKEN', error: 'Invalid access token passed.' } }, { status: 200, body: { user_id: '@bot:example.org' } });
    const gw = gateway();
    const error = await gw.whoami().catch((e: unknown) => e);
    assert.ok(error instanceof MatrixError);
    assert.equal(error.errcode, 'M_UNKNOWN_TOKEN');
    assert.equal(error.retryable, false);
    assert.equal(await gw.whoami(), '@bot:example.org');
    assert.equal(await gw.whoami(), '@bot:example.org');
    assert.equal(gw.requestCount, 2);
  });

  test('a malformed answer is a non-retryable bad response', async () => {
    hs.script.push({ status: 200, body: { not: 'a list' } });
    const error = await gateway({ userId: '@bot:example.org' }).roomSnapshot(ROOM).catch((e: unknown) => e);
    assert.ok(error instanceof MatrixError);
    assert.equal(error.errcode, BAD_RESPONSE);
    assert.equal(error.retryable, false);
    assert.equal(hs.seen.length, 1);
  });

  test('admin API paths, and not-found answers as undefined', async () => {
    hs.script.push({ status: 200, body: {} }, { status: 404, body: { errcode: 'M_NOT_FOUND', error: 'User not found' } }, { status: 404, body: { errcode: 'M_NOT_FOUND', error: 'no alias' } });
    const gw = gateway();
    assert.equal(await gw.suspend(USER, true), 'applied');
    assert.equal(await gw.userStatus(USER), undefined);
    assert.equal(await gw.resolveAlias('#nope:example.org'), undefined);
    assert.deepEqual(hs.seen.map((s) => `${s.method} ${s.path}`), [
      `PUT /_synapse/admin/v1/suspend/${USER}`,
      `GET /_synapse/admin/v2/users/${USER}`,
      'GET /_matrix/client/v3/directory/room/#nope:example.org',
    ]);
    assert.deepEqual(hs.seen[0]?.body, { suspend: true });
  });

  describe('the Matrix ID behind an external id (GET /_synapse/admin/v1/auth_providers/<idp>/users/<sub>)', () => {
    test('found: the homeserver\'s ID, which may differ from the localpart we proposed', async () => {
      hs.script.push({ status: 200, body: { user_id: '@=3dc3=3d86sir_2:example.org' } });
      assert.equal(await gateway().userIdForExternalId('oidc-wikimedia', '42'), '@=3dc3=3d86sir_2:example.org');
      assert.deepEqual(hs.seen.map((s) => `${s.method} ${s.path}`), ['GET /_synapse/admin/v1/auth_providers/oidc-wikimedia/users/42']);
      assert.equal(hs.seen[0]?.authorization, 'Bearer secret-token');
    });

    test('404 M_NOT_FOUND: never signed in, answered as undefined', async () => {
      hs.script.push({ status: 404, body: { errcode: 'M_NOT_FOUND', error: 'User not found' } });
      assert.equal(await gateway().userIdForExternalId('oidc-wikimedia', '7'), undefined);
    });

    test('an external id with reserved characters is one path segment', async () => {
      hs.script.push({ status: 404, body: { errcode: 'M_NOT_FOUND', error: 'User not found' } });
      await gateway().userIdForExternalId('oidc-wiki/media', 'a/b?c#d');
      assert.equal(hs.seen[0]?.path.startsWith('/_synapse/admin/v1/auth_providers/oidc-wiki/media/users/a/b?c#d'), true);
      assert.equal(hs.seen.length, 1);
    });

    test('5xx and network failures are errors, never "never signed in"', async () => {
      hs.script.push({ status: 502, raw: '<html>bad gateway</html>' }, { status: 500, body: { errcode: 'M_UNKNOWN', error: 'boom' } });
      const error = await gateway({ retry: { ...fast, maxAttempts: 2 } }).userIdForExternalId('oidc-wikimedia', '1').catch((e: unknown) => e);
      assert.ok(error instanceof MatrixError);
      assert.equal(error.status, 500);
      assert.equal(hs.seen.length, 2);
      const down = await new SdkMatrixGateway({ baseUrl: 'http://127.0.0.1:9', accessToken: 't', logger: silent, retry: { ...fast, maxAttempts: 1 } })
        .userIdForExternalId('oidc-wikimedia', '1')
        .catch((e: unknown) => e);
      assert.ok(down instanceof MatrixError);
      assert.equal(down.errcode, NETWORK_ERROR);
    });

    test('the bot is no server admin (403), or the endpoint is unknown (404 M_UNRECOGNIZED): errors', async () => {
      hs.script.push({ status: 403, body: { errcode: 'M_FORBIDDEN', error: 'You are not a server admin' } }, { status: 404, body: { errcode: 'M_UNRECOGNIZED', error: 'Unrecognized request' } });
      const forbidden = await gateway().userIdForExternalId('oidc-wikimedia', '1').catch((e: unknown) => e);
      assert.ok(forbidden instanceof MatrixError && forbidden.errcode === 'M_FORBIDDEN');
      const unknown = await gateway().userIdForExternalId('oidc-wikimedia', '1').catch((e: unknown) => e);
      assert.ok(unknown instanceof MatrixError && unknown.errcode === 'M_UNRECOGNIZED');
    });

    test('an answer without a Matrix ID is a bad response', async () => {
      hs.script.push({ status: 200, body: { user_id: 'not-an-mxid' } });
      const error = await gateway().userIdForExternalId('oidc-wikimedia', '1').catch((e: unknown) => e);
      assert.ok(error instanceof MatrixError && error.errcode === BAD_RESPONSE);
    });
  });

  test('display name through the admin API', async () => {
    const gw = gateway();
    assert.equal(await gw.setDisplayName(USER, 'Ærsir'), 'applied');
    assert.deepEqual(hs.seen.map((s) => `${s.method} ${s.path}`), [`PUT /_synapse/admin/v2/users/${USER}`]);
    assert.deepEqual(hs.seen[0]?.body, { displayname: 'Ærsir' });
  });
});
