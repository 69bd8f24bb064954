// The admin pages' routes (`/admin…`): sign-in through the provider (session.ts), then Activity,
// People, Preview and Localparts. Reads use the API's models (read.ts); actions the API's
// operations (operations.ts). Every POST carries the session's CSRF token and comes from this
// site (Origin checked when the browser sends it); every answer is a page, never cached.
import type Router from '@koa/router';
import type { Context, Next } from 'koa';
import type Provider from 'oidc-provider';
import { z } from 'zod';
import type { Config } from '../config/load.ts';
import type { Database } from '../db/index.ts';
import { accountRepository, wikiIdOf } from '../compose.ts';
import { AppError } from '../http/errors.ts';
import { readForm } from '../http/form.ts';
import { AUDIT_OUTCOMES } from '../moderation/records.ts';
import { ModerationRequestStore } from '../moderation/requests.ts';
import { contentSecurityPolicy, createTranslator, html, negotiateLanguage, type SafeHtml, type Site } from '../views/index.ts';
import { dropOverride, requestApply, requestPlan, requestRetry, setOverride } from './operations.ts';
import { activityJson, findAccount, personJson, requestJson, syncJson } from './read.ts';
import { adminPagesEnabled, checkCsrf, endSession, finishSignIn, readSession, safeReturnTo, startSignIn, type AdminSession } from './session.ts';
import { activityBody, adminPage, messageBody, overridesBody, pagerQuery, personBody, previewBody, requestBody, searchForm, type Chrome, type Section } from './views.ts';

export interface AdminPagesDeps {
  config: Config;
  db: Database;
  provider: Provider;
}

declare module 'koa' {
  interface DefaultState {
    admin?: AdminSession;
    /** The posted form, once its CSRF token was checked. */
    form?: URLSearchParams;
  }
}

const PAGE_SIZE = 50;
const localTime = z
  .string()
  .regex(/^\d{4}-\d\d-\d\dT\d\d:\d\d(?::\d\d)?$/)
  .optional()
  .catch(undefined);

