/**
 * Server-rendered pages (login, consent, logout, signed out, errors), their messages, stylesheet
 * and Content-Security-Policy. Nothing here knows about oidc-provider or the wiki: the interaction
 * routes build the models and call `renderPage`, then `sendPage`.
 */
import type { Context } from 'koa';
import type { RenderedPage } from './pages.ts';

export { SafeHtml, escapeHtml, html, isSafeUrl } from './html.ts';
export { type Catalog, type Direction, type Messages, type Translator, DEFAULT_LANGUAGE, SUPPORTED_LANGUAGES, createTranslator, directionOf, negotiateLanguage } from './i18n.ts';
export type { FormTarget, Site } from './layout.ts';
export { type ConsentModel, type ErrorModel, type LoggedOutModel, type LoginModel, type LogoutModel, type PageModels, type PageName, type RenderOptions, type RenderedPage, renderPage } from './pages.ts';
export { type Problem, type ProblemInfo, type ProblemKind, type Severity, PROBLEM_KINDS, problemInfo } from './problems.ts';
export { type CspOptions, STATIC_PREFIX, contentSecurityPolicy, staticAssets, stylesheetPath } from './static.ts';

/**
 * Answers with a rendered page. `csp` is `contentSecurityPolicy(…)`, computed once at startup.
 * Pages carry interaction state and sometimes a username: never cache them.
 */
export function sendPage(ctx: Context, page: RenderedPage, csp: string): void {
  ctx.status = page.status;
  ctx.type = 'text/html; charset=utf-8';
  ctx.set('Content-Security-Policy', csp);
  ctx.set('Content-Language', page.lang);
  ctx.set('Cache-Control', 'no-store');
  ctx.set('X-Frame-Options', 'DENY');
  ctx.body = page.html;
}
