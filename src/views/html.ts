/**
 * A tiny escaping template: every interpolated value is escaped unless it is already `SafeHtml`,
 * so markup can only come from the template literals written here, never from data.
 */
export class SafeHtml {
  readonly html: string;
  constructor(html: string) {
    this.html = html;
  }
  toString(): string {
    return this.html;
  }
}

export type Interpolation = string | number | SafeHtml | null | undefined | false | readonly Interpolation[];

const ENTITIES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ENTITIES[c] as string);
}

function render(value: Interpolation): string {
  if (value === null || value === undefined || value === false) return '';
  if (value instanceof SafeHtml) return value.html;
  if (Array.isArray(value)) return value.map(render).join('');
  return escapeHtml(String(value));
}

export function html(strings: TemplateStringsArray, ...values: Interpolation[]): SafeHtml {
  let out = strings[0] ?? '';
  values.forEach((value, i) => {
    out += render(value) + (strings[i + 1] ?? '');
  });
  return new SafeHtml(out);
}

/**
 * Links and form targets must be http(s) URLs or same-origin paths: escaping alone would still let
 * a `javascript:` URL through, and `//host` would leave the site.
 */
export function isSafeUrl(url: string): boolean {
  if (url.startsWith('/')) return !url.startsWith('//') && !url.startsWith('/\\');
  try {
    const { protocol } = new URL(url);
    return protocol === 'https:' || protocol === 'http:';
  } catch {
    return false;
  }
}

/** For targets the service itself builds: a bad one is a programming error, not user input. */
export function checkedUrl(url: string): string {
  if (!isSafeUrl(url)) throw new TypeError(`refusing to render an unsafe URL: ${JSON.stringify(url.slice(0, 100))}`);
  return url;
}
