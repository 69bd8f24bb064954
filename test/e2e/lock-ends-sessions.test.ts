// A global lock reaches a person who is already signed in, end to end: a real Synapse configured
// with the README's snippets signs them in through the service; a steward locks their global
// account (CentralAuth, in a layer over a real MediaWiki); the real `worker` ends their sessions
// within a pass: the service's grants revoked, the back-channel logout taken by Synapse (after the
// relying party's endpoint refused it once), every device logged out, the account suspended and
// banned, all audited and announced. A new sign-in is refused while the lock lasts; the unlock
// lifts everything the service did, and the person signs in again.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import YAML from 'yaml';
import { ModerationAuditLog, ModerationRecordStore } from '../../src/moderation/records.ts';
import { backends, serverUrl, type TestDatabase } from '../support/backends.ts';
import { Browser } from '../support/browser.ts';
import { CentralAuthLayer } from '../support/centralauth.ts';
import { start, type Running } from '../support/cli.ts';
import { editor } from '../support/login-stack.ts';
import { mediawikiAvailable, startWiki, type TestWiki } from '../support/mediawiki.ts';
import { eventually } from '../support/mirror-stack.ts';
import { skipUnless } from '../support/real-parts.ts';
import { synapseAvailable } from '../support/synapse.ts';
import { ELEMENT, IDP, startSsoStack, type MatrixLogin, type SsoStack } from '../support/synapse-sso.ts';
import type { WikiUser } from '../support/wiki-oauth-double.ts';
import { metricSample } from '../support/metrics.ts';

const unavailable =
  mediawikiAvailable() ??
  synapseAvailable() ??
  (serverUrl ? undefined : 'TEST_DATABASE_URL is not set: the service and the worker share one database, which needs a PostgreSQL server');

const LOCKED = 'Заблокированный Участник';
const BYSTANDER = 'Ünbeteiligte Person';
const enc = encodeURIComponent;

