// Every statement a sign-in runs finds its rows through an index, on both backends. Twice: the
// login stores, the account and profile lookups and the provider's adapter driven through one
// sign-in's calls; and every statement the service sends during real sign-ins (the whole flow over
// HTTP, a first and a returning one, with a code exchange, userinfo and a refresh), as the
// database layer publishes them. Each statement is EXPLAINed with sequential scans priced out: one
// that still plans a Seq Scan has no index to use, and would read more rows the more people have
// signed in.
import assert from 'node:assert/strict';
import { afterAll, describe, test } from '@jest/globals';
import type { Database, Queryable } from '../../src/db/index.ts';
import { PostgresAccountRepository } from '../../src/identity/accounts.ts';
import { LocalpartPolicy } from '../../src/identity/localpart.ts';
import { AccountClaimsStore, WikiLoginStore, WikiProfileStore } from '../../src/login/store.ts';
import * as client from 'openid-client';
import { onStatement } from '../../src/db/statements.ts';
import { adapterFactory } from '../../src/oidc/adapter.ts';
import { backends, type TestDatabase } from '../support/backends.ts';
import { Browser } from '../support/browser.ts';
import { RelyingParty, editor, startStack } from '../support/login-stack.ts';

interface Statement {
  sql: string;
  params: readonly unknown[];
}

/** `db`, with every parameterised statement it runs kept in `log`. */
function recording(db: Database, log: Statement[]): Database {
  const record = (q: Queryable): Queryable => ({
    query: (sql, params = []) => {
      log.push({ sql, params });
      return q.query(sql, params);
    },
    exec: (sql) => q.exec(sql),
  });
  return { ...db, ...record(db), transaction: (fn) => db.transaction((tx) => fn(record(tx))), leaderLock: (name) => db.leaderLock(name), close: () => db.close() };
}

/** Statements that read or change rows (not transaction control, not `SELECT 1`). */
const touchesRows = (sql: string) => /\b(FROM|UPDATE|INTO|WHERE)\b/i.test(sql) && !/^\s*(BEGIN|COMMIT|ROLLBACK|SAVEPOINT|RELEASE)\b/i.test(sql);

/** The plan of a statement when the planner may not choose a sequential scan it could avoid. */
async function planOf(db: Database, { sql, params }: Statement): Promise<string> {
  return db.transaction(async (tx) => {
    await tx.query('SET LOCAL enable_seqscan = off');
    const { rows } = await tx.query<{ 'QUERY PLAN': string }>(`EXPLAIN ${sql}`, params);
    return rows.map((r) => r['QUERY PLAN']).join('\n');
  });
}

