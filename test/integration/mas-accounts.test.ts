// On a homeserver whose accounts live in Matrix Authentication Service, a sanction that ends
// sessions finishes every session the person has at MAS, and a suspension locks the MAS user
// until the sanction ends — through the real executor, its records, audit and notice, against a
// double of MAS's documented admin API (MAS itself cannot be built here) that pages, expires and
// forgets tokens, fails and goes down as the real one can.
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, test } from '@jest/globals';
import pino from 'pino';
import YAML from 'yaml';
import { matrixGatewayFrom } from '../../src/commands/worker.ts';
import { parseConfig, redact } from '../../src/config/load.ts';
import { localpartFor } from '../../src/identity/localpart.ts';
import { DryRunGateway, MasAdminClient, MatrixError, NETWORK_ERROR, withMasAccounts, type MatrixGateway } from '../../src/matrix/index.ts';
import { moderationConfigSchema } from '../../src/moderation/config.ts';
import { ModerationExecutor } from '../../src/moderation/executor.ts';
import { ModerationAuditLog, ModerationRecordStore } from '../../src/moderation/records.ts';
import type { WikiState, WikiUserState } from '../../src/moderation/types.ts';
import { backends, type TestDatabase } from '../support/backends.ts';
import { FakeMatrix } from '../support/fake-matrix.ts';
import { readSnippet } from '../support/login-stack.ts';
import { MasDouble, ulid, type MasUser } from '../support/mas-double.ts';

const SERVER = 'example.org';
const BOT = `@bot:${SERVER}`;
const NOTICES = '!notices:example.org';
const CLIENT_ID = ulid();
const CLIENT_SECRET = 'sêcret:with/odd chars';
const NOW = new Date('2030-06-01T12:00:00Z');
const silent = pino({ level: 'silent' });

// Names of several scripts, as the service makes their localparts (MAS's usernames).
const NAMES = ['Ирина Петрова', '李小龍', 'محمد علي', 'Ζωή', 'ישראלה', 'Nguyễn Thị Ánh'];
const localpart = (name: string) => localpartFor(name, { serverName: SERVER });
const mxid = (name: string) => `@${localpart(name)}:${SERVER}`;

const lock = { logId: 901, by: 'Steward', reason: 'cross-wiki abuse', timestamp: new Date('2030-06-01T10:00:00Z'), hidden: false };
function person(name: string, locked: boolean, central: number): WikiUserState {
  return {
    account: { wiki: 'wiki.example', centralId: String(central), username: name, localpart: localpart(name) },
    blocks: [], globalBlocks: [], lock: locked ? lock : null, groups: [], globalGroups: [],
  };
}
const wiki = (users: WikiUserState[]): WikiState => ({ wiki: 'wiki.example', users, complete: true });

const backend = backends()[0]!;

