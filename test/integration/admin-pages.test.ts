// The admin pages over HTTP, signed in through the provider's real flow and the wiki's OAuth
// double: admins by name and by wiki group get in, anyone else gets the 403 page; the session
// cookie is signed, HttpOnly, SameSite=Lax and scoped to /admin, ends when it should, and every
// form needs its CSRF token from this site. Names are of several scripts; the RTL page is RTL.
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, test } from 'node:test';
import { ModerationAuditLog } from '../../src/moderation/records.ts';
import { Browser, type Hop } from '../support/browser.ts';
import { editor, startStack, type Stack } from '../support/login-stack.ts';

const ADMIN = 'Оператор Один';
const STEWARD = 'שומר הסף';
const SESSION_SECONDS = 8;

describe('admin pages', () => {
  let stack: Stack;

  before(async () => {
    stack = await startStack({ config: { admin: { users: ['оператор_Один'], groups: ['steward'], session_lifetime: SESSION_SECONDS } } });
    await new ModerationAuditLog(stack.service.db).append([
      {
        at: new Date('2026-12-01T12:00:00Z'),
        passId: 'pass-1',
        dryRun: false,
        kind: 'ban',
        roomId: '!village:example.org',
        userId: '@vandal:example.org',
        cause: { kind: 'block', wiki: 'wiki', blockId: 77, logId: 88, by: 'Админ', reason: '<script>alert(1)</script> Вандализм', timestamp: new Date('2026-12-01T11:59:00Z'), expiry: null, group: null, hidden: false },
        outcome: 'failed',
        error: 'M_FORBIDDEN',
        detail: {},
      },
    ]);
  });
  after(() => stack.stop());

  /** Signs `username` in from /admin through the provider and the wiki; the last hop is the page. */
  async function signIn(username: string, groups: string[] = [], acceptLanguage?: string): Promise<{ browser: Browser; page: Hop }> {
    stack.wiki.login = { user: editor({ centralId: 9400 + username.length + groups.length, username, groups }) };
    const browser = new Browser(acceptLanguage ? { acceptLanguage } : {});
    const page = await browser.follow(`${stack.issuer}/admin`);
    return { browser, page };
  }
  const csrfOf = (page: Hop) => /name="csrf" value="([^"]+)"/.exec(page.body)?.[1];

  test('an admin named in config signs in through the provider and sees the activity, with strict headers', async () => {
    const { browser, page } = await signIn(ADMIN);
    assert.equal(page.status, 200, page.body.slice(0, 500));
    assert.equal(page.url.pathname, '/admin');
    assert.match(page.body, /<h1[^>]*>Moderation activity<\/h1>/);
    assert.match(page.body, /Signed in as <bdi>Оператор Один<\/bdi>/);
    assert.ok(browser.history.some((h) => h.url.pathname === '/auth' && h.url.searchParams.get('prompt') === 'login' && h.url.searchParams.get('code_challenge_method') === 'S256'), 'the real authorization endpoint, with PKCE and prompt=login');
    assert.ok(browser.history.some((h) => h.url.origin === new URL(stack.config.wiki.base_url).origin), 'the wiki was asked');
    const csp = page.headers.get('content-security-policy')!;
    assert.match(csp, /default-src 'none'/);
    assert.doesNotMatch(csp, /unsafe|script-src/);
    assert.equal(page.headers.get('x-frame-options'), 'DENY');
    assert.equal(page.headers.get('cache-control'), 'no-store');
    assert.doesNotMatch(page.body, /<script/i, 'no scripts, and the wiki reason is escaped');
    assert.match(page.body, /&lt;script&gt;alert\(1\)&lt;\/script&gt; Вандализм/);
    const cookie = browser.history.flatMap((h) => h.headers.getSetCookie()).find((c) => c.startsWith('wms_admin='))!;
    assert.match(cookie, /path=\/admin/i);
    assert.match(cookie, /httponly/i);
    assert.match(cookie, /samesite=lax/i);
    assert.ok(browser.history.flatMap((h) => h.headers.getSetCookie()).some((c) => c.startsWith('wms_admin.sig=')), 'signed');
  });

  test('a member of a configured wiki group is an admin; anyone else gets the 403 page', async () => {
    const steward = await signIn(STEWARD, ['steward']);
    assert.equal(steward.page.status, 200);
    const other = await signIn('Обычный Участник', ['sysop']);
    assert.equal(other.page.status, 403);
    assert.match(other.page.body, /Not an admin/);
    assert.match(other.page.body, /You are signed in as <bdi>Обычный Участник<\/bdi>, who may not use the admin pages/);
    assert.equal((await other.browser.request(`${stack.issuer}/admin/people`)).status, 302, 'and holds no session');
  });

  test('the callback cannot be replayed, forged or finished in another browser', async () => {
    const { browser } = await signIn(ADMIN);
    const callback = browser.history.find((h) => h.url.pathname === '/admin/callback')!.url;
    assert.equal((await browser.request(callback)).status, 400, 'the code and the flow are used up');
    const stranger = new Browser();
    const replay = await stranger.request(callback);
    assert.equal(replay.status, 400);
    assert.match(replay.body, /The sign-in did not finish/);
    const started = await stranger.request(`${stack.issuer}/admin/login`);
    const forged = new URL(`/admin/callback?code=x&state=${new URL(started.location!).searchParams.get('state')}`, stack.issuer);
    assert.equal((await stranger.request(forged)).status, 400);
  });

  test('forms need this session\'s CSRF token and this site\'s origin; an override set through the page is audited with its admin', async () => {
    const { browser } = await signIn(ADMIN);
    const page = await browser.request(`${stack.issuer}/admin/overrides`);
    const csrf = csrfOf(page)!;
    assert.ok(csrf);
    const form = { username: 'Ещё Не Вошедший', localpart: 'eshche' };
    assert.equal((await browser.request(`${stack.issuer}/admin/overrides`, { form })).status, 403, 'no token');
    assert.equal((await browser.request(`${stack.issuer}/admin/overrides`, { form: { ...form, csrf: `${csrf}x` } })).status, 403, 'a wrong token');
    const crossSite = await fetch(`${stack.issuer}/admin/overrides`, {
      method: 'POST',
      redirect: 'manual',
      headers: { cookie: browser.cookieHeader(new URL(`${stack.issuer}/admin/overrides`)), origin: 'https://evil.example', 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ ...form, csrf }),
    });
    assert.equal(crossSite.status, 403, 'another origin');
    const saved = await browser.request(`${stack.issuer}/admin/overrides`, { form: { ...form, csrf } });
    assert.equal(saved.status, 303);
    const shown = await browser.request(saved.location!);
    assert.match(shown.body, /<bdi>Ещё Не Вошедший<\/bdi> will get the localpart <bdi>eshche<\/bdi>/);
    const [audit] = (await new ModerationAuditLog(stack.service.db).list({ kind: 'localpart_override' })).entries;
    assert.equal(audit!.detail.by, ADMIN);
    const taken = await browser.request(`${stack.issuer}/admin/overrides`, { form: { username: 'Кто-то Другой', localpart: 'eshche', csrf } });
    assert.equal(taken.status, 409);
    assert.match(taken.body, /already chosen for another wiki account/);
    const withdrawn = await browser.submit(shown, /^Withdraw$/);
    assert.match(withdrawn.body, /was withdrawn/);
  });

  test('a failed action has a retry button that asks the worker, and the person page shows the cause', async () => {
    const { browser, page } = await signIn(ADMIN);
    assert.match(page.body, /M_FORBIDDEN/);
    const retried = await browser.submit(page, /^Retry$/);
    assert.equal(retried.status, 200);
    assert.match(retried.body, /Retry requested: the worker reconciles <bdi>@vandal:example.org<\/bdi> again/);
    const { rows } = await stack.service.db.query<{ requested_by: string; kind: string }>("SELECT requested_by, kind FROM moderation_requests WHERE kind = 'retry'");
    assert.deepEqual(rows, [{ requested_by: ADMIN, kind: 'retry' }]);
    const plan = await browser.submit(await browser.request(`${stack.issuer}/admin/preview`), /^Make a preview$/);
    assert.match(plan.url.pathname, /^\/admin\/requests\/\d+$/);
    assert.match(plan.body, /<meta http-equiv="refresh" content="2">/, 'the page reloads while the worker works');
    const nobody = await browser.request(`${stack.issuer}/admin/people?q=${encodeURIComponent('@nobody:example.org')}`);
    assert.equal(nobody.status, 404);
    assert.match(nobody.body, /No account matches “<bdi>@nobody:example.org<\/bdi>”/);
  });

  test('pages follow Accept-Language, right-to-left included', async () => {
    const { page } = await signIn(STEWARD, ['steward'], 'he');
    assert.equal(page.status, 200);
    assert.match(page.body, /<html lang="he" dir="rtl">/);
    assert.equal(page.headers.get('content-language'), 'he');
  });

  test('signing out ends the session, and so does its lifetime', async () => {
    const { browser, page } = await signIn(ADMIN);
    const out = await browser.submit(page, /^Sign out$/);
    assert.match(out.body, /You are signed out of the admin pages/);
    const again = await browser.request(`${stack.issuer}/admin`);
    assert.equal(again.status, 302);
    assert.equal(new URL(again.location!).pathname, '/auth');

    const later = await signIn(ADMIN);
    assert.equal((await later.browser.request(`${stack.issuer}/admin/people`)).status, 200);
    await sleep(SESSION_SECONDS * 1000 + 500);
    const expired = await later.browser.request(`${stack.issuer}/admin/people`);
    assert.equal(expired.status, 302, 'sent to sign in again');
    const post = await later.browser.request(`${stack.issuer}/admin/plans`, { form: { csrf: csrfOf(later.page)! } });
    assert.equal(post.status, 403, 'an expired session cannot act');
  });
});
