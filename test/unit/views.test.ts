import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from '@jest/globals';
import Koa from 'koa';
import request from 'supertest';
import {
  PROBLEM_KINDS,
  SUPPORTED_LANGUAGES,
  contentSecurityPolicy,
  createTranslator,
  negotiateLanguage,
  problemInfo,
  renderPage,
  sendPage,
  staticAssets,
  stylesheetPath,
} from '../../src/views/index.ts';
import { messagesOf } from '../../src/views/i18n.ts';
import { SAMPLE_PROBLEMS, SAMPLE_SITE, samples } from '../../src/views/samples.ts';

const i18nFile = (lang: string) => JSON.parse(readFileSync(new URL(`../../i18n/${lang}.json`, import.meta.url), 'utf8')) as Record<string, unknown>;
const en = messagesOf(i18nFile('en'));
const qqq = messagesOf(i18nFile('qqq'));
const site = SAMPLE_SITE;
const HOSTILE = `<script>alert("x")</script>'&`;

const params = (message: string) => [...new Set(message.match(/\$\d+/g) ?? [])].sort();

describe('message files', () => {
  it('ships English, an RTL language and more', () => {
    assert.ok(SUPPORTED_LANGUAGES.includes('en'));
    assert.ok(SUPPORTED_LANGUAGES.includes('he'));
    assert.ok(!SUPPORTED_LANGUAGES.includes('qqq'), 'message documentation is not a language');
  });

  it('qqq.json documents every message of en.json, and nothing else', () => {
    assert.deepEqual(Object.keys(qqq).sort(), Object.keys(en).sort());
    for (const [key, doc] of Object.entries(qqq)) assert.ok(doc.trim().length > 10, `${key} has no real documentation`);
  });

  for (const lang of SUPPORTED_LANGUAGES.filter((l) => l !== 'en')) {
    it(`${lang}.json is fully translated and uses the same parameters as English`, () => {
      const messages = messagesOf(i18nFile(lang));
      assert.deepEqual(Object.keys(messages).sort(), Object.keys(en).sort());
      for (const [key, message] of Object.entries(messages)) assert.deepEqual(params(message), params(en[key] as string), `${lang}: ${key}`);
    });
  }

  it('messages are plain text: markup belongs to the templates', () => {
    for (const lang of SUPPORTED_LANGUAGES) {
      for (const [key, message] of Object.entries(messagesOf(i18nFile(lang)))) assert.doesNotMatch(message, /[<>]|\[\[|\[https?:/, `${lang}: ${key}`);
    }
  });

  it('every error variant has its title and message in English', () => {
    for (const kind of PROBLEM_KINDS) {
      const { stem } = problemInfo(kind);
      assert.ok(en[`wikimatrixsso-error-${stem}-title`], kind);
      assert.ok(en[`wikimatrixsso-error-${stem}-message`], kind);
    }
  });
});

describe('renderPage', () => {
  it('the samples cover every page and every error variant', () => {
    const all = samples();
    assert.deepEqual(new Set(all.map((s) => s.name)), new Set(['login', 'consent', 'logout', 'logged-out', 'error']));
    assert.deepEqual(new Set(SAMPLE_PROBLEMS.map((p) => p.kind)), new Set(PROBLEM_KINDS));
  });

  for (const lang of SUPPORTED_LANGUAGES) {
    describe(lang, () => {
      for (const sample of samples()) {
        it(sample.id, () => {
          const page = renderPage(sample.name, sample.model, { site, lang });
          assert.equal(page.lang, lang);
          assert.equal(page.dir, lang === 'he' ? 'rtl' : 'ltr');
          assert.match(page.html, new RegExp(`^<!doctype html>\\n<html lang="${lang}" dir="${page.dir}">`));
          // banana answers a missing key with the key itself; unfilled parameters stay as $N.
          assert.doesNotMatch(page.html, /wikimatrixsso-/, 'a message key is missing');
          assert.doesNotMatch(page.html, /\$\d|\{\{|\}\}|[\uE000\uE001]/, 'a message was not fully formatted');
          assert.match(page.html, /<main class="wms-card" aria-labelledby="wms-title">/);
          assert.match(page.html, /<h1 id="wms-title" class="wms-card__title">[^<]*\S/);
          assert.match(page.html, /<title>[^<]+<\/title>/);
          assert.match(page.html, new RegExp(`<link rel="stylesheet" href="${stylesheetPath()}">`));
          assert.doesNotMatch(page.html, /<script|<style|\sstyle=|\son[a-z]+=/i, 'strict CSP: no inline script or style');
          assert.equal(page.status, sample.name === 'error' ? problemInfo(sample.model.problem).status : 200);
        });
      }
    });
  }

  it('uses the translation, not English, for a translated language', () => {
    const page = renderPage('logged-out', {}, { site, lang: 'de' });
    assert.match(page.html, /<h1[^>]*>Du bist abgemeldet<\/h1>/);
  });

  it('negotiates an unsupported or regional language down to a shipped one', () => {
    assert.equal(renderPage('logged-out', {}, { site, lang: 'de-AT' }).lang, 'de');
    assert.equal(renderPage('logged-out', {}, { site, lang: 'xx' }).lang, 'en');
    assert.equal(renderPage('logged-out', {}, { site }).lang, 'en');
  });

  it('formats numbers and plurals per language', () => {
    const tooNew = (minDays: number, lang: string) => renderPage('error', { problem: { kind: 'account_too_new', minDays } }, { site, lang }).html;
    assert.match(tooNew(1, 'en'), /at least one day old/);
    assert.match(tooNew(1000, 'en'), /at least 1,000 days old/);
    assert.match(tooNew(2, 'he'), /יומיים/);
    assert.match(tooNew(5, 'he'), /5 ימים/);
    const groups = renderPage('error', { problem: { kind: 'missing_group', groups: ['sysop', 'steward'] } }, { site, lang: 'en' }).html;
    assert.match(groups, /these groups on <bdi>Wikimedia<\/bdi> can sign in to <bdi>Wikimedia Chat<\/bdi>: <bdi>sysop<\/bdi> or <bdi>steward<\/bdi>\./);
  });

  it('logout posts the xsrf secret, and "yes" is the only button that sends logout=yes', () => {
    const { html } = renderPage('logout', { action: 'https://sso.example.org/session/end/confirm', xsrf: 'secret-1' }, { site, lang: 'en' });
    assert.match(html, /<form class="wms-actions" method="post" action="https:\/\/sso.example.org\/session\/end\/confirm"><input type="hidden" name="xsrf" value="secret-1">/);
    assert.equal(html.match(/name="logout" value="yes"/g)?.length, 1);
    assert.equal(html.match(/<button type="submit"/g)?.length, 2);
  });

  it('describes known scopes in words and lists unknown ones by name, once each', () => {
    const { html } = renderPage('consent', { clientName: 'Bot', scopes: ['openid', 'wiki', 'wiki', 'custom:thing'], allow: { action: '/a' }, deny: { action: '/d' } }, { site, lang: 'en' });
    assert.match(html, /user groups, edit count and when your account was created/);
    assert.match(html, /Other access: <bdi>custom:thing<\/bdi>/);
    assert.equal(html.match(/class="wms-scopes__item"/g)?.length, 3);
    assert.doesNotMatch(html, /signed in as/, 'no username given, none shown');
  });
});

describe('escaping', () => {
  const check = (html: string) => {
    assert.doesNotMatch(html, /<script/i);
    assert.doesNotMatch(html, /alert\("x"\)/);
    assert.match(html, /&lt;script&gt;alert\(&quot;x&quot;\)&lt;\/script&gt;&#39;&amp;/);
  };

  it('escapes the client name, username and scope names', () => {
    const page = renderPage('consent', { clientName: HOSTILE, username: HOSTILE, scopes: [HOSTILE], allow: { action: '/a', fields: { uid: HOSTILE } }, deny: { action: '/d' } }, { site, lang: 'he' });
    check(page.html);
    assert.match(page.html, /<input type="hidden" name="uid" value="&lt;script&gt;alert\(&quot;x&quot;\)&lt;\/script&gt;&#39;&amp;">/);
    assert.match(page.html, /<title>[^<]*&lt;script&gt;/, 'the title is escaped as well');
  });

  it('escapes the site names, the request id, group names and the xsrf value', () => {
    const hostileSite = { serviceName: HOSTILE, wikiName: HOSTILE };
    check(renderPage('login', { clientName: HOSTILE, continueTo: { action: '/c' }, cancel: { action: '/x' } }, { site: hostileSite, lang: 'en' }).html);
    check(renderPage('error', { problem: { kind: 'missing_group', groups: [HOSTILE] }, requestId: HOSTILE }, { site, lang: 'en' }).html);
    check(renderPage('error', { problem: { kind: 'forbidden_group', group: HOSTILE } }, { site, lang: 'fr' }).html);
    check(renderPage('logout', { action: '/end', xsrf: HOSTILE }, { site: hostileSite, lang: 'de' }).html);
  });

  it('keeps wikitext and message syntax in values inert', () => {
    const { html } = renderPage('login', { clientName: '{{PLURAL:1|a|b}} [[Foo]] $1', continueTo: { action: '/c' }, cancel: { action: '/x' } }, { site, lang: 'en' });
    assert.match(html, /<bdi>\{\{PLURAL:1\|a\|b\}\} \[\[Foo\]\] \$1<\/bdi>/);
  });

  it('drops a retry link that is not http(s) or a same-site path', () => {
    for (const retryUrl of ['javascript:alert(1)', '//evil.example/', 'data:text/html,x', ' javascript:x']) {
      const { html } = renderPage('error', { problem: { kind: 'wiki_timeout' }, retryUrl }, { site, lang: 'en' });
      assert.doesNotMatch(html, /<a /, retryUrl);
    }
    assert.match(renderPage('error', { problem: { kind: 'wiki_timeout' }, retryUrl: 'https://chat.example.org/?a=1&b=2' }, { site, lang: 'en' }).html, /href="https:\/\/chat.example.org\/\?a=1&amp;b=2"/);
  });

  it('refuses to render a form that posts to an unsafe URL', () => {
    assert.throws(() => renderPage('login', { clientName: 'x', continueTo: { action: 'javascript:alert(1)' }, cancel: { action: '/x' } }, { site, lang: 'en' }), /unsafe URL/);
    assert.throws(() => renderPage('logout', { action: '//evil.example/', xsrf: 'x' }, { site, lang: 'en' }), /unsafe URL/);
  });
});

describe('translator', () => {
  it('falls back to English for a message missing from a translation', () => {
    const t = createTranslator('de', { en: { greet: 'Hello $1', bye: 'Bye' }, de: { bye: 'Tschüss' } });
    assert.equal(t.t('greet', 'Ana').html, 'Hello <bdi>Ana</bdi>');
    assert.equal(t.t('bye').html, 'Tschüss');
    assert.equal(t.lang, 'de');
  });

  it('answers with the key for a message that exists nowhere (which the page tests catch)', () => {
    assert.equal(createTranslator('en').text('wikimatrixsso-no-such-message'), 'wikimatrixsso-no-such-message');
  });

  it('sets the direction from the language', () => {
    assert.equal(createTranslator('he').dir, 'rtl');
    assert.equal(createTranslator('en').dir, 'ltr');
    assert.equal(renderPage('login', samples()[0]!.model as never, { site, lang: 'he' }).html.includes('<html lang="he" dir="rtl">'), true);
  });
});

describe('negotiateLanguage', () => {
  const cases: [uiLocales: string | undefined, acceptLanguage: string | undefined, expected: string][] = [
    [undefined, undefined, 'en'],
    ['', '', 'en'],
    ['he', 'de', 'he'],
    ['fr-CA de', 'he', 'fr'],
    ['xx de', undefined, 'de'],
    ['xx yy', 'fr', 'fr'],
    ['DE-at', undefined, 'de'],
    ['gsw', undefined, 'de'],
    ['yi', undefined, 'he'],
    ['<script> de', undefined, 'de'],
    [undefined, 'de', 'de'],
    [undefined, 'he-IL,he;q=0.9,en-US;q=0.8,en;q=0.7', 'he'],
    [undefined, 'en;q=0.5, fr;q=0.9, de;q=0.7', 'fr'],
    [undefined, 'fr;q=0, de;q=0.1', 'de'],
    [undefined, 'xx, fr;q=0.2', 'fr'],
    [undefined, 'de;q=0.8, fr;q=0.8', 'de'],
    [undefined, '*', 'en'],
    [undefined, 'fr;q=2, de;q=0.5', 'de'],
    [undefined, 'fr;q=abc', 'en'],
    [undefined, 'ja, zh-Hant-TW;q=0.9', 'en'],
    ['ar', 'de', 'de'],
  ];
  for (const [uiLocales, acceptLanguage, expected] of cases) {
    it(`ui_locales=${JSON.stringify(uiLocales)} Accept-Language=${JSON.stringify(acceptLanguage)} → ${expected}`, () => {
      assert.equal(negotiateLanguage(uiLocales, acceptLanguage), expected);
    });
  }

  it('stays bounded on a huge header', () => {
    const header = `${'xx;q=0.9,'.repeat(100_000)}de`;
    const started = performance.now();
    assert.equal(negotiateLanguage(header, header), 'en');
    assert.ok(performance.now() - started < 500);
  });
});

describe('contentSecurityPolicy', () => {
  it('allows only our stylesheet and forms to us, the wiki and the relying parties', () => {
    assert.equal(
      contentSecurityPolicy({ formActionOrigins: ['https://meta.wikimedia.org/w/rest.php/oauth2/authorize', 'https://matrix.example.org/_synapse/client/oidc/callback', 'https://meta.wikimedia.org'] }),
      "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self' https://meta.wikimedia.org https://matrix.example.org; frame-ancestors 'none'; base-uri 'none'",
    );
    assert.equal(contentSecurityPolicy(), "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'");
  });

  it('refuses what is not an http(s) origin, rather than widen the policy', () => {
    assert.throws(() => contentSecurityPolicy({ formActionOrigins: ['not a url'] }), /not a URL/);
    assert.throws(() => contentSecurityPolicy({ formActionOrigins: ["https://a.example; script-src 'unsafe-inline'"] }), /not a URL/);
    assert.throws(() => contentSecurityPolicy({ formActionOrigins: ['javascript:alert(1)'] }), /http\(s\)/);
  });
});

describe('staticAssets and sendPage', () => {
  const csp = contentSecurityPolicy({ formActionOrigins: ['https://meta.wikimedia.org'] });
  const app = new Koa();
  app.use(staticAssets());
  app.use((ctx) => {
    if (ctx.path === '/page') sendPage(ctx, renderPage('error', { problem: { kind: 'account_hidden' } }, { site, lang: 'he' }), csp);
  });
  const http = request(app.callback());

  it('serves one content-hashed stylesheet, Codex tokens included, cached for good', async () => {
    assert.match(stylesheetPath(), /^\/static\/pages\.[A-Za-z0-9_-]{12}\.css$/);
    const res = await http.get(stylesheetPath());
    assert.equal(res.status, 200);
    assert.equal(res.headers['content-type'], 'text/css; charset=utf-8');
    assert.equal(res.headers['cache-control'], 'public, max-age=31536000, immutable');
    const css = res.text;
    assert.match(css, /--color-progressive: #36c;/);
    assert.match(css, /@media \(prefers-color-scheme: dark\)/);
    assert.match(css, /\.wms-button--primary \{/);

    const again = await http.get(stylesheetPath()).set('If-None-Match', res.headers.etag ?? '');
    assert.equal(again.status, 304);
    const head = await http.head(stylesheetPath());
    assert.equal(head.status, 200);
  });

  it('leaves other paths alone', async () => {
    const res = await http.get('/static/other.css');
    assert.equal(res.status, 404);
  });

  it('sends a page with its status, language, policy and no caching', async () => {
    const res = await http.get('/page');
    assert.equal(res.status, 403);
    assert.equal(res.headers['content-type'], 'text/html; charset=utf-8');
    assert.equal(res.headers['content-language'], 'he');
    assert.equal(res.headers['content-security-policy'], csp);
    assert.equal(res.headers['cache-control'], 'no-store');
    assert.match(res.text, /<html lang="he" dir="rtl">/);
  });
});

describe('page titles (issue 9 item 8)', () => {
  for (const lang of SUPPORTED_LANGUAGES) {
    for (const sample of samples()) {
      it(`${lang} ${sample.id}: no bidi isolation marks in <title>; the heading isolates with <bdi>`, () => {
        const { html } = renderPage(sample.name, sample.model, { site, lang });
        const title = /<title>([^<]*)<\/title>/.exec(html)![1]!;
        assert.doesNotMatch(title, /[\u2066-\u2069]/, `${lang} ${sample.id}: ${JSON.stringify(title)}`);
        assert.ok(title.includes(escapeForTitle(site.serviceName)), title);
      });
    }
  }
});

function escapeForTitle(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;');
}
