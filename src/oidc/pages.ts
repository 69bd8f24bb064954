// Renders the service's pages with one Content-Security-Policy and language negotiation.
import type { Context } from 'koa';
import type { Config } from '../config/load.ts';
import { contentSecurityPolicy, negotiateLanguage, renderPage, sendPage, type PageModels, type PageName, type Site } from '../views/index.ts';

export interface Pages {
  site: Site;
  /** Answers with a page; `uiLocales` is the OpenID Connect request's, when there is one. */
  send<N extends PageName>(ctx: Context, name: N, model: PageModels[N], uiLocales?: string): void;
}

export function createPages(config: Config): Pages {
  const site: Site = { serviceName: config.pages.service_name, wikiName: config.wiki.name };
  // Forms here post to this service, which then redirects to the wiki or back to a relying party;
  // browsers apply form-action to those redirects too, so their origins are allowed.
  const csp = contentSecurityPolicy({
    formActionOrigins: [config.wiki.base_url, ...config.oidc.clients.flatMap((c) => [...c.redirect_uris, ...c.post_logout_redirect_uris])],
  });
  return {
    site,
    send(ctx, name, model, uiLocales) {
      const lang = negotiateLanguage(uiLocales ?? (ctx as { oidc?: { params?: { ui_locales?: string } } }).oidc?.params?.ui_locales, ctx.get('accept-language'));
      sendPage(ctx, renderPage(name, model, { site, lang }), csp);
    },
  };
}
