// The pages in a real browser: served with their Content-Security-Policy by a tiny Koa app,
// loaded in English and Hebrew (RTL), checked for CSP violations, applied Codex styles, visible
// focus and text contrast, and screenshotted to /tmp/wms-pages for a person to look at.
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, it, jest } from '@jest/globals';
import Koa from 'koa';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { contentSecurityPolicy, renderPage, sendPage, staticAssets } from '../../src/views/index.ts';
import { SAMPLE_SITE, samples } from '../../src/views/samples.ts';
import { chromiumAvailable, launchChromium } from '../support/chromium.ts';
import { skipUnless } from '../support/real-parts.ts';
import { skippable } from '../support/suites.ts';

const unavailable = chromiumAvailable();

// What the functions evaluated in the page use of it: the project's TypeScript has no DOM library.
interface PageElement {
  tagName: string;
  className: string;
  textContent: string | null;
  parentElement: PageElement | null;
}
interface PageWindow {
  document: {
    body: PageElement;
    documentElement: PageElement & { scrollWidth: number; clientWidth: number };
    activeElement: PageElement | null;
    querySelector(selector: string): PageElement | null;
    querySelectorAll(selector: string): Iterable<PageElement>;
    addEventListener(type: 'securitypolicyviolation', listener: (event: { violatedDirective: string; blockedURI: string }) => void): void;
  };
  getComputedStyle(element: PageElement): { backgroundColor: string; color: string; boxShadow: string; direction: string };
  __cspViolations: string[];
}
const SCREENSHOTS = '/tmp/wms-pages';
const LANGUAGES = ['en', 'he'];
const WIKI = 'https://meta.wikimedia.org';

function pagesApp(): Koa {
  const csp = contentSecurityPolicy({ formActionOrigins: [WIKI] });
  const byId = new Map(samples().map((s) => [s.id, s]));
  const app = new Koa();
  app.use(staticAssets());
  app.use((ctx) => {
    const [, lang, id] = ctx.path.split('/');
    if (lang === 'inline-style') {
      // The control: proves that a violation would be seen.
      ctx.set('Content-Security-Policy', csp);
      ctx.type = 'html';
      ctx.body = '<!doctype html><html lang="en"><body><p style="color: red">x</p></body></html>';
      return;
    }
    const sample = byId.get(id ?? '');
    if (!sample || !lang) return;
    sendPage(ctx, renderPage(sample.name, sample.model, { site: SAMPLE_SITE, lang }), csp);
  });
  return app;
}

interface Loaded {
  page: Page;
  problems: string[];
}

async function load(context: BrowserContext, url: string): Promise<Loaded> {
  const page = await context.newPage();
  const problems: string[] = [];
  page.on('console', (message) => {
    // Error pages answer 4xx/5xx on purpose; Chromium reports that about the document itself.
    const ownStatus = message.location().url === url && /^Failed to load resource: the server responded with a status of \d+/.test(message.text());
    if ((message.type() === 'error' || message.type() === 'warning') && !ownStatus) problems.push(`console ${message.type()}: ${message.text()}`);
  });
  page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
  page.on('requestfailed', (request) => problems.push(`request failed: ${request.url()}`));
  const response = await page.goto(url, { waitUntil: 'load', timeout: 15_000 });
  assert.ok(response, url);
  const violations = await page.evaluate(() => (globalThis as unknown as PageWindow).__cspViolations);
  problems.push(...violations.map((v) => `CSP violation: ${v}`));
  return { page, problems };
}

/** Every text-bearing element whose text contrasts less than WCAG AA (4.5:1) with its background. */
function lowContrast(page: Page): Promise<string[]> {
  return page.evaluate(() => {
    const { document, getComputedStyle } = globalThis as unknown as PageWindow;
    const parse = (color: string): number[] => (color.match(/[\d.]+/g) ?? []).map(Number);
    // WCAG 2 relative luminance of an sRGB colour.
    const luminance = (rgb: readonly number[]) =>
      rgb.slice(0, 3).reduce((sum, channel, i) => {
        const s = channel / 255;
        return sum + (s <= 0.03928 ? s / 12.92 : ((s + 0.055) / 1.055) ** 2.4) * ([0.2126, 0.7152, 0.0722][i] ?? 0);
      }, 0);
    const background = (element: PageElement | null): number[] => {
      for (let e = element; e; e = e.parentElement) {
        const rgba = parse(getComputedStyle(e).backgroundColor);
        if (rgba[3] === undefined || rgba[3] > 0) return rgba;
      }
      return [255, 255, 255];
    };
    const failures: string[] = [];
    for (const element of document.querySelectorAll('h1, h2, p, li, button, a, code, bdi')) {
      if (!element.textContent?.trim()) continue;
      const fg = luminance(parse(getComputedStyle(element).color));
      const bg = luminance(background(element));
      const ratio = (Math.max(fg, bg) + 0.05) / (Math.min(fg, bg) + 0.05);
      if (ratio < 4.5) failures.push(`${element.tagName.toLowerCase()}.${element.className}: ${ratio.toFixed(2)}`);
    }
    return failures;
  });
}

jest.setTimeout(180_000);