for (const backend of backends()) {
  describe(`query plans of a sign-in on ${backend.name}`, () => {
    const opened: TestDatabase[] = [];
    afterAll(() => Promise.all(opened.map((db) => db.dispose())));

    test('every lookup, update and delete of a sign-in uses an index', async () => {
      const db = await backend.open();
      opened.push(db);
      const log: Statement[] = [];
      const seen = recording(db, log);
      const now = () => new Date('2030-01-01T00:00:00Z');

      // One sign-in's calls, in the order the flow makes them.
      const Adapter = adapterFactory(seen, now);
      const sessions = new Adapter('Session');
      const interactions = new Adapter('Interaction');
      const codes = new Adapter('AuthorizationCode');
      await interactions.upsert('interaction-1', { uid: 'interaction-1' } as never, 600);
      await interactions.find('interaction-1');
      const logins = new WikiLoginStore(seen, now);
      await logins.start({ state: 'state-1', interactionUid: 'interaction-1', codeVerifier: 'v'.repeat(43), browserKey: 'browser-1', expiresAt: new Date('2030-01-01T00:10:00Z') });
      await logins.claimCallback('state-1', 'browser-1');
      // A replayed callback: the claim is refused, and the row read again to say why.
      await logins.claimCallback('state-1', 'browser-1');
      await logins.latestInteractionOf('browser-1');
      const claims = new AccountClaimsStore(seen, 'example.org');
      await claims.find('wiki.example', '42');
      const accounts = new PostgresAccountRepository(seen, { clock: now, localparts: new LocalpartPolicy({ serverName: 'example.org' }) });
      await accounts.upsertOnLogin({ wiki: 'wiki.example', centralId: '42', username: 'Ярослава' });
      await accounts.upsertOnLogin({ wiki: 'wiki.example', centralId: '42', username: 'Ярослава' });
      await new WikiProfileStore(seen).save('wiki.example', { centralId: '42', username: 'Ярослава', editCount: 1, registered: null, groups: [], blocked: false, emailVerified: false } as never, now());
      await interactions.find('interaction-1');
      await interactions.upsert('interaction-1', { uid: 'interaction-1', result: { login: { accountId: '42' } } } as never, 600);
      await claims.find('wiki.example', '42');
      await sessions.upsert('session-1', { uid: 'session-uid-1', accountId: 'wiki.example:42' } as never, 3600);
      await sessions.findByUid('session-uid-1');
      await codes.upsert('code-1', { grantId: 'grant-1' } as never, 60);
      await codes.find('code-1');
      await codes.consume('code-1');
      await interactions.destroy('interaction-1');
      await codes.revokeByGrantId('grant-1');

      const lookups = log.filter((s) => /^\s*(SELECT|UPDATE|DELETE)\b/i.test(s.sql) || /\bWHERE\b/i.test(s.sql));
      assert.ok(lookups.length >= 15, `a sign-in's statements were recorded (${lookups.length})`);
      const scans: string[] = [];
      for (const statement of lookups) {
        const plan = await planOf(db, statement);
        if (/Seq Scan/.test(plan)) scans.push(`${statement.sql.replace(/\s+/g, ' ').trim()}\n${plan}`);
      }
      assert.deepEqual(scans, [], `statements without an index:\n${scans.join('\n\n')}`);
    });

    test('every statement of real sign-ins through the service uses an index', async () => {
      let databaseUrl: string | undefined;
      let own: TestDatabase | undefined;
      if (backend.name === 'postgres') {
        own = await backend.open({ migrated: false });
        databaseUrl = own.url;
        await own.close();
      }
      const stack = await startStack({ ...(databaseUrl && { databaseUrl }) });
      try {
        const rp = await RelyingParty.discover(stack.issuer);
        const seen = new Map<string, Statement>();
        const stop = onStatement(({ sql, params }) => void (touchesRows(sql) && !seen.has(sql) && seen.set(sql, { sql, params })));
        try {
          for (const [centralId, username] of [[7001, 'Ярослава'], [7002, 'נועה'], [7001, 'Ярослава']] as const) {
            stack.wiki.login = { user: editor({ centralId, username }) };
            const { request, back } = await rp.signIn(new Browser());
            const tokens = await rp.exchange(back.location!, request);
            await client.fetchUserInfo(rp.config, tokens.access_token, String(centralId));
            await client.refreshTokenGrant(rp.config, tokens.refresh_token!);
          }
        } finally {
          stop();
        }
        const sent = [...seen.keys()].join('\n');
        for (const part of [/FROM wiki_logins|UPDATE wiki_logins/, /FROM accounts a LEFT JOIN wiki_profiles/, /INSERT INTO wiki_profiles/, /UPDATE oidc_payloads SET consumed_at/, /FROM oidc_payloads WHERE model = \$1 AND uid/]) {
          assert.match(sent, part, `a sign-in sends ${part}`);
        }
        const scans: string[] = [];
        for (const statement of seen.values()) {
          const plan = await planOf(stack.service.db, statement);
          if (/Seq Scan/.test(plan)) scans.push(`${statement.sql.replace(/\s+/g, ' ').trim()}\n${plan}`);
        }
        assert.deepEqual(scans, [], `statements without an index:\n${scans.join('\n\n')}`);
      } finally {
        await stack.stop();
        await own?.dispose();
      }
    });
  });
}
