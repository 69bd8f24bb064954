import { readdirSync, readFileSync } from 'node:fs';
import Banana from 'banana-i18n';
import { SafeHtml, escapeHtml, html } from './html.ts';

/** Messages of one language, in the translatewiki file format (`@metadata` is not a message). */
export type Messages = Readonly<Record<string, string>>;
export type Catalog = Readonly<Record<string, Messages>>;
export type Direction = 'ltr' | 'rtl';

export const DEFAULT_LANGUAGE = 'en';
/** The translatewiki convention: message documentation, never shown to anyone. */
const DOCUMENTATION = 'qqq';

const I18N_DIR = new URL('../../i18n/', import.meta.url);

export function loadCatalog(dir: URL = I18N_DIR): Catalog {
  const catalog: Record<string, Messages> = {};
  for (const file of readdirSync(dir).sort()) {
    const lang = file.replace(/\.json$/, '');
    if (lang === file || lang === DOCUMENTATION) continue;
    catalog[lang.toLowerCase()] = messagesOf(JSON.parse(readFileSync(new URL(file, dir), 'utf8')) as Record<string, unknown>);
  }
  if (!catalog[DEFAULT_LANGUAGE]) throw new Error(`i18n: ${DEFAULT_LANGUAGE}.json is missing from ${dir.pathname}`);
  return catalog;
}

export function messagesOf(file: Record<string, unknown>): Messages {
  return Object.fromEntries(Object.entries(file).filter((entry): entry is [string, string] => !entry[0].startsWith('@') && typeof entry[1] === 'string'));
}

export const catalog: Catalog = loadCatalog();
export const SUPPORTED_LANGUAGES: readonly string[] = Object.keys(catalog);

const RTL_LANGUAGES = new Set(['ar', 'arc', 'arz', 'ckb', 'dv', 'fa', 'he', 'ks', 'mzn', 'ps', 'sd', 'ug', 'ur', 'yi']);

export function directionOf(lang: string): Direction {
  return RTL_LANGUAGES.has(primarySubtag(lang)) ? 'rtl' : 'ltr';
}

function primarySubtag(lang: string): string {
  return lang.toLowerCase().split('-')[0] ?? '';
}

// BCP 47 shape, loosely: enough to keep garbage (and banana's locale validation) out.
const LANGUAGE_TAG = /^[a-z]{2,3}(?:-[a-z0-9]{1,8})*$/i;
const MAX_TAGS = 20;
const MAX_HEADER_LENGTH = 2000;

/**
 * The page language: the OIDC `ui_locales` (space-separated, in order of preference) first, then
 * the browser's Accept-Language by q-value, then English. A regional or unsupported tag falls
 * back to its base language and then to MediaWiki's language fallbacks (gsw → de, yi → he).
 */
export function negotiateLanguage(uiLocales?: string | null, acceptLanguage?: string | null, supported: readonly string[] = SUPPORTED_LANGUAGES): string {
  const available = new Set(supported.map((l) => l.toLowerCase()));
  for (const tag of [...parseUiLocales(uiLocales), ...parseAcceptLanguage(acceptLanguage)]) {
    const match = candidates(tag).find((c) => available.has(c));
    if (match) return match;
  }
  return DEFAULT_LANGUAGE;
}

export function parseUiLocales(uiLocales?: string | null): string[] {
  if (!uiLocales) return [];
  return uiLocales.slice(0, MAX_HEADER_LENGTH).split(/\s+/).filter((t) => LANGUAGE_TAG.test(t)).slice(0, MAX_TAGS);
}

export function parseAcceptLanguage(header?: string | null): string[] {
  if (!header) return [];
  const ranges: { tag: string; q: number }[] = [];
  for (const part of header.slice(0, MAX_HEADER_LENGTH).split(',').slice(0, MAX_TAGS)) {
    const [tag = '', ...params] = part.split(';').map((s) => s.trim());
    if (!LANGUAGE_TAG.test(tag)) continue;
    const q = qualityOf(params);
    if (q !== undefined && q > 0) ranges.push({ tag, q });
  }
  // Array.prototype.sort is stable, so equal q-values keep the header's order.
  return ranges.sort((a, b) => b.q - a.q).map((r) => r.tag);
}

