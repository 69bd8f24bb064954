// The Matrix ID the homeserver really gave each account. Synapse may have created another than
// `@<localpart>:<server>` (it suffixes a localpart taken by a user this service does not know, and
// versions before 0.2 sent localparts it escaped again), and it says which through its admin API
// (`GET /_synapse/admin/v1/auth_providers/<idp>/users/<sub>`). So, when the homeserver is Synapse,
// every account is acted on under that ID, read once and stored; an account the homeserver has
// never seen (the person signed in elsewhere, not to Matrix) is left out, never acted on under an
// invented ID. A lookup that fails (5xx, network) fails the pass, which is tried again.
import type { AccountRepository } from '../identity/accounts.ts';
import type { Logger } from '../log.ts';
import type { MatrixGateway } from '../matrix/index.ts';
import type { StateSource } from './worker.ts';
import type { WikiState } from './types.ts';

export interface MatrixIdOptions {
  gateway: Pick<MatrixGateway, 'userIdForExternalId'>;
  accounts: Pick<AccountRepository, 'recordMatrixUserId'>;
  /** The auth provider as Synapse names it (`oidc-<idp_id>`, `matrix.synapse_idp_id`). */
  authProvider: string;
  serverName: string;
  log: Logger;
  /** Lookups per pass at most; the accounts past it are left out until a later pass. Default 500. */
  maxLookups?: number;
}

/** `inner`'s states, each account with the homeserver's Matrix ID; accounts it has none for are left out. */
export function withHomeserverIds(inner: StateSource, options: MatrixIdOptions): StateSource {
  const resolve = (state: Promise<WikiState>) => state.then((s) => resolveIds(s, options));
  return {
    fullPass: () => resolve(inner.fullPass()),
    targeted: (usernames) => resolve(inner.targeted(usernames)),
    ...(inner.byUserIds && { byUserIds: (userIds: Iterable<string>) => resolve(inner.byUserIds!(userIds)) }),
  };
}

export async function resolveIds(state: WikiState, options: MatrixIdOptions): Promise<WikiState> {
  const log = options.log.child({ component: 'matrix-ids' });
  const maxLookups = options.maxLookups ?? 500;
  let lookups = 0;
  const users = [];
  let unseen = 0;
  let deferred = 0;
  for (const user of state.users) {
    const { account } = user;
    if (account.matrixUserId) {
      users.push(user);
      continue;
    }
    if (lookups >= maxLookups) {
      deferred += 1;
      continue;
    }
    lookups += 1;
    const userId = await options.gateway.userIdForExternalId(options.authProvider, account.centralId);
    await options.accounts.recordMatrixUserId(account.wiki, account.centralId, userId);
    if (userId === undefined) {
      unseen += 1;
      continue;
    }
    const proposed = `@${account.localpart}:${options.serverName}`;
    if (userId !== proposed) {
      log.warn({ centralId: account.centralId, username: account.username, proposed, homeserver: userId }, 'the homeserver gave this account another Matrix ID than the service proposed; moderation acts on the homeserver\'s');
    }
    users.push({ ...user, account: { ...account, matrixUserId: userId } });
  }
  if (unseen > 0) log.info({ accounts: unseen }, 'accounts that never signed in to the homeserver are left out of moderation until they do');
  if (deferred > 0) log.warn({ accounts: deferred, maxLookups }, 'more accounts without a known Matrix ID than one pass looks up: the rest are left out until a later pass');
  // Leaving accounts out of a full pass is sound: the service did nothing for them, so nothing is undone.
  return { ...state, users };
}