describe('a global lock ends the sessions of a person signed in through Synapse', { skip: skipUnless(unavailable), timeout: 240_000 }, () => {
  let db: TestDatabase;
  let wiki: TestWiki;
  let central: CentralAuthLayer;
  let sso: SsoStack;
  let gate: { server: Server; url: string; open: boolean; refused: number };
  let dir: string;
  let configPath: string;
  let worker: Running | undefined;
  let room: string;
  let notices: string;
  let locked: WikiUser;
  let bystander: WikiUser;
  let first: MatrixLogin;
  let other: MatrixLogin;
  let workerMetrics: string;

  before(async () => {
    if (unavailable) throw new Error(unavailable);
    db = await backends().find((b) => b.name === 'postgres')!.open();
    wiki = await startWiki();
    central = await CentralAuthLayer.start(wiki.apiUrl);
    sso = await startSsoStack({ databaseUrl: db.url!, config: { wiki: { api_url: central.apiUrl, central_auth: true }, metrics: { port: 0 } } });
    const people: WikiUser[] = [];
    for (const name of [LOCKED, BYSTANDER]) {
      const { userId } = await wiki.createUser(name, 'wiki-password-of-a-test-user');
      people.push(editor({ centralId: central.register(name, userId), username: name, groups: [] }));
    }
    [locked, bystander] = people as [WikiUser, WikiUser];
    first = await sso.signIn(locked);
    other = await sso.signIn(bystander);

    const admin = (path: string, body: unknown) => sso.clientApi(path, { token: sso.synapse.adminToken, body });
    room = (await admin('/_matrix/client/v3/createRoom', { preset: 'public_chat', room_version: '11', name: 'Village pump' })).json.room_id;
    notices = (await admin('/_matrix/client/v3/createRoom', { preset: 'private_chat', name: 'moderation' })).json.room_id;
    for (const login of [first, other]) assert.equal((await sso.clientApi(`/_matrix/client/v3/join/${enc(room)}`, { token: login.accessToken, body: {} })).status, 200);

    // Synapse's back-channel logout endpoint behind a gate that refuses until the test opens it.
    const synapseLogout = new URL('/_synapse/client/oidc/backchannel_logout', sso.synapse.baseUrl);
    gate = { server: undefined as unknown as Server, url: '', open: false, refused: 0 };
    gate.server = createServer(async (req, res) => {
      let body = '';
      for await (const chunk of req) body += chunk;
      if (!gate.open) {
        gate.refused += 1;
        res.writeHead(503).end();
        return;
      }
      const answer = await fetch(synapseLogout, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body });
      res.writeHead(answer.status).end(await answer.text());
    });
    await new Promise<void>((resolve) => gate.server.listen(0, '127.0.0.1', resolve));
    gate.url = `http://127.0.0.1:${(gate.server.address() as { port: number }).port}/backchannel_logout`;

    // The worker runs in a process of its own: its metrics listener gets a port known to be free.
    const probe = createServer();
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
    const metricsPort = (probe.address() as AddressInfo).port;
    await new Promise((resolve) => probe.close(resolve));
    workerMetrics = `http://127.0.0.1:${metricsPort}/metrics`;

    dir = mkdtempSync(join(tmpdir(), 'wms-lock-'));
    configPath = join(dir, 'worker.yaml');
    const sections = sso.stack.sections;
    const oidc = sections.oidc as { clients: Array<Record<string, unknown>> };
    writeFileSync(
      configPath,
      YAML.stringify({
        ...sections,
        oidc: { ...oidc, clients: oidc.clients.map((c) => ({ ...c, backchannel_logout_uri: gate.url })) },
        matrix: {
          ...sections.matrix,
          homeserver_url: sso.synapse.baseUrl,
          access_token: sso.synapse.adminToken,
          user_id: sso.synapse.adminUserId,
          request_timeout: 5,
          synapse_idp_id: IDP,
        },
        sync: { enabled: true, dry_run: false, poll_interval: 1, full_pass_interval: 3600, moderation_room: notices },
        moderation: { rooms: [{ room_id: room }], suspend: { global_lock: true } },
        metrics: { port: metricsPort },
        logging: { level: 'debug' },
      }),
    );
  });

  after(async () => {
    if (process.env.WMS_TEST_WORKER_LOG && worker) process.stderr.write(worker.output());
    if (worker && worker.child.exitCode === null) {
      worker.child.kill('SIGKILL');
      await worker.exited;
    }
    await sso?.stop();
    await central?.close();
    await wiki?.stop();
    await new Promise((resolve) => gate?.server.close(resolve));
    await db?.dispose();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const userStatus = async (userId: string) => (await sso.clientApi(`/_synapse/admin/v2/users/${enc(userId)}`, { token: sso.synapse.adminToken })).json as { suspended: boolean; locked: boolean };
  const membership = async (userId: string) => (await sso.clientApi(`/_matrix/client/v3/rooms/${enc(room)}/state/m.room.member/${enc(userId)}`, { token: sso.synapse.adminToken })).json.membership as string;
  const noticeTexts = async (): Promise<string[]> => {
    const filter = enc(JSON.stringify({ types: ['m.room.message'] }));
    const page = await sso.clientApi(`/_matrix/client/v3/rooms/${enc(notices)}/messages?dir=b&limit=100&filter=${filter}`, { token: sso.synapse.adminToken });
    return (page.json.chunk as Array<{ content: { body: string } }>).map((e) => e.content.body);
  };
  const audit = async (kind: 'end_sessions' | 'backchannel_logout' | 'suspend' | 'unsuspend') => (await new ModerationAuditLog(db).list({ userId: first.userId, kind })).entries;

  test('a dry run plans the end of the sessions, the suspension and the ban, and changes nothing', async () => {
    central.lock(LOCKED, { by: 'Steward', reason: 'Long-term abuse' });
    const dry = await start(['sync', '--dry-run', '--config', configPath]).exited;
    assert.equal(dry.code, 0, dry.stderr);
    assert.match(dry.stdout, new RegExp(`logout +${first.userId.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: every session and device \\(global lock`));
    assert.match(dry.stdout, /suspend +@/);
    assert.match(dry.stdout, /ban +@/);
    assert.equal((await sso.whoami(first.accessToken)).status, 200, 'still signed in');
    assert.equal((await userStatus(first.userId)).suspended, false);
    assert.equal(await membership(first.userId), 'join');
    assert.deepEqual((await new ModerationRecordStore(db).load({ userIds: [first.userId] })).sessionEnds, []);
  });

  test('within a pass: the access token dies, the account is suspended and banned, audited and announced', async () => {
    worker = start(['worker', '--config', configPath]);
    const refused = await eventually('the access token refused', async () => {
      const answer = await sso.whoami(first.accessToken);
      return answer.status === 401 ? answer : undefined;
    }, 30_000);
    assert.equal(refused.json.errcode, 'M_UNKNOWN_TOKEN');
    await eventually('the ban', async () => ((await membership(first.userId)) === 'ban' ? true : undefined));
    await eventually('the suspension', async () => ((await userStatus(first.userId)).suspended ? true : undefined));
    assert.equal((await sso.whoami(other.accessToken)).status, 200, 'the bystander stays signed in');
    assert.equal(await membership(other.userId), 'join');

    const [ended] = await eventually('the end_sessions audit entry', async () => ((await audit('end_sessions')).length > 0 ? audit('end_sessions') : undefined));
    assert.equal(ended!.outcome, 'applied');
    assert.equal(ended!.cause?.kind, 'global_lock');
    assert.equal(ended!.cause?.reason, 'Long-term abuse');
    assert.equal(ended!.cause?.by, 'Steward');
    assert.deepEqual(ended!.detail.logouts, [{ client: 'synapse', delivered: false }], 'the relying party refused the first logout');
    assert.ok(gate.refused >= 1);
    const texts = await eventually('the notice', async () => ((await noticeTexts()).some((t) => t.includes('Ended the sessions')) ? noticeTexts() : undefined));
    assert.ok(texts.some((t) => t.includes(`Ended the sessions of ${first.userId}`)), texts.join('\n---\n'));
  });

  test("the metrics show the sign-ins, the worker's passes and actions, its leadership and the cursor", async () => {
    const serve = await (await fetch(sso.stack.service.metricsUrl!)).text();
    assert.ok(metricSample(serve, 'wms_sign_ins_total', { outcome: 'signed_in', reason: '' }) >= 2, 'both sign-ins counted');
    assert.ok(metricSample(serve, 'wms_tokens_issued_total', { grant_type: 'authorization_code' }) >= 2, 'Synapse exchanged both codes');
    // The first full pass did the work; the log poll that follows it sets the cursor gauges.
    const worker = await eventually('a log poll counted', async () => {
      const text = await (await fetch(workerMetrics)).text();
      return metricSample(text, 'wms_sync_last_poll_timestamp_seconds') > 0 ? text : undefined;
    });
    assert.equal(metricSample(worker, 'wms_worker_leader'), 1);
    assert.ok(metricSample(worker, 'wms_moderation_passes_total', { kind: 'targeted' }) + metricSample(worker, 'wms_moderation_passes_total', { kind: 'full' }) >= 1);
    for (const kind of ['end_sessions', 'suspend', 'ban']) assert.ok(metricSample(worker, 'wms_moderation_actions_total', { kind, outcome: 'applied' }) >= 1, `${kind} counted`);
    assert.ok(metricSample(worker, 'wms_sync_last_poll_timestamp_seconds') > Date.now() / 1000 - 60, 'the logs were read within the minute');
    assert.ok(metricSample(worker, 'wms_sync_lag_seconds') < 60);
    assert.match(worker, /^wms_sync_cursor_timestamp_seconds\{log="[^"]+"\} \d/m);
  });

  test('the logout the relying party refused is delivered to Synapse on a later try, and audited', async () => {
    gate.open = true;
    const [delivered] = await eventually('the late delivery', async () => ((await audit('backchannel_logout')).length > 0 ? audit('backchannel_logout') : undefined), 60_000);
    assert.equal(delivered!.outcome, 'applied');
    assert.equal(delivered!.detail.client, 'synapse');
    assert.equal(delivered!.detail.centralId, String(locked.centralId));
    assert.ok((delivered!.detail.tries as number) >= 2);
  });

  test('while the lock lasts a new sign-in is refused: by the wiki, and by the service should the wiki let it through', async () => {
    const before = (await sso.clientApi(`/_synapse/admin/v2/users/${enc(first.userId)}/devices`, { token: sso.synapse.adminToken })).json.total;
    // CentralAuth ends a locked account's sessions and refuses its logins: the wiki asks for a login.
    const atWiki = await sso.ssoRedirect(new Browser(), { ...locked, locked: true }, ELEMENT);
    assert.equal(atWiki.location, undefined, 'nothing leads back to the client');
    assert.equal(atWiki.url.searchParams.get('title'), 'Special:UserLogin', `ended at ${atWiki.url}`);
    // A wiki that lets the account through meets the service's own refusal while the record stands.
    const page = await sso.ssoRedirect(new Browser(), locked, ELEMENT);
    assert.equal(page.status, 403, page.body.slice(0, 300));
    assert.match(page.body, /Your account is under a sanction/);
    const devices = (await sso.clientApi(`/_synapse/admin/v2/users/${enc(first.userId)}/devices`, { token: sso.synapse.adminToken })).json.total;
    assert.equal(devices, before, 'no new Matrix device');
  });

  test('the unlock lifts everything the service did, and the person signs in again', async () => {
    central.unlock(LOCKED, { by: 'Steward', reason: 'Appeal accepted' });
    await eventually('the suspension lifted', async () => ((await userStatus(first.userId)).suspended ? undefined : true), 30_000);
    await eventually('the ban lifted', async () => ((await membership(first.userId)) === 'leave' ? true : undefined));
    const records = await eventually('the records gone', async () => {
      const r = await new ModerationRecordStore(db).load({ userIds: [first.userId] });
      return r.sessionEnds.length + r.suspensions.length + r.bans.length === 0 ? r : undefined;
    });
    assert.deepEqual(Object.entries(records).filter(([, list]) => Array.isArray(list) && list.length > 0).map(([name]) => name), [], 'no record of the service remains');
    assert.deepEqual((await audit('unsuspend')).map((e) => e.outcome), ['applied']);

    const again = await sso.signIn(locked);
    assert.equal(again.userId, first.userId);
    assert.equal((await sso.whoami(again.accessToken)).status, 200);
  });
});
