// Who is behind a wiki username, a Matrix ID or a central user id, for moderators and operators:
// the `whois` command and the admin API's lookup.
import type { Config } from '../config/load.ts';
import type { Database } from '../db/index.ts';
import { WikiProfileStore } from '../login/store.ts';
import { explicitGroups } from '../wiki/action-api-results.ts';
import { findAccount } from './read.ts';

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
  const serverName = config.matrix.server_name;
  const account = await findAccount({ config, db }, query);
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