/** Adds the admin pages to `router`; nothing when no admin is configured. */
export function adminPageRoutes(deps: AdminPagesDeps): ((router: Router) => void) | undefined {
  const { config, db } = deps;
  if (!adminPagesEnabled(config)) return undefined;
  const site: Site = { serviceName: config.pages.service_name, wikiName: config.wiki.name };
  const csp = contentSecurityPolicy({});
  const origin = new URL(config.http.public_url).origin;

  const chromeOf = (ctx: Context, section?: Section, extra: Partial<Chrome> = {}): Chrome => ({
    i18n: createTranslator(negotiateLanguage(typeof ctx.query.uselang === 'string' ? ctx.query.uselang : undefined, ctx.get('accept-language'))),
    site,
    ...(ctx.state.admin && { admin: { username: ctx.state.admin.username, csrf: ctx.state.admin.csrf } }),
    ...(section && { section }),
    ...extra,
  });
  const send = (ctx: Context, chrome: Chrome, title: string, body: SafeHtml, status = 200, params: (string | number)[] = []) => {
    ctx.status = status;
    ctx.type = 'text/html; charset=utf-8';
    ctx.set('Content-Security-Policy', csp);
    ctx.set('Content-Language', chrome.i18n.lang);
    ctx.set('Cache-Control', 'no-store');
    ctx.set('X-Frame-Options', 'DENY');
    // Browsers send `Origin: null` with the forms of a no-referrer page; same-origin keeps the
    // real origin on our own forms (checked below) and still tells other sites nothing.
    ctx.set('Referrer-Policy', 'same-origin');
    ctx.body = adminPage(chrome, { key: title, params }, body);
  };

  /** Signed in, or sent to sign in (GET) / refused (POST). */
  const signedIn = async (ctx: Context, next: Next) => {
    const session = readSession(ctx, config);
    if (!session) {
      if (ctx.method === 'GET') {
        ctx.redirect(startSignIn(ctx, config, ctx.originalUrl));
        return;
      }
      const chrome = chromeOf(ctx);
      send(ctx, chrome, 'wikimatrixsso-admin-csrf-title', messageBody(chrome, chrome.i18n.t('wikimatrixsso-admin-csrf-message'), { href: '/admin', label: chrome.i18n.t('wikimatrixsso-admin-sign-in') }), 403);
      return;
    }
    ctx.state.admin = session;
    await next();
  };

  /** A POST from one of our forms: this site's origin, this session's token. */
  const fromOurForm = async (ctx: Context, next: Next) => {
    const form = await readForm(ctx);
    const sentOrigin = ctx.get('origin');
    if ((sentOrigin && sentOrigin !== origin) || !checkCsrf(ctx.state.admin!, form.get('csrf'))) {
      const chrome = chromeOf(ctx);
      send(ctx, chrome, 'wikimatrixsso-admin-csrf-title', messageBody(chrome, chrome.i18n.t('wikimatrixsso-admin-csrf-message'), { href: '/admin', label: chrome.i18n.t('wikimatrixsso-admin-back') }), 403);
      return;
    }
    ctx.state.form = form;
    try {
      await next();
    } catch (error) {
      if (!(error instanceof AppError) || error.status >= 500) throw error;
      const chrome = chromeOf(ctx);
      send(ctx, chrome, 'wikimatrixsso-admin-problem-title', messageBody(chrome, html`<bdi>${error.message}</bdi>`, { href: ctx.get('referer') && safeReturnTo(new URL(ctx.get('referer'), origin).pathname) !== '/admin' ? safeReturnTo(new URL(ctx.get('referer'), origin).pathname) : '/admin', label: chrome.i18n.t('wikimatrixsso-admin-back') }), error.status);
    }
  };
  const formOf = (ctx: Context) => ctx.state.form!;
  const seeOther = (ctx: Context, to: string) => {
    ctx.status = 303;
    ctx.redirect(to);
  };

  return (router) => {
    router.get('/admin/login', (ctx) => {
      ctx.redirect(startSignIn(ctx, config, safeReturnTo(ctx.query.return)));
    });

    router.get('/admin/callback', async (ctx) => {
      const outcome = await finishSignIn(ctx, deps);
      const chrome = chromeOf(ctx);
      const { t } = chrome.i18n;
      if (outcome.kind === 'signed_in') {
        ctx.redirect(outcome.returnTo);
        return;
      }
      if (outcome.kind === 'not_admin') {
        send(ctx, chrome, 'wikimatrixsso-admin-forbidden-title', messageBody(chrome, t('wikimatrixsso-admin-forbidden-message', outcome.username, site.serviceName), undefined), 403);
        return;
      }
      send(ctx, chrome, 'wikimatrixsso-admin-signin-failed-title', messageBody(chrome, t(`wikimatrixsso-admin-signin-failed-${outcome.reason}`), { href: '/admin/login', label: t('wikimatrixsso-admin-sign-in') }), 400);
    });

    router.post('/admin/logout', signedIn, fromOurForm, (ctx) => {
      endSession(ctx, config);
      ctx.state.admin = undefined;
      const chrome = chromeOf(ctx);
      send(ctx, chrome, 'wikimatrixsso-admin-signed-out-title', messageBody(chrome, chrome.i18n.t('wikimatrixsso-admin-signed-out-message', site.serviceName), { href: '/admin/login', label: chrome.i18n.t('wikimatrixsso-admin-sign-in') }, 'notice'));
    });

    router.get('/admin', signedIn, async (ctx) => {
      const q = ctx.query;
      const str = (v: unknown) => (typeof v === 'string' && v.trim() ? v.trim() : undefined);
      const outcome = AUDIT_OUTCOMES.find((o) => o === q.outcome);
      const since = localTime.parse(q.since);
      const until = localTime.parse(q.until);
      const filters = { room: str(q.room), user: str(q.user), kind: str(q.kind)?.match(/^[a-z_]+$/)?.[0], outcome, since, until };
      const before = typeof q.before === 'string' && /^\d{1,19}$/.test(q.before) ? q.before : undefined;
      const [page, sync] = await Promise.all([
        activityJson(deps, {
          limit: PAGE_SIZE,
          ...(filters.room && { roomId: filters.room }),
          ...(filters.user && { userId: filters.user }),
          ...(filters.kind && { kind: filters.kind as never }),
          ...(outcome && { outcome }),
          // The form's datetime-local fields are read as UTC, like every time on these pages.
          ...(since && { since: new Date(`${since}Z`) }),
          ...(until && { until: new Date(`${until}Z`) }),
          ...(before && { before }),
        }),
        syncJson(deps),
      ]);
      const retried = typeof q.retried === 'string' ? q.retried : undefined;
      const base = chromeOf(ctx, 'activity');
      const chrome: Chrome = retried ? { ...base, flash: { kind: 'success', message: base.i18n.t('wikimatrixsso-admin-retry-queued', retried) } } : base;
      send(ctx, chrome, 'wikimatrixsso-admin-activity-title', activityBody(chrome, { filters, entries: page.entries, nextQuery: page.next ? pagerQuery(filters, page.next) : undefined, first: !before, sync }));
    });

    router.post('/admin/actions/:id/retry', signedIn, fromOurForm, async (ctx) => {
      const request = await requestRetry(deps, String(ctx.params.id), ctx.state.admin!.username);
      seeOther(ctx, `/admin?retried=${encodeURIComponent((request.payload as { userId: string }).userId)}`);
    });

    router.get('/admin/people', signedIn, async (ctx) => {
      const query = typeof ctx.query.q === 'string' ? ctx.query.q.trim() : '';
      const before = typeof ctx.query.before === 'string' && /^\d{1,19}$/.test(ctx.query.before) ? ctx.query.before : undefined;
      const chrome = chromeOf(ctx, 'people');
      const { t } = chrome.i18n;
      if (!query) {
        send(ctx, chrome, 'wikimatrixsso-admin-people-title', searchForm(chrome, ''));
        return;
      }
      const account = await findAccount(deps, query);
      if (!account) {
        send(ctx, chrome, 'wikimatrixsso-admin-people-title', html`${searchForm(chrome, query)}<p class="wms-note" role="status">${t('wikimatrixsso-admin-search-none', query)}</p>`, 404);
        return;
      }
      const person = await personJson(deps, account, { limit: PAGE_SIZE, ...(before && { before }) });
      const older = person.actions.next ? `/admin/people?${new URLSearchParams({ q: query, before: person.actions.next })}` : undefined;
      send(ctx, chrome, 'wikimatrixsso-admin-people-title', html`${searchForm(chrome, query)}${personBody(chrome, person, older)}`);
    });

    router.get('/admin/preview', signedIn, async (ctx) => {
      const recent = (await new ModerationRequestStore(db).recent({ limit: 10 })).map(requestJson);
      const chrome = chromeOf(ctx, 'preview');
      send(ctx, chrome, 'wikimatrixsso-admin-preview-title', previewBody(chrome, recent));
    });

    router.post('/admin/plans', signedIn, fromOurForm, async (ctx) => {
      const request = await requestPlan(deps, ctx.state.admin!.username);
      seeOther(ctx, `/admin/requests/${request.id}`);
    });

    router.post('/admin/plans/:id/apply', signedIn, fromOurForm, async (ctx) => {
      const request = await requestApply(deps, String(ctx.params.id), ctx.state.admin!.username);
      seeOther(ctx, `/admin/requests/${request.id}`);
    });

    router.get('/admin/requests/:id', signedIn, async (ctx) => {
      const request = await new ModerationRequestStore(db).get(String(ctx.params.id));
      if (!request) {
        const chrome = chromeOf(ctx, 'preview');
        send(ctx, chrome, 'wikimatrixsso-admin-problem-title', messageBody(chrome, html`<bdi>${`there is no request ${ctx.params.id}`}</bdi>`, { href: '/admin/preview', label: chrome.i18n.t('wikimatrixsso-admin-back') }), 404);
        return;
      }
      const json = requestJson(request);
      const working = request.state === 'pending' || request.state === 'running';
      const chrome = chromeOf(ctx, 'preview', working ? { refresh: 2 } : {});
      send(ctx, chrome, 'wikimatrixsso-admin-request-heading', requestBody(chrome, json), 200, [request.id]);
    });

    router.get('/admin/overrides', signedIn, async (ctx) => {
      const saved = typeof ctx.query.saved === 'string' ? ctx.query.saved : undefined;
      const removed = typeof ctx.query.removed === 'string' ? ctx.query.removed : undefined;
      const overrides = await accountRepository(db, config).overrides(wikiIdOf(config));
      const base = chromeOf(ctx, 'overrides');
      const flash = saved
        ? { kind: 'success' as const, message: base.i18n.t('wikimatrixsso-admin-overrides-saved', saved, overrides.find((o) => o.username === saved)?.localpart ?? '') }
        : removed
          ? { kind: 'success' as const, message: base.i18n.t('wikimatrixsso-admin-overrides-removed', removed) }
          : undefined;
      const chrome = { ...base, ...(flash && { flash }) };
      const rows = overrides.map((o) => ({ username: o.username, localpart: o.localpart, set_by: o.setBy, set_at: o.setAt.toISOString() }));
      send(ctx, chrome, 'wikimatrixsso-admin-overrides-title', overridesBody(chrome, rows, config.matrix.server_name));
    });

    router.post('/admin/overrides', signedIn, fromOurForm, async (ctx) => {
      const form = formOf(ctx);
      const override = await setOverride(deps, form.get('username') ?? '', (form.get('localpart') ?? '').trim(), ctx.state.admin!.username);
      seeOther(ctx, `/admin/overrides?saved=${encodeURIComponent(override.username)}`);
    });

    router.post('/admin/overrides/withdraw', signedIn, fromOurForm, async (ctx) => {
      const dropped = await dropOverride(deps, formOf(ctx).get('username') ?? '', ctx.state.admin!.username);
      seeOther(ctx, `/admin/overrides?removed=${encodeURIComponent(dropped.username)}`);
    });
  };
}
