// Whom an operator means: a wiki username (any spelling MediaWiki accepts), a Matrix ID, a
// localpart or a central user id, looked up the way `whois` does it.
import { accountRepository, wikiIdOf } from '../compose.ts';
import type { Config } from '../config/load.ts';
import type { Queryable } from '../db/index.ts';
import type { Account } from '../identity/accounts.ts';

export type Person = Account;

export async function findPerson(db: Queryable, config: Config, query: string): Promise<Person | undefined> {
  const q = query.trim();
  if (!q) return undefined;
  const wiki = wikiIdOf(config);
  const accounts = accountRepository(db, config);
  const mxid = /^@([^:]+):(.+)$/.exec(q);
  if (mxid) return (await accounts.findByMatrixUserId(q)) ?? (mxid[2] === config.matrix.server_name ? accounts.findByLocalpart(mxid[1]!) : undefined);
  if (/^[1-9][0-9]*$/.test(q)) return (await accounts.findByCentralId(wiki, q)) ?? accounts.findByUsername(wiki, q);
  return (await accounts.findByUsername(wiki, q)) ?? (/^[a-z0-9._=/+-]+$/.test(q) ? accounts.findByLocalpart(q) : undefined);
}