function qualityOf(params: string[]): number | undefined {
  const q = params.find((p) => /^q\s*=/i.test(p));
  if (q === undefined) return 1;
  const match = /^q\s*=\s*(0(?:\.\d{0,3})?|1(?:\.0{0,3})?)$/i.exec(q);
  return match ? Number(match[1]) : undefined;
}

function candidates(tag: string): string[] {
  const subtags = tag.toLowerCase().split('-');
  const prefixes = subtags.map((_, i) => subtags.slice(0, subtags.length - i).join('-'));
  const fallbacks = prefixes.flatMap((p) => new Banana(p).getFallbackLocales());
  // getFallbackLocales ends with banana's final fallback, English: keep that for the last resort.
  return [...new Set([...prefixes, ...fallbacks.filter((l) => l !== DEFAULT_LANGUAGE)])];
}

export type MessageParam = string | number | SafeHtml;

export interface Translator {
  readonly lang: string;
  readonly dir: Direction;
  /**
   * A message as HTML. Messages are plain text (escaped whole); string parameters are escaped and
   * isolated in `<bdi>` so a right-to-left username cannot reorder the sentence around it;
   * `SafeHtml` parameters go in as they are; numbers drive {{PLURAL}}.
   */
  t(key: string, ...params: MessageParam[]): SafeHtml;
  /** A message as plain text, for places that take no markup (`<title>`): no isolation marks. */
  text(key: string, ...params: (string | number)[]): string;
  /** A localised "a, b or c" list, each item escaped and isolated like a string parameter. */
  list(items: readonly string[], type?: 'conjunction' | 'disjunction'): SafeHtml;
}

// Private-use characters: they survive banana's parser untouched and never occur in messages.
const OPEN = '\uE000';
const CLOSE = '\uE001';
const BIDI_CONTROLS = /[\u2066-\u2069]/g;
const PLACEHOLDER = new RegExp(`${OPEN}(\\d+)${CLOSE}`, 'g');

function isolate(text: string): string {
  return html`<bdi>${text}</bdi>`.html;
}

export function createTranslator(lang: string, messages: Catalog = catalog): Translator {
  const known = messages[lang] ? lang : DEFAULT_LANGUAGE;
  const banana = new Banana(known, { finalFallback: DEFAULT_LANGUAGE });
  // banana merges into the objects it is given: hand it copies.
  banana.load({ ...messages[DEFAULT_LANGUAGE] }, DEFAULT_LANGUAGE);
  if (known !== DEFAULT_LANGUAGE) banana.load({ ...messages[known] }, known);

  function format(key: string, params: MessageParam[], escape: (s: string) => string, insert: (p: string | SafeHtml) => string): string {
    // Strings go through banana as placeholders, so nothing in them is parsed as markup or wikitext.
    const args = params.map((p, i) => (typeof p === 'number' ? p : `${OPEN}${i}${CLOSE}`));
    return escape(banana.i18n(key, ...args)).replace(PLACEHOLDER, (_, i: string) => insert(params[Number(i)] as string | SafeHtml));
  }

  return {
    lang: known,
    dir: directionOf(known),
    t: (key, ...params) =>
      new SafeHtml(format(key, params, escapeHtml, (p) => (p instanceof SafeHtml ? p.html : isolate(p)))),
    // Browsers show <title> in tab strips and window lists that draw U+2068/U+2069 as boxes or
    // drop the text after them, so a title carries no isolation marks, its values' own included;
    // the page's <h1> isolates the same values with <bdi>.
    text: (key, ...params) => format(key, params, (s) => s, (p) => String(p)).replace(BIDI_CONTROLS, ''),
    list: (items, type = 'conjunction') =>
      new SafeHtml(
        new Intl.ListFormat(known, { type })
          .formatToParts(items)
          .map((part) => (part.type === 'element' ? isolate(part.value) : escapeHtml(part.value)))
          .join(''),
      ),
  };
}