describe('Matrix Authentication Service: sessions ended and accounts locked through its admin API', () => {
  let mas: MasDouble;
  let db: TestDatabase;
  let matrix: FakeMatrix;
  let client: MasAdminClient;
  let people: Map<string, MasUser>;
  const logged: string[] = [];
  const log = pino({ level: 'debug' }, { write: (line: string) => void logged.push(line) });

  beforeAll(async () => {
    mas = new MasDouble({ clientId: CLIENT_ID, clientSecret: CLIENT_SECRET, maxPage: 7 });
    await mas.start();
  });
  afterAll(() => mas.stop());

  beforeEach(async () => {
    db = await backend.open();
    matrix = new FakeMatrix(BOT);
    matrix.addRoom(NOTICES);
    mas.down = false;
    mas.users.clear();
    mas.sessions.clear();
    people = new Map(NAMES.map((name) => [name, mas.addUser(localpart(name))]));
    client = new MasAdminClient({ baseUrl: `${mas.url}/`, clientId: CLIENT_ID, clientSecret: CLIENT_SECRET, logger: log, retry: { baseDelayMs: 10, maxDelayMs: 20 } });
  });
  afterEach(() => db.dispose());

  const executor = (gateway: MatrixGateway, dryRun = false) =>
    new ModerationExecutor({
      db, gateway, log: silent, dryRun, serverName: SERVER, noticeRoom: NOTICES, clock: () => NOW,
      moderation: moderationConfigSchema.parse({ sessions: { global_lock: true }, suspend: { global_lock: true } }),
      revokeAccount: async () => ({ revoked: 2, notified: [] }),
    });
  const audit = async () => (await new ModerationAuditLog(db).list({ limit: 1000 })).entries;

  test('a global lock: a dry run changes nothing at MAS; the pass finishes every session of every kind, across pages, and locks the user; the unlock unlocks', async () => {
    const vandal = people.get('Ирина Петрова')!;
    const bystander = people.get('李小龍')!;
    mas.addSessions(vandal, 'compat-sessions', 16);
    mas.addSessions(vandal, 'oauth2-sessions', 9);
    mas.addSessions(vandal, 'user-sessions', 3);
    mas.addSessions(vandal, 'personal-sessions', 2);
    const [alreadyEnded] = mas.addSessions(vandal, 'compat-sessions', 1);
    alreadyEnded!.finishedAt = '2030-05-01T00:00:00Z';
    mas.addSessions(bystander, 'oauth2-sessions', 4);
    const state = wiki([person('Ирина Петрова', true, 1), person('李小龍', false, 2)]);

    const gateway = withMasAccounts(matrix, client);
    const dry = await executor(new DryRunGateway(gateway, silent), true).run(state);
    assert.deepEqual(dry.results.map((r) => [r.action.kind, r.outcome]).sort(), [['end_sessions', 'dry_run'], ['suspend', 'dry_run']]);
    assert.equal(mas.requests.filter((r) => r.startsWith('POST /api')).length, 0, 'a dry run writes nothing at MAS');
    assert.equal(mas.usable(vandal).length, 30);

    const first = await executor(gateway).run(state);
    assert.deepEqual(first.results.map((r) => [r.action.kind, r.outcome]).sort(), [['end_sessions', 'applied'], ['suspend', 'applied']]);
    assert.deepEqual(mas.unfinished(vandal), [], 'every session finished and personal token revoked');
    assert.ok(mas.users.get(vandal.id)!.lockedAt, 'the MAS user is locked');
    assert.equal(mas.usable(bystander).length, 4, 'nobody else is touched');
    assert.equal(matrix.writes('logoutDevices').length + matrix.writes('suspend').length, 0, "Synapse's own device and suspension calls are not used");
    assert.ok(mas.requests.some((r) => r.includes('page[after]=')), 'the lists were paged');
    assert.equal(mas.tokensIssued.length, 1, 'one admin token for the whole pass');
    const entries = await audit();
    assert.deepEqual(entries.filter((e) => !e.dryRun).map((e) => [e.kind, e.outcome, e.userId]).sort(), [['end_sessions', 'applied', mxid('Ирина Петрова')], ['suspend', 'applied', mxid('Ирина Петрова')]]);
    assert.match(first.notice ?? '', new RegExp(`Ended the sessions of ${mxid('Ирина Петрова').replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`));

    const before = mas.requests.length;
    const second = await executor(gateway).run(state);
    assert.equal(second.results.length, 0, 'done once per sanction');
    assert.deepEqual(mas.requests.slice(before).map((r) => r.split(' ')[0]), ['GET'], 'one read: is the person still locked at MAS');

    const lifted = await executor(gateway).run(wiki([person('Ирина Петрова', false, 1), person('李小龍', false, 2)]));
    assert.deepEqual(lifted.results.filter((r) => r.action.kind === 'unsuspend').map((r) => r.outcome), ['applied']);
    assert.equal(mas.users.get(vandal.id)!.lockedAt, null, 'unlocked when the lock ends');
    assert.deepEqual((await new ModerationRecordStore(db).load()).sessionEnds, []);
    const heldByHand = people.get('ישראלה')!;
    heldByHand.lockedAt = '2030-05-30T00:00:00Z';
    const othersLock = [person('ישראלה', true, 4)];
    assert.deepEqual((await executor(gateway).run(wiki(othersLock))).results.filter((r) => r.action.kind === 'suspend'), [], 'locked at MAS by hand already: not the service\'s lock');
    await executor(gateway).run(wiki([person('ישראלה', false, 4)]));
    assert.equal(mas.users.get(heldByHand.id)!.lockedAt, '2030-05-30T00:00:00Z', 'a lock made by hand is never lifted by the service');
    assert.ok(!logged.join('').includes(CLIENT_SECRET) && !mas.tokensIssued.some((t) => logged.join('').includes(t)), 'no secret or token in the logs');
  });

  test('a token that expires or that MAS forgets is renewed once and the work goes on; a session that ended meanwhile is no error', async () => {
    const vandal = people.get('محمد علي')!;
    const sessions = mas.addSessions(vandal, 'oauth2-sessions', 12);
    let clock = Date.now();
    const expiring = new MasAdminClient({ baseUrl: mas.url, clientId: CLIENT_ID, clientSecret: CLIENT_SECRET, logger: silent, clock: () => clock });
    const issuedBefore = mas.tokensIssued.length;
    assert.equal((await expiring.user(localpart('محمد علي')))?.id, vandal.id);
    assert.equal((await expiring.user(localpart('محمد علي')))?.id, vandal.id);
    assert.equal(mas.tokensIssued.length, issuedBefore + 1, 'a token is kept while it lasts');
    clock += 290_000; // within 30 s of MAS's 300 s
    assert.equal((await expiring.user(localpart('محمد علي')))?.id, vandal.id);
    assert.equal(mas.tokensIssued.length, issuedBefore + 2, 'a token about to expire (by our clock) is not used again');

    await client.user(localpart('Ζωή'));
    mas.forgetTokens();
    mas.afterNextList = () => {
      sessions[5]!.finishedAt = '2030-06-01T11:59:00Z';
    };
    const issued = mas.tokensIssued.length;
    const ended = await withMasAccounts(matrix, client).logoutDevices(mxid('محمد علي'));
    assert.equal(ended, 'applied');
    assert.deepEqual(mas.unfinished(vandal), []);
    assert.equal(mas.tokensIssued.length, issued + 1, 'the forgotten token was replaced once');
  });

  test('MAS answering 503 is tried again; MAS down fails the action as a network error, and the next pass does it', async () => {
    const vandal = people.get('Ζωή')!;
    mas.addSessions(vandal, 'compat-sessions', 3);
    const gateway = withMasAccounts(matrix, client);
    const state = wiki([person('Ζωή', true, 3)]);

    mas.down = true;
    const failed = await executor(gateway).run(state);
    // No answer ends the pass at its first account-wide write, as a homeserver that does not answer would.
    assert.deepEqual(failed.results.map((r) => r.outcome), ['failed']);
    assert.match(failed.results[0]!.error ?? '', /MAS did not answer/);
    assert.equal(mas.unfinished(vandal).length, 3);
    assert.deepEqual((await new ModerationRecordStore(db).load()).sessionEnds, [], 'not recorded as done');
    await assert.rejects(client.user('anyone'), (e: unknown) => e instanceof MatrixError && e.errcode === NETWORK_ERROR && e.retryable);

    mas.down = false;
    mas.failNext(2, 503);
    const retried = await executor(gateway).run(state);
    assert.deepEqual(retried.results.filter((r) => r.action.kind === 'end_sessions').map((r) => r.outcome), ['applied']);
    assert.deepEqual(mas.unfinished(vandal), []);
  });

  test('a refused admin client is a clear lacks-power refusal, without the secret; MAS without personal tokens; nobody at MAS', async () => {
    const wrong = new MasAdminClient({ baseUrl: mas.url, clientId: CLIENT_ID, clientSecret: 'not it', logger: silent });
    const refused = await executor(withMasAccounts(matrix, wrong)).run(wiki([person('ישראלה', true, 4)]));
    const result = refused.results.find((r) => r.action.kind === 'end_sessions');
    assert.ok(result, JSON.stringify(refused.results));
    assert.equal(result.outcome, 'lacks_power');
    assert.match(result.error ?? '', /MAS refused the service's admin client .*invalid_client/);
    assert.ok(!(result.error ?? '').includes('not it'));

    const older = new MasDouble({ clientId: CLIENT_ID, clientSecret: CLIENT_SECRET, personalSessions: false });
    await older.start();
    try {
      const user = older.addUser(localpart('Nguyễn Thị Ánh'));
      older.addSessions(user, 'user-sessions', 2);
      const olderClient = new MasAdminClient({ baseUrl: older.url, clientId: CLIENT_ID, clientSecret: CLIENT_SECRET, logger: silent });
      assert.equal(await withMasAccounts(matrix, olderClient).logoutDevices(mxid('Nguyễn Thị Ánh')), 'applied');
      assert.deepEqual(older.unfinished(user), []);
      assert.equal(await withMasAccounts(matrix, olderClient).logoutDevices('@never-signed-in:example.org'), 'unchanged');
      assert.equal(await withMasAccounts(matrix, olderClient).suspend('@never-signed-in:example.org', true), 'unchanged');
    } finally {
      await older.stop();
    }
  });

  test("the README's snippets: MAS's admin client and the service's matrix.mas name one client, and the worker's gateway goes to MAS, not Synapse", async () => {
    const masSide = readSnippet('config/mas/admin-client.yaml', { ADMIN_CLIENT_SECRET: CLIENT_SECRET });
    const [adminClient] = masSide.clients;
    assert.deepEqual(masSide.policy.data.admin_clients, [adminClient.client_id]);
    assert.deepEqual(masSide.http.listeners[0].resources.map((r: { name: string }) => r.name).sort(), ['adminapi', 'oauth']);
    const snippetMas = new MasDouble({ clientId: adminClient.client_id, clientSecret: adminClient.client_secret });
    await snippetMas.start();
    try {
      const secretFile = join(mkdtempSync(join(tmpdir(), 'wms-mas-')), 'mas-admin-secret');
      writeFileSync(secretFile, `${CLIENT_SECRET}\n`);
      const service = readSnippet('config/mas/moderation.yaml', { MAS_ADMIN_URL: snippetMas.url, ADMIN_CLIENT_SECRET_FILE: secretFile });
      const config = parseConfig(YAML.stringify({
        oidc: { cookie_keys: ['k'.repeat(40)], key_encryption_secret: 'test-secret' },
        // A homeserver that answers nothing: only MAS may be asked.
        matrix: { server_name: SERVER, homeserver_url: 'http://127.0.0.1:9', access_token: 'bot-token', max_attempts: 1, ...service.matrix },
        sync: { dry_run: false },
      }), 'mas-snippet.yaml');
      assert.equal(config.matrix.mas?.client_secret, CLIENT_SECRET, 'the secret is read from its file');
      assert.equal((redact(config) as { matrix: { mas: { client_secret: string } } }).matrix.mas.client_secret, '[redacted]');

      const user = snippetMas.addUser(localpart('Ирина Петрова'));
      snippetMas.addSessions(user, 'compat-sessions', 2);
      const gateway = matrixGatewayFrom(config, silent);
      assert.equal(await gateway.logoutDevices(mxid('Ирина Петрова')), 'applied');
      assert.equal(await gateway.suspend(mxid('Ирина Петрова'), true), 'applied');
      assert.deepEqual(snippetMas.unfinished(user), []);
      assert.ok(snippetMas.users.get(user.id)!.lockedAt);
    } finally {
      await snippetMas.stop();
    }
  });
});