skippable(describe, skipUnless(unavailable))('pages in headless Chromium', () => {
  let browser: Browser;
  let server: ReturnType<Koa['listen']>;
  let base = '';

  beforeAll(async () => {
    mkdirSync(SCREENSHOTS, { recursive: true });
    server = pagesApp().listen(0, '127.0.0.1');
    await new Promise((resolve) => server.once('listening', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    browser = await launchChromium();
  });

  afterAll(async () => {
    await browser?.close();
    await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
  });

  async function newContext(options: { colorScheme?: 'light' | 'dark'; width?: number } = {}): Promise<BrowserContext> {
    // Reduced motion turns transitions off, so styles are read (and pictured) in their final state.
    const context = await browser.newContext({
      viewport: { width: options.width ?? 760, height: 640 },
      colorScheme: options.colorScheme ?? 'light',
      reducedMotion: 'reduce',
    });
    // Runs outside the page's CSP (through the DevTools protocol), so it can watch for violations.
    await context.addInitScript(() => {
      const page = globalThis as unknown as PageWindow;
      const violations: string[] = [];
      page.__cspViolations = violations;
      page.document.addEventListener('securitypolicyviolation', (e) => violations.push(`${e.violatedDirective} ${e.blockedURI}`));
    });
    return context;
  }

  it('notices a CSP violation when there is one (control)', async () => {
    const context = await newContext();
    try {
      const { problems } = await load(context, `${base}/inline-style/x`);
      assert.ok(problems.some((p) => p.startsWith('CSP violation: style-src')), problems.join('\n'));
    } finally {
      await context.close();
    }
  });

  for (const lang of LANGUAGES) {
    it(`renders every page in ${lang} under the strict CSP, styled with Codex`, async () => {
      const context = await newContext();
      try {
        for (const sample of samples()) {
          const { page, problems } = await load(context, `${base}/${lang}/${sample.id}`);
          assert.deepEqual(problems, [], `${lang}/${sample.id}`);
          const looks = await page.evaluate(() => {
            const { document, getComputedStyle } = globalThis as unknown as PageWindow;
            const style = (selector: string) => {
              const element = document.querySelector(selector);
              return element ? getComputedStyle(element) : undefined;
            };
            return {
              dir: getComputedStyle(document.body).direction,
              cardBackground: style('.wms-card')?.backgroundColor,
              cardShadow: style('.wms-card')?.boxShadow,
              primaryBackground: style('.wms-button--primary')?.backgroundColor,
              primaryColor: style('.wms-button--primary')?.color,
            };
          });
          assert.equal(looks.dir, lang === 'he' ? 'rtl' : 'ltr', sample.id);
          assert.equal(looks.cardBackground, 'rgb(255, 255, 255)', sample.id);
          assert.notEqual(looks.cardShadow, 'none', sample.id);
          if (looks.primaryBackground !== undefined) {
            assert.equal(looks.primaryBackground, 'rgb(51, 102, 204)', `${sample.id}: Codex progressive #36c`);
            assert.equal(looks.primaryColor, 'rgb(255, 255, 255)', sample.id);
          }
          assert.deepEqual(await lowContrast(page), [], `${lang}/${sample.id}: contrast`);
          await page.screenshot({ path: `${SCREENSHOTS}/${lang}-${sample.id}.png`, fullPage: true });
          await page.close();
        }
      } finally {
        await context.close();
      }
    });
  }

  it('shows keyboard focus on the primary button', async () => {
    const context = await newContext();
    try {
      const { page } = await load(context, `${base}/en/login`);
      const unfocused = await page.evaluate(() => {
        const { document, getComputedStyle } = globalThis as unknown as PageWindow;
        return getComputedStyle(document.querySelector('.wms-button--primary')!).boxShadow;
      });
      await page.keyboard.press('Tab');
      const focused = await page.evaluate(() => {
        const { document, getComputedStyle } = globalThis as unknown as PageWindow;
        return { cls: document.activeElement?.className, shadow: getComputedStyle(document.activeElement!).boxShadow };
      });
      assert.equal(focused.cls, 'wms-button wms-button--primary');
      assert.notEqual(focused.shadow, unfocused);
      assert.match(focused.shadow, /rgb\(51, 102, 204\)/);
      await page.screenshot({ path: `${SCREENSHOTS}/en-login-focus.png` });
    } finally {
      await context.close();
    }
  });

  it('follows a dark colour scheme and fits a phone screen', async () => {
    const dark = await newContext({ colorScheme: 'dark' });
    const phone = await newContext({ width: 360 });
    try {
      for (const id of ['consent', 'error-blocked-sitewide']) {
        const { page, problems } = await load(dark, `${base}/en/${id}`);
        assert.deepEqual(problems, []);
        const card = await page.evaluate(() => {
          const { document, getComputedStyle } = globalThis as unknown as PageWindow;
          return getComputedStyle(document.querySelector('.wms-card')!).backgroundColor;
        });
        assert.notEqual(card, 'rgb(255, 255, 255)');
        assert.deepEqual(await lowContrast(page), [], `dark ${id}: contrast`);
        await page.screenshot({ path: `${SCREENSHOTS}/dark-en-${id}.png`, fullPage: true });
      }
      const { page } = await load(phone, `${base}/he/login`);
      const overflow = await page.evaluate(() => {
        const { documentElement } = (globalThis as unknown as PageWindow).document;
        return documentElement.scrollWidth > documentElement.clientWidth;
      });
      assert.equal(overflow, false, 'no horizontal scrolling on a 360px screen');
      await page.screenshot({ path: `${SCREENSHOTS}/phone-he-login.png`, fullPage: true });
    } finally {
      await dark.close();
      await phone.close();
    }
  });
});
