// Who is behind a wiki username, a Matrix ID or a central user id, for moderators and operators:
// the `whois` command and the admin API's lookup.
import type { Config } from '../config/load.ts';
import type { Database } from '../db/index.ts';
import { accountRepository, wikiIdOf } from '../compose.ts';
import type { Account } from '../identity/accounts.ts';
import { WikiProfileStore } from '../login/store.ts';
import { explicitGroups } from '../wiki/action-api-results.ts';

export interface WhoisAnswer {
  /** The Matrix ID the homeserver reported for the account, or else the one the service proposed. */
  matrix_id: string;
  /** Only when the homeserver gave another ID than `@<localpart>:<server>`. */
  proposed_matrix_id?: string;
  wiki: string;
  central_id: string;
  username: string;
  display_name: string;
  localpart_set_by?: string;
  created: string;
  last_login?: string;
  groups?: string[];
  edit_count?: number;
}

export async function whois(db: Database, config: Config, query: string): Promise<WhoisAnswer | undefined> {
  const wiki = wikiIdOf(config);
  const serverName = config.matrix.server_name;
  const accounts = accountRepository(db, config);
  const mxid = /^@([^:]+):(.+)$/.exec(query);
  const account: Account | undefined =
    mxid ? ((await accounts.findByMatrixUserId(query)) ?? (mxid[2] === serverName ? await accounts.findByLocalpart(mxid[1]!) : undefined))
    : /^[1-9][0-9]*$/.test(query) ? ((await accounts.findByCentralId(wiki, query)) ?? (await accounts.findByUsername(wiki, query)))
    : ((await accounts.findByUsername(wiki, query)) ?? (/^[a-z0-9._=/+-]+$/.test(query) ? await accounts.findByLocalpart(query) : undefined));
  if (!account) return undefined;
  const profile = await new WikiProfileStore(db).find(account.wiki, account.centralId);
  const proposed = `@${account.localpart}:${serverName}`;
  return {
    matrix_id: account.matrixUserId ?? proposed,
    ...(account.matrixUserId && account.matrixUserId !== proposed && { proposed_matrix_id: proposed }),
    wiki: account.wiki,
    central_id: account.centralId,
    username: account.username,
    display_name: account.displayName,
    ...(account.localpartOverride && { localpart_set_by: account.localpartOverride.actor }),
    created: account.createdAt.toISOString(),
    ...(account.lastLoginAt && { last_login: account.lastLoginAt.toISOString() }),
    ...(profile && { groups: explicitGroups(profile.groups), edit_count: profile.editCount }),
  };
}
