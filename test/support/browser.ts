// A minimal browser for driving sign-ins over HTTP: keeps cookies (by name and path), follows
// redirects by hand so a test can stop at any hop, and submits the pages' forms.
export interface Hop {
  url: URL;
  status: number;
  location?: URL;
  body: string;
  headers: Headers;
}

interface Cookie {
  name: string;
  value: string;
  path: string;
  host: string;
}

export class Browser {
  readonly cookies: Cookie[] = [];
  readonly history: Hop[] = [];
  readonly #language: string | undefined;

  constructor(options: { acceptLanguage?: string } = {}) {
    this.#language = options.acceptLanguage;
  }

  cookieHeader(url: URL): string {
    return this.cookies
      .filter((c) => c.host === url.host && (url.pathname === c.path || url.pathname.startsWith(c.path.endsWith('/') ? c.path : `${c.path}/`) || c.path === '/'))
      .map((c) => `${c.name}=${c.value}`)
      .join('; ');
  }

  #store(url: URL, headers: Headers): void {
    for (const line of headers.getSetCookie()) {
      const [pair, ...attributes] = line.split(';').map((s) => s.trim());
      const eq = pair!.indexOf('=');
      const name = pair!.slice(0, eq);
      const value = pair!.slice(eq + 1);
      const pathAttr = attributes.find((a) => a.toLowerCase().startsWith('path='));
      const path = pathAttr ? pathAttr.slice(5) : '/';
      const expired = attributes.some((a) => /^expires=/i.test(a) && new Date(a.slice(8)).getTime() < Date.now()) || attributes.some((a) => /^max-age=0$/i.test(a));
      const index = this.cookies.findIndex((c) => c.name === name && c.path === path && c.host === url.host);
      if (index >= 0) this.cookies.splice(index, 1);
      if (!expired && value !== '') this.cookies.push({ name, value, path, host: url.host });
    }
  }

  /** One request, no redirect following. */
  async request(url: string | URL, init: { method?: string; form?: Record<string, string> } = {}): Promise<Hop> {
    const target = new URL(url);
    const headers: Record<string, string> = {};
    const cookie = this.cookieHeader(target);
    if (cookie) headers.cookie = cookie;
    if (this.#language) headers['accept-language'] = this.#language;
    let body: string | undefined;
    if (init.form) {
      headers['content-type'] = 'application/x-www-form-urlencoded';
      body = new URLSearchParams(init.form).toString();
    }
    const res = await fetch(target, { method: init.method ?? (init.form ? 'POST' : 'GET'), headers, body, redirect: 'manual' });
    this.#store(target, res.headers);
    const location = res.headers.get('location');
    const hop: Hop = { url: target, status: res.status, body: await res.text(), headers: res.headers, ...(location && { location: new URL(location, target) }) };
    this.history.push(hop);
    return hop;
  }

  /**
   * Follows redirects from `url` until a page answers without one, or the next location
   * satisfies `stopAt` (returned unfetched, e.g. a relying party's redirect_uri).
   */
  async follow(url: string | URL, options: { stopAt?: (url: URL) => boolean; form?: Record<string, string>; maxHops?: number } = {}): Promise<Hop> {
    let hop = await this.request(url, options.form ? { form: options.form } : {});
    for (let i = 0; hop.location && i < (options.maxHops ?? 20); i++) {
      if (options.stopAt?.(hop.location)) return hop;
      hop = await this.request(hop.location);
    }
    return hop;
  }

  /** Submits the form in `page` whose submit button text (or action URL) matches `button`. */
  async submit(page: Hop, button: RegExp, options: { stopAt?: (url: URL) => boolean } = {}): Promise<Hop> {
    const forms = [...page.body.matchAll(/<form\b[^>]*action="([^"]*)"[^>]*>([\s\S]*?)<\/form>/g)];
    const form = forms.find((f) => button.test(textOf(f[2]!)) || button.test(decode(f[1]!)));
    if (!form) throw new Error(`no form with a button matching ${button} on ${page.url}:\n${page.body}`);
    const fields: Record<string, string> = {};
    for (const input of form[2]!.matchAll(/<input\b[^>]*>/g)) {
      const name = /name="([^"]*)"/.exec(input[0])?.[1];
      const value = /value="([^"]*)"/.exec(input[0])?.[1] ?? '';
      if (name) fields[decode(name)] = decode(value);
    }
    for (const b of form[2]!.matchAll(/<button\b([^>]*)>([\s\S]*?)<\/button>/g)) {
      const name = /name="([^"]*)"/.exec(b[1]!)?.[1];
      if (name && button.test(textOf(b[2]!))) fields[decode(name)] = decode(/value="([^"]*)"/.exec(b[1]!)?.[1] ?? '');
    }
    return this.follow(new URL(decode(form[1]!), page.url), { form: fields, ...options });
  }
}

const decode = (s: string) => s.replace(/&quot;/g, '"').replace(/&#39;/g, "'").replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&');
const textOf = (htmlText: string) => decode(htmlText.replace(/<[^>]*>/g, '')).replace(/[\u2066-\u2069]/g, '').trim();
