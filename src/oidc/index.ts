// Assembles the provider and the sign-in routes from configuration and storage.
import type Router from '@koa/router';
import type { Middleware } from 'koa';
import type Provider from 'oidc-provider';
import type { Config } from '../config/load.ts';
import type { Database } from '../db/index.ts';
import { accountRepository, actionApiClient, wikiIdOf, wikiUserAgent } from '../compose.ts';
import type { Logger } from '../log.ts';
import { AccountClaimsStore, WikiLoginStore, WikiProfileStore } from '../login/store.ts';
import { staticAssets } from '../views/index.ts';
import { WikiOAuthClient } from '../wiki/oauth.ts';
import { adapterFactory, startPurgeJob } from './adapter.ts';
import { mountInteractions } from './interactions.ts';
import { SigningKeyStore } from './keys.ts';
import { createPages } from './pages.ts';
import { createGuards } from './guards.ts';
import { stepTransactions } from './steps.ts';
import { createProvider } from './provider.ts';

/** The tables every sign-in writes. */
const EMBEDDED_VACUUM = ['oidc_payloads', 'wiki_logins', 'accounts', 'wiki_profiles'];

export interface OidcDeps {
  config: Config;
  db: Database;
  log: Logger;
  clock?: () => Date;
  /** For tests: how the service reaches the wiki. */
  fetch?: typeof globalThis.fetch;
  /** Told what start-up is doing (`dev` prints it). */
  progress?: (step: string) => void;
}

export interface Oidc {
  /** The provider itself, for relying parties in this process (the admin pages). */
  provider: Provider;
  /** Served before the routes: the pages' stylesheet, and one transaction per step of the sign-in. */
  middleware: Middleware[];
  routes(router: Router): void;
  /** oidc-provider's own endpoints: discovery, authorization, token, userinfo, JWKS, logout… */
  fallback: Middleware;
  stop(): Promise<void>;
}

export async function createOidc(deps: OidcDeps): Promise<Oidc> {
  const { config, db, log } = deps;
  const clock = deps.clock ?? (() => new Date());
  const keys = new SigningKeyStore(db, { secret: config.oidc.key_encryption_secret, clock });
  if (await keys.ensure()) deps.progress?.('created the signing keys');
  deps.progress?.('loading the signing keys');
  const jwks = await keys.load();

  const accounts = accountRepository(db, config, clock);
  const profiles = new WikiProfileStore(db);
  const logins = new WikiLoginStore(db, clock);
  const pages = createPages(config);
  const wikiId = wikiIdOf(config);

  // The schema requires wiki.contact with client_id, so the User-Agent can be built when both exist.
  const { wiki: w } = config;
  const fetchImpl = deps.fetch ?? globalThis.fetch;
  const wiki = w.client_id
    ? new WikiOAuthClient({ baseUrl: w.base_url, clientId: w.client_id, clientSecret: w.client_secret, scopes: w.scopes, userAgent: wikiUserAgent(config), timeoutMs: w.timeout * 1000, fetch: fetchImpl })
    : undefined;
  const actionApi = w.client_id ? actionApiClient(config, log, fetchImpl) : undefined;
  if (!wiki) log.warn('wiki.client_id is not set: people cannot sign in until the wiki OAuth consumer is configured');

  const claims = new AccountClaimsStore(db, config.matrix.server_name);
  const provider = createProvider({ config, wikiId, adapter: adapterFactory(db, clock), jwks, claims, pages, log });
  const callback = provider.callback();
  const guard = createGuards(config);
  const purge = startPurgeJob(db, { intervalMs: 10 * 60_000, log, clock });
  const purgeLogins = setInterval(() => void logins.purgeExpired().catch((error) => log.error({ err: error }, 'purging sign-ins failed')), 10 * 60_000);
  purgeLogins.unref();
  // PGlite has no autovacuum: the sign-in tables, written at every sign-in, would only grow, and
  // their statistics never be gathered. A few milliseconds every ten minutes (the one connection
  // waits meanwhile; on 100,000 accounts, a fraction of a second).
  const vacuum =
    db.kind === 'pglite'
      ? setInterval(() => {
          const started = performance.now();
          db.exec(`VACUUM (ANALYZE) ${EMBEDDED_VACUUM.join(', ')}`).then(
            () => log.debug({ ms: Math.round(performance.now() - started) }, 'vacuumed the embedded database'),
            (error: unknown) => log.error({ err: error }, 'vacuuming the embedded database failed; trying again in ten minutes'),
          );
        }, 10 * 60_000)
      : undefined;
  vacuum?.unref();

  return {
    provider,
    middleware: [staticAssets(), stepTransactions(log)],
    routes(router) {
      mountInteractions(router, { provider, config, wikiId, wiki, actionApi, logins, accounts, profiles, claims, pages, clock, log });
    },
    fallback: async (ctx) => {
      const { req, answered } = await guard(ctx);
      if (answered) return;
      ctx.respond = false;
      await callback(req, ctx.res);
    },
    async stop() {
      clearInterval(purgeLogins);
      clearInterval(vacuum);
      await purge.stop();
    },
  };
}

