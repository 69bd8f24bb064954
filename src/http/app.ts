import { randomUUID } from 'node:crypto';
import Router from '@koa/router';
import Koa from 'koa';
import type { Database } from '../db/index.ts';
import { migrationStatus, readMigrations, type Migration } from '../db/migrate.ts';
import type { Logger } from '../log.ts';
import { AppError } from './errors.ts';

export interface AppDeps {
  db: Database;
  log: Logger;
  trustProxy?: boolean;
  /** Strict-Transport-Security value, when this process terminates TLS itself. */
  hsts?: string;
  /** Keys for signed cookies, newest first. */
  keys?: string[];
  /** Middleware run before any route (e.g. static assets). */
  middleware?: Koa.Middleware[];
  /** Routes beside /health and /ready (sign-in pages, admin). */
  routes?: (router: Router) => void;
  /** What answers requests no route took (oidc-provider's endpoints). */
  fallback?: Koa.Middleware;
}

declare module 'koa' {
  interface DefaultState {
    requestId: string;
  }
}

const REQUEST_ID = /^[A-Za-z0-9._-]{1,128}$/;
const READY_TIMEOUT_MS = 2000;

export function createApp(deps: AppDeps): Koa {
  const { db, log } = deps;
  const app = new Koa({ proxy: deps.trustProxy ?? false, ...(deps.keys && { keys: deps.keys }) });
  app.silent = true;

  app.use(async (ctx, next) => {
    const incoming = ctx.get('x-request-id');
    const id = REQUEST_ID.test(incoming) ? incoming : randomUUID();
    ctx.state.requestId = id;
    ctx.set('X-Request-Id', id);
    ctx.set('X-Content-Type-Options', 'nosniff');
    ctx.set('Referrer-Policy', 'no-referrer');
    if (deps.hsts) ctx.set('Strict-Transport-Security', deps.hsts);
    const started = performance.now();
    try {
      await next();
    } catch (error) {
      respondWithError(ctx, error, log);
    } finally {
      // Only the path: query strings carry authorization codes and state.
      // ctx.res: the provider answers some requests itself, past Koa's ctx.status.
      log.info({ requestId: id, method: ctx.method, path: ctx.path, status: ctx.res.statusCode, ms: Math.round(performance.now() - started) }, 'request');
    }
  });

  // Read once: load balancers probe /ready every few seconds, and the files do not change.
  const migrations = readMigrations();
  const router = new Router();
  router.get('/health', (ctx) => {
    ctx.body = { status: 'ok' };
  });
  router.get('/ready', async (ctx) => {
    const checks = await readiness(db, migrations);
    ctx.status = checks.ready ? 200 : 503;
    ctx.body = checks;
  });
  deps.routes?.(router);
  for (const middleware of deps.middleware ?? []) app.use(middleware);
  app.use(router.routes());
  if (deps.fallback) app.use(deps.fallback);
  else app.use(router.allowedMethods());
  return app;
}

function respondWithError(ctx: Koa.Context, error: unknown, log: Logger): void {
  const known = error instanceof AppError ? error : undefined;
  const status = known?.status ?? ((error as { status?: number }).status || 500);
  if (status >= 500) log.error({ err: error, requestId: ctx.state.requestId }, 'request failed');
  ctx.status = status;
  ctx.body = {
    error: known?.code ?? (status >= 500 ? 'server_error' : 'bad_request'),
    message: known?.expose || (!known && status < 500) ? (error as Error).message : 'Something went wrong on our side.',
    request_id: ctx.state.requestId,
  };
}

export interface Readiness {
  ready: boolean;
  database: 'ok' | 'unreachable';
  migrations: 'ok' | 'pending' | 'unknown';
  error?: string;
}

async function readiness(db: Database, migrations: Migration[]): Promise<Readiness> {
  try {
    const status = await Promise.race([
      migrationStatus(db, migrations),
      new Promise<never>((_, reject) => setTimeout(() => reject(new Error('database did not answer in time')), READY_TIMEOUT_MS).unref()),
    ]);
    const pending = status.pending.length > 0;
    return { ready: !pending, database: 'ok', migrations: pending ? 'pending' : 'ok' };
  } catch (error) {
    return { ready: false, database: 'unreachable', migrations: 'unknown', error: (error as Error).message };
  }
}
