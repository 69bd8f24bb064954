import { type SafeHtml, checkedUrl, html } from './html.ts';
import type { Translator } from './i18n.ts';
import { stylesheetPath } from './static.ts';

export interface Site {
  /** What people sign in to, e.g. "Wikimedia Chat". */
  serviceName: string;
  /** The wiki whose accounts are used, e.g. "Wikimedia" (as in "Continue with Wikimedia"). */
  wikiName: string;
}

/** A POST form: the button submits `fields` as hidden inputs to `action`. */
export interface FormTarget {
  action: string;
  fields?: Readonly<Record<string, string>>;
}

/** A message key and its parameters (strings or numbers only: titles are also plain text). */
export interface Title {
  key: string;
  params?: readonly (string | number)[];
}

/** The document up to `<body>`: language and direction, the title, the one stylesheet; `extra` goes in the head. */
export function documentStart(i18n: Translator, site: Site, title: Title, extra: SafeHtml | '' = ''): SafeHtml {
  const params = title.params ?? [];
  return html`<!doctype html>
<html lang="${i18n.lang}" dir="${i18n.dir}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light dark">
<meta name="robots" content="noindex, nofollow">
${extra}<title>${i18n.text('wikimatrixsso-html-title', i18n.text(title.key, ...params), site.serviceName)}</title>
<link rel="stylesheet" href="${stylesheetPath()}">
<link rel="icon" href="data:,">
</head>
`;
}

export function layout(i18n: Translator, site: Site, title: Title, body: SafeHtml): SafeHtml {
  const params = title.params ?? [];
  return html`${documentStart(i18n, site, title)}<body>
<main class="wms-card" aria-labelledby="wms-title">
<p class="wms-card__service">${site.serviceName}</p>
<h1 id="wms-title" class="wms-card__title">${i18n.t(title.key, ...params)}</h1>
${body}
</main>
</body>
</html>
`;
}

export type ButtonWeight = 'primary' | 'normal';

/** A Codex-style button inside its own POST form. */
export function formButton(target: FormTarget, label: SafeHtml, weight: ButtonWeight, extra?: { name: string; value: string }): SafeHtml {
  return html`<form class="wms-actions__form" method="post" action="${checkedUrl(target.action)}">${hiddenFields(target.fields)}${button(label, weight, extra)}</form>`;
}

export function button(label: SafeHtml, weight: ButtonWeight, extra?: { name: string; value: string }): SafeHtml {
  const classes = weight === 'primary' ? 'wms-button wms-button--primary' : 'wms-button';
  return html`<button type="submit" class="${classes}"${extra ? html` name="${extra.name}" value="${extra.value}"` : ''}>${buttonLabel(label)}</button>`;
}

/** The label in one box: as flex items, its text and <bdi> parts would lose the spaces between them. */
export function buttonLabel(label: SafeHtml): SafeHtml {
  return html`<span class="wms-button__label">${label}</span>`;
}

export function hiddenFields(fields: Readonly<Record<string, string>> = {}): SafeHtml[] {
  return Object.entries(fields).map(([name, value]) => html`<input type="hidden" name="${name}" value="${value}">`);
}
