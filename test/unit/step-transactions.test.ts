// A step of the sign-in is answered only once its transaction has committed, and not at all (a
// plain 503, no redirect, no cookies) when the commit fails: the browser must never be sent on to
// a step that would not find what this one wrote.
import assert from 'node:assert/strict';
import { request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, it } from '@jest/globals';
import Koa from 'koa';
import { createLogger } from '../../src/log.ts';
import { currentUnitOfWork } from '../../src/db/unit-of-work.ts';
import { stepTransactions } from '../../src/oidc/steps.ts';

function get(port: number, path: string): Promise<{ status: number; headers: Record<string, unknown>; body: string; at: number }> {
  return new Promise((resolve, reject) => {
    request({ host: '127.0.0.1', port, path }, (res) => {
      let body = '';
      res.on('data', (chunk) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body, at: performance.now() }));
    })
      .on('error', reject)
      .end();
  });
}

describe('one transaction per step', () => {
  let server: ReturnType<Koa['listen']>;
  let port: number;
  let committedAt = 0;
  const events: string[] = [];

  beforeAll(async () => {
    const app = new Koa();
    app.use(stepTransactions(createLogger('silent')));
    app.use(async (ctx) => {
      const unit = currentUnitOfWork();
      if (ctx.path === '/auth/slow-commit') {
        // What the backend's transaction does, here on a timer: the commit takes 150 ms.
        await unit!.session(async () => ({
          commit: () => new Promise<void>((resolve) => setTimeout(() => ((committedAt = performance.now()), events.push('commit'), resolve()), 150)),
          rollback: async () => void events.push('rollback'),
        }));
        ctx.cookies.set('wms_session', 'fresh');
        ctx.redirect('/auth/next');
      } else if (ctx.path === '/auth/failed-commit') {
        await unit!.session(async () => ({ commit: () => Promise.reject(new Error('connection lost')), rollback: async () => {} }));
        ctx.cookies.set('wms_session', 'lost');
        ctx.redirect('/auth/next');
      } else if (ctx.path === '/auth/throws') {
        await unit!.session(async () => ({ commit: async () => void events.push('commit'), rollback: async () => void events.push('rollback') }));
        throw new Error('the step failed');
      } else {
        ctx.body = { unit: unit !== undefined };
      }
    });
    server = app.listen(0, '127.0.0.1');
    await new Promise((resolve) => server.once('listening', resolve));
    port = (server.address() as AddressInfo).port;
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  it('holds the redirect until the step has committed', async () => {
    const reply = await get(port, '/auth/slow-commit');
    assert.equal(reply.status, 302);
    assert.equal(reply.headers.location, '/auth/next');
    assert.ok(committedAt > 0 && reply.at >= committedAt, 'the answer came after the commit');
  });

  it('answers 503, without the redirect or its cookies, when the commit fails', async () => {
    const reply = await get(port, '/auth/failed-commit');
    assert.equal(reply.status, 503);
    assert.equal(reply.headers.location, undefined);
    assert.equal(reply.headers['set-cookie'], undefined);
    assert.match(reply.body, /could not save this step/);
  });

  it('rolls a failed step back instead of committing it', async () => {
    events.length = 0;
    const reply = await get(port, '/auth/throws');
    assert.equal(reply.status, 500);
    assert.deepEqual(events, ['rollback']);
  });

  it('leaves requests outside the sign-in (health, readiness, admin, and logout, which calls the relying parties) alone', async () => {
    assert.deepEqual(JSON.parse((await get(port, '/ready')).body), { unit: false });
    assert.deepEqual(JSON.parse((await get(port, '/session/end/confirm')).body), { unit: false });
    assert.deepEqual(JSON.parse((await get(port, '/authority')).body), { unit: false });
    assert.deepEqual(JSON.parse((await get(port, '/token')).body), { unit: true });
  });
});
