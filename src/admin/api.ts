// The admin JSON API (`/admin/api/v1/…`, described by openapi.yaml), served by `serve` beside the
// provider: the admin pages' reads and actions for scripts and the CLI. Callers present a bearer
// token from config (`admin.token`, `admin.api_tokens`); `read` looks, `write` also acts. Without
// any configured token the API does not exist.
import type Router from '@koa/router';
import type { Context, Middleware } from 'koa';
import { z } from 'zod';
import { AppError } from '../http/errors.ts';
import { readJson } from '../http/form.ts';
import { accountRepository, wikiIdOf } from '../compose.ts';
import { AUDIT_OUTCOMES } from '../moderation/records.ts';
import { ModerationRequestStore } from '../moderation/requests.ts';
import { dropOverride, requestApply, requestPlan, requestRetry, setOverride } from './operations.ts';
import { activityJson, findAccount, personJson, requestJson, syncJson, type ReadDeps } from './read.ts';
import { ApiTokens, type ApiToken, type Scope } from './tokens.ts';
import { whois } from './whois.ts';

export const ADMIN_API = '/admin/api/v1';

export type AdminApiDeps = ReadDeps;

declare module 'koa' {
  interface DefaultState {
    apiToken?: ApiToken;
  }
}

const id = z.string().regex(/^\d{1,19}$/, 'expected an id (digits)');
const limit = z.coerce.number().int().min(1).max(1000).default(100);
const time = z.iso.datetime({ offset: true }).transform((s) => new Date(s));

const actionsQuery = z.strictObject({
  user: z.string().min(1).optional(),
  room: z.string().min(1).optional(),
  kind: z.string().regex(/^[a-z_]+$/).optional(),
  outcome: z.enum(AUDIT_OUTCOMES).optional(),
  since: time.optional(),
  until: time.optional(),
  before: id.optional(),
  limit,
});

const personQuery = z.strictObject({ q: z.string().trim().min(1, 'say whom to look up: ?q=<username | Matrix ID | localpart | central id>'), before: id.optional(), limit: limit.default(50) });
const overrideBody = z.strictObject({ localpart: z.string().min(1) });

function parse<T>(schema: z.ZodType<T>, value: unknown): T {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const issue = result.error.issues[0]!;
  throw new AppError(400, 'invalid_request', `${issue.path.length ? `${issue.path.join('.')}: ` : ''}${issue.message}`);
}

/** Who is acting, for the records: the token's name. */
const actor = (ctx: Context) => `api:${ctx.state.apiToken!.name}`;

/** Adds the admin API to `router`; nothing when no token is configured. */
export function adminApiRoutes(deps: AdminApiDeps): ((router: Router) => void) | undefined {
  const tokens = new ApiTokens(deps.config);
  if (!tokens.configured) return undefined;
  const { config, db } = deps;

  const allow = (scope: Scope): Middleware => async (ctx, next) => {
    ctx.set('Cache-Control', 'no-store');
    const presented = /^Bearer ([\x21-\x7e]+)$/.exec(ctx.get('authorization'))?.[1];
    const token = presented === undefined ? undefined : tokens.verify(presented);
    if (!token) {
      ctx.status = 401;
      ctx.set('WWW-Authenticate', `Bearer realm="wiki-matrix-sso admin"${presented === undefined ? '' : ', error="invalid_token"'}`);
      ctx.body = { error: 'unauthorized', message: presented === undefined ? 'present an admin API token as a bearer token' : 'this token is not one of admin.api_tokens' };
      return;
    }
    if (!token.scopes.includes(scope)) {
      ctx.status = 403;
      ctx.set('WWW-Authenticate', `Bearer realm="wiki-matrix-sso admin", error="insufficient_scope", scope="${scope}"`);
      ctx.body = { error: 'insufficient_scope', message: `the token "${token.name}" may not ${scope === 'write' ? 'act' : 'read'}: it needs the ${scope} scope` };
      return;
    }
    ctx.state.apiToken = token;
    try {
      await next();
    } catch (error) {
      if (!(error instanceof AppError) || error.status >= 500) throw error;
      ctx.status = error.status;
      ctx.body = { error: error.code, message: error.message };
    }
  };
  const read = allow('read');
  const write = allow('write');
  const accepted = (ctx: Context, body: unknown) => {
    ctx.status = 202;
    ctx.body = body;
  };

  return (router) => {
    router.get(`${ADMIN_API}/whois`, read, async (ctx) => {
      const { q } = parse(personQuery.pick({ q: true }).loose(), ctx.query);
      const account = await whois(db, config, q);
      if (!account) throw new AppError(404, 'not_found', `no account matches "${q}"`);
      ctx.body = account;
    });

    router.get(`${ADMIN_API}/people`, read, async (ctx) => {
      const query = parse(personQuery, ctx.query);
      const account = await findAccount(deps, query.q);
      if (!account) throw new AppError(404, 'not_found', `no account matches "${query.q}"`);
      ctx.body = await personJson(deps, account, { limit: query.limit, ...(query.before && { before: query.before }) });
    });

    router.get(`${ADMIN_API}/actions`, read, async (ctx) => {
      const q = parse(actionsQuery, ctx.query);
      ctx.body = await activityJson(deps, {
        limit: q.limit,
        ...(q.user && { userId: q.user }),
        ...(q.room && { roomId: q.room }),
        ...(q.kind && { kind: q.kind as never }),
        ...(q.outcome && { outcome: q.outcome }),
        ...(q.since && { since: q.since }),
        ...(q.until && { until: q.until }),
        ...(q.before && { before: q.before }),
      });
    });

    router.post(`${ADMIN_API}/actions/:id/retry`, write, async (ctx) => {
      accepted(ctx, requestJson(await requestRetry(deps, parse(id, ctx.params.id), actor(ctx))));
    });

    router.get(`${ADMIN_API}/sync`, read, async (ctx) => {
      ctx.body = await syncJson(deps);
    });

    router.post(`${ADMIN_API}/plans`, write, async (ctx) => {
      accepted(ctx, requestJson(await requestPlan(deps, actor(ctx))));
    });

    router.post(`${ADMIN_API}/plans/:id/apply`, write, async (ctx) => {
      accepted(ctx, requestJson(await requestApply(deps, parse(id, ctx.params.id), actor(ctx))));
    });

    router.get(`${ADMIN_API}/requests/:id`, read, async (ctx) => {
      const request = await new ModerationRequestStore(db).get(parse(id, ctx.params.id));
      if (!request) throw new AppError(404, 'not_found', `there is no request ${ctx.params.id}`);
      ctx.body = requestJson(request);
    });

    router.get(`${ADMIN_API}/overrides`, read, async (ctx) => {
      const overrides = await accountRepository(db, config).overrides(wikiIdOf(config));
      ctx.body = { overrides: overrides.map(overrideJson) };
    });

    router.put(`${ADMIN_API}/overrides/:username`, write, async (ctx) => {
      const { localpart } = parse(overrideBody, await readJson(ctx));
      ctx.body = overrideJson(await setOverride(deps, ctx.params.username!, localpart, actor(ctx)));
    });

    router.delete(`${ADMIN_API}/overrides/:username`, write, async (ctx) => {
      await dropOverride(deps, ctx.params.username!, actor(ctx));
      ctx.status = 204;
    });
  };
}

const overrideJson = (o: { username: string; localpart: string; setBy: string; setAt: Date }) => ({ username: o.username, localpart: o.localpart, set_by: o.setBy, set_at: o.setAt.toISOString() });
