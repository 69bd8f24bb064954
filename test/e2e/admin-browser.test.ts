// The admin pages in real headless Chromium, over the real parts: a real MediaWiki blocks and
// promotes people, the real `worker` mirrors it into a real Synapse, and `serve` (sharing the
// worker's PostgreSQL database) shows it. An admin signs in through the provider's flow, finds the
// blocked person and the ban with its wiki cause, retries the action the bot lacked the power for
// (after a moderator gave it that power), previews a full pass and applies exactly that plan; a
// non-admin gets the 403 page. axe-core checks every page, in English and in Hebrew (RTL).
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { PostgresAccountRepository } from '../../src/identity/accounts.ts';
import { LocalpartPolicy } from '../../src/identity/localpart.ts';
import { serverUrl } from '../support/backends.ts';
import { chromiumAvailable, launchChromium } from '../support/chromium.ts';
import { start, type Running } from '../support/cli.ts';
import YAML from 'yaml';
import { editor, startStack, type Stack } from '../support/login-stack.ts';
import { mediawikiAvailable } from '../support/mediawiki.ts';
import { IDP, WIKI_ID, eventually, startMirrorStack, type MirrorStack } from '../support/mirror-stack.ts';
import { skipUnless } from '../support/real-parts.ts';
import { clientApi, synapseAvailable } from '../support/synapse.ts';

const unavailable =
  mediawikiAvailable() ??
  synapseAvailable() ??
  chromiumAvailable() ??
  (serverUrl ? undefined : 'TEST_DATABASE_URL is not set: serve and the worker share one database, which needs a PostgreSQL server');

const ADMIN = 'Администратор Чата';
const BLOCKED = 'Вандал Блокович';
const MODERATOR = 'מנחה החדר';
const NEWCOMER = '新しい管理者';
const CLI_TOKEN = 'wms-cli-5d1c9e7a3b2f4068a9c1e3f5d7b90246';
const enc = encodeURIComponent;
const axeSource = (createRequire(import.meta.url)('axe-core') as { source: string }).source;

interface AxeResult {
  violations: { id: string; impact: string | null; help: string; nodes: { target: string[] }[] }[];
}

