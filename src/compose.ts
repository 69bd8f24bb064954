// The pieces several commands build from configuration, built one way.
import type { Config } from './config/load.ts';
import type { Queryable } from './db/index.ts';
import { PostgresAccountRepository } from './identity/accounts.ts';
import { LocalpartPolicy } from './identity/localpart.ts';
import type { Logger } from './log.ts';
import { VERSION } from './version.ts';
import { ActionApiClient, buildUserAgent } from './wiki/action-api.ts';

/** The key accounts are stored under: `identity.wiki_id`, or the host of the wiki. */
export const wikiIdOf = (config: Config): string => config.identity.wiki_id ?? new URL(config.wiki.base_url).hostname;

export function accountRepository(db: Queryable, config: Config, clock: () => Date = () => new Date()): PostgresAccountRepository {
  const { reserved_names: reservedNames, reserved_prefixes: reservedPrefixes } = config.identity;
  return new PostgresAccountRepository(db, { clock, localparts: new LocalpartPolicy({ serverName: config.matrix.server_name, reservedNames, reservedPrefixes }) });
}

/** The User-Agent for every request to the wiki; throws when `wiki.contact` is empty (Wikimedia policy). */
export const wikiUserAgent = (config: Config): string => buildUserAgent(config.wiki.contact, VERSION);

export function actionApiClient(config: Config, log: Logger, fetchImpl?: typeof globalThis.fetch): ActionApiClient {
  const w = config.wiki;
  return new ActionApiClient({
    apiUrl: w.api_url ?? `${w.base_url}/api.php`,
    userAgent: wikiUserAgent(config),
    timeoutMs: w.timeout * 1000,
    maxlag: w.maxlag,
    maxRetries: w.max_retries,
    ...(w.api_user && w.api_password && { login: { username: w.api_user, password: w.api_password } }),
    logger: log,
    ...(fetchImpl && { fetch: fetchImpl }),
  });
}
