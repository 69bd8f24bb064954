// On PostgreSQL, each request of a sign-in is at most one transaction (the wiki callback two: its
// claim is committed before the wiki is asked), counted from the statements the service sends.
import assert from 'node:assert/strict';
import { afterAll, beforeAll, describe, test } from '@jest/globals';
import * as client from 'openid-client';
import { onStatement } from '../../src/db/statements.ts';
import { backends, type TestDatabase } from '../support/backends.ts';
import { Browser, type Hop } from '../support/browser.ts';
import { RelyingParty, editor, startStack, type Stack } from '../support/login-stack.ts';
import { skipUnless } from '../support/real-parts.ts';
import { skippable } from '../support/suites.ts';

const postgres = backends().find((b) => b.name === 'postgres');

/** A browser that notes each request it makes in `log`, so statements can be put to the step that sent them. */
class NotingBrowser extends Browser {
  readonly log: string[];
  constructor(log: string[]) {
    super();
    this.log = log;
  }
  override async request(url: string | URL, init: { method?: string; form?: Record<string, string> } = {}): Promise<Hop> {
    this.log.push(`>> ${new URL(url).pathname.replace(/^\/(auth|interaction)\/[^/]+/, '/$1/:uid')}`);
    return super.request(url, init);
  }
}

/** Transactions per step: a BEGIN … COMMIT is one, and so is each statement outside one. */
function transactionsPerStep(log: string[]): Map<string, number> {
  const steps = new Map<string, number>();
  let step = '(before)';
  let depth = 0;
  for (const line of log) {
    if (line.startsWith('>> ')) {
      step = line.slice(3);
      steps.set(step, steps.get(step) ?? 0);
      continue;
    }
    if (/^BEGIN/.test(line)) {
      if (depth++ === 0) steps.set(step, (steps.get(step) ?? 0) + 1);
    } else if (/^(COMMIT|ROLLBACK)/.test(line)) depth--;
    else if (depth === 0) steps.set(step, (steps.get(step) ?? 0) + 1);
  }
  return steps;
}

skippable(describe, skipUnless(postgres ? undefined : 'TEST_DATABASE_URL is not set'))('transactions of a sign-in on PostgreSQL', () => {
  let stack: Stack;
  let db: TestDatabase;
  beforeAll(async () => {
    db = await postgres!.open({ migrated: false });
    await db.close();
    stack = await startStack({ databaseUrl: db.url! });
  });
  afterAll(async () => {
    await stack.stop();
    await db.dispose();
  });

  test('one transaction per step, two for the wiki callback; a returning person the same', async () => {
    const rp = await RelyingParty.discover(stack.issuer);
    for (const round of ['first sign-in', 'returning']) {
      const log: string[] = [];
      const stop = onStatement(({ sql }) => void log.push(sql.trim()));
      try {
        stack.wiki.login = { user: editor({ centralId: 9100, username: 'Ṣàngó Ọlọ́run' }) };
        const { request, back } = await rp.signIn(new NotingBrowser(log));
        log.push('>> /token');
        const tokens = await rp.exchange(back.location!, request);
        log.push('>> /me');
        await client.fetchUserInfo(rp.config, tokens.access_token, '9100');
      } finally {
        stop();
      }
      const steps = transactionsPerStep(log);
      const total = [...steps.values()].reduce((a, b) => a + b, 0);
      for (const [step, count] of steps) assert.ok(count <= (step === '/wiki/callback' ? 2 : 1), `${round}: ${step} took ${count} transactions\n${log.join('\n')}`);
      assert.ok(total <= 10, `${round}: ${total} transactions`);
      assert.ok(steps.has('/wiki/callback') && steps.has('/token') && steps.has('/me'), [...steps.keys()].join(', '));
    }
  });
});
