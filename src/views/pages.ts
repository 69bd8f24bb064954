import { type SafeHtml, checkedUrl, html, isSafeUrl } from './html.ts';
import { type Direction, type MessageParam, type Translator, createTranslator, negotiateLanguage } from './i18n.ts';
import { type FormTarget, type Site, type Title, formButton, button, buttonLabel, hiddenFields, layout } from './layout.ts';
import { type Problem, problemInfo } from './problems.ts';

/** "Continue with <wiki>": the relying party asked for a sign-in and none is there yet. */
export interface LoginModel {
  /** The relying party's client name. */
  clientName: string;
  /** Starts the redirect to the wiki's OAuth authorize endpoint. */
  continueTo: FormTarget;
  /** Aborts the interaction (the relying party gets `access_denied`). */
  cancel: FormTarget;
}

/** A third-party client asks for scopes the person has not granted yet. */
export interface ConsentModel {
  clientName: string;
  /** The wiki username, when known. */
  username?: string;
  /** Requested scopes; known ones are described in plain language, others are listed by name. */
  scopes: readonly string[];
  allow: FormTarget;
  deny: FormTarget;
}

/**
 * oidc-provider's `logoutSource(ctx, form)`: `action` is `ctx.oidc.urlFor('end_session_confirm')`
 * and `xsrf` is `ctx.oidc.session.state.secret`. "Yes" posts `logout=yes`, "No" posts without it.
 */
export interface LogoutModel {
  action: string;
  xsrf: string;
}

/** oidc-provider's `postLogoutSuccessSource`, shown when there is no post_logout_redirect_uri. */
export type LoggedOutModel = Record<never, never>;

export interface ErrorModel {
  problem: Problem;
  /** Shown so that the person can quote it to the operators. */
  requestId?: string;
  /** Where "Try again" leads; omitted when it is not an http(s) URL or a same-site path. */
  retryUrl?: string;
  /** A sign-in that can still answer its app: the button ends it and returns there with the OAuth error. */
  returnTo?: { clientName: string; target: FormTarget };
}

export interface PageModels {
  login: LoginModel;
  consent: ConsentModel;
  logout: LogoutModel;
  'logged-out': LoggedOutModel;
  error: ErrorModel;
}
export type PageName = keyof PageModels;

export interface RenderOptions {
  site: Site;
  /** A language tag, best from `negotiateLanguage`; anything unsupported is negotiated down to one that is. */
  lang?: string;
}

export interface RenderedPage {
  html: string;
  lang: string;
  dir: Direction;
  /** The HTTP status to answer with (200 but for error pages). */
  status: number;
}

interface PageParts {
  title: Title;
  body: SafeHtml;
  status?: number;
}

type PageRenderer<M> = (model: M, i18n: Translator, site: Site) => PageParts;

