import cluster, { type Worker as ClusterWorker } from 'node:cluster';
import client from 'prom-client';
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
import { SigningKeyStore } from '../oidc/keys.ts';
import { openMigratedDatabase, type Progress } from './common.ts';
import { privacyHousekeeping } from '../privacy/housekeeping.ts';
import { startIdle, type Worker } from './idle-worker.ts';

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
  /** A worker of `serve --workers`: its metrics are served by the primary, summed over the workers. */
  clusterWorker?: boolean;
  /** Told what start-up is doing, step by step (`dev` prints it). */
  progress?: Progress;
  /** Where a new embedded database's template is; false: none (see db/pglite-template.ts). */
  templateDir?: string | false;
}

export async function startService(configured: Config, log: Logger, options: ServiceOptions = {}): Promise<Service> {
  // The admin pages sign in through the provider as a client of their own.
  const config = withAdminClient(configured);
  const db = await openMigratedDatabase(config, log, { ...(options.progress && { progress: options.progress }), ...(options.templateDir !== undefined && { templateDir: options.templateDir }) });
  let running: RunningServer;
  let app: Koa;
  let oidc: Oidc | undefined;
  let worker: Worker | undefined;
  let metrics: MetricsListener | undefined;
  try {
    // First, so that the metrics count from the first request on.
    if (options.clusterWorker) {
      // prom-client answers the primary's requests for this worker's figures over the cluster's IPC channel.
      client.AggregatorRegistry.setRegistries([metricsRegistry()]);
      new client.AggregatorRegistry();
    } else if (config.metrics.port !== undefined) {
      metrics = await listenForMetrics(metricsRegistry(), { host: config.metrics.host, port: config.metrics.port }, log);
    }
    oidc = await createOidc({ config, db, log, ...(options.fetch && { fetch: options.fetch }), ...(options.progress && { progress: options.progress }) });
    // The embedded database belongs to one process, so on it the worker runs here too: moderation
    // mirroring when enabled, and the retention purge always.
    if (db.kind === 'pglite') {
      if (config.sync.enabled) {
        // Imported only here: it brings matrix-js-sdk, which serve otherwise never needs.
        const { startWorkerOn } = await import('./worker.ts');
        worker = startWorkerOn(db, config, log);
      } else {
        worker = startIdle(log, db, privacyHousekeeping({ db, config, log }));
      }
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

export const STOP_MESSAGE = 'wiki-matrix-sso:stop';

export interface Cluster {
  url: string;
  stop(): Promise<void>;
}

/** A worker exiting this soon after it started is crash-looping: wait longer before the next. */
const QUICK_EXIT_MS = 10_000;

/**
 * `serve --workers N`: N `serve` processes (node:cluster) that share the listening socket, and
 * otherwise only the database, as serve processes behind a load balancer do. The primary applies the
 * migrations and creates the signing keys first, then forks the workers and keeps N running; it
 * serves the metrics, summed over them. PostgreSQL only: PGlite belongs to one process.
 */
export async function startCluster(config: Config, log: Logger, workers: number): Promise<Cluster> {
  if (!config.database.url) {
    throw new Error('serve --workers needs PostgreSQL (database.url): the embedded database can be opened by one process only');
  }
  const db = await openMigratedDatabase(config, log);
  try {
    await new SigningKeyStore(db, { secret: config.oidc.key_encryption_secret }).ensure();
  } finally {
    await db.close();
  }
  let metrics: MetricsListener | undefined;
  if (config.metrics.port !== undefined) {
    const aggregator = new client.AggregatorRegistry();
    const summed = { contentType: aggregator.contentType, metrics: () => aggregator.clusterMetrics() } as unknown as client.Registry;
    metrics = await listenForMetrics(summed, { host: config.metrics.host, port: config.metrics.port }, log);
  }

  let stopping = false;
  let delayMs = 1000;
  const started = new Map<ClusterWorker, number>();
  const fork = () => {
    const worker = cluster.fork();
    started.set(worker, Date.now());
  };
  cluster.on('exit', (worker, code, signal) => {
    const ranMs = Date.now() - (started.get(worker) ?? 0);
    started.delete(worker);
    if (stopping) return;
    delayMs = ranMs < QUICK_EXIT_MS ? Math.min(delayMs * 2, 30_000) : 1000;
    log.error({ worker: worker.id, code, signal, restartInMs: delayMs }, 'a serve worker exited; starting another');
    setTimeout(() => !stopping && fork(), delayMs).unref();
  });

  // Serving once every worker listens; a worker that cannot start (the port is taken, the
  // database is gone) exits before it does, and then so does the primary.
  let onListening: (worker: ClusterWorker, address: { address: string; port: number }) => void = () => {};
  let onEarlyExit: (worker: ClusterWorker, code: number) => void = () => {};
  const listening = new Promise<string>((resolve, reject) => {
    let ready = 0;
    onListening = (_worker, address) => {
      if (++ready === workers) resolve(`${config.http.tls ? 'https' : 'http'}://${address.address.includes(':') ? `[${address.address}]` : address.address}:${address.port}`);
    };
    onEarlyExit = (_worker, code) => reject(new Error(`a serve worker exited with code ${code} before listening; its log says why`));
  });
  cluster.on('listening', onListening).on('exit', onEarlyExit);
  for (let i = 0; i < workers; i++) fork();

  const stop = async () => {
    stopping = true;
    const exits = [...started.keys()].map(
      (worker) =>
        new Promise<void>((resolve) => {
          if (worker.isDead()) return resolve();
          const timer = setTimeout(() => worker.process.kill('SIGKILL'), (config.http.shutdown_grace + 10) * 1000);
          worker.once('exit', () => {
            clearTimeout(timer);
            resolve();
          });
          // A message, not a signal: a worker that already got the terminal's SIGINT would take a
          // second signal as "stop now".
          if (worker.isConnected()) worker.send(STOP_MESSAGE);
          else worker.process.kill('SIGTERM');
        }),
    );
    await Promise.all(exits);
    await metrics?.close();
    log.info('stopped');
  };

  let url: string;
  try {
    url = await listening;
  } catch (error) {
    await stop();
    throw error;
  } finally {
    cluster.off('listening', onListening).off('exit', onEarlyExit);
  }
  log.info({ listening: url, issuer: config.http.public_url, workers }, 'serving');
  return { url, stop };
}

/** In a cluster worker: resolves when the primary asks it to stop. */
export function stopMessage(): Promise<void> {
  return new Promise((resolve) => {
    const onMessage = (message: unknown) => {
      if (message !== STOP_MESSAGE) return;
      process.off('message', onMessage);
      resolve();
    };
    process.on('message', onMessage);
  });
}
