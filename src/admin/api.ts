// The admin JSON API (`/admin/api/v1/…`), served by `serve` beside the provider. Callers present
// `admin.token` as a bearer token (compared in constant time); without a configured token the API
// does not exist. So an operator can look someone up while the service runs, even on the embedded
// database, which only the running process may open.
import { createHash, timingSafeEqual } from 'node:crypto';
import type Router from '@koa/router';
import type { Middleware } from 'koa';
import type { Config } from '../config/load.ts';
import type { Database } from '../db/index.ts';
import { whois } from './whois.ts';

export const ADMIN_API = '/admin/api/v1';

export interface AdminApiDeps {
  config: Config;
  db: Database;
}

/** Adds the admin API to `router`; nothing when no `admin.token` is configured. */
export function adminApiRoutes({ config, db }: AdminApiDeps): ((router: Router) => void) | undefined {
  const token = config.admin.token;
  if (!token) return undefined;
  const expected = digest(token);
  const authorized: Middleware = async (ctx, next) => {
    ctx.set('Cache-Control', 'no-store');
    const presented = /^Bearer (\S+)$/.exec(ctx.get('authorization'))?.[1];
    if (presented === undefined || !timingSafeEqual(digest(presented), expected)) {
      ctx.status = 401;
      ctx.set('WWW-Authenticate', 'Bearer realm="wiki-matrix-sso admin"');
      ctx.body = { error: 'unauthorized', message: 'present admin.token as a bearer token' };
      return;
    }
    await next();
  };
  return (router) => {
    router.get(`${ADMIN_API}/whois`, authorized, async (ctx) => {
      const query = typeof ctx.query.q === 'string' ? ctx.query.q.trim() : '';
      if (!query) {
        ctx.status = 400;
        ctx.body = { error: 'invalid_request', message: 'say whom to look up: ?q=<username | Matrix ID | localpart | central id>' };
        return;
      }
      const account = await whois(db, config, query);
      if (!account) {
        ctx.status = 404;
        ctx.body = { error: 'not_found', message: `no account matches "${query}"` };
        return;
      }
      ctx.body = account;
    });
  };
}

/** Equal-length inputs for timingSafeEqual, whatever was presented. */
function digest(value: string): Buffer {
  return createHash('sha256').update(value, 'utf8').digest();
}