const PAGES: { [N in PageName]: PageRenderer<PageModels[N]> } = {
  login: (model, { t }, site) => ({
    title: { key: 'wikimatrixsso-login-title', params: [model.clientName] },
    body: html`<p class="wms-lead">${t('wikimatrixsso-login-intro', model.clientName, site.wikiName)}</p>
<div class="wms-actions wms-actions--stacked">
${formButton(model.continueTo, t('wikimatrixsso-login-continue', site.wikiName), 'primary')}
${formButton(model.cancel, t('wikimatrixsso-login-cancel'), 'normal')}
</div>
<p class="wms-note">${t('wikimatrixsso-login-password-note', site.wikiName, model.clientName)}</p>`,
  }),

  consent: (model, { t }, site) => ({
    title: { key: 'wikimatrixsso-consent-title', params: [model.clientName] },
    body: html`${model.username ? html`<p class="wms-lead">${t('wikimatrixsso-consent-signed-in-as', model.username, site.wikiName)}</p>` : ''}
<h2 class="wms-subheading">${t('wikimatrixsso-consent-will-be-able-to', model.clientName)}</h2>
<ul class="wms-scopes">
${[...new Set(model.scopes)].map((scope) => html`<li class="wms-scopes__item">${describeScope(scope, t, site)}</li>`)}
</ul>
<p class="wms-note">${t('wikimatrixsso-consent-trust-note', model.clientName)}</p>
<div class="wms-actions">
${formButton(model.allow, t('wikimatrixsso-consent-allow'), 'primary')}
${formButton(model.deny, t('wikimatrixsso-consent-deny'), 'normal')}
</div>`,
  }),

  logout: (model, { t }, site) => ({
    title: { key: 'wikimatrixsso-logout-title', params: [site.serviceName] },
    body: html`<p class="wms-lead">${t('wikimatrixsso-logout-intro', site.serviceName, site.wikiName)}</p>
${logoutForm(model, t)}`,
  }),

  'logged-out': (_model, { t }, site) => ({
    title: { key: 'wikimatrixsso-loggedout-title' },
    body: html`<p class="wms-lead">${t('wikimatrixsso-loggedout-message', site.serviceName)}</p>
<p class="wms-note">${t('wikimatrixsso-loggedout-wiki-note', site.wikiName)}</p>`,
  }),

  error: (model, { t, list }, site) => {
    const info = problemInfo(model.problem);
    const message = problemMessage(model.problem, list);
    const retry = model.retryUrl && isSafeUrl(model.retryUrl) ? model.retryUrl : undefined;
    return {
      status: info.status,
      title: { key: `wikimatrixsso-error-${info.stem}-title`, params: [site.wikiName, site.serviceName] },
      body: html`<div class="wms-message wms-message--${info.severity}" role="${info.severity === 'error' ? 'alert' : 'status'}">
<p class="wms-message__content">${t(message.key, site.wikiName, site.serviceName, ...message.params)}</p>
</div>
${model.returnTo ? html`<div class="wms-actions">${formButton(model.returnTo.target, t('wikimatrixsso-error-return-to-client', model.returnTo.clientName), 'primary')}</div>` : ''}
${retry ? html`<div class="wms-actions"><a class="wms-button wms-button--primary" href="${retry}">${buttonLabel(t('wikimatrixsso-error-try-again'))}</a></div>` : ''}
${model.requestId ? html`<p class="wms-note">${t('wikimatrixsso-error-request-id', html`<code class="wms-code">${model.requestId}</code>`)}</p>` : ''}`,
    };
  },
};

function logoutForm(model: LogoutModel, t: Translator['t']): SafeHtml {
  return html`<form class="wms-actions" method="post" action="${checkedUrl(model.action)}">${hiddenFields({ xsrf: model.xsrf })}
${button(t('wikimatrixsso-logout-yes'), 'primary', { name: 'logout', value: 'yes' })}
${button(t('wikimatrixsso-logout-no'), 'normal')}
</form>`;
}

/** Scopes this service grants, in the words a person would use. */
const SCOPE_KEYS: Readonly<Record<string, string>> = {
  openid: 'wikimatrixsso-scope-openid',
  profile: 'wikimatrixsso-scope-profile',
  email: 'wikimatrixsso-scope-email',
  wiki: 'wikimatrixsso-scope-wiki',
  offline_access: 'wikimatrixsso-scope-offline-access',
};

function describeScope(scope: string, t: Translator['t'], site: Site): SafeHtml {
  const key = SCOPE_KEYS[scope];
  return key ? t(key, site.wikiName) : t('wikimatrixsso-scope-other', scope);
}

/** The message key and its parameters after the two every error message gets ($1 wiki, $2 service). */
function problemMessage(problem: Problem, list: Translator['list']): { key: string; params: MessageParam[] } {
  const key = (stem: string) => `wikimatrixsso-error-${stem}-message`;
  switch (problem.kind) {
    case 'blocked':
      return { key: key(problem.scope === 'sitewide' ? 'blocked-sitewide' : 'blocked'), params: [] };
    case 'too_few_edits':
      return { key: key('too-few-edits'), params: [problem.minEdits] };
    case 'account_too_new':
      return { key: key('too-new'), params: [problem.minDays] };
    case 'missing_group':
      return { key: key('missing-group'), params: [list(problem.groups, 'disjunction'), problem.groups.length] };
    case 'forbidden_group':
      return { key: key('forbidden-group'), params: [problem.group] };
    default:
      return { key: key(problemInfo(problem).stem), params: [] };
  }
}

export function renderPage<N extends PageName>(name: N, model: PageModels[N], options: RenderOptions): RenderedPage {
  const i18n = createTranslator(negotiateLanguage(options.lang));
  const parts = (PAGES[name] as PageRenderer<PageModels[N]>)(model, i18n, options.site);
  return {
    html: layout(i18n, options.site, parts.title, parts.body).html,
    lang: i18n.lang,
    dir: i18n.dir,
    status: parts.status ?? 200,
  };
}