describe('the admin pages in Chromium over the real worker, wiki and homeserver', { skip: skipUnless(unavailable), timeout: 300_000 }, () => {
  let mirror: MirrorStack;
  let stack: Stack;
  let worker: Running;
  let chromium: Browser;
  let powerless: string;
  const checked: string[] = [];
  const api = () => clientApi(mirror.synapse);

  before(async () => {
    if (unavailable) throw new Error(unavailable);
    mirror = await startMirrorStack({ names: [BLOCKED, MODERATOR], rooms: 1, ownPostgres: true });
    // A room a moderator made, where the bot is a member without the power to ban.
    const moderator = mirror.users.get(MODERATOR)!;
    powerless = (await api().call(moderator.accessToken, 'POST', '/createRoom', { preset: 'public_chat', room_version: '11', name: 'Чайная' })).room_id;
    await api().call(mirror.synapse.adminToken, 'POST', `/join/${enc(powerless)}`, {});
    await api().call(mirror.users.get(BLOCKED)!.accessToken, 'POST', `/join/${enc(powerless)}`, {});
    mirror.writeConfig({ moderation: { rooms: [...mirror.rooms, powerless].map((room_id) => ({ room_id })) } });

    stack = await startStack({
      databaseUrl: mirror.db!.url!,
      config: {
        identity: { wiki_id: WIKI_ID },
        matrix: { server_name: mirror.synapse.serverName },
        sync: { enabled: true, dry_run: false },
        admin: { users: [ADMIN], token: CLI_TOKEN },
      },
    });
    worker = mirror.startWorker();
    await worker.waitFor(/moderation pass done/, 60_000);
    chromium = await launchChromium();
  });
  after(async () => {
    if (process.env.WMS_TEST_WORKER_LOG && worker) process.stderr.write(worker.output());
    await chromium?.close();
    await stack?.stop();
    await mirror?.stop();
  });

  // Whoever signs in (through the OAuth double) has the same account on the real wiki the worker
  // reads: an account the wiki did not know would rightly be treated as suppressed.
  const wikiIds = new Map<string, number>();
  async function contextFor(username: string, locale = 'en-GB'): Promise<{ context: BrowserContext; page: Page }> {
    if (!wikiIds.has(username)) wikiIds.set(username, (await mirror.wiki.createUser(username, 'wiki-password-of-a-test-user')).userId);
    stack.wiki.login = { user: editor({ centralId: wikiIds.get(username)!, username }) };
    const context = await chromium.newContext({ locale });
    const page = await context.newPage();
    return { context, page };
  }

  /** axe-core on the page as it is: no serious or critical violation. */
  async function axe(page: Page, what: string): Promise<void> {
    await page.evaluate(axeSource);
    const result = (await page.evaluate('axe.run(document, { resultTypes: ["violations"] })')) as AxeResult;
    const bad = result.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
    assert.deepEqual(bad.map((v) => `${v.id} (${v.impact}): ${v.help} at ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`), [], `axe on ${what}`);
    checked.push(what);
  }

  const bannedIn = async (roomId: string, name: string) => ((await api().state(roomId, 'm.room.member', mirror.users.get(name)!.userId)) as { membership: string }).membership === 'ban';

  test('an admin signs in through the flow, finds the blocked person and the ban with its wiki cause', async () => {
    const { id: blockId } = await mirror.wiki.block(BLOCKED, { reason: 'Вандализм на Заглавной странице' });
    await eventually('the ban in the managed room', async () => ((await bannedIn(mirror.rooms[0]!, BLOCKED)) ? true : undefined), 30_000);

    const { context, page } = await contextFor(ADMIN);
    await page.goto(`${stack.issuer}/admin`);
    assert.equal(new URL(page.url()).pathname, '/admin', 'back on the admin pages after the wiki');
    assert.equal(await page.textContent('h1'), 'Moderation activity');
    await axe(page, 'activity (en)');

    await page.click('a[href="/admin/people"]');
    await page.fill('#q', BLOCKED);
    await page.click('button[type=submit]:has-text("Find")');
    assert.match((await page.textContent('main'))!, new RegExp(BLOCKED));
    const sanctions = (await page.textContent('#sanctions-heading + ul'))!;
    assert.match(sanctions, /ban/);
    assert.match(sanctions, new RegExp(`block ${blockId}`));
    assert.match(sanctions, /Вандализм на Заглавной странице/);
    assert.match(sanctions, new RegExp(`by ${mirror.wiki.adminName}`));
    assert.match(sanctions, /indefinite/);
    await axe(page, 'person (en)');
    await context.close();
  });

  test('the action the bot lacked the power for is retried from the page once a moderator gave it', async () => {
    assert.equal(await bannedIn(powerless, BLOCKED), false);
    const moderator = mirror.users.get(MODERATOR)!;
    const levels = await api().state(powerless, 'm.room.power_levels', '');
    await api().call(moderator.accessToken, 'PUT', `/rooms/${enc(powerless)}/state/m.room.power_levels/`, { ...levels, users: { ...(levels as { users: object }).users, [mirror.synapse.adminUserId]: 100 } });

    const { context, page } = await contextFor(ADMIN);
    await page.goto(`${stack.issuer}/admin?outcome=lacks_power`);
    const row = page.locator('tr', { hasText: powerless });
    await row.locator('button:has-text("Retry")').first().click();
    assert.match((await page.textContent('main'))!, /Retry requested/);
    await eventually('the ban after the retry', async () => ((await bannedIn(powerless, BLOCKED)) ? true : undefined), 30_000);
    const rows = await eventually('the request done', async () => {
      const { rows } = await mirror.db!.query<{ requested_by: string; state: string }>("SELECT requested_by, state FROM moderation_requests WHERE kind = 'retry'");
      return rows.every((r) => r.state === 'done') ? rows : undefined;
    });
    assert.deepEqual(rows, [{ requested_by: ADMIN, state: 'done' }]);
    await context.close();
  });

  test('a previewed full pass is applied exactly as shown', async () => {
    // Promoted on the wiki before the first sign-in: the worker saw the log entry but knew no such
    // account, so only a full pass will give the level.
    const { userId: wikiId } = await mirror.wiki.createUser(NEWCOMER, 'wiki-password-of-a-test-user');
    await mirror.wiki.userrights(NEWCOMER, { add: ['sysop'] });
    await new Promise((resolve) => setTimeout(resolve, 3_000));
    const account = await new PostgresAccountRepository(mirror.db!, { clock: () => new Date(), localparts: new LocalpartPolicy({ serverName: mirror.synapse.serverName }) }).upsertOnLogin({ wiki: WIKI_ID, centralId: String(wikiId), username: NEWCOMER });
    const user = await mirror.synapse.registerUser(account.localpart, 'matrix-password-of-a-test-user');
    await api().admin('PUT', `/_synapse/admin/v2/users/${enc(user.userId)}`, { external_ids: [{ auth_provider: IDP, external_id: String(wikiId) }], displayname: NEWCOMER });
    await api().call(user.accessToken, 'POST', `/join/${enc(mirror.rooms[0]!)}`, {});
    const level = async () => ((await api().state(mirror.rooms[0]!, 'm.room.power_levels', '')) as { users: Record<string, number> }).users[user.userId];
    assert.equal(await level(), undefined);

    const { context, page } = await contextFor(ADMIN);
    await page.goto(`${stack.issuer}/admin/preview`);
    await axe(page, 'preview (en)');
    await page.click('button:has-text("Make a preview")');
    await eventually('the plan', async () => {
      if (await page.isVisible('button:has-text("Apply exactly this plan")')) return true;
      const text = (await page.textContent('main'))!;
      if (/Failed|Not applied/.test(text)) throw new Error(text);
      await page.reload();
      return undefined;
    }, 60_000).catch(async (error) => {
      throw new Error(`${error}\n${await page.textContent('main')}`);
    });
    const plan = (await page.textContent('table'))!;
    assert.match(plan, /set_power_levels/);
    assert.ok(plan.includes(user.userId), plan);
    assert.doesNotMatch(plan, /\bban\b/, 'the ban is done already');
    await axe(page, 'plan (en)');
    await page.click('button:has-text("Apply exactly this plan")');
    await eventually('the plan applied', async () => {
      if ((await page.textContent('main'))!.includes('Applied in pass')) return true;
      await page.reload();
      return undefined;
    }, 60_000);
    assert.equal(await level(), 50);
    await context.close();
  });

  test('the sync command asks the running service when a worker leads, and prints what its worker did', async () => {
    const config = YAML.parse(readFileSync(mirror.configPath, 'utf8')) as Record<string, Record<string, unknown>>;
    const port = Number(new URL(stack.issuer).port);
    const path = join(mirror.dir, 'cli.yaml');
    writeFileSync(path, YAML.stringify({ ...config, http: { host: '127.0.0.1', port, public_url: stack.issuer }, admin: { token: CLI_TOKEN } }));
    const dry = await start(['sync', '--dry-run', '--config', path]).exited;
    assert.equal(dry.code, 0, dry.stderr);
    assert.match(dry.stdout, /Dry run: \d+ mapped accounts? read; 0 changes would be made/, 'a dry run reads the database itself');
    const run = await start(['sync', '--config', path]).exited;
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout, new RegExp(`Pass .+, run by the worker of the running service \\(http://127\\.0\\.0\\.1:${port}\\)`));
    const { rows } = await mirror.db!.query<{ requested_by: string }>("SELECT DISTINCT requested_by FROM moderation_requests WHERE kind = 'apply' AND requested_by = 'api:admin'");
    assert.equal(rows.length, 1, 'asked as the admin token');
  });

  test('someone who is not an admin gets the 403 page', async () => {
    const { context, page } = await contextFor('Просто Участник');
    const response = await page.goto(`${stack.issuer}/admin`);
    assert.equal(response!.status(), 403);
    assert.equal(await page.textContent('h1'), 'Not an admin');
    await axe(page, '403 (en)');
    await context.close();
  });

  test('every page in Hebrew is right-to-left and passes axe', async () => {
    const { context, page } = await contextFor(ADMIN, 'he-IL');
    await page.goto(`${stack.issuer}/admin`);
    assert.equal(await page.getAttribute('html', 'dir'), 'rtl');
    await axe(page, 'activity (he)');
    for (const path of [`/admin/people?q=${enc(BLOCKED)}`, '/admin/preview', '/admin/overrides']) {
      await page.goto(`${stack.issuer}${path}`);
      assert.equal(await page.getAttribute('html', 'dir'), 'rtl', path);
      await axe(page, `${path} (he)`);
    }
    await page.goto(`${stack.issuer}/admin/preview`);
    await page.click('.wms-admin-list a >> nth=0');
    await axe(page, 'request (he)');
    await context.close();

    const other = await contextFor('עוד משתמש', 'he-IL');
    const response = await other.page.goto(`${stack.issuer}/admin`);
    assert.equal(response!.status(), 403);
    assert.equal(await other.page.getAttribute('html', 'dir'), 'rtl');
    await axe(other.page, '403 (he)');
    await other.context.close();
    assert.equal(checked.length, 11);
  });
});
