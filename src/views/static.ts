import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { Middleware } from 'koa';

export const STATIC_PREFIX = '/static';

interface Asset {
  path: string;
  body: Buffer;
  etag: string;
  contentType: string;
}

const TOKENS = '@wikimedia/codex-design-tokens/theme-wikimedia-ui.css';
const DARK_TOKENS = '@wikimedia/codex-design-tokens/theme-wikimedia-ui-mode-dark.css';
const PAGES_CSS = new URL('../../views/static/pages.css', import.meta.url);

/**
 * The one stylesheet: Codex design tokens (light, and dark for people who ask for it) followed by
 * the pages' own rules, which use only the tokens' custom properties.
 */
function buildStylesheet(): Asset {
  const read = (specifier: string | URL) => readFileSync(typeof specifier === 'string' ? new URL(import.meta.resolve(specifier)) : specifier, 'utf8');
  const css = [
    read(TOKENS),
    `@media (prefers-color-scheme: dark) {\n${read(DARK_TOKENS)}\n}`,
    read(PAGES_CSS),
  ].join('\n');
  const body = Buffer.from(css, 'utf8');
  const hash = createHash('sha256').update(body).digest('base64url').slice(0, 12);
  return { path: `${STATIC_PREFIX}/pages.${hash}.css`, body, etag: `"${hash}"`, contentType: 'text/css; charset=utf-8' };
}

let stylesheet: Asset | undefined;
function assets(): Asset {
  stylesheet ??= buildStylesheet();
  return stylesheet;
}

/** Where pages link the stylesheet; the content hash in the name lets browsers keep it forever. */
export function stylesheetPath(): string {
  return assets().path;
}

/** Serves the pages' stylesheet (GET/HEAD); other requests pass through. */
export function staticAssets(): Middleware {
  return async (ctx, next) => {
    const asset = assets();
    if (ctx.path !== asset.path || (ctx.method !== 'GET' && ctx.method !== 'HEAD')) return next();
    ctx.set('Cache-Control', 'public, max-age=31536000, immutable');
    ctx.set('ETag', asset.etag);
    ctx.set('X-Content-Type-Options', 'nosniff');
    ctx.type = asset.contentType;
    if (ctx.get('If-None-Match') === asset.etag) {
      ctx.status = 304;
      return;
    }
    ctx.body = asset.body;
  };
}

export interface CspOptions {
  /**
   * Origins forms may lead to. A form POST answered by a redirect counts as a form action in
   * browsers, so this must hold the wiki (login goes there) and every relying party (cancel and
   * consent answers go back to its redirect_uri).
   */
  formActionOrigins?: readonly string[];
}

/** The Content-Security-Policy header value for every page rendered here. */
export function contentSecurityPolicy(options: CspOptions = {}): string {
  const origins = [...new Set((options.formActionOrigins ?? []).map(originOf))];
  return [
    "default-src 'none'",
    "style-src 'self'",
    "img-src 'self' data:",
    ["form-action 'self'", ...origins].join(' '),
    "frame-ancestors 'none'",
    "base-uri 'none'",
  ].join('; ');
}

function originOf(url: string): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new TypeError(`form-action origin is not a URL: ${JSON.stringify(url)}`);
  }
  if (parsed.protocol !== 'https:' && parsed.protocol !== 'http:') throw new TypeError(`form-action origin must be http(s): ${JSON.stringify(url)}`);
  return parsed.origin;
}
