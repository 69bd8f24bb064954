// When the database goes away mid-sign-in, what fails is logged as one structured line through
// the service's logger; nothing is printed around it (Koa, which the provider is, prints a bare
// stack trace for what escapes it unless someone listens).
import assert from 'node:assert/strict';
import { test } from '@jest/globals';
import { Browser } from '../support/browser.ts';
import { RelyingParty, RP_CALLBACK, editor, startStack } from '../support/login-stack.ts';

test('the database gone mid-sign-in: an error page, nothing printed outside the logger', async () => {
  const stack = await startStack();
  const printed: unknown[][] = [];
  const original = { error: console.error, warn: console.warn, log: console.log };
  try {
    const rp = await RelyingParty.discover(stack.issuer);
    stack.wiki.login = { user: editor({ centralId: 9950, username: 'Unlucky Timing' }) };
    const browser = new Browser();
    const request = await rp.authorizationRequest();
    console.error = console.warn = console.log = (...args: unknown[]) => void printed.push(args);
    await stack.service.db.close();
    const end = await browser.follow(request.url, { stopAt: (u) => u.href.startsWith(RP_CALLBACK) });
    assert.ok(end.status >= 400 || end.location, `an answer, not a hang: ${end.status}`);
    assert.doesNotMatch(end.body, /^\s*\{/, 'no bare JSON for a browser');
    assert.deepEqual(printed, [], 'nothing printed outside the structured logger');
  } finally {
    Object.assign(console, original);
    await stack.stop().catch(() => {});
  }
});
