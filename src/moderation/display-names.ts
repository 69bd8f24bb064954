// A wiki rename reaches Matrix as a display name, without waiting for the person to sign in again.
// The rename is recorded with the account (`renamed_from`) when it is seen, in a log entry or in
// the account's own record; after each pass the names still pending are set through the Synapse
// admin API and only then marked done, so a homeserver outage delays a display name, never loses
// it. A display name the person chose themselves (anything but the old wiki name) is theirs and is
// left alone.
import type { AccountRepository } from '../identity/accounts.ts';
import type { Logger } from '../log.ts';
import type { MatrixGateway } from '../matrix/index.ts';

export interface DisplayNameOptions {
  gateway: Pick<MatrixGateway, 'userStatus' | 'setDisplayName'>;
  accounts: Pick<AccountRepository, 'renamesToFollow' | 'followedRename'>;
  wiki: string;
  log: Logger;
  /** Renames followed per call at most; the rest wait for the next. Default 100. */
  limit?: number;
}

export interface DisplayNameResult {
  /** Display names set to the new wiki name. */
  updated: number;
  /** Renames needing nothing: a display name of the person's own, no Matrix user yet, or the name already there. */
  unchanged: number;
  /** Renames left pending: the homeserver could not be reached, or this is a dry run. */
  pending: number;
}

/** Follows pending renames on the homeserver. Never throws for one account: it stays pending. */
export async function followRenames(options: DisplayNameOptions): Promise<DisplayNameResult> {
  const log = options.log.child({ component: 'display-names' });
  const result: DisplayNameResult = { updated: 0, unchanged: 0, pending: 0 };
  for (const account of await options.accounts.renamesToFollow(options.wiki, { limit: options.limit ?? 100 })) {
    const done = () => options.accounts.followedRename(account.wiki, account.centralId, account.username);
    const fields = { centralId: account.centralId, from: account.renamedFrom, to: account.username, userId: account.matrixUserId };
    // No Matrix user yet: the homeserver takes the name from the next sign-in's claims.
    if (account.matrixUserId === undefined) {
      await done();
      result.unchanged += 1;
      continue;
    }
    try {
      const status = await options.gateway.userStatus(account.matrixUserId);
      const current = status?.displayName ?? null;
      if (status === undefined || current === account.username || (current !== null && current !== account.renamedFrom)) {
        if (status !== undefined && current !== account.username) log.info({ ...fields, displayName: current }, 'renamed on the wiki; the Matrix display name is the person\'s own, so it is kept');
        await done();
        result.unchanged += 1;
        continue;
      }
      const outcome = await options.gateway.setDisplayName(account.matrixUserId, account.username);
      if (outcome !== 'applied') {
        result.pending += 1;
        continue;
      }
      await done();
      result.updated += 1;
      log.info(fields, 'renamed on the wiki: the Matrix display name follows');
    } catch (err) {
      result.pending += 1;
      log.warn({ ...fields, err }, 'could not set the display name of a renamed account; it is tried again after the next pass');
    }
  }
  return result;
}
