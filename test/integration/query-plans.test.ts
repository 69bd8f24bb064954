// Every statement a sign-in runs finds its rows through an index, on both backends: the login
// stores, the account and profile lookups, and the provider's adapter are driven through one
// sign-in's calls while their SQL is recorded, and each recorded statement is EXPLAINed with
// sequential scans priced out. A statement that still plans a Seq Scan has no index to use, and
// would read more rows the more people have signed in.
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import type { Database, Queryable } from '../../src/db/index.ts';
import { PostgresAccountRepository } from '../../src/identity/accounts.ts';
import { LocalpartPolicy } from '../../src/identity/localpart.ts';
import { WikiLoginStore, WikiProfileStore } from '../../src/login/store.ts';
import { adapterFactory } from '../../src/oidc/adapter.ts';
import { backends, type TestDatabase } from '../support/backends.ts';

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
    after(() => Promise.all(opened.map((db) => db.dispose())));

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
      const accounts = new PostgresAccountRepository(seen, { clock: now, localparts: new LocalpartPolicy({ serverName: 'example.org' }) });
      await accounts.upsertOnLogin({ wiki: 'wiki.example', centralId: '42', username: 'Ярослава' });
      await accounts.upsertOnLogin({ wiki: 'wiki.example', centralId: '42', username: 'Ярослава' });
      await new WikiProfileStore(seen).save('wiki.example', { centralId: '42', username: 'Ярослава', editCount: 1, registered: null, groups: [], blocked: false, emailVerified: false } as never, now());
      await interactions.find('interaction-1');
      await interactions.upsert('interaction-1', { uid: 'interaction-1', result: { login: { accountId: '42' } } } as never, 600);
      await accounts.findByCentralId('wiki.example', '42');
      await new WikiProfileStore(seen).find('wiki.example', '42');
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
  });
}
