import { adminApiRoutes } from '../admin/api.ts';
import { adminPageRoutes } from '../admin/pages.ts';
import { withAdminClient } from '../admin/session.ts';
import { listenForMetrics, metricsRegistry, type MetricsListener } from '../metrics/index.ts';
import type { Config } from '../config/load.ts';
import type { Database } from '../db/index.ts';
import type Router from '@koa/router';
import type Koa from 'koa';
import { createApp } from '../http/app.ts';
import { listen, type RunningServer } from '../http/server.ts';
import type { Logger } from '../log.ts';
import { createOidc, type Oidc } from '../oidc/index.ts';
import { openMigratedDatabase } from './common.ts';
import { startWorkerOn, type Worker } from './worker.ts';

export interface Service {
  url: string;
  /** Where Prometheus scrapes this process (`metrics.port`). */
  metricsUrl: string | undefined;
  db: Database;
  /** The app's request handler, for tests that drive it in-process (supertest). */
  handler: ReturnType<Koa['callback']>;
  stop(): Promise<void>;
}

export interface ServiceOptions {
  /** How the service reaches the wiki (tests route it to a double). */
  fetch?: typeof globalThis.fetch;
}

export async function startService(configured: Config, log: Logger, options: ServiceOptions = {}): Promise<Service> {
  // The admin pages sign in through the provider as a client of their own.
  const config = withAdminClient(configured);
  const db = await openMigratedDatabase(config, log);
  let running: RunningServer;
  let app: Koa;
  let oidc: Oidc | undefined;
  let worker: Worker | undefined;
  let metrics: MetricsListener | undefined;
  try {
    // First, so that the metrics count from the first request on.
    if (config.metrics.port !== undefined) metrics = await listenForMetrics(metricsRegistry(), { host: config.metrics.host, port: config.metrics.port }, log);
    oidc = await createOidc({ config, db, log, ...(options.fetch && { fetch: options.fetch }) });
    // The embedded database belongs to one process, so on it the worker runs here too: moderation
    // mirroring when enabled, and the retention purge always.
    if (db.kind === 'pglite') {
      worker = startWorkerOn(db, config, log);
      log.info(config.sync.enabled ? 'moderation mirroring runs in this process (embedded database)' : 'the retention purge runs in this process (embedded database)');
    }
    app = createApp({
      db,
      log,
      trustProxy: config.http.trust_proxy,
      // Only over our own TLS: behind a proxy, X-Forwarded-Proto says nothing about what the browser saw.
      ...(config.http.tls && config.http.hsts_max_age > 0 && { hsts: `max-age=${config.http.hsts_max_age}` }),
      keys: config.oidc.cookie_keys,
      middleware: oidc.middleware,
      routes: routesOf(oidc.routes, adminApiRoutes({ config, db }), adminPageRoutes({ config, db, provider: oidc.provider })),
      fallback: oidc.fallback,
    });
    running = await listen(app, config.http.host, config.http.port, config.http.tls);
  } catch (error) {
    await worker?.stop();
    await oidc?.stop();
    await metrics?.close();
    await db.close();
    throw error;
  }
  log.info({ listening: running.url, issuer: config.http.public_url }, 'serving');
  return {
    url: running.url,
    metricsUrl: metrics?.url,
    db,
    handler: app.callback(),
    async stop() {
      await running.close(config.http.shutdown_grace * 1000);
      await worker?.stop();
      await oidc.stop();
      await metrics?.close();
      await db.close();
      log.info('stopped');
    },
  };
}

function routesOf(...parts: (((router: Router) => void) | undefined)[]): (router: Router) => void {
  return (router) => {
    for (const add of parts) add?.(router);
  };
}
